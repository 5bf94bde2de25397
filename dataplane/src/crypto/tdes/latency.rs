//! The latency path: 3DES-CBC for a lone packet or a short batch, where the wide engines
//! would run mostly empty lanes. One packet's CBC encryption is a chain of 48 dependent
//! DES rounds per block, so what counts is the latency of one round, and this path keeps
//! on the chain only what must be there:
//!
//! - The state stays in E-form (each 32-bit half as eight 6-bit S-box input groups, one
//!   per byte, top bits clear), so a round is eight byte extractions, eight loads from
//!   256-entry tables (index = the byte; no mask, no bounds check) and an XOR tree.
//! - The round key is folded into the half in advance: a half carries the key of its next
//!   use as S-box input, and when it is updated the XOR of the old and the next key
//!   ([`LatKeys`]) goes in off the chain, so no key XOR sits between one round's tree and
//!   the next round's loads. Where the 3DES pass boundary uses a half twice in a row, the
//!   second round reads it before the first one finishes, so the two overlap.
//! - CBC chains in the IP domain: IP(P ^ C) = IP(P) ^ IP(C), and IP(C) of the previous
//!   block is its pre-output itself, so between blocks only one XOR is on the chain; IP of
//!   the plaintext and FP of the ciphertext are off it.
//!
//! Two chains are interleaved when there are two (packets for encryption, blocks for
//! decryption): one round's loads and XORs leave room in the core for another chain's.

use std::sync::OnceLock;

use super::tables::{eform, select, IP, SPE};
use super::{CbcJob, Sched};

pub(super) struct Tables {
    /// `spe[j][x]`: E-form contribution of S-box j on input x to all eight groups; only the
    /// first 64 entries are ever read (E-form bytes have their top two bits clear).
    pub(super) spe: [[u64; 256]; 8],
    /// `ip[i][v]`: IP of a block whose byte i is v (others zero).
    pub(super) ip: [[u64; 256]; 8],
    /// `fp[i][v]`: IP inverse likewise.
    pub(super) fp: [[u64; 256]; 8],
}

#[allow(clippy::needless_range_loop)]
pub(super) fn tables() -> &'static Tables {
    static T: OnceLock<Box<Tables>> = OnceLock::new();
    T.get_or_init(|| {
        let mut fp_tab = [0u8; 64];
        for (q, &p) in IP.iter().enumerate() {
            fp_tab[p as usize - 1] = q as u8 + 1;
        }
        let mut t = Box::new(Tables {
            spe: [[0; 256]; 8],
            ip: [[0; 256]; 8],
            fp: [[0; 256]; 8],
        });
        for j in 0..8 {
            for x in 0..64 {
                let mut v = 0u64;
                for g in 0..8 {
                    v |= (SPE[j][g][x] as u64) << (8 * g);
                }
                t.spe[j][x] = v;
            }
        }
        for i in 0..8 {
            for v in 0..256u64 {
                let blk = v << (56 - 8 * i);
                t.ip[i][v as usize] = select(blk, 64, &IP);
                t.fp[i][v as usize] = select(blk, 64, &fp_tab);
            }
        }
        t
    })
}

/// Which half a round updates: true for the left half `a` (the other is its input).
const fn dst_is_a(r: usize) -> bool {
    ((r % 16) + r / 16).is_multiple_of(2)
}

/// The key-folding schedule of one 3DES direction (E-form u64 per round key).
#[derive(Clone)]
pub(super) struct LatKeys {
    /// Keys the halves carry when a block starts (folded into IP of the plaintext).
    init_a: u64,
    init_b: u64,
    /// XORed into the half that round r updates: the key it carried ^ the key of its
    /// next use as input (0 after its last use).
    delta: [u64; 48],
    /// XORed into the input of rounds 16 and 32, whose input half was last keyed for
    /// rounds 15 and 31.
    fix16: u64,
    fix32: u64,
    /// Keys the halves still carry after round 47 (used as input after their last update).
    fin_a: u64,
    fin_b: u64,
}

impl LatKeys {
    pub(super) fn new(eform_keys: &[[u8; 8]; 48]) -> LatKeys {
        let k = |r: usize| u64::from_le_bytes(eform_keys[r]);
        // Key of half `a`'s (or b's) next use as round input after round `after`.
        let next = |is_a: bool, after: usize| -> u64 {
            (after..48).find(|&r| dst_is_a(r) != is_a).map_or(0, k)
        };
        let (init_a, init_b) = (next(true, 0), next(false, 0));
        let (mut ca, mut cb) = (init_a, init_b);
        let mut delta = [0u64; 48];
        let (mut fix16, mut fix32) = (0, 0);
        for (r, d) in delta.iter_mut().enumerate() {
            let carried_src = if dst_is_a(r) { cb } else { ca };
            let fix = carried_src ^ k(r);
            match r {
                16 => fix16 = fix,
                32 => fix32 = fix,
                _ => debug_assert_eq!(fix, 0, "round {r}"),
            }
            let c = if dst_is_a(r) { &mut ca } else { &mut cb };
            let n = next(dst_is_a(r), r + 1);
            *d = *c ^ n;
            *c = n;
        }
        LatKeys {
            init_a,
            init_b,
            delta,
            fix16,
            fix32,
            fin_a: ca,
            fin_b: cb,
        }
    }
}

