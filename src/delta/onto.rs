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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::state::{self, Item, Stamp, TreeState};
use crate::custody::ledger::{Event, Ledger};
use crate::error::{Error, IoContext, Result};
use crate::format::delta::{tree_order, Delta};
use crate::format::manifest::{Entry, EntryKind, Manifest};
use crate::format::names::escape;

/// A delta about to go onto TREE, TREE checked.
pub struct Onto {
    /// TREE, absolute.
    pub tree: PathBuf,
    ledger: PathBuf,
    base: TreeState,
    delta: Delta,
    /// Each file of TREE as the check found it: a file is linked into the
    /// new tree only while it is still that file.
    seen: HashMap<String, Stamp>,
}

fn refused(reason: String) -> Error {
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
                "--onto applies a delta bundle, and {} is a full bundle: unpack it with -o DEST",
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
        let seen = check_tree(&tree, &base, rehash)?;
        Ok(Onto {
            tree,
            ledger: ledger.path().to_path_buf(),
            base,
            delta,
            seen,
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
        let linked = self.link_kept(staging, deleted)?;
        let mut result = built(staging, &self.base, &linked, (bundle_id, manifest_sha256))?;
        let d = &self.delta;
        if result.head.tree_sha256 != d.tree_sha256
            || result.counts() != (d.tree_files, d.tree_folders, d.tree_bytes)
        {
            let (files, folders, bytes) = result.counts();
            return Err(Error::ContentsMismatch {
                reason: format!(
                    "the tree built from the base and this delta ({files} files, {folders} folders, {bytes} bytes) is not the one the signed manifest describes ({} files, {} folders, {} bytes, or another digest)",
                    d.tree_files, d.tree_folders, d.tree_bytes
                ),
            });
        }
        let root = fs::symlink_metadata(staging).doing("reading the metadata of", staging)?;
        result.head.tree = Some(self.tree.display().to_string());
        result.head.root = Some((root.dev(), root.ino()));
        let pending = state::unpacked_path(&self.ledger, &self.tree, true);
        result.save(&pending)?;
        let dir = fs::File::open(staging).doing("opening", staging)?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io("syncing", staging, e.into()))?;
        crate::interrupt::check()?;
        before_commit(&self.tree)?;
        exchange(staging, &self.tree)?;
        // From here the new tree is in place: what fails is a warning.
        let _ = fs::set_permissions(
            &self.tree,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
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
        restamp(&self.tree, &mut result.items);
        let current = state::unpacked_path(&self.ledger, &self.tree, false);
        if result.save(&current).is_ok() {
            let _ = fs::remove_file(&pending);
        }
        Ok(())
    }

    /// Hard-links (or copies) into `staging` every file of the base that
    /// the delta neither deletes nor replaces; returns their paths.
    fn link_kept(&self, staging: &Path, deleted: &[String]) -> Result<HashSet<String>> {
        let deleted: HashSet<&str> = deleted.iter().map(String::as_str).collect();
        let mut linked = HashSet::new();
        for item in &self.base.items {
            if item.kind != EntryKind::File || deleted.contains(item.path.as_str()) {
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
            let seen = self.seen.get(&item.path);
            if now.is_none() || now.as_ref() != seen {
                return Err(changed());
            }
            if fs::hard_link(&from, &to).is_ok() {
                let ino = fs::symlink_metadata(&to).map(|m| m.ino()).ok();
                if ino != seen.map(|s| s.ino) {
                    return Err(changed());
                }
            } else {
                copy_checked(&from, &to, item)?;
            }
            linked.insert(item.path.clone());
        }
        Ok(linked)
    }
}

/// Copies `from` (never through a link) to `to`, where a hard link cannot
/// be made (another filesystem, a file of another owner under
/// `protected_hardlinks`), checking the copy against the base's sha256:
/// a copy is new bytes, which the check of the tree did not see.
fn copy_checked(from: &Path, to: &Path, item: &Item) -> Result<()> {
    use sha2::{Digest as _, Sha256};
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut src = fs::OpenOptions::new()
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
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut src, &mut buf).doing("reading", from)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).doing("writing", to)?;
    }
    if Some(hex::encode(hash.finalize())) != item.sha256 {
        return Err(refused(format!(
            "{} changed while the delta was being applied; nothing was changed (run the unpack again)",
            from.display()
        )));
    }
    let mode = if item.executable { 0o755 } else { 0o644 };
    out.set_permissions(fs::Permissions::from_mode(mode))
        .doing("setting permissions of", to)
}

/// Records the tree just unpacked at `tree` as the result of bundle `m`
/// (its entries as read), beside `ledger`.
pub fn record_unpacked(
    ledger: &Path,
    tree: &Path,
    m: (&str, &str),
    entries: Vec<Entry>,
) -> Result<()> {
    let tree = fs::canonicalize(tree).doing("resolving", tree)?;
    let mut items: Vec<Item> = entries
        .into_iter()
        .map(|e| Item {
            size: e.file_size(),
            executable: e.executable(),
            path: e.path,
            kind: e.kind,
            sha256: e.sha256,
            stamp: Stamp::default(),
        })
        .collect();
    restamp(&tree, &mut items);
    let mut s = TreeState::new(m.0, m.1, items);
    let root = fs::symlink_metadata(&tree).doing("reading the metadata of", &tree)?;
    s.head.tree = Some(tree.display().to_string());
    s.head.root = Some((root.dev(), root.ino()));
    s.save(&state::unpacked_path(ledger, &tree, false))
}

