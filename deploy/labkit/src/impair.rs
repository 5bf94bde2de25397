//! An impaired R1–R2 cable (reliability scenario 5): loss, reordering, delay and jitter,
//! done in user space because this kernel has no `sch_netem`.
//!
//! `espgw-impair` (this crate's binary) runs in the wire namespace (see
//! [`crate::Wire::insert_impaired`]) in place of the bridge: one AF_PACKET socket per
//! port (`w1` faces R1, `w2` faces R2), a thread per direction that reads every frame
//! arriving on one port and, as the seeded [`Decider`] says, drops it, or sends it out of
//! the other port after `delay + U[0, jitter]`, plus `hold` for the frames picked for
//! reordering (so they leave after the ones behind them). A frame is counted `reordered`
//! when it leaves after a frame that arrived after it — measured at send time, whatever
//! caused it (hold or jitter). The counters, by direction and by kind of frame (ESP, IKE,
//! other), are rewritten as JSON every 100 ms ([`ImpairStats`]).
//!
//! No `unsafe` here: a socket is limited to its port by a classic BPF filter on the
//! frame's interface index (and not outgoing), and the link-layer address that sending on
//! a port needs is the one the kernel reported for a frame received from that port
//! (`peek_sender`). So a port can be sent to once a frame has come in on it; until then
//! frames for it are dropped and counted `unseeded` ([`crate::Wire::insert_impaired`]
//! makes R1 and R2 each send one before it returns).
//!
//! Frames are forwarded as they are: a capture on `w1` sees what R1 sent before the
//! impairment and what R1 receives after it.

use crate::flood::Rng;
use crate::{Error, Result};
use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the relay does to every frame, in each direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Impairment {
    /// Frames dropped, percent.
    pub loss_pct: f64,
    /// Frames held back by `hold` (so later ones overtake them), percent.
    pub reorder_pct: f64,
    /// Fixed delay of every frame.
    pub delay: Duration,
    /// Every frame waits a further uniform random time in `[0, jitter]`.
    pub jitter: Duration,
    /// The extra wait of a frame picked for reordering.
    pub hold: Duration,
    /// The RNG seed (each direction derives its own stream from it).
    pub seed: u64,
}

impl Impairment {
    /// The scenario 5: 1 % loss, 5 % reorder, 10 ms jitter (held frames wait
    /// 15 ms more).
    pub fn scenario5(seed: u64) -> Impairment {
        Impairment {
            loss_pct: 1.0,
            reorder_pct: 5.0,
            delay: Duration::ZERO,
            jitter: Duration::from_millis(10),
            hold: Duration::from_millis(15),
            seed,
        }
    }

    /// The command-line arguments of `espgw-impair` that select this impairment.
    pub fn args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}", d.as_secs_f64() * 1e3);
        vec![
            "--loss".into(),
            self.loss_pct.to_string(),
            "--reorder".into(),
            self.reorder_pct.to_string(),
            "--delay-ms".into(),
            ms(self.delay),
            "--jitter-ms".into(),
            ms(self.jitter),
            "--hold-ms".into(),
            ms(self.hold),
            "--seed".into(),
            self.seed.to_string(),
        ]
    }

    /// Parses what [`Impairment::args`] writes (any order; every option required).
    pub fn from_args(args: &[String]) -> Result<Impairment> {
        let get = |name: &str| -> Result<&str> {
            args.windows(2)
                .find(|w| w[0] == name)
                .map(|w| w[1].as_str())
                .ok_or_else(|| Error::Invalid(format!("missing {name}")))
        };
        let pct = |name: &str| -> Result<f64> {
            let v = get(name)?;
            v.parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| Error::Invalid(format!("{name} {v:?}: a percentage 0-100")))
        };
        let ms = |name: &str| -> Result<Duration> {
            let v = get(name)?;
            v.parse::<f64>()
                .ok()
                .filter(|m| (0.0..=10_000.0).contains(m))
                .map(|m| Duration::from_secs_f64(m / 1e3))
                .ok_or_else(|| Error::Invalid(format!("{name} {v:?}: milliseconds 0-10000")))
        };
        let seed = get("--seed")?;
        Ok(Impairment {
            loss_pct: pct("--loss")?,
            reorder_pct: pct("--reorder")?,
            delay: ms("--delay-ms")?,
            jitter: ms("--jitter-ms")?,
            hold: ms("--hold-ms")?,
            seed: seed
                .parse()
                .map_err(|_| Error::Invalid(format!("--seed {seed:?}: an unsigned integer")))?,
        })
    }
}

