//! The kernel's pktgen as the generator (`espgw-perf pktgen`), for appliances with real
//! NICs: the same trial and RFC 2544 search as the AF_XDP generator, driven through
//! `/proc/net/pktgen` (one kernel thread per queue, `kpktgend_N`). Loss is what pktgen
//! says it sent less what the receiving interface counted (pktgen frames carry no probe
//! of ours, so there is no latency and no per-frame accounting). The lab kernel has no
//! pktgen: the command detects that and says so.

use crate::dut::netns::LinkCounters;
use crate::gen::bench::{Consistency, Outcome};
use crate::gen::engine::{RxReport, TxReport};
use crate::gen::probe::SizeMix;
use crate::rfc2544::search;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const PROC: &str = "/proc/net/pktgen";

#[derive(clap::Args, Debug, Clone)]
pub struct PktgenArgs {
    /// Interface pktgen sends on.
    #[arg(long)]
    pub dev: String,
    /// Interface whose rx_packets counts what arrived (a second NIC, or the far side).
    #[arg(long)]
    pub rx_dev: Option<String>,
    /// Network namespace of --rx-dev.
    #[arg(long)]
    pub rx_netns: Option<String>,
    /// Destination MAC (the device under test's inside interface).
    #[arg(long, default_value = "00:00:00:00:00:00")]
    pub dst_mac: String,
    #[arg(long, default_value = "10.1.2.2")]
    pub dst: Ipv4Addr,
    #[arg(long, default_value = "10.1.1.2")]
    pub src_min: Ipv4Addr,
    #[arg(long, default_value = "10.1.1.17")]
    pub src_max: Ipv4Addr,
    /// Frame size (pktgen counts it without the FCS too).
    #[arg(long, default_value = "64")]
    pub size: SizeMix,
    /// Frames per second; full speed when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Run the RFC 2544 throughput search instead of one trial.
    #[arg(long)]
    pub rfc2544: bool,
}

/// Whether this kernel has pktgen, and if not why.
pub fn available() -> Result<(), String> {
    if Path::new(PROC).join("pgctrl").exists() {
        Ok(())
    } else {
        Err(format!(
            "the kernel's pktgen is not available here: no {PROC}/pgctrl (CONFIG_NET_PKTGEN not \
             built, or `modprobe pktgen` not done). Use `espgw-perf gen`/`rfc2544` (AF_XDP) instead."
        ))
    }
}

fn write(file: &str, cmd: &str) -> Result<(), String> {
    let p = Path::new(PROC).join(file);
    std::fs::write(&p, format!("{cmd}\n")).map_err(|e| format!("{} <- {cmd}: {e}", p.display()))
}

/// Frames sent, from the `Result:` line of a pktgen device file.
fn sent_from(dev_file: &str) -> Option<u64> {
    parse_sent(&std::fs::read_to_string(Path::new(PROC).join(dev_file)).ok()?)
}

