//! IOS behaviour on the crypto-map interface: a packet that arrives in clear
//! but that the crypto ACL, mirrored, says must be protected is dropped by
//! the outside XDP classifier (`drop_clear_protected`): otherwise anyone
//! outside could inject packets "from" the remote protected subnet into the
//! inside network. Clear traffic the ACL does not cover still reaches the
//! inside through the kernel, IKE and NAT-T keepalives still reach R1's
//! kernel, and a reload of the configuration reaches the outside too. Only
//! IKE, NAT-T and ESP addressed to R1 itself are exempt from the check: to
//! an inside host they are clear traffic like any other, and R1's addresses
//! are followed as they are added and removed.
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
    reload_config(
        &dp,
        &conf,
        &config("access-list 120 permit icmp 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255"),
        4,
    );
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

/// Sends `count` raw ESP packets (IP protocol 50, SPI 0x11223344) from `ns`.
fn send_esp(t: &Topology, ns: &str, dst: &str, count: u32) {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)\n\
         for i in range({count}):\n    s.sendto(b'\\x11\\x22\\x33\\x44' + (i + 1).to_bytes(4, 'big') + b'x' * 32, ('{dst}', 0))\n"
    );
    t.exec(ns, &["/usr/bin/python3", "-c", &script]);
}

/// From `ns`, sends one IKE datagram (UDP 500 -> 500) to `dst` every 20 ms
/// until R1's Udp NoPorts counter (read through `/proc/PID/net/snmp` of a
/// process in R1's namespace) moves after a send, for at most `limit`.
/// Returns the datagrams sent, or None if the limit passed first.
fn ike_until_it_arrives(
    t: &Topology,
    ns: &str,
    r1_pid: u32,
    dst: &str,
    limit: Duration,
) -> Option<u32> {
    let script = format!(
        "import socket, time\n\
         def noports():\n\
         \x20   lines = [l.split() for l in open('/proc/{r1_pid}/net/snmp') if l.startswith('Udp:')]\n\
         \x20   return int(lines[1][lines[0].index('NoPorts')])\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('', 500))\n\
         end = time.monotonic() + {limit}\n\
         sent = 0\n\
         while time.monotonic() < end:\n\
         \x20   before = noports()\n\
         \x20   s.sendto(b'\\0' * 28, ('{dst}', 500))\n\
         \x20   sent += 1\n\
         \x20   time.sleep(0.02)\n\
         \x20   if noports() > before:\n\
         \x20       print(sent)\n\
         \x20       break\n",
        limit = limit.as_secs_f64(),
    );
    t.exec(ns, &["/usr/bin/python3", "-c", &script])
        .trim()
        .parse()
        .ok()
}

