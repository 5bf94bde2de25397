//! IOS behaviour on the crypto-map interface: a packet that arrives in clear
//! but that the crypto ACL, mirrored, says must be protected is dropped by
//! the outside XDP classifier (`drop_clear_protected`): otherwise anyone
//! outside could inject packets "from" the remote protected subnet into the
//! inside network. Clear traffic the ACL does not cover still reaches the
//! inside through the kernel, IKE and NAT-T keepalives still reach R1's
//! kernel, and a reload of the configuration reaches the outside too.
//!
//! espgw-dataplane runs on R1 from an IOS configuration with `--no-esp` (the
//! inbound check is on, as in production); R2 is a plain Linux router that
//! forwards hostB's packets in clear, as an attacker on the outside would
//! send them. Whether a packet reached hostA (or R1's own stack) is read
//! from that namespace's /proc/net/snmp counters.

mod xdp_support;

use std::time::Duration;
use xdp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

/// Entry 10 denies ICMP (the next entry decides) and protects UDP from
/// hostA's side's port 7001; entry 20 protects UDP between R1's and R2's
/// outside addresses, plus `extra`.
fn config(extra: &str) -> String {
    r1_two_entry_config(&format!(
        "access-list 110 deny icmp any any\n\
         access-list 110 permit udp 10.1.1.0 0.0.0.255 eq 7001 10.1.2.0 0.0.0.255\n\
         access-list 120 permit udp host 172.16.172.10 host 172.16.172.20\n\
         {extra}"
    ))
}

/// A counter of `/proc/net/snmp` in namespace `ns`, e.g. ("Ip", "InReceives").
fn snmp(t: &Topology, ns: &str, group: &str, field: &str) -> u64 {
    let text = t.exec(ns, &["cat", "/proc/net/snmp"]);
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == field)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {group} {field} in {text}"))
}

/// IPv4 packets hostA's stack received.
fn at_host_a(t: &Topology) -> u64 {
    snmp(t, "hA", "Ip", "InReceives")
}

/// UDP datagrams that reached R1's own stack with no socket listening.
fn at_r1_udp(t: &Topology) -> u64 {
    snmp(t, "r1", "Udp", "NoPorts")
}

/// Sends `count` UDP datagrams of `size` bytes from `ns`, source port `sport`.
fn send_udp(t: &Topology, ns: &str, sport: u16, dst: &str, dport: u16, payload: &str, count: u32) {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('', {sport}))\n\
         for _ in range({count}):\n    s.sendto({payload}, ('{dst}', {dport}))\n"
    );
    t.exec(ns, &["/usr/bin/python3", "-c", &script]);
}

/// The stats after the dataplane has rewritten them (every 200 ms).
fn settled(path: &std::path::Path) -> serde_json::Value {
    std::thread::sleep(Duration::from_millis(450));
    stats(path).unwrap()
}

fn ping(t: &Topology, ns: &str, dst: &str, count: u32) -> usize {
    let n = count.to_string();
    received(&t.exec_output(ns, &["ping", "-c", &n, "-i", "0.05", "-W", "1", dst]))
}

