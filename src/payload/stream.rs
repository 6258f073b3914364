//! age's payload: the STREAM construction over ChaCha20-Poly1305, on ring's
//! AEAD.
//!
//! The payload key is HKDF-SHA256 of the file key with the payload's 16-byte
//! nonce as salt. The plaintext is cut into chunks of 64 KiB, each sealed
//! with a 12-byte nonce: an 11-byte big-endian chunk counter and a last-chunk
//! flag (1 on the last chunk only). Only the last chunk may be shorter, and
//! it may be empty only when the whole plaintext is. This is exactly what
//! the age crate writes and reads (and what the community test vectors
//! check); ring's ChaCha20-Poly1305, which seals and opens each chunk in one
//! pass, is twice as fast as the two passes of the age crate's
//! `chacha20poly1305` on the machines pouch runs on.

use std::io::{self, BufRead, Read, Write};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

use super::hashing::fill;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 << 10;
/// The Poly1305 tag after each chunk.
const TAG: usize = 16;
/// Ciphertext bytes per chunk, tag included.
const SEALED: usize = CHUNK + TAG;
/// The HKDF label of the payload key.
const PAYLOAD_LABEL: &[u8] = b"payload";

fn payload_key(file_key: &[u8; 16], nonce: &[u8; 16]) -> LessSafeKey {
    let key = Zeroizing::new(age_core::primitives::hkdf(nonce, PAYLOAD_LABEL, file_key));
    // A 32-byte key is what ChaCha20-Poly1305 takes, so this cannot fail.
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, key.as_slice())
        .unwrap_or_else(|_| unreachable!("a 32-byte ChaCha20-Poly1305 key"));
    LessSafeKey::new(unbound)
}