/// What happens to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped (loss).
    Drop,
    /// Sent after `wait`; `held` when it was picked for reordering.
    Send { wait: Duration, held: bool },
}

/// The seeded decisions of one direction: the same seed gives the same fates in the same
/// order.
pub struct Decider {
    imp: Impairment,
    rng: Rng,
}

impl Decider {
    /// The decider of direction `dir` (0 or 1) of `imp`.
    pub fn new(imp: &Impairment, dir: u64) -> Decider {
        let seed = imp.seed ^ dir.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
        Decider {
            imp: imp.clone(),
            rng: Rng::new(seed),
        }
    }

    /// True with probability `pct` percent (resolution 1e-4 %).
    fn chance(&mut self, pct: f64) -> bool {
        let scaled = (pct * 10_000.0) as u64;
        self.rng.next_u64() % 1_000_000 < scaled
    }

    /// The next frame's fate.
    pub fn fate(&mut self) -> Fate {
        if self.chance(self.imp.loss_pct) {
            return Fate::Drop;
        }
        let mut wait = self.imp.delay;
        let jitter_ns = self.imp.jitter.as_nanos() as u64;
        if jitter_ns > 0 {
            wait += Duration::from_nanos(self.rng.next_u64() % (jitter_ns + 1));
        }
        let held = self.chance(self.imp.reorder_pct);
        if held {
            wait += self.imp.hold;
        }
        Fate::Send { wait, held }
    }
}

/// The kinds of frame the counters tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// IP protocol 50, or UDP 4500 whose payload does not start with the non-ESP marker.
    Esp,
    /// UDP 500, or UDP 4500 behind the 4-byte zero non-ESP marker.
    Ike,
    /// Everything else (ARP, NAT-T keepalives, fragments after the first, ...).
    Other,
}

impl FrameKind {
    /// Classifies an Ethernet frame; short or odd frames are `Other`, never a panic.
    pub fn of(frame: &[u8]) -> FrameKind {
        if frame.get(12..14) != Some(&[0x08, 0x00][..]) {
            return FrameKind::Other;
        }
        let Some(ip) = frame.get(14..) else {
            return FrameKind::Other;
        };
        let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
        let frag_offset = ip
            .get(6..8)
            .map_or(1, |b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
        if ihl < 20 || ip.len() < ihl || frag_offset != 0 {
            return FrameKind::Other;
        }
        match ip[9] {
            50 => FrameKind::Esp,
            17 => {
                let udp = &ip[ihl..];
                let port = |at: usize| {
                    udp.get(at..at + 2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                };
                let (src, dst) = (port(0), port(2));
                let payload = udp.get(8..).unwrap_or_default();
                if src == Some(500) || dst == Some(500) {
                    FrameKind::Ike
                } else if src == Some(4500) || dst == Some(4500) {
                    match payload.get(..4) {
                        Some([0, 0, 0, 0]) => FrameKind::Ike,
                        Some(_) => FrameKind::Esp,
                        None => FrameKind::Other,
                    }
                } else {
                    FrameKind::Other
                }
            }
            _ => FrameKind::Other,
        }
    }

    fn index(self) -> usize {
        match self {
            FrameKind::Esp => 0,
            FrameKind::Ike => 1,
            FrameKind::Other => 2,
        }
    }
}

/// The counters of one direction, in the order of [`COUNTERS`].
#[derive(Default)]
struct DirCounters([AtomicU64; COUNTERS.len()]);

/// The counters' names in the JSON report.
pub const COUNTERS: [&str; 13] = [
    "received",
    "forwarded",
    "dropped",
    "dropped_esp",
    "dropped_ike",
    "dropped_other",
    "forwarded_esp",
    "forwarded_ike",
    "delayed",
    "held",
    "reordered",
    "send_errors",
    "unseeded",
];

#[derive(Clone, Copy)]
enum C {
    Received = 0,
    Forwarded,
    Dropped,
    DroppedEsp,
    ForwardedEsp = 6,
    Delayed = 8,
    Held,
    Reordered,
    SendErrors,
    Unseeded,
}

impl DirCounters {
    fn add(&self, c: C, n: u64) {
        self.0[c as usize].fetch_add(n, Ordering::Relaxed);
    }
    fn add_at(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }
    fn json(&self) -> serde_json::Value {
        COUNTERS
            .iter()
            .zip(&self.0)
            .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed).into()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// One direction's counters read back from the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirStats(pub std::collections::BTreeMap<String, u64>);

impl DirStats {
    /// A counter by its [`COUNTERS`] name (0 if absent).
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }
    /// What `self` counted beyond `before`.
    pub fn since(&self, before: &DirStats) -> DirStats {
        DirStats(
            self.0
                .iter()
                .map(|(k, n)| (k.clone(), n.saturating_sub(before.get(k))))
                .collect(),
        )
    }
}

/// The relay's report: both directions, and whether both ports are seeded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Frames from R1 (arriving on `w1`) towards R2.
    pub r1_to_r2: DirStats,
    /// Frames from R2 (arriving on `w2`) towards R1.
    pub r2_to_r1: DirStats,
    /// Both ports can be sent to.
    pub ready: bool,
}

impl ImpairStats {
    /// Parses the JSON report.
    pub fn parse(text: &str) -> Result<ImpairStats> {
        let j: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::parse("impair stats", e.to_string()))?;
        let dir = |k: &str| {
            DirStats(
                j[k].as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect(),
            )
        };
        Ok(ImpairStats {
            r1_to_r2: dir("r1_to_r2"),
            r2_to_r1: dir("r2_to_r1"),
            ready: j["ready"].as_bool().unwrap_or(false),
        })
    }

