//! Manifests too large to hold in memory: a million files make a 150 MB
//! entry list.
//!
//! Such a manifest is read only when its signature is checked, and it is
//! first copied, with its sha256, to an unnamed temporary file that nobody
//! else can change: the signature is checked on the copy (minisign
//! prehashes, so a pass over it), the first part is parsed as usual, and
//! the entry list is checked and counted in one more pass, a line at a time.
//! Unpack and `verify -i` then follow the list from the copy, entry by entry,
//! as they read the archive. Memory stays flat whatever the list's length.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};
use crate::format::entries::{self, EntryCheck, EntryLines};
use crate::format::manifest::{Entry, Manifest, MAX_MANIFEST_BYTES};
use crate::payload::archive::Listed;
use crate::signature::{self, TrustedKey, Verified};

/// The largest manifest read at all: about 25 million entries.
pub const MAX_LARGE_MANIFEST_BYTES: u64 = 4 << 30;

/// The most bytes before the entry list (the first part is small).
const MAX_HEAD_BYTES: u64 = 1 << 20;

/// The entry list of a large manifest, in its private copy.
#[derive(Debug, Clone)]
pub struct Listing {
    copy: Arc<File>,
    path: PathBuf,
    /// Where the list starts in the copy, and on which line.
    at: u64,
    first_line: usize,
}

/// A large manifest, checked: the first part parsed, the signature that
/// vouches for it, the list, and the sha256 of the file.
pub struct Large {
    /// The manifest without its entry list.
    pub manifest: Manifest,
    /// The signature, verified.
    pub verified: Verified,
    /// The entry list.
    pub listing: Listing,
    /// sha256 of the manifest file.
    pub sha256: String,
}

/// Reads the manifest at `path`, larger than [`MAX_MANIFEST_BYTES`]: copies
/// it, checks its signature by one of `keys`, parses its first part and
/// checks its entry list against the signed counts and digest.
pub fn open(path: &Path, keys: &[TrustedKey]) -> Result<Large> {
    let bad = |reason: String| Error::BadManifest {
        path: path.to_path_buf(),
        reason,
    };
    let sig_path = signature::signature_path(path);
    if fs::symlink_metadata(&sig_path).is_err() {
        return Err(bad(format!(
            "larger than {} MiB, and a manifest that large is read only to check it against its signature, which is not there ({})",
            MAX_MANIFEST_BYTES >> 20,
            sig_path.display()
        )));
    }
    let sig_text = signature::read_signature(&sig_path)?;
    // Checked on the medium first, so that nobody without the signer's
    // key can make pouch copy gigabytes; then on the copy, which is what
    // is read from then on.
    let mut original = open_regular(path)?;
    let size = original
        .metadata()
        .doing("reading the metadata of", path)?
        .len();
    if size > MAX_LARGE_MANIFEST_BYTES {
        return Err(too_large(path));
    }
    signature::verify_stream(&mut original, &sig_text, &sig_path, keys)?;
    let (mut copy, sha256) = private_copy(path)?;
    let verified = signature::verify_stream(&mut copy, &sig_text, &sig_path, keys)?;
    copy.rewind().doing("reading", path)?;
    let (head, at) = head_of(&mut copy).map_err(&bad)?;
    let manifest = Manifest::parse_vouched_head(head.as_bytes(), path)?;
    if manifest.contents.sealed_names {
        return Err(bad(
            "contents.sealed_names is true but entries are listed".into()
        ));
    }
    let listing = Listing {
        copy: Arc::new(copy),
        path: path.to_path_buf(),
        at,
        first_line: head.lines().count() + 1,
    };
    let mut check = EntryCheck::default();
    let mut digest = entries::Digest::default();
    let (mut files, mut folders, mut bytes) = (0u64, 0u64, 0u64);
    for e in listing.lines() {
        let e = e.map_err(&bad)?;
        check.next(&e).map_err(&bad)?;
        digest.update(&e);
        match e.kind {
            crate::format::manifest::EntryKind::File => {
                files += 1;
                bytes = bytes.saturating_add(e.file_size());
            }
            crate::format::manifest::EntryKind::Folder => folders += 1,
        }
    }
    let c = &manifest.contents;
    if (files, folders, bytes) != (c.files, c.folders, c.total_bytes) {
        return Err(bad(format!(
            "contents says {} files, {} folders, {} bytes but entries list {files}, {folders}, {bytes}",
            c.files, c.folders, c.total_bytes
        )));
    }
    if digest.finish() != c.entries_sha256 {
        return Err(bad(
            "contents.entries_sha256 does not match the entries".into()
        ));
    }
    Ok(Large {
        manifest,
        verified,
        listing,
        sha256,
    })
}

impl Listing {
    fn lines(&self) -> EntryLines<BufReader<At>> {
        let reader = At {
            file: self.copy.clone(),
            pos: self.at,
        };
        EntryLines::new(
            BufReader::with_capacity(256 * 1024, reader),
            self.first_line,
        )
    }

    /// The entries, in order.
    pub fn entries(&self) -> Listed<'static> {
        let path = self.path.clone();
        Box::new(
            self.lines()
                .map(move |e: std::result::Result<Entry, String>| {
                    e.map_err(|reason| Error::BadManifest {
                        path: path.clone(),
                        reason,
                    })
                }),
        )
    }
}

fn too_large(path: &Path) -> Error {
    Error::BadManifest {
        path: path.to_path_buf(),
        reason: format!(
            "larger than {} GiB; not a pouch manifest",
            MAX_LARGE_MANIFEST_BYTES >> 30
        ),
    }
}

/// Copies the file at `path` (at most [`MAX_LARGE_MANIFEST_BYTES`]) to an
/// unnamed temporary file; returns the copy, at its start, and its sha256.
fn private_copy(path: &Path) -> Result<(File, String)> {
    let mut from = open_regular(path)?.take(MAX_LARGE_MANIFEST_BYTES + 1);
    let mut copy = tempfile::tempfile().doing("creating a temporary file for", path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        crate::interrupt::check()?;
        let n = from.read(&mut buf).doing("reading", path)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        copy.write_all(&buf[..n])
            .doing("copying to a temporary file", path)?;
        len += n as u64;
    }
    if len > MAX_LARGE_MANIFEST_BYTES {
        return Err(too_large(path));
    }
    copy.rewind().doing("reading", path)?;
    Ok((copy, hex::encode(sha.finalize())))
}

/// The text before the first `[[entries]]` line of `copy` and where that
/// line starts.
fn head_of(copy: &mut File) -> std::result::Result<(String, u64), String> {
    let mut reader = BufReader::new(copy).take(MAX_HEAD_BYTES);
    let mut head = Vec::new();
    loop {
        let start = head.len();
        let n = reader
            .read_until(b'\n', &mut head)
            .map_err(|e| format!("cannot be read ({e})"))?;
        if n == 0 {
            return Err(format!(
                "no entry list in its first {} MiB, yet larger than {} MiB",
                MAX_HEAD_BYTES >> 20,
                MAX_MANIFEST_BYTES >> 20
            ));
        }
        let line = &head[start..];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == entries::HEADER.as_bytes() {
            head.truncate(start);
            let text = String::from_utf8(head).map_err(|_| "not UTF-8".to_string())?;
            return Ok((text, start as u64));
        }
    }
}

/// Reads a shared file from a position of its own.
struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
