//! The whole gateway as R1: espgw-control negotiates with strongSwan (R2) and installs the
//! SAs in the shared-memory SA database; espgw-dataplane (XDP + AF_XDP) carries hostA's
//! traffic through them. The first pings meet no SA: the dataplane posts an sa_request and
//! espgw-control starts Main Mode by itself (the slides' `IPsec(sa_request)`). tshark on R2's
//! out0, with the keys from espgw's key log, must decrypt every ESP frame with a good ICV.

mod common;

use common::Espgw;
use espgw_lab::{judge, Capture, Lab, LabOptions, Node, Profile, StrongSwan};
use std::time::{Duration, Instant};

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn hosta_pings_hostb_through_espgw_and_strongswan_on_interesting_traffic() {
    if !root() {
        eprintln!("skipping: needs root");
        return;
    }
    let lab = Lab::up_with(
        &Lab::unique_prefix("fullstack"),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2)).expect("charon");
    let db = lab.dir().join("r1.sadb");
    let policy = lab.dir().join("r1.policy");
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
    let espgw = Espgw::start_full(&lab, &conf, &db, &policy);
    let stats = lab.dir().join("r1-stats.json");
    let dp_bin = common::dataplane_bin();
    let dp = lab
        .spawn(
            Node::R1,
            &[
                dp_bin.to_str().unwrap(),
                "--inside",
                "in0",
                "--outside",
                "out0",
                "--sadb",
                db.to_str().unwrap(),
                "--policy",
                policy.to_str().unwrap(),
                "--stats",
                stats.to_str().unwrap(),
            ],
        )
        .expect("dataplane");
    lab.wait_for("dataplane stats", Duration::from_secs(15), || {
        stats.exists()
    })
    .expect("dataplane up");
    let cap = Capture::start(&lab, Node::R2, "out0").expect("tcpdump");

    // Interesting traffic, no SA yet: the dataplane asks, espgw-control negotiates.
    let t0 = Instant::now();
    let mut up = false;
    while t0.elapsed() < Duration::from_secs(30) {
        if lab.ping(Node::HostA, "10.1.2.2", 1).expect("ping").received == 1 {
            up = true;
            break;
        }
    }
    assert!(
        up,
        "no reply through the tunnel\n--- espgw-control ---\n{}\n--- dataplane ---\n{}",
        espgw.log(),
        dp.log()
    );
    let log = espgw.log();
    assert!(
        log.contains("IPsec(sa_request)"),
        "negotiation not started by traffic:\n{log}"
    );
    let p = lab.ping(Node::HostA, "10.1.2.2", 10).expect("ping");
    assert_eq!(p.received, 10, "{p:?}");

    // SPIs agree with strongSwan; show crypto ipsec sa counts the packets.
    let sa = swan
        .wait_established(Duration::from_secs(5))
        .expect("strongSwan up");
    let spis = espgw.spis();
    assert!(
        spis.contains(&(sa.children[0].spi_out, sa.children[0].spi_in)),
        "{spis:?} vs {sa:?}"
    );
    let show = espgw.cli(&["show", "crypto", "ipsec", "sa"]);
    let encaps: u64 = show
        .lines()
        .find_map(|l| l.trim().strip_prefix("#pkts encaps: "))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(encaps >= 10, "#pkts encaps {encaps}:\n{show}");

    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop().expect("pcap");
    let (keys, ike) = espgw.keys();
    let v = judge(&pcap, &keys, &ike).expect("tshark");
    let summary = v.summary();
    let esp: Vec<_> = v.esp().collect();
    assert!(esp.len() >= 20, "ESP frames {}:\n{summary}", esp.len());
    assert!(
        v.bad_esp().is_empty(),
        "ESP not decrypted/authenticated with espgw's keys:\n{summary}"
    );
    assert_eq!(v.malformed(), 0, "{summary}");
    drop(dp);
}
