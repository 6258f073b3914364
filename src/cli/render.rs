//! Rendering reports for people (stdout) and diagnostics (stderr).
//!
//! Names that come from a bundle are escaped before printing. A closed stdout
//! (e.g. `pouch inspect B.toml | head`) ends the program quietly with success.

use std::io::Write;

use pouch::error::Error;
use pouch::inspect::{InspectReport, SignatureCheck};
use pouch::keygen::KeygenReport;
use pouch::manifest::EntryKind;
use pouch::pack::PackReport;
use pouch::sanitize::escape;
use pouch::unpack::UnpackReport;
use pouch::verify::{SignatureStatus, VerifyReport};

/// Writes one line to stdout; exits quietly if stdout was closed.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Writes a line for people to stderr.
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => out(&s),
        Err(e) => warn(&format!("error: cannot render JSON: {e}")),
    }
}

/// Prints an error with its hint: JSON on stdout under `--json`, else on stderr.
pub fn error(e: &Error, as_json: bool) {
    if as_json {
        json(&serde_json::json!({
            "error": {
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
    warn(&format!(
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
        "recipient fingerprint: {}",
        r.recipient_fingerprint
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
    if r.auto_split {
        warn("note: the output folder is on FAT, where no file may reach 4 GiB: the payload is split into parts of 4 GiB - 1 byte");
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
    warn(&format!(
        "sealed {} files and {} folders ({}) for {} recipient(s); {payload}; signed by {}",
        m.contents.files,
        m.contents.folders,
        bytes(m.contents.total_bytes),
        m.recipients.len(),
        m.signer.key_id
    ));
    if r.verified_after_write {
        warn("read back from the device: every file matches what was written");
    }
    out(&r.manifest_path.display().to_string());
}

fn signature_line(s: &SignatureStatus) -> String {
    match s {
        SignatureStatus::Trusted { key_id } => format!("valid, by trusted key {key_id}"),
        SignatureStatus::Skipped => "NOT CHECKED (--insecure-skip-signature)".into(),
    }
}

pub fn verify(r: &VerifyReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    out(&format!("bundle     {} (id {})", r.name, r.bundle_id));
    out(&format!("signature  {}", signature_line(&r.signature)));
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

pub fn unpack(r: &UnpackReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    warn(&format!(
        "bundle {} verified (signature {}); unpacked {} files, {} folders, {}",
        r.name,
        signature_line(&r.signature),
        r.files,
        r.folders,
        bytes(r.total_bytes)
    ));
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
    let party = |p: &Option<String>| {
        p.as_deref()
            .map(escape)
            .unwrap_or_else(|| "(not named)".into())
    };
    v.push(format!(
        "channel      {} -> {}",
        party(&m.channel.sender),
        party(&m.channel.receiver)
    ));
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
        SignatureCheck::Trusted { key_id } => format!("VALID, by trusted key {key_id}"),
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
    v.push(format!("recipients   {}: {}", fps.len(), fps.join(", ")));
    v.push(format!(
        "payload      {}, {} ({} bytes), sha256 {}{}",
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
