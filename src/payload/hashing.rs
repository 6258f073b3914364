//! Readers and writers that hash and count what passes through them, and
//! reading a buffer full.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

/// Reads from `r` until `buf` is full or `r` ends; returns the bytes read.
pub fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader that hashes and counts every byte read from the inner reader.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the inner reader to its end (hashing it), then returns the byte
    /// count and the sha256 (lowercase hex) of everything read.
    pub fn drain_and_finish(mut self) -> io::Result<(u64, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.count, hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// sha256 of a byte slice, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A reader that fails once more than `limit` bytes have come through: a
/// guard against decompression bombs and oversized headers.
pub struct LimitReader<R> {
    inner: R,
    remaining: u64,
    what: &'static str,
}

impl<R: Read> LimitReader<R> {
    /// Allows at most `limit` bytes; `what` names the stream in the error.
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        LimitReader {
            inner,
            remaining: limit,
            what,
        }
    }
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte beyond the limit so that overflow is noticed.
        let want = (buf.len() as u64).min(self.remaining.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than the signed manifest allows", self.what),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The limit holds for buffered reads too: the buffer shown never goes
/// beyond it, and data beyond it is the same error as for `read`.
impl<R: BufRead> BufRead for LimitReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let (remaining, what) = (self.remaining, self.what);
        let buf = self.inner.fill_buf()?;
        if remaining == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} is larger than the signed manifest allows"),
            ));
        }
        Ok(&buf[..buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX))])
    }

    fn consume(&mut self, n: usize) {
        let n = (n as u64).min(self.remaining);
        self.remaining -= n;
        self.inner.consume(n as usize);
    }
}

/// Names the layer an error came from ("age: …", "zstd: …"), so that a
/// damaged payload is reported at the layer that noticed. An error that
/// already names a lower layer passes through unchanged.
pub struct Layer<R> {
    inner: R,
    name: &'static str,
}

impl<R> Layer<R> {
    /// `inner`, its errors named `name`.
    pub fn new(inner: R, name: &'static str) -> Self {
        Layer { inner, name }
    }
}

impl<R: Read> Read for Layer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let text = e.to_string();
            if text.starts_with("age: ") || text.starts_with("zstd: ") || text.starts_with("part ")
            {
                e
            } else {
                std::io::Error::new(e.kind(), format!("{}: {text}", self.name))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_reader_stops_at_the_limit() {
        let mut r = LimitReader::new(&[7u8; 100][..], 99, "stream");
        let err = io::copy(&mut r, &mut io::sink()).expect_err("over the limit");
        assert!(err.to_string().contains("larger than"));
        let mut r = LimitReader::new(&[7u8; 100][..], 100, "stream");
        assert_eq!(
            io::copy(&mut r, &mut io::sink()).expect("at the limit"),
            100
        );
    }

    #[test]
    fn hashing_reader_hashes_everything_drained() {
        let r = HashingReader::new(&b"abc"[..]);
        let (n, h) = r.drain_and_finish().expect("reads");
        assert_eq!(n, 3);
        assert_eq!(h, sha256_hex(b"abc"));
    }
}
