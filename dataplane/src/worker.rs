//! Poll-mode workers: one per core, each owning the AF_XDP sockets of its
//! queues on the inside and the outside interface, over one shared UMEM.
//!
//! A worker loops: pick up a newer next-hop table, receive a batch from each
//! socket, process it (today: IPv4 forwarding towards the kernel's next hop),
//! send the batches, recycle completions and refill the fill rings. When
//! nothing arrives it spins briefly and then blocks in `poll(2)` (unless
//! `busy_poll`), so gateways and hosts can share a small machine.
//!
//! A frame whose next hop is not resolved yet is copied into the worker's
//! hold queue ([`hold`]) and goes out when the next-hop table resolves it
//! (the kernel's `unres_qlen`); while frames are held the worker blocks for
//! at most `HOLD_POLL_MS` (10 ms) so it notices the table move without traffic.

pub mod esp_path;
pub mod fib;
pub mod forward;
pub mod frag;
pub mod hold;
pub mod icmp;
pub mod netlink;
pub mod sa;
pub mod syslog;

use crate::esp::{DropCounters, DropReason};
use crate::sadb::GlobalCounter;
use crate::sys::xsk::{Packet, XskConfig, XskError, XskSet};
use crate::xdp::classify::AclSet;
use crate::xdp::Side;
use esp_path::EspState;
use fib::FibReader;
use forward::FwdDrop;
use hold::{Held, HoldQueue};
use icmp::IcmpError;
use sa::SaSource;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The worker's I/O for the ESP path, borrowing the worker's fields one by one
/// (a method would borrow the whole worker while `self.esp` is in use).
macro_rules! esp_io {
    ($w:ident, $local:expr, $now:expr) => {
        esp_path::Io {
            xsk: &mut $w.xsk,
            fib: &$w.fib,
            hold: &mut $w.hold,
            now: $now,
            inside_ifindex: $w.cfg.inside_ifindex,
            outside_ifindex: $w.cfg.outside_ifindex,
            local: $local,
        }
    };
}

espgw_sadb::named_enum! {
    /// Per-worker counters, readable from other threads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(usize)]
    pub enum Counter {
        RxInside => "rx_inside",
        RxOutside => "rx_outside",
        TxInside => "tx_inside",
        TxOutside => "tx_outside",
        DropNotIpv4 => "drop_not_ipv4",
        DropMalformed => "drop_malformed",
        DropTtlExceeded => "drop_ttl_exceeded",
        /// A frame held for its next hop's MAC was not sent: the neighbour did
        /// not resolve within [`HOLD_FOR`].
        DropNoNeighbour => "drop_no_neighbour",
        /// A frame held for its next hop's MAC was pushed out of the full hold
        /// queue by a newer one.
        DropNeighbourQueueFull => "drop_neighbour_queue_full",
        DropNoRoute => "drop_no_route",
        DropTxRingFull => "drop_tx_ring_full",
        /// Too big for the output MTU: with DF (answered with fragmentation
        /// needed), or too big to fragment (the MTU leaves no 8 data bytes).
        DropTooBig => "drop_too_big",
        /// Interesting traffic without an outbound SA (sa_request posted).
        DropNoSa => "drop_no_sa",
        /// Dropped by ESP processing (see the esp_drop_* counters for reasons).
        DropEsp => "drop_esp",
        /// Decapsulated packet outside its SA's proxy identities.
        DropPolicyMismatch => "drop_policy_mismatch",
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
        /// A packet to fragment before encryption dropped whole: not enough free
        /// UMEM frames for its fragments.
        DropFragNoFrame => "drop_frag_no_frame",
    }
}

impl Counter {
    /// The region's global counter this worker drop also adds to (drops tied
    /// to an SA go to the SA's counters instead; the rest are not drops).
    pub const fn global(self) -> Option<GlobalCounter> {
        Some(match self {
            Self::DropMalformed | Self::DropNotIpv4 => GlobalCounter::Malformed,
            Self::DropNoRoute => GlobalCounter::NoRoute,
            Self::DropNoNeighbour => GlobalCounter::NoNeighbor,
            Self::DropNeighbourQueueFull => GlobalCounter::NeighborQueueFull,
            Self::DropTxRingFull => GlobalCounter::TxFull,
            Self::DropTooBig => GlobalCounter::TooBig,
            Self::DropTtlExceeded => GlobalCounter::TtlExpired,
            Self::DropFragNoFrame => GlobalCounter::FragNoFrame,
            _ => return None,
        })
    }
}

