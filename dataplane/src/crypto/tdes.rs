//! Batch 3DES-CBC (EDE, three keys) for ESP (RFC 2451).
//!
//! CBC encryption is serial inside a packet, so its lanes come from the packets of a batch
//! (one chain per job); CBC decryption is parallel inside each packet too, so its lanes are
//! every block of every job. Three engines, picked once at run time ([`Level::detect`]):
//!
//! - [`Level::Avx512`] (AVX-512 F/BW + VBMI + GFNI): 64 blocks byte-sliced across the bytes
//!   of a zmm register; each round is 48 `vpermb` lookups of combined S-box+P tables that
//!   produce the next round's E-expanded input directly. IP/FP are one GFNI bit-transpose
//!   each; E of the first round is one `vpmultishiftqb`.
//! - [`Level::Avx2`]: bitsliced DES in 256-bit words (256 lanes).
//! - [`Level::Portable`]: bitsliced DES in `u64` words (64 lanes).
//!
//! The IP/FP pairs between the three DES passes cancel and are skipped.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod bitslice;
mod latency;
mod scalar;
#[rustfmt::skip]
mod generated;
mod tables;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use zeroize::Zeroize;

/// The process-wide ceiling set by [`Level::force`] (`u8::MAX`: none).
static CEILING: AtomicU8 = AtomicU8::new(u8::MAX);

/// SIMD level of the batch crypto kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Plain Rust, no SIMD assumptions (64 lanes in u64 words).
    Portable,
    /// AVX2.
    Avx2,
    /// AVX-512 F/BW/VL with VBMI and GFNI.
    Avx512,
}

impl Level {
    /// The best level this CPU supports (detected once).
    pub fn detect() -> Level {
        static LEVEL: OnceLock<Level> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vbmi")
                    && std::is_x86_feature_detected!("gfni")
                {
                    return Level::Avx512;
                }
                if std::is_x86_feature_detected!("avx2") {
                    return Level::Avx2;
                }
            }
            Level::Portable
        })
    }

    /// The level every batch kernel dispatches at by default: [`Level::detect`], lowered
    /// to the ceiling of [`Level::force`] when one is set.
    pub fn active() -> Level {
        let detected = Level::detect();
        match CEILING.load(Ordering::Relaxed) {
            u8::MAX => detected,
            c => Level::ALL[usize::from(c).min(2)].min(detected),
        }
    }

    /// Caps every kernel's dispatch level for the whole process (benchmarks and tests force
    /// AVX2 or portable code on a CPU that has more); `None` lifts the cap. Keys built
    /// before the call stay valid: each kernel reads the level when it runs.
    pub fn force(ceiling: Option<Level>) {
        let v = ceiling.map_or(u8::MAX, |l| l as u8);
        CEILING.store(v, Ordering::Relaxed);
    }

    /// Parses a level name as [`Level::name`] prints it.
    pub fn from_name(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == s)
    }

    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx2, Level::Avx512];

    /// Every level this CPU can run, lowest first (what tests iterate over).
    pub fn available() -> Vec<Level> {
        Level::ALL
            .into_iter()
            .filter(|l| *l <= Level::detect())
            .collect()
    }

    /// The levels this CPU cannot run (tests record them as skipped).
    pub fn unavailable() -> Vec<Level> {
        Level::ALL
            .into_iter()
            .filter(|l| *l > Level::detect())
            .collect()
    }

    /// The CPU features the level needs.
    pub fn needs(self) -> &'static str {
        match self {
            Level::Portable => "nothing",
            Level::Avx2 => "AVX2",
            Level::Avx512 => "AVX-512 F/BW/VL, VBMI and GFNI",
        }
    }

    /// `self`, lowered to what this CPU supports.
    pub fn clamp(self) -> Level {
        self.min(Level::detect())
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// 48 round subkeys (48 bits each) in the order one 3DES direction uses them.
#[derive(Clone)]
pub(crate) struct Sched {
    sub: [u64; 48],
    /// The same subkeys as eight 6-bit S-box groups per round (AVX-512 kernel).
    eform: [[u8; 8]; 48],
    /// Each E-form key byte repeated in a u32, for `vpxord` with an embedded broadcast.
    bcast: [[u32; 8]; 48],
    /// The key-folded schedule of the latency path.
    lat: latency::LatKeys,
}

impl Sched {
    fn new(sub: [u64; 48]) -> Sched {
        let mut eform = [[0u8; 8]; 48];
        for (e, k) in eform.iter_mut().zip(sub.iter()) {
            for (g, b) in e.iter_mut().enumerate() {
                *b = ((k >> (42 - 6 * g)) & 0x3f) as u8;
            }
        }
        let bcast = eform.map(|e| e.map(|b| u32::from(b) * 0x0101_0101));
        let lat = latency::LatKeys::new(&eform);
        Sched {
            sub,
            eform,
            bcast,
            lat,
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        self.sub.zeroize();
        self.eform.zeroize();
        self.bcast.zeroize();
    }
}

/// A 3DES-EDE key (K1, K2, K3) with both key schedules computed once; zeroized on drop.
pub struct Tdes3Key {
    enc: Sched,
    dec: Sched,
}

impl Tdes3Key {
    /// Builds the schedules from 24 key bytes (parity bits ignored, as RFC 2451 allows).
    pub fn new(key: &[u8; 24]) -> Tdes3Key {
        let mut k = [[0u64; 16]; 3];
        for (i, ks) in k.iter_mut().enumerate() {
            let mut kb = [0u8; 8];
            kb.copy_from_slice(&key[8 * i..8 * i + 8]);
            *ks = tables::des_subkeys(u64::from_be_bytes(kb));
            kb.zeroize();
        }
        let mut enc = [0u64; 48];
        let mut dec = [0u64; 48];
        for i in 0..16 {
            // E_K1, D_K2, E_K3 and its inverse D_K3, E_K2, D_K1.
            enc[i] = k[0][i];
            enc[16 + i] = k[1][15 - i];
            enc[32 + i] = k[2][i];
            dec[i] = k[2][15 - i];
            dec[16 + i] = k[1][i];
            dec[32 + i] = k[0][15 - i];
        }
        let key = Tdes3Key {
            enc: Sched::new(enc),
            dec: Sched::new(dec),
        };
        enc.zeroize();
        dec.zeroize();
        k.zeroize();
        key
    }
}

impl core::fmt::Debug for Tdes3Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Tdes3Key(..)")
    }
}

