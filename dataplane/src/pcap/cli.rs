//! `espgw pcap encap|decap`: run the packets of a capture through one SA offline.
//!
//! ```text
//! espgw pcap encap|decap --spi 0xHEX --transform "esp-3des esp-md5-hmac" --enc-key HEX
//!     [--auth-key HEX] --local IP --remote IP [--udp-encap] [--replay-window N] IN.pcap OUT.pcap
//! ```
//! encap turns the IPv4 packets of an Ethernet capture into tunnel-mode ESP from `--local`
//! to `--remote`; decap recovers the inner packets. One summary line goes to stdout:
//! `pcap decap: in=N out=M dropped=K no-sa=… replay=… auth=… …`. For esp-gcm, `--enc-key`
//! is key ‖ 4-byte salt. Errors name the bad flag. The logic lives in [`super`]; this file
//! is the argument parsing of the `espgw-pcap` binary, which `espgw pcap …` runs (it
//! lives here, with the ESP code, so that espgw itself needs no dataplane).

use super::{run_offline, Direction, OfflineConfig};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

#[derive(Parser, Debug)]
#[command(
    name = "espgw pcap",
    about = "Run the packets of a pcap file through one ESP SA"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// IPv4 packets in, tunnel-mode ESP out.
    Encap(PcapArgs),
    /// ESP in, inner IPv4 packets out.
    Decap(PcapArgs),
}

#[derive(Args, Debug)]
struct PcapArgs {
    /// Security parameter index, hex (0x prefix optional).
    #[arg(long, value_parser = parse_spi)]
    spi: u32,
    /// IOS transform set, e.g. "esp-3des esp-md5-hmac", "esp-aes 256 esp-sha-hmac", "esp-gcm".
    #[arg(long)]
    transform: String,
    /// Encryption key, hex (esp-gcm: key followed by the 4-byte salt).
    #[arg(long, value_parser = parse_key)]
    enc_key: Key,
    /// Integrity key, hex (not for esp-gcm).
    #[arg(long, value_parser = parse_key)]
    auth_key: Option<Key>,
    /// This gateway's outer address.
    #[arg(long)]
    local: Ipv4Addr,
    /// The peer's outer address.
    #[arg(long)]
    remote: Ipv4Addr,
    /// ESP in UDP port 4500 (RFC 3948).
    #[arg(long)]
    udp_encap: bool,
    /// Anti-replay window in packets (decap; default 64).
    #[arg(long)]
    replay_window: Option<u32>,
    /// Input capture (classic pcap, Ethernet).
    input: PathBuf,
    /// Output capture.
    output: PathBuf,
}

/// Key bytes, zeroed when dropped; never printed.
#[derive(Clone)]
struct Key(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

fn strip0x(s: &str) -> &str {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s)
}

fn parse_spi(s: &str) -> Result<u32, String> {
    let h = strip0x(s.trim());
    if h.is_empty() || h.len() > 8 {
        return Err("expected 1 to 8 hex digits, e.g. 0x1c0ffee".into());
    }
    u32::from_str_radix(h, 16).map_err(|_| "expected hex digits, e.g. 0x1c0ffee".into())
}

fn parse_key(s: &str) -> Result<Key, String> {
    let h = strip0x(s.trim());
    if !h.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", h.len()));
    }
    let mut v = Zeroizing::new(Vec::with_capacity(h.len() / 2));
    for i in (0..h.len()).step_by(2) {
        let b = h
            .get(i..i + 2)
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .ok_or("expected hex digits")?;
        v.push(b);
    }
    Ok(Key(v))
}

