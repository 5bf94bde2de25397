//! HMAC-MD5 of one message fed a part at a time, for a caller that produces the message
//! while it hashes it: the lone-packet 3DES-MD5 path calls [`HmacMd5Feed::tick`] after
//! each DES block, and each tick runs eight of the 64 steps of the next 64-byte block
//! whose bytes are final. The DES chain and the MD5 chain are independent, so the core
//! runs the MD5 steps in the slack of the DES rounds instead of after them.

use super::compress::{self, steps8};
use super::{digest_bytes, pad, HmacMd5Key};
use zeroize::Zeroize;

pub struct HmacMd5Feed<'k> {
    key: &'k HmacMd5Key,
    /// State after the blocks completed so far.
    st: [u32; 4],
    /// Working state and message words of the block in progress.
    work: [u32; 4],
    m: [u32; 16],
    /// Parts of the block in progress already run (8: no block in progress).
    part: usize,
    /// Offset of the next block to start.
    next: usize,
}

impl<'k> HmacMd5Feed<'k> {
    pub fn new(key: &'k HmacMd5Key) -> Self {
        HmacMd5Feed {
            key,
            st: key.inner,
            work: [0; 4],
            m: [0; 16],
            part: 8,
            next: 0,
        }
    }

    /// Runs one part (eight steps) if a block is in progress or `msg[..ready]` holds the
    /// next full block; otherwise nothing.
    #[inline]
    pub fn tick(&mut self, msg: &[u8], ready: usize) {
        if self.part == 8 {
            if self.next + 64 > ready.min(msg.len()) {
                return;
            }
            let blk = &msg[self.next..self.next + 64];
            self.m = core::array::from_fn(|w| {
                u32::from_le_bytes(blk[4 * w..4 * w + 4].try_into().unwrap())
            });
            self.work = self.st;
            self.part = 0;
            self.next += 64;
        }
        let (s, m) = (&mut self.work, &self.m);
        match self.part {
            0 => steps8::<u32, 0>(s, m),
            1 => steps8::<u32, 1>(s, m),
            2 => steps8::<u32, 2>(s, m),
            3 => steps8::<u32, 3>(s, m),
            4 => steps8::<u32, 4>(s, m),
            5 => steps8::<u32, 5>(s, m),
            6 => steps8::<u32, 6>(s, m),
            _ => steps8::<u32, 7>(s, m),
        }
        self.part += 1;
        if self.part == 8 {
            for (x, y) in self.st.iter_mut().zip(self.work) {
                *x = x.wrapping_add(y);
            }
        }
    }

    /// The HMAC-MD5 of all of `msg` (every byte final now): the block in progress, the
    /// remaining full blocks, the padded tail and the outer block.
    pub fn finish(mut self, msg: &[u8]) -> [u8; 16] {
        while self.part != 8 {
            self.tick(msg, msg.len());
        }
        let mut chunks = msg[self.next..].chunks_exact(64);
        for c in chunks.by_ref() {
            compress::compress_one(&mut self.st, c.try_into().unwrap());
        }
        let mut tail = [0u8; 128];
        let n = pad(&mut tail, chunks.remainder(), 64 + msg.len() as u64);
        for c in tail[..n].chunks_exact(64) {
            compress::compress_one(&mut self.st, c.try_into().unwrap());
        }
        let inner = digest_bytes(&self.st);
        let mut st = self.key.outer;
        tail.fill(0);
        tail[..16].copy_from_slice(&inner);
        tail[16] = 0x80;
        tail[56..64].copy_from_slice(&((64u64 + 16) * 8).to_le_bytes());
        compress::compress_one(&mut st, tail[..64].try_into().unwrap());
        let out = digest_bytes(&st);
        st.zeroize();
        tail.zeroize();
        out
    }
}

impl Drop for HmacMd5Feed<'_> {
    fn drop(&mut self) {
        self.st.zeroize();
        self.work.zeroize();
        self.m.zeroize();
    }
}