/// One CBC chain: `data` (a multiple of 8 bytes; a trailing partial block is left
/// untouched) is encrypted or decrypted in place. On return `iv` holds the last
/// ciphertext block, so a chain can be continued by another call.
pub struct CbcJob<'a> {
    pub key: &'a Tdes3Key,
    pub iv: [u8; 8],
    pub data: &'a mut [u8],
}

/// Identity of the per-lane key assignment an engine last built its key material for.
/// Compared by address: the keys outlive the batch call that owns the engine.
#[derive(Default)]
pub(crate) struct KeyIds(Vec<usize>);

impl KeyIds {
    /// Records `keys`; true when they differ from the previous assignment.
    pub(crate) fn update(&mut self, keys: &[&Sched]) -> bool {
        let same = self.0.len() == keys.len()
            && self
                .0
                .iter()
                .zip(keys)
                .all(|(a, k)| *a == (*k as *const Sched as usize));
        if !same {
            self.0.clear();
            self.0
                .extend(keys.iter().map(|k| *k as *const Sched as usize));
        }
        !same
    }
}

/// A block engine: runs 3DES on up to `lanes()` blocks with one key schedule per lane.
trait Engine {
    fn lanes(&self) -> usize;
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]);
}

struct Portable(bitslice::BitsliceEngine<u64>);

impl Engine for Portable {
    fn lanes(&self) -> usize {
        64
    }
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
        self.0.set_keys(keys);
        self.0.crypt(blocks);
    }
}

/// A wide engine plus the one-block path for calls with fewer than `min_wide` blocks,
/// where a full-width kernel would cost more than that many single blocks.
struct Hybrid<E: Engine> {
    wide: E,
    min_wide: usize,
}

impl<E: Engine> Engine for Hybrid<E> {
    fn lanes(&self) -> usize {
        self.wide.lanes()
    }
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
        if blocks.len() < self.min_wide {
            crypt_short(blocks, keys);
        } else {
            self.wide.crypt(blocks, keys);
        }
    }
}

/// The latency path over blocks with per-block keys: runs of one key go two at a time.
fn crypt_short(blocks: &mut [[u8; 8]], keys: &[&Sched]) {
    let mut i = 0;
    while i < blocks.len() {
        let k = keys[i];
        let mut e = i + 1;
        while e < blocks.len() && core::ptr::eq(keys[e], k) {
            e += 1;
        }
        latency::crypt_blocks(k, &mut blocks[i..e]);
        i = e;
    }
}

