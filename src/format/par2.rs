//! PAR 2.0 packets as bytes: the ones pouch writes (main, file description,
//! input file slice checksums, recovery slice, creator) and a bounded reader
//! for them.
//!
//! Every packet is a 64-byte header (magic `PAR2\0PKT`, length, MD5 of what
//! follows the hash, recovery set id, type) and a body whose length is a
//! multiple of 4; integers are little-endian. The recovery set id is the MD5
//! of the main packet's body; a file's id is the MD5 of its first 16 KiB's
//! MD5, its length and its name.

use md5::{Digest, Md5};

/// A packet's first eight bytes.
pub const MAGIC: [u8; 8] = *b"PAR2\0PKT";
/// The header's length.
pub const HEADER_LEN: usize = 64;
/// Main packet: slice size and the files of the recovery set.
pub const MAIN: [u8; 16] = *b"PAR 2.0\0Main\0\0\0\0";
/// File description packet.
pub const FILE_DESC: [u8; 16] = *b"PAR 2.0\0FileDesc";
/// Input file slice checksum packet: MD5 and CRC32 of each slice.
pub const IFSC: [u8; 16] = *b"PAR 2.0\0IFSC\0\0\0\0";
/// Recovery slice packet.
pub const RECOVERY: [u8; 16] = *b"PAR 2.0\0RecvSlic";
/// Creator packet.
pub const CREATOR: [u8; 16] = *b"PAR 2.0\0Creator\0";

/// An MD5 digest, or an id made of one.
pub type Hash = [u8; 16];

/// The MD5 of `bytes`.
pub fn md5(bytes: &[u8]) -> Hash {
    Md5::digest(bytes).into()
}

/// PAR2 orders file ids as 128-bit little-endian numbers (par2cmdline
/// compares them from the last byte); the main packet lists them so, and
/// the input slices are numbered in that order.
pub fn id_order(id: &Hash) -> u128 {
    u128::from_le_bytes(*id)
}

/// A file's id: MD5 of (MD5 of its first 16 KiB, its length, its name).
pub fn file_id(md5_16k: &Hash, length: u64, name: &str) -> Hash {
    let mut h = Md5::new();
    h.update(md5_16k);
    h.update(length.to_le_bytes());
    h.update(name.as_bytes());
    h.finalize().into()
}

/// The header of a packet of `kind` with a body of `body_len` bytes whose
/// packet hash is `hash` (see [`hash_start`]).
pub fn header(set_id: &Hash, kind: &[u8; 16], body_len: u64, hash: &Hash) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..16].copy_from_slice(&(HEADER_LEN as u64 + body_len).to_le_bytes());
    h[16..32].copy_from_slice(hash);
    h[32..48].copy_from_slice(set_id);
    h[48..64].copy_from_slice(kind);
    h
}

/// The packet hash's state before the body: it covers set id, type, body.
pub fn hash_start(set_id: &Hash, kind: &[u8; 16]) -> Md5 {
    let mut h = Md5::new();
    h.update(set_id);
    h.update(kind);
    h
}

/// A whole packet of `kind` around `body` (whose length is a multiple of 4).
pub fn packet(set_id: &Hash, kind: &[u8; 16], body: &[u8]) -> Vec<u8> {
    let mut h = hash_start(set_id, kind);
    h.update(body);
    let mut p = header(set_id, kind, body.len() as u64, &h.finalize().into()).to_vec();
    p.extend_from_slice(body);
    p
}

/// The main packet's body: the slice size, then the ids of the recovery
/// set's files in [`id_order`].
pub fn main_body(slice_size: u64, ids: &[Hash]) -> Vec<u8> {
    let mut b = slice_size.to_le_bytes().to_vec();
    b.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    ids.iter().for_each(|id| b.extend_from_slice(id));
    b
}

/// What a file description packet says of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDesc {
    /// The file's id ([`file_id`]).
    pub id: Hash,
    /// MD5 of the whole file.
    pub md5: Hash,
    /// MD5 of its first 16 KiB (the whole file if shorter).
    pub md5_16k: Hash,
    /// Its length in bytes.
    pub length: u64,
    /// Its name, ASCII, no folder.
    pub name: String,
}

