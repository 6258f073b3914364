//! The age header, read without a key: bounded, checked with age-core's
//! strict stanza parser, and reduced to the stanza tags pouch checks against
//! the signed recipient list (grease included, named as such). And the age
//! file around the payload's STREAM chunks ([`crate::payload::stream`]): its
//! header written ([`encrypt`]) and checked with identities
//! ([`open_with_tags`]).
//!
//! The age crate's identities and recipients wrap and unwrap the file key;
//! age-core parses the stanzas strictly and derives the keys. pouch writes
//! the header as the age crate writes it and checks it in the age crate's
//! order, with `ring`'s HMAC for the MAC.

use std::io::Write;

use age::secrecy::ExposeSecret;
use age_core::format::AgeStanza;
use base64::Engine;

use crate::error::{Error, Result};
use crate::format::manifest::{KIND_PQ, KIND_X25519};
use crate::payload::stream;

/// The largest age header pouch reads: room for hundreds of post-quantum
/// recipients (about 1.5 KiB each), far more than a bundle has.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The most lines an age header may have: room for a thousand recipients.
/// The age crate parses the header again after every line it reads, so its
/// time grows with the square of the line count; this bounds it.
pub const MAX_HEADER_LINES: usize = 2048;

/// The first line of a binary age file.
pub(crate) const AGE_V1: &[u8] = b"age-encryption.org/v1\n";

