//! Checking a bundle: signature, payload, and (with an identity) contents.
//!
//! The order is fixed and matters: the signature is checked over the manifest's
//! raw bytes *before* the manifest is parsed, so nothing an untrusted party
//! wrote is interpreted until a trusted key vouched for it. Then the payload's
//! size is compared with the signed size (cheap, before any long read), and
//! then one streaming pass hashes the payload and, with an identity, decrypts,
//! decompresses and checks every entry against the signed manifest.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::durable::{parent_of, read_capped};
use crate::disk::media;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{Entry, Manifest, MAX_MANIFEST_BYTES};
use crate::payload::archive::{self, Expected, NullSink, Sink};
use crate::payload::crypto;
use crate::payload::hashing::{sha256_hex, HashingReader, LimitReader};
use crate::payload::pipeline;
use crate::signature::{self, TrustedKey};
use sha2::{Digest, Sha256};

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

/// How the signature was treated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Valid, by a trusted key.
    Trusted {
        /// The signer's key id.
        key_id: String,
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
    /// Folders searched for payload parts: the manifest's, then `--parts-from`.
    pub search_dirs: Vec<PathBuf>,
    /// Where progress goes.
    pub progress: crate::progress::Handle,
}

/// Reads a manifest and checks its signature according to `trust`.
pub fn open(manifest_path: &Path, trust: &Trust) -> Result<Bundle> {
    let bytes = read_manifest_bytes(manifest_path)?;
    let sig_path = signature::signature_path(manifest_path);
    let (signature, verified) = match trust {
        Trust::Keys(keys) => {
            if keys.is_empty() {
                return Err(Error::Usage(
                    "no trusted signer keys: pass --trust SIGNER.minisign.pub (or, knowingly, --insecure-skip-signature)".into(),
                ));
            }
            let sig_text = signature::read_signature(&sig_path)?;
            let v = signature::verify(&bytes, &sig_text, &sig_path, keys)?;
            (
                SignatureStatus::Trusted {
                    key_id: v.key_id.clone(),
                },
                Some(v),
            )
        }
        Trust::InsecureSkip => (SignatureStatus::Skipped, None),
    };
    let manifest = Manifest::parse(&bytes, manifest_path)?;
    if let Some(v) = &verified {
        bind(v, &manifest, manifest_path)?;
    }
    let payload_path = parent_of(manifest_path).join(&manifest.payload.file);
    let search_dirs = vec![parent_of(manifest_path).to_path_buf()];
    Ok(Bundle {
        progress: crate::progress::Handle::default(),
        search_dirs,
        manifest_path: manifest_path.to_path_buf(),
        manifest,
        manifest_sha256: sha256_hex(&bytes),
        payload_path,
        signature,
    })
}

/// Checks that a verified signature belongs to this manifest: its trusted
/// comment names the bundle, and the manifest names the key that signed it.
pub fn bind(v: &signature::Verified, manifest: &Manifest, manifest_path: &Path) -> Result<()> {
    let sig_path = signature::signature_path(manifest_path);
    signature::check_trusted_comment(
        &v.trusted_comment,
        &manifest.bundle_id,
        &manifest.name,
        &sig_path,
    )?;
    if manifest.signer.key_id != v.key_id {
        return Err(Error::BadManifest {
            path: manifest_path.to_path_buf(),
            reason: format!(
                "names signer {} but was signed by {}",
                manifest.signer.key_id, v.key_id
            ),
        });
    }
    Ok(())
}

