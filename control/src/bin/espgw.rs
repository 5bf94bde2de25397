//! `espgw`: the operator CLI. Talks to `espgw-control` over its control socket and prints
//! what IOS prints; `check-config` and `pcap` work offline. See `espgw_control::cli::command`.

use std::process::ExitCode;

use espgw_control::cli::command::{main_with, Io};

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    main_with(
        std::env::args_os(),
        &mut Io {
            out: &mut out,
            err: &mut err,
        },
        espgw_control::cli::pcap::main,
    )
}
