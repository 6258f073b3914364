//! `unpack --onto TREE`: a delta applied to the tree its base built.
//!
//! Before a byte of the payload is read, TREE is checked against the
//! recorded state of the base's result (a `stat` per file, a hash of those
//! whose stat data changed, of all with `--rehash`): any difference stops
//! the unpack, naming it, with TREE untouched. The payload is extracted into
//! a staging folder beside TREE as any unpack does; the base's files the
//! delta keeps are hard-linked into it (copied where links cannot be made);
//! the result is checked against the signed `[delta]` table (every entry,
//! by the tree's digest); then the staging folder and TREE are exchanged in
//! one `renameat2(RENAME_EXCHANGE)`. At any kill, TREE is the old tree or
//! the new one; the other, under the staging name, is removed by the next
//! unpack into the same folder.
//!
//! The state of the new tree is written, as pending, before the exchange,
//! with the inode of its folder: whichever of the two states names the
//! folder now at TREE is the true one (see [`state::load_unpacked`]).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::spill::{failed, Recorded, Spill};
use super::state::{self, Item, Stamp};
use super::walk;
use crate::custody::ledger::{Event, Ledger};
use crate::error::{Error, IoContext, Result};
use crate::format::delta::{tree_order, Delta};
use crate::format::manifest::{EntryKind, Manifest};
use crate::format::names::escape;

/// A delta about to go onto TREE, TREE checked.
pub struct Onto {
    /// TREE, absolute.
    pub tree: PathBuf,
    ledger: PathBuf,
    delta: Delta,
    /// TREE's permissions, which the new tree takes.
    mode: u32,
    /// The base's items, each file with its stat data as the check found
    /// it (a file is linked into the new tree only while it is still that
    /// file), in tree order; taken by [`Onto::commit`].
    checked: Mutex<Option<Spill>>,
}

pub(super) fn refused(reason: String) -> Error {
    Error::DeltaBase { reason }
}

