//! Phase-1 authentication by RSA signatures (RFC 2409 §5.1), and the pre-shared-key case
//! behind the same calls, for Main and Aggressive Mode:
//!
//! - our ID, as `crypto isakmp identity` says (ID_IPV4_ADDR, ID_FQDN, ID_DER_ASN1_DN);
//! - what authenticates us after it: HASH (pre-shared) or CERT + SIG, the SIG a PKCS#1 v1.5
//!   signature over HASH_I/HASH_R with no DigestInfo;
//! - the peer's CERT checked against the trustpoint of its issuer (validity, CA constraints,
//!   key usage, CRL), its ID against the certificate, its SIG over the HASH we compute;
//! - CERTREQ, one per trusted CA (strongSwan sends its certificate only when asked).
//!
//! A refused certificate or signature prints the IOS message and fails the SA
//! ([`IkeError::AuthFailed`]): no SA comes of it.

use super::*;
use crate::config::pki::IsakmpIdentity;
use crate::isakmp::cert::{sig_of, sig_payload, CertPayload, CertReqPayload};
use crate::pki::validate::{id_matches, validate};
use crate::pki::{ike as rsa_ike, Cert, PeerIdentity};

/// The name IOS gives an ID type in `SA is doing … using id type …`.
fn id_type_name(t: u8) -> &'static str {
    match t {
        id_type::IPV4_ADDR => "ID_IPV4_ADDR",
        id_type::FQDN => "ID_FQDN",
        id_type::DER_ASN1_DN => "ID_DER_ASN1_DN",
        // An Easy VPN client's group name.
        id_type::KEY_ID => "ID_KEY_ID",
        _ => "ID_UNKNOWN",
    }
}

/// The peer's identity from an ID payload body (types 1, 2, 9).
fn peer_identity(id_b: &[u8]) -> Option<PeerIdentity> {
    let id = match Payload::parse(PayloadType::Id, id_b).ok()? {
        Payload::Id(id) => id,
        _ => return None,
    };
    match id.id_type {
        id_type::IPV4_ADDR => <[u8; 4]>::try_from(&id.data[..])
            .ok()
            .map(|a| PeerIdentity::Ipv4(Ipv4Addr::from(a))),
        id_type::FQDN => std::str::from_utf8(&id.data)
            .ok()
            .map(|s| PeerIdentity::Fqdn(s.to_string())),
        id_type::DER_ASN1_DN => Some(PeerIdentity::Dn(id.data)),
        _ => None,
    }
}

impl Endpoint {
    /// Our phase-1 ID for a negotiation authenticated by `auth`.
    pub(super) fn own_id(&self, auth: AuthMethod) -> IdPayload {
        let addr = id_ipv4(self.cfg.local_addr);
        let Some(c) = self.cfg.pki.as_deref() else {
            return addr;
        };
        if auth == AuthMethod::PreShared {
            return addr;
        }
        let with = |id_type, data: Vec<u8>| IdPayload {
            id_type,
            protocol: 17,
            port: IKE_PORT,
            data,
        };
        match (c.identity, &c.fqdn, &c.cert) {
            (IsakmpIdentity::Hostname, Some(f), _) => with(id_type::FQDN, f.as_bytes().to_vec()),
            (IsakmpIdentity::Dn, _, Some(cert)) => with(id_type::DER_ASN1_DN, cert.subject_der()),
            _ => addr,
        }
    }

    /// `SA is doing … authentication using id type …` (IOS prints it as it builds its ID).
    pub(super) fn log_auth_kind(&mut self, conn: u32, auth: AuthMethod, id: &IdPayload) {
        let how = match auth {
            AuthMethod::PreShared => "pre-shared key",
            AuthMethod::RsaSig => "RSA signature",
            AuthMethod::RsaEncr => "RSA encryption",
        };
        self.ik(
            conn,
            format!(
                "SA is doing {how} authentication using id type {}",
                id_type_name(id.id_type)
            ),
        );
    }

    /// What authenticates us after our ID: [HASH], or [CERT, SIG].
    pub(super) fn own_auth(&mut self, sa: &P1Sa, k: &Keyed, own_id_b: &[u8]) -> R<Vec<Payload>> {
        if k.k.neg.auth != AuthMethod::RsaSig {
            return Ok(vec![sa.own_hash(k, own_id_b)]);
        }
        let c = self
            .cfg
            .pki
            .clone()
            .ok_or(IkeError::Policy("no RSA credentials"))?;
        let cert = c
            .cert
            .as_ref()
            .ok_or(IkeError::Policy("no certificate of our own"))?;
        let h = sa.auth_hash(k, sa.initiator, own_id_b);
        let sig = rsa_ike::sign_hash(&c.key, &h)
            .map_err(|_| IkeError::Policy("the key cannot sign this hash"))?;
        Ok(vec![
            CertPayload::x509(cert.der()).emit(),
            sig_payload(&sig),
        ])
    }

