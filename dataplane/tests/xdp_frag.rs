//! Fragmentation before encryption through two espgw routers (static SAs,
//! real AF_XDP/XDP on veth in namespaces): hostA sends datagrams without DF
//! whose encapsulation would not fit the 1500-byte link between R1 and R2.
//! R1 splits each into fragments that each fit, encrypts each as its own
//! ESP packet (tshark decrypts and authenticates every one on the wire),
//! R2 decapsulates and forwards the fragments, hostB's kernel reassembles:
//! pings of 1488 bytes are answered (R2 fragments the replies the same way)
//! and UDP datagrams of 1450 bytes arrive whole and intact. Nothing is
//! dropped as too big; the fragment counters moved and each fragment is one
//! packet on the SA. With DF set, R1 still answers "fragmentation needed"
//! with the exact tunnel MTU, and a DF packet of exactly that size passes.
//! A packet held while R1 resolves its peer is fragmented on release.

#[path = "xdp_support/tunnel.rs"]
mod tunnel;
mod xdp_support;

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::{NatT, SaParams};
use espgw_lab::judge::judge;
use std::time::Duration;
use tunnel::{capture_wire, tunnel, tunnel_on, warm_up, R1_OUT, R2_OUT};
use xdp_support::{esp_drops, send_errors, wait_for, worker_sum, Topology};

const UDP_LEN: usize = 1450;
const UDP_COUNT: usize = 40;

/// The longest inner packet the tunnel carries at the link's MTU of 1500.
fn tunnel_mtu(transform: &str, natt: bool) -> usize {
    let mut p = SaParams::tunnel(0x1000, Transform::parse(transform).unwrap(), R1_OUT, R2_OUT);
    if natt {
        p.natt = Some(NatT::default());
    }
    p.max_inner_len(1500, 20).unwrap()
}