impl Onto {
    /// Checks that the delta `m` may go onto `tree`: its base was accepted
    /// here, and `tree` is exactly the base's result.
    pub fn prepare(
        tree: &Path,
        (m, party): (&Manifest, Option<&str>),
        ledger: &mut Ledger,
        rehash: bool,
    ) -> Result<Onto> {
        let Some(delta) = m.delta.clone() else {
            return Err(Error::Usage(format!(
                "--onto applies a delta bundle, and {} is a full bundle: unpack it with -d DEST",
                escape(&m.name)
            )));
        };
        let meta = fs::symlink_metadata(tree).doing("reading the metadata of", tree)?;
        if !meta.is_dir() {
            return Err(Error::Refused(format!(
                "--onto {}: not a folder (a symbolic link is not followed)",
                tree.display()
            )));
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        let tree = fs::canonicalize(tree).doing("resolving", tree)?;
        let base_id = &delta.base_bundle_id;
        let accepted = ledger.records_where(|r| {
            r.event == Event::Accepted
                && r.bundle_id.as_ref() == Some(base_id)
                && r.manifest_sha256.as_ref() == Some(&delta.base_manifest_sha256)
        })?;
        // A delta changes the tree its base made: only the party that sent
        // the base, on the same channel, may send it.
        let Some(party) = party else {
            return Err(refused(format!(
                "{} is a delta, and no keyring party vouches for its channel (its signer is only a --trust key): a delta changes the tree an earlier bundle made, so only that bundle's sender party may send one; add the sender to the keyring (pouch keyring add NAME --sign-pub KEY)",
                escape(&m.name)
            )));
        };
        let same_channel = |r: &crate::custody::ledger::Record| {
            r.vouched_by.as_deref() == Some(party)
                && r.sender == m.channel.sender
                && r.receiver == m.channel.receiver
        };
        if !accepted.is_empty() && !accepted.iter().any(same_channel) {
            return Err(refused(format!(
                "{} (from {}) is a delta on bundle {base_id}, which this ledger accepted on another channel or from another party: a delta goes only onto the tree of its own sender's bundle",
                escape(&m.name),
                escape(party)
            )));
        }
        if accepted.is_empty() {
            return Err(refused(format!(
                "base bundle {base_id} was not accepted here: {} is a delta on it, and the ledger {} has no acceptance of that bundle (with that manifest); unpack the base first, or ask the sender for a full bundle",
                escape(&m.name),
                ledger.path().display()
            )));
        }
        let base = state::load_unpacked(ledger.path(), &tree)?.ok_or_else(|| {
            refused(format!(
                "there is no record of what {} holds (pouch records the trees it unpacks with a ledger, beside it): unpack base bundle {base_id} into a fresh folder with this ledger, then apply the delta onto that",
                tree.display()
            ))
        })?;
        if base.head.bundle_id != *base_id
            || base.head.manifest_sha256 != delta.base_manifest_sha256
        {
            let why = if base.head.bundle_id == m.bundle_id {
                "holds this delta's result already (the delta was applied before)".to_string()
            } else {
                format!(
                    "holds the result of bundle {}, not of this delta's base {base_id} (deltas go on in the order they were made)",
                    base.head.bundle_id
                )
            };
            return Err(refused(format!("{} {why}", tree.display())));
        }
        // What an interrupted --onto left beside TREE (the old tree, or a
        // staging folder with links into TREE) goes first: removing it
        // changes the change times of TREE's files, which the check notes.
        let parent = crate::disk::durable::parent_of(&tree);
        drop(crate::disk::lock::FolderLock::take(parent, || {
            crate::disk::leftovers::clean(parent)
        })?);
        let checked = walk::check_tree(&tree, base.verified()?, rehash)?;
        Ok(Onto {
            tree,
            ledger: ledger.path().to_path_buf(),
            delta,
            mode,
            checked: Mutex::new(Some(checked)),
        })
    }

    /// Completes the new tree in `staging` (which holds the delta's
    /// payload), checks it, and exchanges it with TREE; `before_commit`
    /// runs just before the exchange.
    pub fn commit(
        &self,
        staging: &Path,
        (bundle_id, manifest_sha256): (&str, &str),
        deleted: &[String],
        before_commit: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<()> {
        let checked = self.checked.lock().ok().and_then(|mut c| c.take());
        let mut checked =
            checked.ok_or_else(|| Error::Internal("--onto committed twice".into()))?;
        // Checked twice: as it will be, before a file of TREE is linked
        // (so a refused delta leaves TREE's files as they were), and as it
        // is, once built.
        self.check_result(walk::predicted(staging, &mut checked, deleted)?)?;
        let linked = self.link_kept(staging, deleted, checked)?;
        let result = walk::built(staging, linked)?;
        self.check_result((result.tree_sha256.clone(), result.counts))?;
        let root = fs::symlink_metadata(staging).doing("reading the metadata of", staging)?;
        let head = state::Head {
            tree: Some(self.tree.display().to_string()),
            root: Some((root.dev(), root.ino())),
            ..state::Head::of(bundle_id, manifest_sha256)
        };
        let pending = state::unpacked_path(&self.ledger, &self.tree, true);
        result.save(head, &pending)?;
        let dir = fs::File::open(staging).doing("opening", staging)?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io("syncing", staging, e.into()))?;
        crate::interrupt::check()?;
        before_commit(&self.tree)?;
        exchange(staging, &self.tree)?;
        // From here the new tree is in place: what fails is a warning.
        let _ = fs::set_permissions(
            &self.tree,
            std::os::unix::fs::PermissionsExt::from_mode(self.mode),
        );
        if let Err(e) = fs::remove_dir_all(staging) {
            crate::notice::notice(&format!(
                "warning: the old tree, now at {}, could not be removed ({e}); the next unpack into {} removes it",
                staging.display(),
                crate::disk::durable::parent_of(&self.tree).display()
            ));
        }
        let _ = crate::disk::durable::sync_dir(crate::disk::durable::parent_of(&self.tree));
        // Linking and unlinking changed the files' change times: the
        // record takes them as they are now.
        if restamped(&pending, &self.tree).is_ok() {
            let _ = fs::remove_file(&pending);
        }
        Ok(())
    }

    /// Checks a tree's digest and counts against the signed `[delta]` table.
    fn check_result(&self, (digest, counts): (String, (u64, u64, u64))) -> Result<()> {
        let d = &self.delta;
        if digest == d.tree_sha256 && counts == (d.tree_files, d.tree_folders, d.tree_bytes) {
            return Ok(());
        }
        let (files, folders, bytes) = counts;
        Err(Error::ContentsMismatch {
            reason: format!(
                "the tree built from the base and this delta ({files} files, {folders} folders, {bytes} bytes) is not the one the signed manifest describes ({} files, {} folders, {} bytes, or another digest)",
                d.tree_files, d.tree_folders, d.tree_bytes
            ),
        })
    }

    /// Hard-links (or copies) into `staging` every file of the base that
    /// the delta neither deletes nor replaces; returns them, in tree order.
    fn link_kept(&self, staging: &Path, deleted: &[String], checked: Spill) -> Result<Spill> {
        let mut deleted = deleted.iter().peekable();
        let mut linked = Spill::new().map_err(failed)?;
        for item in checked.items().map_err(failed)? {
            let item = item.map_err(failed)?;
            while deleted
                .next_if(|d| tree_order(d, &item.path).is_lt())
                .is_some()
            {}
            if item.kind != EntryKind::File || deleted.next_if(|d| **d == item.path).is_some() {
                continue;
            }
            crate::interrupt::check()?;
            let to = staging.join(&item.path);
            if fs::symlink_metadata(&to).is_ok() {
                continue;
            }
            let parent = crate::disk::durable::parent_of(&to);
            if !fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
                return Err(Error::ContentsMismatch {
                    reason: format!(
                        "the delta keeps {} of the base but not the folder it is in",
                        escape(&item.path)
                    ),
                });
            }
            let from = self.tree.join(&item.path);
            let changed = || {
                refused(format!(
                    "{} changed while the delta was being applied; nothing was changed (run the unpack again)",
                    from.display()
                ))
            };
            let now = fs::symlink_metadata(&from).map(|m| Stamp::of(&m)).ok();
            if now != Some(item.stamp) {
                return Err(changed());
            }
            if fs::hard_link(&from, &to).is_ok() {
                let ino = fs::symlink_metadata(&to).map(|m| m.ino()).ok();
                if ino != Some(item.stamp.ino) {
                    return Err(changed());
                }
            } else {
                copy_checked(&from, &to, &item)?;
            }
            linked.push(&item).map_err(failed)?;
        }
        Ok(linked)
    }
}

