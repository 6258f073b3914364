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
    fn ids_order_from_the_last_byte() {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a[0] = 0xff;
        b[15] = 1;
        assert!(id_order(&a) < id_order(&b));
    }
}
