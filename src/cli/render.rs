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

pub(crate) fn json<T: serde::Serialize>(value: &T) {
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
    pouch::format::names::human_bytes(n)
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
    note(&format!(
        "sealed {} and {} ({}) for {}; {}; signed by {}",
        count(m.contents.files, "file"),
        count(m.contents.folders, "folder"),
        bytes(m.contents.total_bytes),
        count(m.recipients.len() as u64, "recipient"),
        payload_line(r),
        m.signer.key_id
    ));
    if let Some(p) = &m.payload.parity {
        note(&format!(
            "parity: {} recovery slices of {} in {} PAR2 files ({} …); stock par2 repairs from them: par2 repair {}.par2",
            p.recovery_slices,
            bytes(p.slice_size),
            p.files.len(),
            escape(&p.files[0].file),
            escape(&m.name)
        ));
    }
    if let Some(d) = &m.delta {
        note(&format!(
            "a delta on bundle {}: {} new or changed, {} deleted, the tree {} and {} ({}); the recipient applies it with pouch unpack {}.toml --onto TREE",
            d.base_bundle_id,
            count(m.contents.files, "file"),
            count(d.deleted_count, "path"),
            count(d.tree_files, "file"),
            count(d.tree_folders, "folder"),
            bytes(d.tree_bytes),
            escape(&m.name)
        ));
    }
    read_back_line(r);
    out(&r.manifest_path.display().to_string());
}

/// What `repair` did.
pub fn repair(r: &pouch::repair::RepairReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    for i in &r.ignored {
        warn(&format!("warning: {}", escape(i)));
    }
    match r.repaired.len() {
        0 => note("the payload is intact: nothing to repair"),
        n => note(&format!(
            "repaired {} ({} slices restored), each matching its signed sha256; the manifest is unchanged",
            count(n as u64, "file"),
            r.restored
        )),
    }
    for p in &r.repaired {
        out(&escape(&p.display().to_string()));
    }
}

/// What `resplit` wrote.
pub fn recut(r: &PackReport) {
    note(&format!(
        "re-cut {}: {}; the manifest and its signature are copied unchanged, so its ledger records, receipts and channel link still hold{}",
        escape(&r.manifest.name),
        payload_line(r),
        match r.payload_files.len() {
            1 => String::new(),
            _ => format!("; the new parts are listed in {}.parts.toml", escape(&r.manifest.name)),
        }
    ));
    read_back_line(r);
    out(&r.manifest_path.display().to_string());
}

/// `n` things, in the singular for one: `1 file`, `2 files`.
pub fn count(n: u64, thing: &str) -> String {
    pouch::format::names::counted(n, thing)
}

/// Whether the files were read back from the device: said either way.
fn read_back_line(r: &PackReport) {
    if r.verified_after_write {
        note("read back from the device: every file matches what was written");
    } else {
        note("not read back from the device (the output folder is not on removable media); --verify-after-write reads every file back");
    }
}

/// The payload's file, or its parts.
fn payload_line(r: &PackReport) -> String {
    let m = &r.manifest;
    match r.payload_files.as_slice() {
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
    }
}

/// How a re-cut payload came to its parts, for inspect and verify.
pub fn recut_line(recut: std::result::Result<&pouch::cut::Recut, &String>) -> String {
    match recut {
        Ok(c) => format!(
            "re-cut       {}, by {} (the manifest is unchanged)",
            escape(&c.recut),
            c.signed_by
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "a signer not checked".into())
        ),
        Err(e) => format!("re-cut       \u{2717} {e}"),
    }
}

