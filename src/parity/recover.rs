//! Restoring lost slices from the recovery slices: pouch's own PAR 2.0
//! decoder, so that a bundle can be repaired where `par2` is not
//! installed.
//!
//! With `L` input slices lost and recovery slices of exponents `e_1 … e_L`
//! at hand, recovery slice `j` minus the intact slices' share is
//! `Σ_k c_k^{e_j} · lost_k`: an `L × L` system, solved by inverting its
//! matrix once. Each lost slice is then a linear combination of the intact
//! and the recovery slices, which the striped engine of
//! [`encode`](super::encode) computes in bounded memory, straight into the
//! repaired files. A repaired file is kept only if its sha256 is the signed
//! one.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::assess::{survey, Survey};
use super::encode::{self, Input, Job};
use super::gf16::{coefficient, input_logs, invert, mul};
use super::sha256_of;
use crate::disk::durable::{open_regular, PendingFile, SyncedFile};
use crate::error::{Error, IoContext, Result};
use crate::format::manifest::Part;
use crate::format::parity::Parity;

/// A repaired payload file, synced under its temporary name.
pub struct Repaired {
    /// The file, to be renamed into place.
    pub file: SyncedFile,
    /// Whether a (damaged) file stands at its final name now.
    pub replaces: bool,
    /// Slices restored in it.
    pub restored: u64,
}

/// What [`recover`] did, besides the files.
pub struct Recovered {
    /// The repaired files (none when nothing was lost).
    pub files: Vec<Repaired>,
    /// PAR2 files left out, and why.
    pub ignored: Vec<String>,
}

/// Restores every damaged or missing file of `payload` into `out`, under
/// temporary names; fails with [`Error::Damaged`] (nothing written) when
/// the damage exceeds the recovery slices at hand.
pub fn recover(p: &Parity, payload: &[Part], dirs: &[PathBuf], out: &Path) -> Result<Recovered> {
    let Some(s) = survey(p, payload, dirs)? else {
        return Err(Error::Refused(
            "no PAR2 file of this bundle matches its signed manifest and describes its payload; copy them again from the medium".into(),
        ));
    };
    let order = main_order(&s, payload)?;
    let slice = p.slice_size;
    // Number the input slices as the main packet does.
    let mut first = vec![0u64; payload.len()];
    let mut n = 0;
    for &f in &order {
        first[f] = n;
        n += payload[f].size.div_ceil(slice);
    }
    let logs = input_logs(n as usize);
    let lost: Vec<(usize, u64)> = (0..payload.len())
        .flat_map(|f| s.files[f].1.iter().map(move |&k| (f, k)))
        .collect();
    let rewrite: Vec<usize> = (0..payload.len())
        .filter(|&f| !s.files[f].1.is_empty() || !intact_file(&s, f, &payload[f]))
        .collect();
    if lost.len() > s.recovery.len() {
        return Err(too_much(&s, payload, n, &lost));
    }
    if rewrite.is_empty() {
        // Nothing lost: no need to read the payload again.
        return Ok(Recovered {
            files: Vec::new(),
            ignored: s.ignored,
        });
    }
    let l = lost.len();
    let exps: Vec<u32> = s.recovery[..l].iter().map(|r| r.0).collect();
    let g = |&(f, k): &(usize, u64)| (first[f] + k) as usize;
    let a: Vec<Vec<u16>> = (0..l)
        .map(|j| {
            lost.iter()
                .map(|x| coefficient(logs[g(x)], exps[j]))
                .collect()
        })
        .collect();
    let inv = invert(a).ok_or_else(|| {
        Error::Internal("the recovery slices at hand do not determine the lost ones".into())
    })?;
    // Inputs: every intact slice, then the L recovery slices.
    let mut inputs = Vec::new();
    let mut rows: Vec<usize> = Vec::new();
    for (f, (part, (found, gone))) in payload.iter().zip(&s.files).enumerate() {
        let Some(path) = found else { continue };
        for k in 0..part.size.div_ceil(slice) {
            if !gone.contains(&k) {
                let offset = k * slice;
                let len = slice.min(part.size - offset);
                inputs.push(Input {
                    path: path.clone(),
                    offset,
                    len,
                });
                rows.push(g(&(f, k)));
            }
        }
    }
    let intact = inputs.len();
    for r in &s.recovery[..l] {
        inputs.push(Input {
            path: r.1.clone(),
            offset: r.2,
            len: slice,
        });
    }
    // coef(i, k): intact slice i's share in lost slice k, or recovery j's.
    let shares: Vec<Vec<u16>> = (0..inputs.len())
        .map(|i| {
            (0..l)
                .map(|k| match i < intact {
                    true => (0..l).fold(0, |acc, j| {
                        acc ^ mul(inv[k][j], coefficient(logs[rows[i]], exps[j]))
                    }),
                    false => inv[k][i - intact],
                })
                .collect()
        })
        .collect();
    let coef = |i: usize, k: usize| shares[i][k];
    let job = Job {
        inputs,
        outputs: l,
        coef: &coef,
        slice,
        threads: super::threads(),
    };
    write_repaired(&s, payload, (&rewrite, &lost), &job, out)
}