/// The nonce of chunk `counter`: an 11-byte big-endian counter, then the flag.
fn chunk_nonce(counter: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The plaintext of an age payload read from `input`, which starts just
/// after the header's 16-byte nonce. Every chunk is authenticated before a
/// byte of it is returned; a stream cut short, extended, reordered or
/// altered is an error, never a shorter plaintext.
pub struct Decrypting<R> {
    input: R,
    key: LessSafeKey,
    /// The next chunk's number.
    counter: u64,
    done: bool,
    /// Why an earlier read failed: every later read fails too, so that a
    /// caller reading on after an error never takes what follows for the
    /// payload's end or its continuation.
    failed: Option<(io::ErrorKind, String)>,
    /// A chunk decrypted for a caller whose buffer was too small for it:
    /// `buf[start..end]` is still to be returned.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: BufRead> Decrypting<R> {
    /// Decrypts with the payload key of `file_key` and `nonce`.
    pub fn new(input: R, file_key: &[u8; 16], nonce: &[u8; 16]) -> Self {
        Decrypting {
            input,
            key: payload_key(file_key, nonce),
            counter: 0,
            done: false,
            failed: None,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// Reads, authenticates and decrypts the next chunk into `dst` (at
    /// least [`SEALED`] bytes); returns its plaintext length.
    fn next_chunk(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let sealed = &mut dst[..SEALED];
        let filled = fill(&mut self.input, sealed)?;
        // A full chunk is the last one when nothing follows it; a short
        // one was followed by the end of the input.
        let last = filled < SEALED || self.at_end()?;
        if filled < TAG {
            return Err(invalid(match (filled, self.counter) {
                (0, 0) => "the payload has no chunks",
                (0, _) => "the payload is truncated: it ends before its last chunk",
                _ => "the payload is truncated: a chunk is shorter than its tag",
            }));
        }
        let nonce = chunk_nonce(self.counter, last);
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed[..filled])
            .map_err(|_| {
                invalid(if last {
                    "the last chunk fails authentication: the payload is damaged, altered or cut short"
                } else {
                    "a chunk fails authentication: the payload is damaged or altered"
                })
            })?
            .len();
        if last && plain == 0 && self.counter > 0 {
            return Err(invalid(
                "the last chunk is empty, which only an empty payload may be",
            ));
        }
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| invalid("the payload has more chunks than its nonce can count"))?;
        self.done = last;
        Ok(plain)
    }

    fn at_end(&mut self) -> io::Result<bool> {
        loop {
            match self.input.fill_buf() {
                Ok(rest) => return Ok(rest.is_empty()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Decrypting::next_chunk`], remembering a failure.
    fn chunk_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, why)) = &self.failed {
            return Err(io::Error::new(*kind, why.clone()));
        }
        self.next_chunk(dst).inspect_err(|e| {
            self.failed = Some((e.kind(), e.to_string()));
        })
    }
}

impl<R: BufRead> Read for Decrypting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if out.len() >= SEALED {
                // Decrypted where the caller wants it: no copy.
                return self.chunk_into(out);
            }
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(SEALED, 0);
            let got = self.chunk_into(&mut buf);
            self.buf = buf;
            (self.start, self.end) = (0, got?);
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// An age payload written to `output` (after the header and its nonce): the
/// chunks of what is written, sealed. [`Encrypting::finish`] seals the last
/// one; without it the payload is incomplete and no reader accepts it.
pub struct Encrypting<W> {
    output: W,
    key: LessSafeKey,
    counter: u64,
    /// The chunk being filled, with room for its tag.
    buf: Vec<u8>,
}

impl<W: Write> Encrypting<W> {
    /// Encrypts with the payload key of `file_key` and `nonce`.
    pub fn new(output: W, file_key: &[u8; 16], nonce: &[u8; 16]) -> Self {
        Encrypting {
            output,
            key: payload_key(file_key, nonce),
            counter: 0,
            buf: Vec::with_capacity(SEALED),
        }
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(self.counter, last);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut self.buf)
            .map_err(|_| io::Error::other("a chunk could not be sealed"))?;
        self.buf.extend_from_slice(tag.as_ref());
        self.output.write_all(&self.buf)?;
        self.buf.clear();
        self.counter = self.counter.checked_add(1).ok_or_else(|| {
            io::Error::other("the payload has more chunks than a nonce can count")
        })?;
        Ok(())
    }

    /// Seals the last chunk and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.output.flush()?;
        Ok(self.output)
    }
}

impl<W: Write> Write for Encrypting<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data comes: the last chunk
        // may be full, and only `finish` knows it is the last.
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(plain: &[u8]) -> Vec<u8> {
        let mut w = Encrypting::new(Vec::new(), &[1; 16], &[2; 16]);
        w.write_all(plain).expect("write");
        w.finish().expect("finish")
    }

    fn opened(sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decrypting::new(sealed, &[1; 16], &[2; 16]).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_length_round_trips_in_any_read_size() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = sealed(&plain);
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(file.len(), len + chunks * TAG, "{len}");
            assert_eq!(opened(&file).expect("opens"), plain, "{len}");
            // Reads smaller than a chunk go through the reader's own buffer.
            let mut r = Decrypting::new(file.as_slice(), &[1; 16], &[2; 16]);
            let mut got = Vec::new();
            let mut small = [0u8; 1000];
            loop {
                let n = r.read(&mut small).expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&small[..n]);
            }
            assert_eq!(got, plain, "{len}, small reads");
        }
    }

    #[test]
    fn a_stream_cut_extended_or_altered_is_refused() {
        let plain = vec![7u8; 2 * CHUNK + 100];
        let file = sealed(&plain);
        let cut_at_chunk = &file[..SEALED];
        let cut_in_chunk = &file[..SEALED + 50];
        let mut extended = file.clone();
        extended.extend_from_slice(&[0; 20]);
        let mut flipped = file.clone();
        flipped[SEALED + 3] ^= 1;
        let mut swapped = file[SEALED..2 * SEALED].to_vec();
        swapped.extend_from_slice(&file[..SEALED]);
        swapped.extend_from_slice(&file[2 * SEALED..]);
        for (what, bytes) in [
            ("cut at a chunk", cut_at_chunk),
            ("cut in a chunk", cut_in_chunk),
            ("extended", &extended),
            ("a bit flipped", &flipped),
            ("chunks swapped", &swapped),
            ("empty", &[][..]),
            ("shorter than a tag", &file[..10]),
        ] {
            assert!(opened(bytes).is_err(), "{what}");
        }
        // Reading on after a failure fails again, at every read size.
        for size in [SEALED, 100] {
            let mut r = Decrypting::new(flipped.as_slice(), &[1; 16], &[2; 16]);
            let mut buf = vec![0u8; size];
            while r.read(&mut buf).is_ok() {}
            for _ in 0..3 {
                assert!(r.read(&mut buf).is_err(), "read size {size}");
            }
        }
        // An empty last chunk after a full one: what a writer that sealed
        // every full chunk at once would write.
        let mut w = Encrypting::new(Vec::new(), &[1; 16], &[2; 16]);
        w.buf.extend_from_slice(&[3; CHUNK]);
        w.seal(false).expect("seal");
        let empty_last = w.finish().expect("finish");
        assert_eq!(empty_last.len(), SEALED + TAG);
        let err = opened(&empty_last).expect_err("an empty last chunk");
        assert!(err.to_string().contains("last chunk is empty"), "{err}");
    }

    #[test]
    fn the_age_crate_reads_what_this_writes_and_back() {
        // The age crate's own stream, through a whole age file: encrypted by
        // the crate, decrypted here (and the other way in crypto's tests).
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..(3 * CHUNK + 77)).map(|i| (i * 7 % 256) as u8).collect();
        let mut file = Vec::new();
        let e = age::Encryptor::with_recipients(std::iter::once(&id.to_public() as _))
            .expect("recipients");
        let mut w = e.wrap_output(&mut file).expect("header");
        w.write_all(&plain).expect("write");
        w.finish().expect("finish");
        let ids = [crate::payload::crypto::Identity::X25519(id)];
        let mut r = crate::payload::crypto::open(file.as_slice(), &ids).expect("opens");
        let mut got = Vec::new();
        r.read_to_end(&mut got).expect("reads");
        assert_eq!(got, plain);
    }
}
