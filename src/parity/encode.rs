//! The Reed–Solomon encoder: every recovery slice is the sum over the input
//! slices of `coefficient · slice` in GF(2^16).
//!
//! Memory is bounded whatever the payload: the slices are cut into stripes
//! (the same byte range of every slice), and only one stripe of each
//! recovery slice, at most [`STRIPE_BUDGET`] bytes together, is in memory
//! at a time. Each stripe is split into column ranges, one per thread; a
//! thread reads its range of each input slice itself (positioned reads, so
//! the threads share nothing but the files) and multiplies it into its
//! range of every recovery slice. The input is read once.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::gf16::Table;
use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};

/// The recovery data in memory at a time, at most (plus one input piece
/// per thread).
pub const STRIPE_BUDGET: u64 = 32 << 20;
/// Column ranges are multiplied in pieces of this many bytes, so that the
/// piece of input stays in the L1/L2 cache across all recovery slices.
const PIECE: usize = 16 << 10;

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
    /// The slice size, a multiple of 4.
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

/// The stripe width for `recovery` slices of `slice` bytes: the budget
/// shared among them, a multiple of 64 bytes.
pub(super) fn stripe_width(slice: u64, recovery: usize) -> u64 {
    let per = (STRIPE_BUDGET / recovery.max(1) as u64) / 64 * 64;
    per.clamp(64, slice.max(64))
}

/// Where recovery data goes: `sink(k, offset, bytes)` for the `k`-th exponent.
pub(super) type Sink<'a> = dyn FnMut(usize, u64, &[u8]) -> Result<()> + 'a;

/// Encodes `job`, handing each recovery slice's data to `sink` in order of
/// offset: `sink(k, offset, bytes)` for the `k`-th exponent.
pub(super) fn encode(job: &Job, sink: &mut Sink) -> Result<()> {
    let width = stripe_width(job.slice, job.outputs);
    let mut off = 0u64;
    while off < job.slice {
        crate::interrupt::check()?;
        let w = width.min(job.slice - off);
        let cols = columns(w, job.threads);
        let pieces = std::thread::scope(|s| {
            let handles: Vec<_> = cols
                .iter()
                .map(|&(a, len)| s.spawn(move || column(job, off + a, len as usize)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().map_err(|_| {
                        Error::Internal("a parity thread stopped unexpectedly".into())
                    })?
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for k in 0..job.outputs {
            for (&(a, _), piece) in cols.iter().zip(&pieces) {
                sink(k, off + a, &piece[k])?;
            }
        }
        off += w;
    }
    Ok(())
}

/// Splits `w` bytes into up to `threads` ranges of multiples of 64 bytes.
fn columns(w: u64, threads: usize) -> Vec<(u64, u64)> {
    let each = (w / threads.max(1) as u64).div_ceil(64) * 64;
    let mut out = Vec::new();
    let mut a = 0;
    while a < w {
        let len = each.max(64).min(w - a);
        out.push((a, len));
        a += len;
    }
    out
}

/// Bytes `start .. start + len` of every output slice.
fn column(job: &Job, start: u64, len: usize) -> Result<Vec<Vec<u8>>> {
    let mut out = vec![vec![0u8; len]; job.outputs];
    let mut buf = vec![0u8; len];
    let mut open: Option<(&PathBuf, std::fs::File)> = None;
    for (i, input) in job.inputs.iter().enumerate() {
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
            .read_exact_at(&mut buf[..n], input.offset + start)
            .doing("reading", &input.path)?;
        open = Some(file);
        buf[n..].fill(0);
        let tables: Vec<Table> = (0..job.outputs)
            .map(|k| Table::new((job.coef)(i, k)))
            .collect();
        for p in (0..len).step_by(PIECE) {
            let end = (p + PIECE).min(len);
            for (r, t) in out.iter_mut().zip(&tables) {
                t.mul_acc(&mut r[p..end], &buf[p..end]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_cover_the_stripe_in_aligned_ranges() {
        for (w, t) in [(64, 2), (4096, 2), (4160, 3), (1 << 20, 4), (128, 8)] {
            let cols = columns(w, t);
            assert!(cols.len() <= t);
            assert_eq!(cols.iter().map(|c| c.1).sum::<u64>(), w);
            assert!(cols.iter().all(|c| c.0 % 64 == 0));
        }
    }

    #[test]
    fn stripes_stay_within_the_budget() {
        for r in [1, 10, 1000, 32768] {
            let w = stripe_width(1 << 30, r);
            assert!(w * r as u64 <= STRIPE_BUDGET.max(64 * r as u64), "{r}");
        }
        assert_eq!(stripe_width(4096, 3), 4096);
    }
}
