//! The ESP half of a worker: interesting traffic from the inside is
//! encapsulated with its outbound SA and sent to the peer; ESP from the
//! outside is decapsulated, checked against its SA's proxy identities and
//! forwarded to the inside. Both run on whole batches (the esp module groups
//! them by SA and runs the crypto per group).
//!
//! Frames live in the UMEM with headroom in front of the packet and the rest
//! of the frame behind it ([`crate::sys::xsk::FRAME_HEADROOM`]): the batch
//! functions see each whole frame, encapsulation grows the packet toward the
//! headroom and decapsulation strips it from the front, and the packet's
//! descriptor then names where it starts now. No packet is copied on either
//! path. Every header is parsed once: the inside packet by
//! [`forward::parse_ipv4`] (the ESP core checks what it needs itself), the
//! outside frame by [`decapsulate_batch`], which also reports the SPI and
//! the inner packet's addresses the policy check and forwarding use.
//!
//! An inside packet whose encapsulation would not fit the outside MTU
//! ([`SaParams::encapsulated_len`](crate::esp::SaParams::encapsulated_len))
//! is answered with "fragmentation needed" (the exact tunnel MTU) when it
//! has DF, and otherwise fragmented before encryption ([`super::frag`], as
//! IOS does by default): the first fragment stays in the packet's frame, the
//! others take free frames (none free: the packet is dropped whole, counted
//! `drop_frag_no_frame`), and each fragment is encrypted with its own
//! sequence number and counted as one packet on the SA. A packet held for
//! its SA peer's next hop waits whole (the MTU comes with the next hop) and
//! is fragmented when it leaves the hold queue.

use super::fib::{FibReader, NextHop};
use super::forward::{self, Ipv4Header};
use super::frag::{FragError, Fragmenter};
use super::hold::{Held, HoldQueue, Push};
use super::icmp::IcmpError;
use super::sa::{SaSource, SaTables};
use super::stats::{charge, Counter, Tally};
use super::syslog::{CryptoEvent, LatestEvents};
use super::{fwd_drop, Published};
use crate::esp::{
    commit_deferred, decapsulate_batch, decapsulate_batch_deferred, encapsulate_batch, DropReason,
    EspContext, EspHeader, Frame, InnerHeader, ENCAP_TAILROOM,
};
use crate::sadb::{monotonic_ms, GlobalCounter, MapName, PostOutcome, SaRequest, SlotId};
use crate::sys::xsk::{Packet, XskSet};
use crate::xdp::classify::AclSet;
use crate::xdp::Side;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

const ETH: usize = 14;
/// Packets encrypted per sequence-number run when other workers may encrypt
/// for the same SA (see `encap`).
pub const SEQ_CHUNK: usize = 16;

/// Per-worker ESP state.
pub struct EspState {
    pub source: Arc<SaSource>,
    pub tables: Arc<SaTables>,
    pub ctx: EspContext,
    pub acl: Arc<Published<AclSet>>,
    pub worker_id: u16,
    /// This batch's latest invalid-SPI, replay and ICV-failure events (the
    /// worker publishes them after the batch, for the crypto log).
    pub events: LatestEvents,
    /// Packets per encryption call: [`SEQ_CHUNK`] while other workers may
    /// encrypt for the same SAs; the whole batch when this worker is the
    /// only one that receives inside traffic (no other sequence runs to
    /// interleave with).
    pub seq_chunk: usize,
}

impl EspState {
    pub fn new(source: Arc<SaSource>, acl: Arc<Published<AclSet>>, worker_id: u16) -> Self {
        let tables = source.tables(&Arc::new(SaTables {
            generation: u64::MAX,
            ..Default::default()
        }));
        EspState {
            source,
            tables,
            ctx: EspContext::new(),
            acl,
            worker_id,
            events: LatestEvents::default(),
            seq_chunk: SEQ_CHUNK,
        }
    }

    /// Between batches: newer SAs if the region moved (one atomic load
    /// otherwise); true if the tables changed.
    pub fn refresh(&mut self) -> bool {
        if self.source.db.generation() != self.tables.generation {
            let t = self.source.tables(&self.tables);
            let changed = !Arc::ptr_eq(&t, &self.tables);
            self.tables = t;
            return changed;
        }
        false
    }
}

