//! Counters the dataplane writes and control reads: per SA (packets, bytes, drops by
//! [`DropReason`], the outbound sequence-number counter) and dataplane-global (drops not
//! tied to an SA, by the same [`DropReason`], and sa_request statistics). Every update is one `fetch_add(Relaxed)`, safe with any number
//! of writer threads and processes.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use super::drops::DropReason;
use super::error::SeqError;
use super::layout::COUNTER_WORDS;

fn drop_word(r: DropReason) -> usize {
    cw::DROPS + r as usize
}

/// Word indices inside one SA's 256-byte counter block.
pub(crate) mod cw {
    /// Sequence numbers handed out so far (the last one used is this value).
    pub const SEQ_USED: usize = 0;
    /// The highest sequence number that may be used (2^32-1, or 2^64-1 with ESN).
    pub const SEQ_LIMIT: usize = 1;
    pub const PACKETS: usize = 2;
    pub const BYTES: usize = 3;
    /// Inbound: highest sequence number that passed the ICV (raised with fetch_max).
    pub const INBOUND_TOP: usize = 4;
    // Words 5..8 reserved.
    /// Drops by [`DropReason`](super::DropReason): DROPS .. DROPS + DropReason::COUNT.
    pub const DROPS: usize = 8;
}

const _: () = assert!(cw::DROPS + DropReason::COUNT <= COUNTER_WORDS);

/// Counters of one SA slot. Cheap to create; all methods take `&self`.
#[derive(Clone, Copy)]
pub struct SaCounters<'a> {
    pub(crate) w: &'a [AtomicU64],
}

/// A copy of one SA's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaCounterValues {
    pub packets: u64,
    pub bytes: u64,
    /// Indexed like [`DropReason::ALL`].
    pub drops: [u64; DropReason::COUNT],
    /// Outbound: sequence numbers used so far (the last sequence number sent or reserved).
    pub seq_used: u64,
    /// Inbound: highest sequence number that passed the ICV.
    pub inbound_top: u64,
}

impl SaCounterValues {
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    /// All drops, whatever the reason (IOS's `#send errors` / `#recv errors`).
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Kilobytes processed, for the kilobyte lifetime.
    pub fn kilobytes(&self) -> u64 {
        self.bytes / 1024
    }
}

impl<'a> SaCounters<'a> {
    /// Counts `packets` packets totalling `bytes` bytes (ESP payload bytes as IOS counts
    /// them for the kilobyte lifetime; the caller chooses and documents which).
    #[inline]
    pub fn add_packets(&self, packets: u64, bytes: u64) {
        self.w[cw::PACKETS].fetch_add(packets, Ordering::Relaxed);
        self.w[cw::BYTES].fetch_add(bytes, Ordering::Relaxed);
    }
    /// Counts `n` drops for `reason`.
    #[inline]
    pub fn add_drop(&self, reason: DropReason, n: u64) {
        self.w[drop_word(reason)].fetch_add(n, Ordering::Relaxed);
    }
    pub fn packets(&self) -> u64 {
        self.w[cw::PACKETS].load(Ordering::Relaxed)
    }
    pub fn bytes(&self) -> u64 {
        self.w[cw::BYTES].load(Ordering::Relaxed)
    }
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.w[drop_word(reason)].load(Ordering::Relaxed)
    }
    /// Reserves `n` consecutive outbound sequence numbers with one `fetch_add`. The range
    /// never contains 0 and never wraps: once the SA's space is used up every call fails
    /// (and the SA must be replaced). Unique across all threads and processes, including a
    /// restarted dataplane, because the counter lives in the region.
    #[inline]
    pub fn reserve_seq(&self, n: u64) -> Result<Range<u64>, SeqError> {
        let limit = self.w[cw::SEQ_LIMIT].load(Ordering::Relaxed);
        let used = self.w[cw::SEQ_USED].fetch_add(n, Ordering::Relaxed);
        match used.checked_add(n) {
            Some(last) if last <= limit && last < u64::MAX => Ok(used + 1..last + 1),
            _ => Err(SeqError::Exhausted),
        }
    }
    /// Inbound: records that `seq` passed the ICV check (call once per batch with the
    /// batch's highest). Kept in the region so that a restarted dataplane can start its
    /// replay window at [`SaCounters::inbound_top`] instead of empty, and refuse replays
    /// of packets it accepted before the restart.
    #[inline]
    pub fn raise_inbound_top(&self, seq: u64) {
        self.w[cw::INBOUND_TOP].fetch_max(seq, Ordering::Relaxed);
    }
    /// Highest inbound sequence number recorded by [`SaCounters::raise_inbound_top`].
    pub fn inbound_top(&self) -> u64 {
        self.w[cw::INBOUND_TOP].load(Ordering::Relaxed)
    }
    /// Sequence numbers handed out so far.
    pub fn seq_used(&self) -> u64 {
        self.w[cw::SEQ_USED].load(Ordering::Relaxed)
    }
    /// A copy of all counters (each word read atomically; the set is not a snapshot).
    pub fn values(&self) -> SaCounterValues {
        let mut drops = [0u64; DropReason::COUNT];
        for r in DropReason::ALL {
            drops[r as usize] = self.drops(r);
        }
        SaCounterValues {
            packets: self.packets(),
            bytes: self.bytes(),
            drops,
            seq_used: self.seq_used(),
            inbound_top: self.inbound_top(),
        }
    }
    /// Writer only: zero the block and set the sequence limit for a new SA.
    pub(crate) fn reset(&self, seq_limit: u64) {
        for (i, w) in self.w.iter().enumerate() {
            w.store(
                if i == cw::SEQ_LIMIT { seq_limit } else { 0 },
                Ordering::Relaxed,
            );
        }
    }
}

