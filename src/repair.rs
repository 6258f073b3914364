//! Repairing a damaged bundle from its PAR 2.0 recovery files, without
//! `par2`: the lost slices are restored by [`crate::parity::recover`], each
//! repaired file is checked against its signed sha256 while still under a
//! temporary name, and only then renamed into place (over the damaged file,
//! if one is there). The manifest is never rewritten: its sha256, the one
//! the ledgers and receipts know, stays the same.

use std::path::PathBuf;

use serde::Serialize;

use crate::bundle::Trust;
use crate::disk::durable;
use crate::error::{Error, Result};

/// What to repair.
#[derive(Clone)]
pub struct RepairOptions {
    /// The bundle's manifest.
    pub manifest: PathBuf,
    /// Signature policy.
    pub trust: Trust,
    /// More folders to look for parts (and PAR2 files) in.
    pub parts_from: Vec<PathBuf>,
    /// Where the repaired files go; by default the manifest's folder.
    pub out_dir: Option<PathBuf>,
}

/// What repair did.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    /// The manifest, unchanged.
    pub manifest_path: PathBuf,
    /// The files written, each now matching its signed sha256 (none when
    /// the payload was intact).
    pub repaired: Vec<PathBuf>,
    /// Slices restored.
    pub restored: u64,
    /// PAR2 files left out (missing, damaged or forged).
    pub ignored: Vec<String>,
}

/// Repairs a bundle; see the module docs.
pub fn repair(opts: &RepairOptions) -> Result<RepairReport> {
    let bundle =
        crate::bundle::open(&opts.manifest, &opts.trust)?.with_parts_from(&opts.parts_from);
    let report = |repaired, restored, ignored| RepairReport {
        manifest_path: bundle.manifest_path.clone(),
        repaired,
        restored,
        ignored,
    };
    let Some(parity) = bundle.parity() else {
        if bundle.check_payload().is_ok() {
            return Ok(report(Vec::new(), 0, Vec::new()));
        }
        return Err(Error::Refused(
            "this bundle has no PAR2 recovery files (pack --parity makes them); copy the damaged parts again from their medium".into(),
        ));
    };
    let out = match &opts.out_dir {
        Some(d) => d.clone(),
        None => durable::parent_of(&bundle.manifest_path).to_path_buf(),
    };
    let payload = bundle.payload_files();
    // The survey of the parts against the PAR2 set's slice checksums (MD5s
    // on every core) finds the damage; the payload's signed sha256, one
    // more pass on one core, is asked only when it finds none, or cannot
    // repair: then an intact payload is still "nothing to repair".
    let made = crate::parity::recover::recover(parity, &payload, &bundle.cut.search_dirs, &out);
    let made = match made {
        Ok(m) if !m.files.is_empty() => m,
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        _ if bundle.check_payload().is_ok() => return Ok(report(Vec::new(), 0, Vec::new())),
        Ok(m) => return Ok(report(Vec::new(), 0, m.ignored)),
        Err(e) => return Err(e),
    };
    crate::interrupt::check()?;
    let restored = made.files.iter().map(|f| f.restored).sum();
    let mut repaired = Vec::new();
    for f in made.files {
        let path = match f.replaces {
            true => {
                let mut file = f.file;
                let dest = out.join(file.final_name());
                file.retarget(dest.clone());
                file.replace()?;
                dest
            }
            false => f.file.commit()?,
        };
        repaired.push(path);
    }
    Ok(report(repaired, restored, made.ignored))
}