/// Sets each file item's stat data from the file at `root/path` now.
fn restamp(root: &Path, items: &mut [Item]) {
    for item in items.iter_mut().filter(|i| i.kind == EntryKind::File) {
        item.stamp = fs::symlink_metadata(root.join(&item.path))
            .map(|m| Stamp::of(&m))
            .unwrap_or_default();
    }
}

/// Every entry under `root`, in tree order, with its metadata; a link or
/// special file, or a name that is not UTF-8, is a difference.
fn walk(root: &Path) -> Result<Vec<(String, fs::Metadata)>> {
    let mut out = Vec::new();
    for item in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            Error::io(
                "listing",
                path,
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("loop")),
            )
        })?;
        let rel = item.path().strip_prefix(root).unwrap_or(item.path());
        let Some(rel) = rel.to_str() else {
            return Err(refused(format!(
                "{} holds {}, whose name is not UTF-8: it is not the base's",
                root.display(),
                rel.display()
            )));
        };
        let meta =
            fs::symlink_metadata(item.path()).doing("reading the metadata of", item.path())?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(refused(format!(
                "{} holds {}, which is neither a file nor a folder: it is not the base's",
                root.display(),
                escape(rel)
            )));
        }
        out.push((rel.to_string(), meta));
    }
    out.sort_by(|a, b| tree_order(&a.0, &b.0));
    Ok(out)
}

/// Checks `tree` against the recorded `base`: the same entries, each file
/// with the recorded sha256 (taken again when its stat data changed, or for
/// every file with `rehash`). The first difference is the error; returns
/// each file's stat data as found.
fn check_tree(tree: &Path, base: &TreeState, rehash: bool) -> Result<HashMap<String, Stamp>> {
    let found = walk(tree)?;
    let mut seen = HashMap::new();
    let differs = |what: String| {
        refused(format!(
            "{} is not the result of base bundle {}: {what}; nothing was changed (restore the tree, or ask the sender for a full bundle)",
            tree.display(),
            base.head.bundle_id
        ))
    };
    let mut want = base.items.iter().peekable();
    for (path, meta) in &found {
        crate::interrupt::check()?;
        if let Some(w) = want.next_if(|w| tree_order(&w.path, path).is_lt()) {
            return Err(differs(format!("{} is missing", escape(&w.path))));
        }
        let Some(w) = want.next_if(|w| w.path == *path) else {
            return Err(differs(format!("{} is not in the base", escape(path))));
        };
        let kind = if meta.is_dir() {
            EntryKind::Folder
        } else {
            EntryKind::File
        };
        if kind != w.kind {
            let name = |k: EntryKind| match k {
                EntryKind::File => "file",
                EntryKind::Folder => "folder",
            };
            return Err(differs(format!(
                "{} is a {} now, a {} in the base",
                escape(path),
                name(kind),
                name(w.kind)
            )));
        }
        if kind == EntryKind::File {
            seen.insert(path.clone(), Stamp::of(meta));
        }
        if kind == EntryKind::Folder || (!rehash && w.unchanged(meta)) {
            continue;
        }
        use std::os::unix::fs::PermissionsExt;
        if meta.len() != w.size || (meta.permissions().mode() & 0o111 != 0) != w.executable {
            return Err(differs(format!(
                "{} has another size or mode",
                escape(path)
            )));
        }
        let sha = super::base::hash_file(&tree.join(path))?;
        if Some(&sha) != w.sha256.as_ref() {
            return Err(differs(format!(
                "{} was changed (its sha256 differs)",
                escape(path)
            )));
        }
    }
    if let Some(w) = want.next() {
        return Err(differs(format!("{} is missing", escape(&w.path))));
    }
    Ok(seen)
}

/// The state of the tree built in `staging`: the files linked from the base
/// keep the base's sha256; the delta's own are hashed (they are what
/// changed, a small part).
fn built(
    staging: &Path,
    base: &TreeState,
    linked: &HashSet<String>,
    (bundle_id, manifest_sha256): (&str, &str),
) -> Result<TreeState> {
    let known: std::collections::HashMap<&str, &Item> = base
        .items
        .iter()
        .filter(|i| linked.contains(&i.path))
        .map(|i| (i.path.as_str(), i))
        .collect();
    let mut items = Vec::new();
    for (path, meta) in walk(staging)? {
        crate::interrupt::check()?;
        let item = if meta.is_dir() {
            Item {
                path,
                kind: EntryKind::Folder,
                size: 0,
                sha256: None,
                executable: false,
                stamp: Stamp::default(),
            }
        } else {
            use std::os::unix::fs::PermissionsExt;
            let sha = match known.get(path.as_str()) {
                Some(i) => i.sha256.clone(),
                None => Some(super::base::hash_file(&staging.join(&path))?),
            };
            Item {
                size: meta.len(),
                sha256: sha,
                executable: meta.permissions().mode() & 0o111 != 0,
                stamp: Stamp::of(&meta),
                kind: EntryKind::File,
                path,
            }
        };
        items.push(item);
    }
    Ok(TreeState::new(bundle_id, manifest_sha256, items))
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
