//! Main Mode (RFC 2409 §5, pre-shared keys): six messages, each handler taking the state
//! that waits for its message and returning the next.
//!
//! Initiator: `ExpectMm2` → `ExpectMm4` → `ExpectMm6` → `Established`.
//! Responder: (MM1) → `ExpectMm3` → `ExpectMm5` → `Established`.

// A refused message hands the state back in `Err`, as large as the `Ok` state: boxing it
// would shrink neither.
#![allow(clippy::result_large_err)]

use super::super::debug::{IosState, FROM_PEER_MM, PROCESS_MM};
use super::*;

impl Endpoint {
    /// Responder, MM1 → MM2: the initiator's offer against our policies; our choice.
    pub(super) fn r_mm1(&mut self, sa: &mut P1Sa, first: First) -> R<P1State> {
        let (conn, First { now, psk, m }) = (sa.conn_id, first);
        self.pass(sa, FROM_PEER_MM, IosState::RMm1);
        let Some(Payload::Sa(sap)) = find(&m.payloads, PayloadType::Sa) else {
            return Err(IkeError::Peer("MM1 without SA"));
        };
        self.process_vids(sa, &m.payloads);
        let (reply_sa, neg, sai_b) = self.choose_p1(conn, sap, None)?;
        self.pass(sa, PROCESS_MM, IosState::RMm1);
        let mut ps = vec![reply_sa];
        ps.extend(reply_vids(sa.nat.peer_rfc3947));
        ps.extend(self.ra_vids());
        ps.extend(self.frag_vids(false, sa.frag.peer));
        let msg = sa.clear_msg(ExchangeType::Main, ps);
        self.send_p1(now, sa, msg, true, ExpectMm3::SHOW);
        Ok(ExpectMm3 {
            c: Chosen { psk, sai_b, neg },
        }
        .into_state())
    }

    /// MM3 (responder) / MM4 (initiator): the peer's KE and nonce, after the SA passes into
    /// IOS state `to`. Returns the message's payloads, the KE and the nonce.
    fn mm_peer_ke(
        &mut self,
        sa: &mut P1Sa,
        rx: &Rx,
        to: IosState,
        missing: &'static str,
    ) -> R<(Vec<Payload>, Vec<u8>, Vec<u8>)> {
        let m = Message::parse(rx.msg)?;
        self.pass(sa, FROM_PEER_MM, to);
        let (Some(Payload::Ke(ke)), Some(Payload::Nonce(nonce))) = (
            find(&m.payloads, PayloadType::Ke),
            find(&m.payloads, PayloadType::Nonce),
        ) else {
            return Err(IkeError::Peer(missing));
        };
        let (ke, nonce) = (ke.clone(), nonce.clone());
        self.processing(sa.conn_id, 0, &["KE", "NONCE"]);
        Ok((m.payloads, ke, nonce))
    }

    /// MM3 (initiator) / MM4 (responder): our KE, nonce and NAT-D, in the clear.
    fn send_ke_nonce(
        &mut self,
        now: Instant,
        sa: &mut P1Sa,
        gx: &[u8],
        nonce: &[u8],
        neg: Negotiated,
        show: &str,
    ) {
        let mut ps = vec![Payload::Ke(gx.to_vec()), Payload::Nonce(nonce.to_vec())];
        ps.extend(self.certreqs(neg.auth));
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = sa.clear_msg(ExchangeType::Main, ps);
        self.send_p1(now, sa, out, true, show);
    }

