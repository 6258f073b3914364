//! The recorded state of a tree: every entry with its sha256 and the stat
//! data (size, modification and change times, inode) that says whether it
//! may have changed since, like git's index.
//!
//! The sender records the tree each bundle was packed from; the recipient
//! records the tree each unpack built. A later delta is then found, or
//! checked, by stat-ing every file and hashing again only those whose stat
//! data differs (all of them with `--rehash`).
//!
//! A state is a JSON Lines file beside the party's ledger, in
//! `LEDGER.trees/`: a first line about the tree, then one line per entry in
//! tree order. It is pouch's own local file, written whole under a
//! temporary name and renamed into place; it is still read strictly and
//! with bounded lines, as everything pouch reads.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::disk::durable;
use crate::error::{Error, IoContext, Result};
use crate::format::delta::tree_order;
use crate::format::manifest::{Entry, EntryKind};

/// What the first line of a state file says.
pub(super) const FORMAT: &str = "pouch-tree-state-v1";
/// No line of a state file is longer (a path is at most 4 KiB).
const MAX_LINE: u64 = 64 << 10;

/// Stat data of a file when its sha256 was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
}

impl Stamp {
    /// The stamp of `meta`.
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp::from_parts(
            (meta.mtime(), meta.mtime_nsec()),
            (meta.ctime(), meta.ctime_nsec()),
            meta.ino(),
        )
    }

    /// The stamp of `st`, as [`Stamp::of`] gives it for the same file.
    pub fn of_stat(st: &rustix::fs::Stat) -> Stamp {
        Stamp::from_parts(
            (st.st_mtime, st.st_mtime_nsec as i64),
            (st.st_ctime, st.st_ctime_nsec as i64),
            st.st_ino,
        )
    }

    fn from_parts(mtime: (i64, i64), ctime: (i64, i64), ino: u64) -> Stamp {
        let ns = |(s, n): (i64, i64)| s.saturating_mul(1_000_000_000) + n;
        Stamp {
            mtime_ns: ns(mtime),
            ctime_ns: ns(ctime),
            ino,
        }
    }
}

/// One entry of a recorded tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The path in the bundle, `/`-separated.
    pub path: String,
    /// File or folder.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders).
    #[serde(default)]
    pub size: u64,
    /// sha256, lowercase hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Executable (files only).
    #[serde(default)]
    pub executable: bool,
    /// Stat data when the sha256 was taken (files only).
    #[serde(default)]
    pub stamp: Stamp,
}

impl Item {
    /// The item of a manifest entry, without stat data.
    pub fn of(e: &Entry) -> Item {
        Item {
            path: e.path.clone(),
            kind: e.kind,
            size: e.file_size(),
            sha256: e.sha256.clone(),
            executable: e.executable(),
            stamp: Stamp::default(),
        }
    }

    /// The manifest entry this item is.
    pub fn entry(&self) -> Entry {
        match self.kind {
            EntryKind::Folder => Entry::folder(self.path.clone()),
            EntryKind::File => Entry::file(
                self.path.clone(),
                self.size,
                self.sha256.clone().unwrap_or_default(),
                self.executable,
            ),
        }
    }

    /// Whether `meta` (of a file at this path) says the file is as
    /// recorded, without reading it.
    pub fn unchanged(&self, meta: &fs::Metadata) -> bool {
        use std::os::unix::fs::PermissionsExt;
        self.kind == EntryKind::File
            && meta.is_file()
            && meta.len() == self.size
            && (meta.permissions().mode() & 0o111 != 0) == self.executable
            && Stamp::of(meta) == self.stamp
    }
}

/// What the first line of a state file says about the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Always [`FORMAT`].
    pub format: String,
    /// The bundle the tree is the result of.
    pub bundle_id: String,
    /// sha256 of that bundle's manifest file.
    pub manifest_sha256: String,
    /// The entry-list digest of the whole tree, in tree order.
    pub tree_sha256: String,
    /// For an unpacked tree: where it is, and its folder's (device, inode),
    /// which tell a state of the tree in place from one of a tree that was
    /// about to replace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// See `tree`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<(u64, u64)>,
}

