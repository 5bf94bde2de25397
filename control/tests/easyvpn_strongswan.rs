//! espgw as an Easy VPN server (R1), strongSwan 5.9.8 as the Easy VPN client (R2):
//! IKEv1 Aggressive Mode with the group name as ID_KEY_ID and the group key as PSK, XAUTH
//! (xauth-generic) and Mode Config pull, then Quick Mode for the client's pool address
//! against the inside network from the dynamic crypto map.
//!
//! The client gets an address from the pool; tshark decrypts every ISAKMP message
//! (Transaction Mode included) with espgw's key log. Wrong group key, wrong password and an
//! unknown group fail cleanly: the IOS debug/syslog line, no IPsec SA, no leased address.
//!
//! These tests need root (network namespaces).

mod common;

use common::Espgw;
use espgw_control::cli::api::{Request, Response};
use espgw_lab::{judge, Capture, Lab, Node, Profile, StrongSwan};
use std::time::{Duration, Instant};

/// The Easy VPN server (also parsed by the configuration tests).
const SERVER_CONF: &str = include_str!("../../deploy/configs/r1-easyvpn.conf");

/// strongSwan as an Easy VPN client: group `group` with key `key`, user alice.
fn client(group: &str, key: &str, password: &str) -> Profile {
    let conf = format!(
        r#"connections {{
  lab {{
    version = 1
    aggressive = yes
    proposals = aes128-sha1-modp2048
    local_addrs = 172.16.172.20
    remote_addrs = 172.16.172.10
    vips = 0.0.0.0
    rekey_time = 86400s
    reauth_time = 0
    local {{
      auth = psk
      id = keyid:{group}
    }}
    local-xauth {{
      auth = xauth
      xauth_id = alice
    }}
    remote {{
      auth = psk
      id = 172.16.172.10
    }}
    children {{
      lab {{
        mode = tunnel
        esp_proposals = aes128-sha1-modp1024
        remote_ts = 10.1.1.0/24
        life_time = 3600s
        rekey_time = 3240s
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-lab {{
    id-1 = keyid:{group}
    id-2 = 172.16.172.10
    secret = "{key}"
  }}
  xauth-lab {{
    id = alice
    secret = "{password}"
  }}
}}
"#
    );
    let mut p = Profile::new(Node::R2);
    p.raw_swanctl = Some(conf);
    p.extra_plugins = vec!["xauth-generic".into()];
    p.extra_charon = vec!["cisco_unity = yes".into()];
    p
}

/// The virtual IP charon was given (`swanctl --list-sas` prints `local-vips`).
fn charon_vips(swan: &StrongSwan) -> String {
    swan.swanctl(&["--list-sas"]).unwrap_or_default()
}

fn ipsec_sa_count(espgw: &Espgw) -> usize {
    match espgw.request(Request::ShowIpsecSa) {
        Response::IpsecSas { sas } => sas.iter().map(|v| v.inbound_esp.len()).sum(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn easyvpn_strongswan_client_gets_a_pool_address_and_a_tunnel() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("ezs")).expect("lab");
    let cap = Capture::start(&lab, Node::R1, "out0").expect("tcpdump");
    let espgw = Espgw::start_text(&lab, SERVER_CONF, &["--no-sadb"]);
    let swan = StrongSwan::start(&lab, Node::R2, client("vpngroup", "grouPkey", "wonderland"))
        .expect("charon");
    swan.initiate_ike().unwrap_or_else(|e| {
        panic!(
            "swanctl initiate --ike: {e}\n--- charon ---\n{}\n--- espgw ---\n{}",
            swan.log(),
            espgw.log()
        )
    });
    swan.initiate_child().unwrap_or_else(|e| {
        panic!(
            "swanctl initiate --child: {e}\n--- charon ---\n{}\n--- espgw ---\n{}",
            swan.log(),
            espgw.log()
        )
    });
    let sa = swan
        .wait_established(Duration::from_secs(20))
        .unwrap_or_else(|e| {
            panic!(
                "not established: {e}\n--- charon ---\n{}\n--- espgw ---\n{}",
                swan.log(),
                espgw.log()
            )
        });
    let spis = espgw.wait_spis(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop().expect("pcap");

    // The client has the pool's first address, and its child SA is that /32 against the
    // inside network.
    let list = charon_vips(&swan);
    assert!(
        list.contains("10.99.0.10"),
        "charon's SAs:\n{list}\n--- espgw ---\n{}",
        espgw.log()
    );
    let child = &sa.children[0];
    assert_eq!(
        spis,
        vec![(child.spi_out, child.spi_in)],
        "espgw vs swanctl SPIs"
    );
    let log = espgw.log();
    for line in [
        "Old State = IKE_P1_COMPLETE  New State = IKE_XAUTH_REQ_SENT",
        "Old State = IKE_XAUTH_REQ_SENT  New State = IKE_XAUTH_REPLY_ATTR",
        "Old State = IKE_XAUTH_REPLY_ATTR  New State = IKE_XAUTH_SET_SENT",
        "Old State = IKE_XAUTH_SET_SENT  New State = IKE_P1_COMPLETE",
        "Old State = IKE_P1_COMPLETE  New State = IKE_CONFIG_AUTHOR_AAA_AWAIT",
        "allocating address 10.99.0.10 from pool ezpool",
        "%CRYPTO-6-VPN_TUNNEL_STATUS: Group: vpngroup  User: alice",
    ] {
        assert!(log.contains(line), "no {line:?} in espgw's debug:\n{log}");
    }
    assert!(
        !log.contains("wonderland") && !log.contains("grouPkey"),
        "a secret in the log:\n{log}"
    );

    // tshark decrypts the whole exchange (Aggressive Mode, Transaction Mode, Quick Mode)
    // with espgw's key log.
    let (keys, ike) = espgw.keys();
    let v = judge(&pcap, &keys, &ike).expect("tshark");
    let summary = v.summary();
    assert_eq!(v.malformed(), 0, "{summary}");
    let isakmp: Vec<_> = v.isakmp_all().collect();
    let txn = isakmp.iter().filter(|(_, i)| i.exchange == 6).count();
    assert!(
        txn >= 6,
        "Transaction Mode messages seen by tshark: {txn}\n{summary}"
    );
    let undecrypted: Vec<_> = isakmp
        .iter()
        .filter(|(_, i)| i.encrypted && !i.decrypted)
        .collect();
    assert!(
        undecrypted.is_empty(),
        "not decrypted by tshark: {undecrypted:?}\n{summary}"
    );

    // The client goes (DELETE): the address is back in the pool.
    swan.terminate_ike().expect("terminate");
    assert!(
        common::wait_log(
            &espgw,
            "returning address 10.99.0.10 to pool",
            Duration::from_secs(10)
        ),
        "address not returned:\n{}",
        espgw.log()
    );
    let t0 = Instant::now();
    while ipsec_sa_count(&espgw) != 0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ipsec_sa_count(&espgw),
        0,
        "IPsec SAs left after the client left"
    );
}

/// One failing client: charon gets no child SA, espgw logs `expect`, has no IPsec SA and
/// leased nothing.
fn failing(tag: &str, profile: Profile, expect: &str) {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix(tag)).expect("lab");
    let espgw = Espgw::start_text(&lab, SERVER_CONF, &["--no-sadb"]);
    let swan = StrongSwan::start(&lab, Node::R2, profile).expect("charon");
    let r = swan.initiate_ike();
    assert!(
        common::wait_log(&espgw, expect, Duration::from_secs(20)),
        "{tag}: no {expect:?} in espgw's debug (initiate: {r:?}):\n{}\n--- charon ---\n{}",
        espgw.log(),
        swan.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    let _ = swan.initiate_child();
    assert_eq!(ipsec_sa_count(&espgw), 0, "{tag}: an IPsec SA");
    let log = espgw.log();
    assert!(
        !log.contains("allocating address"),
        "{tag}: an address was leased:\n{log}"
    );
    let sas = swan.list_sas().unwrap_or_default();
    assert!(
        sas.iter().all(|s| s.children.is_empty()),
        "{tag}: charon has a child SA: {sas:?}"
    );
}

#[test]
fn easyvpn_strongswan_wrong_password_fails_cleanly() {
    failing(
        "ezpw",
        client("vpngroup", "grouPkey", "rabbit"),
        "%CRYPTO-6-IKMP_AUTH_FAIL: Authentication method 65001 failed with host 172.16.172.20",
    );
}

#[test]
fn easyvpn_strongswan_unknown_group_fails_cleanly() {
    failing(
        "ezug",
        client("nogroup", "grouPkey", "wonderland"),
        "No pre-shared key for group nogroup: group not configured",
    );
}

#[test]
fn easyvpn_strongswan_wrong_group_key_fails_cleanly() {
    failing(
        "ezgk",
        client("vpngroup", "notthekey", "wonderland"),
        "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 172.16.172.20 failed its sanity check or is malformed",
    );
}

/// The client pings a host behind R1 through espgw's data plane (AF_XDP, XDP classifier
/// steering traffic to the pool into the workers, the client's SA found for its /32);
/// tshark authenticates every ESP frame with espgw's keys.
#[test]
fn easyvpn_strongswan_client_pings_host_behind_r1() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up_with(
        &Lab::unique_prefix("ezp"),
        espgw_lab::LabOptions {
            queues: Some(1),
            ..espgw_lab::LabOptions::default()
        },
    )
    .expect("lab");
    let db = lab.dir().join("r1.sadb");
    let espgw = Espgw::start_text(&lab, SERVER_CONF, &["--sadb", db.to_str().unwrap()]);
    let dp = common::start_dataplane(&lab, &espgw, &db);
    let cap = Capture::start(&lab, Node::R2, "out0").expect("tcpdump");
    let swan = StrongSwan::start(&lab, Node::R2, client("vpngroup", "grouPkey", "wonderland"))
        .expect("charon");
    swan.initiate_ike().expect("initiate ike");
    swan.initiate_child().expect("initiate child");
    swan.wait_established(Duration::from_secs(20))
        .expect("established");
    let p = lab.ping(Node::R2, "10.1.1.2", 10).expect("ping");
    assert_eq!(
        p.received,
        10,
        "{p:?}\n--- espgw ---\n{}\n--- dataplane ---\n{}\n--- charon ---\n{}",
        espgw.log(),
        dp.log(),
        swan.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let v = espgw.judge(&cap.stop().expect("pcap"));
    let summary = v.summary();
    let esp: Vec<_> = v.esp().collect();
    assert!(esp.len() >= 20, "ESP frames {}:\n{summary}", esp.len());
    assert!(
        v.bad_esp().is_empty(),
        "ESP not authenticated with espgw's keys:\n{summary}"
    );
    // Inside, the client is its pool address.
    assert!(
        esp.iter()
            .any(|(_, e)| e.inner.as_ref().is_some_and(|(s, _)| s == "10.99.0.10")),
        "{summary}"
    );
    assert_eq!(v.malformed(), 0, "{summary}");
    drop(dp);
}