/// `item` with the stat data of its file under `tree` as it is now.
fn stamped_now(tree: &Path, mut item: Item) -> Item {
    if item.kind == EntryKind::File {
        item.stamp = fs::symlink_metadata(tree.join(&item.path))
            .map(|m| Stamp::of(&m))
            .unwrap_or_default();
    }
    item
}

/// Writes the record of the tree at `tree` anew from the (pending) one at
/// `pending`, with every file's stat data as it is now, as the current one.
fn restamped(pending: &Path, tree: &Path) -> Result<()> {
    let Some(mut reader) = state::Reader::open(pending)? else {
        return Ok(());
    };
    let mut stamped = Spill::new().map_err(failed)?;
    while let Some(item) = reader.next_item()? {
        stamped.push(&stamped_now(tree, item)).map_err(failed)?;
    }
    let recorded = Recorded::merge(vec![stamped]).map_err(failed)?;
    let current = pending.with_extension("");
    recorded.save(reader.head, &current)
}

/// Copies `from` (never through a link) to `to`, where a hard link cannot
/// be made (another filesystem, a file of another owner under
/// `protected_hardlinks`), checking the copy against the base's sha256:
/// a copy is new bytes, which the check of the tree did not see.
fn copy_checked(from: &Path, to: &Path, item: &Item) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let src = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(from)
        .doing("opening", from)?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .doing("creating", to)?;
    let mut reader = crate::payload::hashing::HashingReader::new(src);
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, &mut out);
    std::io::copy(&mut reader, &mut writer).doing("copying", from)?;
    std::io::Write::flush(&mut writer).doing("writing", to)?;
    drop(writer);
    let (_, sha) = reader.drain_and_finish().doing("reading", from)?;
    if Some(sha) != item.sha256 {
        return Err(refused(format!(
            "{} changed while the delta was being applied; nothing was changed (run the unpack again)",
            from.display()
        )));
    }
    let mode = if item.executable { 0o755 } else { 0o644 };
    out.set_permissions(fs::Permissions::from_mode(mode))
        .doing("setting permissions of", to)
}

/// Records the tree unpacked into `staging`, which is about to become
/// `target`, as the result of bundle `m` (its entries as read:
/// `[[entries]]` tables in `collected`), beside `ledger`: each file's stat
/// data taken in the staging folder (a rename changes none of it), a line
/// at a time.
pub fn record_unpacked(
    ledger: &Path,
    (staging, target): (&Path, &Path),
    m: (&str, &str),
    collected: std::io::BufWriter<fs::File>,
) -> Result<()> {
    use std::io::Seek;
    let dest = crate::disk::durable::parent_of(target);
    let tree = fs::canonicalize(dest).doing("resolving", dest)?;
    let tree = tree.join(target.file_name().unwrap_or_default());
    let mut file = collected.into_inner().map_err(|e| failed(e.into_error()))?;
    file.rewind().map_err(failed)?;
    let mut stamped = Spill::new().map_err(failed)?;
    let entries = crate::format::entries::EntryLines::new(std::io::BufReader::new(file), 1);
    for e in entries {
        let e = e.map_err(|why| failed(std::io::Error::other(why)))?;
        stamped
            .push(&stamped_now(staging, Item::of(&e)))
            .map_err(failed)?;
    }
    let recorded = Recorded::merge(vec![stamped]).map_err(failed)?;
    let root = fs::symlink_metadata(staging).doing("reading the metadata of", staging)?;
    let head = state::Head {
        tree: Some(tree.display().to_string()),
        root: Some((root.dev(), root.ino())),
        ..state::Head::of(m.0, m.1)
    };
    recorded.save(head, &state::unpacked_path(ledger, &tree, false))
}

/// Swaps the two folders in one step.
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        Error::io(
            "exchanging the new tree with",
            b,
            std::io::Error::other(format!(
                "{e} (this filesystem cannot swap two folders in one step, which --onto needs so that the tree is never half old, half new: keep the unpacked tree on a Linux filesystem such as ext4, XFS, Btrfs or tmpfs)"
            )),
        )
    })
}
