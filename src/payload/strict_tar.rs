//! A strict reader for the tar subset pouch writes.
//!
//! General tar readers are lenient in ways an attacker can use: they differ on
//! PAX sizes versus header sizes, on repeated long-name records, on missing
//! end markers, and they read long-name and PAX records into memory without a
//! limit. pouch writes only GNU/ustar headers, with GNU long-name records
//! (`L`) for paths over 100 bytes, so this reader accepts exactly that and
//! refuses the rest:
//! - every header's checksum must be right and its magic must be ustar or GNU;
//! - a long-name record is at most [`MAX_LONG_NAME`] bytes and must be
//!   followed directly by an ordinary entry, not another record;
//! - PAX (`x`, `g`) and long-link (`K`) records are refused;
//! - sizes must be valid octal (or GNU base-256) within `u64`;
//! - the archive must end with two zero blocks; end of input before them is
//!   a truncation.
//!
//! Memory is bounded: one 512-byte header and one long name at a time.

use std::io::{self, BufRead, Read};

/// The longest GNU long-name record accepted (a 4096-byte path plus its NUL).
pub const MAX_LONG_NAME: u64 = 4097;

/// One entry's header, as read.
#[derive(Debug, Clone)]
pub struct Header {
    /// The path bytes exactly as stored (long name if one preceded).
    pub path: Vec<u8>,
    /// The type flag: `b'0'` file, `b'5'` folder, others as stored.
    pub kind: u8,
    /// Size of the entry's data.
    pub size: u64,
    /// Permission bits as stored.
    pub mode: u32,
    /// Modification time as stored.
    pub mtime: u64,
}

/// Reads headers and data from a tar stream.
pub struct TarReader<'a, R: BufRead> {
    inner: &'a mut R,
    /// Data bytes left in the current entry.
    remaining: u64,
    /// Padding bytes after the current entry's data.
    padding: u64,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("archive: {}", msg.into()),
    )
}

impl<'a, R: BufRead> TarReader<'a, R> {
    /// Reads an archive from `inner`.
    pub fn new(inner: &'a mut R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
        }
    }

    /// The next entry's header, or `None` at the end-of-archive marker. Any
    /// unread data of the previous entry is skipped first.
    pub fn next_header(&mut self) -> io::Result<Option<Header>> {
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let block = self.read_block(long_name.is_none())?;
            let Some(block) = block else {
                if long_name.is_some() {
                    return Err(invalid(
                        "a long-name record is followed by the end of the archive",
                    ));
                }
                return Ok(None);
            };
            let h = parse(&block)?;
            match h.kind {
                b'L' => {
                    if long_name.is_some() {
                        return Err(invalid("two long-name records in a row"));
                    }
                    if h.size > MAX_LONG_NAME {
                        return Err(invalid(format!(
                            "a long-name record of {} bytes (at most {MAX_LONG_NAME} are accepted)",
                            h.size
                        )));
                    }
                    let mut name = vec![0u8; h.size as usize];
                    self.inner.read_exact(&mut name).map_err(truncated)?;
                    self.skip(padding_of(h.size))?;
                    while name.last() == Some(&0) {
                        name.pop();
                    }
                    long_name = Some(name);
                }
                b'x' | b'g' => return Err(invalid("PAX extended headers are not used by pouch")),
                b'K' => return Err(invalid("long link names are not used by pouch")),
                _ => {
                    let mut h = h;
                    if let Some(name) = long_name.take() {
                        h.path = name;
                    }
                    self.remaining = h.size;
                    self.padding = padding_of(h.size);
                    return Ok(Some(h));
                }
            }
        }
    }

    /// Reads the current entry's data.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(truncated(io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    /// The current entry's data as far as the reader has it buffered (empty
    /// at the entry's end); [`TarReader::consume_data`] moves past it.
    /// Read where it lies, without a copy.
    pub fn data(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let remaining = self.remaining;
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(truncated(io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        Ok(&buf[..buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX))])
    }

    /// Moves `n` bytes past what [`TarReader::data`] showed.
    pub fn consume_data(&mut self, n: usize) {
        let n = (n as u64).min(self.remaining);
        self.remaining -= n;
        self.inner.consume(n as usize);
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(n)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut *self.inner).take(n), &mut io::sink())?;
        if copied != n {
            return Err(truncated(io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        Ok(())
    }

    /// Reads one header block; `None` for the two zero blocks ending the archive.
    fn read_block(&mut self, end_allowed: bool) -> io::Result<Option<[u8; 512]>> {
        let mut block = [0u8; 512];
        read_full(self.inner, &mut block).map_err(|e| {
            eof_as(
                e,
                "the archive ends without an end-of-archive marker (truncated)",
            )
        })?;
        if block.iter().all(|&b| b == 0) {
            if !end_allowed {
                return Ok(None);
            }
            let mut second = [0u8; 512];
            read_full(self.inner, &mut second).map_err(|e| {
                eof_as(
                    e,
                    "the archive ends in the middle of its end-of-archive marker",
                )
            })?;
            if second.iter().any(|&b| b != 0) {
                return Err(invalid("a lone zero block inside the archive"));
            }
            return Ok(None);
        }
        Ok(Some(block))
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf)
}

/// Reports running out of input as `msg`; passes other errors (a damaged
/// layer underneath) through unchanged.
fn eof_as(e: io::Error, msg: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        invalid(msg)
    } else {
        e
    }
}

