//! Multiplying blocks by constants of GF(2^16) with XORs only: the hot loop
//! of encoding and repair.
//!
//! Multiplication by a constant `c` is linear over GF(2): bit `j` of `c·w`
//! is the XOR of the bits `i` of `w` for which bit `j` of `c·2^i` is set.
//! So a block of words is held bit-sliced, as 16 bit planes (plane `b`
//! holds bit `b` of every word), and `acc += c·x` becomes, for each output
//! plane, an XOR of input planes: wide XORs of `u64` lanes that the
//! compiler turns into SIMD instructions, with no `unsafe` and no lookup
//! per word. Each input block is transformed once and serves every
//! recovery slice; a recovery block is transformed back once, at the end.
//!
//! To halve the XORs, the 16 input planes are taken in four groups of four
//! and each group's 16 XOR combinations are made once per input block
//! ([`Combos`]); an output plane is then the XOR of one combination from
//! each group, picked by four 4-bit indices that depend only on `c`
//! ([`Program`]).
//!
//! The layout is private to pouch: only the bytes given back by
//! [`to_bytes`] are PAR 2.0's.

use super::gf16::mul;

/// `u64` lanes per plane: 256 words, 512 bytes a block. Four lanes make
/// two 128-bit operations per plane, enough independent work for the
/// baseline x86-64 target (SSE2) without spilling registers.
pub const LANES: usize = 4;
/// Bytes per block.
pub const BLOCK: usize = 128 * LANES;

/// One bit plane of a block: bit `b` of each of its 64 × [`LANES`] words.
pub type Plane = [u64; LANES];
/// A block of 64 × [`LANES`] words as 16 bit planes.
pub type Block = [Plane; 16];

/// A block of zeros.
pub const ZERO: Block = [[0; LANES]; 16];

/// The XOR combinations of each group of four planes of a block:
/// `combos[g][m]` is the XOR of the planes `4g + t` whose bit `t` is set in
/// `m`.
pub struct Combos([[Plane; 16]; 4]);

/// What multiplying by one constant takes: for output plane `j`, the index
/// into each group's [`Combos`].
#[derive(Clone, Copy)]
pub struct Program([[u8; 4]; 16]);

impl Program {
    /// The program of `c`.
    pub fn new(c: u16) -> Program {
        let column: [u16; 16] = std::array::from_fn(|i| mul(c, 1 << i));
        Program(std::array::from_fn(|j| {
            std::array::from_fn(|g| {
                (0..4).fold(0u8, |m, t| m | (((column[4 * g + t] >> j) & 1) as u8) << t)
            })
        }))
    }
}

impl Combos {
    /// The combinations of `x`'s planes.
    pub fn new(x: &Block) -> Combos {
        let mut c = Combos([[[0; LANES]; 16]; 4]);
        c.set(x);
        c
    }

    /// Makes these the combinations of `x`'s planes.
    pub fn set(&mut self, x: &Block) {
        let c = self;
        for (g, t) in c.0.iter_mut().enumerate() {
            for bit in 0..4 {
                let step = 1 << bit;
                let plane = x[4 * g + bit];
                for m in 0..step {
                    t[step + m] = xor(&t[m], &plane);
                }
            }
        }
    }
}

/// `acc[b] ^= Σ c_s · x_s[b]` for each block `b`, over the `S` terms
/// `(combos_s, program_s)` (the combinations of each `x_s[b]` and the
/// program of `c_s`): each plane's indices are looked up once for all the
/// blocks, and each plane of `acc` is loaded and stored once for all the
/// terms.
pub fn mul_acc<const S: usize>(acc: &mut [Block], terms: [(&[Combos], &Program); S]) {
    for j in 0..16 {
        let idx: [[usize; 4]; S] = terms.map(|(_, p)| p.0[j].map(|m| (m & 15) as usize));
        for (b, a) in acc.iter_mut().enumerate() {
            let mut sum = [0u64; LANES];
            for ((combos, _), idx) in terms.iter().zip(&idx) {
                let [t0, t1, t2, t3] = &combos[b].0;
                let (p0, p1, p2, p3) = (&t0[idx[0]], &t1[idx[1]], &t2[idx[2]], &t3[idx[3]]);
                for l in 0..LANES {
                    sum[l] ^= p0[l] ^ p1[l] ^ p2[l] ^ p3[l];
                }
            }
            for (a, s) in a[j].iter_mut().zip(sum) {
                *a ^= s;
            }
        }
    }
}

fn xor(a: &Plane, b: &Plane) -> Plane {
    std::array::from_fn(|l| a[l] ^ b[l])
}

/// Transposes the 16 × 16 bit matrix held in each 16-bit field of the rows
/// (row `r` of field `f` is bits `16f .. 16f + 16` of `rows[r]`), lane by
/// lane: swap the off-diagonal 8 × 8 blocks, then the 4 × 4 blocks within
/// each, then 2 × 2, then single bits. Its own inverse.
fn transpose(rows: &mut Block) {
    const MASKS: [(usize, u64); 4] = [
        (8, 0x00FF_00FF_00FF_00FF),
        (4, 0x0F0F_0F0F_0F0F_0F0F),
        (2, 0x3333_3333_3333_3333),
        (1, 0x5555_5555_5555_5555),
    ];
    for (s, mask) in MASKS {
        for r in (0..16).filter(|r| r & s == 0) {
            let (lo, hi) = rows.split_at_mut(r + s);
            for (a, b) in lo[r].iter_mut().zip(hi[0].iter_mut()) {
                let t = ((*a >> s) ^ *b) & mask;
                *b ^= t;
                *a ^= t << s;
            }
        }
    }
}

