//! Locks that serialise the commands writing pouch's state (the ledger, the
//! keyring, a folder being packed or unpacked into), with a one-line notice
//! when one has to wait for another.
//!
//! All are `flock` locks: the kernel drops them when the holder exits, even
//! on SIGKILL, so a crash never leaves a lock behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, IoContext, Result};

/// Takes an exclusive lock on `file` (which is `path`), saying so when
/// another pouch command holds it and this one has to wait.
pub fn exclusive(file: &File, path: &Path) -> Result<()> {
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            crate::notice::notice(&format!(
                "waiting for another pouch command that is using {}",
                path.display()
            ));
            flock(file, FlockOperation::LockExclusive)
                .map_err(|e| Error::io("locking", path, e.into()))
        }
        Err(e) => Err(Error::io("locking", path, e.into())),
    }
}

/// An exclusive lock on a state file that is replaced whole (the keyring),
/// held on a companion `NAME.lock` beside it: the file itself changes inode
/// at each update, its lock file does not.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks `path` (whose folder exists) for an update; waits (with a
    /// notice) for another holder.
    pub fn take(path: &Path) -> Result<StateLock> {
        let lock_path = lock_path(path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .doing("opening", &lock_path)?;
        exclusive(&file, path)?;
        Ok(StateLock { _file: file })
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// A folder that a pack or an unpack writes into, held shared for as long as
/// the command's temporary files or staging folder may be there.
pub struct FolderLock {
    _dir: File,
}

impl FolderLock {
    /// Locks `dir` shared. When no other pouch command holds it, `clean`
    /// runs first, under an exclusive lock: only then may what an
    /// interrupted run left there be removed, for nothing there belongs to a
    /// live run.
    pub fn take(dir: &Path, clean: impl FnOnce() -> Result<()>) -> Result<FolderLock> {
        let file = File::open(dir).doing("opening", dir)?;
        let locking = |e: rustix::io::Errno| Error::io("locking", dir, e.into());
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                clean()?;
                flock(&file, FlockOperation::LockShared).map_err(locking)?;
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                flock(&file, FlockOperation::LockShared).map_err(locking)?;
            }
            // A filesystem without locks: nothing is cleaned up.
            Err(_) => {}
        }
        Ok(FolderLock { _dir: file })
    }
}
