//! The entry list of a pack, kept on disk as it grows.
//!
//! Both manifests end with the list of every entry (the outer one unless
//! the names are sealed), and it is known only once the last file is
//! packed. A million files make about 150 MB of it, so it is not kept in
//! memory: each entry is written once, as the `[[entries]]` table both
//! manifests hold, to an unnamed temporary file, with its counts and digest
//! kept on the way; both manifests then copy it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};

use crate::format::entries;
use crate::format::manifest::{Entry, EntryKind};

/// The entries packed so far, as `[[entries]]` tables in a temporary file.
pub(crate) struct Listed {
    file: BufWriter<File>,
    len: u64,
    digest: entries::Digest,
    scratch: String,
    /// Files, folders and bytes in files.
    pub(crate) counts: (u64, u64, u64),
    /// The entries with their stat data, when the tree is to be recorded
    /// (see [`crate::delta::state`]).
    pub(crate) items: Option<crate::delta::spill::Spill>,
}

impl Listed {
    /// An empty list, in an unnamed file of the system's temporary folder
    /// (gone when pouch exits, however it exits).
    pub(crate) fn new() -> io::Result<Listed> {
        Ok(Listed {
            file: BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?),
            len: 0,
            digest: entries::Digest::default(),
            scratch: String::with_capacity(256),
            counts: (0, 0, 0),
            items: None,
        })
    }

    /// Adds the next entry.
    pub(crate) fn push(&mut self, e: &Entry) -> io::Result<()> {
        self.scratch.clear();
        entries::write(&mut self.scratch, e);
        self.file.write_all(self.scratch.as_bytes())?;
        self.len += self.scratch.len() as u64;
        self.digest.update(e);
        let (files, folders, bytes) = &mut self.counts;
        match e.kind {
            EntryKind::File => {
                *files += 1;
                *bytes = bytes.saturating_add(e.file_size());
            }
            EntryKind::Folder => *folders += 1,
        }
        Ok(())
    }

    /// Bytes of the tables.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The tables, from the first; may be read more than once.
    pub(crate) fn tables(&mut self) -> io::Result<impl Read + '_> {
        self.file.flush()?;
        let file = self.file.get_mut();
        file.rewind()?;
        Ok(io::Read::take(file, self.len))
    }

    /// The digest of the list (see [`crate::format::manifest::entries_digest`]).
    pub(crate) fn digest(&self) -> String {
        self.digest.clone().finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_counts_and_digest_are_those_of_the_list() {
        let list = [
            Entry::folder("a".into()),
            Entry::file("a/b".into(), 3, "cd".repeat(32), false),
            Entry::file("a/c\"d".into(), 5, "ef".repeat(32), true),
        ];
        let mut listed = Listed::new().expect("temporary file");
        list.iter().for_each(|e| listed.push(e).expect("push"));
        let m = crate::format::manifest::InnerManifest {
            format_version: 1,
            entries: list.to_vec(),
        };
        for _ in 0..2 {
            let mut text = crate::format::manifest::InnerManifest::head();
            listed.tables().unwrap().read_to_string(&mut text).unwrap();
            assert_eq!(text, m.to_toml());
        }
        assert_eq!(listed.counts, (2, 1, 8));
        assert_eq!(
            listed.digest(),
            crate::format::manifest::entries_digest(&list)
        );
    }
}
