//! `audit --html FILE`: the audit as one self-contained HTML file to file
//! with a case: no script, no font, no network, nothing but inline CSS and
//! an inline SVG picture of each channel's series.
//!
//! Everything in it that came from the medium (names, channels, reasons)
//! is escaped twice: by the name policy, so that no control or bidi
//! character can reorder what a reader sees, then for HTML. The markup is
//! also well-formed XML, which the tests parse.

use std::fmt::Write as _;

use pouch::audit::AuditReport;
use pouch::custody::reconcile::{ChannelLedgers, Status};
use pouch::format::names::{counted, escape};

/// Escapes untrusted text for HTML text and attribute values.
fn h(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour and label of each status in the picture.
fn look(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Delivered => ("#2e7d32", "delivered"),
        Status::Accepted => ("#9ccc65", "accepted, receipt not back"),
        Status::Outstanding => ("#9e9e9e", "outstanding"),
        Status::Lost => ("#c62828", "lost"),
        Status::Rejected => ("#ef6c00", "rejected"),
        Status::NotPacked => ("#ffffff", "not packed"),
        Status::OneSided => ("#90caf9", "one side only"),
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.9em}\
th{background:#eee}.failed{color:#b00020;font-weight:bold}.ok{color:#2e7d32}\
.problem{color:#b00020}.warning{color:#8a6d00}svg.series{display:block;margin:.5em 0}\
svg.key{vertical-align:middle;margin-right:.4em}";

/// The whole report.
pub fn report(r: &AuditReport, when: &str) -> String {
    let mut s = String::new();
    let verdict = match r.failed {
        0 => "<span class=\"ok\">no failures</span>".to_string(),
        n => format!("<span class=\"failed\">{n} failed</span>"),
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <title>pouch audit</title><style>{STYLE}</style></head><body>\n\
         <h1>pouch audit</h1>\n<p>Made {} by pouch {}: {}, {}, {}; {verdict}.</p>\n",
        h(when),
        env!("CARGO_PKG_VERSION"),
        counted(r.bundles.len() as u64, "bundle"),
        counted(r.receipts.len() as u64, "receipt"),
        counted(r.ledgers.len() as u64, "ledger")
    );
    for c in &r.reconciled {
        channel(&mut s, c);
    }
    if r.reconciled.is_empty() {
        for c in &r.channels {
            let _ = writeln!(
                s,
                "<h2>Channel {}</h2><p>Numbers found: {:?}; missing: {:?} (give the ledgers to see more).</p>",
                h(&c.channel),
                c.sequences,
                c.missing
            );
        }
    }
    bundles(&mut s, r);
    others(&mut s, r);
    s.push_str("</body></html>\n");
    s
}

/// One channel: the series as a picture, its legend, and its disagreements.
fn channel(s: &mut String, c: &ChannelLedgers) {
    let _ = writeln!(s, "<h2>Channel {}</h2>", h(&c.channel));
    let side = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| h(&p.display().to_string()))
            .unwrap_or_else(|| "not given".into())
    };
    let _ = writeln!(
        s,
        "<p>Sender's ledger: {}; receiver's ledger: {}.</p>",
        side(&c.sender_ledger),
        side(&c.receiver_ledger)
    );
    series(s, c);
    s.push_str("<table><tr><th>status</th><th>numbers</th></tr>");
    for st in Status::ALL {
        let n = c.counts.get(st.name()).copied().unwrap_or(0);
        if n > 0 {
            let (colour, label) = look(st);
            let _ = write!(
                s,
                "<tr><td><svg class=\"key\" width=\"12\" height=\"12\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"12\" height=\"12\" fill=\"{colour}\" stroke=\"#555\"/></svg> {label}</td><td>{n}</td></tr>"
            );
        }
    }
    s.push_str("</table>\n");
    let flagged: Vec<_> = c
        .sequences
        .iter()
        .filter(|q| q.status != Status::Delivered)
        .collect();
    if !flagged.is_empty() {
        s.push_str("<table><tr><th>number</th><th>bundle</th><th>status</th><th>packed</th><th>arrived</th><th>reason</th></tr>");
        for q in flagged {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                q.sequence,
                h(q.name.as_deref().unwrap_or("-")),
                look(q.status).1,
                h(q.packed.as_deref().unwrap_or("-")),
                h(q.arrived.as_deref().unwrap_or("-")),
                h(q.reason.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>\n");
    }
    for d in &c.disagreements {
        let _ = writeln!(s, "<p class=\"problem\">Disagreement: {}</p>", h(d));
    }
}

/// The picture of a channel's series: one square per sequence number, in
/// order, coloured by what became of it, each with its details as a title.
fn series(s: &mut String, c: &ChannelLedgers) {
    const CELL: usize = 24;
    const PER_ROW: usize = 50;
    let n = c.sequences.len();
    let rows = n.div_ceil(PER_ROW).max(1);
    let width = PER_ROW.min(n.max(1)) * CELL + 40;
    let height = rows * CELL + 24;
    let _ = write!(
        s,
        "<svg class=\"series\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"series of channel {}\">",
        h(&c.channel)
    );
    for (i, q) in c.sequences.iter().enumerate() {
        let (x, y) = (20 + (i % PER_ROW) * CELL, 4 + (i / PER_ROW) * CELL);
        let (colour, label) = look(q.status);
        let _ = write!(
            s,
            "<rect class=\"seq\" data-status=\"{}\" x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" stroke=\"#555\"><title>{} {}: {label}</title></rect>",
            q.status.name(),
            CELL - 3,
            CELL - 3,
            q.sequence,
            h(q.name.as_deref().unwrap_or("-"))
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"20\" y=\"{}\" font-size=\"11\">1</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{n}</text></svg>",
        height - 4,
        width - 20,
        height - 4
    );
}

/// The bundles found, with their problems.
fn bundles(s: &mut String, r: &AuditReport) {
    s.push_str("<h2>Bundles</h2>\n<table><tr><th>bundle</th><th>channel</th><th>number</th><th>signer</th><th>marking</th><th>bytes</th><th>post-quantum</th><th>verdict</th></tr>");
    for b in &r.bundles {
        let opt = |v: &Option<String>| h(v.as_deref().unwrap_or("-"));
        let class = if b.verdict == "ok" { "ok" } else { "failed" };
        let _ = write!(
            s,
            "<tr class=\"bundle\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            h(&b.name),
            opt(&b.channel),
            b.sequence.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            opt(&b.signer),
            opt(&b.marking),
            b.size.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            match b.post_quantum {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            h(&b.verdict)
        );
        for p in &b.problems {
            let _ = write!(
                s,
                "<tr><td colspan=\"8\" class=\"problem\">problem: {}</td></tr>",
                h(p)
            );
        }
        for w in &b.warnings {
            let _ = write!(
                s,
                "<tr><td colspan=\"8\" class=\"warning\">warning: {}</td></tr>",
                h(w)
            );
        }
        if let Some(d) = &b.delta {
            let _ = write!(
                s,
                "<tr><td colspan=\"8\">delta on {} ({})</td></tr>",
                h(&d.base_bundle_id),
                h(&d.base)
            );
        }
    }
    s.push_str("</table>\n");
}

/// Receipts, ledgers, leftovers and files that are not a bundle's.
fn others(s: &mut String, r: &AuditReport) {
    if !r.receipts.is_empty() {
        s.push_str("<h2>Receipts</h2>\n<ul>");
        for rc in &r.receipts {
            let says = match &rc.says {
                Some(pouch::custody::receipt::Verdict::Rejected(why)) => {
                    format!(" (a rejection: {})", h(why))
                }
                _ => String::new(),
            };
            let _ = write!(
                s,
                "<li>{} for {} by {}: {}{says}{}</li>",
                h(&rc.path.display().to_string()),
                h(rc.bundle.as_deref().unwrap_or("?")),
                h(rc.signer.as_deref().unwrap_or("?")),
                h(&rc.verdict),
                rc.problems
                    .iter()
                    .map(|p| format!("<br/><span class=\"problem\">{}</span>", h(p)))
                    .collect::<String>()
            );
        }
        s.push_str("</ul>\n");
    }
    if !r.ledgers.is_empty() {
        s.push_str("<h2>Ledgers</h2>\n<ul>");
        for l in &r.ledgers {
            let _ = write!(
                s,
                "<li class=\"{}\">{}: {} ({})</li>",
                if l.verdict == "ok" { "ok" } else { "failed" },
                h(&l.path.display().to_string()),
                h(&l.verdict),
                h(&l.detail)
            );
        }
        s.push_str("</ul>\n");
    }
    if !r.leftovers.is_empty() || !r.ignored.is_empty() {
        s.push_str("<h2>Other files</h2>\n<ul>");
        for l in &r.leftovers {
            let _ = write!(
                s,
                "<li class=\"warning\">left over: {}: {}; the next pack or unpack into that folder removes it, or delete it</li>",
                h(&l.path.display().to_string()),
                h(l.what)
            );
        }
        for i in &r.ignored {
            let _ = write!(
                s,
                "<li>not a bundle file: {}</li>",
                h(&i.display().to_string())
            );
        }
        s.push_str("</ul>\n");
    }
}
