//! Signatures of outer manifests, in minisign's format.
//!
//! A bundle's `NAME.toml.minisig` is an ordinary minisign signature (Ed25519,
//! prehashed with BLAKE2b), so `minisign -V` checks it too. Its *trusted
//! comment*, which minisign signs but does not interpret, carries the bundle id
//! and name; pouch checks that they agree with the manifest, so a signature
//! cannot be presented as belonging to another bundle.
//!
//! Keys are minisign's own files: `minisign -G` keys work here, and keys
//! written by [`generate`] work with `minisign`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A signature file larger than this is not a minisign signature.
const MAX_SIG_BYTES: u64 = 16 * 1024;

/// The prefix of the trusted comment pouch writes.
const COMMENT_PREFIX: &str = "pouch bundle_id:";

/// A secret key, ready to sign.
pub struct SigningKey {
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
    /// The key id, 16 uppercase hex digits.
    pub key_id: String,
}

/// A public key the user trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pk: minisign::PublicKey,
    /// The key id, 16 uppercase hex digits.
    pub key_id: String,
    /// Where it came from (a file, or the key itself given on the command line).
    pub source: String,
    /// The keyring party it belongs to, when it came from the keyring.
    pub party: Option<String>,
    /// When the keyring says it became the party's signing key, if it says.
    pub valid_from: Option<time::OffsetDateTime>,
    /// When the next key replaced it (rotation), if it was replaced.
    pub valid_until: Option<time::OffsetDateTime>,
    /// When and why its party revoked it, if it did: then nothing it signed
    /// is accepted (see [`verify_stream`]).
    pub revoked: Option<String>,
}

/// The text of a new key pair's files.
pub struct NewKeyPair {
    /// The secret key file (`NAME.minisign.key`).
    pub secret: String,
    /// The public key file (`NAME.minisign.pub`).
    pub public: String,
    /// The key id.
    pub key_id: String,
}

fn key_id_of(keynum: &[u8]) -> String {
    let mut le = [0u8; 8];
    le.copy_from_slice(&keynum[..8]);
    format!("{:016X}", u64::from_le_bytes(le))
}

/// Generates a key pair; the secret key is encrypted with `passphrase` when given.
pub fn generate(passphrase: Option<String>) -> Result<NewKeyPair> {
    let fail = |e: minisign::PError| Error::Internal(format!("cannot generate a signing key: {e}"));
    let kp = match passphrase {
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)).map_err(fail)?,
        None => minisign::KeyPair::generate_unencrypted_keypair().map_err(fail)?,
    };
    let key_id = key_id_of(kp.pk.keynum());
    let secret = kp
        .sk
        .to_box(Some(&format!("pouch signing key {key_id}")))
        .map_err(fail)?
        .into_string();
    let public = kp.pk.to_box().map_err(fail)?.into_string();
    Ok(NewKeyPair {
        secret,
        public,
        key_id,
    })
}

impl SigningKey {
    /// Loads a minisign secret key file. If it is encrypted, `passphrase` is
    /// called to get the passphrase, once.
    pub fn load(path: &Path, passphrase: &mut dyn FnMut() -> Result<String>) -> Result<SigningKey> {
        SigningKey::load_trying(path, 1, passphrase)
    }

    /// [`SigningKey::load`], asking for the passphrase up to `tries` times
    /// while it is wrong (on a terminal, as ssh and minisign do).
    pub fn load_trying(
        path: &Path,
        tries: u32,
        passphrase: &mut dyn FnMut() -> Result<String>,
    ) -> Result<SigningKey> {
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_small(path, 64 * 1024)?;
        let text = String::from_utf8(text)
            .map_err(|_| bad("not a minisign secret key (not text)".into()))?;
        if let Some(e) = crate::mixup::as_signing_key(path, &text) {
            return Err(e);
        }
        if !text.starts_with("untrusted comment:") {
            return Err(bad("not a minisign secret key file".into()));
        }
        let sk_box = minisign::SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
        let sk = match minisign::SecretKey::from_unencrypted_box(sk_box.clone()) {
            Ok(sk) => sk,
            Err(e) if e.to_string().contains("encrypted") => {
                crate::passphrase::retry(tries, || {
                    let p = passphrase()?;
                    sk_box
                        .clone()
                        .into_secret_key(Some(p))
                        .map_err(|_| Error::WrongPassphrase {
                            path: path.to_path_buf(),
                        })
                })?
            }
            Err(e) => match unprotected_without_checksum(&text) {
                Some(sk) => sk,
                None => return Err(bad(format!("not a minisign secret key ({e})"))),
            },
        };
        let pk = minisign::PublicKey::from_secret_key(&sk).map_err(|e| bad(e.to_string()))?;
        let key_id = key_id_of(pk.keynum());
        let key = SigningKey { sk, pk, key_id };
        // A damaged key must not produce signatures nobody can check: sign a
        // probe and verify it with the derived public key.
        key.sign_manifest(&mut &b"probe"[..], "probe", "probe")
            .map_err(|_| {
                bad("the key is damaged: its secret and public halves do not match".into())
            })?;
        Ok(key)
    }

