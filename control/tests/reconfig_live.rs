//! Live reconfiguration in the lab (issue 16): espgw (control + data plane) as R1,
//! strongSwan as R2. While iperf3 (TCP, paced at 20 Mbit/s) and counted pings run through
//! tunnel 1 (crypto map vpn 10), `espgw configure` adds entry vpn 20 (10.1.1.0/24 ↔ 10.1.3.0/24, strongSwan's child `lab2`):
//! its tunnel comes up, tunnel 1 keeps its SPIs and its counters go on counting, and no
//! ping is lost. Configuring the old text again removes vpn 20: espgw sends DELETE and
//! strongSwan drops `lab2`, while tunnel 1 stays. Both times the data plane reloads its
//! classifier rules from the rewritten `--config` file, without a restart. A file with an
//! error is refused with its line, and nothing changes.
//!
//! Needs root (network namespaces); as non-root it is skipped with a note.

mod common;

use common::Espgw;
use espgw_lab::{Lab, LabOptions, Node, Profile, StrongSwan};
use std::time::{Duration, Instant};

/// strongSwan's configuration with a second child for 10.1.3.0/24 behind R2.
fn swan_profile() -> Profile {
    let mut p = Profile::new(Node::R2)
        .proposal("3des-md5-modp1024")
        .esp("3des-md5");
    let conf = p.swanctl_conf();
    let lab2 = concat!(
        "    children {\n      lab2 {\n        mode = tunnel\n        esp_proposals = 3des-md5\n",
        "        local_ts = 10.1.3.0/24\n        remote_ts = 10.1.1.0/24\n",
        "        start_action = none\n      }\n"
    );
    assert!(conf.contains("    children {\n"));
    p.raw_swanctl = Some(conf.replacen("    children {\n", lab2, 1));
    p
}

/// R1's configuration with entry vpn 20 added.
fn with_entry_20(base: &str) -> String {
    let entry = "crypto map vpn 20 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set myset\n match address 102\n";
    let acl = "access-list 102 permit ip 10.1.1.0 0.0.0.255 10.1.3.0 0.0.0.255\n";
    let t = base.replacen(
        "!\ninterface Ethernet0/0",
        &format!("{entry}!\ninterface Ethernet0/0"),
        1,
    );
    let t = t.replacen("!\nend\n", &format!("{acl}!\nend\n"), 1);
    assert!(t.contains(entry) && t.contains(acl), "{t}");
    t
}

/// Encapsulated and decapsulated packets of the blocks for map entry `seq`.
fn pkts(espgw: &Espgw, seq: u32) -> (u64, u64) {
    match espgw.request(espgw_control::cli::api::Request::ShowIpsecSa) {
        espgw_control::cli::api::Response::IpsecSas { sas } => sas
            .iter()
            .filter(|v| v.map_seq == seq)
            .fold((0, 0), |a, v| {
                (a.0 + v.counters.encaps, a.1 + v.counters.decaps)
            }),
        other => panic!("{other:?}"),
    }
}

fn configure(espgw: &Espgw, text: &str, name: &str) -> String {
    let f = espgw.config.with_file_name(name);
    std::fs::write(&f, text).unwrap();
    espgw.cli(&["configure", f.to_str().unwrap()])
}

