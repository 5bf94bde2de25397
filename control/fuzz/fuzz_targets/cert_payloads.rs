//! CERT / CERTREQ / SIG payload views, rsa-encr's encrypted ID/NONCE views and their
//! decrypted-body checks, and the X.509 certificate and CRL parsers: arbitrary bytes never
//! panic; a view that parses re-emits the same body.
#![no_main]

use espgw_control::isakmp::cert::{sig_of, CertPayload, CertReqPayload};
use espgw_control::isakmp::pubkey_enc::{Encrypted, EncryptedBody, PlainId, PlainNonce};
use espgw_control::isakmp::{parse_chain, Payload, PayloadType};
use espgw_control::pki::{Cert, Crl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CertPayload::parse_body(data) {
        let Payload::Other { body, .. } = c.emit() else {
            panic!("CERT emits an opaque payload")
        };
        assert_eq!(body, data);
        if let Ok(der) = c.x509_der() {
            if let Ok(cert) = Cert::from_der(der) {
                let _ = (cert.subject(), cert.issuer(), cert.serial_hex());
                let _ = (cert.san_ipv4(), cert.san_dns(), cert.validity());
                let _ = (cert.basic_constraints_ca(), cert.key_usage());
                let _ = cert.signed_by(cert.public_key());
            }
        }
    }
    if let Ok(r) = CertReqPayload::parse_body(data) {
        let Payload::Other { body, .. } = r.emit() else {
            panic!("CERTREQ emits an opaque payload")
        };
        assert_eq!(body, data);
    }
    let _ = sig_of(&Payload::Other {
        ty: 9,
        body: data.to_vec(),
    });
    if let Ok(crl) = Crl::from_der(data) {
        let _ = (crl.next_update(), crl.revoked_count(), crl.lists(&[1]));
    }
    let _ = Cert::from_der(data);
    // rsa-encr: the bytes as a decrypted ID or nonce body, and as a payload chain holding
    // encrypted ones (a body that is found re-emits itself).
    if let Ok(id) = PlainId::parse(data) {
        assert_eq!(id.body, data);
    }
    let _ = PlainNonce::check(data);
    if let Ok(ps) = parse_chain(PayloadType::Id.code(), data, true) {
        for kind in [Encrypted::Id, Encrypted::Nonce] {
            for modulus in [128, 256, 512] {
                if let Ok(b) = EncryptedBody::find(&ps, kind, modulus) {
                    assert_eq!(b.ct.len(), modulus);
                    assert_eq!(EncryptedBody::find(&[b.emit()], kind, modulus), Ok(b));
                }
            }
        }
    }
});
