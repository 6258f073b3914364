//! Sealing: signing the manifest and committing the payload files, the
//! manifest and its signature all or nothing, then reading them back from
//! the device when asked.
//!
//! The read-back is shared with [`crate::resplit`], which copies a
//! bundle's signed manifest rather than signing one.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::disk::durable::{self, PendingFile};
use crate::disk::media;
use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::signature::{self, SigningKey};

/// What [`seal`] committed.
pub(crate) struct Sealed {
    /// The payload file or its parts, in order.
    pub payload_files: Vec<PathBuf>,
    /// sha256 of the manifest file.
    pub manifest_sha256: String,
    /// Whether every file was read back from the device and matched.
    pub verified_after_write: bool,
}

/// Signs `m` (followed by the `[[entries]]` tables read from `entries`) and commits the payload files, the manifest and the signature,
/// in that order, all or nothing; then, if asked (or, by default, when
/// `out_dir` is on removable media), reads every file back from the device.
///
/// `before_commit` runs when every file is on disk under its temporary
/// name, with the manifest's sha256: the last moment to stop (an
/// interruption) or to record an intent. When it fails, nothing is
/// committed.
pub(crate) fn seal(
    (m, entries): (&Manifest, &mut dyn Read),
    key: &SigningKey,
    payload: Vec<media::Written>,
    manifest_path: &Path,
    out_dir: &Path,
    verify_after_write: Option<bool>,
    before_commit: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Sealed> {
    // The entry list was checked name by name as it was listed (or read).
    m.validate_fields()
        .map_err(|r| Error::Internal(format!("the manifest pouch made is invalid: {r}")))?;
    let mut files = Vec::new();
    let mut hashes = Vec::new();
    for w in payload {
        files.push(w.file);
        hashes.push(w.sha256);
    }
    // The manifest is written as it is signed, in one pass over its text
    // and the entry tables that follow it (kept on disk by pack).
    let head = m.to_toml();
    let mut text = PendingFile::create(manifest_path, 0o644)?;
    let temp_path = text.temp_path();
    let mut tee = Tee {
        from: head.as_bytes().chain(entries),
        to: BufWriter::with_capacity(256 * 1024, text.file()),
        sha256: Sha256::new(),
        failed: None,
    };
    let signed = key.sign_manifest(&mut tee, &m.bundle_id, &m.name);
    let write_err = |e: std::io::Error| Error::io("writing", &temp_path, e);
    if let Some(e) = tee.failed.take() {
        return Err(write_err(e));
    }
    let sig = signed?;
    tee.to.flush().map_err(write_err)?;
    let manifest_sha256 = hex::encode(tee.sha256.clone().finalize());
    drop(tee);
    files.push(text.sync()?);
    hashes.push(manifest_sha256.clone());
    let sig_path = signature::signature_path(manifest_path);
    let mut f = PendingFile::create(&sig_path, 0o644)?;
    f.write_all(sig.as_bytes())?;
    files.push(f.sync()?);
    hashes.push(crate::payload::hashing::sha256_hex(sig.as_bytes()));
    // A flush can take long on a real stick: an interruption during it is
    // honoured here, with nothing committed.
    crate::interrupt::check()?;
    before_commit(&manifest_sha256)?;
    // Everything is on disk under temporary names; now the renames, in
    // order, undoing the earlier ones if a later one fails.
    let paths = durable::commit_all(files)?;
    let verified_after_write = verify_after_write.unwrap_or_else(|| media::is_removable(out_dir));
    if verified_after_write {
        read_back_all(&paths, &hashes)?;
    }
    let payload_count = paths.len() - 2;
    Ok(Sealed {
        payload_files: paths.into_iter().take(payload_count).collect(),
        manifest_sha256,
        verified_after_write,
    })
}

/// Reads each of `paths` back from its device: each must hash as the
/// matching one of `hashes`, what was written.
pub(crate) fn read_back_all(paths: &[PathBuf], hashes: &[String]) -> Result<()> {
    for (path, want) in paths.iter().zip(hashes) {
        let got = media::read_back(path)?;
        if &got != want {
            return Err(Error::MediaFault {
                path: path.clone(),
                reason: format!("reads back with sha256 {got}, but {want} was written"),
            });
        }
    }
    Ok(())
}

/// Reads `from` for the signer, writing what it reads to `to` and hashing
/// it on the way; a failure to write is kept apart from the signer's own.
struct Tee<R: Read, W: Write> {
    from: R,
    to: W,
    sha256: Sha256,
    failed: Option<std::io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buf)?;
        if let Err(e) = self.to.write_all(&buf[..n]) {
            let shown = std::io::Error::new(e.kind(), e.to_string());
            self.failed = Some(e);
            return Err(shown);
        }
        self.sha256.update(&buf[..n]);
        Ok(n)
    }
}
