//! Rendering reports for people (stdout) and diagnostics (stderr).
//!
//! Names that come from a bundle are escaped before printing. A closed stdout
//! (e.g. `pouch inspect B.toml | head`) ends the program quietly with success.

use std::io::Write;

use pouch::bundle::ChannelBinding;
use pouch::error::Error;
use pouch::format::manifest::{EntryKind, Manifest};
use pouch::format::names::{escape, for_terminal, for_terminal_json};
use pouch::inspect::{InspectReport, SignatureCheck};
use pouch::keygen::KeygenReport;
use pouch::pack::PackReport;
use pouch::unpack::UnpackReport;
use pouch::verify::{SignatureStatus, VerifyReport};

/// Writes one line to stdout; exits quietly if stdout was closed. Whatever
/// the line holds, no control or bidi character reaches the terminal raw
/// (names are escaped where they are formatted; this is the last defence).
pub fn out(line: &str) {
    write_out(&for_terminal(line));
}

fn write_out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences notes on stderr (`-q`); warnings and errors still show.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Writes a line for people to stderr, made safe as [`out`] does.
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", for_terminal(line));
}

/// Writes a note for people to stderr, unless `-q`.
pub fn note(line: &str) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        warn(line);
    }
}

fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => write_out(&for_terminal_json(&s)),
        Err(e) => warn(&format!("error: cannot render JSON: {e}")),
    }
}

/// Prints an error with its hint: JSON on stdout under `--json`, else on stderr.
pub fn error(e: &Error, as_json: bool) {
    if as_json {
        json(&serde_json::json!({
            "error": {
                "kind": e.kind(),
                "message": e.to_string(),
                "hint": e.hint(),
                "exit_code": e.exit_code(),
            }
        }));
    } else {
        warn(&format!("error: {e}\n  hint: {}", e.hint()));
    }
}

/// Sizes for people: `1.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

pub fn keygen(r: &KeygenReport) {
    note(&format!(
        "wrote {} (secret), {}, {} ({}), {}",
        r.identity_path.display(),
        r.recipient_path.display(),
        r.signing_key_path.display(),
        if r.passphrase_protected {
            "secret, passphrase-protected"
        } else {
            "secret, NOT passphrase-protected"
        },
        r.signing_pub_path.display()
    ));
    out(&format!("recipient: {}", r.recipient));
    out(&format!(
        "recipient fingerprint: {} ({})",
        r.recipient_fingerprint,
        if r.recipient_kind == pouch::payload::crypto::KIND_PQ {
            "post-quantum, mlkem768x25519"
        } else {
            "X25519, not post-quantum"
        }
    ));
    out(&format!("signing key id: {}", r.key_id));
}

pub fn pack(r: &PackReport) {
    for s in &r.skipped {
        warn(&format!(
            "warning: skipped {} (not a regular file or folder)",
            escape(&s.to_string_lossy())
        ));
    }
    let m = &r.manifest;
    if r.auto_split && r.payload_files.len() > 1 {
        note("note: the output folder is on FAT, where no file may reach 4 GiB: the payload is split into parts of 4 GiB - 1 MiB");
    }
    let payload = match r.payload_files.as_slice() {
        [one] => format!("payload {} ({})", one.display(), bytes(m.payload.size)),
        many => format!(
            "payload in {} parts of at most {} ({} in all): {} … {}",
            many.len(),
            bytes(m.payload.parts.iter().map(|p| p.size).max().unwrap_or(0)),
            bytes(m.payload.size),
            many.first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            many.last()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    note(&format!(
        "sealed {} files and {} folders ({}) for {} recipient(s); {payload}; signed by {}",
        m.contents.files,
        m.contents.folders,
        bytes(m.contents.total_bytes),
        m.recipients.len(),
        m.signer.key_id
    ));
    if r.verified_after_write {
        note("read back from the device: every file matches what was written");
    }
    out(&r.manifest_path.display().to_string());
}

fn signature_line(s: &SignatureStatus) -> String {
    match s {
        SignatureStatus::Trusted { key_id, .. } => format!("valid, by trusted key {key_id}"),
        SignatureStatus::Skipped => "NOT CHECKED (--insecure-skip-signature)".into(),
    }
}

/// The channel a manifest names, with whether its sender party vouched for it.
pub fn channel_line(m: &Manifest, binding: &ChannelBinding) -> String {
    let party = |p: &Option<String>| {
        p.as_deref()
            .map(escape)
            .unwrap_or_else(|| "(not named)".into())
    };
    let named = format!(
        "{} -> {}",
        party(&m.channel.sender),
        party(&m.channel.receiver)
    );
    match binding {
        ChannelBinding::NoChannel => named,
        ChannelBinding::Bound { party } => format!("{named}, signed by {} \u{2713}", escape(party)),
        ChannelBinding::Unbound => format!(
            "{named}, not vouched for: no keyring party signed it (its sequence is not checked)"
        ),
        ChannelBinding::Refused { signer } => format!("{named} \u{2717} signed by {signer}"),
    }
}

pub fn verify(r: &VerifyReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    out(&format!("bundle     {} (id {})", r.name, r.bundle_id));
    let signer = match &r.signature {
        SignatureStatus::Trusted { party: Some(p), .. } => format!(" ({p})"),
        SignatureStatus::Trusted { party: None, .. } | SignatureStatus::Skipped => String::new(),
    };
    out(&format!(
        "signature  {}{signer}",
        signature_line(&r.signature)
    ));
    if r.manifest.channel != Default::default() {
        out(&format!(
            "channel    {}",
            channel_line(&r.manifest, &r.channel)
        ));
    }
    out(&format!(
        "payload    {} bytes, sha256 {}: matches the manifest",
        r.payload_size, r.payload_sha256
    ));
    if r.contents_checked {
        out(&format!(
            "contents   {} files, {} folders, {}: every entry matches the manifest",
            r.files,
            r.folders,
            bytes(r.total_bytes)
        ));
    } else {
        out("contents   not decrypted (pass -i IDENTITY to check every entry)");
    }
    out("verdict    OK");
}

pub fn unpack(r: &UnpackReport, receipt: Option<&std::path::Path>, as_json: bool) {
    if as_json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "receipt".into(),
                receipt.map(|p| p.display().to_string()).into(),
            );
        }
        return json(&v);
    }
    note(&format!(
        "bundle {} verified (signature {}); unpacked {} files, {} folders, {}",
        r.name,
        signature_line(&r.signature),
        r.files,
        r.folders,
        bytes(r.total_bytes)
    ));
    if !r.missing.is_empty() {
        warn(&format!(
            "warning: gap in the channel: sequence numbers {:?} have not arrived",
            r.missing
        ));
    }
    for f in &r.flags {
        warn(&format!("warning: {f}"));
    }
    if let Some(p) = receipt {
        note(&format!(
            "receipt written: {} (send it back to the sender)",
            p.display()
        ));
    }
    out(&r.output.display().to_string());
}

