//! Certificate refusals between espgw-control (R1) and strongSwan 5.9.8 (R2), with the test
//! PKI of control/src/pki/testdata (gen.sh): strongSwan presents an expired certificate, one
//! from another CA, or a revoked one (the CA's CRL, `revocation-check crl`); espgw presents
//! an ID its certificate does not name. Each is refused with the IOS message in espgw's log
//! and leaves no SA on either side. And with 4096-bit keys but `crypto isakmp fragmentation`
//! removed, the exchange does not complete (its messages exceed the path MTU).
//!
//! A tampered signature: strongSwan's AM2 (its SIG and CERT are in the clear in Aggressive
//! Mode) gets the last byte of its SIG flipped on its way out of R2, by an nftables rule in
//! R2's postrouting hook, after charon's socket; espgw refuses it. strongSwan cannot send an
//! ID its certificate does not name (swanctl replaces such a local ID with the certificate's
//! subject), so the ID case here is espgw's ID refused by strongSwan. Needs root (network
//! namespaces) and nft.

mod common;

use common::rsa::{testdata, Ident, RsaConf};
use common::Espgw;
use espgw_lab::strongswan::Pubkey;
use espgw_lab::{IkeMode, Lab, Node, Profile, StrongSwan};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

struct Refusal {
    conf: RsaConf,
    /// strongSwan's credentials (default: R2's valid ones).
    r2: Option<Pubkey>,
    espgw_initiates: bool,
    /// Lines espgw's log must contain.
    want: &'static [&'static str],
    /// Lines charon's log must contain.
    swan_want: &'static [&'static str],
}

/// R2 presenting `cert` (with R2's key unless `key`) under the address ID.
fn r2_with(cert: &str, key: &str, local_id: &str, remote_id: &str) -> Pubkey {
    Pubkey {
        cert: testdata(cert),
        key: testdata(key),
        ca: testdata("ca.pem"),
        local_id: local_id.into(),
        remote_id: remote_id.into(),
    }
}

fn assert_no_sa(tag: &str, espgw: &Espgw, swan: &StrongSwan) {
    let sas = swan.list_sas().expect("swanctl --list-sas");
    assert!(
        sas.iter()
            .all(|s| s.state != "ESTABLISHED" && s.children.is_empty()),
        "{tag}: strongSwan has an SA: {sas:?}\n{}",
        swan.log()
    );
    assert!(espgw.spis().is_empty(), "{tag}: espgw has an IPsec SA");
    let isakmp = espgw.cli(&["show", "crypto", "isakmp", "sa"]);
    assert!(!isakmp.contains("QM_IDLE"), "{tag}: {isakmp}");
}

fn run(tag: &str, r: Refusal) {
    run_with(tag, r, |_| {}, |_| {});
}

/// [`run`], with `before` called on the lab before either side starts and `after` once the
/// refusal is checked.
fn run_with(tag: &str, r: Refusal, before: impl FnOnce(&Lab), after: impl FnOnce(&Lab)) {
    espgw_lab::prereq::require_root();
    let t0 = Instant::now();
    let lab = Lab::up(&Lab::unique_prefix(tag)).expect("lab");
    before(&lab);
    let (p, e) = r.conf.swan_proposals();
    let profile = Profile::new(Node::R2)
        .mode(r.conf.mode)
        .proposal(p)
        .esp(e)
        .pubkey(r.r2.clone().unwrap_or_else(|| r.conf.r2_pubkey()));
    let swan = StrongSwan::start(&lab, Node::R2, profile).expect("charon");
    let espgw = r.conf.start_espgw(&lab, None);
    if r.espgw_initiates {
        let _ = espgw.request(espgw_control::cli::api::Request::Initiate {
            map: "vpn".into(),
            seq: 10,
        });
    } else {
        // swanctl returns once charon gives up (a DELETE, AUTH_FAILED) or after 10 s; in
        // Aggressive Mode charon counts the IKE SA up once it sent AM3, so it may succeed
        // before espgw's DELETE arrives.
        let res = swan.swanctl(&["--initiate", "--ike", "lab", "--timeout", "10"]);
        if r.conf.mode == IkeMode::Main {
            assert!(res.is_err(), "{tag}: swanctl --initiate succeeded: {res:?}");
        }
    }
    let t1 = Instant::now();
    let mut log = espgw.log();
    while !r.want.iter().all(|w| log.contains(w)) && t1.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        log = espgw.log();
    }
    for w in r.want {
        assert!(
            log.contains(w),
            "{tag}: no {w:?} in espgw's log:\n{log}\n--- charon ---\n{}",
            swan.log()
        );
    }
    let swan_log = swan.log();
    for w in r.swan_want {
        assert!(
            swan_log.contains(w),
            "{tag}: no {w:?} in charon's log:\n{swan_log}"
        );
    }
    // Give a wrongly accepted exchange time to finish before looking for SAs.
    std::thread::sleep(Duration::from_secs(1));
    assert_no_sa(tag, &espgw, &swan);
    assert!(!log.contains("PRIVATE KEY"), "key material in the log");
    after(&lab);
    eprintln!("{tag}: refused in {:?}", t0.elapsed());
}

