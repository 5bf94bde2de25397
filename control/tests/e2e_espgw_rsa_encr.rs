//! rsa-encr (RFC 2409 §5.2) between two real espgw gateways (espgw-control +
//! espgw-dataplane on R1 and R2), Main and Aggressive Mode: each key pair made by the
//! operator command (`espgw crypto key generate rsa`) into its router's key store, each
//! router's public key in the other's `crypto key pubkey-chain rsa` as IOS writes it, the
//! policy `authentication rsa-encr`. hostA's first packet starts the negotiation; pings pass
//! through the tunnel; both debug logs show RSA encryption authentication.

mod common;

use espgw_config::pki::ios_hex_lines;
use espgw_control::pki::KeyStore;
use espgw_lab::{EspgwOptions, EspgwRouter, Lab, LabOptions, Node};
use rsa::pkcs8::EncodePublicKey;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// `espgw --key-store DIR crypto key generate rsa general-keys label L modulus 2048`; the
/// public key's SubjectPublicKeyInfo as IOS hex lines.
fn generate(store: &Path, label: &str) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_espgw"))
        .arg("--key-store")
        .arg(store)
        .args(["crypto", "key", "generate", "rsa", "general-keys", "label"])
        .args([label, "modulus", "2048"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pk = KeyStore::new(store).public_key(label).unwrap();
    ios_hex_lines(pk.to_public_key_der().unwrap().as_bytes(), "   ")
}

fn config(node: Node, peer_key: &[String]) -> String {
    let site = node.site().expect("a router");
    let (me, peer, inside, out) = (site.name, site.peer_outside, site.inside, site.outside);
    let (local, remote) = (site.local_net, site.remote_net);
    format!(
        "hostname {me}\n!\ncrypto isakmp policy 10\n encr aes 128\n hash sha\n authentication rsa-encr\n group 2\n!\n\
         crypto key pubkey-chain rsa\n addressed-key {peer}\n  key-string\n{}\n  quit\n!\n\
         crypto ipsec transform-set myset esp-aes esp-sha-hmac\n mode tunnel\n!\n\
         crypto map vpn 10 ipsec-isakmp\n set peer {peer}\n set transform-set myset\n match address 101\n!\n\
         interface Ethernet0/0\n ip address {inside} 255.255.255.0\n!\n\
         interface Ethernet1/0\n ip address {out} 255.255.255.240\n crypto map vpn\n!\n\
         access-list 101 permit ip {local} 0.0.0.255 {remote} 0.0.0.255\n!\nend\n",
        peer_key.join("\n")
    )
}

fn pair(aggressive: bool) {
    espgw_lab::prereq::require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bins = common::bins();
    let lab = Lab::up_with(
        &Lab::unique_prefix("rsaencr"),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let (s1, s2) = (lab.dir().join("r1-keys"), lab.dir().join("r2-keys"));
    let (k1, k2) = (generate(&s1, "R1"), generate(&s2, "R2"));
    let opts = |core, store: &Path, aggr: bool| {
        let mut control_args = vec!["--key-store".to_string(), store.display().to_string()];
        if aggr {
            control_args.push("--aggressive".into());
        }
        EspgwOptions {
            cores: vec![core],
            control_args,
            ..EspgwOptions::default()
        }
    };
    let r2 = EspgwRouter::start(
        &lab,
        Node::R2,
        &config(Node::R2, &k1),
        &bins,
        &opts(1, &s2, false),
    )
    .expect("espgw on R2");
    let r1 = EspgwRouter::start(
        &lab,
        Node::R1,
        &config(Node::R1, &k2),
        &bins,
        &opts(0, &s1, aggressive),
    )
    .expect("espgw on R1");
    let logs = || {
        format!(
            "--- R1 ---\n{}\n--- R2 ---\n{}",
            r1.control_log(),
            r2.control_log()
        )
    };
    let up = common::ping_through(&lab, Node::HostA, "10.1.2.2", Duration::from_secs(30));
    assert!(up, "no reply through the tunnel\n{}", logs());
    let p = lab.ping(Node::HostA, "10.1.2.2", 5).expect("ping");
    assert_eq!(p.received, 5, "{p:?}");
    let (l1, l2) = (r1.control_log(), r2.control_log());
    let line = "SA is doing RSA encryption authentication using id type ID_IPV4_ADDR";
    for l in [&l1, &l2] {
        assert!(l.contains(line), "{}", logs());
        assert!(l.contains("auth RSA encr"), "{}", logs());
        assert!(l.contains("decrypted ID and NONCE payloads"), "{}", logs());
    }
    let first = if aggressive { "IKE_I_AM1" } else { "IKE_I_MM1" };
    assert!(l1.contains(first), "{}", logs());
    let show = r1.cli(&["show", "crypto", "isakmp", "sa"]).expect("show");
    assert!(show.contains("QM_IDLE"), "{show}");
    // Nothing private in the logs: no PEM, and the key files stay 0600.
    for l in [&l1, &l2] {
        assert!(!l.contains("PRIVATE KEY"));
    }
    drop(r1);
    drop(r2);
}

#[test]
fn espgw_pair_rsa_encr_main_mode() {
    pair(false);
}

#[test]
fn espgw_pair_rsa_encr_aggressive_mode() {
    pair(true);
}
