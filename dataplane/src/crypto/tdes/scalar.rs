//! One block at a time: the E-form round of the AVX-512 kernel in a u64 (eight 6-bit
//! groups, one byte each), with the latency path's 64-bit combined S+P+E tables. Used when a call has too few
//! blocks to fill a wide engine (a batch of one packet).

use super::latency::{from_eform, permute, tables, to_eform, Tables};
use super::Sched;

#[inline(always)]
fn round(t: &Tables, dst: &mut u64, src: u64, k: u64) {
    let x = src ^ k;
    let mut acc = *dst;
    for j in 0..8 {
        acc ^= t.spe[j][((x >> (8 * j)) & 0x3f) as usize];
    }
    *dst = acc;
}

/// 3DES on one block with the 48 round keys of `s`.
pub(super) fn crypt_block(s: &Sched, block: &mut [u8; 8]) {
    let t = tables();
    let ip = permute(&t.ip, u64::from_be_bytes(*block));
    let mut a = to_eform((ip >> 32) as u32);
    let mut b = to_eform(ip as u32);
    for pass in 0..3 {
        for i in 0..16 {
            let r = 16 * pass + i;
            let k = u64::from_le_bytes(s.eform[r]);
            if (i + pass) % 2 == 0 {
                round(t, &mut a, b, k);
            } else {
                round(t, &mut b, a, k);
            }
        }
    }
    let pre = ((from_eform(b) as u64) << 32) | from_eform(a) as u64;
    *block = permute(&t.fp, pre).to_be_bytes();
}
