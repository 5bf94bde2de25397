//! AES-NI engine: up to eight CBC chains side by side in xmm registers (AES-NI's round has
//! a latency of several cycles and more than one issue per cycle, so one chain leaves it
//! mostly idle; eight fill it). Lanes advance together for as many blocks as the shortest
//! active job has left, then finished lanes are refilled from the batch. One job alone is
//! the plain CBC loop with the round keys in registers.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::{AesCbcJob, AesKey};

/// Chains interleaved at most.
const LANES: usize = 8;

/// True when this CPU has AES-NI (and SSE2, which every x86-64 has).
pub(super) fn available() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::is_x86_feature_detected!("aes"))
}

/// One lane for a run of blocks: where its next block is, its key, its chaining value.
struct Lane<'k> {
    ptr: *mut u8,
    key: &'k AesKey,
    iv: [u8; 16],
}

/// Encrypts `blocks` blocks of each of `N` lanes in place, chaining from and back into each
/// lane's `iv`; all keys have `rounds` rounds.
///
/// # Safety
/// AES-NI must be present, and each lane's `ptr` must be valid for reads and writes of
/// `16 * blocks` bytes, the lanes' ranges disjoint.
#[target_feature(enable = "aes,sse2")]
#[allow(clippy::needless_range_loop)]
unsafe fn run<const N: usize>(lanes: &mut [Lane<'_>], blocks: usize, rounds: usize) {
    let lanes: &mut [Lane<'_>; N] = lanes.try_into().expect("N lanes");
    // SAFETY: 16 readable bytes each; the caller guarantees the data ranges.
    unsafe {
        let mut s: [__m128i; N] =
            core::array::from_fn(|l| _mm_loadu_si128(lanes[l].iv.as_ptr().cast()));
        let rk = |l: usize, r: usize| _mm_loadu_si128(lanes[l].key.rk[r].as_ptr().cast());
        for b in 0..blocks {
            for l in 0..N {
                let p = lanes[l].ptr.add(16 * b);
                let x = _mm_xor_si128(s[l], _mm_loadu_si128(p.cast()));
                s[l] = _mm_xor_si128(x, rk(l, 0));
            }
            for r in 1..rounds {
                for l in 0..N {
                    s[l] = _mm_aesenc_si128(s[l], rk(l, r));
                }
            }
            for l in 0..N {
                s[l] = _mm_aesenclast_si128(s[l], rk(l, rounds));
                _mm_storeu_si128(lanes[l].ptr.add(16 * b).cast(), s[l]);
            }
        }
        for l in 0..N {
            _mm_storeu_si128(lanes[l].iv.as_mut_ptr().cast(), s[l]);
            lanes[l].ptr = lanes[l].ptr.add(16 * blocks);
        }
    }
}

/// One chain alone, the round keys held in registers.
///
/// # Safety
/// AES-NI must be present.
#[target_feature(enable = "aes,sse2")]
unsafe fn one(job: &mut AesCbcJob<'_>) {
    let k = job.key;
    let rounds = k.rounds;
    // SAFETY: every load and store is of 16 in-bounds bytes (chunks_exact_mut, rk entries,
    // the IV array).
    unsafe {
        let mut rk = [_mm_setzero_si128(); 15];
        for (r, x) in rk.iter_mut().enumerate().take(rounds + 1) {
            *x = _mm_loadu_si128(k.rk[r].as_ptr().cast());
        }
        let mut s = _mm_loadu_si128(job.iv.as_ptr().cast());
        for c in job.data.chunks_exact_mut(16) {
            s = _mm_xor_si128(_mm_xor_si128(s, _mm_loadu_si128(c.as_ptr().cast())), rk[0]);
            for x in rk.iter().take(rounds).skip(1) {
                s = _mm_aesenc_si128(s, *x);
            }
            s = _mm_aesenclast_si128(s, rk[rounds]);
            _mm_storeu_si128(c.as_mut_ptr().cast(), s);
        }
        _mm_storeu_si128(job.iv.as_mut_ptr().cast(), s);
        rk.iter_mut().for_each(|x| *x = _mm_setzero_si128());
    }
}

/// Encrypts every job as its own CBC chain, up to eight at a time. Only called when
/// [`available`].
pub(super) fn cbc_encrypt_many(jobs: &mut [AesCbcJob<'_>]) {
    let busy: Vec<usize> = (0..jobs.len())
        .filter(|&i| jobs[i].data.len() >= 16)
        .collect();
    if busy.len() == 1 {
        // SAFETY: AES-NI detected by the caller (`available`).
        unsafe { one(&mut jobs[busy[0]]) };
        return;
    }
    for rounds in [10, 12, 14] {
        let mine: Vec<usize> = busy
            .iter()
            .copied()
            .filter(|&i| jobs[i].key.rounds == rounds)
            .collect();
        if !mine.is_empty() {
            interleave(jobs, &mine, rounds);
        }
    }
}

/// The lane scheduler over the jobs `mine` (indices, all with `rounds` rounds).
fn interleave(jobs: &mut [AesCbcJob<'_>], mine: &[usize], rounds: usize) {
    // (job, blocks left) per lane, and the lanes' run state.
    let mut slot: Vec<(usize, usize)> = Vec::with_capacity(LANES);
    let mut lanes: Vec<Lane<'_>> = Vec::with_capacity(LANES);
    let mut next = 0usize;
    loop {
        while slot.len() < LANES && next < mine.len() {
            let j = mine[next];
            next += 1;
            let job = &mut jobs[j];
            slot.push((j, job.data.len() / 16));
            lanes.push(Lane {
                ptr: job.data.as_mut_ptr(),
                key: job.key,
                iv: job.iv,
            });
        }
        if slot.is_empty() {
            break;
        }
        let run_len = slot.iter().map(|s| s.1).min().unwrap_or(0);
        // SAFETY: AES-NI was detected (`available`); each lane points into its own job's
        // data (jobs are distinct `&mut` slices) with at least `run_len` blocks left.
        unsafe {
            match lanes.len() {
                1 => run::<1>(&mut lanes, run_len, rounds),
                2 => run::<2>(&mut lanes, run_len, rounds),
                3 => run::<3>(&mut lanes, run_len, rounds),
                4 => run::<4>(&mut lanes, run_len, rounds),
                5 => run::<5>(&mut lanes, run_len, rounds),
                6 => run::<6>(&mut lanes, run_len, rounds),
                7 => run::<7>(&mut lanes, run_len, rounds),
                _ => run::<8>(&mut lanes, run_len, rounds),
            }
        }
        let mut i = 0;
        while i < slot.len() {
            slot[i].1 -= run_len;
            if slot[i].1 == 0 {
                jobs[slot[i].0].iv = lanes[i].iv;
                slot.swap_remove(i);
                lanes.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
    for l in lanes.iter_mut() {
        zeroize::Zeroize::zeroize(&mut l.iv);
    }
}

/// Decrypts one CBC chain, eight blocks at a time (the blocks are independent).
pub(super) fn cbc_decrypt(job: &mut AesCbcJob<'_>) {
    // SAFETY: only called when `available()` (AES-NI).
    unsafe { decrypt(job) }
}

/// # Safety
/// AES-NI must be present.
#[target_feature(enable = "aes,sse2")]
unsafe fn decrypt(job: &mut AesCbcJob<'_>) {
    let k = job.key;
    let rounds = k.rounds;
    // SAFETY: every load and store is of 16 in-bounds bytes (whole blocks of `data`, key
    // entries, the IV).
    unsafe {
        let mut dk = [_mm_setzero_si128(); 15];
        for (r, x) in dk.iter_mut().enumerate().take(rounds + 1) {
            *x = _mm_loadu_si128(k.drk[r].as_ptr().cast());
        }
        let mut prev = _mm_loadu_si128(job.iv.as_ptr().cast());
        let blocks = job.data.len() / 16;
        let p = job.data.as_mut_ptr();
        let mut b = 0;
        while b < blocks {
            let n = (blocks - b).min(LANES);
            let mut c = [_mm_setzero_si128(); LANES];
            let mut s = [_mm_setzero_si128(); LANES];
            for i in 0..n {
                c[i] = _mm_loadu_si128(p.add(16 * (b + i)).cast());
                s[i] = _mm_xor_si128(c[i], dk[rounds]);
            }
            for r in (1..rounds).rev() {
                for v in s.iter_mut().take(n) {
                    *v = _mm_aesdec_si128(*v, dk[r]);
                }
            }
            for i in 0..n {
                let chain = if i == 0 { prev } else { c[i - 1] };
                let x = _mm_xor_si128(_mm_aesdeclast_si128(s[i], dk[0]), chain);
                _mm_storeu_si128(p.add(16 * (b + i)).cast(), x);
            }
            prev = c[n - 1];
            b += n;
        }
        _mm_storeu_si128(job.iv.as_mut_ptr().cast(), prev);
        dk.iter_mut().for_each(|x| *x = _mm_setzero_si128());
    }
}
