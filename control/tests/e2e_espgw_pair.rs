//! The slides' tunnel with espgw at both ends (issue 5): R1 and R2 each run espgw-control
//! and espgw-dataplane (XDP classifiers + AF_XDP workers), raw ESP (IP protocol 50)
//! between them. For each of `esp-3des esp-md5-hmac`, `esp-aes esp-sha-hmac` and
//! `esp-gcm`: hostA's first packet to hostB starts the negotiation (sa_request, Main Mode,
//! Quick Mode); ping, iperf3 TCP and UDP pass; tshark on the R1–R2 link decrypts and
//! authenticates every ESP frame with espgw's key log; no hostA/hostB packet crosses that
//! link in clear; IKE and R1→R2 pings on the outside addresses still go through the kernel;
//! `show crypto ipsec sa` counts exactly the pings and agrees with the peer and the wire;
//! nothing is left behind.

mod common;

use espgw_lab::espgw::packet_counts;
use espgw_lab::{judge, lab::list_netns, EspgwOptions, EspgwRouter, Lab, LabOptions, Node, Wire};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cases share two cores: run them one after the other.
static SERIAL: Mutex<()> = Mutex::new(());

/// The slides' configuration for one router, with one ISAKMP policy and one transform set.
fn ios_config(node: Node, transform: &str) -> String {
    let site = node.site().expect("a router");
    let (me, peer, inside, out) = (site.name, site.peer_outside, site.inside, site.outside);
    let (local, remote) = (site.local_net, site.remote_net);
    let (encr, hash) = if transform.starts_with("esp-3des") {
        ("3des", "md5")
    } else {
        ("aes 128", "sha")
    };
    format!(
        "hostname {me}\n!\ncrypto isakmp policy 10\n encr {encr}\n hash {hash}\n authentication pre-share\n group 2\n\
         crypto isakmp key C!scO address {peer}\n!\n\
         crypto ipsec transform-set myset {transform}\n mode tunnel\n!\n\
         crypto map vpn 10 ipsec-isakmp\n set peer {peer}\n set transform-set myset\n match address 101\n!\n\
         interface Ethernet0/0\n ip address {inside} 255.255.255.0\n!\n\
         interface Ethernet1/0\n ip address {out} 255.255.255.240\n crypto map vpn\n!\n\
         access-list 101 permit ip {local} 0.0.0.255 {remote} 0.0.0.255\n!\nend\n"
    )
}

fn pids_alive(pids: &[u32]) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect()
}