impl Drop for LatKeys {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.delta);
        zeroize::Zeroize::zeroize(&mut self.init_a);
        zeroize::Zeroize::zeroize(&mut self.init_b);
        zeroize::Zeroize::zeroize(&mut self.fix16);
        zeroize::Zeroize::zeroize(&mut self.fix32);
        zeroize::Zeroize::zeroize(&mut self.fin_a);
        zeroize::Zeroize::zeroize(&mut self.fin_b);
    }
}

pub(super) fn permute(tab: &[[u64; 256]; 8], x: u64) -> u64 {
    let mut out = 0;
    for (i, t) in tab.iter().enumerate() {
        out |= t[((x >> (56 - 8 * i)) & 0xff) as usize];
    }
    out
}

pub(super) fn to_eform(v: u32) -> u64 {
    u64::from_le_bytes(eform(v))
}

pub(super) fn from_eform(e: u64) -> u32 {
    let mut v = 0u32;
    for g in 0..8 {
        v |= (((e >> (8 * g + 1)) & 0xf) as u32) << (4 * (7 - g));
    }
    v
}

/// E-forms (left, right) of IP of a block.
#[inline(always)]
fn ip_eform(t: &Tables, block: [u8; 8]) -> (u64, u64) {
    let ip = permute(&t.ip, u64::from_be_bytes(block));
    (to_eform((ip >> 32) as u32), to_eform(ip as u32))
}

/// The block whose pre-output (in E-form, both halves carrying no key) is `(a, b)`.
#[inline(always)]
fn output(t: &Tables, a: u64, b: u64) -> [u8; 8] {
    let pre = ((from_eform(b) as u64) << 32) | from_eform(a) as u64;
    permute(&t.fp, pre).to_be_bytes()
}

/// `F` of an input half already keyed: the eight S-box+P+E lookups combined as a tree of
/// depth three. Each output bit comes from one S-box (P permutes, E copies), so the eight
/// contributions have disjoint bits and OR, ADD and XOR of them agree; a different
/// operation per level keeps the compiler from re-associating the tree into a chain of
/// eight dependent XORs (eight cycles instead of three on every round).
#[inline(always)]
fn f(t: &Tables, x: u64) -> u64 {
    let l = |j: usize| t.spe[j][((x >> (8 * j)) as u8) as usize];
    let (p01, p23, p45, p67) = (l(0) | l(1), l(2) | l(3), l(4) | l(5), l(6) | l(7));
    p01.wrapping_add(p23) ^ p45.wrapping_add(p67)
}

