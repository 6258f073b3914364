//! Unit tests' scratch space: a fresh folder that is removed when the test
//! ends, and a path in it.

use std::path::PathBuf;

use tempfile::TempDir;

/// A fresh folder and `NAME` in it, written with `contents` when given.
/// Keep the folder alive as long as the path is used.
pub(crate) fn file(name: &str, contents: Option<&[u8]>) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let path = dir.path().join(name);
    if let Some(bytes) = contents {
        std::fs::write(&path, bytes).expect("a scratch file");
    }
    (dir, path)
}

/// A fresh folder holding `case/` with these files (their folders made too).
pub(crate) fn tree(files: &[(&str, &str)]) -> (TempDir, PathBuf) {
    let (dir, case) = file("case", None);
    std::fs::create_dir(&case).expect("a scratch tree");
    for (name, text) in files {
        let path = case.join(name);
        std::fs::create_dir_all(path.parent().expect("in the tree")).expect("a scratch folder");
        std::fs::write(path, text).expect("a scratch file");
    }
    (dir, case)
}
