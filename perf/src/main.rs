//! espgw-perf: crypto benchmarks of the ESP batch path against OpenSSL.
//!
//! `crypto` and `primitives`: bytes of inner packets per CPU-second of the benchmark
//! thread (one core); cycles per byte use the nominal clock from /proc/cpuinfo.
//! `scale`: one SA on N pinned cores, wall clock (see scale.rs).
#![forbid(unsafe_code)]

mod clock;
mod esp_bench;
#[cfg(feature = "openssl")]
mod openssl_ref;
#[cfg(feature = "openssl")]
mod primitives;
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
