//! Receipts: the recipient's signed statement that a bundle arrived intact.
//!
//! After a successful unpack, the recipient writes `NAME.receipt.toml` and its
//! minisign signature (trusted comment `pouch receipt bundle_id:… name:…`).
//! The sender imports it: the signature must be by a trusted key, the receipt
//! must name a bundle the sender's ledger has as packed, with the same
//! manifest hash; then the bundle is recorded as delivered.
//!
//! A receipt can also say that the bundle was **rejected**, and why (a
//! damaged payload, a bad signature, a replay, a policy): imported, the
//! bundle is recorded as refused, with the reason and, when the copy that
//! arrived was not the manifest packed, that too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::custody::intent;
use crate::custody::ledger::{self, Event, Ledger, Record};
use crate::disk::durable::{self, PendingFile};
use crate::error::{Error, Result};
use crate::format::manifest::{self, Manifest};
use crate::format::names::escape;
use crate::format::strict_toml;
use crate::signature::{self, SigningKey, TrustedKey};

/// A receipt file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Format version, 1.
    pub format_version: u32,
    /// Always `receipt`.
    pub kind: String,
    /// The bundle received.
    pub bundle_id: String,
    /// Its name.
    pub name: String,
    /// The channel's sender, as the bundle states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The channel's receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The bundle's sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// sha256 of the bundle's manifest file.
    pub manifest_sha256: String,
    /// When it was unpacked, RFC 3339 UTC.
    pub received: String,
    /// Files unpacked.
    pub files: u64,
    /// Bytes unpacked.
    pub total_bytes: u64,
    /// `accepted` or `rejected`.
    pub verdict: String,
    /// Why the bundle was rejected (only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Key id of the recipient's signing key.
    pub receiver_key_id: String,
}

fn comment(bundle_id: &str, name: &str) -> String {
    format!("pouch receipt bundle_id:{bundle_id} name:{name}")
}

/// What a receipt says of its bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Unpacked and accepted.
    Accepted,
    /// Refused, for this reason.
    Rejected(String),
}

/// The longest reason a rejection gives.
pub const MAX_REASON_BYTES: usize = 900;

impl Receipt {
    /// What this receipt says; `Err` for a verdict pouch does not write.
    pub fn verdict(&self) -> std::result::Result<Verdict, String> {
        match (self.verdict.as_str(), &self.reason) {
            ("accepted", None) => Ok(Verdict::Accepted),
            ("rejected", Some(reason)) => {
                if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
                    return Err(format!(
                        "a rejection's reason must be given, in at most {MAX_REASON_BYTES} bytes"
                    ));
                }
                Ok(Verdict::Rejected(reason.clone()))
            }
            _ => Err("its verdict is neither \"accepted\" nor \"rejected\" with a reason".into()),
        }
    }
}

/// Writes `NAME.receipt.toml` and `NAME.receipt.toml.minisig` into `dir` for
/// a bundle this ledger accepted or rejected (`verdict`), from its manifest
/// (`m`, whose file hashed to `manifest_sha256`); returns the receipt's path.
pub fn write(
    dir: &Path,
    (m, manifest_sha256): (&Manifest, &str),
    key: &SigningKey,
    verdict: &Verdict,
) -> Result<PathBuf> {
    let (verdict, reason, (files, total_bytes)) = match verdict {
        Verdict::Accepted => ("accepted", None, (m.contents.files, m.contents.total_bytes)),
        Verdict::Rejected(why) => ("rejected", Some(cut_reason(why)), (0, 0)),
    };
    let r = Receipt {
        format_version: 1,
        kind: "receipt".into(),
        bundle_id: m.bundle_id.clone(),
        name: m.name.clone(),
        sender: m.channel.sender.clone(),
        receiver: m.channel.receiver.clone(),
        sequence: m.channel.sequence,
        manifest_sha256: manifest_sha256.to_string(),
        received: manifest::format_time(time::OffsetDateTime::now_utc()),
        files,
        total_bytes,
        verdict: verdict.into(),
        reason,
        receiver_key_id: key.key_id.clone(),
    };
    let body = toml::to_string(&r)
        .map_err(|e| Error::Internal(format!("cannot serialise the receipt: {e}")))?;
    let text = format!(
        "# pouch receipt: signed by the recipient; import with pouch receipt import\n\n{body}"
    );
    crate::disk::space::ensure_room(dir, 64 << 10, "the receipt")?;
    let path = dir.join(format!("{}.receipt.toml", r.name));
    let sig_path = signature::signature_path(&path);
    let sig = key.sign_with_comment(
        text.as_bytes(),
        &comment(&r.bundle_id, &r.name),
        &format!("pouch receipt for {}", r.name),
    )?;
    // A receipt without its signature is what a write interrupted between
    // the two renames leaves: it proves nothing, and is replaced.
    if path.is_file() && std::fs::symlink_metadata(&sig_path).is_err() {
        std::fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
        crate::notice::notice(&format!(
            "removed {}: an unsigned receipt left by an interrupted write",
            path.display()
        ));
    }
    // Both files complete under temporary names, then renamed receipt
    // first, signature last: a receipt that has its signature is whole.
    let mut files = Vec::new();
    for (p, bytes) in [(&path, text.as_bytes()), (&sig_path, sig.as_bytes())] {
        let mut f = PendingFile::create(p, 0o644)?;
        f.write_all(bytes)?;
        files.push(f.sync()?);
    }
    durable::commit_all(files)?;
    Ok(path)
}

