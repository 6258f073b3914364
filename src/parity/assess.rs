//! How bad is the damage: with the bundle's PAR2 files, which of the
//! payload's slices are lost and whether the recovery slices that are
//! intact are enough to restore them.
//!
//! A PAR2 file is believed only when its size and sha256 match the signed
//! manifest; one that does not is left out (and named), the rest still
//! count. The slice checksums come from the first believed file (the index,
//! or a volume, which carries the same packets), read with the bounded
//! reader of [`crate::format::par2`].

use std::path::{Path, PathBuf};

use super::hashes::slice_sums_found;
use super::sha256_of;
use crate::disk::durable::open_regular;
use crate::error::{IoContext, Result};
use crate::format::par2::{self, Critical};
use crate::format::parity::{volumes, Parity, ParityFile};

/// What the PAR2 files say of a damaged payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Input slices over all payload files.
    pub total: u64,
    /// Input slices missing or damaged.
    pub lost: u64,
    /// Recovery slices in the PAR2 files that match the manifest.
    pub recovery: u64,
    /// PAR2 files left out, and why.
    pub ignored: Vec<String>,
}

impl Assessment {
    /// Whether the recovery slices at hand can restore every lost slice.
    pub fn repairable(&self) -> bool {
        self.lost <= self.recovery
    }
}

/// Assesses the payload files `payload` (name, size) against the PAR2
/// files `p` says (from a manifest or parts list whose signature was
/// checked), all looked for in `dirs` (the manifest's folder first);
/// `None` when no PAR2 file of it can be believed.
pub fn assess(
    p: &Parity,
    payload: &[(String, u64)],
    dirs: &[PathBuf],
) -> Result<Option<Assessment>> {
    let mut ignored = Vec::new();
    let mut believed = Vec::new();
    for f in &p.files {
        match find(dirs, &f.file) {
            None => ignored.push(format!("{}: missing", f.file)),
            Some(path) if matches(&path, f)? => believed.push(path),
            Some(_) => ignored.push(format!(
                "{}: does not match the manifest (damaged or forged), ignored for repair",
                f.file
            )),
        }
    }
    let counts = volumes(p.recovery_slices);
    let recovery = p.files[1..]
        .iter()
        .zip(&counts)
        .filter(|(f, _)| {
            !ignored
                .iter()
                .any(|i| i.starts_with(&format!("{}:", f.file)))
        })
        .map(|(_, c)| c.1)
        .sum();
    let Some(critical) = believed.iter().find_map(|path| critical(path)) else {
        return Ok(None);
    };
    if critical.slice_size != p.slice_size {
        return Ok(None);
    }
    let (mut total, mut lost) = (0, 0);
    for (name, &size) in payload.iter().map(|(n, s)| (n, s)) {
        let n = size.div_ceil(p.slice_size);
        total += n;
        let Some(want) = expected(&critical, name, size) else {
            return Ok(None);
        };
        let got = match find(dirs, name) {
            Some(path) => slice_sums_found(&path, p.slice_size)?.0,
            None => Vec::new(),
        };
        lost += (0..n as usize)
            .filter(|&k| got.get(k) != want.get(k))
            .count() as u64;
    }
    Ok(Some(Assessment {
        total,
        lost,
        recovery,
        ignored,
    }))
}

/// The slice checksums the PAR2 set gives for payload file `name` of `size`
/// bytes.
fn expected<'a>(c: &'a Critical, name: &str, size: u64) -> Option<&'a Vec<(par2::Hash, u32)>> {
    let desc = c
        .files
        .iter()
        .find(|d| d.name == name && d.length == size)?;
    c.slices.iter().find(|s| s.0 == desc.id).map(|s| &s.1)
}

/// Whether the file at `path` is the one the manifest lists: its size is
/// looked at first, so a file of another size (a huge one, say) is never
/// read.
fn matches(path: &Path, f: &ParityFile) -> Result<bool> {
    let file = open_regular(path)?;
    let size = file
        .metadata()
        .doing("reading the metadata of", path)?
        .len();
    Ok(size == f.size && sha256_of(&file, path)? == (f.size, f.sha256.clone()))
}

fn critical(path: &Path) -> Option<Critical> {
    let file = open_regular(path).ok()?;
    let len = file.metadata().ok()?.len();
    par2::read_critical(&mut std::io::BufReader::new(file), len).ok()
}

fn find(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}
