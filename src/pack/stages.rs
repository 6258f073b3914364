//! The stream stages: `age(zstd(tar))` of a plan, made on three pipeline
//! threads (and zstd's workers).
//!
//! The calling thread reads and hashes each file into a tar whose zstd
//! frames change level per entry; the next thread encrypts (age); the last
//! hashes and writes. A source that changes while it is read fails the pack.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::listed::Listed;
use super::plan::Planned;
use super::PackOptions;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{self, Entry, EntryKind, InnerManifest};
use crate::payload::archive::TarWriter;
use crate::payload::crypto;
use crate::payload::pipeline::{self, ChannelWriter};

/// Writes `age(zstd(tar))` of the plan to `out`; returns the entries as
/// packed (listed on disk) and `out`, flushed. Three stages on three
/// threads: this one reads and hashes the files and makes the compressed
/// archive; the next encrypts; the last hashes and writes (see
/// [`crate::payload::pipeline`]).
pub(super) fn write_payload<W: Write + Send>(
    out: W,
    plan: impl Iterator<Item = Result<Planned>>,
    opts: &PackOptions,
    (inner_mtime, tree): (u64, Tree<'_>),
) -> Result<(Listed, W)> {
    let out_name = PathBuf::from(format!(
        "{} (payload being written)",
        opts.out_dir.display()
    ));
    let out_err = |e: io::Error| Error::io("writing", &out_name, e);
    let (chan_w, mut chan_r) = pipeline::channel();
    // Two chunks in flight are enough between encrypting and writing.
    let (sealed_w, mut sealed_r) = pipeline::with_depth(2);
    std::thread::scope(|scope| {
        let recipients = &opts.recipients;
        let out_err = &out_err;
        // The last stage hashes (in `out`) and writes what the age stage
        // encrypted: on already-compressed files, where zstd has little to
        // do, encrypting and hashing together would hold the others up.
        let writer = scope.spawn(move || -> Result<W> {
            let mut out = out;
            pipeline::drain(&mut sealed_r, &mut out).map_err(out_err)?;
            out.flush().map_err(out_err)?;
            Ok(out)
        });
        let encrypter = scope.spawn(move || -> Result<()> {
            let mut encrypted = crypto::encrypt(recipients, sealed_w)?;
            pipeline::drain(&mut chan_r, &mut encrypted).map_err(out_err)?;
            let sealed = encrypted.finish().map_err(out_err)?;
            sealed.close().map_err(out_err)
        });
        let produced = compress(chan_w, plan, opts, (inner_mtime, tree), out_err);
        let stopped = |_| Error::Internal("the writing stage stopped unexpectedly".into());
        let encrypted = encrypter.join().map_err(stopped)?;
        let written = writer.join().map_err(stopped)?;
        // The writer's failure (a full disk, say) is the root cause of the
        // other stages' broken channels; an encrypting failure is the
        // cause of the compressing stage's.
        match (produced, encrypted, written) {
            (_, _, Err(e)) | (_, Err(e), _) | (Err(e), _, _) => Err(e),
            (Ok(entries), Ok(()), Ok(out)) => Ok((entries, out)),
        }
    })
}

/// The first stage: reads and hashes the files into a zstd-compressed tar
/// sent down the channel; returns the entries as packed.
fn compress(
    chan: ChannelWriter,
    plan: impl Iterator<Item = Result<Planned>>,
    opts: &PackOptions,
    (inner_mtime, tree): (u64, Tree<'_>),
    out_err: &dyn Fn(io::Error) -> Error,
) -> Result<Listed> {
    let list_err = |e: io::Error| Error::io("writing", "the entry list (a temporary file)", e);
    let mut listed = Listed::new().map_err(list_err)?;
    if tree.record {
        listed.items = Some(crate::delta::spill::Spill::new().map_err(list_err)?);
    }
    let mut tar =
        TarWriter::new(Frames::new(chan, opts.level, opts.zstd_workers).map_err(out_err)?);
    for p in plan {
        let p = p?;
        crate::interrupt::check()?;
        match p.kind {
            EntryKind::Folder => {
                tar.folder(&p.path, p.mtime).map_err(out_err)?;
                record(&mut listed, &p, None).map_err(list_err)?;
                listed.push(&Entry::folder(p.path)).map_err(list_err)?;
            }
            EntryKind::File => {
                opts.progress.item(&p.path);
                // Already-compressed files (photos, PDFs, archives) go into a
                // frame at a fast level: compressing them again costs time
                // and saves nothing. Stock zstd reads the concatenation.
                let level = if opts.level > 1 && p.size >= ADAPTIVE_MIN && incompressible(&p.source)
                {
                    INCOMPRESSIBLE_LEVEL
                } else {
                    opts.level
                };
                tar.inner_mut().switch(level).map_err(out_err)?;
                let sha = append_file(&mut tar, &p, out_err, &opts.progress)?;
                record(&mut listed, &p, Some(&sha)).map_err(list_err)?;
                listed
                    .push(&Entry::file(p.path, p.size, sha, p.executable))
                    .map_err(list_err)?;
            }
        }
    }
    tar.inner_mut().switch(opts.level).map_err(out_err)?;
    let head = InnerManifest::head();
    // A delta's deleted paths end its inner manifest; the listing has
    // ended (the plan is read to its end), so they are all known.
    let deleted = match tree.base {
        Some(base) => crate::format::delta::block(&lock(base).deleted()?),
        None => String::new(),
    };
    let size = head.len() as u64 + listed.len() + deleted.len() as u64;
    let tables = listed.tables().map_err(list_err)?;
    tar.file(
        manifest::INNER_MANIFEST_NAME,
        size,
        false,
        inner_mtime,
        head.as_bytes().chain(tables).chain(deleted.as_bytes()),
    )
    .map_err(out_err)?;
    let frames = tar.finish().map_err(out_err)?;
    let chan = frames.finish().map_err(out_err)?;
    chan.close().map_err(out_err)?;
    Ok(listed)
}

/// What a pack knows of the tree besides the plan: whether to record its
/// entries with their stat data, and the base of a delta.
#[derive(Clone, Copy, Default)]
pub(super) struct Tree<'a> {
    pub(super) record: bool,
    pub(super) base: Option<&'a std::sync::Mutex<crate::delta::base::Base>>,
}

/// The base, whoever else held it.
pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps `p` (with its sha256, for a file) when the tree is recorded.
fn record(listed: &mut Listed, p: &Planned, sha: Option<&String>) -> io::Result<()> {
    if let Some(items) = &mut listed.items {
        items.push(&crate::delta::state::Item {
            path: p.path.clone(),
            kind: p.kind,
            size: p.size,
            sha256: sha.cloned(),
            executable: p.executable,
            stamp: p.stamp,
        })?;
    }
    Ok(())
}

/// The zstd window: 8 MiB (see [`Frames::encoder`]).
const WINDOW_LOG: u32 = 23;

/// The level of a frame for an already-compressed file: one of zstd's fast
/// levels, which spend less time looking for repeats that are not there
/// (on the mixed corpus 6 % less pack time than level 1, for 0.7 % more
/// payload). Every zstd decoder reads such frames.
const INCOMPRESSIBLE_LEVEL: i32 = -3;

/// Files smaller than this are compressed at the chosen level whatever they hold.
const ADAPTIVE_MIN: u64 = 1 << 20;

/// Whether a file looks already compressed: its first 128 KiB shrink by
/// less than 3 % at zstd level 1. Cheap, and read from the page
/// cache again right after.
fn incompressible(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut sample = vec![0u8; 128 * 1024];
    let Ok(n) = file.read_at(&mut sample, 0) else {
        return false;
    };
    sample.truncate(n);
    zstd::bulk::compress(&sample, 1).is_ok_and(|c| c.len() * 100 > n * 97)
}

/// A zstd stream made of frames whose level can change between entries:
/// [`Frames::switch`] ends the current frame and starts the next at another
/// level. Concatenated frames are one valid zstd stream. One compression
/// context serves every frame, so its workers and buffers are made once.
struct Frames {
    writer: Option<Writer>,
    level: i32,
}

type Writer = zstd::stream::zio::Writer<ChannelWriter, zstd::stream::raw::Encoder<'static>>;

impl Frames {
    fn new(chan: ChannelWriter, level: i32, workers: u32) -> io::Result<Frames> {
        use zstd::zstd_safe::CParameter;
        let mut e = zstd::stream::raw::Encoder::new(level)?;
        e.set_parameter(CParameter::ChecksumFlag(true))?;
        // An 8 MiB window (zstd's default at level 3 is 2 MiB) finds the
        // repeats between files that a tree of reports and logs is full
        // of; every zstd decoder takes windows up to 128 MiB by default.
        e.set_parameter(CParameter::WindowLog(WINDOW_LOG))?;
        if workers > 0 {
            e.set_parameter(CParameter::NbWorkers(workers))?;
            // Small jobs keep the workers' buffers, and so pouch's memory,
            // small; each job starts from the 4 MiB before it (overlap 8:
            // half the window), so that small jobs lose little of it.
            e.set_parameter(CParameter::JobSize(2 << 20))?;
            e.set_parameter(CParameter::OverlapSizeLog(8))?;
        }
        Ok(Frames {
            writer: Some(Writer::new(chan, e)),
            level,
        })
    }

    /// Continues at `level`: a new frame if it differs from the current one.
    fn switch(&mut self, level: i32) -> io::Result<()> {
        use zstd::stream::raw::Operation;
        if level == self.level {
            return Ok(());
        }
        let (chan, mut e) = self.finish_frame()?;
        // Between frames the context takes a new level and keeps the rest.
        e.reinit()?;
        e.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))?;
        self.writer = Some(Writer::new(chan, e));
        self.level = level;
        Ok(())
    }

    fn finish_frame(&mut self) -> io::Result<(ChannelWriter, zstd::stream::raw::Encoder<'static>)> {
        let mut w = self.writer.take().ok_or_else(finished)?;
        w.finish()?;
        Ok(w.into_inner())
    }

    /// Ends the last frame; returns the channel.
    fn finish(mut self) -> io::Result<ChannelWriter> {
        Ok(self.finish_frame()?.0)
    }
}

