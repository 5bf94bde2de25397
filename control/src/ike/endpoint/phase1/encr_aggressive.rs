//! Aggressive Mode with public-key encryption (RFC 2409 §5.2):
//!
//! ```text
//! HDR, SA, [HASH(1),] KE, <IDii_b>PubKey_r, <Ni_b>PubKey_r    -->
//!     <--  HDR, SA, KE, <IDir_b>PubKey_i, <Nr_b>PubKey_i, HASH_R, NAT-D
//! HDR*, HASH_I, NAT-D                                           -->
//! ```
//!
//! AM1 is built by `start_p1` (with [`Endpoint::encr_to_responder`]); AM3 is checked by
//! the shared `r_am3`, whose ID body is the decrypted IDii_b.

#![allow(clippy::result_large_err)]

use super::super::debug::FROM_PEER_AM;
use super::*;

impl Endpoint {
    /// Responder, AM1 → AM2 (rsa-encr chosen): the initiator's ID and nonce decrypted,
    /// SKEYID; our ID and nonce encrypted to its key, and HASH_R.
    pub(super) fn r_am1_encr(
        &mut self,
        sa: &mut P1Sa,
        now: Instant,
        am1: &[Payload],
        (reply_sa, neg, sai_b): (Payload, Negotiated, Vec<u8>),
    ) -> R<P1State> {
        let conn = sa.conn_id;
        let Some(Payload::Ke(ke)) = find(am1, PayloadType::Ke) else {
            return Err(IkeError::Peer("AM1 without KE"));
        };
        self.processing(conn, 0, &["KE"]);
        let d = self.decrypt_id_nonce(conn, true, am1)?;
        let dh = neg.group.generate(&mut *self.rng);
        let nr = self.rng.bytes(20);
        let id = self.own_id(neg.auth);
        self.log_auth_kind(conn, neg.auth, &id);
        let idr_b = id_body(&id);
        let from = v4(sa.remote);
        let enc = self.encr_to_initiator(conn, &d.id.id, from, &idr_b, &nr)?;
        let input = KeyInput {
            neg,
            psk: &[],
            sai_b: &sai_b,
            dh: &dh,
            own_nonce: &nr,
            peer_ke: ke,
            peer_nonce: &d.nonce,
        };
        let mut k = self.compute_keys(sa, input)?;
        k.encr = Some(EncrIds {
            idi_b: d.id.body.clone(),
            idr_b: idr_b.clone(),
        });
        let mut ps = vec![reply_sa, Payload::Ke(dh.public.clone())];
        ps.extend(enc);
        ps.push(sa.own_hash(&k, &idr_b));
        ps.extend(reply_vids(sa.nat.peer_rfc3947));
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = sa.clear_msg(ExchangeType::Aggressive, ps);
        self.send_p1(now, sa, out, true, ExpectAm3::SHOW);
        Ok(ExpectAm3 {
            k,
            idi_b: d.id.body,
        }
        .into_state())
    }

    /// Initiator, AM2 → AM3 (the responder chose rsa-encr): its ID and nonce decrypted,
    /// SKEYID, HASH_R checked; our HASH_I, encrypted.
    pub(super) fn i_am2_encr(
        &mut self,
        sa: &mut P1Sa,
        st: ExpectAm2,
        rx: &Rx,
        am2: &[Payload],
        neg: Negotiated,
    ) -> Step {
        let (now, conn, remote) = (rx.now, sa.conn_id, rx.remote);
        let Some(Payload::Ke(ke)) = find(am2, PayloadType::Ke) else {
            return Err((st.into_state(), IkeError::Peer("AM2 without KE")));
        };
        self.processing(conn, 0, &["KE"]);
        let d = keep!(self.decrypt_id_nonce(conn, false, am2), st);
        let input = KeyInput {
            neg,
            psk: &st.psk,
            sai_b: &st.sai_b,
            dh: &st.dh,
            own_nonce: &st.ni,
            peer_ke: ke,
            peer_nonce: &d.nonce,
        };
        let mut k = keep!(self.compute_keys(sa, input), st);
        k.encr = Some(EncrIds {
            idi_b: st.idi_b.clone(),
            idr_b: d.id.body.clone(),
        });
        keep!(self.verify_peer_auth(sa, &k, &d.id.body, am2), st);
        self.process_nat_d(sa, neg.hash, am2);
        self.pass(sa, FROM_PEER_AM, ExpectAm2::RECEIVED);
        self.log_authenticated(conn, remote);
        sa.float_if_nat();
        let mut ps = vec![sa.own_hash(&k, &st.idi_b)];
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Aggressive, &ps);
        sa.last_rx = rx.msg.to_vec();
        self.send_p1(now, sa, out, false, ExpectAm2::SHOW);
        Ok(Established { k: k.k }.into_state())
    }
}
