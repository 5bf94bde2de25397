//! The Easy VPN client in the endpoint (IOS "Easy VPN Remote", `crypto ipsec client ezvpn
//! NAME`): Aggressive Mode to the server with ID_KEY_ID = the group and the group key as
//! PSK, XAUTHInitPreShared (65001) in every transform, the XAUTH and Unity vendor IDs; then
//! Transaction Mode as the [`Client`] (answers XAUTH with the saved user and password,
//! pulls Mode Config, accepts a pushed SET); then, in network-extension mode, Quick Mode for
//! each inside network against each split-include network the server sent (0.0.0.0/0
//! without one, as IOS does). A tunnel without inside networks (a software client, as
//! vpnc) protects its Mode Config address instead.
//!
//! Each inside network has a crypto map entry (`<outside>-head-0`, as IOS names the map
//! it builds); the entries exist from the first connect, their Quick Modes are held until
//! Mode Config is done, and their remote proxies are set from the split include then.

use super::client::{Client, ClientState, ModeConfig};
use super::{RetxStep, TxnCrypto, TxnRetx};
use crate::ike::config::{CryptoMapEntry, Phase1Mode, Proxy};
use crate::ike::endpoint::natt::framed;
use crate::ike::endpoint::phase1::{P1Sa, P1State};
use crate::ike::endpoint::{v4, Endpoint, IkeError, Rx, IKE_PORT};
use crate::ike::ezvpn::EzvpnClientConfig;
use crate::ike::syslog::*;
use crate::ike::types::Transmit;
use crate::ike::FailReason;
use crate::isakmp::*;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Instant;
use zeroize::Zeroizing;

/// IOS's Easy VPN Remote states (`show crypto ipsec client ezvpn`, "Current State").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EzState {
    /// `connect manual`, not yet connected.
    ConnectRequired,
    /// Phase 1 under way.
    IkePend,
    /// Phase 1 done, waiting for the server's XAUTH REQUEST.
    XauthReq,
    /// Answered XAUTH, waiting for the status.
    XauthReplied,
    /// Mode Config requested.
    ModeConfigReq,
    /// Configured; Quick Modes under way.
    SsOpen,
    /// XAUTH refused, or the server went away.
    Failed,
}

impl EzState {
    pub fn ios(self) -> &'static str {
        match self {
            EzState::ConnectRequired => "CONNECT_REQUIRED",
            EzState::IkePend => "IKE_PEND",
            EzState::XauthReq => "XAUTH_REQ",
            EzState::XauthReplied => "XAUTH_REPLIED",
            EzState::ModeConfigReq => "MODE_CONFIG_REQ",
            EzState::SsOpen => "SS_OPEN",
            EzState::Failed => "IDLE",
        }
    }
}

/// One Easy VPN client tunnel.
pub struct EzClient {
    pub state: EzState,
    pub last_event: &'static str,
    /// Its phase-1 SA (initiator cookie), once started.
    icookie: Option<[u8; 8]>,
    client: Option<Client>,
    crypto: TxnCrypto,
    /// Its crypto map entries (indices into the IKE configuration's maps).
    maps: Vec<usize>,
    config: Option<ModeConfig>,
    last_rx: Vec<u8>,
    last_tx: Option<Transmit>,
    retx: Option<TxnRetx>,
}

/// The endpoint's Easy VPN client tunnels, by name.
#[derive(Default)]
pub struct EzClients {
    tunnels: BTreeMap<String, EzClient>,
}

/// `show crypto ipsec client ezvpn`: one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EzvpnStatus {
    pub name: String,
    pub inside: Vec<String>,
    pub outside: String,
    pub state: &'static str,
    pub last_event: &'static str,
    pub peer: Ipv4Addr,
    pub config: Option<ModeConfig>,
    /// Whether the phase-1 SA and every entry's IPsec SAs are up.
    pub active: bool,
}

impl Endpoint {
    fn ez_cfg(&self, name: &str) -> Option<EzvpnClientConfig> {
        self.cfg.ezvpn.iter().find(|c| c.name == name).cloned()
    }