/// What the ESP path needs from its worker.
pub struct Io<'a> {
    pub xsk: &'a mut XskSet,
    pub fib: &'a FibReader,
    /// Frames waiting for a next hop.
    pub hold: &'a mut HoldQueue<Held>,
    /// This loop turn's time (for hold deadlines).
    pub now: Instant,
    pub inside_ifindex: u32,
    pub outside_ifindex: u32,
    pub tally: &'a mut Tally,
}

impl Io<'_> {
    fn side_of(&self, oif: u32) -> Option<Side> {
        if oif == self.outside_ifindex {
            Some(Side::Outside)
        } else if oif == self.inside_ifindex {
            Some(Side::Inside)
        } else {
            None
        }
    }

    /// Keeps a copy of `pkt` until the next hop towards `dst` resolves
    /// (asking the resolver for it) and gives the frame back to the UMEM.
    /// `st` is for the SA counters of an `Encap` frame pushed out.
    pub fn hold(&mut self, dst: Ipv4Addr, tag: Held, pkt: Packet, st: Option<&EspState>) {
        self.fib.request(dst);
        match self.hold.push(dst, tag, self.xsk.data(&pkt), self.now) {
            Push::Held => self.tally.count(Counter::HeldForNeighbour),
            Push::HeldDropping(old) => {
                self.tally.count(Counter::HeldForNeighbour);
                held_dropped(st, self.tally, old, DropReason::NeighbourQueueFull);
            }
            Push::TooLong => held_dropped(st, self.tally, tag, DropReason::NoNeighbour),
        }
        self.xsk.release(pkt);
    }
}

/// Counts a frame that waited for its next hop in vain, for `reason`; for
/// inside traffic meant for an SA that still exists, on that SA too (a send
/// error: it was never counted as encapsulated).
pub(crate) fn held_dropped(
    st: Option<&EspState>,
    tally: &mut Tally,
    tag: Held,
    reason: DropReason,
) {
    let sa = match (tag, st) {
        (Held::Encap { slot, incarnation }, Some(st)) => st
            .tables
            .outbound
            .iter()
            .any(|e| e.slot == slot && e.incarnation == incarnation)
            .then(|| st.source.db.counters(slot))
            .flatten(),
        _ => None,
    };
    tally.drop_on(reason, sa.as_ref());
}

/// Outcome of the per-packet checks before encapsulation.
enum Pre {
    /// Encapsulate with outbound SA `i`, send to that next hop.
    Encap(usize, NextHop),
    /// Like `Encap`, after splitting the packet as planned (TTL already
    /// decremented): each fragment is encapsulated on its own.
    Fragment(usize, NextHop, Fragmenter),
    /// Wait for SA `i`'s peer to resolve (nothing changed in the frame).
    Hold(usize),
    Drop(DropReason),
    Icmp(IcmpError, DropReason),
}

