//! Recording a tree without holding it: items written a line at a time to
//! an unnamed temporary file as pack or unpack meets them, then put in tree
//! order and counted on the way to the state file, so that recording a
//! million files costs a few buffers, not a million items.
//!
//! The items come in walk order, which is tree order for every tree pouch
//! lists from one folder; two spills (a delta's packed and kept files) are
//! merged. Items out of tree order (sources given in another order, names
//! whose Unicode form sorts otherwise) are sorted in memory instead: the
//! one case that costs memory by the number of files.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::path::Path;

use super::state::{Head, Item};
use crate::disk::durable::{self, PendingFile};
use crate::error::{IoContext, Result};
use crate::format::delta::tree_order;
use crate::format::entries::Digest;
use crate::format::manifest::EntryKind;

/// Items so far, in an unnamed temporary file.
pub struct Spill {
    file: BufWriter<File>,
    last: Option<String>,
    in_order: bool,
    len: u64,
}

impl Spill {
    /// An empty spill (the file is gone when pouch exits, however it exits).
    pub fn new() -> io::Result<Spill> {
        Ok(Spill {
            file: BufWriter::with_capacity(256 << 10, tempfile::tempfile()?),
            last: None,
            in_order: true,
            len: 0,
        })
    }

    /// Adds the next item.
    pub fn push(&mut self, item: &Item) -> io::Result<()> {
        if let Some(last) = &self.last {
            self.in_order &= tree_order(last, &item.path) == Ordering::Less;
        }
        self.last = Some(item.path.clone());
        serde_json::to_writer(&mut self.file, item).map_err(io::Error::other)?;
        self.file.write_all(b"\n")?;
        self.len += 1;
        Ok(())
    }

    /// The items, from the first, leaving the spill to be read again.
    pub fn read(&mut self) -> io::Result<impl Iterator<Item = io::Result<Item>> + '_> {
        self.file.flush()?;
        let file = self.file.get_mut();
        file.rewind()?;
        Ok(parsed(BufReader::new(&*file)))
    }

    /// The items, from the first.
    pub fn items(self) -> io::Result<impl Iterator<Item = io::Result<Item>>> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(parsed(BufReader::new(file)))
    }
}

/// The items of a spill's lines.
fn parsed(lines: impl BufRead) -> impl Iterator<Item = io::Result<Item>> {
    lines
        .lines()
        .map(|line| serde_json::from_str(&line?).map_err(io::Error::other))
}

/// The error of a spill that cannot be written or read back.
pub fn failed(e: io::Error) -> crate::error::Error {
    crate::error::Error::io("writing", "the record of the tree (a temporary file)", e)
}

/// The entry-list digest and the counts (files, folders, bytes of files)
/// of items added in order.
#[derive(Default)]
pub struct Tally {
    digest: Digest,
    counts: (u64, u64, u64),
}

impl Tally {
    /// Adds the next item.
    pub fn add(&mut self, item: &Item) {
        self.digest.update(&item.entry());
        let (files, folders, bytes) = &mut self.counts;
        match item.kind {
            EntryKind::File => {
                *files += 1;
                *bytes = bytes.saturating_add(item.size);
            }
            EntryKind::Folder => *folders += 1,
        }
    }

    /// The digest (lowercase hex) and the counts.
    pub fn finish(self) -> (String, (u64, u64, u64)) {
        (self.digest.finish(), self.counts)
    }
}

/// A recorded tree in tree order, counted and digested, still in a
/// temporary file: what [`Recorded::save`] writes as a state.
pub struct Recorded {
    file: File,
    /// The entry-list digest of the tree, in tree order.
    pub tree_sha256: String,
    /// Files, folders and bytes of files.
    pub counts: (u64, u64, u64),
}