const INVAL_CERT: &str =
    "%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 172.16.172.20 is bad";

fn expired(espgw_initiates: bool) -> Refusal {
    Refusal {
        conf: RsaConf::new(IkeMode::Main, false, Ident::Address, 2048),
        r2: Some(r2_with(
            "r2-expired.pem",
            "r2.key",
            "172.16.172.20",
            "172.16.172.10",
        )),
        espgw_initiates,
        // espgw tells strongSwan (protected DELETE under the new keys), which drops the
        // IKE SA it counts established once it sent MM6, or gives up waiting for MM6.
        swan_want: &["received DELETE for IKE_SA"],
        want: &[
            "%PKI-3-CERTIFICATE_INVALID_EXPIRED: Certificate chain validation has failed",
            INVAL_CERT,
            "sending DELETE of the refused ISAKMP SA to 172.16.172.20",
        ],
    }
}

#[test]
fn rsa_sig_expired_certificate_is_refused_main_mode_strongswan_initiates() {
    run("rfexp", expired(false));
}

/// espgw refuses MM6: strongSwan, having sent MM6, counts its IKE SA established until
/// espgw's DELETE arrives.
#[test]
fn rsa_sig_expired_certificate_is_refused_main_mode_espgw_initiates() {
    run("rfexpi", expired(true));
}

#[test]
fn rsa_sig_certificate_of_another_ca_is_refused_main_mode_strongswan_initiates() {
    run(
        "rfoca",
        Refusal {
            conf: RsaConf::new(IkeMode::Main, true, Ident::Address, 2048),
            r2: Some(r2_with(
                "r2-other-ca.pem",
                "r2.key",
                "172.16.172.20",
                "172.16.172.10",
            )),
            espgw_initiates: false,
            swan_want: &[],
            want: &[
                "%PKI-3-CERTIFICATE_INVALID: Certificate chain validation has failed. Unable to locate the issuer (CN=Other CA,O=other,C=CH) in trustpoint LAB",
                INVAL_CERT,
            ],
        },
    );
}

/// R3's certificate is on the CA's CRL (gen.sh); strongSwan uses it with R3's FQDN.
#[test]
fn rsa_sig_revoked_certificate_is_refused_aggressive_mode_espgw_initiates() {
    run(
        "rfrev",
        Refusal {
            conf: RsaConf::new(IkeMode::Aggressive, false, Ident::Fqdn, 2048),
            r2: Some(r2_with(
                "r3.pem",
                "r3.key",
                "r3.lab.example",
                "r1.lab.example",
            )),
            espgw_initiates: true,
            swan_want: &[],
            want: &[
                "%PKI-3-CERTIFICATE_REVOKED: Certificate chain validation has failed",
                INVAL_CERT,
            ],
        },
    );
}

/// espgw sends ID_FQDN r9.lab.example (the trustpoint's `fqdn`) with R1's certificate,
/// which names r1.lab.example: strongSwan finds no peer for that ID and refuses.
#[test]
fn rsa_sig_id_not_in_certificate_is_refused_main_mode_espgw_initiates() {
    let mut conf = RsaConf::new(IkeMode::Main, false, Ident::Fqdn, 2048);
    conf.fqdn = "r9.lab.example";
    run(
        "rfid",
        Refusal {
            conf,
            r2: None,
            espgw_initiates: true,
            swan_want: &["looking for RSA signature peer configs matching 172.16.172.20...172.16.172.10[r9.lab.example]", "no peer config found"],
            // ...and espgw gives up at once instead of resending MM5 for a minute.
            want: &[
                "processing NOTIFY AUTHENTICATION_FAILED protocol 1",
                "deleting SA reason \"peer sent AUTHENTICATION_FAILED\"",
            ],
        },
    );
}

