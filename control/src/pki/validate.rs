//! Is a peer's certificate good? Chain validation to a trustpoint's CA (RFC 5280 §6, for
//! the one-level chains IKE peers send: the end-entity certificate signed by the CA):
//! issuer name and signature, validity dates of both, basicConstraints and keyUsage of the
//! CA, keyUsage of the peer's certificate, and revocation from the trustpoint's CRL when
//! `revocation-check crl`. Then: does the peer's phase-1 ID name its certificate?
//!
//! The errors print the reason the way IOS's PKI messages do; the endpoint prefixes the
//! IOS tag (`%PKI-3-CERTIFICATE_INVALID_EXPIRED: …`, see [`ChainError::ios_tag`]).

use std::net::Ipv4Addr;
use std::time::SystemTime;

use x509_cert::crl::CertificateList;
use x509_cert::der::{Decode, Encode};

use super::cert::{Cert, SigAlg};
use crate::config::pki::RevocationCheck;

/// A certificate revocation list, parsed.
#[derive(Clone, Debug)]
pub struct Crl {
    list: CertificateList,
}

impl Crl {
    pub fn from_der(der: &[u8]) -> Result<Crl, String> {
        CertificateList::from_der(der)
            .map(|list| Crl { list })
            .map_err(|e| format!("not a DER X.509 CRL ({e})"))
    }

    /// Whether the CRL is `ca`'s: its issuer and signature.
    pub fn signed_by(&self, ca: &Cert) -> bool {
        let tbs = &self.list.tbs_cert_list;
        if tbs.issuer.to_der().ok() != Some(ca.subject_der()) {
            return false;
        }
        let (Some(alg), Ok(data), Some(sig)) = (
            SigAlg::from_oid(&self.list.signature_algorithm.oid),
            tbs.to_der(),
            self.list.signature.as_bytes(),
        ) else {
            return false;
        };
        alg.verify(ca.public_key(), &data, sig)
    }

    /// When the next CRL is due, if it says.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.list
            .tbs_cert_list
            .next_update
            .map(|t| t.to_system_time())
    }

    /// Whether a certificate with this serial is listed.
    pub fn lists(&self, serial: &[u8]) -> bool {
        self.list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| r.serial_number.as_bytes() == serial)
    }

    pub fn revoked_count(&self) -> usize {
        self.list
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map_or(0, Vec::len)
    }
}

/// What a trustpoint trusts: its CA, the CA's CRL, and whether to check it.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    pub trustpoint: String,
    pub ca: Cert,
    pub revocation: RevocationCheck,
    pub crl: Option<Crl>,
}

/// Why a peer's certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("Certificate chain validation has failed. The certificate (SN: {serial}) has expired. Validity period ended on {ended}")]
    Expired { serial: String, ended: String },
    #[error("Certificate chain validation has failed. The certificate (SN: {serial}) is not yet valid. Validity period starts on {starts}")]
    NotYetValid { serial: String, starts: String },
    #[error("Certificate chain validation has failed. Unable to locate the issuer ({issuer}) in trustpoint {trustpoint}")]
    UnknownIssuer { issuer: String, trustpoint: String },
    #[error("Certificate chain validation has failed. The certificate (SN: {serial}) has a bad signature")]
    BadSignature { serial: String },
    #[error("Certificate chain validation has failed. The CA certificate (SN: {serial}) of trustpoint {trustpoint} is not a CA ({why})")]
    NotCa {
        serial: String,
        trustpoint: String,
        why: &'static str,
    },
    #[error("Certificate chain validation has failed. The certificate (SN: {serial}) is not for {usage} (keyUsage)")]
    WrongUsage { serial: String, usage: &'static str },
    #[error("Certificate chain validation has failed. The certificate (SN: {serial}) is revoked")]
    Revoked { serial: String },
    #[error("Certificate revocation status unknown: trustpoint {trustpoint} has revocation-check crl and {why}")]
    CrlUnavailable {
        trustpoint: String,
        why: &'static str,
    },
}

