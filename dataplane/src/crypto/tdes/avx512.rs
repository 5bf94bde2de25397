//! AVX-512 engine: 64 blocks byte-sliced across a zmm register.
//!
//! Each half of the DES state is kept in "E-form": eight registers, register g holding the
//! 6-bit S-box input group g (of E(half)) of all 64 blocks, one byte each. A round is then
//! `x_j = src_j ^ k_j` and, for every destination group g, six `vpermb` lookups
//! `SPE[j][g][x_j]` (S-box j, then P, then E, restricted to group g) XORed into dst_g:
//! 48 lookups and 24 three-way XORs per round, no bit shuffling at all.
//! Entry and exit: `vpshufb` byte swap, a GFNI affine transform that is IP (an 8x8 bit
//! transpose of each block), `vpmultishiftqb` for E, and a byte/qword transpose to make
//! the layout group-major; the reverse on the way out.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::tables::{EFORM_SHIFT, GROUP_SRC, SPE};
use super::{Engine, KeyIds, Sched};

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct A64([u8; 64]);

static TABLES: [[A64; 8]; 8] = {
    let mut t = [[A64([0; 64]); 8]; 8];
    let mut j = 0;
    while j < 8 {
        let mut g = 0;
        while g < 8 {
            t[j][g] = A64(SPE[j][g]);
            g += 1;
        }
        j += 1;
    }
    t
};

pub(super) struct Avx512Engine {
    /// Round keys, lane-wise, when lanes have different keys: `kv[8 * round + group]`
    /// byte L = lane L's key group. Allocated on the first mixed-key call.
    kv: Vec<A64>,
    ids: KeyIds,
    buf: [[u8; 8]; 64],
}

impl Avx512Engine {
    /// Only constructed by the dispatcher at `Level::Avx512`, i.e. after AVX-512 F/BW/VBMI
    /// and GFNI were detected.
    pub(super) fn new() -> Self {
        Avx512Engine {
            kv: Vec::new(),
            ids: KeyIds::default(),
            buf: [[0; 8]; 64],
        }
    }

    /// Builds the lane-wise round keys for a mixed-key call (unless already built).
    fn set_lane_keys(&mut self, keys: &[&Sched]) {
        if !self.ids.update(keys) {
            return;
        }
        if self.kv.is_empty() {
            self.kv = vec![A64([0; 64]); 384];
        }
        for (lane, k) in keys.iter().enumerate() {
            for (r, e) in k.eform.iter().enumerate() {
                for (g, &b) in e.iter().enumerate() {
                    self.kv[8 * r + g].0[lane] = b;
                }
            }
        }
    }
}

impl Drop for Avx512Engine {
    fn drop(&mut self) {
        for k in self.kv.iter_mut() {
            zeroize::Zeroize::zeroize(&mut k.0);
        }
    }
}

impl Engine for Avx512Engine {
    fn lanes(&self) -> usize {
        64
    }
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
        let n = blocks.len();
        self.buf[..n].copy_from_slice(blocks);
        let first = keys[0];
        if keys.iter().all(|k| core::ptr::eq(*k, first)) {
            // SAFETY: an Avx512Engine is only built after the CPU features this kernel
            // enables were detected (see `new`).
            unsafe { tdes64(&mut self.buf, &Uniform(&first.bcast)) };
        } else {
            self.set_lane_keys(keys);
            // SAFETY: as above.
            unsafe { tdes64(&mut self.buf, &Lanes(&self.kv)) };
        }
        blocks.copy_from_slice(&self.buf[..n]);
    }
}

/// 8x8 transpose of qwords across eight registers: `out[j].q[k] = in[k].q[j]`.
#[inline(always)]
fn transpose_q(r: &mut [__m512i; 8]) {
    // Every block below: called only from `tdes64`, which has AVX-512F.
    for s in [1usize, 2, 4] {
        let mut lo = [0i64; 8];
        let mut hi = [0i64; 8];
        for q in 0..8 {
            if q & s == 0 {
                lo[q] = q as i64;
                hi[q] = (q ^ s) as i64;
            } else {
                lo[q] = 8 + (q ^ s) as i64;
                hi[q] = 8 + q as i64;
            }
        }
        // SAFETY: AVX-512F (see above); `lo` and `hi` are 64 readable bytes each.
        let (ilo, ihi) = unsafe {
            (
                _mm512_loadu_si512(lo.as_ptr().cast()),
                _mm512_loadu_si512(hi.as_ptr().cast()),
            )
        };
        for a in 0..8 {
            if a & s == 0 {
                let (x, y) = (r[a], r[a + s]);
                // SAFETY: AVX-512F (see above); register operands only.
                r[a] = unsafe { _mm512_permutex2var_epi64(x, ilo, y) };
                // SAFETY: as above.
                r[a + s] = unsafe { _mm512_permutex2var_epi64(x, ihi, y) };
            }
        }
    }
}

/// Byte transpose inside each register: (qword b, byte j) <-> (qword j, byte b).
#[inline(always)]
fn transpose_b(r: &mut [__m512i; 8]) {
    let mut idx = [0u8; 64];
    for b in 0..8 {
        for j in 0..8 {
            idx[8 * j + b] = (8 * b + j) as u8;
        }
    }
    // SAFETY: `idx` is 64 readable bytes; AVX-512 VBMI present (caller `tdes64`).
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    for v in r.iter_mut() {
        // SAFETY: AVX-512 VBMI present (caller `tdes64`).
        *v = unsafe { _mm512_permutexvar_epi8(idx, *v) };
    }
}

/// Where a round's key vectors come from.
trait RoundKeys {
    /// Key vector of round `r`, S-box group `j`.
    fn key(&self, r: usize, j: usize) -> __m512i;
}

