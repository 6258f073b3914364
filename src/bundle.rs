//! A bundle on the medium, opened once: its manifest read and authenticated,
//! its payload (one file or parts) located and read in one pass, its age
//! header parsed once. verify, unpack, inspect, resplit and audit are small
//! operations on a [`Bundle`].
//!
//! The order is fixed and matters: the signature is checked over the
//! manifest's raw bytes *before* the manifest is parsed, so nothing an
//! untrusted party wrote is interpreted until a trusted key vouched for it.
//! Then the payload's size is compared with the signed size (cheap, before
//! any long read), and then one streaming pass hashes the payload, keeps its
//! age header and, with an identity, decrypts, decompresses and checks every
//! entry against the signed manifest.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::binding::{self, unchecked_channel};
pub use crate::binding::{bind, header_recipients, ChannelBinding, HeaderRecipients};
use crate::cut::{Cut, Payload};
use crate::disk::durable::{open_regular, parent_of};
pub use crate::disk::manifest_file::{read_manifest_bytes, read_unvouched_bytes};
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::payload::archive::{self, Expected, Listed, Seen, Sink};
use crate::payload::crypto::{self, HeaderTap};
use crate::payload::hashing::{sha256_hex, HashingReader, Layer, LimitReader};
use crate::payload::pipeline;
use crate::signature::{self, TrustedKey};

/// The largest zstd window accepted, as a power of two (16 MiB): enough for
/// every level pouch writes, small enough to keep decoder memory flat.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// How the manifest's signature is to be treated.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Require a valid signature by one of these keys.
    Keys(Vec<TrustedKey>),
    /// Proceed without checking the signature (`--insecure-skip-signature`).
    InsecureSkip,
}

impl Trust {
    /// The policy the operator chose: the trusted `keys` (from `--trust`,
    /// `trust_given` of them, and the keyring), or, knowingly and with no
    /// `--trust`, no check at all.
    pub fn choose(keys: Vec<TrustedKey>, trust_given: bool, insecure_skip: bool) -> Result<Trust> {
        if insecure_skip {
            if trust_given {
                return Err(Error::Usage(
                    "--trust and --insecure-skip-signature contradict each other; drop one".into(),
                ));
            }
            return Ok(Trust::InsecureSkip);
        }
        if keys.is_empty() {
            return Err(Error::Usage(
                "no trusted signer: pass --trust SIGNER.minisign.pub (the sender's public key), or add the sender with pouch keyring add".into(),
            ));
        }
        Ok(Trust::Keys(keys))
    }
}

/// How the signature was treated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Valid, by a trusted key.
    Trusted {
        /// The signer's key id.
        key_id: String,
        /// The keyring party whose full public key verified the signature.
        #[serde(skip_serializing_if = "Option::is_none")]
        party: Option<String>,
    },
    /// Not checked, on request.
    Skipped,
}

/// A bundle whose manifest has been read, authenticated (or explicitly not)
/// and parsed.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where the manifest was read from.
    pub manifest_path: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// sha256 of the manifest file's bytes.
    pub manifest_sha256: String,
    /// Where the payload is expected.
    pub payload_path: PathBuf,
    /// What became of the signature.
    pub signature: SignatureStatus,
    /// Whether the sender party vouched for the channel the manifest names.
    pub channel: ChannelBinding,
    /// How the payload is cut: the manifest's parts, or those of a
    /// re-cut's parts list, and where they are looked for.
    pub cut: Cut,
    /// Where progress goes.
    pub progress: crate::progress::Handle,
    /// The entry list, when the manifest is too large to hold it in
    /// memory (then `manifest.entries` is empty).
    pub listing: Option<crate::listing::Listing>,
    /// Keep every entry as read (to record the unpacked tree).
    pub collect: bool,
}

/// Reads a manifest and checks its signature according to `trust`. One
/// larger than a manifest read whole can be (a million files) is read from
/// a private copy, and only when its signature is to be checked (see
/// [`crate::listing`]).
pub fn open(manifest_path: &Path, trust: &Trust) -> Result<Bundle> {
    crate::disk::manifest_file::check_is_manifest(manifest_path)?;
    let size = open_regular(manifest_path)?
        .metadata()
        .doing("reading the metadata of", manifest_path)?
        .len();
    let signed = || std::fs::symlink_metadata(signature::signature_path(manifest_path)).is_ok();
    match trust {
        Trust::Keys(keys)
            if !keys.is_empty()
                && (size > MAX_MANIFEST_BYTES || (size > FOLLOWED_FROM && signed())) =>
        {
            open_large(manifest_path, keys)
        }
        Trust::InsecureSkip if size > MAX_MANIFEST_BYTES => Err(Error::BadManifest {
            path: manifest_path.to_path_buf(),
            reason: format!(
                "larger than {} MiB: pouch reads a manifest that large only to check it against its signature (--trust)",
                MAX_MANIFEST_BYTES >> 20
            ),
        }),
        _ => open_bytes(manifest_path, &read_manifest_bytes(manifest_path)?, trust),
    }
}

