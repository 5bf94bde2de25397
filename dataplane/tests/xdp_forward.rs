//! espgw-dataplane as a plain forwarder on R1 (no crypto): interesting
//! traffic (the crypto ACL) is steered by XDP to the AF_XDP workers and
//! forwarded by them towards the kernel's next hop; the rest still goes
//! through the kernel; counters agree; nothing is left behind.
//! R2 is a plain router, so hostB's answers come back in clear: where a test
//! needs them, the dataplane runs with `--no-inbound-check` (the outside
//! would otherwise drop them, as it must in production; see
//! xdp_inbound_policy.rs).

mod xdp_support;

use std::time::Duration;
use xdp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

#[test]
fn xdp_plain_forwarder_two_workers() {
    let t = Topology::new("f", 2);
    let (mut dp, stats_path) = plain_dataplane(
        &t,
        &[
            "--no-inbound-check",
            "--cores",
            "0,1",
            "--acl",
            "deny udp any any dport 5999 policy 10",
            "--acl",
            "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10",
        ],
        "dataplane.log",
    );
    assert!(t.xdp_attached("r1"), "XDP programs attached on R1");
    assert!(
        dp.log_text().contains("2 worker(s)"),
        "two workers: {}",
        dp.log_text()
    );

    // Warm-up: the first packet waits in the hold queue while the next hop
    // resolves. It is answered within milliseconds, so let the stats file
    // (written every 200 ms) catch up before taking the baseline.
    let _ = t.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
    std::thread::sleep(Duration::from_millis(500));
    let s0 = wait_for("stats", Duration::from_secs(2), || stats(&stats_path));
    let steered0 = xdp_packets(&s0, "inside", "steered");
    let tx0 = worker_sum(&s0, "tx_outside");

    let out = t.exec_output(
        "hA",
        &["ping", "-c", "20", "-i", "0.02", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(
        received(&out),
        20,
        "ping through the dataplane: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Two routers decrement the TTL on the way back and forth: R1 (the
    // dataplane) and R2 on requests; replies return through both kernels.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ttl=62"),
        "TTL decremented"
    );

    // TTL 1: the dataplane answers with "time exceeded" from R1's inside address.
    // (The first may go unanswered while R1 learns its way back to hostA.)
    let out = t.exec_output(
        "hA",
        &[
            "ping", "-c", "2", "-i", "0.2", "-t", "1", "-W", "1", "10.1.2.2",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("From 10.1.1.1") && text.contains("Time to live exceeded"),
        "ICMP time exceeded: {text}"
    );

    // Not interesting: R1 and R2's addresses, and the UDP port the ACL denies.
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "172.16.172.20"],
    );
    assert_eq!(
        received(&out),
        3,
        "kernel forwarding of non-interesting traffic"
    );
    let _ = t.exec_output(
        "hA",
        &[
            "bash",
            "-c",
            "for i in 1 2 3; do echo x > /dev/udp/10.1.2.2/5999; done",
        ],
    );

    std::thread::sleep(Duration::from_millis(500));
    let s = stats(&stats_path).unwrap();
    let steered = xdp_packets(&s, "inside", "steered") - steered0;
    let tx = worker_sum(&s, "tx_outside") - tx0;
    assert_eq!(steered, 22, "every echo request steered, nothing else: {s}");
    assert_eq!(
        tx, 20,
        "every steered request with TTL > 1 forwarded by a worker: {s}"
    );
    assert_eq!(worker_sum(&s, "drop_ttl_exceeded"), 2, "{s}");
    assert!(worker_sum(&s, "icmp_sent") >= 1, "{s}");
    assert_eq!(
        xdp_packets(&s, "inside", "pass_acl_deny"),
        3,
        "denied UDP went to the kernel: {s}"
    );
    assert!(
        xdp_packets(&s, "inside", "pass_no_match") >= 3,
        "pings to R2 went to the kernel: {s}"
    );
    assert!(
        xdp_packets(&s, "outside", "pass_other") >= 20,
        "replies (plain ICMP) pass on the outside: {s}"
    );
    assert_eq!(xdp_packets(&s, "inside", "drop_no_xsk"), 0);
    assert_eq!(worker_sum(&s, "drop_malformed"), 0);

    // A clean stop detaches everything.
    assert!(
        dp.signal_and_wait("-TERM", Duration::from_secs(5)),
        "dataplane stops on SIGTERM"
    );
    assert!(!t.xdp_attached("r1"), "no XDP program left after SIGTERM");
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "2", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(
        received(&out),
        2,
        "kernel forwards again once the dataplane is gone"
    );

    // A crash fails closed: the classifiers stay attached with no socket
    // behind them, so interesting traffic is dropped rather than forwarded by
    // the kernel in clear, while the rest still flows; a restart takes over,
    // and --detach clears the leftovers.
    let (mut dp, _) = plain_dataplane(
        &t,
        &["--acl", "permit ip 10.1.1.0/24 10.1.2.0/24"],
        "dataplane2.log",
    );
    assert!(t.xdp_attached("r1"));
    assert!(dp.signal_and_wait("-KILL", Duration::from_secs(5)));
    assert!(t.xdp_attached("r1"), "classifiers stay after a crash");
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(
        received(&out),
        0,
        "interesting traffic is dropped, not leaked, while the dataplane is down"
    );
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "2", "-i", "0.05", "-W", "1", "172.16.172.20"],
    );
    assert_eq!(
        received(&out),
        2,
        "non-interesting traffic still flows through the kernel"
    );

    let (mut dp, _) = plain_dataplane(
        &t,
        &[
            "--no-inbound-check",
            "--acl",
            "permit ip 10.1.1.0/24 10.1.2.0/24",
        ],
        "dataplane3.log",
    );
    let _ = t.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(
        received(&out),
        3,
        "a new dataplane takes over the attached classifiers"
    );
    assert!(dp.signal_and_wait("-KILL", Duration::from_secs(5)));
    t.exec(
        "r1",
        &[BIN, "--inside", "in0", "--outside", "out0", "--detach"],
    );
    assert!(!t.xdp_attached("r1"), "--detach removes the leftovers");
}