/// `why`, cut to [`MAX_REASON_BYTES`] at a character boundary.
fn cut_reason(why: &str) -> String {
    let mut end = why.len().min(MAX_REASON_BYTES);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    why[..end].to_string()
}

/// Why this ledger rejected the bundle `bundle_id` (or the manifest that
/// hashes to `manifest_sha256`), as its newest rejection recorded it;
/// `None` if it never did.
pub fn rejected_here(
    ledger_path: &Path,
    bundle_id: &str,
    manifest_sha256: &str,
) -> Result<Option<String>> {
    let mut ledger = Ledger::open(ledger_path)?;
    let rejected = ledger.records_where(|r| {
        r.event == Event::Rejected
            && (r.bundle_id.as_deref() == Some(bundle_id)
                || r.manifest_sha256.as_deref() == Some(manifest_sha256))
    })?;
    Ok(rejected.last().map(|r| match r.notes.is_empty() {
        true => "rejected (no reason recorded)".to_string(),
        false => r.notes.join("; "),
    }))
}

/// Whether this ledger accepted the bundle `bundle_id` whose manifest hashes
/// to `manifest_sha256` (only such a bundle gets a receipt).
pub fn accepted_here(ledger_path: &Path, bundle_id: &str, manifest_sha256: &str) -> Result<bool> {
    let mut ledger = Ledger::open(ledger_path)?;
    // An unpack killed after moving its files into place is accepted.
    intent::recover(&mut ledger)?;
    let accepted = ledger.records_where(|r| {
        r.event == Event::Accepted
            && r.bundle_id.as_deref() == Some(bundle_id)
            && r.manifest_sha256.as_deref() == Some(manifest_sha256)
    })?;
    Ok(!accepted.is_empty())
}

/// A receipt read and checked.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The receipt.
    pub receipt: Receipt,
    /// Its signer's key id.
    pub signer: String,
    /// The signer's keyring name, when known.
    pub signer_name: Option<String>,
}

/// The largest receipt read; one is well under 1 KiB.
pub const MAX_RECEIPT_BYTES: u64 = 64 * 1024;

/// Reads a receipt and checks its signature against `trusted`.
pub fn read(path: &Path, trusted: &[TrustedKey]) -> Result<Checked> {
    let bytes = crate::disk::durable::read_capped(path, MAX_RECEIPT_BYTES)?.ok_or_else(|| {
        Error::BadReceipt {
            path: path.to_path_buf(),
            reason: format!(
                "{}; not a pouch receipt",
                strict_toml::too_large(MAX_RECEIPT_BYTES)
            ),
        }
    })?;
    let sig_path = signature::signature_path(path);
    let sig_text = signature::read_signature(&sig_path)?;
    let v = signature::verify(&bytes, &sig_text, &sig_path, trusted)?;
    let bad = |reason: String| Error::BadReceipt {
        path: path.to_path_buf(),
        reason,
    };
    let r: Receipt = strict_toml::parse_vouched(&bytes, MAX_RECEIPT_BYTES).map_err(bad)?;
    if r.format_version != 1 || r.kind != "receipt" {
        return Err(bad(
            "not a pouch receipt of a version this pouch reads".into()
        ));
    }
    r.verdict().map_err(bad)?;
    if v.trusted_comment != comment(&r.bundle_id, &r.name) {
        return Err(Error::BadSignature {
            path: sig_path,
            reason: "its trusted comment does not name this receipt's bundle".into(),
        });
    }
    v.check_not_replaced_at(&r.received, &sig_path)?;
    if r.receiver_key_id != v.key_id {
        return Err(bad(format!(
            "names signer {} but was signed by {}",
            escape(&r.receiver_key_id),
            v.key_id
        )));
    }
    let signer_name = v.party.clone();
    Ok(Checked {
        receipt: r,
        signer: v.key_id,
        signer_name,
    })
}

/// What importing a receipt did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// What the receipt says: delivered, or refused and why.
    pub verdict: Verdict,
    /// The receipt.
    pub checked: Checked,
    /// False when it had been imported before (nothing was recorded again).
    pub newly_recorded: bool,
}

