//! The age layer: recipients, identities, fingerprints, and (from
//! [`crate::payload::header`]) the encrypting and decrypting streams.
//!
//! Two recipient types are supported: classic X25519 (`age1…`,
//! `AGE-SECRET-KEY-1…`) and the hybrid post-quantum ML-KEM-768 + X25519 type
//! (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`, see [`crate::payload::pq`]). A payload is sealed
//! to recipients of one kind only.
//!
//! Key files are in the stock formats: identity files as `age-keygen` writes
//! them (comment lines starting with `#`, one identity per line) and
//! recipients files as `age -R` reads them (one recipient per line, `#`
//! comments). pouch parses them itself so that it can report a bad line by
//! number without ever echoing secret material, and because the age crate's
//! parsers do not know the post-quantum type.

use std::fmt;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::payload::header;
pub use crate::payload::header::{
    kind_of_tag, stanza_problem, stanza_tags, HeaderTap, GREASE, MAX_HEADER_BYTES,
};
pub use crate::payload::header::{Opened, Plaintext};
use crate::payload::pq;

pub use crate::format::manifest::{KIND_PQ, KIND_X25519};

/// An age recipient pouch can seal to.
#[derive(Clone, PartialEq, Eq)]
pub enum Recipient {
    /// `age1…`: X25519.
    X25519(x25519::Recipient),
    /// `age1pq1…`: ML-KEM-768 + X25519.
    PostQuantum(Box<pq::Recipient>),
}

impl Recipient {
    /// Whether the file key's encapsulation to this recipient resists a quantum computer.
    pub fn is_post_quantum(&self) -> bool {
        matches!(self, Recipient::PostQuantum(_))
    }

    /// The manifest's name for this kind of recipient: `x25519` or `mlkem768x25519`.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::X25519(_) => KIND_X25519,
            Recipient::PostQuantum(_) => KIND_PQ,
        }
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &age_core::format::FileKey,
    ) -> std::result::Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        match self {
            Recipient::X25519(r) => r.wrap_file_key(file_key),
            Recipient::PostQuantum(r) => r.wrap_file_key(file_key),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(r) => r.fmt(f),
            Recipient::PostQuantum(r) => r.fmt(f),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), fingerprint(self))
    }
}

/// An age identity pouch can decrypt with.
#[derive(Clone)]
pub enum Identity {
    /// `AGE-SECRET-KEY-1…`.
    X25519(x25519::Identity),
    /// `AGE-SECRET-KEY-PQ-1…`.
    PostQuantum(Box<pq::Identity>),
}

impl Identity {
    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        match self {
            Identity::X25519(i) => Recipient::X25519(i.to_public()),
            Identity::PostQuantum(i) => Recipient::PostQuantum(Box::new(i.to_public())),
        }
    }

    /// The identity in its file form.
    pub fn to_secret_string(&self) -> SecretString {
        match self {
            Identity::X25519(i) => i.to_string(),
            Identity::PostQuantum(i) => i.to_string(),
        }
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<std::result::Result<age_core::format::FileKey, age::DecryptError>> {
        match self {
            Identity::X25519(i) => i.unwrap_stanza(stanza),
            Identity::PostQuantum(i) => i.unwrap_stanza(stanza),
        }
    }
}

impl std::str::FromStr for Identity {
    type Err = String;

    /// Parses one identity line. The error never contains the input.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.starts_with("AGE-SECRET-KEY-PQ-") {
            s.parse::<pq::Identity>()
                .map(|i| Identity::PostQuantum(Box::new(i)))
                .map_err(|e| format!("not a post-quantum age identity ({e})"))
        } else {
            s.parse::<x25519::Identity>()
                .map(Identity::X25519)
                .map_err(|e| format!("not an age identity ({e})"))
        }
    }
}

