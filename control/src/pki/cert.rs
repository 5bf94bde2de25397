//! One X.509 certificate (RFC 5280) as espgw uses it: parsed from DER bytes a peer sent or
//! a file held, with the few things IKE needs — subject and issuer, serial, validity, the
//! subject alternative names (IP address, DNS name), basicConstraints, keyUsage, the RSA
//! public key — and the check of its signature by an issuer's key.
//!
//! Parsing never panics: a certificate that is not well-formed DER, or whose key is not
//! RSA, is a [`CertError`].

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectAltName};
use x509_cert::Certificate;

/// Why bytes are not a certificate espgw can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a DER X.509 certificate ({0})")]
    Malformed(String),
    #[error("the certificate's key is not RSA")]
    NotRsa,
    #[error("the certificate's RSA key is invalid ({0})")]
    BadKey(String),
    #[error("extension {0} is malformed")]
    BadExtension(&'static str),
}

/// The signature algorithms espgw checks on certificates and CRLs (RSA PKCS#1 v1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl SigAlg {
    /// From the AlgorithmIdentifier's OID (sha*WithRSAEncryption), if supported.
    pub fn from_oid(oid: &x509_cert::der::asn1::ObjectIdentifier) -> Option<SigAlg> {
        match oid.to_string().as_str() {
            "1.2.840.113549.1.1.5" => Some(SigAlg::Sha1),
            "1.2.840.113549.1.1.11" => Some(SigAlg::Sha256),
            "1.2.840.113549.1.1.12" => Some(SigAlg::Sha384),
            "1.2.840.113549.1.1.13" => Some(SigAlg::Sha512),
            _ => None,
        }
    }

    /// Whether `sig` is `key`'s PKCS#1 v1.5 signature (with DigestInfo) over `data`.
    pub fn verify(self, key: &PublicKey, data: &[u8], sig: &[u8]) -> bool {
        let r = match self {
            SigAlg::Sha1 => key.verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(data), sig),
            SigAlg::Sha256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data), sig),
            SigAlg::Sha384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(data), sig),
            SigAlg::Sha512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(data), sig),
        };
        r.is_ok()
    }
}

/// A parsed certificate and what IKE needs of it.
#[derive(Clone, Debug)]
pub struct Cert {
    der: Vec<u8>,
    cert: Certificate,
    key: PublicKey,
}

impl Cert {
    /// Parses a DER certificate with an RSA key.
    pub fn from_der(der: &[u8]) -> Result<Cert, CertError> {
        let cert = Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let alg = &cert.tbs_certificate().subject_public_key_info().algorithm;
        if alg.oid.to_string() != "1.2.840.113549.1.1.1" {
            return Err(CertError::NotRsa);
        }
        let key =
            PublicKey::from_public_key_der(&spki).map_err(|e| CertError::BadKey(e.to_string()))?;
        Ok(Cert {
            der: der.to_vec(),
            cert,
            key,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The key's modulus size in bits.
    pub fn key_bits(&self) -> usize {
        key_bits(&self.key)
    }

    /// The subject, DER (the body of an ID_DER_ASN1_DN, a CERTREQ's authority).
    pub fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }

    pub fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .unwrap_or_default()
    }

    /// The subject as RFC 4514 text (`CN=r1.lab.example,O=espgw lab,C=CH`).
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate().issuer().to_string()
    }

    /// The serial number, hex, as IOS prints it (no leading zero byte).
    pub fn serial_hex(&self) -> String {
        let b = self.cert.tbs_certificate().serial_number().as_bytes();
        let b = match b {
            [0, rest @ ..] if !rest.is_empty() => rest,
            _ => b,
        };
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    /// The serial number's bytes (as a CRL lists them).
    pub fn serial_bytes(&self) -> &[u8] {
        self.cert.tbs_certificate().serial_number().as_bytes()
    }

    /// Not before, not after.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = self.cert.tbs_certificate().validity();
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// Seconds since the epoch of both bounds (for display).
    pub fn validity_unix(&self) -> (u64, u64) {
        let (a, b) = self.validity();
        let s = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs()
        };
        (s(a), s(b))
    }

    fn san(&self) -> Result<Vec<GeneralName>, CertError> {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
        {
            Ok(Some((_, san))) => Ok(san.0),
            Ok(None) => Ok(Vec::new()),
            Err(_) => Err(CertError::BadExtension("subjectAltName")),
        }
    }

    /// The IPv4 addresses of the subjectAltName.
    pub fn san_ipv4(&self) -> Vec<Ipv4Addr> {
        self.san()
            .unwrap_or_default()
            .iter()
            .filter_map(|g| match g {
                GeneralName::IpAddress(o) => {
                    <[u8; 4]>::try_from(o.as_bytes()).ok().map(Ipv4Addr::from)
                }
                _ => None,
            })
            .collect()
    }

