//! A folder kept open while its entries are used one after another, so that
//! each is reached relative to it: the kernel then does not walk the whole
//! path again for every entry, which is much of the system time of listing
//! and reading a tree of small files.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The folder last asked for, open (`O_PATH`: a handle for lookups only).
#[derive(Default)]
pub struct OpenFolder(Option<(PathBuf, OwnedFd)>);

/// Where an entry lies: its folder, open, the entry's name in it, and
/// whether the folder was opened just now for it.
pub struct At<'f, 'p> {
    /// The folder, open.
    pub dir: BorrowedFd<'f>,
    /// The entry's name in it.
    pub name: &'p OsStr,
    /// Opened for this entry rather than kept from the one before: the
    /// moment to check that it is the folder that was listed, not a link
    /// put in its place.
    pub fresh: bool,
}

impl OpenFolder {
    /// The open folder that holds `path`, and the name of `path` in it;
    /// `None` when `path` has no parent or no name (`/`, `.`, `..`), to be
    /// used as it is. The folder is opened by its path, following links in
    /// it as a lookup of the whole path would (see [`At::fresh`]).
    pub fn of<'p>(&mut self, path: &'p Path) -> std::io::Result<Option<At<'_, 'p>>> {
        use rustix::fs::{Mode, OFlags};
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        let parent = match parent.as_os_str().is_empty() {
            true => Path::new("."),
            false => parent,
        };
        let fresh = self.0.as_ref().is_none_or(|(open, _)| open != parent);
        if fresh {
            self.0 = None;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(parent, flags, Mode::empty())?;
            self.0 = Some((parent.to_path_buf(), fd));
        }
        Ok(self.0.as_ref().map(|(_, fd)| At {
            dir: fd.as_fd(),
            name,
            fresh,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_relative_to_their_folder_and_the_folder_changes_with_them() {
        let dir = tempfile::tempdir().expect("temp");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::create_dir(&b).expect("mkdir");
        std::fs::write(a.join("x"), "in a").expect("write");
        std::fs::write(b.join("x"), "in b, longer").expect("write");
        let mut folder = OpenFolder::default();
        for (path, len, fresh) in [
            (a.join("x"), 4, true),
            (b.join("x"), 12, true),
            (b.join("x"), 12, false),
            (a.join("x"), 4, true),
        ] {
            let at = folder.of(&path).expect("open").expect("a parent");
            assert_eq!(at.fresh, fresh, "{}", path.display());
            let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
            let st = rustix::fs::statat(at.dir, at.name, flags).expect("stat");
            assert_eq!(st.st_size, len, "{}", path.display());
        }
        assert!(folder.of(Path::new("/")).expect("no error").is_none());
        assert!(folder.of(Path::new("..")).expect("no error").is_none());
        assert!(folder.of(&dir.path().join("missing/x")).is_err());
    }
}
