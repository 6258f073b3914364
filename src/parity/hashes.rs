//! The checksums PAR 2.0 keeps of each input file: the MD5 of its first
//! 16 KiB (which names it), the whole file's MD5, and each slice's MD5 and
//! CRC32 (the last slice zero-padded).
//!
//! Every MD5 to make is a stream (a whole file, or one slice) and the
//! streams run in the lanes of [`md5x::Lanes`], the longest first, each
//! lane taking the next stream when its own ends, so that the lanes stay
//! busy whatever the number and sizes of the files. A lane reads its own
//! stream (positioned reads), so a slice's bytes are read once for the
//! slice and once for the whole file; both reads come from the page cache
//! the parts were just written through.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use md5::{Digest, Md5};

use super::md5x::{self, Lanes};
use super::Source;
use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};
use crate::format::par2::{self, FileDesc, Hash};

/// Each lane reads this much at a time.
const CHUNK: usize = 128 << 10;
/// The file's first bytes whose MD5 goes into its id.
const HEAD: usize = 16 << 10;

/// MD5 and CRC32 of each slice of a file, the last one zero-padded.
pub(super) type SliceSums = Vec<(Hash, u32)>;

/// What the pass found of one file.
pub(super) struct Sums {
    /// Its description (id, MD5s, length, name).
    pub desc: FileDesc,
    /// Its slices' checksums.
    pub slices: SliceSums,
}

