//! Arithmetic in GF(2^16), the field PAR 2.0's Reed–Solomon code works in:
//! generator polynomial x^16 + x^12 + x^3 + x + 1 (0x1100B), 16-bit words
//! stored little-endian.
//!
//! Multiplying a whole block by one constant is the hot loop of both
//! encoding and repair; it is done bit-sliced, with XORs only (see
//! [`planes`](super::planes)). The split lookup tables par2cmdline uses
//! (`Table`, tests only: one table of `c·x` for the low byte `x` of a word
//! and one of `c·(x << 8)` for the high byte) are the reference it is
//! tested against.

use std::sync::OnceLock;

/// The field's order minus one: the multiplicative group's size.
pub const ORDER: u32 = 65535;
const POLY: u32 = 0x1100B;

struct Logs {
    log: Vec<u16>,
    /// `exp[i]` for `i` in `0..2 * ORDER`, so that a sum of two logs needs
    /// no reduction.
    exp: Vec<u16>,
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let mut log = vec![0u16; 65536];
        let mut exp = vec![0u16; 2 * ORDER as usize];
        let mut x: u32 = 1;
        for i in 0..ORDER as usize {
            exp[i] = x as u16;
            exp[i + ORDER as usize] = x as u16;
            log[x as usize] = i as u16;
            x <<= 1;
            if x & 0x10000 != 0 {
                x ^= POLY;
            }
        }
        Logs { log, exp }
    })
}

/// `a · b` in the field.
pub fn mul(a: u16, b: u16) -> u16 {
    if a == 0 || b == 0 {
        return 0;
    }
    let l = logs();
    l.exp[l.log[a as usize] as usize + l.log[b as usize] as usize]
}

/// `1 / a`; `None` for 0.
pub fn inv(a: u16) -> Option<u16> {
    if a == 0 {
        return None;
    }
    let l = logs();
    Some(l.exp[(ORDER - l.log[a as usize] as u32) as usize % ORDER as usize])
}

/// `2^e`, the generator raised to `e`.
pub fn exp(e: u64) -> u16 {
    logs().exp[(e % ORDER as u64) as usize]
}

/// The constants PAR 2.0 gives the input slices, in order: the powers
/// `2^n` of the generator whose exponent `n` shares no factor with 65535
/// (so that each has the full order and the code stays invertible).
/// Input slice `i`'s row in recovery block `e` is `base(i)^e`.
pub fn input_logs(count: usize) -> Vec<u32> {
    (1..ORDER)
        .filter(|n| n % 3 != 0 && n % 5 != 0 && n % 17 != 0 && n % 257 != 0)
        .take(count)
        .collect()
}

/// The coefficient of the input slice whose constant is `2^log` in the
/// recovery block of exponent `e`: `(2^log)^e`.
pub fn coefficient(log: u32, e: u32) -> u16 {
    exp(log as u64 * e as u64)
}

/// The inverse of the square matrix `m` (rows of columns) by Gauss–Jordan
/// elimination; `None` when it is singular.
pub fn invert(mut m: Vec<Vec<u16>>) -> Option<Vec<Vec<u16>>> {
    let n = m.len();
    let mut out: Vec<Vec<u16>> = (0..n)
        .map(|i| (0..n).map(|j| u16::from(i == j)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| m[r][col] != 0)?;
        m.swap(col, pivot);
        out.swap(col, pivot);
        let scale = inv(m[col][col])?;
        for j in 0..n {
            m[col][j] = mul(m[col][j], scale);
            out[col][j] = mul(out[col][j], scale);
        }
        for r in 0..n {
            let f = m[r][col];
            if r == col || f == 0 {
                continue;
            }
            for j in 0..n {
                m[r][j] ^= mul(f, m[col][j]);
                out[r][j] ^= mul(f, out[col][j]);
            }
        }
    }
    Some(out)
}

/// The two lookup tables of one constant: `[c·x | x < 256]` then
/// `[c·(x << 8) | x < 256]`.
#[cfg(test)]
pub struct Table {
    lo: [u16; 256],
    hi: [u16; 256],
}