/// 4096-bit keys without `crypto isakmp fragmentation`: espgw announces no fragmentation,
/// so neither side fragments, and espgw's AM2 (~2.5 kB) cannot go in one datagram: it never
/// reaches strongSwan (the send fails, counted as a driver tx error; the log shows only the
/// retransmissions).
#[test]
fn rsa_sig_4096_without_fragmentation_does_not_complete() {
    let mut conf = RsaConf::new(IkeMode::Aggressive, true, Ident::Address, 4096);
    conf.fragmentation = false;
    run(
        "rfnofr",
        Refusal {
            conf,
            r2: None,
            espgw_initiates: false,
            swan_want: &[],
            want: &["retransmitting phase 1 AG_INIT_EXCH"],
        },
    );
}

/// espgw refuses AM3: strongSwan, the initiator, counts its IKE SA established once it sent
/// AM3, until espgw's protected DELETE arrives.
#[test]
fn rsa_sig_certificate_of_another_ca_is_refused_aggressive_mode_strongswan_initiates() {
    run(
        "rfocaa",
        Refusal {
            conf: RsaConf::new(IkeMode::Aggressive, false, Ident::Address, 2048),
            r2: Some(r2_with(
                "r2-other-ca.pem",
                "r2.key",
                "172.16.172.20",
                "172.16.172.10",
            )),
            espgw_initiates: false,
            swan_want: &["received DELETE for IKE_SA"],
            want: &[
                "%PKI-3-CERTIFICATE_INVALID: Certificate chain validation has failed. Unable to locate the issuer (CN=Other CA,O=other,C=CH) in trustpoint LAB",
                INVAL_CERT,
                "sending DELETE of the refused ISAKMP SA to 172.16.172.20",
            ],
        },
    );
}

/// An nftables table for R2 that flips the last byte of every Aggressive Mode datagram R2
/// sends on UDP 500 that ends a message: strongSwan as responder sends one such message,
/// AM2, and SIG is its last payload (DESIGN §5), so the flipped byte is the signature's
/// last, in the clear. A datagram that ends AM2 is either the whole message or its last
/// IKE fragment (payload 132, flags byte at offset 7 of the payload, 1 = last); the other
/// fragments pass unchanged. nft addresses bytes only from a header's start, so there is
/// one rule per UDP length a datagram on the 1500-byte lab link can have. The UDP checksum
/// is set to 0 (none, RFC 768) after the change.
fn sig_tamper_rules() -> String {
    // Offsets in bits from the UDP header: ISAKMP starts at byte 8; its next-payload byte
    // is at 16 (UDP byte 24), its exchange type at 18 (26); a fragment payload's flags at
    // ISAKMP byte 28 + 7 (UDP byte 43).
    let mut s = String::from(
        "table ip espgw_tamper {\n chain post {\n  type filter hook postrouting priority 0; policy accept;\n  \
         ip saddr 172.16.172.20 udp sport 500 @th,208,8 4 jump am\n }\n chain am {\n  \
         @th,192,8 132 @th,344,8 != 1 return\n",
    );
    for len in 8 + 28 + 8 + 1..=1500 - 20 {
        let bit = (len - 1) * 8;
        let _ = writeln!(
            s,
            "  udp length {len} @th,{bit},8 set @th,{bit},8 ^ 0xff udp checksum set 0 counter"
        );
    }
    s + " }\n}\n"
}

/// strongSwan's AM2 with a byte of its signature flipped on the wire: espgw prints the IOS
/// message, deletes the SA and installs nothing (no IPsec SA, no QM_IDLE); the nft rule
/// did flip a datagram.
#[test]
fn rsa_sig_tampered_signature_is_refused_aggressive_mode_espgw_initiates() {
    espgw_lab::prereq::require_tool("nft", "nftables");
    run_with(
        "rftsig",
        Refusal {
            conf: RsaConf::new(IkeMode::Aggressive, false, Ident::Address, 2048),
            r2: None,
            espgw_initiates: true,
            swan_want: &[],
            want: &[
                "%CRYPTO-4-IKMP_BAD_SIGNATURE: RSA signature from 172.16.172.20 (ID_IPV4_ADDR) failed to verify",
                "deleting SA reason \"bad signature\"",
            ],
        },
        |lab| {
            let path = lab.dir().join("tamper.nft");
            std::fs::write(&path, sig_tamper_rules()).unwrap();
            lab.run(Node::R2, &["nft", "-f", path.to_str().unwrap()])
                .expect("nft -f tamper.nft");
        },
        |lab| {
            let rules = lab
                .run(Node::R2, &["nft", "list", "chain", "ip", "espgw_tamper", "am"])
                .expect("nft list");
            let fired: Vec<&str> = rules
                .lines()
                .filter(|l| l.contains("counter") && !l.contains("packets 0 "))
                .collect();
            assert!(!fired.is_empty(), "no datagram was tampered with");
            eprintln!("rftsig: tampered: {fired:?}");
        },
    );
}
