//! espgw at both ends of an Easy VPN (issue 12): R1 is the lab's Easy VPN server
//! (deploy/configs/r1-easyvpn.conf), R2 the Easy VPN client in network-extension mode
//! (deploy/configs/r2-ezvpn-client.conf), each with espgw-control and its real data plane
//! (espgw-dataplane: XDP classifiers + AF_XDP workers on veth).
//!
//! The client connects by itself (`connect auto`): Aggressive Mode, XAUTH, Mode Config, then
//! Quick Mode for its inside network against the split network the server sent. Neither
//! configuration has a crypto ACL for that flow: both data planes take it from the SAs.
//! hostB → hostA pings and a UDP burst are encrypted by R2's data plane and decrypted by
//! R1's, and back; `show crypto ipsec sa` on both sides counts exactly the pings and agrees
//! with the other side and the wire; tshark decrypts every ESP frame with the key logs.
//! `clear crypto session` on R1 returns the client's address to the pool.

mod common;

use espgw_lab::{judge, EspgwOptions, EspgwRouter, Lab, LabOptions, Node, Wire};
use std::time::{Duration, Instant};

const SERVER_CONF: &str = include_str!("../../deploy/configs/r1-easyvpn.conf");

/// The lab server with the dynamic map's PFS group set to phase 1's: the group policy's
/// `pfs` makes espgw's client (as IOS's Easy VPN Remote) use the phase-1 group (14) for
/// PFS, and `set pfs group2` (there for strongSwan's and vpnc's modp1024) refuses it.
fn server_conf() -> String {
    assert!(SERVER_CONF.contains(" set pfs group2\n"));
    SERVER_CONF.replace(" set pfs group2\n", " set pfs group14\n")
}
const CLIENT_CONF: &str = include_str!("../../deploy/configs/r2-ezvpn-client.conf");

fn logs(r1: &EspgwRouter, r2: &EspgwRouter) -> String {
    format!(
        "--- R1 control ---\n{}\n--- R1 dataplane ---\n{}\n--- R2 control ---\n{}\n--- R2 dataplane ---\n{}",
        r1.control_log(),
        r1.dataplane_log(),
        r2.control_log(),
        r2.dataplane_log()
    )
}

