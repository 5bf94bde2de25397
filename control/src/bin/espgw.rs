//! `espgw`: the operator CLI. Talks to `espgw-control` over its control socket and prints
//! what IOS prints; `check-config` and `pcap` work offline. See `espgw_control::cli::command`.
#![forbid(unsafe_code)]

use std::ffi::OsString;
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
        pcap_main,
    )
}

/// `espgw pcap …` runs espgw-dataplane's `espgw-pcap` from this binary's directory.
fn pcap_main(args: Vec<OsString>) -> ExitCode {
    espgw_control::cli::pcap::main(args)
}
