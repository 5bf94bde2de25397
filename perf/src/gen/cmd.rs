//! `espgw-perf gen`: one trial of the generator, optionally beside trafgen on the same
//! wire in the same run. Without `--tx-dev`/`--rx-dev` it builds its own wire: two
//! namespaces joined by one veth (hostA eth0 ─── eth0 hostB).

use super::bench::{Bench, Outcome};
use super::engine::{Generator, Port, Receiver};
use super::probe::{FlowSpec, SizeMix};
use crate::dut::netns::{self, LinkCounters, VethPair};
use std::net::Ipv4Addr;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Frame size in bytes (64…1518, without FCS: 1518 means 1514) or `imix`.
    #[arg(long, default_value = "64")]
    pub size: SizeMix,
    /// Frames per second (all threads together); full speed when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of the counted trial.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Seconds of warm-up before it (not counted).
    #[arg(long, default_value_t = 0.2)]
    pub warmup: f64,
    /// Source addresses per run (from 10.1.1.2 up).
    #[arg(long, default_value_t = 16)]
    pub src_addrs: u32,
    /// UDP source ports per run (from 40000 up); flows = addresses × ports.
    #[arg(long, default_value_t = 16)]
    pub src_ports: u16,
    /// Generator threads, one TX queue each (default: one).
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Cores to pin the generator threads to (default: core 0, 1, …).
    #[arg(long, value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Also run trafgen (netsniff-ng) for the same time on the same wire and core.
    #[arg(long)]
    pub trafgen: bool,
    /// Send on this interface instead of building a veth pair.
    #[arg(long, requires_all = ["rx_dev", "dst_mac"])]
    pub tx_dev: Option<String>,
    #[arg(long)]
    pub tx_netns: Option<String>,
    /// Receive on this interface.
    #[arg(long)]
    pub rx_dev: Option<String>,
    #[arg(long)]
    pub rx_netns: Option<String>,
    /// Destination MAC of the frames (the next hop from the sending interface).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Destination address of the frames.
    #[arg(long, default_value = "10.1.2.2")]
    pub dst: Ipv4Addr,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The latency summary of an outcome as JSON (µs).
pub fn latency_json(o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "p50_us": o.latency_us(0.5), "p90_us": o.latency_us(0.9), "p99_us": o.latency_us(0.99),
        "p99_9_us": o.latency_us(0.999), "max_us": o.latency_max_us(),
    })
}

/// The whole outcome as JSON.
pub fn outcome_json(o: &Outcome) -> serde_json::Value {
    let c = &o.counters;
    serde_json::json!({
        "offered_pps": o.offered_pps,
        "size": o.sizes.label(),
        "sent": o.sent(),
        "tx_secs": o.tx.secs,
        "tx_pps": o.tx_pps(),
        "received": o.rx.unique,
        "frames_with_duplicates": o.rx.frames,
        "other_trial_frames": o.rx.other_trial,
        "foreign_frames": o.rx.foreign,
        "lost": o.rx.lost,
        "duplicates": o.rx.duplicates,
        "reordered": o.rx.reordered,
        "loss_ratio": o.loss_ratio(),
        "rx_pps": o.rx_pps(),
        "rx_gbps": o.rx_gbps(),
        "latency": latency_json(o),
        "counters": {
            "sent_with_warmup": c.sent, "veth_tx": c.veth_tx, "dut": c.dut,
            "veth_rx": c.veth_rx, "receiver": c.receiver,
            "receiver_dropped": c.receiver_dropped, "xdp_steered": c.xdp_steered, "agree": c.ok,
        },
    })
}

/// One line for the terminal.
pub fn outcome_line(o: &Outcome) -> String {
    format!(
        "{:>5} B  sent {:>9} ({:.3} Mpps)  received {:>9} ({:.3} Mpps, {:.3} Gbit/s)  lost {} ({:.4}%)  dup {}  reord {}  latency µs p50 {:.1} p99 {:.1} max {:.1}",
        o.sizes.label(),
        o.sent(),
        o.tx_pps() / 1e6,
        o.rx.unique,
        o.rx_pps() / 1e6,
        o.rx_gbps(),
        o.rx.lost,
        o.loss_ratio() * 100.0,
        o.rx.duplicates,
        o.rx.reordered,
        o.latency_us(0.5),
        o.latency_us(0.99),
        o.latency_max_us(),
    )
}