    /// The matching public key, as a trusted key.
    pub fn trusted(&self) -> TrustedKey {
        TrustedKey {
            source: "the signing key".into(),
            ..TrustedKey::bare(self.pk.clone())
        }
    }

    /// Signs `data` with the given trusted and untrusted comments; returns
    /// the text of the `.minisig` file.
    pub fn sign_with_comment(&self, data: &[u8], trusted: &str, untrusted: &str) -> Result<String> {
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(data),
            Some(trusted),
            Some(untrusted),
        )
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))?;
        Ok(sig.into_string())
    }

    /// Signs a manifest's exact bytes; returns the text of the `.minisig` file.
    pub fn sign_manifest(
        &self,
        manifest: &mut dyn std::io::Read,
        bundle_id: &str,
        name: &str,
    ) -> Result<String> {
        let trusted = format!("{COMMENT_PREFIX}{bundle_id} name:{name}");
        let untrusted = format!("pouch signature of {name}.toml");
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            manifest,
            Some(&trusted),
            Some(&untrusted),
        )
        .map_err(|e| Error::Internal(format!("signing failed: {e}")))?;
        Ok(sig.into_string())
    }
}

/// `minisign -G -W` (minisign 0.11) writes unprotected keys with an all-zero
/// checksum, which the minisign crate rejects. Such a key is accepted here
/// when its KDF is "none" and its checksum is all zeros; the caller then
/// checks it by signing a probe.
fn unprotected_without_checksum(text: &str) -> Option<minisign::SecretKey> {
    use ct_codecs::{Base64, Decoder};
    let line = text.lines().nth(1)?.trim();
    let bytes = Base64::decode_to_vec(line, None).ok()?;
    // sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8) keynum(8) sk(64) chk(32)
    if bytes.len() != 158 || &bytes[..2] != b"Ed" || bytes[2..4] != [0, 0] {
        return None;
    }
    if bytes[126..].iter().any(|&b| b != 0) {
        return None;
    }
    minisign::SecretKey::from_bytes(&bytes).ok()
}

impl TrustedKey {
    /// `pk` with its key id, from nowhere in particular, of no party.
    fn bare(pk: minisign::PublicKey) -> TrustedKey {
        TrustedKey {
            key_id: key_id_of(pk.keynum()),
            pk,
            source: String::new(),
            party: None,
            valid_from: None,
            valid_until: None,
            revoked: None,
        }
    }