/// The gap that was: UDP/500 and UDP/4500 (IKE, NAT-T keepalives, ESP in
/// UDP) and ESP were exempt whatever their destination, so anyone outside
/// could send them "from" the protected remote subnet to inside hosts. Now
/// only those addressed to one of R1's own addresses are; R1's addresses
/// come from netlink and follow `ip addr add/del` within a second.
#[test]
fn only_ike_natt_and_esp_for_the_router_itself_are_exempt() {
    let t = Topology::new("lad", 1);
    // Entry 10 protects the subnets, entry 20 all UDP from R1's /28 to R2:
    // without the exemption even IKE to R1 would be dropped.
    let conf = r1_two_entry_config(
        "access-list 110 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n\
         access-list 120 permit udp 172.16.172.0 0.0.0.15 host 172.16.172.20",
    );
    let (mut dp, _conf, stats_path) = dataplane_from_config(&t, &conf, &["--no-esp"]);
    let log = dp.log_text();
    assert!(log.contains("2 ACL rule(s)"), "{log}");
    assert!(
        log.contains("local address(es); added") && log.contains("172.16.172.10"),
        "{log}"
    );
    let delta = |s: &serde_json::Value, b: &serde_json::Value, name: &str| {
        xdp_packets(s, "outside", name) - xdp_packets(b, "outside", name)
    };

    // hostB -> hostA in clear: IKE, IKE on 4500 behind the non-ESP marker,
    // a NAT-T keepalive, ESP in UDP and raw ESP. Before, the first three went
    // to the kernel (which forwarded them to hostA) and the last two to the
    // worker (which, with --no-esp, forwarded them to hostA too). All are
    // dropped now and none reaches hostA.
    let (b, a0) = (settled(&stats_path), at_host_a(&t));
    send_udp(&t, "hB", 500, "10.1.1.2", 500, "b'\\0' * 28", 2);
    send_udp(&t, "hB", 4500, "10.1.1.2", 4500, "b'\\0' * 32", 2);
    send_udp(&t, "hB", 4501, "10.1.1.2", 4500, "b'\\xff'", 1);
    send_udp(
        &t,
        "hB",
        4502,
        "10.1.1.2",
        4500,
        "b'\\x11\\x22\\x33\\x44' + b'x' * 32",
        2,
    );
    send_esp(&t, "hB", "10.1.1.2", 2);
    let s = settled(&stats_path);
    assert_eq!(at_host_a(&t) - a0, 0, "nothing reached hostA");
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 9, "{s}");
    for c in ["pass_ike", "pass_natt_keepalive", "steered"] {
        assert_eq!(delta(&s, &b, c), 0, "{c}: {s}");
    }

    // R2 -> R1's own address: IKE and the keepalive reach R1's kernel
    // (nothing listens: Udp NoPorts), ESP in UDP and raw ESP are steered,
    // although entry 20 protects UDP from R2 to R1's /28.
    let (b, r0) = (s, at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.10", 500, "b'\\0' * 28", 2);
    send_udp(&t, "r2", 4500, "172.16.172.10", 4500, "b'\\0' * 32", 1);
    send_udp(&t, "r2", 4501, "172.16.172.10", 4500, "b'\\xff'", 1);
    send_udp(
        &t,
        "r2",
        4502,
        "172.16.172.10",
        4500,
        "b'\\x11\\x22\\x33\\x44' + b'x' * 32",
        1,
    );
    send_esp(&t, "r2", "172.16.172.10", 1);
    let s = settled(&stats_path);
    assert_eq!(at_r1_udp(&t) - r0, 4, "IKE (3) and the keepalive reach R1");
    assert_eq!(delta(&s, &b, "pass_ike"), 3, "{s}");
    assert_eq!(delta(&s, &b, "pass_natt_keepalive"), 1, "{s}");
    assert_eq!(delta(&s, &b, "steered"), 2, "{s}");
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 0, "{s}");

    // A second address on R1's outside at run time. R2 reaches it through an
    // on-link host route (.11 is in R1's /28, not R2's) and a static
    // neighbour entry (R1's MAC), so it can try before and after.
    let mac = t.exec("r1", &["cat", "/sys/class/net/out0/address"]);
    t.ip("r2", &["route", "add", "172.16.172.11/32", "dev", "out0"]);
    t.ip(
        "r2",
        &[
            "neigh",
            "replace",
            "172.16.172.11",
            "lladdr",
            mac.trim(),
            "dev",
            "out0",
            "nud",
            "permanent",
        ],
    );
    let (b, r0) = (s, at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.11", 500, "b'\\0' * 28", 2);
    let s = settled(&stats_path);
    assert_eq!(
        at_r1_udp(&t) - r0,
        0,
        "not R1's address yet: clear, protected"
    );
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 2, "{s}");

    let r1_pid = dp.pid();
    t.ip("r1", &["addr", "add", "172.16.172.11/28", "dev", "out0"]);
    let added = std::time::Instant::now();
    let sent = ike_until_it_arrives(&t, "r2", r1_pid, "172.16.172.11", Duration::from_secs(2));
    let took = added.elapsed();
    assert!(sent.is_some(), "IKE to the added address never reached R1");
    assert!(took < Duration::from_secs(1), "exempt after {took:?}");
    eprintln!("172.16.172.11 exempt {took:?} after ip addr add ({sent:?} datagrams)");
    let log = dp.log_text();
    assert!(log.contains("added 172.16.172.11"), "{log}");
    let (b, r0) = (settled(&stats_path), at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.11", 500, "b'\\0' * 28", 2);
    let s = settled(&stats_path);
    assert_eq!(at_r1_udp(&t) - r0, 2);
    assert_eq!(delta(&s, &b, "pass_ike"), 2, "{s}");

    // Removed again: the kernel no longer accepts it either, so R1's Udp
    // NoPorts cannot tell whether the classifier still exempts it; the
    // classifier's log (written once the map is updated) and its counters
    // can.
    t.ip("r1", &["addr", "del", "172.16.172.11/28", "dev", "out0"]);
    let removed = std::time::Instant::now();
    wait_for(
        "the removal in the classifier",
        Duration::from_secs(1),
        || {
            dp.log_text()
                .contains("removed 172.16.172.11")
                .then_some(())
        },
    );
    eprintln!(
        "172.16.172.11 no longer exempt {:?} after ip addr del",
        removed.elapsed()
    );
    let (b, r0) = (settled(&stats_path), at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.11", 500, "b'\\0' * 28", 2);
    let s = settled(&stats_path);
    assert_eq!(at_r1_udp(&t) - r0, 0);
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 2, "{s}");
    assert_eq!(delta(&s, &b, "pass_ike"), 0, "{s}");

    // R1's outside loses its address (DHCP lease gone): fail closed, IKE to
    // the old address is clear traffic too, dropped by entry 20.
    t.ip("r1", &["addr", "flush", "dev", "out0"]);
    wait_for("the unaddressed warning", Duration::from_secs(2), || {
        dp.log_text()
            .contains("outside out0 has no IPv4 address")
            .then_some(())
    });
    let (b, r0) = (settled(&stats_path), at_r1_udp(&t));
    send_udp(&t, "r2", 500, "172.16.172.10", 500, "b'\\0' * 28", 2);
    let s = settled(&stats_path);
    assert_eq!(at_r1_udp(&t) - r0, 0);
    assert_eq!(delta(&s, &b, "drop_clear_protected"), 2, "{s}");
    assert_eq!(delta(&s, &b, "pass_ike"), 0, "{s}");

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
