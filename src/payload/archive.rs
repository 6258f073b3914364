//! The tar layer: writing entries with normalised headers, and reading them
//! back under pouch's entry policy.
//!
//! Reading treats the archive as hostile. Every entry is checked *before* any
//! of its bytes reach a [`Sink`]:
//! - only regular files and folders are accepted (no links, devices, FIFOs or
//!   unknown types);
//! - the path must pass [`check_path`]: relative, `/`-separated UTF-8 with no
//!   `.`, `..`, empty, drive-letter or `~` components and no control characters;
//! - names are unique, and an entry's folder must have come before it;
//! - the entry must be the next one the signed manifest lists (or, with sealed
//!   names, fit within the signed counts and total size);
//! - the inner manifest is the last member, and nothing but zero padding follows
//!   the end of the archive.
//!
//! After the last entry, the list actually read must equal the inner manifest
//! and hash to the signed [`crate::format::manifest::entries_digest`].

use std::io::{self, BufRead, Read, Write};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::format::entries;
use crate::format::manifest::{
    self, Contents, Entry, EntryKind, InnerManifest, INNER_MANIFEST_NAME,
};
use crate::format::names::{check_path, Clash, NameSet, MAX_PATH_BYTES};
use crate::payload::strict_tar::{Header, TarReader};