impl FileDesc {
    /// The packet body; the name is padded with NULs to a multiple of 4.
    pub fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(56 + self.name.len() + 3);
        b.extend_from_slice(&self.id);
        b.extend_from_slice(&self.md5);
        b.extend_from_slice(&self.md5_16k);
        b.extend_from_slice(&self.length.to_le_bytes());
        b.extend_from_slice(self.name.as_bytes());
        pad4(&mut b);
        b
    }
}

/// The input file slice checksum body: the file's id, then each slice's
/// MD5 and CRC32 (the last slice zero-padded to the slice size).
pub fn ifsc_body(id: &Hash, slices: &[(Hash, u32)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + 20 * slices.len());
    b.extend_from_slice(id);
    for (md5, crc) in slices {
        b.extend_from_slice(md5);
        b.extend_from_slice(&crc.to_le_bytes());
    }
    b
}

/// The creator packet's body.
pub fn creator_body(client: &str) -> Vec<u8> {
    let mut b = client.as_bytes().to_vec();
    pad4(&mut b);
    b
}

fn pad4(b: &mut Vec<u8>) {
    while b.len() % 4 != 0 {
        b.push(0);
    }
}

/// No packet other than a recovery slice is larger than this: an input
/// file slice checksum packet of the most slices PAR2 numbers is 640 KiB.
pub const MAX_PACKET_BODY: u64 = 4 << 20;
/// No file holds more packets than this that are read.
pub const MAX_PACKETS: usize = 70_000;

/// The packets of a recovery set a reader needs to know what each input
/// slice must hash to: the main, file description and slice checksum
/// packets (recovery slices are skipped, not read).
#[derive(Debug, Default)]
pub struct Critical {
    /// The slice size, from the main packet.
    pub slice_size: u64,
    /// The recovery set's file ids, in the main packet's order (the order
    /// in which the input slices are numbered).
    pub ids: Vec<Hash>,
    /// The recovery slices: exponent, and where its data starts in the file.
    pub recovery: Vec<(u32, u64)>,
    /// The files' descriptions.
    pub files: Vec<FileDesc>,
    /// Each file's slice checksums, by its id.
    pub slices: Vec<(Hash, Vec<(Hash, u32)>)>,
}

/// Reads the critical packets of a PAR2 file of `len` bytes from `r`, in
/// bounded memory and time: every length is checked against what is left
/// before anything is read, recovery bodies are skipped, no other body may
/// exceed [`MAX_PACKET_BODY`], and a packet whose hash does not match is
/// refused.
pub fn read_critical(r: &mut dyn std::io::Read, len: u64) -> Result<Critical, String> {
    let mut out = Critical::default();
    let mut left = len;
    let mut count = 0usize;
    while left > 0 {
        count += 1;
        if count > MAX_PACKETS || left < HEADER_LEN as u64 {
            return Err("more packets than a PAR2 file pouch writes holds".into());
        }
        let mut head = [0u8; HEADER_LEN];
        r.read_exact(&mut head).map_err(|e| e.to_string())?;
        let plen = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        if head[..8] != MAGIC || plen < HEADER_LEN as u64 || plen % 4 != 0 || plen > left {
            return Err("a packet header is malformed or claims more than the file holds".into());
        }
        let at = len - left;
        left -= plen;
        let body_len = plen - HEADER_LEN as u64;
        let kind: [u8; 16] = head[48..64].try_into().unwrap_or_default();
        if kind == RECOVERY {
            let mut e = [0u8; 4];
            if body_len < 4 || r.read_exact(&mut e).is_err() {
                return Err("a recovery packet is cut short".into());
            }
            out.recovery
                .push((u32::from_le_bytes(e), at + HEADER_LEN as u64 + 4));
            let body_len = body_len - 4;
            let skipped = std::io::copy(
                &mut std::io::Read::take(&mut *r, body_len),
                &mut std::io::sink(),
            )
            .map_err(|e| e.to_string())?;
            if skipped != body_len {
                return Err("a recovery packet is cut short".into());
            }
            continue;
        }
        if body_len > MAX_PACKET_BODY {
            return Err("a packet is larger than any pouch writes".into());
        }
        let mut body = vec![0u8; body_len as usize];
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
        let mut h = hash_start(head[32..48].try_into().unwrap_or(&[0; 16]), &kind);
        h.update(&body);
        if h.finalize().as_slice() != &head[16..32] {
            return Err("a packet's hash does not match its contents".into());
        }
        take_packet(&mut out, &kind, &body)?;
    }
    Ok(out)
}