/// The block of [`BLOCK`] little-endian bytes (`u64` number `r·LANES + l`
/// of the bytes is row `r`, lane `l`).
pub fn from_bytes(bytes: &[u8; BLOCK]) -> Block {
    let mut rows = ZERO;
    for (k, chunk) in bytes.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        rows[k / LANES][k % LANES] = u64::from_le_bytes(w);
    }
    transpose(&mut rows);
    rows
}

/// The bytes of a block, as [`from_bytes`] took them.
pub fn to_bytes(block: &Block, out: &mut [u8; BLOCK]) {
    let mut rows = *block;
    transpose(&mut rows);
    for (k, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&rows[k / LANES][k % LANES].to_le_bytes());
    }
}

/// Transforms `bytes` (a multiple of [`BLOCK`] long) into `blocks`.
pub fn load(bytes: &[u8], blocks: &mut [Block]) {
    for (b, chunk) in blocks.iter_mut().zip(bytes.chunks_exact(BLOCK)) {
        if let Ok(chunk) = chunk.try_into() {
            *b = from_bytes(chunk);
        }
    }
}

/// Transforms `blocks` back into `bytes` (a multiple of [`BLOCK`] long).
pub fn store(blocks: &[Block], bytes: &mut [u8]) {
    for (b, chunk) in blocks.iter().zip(bytes.chunks_exact_mut(BLOCK)) {
        if let Ok(chunk) = chunk.try_into() {
            to_bytes(b, chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gf16::Table;
    use super::*;

    /// Deterministic pseudo-random bytes: the top byte of a Weyl sequence
    /// times a large odd constant.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let step = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (1..=n as u64)
            .map(|i| (i.wrapping_mul(step).wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 56) as u8)
            .collect()
    }

    #[test]
    fn the_transform_goes_there_and_back() {
        let bytes = noise(7, 3 * BLOCK);
        let mut blocks = vec![ZERO; 3];
        load(&bytes, &mut blocks);
        assert_ne!(blocks[0], ZERO);
        let mut back = vec![0u8; bytes.len()];
        store(&blocks, &mut back);
        assert_eq!(back, bytes);
    }

    #[test]
    fn plane_b_holds_bit_b_of_each_word() {
        // Word 0 (the first two bytes) is row 0, lane 0, field 0, which the
        // transpose puts at bit 0 of lane 0 of each plane.
        let mut bytes = [0u8; BLOCK];
        bytes[..2].copy_from_slice(&0b1000_0000_0000_0101u16.to_le_bytes());
        let b = from_bytes(&bytes);
        let bits: Vec<u64> = b.iter().map(|p| p[0] & 1).collect();
        assert_eq!(bits, [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(b
            .iter()
            .all(|p| p[0] >> 1 == 0 && p[1..].iter().all(|&l| l == 0)));
    }

    #[test]
    fn multiplying_agrees_with_the_lookup_tables() {
        let mut constants: Vec<u16> = vec![0, 1, 2, 0x8000, 0xFFFF, 0x100B];
        constants.extend(
            noise(3, 40)
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        );
        let n = 2 * BLOCK;
        for (i, &c) in constants.iter().enumerate() {
            let src = noise(100 + i as u64, n);
            let start = noise(200 + i as u64, n);
            let mut want = start.clone();
            Table::new(c).mul_acc(&mut want, &src);
            let (mut x, mut acc) = (vec![ZERO; 2], vec![ZERO; 2]);
            load(&src, &mut x);
            load(&start, &mut acc);
            let p = Program::new(c);
            let combos: Vec<Combos> = x.iter().map(Combos::new).collect();
            mul_acc(&mut acc, [(&combos[..], &p)]);
            let mut got = vec![0u8; n];
            store(&acc, &mut got);
            assert!(got == want, "c = {c:#06x}: products differ");
        }
    }

    #[test]
    fn sums_of_products_agree_word_by_word() {
        // acc = 3·x + 0xBEEF·y + x, checked against the field's own mul.
        let (x, y) = (noise(11, BLOCK), noise(12, BLOCK));
        let (xb, yb) = (
            from_bytes(&x[..].try_into().expect("block")),
            from_bytes(&y[..].try_into().expect("block")),
        );
        let mut acc = ZERO;
        // Two terms in one pass, then one more on its own.
        let (p, q) = (Program::new(3), Program::new(0xBEEF));
        let (cx, cy) = ([Combos::new(&xb)], [Combos::new(&yb)]);
        mul_acc(
            std::slice::from_mut(&mut acc),
            [(&cx[..], &p), (&cy[..], &q)],
        );
        mul_acc(
            std::slice::from_mut(&mut acc),
            [(&cx[..], &Program::new(1))],
        );
        let mut out = [0u8; BLOCK];
        to_bytes(&acc, &mut out);
        for w in 0..BLOCK / 2 {
            let word = |b: &[u8]| u16::from_le_bytes([b[2 * w], b[2 * w + 1]]);
            assert_eq!(
                word(&out),
                mul(3, word(&x)) ^ mul(0xBEEF, word(&y)) ^ word(&x),
                "word {w}"
            );
        }
    }
}