/// Checks that `recipients` can seal one payload: never a mix of
/// post-quantum and classic keys, and post-quantum if `require_pq`. (An
/// empty list passes; pack refuses it, with its own message.)
pub fn check_recipient_set(recipients: &[Recipient], require_pq: bool) -> Result<()> {
    let pq = recipients.iter().filter(|r| r.is_post_quantum()).count();
    if pq > 0 && pq < recipients.len() {
        let classic: Vec<String> = recipients
            .iter()
            .filter(|r| !r.is_post_quantum())
            .map(fingerprint)
            .collect();
        return Err(Error::Usage(format!(
            "cannot mix post-quantum (age1pq1…) and classic (age1…) recipients in one bundle: \
             anyone who breaks the classic X25519 stanza later, with a quantum computer, \
             gets the file key, so the post-quantum ones would protect nothing. \
             Classic recipient(s): {}. Give every recipient a post-quantum key \
             (pouch keygen --pq) or seal separate bundles",
            classic.join(", ")
        )));
    }
    if require_pq && pq < recipients.len() {
        return Err(Error::Usage(
            "post-quantum recipients are required (--require-pq or require_pq in the config \
             or spec), but these recipients are classic X25519 keys; ask each recipient for an \
             age1pq1… key (pouch keygen --pq or age-keygen -pq)"
                .into(),
        ));
    }
    Ok(())
}

/// An identity file larger than this is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// A short, stable, public name for a recipient: the first 16 hex digits of
/// the sha256 of its `age1…` string. It identifies the key without revealing it.
pub fn fingerprint(recipient: &Recipient) -> String {
    let digest = Sha256::digest(recipient.to_string().as_bytes());
    hex::encode(&digest[..8])
}

/// Parses one `age1…` or `age1pq1…` recipient.
pub fn parse_recipient(s: &str) -> Result<Recipient> {
    let s = s.trim();
    let parsed = if s.starts_with("age1pq1") {
        s.parse::<pq::Recipient>()
            .map(|r| Recipient::PostQuantum(Box::new(r)))
            .map_err(str::to_string)
    } else {
        s.parse::<x25519::Recipient>()
            .map(Recipient::X25519)
            .map_err(|e| e.to_string())
    };
    parsed.map_err(|reason| {
        if let Some(e) = crate::mixup::as_recipient(s) {
            return e;
        }
        // Never echo a secret key given by mistake; of anything else, the
        // start is enough (a post-quantum recipient is 1,959 characters).
        if s.get(..15)
            .is_some_and(|p| p.eq_ignore_ascii_case("AGE-SECRET-KEY-"))
        {
            Error::BadRecipient {
                recipient: "AGE-SECRET-KEY-…".into(),
                reason: "this is a secret identity, not a recipient: give the age1… line \
                         of the .age-recipient file (and keep the identity to yourself)"
                    .into(),
            }
        } else {
            Error::BadRecipient {
                recipient: if s.chars().count() <= 90 {
                    s.to_string()
                } else {
                    s.chars().take(24).collect::<String>() + "…"
                },
                reason,
            }
        }
    })
}

/// Reads a recipients file: one `age1…` or `age1pq1…` per line, blank lines
/// and `#` comments ignored.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>> {
    let text = read_small_text(path)?;
    if let Some(e) = crate::mixup::as_recipients_file(path, &text) {
        return Err(e);
    }
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

/// Reads identity files (`-i`), each as written by `age-keygen` or
/// `pouch keygen`, in order.
pub fn read_identity_files(paths: &[PathBuf]) -> Result<Vec<Identity>> {
    let mut ids = Vec::new();
    for p in paths {
        ids.extend(read_identity_file(p)?);
    }
    Ok(ids)
}

/// Reads an identity file (see [`read_identity_files`]).
pub fn read_identity_file(path: &Path) -> Result<Vec<Identity>> {
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
        let id = line
            .parse::<Identity>()
            .map_err(|e| bad(format!("line {}: {e}", no + 1)))?;
        out.push(id);
    }
    if out.is_empty() {
        return Err(bad(
            "no AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… line in this file".into(),
        ));
    }
    Ok(out)
}

