//! espgw as an Easy VPN server (R1), vpnc (Debian's Cisco-compatible client) on R2:
//! Aggressive Mode with the group name as ID_KEY_ID, XAUTHInitPreShared, server-initiated
//! XAUTH (user bob, whose `secret 5` is MD5-crypt), Mode Config pull, Quick Mode for its address against 0.0.0.0/0. What Mode Config
//! gave it is read from the environment vpnc hands its script: the pool address, the DNS
//! server, the split include (Cisco's 14-byte form), the default domain and the banner.
//!
//! These tests need root (network namespaces) and vpnc.

mod common;

use common::Espgw;
use espgw_lab::{Lab, Node};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The Easy VPN server (also parsed by the configuration tests).
const SERVER_CONF: &str = include_str!("../../deploy/configs/r1-easyvpn.conf");

/// Runs vpnc on R2 until its script was called with `reason=connect`; returns the
/// environment it got, and vpnc (still connected).
fn vpnc_connect(
    lab: &Lab,
    espgw: &Espgw,
    user: &str,
    password: &str,
) -> (Option<BTreeMap<String, String>>, espgw_lab::LabProcess) {
    vpnc_on(
        lab,
        espgw,
        Node::R2,
        user,
        password,
        Duration::from_secs(20),
    )
}

/// vpnc on `node`, waiting up to `wait` for its script's `connect`.
fn vpnc_on(
    lab: &Lab,
    espgw: &Espgw,
    node: Node,
    user: &str,
    password: &str,
    wait: Duration,
) -> (Option<BTreeMap<String, String>>, espgw_lab::LabProcess) {
    let dir = lab.dir().join(format!("vpnc-{node}"));
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join("vpnc-env.txt");
    let script = dir.join("vpnc-script.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$reason\" = connect ]; then env > '{}.tmp' && mv '{}.tmp' '{}'; fi\nexit 0\n",
            env_file.display(),
            env_file.display(),
            env_file.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    let conf = dir.join("vpnc.conf");
    std::fs::write(
        &conf,
        format!(
            "IPSec gateway 172.16.172.10\nIPSec ID vpngroup\nIPSec secret grouPkey\n\
             Xauth username {user}\nXauth password {password}\nIKE DH Group dh14\n\
             NAT Traversal Mode natt\nNo Detach\nDebug 2\nScript {}\nPidfile {}\n",
            script.display(),
            dir.join("vpnc.pid").display()
        ),
    )
    .unwrap();
    let vpnc = lab
        .spawn(node, &["vpnc", "--non-inter", conf.to_str().unwrap()])
        .expect("spawn vpnc");
    let t0 = Instant::now();
    while t0.elapsed() < wait && !env_file.exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = std::fs::read_to_string(&env_file).ok().map(|t| {
        t.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    if env.is_none() {
        eprintln!(
            "--- vpnc ---\n{}\n--- espgw ---\n{}",
            vpnc.log(),
            espgw.log()
        );
    }
    (env, vpnc)
}

#[test]
fn easyvpn_vpnc_receives_address_split_include_and_dns() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("ezv")).expect("lab");
    let espgw = Espgw::start_text(&lab, SERVER_CONF, &["--no-sadb"]);
    let (env, vpnc) = vpnc_connect(&lab, &espgw, "bob", "wonderland");
    let env = env.expect("vpnc never called its script with reason=connect");
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    assert_eq!(get("INTERNAL_IP4_ADDRESS"), "10.99.0.10", "{env:?}");
    assert_eq!(get("INTERNAL_IP4_DNS"), "10.1.1.53 10.1.1.54", "{env:?}");
    assert_eq!(get("INTERNAL_IP4_NBNS"), "10.1.1.55", "{env:?}");
    assert_eq!(get("CISCO_DEF_DOMAIN"), "example.com", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC"), "2", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC_0_ADDR"), "10.1.1.0", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC_0_MASK"), "255.255.255.0", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC_0_MASKLEN"), "24", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC_1_ADDR"), "192.168.50.0", "{env:?}");
    assert_eq!(get("CISCO_SPLIT_INC_1_MASKLEN"), "23", "{env:?}");
    assert!(get("CISCO_BANNER").contains("Welcome to R1."), "{env:?}");
    assert_eq!(get("VPNGATEWAY"), "172.16.172.10", "{env:?}");
    // espgw's side: the client's IPsec SA pair from the dynamic map.
    let spis = espgw.wait_spis(1, Duration::from_secs(10));
    assert_eq!(spis.len(), 1, "{spis:?}");
    let log = espgw.log();
    assert!(
        log.contains("%CRYPTO-6-VPN_TUNNEL_STATUS: Group: vpngroup  User: bob"),
        "{log}"
    );
    // show crypto session: the client, its user, its address, its flow.
    let show = espgw.cli(&["show", "crypto", "session"]);
    for line in [
        "Interface: Ethernet1/0",
        "Username: bob",
        "Group: vpngroup",
        "Assigned address: 10.99.0.10",
        "Session status: UP-ACTIVE",
        "Peer: 172.16.172.20 port 500",
        "  IPSEC FLOW: permit ip any host 10.99.0.10",
        "        Active SAs: 2, origin: dynamic crypto map",
    ] {
        assert!(show.lines().any(|l| l == line), "no {line:?} in\n{show}");
    }
    // clear crypto session: the client is told (DELETE) and its address is back.
    espgw.cli(&["clear", "crypto", "session"]);
    let t0 = Instant::now();
    while !espgw.log().contains("returning address 10.99.0.10 to pool")
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        espgw.log().contains("returning address 10.99.0.10 to pool"),
        "{}",
        espgw.log()
    );
    drop(vpnc);
}

#[test]
fn easyvpn_vpnc_exhausted_pool_fails_cleanly() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("ezx")).expect("lab");
    // One address in the pool; a second client behind R2 (hostB, routed by R2).
    let conf = SERVER_CONF.replace(
        "ip local pool ezpool 10.99.0.10 10.99.0.20\nip local pool ezpool 10.99.1.1\n",
        "ip local pool ezpool 10.99.0.10\n",
    );
    lab.run(
        Node::R1,
        &["ip", "route", "add", "10.1.2.0/24", "via", "172.16.172.20"],
    )
    .expect("route to hostB");
    let espgw = Espgw::start_text(&lab, &conf, &["--no-sadb"]);
    let wait = Duration::from_secs(20);
    let (first, vpnc1) = vpnc_on(&lab, &espgw, Node::R2, "alice", "wonderland", wait);
    let first = first.expect("the first client connects");
    assert_eq!(
        first.get("INTERNAL_IP4_ADDRESS").map(String::as_str),
        Some("10.99.0.10")
    );
    let wait = Duration::from_secs(8);
    let (second, vpnc2) = vpnc_on(&lab, &espgw, Node::HostB, "alice", "wonderland", wait);
    let log = espgw.log();
    assert!(second.is_none(), "the second client got {second:?}\n{log}");
    for line in [
        "Unable to allocate address: address pool ezpool exhausted",
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Config mode failed with peer at 10.1.2.2",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
    // Only the first client's SA pair; its address is the only one leased.
    let spis = espgw.wait_spis(1, Duration::from_secs(5));
    assert_eq!(spis.len(), 1, "{spis:?}");
    assert_eq!(log.matches("allocating address").count(), 1, "{log}");
    drop(vpnc2);
    drop(vpnc1);
}
