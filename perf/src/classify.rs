//! `espgw-perf classify`: what one packet's lookups cost at 10 and at
//! 10,000 (or more) crypto map entries, each printed as a ratio to the
//! smallest count measured in the same run.
//!
//! - **XDP**: the inside classifier loaded into the kernel with the
//!   compiled ACL of N site-to-site entries (each `deny tcp LOCAL REMOTE eq
//!   23` then `permit ip LOCAL REMOTE`, LOCAL a shared /16, REMOTE the
//!   entry's own /24), run on frames to random entries' remote networks
//!   with `BPF_PROG_TEST_RUN`; the time is the kernel's own mean per run
//!   (needs root). The frames steer (no socket bound: `drop_no_xsk`), so
//!   the whole lookup and walk runs.
//! - **model**: the Rust model of the same lookup (`CompiledAcl::lookup`,
//!   what a worker asks when interesting traffic has no SA).
//! - **walk**: IOS's walk over the whole list (`first_match`), what the
//!   classifier did before it was compiled.
//! - **SA**: the worker's outbound SA lookup by proxy identity and inbound
//!   by SPI over N tunnels installed in an in-memory SA region (two SAs a
//!   tunnel), and the walk over every outbound SA it replaced.
//!
//! Userspace times are CPU time of this thread over many lookups of a
//! shuffled packet set (the set is larger than the caches' hot lines for
//! large N); XDP times are the kernel's. One core; a shared machine adds
//! noise to the absolute numbers, less to the ratios.

use espgw_dataplane::sadb::{Direction, Geometry, Ipv4Prefix, ProxyIdentity, SaDb, SaRecord};
use espgw_dataplane::worker::sa::{SaSource, SaTables};
use espgw_dataplane::xdp::acl::{first_match, parse_rules, AclRule};
use espgw_dataplane::xdp::classify::CompiledAcl;
use espgw_dataplane::xdp::{Classifier, Side};
use nix::time::{clock_gettime, ClockId};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

pub struct Opts {
    pub entries: Vec<usize>,
    /// Distinct packets per measurement.
    pub packets: usize,
    /// BPF_PROG_TEST_RUN repetitions per packet.
    pub repeat: u32,
    /// Skip the walk at sizes above this (it is slow by design).
    pub walk_max: usize,
}

fn cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn remote(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 100 + (i / 256) as u8, (i % 256) as u8, 0)
}

fn rules(n: usize) -> Vec<AclRule> {
    let mut text = String::new();
    for i in 0..n {
        let r = format!("{}/24", remote(i));
        let seq = i + 1;
        text.push_str(&format!(
            "deny tcp 10.1.0.0/16 {r} dport 23 policy {seq} map VPN\n"
        ));
        text.push_str(&format!("permit ip 10.1.0.0/16 {r} policy {seq} map VPN\n"));
    }
    parse_rules(&text).expect("generated rules parse")
}

/// A small xorshift, so the packet set is the same in every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Clone, Copy)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    entry: usize,
}

fn packets(n: usize, count: usize) -> Vec<Pkt> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..count)
        .map(|_| {
            let entry = rng.below(n);
            let o = remote(entry).octets();
            Pkt {
                src: Ipv4Addr::new(10, 1, rng.below(256) as u8, 1 + rng.below(250) as u8),
                dst: Ipv4Addr::new(o[0], o[1], o[2], 1 + rng.below(250) as u8),
                entry,
            }
        })
        .collect()
}

/// Ethernet + IPv4 + UDP 40000 → 7000 (steered by the entry's permit).
fn frame(p: &Pkt) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&p.src.octets());
    f.extend_from_slice(&p.dst.octets());
    f.extend_from_slice(&[0x9c, 0x40, 0x1b, 0x58, 0, 28, 0, 0]);
    f.extend_from_slice(&[0u8; 20]);
    f
}

/// Mean CPU nanoseconds of `f` over `pkts`, `rounds` times, checking each
/// answer.
fn time_per<T>(pkts: &[Pkt], rounds: usize, mut f: impl FnMut(&Pkt) -> T) -> f64 {
    let t0 = cpu();
    for _ in 0..rounds {
        for p in pkts {
            std::hint::black_box(f(p));
        }
    }
    (cpu() - t0).as_nanos() as f64 / (rounds * pkts.len()) as f64
}

/// Rounds so that one measurement does about `target` lookups.
fn rounds_for(pkts: usize, target: usize) -> usize {
    (target / pkts.max(1)).max(1)
}

fn record(spi: u32, dir: Direction, proxy: ProxyIdentity) -> SaRecord {
    let ends = (
        SocketAddrV4::new(Ipv4Addr::new(172, 16, 172, 10), 500),
        SocketAddrV4::new(Ipv4Addr::from(0xc612_0000 | (spi & 0xffff)), 500),
    );
    SaRecord::null_sha(spi, dir, ends, proxy, spi & 0xffff, &[7; 20])
}

/// N tunnels (an outbound and an inbound SA each) in an in-memory region,
/// as the workers expand them.
fn sa_tables(n: usize) -> Arc<SaTables> {
    let cap = (2 * n as u32).max(16);
    let mut w = SaDb::in_memory(Geometry::with_capacity(cap)).expect("in-memory region");
    for i in 0..n {
        let proxy = ProxyIdentity {
            local: Ipv4Prefix::new(Ipv4Addr::new(10, 1, 0, 0), 16),
            remote: Ipv4Prefix::new(remote(i), 24),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        };
        w.install(&record(0x10_0000 + i as u32, Direction::Outbound, proxy))
            .expect("install");
        w.install(&record(0x20_0000 + i as u32, Direction::Inbound, proxy))
            .expect("install");
    }
    let source = SaSource::new(w.reader().clone(), 64);
    source.tables(&Arc::new(SaTables::default()))
}