/// trafgen's configuration for one UDP frame of `size` bytes like ours (no probe).
pub fn trafgen_conf(src: [u8; 6], dst: [u8; 6], to: Ipv4Addr, size: usize) -> String {
    let m = |a: [u8; 6]| {
        a.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    format!(
        "{{ eth(da={}, sa={}, type=0x0800), ipv4(saddr=10.1.1.2, daddr={to}, ttl=64, proto=17, df), \
         udp(sport=40000, dport=40001), fill(0x41, {}) }}\n",
        m(dst),
        m(src),
        size.saturating_sub(42)
    )
}

/// What trafgen did: frames that left its interface and frames that arrived, per second.
#[derive(Debug, Clone, Copy)]
pub struct TrafgenRun {
    pub tx_pps: f64,
    pub rx_pps: f64,
}

/// Runs trafgen on `tx` for `secs`, pinned to `core`; counts on both veths.
pub fn run_trafgen(
    tx: &Port,
    rx: &Port,
    conf: &str,
    secs: f64,
    core: usize,
    dir: &std::path::Path,
) -> Result<TrafgenRun, String> {
    let path = dir.join(format!("trafgen-{}.cfg", std::process::id()));
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let t0 = LinkCounters::read(tx.netns.as_deref(), &tx.ifname)?;
    let r0 = LinkCounters::read(rx.netns.as_deref(), &rx.ifname)?;
    let secs_s = format!("{secs}");
    let core_s = core.to_string();
    let p = path.to_string_lossy().into_owned();
    let args = [
        "timeout", "-s", "INT", &secs_s, "taskset", "-c", &core_s, "trafgen", "--dev", &tx.ifname,
        "--conf", &p, "--cpus", "1", "-q",
    ];
    // trafgen exits with a signal status when `timeout` stops it: not an error.
    let mut c = match &tx.netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns]).args(args);
            c
        }
        None => {
            let mut c = std::process::Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let start = std::time::Instant::now();
    let out = c.output().map_err(|e| format!("trafgen: {e}"))?;
    let took = start.elapsed().as_secs_f64().min(secs);
    let _ = std::fs::remove_file(&path);
    std::thread::sleep(Duration::from_millis(100));
    let t1 = LinkCounters::read(tx.netns.as_deref(), &tx.ifname)?;
    let r1 = LinkCounters::read(rx.netns.as_deref(), &rx.ifname)?;
    let sent = t1.since(&t0).tx_packets;
    if sent == 0 {
        return Err(format!(
            "trafgen sent nothing: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(TrafgenRun {
        tx_pps: sent as f64 / took,
        rx_pps: r1.since(&r0).rx_packets as f64 / took,
    })
}

pub fn run(a: &GenArgs) -> Result<(), String> {
    if a.threads == 0 || a.secs <= 0.0 {
        return Err("--threads and --secs must be positive".into());
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores: Vec<usize> = a
        .cores
        .clone()
        .unwrap_or_else(|| (0..a.threads as usize).map(|i| i % ncpu).collect());
    let _pair;
    let (tx, rx, dst_mac) = match (&a.tx_dev, &a.rx_dev) {
        (Some(t), Some(r)) => (
            Port {
                netns: a.tx_netns.clone(),
                ifname: t.clone(),
            },
            Port {
                netns: a.rx_netns.clone(),
                ifname: r.clone(),
            },
            netns::parse_mac(a.dst_mac.as_deref().unwrap_or(""))?,
        ),
        _ => {
            let p = VethPair::new(&format!("pgen{}", std::process::id()), a.threads)?;
            let (tx, rx) = p.ports();
            let mac = netns::mac(Some(&p.b), "eth0")?;
            _pair = p;
            (tx, rx, mac)
        }
    };
    let src_mac = netns::mac(tx.netns.as_deref(), &tx.ifname)?;
    let flows = FlowSpec {
        src_mac,
        dst_mac,
        src_ip: Ipv4Addr::new(10, 1, 1, 2),
        src_count: a.src_addrs.max(1),
        dst_ip: a.dst,
        sport: 40000,
        sport_count: a.src_ports.max(1),
        dport: 40001,
    };
    let queues: Vec<u32> = (0..a.threads).collect();
    let gen = Generator::start(&tx, &queues, &cores, flows.clone())?;
    let recv = Receiver::start(&rx, a.dst)?;
    let mut bench = Bench::new(gen, recv, tx.clone(), rx.clone());
    let o = bench.trial(
        a.rate,
        Duration::from_secs_f64(a.secs),
        Duration::from_secs_f64(a.warmup),
        a.size,
        None,
        &|| None,
    );
    let tg = if a.trafgen {
        let size = match a.size {
            SizeMix::Fixed(n) => n,
            SizeMix::Imix => 64,
        };
        let conf = trafgen_conf(src_mac, dst_mac, a.dst, size);
        Some(run_trafgen(
            &tx,
            &rx,
            &conf,
            a.secs,
            cores[0],
            &std::env::temp_dir(),
        ))
    } else {
        None
    };
    if a.json {
        let mut doc = serde_json::json!({
            "generator": outcome_json(&o),
            "threads": a.threads,
            "flows": flows.flows(),
        });
        if let Some(tg) = &tg {
            doc["trafgen"] = match tg {
                Ok(t) => serde_json::json!({
                    "tx_pps": t.tx_pps, "rx_pps": t.rx_pps,
                    "ratio_generator_to_trafgen": o.rx_pps() / t.rx_pps.max(1e-9),
                }),
                Err(e) => serde_json::json!({ "error": e }),
            };
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "espgw-perf gen: {} thread(s), cores {cores:?}, {} flows, {} s",
            a.threads,
            a.src_addrs as u64 * a.src_ports as u64,
            a.secs
        );
        println!("{}", outcome_line(&o));
        println!("counters: {}", o.counters.line());
        if let Some(tg) = tg {
            match tg {
                Ok(t) => println!(
                    "trafgen, same wire, same core: sent {:.3} Mpps, received {:.3} Mpps; espgw-perf gen / trafgen = {:.2}",
                    t.tx_pps / 1e6,
                    t.rx_pps / 1e6,
                    o.rx_pps() / t.rx_pps.max(1e-9)
                ),
                Err(e) => println!("trafgen: {e}"),
            }
        }
    }
    Ok(())
}
