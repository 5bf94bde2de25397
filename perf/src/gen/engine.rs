//! The generator and the receiver: threads that own real AF_XDP sockets (espgw-dataplane's
//! [`XskSet`]), each entered into the network namespace of its interface, driven trial by
//! trial from the caller's thread over channels.
//!
//! - A [`Generator`] is one thread per transmit queue (pinned where cores are given). A
//!   trial sends for `duration` at `rate / threads` each (or as fast as the TX ring takes
//!   frames), stream = thread index, sequence numbers from 0, after an optional warm-up
//!   whose frames carry trial 0 and are not counted.
//! - A [`Receiver`] binds every RX queue of its interface in one UMEM, steers UDP to
//!   `dst` into them with espgw's own inside XDP classifier (everything else, ARP
//!   included, goes to the kernel), and counts per stream with a [`SeqTracker`]; one-way
//!   latency (CLOCK_MONOTONIC, one machine) goes into an HDR histogram. When idle it blocks
//!   in poll(2) instead of spinning (on veth the receive path runs on the sender's CPU).

use super::pacer::Pacer;
use super::probe::{FlowSpec, Probe, SizeMix};
use super::seqtrack::SeqTracker;
use espgw_dataplane::sys::xsk::{Packet, XskConfig, XskSet};
use espgw_dataplane::xdp::{acl::AclRule, Classifier, ModeRequest, Side};
use hdrhistogram::Histogram;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver as Rx, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every namespace of the machine).
pub fn now_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("monotonic clock");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// Moves the calling thread into network namespace `name` (`ip netns` name).
pub fn enter_netns(name: &str) -> Result<(), String> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {path}: {e}"))
}

/// One trial as the generator sends it.
#[derive(Debug, Clone)]
pub struct TxTrial {
    /// 1..=255 (0 marks warm-up frames).
    pub trial: u8,
    /// Frames per second over all threads; `None`: full speed.
    pub rate_pps: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    /// Stop after this many counted frames (all threads together): a burst.
    pub max_frames: Option<u64>,
    pub sizes: SizeMix,
}

/// What the generator sent in the counted part of a trial.
#[derive(Debug, Clone, Default)]
pub struct TxReport {
    /// Frames per stream (thread).
    pub sent: Vec<u64>,
    pub bytes: u64,
    /// Seconds from the first to the last counted frame (longest thread).
    pub secs: f64,
    /// Warm-up frames.
    pub warmup_sent: u64,
}

impl TxReport {
    pub fn total(&self) -> u64 {
        self.sent.iter().sum()
    }
}

enum TxCmd {
    Run(TxTrial, Sender<(u64, u64, f64, u64)>),
}

/// Transmit threads on one interface.
pub struct Generator {
    workers: Vec<(Sender<TxCmd>, JoinHandle<()>)>,
}

/// Where a generator or receiver runs.
#[derive(Debug, Clone)]
pub struct Port {
    /// Network namespace (`ip netns` name); `None`: the caller's.
    pub netns: Option<String>,
    pub ifname: String,
}

fn xsk_cfg(frames: u32, ring: u32) -> XskConfig {
    XskConfig {
        frames_per_socket: frames,
        ring_size: ring,
        force_copy: false,
        need_wakeup: true,
    }
}