/// iperf3 client from hostA to hostB's server on `port`; returns the JSON report.
fn iperf(lab: &Lab, port: u16, udp: bool) -> serde_json::Value {
    let port_s = port.to_string();
    let mut args = vec![
        "iperf3", "-c", "10.1.2.2", "-p", &port_s, "-t", "2", "-J", "-b",
    ];
    if udp {
        args.extend(["10M", "-u", "-l", "1200"]);
    } else {
        args.extend(["20M", "-M", "1300"]);
    }
    let out = lab
        .exec_timeout(Node::HostA, &args, Duration::from_secs(20))
        .expect("iperf3 client");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 {}: {e}\n{}{}",
            if udp { "UDP" } else { "TCP" },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Where each router's espgw-control serves its metrics (inside its own namespace).
const METRICS: &str = "127.0.0.1:9464";

/// R1's scrape, read by Python's prometheus_client, agrees with `show crypto ipsec sa`
/// (`encaps`, `decaps`) and with the one data-plane worker's own counts; the negotiation is
/// in the setup histograms and nothing is half-open.
fn metrics_agree(lab: &Lab, encaps: u64, decaps: u64) {
    use espgw_lab::metrics::{scrape, sum};
    let s = scrape(lab, Node::R1, METRICS).expect("scrape R1");
    let sa = |dir| sum(&s, "espgw_ipsec_sa_packets_total", &[("direction", dir)]);
    assert_eq!(
        (sa("outbound"), sa("inbound")),
        (encaps as f64, decaps as f64),
        "per-SA packets vs show crypto ipsec sa"
    );
    let worker =
        |name: &str, want: &[(&str, &str)]| sum(&s, name, &[&[("worker", "0")], want].concat());
    assert_eq!(
        worker("espgw_dataplane_worker_esp_total", &[("op", "encap")]),
        encaps as f64
    );
    assert_eq!(
        worker("espgw_dataplane_worker_esp_total", &[("op", "decap")]),
        decaps as f64
    );
    let rx = worker(
        "espgw_dataplane_worker_packets_total",
        &[("path", "rx-inside")],
    ) + worker(
        "espgw_dataplane_worker_packets_total",
        &[("path", "rx-outside")],
    );
    let batches = worker("espgw_dataplane_worker_batches_total", &[]);
    assert!(
        batches > 0.0 && batches <= rx,
        "{batches} batches of {rx} frames"
    );
    let busy = worker("espgw_dataplane_worker_busy_seconds_total", &[]);
    assert!(busy > 0.0, "busy {busy} s");
    assert_eq!(sum(&s, "espgw_ike_half_open", &[]), 0.0);
    for phase in ["1", "2"] {
        let n = sum(&s, "espgw_ike_setup_seconds_count", &[("phase", phase)]);
        assert!(n >= 1.0, "phase {phase} setups in the histogram: {n}");
    }
    eprintln!(
        "R1 metrics: {rx} frames in {batches} batches ({:.1} per batch), worker busy {busy:.3} s",
        rx / batches
    );
}

fn pair(transform: &str) {
    espgw_lab::prereq::require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t_start = Instant::now();
    let bins = common::bins();
    let prefix = Lab::unique_prefix("e2epair");
    let lab = Lab::up_with(
        &prefix,
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    // The R1-R2 link through a bridge: both ends are XDP, so only a tap in the middle
    // sees their ESP.
    let mut wire = Wire::insert(&lab).expect("wire");
    let opts = |core| EspgwOptions {
        cores: vec![core],
        control_args: vec!["--metrics".into(), METRICS.into()],
        ..EspgwOptions::default()
    };
    let r2 = EspgwRouter::start(
        &lab,
        Node::R2,
        &ios_config(Node::R2, transform),
        &bins,
        &opts(1),
    )
    .expect("espgw on R2");
    let r1 = EspgwRouter::start(
        &lab,
        Node::R1,
        &ios_config(Node::R1, transform),
        &bins,
        &opts(0),
    )
    .expect("espgw on R1");
    let mut pids = r1.pids();
    pids.extend(r2.pids());
    let logs = |r1: &EspgwRouter, r2: &EspgwRouter| {
        format!(
            "--- R1 control ---\n{}\n--- R1 dataplane ---\n{}\n--- R2 control ---\n{}\n--- R2 dataplane ---\n{}",
            r1.control_log(),
            r1.dataplane_log(),
            r2.control_log(),
            r2.dataplane_log()
        )
    };
    let cap = wire.capture("r1-r2").expect("tcpdump on the wire");
    let veth_drops_before =
        common::outside_tx_dropped(&lab, Node::R1) + common::outside_tx_dropped(&lab, Node::R2);
    let port: u16 = 47000 + (std::process::id() % 1000) as u16;
    let _server = lab
        .spawn(Node::HostB, &["iperf3", "-s", "-p", &port.to_string()])
        .expect("iperf3 server");

    // Not interesting: the routers' outside addresses talk through the kernel.
    let p = lab.ping(Node::R1, "172.16.172.20", 3).expect("ping");
    assert_eq!(p.received, 3, "R1→R2 outside ping through XDP_PASS: {p:?}");

    // The first interesting packet starts the negotiation.
    let t0 = Instant::now();
    let up = common::ping_through(&lab, Node::HostA, "10.1.2.2", Duration::from_secs(30));
    let negotiation = t0.elapsed();
    assert!(up, "no reply through the tunnel\n{}", logs(&r1, &r2));
    let l1 = r1.control_log();
    assert!(
        l1.contains("IPsec(sa_request)"),
        "R1 did not start on traffic:\n{l1}"
    );
    for phase in ["IKE_I_MM1", "IKE_QM_I_QM1"] {
        assert!(l1.contains(phase), "no {phase} in R1's debug:\n{l1}");
    }

    // Exactly the pings are counted, on both sides.
    common::pings_counted_exactly(&lab, Node::HostA, "10.1.2.2", &r1, &r2, 10);

    // iperf3 TCP and UDP through the tunnel.
    let tcp = iperf(&lab, port, false);
    let tcp_bytes = tcp["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0);
    let tcp_bps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        tcp_bytes > 1e6,
        "iperf3 TCP moved {tcp_bytes} bytes:\n{tcp}"
    );
    let udp = iperf(&lab, port, true);
    let udp_pkts = udp["end"]["sum"]["packets"].as_u64().unwrap_or(0);
    let udp_loss = udp["end"]["sum"]["lost_percent"].as_f64().unwrap_or(100.0);
    assert!(
        udp_pkts > 100 && udp_loss < 10.0,
        "iperf3 UDP: {udp_pkts} packets, {udp_loss}% lost:\n{udp}"
    );

    // Still not interesting after the tunnel is up.
    let p = lab.ping(Node::R1, "172.16.172.20", 3).expect("ping");
    assert_eq!(p.received, 3, "R1→R2 outside ping: {p:?}");

    std::thread::sleep(Duration::from_millis(500));
    let show1 = r1.cli(&["show", "crypto", "ipsec", "sa"]).unwrap();
    let show2 = r2.cli(&["show", "crypto", "ipsec", "sa"]).unwrap();
    let (enc1, dec1) = packet_counts(&show1);
    let (enc2, dec2) = packet_counts(&show2);
    metrics_agree(&lab, enc1, dec1);
    let (pcap, cap_drops) = cap.stop_counted().expect("pcap");
    let veth_drops = common::outside_tx_dropped(&lab, Node::R1)
        + common::outside_tx_dropped(&lab, Node::R2)
        - veth_drops_before;

    // The wire: raw ESP only, every frame decrypted and authenticated with espgw's keys.
    let (mut keys, ike) = r1.keys();
    keys.extend(r2.keys().0);
    let v = judge(&pcap, &keys, &ike).expect("tshark");
    let summary = v.summary();
    let esp: Vec<_> = v.esp().collect();
    assert!(esp.len() > 1000, "{} ESP frames:\n{summary}", esp.len());
    assert!(
        esp.iter().all(|(_, e)| !e.udp_encap),
        "ESP in UDP between two espgw routers:\n{summary}"
    );
    assert!(
        v.bad_esp().is_empty(),
        "{} of {} ESP frames not decrypted/authenticated with espgw's key log:\n{summary}",
        v.bad_esp().len(),
        esp.len()
    );
    assert_eq!(v.malformed(), 0, "{summary}");
    let raw_esp = common::pcap_count(&pcap, "ip proto 50");
    assert_eq!(
        raw_esp,
        esp.len() as u64,
        "raw ESP frames vs judged ESP frames"
    );
    // IKE went through the kernel: Main Mode + Quick Mode on UDP 500, all decrypted.
    let isakmp: Vec<_> = v.isakmp().collect();
    assert!(
        isakmp.len() >= 9,
        "{} ISAKMP frames:\n{summary}",
        isakmp.len()
    );
    assert!(
        isakmp.iter().all(|(_, i)| !i.encrypted || i.decrypted),
        "ISAKMP not decrypted with espgw's key log:\n{summary}"
    );
    // The outside classifiers handed IKE and the outside-address pings to the kernel.
    for r in [&r1, &r2] {
        let st = r.dataplane_stats().expect("dataplane stats");
        let pass = |k: &str| st["outside"]["xdp"][k]["packets"].as_u64().unwrap_or(0);
        assert!(
            pass("pass_ike") >= 3 && pass("pass_other") >= 6,
            "{:?}: outside XDP_PASS counters {}",
            r.node(),
            st["outside"]["xdp"]
        );
    }
    // Nothing from hostA/hostB in clear on the R1–R2 link.
    let clear = common::pcap_count(&pcap, "ip and (net 10.1.1.0/24 or net 10.1.2.0/24)");
    assert_eq!(clear, 0, "interesting packets in clear on the R1-R2 link");

    // Counters: what one side encrypted the other decrypted, and the wire carried.
    let from_r1 = common::pcap_count(&pcap, "ip proto 50 and src host 172.16.172.10");
    let from_r2 = common::pcap_count(&pcap, "ip proto 50 and src host 172.16.172.20");
    // (± a few in flight; frames the capture itself lost, which tcpdump reports, and frames
    // a veth dropped before the capture point, which `ip -s link` reports, are neither
    // here nor there.)
    let near = |a: u64, b: u64| a.abs_diff(b) <= 2 + a.max(b) / 1000;
    let on_wire = from_r1 + from_r2;
    assert!(
        enc1 >= from_r1 && enc2 >= from_r2 && enc1 + enc2 <= on_wire + cap_drops + veth_drops + 2,
        "encaps R1 {enc1} R2 {enc2} vs ESP on the wire {from_r1}/{from_r2} \
         ({cap_drops} frames the capture dropped, {veth_drops} the outside veths could not \
         hand to the wire)\n{show1}\n{show2}"
    );
    assert!(
        near(enc1, dec2) && near(enc2, dec1),
        "R1 encaps {enc1} decaps {dec1}, R2 encaps {enc2} decaps {dec2}\n{show1}\n{show2}"
    );

    // Teardown leaves nothing: the dataplanes detach their XDP programs on exit.
    drop(r1);
    drop(r2);
    for node in [Node::R1, Node::R2] {
        for ifname in ["in0", "out0"] {
            let link = lab.run(node, &["ip", "link", "show", ifname]).unwrap();
            assert!(
                !link.contains("xdp"),
                "{node:?} {ifname} still has XDP:\n{link}"
            );
        }
    }
    drop(wire);
    drop(lab);
    let left: Vec<_> = list_netns()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(pids_alive(&pids).is_empty(), "processes left: {pids:?}");
    eprintln!(
        "{transform}: negotiation+first reply {:.1}s, TCP {:.0} Mbit/s, UDP {udp_pkts} pkts {udp_loss:.1}% lost, \
         {} ESP frames all good (capture dropped {cap_drops}), encaps {enc1}/{enc2}, total {:.1}s",
        negotiation.as_secs_f64(),
        tcp_bps / 1e6,
        esp.len(),
        t_start.elapsed().as_secs_f64()
    );
}

#[test]
fn espgw_pair_3des_md5() {
    pair("esp-3des esp-md5-hmac");
}

#[test]
fn espgw_pair_aes_sha() {
    pair("esp-aes esp-sha-hmac");
}

#[test]
fn espgw_pair_gcm() {
    pair("esp-gcm");
}
