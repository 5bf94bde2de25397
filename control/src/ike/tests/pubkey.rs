//! rsa-sig (RFC 2409 §5.1) between two espgw endpoints, Main and Aggressive Mode, with the
//! test PKI made by strongSwan's `pki` (src/pki/testdata/gen.sh): each identity type, and
//! each refusal (expired, other CA, ID mismatch, revoked, tampered signature) with its IOS
//! message and no SA.

use super::*;
use crate::config::pki::{IsakmpIdentity, RevocationCheck};
use crate::isakmp::{Message, Payload};
use crate::pki::store::parse_private_key;
use crate::pki::{cert::pem_blocks, Cert, Credentials, Crl, TrustAnchor};
use std::sync::Arc;
use std::time::SystemTime;

fn file(name: &str) -> String {
    let p = format!("{}/src/pki/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(p).unwrap()
}

fn der(name: &str) -> Vec<u8> {
    pem_blocks(&file(name)).unwrap().remove(0).1
}

/// 2030-01-01: inside every test certificate's validity but the expired one's.
fn lab_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn creds(key: &str, cert: &str, identity: IsakmpIdentity, fqdn: Option<&str>) -> Credentials {
    Credentials {
        key: parse_private_key(&file(key)).unwrap(),
        cert: Some(Cert::from_der(&der(cert)).unwrap()),
        anchors: vec![TrustAnchor {
            trustpoint: "LAB".into(),
            ca: Cert::from_der(&der("ca.pem")).unwrap(),
            revocation: RevocationCheck::Crl,
            crl: Some(Crl::from_der(&der("ca.crl")).unwrap()),
        }],
        identity,
        fqdn: fqdn.map(str::to_string),
        peer_keys: vec![],
        peer_names: vec![],
        clock: lab_clock,
    }
}

/// Both sides rsa-sig only, no pre-shared keys.
fn rsa_sig(ep: &mut Endpoint, c: Credentials) {
    let mut cfg = ep.config().clone();
    cfg.keys.clear();
    for p in &mut cfg.policies {
        p.auth = AuthMethod::RsaSig;
    }
    cfg.pki = Some(Arc::new(c));
    ep.set_config(cfg);
}

fn lab(mode: Phase1Mode, a: Credentials, b: Credentials) -> Lab {
    let o = Opts {
        mode,
        enc: EncAlg::Aes(128),
        group: DhGroup::Modp1024,
        ..Opts::default()
    };
    let mut lab = Lab::new(&o, &o);
    rsa_sig(&mut lab.a, a);
    rsa_sig(&mut lab.b, b);
    lab
}

fn r1(id: IsakmpIdentity) -> Credentials {
    creds("r1.key", "r1.pem", id, Some("r1.lab.example"))
}
fn r2(id: IsakmpIdentity) -> Credentials {
    creds("r2.key", "r2.pem", id, Some("r2.lab.example"))
}

#[test]
fn main_and_aggressive_mode_with_each_identity() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for (id, name) in [
            (IsakmpIdentity::Address, "ID_IPV4_ADDR"),
            (IsakmpIdentity::Hostname, "ID_FQDN"),
            (IsakmpIdentity::Dn, "ID_DER_ASN1_DN"),
        ] {
            let mut lab = lab(mode, r1(id), r2(id));
            assert!(lab.a.initiate(lab.now, "vpn", 10));
            lab.pump();
            if mode == Phase1Mode::Aggressive {
                lab.advance(Duration::from_secs(1));
            }
            assert_tunnel(&lab);
            let da = Lab::debug(&mut lab.a).join("\n");
            let db = Lab::debug(&mut lab.b).join("\n");
            let line = format!("SA is doing RSA signature authentication using id type {name}");
            assert!(da.contains(&line), "{mode:?} {name}: {da}");
            assert!(db.contains(&line), "{mode:?} {name}: {db}");
            assert!(da.contains("ISAKMP:      auth RSA sig"), "{da}");
            for d in [&da, &db] {
                assert!(d.contains("is valid"), "{d}");
                assert!(!d.contains("PRIVATE"), "nothing private in debug output");
            }
        }
    }
}

/// Sets up a lab where B presents `b`, runs it, and returns A's and B's debug output and
/// A's failed phase-1 negotiations (no SA comes up on either side).
fn refused(mode: Phase1Mode, b_initiates: bool, b: Credentials) -> (String, String, Failures) {
    let mut lab = lab(mode, r1(IsakmpIdentity::Address), b);
    if b_initiates {
        assert!(lab.b.initiate(lab.now, "vpn", 10));
    } else {
        assert!(lab.a.initiate(lab.now, "vpn", 10));
    }
    lab.pump();
    lab.advance(Duration::from_secs(10));
    assert!(
        pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty(),
        "no SA"
    );
    assert!(lab.a.isakmp_sas().iter().all(|s| s.state != "QM_IDLE"));
    // B counts its ISAKMP SA established once it sent MM6 or AM3; A's protected DELETE
    // ends it.
    assert!(
        lab.b.isakmp_sas().iter().all(|s| s.state != "QM_IDLE"),
        "B keeps an ISAKMP SA: {:?}",
        lab.b
            .isakmp_sas()
            .iter()
            .map(|s| &s.state)
            .collect::<Vec<_>>()
    );
    (
        Lab::debug(&mut lab.a).join("\n"),
        Lab::debug(&mut lab.b).join("\n"),
        lab.a.counters.p1_failed,
    )
}

