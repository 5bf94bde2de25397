//! The IOS crypto log messages of espgw-dataplane, on the two-espgw tunnel
//! of xdp_esp.rs (static SAs, both dataplanes, a wire namespace between
//! them): ESP with an unknown SPI, a replayed ESP frame, an ESP frame with a
//! corrupted ciphertext and a clear packet the crypto ACL protects each give
//! R1's log exactly one line in IOS's text, with the right SPI, addresses,
//! connection id and sequence number, however many packets came (the
//! counters count every one); normal tunnel traffic gives none.
//!
//! The junk is built with Debian's scapy (/usr/bin/python3): sent from R2's
//! namespace through its kernel (unknown SPI, clear packet), or re-injected
//! on the wire towards R1 from frames R2 really sent (replay, bad ICV).

#[path = "xdp_support/tunnel.rs"]
mod tunnel;
mod xdp_support;

use std::time::Duration;
use tunnel::{capture_wire, ping, tunnel, warm_up, Router, R1_OUT, R2_OUT};
use xdp_support::{wait_for, worker_sum, xdp_packets, Topology};

const R1_IN_CONN_ID: u32 = 2001;

/// Lines of `log` that carry the message `%CRYPTO-4-<name>`.
fn lines(log: &str, name: &str) -> Vec<String> {
    let tag = format!("%CRYPTO-4-{name}:");
    log.lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

fn crypto_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("%CRYPTO-"))
        .map(str::to_string)
        .collect()
}

