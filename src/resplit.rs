//! Re-cutting an existing bundle for another medium, without re-encrypting.
//!
//! The payload's bytes are copied unchanged into new parts (or one file);
//! every old part is checked while it is read, and the whole payload's
//! sha256 must still match the signed manifest before anything is
//! committed. The manifest and its signature are copied byte for byte: the
//! bundle keeps its manifest's sha256, which the ledger, receipts and the
//! next bundle of its channel name, so custody is not broken by a re-cut.
//! The new cut is described by a parts list, `NAME.parts.toml`, signed with
//! the clerk's key (see [`crate::format::parts_list`]); a cut that is the
//! manifest's own needs none.

use std::io;
use std::path::{Path, PathBuf};

use crate::bundle::{self, Bundle, Trust};
use crate::disk::durable::{self, PendingFile, SyncedFile};
use crate::disk::media::{self, PartWriter};
use crate::error::{Error, IoContext, Result};
use crate::format::parts_list::{self, PartsList};
use crate::pack::PackReport;
use crate::payload::hashing::sha256_hex;
use crate::signature::{self, SigningKey};

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
    /// Write PAR2 recovery files of this many percent over the new parts.
    pub parity: Option<u32>,
}

/// Re-cuts a bundle; see the module docs.
pub fn resplit(opts: &ResplitOptions, key: &SigningKey) -> Result<PackReport> {
    let bundle = bundle::open(&opts.manifest, &opts.trust)?.with_parts_from(&opts.parts_from);
    let m = &bundle.manifest;
    let manifest_path = opts.out_dir.join(format!("{}.toml", m.name));
    if !opts.out_dir.is_dir() {
        return Err(Error::Refused(format!(
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
    let room = m.payload.size + (1 << 20);
    crate::disk::space::ensure_room(&opts.out_dir, room, "the re-cut bundle")?;
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
    let parts = media::parts_of(&m.name, &written);
    let (extra, parity) = match opts.parity {
        Some(pct) => crate::parity::create_over(&opts.out_dir, &m.name, &written, pct)
            .map(|(w, p)| (w, Some(p)))?,
        None => (Vec::new(), None),
    };
    let parity_count = extra.len();
    let mut files: Vec<(SyncedFile, String)> = (written.into_iter().chain(extra))
        .map(|w| (w.file, w.sha256))
        .collect();
    // A cut other than the manifest's own is described by a parts list,
    // and so is parity made for a cut.
    if parts != m.payload.parts || parity.is_some() {
        let list = PartsList {
            format_version: 1,
            kind: "parts".into(),
            bundle_id: m.bundle_id.clone(),
            name: m.name.clone(),
            manifest_sha256: bundle.manifest_sha256.clone(),
            recut: crate::format::manifest::format_time(time::OffsetDateTime::now_utc()),
            signer_key_id: key.key_id.clone(),
            parts: parts.clone(),
            parity,
        };
        let text = list
            .to_toml()
            .map_err(|e| Error::Internal(format!("cannot serialise the parts list: {e}")))?;
        let sig = key.sign_with_comment(
            text.as_bytes(),
            &parts_list::comment(&list),
            &format!("pouch parts list of {}", m.name),
        )?;
        let path = crate::cut::list_path(&manifest_path, &m.name);
        files.push(pending(&path, text.as_bytes())?);
        files.push(pending(&signature::signature_path(&path), sig.as_bytes())?);
    }
    // The manifest and its signature last: a bundle is whole once its
    // manifest's signature is there.
    files.extend(copy_signed_manifest(&bundle, &manifest_path, &opts.trust)?);
    crate::interrupt::check()?;
    let (files, hashes): (Vec<_>, Vec<_>) = files.into_iter().unzip();
    let paths = durable::commit_all(files)?;
    let verified_after_write = opts
        .verify_after_write
        .unwrap_or_else(|| media::is_removable(&opts.out_dir));
    if verified_after_write {
        crate::pack::read_back_all(&paths, &hashes)?;
    }
    let mut paths = paths.into_iter();
    let payload_files = paths.by_ref().take(parts.len().max(1)).collect();
    let parity_files = paths.take(parity_count).collect();
    let mut shown = m.clone();
    shown.payload.parts = parts;
    Ok(PackReport {
        manifest_sha256: bundle.manifest_sha256.clone(),
        signature_path: signature::signature_path(&manifest_path),
        manifest_path,
        payload_files,
        parity_files,
        manifest: shown,
        skipped: Vec::new(),
        auto_split: false,
        verified_after_write,
    })
}

/// `bytes` written and synced under a temporary name, to become `path`,
/// with their sha256 for the read-back.
fn pending(path: &Path, bytes: &[u8]) -> Result<(SyncedFile, String)> {
    let mut f = PendingFile::create(path, 0o644)?;
    f.write_all(bytes)?;
    Ok((f.sync()?, sha256_hex(bytes)))
}

/// Copies the bundle's manifest and signature to `to` and its signature
/// path, byte for byte, under temporary names. The copy must hash as the
/// manifest that was verified, and the signature copied must verify it
/// (either could have been swapped on the medium since).
fn copy_signed_manifest(
    bundle: &Bundle,
    to: &Path,
    trust: &Trust,
) -> Result<Vec<(SyncedFile, String)>> {
    let from = &bundle.manifest_path;
    let mut copy = PendingFile::create(to, 0o644)?;
    let temp = copy.temp_path();
    let mut reader = crate::payload::hashing::HashingReader::new(durable::open_regular(from)?);
    io::copy(&mut reader, copy.file()).doing("copying", from)?;
    let (_, sha) = reader.drain_and_finish().doing("reading", from)?;
    if sha != bundle.manifest_sha256 {
        return Err(Error::BadManifest {
            path: from.clone(),
            reason: "it changed while it was re-cut; run resplit again".into(),
        });
    }
    let sig_from = signature::signature_path(from);
    let sig = signature::read_signature(&sig_from)?;
    if let Trust::Keys(keys) = trust {
        let mut written = std::fs::File::open(&temp).doing("reading", &temp)?;
        signature::verify_stream(&mut written, &sig, &sig_from, keys)?;
    }
    let manifest = (copy.sync()?, sha);
    let signature = pending(&signature::signature_path(to), sig.as_bytes())?;
    Ok(vec![manifest, signature])
}