fn take_packet(out: &mut Critical, kind: &[u8; 16], body: &[u8]) -> Result<(), String> {
    let hash = |at: usize| -> Hash { body[at..at + 16].try_into().unwrap_or_default() };
    let short = || "a packet is shorter than its kind requires".to_string();
    if *kind == MAIN {
        if body.len() < 12 {
            return Err(short());
        }
        out.slice_size = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
        let count = u32::from_le_bytes(body[8..12].try_into().unwrap_or_default()) as usize;
        if count > (body.len() - 12) / 16 {
            return Err("the main packet names more files than it holds".into());
        }
        out.ids = (0..count).map(|i| hash(12 + 16 * i)).collect();
    } else if *kind == FILE_DESC {
        if body.len() < 56 {
            return Err(short());
        }
        let name = String::from_utf8_lossy(&body[56..]);
        out.files.push(FileDesc {
            id: hash(0),
            md5: hash(16),
            md5_16k: hash(32),
            length: u64::from_le_bytes(body[48..56].try_into().unwrap_or_default()),
            name: name.trim_end_matches('\0').to_string(),
        });
    } else if *kind == IFSC {
        if body.len() < 16 || (body.len() - 16) % 20 != 0 {
            return Err(short());
        }
        let sums = body[16..]
            .chunks_exact(20)
            .map(|c| {
                let md5: Hash = c[..16].try_into().unwrap_or_default();
                (
                    md5,
                    u32::from_le_bytes(c[16..].try_into().unwrap_or_default()),
                )
            })
            .collect();
        out.slices.push((hash(0), sums));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_have_the_spec_layout() {
        let set = [7u8; 16];
        let p = packet(&set, &CREATOR, &creator_body("pouch"));
        assert_eq!(&p[..8], b"PAR2\0PKT");
        assert_eq!(u64::from_le_bytes(p[8..16].try_into().expect("8")), 72);
        assert_eq!(p.len(), 72);
        assert_eq!(&p[16..32], &md5(&p[32..]));
        assert_eq!(&p[64..], b"pouch\0\0\0");
    }

    #[test]
    fn the_reader_refuses_lies_about_lengths_and_hashes() {
        let set = [1u8; 16];
        let good = packet(&set, &MAIN, &main_body(4096, &[[2; 16]]));
        let c = read_critical(&mut &good[..], good.len() as u64).expect("good");
        assert_eq!(c.slice_size, 4096);
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut odd = good.clone();
        odd[8..16].copy_from_slice(&66u64.to_le_bytes());
        let mut forged = good.clone();
        forged[70] ^= 1;
        let mut magic = good.clone();
        magic[0] = b'X';
        for (what, bytes) in [
            ("huge", huge),
            ("odd", odd),
            ("forged", forged),
            ("magic", magic),
        ] {
            assert!(
                read_critical(&mut &bytes[..], bytes.len() as u64).is_err(),
                "{what}"
            );
        }
        // A body over the bound is refused before it is read.
        let mut big = header(&set, &IFSC, MAX_PACKET_BODY + 4, &[0; 16]).to_vec();
        big.resize(big.len() + 8, 0);
        let claimed = MAX_PACKET_BODY + 4 + HEADER_LEN as u64;
        assert!(read_critical(&mut &big[..], claimed).is_err());
        // A main packet claiming more files than it holds.
        let mut lying = main_body(4096, &[[2; 16]]);
        lying[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let p = packet(&set, &MAIN, &lying);
        assert!(read_critical(&mut &p[..], p.len() as u64).is_err());
        // A recovery packet too short to hold its exponent.
        let p = packet(&set, &RECOVERY, &[]);
        assert!(read_critical(&mut &p[..], p.len() as u64).is_err());
        // Truncated: fewer bytes than the length given.
        assert!(read_critical(&mut &good[..10], good.len() as u64).is_err());
    }

    #[test]
    fn ids_order_from_the_last_byte() {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a[0] = 0xff;
        b[15] = 1;
        assert!(id_order(&a) < id_order(&b));
    }
}