fn truncated(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        invalid("an entry is truncated")
    } else {
        e
    }
}

fn padding_of(size: u64) -> u64 {
    (512 - size % 512) % 512
}

fn parse(block: &[u8; 512]) -> io::Result<Header> {
    let stored = octal(&block[148..156])
        .map_err(|_| invalid("a header's checksum field is not a number"))?;
    let computed: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u64
            }
        })
        .sum();
    if stored != computed {
        return Err(invalid("a header's checksum is wrong"));
    }
    let gnu = &block[257..265] == b"ustar  \0";
    let posix = &block[257..263] == b"ustar\0";
    if !gnu && !posix {
        return Err(invalid("a header is neither ustar nor GNU"));
    }
    let mut path = until_nul(&block[..100]).to_vec();
    if posix {
        let prefix = until_nul(&block[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&path);
            path = full;
        }
    }
    let size = number(&block[124..136]).map_err(|_| invalid("a header's size field is invalid"))?;
    let mode = octal(&block[100..108]).map_err(|_| invalid("a header's mode field is invalid"))?;
    let mtime = number(&block[136..148]).unwrap_or(0);
    Ok(Header {
        path,
        kind: block[156],
        size,
        mode: (mode & 0o7777) as u32,
        mtime,
    })
}

fn until_nul(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// An octal field: optional leading spaces, octal digits, then NUL or spaces.
fn octal(field: &[u8]) -> Result<u64, ()> {
    let text = until_nul(field);
    let text = std::str::from_utf8(text).map_err(|_| ())?.trim_matches(' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| ())
}

/// A numeric field: octal, or GNU base-256 (high bit of the first byte set).
fn number(field: &[u8]) -> Result<u64, ()> {
    if field[0] & 0x80 == 0 {
        return octal(field);
    }
    if field[0] & 0x40 != 0 {
        return Err(()); // negative
    }
    let mut v: u64 = (field[0] & 0x3f) as u64;
    for &b in &field[1..] {
        v = v
            .checked_mul(256)
            .ok_or(())?
            .checked_add(b as u64)
            .ok_or(())?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tar(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().expect("finish")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut r = bytes;
        let mut t = TarReader::new(&mut r);
        let mut out = Vec::new();
        while let Some(h) = t.next_header()? {
            let mut data = Vec::new();
            let mut buf = [0u8; 100];
            loop {
                let n = t.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            out.push((h.path, data));
        }
        Ok(out)
    }

    #[test]
    fn reads_what_the_tar_crate_writes_including_long_names() {
        let long = format!("{}/x.txt", "folder-".repeat(30));
        let bytes = write_tar(|b| {
            file(b, "a.txt", b"hello");
            file(b, &long, b"long");
        });
        let got = read_all(&bytes).expect("reads");
        assert_eq!(got[0], (b"a.txt".to_vec(), b"hello".to_vec()));
        assert_eq!(got[1], (long.into_bytes(), b"long".to_vec()));
    }

    #[test]
    fn refuses_a_missing_end_marker_and_truncation() {
        let bytes = write_tar(|b| file(b, "a.txt", b"hello"));
        let no_end = &bytes[..bytes.len() - 1024];
        assert!(read_all(no_end)
            .unwrap_err()
            .to_string()
            .contains("end-of-archive"));
        let cut = &bytes[..512 + 3];
        assert!(read_all(cut).is_err());
        let half_end = &bytes[..bytes.len() - 512];
        assert!(read_all(half_end).is_err());
    }

    #[test]
    fn refuses_a_bad_checksum() {
        let mut bytes = write_tar(|b| file(b, "a.txt", b"hello"));
        bytes[0] = b'b';
        assert!(read_all(&bytes)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
    }

    #[test]
    fn refuses_huge_and_doubled_long_names() {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(1 << 30);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'a'; 4096]);
        assert!(read_all(&bytes)
            .unwrap_err()
            .to_string()
            .contains("long-name record of 1073741824"));

        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(4);
        h.set_cksum();
        let mut record = h.as_bytes().to_vec();
        record.extend_from_slice(b"abc\0");
        record.resize(1024, 0);
        let doubled = [record.clone(), record].concat();
        assert!(read_all(&doubled)
            .unwrap_err()
            .to_string()
            .contains("two long-name records"));
    }

    #[test]
    fn refuses_pax_headers() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", b"x".as_slice())])
            .expect("pax");
        file(&mut b, "a.txt", b"a");
        let bytes = b.into_inner().expect("finish");
        assert!(read_all(&bytes).unwrap_err().to_string().contains("PAX"));
    }

    #[test]
    fn decodes_base256_sizes_and_refuses_overflow() {
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert!(number(&[0xff; 12]).is_err());
        assert_eq!(octal(b"00000000012\0"), Ok(10));
        assert!(octal(b"99999999999\0").is_err());
    }
}
