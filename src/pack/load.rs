//! The loading stage: every file opened, checked, read and hashed ahead of
//! the archive, on a thread of its own.
//!
//! Reading and hashing a tree costs about as much as compressing it (for
//! many small files, more: the system calls), so this stage runs between
//! the listing and the archive, whose thread then only writes tar headers
//! and compresses. A small file travels whole, a larger one in pieces of
//! at most [`PIECE`] bytes followed by its sha256. What is read and not yet
//! packed is bounded ([`BATCH_BYTES`] a batch, [`DEPTH`] batches in
//! flight), so memory stays flat whatever the tree holds.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use sha2::{Digest, Sha256};

use super::plan::Planned;
use crate::disk::folder::OpenFolder;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::EntryKind;
use crate::payload::hashing::fill;

/// Files of at most this many bytes travel whole.
const WHOLE_MAX: u64 = 128 << 10;
/// A larger file's contents travel in pieces of at most this many bytes.
const PIECE: usize = 1 << 20;
/// Bytes a batch holds, at most (one piece may pass it).
const BATCH_BYTES: usize = 1 << 20;
/// Pieces a batch holds, at most.
const BATCH_PIECES: usize = 256;
/// Batches in flight between this stage and the archive, at most.
pub(super) const DEPTH: usize = 4;

/// Files of at least this size whose start does not compress go into a
/// frame of their own at a fast level (see [`super::stages`]).
const ADAPTIVE_MIN: u64 = 1 << 20;
/// How much of such a file is tried.
const SAMPLE: usize = 128 << 10;

/// What the archive is handed, in order; bytes lie in the batch's `bytes`.
pub(super) enum Piece {
    /// A folder, or a file and how its contents come.
    Entry(Planned, Contents),
    /// Part of the contents of the file last begun.
    Data(Range<usize>),
    /// The sha256 of the file last begun, after all its data.
    Hashed(String),
}

/// How a file's contents come to the archive.
pub(super) enum Contents {
    /// A folder has none.
    Folder,
    /// Whole, with its sha256.
    Whole(Range<usize>, String),
    /// In `Data` pieces and then `Hashed`; `true` when its start looks
    /// already compressed.
    Pieces(bool),
}

/// Pieces in order, and the bytes they refer to.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) pieces: Vec<Piece>,
    pub(super) bytes: Vec<u8>,
}

impl Batch {
    fn full(&self) -> bool {
        self.pieces.len() >= BATCH_PIECES || self.bytes.len() >= BATCH_BYTES
    }
}

/// The loading stage's sending end.
struct Out {
    tx: SyncSender<Result<Batch>>,
    batch: Batch,
}

/// The archive stage stopped reading: nothing more to do.
struct Stopped;

impl Out {
    fn send(&mut self) -> std::result::Result<(), Stopped> {
        let batch = std::mem::take(&mut self.batch);
        self.tx.send(Ok(batch)).map_err(|_| Stopped)
    }

    /// Sends the batch once it is full. A piece's bytes lie in the batch it
    /// is pushed to, so this comes only after a piece and its bytes.
    fn send_if_full(&mut self) -> std::result::Result<(), Stopped> {
        match self.batch.full() {
            true => self.send(),
            false => Ok(()),
        }
    }

    /// Sends the pieces so far and then `e`, which ends the stage.
    fn fail(mut self, e: Error) {
        if self.send().is_ok() {
            let _ = self.tx.send(Err(e));
        }
    }
}