/// Counters shared between a worker and whoever reports them.
#[derive(Debug, Default)]
pub struct WorkerStats {
    counters: [AtomicU64; Counter::COUNT],
    esp_drops: [AtomicU64; DropReason::COUNT],
    /// The latest invalid-SPI, replay and ICV-failure events, for the log.
    events: syslog::EventSlots,
}

impl WorkerStats {
    /// The worker's latest crypto log events (see [`syslog`]).
    pub fn events(&self) -> &syslog::EventSlots {
        &self.events
    }

    /// ESP drops for one reason (the esp module's reasons).
    pub fn esp_drop(&self, r: DropReason) -> u64 {
        self.esp_drops[r as usize].load(Ordering::Relaxed)
    }

    fn set_esp(&self, d: &DropCounters) {
        for (r, v) in d.iter() {
            self.esp_drops[r as usize].store(v, Ordering::Relaxed);
        }
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize].load(Ordering::Relaxed)
    }

    fn set(&self, c: Counter, v: u64) {
        self.counters[c as usize].store(v, Ordering::Relaxed);
    }

    fn add(&self, local: &mut [u64; Counter::COUNT]) {
        for (i, v) in local.iter_mut().enumerate() {
            if *v != 0 {
                self.counters[i].fetch_add(*v, Ordering::Relaxed);
                *v = 0;
            }
        }
    }
}

/// What one worker serves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: usize,
    /// Core to pin to, if any.
    pub core: Option<usize>,
    pub inside: String,
    pub inside_ifindex: u32,
    pub inside_queues: Vec<u32>,
    pub outside: String,
    pub outside_ifindex: u32,
    pub outside_queues: Vec<u32>,
    /// Frames per receive batch (at most 256).
    pub batch: usize,
    /// Never block: spin on the rings.
    pub busy_poll: bool,
    pub xsk: XskConfig,
}

/// A worker's sockets, created (and registered in the XSKMAPs) before the
/// thread starts.
pub struct Worker {
    cfg: WorkerConfig,
    xsk: XskSet,
    sides: Vec<Side>,
    tx_port: [usize; 2],
    fib: FibReader,
    stats: Arc<WorkerStats>,
    esp: Option<EspState>,
    /// Frames waiting for their next hop's MAC address.
    hold: HoldQueue<Held>,
}

/// A value published by one thread and picked up by workers between
/// batches (one atomic load when unchanged).
pub struct Published<T> {
    generation: AtomicU64,
    value: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    pub fn new(v: T) -> Self {
        Published {
            generation: AtomicU64::new(0),
            value: Mutex::new(Arc::new(v)),
        }
    }

    pub fn set(&self, v: T) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(v);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn get(&self) -> Arc<T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

const SPIN: Duration = Duration::from_micros(50);
const BLOCK_MS: i32 = 100;
/// Frames a worker holds for unresolved next hops, in all.
pub const HOLD_FRAMES: usize = 256;
/// Frames held per destination (the kernel's `unres_qlen` is of this order).
pub const HOLD_PER_DEST: usize = 3;
/// How long a held frame waits for its neighbour (about the kernel's
/// resolution time: 3 probes a second apart).
pub const HOLD_FOR: Duration = Duration::from_secs(3);
/// Longest `poll(2)` while frames are held, so a resolved neighbour is
/// noticed without traffic.
const HOLD_POLL_MS: i32 = 10;
/// How often the destinations of held frames are posted to the resolver
/// again (a post can be lost when the resolver is busy).
const HOLD_REQUEST_EVERY: Duration = Duration::from_millis(100);
const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);

pub(crate) fn side_index(s: Side) -> usize {
    match s {
        Side::Inside => 0,
        Side::Outside => 1,
    }
}

impl Worker {
    /// Binds the sockets: inside queues first, then outside queues.
    pub fn new(cfg: WorkerConfig, fib: FibReader) -> Result<Self, XskError> {
        if cfg.inside_queues.is_empty() || cfg.outside_queues.is_empty() {
            return Err(XskError::Config(format!(
                "worker {} has no queue on one side",
                cfg.id
            )));
        }
        let mut bindings = Vec::new();
        let mut sides = Vec::new();
        for q in &cfg.inside_queues {
            bindings.push((cfg.inside.clone(), *q));
            sides.push(Side::Inside);
        }
        for q in &cfg.outside_queues {
            bindings.push((cfg.outside.clone(), *q));
            sides.push(Side::Outside);
        }
        let xsk = XskSet::new(&cfg.xsk, &bindings)?;
        let tx_port = [0, cfg.inside_queues.len()];
        let hold = HoldQueue::new(HOLD_FRAMES, HOLD_PER_DEST, xsk.capacity(), HOLD_FOR);
        Ok(Worker {
            cfg,
            xsk,
            sides,
            tx_port,
            fib,
            stats: Arc::new(WorkerStats::default()),
            esp: None,
            hold,
        })
    }

