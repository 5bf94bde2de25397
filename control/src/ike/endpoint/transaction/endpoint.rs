//! Transaction Mode in the endpoint: which client group a road warrior's phase 1 belongs
//! to, the [`Server`] started when its phase 1 completes, the encrypted messages of exchange
//! 6, the client's crypto map entry (from the dynamic map, for its assigned /32) that its
//! Quick Mode is checked against, and the address given back when the client goes.
//!
//! A client's entry is appended to the IKE configuration's crypto map entries, so Quick
//! Mode and the SA pairs treat it like any other entry; it is responder-only (never
//! initiated, never rekeyed from our side), and its slot is emptied (peer 0.0.0.0, a proxy
//! nothing matches) when the client goes, so that other entries keep their indices.

use super::server::{ServerCtx, ServerOut};
use super::{Server, TxnCrypto};
use crate::ike::config::{CryptoMapEntry, Phase1Mode, Proxy};
use crate::ike::crypto::Secret;
use crate::ike::endpoint::natt::framed;
use crate::ike::endpoint::phase1::P1Sa;
use crate::ike::endpoint::{v4, Endpoint, IkeError, Rx};
use crate::ike::pool::Pools;
use crate::ike::remote::RemoteAccessConfig;
use crate::ike::syslog::*;
use crate::ike::types::Transmit;
use crate::ike::FailReason;
use crate::isakmp::*;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

/// Vendor IDs of remote access (DESIGN §6).
pub const VID_XAUTH: [u8; 8] = [0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12];
pub const VID_UNITY: [u8; 16] = [
    0x12, 0xf5, 0xf2, 0x8c, 0x45, 0x71, 0x68, 0xa9, 0x70, 0x2d, 0x9f, 0xe2, 0x74, 0xcc, 0x01, 0x00,
];
/// Phase-1 authentication method XAUTHInitPreShared.
pub const AUTH_XAUTH_INIT_PSK: u16 = 65001;

/// One road warrior: its group, its Transaction Mode, what it was given.
pub struct Session {
    pub group: String,
    pub conn_id: u32,
    pub peer: SocketAddr,
    pub crypto: TxnCrypto,
    pub server: Option<Server>,
    /// Its crypto map entry (index into the IKE configuration's entries).
    pub map_idx: Option<usize>,
    /// When Transaction Mode must be over (`crypto isakmp xauth timeout`, from its start).
    deadline: Option<Instant>,
    last_rx: Vec<u8>,
    last_tx: Option<Transmit>,
    /// Our message that waits for the client's answer.
    retx: Option<super::TxnRetx>,
}

/// The endpoint's remote-access state.
#[derive(Default)]
pub struct RemoteAccess {
    pub pools: Pools,
    /// By the phase-1 SA's initiator cookie.
    pub sessions: HashMap<[u8; 8], Session>,
    /// Client entries in the IKE configuration's maps (index → owner).
    client_maps: HashMap<usize, [u8; 8]>,
    /// Emptied client entries, for reuse.
    free_maps: Vec<usize>,
}