fn cpu_ticks(pid: u32) -> u64 {
    // utime + stime of every thread, from /proc/PID/stat (fields 14 and 15).
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// The crypto ACL comes from control's policy file and is re-read when the
/// file changes; an idle dataplane backs off instead of spinning.
#[test]
fn xdp_policy_file_reload_and_idle_backoff() {
    use espgw_dataplane::xdp::acl::{write_policy_file, AclRule};
    let t = Topology::new("p", 1);
    let policy = t.dir.join("policy");
    let permit: AclRule = "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP"
        .parse()
        .unwrap();
    write_policy_file(&policy, &[permit]).unwrap();
    let (mut dp, stats_path) = plain_dataplane(
        &t,
        &["--no-inbound-check", "--policy", policy.to_str().unwrap()],
        "dataplane.log",
    );

    // Idle: the worker blocks in poll(2) after a short spin.
    let pid = dp.pid();
    let (t0, c0) = (std::time::Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(2));
    let ticks_per_s = 100.0; // USER_HZ
    let used = (cpu_ticks(pid) - c0) as f64 / ticks_per_s / t0.elapsed().as_secs_f64();
    assert!(
        used < 0.2,
        "idle dataplane uses {:.0}% of a core",
        used * 100.0
    );

    let _ = t.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(received(&out), 3);
    std::thread::sleep(Duration::from_millis(400));
    let s = stats(&stats_path).unwrap();
    assert!(xdp_packets(&s, "inside", "steered") >= 3, "{s}");
    assert_eq!(xdp_packets(&s, "inside", "pass_acl_deny"), 0);

    // Control rewrites the policy: ICMP is no longer interesting.
    let deny: AclRule = "deny icmp 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP"
        .parse()
        .unwrap();
    write_policy_file(&policy, &[deny, permit]).unwrap();
    wait_for("policy reload", Duration::from_secs(5), || {
        dp.log_text()
            .contains("crypto ACL reloaded, 2 rule(s)")
            .then_some(())
    });
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(
        received(&out),
        3,
        "denied traffic still flows, through the kernel"
    );
    std::thread::sleep(Duration::from_millis(400));
    let s = stats(&stats_path).unwrap();
    assert_eq!(xdp_packets(&s, "inside", "pass_acl_deny"), 3, "{s}");
    assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
    assert!(!t.xdp_attached("r1"));
}