/// CBC-encrypts `buf[ct]` in place as one chain on the latency path (the path a lone
/// packet takes at every level) and returns the last ciphertext block; `between(buf,
/// ready)` runs after each block with `buf[..ready]` final (see the transform's fused
/// 3DES-MD5 encryption). `ct` must span whole blocks inside `buf`.
pub fn cbc_encrypt_one_with(
    key: &Tdes3Key,
    iv: [u8; 8],
    buf: &mut [u8],
    ct: core::ops::Range<usize>,
    between: impl FnMut(&[u8], usize),
) -> [u8; 8] {
    assert!(ct.len().is_multiple_of(8) && ct.end <= buf.len());
    latency::cbc_encrypt_one(&key.enc, iv, buf, ct, between)
}

/// Runs the latency path alone on independent blocks (tests compare it with the others).
pub fn latency_crypt_blocks(key: &Tdes3Key, encrypt: bool, blocks: &mut [[u8; 8]]) {
    latency::crypt_blocks(if encrypt { &key.enc } else { &key.dec }, blocks)
}

/// Runs the latency path alone for CBC encryption (tests and benchmarks).
pub fn latency_cbc_encrypt(jobs: &mut [CbcJob<'_>]) {
    latency::cbc_encrypt(jobs)
}

/// Runs the one-block path only (tests and benchmarks compare it with the wide engines).
pub fn scalar_crypt_block(key: &Tdes3Key, encrypt: bool, block: &mut [u8; 8]) {
    scalar::crypt_block(if encrypt { &key.enc } else { &key.dec }, block)
}

fn xor8(a: [u8; 8], b: [u8; 8]) -> [u8; 8] {
    (u64::from_ne_bytes(a) ^ u64::from_ne_bytes(b)).to_ne_bytes()
}

fn block_at(data: &[u8], off: usize) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[off..off + 8]);
    b
}

