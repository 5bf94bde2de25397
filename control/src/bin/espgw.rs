//! espgw operator CLI. (Minimal dispatch from the esp branch; the ikecfg engineer owns
//! this file and the full CLI.)

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first() {
        Some(a) if a == "pcap" => espgw_control::cli::pcap::main(args[1..].to_vec()),
        _ => {
            eprintln!("usage: espgw pcap encap|decap ... (see espgw pcap --help)");
            ExitCode::from(2)
        }
    }
}