#[cfg(test)]
impl Table {
    /// The tables of `c`, built from its products with the 16 single bits
    /// (each entry one XOR).
    pub fn new(c: u16) -> Table {
        let mut t = Table {
            lo: [0; 256],
            hi: [0; 256],
        };
        for bit in 0..8 {
            let (l, h) = (mul(c, 1 << bit), mul(c, 1 << (bit + 8)));
            let step = 1usize << bit;
            for x in 0..step {
                t.lo[step + x] = t.lo[x] ^ l;
                t.hi[step + x] = t.hi[x] ^ h;
            }
        }
        t
    }

    fn word(&self, w: u64) -> u64 {
        (self.lo[(w & 0xff) as usize] ^ self.hi[((w >> 8) & 0xff) as usize]) as u64
    }

    /// `dst ^= c · src`, word by word; both of the same even length.
    pub fn mul_acc(&self, dst: &mut [u8], src: &[u8]) {
        let mut d8 = dst.chunks_exact_mut(8);
        let mut s8 = src.chunks_exact(8);
        for (d, s) in (&mut d8).zip(&mut s8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(s);
            let w = u64::from_le_bytes(b);
            let p = self.word(w)
                | self.word(w >> 16) << 16
                | self.word(w >> 32) << 32
                | self.word(w >> 48) << 48;
            b.copy_from_slice(d);
            d.copy_from_slice(&(u64::from_le_bytes(b) ^ p).to_le_bytes());
        }
        let (d, s) = (d8.into_remainder(), s8.remainder());
        for (d, s) in d.chunks_exact_mut(2).zip(s.chunks_exact(2)) {
            let p = self.word(u16::from_le_bytes([s[0], s[1]]) as u64) as u16;
            let v = u16::from_le_bytes([d[0], d[1]]) ^ p;
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_laws_hold() {
        for a in [1u16, 2, 3, 0x8000, 0x1234, 0xffff] {
            assert_eq!(mul(a, inv(a).expect("nonzero")), 1, "{a:#x}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
        // x^16 = x^12 + x^3 + x + 1
        assert_eq!(mul(0x8000, 2), 0x100B);
        assert_eq!(exp(16), 0x100B);
    }

    #[test]
    fn tables_multiply_as_the_field_does() {
        let c = 0xBEEF;
        let t = Table::new(c);
        let src: Vec<u8> = (0..38u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut dst = vec![0x5Au8; 38];
        t.mul_acc(&mut dst, &src);
        for k in 0..19 {
            let s = u16::from_le_bytes([src[2 * k], src[2 * k + 1]]);
            let d = u16::from_le_bytes([dst[2 * k], dst[2 * k + 1]]);
            assert_eq!(d, 0x5A5A ^ mul(c, s), "word {k}");
        }
    }

    #[test]
    fn inverting_gives_the_identity() {
        let m: Vec<Vec<u16>> = (0..4u32)
            .map(|e| input_logs(4).iter().map(|&l| coefficient(l, e)).collect())
            .collect();
        let inv = invert(m.clone()).expect("invertible");
        for (i, row) in m.iter().enumerate() {
            let product: Vec<u16> = (0..4)
                .map(|j| (0..4).fold(0u16, |acc, k| acc ^ mul(row[k], inv[k][j])))
                .collect();
            let unit: Vec<u16> = (0..4).map(|j| u16::from(i == j)).collect();
            assert_eq!(product, unit, "row {i}");
        }
        assert!(invert(vec![vec![1, 1], vec![1, 1]]).is_none());
    }

    #[test]
    fn input_constants_are_par2s() {
        // The first logs PAR 2.0 uses: 1, 2, 4, 7, 8, 11, 13, 14, 16, ...
        assert_eq!(input_logs(9), [1, 2, 4, 7, 8, 11, 13, 14, 16]);
        assert_eq!(input_logs(40000).len(), 32768);
    }
}
