//! `espgw-seqflow`: both ends of the reliability suite's UDP stream with sequence numbers
//! (see `espgw_lab::seqflow`), run inside a lab namespace.
//!
//! ```text
//! espgw-seqflow echo --port P --report FILE [--idle-exit SECS] [--max SECS] [--no-echo]
//! espgw-seqflow send --to IP:PORT --pps N --secs S --report FILE [--size BYTES] [--flow ID] [--linger SECS]
//! ```
#![forbid(unsafe_code)]

use espgw_lab::seqflow::{run_receiver, run_sender, SendSpec};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: espgw-seqflow echo --port P --report FILE [--idle-exit SECS] [--max SECS] [--no-echo]\n       \
         espgw-seqflow send --to IP:PORT --pps N --secs S --report FILE [--size BYTES] [--flow ID] [--linger SECS]"
    );
    ExitCode::from(2)
}

/// The value after `--name`, if given.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn secs(args: &[String], name: &str, default: f64) -> Option<Duration> {
    match opt(args, name) {
        None => Some(Duration::from_secs_f64(default)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| *s >= 0.0)
            .map(Duration::from_secs_f64),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(report) = opt(&args, "--report").map(PathBuf::from) else {
        return usage();
    };
    let r = match args.first().map(String::as_str) {
        Some("echo") => {
            let (Some(port), Some(idle), Some(max)) = (
                opt(&args, "--port").and_then(|p| p.parse().ok()),
                secs(&args, "--idle-exit", 3.0),
                secs(&args, "--max", 600.0),
            ) else {
                return usage();
            };
            let echo = !args.iter().any(|a| a == "--no-echo");
            run_receiver(port, idle, max, &report, echo)
        }
        Some("send") => {
            let parsed = (
                opt(&args, "--to").and_then(|v| v.parse().ok()),
                opt(&args, "--pps").and_then(|v| v.parse().ok()),
                secs(&args, "--secs", 10.0),
                opt(&args, "--size").map_or(Some(200), |v| v.parse().ok()),
                opt(&args, "--flow").map_or(Some(1), |v| v.parse().ok()),
                secs(&args, "--linger", 1.0),
            );
            let (Some(to), Some(pps), Some(duration), Some(size), Some(flow), Some(linger)) =
                parsed
            else {
                return usage();
            };
            let spec = SendSpec {
                to,
                flow,
                pps,
                duration,
                size,
                linger,
            };
            run_sender(&spec, &report)
        }
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-seqflow: {e}");
            ExitCode::FAILURE
        }
    }
}