/// Encapsulates a batch received on the inside. Packets that go out are
/// pushed on `out[1]` (outside), ICMP errors on `out[0]`/`out[1]`.
pub fn encap(
    st: &mut EspState,
    io: &mut Io<'_>,
    pkts: &mut Vec<Packet>,
    out: &mut [Vec<Packet>; 2],
) {
    let tables = st.tables.clone();
    let mut keep: Vec<Packet> = Vec::with_capacity(pkts.len());
    let mut sa_of: Vec<usize> = Vec::with_capacity(pkts.len());
    let mut hop_of: Vec<NextHop> = Vec::with_capacity(pkts.len());
    let cap = io.xsk.capacity();
    for mut pkt in pkts.drain(..) {
        let pre = pre_encap(st, io, &tables, &mut pkt, cap);
        match pre {
            Pre::Encap(i, nh) => {
                keep.push(pkt);
                sa_of.push(i);
                hop_of.push(nh);
            }
            Pre::Fragment(i, nh, plan) => {
                let first = keep.len();
                if fragment(io, pkt, &plan, &mut keep) {
                    io.tally.count(Counter::FragBeforeEncrypt);
                    io.tally.add(
                        Counter::FragBeforeEncryptFragments,
                        (keep.len() - first) as u64,
                    );
                    sa_of.resize(keep.len(), i);
                    hop_of.resize(keep.len(), nh);
                } else {
                    io.tally.drop(DropReason::FragNoFrame);
                }
            }
            Pre::Hold(i) => {
                // Held before encapsulation: no sequence number is spent and
                // nothing is counted on the SA until it leaves or is dropped.
                let e = &tables.outbound[i];
                let tag = Held::Encap {
                    slot: e.slot,
                    incarnation: e.incarnation,
                };
                io.hold(e.sa.params.remote, tag, pkt, Some(st));
            }
            Pre::Drop(r) => {
                io.tally.drop(r);
                io.xsk.release(pkt);
            }
            Pre::Icmp(err, r) => {
                io.tally.drop(r);
                if let Some((to, reply)) = super::icmp_reply(
                    io.xsk,
                    io.fib,
                    io.inside_ifindex,
                    io.outside_ifindex,
                    &pkt,
                    err,
                ) {
                    out[super::side_index(to)].push(reply);
                    io.tally.count(Counter::IcmpSent);
                }
                io.xsk.release(pkt);
            }
        }
    }
    if keep.is_empty() {
        return;
    }
    // Reserve this batch's sequence numbers in the region, one add per SA.
    let mut exhausted: Vec<usize> = Vec::new();
    {
        let mut counts: Vec<(usize, u64)> = Vec::new();
        for &i in &sa_of {
            match counts.iter_mut().find(|(j, _)| *j == i) {
                Some((_, n)) => *n += 1,
                None => counts.push((i, 1)),
            }
        }
        for (i, n) in counts {
            if tables.source_reserve(&st.source, i, n).is_err() {
                exhausted.push(i);
            }
        }
    }
    let mut results: Vec<Option<(usize, usize)>> = vec![None; keep.len()];
    let mut reasons: Vec<Option<DropReason>> = vec![None; keep.len()];
    {
        // Each packet is encapsulated where it lies in its frame.
        let xsk: &XskSet = io.xsk;
        let mut frames: Vec<Frame<&mut [u8]>> = Vec::with_capacity(keep.len());
        let mut pos: Vec<usize> = Vec::with_capacity(keep.len());
        for (k, pkt) in keep.iter_mut().enumerate() {
            let Some((buf, head, len)) = xsk.frame_mut(pkt) else {
                continue;
            };
            frames.push(Frame::new(buf, head, len));
            pos.push(k);
        }
        // Encrypt in chunks: each chunk takes its own short run of
        // sequence numbers, which keeps the reordering between workers
        // sharing an SA small for the peer's replay window. A worker that
        // alone encrypts takes the whole batch in one call.
        let chunk_len = st.seq_chunk.max(1);
        for (c, chunk) in frames.chunks_mut(chunk_len).enumerate() {
            let off = c * chunk_len;
            let sa_ref = |fr: &Frame<&mut [u8]>| {
                let i = *sa_of.get(*pos.get(off + fr.batch_index())?)?;
                if exhausted.contains(&i) {
                    return None;
                }
                tables.outbound.get(i).map(|e| &*e.sa)
            };
            let good = encapsulate_batch(chunk, sa_ref, &mut st.ctx, &mut io.tally.drops);
            for (k, fr) in chunk.iter().enumerate() {
                let bi = pos[off + fr.batch_index()];
                if k < good {
                    results[bi] = Some((fr.head, fr.len));
                } else {
                    reasons[bi] = fr.drop_reason();
                }
            }
        }
    }
    for (bi, mut pkt) in keep.into_iter().enumerate() {
        let e = &tables.outbound[sa_of[bi]];
        let counters = st.source.db.counters(e.slot);
        let inner_len = pkt.len().saturating_sub(ETH);
        if !results[bi].is_some_and(|(head, len)| pkt.set_bounds(head, len)) {
            match reasons[bi] {
                // Counted by the ESP core; charged to the SA here.
                Some(r) => charge(r, counters.as_ref()),
                None => io.tally.drop_on(DropReason::Other, counters.as_ref()),
            }
            io.xsk.release(pkt);
            continue;
        }
        // The next hop pre_encap found (the same table: it cannot have
        // changed within the batch).
        forward::set_macs(io.xsk.data_mut(&mut pkt), &hop_of[bi]);
        if let Some(c) = &counters {
            c.add_packets(1, inner_len as u64);
        }
        io.tally.count(Counter::EspEncap);
        out[1].push(pkt);
    }
}