/// Runs a scapy script in namespace `ns`; its stdout.
fn scapy(lab: &Topology, ns: &str, script: &str, args: &[&str]) -> String {
    let mut v = vec!["/usr/bin/python3", "-c", script];
    v.extend_from_slice(args);
    let out = lab.exec_output(ns, &v);
    assert!(
        out.status.success(),
        "scapy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Re-injects, from the wire namespace towards R1, ESP frames R2 sent to R1
/// (taken from `pcap`): `replay` sends one of them `n` times unchanged and
/// prints its sequence number; `mac` sends it `n` times with a fresh
/// sequence number each (so it is no replay) and one ciphertext byte
/// flipped, and prints the first of those sequence numbers.
const INJECT: &str = r#"
import sys, struct
from scapy.all import rdpcap, sendp, Ether, IP
pcap, mode, src, dst, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
esp = [bytes(p) for p in rdpcap(pcap) if IP in p and p[IP].proto == 50 and p[IP].src == src and p[IP].dst == dst]
assert esp, "no ESP frame from %s to %s on the wire" % (src, dst)
raw = bytearray(esp[len(esp) // 2])
at = 14 + (raw[14] & 15) * 4
seq = struct.unpack('!I', raw[at + 4:at + 8])[0]
frames = []
if mode == 'replay':
    frames = [bytes(raw)] * n
    print(seq)
else:
    first = 0x70000000
    for i in range(n):
        r = bytearray(raw)
        r[at + 4:at + 8] = struct.pack('!I', first + i)
        r[at + 8 + 16 + 1] ^= 0x5a  # a ciphertext byte, after the 16-byte IV
        frames.append(bytes(r))
    print(first)
sendp([Ether(f) for f in frames], iface='w1', verbose=0)
"#;

/// R1's stats once the counters show `cond`.
fn stats_when(
    r1: &Router,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(what, Duration::from_secs(5), || {
        let s = r1.stats();
        cond(&s).then_some(s)
    })
}

/// Waits for the first `name` line in R1's log, gives the rate limiter
/// time to print more if it (wrongly) would, and returns the lines.
fn one_line(r1: &Router, name: &str) -> Vec<String> {
    wait_for(name, Duration::from_secs(5), || {
        (!lines(&r1.log(), name).is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    lines(&r1.log(), name)
}

#[test]
fn xdp_syslog_ios_crypto_messages() {
    let (lab, mut r1, mut r2, _keys, _t) = tunnel("sl", "esp-aes esp-sha-hmac", false, false);
    // Distinct connection ids, so the message shows it names R1's inbound SA.
    r1.records[0].conn_id = 2002;
    r1.records[1].conn_id = R1_IN_CONN_ID;
    r2.records[0].conn_id = 3001;
    r2.records[1].conn_id = 3002;
    for r in [&mut r1, &mut r2] {
        let recs = r.records.clone();
        r.out_slot = r.db.install(&recs[0]).unwrap();
        r.db.install(&recs[1]).unwrap();
    }
    let (mut cap, pcap) = capture_wire(&lab);
    warm_up(&lab);
    assert_eq!(ping(&lab, 5), 5, "R1: {} R2: {}", r1.log(), r2.log());
    // Normal traffic: no crypto message at either end (a turn of the main
    // loop is 200 ms).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(crypto_lines(&r1.log()), Vec::<String>::new());
    assert_eq!(crypto_lines(&r2.log()), Vec::<String>::new());
    assert!(cap.signal_and_wait("-TERM", Duration::from_secs(5)));

    // (a) 100 ESP packets with an SPI R1 has no SA for, from R2: one line.
    let s0 = r1.stats();
    let spi: u32 = 0x3F9A1A49;
    scapy(
        &lab,
        "r2",
        "import sys, struct\n\
         from scapy.all import send, IP, Raw\n\
         spi = int(sys.argv[2])\n\
         send(IP(dst=sys.argv[1], proto=50) / Raw(struct.pack('!II', spi, 1) + bytes(64)), count=100, verbose=0)\n",
        &[&R1_OUT.to_string(), &spi.to_string()],
    );
    let s = stats_when(&r1, "100 no-SA drops", |s| {
        worker_sum(s, "drop_no_sa") >= worker_sum(&s0, "drop_no_sa") + 100
    });
    let got = one_line(&r1, "RECVD_PKT_INV_SPI");
    assert_eq!(
        got,
        vec![format!(
            "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid spi for destaddr={R1_OUT}, prot=50, spi=0x3F9A1A49(1067063881), srcaddr={R2_OUT}"
        )],
        "{}",
        r1.log()
    );
    assert_eq!(
        worker_sum(&r1.stats(), "drop_no_sa") - worker_sum(&s0, "drop_no_sa"),
        100,
        "every packet counted: {s}"
    );

    // (b) A frame R2 really sent, replayed 5 times: one line, R1's inbound
    // SA's connection id and the frame's sequence number.
    let (pcap_s, src, dst) = (
        pcap.to_str().unwrap(),
        R2_OUT.to_string(),
        R1_OUT.to_string(),
    );
    let s0 = r1.stats();
    let seq = scapy(&lab, "wire", INJECT, &[pcap_s, "replay", &src, &dst, "5"]);
    let _ = stats_when(&r1, "5 replay drops", |s| {
        worker_sum(s, "drop_replay") >= worker_sum(&s0, "drop_replay") + 5
    });
    let got = one_line(&r1, "PKT_REPLAY_ERR");
    assert_eq!(
        got,
        vec![format!(
            "%CRYPTO-4-PKT_REPLAY_ERR: decrypt: replay check failed connection id={R1_IN_CONN_ID}, sequence number={seq}"
        )],
        "{}",
        r1.log()
    );
    assert_eq!(
        worker_sum(&r1.stats(), "drop_replay") - worker_sum(&s0, "drop_replay"),
        5
    );

    // (c) The same frame with a new sequence number and a flipped
    // ciphertext byte, 3 times: the ICV fails, one line.
    let s0 = r1.stats();
    let _ = scapy(&lab, "wire", INJECT, &[pcap_s, "mac", &src, &dst, "3"]);
    let _ = stats_when(&r1, "3 auth drops", |s| {
        worker_sum(s, "drop_auth") >= worker_sum(&s0, "drop_auth") + 3
    });
    let got = one_line(&r1, "RECVD_PKT_MAC_ERR");
    assert_eq!(
        got,
        vec![format!(
            "%CRYPTO-4-RECVD_PKT_MAC_ERR: decrypt: mac verify failed for connection id={R1_IN_CONN_ID}"
        )],
        "{}",
        r1.log()
    );
    assert_eq!(
        worker_sum(&r1.stats(), "drop_auth") - worker_sum(&s0, "drop_auth"),
        3
    );

    // (d) ICMP hostB -> hostA in clear (sent from R2 as an attacker on the
    // outside would): the crypto ACL protects it, R1's outside classifier
    // drops all 5, one line.
    let s0 = r1.stats();
    scapy(
        &lab,
        "r2",
        "from scapy.all import send, IP, ICMP\n\
         send(IP(src='10.1.2.2', dst='10.1.1.2') / ICMP(), count=5, verbose=0)\n",
        &[],
    );
    let s = stats_when(&r1, "5 clear protected drops", |s| {
        xdp_packets(s, "outside", "drop_clear_protected")
            >= xdp_packets(&s0, "outside", "drop_clear_protected") + 5
    });
    let got = one_line(&r1, "RECVD_PKT_NOT_IPSEC");
    assert_eq!(
        got,
        vec![
            "%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an IPSEC packet. (ip) vrf/dest_addr= /10.1.1.2, src_addr= 10.1.2.2, prot= 1"
                .to_string()
        ],
        "{}",
        r1.log()
    );
    assert_eq!(
        xdp_packets(&r1.stats(), "outside", "drop_clear_protected")
            - xdp_packets(&s0, "outside", "drop_clear_protected"),
        5,
        "{s}"
    );

    // Four messages in all at R1; R2 saw none of this; the tunnel still works.
    assert_eq!(crypto_lines(&r1.log()).len(), 4, "{}", r1.log());
    assert_eq!(crypto_lines(&r2.log()), Vec::<String>::new());
    assert_eq!(ping(&lab, 3), 3);
}
