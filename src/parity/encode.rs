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

use super::gf16::{coefficient, Table};
use crate::disk::durable::open_regular;
use crate::error::{Error, IoContext, Result};

/// The recovery data in memory at a time, at most (plus one input piece
/// per thread).
pub const STRIPE_BUDGET: u64 = 32 << 20;
/// Column ranges are multiplied in pieces of this many bytes, so that the
/// piece of input stays in the L1/L2 cache across all recovery slices.
const PIECE: usize = 16 << 10;

/// What to encode.
pub(super) struct Job {
    /// The input files in the order of their slices (the main packet's).
    pub files: Vec<(PathBuf, u64)>,
    /// The slice size, a multiple of 64.
    pub slice: u64,
    /// Each input slice's constant, as a log ([`super::gf16::input_logs`]).
    pub logs: Vec<u32>,
    /// The recovery slices' exponents.
    pub exponents: Vec<u32>,
    /// Worker threads.
    pub threads: usize,
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
    let width = stripe_width(job.slice, job.exponents.len());
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
        for k in 0..job.exponents.len() {
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

/// Bytes `start .. start + len` of every recovery slice.
fn column(job: &Job, start: u64, len: usize) -> Result<Vec<Vec<u8>>> {
    let mut rec = vec![vec![0u8; len]; job.exponents.len()];
    let mut buf = vec![0u8; len];
    let mut index = 0usize;
    for (path, size) in &job.files {
        let file = open_regular(path)?;
        let slices = size.div_ceil(job.slice);
        for s in 0..slices {
            let pos = s * job.slice + start;
            let n = (len as u64).min(size.saturating_sub(pos)) as usize;
            let log = job.logs[index];
            index += 1;
            if n == 0 {
                // Padding only: zero contributes nothing.
                continue;
            }
            file.read_exact_at(&mut buf[..n], pos)
                .doing("reading", path)?;
            buf[n..].fill(0);
            let tables: Vec<Table> = job
                .exponents
                .iter()
                .map(|&e| Table::new(coefficient(log, e)))
                .collect();
            for p in (0..len).step_by(PIECE) {
                let end = (p + PIECE).min(len);
                for (r, t) in rec.iter_mut().zip(&tables) {
                    t.mul_acc(&mut r[p..end], &buf[p..end]);
                }
            }
        }
    }
    Ok(rec)
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
