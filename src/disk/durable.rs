//! Durable writes: a file appears under its final name only when its content
//! is complete and on disk.
//!
//! The recipe is the one careful backup tools use: write to a temporary name in
//! the same folder, flush, fsync the file, rename it to the final name without
//! replacing anything that exists, then fsync the folder so the rename itself
//! survives a crash.

use std::fs::{self, File, Permissions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::strict_toml;

/// A file being written under a temporary name.
pub struct PendingFile {
    temp: tempfile::NamedTempFile,
    final_path: PathBuf,
    mode: u32,
}

impl PendingFile {
    /// Creates a temporary file in the folder of `final_path`, to become
    /// `final_path` with permissions `mode` once synced ([`PendingFile::sync`]) and committed ([`SyncedFile::commit`]).
    pub fn create(final_path: &Path, mode: u32) -> Result<PendingFile> {
        let dir = parent_of(final_path);
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .doing("creating a temporary file in", dir)?;
        Ok(PendingFile {
            temp,
            final_path: final_path.to_path_buf(),
            mode,
        })
    }

    /// Where the file is being written, for errors.
    pub fn temp_path(&self) -> PathBuf {
        self.temp.path().to_path_buf()
    }

    /// The open temporary file, for writing.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Writes all of `bytes` to the file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.temp.path().to_path_buf();
        let mut w = BufWriter::new(self.temp.as_file_mut());
        w.write_all(bytes).doing("writing", &path)?;
        w.flush().doing("writing", &path)
    }

    /// Sets the permissions, fsyncs the content and closes the file; after
    /// this only the rename remains.
    pub fn sync(mut self) -> Result<SyncedFile> {
        let path = self.temp.path().to_path_buf();
        let file = self.temp.as_file_mut();
        set_mode(file, self.mode).doing("setting permissions of", &path)?;
        file.sync_all().doing("syncing", &path)?;
        Ok(SyncedFile {
            temp: self.temp.into_temp_path(),
            final_path: self.final_path,
        })
    }
}

/// A complete, fsynced and closed file under its temporary name. Dropped
/// without [`SyncedFile::commit`], the temporary file is removed.
pub struct SyncedFile {
    temp: tempfile::TempPath,
    final_path: PathBuf,
}

impl SyncedFile {
    /// Where the file is now, under its temporary name.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The file name it will be committed under.
    pub fn final_name(&self) -> String {
        let name = self.final_path.file_name().unwrap_or_default();
        name.to_string_lossy().into_owned()
    }

    /// Makes the file be committed under `final_path` instead.
    pub fn retarget(&mut self, final_path: PathBuf) {
        self.final_path = final_path;
    }

    /// Renames to the final name, refusing to replace an existing file, and
    /// fsyncs the folder.
    pub fn commit(self) -> Result<PathBuf> {
        let final_path = self.rename()?;
        sync_dir(parent_of(&final_path))?;
        Ok(final_path)
    }

    /// Renames to the final name (refusing to replace), without the folder fsync.
    fn rename(self) -> Result<PathBuf> {
        let final_path = self.final_path.clone();
        rename_noreplace(&self.temp, &final_path)?;
        // The temporary name is gone now; nothing is left to delete.
        let _ = self.temp.keep();
        Ok(final_path)
    }

    /// Renames to the final name, replacing what is there (for files pouch
    /// owns and rewrites whole, such as the keyring), and fsyncs the folder.
    pub fn replace(self) -> Result<()> {
        let final_path = self.final_path.clone();
        self.temp
            .persist(&final_path)
            .map_err(|e| Error::io("renaming into", &final_path, e.error))?;
        sync_dir(parent_of(&final_path))
    }
}

