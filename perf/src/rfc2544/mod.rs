//! `espgw-perf rfc2544`: throughput, latency, frame loss and back-to-back (RFC 2544 §26)
//! for every device under test and frame size, in one run, with the generator and
//! receiver of [`crate::gen`]; every trial's receiver count is checked against the
//! receiving veth's and the DUT's own counters. Results: a table and ratios on the
//! terminal, and with `--out DIR` results.json, results.txt, throughput.svg and
//! latency-cdf.svg.

pub mod chart;
pub mod report;
pub mod search;

use crate::dut::{self, DutKind, Setup};
use crate::gen::bench::Bench;
use crate::gen::cmd::{outcome_line, run_trafgen, trafgen_conf};
use crate::gen::engine::{Generator, Receiver};
use crate::gen::probe::{FlowSpec, SizeMix};
use indicatif::{ProgressBar, ProgressStyle};
use report::{DutResult, SizeResult};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Devices under test, comma separated (default: all; see perf/README.md).
    #[arg(long, value_delimiter = ',')]
    pub dut: Vec<DutKind>,
    /// Frame sizes (64…1518 or imix).
    #[arg(long, value_delimiter = ',', default_value = "64,512,1400")]
    pub sizes: Vec<SizeMix>,
    /// Seconds per counted trial.
    #[arg(long, default_value_t = 0.4)]
    pub trial_secs: f64,
    /// Seconds of warm-up traffic before each trial (not counted).
    #[arg(long, default_value_t = 0.1)]
    pub warmup_secs: f64,
    /// Loss accepted in the throughput search, percent of frames (RFC 2544: 0).
    #[arg(long, default_value_t = 0.0)]
    pub loss_tolerance: f64,
    /// Search stops when its bounds are this fraction apart.
    #[arg(long, default_value_t = 0.03)]
    pub resolution: f64,
    /// Most trials of the throughput search.
    #[arg(long, default_value_t = 5)]
    pub max_steps: u32,
    /// Trials of the back-to-back search (0: skip it).
    #[arg(long, default_value_t = 5)]
    pub burst_steps: u32,
    /// Generator threads (one TX queue each on hostA).
    #[arg(long, default_value_t = 1)]
    pub gen_threads: u32,
    /// Core of the first generator thread (others follow).
    #[arg(long, default_value_t = 0)]
    pub gen_core: usize,
    /// Source addresses × UDP source ports = flows.
    #[arg(long, default_value_t = 16)]
    pub src_addrs: u32,
    #[arg(long, default_value_t = 16)]
    pub src_ports: u16,
    /// A deliberately lossy DUT: R1 drops P% of what it forwards (`tc netem loss` on out0,
    /// or an nftables random drop where the kernel has no netem; not for `wire`).
    #[arg(long)]
    pub netem_loss: Option<f64>,
    /// espgw-dataplane to run (compare two builds: one run each, same settings).
    #[arg(long)]
    pub espgw_dataplane: Option<PathBuf>,
    /// espgw-control to run.
    #[arg(long)]
    pub espgw_control: Option<PathBuf>,
    /// No trafgen comparison on the `wire` DUT.
    #[arg(long)]
    pub no_trafgen: bool,
    /// Write results.json, results.txt, throughput.svg, latency-cdf.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn sysinfo() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    serde_json::json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "loadavg_at_start": load.trim(),
        "kernel": kernel.trim(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    })
}

