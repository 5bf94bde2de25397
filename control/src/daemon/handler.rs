//! The daemon's answers to the `espgw` CLI (`show`, `debug`, `clear`, initiate).

use tokio::sync::broadcast;

use super::Daemon;
use crate::cli::api::{
    self, ControlHandler, EspSaStatus, EspSaView, IpsecCounters, IpsecSaView, IsakmpSaState,
    IsakmpSaStatus, IsakmpSaView, Request, Response,
};
use crate::config::model::IpsecMode;
use crate::ike;

impl Daemon {
    /// `show crypto ipsec sa`: ikecfg's skeletons (one block per map entry × ACL line),
    /// filled with the SAs, peers, ports and SA database counters.
    pub(super) fn ipsec_views(&self) -> Vec<IpsecSaView> {
        let sas = self.shared.with(|ep, now| ep.ipsec_sas(now));
        let mut out = Vec::new();
        let mut skeletons = IpsecSaView::skeletons(&self.config());
        let clients = client_skeletons(&skeletons, &sas);
        skeletons.extend(clients);
        for mut v in skeletons {
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
                let inb = self.sa.values(s.inbound_spi, true);
                let outb = self.sa.values(s.outbound_spi, false);
                let (ip, op) = (inb.packets, outb.packets);
                counters.recv_errors += inb.drops_total();
                counters.send_errors += outb.drops_total();
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
                    replay_detection: self.sa.replay_window() > 0,
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
        out
    }
}

impl Daemon {
    /// `show crypto session`: the clients with their IPsec flows.
    fn crypto_sessions(&self) -> Vec<api::CryptoSessionView> {
        let (clients, sas, local) = self.shared.with(|ep, now| {
            (
                ep.client_sessions(),
                ep.ipsec_sas(now),
                ep.config().local_addr,
            )
        });
        clients
            .into_iter()
            .map(|c| {
                let peer = match c.peer.ip() {
                    std::net::IpAddr::V4(a) => a,
                    std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
                };
                let mine: Vec<&ike::IpsecSaInfo> = sas
                    .iter()
                    // Its /32, or (network extension: its own inside network) any SA
                    // with its address and port, so clients behind one NAT stay apart.
                    .filter(|s| {
                        s.remote == peer
                            && (Some(s.remote_proxy.addr) == c.assigned
                                || s.remote_port == c.peer.port())
                    })
                    .collect();
                let mut flows: Vec<(
                    crate::config::model::ProxyId,
                    crate::config::model::ProxyId,
                    u32,
                )> = Vec::new();
                for s in &mine {
                    match flows
                        .iter_mut()
                        .find(|f| f.0 == s.local_proxy && f.1 == s.remote_proxy)
                    {
                        Some(f) => f.2 += 2,
                        None => flows.push((s.local_proxy, s.remote_proxy, 2)),
                    }
                }
                api::CryptoSessionView {
                    interface: mine
                        .first()
                        .map(|s| s.interface.clone())
                        .unwrap_or_default(),
                    username: c.user,
                    group: c.group,
                    assigned: c.assigned,
                    status: c.state.to_string(),
                    peer,
                    peer_port: mine.first().map(|s| s.remote_port).unwrap_or(c.peer.port()),
                    local,
                    conn_id: c.conn_id,
                    flows,
                }
            })
            .collect()
    }
}

/// One block per SA pair no static entry covers: a dynamic crypto map's client (IOS
/// prints these with empty flags, not `origin_is_acl`).
fn client_skeletons(statics: &[IpsecSaView], sas: &[ike::IpsecSaInfo]) -> Vec<IpsecSaView> {
    let mut out: Vec<IpsecSaView> = Vec::new();
    for s in sas {
        let covered = |v: &IpsecSaView| {
            v.map_tag == s.map
                && v.map_seq == s.seq
                && v.local_ident.addr == s.local_proxy.addr
                && v.remote_ident.addr == s.remote_proxy.addr
        };
        if statics.iter().any(covered) || out.iter().any(covered) {
            continue;
        }
        out.push(IpsecSaView {
            interface: s.interface.clone(),
            map_tag: s.map.clone(),
            map_seq: s.seq,
            local_addr: s.local,
            local_ident: s.local_proxy,
            remote_ident: s.remote_proxy,
            current_peer: s.remote,
            current_peer_port: s.remote_port,
            flags: Vec::new(),
            counters: IpsecCounters::default(),
            path_mtu: 1500,
            ip_mtu: 1500,
            ip_mtu_idb: s.interface.clone(),
            current_outbound_spi: 0,
            inbound_esp: Vec::new(),
            outbound_esp: Vec::new(),
        });
    }
    out
}

fn isakmp_state(name: &str) -> IsakmpSaState {
    match name {
        "MM_SA_SETUP" => IsakmpSaState::MmSaSetup,
        "MM_KEY_EXCH" => IsakmpSaState::MmKeyExch,
        "QM_IDLE" => IsakmpSaState::QmIdle,
        "AG_NO_STATE" => IsakmpSaState::AgNoState,
        "AG_INIT_EXCH" => IsakmpSaState::AgInitExch,
        "AG_AUTH" => IsakmpSaState::AgAuth,
        _ => IsakmpSaState::MmNoState,
    }
}

impl ControlHandler for Daemon {
    async fn handle(&self, request: Request) -> Response {
        if let Some(r) = self.operator_request(&request) {
            return r;
        }
        match request {
            Request::ShowIsakmpSa => {
                let sas = self.shared.with(|ep, _| ep.isakmp_sas());
                Response::IsakmpSas {
                    sas: sas
                        .into_iter()
                        .map(|s| IsakmpSaView {
                            dst: s.dst,
                            src: s.src,
                            state: isakmp_state(s.state),
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
                    maps: api::CryptoMapView::from_config(&self.config(), |m, s| {
                        sas.iter()
                            .find(|x| x.map == m && x.seq == s)
                            .map(|x| x.remote)
                    }),
                }
            }
            Request::ShowIsakmpPolicy => Response::isakmp_policies(&self.config()),
            Request::ShowDataplane => match self.sa.global_counters() {
                None => Response::error("% No SA database: espgw-control runs with --no-sadb"),
                Some(counters) => Response::DataplaneCounters {
                    counters: counters
                        .into_iter()
                        .map(|(name, value)| api::DataplaneCounterView {
                            name: name.to_string(),
                            value,
                        })
                        .collect(),
                },
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
            Request::ShowCryptoSession => Response::CryptoSessions {
                sessions: self.crypto_sessions(),
            },
            Request::ClearCryptoSession => {
                self.shared.with(|ep, now| ep.clear_crypto_session(now));
                Response::done("")
            }
            Request::ShowEzvpn => Response::Ezvpn {
                tunnels: self.shared.with(|ep, _| {
                    ep.ezvpn_status()
                        .iter()
                        .map(crate::cli::ezvpn::EzvpnView::from_status)
                        .collect()
                }),
            },
            Request::EzvpnConnect { name } => {
                if self.shared.with(|ep, now| ep.ezvpn_connect(now, &name)) {
                    Response::done("")
                } else {
                    Response::error(format!("% No such ezvpn tunnel: {name}"))
                }
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
            Request::ShowRunningConfig => match self.config_text() {
                Some(text) => Response::RunningConfig {
                    lines: crate::cli::show::running::running_lines(&text),
                },
                None => Response::error("% The configuration text is not known to this daemon"),
            },
            Request::Configure { name, text } => match self.reconfigure(&text, true) {
                Ok(msg) => {
                    eprintln!("espgw-control: {name}: {}", msg.replace('\n', "; "));
                    Response::done(msg)
                }
                Err(e) => {
                    let lines: Vec<String> = e
                        .to_string()
                        .lines()
                        .map(|l| format!("% {name}: {l}"))
                        .collect();
                    Response::error(lines.join("\n"))
                }
            },
            Request::FollowDebug => Response::error("% follow_debug is handled by the server"),
            _ => Response::error("% request not handled"),
        }
    }

    fn debug_subscribe(&self) -> broadcast::Receiver<String> {
        self.debug_tx.subscribe()
    }
}
