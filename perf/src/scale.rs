//! `espgw-perf scale`: one ESP tunnel (one SA pair) on many cores.
//!
//! For each thread count N, N threads pinned to distinct cores drive ONE outbound SA
//! (`encapsulate_batch`; each batch reserves its sequence numbers with one atomic add on
//! the SA's shared `SeqCounter`) or ONE inbound SA (`decapsulate_batch`; the SA's
//! lock-free `ReplayWindow` is shared). Inbound, the packets are encapsulated beforehand
//! with consecutive sequence numbers, batch k holding numbers k*B+1..=(k+1)*B; workers
//! take the next batch from one shared atomic index (as a receive ring would hand them
//! out), so no packet is a real replay and every replay or out-of-window drop is false.
//!
//! Time is wall clock over the common interval: from the moment all threads are released
//! to the moment the last one finishes its last batch. Bytes are inner packet bytes.
//! N=1 on the same SA is what a one-SA-one-core gateway does; OpenSSL on one core (when
//! built with the `openssl` feature) is the other baseline.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, DropReason, EspContext, Frame, InboundSa,
    OutboundSa, SaParams, ENCAP_HEADROOM, ENCAP_TAILROOM, MAX_REPLAY_WINDOW,
};
use espgw_dataplane::wire::{EspPacket, EthernetFrame, Ipv4Packet};

use crate::esp_bench::{inner_frame, keys};

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
const SPI: u32 = 0x1000_0002;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dir {
    Encap,
    Decap,
    Both,
}

pub struct Opts {
    pub transform: Transform,
    pub size: usize,
    pub batch: usize,
    pub threads: Vec<usize>,
    pub secs: f64,
    pub dir: Dir,
    pub json: bool,
    /// Also append the JSON document, on one line, to this file (text stays on stdout).
    pub json_out: Option<std::path::PathBuf>,
    /// Upper bound on the memory holding pre-encapsulated inbound packets.
    pub pool_mb: usize,
    /// Core ids to pin thread 0, 1, … to (default: this process's allowed cores in order).
    pub cores: Option<Vec<usize>>,
    /// Inbound replay window; default 8 × N × batch (at least 1024, IOS's largest).
    pub window: Option<u32>,
}

/// One measured point.
#[derive(Debug, Clone)]
struct Point {
    cores: Vec<usize>,
    packets: u64,
    bytes: u64,
    interval: f64,
    /// Every drop, by reason (name, count).
    drops: Vec<(&'static str, u64)>,
    /// Outbound: sequence numbers unique across threads and gap-free. Inbound: no false
    /// replay drop, counters match, inner packets restored.
    valid: bool,
    note: String,
    window: Option<u32>,
    false_replay: u64,
    pool_exhausted: bool,
}

impl Point {
    fn bytes_per_s(&self) -> f64 {
        self.bytes as f64 / self.interval
    }
}

fn params(t: Transform) -> SaParams {
    SaParams::tunnel(SPI, t, LOCAL, REMOTE)
}

fn inbound_params(t: Transform, window: u32) -> SaParams {
    let mut p = params(t);
    p.local = REMOTE;
    p.remote = LOCAL;
    p.replay_window = window;
    p
}

/// Pins the calling thread to `core` (best effort; says so on failure).
fn pin(core: Option<core_affinity::CoreId>) {
    if let Some(c) = core {
        if !core_affinity::set_for_current(c) {
            eprintln!("espgw-perf scale: could not pin to core {}", c.id);
        }
    }
}

/// The cores the threads of an N-thread point are pinned to: the first N of `pick` or of
/// this process's allowed cores (fewer cores than threads: round robin, and a warning).
fn cores_for(n: usize, pick: Option<&[usize]>) -> Vec<Option<core_affinity::CoreId>> {
    let ids: Vec<core_affinity::CoreId> = match pick {
        Some(p) => p.iter().map(|&id| core_affinity::CoreId { id }).collect(),
        None => core_affinity::get_core_ids().unwrap_or_default(),
    };
    if ids.is_empty() {
        return vec![None; n];
    }
    (0..n).map(|i| Some(ids[i % ids.len()])).collect()
}

/// The sequence number of an encapsulated frame (raw ESP in IPv4 in Ethernet).
fn seq_of(data: &[u8]) -> Option<u32> {
    let eth = EthernetFrame::new_checked(data).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let esp = EspPacket::new_checked(ip.payload()).ok()?;
    Some(esp.seq())
}

fn drops_of(dc: &DropCounters) -> Vec<(&'static str, u64)> {
    dc.iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.name(), n))
        .collect()
}