crate::named_enum! {
    /// The data plane's sa_request statistics (its global drops are counted by
    /// [`DropReason`]). Declaration order is storage order in the region.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum GlobalCounter {
        /// sa_request events posted to the ring.
        SaRequestPosted => "sa-request-posted",
        /// sa_request suppressed: the same crypto-map entry asked recently.
        SaRequestDeduplicated => "sa-request-deduplicated",
        /// sa_request lost: ring full.
        SaRequestOverflow => "sa-request-overflow",
        /// sa_request request table full: posted without deduplication.
        SaRequestTableFull => "sa-request-table-full",
        /// sa_request claimed by a producer that never published it (skipped by control).
        SaRequestLost => "sa-request-lost",
    }
}

/// Word offsets inside the header's global counter area.
mod gw {
    /// Drops by [`DropReason`](super::DropReason): 0 .. DropReason::COUNT.
    pub const DROPS: usize = 0;
    /// [`GlobalCounter`](super::GlobalCounter)s: STATS .. STATS + GlobalCounter::COUNT.
    pub const STATS: usize = 32;
}

const _: () = assert!(gw::DROPS + DropReason::COUNT <= gw::STATS);
const _: () = assert!(gw::STATS + GlobalCounter::COUNT <= super::layout::hdr::GLOBAL_COUNTER_WORDS);

/// The dataplane-global counters of a region: drops no SA can be blamed for, by reason,
/// and the sa_request statistics.
#[derive(Clone, Copy)]
pub struct GlobalCounters<'a> {
    pub(crate) w: &'a [AtomicU64],
}

impl<'a> GlobalCounters<'a> {
    #[inline]
    pub fn add(&self, c: GlobalCounter, n: u64) {
        self.w[gw::STATS + c as usize].fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self, c: GlobalCounter) -> u64 {
        self.w[gw::STATS + c as usize].load(Ordering::Relaxed)
    }
    /// Counts `n` drops for `reason` not tied to an SA.
    #[inline]
    pub fn add_drop(&self, reason: DropReason, n: u64) {
        self.w[gw::DROPS + reason as usize].fetch_add(n, Ordering::Relaxed);
    }
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.w[gw::DROPS + reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Vec<AtomicU64> {
        (0..COUNTER_WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn seq_ranges_and_exhaustion() {
        let b = block();
        let c = SaCounters { w: &b };
        c.reset(10);
        assert_eq!(c.reserve_seq(4), Ok(1..5));
        assert_eq!(c.reserve_seq(6), Ok(5..11));
        assert_eq!(c.reserve_seq(1), Err(SeqError::Exhausted));
        assert_eq!(c.reserve_seq(1), Err(SeqError::Exhausted));
        c.reset(10);
        assert_eq!(c.reserve_seq(11), Err(SeqError::Exhausted));
        c.reset(u64::from(u32::MAX));
        b[cw::SEQ_USED].store(u64::from(u32::MAX) - 2, Ordering::Relaxed);
        assert_eq!(
            c.reserve_seq(2),
            Ok(u64::from(u32::MAX) - 1..u64::from(u32::MAX) + 1)
        );
        assert_eq!(c.reserve_seq(1), Err(SeqError::Exhausted));
    }

    #[test]
    fn drops_land_in_their_words() {
        let b = block();
        let c = SaCounters { w: &b };
        for (i, r) in DropReason::ALL.iter().enumerate() {
            c.add_drop(*r, i as u64 + 1);
        }
        c.add_packets(3, 300);
        c.raise_inbound_top(70);
        c.raise_inbound_top(65);
        let v = c.values();
        assert_eq!(v.inbound_top, 70);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(v.drop_count(*r), i as u64 + 1);
        }
        assert_eq!(v.drops_total(), (1..=DropReason::COUNT as u64).sum::<u64>());
        assert_eq!((v.packets, v.bytes), (3, 300));
    }
}