    /// The key's full fingerprint: the sha256 of its base64 text (the second
    /// line of its `.pub` file), in groups of four hex digits to be read out
    /// by phone. `sed -n 2p KEY.pub | tr -d '\n' | sha256sum` gives the same.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        group(&hex::encode(sha2::Sha256::digest(
            self.to_base64().as_bytes(),
        )))
    }

    /// Parses a base64 public key (`RW…`), never a file: keys stored in the
    /// keyring are read this way.
    pub fn from_base64(key: &str) -> Result<TrustedKey> {
        let pk = minisign::PublicKey::from_base64(key).map_err(|e| Error::BadKey {
            path: PathBuf::from("(key)"),
            reason: format!("not a minisign public key ({e})"),
        })?;
        Ok(TrustedKey {
            source: key.to_string(),
            ..TrustedKey::bare(pk)
        })
    }

    /// Parses `arg` as a base64 public key (`RW…`) when it is one, else
    /// loads it from that minisign `.pub` file. A key is never looked up as
    /// a path: base64 holds `/`, and a file planted under a key's name (on
    /// the medium, in the folder pouch runs in) must not stand for the key.
    pub fn load(arg: &str) -> Result<TrustedKey> {
        if let Ok(key) = TrustedKey::from_base64(arg.trim()) {
            return Ok(key);
        }
        if let Some(e) = crate::mixup::as_public_key(None, arg) {
            return Err(e);
        }
        let path = Path::new(arg);
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        let pk = if path.exists() {
            let text = read_small(path, 16 * 1024)?;
            let text =
                String::from_utf8(text).map_err(|_| bad("not a minisign public key".into()))?;
            if let Some(e) = crate::mixup::as_public_key(Some(path), &text) {
                return Err(e);
            }
            // A .pub file has a comment line and the key; a bare key line is accepted too.
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
                .unwrap_or("");
            minisign::PublicKey::from_base64(line)
                .map_err(|e| bad(format!("not a minisign public key ({e})")))?
        } else if arg.starts_with("RW") {
            minisign::PublicKey::from_base64(arg)
                .map_err(|e| bad(format!("not a minisign public key ({e})")))?
        } else {
            return Err(Error::io(
                "reading",
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        Ok(TrustedKey {
            source: arg.to_string(),
            ..TrustedKey::bare(pk)
        })
    }

    /// Whether `other` is the same public key (not merely the same key id).
    pub fn same_key(&self, other: &TrustedKey) -> bool {
        self.pk.to_base64() == other.pk.to_base64()
    }

    /// The key itself in base64, as minisign prints it.
    pub fn to_base64(&self) -> String {
        self.pk.to_base64()
    }
}

/// The passphrase in the first line of `path` (`--passphrase-file`).
pub fn read_passphrase_file(path: &Path) -> Result<String> {
    let text = read_small(path, 64 * 1024)?;
    let text = String::from_utf8(text).map_err(|_| Error::BadKey {
        path: path.to_path_buf(),
        reason: "the passphrase file is not UTF-8 text".into(),
    })?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(Error::BadKey {
            path: path.to_path_buf(),
            reason: "the passphrase file's first line is empty".into(),
        });
    }
    Ok(line)
}

/// What a checked signature says.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signer's key id (display only: anyone can make a key with any id).
    pub key_id: String,
    /// The keyring party of the key that verified the signature, if it came
    /// from the keyring; never looked up by key id.
    pub party: Option<String>,
    /// The trusted comment, verified.
    pub trusted_comment: String,
    /// From when the key spoke for its party, as the keyring says.
    pub valid_from: Option<time::OffsetDateTime>,
    /// From when it no longer did (the next key's `valid_from`).
    pub valid_until: Option<time::OffsetDateTime>,
}

impl Verified {
    /// Checks that the key was its party's signing key at `made`, the time
    /// a signed record says it was made and signed (a manifest's
    /// `created`): from the key's `valid_from`, and before the next key's.
    ///
    /// That time is the signer's own word: it separates what an honest
    /// party signed before and after a rotation, but whoever holds an old
    /// key can write any time. A key that may be in other hands is revoked,
    /// not rotated.
    pub fn check_made_at(&self, made: &str, sig_path: &Path) -> Result<()> {
        self.check_at(made, sig_path, true)
    }

    /// [`Verified::check_made_at`] for a record that may be signed later
    /// than the time it gives (a receipt's `received`, a ledger head's
    /// `time`): a newer key may vouch for it, a key replaced before that
    /// time may not.
    pub fn check_not_replaced_at(&self, at: &str, sig_path: &Path) -> Result<()> {
        self.check_at(at, sig_path, false)
    }

    fn check_at(&self, claimed: &str, sig_path: &Path, since: bool) -> Result<()> {
        if self.valid_until.is_none() && (!since || self.valid_from.is_none()) {
            return Ok(());
        }
        let fail = |reason: String| Error::KeyNotInForce {
            path: sig_path.to_path_buf(),
            key_id: self.key_id.clone(),
            party: self.party.clone().unwrap_or_else(|| "?".into()),
            reason,
        };
        let at = crate::format::manifest::parse_time(claimed).map_err(&fail)?;
        let show = crate::format::manifest::format_time;
        if let Some(from) = self.valid_from.filter(|&from| since && at < from) {
            return Err(fail(format!(
                "which is its key only from {}, but the signed record says it was made at {}",
                show(from),
                show(at)
            )));
        }
        if let Some(until) = self.valid_until.filter(|&until| at >= until) {
            return Err(fail(format!(
                "which its next key replaced from {}, but the signed record says it was made at {}",
                show(until),
                show(at)
            )));
        }
        Ok(())
    }
}

