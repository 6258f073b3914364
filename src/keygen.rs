//! Making key pairs in the stock tools' formats.
//!
//! `pouch keygen --name NAME` writes four files: an age identity
//! (`NAME.age-identity`, age-keygen's format, mode 0600; X25519, or with
//! `--pq` the post-quantum `mlkem768x25519` type), its recipient
//! (`NAME.age-recipient`), and a minisign key pair (`NAME.minisign.key`, mode
//! 0600, passphrase-protected unless asked otherwise, and `NAME.minisign.pub`).
//! Nothing existing is overwritten: if any of the four exists, nothing is written.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::durable;
use crate::error::{Error, Result};
use crate::format::manifest;
use crate::payload::crypto;
use crate::signature;

/// What keygen wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenReport {
    /// The age identity file (secret).
    pub identity_path: PathBuf,
    /// The age recipient file (public).
    pub recipient_path: PathBuf,
    /// The minisign secret key file.
    pub signing_key_path: PathBuf,
    /// The minisign public key file.
    pub signing_pub_path: PathBuf,
    /// The age recipient, `age1…`.
    pub recipient: String,
    /// The recipient's fingerprint, as manifests show it.
    pub recipient_fingerprint: String,
    /// The recipient's kind, as manifests show it: `x25519` or `mlkem768x25519`.
    pub recipient_kind: String,
    /// The minisign key id.
    pub key_id: String,
    /// Whether the signing key is passphrase-protected.
    pub passphrase_protected: bool,
}

/// The four file paths keygen writes for `name` in `dir`.
pub fn key_paths(dir: &Path, name: &str) -> [PathBuf; 4] {
    [
        dir.join(format!("{name}.age-identity")),
        dir.join(format!("{name}.age-recipient")),
        dir.join(format!("{name}.minisign.key")),
        dir.join(format!("{name}.minisign.pub")),
    ]
}

/// Generates and writes the key files for `name` in `dir`.
pub fn keygen(
    name: &str,
    dir: &Path,
    passphrase: Option<String>,
    post_quantum: bool,
) -> Result<KeygenReport> {
    manifest::check_party_name(name).map_err(|e| Error::Usage(format!("key name {e}")))?;
    if !dir.is_dir() {
        return Err(Error::Refused(format!(
            "key folder {} does not exist; create it first (mkdir {})",
            dir.display(),
            dir.display()
        )));
    }
    let paths = key_paths(dir, name);
    for p in &paths {
        durable::ensure_absent(p)?;
    }
    let [identity_path, recipient_path, signing_key_path, signing_pub_path] = paths;
    let created = manifest::format_time(time::OffsetDateTime::now_utc());
    let (identity_text, recipient) = crypto::generate_identity(&created, post_quantum);
    let protected = passphrase.is_some();
    let pair = signature::generate(passphrase)?;

    durable::write_new(&identity_path, identity_text.as_bytes(), 0o600)?;
    durable::write_new(&recipient_path, format!("{recipient}\n").as_bytes(), 0o644)?;
    durable::write_new(&signing_key_path, pair.secret.as_bytes(), 0o600)?;
    durable::write_new(&signing_pub_path, pair.public.as_bytes(), 0o644)?;
    Ok(KeygenReport {
        identity_path,
        recipient_path,
        signing_key_path,
        signing_pub_path,
        recipient_fingerprint: crypto::fingerprint(&recipient),
        recipient_kind: recipient.kind().into(),
        recipient: recipient.to_string(),
        key_id: pair.key_id,
        passphrase_protected: protected,
    })
}
