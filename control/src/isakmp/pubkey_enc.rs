//! The payloads rsa-encr sends encrypted with the other side's RSA key (RFC 2409 §5.2):
//! `<IDii_b>PubKey_r`, `<Ni_b>PubKey_r` and the responder's two back. On the wire each is an
//! ordinary ID or NONCE payload whose body is one PKCS#1 v1.5 ciphertext, as long as the
//! key's modulus; HASH(1), when present, is a HASH payload before them naming the key.
//!
//! [`EncryptedBody`] is the typed view over such a body (the generic parser reads it as an
//! ID or NONCE payload like any other); [`PlainId`] and [`PlainNonce`] check what came out
//! of the decryption. Every check returns [`EncryptedPayloadError`], never panics (fuzz
//! target `cert_payloads`), and `emit` builds the payload back: `from_payload(emit(x)) == x`.

use super::payload::{IdPayload, Payload, PayloadType};

/// Why an encrypted ID or NONCE payload, or what it decrypted to, is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptedPayloadError {
    #[error("no encrypted {0} payload")]
    Missing(&'static str),
    #[error("encrypted {what} payload is {len} bytes, the key's modulus {modulus}")]
    Length {
        what: &'static str,
        len: usize,
        modulus: usize,
    },
    #[error("decrypted ID is {0} bytes (at least 4: type, protocol, port)")]
    ShortId(usize),
    #[error("decrypted nonce is {0} bytes (RFC 2409: 8 to 256)")]
    NonceLength(usize),
}

impl EncryptedPayloadError {
    /// The reason as a fixed string (for [`crate::ike::endpoint::IkeError`]).
    pub fn reason(&self) -> &'static str {
        match self {
            EncryptedPayloadError::Missing(_) => "encrypted ID or NONCE payload missing",
            EncryptedPayloadError::Length { .. } => "encrypted payload of the wrong length",
            EncryptedPayloadError::ShortId(_) => "encrypted ID did not decrypt to an ID",
            EncryptedPayloadError::NonceLength(_) => "encrypted nonce of a bad length",
        }
    }
}

/// Which payload an encrypted body travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypted {
    Id,
    Nonce,
}

impl Encrypted {
    pub fn payload_type(self) -> PayloadType {
        match self {
            Encrypted::Id => PayloadType::Id,
            Encrypted::Nonce => PayloadType::Nonce,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Encrypted::Id => "ID",
            Encrypted::Nonce => "NONCE",
        }
    }
}

/// One encrypted body: the ciphertext of an ID or nonce body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedBody {
    pub kind: Encrypted,
    pub ct: Vec<u8>,
}

impl EncryptedBody {
    /// The first payload of `kind` in `ps`, its body taken as a ciphertext for a key whose
    /// modulus is `modulus` bytes.
    pub fn find(
        ps: &[Payload],
        kind: Encrypted,
        modulus: usize,
    ) -> Result<EncryptedBody, EncryptedPayloadError> {
        let p = ps
            .iter()
            .find(|p| p.payload_type() == kind.payload_type())
            .ok_or(EncryptedPayloadError::Missing(kind.name()))?;
        let ct = match p {
            Payload::Other { body, .. } => body.clone(),
            p => p.body_bytes(),
        };
        if ct.len() != modulus {
            return Err(EncryptedPayloadError::Length {
                what: kind.name(),
                len: ct.len(),
                modulus,
            });
        }
        Ok(EncryptedBody { kind, ct })
    }

    /// The payload to send: the ciphertext as the body of an ID or NONCE payload.
    pub fn emit(&self) -> Payload {
        Payload::Other {
            ty: self.kind.payload_type().code(),
            body: self.ct.clone(),
        }
    }
}

/// A decrypted ID body (`IDii_b` / `IDir_b`: what HASH_I and HASH_R cover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainId {
    pub body: Vec<u8>,
    pub id: IdPayload,
}

impl PlainId {
    pub fn parse(body: &[u8]) -> Result<PlainId, EncryptedPayloadError> {
        if body.len() < 4 {
            return Err(EncryptedPayloadError::ShortId(body.len()));
        }
        Ok(PlainId {
            body: body.to_vec(),
            id: IdPayload {
                id_type: body[0],
                protocol: body[1],
                port: u16::from_be_bytes([body[2], body[3]]),
                data: body[4..].to_vec(),
            },
        })
    }
}

/// A decrypted nonce body (`Ni_b` / `Nr_b`).
pub struct PlainNonce;

impl PlainNonce {
    /// RFC 2409 §5: a nonce is 8 to 256 bytes.
    pub fn check(body: &[u8]) -> Result<(), EncryptedPayloadError> {
        if (8..=256).contains(&body.len()) {
            Ok(())
        } else {
            Err(EncryptedPayloadError::NonceLength(body.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::{emit_chain, parse_chain};

    #[test]
    fn encrypted_bodies_round_trip_through_the_generic_parser() {
        let id = EncryptedBody {
            kind: Encrypted::Id,
            ct: (0..128).map(|i| i as u8 ^ 0x5a).collect(),
        };
        let nonce = EncryptedBody {
            kind: Encrypted::Nonce,
            ct: (0..128).map(|i| i as u8).collect(),
        };
        let mut b = Vec::new();
        emit_chain(&[id.emit(), nonce.emit()], &mut b);
        let ps = parse_chain(PayloadType::Id.code(), &b, false).unwrap();
        assert_eq!(EncryptedBody::find(&ps, Encrypted::Id, 128), Ok(id));
        assert_eq!(EncryptedBody::find(&ps, Encrypted::Nonce, 128), Ok(nonce));
        assert_eq!(
            EncryptedBody::find(&ps, Encrypted::Id, 256),
            Err(EncryptedPayloadError::Length {
                what: "ID",
                len: 128,
                modulus: 256
            })
        );
        assert_eq!(
            EncryptedBody::find(&ps[1..], Encrypted::Id, 128),
            Err(EncryptedPayloadError::Missing("ID"))
        );
    }

    #[test]
    fn decrypted_bodies_are_checked() {
        assert_eq!(
            PlainId::parse(&[1, 17]),
            Err(EncryptedPayloadError::ShortId(2))
        );
        let p = PlainId::parse(&[1, 17, 1, 244, 10, 0, 0, 1]).unwrap();
        assert_eq!(
            (p.id.id_type, p.id.port, &p.id.data[..]),
            (1, 500, &[10, 0, 0, 1][..])
        );
        assert!(PlainNonce::check(&[0; 7]).is_err());
        assert!(PlainNonce::check(&[0; 8]).is_ok());
        assert!(PlainNonce::check(&[0; 256]).is_ok());
        assert_eq!(
            PlainNonce::check(&[0; 257]),
            Err(EncryptedPayloadError::NonceLength(257))
        );
    }
}