/// What verify and unpack say of the bundle before its contents: its name
/// and id, marking, who signed it (by keyring party), and its channel and
/// number, each as the checks found them.
fn bundle_lines(m: &Manifest, s: &SignatureStatus, channel: &ChannelBinding) -> Vec<String> {
    let mut v = vec![format!(
        "bundle     {} (id {})",
        escape(&m.name),
        escape(&m.bundle_id)
    )];
    if !m.marking.is_empty() {
        v.push(format!("marking    {}", escape(&m.marking)));
    }
    let signer = match s {
        SignatureStatus::Trusted { party: Some(p), .. } => format!(" ({})", escape(p)),
        SignatureStatus::Trusted { party: None, .. } | SignatureStatus::Skipped => String::new(),
    };
    v.push(format!("signature  {}{signer}", signature_line(s)));
    if m.channel != Default::default() {
        let number = m
            .channel
            .sequence
            .map(|n| format!(", number {n}"))
            .unwrap_or_default();
        v.push(format!("channel    {}{number}", channel_line(m, channel)));
    }
    v
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
    for line in bundle_lines(&r.manifest, &r.signature, &r.channel) {
        out(&line);
    }
    out(&format!(
        "payload    {} bytes, sha256 {}: matches the manifest",
        r.payload_size, r.payload_sha256
    ));
    if r.contents_checked {
        out(&format!(
            "contents   {}, {}, {}: every entry matches the manifest",
            count(r.files, "file"),
            count(r.folders, "folder"),
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
    for line in bundle_lines(&r.manifest, &r.signature, &r.channel) {
        note(&line);
    }
    note(&format!(
        "unpacked   {}, {}, {}: every entry matches the manifest",
        count(r.files, "file"),
        count(r.folders, "folder"),
        bytes(r.total_bytes)
    ));
    if let Some(d) = &r.manifest.delta {
        note(&format!(
            "delta      onto the tree of bundle {}: it now holds {}, {}, {} ({} deleted), as signed; the old tree is gone",
            d.base_bundle_id,
            count(d.tree_files, "file"),
            count(d.tree_folders, "folder"),
            bytes(d.tree_bytes),
            count(d.deleted_count, "path")
        ));
    }
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
        SignatureCheck::Trusted { key_id, party } => format!(
            "VALID, by trusted key {key_id}{}",
            party
                .as_deref()
                .map(|p| format!(" ({})", escape(p)))
                .unwrap_or_default()
        ),
        SignatureCheck::Untrusted { key_id } => {
            format!("UNTRUSTED SIGNER: made by key {key_id}, which is not among the trusted keys")
        }
        SignatureCheck::Failed { reason } => format!("INVALID: {}", escape(reason)),
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
    let parts = match r.parts.len() {
        0 => String::new(),
        n => format!(" in {n} parts ({} …)", r.parts[0].file),
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
    if let Some(recut) = &r.recut {
        v.push(recut_line(recut.as_ref()));
    }
    v.push(format!(
        "contents     {}, {}, {}",
        count(m.contents.files, "file"),
        count(m.contents.folders, "folder"),
        bytes(m.contents.total_bytes)
    ));
    if let Some(d) = &m.delta {
        v.push(format!(
            "delta        on bundle {} (manifest sha256 {}): the tree {}, {}, {}; {} of the base deleted{}",
            d.base_bundle_id,
            d.base_manifest_sha256,
            count(d.tree_files, "file"),
            count(d.tree_folders, "folder"),
            bytes(d.tree_bytes),
            count(d.deleted_count, "path"),
            if d.deleted.is_empty() { "" } else { ":" }
        ));
        v.extend(
            d.deleted
                .iter()
                .map(|p| format!("  deleted     {}", escape(p))),
        );
    }
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
            n => format!("; {}", count(n as u64, "previous key")),
        };
        out(&format!(
            "{:<24} {key}{previous}; {}",
            p.name,
            count(p.recipients.len() as u64, "recipient")
        ));
    }
    for r in &k.revoked {
        let id = pouch::signature::TrustedKey::from_base64(&r.sign_pub)
            .map(|k| k.key_id)
            .unwrap_or_default();
        out(&format!("{:<24} revoked key {id} ({})", r.party, r.revoked));
    }
}

/// What became of a packed bundle, by the receipts imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A receipt came: delivered.
    Delivered,
    /// A rejection came, and no receipt.
    Refused,
    /// Nothing came back yet.
    Outstanding,
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

    /// One record; `fate` says whether a packed bundle's receipt came, and
    /// what it said.
    pub fn row(&mut self, r: &pouch::custody::ledger::Record, fate: Fate) {
        use pouch::custody::ledger::{channel_key, Event};
        self.rows += 1;
        if self.as_json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let (Event::Packed, Some(o)) = (r.event, v.as_object_mut()) {
                o.insert("delivered".into(), (fate == Fate::Delivered).into());
                o.insert("refused".into(), (fate == Fate::Refused).into());
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
            Event::Packed => match fate {
                Fate::Delivered => "delivered".to_string(),
                Fate::Refused => "REFUSED by the recipient (see its refused record)".to_string(),
                Fate::Outstanding => "outstanding".to_string(),
            },
            _ => r.notes.join("; "),
        };
        // A delta names the base it builds on: the chain, record by record.
        let status = match (&r.delta_base, r.event) {
            (Some(base), Event::Packed | Event::Accepted) => format!("delta on {base}; {status}")
                .trim_end_matches("; ")
                .to_string(),
            _ => status,
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
    for (kind, fingerprint) in &r.recipients {
        out(&format!("recipient: {fingerprint} ({kind})"));
    }
    if let Some((channel, n)) = &r.channel {
        out(&format!(
            "channel: {}, sequence number {n} (from the ledger as it stands)",
            escape(channel)
        ));
    }
    out(&match r.free {
        Some(free) if !r.fits() => format!(
            "room: needs {} at most, but only {} free in {}: pack would refuse (--no-space-check to try anyway)",
            bytes(r.needed),
            bytes(free),
            opts.out_dir.display()
        ),
        Some(free) => format!(
            "room: needs {} at most, {} free in {}",
            bytes(r.needed),
            bytes(free),
            opts.out_dir.display()
        ),
        None => format!("room: needs {} at most", bytes(r.needed)),
    });
    out(&format!(
        "total: {}, {}, {}; {} to {}; nothing was written (dry run)",
        count(r.files, "file"),
        count(r.folders, "folder"),
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
