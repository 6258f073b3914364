//! The source walk: listing what to pack, in order, and refusing what cannot
//! be packed — before a byte is written.
//!
//! [`pack`](super::pack) and [`dry_run`](super::dry_run) both start here,
//! so a dry run lists exactly what a pack would take, with the same checks.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::disk::folder::OpenFolder;
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::{self, EntryKind};
use crate::format::names::{self, Clash, NameSet};

/// One entry to pack, as found when the sources were listed.
#[derive(Clone)]
pub(super) struct Planned {
    pub(super) source: PathBuf,
    pub(super) path: String,
    pub(super) kind: EntryKind,
    pub(super) size: u64,
    pub(super) executable: bool,
    pub(super) mtime: u64,
    pub(super) ino: (u64, u64),
    /// Stat data, to tell a file unchanged since a delta's base.
    pub(super) stamp: crate::delta::state::Stamp,
}

/// Every name in `plan` that some filesystem cannot hold, with the reason.
pub(super) fn unportable(plan: &[Planned]) -> Vec<String> {
    plan.iter().flat_map(|p| unportable_name(&p.path)).collect()
}

/// Why some filesystem cannot hold `path`, if one cannot.
pub(super) fn unportable_name(path: &str) -> impl Iterator<Item = String> + '_ {
    crate::format::names::unportable(path)
        .into_iter()
        .map(move |why| format!("{}: {why}", crate::format::names::escape(path)))
}

/// Lists everything to pack, in order, refusing what cannot be packed.
pub(super) fn plan(
    sources: &[PathBuf],
    skip_special: bool,
    sde: Option<u64>,
    filter: &crate::format::filter::Filter,
) -> Result<(Vec<Planned>, Vec<PathBuf>)> {
    let mut plan = Vec::new();
    let skipped = walk(sources, skip_special, sde, filter, &mut |p| {
        plan.push(p);
        Ok(())
    })?;
    Ok((plan, skipped))
}

/// Lists everything to pack, in order, refusing what cannot be packed:
/// hands each entry to `each` as soon as it is found, so that packing need
/// not wait for the end of the listing. Returns the special files skipped.
pub(super) fn walk(
    sources: &[PathBuf],
    skip_special: bool,
    sde: Option<u64>,
    filter: &crate::format::filter::Filter,
    each: &mut dyn FnMut(Planned) -> Result<()>,
) -> Result<Vec<PathBuf>> {
    let mut skipped = Vec::new();
    let mut set = NameSet::default();
    for source in sources {
        let meta =
            Meta::of(&fs::symlink_metadata(source).doing("reading the metadata of", source)?);
        let top = top_name(source)?;
        if !meta.is_dir() && !meta.is_file() {
            if skip_special {
                skipped.push(source.clone());
                continue;
            }
            return Err(special(source, &meta));
        }
        if meta.is_file() {
            if !filter.keeps_file(&top) {
                continue;
            }
            each(add(&mut set, source.clone(), top, &meta, sde)?)?;
            continue;
        }
        let walker = walkdir::WalkDir::new(source)
            .follow_links(false)
            .sort_by_file_name();
        let mut walk = walker.into_iter();
        let mut folder = OpenFolder::default();
        while let Some(item) = walk.next() {
            let item = item.map_err(|e| {
                let path = e.path().unwrap_or(source).to_path_buf();
                match e.into_io_error() {
                    Some(io) => Error::io("listing", path, io),
                    None => Error::BadSource {
                        path,
                        reason: "filesystem loop".into(),
                    },
                }
            })?;
            let meta = lstat(&mut folder, item.path()).map_err(|e| Error::BadSource {
                path: item.path().to_path_buf(),
                reason: e.to_string(),
            })?;
            if !meta.is_dir() && !meta.is_file() {
                if skip_special {
                    skipped.push(item.path().to_path_buf());
                    continue;
                }
                return Err(special(item.path(), &meta));
            }
            let rel = item.path().strip_prefix(source).unwrap_or(Path::new(""));
            let mut path = top.clone();
            for part in rel.components() {
                let part = part.as_os_str().to_str().ok_or_else(|| Error::BadSource {
                    path: item.path().to_path_buf(),
                    reason: "name is not valid UTF-8; rename it".into(),
                })?;
                path.push('/');
                path.push_str(&crate::format::names::nfc(part));
            }
            if meta.is_dir() && !filter.keeps_folder(&path) {
                walk.skip_current_dir();
                continue;
            }
            if meta.is_file() && !filter.keeps_file(&path) {
                continue;
            }
            each(add(&mut set, item.path().to_path_buf(), path, &meta, sde)?)?;
        }
    }
    Ok(skipped)
}

