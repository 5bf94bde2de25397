//! Anti-replay (RFC 4303 §3.4.3, RFC 4304 ESN) with a bitmap indexed by sequence number
//! that is never shifted (RFC 6479), safe for several workers on one SA at once.
//!
//! The bitmap is a ring of 64-bit words; each word holds 32 bits of the bitmap in its
//! low half and, in its high half, the low 32 bits of the block number (`seq / 32`) the
//! bits belong to. A word whose tag is older than a packet's block is stale and counts as
//! empty, so advancing the window never clears words ahead of time and a single
//! compare-and-swap both tests and sets a bit. `check` runs before decryption, `commit`
//! after the ICV verified; `commit` is the authority, so of two copies of a packet that
//! race through two workers exactly one is accepted.
//!
//! Outbound, [`SeqCounter`] hands out sequence numbers by ranges with one atomic add and
//! refuses to wrap.

use std::sync::atomic::{AtomicU64, Ordering};

/// Largest window size accepted.
pub const MAX_REPLAY_WINDOW: u32 = 1 << 16;
/// IOS's default window.
pub const DEFAULT_REPLAY_WINDOW: u32 = 64;

const BITS_PER_WORD: u64 = 32;

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Seen before.
    Replay,
    /// Left of the window (too old to tell), or zero.
    OutOfWindow,
}

/// The inbound replay window of one SA.
#[derive(Debug)]
pub struct ReplayWindow {
    size: u64,
    esn: bool,
    /// Highest sequence number committed (0: none yet).
    top: AtomicU64,
    words: Box<[AtomicU64]>,
    mask: u64,
}

/// Window size outside 1..=MAX_REPLAY_WINDOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replay window must be 1..={max}, got {0}", max = MAX_REPLAY_WINDOW)]
pub struct BadWindowSize(pub u32);

impl ReplayWindow {
    /// A window of `size` packets; `esn` enables 64-bit extended sequence numbers.
    pub fn new(size: u32, esn: bool) -> Result<Self, BadWindowSize> {
        if size == 0 || size > MAX_REPLAY_WINDOW {
            return Err(BadWindowSize(size));
        }
        // Enough words to cover the window from any bit offset, plus one.
        let n = (u64::from(size).div_ceil(BITS_PER_WORD) + 1).next_power_of_two();
        let words = (0..n).map(|_| AtomicU64::new(0)).collect();
        Ok(ReplayWindow {
            size: u64::from(size),
            esn,
            top: AtomicU64::new(0),
            words,
            mask: n - 1,
        })
    }

    pub fn size(&self) -> u32 {
        self.size as u32
    }

    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Highest sequence number accepted so far.
    pub fn top(&self) -> u64 {
        self.top.load(Ordering::Acquire)
    }

    /// The full sequence number for the 32 bits on the wire: itself without ESN, and
    /// with ESN the high half inferred from the window (RFC 4303 Appendix A.2).
    pub fn infer(&self, seq_lo: u32) -> u64 {
        if !self.esn {
            return u64::from(seq_lo);
        }
        let top = self.top();
        let tl = top as u32;
        let th = top >> 32;
        let w = self.size as u32;
        let bottom = tl.wrapping_sub(w - 1);
        let hi = if tl >= w - 1 {
            if seq_lo >= bottom {
                th
            } else {
                th + 1
            }
        } else if seq_lo >= bottom {
            // The window straddles a 2^32 boundary and the packet sits in its lower part.
            th.saturating_sub(1)
        } else {
            th
        };
        (hi << 32) | u64::from(seq_lo)
    }

    fn slot(&self, seq: u64) -> (&AtomicU64, u64, u64) {
        let block = seq / BITS_PER_WORD;
        let word = &self.words[(block & self.mask) as usize];
        (word, block & 0xffff_ffff, 1u64 << (seq % BITS_PER_WORD))
    }

    /// Tag comparison: >0 the word is older than `block`, 0 same, <0 newer. A word that
    /// was never written (all zero: a committed word always has a bit set) is older than
    /// any block. Tags are compared modulo 2^32 blocks (2^37 sequence numbers); a slot is
    /// rewritten every `words × 32` numbers while traffic flows, so they never get that
    /// far apart.
    fn age(word: u64, block: u64) -> i32 {
        if word == 0 {
            return 1;
        }
        (block as u32).wrapping_sub((word >> 32) as u32) as i32
    }

