//! espgw-dataplane's ESP against strongSwan 5.9.8's libipsec (ESP in UDP
//! 4500): R1 and R2 both run charon for IKE (Main Mode, PSK), then R1's
//! espgw-dataplane takes the negotiated keys into its SA database and does
//! all of R1's ESP (its XDP classifiers steer the traffic away from R1's
//! charon), while R2 stays pure strongSwan. hostA pings hostB and runs
//! iperf3; tshark on R2's out0 (no XDP there: every frame is visible)
//! decrypts and authenticates every ESP frame, none crosses in clear.

use espgw_dataplane::crypto::transform::Transform;
mod xdp_support;

use espgw_dataplane::sadb::{
    AuthKey, Direction, EncKey, Ipv4Prefix, MapName, Mode, ProxyIdentity, SaDb, SaRecord,
};
use espgw_lab::judge::{judge, Capture, EspAuth, EspEncr, EspSaKeys};
use espgw_lab::strongswan::{Profile, StrongSwan};
use espgw_lab::{Lab, LabOptions, Node};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use xdp_support::{stats, worker_sum};

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

fn ios_transform(k: &EspSaKeys) -> Transform {
    let enc = match k.encr {
        EspEncr::TripleDesCbc => "esp-3des".to_string(),
        EspEncr::AesCbc => format!("esp-aes {}", k.enc_key.len() * 8),
        EspEncr::AesGcm16 => format!("esp-gcm {}", (k.enc_key.len() - 4) * 8),
        other => panic!("no IOS transform for {other:?}"),
    };
    let auth = match k.auth {
        EspAuth::HmacMd5_96 => " esp-md5-hmac",
        EspAuth::HmacSha1_96 => " esp-sha-hmac",
        EspAuth::Null => "",
        other => panic!("no IOS transform for {other:?}"),
    };
    Transform::parse(&format!("{enc}{auth}")).unwrap()
}

fn record(k: &EspSaKeys, dir: Direction, local_port: u16, peer_port: u16) -> SaRecord {
    let r1: Ipv4Addr = "172.16.172.10".parse().unwrap();
    let r2: Ipv4Addr = "172.16.172.20".parse().unwrap();
    SaRecord {
        spi: k.spi,
        direction: dir,
        mode: Mode::Tunnel,
        local: SocketAddrV4::new(r1, local_port),
        peer: SocketAddrV4::new(r2, peer_port),
        udp_encap: true,
        esn: false,
        proxy: ProxyIdentity {
            local: Ipv4Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24),
            remote: Ipv4Prefix::new(Ipv4Addr::new(10, 1, 2, 0), 24),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        transform: ios_transform(k).id(),
        enc_key: EncKey::new(&k.enc_key).unwrap(),
        auth_key: AuthKey::new(&k.auth_key).unwrap(),
        lifetime_secs: 3600,
        lifetime_kb: 4_608_000,
        replay_window: 64,
        crypto_map: MapName::new("MYMAP").unwrap(),
        crypto_map_seq: 10,
        conn_id: 1,
        created_at: 1,
    }
}

