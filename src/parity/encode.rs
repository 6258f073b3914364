//! The Reed–Solomon encoder: every recovery slice is the sum over the input
//! slices of `coefficient · slice` in GF(2^16).
//!
//! Memory is bounded whatever the payload: the slices are cut into stripes
//! (the same byte range of every slice), and only one stripe of each
//! recovery slice and of a batch of input slices, at most
//! [`STRIPE_BUDGET`] bytes together, is in memory at a time. Each stripe
//! is split into column ranges, one per thread; a thread reads its range
//! of each input slice itself (positioned reads, so the threads share
//! nothing but the files), turns it into bit planes once
//! ([`planes`](super::planes)), and adds its products into its range of
//! every recovery slice. It goes through its range in tiles of a few
//! blocks, so that the tile of every recovery slice stays in the L1 cache
//! while all the inputs of the batch are added into it. The input is read
//! once.

use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::planes::{self, Block, Combos, Program, BLOCK, ZERO};
use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};

/// The recovery data and input pieces in memory at a time, at most.
pub const STRIPE_BUDGET: u64 = 24 << 20;
/// The tile of all recovery slices together, about: it stays in the L1
/// cache (48 KiB and more on current x86-64 cores) beside the inputs'
/// combinations.
const TILE_BYTES: usize = 24 << 10;
/// Multiplication programs of a batch, at most (64 bytes each).
const PROGRAMS: usize = 16 << 10;

/// One input slice: `len` bytes of `path` from `offset` (the rest of the
/// slice is zeros).
pub(super) struct Input {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// What to compute: `outputs` slices, output `k` the sum over the inputs
/// `i` of `coef(i, k) · input i`. Encoding: the inputs are the payload's
/// slices, the outputs the recovery slices. Repair: the inputs are the
/// intact slices and the recovery slices, the outputs the lost slices.
pub(super) struct Job<'a> {
    /// The inputs, in the order `coef` numbers them.
    pub inputs: Vec<Input>,
    /// How many output slices.
    pub outputs: usize,
    /// The coefficients.
    pub coef: &'a (dyn Fn(usize, usize) -> u16 + Sync),
    /// The slice size, a multiple of 4096.
    pub slice: u64,
    /// Worker threads.
    pub threads: usize,
}

impl Job<'_> {
    /// The inputs of `files` (path, size), each cut into slices.
    pub fn slices_of(files: &[(PathBuf, u64)], slice: u64) -> Vec<Input> {
        let mut out = Vec::new();
        for (path, size) in files {
            for s in 0..size.div_ceil(slice) {
                let offset = s * slice;
                let len = slice.min(size - offset);
                out.push(Input {
                    path: path.clone(),
                    offset,
                    len,
                });
            }
        }
        out
    }
}

/// How a job is cut: stripes of `width` bytes of every slice, inputs in
/// batches of `batch`, columns in tiles of `tile` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub width: u64,
    pub batch: usize,
    pub tile: usize,
}

impl Geometry {
    /// The geometry of `inputs` inputs and `outputs` outputs of `slice`
    /// bytes on `threads` threads: in memory are a stripe of each output
    /// (twice, as planes and as bytes), of each input of a batch, and one
    /// read buffer, within the budget unless a stripe of one block each is
    /// already more.
    pub fn of(inputs: usize, outputs: usize, slice: u64, threads: usize) -> Geometry {
        let outputs = outputs.max(1);
        let batch = inputs.clamp(1, (PROGRAMS / outputs).max(1));
        let pieces = (batch + 2 * outputs + 1) as u64;
        let unit = (BLOCK * threads.max(1)) as u64;
        let width = match STRIPE_BUDGET / pieces / unit * unit {
            0 => (STRIPE_BUDGET / pieces / BLOCK as u64 * BLOCK as u64).max(BLOCK as u64),
            w => w,
        };
        Geometry {
            width: width.min(slice.div_ceil(BLOCK as u64) * BLOCK as u64),
            batch,
            tile: (TILE_BYTES / (outputs * BLOCK)).max(1),
        }
    }
}

/// Where output data goes: `sink(offset, pieces)` with the bytes of every
/// output (in order) from `offset` of the slice, pieces of equal length,
/// in order of offset.
pub(super) type Sink<'a> = dyn FnMut(u64, &[Vec<u8>]) -> Result<()> + 'a;

