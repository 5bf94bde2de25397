//! The sans-IO IKEv1 endpoint: every phase-1 and Quick Mode exchange of one gateway.
//!
//! Inputs: [`Endpoint::handle_datagram`], [`Endpoint::initiate`], [`Endpoint::handle_timeout`],
//! all taking `now`. Outputs are queued: [`Endpoint::poll_transmit`], [`Endpoint::poll_event`],
//! [`Endpoint::poll_debug`], [`Endpoint::poll_syslog`], [`Endpoint::poll_timeout`]. No sockets, no clock, randomness via
//! [`Random`].
//!
//! One module per exchange, in the manner of quinn-proto's `connection/`: `phase1` (the
//! phase-1 SA and its states, the steps Main and Aggressive Mode share, `phase1/main.rs`,
//! `phase1/aggressive.rs`), `quick` (Quick Mode; `quick/responder.rs` for QM1), `pairs`
//! (the IPsec SA pairs Quick Mode installs), `info` (Informational: DPD, DELETE, notifies),
//! `natt` (NAT-T), `timers` (one timer table per SA and per exchange, indexed by an enum)
//! and `debug` (the IOS `debug crypto isakmp|ipsec` lines).
//!
//! States are types, in the manner of rustls: a phase-1 SA's state is an enum whose
//! variants carry what that state has (`ExpectMm2 { psk, sai_b }` … `Established { k }`),
//! a Quick Mode exchange's likewise (`ExpectQm2`, `ExpectQm3`, `Complete`). A message
//! handler takes the state out of its SA by value; it either hands it back unchanged with
//! the error (the message is refused, the SA waits on) or consumes it and returns the next
//! one. The `Old State = X  New State = Y` lines `debug crypto isakmp` prints are generated
//! from those values: each state type names its IOS state ([`IosState`]) and the one IOS
//! passes through when its awaited message arrives (`IKE_I_MM2`: MM2 received, MM3 not
//! yet sent).
//!
//! While one of its messages or timers is handled, a phase-1 SA is taken out of the
//! endpoint's table and handed to the handlers as `&mut P1Sa`, then put back.

mod debug;
pub mod fragments;
mod info;
mod natt;
mod operator;
mod pairs;
mod payloads;
mod phase1;
mod quick;
mod reconfig;
mod timers;
mod transaction;
pub use transaction::attributes;
pub use transaction::ClientSessionInfo;
pub use transaction::{EzvpnStatus, ModeConfig};

pub use debug::IosState;
pub use fragments::{Added, FragmentCounters, Reassembler, DEFAULT_FRAGMENT_MTU};
pub use operator::{ike_algorithm, ipsec_algorithm, Phase1Info};
pub use reconfig::ReconfigReport;

use super::config::*;
use super::crypto::*;
use super::failure::FailReason;
use super::syslog::*;
use super::types::*;
use crate::isakmp::*;
use pairs::SaPair;
pub use pairs::SaUsage;
use phase1::P1Sa;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// Vendor IDs we send and recognise (DESIGN §6).
pub const VID_DPD: [u8; 16] = hex16("afcad71368a1f1c96b8696fc77570100");
pub const VID_RFC3947: [u8; 16] = hex16("4a131c81070358455c5728f20e95452f");
/// draft-ietf-ipsec-nat-t-ike-02\n (accepted on input).
pub const VID_NATT_DRAFT02N: [u8; 16] = hex16("90cb80913ebb696e086381b5ec427b1f");