/// The 48 rounds on `N` independent blocks whose halves carry their keys' `init_*`; on
/// return they carry no key.
#[inline(always)]
fn rounds<const N: usize>(t: &Tables, k: &[&LatKeys; N], a: &mut [u64; N], b: &mut [u64; N]) {
    macro_rules! rnd {
        ($dst:ident, $src:ident, $r:expr, $fix:ident) => {
            for c in 0..N {
                let x = $src[c] ^ $fix(k[c]);
                let keyed = $dst[c] ^ k[c].delta[$r];
                $dst[c] = f(t, x) ^ keyed;
            }
        };
    }
    let no = |_: &LatKeys| 0u64;
    let f16 = |k: &LatKeys| k.fix16;
    let f32_ = |k: &LatKeys| k.fix32;
    // Straight-line: no loop-carried bookkeeping between rounds, key offsets immediate.
    macro_rules! pairs {
        ($x:ident, $y:ident, $($r:expr),*) => {
            $( rnd!($x, $y, $r, no); rnd!($y, $x, $r + 1, no); )*
        };
    }
    pairs!(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    rnd!(b, a, 16, f16);
    rnd!(a, b, 17, no);
    pairs!(b, a, 18, 20, 22, 24, 26, 28, 30);
    rnd!(a, b, 32, f32_);
    rnd!(b, a, 33, no);
    pairs!(a, b, 34, 36, 38, 40, 42, 44, 46);
    for c in 0..N {
        a[c] ^= k[c].fin_a;
        b[c] ^= k[c].fin_b;
    }
}

/// 3DES on independent blocks (ECB-like; CBC decryption XORs the chaining values itself),
/// two at a time.
pub(super) fn crypt_blocks(s: &Sched, blocks: &mut [[u8; 8]]) {
    let t = tables();
    let k = &s.lat;
    let mut pairs = blocks.chunks_exact_mut(2);
    for pair in pairs.by_ref() {
        let (a0, b0) = ip_eform(t, pair[0]);
        let (a1, b1) = ip_eform(t, pair[1]);
        let mut a = [a0 ^ k.init_a, a1 ^ k.init_a];
        let mut b = [b0 ^ k.init_b, b1 ^ k.init_b];
        rounds::<2>(t, &[k, k], &mut a, &mut b);
        pair[0] = output(t, a[0], b[0]);
        pair[1] = output(t, a[1], b[1]);
    }
    for blk in pairs.into_remainder() {
        let (a0, b0) = ip_eform(t, *blk);
        let mut a = [a0 ^ k.init_a];
        let mut b = [b0 ^ k.init_b];
        rounds::<1>(t, &[k], &mut a, &mut b);
        *blk = output(t, a[0], b[0]);
    }
}

/// One chain's place: its job, the offset of its next block, and its state (the previous
/// block's pre-output, carrying no key).
struct Chain {
    job: usize,
    off: usize,
    a: u64,
    b: u64,
}

impl Chain {
    fn start(t: &Tables, job: usize, iv: [u8; 8]) -> Chain {
        // The IV plays the previous ciphertext: its IP is the "pre-output" b || a.
        let (hi, lo) = ip_eform(t, iv);
        Chain {
            job,
            off: 0,
            a: lo,
            b: hi,
        }
    }
}

/// Runs `N` chains one block each: input = IP(P) ^ IP(previous C); writes the ciphertext
/// and advances each chain's offset.
#[inline(always)]
fn step<const N: usize>(t: &Tables, jobs: &mut [CbcJob<'_>], ch: &mut [&mut Chain; N]) {
    let keys: [&LatKeys; N] = core::array::from_fn(|c| &jobs[ch[c].job].key.enc.lat);
    let mut a = [0u64; N];
    let mut b = [0u64; N];
    for c in 0..N {
        let j = &jobs[ch[c].job];
        let mut p = [0u8; 8];
        p.copy_from_slice(&j.data[ch[c].off..ch[c].off + 8]);
        let (pa, pb) = ip_eform(t, p);
        // Previous pre-output (b || a) is IP(C): left half = b, right half = a.
        a[c] = (pa ^ keys[c].init_a) ^ ch[c].b;
        b[c] = (pb ^ keys[c].init_b) ^ ch[c].a;
    }
    rounds::<N>(t, &keys, &mut a, &mut b);
    for c in 0..N {
        let out = output(t, a[c], b[c]);
        let off = ch[c].off;
        jobs[ch[c].job].data[off..off + 8].copy_from_slice(&out);
        ch[c].a = a[c];
        ch[c].b = b[c];
        ch[c].off = off + 8;
    }
}

/// CBC-encrypts every job (each its own chain, its own key), two chains at a time.
pub(super) fn cbc_encrypt(jobs: &mut [CbcJob<'_>]) {
    let t = tables();
    let blocks_of = |j: &CbcJob<'_>| j.data.len() / 8;
    let mut next = 0usize;
    let mut slots: [Option<Chain>; 2] = [None, None];
    loop {
        for s in slots.iter_mut() {
            while s.is_none() && next < jobs.len() {
                if blocks_of(&jobs[next]) > 0 {
                    *s = Some(Chain::start(t, next, jobs[next].iv));
                }
                next += 1;
            }
        }
        match &mut slots {
            [Some(x), Some(y)] => step::<2>(t, jobs, &mut [x, y]),
            [Some(x), None] | [None, Some(x)] => step::<1>(t, jobs, &mut [x]),
            [None, None] => break,
        }
        for s in slots.iter_mut() {
            if let Some(c) = s {
                if c.off + 8 > jobs[c.job].data.len() {
                    let off = c.off;
                    jobs[c.job]
                        .iv
                        .copy_from_slice(&jobs[c.job].data[off - 8..off]);
                    *s = None;
                }
            }
        }
    }
}

/// CBC-encrypts `buf[ct]` in place as one chain (`ct` a whole number of blocks) and
/// returns its last ciphertext block. After each block, `between(buf, ready)` runs with
/// `buf[..ready]` final up to that block's end: work that does not depend on the next
/// block (the HMAC over what is already ciphertext) fills the slack of the DES rounds.
#[inline(always)]
pub(super) fn cbc_encrypt_one(
    s: &Sched,
    iv: [u8; 8],
    buf: &mut [u8],
    ct: core::ops::Range<usize>,
    mut between: impl FnMut(&[u8], usize),
) -> [u8; 8] {
    let t = tables();
    let k = &s.lat;
    // The IV plays the previous ciphertext (see `Chain::start`).
    let (hi, lo) = ip_eform(t, iv);
    let (mut ca, mut cb) = (lo, hi);
    let mut last = iv;
    for off in ct.step_by(8) {
        let (pa, pb) = ip_eform(t, block_of(buf, off));
        let mut a = [(pa ^ k.init_a) ^ cb];
        let mut b = [(pb ^ k.init_b) ^ ca];
        rounds::<1>(t, &[k], &mut a, &mut b);
        (ca, cb) = (a[0], b[0]);
        last = output(t, ca, cb);
        buf[off..off + 8].copy_from_slice(&last);
        between(buf, off + 8);
    }
    last
}

#[inline(always)]
fn block_of(buf: &[u8], off: usize) -> [u8; 8] {
    let mut p = [0u8; 8];
    p.copy_from_slice(&buf[off..off + 8]);
    p
}