impl Recorded {
    /// The items of `spills` together, in tree order.
    pub fn merge(spills: Vec<Spill>) -> io::Result<Recorded> {
        let mut out = Out::new()?;
        if spills.iter().all(|s| s.in_order) {
            let mut streams: Vec<_> = spills
                .into_iter()
                .map(|s| s.items().map(Iterator::peekable))
                .collect::<io::Result<_>>()?;
            loop {
                // The stream whose next item comes first (or fails).
                let mut first: Option<(usize, String)> = None;
                for (i, s) in streams.iter_mut().enumerate() {
                    let path = match s.peek() {
                        None => continue,
                        Some(Err(_)) => {
                            first = Some((i, String::new()));
                            break;
                        }
                        Some(Ok(item)) => &item.path,
                    };
                    if first
                        .as_ref()
                        .is_none_or(|(_, p)| tree_order(path, p).is_lt())
                    {
                        first = Some((i, path.clone()));
                    }
                }
                let Some((i, _)) = first else { break };
                if let Some(item) = streams[i].next() {
                    out.push(&item?)?;
                }
            }
        } else {
            let mut all = Vec::new();
            for s in spills {
                for item in s.items()? {
                    all.push(item?);
                }
            }
            all.sort_by(|a, b| tree_order(&a.path, &b.path));
            for item in &all {
                out.push(item)?;
            }
        }
        out.finish()
    }

    /// Writes the state of the tree as the result of `head`'s bundle
    /// (its `tree_sha256` is this tree's) to `path`, replacing what is
    /// there, durably.
    pub fn save(mut self, mut head: Head, path: &Path) -> Result<()> {
        head.tree_sha256 = self.tree_sha256.clone();
        durable::ensure_parent(path)?;
        let mut pending = PendingFile::create(path, 0o600)?;
        let temp = pending.temp_path();
        {
            let mut w = BufWriter::new(pending.file());
            serde_json::to_writer(&mut w, &head)
                .map_err(io::Error::other)
                .doing("writing", &temp)?;
            w.write_all(b"\n").doing("writing", &temp)?;
            self.file
                .rewind()
                .doing("reading", "the recorded tree (a temporary file)")?;
            io::copy(&mut &self.file, &mut w).doing("writing", &temp)?;
            w.flush().doing("writing", &temp)?;
        }
        pending.sync()?.replace()
    }
}

/// The merged items on their way into a temporary file, counted and
/// digested.
struct Out {
    file: BufWriter<File>,
    tally: Tally,
}

impl Out {
    fn new() -> io::Result<Out> {
        Ok(Out {
            file: BufWriter::with_capacity(256 << 10, tempfile::tempfile()?),
            tally: Tally::default(),
        })
    }

    fn push(&mut self, item: &Item) -> io::Result<()> {
        self.tally.add(item);
        serde_json::to_writer(&mut self.file, item).map_err(io::Error::other)?;
        self.file.write_all(b"\n")
    }

    fn finish(self) -> io::Result<Recorded> {
        let (tree_sha256, counts) = self.tally.finish();
        Ok(Recorded {
            file: self.file.into_inner().map_err(|e| e.into_error())?,
            tree_sha256,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::state::Stamp;

    fn item(path: &str) -> Item {
        Item {
            path: path.into(),
            kind: EntryKind::File,
            size: 1,
            sha256: Some("ab".repeat(32)),
            executable: false,
            stamp: Stamp::default(),
        }
    }

    #[test]
    fn two_spills_merge_into_tree_order_and_so_do_unordered_ones() {
        let spill = |paths: &[&str]| {
            let mut s = Spill::new().expect("spill");
            paths.iter().for_each(|p| s.push(&item(p)).expect("push"));
            s
        };
        let want = ["a", "a/b", "a/c", "b", "c"];
        let mut tally = Tally::default();
        want.map(item).iter().for_each(|i| tally.add(i));
        let expect = tally.finish().0;
        let merged = Recorded::merge(vec![spill(&["a", "a/c", "c"]), spill(&["a/b", "b"])]);
        assert_eq!(merged.expect("merge").tree_sha256, expect);
        let sorted = Recorded::merge(vec![spill(&["c", "a/b", "a"]), spill(&["b", "a/c"])]);
        let sorted = sorted.expect("merge");
        assert_eq!(
            (sorted.tree_sha256.clone(), sorted.counts),
            (expect, (5, 0, 5))
        );
        let head = Head::of(&"0".repeat(32), &"1".repeat(64));
        let dir = tempfile::tempdir().expect("temp");
        sorted
            .save(head, &dir.path().join("s.jsonl"))
            .expect("save");
        let mut back = crate::delta::state::Reader::open(&dir.path().join("s.jsonl"))
            .expect("open")
            .expect("some");
        let mut paths = Vec::new();
        while let Some(i) = back.next_item().expect("item") {
            paths.push(i.path);
        }
        assert_eq!(paths, want);
    }
}
