//! The two walks of `unpack --onto`, each a merge of a folder walked in
//! tree order with a list in tree order, a line at a time: TREE against
//! the base's record ([`check_tree`]), and the new tree against the files
//! linked into it ([`built`]). Memory holds one folder's names at a time
//! (the walk sorts each folder), whatever the number of files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::onto::refused;
use super::spill::{failed, Recorded, Spill, Tally};
use super::state::{Item, Reader, Stamp};
use crate::error::{Error, IoContext, Result};
use crate::format::delta::tree_order;
use crate::format::manifest::EntryKind;
use crate::format::names::escape;

/// Every entry under `root`, in tree order, with its metadata; a link or
/// special file, or a name that is not UTF-8, is an error naming it.
fn walk(root: &Path) -> impl Iterator<Item = Result<(String, fs::Metadata)>> + '_ {
    let mut last: Option<String> = None;
    let entries = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    entries.into_iter().map(move |item| {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let io = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("a loop"));
            Error::io("listing", path, io)
        })?;
        let rel = item.path().strip_prefix(root).unwrap_or(item.path());
        let Some(rel) = rel.to_str() else {
            return Err(refused(format!(
                "{} holds {}, whose name is not UTF-8: it is not the base's",
                root.display(),
                escape(&rel.to_string_lossy())
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
        if last.as_deref().is_some_and(|l| !tree_order(l, rel).is_lt()) {
            return Err(Error::Internal(format!(
                "the walk of {} is out of order",
                root.display()
            )));
        }
        last = Some(rel.to_string());
        Ok((rel.to_string(), meta))
    })
}

fn kind_of(meta: &fs::Metadata) -> EntryKind {
    if meta.is_dir() {
        EntryKind::Folder
    } else {
        EntryKind::File
    }
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Folder => "folder",
    }
}

/// Checks `tree` against the base's record `base`: the same entries, each
/// file with the recorded sha256 (taken again when its stat data changed,
/// or for every file with `rehash`), and the record itself whole (its
/// digest). The first difference is the error. Returns the record's items,
/// each file with its stat data as found.
pub(super) fn check_tree(tree: &Path, mut base: Reader, rehash: bool) -> Result<Spill> {
    let bundle = base.head.bundle_id.clone();
    let differs = |what: String| {
        refused(format!(
            "{} is not the result of base bundle {bundle}: {what}; nothing was changed (restore the tree, or ask the sender for a full bundle)",
            tree.display()
        ))
    };
    let mut checked = Spill::new().map_err(failed)?;
    let mut want = base.next_item()?;
    for found in walk(tree) {
        let (path, meta) = found?;
        crate::interrupt::check()?;
        let Some(w) = want.take() else {
            return Err(differs(format!("{} is not in the base", escape(&path))));
        };
        if tree_order(&w.path, &path).is_lt() {
            return Err(differs(format!("{} is missing", escape(&w.path))));
        }
        if w.path != path {
            return Err(differs(format!("{} is not in the base", escape(&path))));
        }
        let kind = kind_of(&meta);
        if kind != w.kind {
            return Err(differs(format!(
                "{} is a {} now, a {} in the base",
                escape(&path),
                kind_name(kind),
                kind_name(w.kind)
            )));
        }
        if kind == EntryKind::File && (rehash || !w.unchanged(&meta)) {
            let executable = meta.permissions().mode() & 0o111 != 0;
            if meta.len() != w.size || executable != w.executable {
                return Err(differs(format!(
                    "{} has another size or mode",
                    escape(&path)
                )));
            }
            let sha = super::base::hash_file(&tree.join(&path))?;
            if Some(&sha) != w.sha256.as_ref() {
                return Err(differs(format!(
                    "{} was changed (its sha256 differs)",
                    escape(&path)
                )));
            }
        }
        let stamp = match kind {
            EntryKind::File => Stamp::of(&meta),
            EntryKind::Folder => w.stamp,
        };
        checked.push(&Item { stamp, ..w }).map_err(failed)?;
        want = base.next_item()?;
    }
    if let Some(w) = want {
        return Err(differs(format!("{} is missing", escape(&w.path))));
    }
    Ok(checked)
}