    /// Counts beyond `before`, both directions.
    pub fn since(&self, before: &ImpairStats) -> ImpairStats {
        ImpairStats {
            r1_to_r2: self.r1_to_r2.since(&before.r1_to_r2),
            r2_to_r1: self.r2_to_r1.since(&before.r2_to_r1),
            ready: self.ready,
        }
    }

    /// `counter` summed over both directions.
    pub fn total(&self, counter: &str) -> u64 {
        self.r1_to_r2.get(counter) + self.r2_to_r1.get(counter)
    }

    /// A short summary for a scenario line.
    pub fn line(&self) -> String {
        let d = |s: &DirStats| {
            format!(
                "rx {} fwd {} drop {} (esp {} ike {}) held {} reord {} delayed {}",
                s.get("received"),
                s.get("forwarded"),
                s.get("dropped"),
                s.get("dropped_esp"),
                s.get("dropped_ike"),
                s.get("held"),
                s.get("reordered"),
                s.get("delayed")
            )
        };
        format!(
            "R1->R2 [{}] R2->R1 [{}]",
            d(&self.r1_to_r2),
            d(&self.r2_to_r1)
        )
    }
}

/// A port: its socket (only frames arriving on it) and, once known, the address to send
/// to it with.
struct Port {
    sock: Socket,
    addr: Mutex<Option<SockAddr>>,
}

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u32 = 4;

