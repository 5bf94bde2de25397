//! espgw-control: the IKEv1 daemon.
//!
//! ```text
//! espgw-control --config FILE [--socket PATH] [--keylog FILE] [--interface-map IOS=LINUX,…]
//!               [--sadb PATH | --no-sadb] [--aggressive] [--debug isakmp,ipsec]
//! ```
//! Reads the IOS configuration, negotiates ISAKMP/IPsec SAs on UDP 500/4500 of the address
//! of the interface that carries the crypto map, installs IPsec SAs into the shared-memory
//! SA database, answers the `espgw` CLI on the control socket, and (opt-in) appends the
//! keys of every SA to a key log that tshark can use (format: `espgw_control::ike::keylog`).

use clap::Parser;
use espgw_control::cli::api::{
    self, ControlHandler, EspSaStatus, EspSaView, IpsecCounters, IpsecSaView, IsakmpSaState,
    IsakmpSaStatus, IsakmpSaView, Request, Response,
};
use espgw_control::config::model::{Config, InterfaceMap, IpsecMode};
use espgw_control::config::parse::load_config;
use espgw_control::driver::{Driver, DriverSink, Shared};
use espgw_control::ike::crypto::RandRng;
use espgw_control::ike::{
    self, keylog, DebugClass, DebugLine, Direction, Endpoint, Event, IpsecSa,
};
use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::sadb::{self, SaDb, SaDbWriter, SlotId};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddrV4};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{broadcast, Notify};

#[derive(Parser, Debug)]
#[command(name = "espgw-control", about = "espgw IKEv1 control plane")]
struct Args {
    /// IOS configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Control socket for the espgw CLI.
    #[arg(long, default_value = api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Append the keys of every ISAKMP and IPsec SA to FILE (mode 0600) for tshark.
    #[arg(long)]
    keylog: Option<PathBuf>,
    /// IOS interface names to Linux names: `Ethernet0/0=in0,Ethernet1/0=out0`.
    #[arg(long, default_value = "")]
    interface_map: String,
    /// Shared-memory SA database.
    #[arg(long, default_value = sadb::DEFAULT_PATH)]
    sadb: PathBuf,
    /// Do not use the SA database (negotiate only; for tests against a software peer).
    #[arg(long)]
    no_sadb: bool,
    /// Initiate in Aggressive Mode instead of Main Mode.
    #[arg(long)]
    aggressive: bool,
    /// Write the crypto ACL rules for espgw-dataplane's classifiers here (its `--policy`).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Turn debugging on at start: `isakmp`, `ipsec` or `isakmp,ipsec`.
    #[arg(long, default_value = "")]
    debug: String,
}

/// Everything the control socket and the driver share.
struct Daemon {
    shared: Shared,
    config: Config,
    debug_tx: broadcast::Sender<String>,
    sadb: Option<Mutex<SaDbWriter>>,
    /// (spi, direction) → slot in the SA database.
    slots: Mutex<HashMap<(u32, bool), SlotId>>,
    keylog: Option<Mutex<File>>,
    started: Instant,
    replay_window: u32,
    /// SAs found in the region at start (a previous espgw-control's): kept so traffic
    /// flows while we renegotiate; removed when their lifetime ends or when new SAs with
    /// the same peer are installed.
    adopted: Mutex<Vec<(SlotId, u32, std::net::Ipv4Addr)>>,
}

impl Daemon {
    fn stamp(&self) -> String {
        let s = self.started.elapsed().as_secs();
        format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    }

    fn log_debug(&self, d: &DebugLine) {
        let st = self.stamp();
        for l in d.text.lines() {
            let line = format!("{st}: {l}");
            eprintln!("{line}");
            let _ = self.debug_tx.send(line);
        }
    }

