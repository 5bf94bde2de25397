//! Quick Mode (RFC 2409 §5.5): one exchange per message ID under an established phase 1,
//! each with its state as a type ([`QmState`]).
//!
//! Initiator: (start) → `ExpectQm2` → `Complete` (sends QM3). Responder ([`responder`]):
//! (QM1) → `ExpectQm3` → `Complete`. `Complete` exchanges are kept a while so that a
//! retransmitted QM2 gets its QM3 again.

mod responder;

use super::debug::{IosState, QM_FROM_PEER, QM_INIT};
use super::natt::framed;
use super::payloads::*;
use super::phase1::{IsakmpKeys, P1Sa, P1State};
use super::timers::{Retx, Timer, TimerTable, NEGOTIATION_LIMIT};
use super::*;
use crate::isakmp::attr::{self, p2};

/// Encapsulation modes (RFC 2407, RFC 3947, draft alias).
const ENCAP_TUNNEL: u16 = 1;
const ENCAP_TRANSPORT: u16 = 2;
const ENCAP_UDP_TUNNEL: u16 = 3;
const ENCAP_UDP_TRANSPORT: u16 = 4;
const ENCAP_UDP_TUNNEL_DRAFT: u16 = 61443;
const ENCAP_UDP_TRANSPORT_DRAFT: u16 = 61444;

/// Initiator sent QM1 (IKE_QM_I_QM1): what it offered.
pub struct QmOffer {
    pub ni: Vec<u8>,
    pub dh: Option<DhKeyPair>,
    /// Offered (proposal number, transform set index in the map entry) pairs.
    pub offered: Vec<(u8, usize)>,
    /// The inbound SPI of the pair this exchange replaces.
    pub rekey_of: Option<u32>,
}

/// The responder's choice: the transform set, the lifetimes, the peer's SPI.
pub struct QmChoice {
    pub ts: TransformSet,
    pub secs: u32,
    pub kb: u64,
    pub peer_spi: u32,
}

/// Both sides agreed (the responder sent QM2, IKE_QM_R_QM2; the initiator read it): what
/// the SA pair is made of.
pub struct QmAgreed {
    pub choice: QmChoice,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub dh: Option<DhKeyPair>,
    pub peer_ke: Option<Vec<u8>>,
    /// The commit bit was set in this exchange (RFC 2409 §5.5 CONNECTED).
    pub commit: bool,
    pub rekey_of: Option<u32>,
}

/// The state of one Quick Mode exchange.
pub enum QmState {
    /// IKE_QM_I_QM1: sent QM1, expects QM2.
    ExpectQm2(QmOffer),
    /// IKE_QM_R_QM2: sent QM2, expects QM3.
    ExpectQm3(QmAgreed),
    /// IKE_QM_PHASE2_COMPLETE: the SA pair is installed.
    Complete,
}

impl QmState {
    /// The IOS name of this state (`debug crypto isakmp`).
    pub fn ios(&self) -> IosState {
        match self {
            QmState::ExpectQm2(_) => IosState::QmIQm1,
            QmState::ExpectQm3(_) => IosState::QmRQm2,
            QmState::Complete => IosState::QmPhase2Complete,
        }
    }
    pub fn is_complete(&self) -> bool {
        matches!(self, QmState::Complete)
    }
    /// We initiated it and wait for the responder.
    pub fn is_initiator_waiting(&self) -> bool {
        matches!(self, QmState::ExpectQm2(_))
    }
}

/// One Quick Mode exchange: what it has in every state, and its state.
pub struct Qm {
    pub initiator: bool,
    /// The exchange's CBC state.
    pub iv: Vec<u8>,
    pub map_idx: usize,
    pub local_proxy: Proxy,
    pub remote_proxy: Proxy,
    pub spi_in: u32,
    pub retx: Option<Retx>,
    pub last_rx: Vec<u8>,
    pub last_tx: Option<Transmit>,
    /// [`Timer::Retransmit`]; [`Timer::Negotiation`]: when a complete exchange is forgotten.
    pub timers: TimerTable,
    pub state: QmState,
    /// When the exchange's first message was sent or received (setup latency).
    pub started: Instant,
}