impl ChainError {
    /// The IOS message tag this reason is printed under.
    pub fn ios_tag(&self) -> &'static str {
        match self {
            ChainError::Expired { .. } => "%PKI-3-CERTIFICATE_INVALID_EXPIRED",
            ChainError::NotYetValid { .. } => "%PKI-3-CERTIFICATE_INVALID_NOT_YET_VALID",
            ChainError::Revoked { .. } => "%PKI-3-CERTIFICATE_REVOKED",
            ChainError::CrlUnavailable { .. } => "%PKI-3-CRL_FETCH_FAIL",
            _ => "%PKI-3-CERTIFICATE_INVALID",
        }
    }
}

/// A time as IOS prints it in PKI messages (`23:59:59 UTC Jan 2 2015`).
pub fn ios_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{:02}:{:02}:{:02} UTC {} {} {}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        MONTHS[(m - 1) as usize],
        d,
        y
    )
}

/// Month names as IOS prints them (time stamps, PKI messages).
pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (year, month 1-12, day) (proleptic Gregorian calendar).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

fn check_dates(c: &Cert, now: SystemTime) -> Result<(), ChainError> {
    let (nb, na) = c.validity();
    if now > na {
        return Err(ChainError::Expired {
            serial: c.serial_hex(),
            ended: ios_time(na),
        });
    }
    if now < nb {
        return Err(ChainError::NotYetValid {
            serial: c.serial_hex(),
            starts: ios_time(nb),
        });
    }
    Ok(())
}

/// Validates `peer` against `anchor` at `now`. `usage` is what the peer's key must be for
/// (`digital signature` for rsa-sig).
pub fn validate(peer: &Cert, anchor: &TrustAnchor, now: SystemTime) -> Result<(), ChainError> {
    let ca = &anchor.ca;
    let not_ca = |why| ChainError::NotCa {
        serial: ca.serial_hex(),
        trustpoint: anchor.trustpoint.clone(),
        why,
    };
    if peer.issuer_der() != ca.subject_der() {
        return Err(ChainError::UnknownIssuer {
            issuer: peer.issuer(),
            trustpoint: anchor.trustpoint.clone(),
        });
    }
    match ca.basic_constraints_ca() {
        Ok(Some(true)) => {}
        Ok(_) => return Err(not_ca("no basicConstraints cA")),
        Err(_) => return Err(not_ca("malformed basicConstraints")),
    }
    if let Ok(Some(ku)) = ca.key_usage() {
        if !ku.key_cert_sign {
            return Err(not_ca("keyUsage without keyCertSign"));
        }
    }
    if !peer.signed_by(ca.public_key()) {
        return Err(ChainError::BadSignature {
            serial: peer.serial_hex(),
        });
    }
    match peer.key_usage() {
        Ok(Some(ku)) if !ku.digital_signature => {
            return Err(ChainError::WrongUsage {
                serial: peer.serial_hex(),
                usage: "digital signature",
            })
        }
        Err(_) => {
            return Err(ChainError::WrongUsage {
                serial: peer.serial_hex(),
                usage: "digital signature",
            })
        }
        _ => {}
    }
    check_dates(ca, now)?;
    check_dates(peer, now)?;
    if anchor.revocation == RevocationCheck::Crl {
        let unavailable = |why| ChainError::CrlUnavailable {
            trustpoint: anchor.trustpoint.clone(),
            why,
        };
        let Some(crl) = &anchor.crl else {
            return Err(unavailable("no CRL was imported"));
        };
        if !crl.signed_by(ca) {
            return Err(unavailable("its CRL is not signed by its CA"));
        }
        if crl.next_update().is_some_and(|t| now > t) {
            return Err(unavailable("its CRL is past its next update"));
        }
        if crl.lists(peer.serial_bytes()) {
            return Err(ChainError::Revoked {
                serial: peer.serial_hex(),
            });
        }
    }
    Ok(())
}

/// A phase-1 identity as received (ID payload types 1, 2, 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Ipv4(Ipv4Addr),
    Fqdn(String),
    /// DER of the Name.
    Dn(Vec<u8>),
}

