//! The whole gateway as R1: espgw-control negotiates with strongSwan (R2) and installs the
//! SAs in the shared-memory SA database; espgw-dataplane (XDP + AF_XDP) carries hostA's
//! traffic through them. For esp-3des esp-md5-hmac, esp-aes esp-sha-hmac and esp-gcm:
//! - the first pings meet no SA: the dataplane posts an sa_request and espgw-control starts
//!   Main Mode by itself (the slides' `IPsec(sa_request)`);
//! - then ping, iperf3 TCP and iperf3 UDP pass through the tunnel;
//! - `show crypto ipsec sa` counts exactly the echo requests and replies sent;
//! - killing espgw-control (SIGKILL) does not stop the traffic on the existing SAs;
//! - tshark on R2's out0 (no XDP there, so every frame is visible), with the keys from
//!   espgw's key log, decrypts and authenticates every ESP frame; none is malformed, and no
//!   interesting packet crosses in clear.

mod common;

use common::Espgw;
use espgw_lab::{judge, Capture, Lab, LabOptions, Node, Profile, StrongSwan};
use std::time::{Duration, Instant};

/// iperf3 from hostA to hostB; the JSON report (retries while the server is busy).
fn iperf3(lab: &Lab, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["iperf3", "-c", "10.1.2.2", "-p", "45201", "-J", "-t", "2"];
    args.extend_from_slice(extra);
    for _ in 0..10 {
        let out = lab
            .exec_timeout(Node::HostA, &args, Duration::from_secs(30))
            .expect("iperf3");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if j["error"].as_str().is_some_and(|e| e.contains("busy")) {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        return j;
    }
    panic!("iperf3 server stayed busy");
}

struct Suite {
    /// ISAKMP policy `encr`, `hash`, `group`.
    encr: &'static str,
    hash: &'static str,
    group: u32,
    /// The transform set as IOS writes it.
    transform: &'static str,
    /// strongSwan's proposals for the same.
    ike: &'static str,
    esp: &'static str,
}

fn run(tag: &str, s: Suite) {
    espgw_lab::prereq::require_root();
    let t_start = Instant::now();
    let lab = Lab::up_with(
        &Lab::unique_prefix(tag),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let swan = StrongSwan::start(
        &lab,
        Node::R2,
        Profile::new(Node::R2).proposal(s.ike).esp(s.esp),
    )
    .expect("charon");
    let db = lab.dir().join("r1.sadb");
    let policy = lab.dir().join("r1.policy");
    let conf = common::IosConf {
        encr: s.encr,
        hash: s.hash,
        group: s.group,
        transform: s.transform,
        pfs: None,
        psk: "C!scO",
        lifetime_secs: None,
        keepalive: None,
        isakmp_lifetime: None,
    };
    let espgw = Espgw::start_full(&lab, &conf, &db);
    let dp_bin = common::dataplane_bin();
    // The policy file for dataplanes started without --config (`espgw-dataplane
    // --write-policy`) holds the rule the dataplane derives from the configuration itself.
    let st = std::process::Command::new(&dp_bin)
        .args(["--config", espgw.config.to_str().unwrap()])
        .args(["--interface-map", "Ethernet0/0=in0,Ethernet1/0=out0"])
        .args(["--write-policy", policy.to_str().unwrap()])
        .status()
        .expect("espgw-dataplane --write-policy");
    assert!(st.success(), "espgw-dataplane --write-policy: {st}");
    let text = std::fs::read_to_string(&policy).expect("policy file");
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules,
        ["permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map vpn"]
    );
    let dp = common::start_dataplane(&lab, &espgw, &db);
    let _iperf_server = lab
        .spawn(Node::HostB, &["iperf3", "-s", "-p", "45201"])
        .expect("iperf3 server");
    let cap = Capture::start(&lab, Node::R2, "out0").expect("tcpdump");

    // Interesting traffic, no SA yet: the dataplane asks, espgw-control negotiates.
    let t0 = Instant::now();
    let mut up = false;
    while t0.elapsed() < Duration::from_secs(30) {
        if lab.ping(Node::HostA, "10.1.2.2", 1).expect("ping").received == 1 {
            up = true;
            break;
        }
    }
    assert!(
        up,
        "{tag}: no reply through the tunnel\n--- espgw-control ---\n{}\n--- dataplane ---\n{}",
        espgw.log(),
        dp.log()
    );
    let log = espgw.log();
    assert!(
        log.contains("IPsec(sa_request)"),
        "{tag}: negotiation not started by traffic:\n{log}"
    );
    // The data plane's own account of it: interesting traffic found no SA and asked.
    let dp_counters = espgw.cli(&["show", "crypto", "dataplane"]);
    let counter = |name: &str| -> u64 {
        dp_counters
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("{tag}: no {name} in\n{dp_counters}"))
    };
    assert!(
        counter("no-sa") >= 1 && counter("sa-request-posted") >= 1,
        "{tag}:\n{dp_counters}"
    );
    assert_eq!(counter("malformed"), 0, "{tag}:\n{dp_counters}");

    // SPIs agree with strongSwan.
    let sa = swan
        .wait_established(Duration::from_secs(5))
        .expect("strongSwan up");
    let spis = espgw.spis();
    assert!(
        spis.contains(&(sa.children[0].spi_out, sa.children[0].spi_in)),
        "{tag}: {spis:?} vs {sa:?}"
    );

    // show crypto ipsec sa counts exactly what was sent (the dataplane publishes its
    // counters per batch, so give it a moment).
    let (e0, d0) = espgw.ipsec_packet_counts();
    let p = lab.ping(Node::HostA, "10.1.2.2", 10).expect("ping");
    assert_eq!(p.received, 10, "{tag}: {p:?}");
    let t1 = Instant::now();
    let (mut e1, mut d1) = espgw.ipsec_packet_counts();
    while (e1 - e0 < 10 || d1 - d0 < 10) && t1.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        (e1, d1) = espgw.ipsec_packet_counts();
    }
    assert_eq!((e1 - e0, d1 - d0), (10, 10), "{tag}: #pkts encaps/decaps");

    // iperf3 TCP and UDP through the tunnel.
    let tcp = iperf3(&lab, &["-P", "2"]);
    let tcp_bps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(tcp_bps > 1e6, "{tag}: iperf3 TCP {tcp_bps} bit/s: {tcp}");
    let udp = iperf3(&lab, &["-u", "-b", "20M", "-l", "1200"]);
    let udp_bytes = udp["end"]["sum"]["bytes"].as_f64().unwrap_or(0.0);
    let udp_lost = udp["end"]["sum"]["lost_percent"].as_f64().unwrap_or(100.0);
    assert!(
        udp_bytes > 1e6 && udp_lost < 5.0,
        "{tag}: iperf3 UDP {udp_bytes} bytes, {udp_lost}% lost: {udp}"
    );

    // The data plane does not need the control plane to forward on existing SAs.
    espgw.proc.signal("KILL").expect("kill espgw-control");
    std::thread::sleep(Duration::from_millis(300));
    let p = lab.ping(Node::HostA, "10.1.2.2", 10).expect("ping");
    assert_eq!(
        p.received, 10,
        "{tag}: traffic stopped with espgw-control killed: {p:?}"
    );

    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop().expect("pcap");
    let (keys, ike) = espgw.keys();
    let v = judge(&pcap, &keys, &ike).expect("tshark");
    let summary = v.summary();
    let esp: Vec<_> = v.esp().collect();
    assert!(
        esp.len() >= 40,
        "{tag}: ESP frames {}:\n{summary}",
        esp.len()
    );
    let bad = v.bad_esp();
    assert!(
        bad.is_empty(),
        "{tag}: ESP not decrypted/authenticated with espgw's keys: {bad:?}\nkeys: {:?}\n{summary}",
        keys.iter()
            .map(|k| format!("{:08x}", k.spi))
            .collect::<Vec<_>>()
    );
    assert_eq!(v.malformed(), 0, "{tag}: {summary}");
    eprintln!(
        "{tag}: ok in {:?}: TCP {:.0} Mbit/s, UDP 20 Mbit/s offered, {udp_lost:.2}% lost, {} ESP frames judged",
        t_start.elapsed(),
        tcp_bps / 1e6,
        esp.len()
    );
    drop(dp);
}

#[test]
fn full_stack_3des_md5_against_strongswan() {
    run(
        "fs3des",
        Suite {
            encr: "3des",
            hash: "md5",
            group: 2,
            transform: "esp-3des esp-md5-hmac",
            ike: "3des-md5-modp1024",
            esp: "3des-md5",
        },
    );
}

#[test]
fn full_stack_aes_sha_against_strongswan() {
    run(
        "fsaes",
        Suite {
            encr: "aes 128",
            hash: "sha",
            group: 14,
            transform: "esp-aes esp-sha-hmac",
            ike: "aes128-sha1-modp2048",
            esp: "aes128-sha1",
        },
    );
}

#[test]
fn full_stack_gcm_against_strongswan() {
    run(
        "fsgcm",
        Suite {
            encr: "aes 128",
            hash: "sha",
            group: 14,
            transform: "esp-gcm",
            ike: "aes128-sha1-modp2048",
            esp: "aes128gcm16",
        },
    );
}