    /// The tunnel whose crypto map entry `idx` is.
    fn ez_of_map(&self, idx: usize) -> Option<String> {
        self.ez
            .tunnels
            .iter()
            .find(|(_, t)| t.maps.contains(&idx))
            .map(|(n, _)| n.clone())
    }

    /// The tunnel of phase-1 SA `icookie`.
    fn ez_of_sa(&self, icookie: [u8; 8]) -> Option<String> {
        self.ez
            .tunnels
            .iter()
            .find(|(_, t)| t.icookie == Some(icookie))
            .map(|(n, _)| n.clone())
    }

    /// At daemon start: every `connect auto` tunnel connects; `connect manual` ones wait
    /// (CONNECT_REQUIRED).
    pub fn ezvpn_start(&mut self, now: Instant) {
        let names: Vec<String> = self.cfg.ezvpn.iter().map(|c| c.name.clone()).collect();
        for name in names {
            self.ezvpn_start_one(now, &name);
        }
    }

    /// One tunnel as [`Endpoint::ezvpn_start`] starts it.
    pub(in crate::ike::endpoint) fn ezvpn_start_one(&mut self, now: Instant, name: &str) {
        let Some(c) = self.ez_cfg(name) else {
            return;
        };
        if c.manual {
            self.ez_tunnel(&c);
        } else {
            self.ezvpn_connect(now, name);
        }
    }

    /// The tunnel's record and crypto map entries, created on first use.
    fn ez_tunnel(&mut self, c: &EzvpnClientConfig) {
        if self.ez.tunnels.contains_key(&c.name) {
            return;
        }
        let insides: Vec<Proxy> = if c.inside.is_empty() {
            vec![Proxy::host(self.cfg.local_addr)]
        } else {
            c.inside.iter().map(|(_, p)| *p).collect()
        };
        let map = c.map.clone();
        let mut maps = Vec::new();
        for (i, lp) in insides.into_iter().enumerate() {
            self.cfg.maps.push(CryptoMapEntry {
                map: map.clone(),
                seq: 65536 + i as u32,
                peer: c.peer,
                transform_sets: c.transform_sets.clone(),
                pfs: None,
                lifetime_secs: c.lifetime_secs,
                lifetime_kb: c.lifetime_kb,
                local_proxy: lp,
                remote_proxy: Proxy::subnet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
                mode: Phase1Mode::Aggressive,
                interface: c.outside.clone(),
            });
            maps.push(self.cfg.maps.len() - 1);
        }
        self.ez.tunnels.insert(
            c.name.clone(),
            EzClient {
                state: EzState::ConnectRequired,
                last_event: "CONFIG",
                icookie: None,
                client: None,
                crypto: TxnCrypto::default(),
                maps,
                config: None,
                last_rx: Vec::new(),
                last_tx: None,
                retx: None,
            },
        );
    }

    /// `crypto ipsec client ezvpn connect NAME`: starts the tunnel (Aggressive Mode to the
    /// server). False if there is no such tunnel.
    pub fn ezvpn_connect(&mut self, now: Instant, name: &str) -> bool {
        let Some(c) = self.ez_cfg(name) else {
            return false;
        };
        self.ez_tunnel(&c);
        let busy = self
            .ez
            .tunnels
            .get(name)
            .and_then(|t| t.icookie)
            .is_some_and(|k| self.p1.get(&k).is_some_and(|sa| !sa.state.is_dead()));
        if busy {
            return true;
        }
        let Some(&idx) = self.ez.tunnels.get(name).and_then(|t| t.maps.first()) else {
            return false;
        };
        self.ik_raw(format!("EZVPN({name}): Current State: CONNECT_REQUIRED"));
        self.ik_raw(format!("EZVPN({name}): Event: CONNECT"));
        self.start_p1(now, idx, None);
        // start_p1 holds this entry's Quick Mode; the other entries wait with it.
        let extra: Vec<usize> = self.ez.tunnels[name].maps[1..].to_vec();
        if let Some(k) = self.ez_icookie_for(idx) {
            if let Some(sa) = self.p1.get_mut(&k) {
                sa.waiting.extend(extra.into_iter().map(|i| (i, None)));
            }
        }
        true
    }