/// Reads the listing's batches from `listed`, loads their files and sends
/// the pieces on to `tx`; an error (the listing's, or a file's) is sent
/// after the pieces before it and ends the stage, as does the archive
/// stage stopping.
pub(super) fn run(listed: Receiver<Result<Vec<Planned>>>, tx: SyncSender<Result<Batch>>) {
    let mut out = Out {
        tx,
        batch: Batch::default(),
    };
    let mut folders = Folders::default();
    for planned in listed {
        let planned = match planned {
            Ok(planned) => planned,
            Err(e) => return out.fail(e),
        };
        for p in planned {
            let pushed = match (p.kind, p.size <= WHOLE_MAX) {
                (EntryKind::Folder, _) => {
                    folders.listed(&p);
                    out.batch.pieces.push(Piece::Entry(p, Contents::Folder));
                    Ok(out.send_if_full())
                }
                (EntryKind::File, true) => {
                    whole(&p, &mut folders, &mut out.batch.bytes).map(|(range, sha)| {
                        out.batch
                            .pieces
                            .push(Piece::Entry(p, Contents::Whole(range, sha)));
                        out.send_if_full()
                    })
                }
                (EntryKind::File, false) => pieces(p, &mut folders, &mut out),
            };
            match pushed {
                Ok(Ok(())) => {}
                Ok(Err(Stopped)) => return,
                Err(e) => return out.fail(e),
            }
        }
    }
    if !out.batch.pieces.is_empty() {
        let _ = out.send();
    }
}

/// Appends a small file's contents to `bytes`; returns where they lie and
/// their sha256.
fn whole(
    p: &Planned,
    folders: &mut Folders,
    bytes: &mut Vec<u8>,
) -> Result<(Range<usize>, String)> {
    crate::interrupt::check()?;
    let (mut file, before) = opened(folders, p)?;
    let start = bytes.len();
    bytes.resize(start + p.size as usize, 0);
    let n = fill(&mut file, &mut bytes[start..]).map_err(|e| Error::io("reading", &p.source, e));
    if n? < p.size as usize {
        bytes.truncate(start);
        return Err(changed(&p.source, "shrank"));
    }
    unchanged(&p.source, &file, &before)?;
    let sha = hex::encode(Sha256::digest(&bytes[start..]));
    Ok((start..bytes.len(), sha))
}

/// Sends a larger file as its entry, its data in pieces and its sha256.
fn pieces(
    p: Planned,
    folders: &mut Folders,
    out: &mut Out,
) -> Result<std::result::Result<(), Stopped>> {
    let (mut file, before) = opened(folders, &p)?;
    let source = p.source.clone();
    let mut hasher = Sha256::new();
    let mut remaining = p.size;
    let mut entry = Some(p);
    while remaining > 0 {
        crate::interrupt::check()?;
        let bytes = &mut out.batch.bytes;
        let start = bytes.len();
        let want = remaining.min(PIECE as u64) as usize;
        bytes.resize(start + want, 0);
        let n =
            fill(&mut file, &mut bytes[start..]).map_err(|e| Error::io("reading", &source, e))?;
        bytes.truncate(start + n);
        if n == 0 {
            return Err(changed(&source, "shrank"));
        }
        hasher.update(&bytes[start..]);
        remaining -= n as u64;
        if let Some(p) = entry.take() {
            let sample = &bytes[start..start + n.min(SAMPLE)];
            let incompressible = p.size >= ADAPTIVE_MIN && incompressible(sample);
            out.batch
                .pieces
                .push(Piece::Entry(p, Contents::Pieces(incompressible)));
        }
        out.batch.pieces.push(Piece::Data(start..start + n));
        if let Err(stopped) = out.send_if_full() {
            return Ok(Err(stopped));
        }
    }
    // The entry went out with the first piece: a file listed as larger
    // than WHOLE_MAX has one.
    unchanged(&source, &file, &before)?;
    out.batch
        .pieces
        .push(Piece::Hashed(hex::encode(hasher.finalize())));
    Ok(out.send_if_full())
}

/// Whether a file's start looks already compressed: it shrinks by less
/// than 3 % at zstd level 1.
fn incompressible(sample: &[u8]) -> bool {
    zstd::bulk::compress(sample, 1).is_ok_and(|c| c.len() * 100 > sample.len() * 97)
}

/// The error for a source that changed while it was packed.
fn changed(source: &Path, what: &str) -> Error {
    Error::BadSource {
        path: source.to_path_buf(),
        reason: format!("{what} while being packed; pack again when it is no longer being written"),
    }
}

/// The folders being loaded from: the one open, and the folders listed
/// last and above it (each file's folder is among them: a folder's entries
/// come right after it, its subfolders' among them).
#[derive(Default)]
struct Folders {
    open: OpenFolder,
    listed: Vec<(std::path::PathBuf, (u64, u64))>,
}