    /// CERTREQ payloads, one per trusted CA, when the negotiation is rsa-sig.
    pub(super) fn certreqs(&self, auth: AuthMethod) -> Vec<Payload> {
        match (auth, self.cfg.pki.as_deref()) {
            (AuthMethod::RsaSig, Some(c)) => c
                .anchors
                .iter()
                .map(|a| CertReqPayload::x509(&a.ca.subject_der()).emit())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Checks what authenticates the peer (its HASH, or its CERT and SIG) against its ID
    /// body `peer_id_b`.
    pub(super) fn verify_peer_auth(
        &mut self,
        sa: &P1Sa,
        k: &Keyed,
        peer_id_b: &[u8],
        ps: &[Payload],
    ) -> R<()> {
        if k.k.neg.auth != AuthMethod::RsaSig {
            let Some(Payload::Hash(h)) = find(ps, PayloadType::Hash) else {
                return Err(IkeError::Peer("no HASH payload"));
            };
            return self.verify_peer_hash(sa, k, peer_id_b, h);
        }
        let conn = sa.conn_id;
        let peer = v4(sa.remote);
        let creds = self
            .cfg
            .pki
            .clone()
            .ok_or(IkeError::Policy("no RSA credentials"))?;
        self.processing(conn, 0, &["CERT"]);
        let Some(cp) = find(ps, PayloadType::Cert) else {
            self.syslog(SyslogMessage::crypto(
                NOTIFICATIONS,
                "IKMP_INVAL_CERT",
                format!("Certificate received from {peer} is bad: no certificate sent"),
            ));
            return Err(IkeError::AuthFailed(
                FailReason::CertInvalid,
                "no CERT payload",
            ));
        };
        let bad = |this: &mut Self, why: String| {
            this.syslog(SyslogMessage::crypto(
                NOTIFICATIONS,
                "IKMP_INVAL_CERT",
                format!("Certificate received from {peer} is bad: {why}"),
            ));
            IkeError::AuthFailed(FailReason::CertInvalid, "bad certificate")
        };
        let der = match CertPayload::from_payload(cp) {
            Ok(c) => match c.x509_der() {
                Ok(d) => d.to_vec(),
                Err(e) => return Err(bad(self, e.to_string())),
            },
            Err(e) => return Err(bad(self, e.to_string())),
        };
        let cert = match Cert::from_der(&der) {
            Ok(c) => c,
            Err(e) => return Err(bad(self, e.to_string())),
        };
        let Some(anchor) = creds
            .anchors
            .iter()
            .find(|a| a.ca.subject_der() == cert.issuer_der())
            .or(creds.anchors.first())
        else {
            return Err(bad(self, "no trustpoint is configured".into()));
        };
        if let Err(e) = validate(&cert, anchor, (creds.clock)()) {
            self.syslog(SyslogMessage::from_tag(e.ios_tag(), e.to_string()));
            return Err(bad(self, "certificate invalid".into()));
        }
        self.ik(
            conn,
            format!("peer's certificate (SN: {}) is valid", cert.serial_hex()),
        );
        let Some(id) = peer_identity(peer_id_b) else {
            self.ik(
                conn,
                "peer sent an ID type espgw cannot match to a certificate",
            );
            return Err(IkeError::AuthFailed(
                FailReason::InvalidId,
                "unusable peer ID",
            ));
        };
        if let Err(e) = id_matches(&cert, &id) {
            self.syslog(e.syslog());
            return Err(IkeError::AuthFailed(
                FailReason::InvalidId,
                "ID does not match the certificate",
            ));
        }
        self.processing(conn, 0, &["SIG"]);
        let sig = match find(ps, PayloadType::Sig).map(sig_of) {
            Some(Ok(s)) => s,
            _ => {
                return Err(IkeError::AuthFailed(
                    FailReason::AuthFailed,
                    "no SIG payload",
                ))
            }
        };
        let h = sa.auth_hash(k, !sa.initiator, peer_id_b);
        if !rsa_ike::verify_hash(cert.public_key(), &h, sig) {
            self.ik(conn, "signature verification failed");
            self.syslog(SyslogMessage::crypto(
                WARNINGS,
                "IKMP_BAD_SIGNATURE",
                format!(
                    "RSA signature from {peer} ({}) failed to verify",
                    id.type_name()
                ),
            ));
            return Err(IkeError::AuthFailed(
                FailReason::AuthFailed,
                "bad signature",
            ));
        }
        self.ik(conn, "SA authentication status:\n\tauthenticated");
        Ok(())
    }
}