#[test]
fn configure_adds_and_removes_a_tunnel_without_touching_the_first() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up_with(
        &Lab::unique_prefix("reconf"),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    // charon's libipsec installs a route for each child from a local address in its
    // local traffic selector: give R2 one in 10.1.3.0/24.
    lab.run(
        Node::R2,
        &["ip", "addr", "add", "10.1.3.1/24", "dev", "in0"],
    )
    .expect("R2 address in 10.1.3.0/24");
    let swan = StrongSwan::start(&lab, Node::R2, swan_profile()).expect("charon");
    let db = lab.dir().join("r1.sadb");
    let conf = common::IosConf {
        encr: "3des",
        hash: "md5",
        group: 2,
        transform: "esp-3des esp-md5-hmac",
        pfs: None,
        psk: "C!scO",
        lifetime_secs: None,
        keepalive: None,
        isakmp_lifetime: None,
    };
    let base = conf.text();
    let espgw = Espgw::start_full(&lab, &conf, &db);
    let dp = common::start_dataplane(&lab, &espgw, &db);
    let t0 = Instant::now();
    while lab.ping(Node::HostA, "10.1.2.2", 1).expect("ping").received != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "tunnel 1 did not come up\n{}\n{}",
            espgw.log(),
            dp.log()
        );
    }
    let tunnel1 = espgw.wait_spis(1, Duration::from_secs(5));
    let before = pkts(&espgw, 10);

    let port = (47000 + std::process::id() % 1000).to_string();
    let _iperf_server = lab
        .spawn(Node::HostB, &["iperf3", "-s", "-p", &port])
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    std::thread::scope(|s| {
        // 8 s of TCP and of pings (100/s) through tunnel 1 while the configuration changes
        // three times; the pings count every packet.
        let tcp = s.spawn(|| {
            let out = lab
                .exec_timeout(
                    Node::HostA,
                    &[
                        "iperf3", "-c", "10.1.2.2", "-p", &port, "-t", "8", "-J", "-b", "20M",
                        "-M", "1300",
                    ],
                    Duration::from_secs(30),
                )
                .expect("iperf3 client");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "iperf3: {e}
{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            v["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0)
        });
        let flood = s.spawn(|| {
            let out = lab
                .exec_timeout(
                    Node::HostA,
                    &[
                        "ping", "-n", "-q", "-c", "800", "-i", "0.01", "-W", "2", "10.1.2.2",
                    ],
                    Duration::from_secs(30),
                )
                .expect("ping flood");
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        std::thread::sleep(Duration::from_secs(1));
        let msg = configure(&espgw, &with_entry_20(&base), "r1-add.conf");
        assert!(msg.contains("1 IPsec SA pair(s) kept, 0 deleted"), "{msg}");
        // The data plane follows the rewritten --config file: entry 20's ACL is a rule.
        lab.wait_for("data plane reload", Duration::from_secs(10), || {
            dp.log().contains("crypto ACL reloaded, 2 rule(s)")
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", dp.log()));
        espgw.cli(&["initiate", "vpn", "20"]);
        let t1 = Instant::now();
        loop {
            let sas = swan.list_sas().unwrap_or_default();
            if sas
                .iter()
                .flat_map(|i| &i.children)
                .any(|c| c.name == "lab2")
            {
                break;
            }
            assert!(
                t1.elapsed() < Duration::from_secs(15),
                "lab2 not up: {sas:?}\n{}",
                espgw.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let spis = espgw.wait_spis(2, Duration::from_secs(5));
        assert!(
            tunnel1.iter().all(|p| spis.contains(p)),
            "{tunnel1:?} vs {spis:?}"
        );

        let msg = configure(&espgw, &base, "r1-remove.conf");
        assert!(msg.contains("1 IPsec SA pair(s) kept, 1 deleted"), "{msg}");
        let t2 = Instant::now();
        loop {
            let sas = swan.list_sas().unwrap_or_default();
            let children: Vec<_> = sas.iter().flat_map(|i| &i.children).collect();
            if !children.iter().any(|c| c.name == "lab2") {
                assert!(children.iter().any(|c| c.name == "lab"), "{sas:?}");
                break;
            }
            assert!(
                t2.elapsed() < Duration::from_secs(10),
                "strongSwan kept lab2: {sas:?}\n{}",
                swan.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(espgw.spis(), tunnel1, "tunnel 1's SPIs changed");
        lab.wait_for("data plane reload", Duration::from_secs(10), || {
            dp.log().contains("crypto ACL reloaded, 1 rule(s)")
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", dp.log()));
        // An error: refused with its line; tunnel 1 untouched.
        let bad = espgw.config.with_file_name("r1-bad.conf");
        std::fs::write(&bad, "crypto isakmp policy 10\n group 99\n").unwrap();
        let out = espgw.cli_output(&["configure", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("r1-bad.conf: line 2: group"),
            "{err}"
        );
        assert_eq!(espgw.spis(), tunnel1, "a refused file changed the SAs");
        let out = flood.join().unwrap();
        let bytes = tcp.join().unwrap();
        assert!(bytes > 1e6, "iperf3 moved {bytes} bytes through tunnel 1");
        eprintln!(
            "iperf3 through tunnel 1 during reconfiguration: {:.1} MB",
            bytes / 1e6
        );
        assert!(
            out.contains("800 packets transmitted, 800 received"),
            "pings lost during reconfiguration: {out}"
        );
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = pkts(&espgw, 10);
    assert!(
        after.0 >= before.0 + 800 && after.1 >= before.1 + 800,
        "tunnel 1's counters did not go on: {before:?} -> {after:?}"
    );
    assert!(espgw.log().contains("configuration no longer allows"));
    drop(dp);
}
