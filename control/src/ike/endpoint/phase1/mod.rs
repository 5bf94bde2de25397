//! Phase 1: the steps Main Mode ([`main`]) and Aggressive Mode ([`aggressive`]) share —
//! starting an exchange, the proposal, the key computation, HASH_I/HASH_R, the phase-1
//! cipher, completion — and the dispatch of a phase-1 message to its state's handler.
//!
//! A handler takes its state by value and returns a [`Step`]: the next state, or the old
//! one back with the error. [`Endpoint::enter`] then stores the new state and prints the
//! transition line from the old and new states' IOS names.

mod aggressive;
mod auth_rsa;
mod auth_rsa_encr;
mod encr_aggressive;
mod encr_main;
mod main;
mod state;

pub use state::*;

use super::debug::{p1_attrs_desc, PROCESS_COMPLETE};
use super::natt::framed;
use super::payloads::*;
use super::timers::{Retx, Timer};
use super::*;
use crate::isakmp::attr::{self, p1};
use std::time::Duration;

/// How long an Aggressive Mode initiator waits after AM3 before QM1.
const AM_QM_HOLD: Duration = Duration::from_millis(300);

/// What a handler made of its state: the next state, or the old one back (unchanged) with
/// the reason the message was refused.
type Step = Result<P1State, (P1State, IkeError)>;

/// `expr?` for handlers: on error, hands `$st` (the state the handler took) back.
macro_rules! keep {
    ($e:expr, $st:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Err((Phase1State::into_state($st), IkeError::from(e))),
        }
    };
}
use keep;

/// The first message of a phase 1 we respond to (MM1, AM1), with the key for its peer.
struct First {
    now: Instant,
    psk: Secret,
    m: Message,
}

/// The inputs of the key computation (SKEYID, SKEYID_d/a/e, Ka, the phase-1 IV).
struct KeyInput<'a> {
    neg: Negotiated,
    psk: &'a [u8],
    sai_b: &'a [u8],
    dh: &'a DhKeyPair,
    own_nonce: &'a [u8],
    peer_ke: &'a [u8],
    peer_nonce: &'a [u8],
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
        Attr::basic(p1::AUTH, p.auth.code()),
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

/// The responder's vendor IDs in MM2 and AM2: RFC 3947 if the initiator sent it, DPD.
fn reply_vids(natt: bool) -> Vec<Payload> {
    let mut v = Vec::new();
    if natt {
        v.push(Payload::VendorId(VID_RFC3947.to_vec()));
    }
    v.push(Payload::VendorId(VID_DPD.to_vec()));
    v
}

/// The body of an ID payload (HASH_I and HASH_R cover it).
fn id_body(id: &IdPayload) -> Vec<u8> {
    Payload::Id(id.clone()).body_bytes()
}

impl IsakmpKeys {
    /// Encrypts a payload chain with `iv`; returns the message and the IV after it.
    pub fn seal(
        &self,
        sa: &P1Sa,
        iv: &[u8],
        exchange: ExchangeType,
        mid: u32,
        flags: u8,
        payloads: &[Payload],
    ) -> (Vec<u8>, Vec<u8>) {
        let bl = self.neg.enc.block_len();
        let mut pt = Vec::new();
        emit_chain(payloads, &mut pt);
        let pad = (bl - pt.len() % bl) % bl;
        pt.extend(std::iter::repeat_n(0u8, pad));
        self.neg.enc.cbc_encrypt(&self.ka, iv, &mut pt);
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

    /// The IV of the Quick Mode or Informational exchange `mid` (RFC 2409 App. B).
    pub fn phase2_iv(&self, mid: u32) -> Vec<u8> {
        phase2_iv(self.neg.hash, &self.iv, mid, self.neg.enc.block_len())
    }

    /// prf(SKEYID_a, parts): the HASH of Quick Mode and Informational messages.
    pub fn prf_a(&self, parts: &[&[u8]]) -> Vec<u8> {
        self.neg.hash.prf(&self.a, parts).to_vec()
    }
}

impl P1Sa {
    /// HASH_I (`of_initiator`) or HASH_R (RFC 2409 §5): prf(SKEYID, the sender's g^x | the
    /// other g^x | the sender's cookie | the other cookie | SAi_b | the sender's ID_b).
    fn auth_hash(&self, k: &Keyed, of_initiator: bool, id_b: &[u8]) -> Vec<u8> {
        let [gx, gy, cx, cy]: [&[u8]; 4] = if of_initiator {
            [&k.gxi, &k.gxr, &self.icookie, &self.rcookie]
        } else {
            [&k.gxr, &k.gxi, &self.rcookie, &self.icookie]
        };
        k.k.neg
            .hash
            .prf(&k.k.skeyid, &[gx, gy, cx, cy, &k.sai_b, id_b])
            .to_vec()
    }

