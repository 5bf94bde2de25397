//! Bitsliced 3DES, generic over the machine word: one bit of every lane per word, so the
//! S-boxes are boolean circuits (see `generated.rs`) and IP, E, P and FP are free renamings.
//! `u64` gives the portable 64-lane engine; AVX2 instantiates it with 256-bit words.

use super::generated::{s1, s2, s3, s4, s5, s6, s7, s8};
use super::tables::{E, IP, P};
use super::{KeyIds, Sched};

/// A machine word of bit-lanes. `GROUPS` 64-lane groups make up one word.
pub(super) trait Word: Copy {
    const GROUPS: usize;
    fn zero() -> Self;
    fn ones() -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    /// `self & !o`
    fn andnot(self, o: Self) -> Self;
    fn not(self) -> Self;
    /// `s ? b : a`, bitwise.
    fn mux(s: Self, a: Self, b: Self) -> Self;
    /// Builds a word from `GROUPS` 64-lane words (group 0 first).
    fn from_groups(g: &[u64]) -> Self;
    fn to_groups(self, g: &mut [u64]);
}

impl Word for u64 {
    const GROUPS: usize = 1;
    #[inline(always)]
    fn zero() -> Self {
        0
    }
    #[inline(always)]
    fn ones() -> Self {
        !0
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        self ^ o
    }
    #[inline(always)]
    fn andnot(self, o: Self) -> Self {
        self & !o
    }
    #[inline(always)]
    fn not(self) -> Self {
        !self
    }
    #[inline(always)]
    fn mux(s: Self, a: Self, b: Self) -> Self {
        a ^ ((a ^ b) & s)
    }
    #[inline(always)]
    fn from_groups(g: &[u64]) -> Self {
        g[0]
    }
    #[inline(always)]
    fn to_groups(self, g: &mut [u64]) {
        g[0] = self;
    }
}