    /// Turns on ESP: interesting traffic is encapsulated with SAs from the
    /// region, ESP from the outside decapsulated.
    pub fn with_esp(mut self, source: Arc<SaSource>, acl: Arc<Published<AclSet>>) -> Self {
        self.esp = Some(EspState::new(source, acl, self.cfg.id as u16));
        self
    }

    /// (side, queue, socket fd) of every port, for the XSKMAPs.
    pub fn sockets(&self) -> Vec<(Side, u32, std::os::fd::RawFd)> {
        (0..self.xsk.ports())
            .map(|i| (self.sides[i], self.xsk.binding(i).1, self.xsk.fd(i)))
            .collect()
    }

    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        if let Some(core) = self.cfg.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!(
                    "espgw-dataplane: worker {}: cannot pin to core {core}",
                    self.cfg.id
                );
            }
        }
        let batch = self.cfg.batch.clamp(1, 256);
        let mut rx: Vec<Packet> = Vec::with_capacity(batch);
        let mut out: [Vec<Packet>; 2] = [
            Vec::with_capacity(batch.max(HOLD_FRAMES)),
            Vec::with_capacity(batch.max(HOLD_FRAMES)),
        ];
        let mut released = Released::with_capacity(HOLD_FRAMES);
        let mut local = [0u64; Counter::COUNT];
        let mut idle_since: Option<Instant> = None;
        let mut last_kernel_stats = Instant::now();
        let mut last_hold_request = Instant::now();
        // Held frames are looked at again when the next-hop table moves (or
        // when the last pass ran out of TX frames).
        let mut release_due = false;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now.duration_since(last_kernel_stats) >= KERNEL_STATS_EVERY {
                self.kernel_stats();
                last_kernel_stats = now;
            }
            release_due |= self.fib.refresh();
            if let Some(e) = self.esp.as_mut() {
                if e.refresh() {
                    // Resolve the peers of new SAs before their first packet.
                    for o in &e.tables.outbound {
                        if self.fib.lookup(o.sa.params.remote).is_none() {
                            self.fib.request(o.sa.params.remote);
                        }
                    }
                }
            }
            if self.hold.is_empty() {
                release_due = false;
            } else {
                if release_due {
                    release_due = !self.release_held(&mut released, &mut out, &mut local, now);
                }
                let esp = self.esp.as_ref();
                self.hold.expire(now, |tag| {
                    esp_path::held_dropped(esp, &mut local, tag, Counter::DropNoNeighbour)
                });
                if now.duration_since(last_hold_request) >= HOLD_REQUEST_EVERY {
                    for dst in self.hold.destinations() {
                        self.fib.request(dst);
                    }
                    last_hold_request = now;
                }
                self.send_out(&mut out, &mut local);
            }
            let mut got = 0;
            for port in 0..self.xsk.ports() {
                let n = self.xsk.recv(port, &mut rx, batch);
                if n == 0 {
                    continue;
                }
                got += n;
                let side = self.sides[port];
                local[match side {
                    Side::Inside => Counter::RxInside,
                    Side::Outside => Counter::RxOutside,
                } as usize] += n as u64;
                if let Some(st) = self.esp.as_mut() {
                    let mut io = esp_io!(self, &mut local, now);
                    match side {
                        Side::Inside => esp_path::encap(st, &mut io, &mut rx, &mut out),
                        Side::Outside => esp_path::decap(st, &mut io, &mut rx, &mut out),
                    }
                    if !st.events.is_empty() {
                        self.stats.events.publish(&mut st.events);
                    }
                    self.stats.set_esp(&st.drops);
                }
                for pkt in rx.drain(..) {
                    self.forward_one(pkt, &mut out, &mut local, now);
                }
                self.send_out(&mut out, &mut local);
            }
            self.xsk.service();
            if got > 0 {
                idle_since = None;
                self.flush(&mut local);
                continue;
            }
            self.flush(&mut local);
            if self.cfg.busy_poll {
                std::hint::spin_loop();
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < SPIN {
                std::hint::spin_loop();
            } else if self.hold.is_empty() {
                let _ = self.xsk.wait(BLOCK_MS);
            } else {
                let _ = self.xsk.wait(HOLD_POLL_MS);
            }
        }
        self.kernel_stats();
    }

    /// Plain IPv4 forwarding of one received frame.
    fn forward_one(
        &mut self,
        mut pkt: Packet,
        out: &mut [Vec<Packet>; 2],
        local: &mut [u64; Counter::COUNT],
        now: Instant,
    ) {
        match self.process(&mut pkt) {
            Verdict::Tx(to) => out[side_index(to)].push(pkt),
            Verdict::Drop(c) => {
                local[c as usize] += 1;
                self.xsk.release(pkt);
            }
            Verdict::Hold(dst) => {
                let mut io = esp_io!(self, local, now);
                io.hold(dst, Held::Forward, pkt, None);
            }
            Verdict::Icmp(err, c) => {
                local[c as usize] += 1;
                if let Some((to, reply)) = icmp_reply(
                    &mut self.xsk,
                    &self.fib,
                    self.cfg.inside_ifindex,
                    self.cfg.outside_ifindex,
                    &pkt,
                    err,
                ) {
                    out[side_index(to)].push(reply);
                    local[Counter::IcmpSent as usize] += 1;
                }
                self.xsk.release(pkt);
            }
        }
    }

    /// Hands the TX queues to the sockets.
    fn send_out(&mut self, out: &mut [Vec<Packet>; 2], local: &mut [u64; Counter::COUNT]) {
        for (i, q) in out.iter_mut().enumerate() {
            if !q.is_empty() {
                let (sent, dropped) = self.xsk.send(self.tx_port[i], q);
                local[if i == 0 {
                    Counter::TxInside
                } else {
                    Counter::TxOutside
                } as usize] += sent as u64;
                local[Counter::DropTxRingFull as usize] += dropped as u64;
            }
        }
    }

    /// Copies the held frames whose next hop now resolves into TX frames and
    /// sends them on their way, in the order they came: plain frames through
    /// forwarding, inner frames from the inside through encapsulation,
    /// decapsulated frames to the inside. Returns false if it ran out of
    /// free frames (the rest waits for the next pass).
    fn release_held(
        &mut self,
        r: &mut Released,
        out: &mut [Vec<Packet>; 2],
        local: &mut [u64; Counter::COUNT],
        now: Instant,
    ) -> bool {
        let xsk = &mut self.xsk;
        let fib = &self.fib;
        let mut n = 0u64;
        let complete = self.hold.release(
            |dst| fib.lookup(dst).is_some(),
            |dst, tag, bytes| {
                let Some(mut p) = xsk.alloc() else {
                    return false;
                };
                match xsk.resize(&mut p, bytes.len()) {
                    Some(b) => b.copy_from_slice(bytes),
                    None => {
                        // Cannot happen: slots are no larger than frames.
                        xsk.release(p);
                        return false;
                    }
                }
                match tag {
                    Held::Forward => r.forward.push(p),
                    Held::Encap { .. } => r.encap.push(p),
                    Held::Decap => r.decap.push((dst, p)),
                }
                n += 1;
                true
            },
        );
        local[Counter::ReleasedForNeighbour as usize] += n;
        for p in r.forward.drain(..) {
            self.forward_one(p, out, local, now);
        }
        match self.esp.as_mut() {
            Some(st) => {
                let mut io = esp_io!(self, local, now);
                if !r.encap.is_empty() {
                    esp_path::encap(st, &mut io, &mut r.encap, out);
                }
                for (dst, p) in r.decap.drain(..) {
                    esp_path::forward_inner(&mut io, p, dst, out);
                }
            }
            None => {
                // ESP frames are only held by a worker doing ESP.
                for p in r.encap.drain(..).chain(r.decap.drain(..).map(|(_, p)| p)) {
                    self.xsk.release(p);
                }
            }
        }
        complete
    }

    /// Publishes the batch's counters: to the stats, and the drops to the
    /// region's global counters (what `show` reads) when ESP is on.
    fn flush(&self, local: &mut [u64; Counter::COUNT]) {
        if let Some(e) = &self.esp {
            let g = e.source.db.global();
            for c in Counter::ALL {
                if let (Some(gc), n @ 1..) = (c.global(), local[c as usize]) {
                    g.add(gc, n);
                }
            }
        }
        self.stats.add(local);
        self.stats
            .set(Counter::NeighbourQueueLen, self.hold.len() as u64);
    }

    /// Copies the kernel's per-socket drop counters (summed over ports).
    fn kernel_stats(&self) {
        let mut sum = [0u64; 4];
        for port in 0..self.xsk.ports() {
            if let Ok(st) = self.xsk.stats(port) {
                sum[0] += st.rx_dropped;
                sum[1] += st.rx_ring_full;
                sum[2] += st.rx_fill_ring_empty;
                sum[3] += st.tx_invalid;
            }
        }
        self.stats.set(Counter::XskRxDropped, sum[0]);
        self.stats.set(Counter::XskRxRingFull, sum[1]);
        self.stats.set(Counter::XskFillRingEmpty, sum[2]);
        self.stats.set(Counter::XskTxInvalid, sum[3]);
    }

    /// Decides where one frame goes, rewriting it in place.
    fn process(&mut self, pkt: &mut Packet) -> Verdict {
        let frame = self.xsk.data_mut(pkt);
        let h = match forward::parse_ipv4(frame) {
            Ok(h) => h,
            Err(e) => return Verdict::Drop(fwd_counter(e)),
        };
        let dst = h.dst;
        let Some(nh) = self.fib.lookup(dst) else {
            return Verdict::Hold(dst);
        };
        let Some(to) = self.side_of(nh.oif) else {
            return Verdict::Drop(Counter::DropNoRoute);
        };
        let ip_len = frame.len().saturating_sub(14);
        if ip_len > usize::from(nh.mtu) {
            if h.dont_frag {
                return Verdict::Icmp(
                    IcmpError::FragmentationNeeded { mtu: nh.mtu },
                    Counter::DropTooBig,
                );
            }
            return Verdict::Drop(Counter::DropTooBig);
        }
        match forward::forward_in_place(frame, nh) {
            Ok(()) => Verdict::Tx(to),
            Err(FwdDrop::TtlExceeded) => {
                Verdict::Icmp(IcmpError::TtlExceeded, Counter::DropTtlExceeded)
            }
            Err(e) => Verdict::Drop(fwd_counter(e)),
        }
    }

    fn side_of(&self, oif: u32) -> Option<Side> {
        if oif == self.cfg.outside_ifindex {
            Some(Side::Outside)
        } else if oif == self.cfg.inside_ifindex {
            Some(Side::Inside)
        } else {
            None
        }
    }
}

