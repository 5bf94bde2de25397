//! `espgw-flood`: the reliability suite's flooder (see `espgw_lab::flood`), run inside a
//! lab namespace (it needs a raw socket).
//!
//! ```text
//! espgw-flood --to IP --pps N --secs S --report FILE [--seed N]
//! ```
#![forbid(unsafe_code)]

use espgw_lab::flood::{run_flood, FloodSpec};
use std::process::ExitCode;
use std::time::Duration;

fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (
        opt(&args, "--to").and_then(|v| v.parse().ok()),
        opt(&args, "--pps").and_then(|v| v.parse().ok()),
        opt(&args, "--secs")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s >= 0.0),
        opt(&args, "--report"),
        opt(&args, "--seed").map_or(Some(std::process::id() as u64), |v| v.parse().ok()),
    );
    let (Some(target), Some(pps), Some(secs), Some(report), Some(seed)) = parsed else {
        eprintln!("usage: espgw-flood --to IP --pps N --secs S --report FILE [--seed N]");
        return ExitCode::from(2);
    };
    let spec = FloodSpec {
        target,
        pps,
        duration: Duration::from_secs_f64(secs),
    };
    match run_flood(&spec, seed, std::path::Path::new(report)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-flood: {e}");
            ExitCode::FAILURE
        }
    }
}