/// In-place transpose of a 64x64 bit matrix (row r bit 63-c <-> row c bit 63-r).
pub(super) fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32usize;
    let mut m: u64 = 0x0000_0000_ffff_ffff;
    while j != 0 {
        let mut k = 0usize;
        while k < 64 {
            let t = (a[k] ^ (a[k + j] >> j)) & m;
            a[k] ^= t;
            a[k + j] ^= t << j;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// P inverse: S-box output bit i (0-based) lands on f bit `PINV[i]`.
const PINV: [usize; 32] = {
    let mut inv = [0usize; 32];
    let mut i = 0;
    while i < 32 {
        inv[P[i] as usize - 1] = i;
        i += 1;
    }
    inv
};

macro_rules! sbox_step {
    ($f:ident, $j:expr, $dst:ident, $src:ident, $k:ident) => {{
        let b = 6 * $j;
        let o = $f(
            $src[E[b] as usize - 1].xor($k[b]),
            $src[E[b + 1] as usize - 1].xor($k[b + 1]),
            $src[E[b + 2] as usize - 1].xor($k[b + 2]),
            $src[E[b + 3] as usize - 1].xor($k[b + 3]),
            $src[E[b + 4] as usize - 1].xor($k[b + 4]),
            $src[E[b + 5] as usize - 1].xor($k[b + 5]),
        );
        $dst[PINV[4 * $j]] = $dst[PINV[4 * $j]].xor(o[0]);
        $dst[PINV[4 * $j + 1]] = $dst[PINV[4 * $j + 1]].xor(o[1]);
        $dst[PINV[4 * $j + 2]] = $dst[PINV[4 * $j + 2]].xor(o[2]);
        $dst[PINV[4 * $j + 3]] = $dst[PINV[4 * $j + 3]].xor(o[3]);
    }};
}

/// `dst ^= f(src, k)`.
#[inline(always)]
fn round<W: Word>(dst: &mut [W; 32], src: &[W; 32], k: &[W]) {
    sbox_step!(s1, 0, dst, src, k);
    sbox_step!(s2, 1, dst, src, k);
    sbox_step!(s3, 2, dst, src, k);
    sbox_step!(s4, 3, dst, src, k);
    sbox_step!(s5, 4, dst, src, k);
    sbox_step!(s6, 5, dst, src, k);
    sbox_step!(s7, 6, dst, src, k);
    sbox_step!(s8, 7, dst, src, k);
}

/// The 48 rounds of 3DES on bitsliced state, no IP/FP between the three passes.
/// `slices[n]` holds block bit n+1; `keys[48 * r + b]` subkey bit b+1 of round r.
#[inline(always)]
pub(super) fn tdes_slices<W: Word>(slices: &mut [W; 64], keys: &[W]) {
    let mut a = [W::zero(); 32];
    let mut b = [W::zero(); 32];
    for q in 0..32 {
        a[q] = slices[IP[q] as usize - 1];
        b[q] = slices[IP[q + 32] as usize - 1];
    }
    for pass in 0..3 {
        for i in 0..16 {
            let r = 16 * pass + i;
            let k = &keys[48 * r..48 * r + 48];
            if (i + pass) % 2 == 0 {
                round(&mut a, &b, k);
            } else {
                round(&mut b, &a, k);
            }
        }
    }
    // Pre-output is b || a; FP is the inverse of IP.
    for q in 0..32 {
        slices[IP[q] as usize - 1] = b[q];
        slices[IP[q + 32] as usize - 1] = a[q];
    }
}

/// A bitsliced engine with `W::GROUPS * 64` lanes; keeps the bitsliced round keys of the
/// last key assignment.
pub(super) struct BitsliceEngine<W: Word> {
    keys: Vec<W>,
    ids: KeyIds,
}

impl<W: Word> Drop for BitsliceEngine<W> {
    fn drop(&mut self) {
        // Round-key slices are key material.
        for k in self.keys.iter_mut() {
            *k = W::zero();
        }
        core::hint::black_box(&self.keys);
    }
}

impl<W: Word> BitsliceEngine<W> {
    pub(super) fn new() -> Self {
        BitsliceEngine {
            keys: vec![W::zero(); 48 * 48],
            ids: KeyIds::default(),
        }
    }

    /// Builds the round-key slices for `keys` (one per lane) unless they are the ones
    /// already built.
    #[inline(always)]
    pub(super) fn set_keys(&mut self, keys: &[&Sched]) {
        if !self.ids.update(keys) {
            return;
        }
        let groups = W::GROUPS;
        if let Some(first) = keys
            .first()
            .filter(|f| keys.iter().all(|k| core::ptr::eq(*k, **f)))
        {
            // One key in every lane (one SA's batch): each slice is all ones or all zeros
            // (lanes past `keys.len()` are don't-care).
            for r in 0..48 {
                for b in 0..48 {
                    self.keys[48 * r + b] = if (first.sub[r] >> (47 - b)) & 1 == 1 {
                        W::ones()
                    } else {
                        W::zero()
                    };
                }
            }
            return;
        }
        let mut masks: Vec<(&Sched, [u64; 8])> = Vec::new();
        for (lane, k) in keys.iter().enumerate() {
            let bit = 1u64 << (63 - (lane % 64));
            match masks.iter_mut().find(|(s, _)| core::ptr::eq(*s, *k)) {
                Some((_, m)) => m[lane / 64] |= bit,
                None => {
                    let mut m = [0u64; 8];
                    m[lane / 64] = bit;
                    masks.push((k, m));
                }
            }
        }
        let mut g = [0u64; 8];
        for r in 0..48 {
            for b in 0..48 {
                g[..groups].iter_mut().for_each(|x| *x = 0);
                for (s, m) in masks.iter() {
                    if (s.sub[r] >> (47 - b)) & 1 == 1 {
                        for i in 0..groups {
                            g[i] |= m[i];
                        }
                    }
                }
                self.keys[48 * r + b] = W::from_groups(&g[..groups]);
            }
        }
    }

    /// Runs 3DES on `blocks.len() <= LANES` blocks with the keys last set.
    #[inline(always)]
    pub(super) fn crypt(&mut self, blocks: &mut [[u8; 8]]) {
        let groups = W::GROUPS;
        let mut rows = [[0u64; 64]; 8];
        let rows = &mut rows[..groups];
        for (i, blk) in blocks.iter().enumerate() {
            rows[i / 64][i % 64] = u64::from_be_bytes(*blk);
        }
        rows.iter_mut().for_each(transpose64);
        let mut slices = [W::zero(); 64];
        let mut g = [0u64; 8];
        for (n, s) in slices.iter_mut().enumerate() {
            for i in 0..groups {
                g[i] = rows[i][n];
            }
            *s = W::from_groups(&g[..groups]);
        }
        tdes_slices(&mut slices, &self.keys);
        for (n, s) in slices.iter().enumerate() {
            s.to_groups(&mut g[..groups]);
            for i in 0..groups {
                rows[i][n] = g[i];
            }
        }
        rows.iter_mut().for_each(transpose64);
        for (i, blk) in blocks.iter_mut().enumerate() {
            *blk = rows[i / 64][i % 64].to_be_bytes();
        }
    }
}
