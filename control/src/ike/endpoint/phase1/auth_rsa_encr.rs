//! Phase-1 authentication by public-key encryption (RFC 2409 §5.2), what Main Mode
//! ([`super::encr_main`]) and Aggressive Mode ([`super::encr_aggressive`]) share:
//!
//! - the peer's public key from the pubkey chain: the initiator takes the responder's by
//!   its address (`addressed-key`, or a `named-key` with that `address`); the responder
//!   takes the initiator's by the ID it decrypted (`named-key` for an ID_FQDN,
//!   `addressed-key` for an ID_IPV4_ADDR), or by the address the message came from;
//! - HASH(1), the hash of the key the initiator encrypted to, sent when the initiator holds
//!   several keys for the responder, checked against ours by the responder;
//! - `<IDii_b>PubKey_r, <Ni_b>PubKey_r` and `<IDir_b>PubKey_i, <Nr_b>PubKey_i`: PKCS#1 v1.5
//!   encryption of the ID and nonce bodies, and their decryption with our key.
//!
//! SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R) is computed by `compute_keys`; HASH_I and
//! HASH_R are those of pre-shared keys, over the decrypted ID bodies ([`EncrIds`]), and
//! travel alone in MM5/MM6 and AM2/AM3.
//!
//! A ciphertext of the wrong length, or one that decrypts to no ID or to a nonce of a bad
//! length, is a malformed message ([`IkeError::Peer`], counted like a bad hash); a key the
//! pubkey chain lacks, or a HASH(1) naming a key we do not hold, fails the SA.

use super::*;
use crate::isakmp::pubkey_enc::{
    Encrypted, EncryptedBody, EncryptedPayloadError, PlainId, PlainNonce,
};
use crate::pki::ike as rsa_ike;
use crate::pki::Credentials;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::PublicKey;
use std::sync::Arc;

/// HASH(1): the negotiated hash over the key's SubjectPublicKeyInfo DER (espgw's keys are
/// bare public keys, not certificates, so the key stands for "the certificate").
pub(super) fn key_hash(h: HashAlg, key: &PublicKey) -> R<Vec<u8>> {
    let der = key
        .to_public_key_der()
        .map_err(|_| IkeError::Policy("public key cannot be encoded"))?;
    Ok(h.hash(&[der.as_bytes()]).to_vec())
}

/// The peer's ID and nonce, decrypted.
pub(super) struct Decrypted {
    pub id: PlainId,
    pub nonce: Vec<u8>,
}

impl Endpoint {
    fn encr_creds(&self) -> R<Arc<Credentials>> {
        self.cfg
            .pki
            .clone()
            .ok_or(IkeError::Policy("no RSA credentials"))
    }

    /// Initiator: the responder's key from the pubkey chain; HASH(1) when there are several;
    /// `<IDii_b>PubKey_r, <Ni_b>PubKey_r`.
    pub(super) fn encr_to_responder(
        &mut self,
        conn: u32,
        peer: Ipv4Addr,
        h: HashAlg,
        id_b: &[u8],
        nonce: &[u8],
    ) -> R<(Option<Payload>, [Payload; 2])> {
        let c = self.encr_creds()?;
        let keys = c.peer_keys_for(peer);
        let Some(key) = keys.first().copied() else {
            self.ik(
                conn,
                format!("no public key for peer {peer} in the pubkey chain (crypto key pubkey-chain rsa)"),
            );
            return Err(IkeError::AuthFailed(
                FailReason::NoKey,
                "no public key for the peer",
            ));
        };
        let hash1 = if keys.len() > 1 {
            self.ik(
                conn,
                format!(
                    "{} keys for {peer}: sending HASH(1) of the one used",
                    keys.len()
                ),
            );
            Some(Payload::Hash(key_hash(h, key)?))
        } else {
            None
        };
        Ok((hash1, self.encrypt_id_nonce(conn, key, id_b, nonce)?))
    }

    /// Responder: `<IDir_b>PubKey_i, <Nr_b>PubKey_i` to the key of the initiator whose ID
    /// was `peer_id` (from `from`).
    pub(super) fn encr_to_initiator(
        &mut self,
        conn: u32,
        peer_id: &IdPayload,
        from: Ipv4Addr,
        id_b: &[u8],
        nonce: &[u8],
    ) -> R<[Payload; 2]> {
        let c = self.encr_creds()?;
        let by_id = match peer_id.id_type {
            id_type::FQDN => std::str::from_utf8(&peer_id.data)
                .ok()
                .and_then(|n| c.peer_named(n)),
            id_type::IPV4_ADDR => <[u8; 4]>::try_from(&peer_id.data[..])
                .ok()
                .and_then(|a| c.peer_key(Ipv4Addr::from(a))),
            _ => None,
        };
        let Some(key) = by_id.or_else(|| c.peer_key(from)) else {
            self.ik(
                conn,
                format!("no public key for peer {from} in the pubkey chain (crypto key pubkey-chain rsa)"),
            );
            return Err(IkeError::AuthFailed(
                FailReason::NoKey,
                "no public key for the peer",
            ));
        };
        self.encrypt_id_nonce(conn, key, id_b, nonce)
    }