impl Folders {
    /// A folder listed: the entries after it, up to its next sibling, lie in it.
    fn listed(&mut self, p: &Planned) {
        while self
            .listed
            .last()
            .is_some_and(|(up, _)| !p.source.starts_with(up))
        {
            self.listed.pop();
        }
        self.listed.push((p.source.clone(), p.ino));
    }
}

/// The file to pack, opened relative to its folder (kept open for the
/// files after it), and its metadata: still the regular file of the size
/// that was listed. A FIFO or a device put in its place since (or a
/// symbolic link to one) is opened without blocking or following, and
/// refused before anything is read, so that no one who can write in the
/// tree can hang the pack.
fn opened(folders: &mut Folders, p: &Planned) -> Result<(File, std::fs::Metadata)> {
    use rustix::fs::{Mode, OFlags};
    let flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open_err = |e: std::io::Error| Error::io("opening", &p.source, e);
    let fd = match folders.open.of(&p.source).map_err(open_err)? {
        Some(at) => {
            // A folder swapped for a link to another one after it was
            // listed would have its files read from elsewhere.
            let parent = p.source.parent();
            let listed = || {
                folders
                    .listed
                    .iter()
                    .rev()
                    .find(|(f, _)| Some(f.as_path()) == parent)
            };
            if let Some((_, ino)) = at.fresh.then(listed).flatten() {
                let st = rustix::fs::fstat(at.dir).map_err(|e| open_err(e.into()))?;
                if (st.st_dev, st.st_ino) != *ino {
                    return Err(changed(&p.source, "has a folder that was replaced"));
                }
            }
            rustix::fs::openat(at.dir, at.name, flags, Mode::empty())
        }
        None => rustix::fs::open(&p.source, flags, Mode::empty()),
    };
    let file = File::from(fd.map_err(|e| match e == rustix::io::Errno::LOOP {
        true => changed(&p.source, "became a symbolic link"),
        false => open_err(e.into()),
    })?);
    let before = file
        .metadata()
        .doing("reading the metadata of", &p.source)?;
    if !before.is_file() || (before.dev(), before.ino()) != p.ino || before.len() != p.size {
        return Err(changed(&p.source, "changed"));
    }
    Ok((file, before))
}

/// Whether the file read is unchanged since it was opened: a file that
/// grew, shrank or was rewritten meanwhile has another size, modification
/// or change time now.
fn unchanged(source: &Path, file: &File, before: &std::fs::Metadata) -> Result<()> {
    let after = file.metadata().doing("reading the metadata of", source)?;
    if after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
        || after.ctime() != before.ctime()
    {
        return Err(changed(source, "changed"));
    }
    Ok(())
}

/// The archive's end of the loading stage: the pieces one at a time.
pub(super) struct Feed<I> {
    batches: I,
    pieces: std::vec::IntoIter<Piece>,
    bytes: Vec<u8>,
}

impl<I: Iterator<Item = Result<Batch>>> Feed<I> {
    pub(super) fn new(batches: I) -> Feed<I> {
        Feed {
            batches,
            pieces: Vec::new().into_iter(),
            bytes: Vec::new(),
        }
    }

    /// The next piece, or the error that ended the stage.
    pub(super) fn next_piece(&mut self) -> Option<Result<Piece>> {
        loop {
            if let Some(piece) = self.pieces.next() {
                return Some(Ok(piece));
            }
            match self.batches.next()? {
                Ok(batch) => {
                    self.pieces = batch.pieces.into_iter();
                    self.bytes = batch.bytes;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The bytes of a piece just taken.
    pub(super) fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.bytes[range]
    }

    /// The contents of the file just begun (`Contents::Pieces`), `size`
    /// bytes, as a reader.
    pub(super) fn contents<'f>(
        &'f mut self,
        size: u64,
        progress: &'f crate::progress::Handle,
    ) -> FileData<'f, I> {
        FileData {
            feed: self,
            left: 0..0,
            remaining: size,
            sha256: None,
            failure: None,
            progress,
        }
    }
}

/// A file's contents as they come in pieces: exactly its size, then the
/// end. Why it failed, if it did, is kept for the caller: a source file's
/// problem is not the output's.
pub(super) struct FileData<'f, I> {
    feed: &'f mut Feed<I>,
    left: Range<usize>,
    remaining: u64,
    pub(super) sha256: Option<String>,
    pub(super) failure: Option<Error>,
    progress: &'f crate::progress::Handle,
}