impl SaTables {
    fn source_reserve(&self, source: &SaSource, i: usize, n: u64) -> Result<(), ()> {
        let slot: SlotId = self.outbound.get(i).ok_or(())?.slot;
        source
            .db
            .reserve_outbound_seq(slot, n)
            .map(|_| ())
            .map_err(|_| ())
    }
}

fn pre_encap(
    st: &EspState,
    io: &mut Io<'_>,
    tables: &SaTables,
    pkt: &mut Packet,
    cap: usize,
) -> Pre {
    let frame = io.xsk.data_mut(pkt);
    let h: Ipv4Header = match forward::parse_ipv4(frame) {
        Ok(h) => h,
        Err(e) => return Pre::Drop(fwd_drop(e)),
    };
    let Some(i) = tables.find_outbound(h.src, h.dst, h.protocol, h.ports) else {
        post_sa_request(st, h.src, h.dst, h.protocol, h.ports);
        return Pre::Drop(DropReason::NoSa);
    };
    let sa = &tables.outbound[i].sa;
    let remote = sa.params.remote;
    let Some(nh) = io.fib.lookup(remote).copied() else {
        return Pre::Hold(i);
    };
    if io.side_of(nh.oif) != Some(Side::Outside) {
        return Pre::Drop(DropReason::NoRoute);
    }
    // The longest inner packet whose encapsulation fits the outside MTU and
    // whose frame has the room encapsulation needs behind it (the headroom in
    // front is the frame's, see sys::xsk).
    let room = cap.saturating_sub(ETH + ENCAP_TAILROOM);
    let limit = sa
        .params
        .max_inner_len(usize::from(nh.mtu), h.header_len)
        .unwrap_or(0)
        .min(room);
    let ip_len = frame.len() - ETH;
    let fits = ip_len <= limit;
    if !fits {
        if h.dont_frag {
            let mtu = limit.min(usize::from(u16::MAX)) as u16;
            return Pre::Icmp(IcmpError::FragmentationNeeded { mtu }, DropReason::TooBig);
        }
        if sa.params.mode == crate::esp::Mode::Transport {
            // Transport mode carries no inner fragments (see esp::encap).
            return Pre::Drop(DropReason::TooBig);
        }
    }
    if forward::decrement_ttl(frame).is_err() {
        return Pre::Icmp(IcmpError::TtlExceeded, DropReason::TtlExceeded);
    }
    if fits {
        return Pre::Encap(i, nh);
    }
    // Fragmented before encryption (IOS's default, `crypto ipsec
    // fragmentation before-encryption`): each piece is an ESP packet.
    match Fragmenter::new(&frame[ETH..], limit) {
        Ok(plan) => Pre::Fragment(i, nh, plan),
        Err(FragError::BadOptions | FragError::Malformed) => Pre::Drop(DropReason::Malformed),
        // TooSmall: not even 8 data bytes fit; (DontFragment and Fits
        // cannot happen: checked above).
        Err(_) => Pre::Drop(DropReason::TooBig),
    }
}