/// Entry point for `espgw pcap ...` (the `espgw-pcap` binary). `args` are the arguments
/// after `pcap` (a leading program name and/or `pcap` are tolerated).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut args = args;
    if args.first().is_some_and(|a| {
        let a = a.to_string_lossy();
        a.ends_with("espgw") || a.ends_with("espgw-pcap")
    }) {
        args.remove(0);
    }
    if args.first().is_some_and(|a| a == "pcap") {
        args.remove(0);
    }
    let argv = std::iter::once(OsString::from("espgw pcap")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (direction, a, verb) = match cli.cmd {
        Cmd::Encap(a) => (Direction::Encap, a, "encap"),
        Cmd::Decap(a) => (Direction::Decap, a, "decap"),
    };
    let cfg = match OfflineConfig::new(
        direction,
        a.spi,
        &a.transform,
        &a.enc_key.0,
        a.auth_key.as_ref().map(|k| &k.0[..]),
        a.local,
        a.remote,
        a.udp_encap,
        a.replay_window,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("espgw pcap {verb}: {e}");
            return ExitCode::from(2);
        }
    };
    match run_offline(&cfg, &a.input, &a.output) {
        Ok(summary) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "pcap {verb}: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("espgw pcap {verb}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_parse() {
        assert_eq!(parse_spi("0x1C0FFEE").unwrap(), 0x1c0ffee);
        assert_eq!(parse_spi("deadbeef").unwrap(), 0xdeadbeef);
        assert!(parse_spi("0x123456789").is_err());
        assert!(parse_spi("zz").is_err());
        assert_eq!(&parse_key("0x0a0B").unwrap().0[..], &[0x0a, 0x0b]);
        assert!(parse_key("abc").is_err());
        assert!(parse_key("zz").is_err());
    }

    fn try_cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("espgw pcap").chain(args.iter().copied()))
    }

    #[test]
    fn clap_errors_name_the_flag() {
        let base = [
            "encap",
            "--transform",
            "esp-gcm",
            "--enc-key",
            "00",
            "--local",
            "1.1.1.1",
            "--remote",
            "2.2.2.2",
            "in",
            "out",
        ];
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["--spi", "xyz"]);
        let e = try_cli(&a).unwrap_err().to_string();
        assert!(e.contains("--spi"), "{e}");
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["--spi", "0x1000"]);
        a[4] = "0g";
        let e = try_cli(&a).unwrap_err().to_string();
        assert!(e.contains("--enc-key"), "{e}");
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["--spi", "0x1000"]);
        a[6] = "1.1.1";
        let e = try_cli(&a).unwrap_err().to_string();
        assert!(e.contains("--local"), "{e}");
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["--spi", "0x1000"]);
        let c = try_cli(&a).unwrap();
        assert!(matches!(c.cmd, Cmd::Encap(_)));
        assert!(!format!("{c:?}").contains("00,"));
    }

    #[test]
    fn end_to_end_through_main() {
        use crate::pcap::{parse_pcap, PcapWriter};
        let dir = std::env::temp_dir().join(format!("espgw-pcap-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (inp, enc, dec) = (
            dir.join("in.pcap"),
            dir.join("esp.pcap"),
            dir.join("out.pcap"),
        );
        // One Ethernet/IPv4/UDP frame, built by hand.
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let mut ip = vec![
            0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 1, 2, 10, 1, 2, 2,
        ];
        let c = !crate::wire::checksum::fold(crate::wire::checksum::sum(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x9c, 0x40, 0x9c, 0x41, 0, 12, 0, 0, 1, 2, 3, 4]);
        let mut w = PcapWriter::new(std::fs::File::create(&inp).unwrap()).unwrap();
        w.write_packet(1, 0, &f).unwrap();
        w.into_inner().unwrap();
        let common = |verb: &str, i: &std::path::Path, o: &std::path::Path| -> Vec<OsString> {
            [
                verb,
                "--spi",
                "0x1c0ffee",
                "--transform",
                "esp-3des esp-md5-hmac",
                "--enc-key",
                "0123456789abcdef23456789abcdef01456789abcdef0123",
                "--auth-key",
                "00112233445566778899aabbccddeeff",
                "--local",
                "172.16.172.10",
                "--remote",
                "172.16.172.20",
                "--udp-encap",
            ]
            .iter()
            .map(OsString::from)
            .chain([i.as_os_str().to_owned(), o.as_os_str().to_owned()])
            .collect()
        };
        assert_eq!(main(common("encap", &inp, &enc)), ExitCode::SUCCESS);
        assert_eq!(main(common("decap", &enc, &dec)), ExitCode::SUCCESS);
        let out = parse_pcap(&std::fs::read(&dec).unwrap()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, f);
        let mut bad = common("decap", &enc, &dec);
        bad[6] = OsString::from("0011");
        assert_eq!(main(bad), ExitCode::from(2));
        let missing = common("decap", &dir.join("nope.pcap"), &dec);
        assert_eq!(main(missing), ExitCode::FAILURE);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