/// Reads a `.minisig` file.
pub fn read_signature(path: &Path) -> Result<String> {
    // What is wrong with a file on the medium is the bundle's fault (exit 1),
    // not the operator's: a missing or oversized signature fails the bundle.
    let bytes = match crate::disk::durable::read_capped(path, MAX_SIG_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(Error::BadSignature {
                path: path.to_path_buf(),
                reason: format!(
                    "larger than {MAX_SIG_BYTES} bytes; a minisign signature is a few hundred"
                ),
            })
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::BadSignature {
                path: path.to_path_buf(),
                reason: "missing: copy the .minisig file next to the manifest".into(),
            })
        }
        Err(e) => return Err(e),
    };
    // The untrusted comment is not signed and may be in any encoding; the
    // signed lines are ASCII (base64) and the trusted comment, which a lossy
    // conversion would change and so fail to verify.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Checks the shape of a `.minisig` before the minisign crate reads it: four
/// lines, the signature 74 bytes and the global signature 64 bytes of
/// base64. (minisign 0.10 panics on a short global signature.)
fn check_shape(sig_text: &str) -> std::result::Result<(), String> {
    use ct_codecs::{Base64, Decoder};
    let lines: Vec<&str> = sig_text.lines().collect();
    if lines.len() < 4 {
        return Err(format!(
            "has {} lines, a minisign signature has 4",
            lines.len()
        ));
    }
    if !lines[0].starts_with("untrusted comment:") || !lines[2].starts_with("trusted comment:") {
        return Err("its comment lines are missing".into());
    }
    let decoded = |line: &str| {
        Base64::decode_to_vec(line.trim(), None)
            .map(|v| v.len())
            .unwrap_or(0)
    };
    if decoded(lines[1]) != 74 {
        return Err("its signature line is not 74 bytes of base64".into());
    }
    if decoded(lines[3]) != 64 {
        return Err("its global signature line is not 64 bytes of base64".into());
    }
    if lines.iter().skip(4).any(|l| !l.trim().is_empty()) {
        return Err("it has more than 4 lines".into());
    }
    Ok(())
}

/// The key id a signature claims, without checking it.
pub fn signature_key_id(sig_text: &str, sig_path: &Path) -> Result<String> {
    let sig = minisign::SignatureBox::from_string(sig_text).map_err(|e| Error::BadSignature {
        path: sig_path.to_path_buf(),
        reason: format!("not a minisign signature ({e})"),
    })?;
    Ok(key_id_of(sig.keynum()))
}

/// Checks that `sig_text` is a valid signature of `data` by one of `trusted`.
pub fn verify(
    data: &[u8],
    sig_text: &str,
    sig_path: &Path,
    trusted: &[TrustedKey],
) -> Result<Verified> {
    verify_stream(&mut Cursor::new(data), sig_text, sig_path, trusted)
}

/// [`verify`] for data read from `data` (from its start, once per candidate
/// key), so that a file need not be in memory: minisign prehashes.
pub fn verify_stream<R: std::io::Read + std::io::Seek>(
    data: &mut R,
    sig_text: &str,
    sig_path: &Path,
    trusted: &[TrustedKey],
) -> Result<Verified> {
    let bad = |reason: String| Error::BadSignature {
        path: sig_path.to_path_buf(),
        reason,
    };
    check_shape(sig_text).map_err(|r| bad(format!("not a valid minisign signature: {r}")))?;
    let sig = minisign::SignatureBox::from_string(sig_text)
        .map_err(|e| bad(format!("not a minisign signature ({e})")))?;
    let key_id = key_id_of(sig.keynum());
    // The key id in a signature is a hint chosen by whoever made the key:
    // every trusted key that carries it is tried, and only the full public
    // key that verifies the signature counts.
    let candidates: Vec<&TrustedKey> = trusted.iter().filter(|k| k.key_id == key_id).collect();
    if candidates.is_empty() {
        return Err(Error::UntrustedSigner {
            path: sig_path.to_path_buf(),
            key_id,
        });
    }
    if !sig.is_prehashed() {
        return Err(bad(
            "legacy (non-prehashed) signatures are not accepted".into()
        ));
    }
    let mut last_error = None;
    for key in candidates {
        data.rewind()
            .map_err(|e| bad(format!("the signed file cannot be read again ({e})")))?;
        match minisign::verify(&key.pk, &sig, &mut *data, true, false, false) {
            Ok(()) => {
                let trusted_comment = sig.trusted_comment().map_err(|e| bad(e.to_string()))?;
                // The same key may be given twice (a --trust file and the
                // keyring): the keyring's entry names its party and its
                // validity, and a revocation anywhere wins.
                let same = || trusted.iter().filter(|k| k.same_key(key));
                if let Some(k) = same().find(|k| k.revoked.is_some()) {
                    return Err(Error::RevokedKey {
                        path: sig_path.to_path_buf(),
                        key_id,
                        party: k.party.clone().unwrap_or_else(|| "?".into()),
                        revoked: k.revoked.clone().unwrap_or_default(),
                    });
                }
                let entry = same().find(|k| k.party.is_some()).unwrap_or(key);
                return Ok(Verified {
                    key_id,
                    party: entry.party.clone(),
                    trusted_comment,
                    valid_from: entry.valid_from,
                    valid_until: entry.valid_until,
                });
            }
            Err(e) => last_error = Some(e),
        }
    }
    let why = last_error.map(|e| e.to_string()).unwrap_or_default();
    Err(bad(format!("does not match the manifest ({why})")))
}