impl Generator {
    /// One thread per queue in `queues`, thread `i` pinned to `cores[i]` when given.
    pub fn start(
        port: &Port,
        queues: &[u32],
        cores: &[usize],
        flows: FlowSpec,
    ) -> Result<Generator, String> {
        let mut workers = Vec::new();
        for (i, &q) in queues.iter().enumerate() {
            let (tx, rx) = channel();
            let (ready_tx, ready_rx) = channel();
            let port_c = port.clone();
            let flows = flows.clone();
            let core = cores.get(i).copied();
            let stream = i as u8;
            let h = std::thread::Builder::new()
                .name(format!("gen-tx{i}"))
                .spawn(move || {
                    let port = port_c;
                    let setup = (|| {
                        if let Some(ns) = &port.netns {
                            enter_netns(ns)?;
                        }
                        if let Some(c) = core {
                            core_affinity::set_for_current(core_affinity::CoreId { id: c });
                        }
                        XskSet::new(&xsk_cfg(4096, 2048), &[(port.ifname.clone(), q)])
                            .map_err(|e| e.to_string())
                    })();
                    match setup {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                        Ok(xs) => {
                            let _ = ready_tx.send(Ok(()));
                            tx_loop(xs, stream, &flows, rx);
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            match ready_rx.recv() {
                Ok(Ok(())) => workers.push((tx, h)),
                Ok(Err(e)) => return Err(format!("generator on {} queue {q}: {e}", port.ifname)),
                Err(_) => return Err("generator thread died at start".into()),
            }
        }
        Ok(Generator { workers })
    }

    /// Runs one trial on every thread at once; returns when all are done.
    pub fn run(&self, t: &TxTrial) -> TxReport {
        let n = self.workers.len() as f64;
        let mut replies = Vec::new();
        for (i, (w, _)) in self.workers.iter().enumerate() {
            let mut mine = t.clone();
            mine.rate_pps = t.rate_pps.map(|r| r / n);
            mine.max_frames = t.max_frames.map(|m| {
                let k = self.workers.len() as u64;
                m / k + u64::from((i as u64) < m % k)
            });
            let (rtx, rrx) = channel();
            if w.send(TxCmd::Run(mine, rtx)).is_ok() {
                replies.push(rrx);
            }
        }
        let mut rep = TxReport::default();
        for r in replies {
            let (sent, bytes, secs, warm) = r.recv().unwrap_or_default();
            rep.sent.push(sent);
            rep.bytes += bytes;
            rep.secs = rep.secs.max(secs);
            rep.warmup_sent += warm;
        }
        rep
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        for (tx, h) in self.workers.drain(..) {
            drop(tx);
            let _ = h.join();
        }
    }
}

const BATCH: usize = 64;

/// One generator thread's socket and state between trials.
struct TxThread<'a> {
    xs: XskSet,
    pkts: Vec<Packet>,
    flows: &'a FlowSpec,
    stream: u8,
    /// Flow of the next frame (flows keep cycling across trials).
    flow_ctr: u64,
}

impl TxThread<'_> {
    /// Sends frames of trial `trial` (sequence numbers from 0) paced at `rate` for
    /// `duration` (None: until `max` frames); returns (frames, bytes, seconds).
    fn phase(
        &mut self,
        rate: Option<f64>,
        sizes: SizeMix,
        trial: u8,
        duration: Option<Duration>,
        max: u64,
    ) -> (u64, u64, f64) {
        // Bucket depth: 10 ms of frames (at least 64), so a preemption on a shared
        // machine is made up for and a long stall is not turned into a burst. What was
        // not sent is not counted as offered: rates are the frames sent over the time.
        let depth = rate.map_or(64, |r| ((r * 0.01) as u64).max(64));
        let start = now_ns();
        let until = duration.map_or(u64::MAX, |d| start + d.as_nanos() as u64);
        let mut pacer = Pacer::new(rate, start, depth);
        let mut probe = Probe {
            stream: self.stream,
            trial,
            seq: 0,
            tx_ns: 0,
        };
        let xs = &mut self.xs;
        let pkts = &mut self.pkts;
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut lens = Vec::with_capacity(BATCH);
        loop {
            xs.service();
            let now = now_ns();
            if now >= until || sent >= max {
                break;
            }
            let want = pacer.allowed(now).min(BATCH as u64).min(max - sent);
            if want == 0 {
                let w = pacer.wait(now);
                if w > Duration::from_micros(200) {
                    std::thread::sleep(w - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            let base = probe.seq;
            lens.clear();
            for i in 0..want {
                let Some(mut p) = xs.alloc() else { break };
                let len = sizes.size(base + i);
                probe.seq = base + i;
                probe.tx_ns = now;
                let Some(buf) = xs.resize(&mut p, len) else {
                    xs.release(p);
                    break;
                };
                self.flows.write(buf, len, self.flow_ctr + i, &probe);
                lens.push(len as u64);
                pkts.push(p);
            }
            probe.seq = base;
            if pkts.is_empty() {
                continue;
            }
            // Frames the ring did not take are released and re-sent with the same numbers.
            let (n, _rejected) = xs.send(0, pkts);
            let n = n as u64;
            pacer.sent(n);
            probe.seq = base + n;
            self.flow_ctr += n;
            sent += n;
            bytes += lens[..n as usize].iter().sum::<u64>();
        }
        (sent, bytes, (now_ns() - start) as f64 / 1e9)
    }
}

fn tx_loop(xs: XskSet, stream: u8, flows: &FlowSpec, cmds: Rx<TxCmd>) {
    let mut th = TxThread {
        xs,
        pkts: Vec::with_capacity(BATCH),
        flows,
        stream,
        flow_ctr: 0,
    };
    while let Ok(TxCmd::Run(t, reply)) = cmds.recv() {
        let warm = if t.warmup.is_zero() {
            0
        } else {
            th.phase(t.rate_pps, t.sizes, 0, Some(t.warmup), u64::MAX).0
        };
        let duration = if t.max_frames.is_some() && t.duration.is_zero() {
            None
        } else {
            Some(t.duration)
        };
        let (sent, bytes, secs) = th.phase(
            t.rate_pps,
            t.sizes,
            t.trial,
            duration,
            t.max_frames.unwrap_or(u64::MAX),
        );
        // Let the kernel finish the ring, then recycle completions.
        let end = Instant::now() + Duration::from_millis(5);
        while Instant::now() < end {
            th.xs.service();
            std::thread::yield_now();
        }
        let _ = reply.send((sent, bytes, secs, warm));
    }
}

/// What the receiver counted for one trial.
#[derive(Debug, Clone)]
pub struct RxReport {
    /// Frames of this trial (duplicates included).
    pub frames: u64,
    pub bytes: u64,
    pub unique: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Probes of other trials (warm-up, stragglers of the previous trial).
    pub other_trial: u64,
    /// Frames that were not probes.
    pub foreign: u64,
    /// One-way latency, ns.
    pub latency: Histogram<u64>,
}

enum RxCmd {
    Begin(u8),
    Finish(Vec<u64>, Sender<RxReport>),
}

/// The receiving side on one interface.
pub struct Receiver {
    cmd: Option<Sender<RxCmd>>,
    thread: Option<JoinHandle<()>>,
    total: Arc<AtomicU64>,
    steered: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

struct RxState {
    trial: u8,
    streams: Vec<SeqTracker>,
    frames: u64,
    bytes: u64,
    other: u64,
    foreign: u64,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

impl RxState {
    fn new(trial: u8) -> RxState {
        RxState {
            trial,
            streams: Vec::new(),
            frames: 0,
            bytes: 0,
            other: 0,
            foreign: 0,
            latency: histogram(),
        }
    }

    fn frame(&mut self, data: &[u8], now: u64) {
        match Probe::parse(data) {
            Err(_) => self.foreign += 1,
            Ok(p) if p.trial != self.trial || self.trial == 0 => self.other += 1,
            Ok(p) => {
                let s = usize::from(p.stream);
                if s >= self.streams.len() {
                    self.streams.resize_with(s + 1, SeqTracker::default);
                }
                if !self.streams[s].record(p.seq) {
                    self.foreign += 1;
                    return;
                }
                self.frames += 1;
                self.bytes += data.len() as u64;
                let _ = self.latency.record(now.saturating_sub(p.tx_ns).max(1));
            }
        }
    }

    fn report(&mut self, sent: &[u64]) -> RxReport {
        let mut lost = 0;
        let (mut unique, mut dups, mut reord) = (0, 0, 0);
        for (i, &n) in sent.iter().enumerate() {
            match self.streams.get(i) {
                Some(t) => lost += t.lost(n),
                None => lost += n,
            }
        }
        for t in &self.streams {
            unique += t.unique;
            dups += t.duplicates;
            reord += t.reordered;
        }
        RxReport {
            frames: self.frames,
            bytes: self.bytes,
            unique,
            lost,
            duplicates: dups,
            reordered: reord,
            other_trial: self.other,
            foreign: self.foreign,
            latency: std::mem::replace(&mut self.latency, histogram()),
        }
    }
}

/// Number of RX queues of `ifname` in namespace `netns` (`ip -d link`: sysfs shows
/// the namespace it was mounted in, not the calling thread's).
pub fn rx_queues(netns: Option<&str>, ifname: &str) -> u32 {
    crate::dut::netns::ip(netns, &["-j", "-d", "link", "show", "dev", ifname])
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v[0]["num_rx_queues"].as_u64())
        .unwrap_or(1)
        .max(1) as u32
}

impl Receiver {
    /// Binds every RX queue of the interface and attaches the classifier that steers
    /// UDP to `dst` into them.
    pub fn start(port: &Port, dst: Ipv4Addr) -> Result<Receiver, String> {
        let (cmd_tx, cmd_rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let total = Arc::new(AtomicU64::new(0));
        let steered = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (t2, s2, d2) = (
            Arc::clone(&total),
            Arc::clone(&steered),
            Arc::clone(&dropped),
        );
        let port_c = port.clone();
        let n = rx_queues(port.netns.as_deref(), &port.ifname);
        let h = std::thread::Builder::new()
            .name("gen-rx".into())
            .spawn(move || {
                let port = port_c;
                let setup = (|| {
                    if let Some(ns) = &port.netns {
                        enter_netns(ns)?;
                    }
                    let binds: Vec<(String, u32)> =
                        (0..n).map(|q| (port.ifname.clone(), q)).collect();
                    // Deep rings: the receiver shares a loaded machine and must not be the loss.
                    let xs =
                        XskSet::new(&xsk_cfg(16384, 8192), &binds).map_err(|e| e.to_string())?;
                    let mut cls = Classifier::load(Side::Inside).map_err(|e| e.to_string())?;
                    for (i, (_, q)) in binds.iter().enumerate() {
                        cls.register_xsk(*q, xs.fd(i)).map_err(|e| e.to_string())?;
                    }
                    let rule: AclRule = format!("permit udp 0.0.0.0/0 {dst}/32")
                        .parse()
                        .map_err(|e: espgw_dataplane::xdp::acl::AclError| e.to_string())?;
                    cls.set_acl(&[rule]).map_err(|e| e.to_string())?;
                    cls.attach(&port.ifname, ModeRequest::Auto)
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>((xs, cls))
                })();
                match setup {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok((xs, mut cls)) => {
                        let _ = ready_tx.send(Ok(()));
                        rx_loop(xs, &cls, cmd_rx, &t2, &s2, &d2);
                        let _ = cls.detach();
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Receiver {
                cmd: Some(cmd_tx),
                thread: Some(h),
                total,
                steered,
                dropped,
            }),
            Ok(Err(e)) => Err(format!("receiver on {}: {e}", port.ifname)),
            Err(_) => Err("receiver thread died at start".into()),
        }
    }

    /// Starts counting trial `trial` (frames of other trials are ignored).
    pub fn begin(&self, trial: u8) {
        if let Some(c) = &self.cmd {
            let _ = c.send(RxCmd::Begin(trial));
        }
    }

    /// Ends the trial; `sent` per stream from the generator's report.
    pub fn finish(&self, sent: &[u64]) -> Option<RxReport> {
        let (tx, rx) = channel();
        self.cmd
            .as_ref()?
            .send(RxCmd::Finish(sent.to_vec(), tx))
            .ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// Every frame read from the sockets since start, probes or not.
    pub fn total_frames(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Frames the kernel dropped at the receiver's sockets (RX ring full, no fill
    /// frame): lost by the receiver, not by the device under test.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The classifier's own count of frames it redirected to the sockets (its per-CPU
    /// counters, read at the end of each trial).
    pub fn steered(&self) -> u64 {
        self.steered.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.cmd.take());
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

fn rx_loop(
    mut xs: XskSet,
    cls: &Classifier,
    cmds: Rx<RxCmd>,
    total: &AtomicU64,
    steered: &AtomicU64,
    dropped: &AtomicU64,
) {
    let read_dropped = |xs: &XskSet| {
        let d: u64 = (0..xs.ports())
            .filter_map(|p| xs.stats(p).ok())
            // A frame that found the fill ring empty is counted twice by the kernel (as
            // rx_dropped and as fill_ring_empty_descs): one drop, so only the first counts.
            .map(|s| s.rx_dropped + s.rx_ring_full)
            .sum();
        dropped.store(d, Ordering::Relaxed);
    };
    use espgw_dataplane::xdp::maps::CounterIndex;
    let mut st = RxState::new(0);
    let mut pkts = Vec::with_capacity(BATCH);
    let ports = xs.ports();
    let mut last_counter = Instant::now();
    loop {
        match cmds.try_recv() {
            Ok(RxCmd::Begin(t)) => st = RxState::new(t),
            Ok(RxCmd::Finish(sent, reply)) => {
                // Drain what is already in the rings first.
                for _ in 0..4 {
                    for port in 0..ports {
                        while xs.recv(port, &mut pkts, BATCH) > 0 {
                            let now = now_ns();
                            for p in pkts.drain(..) {
                                st.frame(xs.data(&p), now);
                                total.fetch_add(1, Ordering::Relaxed);
                                xs.release(p);
                            }
                            xs.service();
                        }
                    }
                }
                read_dropped(&xs);
                if let Ok(c) = cls.counters() {
                    steered.store(c[CounterIndex::Steered as usize].packets, Ordering::Relaxed);
                }
                let _ = reply.send(st.report(&sent));
                st = RxState::new(0);
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        let mut got = 0;
        for port in 0..ports {
            let n = xs.recv(port, &mut pkts, BATCH);
            if n == 0 {
                continue;
            }
            got += n;
            let now = now_ns();
            for p in pkts.drain(..) {
                st.frame(xs.data(&p), now);
                xs.release(p);
            }
        }
        total.fetch_add(got as u64, Ordering::Relaxed);
        xs.service();
        if got == 0 {
            let _ = xs.wait(2);
        }
        if last_counter.elapsed() > Duration::from_millis(20) {
            last_counter = Instant::now();
            read_dropped(&xs);
            if let Ok(c) = cls.counters() {
                steered.store(c[CounterIndex::Steered as usize].packets, Ordering::Relaxed);
            }
        }
    }
}