/// A new identity, post-quantum or classic, as the text of an identity file
/// (age-keygen's format) and the matching recipient.
pub fn generate_identity(created: &str, post_quantum: bool) -> (String, Recipient) {
    let id = if post_quantum {
        Identity::PostQuantum(Box::new(pq::Identity::generate()))
    } else {
        Identity::X25519(x25519::Identity::generate())
    };
    let recipient = id.to_public();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_secret_string().expose_secret()
    );
    (text, recipient)
}

/// Starts an age file to `recipients` on `w` (one kind of recipient only,
/// see [`check_recipient_set`]); see [`header::encrypt`]. The caller must
/// call `finish()` on the result.
pub fn encrypt<W: std::io::Write>(
    recipients: &[Recipient],
    w: W,
) -> Result<crate::payload::stream::Encrypting<W>> {
    check_recipient_set(recipients, false)?;
    let recipients: Vec<&dyn age::Recipient> = recipients.iter().map(|r| r as _).collect();
    header::encrypt(&recipients, w)
}

/// Opens an age stream from `r` with `identities`. `fingerprints` are the
/// bundle's recipients, named in the error when no identity matches.
/// Returns the plaintext and the tags of the header's recipient stanzas,
/// in order, from the one strict parse of the header.
pub fn decrypt<R: std::io::BufRead>(
    r: R,
    identities: &[Identity],
    bundle_fingerprints: &[String],
    corrupt: &dyn Fn(String) -> Error,
) -> Result<(Plaintext<R>, Vec<String>)> {
    open_with_tags(r, identities).map_err(|e| match e {
        Opened::Age(e) => map_decrypt_error(e, identities, bundle_fingerprints, corrupt),
        Opened::Passphrase => corrupt(
            "the payload is passphrase-encrypted; pouch bundles are encrypted to recipients".into(),
        ),
    })
}

/// Reads an age header from `r` and unwraps the file key with `identities`.
/// This is [`decrypt`] without the mapping to pouch's errors.
///
/// The header is read ahead (at most 1 MiB) and its stanzas are checked
/// with age-core's strict stanza parser first: the age crate also accepts,
/// for files from early rage versions, stanzas whose body does not end with
/// a short line, which the age specification forbids.
pub fn open<R: std::io::BufRead>(
    r: R,
    identities: &[Identity],
) -> std::result::Result<Plaintext<R>, Opened> {
    open_with_tags(r, identities).map(|(plaintext, _)| plaintext)
}

/// [`open`], also returning the tags of the header's recipient stanzas in
/// order, as its strict check parsed them; see [`header::open_with_tags`].
pub fn open_with_tags<R: std::io::BufRead>(
    r: R,
    identities: &[Identity],
) -> std::result::Result<(Plaintext<R>, Vec<String>), Opened> {
    let identities: Vec<&dyn age::Identity> = identities.iter().map(|i| i as _).collect();
    header::open_with_tags(r, &identities)
}

