//! Rendering the custody reports: the ledger's checks and gaps, imported
//! receipts, and audits.

use pouch::bundle::ChannelBinding;
use pouch::format::names::escape;

use pouch::custody::receipt::Verdict;

use super::render::{bytes, count, json, note, out, warn};

pub fn ledger_verify(
    path: &std::path::Path,
    c: &pouch::custody::ledger_seal::LedgerCheck,
    as_json: bool,
) {
    if as_json {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("ledger".into(), path.display().to_string().into());
            o.insert("intact".into(), true.into());
        }
        return json(&v);
    }
    out(&format!(
        "{}: {}, hash chain intact",
        path.display(),
        count(c.records, "record")
    ));
    if let (Some(n), Some(key)) = (c.signed_records, &c.signer) {
        let by = c
            .party
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        out(&format!(
            "signed by key {key}{by}: records 0 to {} as they stand",
            n - 1
        ));
        if c.records > n {
            warn(&format!(
                "warning: the {} newest records are not signed yet (the owner runs pouch ledger sign)",
                c.records - n
            ));
        }
    }
}

pub fn ledger_gaps(gaps: &std::collections::BTreeMap<String, Vec<u64>>, as_json: bool) {
    if as_json {
        return json(gaps);
    }
    if gaps.is_empty() {
        out("no channels with sequence numbers in the ledger");
    }
    for (channel, missing) in gaps {
        let channel = escape(channel);
        if missing.is_empty() {
            out(&format!("{channel}: no gaps"));
        } else {
            out(&format!("{channel}: missing {missing:?}"));
        }
    }
}

pub fn receipt(i: &pouch::custody::receipt::Imported) {
    let r = &i.checked.receipt;
    let who = i
        .checked
        .signer_name
        .clone()
        .unwrap_or(i.checked.signer.clone());
    let (name, who) = (escape(&r.name), escape(&who));
    match (&i.verdict, i.newly_recorded) {
        (Verdict::Accepted, true) => out(&format!(
            "{name}: delivered; receipt signed by {who}, received {}",
            escape(&r.received)
        )),
        (Verdict::Accepted, false) => out(&format!(
            "{name}: already recorded as delivered; nothing changed"
        )),
        (Verdict::Rejected(reason), true) => out(&format!(
            "{name}: REFUSED by {who} on {}: {}",
            escape(&r.received),
            escape(reason)
        )),
        (Verdict::Rejected(_), false) => out(&format!(
            "{name}: this rejection is already recorded; nothing changed"
        )),
    }
}

/// One channel lined up across its two sides' ledgers: the counts, every
/// number that is not plainly delivered, and every disagreement.
fn reconciled(c: &pouch::custody::reconcile::ChannelLedgers) {
    use pouch::custody::reconcile::Status;
    let side = |p: &Option<std::path::PathBuf>, who: &str| match p {
        Some(p) => format!("{who}'s ledger {}", escape(&p.display().to_string())),
        None => format!("{who}'s ledger not given"),
    };
    let counts: Vec<String> = c.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out(&format!(
        "reconciled {} ({}; {}): {}",
        escape(&c.channel),
        side(&c.sender_ledger, "sender"),
        side(&c.receiver_ledger, "receiver"),
        counts.join(", ")
    ));
    for s in c.sequences.iter().filter(|s| s.status != Status::Delivered) {
        let what = match s.status {
            Status::Lost => {
                "LOST: packed, never accepted nor rejected, while a later number arrived"
                    .to_string()
            }
            Status::Rejected => format!(
                "REJECTED: {}",
                escape(s.reason.as_deref().unwrap_or("no reason recorded"))
            ),
            Status::Accepted => "accepted; its receipt is not in the sender's ledger yet".into(),
            Status::Outstanding => "outstanding: packed, not arrived yet".into(),
            Status::NotPacked => {
                "not packed: the number went to a pack that was interrupted".into()
            }
            Status::OneSided | Status::Delivered => {
                "seen by one side only (the other's ledger is not given)".into()
            }
        };
        out(&format!(
            "    {:>4}  {:<28}  {what}",
            s.sequence,
            escape(s.name.as_deref().unwrap_or("-"))
        ));
    }
    for d in &c.disagreements {
        out(&format!("    DISAGREEMENT: {}", escape(d)));
    }
}

