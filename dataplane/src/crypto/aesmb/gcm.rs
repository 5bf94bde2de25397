//! AES-GCM (RFC 4106 for ESP) with VAES counter mode and VPCLMULQDQ GHASH.
//!
//! GHASH is computed as POLYVAL (RFC 8452 appendix A: GHASH(H, X) = ByteReverse(
//! POLYVAL(mulX(ByteReverse(H)), ByteReverse(X)...))), whose little-endian field
//! representation needs no bit reflection: a carry-less product followed by a two-step
//! Montgomery reduction by x^128 + x^127 + x^126 + x^121 + 1. Sixteen blocks are folded per
//! reduction with the precomputed powers H^16..H^1; counter mode runs 16 blocks per step.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gcm256;
use super::{AesKey, Level};

/// Which loops run: zmm (AVX-512) or ymm (VAES-256, from the AVX2 level up).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    Z,
    Y,
}

/// The loops a level runs on this CPU, if any.
fn width(level: Level) -> Option<Width> {
    let level = level.clamp();
    if level == Level::Avx512 && available() {
        Some(Width::Z)
    } else if level >= Level::Avx2 && gcm256::available() {
        Some(Width::Y)
    } else {
        None
    }
}

/// True when [`GcmKey::seal`] and [`GcmKey::open`] can run at `level` on this CPU (else
/// the caller uses a software GCM).
pub fn usable_at(level: Level) -> bool {
    width(level).is_some()
}

/// The reduction constant: x^57 + x^62 + x^63 (the low half of Q's high terms / x^64).
const C: u64 = 0xc200_0000_0000_0000;

/// Software carry-less 64x64 multiplication (key setup only).
fn clmul64(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for i in 0..64 {
        if (b >> i) & 1 == 1 {
            r ^= (a as u128) << i;
        }
    }
    r
}

/// POLYVAL's dot(a, b) = a * b * x^-128 mod Q, in software (key setup only).
fn dot(a: u128, b: u128) -> u128 {
    let (a0, a1, b0, b1) = (a as u64, (a >> 64) as u64, b as u64, (b >> 64) as u64);
    let lo = clmul64(a0, b0);
    let hi = clmul64(a1, b1);
    let mid = clmul64(a0, b1) ^ clmul64(a1, b0);
    let mut p = [
        lo as u64,
        (lo >> 64) as u64 ^ mid as u64,
        hi as u64 ^ (mid >> 64) as u64,
        (hi >> 64) as u64,
    ];
    let t = clmul64(p[0], C);
    p[1] ^= t as u64;
    p[2] ^= (t >> 64) as u64 ^ p[0];
    let u = clmul64(p[1], C);
    p[2] ^= u as u64;
    p[3] ^= (u >> 64) as u64 ^ p[1];
    p[2] as u128 | (p[3] as u128) << 64
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct A64([u8; 64]);

/// An AES-GCM key: the AES round keys and the GHASH key powers; zeroized on drop.
pub struct GcmKey {
    aes: AesKey,
    /// `[H^16, ..., H^1, 0 x 16]` (POLYVAL dot powers), little-endian 16-byte entries.
    table: Box<[[u8; 16]; 32]>,
}

impl Drop for GcmKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.table);
    }
}

impl core::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GcmKey(..)")
    }
}

impl GcmKey {
    /// A 16- or 32-byte AES key (the RFC 4106 salt is the caller's). Only for CPUs with
    /// `available()` or the 256-bit loops.
    pub fn new(key: &[u8]) -> Option<GcmKey> {
        if !available() && !gcm256::available() {
            return None;
        }
        let aes = AesKey::new(key)?;
        // H = AES_K(0).
        let mut h = [0u8; 16];
        aes.encrypt_block_fallback(&mut h);
        let hb = u128::from_be_bytes(h);
        // mulX_POLYVAL(ByteReverse(H)).
        let mut hp = hb << 1;
        if hb >> 127 == 1 {
            hp ^= 0xc200_0000_0000_0000_0000_0000_0000_0001;
        }
        let mut table = Box::new([[0u8; 16]; 32]);
        let mut p = hp;
        for i in (0..16).rev() {
            table[i] = p.to_le_bytes();
            p = dot(p, hp);
        }
        h.fill(0);
        Some(GcmKey { aes, table })
    }

