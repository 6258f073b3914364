//! PAR 2.0 recovery files for a bundle's payload: `NAME.par2` (the index:
//! main, file description, slice checksum and creator packets) and
//! `NAME.volXX+YY.par2` (recovery slices, with copies of the index's
//! packets so that each volume stands alone), readable and repairable by
//! stock `par2` (par2cmdline) and every PAR2 client.
//!
//! They are made after the payload is on disk (under its temporary names)
//! and before the manifest is signed, which lists each of them with its
//! size and sha256. The slice size is chosen for about [`TARGET_SLICES`]
//! input slices (see [`plan`] for why); memory stays bounded whatever the
//! payload (see [`encode`]).

mod assess;
mod encode;
pub mod gf16;
mod hashes;
mod md5x;
mod planes;
pub mod recover;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::disk::durable::PendingFile;
use crate::disk::media;
use crate::error::{Error, IoContext, Result};
use crate::format::par2::{self, Hash};
use crate::format::parity::{self as record, Parity, ParityFile};
pub use assess::{assess, Assessment};

/// About this many input slices: see [`plan`].
pub const TARGET_SLICES: u64 = 100;
/// PAR 2.0 numbers input slices with 16-bit constants: at most this many.
pub const MAX_SLICES: u64 = 32768;

/// One payload file to cover.
pub struct Source {
    /// Its name beside the manifest (`NAME.age`, `NAME.age.001`, …).
    pub name: String,
    /// Where to read it now (its temporary name while packing).
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
}

/// How the recovery data is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Bytes per slice, a multiple of 4096.
    pub slice_size: u64,
    /// Input slices, over all files (each file padded to whole slices).
    pub input_slices: u64,
    /// Recovery slices.
    pub recovery_slices: u64,
}

/// Parses a percentage of recovery data: `10%` or `10`, 1 to 100.
pub fn parse_percent(text: &str) -> Result<u32> {
    let t = text.trim();
    let digits = t.strip_suffix('%').unwrap_or(t).trim();
    match digits.parse::<u32>() {
        Ok(p) if (1..=100).contains(&p) => Ok(p),
        _ => Err(Error::Usage(format!(
            "--parity {text:?} is not understood: give a whole percentage from 1% to 100%, e.g. 10%"
        ))),
    }
}

/// The plan for files of `sizes` with `percent` % of recovery data.
///
/// The work is the payload's size times the number of recovery slices, so
/// fewer, larger slices make parity fast; but damage costs whole slices, so
/// too few make it coarse. About [`TARGET_SLICES`] input slices (10 MiB
/// slices for 1 GiB, at 10 % ten recovery slices) keeps creation well
/// under the pack's own time and still repairs a few scattered bad spots
/// or one lost part of ten.
pub fn plan(sizes: &[u64], percent: u32) -> Result<Plan> {
    if !(1..=100).contains(&percent) {
        return Err(Error::Usage(format!(
            "--parity {percent}% is out of range: use 1% to 100%"
        )));
    }
    let total: u64 = sizes.iter().sum();
    let mut slice_size = total.div_ceil(TARGET_SLICES).div_ceil(4096).max(1) * 4096;
    let count = |b: u64| sizes.iter().map(|s| s.div_ceil(b).max(1)).sum::<u64>();
    while count(slice_size) > MAX_SLICES {
        slice_size *= 2;
    }
    let input_slices = count(slice_size);
    if sizes.len() as u64 > MAX_SLICES {
        return Err(Error::Usage(format!(
            "PAR2 covers at most {MAX_SLICES} files; this payload has {} parts",
            sizes.len()
        )));
    }
    let recovery_slices = (input_slices * percent as u64).div_ceil(100).max(1);
    Ok(Plan {
        slice_size,
        input_slices,
        recovery_slices,
    })
}