struct Row {
    n: usize,
    shape: String,
    /// Wall time to compile the list, and to install it into the maps
    /// (the bank switch included).
    compile_ms: f64,
    install_ms: Option<f64>,
    xdp_ns: Option<f64>,
    model_ns: f64,
    walk_ns: Option<f64>,
    sa_out_ns: f64,
    sa_in_ns: f64,
    sa_walk_ns: Option<f64>,
}

fn measure(o: &Opts, n: usize, xdp: Option<&mut Classifier>) -> Row {
    let rules = rules(n);
    let t0 = std::time::Instant::now();
    let compiled = CompiledAcl::compile(&rules).expect("compiles");
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let pkts = packets(n, o.packets);
    // Every packet is protected by its own entry's permit (rule 2i+1).
    for p in &pkts {
        let v = compiled.lookup(p.src, p.dst, 17, Some((40000, 7000)));
        assert_eq!(
            v,
            espgw_dataplane::xdp::classify::Verdict::Permit(2 * p.entry + 1)
        );
    }
    let mut install_ms = None;
    let xdp_ns = xdp.map(|c| {
        let t0 = std::time::Instant::now();
        c.set_compiled_acl(&compiled).expect("installs");
        install_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
        let frames: Vec<Vec<u8>> = pkts.iter().take(64).map(frame).collect();
        let mut total = 0.0;
        for f in &frames {
            let (action, per_run) = c.test_run(f, o.repeat).expect("BPF_PROG_TEST_RUN");
            assert_eq!(action, 1, "steered (no socket: XDP_DROP)");
            total += per_run.as_nanos() as f64;
        }
        total / frames.len() as f64
    });
    let r = rounds_for(pkts.len(), 2_000_000);
    let model_ns = time_per(&pkts, r, |p| {
        compiled.lookup(p.src, p.dst, 17, Some((40000, 7000)))
    });
    let walk_ns = (n <= o.walk_max).then(|| {
        let r = rounds_for(pkts.len(), 20_000_000 / n.max(1));
        time_per(&pkts, r, |p| {
            first_match(&rules, p.src, p.dst, 17, Some((40000, 7000))).map(|r| r.policy)
        })
    });
    let t = sa_tables(n);
    assert_eq!(t.outbound.len(), n);
    let sa_out_ns = time_per(&pkts, r, |p| {
        t.find_outbound(p.src, p.dst, 17, Some((40000, 7000)))
    });
    let spis: Vec<u32> = pkts.iter().map(|p| 0x20_0000 + p.entry as u32).collect();
    let t0 = cpu();
    for _ in 0..r {
        for s in &spis {
            std::hint::black_box(t.inbound.get(s).map(|e| e.conn_id));
        }
    }
    let sa_in_ns = (cpu() - t0).as_nanos() as f64 / (r * spis.len()) as f64;
    let sa_walk_ns = (n <= o.walk_max).then(|| {
        let r = rounds_for(pkts.len(), 20_000_000 / n.max(1));
        time_per(&pkts, r, |p| {
            t.find_outbound_linear(p.src, p.dst, 17, Some((40000, 7000)))
        })
    });
    Row {
        n,
        shape: compiled.shape().to_string(),
        compile_ms,
        install_ms,
        xdp_ns,
        model_ns,
        walk_ns,
        sa_out_ns,
        sa_in_ns,
        sa_walk_ns,
    }
}

pub fn run(o: &Opts) {
    let mut cls = match Classifier::load(Side::Inside) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("espgw-perf classify: no XDP measurement (needs root): {e}");
            None
        }
    };
    let rows: Vec<Row> = o
        .entries
        .iter()
        .map(|&n| measure(o, n, cls.as_mut()))
        .collect();
    let base = &rows[0];
    let ratio = |v: Option<f64>, b: Option<f64>| match (v, b) {
        (Some(v), Some(b)) if b > 0.0 => format!("x{:.2}", v / b),
        _ => "-".into(),
    };
    let ns = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    println!(
        "classifier and SA lookup per packet, ns (ratio to {} entries, same run); {} packets, XDP {} runs each",
        base.n, o.packets, o.repeat
    );
    println!(
        "{:>7} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8}",
        "entries",
        "XDP",
        "ratio",
        "model",
        "ratio",
        "ACL walk",
        "ratio",
        "SA out",
        "ratio",
        "SA in",
        "ratio",
        "SA walk",
        "ratio"
    );
    for r in &rows {
        println!(
            "{:>7} {:>10} {:>8} {:>10.1} {:>8} {:>10} {:>8} {:>10.1} {:>8} {:>10.1} {:>8} {:>10} {:>8}",
            r.n,
            ns(r.xdp_ns),
            ratio(r.xdp_ns, base.xdp_ns),
            r.model_ns,
            ratio(Some(r.model_ns), Some(base.model_ns)),
            ns(r.walk_ns),
            ratio(r.walk_ns, base.walk_ns),
            r.sa_out_ns,
            ratio(Some(r.sa_out_ns), Some(base.sa_out_ns)),
            r.sa_in_ns,
            ratio(Some(r.sa_in_ns), Some(base.sa_in_ns)),
            ns(r.sa_walk_ns),
            ratio(r.sa_walk_ns, base.sa_walk_ns),
        );
    }
    for r in &rows {
        println!(
            "  {} entries compiled: {}; compile {:.1} ms, install {} ms",
            r.n,
            r.shape,
            r.compile_ms,
            r.install_ms.map_or("-".into(), |v| format!("{v:.1}"))
        );
    }
}
