//! The checksums PAR 2.0 keeps of each input file, in one sequential pass:
//! the whole file's MD5 and its first 16 KiB's (for the file description
//! packet) on one thread, each slice's MD5 and CRC32 (for the slice
//! checksum packet) on another, so that the pass costs one MD5's time.

use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

use super::Source;
use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};
use crate::format::par2::{self, FileDesc, Hash};

/// Reads are this large.
const CHUNK: usize = 1 << 20;

/// What the pass found of one file.
pub(super) struct Sums {
    /// Its description (id, MD5s, length, name).
    pub desc: FileDesc,
    /// MD5 and CRC32 of each slice, the last one zero-padded.
    pub slices: Vec<(Hash, u32)>,
}

/// Checksums every source, in order, for slices of `slice` bytes.
pub(super) fn sums(sources: &[Source], slice: u64) -> Result<Vec<Sums>> {
    std::thread::scope(|s| {
        let whole = s.spawn(|| sources.iter().map(whole_md5).collect::<Result<Vec<_>>>());
        let slices: Vec<_> = sources
            .iter()
            .map(|f| slice_sums(f, slice))
            .collect::<Result<_>>()?;
        let whole = whole
            .join()
            .map_err(|_| Error::Internal("the MD5 thread stopped unexpectedly".into()))??;
        Ok(sources
            .iter()
            .zip(whole)
            .zip(slices)
            .map(|((f, (md5, md5_16k)), slices)| Sums {
                desc: FileDesc {
                    id: par2::file_id(&md5_16k, f.size, &f.name),
                    md5,
                    md5_16k,
                    length: f.size,
                    name: f.name.clone(),
                },
                slices,
            })
            .collect())
    })
}

/// Calls `each` with the file's bytes in order, in chunks; returns how
/// many there were.
fn stream(path: &Path, each: &mut dyn FnMut(&[u8])) -> Result<u64> {
    let mut file = open_regular(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).doing("reading", path)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        each(&buf[..n]);
    }
    Ok(total)
}

fn check_size(path: &Path, got: u64, want: u64) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::MediaFault {
        path: path.to_path_buf(),
        reason: format!("holds {got} bytes, but {want} were written"),
    })
}

fn whole_md5(f: &Source) -> Result<(Hash, Hash)> {
    let (mut all, mut head) = (Md5::new(), Md5::new());
    let mut seen = 0usize;
    let size = stream(&f.path, &mut |b| {
        all.update(b);
        let take = b.len().min(16384 - seen.min(16384));
        head.update(&b[..take]);
        seen += take;
    })?;
    check_size(&f.path, size, f.size)?;
    Ok((all.finalize().into(), head.finalize().into()))
}

fn slice_sums(f: &Source, slice: u64) -> Result<Vec<(Hash, u32)>> {
    let (sums, size) = slice_sums_found(&f.path, slice)?;
    check_size(&f.path, size, f.size)?;
    Ok(sums)
}

/// The slice checksums of the file at `path` as it is, however long, and
/// its length.
pub(super) fn slice_sums_found(path: &Path, slice: u64) -> Result<(Vec<(Hash, u32)>, u64)> {
    let mut out = Vec::new();
    let (mut md5, mut crc) = (Md5::new(), crc32fast::Hasher::new());
    let mut filled = 0u64;
    let size = stream(path, &mut |mut b| {
        while !b.is_empty() {
            let take = b.len().min((slice - filled) as usize);
            md5.update(&b[..take]);
            crc.update(&b[..take]);
            filled += take as u64;
            b = &b[take..];
            if filled == slice {
                out.push((md5.finalize_reset().into(), crc.clone().finalize()));
                crc = crc32fast::Hasher::new();
                filled = 0;
            }
        }
    })?;
    if filled > 0 {
        // The padding, in small pieces: a slice can be large.
        let zeros = [0u8; 4096];
        while filled < slice {
            let n = zeros.len().min((slice - filled) as usize);
            md5.update(&zeros[..n]);
            crc.update(&zeros[..n]);
            filled += n as u64;
        }
        out.push((md5.finalize().into(), crc.finalize()));
    }
    Ok((out, size))
}