    fn ez_icookie_for(&self, idx: usize) -> Option<[u8; 8]> {
        let name = self.ez_of_map(idx)?;
        self.ez.tunnels.get(&name)?.icookie
    }

    fn ez_enter(&mut self, name: &str, state: EzState, event: &'static str) {
        let Some(t) = self.ez.tunnels.get_mut(name) else {
            return;
        };
        let from = t.state;
        t.state = state;
        t.last_event = event;
        self.ik_raw(format!("EZVPN({name}): Event: {event}"));
        if from != state {
            self.ik_raw(format!(
                "EZVPN({name}): ezvpn_{}  New State: {}",
                event.to_ascii_lowercase(),
                state.ios()
            ));
        }
    }

    /// `start_p1` for entry `idx`: the group key, the ID_KEY_ID and the tunnel's record if
    /// the entry is a tunnel's (None: a site-to-site entry).
    pub(in crate::ike::endpoint) fn ez_p1_params(
        &mut self,
        idx: usize,
        icookie: [u8; 8],
    ) -> Option<(crate::ike::crypto::Secret, IdPayload)> {
        let name = self.ez_of_map(idx)?;
        let c = self.ez_cfg(&name)?;
        if let Some(t) = self.ez.tunnels.get_mut(&name) {
            t.icookie = Some(icookie);
            t.client = None;
            t.crypto = TxnCrypto::default();
            t.config = None;
            t.last_rx.clear();
            t.last_tx = None;
            t.retx = None;
        }
        self.ez_enter(&name, EzState::IkePend, "CONNECT");
        Some((
            Zeroizing::new(c.key.to_vec()),
            IdPayload {
                id_type: id_type::KEY_ID,
                protocol: 17,
                port: IKE_PORT,
                data: c.group.as_bytes().to_vec(),
            },
        ))
    }

    /// Whether entry `idx`'s Quick Mode must wait: a tunnel's, before Mode Config is done.
    /// An idle tunnel is connected.
    pub(in crate::ike::endpoint) fn ez_defer(&mut self, now: Instant, idx: usize) -> bool {
        let Some(name) = self.ez_of_map(idx) else {
            return false;
        };
        let st = self.ez.tunnels[&name].state;
        match st {
            EzState::SsOpen => false,
            EzState::ConnectRequired | EzState::Failed => {
                if !self.ez_cfg(&name).is_some_and(|c| c.manual) {
                    self.ezvpn_connect(now, &name);
                }
                true
            }
            _ => true,
        }
    }

    /// Phase 1 of a tunnel is complete: Transaction Mode begins (the server sends the XAUTH
    /// REQUEST); its Quick Modes wait. False: not a tunnel's SA.
    pub(in crate::ike::endpoint) fn ez_p1_complete(
        &mut self,
        _now: Instant,
        sa: &mut P1Sa,
    ) -> bool {
        if !sa.initiator {
            return false;
        }
        let Some(name) = self.ez_of_sa(sa.icookie) else {
            return false;
        };
        let c = self.ez_cfg(&name);
        let (user, pw) = c
            .and_then(|c| Some((c.user.clone()?, c.password.clone()?)))
            .unwrap_or_default();
        if let Some(t) = self.ez.tunnels.get_mut(&name) {
            t.client = Some(Client::new(&user, pw));
        }
        self.ez_enter(&name, EzState::XauthReq, "SOCKET_UP");
        true
    }

    /// A Transaction Mode message on a tunnel's SA. None: not a tunnel's SA.
    pub(in crate::ike::endpoint) fn ez_transaction(
        &mut self,
        sa: &mut P1Sa,
        rx: &Rx,
    ) -> Option<Result<(), IkeError>> {
        if !sa.initiator {
            return None;
        }
        let name = self.ez_of_sa(sa.icookie)?;
        Some(self.ez_message(&name, sa, rx))
    }

