//! espgw-pcap: run the packets of a capture through one ESP SA, offline.
//!
//! ```text
//! espgw-pcap encap|decap --spi 0xHEX --transform "esp-3des esp-md5-hmac" --enc-key HEX
//!     [--auth-key HEX] --local IP --remote IP [--udp-encap] [--replay-window N] IN.pcap OUT.pcap
//! ```
//! The operator runs it as `espgw pcap …`: espgw executes this binary from its own
//! directory. Arguments: `espgw_dataplane::pcap::cli`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    espgw_dataplane::pcap::cli::main(std::env::args_os().collect())
}
