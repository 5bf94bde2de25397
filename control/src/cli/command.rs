//! The `espgw` command line: clap definitions and what each command does. The binary
//! (`src/bin/espgw.rs`) only calls [`main_with`]; tests drive it the same way against a
//! test daemon on a real Unix socket.
//!
//! ```text
//! espgw [--socket PATH] show crypto isakmp sa | show crypto ipsec sa | show crypto map
//!                       | show crypto isakmp policy | show crypto dataplane
//!                       | show crypto isakmp peers | show crypto isakmp default policy
//!                       | show crypto ipsec sa peer A | map NAME | detail
//!                       | show crypto ipsec transform-set | show crypto session [detail]
//!                       | show crypto engine connections active
//! espgw debug crypto isakmp|ipsec [--follow]      (--follow: like `terminal monitor`)
//! espgw terminal monitor                          (follow debug output until Ctrl-C)
//! espgw undebug all
//! espgw clear crypto sa [peer A | map NAME] | clear crypto isakmp
//! espgw clear crypto session [remote A]
//! espgw initiate MAP SEQ
//! espgw configure FILE                            (replace the configuration in force)
//! espgw show running-config                       (the configuration in force, keys masked)
//! espgw check-config FILE [--interface-map IOS=LINUX,...] [--show]
//! espgw crypto key generate rsa … | crypto pki import …   (offline: the key store, cli::pki)
//! espgw show crypto pki certificates | show crypto key mypubkey rsa   (offline, too)
//! espgw pcap ...
//! ```
//! Words may be abbreviated as on IOS when unambiguous: `espgw sh cry isa sa`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::api::{self, Client, DebugTarget, Request, Response};
use super::show;
use crate::config::{check_config, InterfaceMap};
use crate::pki::KeyStore;

