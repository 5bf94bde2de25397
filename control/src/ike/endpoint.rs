//! The sans-IO IKEv1 endpoint: every phase-1 and Quick Mode exchange of one gateway.
//!
//! Inputs: [`Endpoint::handle_datagram`], [`Endpoint::initiate`], [`Endpoint::handle_timeout`],
//! all taking `now`. Outputs are queued: [`Endpoint::poll_transmit`], [`Endpoint::poll_event`],
//! [`Endpoint::poll_debug`], [`Endpoint::poll_timeout`]. No sockets, no clock, randomness via
//! [`Random`].
//!
//! Phase-1 states are the IOS states ([`P1State`]), Quick Mode states likewise ([`QmState`]);
//! each transition consumes the old state and logs `Old State = X New State = Y` exactly as
//! `debug crypto isakmp` does.

use super::config::*;
use super::crypto::*;
use super::types::*;
use crate::isakmp::attr::{self, p1, p2};
use crate::isakmp::*;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

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
/// Encapsulation modes (RFC 2407, RFC 3947, draft alias).
const ENCAP_TUNNEL: u16 = 1;
const ENCAP_TRANSPORT: u16 = 2;
const ENCAP_UDP_TUNNEL: u16 = 3;
const ENCAP_UDP_TRANSPORT: u16 = 4;
const ENCAP_UDP_TUNNEL_DRAFT: u16 = 61443;
const ENCAP_UDP_TRANSPORT_DRAFT: u16 = 61444;
/// Errors tolerated on one SA before it is deleted (IOS: "attempt 1 of 5").
const MAX_ERRORS: u32 = 5;
/// How long an Aggressive Mode initiator waits after AM3 before QM1.
const AM_QM_HOLD: Duration = Duration::from_millis(300);
/// DPD misses before a peer is declared dead.
const DPD_MAX_MISSES: u32 = 5;

/// Phase-1 states, named as IOS names them. The name is the state we are in while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P1State {
    /// Initiator sent MM1, expects MM2.
    IkeIMm1,
    /// Initiator sent MM3, expects MM4.
    IkeIMm3,
    /// Initiator sent MM5, expects MM6.
    IkeIMm5,
    /// Responder sent MM2, expects MM3.
    IkeRMm2,
    /// Responder sent MM4, expects MM5.
    IkeRMm4,
    /// Aggressive initiator sent AM1, expects AM2.
    IkeIAm1,
    /// Aggressive responder sent AM2, expects AM3.
    IkeRAm2,
    /// Authenticated.
    IkeP1Complete,
    /// Failed or deleted; removed on the next timeout.
    IkeDead,
}

impl P1State {
    pub fn ios(self) -> &'static str {
        match self {
            P1State::IkeIMm1 => "IKE_I_MM1",
            P1State::IkeIMm3 => "IKE_I_MM3",
            P1State::IkeIMm5 => "IKE_I_MM5",
            P1State::IkeRMm2 => "IKE_R_MM2",
            P1State::IkeRMm4 => "IKE_R_MM4",
            P1State::IkeIAm1 => "IKE_I_AM1",
            P1State::IkeRAm2 => "IKE_R_AM2",
            P1State::IkeP1Complete => "IKE_P1_COMPLETE",
            P1State::IkeDead => "IKE_DEST_SA",
        }
    }
    /// The `show crypto isakmp sa` state.
    pub fn show(self) -> &'static str {
        match self {
            P1State::IkeIMm1 | P1State::IkeDead => "MM_NO_STATE",
            P1State::IkeIMm3 | P1State::IkeRMm2 => "MM_SA_SETUP",
            P1State::IkeIMm5 | P1State::IkeRMm4 => "MM_KEY_EXCH",
            P1State::IkeIAm1 => "AG_NO_STATE",
            P1State::IkeRAm2 => "AG_INIT_EXCH",
            P1State::IkeP1Complete => "QM_IDLE",
        }
    }
}

/// Quick Mode states (IOS names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QmState {
    /// Initiator sent QM1.
    IkeQmIQm1,
    /// Responder sent QM2.
    IkeQmRQm2,
    IkeQmPhase2Complete,
}

impl QmState {
    pub fn ios(self) -> &'static str {
        match self {
            QmState::IkeQmIQm1 => "IKE_QM_I_QM1",
            QmState::IkeQmRQm2 => "IKE_QM_R_QM2",
            QmState::IkeQmPhase2Complete => "IKE_QM_PHASE2_COMPLETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Negotiated {
    enc: EncAlg,
    hash: HashAlg,
    group: DhGroup,
    lifetime: u32,
}

struct P1Keys {
    skeyid: Secret,
    d: Secret,
    a: Secret,
    ka: Secret,
}

/// A message kept for retransmission: resent unchanged, at doubling intervals.
struct Retx {
    tx: Transmit,
    count: u32,
    next_at: Instant,
    interval: Duration,
}

impl Retx {
    fn new(tx: Transmit, now: Instant, base: Duration) -> Retx {
        Retx {
            tx,
            count: 0,
            next_at: now + base,
            interval: base,
        }
    }
    /// The next retransmission, due now.
    fn fire(&mut self, now: Instant) -> Transmit {
        self.count += 1;
        self.interval *= 2;
        self.next_at = now + self.interval;
        self.tx.clone()
    }
}

#[derive(Default)]
struct NatT {
    peer_rfc3947: bool,
    /// The peer is behind a NAT (its NAT-D did not match what we see).
    remote_behind: bool,
    /// We are behind a NAT.
    local_behind: bool,
    floated: bool,
}

struct Qm {
    state: QmState,
    initiator: bool,
    iv: Vec<u8>,
    map_idx: usize,
    ni: Vec<u8>,
    nr: Vec<u8>,
    dh: Option<DhKeyPair>,
    local_proxy: Proxy,
    remote_proxy: Proxy,
    spi_in: u32,
    /// Initiator: offered (proposal number, transform set index in map) pairs.
    offered: Vec<(u8, usize)>,
    chosen: Option<(TransformSet, u32, u64, u32)>, // set, secs, kb, peer spi
    retx: Option<Retx>,
    last_rx: Vec<u8>,
    last_tx: Option<Transmit>,
    started: Instant,
    rekey_of: Option<u32>,
    peer_ke: Option<Vec<u8>>,
    /// The commit bit was set in this exchange (RFC 2409 §5.5 CONNECTED).
    commit: bool,
}

struct P1Sa {
    conn_id: u32,
    initiator: bool,
    mode: Phase1Mode,
    state: P1State,
    local: SocketAddr,
    remote: SocketAddr,
    icookie: [u8; 8],
    rcookie: [u8; 8],
    neg: Option<Negotiated>,
    psk: Option<Secret>,
    dh: Option<DhKeyPair>,
    gxi: Vec<u8>,
    gxr: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    sai_b: Vec<u8>,
    idi_b: Vec<u8>,
    idr_b: Vec<u8>,
    keys: Option<P1Keys>,
    /// Phase-1 IV while phase 1 runs; afterwards the last phase-1 CBC block.
    iv: Vec<u8>,
    nat: NatT,
    peer_dpd: bool,
    retx: Option<Retx>,
    last_rx: Vec<u8>,
    /// Our answer to `last_rx`, resent when `last_rx` comes again.
    last_tx: Option<Transmit>,
    errors: u32,
    started: Instant,
    expires_at: Option<Instant>,
    rekey_at: Option<Instant>,
    qm: HashMap<u32, Qm>,
    /// Requests (crypto map indices) waiting for phase 1.
    waiting: Vec<(usize, Option<u32>)>,
    dpd_seq: u32,
    dpd_next: Option<Instant>,
    dpd_outstanding: Option<(u32, Instant)>,
    dpd_misses: u32,
    last_peer_activity: Instant,
    next_keepalive: Option<Instant>,
    /// Aggressive Mode initiator: Quick Mode waits until then, so a multi-threaded
    /// responder has processed AM3 before QM1 arrives.
    qm_hold_until: Option<Instant>,
}

/// A pair of installed IPsec SAs.
struct SaPair {
    p1_icookie: [u8; 8],
    map_idx: usize,
    peer: Ipv4Addr,
    peer_port: u16,
    inbound: u32,
    outbound: u32,
    in_conn: u32,
    out_conn: u32,
    transform: TransformSet,
    local_proxy: Proxy,
    remote_proxy: Proxy,
    encap: bool,
    lifetime_secs: u32,
    lifetime_kb: u64,
    created: Instant,
    soft_at: Instant,
    hard_at: Instant,
    rekeying: bool,
    kb_used: u64,
    in_packets: u64,
}

/// The IKEv1 endpoint of one gateway.
pub struct Endpoint {
    cfg: IkeConfig,
    rng: Box<dyn Random + Send>,
    p1: HashMap<[u8; 8], P1Sa>,
    pairs: Vec<SaPair>,
    next_conn_id: u32,
    next_sa_conn: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    debug: VecDeque<DebugLine>,
    /// `debug crypto isakmp`
    pub debug_isakmp: bool,
    /// `debug crypto ipsec`
    pub debug_ipsec: bool,
    pub counters: Counters,
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
}

impl IkeError {
    pub fn blame(&self) -> Blame {
        match self {
            IkeError::Wire(w) => w.blame(),
            IkeError::Peer(_) | IkeError::HashFailed => Blame::PeerMisbehaved,
            IkeError::Unsupported(_) => Blame::Unsupported,
            IkeError::Policy(_) => Blame::LocalPolicy,
        }
    }
    pub fn notify(&self) -> NotifyType {
        match self {
            IkeError::Wire(w) => w.notify(),
            IkeError::Peer(_) => NotifyType::PayloadMalformed,
            IkeError::HashFailed => NotifyType::InvalidHashInformation,
            IkeError::Unsupported(_) => NotifyType::AttributesNotSupported,
            IkeError::Policy(_) => NotifyType::NoProposalChosen,
        }
    }
}

type R<T> = Result<T, IkeError>;

/// One received message of a known SA, as the exchange handlers see it.
#[derive(Clone, Copy)]
struct Rx<'a> {
    now: Instant,
    /// The SA's initiator cookie.
    key: [u8; 8],
    conn: u32,
    local: SocketAddr,
    remote: SocketAddr,
    hdr: HeaderRepr,
    msg: &'a [u8],
}

/// IOS inputs of the phase-1 transitions.
const FROM_PEER_MM: &str = "IKE_MSG_FROM_PEER, IKE_MM_EXCH";
const FROM_PEER_AM: &str = "IKE_MSG_FROM_PEER, IKE_AM_EXCH";
const PROCESS_MM: &str = "IKE_MESG_INTERNAL, IKE_PROCESS_MAIN_MODE";
const PROCESS_COMPLETE: &str = "IKE_MESG_INTERNAL, IKE_PROCESS_COMPLETE";

fn v4(a: SocketAddr) -> Ipv4Addr {
    match a.ip() {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn find(ps: &[Payload], ty: PayloadType) -> Option<&Payload> {
    ps.iter().find(|p| p.payload_type() == ty)
}

/// The body of the KE payload, if there is one (Quick Mode with PFS).
fn ke_of(ps: &[Payload]) -> Option<Vec<u8>> {
    match find(ps, PayloadType::Ke) {
        Some(Payload::Ke(k)) => Some(k.clone()),
        _ => None,
    }
}

/// An SPI of 4 bytes (the caller checked the length).
fn spi_u32(spi: &[u8]) -> u32 {
    u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]])
}

fn id_ipv4(addr: Ipv4Addr) -> IdPayload {
    IdPayload {
        id_type: id_type::IPV4_ADDR,
        protocol: 17,
        port: IKE_PORT,
        data: addr.octets().to_vec(),
    }
}

fn id_proxy(p: &Proxy) -> IdPayload {
    if p.id_type() == 1 {
        IdPayload {
            id_type: id_type::IPV4_ADDR,
            protocol: p.protocol,
            port: p.port,
            data: p.addr.octets().to_vec(),
        }
    } else {
        let mut d = p.addr.octets().to_vec();
        d.extend_from_slice(&p.mask.octets());
        IdPayload {
            id_type: id_type::IPV4_ADDR_SUBNET,
            protocol: p.protocol,
            port: p.port,
            data: d,
        }
    }
}

fn proxy_from_id(id: &IdPayload) -> Option<Proxy> {
    let a = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    match id.id_type {
        id_type::IPV4_ADDR if id.data.len() == 4 => Some(Proxy {
            addr: a(&id.data),
            mask: Ipv4Addr::new(255, 255, 255, 255),
            protocol: id.protocol,
            port: id.port,
        }),
        id_type::IPV4_ADDR_SUBNET if id.data.len() == 8 => Some(Proxy {
            addr: a(&id.data[..4]),
            mask: a(&id.data[4..]),
            protocol: id.protocol,
            port: id.port,
        }),
        _ => None,
    }
}

fn nat_hash(hash: HashAlg, icky: &[u8; 8], rcky: &[u8; 8], addr: SocketAddr) -> Vec<u8> {
    hash.hash(&[icky, rcky, &v4(addr).octets(), &addr.port().to_be_bytes()])
}

/// The datagram for an IKE message, with the non-ESP marker when it uses port 4500.
fn framed(local: SocketAddr, remote: SocketAddr, msg: Vec<u8>) -> Transmit {
    let data = if local.port() == NATT_PORT || remote.port() == NATT_PORT {
        let mut v = NON_ESP_MARKER.to_vec();
        v.extend_from_slice(&msg);
        v
    } else {
        msg
    };
    Transmit {
        local,
        remote,
        data,
    }
}

fn p1_attrs_desc(attrs: &[Attr]) -> Vec<String> {
    let mut out = Vec::new();
    for a in attrs {
        let v = a.as_u64().unwrap_or(0);
        out.push(match a.ty {
            p1::ENCRYPTION => match v {
                5 => "encryption 3DES-CBC".into(),
                7 => "encryption AES-CBC".into(),
                1 => "encryption DES-CBC".into(),
                n => format!("encryption unknown {n}"),
            },
            p1::HASH => match HashAlg::from_code(v as u16) {
                Some(h) => format!("hash {}", h.ios_name()),
                None => format!("hash unknown {v}"),
            },
            p1::AUTH => match v {
                1 => "auth pre-share".into(),
                3 => "auth RSA sig".into(),
                65001 => "auth XAUTHInitPreShared".into(),
                n => format!("auth unknown {n}"),
            },
            p1::GROUP => match v {
                1 => "default group 1".into(),
                n => format!("group {n}"),
            },
            p1::LIFE_TYPE => match v {
                1 => "life type in seconds".into(),
                2 => "life type in kilobytes".into(),
                n => format!("life type {n}"),
            },
            p1::LIFE_DURATION => match &a.value {
                AttrValue::Basic(x) => format!("life duration (basic) of {x}"),
                AttrValue::Var(_) => format!("life duration (VPI) of  {}", a.vpi_string()),
            },
            p1::KEY_LENGTH => format!("keylength of {v}"),
            t => format!("attribute {t} = {v}"),
        });
    }
    out
}

