//! The stream stages: `age(zstd(tar))` of the loaded files, made on four
//! pipeline threads (and zstd's workers, on more than two cores).
//!
//! The calling thread writes the files the loading stage read and hashed
//! ([`super::load`]) into a tar; the next compresses it into zstd frames
//! whose level changes per entry ([`super::frames`]); the next encrypts
//! (age); the last hashes and writes. A source that changes while it is
//! read fails the pack.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::frames::{self, INCOMPRESSIBLE_LEVEL};
use super::listed::Listed;
use super::load::{Batch, Contents, Feed, Piece};
use super::plan::Planned;
use super::PackOptions;
use crate::error::{Error, Result};
use crate::format::manifest::{self, Entry, InnerManifest};
use crate::payload::archive::TarWriter;
use crate::payload::crypto;
use crate::payload::pipeline;

/// Writes `age(zstd(tar))` of the plan to `out`; returns the entries as
/// packed (listed on disk) and `out`, flushed. Four stages on four
/// threads: this one makes the archive; the next compresses; the next
/// encrypts; the last hashes and writes (see [`crate::payload::pipeline`]).
pub(super) fn write_payload<W: Write + Send>(
    out: W,
    plan: impl Iterator<Item = Result<Batch>>,
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
        let (tar_out, zstd_in) = frames::hand_over(opts.level);
        let workers = opts.zstd_workers;
        let compressor =
            scope.spawn(move || frames::compress(zstd_in, chan_w, workers).map_err(out_err));
        let produced = archive(tar_out, plan, opts, (inner_mtime, tree), out_err);
        let stopped = |_| Error::Internal("the writing stage stopped unexpectedly".into());
        let compressed = compressor.join().map_err(stopped)?;
        let encrypted = encrypter.join().map_err(stopped)?;
        let written = writer.join().map_err(stopped)?;
        // The writer's failure (a full disk, say) is the root cause of the
        // other stages' broken channels; an encrypting failure is the
        // cause of the compressing stage's, and that of the archive's.
        // The archive's own failure (a source that changed) comes before
        // the compressing stage's, which only sees the archive cut.
        match (produced, compressed, encrypted, written) {
            (_, _, _, Err(e)) | (_, _, Err(e), _) | (Err(e), _, _, _) | (_, Err(e), _, _) => Err(e),
            (Ok(entries), Ok(()), Ok(()), Ok(out)) => Ok((entries, out)),
        }
    })
}

