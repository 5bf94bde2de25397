//! Main Mode with public-key encryption (RFC 2409 §5.2):
//!
//! ```text
//! HDR, SA                                      -->
//!                                              <--  HDR, SA
//! HDR, KE, [HASH(1),] <IDii_b>PubKey_r, <Ni_b>PubKey_r, NAT-D  -->
//!                          <--  HDR, KE, <IDir_b>PubKey_i, <Nr_b>PubKey_i, NAT-D
//! HDR*, HASH_I                                 -->
//!                                              <--  HDR*, HASH_R
//! ```
//!
//! The states are those of every Main Mode; MM1/MM2 are shared with the other methods, and
//! the dispatcher sends an SA whose keys carry [`EncrIds`] (or whose choice is rsa-encr)
//! here for MM3 to MM6.

// A refused message hands the state back in `Err`, as large as the `Ok` state.
#![allow(clippy::result_large_err)]

use super::super::debug::{FROM_PEER_MM, PROCESS_MM};
use super::*;

impl Endpoint {
    /// Initiator, MM2 → MM3 (the responder chose rsa-encr): KE, [HASH(1)], our ID and nonce
    /// encrypted to the responder's key.
    pub(super) fn i_mm2_encr(
        &mut self,
        sa: &mut P1Sa,
        st: ExpectMm2,
        rx: &Rx,
        neg: Negotiated,
    ) -> Step {
        let conn = sa.conn_id;
        let dh = neg.group.generate(&mut *self.rng);
        let ni = self.rng.bytes(20);
        let id = self.own_id(neg.auth);
        self.log_auth_kind(conn, neg.auth, &id);
        let idi_b = id_body(&id);
        let peer = v4(rx.remote);
        let (hash1, enc) = keep!(
            self.encr_to_responder(conn, peer, neg.hash, &idi_b, &ni),
            st
        );
        sa.last_rx = rx.msg.to_vec();
        let mut ps = vec![Payload::Ke(dh.public.clone())];
        ps.extend(hash1);
        ps.extend(enc);
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = sa.clear_msg(ExchangeType::Main, ps);
        self.send_p1(rx.now, sa, out, true, ExpectMm4::SHOW);
        let c = Chosen {
            psk: st.psk,
            sai_b: st.sai_b,
            neg,
        };
        let encr = Some(EncrIds {
            idi_b,
            idr_b: Vec::new(),
        });
        Ok(ExpectMm4 { c, dh, ni, encr }.into_state())
    }

    /// Responder, MM3 → MM4: the initiator's KE, its ID and nonce decrypted, SKEYID; our ID
    /// and nonce encrypted to its key.
    pub(super) fn r_mm3_encr(&mut self, sa: &mut P1Sa, st: ExpectMm3, rx: &Rx) -> Step {
        let conn = sa.conn_id;
        let m = keep!(Message::parse(rx.msg), st);
        self.pass(sa, FROM_PEER_MM, ExpectMm3::RECEIVED);
        let Some(Payload::Ke(ke)) = find(&m.payloads, PayloadType::Ke) else {
            return Err((st.into_state(), IkeError::Peer("MM3 without KE")));
        };
        let neg = st.c.neg;
        if ke.len() != neg.group.len() {
            return Err((st.into_state(), IkeError::Peer("KE length")));
        }
        self.processing(conn, 0, &["KE"]);
        let d = keep!(self.decrypt_id_nonce(conn, true, &m.payloads), st);
        let dh = neg.group.generate(&mut *self.rng);
        let nr = self.rng.bytes(20);
        let id = self.own_id(neg.auth);
        self.log_auth_kind(conn, neg.auth, &id);
        let idr_b = id_body(&id);
        let from = v4(rx.remote);
        let enc = keep!(
            self.encr_to_initiator(conn, &d.id.id, from, &idr_b, &nr),
            st
        );
        let input = KeyInput {
            neg,
            psk: &st.c.psk,
            sai_b: &st.c.sai_b,
            dh: &dh,
            own_nonce: &nr,
            peer_ke: ke,
            peer_nonce: &d.nonce,
        };
        let mut k = keep!(self.compute_keys(sa, input), st);
        k.encr = Some(EncrIds {
            idi_b: d.id.body,
            idr_b,
        });
        self.process_nat_d(sa, neg.hash, &m.payloads);
        self.process_vids(sa, &m.payloads);
        sa.last_rx = rx.msg.to_vec();
        self.pass(sa, PROCESS_MM, ExpectMm3::RECEIVED);
        let mut ps = vec![Payload::Ke(dh.public.clone())];
        ps.extend(enc);
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = sa.clear_msg(ExchangeType::Main, ps);
        self.send_p1(rx.now, sa, out, true, ExpectMm5::SHOW);
        Ok(ExpectMm5 { k }.into_state())
    }