/// Parses a phase-1 transform into what it offers (None if it uses anything unsupported).
fn p1_offer(t: &Transform) -> Option<(EncAlg, HashAlg, u16, DhGroup, u32)> {
    let mut enc = None;
    let mut keylen = None;
    let mut hash = None;
    let mut auth = None;
    let mut group = None;
    let mut life = 86400u64;
    let mut life_type = 0;
    for a in &t.attrs {
        let v = a.as_u64()?;
        match a.ty {
            p1::ENCRYPTION => enc = Some(v),
            p1::KEY_LENGTH => keylen = Some(v),
            p1::HASH => hash = HashAlg::from_code(v as u16),
            p1::AUTH => auth = Some(v as u16),
            p1::GROUP => group = DhGroup::from_id(v as u16),
            p1::LIFE_TYPE => life_type = v,
            p1::LIFE_DURATION if life_type == attr::LIFE_SECONDS as u64 => life = v,
            p1::LIFE_DURATION => {}
            _ => return None,
        }
    }
    let enc = match enc? {
        5 => EncAlg::Des3,
        7 => EncAlg::Aes(keylen.unwrap_or(128) as u16),
        _ => return None,
    };
    if let EncAlg::Aes(b) = enc {
        if ![128, 192, 256].contains(&b) {
            return None;
        }
    }
    Some((enc, hash?, auth?, group?, life.min(u32::MAX as u64) as u32))
}

fn p1_transform(number: u8, p: &IsakmpPolicy) -> Transform {
    let mut attrs = vec![Attr::basic(p1::ENCRYPTION, p.enc.code())];
    if let EncAlg::Aes(bits) = p.enc {
        attrs.push(Attr::basic(p1::KEY_LENGTH, bits));
    }
    attrs.extend([
        Attr::basic(p1::HASH, p.hash.code()),
        Attr::basic(p1::AUTH, 1),
        Attr::basic(p1::GROUP, p.group.id()),
        Attr::basic(p1::LIFE_TYPE, attr::LIFE_SECONDS),
        Attr::number(p1::LIFE_DURATION, p.lifetime as u64),
    ]);
    Transform {
        number,
        id: 1,
        attrs,
    }
}

/// The payloads of AM1 and AM2 (AM1 has no HASH).
struct AmPayloads<'a> {
    sa: &'a SaPayload,
    ke: &'a [u8],
    nonce: &'a [u8],
    id: &'a IdPayload,
    hash: Option<&'a [u8]>,
}

impl<'a> AmPayloads<'a> {
    fn find(ps: &'a [Payload]) -> Option<AmPayloads<'a>> {
        let (
            Some(Payload::Sa(sa)),
            Some(Payload::Ke(ke)),
            Some(Payload::Nonce(nonce)),
            Some(Payload::Id(id)),
        ) = (
            find(ps, PayloadType::Sa),
            find(ps, PayloadType::Ke),
            find(ps, PayloadType::Nonce),
            find(ps, PayloadType::Id),
        )
        else {
            return None;
        };
        let hash = match find(ps, PayloadType::Hash) {
            Some(Payload::Hash(h)) => Some(&h[..]),
            _ => None,
        };
        Some(AmPayloads {
            sa,
            ke,
            nonce,
            id,
            hash,
        })
    }
}

/// The responder's vendor IDs in MM2 and AM2: RFC 3947 if the initiator sent it, DPD.
fn reply_vids(natt: bool) -> Vec<Payload> {
    let mut v = Vec::new();
    if natt {
        v.push(Payload::VendorId(VID_RFC3947.to_vec()));
    }
    v.push(Payload::VendorId(VID_DPD.to_vec()));
    v
}

impl P1Sa {
    /// "I" or "R" in the debug lines.
    fn role(&self) -> &'static str {
        if self.initiator {
            "I"
        } else {
            "R"
        }
    }
    /// Makes our DH key pair and nonce (in that order) and keeps them as g^xi, Ni when we
    /// initiate, g^xr, Nr when we respond.
    fn generate_ke_nonce(&mut self, group: DhGroup, rng: &mut dyn Random) {
        let dh = group.generate(rng);
        let nonce = rng.bytes(20);
        let (gx, n) = if self.initiator {
            (&mut self.gxi, &mut self.ni)
        } else {
            (&mut self.gxr, &mut self.nr)
        };
        *gx = dh.public.clone();
        *n = nonce;
        self.dh = Some(dh);
    }
    /// Keeps the peer's KE and nonce bodies.
    fn set_peer_ke_nonce(&mut self, ke: &[u8], nonce: &[u8]) {
        let (gx, n) = if self.initiator {
            (&mut self.gxr, &mut self.nr)
        } else {
            (&mut self.gxi, &mut self.ni)
        };
        *gx = ke.to_vec();
        *n = nonce.to_vec();
    }
    /// Our KE and NONCE payloads.
    fn own_ke_nonce(&self) -> Vec<Payload> {
        let (gx, n) = if self.initiator {
            (&self.gxi, &self.ni)
        } else {
            (&self.gxr, &self.nr)
        };
        vec![Payload::Ke(gx.clone()), Payload::Nonce(n.clone())]
    }
    /// Our phase-1 ID payload (the address, UDP 500); its body is kept for HASH_I/HASH_R.
    fn own_id(&mut self, local: Ipv4Addr) -> Payload {
        let id = Payload::Id(id_ipv4(local));
        let body = id.body_bytes();
        if self.initiator {
            self.idi_b = body;
        } else {
            self.idr_b = body;
        }
        id
    }
    /// Keeps the body of the peer's phase-1 ID payload.
    fn set_peer_id(&mut self, id: &IdPayload) {
        let body = Payload::Id(id.clone()).body_bytes();
        if self.initiator {
            self.idr_b = body;
        } else {
            self.idi_b = body;
        }
    }
}

