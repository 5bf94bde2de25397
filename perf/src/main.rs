//! espgw-perf: crypto benchmarks of the ESP batch path against OpenSSL.

mod clock;
mod primitives;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "espgw-perf", about = "espgw benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Raw batch primitives (3DES-CBC, HMAC-MD5) vs OpenSSL.
    Primitives {
        #[arg(long, default_value_t = 1400)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 1.0)]
        secs: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Primitives { size, batch, secs } => {
            primitives::run(size, batch, Duration::from_secs_f64(secs))
        }
    }
}