impl Head {
    /// The head of the record of the tree bundle `bundle_id` (whose
    /// manifest hashes to `manifest_sha256`) made; its digest is set when
    /// the record is written, its place for an unpacked tree.
    pub fn of(bundle_id: &str, manifest_sha256: &str) -> Head {
        Head {
            format: FORMAT.into(),
            bundle_id: bundle_id.into(),
            manifest_sha256: manifest_sha256.into(),
            tree_sha256: String::new(),
            tree: None,
            root: None,
        }
    }
}

/// A state read a line at a time: its head, then each item, checked as it
/// comes (a safe path, in tree order) and, at the end, against the head's
/// digest. An item that fails, or a digest that does not match, is an
/// error (the record is damaged), so whoever reads to the end has checked
/// the whole record.
pub struct Reader {
    /// What the record says of the tree.
    pub head: Head,
    path: PathBuf,
    lines: BufReader<File>,
    last: Option<String>,
    digest: Option<crate::format::entries::Digest>,
    line_no: usize,
}

impl Reader {
    /// Opens the state at `path` and reads its head; `None` when there is
    /// no such file.
    pub fn open(path: &Path) -> Result<Option<Reader>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        let mut r = Reader {
            head: Head::of("", ""),
            path: path.to_path_buf(),
            lines: BufReader::new(file),
            last: None,
            digest: Some(crate::format::entries::Digest::default()),
            line_no: 0,
        };
        let Some(line) = r.line()? else {
            return Err(r.bad("empty".into()));
        };
        r.head = serde_json::from_slice(&line).map_err(|e| r.bad(e.to_string()))?;
        if r.head.format != FORMAT {
            return Err(r.bad(format!("format {:?} is not {FORMAT:?}", r.head.format)));
        }
        Ok(Some(r))
    }

    /// The same record opened again, once read whole: every item and the
    /// digest checked before any is relied on.
    pub fn verified(mut self) -> Result<Reader> {
        while self.next_item()?.is_some() {}
        Reader::open(&self.path)?.ok_or_else(|| self.bad("it vanished while it was read".into()))
    }

    fn bad(&self, why: String) -> Error {
        Error::Refused(format!(
            "the recorded tree state {} is damaged at line {} ({why}); pouch cannot tell what the tree holds: unpack the base again into a fresh folder (pouch unpack BASE.toml --allow-replay -d DEST) and apply the delta onto that",
            self.path.display(),
            self.line_no
        ))
    }

    fn line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = (&mut self.lines)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .doing("reading", &self.path)?;
        self.line_no += 1;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            return Err(self.bad("line too long or cut short".into()));
        }
        Ok(Some(line))
    }

    /// The next item; `None` at the end, once the digest matched.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        let Some(line) = self.line()? else {
            if let Some(d) = self.digest.take() {
                if d.finish() != self.head.tree_sha256 {
                    return Err(self.bad("its entries do not match its digest".into()));
                }
            }
            return Ok(None);
        };
        let item: Item = serde_json::from_slice(&line).map_err(|e| self.bad(e.to_string()))?;
        crate::format::names::check_path(item.path.as_bytes()).map_err(|e| self.bad(e))?;
        if let Some(prev) = &self.last {
            if tree_order(prev, &item.path) != std::cmp::Ordering::Less {
                return Err(self.bad("entries out of tree order".into()));
            }
        }
        self.last = Some(item.path.clone());
        match &mut self.digest {
            Some(d) => d.update(&item.entry()),
            None => return Err(self.bad("an entry after the end".into())),
        }
        Ok(Some(item))
    }
}

/// Where a party keeps its recorded trees: `LEDGER.trees/` beside its ledger.
pub fn trees_dir(ledger: &Path) -> PathBuf {
    let mut name = ledger.file_name().unwrap_or_default().to_os_string();
    name.push(".trees");
    durable::parent_of(ledger).join(name)
}

