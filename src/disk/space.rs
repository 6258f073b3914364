//! Free space, checked before writing: a command that cannot fit what it
//! writes says so before any work, with how much it needs and how much is
//! free, rather than failing (cleanly, but late) when the disk fills.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes free for an unprivileged writer on the filesystem holding `dir`
/// (or, when `dir` does not exist yet, its nearest existing parent); `None`
/// when the system cannot tell (some FUSE filesystems, fusefat among them,
/// report no blocks at all).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(existing(dir)?).ok()?;
    // A read-only filesystem says so itself when written to, more clearly.
    let read_only = st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY);
    (st.f_blocks > 0 && !read_only).then(|| st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes in use on the filesystem holding `path`: an upper bound, known
/// without listing it, of what any folder on it holds.
pub fn used_bytes(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(existing(path)?).ok()?;
    Some(
        st.f_blocks
            .saturating_sub(st.f_bfree)
            .saturating_mul(st.f_frsize),
    )
}

/// `path`, or its nearest parent that exists.
fn existing(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .or_else(|| path.is_relative().then_some(Path::new(".")))
}

/// Refuses when `dir`'s filesystem has less than `needed` bytes free for
/// `what` (`"the bundle"`, `"the unpacked files"`, …). A filesystem that
/// cannot say is given the benefit of the doubt.
pub fn ensure_room(dir: &Path, needed: u64, what: &'static str) -> Result<()> {
    match free_bytes(dir) {
        Some(free) if free < needed => Err(Error::NoSpace {
            path: dir.to_path_buf(),
            what,
            needed,
            free,
        }),
        _ => Ok(()),
    }
}

/// The most bytes a payload of `entries` entries holding `total` bytes can
/// take, its files incompressible: tar headers, zstd's frames and age's
/// tags on top of the data.
pub fn payload_bound(total: u64, entries: u64) -> u64 {
    total + entries * 1536 + 64 * 1024 + total / 4096
}

/// An upper bound of what `sources` hold, known without listing them: a
/// file's size, and for a folder the bytes in use on its filesystem.
/// `None` when one cannot be read (pack will say so).
pub fn sources_bound(sources: &[PathBuf]) -> Option<u64> {
    let mut sum: u64 = 0;
    for s in sources {
        let meta = std::fs::metadata(s).ok()?;
        let bound = match meta.is_dir() {
            true => used_bytes(s)?,
            false => meta.len(),
        };
        sum = sum.saturating_add(bound);
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_measured_on_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().expect("temp");
        let here = free_bytes(dir.path()).expect("free space");
        let below = free_bytes(&dir.path().join("not/yet/made")).expect("free space");
        // Other writers may change it in between; the same filesystem it is.
        assert!(here.abs_diff(below) < 64 << 20, "{here} vs {below}");
        assert!(ensure_room(dir.path(), 1, "a byte").is_ok());
        let err = ensure_room(dir.path(), u64::MAX, "everything").expect_err("no room");
        assert!(err.to_string().contains("needs"), "{err}");
    }
}