    /// The HASH payload we send: HASH_I as initiator, HASH_R as responder, over our ID.
    fn own_hash(&self, k: &Keyed, own_id_b: &[u8]) -> Payload {
        Payload::Hash(self.auth_hash(k, self.initiator, own_id_b))
    }

    /// A notification about the ISAKMP SA itself: its SPI is the two cookies.
    pub(super) fn isakmp_notify(&self, nt: NotifyType, data: Vec<u8>) -> Payload {
        let mut spi = self.icookie.to_vec();
        spi.extend_from_slice(&self.rcookie);
        Payload::Notify(NotifyPayload {
            doi: DOI_IPSEC,
            protocol: proto::ISAKMP,
            notify_type: nt.code(),
            spi,
            data,
        })
    }

    /// An unencrypted phase-1 message from this SA's cookies.
    pub(super) fn clear_msg(&self, exchange: ExchangeType, payloads: Vec<Payload>) -> Vec<u8> {
        Message {
            header: HeaderRepr {
                icookie: self.icookie,
                rcookie: self.rcookie,
                next_payload: 0,
                version: VERSION_1_0,
                exchange,
                flags: 0,
                message_id: 0,
                length: 0,
            },
            payloads,
        }
        .to_bytes()
    }
}

/// Encrypts a phase-1 message (MM5, MM6, AM3) and moves the phase-1 IV past it.
fn encrypt_p1(sa: &P1Sa, k: &mut IsakmpKeys, exchange: ExchangeType, ps: &[Payload]) -> Vec<u8> {
    let (out, new_iv) = k.seal(sa, &k.iv, exchange, 0, 0, ps);
    k.iv = new_iv;
    out
}

impl Endpoint {
    /// Decrypts `msg` with `iv`; returns the payloads, the plaintext and the IV after it.
    pub(super) fn decrypt(
        &mut self,
        k: &IsakmpKeys,
        iv: &[u8],
        hdr: &HeaderRepr,
        msg: &[u8],
    ) -> R<(Vec<Payload>, Vec<u8>, Vec<u8>)> {
        let body = &msg[HEADER_LEN..];
        let bl = k.neg.enc.block_len();
        if body.is_empty() || !body.len().is_multiple_of(bl) {
            self.counters.rx_decrypt_failed += 1;
            return Err(WireError::BadCiphertext.into());
        }
        let mut pt = body.to_vec();
        k.neg.enc.cbc_decrypt(&k.ka, iv, &mut pt);
        let new_iv = body[body.len() - bl..].to_vec();
        let payloads = parse_chain(hdr.next_payload, &pt, true)?;
        Ok((payloads, pt, new_iv))
    }

    /// Decrypts a phase-1 message; the IV after it is returned, not applied, so a message
    /// that fails verification does not move the IV.
    fn decrypt_p1(
        &mut self,
        k: &IsakmpKeys,
        hdr: &HeaderRepr,
        msg: &[u8],
    ) -> R<(Vec<Payload>, Vec<u8>)> {
        let (ps, _pt, new_iv) = self.decrypt(k, &k.iv, hdr, msg)?;
        Ok((ps, new_iv))
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
        self.counters.p1_started += 1;
        P1Sa::new(now, conn_id, initiator, mode, local, remote)
    }

