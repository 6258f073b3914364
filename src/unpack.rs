//! Unpacking a bundle safely.
//!
//! The bundle is hostile until proven otherwise. After the signature check,
//! one streaming pass over the payload extracts into a fresh private staging
//! folder inside DEST (mode 0700, a random name), while every entry is checked
//! against the signed manifest by [`crate::payload::archive::read_archive`]. Only when
//! the payload hash, every entry and the inner manifest all matched is the
//! staging folder flushed to disk and renamed to `DEST/NAME` (without
//! replacing anything). On any failure the staging folder is removed and DEST
//! is as it was.
//!
//! Only regular files (0644, or 0755 when executable) and folders (0755) are
//! created, owned by the user running pouch; paths are joined to the staging
//! folder only after [`crate::format::names::check_path`] accepted them, and the
//! staging folder holds nothing pouch did not create, so no link can be
//! followed.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::bundle::{self, Bundle, SignatureStatus, Trust};
use crate::custody::channel::{self, Arrival};
use crate::custody::intent;
use crate::custody::ledger::{Event, Ledger, Record};
use crate::delta::onto::Onto;
use crate::disk::lock::FolderLock;
use crate::disk::{durable, leftovers};
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::Manifest;
use crate::payload::archive::{Seen, Sink};
use crate::payload::handoff;

/// What to unpack, and where.
#[derive(Clone)]
pub struct UnpackOptions {
    /// The outer manifest.
    pub manifest: PathBuf,
    /// Signature policy.
    pub trust: Trust,
    /// Identities to decrypt with.
    pub identities: Vec<crate::payload::crypto::Identity>,
    /// The destination folder; the bundle lands in `DEST/NAME`.
    pub dest: PathBuf,
    /// More folders to look for payload parts in.
    pub parts_from: Vec<PathBuf>,
    /// The recipient's ledger: replays are refused, gaps reported, and the
    /// outcome recorded. `None`: no ledger.
    pub ledger: Option<PathBuf>,
    /// Accept a bundle that was accepted before.
    pub allow_replay: bool,
    /// Unpack onto removable media (refused by default: plaintext must not
    /// land on the courier's stick by accident).
    pub allow_removable_dest: bool,
    /// Do not refuse a DEST that seems to lack the room.
    pub no_space_check: bool,
    /// Where progress goes.
    pub progress: crate::progress::Handle,
    /// Apply a delta bundle onto this tree (its base's result) instead of
    /// unpacking into DEST (see [`crate::delta::onto`]).
    pub onto: Option<PathBuf>,
    /// With `onto`: hash every file of the tree to check it, not only those
    /// whose stat data changed.
    pub rehash: bool,
}