    /// Would `seq` be accepted now? Call before spending time on decryption.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::OutOfWindow);
        }
        let top = self.top();
        if seq > top {
            return Ok(());
        }
        if seq + self.size <= top {
            return Err(ReplayError::OutOfWindow);
        }
        let (word, block, bit) = self.slot(seq);
        let w = word.load(Ordering::Acquire);
        match Self::age(w, block) {
            0 if w & bit != 0 => Err(ReplayError::Replay),
            a if a < 0 => Err(ReplayError::OutOfWindow),
            _ => Ok(()),
        }
    }

    /// Marks `seq` as received. Call only after the ICV verified. Fails if another
    /// worker committed the same number first or the window moved past it.
    pub fn commit(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 || seq + self.size <= self.top() {
            return Err(ReplayError::OutOfWindow);
        }
        let (word, block, bit) = self.slot(seq);
        let mut cur = word.load(Ordering::Acquire);
        loop {
            let new = match Self::age(cur, block) {
                0 if cur & bit != 0 => return Err(ReplayError::Replay),
                0 => cur | bit,
                a if a > 0 => (block << 32) | bit,
                _ => return Err(ReplayError::OutOfWindow),
            };
            match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.top.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }
}

/// A range of outbound sequence numbers handed to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub start: u64,
    /// How many of the requested numbers were granted (the rest would wrap).
    pub granted: u32,
}

/// The outbound sequence counter of one SA, shared by all workers.
#[derive(Debug)]
pub struct SeqCounter {
    next: AtomicU64,
    last: u64,
}

impl SeqCounter {
    /// Starts at 1. Without ESN the last number is 2^32-1; with ESN 2^63-1 (far beyond
    /// any lifetime, and the counter itself cannot overflow).
    pub fn new(esn: bool) -> Self {
        Self::starting_at(1, esn)
    }

    /// A counter whose next number is `next` (tests, and SAs restored after a restart).
    pub fn starting_at(next: u64, esn: bool) -> Self {
        SeqCounter {
            next: AtomicU64::new(next.max(1)),
            last: if esn {
                (1 << 63) - 1
            } else {
                u64::from(u32::MAX)
            },
        }
    }

    /// Reserves `n` consecutive numbers with one atomic add. Numbers past the last one
    /// are never handed out: `granted` says how many of the `n` are usable; the SA must
    /// be replaced once it falls short.
    pub fn reserve(&self, n: u32) -> SeqRange {
        let start = self.next.fetch_add(u64::from(n), Ordering::Relaxed);
        let granted = if start > self.last {
            0
        } else {
            (self.last - start + 1).min(u64::from(n)) as u32
        };
        SeqRange { start, granted }
    }

    /// The next number that would be handed out.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    pub fn is_exhausted(&self) -> bool {
        self.peek() > self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU8;
    use std::sync::Arc;

    fn accept(w: &ReplayWindow, s: u64) -> Result<(), ReplayError> {
        w.check(s)?;
        w.commit(s)
    }

    #[test]
    fn in_order_then_replay_and_old() {
        let w = ReplayWindow::new(64, false).unwrap();
        for s in 1..=200 {
            assert_eq!(accept(&w, s), Ok(()), "{s}");
        }
        assert_eq!(w.check(200), Err(ReplayError::Replay));
        assert_eq!(w.check(137), Err(ReplayError::Replay));
        assert_eq!(w.check(136), Err(ReplayError::OutOfWindow));
        assert_eq!(w.check(0), Err(ReplayError::OutOfWindow));
        assert_eq!(accept(&w, 201), Ok(()));
    }

    #[test]
    fn out_of_order_within_window() {
        let w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(accept(&w, 100), Ok(()));
        // 37..=100 is the window: 37 accepted, 36 too old.
        assert_eq!(accept(&w, 36), Err(ReplayError::OutOfWindow));
        assert_eq!(accept(&w, 37), Ok(()));
        assert_eq!(accept(&w, 37), Err(ReplayError::Replay));
        assert_eq!(accept(&w, 99), Ok(()));
        // A jump far ahead leaves stale words that must read as empty, not as replays.
        assert_eq!(accept(&w, 100_000), Ok(()));
        for s in 99_937..100_000 {
            assert_eq!(accept(&w, s), Ok(()), "{s}");
        }
        assert_eq!(accept(&w, 99_936), Err(ReplayError::OutOfWindow));
    }