    fn encrypt_id_nonce(
        &mut self,
        conn: u32,
        key: &PublicKey,
        id_b: &[u8],
        nonce: &[u8],
    ) -> R<[Payload; 2]> {
        let cant = |_| IkeError::Policy("the peer's public key is too small for the payload");
        let id = rsa_ike::encrypt_body(key, &mut *self.rng, id_b).map_err(cant)?;
        let n = rsa_ike::encrypt_body(key, &mut *self.rng, nonce).map_err(cant)?;
        self.ik(
            conn,
            format!(
                "encrypting ID and NONCE payloads with the peer's {}-bit public key",
                key.size() * 8
            ),
        );
        Ok([
            EncryptedBody {
                kind: Encrypted::Id,
                ct: id,
            }
            .emit(),
            EncryptedBody {
                kind: Encrypted::Nonce,
                ct: n,
            }
            .emit(),
        ])
    }

    /// A malformed encrypted payload: printed, and the message refused.
    fn bad_encrypted(&mut self, conn: u32, e: EncryptedPayloadError) -> IkeError {
        self.ik(conn, format!("bad encrypted payload: {e}"));
        IkeError::Peer(e.reason())
    }

    /// The peer's `<ID_b>PubKey`, `<N_b>PubKey` decrypted with our key. A `responder`
    /// checks HASH(1) first, when there is one.
    pub(super) fn decrypt_id_nonce(
        &mut self,
        conn: u32,
        responder: bool,
        ps: &[Payload],
    ) -> R<Decrypted> {
        let c = self.encr_creds()?;
        if let (true, Some(Payload::Hash(named))) = (responder, find(ps, PayloadType::Hash)) {
            self.processing(conn, 0, &["HASH"]);
            // In Aggressive Mode the initiator hashed before anything was negotiated (with
            // its first proposal's hash): the length says which.
            let mut ours = false;
            for h in [HashAlg::Md5, HashAlg::Sha1, HashAlg::Sha256] {
                ours |= *named == key_hash(h, c.key.as_public_key())?;
            }
            if !ours {
                self.ik(conn, "HASH(1) names a public key this router does not hold");
                return Err(IkeError::AuthFailed(
                    FailReason::NoKey,
                    "HASH(1) names a key we do not hold",
                ));
            }
        }
        let modulus = c.key.size();
        self.processing(conn, 0, &["ID", "NONCE"]);
        let id_ct = EncryptedBody::find(ps, Encrypted::Id, modulus);
        let n_ct = EncryptedBody::find(ps, Encrypted::Nonce, modulus);
        let (id_ct, n_ct) = match (id_ct, n_ct) {
            (Ok(i), Ok(n)) => (i, n),
            (Err(e), _) | (_, Err(e)) => return Err(self.bad_encrypted(conn, e)),
        };
        // A wrong padding decrypts to unrelated bytes (implicit rejection), caught by the
        // checks below or by HASH_I/HASH_R: no padding oracle.
        let dec = |ct: &[u8]| {
            rsa_ike::decrypt_body(&c.key, ct).map_err(|_| IkeError::Peer("RSA decryption failed"))
        };
        let (id_b, nonce) = (dec(&id_ct.ct)?, dec(&n_ct.ct)?);
        let id = match PlainId::parse(&id_b) {
            Ok(id) => id,
            Err(e) => return Err(self.bad_encrypted(conn, e)),
        };
        if let Err(e) = PlainNonce::check(&nonce) {
            return Err(self.bad_encrypted(conn, e));
        }
        self.ik(
            conn,
            "decrypted ID and NONCE payloads with this router's RSA key",
        );
        Ok(Decrypted {
            id,
            nonce: nonce.to_vec(),
        })
    }

    /// An Aggressive Mode initiator that cannot encrypt AM1 (no key for the peer): the
    /// negotiation fails before anything is sent.
    pub(super) fn encr_start_failed(&mut self, conn: u32, peer: Ipv4Addr, e: IkeError) {
        self.ik(conn, format!("{e}"));
        self.counters.p1_failed.add(e.fail_reason());
        self.events.push_back(Event::NegotiationFailed {
            peer,
            reason: e.to_string(),
        });
    }
}