/// What was unpacked.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackReport {
    /// The folder holding the unpacked files, `DEST/NAME`.
    pub output: PathBuf,
    /// The bundle id.
    pub bundle_id: String,
    /// The bundle name.
    pub name: String,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
    /// Signature status.
    pub signature: SignatureStatus,
    /// Whether the sender party vouched for the channel the manifest names.
    pub channel: crate::bundle::ChannelBinding,
    /// Files written.
    pub files: u64,
    /// Folders created (besides `DEST/NAME`).
    pub folders: u64,
    /// Bytes written.
    pub total_bytes: u64,
    /// Sequence numbers of the channel still missing.
    pub missing: Vec<u64>,
    /// Warnings about the bundle's place in its channel.
    pub flags: Vec<String>,
    /// The manifest, as verified: a receipt is written from it, never from
    /// the file read again.
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Verifies and unpacks a bundle; see the module docs.
pub fn unpack(opts: &UnpackOptions) -> Result<UnpackReport> {
    if opts.identities.is_empty() {
        return Err(Error::Usage(
            "no identity given: pass -i IDENTITY_FILE".into(),
        ));
    }
    refuse_removable(
        opts.onto.as_deref().unwrap_or(&opts.dest),
        opts.allow_removable_dest,
        crate::disk::media::is_removable,
    )?;
    let mut ledger = opts.ledger.as_deref().map(Ledger::open).transpose()?;
    let unsettled = match &mut ledger {
        Some(l) => intent::recover(l)?,
        None => Vec::new(),
    };
    let bundle = open_bundle(opts, &mut ledger)?;
    let (onto, dest) = place(opts, &bundle, &mut ledger)?;
    let about = |event: Event, notes: Vec<String>| {
        let mut r = Record::about(event, &bundle.manifest, &bundle.manifest_sha256);
        r.vouched_by = bundle.channel.party().map(str::to_string);
        r.notes = notes;
        r
    };
    if let Some(open) = unsettled.iter().find(|i| {
        i.event == Event::Accepting && i.bundle_id.as_ref() == Some(&bundle.manifest.bundle_id)
    }) {
        return Err(Error::Refused(format!(
            "an earlier unpack of this bundle into {} was interrupted, and that folder cannot be reached: make it reachable (mount it) and run again, so that pouch can tell whether it was accepted",
            crate::format::names::escape(open.path.as_deref().unwrap_or("?"))
        )));
    }
    let arrival = match &mut ledger {
        None => Arrival::default(),
        Some(l) => match channel::check_arrival(
            &l.records_where(|r| channel::bears_on(r, &bundle.manifest))?,
            &bundle.manifest,
            &bundle.manifest_sha256,
            bundle.channel.party(),
        ) {
            Ok(a) => a,
            Err(e @ Error::Replay { .. }) if opts.allow_replay => Arrival {
                missing: Vec::new(),
                flags: vec![format!("accepted again with --allow-replay ({e})")],
            },
            Err(e) => {
                l.append(about(Event::Rejected, vec![e.to_string()]))?;
                return Err(e);
            }
        },
    };
    let mut notes: Vec<String> = arrival.flags.clone();
    if !arrival.missing.is_empty() {
        notes.push(format!("missing sequence numbers: {:?}", arrival.missing));
    }
    // The acceptance is an intent before the files move into place, and
    // settled after: see `custody::intent`.
    let mut accepting = None;
    let result = extract(
        (&dest, onto.as_ref(), opts.ledger.as_deref()),
        (&bundle, &opts.identities),
        &mut |target| {
            if let Some(l) = &mut ledger {
                let r = about(Event::Accepting, notes.clone());
                accepting = Some(intent::intend(l, r, target)?);
            }
            Ok(())
        },
    );
    if let Some(l) = &mut ledger {
        settle_outcome(l, accepting.as_ref(), &result, |e| {
            about(Event::Rejected, vec![e])
        })?;
    }
    let (output, seen) = result?;
    let (files, folders, total_bytes) = seen.counts;
    Ok(UnpackReport {
        output,
        bundle_id: bundle.manifest.bundle_id.clone(),
        name: bundle.manifest.name.clone(),
        manifest_sha256: bundle.manifest_sha256.clone(),
        signature: bundle.signature.clone(),
        channel: bundle.channel.clone(),
        files,
        folders,
        total_bytes,
        missing: arrival.missing,
        flags: arrival.flags,
        manifest: bundle.manifest,
    })
}

