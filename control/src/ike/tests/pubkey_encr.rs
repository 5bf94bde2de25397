//! rsa-encr (RFC 2409 §5.2) between two espgw endpoints, Main and Aggressive Mode: keys
//! from the pubkey chain by address and by name, HASH(1) when the initiator holds several
//! keys for the responder, and the refusals (no key for the peer, HASH(1) naming a key the
//! responder lacks, a tampered encrypted payload), each with no SA.

use super::*;
use crate::config::pki::IsakmpIdentity;
use crate::isakmp::{Message, Payload};
use crate::pki::store::parse_private_key;
use crate::pki::Credentials;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::SystemTime;

fn key(name: &str) -> PrivateKey {
    let p = format!("{}/src/pki/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    parse_private_key(&std::fs::read_to_string(p).unwrap()).unwrap()
}
fn public(name: &str) -> PublicKey {
    key(name).as_public_key().clone()
}

const A: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const B: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

/// A gateway with key `own`, the peer keys `by_addr` and `by_name`.
fn creds(
    own: &str,
    identity: IsakmpIdentity,
    fqdn: Option<&str>,
    by_addr: Vec<(Ipv4Addr, &str)>,
    by_name: Vec<(&str, &str)>,
) -> Credentials {
    Credentials {
        key: key(own),
        cert: None,
        anchors: vec![],
        identity,
        fqdn: fqdn.map(str::to_string),
        peer_keys: by_addr.into_iter().map(|(a, k)| (a, public(k))).collect(),
        peer_names: by_name
            .into_iter()
            .map(|(n, k)| (n.to_string(), public(k)))
            .collect(),
        clock: SystemTime::now,
    }
}

fn r1() -> Credentials {
    creds(
        "r1.key",
        IsakmpIdentity::Address,
        None,
        vec![(B, "r2.key")],
        vec![],
    )
}
fn r2() -> Credentials {
    creds(
        "r2.key",
        IsakmpIdentity::Address,
        None,
        vec![(A, "r1.key")],
        vec![],
    )
}

/// Both sides rsa-encr only, no pre-shared keys.
fn rsa_encr(ep: &mut Endpoint, c: Credentials) {
    let mut cfg = ep.config().clone();
    cfg.keys.clear();
    for p in &mut cfg.policies {
        p.auth = AuthMethod::RsaEncr;
    }
    cfg.pki = Some(Arc::new(c));
    ep.set_config(cfg);
}

fn lab(mode: Phase1Mode, hash: HashAlg, a: Credentials, b: Credentials) -> Lab {
    let o = Opts {
        mode,
        enc: EncAlg::Aes(128),
        hash,
        group: DhGroup::Modp1024,
        ..Opts::default()
    };
    let mut lab = Lab::new(&o, &o);
    rsa_encr(&mut lab.a, a);
    rsa_encr(&mut lab.b, b);
    lab
}

fn run(lab: &mut Lab, mode: Phase1Mode) {
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    lab.pump();
    if mode == Phase1Mode::Aggressive {
        lab.advance(Duration::from_secs(1));
    }
}

/// Runs the exchange and returns no SA's debug output of both sides.
fn refused(mode: Phase1Mode, a: Credentials, b: Credentials) -> (String, String) {
    let mut lab = lab(mode, HashAlg::Sha1, a, b);
    run(&mut lab, mode);
    lab.advance(Duration::from_secs(10));
    assert!(
        pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty(),
        "no SA"
    );
    assert!(lab.a.isakmp_sas().iter().all(|s| s.state != "QM_IDLE"));
    assert!(lab.b.isakmp_sas().iter().all(|s| s.state != "QM_IDLE"));
    (
        Lab::debug(&mut lab.a).join("\n"),
        Lab::debug(&mut lab.b).join("\n"),
    )
}

#[test]
fn main_and_aggressive_mode_with_addressed_keys() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for hash in [HashAlg::Md5, HashAlg::Sha1] {
            let mut lab = lab(mode, hash, r1(), r2());
            run(&mut lab, mode);
            assert_tunnel(&lab);
            let da = Lab::debug(&mut lab.a).join("\n");
            let db = Lab::debug(&mut lab.b).join("\n");
            let line = "SA is doing RSA encryption authentication using id type ID_IPV4_ADDR";
            for d in [&da, &db] {
                assert!(d.contains(line), "{mode:?}: {d}");
                assert!(d.contains("ISAKMP:      auth RSA encr"), "{d}");
                assert!(d.contains("decrypted ID and NONCE payloads"), "{d}");
                assert!(d.contains("SA has been authenticated with"), "{d}");
                assert!(!d.contains("PRIVATE"), "nothing private in debug output");
            }
            // Both sides hold the same ISAKMP keys (SKEYID from the decrypted nonces).
            let ka = lab.a.isakmp_sas();
            assert_eq!(ka.len(), 1, "{mode:?}");
        }
    }
}