/// N threads encapsulating through one outbound SA for `secs`.
fn encap_point(o: &Opts, n: usize) -> Point {
    let (t, size, batch, secs) = (o.transform, o.size, o.batch, o.secs);
    let sa = OutboundSa::new(params(t), &keys(t)).expect("outbound SA");
    let inner: Vec<Vec<u8>> = (0..batch).map(|i| inner_frame(size, i as u8)).collect();
    let cores = cores_for(n, o.cores.as_deref());
    let barrier = Barrier::new(n + 1);
    let stop = AtomicBool::new(false);
    struct Out {
        packets: u64,
        ranges: Vec<(u64, u32)>,
        misnumbered: u64,
        end: Instant,
        dc: DropCounters,
    }
    let (t0, outs) = std::thread::scope(|s| {
        let handles: Vec<_> = cores
            .iter()
            .map(|&core| {
                let (sa, inner, barrier, stop) = (&sa, &inner, &barrier, &stop);
                s.spawn(move || {
                    pin(core);
                    let mut ctx = EspContext::new();
                    let mut dc = DropCounters::default();
                    let mut frames: Vec<Frame<Vec<u8>>> =
                        inner.iter().map(|f| Frame::with_room(f)).collect();
                    let frame_len = inner[0].len();
                    let mut out = Out {
                        packets: 0,
                        ranges: Vec::with_capacity(1 << 16),
                        misnumbered: 0,
                        end: Instant::now(),
                        dc: DropCounters::default(),
                    };
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        for (f, src) in frames.iter_mut().zip(inner) {
                            f.head = ENCAP_HEADROOM;
                            f.len = frame_len;
                            f.buf[ENCAP_HEADROOM..ENCAP_HEADROOM + frame_len].copy_from_slice(src);
                        }
                        let good = encapsulate_batch(&mut frames, |_| Some(sa), &mut ctx, &mut dc);
                        if good == 0 {
                            continue;
                        }
                        // The batch's numbers must be one consecutive run.
                        let first = seq_of(frames[0].data()).map_or(0, u64::from);
                        for (j, f) in frames[..good].iter().enumerate() {
                            if seq_of(f.data()).map(u64::from) != Some(first + j as u64) {
                                out.misnumbered += 1;
                            }
                        }
                        out.ranges.push((first, good as u32));
                        out.packets += good as u64;
                    }
                    out.end = Instant::now();
                    out.dc = dc;
                    out
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let outs: Vec<Out> = handles
            .into_iter()
            .map(|h| h.join().expect("encap thread"))
            .collect();
        (t0, outs)
    });
    let end = outs.iter().map(|o| o.end).max().unwrap_or(t0);
    let packets: u64 = outs.iter().map(|o| o.packets).sum();
    let mut dc = DropCounters::default();
    for o in &outs {
        dc.merge(&o.dc);
    }
    // Uniqueness across threads: the per-batch ranges, sorted, must not overlap; and
    // since every reservation was used in full, they must tile 1..next exactly.
    let mut ranges: Vec<(u64, u32)> = outs.iter().flat_map(|o| o.ranges.iter().copied()).collect();
    ranges.sort_unstable();
    let overlaps = ranges
        .windows(2)
        .filter(|w| w[0].0 + u64::from(w[0].1) > w[1].0)
        .count();
    let gaps = ranges
        .windows(2)
        .filter(|w| w[0].0 + u64::from(w[0].1) < w[1].0)
        .count();
    let misnumbered: u64 = outs.iter().map(|o| o.misnumbered).sum();
    let covered = ranges.first().map(|r| r.0) == Some(1) && sa.seq.peek() - 1 == packets;
    let counted = sa.counters.packets.load(Ordering::Relaxed) == packets;
    let valid =
        overlaps == 0 && gaps == 0 && misnumbered == 0 && covered && counted && dc.total() == 0;
    Point {
        cores: cores.iter().flatten().map(|c| c.id).collect(),
        packets,
        bytes: packets * size as u64,
        interval: (end - t0).as_secs_f64(),
        drops: drops_of(&dc),
        valid,
        note: format!(
            "{} batches, seq 1..={} unique (overlaps {overlaps}, gaps {gaps}, misnumbered {misnumbered}, all used {covered}, SA counter agrees {counted})",
            ranges.len(),
            sa.seq.peek() - 1
        ),
        window: None,
        false_replay: 0,
        pool_exhausted: false,
    }
}

/// A batch of pre-encapsulated frames: `batch` frames of `stride` bytes each, the packet
/// at `head..head + len` of each.
struct Batch {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

/// Encapsulates `batches` batches with consecutive sequence numbers (batch k holds
/// k*B+1..=(k+1)*B), `n` threads each doing a contiguous run of batches with its own
/// copy of the outbound SA started at the run's first number.
fn make_pool(o: &Opts, batches: usize, n: usize) -> Vec<Mutex<Batch>> {
    let (t, size, batch) = (o.transform, o.size, o.batch);
    let inner: Vec<Vec<u8>> = (0..batch).map(|i| inner_frame(size, i as u8)).collect();
    let frame_len = inner[0].len();
    let stride = (ENCAP_HEADROOM + frame_len + ENCAP_TAILROOM).next_multiple_of(64);
    let per = batches.div_ceil(n.max(1));
    let cores = cores_for(n, o.cores.as_deref());
    let parts: Vec<Vec<Batch>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let inner = &inner;
                let core = cores[i];
                s.spawn(move || {
                    pin(core);
                    let lo = (i * per).min(batches);
                    let hi = ((i + 1) * per).min(batches);
                    let sa = OutboundSa::new(params(t), &keys(t))
                        .expect("outbound SA")
                        .with_next_seq((lo * batch) as u64 + 1);
                    let mut ctx = EspContext::new();
                    let mut dc = DropCounters::default();
                    (lo..hi)
                        .map(|_| {
                            let mut buf = vec![0u8; stride * batch];
                            let mut frames: Vec<Frame<&mut [u8]>> = buf
                                .chunks_mut(stride)
                                .zip(inner)
                                .map(|(c, src)| {
                                    c[ENCAP_HEADROOM..ENCAP_HEADROOM + frame_len]
                                        .copy_from_slice(src);
                                    Frame::new(c, ENCAP_HEADROOM, frame_len)
                                })
                                .collect();
                            let good =
                                encapsulate_batch(&mut frames, |_| Some(&sa), &mut ctx, &mut dc);
                            assert_eq!(good, batch, "pool encapsulation dropped: {dc:?}");
                            let (head, len) = (frames[0].head, frames[0].len);
                            assert!(frames.iter().all(|f| f.head == head && f.len == len));
                            drop(frames);
                            Batch { buf, head, len }
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("pool thread"))
            .collect()
    });
    parts.into_iter().flatten().map(Mutex::new).collect()
}

struct DecapRun {
    packets: u64,
    interval: f64,
    dc: DropCounters,
    mismatched: u64,
    exhausted: bool,
    sa_packets: u64,
}

/// N threads decapsulating `pool` through one inbound SA until `secs` pass or the pool
/// runs out.
fn decap_run(o: &Opts, n: usize, secs: f64, window: u32, pool: &[Mutex<Batch>]) -> DecapRun {
    let (t, size, batch) = (o.transform, o.size, o.batch);
    let sa = InboundSa::new(inbound_params(t, window), &keys(t)).expect("inbound SA");
    let inner: Vec<Vec<u8>> = (0..batch).map(|i| inner_frame(size, i as u8)).collect();
    let stride = pool
        .first()
        .map_or(1, |b| b.lock().expect("pool batch").buf.len() / batch);
    let cores = cores_for(n, o.cores.as_deref());
    let barrier = Barrier::new(n + 1);
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let exhausted = AtomicBool::new(false);
    let (t0, outs) = std::thread::scope(|s| {
        let handles: Vec<_> = cores
            .iter()
            .map(|&core| {
                let (sa, inner, barrier, stop, next, exhausted) =
                    (&sa, &inner, &barrier, &stop, &next, &exhausted);
                s.spawn(move || {
                    pin(core);
                    let mut dc = DropCounters::default();
                    let mut packets = 0u64;
                    let mut mismatched = 0u64;
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(b) = pool.get(k) else {
                            exhausted.store(true, Ordering::Relaxed);
                            break;
                        };
                        let mut b = b.lock().expect("pool batch");
                        let (head, len) = (b.head, b.len);
                        let mut frames: Vec<Frame<&mut [u8]>> = b
                            .buf
                            .chunks_mut(stride)
                            .map(|c| Frame::new(c, head, len))
                            .collect();
                        let good = decapsulate_batch(
                            &mut frames,
                            |spi| (spi == SPI).then_some(sa),
                            &mut dc,
                        );
                        // Cheap check that decryption restored the packets: the first
                        // good frame of each batch against its original.
                        if let Some(f) = frames[..good].first() {
                            if f.data() != &inner[f.batch_index()][..] {
                                mismatched += 1;
                            }
                        }
                        packets += good as u64;
                    }
                    (packets, dc, mismatched, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        // Sleep in short steps so that an exhausted pool ends the point early.
        let deadline = t0 + Duration::from_secs_f64(secs);
        while Instant::now() < deadline && !exhausted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
        }
        stop.store(true, Ordering::Relaxed);
        let outs: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("decap thread"))
            .collect();
        (t0, outs)
    });
    let end = outs.iter().map(|o| o.3).max().unwrap_or(t0);
    let mut dc = DropCounters::default();
    for o in &outs {
        dc.merge(&o.1);
    }
    DecapRun {
        packets: outs.iter().map(|o| o.0).sum(),
        interval: (end - t0).as_secs_f64(),
        dc,
        mismatched: outs.iter().map(|o| o.2).sum(),
        exhausted: exhausted.load(Ordering::Relaxed),
        sa_packets: sa.counters.packets.load(Ordering::Relaxed),
    }
}

fn default_window(n: usize, batch: usize) -> u32 {
    ((8 * n * batch).max(1024) as u32).min(MAX_REPLAY_WINDOW)
}

/// N threads decapsulating through one inbound SA. The pool of pre-encapsulated packets
/// is sized from a short calibration run (enough for `secs` at the calibrated rate),
/// capped at `pool_mb`.
fn decap_point(o: &Opts, n: usize) -> Point {
    let (size, batch) = (o.size, o.batch);
    let window = o.window.unwrap_or_else(|| default_window(n, batch));
    let batch_bytes = (ENCAP_HEADROOM + 14 + size + ENCAP_TAILROOM).next_multiple_of(64) * batch;
    let cap = (o.pool_mb << 20) / batch_bytes;
    // Calibration: 48 batches a thread; the pool holds 1.3 x secs at the calibrated rate.
    let cal_batches = (48 * n).min(cap.max(n));
    let cal_pool = make_pool(o, cal_batches, n);
    let cal = decap_run(o, n, 10.0, window, &cal_pool);
    drop(cal_pool);
    let rate = cal.packets as f64 / cal.interval.max(1e-6); // packets/s, all threads
    let want = ((rate * o.secs * 1.3) as usize).div_ceil(batch).max(2 * n);
    let batches = want.min(cap.max(n));
    let pool = make_pool(o, batches, n);
    let r = decap_run(o, n, o.secs, window, &pool);
    drop(pool);
    let false_replay = r.dc.get(DropReason::Replay) + r.dc.get(DropReason::OutOfWindow);
    let valid =
        false_replay == 0 && r.dc.total() == 0 && r.mismatched == 0 && r.sa_packets == r.packets;
    Point {
        cores: cores_for(n, o.cores.as_deref()).iter().flatten().map(|c| c.id).collect(),
        packets: r.packets,
        bytes: r.packets * size as u64,
        interval: r.interval,
        drops: drops_of(&r.dc),
        valid,
        note: format!(
            "window {window}, pool {} packets{}, false replay drops {false_replay}, inner mismatches {}, SA counter agrees {}",
            batches * batch,
            if r.exhausted { " (used up: interval shorter than --secs)" } else { "" },
            r.mismatched,
            r.sa_packets == r.packets
        ),
        window: Some(window),
        false_replay,
        pool_exhausted: r.exhausted,
    }
}

/// OpenSSL's same ESP crypto work on one core (bytes of inner packets per CPU-second),
/// encap and decap; `None` without the `openssl` feature.
#[cfg(feature = "openssl")]
fn openssl_baseline(o: &Opts) -> Option<(f64, f64, String)> {
    use crate::clock::{compare, Candidate};
    use crate::openssl_ref::Reference;
    let (t, size, batch) = (o.transform, o.size, o.batch);
    let hasher = crate::esp_bench::faster_hmac(t, size, batch);
    let mut enc = Reference::new(t, size, batch, true, hasher);
    let mut dec = Reference::new(t, size, batch, false, hasher);
    let mut c = [
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(|| enc.run()),
        },
        Candidate {
            bytes: size * batch,
            packets: batch,
            run: Box::new(|| dec.run()),
        },
    ];
    let r = compare(Duration::from_secs_f64(o.secs.min(1.0)), &mut c);
    Some((
        r[0].bytes_per_s,
        r[1].bytes_per_s,
        openssl::version::version().to_string(),
    ))
}

#[cfg(not(feature = "openssl"))]
fn openssl_baseline(_: &Opts) -> Option<(f64, f64, String)> {
    None
}

pub fn run(o: &Opts) {
    let hz = crate::clock::cpu_hz();
    let ncpu = core_affinity::get_core_ids().map_or(0, |v| v.len());
    let level = espgw_dataplane::crypto::tdes::Level::detect().name();
    let tname = o.transform.ios_name();
    if !o.json {
        println!(
            "espgw-perf scale: {tname}, {} B inner packets, batch {}, {} cores available, {:.0} MHz nominal, batch kernels at level {level}",
            o.size,
            o.batch,
            ncpu,
            hz / 1e6
        );
        if let Some(&n) = o.threads.iter().find(|&&n| n > ncpu) {
            println!("WARNING: {n} threads on {ncpu} cores: threads share cores, points above {ncpu} are oversubscribed");
        }
    }
    let baseline = openssl_baseline(o);
    if !o.json {
        match &baseline {
            Some((e, d, v)) => println!(
                "baseline OpenSSL ({v}), same ESP crypto, one core: encap {:.1} MB/s, decap {:.1} MB/s",
                e / 1e6,
                d / 1e6
            ),
            None => println!("baseline OpenSSL: skipped (built without the `openssl` feature)"),
        }
    }
    let dirs: &[&str] = match o.dir {
        Dir::Encap => &["encap"],
        Dir::Decap => &["decap"],
        Dir::Both => &["encap", "decap"],
    };
    let mut points = Vec::new();
    for &dir in dirs {
        let mut one: Option<f64> = None;
        for &n in &o.threads {
            let p = if dir == "encap" {
                encap_point(o, n)
            } else {
                decap_point(o, n)
            };
            let r = p.bytes_per_s();
            if n == 1 {
                one = Some(r);
            }
            let os = baseline
                .as_ref()
                .map(|b| if dir == "encap" { b.0 } else { b.1 });
            let vs1 = one.map(|b| r / b);
            if !o.json {
                println!(
                    "{dir} N={n:2}: {:9.1} MB/s {:7.0} Mbit/s {:6.0} kpps | x{} vs N=1, efficiency {} | x{} vs OpenSSL 1 core | {:.2} s, {} | cores {:?}",
                    r / 1e6,
                    r * 8.0 / 1e6,
                    p.packets as f64 / p.interval / 1e3,
                    vs1.map_or("-".into(), |v| format!("{v:.2}")),
                    vs1.map_or("-".into(), |v| format!("{:.0}%", v / n as f64 * 100.0)),
                    os.map_or("-".into(), |b| format!("{:.2}", r / b)),
                    p.interval,
                    if p.valid { "valid" } else { "INVALID" },
                    p.cores
                );
                println!(
                    "        {}{}",
                    p.note,
                    if p.drops.is_empty() {
                        String::new()
                    } else {
                        format!(", drops {:?}", p.drops)
                    }
                );
            }
            if !p.valid {
                eprintln!(
                    "espgw-perf scale: {dir} N={n} failed validation: {} drops {:?}",
                    p.note, p.drops
                );
            }
            points.push(serde_json::json!({
                "dir": dir,
                "threads": n,
                "cores": p.cores,
                "MB_s": (r / 1e5).round() / 10.0,
                "Mbit_s": (r * 8.0 / 1e6).round(),
                "kpps": (p.packets as f64 / p.interval / 100.0).round() / 10.0,
                "interval_s": (p.interval * 1000.0).round() / 1000.0,
                "packets": p.packets,
                "vs_n1": vs1.map(|v| (v * 100.0).round() / 100.0),
                "efficiency": vs1.map(|v| (v / n as f64 * 1000.0).round() / 1000.0),
                "vs_openssl_1core": os.map(|b| (r / b * 100.0).round() / 100.0),
                "valid": p.valid,
                "check": p.note,
                "drops": p.drops.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
                "window": p.window,
                "false_replay_drops": p.false_replay,
                "pool_used_up": p.pool_exhausted,
            }));
        }
    }
    {
        let doc = serde_json::json!({
            "transform": tname,
            "size": o.size,
            "batch": o.batch,
            "cores_available": ncpu,
            "cpu_mhz": (hz / 1e6).round(),
            "level": level,
            "openssl": baseline.as_ref().map(|b| serde_json::json!({
                "version": b.2,
                "encap_MB_s": (b.0 / 1e5).round() / 10.0,
                "decap_MB_s": (b.1 / 1e5).round() / 10.0,
            })),
            "points": points,
        });
        if o.json {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap());
        }
        if let Some(path) = &o.json_out {
            use std::io::Write;
            let line = serde_json::to_string(&doc).unwrap();
            let r = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = r {
                eprintln!("espgw-perf scale: --json-out {}: {e}", path.display());
            }
        }
    }
    if points.iter().any(|p| p["valid"] == false) {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(t: &str, window: Option<u32>) -> Opts {
        Opts {
            transform: Transform::parse(t).unwrap(),
            size: 200,
            batch: 16,
            threads: vec![1, 2],
            secs: 0.05,
            dir: Dir::Both,
            json: false,
            json_out: None,
            pool_mb: 64,
            cores: None,
            window,
        }
    }

    #[test]
    fn encap_on_two_threads_hands_out_each_number_once() {
        let o = opts("esp-3des esp-md5-hmac", None);
        let p = encap_point(&o, 2);
        assert!(p.packets > 0);
        assert!(p.valid, "{}", p.note);
        assert!(
            p.note.contains("overlaps 0, gaps 0, misnumbered 0"),
            "{}",
            p.note
        );
    }

    #[test]
    fn decap_on_two_threads_has_no_false_replay_drop() {
        // A window far beyond any stall on a loaded CI machine: this test is about the
        // shared window's bookkeeping, not about how large it must be.
        let o = opts("esp-aes esp-sha-hmac", Some(MAX_REPLAY_WINDOW));
        let p = decap_point(&o, 2);
        assert!(p.packets > 0);
        assert_eq!(p.false_replay, 0, "{}", p.note);
        assert!(p.valid, "{} {:?}", p.note, p.drops);
    }

    #[test]
    fn pool_batches_carry_consecutive_sequence_numbers() {
        let o = opts("esp-gcm", None);
        let pool = make_pool(&o, 5, 2);
        let mut expect = 1u64;
        for b in &pool {
            let b = b.lock().unwrap();
            let stride = b.buf.len() / o.batch;
            for c in b.buf.chunks(stride) {
                assert_eq!(
                    seq_of(&c[b.head..b.head + b.len]).map(u64::from),
                    Some(expect)
                );
                expect += 1;
            }
        }
        assert_eq!(expect, 5 * 16 + 1);
    }
}