/// Where the bundle goes: onto a tree (checked), or into DEST; and the
/// folder that gets the staging folder, checked for room.
fn place(
    opts: &UnpackOptions,
    bundle: &Bundle,
    ledger: &mut Option<Ledger>,
) -> Result<(Option<Onto>, PathBuf)> {
    let onto = match (&opts.onto, ledger) {
        (None, _) if bundle.manifest.delta.is_some() => {
            let base = bundle.manifest.delta.as_ref().map_or("", |d| d.base_bundle_id.as_str());
            return Err(Error::Usage(format!(
                "{} is a delta on bundle {base}: it holds only what changed since, so it is applied onto the folder that bundle was unpacked to: pouch unpack {} -i IDENTITY --onto TREE",
                crate::format::names::escape(&bundle.manifest.name),
                opts.manifest.display()
            )))
        }
        (None, _) => None,
        (Some(tree), Some(l)) => Some(Onto::prepare(tree, (&bundle.manifest, bundle.channel.party()), l, opts.rehash)?),
        (Some(_), None) => {
            return Err(Error::Usage(
                "--onto needs the ledger (--ledger, or the default one): a delta goes only onto the tree of a base this ledger accepted".into(),
            ))
        }
    };
    let dest = match &onto {
        Some(o) => durable::parent_of(&o.tree).to_path_buf(),
        None => opts.dest.clone(),
    };
    // The room for every file, each rounded up to a block, before any work.
    let c = &bundle.manifest.contents;
    let needed = c.total_bytes + (c.files + c.folders + 16) * 4096;
    if !opts.no_space_check {
        crate::disk::space::ensure_room(&dest, needed, "the unpacked files")?;
    }
    Ok((onto, dest))
}

/// Opens the bundle, recording in the ledger a bundle that fails its
/// checks as rejected.
fn open_bundle(opts: &UnpackOptions, ledger: &mut Option<Ledger>) -> Result<Bundle> {
    match bundle::open(&opts.manifest, &opts.trust) {
        Ok(mut b) => {
            // The tree a bundle of a channel builds is recorded, so that a
            // delta can go onto it later.
            let ch = &b.manifest.channel;
            b.collect = ledger.is_some()
                && opts.onto.is_none()
                && ch.sender.is_some()
                && ch.receiver.is_some();
            Ok(b.with_parts_from(&opts.parts_from)
                .with_progress(&opts.progress))
        }
        Err(e) => {
            if let (Some(l), 1) = (ledger, e.exit_code()) {
                l.append(Record {
                    event: Event::Rejected,
                    name: opts
                        .manifest
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned()),
                    notes: vec![e.to_string()],
                    ..Record::default()
                })?;
            }
            Err(e)
        }
    }
}

/// Settles the acceptance intent with what the extraction came to, or
/// records the rejection (`rejected`, from the reason) of a bundle that
/// failed a check before any intent.
fn settle_outcome<T>(
    ledger: &mut Ledger,
    accepting: Option<&Record>,
    result: &Result<T>,
    rejected: impl FnOnce(String) -> Record,
) -> Result<()> {
    match (result, accepting) {
        (Ok(_), Some(i)) => {
            // DEST/NAME is committed: a failure to record it is a warning,
            // and the next run records it.
            if let Err(e) = intent::settle(ledger, i, Event::Accepted, None) {
                crate::notice::notice(&format!(
                    "warning: the bundle is accepted and unpacked, but the ledger could not record it ({e}); the next pouch command that writes the ledger records it (or run pouch ledger repair)"
                ));
            }
        }
        (Err(e), Some(i)) => {
            let note = format!("the unpack failed: {e}");
            let _ = intent::settle(ledger, i, Event::Abandoned, Some(note));
        }
        (Err(e), None) if e.exit_code() == 1 => {
            ledger.append(rejected(e.to_string()))?;
        }
        _ => {}
    }
    Ok(())
}

/// Refuses a destination on removable media (by `removable`, given the
/// destination or its nearest existing parent) unless `allowed`: decrypted
/// files belong on the recipient's own disk, not on the courier's stick.
fn refuse_removable(dest: &Path, allowed: bool, removable: impl Fn(&Path) -> bool) -> Result<()> {
    let Some(existing) = dest.ancestors().find(|p| p.exists()) else {
        return Ok(());
    };
    if allowed || !removable(existing) {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{} is on removable media: decrypted files must not land on the courier's stick by accident; unpack onto the recipient's own disk, or pass --allow-removable-dest if this really is where they belong",
        dest.display()
    )))
}