impl Endpoint {
    pub fn new(cfg: IkeConfig, rng: Box<dyn Random + Send>) -> Endpoint {
        Endpoint {
            cfg,
            rng,
            p1: HashMap::new(),
            pairs: Vec::new(),
            next_conn_id: 1001,
            next_sa_conn: 2001,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            debug: VecDeque::new(),
            debug_isakmp: false,
            debug_ipsec: false,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &IkeConfig {
        &self.cfg
    }

    /// Replaces the configuration (existing SAs stay).
    pub fn set_config(&mut self, cfg: IkeConfig) {
        self.cfg = cfg;
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    pub fn poll_debug(&mut self) -> Option<DebugLine> {
        self.debug.pop_front()
    }

    fn dbg(&mut self, class: DebugClass, text: String) {
        let on = match class {
            DebugClass::Isakmp => self.debug_isakmp,
            DebugClass::Ipsec => self.debug_ipsec,
        };
        if on && self.debug.len() < 100_000 {
            self.debug.push_back(DebugLine { class, text });
        }
    }
    fn ik(&mut self, conn: u32, text: impl AsRef<str>) {
        if self.debug_isakmp {
            self.dbg(
                DebugClass::Isakmp,
                format!("ISAKMP (0:{conn}): {}", text.as_ref()),
            );
        }
    }
    fn ik_raw(&mut self, text: impl Into<String>) {
        if self.debug_isakmp {
            self.dbg(DebugClass::Isakmp, text.into());
        }
    }
    fn ips(&mut self, text: impl Into<String>) {
        if self.debug_ipsec {
            self.dbg(DebugClass::Ipsec, text.into());
        }
    }
    fn transition(&mut self, conn: u32, input: &str, old: &str, new: &str) {
        if self.debug_isakmp {
            self.ik(conn, format!("Input = {input}"));
            self.ik_raw(format!("Old State = {old}  New State = {new}"));
        }
    }

    /// The earliest time `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut upd = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for sa in self.p1.values() {
            upd(sa.retx.as_ref().map(|r| r.next_at));
            upd(sa.expires_at);
            upd(sa.rekey_at);
            upd(sa.dpd_next);
            upd(sa.dpd_outstanding.map(|x| x.1));
            upd(sa.next_keepalive);
            upd(sa.qm_hold_until);
            if sa.state != P1State::IkeP1Complete {
                upd(Some(sa.started + Duration::from_secs(75)));
            }
            if sa.state == P1State::IkeDead {
                upd(Some(sa.started));
            }
            for q in sa.qm.values() {
                upd(q.retx.as_ref().map(|r| r.next_at));
                upd(Some(q.started + Duration::from_secs(75)));
            }
        }
        for p in &self.pairs {
            upd(Some(if p.rekeying {
                p.hard_at
            } else {
                p.soft_at.min(p.hard_at)
            }));
        }
        t
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
                status: if sa.state == P1State::IkeDead {
                    ""
                } else {
                    "ACTIVE"
                },
                icookie: sa.icookie,
                rcookie: sa.rcookie,
                remote_port: sa.remote.port(),
            })
            .collect();
        v.sort_by_key(|s| s.conn_id);
        v
    }

    pub fn ipsec_sas(&self, now: Instant) -> Vec<IpsecSaInfo> {
        self.pairs
            .iter()
            .map(|p| {
                let m = &self.cfg.maps.get(p.map_idx);
                IpsecSaInfo {
                    map: m.map(|m| m.map.clone()).unwrap_or_default(),
                    seq: m.map(|m| m.seq).unwrap_or(0),
                    interface: m.map(|m| m.interface.clone()).unwrap_or_default(),
                    local: self.cfg.local_addr,
                    remote: p.peer,
                    remote_port: p.peer_port,
                    local_proxy: p.local_proxy,
                    remote_proxy: p.remote_proxy,
                    transform: p.transform.clone(),
                    inbound_spi: p.inbound,
                    outbound_spi: p.outbound,
                    inbound_conn_id: p.in_conn,
                    outbound_conn_id: p.out_conn,
                    udp_encap: p.encap,
                    lifetime_kb: p.lifetime_kb.saturating_sub(p.kb_used),
                    lifetime_secs: p.lifetime_secs,
                    remaining_secs: p.hard_at.saturating_duration_since(now).as_secs(),
                }
            })
            .collect()
    }

    /// Reports kilobytes an SA has carried (from the SA database counters); crossing the
    /// soft kilobyte lifetime starts a rekey, the hard one deletes the SA.
    pub fn note_usage(&mut self, now: Instant, spi: u32, kb: u64) {
        for p in &mut self.pairs {
            if p.inbound == spi || p.outbound == spi {
                p.kb_used = p.kb_used.max(kb);
                if p.kb_used >= p.lifetime_kb * 9 / 10 && !p.rekeying {
                    p.soft_at = now;
                }
                if p.kb_used >= p.lifetime_kb {
                    p.hard_at = now;
                }
            }
        }
    }

    /// Reports the inbound packet count of an SA (SA database counters): traffic from the
    /// peer proves it alive, so DPD stays quiet while packets arrive.
    pub fn note_inbound(&mut self, now: Instant, spi: u32, packets: u64) {
        let mut peer = None;
        for p in &mut self.pairs {
            if p.inbound == spi && packets > p.in_packets {
                p.in_packets = packets;
                peer = Some(p.peer);
            }
        }
        if let Some(peer) = peer {
            for sa in self.p1.values_mut() {
                if v4(sa.remote) == peer && sa.state == P1State::IkeP1Complete {
                    sa.last_peer_activity = now;
                }
            }
        }
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

    fn request(&mut self, now: Instant, idx: usize, rekey_of: Option<u32>) {
        let m = self.cfg.maps[idx].clone();
        // Already negotiating this entry?
        let busy = self.p1.values().any(|sa| {
            sa.waiting.iter().any(|w| w.0 == idx)
                || sa.qm.values().any(|q| {
                    q.map_idx == idx && q.initiator && q.state != QmState::IkeQmPhase2Complete
                })
        });
        if busy {
            return;
        }
        if self.debug_ipsec {
            self.ips("IPsec(sa_request): ,".to_string());
            self.ips(format!(
                "  (key eng. msg.) OUTBOUND local= {}, remote= {},",
                self.cfg.local_addr, m.peer
            ));
            self.ips(format!("  local_proxy= {},", m.local_proxy));
            self.ips(format!("  remote_proxy= {},", m.remote_proxy));
            let ts = m
                .transform_sets
                .first()
                .map(|t| t.ios_name())
                .unwrap_or_default();
            self.ips(format!(
                "  protocol= ESP, transform= {ts} ,\n  lifedur= {}s and {}kb,",
                m.lifetime_secs, m.lifetime_kb
            ));
            self.ips("  spi= 0x0(0), conn_id= 0, keysize= 0, flags= 0x400C".to_string());
        }
        // An established phase 1 with this peer?
        let peer = m.peer;
        let p1 = self
            .p1
            .iter()
            .filter(|(_, sa)| v4(sa.remote) == peer && sa.state != P1State::IkeDead)
            .max_by_key(|(_, sa)| (sa.state == P1State::IkeP1Complete, sa.conn_id))
            .map(|(k, sa)| (*k, sa.state));
        match p1 {
            Some((k, P1State::IkeP1Complete)) => self.start_qm(now, k, idx, rekey_of),
            Some((k, _)) => {
                if let Some(sa) = self.p1.get_mut(&k) {
                    sa.waiting.push((idx, rekey_of));
                }
            }
            None => self.start_p1(now, idx, rekey_of),
        }
    }

    fn new_cookie(&mut self) -> [u8; 8] {
        loop {
            let mut c = [0u8; 8];
            self.rng.fill(&mut c);
            if c != [0; 8] && !self.p1.contains_key(&c) {
                return c;
            }
        }
    }

    fn new_p1(
        &mut self,
        now: Instant,
        initiator: bool,
        mode: Phase1Mode,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> P1Sa {
        let conn_id = self.next_conn_id;
        self.next_conn_id += 1;
        P1Sa {
            conn_id,
            initiator,
            mode,
            state: if mode == Phase1Mode::Main {
                P1State::IkeIMm1
            } else {
                P1State::IkeIAm1
            },
            local,
            remote,
            icookie: [0; 8],
            rcookie: [0; 8],
            neg: None,
            psk: None,
            dh: None,
            gxi: vec![],
            gxr: vec![],
            ni: vec![],
            nr: vec![],
            sai_b: vec![],
            idi_b: vec![],
            idr_b: vec![],
            keys: None,
            iv: vec![],
            nat: NatT::default(),
            peer_dpd: false,
            retx: None,
            last_rx: vec![],
            last_tx: None,
            errors: 0,
            started: now,
            expires_at: None,
            rekey_at: None,
            qm: HashMap::new(),
            waiting: vec![],
            dpd_seq: 0,
            dpd_next: None,
            dpd_outstanding: None,
            dpd_misses: 0,
            last_peer_activity: now,
            next_keepalive: None,
            qm_hold_until: None,
        }
    }

    fn start_p1(&mut self, now: Instant, idx: usize, rekey_of: Option<u32>) {
        let m = self.cfg.maps[idx].clone();
        let local = SocketAddr::new(self.cfg.local_addr.into(), IKE_PORT);
        let remote = SocketAddr::new(m.peer.into(), IKE_PORT);
        let mut sa = self.new_p1(now, true, m.mode, local, remote);
        sa.icookie = self.new_cookie();
        sa.waiting.push((idx, rekey_of));
        let conn = sa.conn_id;
        let Some(psk) = self.cfg.psk_for(m.peer).map(|k| k.key.clone()) else {
            self.ik(conn, format!("No pre-shared key with {}!", m.peer));
            self.events.push_back(Event::NegotiationFailed {
                peer: m.peer,
                reason: "no pre-shared key".into(),
            });
            return;
        };
        sa.psk = Some(psk);
        self.ik_raw("ISAKMP: received ke message (1/1)");
        self.ik_raw(format!(
            "ISAKMP: local port {}, remote port {}",
            IKE_PORT, IKE_PORT
        ));
        let mut policies = self.cfg.sorted_policies();
        if policies.is_empty() {
            self.ik(conn, "no isakmp policy configured");
            return;
        }
        if m.mode == Phase1Mode::Aggressive {
            // One KE payload: only policies with the first policy's group.
            let g = policies[0].group;
            policies.retain(|p| p.group == g);
        }
        let sa_payload = SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: proto::ISAKMP,
                spi: vec![],
                transforms: policies
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p1_transform(i as u8 + 1, p))
                    .collect(),
            }],
        };
        let sa_p = Payload::Sa(sa_payload);
        sa.sai_b = sa_p.body_bytes();
        let vids = [
            Payload::VendorId(VID_RFC3947.to_vec()),
            Payload::VendorId(VID_NATT_DRAFT02N.to_vec()),
            Payload::VendorId(VID_DPD.to_vec()),
        ];
        let (exchange, payloads, new_state) = if m.mode == Phase1Mode::Main {
            let mut ps = vec![sa_p];
            ps.extend(vids);
            (ExchangeType::Main, ps, P1State::IkeIMm1)
        } else {
            sa.generate_ke_nonce(policies[0].group, &mut *self.rng);
            let mut ps = vec![sa_p];
            ps.extend(sa.own_ke_nonce());
            ps.push(sa.own_id(self.cfg.local_addr));
            ps.extend(vids);
            (ExchangeType::Aggressive, ps, P1State::IkeIAm1)
        };
        let input = if m.mode == Phase1Mode::Main {
            "IKE_SA_REQ_MM"
        } else {
            "IKE_SA_REQ_AM"
        };
        self.transition(
            conn,
            &format!("IKE_MSG_FROM_IPSEC, {input}"),
            "IKE_READY",
            new_state.ios(),
        );
        self.ik(
            conn,
            if m.mode == Phase1Mode::Main {
                "beginning Main Mode exchange"
            } else {
                "beginning Aggressive Mode exchange"
            },
        );
        sa.state = new_state;
        let key = sa.icookie;
        self.p1.insert(key, sa);
        let bytes = self.clear_msg(key, exchange, payloads);
        self.send_p1(now, key, bytes, true);
    }

    /// Sends a phase-1 message from the SA's current endpoints; `reliable` arms
    /// retransmission (the bytes are kept and resent unchanged, so the IV does not move).
    fn send_p1(&mut self, now: Instant, key: [u8; 8], msg: Vec<u8>, reliable: bool) {
        let base = self.cfg.retransmit_base;
        let Some(sa) = self.p1.get_mut(&key) else {
            return;
        };
        let tx = framed(sa.local, sa.remote, msg);
        sa.retx = reliable.then(|| Retx::new(tx.clone(), now, base));
        sa.last_tx = Some(tx.clone());
        let (conn, role, st) = (sa.conn_id, sa.role(), sa.state.show());
        self.ik(
            conn,
            format!("sending packet to {} ({role}) {st}", v4(tx.remote)),
        );
        self.transmits.push_back(tx);
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
        let key = hdr.icookie;
        if !self.p1.contains_key(&key) {
            let new_p1 = hdr.rcookie == [0; 8]
                && hdr.message_id == 0
                && !hdr.encrypted()
                && matches!(hdr.exchange, ExchangeType::Main | ExchangeType::Aggressive);
            if !new_p1 {
                self.counters.rx_unknown_cookie += 1;
                return;
            }
            self.responder_first(now, local, remote, hdr, msg);
            return;
        }
        let sa = self.p1.get_mut(&key).expect("checked");
        if sa.state == P1State::IkeDead {
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
        if hdr.message_id == 0 && sa.last_rx == msg {
            self.counters.rx_retransmissions += 1;
            if let Some(tx) = sa.last_tx.clone() {
                if !sa.initiator || sa.state == P1State::IkeP1Complete {
                    self.counters.tx_retransmissions += 1;
                    self.transmits.push_back(tx);
                }
            }
            return;
        }
        let rx = Rx {
            now,
            key,
            conn: sa.conn_id,
            local,
            remote,
            hdr,
            msg,
        };
        let res = match hdr.exchange {
            ExchangeType::Main | ExchangeType::Aggressive if hdr.message_id == 0 => {
                self.phase1(&rx)
            }
            ExchangeType::QuickMode => self.quick_mode(&rx),
            ExchangeType::Informational => self.informational(&rx),
            _ => Err(IkeError::Unsupported("exchange type")),
        };
        if let Err(e) = res {
            self.on_error(now, key, remote, e);
        }
    }

    fn on_error(&mut self, _now: Instant, key: [u8; 8], remote: SocketAddr, e: IkeError) {
        let Some(sa) = self.p1.get_mut(&key) else {
            return;
        };
        match e.blame() {
            Blame::Malformed | Blame::PeerMisbehaved => {
                if matches!(e, IkeError::HashFailed) {
                    self.counters.rx_hash_failed += 1;
                } else {
                    self.counters.rx_malformed += 1;
                }
                sa.errors += 1;
                let (conn, errors) = (sa.conn_id, sa.errors);
                self.ik_raw(format!(
                    "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from {} failed its sanity check or is malformed",
                    v4(remote)
                ));
                self.ik(
                    conn,
                    format!(
                        "incrementing error counter on sa, attempt {errors} of {MAX_ERRORS}: {}",
                        e.notify().ios_name()
                    ),
                );
                if errors >= MAX_ERRORS {
                    self.fail_p1(key, "too many errors");
                }
            }
            Blame::Unsupported | Blame::LocalPolicy => {
                let conn = sa.conn_id;
                self.ik(conn, format!("{e}"));
            }
        }
    }

    fn fail_p1(&mut self, key: [u8; 8], reason: &str) {
        let Some(sa) = self.p1.get_mut(&key) else {
            return;
        };
        let established = sa.state == P1State::IkeP1Complete;
        sa.state = P1State::IkeDead;
        sa.retx = None;
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
            self.counters.p1_failed += 1;
            self.events.push_back(Event::NegotiationFailed {
                peer,
                reason: reason.to_string(),
            });
        }
    }

    /// Decrypts `msg` with `iv`; returns the payloads, the plaintext and the IV after it.
    fn decrypt(
        &mut self,
        key: [u8; 8],
        iv: &[u8],
        hdr: &HeaderRepr,
        msg: &[u8],
    ) -> R<(Vec<Payload>, Vec<u8>, Vec<u8>)> {
        let sa = self.p1.get(&key).expect("exists");
        let (Some(keys), Some(neg)) = (&sa.keys, &sa.neg) else {
            return Err(IkeError::Peer("encrypted message before keys"));
        };
        let body = &msg[HEADER_LEN..];
        let bl = neg.enc.block_len();
        if body.is_empty() || !body.len().is_multiple_of(bl) {
            self.counters.rx_decrypt_failed += 1;
            return Err(WireError::BadCiphertext.into());
        }
        let mut pt = body.to_vec();
        neg.enc.cbc_decrypt(&keys.ka, iv, &mut pt);
        let new_iv = body[body.len() - bl..].to_vec();
        let payloads = parse_chain(hdr.next_payload, &pt, true)?;
        Ok((payloads, pt, new_iv))
    }

    /// Encrypts a payload chain with `iv`; returns the message and the IV after it.
    fn encrypt(
        &self,
        key: [u8; 8],
        iv: &[u8],
        exchange: ExchangeType,
        mid: u32,
        flags: u8,
        payloads: &[Payload],
    ) -> (Vec<u8>, Vec<u8>) {
        let sa = self.p1.get(&key).expect("exists");
        let keys = sa.keys.as_ref().expect("keys");
        let neg = sa.neg.expect("negotiated");
        let bl = neg.enc.block_len();
        let mut pt = Vec::new();
        emit_chain(payloads, &mut pt);
        let pad = (bl - pt.len() % bl) % bl;
        pt.extend(std::iter::repeat_n(0u8, pad));
        neg.enc.cbc_encrypt(&keys.ka, iv, &mut pt);
        let new_iv = pt[pt.len() - bl..].to_vec();
        let mut out = vec![0u8; HEADER_LEN];
        let h = HeaderRepr {
            icookie: sa.icookie,
            rcookie: sa.rcookie,
            next_payload: payloads
                .first()
                .map(|p| p.payload_type().code())
                .unwrap_or(0),
            version: VERSION_1_0,
            exchange,
            flags: flags | flags::ENCRYPTION,
            message_id: mid,
            length: (HEADER_LEN + pt.len()) as u32,
        };
        h.emit(&mut Header::new_unchecked(&mut out[..]));
        out.extend_from_slice(&pt);
        (out, new_iv)
    }

    fn clear_header(&self, key: [u8; 8], exchange: ExchangeType) -> HeaderRepr {
        let sa = &self.p1[&key];
        HeaderRepr {
            icookie: sa.icookie,
            rcookie: sa.rcookie,
            next_payload: 0,
            version: VERSION_1_0,
            exchange,
            flags: 0,
            message_id: 0,
            length: 0,
        }
    }

    fn process_vids(&mut self, key: [u8; 8], ps: &[Payload]) {
        let conn = self.p1[&key].conn_id;
        for p in ps {
            if let Payload::VendorId(v) = p {
                self.ik(conn, "processing vendor id payload");
                let sa = self.p1.get_mut(&key).expect("exists");
                if v[..] == VID_DPD {
                    sa.peer_dpd = true;
                    self.ik(conn, "vendor ID is DPD");
                } else if v[..] == VID_RFC3947 {
                    sa.nat.peer_rfc3947 = true;
                    self.ik(conn, "vendor ID is NAT-T RFC 3947");
                } else if v[..] == VID_NATT_DRAFT02N {
                    self.ik(conn, "vendor ID is NAT-T v2");
                }
            }
        }
    }

    /// One phase-1 transform against one policy, printed as IOS does; what it negotiates if
    /// it matches (and has the group a KE payload already fixed).
    fn check_p1_transform(
        &mut self,
        conn: u32,
        pol: &IsakmpPolicy,
        t: &Transform,
        next: u8,
        group_needed: Option<DhGroup>,
    ) -> Option<Negotiated> {
        self.ik(
            conn,
            format!(
                "Checking ISAKMP transform {} against priority {} policy",
                t.number, pol.priority
            ),
        );
        for line in p1_attrs_desc(&t.attrs) {
            self.ik_raw(format!("ISAKMP:      {line}"));
        }
        let neg = p1_offer(t)
            .filter(|&(enc, hash, auth, group, _)| {
                enc == pol.enc
                    && hash == pol.hash
                    && auth == 1
                    && group == pol.group
                    && group_needed.is_none_or(|g| g == group)
            })
            .map(|(enc, hash, _, group, life)| Negotiated {
                enc,
                hash,
                group,
                lifetime: life.min(pol.lifetime),
            });
        let not = if neg.is_some() { "" } else { "not " };
        self.ik(
            conn,
            format!("atts are {not}acceptable. Next payload is {next}"),
        );
        neg
    }

    /// Responder: the initiator's SA payload checked against every policy in priority
    /// order. Keeps the choice and SAi_b; returns the SA payload of the reply.
    fn choose_p1(
        &mut self,
        key: [u8; 8],
        sap: &SaPayload,
        group_needed: Option<DhGroup>,
    ) -> R<Payload> {
        let conn = self.p1[&key].conn_id;
        self.processing(conn, 0, &["SA"]);
        if let Some(prop) = sap
            .proposals
            .first()
            .filter(|p| p.protocol == proto::ISAKMP)
        {
            for pol in self.cfg.sorted_policies() {
                for (i, t) in prop.transforms.iter().enumerate() {
                    let next = if i + 1 < prop.transforms.len() { 3 } else { 0 };
                    if let Some(neg) = self.check_p1_transform(conn, &pol, t, next, group_needed) {
                        let sa = self.p1.get_mut(&key).expect("exists");
                        sa.sai_b = Payload::Sa(sap.clone()).body_bytes();
                        sa.neg = Some(Negotiated {
                            lifetime: neg.lifetime.max(60),
                            ..neg
                        });
                        return Ok(Payload::Sa(SaPayload {
                            doi: DOI_IPSEC,
                            situation: SIT_IDENTITY_ONLY,
                            proposals: vec![Proposal {
                                number: prop.number,
                                protocol: proto::ISAKMP,
                                spi: vec![],
                                transforms: vec![t.clone()],
                            }],
                        }));
                    }
                }
            }
        }
        Err(IkeError::Policy("no acceptable phase 1 proposal"))
    }

    fn responder_first(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        hdr: HeaderRepr,
        msg: &[u8],
    ) {
        let half_open = self
            .p1
            .values()
            .filter(|s| !s.initiator && s.state != P1State::IkeP1Complete)
            .count();
        if half_open >= self.cfg.half_open_limit {
            self.counters.half_open_dropped += 1;
            return;
        }
        let Ok(m) = Message::parse(msg) else {
            self.counters.rx_malformed += 1;
            return;
        };
        if hdr.exchange == ExchangeType::Aggressive && self.cfg.aggressive_mode_disabled {
            self.counters.rx_unexpected += 1;
            self.ik_raw(format!(
                "ISAKMP: Aggressive Mode from {} refused (crypto isakmp aggressive-mode disable)",
                v4(remote)
            ));
            return;
        }
        let mode = if hdr.exchange == ExchangeType::Main {
            Phase1Mode::Main
        } else {
            Phase1Mode::Aggressive
        };
        let mut sa = self.new_p1(now, false, mode, local, remote);
        sa.icookie = hdr.icookie;
        sa.rcookie = self.new_cookie();
        sa.last_rx = msg.to_vec();
        let conn = sa.conn_id;
        let key = sa.icookie;
        self.p1.insert(key, sa);
        self.ik(
            conn,
            format!(
                "received packet from {} dport {} sport {} (N) NEW SA",
                v4(remote),
                local.port(),
                remote.port()
            ),
        );
        let Some(psk) = self.cfg.psk_for(v4(remote)).map(|k| k.key.clone()) else {
            self.ik(conn, format!("No pre-shared key with {}!", v4(remote)));
            self.drop_p1_silently(key);
            return;
        };
        self.ik(
            conn,
            format!("found peer pre-shared key matching {}", v4(remote)),
        );
        self.p1.get_mut(&key).expect("inserted").psk = Some(psk);
        let r = if mode == Phase1Mode::Main {
            self.r_mm1(now, key, m)
        } else {
            self.r_am1(now, key, m)
        };
        if let Err(e) = r {
            self.ik(conn, format!("{e}"));
            if e.blame() == Blame::LocalPolicy {
                self.ik_raw(
                    "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at "
                        .to_string()
                        + &v4(remote).to_string(),
                );
                self.ik(
                    conn,
                    "phase 1 SA policy not acceptable!".to_string()
                        + &format!(" (local {} remote {})", v4(local), v4(remote)),
                );
                self.send_notify_clear(key, NotifyType::NoProposalChosen);
            }
            self.drop_p1_silently(key);
            self.counters.p1_failed += 1;
            self.events.push_back(Event::NegotiationFailed {
                peer: v4(remote),
                reason: e.to_string(),
            });
        }
    }

    fn drop_p1_silently(&mut self, key: [u8; 8]) {
        self.p1.remove(&key);
    }

    fn send_notify_clear(&mut self, key: [u8; 8], nt: NotifyType) {
        let notify = self.isakmp_notify(key, nt, vec![]);
        let msg = self.clear_msg(key, ExchangeType::Informational, vec![notify]);
        let sa = &self.p1[&key];
        self.transmits.push_back(framed(sa.local, sa.remote, msg));
    }

    /// A notification about the ISAKMP SA itself: its SPI is the two cookies.
    fn isakmp_notify(&self, key: [u8; 8], nt: NotifyType, data: Vec<u8>) -> Payload {
        let sa = &self.p1[&key];
        let mut spi = sa.icookie.to_vec();
        spi.extend_from_slice(&sa.rcookie);
        Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol: proto::ISAKMP,
            notify_type: nt.code(),
            spi,
            data,
        })
    }

    fn r_mm1(&mut self, now: Instant, key: [u8; 8], m: Message) -> R<()> {
        let conn = self.p1[&key].conn_id;
        self.transition(conn, FROM_PEER_MM, "IKE_READY", "IKE_R_MM1");
        let Some(Payload::Sa(sap)) = find(&m.payloads, PayloadType::Sa) else {
            return Err(IkeError::Peer("MM1 without SA"));
        };
        self.process_vids(key, &m.payloads);
        let reply_sa = self.choose_p1(key, sap, None)?;
        let natt = {
            let sa = self.p1.get_mut(&key).expect("exists");
            sa.state = P1State::IkeRMm2;
            sa.nat.peer_rfc3947
        };
        self.transition(conn, PROCESS_MM, "IKE_R_MM1", "IKE_R_MM1");
        let mut ps = vec![reply_sa];
        ps.extend(reply_vids(natt));
        let msg = self.clear_msg(key, ExchangeType::Main, ps);
        self.send_p1(now, key, msg, true);
        self.transition(conn, PROCESS_COMPLETE, "IKE_R_MM1", "IKE_R_MM2");
        Ok(())
    }

    /// Our two NAT-D payloads (the peer's address first), when the peer announced RFC 3947.
    fn nat_d_payloads(&self, key: [u8; 8]) -> Vec<Payload> {
        let sa = &self.p1[&key];
        if !sa.nat.peer_rfc3947 {
            return vec![];
        }
        let h = sa.neg.expect("negotiated").hash;
        vec![
            Payload::NatD {
                hash: nat_hash(h, &sa.icookie, &sa.rcookie, sa.remote),
                draft: false,
            },
            Payload::NatD {
                hash: nat_hash(h, &sa.icookie, &sa.rcookie, sa.local),
                draft: false,
            },
        ]
    }

    /// Processes received NAT-D payloads: the first describes us, the rest the peer.
    fn process_nat_d(&mut self, key: [u8; 8], ps: &[Payload]) {
        let sa = &self.p1[&key];
        let h = sa.neg.expect("negotiated").hash;
        let nds: Vec<&Vec<u8>> = ps
            .iter()
            .filter_map(|p| {
                if let Payload::NatD { hash, .. } = p {
                    Some(hash)
                } else {
                    None
                }
            })
            .collect();
        if nds.is_empty() {
            return;
        }
        let me = nat_hash(h, &sa.icookie, &sa.rcookie, sa.local);
        let them = nat_hash(h, &sa.icookie, &sa.rcookie, sa.remote);
        let local_behind = *nds[0] != me;
        let remote_behind = !nds[1..].iter().any(|x| **x == them);
        let conn = sa.conn_id;
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.nat.local_behind = local_behind;
        sa.nat.remote_behind = remote_behind;
        self.processing(conn, 0, &["NAT-D"]);
        if local_behind || remote_behind {
            self.ik(
                conn,
                format!(
                    "NAT found, {} is behind a NAT",
                    if local_behind {
                        "this end"
                    } else {
                        "the remote peer"
                    }
                ),
            );
        } else {
            self.ik(conn, "NAT not found");
        }
    }

    /// Initiator, before its first message after the NAT-D exchange (MM5, AM3): float to
    /// 4500 when a NAT was detected (RFC 3947 §4).
    fn float_if_nat(&mut self, key: [u8; 8]) {
        let sa = self.p1.get_mut(&key).expect("exists");
        if sa.nat.local_behind || sa.nat.remote_behind {
            sa.local = SocketAddr::new(sa.local.ip(), NATT_PORT);
            sa.remote = SocketAddr::new(sa.remote.ip(), NATT_PORT);
            sa.nat.floated = true;
        }
    }

    /// Responder, on the initiator's authenticated message (MM5, AM3): the initiator may
    /// have floated to 4500; answer where it came from.
    fn follow_float(&mut self, key: [u8; 8], local: SocketAddr, remote: SocketAddr) {
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.local = local;
        sa.remote = remote;
        sa.nat.floated = local.port() == NATT_PORT;
    }

    fn compute_keys(&mut self, key: [u8; 8], peer_ke: &[u8]) -> R<()> {
        let sa = self.p1.get_mut(&key).expect("exists");
        let neg = sa.neg.expect("negotiated");
        let dh = sa.dh.as_ref().ok_or(IkeError::Peer("no DH"))?;
        let gxy = dh.shared(peer_ke).map_err(|_| IkeError::Peer("bad KE"))?;
        let psk = sa.psk.clone().ok_or(IkeError::Policy("no key"))?;
        let skeyid = skeyid_psk(neg.hash, &psk, &sa.ni, &sa.nr);
        let ids = derive_skeyids(neg.hash, &skeyid, &gxy, &sa.icookie, &sa.rcookie);
        let ka = encryption_key(neg.hash, &ids.e, neg.enc.key_len());
        sa.iv = phase1_iv(neg.hash, &sa.gxi, &sa.gxr, neg.enc.block_len());
        sa.keys = Some(P1Keys {
            skeyid,
            d: ids.d,
            a: ids.a,
            ka,
        });
        let conn = sa.conn_id;
        self.ik(conn, "SKEYID state generated");
        Ok(())
    }

    /// HASH_I (`of_initiator`) or HASH_R (RFC 2409 §5): prf(SKEYID, the sender's g^x | the
    /// other g^x | the sender's cookie | the other cookie | SAi_b | the sender's ID_b).
    fn auth_hash(&self, key: [u8; 8], of_initiator: bool) -> Vec<u8> {
        let sa = &self.p1[&key];
        let k = sa.keys.as_ref().expect("keys");
        let [gx, gy, cx, cy, id]: [&[u8]; 5] = if of_initiator {
            [&sa.gxi, &sa.gxr, &sa.icookie, &sa.rcookie, &sa.idi_b]
        } else {
            [&sa.gxr, &sa.gxi, &sa.rcookie, &sa.icookie, &sa.idr_b]
        };
        sa.neg
            .expect("neg")
            .hash
            .prf(&k.skeyid, &[gx, gy, cx, cy, &sa.sai_b, id])
            .to_vec()
    }

    /// The HASH payload we send: HASH_I as initiator, HASH_R as responder.
    fn own_hash(&self, key: [u8; 8]) -> Payload {
        Payload::Hash(self.auth_hash(key, self.p1[&key].initiator))
    }

    /// Checks the peer's HASH_R (we initiated) or HASH_I (we respond).
    fn verify_peer_hash(&mut self, key: [u8; 8], conn: u32, h: &[u8]) -> R<()> {
        self.processing(conn, 0, &["HASH"]);
        if *h != self.auth_hash(key, !self.p1[&key].initiator) {
            return Err(IkeError::HashFailed);
        }
        Ok(())
    }

    /// "processing X payload. message ID = M" for each X.
    fn processing(&mut self, conn: u32, mid: u32, payloads: &[&str]) {
        for p in payloads {
            self.ik(conn, format!("processing {p} payload. message ID = {mid}"));
        }
    }

    fn log_psk_found(&mut self, conn: u32, peer: Ipv4Addr) {
        self.ik(conn, format!("found peer pre-shared key matching {peer}"));
    }

    fn log_authenticated(&mut self, conn: u32, remote: SocketAddr) {
        self.ik(
            conn,
            format!("SA has been authenticated with {}", v4(remote)),
        );
    }

    /// "received packet from A (I|R) STATE", the first line for every message of an SA.
    fn log_received(&mut self, key: [u8; 8], remote: SocketAddr) -> (P1State, u32) {
        let sa = &self.p1[&key];
        let (state, conn, role) = (sa.state, sa.conn_id, sa.role());
        self.ik(
            conn,
            format!(
                "received packet from {} ({role}) {}",
                v4(remote),
                state.show()
            ),
        );
        (state, conn)
    }

    /// An unencrypted phase-1 message from this SA's cookies.
    fn clear_msg(&self, key: [u8; 8], exchange: ExchangeType, payloads: Vec<Payload>) -> Vec<u8> {
        Message {
            header: self.clear_header(key, exchange),
            payloads,
        }
        .to_bytes()
    }

    /// Encrypts a phase-1 message (MM5, MM6, AM3) and moves the phase-1 IV past it.
    fn encrypt_p1(&mut self, key: [u8; 8], exchange: ExchangeType, ps: &[Payload]) -> Vec<u8> {
        let iv = self.p1[&key].iv.clone();
        let (out, new_iv) = self.encrypt(key, &iv, exchange, 0, 0, ps);
        self.p1.get_mut(&key).expect("exists").iv = new_iv;
        out
    }

    /// Decrypts a phase-1 message; the IV after it is returned, not applied, so a message
    /// that fails verification does not move the IV.
    fn decrypt_p1(
        &mut self,
        key: [u8; 8],
        hdr: &HeaderRepr,
        msg: &[u8],
    ) -> R<(Vec<Payload>, Vec<u8>)> {
        let iv = self.p1[&key].iv.clone();
        let (ps, _pt, new_iv) = self.decrypt(key, &iv, hdr, msg)?;
        Ok((ps, new_iv))
    }

    /// MM3 (responder) / MM4 (initiator): the peer's KE and nonce, then SKEYID. The responder
    /// makes its own key pair now, in the agreed group; the initiator made it at MM2.
    /// Returns the message's payloads.
    fn mm_key_exchange(&mut self, rx: &Rx, (old, new): (&str, &str)) -> R<Vec<Payload>> {
        let (key, conn) = (rx.key, rx.conn);
        let m = Message::parse(rx.msg)?;
        self.transition(conn, FROM_PEER_MM, old, new);
        let (Some(Payload::Ke(ke)), Some(Payload::Nonce(nonce))) = (
            find(&m.payloads, PayloadType::Ke),
            find(&m.payloads, PayloadType::Nonce),
        ) else {
            return Err(IkeError::Peer(if self.p1[&key].initiator {
                "MM4 without KE/NONCE"
            } else {
                "MM3 without KE/NONCE"
            }));
        };
        self.processing(conn, 0, &["KE", "NONCE"]);
        let sa = self.p1.get_mut(&key).expect("exists");
        if !sa.initiator {
            let group = sa.neg.expect("neg").group;
            if ke.len() != group.len() {
                return Err(IkeError::Peer("KE length"));
            }
            sa.generate_ke_nonce(group, &mut *self.rng);
        }
        sa.set_peer_ke_nonce(ke, nonce);
        self.log_psk_found(conn, v4(rx.remote));
        self.compute_keys(key, ke)?;
        Ok(m.payloads)
    }

    /// MM3 (initiator) / MM4 (responder): our KE, nonce and NAT-D, in the clear.
    fn send_ke_nonce(&mut self, now: Instant, key: [u8; 8]) {
        let mut ps = self.p1[&key].own_ke_nonce();
        ps.extend(self.nat_d_payloads(key));
        let out = self.clear_msg(key, ExchangeType::Main, ps);
        self.send_p1(now, key, out, true);
    }

    /// Initiator: the responder's choice (its first transform) must match one of our
    /// policies; checked and printed as IOS does.
    fn accept_p1_choice(&mut self, conn: u32, sap: &SaPayload) -> R<Negotiated> {
        let t = sap
            .proposals
            .first()
            .and_then(|p| p.transforms.first())
            .ok_or(IkeError::Peer("empty SA"))?;
        for pol in self.cfg.sorted_policies() {
            if let Some(neg) = self.check_p1_transform(conn, &pol, t, 0, None) {
                return Ok(neg);
            }
        }
        Err(IkeError::Policy(
            "responder chose a transform we did not offer",
        ))
    }

    /// A phase-1 message (Main or Aggressive Mode) for the state the SA waits in.
    fn phase1(&mut self, rx: &Rx) -> R<()> {
        let (state, _) = self.log_received(rx.key, rx.remote);
        match (rx.hdr.exchange, state) {
            (ExchangeType::Main, P1State::IkeIMm1) => self.i_mm2(rx),
            (ExchangeType::Main, P1State::IkeRMm2) => self.r_mm3(rx),
            (ExchangeType::Main, P1State::IkeIMm3) => self.i_mm4(rx),
            (ExchangeType::Main, P1State::IkeRMm4) => self.r_mm5(rx),
            (ExchangeType::Main, P1State::IkeIMm5) => self.i_mm6(rx),
            (ExchangeType::Aggressive, P1State::IkeIAm1) => self.i_am2(rx),
            (ExchangeType::Aggressive, P1State::IkeRAm2) => self.r_am3(rx),
            _ => {
                self.counters.rx_unexpected += 1;
                Ok(())
            }
        }
    }

    /// Initiator, MM2 → MM3: the responder's choice; our KE and nonce.
    fn i_mm2(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let (hdr, msg) = (rx.hdr, rx.msg);
        let m = Message::parse(msg)?;
        self.transition(conn, FROM_PEER_MM, "IKE_I_MM1", "IKE_I_MM2");
        let Some(Payload::Sa(sap)) = find(&m.payloads, PayloadType::Sa) else {
            return Err(IkeError::Peer("MM2 without SA"));
        };
        self.processing(conn, 0, &["SA"]);
        self.log_psk_found(conn, v4(remote));
        let neg = self.accept_p1_choice(conn, sap)?;
        self.process_vids(key, &m.payloads);
        self.transition(conn, PROCESS_MM, "IKE_I_MM2", "IKE_I_MM2");
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.rcookie = hdr.rcookie;
        sa.neg = Some(neg);
        sa.generate_ke_nonce(neg.group, &mut *self.rng);
        sa.last_rx = msg.to_vec();
        sa.state = P1State::IkeIMm3;
        self.send_ke_nonce(now, key);
        self.transition(conn, PROCESS_COMPLETE, "IKE_I_MM2", "IKE_I_MM3");
        Ok(())
    }

    /// Responder, MM3 → MM4: KE and nonce both ways, SKEYID, NAT-D.
    fn r_mm3(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn) = (rx.now, rx.key, rx.conn);
        let ps = self.mm_key_exchange(rx, ("IKE_R_MM2", "IKE_R_MM3"))?;
        self.process_nat_d(key, &ps);
        self.process_vids(key, &ps);
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.last_rx = rx.msg.to_vec();
        sa.state = P1State::IkeRMm4;
        self.transition(conn, PROCESS_MM, "IKE_R_MM3", "IKE_R_MM3");
        self.send_ke_nonce(now, key);
        self.transition(conn, PROCESS_COMPLETE, "IKE_R_MM3", "IKE_R_MM4");
        Ok(())
    }

    /// Initiator, MM4 → MM5: SKEYID, NAT-D (float to 4500), our encrypted ID and HASH_I.
    fn i_mm4(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let ps = self.mm_key_exchange(rx, ("IKE_I_MM3", "IKE_I_MM4"))?;
        self.process_vids(key, &ps);
        self.process_nat_d(key, &ps);
        self.transition(conn, FROM_PEER_MM, "IKE_I_MM4", "IKE_I_MM4");
        self.float_if_nat(key);
        self.ik(
            conn,
            "SA is doing pre-shared key authentication using id type ID_IPV4_ADDR",
        );
        let first = !self.p1.values().any(|s| {
            s.icookie != key && v4(s.remote) == v4(remote) && s.state == P1State::IkeP1Complete
        });
        let sa = self.p1.get_mut(&key).expect("exists");
        let id = sa.own_id(self.cfg.local_addr);
        sa.last_rx = rx.msg.to_vec();
        sa.state = P1State::IkeIMm5;
        let mut ps = vec![id, self.own_hash(key)];
        if first {
            ps.push(self.isakmp_notify(key, NotifyType::InitialContact, vec![]));
        }
        let out = self.encrypt_p1(key, ExchangeType::Main, &ps);
        self.send_p1(now, key, out, true);
        self.transition(conn, PROCESS_COMPLETE, "IKE_I_MM4", "IKE_I_MM5");
        Ok(())
    }

    /// MM5 (responder) / MM6 (initiator): the peer's encrypted ID and HASH, verified.
    /// Returns the payloads and the IV after the message, for the caller to apply.
    fn mm_peer_auth(&mut self, rx: &Rx, (old, new): (&str, &str)) -> R<(Vec<Payload>, Vec<u8>)> {
        let (key, conn, hdr, msg) = (rx.key, rx.conn, rx.hdr, rx.msg);
        let (unencrypted, missing) = if self.p1[&key].initiator {
            // MM6 in the clear is likely an unprotected error notify; counted.
            ("MM6 not encrypted", "MM6 without ID/HASH")
        } else {
            ("MM5 not encrypted", "MM5 without ID/HASH")
        };
        if !hdr.encrypted() {
            return Err(IkeError::Peer(unencrypted));
        }
        let (ps, new_iv) = self.decrypt_p1(key, &hdr, msg)?;
        let (Some(Payload::Id(id)), Some(Payload::Hash(h))) =
            (find(&ps, PayloadType::Id), find(&ps, PayloadType::Hash))
        else {
            return Err(IkeError::Peer(missing));
        };
        self.transition(conn, FROM_PEER_MM, old, new);
        self.processing(conn, 0, &["ID"]);
        self.p1.get_mut(&key).expect("exists").set_peer_id(id);
        self.verify_peer_hash(key, conn, h)?;
        Ok((ps, new_iv))
    }

    /// Responder, MM5 → MM6: the initiator is authenticated; our ID and HASH_R.
    fn r_mm5(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, local) = (rx.now, rx.key, rx.conn, rx.local);
        let (remote, msg) = (rx.remote, rx.msg);
        let (ps, new_iv) = self.mm_peer_auth(rx, ("IKE_R_MM4", "IKE_R_MM5"))?;
        self.process_initial_contact(now, key, &ps);
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.iv = new_iv;
        sa.last_rx = msg.to_vec();
        self.follow_float(key, local, remote);
        self.log_authenticated(conn, remote);
        let id = self
            .p1
            .get_mut(&key)
            .expect("exists")
            .own_id(self.cfg.local_addr);
        let ps = vec![id, self.own_hash(key)];
        let out = self.encrypt_p1(key, ExchangeType::Main, &ps);
        self.send_p1(now, key, out, false);
        self.enter_p1_complete(now, key, conn, "IKE_R_MM5");
        Ok(())
    }

    /// Initiator, MM6: the responder is authenticated.
    fn i_mm6(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let msg = rx.msg;
        let (_, new_iv) = self.mm_peer_auth(rx, ("IKE_I_MM5", "IKE_I_MM6"))?;
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.iv = new_iv;
        sa.last_rx = msg.to_vec();
        sa.retx = None;
        // MM6 is answered by nothing: a copy of it must not bring MM5 again.
        sa.last_tx = None;
        self.log_authenticated(conn, remote);
        self.enter_p1_complete(now, key, conn, "IKE_I_MM6");
        Ok(())
    }

    /// The last phase-1 transition, from IOS state `from`.
    fn enter_p1_complete(&mut self, now: Instant, key: [u8; 8], conn: u32, from: &str) {
        self.transition(conn, PROCESS_COMPLETE, from, "IKE_P1_COMPLETE");
        self.p1_complete(now, key);
    }

    /// INITIAL-CONTACT: the peer rebooted; forget everything else we had with it.
    fn process_initial_contact(&mut self, now: Instant, key: [u8; 8], ps: &[Payload]) {
        let ic = ps.iter().any(|p| matches!(p, Payload::Notify(n) if n.notify_type == NotifyType::InitialContact.code()));
        if !ic {
            return;
        }
        let peer = v4(self.p1[&key].remote);
        let conn = self.p1[&key].conn_id;
        self.ik(conn, format!("received INITIAL_CONTACT from {peer}"));
        let old: Vec<[u8; 8]> = self
            .p1
            .iter()
            .filter(|(k, s)| {
                **k != key && v4(s.remote) == peer && s.state == P1State::IkeP1Complete
            })
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.fail_p1(k, "INITIAL_CONTACT");
        }
        self.remove_peer_pairs(now, peer);
    }

    /// Removes every IPsec SA pair with `peer`, without telling it (it rebooted or died).
    fn remove_peer_pairs(&mut self, now: Instant, peer: Ipv4Addr) {
        let idxs: Vec<usize> = (0..self.pairs.len())
            .filter(|&i| self.pairs[i].peer == peer)
            .collect();
        for i in idxs.into_iter().rev() {
            self.remove_pair(now, i, false);
        }
    }

    /// DPD: sends the next R-U-THERE and waits `retry` for its ACK.
    fn send_r_u_there(&mut self, now: Instant, key: [u8; 8], retry: Duration, again: bool) {
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.dpd_seq = sa.dpd_seq.wrapping_add(1);
        let seq = sa.dpd_seq;
        sa.dpd_outstanding = Some((seq, now + retry));
        let (conn, peer) = (sa.conn_id, v4(sa.remote));
        let again = if again { " (retry)" } else { "" };
        self.ik(
            conn,
            format!("DPD/R_U_THERE sent to {peer}, sequence {seq:#x}{again}"),
        );
        self.send_dpd(now, key, NotifyType::RUThere, seq);
    }

    fn p1_complete(&mut self, now: Instant, key: [u8; 8]) {
        let dpd = self.cfg.dpd;
        let nat_ka = self.cfg.nat_keepalive;
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.state = P1State::IkeP1Complete;
        sa.retx = None;
        let neg = sa.neg.expect("neg");
        sa.expires_at = Some(now + Duration::from_secs(neg.lifetime as u64));
        if sa.initiator {
            sa.rekey_at = Some(now + Duration::from_secs(neg.lifetime as u64 * 9 / 10));
        }
        sa.last_peer_activity = now;
        if let (Some((interval, _)), true) = (dpd, sa.peer_dpd) {
            sa.dpd_next = Some(now + interval);
        }
        if sa.nat.local_behind {
            sa.next_keepalive = Some(now + nat_ka);
        }
        sa.dh = None;
        self.counters.p1_established += 1;
        let ev = Event::IsakmpSaUp {
            conn_id: sa.conn_id,
            peer: sa.remote,
            icookie: sa.icookie,
            rcookie: sa.rcookie,
            enc: neg.enc,
            enc_key: sa.keys.as_ref().expect("keys").ka.clone(),
        };
        self.events.push_back(ev);
        if sa.initiator && sa.mode == Phase1Mode::Aggressive && !sa.waiting.is_empty() {
            sa.qm_hold_until = Some(now + AM_QM_HOLD);
            return;
        }
        let waiting = std::mem::take(&mut sa.waiting);
        for (idx, rekey_of) in waiting {
            self.start_qm(now, key, idx, rekey_of);
        }
    }

    // ------------------------------------------------------------------ aggressive mode

    fn r_am1(&mut self, now: Instant, key: [u8; 8], m: Message) -> R<()> {
        let conn = self.p1[&key].conn_id;
        self.transition(conn, FROM_PEER_AM, "IKE_READY", "IKE_R_AM1");
        let Some(AmPayloads {
            sa: sap,
            ke,
            nonce: ni,
            id: idi,
            ..
        }) = AmPayloads::find(&m.payloads)
        else {
            return Err(IkeError::Peer("AM1 missing payloads"));
        };
        self.process_vids(key, &m.payloads);
        // The group is fixed by the KE the initiator sent.
        let group = [
            DhGroup::Modp768,
            DhGroup::Modp1024,
            DhGroup::Modp1536,
            DhGroup::Modp2048,
            DhGroup::Modp3072,
            DhGroup::Modp4096,
        ]
        .into_iter()
        .find(|g| g.len() == ke.len());
        let reply_sa = self.choose_p1(key, sap, group)?;
        self.processing(conn, 0, &["KE", "NONCE", "ID"]);
        let sa = self.p1.get_mut(&key).expect("exists");
        let group = sa.neg.expect("neg").group;
        sa.generate_ke_nonce(group, &mut *self.rng);
        sa.set_peer_ke_nonce(ke, ni);
        sa.set_peer_id(idi);
        let id = sa.own_id(self.cfg.local_addr);
        self.compute_keys(key, ke)?;
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.state = P1State::IkeRAm2;
        let natt = sa.nat.peer_rfc3947;
        let mut ps = vec![reply_sa];
        ps.extend(sa.own_ke_nonce());
        ps.push(id);
        ps.push(self.own_hash(key));
        ps.extend(reply_vids(natt));
        ps.extend(self.nat_d_payloads(key));
        let out = self.clear_msg(key, ExchangeType::Aggressive, ps);
        self.send_p1(now, key, out, true);
        self.transition(conn, PROCESS_COMPLETE, "IKE_R_AM1", "IKE_R_AM2");
        Ok(())
    }

    /// Initiator, AM2 → AM3: the responder's choice, KE, nonce, ID and HASH_R; our HASH_I.
    fn i_am2(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let (hdr, msg) = (rx.hdr, rx.msg);
        let m = Message::parse(msg)?;
        self.transition(conn, FROM_PEER_AM, "IKE_I_AM1", "IKE_I_AM2");
        let Some(AmPayloads {
            sa: sap,
            ke,
            nonce: nr,
            id: idr,
            hash: Some(h),
        }) = AmPayloads::find(&m.payloads)
        else {
            return Err(IkeError::Peer("AM2 missing payloads"));
        };
        self.processing(conn, 0, &["SA"]);
        let neg = self.accept_p1_choice(conn, sap)?;
        self.process_vids(key, &m.payloads);
        let sa = self.p1.get_mut(&key).expect("exists");
        sa.rcookie = hdr.rcookie;
        sa.neg = Some(neg);
        sa.set_peer_ke_nonce(ke, nr);
        sa.set_peer_id(idr);
        self.processing(conn, 0, &["KE", "NONCE", "ID"]);
        self.compute_keys(key, ke)?;
        self.verify_peer_hash(key, conn, h)?;
        self.process_nat_d(key, &m.payloads);
        self.log_authenticated(conn, remote);
        self.float_if_nat(key);
        let mut ps = vec![self.own_hash(key)];
        ps.extend(self.nat_d_payloads(key));
        // AM3 is encrypted (as IOS and strongSwan send it); the last phase-1 block
        // is then its last ciphertext block.
        let out = self.encrypt_p1(key, ExchangeType::Aggressive, &ps);
        self.p1.get_mut(&key).expect("exists").last_rx = msg.to_vec();
        self.send_p1(now, key, out, false);
        self.enter_p1_complete(now, key, conn, "IKE_I_AM2");
        Ok(())
    }

    /// Responder, AM3: the initiator's HASH_I (encrypted or, from some peers, in the clear).
    fn r_am3(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, local) = (rx.now, rx.key, rx.conn, rx.local);
        let (remote, hdr, msg) = (rx.remote, rx.hdr, rx.msg);
        let (ps, new_iv) = if hdr.encrypted() {
            let (ps, niv) = self.decrypt_p1(key, &hdr, msg)?;
            (ps, Some(niv))
        } else {
            (Message::parse(msg)?.payloads, None)
        };
        self.transition(conn, FROM_PEER_AM, "IKE_R_AM2", "IKE_R_AM3");
        let Some(Payload::Hash(h)) = find(&ps, PayloadType::Hash) else {
            return Err(IkeError::Peer("AM3 without HASH"));
        };
        self.verify_peer_hash(key, conn, h)?;
        self.process_nat_d(key, &ps);
        self.process_initial_contact(now, key, &ps);
        let sa = self.p1.get_mut(&key).expect("exists");
        if let Some(iv) = new_iv {
            sa.iv = iv;
        }
        sa.last_rx = msg.to_vec();
        // AM3 is answered by nothing: a copy of it must not bring AM2 again.
        sa.last_tx = None;
        self.follow_float(key, local, remote);
        self.log_authenticated(conn, remote);
        self.enter_p1_complete(now, key, conn, "IKE_R_AM3");
        Ok(())
    }

    // ------------------------------------------------------------------ quick mode

    fn new_spi(&mut self) -> u32 {
        loop {
            let s = self.rng.u32();
            if s >= 256 && !self.pairs.iter().any(|p| p.inbound == s) {
                return s;
            }
        }
    }

    /// HASH(1) (`ni` None; also the informational HASH) or HASH(2) (`ni` the initiator's
    /// nonce): prf(SKEYID_a, M-ID | [Ni_b |] rest).
    fn qm_hash(&self, key: [u8; 8], mid: u32, ni: Option<&[u8]>, rest: &[u8]) -> Vec<u8> {
        let sa = &self.p1[&key];
        let mid = mid.to_be_bytes();
        let parts: &[&[u8]] = match ni {
            None => &[&mid, rest],
            Some(ni) => &[&mid, ni, rest],
        };
        let a = &sa.keys.as_ref().expect("keys").a;
        sa.neg.expect("neg").hash.prf(a, parts).to_vec()
    }

    /// HASH(3): prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
    fn qm_hash3(&self, key: [u8; 8], mid: u32) -> Vec<u8> {
        let sa = &self.p1[&key];
        let q = &sa.qm[&mid];
        let a = &sa.keys.as_ref().expect("keys").a;
        let parts: &[&[u8]] = &[&[0u8], &mid.to_be_bytes(), &q.ni, &q.nr];
        sa.neg.expect("neg").hash.prf(a, parts).to_vec()
    }

    /// Encapsulation mode attribute: tunnel/transport, UDP-encapsulated after NAT-T floated.
    fn encap_mode(&self, key: [u8; 8], transport: bool) -> u16 {
        match (self.p1[&key].nat.floated, transport) {
            (false, false) => ENCAP_TUNNEL,
            (false, true) => ENCAP_TRANSPORT,
            (true, false) => ENCAP_UDP_TUNNEL,
            (true, true) => ENCAP_UDP_TRANSPORT,
        }
    }

    fn qm_transform(
        &self,
        number: u8,
        ts: &TransformSet,
        m: &CryptoMapEntry,
        encap: u16,
    ) -> Transform {
        let mut attrs = vec![
            Attr::basic(p2::LIFE_TYPE, attr::LIFE_SECONDS),
            Attr::number(p2::LIFE_DURATION, m.lifetime_secs as u64),
            Attr::basic(p2::LIFE_TYPE, attr::LIFE_KILOBYTES),
            Attr::number(p2::LIFE_DURATION, m.lifetime_kb),
            Attr::basic(p2::ENCAPSULATION, encap),
        ];
        if let Some(a) = ts.auth {
            attrs.push(Attr::basic(p2::AUTH_ALG, a.code()));
        }
        if let Some(g) = m.pfs {
            attrs.push(Attr::basic(p2::GROUP, g.id()));
        }
        if let EspEnc::Aes(bits) | EspEnc::Gcm(bits) = ts.enc {
            attrs.push(Attr::basic(p2::KEY_LENGTH, bits));
        }
        Transform {
            number,
            id: ts.enc.transform_id(),
            attrs,
        }
    }

    fn start_qm(&mut self, now: Instant, key: [u8; 8], idx: usize, rekey_of: Option<u32>) {
        let m = self.cfg.maps[idx].clone();
        let mid = loop {
            let x = self.rng.u32();
            if x != 0 && !self.p1[&key].qm.contains_key(&x) {
                break x;
            }
        };
        let conn = self.p1[&key].conn_id;
        let spi_in = self.new_spi();
        let ni = self.rng.bytes(20);
        let dh = m.pfs.map(|g| g.generate(&mut *self.rng));
        // One proposal per transform set (IOS sends each set as its own proposal).
        let mut proposals = Vec::new();
        let mut offered = Vec::new();
        for (i, ts) in m.transform_sets.iter().enumerate() {
            let n = i as u8 + 1;
            proposals.push(Proposal {
                number: n,
                protocol: proto::ESP,
                spi: spi_in.to_be_bytes().to_vec(),
                transforms: vec![self.qm_transform(1, ts, &m, self.encap_mode(key, ts.transport))],
            });
            offered.push((n, i));
        }
        let idci = Payload::Id(id_proxy(&m.local_proxy));
        let idcr = Payload::Id(id_proxy(&m.remote_proxy));
        let mut rest = vec![
            Payload::Sa(SaPayload {
                doi: DOI_IPSEC,
                situation: SIT_IDENTITY_ONLY,
                proposals,
            }),
            Payload::Nonce(ni.clone()),
        ];
        if let Some(dh) = &dh {
            rest.push(Payload::Ke(dh.public.clone()));
        }
        rest.push(idci.clone());
        rest.push(idcr.clone());
        let mut rb = Vec::new();
        emit_chain(&rest, &mut rb);
        let h1 = self.qm_hash(key, mid, None, &rb);
        let mut ps = vec![Payload::Hash(h1)];
        ps.extend(rest);
        let sa = &self.p1[&key];
        let neg = sa.neg.expect("neg");
        let iv = phase2_iv(neg.hash, &sa.iv, mid, neg.enc.block_len());
        let commit = if self.cfg.qm_commit_bit {
            flags::COMMIT
        } else {
            0
        };
        let (out, new_iv) = self.encrypt(key, &iv, ExchangeType::QuickMode, mid, commit, &ps);
        let base = self.cfg.retransmit_base;
        let sa = self.p1.get_mut(&key).expect("exists");
        let tx = framed(sa.local, sa.remote, out);
        let remote = tx.remote;
        sa.qm.insert(
            mid,
            Qm {
                state: QmState::IkeQmIQm1,
                initiator: true,
                iv: new_iv,
                map_idx: idx,
                ni,
                nr: vec![],
                dh,
                local_proxy: m.local_proxy,
                remote_proxy: m.remote_proxy,
                spi_in,
                offered,
                chosen: None,
                retx: Some(Retx::new(tx.clone(), now, base)),
                last_rx: vec![],
                last_tx: None,
                started: now,
                rekey_of,
                peer_ke: None,
                commit: false,
            },
        );
        self.ik(
            conn,
            format!("beginning Quick Mode exchange, M-ID of {mid}"),
        );
        self.ik(
            conn,
            format!("sending packet to {} (I) QM_IDLE", v4(remote)),
        );
        self.ik(
            conn,
            format!("Node {mid}, Input = IKE_MESG_INTERNAL, IKE_INIT_QM"),
        );
        self.ik_raw("Old State = IKE_QM_READY  New State = IKE_QM_I_QM1");
        self.transmits.push_back(tx);
    }

    fn quick_mode(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let (hdr, msg) = (rx.hdr, rx.msg);
        let mid = hdr.message_id;
        let state = self.p1[&key].state;
        if state != P1State::IkeP1Complete || mid == 0 || !hdr.encrypted() {
            self.counters.rx_unexpected += 1;
            return Ok(());
        }
        self.p1.get_mut(&key).expect("exists").last_peer_activity = now;
        // Retransmitted QM message: resend our last answer.
        if let Some(q) = self.p1[&key].qm.get(&mid) {
            if q.last_rx == msg {
                self.counters.rx_retransmissions += 1;
                if let Some(tx) = q.last_tx.clone() {
                    self.transmits.push_back(tx);
                }
                return Ok(());
            }
        }
        let rs = if self.p1[&key].initiator { "I" } else { "R" };
        self.ik(
            conn,
            format!("received packet from {} ({rs}) QM_IDLE", v4(remote)),
        );
        let existing = self.p1[&key].qm.get(&mid).map(|q| (q.state, q.iv.clone()));
        match existing {
            None => {
                let sa = &self.p1[&key];
                let neg = sa.neg.expect("neg");
                let iv = phase2_iv(neg.hash, &sa.iv, mid, neg.enc.block_len());
                let (ps, pt, new_iv) = self.decrypt(key, &iv, &hdr, msg)?;
                self.r_qm1(rx, ps, pt, new_iv)
            }
            Some((QmState::IkeQmIQm1, iv)) => {
                let (ps, pt, new_iv) = self.decrypt(key, &iv, &hdr, msg)?;
                self.i_qm2(rx, ps, pt, new_iv)?;
                // A retransmitted QM2 (our QM3 was lost) gets QM3 again.
                if let Some(q) = self.p1.get_mut(&key).and_then(|s| s.qm.get_mut(&mid)) {
                    q.last_rx = msg.to_vec();
                }
                Ok(())
            }
            Some((QmState::IkeQmRQm2, iv)) => {
                let (ps, _pt, _new_iv) = self.decrypt(key, &iv, &hdr, msg)?;
                let Some(Payload::Hash(h)) = ps.first() else {
                    return Err(IkeError::Peer("QM3 without HASH"));
                };
                self.processing(conn, mid, &["HASH"]);
                if *h != self.qm_hash3(key, mid) {
                    return Err(IkeError::HashFailed);
                }
                self.ik(
                    conn,
                    format!("Node {mid}, Input = IKE_MSG_FROM_PEER, IKE_QM_EXCH"),
                );
                self.ik_raw("Old State = IKE_QM_R_QM2  New State = IKE_QM_PHASE2_COMPLETE");
                self.install_qm(now, key, mid);
                let q = &self.p1[&key].qm[&mid];
                if q.commit {
                    let spi = q.spi_in.to_be_bytes().to_vec();
                    self.ik(
                        conn,
                        format!("Node {mid}: commit bit set, sending CONNECTED"),
                    );
                    self.send_info_notify(now, key, NotifyType::Connected, proto::ESP, spi);
                }
                Ok(())
            }
            Some((QmState::IkeQmPhase2Complete, _)) => {
                self.counters.rx_unexpected += 1;
                Ok(())
            }
        }
    }

    /// Prints a Quick Mode SA life attribute as IOS does. LIFE_TYPE sets `life_type`;
    /// LIFE_DURATION (`v`) is returned with whether it counts seconds.
    fn qm_life_attr(&mut self, a: &Attr, v: u64, life_type: &mut u64) -> Option<(bool, u64)> {
        if a.ty == p2::LIFE_TYPE {
            *life_type = v;
            let unit = if v == 1 { "seconds" } else { "kilobytes" };
            self.ik_raw(format!("ISAKMP:      SA life type in {unit}"));
            return None;
        }
        let form = match &a.value {
            AttrValue::Basic(x) => format!("(basic) of {x}"),
            AttrValue::Var(_) => format!("(VPI) of {}", a.vpi_string()),
        };
        self.ik_raw(format!("ISAKMP:      SA life duration {form}"));
        Some((*life_type == 1, v))
    }

    /// Refuses a QM1 as IOS does: "phase 2 SA policy not acceptable!" and a notify.
    fn refuse_qm(&mut self, now: Instant, key: [u8; 8], conn: u32, peer: Ipv4Addr, nt: NotifyType) {
        let me = self.cfg.local_addr;
        self.ik(
            conn,
            format!("phase 2 SA policy not acceptable! (local {me} remote {peer})"),
        );
        self.send_info_notify(now, key, nt, proto::ISAKMP, vec![]);
        self.counters.p2_failed += 1;
    }

    /// Checks the peer's HASH(1)/HASH(2) over the raw plaintext after the HASH payload.
    fn check_qm_hash(
        &self,
        key: [u8; 8],
        mid: u32,
        ps: &[Payload],
        pt: &[u8],
        ni: Option<&[u8]>,
    ) -> R<()> {
        let Some(Payload::Hash(h)) = ps.first() else {
            return Err(IkeError::Peer("QM message must start with HASH"));
        };
        let start = GENERIC_LEN + h.len();
        let end = chain_len(ps);
        if end > pt.len() || start > end {
            return Err(IkeError::Peer("chain"));
        }
        if self.qm_hash(key, mid, ni, &pt[start..end]) != h[..] {
            return Err(IkeError::HashFailed);
        }
        Ok(())
    }

    fn r_qm1(&mut self, rx: &Rx, ps: Vec<Payload>, pt: Vec<u8>, new_iv: Vec<u8>) -> R<()> {
        let (now, key, conn, local) = (rx.now, rx.key, rx.conn, rx.local);
        let (remote, hdr, msg) = (rx.remote, rx.hdr, rx.msg);
        let (mid, flags) = (hdr.message_id, hdr.flags);
        self.processing(conn, mid, &["HASH"]);
        self.check_qm_hash(key, mid, &ps, &pt, None)?;
        let (Some(Payload::Sa(sap)), Some(Payload::Nonce(ni))) =
            (find(&ps, PayloadType::Sa), find(&ps, PayloadType::Nonce))
        else {
            return Err(IkeError::Peer("QM1 without SA/NONCE"));
        };
        self.processing(conn, mid, &["SA"]);
        let ke = ke_of(&ps);
        let ids: Vec<&IdPayload> = ps
            .iter()
            .filter_map(|p| {
                if let Payload::Id(i) = p {
                    Some(i)
                } else {
                    None
                }
            })
            .collect();
        let peer = v4(remote);
        let me = self.cfg.local_addr;
        let (rp, lp) = match ids.as_slice() {
            [] => (Proxy::host(peer), Proxy::host(me)),
            [i, r] => (
                proxy_from_id(i).ok_or(IkeError::Peer("ID type"))?,
                proxy_from_id(r).ok_or(IkeError::Peer("ID type"))?,
            ),
            _ => return Err(IkeError::Peer("QM1 ID count")),
        };
        // The crypto map entry whose peer and ACL cover the proposed identities.
        let idx = self.cfg.maps.iter().position(|m| {
            m.peer == peer && m.local_proxy.contains(&lp) && m.remote_proxy.contains(&rp)
        });
        let Some(idx) = idx else {
            self.refuse_qm(now, key, conn, peer, NotifyType::InvalidIdInformation);
            return Err(IkeError::Policy(
                "proxy identities not permitted by any crypto map",
            ));
        };
        let m = self.cfg.maps[idx].clone();
        let mut chosen = None;
        'outer: for prop in &sap.proposals {
            self.ik(conn, format!("Checking IPsec proposal {}", prop.number));
            if prop.protocol != proto::ESP || prop.spi.len() != 4 {
                continue;
            }
            for t in &prop.transforms {
                let enc_name = match t.id {
                    3 => "ESP_3DES",
                    12 => "ESP_AES",
                    2 => "ESP_DES",
                    11 => "ESP_NULL",
                    _ => "unknown",
                };
                self.ik_raw(format!("ISAKMP: transform {}, {enc_name}", t.number));
                self.ik_raw("ISAKMP:   attributes in transform:");
                let mut auth = None;
                let mut keylen = None;
                let mut encap = None;
                let mut group = None;
                let mut secs = None;
                let mut kb = None;
                let mut life_type = 0;
                let mut bad = false;
                for a in &t.attrs {
                    let v = a.as_u64().unwrap_or(u64::MAX);
                    match a.ty {
                        p2::LIFE_TYPE | p2::LIFE_DURATION => {
                            match self.qm_life_attr(a, v, &mut life_type) {
                                Some((true, v)) => secs = Some(v),
                                Some((false, v)) => kb = Some(v),
                                None => {}
                            }
                        }
                        p2::ENCAPSULATION => {
                            self.ik_raw(format!("ISAKMP:      encaps is {v}"));
                            encap = Some(v as u16)
                        }
                        p2::AUTH_ALG => {
                            auth = EspAuth::from_code(v as u16);
                            self.ik_raw(format!(
                                "ISAKMP:      authenticator is {}",
                                auth.map(|a| a.isakmp_name()).unwrap_or("unknown")
                            ));
                        }
                        p2::KEY_LENGTH => {
                            keylen = Some(v as u16);
                            self.ik_raw(format!("ISAKMP:      key length is {v}"));
                        }
                        p2::GROUP => {
                            group = DhGroup::from_id(v as u16);
                            self.ik_raw(format!("ISAKMP:      group is {v}"));
                        }
                        _ => bad = true,
                    }
                }
                let enc = match t.id {
                    3 => Some(EspEnc::Des3),
                    12 => Some(EspEnc::Aes(keylen.unwrap_or(128))),
                    20 => Some(EspEnc::Gcm(keylen.unwrap_or(128))),
                    _ => None,
                };
                let nat = self.p1[&key].nat.floated;
                // (mode is transport) for an encapsulation that fits the NAT-T state.
                let encap_mode = match encap {
                    Some(ENCAP_UDP_TUNNEL) | Some(ENCAP_UDP_TUNNEL_DRAFT) if nat => Some(false),
                    Some(ENCAP_UDP_TRANSPORT) | Some(ENCAP_UDP_TRANSPORT_DRAFT) if nat => {
                        Some(true)
                    }
                    Some(ENCAP_TUNNEL) | None if !nat => Some(false),
                    Some(ENCAP_TRANSPORT) if !nat => Some(true),
                    _ => None,
                };
                let encap_ok = encap_mode.is_some();
                let pfs_ok = match (m.pfs, group) {
                    (Some(g), Some(h)) => g == h,
                    (Some(_), None) => false,
                    (None, _) => true,
                } && (group.is_some() == ke.is_some());
                let ts = m.transform_sets.iter().find(|ts| {
                    Some(ts.enc) == enc && ts.auth == auth && Some(ts.transport) == encap_mode
                });
                if let (false, true, true, Some(ts)) = (bad, encap_ok, pfs_ok, ts) {
                    self.ik(conn, "atts are acceptable.");
                    let secs = secs.map(|s| s.min(u32::MAX as u64) as u32).unwrap_or(28800);
                    let kb = kb.unwrap_or(4_608_000);
                    let peer_spi = spi_u32(&prop.spi);
                    chosen = Some((
                        prop.number,
                        t.clone(),
                        ts.clone(),
                        secs,
                        kb,
                        peer_spi,
                        group,
                    ));
                    break 'outer;
                }
                self.ik(conn, "atts are not acceptable.");
                if self.debug_ipsec {
                    self.ips("IPSEC(validate_transform_proposal): transform proposal not supported for identity:".to_string());
                    self.ips(format!(
                        "    {{{}}}",
                        m.transform_sets
                            .first()
                            .map(|t| t.ios_name())
                            .unwrap_or_default()
                    ));
                }
            }
        }
        let Some((pnum, t, ts, secs, kb, peer_spi, group)) = chosen else {
            self.ik(conn, "IPSec policy invalidated proposal with error 256");
            self.refuse_qm(now, key, conn, peer, NotifyType::NoProposalChosen);
            self.events.push_back(Event::NegotiationFailed {
                peer,
                reason: "phase 2 SA policy not acceptable".into(),
            });
            return Ok(());
        };
        if self.debug_ipsec {
            self.ips("IPsec(validate_proposal_request): proposal part #1,".to_string());
            self.ips(format!(
                "  (key eng. msg.) INBOUND local= {me}, remote= {peer},"
            ));
            self.ips(format!("    local_proxy= {lp},"));
            self.ips(format!("    remote_proxy= {rp},"));
            self.ips(format!("    protocol= ESP, transform= {} ,", ts.ios_name()));
            self.ips("    lifedur= 0s and 0kb,".to_string());
            self.ips("    spi= 0x0(0), conn_id= 0, keysize= 0, flags= 0x4".to_string());
        }
        // Our lifetime is the lower of what the peer offered and what we allow.
        let our_secs = secs.min(m.lifetime_secs);
        let our_kb = kb.min(m.lifetime_kb);
        let spi_in = self.new_spi();
        let nr = self.rng.bytes(20);
        let dh = group.map(|g| g.generate(&mut *self.rng));
        let gqm = match (&dh, &ke) {
            (Some(d), Some(k)) => Some(d.shared(k).map_err(|_| IkeError::Peer("bad QM KE"))?),
            _ => None,
        };
        let mut rest = vec![Payload::Sa(SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: pnum,
                protocol: proto::ESP,
                spi: spi_in.to_be_bytes().to_vec(),
                transforms: vec![t],
            }],
        })];
        rest.push(Payload::Nonce(nr.clone()));
        if let Some(d) = &dh {
            rest.push(Payload::Ke(d.public.clone()));
        }
        for p in &ps {
            if let Payload::Id(_) = p {
                rest.push(p.clone());
            }
        }
        if our_secs < secs || our_kb < kb {
            let mut data = Vec::new();
            let mut attrs = Vec::new();
            if our_secs < secs {
                attrs.push(Attr::basic(p2::LIFE_TYPE, attr::LIFE_SECONDS));
                attrs.push(Attr::number(p2::LIFE_DURATION, our_secs as u64));
            }
            if our_kb < kb {
                attrs.push(Attr::basic(p2::LIFE_TYPE, attr::LIFE_KILOBYTES));
                attrs.push(Attr::number(p2::LIFE_DURATION, our_kb));
            }
            for a in &attrs {
                a.emit(&mut data);
            }
            rest.push(Payload::Notify(NotifyPayload {
                doi: DOI_IPSEC,
                protocol: proto::ESP,
                notify_type: NotifyType::ResponderLifetime.code(),
                spi: peer_spi.to_be_bytes().to_vec(),
                data,
            }));
        }
        let mut rb = Vec::new();
        emit_chain(&rest, &mut rb);
        let mut out_ps = vec![Payload::Hash(self.qm_hash(key, mid, Some(ni), &rb))];
        out_ps.extend(rest);
        let (out, iv2) = self.encrypt(
            key,
            &new_iv,
            ExchangeType::QuickMode,
            mid,
            flags & flags::COMMIT,
            &out_ps,
        );
        let base = self.cfg.retransmit_base;
        let tx = framed(local, remote, out);
        let sa = self.p1.get_mut(&key).expect("exists");
        drop(gqm);
        sa.qm.insert(
            mid,
            Qm {
                state: QmState::IkeQmRQm2,
                initiator: false,
                iv: iv2,
                map_idx: idx,
                ni: ni.clone(),
                nr,
                dh,
                local_proxy: lp,
                remote_proxy: rp,
                spi_in,
                offered: vec![],
                chosen: Some((ts, our_secs, our_kb, peer_spi)),
                retx: Some(Retx::new(tx.clone(), now, base)),
                last_rx: msg.to_vec(),
                last_tx: Some(tx.clone()),
                started: now,
                rekey_of: None,
                peer_ke: None,
                commit: flags & flags::COMMIT != 0,
            },
        );
        sa.qm.get_mut(&mid).expect("inserted").peer_ke = ke;
        self.ik(
            conn,
            format!("Node {mid}, Input = IKE_MSG_FROM_PEER, IKE_QM_EXCH"),
        );
        self.ik_raw("Old State = IKE_QM_READY  New State = IKE_QM_R_QM2");
        self.ik(conn, format!("sending packet to {peer} (R) QM_IDLE"));
        self.transmits.push_back(tx);
        Ok(())
    }

    fn i_qm2(&mut self, rx: &Rx, ps: Vec<Payload>, pt: Vec<u8>, new_iv: Vec<u8>) -> R<()> {
        let (now, key, conn, hdr) = (rx.now, rx.key, rx.conn, rx.hdr);
        let (mid, flags) = (hdr.message_id, hdr.flags);
        let ni = self.p1[&key].qm[&mid].ni.clone();
        self.processing(conn, mid, &["HASH"]);
        self.check_qm_hash(key, mid, &ps, &pt, Some(&ni))?;
        let (Some(Payload::Sa(sap)), Some(Payload::Nonce(nr))) =
            (find(&ps, PayloadType::Sa), find(&ps, PayloadType::Nonce))
        else {
            return Err(IkeError::Peer("QM2 without SA/NONCE"));
        };
        self.processing(conn, mid, &["SA"]);
        let (q_map_idx, q_offered, q_has_dh) = {
            let q = &self.p1[&key].qm[&mid];
            (q.map_idx, q.offered.clone(), q.dh.is_some())
        };
        let m = self.cfg.maps[q_map_idx].clone();
        let prop = sap.proposals.first().ok_or(IkeError::Peer("empty SA"))?;
        let t = prop
            .transforms
            .first()
            .ok_or(IkeError::Peer("empty proposal"))?;
        if prop.spi.len() != 4 || prop.protocol != proto::ESP {
            return Err(IkeError::Peer("QM2 proposal"));
        }
        let &(_, ts_idx) = q_offered
            .iter()
            .find(|(n, _)| *n == prop.number)
            .ok_or(IkeError::Peer("proposal number not offered"))?;
        let ts = m.transform_sets[ts_idx].clone();
        self.ik(conn, format!("Checking IPsec proposal {}", prop.number));
        self.ik_raw(format!(
            "ISAKMP: transform {}, {}",
            t.number,
            ts.enc.isakmp_name()
        ));
        self.ik_raw("ISAKMP:   attributes in transform:");
        let mut secs = m.lifetime_secs;
        let mut kb = m.lifetime_kb;
        let mut life_type = 0;
        for a in &t.attrs {
            let v = a.as_u64().unwrap_or(0);
            match a.ty {
                p2::ENCAPSULATION => self.ik_raw(format!("ISAKMP:      encaps is {v}")),
                p2::LIFE_TYPE | p2::LIFE_DURATION => {
                    match self.qm_life_attr(a, v, &mut life_type) {
                        Some((true, v)) => secs = secs.min(v.min(u32::MAX as u64) as u32),
                        Some((false, v)) => kb = kb.min(v),
                        None => {}
                    }
                }
                p2::AUTH_ALG => self.ik_raw(format!(
                    "ISAKMP:      authenticator is {}",
                    ts.auth.map(|a| a.isakmp_name()).unwrap_or("unknown")
                )),
                _ => {}
            }
        }
        self.ik(conn, "atts are acceptable.");
        // RESPONDER-LIFETIME lowers what we use.
        for p in &ps {
            if let Payload::Notify(n) = p {
                if n.notify_type == NotifyType::ResponderLifetime.code() {
                    self.ik(
                        conn,
                        format!(
                            "processing NOTIFY RESPONDER_LIFETIME protocol {}",
                            n.protocol
                        ),
                    );
                    if let Ok(attrs) = Attr::parse_list(&n.data, "RESPONDER-LIFETIME") {
                        let mut lt = 0;
                        for a in attrs {
                            match a.ty {
                                p2::LIFE_TYPE => lt = a.as_u64().unwrap_or(0),
                                p2::LIFE_DURATION if lt == 1 => {
                                    secs = secs
                                        .min(a.as_u64().unwrap_or(u64::MAX).min(u32::MAX as u64)
                                            as u32)
                                }
                                p2::LIFE_DURATION if lt == 2 => {
                                    kb = kb.min(a.as_u64().unwrap_or(u64::MAX))
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        let ke = ke_of(&ps);
        if q_has_dh != ke.is_some() {
            return Err(IkeError::Peer("PFS KE mismatch"));
        }
        let peer_spi = spi_u32(&prop.spi);
        {
            let q = self
                .p1
                .get_mut(&key)
                .expect("exists")
                .qm
                .get_mut(&mid)
                .expect("exists");
            q.nr = nr.clone();
            q.peer_ke = ke;
            q.chosen = Some((ts, secs, kb, peer_spi));
        }
        let hash3 = self.qm_hash3(key, mid);
        // The commit bit set by the responder is echoed in QM3; the responder then sends
        // CONNECTED once its SAs are in place.
        let (out, iv3) = self.encrypt(
            key,
            &new_iv,
            ExchangeType::QuickMode,
            mid,
            flags & flags::COMMIT,
            &[Payload::Hash(hash3)],
        );
        let sa = self.p1.get_mut(&key).expect("exists");
        let tx = framed(sa.local, sa.remote, out);
        let remote = tx.remote;
        let q = sa.qm.get_mut(&mid).expect("exists");
        q.iv = iv3;
        q.retx = None;
        q.last_tx = Some(tx.clone());
        self.install_qm(now, key, mid);
        self.ik(
            conn,
            format!("sending packet to {} (I) QM_IDLE", v4(remote)),
        );
        self.transmits.push_back(tx);
        self.ik(
            conn,
            format!("Node {mid}, Input = IKE_MSG_FROM_PEER, IKE_QM_EXCH"),
        );
        self.ik_raw("Old State = IKE_QM_I_QM1  New State = IKE_QM_PHASE2_COMPLETE");
        Ok(())
    }

    /// KEYMAT for both directions, the SA pair, and the slides' debug lines.
    fn install_qm(&mut self, now: Instant, key: [u8; 8], mid: u32) {
        let conn = self.p1[&key].conn_id;
        let sa = self.p1.get_mut(&key).expect("exists");
        let q = sa.qm.get_mut(&mid).expect("exists");
        q.state = QmState::IkeQmPhase2Complete;
        q.retx = None;
        let (ts, secs, kb, peer_spi) = q.chosen.clone().expect("chosen");
        // Ni_b is always the Quick Mode initiator's nonce.
        let (ni, nr) = (q.ni.clone(), q.nr.clone());
        let gqm = match (&q.dh, &q.peer_ke) {
            (Some(d), Some(k)) => d.shared(k).ok(),
            _ => None,
        };
        let neg = sa.neg.expect("neg");
        let d = sa.keys.as_ref().expect("keys").d.clone();
        let len = ts.enc.key_len() + ts.auth.map_or(0, |a| a.key_len());
        let spi_in = q.spi_in;
        let kin = keymat(
            neg.hash,
            &d,
            gqm.as_deref().map(|v| &v[..]),
            proto::ESP,
            &spi_in.to_be_bytes(),
            &ni,
            &nr,
            len,
        );
        let kout = keymat(
            neg.hash,
            &d,
            gqm.as_deref().map(|v| &v[..]),
            proto::ESP,
            &peer_spi.to_be_bytes(),
            &ni,
            &nr,
            len,
        );
        let (lp, rp, map_idx, initiator, rekey_of) = (
            q.local_proxy,
            q.remote_proxy,
            q.map_idx,
            q.initiator,
            q.rekey_of,
        );
        q.dh = None;
        let floated = sa.nat.floated;
        let peer = v4(sa.remote);
        let peer_port = sa.remote.port();
        let me = self.cfg.local_addr;
        let in_conn = self.next_sa_conn;
        let out_conn = self.next_sa_conn + 1;
        self.next_sa_conn += 2;
        let m = &self.cfg.maps[map_idx];
        let (mapname, seq) = (m.map.clone(), m.seq);
        let split = |k: &[u8]| {
            (
                Zeroizing::new(k[..ts.enc.key_len()].to_vec()),
                Zeroizing::new(k[ts.enc.key_len()..].to_vec()),
            )
        };
        let (ein, ain) = split(&kin);
        let (eout, aout) = split(&kout);
        let inbound = IpsecSa {
            direction: Direction::Inbound,
            spi: spi_in,
            src: peer,
            dst: me,
            src_proxy: rp,
            dst_proxy: lp,
            transform: ts.clone(),
            enc_key: ein,
            auth_key: ain,
            lifetime_secs: secs,
            lifetime_kb: kb,
            encap: floated.then_some((peer_port, NATT_PORT)),
            conn_id: in_conn,
            map: mapname.clone(),
            seq,
        };
        let outbound = IpsecSa {
            direction: Direction::Outbound,
            spi: peer_spi,
            src: me,
            dst: peer,
            src_proxy: lp,
            dst_proxy: rp,
            transform: ts.clone(),
            enc_key: eout,
            auth_key: aout,
            lifetime_secs: secs,
            lifetime_kb: kb,
            encap: floated.then_some((NATT_PORT, peer_port)),
            conn_id: out_conn,
            map: mapname,
            seq,
        };
        self.ik(conn, "Creating IPsec SAs");
        self.ik_raw(format!(
            "        inbound SA from {peer} to {me} (proxy {} to {})\n        has spi {:#X} and conn_id {in_conn} and flags 4\n        lifetime of {secs} seconds\n        lifetime of {kb} kilobytes",
            rp.addr, lp.addr, spi_in
        ));
        self.ik_raw(format!(
            "        outbound SA from {me} to {peer} (proxy {} to {})\n        has spi {} and conn_id {out_conn} and flags C\n        lifetime of {secs} seconds\n        lifetime of {kb} kilobytes",
            lp.addr, rp.addr, peer_spi as i32
        ));
        if self.debug_ipsec {
            self.ips("IPsec(key_engine): got a queue event...".to_string());
            for (dir, spi, c, fl) in [
                ("INBOUND", spi_in, in_conn, "0x4"),
                ("OUTBOUND", peer_spi, out_conn, "0xC"),
            ] {
                self.ips("IPsec(initialize_sas): ,".to_string());
                self.ips(format!(
                    "  (key eng. msg.) {dir} local= {me}, remote= {peer},"
                ));
                self.ips(format!("    local_proxy= {lp},"));
                self.ips(format!("    remote_proxy= {rp},"));
                self.ips(format!("    protocol= ESP, transform= {} ,", ts.ios_name()));
                self.ips(format!("    lifedur= {secs}s and {kb}kb,"));
                self.ips(format!(
                    "    spi= {spi:#X}({spi}), conn_id= {c}, keysize= 0, flags= {fl}"
                ));
            }
            for (dst, spi, c) in [(me, spi_in, in_conn), (peer, peer_spi, out_conn)] {
                self.ips("IPsec(create_sa): sa created,".to_string());
                self.ips(format!(
                    "  (sa) sa_dest= {dst}, sa_prot= 50,\n    sa_spi= {spi:#X}({spi}),\n    sa_trans= {} , sa_conn_id= {c}",
                    ts.ios_name()
                ));
            }
        }
        let life = Duration::from_secs(secs as u64);
        let soft = if initiator {
            life * 85 / 100
        } else {
            life * 95 / 100
        };
        self.pairs.push(SaPair {
            p1_icookie: key,
            map_idx,
            peer,
            peer_port,
            inbound: spi_in,
            outbound: peer_spi,
            in_conn,
            out_conn,
            transform: ts,
            local_proxy: lp,
            remote_proxy: rp,
            encap: floated,
            lifetime_secs: secs,
            lifetime_kb: kb,
            created: now,
            soft_at: now + soft,
            hard_at: now + life,
            rekeying: false,
            kb_used: 0,
            in_packets: 0,
        });
        self.counters.p2_established += 1;
        self.events
            .push_back(Event::IpsecSaUp { inbound, outbound });
        // Make-before-break: the old pair stays a few seconds so packets in flight land.
        if let Some(old) = rekey_of {
            if let Some(p) = self.pairs.iter_mut().find(|p| p.inbound == old) {
                p.hard_at = p.hard_at.min(now + Duration::from_secs(5));
                p.rekeying = true;
            }
        }
        // Also retire an older pair for the same entry that a peer-initiated rekey replaced.
        for p in self.pairs.iter_mut() {
            if p.map_idx == map_idx
                && p.inbound != spi_in
                && p.local_proxy == lp
                && p.remote_proxy == rp
                && !p.rekeying
            {
                p.rekeying = true;
                p.hard_at = p.hard_at.min(now + Duration::from_secs(30));
            }
        }
    }

    // ------------------------------------------------------------------ informational

    fn send_informational(&mut self, now: Instant, key: [u8; 8], payload: Payload) {
        let _ = now;
        let Some(sa) = self.p1.get(&key) else { return };
        if sa.keys.is_none() || sa.state != P1State::IkeP1Complete {
            return;
        }
        let mid = loop {
            let x = self.rng.u32();
            if x != 0 {
                break x;
            }
        };
        let mut rb = Vec::new();
        emit_chain(std::slice::from_ref(&payload), &mut rb);
        let h = self.qm_hash(key, mid, None, &rb);
        let sa = &self.p1[&key];
        let neg = sa.neg.expect("neg");
        let iv = phase2_iv(neg.hash, &sa.iv, mid, neg.enc.block_len());
        let (out, _) = self.encrypt(
            key,
            &iv,
            ExchangeType::Informational,
            mid,
            0,
            &[Payload::Hash(h), payload],
        );
        self.transmits.push_back(framed(sa.local, sa.remote, out));
    }

    fn send_info_notify(
        &mut self,
        now: Instant,
        key: [u8; 8],
        nt: NotifyType,
        protocol: u8,
        spi: Vec<u8>,
    ) {
        let p = Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol,
            notify_type: nt.code(),
            spi,
            data: vec![],
        });
        self.send_informational(now, key, p);
    }

    fn send_dpd(&mut self, now: Instant, key: [u8; 8], nt: NotifyType, seq: u32) {
        let p = self.isakmp_notify(key, nt, seq.to_be_bytes().to_vec());
        self.send_informational(now, key, p);
    }

    fn informational(&mut self, rx: &Rx) -> R<()> {
        let (now, key, conn, remote) = (rx.now, rx.key, rx.conn, rx.remote);
        let (hdr, msg) = (rx.hdr, rx.msg);
        if !hdr.encrypted() {
            // Unauthenticated: only believed before phase 1 has keys (e.g. NO_PROPOSAL_CHOSEN).
            let m = Message::parse(msg)?;
            for p in &m.payloads {
                if let Payload::Notify(n) = p {
                    let nt = NotifyType::from_code(n.notify_type);
                    self.ik(
                        conn,
                        format!(
                            "received packet from {} informational, notify {}",
                            v4(remote),
                            nt.ios_name()
                        ),
                    );
                    let st = self.p1[&key].state;
                    if self.p1[&key].keys.is_none()
                        && matches!(st, P1State::IkeIMm1 | P1State::IkeIAm1)
                        && nt == NotifyType::NoProposalChosen
                    {
                        self.ik(
                            conn,
                            format!(
                                "phase 1 SA policy not acceptable! (local {} remote {})",
                                self.cfg.local_addr,
                                v4(remote)
                            ),
                        );
                        self.fail_p1(key, "phase 1 SA policy not acceptable");
                    } else if self.p1[&key].keys.is_some() && st != P1State::IkeP1Complete {
                        // e.g. the peer could not decrypt our MM5 (wrong key)
                        return Err(IkeError::Peer("peer reported an error"));
                    }
                }
            }
            return Ok(());
        }
        if self.p1[&key].keys.is_none() {
            return Err(IkeError::Peer("encrypted informational before keys"));
        }
        let mid = hdr.message_id;
        let sa = &self.p1[&key];
        let neg = sa.neg.expect("neg");
        // Before phase 1 completes the IV is the current phase-1 one (RFC 2409 §5.5 note).
        let iv = phase2_iv(neg.hash, &sa.iv, mid, neg.enc.block_len());
        let (ps, pt, _) = self.decrypt(key, &iv, &hdr, msg)?;
        self.check_qm_hash(key, mid, &ps, &pt, None)?;
        self.p1.get_mut(&key).expect("exists").last_peer_activity = now;
        for p in ps.iter().skip(1) {
            match p {
                Payload::Notify(n) => {
                    let nt = NotifyType::from_code(n.notify_type);
                    let seq = if n.data.len() >= 4 {
                        u32::from_be_bytes([n.data[0], n.data[1], n.data[2], n.data[3]])
                    } else {
                        0
                    };
                    match nt {
                        NotifyType::RUThere => {
                            self.ik(
                                conn,
                                format!(
                                    "received DPD_R_U_THERE from peer {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                            self.send_dpd(now, key, NotifyType::RUThereAck, seq);
                            self.ik(
                                conn,
                                format!(
                                    "DPD/R_U_THERE_ACK sent to {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                        }
                        NotifyType::RUThereAck => {
                            let sa = self.p1.get_mut(&key).expect("exists");
                            if sa.dpd_outstanding.map(|x| x.0) == Some(seq) {
                                sa.dpd_outstanding = None;
                                sa.dpd_misses = 0;
                            }
                            self.ik(
                                conn,
                                format!(
                                    "received DPD_R_U_THERE_ACK from peer {}, sequence {seq:#x}",
                                    v4(remote)
                                ),
                            );
                        }
                        other => self.ik(
                            conn,
                            format!(
                                "processing NOTIFY {} protocol {}",
                                other.ios_name(),
                                n.protocol
                            ),
                        ),
                    }
                }
                Payload::Delete(d) => {
                    self.ik(
                        conn,
                        format!("processing DELETE payload. message ID = {mid}"),
                    );
                    if d.protocol == proto::ISAKMP {
                        self.ik(
                            conn,
                            "deleting SA reason \"Receive initial contact\" / peer delete",
                        );
                        let sa = self.p1.get_mut(&key).expect("exists");
                        let was = sa.state == P1State::IkeP1Complete;
                        sa.state = P1State::IkeDead;
                        if was {
                            let (c, r) = (sa.conn_id, sa.remote);
                            self.events.push_back(Event::IsakmpSaDown {
                                conn_id: c,
                                peer: r,
                            });
                        }
                    } else if d.protocol == proto::ESP {
                        for spi in &d.spis {
                            if spi.len() != 4 {
                                continue;
                            }
                            let s = u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]]);
                            if let Some(i) = self
                                .pairs
                                .iter()
                                .position(|p| p.outbound == s && p.peer == v4(remote))
                            {
                                self.ips(format!("IPSEC(delete_sa): deleting SA, (sa) sa_dest= {}, sa_prot= 50, sa_spi= {s:#X}({s})", v4(remote)));
                                self.remove_pair(now, i, false);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn remove_pair(&mut self, now: Instant, i: usize, send_delete: bool) {
        let p = self.pairs.remove(i);
        if send_delete {
            if let Some(key) = self.live_p1(p.peer) {
                let pl = Payload::Delete(DeletePayload {
                    doi: DOI_IPSEC,
                    protocol: proto::ESP,
                    spi_size: 4,
                    spis: vec![p.inbound.to_be_bytes().to_vec()],
                });
                self.send_informational(now, key, pl);
            }
        }
        self.events.push_back(Event::IpsecSaDown {
            inbound_spi: p.inbound,
            outbound_spi: p.outbound,
            peer: p.peer,
        });
    }

    fn live_p1(&self, peer: Ipv4Addr) -> Option<[u8; 8]> {
        self.p1
            .iter()
            .filter(|(_, s)| v4(s.remote) == peer && s.state == P1State::IkeP1Complete)
            .max_by_key(|(_, s)| s.conn_id)
            .map(|(k, _)| *k)
    }

    fn delete_p1(&mut self, now: Instant, key: [u8; 8], reason: &str) {
        let Some(sa) = self.p1.get(&key) else { return };
        if sa.state == P1State::IkeP1Complete {
            let mut spi = sa.icookie.to_vec();
            spi.extend_from_slice(&sa.rcookie);
            let pl = Payload::Delete(DeletePayload {
                doi: DOI_IPSEC,
                protocol: proto::ISAKMP,
                spi_size: 16,
                spis: vec![spi],
            });
            self.send_informational(now, key, pl);
        }
        self.fail_p1(key, reason);
    }

    /// `clear crypto sa`: deletes every IPsec SA (and tells the peers).
    pub fn clear_ipsec(&mut self, now: Instant) {
        while !self.pairs.is_empty() {
            self.remove_pair(now, 0, true);
        }
    }

    /// `clear crypto isakmp`: deletes every ISAKMP SA (and tells the peers).
    pub fn clear_isakmp(&mut self, now: Instant) {
        let keys: Vec<_> = self.p1.keys().copied().collect();
        for k in keys {
            self.delete_p1(now, k, "clear crypto isakmp");
        }
    }

    // ------------------------------------------------------------------ timers

    pub fn handle_timeout(&mut self, now: Instant) {
        let limit = self.cfg.retransmit_limit;
        let dpd = self.cfg.dpd;
        let keys: Vec<[u8; 8]> = self.p1.keys().copied().collect();
        for key in keys {
            let Some(sa) = self.p1.get_mut(&key) else {
                continue;
            };
            let conn = sa.conn_id;
            if sa.state == P1State::IkeDead {
                self.p1.remove(&key);
                continue;
            }
            // Phase-1 retransmission (same bytes: the IV does not move).
            if let Some(r) = &mut sa.retx {
                if r.next_at <= now {
                    if r.count >= limit {
                        let st = sa.state.show();
                        self.ik(conn, format!("retransmission limit reached in {st}"));
                        self.fail_p1(key, "Death by retransmission P1");
                        continue;
                    }
                    let t = r.fire(now);
                    let (st, n) = (sa.state.show(), r.count);
                    self.counters.tx_retransmissions += 1;
                    self.ik(
                        conn,
                        format!("retransmitting phase 1 {st}... (attempt {n} of {limit})"),
                    );
                    self.transmits.push_back(t);
                }
            }
            let sa = self.p1.get_mut(&key).expect("exists");
            if sa.state != P1State::IkeP1Complete && now >= sa.started + Duration::from_secs(75) {
                self.fail_p1(key, "phase 1 timed out");
                continue;
            }
            // Quick Mode retransmissions and timeouts.
            let mids: Vec<u32> = sa.qm.keys().copied().collect();
            for mid in mids {
                let sa = self.p1.get_mut(&key).expect("exists");
                let q = sa.qm.get_mut(&mid).expect("exists");
                if q.state == QmState::IkeQmPhase2Complete {
                    if now >= q.started + Duration::from_secs(75) {
                        sa.qm.remove(&mid);
                    }
                    continue;
                }
                if let Some(r) = &mut q.retx {
                    if r.next_at <= now {
                        if r.count >= limit {
                            let peer = v4(sa.remote);
                            sa.qm.remove(&mid);
                            self.counters.p2_failed += 1;
                            self.ik(
                                conn,
                                format!("Node {mid}: retransmission limit reached, deleting node"),
                            );
                            self.events.push_back(Event::NegotiationFailed {
                                peer,
                                reason: "Quick Mode retransmission limit".into(),
                            });
                            continue;
                        }
                        let t = r.fire(now);
                        self.counters.tx_retransmissions += 1;
                        self.ik(conn, format!("retransmitting phase 2 QM_IDLE {mid} ..."));
                        self.transmits.push_back(t);
                    }
                }
            }
            let sa = self.p1.get_mut(&key).expect("exists");
            if sa.state != P1State::IkeP1Complete {
                continue;
            }
            if sa.qm_hold_until.is_some_and(|t| t <= now) {
                sa.qm_hold_until = None;
                let waiting = std::mem::take(&mut sa.waiting);
                for (idx, rekey_of) in waiting {
                    self.start_qm(now, key, idx, rekey_of);
                }
            }
            let sa = self.p1.get_mut(&key).expect("exists");
            if sa.expires_at.is_some_and(|t| t <= now) {
                self.delete_p1(now, key, "Lifetime expired");
                continue;
            }
            if sa.rekey_at.is_some_and(|t| t <= now) {
                sa.rekey_at = None;
                let peer = v4(sa.remote);
                let has_pairs = self.pairs.iter().any(|p| p.peer == peer);
                if has_pairs {
                    if let Some(idx) = self.cfg.maps.iter().position(|m| m.peer == peer) {
                        self.ik(conn, "ISAKMP SA lifetime nearly over: rekeying phase 1");
                        self.start_p1_only(now, idx);
                    }
                }
            }
            // NAT-T keepalive.
            let nat_ka = self.cfg.nat_keepalive;
            let sa = self.p1.get_mut(&key).expect("exists");
            if sa.next_keepalive.is_some_and(|t| t <= now) {
                sa.next_keepalive = Some(now + nat_ka);
                self.transmits.push_back(Transmit {
                    local: sa.local,
                    remote: sa.remote,
                    data: vec![0xff],
                });
            }
            // DPD (RFC 3706): R-U-THERE when the peer has been quiet.
            if let Some((interval, retry)) = dpd {
                let sa = self.p1.get_mut(&key).expect("exists");
                if let Some((_, at)) = sa.dpd_outstanding {
                    if at <= now {
                        sa.dpd_misses += 1;
                        if sa.dpd_misses >= DPD_MAX_MISSES {
                            let peer = v4(sa.remote);
                            self.counters.dpd_dead_peers += 1;
                            self.ik_raw(format!(
                                "ISAKMP: DPD: peer {peer} is dead, deleting its SAs"
                            ));
                            self.fail_p1(key, "peer is dead (DPD)");
                            self.remove_peer_pairs(now, peer);
                            continue;
                        }
                        self.send_r_u_there(now, key, retry, true);
                    }
                } else if sa.dpd_next.is_some_and(|t| t <= now) {
                    sa.dpd_next = Some(now + interval);
                    if now.saturating_duration_since(sa.last_peer_activity) >= interval {
                        if sa.dpd_seq == 0 {
                            sa.dpd_seq = self.rng.u32() & 0x7fff_ffff;
                        }
                        self.send_r_u_there(now, key, retry, false);
                    }
                }
            }
        }
        // IPsec SA lifetimes: rekey at the soft limit, delete at the hard one.
        let mut i = 0;
        while i < self.pairs.len() {
            let p = &self.pairs[i];
            if p.hard_at <= now {
                let (c, s) = (p.in_conn, p.inbound);
                self.ips(format!(
                    "IPSEC(sa_aging): lifetime expiring, (sa) sa_spi= {s:#X}({s}), sa_conn_id= {c}"
                ));
                self.remove_pair(now, i, true);
                continue;
            }
            if p.soft_at <= now && !p.rekeying {
                let (idx, old) = (p.map_idx, p.inbound);
                self.pairs[i].rekeying = true;
                self.ips(format!(
                    "IPSEC(sa_aging): soft lifetime reached, rekeying (sa) sa_spi= {old:#X}({old})"
                ));
                self.request(now, idx, Some(old));
            }
            i += 1;
        }
    }

    /// Starts a new phase 1 to the peer of map entry `idx` without Quick Mode (ISAKMP rekey).
    fn start_p1_only(&mut self, now: Instant, idx: usize) {
        self.start_p1(now, idx, None);
        // start_p1 queued the entry's Quick Mode; a phase-1-only rekey does not want it.
        let peer = self.cfg.maps[idx].peer;
        if let Some(sa) = self
            .p1
            .values_mut()
            .filter(|s| s.initiator && v4(s.remote) == peer)
            .max_by_key(|s| s.conn_id)
        {
            sa.waiting.clear();
        }
    }

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