pub fn inspect(r: &InspectReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    for line in inspect_lines(r) {
        out(&line);
    }
}

/// The human form of an inspect report.
pub fn inspect_lines(r: &InspectReport) -> Vec<String> {
    let m = &r.manifest;
    let mut v = Vec::new();
    v.push(format!("bundle       {}", m.name));
    v.push(format!("id           {}", m.bundle_id));
    v.push(format!("created      {} by {}", m.created, escape(&m.tool)));
    v.push(format!("channel      {}", channel_line(m, &r.channel)));
    if !m.marking.is_empty() {
        v.push(format!("marking      {}", escape(&m.marking)));
    }
    if !m.description.is_empty() {
        v.push(format!("description  {}", escape(&m.description)));
    }
    let sig = match &r.signature {
        SignatureCheck::NotChecked { .. } => {
            "not checked (pass --trust SIGNER_PUB to check it)".to_string()
        }
        SignatureCheck::Trusted { key_id, .. } => format!("VALID, by trusted key {key_id}"),
        SignatureCheck::Failed { reason } => format!("FAILED: {reason}"),
    };
    v.push(format!(
        "signer       key {}; signature {sig}",
        m.signer.key_id
    ));
    let fps: Vec<String> = m
        .recipients
        .iter()
        .map(|r| format!("{} {}", r.kind, r.fingerprint))
        .collect();
    v.push(format!(
        "recipients   {} ({}): {}",
        fps.len(),
        if m.is_post_quantum() {
            "post-quantum"
        } else {
            "classic X25519, not post-quantum"
        },
        fps.join(", ")
    ));
    v.push(match &r.header {
        Ok(h) => match &h.problem {
            None => format!(
                "header       {}: each a listed recipient (or age's grease)",
                h.stanzas.join(", ")
            ),
            Some(p) => format!("header       {} \u{2717} {p}", h.stanzas.join(", ")),
        },
        Err(e) => format!("header       not read: {e}"),
    });
    let parts = match m.payload.parts.len() {
        0 => String::new(),
        n => format!(" in {n} parts ({} …)", m.payload.parts[0].file),
    };
    v.push(format!(
        "payload      {}{parts}, {} ({} bytes), sha256 {}{}",
        m.payload.file,
        bytes(m.payload.size),
        m.payload.size,
        m.payload.sha256,
        if r.payload_present {
            ""
        } else {
            " [missing or wrong size]"
        }
    ));
    v.push(format!(
        "contents     {} files, {} folders, {}",
        m.contents.files,
        m.contents.folders,
        bytes(m.contents.total_bytes)
    ));
    if m.contents.sealed_names {
        v.push("names        sealed: the file list is inside the encrypted payload".into());
    } else {
        v.push("files".into());
        for e in &m.entries {
            match e.kind {
                EntryKind::Folder => {
                    v.push(format!("  {:>10}  {}  {}/", "", e.mode, escape(&e.path)))
                }
                EntryKind::File => v.push(format!(
                    "  {:>10}  {}  {}",
                    bytes(e.file_size()),
                    e.mode,
                    escape(&e.path)
                )),
            }
        }
    }
    v
}