pub fn run(a: &Args) -> Result<(), String> {
    if a.trial_secs <= 0.0 || a.sizes.is_empty() || a.gen_threads == 0 {
        return Err("--trial-secs, --sizes and --gen-threads must be positive".into());
    }
    let duts = if a.dut.is_empty() {
        DutKind::default_set()
    } else {
        a.dut.clone()
    };
    let bins = if duts.iter().any(DutKind::needs_espgw) {
        Some(dut::locate_bins(
            a.espgw_dataplane.clone(),
            a.espgw_control.clone(),
        )?)
    } else {
        None
    };
    let setup = Setup {
        bins: bins.clone(),
        netem_loss: a.netem_loss,
        gen_threads: a.gen_threads,
    };
    let opts = search::Opts {
        loss_tolerance: a.loss_tolerance / 100.0,
        resolution: a.resolution,
        max_steps: a.max_steps,
        burst_steps: a.burst_steps,
        ..search::Opts::default()
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores_for =
        |n: u32| -> Vec<usize> { (0..n as usize).map(|i| (a.gen_core + i) % ncpu).collect() };
    let cores = cores_for(a.gen_threads);
    let trial = Duration::from_secs_f64(a.trial_secs);
    let warmup = Duration::from_secs_f64(a.warmup_secs);
    let t_run = Instant::now();
    let meta = serde_json::json!({
        "system": sysinfo(),
        "trial_secs": a.trial_secs, "warmup_secs": a.warmup_secs,
        "loss_tolerance_percent": a.loss_tolerance, "resolution": a.resolution,
        "gen_threads": a.gen_threads, "gen_cores": cores,
        "flows": a.src_addrs as u64 * a.src_ports as u64,
        "netem_loss_percent": a.netem_loss,
        "espgw_dataplane": bins.as_ref().map(|b| b.dataplane.display().to_string()),
        "espgw_control": bins.as_ref().map(|b| b.control.display().to_string()),
        "frame_bytes": "Ethernet header to payload end, no FCS (veth has none)",
    });

    let bar = ProgressBar::new((duts.len() * a.sizes.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |bar: &ProgressBar, line: String| {
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut results: Vec<DutResult> = Vec::new();
    for kind in duts {
        let t0 = Instant::now();
        bar.set_message(format!("{}: setting up", kind.name()));
        // N workers are fed by N generator threads (a veth has no RSS: a frame arrives
        // on the queue it was sent on).
        let threads = match kind {
            DutKind::EspgwEspgw(_, n) if n > 1 => n.max(a.gen_threads),
            _ => a.gen_threads,
        };
        let cores = cores_for(threads);
        let dsetup = Setup {
            netem_loss: if kind == DutKind::Wire {
                None
            } else {
                setup.netem_loss
            },
            gen_threads: threads,
            ..setup.clone()
        };
        let prefix = espgw_lab::Lab::unique_prefix("p2544");
        let running = match dut::start(kind, &dsetup, &prefix) {
            Ok(r) => r,
            Err(e) => {
                say(&bar, format!("{}: set-up failed: {e}", kind.name()));
                bar.inc(a.sizes.len() as u64);
                results.push(DutResult {
                    kind,
                    label: kind.name(),
                    counter: String::new(),
                    sizes: Vec::new(),
                    error: Some(e),
                    setup_secs: t0.elapsed().as_secs_f64(),
                });
                continue;
            }
        };
        let setup_secs = t0.elapsed().as_secs_f64();
        let dst = Ipv4Addr::new(10, 1, 2, 2);
        let flows = FlowSpec {
            src_mac: running.src_mac,
            dst_mac: running.dst_mac,
            src_ip: Ipv4Addr::new(10, 1, 1, 2),
            src_count: a.src_addrs.max(1),
            dst_ip: dst,
            sport: 40000,
            sport_count: a.src_ports.max(1),
            dport: 40001,
        };
        let queues: Vec<u32> = (0..threads).collect();
        let bench = Generator::start(&running.tx, &queues, &cores, flows)
            .and_then(|g| Receiver::start(&running.rx, dst).map(|r| (g, r)));
        let (gen, rx) = match bench {
            Ok(x) => x,
            Err(e) => {
                say(&bar, format!("{}: generator/receiver: {e}", running.label));
                bar.inc(a.sizes.len() as u64);
                results.push(DutResult {
                    kind,
                    label: running.label.clone(),
                    counter: running.counter.label(),
                    sizes: Vec::new(),
                    error: Some(e),
                    setup_secs,
                });
                continue;
            }
        };
        let mut bench = Bench::new(gen, rx, running.tx.clone(), running.rx.clone());
        let mut sizes = Vec::new();
        for &size in &a.sizes {
            let label = format!("{} {} B", running.label, size.label());
            let mut one = |rate: Option<f64>, burst: Option<u64>, k: search::Kind| {
                bar.set_message(format!(
                    "{label}: {} at {}",
                    k.name(),
                    match (rate, burst) {
                        (_, Some(n)) => format!("burst of {n}"),
                        (Some(r), None) => format!("{:.3} Mpps", r / 1e6),
                        (None, None) => "full speed".into(),
                    }
                ));
                let w = if burst.is_some() {
                    Duration::ZERO
                } else {
                    warmup
                };
                let o = bench.trial(rate, trial, w, size, burst, &|| running.counter.read());
                if !o.counters.ok {
                    say(
                        &bar,
                        format!("{label} {}: counters {}", k.name(), o.counters.line()),
                    );
                }
                o
            };
            let found = search::run(&opts, &mut one);
            let trafgen = if kind == DutKind::Wire && !a.no_trafgen {
                let n = match size {
                    SizeMix::Fixed(n) => n,
                    SizeMix::Imix => 64,
                };
                let conf = trafgen_conf(running.src_mac, running.dst_mac, dst, n);
                let t = run_trafgen(
                    &running.tx,
                    &running.rx,
                    &conf,
                    a.trial_secs.max(1.0),
                    cores[0],
                    &std::env::temp_dir(),
                );
                bench.forget_counters();
                Some(t)
            } else {
                None
            };
            let r = SizeResult {
                size,
                found,
                trafgen,
            };
            say(
                &bar,
                match r.found.throughput() {
                    Some(o) => format!("{label}: zero-loss {}", outcome_line(o)),
                    None => format!(
                        "{label}: no rate without loss (full speed: {})",
                        outcome_line(&r.found.trials[0].1)
                    ),
                },
            );
            bar.inc(1);
            sizes.push(r);
        }
        let counter = running.counter.label();
        let running_label = running.label.clone();
        drop(bench);
        drop(running);
        results.push(DutResult {
            kind,
            label: running_label,
            counter,
            sizes,
            error: None,
            setup_secs,
        });
    }
    bar.finish_and_clear();
    let mut meta = meta;
    meta["run_secs"] = serde_json::json!(t_run.elapsed().as_secs_f64());
    let doc = report::json(&results, meta);
    let table = report::table(&results);
    let ratios = report::ratio_text(&results);
    let curves = report::loss_curves(&results);
    let text = format!(
        "espgw-perf rfc2544: {} DUT(s), sizes {}, trial {} s (+{} s warm-up), loss tolerance {}%, run {:.0} s\n\n{table}\nratios (same run):\n{ratios}\nframe loss vs offered load:\n{curves}",
        results.len(),
        a.sizes.iter().map(SizeMix::label).collect::<Vec<_>>().join("/"),
        a.trial_secs,
        a.warmup_secs,
        a.loss_tolerance,
        t_run.elapsed().as_secs_f64(),
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{text}");
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let w = |name: &str, s: &str| {
            std::fs::write(dir.join(name), s)
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        w(
            "results.json",
            &serde_json::to_string_pretty(&doc).unwrap_or_default(),
        )?;
        w("results.txt", &text)?;
        chart::throughput(&results, &dir.join("throughput.svg"))?;
        chart::latency_cdf(&results, &dir.join("latency-cdf.svg"))?;
        if !a.json {
            println!(
                "wrote {}/{{results.json,results.txt,throughput.svg,latency-cdf.svg}}",
                dir.display()
            );
        }
    }
    Ok(())
}