#[test]
fn nonce_and_id_travel_encrypted_and_hash1_only_with_several_keys() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for several in [false, true] {
            let a = if several {
                // Two keys for B: the first (the right one) is used, HASH(1) names it.
                creds(
                    "r1.key",
                    IsakmpIdentity::Address,
                    None,
                    vec![(B, "r2.key"), (B, "r3.key")],
                    vec![],
                )
            } else {
                r1()
            };
            let mut lab = lab(mode, HashAlg::Sha1, a, r2());
            assert!(lab.a.initiate(lab.now, "vpn", 10));
            let mut first = lab.a.poll_transmit().unwrap();
            if mode == Phase1Mode::Main {
                lab.b
                    .handle_datagram(lab.now, first.remote, first.local, &first.data);
                let mm2 = lab.b.poll_transmit().unwrap();
                lab.a
                    .handle_datagram(lab.now, mm2.remote, mm2.local, &mm2.data);
                first = lab.a.poll_transmit().unwrap();
            }
            let m = Message::parse(&first.data).unwrap();
            let id = m.payloads.iter().find_map(|p| match p {
                Payload::Id(id) => Some(Payload::Id(id.clone()).body_bytes()),
                _ => None,
            });
            let nonce = m.payloads.iter().find_map(|p| match p {
                Payload::Nonce(n) => Some(n.clone()),
                _ => None,
            });
            let (id, nonce) = (id.unwrap(), nonce.unwrap());
            // One ciphertext each, as long as R2's 2048-bit modulus.
            assert_eq!(id.len(), 256, "{mode:?}");
            assert_eq!(nonce.len(), 256);
            assert!(!id.windows(4).any(|w| w == A.octets()));
            // The plaintext is R1's address ID, under R2's key.
            let plain = crate::pki::ike::decrypt_body(&key("r2.key"), &id).unwrap();
            assert_eq!(&plain[..], &[1, 17, 1, 244, 172, 16, 172, 10]);
            let hash = m.payloads.iter().find_map(|p| match p {
                Payload::Hash(h) => Some(h.clone()),
                _ => None,
            });
            if several {
                use rsa::pkcs8::EncodePublicKey;
                let spki = public("r2.key").to_public_key_der().unwrap();
                let want = HashAlg::Sha1.hash(&[spki.as_bytes()]);
                assert_eq!(hash, Some(want), "{mode:?}: HASH(1)");
            } else {
                assert_eq!(hash, None, "{mode:?}: no HASH(1) with one key");
            }
            lab.b
                .handle_datagram(lab.now, first.remote, first.local, &first.data);
            lab.pump();
            lab.advance(Duration::from_secs(1));
            assert_tunnel(&lab);
            assert_eq!(public("r2.key").size(), 256);
        }
    }
}

#[test]
fn responder_finds_the_initiators_named_key_by_its_fqdn() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        let a = creds(
            "r1.key",
            IsakmpIdentity::Hostname,
            Some("r1.lab.example"),
            vec![(B, "r2.key")],
            vec![],
        );
        // B knows A only by name (a named-key without address).
        let b = creds(
            "r2.key",
            IsakmpIdentity::Address,
            None,
            vec![],
            vec![("R1.lab.example", "r1.key")],
        );
        let mut lab = lab(mode, HashAlg::Sha1, a, b);
        run(&mut lab, mode);
        assert_tunnel(&lab);
        let da = Lab::debug(&mut lab.a).join("\n");
        assert!(
            da.contains("SA is doing RSA encryption authentication using id type ID_FQDN"),
            "{da}"
        );
    }
}

#[test]
fn refusals_leave_no_sa() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        // A has no key for B.
        let a = creds(
            "r1.key",
            IsakmpIdentity::Address,
            None,
            vec![(A, "r1.key")],
            vec![],
        );
        let (da, _) = refused(mode, a, r2());
        assert!(
            da.contains("no public key for peer 172.16.172.20 in the pubkey chain"),
            "{mode:?}: {da}"
        );
        // B has no key for A.
        let b = creds(
            "r2.key",
            IsakmpIdentity::Address,
            None,
            vec![(B, "r2.key")],
            vec![],
        );
        let (_, db) = refused(mode, r1(), b);
        assert!(
            db.contains("no public key for peer 172.16.172.10 in the pubkey chain"),
            "{mode:?}: {db}"
        );
        // A encrypts to the wrong one of two keys: HASH(1) names a key B does not hold.
        let a = creds(
            "r1.key",
            IsakmpIdentity::Address,
            None,
            vec![(B, "r3.key"), (B, "r2.key")],
            vec![],
        );
        let (_, db) = refused(mode, a, r2());
        assert!(
            db.contains("HASH(1) names a public key this router does not hold"),
            "{mode:?}: {db}"
        );
        // A holds one wrong key for B (no HASH(1)): B's decryption yields unrelated bytes
        // (implicit rejection), so the ID or the nonce is refused, or the keys differ and
        // MM5/AM3 does not decrypt or its HASH_I fails.
        let a = creds(
            "r1.key",
            IsakmpIdentity::Address,
            None,
            vec![(B, "r3.key")],
            vec![],
        );
        let (da, db) = refused(mode, a, r2());
        // Main Mode: B refuses MM5; Aggressive Mode: A refuses AM2's HASH_R.
        let d = if mode == Phase1Mode::Main { db } else { da };
        assert!(
            d.contains("bad encrypted payload")
                || d.contains("RSA decryption failed")
                || d.contains("INVALID_HASH_INFORMATION")
                || d.contains("failed its sanity check or is malformed"),
            "{mode:?}: {d}"
        );
    }
}

#[test]
fn a_truncated_encrypted_nonce_is_a_typed_error() {
    let mut lab = lab(Phase1Mode::Aggressive, HashAlg::Sha1, r1(), r2());
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let am1 = lab.a.poll_transmit().unwrap();
    let mut m = Message::parse(&am1.data).unwrap();
    for p in &mut m.payloads {
        if let Payload::Nonce(n) = p {
            n.truncate(100);
        }
    }
    let bytes = m.to_bytes();
    lab.b
        .handle_datagram(lab.now, am1.remote, am1.local, &bytes);
    lab.pump();
    let db = Lab::debug(&mut lab.b).join("\n");
    assert!(
        db.contains(
            "bad encrypted payload: encrypted NONCE payload is 100 bytes, the key's modulus 256"
        ),
        "{db}"
    );
    assert!(pairs(&lab.ev_b).is_empty());
}