    /// The DNS names of the subjectAltName.
    pub fn san_dns(&self) -> Vec<String> {
        self.san()
            .unwrap_or_default()
            .iter()
            .filter_map(|g| match g {
                GeneralName::DnsName(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }

    /// basicConstraints: `Some(ca)` if present.
    pub fn basic_constraints_ca(&self) -> Result<Option<bool>, CertError> {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
        {
            Ok(b) => Ok(b.map(|(_, b)| b.ca)),
            Err(_) => Err(CertError::BadExtension("basicConstraints")),
        }
    }

    /// keyUsage, if present: (digitalSignature, keyEncipherment, keyCertSign, cRLSign).
    pub fn key_usage(&self) -> Result<Option<KeyUsageBits>, CertError> {
        match self.cert.tbs_certificate().get_extension::<KeyUsage>() {
            Ok(k) => Ok(k.map(|(_, k)| KeyUsageBits {
                digital_signature: k.digital_signature(),
                key_encipherment: k.key_encipherment(),
                key_cert_sign: k.key_cert_sign(),
                crl_sign: k.crl_sign(),
            })),
            Err(_) => Err(CertError::BadExtension("keyUsage")),
        }
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &PublicKey) -> bool {
        let Some(alg) = SigAlg::from_oid(&self.cert.signature_algorithm().oid) else {
            return false;
        };
        let Ok(tbs) = self.cert.tbs_certificate().to_der() else {
            return false;
        };
        let Some(sig) = self.cert.signature().as_bytes() else {
            return false;
        };
        alg.verify(issuer, &tbs, sig)
    }

    /// Whether subject and issuer are the same name (a root CA's self-signed certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject_der() == self.issuer_der()
    }
}

/// A public key's modulus size in bits.
pub fn key_bits(k: &PublicKey) -> usize {
    k.n().bit_width() as usize
}

/// The keyUsage bits espgw looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsageBits {
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
}

/// The DER blocks of every `-----BEGIN label-----` section of a PEM text, with their
/// labels; a block whose base64 does not decode is an error naming its label.
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let l = l.trim();
        let Some(label) = l
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(format!("{label}: no `{end}` line"));
        }
        let der = base64_decode(&b64).ok_or_else(|| format!("{label}: bad base64"))?;
        out.push((label.to_string(), der));
    }
    Ok(out)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut pad = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if pad > 0 {
            return None;
        }
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if pad > 2 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn testdata(name: &str) -> Vec<u8> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/src/pki/testdata/");
        let text = std::fs::read_to_string(format!("{p}{name}")).unwrap();
        pem_blocks(&text).unwrap().remove(0).1
    }

    #[test]
    fn parses_a_pki_made_certificate() {
        let c = Cert::from_der(&testdata("r1.pem")).unwrap();
        assert_eq!(c.subject(), "CN=r1.lab.example,O=espgw lab,C=CH");
        assert_eq!(c.issuer(), "CN=Lab CA,O=espgw lab,C=CH");
        assert_eq!(c.serial_hex(), "35219C1D59F6446A");
        assert_eq!(c.san_ipv4(), vec![Ipv4Addr::new(172, 16, 172, 10)]);
        assert_eq!(c.san_dns(), vec!["r1.lab.example".to_string()]);
        assert_eq!(c.key_bits(), 2048);
        assert_eq!(c.basic_constraints_ca().unwrap(), None);
        let ca = Cert::from_der(&testdata("ca.pem")).unwrap();
        assert_eq!(ca.basic_constraints_ca().unwrap(), Some(true));
        assert!(ca.is_self_issued() && !c.is_self_issued());
        assert_eq!(c.issuer_der(), ca.subject_der());
        assert!(c.signed_by(ca.public_key()));
        assert!(ca.signed_by(ca.public_key()));
        let other = Cert::from_der(&testdata("other-ca.pem")).unwrap();
        assert!(!c.signed_by(other.public_key()));
    }

    #[test]
    fn tampered_certificate_fails_its_signature() {
        let ca = Cert::from_der(&testdata("ca.pem")).unwrap();
        let mut der = testdata("r1.pem");
        // A byte inside the subject's common name.
        let pos = der.windows(2).position(|w| w == b"r1").unwrap();
        der[pos] = b'x';
        let c = Cert::from_der(&der).unwrap();
        assert!(!c.signed_by(ca.public_key()));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x01", &[0x30, 0x82, 0xff, 0xff]] {
            assert!(matches!(
                Cert::from_der(bytes),
                Err(CertError::Malformed(_))
            ));
        }
        let mut der = testdata("r1.pem");
        der.truncate(der.len() - 10);
        assert!(Cert::from_der(&der).is_err());
    }

    #[test]
    fn pem_blocks_and_base64() {
        let text = "junk\n-----BEGIN A-----\nAAEC\nAw==\n-----END A-----\n-----BEGIN B-----\nAA\n";
        assert!(pem_blocks(text)
            .unwrap_err()
            .contains("no `-----END B-----`"));
        let text = "-----BEGIN A-----\nAAECAw==\n-----END A-----\n";
        assert_eq!(
            pem_blocks(text).unwrap(),
            vec![("A".into(), vec![0, 1, 2, 3])]
        );
        assert_eq!(base64_decode("AAEC").unwrap(), vec![0, 1, 2]);
        assert!(base64_decode("AA=A").is_none());
        assert!(base64_decode("A*").is_none());
    }
}
