//! The CLI and the control socket end to end: a test daemon (a `ControlHandler` over the
//! slides' configuration) served on a real Unix socket, driven by `Client` and by the
//! `espgw` command line itself.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use super::api::*;
use super::command::{main_with, Io};
use crate::config::model::{Config, InterfaceMap, ProxyId};
use crate::config::parse_config;
use crate::config::slides::SLIDES_R1;
use crate::config::slides::SLIDES_R2;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "espgw-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn sock(&self) -> PathBuf {
        // The parent `run` does not exist yet: bind must create it.
        self.0.join("run").join("control.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the real daemon does, over a fixed configuration, recording what it was asked.
struct TestDaemon {
    cfg: Config,
    requests: Mutex<Vec<Request>>,
    /// Dropped (set to None) once the debug lines are out, which ends every follower.
    debug_tx: Arc<Mutex<Option<broadcast::Sender<String>>>>,
}

impl TestDaemon {
    fn new() -> Arc<Self> {
        let cfg = parse_config(SLIDES_R1, &InterfaceMap::parse("Ethernet1/0=out0").unwrap())
            .unwrap()
            .config;
        let (tx, _) = broadcast::channel(64);
        Arc::new(TestDaemon {
            cfg,
            requests: Mutex::new(Vec::new()),
            debug_tx: Arc::new(Mutex::new(Some(tx))),
        })
    }
}

fn isakmp_row() -> IsakmpSaView {
    IsakmpSaView {
        dst: Ipv4Addr::new(172, 16, 172, 20),
        src: Ipv4Addr::new(172, 16, 172, 10),
        state: IsakmpSaState::QmIdle,
        conn_id: 1001,
        status: IsakmpSaStatus::Active,
    }
}

fn ipsec_view(cfg: &Config) -> IpsecSaView {
    IpsecSaView::skeletons(cfg).remove(0)
}

/// The debug lines the test daemon emits after `debug crypto isakmp`.
const DEBUG_LINES: [&str; 3] = [
    "ISAKMP (0:1): beginning Main Mode exchange",
    "ISAKMP (0:1): sending packet to 172.16.172.20 (I) MM_NO_STATE",
    "Old State = IKE_I_MM1 New State = IKE_I_MM2",
];

impl ControlHandler for TestDaemon {
    async fn handle(&self, request: Request) -> Response {
        self.requests.lock().unwrap().push(request.clone());
        match request {
            Request::ShowIsakmpSa => Response::IsakmpSas {
                sas: vec![isakmp_row()],
            },
            Request::ShowIpsecSa => Response::IpsecSas {
                sas: vec![ipsec_view(&self.cfg)],
            },
            Request::ShowCryptoMap => Response::CryptoMaps {
                maps: CryptoMapView::from_config(&self.cfg, |_, _| None),
            },
            Request::ShowIsakmpPolicy => Response::isakmp_policies(&self.cfg),
            Request::ShowDataplane => Response::DataplaneCounters {
                counters: vec![
                    DataplaneCounterView {
                        name: "no-sa".into(),
                        value: 3,
                    },
                    DataplaneCounterView {
                        name: "sa-request-posted".into(),
                        value: 1,
                    },
                ],
            },
            Request::Debug { target } => {
                // Emit debug lines once someone follows, then end the stream.
                let slot = Arc::clone(&self.debug_tx);
                let tx = slot.lock().unwrap().clone();
                if let Some(tx) = tx {
                    tokio::spawn(async move {
                        while tx.receiver_count() == 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        for l in DEBUG_LINES {
                            let _ = tx.send(l.to_string());
                        }
                        slot.lock().unwrap().take();
                    });
                }
                Response::done(target.on_message())
            }
            Request::UndebugAll => Response::done(UNDEBUG_ALL_MESSAGE),
            Request::ClearCryptoSa | Request::ClearCryptoIsakmp | Request::ClearCryptoSession => {
                Response::done("")
            }
            Request::ShowCryptoSession => Response::CryptoSessions { sessions: vec![] },
            Request::ShowEzvpn => Response::Ezvpn { tunnels: vec![] },
            Request::EzvpnConnect { name } => {
                Response::error(format!("% No such ezvpn tunnel: {name}"))
            }
            Request::Initiate { map, seq } => match self.cfg.map_entry(&map, seq) {
                Some(_) => Response::done(""),
                None => Response::error(format!("% No such crypto map entry: {map} {seq}")),
            },
            Request::FollowDebug => Response::error("% FollowDebug reached the handler"),
            Request::ShowIsakmpPeers => Response::IsakmpPeers {
                peers: vec![IsakmpPeerView {
                    peer: Ipv4Addr::new(172, 16, 172, 20),
                    port: 500,
                    local: Ipv4Addr::new(172, 16, 172, 10),
                    phase1_id: "172.16.172.20".into(),
                }],
            },
            Request::ShowTransformSets => Response::TransformSets {
                sets: TransformSetView::from_config(&self.cfg),
            },
            Request::ShowLogging => Response::Logging {
                view: LoggingView::default(),
            },
            Request::ClearCryptoSaMap { map } if map != "vpn" => {
                Response::error(format!("% Crypto map {map} not found"))
            }
            Request::ShowIpsecSaFiltered { .. }
            | Request::ShowIsakmpDefaultPolicy
            | Request::ShowEngineConnections
            | Request::ShowCryptoSessionDetail
            | Request::ClearCryptoSessionRemote { .. }
            | Request::ClearCryptoSaPeer { .. }
            | Request::ClearCryptoSaMap { .. } => Response::done(""),
            Request::ShowRunningConfig => Response::RunningConfig {
                lines: crate::cli::show::running::running_lines(SLIDES_R1),
            },
            Request::Configure { name, text } => {
                match crate::config::check_config(&text, &InterfaceMap::default())
                    .errors
                    .first()
                {
                    Some(e) => Response::error(format!("% {name}: {e}")),
                    None => Response::done("configuration applied"),
                }
            }
        }
    }

    fn debug_subscribe(&self) -> broadcast::Receiver<String> {
        match &*self.debug_tx.lock().unwrap() {
            Some(tx) => tx.subscribe(),
            // Debug output is over: a receiver whose channel is already closed.
            None => broadcast::channel(1).1,
        }
    }
}

/// Run the test daemon on its own thread and runtime (the CLI builds its own runtime, which
/// cannot nest inside a test's).
struct Daemon {
    handler: Arc<TestDaemon>,
    _rt_thread: std::thread::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Daemon {
    fn start(sock: &Path) -> Daemon {
        let handler = TestDaemon::new();
        let h = Arc::clone(&handler);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sock = sock.to_path_buf();
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = bind(&sock).unwrap();
                ready_tx.send(()).unwrap();
                tokio::select! {
                    r = serve_listener(listener, h) => r.unwrap(),
                    _ = stop_rx => {}
                }
            });
        });
        ready_rx.recv().unwrap();
        Daemon {
            handler,
            _rt_thread: t,
            stop: Some(stop_tx),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn no_pcap(_: Vec<OsString>) -> ExitCode {
    ExitCode::from(42)
}

/// Run `espgw ARGS` in-process; (exit code, stdout, stderr).
pub(super) fn espgw(sock: &Path, args: &[&str]) -> (ExitCode, String, String) {
    let mut argv: Vec<OsString> = vec!["espgw".into(), "--socket".into(), sock.into()];
    argv.extend(args.iter().map(OsString::from));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(
        argv,
        &mut Io {
            out: &mut out,
            err: &mut err,
        },
        no_pcap,
    );
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn socket_is_private_and_stale_socket_is_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let sock = dir.sock();
    {
        let _d = Daemon::start(&sock);
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(sock.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        // A second daemon must not steal a live socket.
        let err = bind(&sock).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
    // The daemon is gone, its socket file stays: a new daemon replaces it.
    std::thread::sleep(Duration::from_millis(50));
    assert!(sock.exists());
    let _d = Daemon::start(&sock);
    let (code, out, _) = espgw(&sock, &["show", "crypto", "isakmp", "sa"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.contains("QM_IDLE"));
}

#[test]
fn bind_refuses_a_regular_file() {
    let dir = TempDir::new("file");
    let p = dir.0.join("notasocket");
    std::fs::write(&p, b"x").unwrap();
    assert_eq!(
        bind(&p).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    assert!(p.exists(), "must not delete a file that is not a socket");
}

#[test]
fn cli_show_commands_print_ios_screens() {
    let dir = TempDir::new("show");
    let sock = dir.sock();
    let d = Daemon::start(&sock);

    let (code, out, err) = espgw(&sock, &["show", "crypto", "map"]);
    assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""));
    assert_eq!(out, include_str!("golden/crypto_map.txt"));

    // IOS-style abbreviations.
    let (code, out, _) = espgw(&sock, &["sh", "cry", "isa", "sa"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out, include_str!("golden/isakmp_sa.txt"));

    let (_, out, _) = espgw(&sock, &["show", "crypto", "isakmp", "policy"]);
    assert!(out.starts_with("Global IKE policy\nProtection suite of priority 1\n"));
    assert!(out.contains("        hash algorithm:         Secure Hash Standard\n"));

    let (_, out, _) = espgw(&sock, &["show", "crypto", "ipsec", "sa"]);
    assert!(out.starts_with(
        "interface: Ethernet1/0\n    Crypto map tag: vpn, local addr 172.16.172.10\n"
    ));
    assert!(out.contains("   local  ident (addr/mask/prot/port): (10.1.1.0/255.255.255.0/0/0)\n"));
    assert!(out.contains("   current_peer 172.16.172.20 port 500\n"));

    let (code, out, _) = espgw(&sock, &["sh", "cry", "data"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        out,
        "Data plane counters (packets; since the SA database was created):\n    \
         no-sa                                          3\n    \
         sa-request-posted                              1\n"
    );

    let (code, out, _) = espgw(&sock, &["clear", "crypto", "sa"]);
    assert_eq!((code, out.as_str()), (ExitCode::SUCCESS, ""));
    let (code, _, _) = espgw(&sock, &["clear", "crypto", "isakmp"]);
    assert_eq!(code, ExitCode::SUCCESS);
    let (_, out, _) = espgw(&sock, &["undebug", "all"]);
    assert_eq!(out, "All possible debugging has been turned off\n");

    let (code, _, _) = espgw(&sock, &["initiate", "vpn", "10"]);
    assert_eq!(code, ExitCode::SUCCESS);
    let (code, out, err) = espgw(&sock, &["initiate", "vpn", "20"]);
    assert_eq!((code, out.as_str()), (ExitCode::FAILURE, ""));
    assert_eq!(err, "% No such crypto map entry: vpn 20\n");

    let got = d.handler.requests.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            Request::ShowCryptoMap,
            Request::ShowIsakmpSa,
            Request::ShowIsakmpPolicy,
            Request::ShowIpsecSa,
            Request::ShowDataplane,
            Request::ClearCryptoSa,
            Request::ClearCryptoIsakmp,
            Request::UndebugAll,
            Request::Initiate {
                map: "vpn".into(),
                seq: 10
            },
            Request::Initiate {
                map: "vpn".into(),
                seq: 20
            },
        ]
    );
}

#[test]
fn cli_debug_follow_prints_debug_lines_until_stream_ends() {
    let dir = TempDir::new("debug");
    let sock = dir.sock();
    let d = Daemon::start(&sock);
    let (code, out, err) = espgw(&sock, &["debug", "crypto", "isakmp", "--follow"]);
    assert_eq!(code, ExitCode::SUCCESS, "stderr: {err}");
    let mut want = String::from("Crypto ISAKMP debugging is on\n");
    for l in DEBUG_LINES {
        want.push_str(l);
        want.push('\n');
    }
    assert_eq!(out, want);
    assert_eq!(err, "espgw: daemon closed the debug stream\n");
    assert_eq!(
        d.handler.requests.lock().unwrap().as_slice(),
        [Request::Debug {
            target: DebugTarget::Isakmp
        }]
    );
}

#[test]
fn cli_errors_without_daemon_and_usage_errors() {
    let dir = TempDir::new("nodaemon");
    let (code, out, err) = espgw(&dir.sock(), &["show", "crypto", "map"]);
    assert_eq!((code, out.as_str()), (ExitCode::FAILURE, ""));
    assert!(err.starts_with("espgw: cannot connect to "), "{err}");
    assert!(err.contains("is espgw-control running?"));

    let (code, _, err) = espgw(&dir.sock(), &["show", "crypto", "bogus"]);
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("bogus"), "{err}");
    // `espgw pcap …` is delegated, arguments untouched.
    let (code, _, _) = espgw(&dir.sock(), &["pcap", "--help", "-r", "x.pcap"]);
    assert_eq!(code, ExitCode::from(42));
}

#[test]
fn check_config_reports_lines() {
    let dir = TempDir::new("check");
    let f = dir.0.join("r.conf");
    std::fs::write(
        &f,
        "hostname R9\ncrypto isakmp policy 1\n encr blowfish\n authentication pre-share\nline vty 0 4\ncrypto map vpn 10\n set transform-set nope\n",
    )
    .unwrap();
    let (code, out, _) = espgw(&dir.sock(), &["check-config", f.to_str().unwrap()]);
    assert_eq!(code, ExitCode::FAILURE);
    let name = f.display().to_string();
    let lines: Vec<String> = out.lines().map(|l| l.replace(&name, "F")).collect();
    assert_eq!(
        lines,
        vec![
            r#"F:3: error: encr: expected des|3des|aes [128|192|256], got "blowfish""#,
            "F:5: warning: skipped (not used by espgw): line vty 0 4",
            "F:6: warning: crypto map vpn 10 stays disabled until it has set peer, match address",
            "F:6: warning: crypto map vpn 10: crypto map vpn is not applied to any interface",
            r#"F:7: error: set transform-set: transform set "nope" is not defined"#,
            "F: 2 errors, 3 warnings",
        ]
    );

    std::fs::write(&f, SLIDES_R1).unwrap();
    let (code, out, _) = espgw(
        &dir.sock(),
        &[
            "check-config",
            f.to_str().unwrap(),
            "--interface-map",
            "Ethernet0/0=in0,Ethernet1/0=out0",
            "--show",
        ],
    );
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.starts_with(&format!(
        "{name}: 0 errors, 0 warnings\n\nRouter#show crypto map\n"
    )));
    assert!(out.contains(include_str!("golden/crypto_map.txt")));

    let (code, _, err) = espgw(
        &dir.sock(),
        &[
            "check-config",
            f.to_str().unwrap(),
            "--interface-map",
            "Ethernet0/0",
        ],
    );
    assert_eq!(code, ExitCode::from(2));
    assert!(err.contains("expected IOS=LINUX"), "{err}");
}

#[tokio::test]
async fn client_protocol_details() {
    let dir = TempDir::new("proto");
    let sock = dir.sock();
    let handler = TestDaemon::new();
    let listener = bind(&sock).unwrap();
    let server = tokio::spawn(serve_listener(listener, Arc::clone(&handler)));

    // Several requests on one connection, answered in order.
    let mut c = Client::connect(&sock).await.unwrap();
    c.send(&Request::ShowIsakmpSa).await.unwrap();
    c.send(&Request::UndebugAll).await.unwrap();
    assert!(
        matches!(c.recv().await.unwrap(), Response::IsakmpSas { sas } if sas == vec![isakmp_row()])
    );
    assert_eq!(c.recv().await.unwrap(), Response::done(UNDEBUG_ALL_MESSAGE));

    // A line that is not a request gets an error response, and the connection lives on.
    let mut raw = tokio::net::UnixStream::connect(&sock).await.unwrap();
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    raw.write_all(b"{\"request\":\"reboot\"}\n\n{\"request\":\"show_crypto_map\"}\n")
        .await
        .unwrap();
    let mut lines = tokio::io::BufReader::new(raw).lines();
    let first: Response = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(
        matches!(first, Response::Error { ref message } if message.starts_with("% bad request"))
    );
    let second: Response =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(matches!(second, Response::CryptoMaps { .. }));

    // Following debug output; hanging up ends the server's follower.
    let tx = handler.debug_tx.lock().unwrap().clone().unwrap();
    let mut f = Client::connect(&sock).await.unwrap();
    f.follow_debug().await.unwrap();
    for _ in 0..200 {
        if tx.receiver_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(tx.receiver_count(), 1);
    tx.send("ISAKMP: local port 500, remote port 500".into())
        .unwrap();
    assert_eq!(
        f.recv().await.unwrap(),
        Response::DebugLine {
            line: "ISAKMP: local port 500, remote port 500".into()
        }
    );
    drop(f);
    for _ in 0..200 {
        if tx.receiver_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        tx.receiver_count(),
        0,
        "follower must end when the client hangs up"
    );
    server.abort();
}

#[test]
fn views_round_trip_through_json() {
    let cfg = TestDaemon::new().cfg.clone();
    for r in [
        Response::IsakmpSas {
            sas: vec![isakmp_row()],
        },
        Response::IpsecSas {
            sas: vec![ipsec_view(&cfg)],
        },
        Response::CryptoMaps {
            maps: CryptoMapView::from_config(&cfg, |_, _| None),
        },
        Response::isakmp_policies(&cfg),
        Response::DebugLine { line: "x".into() },
    ] {
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
    }
    let id = ProxyId {
        addr: Ipv4Addr::new(10, 1, 1, 0),
        mask: Ipv4Addr::new(255, 255, 255, 0),
        protocol: 0,
        port: 0,
    };
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#"{"addr":"10.1.1.0","mask":"255.255.255.0","protocol":0,"port":0}"#
    );
}

#[test]
fn ipsec_skeletons_follow_the_configuration() {
    let cfg = TestDaemon::new().cfg.clone();
    let v = IpsecSaView::skeletons(&cfg);
    assert_eq!(v.len(), 1);
    let v = &v[0];
    assert_eq!(
        (v.interface.as_str(), v.map_tag.as_str(), v.map_seq),
        ("Ethernet1/0", "vpn", 10)
    );
    assert_eq!(v.local_addr, Ipv4Addr::new(172, 16, 172, 10));
    assert_eq!(v.current_peer, Ipv4Addr::new(172, 16, 172, 20));
    assert_eq!(
        v.local_ident.to_string(),
        "10.1.1.0/255.255.255.0/0/0 (type=4)"
    );
    assert_eq!(
        v.remote_ident.to_string(),
        "10.1.2.0/255.255.255.0/0/0 (type=4)"
    );
    let r2 = parse_config(SLIDES_R2, &InterfaceMap::default())
        .unwrap()
        .config;
    let v2 = IpsecSaView::skeletons(&r2);
    assert_eq!(v2[0].local_ident.addr, Ipv4Addr::new(10, 1, 2, 0));
    assert_eq!(v2[0].current_peer, Ipv4Addr::new(172, 16, 172, 10));
    // A map applied to no interface has no block, as on IOS.
    let lone = parse_config(
        "crypto ipsec transform-set t esp-3des esp-md5-hmac\ncrypto map m 1\n set peer 1.1.1.1\n set transform-set t\n match address 101\naccess-list 101 permit ip any any\n",
        &InterfaceMap::default(),
    )
    .unwrap()
    .config;
    assert!(IpsecSaView::skeletons(&lone).is_empty());
}

#[test]
fn cli_operator_commands_send_their_requests() {
    let dir = TempDir::new("operator");
    let sock = dir.sock();
    let d = Daemon::start(&sock);
    let ok = |args: &[&str]| {
        let (code, out, err) = espgw(&sock, args);
        assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""), "{args:?}");
        out
    };
    assert_eq!(
        ok(&["show", "crypto", "isakmp", "peers"]),
        include_str!("golden/isakmp_peers.txt")
    );
    assert_eq!(
        ok(&["sh", "cry", "ipsec", "transform-set"]),
        "Transform set myset: { esp-3des esp-md5-hmac  }\n   will negotiate = { Tunnel,  },\n\n"
    );
    ok(&["show", "crypto", "ipsec", "sa", "peer", "172.16.172.20"]);
    ok(&["show", "crypto", "ipsec", "sa", "map", "vpn"]);
    ok(&["show", "crypto", "ipsec", "sa", "detail"]);
    ok(&["show", "crypto", "isakmp", "default", "policy"]);
    ok(&["sh", "cry", "eng", "conn", "act"]);
    ok(&["show", "crypto", "session", "detail"]);
    ok(&["clear", "crypto", "session", "remote", "172.16.172.20"]);
    ok(&["clear", "crypto", "sa", "peer", "172.16.172.20"]);
    ok(&["clear", "crypto", "sa", "map", "vpn"]);
    ok(&["clear", "crypto", "session"]);
    let (code, _, err) = espgw(&sock, &["clear", "crypto", "sa", "map", "nosuch"]);
    assert_eq!(
        (code, err.as_str()),
        (ExitCode::FAILURE, "% Crypto map nosuch not found\n")
    );
    // Not an address: clap refuses it before anything is sent.
    let (code, _, _) = espgw(&sock, &["clear", "crypto", "sa", "peer", "bogus"]);
    assert_ne!(code, ExitCode::SUCCESS);
    // `isakmp p` is ambiguous (peers, policy), as on IOS.
    let (code, _, _) = espgw(&sock, &["sh", "cry", "isa", "p"]);
    assert_ne!(code, ExitCode::SUCCESS);

    let peer = Ipv4Addr::new(172, 16, 172, 20);
    let filter = |peer, map: Option<&str>, detail| IpsecSaFilter {
        peer,
        map: map.map(str::to_string),
        detail,
    };
    assert_eq!(
        d.handler.requests.lock().unwrap().clone(),
        vec![
            Request::ShowIsakmpPeers,
            Request::ShowTransformSets,
            Request::ShowIpsecSaFiltered {
                filter: filter(Some(peer), None, false)
            },
            Request::ShowIpsecSaFiltered {
                filter: filter(None, Some("vpn"), false)
            },
            Request::ShowIpsecSaFiltered {
                filter: filter(None, None, true)
            },
            Request::ShowIsakmpDefaultPolicy,
            Request::ShowEngineConnections,
            Request::ShowCryptoSessionDetail,
            Request::ClearCryptoSessionRemote { peer },
            Request::ClearCryptoSaPeer { peer },
            Request::ClearCryptoSaMap { map: "vpn".into() },
            Request::ClearCryptoSession,
            Request::ClearCryptoSaMap {
                map: "nosuch".into()
            },
        ]
    );
}

