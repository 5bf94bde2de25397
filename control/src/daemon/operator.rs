//! The daemon's answers to the operator screens and clears of issue 16: `show crypto
//! ipsec sa peer|map|detail`, `show crypto isakmp peers`, `show crypto isakmp default
//! policy`, `show crypto engine connections active`, `show crypto ipsec transform-set`,
//! `show crypto session detail`, `clear crypto session remote A`, `clear crypto sa peer
//! A` and `clear crypto sa map NAME`.

use std::net::Ipv4Addr;

use espgw_sadb::{DropReason, SaCounterValues};

use super::Daemon;
use crate::cli::api::{
    EngineConnectionKind, EngineConnectionView, IpsecErrorCounters, IpsecSaFilter, IsakmpPeerView,
    Request, Response, SessionDetailView, SessionFlowView, SessionIkeView, TransformSetView,
};
use crate::cli::show;
use crate::config::model::IsakmpPolicy;
use crate::ike;
use crate::ike::endpoint::{ipsec_algorithm, Phase1Info};

/// What `show crypto ipsec sa detail` counts, from the data plane's drops of the SAs of
/// one block: each drop reason lands in exactly one IOS counter.
pub fn error_counters(inbound: &SaCounterValues, outbound: &SaCounterValues) -> IpsecErrorCounters {
    use DropReason as D;
    let mut e = IpsecErrorCounters::default();
    for r in DropReason::ALL {
        let (i, o) = (inbound.drop_count(r), outbound.drop_count(r));
        match r {
            D::NoSa => {
                e.invalid_sa_rcv += i;
                e.no_sa_send += o;
            }
            D::NotEsp => {
                e.invalid_prot_rcv += i;
                e.encaps_failed_send += o;
            }
            D::Auth => {
                e.verify_failed += i;
                e.encaps_failed_send += o;
            }
            D::PolicyMismatch => {
                e.invalid_identity_rcv += i;
                e.encaps_failed_send += o;
            }
            D::Truncated => {
                e.invalid_len_rcv += i;
                e.encaps_failed_send += o;
            }
            D::Replay | D::OutOfWindow => {
                e.replay_failed_rcv += i;
                e.encaps_failed_send += o;
            }
            D::SeqExhausted => {
                e.replay_rollover_rcv += i;
                e.replay_rollover_send += o;
            }
            D::Other => {
                e.internal_err_rcv += i;
                e.internal_err_send += o;
            }
            _ => {
                e.decaps_failed_rcv += i;
                e.encaps_failed_send += o;
            }
        }
    }
    e
}

impl Daemon {
    /// The requests of this module; None for any other.
    pub(super) fn operator_request(&self, request: &Request) -> Option<Response> {
        Some(match request {
            Request::ShowIpsecSaFiltered { filter } => self.ipsec_filtered(filter),
            Request::ShowIsakmpPeers => Response::IsakmpPeers {
                peers: self.isakmp_peers(),
            },
            Request::ShowIsakmpDefaultPolicy => Response::DefaultIsakmpPolicy {
                policies: vec![IsakmpPolicy::default_suite()],
            },
            Request::ShowEngineConnections => Response::EngineConnections {
                connections: self.engine_connections(),
            },
            Request::ShowLogging => Response::Logging {
                view: self.logging_view(),
            },
            Request::ShowTransformSets => Response::TransformSets {
                sets: TransformSetView::from_config(&self.config()),
            },
            Request::ShowCryptoSessionDetail => Response::CryptoSessionsDetail {
                sessions: self.sessions_detail(),
            },
            Request::ClearCryptoSessionRemote { peer } => {
                self.shared
                    .with(|ep, now| ep.clear_session_remote(now, *peer));
                Response::done("")
            }
            Request::ClearCryptoSaPeer { peer } => {
                self.shared.with(|ep, now| ep.clear_ipsec_peer(now, *peer));
                Response::done("")
            }
            Request::ClearCryptoSaMap { map } => {
                if !self.config().crypto_maps.contains_key(map.as_str()) {
                    return Some(Response::error(format!("% Crypto map {map} not found")));
                }
                self.shared.with(|ep, now| ep.clear_ipsec_map(now, map));
                Response::done("")
            }
            _ => return None,
        })
    }