    fn keylog(&self, line: String) {
        if let Some(f) = &self.keylog {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
    }

    fn install(&self, sa: &IpsecSa) {
        let Some(db) = &self.sadb else { return };
        let Ok(t) = Transform::parse(&sa.transform.ios_name()) else {
            eprintln!(
                "espgw-control: transform {} not supported by the dataplane",
                sa.transform.ios_name()
            );
            return;
        };
        let inbound = sa.direction == Direction::Inbound;
        let me = if inbound { sa.dst } else { sa.src };
        let peer = if inbound { sa.src } else { sa.dst };
        let (lport, pport) = match (sa.encap, inbound) {
            (Some((s, d)), true) => (d, s),
            (Some((s, d)), false) => (s, d),
            (None, _) => (500, 500),
        };
        let (lp, rp) = if inbound {
            (sa.dst_proxy, sa.src_proxy)
        } else {
            (sa.src_proxy, sa.dst_proxy)
        };
        let pre = |p: ike::Proxy| sadb::Ipv4Prefix {
            addr: p.addr,
            mask: p.mask,
        };
        let (Some(enc_key), Some(auth_key)) = (
            sadb::EncKey::new(&sa.enc_key),
            sadb::AuthKey::new(&sa.auth_key),
        ) else {
            return;
        };
        let rec = sadb::SaRecord {
            spi: sa.spi,
            direction: if inbound {
                sadb::Direction::Inbound
            } else {
                sadb::Direction::Outbound
            },
            mode: if sa.transform.transport {
                sadb::Mode::Transport
            } else {
                sadb::Mode::Tunnel
            },
            local: SocketAddrV4::new(me, lport),
            peer: SocketAddrV4::new(peer, pport),
            udp_encap: sa.encap.is_some(),
            esn: false,
            proxy: sadb::ProxyIdentity {
                local: pre(lp),
                remote: pre(rp),
                protocol: lp.protocol,
                local_port: lp.port,
                remote_port: rp.port,
            },
            transform: t.code(),
            enc_key,
            auth_key,
            lifetime_secs: sa.lifetime_secs as u64,
            lifetime_kb: sa.lifetime_kb,
            replay_window: self.replay_window,
            crypto_map: sadb::MapName::new(&sa.map).unwrap_or_default(),
            crypto_map_seq: sa.seq,
            conn_id: sa.conn_id,
            created_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let mut w = db.lock().unwrap_or_else(|e| e.into_inner());
        match w.install(&rec) {
            Ok(slot) => {
                self.slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((sa.spi, inbound), slot);
            }
            Err(e) => eprintln!(
                "espgw-control: SA database install of spi {:#x} failed: {e}",
                sa.spi
            ),
        }
    }

    /// Deletes adopted SAs that `doomed` selects (checking the slot still holds that SA).
    fn retire_adopted_where(&self, doomed: impl Fn(&sadb::SaRecord) -> bool) {
        let Some(db) = &self.sadb else { return };
        let mut adopted = self.adopted.lock().unwrap_or_else(|e| e.into_inner());
        if adopted.is_empty() {
            return;
        }
        let mut w = db.lock().unwrap_or_else(|e| e.into_inner());
        let entries = w.entries();
        adopted.retain(|(slot, spi, _)| {
            let Some(e) = entries
                .iter()
                .find(|e| e.slot == *slot && e.record.spi == *spi)
            else {
                return false; // gone already
            };
            if doomed(&e.record) {
                let _ = w.delete(*slot);
                false
            } else {
                true
            }
        });
    }

    /// New SAs with `peer` replace whatever a previous run left for it.
    fn retire_adopted(&self, peer: std::net::Ipv4Addr) {
        self.retire_adopted_where(|r| *r.peer.ip() == peer);
    }

    fn uninstall(&self, spi: u32, inbound: bool) {
        let Some(db) = &self.sadb else { return };
        if let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(spi, inbound))
        {
            let _ = db.lock().unwrap_or_else(|e| e.into_inner()).delete(slot);
        }
    }

    fn counters(&self, spi: u32, inbound: bool) -> (u64, u64) {
        let Some(db) = &self.sadb else { return (0, 0) };
        let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(spi, inbound))
            .copied()
        else {
            return (0, 0);
        };
        let w = db.lock().unwrap_or_else(|e| e.into_inner());
        w.reader()
            .counters(slot)
            .map(|c| c.values())
            .map(|v| (v.packets, v.bytes))
            .unwrap_or((0, 0))
    }