/// A signed manifest larger than this (some 25,000 entries) is followed
/// from a private copy a line at a time rather than held in memory, so
/// that memory stays flat whatever the number of files.
const FOLLOWED_FROM: u64 = 4 << 20;

/// [`open`] for a manifest larger than [`FOLLOWED_FROM`].
fn open_large(manifest_path: &Path, keys: &[TrustedKey]) -> Result<Bundle> {
    let large = crate::listing::open(manifest_path, keys)?;
    let mut b = assemble(
        manifest_path,
        large.manifest,
        large.sha256,
        Some((&large.verified, keys)),
    )?;
    b.listing = Some(large.listing);
    Ok(b)
}

/// [`open`] for a manifest already read from `manifest_path`.
pub fn open_bytes(manifest_path: &Path, bytes: &[u8], trust: &Trust) -> Result<Bundle> {
    let keys = match trust {
        Trust::Keys(keys) if keys.is_empty() => {
            return Err(Error::Usage(
                "no trusted signer keys: pass --trust SIGNER.minisign.pub (or, knowingly, --insecure-skip-signature)".into(),
            ));
        }
        Trust::Keys(keys) => Some(keys.as_slice()),
        Trust::InsecureSkip => None,
    };
    let (manifest, verified) = authenticate(manifest_path, bytes, keys)?;
    let vouched = verified.as_ref().zip(keys);
    assemble(manifest_path, manifest, sha256_hex(bytes), vouched)
}

/// The bundle of a parsed manifest, bound to the party whose key vouched
/// for it (when one did).
fn assemble(
    manifest_path: &Path,
    manifest: Manifest,
    manifest_sha256: String,
    vouched: Option<(&signature::Verified, &[TrustedKey])>,
) -> Result<Bundle> {
    let (signature, channel) = match vouched {
        Some((v, keys)) => {
            let channel = bind(v, &manifest, manifest_path, keys)?;
            let status = SignatureStatus::Trusted {
                key_id: v.key_id.clone(),
                party: v.party.clone(),
            };
            (status, channel)
        }
        None => (SignatureStatus::Skipped, unchecked_channel(&manifest)),
    };
    let keys = vouched.map(|(_, keys)| keys);
    let cut = Cut::of(manifest_path, &manifest, &manifest_sha256, keys)?;
    Ok(Bundle {
        cut,
        progress: crate::progress::Handle::default(),
        manifest_path: manifest_path.to_path_buf(),
        payload_path: payload_path(manifest_path, &manifest),
        manifest,
        manifest_sha256,
        signature,
        channel,
        listing: None,
        collect: false,
    })
}

/// Where a single-file payload is expected: beside its manifest.
pub fn payload_path(manifest_path: &Path, manifest: &Manifest) -> PathBuf {
    parent_of(manifest_path).join(&manifest.payload.file)
}

/// Checks the signature of a manifest's `bytes` by one of `keys` (when
/// given) before anything in them is parsed, then parses them. Returns the
/// manifest and the verified signature, which the caller still has to
/// [`bind`] to the manifest.
pub fn authenticate(
    manifest_path: &Path,
    bytes: &[u8],
    keys: Option<&[TrustedKey]>,
) -> Result<(Manifest, Option<signature::Verified>)> {
    let verified = match keys {
        None => None,
        Some(keys) => {
            let sig_path = signature::signature_path(manifest_path);
            let sig_text = signature::read_signature(&sig_path)?;
            Some(signature::verify(bytes, &sig_text, &sig_path, keys)?)
        }
    };
    let manifest = match verified {
        Some(_) => Manifest::parse_vouched(bytes, manifest_path)?,
        None => Manifest::parse(bytes, manifest_path)?,
    };
    Ok((manifest, verified))
}

impl Bundle {
    fn corrupt(&self, reason: String) -> Error {
        Error::CorruptPayload {
            path: self.payload_path.clone(),
            reason,
        }
    }

    fn mismatch(&self, what: &'static str, expected: String, found: String) -> Error {
        Error::PayloadMismatch {
            path: self.payload_path.clone(),
            what,
            expected,
            found,
        }
    }

