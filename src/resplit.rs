//! Re-cutting an existing bundle for another medium, without re-encrypting.
//!
//! The payload's bytes are copied unchanged into new parts (or one file);
//! every old part is checked against the signed manifest while it is read,
//! and the whole payload's sha256 must still match before anything is
//! committed. Because the part list is in the signed manifest, the manifest
//! is signed again with the clerk's key; everything else in it stays the same.

use std::io;
use std::path::PathBuf;

use crate::bundle::{self, Trust};
use crate::disk::media::{self, PartWriter};
use crate::error::{Error, IoContext, Result};
use crate::pack::{self, PackReport};
use crate::signature::SigningKey;

/// What to re-cut, and how.
#[derive(Clone)]
pub struct ResplitOptions {
    /// The bundle's manifest.
    pub manifest: PathBuf,
    /// Signature policy for the existing bundle.
    pub trust: Trust,
    /// More folders to look for the existing parts in.
    pub parts_from: Vec<PathBuf>,
    /// New part size; `None` joins the parts into one `NAME.age`.
    pub split: Option<u64>,
    /// Folder for the new bundle; must not hold the old one.
    pub out_dir: PathBuf,
    /// Read the new files back from the device after writing.
    pub verify_after_write: Option<bool>,
}

/// Re-cuts a bundle; see the module docs.
pub fn resplit(opts: &ResplitOptions, key: &SigningKey) -> Result<PackReport> {
    let bundle = bundle::open(&opts.manifest, &opts.trust)?.with_parts_from(&opts.parts_from);
    let m = &bundle.manifest;
    let manifest_path = opts.out_dir.join(format!("{}.toml", m.name));
    if !opts.out_dir.is_dir() {
        return Err(Error::Usage(format!(
            "output folder {} does not exist; create it first",
            opts.out_dir.display()
        )));
    }
    let _out = crate::disk::lock::FolderLock::take(&opts.out_dir, || {
        crate::disk::leftovers::clean(&opts.out_dir)?;
        // A re-cut killed while renaming its files into place: an unsigned
        // manifest is no bundle, nor are parts without one.
        let signed = crate::signature::signature_path(&manifest_path).exists();
        if !signed {
            let removed = crate::disk::leftovers::remove_uncommitted(&opts.out_dir, &m.name, true)?;
            if !removed.is_empty() {
                crate::notice::notice(&format!(
                    "removed what an interrupted re-cut left without its signature: {}",
                    removed.join(", ")
                ));
            }
        }
        Ok(())
    })?;
    crate::disk::durable::ensure_absent(&manifest_path)?;
    let mut source = bundle.open_payload()?;
    // The whole payload's digest comes from the reading side (checked
    // against the signed one below): the writer hashes each new part only.
    let mut writer = PartWriter::new(&opts.out_dir, &m.name, opts.split).parts_only();
    let copied = io::copy(&mut source, &mut writer);
    if let Err(e) = copied {
        return Err(match e.kind() {
            io::ErrorKind::InvalidData => Error::BadParts {
                problems: vec![e.to_string()],
            },
            _ => Error::io("copying", &bundle.payload_path, e),
        });
    }
    let (size, sha) = source.finish().doing("reading", &bundle.payload_path)?;
    if size != m.payload.size || sha != m.payload.sha256 {
        return Err(Error::PayloadMismatch {
            path: bundle.payload_path.clone(),
            what: "sha256",
            expected: m.payload.sha256.clone(),
            found: sha,
        });
    }
    let (written, _, _) = writer.finish()?;
    let mut new = m.clone();
    new.signer.key_id = key.key_id.clone();
    new.payload.parts = match opts.split {
        Some(_) => media::parts_of(&m.name, &written),
        None => Vec::new(),
    };
    let sealed = pack::seal(
        (&new, &mut std::io::empty()),
        key,
        written,
        &manifest_path,
        &opts.out_dir,
        opts.verify_after_write,
        &mut |_| Ok(()),
    )?;
    Ok(PackReport {
        manifest_sha256: sealed.manifest_sha256,
        signature_path: crate::signature::signature_path(&manifest_path),
        manifest_path,
        payload_files: sealed.payload_files,
        manifest: new,
        skipped: Vec::new(),
        auto_split: false,
        verified_after_write: sealed.verified_after_write,
    })
}
