//! The age layer: recipients, identities, fingerprints, and the encrypting and
//! decrypting streams.
//!
//! Key files are in the stock formats: identity files as `age-keygen` writes
//! them (comment lines starting with `#`, one `AGE-SECRET-KEY-1…` per line) and
//! recipients files as `age -R` reads them (one `age1…` per line, `#` comments).
//! pouch parses them itself so that it can report a bad line by number without
//! ever echoing secret material.

use std::io::Write;
use std::path::Path;

use age::secrecy::ExposeSecret;
use age::x25519;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// An identity file larger than this is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// A short, stable, public name for a recipient: the first 16 hex digits of
/// the sha256 of its `age1…` string. It identifies the key without revealing it.
pub fn fingerprint(recipient: &x25519::Recipient) -> String {
    let digest = Sha256::digest(recipient.to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// Parses one `age1…` recipient.
pub fn parse_recipient(s: &str) -> Result<x25519::Recipient> {
    let s = s.trim();
    s.parse::<x25519::Recipient>()
        .map_err(|reason| Error::BadRecipient {
            recipient: s.to_string(),
            reason: if s.starts_with("age1pq1") {
                "post-quantum recipients are not supported by this version of pouch".into()
            } else {
                reason.to_string()
            },
        })
}

/// Reads a recipients file: one `age1…` per line, blank lines and `#` comments ignored.
pub fn read_recipients_file(path: &Path) -> Result<Vec<x25519::Recipient>> {
    let text = read_small_text(path)?;
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let r = parse_recipient(line).map_err(|e| Error::BadKey {
            path: path.to_path_buf(),
            reason: format!("line {}: {e}", no + 1),
        })?;
        out.push(r);
    }
    if out.is_empty() {
        return Err(Error::BadKey {
            path: path.to_path_buf(),
            reason: "no recipients in this file".into(),
        });
    }
    Ok(out)
}

/// Reads an identity file as written by `age-keygen` or `pouch keygen`.
pub fn read_identity_file(path: &Path) -> Result<Vec<x25519::Identity>> {
    let text = read_small_text(path)?;
    let bad = |reason: String| Error::BadKey {
        path: path.to_path_buf(),
        reason,
    };
    if text.starts_with("age-encryption.org/")
        || text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Err(bad(
            "this identity file is itself encrypted; decrypt it first with age -d".into(),
        ));
    }
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Never echo the line: it may be secret.
        if line.starts_with("AGE-SECRET-KEY-PQ-") {
            return Err(bad(format!(
                "line {}: post-quantum identities are not supported by this version of pouch",
                no + 1
            )));
        }
        let id = line
            .parse::<x25519::Identity>()
            .map_err(|e| bad(format!("line {}: not an age identity ({e})", no + 1)))?;
        out.push(id);
    }
    if out.is_empty() {
        return Err(bad("no AGE-SECRET-KEY-1… line in this file".into()));
    }
    Ok(out)
}

/// A new X25519 identity, as the text of an identity file (age-keygen's format)
/// and the matching recipient.
pub fn generate_identity(created: &str) -> (String, x25519::Recipient) {
    let id = x25519::Identity::generate();
    let recipient = id.to_public();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    (text, recipient)
}

/// Starts an age stream to `recipients` on `w`. The caller must call
/// `finish()` on the result.
pub fn encrypt<W: Write>(
    recipients: &[x25519::Recipient],
    w: W,
) -> Result<age::stream::StreamWriter<W>> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Usage(format!("cannot encrypt to these recipients: {e}")))?;
    encryptor
        .wrap_output(w)
        .map_err(|e| Error::io("payload", e))
}

/// Opens an age stream from `r` with `identities`. `fingerprints` are the
/// bundle's recipients, named in the error when no identity matches.
pub fn decrypt<R: std::io::BufRead>(
    r: R,
    identities: &[x25519::Identity],
    bundle_fingerprints: &[String],
    corrupt: &dyn Fn(String) -> Error,
) -> Result<age::stream::StreamReader<R>> {
    let decryptor = age::Decryptor::new_buffered(r)
        .map_err(|e| map_decrypt_error(e, identities, bundle_fingerprints, corrupt))?;
    if decryptor.is_scrypt() {
        return Err(corrupt(
            "the payload is passphrase-encrypted; pouch bundles are encrypted to recipients".into(),
        ));
    }
    decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| map_decrypt_error(e, identities, bundle_fingerprints, corrupt))
}

fn map_decrypt_error(
    e: age::DecryptError,
    identities: &[x25519::Identity],
    bundle: &[String],
    corrupt: &dyn Fn(String) -> Error,
) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::NoMatchingIdentity {
            bundle: bundle.to_vec(),
            given: identities
                .iter()
                .map(|i| fingerprint(&i.to_public()))
                .collect(),
        },
        other => corrupt(format!("age: {other}")),
    }
}

fn read_small_text(path: &Path) -> Result<String> {
    let bad = |reason: &str| Error::BadKey {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let bytes = crate::durable::read_capped(path, MAX_KEY_FILE_BYTES)?
        .ok_or_else(|| bad("larger than a key file can be"))?;
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_parses_back_and_matches_its_recipient() {
        let (text, recipient) = generate_identity("2026-11-29T00:00:00Z");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, &text).expect("write");
        let ids = read_identity_file(&path).expect("parses");
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_public(), recipient);
        assert!(text.contains(&format!("# public key: {recipient}")));
        assert_eq!(fingerprint(&recipient).len(), 16);
    }

    #[test]
    fn bad_identity_lines_are_reported_without_echoing_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, "# comment\nAGE-SECRET-KEY-1SECRETSECRET\n").expect("write");
        let Err(err) = read_identity_file(&path) else {
            panic!("a bad line must be refused")
        };
        let err = err.to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SECRETSECRET"), "{err}");
    }
}
