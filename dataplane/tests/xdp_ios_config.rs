//! espgw-dataplane driven by the IOS configuration alone (`--config`, no
//! `--inside/--outside/--acl`): the interface with the crypto map becomes the
//! outside, the other addressed one the inside, and the real XDP classifier
//! applies the crypto maps' ACLs with the IOS meaning (a `deny` in one entry
//! hands the packet to the next entry). Editing the file reloads the rules.
//! Run in clear (`--no-esp`) so the classifier's verdicts are seen through its
//! own counters: steered to the worker, or passed to the kernel by a deny.
//! R2 answers in clear, so the outside's inbound check is off here
//! (`--no-inbound-check`); xdp_inbound_policy.rs tests it.

mod xdp_support;

use std::time::Duration;
use xdp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

/// Entry 10 denies ICMP and permits the rest of 10.1.1.0/24 -> 10.1.2.0/24;
/// entry 20's ACL is `acl120`. Interfaces are named as IOS would name them
/// and mapped with --interface-map, as an operator does.
fn config(acl120: &str) -> String {
    r1_two_entry_config(&format!(
        "access-list 110 deny icmp any any\n\
         access-list 110 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255\n\
         {acl120}"
    ))
}

#[test]
fn xdp_interfaces_and_rules_from_the_ios_configuration() {
    let t = Topology::new("ios", 1);
    let (mut dp, conf, stats_path) = dataplane_from_config(
        &t,
        &config("access-list 120 deny udp any any"),
        &["--no-esp", "--no-inbound-check"],
    );
    let log = dp.log_text();
    assert!(
        log.contains("inside in0") && log.contains("outside out0") && log.contains("3 ACL rule(s)"),
        "{log}"
    );
    let s = stats(&stats_path).unwrap();
    assert_eq!(s["inside"]["ifname"], "in0", "{s}");
    assert_eq!(s["outside"]["ifname"], "out0", "{s}");

    // Three pings from hostA; all answered; the inside classifier's (steered,
    // pass_acl_deny) counts they moved. The stats file is rewritten every 200 ms.
    let pings = || {
        std::thread::sleep(Duration::from_millis(400));
        let before = stats(&stats_path).unwrap();
        let out = t.exec_output(
            "hA",
            &["ping", "-c", "3", "-i", "0.05", "-W", "1", "10.1.2.2"],
        );
        assert_eq!(
            received(&out),
            3,
            "ICMP flows, through the kernel or the worker"
        );
        std::thread::sleep(Duration::from_millis(400));
        let s = stats(&stats_path).unwrap();
        let delta =
            |name: &str| xdp_packets(&s, "inside", name) - xdp_packets(&before, "inside", name);
        (delta("steered"), delta("pass_acl_deny"))
    };

    // ICMP: entry 10 denies it, entry 20 does not permit it: the kernel forwards it.
    let _ = t.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
    assert_eq!(pings(), (0, 3));

    // The operator adds a permit to entry 20: ICMP denied by entry 10 is now
    // protected by entry 20 (IOS: a deny only leaves its own entry).
    reload_config(
        &dp,
        &conf,
        &config("access-list 120 permit icmp 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255"),
        3,
    );
    assert_eq!(pings(), (3, 0));

    // A broken edit keeps the rules in force and says why, with the line.
    std::fs::write(
        &conf,
        config("access-list 120 permit icmp 10.1.1.0 0.0.255.0 10.1.2.0 0.0.0.255"),
    )
    .unwrap();
    wait_for("the reload error", Duration::from_secs(5), || {
        let log = dp.log_text();
        (log.contains("crypto ACL not reloaded")
            && log.contains("line 22: access-list 120: wildcard 0.0.255.0 is not contiguous"))
        .then_some(())
    });
    let out = t.exec_output(
        "hA",
        &["ping", "-c", "2", "-i", "0.05", "-W", "1", "10.1.2.2"],
    );
    assert_eq!(received(&out), 2);

    assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
    assert!(!t.xdp_attached("r1"));
}

#[test]
fn a_configuration_the_dataplane_cannot_serve_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("espgw-ioscfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("r1.conf");
    // Ethernet1/0 carries the crypto map but is not mapped to a Linux interface.
    std::fs::write(&conf, config("access-list 120 deny udp any any")).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--no-esp", "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 15: interface Ethernet1/0: no Linux interface; map it with --interface-map Ethernet1/0=LINUXNAME"),
        "{err}"
    );
    let out = std::process::Command::new(BIN)
        .args(["--no-esp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("give --config, or both --inside and --outside"));
    std::fs::remove_dir_all(&dir).unwrap();
}