    /// Encrypts `data` in place; returns the 16-byte tag.
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        self.seal_at(Level::active(), nonce, aad, data)
    }

    /// Verifies `tag` over `aad` and the ciphertext `data`, then decrypts in place. On a
    /// bad tag `data` is left as it was and false is returned.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
        self.open_at(Level::active(), nonce, aad, data, tag)
    }

    /// [`GcmKey::seal`] with the loops of `level` (the best this CPU has at or below it).
    pub fn seal_at(&self, level: Level, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let w = self.width_at(level);
        let j0 = j0(nonce);
        self.ctr(w, data, j0, 2, true);
        self.tag(w, &j0, aad, data)
    }

    /// [`GcmKey::open`] with the loops of `level`.
    pub fn open_at(
        &self,
        level: Level,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> bool {
        let w = self.width_at(level);
        let j0 = j0(nonce);
        let want = self.tag(w, &j0, aad, data);
        let diff = want.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
        if core::hint::black_box(diff) != 0 {
            return false;
        }
        self.ctr(w, data, j0, 2, true);
        true
    }

    /// The loops for `level`; a key exists only where one of them runs (see `new`), so a
    /// level below both gets the narrower one this CPU has.
    fn width_at(&self, level: Level) -> Width {
        width(level).unwrap_or(if gcm256::available() {
            Width::Y
        } else {
            Width::Z
        })
    }

    fn ghash(&self, w: Width, s: u128, data: &[u8]) -> u128 {
        // SAFETY: `Width::Z` only where `available()` (AVX-512F/BW, VAES, VPCLMULQDQ) and
        // `Width::Y` only where `gcm256::available()` (see `width` and `width_at`).
        unsafe {
            match w {
                Width::Z => ghash_blocks(&self.table, s, data),
                Width::Y => gcm256::ghash_blocks(&self.table, s, data),
            }
        }
    }

    fn ctr(&self, w: Width, data: &mut [u8], j0: [u8; 16], first: u32, xor: bool) {
        // SAFETY: as in `ghash`.
        unsafe {
            match w {
                Width::Z => ctr_blocks(&self.aes, data, j0, first, xor),
                Width::Y => gcm256::ctr_blocks(&self.aes, data, j0, first, xor),
            }
        }
    }

    fn tag(&self, w: Width, j0: &[u8; 16], aad: &[u8], data: &[u8]) -> [u8; 16] {
        let mut s = 0u128;
        let mut block = [0u8; 16];
        for c in aad.chunks(16) {
            block.fill(0);
            block[..c.len()].copy_from_slice(c);
            s = self.ghash(w, s, &block);
        }
        let full = data.len() / 16 * 16;
        s = self.ghash(w, s, &data[..full]);
        let mut tail = [0u8; 32];
        let rest = data.len() - full;
        tail[..rest].copy_from_slice(&data[full..]);
        let lb = if rest > 0 { 16 } else { 0 };
        tail[lb..lb + 8].copy_from_slice(&((aad.len() as u64) * 8).to_be_bytes());
        tail[lb + 8..lb + 16].copy_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        s = self.ghash(w, s, &tail[..lb + 16]);
        let mut ek = [0u8; 16];
        self.ctr(w, &mut ek, *j0, 1, false);
        let g = s.to_be_bytes();
        core::array::from_fn(|i| g[i] ^ ek[i])
    }
}

fn j0(nonce: &[u8; 12]) -> [u8; 16] {
    let mut j = [0u8; 16];
    j[..12].copy_from_slice(nonce);
    j
}

/// True when the CPU has what this implementation needs.
pub fn available() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("vaes")
            && std::is_x86_feature_detected!("vpclmulqdq")
            && std::is_x86_feature_detected!("pclmulqdq")
    })
}

/// The Montgomery reduction of a 256-bit carry-less product given as its low, high and
/// middle 128-bit parts (shared by the zmm and ymm loops).
#[target_feature(enable = "pclmulqdq,sse4.1")]
pub(super) fn reduce(lo: u128, hi: u128, mid: u128) -> u128 {
    let mut p = [
        lo as u64,
        (lo >> 64) as u64 ^ mid as u64,
        hi as u64 ^ (mid >> 64) as u64,
        (hi >> 64) as u64,
    ];
    let cc = _mm_set_epi64x(0, C as i64);
    let t = _mm_clmulepi64_si128::<0x00>(_mm_set_epi64x(0, p[0] as i64), cc);
    p[1] ^= _mm_extract_epi64::<0>(t) as u64;
    p[2] ^= _mm_extract_epi64::<1>(t) as u64 ^ p[0];
    let u = _mm_clmulepi64_si128::<0x00>(_mm_set_epi64x(0, p[1] as i64), cc);
    p[2] ^= _mm_extract_epi64::<0>(u) as u64;
    p[3] ^= _mm_extract_epi64::<1>(u) as u64 ^ p[1];
    p[2] as u128 | (p[3] as u128) << 64
}