/// Why an age header was not read.
pub(crate) enum HeaderError {
    Io(std::io::Error),
    /// Too large, too many lines, or no MAC line.
    Invalid(&'static str),
}

/// Reads a binary age header up to and including its MAC line (`---`), or
/// only the first line when it is not `age-encryption.org/v1`: the age crate
/// then reports what the input is instead. A v1 header must end with its MAC
/// line within [`MAX_HEADER_BYTES`] and [`MAX_HEADER_LINES`], so the age
/// crate never reads any of it unchecked.
pub(crate) fn read_header<R: std::io::BufRead>(
    r: &mut R,
) -> std::result::Result<Vec<u8>, HeaderError> {
    use std::io::{BufRead, Read};
    let mut header = Vec::new();
    let mut limited = r.take(MAX_HEADER_BYTES);
    limited
        .read_until(b'\n', &mut header)
        .map_err(HeaderError::Io)?;
    if header != AGE_V1 {
        return Ok(header);
    }
    for _ in 1..MAX_HEADER_LINES {
        let start = header.len();
        let n = limited
            .read_until(b'\n', &mut header)
            .map_err(HeaderError::Io)?;
        if n == 0 || !header.ends_with(b"\n") {
            return Err(HeaderError::Invalid(
                if header.len() as u64 >= MAX_HEADER_BYTES {
                    "the age header is larger than 1 MiB"
                } else {
                    "the age header ends before its MAC line"
                },
            ));
        }
        if header[start..].starts_with(b"---") {
            return Ok(header);
        }
    }
    Err(HeaderError::Invalid(
        "the age header has more than 2,048 lines",
    ))
}

/// The tags of the recipient stanzas in the age header at the start of `r`
/// (which needs no key to read), in order.
pub fn stanza_tags<R: std::io::BufRead>(mut r: R) -> std::result::Result<Vec<String>, String> {
    let header = read_header(&mut r).map_err(|e| match e {
        HeaderError::Io(e) => e.to_string(),
        HeaderError::Invalid(why) => why.to_string(),
    })?;
    let Some(body) = header.strip_prefix(AGE_V1) else {
        return Err("not an age v1 file".into());
    };
    let (tags, rest) =
        strict_stanzas(body).ok_or_else(|| "a malformed recipient stanza".to_string())?;
    if !rest.starts_with(b"--- ") {
        return Err("no MAC line after the recipient stanzas".into());
    }
    Ok(tags)
}

/// Keeps the first bytes of a payload as they stream past, as many as an
/// age header may have, so that a pass reading the payload for another
/// reason (its hash) also yields the header, without reading it again.
#[derive(Debug, Default)]
pub struct HeaderTap {
    bytes: Vec<u8>,
}

impl HeaderTap {
    /// Keeps what of `bytes` still belongs to the first `MAX_HEADER_BYTES`.
    pub fn feed(&mut self, bytes: &[u8]) {
        let room = (MAX_HEADER_BYTES as usize).saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    /// The tags of the recipient stanzas in the header seen, as [`stanza_tags`] gives them.
    pub fn stanza_tags(&self) -> std::result::Result<Vec<String>, String> {
        stanza_tags(self.bytes.as_slice())
    }
}

impl Write for HeaderTap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Parses the stanzas at the start of a v1 header's body (after its first
/// line) with age-core's strict parser: their tags and what follows them,
/// or `None` when one is malformed.
pub(crate) fn strict_stanzas(body: &[u8]) -> Option<(Vec<String>, &[u8])> {
    let (stanzas, rest) = parse_stanzas(body)?;
    Some((stanzas.iter().map(tag_of).collect(), rest))
}

fn parse_stanzas(mut body: &[u8]) -> Option<(Vec<AgeStanza<'_>>, &[u8])> {
    let mut stanzas = Vec::new();
    while body.starts_with(b"-> ") {
        let (tail, stanza) = age_core::format::read::age_stanza(body).ok()?;
        stanzas.push(stanza);
        body = tail;
    }
    Some((stanzas, body))
}

/// The name pouch gives a stanza's tag: [`GREASE`] for a grease stanza.
fn tag_of(stanza: &AgeStanza<'_>) -> String {
    match is_grease(stanza) {
        true => GREASE.to_string(),
        false => stanza.tag.to_string(),
    }
}

/// The length of a v1 header's MAC, base64-encoded.
const ENCODED_MAC_BYTES: usize = 43;

/// A v1 header, parsed strictly: what unwrapping the file key and checking
/// the MAC need.
pub(crate) struct V1Header {
    /// The recipient stanzas, in order.
    pub stanzas: Vec<age_core::format::Stanza>,
    /// Their tags, as [`stanza_tags`] gives them.
    pub tags: Vec<String>,
    /// The header's MAC.
    pub mac: [u8; 32],
    /// How many of the header's first bytes the MAC covers: all up to and
    /// including `---`.
    pub covered: usize,
}

/// Parses a whole v1 header as [`read_header`] returns it: the version
/// line, one or more stanzas in age-core's strict form, and a MAC line of
/// exactly `--- `, 43 characters of canonical base64 and a newline. `None`
/// when any of it is malformed.
pub(crate) fn parse_v1(header: &[u8]) -> Option<V1Header> {
    let (stanzas, rest) = parse_stanzas(header.strip_prefix(AGE_V1)?)?;
    if stanzas.is_empty() {
        return None;
    }
    let encoded = rest.strip_prefix(b"--- ")?.strip_suffix(b"\n")?;
    if encoded.len() != ENCODED_MAC_BYTES {
        return None;
    }
    // The engine refuses padding and non-canonical final characters.
    let mac = BASE64.decode(encoded).ok()?.try_into().ok()?;
    Some(V1Header {
        tags: stanzas.iter().map(tag_of).collect(),
        stanzas: stanzas.into_iter().map(Into::into).collect(),
        mac,
        covered: header.len() - ENCODED_MAC_BYTES - 2,
    })
}

/// The name [`stanza_tags`] gives a grease stanza. It holds a space, which no
/// age stanza tag can, so no real stanza is ever taken for grease by name.
pub const GREASE: &str = "grease stanza";

/// Whether `stanza` has exactly the shape of the grease stanza the age crate
/// adds to every header it writes (`age_core::format::grease_the_joint`): a
/// tag of 1 to 8 printable characters followed by `-grease`, at most 4
/// arguments of 1 to 8 printable characters, and a body of at most 100 bytes.
/// No identity of age, rage, typage or pouch unwraps such a stanza.
fn is_grease(stanza: &AgeStanza<'_>) -> bool {
    let short = |s: &str| (1..=8).contains(&s.len()) && s.bytes().all(|b| (33..=126).contains(&b));
    let Some(prefix) = stanza.tag.strip_suffix("-grease") else {
        return false;
    };
    short(prefix)
        && stanza.args.len() <= 4
        && stanza.args.iter().all(|a| short(a))
        && stanza.body().len() <= 100
}

/// The manifest's recipient kind for an age stanza tag, if it is one pouch seals to.
pub fn kind_of_tag(tag: &str) -> Option<&'static str> {
    match tag {
        "X25519" => Some(KIND_X25519),
        KIND_PQ => Some(KIND_PQ),
        _ => None,
    }
}

/// What is wrong with a header whose recipient stanzas are `tags` (as
/// [`stanza_tags`] gives them) for a manifest listing recipients of the
/// kinds `listed`: every stanza must be one of them, by kind and count, or
/// the one grease stanza age writes. `None` when they match.
pub fn stanza_problem(tags: &[String], listed: &[&str]) -> Option<String> {
    const UNLISTED: &str = "the payload can be opened by a recipient the manifest does not list";
    if let Some(tag) = tags
        .iter()
        .find(|t| kind_of_tag(t).is_none() && t.as_str() != GREASE)
    {
        return Some(format!(
            "{UNLISTED}: its age header has a stanza of type {}",
            crate::format::names::escape(tag)
        ));
    }
    if tags.iter().filter(|t| t.as_str() == GREASE).count() > 1 {
        return Some(format!(
            "{UNLISTED}: its age header has more than one grease-shaped stanza, and age writes one"
        ));
    }
    let mut found: Vec<&str> = tags.iter().filter_map(|t| kind_of_tag(t)).collect();
    let mut listed = listed.to_vec();
    found.sort_unstable();
    listed.sort_unstable();
    (found != listed).then(|| {
        format!(
            "the age header seals the file key to [{}], but the signed manifest lists [{}]",
            found.join(", "),
            listed.join(", ")
        )
    })
}

/// The decrypted stream [`open_with_tags`] returns.
pub type Plaintext<R> = stream::Decrypting<R>;

/// Starts an age file to `recipients` on `w`: writes its header and
/// nonce, and returns the payload's writer. The caller must call
/// `finish()` on the result.
///
/// The header is what the age crate writes: the recipients' stanzas (all
/// with the same labels), one grease stanza, and the MAC.
pub fn encrypt<W: Write>(
    recipients: &[&dyn age::Recipient],
    mut w: W,
) -> Result<stream::Encrypting<W>> {
    let refused = |why: String| Error::Usage(format!("cannot encrypt to these recipients: {why}"));
    if recipients.is_empty() {
        return Err(refused(age::EncryptError::MissingRecipients.to_string()));
    }
    let file_key = age_core::format::FileKey::try_init_with_mut(|k| getrandom::fill(k))
        .map_err(|e| Error::Internal(format!("no randomness for the file key: {e}")))?;
    let mut stanzas = Vec::new();
    let mut labels = None;
    for r in recipients {
        let (mut wrapped, l) = r
            .wrap_file_key(&file_key)
            .map_err(|e| refused(e.to_string()))?;
        match &labels {
            None => labels = Some(l),
            Some(first) if *first != l => {
                return Err(refused("their keys' types cannot be used together".into()))
            }
            Some(_) => {}
        }
        stanzas.append(&mut wrapped);
    }
    stanzas.push(age_core::format::grease_the_joint());

    let file_key = file_key.expose_secret();
    let mut header = AGE_V1.to_vec();
    for stanza in &stanzas {
        write_stanza(&mut header, stanza);
    }
    header.extend_from_slice(b"---");
    let mac = ring::hmac::sign(&mac_key(file_key), &header);
    header.push(b' ');
    header.extend_from_slice(BASE64.encode(mac.as_ref()).as_bytes());
    header.push(b'\n');
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::Internal(format!("no randomness for the payload nonce: {e}")))?;
    w.write_all(&header)
        .and_then(|()| w.write_all(&nonce))
        .map_err(|e| Error::io("encrypting", "payload", e))?;
    Ok(stream::Encrypting::new(w, file_key, &nonce))
}