/// The archive's stage: writes the loaded files into a tar handed to the
/// compressing stage; returns the entries as packed.
fn archive(
    out: frames::TarOut,
    plan: impl Iterator<Item = Result<Batch>>,
    opts: &PackOptions,
    (inner_mtime, tree): (u64, Tree<'_>),
    out_err: &dyn Fn(io::Error) -> Error,
) -> Result<Listed> {
    let list_err = |e: io::Error| Error::io("writing", "the entry list (a temporary file)", e);
    let mut listed = Listed::new().map_err(list_err)?;
    if tree.record {
        listed.items = Some(crate::delta::spill::Spill::new().map_err(list_err)?);
    }
    let mut tar = TarWriter::new(out);
    let mut feed = Feed::new(plan);
    while let Some(piece) = feed.next_piece() {
        crate::interrupt::check()?;
        let Piece::Entry(p, contents) = piece? else {
            return Err(Error::Internal("file data outside a file".into()));
        };
        let sha = match contents {
            Contents::Folder => {
                tar.folder(&p.path, p.mtime).map_err(out_err)?;
                record(&mut listed, &p, None).map_err(list_err)?;
                listed.push(&Entry::folder(p.path)).map_err(list_err)?;
                continue;
            }
            Contents::Whole(range, sha) => {
                opts.progress.item(&p.path);
                tar.inner_mut().switch(opts.level).map_err(out_err)?;
                let data = feed.bytes(range);
                tar.file(&p.path, p.size, p.executable, p.mtime, data)
                    .map_err(out_err)?;
                opts.progress.advance(p.size);
                sha
            }
            Contents::Pieces(incompressible) => {
                opts.progress.item(&p.path);
                // Already-compressed files (photos, PDFs, archives) go into
                // a frame at a fast level: compressing them again costs time
                // and saves nothing. Stock zstd reads the concatenation.
                let level = match incompressible && opts.level > 1 {
                    true => INCOMPRESSIBLE_LEVEL,
                    false => opts.level,
                };
                tar.inner_mut().switch(level).map_err(out_err)?;
                append_pieces(&mut tar, &p, &mut feed, out_err, &opts.progress)?
            }
        };
        record(&mut listed, &p, Some(&sha)).map_err(list_err)?;
        listed
            .push(&Entry::file(p.path, p.size, sha, p.executable))
            .map_err(list_err)?;
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
    tar.finish()
        .and_then(frames::TarOut::close)
        .map_err(out_err)?;
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

/// Streams the file just begun into the tar as its pieces come; returns
/// its sha256.
fn append_pieces<W: Write, I: Iterator<Item = Result<Batch>>>(
    tar: &mut TarWriter<W>,
    p: &Planned,
    feed: &mut Feed<I>,
    out_err: &dyn Fn(io::Error) -> Error,
    progress: &crate::progress::Handle,
) -> Result<String> {
    let mut data = feed.contents(p.size, progress);
    // Large reads: io::copy inside the tar writer reads through the
    // buffer, so each piece is copied in one request, not 8 KiB ones.
    let capacity = (p.size.min(1 << 20) as usize).max(8 * 1024);
    let written = tar.file(
        &p.path,
        p.size,
        p.executable,
        p.mtime,
        std::io::BufReader::with_capacity(capacity, &mut data),
    );
    if let Some(e) = data.failure.take() {
        return Err(e);
    }
    written.map_err(out_err)?;
    data.sha256
        .take()
        .ok_or_else(|| Error::Internal("a file's sha256 did not come".into()))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::pack::plan::plan;
    use crate::pack::DEFAULT_LEVEL;

    fn opts(out: &std::path::Path) -> PackOptions {
        PackOptions {
            out_dir: out.to_path_buf(),
            recipients: vec![crypto::Recipient::X25519(
                age::x25519::Identity::generate().to_public(),
            )],
            level: DEFAULT_LEVEL,
            ..Default::default()
        }
    }

    /// The plan's batches as the loading stage makes them.
    fn loaded(plan: &[Planned]) -> impl Iterator<Item = Result<Batch>> {
        let (listed_tx, listed_rx) = std::sync::mpsc::sync_channel(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(crate::pack::load::DEPTH);
        listed_tx.send(Ok(plan.to_vec())).expect("send");
        drop(listed_tx);
        std::thread::spawn(move || crate::pack::load::run(listed_rx, tx));
        rx.into_iter()
    }

    /// The error packing `plan` fails with; `what` says what should fail it.
    fn fails(plan: &[Planned], dir: &std::path::Path, what: &str) -> Error {
        let mut out = tempfile::tempfile().expect("out");
        match write_payload(&mut out, loaded(plan), &opts(dir), (0, Tree::default())) {
            Err(err) => err,
            Ok(_) => panic!("{what} must fail the pack"),
        }
    }

    #[test]
    fn a_file_that_changes_after_listing_fails_the_pack() {
        // A small file travels whole, a large one in pieces: both checked.
        let large = "x".repeat(3 << 20);
        let (dir, src) = crate::scratch::tree(&[("a.txt", "original content"), ("b.bin", &large)]);
        let (plan, _) =
            plan(std::slice::from_ref(&src), false, None, &Default::default()).expect("plan");
        let cases = [
            ("a.txt", "short".to_string()),
            ("a.txt", "original content, grown".to_string()),
            ("b.bin", "y".repeat((3 << 20) - 1)),
            ("b.bin", "z".repeat((3 << 20) + 1)),
        ];
        for (name, new) in cases {
            let old = fs::read(src.join(name)).expect("read");
            fs::write(src.join(name), new).expect("rewrite");
            let err = fails(&plan, dir.path(), "a changed file");
            assert!(
                matches!(&err, Error::BadSource { path, reason } if path.ends_with(name) && reason.contains("changed")),
                "{err}"
            );
            fs::write(src.join(name), old).expect("restore");
        }
        // A FIFO or a symbolic link put in a listed file's place is refused
        // without blocking on it or following it.
        for swap in ["fifo", "symlink"] {
            let path = src.join("a.txt");
            let old = fs::read(&path).expect("read");
            fs::remove_file(&path).expect("remove");
            match swap {
                "fifo" => rustix::fs::mkfifoat(
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::Mode::from_raw_mode(0o644),
                )
                .expect("mkfifo"),
                _ => std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink"),
            }
            let err = fails(&plan, dir.path(), swap);
            assert!(
                matches!(&err, Error::BadSource { path, .. } if path.ends_with("a.txt")),
                "{swap}: {err}"
            );
            fs::remove_file(&path).expect("remove");
            fs::write(&path, old).expect("restore");
        }
        // Listed again: the restored file is another inode.
        let (plan, _) =
            crate::pack::plan::plan(std::slice::from_ref(&src), false, None, &Default::default())
                .expect("plan");
        let mut out = tempfile::tempfile().expect("out");
        let (listed, _) = write_payload(
            &mut out,
            loaded(&plan),
            &opts(dir.path()),
            (0, Tree::default()),
        )
        .expect("the tree as listed packs");
        assert_eq!(
            listed.counts,
            (2, 1, 16 + (3 << 20)),
            "both files and their folder"
        );
    }
}