fn map_decrypt_error(
    e: age::DecryptError,
    identities: &[Identity],
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
    let bytes = crate::disk::durable::read_capped(path, MAX_KEY_FILE_BYTES)?
        .ok_or_else(|| bad("larger than a key file can be"))?;
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::header::AGE_V1;
    use crate::payload::stream;
    use std::io::Write;

    #[test]
    fn generated_identity_parses_back_and_matches_its_recipient() {
        let (text, recipient) = generate_identity("2026-11-29T00:00:00Z", false);
        let (_dir, path) = crate::scratch::file("k", Some(text.as_bytes()));
        let ids = read_identity_file(&path).expect("parses");
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_public(), recipient);
        assert!(text.contains(&format!("# public key: {recipient}")));
        assert_eq!(fingerprint(&recipient).len(), 16);
    }

    #[test]
    fn bad_identity_lines_are_reported_without_echoing_them() {
        let (_dir, path) =
            crate::scratch::file("k", Some(b"# comment\nAGE-SECRET-KEY-1SECRETSECRET\n"));
        let Err(err) = read_identity_file(&path) else {
            panic!("a bad line must be refused")
        };
        let err = err.to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("SECRETSECRET"), "{err}");
    }

    #[test]
    fn a_secret_key_given_as_a_recipient_is_never_echoed() {
        for pq in [false, true] {
            let (text, _) = generate_identity("now", pq);
            let secret = text.lines().last().expect("the identity line");
            let data = &secret[secret.len() - 40..];
            for given in [secret.to_string(), secret.to_lowercase()] {
                let err = parse_recipient(&given)
                    .expect_err("not a recipient")
                    .to_string();
                assert!(!err.to_uppercase().contains(data), "{err}");
                assert!(err.contains("secret identity, not a recipient"), "{err}");
            }
            let (_dir, path) = crate::scratch::file("r.txt", Some(text.as_bytes()));
            let err = read_recipients_file(&path)
                .expect_err("an identity file")
                .to_string();
            assert!(!err.contains(data), "{err}");
        }
    }

    fn open_err(file: &[u8]) -> Opened {
        match open(file, &[]) {
            Ok(_) => panic!("opened"),
            Err(e) => e,
        }
    }

    #[test]
    fn headers_too_long_or_without_a_mac_line_are_refused_before_age_reads_them() {
        // Many lines: the age crate's parse time grows with their square.
        let mut many = AGE_V1.to_vec();
        for _ in 0..20_000 {
            many.extend_from_slice(b"-> a\n\n");
        }
        many.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        assert!(matches!(
            open_err(&many),
            Opened::Age(age::DecryptError::InvalidHeader)
        ));

        // Exactly 1 MiB of well-formed stanzas, the MAC line after the limit:
        // refused, never handed on unchecked.
        let mut exact = AGE_V1.to_vec();
        let arg_len = MAX_HEADER_BYTES as usize - exact.len() - "-> a \n\n".len();
        exact.extend_from_slice(b"-> a ");
        exact.extend(std::iter::repeat_n(b'x', arg_len));
        exact.extend_from_slice(b"\n\n");
        assert_eq!(exact.len() as u64, MAX_HEADER_BYTES);
        exact.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        assert!(matches!(
            open_err(&exact),
            Opened::Age(age::DecryptError::InvalidHeader)
        ));
        assert_eq!(
            stanza_tags(exact.as_slice()).err().as_deref(),
            Some("the age header is larger than 1 MiB")
        );
        let mut tap = HeaderTap::default();
        tap.feed(&exact);
        assert_eq!(
            tap.stanza_tags().err().as_deref(),
            Some("the age header is larger than 1 MiB"),
            "the tap keeps exactly what the header reader reads"
        );

        // A header that just stops.
        let cut = [AGE_V1, b"-> X25519 abc\n".as_slice()].concat();
        assert!(matches!(
            open_err(&cut),
            Opened::Age(age::DecryptError::InvalidHeader)
        ));
    }

    #[test]
    fn the_age_crate_decrypts_what_encrypt_writes() {
        for pq in [false, true] {
            let ids: Vec<Identity> = (0..2)
                .map(|_| match pq {
                    true => Identity::PostQuantum(Box::new(pq::Identity::generate())),
                    false => Identity::X25519(x25519::Identity::generate()),
                })
                .collect();
            let recipients: Vec<Recipient> = ids.iter().map(Identity::to_public).collect();
            for len in [0, 5, stream::CHUNK, 3 * stream::CHUNK + 5] {
                let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                let mut file = Vec::new();
                let mut w = encrypt(&recipients, &mut file).expect("encrypt");
                w.write_all(&plain).expect("write");
                w.finish().expect("finish");
                for id in &ids {
                    let got = age_reads(&file, id).expect("the age crate opens it");
                    assert_eq!(got, plain, "pq {pq}, {len} bytes");
                }
                let tags = stanza_tags(file.as_slice()).expect("tags");
                assert_eq!(tags.iter().filter(|t| *t == GREASE).count(), 1);
            }
        }
    }

    /// The plaintext of `file` as pouch reads it, or `None` if refused.
    fn pouch_reads(file: &[u8], ids: &[Identity]) -> Option<Vec<u8>> {
        let mut plain = Vec::new();
        let mut r = open(file, ids).ok()?;
        std::io::Read::read_to_end(&mut r, &mut plain).ok()?;
        Some(plain)
    }

    /// The plaintext of `file` as the age crate reads it, or `None`.
    fn age_reads(file: &[u8], id: &dyn age::Identity) -> Option<Vec<u8>> {
        let d = age::Decryptor::new_buffered(file).ok()?;
        let mut r = d.decrypt(std::iter::once(id)).ok()?;
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut plain).ok()?;
        Some(plain)
    }

    #[test]
    fn pouch_accepts_nothing_the_age_crate_refuses_and_reads_the_same_bytes() {
        // Differential: thousands of damaged copies of one file, the damage
        // mostly where the format has its edges (the header, the nonce,
        // chunk boundaries, the end).
        let id = x25519::Identity::generate();
        let ids = [Identity::X25519(id.clone())];
        let plain: Vec<u8> = (0..2 * stream::CHUNK + 100)
            .map(|i| (i % 249) as u8)
            .collect();
        let mut file = Vec::new();
        let mut w = encrypt(&[Recipient::X25519(id.to_public())], &mut file).expect("encrypt");
        w.write_all(&plain).expect("write");
        w.finish().expect("finish");
        assert_eq!(pouch_reads(&file, &ids).as_deref(), Some(plain.as_slice()));
        assert_eq!(age_reads(&file, &id).as_deref(), Some(plain.as_slice()));
        let header_end = file.len() - plain.len() - 3 * 16 - 16;
        let sealed = stream::CHUNK + 16;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n.max(1) as u64) as usize
        };
        let (mut both_refused, mut strict_only) = (0, 0);
        for _ in 0..3000 {
            let at = match next(4) {
                0 | 1 => next(header_end + 16 + 32),
                2 => (header_end + 16 + sealed * (1 + next(2)) + next(40)).saturating_sub(20),
                _ => file.len().saturating_sub(next(40)),
            }
            .min(file.len());
            let mut m = file.clone();
            match next(4) {
                0 if at < m.len() => m[at] ^= 1 << next(8),
                1 => m.truncate(at),
                2 if at < m.len() => {
                    m.remove(at);
                }
                _ => m.insert(at, next(256) as u8),
            }
            match (pouch_reads(&m, &ids), age_reads(&m, &id)) {
                (Some(ours), Some(theirs)) => assert_eq!(ours, theirs, "damage at {at}"),
                (Some(_), None) => {
                    panic!("pouch read a file the age crate refuses (damage at {at})")
                }
                (None, Some(_)) => {
                    // Only a header the age specification forbids, which
                    // the age crate takes for early rage versions' sake.
                    assert!(stanza_tags(m.as_slice()).is_err(), "damage at {at}");
                    strict_only += 1;
                }
                (None, None) => both_refused += 1,
            }
        }
        assert!(
            both_refused > 2500,
            "{both_refused} refused by both, {strict_only} by pouch only"
        );
    }

    #[test]
    fn many_post_quantum_recipients_fit_in_a_header() {
        let ids: Vec<Identity> = (0..100)
            .map(|_| Identity::PostQuantum(Box::new(pq::Identity::generate())))
            .collect();
        let recipients: Vec<Recipient> = ids.iter().map(Identity::to_public).collect();
        let mut file = Vec::new();
        let mut w = encrypt(&recipients, &mut file).expect("encrypt");
        w.write_all(b"payload").expect("write");
        w.finish().expect("finish");
        let tags = stanza_tags(file.as_slice()).expect("tags");
        assert_eq!(tags.iter().filter(|t| *t == pq::STANZA_TAG).count(), 100);
        let mut tap = HeaderTap::default();
        for chunk in file.chunks(1000) {
            tap.write_all(chunk).expect("write");
        }
        assert_eq!(tap.stanza_tags().expect("the tap's tags"), tags);
        let (_, opened) = open_with_tags(file.as_slice(), &ids[..1]).expect("opens");
        assert_eq!(opened, tags, "open's tags are the header's");
        let mut r = open(file.as_slice(), &ids[99..]).expect("the last one opens it");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut plain).expect("read");
        assert_eq!(plain, b"payload");
    }
}
