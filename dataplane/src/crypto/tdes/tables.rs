//! DES constants (FIPS 46-3), the key schedule, and the tables derived from them for the
//! byte-sliced AVX-512 kernel. Bit numbering follows the standard: bit 1 is the most
//! significant bit of a block, key or half.

/// Initial permutation: output bit i comes from input bit `IP[i]`.
pub(super) const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
/// Expansion of the 32-bit half into the eight 6-bit S-box inputs.
pub(super) const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
/// Permutation of the S-box outputs.
pub(super) const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// S-boxes, row-major (row = b1 b6, column = b2 b3 b4 b5).
pub(super) const SBOX: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// S-box `j` applied to a 6-bit input whose bit 5 is b1.
pub(super) const fn sbox(j: usize, x: u8) -> u8 {
    let row = ((x >> 4) & 2) | (x & 1);
    let col = (x >> 1) & 15;
    SBOX[j][(row * 16 + col) as usize]
}

/// Applies a bit-selection table: output bit i (of `table.len()`, MSB first) is input bit
/// `table[i]` (1-based, of `in_bits`, MSB first).
pub(super) const fn select(input: u64, in_bits: u32, table: &[u8]) -> u64 {
    let mut out = 0u64;
    let mut i = 0;
    while i < table.len() {
        out = (out << 1) | ((input >> (in_bits - table[i] as u32)) & 1);
        i += 1;
    }
    out
}

/// The 16 round subkeys of single DES (48 bits each, bit 1 = bit 47), in encryption order.
pub(super) fn des_subkeys(key: u64) -> [u64; 16] {
    let cd = select(key, 64, &PC1);
    let (mut c, mut d) = ((cd >> 28) as u32, (cd & 0x0fff_ffff) as u32);
    let mut out = [0u64; 16];
    for (k, &s) in out.iter_mut().zip(SHIFTS.iter()) {
        c = ((c << s) | (c >> (28 - s as u32))) & 0x0fff_ffff;
        d = ((d << s) | (d >> (28 - s as u32))) & 0x0fff_ffff;
        *k = select(((c as u64) << 28) | d as u64, 56, &PC2);
    }
    out
}

/// Byte-sliced E-form of a 32-bit value (bit 1 = bit 31): byte g is the 6-bit S-box
/// input group g of E(v) (its bit 5 is b1). This is what `vpmultishiftqb` extracts from
/// the qword `v | v << 32` at offsets `EFORM_SHIFT`.
pub(super) const EFORM_SHIFT: [u8; 8] = [27, 23, 19, 15, 11, 7, 3, 63];

pub(super) const fn eform(v: u32) -> [u8; 8] {
    let q = (v as u64) | ((v as u64) << 32);
    let mut out = [0u8; 8];
    let mut g = 0;
    while g < 8 {
        out[g] = (q.rotate_right(EFORM_SHIFT[g] as u32) & 0x3f) as u8;
        g += 1;
    }
    out
}

/// `f` output (after P, as a u32 with bit 1 = bit 31) of S-box `j` alone on input `x`.
pub(super) const fn sp(j: usize, x: u8) -> u32 {
    let s = sbox(j, x) as u64;
    let sout = s << (28 - 4 * j as u32);
    select(sout, 32, &P) as u32
}

/// `SPE[j][g][x]`: E-form group g of P(S_j(x)): the contribution of S-box j to the next
/// round's S-box input group g, as 64-byte `vpermb` tables.
pub(super) const SPE: [[[u8; 64]; 8]; 8] = {
    let mut t = [[[0u8; 64]; 8]; 8];
    let mut j = 0;
    while j < 8 {
        let mut x = 0;
        while x < 64 {
            let e = eform(sp(j, x as u8));
            let mut g = 0;
            while g < 8 {
                t[j][g][x] = e[g];
                g += 1;
            }
            x += 1;
        }
        j += 1;
    }
    t
};

/// `GROUP_SRC[g]`: the six S-boxes whose outputs reach E-form group g.
pub(super) const GROUP_SRC: [[usize; 6]; 8] = {
    let mut out = [[0usize; 6]; 8];
    let mut g = 0;
    while g < 8 {
        let mut n = 0;
        let mut j = 0;
        while j < 8 {
            let mut nz = false;
            let mut x = 0;
            while x < 64 {
                if SPE[j][g][x] != 0 {
                    nz = true;
                }
                x += 1;
            }
            if nz {
                out[g][n] = j;
                n += 1;
            }
            j += 1;
        }
        assert!(n == 6);
        g += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbox_rows_are_permutations() {
        for s in SBOX.iter() {
            for row in s.chunks(16) {
                let mut seen = [false; 16];
                for &v in row {
                    assert!(!seen[v as usize]);
                    seen[v as usize] = true;
                }
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn generated_contribution_pattern_matches_tables() {
        for j in 0..8 {
            for g in 0..8 {
                let nz = SPE[j][g].iter().any(|&b| b != 0);
                assert_eq!(nz, super::super::generated::CONTRIB[j][g], "S{j} group {g}");
            }
        }
    }

    #[test]
    fn eform_matches_expansion_table() {
        let v: u32 = 0x9e37_79b9;
        let e = select(v as u64, 32, &E);
        let groups = eform(v);
        for (g, &b) in groups.iter().enumerate() {
            assert_eq!(b as u64, (e >> (42 - 6 * g)) & 0x3f);
        }
    }
}