fn finished() -> io::Error {
    io::Error::other("zstd stream already finished")
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().ok_or_else(finished)?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Streams one file into the tar, hashing it, and makes sure it did not
/// change while it was read.
fn append_file<W: Write>(
    tar: &mut TarWriter<W>,
    p: &Planned,
    out_err: &dyn Fn(io::Error) -> Error,
    progress: &crate::progress::Handle,
) -> Result<String> {
    let changed = |what: &str| Error::BadSource {
        path: p.source.clone(),
        reason: format!("{what} while being packed; pack again when it is no longer being written"),
    };
    let file = File::open(&p.source).doing("opening", &p.source)?;
    let before = file
        .metadata()
        .doing("reading the metadata of", &p.source)?;
    if !before.is_file() || (before.dev(), before.ino()) != p.ino || before.len() != p.size {
        return Err(changed("changed"));
    }
    let mut reader = ExactReader {
        inner: file,
        remaining: p.size,
        hasher: Sha256::new(),
        failure: None,
        progress: progress.clone(),
    };
    // Large reads: io::copy inside the tar writer reads through the
    // buffer, so each file is read in 1 MiB requests, not 8 KiB ones.
    let capacity = (p.size.min(1 << 20) as usize).max(8 * 1024);
    let written = tar.file(
        &p.path,
        p.size,
        p.executable,
        p.mtime,
        std::io::BufReader::with_capacity(capacity, &mut reader),
    );
    if let Some(f) = reader.failure.take() {
        return Err(match f {
            Failure::Shrank => changed("shrank"),
            Failure::Read(e) => Error::io("reading", &p.source, e),
            Failure::Interrupted => Error::Interrupted,
        });
    }
    written.map_err(out_err)?;
    // A file that grew, shrank or was rewritten since it was opened has
    // another size, modification or change time now.
    let after = reader
        .inner
        .metadata()
        .doing("reading the metadata of", &p.source)?;
    if after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
        || after.ctime() != before.ctime()
    {
        return Err(changed("changed"));
    }
    Ok(hex::encode(reader.hasher.finalize()))
}

enum Failure {
    Shrank,
    Read(io::Error),
    Interrupted,
}

/// Yields exactly `remaining` bytes of a file, hashing them, and remembers
/// why it failed so that a source problem is not blamed on the output.
struct ExactReader {
    inner: File,
    remaining: u64,
    hasher: Sha256,
    failure: Option<Failure>,
    progress: crate::progress::Handle,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if crate::interrupt::check().is_err() {
            self.failure = Some(Failure::Interrupted);
            return Err(io::Error::other(crate::progress::INTERRUPTED));
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failure = Some(Failure::Read(e));
                return Err(copy);
            }
        };
        if n == 0 {
            self.failure = Some(Failure::Shrank);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source file shrank",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::pack::plan::plan;
    use crate::pack::DEFAULT_LEVEL;

    fn opts(out: &Path) -> PackOptions {
        PackOptions {
            out_dir: out.to_path_buf(),
            recipients: vec![crypto::Recipient::X25519(
                age::x25519::Identity::generate().to_public(),
            )],
            level: DEFAULT_LEVEL,
            ..Default::default()
        }
    }

    #[test]
    fn a_file_that_changes_after_listing_fails_the_pack() {
        let (dir, src) = crate::scratch::tree(&[("a.txt", "original content")]);
        let (plan, _) =
            plan(std::slice::from_ref(&src), false, None, &Default::default()).expect("plan");
        for new in ["short", "original content, grown"] {
            fs::write(src.join("a.txt"), new).expect("rewrite");
            let mut out = tempfile::tempfile().expect("out");
            let listed = plan.iter().cloned().map(Ok);
            let Err(err) = write_payload(&mut out, listed, &opts(dir.path()), (0, Tree::default()))
            else {
                panic!("a changed file must fail the pack");
            };
            assert!(
                matches!(&err, Error::BadSource { path, reason } if path.ends_with("a.txt") && reason.contains("changed")),
                "{err}"
            );
        }
    }
}