#[test]
fn clear_traffic_the_crypto_acl_protects_is_dropped_on_the_outside() {
    let t = Topology::new("inb", 1);
    let (mut dp, conf, stats_path) = dataplane_from_config(&t, &config(""), &["--no-esp"]);
    let log = dp.log_text();
    assert!(log.contains("3 ACL rule(s)"), "{log}");

    // ICMP hostB -> hostA in clear: entry 10 denies ICMP and entry 20 does
    // not permit it, so nothing protects it: it flows (and the answers too).
    // The first ping also resolves every neighbour on the way.
    let _ = ping(&t, "hB", "10.1.1.2", 1);
    let s0 = settled(&stats_path);
    let a0 = at_host_a(&t);
    assert_eq!(ping(&t, "hB", "10.1.1.2", 3), 3, "unprotected ICMP flows");
    let s = settled(&stats_path);
    let delta = |s: &serde_json::Value, b: &serde_json::Value, name: &str| {
        xdp_packets(s, "outside", name) - xdp_packets(b, "outside", name)
    };
    assert_eq!(at_host_a(&t) - a0, 3);
    assert_eq!(delta(&s, &s0, "drop_clear_protected"), 0, "{s}");
    assert_eq!(delta(&s, &s0, "pass_other"), 3, "{s}");

    // UDP hostB -> hostA port 7001 is the mirror of entry 10's permit (hostA's
    // side's source port 7001 is the inbound destination port): dropped, all
    // of them, also the non-initial fragments of a 3000-byte datagram (a
    // permit line with ports matches fragments). From port 7001 to port
    // 7002 is not the mirror: it reaches hostA.
    let (b, a0) = (s, at_host_a(&t));
    send_udp(&t, "hB", 40000, "10.1.1.2", 7001, "b'x' * 32", 4);
    send_udp(&t, "hB", 40001, "10.1.1.2", 7001, "b'x' * 3000", 1);
    let s = settled(&stats_path);
    assert_eq!(
        at_host_a(&t) - a0,
        0,
        "protected clear UDP never reaches hostA"
    );
    assert_eq!(
        delta(&s, &b, "drop_clear_protected"),
        4 + 3,
        "4 datagrams and the 3 fragments of the large one: {s}"
    );
    let (b, a0) = (s, at_host_a(&t));
    send_udp(&t, "hB", 7001, "10.1.1.2", 7002, "b'x' * 32", 3);
    let s = settled(&stats_path);
    assert_eq!(at_host_a(&t) - a0, 3, "ports are mirrored, not ignored");
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 0, "{s}");
    assert_eq!(delta(&s, &b, "pass_other"), 3, "{s}");

    // R2 itself (not in 10.1.2.0/24) reaches hostA in clear.
    let a0 = at_host_a(&t);
    assert_eq!(ping(&t, "r2", "10.1.1.2", 3), 3);
    assert_eq!(at_host_a(&t) - a0, 3);

    // Entry 20 protects UDP between the two outside addresses; IKE on 500 and
    // a NAT-T keepalive on 4500 are never held to it and reach R1's kernel
    // (nothing listens there: the Udp NoPorts counter sees them), other UDP
    // from R2 to R1 is dropped.
    let s = settled(&stats_path);
    let (b, r0) = (s, at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.10", 500, "b'\\0' * 28", 2);
    send_udp(&t, "r2", 4500, "172.16.172.10", 4500, "b'\\xff'", 1);
    let s = settled(&stats_path);
    assert_eq!(
        at_r1_udp(&t) - r0,
        3,
        "IKE and the keepalive reach R1's kernel"
    );
    assert_eq!(delta(&s, &b, "pass_ike"), 2, "{s}");
    assert_eq!(delta(&s, &b, "pass_natt_keepalive"), 1, "{s}");
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 0, "{s}");
    let (b, r0) = (s, at_r1_udp(&t));
    send_udp(&t, "r2", 5555, "172.16.172.10", 5555, "b'x' * 8", 2);
    let s = settled(&stats_path);
    assert_eq!(at_r1_udp(&t) - r0, 0);
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 2, "{s}");

    // The operator adds ICMP to entry 20: the reload reaches the outside, and
    // ICMP from hostB (denied by entry 10, permitted by entry 20) is dropped.
    std::fs::write(
        &conf,
        config("access-list 120 permit icmp 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255"),
    )
    .unwrap();
    wait_for("crypto ACL reload", Duration::from_secs(5), || {
        dp.log_text()
            .contains("crypto ACL reloaded, 4 rule(s)")
            .then_some(())
    });
    let s = settled(&stats_path);
    let (b, a0) = (s, at_host_a(&t));
    assert_eq!(
        ping(&t, "hB", "10.1.1.2", 3),
        0,
        "protected ICMP is dropped"
    );
    let s = settled(&stats_path);
    assert_eq!(at_host_a(&t) - a0, 0);
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 3, "{s}");
    // R2's own ICMP is still not covered.
    assert_eq!(ping(&t, "r2", "10.1.1.2", 2), 2);

    // Nothing was steered on the outside (no ESP here), the inside never
    // drops for this reason.
    let s = settled(&stats_path);
    assert_eq!(xdp_packets(&s, "outside", "steered"), 0, "{s}");
    assert_eq!(xdp_packets(&s, "inside", "drop_clear_protected"), 0, "{s}");
    assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
    assert!(!t.xdp_attached("r1"));
}

/// `--no-inbound-check` is a lab switch for clear forwarding only: refused
/// without `--no-esp`.
#[test]
fn the_inbound_check_can_only_be_switched_off_without_esp() {
    let out = std::process::Command::new(BIN)
        .args(["--no-inbound-check", "--inside", "a", "--outside", "b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-esp"), "{err}");
}
