//! The metrics endpoint (issue 16): a scrape built from a real SA database region; the
//! real endpoint on 127.0.0.1 fetched over TCP, parsed by Python's `prometheus_client`
//! parser (an independent implementation) and compared with `show crypto ipsec sa` for SAs
//! two endpoints negotiated in-process; and (ignored, `--ignored --nocapture`) the time of
//! one scrape of 10,000 SAs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use espgw_control::cli::api::{ControlHandler, Request};
use espgw_control::cli::show;
use espgw_control::config::model::InterfaceMap;
use espgw_control::config::parse_config;
use espgw_control::daemon::{Daemon, SaSync, Sink};
use espgw_control::driver::DriverSink;
use espgw_control::ike::{self, crypto::RandRng, Endpoint, Event};
use espgw_control::metrics::{self, http::MetricsServer, Sources};
use espgw_sadb::{
    AuthKey, Direction, EncKey, GlobalCounter, Ipv4Prefix, MapName, Mode, ProxyIdentity, SaDb,
    SaDbWriter, SaDrop, SaRecord, TransformId,
};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("espgw-metrics-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The key bytes every test record carries: must never show in a scrape.
const ENC_KEY: [u8; 24] = [0xA7; 24];
const AUTH_KEY: [u8; 16] = [0x5C; 16];

/// One record: SA `spi` with `peer`, of crypto map `map` `seq`.
fn record(spi: u32, direction: Direction, peer: Ipv4Addr, map: &str, seq: u32) -> SaRecord {
    SaRecord {
        spi,
        direction,
        mode: Mode::Tunnel,
        local: SocketAddrV4::new(Ipv4Addr::new(172, 16, 172, 10), 500),
        peer: SocketAddrV4::new(peer, 500),
        udp_encap: false,
        esn: false,
        proxy: ProxyIdentity {
            local: Ipv4Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24),
            remote: Ipv4Prefix::new(Ipv4Addr::new(10, (spi % 250) as u8, 2, 0), 24),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
        transform: if seq % 2 == 0 {
            TransformId::Esp3desMd5
        } else {
            TransformId::EspAes256Sha
        },
        enc_key: EncKey::new(&ENC_KEY).unwrap(),
        auth_key: AuthKey::new(&AUTH_KEY).unwrap(),
        lifetime_secs: 3600,
        lifetime_kb: 4_608_000,
        replay_window: 64,
        crypto_map: MapName::new(map).unwrap(),
        crypto_map_seq: seq,
        conn_id: 2000 + spi,
        created_at: 1,
    }
}

/// Adds `packets` (and 100 bytes each) to the SA in `slot`.
fn count(w: &SaDbWriter, spi: u32, direction: Direction, packets: u64) {
    let e = w
        .entries()
        .into_iter()
        .find(|e| e.record.spi == spi && e.record.direction == direction)
        .unwrap();
    w.reader()
        .counters(e.slot)
        .unwrap()
        .add_packets(packets, packets * 100);
}

#[test]
fn scrape_of_a_region_with_several_sas() {
    let d = TempDir::new("region");
    let mut w = SaDb::create(d.0.join("sadb"), 64).unwrap();
    let p1 = Ipv4Addr::new(172, 16, 172, 20);
    let p2 = Ipv4Addr::new(192, 0, 2, 7);
    for (spi, dir, peer, seq) in [
        (0x1001, Direction::Inbound, p1, 10),
        (0x1002, Direction::Outbound, p1, 10),
        (0x2001, Direction::Inbound, p2, 21),
        (0x2002, Direction::Outbound, p2, 21),
    ] {
        w.install(&record(spi, dir, peer, "vpn", seq)).unwrap();
    }
    count(&w, 0x1001, Direction::Inbound, 7);
    count(&w, 0x1002, Direction::Outbound, 9);
    count(&w, 0x2002, Direction::Outbound, 1_000_000);
    let e = w.entries().into_iter().find(|e| e.record.spi == 0x2001).unwrap();
    w.reader().counters(e.slot).unwrap().add_drop(SaDrop::Replay, 3);
    w.reader().counters(e.slot).unwrap().add_drop(SaDrop::Auth, 2);
    w.reader().global().add(GlobalCounter::NoSa, 11);
    w.reader().global().add(GlobalCounter::SaRequestPosted, 4);

    // A second process's view: the region opened by path, as an exporter would.
    let r = metrics::registry(Sources {
        region: Some(SaDb::open(d.0.join("sadb")).unwrap()),
        ike: None,
    });
    let text = metrics::scrape(&r);
    let l1 = r#"peer="172.16.172.20",map="vpn",seq="10""#;
    let l2 = r#"peer="192.0.2.7",map="vpn",seq="21""#;
    for want in [
        "# HELP espgw_ipsec_sa_packets ".to_string(),
        "# TYPE espgw_ipsec_sa_packets counter".to_string(),
        format!(r#"espgw_ipsec_sa_packets_total{{{l1},spi="0x1001(4097)",direction="inbound",transform="esp-3des esp-md5-hmac"}} 7"#),
        format!(r#"espgw_ipsec_sa_packets_total{{{l1},spi="0x1002(4098)",direction="outbound",transform="esp-3des esp-md5-hmac"}} 9"#),
        format!(r#"espgw_ipsec_sa_bytes_total{{{l1},spi="0x1002(4098)",direction="outbound",transform="esp-3des esp-md5-hmac"}} 900"#),
        format!(r#"espgw_ipsec_sa_packets_total{{{l2},spi="0x2002(8194)",direction="outbound",transform="esp-aes 256 esp-sha-hmac"}} 1000000"#),
        format!(r#"espgw_ipsec_sa_packets_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac"}} 0"#),
        format!(r#"espgw_ipsec_sa_drops_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac",reason="replay"}} 3"#),
        format!(r#"espgw_ipsec_sa_drops_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac",reason="auth"}} 2"#),
        format!(r#"espgw_ipsec_sa_drops_total{{{l1},spi="0x1001(4097)",direction="inbound",transform="esp-3des esp-md5-hmac",reason="replay"}} 0"#),
        r#"espgw_dataplane_drops_total{reason="no-sa"} 11"#.to_string(),
        r#"espgw_dataplane_drops_total{reason="tx-full"} 0"#.to_string(),
        r#"espgw_dataplane_sa_request_total{event="posted"} 4"#.to_string(),
        "# EOF".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == want || l.starts_with(&want)),
            "missing {want:?} in\n{text}"
        );
    }
    let sa_series = text
        .lines()
        .filter(|l| l.starts_with("espgw_ipsec_sa_packets_total{"))
        .count();
    assert_eq!(sa_series, 4);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("espgw_ipsec_sa_drops_total{"))
            .count(),
        4 * SaDrop::COUNT
    );
    // Nothing secret: no key bytes in any spelling.
    for k in ["a7a7a7a7", "A7A7A7A7", "5c5c5c5c", "5C5C5C5C", "167, 167"] {
        assert!(!text.contains(k), "key material {k} in the scrape");
    }
    // A deleted SA leaves the scrape.
    let gone = w.entries().into_iter().find(|e| e.record.spi == 0x1001).unwrap();
    w.delete(gone.slot).unwrap();
    assert!(!metrics::scrape(&r).contains("4097"));
}