#[test]
fn cli_show_logging_sends_its_request_and_renders_the_screen() {
    let dir = TempDir::new("logging");
    let sock = dir.sock();
    let d = Daemon::start(&sock);
    for args in [&["show", "logging"][..], &["sh", "log"]] {
        let (code, out, err) = espgw(&sock, args);
        assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""), "{args:?}");
        assert!(
            out.starts_with("Syslog logging: enabled (0 messages dropped"),
            "{out}"
        );
        assert!(out.contains("    Buffer logging:  disabled\n"), "{out}");
    }
    assert_eq!(
        d.handler.requests.lock().unwrap().clone(),
        vec![Request::ShowLogging, Request::ShowLogging]
    );
}

#[test]
fn show_running_config_masks_the_key() {
    let dir = TempDir::new("running");
    let sock = dir.sock();
    let d = Daemon::start(&sock);
    let (code, out, err) = espgw(&sock, &["show", "running-config"]);
    assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""));
    assert_eq!(out, include_str!("golden/running_config.txt"));
    assert!(SLIDES_R1.contains("C!scO") && !out.contains("C!scO"));
    let (code, out, _) = espgw(&sock, &["sh", "run"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.contains("crypto isakmp key ***** address 172.16.172.20\n"),
        "{out}"
    );
    drop(d);
}

#[test]
fn configure_sends_the_file_and_prints_the_error_with_its_line() {
    let dir = TempDir::new("configure");
    let sock = dir.sock();
    let d = Daemon::start(&sock);
    let bad = dir.0.join("bad.conf");
    std::fs::write(&bad, "crypto isakmp policy 1\n encr 3des\n group 99\n").unwrap();
    let (code, out, err) = espgw(&sock, &["configure", bad.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (ExitCode::FAILURE, ""));
    assert!(err.contains("bad.conf: line 3: group"), "{err}");
    let good = dir.0.join("good.conf");
    std::fs::write(&good, SLIDES_R1).unwrap();
    let (code, out, _) = espgw(&sock, &["configure", good.to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str()),
        (ExitCode::SUCCESS, "configuration applied\n")
    );
    let (code, _, err) = espgw(&sock, &["configure", "/nonexistent/x.conf"]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(err.contains("/nonexistent/x.conf"), "{err}");
    drop(d);
}