/// The item of an entry walked, with its sha256 (files) and stat data.
fn walked_item(path: String, meta: &fs::Metadata, sha256: Option<String>) -> Item {
    match kind_of(meta) {
        EntryKind::Folder => Item {
            path,
            kind: EntryKind::Folder,
            size: 0,
            sha256: None,
            executable: false,
            stamp: Stamp::default(),
        },
        EntryKind::File => Item {
            size: meta.len(),
            sha256,
            executable: meta.permissions().mode() & 0o111 != 0,
            stamp: Stamp::of(meta),
            kind: EntryKind::File,
            path,
        },
    }
}

/// The record of the tree built in `staging`: the files linked from the
/// base (`linked`, in tree order) keep the base's sha256; the delta's own
/// are hashed (they are what changed, a small part).
pub(super) fn built(staging: &Path, linked: Spill) -> Result<Recorded> {
    let mut linked = linked.items().map_err(failed)?.peekable();
    let mut out = Spill::new().map_err(failed)?;
    for found in walk(staging) {
        let (path, meta) = found?;
        crate::interrupt::check()?;
        let item = match kind_of(&meta) {
            EntryKind::Folder => walked_item(path, &meta, None),
            EntryKind::File => {
                let from_base = match linked.peek() {
                    Some(Ok(l)) if l.path == path => linked.next().transpose().map_err(failed)?,
                    Some(Err(_)) => return Err(failed(std::io::Error::other("unreadable"))),
                    _ => None,
                };
                let sha = match from_base {
                    Some(l) => l.sha256,
                    None => Some(super::base::hash_file(&staging.join(&path))?),
                };
                walked_item(path, &meta, sha)
            }
        };
        out.push(&item).map_err(failed)?;
    }
    if let Some(l) = linked.next() {
        let l = l.map_err(failed)?;
        return Err(refused(format!(
            "{} vanished from the new tree while it was being built",
            escape(&l.path)
        )));
    }
    Recorded::merge(vec![out]).map_err(failed)
}

/// What the new tree will be, before anything is linked into `staging`
/// (which holds the delta's payload): its digest and counts, from a merge
/// of the staging folder's walk (its files hashed: they are what changed)
/// with the base's `checked` items the delta neither deletes nor replaces.
/// A delta whose result is not the signed one is refused here, with TREE's
/// files not even linked.
pub(super) fn predicted(
    staging: &Path,
    checked: &mut Spill,
    deleted: &[String],
) -> Result<(String, (u64, u64, u64))> {
    let mut deleted = deleted.iter().peekable();
    let mut base = checked
        .read()
        .map_err(failed)?
        .filter(|item| {
            let Ok(item) = item else { return true };
            while deleted
                .next_if(|d| tree_order(d, &item.path).is_lt())
                .is_some()
            {}
            deleted.next_if(|d| **d == item.path).is_none()
        })
        .peekable();
    let mut walked = walk(staging).peekable();
    let mut tally = Tally::default();
    loop {
        let from_walk = match (walked.peek(), base.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) | (Some(Ok(_)), None) => true,
            (None, Some(_)) | (_, Some(Err(_))) => false,
            (Some(Ok((a, _))), Some(Ok(b))) => {
                let order = tree_order(a, &b.path);
                if order.is_eq() {
                    base.next();
                }
                !order.is_gt()
            }
        };
        let item = if from_walk {
            let Some(found) = walked.next() else { break };
            let (path, meta) = found?;
            let sha = match meta.is_file() {
                true => Some(super::base::hash_file(&staging.join(&path))?),
                false => None,
            };
            walked_item(path, &meta, sha)
        } else {
            let Some(item) = base.next() else { break };
            item.map_err(failed)?
        };
        crate::interrupt::check()?;
        tally.add(&item);
    }
    Ok(tally.finish())
}