#[derive(Parser, Debug)]
#[command(
    name = "espgw",
    version,
    about = "espgw operator CLI (IOS-style show/debug/clear)"
)]
#[command(infer_subcommands = true)]
pub struct Cli {
    /// Control socket of espgw-control.
    #[arg(long, global = true, default_value = api::DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// Key store directory (RSA keys, imported certificates and CRLs).
    #[arg(long, global = true, default_value = crate::pki::store::DEFAULT_DIR, value_name = "DIR")]
    pub key_store: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum Command {
    /// show crypto isakmp sa | isakmp policy | ipsec sa | map
    Show {
        #[command(subcommand)]
        crypto: ShowCrypto,
    },
    /// debug crypto isakmp | ipsec
    Debug {
        #[command(subcommand)]
        crypto: DebugCrypto,
    },
    /// undebug all
    Undebug {
        #[command(subcommand)]
        what: UndebugWhat,
    },
    /// terminal monitor: follow debug output until Ctrl-C
    Terminal {
        #[command(subcommand)]
        what: TerminalWhat,
    },
    /// clear crypto sa | isakmp
    Clear {
        #[command(subcommand)]
        crypto: ClearCrypto,
    },
    /// Start negotiation for a crypto map entry, as interesting traffic would.
    Initiate {
        /// Crypto map name.
        map: String,
        /// Sequence number of the entry.
        seq: u32,
    },
    /// Replace the daemon's configuration with FILE (errors: nothing changes).
    Configure { file: PathBuf },
    /// Parse a configuration offline and print its warnings and errors with line numbers.
    CheckConfig {
        file: PathBuf,
        /// IOS-to-Linux interface names, e.g. Ethernet0/0=in0,Ethernet1/0=out0.
        #[arg(long, value_name = "IOS=LINUX,...")]
        interface_map: Option<String>,
        /// Also print `show crypto map` and `show crypto isakmp policy` for the file.
        #[arg(long)]
        show: bool,
    },
    /// crypto key generate rsa [general-keys] label L modulus N | crypto pki import TP pem FILE...
    Crypto {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Offline ESP capture tools (see `espgw pcap --help`).
    #[command(disable_help_flag = true)]
    Pcap {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ShowCrypto {
    Crypto {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// show logging: logging settings, counters and the buffered log
    Logging,
    /// show running-config: the configuration in force (secrets masked)
    RunningConfig,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ShowWhat {
    /// show crypto isakmp sa | policy
    Isakmp {
        #[command(subcommand)]
        what: IsakmpWhat,
    },
    /// show crypto ipsec sa
    Ipsec {
        #[command(subcommand)]
        what: IpsecWhat,
    },
    /// show crypto map
    Map,
    /// show crypto dataplane: the data plane's drop and sa_request counters (espgw's own)
    Dataplane,
    /// show crypto session [detail]: the remote-access clients (group, user, assigned
    /// address); with detail, every peer's session and its packet counts
    Session {
        #[command(subcommand)]
        what: Option<SessionWhat>,
    },
    /// show crypto engine connections active
    Engine {
        #[command(subcommand)]
        what: EngineWhat,
    },
    /// show crypto pki certificates (offline: the key store, and FILE's chains)
    Pki {
        #[command(subcommand)]
        what: PkiWhat,
    },
    /// show crypto key mypubkey rsa (offline: the key store)
    Key {
        #[command(subcommand)]
        what: KeyWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum PkiWhat {
    Certificates {
        /// Also the `crypto pki certificate chain` blocks of this configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum KeyWhat {
    Mypubkey {
        #[command(subcommand)]
        what: MypubkeyWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum MypubkeyWhat {
    Rsa,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum IsakmpWhat {
    Sa,
    Policy,
    /// show crypto isakmp peers
    Peers,
    /// show crypto isakmp default policy
    Default {
        #[command(subcommand)]
        what: DefaultWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum DefaultWhat {
    Policy,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum SessionWhat {
    Detail,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum EngineWhat {
    Connections {
        #[command(subcommand)]
        what: ConnectionsWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ConnectionsWhat {
    Active,
}

/// show crypto ipsec sa peer A | map NAME | detail
#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum SaFilter {
    Peer { addr: std::net::Ipv4Addr },
    Map { name: String },
    Detail,
}

/// clear crypto sa peer A | map NAME
#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ClearSaFilter {
    Peer { addr: std::net::Ipv4Addr },
    Map { name: String },
}

/// clear crypto session remote A
#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ClearSessionWhat {
    Remote { addr: std::net::Ipv4Addr },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum IpsecWhat {
    Sa {
        #[command(subcommand)]
        filter: Option<SaFilter>,
    },
    /// show crypto ipsec transform-set
    TransformSet,
    /// `show crypto ipsec client ezvpn`
    Client {
        #[command(subcommand)]
        what: IpsecClientWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum IpsecClientWhat {
    Ezvpn,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum DebugCrypto {
    Crypto {
        #[command(subcommand)]
        what: DebugWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum DebugWhat {
    Isakmp {
        /// Keep printing debug lines until Ctrl-C (like `terminal monitor`).
        #[arg(short, long)]
        follow: bool,
    },
    Ipsec {
        #[arg(short, long)]
        follow: bool,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum UndebugWhat {
    All,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum TerminalWhat {
    Monitor,
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ClearCrypto {
    Crypto {
        #[command(subcommand)]
        what: ClearWhat,
    },
}

#[derive(Subcommand, Debug)]
#[command(infer_subcommands = true)]
pub enum ClearWhat {
    /// clear crypto sa [peer A | map NAME]
    Sa {
        #[command(subcommand)]
        filter: Option<ClearSaFilter>,
    },
    Isakmp,
    /// clear crypto session [remote A]: disconnect every remote-access client, or every
    /// SA with peer A
    Session {
        #[command(subcommand)]
        what: Option<ClearSessionWhat>,
    },
}

/// Where output goes (stdout and stderr of the process, or buffers in tests).
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// Run `espgw` with these arguments (the first is the program name). `pcap` is what
/// `espgw pcap …` delegates to.
pub fn main_with(
    args: impl IntoIterator<Item = OsString>,
    io: &mut Io<'_>,
    pcap: fn(Vec<OsString>) -> ExitCode,
) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().to_string();
            let code = e.exit_code();
            if e.use_stderr() {
                let _ = io.err.write_all(text.as_bytes());
            } else {
                let _ = io.out.write_all(text.as_bytes());
            }
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    let (request, follow) = match cli.command {
        Command::CheckConfig {
            file,
            interface_map,
            show,
        } => return check_config_cmd(&file, interface_map.as_deref(), show, io),
        Command::Pcap { args } => return pcap(args),
        Command::Configure { file } => match std::fs::read(&file) {
            Ok(bytes) => (
                Request::Configure {
                    name: file.display().to_string(),
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                },
                false,
            ),
            Err(e) => {
                let _ = writeln!(io.err, "espgw: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        Command::Show {
            crypto: ShowCrypto::RunningConfig,
        } => (Request::ShowRunningConfig, false),
        // `crypto ipsec client ezvpn connect NAME` (IOS exec) goes to the daemon.
        Command::Crypto { words }
            if words.len() == 5
                && words[..4]
                    .iter()
                    .zip(["ipsec", "client", "ezvpn", "connect"])
                    .all(|(w, k)| w.eq_ignore_ascii_case(k)) =>
        {
            (
                Request::EzvpnConnect {
                    name: words[4].clone(),
                },
                false,
            )
        }
        Command::Crypto { words } => {
            return super::pki::crypto_cmd(&KeyStore::new(&cli.key_store), &words, io)
        }
        Command::Show {
            crypto: ShowCrypto::Logging,
        } => (Request::ShowLogging, false),
        Command::Show {
            crypto: ShowCrypto::Crypto { what },
        } => (
            match what {
                ShowWhat::Isakmp {
                    what: IsakmpWhat::Sa,
                } => Request::ShowIsakmpSa,
                ShowWhat::Isakmp {
                    what: IsakmpWhat::Policy,
                } => Request::ShowIsakmpPolicy,
                ShowWhat::Isakmp {
                    what: IsakmpWhat::Peers,
                } => Request::ShowIsakmpPeers,
                ShowWhat::Isakmp {
                    what: IsakmpWhat::Default { .. },
                } => Request::ShowIsakmpDefaultPolicy,
                ShowWhat::Ipsec {
                    what: IpsecWhat::Sa { filter: None },
                } => Request::ShowIpsecSa,
                ShowWhat::Ipsec {
                    what: IpsecWhat::Client { .. },
                } => Request::ShowEzvpn,
                ShowWhat::Ipsec {
                    what:
                        IpsecWhat::Sa {
                            filter: Some(filter),
                        },
                } => Request::ShowIpsecSaFiltered {
                    filter: match filter {
                        SaFilter::Peer { addr } => api::IpsecSaFilter {
                            peer: Some(addr),
                            ..Default::default()
                        },
                        SaFilter::Map { name } => api::IpsecSaFilter {
                            map: Some(name),
                            ..Default::default()
                        },
                        SaFilter::Detail => api::IpsecSaFilter {
                            detail: true,
                            ..Default::default()
                        },
                    },
                },
                ShowWhat::Ipsec {
                    what: IpsecWhat::TransformSet,
                } => Request::ShowTransformSets,
                ShowWhat::Engine { .. } => Request::ShowEngineConnections,
                ShowWhat::Map => Request::ShowCryptoMap,
                ShowWhat::Dataplane => Request::ShowDataplane,
                ShowWhat::Session { what: None } => Request::ShowCryptoSession,
                ShowWhat::Session {
                    what: Some(SessionWhat::Detail),
                } => Request::ShowCryptoSessionDetail,
                ShowWhat::Pki {
                    what: PkiWhat::Certificates { config },
                } => {
                    let store = KeyStore::new(&cli.key_store);
                    return super::pki::show_certificates(&store, config.as_deref(), io);
                }
                ShowWhat::Key { .. } => {
                    return super::pki::show_mypubkey(&KeyStore::new(&cli.key_store), io)
                }
            },
            false,
        ),
        Command::Debug {
            crypto: DebugCrypto::Crypto { what },
        } => match what {
            DebugWhat::Isakmp { follow } => (
                Request::Debug {
                    target: DebugTarget::Isakmp,
                },
                follow,
            ),
            DebugWhat::Ipsec { follow } => (
                Request::Debug {
                    target: DebugTarget::Ipsec,
                },
                follow,
            ),
        },
        Command::Undebug {
            what: UndebugWhat::All,
        } => (Request::UndebugAll, false),
        Command::Terminal {
            what: TerminalWhat::Monitor,
        } => (Request::FollowDebug, true),
        Command::Clear {
            crypto: ClearCrypto::Crypto { what },
        } => (
            match what {
                ClearWhat::Sa { filter: None } => Request::ClearCryptoSa,
                ClearWhat::Sa {
                    filter: Some(ClearSaFilter::Peer { addr }),
                } => Request::ClearCryptoSaPeer { peer: addr },
                ClearWhat::Sa {
                    filter: Some(ClearSaFilter::Map { name }),
                } => Request::ClearCryptoSaMap { map: name },
                ClearWhat::Isakmp => Request::ClearCryptoIsakmp,
                ClearWhat::Session { what: None } => Request::ClearCryptoSession,
                ClearWhat::Session {
                    what: Some(ClearSessionWhat::Remote { addr }),
                } => Request::ClearCryptoSessionRemote { peer: addr },
            },
            false,
        ),
        Command::Initiate { map, seq } => (Request::Initiate { map, seq }, false),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(io.err, "espgw: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(&cli.socket, request, follow, io))
}

/// Send one request, print the answer; then follow debug output if asked, until Ctrl-C or
/// until the daemon ends the stream.
async fn run(socket: &Path, request: Request, follow: bool, io: &mut Io<'_>) -> ExitCode {
    let mut client = match Client::connect(socket).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io.err, "espgw: {e}");
            return ExitCode::FAILURE;
        }
    };
    if request != Request::FollowDebug {
        match client.request(&request).await {
            Ok(resp) => {
                if !print_response(&resp, io) {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                let _ = writeln!(io.err, "espgw: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if !follow {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = client.follow_debug().await {
        let _ = writeln!(io.err, "espgw: {e}");
        return ExitCode::FAILURE;
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
            r = client.recv() => match r {
                Ok(resp) => {
                    if !print_response(&resp, io) {
                        return ExitCode::FAILURE;
                    }
                }
                Err(api::ClientError::Closed) => {
                    let _ = writeln!(io.err, "espgw: daemon closed the debug stream");
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    let _ = writeln!(io.err, "espgw: {e}");
                    return ExitCode::FAILURE;
                }
            },
        }
    }
}

/// Print a response the IOS way; false if it was an error.
fn print_response(resp: &Response, io: &mut Io<'_>) -> bool {
    match show::render(resp) {
        Ok(text) => {
            // A closed pipe (`espgw show … | head`) is not an error worth reporting.
            let _ = io
                .out
                .write_all(text.as_bytes())
                .and_then(|_| io.out.flush());
            true
        }
        Err(text) => {
            let _ = io.err.write_all(text.as_bytes());
            false
        }
    }
}

/// `espgw check-config FILE`: offline. Prints `FILE:LINE: warning|error: …` in line order
/// and a summary; exit status 1 if the file has errors, 2 for a bad `--interface-map`.
pub fn check_config_cmd(
    file: &Path,
    interface_map: Option<&str>,
    show_screens: bool,
    io: &mut Io<'_>,
) -> ExitCode {
    let ifmap = match interface_map.map(InterfaceMap::parse).transpose() {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            let _ = writeln!(io.err, "espgw: --interface-map: {e}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(io.err, "espgw: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let report = check_config(&text, &ifmap);
    let name = file.display();
    let mut lines: Vec<(usize, String)> = report
        .warnings
        .iter()
        .map(|w| {
            let at = if w.line == 0 {
                String::new()
            } else {
                format!("{}:", w.line)
            };
            (w.line, format!("{name}:{at} warning: {}", w.message))
        })
        .chain(
            report
                .errors
                .iter()
                .map(|e| (e.line, format!("{name}:{}: error: {}", e.line, e.kind))),
        )
        .collect();
    lines.sort_by_key(|(l, _)| *l);
    for (_, l) in &lines {
        let _ = writeln!(io.out, "{l}");
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        io.out,
        "{name}: {} error{}, {} warning{}",
        report.errors.len(),
        plural(report.errors.len()),
        report.warnings.len(),
        plural(report.warnings.len()),
    );
    if show_screens && report.errors.is_empty() {
        let cfg = &report.config;
        let host = cfg.hostname.as_deref().unwrap_or("Router");
        let maps = api::CryptoMapView::from_config(cfg, |_, _| None);
        let _ = writeln!(io.out, "\n{host}#show crypto map");
        let _ = io.out.write_all(show::crypto_map(&maps).as_bytes());
        let _ = writeln!(io.out, "\n{host}#show crypto isakmp policy");
        if let Ok(t) = show::render(&Response::isakmp_policies(cfg)) {
            let _ = io.out.write_all(t.as_bytes());
        }
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