/// What the initiator read from QM2.
struct Qm2 {
    choice: QmChoice,
    nr: Vec<u8>,
    peer_ke: Option<Vec<u8>>,
}

/// A decrypted Quick Mode message.
struct QmRx<'a> {
    rx: &'a Rx<'a>,
    mid: u32,
    ps: Vec<Payload>,
    /// The plaintext (HASH(1)/HASH(2) cover its raw bytes).
    pt: Vec<u8>,
    /// The exchange's IV after this message.
    iv: Vec<u8>,
}

/// The timers of a new exchange whose first message is `tx`: its retransmission, and
/// when it is forgotten.
fn first_timers(now: Instant, base: std::time::Duration, tx: &Transmit) -> (TimerTable, Retx) {
    let mut timers = TimerTable::default();
    timers.set(Timer::Negotiation, now + NEGOTIATION_LIMIT);
    let retx = Retx::arm(tx.clone(), now, base, &mut timers);
    (timers, retx)
}

/// HASH(1) (`ni` None; also the informational HASH) or HASH(2) (`ni` the initiator's
/// nonce): prf(SKEYID_a, M-ID | [Ni_b |] rest).
pub(super) fn qm_hash(k: &IsakmpKeys, mid: u32, ni: Option<&[u8]>, rest: &[u8]) -> Vec<u8> {
    let mid = mid.to_be_bytes();
    match ni {
        None => k.prf_a(&[&mid, rest]),
        Some(ni) => k.prf_a(&[&mid, ni, rest]),
    }
}

/// HASH(3): prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
fn qm_hash3(k: &IsakmpKeys, mid: u32, a: &QmAgreed) -> Vec<u8> {
    k.prf_a(&[&[0u8], &mid.to_be_bytes(), &a.ni, &a.nr])
}

/// Checks the peer's HASH(1)/HASH(2) over the raw plaintext after the HASH payload.
pub(super) fn check_qm_hash(
    k: &IsakmpKeys,
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
    if qm_hash(k, mid, ni, &pt[start..end]) != h[..] {
        return Err(IkeError::HashFailed);
    }
    Ok(())
}

/// Encapsulation mode attribute: tunnel/transport, UDP-encapsulated after NAT-T floated.
fn encap_mode(floated: bool, transport: bool) -> u16 {
    match (floated, transport) {
        (false, false) => ENCAP_TUNNEL,
        (false, true) => ENCAP_TRANSPORT,
        (true, false) => ENCAP_UDP_TUNNEL,
        (true, true) => ENCAP_UDP_TRANSPORT,
    }
}

