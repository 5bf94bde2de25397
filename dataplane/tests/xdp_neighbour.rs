//! Frames whose next hop is not resolved yet wait in the worker's hold
//! queue instead of being dropped (the kernel's unres_qlen behaviour): the
//! first packet towards a neighbour R1 never talked to is delivered, and
//! frames towards an address that never answers are dropped after the
//! deadline, counted, while other traffic keeps flowing.

mod xdp_support;

use std::time::{Duration, Instant};
use xdp_support::*;

/// The `time=` of the first reply, in ms.
fn rtt_ms(out: &std::process::Output) -> Option<f64> {
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("time=")? + 5;
    text[at..].split_whitespace().next()?.parse().ok()
}

fn start(t: &Topology, acl: &[&str]) -> (Proc, std::path::PathBuf) {
    // R2 answers in clear: let its answers in (see xdp_inbound_policy.rs).
    let mut args = vec!["--no-inbound-check"];
    for a in acl {
        args.extend_from_slice(&["--acl", a]);
    }
    plain_dataplane(t, &args, "dataplane.log")
}

/// R1 has never resolved R2 (its next hop towards hostB) when hostA's first
/// echo request arrives: the worker holds it, the resolver has the kernel
/// resolve R2, and the request goes out; the single ping is answered.
#[test]
fn xdp_first_packet_waits_for_its_neighbour() {
    let t = Topology::new("n", 1);
    let (mut dp, stats_path) = start(&t, &["permit ip 10.1.1.0/24 10.1.2.0/24 policy 10"]);
    // R1's kernel forgets every neighbour; hostA and hostB forget theirs too,
    // so nothing but the dataplane's own request resolves R2.
    for ns in ["r1", "r2", "hA", "hB"] {
        t.ip(ns, &["neigh", "flush", "all"]);
    }
    let before = stats(&stats_path).unwrap();
    assert_eq!(worker_sum(&before, "held_for_neighbour"), 0, "{before}");

    let t0 = Instant::now();
    let out = t.exec_output("hA", &["ping", "-c", "1", "-W", "2", "10.1.2.2"]);
    let wall = t0.elapsed();
    let rtt = rtt_ms(&out);
    eprintln!("first ping with the next hop unresolved: rtt {rtt:?} ms, wall {wall:?}");
    assert_eq!(
        received(&out),
        1,
        "the very first packet is delivered: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        rtt.is_some_and(|ms| ms < 1000.0),
        "answered well before the kernel's 1 s retry"
    );

    std::thread::sleep(Duration::from_millis(500));
    let s = stats(&stats_path).unwrap();
    assert!(worker_sum(&s, "held_for_neighbour") >= 1, "held: {s}");
    assert_eq!(
        worker_sum(&s, "released_for_neighbour"),
        worker_sum(&s, "held_for_neighbour"),
        "every held frame went out: {s}"
    );
    assert_eq!(worker_sum(&s, "drop_no_neighbour"), 0, "{s}");
    assert_eq!(worker_sum(&s, "drop_neighbour_queue_full"), 0, "{s}");
    assert_eq!(worker_sum(&s, "neighbour_queue_len"), 0, "{s}");
    assert_eq!(worker_sum(&s, "tx_outside"), 1, "sent once: {s}");

    // Resolved now: the next pings are not held.
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "5", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(received(&out), 5);
    std::thread::sleep(Duration::from_millis(400));
    let s2 = stats(&stats_path).unwrap();
    assert_eq!(
        worker_sum(&s2, "held_for_neighbour"),
        worker_sum(&s, "held_for_neighbour"),
        "{s2}"
    );
    assert_eq!(worker_sum(&s2, "tx_outside"), 6, "{s2}");
    assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
}

/// Frames for an address on R1's connected subnet where no host answers are
/// held up to three per destination, pushed out beyond that, and dropped
/// after the 3 s deadline, each counted once; pings to hostB are forwarded
/// meanwhile, and the queue ends empty.
#[test]
fn xdp_unresolvable_neighbour_times_out() {
    let t = Topology::new("u", 1);
    let (mut dp, stats_path) = start(
        &t,
        &[
            "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10",
            "permit udp 10.1.1.0/24 172.16.172.0/28 policy 10",
        ],
    );
    // Resolve hostB's way first so the pings below measure only forwarding.
    let out = t.exec_output("hA", &["ping", "-c", "1", "-W", "2", "10.1.2.2"]);
    assert_eq!(received(&out), 1);
    std::thread::sleep(Duration::from_millis(400));
    let s0 = stats(&stats_path).unwrap();
    let base = |s: &serde_json::Value, name: &str| worker_sum(s, name) - worker_sum(&s0, name);
    assert_eq!(worker_sum(&s0, "neighbour_queue_len"), 0, "{s0}");

    // 172.16.172.11-13 are on R1's out0 subnet; nobody owns them. Five
    // datagrams to .13 (three held, two pushed out), one to .11 and .12.
    t.exec(
        "hA",
        &[
            "bash",
            "-c",
            "for i in 1 2 3 4 5; do echo x$i > /dev/udp/172.16.172.13/9; done; \
             echo y > /dev/udp/172.16.172.11/9; echo z > /dev/udp/172.16.172.12/9",
        ],
    );
    let sent_at = Instant::now();

    // While they wait, other traffic flows.
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "10", "-i", "0.1", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(received(&out), 10, "forwarding goes on while frames wait");
    let mid = stats(&stats_path).unwrap();
    assert!(
        sent_at.elapsed() < Duration::from_millis(2500),
        "checked before the deadline"
    );
    assert_eq!(base(&mid, "held_for_neighbour"), 7, "{mid}");
    assert_eq!(base(&mid, "drop_neighbour_queue_full"), 2, "{mid}");
    assert_eq!(worker_sum(&mid, "neighbour_queue_len"), 5, "{mid}");
    assert_eq!(base(&mid, "drop_no_neighbour"), 0, "{mid}");

    // After the deadline: dropped, counted, nothing left behind.
    let s = wait_for("held frames to time out", Duration::from_secs(5), || {
        let s = stats(&stats_path)?;
        (worker_sum(&s, "neighbour_queue_len") == 0).then_some(s)
    });
    assert!(
        sent_at.elapsed() >= Duration::from_millis(2900),
        "held until the deadline"
    );
    assert_eq!(base(&s, "drop_no_neighbour"), 5, "{s}");
    assert_eq!(base(&s, "drop_neighbour_queue_full"), 2, "{s}");
    assert_eq!(
        worker_sum(&s, "held_for_neighbour"),
        worker_sum(&s, "released_for_neighbour")
            + worker_sum(&s, "drop_no_neighbour")
            + worker_sum(&s, "drop_neighbour_queue_full"),
        "every held frame accounted for: {s}"
    );
    // The 10 requests towards hostB; nothing towards the dead addresses.
    assert_eq!(base(&s, "tx_outside"), 10, "{s}");
    assert_eq!(base(&s, "released_for_neighbour"), 0, "{s}");
    assert_eq!(worker_sum(&s, "xsk_fill_ring_empty"), 0, "{s}");

    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(received(&out), 3, "still forwarding afterwards");
    assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
}
