//! [`DropReason`]: why the data plane dropped a packet, the one vocabulary from the ESP core's
//! verdicts through the workers' statistics to the region's counters (per SA, and global for
//! drops no SA can be blamed for), `show crypto ipsec sa`, `show crypto dataplane` and the
//! metrics. A dropped packet is counted once by its worker and once in the region, under
//! the same reason.

crate::named_enum! {
    /// Why the data plane dropped a packet. Declaration order is storage order (the
    /// region's per-SA and global drop words, the workers' arrays); append only, and bump
    /// [`LAYOUT_VERSION`](crate::layout::LAYOUT_VERSION) when a variant is removed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u8)]
    pub enum DropReason {
        /// No SA for the packet: inbound ESP with an SPI of no SA (or whose SA's
        /// encapsulation or addresses do not match), or interesting outbound traffic
        /// before its SA exists (an sa_request is posted).
        NoSa = 0 => "no-sa",
        /// Not ESP where ESP was expected (IKE behind the non-ESP marker, NAT keepalive).
        NotEsp => "not-esp",
        /// Not an IPv4 packet.
        NotIpv4 => "not-ipv4",
        /// A header is invalid (bad checksum, bad length field, bad inner packet).
        Malformed => "malformed",
        /// Shorter than its headers, or ciphertext not a whole number of blocks.
        Truncated => "truncated",
        /// Sequence number seen before.
        Replay => "replay",
        /// Sequence number left of the replay window.
        OutOfWindow => "out-of-window",
        /// ICV (or GCM tag) did not verify.
        Auth => "auth",
        /// Padding not 1, 2, 3…, or pad length beyond the payload.
        BadPadding => "bad-padding",
        /// Outbound SA has used its last sequence number; it must be replaced.
        SeqExhausted => "seq-exhausted",
        /// The frame buffer lacks the head- or tailroom to encapsulate in place.
        NoRoom => "no-room",
        /// Valid but not handled: fragments of ESP, non-IPv4 inner packets, dummy packets.
        Unsupported => "unsupported",
        /// A decapsulated packet outside its SA's proxy identities.
        PolicyMismatch => "policy-mismatch",
        /// TTL expired on forwarding (time exceeded sent).
        TtlExceeded => "ttl-exceeded",
        /// No route to the destination.
        NoRoute => "no-route",
        /// The next hop's MAC address did not resolve in time.
        NoNeighbour => "no-neighbour",
        /// Pushed out of the full queue of frames waiting for their next hop.
        NeighbourQueueFull => "neighbour-queue-full",
        /// The TX ring was full.
        TxRingFull => "tx-ring-full",
        /// Too big for the output MTU: with DF (fragmentation needed sent), or too big to
        /// fragment.
        TooBig => "too-big",
        /// A packet to fragment before encryption: no free frames for its fragments.
        FragNoFrame => "frag-no-frame",
        /// Anything else (a frame the ESP core accepted that its worker could not use).
        Other => "other",
    }
}

impl DropReason {
    /// The reasons the ESP core's verdicts carry (the rest are the workers' own).
    pub const ESP: [DropReason; 11] = [
        DropReason::NoSa,
        DropReason::NotEsp,
        DropReason::Malformed,
        DropReason::Truncated,
        DropReason::Replay,
        DropReason::OutOfWindow,
        DropReason::Auth,
        DropReason::BadPadding,
        DropReason::SeqExhausted,
        DropReason::NoRoom,
        DropReason::Unsupported,
    ];

    /// The statistics key of this reason in the dataplane's stats file (`drop_no_sa` …).
    pub fn stats_key(self) -> String {
        format!("drop_{}", self.name().replace('-', "_"))
    }
}

/// Drops by reason as plain integers, kept by one thread (no sharing on the hot path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl DropCounters {
    pub fn add(&mut self, r: DropReason) {
        self.counts[r as usize] += 1;
    }
    pub fn add_n(&mut self, r: DropReason, n: u64) {
        self.counts[r as usize] += n;
    }
    pub fn get(&self, r: DropReason) -> u64 {
        self.counts[r as usize]
    }
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    pub fn merge(&mut self, o: &DropCounters) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
    }
    /// (reason, count) for every reason, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(move |r| (*r, self.get(*r)))
    }
    /// Takes the counts out, leaving zeros.
    pub fn take(&mut self) -> DropCounters {
        std::mem::take(self)
    }
}