impl Port {
    fn open(ifname: &str) -> Result<Port> {
        let path = format!("/sys/class/net/{ifname}/ifindex");
        let ifindex: u32 = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading {path}"), e))?
            .trim()
            .parse()
            .map_err(|_| Error::parse(path.clone(), "not a number"))?;
        let proto = Protocol::from(i32::from(ETH_P_ALL.to_be()));
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(proto))
            .map_err(|e| Error::io("AF_PACKET socket", e))?;
        // Accept a frame only if it arrived on this port (not one leaving it).
        const SKF_AD_OFF: u32 = 0xffff_f000;
        let filter = [
            SockFilter::new(0x20, 0, 0, SKF_AD_OFF + 8), // ld ifindex
            SockFilter::new(0x15, 0, 3, ifindex),        // jeq ifindex, else drop
            SockFilter::new(0x20, 0, 0, SKF_AD_OFF + 4), // ld pkttype
            SockFilter::new(0x15, 1, 0, PACKET_OUTGOING), // jeq outgoing: drop
            SockFilter::new(0x06, 0, 0, 0x0004_0000),    // ret accept
            SockFilter::new(0x06, 0, 0, 0),              // ret drop
        ];
        sock.attach_filter(&filter)
            .map_err(|e| Error::io("attaching the port filter", e))?;
        sock.set_recv_buffer_size(4 << 20)
            .and_then(|_| sock.set_send_buffer_size(4 << 20))
            .map_err(|e| Error::io("socket buffers", e))?;
        // Frames queued before the filter was attached may be from any interface.
        sock.set_nonblocking(true)
            .map_err(|e| Error::io("non-blocking", e))?;
        let mut buf = [0u8; 64];
        while (&sock).read(&mut buf).is_ok() {}
        sock.set_nonblocking(false)
            .map_err(|e| Error::io("blocking", e))?;
        Ok(Port {
            sock,
            addr: Mutex::new(None),
        })
    }

    fn addr(&self) -> Option<SockAddr> {
        self.addr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A frame waiting to leave: when, its arrival number, the bytes.
type Pending = Reverse<(Instant, u64, Vec<u8>)>;

/// One direction: frames arriving on `from` leave through `to`.
fn direction(from: &Port, to: &Port, mut decider: Decider, c: &DirCounters, stop: &AtomicBool) {
    let mut queue: BinaryHeap<Pending> = BinaryHeap::new();
    let mut buf = vec![0u8; 65536];
    let (mut arrived, mut newest_sent) = (0u64, None::<u64>);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while queue.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
            let Some(Reverse((_, n, frame))) = queue.pop() else {
                break;
            };
            if newest_sent.is_some_and(|m| n < m) {
                c.add(C::Reordered, 1);
            }
            newest_sent = newest_sent.max(Some(n));
            match to.addr() {
                None => c.add(C::Unseeded, 1),
                Some(a) => match to.sock.send_to(&frame, &a) {
                    Ok(_) => {
                        c.add(C::Forwarded, 1);
                        let k = FrameKind::of(&frame);
                        if k != FrameKind::Other {
                            c.add_at(C::ForwardedEsp as usize + k.index());
                        }
                    }
                    Err(_) => c.add(C::SendErrors, 1),
                },
            }
        }
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((due, _, _))| {
                due.saturating_duration_since(now)
            })
            .clamp(Duration::from_micros(50), Duration::from_millis(50));
        if from.sock.set_read_timeout(Some(wait)).is_err() {
            std::thread::sleep(wait);
            continue;
        }
        if from.addr().is_none() {
            if let Ok(a) = from.sock.peek_sender() {
                *from.addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
            }
        }
        let Ok(len) = (&from.sock).read(&mut buf) else {
            continue; // timeout (or a transient error): send what is due
        };
        let frame = &buf[..len];
        c.add(C::Received, 1);
        match decider.fate() {
            Fate::Drop => {
                c.add(C::Dropped, 1);
                c.add_at(C::DroppedEsp as usize + FrameKind::of(frame).index());
            }
            Fate::Send { wait, held } => {
                if held {
                    c.add(C::Held, 1);
                }
                if !wait.is_zero() {
                    c.add(C::Delayed, 1);
                }
                queue.push(Reverse((Instant::now() + wait, arrived, frame.to_vec())));
            }
        }
        arrived += 1;
    }
}