#[test]
fn easyvpn_client_and_server_through_both_data_planes() {
    espgw_lab::prereq::require_root();
    let t_start = Instant::now();
    let bins = common::bins();
    let lab = Lab::up_with(
        &Lab::unique_prefix("ezpair"),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let mut wire = Wire::insert(&lab).expect("wire");
    let cap = wire.capture("ez").expect("tcpdump on the wire");
    let veth_before =
        common::outside_tx_dropped(&lab, Node::R1) + common::outside_tx_dropped(&lab, Node::R2);
    let opts = |core| EspgwOptions {
        cores: vec![core],
        ..EspgwOptions::default()
    };
    let r1 = EspgwRouter::start(&lab, Node::R1, &server_conf(), &bins, &opts(0)).expect("R1");
    let r2 = EspgwRouter::start(&lab, Node::R2, CLIENT_CONF, &bins, &opts(1)).expect("R2");

    // The client comes up by itself: XAUTH, Mode Config, Quick Mode.
    let ezvpn = || {
        r2.cli(&["show", "crypto", "ipsec", "client", "ezvpn"])
            .unwrap_or_default()
    };
    assert!(
        common::wait(Duration::from_secs(30), || ezvpn()
            .contains("Current State: IPSEC_ACTIVE")),
        "{}\n{}",
        ezvpn(),
        logs(&r1, &r2)
    );
    let screen = ezvpn();
    assert!(screen.contains("Address: 10.99.0.10"), "{screen}");
    let l1 = r1.control_log();
    assert!(
        l1.contains("%CRYPTO-6-VPN_TUNNEL_STATUS: Group: vpngroup  User: alice"),
        "{l1}"
    );
    let session = r1.cli(&["show", "crypto", "session"]).unwrap();
    for line in [
        "Username: alice",
        "Group: vpngroup",
        "Assigned address: 10.99.0.10",
        "Session status: UP-ACTIVE",
    ] {
        assert!(
            session.lines().any(|l| l == line),
            "no {line:?} in\n{session}"
        );
    }
    let sa1 = || {
        r1.cli(&["show", "crypto", "ipsec", "sa"])
            .unwrap_or_default()
    };
    assert!(
        common::wait(Duration::from_secs(5), || sa1().contains("10.1.2.0")),
        "R2's inside network on R1:\n{}",
        sa1()
    );
    // The session screen shows the network-extension client's flow (R2's inside network,
    // not a pool /32) on the crypto map's interface.
    let session = r1.cli(&["show", "crypto", "session"]).unwrap();
    assert!(
        session
            .lines()
            .any(|l| l.starts_with("  IPSEC FLOW: permit ip ")
                && l.ends_with(" 10.1.2.0/255.255.255.0")),
        "{session}"
    );
    assert!(
        session.lines().any(|l| l == "Interface: Ethernet1/0"),
        "{session}"
    );

    // Both data planes steer the flow once its SAs are there (one 200 ms turn).
    let steered = |r: &EspgwRouter| r.dataplane_log().contains("rule(s) from Easy VPN SAs");
    assert!(
        common::wait(Duration::from_secs(5), || steered(&r1) && steered(&r2)),
        "{}",
        logs(&r1, &r2)
    );
    assert!(
        common::ping_through(&lab, Node::HostB, "10.1.1.2", Duration::from_secs(10)),
        "hostB→hostA through the tunnel\n{}",
        logs(&r1, &r2)
    );

    // Exactly the pings are counted, on both sides.
    common::pings_counted_exactly(&lab, Node::HostB, "10.1.1.2", &r2, &r1, 10);
    let (e2b, _) = r2.ipsec_packet_counts().unwrap();

    // A short UDP burst hostB → hostA (iperf3; its control connection is in the tunnel too).
    let port = (47000 + std::process::id() % 1000).to_string();
    let _server = lab
        .spawn(Node::HostA, &["iperf3", "-s", "-p", &port])
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let args = [
        "iperf3", "-c", "10.1.1.2", "-p", &port, "-u", "-b", "10M", "-l", "1200", "-t", "2", "-J",
    ];
    let out = lab
        .exec_timeout(Node::HostB, &args, Duration::from_secs(20))
        .expect("iperf3 client");
    let udp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let sent = udp["end"]["sum"]["packets"].as_u64().unwrap_or(0);
    let loss = udp["end"]["sum"]["lost_percent"].as_f64().unwrap_or(100.0);
    assert!(
        sent > 1000 && loss < 5.0,
        "UDP: {sent} packets, {loss}% lost\n{udp}"
    );

    std::thread::sleep(Duration::from_millis(500));
    let (enc1, dec1) = r1.ipsec_packet_counts().unwrap();
    let (enc2, dec2) = r2.ipsec_packet_counts().unwrap();
    assert!(
        enc2 - e2b >= sent,
        "R2 encrypted {} after the pings, iperf3 sent {sent} datagrams",
        enc2 - e2b
    );
    let (pcap, cap_drops) = cap.stop_counted().expect("pcap");
    let veth_drops = common::outside_tx_dropped(&lab, Node::R1)
        + common::outside_tx_dropped(&lab, Node::R2)
        - veth_before;

    // The wire: raw ESP, every frame decrypted and authenticated with the key logs.
    let (mut keys, mut ike) = r1.keys();
    let (k2, i2) = r2.keys();
    keys.extend(k2);
    ike.extend(i2);
    let v = judge(&pcap, &keys, &ike).expect("tshark");
    let summary = v.summary();
    let esp: Vec<_> = v.esp().collect();
    // The burst crossed as ESP (what was encrypted against what was decrypted is checked
    // exactly below; a loaded machine's capture may miss some frames).
    assert!(
        esp.len() as u64 > sent / 2,
        "{} ESP frames ({cap_drops} lost by the capture, {veth_drops} by the veths), {sent} sent:\n{summary}",
        esp.len()
    );
    assert!(esp.iter().all(|(_, e)| !e.udp_encap), "{summary}");
    assert!(
        v.bad_esp().is_empty(),
        "{} of {} ESP frames not decrypted/authenticated:\n{summary}",
        v.bad_esp().len(),
        esp.len()
    );
    assert_eq!(v.malformed(), 0, "{summary}");
    let clear = common::pcap_count(&pcap, "ip and (net 10.1.1.0/24 or net 10.1.2.0/24)");
    assert_eq!(clear, 0, "inside traffic in clear on the R1-R2 link");
    // What one side encrypted the other decrypted, and the wire carried.
    let near = |a: u64, b: u64| a.abs_diff(b) <= 2 + a.max(b) / 1000;
    let from_r1 = common::pcap_count(&pcap, "ip proto 50 and src host 172.16.172.10");
    let from_r2 = common::pcap_count(&pcap, "ip proto 50 and src host 172.16.172.20");
    assert!(
        near(enc2, dec1) && near(enc1, dec2),
        "R1 encaps {enc1} decaps {dec1}, R2 encaps {enc2} decaps {dec2}"
    );
    assert!(
        enc1 >= from_r1 && enc2 >= from_r2 && enc1 + enc2 <= from_r1 + from_r2 + cap_drops + veth_drops + 2,
        "encaps R1 {enc1} R2 {enc2} vs ESP on the wire {from_r1}/{from_r2} ({cap_drops} lost by the capture, {veth_drops} by the outside veths)"
    );

    // clear crypto session: the client's lease goes back to the pool.
    r1.cli(&["clear", "crypto", "session"]).unwrap();
    assert!(
        common::wait(Duration::from_secs(10), || r1
            .control_log()
            .contains("returning address 10.99.0.10 to pool")),
        "{}",
        r1.control_log()
    );
    drop(r2);
    drop(r1);
    drop(wire);
    drop(lab);
    eprintln!(
        "ezvpn pair: {sent} UDP datagrams {loss:.1}% lost, {} ESP frames all good, encaps R1 {enc1} R2 {enc2}, total {:.1}s",
        esp.len(),
        t_start.elapsed().as_secs_f64()
    );
}