/// Checks that a verified trusted comment names this bundle.
pub fn check_trusted_comment(
    comment: &str,
    bundle_id: &str,
    name: &str,
    sig_path: &Path,
) -> Result<()> {
    let want = format!("{COMMENT_PREFIX}{bundle_id} name:{name}");
    if comment == want {
        Ok(())
    } else {
        Err(Error::BadSignature {
            path: sig_path.to_path_buf(),
            reason: format!(
                "its trusted comment {:?} does not name this bundle ({want:?})",
                crate::format::names::escape(comment)
            ),
        })
    }
}

/// The conventional signature path of a manifest: `NAME.toml.minisig`.
pub fn signature_path(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".minisig");
    PathBuf::from(s)
}

/// `hex` in groups of four digits.
pub fn group(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_small(path: &Path, max: u64) -> Result<Vec<u8>> {
    crate::disk::durable::read_capped(path, max)?.ok_or_else(|| Error::BadKey {
        path: path.to_path_buf(),
        reason: format!("larger than {max} bytes, too large for a key or signature"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair(dir: &Path) -> (SigningKey, TrustedKey) {
        let kp = generate(None).expect("generate");
        std::fs::write(dir.join("k.key"), &kp.secret).expect("write");
        std::fs::write(dir.join("k.pub"), &kp.public).expect("write");
        let sk = SigningKey::load(&dir.join("k.key"), &mut || panic!("no passphrase needed"))
            .expect("load");
        let pk = TrustedKey::load(dir.join("k.pub").to_str().expect("utf8")).expect("load pub");
        assert_eq!(sk.key_id, pk.key_id);
        (sk, pk)
    }

    #[test]
    fn sign_then_verify_and_detect_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sk, pk) = key_pair(dir.path());
        let sig = sk
            .sign_manifest(&mut &b"manifest"[..], "id", "n")
            .expect("sign");
        let p = Path::new("m.toml.minisig");
        let v = verify(b"manifest", &sig, p, std::slice::from_ref(&pk)).expect("verifies");
        check_trusted_comment(&v.trusted_comment, "id", "n", p).expect("names the bundle");
        assert!(check_trusted_comment(&v.trusted_comment, "other", "n", p).is_err());
        assert!(matches!(
            verify(b"manifesT", &sig, p, &[pk]),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            verify(b"manifest", &sig, p, &[]),
            Err(Error::UntrustedSigner { .. })
        ));
    }

    #[test]
    fn encrypted_key_asks_for_the_passphrase() {
        let kp = generate(Some("correct horse".into())).expect("generate");
        let (_dir, path) = crate::scratch::file("k.key", Some(kp.secret.as_bytes()));
        let mut asked = 0;
        let sk = SigningKey::load(&path, &mut || {
            asked += 1;
            Ok("correct horse".into())
        })
        .expect("loads with passphrase");
        assert_eq!(asked, 1);
        assert_eq!(sk.key_id, kp.key_id);
        let err = SigningKey::load(&path, &mut || Ok("wrong".into()));
        assert!(matches!(err, Err(Error::WrongPassphrase { .. })));
        // On a terminal: asked again while wrong, three times at most.
        let mut answers = ["wrong", "wrong again", "correct horse"].into_iter();
        let mut asked = 0;
        let sk = SigningKey::load_trying(&path, 3, &mut || {
            asked += 1;
            Ok(answers.next().unwrap_or_default().into())
        })
        .expect("the third try is right");
        assert_eq!((asked, sk.key_id), (3, kp.key_id.clone()));
        let mut asked = 0;
        let err = SigningKey::load_trying(&path, 3, &mut || {
            asked += 1;
            Ok("wrong".into())
        });
        assert_eq!(asked, 3);
        let hint = err.err().map(|e| e.hint()).unwrap_or_default();
        assert!(hint.contains("check the passphrase"), "{hint}");
    }
}