/// iperf3 TCP from hostA to hostB (optionally capped); bits/s and the report.
fn tcp_rate(lab: &Lab, cap: Option<&str>) -> (f64, serde_json::Value) {
    let mut args = vec!["iperf3", "-c", "10.1.2.2", "-p", "45201", "-J", "-t", "2"];
    if let Some(c) = cap {
        args.extend_from_slice(&["-b", c]);
    }
    for _ in 0..10 {
        let out = lab
            .exec_timeout(Node::HostA, &args, Duration::from_secs(30))
            .unwrap();
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if j["error"].as_str().is_some_and(|e| e.contains("busy")) {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        return (
            j["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0),
            j,
        );
    }
    panic!("iperf3 server stayed busy");
}

fn run(tag: &str, esp: &str) {
    let lab = Lab::up_with(
        &Lab::unique_prefix(tag),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .unwrap();
    let r2 =
        StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2).esp(esp)).expect("charon on R2");
    let r1 =
        StrongSwan::start(&lab, Node::R1, Profile::new(Node::R1).esp(esp)).expect("charon on R1");
    r1.initiate()
        .unwrap_or_else(|e| panic!("initiate: {e}\n{}", r1.log()));
    let ike = r1
        .wait_established(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", r1.log()));
    r2.wait_established(Duration::from_secs(60)).unwrap();
    let child = ike.children.first().expect("a CHILD_SA").clone();
    assert!(child.encap, "libipsec uses ESP in UDP");

    let keys = r1.keys().unwrap().esp;
    let out_k = keys
        .iter()
        .find(|k| k.spi == child.spi_out)
        .expect("outbound keys")
        .clone();
    let in_k = keys
        .iter()
        .find(|k| k.spi == child.spi_in)
        .expect("inbound keys")
        .clone();
    let db_path = lab.dir().join("r1.sadb");
    let mut db = SaDb::create(&db_path, 16).unwrap();
    let out_slot = db
        .install(&record(
            &out_k,
            Direction::Outbound,
            ike.local_port,
            ike.remote_port,
        ))
        .unwrap();
    db.install(&record(
        &in_k,
        Direction::Inbound,
        ike.local_port,
        ike.remote_port,
    ))
    .unwrap();

    // Baseline in the same run: strongSwan's libipsec at both ends.
    let _server = lab
        .spawn(Node::HostB, &["iperf3", "-s", "-p", "45201"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (base_bps, _) = tcp_rate(&lab, None);

    // R1's libipsec has used sequence numbers on the outbound SA during the
    // baseline: move the region's counter past them, as a dataplane taking
    // over a live SA must (the restart path does the same from the region).
    let used = r1
        .list_sas()
        .unwrap()
        .iter()
        .flat_map(|i| i.children.iter())
        .filter(|c| c.spi_out == child.spi_out)
        .map(|c| c.packets_out)
        .max()
        .unwrap_or(0);
    db.reader()
        .reserve_outbound_seq(out_slot, used + 1000)
        .unwrap();

    let stats_path = lab.dir().join("r1-stats.json");
    let mut dp = lab
        .spawn(
            Node::R1,
            &[
                BIN,
                "--inside",
                "in0",
                "--outside",
                "out0",
                "--sadb",
                db_path.to_str().unwrap(),
                "--acl",
                "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP",
                "--stats",
                stats_path.to_str().unwrap(),
            ],
        )
        .unwrap();
    lab.wait_for("dataplane", Duration::from_secs(10), || {
        stats(&stats_path).is_some()
    })
    .unwrap();
    let cap = Capture::start(&lab, Node::R2, "out0").unwrap();

    let mut ok = false;
    for _ in 0..20 {
        if lab.ping(Node::HostA, "10.1.2.2", 1).unwrap().received == 1 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "no reply through espgw ↔ strongSwan; dataplane: {}\nR2: {}",
        dp.log(),
        r2.log()
    );
    let p = lab.ping(Node::HostA, "10.1.2.2", 10).unwrap();
    assert_eq!(p.received, 10, "ping through espgw ↔ strongSwan ({esp})");

    // Capped (ESPGW_IPERF_RATE, default 50M) so tshark can judge the capture.
    let rate = std::env::var("ESPGW_IPERF_RATE").unwrap_or_else(|_| "50M".into());
    let (bps, j) = tcp_rate(&lab, Some(&rate));
    assert!(bps > 1e5, "iperf3 TCP through espgw ↔ strongSwan: {j}");

    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop().unwrap();
    let (espgw_bps, _) = tcp_rate(&lab, None);
    println!(
        "{esp}: iperf3 TCP strongSwan↔strongSwan {:.1} Mbit/s | espgw-dataplane↔strongSwan {:.1} Mbit/s (same run)",
        base_bps / 1e6,
        espgw_bps / 1e6
    );
    let v = judge(&pcap, &keys, &[]).unwrap();
    let esp_frames: Vec<_> = v.esp().collect();
    assert!(esp_frames.len() > 20, "ESP frames: {}", esp_frames.len());
    assert!(esp_frames.iter().all(|(_, e)| e.udp_encap));
    let bad = v.bad_esp();
    assert!(
        bad.is_empty(),
        "{} bad ESP frames:\n{}",
        bad.len(),
        v.summary()
    );
    let clear = lab
        .run(
            Node::R2,
            &[
                "tcpdump",
                "-n",
                "-r",
                pcap.to_str().unwrap(),
                "net 10.1.0.0/16",
            ],
        )
        .unwrap();
    assert_eq!(clear.lines().count(), 0, "clear text on the link: {clear}");
    // Our outbound SPI's frames are ours (strongSwan's R1 libipsec sees no traffic).
    let ours = esp_frames
        .iter()
        .filter(|(_, e)| e.spi == child.spi_out)
        .count();
    let s = stats(&stats_path).unwrap();
    assert!(
        ours > 0 && worker_sum(&s, "esp_encap") as usize >= ours,
        "{ours} frames vs {s}"
    );
    assert!(worker_sum(&s, "esp_decap") > 0, "{s}");
    assert_eq!(
        worker_sum(&s, "drop_auth") + worker_sum(&s, "drop_replay"),
        0,
        "{s}"
    );
    let c = db.reader().counters(out_slot).unwrap().values();
    assert!(c.packets as usize >= ours, "{c:?}");
    dp.stop();
}

#[test]
fn xdp_strongswan_3des_md5() {
    run("xs3des", "3des-md5");
}

#[test]
fn xdp_strongswan_aes_sha1() {
    run("xsaes", "aes128-sha1");
}

#[test]
fn xdp_strongswan_aes_gcm() {
    run("xsgcm", "aes128gcm16");
}