/// One key for all lanes: each group byte broadcast (folds into `vpxord m32{1to16}`).
struct Uniform<'a>(&'a [[u32; 8]; 48]);

impl RoundKeys for Uniform<'_> {
    #[inline(always)]
    fn key(&self, r: usize, j: usize) -> __m512i {
        // SAFETY: AVX-512F present (only used inside `tdes64`).
        unsafe { _mm512_set1_epi32(self.0[r][j] as i32) }
    }
}

/// A key per lane, pre-laid out by `set_lane_keys`.
struct Lanes<'a>(&'a [A64]);

impl RoundKeys for Lanes<'_> {
    #[inline(always)]
    fn key(&self, r: usize, j: usize) -> __m512i {
        // SAFETY: entry 8r+j is 64 readable aligned bytes; AVX-512F present.
        unsafe { _mm512_load_si512(self.0[8 * r + j].0.as_ptr().cast()) }
    }
}

/// `dst ^= f(src, k)` in E-form, with the keys of round `r`.
#[inline(always)]
fn round<K: RoundKeys>(dst: &mut [__m512i; 8], src: &[__m512i; 8], k: &K, r: usize) {
    let mut x = [src[0]; 8];
    for j in 0..8 {
        // SAFETY: AVX-512F present (caller `tdes64`).
        x[j] = unsafe { _mm512_xor_si512(src[j], k.key(r, j)) };
    }
    for g in 0..8 {
        let s = GROUP_SRC[g];
        let mut t = [x[0]; 6];
        for i in 0..6 {
            // SAFETY: table is 64 readable aligned bytes; AVX-512 VBMI present.
            t[i] = unsafe {
                _mm512_permutexvar_epi8(
                    x[s[i]],
                    _mm512_load_si512(TABLES[s[i]][g].0.as_ptr().cast()),
                )
            };
        }
        // SAFETY: AVX-512F present (caller `tdes64`).
        unsafe {
            let d = _mm512_ternarylogic_epi64::<0x96>(dst[g], t[0], t[1]);
            let d = _mm512_ternarylogic_epi64::<0x96>(d, t[2], t[3]);
            dst[g] = _mm512_ternarylogic_epi64::<0x96>(d, t[4], t[5]);
        }
    }
}

/// Packs the centre nibbles of E-form groups `lo_g` (low nibble) and `hi_g` (high nibble).
#[inline(always)]
fn pack(lo_g: __m512i, hi_g: __m512i) -> __m512i {
    // SAFETY: AVX-512F/BW present (caller `tdes64`).
    unsafe {
        _mm512_ternarylogic_epi64::<0xE4>(
            _mm512_srli_epi16::<1>(lo_g),
            _mm512_slli_epi16::<3>(hi_g),
            _mm512_set1_epi8(0x0f),
        )
    }
}

/// 3DES (48 rounds with the given lane-wise round keys) on 64 blocks in place.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,gfni")]
fn tdes64<K: RoundKeys>(blocks: &mut [[u8; 8]; 64], kv: &K) {
    let bswap = _mm512_set_epi64(
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
        0x08090a0b0c0d0e0f,
        0x0001020304050607,
    );
    // GFNI selectors: output byte i gathers bit c_i of every data byte (IP's columns).
    let xr = _mm512_set1_epi64(0x8020_0802_8020_0802u64 as i64);
    let xl = _mm512_set1_epi64(0x4010_0401_4010_0401u64 as i64);
    let ctrl = _mm512_set1_epi64(i64::from_le_bytes(EFORM_SHIFT));
    let mut a = [_mm512_setzero_si512(); 8];
    let mut b = [_mm512_setzero_si512(); 8];
    for k in 0..8 {
        // SAFETY: blocks is 512 bytes; bytes 64k..64k+64 are in bounds.
        let d = unsafe { _mm512_loadu_si512(blocks.as_ptr().cast::<u8>().add(64 * k).cast()) };
        let d = _mm512_shuffle_epi8(d, bswap);
        let qr = _mm512_gf2p8affine_epi64_epi8::<0>(xr, d);
        let ql = _mm512_gf2p8affine_epi64_epi8::<0>(xl, d);
        a[k] = _mm512_multishift_epi64_epi8(ctrl, ql);
        b[k] = _mm512_multishift_epi64_epi8(ctrl, qr);
    }
    transpose_b(&mut a);
    transpose_q(&mut a);
    transpose_b(&mut b);
    transpose_q(&mut b);
    for pass in 0..3 {
        for i in 0..8 {
            let r = 16 * pass + 2 * i;
            if pass == 1 {
                round(&mut b, &a, kv, r);
                round(&mut a, &b, kv, r + 1);
            } else {
                round(&mut a, &b, kv, r);
                round(&mut b, &a, kv, r + 1);
            }
        }
    }
    // Pre-output is b || a: b plays IP's left half, a its right half.
    let mut p = [
        pack(a[1], a[0]),
        pack(b[1], b[0]),
        pack(a[3], a[2]),
        pack(b[3], b[2]),
        pack(a[5], a[4]),
        pack(b[5], b[4]),
        pack(a[7], a[6]),
        pack(b[7], b[6]),
    ];
    transpose_q(&mut p);
    transpose_b(&mut p);
    let xo = _mm512_set1_epi64(0x0102_0408_1020_4080);
    for (k, v) in p.iter().enumerate() {
        let d = _mm512_gf2p8affine_epi64_epi8::<0>(xo, *v);
        let d = _mm512_shuffle_epi8(d, bswap);
        // SAFETY: blocks is 512 bytes; bytes 64k..64k+64 are in bounds.
        unsafe { _mm512_storeu_si512(blocks.as_mut_ptr().cast::<u8>().add(64 * k).cast(), d) };
    }
}
