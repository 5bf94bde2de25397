//! espgw-perf: crypto benchmarks of the ESP batch path against OpenSSL.
//!
//! `crypto` and `primitives`: bytes of inner packets per CPU-second of the benchmark
//! thread (one core); cycles per byte use the nominal clock from /proc/cpuinfo.
//! `scale`: one SA on N pinned cores, wall clock (see scale.rs).
#![forbid(unsafe_code)]

mod classify;
mod clock;
mod dut;
mod esp_bench;
mod gen;
mod ikeload;
#[cfg(feature = "openssl")]
mod openssl_ref;
#[cfg(feature = "openssl")]
mod primitives;
mod rfc2544;
mod scale;

#[cfg(feature = "openssl")]
use std::time::Duration;

use clap::{Parser, Subcommand};
use espgw_dataplane::crypto::transform::Transform;

#[derive(Parser)]
#[command(name = "espgw-perf", about = "espgw benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Classifier (XDP, its Rust model, the old walk) and SA lookup cost per packet at N
    /// crypto map entries, as ratios to the first N (see classify.rs). XDP needs root.
    Classify {
        /// Entry counts to measure, comma separated (the first is the baseline).
        #[arg(long, value_delimiter = ',', default_value = "10,10000")]
        entries: Vec<usize>,
        /// Distinct packets per measurement.
        #[arg(long, default_value_t = 4096)]
        packets: usize,
        /// BPF_PROG_TEST_RUN repetitions per frame (64 frames).
        #[arg(long, default_value_t = 100_000)]
        repeat: u32,
        /// Walk the whole list only up to this many entries.
        #[arg(long, default_value_t = 20_000)]
        walk_max: usize,
    },
    /// ESP encapsulation/decapsulation through the batch path vs OpenSSL's same crypto.
    Crypto(esp_bench::CliOpts),
    /// One SA pair on N pinned cores: aggregate throughput and scaling vs N=1.
    Scale {
        /// IOS transform set, e.g. "esp-3des esp-md5-hmac".
        #[arg(long, default_value = "esp-3des esp-md5-hmac")]
        transform: String,
        /// Inner IPv4 packet size in bytes.
        #[arg(long, default_value_t = 1400)]
        size: usize,
        /// Packets per batch call.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Thread counts to measure, comma separated (include 1: it is the baseline).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        threads: Vec<usize>,
        /// Seconds of measurement per point.
        #[arg(long, default_value_t = 1.0)]
        secs: f64,
        #[arg(long, value_enum, default_value = "both")]
        dir: scale::Dir,
        /// Core ids to pin threads 0, 1, … to, comma separated (default: allowed cores in order).
        #[arg(long, value_delimiter = ',')]
        cores: Option<Vec<usize>>,
        /// Inbound replay window (default 8 x threads x batch, at least 1024).
        #[arg(long)]
        window: Option<u32>,
        /// Memory cap for the pre-encapsulated inbound packets, MiB.
        #[arg(long, default_value_t = 4096)]
        pool_mb: usize,
        /// One JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
        /// Also append the JSON document as one line to this file.
        #[arg(long)]
        json_out: Option<std::path::PathBuf>,
    },
    /// Generator + receiver on AF_XDP: one trial (a veth pair of its own unless told
    /// where to send), optionally beside trafgen.
    Gen(gen::cmd::GenArgs),
    /// The kernel's pktgen as the generator (real NICs; detects its absence).
    Pktgen(gen::pktgen::PktgenArgs),
    /// RFC 2544 throughput, latency, loss and back-to-back for every DUT and frame size.
    Rfc2544(rfc2544::Args),
    /// N Easy VPN clients (AM PSK + XAUTH + Mode Config + QM) from one process against one
    /// server: setup rate, per-client addresses and SPIs (see ikeload/).
    EzvpnLoad(ikeload::LoadArgs),
    /// Raw batch primitives (3DES-CBC, HMAC-MD5) vs OpenSSL, every dispatch level.
    Primitives {
        #[arg(long, default_value_t = 1400)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 1.0)]
        secs: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Pktgen(a) => {
            if let Err(e) = gen::pktgen::run(&a) {
                eprintln!("espgw-perf pktgen: {e}");
                std::process::exit(3);
            }
        }
        Cmd::EzvpnLoad(a) => {
            if let Err(e) = ikeload::run(&a) {
                eprintln!("espgw-perf ezvpn-load: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Rfc2544(a) => {
            if let Err(e) = rfc2544::run(&a) {
                eprintln!("espgw-perf rfc2544: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Gen(a) => {
            if let Err(e) = gen::cmd::run(&a) {
                eprintln!("espgw-perf gen: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Classify {
            entries,
            packets,
            repeat,
            walk_max,
        } => {
            if entries.is_empty() || entries.contains(&0) || packets == 0 {
                eprintln!("espgw-perf: --entries and --packets must be positive");
                std::process::exit(2);
            }
            classify::run(&classify::Opts {
                entries,
                packets,
                repeat,
                walk_max,
            });
        }
        Cmd::Scale {
            transform,
            size,
            batch,
            threads,
            secs,
            dir,
            cores,
            window,
            pool_mb,
            json,
            json_out,
        } => {
            let transform = match Transform::parse(&transform) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("espgw-perf: --transform: {e}");
                    std::process::exit(2);
                }
            };
            if batch == 0
                || size < 20
                || threads.contains(&0)
                || secs <= 0.0
                || cores.as_ref().is_some_and(|c| c.is_empty())
            {
                eprintln!(
                    "espgw-perf: --batch, --threads and --secs must be positive, --size >= 20"
                );
                std::process::exit(2);
            }
            scale::run(&scale::Opts {
                transform,
                size,
                batch,
                threads,
                secs,
                dir,
                json,
                json_out,
                pool_mb,
                cores,
                window,
            });
        }
        #[cfg(not(feature = "openssl"))]
        Cmd::Primitives { .. } | Cmd::Crypto(_) => {
            eprintln!("espgw-perf: built without the `openssl` feature: `crypto` and `primitives` need OpenSSL");
            std::process::exit(2);
        }
        #[cfg(feature = "openssl")]
        Cmd::Primitives { size, batch, secs } => {
            primitives::run(size, batch, Duration::from_secs_f64(secs))
        }
        #[cfg(feature = "openssl")]
        Cmd::Crypto(o) => esp_bench::run_cli(&o),
    }
}
