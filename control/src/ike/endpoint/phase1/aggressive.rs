//! Aggressive Mode (RFC 2409 §5, pre-shared keys): three messages.
//!
//! Initiator: `ExpectAm2` → `Established` (sends AM3). Responder: (AM1) → `ExpectAm3` →
//! `Established`.

// A refused message hands the state back in `Err`, as large as the `Ok` state: boxing it
// would shrink neither.
#![allow(clippy::result_large_err)]

use super::super::debug::{IosState, FROM_PEER_AM};
use super::*;

/// The payloads of AM1 and AM2 (what authenticates the responder in AM2, HASH or CERT and
/// SIG, is checked by `verify_peer_auth`).
struct AmPayloads<'a> {
    sa: &'a SaPayload,
    ke: &'a [u8],
    nonce: &'a [u8],
    id: &'a IdPayload,
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
        Some(AmPayloads { sa, ke, nonce, id })
    }
}

impl Endpoint {
    /// Responder, AM1 → AM2: the offer (in the group of the initiator's KE), KE and nonce
    /// both ways, SKEYID; our ID and HASH_R.
    pub(super) fn r_am1(&mut self, sa: &mut P1Sa, first: First) -> R<P1State> {
        let (conn, First { now, psk, m }) = (sa.conn_id, first);
        self.pass(sa, FROM_PEER_AM, IosState::RAm1);
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
        self.process_vids(sa, &m.payloads);
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
        let (reply_sa, neg, sai_b) = self.choose_p1(conn, sap, group)?;
        if neg.auth == AuthMethod::RsaEncr {
            let chose = (reply_sa, neg, sai_b);
            return self.r_am1_encr(sa, now, &m.payloads, chose);
        }
        self.processing(conn, 0, &["KE", "NONCE", "ID"]);
        let dh = neg.group.generate(&mut *self.rng);
        let nr = self.rng.bytes(20);
        let idi_b = id_body(idi);
        let id = self.own_id(neg.auth);
        self.log_auth_kind(conn, neg.auth, &id);
        let idr_b = id_body(&id);
        let input = KeyInput {
            neg,
            psk: &psk,
            sai_b: &sai_b,
            dh: &dh,
            own_nonce: &nr,
            peer_ke: ke,
            peer_nonce: ni,
        };
        let k = self.compute_keys(sa, input)?;
        let mut ps = vec![reply_sa, Payload::Ke(dh.public.clone()), Payload::Nonce(nr)];
        ps.push(Payload::Id(id));
        ps.extend(self.own_auth(sa, &k, &idr_b)?);
        ps.extend(self.certreqs(neg.auth));
        ps.extend(reply_vids(sa.nat.peer_rfc3947));
        ps.extend(self.ra_vids());
        ps.extend(self.frag_vids(false, sa.frag.peer));
        ps.extend(sa.nat_d_payloads(neg.hash));
        let out = sa.clear_msg(ExchangeType::Aggressive, ps);
        self.send_p1(now, sa, out, true, ExpectAm3::SHOW);
        Ok(ExpectAm3 { k, idi_b }.into_state())
    }

    /// Initiator, AM2 → AM3: the responder's choice, KE, nonce, ID and HASH_R; our HASH_I.
    pub(super) fn i_am2(&mut self, sa: &mut P1Sa, st: ExpectAm2, rx: &Rx) -> Step {
        let (now, conn, remote) = (rx.now, sa.conn_id, rx.remote);
        let m = keep!(Message::parse(rx.msg), st);
        self.pass(sa, FROM_PEER_AM, ExpectAm2::RECEIVED);
        let Some(AmPayloads {
            sa: sap,
            ke,
            nonce: nr,
            id: idr,
            ..
        }) = AmPayloads::find(&m.payloads)
        else {
            return Err((st.into_state(), IkeError::Peer("AM2 missing payloads")));
        };
        self.processing(conn, 0, &["SA"]);
        let neg = keep!(self.accept_p1_choice(conn, sap), st);
        self.process_vids(sa, &m.payloads);
        sa.rcookie = rx.hdr.rcookie;
        if neg.auth == AuthMethod::RsaEncr {
            return self.i_am2_encr(sa, st, rx, &m.payloads, neg);
        }
        let idr_b = id_body(idr);
        self.processing(conn, 0, &["KE", "NONCE", "ID"]);
        let input = KeyInput {
            neg,
            psk: &st.psk,
            sai_b: &st.sai_b,
            dh: &st.dh,
            own_nonce: &st.ni,
            peer_ke: ke,
            peer_nonce: nr,
        };
        let mut k = keep!(self.compute_keys(sa, input), st);
        keep!(self.verify_peer_auth(sa, &k, &idr_b, &m.payloads), st);
        self.process_nat_d(sa, neg.hash, &m.payloads);
        self.log_authenticated(conn, remote);
        sa.float_if_nat();
        let mut ps = keep!(self.own_auth(sa, &k, &st.idi_b), st);
        ps.extend(sa.nat_d_payloads(neg.hash));
        // AM3 is encrypted (as IOS and strongSwan send it); the last phase-1 block
        // is then its last ciphertext block.
        let out = encrypt_p1(sa, &mut k.k, ExchangeType::Aggressive, &ps);
        sa.last_rx = rx.msg.to_vec();
        self.send_p1(now, sa, out, false, ExpectAm2::SHOW);
        Ok(Established { k: k.k }.into_state())
    }

    /// Responder, AM3: the initiator's HASH_I (encrypted or, from some peers, in the clear).
    pub(super) fn r_am3(&mut self, sa: &mut P1Sa, st: ExpectAm3, rx: &Rx) -> Step {
        let (ps, new_iv) = if rx.hdr.encrypted() {
            let (ps, niv) = keep!(self.decrypt_p1(&st.k.k, &rx.hdr, rx.msg), st);
            (ps, Some(niv))
        } else {
            (keep!(Message::parse(rx.msg), st).payloads, None)
        };
        self.pass(sa, FROM_PEER_AM, ExpectAm3::RECEIVED);
        if st.k.k.neg.auth == AuthMethod::PreShared && find(&ps, PayloadType::Hash).is_none() {
            return Err((st.into_state(), IkeError::Peer("AM3 without HASH")));
        }
        if let Err(e) = self.verify_peer_auth(sa, &st.k, &st.idi_b, &ps) {
            if let (AuthMethod::RsaSig, Some(iv)) = (st.k.k.neg.auth, &new_iv) {
                self.send_refusal_delete(sa, &st.k.k, iv);
            }
            return Err((st.into_state(), e));
        }
        let mut k = st.k.k;
        self.process_nat_d(sa, k.neg.hash, &ps);
        // Where the authenticated AM3 came from is the peer INITIAL-CONTACT speaks for.
        sa.follow_float(rx.local, rx.remote);
        self.process_initial_contact(sa, &ps);
        if let Some(iv) = new_iv {
            k.iv = iv;
        }
        sa.last_rx = rx.msg.to_vec();
        // AM3 is answered by nothing: a copy of it must not bring AM2 again.
        sa.last_tx = None;
        self.log_authenticated(sa.conn_id, rx.remote);
        Ok(Established { k }.into_state())
    }
}
