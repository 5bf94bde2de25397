//! One block at a time: the E-form round of the AVX-512 kernel in a u64 (eight 6-bit
//! groups, one byte each), with 64-bit combined S+P+E tables. Used when a call has too few
//! blocks to fill a wide engine (a batch of one packet).

use std::sync::OnceLock;

use super::tables::{eform, select, IP, SPE};
use super::Sched;

struct Tables {
    /// `spe[j][x]`: E-form contribution of S-box j on input x to all eight groups.
    spe: [[u64; 64]; 8],
    /// `ip[i][v]`: IP of a block whose byte i is v (others zero).
    ip: [[u64; 256]; 8],
    /// `fp[i][v]`: IP inverse likewise.
    fp: [[u64; 256]; 8],
}

#[allow(clippy::needless_range_loop)]
fn tables() -> &'static Tables {
    static T: OnceLock<Box<Tables>> = OnceLock::new();
    T.get_or_init(|| {
        let mut fp_tab = [0u8; 64];
        for (q, &p) in IP.iter().enumerate() {
            fp_tab[p as usize - 1] = q as u8 + 1;
        }
        let mut t = Box::new(Tables {
            spe: [[0; 64]; 8],
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

fn permute(tab: &[[u64; 256]; 8], x: u64) -> u64 {
    let mut out = 0;
    for (i, t) in tab.iter().enumerate() {
        out |= t[((x >> (56 - 8 * i)) & 0xff) as usize];
    }
    out
}

fn to_eform(v: u32) -> u64 {
    u64::from_le_bytes(eform(v))
}

fn from_eform(e: u64) -> u32 {
    let mut v = 0u32;
    for g in 0..8 {
        v |= (((e >> (8 * g + 1)) & 0xf) as u32) << (4 * (7 - g));
    }
    v
}

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