/// Commits files in order; if one fails, removes the ones already committed
/// so that no partial set is left under final names.
///
/// The renames follow each other directly (one folder fsync after the last),
/// so the window in which a crash leaves only the first files under final
/// names is microseconds wide. POSIX has no way to rename several files at
/// once; what is guaranteed is the order: when the last file (a bundle's
/// signature) exists, so do all the others, and fewer files never verify.
pub fn commit_all(files: Vec<SyncedFile>) -> Result<Vec<PathBuf>> {
    let mut committed: Vec<PathBuf> = Vec::new();
    for f in files {
        match f.rename() {
            Ok(p) => committed.push(p),
            Err(e) => {
                for p in &committed {
                    let _ = fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    let dirs: std::collections::BTreeSet<&Path> = committed.iter().map(|p| parent_of(p)).collect();
    for dir in dirs {
        if let Err(e) = sync_dir(dir) {
            // The renames may not survive a crash: take them back, so that
            // what the caller reports (a failure) is what is on disk.
            for p in &committed {
                let _ = fs::remove_file(p);
            }
            let _ = sync_dir(dir);
            return Err(e);
        }
    }
    Ok(committed)
}

/// Writes a small file durably: temporary name, fsync, rename without
/// replacing, fsync of the folder.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let mut f = PendingFile::create(path, mode)?;
    f.write_all(bytes)?;
    f.sync()?.commit()
}

/// Sets permission bits, tolerating filesystems that have none (FAT, exFAT
/// and some FUSE filesystems answer "not implemented" or "not permitted").
pub fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    match file.set_permissions(Permissions::from_mode(mode)) {
        Err(e)
            if e.raw_os_error() == Some(rustix::io::Errno::NOSYS.raw_os_error())
                || e.kind() == std::io::ErrorKind::PermissionDenied
                || e.kind() == std::io::ErrorKind::Unsupported =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Renames `from` to `to` unless `to` exists. Where the filesystem cannot
/// do that atomically (some FUSE and network filesystems), checks first and
/// then renames: the window is tiny and the folder is the clerk's own.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    use rustix::io::Errno;
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(Error::Exists {
            path: to.to_path_buf(),
        }),
        Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::OPNOTSUPP) => {
            ensure_absent(to)?;
            fs::rename(from, to).doing("renaming", to)
        }
        Err(e) => Err(Error::io("renaming", to, e.into())),
    }
}

/// fsyncs a folder, so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .doing("syncing", dir)
}

/// Opens a file for reading without ever blocking, and only if it is a
/// regular file: a FIFO, a device or a socket in its place (a symlink to one
/// too) is refused before anything is read, so hostile media cannot hang
/// pouch. Every file read from the medium is opened here.
pub fn open_regular(path: &Path) -> Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .doing("opening", path)?;
    let kind = file
        .metadata()
        .doing("reading the metadata of", path)?
        .file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a folder"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            what,
        });
    }
    // Files of the kernel's own filesystems look regular but may block on
    // read (/proc/kmsg) or never end: a medium has no business there.
    const PSEUDO: [u64; 6] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0x6367_7270, // cgroup2
    ];
    if rustix::fs::fstatfs(&file).is_ok_and(|s| PSEUDO.contains(&(s.f_type as u64))) {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            what: "a file of the kernel's own filesystems",
        });
    }
    // A regular file never blocks; reads go on in the ordinary mode.
    rustix::fs::fcntl_setfl(&file, OFlags::empty())
        .map_err(|e| Error::io("opening", path, e.into()))?;
    Ok(file)
}

/// Reads a whole file if it holds at most `max` bytes; `Ok(None)` if it is
/// larger (only `max + 1` bytes are ever read). Callers say what "too
/// large" means for their kind of file.
pub fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .doing("reading", path)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Reads and parses a TOML file of at most `max` bytes through
/// [`strict_toml`]; `Ok(None)` when there is no such file. Problems with
/// the content go through `bad`, which names the file and what it is.
pub fn read_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    max: u64,
    bad: impl Fn(String) -> Error,
) -> Result<Option<T>> {
    let bytes = match read_capped(path, max) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(bad(strict_toml::too_large(max))),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    strict_toml::parse(&bytes, max).map(Some).map_err(bad)
}

/// Creates the folder holding `file` (mode 0700) if it is missing.
pub fn ensure_parent(file: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = parent_of(file);
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("creating", dir, e))
}

/// The folder a path is in (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fails with [`Error::Exists`] if `path` exists (as anything, even a
/// dangling symlink).
pub fn ensure_absent(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(Error::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("checking", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_refuses_to_replace() {
        let (dir, p) = crate::scratch::file("f", None);
        write_new(&p, b"one", 0o644).expect("first write");
        assert!(matches!(
            write_new(&p, b"two", 0o644),
            Err(Error::Exists { .. })
        ));
        assert_eq!(fs::read(&p).expect("read"), b"one");
        let leftovers = fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(leftovers, 1, "the temporary file is removed");
        let mode = fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}