    /// Initiator, MM2 → MM3: the responder's choice; our KE and nonce.
    pub(super) fn i_mm2(&mut self, sa: &mut P1Sa, st: ExpectMm2, rx: &Rx) -> Step {
        let (conn, remote) = (sa.conn_id, rx.remote);
        let m = keep!(Message::parse(rx.msg), st);
        self.pass(sa, FROM_PEER_MM, ExpectMm2::RECEIVED);
        let Some(Payload::Sa(sap)) = find(&m.payloads, PayloadType::Sa) else {
            return Err((st.into_state(), IkeError::Peer("MM2 without SA")));
        };
        self.processing(conn, 0, &["SA"]);
        self.log_psk_found(conn, v4(remote));
        let neg = keep!(self.accept_p1_choice(conn, sap), st);
        self.process_vids(sa, &m.payloads);
        self.pass(sa, PROCESS_MM, ExpectMm2::RECEIVED);
        sa.rcookie = rx.hdr.rcookie;
        if neg.auth == AuthMethod::RsaEncr {
            return self.i_mm2_encr(sa, st, rx, neg);
        }
        let dh = neg.group.generate(&mut *self.rng);
        let ni = self.rng.bytes(20);
        sa.last_rx = rx.msg.to_vec();
        self.send_ke_nonce(rx.now, sa, &dh.public, &ni, neg, ExpectMm4::SHOW);
        let c = Chosen {
            psk: st.psk,
            sai_b: st.sai_b,
            neg,
        };
        Ok(ExpectMm4 {
            c,
            dh,
            ni,
            encr: None,
        }
        .into_state())
    }

    /// Responder, MM3 → MM4: KE and nonce both ways, SKEYID, NAT-D.
    pub(super) fn r_mm3(&mut self, sa: &mut P1Sa, st: ExpectMm3, rx: &Rx) -> Step {
        let missing = "MM3 without KE/NONCE";
        let (ps, ke, ni) = keep!(self.mm_peer_ke(sa, rx, ExpectMm3::RECEIVED, missing), st);
        let c = &st.c;
        if ke.len() != c.neg.group.len() {
            return Err((st.into_state(), IkeError::Peer("KE length")));
        }
        let dh = c.neg.group.generate(&mut *self.rng);
        let nr = self.rng.bytes(20);
        self.log_psk_found(sa.conn_id, v4(rx.remote));
        let input = KeyInput {
            neg: c.neg,
            psk: &c.psk,
            sai_b: &c.sai_b,
            dh: &dh,
            own_nonce: &nr,
            peer_ke: &ke,
            peer_nonce: &ni,
        };
        let k = keep!(self.compute_keys(sa, input), st);
        let h = k.k.neg.hash;
        self.process_nat_d(sa, h, &ps);
        self.process_vids(sa, &ps);
        sa.last_rx = rx.msg.to_vec();
        self.pass(sa, PROCESS_MM, ExpectMm3::RECEIVED);
        self.send_ke_nonce(rx.now, sa, &dh.public, &nr, k.k.neg, ExpectMm5::SHOW);
        Ok(ExpectMm5 { k }.into_state())
    }