/// Checks that the receipt `checked` (read from `path`) was signed by a key
/// of `receiver`, the party the bundle names as its receiver: only that
/// party can confirm a delivery to it. The manifest hash a receipt needs is
/// public, so a signature by any other trusted key proves nothing. A bundle
/// without a receiver party takes a receipt from any trusted key.
pub fn check_receiver(checked: &Checked, receiver: Option<&str>, path: &Path) -> Result<()> {
    let Some(want) = receiver else {
        return Ok(());
    };
    let bad = |reason: String| Error::BadReceipt {
        path: path.to_path_buf(),
        reason,
    };
    if checked.receipt.receiver.as_deref() != Some(want) {
        return Err(bad(format!(
            "it names receiver {}, but the bundle's receiver is {want}",
            escape(checked.receipt.receiver.as_deref().unwrap_or("(none)"))
        )));
    }
    match checked.signer_name.as_deref() {
        Some(p) if p == want => Ok(()),
        Some(p) => Err(bad(format!(
            "signed by {p}, but the bundle's receiver is {want}: only {want}'s key can confirm its delivery"
        ))),
        None => Err(bad(format!(
            "signed by key {}, which is not {want}'s key in the keyring: only {want}, the bundle's receiver, can confirm its delivery",
            checked.signer
        ))),
    }
}

/// Imports a receipt into the sender's ledger: see the module docs.
pub fn import(path: &Path, trusted: &[TrustedKey], ledger_path: &Path) -> Result<Imported> {
    let checked = read(path, trusted)?;
    let r = &checked.receipt;
    let mut ledger = Ledger::open(ledger_path)?;
    intent::recover(&mut ledger)?;
    let records =
        ledger.records_where(|rec| rec.bundle_id.as_deref() == Some(r.bundle_id.as_str()))?;
    let packed = records
        .iter()
        .find(|x| x.event == Event::Packed && x.bundle_id.as_deref() == Some(r.bundle_id.as_str()));
    let Some(packed) = packed else {
        return Err(Error::BadReceipt {
            path: path.to_path_buf(),
            reason: format!(
                "bundle {} ({}) is not in this ledger as packed; is this the right ledger?",
                r.name, r.bundle_id
            ),
        });
    };
    check_receiver(&checked, packed.receiver.as_deref(), path)?;
    let same_manifest = packed.manifest_sha256.as_deref() == Some(r.manifest_sha256.as_str());
    let who = checked.signer_name.as_deref().unwrap_or(&checked.signer);
    let verdict = r.verdict().map_err(|reason| Error::BadReceipt {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Verdict::Rejected(reason) = &verdict {
        let mut notes = vec![format!("refused {} by {who}: {reason}", r.received)];
        if !same_manifest {
            notes.push(format!(
                "the copy {who} received has manifest sha256 {}, not the one packed: it was changed or replaced on the way",
                r.manifest_sha256
            ));
        }
        let known = records
            .iter()
            .any(|x| x.event == Event::Refused && x.notes == notes);
        if !known {
            ledger.append(Record {
                event: Event::Refused,
                notes,
                ..about_receipt(&checked)
            })?;
        }
        return Ok(Imported {
            verdict,
            checked,
            newly_recorded: !known,
        });
    }
    if !same_manifest {
        return Err(Error::BadReceipt {
            path: path.to_path_buf(),
            reason: format!(
                "it confirms a manifest with sha256 {}, but {} was packed with another",
                r.manifest_sha256, r.name
            ),
        });
    }
    if ledger::delivered(&records).contains(&r.bundle_id) {
        return Ok(Imported {
            verdict,
            checked,
            newly_recorded: false,
        });
    }
    ledger.append(Record {
        event: Event::Receipt,
        notes: vec![format!("received {} by {who}", r.received)],
        ..about_receipt(&checked)
    })?;
    Ok(Imported {
        verdict,
        checked,
        newly_recorded: true,
    })
}

/// The sender's record of a receipt: about its bundle, by its signer.
fn about_receipt(checked: &Checked) -> Record {
    let r = &checked.receipt;
    Record {
        bundle_id: Some(r.bundle_id.clone()),
        name: Some(r.name.clone()),
        sender: r.sender.clone(),
        receiver: r.receiver.clone(),
        sequence: r.sequence,
        manifest_sha256: Some(r.manifest_sha256.clone()),
        signer: Some(checked.signer.clone()),
        vouched_by: checked.signer_name.clone(),
        ..Record::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_accepted_alone_or_rejected_with_a_bounded_reason() {
        let text = std::fs::read("manifests/receipt.toml").expect("example");
        let r: Receipt = strict_toml::parse(&text, MAX_RECEIPT_BYTES).expect("parses");
        assert_eq!(r.verdict(), Ok(Verdict::Accepted));
        let with = |verdict: &str, reason: Option<String>| Receipt {
            verdict: verdict.into(),
            reason,
            ..r.clone()
        };
        let why = "payload damaged".to_string();
        assert_eq!(
            with("rejected", Some(why.clone())).verdict(),
            Ok(Verdict::Rejected(why.clone()))
        );
        for bad in [
            with("accepted", Some(why.clone())),
            with("rejected", None),
            with("rejected", Some("  ".into())),
            with("rejected", Some("x".repeat(MAX_REASON_BYTES + 1))),
            with("delivered", None),
        ] {
            assert!(bad.verdict().is_err(), "{bad:?}");
        }
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = cut_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES && long.starts_with(&cut));
    }
}