/// An ICMP error about `orig` back to its source, if one may and can be sent.
pub(crate) fn icmp_reply(
    xsk: &mut XskSet,
    fib: &FibReader,
    inside_ifindex: u32,
    outside_ifindex: u32,
    orig: &Packet,
    err: IcmpError,
) -> Option<(Side, Packet)> {
    let data = xsk.data(orig);
    if !icmp::may_answer(data) {
        return None;
    }
    let src = std::net::Ipv4Addr::new(data[26], data[27], data[28], data[29]);
    let Some(nh) = fib.lookup(src).copied() else {
        fib.request(src);
        return None;
    };
    let to = if nh.oif == inside_ifindex {
        Side::Inside
    } else if nh.oif == outside_ifindex {
        Side::Outside
    } else {
        return None;
    };
    let from = nh.src_ip?;
    let mut tmp = [0u8; 128];
    let n = icmp::build_error(xsk.data(orig), err, from, &nh, &mut tmp)?;
    let mut reply = xsk.alloc()?;
    match xsk.resize(&mut reply, n) {
        Some(b) => {
            b.copy_from_slice(&tmp[..n]);
            Some((to, reply))
        }
        None => {
            xsk.release(reply);
            None
        }
    }
}

/// What becomes of one received frame.
enum Verdict {
    /// Send it on that side.
    Tx(Side),
    /// Drop it, counting the reason.
    Drop(Counter),
    /// Hold it until the next hop towards this destination resolves.
    Hold(std::net::Ipv4Addr),
    /// Drop it (counting the reason) and answer with an ICMP error.
    Icmp(IcmpError, Counter),
}

/// Held frames handed back in one pass, by what they wait for.
struct Released {
    forward: Vec<Packet>,
    encap: Vec<Packet>,
    decap: Vec<(std::net::Ipv4Addr, Packet)>,
}

impl Released {
    fn with_capacity(n: usize) -> Self {
        Released {
            forward: Vec::with_capacity(n),
            encap: Vec::with_capacity(n),
            decap: Vec::with_capacity(n),
        }
    }
}

fn fwd_counter(d: FwdDrop) -> Counter {
    match d {
        FwdDrop::NotIpv4 => Counter::DropNotIpv4,
        FwdDrop::Malformed => Counter::DropMalformed,
        FwdDrop::TtlExceeded => Counter::DropTtlExceeded,
    }
}
