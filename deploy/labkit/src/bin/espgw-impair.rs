//! `espgw-impair`: the impaired R1–R2 cable of the reliability suite (see
//! `espgw_lab::impair`), run inside the wire namespace in place of its bridge.
//!
//! ```text
//! espgw-impair --a w1 --b w2 --stats FILE --loss PCT --reorder PCT --delay-ms MS
//!              --jitter-ms MS --hold-ms MS --seed N [--secs S]
//! ```
#![forbid(unsafe_code)]

use espgw_lab::impair::{run_relay, Impairment};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: espgw-impair --a IF --b IF --stats FILE --loss PCT --reorder PCT \
                     --delay-ms MS --jitter-ms MS --hold-ms MS --seed N [--secs S]";

fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let imp = match Impairment::from_args(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("espgw-impair: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let run_for = match opt(&args, "--secs").map(str::parse::<f64>) {
        None => None,
        Some(Ok(s)) if s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => {
            eprintln!("espgw-impair: --secs: a positive number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (Some(a), Some(b), Some(stats)) =
        (opt(&args, "--a"), opt(&args, "--b"), opt(&args, "--stats"))
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    eprintln!("espgw-impair: {a} <-> {b}, {}", imp.args().join(" "));
    match run_relay(a, b, &imp, std::path::Path::new(stats), run_for) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-impair: {e}");
            ExitCode::FAILURE
        }
    }
}
