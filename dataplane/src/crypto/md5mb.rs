//! Multi-buffer HMAC-MD5 (RFC 2104 over RFC 1321) for ESP's HMAC-MD5-96 (RFC 2403).
//!
//! Lanes are jobs: 16 MD5 computations at once in AVX-512 registers, 8 with AVX2, one at a
//! time in portable code. Each lane walks its own job — the data's full blocks straight
//! from the caller's buffer, then the padded tail, then the outer block — so ragged
//! lengths only cost the lanes that idle at the very end. The inner and outer states of a
//! key are precomputed once ([`HmacMd5Key::new`]).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod compress;
mod feed;

pub use super::tdes::Level;
use compress::W32;
pub use feed::HmacMd5Feed;
use zeroize::Zeroize;

/// An HMAC-MD5 key as its two precomputed MD5 states (after `K ^ ipad` and `K ^ opad`);
/// zeroized on drop.
pub struct HmacMd5Key {
    inner: [u32; 4],
    outer: [u32; 4],
}

impl HmacMd5Key {
    /// Any key length (RFC 2104: keys longer than 64 bytes are hashed first).
    pub fn new(key: &[u8]) -> HmacMd5Key {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..16].copy_from_slice(&md5(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut ipad = [0u8; 64];
        let mut opad = [0u8; 64];
        for i in 0..64 {
            ipad[i] = k[i] ^ 0x36;
            opad[i] = k[i] ^ 0x5c;
        }
        let mut inner = compress::IV;
        let mut outer = compress::IV;
        compress::compress_one(&mut inner, &ipad);
        compress::compress_one(&mut outer, &opad);
        k.zeroize();
        ipad.zeroize();
        opad.zeroize();
        HmacMd5Key { inner, outer }
    }
}

impl Drop for HmacMd5Key {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl core::fmt::Debug for HmacMd5Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacMd5Key(..)")
    }
}

/// One HMAC computation: the full 16-byte HMAC-MD5 of `data` goes to `out` (ESP keeps
/// the first 12 bytes).
pub struct HmacMd5Job<'a> {
    pub key: &'a HmacMd5Key,
    pub data: &'a [u8],
    pub out: &'a mut [u8; 16],
}

/// Plain MD5 (RFC 1321), one message.
pub fn md5(msg: &[u8]) -> [u8; 16] {
    let mut st = compress::IV;
    let mut chunks = msg.chunks_exact(64);
    for c in chunks.by_ref() {
        compress::compress_one(&mut st, c.try_into().unwrap());
    }
    let mut tail = [0u8; 128];
    let n = pad(&mut tail, chunks.remainder(), msg.len() as u64);
    for c in tail[..n].chunks_exact(64) {
        compress::compress_one(&mut st, c.try_into().unwrap());
    }
    digest_bytes(&st)
}

/// HMAC-MD5 of one message, scalar.
fn hmac_one(key: &HmacMd5Key, data: &[u8]) -> [u8; 16] {
    HmacMd5Feed::new(key).finish(data)
}

/// Writes `rem` plus MD5 padding for a message of `total` bytes; returns 64 or 128.
fn pad(tail: &mut [u8; 128], rem: &[u8], total: u64) -> usize {
    tail.fill(0);
    tail[..rem.len()].copy_from_slice(rem);
    tail[rem.len()] = 0x80;
    let n = if rem.len() < 56 { 64 } else { 128 };
    tail[n - 8..n].copy_from_slice(&(total.wrapping_mul(8)).to_le_bytes());
    n
}

fn digest_bytes(st: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(st) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Where a lane is in its job.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// Full data blocks, then `tail_blocks` padded tail blocks.
    Inner,
    /// The outer block is next.
    Outer,
}

#[derive(Clone, Copy)]
struct Lane {
    job: usize,
    /// Bytes of the job's data already consumed (full blocks).
    pos: usize,
    phase: Phase,
    /// Tail blocks left to run (Inner), from `tail`.
    tail_left: usize,
    tail_len: usize,
    tail: [u8; 128],
}