    fn ez_message(&mut self, name: &str, sa: &mut P1Sa, rx: &Rx) -> Result<(), IkeError> {
        let P1State::Established(est) = &sa.state else {
            return Err(IkeError::Peer("Transaction Mode before phase 1 completed"));
        };
        let t = self.ez.tunnels.get_mut(name).expect("tunnel of this SA");
        if t.last_rx == rx.msg {
            if let Some(tx) = t.last_tx.clone() {
                self.counters.rx_retransmissions += 1;
                self.counters.tx_retransmissions += 1;
                self.transmits.push_back(tx);
            }
            return Ok(());
        }
        let m = match t.crypto.open(&est.k, &rx.hdr, rx.msg) {
            Ok(m) => m,
            Err(e) => {
                self.counters.rx_decrypt_failed += matches!(e, IkeError::Wire(_)) as u64;
                return Err(e);
            }
        };
        t.last_rx = rx.msg.to_vec();
        t.retx = None;
        sa.last_peer_activity = rx.now;
        let Some(mut client) = t.client.take() else {
            return Err(IkeError::Peer("Transaction Mode before phase 1 completed"));
        };
        let conn = sa.conn_id;
        self.ik(
            conn,
            format!(
                "received packet from {} (I) transaction {}",
                v4(rx.remote),
                super::cfg_type_name(m.attr.cfg_type)
            ),
        );
        let from = client.state.ios();
        if m.attr.cfg_type == cfg_type::REQUEST && client.user.is_empty() {
            self.ik(
                conn,
                "XAUTH: no saved user name and password (username U password P under the ezvpn block)",
            );
        }
        let res = client.handle(&mut *self.rng, &m);
        let to = client.state.ios();
        let outs = match res {
            Ok(o) => o,
            Err(e) => {
                self.ez.tunnels.get_mut(name).expect("tunnel").client = Some(client);
                return Err(e);
            }
        };
        if from != to {
            self.ik_raw(format!("Old State = {from}  New State = {to}"));
        }
        let (state, event) = match &client.state {
            ClientState::AwaitXauthStatus => (EzState::XauthReplied, "XAUTH_REQ_INFO_READY"),
            ClientState::ConfigRequestSent { .. } => (EzState::ModeConfigReq, "XAUTH_STATUS"),
            ClientState::Configured => (EzState::SsOpen, "MODE_CONFIG_REPLY"),
            ClientState::Failed => (EzState::Failed, "XAUTH_FAILED"),
            ClientState::AwaitXauthRequest => (EzState::XauthReq, "XAUTH_REQUEST"),
        };
        let configured = client.is_configured().then(|| client.config.clone());
        let failed = matches!(client.state, ClientState::Failed);
        let wait_state = client.state.ios();
        self.ez.tunnels.get_mut(name).expect("tunnel").client = Some(client);
        for (mid, attr) in outs {
            let P1State::Established(est) = &sa.state else {
                break;
            };
            let t = self.ez.tunnels.get_mut(name).expect("tunnel");
            let bytes = t.crypto.seal(&est.k, sa, mid, &attr);
            let tx = framed(sa.local, sa.remote, bytes);
            t.last_tx = Some(tx.clone());
            // A REQUEST waits for its REPLY; REPLY and ACK answer the server's messages.
            if attr.cfg_type == cfg_type::REQUEST || attr.cfg_type == cfg_type::SET {
                t.retx = Some(TxnRetx::arm(
                    tx.clone(),
                    rx.now,
                    self.cfg.retransmit_base,
                    wait_state,
                ));
            }
            self.ik(
                conn,
                format!(
                    "sending packet to {} (I) transaction {}",
                    v4(sa.remote),
                    super::cfg_type_name(attr.cfg_type)
                ),
            );
            self.transmits.push_back(tx);
        }
        self.ez_enter(name, state, event);
        if failed {
            let text = format!(
                "Group={}  Server_public_addr={}  Reason=XAUTH failed",
                self.ez_cfg(name).map(|c| c.group).unwrap_or_default(),
                v4(sa.remote)
            );
            self.syslog(SyslogMessage::crypto(
                WARNINGS,
                "EZVPN_FAILED_TO_CONNECT",
                text,
            ));
            self.fail_transaction(sa, "XAUTH failed", FailReason::XauthFailed);
            return Ok(());
        }
        if let Some(mc) = configured {
            self.ez_configured(rx.now, name, sa, mc);
        }
        Ok(())
    }

