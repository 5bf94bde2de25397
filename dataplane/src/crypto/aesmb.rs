//! Multi-buffer AES-CBC encryption for ESP (RFC 3602).
//!
//! CBC encryption is serial inside a packet, so one chain at a time leaves AES-NI idle
//! most of each round (a round's latency is several cycles, its throughput one per cycle).
//! With VAES on AVX-512 this engine runs 16 packets' chains at once: four zmm registers of
//! four 128-bit lanes, one lane per packet, refilled from the batch as packets finish.
//! CBC decryption is already parallel inside a packet and stays with the `aes` crate.
//! Without VAES (or at a forced lower level) each chain runs through the `aes` crate.

#[cfg(target_arch = "x86_64")]
pub mod gcm;
/// No VAES/VPCLMULQDQ AES-GCM off x86-64: `GcmKey::new` never succeeds.
#[cfg(not(target_arch = "x86_64"))]
pub mod gcm {
    pub enum GcmKey {}
    impl GcmKey {
        pub fn new(_key: &[u8]) -> Option<GcmKey> {
            None
        }
        pub fn seal(&self, _n: &[u8; 12], _a: &[u8], _d: &mut [u8]) -> [u8; 16] {
            match *self {}
        }
        pub fn open(&self, _n: &[u8; 12], _a: &[u8], _d: &mut [u8], _t: &[u8; 16]) -> bool {
            match *self {}
        }
    }
    pub fn available() -> bool {
        false
    }
    pub fn usable_at(_level: super::Level) -> bool {
        false
    }
}
#[cfg(target_arch = "x86_64")]
mod aesni;
#[cfg(target_arch = "x86_64")]
mod gcm256;
#[cfg(target_arch = "x86_64")]
mod vaes;

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

pub use super::tdes::Level;

/// An AES key: the round keys for the VAES engine and the `aes` crate's key for the
/// fallback; round keys zeroized on drop (the crate zeroizes its own).
pub struct AesKey {
    /// Round keys 0..=rounds, each 16 bytes in AES byte order.
    rk: [[u8; 16]; 15],
    /// The equivalent inverse cipher's keys for `aesdec` (FIPS 197 §5.3.5): entry r is
    /// InvMixColumns(rk[r]) for 0 < r < rounds (entries 0 and `rounds` are rk's own).
    drk: [[u8; 16]; 15],
    rounds: usize,
    fallback: Fallback,
}

enum Fallback {
    A128(Box<aes::Aes128>),
    A192(Box<aes::Aes192>),
    A256(Box<aes::Aes256>),
}

impl Drop for AesKey {
    fn drop(&mut self) {
        self.rk.zeroize();
        self.drk.zeroize();
    }
}

impl core::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AesKey(AES-{}, ..)", 32 * (self.rounds - 6))
    }
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
fn gmul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// InvMixColumns of a round key (each 4-byte column times {0e 0b 0d 09}).
fn inv_mix_columns(k: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for c in 0..4 {
        let a = &k[4 * c..4 * c + 4];
        for r in 0..4 {
            out[4 * c + r] = gmul(a[r], 14)
                ^ gmul(a[(r + 1) % 4], 11)
                ^ gmul(a[(r + 2) % 4], 13)
                ^ gmul(a[(r + 3) % 4], 9);
        }
    }
    out
}

/// The AES S-box, derived from its definition (multiplicative inverse in GF(2^8) modulo
/// x^8 + x^4 + x^3 + x + 1, then the affine map with 0x63).
fn sbox() -> [u8; 256] {
    let mul = gmul;
    let mut s = [0u8; 256];
    for (x, out) in s.iter_mut().enumerate() {
        // x^254 = x^-1 (0 maps to 0).
        let mut inv = 1u8;
        for _ in 0..254 {
            inv = mul(inv, x as u8);
        }
        if x == 0 {
            inv = 0;
        }
        *out = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
    }
    s
}

fn sbox_table() -> &'static [u8; 256] {
    static S: std::sync::OnceLock<[u8; 256]> = std::sync::OnceLock::new();
    S.get_or_init(sbox)
}

impl AesKey {
    /// A 16-, 24- or 32-byte key; `None` for any other length.
    pub fn new(key: &[u8]) -> Option<AesKey> {
        let nk = key.len() / 4;
        let (rounds, fallback) = match key.len() {
            16 => (
                10,
                Fallback::A128(Box::new(aes::Aes128::new_from_slice(key).ok()?)),
            ),
            24 => (
                12,
                Fallback::A192(Box::new(aes::Aes192::new_from_slice(key).ok()?)),
            ),
            32 => (
                14,
                Fallback::A256(Box::new(aes::Aes256::new_from_slice(key).ok()?)),
            ),
            _ => return None,
        };
        // FIPS 197 §5.2 key expansion.
        let s = sbox_table();
        let total = 4 * (rounds + 1);
        let mut w = [[0u8; 4]; 60];
        for (i, wi) in w.iter_mut().enumerate().take(nk) {
            wi.copy_from_slice(&key[4 * i..4 * i + 4]);
        }
        let mut rcon = 1u8;
        for i in nk..total {
            let mut t = w[i - 1];
            if i % nk == 0 {
                t = [
                    s[t[1] as usize] ^ rcon,
                    s[t[2] as usize],
                    s[t[3] as usize],
                    s[t[0] as usize],
                ];
                rcon = (rcon << 1) ^ if rcon & 0x80 != 0 { 0x1b } else { 0 };
            } else if nk > 6 && i % nk == 4 {
                t = t.map(|b| s[b as usize]);
            }
            for b in 0..4 {
                w[i][b] = w[i - nk][b] ^ t[b];
            }
        }
        let mut rk = [[0u8; 16]; 15];
        for (r, k) in rk.iter_mut().enumerate().take(rounds + 1) {
            for c in 0..4 {
                k[4 * c..4 * c + 4].copy_from_slice(&w[4 * r + c]);
            }
        }
        w.zeroize();
        let mut drk = rk;
        for k in drk.iter_mut().take(rounds).skip(1) {
            *k = inv_mix_columns(k);
        }
        Some(AesKey {
            rk,
            drk,
            rounds,
            fallback,
        })
    }