/// Extracts a verified bundle into DEST/NAME through a staging folder;
/// `before_commit` runs with DEST/NAME when everything is checked and on
/// disk, just before the staging folder is renamed into place.
fn extract(
    (dest, onto, record): (&Path, Option<&Onto>, Option<&Path>),
    (bundle, identities): (&Bundle, &[crate::payload::crypto::Identity]),
    before_commit: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<(PathBuf, Seen)> {
    let created_dest = onto.is_none() && prepare_dest(dest)?;
    // Shared with other unpacks into DEST; the staging folders of
    // interrupted ones (with decrypted files, or the old tree an --onto
    // replaced) are removed first when no other is running.
    let _dest = FolderLock::take(dest, || leftovers::clean(dest))?;
    let target = match onto {
        Some(o) => o.tree.clone(),
        None => dest.join(&bundle.manifest.name),
    };
    let cleanup_dest = |e: Error| {
        if created_dest {
            let _ = fs::remove_dir(dest);
        }
        e
    };
    if onto.is_none() {
        durable::ensure_absent(&target).map_err(cleanup_dest)?;
    }

    let staging = staging_dir(dest, &bundle.manifest.name).map_err(cleanup_dest)?;
    let ids = (
        bundle.manifest.bundle_id.as_str(),
        bundle.manifest_sha256.as_str(),
    );
    let mut sink = StagingSink {
        root: staging.clone(),
        current: None,
    };
    // Files are created on a thread of their own while the archive is
    // decompressed and checked on this one.
    let result = handoff::on_thread(&mut sink, |s| bundle.check_contents(identities, s))
        .and_then(|entries| sink.finish().map(|()| entries))
        .and_then(|entries| match onto {
            Some(o) => o
                .commit(&staging, ids, &entries.deleted, before_commit)
                .map(|()| entries),
            None => {
                let mut entries = entries;
                // The record of the tree is taken in the private staging
                // folder, before it moves into place: what lands is what
                // was checked (and an interruption after the move leaves
                // the record there). Entries are collected only when the
                // tree is to be recorded (see `open_bundle`).
                if let (Some(l), Some(c)) = (record, entries.collected.take()) {
                    if let Err(e) = crate::delta::onto::record_unpacked(l, (&staging, &target), ids, c) {
                        crate::notice::notice(&format!(
                            "warning: the record of the tree could not be written ({e}); a delta on this bundle cannot go onto {}",
                            target.display()
                        ));
                    }
                }
                commit(&staging, &target, dest, before_commit).map(|()| entries)
            }
        });
    let entries = match result {
        Ok(entries) => entries,
        Err(e) => {
            drop(sink);
            if let Err(r) = fs::remove_dir_all(&staging) {
                if fs::symlink_metadata(&staging).is_ok() {
                    return Err(Error::StagingLeft {
                        staging,
                        reason: r.to_string(),
                        cause: Box::new(e),
                    });
                }
            }
            return Err(cleanup_dest(e));
        }
    };
    Ok((target, entries))
}

/// Makes sure DEST is a real folder (not a symlink); creates it if missing.
/// Returns whether it was created.
fn prepare_dest(dest: &Path) -> Result<bool> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Refused(format!(
            "destination {} is a symbolic link; pass the folder it points to",
            dest.display()
        ))),
        Ok(m) if m.is_dir() => Ok(false),
        Ok(_) => Err(Error::Refused(format!(
            "destination {} is not a folder",
            dest.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir(dest).doing("creating", dest)?;
            Ok(true)
        }
        Err(e) => Err(Error::io("creating", dest, e)),
    }
}