    /// `show crypto ipsec sa`: ikecfg's skeletons (one block per map entry × ACL line),
    /// filled with the SAs, peers, ports and SA database counters.
    fn ipsec_views(&self) -> Vec<IpsecSaView> {
        let sas = self.shared.with(|ep, now| ep.ipsec_sas(now));
        let mut out = Vec::new();
        for mut v in IpsecSaView::skeletons(&self.config) {
            {
                let mine: Vec<_> = sas
                    .iter()
                    .filter(|s| {
                        s.map == v.map_tag
                            && s.seq == v.map_seq
                            && s.local_proxy.addr == v.local_ident.addr
                            && s.remote_proxy.addr == v.remote_ident.addr
                    })
                    .collect();
                let mut counters = IpsecCounters::default();
                let mut inbound = Vec::new();
                let mut outbound = Vec::new();
                for s in &mine {
                    let (ip, _) = self.counters(s.inbound_spi, true);
                    let (op, _) = self.counters(s.outbound_spi, false);
                    counters.decaps += ip;
                    counters.decrypt += ip;
                    counters.verify += ip;
                    counters.encaps += op;
                    counters.encrypt += op;
                    counters.digest += op;
                    let iv = match s.transform.enc {
                        ike::EspEnc::Aes(_) => 16,
                        ike::EspEnc::Des3 | ike::EspEnc::Gcm(_) => 8,
                        ike::EspEnc::Null => 0,
                    };
                    let view = |spi: u32, conn: u32| EspSaView {
                        spi,
                        transform: s.transform.ios_name(),
                        mode: if s.transform.transport {
                            IpsecMode::Transport
                        } else {
                            IpsecMode::Tunnel
                        },
                        udp_encap: s.udp_encap,
                        conn_id: conn,
                        flow_id: conn % 1000,
                        crypto_map: s.map.clone(),
                        remaining_kb: s.lifetime_kb,
                        remaining_secs: s.remaining_secs,
                        iv_size: iv,
                        replay_detection: self.replay_window > 0,
                        status: EspSaStatus::Active,
                    };
                    inbound.push(view(s.inbound_spi, s.inbound_conn_id));
                    outbound.push(view(s.outbound_spi, s.outbound_conn_id));
                }
                if let Some(last) = mine.last() {
                    v.current_peer = last.remote;
                    v.current_peer_port = last.remote_port;
                    v.current_outbound_spi = last.outbound_spi;
                }
                v.counters = counters;
                v.inbound_esp = inbound;
                v.outbound_esp = outbound;
                out.push(v);
            }
        }
        out
    }
}

impl ControlHandler for Daemon {
    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::ShowIsakmpSa => {
                let sas = self.shared.with(|ep, _| ep.isakmp_sas());
                Response::IsakmpSas {
                    sas: sas
                        .into_iter()
                        .map(|s| IsakmpSaView {
                            dst: s.dst,
                            src: s.src,
                            state: match s.state {
                                "MM_SA_SETUP" => IsakmpSaState::MmSaSetup,
                                "MM_KEY_EXCH" => IsakmpSaState::MmKeyExch,
                                "QM_IDLE" => IsakmpSaState::QmIdle,
                                "AG_NO_STATE" => IsakmpSaState::AgNoState,
                                "AG_INIT_EXCH" => IsakmpSaState::AgInitExch,
                                "AG_AUTH" => IsakmpSaState::AgAuth,
                                _ => IsakmpSaState::MmNoState,
                            },
                            conn_id: s.conn_id,
                            status: if s.status == "ACTIVE" {
                                IsakmpSaStatus::Active
                            } else {
                                IsakmpSaStatus::Inactive
                            },
                        })
                        .collect(),
                }
            }
            Request::ShowIpsecSa => Response::IpsecSas {
                sas: self.ipsec_views(),
            },
            Request::ShowCryptoMap => {
                let sas = self.shared.with(|ep, now| ep.ipsec_sas(now));
                Response::CryptoMaps {
                    maps: api::CryptoMapView::from_config(&self.config, |m, s| {
                        sas.iter()
                            .find(|x| x.map == m && x.seq == s)
                            .map(|x| x.remote)
                    }),
                }
            }
            Request::ShowIsakmpPolicy => Response::isakmp_policies(&self.config),
            Request::ShowDataplane => match &self.sadb {
                None => Response::error("% No SA database: espgw-control runs with --no-sadb"),
                Some(db) => {
                    let w = db.lock().unwrap_or_else(|e| e.into_inner());
                    let r = w.reader();
                    let g = r.global();
                    Response::DataplaneCounters {
                        counters: sadb::GlobalCounter::ALL
                            .iter()
                            .map(|c| api::DataplaneCounterView {
                                name: c.name().to_string(),
                                value: g.get(*c),
                            })
                            .collect(),
                    }
                }
            },
            Request::Debug { target } => {
                self.shared.with(|ep, _| match target {
                    api::DebugTarget::Isakmp => ep.debug_isakmp = true,
                    api::DebugTarget::Ipsec => ep.debug_ipsec = true,
                });
                Response::done(target.on_message())
            }
            Request::UndebugAll => {
                self.shared.with(|ep, _| {
                    ep.debug_isakmp = false;
                    ep.debug_ipsec = false;
                });
                Response::done(api::UNDEBUG_ALL_MESSAGE)
            }
            Request::ClearCryptoSa => {
                self.shared.with(|ep, now| ep.clear_ipsec(now));
                Response::done("")
            }
            Request::ClearCryptoIsakmp => {
                self.shared.with(|ep, now| ep.clear_isakmp(now));
                Response::done("")
            }
            Request::Initiate { map, seq } => {
                if self.shared.with(|ep, now| ep.initiate(now, &map, seq)) {
                    Response::done("")
                } else {
                    Response::error(format!("% No such crypto map entry: {map} {seq}"))
                }
            }
            Request::FollowDebug => Response::error("% follow_debug is handled by the server"),
        }
    }

    fn debug_subscribe(&self) -> broadcast::Receiver<String> {
        self.debug_tx.subscribe()
    }
}