pub fn keyring(k: &pouch::custody::keyring::Keyring, as_json: bool) {
    if as_json {
        return json(&k.parties);
    }
    if k.parties.is_empty() {
        out("the keyring is empty (pouch keyring add NAME --sign-pub FILE --recipient age1...)");
    }
    for p in &k.parties {
        let key = p
            .sign_pub
            .as_deref()
            .and_then(|pk| pouch::signature::TrustedKey::from_base64(pk).ok())
            .map(|k| format!("signing key {}", k.key_id))
            .unwrap_or_else(|| "no signing key".into());
        let previous = match p.previous_keys.len() {
            0 => String::new(),
            n => format!("; {n} previous key(s)"),
        };
        out(&format!(
            "{:<24} {key}{previous}; {} recipient(s)",
            p.name,
            p.recipients.len()
        ));
    }
    for r in &k.revoked {
        let id = pouch::signature::TrustedKey::from_base64(&r.sign_pub)
            .map(|k| k.key_id)
            .unwrap_or_default();
        out(&format!("{:<24} revoked key {id} ({})", r.party, r.revoked));
    }
}

/// `ledger show`, printed a record at a time as the ledger is read.
pub struct LedgerTable {
    as_json: bool,
    rows: u64,
}

impl LedgerTable {
    pub fn new(as_json: bool) -> LedgerTable {
        if as_json {
            out("[");
        } else {
            out(&format!(
                "{:>5}  {:<20}  {:<9}  {:<24}  {:>4}  {:<28}  status",
                "#", "time", "event", "channel", "seq", "bundle"
            ));
        }
        LedgerTable { as_json, rows: 0 }
    }

    /// One record; `delivered` says whether a packed bundle's receipt came.
    pub fn row(&mut self, r: &pouch::custody::ledger::Record, delivered: bool) {
        use pouch::custody::ledger::{channel_key, Event};
        self.rows += 1;
        if self.as_json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let (Event::Packed, Some(o)) = (r.event, v.as_object_mut()) {
                o.insert("delivered".into(), delivered.into());
            }
            let sep = if self.rows > 1 { "," } else { "" };
            write_out(&for_terminal_json(&format!("{sep}{v}")));
            return;
        }
        let ch = channel_key(&r.sender, &r.receiver).unwrap_or_else(|| "-".into());
        let seq = r
            .sequence
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let event = serde_json::to_value(r.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let status = match r.event {
            Event::Packed if delivered => "delivered".to_string(),
            Event::Packed => "outstanding".to_string(),
            _ => r.notes.join("; "),
        };
        out(&format!(
            "{:>5}  {:<20}  {:<9}  {:<24}  {:>4}  {:<28}  {}",
            r.index,
            escape(&r.time),
            event,
            escape(&ch),
            seq,
            escape(r.name.as_deref().unwrap_or("-")),
            escape(&status)
        ));
    }

    pub fn finish(self) {
        if self.as_json {
            out("]");
        }
    }
}

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
        "{}: {} records, hash chain intact",
        path.display(),
        c.records
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
    if i.newly_recorded {
        out(&format!(
            "{}: delivered; receipt signed by {who}, received {}",
            r.name, r.received
        ));
    } else {
        out(&format!(
            "{}: already recorded as delivered; nothing changed",
            r.name
        ));
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
    }
    for rc in &r.receipts {
        out(&format!(
            "receipt {} for {} by {}: {}",
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
    if let Some(l) = &r.ledger {
        out(&format!(
            "ledger {}: {} ({})",
            l.path.display(),
            l.verdict.to_uppercase(),
            escape(&l.detail)
        ));
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
        "summary: {} bundles, {} receipts, {} failed",
        r.bundles.len(),
        r.receipts.len(),
        r.failed
    ));
}

pub fn dry_run(r: &pouch::pack::DryRun, opts: &pouch::pack::PackOptions) {
    for (path, kind, size) in &r.entries {
        if kind == "folder" {
            out(&format!("{:>10}  {}/", "", escape(path)));
        } else {
            out(&format!("{:>10}  {}", bytes(*size), escape(path)));
        }
    }
    for s in &r.skipped {
        out(&format!(
            "would skip {} (not a regular file or folder)",
            escape(&s.to_string_lossy())
        ));
    }
    for u in &r.unportable {
        out(&format!("unportable: {u}"));
    }
    out(&format!(
        "total: {} files, {} folders, {}; {} to {}; nothing was written (dry run)",
        r.files,
        r.folders,
        bytes(r.total_bytes),
        if r.estimated_parts > 1 {
            format!("at most {} parts", r.estimated_parts)
        } else {
            "one payload file".into()
        },
        opts.out_dir.display()
    ));
}

pub fn config(rows: &[(&str, Option<String>, String)], as_json: bool) {
    if as_json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v, src)| {
                (
                    k.to_string(),
                    serde_json::json!({"value": v, "source": src}),
                )
            })
            .collect();
        return json(&map);
    }
    for (k, v, src) in rows {
        out(&format!(
            "{k:<16} {:<50} ({src})",
            v.as_deref().unwrap_or("-")
        ));
    }
}