    #[test]
    fn check_does_not_commit() {
        let w = ReplayWindow::new(64, false).unwrap();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.top(), 0);
        assert_eq!(w.commit(5), Ok(()));
        assert_eq!(w.commit(5), Err(ReplayError::Replay));
    }

    #[test]
    fn large_windows() {
        for size in [64u32, 1024, 4096, 65536] {
            let w = ReplayWindow::new(size, false).unwrap();
            let top = 3 * u64::from(size) + 17;
            assert_eq!(accept(&w, top), Ok(()));
            let lowest = top - u64::from(size) + 1;
            for s in (lowest..top).rev() {
                assert_eq!(accept(&w, s), Ok(()), "size {size} seq {s}");
            }
            assert_eq!(accept(&w, lowest - 1), Err(ReplayError::OutOfWindow));
            assert_eq!(accept(&w, lowest), Err(ReplayError::Replay));
        }
        assert!(ReplayWindow::new(0, false).is_err());
        assert!(ReplayWindow::new(MAX_REPLAY_WINDOW + 1, false).is_err());
    }

    #[test]
    fn fresh_window_accepts_any_starting_point() {
        // Block numbers whose low 32 bits have the top bit set must not read as "newer"
        // than the empty words.
        for start in [1u64 << 36, (1 << 37) - 5, 0xffff_ffff_0000, 3 << 40] {
            let w = ReplayWindow::new(64, true).unwrap();
            assert_eq!(accept(&w, start), Ok(()), "{start:#x}");
            assert_eq!(accept(&w, start - 1), Ok(()));
            assert_eq!(accept(&w, start), Err(ReplayError::Replay));
        }
    }

    #[test]
    fn esn_inference_across_boundary() {
        let w = ReplayWindow::new(64, true).unwrap();
        let base: u64 = 0xffff_ffff - 10;
        assert_eq!(w.commit(base), Ok(()));
        // Low halves after the wrap belong to the next 2^32 block.
        assert_eq!(w.infer(3), (1 << 32) | 3);
        assert_eq!(w.infer(0xffff_fff0), 0xffff_fff0);
        assert_eq!(w.commit(w.infer(3)), Ok(()));
        // Now the top is in block 1 with a small low half: the window straddles.
        assert_eq!(w.infer(0xffff_fff8), 0xffff_fff8);
        assert_eq!(w.infer(2), (1 << 32) | 2);
        assert_eq!(w.infer(1000), (1 << 32) | 1000);
        assert_eq!(accept(&w, w.infer(0xffff_fff8)), Ok(()));
        assert_eq!(accept(&w, w.infer(3)), Err(ReplayError::Replay));
        // Without ESN the low half is the number.
        let plain = ReplayWindow::new(64, false).unwrap();
        assert_eq!(plain.infer(7), 7);
    }

    #[test]
    fn concurrent_workers_accept_each_number_once() {
        const N: u64 = 40_000;
        let w = Arc::new(ReplayWindow::new(4096, false).unwrap());
        let hits: Arc<Vec<AtomicU8>> = Arc::new((0..=N).map(|_| AtomicU8::new(0)).collect());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (w, hits) = (w.clone(), hits.clone());
                std::thread::spawn(move || {
                    // Each worker sees every packet (duplicates across workers), in a
                    // slightly different local order.
                    let mut s = 1;
                    while s <= N {
                        let end = (s + 8).min(N + 1);
                        let mut chunk: Vec<u64> = (s..end).collect();
                        if t % 2 == 1 {
                            chunk.reverse();
                        }
                        for q in chunk {
                            if w.check(q).is_ok() && w.commit(q).is_ok() {
                                hits[q as usize].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        s = end;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut once = 0;
        for (q, h) in hits.iter().enumerate().skip(1) {
            let h = h.load(Ordering::Relaxed);
            assert!(h <= 1, "seq {q} accepted {h} times");
            once += u64::from(h);
        }
        // Every number reaches some worker before the window passes it.
        assert_eq!(once, N);
        assert_eq!(w.top(), N);
    }

    #[test]
    fn seq_counter_never_wraps() {
        let c = SeqCounter::starting_at(u64::from(u32::MAX) - 2, false);
        assert_eq!(
            c.reserve(2),
            SeqRange {
                start: u64::from(u32::MAX) - 2,
                granted: 2
            }
        );
        assert_eq!(
            c.reserve(4),
            SeqRange {
                start: u64::from(u32::MAX),
                granted: 1
            }
        );
        assert_eq!(c.reserve(1).granted, 0);
        assert!(c.is_exhausted());
        let e = SeqCounter::starting_at(u64::from(u32::MAX), true);
        assert_eq!(e.reserve(4).granted, 4);
        assert_eq!(e.peek(), u64::from(u32::MAX) + 4);
    }

    #[test]
    fn seq_counter_shared_by_threads_gives_disjoint_ranges() {
        let c = Arc::new(SeqCounter::new(false));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..1000).map(|_| c.reserve(7).start).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut starts: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        starts.sort_unstable();
        for w in starts.windows(2) {
            assert_eq!(w[1] - w[0], 7);
        }
        assert_eq!(starts[0], 1);
    }
}
