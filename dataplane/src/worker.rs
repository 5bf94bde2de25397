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
pub mod fanout;
pub mod fib;
pub mod forward;
pub mod frag;
pub mod hold;
pub mod icmp;
pub mod netlink;
pub mod ring;
pub mod sa;
pub mod stats;
pub mod syslog;

use crate::esp::DropReason;
use crate::sys::xsk::{Packet, XskConfig, XskError, XskSet};
use crate::xdp::classify::AclSet;
use crate::xdp::Side;
use esp_path::EspState;
use fib::FibReader;
use forward::FwdDrop;
use hold::{Held, HoldQueue};
use icmp::IcmpError;
use sa::SaSource;
pub use stats::{Counter, Tally, WorkerStats};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The worker's I/O for the ESP path, borrowing the worker's fields one by one
/// (a method would borrow the whole worker while `self.esp` is in use).
macro_rules! esp_io {
    ($w:ident, $tally:expr, $now:expr) => {
        esp_path::Io {
            xsk: &mut $w.xsk,
            fib: &$w.fib,
            hold: &mut $w.hold,
            now: $now,
            inside_ifindex: $w.cfg.inside_ifindex,
            outside_ifindex: $w.cfg.outside_ifindex,
            tally: $tally,
        }
    };
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
    /// Inbound ESP spread over several workers (`--fanout`).
    fanout: Option<fanout::Fanout>,
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
/// Longest `poll(2)` of a worker that verifies slices for others (`--fanout`): a
/// hand-off waits at most this long for an idle peer.
const FANOUT_POLL_MS: i32 = 1;
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
            fanout: None,
        })
    }

    /// Turns on ESP: interesting traffic is encapsulated with SAs from the
    /// region, ESP from the outside decapsulated.
    pub fn with_esp(mut self, source: Arc<SaSource>, acl: Arc<Published<AclSet>>) -> Self {
        self.esp = Some(EspState::new(source, acl, self.cfg.id as u16));
        self
    }

    /// Tells the worker it is the only one receiving inside traffic, so no
    /// other worker takes sequence numbers of its SAs: it encrypts each
    /// receive batch in one call (the batch kernels' lanes filled), not in
    /// runs of [`esp_path::SEQ_CHUNK`].
    pub fn sole_encryptor(mut self) -> Self {
        if let Some(e) = self.esp.as_mut() {
            e.seq_chunk = self.cfg.batch.max(esp_path::SEQ_CHUNK);
        }
        self
    }

    /// Spreads the ESP this worker receives over its peers and verifies theirs
    /// ([`fanout`]); only with ESP on.
    pub fn with_fanout(mut self, f: fanout::Fanout) -> Self {
        if self.esp.is_some() {
            self.fanout = Some(f);
        }
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
        let mut tally = Tally::default();
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
                    release_due = !self.release_held(&mut released, &mut out, &mut tally, now);
                }
                let esp = self.esp.as_ref();
                self.hold.expire(now, |tag| {
                    esp_path::held_dropped(esp, &mut tally, tag, DropReason::NoNeighbour)
                });
                if now.duration_since(last_hold_request) >= HOLD_REQUEST_EVERY {
                    for dst in self.hold.destinations() {
                        self.fib.request(dst);
                    }
                    last_hold_request = now;
                }
                self.send_out(&mut out, &mut tally);
            }
            let mut got = 0;
            for port in 0..self.xsk.ports() {
                let n = self.xsk.recv(port, &mut rx, batch);
                if n == 0 {
                    continue;
                }
                got += n;
                tally.count(Counter::Batches);
                let side = self.sides[port];
                tally.add(
                    match side {
                        Side::Inside => Counter::RxInside,
                        Side::Outside => Counter::RxOutside,
                    },
                    n as u64,
                );
                if let Some(st) = self.esp.as_mut() {
                    let mut io = esp_io!(self, &mut tally, now);
                    match (side, self.fanout.as_mut()) {
                        (Side::Inside, _) => esp_path::encap(st, &mut io, &mut rx, &mut out),
                        (Side::Outside, Some(f)) => f.spread(st, &mut io, &mut rx, &mut out),
                        (Side::Outside, None) => esp_path::decap(st, &mut io, &mut rx, &mut out),
                    }
                    if !st.events.is_empty() {
                        self.stats.events.publish(&mut st.events);
                    }
                }
                for pkt in rx.drain(..) {
                    self.forward_one(pkt, &mut out, &mut tally, now);
                }
                self.send_out(&mut out, &mut tally);
            }
            if let (Some(f), Some(st)) = (self.fanout.as_mut(), self.esp.as_mut()) {
                // Other workers' slices first (their owners wait), then ours back.
                got += f.serve(&mut tally);
                if f.busy() {
                    let mut io = esp_io!(self, &mut tally, now);
                    f.deliver(st, &mut io, &mut out);
                    if !st.events.is_empty() {
                        self.stats.events.publish(&mut st.events);
                    }
                    // Slices still out: keep turning, never sleep on them.
                    got += usize::from(f.busy());
                    self.send_out(&mut out, &mut tally);
                }
            }
            self.xsk.service();
            if got > 0 {
                idle_since = None;
                tally.add(Counter::BusyNs, now.elapsed().as_nanos() as u64);
                self.flush(&mut tally);
                continue;
            }
            self.flush(&mut tally);
            if self.cfg.busy_poll {
                std::hint::spin_loop();
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < SPIN {
                std::hint::spin_loop();
            } else if self.fanout.as_ref().is_some_and(|f| f.serves()) {
                // Slices from other workers arrive without waking poll(2).
                let _ = self.xsk.wait(FANOUT_POLL_MS);
            } else if self.hold.is_empty() {
                let _ = self.xsk.wait(BLOCK_MS);
            } else {
                let _ = self.xsk.wait(HOLD_POLL_MS);
            }
        }
        if let Some(f) = self.fanout.as_mut() {
            f.stop();
        }
        self.kernel_stats();
    }

    /// Plain IPv4 forwarding of one received frame.
    fn forward_one(
        &mut self,
        mut pkt: Packet,
        out: &mut [Vec<Packet>; 2],
        tally: &mut Tally,
        now: Instant,
    ) {
        match self.process(&mut pkt) {
            Verdict::Tx(to) => out[side_index(to)].push(pkt),
            Verdict::Drop(r) => {
                tally.drop(r);
                self.xsk.release(pkt);
            }
            Verdict::Hold(dst) => {
                let mut io = esp_io!(self, tally, now);
                io.hold(dst, Held::Forward, pkt, None);
            }
            Verdict::Icmp(err, r) => {
                tally.drop(r);
                if let Some((to, reply)) = icmp_reply(
                    &mut self.xsk,
                    &self.fib,
                    self.cfg.inside_ifindex,
                    self.cfg.outside_ifindex,
                    &pkt,
                    err,
                ) {
                    out[side_index(to)].push(reply);
                    tally.count(Counter::IcmpSent);
                }
                self.xsk.release(pkt);
            }
        }
    }

    /// Hands the TX queues to the sockets.
    fn send_out(&mut self, out: &mut [Vec<Packet>; 2], tally: &mut Tally) {
        for (i, q) in out.iter_mut().enumerate() {
            if !q.is_empty() {
                let (sent, dropped) = self.xsk.send(self.tx_port[i], q);
                let side = if i == 0 {
                    Counter::TxInside
                } else {
                    Counter::TxOutside
                };
                tally.add(side, sent as u64);
                tally.drops.add_n(DropReason::TxRingFull, dropped as u64);
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
        tally: &mut Tally,
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
        tally.add(Counter::ReleasedForNeighbour, n);
        for p in r.forward.drain(..) {
            self.forward_one(p, out, tally, now);
        }
        match self.esp.as_mut() {
            Some(st) => {
                let mut io = esp_io!(self, tally, now);
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

    /// Publishes the turn's counts: to the stats, and the drops also to the region's
    /// data-plane-wide drop counters (what `show crypto dataplane` reads) when ESP is on.
    fn flush(&self, tally: &mut Tally) {
        let region = self.esp.as_ref().map(|e| e.source.db.global());
        self.stats.flush(tally, region);
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
            Err(e) => return Verdict::Drop(fwd_drop(e)),
        };
        let dst = h.dst;
        let Some(nh) = self.fib.lookup(dst) else {
            return Verdict::Hold(dst);
        };
        let Some(to) = self.side_of(nh.oif) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let ip_len = frame.len().saturating_sub(14);
        if ip_len > usize::from(nh.mtu) {
            if h.dont_frag {
                return Verdict::Icmp(
                    IcmpError::FragmentationNeeded { mtu: nh.mtu },
                    DropReason::TooBig,
                );
            }
            return Verdict::Drop(DropReason::TooBig);
        }
        match forward::forward_in_place(frame, nh) {
            Ok(()) => Verdict::Tx(to),
            Err(FwdDrop::TtlExceeded) => {
                Verdict::Icmp(IcmpError::TtlExceeded, DropReason::TtlExceeded)
            }
            Err(e) => Verdict::Drop(fwd_drop(e)),
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
    Drop(DropReason),
    /// Hold it until the next hop towards this destination resolves.
    Hold(std::net::Ipv4Addr),
    /// Drop it (counting the reason) and answer with an ICMP error.
    Icmp(IcmpError, DropReason),
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

pub(crate) fn fwd_drop(d: FwdDrop) -> DropReason {
    match d {
        FwdDrop::NotIpv4 => DropReason::NotIpv4,
        FwdDrop::Malformed => DropReason::Malformed,
        FwdDrop::TtlExceeded => DropReason::TtlExceeded,
    }
}