    /// Initiator, MM4 → MM5: the responder's KE, ID and nonce (decrypted), SKEYID, NAT-D;
    /// our HASH_I, encrypted.
    pub(super) fn i_mm4_encr(&mut self, sa: &mut P1Sa, st: ExpectMm4, rx: &Rx) -> Step {
        let (conn, remote) = (sa.conn_id, rx.remote);
        let m = keep!(Message::parse(rx.msg), st);
        self.pass(sa, FROM_PEER_MM, ExpectMm4::RECEIVED);
        let Some(Payload::Ke(ke)) = find(&m.payloads, PayloadType::Ke) else {
            return Err((st.into_state(), IkeError::Peer("MM4 without KE")));
        };
        self.processing(conn, 0, &["KE"]);
        let d = keep!(self.decrypt_id_nonce(conn, false, &m.payloads), st);
        let input = KeyInput {
            neg: st.c.neg,
            psk: &st.c.psk,
            sai_b: &st.c.sai_b,
            dh: &st.dh,
            own_nonce: &st.ni,
            peer_ke: ke,
            peer_nonce: &d.nonce,
        };
        let mut k = keep!(self.compute_keys(sa, input), st);
        let idi_b = st
            .encr
            .as_ref()
            .map(|e| e.idi_b.clone())
            .unwrap_or_default();
        k.encr = Some(EncrIds {
            idi_b: idi_b.clone(),
            idr_b: d.id.body,
        });
        self.process_vids(sa, &m.payloads);
        self.process_nat_d(sa, k.k.neg.hash, &m.payloads);
        sa.float_if_nat();
        let first = !self.p1.values().any(|s| {
            s.icookie != sa.icookie && v4(s.remote) == v4(remote) && s.state.is_established()
        });
        sa.last_rx = rx.msg.to_vec();
        let mut ps = vec![sa.own_hash(&k, &idi_b)];
        if first {
            ps.push(sa.isakmp_notify(NotifyType::InitialContact, vec![]));
        }
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Main, &ps);
        self.send_p1(rx.now, sa, out, true, ExpectMm6::SHOW);
        Ok(ExpectMm6 { k }.into_state())
    }

    /// MM5 / MM6 under rsa-encr: encrypted, a HASH and no ID (the ID came in MM3/MM4).
    fn mm_peer_hash_encr(&mut self, sa: &P1Sa, k: &Keyed, rx: &Rx) -> R<(Vec<Payload>, Vec<u8>)> {
        if !rx.hdr.encrypted() {
            return Err(IkeError::Peer(if sa.initiator {
                "MM6 not encrypted"
            } else {
                "MM5 not encrypted"
            }));
        }
        let (ps, new_iv) = self.decrypt_p1(&k.k, &rx.hdr, rx.msg)?;
        let ids = k
            .encr
            .as_ref()
            .ok_or(IkeError::Peer("rsa-encr IDs missing"))?;
        let peer_id_b = if sa.initiator { &ids.idr_b } else { &ids.idi_b };
        self.verify_peer_auth(sa, k, &peer_id_b.clone(), &ps)?;
        Ok((ps, new_iv))
    }

    /// Responder, MM5 → MM6: the initiator's HASH_I; our HASH_R.
    pub(super) fn r_mm5_encr(&mut self, sa: &mut P1Sa, st: ExpectMm5, rx: &Rx) -> Step {
        let (ps, new_iv) = keep!(self.mm_peer_hash_encr(sa, &st.k, rx), st);
        self.pass(sa, FROM_PEER_MM, ExpectMm5::RECEIVED);
        let ExpectMm5 { mut k } = st;
        self.process_initial_contact(sa, &ps);
        k.k.iv = new_iv;
        sa.last_rx = rx.msg.to_vec();
        sa.follow_float(rx.local, rx.remote);
        self.log_authenticated(sa.conn_id, rx.remote);
        let idr_b = k.encr.as_ref().map(|e| e.idr_b.clone()).unwrap_or_default();
        let ps = [sa.own_hash(&k, &idr_b)];
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Main, &ps);
        self.send_p1(rx.now, sa, out, false, ExpectMm5::SHOW);
        Ok(Established { k: k.k }.into_state())
    }

    /// Initiator, MM6: the responder's HASH_R.
    pub(super) fn i_mm6_encr(&mut self, sa: &mut P1Sa, st: ExpectMm6, rx: &Rx) -> Step {
        let (_, new_iv) = keep!(self.mm_peer_hash_encr(sa, &st.k, rx), st);
        self.pass(sa, FROM_PEER_MM, ExpectMm6::RECEIVED);
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