/// Runs the jobs with `W::LANES` lanes; `compress` runs one step on all lanes.
#[allow(clippy::needless_range_loop)]
fn run<W: W32>(
    jobs: &mut [HmacMd5Job<'_>],
    compress: impl Fn(&mut [[u32; 16]; 4], &[[u32; 16]; 16]),
) {
    let lanes = W::LANES;
    let mut slot: [Option<Lane>; 16] = [None; 16];
    let mut state = [[0u32; 16]; 4];
    let mut msg = [[0u32; 16]; 16];
    let mut next = 0usize;
    loop {
        // Fill free lanes.
        for (l, s) in slot.iter_mut().enumerate().take(lanes) {
            if s.is_none() && next < jobs.len() {
                let j = &jobs[next];
                let full = j.data.len() / 64 * 64;
                let mut lane = Lane {
                    job: next,
                    pos: 0,
                    phase: Phase::Inner,
                    tail_left: 0,
                    tail_len: 0,
                    tail: [0; 128],
                };
                let n = pad(&mut lane.tail, &j.data[full..], 64 + j.data.len() as u64);
                lane.tail_left = n / 64;
                lane.tail_len = n;
                for w in 0..4 {
                    state[w][l] = j.key.inner[w];
                }
                *s = Some(lane);
                next += 1;
            }
        }
        if slot.iter().all(Option::is_none) {
            break;
        }
        // Gather one block per active lane.
        for (l, s) in slot.iter().enumerate().take(lanes) {
            let Some(lane) = s else { continue };
            let data = jobs[lane.job].data;
            let block: &[u8] = match lane.phase {
                Phase::Inner if lane.pos + 64 <= data.len() => &data[lane.pos..lane.pos + 64],
                _ => {
                    let off = lane.tail_len - 64 * lane.tail_left;
                    &lane.tail[off..off + 64]
                }
            };
            for (w, m) in msg.iter_mut().enumerate() {
                m[l] = u32::from_le_bytes(block[4 * w..4 * w + 4].try_into().unwrap());
            }
        }
        compress(&mut state, &msg);
        // Advance.
        for (l, s) in slot.iter_mut().enumerate().take(lanes) {
            let Some(lane) = s else { continue };
            let data_len = jobs[lane.job].data.len();
            match lane.phase {
                Phase::Inner if lane.pos + 64 <= data_len => lane.pos += 64,
                Phase::Inner => {
                    lane.tail_left -= 1;
                    if lane.tail_left == 0 {
                        let st = [state[0][l], state[1][l], state[2][l], state[3][l]];
                        let inner = digest_bytes(&st);
                        lane.tail = [0; 128];
                        lane.tail[..16].copy_from_slice(&inner);
                        lane.tail[16] = 0x80;
                        lane.tail[56..64].copy_from_slice(&((64u64 + 16) * 8).to_le_bytes());
                        lane.tail_len = 64;
                        lane.tail_left = 1;
                        lane.phase = Phase::Outer;
                        let key = jobs[lane.job].key;
                        for w in 0..4 {
                            state[w][l] = key.outer[w];
                        }
                    }
                }
                Phase::Outer => {
                    let st = [state[0][l], state[1][l], state[2][l], state[3][l]];
                    *jobs[lane.job].out = digest_bytes(&st);
                    *s = None;
                }
            }
        }
    }
    // Lane states started from the key's inner/outer states.
    state.zeroize();
    for s in slot.iter_mut().flatten() {
        s.tail.zeroize();
    }
}

/// HMAC-MD5 of every job, lanes across jobs (ragged lengths, mixed keys allowed).
pub fn hmac_md5_many(jobs: &mut [HmacMd5Job<'_>]) {
    hmac_md5_many_at(Level::active(), jobs)
}

/// [`hmac_md5_many`] at a forced level (lowered to what the CPU supports).
pub fn hmac_md5_many_at(level: Level, jobs: &mut [HmacMd5Job<'_>]) {
    if jobs.is_empty() {
        return;
    }
    if let [job] = jobs {
        // One packet: the SIMD lanes would idle while their longer dependency chain (no
        // vector rotate below AVX-512) runs; the scalar compression straight from the
        // buffer is faster.
        *job.out = hmac_one(job.key, job.data);
        return;
    }
    match level.clamp() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => run::<avx512::W512>(jobs, avx512::compress16),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => run::<avx2::W256>(jobs, avx2::compress8),
        _ => run::<u32>(jobs, |st, m| {
            let mut s = [st[0][0], st[1][0], st[2][0], st[3][0]];
            compress::compress::<u32>(&mut s, &core::array::from_fn(|w| m[w][0]));
            for w in 0..4 {
                st[w][0] = s[w];
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_rfc1321_suite() {
        let v: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (m, d) in v {
            assert_eq!(hex(&md5(m.as_bytes())), d, "{m:?}");
        }
    }
}