/// Reads a manifest file, refusing anything larger than a manifest can be.
pub fn read_manifest_bytes(path: &Path) -> Result<Vec<u8>> {
    read_capped(path, MAX_MANIFEST_BYTES)?.ok_or_else(|| Error::BadManifest {
        path: path.to_path_buf(),
        reason: format!(
            "larger than {} MiB; not a pouch manifest",
            MAX_MANIFEST_BYTES >> 20
        ),
    })
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
        self.search_dirs.extend(dirs.iter().cloned());
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: &crate::progress::Handle) -> Bundle {
        self.progress = progress.clone();
        self
    }

    /// True when the payload is split into parts.
    pub fn is_split(&self) -> bool {
        !self.manifest.payload.parts.is_empty()
    }

    /// Opens the payload as one stream: the single file, or the parts in
    /// order. Sizes are checked first (cheap), and a missing part is named
    /// before anything is read.
    pub fn open_payload(&self) -> Result<Box<dyn Read + Send>> {
        if self.is_split() {
            let parts = &self.manifest.payload.parts;
            let found = media::locate(parts, &self.search_dirs);
            let mut problems = Vec::new();
            let mut list = Vec::new();
            for (part, path) in parts.iter().zip(found) {
                match path {
                    None => problems.push(format!("{}: missing", part.file)),
                    Some(p) => {
                        let size = std::fs::metadata(&p).at(&p)?.len();
                        if size != part.size {
                            problems.push(wrong_size(part, size));
                        }
                        list.push((p, part.clone()));
                    }
                }
            }
            problems.extend(self.unexpected_parts());
            if !problems.is_empty() {
                return Err(Error::BadParts { problems });
            }
            return Ok(Box::new(crate::progress::Reader::new(
                media::PartsReader::new(list),
                self.progress.clone(),
            )));
        }
        let file = File::open(&self.payload_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::PayloadMissing {
                path: self.payload_path.clone(),
            },
            _ => Error::io(&self.payload_path, e),
        })?;
        let size = file.metadata().at(&self.payload_path)?.len();
        if size != self.manifest.payload.size {
            return Err(self.mismatch(
                "size",
                self.manifest.payload.size.to_string(),
                size.to_string(),
            ));
        }
        Ok(Box::new(crate::progress::Reader::new(
            file,
            self.progress.clone(),
        )))
    }

    /// Checks every part of a split payload (all of them, even after a bad
    /// one) and the whole payload's hash; names each bad part.
    fn check_parts(&self) -> Result<()> {
        let parts = &self.manifest.payload.parts;
        let found = media::locate(parts, &self.search_dirs);
        let mut problems = Vec::new();
        let mut whole = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for (part, path) in parts.iter().zip(found) {
            let Some(path) = path else {
                problems.push(format!("{}: missing", part.file));
                continue;
            };
            let mut file = File::open(&path).at(&path)?;
            let mut h = Sha256::new();
            let mut size: u64 = 0;
            loop {
                let n = file.read(&mut buf).at(&path)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                whole.update(&buf[..n]);
                size += n as u64;
            }
            if size != part.size {
                problems.push(wrong_size(part, size));
            } else if hex::encode(h.finalize()) != part.sha256 {
                problems.push(format!("{}: wrong sha256 (damaged)", part.file));
            }
        }
        problems.extend(self.unexpected_parts());
        if !problems.is_empty() {
            return Err(Error::BadParts { problems });
        }
        // Every part is present and intact here, so `whole` saw them all.
        if hex::encode(whole.finalize()) != self.manifest.payload.sha256 {
            return Err(Error::BadParts {
                problems: vec![
                    "the parts are each intact but do not join into the signed payload".into(),
                ],
            });
        }
        Ok(())
    }

    /// Part files of this bundle in the search folders that the manifest does not list.
    fn unexpected_parts(&self) -> Vec<String> {
        media::extra_parts(
            &self.manifest.name,
            self.manifest.payload.parts.len(),
            &self.search_dirs,
        )
        .iter()
        .map(|p| {
            format!(
                "{}: unexpected part, not listed in the manifest",
                p.display()
            )
        })
        .collect()
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
    /// without decrypting it (needs no key).
    pub fn check_payload(&self) -> Result<()> {
        self.progress.start("verifying", self.manifest.payload.size);
        let result = self.check_payload_inner();
        self.progress.finish();
        interrupted_or(result)
    }

    fn check_payload_inner(&self) -> Result<()> {
        if self.is_split() {
            self.check_parts()?;
        } else {
            let file = self.open_payload()?;
            let reader = HashingReader::new(BufReader::with_capacity(1 << 20, file));
            let (size, sha) = reader.drain_and_finish().at(&self.payload_path)?;
            self.check_hash(size, sha)?;
        }
        self.check_stanzas()
    }

    /// The payload's age header is readable without a key: its recipient
    /// stanzas must be of the kinds, and as many, as the manifest's
    /// recipients (grease and unknown stanzas aside). So what the manifest
    /// says about post-quantum protection is checked, not only claimed.
    fn check_stanzas(&self) -> Result<()> {
        let header = BufReader::new(self.open_payload()?);
        let tags =
            crypto::stanza_tags(header).map_err(|e| self.corrupt(format!("age header: {e}")))?;
        let mut found: Vec<&str> = tags.iter().filter_map(|t| crypto::kind_of_tag(t)).collect();
        let mut listed: Vec<&str> = self
            .manifest
            .recipients
            .iter()
            .map(|r| r.kind.as_str())
            .collect();
        found.sort_unstable();
        listed.sort_unstable();
        if found != listed {
            return Err(self.corrupt(format!(
                "the age header seals the file key to [{}], but the signed manifest lists [{}]",
                found.join(", "),
                listed.join(", ")
            )));
        }
        Ok(())
    }

    /// In one pass over the payload: hashes it, decrypts it with
    /// `identities`, decompresses it and checks every entry against the
    /// signed manifest, handing accepted entries to `sink`. Returns the
    /// entries read. The payload hash is checked at the end; the caller must
    /// not make anything written to `sink` visible before this returns `Ok`.
    pub fn check_contents(
        &self,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<Vec<Entry>> {
        self.progress.start("checking", self.manifest.payload.size);
        let result = self.check_contents_inner(identities, sink);
        self.progress.finish();
        interrupted_or(result)
    }

    fn check_contents_inner(
        &self,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<Vec<Entry>> {
        if identities.is_empty() {
            return Err(Error::Usage(
                "no identity given: pass -i IDENTITY_FILE".into(),
            ));
        }
        let file = self.open_payload()?;
        let mut hashing = HashingReader::new(file);
        let result = self.stream_contents(&mut hashing, identities, sink);
        match result {
            Ok(entries) => {
                let (size, sha) = hashing.drain_and_finish().at(&self.payload_path)?;
                self.check_hash(size, sha)?;
                self.check_stanzas()?;
                Ok(entries)
            }
            Err(
                e @ (Error::CorruptPayload { .. }
                | Error::BadEntry { .. }
                | Error::ContentsMismatch { .. }),
            ) if self.is_split() => {
                // Name the bad parts, if that is what went wrong.
                drop(hashing);
                self.check_parts().and(Err(e))
            }
            Err(
                e @ (Error::CorruptPayload { .. }
                | Error::BadEntry { .. }
                | Error::ContentsMismatch { .. }),
            ) => {
                // If the payload is not the one that was signed, say so: that
                // is the root cause, more useful than the symptom.
                match hashing.drain_and_finish() {
                    Ok((size, sha)) => self.check_hash(size, sha).and(Err(e)),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn stream_contents(
        &self,
        payload: &mut HashingReader<Box<dyn Read + Send>>,
        identities: &[crypto::Identity],
        sink: &mut dyn Sink,
    ) -> Result<Vec<Entry>> {
        let corrupt = |reason: String| self.corrupt(reason);
        let fingerprints: Vec<String> = self
            .manifest
            .recipients
            .iter()
            .map(|r| r.fingerprint.clone())
            .collect();
        let buffered = BufReader::with_capacity(1 << 20, payload);
        let plaintext = crypto::decrypt(buffered, identities, &fingerprints, &corrupt)?;
        let plaintext = Layer::new(plaintext, "age");
        // Two stages: this thread's helper reads, hashes and decrypts; this
        // thread decompresses, checks and writes the entries.
        let (chan_w, chan_r) = pipeline::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || pipeline::pump(plaintext, chan_w));
            let mut decoder = zstd::stream::read::Decoder::new(chan_r)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            let expected = Expected {
                entries: if self.manifest.contents.sealed_names {
                    None
                } else {
                    Some(&self.manifest.entries)
                },
                contents: &self.manifest.contents,
            };
            let mut limited = LimitReader::new(
                Layer::new(decoder, "zstd"),
                expected.tar_size_bound(),
                "the decompressed archive",
            );
            // Returning drops the reading end, which stops the other stage.
            archive::read_archive(&mut limited, &expected, sink, &corrupt)
        })
    }
}

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
}

/// Verifies a bundle; see the module docs for what is checked.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport> {
    let bundle = open(&opts.manifest, &opts.trust)?
        .with_parts_from(&opts.parts_from)
        .with_progress(&opts.progress);
    if opts.identities.is_empty() {
        bundle.check_payload()?;
    } else {
        bundle.check_contents(&opts.identities, &mut NullSink)?;
    }
    let m = &bundle.manifest;
    Ok(VerifyReport {
        manifest_path: bundle.manifest_path.clone(),
        manifest_sha256: bundle.manifest_sha256.clone(),
        bundle_id: m.bundle_id.clone(),
        name: m.name.clone(),
        signature: bundle.signature.clone(),
        payload_path: bundle.payload_path.clone(),
        payload_size: m.payload.size,
        payload_sha256: m.payload.sha256.clone(),
        contents_checked: !opts.identities.is_empty(),
        files: m.contents.files,
        folders: m.contents.folders,
        total_bytes: m.contents.total_bytes,
    })
}

/// Names the layer an error came from ("age: …", "zstd: …"), so that a
/// damaged payload is reported at the layer that noticed. An error that
/// already names a lower layer passes through unchanged.
struct Layer<R> {
    inner: R,
    name: &'static str,
}

impl<R> Layer<R> {
    fn new(inner: R, name: &'static str) -> Self {
        Layer { inner, name }
    }
}

impl<R: Read> Read for Layer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let text = e.to_string();
            if text.starts_with("age: ") || text.starts_with("zstd: ") || text.starts_with("part ")
            {
                e
            } else {
                std::io::Error::new(e.kind(), format!("{}: {text}", self.name))
            }
        })
    }
}

fn wrong_size(part: &crate::format::manifest::Part, size: u64) -> String {
    format!(
        "{}: wrong size ({size} bytes, the manifest says {})",
        part.file, part.size
    )
}

/// An interruption wins over whatever error it caused on its way out.
fn interrupted_or<T>(result: Result<T>) -> Result<T> {
    match result {
        Err(_) if crate::interrupt::check().is_err() => Err(Error::Interrupted),
        other => other,
    }
}