impl<I> FileData<'_, I> {
    fn fail(&mut self, e: Error) -> io::Error {
        let shown = io::Error::other(e.to_string());
        self.failure = Some(e);
        shown
    }
}

impl<I: Iterator<Item = Result<Batch>>> Read for FileData<'_, I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let early = || Error::Internal("the loading stage ended a file early".into());
        while self.left.is_empty() {
            if self.sha256.is_some() {
                return Ok(0);
            }
            match self.feed.next_piece() {
                Some(Ok(Piece::Data(r))) if r.len() as u64 <= self.remaining => self.left = r,
                Some(Ok(Piece::Hashed(sha))) if self.remaining == 0 => {
                    self.sha256 = Some(sha);
                    return Ok(0);
                }
                Some(Err(e)) => return Err(self.fail(e)),
                Some(Ok(_)) | None => return Err(self.fail(early())),
            }
        }
        let n = buf.len().min(self.left.len());
        let start = self.left.start;
        buf[..n].copy_from_slice(&self.feed.bytes[start..start + n]);
        self.left.start += n;
        self.remaining -= n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn planned(source: PathBuf, kind: EntryKind) -> Planned {
        let meta = std::fs::metadata(&source).expect("stat");
        Planned {
            path: source.to_string_lossy().into_owned(),
            kind,
            size: if kind == EntryKind::File {
                meta.len()
            } else {
                0
            },
            executable: false,
            mtime: 0,
            ino: (meta.dev(), meta.ino()),
            stamp: crate::delta::state::Stamp::of(&meta),
            source,
        }
    }

    /// What the loader makes of `entries`: a mark per small file loaded,
    /// or the error.
    fn load(entries: Vec<Planned>) -> Result<Vec<()>> {
        let (listed_tx, listed_rx) = std::sync::mpsc::sync_channel(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(DEPTH);
        listed_tx.send(Ok(entries)).expect("send");
        drop(listed_tx);
        std::thread::spawn(move || run(listed_rx, tx));
        let mut files = Vec::new();
        for batch in rx {
            for piece in batch?.pieces {
                if let Piece::Entry(_, Contents::Whole(..)) = piece {
                    files.push(());
                }
            }
        }
        Ok(files)
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_it_was_listed_is_refused() {
        // The listing saw `case/sub` as a folder; then, before its file was
        // read, someone with write access to the tree put a link to a
        // folder of theirs (or to one only the clerk can read) in its place.
        let dir = tempfile::tempdir().expect("temp");
        let case = dir.path().join("case");
        let sub = case.join("sub");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join("x"), "not in the tree").expect("write");
        let entries = vec![
            planned(case.clone(), EntryKind::Folder),
            planned(sub.clone(), EntryKind::Folder),
        ];
        std::fs::rename(&sub, case.join("sub.was")).expect("rename");
        std::os::unix::fs::symlink(&elsewhere, &sub).expect("symlink");
        // The file as a listing racing the swap would have seen it.
        let mut entries = entries;
        entries.push(Planned {
            source: sub.join("x"),
            ..planned(elsewhere.join("x"), EntryKind::File)
        });
        let Err(err) = load(entries) else {
            panic!("a file read through a swapped folder")
        };
        assert!(
            err.to_string().contains("has a folder that was replaced"),
            "{err}"
        );

        // The same entries with the folder in place load.
        std::fs::remove_file(&sub).expect("unlink");
        std::fs::rename(case.join("sub.was"), &sub).expect("rename back");
        std::fs::write(sub.join("x"), "in the tree").expect("write");
        let entries = vec![
            planned(case, EntryKind::Folder),
            planned(sub.clone(), EntryKind::Folder),
            planned(sub.join("x"), EntryKind::File),
        ];
        assert_eq!(load(entries).expect("loads").len(), 1);
    }
}