/// Writes tar entries with normalised headers: GNU format, uid/gid 0, no user
/// or group names, modes 0644/0755, mtimes as given.
pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive on `w`.
    pub fn new(w: W) -> Self {
        let mut builder = tar::Builder::new(w);
        builder.follow_symlinks(false);
        TarWriter { builder }
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    /// Appends a folder.
    pub fn folder(&mut self, path: &str, mtime: u64) -> io::Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755, mtime);
        self.builder.append_data(&mut h, path, io::empty())
    }

    /// Appends a file of exactly `size` bytes read from `data`. The caller
    /// makes sure `data` yields exactly `size` bytes (see [`crate::pack`](mod@crate::pack)).
    pub fn file(
        &mut self,
        path: &str,
        size: u64,
        executable: bool,
        mtime: u64,
        data: impl Read,
    ) -> io::Result<()> {
        let mode = if executable { 0o755 } else { 0o644 };
        let mut h = Self::header(tar::EntryType::Regular, size, mode, mtime);
        self.builder.append_data(&mut h, path, data)
    }

    /// The writer the archive goes to (between entries only).
    pub fn inner_mut(&mut self) -> &mut W {
        self.builder.get_mut()
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// Where the entries of an archive go once they passed the policy.
pub trait Sink {
    /// Creates a folder; its parent was created before.
    fn folder(&mut self, path: &str) -> Result<()>;
    /// Starts a file; its folder was created before.
    fn begin_file(&mut self, path: &str, executable: bool) -> Result<()>;
    /// Appends bytes to the file begun last.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Ends the file begun last; `mtime` is from the archive (seconds since the epoch).
    fn end_file(&mut self, mtime: u64) -> Result<()>;
    /// Where the reader of the archive may publish the chunk its data lies
    /// in ([`crate::payload::pipeline::ChannelReader::publish`]), for a sink
    /// that keeps chunks rather than copy what [`Sink::write`] is given.
    fn published(&self) -> Option<crate::payload::pipeline::Published> {
        None
    }
}

/// A sink that keeps nothing: for verifying without writing.
pub struct NullSink;

impl Sink for NullSink {
    fn folder(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn begin_file(&mut self, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end_file(&mut self, _: u64) -> Result<()> {
        Ok(())
    }
}

/// The signed manifest's entries, in order, as they are read.
pub type Listed<'a> = Box<dyn Iterator<Item = Result<Entry>> + 'a>;

/// What the signed outer manifest says the archive holds.
pub struct Expected<'a> {
    /// The listed entries, or `None` when names are sealed.
    pub entries: Option<Listed<'a>>,
    /// Signed counts and digest.
    pub contents: &'a Contents,
    /// For a delta bundle, its signed `[delta]` table: the inner manifest
    /// ends with the deleted paths it binds.
    pub delta: Option<&'a crate::format::delta::Delta>,
    /// Keep every entry as read, in [`Seen::collected`].
    pub collect: bool,
}

impl Expected<'_> {
    /// An upper bound on the tar stream's size for these contents: data, one
    /// header per entry plus room for long-name records and padding, the inner
    /// manifest and the end marker. Used to stop decompression bombs early.
    pub fn tar_size_bound(&self) -> u64 {
        let entries = self
            .contents
            .files
            .saturating_add(self.contents.folders)
            .saturating_add(1);
        let per_entry = 512 + 511 + 3 * 512 + MAX_PATH_BYTES as u64;
        self.contents
            .total_bytes
            .saturating_add(entries.saturating_mul(per_entry))
            .saturating_add(manifest::MAX_MANIFEST_BYTES)
            .saturating_add(64 * 1024)
    }
}

fn bad_entry(entry: &str, reason: impl Into<String>) -> Error {
    Error::BadEntry {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// What an archive held, as read: kept as counts and digests, so that
/// memory does not grow with the number of entries.
pub struct Seen {
    /// Files, folders and bytes in files.
    pub counts: (u64, u64, u64),
    digest: entries::Digest,
    /// sha256 and length of the inner manifest these entries make.
    inner: Sha256,
    inner_len: u64,
    /// A delta's deleted paths, from the end of its inner manifest.
    pub deleted: Vec<String>,
    /// Every entry as read, when [`Expected::collect`] asks for them: as
    /// `[[entries]]` tables in an unnamed temporary file.
    pub collected: Option<io::BufWriter<std::fs::File>>,
}

impl Default for Seen {
    fn default() -> Self {
        let head = InnerManifest::head();
        Seen {
            counts: (0, 0, 0),
            digest: entries::Digest::default(),
            inner: Sha256::new_with_prefix(head.as_bytes()),
            inner_len: head.len() as u64,
            deleted: Vec::new(),
            collected: None,
        }
    }
}

impl Seen {
    fn add(&mut self, e: &Entry, scratch: &mut String) {
        let (files, folders, bytes) = &mut self.counts;
        match e.kind {
            EntryKind::File => {
                *files += 1;
                *bytes = bytes.saturating_add(e.file_size());
            }
            EntryKind::Folder => *folders += 1,
        }
        self.digest.update(e);
        scratch.clear();
        entries::write(scratch, e);
        self.inner.update(scratch.as_bytes());
        self.inner_len += scratch.len() as u64;
    }

    fn entries(&self) -> u64 {
        self.counts.0 + self.counts.1
    }
}

/// Reads an archive from `reader`, checks every entry against the policy and
/// `expected`, hands accepted entries to `sink`, and returns what it read.
/// `corrupt` turns a read error (damaged or truncated stream) into the
/// caller's error.
pub fn read_archive<R: BufRead>(
    reader: &mut R,
    expected: &mut Expected<'_>,
    sink: &mut dyn Sink,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<Seen> {
    let read_err = |e: io::Error| corrupt(format!("{e}"));
    let mut archive = TarReader::new(&mut *reader);
    let mut seen = Seen::default();
    if expected.collect {
        let file = tempfile::tempfile()
            .map_err(|e| Error::io("writing", "the record of the tree (a temporary file)", e))?;
        seen.collected = Some(io::BufWriter::with_capacity(256 << 10, file));
    }
    let mut scratch = String::with_capacity(256);
    let mut names = NameSet::default();
    let mut inner_seen = false;
    let mut bytes_so_far: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];

    while let Some(header) = archive.next_header().map_err(read_err)? {
        let raw_path = header.path.clone();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        if inner_seen {
            return Err(bad_entry(
                &shown,
                "comes after the inner manifest, which must be last",
            ));
        }
        let kind = entry_kind(header.kind).map_err(|r| bad_entry(&shown, r))?;
        let mut path_bytes: &[u8] = &raw_path;
        if kind == EntryKind::Folder {
            path_bytes = path_bytes.strip_suffix(b"/").unwrap_or(path_bytes);
        }
        check_path(path_bytes).map_err(|r| bad_entry(&shown, r))?;
        let path = String::from_utf8_lossy(path_bytes).into_owned();
        let size = header.size;
        if kind == EntryKind::Folder && size != 0 {
            return Err(bad_entry(&path, "a folder with data"));
        }

        if path == INNER_MANIFEST_NAME {
            seen.deleted = check_inner_manifest(
                &mut archive,
                &header,
                (&seen, expected.delta),
                &mut buf,
                &read_err,
            )?;
            inner_seen = true;
            continue;
        }

        names
            .insert(&path, kind == EntryKind::Folder)
            .map_err(|clash| {
                let why = match clash {
                    Clash::Twice => "appears twice".to_string(),
                    Clash::Collides(other) => format!(
                        "collides with {other:?} on filesystems that ignore case or Unicode normalisation"
                    ),
                    Clash::NoFolder => "its folder does not come before it, with the folder's other entries".to_string(),
                    Clash::Reserved => "is named like the inner manifest".to_string(),
                };
                bad_entry(&path, why)
            })?;
        let executable = kind == EntryKind::File && header.mode & 0o111 != 0;
        let want = check_signed(
            expected,
            seen.entries(),
            &path,
            kind,
            size,
            executable,
            &mut bytes_so_far,
        )?;

        let entry = match kind {
            EntryKind::Folder => {
                sink.folder(&path)?;
                Entry::folder(path)
            }
            EntryKind::File => {
                sink.begin_file(&path, executable)?;
                let sha256 = stream_file(&mut archive, sink, &path, size, corrupt)?;
                if let Some(want) = want {
                    if want.sha256.as_deref() != Some(sha256.as_str()) {
                        return Err(bad_entry(&path, "sha256 differs from the signed manifest"));
                    }
                }
                sink.end_file(header.mtime)?;
                Entry::file(path, size, sha256, executable)
            }
        };
        seen.add(&entry, &mut scratch);
        if let Some(out) = &mut seen.collected {
            io::Write::write_all(out, scratch.as_bytes()).map_err(|e| {
                Error::io("writing", "the record of the tree (a temporary file)", e)
            })?;
        }
    }

    // Only zero padding may follow the end-of-archive marker.
    loop {
        let n = reader.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(corrupt("data follows the end of the archive".into()));
        }
    }

    check_totals(&seen, expected, inner_seen)?;
    Ok(seen)
}

/// Checks the inner manifest, the member named [`INNER_MANIFEST_NAME`];
/// returns a delta's deleted paths, which end it.
fn check_inner_manifest<R: BufRead>(
    archive: &mut TarReader<'_, R>,
    header: &Header,
    (seen, delta): (&Seen, Option<&crate::format::delta::Delta>),
    buf: &mut [u8],
    read_err: &dyn Fn(io::Error) -> Error,
) -> Result<Vec<String>> {
    let (path, size) = (INNER_MANIFEST_NAME, header.size);
    // The inner manifest is fully determined by the entries read so
    // far, so it is not parsed: its bytes must be the canonical rendering
    // of those entries, whose length and sha256 were kept as they were
    // read. Its size is checked before a byte of it is read. A delta's
    // deleted paths follow, bound by the signed `deleted_sha256`.
    if entry_kind(header.kind) != Ok(EntryKind::File) {
        return Err(bad_entry(path, "inner manifest is not a file"));
    }
    let tail = size.checked_sub(seen.inner_len);
    let tail_fits = match (tail, delta) {
        (Some(0), None) => true,
        (Some(n), Some(_)) => n <= manifest::MAX_MANIFEST_BYTES,
        _ => false,
    };
    if !tail_fits {
        return Err(Error::ContentsMismatch {
            reason: format!(
                "the inner manifest ({size} bytes) does not list the entries in the archive ({} bytes expected)",
                seen.inner_len
            ),
        });
    }
    let mut hash = Sha256::new();
    let mut rest = Vec::new();
    let mut left = seen.inner_len;
    loop {
        let n = archive.read_data(buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        let head = (left.min(n as u64)) as usize;
        hash.update(&buf[..head]);
        rest.extend_from_slice(&buf[head..n]);
        left -= head as u64;
    }
    if hash.finalize() != seen.inner.clone().finalize() {
        return Err(Error::ContentsMismatch {
            reason: "the inner manifest differs from the entries in the archive".into(),
        });
    }
    let Some(delta) = delta else {
        return Ok(Vec::new());
    };
    let mismatch = |why: String| Error::ContentsMismatch {
        reason: format!("the deleted paths at the end of the inner manifest {why}"),
    };
    if super::hashing::sha256_hex(&rest) != delta.deleted_sha256 {
        return Err(mismatch(
            "differ from the signed delta.deleted_sha256".into(),
        ));
    }
    let text = std::str::from_utf8(&rest).map_err(|_| mismatch("are not UTF-8".into()))?;
    let deleted = crate::format::delta::parse_block(text).map_err(mismatch)?;
    if deleted.len() as u64 != delta.deleted_count {
        return Err(mismatch(format!(
            "are {} where the signed delta counts {}",
            deleted.len(),
            delta.deleted_count
        )));
    }
    if !delta.deleted.is_empty() && delta.deleted != deleted {
        return Err(mismatch(
            "differ from those the signed manifest lists".into(),
        ));
    }
    Ok(deleted)
}

/// Checks an entry against what the signed manifest says of it: the entry
/// at `index` of the list, or, with sealed names, the signed counts.
fn check_signed(
    expected: &mut Expected<'_>,
    index: u64,
    path: &str,
    kind: EntryKind,
    size: u64,
    executable: bool,
    bytes_so_far: &mut u64,
) -> Result<Option<Entry>> {
    let max_entries = expected
        .contents
        .files
        .saturating_add(expected.contents.folders);
    match &mut expected.entries {
        Some(list) => {
            let Some(want) = list.next().transpose()? else {
                return Err(bad_entry(path, "is not in the signed manifest"));
            };
            if want.path != path || want.kind != kind {
                return Err(bad_entry(
                    path,
                    format!(
                        "the signed manifest lists {:?} ({:?}) here",
                        want.path, want.kind
                    ),
                ));
            }
            if kind == EntryKind::File && want.file_size() != size {
                return Err(bad_entry(
                    path,
                    format!("size {size} differs from the signed {}", want.file_size()),
                ));
            }
            if want.executable() != executable {
                return Err(bad_entry(path, "mode differs from the signed manifest"));
            }
            Ok(Some(want))
        }
        None => {
            if index >= max_entries {
                return Err(bad_entry(
                    path,
                    "more entries than the signed manifest counts",
                ));
            }
            *bytes_so_far = bytes_so_far.saturating_add(size);
            if *bytes_so_far > expected.contents.total_bytes {
                return Err(bad_entry(
                    path,
                    "more bytes than the signed manifest counts",
                ));
            }
            Ok(None)
        }
    }
}

/// Streams the current file's data to `sink`, hashing it; returns its sha256.
fn stream_file<R: BufRead>(
    archive: &mut TarReader<'_, R>,
    sink: &mut dyn Sink,
    path: &str,
    size: u64,
    corrupt: &dyn Fn(String) -> Error,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut done: u64 = 0;
    loop {
        crate::interrupt::check()?;
        let data = archive.data().map_err(|e| corrupt(format!("{e}")))?;
        if data.is_empty() {
            break;
        }
        hasher.update(data);
        sink.write(data)?;
        let n = data.len();
        archive.consume_data(n);
        done += n as u64;
    }
    if done != size {
        return Err(corrupt(format!(
            "entry {path:?} is truncated ({done} of {size} bytes)"
        )));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks the whole list read against the signed manifest: the inner
/// manifest was there, the list has no more entries, and the counts and
/// digest match.
fn check_totals(seen: &Seen, expected: &mut Expected<'_>, inner_seen: bool) -> Result<()> {
    if !inner_seen {
        return Err(Error::ContentsMismatch {
            reason: "the archive has no inner manifest (it is truncated or not made by pouch)"
                .into(),
        });
    }
    if let Some(missing) = expected.entries.as_mut().and_then(|list| list.next()) {
        return Err(Error::ContentsMismatch {
            reason: format!(
                "{} is listed in the signed manifest but missing",
                crate::format::names::escape(&missing?.path)
            ),
        });
    }
    let (files, folders, bytes) = seen.counts;
    let c = expected.contents;
    if (files, folders, bytes) != (c.files, c.folders, c.total_bytes) {
        return Err(Error::ContentsMismatch {
            reason: format!(
                "found {files} files, {folders} folders, {bytes} bytes; the signed manifest counts {}, {}, {}",
                c.files, c.folders, c.total_bytes
            ),
        });
    }
    if seen.digest.clone().finish() != c.entries_sha256 {
        return Err(Error::ContentsMismatch {
            reason: "the entries' digest differs from the signed manifest".into(),
        });
    }
    Ok(())
}

/// The entry kind of a tar type flag, if pouch accepts it.
fn entry_kind(flag: u8) -> std::result::Result<EntryKind, String> {
    match flag {
        b'0' | b'\0' | b'7' => Ok(EntryKind::File),
        b'5' => Ok(EntryKind::Folder),
        other => Err(format!(
            "is a {}, and only files and folders are allowed",
            type_name(other)
        )),
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "FIFO",
        b'S' => "sparse file",
        b'V' => "volume label",
        _ => "entry of an unsupported type",
    }
}