/// The recovery files of `parse`'s parity, as [`media::Written`] (synced,
/// under temporary names in `dir`), and the manifest's record of them.
///
/// The files' ids, hence their order and the slices' numbers, need only
/// the MD5 of each file's first 16 KiB; so the checksums of the whole
/// files (for the index) are made on threads of their own, one per core,
/// while the encoder's threads make the recovery slices, each reading the
/// payload once: the cores share out the two kinds of work, so that
/// neither waits for the other at the end.
pub fn create(
    dir: &Path,
    name: &str,
    sources: &[Source],
    percent: u32,
) -> Result<(Vec<media::Written>, Parity)> {
    let sizes: Vec<u64> = sources.iter().map(|s| s.size).collect();
    let plan = plan(&sizes, percent)?;
    let heads = hashes::heads(sources)?;
    let ids: Vec<Hash> = (sources.iter().zip(&heads))
        .map(|(s, h)| par2::file_id(h, s.size, &s.name))
        .collect();
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| par2::id_order(&ids[i]));
    let main = par2::main_body(
        plan.slice_size,
        &order.iter().map(|&i| ids[i]).collect::<Vec<_>>(),
    );
    let set_id = par2::md5(&main);
    let files: Vec<(PathBuf, u64)> = (order.iter())
        .map(|&i| (sources[i].path.clone(), sources[i].size))
        .collect();
    let logs = gf16::input_logs(plan.input_slices as usize);
    let coef = |i: usize, k: usize| gf16::coefficient(logs[i], k as u32);
    let job = encode::Job {
        inputs: encode::Job::slices_of(&files, plan.slice_size),
        outputs: plan.recovery_slices as usize,
        coef: &coef,
        slice: plan.slice_size,
        threads: threads(),
    };
    let (sums, volumes) = std::thread::scope(|s| {
        let sums = s.spawn(|| hashes::sums(sources, &heads, plan.slice_size, threads()));
        let volumes = recovery_volumes(dir, name, &job, &set_id);
        let sums = (sums.join())
            .map_err(|_| Error::Internal("the MD5 thread stopped unexpectedly".into()));
        (sums, volumes)
    });
    let (sums, volumes) = (sums??, volumes?);
    let critical = critical_packets(&set_id, &main, &order, &sums);
    let mut written = Vec::new();
    let index = dir.join(record::index_name(name));
    let mut f = PendingFile::create(&index, 0o644)?;
    f.write_all(&critical)?;
    written.push(media::Written {
        file: f.sync()?,
        size: critical.len() as u64,
        sha256: crate::payload::hashing::sha256_hex(&critical),
    });
    written.extend(finish_volumes(volumes, &critical)?);
    let files = written
        .iter()
        .map(|w| ParityFile {
            file: w.file.final_name(),
            size: w.size,
            sha256: w.sha256.clone(),
        })
        .collect();
    let parity = Parity {
        format: record::FORMAT.into(),
        slice_size: plan.slice_size,
        recovery_slices: plan.recovery_slices,
        files,
    };
    Ok((written, parity))
}

/// The index's packets: main, then each file's description and slice
/// checksums in the main packet's order, then the creator's.
fn critical_packets(set_id: &Hash, main: &[u8], order: &[usize], sums: &[hashes::Sums]) -> Vec<u8> {
    let mut critical = par2::packet(set_id, &par2::MAIN, main);
    for &i in order {
        let s = &sums[i];
        critical.extend(par2::packet(set_id, &par2::FILE_DESC, &s.desc.body()));
        let ifsc = par2::ifsc_body(&s.desc.id, &s.slices);
        critical.extend(par2::packet(set_id, &par2::IFSC, &ifsc));
    }
    let creator = format!("pouch {}", env!("CARGO_PKG_VERSION"));
    critical.extend(par2::packet(
        set_id,
        &par2::CREATOR,
        &par2::creator_body(&creator),
    ));
    critical
}

/// [`create`] over payload files just written (still under their
/// temporary names).
pub fn create_over(
    dir: &Path,
    name: &str,
    written: &[media::Written],
    pct: u32,
) -> Result<(Vec<media::Written>, Parity)> {
    let sources: Vec<Source> = written
        .iter()
        .map(|w| Source {
            name: w.file.final_name(),
            path: w.file.temp_path().to_path_buf(),
            size: w.size,
        })
        .collect();
    create(dir, name, &sources, pct)
}

