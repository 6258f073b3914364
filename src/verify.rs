//! Checking a bundle: signature, payload, and (with an identity) contents.
//!
//! [`crate::bundle`] opens the bundle and does the checks, in the order its
//! docs give; this is the operation over it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::format::manifest::Manifest;
use crate::payload::archive::NullSink;
use crate::payload::crypto;

pub use crate::bundle::{read_manifest_bytes, SignatureStatus, Trust};

/// What to verify.
#[derive(Clone)]
pub struct VerifyOptions {
    /// The outer manifest.
    pub manifest: PathBuf,
    /// Signature policy.
    pub trust: Trust,
    /// Identities; when given, the contents are checked too.
    pub identities: Vec<crypto::Identity>,
    /// More folders to look for payload parts in.
    pub parts_from: Vec<PathBuf>,
    /// Where progress goes.
    pub progress: crate::progress::Handle,
}

/// The outcome of a successful verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The manifest checked.
    pub manifest_path: PathBuf,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
    /// The bundle id.
    pub bundle_id: String,
    /// The bundle name.
    pub name: String,
    /// Signature status.
    pub signature: SignatureStatus,
    /// Whether the sender party vouched for the channel the manifest names.
    pub channel: crate::bundle::ChannelBinding,
    /// The payload file.
    pub payload_path: PathBuf,
    /// Its size, checked.
    pub payload_size: u64,
    /// Its sha256, checked.
    pub payload_sha256: String,
    /// True when the contents were decrypted and checked entry by entry.
    pub contents_checked: bool,
    /// Files in the bundle.
    pub files: u64,
    /// Folders in the bundle.
    pub folders: u64,
    /// Bytes in the bundle's files.
    pub total_bytes: u64,
    /// The manifest, as verified: nothing needs to read it again.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Verifies a bundle; see the module docs for what is checked.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport> {
    let bundle = crate::bundle::open(&opts.manifest, &opts.trust)?
        .with_parts_from(&opts.parts_from)
        .with_progress(&opts.progress);
    let checked = match opts.identities.is_empty() {
        true => bundle.check_payload(),
        false => bundle
            .check_contents(&opts.identities, &mut NullSink)
            .map(drop),
    };
    checked.map_err(|e| bundle.with_parity(e))?;
    let m = &bundle.manifest;
    Ok(VerifyReport {
        manifest_path: bundle.manifest_path.clone(),
        manifest_sha256: bundle.manifest_sha256.clone(),
        bundle_id: m.bundle_id.clone(),
        name: m.name.clone(),
        signature: bundle.signature.clone(),
        channel: bundle.channel.clone(),
        payload_path: bundle.payload_path.clone(),
        payload_size: m.payload.size,
        payload_sha256: m.payload.sha256.clone(),
        contents_checked: !opts.identities.is_empty(),
        files: m.contents.files,
        folders: m.contents.folders,
        total_bytes: m.contents.total_bytes,
        manifest: bundle.manifest,
    })
}

/// Appends the outcome of a verify of `manifest` to the ledger at `ledger`
/// (`verify --record`): verified, from the manifest the verify checked, or
/// rejected with the reason. A rejected manifest is read again only to name
/// what was rejected; nothing in it is believed.
pub fn record(ledger: &Path, manifest: &Path, result: &Result<VerifyReport>) -> Result<()> {
    use crate::custody::ledger::{record_verify, VerifyOutcome};
    match result {
        Ok(r) => {
            let outcome = VerifyOutcome::Passed {
                contents_checked: r.contents_checked,
            };
            record_verify(
                ledger,
                Some((&r.manifest, &r.manifest_sha256)),
                None,
                &outcome,
            )?;
        }
        Err(e) => {
            let outcome = VerifyOutcome::Failed {
                reason: e.to_string(),
            };
            let bytes = read_manifest_bytes(manifest).ok();
            let parsed = bytes
                .as_ref()
                .and_then(|b| Manifest::parse(b, manifest).ok());
            let sha = bytes
                .as_ref()
                .map(|b| crate::payload::hashing::sha256_hex(b))
                .unwrap_or_default();
            let name = manifest
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            let about = parsed.as_ref().map(|m| (m, sha.as_str()));
            record_verify(ledger, about, name, &outcome)?;
        }
    }
    Ok(())
}