/// The entry for `source`, stored as `path`, once its name is checked.
fn add(
    set: &mut NameSet,
    source: PathBuf,
    path: String,
    meta: &Meta,
    sde: Option<u64>,
) -> Result<Planned> {
    names::check_path(path.as_bytes()).map_err(|r| Error::BadSource {
        path: source.clone(),
        reason: format!("cannot be packed: {r}"),
    })?;
    if let Err(clash) = set.insert(&path, meta.is_dir()) {
        let reason = match clash {
            Clash::Reserved => format!(
                "the name {} is reserved for pouch's inner manifest",
                manifest::INNER_MANIFEST_NAME
            ),
            Clash::Twice => format!(
                "two sources would both be stored as {path:?}; pack them from different folders or rename one"
            ),
            Clash::Collides(other) => format!(
                "its name collides with {other:?} on filesystems that ignore case or Unicode normalisation; rename one"
            ),
            Clash::NoFolder => format!("its folder is not packed before {path:?}"),
        };
        return Err(Error::BadSource {
            path: source,
            reason,
        });
    }
    // Before 1970 counts as 1970, as it always has.
    let mtime = u64::try_from(meta.mtime).unwrap_or(0);
    let mtime = match sde {
        Some(sde) => mtime.min(sde),
        None => mtime,
    };
    Ok(Planned {
        source,
        path,
        kind: if meta.is_dir() {
            EntryKind::Folder
        } else {
            EntryKind::File
        },
        size: if meta.is_dir() { 0 } else { meta.len },
        executable: meta.is_file() && meta.mode & 0o111 != 0,
        mtime,
        ino: (meta.dev, meta.stamp.ino),
        stamp: meta.stamp,
    })
}

/// What the listing takes of an entry's `lstat`.
struct Meta {
    kind: rustix::fs::FileType,
    len: u64,
    mode: u32,
    /// Modification time, whole seconds since the epoch.
    mtime: i64,
    dev: u64,
    stamp: crate::delta::state::Stamp,
}

impl Meta {
    fn of(meta: &fs::Metadata) -> Meta {
        Meta {
            kind: rustix::fs::FileType::from_raw_mode(meta.mode()),
            len: meta.len(),
            mode: meta.mode(),
            mtime: meta.mtime(),
            dev: meta.dev(),
            stamp: crate::delta::state::Stamp::of(meta),
        }
    }

    fn is_dir(&self) -> bool {
        self.kind == rustix::fs::FileType::Directory
    }

    fn is_file(&self) -> bool {
        self.kind == rustix::fs::FileType::RegularFile
    }
}

/// `lstat` of `path` (its metadata, not that of what a link points to),
/// relative to its folder, kept open for the entries after it.
fn lstat(folder: &mut OpenFolder, path: &Path) -> std::io::Result<Meta> {
    let Some(at) = folder.of(path)? else {
        return Ok(Meta::of(&fs::symlink_metadata(path)?));
    };
    let st = rustix::fs::statat(at.dir, at.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Meta {
        kind: rustix::fs::FileType::from_raw_mode(st.st_mode),
        len: st.st_size as u64,
        mode: st.st_mode,
        mtime: st.st_mtime,
        dev: st.st_dev,
        stamp: crate::delta::state::Stamp::of_stat(&st),
    })
}

/// The name a source gets at the top of the bundle: its own file name.
fn top_name(source: &Path) -> Result<String> {
    let resolved;
    let mut name = source.file_name();
    if name.is_none() {
        // `.`, `..` or a path ending in them: use the folder's real name.
        resolved = fs::canonicalize(source).doing("resolving", source)?;
        name = resolved.file_name();
    }
    let name = name.ok_or_else(|| Error::BadSource {
        path: source.to_path_buf(),
        reason: "has no name to store it under (the root folder cannot be packed)".into(),
    })?;
    name.to_str()
        .map(crate::format::names::nfc)
        .ok_or_else(|| Error::BadSource {
            path: source.to_path_buf(),
            reason: "name is not valid UTF-8; rename it".into(),
        })
}

fn special(path: &Path, meta: &Meta) -> Error {
    use rustix::fs::FileType;
    let what = match meta.kind {
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::BlockDevice | FileType::CharacterDevice => "a device",
        _ => "not a regular file or folder",
    };
    Error::BadSource {
        path: path.to_path_buf(),
        reason: format!(
            "is {what}; only regular files and folders are packed (--skip-special skips it)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_lists_folders_before_their_files_in_sorted_order() {
        let (_dir, src) = crate::scratch::tree(&[("c.txt", "c"), ("a.txt", "a"), ("b/z.txt", "z")]);
        let (plan, _) = plan(&[src], false, None, &Default::default()).expect("plan");
        let paths: Vec<&str> = plan.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["case", "case/a.txt", "case/b", "case/b/z.txt", "case/c.txt"]
        );
    }

    #[test]
    fn the_reserved_inner_manifest_name_is_refused() {
        let (_dir, f) = crate::scratch::file(manifest::INNER_MANIFEST_NAME, Some(b"x"));
        assert!(matches!(
            plan(&[f], false, None, &Default::default()),
            Err(Error::BadSource { .. })
        ));
    }
}