/// Creates a fresh, private staging folder inside DEST.
fn staging_dir(dest: &Path, name: &str) -> Result<PathBuf> {
    for _ in 0..8 {
        let mut r = [0u8; 6];
        getrandom::fill(&mut r)
            .map_err(|e| Error::Internal(format!("no randomness available: {e}")))?;
        let path = dest.join(format!(".pouch-staging-{name}-{}", hex::encode(r)));
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating", &path, e)),
        }
    }
    Err(Error::Internal(format!(
        "cannot create a staging folder in {}: every random name was taken",
        dest.display()
    )))
}

/// Flushes the staging folder to disk and renames it to `target`, refusing
/// to replace anything there.
fn commit(
    staging: &Path,
    target: &Path,
    dest: &Path,
    before_commit: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let dir = File::open(staging).doing("opening", staging)?;
    // One flush of the whole filesystem instead of an fsync per file.
    rustix::fs::syncfs(&dir).map_err(|e| Error::io("syncing", staging, e.into()))?;
    // The flush can take long on a real stick: an interruption during it
    // is honoured here, with nothing moved into place.
    crate::interrupt::check()?;
    before_commit(target)?;
    // Renamed while still private: a crash here leaves either the 0700
    // staging folder or the complete result, never a readable half-state.
    durable::rename_noreplace(staging, target)?;
    let settled = fs::set_permissions(target, Permissions::from_mode(0o755))
        .doing("setting permissions of", target)
        .and_then(|()| durable::sync_dir(dest));
    if let Err(e) = settled {
        // The rename may not survive a crash: take it back, so that the
        // failure reported is what is on disk.
        if fs::rename(target, staging).is_err() {
            let _ = fs::remove_dir_all(target);
        }
        return Err(e);
    }
    Ok(())
}

/// Writes accepted entries below the staging folder.
struct StagingSink {
    root: PathBuf,
    current: Option<(PathBuf, File, bool)>,
}

impl StagingSink {
    fn finish(&mut self) -> Result<()> {
        match self.current.take() {
            None => Ok(()),
            Some((path, _, _)) => Err(Error::io(
                "writing",
                &path,
                std::io::Error::other("file left unfinished"),
            )),
        }
    }
}

impl Sink for StagingSink {
    fn folder(&mut self, path: &str) -> Result<()> {
        let full = self.root.join(path);
        DirBuilder::new()
            .mode(0o755)
            .create(&full)
            .doing("creating", &full)?;
        fs::set_permissions(&full, Permissions::from_mode(0o755))
            .doing("setting permissions of", &full)
    }

    fn begin_file(&mut self, path: &str, executable: bool) -> Result<()> {
        let full = self.root.join(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&full)
            .doing("opening", &full)?;
        // No buffer: the archive's data comes in chunks of up to 256 KiB.
        self.current = Some((full, file, executable));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.current {
            Some((path, w, _)) => w.write_all(bytes).doing("writing", path),
            None => Err(Error::Internal("write without a file".into())),
        }
    }

    fn end_file(&mut self, mtime: u64) -> Result<()> {
        let Some((path, file, executable)) = self.current.take() else {
            return Err(Error::Internal("end without a file".into()));
        };
        let mode = if executable { 0o755 } else { 0o644 };
        file.set_permissions(Permissions::from_mode(mode))
            .doing("setting permissions of", &path)?;
        // Times from the archive are informative only; ignore absurd ones.
        if mtime > 0 && mtime < 1 << 40 {
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_on_removable_media_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().expect("temp");
        let stick = dir.path().join("stick");
        fs::create_dir(&stick).expect("mkdir");
        let on_stick = |p: &Path| p.starts_with(&stick);
        // Not made yet: its nearest existing parent, the stick, decides.
        let dest = stick.join("inbox/case");
        let err = refuse_removable(&dest, false, on_stick).expect_err("refused");
        assert!(err.to_string().contains("--allow-removable-dest"), "{err}");
        assert!(refuse_removable(&dest, true, on_stick).is_ok());
        assert!(refuse_removable(&dir.path().join("inbox"), false, on_stick).is_ok());
    }
}