impl RemoteAccess {
    pub fn new(cfg: Option<&RemoteAccessConfig>) -> RemoteAccess {
        let mut ra = RemoteAccess::default();
        ra.reconfigure(cfg);
        ra
    }
    /// New pools (leases in range are kept).
    pub fn reconfigure(&mut self, cfg: Option<&RemoteAccessConfig>) {
        let defs: Vec<(String, Vec<(Ipv4Addr, Ipv4Addr)>)> = cfg
            .map(|c| {
                c.pools
                    .iter()
                    .map(|(n, r)| (n.clone(), r.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.pools
            .reconfigure(defs.iter().map(|(n, r)| (n.as_str(), &r[..])));
    }
}

/// `show crypto session`: one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSessionInfo {
    pub peer: SocketAddr,
    pub conn_id: u32,
    pub group: String,
    pub user: Option<String>,
    pub assigned: Option<Ipv4Addr>,
    pub state: &'static str,
}

/// A proxy no packet has: an emptied client entry.
const NOWHERE: Proxy = Proxy {
    addr: Ipv4Addr::UNSPECIFIED,
    mask: Ipv4Addr::BROADCAST,
    protocol: 255,
    port: 0,
};

impl Endpoint {
    /// The XAUTH and Unity vendor IDs, sent in MM2/AM2 when remote access is configured.
    pub(in crate::ike::endpoint) fn ra_vids(&self) -> Vec<Payload> {
        if self.cfg.remote.is_none() {
            return Vec::new();
        }
        vec![
            Payload::VendorId(VID_XAUTH.to_vec()),
            Payload::VendorId(VID_UNITY.to_vec()),
        ]
    }

    /// Whether a phase-1 authentication method is acceptable: pre-shared keys, and
    /// XAUTHInitPreShared when remote access is configured.
    pub(in crate::ike::endpoint) fn ra_auth_ok(&self, auth: u16) -> bool {
        auth == 1
            || (auth == AUTH_XAUTH_INIT_PSK
                && (self.cfg.remote.is_some() || !self.cfg.ezvpn.is_empty()))
    }

    /// AM1 of a road warrior: the group its ID_KEY_ID names and that group's key. None if
    /// the message is not one (no remote access, not Aggressive Mode, not ID_KEY_ID); Err
    /// for a group that is not configured.
    pub(in crate::ike::endpoint) fn ra_group_key(
        &mut self,
        conn: u32,
        mode: Phase1Mode,
        m: &Message,
        peer: Ipv4Addr,
    ) -> Option<Result<(String, Secret), ()>> {
        let remote = self.cfg.remote.as_ref()?;
        if mode != Phase1Mode::Aggressive {
            return None;
        }
        let id = m.payloads.iter().find_map(|p| match p {
            Payload::Id(i) if i.id_type == id_type::KEY_ID => Some(i),
            _ => None,
        })?;
        let name = String::from_utf8_lossy(&id.data).to_string();
        match remote.groups.get(&name) {
            Some(g) => {
                let key = g.key.clone();
                self.ik(
                    conn,
                    format!("processing ID payload: ID_KEY_ID group {name}"),
                );
                self.ik(
                    conn,
                    format!("found peer pre-shared key matching group {name}"),
                );
                Some(Ok((name, key)))
            }
            None => {
                self.ik(
                    conn,
                    format!("No pre-shared key for group {name}: group not configured"),
                );
                self.syslog(SyslogMessage::crypto(
                    INFORMATIONAL,
                    "IKMP_MODE_FAILURE",
                    format!("Processing of Aggressive mode failed with peer at {peer}"),
                ));
                Some(Err(()))
            }
        }
    }

    /// Remembers which group the phase-1 SA `sa` (a responder's, keyed by its initiator
    /// cookie) belongs to.
    pub(in crate::ike::endpoint) fn ra_bind(&mut self, sa: &P1Sa, group: String) {
        self.ra.sessions.insert(
            sa.icookie,
            Session {
                group,
                conn_id: sa.conn_id,
                peer: sa.remote,
                crypto: TxnCrypto::default(),
                server: None,
                map_idx: None,
                deadline: None,
                last_rx: Vec::new(),
                last_tx: None,
                retx: None,
            },
        );
    }

    /// Phase 1 of a responder SA is complete: a road warrior's Transaction Mode begins.
    /// A Main Mode client (wildcard key) belongs to the only group when there is one.
    pub(in crate::ike::endpoint) fn ra_p1_complete(&mut self, now: Instant, sa: &mut P1Sa) {
        let Some(remote) = self.cfg.remote.clone() else {
            return;
        };
        if sa.initiator {
            return;
        }
        if !self.ra.sessions.contains_key(&sa.icookie) {
            if remote.groups.len() != 1 {
                return;
            }
            let g = remote.groups.keys().next().cloned().unwrap_or_default();
            self.ra_bind(sa, g);
        }
        let Some(sess) = self.ra.sessions.get(&sa.icookie) else {
            return;
        };
        let Some(group) = remote.groups.get(&sess.group).cloned() else {
            return;
        };
        if let Some(max) = group.max_users {
            let n = self
                .ra
                .sessions
                .values()
                .filter(|s| s.group == group.name && s.server.is_some())
                .count() as u32;
            if n >= max {
                let conn = sa.conn_id;
                self.ik(
                    conn,
                    format!("group {} has reached max-users {max}", group.name),
                );
                self.fail_transaction(sa, "max-users exceeded", FailReason::MaxUsers);
                return;
            }
        }
        let (server, outs) = {
            let mut ctx = ServerCtx {
                cfg: &remote,
                group: &group,
                pools: &mut self.ra.pools,
                owner: sa.icookie,
                rng: &mut *self.rng,
                peer: v4(sa.remote),
                version: concat!("espgw ", env!("CARGO_PKG_VERSION")),
            };
            Server::start(&mut ctx)
        };
        if let Some(s) = self.ra.sessions.get_mut(&sa.icookie) {
            s.server = Some(server);
            s.deadline = Some(now + remote.xauth_timeout);
        }
        self.ra_run(now, sa, outs);
    }

    /// The earliest Transaction Mode deadline.
    pub(in crate::ike::endpoint) fn ra_next_timeout(&self) -> Option<Instant> {
        self.ra
            .sessions
            .values()
            .flat_map(|s| [s.deadline, s.retx.as_ref().map(|r| r.at)])
            .flatten()
            .min()
    }

    /// Clients whose Transaction Mode did not finish in time are deleted, as IOS does when
    /// the XAUTH timeout expires.
    pub(in crate::ike::endpoint) fn ra_timers(&mut self, now: Instant) {
        self.ra_retransmit(now);
        let due: Vec<[u8; 8]> = self
            .ra
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let conn = self.ra.sessions.get(&k).map(|s| s.conn_id).unwrap_or(0);
            self.ik(
                conn,
                "XAUTH/Config Mode timed out (crypto isakmp xauth timeout)",
            );
            self.with_sa(k, |ep, sa| {
                ep.fail_transaction(sa, "XAUTH timeout", FailReason::Timeout)
            });
            self.ra_gone(k);
        }
    }

    /// Our unanswered XAUTH / Mode Config messages, resent on the phase-1 schedule.
    fn ra_retransmit(&mut self, now: Instant) {
        let (base, limit) = (self.cfg.retransmit_base, self.cfg.retransmit_limit);
        let due: Vec<[u8; 8]> = self
            .ra
            .sessions
            .iter()
            .filter(|(_, s)| s.retx.as_ref().is_some_and(|r| r.at <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let Some(s) = self.ra.sessions.get_mut(&k) else {
                continue;
            };
            let conn = s.conn_id;
            let Some(r) = s.retx.as_mut() else {
                continue;
            };
            let st = r.state;
            match r.fire(now, base, limit) {
                super::RetxStep::Resend(tx, n) => {
                    self.counters.tx_retransmissions += 1;
                    self.ik(
                        conn,
                        format!("retransmitting phase 1.5 {st}... (attempt {n} of {limit})"),
                    );
                    self.transmits.push_back(tx);
                }
                super::RetxStep::GiveUp => {
                    self.ik(conn, format!("retransmission limit reached in {st}"));
                    self.with_sa(k, |ep, sa| {
                        ep.fail_transaction(
                            sa,
                            "Death by retransmission P1.5",
                            FailReason::RetransmissionsExhausted,
                        )
                    });
                    self.ra_gone(k);
                }
            }
        }
    }

    /// An exchange-6 message for `sa`.
    pub(in crate::ike::endpoint) fn transaction(
        &mut self,
        sa: &mut P1Sa,
        rx: &Rx,
    ) -> Result<(), IkeError> {
        if let Some(r) = self.ez_transaction(sa, rx) {
            return r;
        }
        let Some(remote) = self.cfg.remote.clone() else {
            return Err(IkeError::Unsupported(
                "Transaction Mode without remote access",
            ));
        };
        let crate::ike::endpoint::phase1::P1State::Established(est) = &sa.state else {
            return Err(IkeError::Peer("Transaction Mode before phase 1 completed"));
        };
        let key = sa.icookie;
        let Some(sess) = self.ra.sessions.get_mut(&key) else {
            return Err(IkeError::Peer(
                "Transaction Mode from a peer that is not a client",
            ));
        };
        if sess.last_rx == rx.msg {
            if let Some(tx) = sess.last_tx.clone() {
                self.counters.rx_retransmissions += 1;
                self.counters.tx_retransmissions += 1;
                self.transmits.push_back(tx);
            }
            return Ok(());
        }
        let m = match sess.crypto.open(&est.k, &rx.hdr, rx.msg) {
            Ok(m) => m,
            Err(e) => {
                self.counters.rx_decrypt_failed += matches!(e, IkeError::Wire(_)) as u64;
                return Err(e);
            }
        };
        sess.last_rx = rx.msg.to_vec();
        sess.retx = None;
        sa.last_peer_activity = rx.now;
        let Some(group) = remote.groups.get(&sess.group).cloned() else {
            return Err(IkeError::Policy("client group no longer configured"));
        };
        let Some(mut server) = sess.server.take() else {
            return Err(IkeError::Peer("Transaction Mode before the server started"));
        };
        let res = {
            let mut ctx = ServerCtx {
                cfg: &remote,
                group: &group,
                pools: &mut self.ra.pools,
                owner: key,
                rng: &mut *self.rng,
                peer: v4(sa.remote),
                version: concat!("espgw ", env!("CARGO_PKG_VERSION")),
            };
            server.handle(&mut ctx, &m)
        };
        if let Some(s) = self.ra.sessions.get_mut(&key) {
            s.server = Some(server);
        }
        let outs = res?;
        self.ra_run(rx.now, sa, outs);
        Ok(())
    }

    /// Carries out what the server asked for.
    fn ra_run(&mut self, now: Instant, sa: &mut P1Sa, outs: Vec<ServerOut>) {
        let conn = sa.conn_id;
        for o in outs {
            match o {
                ServerOut::Send { mid, attr } => {
                    let crate::ike::endpoint::phase1::P1State::Established(est) = &sa.state else {
                        continue;
                    };
                    let Some(sess) = self.ra.sessions.get_mut(&sa.icookie) else {
                        continue;
                    };
                    let bytes = sess.crypto.seal(&est.k, sa, mid, &attr);
                    let tx = framed(sa.local, sa.remote, bytes);
                    sess.last_tx = Some(tx.clone());
                    let st = sess
                        .server
                        .as_ref()
                        .map(|x| x.state.ios())
                        .unwrap_or("IKE_P1_COMPLETE");
                    sess.retx = Some(super::TxnRetx::arm(
                        tx.clone(),
                        now,
                        self.cfg.retransmit_base,
                        st,
                    ));
                    self.ik(
                        conn,
                        format!(
                            "sending packet to {} ({}) transaction {}",
                            v4(sa.remote),
                            sa.role(),
                            super::cfg_type_name(attr.cfg_type)
                        ),
                    );
                    self.transmits.push_back(tx);
                }
                ServerOut::Debug(t) => self.ik(conn, t),
                ServerOut::Syslog(m) => self.syslog(m),
                ServerOut::Transition { from, to } => {
                    self.ik_raw(format!("Old State = {from}  New State = {to}"));
                }
                ServerOut::Authenticated { user } => {
                    let group = self
                        .ra
                        .sessions
                        .get(&sa.icookie)
                        .map(|s| s.group.clone())
                        .unwrap_or_default();
                    self.syslog(SyslogMessage::crypto(
                        INFORMATIONAL,
                        "VPN_TUNNEL_STATUS",
                        format!(
                            "Group: {group}  User: {user}  Client_public_addr={}  Server_public_addr={}",
                            v4(sa.remote),
                            v4(sa.local)
                        ),
                    ));
                }
                ServerOut::Configured { addr } => self.ra_client_entry(now, sa, addr),
                ServerOut::Done => {
                    if let Some(s) = self.ra.sessions.get_mut(&sa.icookie) {
                        s.deadline = None;
                        s.retx = None;
                    }
                }
                ServerOut::Failed { reason, why } => {
                    self.fail_transaction(sa, &reason, why);
                    self.ra_gone(sa.icookie);
                    return;
                }
            }
        }
    }

    /// The client has `addr`: its crypto map entry, from the dynamic map, for `addr`/32
    /// against whatever it proposes on our side.
    fn ra_client_entry(&mut self, _now: Instant, sa: &P1Sa, addr: Ipv4Addr) {
        let Some(d) = self
            .cfg
            .remote
            .as_ref()
            .and_then(|r| r.dynamic.first())
            .cloned()
        else {
            let conn = sa.conn_id;
            self.ik(
                conn,
                "no dynamic crypto map: the client's Quick Mode will be refused",
            );
            return;
        };
        let e = CryptoMapEntry {
            map: d.map.clone(),
            seq: d.seq,
            peer: v4(sa.remote),
            transform_sets: d.transform_sets.clone(),
            pfs: d.pfs,
            lifetime_secs: d.lifetime_secs,
            lifetime_kb: d.lifetime_kb,
            local_proxy: Proxy::subnet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
            remote_proxy: Proxy::host(addr),
            mode: Phase1Mode::Aggressive,
            interface: d.interface.clone(),
        };
        let idx = match self.ra.free_maps.pop() {
            Some(i) if i < self.cfg.maps.len() => {
                self.cfg.maps[i] = e;
                i
            }
            _ => {
                self.cfg.maps.push(e);
                self.cfg.maps.len() - 1
            }
        };
        self.ra.client_maps.insert(idx, sa.icookie);
        if let Some(s) = self.ra.sessions.get_mut(&sa.icookie) {
            s.map_idx = Some(idx);
        }
    }

    /// The configuration was replaced (`set_config`): the clients' entries move from
    /// `old` to the end of the new entries; `remap[old index]` says where (the caller
    /// moves the references).
    pub(in crate::ike::endpoint) fn ra_reconfigured(
        &mut self,
        old: &[CryptoMapEntry],
        remap: &mut [Option<usize>],
    ) {
        let cfg = self.cfg.remote.clone();
        self.ra.reconfigure(cfg.as_deref());
        let moved: Vec<(usize, [u8; 8])> = self.ra.client_maps.drain().collect();
        self.ra.free_maps.clear();
        for (i, owner) in moved {
            let Some(e) = old.get(i).cloned() else {
                continue;
            };
            self.cfg.maps.push(e);
            let j = self.cfg.maps.len() - 1;
            self.ra.client_maps.insert(j, owner);
            if let Some(r) = remap.get_mut(i) {
                *r = Some(j);
            }
            if let Some(s) = self.ra.sessions.get_mut(&owner) {
                s.map_idx = Some(j);
            }
        }
    }

    /// A client in network-extension mode (IOS Easy VPN Remote) proposes its inside
    /// network, not its Mode Config address: as a dynamic map without `match address`
    /// does on IOS, its entry takes the network it proposes. None: not a client's SA, or
    /// our side of the proposal is outside the entry.
    pub(in crate::ike::endpoint) fn ra_nem_entry(
        &mut self,
        sa: &P1Sa,
        lp: &Proxy,
        rp: &Proxy,
    ) -> Option<usize> {
        let idx = self.ra.sessions.get(&sa.icookie)?.map_idx?;
        let e = self.cfg.maps.get_mut(idx)?;
        if !e.local_proxy.contains(lp) {
            return None;
        }
        e.remote_proxy = *rp;
        Some(idx)
    }

    /// Whether entry `idx` is a client's or a freed client slot (not the configuration's).
    pub(in crate::ike::endpoint) fn ra_is_client_slot(&self, idx: usize) -> bool {
        self.ra.client_maps.contains_key(&idx) || self.ra.free_maps.contains(&idx)
    }

    /// Whether crypto map entry `idx` is a client's (responder-only).
    pub(in crate::ike::endpoint) fn ra_is_client_map(&self, idx: usize) -> bool {
        self.ra.client_maps.contains_key(&idx)
    }

    /// The client of phase-1 SA `icookie` is gone: its address back to the pool, its
    /// IPsec SAs and crypto map entry removed.
    pub(in crate::ike::endpoint) fn ra_gone(&mut self, icookie: [u8; 8]) {
        let Some(mut s) = self.ra.sessions.remove(&icookie) else {
            return;
        };
        if let Some(server) = &mut s.server {
            if let Some(a) = server.release(&mut self.ra.pools, icookie) {
                self.ik(s.conn_id, format!("returning address {a} to pool"));
            }
        }
        if let Some(idx) = s.map_idx {
            let idxs: Vec<usize> = (0..self.pairs.len())
                .filter(|&i| self.pairs[i].map_idx == idx)
                .collect();
            for i in idxs.into_iter().rev() {
                self.remove_pair(i, false);
            }
            self.ra.client_maps.remove(&idx);
            if let Some(e) = self.cfg.maps.get_mut(idx) {
                e.peer = Ipv4Addr::UNSPECIFIED;
                e.local_proxy = NOWHERE;
                e.remote_proxy = NOWHERE;
            }
            self.ra.free_maps.push(idx);
        }
    }

    /// `clear crypto session`: every client is disconnected (DELETE sent) and its address
    /// returned.
    pub fn clear_crypto_session(&mut self, _now: Instant) {
        let keys: Vec<[u8; 8]> = self.ra.sessions.keys().copied().collect();
        for k in keys {
            if let Some(idx) = self.ra.sessions.get(&k).and_then(|s| s.map_idx) {
                let idxs: Vec<usize> = (0..self.pairs.len())
                    .filter(|&i| self.pairs[i].map_idx == idx)
                    .collect();
                for i in idxs.into_iter().rev() {
                    self.remove_pair(i, true);
                }
            }
            self.with_sa(k, |ep, sa| {
                ep.delete_p1(sa, "clear crypto session", FailReason::Cleared)
            });
            self.ra_gone(k);
        }
    }

    /// The clients, for `show crypto session` and `show crypto isakmp sa`.
    pub fn client_sessions(&self) -> Vec<ClientSessionInfo> {
        let mut v: Vec<ClientSessionInfo> = self
            .ra
            .sessions
            .iter()
            .map(|(k, s)| ClientSessionInfo {
                peer: s.peer,
                conn_id: s.conn_id,
                group: s.group.clone(),
                user: s.server.as_ref().and_then(|x| x.user.clone()),
                assigned: s.server.as_ref().and_then(|x| x.addr),
                state: match (&s.server, self.p1.get(k).map(|p| p.state.is_established())) {
                    (Some(x), _) if x.is_configured() => "UP-ACTIVE",
                    (_, Some(true)) => "UP-IDLE",
                    _ => "UP-NO-IKE",
                },
            })
            .collect();
        v.sort_by_key(|s| s.conn_id);
        v
    }

    /// Addresses leased from every pool.
    pub fn leased_addresses(&self) -> usize {
        self.ra.pools.leased()
    }
}