/// Worker threads: one per core, at most four.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// A recovery volume being written: its file, path, and the length of its
/// recovery packets (the index's packets follow them).
type Volume = (PendingFile, PathBuf, u64);

/// The recovery volumes' packets: sizes 1, 2, 4, … recovery slices (as
/// par2cmdline makes them). Their packet hashes are made as the slices
/// come, [`md5x::LANES`] at a time.
fn recovery_volumes(
    dir: &Path,
    name: &str,
    job: &encode::Job,
    set_id: &Hash,
) -> Result<Vec<Volume>> {
    let total = job.outputs as u64;
    let packet_len = par2::HEADER_LEN as u64 + 4 + job.slice;
    // Where exponent k goes: (volume, offset of its packet).
    let mut place = Vec::new();
    let mut files = Vec::new();
    for (first, n) in record::volumes(total) {
        let path = dir.join(record::volume_name(name, first, n, total));
        let pending = PendingFile::create(&path, 0o644)?;
        for k in 0..n {
            place.push((files.len(), k * packet_len));
        }
        files.push((pending, path, n * packet_len));
    }
    // Each packet's hash covers set id, type, exponent, then the slice.
    let mut hashes: Vec<md5x::Streams> = Vec::new();
    for g in (0..job.outputs).step_by(md5x::LANES) {
        let starts: Vec<Vec<u8>> = (0..md5x::LANES)
            .map(|l| {
                let e = (g + l).min(job.outputs - 1) as u32;
                [&set_id[..], &par2::RECOVERY[..], &e.to_le_bytes()].concat()
            })
            .collect();
        let mut h: md5x::Streams = md5x::Streams::default();
        h.update(std::array::from_fn(|l| &starts[l][..]));
        hashes.push(h);
    }
    encode::encode(job, &mut |off, pieces| {
        for (g, h) in hashes.iter_mut().enumerate() {
            let first = g * md5x::LANES;
            h.update(std::array::from_fn(|l| {
                &pieces[(first + l).min(pieces.len() - 1)][..]
            }));
        }
        for (k, bytes) in pieces.iter().enumerate() {
            let (v, at) = place[k];
            let (f, path, _) = &mut files[v];
            f.file()
                .write_all_at(bytes, at + par2::HEADER_LEN as u64 + 4 + off)
                .doing("writing", &*path)?;
        }
        Ok(())
    })?;
    for (k, &(v, at)) in place.iter().enumerate() {
        let hash: Hash = hashes[k / md5x::LANES].digest(k % md5x::LANES);
        let mut head = par2::header(set_id, &par2::RECOVERY, 4 + job.slice, &hash).to_vec();
        head.extend_from_slice(&(k as u32).to_le_bytes());
        let (f, path, _) = &mut files[v];
        f.file().write_all_at(&head, at).doing("writing", &*path)?;
    }
    Ok(files)
}

/// Appends the index's packets to each volume, so that it stands alone,
/// and syncs it.
fn finish_volumes(files: Vec<Volume>, critical: &[u8]) -> Result<Vec<media::Written>> {
    let mut out = Vec::new();
    for (mut f, path, data_len) in files {
        f.file()
            .write_all_at(critical, data_len)
            .doing("writing", &path)?;
        let (size, sha256) = sha256_of(f.file(), &path)?;
        out.push(media::Written {
            file: f.sync()?,
            size,
            sha256,
        });
    }
    Ok(out)
}

/// Size and sha256 of an open file, from its start.
pub(crate) fn sha256_of(file: &std::fs::File, path: &Path) -> Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = file.read_at(&mut buf, pos).doing("reading", path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok((pos, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_about_a_hundred_slices() {
        let p = plan(&[1 << 30], 10).expect("plan");
        assert_eq!(p.slice_size % 4096, 0);
        assert!((100..=101).contains(&p.input_slices), "{p:?}");
        assert_eq!(p.recovery_slices, p.input_slices.div_ceil(10));
        let small = plan(&[10], 5).expect("plan");
        assert_eq!(
            (small.slice_size, small.input_slices, small.recovery_slices),
            (4096, 1, 1)
        );
        assert!(plan(&[1], 0).is_err() && plan(&[1], 101).is_err());
    }
}