    fn ipsec_filtered(&self, filter: &IpsecSaFilter) -> Response {
        let views: Vec<_> = self
            .ipsec_views()
            .into_iter()
            .filter(|v| show::select_blocks(filter, v))
            .collect();
        if !filter.detail {
            return Response::IpsecSas { sas: views };
        }
        let sas = views
            .into_iter()
            .map(|v| {
                let mut e = IpsecErrorCounters::default();
                for (i, o) in v.inbound_esp.iter().zip(&v.outbound_esp) {
                    let add =
                        error_counters(&self.sa.values(i.spi, true), &self.sa.values(o.spi, false));
                    e = sum(e, add);
                }
                (v, e)
            })
            .collect();
        Response::IpsecSasDetail { sas }
    }

    fn isakmp_peers(&self) -> Vec<IsakmpPeerView> {
        let infos = self.shared.with(|ep, now| ep.phase1_infos(now));
        let mut out: Vec<IsakmpPeerView> = Vec::new();
        for i in infos {
            if out
                .iter()
                .any(|p| p.peer == i.peer && p.port == i.peer_port)
            {
                continue;
            }
            out.push(IsakmpPeerView {
                peer: i.peer,
                port: i.peer_port,
                local: i.local,
                phase1_id: i.phase1_id,
            });
        }
        out
    }

    fn engine_connections(&self) -> Vec<EngineConnectionView> {
        let (p1, sas) = self
            .shared
            .with(|ep, now| (ep.phase1_infos(now), ep.ipsec_sas(now)));
        let mut out = Vec::new();
        for s in &sas {
            let alg = ipsec_algorithm(&s.transform);
            let inb = self.sa.values(s.inbound_spi, true);
            let outb = self.sa.values(s.outbound_spi, false);
            out.push(EngineConnectionView {
                id: s.inbound_conn_id,
                kind: EngineConnectionKind::Ipsec,
                algorithm: alg.clone(),
                encrypt: 0,
                decrypt: inb.packets,
                last_seq: inb.inbound_top,
                ip: s.local,
            });
            out.push(EngineConnectionView {
                id: s.outbound_conn_id,
                kind: EngineConnectionKind::Ipsec,
                algorithm: alg,
                encrypt: outb.packets,
                decrypt: 0,
                last_seq: outb.seq_used,
                ip: s.local,
            });
        }
        for i in p1.into_iter().filter(|i| i.established) {
            out.push(EngineConnectionView {
                id: i.conn_id,
                kind: EngineConnectionKind::Ike,
                algorithm: i.algorithm.unwrap_or_default(),
                encrypt: 0,
                decrypt: 0,
                last_seq: 0,
                ip: i.local,
            });
        }
        out.sort_by_key(|c| c.id);
        out
    }

