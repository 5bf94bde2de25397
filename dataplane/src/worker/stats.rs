//! What a worker counts: its [`Counter`]s (packets received, sent, encapsulated…) and its
//! drops by [`DropReason`], the data plane's one drop vocabulary. One loop turn collects
//! them in a [`Tally`] of plain integers; [`WorkerStats`] publishes them for the stats file
//! and the crypto log, and every drop is also added to the region's counters under the
//! same reason: to the SA whose packet it was, when there is one, and always to the
//! data-plane-wide total (`show crypto dataplane`).

use crate::esp::{DropCounters, DropReason};
use crate::sadb::{GlobalCounters, SaCounters};
use std::sync::atomic::{AtomicU64, Ordering};

use super::syslog;

espgw_sadb::named_enum! {
    /// Per-worker counters that are not drops, readable from other threads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(usize)]
    pub enum Counter {
        RxInside => "rx_inside",
        RxOutside => "rx_outside",
        TxInside => "tx_inside",
        TxOutside => "tx_outside",
        /// Packets encapsulated / decapsulated.
        EspEncap => "esp_encap",
        EspDecap => "esp_decap",
        /// ICMP errors sent (time exceeded, fragmentation needed).
        IcmpSent => "icmp_sent",
        /// Kernel: dropped before reaching the socket (RX ring full or no fill frame).
        XskRxDropped => "xsk_rx_dropped",
        XskRxRingFull => "xsk_rx_ring_full",
        XskFillRingEmpty => "xsk_fill_ring_empty",
        XskTxInvalid => "xsk_tx_invalid",
        /// Frames put in the hold queue while their next hop resolves.
        HeldForNeighbour => "held_for_neighbour",
        /// Held frames handed on once their next hop resolved.
        ReleasedForNeighbour => "released_for_neighbour",
        /// Frames in the hold queue now (a gauge).
        NeighbourQueueLen => "neighbour_queue_len",
        /// Inner packets without DF fragmented before encryption because their
        /// encapsulation would not fit the outside MTU.
        FragBeforeEncrypt => "frag_before_encrypt",
        /// The fragments those packets became (each its own ESP packet).
        FragBeforeEncryptFragments => "frag_before_encrypt_fragments",
        /// Receive calls that returned frames (packets / batches: the mean batch).
        Batches => "batches",
        /// Nanoseconds spent in loop turns that had frames to process (busy time; the
        /// rest of the worker's life it spun idle or slept in poll(2)).
        BusyNs => "busy_ns",
        /// Fan-out (`--fanout`): packets of this worker's outside batches handed to a
        /// peer to verify and decrypt.
        FanoutHandedOff => "fanout_handed_off",
        /// Packets this worker verified and decrypted for another worker.
        FanoutVerified => "fanout_verified",
        /// Packets of slices verified here because the peer had `fanout::IN_FLIGHT`
        /// slices already (not dropped).
        FanoutRingFull => "fanout_ring_full",
    }
}

/// One loop turn's counts, as plain integers (no sharing on the hot path).
#[derive(Debug, Default)]
pub struct Tally {
    pub counters: [u64; Counter::COUNT],
    /// Every drop of the turn by reason; the ESP core adds its own here directly.
    pub drops: DropCounters,
}

impl Tally {
    pub fn add(&mut self, c: Counter, n: u64) {
        self.counters[c as usize] += n;
    }
    pub fn count(&mut self, c: Counter) {
        self.add(c, 1);
    }
    /// A dropped packet that belongs to no SA (or whose SA is gone).
    pub fn drop(&mut self, r: DropReason) {
        self.drops.add(r);
    }
    /// A dropped packet of the SA whose region counters are `sa`.
    pub fn drop_on(&mut self, r: DropReason, sa: Option<&SaCounters<'_>>) {
        self.drops.add(r);
        charge(r, sa);
    }
}

/// Charges a drop already in a [`Tally`] (the ESP core counted it) to its SA's counters.
pub fn charge(r: DropReason, sa: Option<&SaCounters<'_>>) {
    if let Some(c) = sa {
        c.add_drop(r, 1);
    }
}

/// Counters shared between a worker and whoever reports them.
#[derive(Debug, Default)]
pub struct WorkerStats {
    counters: [AtomicU64; Counter::COUNT],
    drops: [AtomicU64; DropReason::COUNT],
    /// The latest invalid-SPI, replay and ICV-failure events, for the log.
    pub(super) events: syslog::EventSlots,
}

impl WorkerStats {
    /// The worker's latest crypto log events (see [`syslog`]).
    pub fn events(&self) -> &syslog::EventSlots {
        &self.events
    }

    /// Packets this worker dropped for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Ordering::Relaxed)
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, c: Counter, v: u64) {
        self.counters[c as usize].store(v, Ordering::Relaxed);
    }

    /// Adds a turn's counts (and its drops to the region's data-plane-wide totals, when
    /// the worker has a region), leaving the tally at zero.
    pub(super) fn flush(&self, t: &mut Tally, region: Option<GlobalCounters<'_>>) {
        for (i, v) in t.counters.iter_mut().enumerate() {
            if *v != 0 {
                self.counters[i].fetch_add(*v, Ordering::Relaxed);
                *v = 0;
            }
        }
        for (r, n) in t.drops.take().iter() {
            if n != 0 {
                self.drops[r as usize].fetch_add(n, Ordering::Relaxed);
                if let Some(g) = &region {
                    g.add_drop(r, n);
                }
            }
        }
    }
}