/// Standard base64 without padding, as age writes it.
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Appends `stanza` as age writes it: `-> TAG ARGS`, then the body in
/// base64 lines of 64 characters, the last one shorter (empty if need be).
fn write_stanza(out: &mut Vec<u8>, stanza: &age_core::format::Stanza) {
    out.extend_from_slice(b"-> ");
    out.extend_from_slice(stanza.tag.as_bytes());
    for arg in &stanza.args {
        out.push(b' ');
        out.extend_from_slice(arg.as_bytes());
    }
    out.push(b'\n');
    let body = BASE64.encode(&stanza.body);
    let mut lines = body.as_bytes().chunks(64).peekable();
    while let Some(line) = lines.next() {
        out.extend_from_slice(line);
        out.push(b'\n');
        if lines.peek().is_none() && line.len() < 64 {
            return;
        }
    }
    out.push(b'\n');
}

/// Why [`open_with_tags`] failed.
#[derive(Debug)]
pub enum Opened {
    /// The age layer refused the header (malformed, wrong MAC, no identity matched).
    Age(age::DecryptError),
    /// A passphrase (scrypt) file: pouch seals to recipients only.
    Passphrase,
}

/// Reads an age header from `r` and unwraps the file key with the first of
/// `identities` that can; returns the plaintext and the tags of the
/// header's recipient stanzas in order, as its strict check parsed them.
///
/// The header is read ahead (at most 1 MiB) and its stanzas are checked
/// with age-core's strict stanza parser: the age crate also accepts, for
/// files from early rage versions, stanzas whose body does not end with a
/// short line, which the age specification forbids. The header is checked
/// as the age crate checks it, in the same order: its form, a passphrase
/// stanza only alone, the payload nonce, the file key unwrapped by the
/// first identity that can, then the MAC. The payload is then read by
/// [`stream::Decrypting`].
pub fn open_with_tags<R: std::io::BufRead>(
    mut r: R,
    identities: &[&dyn age::Identity],
) -> std::result::Result<(Plaintext<R>, Vec<String>), Opened> {
    let invalid = || Opened::Age(age::DecryptError::InvalidHeader);
    let header = read_header(&mut r).map_err(|e| match e {
        HeaderError::Io(e) => Opened::Age(age::DecryptError::Io(e)),
        HeaderError::Invalid(_) => invalid(),
    })?;
    if !header.starts_with(AGE_V1) {
        // Not v1: the age crate says what the input is instead.
        let input = std::io::Read::chain(std::io::Cursor::new(header), r);
        return Err(match age::Decryptor::new_buffered(input) {
            Err(e) => Opened::Age(e),
            Ok(_) => invalid(),
        });
    }
    let v1 = parse_v1(&header).ok_or_else(invalid)?;
    if v1.stanzas.iter().any(|s| s.tag == SCRYPT_TAG) {
        return Err(match v1.stanzas.len() {
            1 => Opened::Passphrase,
            _ => invalid(),
        });
    }
    let mut nonce = [0u8; 16];
    std::io::Read::read_exact(&mut r, &mut nonce).map_err(|e| Opened::Age(e.into()))?;
    let file_key = identities
        .iter()
        .find_map(|i| i.unwrap_stanzas(&v1.stanzas))
        .unwrap_or(Err(age::DecryptError::NoMatchingKeys))
        .map_err(Opened::Age)?;
    let file_key = file_key.expose_secret();
    ring::hmac::verify(&mac_key(file_key), &header[..v1.covered], &v1.mac)
        .map_err(|_| Opened::Age(age::DecryptError::InvalidMac))?;
    Ok((stream::Decrypting::new(r, file_key, &nonce), v1.tags))
}

/// The tag of a passphrase stanza, which pouch never opens.
const SCRYPT_TAG: &str = "scrypt";
/// The HKDF label of the header's MAC key.
const HEADER_LABEL: &[u8] = b"header";

/// The key of the header's HMAC-SHA256: HKDF-SHA256 of the file key.
fn mac_key(file_key: &[u8; 16]) -> ring::hmac::Key {
    let key = zeroize::Zeroizing::new(age_core::primitives::hkdf(&[], HEADER_LABEL, file_key));
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_are_written_as_the_strict_parser_reads_them() {
        for len in 0..200 {
            let stanza = age_core::format::Stanza {
                tag: "X25519".into(),
                args: (0..len % 3).map(|i| format!("arg{i}")).collect(),
                body: (0..len).map(|i| i as u8).collect(),
            };
            let mut out = Vec::new();
            write_stanza(&mut out, &stanza);
            let (rest, parsed) = age_core::format::read::age_stanza(&out).expect("strict parse");
            assert!(rest.is_empty(), "{len}");
            assert_eq!(age_core::format::Stanza::from(parsed), stanza, "{len}");
        }
    }
}