/// hostB counts the datagrams that arrive whole (length and every byte);
/// hostA sends them with path MTU discovery off (DF clear).
fn udp_through(lab: &Topology) -> usize {
    let recv = format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.1.2.2", 45210))
s.settimeout(4)
print("ready", flush=True)
good = 0
try:
    while good < {UDP_COUNT}:
        d, _ = s.recvfrom(65535)
        if len(d) == {UDP_LEN} and d == bytes((d[0] + i) % 256 for i in range({UDP_LEN})):
            good += 1
except socket.timeout:
    pass
print("good", good, flush=True)
"#
    );
    let send = format!(
        r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT
for n in range({UDP_COUNT}):
    s.sendto(bytes((n + i) % 256 for i in range({UDP_LEN})), ("10.1.2.2", 45210))
    time.sleep(0.01)
"#
    );
    let mut rx = lab.spawn("hB", &["/usr/bin/python3", "-c", &recv], "udp-recv.log");
    wait_for("UDP receiver", Duration::from_secs(5), || {
        rx.log_text().contains("ready").then_some(())
    });
    lab.exec("hA", &["/usr/bin/python3", "-c", &send]);
    let text = wait_for("UDP receiver result", Duration::from_secs(10), || {
        let t = rx.log_text();
        t.contains("good").then_some(t)
    });
    let _ = rx.signal_and_wait("-TERM", Duration::from_secs(1));
    text.lines()
        .find_map(|l| l.strip_prefix("good "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn ping_args(lab: &Topology, args: &[&str]) -> String {
    let mut v = vec!["ping", "-W", "1", "-i", "0.2"];
    v.extend_from_slice(args);
    v.push("10.1.2.2");
    let out = lab.exec_output("hA", &v);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(tag: &str, transform: &str, natt: bool) {
    let (lab, r1, r2, keys, _t) = tunnel(tag, transform, natt, true);
    let (mut cap, pcap) = capture_wire(&lab);
    warm_up(&lab);
    let mtu = tunnel_mtu(transform, natt);
    let before = r1.stats();

    // Echo requests of 1488 bytes without DF, and their replies (hostB's
    // kernel sends them without DF too).
    let text = ping_args(&lab, &["-c", "5", "-M", "dont", "-s", "1460"]);
    assert!(
        text.contains("5 received"),
        "pings of 1488 bytes without DF through the {transform} tunnel: {text} R1: {} R2: {}",
        r1.log(),
        r2.log()
    );
    // UDP datagrams of 1450 bytes without DF arrive whole.
    let good = udp_through(&lab);
    assert_eq!(
        good, UDP_COUNT,
        "UDP datagrams of {UDP_LEN} bytes reassembled at hostB"
    );

    std::thread::sleep(Duration::from_millis(300));
    let (s1, s2) = (r1.stats(), r2.stats());
    let d =
        |s: &serde_json::Value, b: &serde_json::Value, c: &str| worker_sum(s, c) - worker_sum(b, c);
    let frag_pkts = d(&s1, &before, "frag_before_encrypt");
    let frags = d(&s1, &before, "frag_before_encrypt_fragments");
    println!(
        "{transform}{}: tunnel MTU {mtu}; R1 fragmented {frag_pkts} packets into {frags}; R2 {} into {}",
        if natt { " NAT-T" } else { "" },
        worker_sum(&s2, "frag_before_encrypt"),
        worker_sum(&s2, "frag_before_encrypt_fragments")
    );
    assert!(
        frag_pkts >= (5 + UDP_COUNT) as u64,
        "R1 fragmented the requests and datagrams: {s1}"
    );
    assert_eq!(frags, 2 * frag_pkts, "each became two fragments: {s1}");
    assert!(
        worker_sum(&s2, "frag_before_encrypt") >= 5,
        "R2 fragmented the echo replies: {s2}"
    );
    for (name, s) in [("R1", &s1), ("R2", &s2)] {
        assert_eq!(worker_sum(s, "drop_too_big"), 0, "{name}: {s}");
        assert_eq!(worker_sum(s, "drop_frag_no_frame"), 0, "{name}: {s}");
        assert_eq!(esp_drops(s), 0, "{name}: {s}");
        assert_eq!(worker_sum(s, "drop_auth"), 0, "{name}: {s}");
    }
    // Every fragment is one packet on the SA (as IOS's #pkts encaps counts).
    let c1 = r1.db.reader().counters(r1.out_slot).unwrap().values();
    assert_eq!(
        c1.packets,
        worker_sum(&s1, "esp_encap"),
        "SA packets = encapsulations: {c1:?} {s1}"
    );
    assert!(c1.packets >= frags, "{c1:?}");
    assert_eq!(send_errors(&c1), 0);

    // DF set: "fragmentation needed" with the exact tunnel MTU ...
    let text = ping_args(&lab, &["-c", "2", "-M", "do", "-s", "1460"]);
    assert!(
        text.contains(&format!("mtu = {mtu}")) || text.contains(&format!("mtu={mtu}")),
        "DF ping answered with fragmentation needed, MTU {mtu}: {text}"
    );
    // ... and a DF packet of exactly that size fits.
    let s = (mtu - 28).to_string();
    let text = ping_args(&lab, &["-c", "3", "-M", "do", "-s", &s]);
    assert!(
        text.contains("3 received"),
        "{mtu}-byte DF pings fit: {text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let s1 = r1.stats();
    assert!(worker_sum(&s1, "drop_too_big") >= 1, "{s1}");
    assert!(worker_sum(&s1, "icmp_sent") >= 1, "{s1}");
    assert_eq!(
        d(&s1, &before, "frag_before_encrypt"),
        frag_pkts,
        "DF packets are never fragmented: {s1}"
    );

    assert!(cap.signal_and_wait("-INT", Duration::from_secs(5)));
    let v = judge(&pcap, &keys, &[]).unwrap();
    let esp: Vec<_> = v.esp().collect();
    let from_r1 = esp.iter().filter(|(_, e)| e.spi == keys[0].spi).count() as u64;
    assert!(
        from_r1 >= frags,
        "R1's fragments on the wire: {from_r1} < {frags}"
    );
    assert!(esp.iter().all(|(_, e)| e.udp_encap == natt));
    let bad = v.bad_esp();
    assert!(
        bad.is_empty(),
        "{} of {} ESP frames not decrypted/authenticated:\n{}",
        bad.len(),
        esp.len(),
        v.summary()
    );
    // No ESP packet is larger than the link.
    let big = xdp_support::run(&[
        "tcpdump",
        "-n",
        "-r",
        pcap.to_str().unwrap(),
        "greater 1515",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&big.stdout).lines().count(),
        0,
        "frames over 1514 bytes on the link"
    );
}

#[test]
fn xdp_frag_3des_md5() {
    run("f3", "esp-3des esp-md5-hmac", false);
}

#[test]
fn xdp_frag_gcm() {
    run("fg", "esp-gcm", false);
}

#[test]
fn xdp_frag_natt_aes_sha() {
    run("fn", "esp-aes esp-sha-hmac", true);
}

/// R1 holds a big non-DF echo request while its SA peer's address resolves
/// (whole: the MTU is only known with the next hop) and fragments it when
/// it leaves the hold queue.
#[test]
fn xdp_frag_after_hold_queue() {
    let (lab, r1, r2, _keys, _t) = tunnel_on(Topology::new("fh", 1), "esp-gcm", false, true);
    let block_arp = |on: bool| {
        let v = format!("net.ipv4.conf.out0.arp_ignore={}", if on { 8 } else { 0 });
        lab.exec("r2", &["sysctl", "-qw", &v]);
    };
    block_arp(true);
    for ns in ["r1", "hA"] {
        lab.ip(ns, &["neigh", "flush", "all"]);
    }
    std::thread::sleep(Duration::from_millis(700));
    let out = std::thread::scope(|s| {
        let p = s.spawn(|| {
            lab.exec_output(
                "hA",
                &[
                    "ping", "-c", "1", "-W", "4", "-M", "dont", "-s", "1460", "10.1.2.2",
                ],
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        block_arp(false);
        p.join().unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("1 received"),
        "the held 1488-byte request crossed in fragments: {text} R1: {} R2: {}",
        r1.log(),
        r2.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let s1 = r1.stats();
    assert!(worker_sum(&s1, "held_for_neighbour") >= 1, "{s1}");
    assert_eq!(
        worker_sum(&s1, "released_for_neighbour"),
        worker_sum(&s1, "held_for_neighbour"),
        "{s1}"
    );
    assert_eq!(worker_sum(&s1, "frag_before_encrypt"), 1, "{s1}");
    assert_eq!(worker_sum(&s1, "frag_before_encrypt_fragments"), 2, "{s1}");
    assert_eq!(worker_sum(&s1, "esp_encap"), 2, "{s1}");
    assert_eq!(worker_sum(&s1, "drop_too_big"), 0, "{s1}");
    let c = r1.db.reader().counters(r1.out_slot).unwrap().values();
    assert_eq!(c.packets, 2, "two packets on R1's SA: {c:?}");
}
