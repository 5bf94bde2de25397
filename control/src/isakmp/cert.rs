//! The public-key payloads (RFC 2408 §3.9–3.12) as typed views over the bodies the generic
//! parser keeps opaque ([`Payload::Other`]): CERT (encoding + data), CERTREQ (type +
//! certificate authority), SIG (the signature bytes). Parsing returns [`CertPayloadError`],
//! never panics (fuzz target `cert_payloads`), and `emit` builds the [`Payload`] back, so
//! `parse(emit(x)) == x`.

use super::payload::{Payload, PayloadType};

/// Certificate encodings (RFC 2408 §3.9) espgw reads or writes.
pub mod cert_encoding {
    pub const PKCS7: u8 = 1;
    /// X.509 Certificate - Signature: DER, what IOS and strongSwan send.
    pub const X509_SIGNATURE: u8 = 4;
    pub const CRL: u8 = 7;
}

/// Why a CERT, CERTREQ or SIG body is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertPayloadError {
    #[error("{0} payload is empty")]
    Empty(&'static str),
    #[error("CERT payload with encoding {0} (only 4, X.509 signature, is supported)")]
    UnsupportedEncoding(u8),
    #[error("CERTREQ for certificate type {0} (only 4, X.509 signature, is supported)")]
    UnsupportedType(u8),
    #[error("not a {0} payload")]
    WrongType(&'static str),
}

/// A CERT payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    pub encoding: u8,
    pub data: Vec<u8>,
}

impl CertPayload {
    /// An X.509 signature certificate, DER.
    pub fn x509(der: &[u8]) -> Self {
        CertPayload {
            encoding: cert_encoding::X509_SIGNATURE,
            data: der.to_vec(),
        }
    }

    /// From a CERT body: an encoding byte and at least one byte of data.
    pub fn parse_body(b: &[u8]) -> Result<Self, CertPayloadError> {
        match b {
            [] | [_] => Err(CertPayloadError::Empty("CERT")),
            [enc, data @ ..] => Ok(CertPayload {
                encoding: *enc,
                data: data.to_vec(),
            }),
        }
    }

    /// From a received payload.
    pub fn from_payload(p: &Payload) -> Result<Self, CertPayloadError> {
        match p {
            Payload::Other { ty, body } if *ty == PayloadType::Cert.code() => {
                Self::parse_body(body)
            }
            _ => Err(CertPayloadError::WrongType("CERT")),
        }
    }

    /// The DER of an X.509 signature certificate, or why not.
    pub fn x509_der(&self) -> Result<&[u8], CertPayloadError> {
        if self.encoding == cert_encoding::X509_SIGNATURE {
            Ok(&self.data)
        } else {
            Err(CertPayloadError::UnsupportedEncoding(self.encoding))
        }
    }

    pub fn emit(&self) -> Payload {
        let mut body = Vec::with_capacity(1 + self.data.len());
        body.push(self.encoding);
        body.extend_from_slice(&self.data);
        Payload::Other {
            ty: PayloadType::Cert.code(),
            body,
        }
    }
}

/// A CERTREQ payload: the certificate type wanted and, optionally, the DER name of a CA
/// the sender trusts (empty: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertReqPayload {
    pub cert_type: u8,
    pub authority: Vec<u8>,
}

impl CertReqPayload {
    /// X.509 signature certificates issued by the CA named `ca_subject_der`.
    pub fn x509(ca_subject_der: &[u8]) -> Self {
        CertReqPayload {
            cert_type: cert_encoding::X509_SIGNATURE,
            authority: ca_subject_der.to_vec(),
        }
    }

    pub fn parse_body(b: &[u8]) -> Result<Self, CertPayloadError> {
        match b {
            [] => Err(CertPayloadError::Empty("CERTREQ")),
            [t, rest @ ..] => Ok(CertReqPayload {
                cert_type: *t,
                authority: rest.to_vec(),
            }),
        }
    }

    pub fn from_payload(p: &Payload) -> Result<Self, CertPayloadError> {
        match p {
            Payload::Other { ty, body } if *ty == PayloadType::CertReq.code() => {
                Self::parse_body(body)
            }
            _ => Err(CertPayloadError::WrongType("CERTREQ")),
        }
    }

    pub fn emit(&self) -> Payload {
        let mut body = Vec::with_capacity(1 + self.authority.len());
        body.push(self.cert_type);
        body.extend_from_slice(&self.authority);
        Payload::Other {
            ty: PayloadType::CertReq.code(),
            body,
        }
    }
}

/// The signature bytes of a SIG payload.
pub fn sig_of(p: &Payload) -> Result<&[u8], CertPayloadError> {
    match p {
        Payload::Other { ty, body } if *ty == PayloadType::Sig.code() => {
            if body.is_empty() {
                Err(CertPayloadError::Empty("SIG"))
            } else {
                Ok(body)
            }
        }
        _ => Err(CertPayloadError::WrongType("SIG")),
    }
}

/// A SIG payload.
pub fn sig_payload(sig: &[u8]) -> Payload {
    Payload::Other {
        ty: PayloadType::Sig.code(),
        body: sig.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::{emit_chain, parse_chain};

    #[test]
    fn round_trips_through_the_generic_chain() {
        let cert = CertPayload::x509(&[0x30, 0x00]);
        let req = CertReqPayload::x509(&[0x30, 0x02, 0x31, 0x00]);
        let sig = sig_payload(&[7; 256]);
        let ps = vec![cert.emit(), sig.clone(), req.emit()];
        let mut wire = Vec::new();
        emit_chain(&ps, &mut wire);
        let back = parse_chain(PayloadType::Cert.code(), &wire, true).unwrap();
        assert_eq!(back, ps);
        assert_eq!(CertPayload::from_payload(&back[0]).unwrap(), cert);
        assert_eq!(cert.x509_der().unwrap(), &[0x30, 0x00]);
        assert_eq!(sig_of(&back[1]).unwrap(), &[7; 256][..]);
        assert_eq!(CertReqPayload::from_payload(&back[2]).unwrap(), req);
        // The CERT body: encoding 4, then the DER.
        assert_eq!(&wire[4..7], &[4, 0x30, 0x00]);
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert_eq!(
            CertPayload::parse_body(&[]),
            Err(CertPayloadError::Empty("CERT"))
        );
        assert_eq!(
            CertPayload::parse_body(&[4]),
            Err(CertPayloadError::Empty("CERT"))
        );
        let pkcs7 = CertPayload::parse_body(&[1, 2, 3]).unwrap();
        assert_eq!(
            pkcs7.x509_der(),
            Err(CertPayloadError::UnsupportedEncoding(1))
        );
        assert_eq!(
            CertReqPayload::parse_body(&[]),
            Err(CertPayloadError::Empty("CERTREQ"))
        );
        assert_eq!(
            CertReqPayload::parse_body(&[4]).unwrap().authority,
            Vec::<u8>::new()
        );
        let hash = Payload::Hash(vec![1]);
        assert_eq!(sig_of(&hash), Err(CertPayloadError::WrongType("SIG")));
        assert_eq!(
            CertPayload::from_payload(&hash),
            Err(CertPayloadError::WrongType("CERT"))
        );
        assert_eq!(
            sig_of(&Payload::Other {
                ty: 9,
                body: vec![]
            }),
            Err(CertPayloadError::Empty("SIG"))
        );
    }
}
