//! AVX2: eight MD5 lanes in a 256-bit register.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::compress::{compress_soa, W32};

/// Eight u32 lanes. Values exist only inside `compress8`'s AVX2 region, entered after the
/// dispatcher detected AVX2, so the intrinsics below have their CPU feature.
#[derive(Clone, Copy)]
pub(super) struct W256(__m256i);

impl W32 for W256 {
    const LANES: usize = 8;
    #[inline(always)]
    fn splat(v: u32) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_set1_epi32(v as i32) })
    }
    #[inline(always)]
    fn load(v: &[u32; 16]) -> Self {
        // SAFETY: AVX2 present; `v` has 32 readable bytes.
        W256(unsafe { _mm256_loadu_si256(v.as_ptr().cast()) })
    }
    #[inline(always)]
    fn store(self, v: &mut [u32; 16]) {
        // SAFETY: AVX2 present; `v` has 32 writable bytes.
        unsafe { _mm256_storeu_si256(v.as_mut_ptr().cast(), self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_add_epi32(self.0, o.0) })
    }
    #[inline(always)]
    fn f(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_xor_si256(d.0, _mm256_and_si256(b.0, _mm256_xor_si256(c.0, d.0))) })
    }
    #[inline(always)]
    fn g(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_xor_si256(c.0, _mm256_and_si256(d.0, _mm256_xor_si256(b.0, c.0))) })
    }
    #[inline(always)]
    fn h(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe { _mm256_xor_si256(b.0, _mm256_xor_si256(c.0, d.0)) })
    }
    #[inline(always)]
    fn i(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe {
            let nd = _mm256_xor_si256(d.0, _mm256_set1_epi32(-1));
            _mm256_xor_si256(c.0, _mm256_or_si256(b.0, nd))
        })
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        // SAFETY: AVX2 present (see the type's doc).
        W256(unsafe {
            _mm256_or_si256(
                _mm256_slli_epi32::<L>(self.0),
                _mm256_srli_epi32::<R>(self.0),
            )
        })
    }
}

#[target_feature(enable = "avx2")]
fn compress8_avx2(st: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
    compress_soa::<W256>(st, m)
}

/// One MD5 step on lanes 0..8 of the SoA state and message words.
pub(super) fn compress8(st: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
    // SAFETY: only reached through `hmac_md5_many_at` at Level::Avx2 or above, which the
    // dispatcher clamps to what the CPU supports (AVX2 detected).
    unsafe { compress8_avx2(st, m) }
}