impl PeerIdentity {
    /// IOS's name of the ID type (`ID_FQDN`).
    pub fn type_name(&self) -> &'static str {
        match self {
            PeerIdentity::Ipv4(_) => "ID_IPV4_ADDR",
            PeerIdentity::Fqdn(_) => "ID_FQDN",
            PeerIdentity::Dn(_) => "ID_DER_ASN1_DN",
        }
    }
}

/// Why an ID does not name the certificate; Display is the IOS line's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tag}: ID of {id} (type {ty}) and certificate {what} with {cert}")]
pub struct IdMismatch {
    pub tag: &'static str,
    pub id: String,
    pub ty: u8,
    pub what: &'static str,
    pub cert: String,
}

impl IdMismatch {
    /// The system message IOS logs for it.
    pub fn syslog(&self) -> crate::ike::SyslogMessage {
        let full = self.to_string();
        let text = full.strip_prefix(self.tag).unwrap_or(&full);
        crate::ike::SyslogMessage::from_tag(self.tag, text.trim_start_matches(": "))
    }
}

/// Whether the peer's ID names `cert`: an address or FQDN in its subjectAltName, a DN equal
/// to its subject.
pub fn id_matches(cert: &Cert, id: &PeerIdentity) -> Result<(), IdMismatch> {
    match id {
        PeerIdentity::Ipv4(a) => {
            let ips = cert.san_ipv4();
            if ips.contains(a) {
                return Ok(());
            }
            Err(IdMismatch {
                tag: "%CRYPTO-6-IKMP_NO_ID_CERT_ADDR_MATCH",
                id: a.to_string(),
                ty: 1,
                what: "addr",
                cert: ips
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            })
        }
        PeerIdentity::Fqdn(n) => {
            let names = cert.san_dns();
            if names.iter().any(|d| d.eq_ignore_ascii_case(n)) {
                return Ok(());
            }
            Err(IdMismatch {
                tag: "%CRYPTO-6-IKMP_NO_ID_CERT_FQDN_MATCH",
                id: n.clone(),
                ty: 2,
                what: "hostname",
                cert: names.join(","),
            })
        }
        PeerIdentity::Dn(der) => {
            if *der == cert.subject_der() {
                return Ok(());
            }
            let shown = x509_cert::name::Name::from_der(der)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "(malformed DN)".into());
            Err(IdMismatch {
                tag: "%CRYPTO-6-IKMP_NO_ID_CERT_DN_MATCH",
                id: shown,
                ty: 9,
                what: "DN",
                cert: cert.subject(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::cert::tests::testdata;
    use std::time::Duration;

    fn cert(name: &str) -> Cert {
        Cert::from_der(&testdata(name)).unwrap()
    }

    fn anchor(revocation: RevocationCheck, crl: bool) -> TrustAnchor {
        TrustAnchor {
            trustpoint: "LAB".into(),
            ca: cert("ca.pem"),
            revocation,
            crl: crl.then(|| Crl::from_der(&testdata("ca.crl")).unwrap()),
        }
    }

    /// A time inside every test certificate's validity (they were made valid from the day
    /// gen.sh ran for ~19 years): one day after the CA's start.
    fn now() -> SystemTime {
        cert("r2.pem").validity().0 + Duration::from_secs(86400)
    }

    #[test]
    fn good_chain_with_and_without_crl() {
        validate(&cert("r2.pem"), &anchor(RevocationCheck::Crl, true), now()).unwrap();
        validate(
            &cert("r1.pem"),
            &anchor(RevocationCheck::None, false),
            now(),
        )
        .unwrap();
    }

    #[test]
    fn negative_cases() {
        let a = anchor(RevocationCheck::Crl, true);
        let e = validate(&cert("r2-expired.pem"), &a, now()).unwrap_err();
        assert!(matches!(e, ChainError::Expired { .. }), "{e}");
        assert_eq!(e.ios_tag(), "%PKI-3-CERTIFICATE_INVALID_EXPIRED");
        assert!(
            e.to_string()
                .ends_with("Validity period ended on 00:00:00 UTC Jan 2 2015"),
            "{e}"
        );
        let e = validate(&cert("r2-other-ca.pem"), &a, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Certificate chain validation has failed. Unable to locate the issuer (CN=Other CA,O=other,C=CH) in trustpoint LAB"
        );
        let r3 = cert("r3.pem");
        let e = validate(&r3, &a, now()).unwrap_err();
        assert_eq!(
            e,
            ChainError::Revoked {
                serial: r3.serial_hex()
            }
        );
        assert_eq!(e.ios_tag(), "%PKI-3-CERTIFICATE_REVOKED");
        // Without CRL checking the revoked one passes; with it and no CRL, nothing does.
        validate(&r3, &anchor(RevocationCheck::None, true), now()).unwrap();
        let e = validate(&cert("r2.pem"), &anchor(RevocationCheck::Crl, false), now()).unwrap_err();
        assert!(matches!(e, ChainError::CrlUnavailable { .. }));
        // Not yet valid: before the CA's start.
        let early = cert("ca.pem").validity().0 - Duration::from_secs(10);
        let e = validate(&cert("r2.pem"), &a, early).unwrap_err();
        assert!(matches!(e, ChainError::NotYetValid { .. }), "{e}");
    }

    #[test]
    fn tampered_certificate_is_refused() {
        let mut der = testdata("r2.pem");
        let pos = der.windows(2).position(|w| w == b"r2").unwrap();
        der[pos + 1] = b'9';
        let c = Cert::from_der(&der).unwrap();
        let e = validate(&c, &anchor(RevocationCheck::None, false), now()).unwrap_err();
        assert!(matches!(e, ChainError::BadSignature { .. }));
    }

    #[test]
    fn ca_that_is_no_ca_is_refused() {
        let a = TrustAnchor {
            trustpoint: "BAD".into(),
            ca: cert("r1.pem"),
            revocation: RevocationCheck::None,
            crl: None,
        };
        // r1 is not r2's issuer: the name check comes first.
        assert!(matches!(
            validate(&cert("r2.pem"), &a, now()),
            Err(ChainError::UnknownIssuer { .. })
        ));
    }

    #[test]
    fn crl_parses_and_lists_r3() {
        let crl = Crl::from_der(&testdata("ca.crl")).unwrap();
        assert!(crl.signed_by(&cert("ca.pem")));
        assert!(!crl.signed_by(&cert("other-ca.pem")));
        assert_eq!(crl.revoked_count(), 1);
        assert!(crl.lists(cert("r3.pem").serial_bytes()));
        assert!(!crl.lists(cert("r2.pem").serial_bytes()));
        assert!(Crl::from_der(b"\x30\x00").is_err());
    }

    #[test]
    fn identities_against_certificates() {
        let r2 = cert("r2.pem");
        id_matches(&r2, &PeerIdentity::Ipv4("172.16.172.20".parse().unwrap())).unwrap();
        id_matches(&r2, &PeerIdentity::Fqdn("R2.lab.example".into())).unwrap();
        id_matches(&r2, &PeerIdentity::Dn(r2.subject_der())).unwrap();
        let e = id_matches(&r2, &PeerIdentity::Ipv4("172.16.172.30".parse().unwrap())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "%CRYPTO-6-IKMP_NO_ID_CERT_ADDR_MATCH: ID of 172.16.172.30 (type 1) and certificate addr with 172.16.172.20"
        );
        let e = id_matches(&r2, &PeerIdentity::Fqdn("r3.lab.example".into())).unwrap_err();
        assert_eq!(e.tag, "%CRYPTO-6-IKMP_NO_ID_CERT_FQDN_MATCH");
        let e = id_matches(&r2, &PeerIdentity::Dn(cert("r1.pem").subject_der())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "%CRYPTO-6-IKMP_NO_ID_CERT_DN_MATCH: ID of CN=r1.lab.example,O=espgw lab,C=CH (type 9) and certificate DN with CN=r2.lab.example,O=espgw lab,C=CH"
        );
    }

    #[test]
    fn ios_time_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_156_800); // 2015-01-02
        assert_eq!(ios_time(t), "00:00:00 UTC Jan 2 2015");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(ios_time(t), "01:01:01 UTC Feb 29 2000");
    }
}
