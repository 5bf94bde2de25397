//! espgw-dataplane ↔ espgw-dataplane across R1/R2 with SAs installed straight
//! into each router's SA database (static keys, no IKE): ping and iperf3
//! (TCP, four flows, and UDP) pass through the tunnel, tshark decrypts and
//! authenticates every ESP frame on the R1–R2 link, no interesting packet
//! crosses it in clear, sequence numbers are unique with two workers on one
//! SA, nothing is dropped as a replay, and a restarted dataplane resumes
//! with the SAs in the database without reusing a sequence number.

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::sadb::{
    AuthKey, Direction, EncKey, Ipv4Prefix, MapName, Mode, ProxyIdentity, SaDb, SaDbWriter,
    SaRecord, SlotId,
};
mod xdp_support;

use espgw_lab::judge::{judge, EspAuth, EspEncr, EspSaKeys};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;
use xdp_support::{wait_for, worker_sum, Proc, Topology};

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");
const R1_OUT: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const R2_OUT: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

fn net(a: [u8; 4], len: u8) -> Ipv4Prefix {
    Ipv4Prefix::new(Ipv4Addr::from(a), len)
}

struct Sa {
    spi: u32,
    enc: Vec<u8>,
    auth: Vec<u8>,
}

fn random_key(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

#[allow(clippy::too_many_arguments)]
fn record(
    sa: &Sa,
    dir: Direction,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    proxy: ProxyIdentity,
    t: Transform,
) -> SaRecord {
    SaRecord {
        spi: sa.spi,
        direction: dir,
        mode: Mode::Tunnel,
        local: SocketAddrV4::new(local, 500),
        peer: SocketAddrV4::new(peer, 500),
        udp_encap: false,
        esn: false,
        proxy,
        transform: t.code(),
        enc_key: EncKey::new(&sa.enc).unwrap(),
        auth_key: AuthKey::new(&sa.auth).unwrap(),
        lifetime_secs: 3600,
        lifetime_kb: 4_608_000,
        replay_window: 64,
        crypto_map: MapName::new("MYMAP").unwrap(),
        crypto_map_seq: 10,
        conn_id: 1,
        created_at: 1,
    }
}

fn tshark_names(t: &Transform) -> (EspEncr, EspAuth) {
    let name = t.ios_name();
    if name.contains("gcm") {
        (EspEncr::AesGcm16, EspAuth::Null)
    } else if name.contains("3des") {
        (EspEncr::TripleDesCbc, EspAuth::HmacMd5_96)
    } else {
        (EspEncr::AesCbc, EspAuth::HmacSha1_96)
    }
}

struct Router {
    _db: SaDbWriter,
    db_path: PathBuf,
    stats: PathBuf,
    out_slot: SlotId,
    dp: Option<Proc>,
    node: &'static str,
    acl: String,
}

impl Router {
    fn start(&mut self, t: &Topology) {
        let _ = std::fs::remove_file(&self.stats);
        let dp = t.spawn(
            self.node,
            &[
                BIN,
                "--inside",
                "in0",
                "--outside",
                "out0",
                "--cores",
                "0,1",
                "--sadb",
                self.db_path.to_str().unwrap(),
                "--acl",
                &self.acl,
                "--stats",
                self.stats.to_str().unwrap(),
            ],
            &format!("dataplane-{}.log", self.node),
        );
        self.dp = Some(dp);
        let stats = self.stats.clone();
        wait_for("dataplane stats", Duration::from_secs(10), || {
            read_stats(&stats)
        });
    }

    fn stats(&self) -> serde_json::Value {
        read_stats(&self.stats).unwrap()
    }

    fn log(&self) -> String {
        self.dp.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }
}

fn read_stats(p: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Sets up the lab, both SA databases and both dataplanes.
fn tunnel(tag: &str, transform: &str) -> (Topology, Router, Router, Vec<EspSaKeys>, Transform) {
    let t = Transform::parse(transform).unwrap();
    let lab = Topology::with_wire(tag, 2);
    let a = Sa {
        spi: 0x1000_0000 | rand::random::<u16>() as u32,
        enc: random_key(t.enc_key_len()),
        auth: random_key(t.auth_key_len()),
    };
    let b = Sa {
        spi: 0x2000_0000 | rand::random::<u16>() as u32,
        enc: random_key(t.enc_key_len()),
        auth: random_key(t.auth_key_len()),
    };
    let p1 = ProxyIdentity {
        local: net([10, 1, 1, 0], 24),
        remote: net([10, 1, 2, 0], 24),
        protocol: 0,
        local_port: 0,
        remote_port: 0,
    };
    let p2 = ProxyIdentity {
        local: p1.remote,
        remote: p1.local,
        ..p1
    };
    let mk = |name: &str, out: SaRecord, inb: SaRecord, node: &'static str, acl: &str| {
        let path = lab.dir.join(format!("{name}.sadb"));
        let mut db = SaDb::create(&path, 64).unwrap();
        let out_slot = db.install(&out).unwrap();
        db.install(&inb).unwrap();
        Router {
            _db: db,
            db_path: path,
            stats: lab.dir.join(format!("{name}-stats.json")),
            out_slot,
            dp: None,
            node,
            acl: acl.to_string(),
        }
    };
    let mut r1 = mk(
        "r1",
        record(&a, Direction::Outbound, R1_OUT, R2_OUT, p1, t),
        record(&b, Direction::Inbound, R1_OUT, R2_OUT, p1, t),
        "r1",
        "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP",
    );
    let mut r2 = mk(
        "r2",
        record(&b, Direction::Outbound, R2_OUT, R1_OUT, p2, t),
        record(&a, Direction::Inbound, R2_OUT, R1_OUT, p2, t),
        "r2",
        "permit ip 10.1.2.0/24 10.1.1.0/24 policy 10 map MYMAP",
    );
    r1.start(&lab);
    r2.start(&lab);
    let (encr, auth) = tshark_names(&t);
    let keys = vec![
        EspSaKeys {
            spi: a.spi,
            src: R1_OUT.to_string(),
            dst: R2_OUT.to_string(),
            encr,
            enc_key: a.enc.clone(),
            auth,
            auth_key: a.auth.clone(),
        },
        EspSaKeys {
            spi: b.spi,
            src: R2_OUT.to_string(),
            dst: R1_OUT.to_string(),
            encr,
            enc_key: b.enc.clone(),
            auth,
            auth_key: b.auth.clone(),
        },
    ];
    (lab, r1, r2, keys, t)
}

fn iperf3(lab: &Topology, args: &[&str]) -> serde_json::Value {
    let mut v = vec![
        "timeout", "30", "iperf3", "-c", "10.1.2.2", "-p", "45201", "-J", "-t", "2",
    ];
    v.extend_from_slice(args);
    let out = lab.exec_output("hA", &v);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "iperf3 output: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Frames on the link whose outer header carries an inside address (clear text).
fn clear_frames(pcap: &Path) -> usize {
    let out = xdp_support::run(&[
        "tcpdump",
        "-n",
        "-r",
        pcap.to_str().unwrap(),
        "net 10.1.0.0/16",
    ]);
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn ping(lab: &Topology, n: u32) -> usize {
    let out = lab.exec_output(
        "hA",
        &[
            "ping",
            "-c",
            &n.to_string(),
            "-i",
            "0.1",
            "-W",
            "1",
            "10.1.2.2",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("bytes from"))
        .count()
}

fn warm_up(lab: &Topology) {
    for _ in 0..20 {
        let out = lab.exec_output("hA", &["ping", "-c", "1", "-W", "1", "10.1.2.2"]);
        if out.status.success() {
            return;
        }
    }
    panic!("no reply through the tunnel after 20 tries");
}

fn run_tunnel(tag: &str, transform: &str, restart: bool) {
    let (lab, mut r1, r2, keys, t) = tunnel(tag, transform);
    let pcap = lab.dir.join("wire.pcap");
    let mut cap = lab.spawn(
        "wire",
        &[
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-n",
            "-i",
            "w1",
            "-w",
            pcap.to_str().unwrap(),
        ],
        "tcpdump.log",
    );
    wait_for("tcpdump", Duration::from_secs(5), || {
        cap.log_text().contains("listening").then_some(())
    });

    // The first packets may be lost while the routers resolve their next hops
    // (each router drops, and counts, packets for a neighbour not yet resolved).
    warm_up(&lab);
    let received = ping(&lab, 10);
    assert_eq!(
        received,
        10,
        "ping through the {transform} tunnel; R1: {} R2: {}",
        r1.log(),
        r2.log()
    );

    let _server = lab.spawn("hB", &["iperf3", "-s", "-p", "45201"], "iperf3-server.log");
    std::thread::sleep(Duration::from_millis(300));
    let tcp = iperf3(&lab, &["-P", "4"]);
    let tcp_bps = tcp["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    let udp = iperf3(&lab, &["-u", "-b", "20M", "-l", "1200"]);
    let udp_bps = udp["end"]["sum"]["bits_per_second"].as_f64().unwrap_or(0.0);
    let udp_lost = udp["end"]["sum"]["lost_percent"].as_f64().unwrap_or(100.0);
    println!(
        "{transform}: iperf3 TCP x4 {:.1} Mbit/s, UDP {:.1} Mbit/s lost {udp_lost:.2}%",
        tcp_bps / 1e6,
        udp_bps / 1e6
    );
    assert!(tcp_bps > 1e6, "TCP through the tunnel: {tcp}");
    assert!(
        udp_bps > 1e6 && udp_lost < 5.0,
        "UDP through the tunnel: {udp}"
    );

    let mut last_seq_before = 0;
    if restart {
        // Kill R1's dataplane hard and start it again: the SAs come back from the
        // region and outbound sequence numbers continue past every one used.
        let seq_used = r1._db.reader().counters(r1.out_slot).unwrap().seq_used();
        last_seq_before = seq_used;
        assert!(r1
            .dp
            .as_mut()
            .unwrap()
            .signal_and_wait("-KILL", Duration::from_secs(5)));
        r1.start(&lab);
        warm_up(&lab);
        assert_eq!(
            ping(&lab, 5),
            5,
            "ping after a dataplane restart; R1: {}",
            r1.log()
        );
    }

    std::thread::sleep(Duration::from_millis(300));
    assert!(
        cap.signal_and_wait("-INT", Duration::from_secs(5)),
        "tcpdump stops"
    );
    let v = judge(&pcap, &keys, &[]).unwrap();
    let esp: Vec<_> = v.esp().collect();
    assert!(esp.len() > 100, "ESP frames on the link: {}", esp.len());
    let bad = v.bad_esp();
    assert!(
        bad.is_empty(),
        "{} of {} ESP frames not decrypted/authenticated:\n{}",
        bad.len(),
        esp.len(),
        v.summary()
    );
    assert_eq!(
        clear_frames(&pcap),
        0,
        "interesting traffic crossed the link in clear"
    );

    // Sequence numbers: unique per SA, whichever worker sent them.
    let mut seen: HashMap<u32, std::collections::HashSet<u32>> = HashMap::new();
    for (_, e) in &esp {
        assert!(
            seen.entry(e.spi).or_default().insert(e.seq),
            "SPI {:#x} seq {} sent twice",
            e.spi,
            e.seq
        );
    }
    if restart {
        let a = keys[0].spi;
        let after: Vec<u32> = seen[&a]
            .iter()
            .copied()
            .filter(|s| u64::from(*s) > last_seq_before)
            .collect();
        assert!(
            !after.is_empty(),
            "traffic after the restart uses new sequence numbers"
        );
    }

    let (s1, s2) = (r1.stats(), r2.stats());
    for (name, s) in [("R1", &s1), ("R2", &s2)] {
        assert_eq!(
            worker_sum(s, "esp_drop_replay"),
            0,
            "{name}: false replay drops: {s}"
        );
        assert_eq!(
            worker_sum(s, "esp_drop_auth"),
            0,
            "{name}: auth failures: {s}"
        );
        assert_eq!(worker_sum(s, "drop_policy_mismatch"), 0, "{name}: {s}");
        assert!(
            worker_sum(s, "esp_encap") > 0 && worker_sum(s, "esp_decap") > 0,
            "{name}: {s}"
        );
    }
    // Per-SA counters in the region agree with the workers (give or take none: all stopped sending).
    let c1 = r1._db.reader().counters(r1.out_slot).unwrap().values();
    assert!(
        c1.packets >= worker_sum(&s1, "esp_encap"),
        "region counts R1's encapsulations: {c1:?}"
    );
    assert!(c1.seq_used >= c1.packets, "{c1:?}");
    println!(
        "{transform}: {} ESP frames judged good; R1 encap {} decap {}; workers used: {}",
        esp.len(),
        worker_sum(&s1, "esp_encap"),
        worker_sum(&s1, "esp_decap"),
        s1["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["esp_encap"].as_u64().unwrap_or(0) > 0)
            .count()
    );
    let _ = t;
}

#[test]
fn xdp_esp_3des_md5_with_restart() {
    run_tunnel("e3", "esp-3des esp-md5-hmac", true);
}

#[test]
fn xdp_esp_aes_sha() {
    run_tunnel("ea", "esp-aes esp-sha-hmac", false);
}

#[test]
fn xdp_esp_gcm() {
    run_tunnel("eg", "esp-gcm", false);
}