    /// Initiator, MM4 → MM5: SKEYID, NAT-D (float to 4500), our encrypted ID and HASH_I.
    pub(super) fn i_mm4(&mut self, sa: &mut P1Sa, st: ExpectMm4, rx: &Rx) -> Step {
        let (conn, remote) = (sa.conn_id, rx.remote);
        let missing = "MM4 without KE/NONCE";
        let (ps, ke, nr) = keep!(self.mm_peer_ke(sa, rx, ExpectMm4::RECEIVED, missing), st);
        self.log_psk_found(conn, v4(remote));
        let input = KeyInput {
            neg: st.c.neg,
            psk: &st.c.psk,
            sai_b: &st.c.sai_b,
            dh: &st.dh,
            own_nonce: &st.ni,
            peer_ke: &ke,
            peer_nonce: &nr,
        };
        let mut k = keep!(self.compute_keys(sa, input), st);
        self.process_vids(sa, &ps);
        self.process_nat_d(sa, k.k.neg.hash, &ps);
        self.pass(sa, FROM_PEER_MM, ExpectMm4::RECEIVED);
        sa.float_if_nat();
        let auth = k.k.neg.auth;
        let id = self.own_id(auth);
        self.log_auth_kind(conn, auth, &id);
        let first = !self.p1.values().any(|s| {
            s.icookie != sa.icookie && v4(s.remote) == v4(remote) && s.state.is_established()
        });
        let idi_b = id_body(&id);
        let own_auth = keep!(self.own_auth(sa, &k, &idi_b), st);
        sa.last_rx = rx.msg.to_vec();
        let mut ps = vec![Payload::Id(id)];
        ps.extend(own_auth);
        if first {
            ps.push(sa.isakmp_notify(NotifyType::InitialContact, vec![]));
        }
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Main, &ps);
        self.send_p1(rx.now, sa, out, true, ExpectMm6::SHOW);
        Ok(ExpectMm6 { k }.into_state())
    }

    /// MM5 (responder) / MM6 (initiator): the peer's encrypted ID and HASH, verified after
    /// the SA passes into IOS state `to`. Returns the payloads and the IV after the message,
    /// for the caller to apply.
    fn mm_peer_auth(
        &mut self,
        sa: &mut P1Sa,
        k: &Keyed,
        rx: &Rx,
        to: IosState,
    ) -> R<(Vec<Payload>, Vec<u8>)> {
        let (unencrypted, missing) = if sa.initiator {
            // MM6 in the clear is likely an unprotected error notify; counted.
            ("MM6 not encrypted", "MM6 without ID/HASH")
        } else {
            ("MM5 not encrypted", "MM5 without ID/HASH")
        };
        if !rx.hdr.encrypted() {
            return Err(IkeError::Peer(unencrypted));
        }
        let (ps, new_iv) = self.decrypt_p1(&k.k, &rx.hdr, rx.msg)?;
        let Some(Payload::Id(id)) = find(&ps, PayloadType::Id) else {
            return Err(IkeError::Peer(missing));
        };
        if k.k.neg.auth == AuthMethod::PreShared && find(&ps, PayloadType::Hash).is_none() {
            return Err(IkeError::Peer(missing));
        }
        self.pass(sa, FROM_PEER_MM, to);
        self.processing(sa.conn_id, 0, &["ID"]);
        if let Err(e) = self.verify_peer_auth(sa, k, &id_body(id), &ps) {
            if k.k.neg.auth == AuthMethod::RsaSig {
                self.send_refusal_delete(sa, &k.k, &new_iv);
            }
            return Err(e);
        }
        Ok((ps, new_iv))
    }

    /// Responder, MM5 → MM6: the initiator is authenticated; our ID and HASH_R.
    pub(super) fn r_mm5(&mut self, sa: &mut P1Sa, st: ExpectMm5, rx: &Rx) -> Step {
        let (ps, new_iv) = keep!(self.mm_peer_auth(sa, &st.k, rx, ExpectMm5::RECEIVED), st);
        let ExpectMm5 { mut k } = st;
        // Where the authenticated MM5 came from (floated to 4500 behind a NAT) is the
        // peer that INITIAL-CONTACT speaks for.
        sa.follow_float(rx.local, rx.remote);
        self.process_initial_contact(sa, &ps);
        k.k.iv = new_iv;
        sa.last_rx = rx.msg.to_vec();
        self.log_authenticated(sa.conn_id, rx.remote);
        let id = self.own_id(k.k.neg.auth);
        self.log_auth_kind(sa.conn_id, k.k.neg.auth, &id);
        let own_auth = match self.own_auth(sa, &k, &id_body(&id)) {
            Ok(a) => a,
            Err(e) => return Err((ExpectMm5 { k }.into_state(), e)),
        };
        let mut ps = vec![Payload::Id(id)];
        ps.extend(own_auth);
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Main, &ps);
        self.send_p1(rx.now, sa, out, false, ExpectMm5::SHOW);
        Ok(Established { k: k.k }.into_state())
    }

    /// Initiator, MM6: the responder is authenticated.
    pub(super) fn i_mm6(&mut self, sa: &mut P1Sa, st: ExpectMm6, rx: &Rx) -> Step {
        let (_, new_iv) = keep!(self.mm_peer_auth(sa, &st.k, rx, ExpectMm6::RECEIVED), st);
        let mut k = st.k.k;
        k.iv = new_iv;
        sa.last_rx = rx.msg.to_vec();
        sa.stop_retx();
        // MM6 is answered by nothing: a copy of it must not bring MM5 again.
        sa.last_tx = None;
        self.log_authenticated(sa.conn_id, rx.remote);
        Ok(Established { k }.into_state())
    }
}