/// Splits `pkt` as `plan` says: the other pieces into newly taken frames
/// (each with the packet's Ethernet header), then the packet itself into the
/// first; pushes them on `keep` in order and returns true. With too few free
/// frames for every piece it drops the packet whole (a partial datagram
/// could never be reassembled) and returns false.
fn fragment(io: &mut Io<'_>, mut pkt: Packet, plan: &Fragmenter, keep: &mut Vec<Packet>) -> bool {
    let n = plan.count();
    if io.xsk.free_frames() < n - 1 {
        io.xsk.release(pkt);
        return false;
    }
    let mut pieces: Vec<Packet> = Vec::with_capacity(n - 1);
    for _ in 1..n {
        match io.xsk.alloc() {
            Some(p) => pieces.push(p),
            None => {
                for p in pieces {
                    io.xsk.release(p);
                }
                io.xsk.release(pkt);
                return false;
            }
        }
    }
    let mut ok = true;
    {
        let xsk: &XskSet = io.xsk;
        let orig = xsk.data(&pkt);
        for (k, p) in pieces.iter_mut().enumerate() {
            let len = ETH + plan.piece_len(k + 1);
            let Some(buf) = xsk.resize(p, len) else {
                ok = false;
                break;
            };
            buf[..ETH].copy_from_slice(&orig[..ETH]);
            if plan.write(&orig[ETH..], k + 1, &mut buf[ETH..]).is_none() {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        // Cannot happen: pieces are shorter than the packet's frame.
        for p in pieces {
            io.xsk.release(p);
        }
        io.xsk.release(pkt);
        return false;
    }
    let len = ETH + plan.first_in_place(&mut io.xsk.data_mut(&mut pkt)[ETH..]);
    let _ = io.xsk.resize(&mut pkt, len);
    keep.push(pkt);
    keep.extend(pieces);
    true
}

fn post_sa_request(
    st: &EspState,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ports: Option<(u16, u16)>,
) {
    let acl = st.acl.get();
    let (map, seq, idx) = match acl.protecting(src, dst, proto, ports) {
        Some((i, r)) => (r.crypto_map, u32::from(r.policy), Some(i as u32)),
        // Steered by a rule we no longer have: still ask, without an entry.
        _ => (MapName::default(), 0, None),
    };
    let (sp, dp) = ports.unwrap_or((0, 0));
    let req = SaRequest {
        crypto_map: map,
        crypto_map_seq: seq,
        acl_rule: idx,
        src,
        dst,
        protocol: proto,
        src_port: sp,
        dst_port: dp,
        worker: st.worker_id,
        at_ms: 0,
    };
    let g = st.source.db.global();
    match st.source.db.post_sa_request(&req, monotonic_ms()) {
        PostOutcome::Posted => g.add(GlobalCounter::SaRequestPosted, 1),
        PostOutcome::Deduplicated => g.add(GlobalCounter::SaRequestDeduplicated, 1),
        _ => {}
    }
}

/// What decapsulation reported about one received frame.
#[derive(Clone, Copy, Default)]
pub struct Decapped {
    /// Where the inner packet now lies in the frame (a good frame).
    bounds: Option<(usize, usize)>,
    inner: Option<InnerHeader>,
    /// The outer headers, if decapsulation got as far as the ESP header.
    esp: Option<EspHeader>,
    reason: Option<DropReason>,
    /// Deferred commit: the ICV verified, the replay window waits for [`deliver`].
    pending: Option<u64>,
}

/// Decapsulates a batch received on the outside and forwards the inner
/// packets (normally to the inside).
pub fn decap(
    st: &mut EspState,
    io: &mut Io<'_>,
    pkts: &mut Vec<Packet>,
    out: &mut [Vec<Packet>; 2],
) {
    let tables = st.tables.clone();
    let mut results = Vec::with_capacity(pkts.len());
    let xsk: &XskSet = io.xsk;
    verify(
        &tables,
        pkts,
        |p| xsk.frame_mut(p),
        false,
        &mut io.tally.drops,
        &mut results,
    );
    deliver(st, io, &tables, &results, pkts, out);
}

/// The crypto half of decapsulation, in place: fills `results` (one per packet, in
/// order). With `deferred` the replay window is only checked, and each authenticated
/// frame waits for [`deliver`] to commit it in arrival order; this part may run on a
/// worker other than the one that received the packets (`frame` reaches their frames).
pub fn verify<'a>(
    tables: &SaTables,
    pkts: &'a mut [Packet],
    frame: impl Fn(&'a mut Packet) -> Option<(&'a mut [u8], usize, usize)>,
    deferred: bool,
    drops: &mut crate::esp::DropCounters,
    results: &mut Vec<Decapped>,
) {
    results.clear();
    results.resize(pkts.len(), Decapped::default());
    let mut frames: Vec<Frame<&mut [u8]>> = Vec::with_capacity(pkts.len());
    let mut pos: Vec<usize> = Vec::with_capacity(pkts.len());
    for (k, pkt) in pkts.iter_mut().enumerate() {
        let Some((buf, head, len)) = frame(pkt) else {
            continue;
        };
        frames.push(Frame::new(buf, head, len));
        pos.push(k);
    }
    let lookup = |spi: u32| tables.inbound.get(&spi).map(|e| &*e.sa);
    let good = if deferred {
        decapsulate_batch_deferred(&mut frames, lookup, drops)
    } else {
        decapsulate_batch(&mut frames, lookup, drops)
    };
    for (k, fr) in frames.iter().enumerate() {
        let pending = fr.pending_seq();
        results[pos[fr.batch_index()]] = Decapped {
            bounds: (k < good).then_some((fr.head, fr.len)),
            inner: fr.inner(),
            esp: fr.esp_header(),
            reason: fr.drop_reason(),
            pending,
        };
    }
}

/// The forwarding half of decapsulation, by the worker that received `pkts` and in
/// their arrival order: commits the replay window of frames [`verify`] left pending,
/// checks the inner packets against their SA's proxy identities and forwards them.
pub fn deliver(
    st: &mut EspState,
    io: &mut Io<'_>,
    tables: &SaTables,
    results: &[Decapped],
    pkts: &mut Vec<Packet>,
    out: &mut [Vec<Packet>; 2],
) {
    for (r, mut pkt) in results.iter().copied().zip(pkts.drain(..)) {
        let mut r = r;
        let entry = r.esp.and_then(|h| tables.inbound.get(&h.spi));
        let counters = entry.and_then(|e| st.source.db.counters(e.slot));
        if let (Some(seq), Some(e)) = (r.pending, entry) {
            let bytes = r.bounds.map_or(0, |(_, len)| len.saturating_sub(ETH));
            if let Err(reason) = commit_deferred(&e.sa, seq, r.reason, bytes) {
                // Decided only now: counted here, not by the ESP core.
                io.tally.drops.add(reason);
                r.reason = Some(reason);
                r.bounds = None;
            }
        }
        let good = match (r.bounds, r.inner, entry) {
            (Some((head, len)), Some(inner), Some(e)) if pkt.set_bounds(head, len) => {
                Some((inner, e))
            }
            _ => None,
        };
        let Some((inner, entry)) = good else {
            match r.reason {
                // Counted by the ESP core (or above); charged to the SA here.
                Some(reason) => charge(reason, counters.as_ref()),
                None => io.tally.drop_on(DropReason::Other, counters.as_ref()),
            }
            if let Some(ev) = r.reason.and_then(|reason| log_event(reason, r.esp?, entry)) {
                st.events.record(ev);
            }
            io.xsk.release(pkt);
            continue;
        };
        if !inner.checksum_ok {
            io.tally.drop_on(DropReason::Malformed, counters.as_ref());
            io.xsk.release(pkt);
            continue;
        }
        if !entry.admits(inner.src, inner.dst, inner.protocol) {
            io.tally
                .drop_on(DropReason::PolicyMismatch, counters.as_ref());
            io.xsk.release(pkt);
            continue;
        }
        if let Some(c) = &counters {
            c.add_packets(1, pkt.len().saturating_sub(ETH) as u64);
        }
        io.tally.count(Counter::EspDecap);
        forward_inner(io, pkt, inner.dst, out);
    }
}

/// Forwards a decapsulated inner frame (already counted on its SA) towards
/// `dst`, holding it while the next hop resolves.
pub(crate) fn forward_inner(
    io: &mut Io<'_>,
    mut pkt: Packet,
    dst: Ipv4Addr,
    out: &mut [Vec<Packet>; 2],
) {
    let Some(nh) = io.fib.lookup(dst).copied() else {
        io.hold(dst, Held::Decap, pkt, None);
        return;
    };
    let Some(to) = io.side_of(nh.oif) else {
        io.tally.drop(DropReason::NoRoute);
        io.xsk.release(pkt);
        return;
    };
    match forward::forward_in_place(io.xsk.data_mut(&mut pkt), &nh) {
        Ok(()) => out[super::side_index(to)].push(pkt),
        Err(e) => {
            io.tally.drop(fwd_drop(e));
            io.xsk.release(pkt);
        }
    }
}

/// The crypto log event (IOS message) of an inbound drop, if it has one:
/// no SA for the SPI, a replay, an ICV failure on the SA `entry`.
fn log_event(
    r: DropReason,
    h: EspHeader,
    entry: Option<&super::sa::InEntry>,
) -> Option<CryptoEvent> {
    match (r, entry) {
        (DropReason::NoSa, _) => Some(CryptoEvent::InvalidSpi {
            dst: h.dst,
            src: h.src,
            spi: h.spi,
        }),
        (DropReason::Replay | DropReason::OutOfWindow, Some(e)) => Some(CryptoEvent::Replay {
            conn_id: e.conn_id,
            seq: h.seq,
        }),
        (DropReason::Auth, Some(e)) => Some(CryptoEvent::MacError { conn_id: e.conn_id }),
        _ => None,
    }
}
