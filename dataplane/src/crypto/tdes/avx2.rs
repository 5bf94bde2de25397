//! AVX2 engine: the bitsliced 3DES of `bitslice.rs` in 256-bit words (256 lanes).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::bitslice::{BitsliceEngine, Word};
use super::{Engine, Sched};

/// A 256-bit word. Private to this module: values exist only inside `crypt_avx2`, which
/// runs after the dispatcher checked AVX2, so the intrinsics below always have the CPU
/// feature they need.
#[derive(Clone, Copy)]
pub(super) struct W256(__m256i);

impl Word for W256 {
    const GROUPS: usize = 4;
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_setzero_si256() })
    }
    #[inline(always)]
    fn ones() -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_set1_epi64x(-1) })
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_and_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_or_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_xor_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn andnot(self, o: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_andnot_si256(o.0, self.0) })
    }
    #[inline(always)]
    fn not(self) -> Self {
        self.xor(Self::ones())
    }
    #[inline(always)]
    fn mux(s: Self, a: Self, b: Self) -> Self {
        a.xor(a.xor(b).and(s))
    }
    #[inline(always)]
    fn from_groups(g: &[u64]) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_set_epi64x(g[3] as i64, g[2] as i64, g[1] as i64, g[0] as i64) })
    }
    #[inline(always)]
    fn to_groups(self, g: &mut [u64]) {
        let mut out = [0u64; 4];
        // SAFETY: AVX2 present; `out` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), self.0) };
        g[..4].copy_from_slice(&out);
    }
}

pub(super) struct Avx2Engine(BitsliceEngine<W256>);

impl Avx2Engine {
    pub(super) fn new() -> Self {
        // SAFETY: only constructed by the dispatcher at Level::Avx2 or above, i.e. after
        // AVX2 was detected; building zeroed words needs it.
        Avx2Engine(unsafe { new_engine() })
    }
}

#[target_feature(enable = "avx2")]
fn new_engine() -> BitsliceEngine<W256> {
    BitsliceEngine::new()
}

#[target_feature(enable = "avx2")]
fn crypt_avx2(e: &mut BitsliceEngine<W256>, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
    e.set_keys(keys);
    e.crypt(blocks);
}

impl Engine for Avx2Engine {
    fn lanes(&self) -> usize {
        256
    }
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
        // SAFETY: the engine exists only after AVX2 was detected (see `new`).
        unsafe { crypt_avx2(&mut self.0, blocks, keys) }
    }
}
