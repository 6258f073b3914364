//! Acknowledging a bundle to its sender: the receipt a recipient makes for
//! a bundle its ledger accepted, or the rejection it sends for one it
//! refused, saying why (see [`crate::custody::receipt`]).
//!
//! An accepted receipt is only ever made for a bundle this ledger accepted,
//! from a manifest that verifies and hashes as the accepted one. A rejection
//! names what arrived: when its manifest does not verify, the bundle is
//! named by what that manifest claims (bounded and parsed as untrusted
//! input) and by the sha256 of the file itself, which the sender compares
//! with what it packed; the reason says that the signature failed.

use std::path::{Path, PathBuf};

use crate::bundle::{self, Trust};
use crate::custody::ledger::{Event, Ledger, Record};
use crate::custody::receipt::{self, Verdict};
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::payload::hashing::sha256_hex;
use crate::signature::SigningKey;

/// What to acknowledge, and how.
pub struct Acknowledge<'a> {
    /// The bundle's manifest, as it arrived.
    pub manifest: &'a Path,
    /// Signature policy for it.
    pub trust: &'a Trust,
    /// The recipient's ledger.
    pub ledger: &'a Path,
    /// Reject the bundle for this reason (recorded in the ledger first,
    /// unless `recorded`); without it, the ledger's own verdict is
    /// acknowledged.
    pub reject: Option<String>,
    /// The rejection is in the ledger already (unpack recorded it).
    pub recorded: bool,
    /// Where the receipt goes.
    pub out_dir: &'a Path,
}

/// Writes the receipt; returns its path and what it says.
pub fn acknowledge(a: &Acknowledge, key: &SigningKey) -> Result<(PathBuf, Verdict)> {
    let (m, sha, unverified) = match bundle::open(a.manifest, a.trust) {
        Ok(b) => (b.manifest, b.manifest_sha256, None),
        Err(e) if e.exit_code() == 1 => {
            let (m, sha) = unvouched(a.manifest, &e)?;
            (m, sha, Some(e))
        }
        Err(e) => return Err(e),
    };
    let verdict = match (&a.reject, &unverified) {
        (Some(reason), _) => {
            let reason = match &unverified {
                Some(e) => format!("{reason} (and its manifest did not verify: {e})"),
                None => reason.clone(),
            };
            if !a.recorded {
                let mut ledger = Ledger::open(a.ledger)?;
                ledger.append(Record {
                    notes: vec![reason.clone()],
                    ..Record::about(Event::Rejected, &m, &sha)
                })?;
            }
            Verdict::Rejected(reason)
        }
        (None, None) if receipt::accepted_here(a.ledger, &m.bundle_id, &sha)? => Verdict::Accepted,
        (None, _) => match receipt::rejected_here(a.ledger, &m.bundle_id, &sha)? {
            Some(reason) => Verdict::Rejected(reason),
            None => {
                return Err(Error::Refused(format!(
                    "this ledger neither accepted nor rejected bundle {} ({}): unpack it first, or pass --reject REASON to refuse it",
                    crate::format::names::escape(&m.name),
                    crate::format::names::escape(&m.bundle_id)
                )))
            }
        },
    };
    let path = receipt::write(a.out_dir, (&m, &sha), key, &verdict)?;
    Ok((path, verdict))
}

/// The manifest at `path`, whose signature failed with `failed`, read as
/// the untrusted file it is, to name the bundle a rejection is about.
fn unvouched(path: &Path, failed: &Error) -> Result<(Manifest, String)> {
    let bytes = bundle::read_unvouched_bytes(path)?;
    let m = Manifest::parse(&bytes, path).map_err(|e| Error::BadManifest {
        path: path.to_path_buf(),
        reason: format!("{failed}; nor can it be read to name the bundle: {e}"),
    })?;
    Ok((m, sha256_hex(&bytes)))
}
