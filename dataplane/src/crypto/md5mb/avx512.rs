//! AVX-512: sixteen MD5 lanes in a zmm register; F, G, I are one `vpternlogd` each and the
//! rotations are `vprold`.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::compress::{compress_soa, W32};

/// Sixteen u32 lanes. Values exist only inside `compress16`'s AVX-512 region, entered after
/// the dispatcher detected AVX-512F, so the intrinsics below have their CPU feature.
#[derive(Clone, Copy)]
pub(super) struct W512(__m512i);

impl W32 for W512 {
    const LANES: usize = 16;
    #[inline(always)]
    fn splat(v: u32) -> Self {
        // SAFETY: AVX-512F present (see the type's doc).
        W512(unsafe { _mm512_set1_epi32(v as i32) })
    }
    #[inline(always)]
    fn load(v: &[u32; 16]) -> Self {
        // SAFETY: AVX-512F present; `v` has 64 readable bytes.
        W512(unsafe { _mm512_loadu_si512(v.as_ptr().cast()) })
    }
    #[inline(always)]
    fn store(self, v: &mut [u32; 16]) {
        // SAFETY: AVX-512F present; `v` has 64 writable bytes.
        unsafe { _mm512_storeu_si512(v.as_mut_ptr().cast(), self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        // SAFETY: AVX-512F present (see the type's doc).
        W512(unsafe { _mm512_add_epi32(self.0, o.0) })
    }
    #[inline(always)]
    fn f(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX-512F present. 0xCA = b ? c : d.
        W512(unsafe { _mm512_ternarylogic_epi32::<0xCA>(b.0, c.0, d.0) })
    }
    #[inline(always)]
    fn g(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX-512F present. 0xE4 = d ? b : c.
        W512(unsafe { _mm512_ternarylogic_epi32::<0xE4>(b.0, c.0, d.0) })
    }
    #[inline(always)]
    fn h(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX-512F present. 0x96 = b ^ c ^ d.
        W512(unsafe { _mm512_ternarylogic_epi32::<0x96>(b.0, c.0, d.0) })
    }
    #[inline(always)]
    fn i(b: Self, c: Self, d: Self) -> Self {
        // SAFETY: AVX-512F present. 0x39 = c ^ (b | !d).
        W512(unsafe { _mm512_ternarylogic_epi32::<0x39>(b.0, c.0, d.0) })
    }
    #[inline(always)]
    fn rotl<const L: i32, const R: i32>(self) -> Self {
        // SAFETY: AVX-512F present (see the type's doc).
        W512(unsafe { _mm512_rol_epi32::<L>(self.0) })
    }
}

#[target_feature(enable = "avx512f")]
fn compress16_avx512(st: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
    compress_soa::<W512>(st, m)
}

/// One MD5 step on all 16 lanes of the SoA state and message words.
pub(super) fn compress16(st: &mut [[u32; 16]; 4], m: &[[u32; 16]; 16]) {
    // SAFETY: only reached through `hmac_md5_many_at` at Level::Avx512, which the
    // dispatcher clamps to what the CPU supports (AVX-512F detected).
    unsafe { compress16_avx512(st, m) }
}
