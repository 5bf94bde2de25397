//! VAES engine: 16 CBC chains in four zmm registers (four 128-bit lanes each).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::{AesCbcJob, AesKey};

const LANES: usize = 16;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct A64([u8; 64]);

/// Round keys laid out per register: `rk[r][z]` holds the round-r keys of lanes
/// 4z..4z+4.
struct LaneKeys {
    rk: Vec<[A64; 4]>,
    ids: [usize; LANES],
    rounds: usize,
}

impl LaneKeys {
    fn set(&mut self, keys: &[Option<&AesKey>; LANES]) {
        let ids = keys.map(|k| k.map_or(0, |k| k as *const AesKey as usize));
        if ids == self.ids {
            return;
        }
        self.ids = ids;
        let first = keys.iter().flatten().next().expect("an active lane");
        self.rounds = first.rounds;
        for (l, k) in keys.iter().enumerate() {
            let k = k.unwrap_or(first);
            for r in 0..=self.rounds {
                self.rk[r][l / 4].0[16 * (l % 4)..16 * (l % 4) + 16].copy_from_slice(&k.rk[r]);
            }
        }
    }
}

impl Drop for LaneKeys {
    fn drop(&mut self) {
        for r in self.rk.iter_mut() {
            for z in r.iter_mut() {
                zeroize::Zeroize::zeroize(&mut z.0);
            }
        }
    }
}

/// Encrypts the 64-byte groups of `state` in place (CBC input already XORed in).
#[target_feature(enable = "avx512f,vaes")]
fn encrypt16(state: &mut [A64; 4], rk: &[[A64; 4]], rounds: usize) {
    // SAFETY: every A64 is 64 readable/writable aligned bytes; AVX-512F and VAES were
    // detected before this engine runs (`vaes_available`).
    unsafe {
        let mut s = [_mm512_setzero_si512(); 4];
        for z in 0..4 {
            s[z] = _mm512_xor_si512(
                _mm512_load_si512(state[z].0.as_ptr().cast()),
                _mm512_load_si512(rk[0][z].0.as_ptr().cast()),
            );
        }
        for round in rk.iter().take(rounds).skip(1) {
            for z in 0..4 {
                s[z] = _mm512_aesenc_epi128(s[z], _mm512_load_si512(round[z].0.as_ptr().cast()));
            }
        }
        for z in 0..4 {
            let last = _mm512_load_si512(rk[rounds][z].0.as_ptr().cast());
            _mm512_store_si512(
                state[z].0.as_mut_ptr().cast(),
                _mm512_aesenclast_epi128(s[z], last),
            );
        }
    }
}

/// Runs the jobs of each key size (round count) as their own pass: lanes of one
/// `vaesenc` sequence must agree on the number of rounds.
pub(super) fn cbc_encrypt_many(jobs: &mut [AesCbcJob<'_>]) {
    for rounds in [10, 12, 14] {
        if jobs.iter().any(|j| j.key.rounds == rounds) {
            run(jobs, rounds);
        }
    }
}

/// The lane scheduler for the jobs with `rounds` rounds: each active lane holds (job,
/// offset); `state` keeps each lane's last ciphertext block, into which the next plaintext
/// block is XORed.
fn run(jobs: &mut [AesCbcJob<'_>], rounds: usize) {
    let mut keys = LaneKeys {
        rk: vec![[A64([0; 64]); 4]; 15],
        ids: [usize::MAX; LANES],
        rounds: 0,
    };
    let mut state = [A64([0; 64]); 4];
    let mut lane: [Option<(usize, usize)>; LANES] = [None; LANES];
    let mut lane_key: [Option<&AesKey>; LANES] = [None; LANES];
    let mut next = 0usize;
    loop {
        for l in 0..LANES {
            if lane[l].is_none() {
                while next < jobs.len()
                    && (jobs[next].data.len() < 16 || jobs[next].key.rounds != rounds)
                {
                    next += 1;
                }
                if next < jobs.len() {
                    lane[l] = Some((next, 0));
                    lane_key[l] = Some(jobs[next].key);
                    state[l / 4].0[16 * (l % 4)..16 * (l % 4) + 16].copy_from_slice(&jobs[next].iv);
                    next += 1;
                } else {
                    lane_key[l] = None;
                }
            }
        }
        if lane.iter().all(Option::is_none) {
            break;
        }
        for l in 0..LANES {
            if let Some((j, off)) = lane[l] {
                let st = &mut state[l / 4].0[16 * (l % 4)..16 * (l % 4) + 16];
                for (s, p) in st.iter_mut().zip(&jobs[j].data[off..off + 16]) {
                    *s ^= p;
                }
            }
        }
        keys.set(&lane_key);
        // SAFETY: this module is only reached when `vaes_available()` (AVX-512F + VAES).
        unsafe { encrypt16(&mut state, &keys.rk, keys.rounds) };
        for l in 0..LANES {
            if let Some((j, off)) = lane[l] {
                let st = &state[l / 4].0[16 * (l % 4)..16 * (l % 4) + 16];
                jobs[j].data[off..off + 16].copy_from_slice(st);
                let off = off + 16;
                if off + 16 > jobs[j].data.len() {
                    jobs[j].iv.copy_from_slice(st);
                    lane[l] = None;
                } else {
                    lane[l] = Some((j, off));
                }
            }
        }
    }
    for s in state.iter_mut() {
        zeroize::Zeroize::zeroize(&mut s.0);
    }
}