/// What `receipt make` (or a failed unpack) wrote.
pub fn receipt_written(path: &std::path::Path, verdict: &Verdict) {
    match verdict {
        Verdict::Accepted => note(&format!("receipt written: {}", path.display())),
        Verdict::Rejected(reason) => note(&format!(
            "rejection receipt written: {} (the bundle is refused: {}); carry it back to the sender",
            path.display(),
            escape(reason)
        )),
    }
}

/// A bundle's channel in the audit table, marked by whether its sender party
/// vouched for it: signed by that party (✓), by another (✗), or by a key no
/// keyring party holds (?).
fn audit_channel(b: &pouch::audit::BundleRow) -> String {
    let Some(c) = &b.channel else {
        return "-".into();
    };
    let mark = match &b.channel_binding {
        Some(ChannelBinding::Bound { .. }) => " \u{2713}",
        Some(ChannelBinding::Refused { .. }) => " \u{2717}",
        _ => " ?",
    };
    format!("{}{mark}", escape(c))
}

pub fn audit(r: &pouch::audit::AuditReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    out(&format!(
        "{:<30}  {:<24}  {:>4}  {:<18}  {:<14}  {:>10}  {:<3}  verdict",
        "bundle", "channel", "seq", "signer", "marking", "size", "pq"
    ));
    for b in &r.bundles {
        out(&format!(
            "{:<30}  {:<24}  {:>4}  {:<18}  {:<14}  {:>10}  {:<3}  {}",
            escape(&b.name),
            audit_channel(b),
            b.sequence
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            escape(b.signer.as_deref().unwrap_or("-")),
            escape(b.marking.as_deref().unwrap_or("-")),
            b.size.map(bytes).unwrap_or_else(|| "-".into()),
            match b.post_quantum {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            b.verdict.to_uppercase()
        ));
        for p in &b.problems {
            out(&format!("    problem: {}", escape(p)));
        }
        for w in &b.warnings {
            out(&format!("    warning: {}", escape(w)));
        }
        if let Some(p) = &b.parity {
            out(&format!("    parity: {}", escape(p)));
        }
        if let Some(d) = &b.delta {
            out(&format!(
                "    delta on {} ({})",
                escape(&d.base_bundle_id),
                escape(&d.base)
            ));
        }
    }
    for rc in &r.receipts {
        let says = match &rc.says {
            Some(Verdict::Rejected(reason)) => format!(" (a REJECTION: {})", escape(reason)),
            _ => String::new(),
        };
        out(&format!(
            "receipt {} for {} by {}: {}{says}",
            escape(&rc.path.display().to_string()),
            escape(rc.bundle.as_deref().unwrap_or("?")),
            escape(rc.signer.as_deref().unwrap_or("?")),
            rc.verdict.to_uppercase()
        ));
        for p in &rc.problems {
            out(&format!("    problem: {}", escape(p)));
        }
    }
    for c in &r.channels {
        let gaps = if c.missing.is_empty() {
            "no gaps".to_string()
        } else {
            format!("missing {:?}", c.missing)
        };
        out(&format!(
            "channel {}: sequences {:?}, {gaps}",
            escape(&c.channel),
            c.sequences
        ));
    }
    for l in &r.ledgers {
        out(&format!(
            "ledger {}: {} ({})",
            l.path.display(),
            l.verdict.to_uppercase(),
            escape(&l.detail)
        ));
    }
    for c in &r.reconciled {
        reconciled(c);
    }
    for i in &r.ignored {
        out(&format!(
            "ignored (not a bundle file): {}",
            escape(&i.display().to_string())
        ));
    }
    for l in &r.leftovers {
        out(&format!(
            "left over: {}: {}; the next pack or unpack into that folder removes it, or delete it",
            escape(&l.path.display().to_string()),
            l.what
        ));
    }
    out(&format!(
        "summary: {}, {}, {} failed",
        count(r.bundles.len() as u64, "bundle"),
        count(r.receipts.len() as u64, "receipt"),
        r.failed
    ));
}