/// The MD5 of the first 16 KiB of each source (all of it if shorter): its
/// id, which orders the files and so numbers the slices, is known before
/// the long pass.
pub(super) fn heads(sources: &[Source]) -> Result<Vec<Hash>> {
    let mut buf = vec![0u8; HEAD];
    (sources.iter())
        .map(|s| {
            let file = open_regular(&s.path)?;
            let mut n = 0;
            while n < HEAD {
                match (&file).read(&mut buf[n..]).doing("reading", &s.path)? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(Md5::digest(&buf[..n]).into())
        })
        .collect()
}

/// Checksums every source, in order, for slices of `slice` bytes on
/// `threads` threads; `heads` are [`heads`]'s.
pub(super) fn sums(
    sources: &[Source],
    heads: &[Hash],
    slice: u64,
    threads: usize,
) -> Result<Vec<Sums>> {
    let paths: Vec<&Path> = sources.iter().map(|s| s.path.as_path()).collect();
    let scanned = scan(&paths, slice, true, threads)?;
    (sources.iter().zip(heads).zip(scanned))
        .map(|((f, md5_16k), s)| {
            if s.len != f.size {
                return Err(Error::MediaFault {
                    path: f.path.clone(),
                    reason: format!("holds {} bytes, but {} were written", s.len, f.size),
                });
            }
            Ok(Sums {
                desc: FileDesc {
                    id: par2::file_id(md5_16k, f.size, &f.name),
                    md5: s.md5.unwrap_or_default(),
                    md5_16k: *md5_16k,
                    length: f.size,
                    name: f.name.clone(),
                },
                slices: s.slices,
            })
        })
        .collect()
}

/// The slice checksums of the files at `paths` as they are, however long,
/// and their lengths, on `threads` threads.
pub(super) fn slice_sums_found(
    paths: &[&Path],
    slice: u64,
    threads: usize,
) -> Result<Vec<(SliceSums, u64)>> {
    let scanned = scan(paths, slice, false, threads)?;
    Ok(scanned.into_iter().map(|s| (s.slices, s.len)).collect())
}

/// What [`scan`] found of one file.
struct Scanned {
    len: u64,
    /// The whole file's MD5, when asked for.
    md5: Option<Hash>,
    slices: SliceSums,
}

/// One MD5 to make: of `len` bytes of file `file` from `offset`, then
/// zeros up to `total` bytes; `slice` is its number, or `None` for the
/// whole file's.
#[derive(Clone, Copy)]
struct Stream {
    file: usize,
    offset: u64,
    len: u64,
    total: u64,
    slice: Option<usize>,
}

/// A finished stream's checksums: MD5, and CRC32 for a slice.
type Done = (Stream, Hash, u32);

/// Reads and checksums the files at `paths` for slices of `slice` bytes
/// (a multiple of 64), with their whole MD5s if `whole`.
fn scan(paths: &[&Path], slice: u64, whole: bool, threads: usize) -> Result<Vec<Scanned>> {
    let files: Vec<std::fs::File> = paths
        .iter()
        .map(|p| open_regular(p))
        .collect::<Result<_>>()?;
    let mut lens = Vec::new();
    for (f, p) in files.iter().zip(paths) {
        lens.push(f.metadata().doing("reading the metadata of", p)?.len());
    }
    // The longest streams first, so that the lanes end together.
    let mut streams = Vec::new();
    for (file, &len) in lens.iter().enumerate().filter(|_| whole) {
        let slice = None;
        streams.push(Stream {
            file,
            offset: 0,
            len,
            total: len,
            slice,
        });
    }
    for (file, &len) in lens.iter().enumerate() {
        for k in 0..len.div_ceil(slice) {
            let offset = k * slice;
            let (len, slice, total) = (slice.min(len - offset), Some(k as usize), slice);
            streams.push(Stream {
                file,
                offset,
                len,
                total,
                slice,
            });
        }
    }
    // Dealt out in turn, so that each thread gets its share of the long ones.
    let threads = threads.clamp(1, streams.len().max(1));
    let groups: Vec<Vec<Stream>> = (0..threads)
        .map(|t| streams.iter().skip(t).step_by(threads).copied().collect())
        .collect();
    let done = std::thread::scope(|s| {
        let handles: Vec<_> = (groups.iter())
            .map(|group| s.spawn(|| run(&files, paths, group)))
            .collect();
        (handles.into_iter())
            .map(|h| {
                h.join()
                    .map_err(|_| Error::Internal("an MD5 thread stopped unexpectedly".into()))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut out: Vec<Scanned> = (lens.iter())
        .map(|&len| Scanned {
            len,
            md5: None,
            slices: vec![([0; 16], 0); len.div_ceil(slice) as usize],
        })
        .collect();
    for (stream, md5, crc) in done.into_iter().flatten() {
        let o = &mut out[stream.file];
        match stream.slice {
            Some(k) => o.slices[k] = (md5, crc),
            None => o.md5 = Some(md5),
        }
    }
    Ok(out)
}

/// One lane's stream and what of it is in its buffer.
struct Lane {
    stream: Option<Stream>,
    buf: Vec<u8>,
    /// Bytes in `buf`, and how many of them were hashed.
    have: usize,
    at: usize,
    /// Bytes of the stream read so far.
    read: u64,
    crc: crc32fast::Hasher,
}

/// Runs `streams` through the lanes of one [`Lanes`], each lane taking the
/// next stream when its own ends.
fn run(files: &[std::fs::File], paths: &[&Path], streams: &[Stream]) -> Result<Vec<Done>> {
    let mut lanes: Lanes = Lanes::default();
    let mut state: Vec<Lane> = (0..md5x::LANES)
        .map(|_| Lane {
            stream: None,
            buf: vec![0; CHUNK],
            have: 0,
            at: 0,
            read: 0,
            crc: crc32fast::Hasher::new(),
        })
        .collect();
    let mut next = streams.iter();
    let mut done = Vec::new();
    let zero = [0u8; 64];
    loop {
        for (l, lane) in state.iter_mut().enumerate() {
            if lane.at + 64 > lane.have {
                refill(lane, l, &mut lanes, (files, paths), &mut next, &mut done)?;
            }
        }
        if state.iter().all(|l| l.stream.is_none()) {
            return Ok(done);
        }
        let blocks = std::array::from_fn(|l| {
            let lane = &state[l];
            match lane.stream {
                Some(_) => <&[u8; 64]>::try_from(&lane.buf[lane.at..lane.at + 64]).unwrap_or(&zero),
                None => &zero,
            }
        });
        lanes.compress(blocks);
        for lane in state.iter_mut().filter(|l| l.stream.is_some()) {
            lane.at += 64;
        }
    }
}

/// Gives lane `l`, whose buffer holds less than a block, its next bytes:
/// the next chunk of its stream, or, if that ended, the next stream's
/// first; ends the lane when no stream is left.
fn refill(
    lane: &mut Lane,
    l: usize,
    lanes: &mut Lanes,
    (files, paths): (&[std::fs::File], &[&Path]),
    next: &mut std::slice::Iter<Stream>,
    done: &mut Vec<Done>,
) -> Result<()> {
    loop {
        let Some(s) = lane.stream else {
            let Some(&s) = next.next() else {
                return Ok(());
            };
            crate::interrupt::check()?;
            lanes.reset(l);
            *lane = Lane {
                stream: Some(s),
                have: 0,
                at: 0,
                read: 0,
                crc: crc32fast::Hasher::new(),
                buf: std::mem::take(&mut lane.buf),
            };
            continue;
        };
        if lane.read == s.total {
            let md5 = md5x::finish(lanes.get(l), &lane.buf[lane.at..lane.have], s.total);
            let crc = std::mem::replace(&mut lane.crc, crc32fast::Hasher::new());
            done.push((s, md5, crc.finalize()));
            lane.stream = None;
            continue;
        }
        let n = (CHUNK as u64).min(s.total - lane.read) as usize;
        let data = (n as u64).min(s.len.saturating_sub(lane.read)) as usize;
        files[s.file]
            .read_exact_at(&mut lane.buf[..data], s.offset + lane.read)
            .doing("reading", paths[s.file])?;
        lane.buf[data..n].fill(0);
        if s.slice.is_some() {
            lane.crc.update(&lane.buf[..n]);
        }
        (lane.have, lane.at, lane.read) = (n, 0, lane.read + n as u64);
        if n >= 64 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksums as the `md-5` crate gives them, one stream at a time.
    fn plain(data: &[u8], slice: usize) -> (Hash, Vec<(Hash, u32)>) {
        let slices = (data.chunks(slice))
            .map(|c| {
                let mut s = c.to_vec();
                s.resize(slice, 0);
                (Md5::digest(&s).into(), crc32fast::hash(&s))
            })
            .collect();
        (Md5::digest(data).into(), slices)
    }

    #[test]
    fn one_pass_gives_the_plain_checksums() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Sizes around the slice, the block and the chunk, more files than
        // slots, and an empty one.
        let slice = 4096 * 3;
        let sizes = [
            0,
            1,
            63,
            64,
            slice - 1,
            slice,
            slice + 65,
            CHUNK,
            CHUNK + 4096,
            2 * CHUNK + 100,
            5 * slice,
        ];
        let mut paths = Vec::new();
        let mut datas = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..n).map(|k| ((k * 31 + i * 7) % 251) as u8).collect();
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, &data).expect("write");
            paths.push(p);
            datas.push(data);
        }
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let scanned = scan(&refs, slice as u64, true, 1).expect("scan");
        for ((s, data), n) in scanned.iter().zip(&datas).zip(sizes) {
            let (md5, slices) = plain(data, slice);
            assert_eq!(s.len, n as u64);
            assert_eq!(s.md5, Some(md5), "whole MD5 of {n} bytes");
            assert!(s.slices == slices, "slice checksums of {n} bytes differ");
        }
        let found = slice_sums_found(&refs, slice as u64, 2).expect("scan");
        for ((f, data), n) in found.iter().zip(&datas).zip(sizes) {
            assert_eq!(f.1, n as u64);
            assert!(
                f.0 == plain(data, slice).1,
                "slice checksums of {n} bytes differ"
            );
        }
    }
}