struct Sink(Arc<Daemon>);

impl DriverSink for Sink {
    fn event(&mut self, ev: Event) {
        let d = &self.0;
        match ev {
            Event::IsakmpSaUp {
                conn_id,
                peer,
                icookie,
                enc_key,
                ..
            } => {
                eprintln!("espgw-control: ISAKMP SA {conn_id} with {peer} established");
                d.keylog(keylog::ikev1_line(&icookie, &enc_key));
            }
            Event::IsakmpSaDown { conn_id, peer } => {
                eprintln!("espgw-control: ISAKMP SA {conn_id} with {peer} deleted")
            }
            Event::IpsecSaUp { inbound, outbound } => {
                eprintln!(
                    "espgw-control: IPsec SAs with {} up: inbound spi {:#010x}, outbound spi {:#010x}",
                    inbound.src, inbound.spi, outbound.spi
                );
                d.keylog(keylog::esp_line(&inbound));
                d.keylog(keylog::esp_line(&outbound));
                d.install(&inbound);
                d.install(&outbound);
                d.retire_adopted(inbound.src);
            }
            Event::IpsecSaDown {
                inbound_spi,
                outbound_spi,
                peer,
            } => {
                eprintln!("espgw-control: IPsec SAs with {peer} deleted: inbound {inbound_spi:#010x}, outbound {outbound_spi:#010x}");
                d.uninstall(outbound_spi, false);
                d.uninstall(inbound_spi, true);
            }
            Event::NegotiationFailed { peer, reason } => {
                eprintln!("espgw-control: negotiation with {peer} failed: {reason}")
            }
        }
    }
    fn debug(&mut self, line: DebugLine) {
        let _ = line.class == DebugClass::Isakmp;
        self.0.log_debug(&line);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ifmap = match InterfaceMap::parse(&args.interface_map) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("espgw-control: --interface-map: {e}");
            return ExitCode::from(2);
        }
    };
    let parsed = match load_config(&args.config, &ifmap) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("espgw-control: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &parsed.warnings {
        eprintln!("espgw-control: warning: {w}");
    }
    let ikecfg = match ike::ios::ike_config(&parsed.config, args.aggressive) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("espgw-control: {e}");
            return ExitCode::from(2);
        }
    };
    let keylog = match &args.keylog {
        None => None,
        Some(p) => match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
        {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!("espgw-control: --keylog {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
    };
    let sadb = if args.no_sadb {
        None
    } else {
        match SaDb::open_or_create(&args.sadb, sadb::Geometry::with_capacity(4096)) {
            Ok(w) => Some(Mutex::new(w)),
            Err(e) => {
                eprintln!("espgw-control: SA database {}: {e}", args.sadb.display());
                return ExitCode::from(1);
            }
        }
    };
    if let Some(path) = &args.policy {
        // The same rules espgw-dataplane derives itself when it reads the
        // configuration (`--config`); the file serves dataplanes started without it.
        let rules = match espgw_dataplane::ios::rules_from_config(&parsed.config) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("espgw-control: crypto ACL rules for the dataplane: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = espgw_dataplane::xdp::acl::write_policy_file(path, &rules) {
            eprintln!("espgw-control: --policy {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let adopted: Vec<(SlotId, u32, std::net::Ipv4Addr)> = sadb
        .as_ref()
        .map(|w| {
            let w = w.lock().unwrap_or_else(|e| e.into_inner());
            w.entries()
                .into_iter()
                .map(|e| (e.slot, e.record.spi, *e.record.peer.ip()))
                .collect()
        })
        .unwrap_or_default();
    if !adopted.is_empty() {
        eprintln!(
            "espgw-control: adopting {} SAs left in the SA database by a previous run (kept until they expire or are replaced)",
            adopted.len()
        );
    }
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
    let local = ikecfg.local_addr;
    let mut ep = Endpoint::new(ikecfg, Box::new(RandRng(rng)));
    ep.debug_isakmp = args.debug.contains("isakmp");
    ep.debug_ipsec = args.debug.contains("ipsec");
    let shared = Shared::new(ep);
    let (debug_tx, _) = broadcast::channel(4096);
    let daemon = Arc::new(Daemon {
        shared: shared.clone(),
        replay_window: parsed.config.replay_window,
        config: parsed.config,
        debug_tx,
        sadb,
        slots: Mutex::new(HashMap::new()),
        keylog,
        started: Instant::now(),
        adopted: Mutex::new(adopted),
    });
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("espgw-control: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let driver = match Driver::bind(shared.clone(), IpAddr::V4(local)).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("espgw-control: binding UDP 500/4500 on {local}: {e}");
                return ExitCode::from(1);
            }
        };
        let listener = match api::bind(&args.socket) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("espgw-control: control socket {}: {e}", args.socket.display());
                return ExitCode::from(1);
            }
        };
        eprintln!("espgw-control: IKE on {local}:500/4500, control socket {}", args.socket.display());
        let d2 = daemon.clone();
        tokio::spawn(async move {
            let _ = api::serve_listener(listener, d2).await;
        });
        // sa_request events and kilobyte lifetimes from the SA database.
        let d3 = daemon.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                // Adopted SAs end with their lifetime.
                let now_unix = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                d3.retire_adopted_where(|r| {
                    r.lifetime_secs != 0 && r.created_at.saturating_add(r.lifetime_secs) <= now_unix
                });
                let Some(db) = &d3.sadb else { return };
                let reqs: Vec<sadb::SaRequest> = {
                    let mut w = db.lock().unwrap_or_else(|e| e.into_inner());
                    let mut v = Vec::new();
                    while let Some(r) = w.poll_sa_request(sadb::monotonic_ms()) {
                        v.push(r);
                        if v.len() > 64 {
                            break;
                        }
                    }
                    v
                };
                for r in reqs {
                    let map = r.crypto_map.as_str().to_string();
                    d3.shared.with(|ep, now| {
                        if map.is_empty() || !ep.initiate(now, &map, r.crypto_map_seq) {
                            ep.sa_request(now, r.src, r.dst);
                        }
                    });
                }
                let spis: Vec<(u32, bool)> = d3.slots.lock().unwrap_or_else(|e| e.into_inner()).keys().copied().collect();
                for (spi, inbound) in spis {
                    let (packets, bytes) = d3.counters(spi, inbound);
                    if bytes > 0 {
                        d3.shared.with(|ep, now| {
                            ep.note_usage(now, spi, bytes / 1024);
                            if inbound {
                                ep.note_inbound(now, spi, packets);
                            }
                        });
                    }
                }
            }
        });
        let stop = Arc::new(Notify::new());
        let s2 = stop.clone();
        let d4 = daemon.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
            }
            // Tell peers we are going away before the driver stops.
            d4.shared.with(|ep, now| {
                ep.clear_ipsec(now);
                ep.clear_isakmp(now);
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            s2.notify_one();
        });
        let stats = driver.run(Box::new(Sink(daemon.clone())), stop).await;
        let c = daemon.shared.with(|ep, _| ep.counters.clone());
        eprintln!("espgw-control: IKE counters (drops by reason, negotiations): {c:?}");
        eprintln!("espgw-control: exiting (rx {}, tx {}, tx errors {})", stats.rx, stats.tx, stats.tx_errors);
        ExitCode::SUCCESS
    })
}