/// Encodes `job`, handing the outputs' data to `sink`.
pub(super) fn encode(job: &Job, sink: &mut Sink) -> Result<()> {
    let g = Geometry::of(job.inputs.len(), job.outputs, job.slice, job.threads);
    let all = (g.batch >= job.inputs.len()).then(|| programs(job, 0..job.inputs.len()));
    let mut off = 0u64;
    while off < job.slice {
        crate::interrupt::check()?;
        let w = g.width.min(job.slice - off);
        let cols = columns(w, job.threads);
        let pieces = std::thread::scope(|s| {
            let handles: Vec<_> = (cols.iter())
                .map(|&(a, len)| {
                    let all = all.as_deref();
                    s.spawn(move || column(job, &g, all, off + a, len as usize))
                })
                .collect();
            (handles.into_iter())
                .map(|h| {
                    h.join().map_err(|_| {
                        Error::Internal("a parity thread stopped unexpectedly".into())
                    })?
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for (&(a, _), piece) in cols.iter().zip(&pieces) {
            sink(off + a, piece)?;
        }
        off += w;
    }
    Ok(())
}

/// The programs of inputs `range`, `outputs` a row.
fn programs(job: &Job, range: std::ops::Range<usize>) -> Vec<Program> {
    range
        .flat_map(|i| (0..job.outputs).map(move |k| Program::new((job.coef)(i, k))))
        .collect()
}

/// Splits `w` bytes into up to `threads` ranges of whole blocks (the last
/// one may be shorter if `w` is).
fn columns(w: u64, threads: usize) -> Vec<(u64, u64)> {
    let block = BLOCK as u64;
    let each = (w / threads.max(1) as u64).div_ceil(block) * block;
    let mut out = Vec::new();
    let mut a = 0;
    while a < w {
        let len = each.max(block).min(w - a);
        out.push((a, len));
        a += len;
    }
    out
}

/// Bytes `start .. start + len` of every output slice; `all` are the
/// programs of every input when they are made once for the whole job.
fn column(
    job: &Job,
    g: &Geometry,
    all: Option<&[Program]>,
    start: u64,
    len: usize,
) -> Result<Vec<Vec<u8>>> {
    let nb = len.div_ceil(BLOCK);
    let r = job.outputs;
    let mut acc = vec![ZERO; r * nb];
    let mut x = vec![ZERO; g.batch.min(job.inputs.len()) * nb];
    let mut bytes = vec![0u8; nb * BLOCK];
    let mut open: Option<(&PathBuf, std::fs::File)> = None;
    for (n, batch) in job.inputs.chunks(g.batch).enumerate() {
        let base = n * g.batch;
        let progs = match all {
            Some(p) => Cow::Borrowed(&p[base * r..(base + batch.len()) * r]),
            None => Cow::Owned(programs(job, base..base + batch.len())),
        };
        let mut used = Vec::new();
        for (bi, input) in batch.iter().enumerate() {
            let n = (len as u64).min(input.len.saturating_sub(start)) as usize;
            if n == 0 {
                // Padding only: zero contributes nothing.
                continue;
            }
            let file = match open.take() {
                Some((p, f)) if p == &input.path => (p, f),
                _ => (&input.path, open_regular(&input.path)?),
            };
            file.1
                .read_exact_at(&mut bytes[..n], input.offset + start)
                .doing("reading", &input.path)?;
            open = Some(file);
            bytes[n..].fill(0);
            planes::load(&bytes, &mut x[bi * nb..(bi + 1) * nb]);
            used.push(bi);
        }
        multiply(&mut acc, &x, (&used, &progs), nb, g.tile);
    }
    Ok((0..r)
        .map(|k| {
            let mut out = vec![0u8; nb * BLOCK];
            planes::store(&acc[k * nb..(k + 1) * nb], &mut out);
            out.truncate(len);
            out
        })
        .collect())
}

/// Adds into every output's blocks `acc[k·nb .. (k+1)·nb]` the products of
/// the inputs `used` of the batch (blocks `x[i·nb ..]`, programs
/// `progs[i·outputs ..]`), tile by tile.
fn multiply(
    acc: &mut [Block],
    x: &[Block],
    (used, progs): (&[usize], &[Program]),
    nb: usize,
    tile: usize,
) {
    let r = acc.len() / nb.max(1);
    let fresh = || -> Vec<Combos> { (0..tile.min(nb)).map(|_| Combos::new(&ZERO)).collect() };
    let (mut ca, mut cb) = (fresh(), fresh());
    for t0 in (0..nb).step_by(tile) {
        let t1 = (t0 + tile).min(nb);
        let set = |combos: &mut [Combos], i: usize| {
            for (c, x) in combos.iter_mut().zip(&x[i * nb + t0..i * nb + t1]) {
                c.set(x);
            }
            &progs[i * r..(i + 1) * r]
        };
        // Two inputs at a time: each output plane is loaded and stored once
        // for both.
        for pair in used.chunks(2) {
            let pa = set(&mut ca, pair[0]);
            let n = t1 - t0;
            match pair.get(1) {
                Some(&ib) => {
                    let pb = set(&mut cb, ib);
                    for (k, (p, q)) in pa.iter().zip(pb).enumerate() {
                        let acc = &mut acc[k * nb + t0..k * nb + t1];
                        planes::mul_acc(acc, [(&ca[..n], p), (&cb[..n], q)]);
                    }
                }
                None => {
                    for (k, p) in pa.iter().enumerate() {
                        planes::mul_acc(&mut acc[k * nb + t0..k * nb + t1], [(&ca[..n], p)]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gf16::{self, mul};
    use super::*;

    #[test]
    fn columns_cover_the_stripe_in_whole_blocks() {
        let b = BLOCK as u64;
        for (w, t) in [(b, 2), (8 * b, 2), (9 * b, 3), (1 << 20, 4), (2 * b, 8)] {
            let cols = columns(w, t);
            assert!(cols.len() <= t);
            assert_eq!(cols.iter().map(|c| c.1).sum::<u64>(), w);
            assert!(cols.iter().all(|c| c.0 % b == 0 && c.1 % b == 0));
        }
    }

    #[test]
    fn stripes_stay_within_the_budget() {
        for (i, r) in [(1, 1), (106, 11), (1000, 10), (32768, 3277), (10, 32768)] {
            let g = Geometry::of(i, r, 1 << 30, 2);
            let pieces = (g.batch + 2 * r + 1) as u64;
            assert!(
                g.width * pieces <= STRIPE_BUDGET.max(BLOCK as u64 * pieces),
                "{i}, {r}"
            );
            assert!(g.width % BLOCK as u64 == 0 && g.batch >= 1 && g.tile >= 1);
        }
        assert_eq!(Geometry::of(3, 3, 4096, 2).width, 4096);
        // About a hundred slices make one batch, a tile in L1 for ten outputs.
        let g = Geometry::of(106, 11, 10 << 20, 2);
        assert_eq!((g.batch, g.tile), (106, 4));
    }

    #[test]
    fn encoding_gives_the_fields_sums() {
        let dir = tempfile::tempdir().expect("tempdir");
        let slice = 4096u64;
        // Three files: a full slice and a short one, a tiny one, one empty.
        let sizes = [slice + 1000, 10, 0];
        let mut files = Vec::new();
        let mut data = Vec::new();
        for (f, &n) in sizes.iter().enumerate() {
            let d: Vec<u8> = (0..n)
                .map(|k| (k * 7 + f as u64 * 91 + k / 251) as u8)
                .collect();
            let p = dir.path().join(format!("f{f}"));
            std::fs::write(&p, &d).expect("write");
            files.push((p, n));
            data.push(d);
        }
        let inputs = Job::slices_of(&files, slice);
        let slices: Vec<Vec<u8>> = (inputs.iter().zip([0, 0, 1]))
            .map(|(i, f)| {
                let mut s = data[f][i.offset as usize..(i.offset + i.len) as usize].to_vec();
                s.resize(slice as usize, 0);
                s
            })
            .collect();
        let coef = |i: usize, k: usize| gf16::coefficient(gf16::input_logs(3)[i], k as u32);
        let job = Job {
            inputs,
            outputs: 2,
            coef: &coef,
            slice,
            threads: 2,
        };
        let mut got = vec![Vec::new(); 2];
        encode(&job, &mut |off, pieces| {
            for (k, p) in pieces.iter().enumerate() {
                assert_eq!(got[k].len() as u64, off);
                got[k].extend_from_slice(p);
            }
            Ok(())
        })
        .expect("encode");
        for (k, out) in got.iter().enumerate() {
            assert_eq!(out.len() as u64, slice);
            for w in 0..slice as usize / 2 {
                let word = |s: &[u8]| u16::from_le_bytes([s[2 * w], s[2 * w + 1]]);
                let want = (0..3).fold(0, |a, i| a ^ mul(coef(i, k), word(&slices[i])));
                assert_eq!(word(out), want, "output {k}, word {w}");
            }
        }
    }
}