    /// Sends a phase-1 message from the SA's current endpoints; `reliable` arms
    /// retransmission (the bytes are kept and resent unchanged, so the IV does not move).
    /// `show` is the state the send line names.
    fn send_p1(&mut self, now: Instant, sa: &mut P1Sa, msg: Vec<u8>, reliable: bool, show: &str) {
        let tx = framed(sa.local, sa.remote, msg);
        if reliable {
            let base = self.cfg.retransmit_base;
            sa.retx = Some(Retx::arm(tx.clone(), now, base, &mut sa.timers));
        } else {
            sa.stop_retx();
        }
        sa.last_tx = Some(tx.clone());
        self.ik(
            sa.conn_id,
            format!("sending packet to {} ({}) {show}", v4(tx.remote), sa.role()),
        );
        self.transmits.push_back(tx);
    }

    /// Initiator: a new phase 1 for map entry `idx` (MM1 or AM1), which runs its Quick
    /// Mode once complete.
    pub(super) fn start_p1(&mut self, now: Instant, idx: usize, rekey_of: Option<u32>) {
        let Some(m) = self.map_entry(idx).cloned() else {
            return;
        };
        let local = SocketAddr::new(self.cfg.local_addr.into(), IKE_PORT);
        let remote = SocketAddr::new(m.peer.into(), IKE_PORT);
        let mut sa = self.new_p1(now, true, m.mode, local, remote);
        sa.icookie = self.new_cookie();
        sa.waiting.push((idx, rekey_of));
        let conn = sa.conn_id;
        // An Easy VPN tunnel's entry: the group key, ID_KEY_ID, XAUTHInitPreShared.
        let ez = self.ez_p1_params(idx, sa.icookie);
        let psk = match &ez {
            Some((key, _)) => Some(key.clone()),
            None => self.cfg.psk_for(m.peer).map(|k| k.key.clone()),
        };
        let Some(psk) = psk.or_else(|| self.cfg.pki.as_ref().map(|_| Secret::default())) else {
            self.ik(conn, format!("No pre-shared key with {}!", m.peer));
            self.counters.p1_failed.add(FailReason::NoKey);
            self.events.push_back(Event::NegotiationFailed {
                peer: m.peer,
                reason: "no pre-shared key".into(),
            });
            return;
        };
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
            // One KE payload and one ID: only policies with the first policy's group and
            // authentication method.
            let (g, auth) = (policies[0].group, policies[0].auth);
            policies.retain(|p| p.group == g && p.auth == auth);
        }
        let sa_p = Payload::Sa(SaPayload {
            doi: DOI_IPSEC,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: proto::ISAKMP,
                spi: vec![],
                transforms: policies
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let mut t = p1_transform(i as u8 + 1, p);
                        if ez.is_some() && p.auth == AuthMethod::PreShared {
                            for a in t.attrs.iter_mut().filter(|a| a.ty == p1::AUTH) {
                                *a = Attr::basic(p1::AUTH, super::transaction::AUTH_XAUTH_INIT_PSK);
                            }
                        }
                        t
                    })
                    .collect(),
            }],
        });
        let sai_b = sa_p.body_bytes();
        let mut vids = vec![
            Payload::VendorId(VID_RFC3947.to_vec()),
            Payload::VendorId(VID_NATT_DRAFT02N.to_vec()),
            Payload::VendorId(VID_DPD.to_vec()),
        ];
        vids.extend(self.frag_vids(true, false));
        if ez.is_some() {
            vids.push(Payload::VendorId(super::transaction::VID_XAUTH.to_vec()));
            vids.push(Payload::VendorId(super::transaction::VID_UNITY.to_vec()));
        }
        let mut ps = vec![sa_p];
        let (exchange, input, begin, new) = if m.mode == Phase1Mode::Main {
            ps.extend(vids);
            let st = ExpectMm2 { psk, sai_b };
            let begin = "beginning Main Mode exchange";
            (ExchangeType::Main, "IKE_SA_REQ_MM", begin, st.into_state())
        } else {
            let dh = policies[0].group.generate(&mut *self.rng);
            let ni = self.rng.bytes(20);
            let id = match &ez {
                Some((_, id)) => id.clone(),
                None => self.own_id(policies[0].auth),
            };
            self.log_auth_kind(conn, policies[0].auth, &id);
            if policies[0].auth == AuthMethod::RsaEncr {
                // [HASH(1)], KE, <IDii_b>PubKey_r, <Ni_b>PubKey_r (RFC 2409 §5.2).
                let h = policies[0].hash;
                match self.encr_to_responder(conn, m.peer, h, &id_body(&id), &ni) {
                    Ok((hash1, enc)) => {
                        ps.extend(hash1);
                        ps.push(Payload::Ke(dh.public.clone()));
                        ps.extend(enc);
                    }
                    Err(e) => return self.encr_start_failed(conn, m.peer, e),
                }
            } else {
                ps.extend([
                    Payload::Ke(dh.public.clone()),
                    Payload::Nonce(ni.clone()),
                    Payload::Id(id.clone()),
                ]);
            }
            ps.extend(self.certreqs(policies[0].auth));
            ps.extend(vids);
            let st = ExpectAm2 {
                psk,
                sai_b,
                dh,
                ni,
                idi_b: id_body(&id),
            };
            let begin = "beginning Aggressive Mode exchange";
            (
                ExchangeType::Aggressive,
                "IKE_SA_REQ_AM",
                begin,
                st.into_state(),
            )
        };
        let show = new.show();
        self.enter(&mut sa, &format!("IKE_MSG_FROM_IPSEC, {input}"), new);
        self.ik(conn, begin);
        let bytes = sa.clear_msg(exchange, ps);
        self.send_p1(now, &mut sa, bytes, true, show);
        self.p1.insert(sa.icookie, sa);
    }

    /// Phase-1 SAs a peer began that are not yet established (IOS's in-negotiation SAs,
    /// bounded by the half-open limit).
    pub fn half_open(&self) -> usize {
        self.p1
            .values()
            .filter(|s| !s.initiator && !s.state.is_established())
            .count()
    }

    /// Whether a new half-open SA from `peer` fits. When the table is full, a peer a crypto
    /// map names (`set peer`) still gets in, in place of the oldest half-open SA of a peer no
    /// map names: a flood of first messages from spoofed addresses cannot lock the
    /// configured site-to-site peers out.
    fn admit_half_open(&mut self, peer: Ipv4Addr) -> bool {
        if self.half_open() < self.cfg.half_open_limit {
            return true;
        }
        let named = |a: Ipv4Addr| self.cfg.maps.iter().any(|m| m.peer == a);
        if !named(peer) {
            return false;
        }
        let oldest = self
            .p1
            .iter()
            .filter(|(_, s)| !s.initiator && !s.state.is_established() && !named(v4(s.remote)))
            .min_by_key(|(_, s)| s.started)
            .map(|(k, _)| *k);
        let Some(key) = oldest else {
            return false;
        };
        self.p1.remove(&key);
        self.ra_gone(key);
        self.counters.half_open_evicted += 1;
        true
    }

    /// Responder: the first message of a new phase 1 (MM1 or AM1).
    pub(super) fn responder_first(&mut self, rx: &Rx) {
        let (now, local, remote, hdr, msg) = (rx.now, rx.local, rx.remote, rx.hdr, rx.msg);
        if !self.admit_half_open(v4(remote)) {
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
        self.ik(
            conn,
            format!(
                "received packet from {} dport {} sport {} (N) NEW SA",
                v4(remote),
                local.port(),
                remote.port()
            ),
        );
        let group = self.ra_group_key(conn, mode, &m, v4(remote));
        if let Some(Err(())) = group {
            self.counters.p1_failed.add(FailReason::NoKey);
            return;
        }
        let (psk, group) = match group {
            Some(Ok((g, key))) => (key, Some(g)),
            _ => {
                let psk = self.cfg.psk_for(v4(remote)).map(|k| k.key.clone());
                if psk.is_some() {
                    self.log_psk_found(conn, v4(remote));
                }
                // With certificates and no key for the peer, SKEYID comes from the nonces
                // (rsa-sig); a pre-shared-key policy is never chosen with an empty key.
                let Some(psk) = psk.or_else(|| self.cfg.pki.as_ref().map(|_| Secret::default()))
                else {
                    self.ik(conn, format!("No pre-shared key with {}!", v4(remote)));
                    self.counters.p1_failed.add(FailReason::NoKey);
                    return;
                };
                (psk, None)
            }
        };
        if let Some(g) = group {
            self.ra_bind(&sa, g);
        }
        let r = if mode == Phase1Mode::Main {
            self.r_mm1(&mut sa, First { now, psk, m })
        } else {
            self.r_am1(&mut sa, First { now, psk, m })
        };
        match r {
            Ok(new) => {
                self.enter(&mut sa, PROCESS_COMPLETE, new);
                self.p1.insert(sa.icookie, sa);
            }
            Err(e) => {
                self.ik(conn, format!("{e}"));
                if e.blame() == Blame::LocalPolicy {
                    self.syslog(SyslogMessage::crypto(
                        INFORMATIONAL,
                        "IKMP_MODE_FAILURE",
                        format!("Processing of Main mode failed with peer at {}", v4(remote)),
                    ));
                    self.ik(
                        conn,
                        "phase 1 SA policy not acceptable!".to_string()
                            + &format!(" (local {} remote {})", v4(local), v4(remote)),
                    );
                    self.send_notify_clear(&sa, NotifyType::NoProposalChosen);
                }
                self.counters.p1_failed.add(e.fail_reason());
                self.events.push_back(Event::NegotiationFailed {
                    peer: v4(remote),
                    reason: e.to_string(),
                });
            }
        }
    }

    /// A phase-1 message (Main or Aggressive Mode), to the handler of the state the SA
    /// waits in.
    pub(super) fn phase1(&mut self, sa: &mut P1Sa, rx: &Rx) -> R<()> {
        self.log_received(sa, rx.remote);
        let step = match (
            rx.hdr.exchange,
            std::mem::replace(&mut sa.state, P1State::Dead),
        ) {
            (ExchangeType::Main, P1State::ExpectMm2(s)) => self.i_mm2(sa, s, rx),
            (ExchangeType::Main, P1State::ExpectMm3(s)) if s.c.neg.auth == AuthMethod::RsaEncr => {
                self.r_mm3_encr(sa, s, rx)
            }
            (ExchangeType::Main, P1State::ExpectMm4(s)) if s.encr.is_some() => {
                self.i_mm4_encr(sa, s, rx)
            }
            (ExchangeType::Main, P1State::ExpectMm5(s)) if s.k.encr.is_some() => {
                self.r_mm5_encr(sa, s, rx)
            }
            (ExchangeType::Main, P1State::ExpectMm6(s)) if s.k.encr.is_some() => {
                self.i_mm6_encr(sa, s, rx)
            }
            (ExchangeType::Main, P1State::ExpectMm3(s)) => self.r_mm3(sa, s, rx),
            (ExchangeType::Main, P1State::ExpectMm4(s)) => self.i_mm4(sa, s, rx),
            (ExchangeType::Main, P1State::ExpectMm5(s)) => self.r_mm5(sa, s, rx),
            (ExchangeType::Main, P1State::ExpectMm6(s)) => self.i_mm6(sa, s, rx),
            (ExchangeType::Aggressive, P1State::ExpectAm2(s)) => self.i_am2(sa, s, rx),
            (ExchangeType::Aggressive, P1State::ExpectAm3(s)) => self.r_am3(sa, s, rx),
            (_, other) => {
                sa.state = other;
                self.counters.rx_unexpected += 1;
                return Ok(());
            }
        };
        match step {
            Ok(new) => {
                let done = new.is_established();
                self.enter(sa, PROCESS_COMPLETE, new);
                if done {
                    self.p1_complete(rx.now, sa);
                }
                Ok(())
            }
            Err((old, e)) => {
                sa.ios = old.ios();
                sa.state = old;
                Err(e)
            }
        }
    }

    fn process_vids(&mut self, sa: &mut P1Sa, ps: &[Payload]) {
        let conn = sa.conn_id;
        for p in ps {
            if let Payload::VendorId(v) = p {
                self.ik(conn, "processing vendor id payload");
                if v[..] == VID_DPD {
                    sa.peer_dpd = true;
                    self.ik(conn, "vendor ID is DPD");
                } else if v[..] == VID_RFC3947 {
                    sa.nat.peer_rfc3947 = true;
                    self.ik(conn, "vendor ID is NAT-T RFC 3947");
                } else if v[..] == VID_NATT_DRAFT02N {
                    self.ik(conn, "vendor ID is NAT-T v2");
                } else if crate::isakmp::fragment::is_fragmentation_vid(v) {
                    sa.frag.peer = true;
                    self.ik(conn, "vendor ID is Fragmentation");
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
                    && if pol.auth.code() == 1 {
                        self.ra_auth_ok(auth)
                    } else {
                        auth == pol.auth.code()
                    }
                    && group == pol.group
                    && group_needed.is_none_or(|g| g == group)
            })
            .map(|(enc, hash, _, group, life)| Negotiated {
                enc,
                hash,
                group,
                lifetime: life.min(pol.lifetime),
                auth: pol.auth,
            });
        let not = if neg.is_some() { "" } else { "not " };
        self.ik(
            conn,
            format!("atts are {not}acceptable. Next payload is {next}"),
        );
        neg
    }

    /// Responder: the initiator's SA payload checked against every policy in priority
    /// order. Returns the SA payload of the reply, the choice, and SAi_b.
    fn choose_p1(
        &mut self,
        conn: u32,
        sap: &SaPayload,
        group_needed: Option<DhGroup>,
    ) -> R<(Payload, Negotiated, Vec<u8>)> {
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
                        let reply = Payload::Sa(SaPayload {
                            doi: DOI_IPSEC,
                            situation: SIT_IDENTITY_ONLY,
                            proposals: vec![Proposal {
                                number: prop.number,
                                protocol: proto::ISAKMP,
                                spi: vec![],
                                transforms: vec![t.clone()],
                            }],
                        });
                        let neg = Negotiated {
                            lifetime: neg.lifetime.max(60),
                            ..neg
                        };
                        return Ok((reply, neg, Payload::Sa(sap.clone()).body_bytes()));
                    }
                }
            }
        }
        Err(IkeError::Policy("no acceptable phase 1 proposal"))
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

    /// SKEYID and what follows from it (RFC 2409 §5, App. B), from the DH exchange.
    fn compute_keys(&mut self, sa: &P1Sa, i: KeyInput) -> R<Keyed> {
        let neg = i.neg;
        let gxy =
            i.dh.shared(i.peer_ke)
                .map_err(|_| IkeError::Peer("bad KE"))?;
        let own_gx = i.dh.public.clone();
        let (gxi, gxr, ni, nr) = if sa.initiator {
            (own_gx, i.peer_ke.to_vec(), i.own_nonce, i.peer_nonce)
        } else {
            (i.peer_ke.to_vec(), own_gx, i.peer_nonce, i.own_nonce)
        };
        let skeyid = match neg.auth {
            AuthMethod::RsaSig => crate::pki::ike::skeyid_sig(neg.hash, ni, nr, &gxy),
            AuthMethod::RsaEncr => {
                crate::pki::ike::skeyid_encr(neg.hash, ni, nr, &sa.icookie, &sa.rcookie)
            }
            // No key for this peer: never a pre-shared SKEYID from an empty key.
            AuthMethod::PreShared if i.psk.is_empty() => {
                return Err(IkeError::Policy("no pre-shared key for this peer"))
            }
            _ => skeyid_psk(neg.hash, i.psk, ni, nr),
        };
        let ids = derive_skeyids(neg.hash, &skeyid, &gxy, &sa.icookie, &sa.rcookie);
        let ka = encryption_key(neg.hash, &ids.e, neg.enc.key_len());
        let iv = phase1_iv(neg.hash, &gxi, &gxr, neg.enc.block_len());
        self.ik(sa.conn_id, "SKEYID state generated");
        Ok(Keyed {
            k: IsakmpKeys {
                neg,
                skeyid,
                d: ids.d,
                a: ids.a,
                ka,
                iv,
            },
            gxi,
            gxr,
            sai_b: i.sai_b.to_vec(),
            encr: None,
        })
    }

    /// Checks the peer's HASH_R (we initiated) or HASH_I (we respond) over its ID body.
    fn verify_peer_hash(&mut self, sa: &P1Sa, k: &Keyed, peer_id_b: &[u8], h: &[u8]) -> R<()> {
        self.processing(sa.conn_id, 0, &["HASH"]);
        if *h != sa.auth_hash(k, !sa.initiator, peer_id_b) {
            return Err(IkeError::HashFailed);
        }
        Ok(())
    }

    /// The SA has just entered [`Established`]: its lifetime, rekey, DPD and keepalive
    /// timers, the event, and the Quick Modes that waited for it.
    fn p1_complete(&mut self, now: Instant, sa: &mut P1Sa) {
        let P1State::Established(est) = &sa.state else {
            return;
        };
        let (neg, ka) = (est.k.neg, est.k.ka.clone());
        sa.stop_retx();
        sa.timers.stop(Timer::Negotiation);
        let life = Duration::from_secs(neg.lifetime as u64);
        sa.timers.set(Timer::Expire, now + life);
        if sa.initiator {
            let soft = Duration::from_secs(neg.lifetime as u64 * 9 / 10);
            sa.timers.set(Timer::Rekey, now + soft);
        }
        sa.last_peer_activity = now;
        if let (Some((interval, _)), true) = (self.cfg.dpd, sa.peer_dpd) {
            sa.timers.set(Timer::Dpd, now + interval);
        }
        if sa.nat.local_behind {
            sa.timers
                .set(Timer::Keepalive, now + self.cfg.nat_keepalive);
        }
        self.counters.p1_established += 1;
        self.counters
            .p1_setup
            .record(now.saturating_duration_since(sa.started));
        self.events.push_back(Event::IsakmpSaUp {
            conn_id: sa.conn_id,
            peer: sa.remote,
            icookie: sa.icookie,
            rcookie: sa.rcookie,
            enc: neg.enc,
            enc_key: ka,
        });
        self.ra_p1_complete(now, sa);
        if self.ez_p1_complete(now, sa) {
            return; // an Easy VPN tunnel: Transaction Mode first
        }
        if sa.initiator && sa.mode == Phase1Mode::Aggressive && !sa.waiting.is_empty() {
            sa.timers.set(Timer::QmHold, now + AM_QM_HOLD);
            return;
        }
        self.start_waiting(now, sa);
    }

    /// Starts the Quick Modes that waited for phase 1.
    pub(super) fn start_waiting(&mut self, now: Instant, sa: &mut P1Sa) {
        for (idx, rekey_of) in std::mem::take(&mut sa.waiting) {
            self.start_qm(now, sa, idx, rekey_of);
        }
    }
}