/// Runs the relay between ports `a` (facing R1) and `b` (facing R2) until `run_for`
/// passes (forever if `None`), rewriting `stats` every 100 ms.
pub fn run_relay(
    a: &str,
    b: &str,
    imp: &Impairment,
    stats: &Path,
    run_for: Option<Duration>,
) -> Result<()> {
    let ports = Arc::new([Port::open(a)?, Port::open(b)?]);
    let counters: Arc<[DirCounters; 2]> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for dir in 0..2usize {
        let (ports, counters, stop) = (ports.clone(), counters.clone(), stop.clone());
        let decider = Decider::new(imp, dir as u64);
        threads.push(std::thread::spawn(move || {
            direction(&ports[dir], &ports[1 - dir], decider, &counters[dir], &stop)
        }));
    }
    let tmp = stats.with_extension("tmp");
    let t0 = Instant::now();
    loop {
        let ready = ports.iter().all(|p| p.addr().is_some());
        let j = serde_json::json!({
            "r1_to_r2": counters[0].json(),
            "r2_to_r1": counters[1].json(),
            "ready": ready,
            "impairment": imp.args(),
        });
        std::fs::write(&tmp, j.to_string())
            .and_then(|_| std::fs::rename(&tmp, stats))
            .map_err(|e| Error::io(format!("writing {}", stats.display()), e))?;
        if run_for.is_some_and(|d| t0.elapsed() >= d) || threads.iter().any(|t| t.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let imp = Impairment::scenario5(42);
        assert_eq!(Impairment::from_args(&imp.args()).unwrap(), imp);
        let mut bad = imp.args();
        bad[1] = "101".into();
        assert!(Impairment::from_args(&bad).is_err());
        assert!(Impairment::from_args(&[]).is_err());
    }

    #[test]
    fn same_seed_same_fates_and_rates_near_the_settings() {
        let imp = Impairment::scenario5(7);
        let run = |dir| {
            let mut d = Decider::new(&imp, dir);
            (0..100_000).map(|_| d.fate()).collect::<Vec<_>>()
        };
        let a = run(0);
        assert_eq!(a, run(0));
        assert_ne!(a, run(1));
        let drops = a.iter().filter(|f| **f == Fate::Drop).count();
        let held = a
            .iter()
            .filter(|f| matches!(f, Fate::Send { held: true, .. }))
            .count();
        assert!((800..1200).contains(&drops), "{drops}");
        assert!((4500..5500).contains(&held), "{held}");
        let max = a
            .iter()
            .filter_map(|f| match f {
                Fate::Send { wait, .. } => Some(*wait),
                Fate::Drop => None,
            })
            .max()
            .unwrap();
        assert!(max <= Duration::from_millis(25), "{max:?}");
        let none = Impairment {
            loss_pct: 0.0,
            reorder_pct: 0.0,
            jitter: Duration::ZERO,
            ..imp.clone()
        };
        let mut d = Decider::new(&none, 0);
        assert!((0..1000).all(|_| d.fate()
            == Fate::Send {
                wait: Duration::ZERO,
                held: false
            }));
    }

    fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&[172, 16, 172, 10, 172, 16, 172, 20]);
        f.extend(ip);
        f.extend_from_slice(payload);
        f
    }

    fn udp(src: u16, dst: u16, body: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&src.to_be_bytes());
        u.extend_from_slice(&dst.to_be_bytes());
        u.extend_from_slice(&[0, 0, 0, 0]);
        u.extend_from_slice(body);
        ipv4(17, &u)
    }

    #[test]
    fn frames_are_classified_without_panicking() {
        assert_eq!(FrameKind::of(&ipv4(50, &[1, 2, 3, 4])), FrameKind::Esp);
        assert_eq!(FrameKind::of(&udp(500, 500, &[9; 28])), FrameKind::Ike);
        assert_eq!(
            FrameKind::of(&udp(4500, 4500, &[0, 0, 0, 0, 9])),
            FrameKind::Ike
        );
        assert_eq!(
            FrameKind::of(&udp(4500, 4500, &[0, 0, 1, 2, 9])),
            FrameKind::Esp
        );
        assert_eq!(FrameKind::of(&udp(4500, 4500, &[0xff])), FrameKind::Other);
        assert_eq!(FrameKind::of(&udp(47101, 9, &[0; 8])), FrameKind::Other);
        let mut frag = ipv4(50, &[1; 8]);
        frag[14 + 7] = 1; // fragment offset 8
        assert_eq!(FrameKind::of(&frag), FrameKind::Other);
        let full = udp(4500, 4500, &[1, 2, 3, 4, 5]);
        for n in 0..full.len() {
            let _ = FrameKind::of(&full[..n]);
        }
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(FrameKind::of(&arp), FrameKind::Other);
    }

    #[test]
    fn stats_parse_and_subtract() {
        let c = DirCounters::default();
        c.add(C::Received, 5);
        c.add(C::Reordered, 2);
        let j = serde_json::json!({"r1_to_r2": c.json(), "r2_to_r1": c.json(), "ready": true});
        let s = ImpairStats::parse(&j.to_string()).unwrap();
        assert!(s.ready);
        assert_eq!(s.total("received"), 10);
        assert_eq!(s.r1_to_r2.get("reordered"), 2);
        assert_eq!(s.since(&s).total("received"), 0);
        assert!(ImpairStats::parse("{").is_err());
    }
}