const fn hex16(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}
const fn nib(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// IKE ports.
pub const IKE_PORT: u16 = 500;
pub const NATT_PORT: u16 = 4500;
/// Errors tolerated on one SA before it is deleted (IOS: "attempt 1 of 5").
const MAX_ERRORS: u32 = 5;

/// The IKEv1 endpoint of one gateway.
pub struct Endpoint {
    cfg: IkeConfig,
    rng: Box<dyn Random + Send>,
    /// Phase-1 SAs by initiator cookie.
    p1: HashMap<[u8; 8], P1Sa>,
    pairs: Vec<SaPair>,
    next_conn_id: u32,
    next_sa_conn: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    debug: VecDeque<DebugLine>,
    /// `%CRYPTO-…` messages, queued whatever the debug switches say.
    syslog: VecDeque<crate::ike::SyslogMessage>,
    /// `debug crypto isakmp`
    pub debug_isakmp: bool,
    /// `debug crypto ipsec`
    pub debug_ipsec: bool,
    pub counters: Counters,
    /// Easy VPN server: client sessions, pools, client map entries.
    ra: transaction::RemoteAccess,
    /// IKE fragments received, by peer and cookie, until their message is whole.
    frags: fragments::Reassembler,
    /// Easy VPN client tunnels (`crypto ipsec client ezvpn`).
    ez: transaction::EzClients,
    /// Every state each SA and Quick Mode exchange entered, in order (tests compare it with
    /// the debug output).
    #[cfg(test)]
    trace: Vec<debug::Entered>,
}

/// Why a received message was refused (sorted by blame, DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IkeError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("peer misbehaved: {0}")]
    Peer(&'static str),
    #[error("hash verification failed")]
    HashFailed,
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    #[error("policy: {0}")]
    Policy(&'static str),
    /// The peer's certificate, ID or signature was refused (rsa-sig): the SA fails, for
    /// the reason given (auth_failed, cert_invalid or invalid_id).
    #[error("authentication failed: {1}")]
    AuthFailed(FailReason, &'static str),
}

impl IkeError {
    pub fn blame(&self) -> Blame {
        match self {
            IkeError::Wire(w) => w.blame(),
            IkeError::Peer(_) | IkeError::HashFailed => Blame::PeerMisbehaved,
            IkeError::Unsupported(_) => Blame::Unsupported,
            IkeError::Policy(_) | IkeError::AuthFailed(..) => Blame::LocalPolicy,
        }
    }
    pub fn notify(&self) -> NotifyType {
        match self {
            IkeError::Wire(w) => w.notify(),
            IkeError::Peer(_) => NotifyType::PayloadMalformed,
            IkeError::HashFailed => NotifyType::InvalidHashInformation,
            IkeError::Unsupported(_) => NotifyType::AttributesNotSupported,
            IkeError::Policy(_) => NotifyType::NoProposalChosen,
            IkeError::AuthFailed(..) => NotifyType::AuthenticationFailed,
        }
    }
    /// Why a negotiation that ends with this error failed: our policy refused the peer's
    /// proposals or attributes (no_proposal_chosen), its proof of identity failed
    /// (auth_failed, cert_invalid, invalid_id), or its messages were unreadable
    /// (malformed).
    pub fn fail_reason(&self) -> FailReason {
        match self {
            IkeError::Policy(_) | IkeError::Unsupported(_) => FailReason::NoProposalChosen,
            IkeError::AuthFailed(r, _) => *r,
            IkeError::HashFailed => FailReason::AuthFailed,
            IkeError::Wire(_) | IkeError::Peer(_) => FailReason::Malformed,
        }
    }
}

type R<T> = Result<T, IkeError>;

/// One received message of a known SA, as the exchange handlers see it.
#[derive(Clone, Copy)]
struct Rx<'a> {
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    hdr: HeaderRepr,
    msg: &'a [u8],
}

fn v4(a: SocketAddr) -> Ipv4Addr {
    match a.ip() {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

impl Endpoint {
    pub fn new(cfg: IkeConfig, rng: Box<dyn Random + Send>) -> Endpoint {
        let ra = transaction::RemoteAccess::new(cfg.remote.as_deref());
        Endpoint {
            ra,
            frags: fragments::Reassembler::default(),
            ez: transaction::EzClients::default(),
            cfg,
            rng,
            p1: HashMap::new(),
            pairs: Vec::new(),
            next_conn_id: 1001,
            next_sa_conn: 2001,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            debug: VecDeque::new(),
            syslog: VecDeque::new(),
            debug_isakmp: false,
            debug_ipsec: false,
            counters: Counters::default(),
            #[cfg(test)]
            trace: Vec::new(),
        }
    }

    pub fn config(&self) -> &IkeConfig {
        &self.cfg
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let tx = self.transmits.pop_front()?;
        Some(self.fragment_transmit(tx))
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    pub fn poll_debug(&mut self) -> Option<DebugLine> {
        self.debug.pop_front()
    }
    /// The next system message (`%CRYPTO-…`), produced with or without debugging on.
    pub fn poll_syslog(&mut self) -> Option<crate::ike::SyslogMessage> {
        self.syslog.pop_front()
    }

    /// Runs `f` on the SA `key`, taken out of the table meanwhile (so that `f` can use the
    /// rest of the endpoint), and puts it back unless `f` says it is gone.
    fn with_sa<T>(&mut self, key: [u8; 8], f: impl FnOnce(&mut Self, &mut P1Sa) -> T) -> Option<T> {
        let mut sa = self.p1.remove(&key)?;
        let out = f(self, &mut sa);
        self.p1.insert(key, sa);
        Some(out)
    }

    // ------------------------------------------------------------------ show views

    pub fn isakmp_sas(&self) -> Vec<IsakmpSaInfo> {
        let mut v: Vec<_> = self
            .p1
            .values()
            .map(|sa| IsakmpSaInfo {
                dst: if sa.initiator {
                    v4(sa.remote)
                } else {
                    v4(sa.local)
                },
                src: if sa.initiator {
                    v4(sa.local)
                } else {
                    v4(sa.remote)
                },
                state: sa.state.show(),
                conn_id: sa.conn_id,
                status: if sa.state.is_dead() { "" } else { "ACTIVE" },
                icookie: sa.icookie,
                rcookie: sa.rcookie,
                remote_port: sa.remote.port(),
            })
            .collect();
        v.sort_by_key(|s| s.conn_id);
        v
    }

    // ------------------------------------------------------------------ initiation

    /// Starts negotiation for crypto map entry `map seq`, exactly as interesting traffic
    /// would (`IPsec(sa_request)`). Returns false if no such entry.
    pub fn initiate(&mut self, now: Instant, map: &str, seq: u32) -> bool {
        let Some(idx) = self
            .cfg
            .maps
            .iter()
            .position(|m| m.map == map && m.seq == seq)
        else {
            return false;
        };
        if self.pairs.iter().any(|p| p.map_idx == idx && !p.rekeying) {
            return true;
        }
        self.request(now, idx, None);
        true
    }

    /// Starts negotiation for traffic from `src` to `dst` (an sa_request from the dataplane).
    pub fn sa_request(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let Some(idx) = self.cfg.maps.iter().position(|m| {
            m.local_proxy.contains(&Proxy::host(src)) && m.remote_proxy.contains(&Proxy::host(dst))
        }) else {
            return false;
        };
        let (map, seq) = (self.cfg.maps[idx].map.clone(), self.cfg.maps[idx].seq);
        self.initiate(now, &map, seq)
    }

    /// Quick Mode for map entry `idx` under an established phase 1 with its peer, or queued
    /// on one under way, or a new phase 1 that will run it.
    fn request(&mut self, now: Instant, idx: usize, rekey_of: Option<u32>) {
        if self.map_entry(idx).is_none() || self.ra_is_client_map(idx) {
            return; // a dynamic map's client entry: the client starts its Quick Modes
        }
        if self.ez_defer(now, idx) {
            return; // an Easy VPN tunnel's entry before its Mode Config
        }
        // Already negotiating this entry?
        let busy = self.p1.values().any(|sa| {
            sa.waiting.iter().any(|w| w.0 == idx)
                || sa
                    .qm
                    .values()
                    .any(|q| q.map_idx == idx && q.state.is_initiator_waiting())
        });
        if busy {
            return;
        }
        self.log_sa_request(idx);
        // An established phase 1 with this peer?
        let peer = self.cfg.maps[idx].peer;
        let p1 = self
            .p1
            .iter()
            .filter(|(_, sa)| v4(sa.remote) == peer && !sa.state.is_dead())
            .max_by_key(|(_, sa)| (sa.state.is_established(), sa.conn_id))
            .map(|(k, sa)| (*k, sa.state.is_established()));
        match p1 {
            Some((k, true)) => {
                self.with_sa(k, |ep, sa| ep.start_qm(now, sa, idx, rekey_of));
            }
            Some((k, false)) => {
                if let Some(sa) = self.p1.get_mut(&k) {
                    sa.waiting.push((idx, rekey_of));
                }
            }
            None => self.start_p1(now, idx, rekey_of),
        }
    }

    // ------------------------------------------------------------------ receive

    /// Handles one UDP datagram received on `local` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) {
        let msg = if local.port() == NATT_PORT {
            if data == [0xff] {
                return; // NAT-T keepalive
            }
            if data.len() < 4 || data[..4] != NON_ESP_MARKER {
                self.counters.rx_unexpected += 1; // ESP: not ours
                return;
            }
            &data[4..]
        } else {
            data
        };
        self.handle_message(now, local, remote, msg);
    }

    /// One ISAKMP message (without the non-ESP marker), from a datagram or reassembled
    /// from fragments.
    fn handle_message(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, msg: &[u8]) {
        if msg.len() > MAX_MESSAGE_LEN {
            self.counters.rx_malformed += 1;
            return;
        }
        let hdr = match Header::new_checked(msg)
            .map_err(IkeError::from)
            .and_then(|h| Ok(HeaderRepr::parse(&h)?))
        {
            Ok(h) => h,
            Err(_) => {
                self.counters.rx_malformed += 1;
                return;
            }
        };
        let msg = &msg[..hdr.length as usize];
        if hdr.next_payload == crate::isakmp::fragment::PAYLOAD_FRAGMENT {
            self.on_fragment(now, local, remote, msg);
            return;
        }
        let rx = Rx {
            now,
            local,
            remote,
            hdr,
            msg,
        };
        if self
            .with_sa(hdr.icookie, |ep, sa| ep.on_message(sa, &rx))
            .is_some()
        {
            return;
        }
        let new_p1 = hdr.rcookie == [0; 8]
            && hdr.message_id == 0
            && !hdr.encrypted()
            && matches!(hdr.exchange, ExchangeType::Main | ExchangeType::Aggressive);
        if !new_p1 {
            self.counters.rx_unknown_cookie += 1;
            return;
        }
        self.responder_first(&rx);
    }

    /// A message for an SA we have.
    fn on_message(&mut self, sa: &mut P1Sa, rx: &Rx) {
        let hdr = rx.hdr;
        if sa.state.is_dead() {
            return;
        }
        if sa.rcookie != [0; 8] && hdr.rcookie != sa.rcookie {
            // MM1 retransmission to a responder has a zero rcookie.
            if hdr.rcookie != [0; 8] || sa.initiator {
                self.counters.rx_unknown_cookie += 1;
                return;
            }
        }
        // Exact retransmission of the peer's last message: resend our last reply.
        if hdr.message_id == 0 && sa.last_rx == rx.msg {
            self.counters.rx_retransmissions += 1;
            if let Some(tx) = sa.last_tx.clone() {
                if !sa.initiator || sa.state.is_established() {
                    self.counters.tx_retransmissions += 1;
                    self.transmits.push_back(tx);
                }
            }
            return;
        }
        let res = match hdr.exchange {
            ExchangeType::Main | ExchangeType::Aggressive if hdr.message_id == 0 => {
                self.phase1(sa, rx)
            }
            ExchangeType::QuickMode => self.quick_mode(sa, rx),
            ExchangeType::Informational => self.informational(sa, rx),
            ExchangeType::Transaction => self.transaction(sa, rx),
            _ => Err(IkeError::Unsupported("exchange type")),
        };
        if let Err(e) = res {
            self.on_error(sa, rx.remote, e);
        }
    }

    fn on_error(&mut self, sa: &mut P1Sa, remote: SocketAddr, e: IkeError) {
        match e.blame() {
            Blame::Malformed | Blame::PeerMisbehaved => {
                if matches!(e, IkeError::HashFailed) {
                    self.counters.rx_hash_failed += 1;
                } else {
                    self.counters.rx_malformed += 1;
                }
                sa.errors += 1;
                let (conn, errors) = (sa.conn_id, sa.errors);
                self.syslog(SyslogMessage::crypto(
                    WARNINGS,
                    "IKMP_BAD_MESSAGE",
                    format!(
                        "IKE message from {} failed its sanity check or is malformed",
                        v4(remote)
                    ),
                ));
                self.ik(
                    conn,
                    format!(
                        "incrementing error counter on sa, attempt {errors} of {MAX_ERRORS}: {}",
                        e.notify().ios_name()
                    ),
                );
                if errors >= MAX_ERRORS {
                    // Unreadable under the phase-1 keys before phase 1 is up (undecryptable
                    // or a HASH that does not verify): the keys differ, so the pre-shared
                    // keys do.
                    let keyed = sa.state.keys().is_some() && !sa.state.is_established();
                    let reason = match e {
                        IkeError::Wire(_) | IkeError::HashFailed if keyed => FailReason::AuthFailed,
                        _ => FailReason::Malformed,
                    };
                    self.fail_p1(sa, "too many errors", reason);
                }
            }
            Blame::Unsupported | Blame::LocalPolicy => {
                let conn = sa.conn_id;
                self.ik(conn, format!("{e}"));
                if let IkeError::AuthFailed(reason, why) = e {
                    self.fail_p1(sa, why, reason);
                }
            }
        }
    }

    /// The SA failed or was deleted: it goes dead (and is removed on the next timeout).
    /// Not yet established, it is a failed negotiation, counted as `why`.
    fn fail_p1(&mut self, sa: &mut P1Sa, reason: &str, why: FailReason) {
        let established = sa.state.is_established();
        sa.kill();
        let (conn, peer, remote) = (sa.conn_id, v4(sa.remote), sa.remote);
        self.ik(
            conn,
            format!(
                "deleting SA reason \"{reason}\" state (I) {} (peer {peer})",
                "MM_NO_STATE"
            ),
        );
        if established {
            self.events.push_back(Event::IsakmpSaDown {
                conn_id: conn,
                peer: remote,
            });
        } else {
            self.counters.p1_failed.add(why);
            self.events.push_back(Event::NegotiationFailed {
                peer,
                reason: reason.to_string(),
            });
        }
    }

    // ------------------------------------------------------------------ counts (tests, show)

    /// Number of phase-1 SAs in any state (for tests and show).
    pub fn isakmp_sa_count(&self) -> usize {
        self.p1.len()
    }
    pub fn ipsec_sa_pair_count(&self) -> usize {
        self.pairs.len()
    }
    /// Whether the pair created at `now` for `spi` was an initiator's (tests).
    pub fn pair_created(&self, inbound_spi: u32) -> Option<Instant> {
        self.pairs
            .iter()
            .find(|p| p.inbound == inbound_spi)
            .map(|p| p.created)
    }
    /// The icookie of the SA a pair was negotiated under (tests).
    pub fn pair_p1(&self, inbound_spi: u32) -> Option<[u8; 8]> {
        self.pairs
            .iter()
            .find(|p| p.inbound == inbound_spi)
            .map(|p| p.p1_icookie)
    }
}