fn encrypt_with(eng: &mut dyn Engine, jobs: &mut [CbcJob<'_>]) {
    let lanes = eng.lanes();
    // Active lanes: (job index, byte offset of the next block, chaining value).
    let mut active: Vec<(usize, usize, [u8; 8])> = Vec::with_capacity(lanes);
    let mut blocks = vec![[0u8; 8]; lanes];
    let mut keys: Vec<&Sched> = Vec::with_capacity(lanes);
    let mut next = 0;
    loop {
        while active.len() < lanes && next < jobs.len() {
            if jobs[next].data.len() >= 8 {
                active.push((next, 0, jobs[next].iv));
            }
            next += 1;
        }
        if active.is_empty() {
            break;
        }
        keys.clear();
        for (i, &(j, off, prev)) in active.iter().enumerate() {
            blocks[i] = xor8(block_at(jobs[j].data, off), prev);
            keys.push(&jobs[j].key.enc);
        }
        let n = active.len();
        eng.crypt(&mut blocks[..n], &keys);
        let mut i = 0;
        while i < active.len() {
            let (j, off, _) = active[i];
            let c = blocks[i];
            jobs[j].data[off..off + 8].copy_from_slice(&c);
            let off = off + 8;
            if off + 8 > jobs[j].data.len() {
                jobs[j].iv = c;
                active.remove(i);
                blocks.copy_within(i + 1..n, i);
            } else {
                active[i] = (j, off, c);
                i += 1;
            }
        }
    }
}

fn decrypt_with(eng: &mut dyn Engine, jobs: &mut [CbcJob<'_>]) {
    let lanes = eng.lanes();
    let mut blocks = vec![[0u8; 8]; lanes];
    let mut prev = vec![[0u8; 8]; lanes];
    let mut place: Vec<(usize, usize)> = Vec::with_capacity(lanes);
    let mut keys: Vec<&Sched> = Vec::with_capacity(lanes);
    let (mut j, mut off) = (0usize, 0usize);
    let mut last_c = [0u8; 8];
    loop {
        place.clear();
        keys.clear();
        while place.len() < lanes && j < jobs.len() {
            if off + 8 > jobs[j].data.len() {
                if off > 0 {
                    jobs[j].iv = last_c;
                }
                j += 1;
                off = 0;
                continue;
            }
            let c = block_at(jobs[j].data, off);
            let i = place.len();
            blocks[i] = c;
            prev[i] = if off == 0 { jobs[j].iv } else { last_c };
            last_c = c;
            place.push((j, off));
            keys.push(&jobs[j].key.dec);
            off += 8;
        }
        if place.is_empty() {
            break;
        }
        let n = place.len();
        eng.crypt(&mut blocks[..n], &keys);
        for (i, &(jj, o)) in place.iter().enumerate() {
            jobs[jj].data[o..o + 8].copy_from_slice(&xor8(blocks[i], prev[i]));
        }
    }
}

/// Fewest blocks per call for which the wide engine beats the latency path (measured with
/// `espgw-perf primitives` on an AMD EPYC with AVX-512), per level: portable, AVX2,
/// AVX-512. Through the ESP path the full 64-lane u64 bitslice beats two interleaved
/// latency-path blocks (about 60 against 75 cycles/byte for 3DES-MD5 decapsulation).
const MIN_WIDE: [usize; 3] = [24, 64, 3];

/// Fewest CBC chains (packets) per encryption call for which the wide engine beats the
/// latency path (measured with `espgw-perf primitives`), per level.
/// The 256-lane AVX2 bitslice costs the same per call however few of its lanes are busy:
/// at 48 chains it is still behind the latency path (about 50 cycles/byte either way).
const MIN_WIDE_CHAINS: [usize; 3] = [48, 56, 8];

/// The latency path as an engine, for calls too small to build a wide one.
struct Short;

impl Engine for Short {
    fn lanes(&self) -> usize {
        64
    }
    fn crypt(&mut self, blocks: &mut [[u8; 8]], keys: &[&Sched]) {
        crypt_short(blocks, keys)
    }
}

fn engine(level: Level) -> Box<dyn Engine> {
    match level.clamp() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => Box::new(Hybrid {
            wide: avx512::Avx512Engine::new(),
            min_wide: MIN_WIDE[2],
        }),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => Box::new(Hybrid {
            wide: avx2::Avx2Engine::new(),
            min_wide: MIN_WIDE[1],
        }),
        _ => Box::new(Hybrid {
            wide: Portable(bitslice::BitsliceEngine::new()),
            min_wide: MIN_WIDE[0],
        }),
    }
}

/// Encrypts each job as its own CBC chain; lanes are taken across jobs (mixed lengths and
/// keys allowed).
pub fn cbc_encrypt_many(jobs: &mut [CbcJob<'_>]) {
    cbc_encrypt_many_at(Level::active(), jobs)
}

/// Decrypts each job as its own CBC chain; every block of every job is a lane.
pub fn cbc_decrypt_many(jobs: &mut [CbcJob<'_>]) {
    cbc_decrypt_many_at(Level::active(), jobs)
}

/// [`cbc_encrypt_many`] at a forced level (lowered to what the CPU supports).
pub fn cbc_encrypt_many_at(level: Level, jobs: &mut [CbcJob<'_>]) {
    if jobs.is_empty() {
        return;
    }
    // Fewer chains than the wide engine needs to beat the latency path: no engine at all.
    let chains = jobs.iter().filter(|j| j.data.len() >= 8).count();
    if chains < MIN_WIDE_CHAINS[level.clamp() as usize] {
        return latency::cbc_encrypt(jobs);
    }
    encrypt_with(engine(level).as_mut(), jobs)
}

/// [`cbc_decrypt_many`] at a forced level (lowered to what the CPU supports).
pub fn cbc_decrypt_many_at(level: Level, jobs: &mut [CbcJob<'_>]) {
    if jobs.is_empty() {
        return;
    }
    let blocks: usize = jobs.iter().map(|j| j.data.len() / 8).sum();
    if blocks < MIN_WIDE[level.clamp() as usize] {
        return decrypt_with(&mut Short, jobs);
    }
    decrypt_with(engine(level).as_mut(), jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_block(level: Level, key: &[u8; 24], pt: [u8; 8]) -> [u8; 8] {
        let k = Tdes3Key::new(key);
        let mut d = pt;
        cbc_encrypt_many_at(
            level,
            &mut [CbcJob {
                key: &k,
                iv: [0; 8],
                data: &mut d,
            }],
        );
        d
    }

    #[test]
    fn single_des_vector_via_k1_k2_k3_equal() {
        // With K1 = K2 = K3, 3DES is single DES: the textbook vector.
        let mut key = [0u8; 24];
        for i in 0..3 {
            key[8 * i..8 * i + 8].copy_from_slice(&0x133457799BBCDFF1u64.to_be_bytes());
        }
        for level in Level::available() {
            let c = one_block(level, &key, 0x0123456789ABCDEFu64.to_be_bytes());
            assert_eq!(c, 0x85E813540F0AB405u64.to_be_bytes(), "{level:?}");
        }
    }

    /// Each wide engine alone (no one-block fallback), any lane count, mixed keys, both
    /// directions, against the one-block path.
    #[test]
    fn wide_engines_match_one_block_path() {
        let keys: Vec<Tdes3Key> = (0..5u8)
            .map(|i| Tdes3Key::new(&core::array::from_fn(|b| (b as u8).wrapping_mul(37) ^ i)))
            .collect();
        for level in Level::available() {
            let mut eng: Box<dyn Engine> = match level {
                #[cfg(target_arch = "x86_64")]
                Level::Avx512 => Box::new(avx512::Avx512Engine::new()),
                #[cfg(target_arch = "x86_64")]
                Level::Avx2 => Box::new(avx2::Avx2Engine::new()),
                _ => Box::new(Portable(bitslice::BitsliceEngine::new())),
            };
            let lanes = eng.lanes();
            for n in [1, 2, 3, 7, 63, 64, lanes] {
                for (mixed, enc) in [(false, true), (true, true), (false, false), (true, false)] {
                    let ks: Vec<&Sched> = (0..n)
                        .map(|i| {
                            let k = &keys[if mixed { (i * 7 + i / 3) % 5 } else { 2 }];
                            if enc {
                                &k.enc
                            } else {
                                &k.dec
                            }
                        })
                        .collect();
                    let mut blocks: Vec<[u8; 8]> = (0..n)
                        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes())
                        .collect();
                    let mut want = blocks.clone();
                    for (b, k) in want.iter_mut().zip(&ks) {
                        scalar::crypt_block(k, b);
                    }
                    eng.crypt(&mut blocks, &ks);
                    assert_eq!(blocks, want, "{level:?} n={n} mixed={mixed} enc={enc}");
                }
            }
        }
    }

    /// The latency path against the one-block path: independent blocks, both directions,
    /// odd and even counts; and CBC chains of ragged lengths and mixed keys against the
    /// wide engine of every level.
    #[test]
    fn latency_path_matches_one_block_path_and_wide_engines() {
        let keys: Vec<Tdes3Key> = (0..3u8)
            .map(|i| Tdes3Key::new(&core::array::from_fn(|b| (b as u8).wrapping_mul(53) ^ i)))
            .collect();
        for n in [1usize, 2, 3, 8, 9] {
            for enc in [true, false] {
                let mut blocks: Vec<[u8; 8]> = (0..n)
                    .map(|i| {
                        (i as u64 + 1)
                            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                            .to_be_bytes()
                    })
                    .collect();
                let mut want = blocks.clone();
                for b in want.iter_mut() {
                    scalar_crypt_block(&keys[1], enc, b);
                }
                latency_crypt_blocks(&keys[1], enc, &mut blocks);
                assert_eq!(blocks, want, "n={n} enc={enc}");
            }
        }
        let lens = [8usize, 16, 1400, 72, 8, 0, 24, 512, 7, 64];
        let make = || -> Vec<Vec<u8>> {
            lens.iter()
                .enumerate()
                .map(|(i, &l)| (0..l).map(|b| (b * 7 + i * 31) as u8).collect())
                .collect()
        };
        // Runs `f` over jobs of `make()` (key i % 3, IV i); returns the data and final IVs.
        let run = |f: &mut dyn FnMut(&mut [CbcJob])| -> (Vec<Vec<u8>>, Vec<[u8; 8]>) {
            let mut bufs = make();
            let mut jobs: Vec<CbcJob> = bufs
                .iter_mut()
                .enumerate()
                .map(|(i, d)| CbcJob {
                    key: &keys[i % 3],
                    iv: [i as u8; 8],
                    data: d,
                })
                .collect();
            f(&mut jobs);
            let ivs = jobs.iter().map(|j| j.iv).collect();
            drop(jobs);
            (bufs, ivs)
        };
        let (want, wivs) = run(&mut |j| latency_cbc_encrypt(j));
        for level in Level::available() {
            let (got, ivs) = run(&mut |j| encrypt_with(engine(level).as_mut(), j));
            assert_eq!(got, want, "{level:?}");
            assert_eq!(ivs, wivs, "{level:?}");
        }
    }
}
