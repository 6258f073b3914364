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
use crate::format::manifest::Part;
use crate::format::par2::{self, Critical};
use crate::format::parity::{Parity, ParityFile};

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

/// What the believed PAR2 files and the payload files at hand say.
pub(super) struct Survey {
    /// PAR2 files left out, and why.
    pub ignored: Vec<String>,
    /// The set's packets, from the first believed file.
    pub critical: Critical,
    /// Recovery slices at hand: exponent, file, where its data starts.
    pub recovery: Vec<(u32, PathBuf, u64)>,
    /// Each payload file (in the order given): where it was found, and
    /// which of its slices are lost.
    pub files: Vec<(Option<PathBuf>, Vec<u64>)>,
}

/// Surveys the payload files `payload` against the PAR2 files `p` says
/// (from a manifest or parts list whose signature was checked), all looked
/// for in `dirs` (the manifest's folder first); `None` when no PAR2 file of
/// it can be believed, or the believed ones describe other files.
pub(super) fn survey(p: &Parity, payload: &[Part], dirs: &[PathBuf]) -> Result<Option<Survey>> {
    let mut ignored = Vec::new();
    let mut sets = Vec::new();
    for f in &p.files {
        match find(dirs, &f.file) {
            None => ignored.push(format!("{}: missing", f.file)),
            Some(path) if matches(&path, f)? => match critical(&path) {
                Some(c) => sets.push((path, c)),
                None => ignored.push(format!("{}: not a PAR2 file pouch reads", f.file)),
            },
            Some(_) => ignored.push(format!(
                "{}: does not match the manifest (damaged or forged), ignored for repair",
                f.file
            )),
        }
    }
    let mut recovery: Vec<(u32, PathBuf, u64)> = Vec::new();
    for (path, c) in &sets {
        for &(e, at) in &c.recovery {
            if !recovery.iter().any(|r| r.0 == e) {
                recovery.push((e, path.clone(), at));
            }
        }
    }
    let Some((_, critical)) = sets.into_iter().next() else {
        return Ok(None);
    };
    if critical.slice_size != p.slice_size {
        return Ok(None);
    }
    let mut wants = Vec::new();
    for part in payload {
        let Some(want) = expected(&critical, &part.file, part.size) else {
            return Ok(None);
        };
        wants.push(want);
    }
    let found: Vec<Option<PathBuf>> = payload.iter().map(|part| find(dirs, &part.file)).collect();
    let paths: Vec<&Path> = found.iter().flatten().map(|p| p.as_path()).collect();
    let mut sums = slice_sums_found(&paths, p.slice_size, super::threads())?.into_iter();
    let mut files = Vec::new();
    for ((part, want), found) in payload.iter().zip(wants).zip(found) {
        let got = match &found {
            Some(_) => sums.next().map(|s| s.0).unwrap_or_default(),
            None => Vec::new(),
        };
        let n = part.size.div_ceil(p.slice_size);
        let lost = (0..n).filter(|&k| got.get(k as usize) != want.get(k as usize));
        files.push((found, lost.collect()));
    }
    Ok(Some(Survey {
        ignored,
        critical,
        recovery,
        files,
    }))
}

/// Assesses the payload files `payload` (see [`survey`]).
pub fn assess(p: &Parity, payload: &[Part], dirs: &[PathBuf]) -> Result<Option<Assessment>> {
    let Some(s) = survey(p, payload, dirs)? else {
        return Ok(None);
    };
    Ok(Some(Assessment {
        total: payload.iter().map(|x| x.size.div_ceil(p.slice_size)).sum(),
        lost: s.files.iter().map(|f| f.1.len() as u64).sum(),
        recovery: s.recovery.len() as u64,
        ignored: s.ignored,
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

pub(super) fn find(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}