    /// Also looks for parts in these folders (after the manifest's own).
    pub fn with_parts_from(mut self, dirs: &[PathBuf]) -> Bundle {
        self.cut.search_dirs.extend(dirs.iter().cloned());
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: &crate::progress::Handle) -> Bundle {
        self.progress = progress.clone();
        self
    }

    /// The signed manifest's entries, in order.
    fn listed_entries(&self) -> Result<Listed<'_>> {
        Ok(match &self.listing {
            Some(listing) => listing.entries(),
            None => Box::new(self.manifest.entries.iter().cloned().map(Ok)),
        })
    }

    /// True when the payload is split into parts.
    pub fn is_split(&self) -> bool {
        self.cut.is_split()
    }

    /// The payload's files as they are cut now: its parts, or the one
    /// file `NAME.age`, with their signed sizes and hashes.
    pub fn payload_files(&self) -> Vec<crate::format::manifest::Part> {
        let p = &self.manifest.payload;
        match self.cut.parts.is_empty() {
            true => vec![crate::format::manifest::Part {
                file: p.file.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
            }],
            false => self.cut.parts.clone(),
        }
    }

    /// The PAR2 recovery files of the payload as it is cut now: a re-cut's
    /// from its parts list, else the manifest's.
    pub fn parity(&self) -> Option<&crate::format::parity::Parity> {
        match &self.cut.recut {
            Some(r) => r.parity.as_ref(),
            None => self.manifest.payload.parity.as_ref(),
        }
    }

    /// A damaged payload's error, with what its PAR2 files say of the damage
    /// when it has some ([`crate::parity::assess`]); any other error as it is.
    /// The damaged files are read again for this, on the failure path only.
    pub fn with_parity(&self, e: Error) -> Error {
        let bundle = self;
        let damaged = matches!(
            e,
            Error::BadParts { .. } | Error::PayloadMismatch { .. } | Error::PayloadMissing { .. }
        );
        let (Some(parity), true) = (bundle.parity(), damaged) else {
            return e;
        };
        let payload = bundle.payload_files();
        match crate::parity::assess(parity, &payload, &bundle.cut.search_dirs) {
            Ok(Some(a)) => Error::Damaged {
                damage: e.to_string(),
                repairable: a.repairable(),
                lost: a.lost,
                total: a.total,
                recovery: a.recovery,
                ignored: a.ignored,
            },
            _ => e,
        }
    }

    /// Opens the payload as one stream: the single file, or the parts in
    /// order. Sizes are checked first (cheap), and a missing part is named
    /// before anything is read.
    pub fn open_payload(&self) -> Result<Payload> {
        self.open_payload_with(false)
    }

    /// [`Bundle::open_payload`]; with `read_ahead`, a single file is read
    /// on a thread of its own, so that reading and hashing overlap.
    fn open_payload_with(&self, read_ahead: bool) -> Result<Payload> {
        if self.is_split() {
            return self.cut.open(&self.progress);
        }
        let file = open_regular(&self.payload_path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::PayloadMissing {
                    path: self.payload_path.clone(),
                }
            }
            e => e,
        })?;
        let size = file
            .metadata()
            .doing("reading the metadata of", &self.payload_path)?
            .len();
        if size != self.manifest.payload.size {
            return Err(self.mismatch(
                "size",
                self.manifest.payload.size.to_string(),
                size.to_string(),
            ));
        }
        let file = crate::progress::Reader::new(file, self.progress.clone());
        Ok(Payload::File(HashingReader::new(match read_ahead {
            true => Box::new(pipeline::read_ahead(file)),
            false => Box::new(file),
        })))
    }

    fn check_hash(&self, size: u64, sha256: String) -> Result<()> {
        if size != self.manifest.payload.size {
            return Err(self.mismatch(
                "size",
                self.manifest.payload.size.to_string(),
                size.to_string(),
            ));
        }
        if sha256 != self.manifest.payload.sha256 {
            return Err(self.mismatch("sha256", self.manifest.payload.sha256.clone(), sha256));
        }
        Ok(())
    }

    /// Checks the payload's size and sha256 against the signed manifest,
    /// and its age header's stanzas against the signed recipients, without
    /// decrypting it (needs no key). One pass reads the payload.
    pub fn check_payload(&self) -> Result<()> {
        let header = self.check_payload_header()?;
        self.check_header(&header)
    }

    /// [`Bundle::check_payload`], but a header whose stanzas do not match
    /// the manifest's recipients is returned, with its problem, rather than
    /// an error (audit shows what the header holds): the payload is still
    /// read once, and its header parsed once.
    pub fn check_payload_header(&self) -> Result<HeaderRecipients> {
        self.progress.start("verifying", self.manifest.payload.size);
        let result = self.check_payload_inner();
        self.progress.finish();
        let tags = crate::interrupt::interrupted_or(result)?;
        Ok(HeaderRecipients {
            problem: crypto::stanza_problem(&tags, &self.listed_kinds()),
            stanzas: tags
                .iter()
                .map(|t| crate::format::names::escape(t))
                .collect(),
        })
    }

    /// The error for a header whose stanzas do not match the manifest.
    pub fn check_header(&self, header: &HeaderRecipients) -> Result<()> {
        match &header.problem {
            Some(problem) => Err(self.corrupt(problem.clone())),
            None => Ok(()),
        }
    }

    /// One pass over the payload: sizes and hashes checked; returns the
    /// tags of its age header's recipient stanzas.
    fn check_payload_inner(&self) -> Result<Vec<String>> {
        let mut header = HeaderTap::default();
        if self.is_split() {
            self.cut.check(&mut header, &self.progress)?;
        } else {
            // The file is read on a thread of its own while this one hashes.
            let mut reader = BufReader::with_capacity(1 << 20, self.open_payload_with(true)?);
            std::io::copy(&mut reader, &mut header).doing("reading", &self.payload_path)?;
            let (size, sha) = reader
                .into_inner()
                .finish()
                .doing("reading", &self.payload_path)?;
            self.check_hash(size, sha)?;
        }
        header
            .stanza_tags()
            .map_err(|e| self.corrupt(format!("age header: {e}")))
    }

    /// The payload's age header is readable without a key: its recipient
    /// stanzas (`tags`, as the one pass over the header found them) must be
    /// of the kinds, and as many, as the manifest's recipients (grease and
    /// unknown stanzas aside). So what the manifest says about post-quantum
    /// protection is checked, not only claimed.
    fn check_stanzas(&self, tags: &[String]) -> Result<()> {
        match crypto::stanza_problem(tags, &self.listed_kinds()) {
            Some(problem) => Err(self.corrupt(problem)),
            None => Ok(()),
        }
    }

    fn listed_kinds(&self) -> Vec<&str> {
        binding::listed_kinds(&self.manifest)
    }

    /// In one pass over the payload: hashes it, decrypts it with
    /// `identities`, decompresses it and checks every entry against the
    /// signed manifest, handing accepted entries to `sink`. Returns the
    /// entries read. The payload hash and the age header's stanzas are
    /// checked at the end; the caller must not make anything written to
    /// `sink` visible before this returns `Ok`.
    pub fn check_contents(
        &self,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<Seen> {
        self.progress.start("checking", self.manifest.payload.size);
        let result = self.check_contents_inner(identities, sink);
        self.progress.finish();
        crate::interrupt::interrupted_or(result)
    }

    fn check_contents_inner(
        &self,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<Seen> {
        if identities.is_empty() {
            return Err(Error::Usage(
                "no identity given: pass -i IDENTITY_FILE".into(),
            ));
        }
        let mut payload = self.open_payload()?;
        let result = self.stream_contents(&mut payload, identities, sink);
        match result {
            Ok((entries, _tags)) => {
                let (size, sha) = payload.finish().doing("reading", &self.payload_path)?;
                self.check_hash(size, sha)?;
                Ok(entries)
            }
            Err(
                e @ (Error::CorruptPayload { .. }
                | Error::BadEntry { .. }
                | Error::ContentsMismatch { .. }),
            ) if self.is_split() => {
                // Name the bad parts, if that is what went wrong.
                drop(payload);
                self.cut
                    .check(&mut HeaderTap::default(), &self.progress)
                    .and(Err(e))
            }
            Err(
                e @ (Error::CorruptPayload { .. }
                | Error::BadEntry { .. }
                | Error::ContentsMismatch { .. }),
            ) => {
                // If the payload is not the one that was signed, say so: that
                // is the root cause, more useful than the symptom.
                match payload.finish() {
                    Ok((size, sha)) => self.check_hash(size, sha).and(Err(e)),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Decrypts, decompresses and checks the entries; returns them and the
    /// age header's stanza tags.
    fn stream_contents(
        &self,
        payload: &mut Payload,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<(Seen, Vec<String>)> {
        let corrupt = |reason: String| self.corrupt(reason);
        let fingerprints: Vec<String> = self
            .manifest
            .recipients
            .iter()
            .map(|r| r.fingerprint.clone())
            .collect();
        // Four stages: read and hash, decrypt, decompress, and (this thread)
        // check and hash the entries for the sink. Each stops when the next
        // is dropped; the caller finishes the payload hash.
        let (payload_w, payload_r) = pipeline::channel();
        let (plain_w, plain_r) = pipeline::channel();
        // The sink may keep the archive's chunks a while (its writing
        // stage writes files from them): room for its batches in flight.
        let (tar_w, mut tar_r) = pipeline::with_spare(crate::payload::handoff::DEPTH);
        if let Some(to) = sink.published() {
            tar_r.publish(to);
        }
        std::thread::scope(|scope| {
            scope.spawn(move || pipeline::pump(payload, payload_w));
            let (plaintext, tags) =
                crypto::decrypt(payload_r, identities, &fingerprints, &corrupt)?;
            // Before a byte is decrypted: a payload others can open is
            // refused whatever it holds.
            self.check_stanzas(&tags)?;
            scope.spawn(move || pipeline::pump(Layer::new(plaintext, "age"), plain_w));
            let zstd_error = |e: std::io::Error| corrupt(format!("zstd: {e}"));
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(plain_r).map_err(zstd_error)?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(zstd_error)?;
            // The frames' XXH64 checksums (pack writes them, for stock
            // `zstd -d`) are not checked here: the payload's sha256, which
            // the signature covers, already binds every ciphertext byte and
            // so every archive byte, and the archive's entries are hashed.
            // Checking them too costs 3 % of an unpack and finds nothing
            // those do not.
            decoder
                .set_parameter(zstd::zstd_safe::DParameter::ForceIgnoreChecksum(true))
                .map_err(zstd_error)?;
            // A bomb stops here too: this stage runs at most the channel's
            // depth ahead of the limit below.
            scope.spawn(move || pipeline::pump(Layer::new(decoder, "zstd"), tar_w));
            let mut expected = Expected {
                entries: match self.manifest.contents.sealed_names {
                    true => None,
                    false => Some(self.listed_entries()?),
                },
                contents: &self.manifest.contents,
                delta: self.manifest.delta.as_ref(),
                collect: self.collect,
            };
            let mut limited =
                LimitReader::new(tar_r, expected.tar_size_bound(), "the decompressed archive");
            let entries = archive::read_archive(&mut limited, &mut expected, sink, &corrupt)?;
            Ok((entries, tags))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(dir: &Path, name: &str) -> Bundle {
        let text = std::fs::read(Path::new("manifests").join(name)).expect("example");
        let path = dir.join(name);
        std::fs::write(&path, &text).expect("write");
        open(&path, &Trust::InsecureSkip).expect("opens without a signature check")
    }

    #[test]
    fn no_trusted_key_is_a_usage_error_before_any_signature_is_read() {
        let (_dir, path) = crate::scratch::file("b.toml", Some(b"not read further"));
        let err = open(&path, &Trust::Keys(Vec::new())).expect_err("no keys");
        assert!(matches!(err, Error::Usage(_)), "{err}");
    }

    #[test]
    fn stanzas_must_match_the_signed_recipients_in_kind_and_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = example(dir.path(), "bundle.toml");
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        b.check_stanzas(&tags(&["X25519", crypto::GREASE, "X25519"]))
            .expect("two X25519 stanzas and grease");
        for extra in [
            &["ssh-ed25519"][..],
            &["x-grease"],
            &[crypto::GREASE, crypto::GREASE],
        ] {
            let mut t = tags(&["X25519", "X25519"]);
            t.extend(tags(extra));
            let err = b.check_stanzas(&t).expect_err("an unlisted stanza");
            assert!(
                err.to_string()
                    .contains("can be opened by a recipient the manifest does not list"),
                "{extra:?}: {err}"
            );
        }
        let err = b
            .check_stanzas(&tags(&["X25519"]))
            .expect_err("one missing");
        assert!(
            err.to_string().contains(
                "seals the file key to [x25519], but the signed manifest lists [x25519, x25519]"
            ),
            "{err}"
        );
        assert!(b
            .check_stanzas(&tags(&["X25519", crypto::KIND_PQ]))
            .is_err());
    }

    #[test]
    fn a_missing_payload_is_named_before_anything_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let single = example(dir.path(), "bundle.toml");
        assert!(matches!(
            single.open_payload(),
            Err(Error::PayloadMissing { .. })
        ));
        let split = example(dir.path(), "bundle-split.toml");
        assert!(split.is_split());
        let Err(Error::BadParts { problems }) = split.check_payload() else {
            panic!("the parts are missing")
        };
        assert!(
            problems.iter().all(|p| p.ends_with(": missing")),
            "{problems:?}"
        );
    }
}