/// The payload files in the main packet's order (by index into `payload`).
fn main_order(s: &Survey, payload: &[Part]) -> Result<Vec<usize>> {
    let c = &s.critical;
    let mut order = Vec::new();
    for id in &c.ids {
        let f = c.files.iter().find(|d| &d.id == id).and_then(|d| {
            payload
                .iter()
                .position(|p| p.file == d.name && p.size == d.length)
        });
        order.push(f.ok_or_else(|| {
            Error::Refused("the PAR2 files describe other files than this payload's".into())
        })?);
    }
    if order.len() != payload.len() {
        return Err(Error::Refused(
            "the PAR2 files do not cover every file of this payload".into(),
        ));
    }
    Ok(order)
}

/// Whether payload file `f` is there, of its signed size (its slices were
/// all found intact, but it may be longer).
fn intact_file(s: &Survey, f: usize, part: &Part) -> bool {
    let len = s.files[f]
        .0
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok());
    len.is_some_and(|m| m.len() == part.size)
}

fn too_much(s: &Survey, payload: &[Part], total: u64, lost: &[(usize, u64)]) -> Error {
    let damage = (0..payload.len())
        .filter(|&f| !s.files[f].1.is_empty())
        .map(|f| {
            let n = payload[f].size.div_ceil(s.critical.slice_size);
            format!(
                "{}: {} of {n} slices lost",
                payload[f].file,
                s.files[f].1.len()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Error::Damaged {
        damage: format!("nothing was changed: {damage}"),
        repairable: false,
        lost: lost.len() as u64,
        total,
        recovery: s.recovery.len() as u64,
        ignored: s.ignored.clone(),
    }
}

/// Writes each file of `rewrite`: its intact slices copied from the
/// damaged file, its lost ones computed by `job`; keeps it only if its
/// sha256 is the signed one.
fn write_repaired(
    s: &Survey,
    payload: &[Part],
    (rewrite, lost): (&[usize], &[(usize, u64)]),
    job: &Job,
    out: &Path,
) -> Result<Recovered> {
    let slice = job.slice;
    let mut pending: Vec<(usize, PendingFile, PathBuf)> = Vec::new();
    for &f in rewrite {
        let dest = out.join(&payload[f].file);
        let mut file = PendingFile::create(&dest, 0o644)?;
        let tmp = file.temp_path();
        if let Some(old) = &s.files[f].0 {
            let src = open_regular(old)?;
            let mut buf = vec![0u8; 1 << 20];
            for k in 0..payload[f].size.div_ceil(slice) {
                if s.files[f].1.contains(&k) {
                    continue;
                }
                let end = ((k + 1) * slice).min(payload[f].size);
                let mut at = k * slice;
                while at < end {
                    let n = buf.len().min((end - at) as usize);
                    src.read_exact_at(&mut buf[..n], at).doing("reading", old)?;
                    file.file()
                        .write_all_at(&buf[..n], at)
                        .doing("writing", &tmp)?;
                    at += n as u64;
                }
            }
        }
        file.file()
            .set_len(payload[f].size)
            .doing("writing", &tmp)?;
        pending.push((f, file, tmp));
    }
    encode::encode(job, &mut |off, pieces| {
        for (k, bytes) in pieces.iter().enumerate() {
            let (f, slice_k) = lost[k];
            let size = payload[f].size;
            let at = slice_k * slice + off;
            let n = (bytes.len() as u64).min(size.saturating_sub(at)) as usize;
            let Some((_, file, tmp)) = pending.iter_mut().find(|x| x.0 == f) else {
                return Err(Error::Internal(
                    "a lost slice of a file not being repaired".into(),
                ));
            };
            file.file()
                .write_all_at(&bytes[..n], at)
                .doing("writing", &*tmp)?;
        }
        Ok(())
    })?;
    let mut files = Vec::new();
    for (f, mut file, tmp) in pending {
        let (size, sha) = sha256_of(file.file(), &tmp)?;
        if size != payload[f].size || sha != payload[f].sha256 {
            return Err(Error::BadParts {
                problems: vec![format!(
                    "{}: the repaired file does not match its signed sha256; nothing was changed (a PAR2 file may be forged by someone who could also sign)",
                    payload[f].file
                )],
            });
        }
        files.push(Repaired {
            file: file.sync()?,
            replaces: std::fs::symlink_metadata(out.join(&payload[f].file)).is_ok(),
            restored: s.files[f].1.len() as u64,
        });
    }
    Ok(Recovered {
        files,
        ignored: s.ignored.clone(),
    })
}