/// `Result: OK: 1000123(c999000+d1123) usec, 1000000 (64byte,0frags)` → 1000000.
fn parse_sent(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Result: OK"))?;
    let after = line.split("usec,").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// One trial: configure thread 0 for `dev`, run for `secs` (count = rate × secs, or
/// time-limited at full speed), read what was sent and what arrived.
fn trial(a: &PktgenArgs, rate: Option<f64>, secs: f64) -> Result<(u64, u64, f64), String> {
    let size = match a.size {
        SizeMix::Fixed(n) => n,
        SizeMix::Imix => return Err("pktgen sends one frame size per run (not imix)".into()),
    };
    write("kpktgend_0", "rem_device_all")?;
    write("kpktgend_0", &format!("add_device {}", a.dev))?;
    let d = a.dev.as_str();
    // pkt_size excludes the FCS, as our frame sizes do.
    for c in [
        format!("count {}", rate.map_or(0, |r| (r * secs) as u64)),
        format!("pkt_size {size}"),
        format!("dst {}", a.dst),
        format!("dst_mac {}", a.dst_mac),
        format!("src_min {}", a.src_min),
        format!("src_max {}", a.src_max),
        "udp_src_min 40000".into(),
        "udp_src_max 40015".into(),
        "udp_dst_min 40001".into(),
        "udp_dst_max 40001".into(),
        "flag IPSRC_RND".into(),
        format!("ratep {}", rate.map_or(0, |r| r as u64)),
        "delay 0".into(),
    ] {
        write(d, &c)?;
    }
    let rx0 = match &a.rx_dev {
        Some(r) => Some(LinkCounters::read(a.rx_netns.as_deref(), r)?),
        None => None,
    };
    let start = Instant::now();
    // `start` blocks until the count is sent; a full-speed run is stopped by time.
    let handle = std::thread::spawn(|| write("pgctrl", "start"));
    if rate.is_none() {
        std::thread::sleep(Duration::from_secs_f64(secs));
        write("pgctrl", "stop")?;
    }
    let _ = handle.join();
    let took = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    let sent = sent_from(d).ok_or("no pktgen result line")?;
    let arrived = match (&a.rx_dev, rx0) {
        (Some(r), Some(before)) => {
            LinkCounters::read(a.rx_netns.as_deref(), r)?
                .since(&before)
                .rx_packets
        }
        _ => sent,
    };
    Ok((sent, arrived.min(sent), took))
}

fn outcome(rate: Option<f64>, size: SizeMix, sent: u64, arrived: u64, secs: f64) -> Outcome {
    let bytes = |n: u64| n * size.mean() as u64;
    Outcome {
        offered_pps: rate,
        sizes: size,
        tx: TxReport {
            sent: vec![sent],
            bytes: bytes(sent),
            secs,
            warmup_sent: 0,
        },
        rx: RxReport {
            frames: arrived,
            bytes: bytes(arrived),
            unique: arrived,
            lost: sent - arrived,
            duplicates: 0,
            reordered: 0,
            other_trial: 0,
            foreign: 0,
            latency: hdrhistogram::Histogram::new(3).expect("histogram"),
        },
        counters: Consistency::default(),
    }
}

pub fn run(a: &PktgenArgs) -> Result<(), String> {
    available()?;
    if a.rfc2544 {
        let opts = search::Opts {
            latency_loads: Vec::new(),
            burst_steps: 0,
            ..search::Opts::default()
        };
        let mut err = None;
        let found = search::run(
            &opts,
            &mut |rate, _burst, _k| match trial(a, rate, a.secs) {
                Ok((s, r, t)) => outcome(rate, a.size, s, r, t),
                Err(e) => {
                    err.get_or_insert(e);
                    outcome(rate, a.size, 0, 0, a.secs)
                }
            },
        );
        if let Some(e) = err {
            return Err(e);
        }
        for (k, o) in &found.trials {
            println!(
                "{:<12} offered {:.3} Mpps, delivered {:.3} Mpps, loss {:.4}%",
                k.name(),
                o.tx_pps() / 1e6,
                o.rx_pps() / 1e6,
                o.loss_ratio() * 100.0
            );
        }
        match found.throughput() {
            Some(o) => println!(
                "zero-loss throughput {} B: {:.3} Mpps, {:.3} Gbit/s",
                a.size.label(),
                o.rx_pps() / 1e6,
                o.rx_gbps()
            ),
            None => println!("no rate without loss"),
        }
    } else {
        let (s, r, t) = trial(a, a.rate, a.secs)?;
        let o = outcome(a.rate, a.size, s, r, t);
        println!(
            "pktgen on {}: sent {s} ({:.3} Mpps), arrived {r}, loss {:.4}%",
            a.dev,
            o.tx_pps() / 1e6,
            o.loss_ratio() * 100.0
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn result_line_parses() {
        let dev = "Params: count 1000000  min_pkt_size: 64  max_pkt_size: 64\n\
                   Current:\n     pkts-sofar: 1000000  errors: 0\n\
                   Result: OK: 1000123(c999000+d1123) usec, 1000000 (64byte,0frags)\n  999877pps 511Mb/sec\n";
        assert_eq!(super::parse_sent(dev), Some(1_000_000));
        assert_eq!(super::parse_sent("Result: ERROR: bad\n"), None);
        assert_eq!(super::parse_sent(""), None);
    }
}