#[test]
fn negative_cases_are_refused_with_the_ios_message() {
    let cases = [
        (
            creds("r2.key", "r2-expired.pem", IsakmpIdentity::Address, None),
            "%PKI-3-CERTIFICATE_INVALID_EXPIRED: Certificate chain validation has failed. The certificate (SN: ",
            FailReason::CertInvalid,
        ),
        (
            creds("r2.key", "r2-other-ca.pem", IsakmpIdentity::Address, None),
            "%PKI-3-CERTIFICATE_INVALID: Certificate chain validation has failed. Unable to locate the issuer (CN=Other CA,O=other,C=CH) in trustpoint LAB",
            FailReason::CertInvalid,
        ),
        (
            // R1's own certificate presented from R2's address.
            creds("r1.key", "r1.pem", IsakmpIdentity::Address, None),
            "%CRYPTO-6-IKMP_NO_ID_CERT_ADDR_MATCH: ID of 172.16.172.20 (type 1) and certificate addr with 172.16.172.10",
            FailReason::InvalidId,
        ),
        (
            creds("r3.key", "r3.pem", IsakmpIdentity::Hostname, Some("r3.lab.example")),
            "%PKI-3-CERTIFICATE_REVOKED: Certificate chain validation has failed. The certificate (SN: ",
            FailReason::CertInvalid,
        ),
    ];
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for b_initiates in [false, true] {
            for (c, want, reason) in &cases {
                let c = Credentials {
                    key: c.key.clone(),
                    cert: c.cert.clone(),
                    anchors: c.anchors.clone(),
                    identity: c.identity,
                    fqdn: c.fqdn.clone(),
                    peer_keys: vec![],
                    peer_names: vec![],
                    clock: c.clock,
                };
                let (da, _, failed) = refused(mode, b_initiates, c);
                // A refused B's certificate once, for that reason (metrics' `reason`).
                assert_eq!(
                    (failed.total(), failed.get(*reason)),
                    (1, 1),
                    "{mode:?} b_initiates={b_initiates}: {reason:?} {failed:?}"
                );
                assert!(
                    da.contains(want),
                    "{mode:?} b_initiates={b_initiates}: {want}\n{da}"
                );
                assert!(
                    da.contains(
                        "%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 172.16.172.20 is bad"
                    ) || da.contains("IKMP_NO_ID_CERT"),
                    "{da}"
                );
            }
        }
    }
}

#[test]
fn tampered_signature_in_aggressive_mode_is_refused() {
    let mut lab = lab(
        Phase1Mode::Aggressive,
        r1(IsakmpIdentity::Address),
        r2(IsakmpIdentity::Address),
    );
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let am1 = lab.a.poll_transmit().unwrap();
    lab.b
        .handle_datagram(lab.now, am1.remote, am1.local, &am1.data);
    let mut am2 = lab.b.poll_transmit().unwrap();
    // AM2 is in the clear: flip a bit in its SIG payload (type 9).
    let m = Message::parse(&am2.data).unwrap();
    let sig = m
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::Other { ty: 9, body } => Some(body.clone()),
            _ => None,
        })
        .expect("AM2 carries SIG");
    let pos = am2
        .data
        .windows(sig.len())
        .position(|w| w == &sig[..])
        .unwrap();
    am2.data[pos + 100] ^= 0x40;
    lab.a
        .handle_datagram(lab.now, am2.remote, am2.local, &am2.data);
    lab.pump();
    let da = Lab::debug(&mut lab.a).join("\n");
    assert!(
        da.contains("%CRYPTO-4-IKMP_BAD_SIGNATURE: RSA signature from 172.16.172.20 (ID_IPV4_ADDR) failed to verify"),
        "{da}"
    );
    assert!(da.contains("deleting SA reason \"bad signature\""), "{da}");
    lab.advance(Duration::from_secs(120));
    assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
}

#[test]
fn main_mode_sends_certreq_and_cert_payloads() {
    let mut lab = lab(
        Phase1Mode::Main,
        r1(IsakmpIdentity::Address),
        r2(IsakmpIdentity::Address),
    );
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let mm1 = lab.a.poll_transmit().unwrap();
    let m = Message::parse(&mm1.data).unwrap();
    let Some(Payload::Sa(sa)) = m.payloads.first() else {
        panic!()
    };
    // Authentication method 3 (RSA signatures) in the offer.
    assert!(sa.proposals[0].transforms[0]
        .attrs
        .iter()
        .any(|a| a.ty == crate::isakmp::attr::p1::AUTH && a.as_u64() == Some(3)));
    lab.b
        .handle_datagram(lab.now, mm1.remote, mm1.local, &mm1.data);
    let mm2 = lab.b.poll_transmit().unwrap();
    lab.a
        .handle_datagram(lab.now, mm2.remote, mm2.local, &mm2.data);
    let mm3 = lab.a.poll_transmit().unwrap();
    let m = Message::parse(&mm3.data).unwrap();
    let ca_subject = Cert::from_der(&der("ca.pem")).unwrap().subject_der();
    let req = m
        .payloads
        .iter()
        .find_map(|p| crate::isakmp::cert::CertReqPayload::from_payload(p).ok())
        .expect("MM3 carries CERTREQ");
    assert_eq!((req.cert_type, req.authority), (4, ca_subject));
}