/// GHASH (as POLYVAL) over whole 16-byte blocks, 16 per reduction.
#[target_feature(enable = "avx512f,avx512bw,vpclmulqdq,pclmulqdq")]
fn ghash_blocks(table: &[[u8; 16]; 32], mut s: u128, data: &[u8]) -> u128 {
    let rev = _mm512_set_epi64(
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
    );
    let mut buf = A64([0; 64]);
    for group in data.chunks(256) {
        let k = group.len() / 16;
        let base = 16 - k;
        let mut lo = _mm512_setzero_si512();
        let mut hi = _mm512_setzero_si512();
        let mut mid = _mm512_setzero_si512();
        for z in 0..k.div_ceil(4) {
            let bytes = &group[64 * z..group.len().min(64 * z + 64)];
            let x = if bytes.len() == 64 {
                // SAFETY: 64 readable bytes.
                unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
            } else {
                buf.0.fill(0);
                buf.0[..bytes.len()].copy_from_slice(bytes);
                // SAFETY: 64 readable aligned bytes.
                unsafe { _mm512_load_si512(buf.0.as_ptr().cast()) }
            };
            let mut x = _mm512_shuffle_epi8(x, rev);
            if z == 0 {
                let sv = _mm512_zextsi128_si512(_mm_set_epi64x((s >> 64) as i64, s as i64));
                x = _mm512_xor_si512(x, sv);
            }
            // SAFETY: base + 4z + 4 <= 32 entries of 16 bytes.
            let h = unsafe { _mm512_loadu_si512(table[base + 4 * z].as_ptr().cast()) };
            lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128::<0x00>(x, h));
            hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128::<0x11>(x, h));
            mid = _mm512_ternarylogic_epi64::<0x96>(
                mid,
                _mm512_clmulepi64_epi128::<0x01>(x, h),
                _mm512_clmulepi64_epi128::<0x10>(x, h),
            );
        }
        let fold = |v: __m512i| -> u128 {
            let a = _mm512_extracti64x4_epi64::<0>(v);
            let b = _mm512_extracti64x4_epi64::<1>(v);
            let c = _mm256_xor_si256(a, b);
            let d = _mm_xor_si128(_mm256_castsi256_si128(c), _mm256_extracti128_si256::<1>(c));
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
#[target_feature(enable = "avx512f,avx512bw,vaes")]
fn ctr_blocks(key: &AesKey, data: &mut [u8], j0: [u8; 16], first: u32, xor: bool) {
    let rounds = key.rounds;
    let mut rk = [_mm512_setzero_si512(); 15];
    for (r, k) in rk.iter_mut().enumerate().take(rounds + 1) {
        // SAFETY: 16 readable bytes.
        *k = _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(key.rk[r].as_ptr().cast()) });
    }
    let mut ctrs = [A64([0; 64]); 4];
    let mut ks = [A64([0; 64]); 4];
    let mut ctr = first;
    for chunk in data.chunks_mut(256) {
        let nb = chunk.len().div_ceil(16);
        for b in 0..nb {
            let c = &mut ctrs[b / 4].0[16 * (b % 4)..16 * (b % 4) + 16];
            c[..12].copy_from_slice(&j0[..12]);
            c[12..].copy_from_slice(&ctr.to_be_bytes());
            ctr = ctr.wrapping_add(1);
        }
        for z in 0..nb.div_ceil(4) {
            // SAFETY: 64 readable/writable aligned bytes.
            unsafe {
                let mut s = _mm512_xor_si512(_mm512_load_si512(ctrs[z].0.as_ptr().cast()), rk[0]);
                for k in rk.iter().take(rounds).skip(1) {
                    s = _mm512_aesenc_epi128(s, *k);
                }
                s = _mm512_aesenclast_epi128(s, rk[rounds]);
                _mm512_store_si512(ks[z].0.as_mut_ptr().cast(), s);
            }
        }
        if xor {
            let mut off = 0;
            while off + 64 <= chunk.len() {
                // SAFETY: 64 in-bounds bytes of `chunk` and of the aligned keystream.
                unsafe {
                    let d = _mm512_loadu_si512(chunk[off..].as_ptr().cast());
                    let k = _mm512_load_si512(ks[off / 64].0.as_ptr().cast());
                    _mm512_storeu_si512(chunk[off..].as_mut_ptr().cast(), _mm512_xor_si512(d, k));
                }
                off += 64;
            }
            for (i, b) in chunk[off..].iter_mut().enumerate() {
                *b ^= ks[off / 64].0[i];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8452_polyval_dot_example() {
        // RFC 8452 appendix A: dot(X, Y) for the given H and X values through POLYVAL:
        // POLYVAL(H = 25629347589242761d31f826ba4b757b, X1 = 4f4f95668c83dfb6401762bb2d01a262,
        // X2 = d1a24ddd2721d006bbe45f20d3c9f362) = f7a3b47b846119fae5b7866cf5e5b77e.
        let le = |s: &str| {
            let b: Vec<u8> = (0..32)
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect();
            u128::from_le_bytes(b.try_into().unwrap())
        };
        let h = le("25629347589242761d31f826ba4b757b");
        let s = dot(le("4f4f95668c83dfb6401762bb2d01a262"), h);
        let s = dot(s ^ le("d1a24ddd2721d006bbe45f20d3c9f362"), h);
        assert_eq!(s, le("f7a3b47b846119fae5b7866cf5e5b77e"));
    }
}
