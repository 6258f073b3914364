//! Reading a bundle's outer manifest for people: who, to whom, when, what.
//!
//! Inspect needs no key. It parses the manifest and, when trusted signer keys
//! are given, reports whether the signature is valid; it never decides on the
//! user's behalf that an unsigned manifest is true.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::{self, read_manifest_bytes, ChannelBinding};
use crate::error::{Error, Result};
use crate::format::manifest::{Manifest, Part};
use crate::payload::hashing::sha256_hex;
use crate::signature::{self, TrustedKey};

/// The signature as inspect saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureCheck {
    /// No trusted key was given, so the signature was not checked.
    NotChecked {
        /// The key id the signature claims (unverified), if it could be read.
        claimed_key_id: Option<String>,
    },
    /// Valid, by a trusted key.
    Trusted {
        /// The signer's key id.
        key_id: String,
        /// The keyring party whose full public key verified the signature.
        #[serde(skip_serializing_if = "Option::is_none")]
        party: Option<String>,
    },
    /// Valid for a key that is not among the trusted ones.
    Untrusted {
        /// The key that made it.
        key_id: String,
    },
    /// Missing or invalid, or refused for the channel it claims.
    Failed {
        /// Why.
        reason: String,
    },
}

/// What inspect found.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The manifest read.
    pub manifest_path: PathBuf,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
    /// The signature check.
    pub signature: SignatureCheck,
    /// Whether the sender party vouched for the channel the manifest names.
    pub channel: ChannelBinding,
    /// Whether the payload file, or each of its parts, is present beside
    /// the manifest with the signed size.
    pub payload_present: bool,
    /// Whether every recipient is post-quantum (ML-KEM-768 + X25519), by
    /// the manifest's claim; see `header` for what the payload says.
    pub post_quantum: bool,
    /// The recipient stanzas read from the payload's age header, or why
    /// they could not be read.
    pub header: std::result::Result<bundle::HeaderRecipients, String>,
    /// The payload's parts, in order (none for the one file `NAME.age`):
    /// the manifest's, or those of its re-cut.
    pub parts: Vec<Part>,
    /// The re-cut that made them, or why its parts list was refused (the
    /// manifest's own parts are then shown).
    pub recut: Option<std::result::Result<crate::cut::Recut, String>>,
    /// The manifest itself.
    pub manifest: Manifest,
}

/// Whether the payload's file, or each of its parts, is beside the manifest
/// with the size the manifest gives it.
fn payload_present(manifest_path: &Path, m: &Manifest, parts: &[Part]) -> bool {
    let has = |file: &str, size: u64| {
        let path = crate::disk::durable::parent_of(manifest_path).join(file);
        std::fs::metadata(path).is_ok_and(|f| f.is_file() && f.len() == size)
    };
    match parts {
        [] => has(&m.payload.file, m.payload.size),
        parts => parts.iter().all(|p| has(&p.file, p.size)),
    }
}

/// Reads and describes a bundle; checks the signature when `trusted` is not empty.
pub fn inspect(manifest_path: &Path, trusted: &[TrustedKey]) -> Result<InspectReport> {
    crate::disk::manifest_file::check_is_manifest(manifest_path)?;
    let bytes = if trusted.is_empty() {
        bundle::read_unvouched_bytes(manifest_path)?
    } else {
        read_manifest_bytes(manifest_path)?
    };
    let sig_path = signature::signature_path(manifest_path);
    // With trusted keys, the signature is checked over the raw bytes before
    // anything in them is parsed, as verify does. A check that fails still
    // shows the manifest, read as the untrusted file it then is (bounded
    // as such), so that the reader sees what it claims and that it failed.
    let keys = (!trusted.is_empty()).then_some(trusted);
    let (manifest, verified, refused) = match bundle::authenticate(manifest_path, &bytes, keys) {
        Ok((m, v)) => (m, v, None),
        Err(e @ (Error::BadSignature { .. } | Error::UntrustedSigner { .. })) => {
            let Ok(m) = crate::format::manifest::Manifest::parse(&bytes, manifest_path) else {
                return Err(e);
            };
            (m, None, Some(e))
        }
        Err(e) => return Err(e),
    };
    let unbound = crate::binding::unchecked_channel(&manifest);
    let (check, channel) = match (verified, refused) {
        (_, Some(Error::UntrustedSigner { key_id, .. })) => {
            (SignatureCheck::Untrusted { key_id }, unbound)
        }
        (_, Some(e)) => (
            SignatureCheck::Failed {
                reason: e.to_string(),
            },
            unbound,
        ),
        (None, None) => {
            let claimed = signature::read_signature(&sig_path)
                .and_then(|s| signature::signature_key_id(&s, &sig_path))
                .ok();
            let check = SignatureCheck::NotChecked {
                claimed_key_id: claimed,
            };
            (check, unbound)
        }
        (Some(v), None) => match bundle::bind(&v, &manifest, manifest_path, trusted) {
            Ok(channel) => {
                let check = SignatureCheck::Trusted {
                    key_id: v.key_id,
                    party: v.party,
                };
                (check, channel)
            }
            Err(e) => {
                let channel = match &e {
                    Error::ChannelClaim { signer, .. } => ChannelBinding::Refused {
                        signer: signer.clone(),
                    },
                    _ => unbound,
                };
                let check = SignatureCheck::Failed {
                    reason: e.to_string(),
                };
                (check, channel)
            }
        },
    };
    let sha256 = sha256_hex(&bytes);
    let (parts, recut) = match crate::cut::read(manifest_path, &manifest, &sha256, keys) {
        Ok((parts, recut)) => (parts, recut.map(Ok)),
        Err(e) => (manifest.payload.parts.clone(), Some(Err(e.to_string()))),
    };
    let payload_present = payload_present(manifest_path, &manifest, &parts);
    Ok(InspectReport {
        manifest_path: manifest_path.to_path_buf(),
        manifest_sha256: sha256,
        signature: check,
        channel,
        payload_present,
        post_quantum: manifest.is_post_quantum(),
        header: bundle::header_recipients(manifest_path, &manifest, &parts)
            .map_err(|e| e.to_string()),
        parts,
        recut,
        manifest,
    })
}