    /// One block with the software-scheduled round keys, through the `aes` crate (tests).
    fn encrypt_block_fallback(&self, b: &mut [u8; 16]) {
        let blk = b.into();
        match &self.fallback {
            Fallback::A128(c) => c.encrypt_block(blk),
            Fallback::A192(c) => c.encrypt_block(blk),
            Fallback::A256(c) => c.encrypt_block(blk),
        }
    }
}

/// One CBC chain: `data` (whole 16-byte blocks; a partial tail is left untouched) is
/// encrypted in place from `iv`; on return `iv` holds the last ciphertext block.
pub struct AesCbcJob<'a> {
    pub key: &'a AesKey,
    pub iv: [u8; 16],
    pub data: &'a mut [u8],
}

/// True when this CPU runs the 16-lane VAES engine.
pub fn vaes_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *V.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("vaes")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// True when this CPU runs the AES-NI engine (eight chains side by side in xmm registers).
pub fn aesni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        aesni::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// True when [`cbc_encrypt_many`] at the active level runs chains side by side (VAES at
/// AVX-512, AES-NI from AVX2 up); otherwise it is one chain after another through the
/// `aes` crate, as any CBC loop.
pub fn multi_lane() -> bool {
    Level::active() >= Level::Avx2 && aesni_available()
}

/// Fewest chains for which the 16-lane VAES engine is used instead of eight AES-NI lanes.
/// Its per-block lane bookkeeping makes it slower than the AES-NI lanes at 64 chains on an
/// AMD EPYC (Zen 4), so only very deep batches take it.
const MIN_VAES_CHAINS: usize = 96;

/// Encrypts every job as its own CBC chain, lanes across jobs.
pub fn cbc_encrypt_many(jobs: &mut [AesCbcJob<'_>]) {
    cbc_encrypt_many_at(Level::active(), jobs)
}

/// [`cbc_encrypt_many`] at a forced level: the VAES engine needs `Level::Avx512` and VAES
/// (and enough chains to fill it), the AES-NI engine `Level::Avx2` and AES-NI; anything
/// else runs each chain through the `aes` crate.
pub fn cbc_encrypt_many_at(level: Level, jobs: &mut [AesCbcJob<'_>]) {
    #[cfg(target_arch = "x86_64")]
    {
        let level = level.clamp();
        if level == Level::Avx512
            && vaes_available()
            && jobs.iter().filter(|j| j.data.len() >= 16).count() >= MIN_VAES_CHAINS
        {
            vaes::cbc_encrypt_many(jobs);
            return;
        }
        if level >= Level::Avx2 && aesni::available() {
            aesni::cbc_encrypt_many(jobs);
            return;
        }
    }
    let _ = level;
    for j in jobs.iter_mut() {
        let mut prev = j.iv;
        for c in j.data.chunks_exact_mut(16) {
            for (p, x) in prev.iter_mut().zip(c.iter()) {
                *p ^= x;
            }
            j.key.encrypt_block_fallback(&mut prev);
            c.copy_from_slice(&prev);
        }
        j.iv = prev;
    }
}

/// Decrypts every job in place as its own CBC chain (blocks of a chain are independent, so
/// eight run side by side); on return `iv` holds the job's last ciphertext block. The
/// AES-NI path needs `Level::Avx2` and AES-NI; else the `aes` crate, block by block.
pub fn cbc_decrypt_many_at(level: Level, jobs: &mut [AesCbcJob<'_>]) {
    #[cfg(target_arch = "x86_64")]
    if level.clamp() >= Level::Avx2 && aesni::available() {
        for j in jobs.iter_mut() {
            aesni::cbc_decrypt(j);
        }
        return;
    }
    let _ = level;
    use aes::cipher::BlockCipherDecrypt;
    for j in jobs.iter_mut() {
        let mut prev = j.iv;
        for c in j.data.chunks_exact_mut(16) {
            let ct: [u8; 16] = c.try_into().expect("16 bytes");
            let b: &mut [u8; 16] = c.try_into().expect("16 bytes");
            match &j.key.fallback {
                Fallback::A128(k) => k.decrypt_block(b.into()),
                Fallback::A192(k) => k.decrypt_block(b.into()),
                Fallback::A256(k) => k.decrypt_block(b.into()),
            }
            for (x, p) in b.iter_mut().zip(prev.iter()) {
                *x ^= p;
            }
            prev = ct;
        }
        j.iv = prev;
    }
}

/// [`cbc_decrypt_many_at`] at the active level.
pub fn cbc_decrypt_many(jobs: &mut [AesCbcJob<'_>]) {
    cbc_decrypt_many_at(Level::active(), jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbox_known_entries() {
        let s = sbox_table();
        assert_eq!(
            (s[0x00], s[0x01], s[0x53], s[0xff]),
            (0x63, 0x7c, 0xed, 0x16)
        );
    }

    #[test]
    fn round_keys_match_fips197_expansion_example() {
        // FIPS 197 A.1: last round key of 2b7e1516 28aed2a6 abf71588 09cf4f3c.
        let k = AesKey::new(&[
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ])
        .unwrap();
        assert_eq!(
            k.rk[10],
            [
                0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89, 0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63,
                0x0c, 0xa6
            ]
        );
    }
}
