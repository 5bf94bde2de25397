//! AES-GCM's two loops at 256 bits (VAES and VPCLMULQDQ on ymm registers, two blocks per
//! register), for CPUs with those but without AVX-512 (AMD Zen 3, Intel Alder Lake) and for
//! the forced AVX2 level. Same arithmetic as the zmm loops of `gcm.rs`: GHASH as POLYVAL
//! with sixteen blocks per reduction from the powers H^16..H^1, counter mode sixteen blocks
//! per step.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gcm::reduce;
use super::AesKey;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct A32([u8; 32]);

/// True when the CPU has what these loops need.
pub(super) fn available() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("vaes")
            && std::is_x86_feature_detected!("vpclmulqdq")
            && std::is_x86_feature_detected!("pclmulqdq")
    })
}

/// GHASH (as POLYVAL) over whole 16-byte blocks, 16 per reduction; `table` is
/// `[H^16, ..., H^1, 0 x 16]`.
#[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq")]
pub(super) fn ghash_blocks(table: &[[u8; 16]; 32], mut s: u128, data: &[u8]) -> u128 {
    let rev = _mm256_set_epi64x(
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
    );
    let mut buf = A32([0; 32]);
    for group in data.chunks(256) {
        let k = group.len() / 16;
        let base = 16 - k;
        let mut lo = _mm256_setzero_si256();
        let mut hi = _mm256_setzero_si256();
        let mut mid = _mm256_setzero_si256();
        for z in 0..k.div_ceil(2) {
            let bytes = &group[32 * z..group.len().min(32 * z + 32)];
            let x = if bytes.len() == 32 {
                // SAFETY: 32 readable bytes.
                unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
            } else {
                buf.0.fill(0);
                buf.0[..bytes.len()].copy_from_slice(bytes);
                // SAFETY: 32 readable aligned bytes.
                unsafe { _mm256_load_si256(buf.0.as_ptr().cast()) }
            };
            let mut x = _mm256_shuffle_epi8(x, rev);
            if z == 0 {
                let sv = _mm256_zextsi128_si256(_mm_set_epi64x((s >> 64) as i64, s as i64));
                x = _mm256_xor_si256(x, sv);
            }
            // SAFETY: base + 2z + 2 <= 32 entries of 16 bytes.
            let h = unsafe { _mm256_loadu_si256(table[base + 2 * z].as_ptr().cast()) };
            lo = _mm256_xor_si256(lo, _mm256_clmulepi64_epi128::<0x00>(x, h));
            hi = _mm256_xor_si256(hi, _mm256_clmulepi64_epi128::<0x11>(x, h));
            mid = _mm256_xor_si256(
                mid,
                _mm256_xor_si256(
                    _mm256_clmulepi64_epi128::<0x01>(x, h),
                    _mm256_clmulepi64_epi128::<0x10>(x, h),
                ),
            );
        }
        let fold = |v: __m256i| -> u128 {
            let d = _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            (_mm_extract_epi64::<0>(d) as u64 as u128)
                | ((_mm_extract_epi64::<1>(d) as u64 as u128) << 64)
        };
        let (lo, hi, mid) = (fold(lo), fold(hi), fold(mid));
        s = reduce(lo, hi, mid);
    }
    s
}

/// Counter mode from counter block `j0` with its last 32 bits set to `first`, 16 blocks
/// per step. `xor`: XOR the keystream into `data` (else write the keystream: `data` must
/// then be one block).
#[target_feature(enable = "avx2,vaes,aes")]
pub(super) fn ctr_blocks(key: &AesKey, data: &mut [u8], j0: [u8; 16], first: u32, xor: bool) {
    let rounds = key.rounds;
    let mut rk = [_mm256_setzero_si256(); 15];
    for (r, k) in rk.iter_mut().enumerate().take(rounds + 1) {
        // SAFETY: 16 readable bytes.
        *k = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(key.rk[r].as_ptr().cast()) });
    }
    let mut ctrs = [A32([0; 32]); 8];
    let mut ks = [A32([0; 32]); 8];
    let mut ctr = first;
    for chunk in data.chunks_mut(256) {
        let nb = chunk.len().div_ceil(16);
        for b in 0..nb {
            let c = &mut ctrs[b / 2].0[16 * (b % 2)..16 * (b % 2) + 16];
            c[..12].copy_from_slice(&j0[..12]);
            c[12..].copy_from_slice(&ctr.to_be_bytes());
            ctr = ctr.wrapping_add(1);
        }
        let nz = nb.div_ceil(2);
        // SAFETY: 32 readable/writable aligned bytes per entry.
        unsafe {
            let mut s = [_mm256_setzero_si256(); 8];
            for z in 0..nz {
                s[z] = _mm256_xor_si256(_mm256_load_si256(ctrs[z].0.as_ptr().cast()), rk[0]);
            }
            for k in rk.iter().take(rounds).skip(1) {
                for v in s.iter_mut().take(nz) {
                    *v = _mm256_aesenc_epi128(*v, *k);
                }
            }
            for z in 0..nz {
                let v = _mm256_aesenclast_epi128(s[z], rk[rounds]);
                _mm256_store_si256(ks[z].0.as_mut_ptr().cast(), v);
            }
        }
        if xor {
            let mut off = 0;
            while off + 32 <= chunk.len() {
                // SAFETY: 32 in-bounds bytes of `chunk` and of the aligned keystream.
                unsafe {
                    let d = _mm256_loadu_si256(chunk[off..].as_ptr().cast());
                    let k = _mm256_load_si256(ks[off / 32].0.as_ptr().cast());
                    _mm256_storeu_si256(chunk[off..].as_mut_ptr().cast(), _mm256_xor_si256(d, k));
                }
                off += 32;
            }
            for (i, b) in chunk[off..].iter_mut().enumerate() {
                *b ^= ks[off / 32].0[i];
            }
        } else {
            let n = chunk.len();
            chunk.copy_from_slice(&ks[0].0[..n]);
        }
    }
    for k in ks.iter_mut() {
        zeroize::Zeroize::zeroize(&mut k.0);
    }
}