/// The sender's record of the tree bundle `bundle_id` was packed from.
pub fn packed_path(ledger: &Path, bundle_id: &str) -> PathBuf {
    trees_dir(ledger).join(format!("packed-{bundle_id}.jsonl"))
}

/// The recipient's record of the unpacked tree at `tree` (an absolute
/// path): `pending` for the one about to replace it.
pub fn unpacked_path(ledger: &Path, tree: &Path, pending: bool) -> PathBuf {
    let key = crate::payload::hashing::sha256_hex(tree.as_os_str().as_encoded_bytes());
    let suffix = if pending { ".pending" } else { "" };
    trees_dir(ledger).join(format!("unpacked-{}.jsonl{suffix}", &key[..32]))
}

/// The recorded state of the unpacked tree at `tree`: of the current and
/// the pending record, the one whose folder is the one at `tree` now (a
/// pending one is made current; the other is removed), opened at its first
/// item. `None` when neither is.
pub fn load_unpacked(ledger: &Path, tree: &Path) -> Result<Option<Reader>> {
    let Ok(meta) = fs::symlink_metadata(tree) else {
        return Ok(None);
    };
    let root = Some((meta.dev(), meta.ino()));
    let current = unpacked_path(ledger, tree, false);
    let pending = unpacked_path(ledger, tree, true);
    let here = |s: &Option<Reader>| {
        s.as_ref().is_some_and(|s| {
            s.head.root == root && s.head.tree.as_deref() == Some(&*tree.to_string_lossy())
        })
    };
    let p = Reader::open(&pending).ok().flatten();
    if here(&p) {
        fs::rename(&pending, &current).doing("renaming", &pending)?;
        return Reader::open(&current);
    }
    if p.is_some() || pending.exists() {
        let _ = fs::remove_file(&pending);
    }
    let c = Reader::open(&current)?;
    Ok(if here(&c) { c } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::spill::{Recorded, Spill};

    #[test]
    fn a_stamp_from_std_metadata_and_one_from_a_raw_stat_agree() {
        let (_dir, path) = crate::scratch::file("f", Some(b"x"));
        let meta = fs::symlink_metadata(&path).expect("metadata");
        let st = rustix::fs::lstat(&path).expect("stat");
        assert_eq!(Stamp::of(&meta), Stamp::of_stat(&st));
        assert_ne!(Stamp::of(&meta), Stamp::default());
    }

    fn head() -> Head {
        Head::of(&"0".repeat(32), &"1".repeat(64))
    }

    #[test]
    fn a_state_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let items = [
            Item {
                path: "t/b".into(),
                kind: EntryKind::File,
                size: 3,
                sha256: Some("ab".repeat(32)),
                executable: true,
                stamp: Stamp {
                    mtime_ns: 5,
                    ctime_ns: 6,
                    ino: 7,
                },
            },
            Item {
                path: "t".into(),
                kind: EntryKind::Folder,
                size: 0,
                sha256: None,
                executable: false,
                stamp: Stamp::default(),
            },
        ];
        let mut spill = Spill::new().expect("spill");
        items.iter().for_each(|i| spill.push(i).expect("push"));
        let path = dir.path().join("l.trees/x.jsonl");
        Recorded::merge(vec![spill])
            .expect("merge")
            .save(head(), &path)
            .expect("save");
        let mut back = Reader::open(&path).expect("open").expect("some");
        assert_eq!(back.head.bundle_id, head().bundle_id);
        let mut read = Vec::new();
        while let Some(item) = back.next_item().expect("item") {
            read.push(item);
        }
        assert_eq!(read, [items[1].clone(), items[0].clone()]);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\"size\":3", "\"size\":4");
        fs::write(&path, text).unwrap();
        let reader = Reader::open(&path).expect("open").expect("some");
        let err = reader.verified().err().expect("damaged");
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(Reader::open(&dir.path().join("none")).unwrap().is_none());
    }
}