    /// Mode Config is done: the entries' remote proxies from the split include (0.0.0.0/0
    /// without one), PFS if the server asks, and the held Quick Modes start.
    fn ez_configured(&mut self, now: Instant, name: &str, sa: &mut P1Sa, mc: ModeConfig) {
        let remotes: Vec<Proxy> = if mc.split_include.is_empty() {
            vec![Proxy::subnet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)]
        } else {
            mc.split_include
                .iter()
                .map(|n| Proxy::subnet(n.addr, n.mask))
                .collect()
        };
        let pfs = match (&sa.state, mc.pfs) {
            (P1State::Established(est), Some(true)) => Some(est.k.neg.group),
            _ => None,
        };
        let t = self.ez.tunnels.get_mut(name).expect("tunnel");
        t.config = Some(mc.clone());
        // No inside network (a software client, as vpnc): the tunnel protects the Mode
        // Config address itself, address/32 against each split network.
        let no_inside = self
            .cfg
            .ezvpn
            .iter()
            .any(|c| c.name == name && c.inside.is_empty());
        if let (true, Some(a)) = (no_inside, mc.address) {
            for &i in &t.maps {
                if let Some(e) = self.cfg.maps.get_mut(i) {
                    e.local_proxy = Proxy::host(a);
                }
            }
        }
        // One entry per inside network and split network: the first of each inside
        // network is the one created at connect, the others are added.
        let firsts: Vec<usize> = t.maps.clone();
        let mut all = Vec::new();
        for idx in firsts {
            let Some(base) = self.cfg.maps.get(idx).cloned() else {
                continue;
            };
            let local = base.local_proxy;
            let already: Vec<usize> = self.ez.tunnels[name]
                .maps
                .iter()
                .copied()
                .filter(|&i| self.cfg.maps.get(i).is_some_and(|m| m.local_proxy == local))
                .collect();
            for (j, rp) in remotes.iter().enumerate() {
                let mut e = base.clone();
                e.remote_proxy = *rp;
                e.pfs = pfs;
                let slot = already.get(j).copied();
                let i = match slot {
                    Some(i) if all.contains(&i) => None,
                    Some(i) => Some(i),
                    None => None,
                };
                let i = match i {
                    Some(i) => {
                        self.cfg.maps[i] = e;
                        i
                    }
                    None => {
                        e.seq = base.seq + 256 * (j as u32);
                        self.cfg.maps.push(e);
                        self.cfg.maps.len() - 1
                    }
                };
                all.push(i);
            }
        }
        all.sort_unstable();
        all.dedup();
        self.ez.tunnels.get_mut(name).expect("tunnel").maps = all.clone();
        let (group, user) = (
            self.ez_cfg(name).map(|c| c.group).unwrap_or_default(),
            self.ez_cfg(name).and_then(|c| c.user).unwrap_or_default(),
        );
        self.syslog(SyslogMessage::crypto(
            INFORMATIONAL,
            "EZVPN_CONNECTION_UP",
            format!(
                "(Client)  User={user}  Group={group}  Server_public_addr={}  {}",
                v4(sa.remote),
                mc.address
                    .map(|a| format!("Assigned_client_addr={a}"))
                    .unwrap_or_default()
            ),
        ));
        for i in all {
            if !sa.waiting.iter().any(|w| w.0 == i) {
                sa.waiting.push((i, None));
            }
        }
        self.start_waiting(now, sa);
    }

    /// The configuration was replaced: each tunnel's entries move from `old` to the end of
    /// the new entries; `remap` (old index → new) learns where, so their pairs follow.
    pub(in crate::ike::endpoint) fn ez_reconfigured(
        &mut self,
        old: &[CryptoMapEntry],
        remap: &mut [Option<usize>],
    ) {
        let names: Vec<String> = self.ez.tunnels.keys().cloned().collect();
        for name in names {
            let idxs = std::mem::take(&mut self.ez.tunnels.get_mut(&name).expect("tunnel").maps);
            let mut moved = Vec::new();
            for i in idxs {
                let Some(e) = old.get(i).cloned() else {
                    continue;
                };
                self.cfg.maps.push(e);
                let j = self.cfg.maps.len() - 1;
                if let Some(r) = remap.get_mut(i) {
                    *r = Some(j);
                }
                moved.push(j);
            }
            self.ez.tunnels.get_mut(&name).expect("tunnel").maps = moved;
        }
    }

    /// Whether entry `idx` belongs to an Easy VPN client tunnel (made from Mode Config,
    /// not from the configuration's crypto maps).
    pub(in crate::ike::endpoint) fn ez_is_slot(&self, idx: usize) -> bool {
        self.ez.tunnels.values().any(|t| t.maps.contains(&idx))
    }

    /// The earliest retransmission of a tunnel's Transaction Mode message.
    pub(in crate::ike::endpoint) fn ez_next_timeout(&self) -> Option<Instant> {
        self.ez
            .tunnels
            .values()
            .filter_map(|t| t.retx.as_ref().map(|r| r.at))
            .min()
    }

    /// Retransmits a tunnel's unanswered Mode Config REQUEST on the phase-1 schedule; at
    /// the limit the phase-1 SA is given up.
    pub(in crate::ike::endpoint) fn ez_timers(&mut self, now: Instant) {
        let (base, limit) = (self.cfg.retransmit_base, self.cfg.retransmit_limit);
        let names: Vec<String> = self
            .ez
            .tunnels
            .iter()
            .filter(|(_, t)| t.retx.as_ref().is_some_and(|r| r.at <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let t = self.ez.tunnels.get_mut(&name).expect("tunnel");
            let Some(k) = t.icookie else {
                continue;
            };
            let Some(r) = t.retx.as_mut() else {
                continue;
            };
            let st = r.state;
            let conn = self.p1.get(&k).map(|s| s.conn_id).unwrap_or(0);
            match r.fire(now, base, limit) {
                RetxStep::Resend(tx, n) => {
                    self.counters.tx_retransmissions += 1;
                    self.ik(
                        conn,
                        format!("retransmitting phase 1.5 {st}... (attempt {n} of {limit})"),
                    );
                    self.transmits.push_back(tx);
                }
                RetxStep::GiveUp => {
                    t.retx = None;
                    self.ik(conn, format!("retransmission limit reached in {st}"));
                    self.with_sa(k, |ep, sa| {
                        ep.fail_transaction(
                            sa,
                            "Death by retransmission P1.5",
                            FailReason::RetransmissionsExhausted,
                        )
                    });
                    self.ez_enter(&name, EzState::Failed, "SOCKET_DOWN");
                }
            }
        }
    }

    /// `show crypto ipsec client ezvpn`.
    pub fn ezvpn_status(&self) -> Vec<EzvpnStatus> {
        let mut v = Vec::new();
        for c in &self.cfg.ezvpn {
            let t = self.ez.tunnels.get(&c.name);
            let maps = t.map(|t| t.maps.clone()).unwrap_or_default();
            let p1_up = t
                .and_then(|t| t.icookie)
                .and_then(|k| self.p1.get(&k))
                .is_some_and(|s| s.state.is_established());
            let active = p1_up
                && !maps.is_empty()
                && t.is_some_and(|t| t.state == EzState::SsOpen)
                && maps
                    .iter()
                    .all(|i| self.pairs.iter().any(|p| p.map_idx == *i));
            let (state, last_event) = match t {
                None if c.manual => ("CONNECT_REQUIRED", "CONFIG"),
                None => ("IDLE", "CONFIG"),
                Some(_) if active => ("IPSEC_ACTIVE", "IPSEC_ACTIVE"),
                Some(t) => (t.state.ios(), t.last_event),
            };
            v.push(EzvpnStatus {
                name: c.name.clone(),
                inside: c.inside.iter().map(|(n, _)| n.clone()).collect(),
                outside: c.outside.clone(),
                state,
                last_event,
                peer: c.peer,
                config: t.and_then(|t| t.config.clone()),
                active,
            });
        }
        v
    }
}