fn qm_transform(number: u8, ts: &TransformSet, m: &CryptoMapEntry, encap: u16) -> Transform {
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

impl Endpoint {
    fn new_spi(&mut self) -> u32 {
        loop {
            let s = self.rng.u32();
            if s >= 256 && !self.pairs.iter().any(|p| p.inbound == s) {
                return s;
            }
        }
    }

    /// Initiator: QM1 for map entry `idx` under the established SA `sa`.
    pub(super) fn start_qm(
        &mut self,
        now: Instant,
        sa: &mut P1Sa,
        idx: usize,
        rekey_of: Option<u32>,
    ) {
        let P1State::Established(est) = &sa.state else {
            return;
        };
        let k = &est.k;
        let Some(m) = self.map_entry(idx).cloned() else {
            return;
        };
        let mid = loop {
            let x = self.rng.u32();
            if x != 0 && !sa.qm.contains_key(&x) {
                break x;
            }
        };
        let conn = sa.conn_id;
        let spi_in = self.new_spi();
        let ni = self.rng.bytes(20);
        let dh = m.pfs.map(|g| g.generate(&mut *self.rng));
        // One proposal per transform set (IOS sends each set as its own proposal).
        let mut proposals = Vec::new();
        let mut offered = Vec::new();
        for (i, ts) in m.transform_sets.iter().enumerate() {
            let n = i as u8 + 1;
            let encap = encap_mode(sa.nat.floated, ts.transport);
            proposals.push(Proposal {
                number: n,
                protocol: proto::ESP,
                spi: spi_in.to_be_bytes().to_vec(),
                transforms: vec![qm_transform(1, ts, &m, encap)],
            });
            offered.push((n, i));
        }
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
        rest.push(Payload::Id(id_proxy(&m.local_proxy)));
        rest.push(Payload::Id(id_proxy(&m.remote_proxy)));
        let mut rb = Vec::new();
        emit_chain(&rest, &mut rb);
        let mut ps = vec![Payload::Hash(qm_hash(k, mid, None, &rb))];
        ps.extend(rest);
        let commit = if self.cfg.qm_commit_bit {
            flags::COMMIT
        } else {
            0
        };
        let iv = k.phase2_iv(mid);
        let (out, new_iv) = k.seal(sa, &iv, ExchangeType::QuickMode, mid, commit, &ps);
        let tx = framed(sa.local, sa.remote, out);
        let (timers, retx) = first_timers(now, self.cfg.retransmit_base, &tx);
        let offer = QmOffer {
            ni,
            dh,
            offered,
            rekey_of,
        };
        let q = Qm {
            initiator: true,
            iv: new_iv,
            map_idx: idx,
            local_proxy: m.local_proxy,
            remote_proxy: m.remote_proxy,
            spi_in,
            retx: Some(retx),
            last_rx: vec![],
            last_tx: None,
            timers,
            state: QmState::ExpectQm2(offer),
            started: now,
        };
        self.ik(
            conn,
            format!("beginning Quick Mode exchange, M-ID of {mid}"),
        );
        self.ik(
            conn,
            format!("sending packet to {} (I) QM_IDLE", v4(tx.remote)),
        );
        self.qm_begun(conn, mid, &q, QM_INIT);
        sa.qm.insert(mid, q);
        self.transmits.push_back(tx);
    }

    /// A Quick Mode message, to the handler of its exchange's state (a new exchange if its
    /// message ID is new).
    pub(super) fn quick_mode(&mut self, sa: &mut P1Sa, rx: &Rx) -> R<()> {
        let (hdr, msg) = (rx.hdr, rx.msg);
        let mid = hdr.message_id;
        if !sa.state.is_established() || mid == 0 || !hdr.encrypted() {
            self.counters.rx_unexpected += 1;
            return Ok(());
        }
        sa.last_peer_activity = rx.now;
        // Retransmitted QM message: resend our last answer.
        if let Some(q) = sa.qm.get(&mid) {
            if q.last_rx == msg {
                self.counters.rx_retransmissions += 1;
                if let Some(tx) = q.last_tx.clone() {
                    self.transmits.push_back(tx);
                }
                return Ok(());
            }
        }
        self.ik(
            sa.conn_id,
            format!(
                "received packet from {} ({}) QM_IDLE",
                v4(rx.remote),
                sa.role()
            ),
        );
        let Some(mut q) = sa.qm.remove(&mid) else {
            if let Some(q) = self.r_qm1(sa, rx)? {
                sa.qm.insert(mid, q);
            }
            return Ok(());
        };
        let res = self.qm_step(sa, &mut q, rx);
        sa.qm.insert(mid, q);
        res
    }

    /// A message of exchange `q` (taken out of its SA meanwhile).
    fn qm_step(&mut self, sa: &P1Sa, q: &mut Qm, rx: &Rx) -> R<()> {
        let P1State::Established(est) = &sa.state else {
            return Ok(());
        };
        let mid = rx.hdr.message_id;
        let old = std::mem::replace(&mut q.state, QmState::Complete);
        let from = old.ios();
        match old {
            QmState::ExpectQm2(offer) => {
                let (ps, pt, iv) = match self.decrypt(&est.k, &q.iv, &rx.hdr, rx.msg) {
                    Ok(d) => d,
                    Err(e) => {
                        q.state = QmState::ExpectQm2(offer);
                        return Err(e);
                    }
                };
                let m = QmRx {
                    rx,
                    mid,
                    ps,
                    pt,
                    iv,
                };
                match self.i_qm2(sa, &est.k, q, &offer, &m) {
                    Ok(answer) => {
                        self.i_qm3(sa, &est.k, q, (from, offer), answer, &m);
                        // A retransmitted QM2 (our QM3 was lost) gets QM3 again.
                        q.last_rx = rx.msg.to_vec();
                        Ok(())
                    }
                    Err(e) => {
                        q.state = QmState::ExpectQm2(offer);
                        Err(e)
                    }
                }
            }
            QmState::ExpectQm3(agreed) => {
                match self.r_qm3_check(&est.k, q, &agreed, sa.conn_id, rx) {
                    Ok(()) => {
                        self.r_qm3(sa, &est.k, q, (from, agreed), rx.now, mid);
                        Ok(())
                    }
                    Err(e) => {
                        q.state = QmState::ExpectQm3(agreed);
                        Err(e)
                    }
                }
            }
            QmState::Complete => {
                self.counters.rx_unexpected += 1;
                Ok(())
            }
        }
    }

    /// Initiator, QM2: checks HASH(2) and the responder's choice against our offer.
    fn i_qm2(&mut self, sa: &P1Sa, k: &IsakmpKeys, q: &Qm, offer: &QmOffer, m: &QmRx) -> R<Qm2> {
        let (conn, mid, ps) = (sa.conn_id, m.mid, &m.ps);
        self.processing(conn, mid, &["HASH"]);
        check_qm_hash(k, mid, ps, &m.pt, Some(&offer.ni))?;
        let (Some(Payload::Sa(sap)), Some(Payload::Nonce(nr))) =
            (find(ps, PayloadType::Sa), find(ps, PayloadType::Nonce))
        else {
            return Err(IkeError::Peer("QM2 without SA/NONCE"));
        };
        self.processing(conn, mid, &["SA"]);
        let map = self
            .map_entry(q.map_idx)
            .cloned()
            .ok_or(IkeError::Policy("crypto map entry removed"))?;
        let prop = sap.proposals.first().ok_or(IkeError::Peer("empty SA"))?;
        let t = prop
            .transforms
            .first()
            .ok_or(IkeError::Peer("empty proposal"))?;
        if prop.spi.len() != 4 || prop.protocol != proto::ESP {
            return Err(IkeError::Peer("QM2 proposal"));
        }
        let &(_, ts_idx) = offer
            .offered
            .iter()
            .find(|(n, _)| *n == prop.number)
            .ok_or(IkeError::Peer("proposal number not offered"))?;
        let ts = map
            .transform_sets
            .get(ts_idx)
            .cloned()
            .ok_or(IkeError::Policy("transform set removed"))?;
        self.ik(conn, format!("Checking IPsec proposal {}", prop.number));
        self.ik_raw(format!(
            "ISAKMP: transform {}, {}",
            t.number,
            ts.enc.isakmp_name()
        ));
        self.ik_raw("ISAKMP:   attributes in transform:");
        let mut secs = map.lifetime_secs;
        let mut kb = map.lifetime_kb;
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
        for n in ps.iter().filter_map(|p| match p {
            Payload::Notify(n) if n.notify_type == NotifyType::ResponderLifetime.code() => Some(n),
            _ => None,
        }) {
            self.ik(
                conn,
                format!(
                    "processing NOTIFY RESPONDER_LIFETIME protocol {}",
                    n.protocol
                ),
            );
            let Ok(attrs) = Attr::parse_list(&n.data, "RESPONDER-LIFETIME") else {
                continue;
            };
            let mut lt = 0;
            for a in attrs {
                match a.ty {
                    p2::LIFE_TYPE => lt = a.as_u64().unwrap_or(0),
                    p2::LIFE_DURATION if lt == 1 => {
                        secs = secs.min(a.as_u64().unwrap_or(u64::MAX).min(u32::MAX as u64) as u32)
                    }
                    p2::LIFE_DURATION if lt == 2 => kb = kb.min(a.as_u64().unwrap_or(u64::MAX)),
                    _ => {}
                }
            }
        }
        let peer_ke = ke_of(ps);
        if offer.dh.is_some() != peer_ke.is_some() {
            return Err(IkeError::Peer("PFS KE mismatch"));
        }
        Ok(Qm2 {
            choice: QmChoice {
                ts,
                secs,
                kb,
                peer_spi: spi_u32(&prop.spi),
            },
            nr: nr.clone(),
            peer_ke,
        })
    }

    /// Initiator, after an accepted QM2: the offer's secrets join what was agreed; QM3, and
    /// the SA pair.
    fn i_qm3(
        &mut self,
        sa: &P1Sa,
        k: &IsakmpKeys,
        q: &mut Qm,
        (from, offer): (IosState, QmOffer),
        answer: Qm2,
        m: &QmRx,
    ) {
        let (conn, mid) = (sa.conn_id, m.mid);
        let a = QmAgreed {
            choice: answer.choice,
            ni: offer.ni,
            nr: answer.nr,
            dh: offer.dh,
            peer_ke: answer.peer_ke,
            commit: false,
            rekey_of: offer.rekey_of,
        };
        let hash3 = qm_hash3(k, mid, &a);
        // The commit bit set by the responder is echoed in QM3; the responder then sends
        // CONNECTED once its SAs are in place.
        let flags = m.rx.hdr.flags & flags::COMMIT;
        let (out, iv3) = k.seal(
            sa,
            &m.iv,
            ExchangeType::QuickMode,
            mid,
            flags,
            &[Payload::Hash(hash3)],
        );
        let tx = framed(sa.local, sa.remote, out);
        q.iv = iv3;
        q.retx = None;
        q.timers.stop(Timer::Retransmit);
        q.last_tx = Some(tx.clone());
        self.install(m.rx.now, sa, k, q, a);
        self.ik(
            conn,
            format!("sending packet to {} (I) QM_IDLE", v4(tx.remote)),
        );
        self.transmits.push_back(tx);
        self.qm_enter(conn, mid, q, QM_FROM_PEER, from, QmState::Complete);
    }

    /// Responder, QM3: checks HASH(3).
    fn r_qm3_check(&mut self, k: &IsakmpKeys, q: &Qm, a: &QmAgreed, conn: u32, rx: &Rx) -> R<()> {
        let mid = rx.hdr.message_id;
        let (ps, _pt, _iv) = self.decrypt(k, &q.iv, &rx.hdr, rx.msg)?;
        let Some(Payload::Hash(h)) = ps.first() else {
            return Err(IkeError::Peer("QM3 without HASH"));
        };
        self.processing(conn, mid, &["HASH"]);
        if *h != qm_hash3(k, mid, a) {
            return Err(IkeError::HashFailed);
        }
        Ok(())
    }

    /// Responder, after a verified QM3: the SA pair, and CONNECTED if the commit bit asks.
    fn r_qm3(
        &mut self,
        sa: &P1Sa,
        k: &IsakmpKeys,
        q: &mut Qm,
        (from, a): (IosState, QmAgreed),
        now: Instant,
        mid: u32,
    ) {
        let conn = sa.conn_id;
        let commit = a.commit;
        self.qm_enter(conn, mid, q, QM_FROM_PEER, from, QmState::Complete);
        q.retx = None;
        q.timers.stop(Timer::Retransmit);
        self.install(now, sa, k, q, a);
        if commit {
            let spi = q.spi_in.to_be_bytes().to_vec();
            self.ik(
                conn,
                format!("Node {mid}: commit bit set, sending CONNECTED"),
            );
            self.send_info_notify(sa, NotifyType::Connected, proto::ESP, spi);
        }
    }
}