    fn sessions_detail(&self) -> Vec<SessionDetailView> {
        let (p1, sas, clients) = self.shared.with(|ep, now| {
            (
                ep.phase1_infos(now),
                ep.ipsec_sas(now),
                ep.client_sessions(),
            )
        });
        let mut peers: Vec<Ipv4Addr> = Vec::new();
        for a in p1
            .iter()
            .map(|i| i.peer)
            .chain(sas.iter().map(|s| s.remote))
        {
            if !peers.contains(&a) {
                peers.push(a);
            }
        }
        peers
            .into_iter()
            .map(|peer| {
                let mine_p1: Vec<&Phase1Info> = p1.iter().filter(|i| i.peer == peer).collect();
                let mine: Vec<&ike::IpsecSaInfo> =
                    sas.iter().filter(|s| s.remote == peer).collect();
                let client = clients
                    .iter()
                    .find(|c| c.peer.ip() == std::net::IpAddr::V4(peer));
                let mut flows: Vec<SessionFlowView> = Vec::new();
                for s in &mine {
                    let inb = self.sa.values(s.inbound_spi, true);
                    let outb = self.sa.values(s.outbound_spi, false);
                    let f = match flows
                        .iter_mut()
                        .position(|f| f.local == s.local_proxy && f.remote == s.remote_proxy)
                    {
                        Some(i) => &mut flows[i],
                        None => {
                            flows.push(SessionFlowView {
                                local: s.local_proxy,
                                remote: s.remote_proxy,
                                active_sas: 0,
                                origin: if client.is_some() {
                                    "dynamic crypto map".into()
                                } else {
                                    "crypto map".into()
                                },
                                in_packets: 0,
                                in_drops: 0,
                                in_kb: 0,
                                in_secs: 0,
                                out_packets: 0,
                                out_drops: 0,
                                out_kb: 0,
                                out_secs: 0,
                            });
                            flows.last_mut().expect("just pushed")
                        }
                    };
                    f.active_sas += 2;
                    f.in_packets += inb.packets;
                    f.in_drops += inb.drops_total();
                    f.out_packets += outb.packets;
                    f.out_drops += outb.drops_total();
                    f.in_kb = s.lifetime_kb;
                    f.out_kb = s.lifetime_kb;
                    f.in_secs = s.remaining_secs;
                    f.out_secs = s.remaining_secs;
                }
                let established = mine_p1.iter().any(|i| i.established);
                let status = match (established, mine.is_empty(), mine_p1.is_empty()) {
                    (_, false, true) => "UP-NO-IKE",
                    (true, false, _) => "UP-ACTIVE",
                    (true, true, _) => "UP-IDLE",
                    (false, false, _) => "UP-NO-IKE",
                    (false, true, _) => "DOWN-NEGOTIATING",
                };
                let first = mine_p1.first();
                SessionDetailView {
                    interface: mine
                        .first()
                        .map(|s| s.interface.clone())
                        .or_else(|| {
                            self.config()
                                .interfaces
                                .iter()
                                .find_map(|i| i.crypto_map.as_ref().map(|_| i.name.clone()))
                        })
                        .unwrap_or_default(),
                    username: client.and_then(|c| c.user.clone()),
                    group: client.map(|c| c.group.clone()),
                    assigned: client.and_then(|c| c.assigned),
                    uptime_secs: mine_p1.iter().map(|i| i.uptime_secs).max().unwrap_or(0),
                    status: status.to_string(),
                    peer,
                    peer_port: first
                        .map(|i| i.peer_port)
                        .or_else(|| mine.first().map(|s| s.remote_port))
                        .unwrap_or(500),
                    phase1_id: first
                        .map(|i| i.phase1_id.clone())
                        .unwrap_or_else(|| peer.to_string()),
                    ike: mine_p1
                        .iter()
                        .map(|i| SessionIkeView {
                            local: i.local,
                            local_port: i.local_port,
                            remote: i.peer,
                            remote_port: i.peer_port,
                            active: i.established,
                            capabilities: i.capabilities.clone(),
                            conn_id: i.conn_id,
                            lifetime_secs: i.lifetime_left_secs.unwrap_or(0),
                        })
                        .collect(),
                    flows,
                }
            })
            .collect()
    }
}

fn sum(a: IpsecErrorCounters, b: IpsecErrorCounters) -> IpsecErrorCounters {
    IpsecErrorCounters {
        no_sa_send: a.no_sa_send + b.no_sa_send,
        invalid_sa_rcv: a.invalid_sa_rcv + b.invalid_sa_rcv,
        encaps_failed_send: a.encaps_failed_send + b.encaps_failed_send,
        decaps_failed_rcv: a.decaps_failed_rcv + b.decaps_failed_rcv,
        invalid_prot_rcv: a.invalid_prot_rcv + b.invalid_prot_rcv,
        verify_failed: a.verify_failed + b.verify_failed,
        invalid_identity_rcv: a.invalid_identity_rcv + b.invalid_identity_rcv,
        invalid_len_rcv: a.invalid_len_rcv + b.invalid_len_rcv,
        replay_rollover_send: a.replay_rollover_send + b.replay_rollover_send,
        replay_rollover_rcv: a.replay_rollover_rcv + b.replay_rollover_rcv,
        replay_failed_rcv: a.replay_failed_rcv + b.replay_failed_rcv,
        internal_err_send: a.internal_err_send + b.internal_err_send,
        internal_err_rcv: a.internal_err_rcv + b.internal_err_rcv,
    }
}
