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
use espgw_control::metrics::{self, Metrics, Sources};
use espgw_sadb::{
    AuthKey, Direction, DropReason, EncKey, GlobalCounter, Ipv4Prefix, MapName, Mode,
    ProxyIdentity, SaDb, SaDbWriter, SaRecord, TransformId,
};

/// A region file in the temp dir, removed when the test ends (failed or not).
struct RegionFile(PathBuf);
impl RegionFile {
    fn new(tag: &str) -> RegionFile {
        let name = format!("espgw-metrics-{tag}-{}.sadb", std::process::id());
        RegionFile(std::env::temp_dir().join(name))
    }
}
impl Drop for RegionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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
        transform: if seq.is_multiple_of(2) {
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
    let d = RegionFile::new("region");
    let mut w = SaDb::create(&d.0, 64).unwrap();
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
    let e = w
        .entries()
        .into_iter()
        .find(|e| e.record.spi == 0x2001)
        .unwrap();
    w.reader()
        .counters(e.slot)
        .unwrap()
        .add_drop(DropReason::Replay, 3);
    w.reader()
        .counters(e.slot)
        .unwrap()
        .add_drop(DropReason::Auth, 2);
    w.reader().global().add_drop(DropReason::NoSa, 11);
    w.reader().global().add(GlobalCounter::SaRequestPosted, 4);

    // A second process's view: the region opened by path, as an exporter would.
    let mut r = Metrics::new(Sources {
        region: Some(SaDb::open(&d.0).unwrap()),
        ike: None,
        dataplane_stats: None,
    });
    let text = r.scrape();
    let l1 = r#"peer="172.16.172.20",map="vpn",seq="10""#;
    let l2 = r#"peer="192.0.2.7",map="vpn",seq="21""#;
    for want in [
        "# HELP espgw_ipsec_sa_packets ".to_string(),
        "# TYPE espgw_ipsec_sa_packets counter".to_string(),
        format!(
            r#"espgw_ipsec_sa_packets_total{{{l1},spi="0x1001(4097)",direction="inbound",transform="esp-3des esp-md5-hmac"}} 7"#
        ),
        format!(
            r#"espgw_ipsec_sa_packets_total{{{l1},spi="0x1002(4098)",direction="outbound",transform="esp-3des esp-md5-hmac"}} 9"#
        ),
        format!(
            r#"espgw_ipsec_sa_bytes_total{{{l1},spi="0x1002(4098)",direction="outbound",transform="esp-3des esp-md5-hmac"}} 900"#
        ),
        format!(
            r#"espgw_ipsec_sa_packets_total{{{l2},spi="0x2002(8194)",direction="outbound",transform="esp-aes 256 esp-sha-hmac"}} 1000000"#
        ),
        format!(
            r#"espgw_ipsec_sa_packets_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac"}} 0"#
        ),
        format!(
            r#"espgw_ipsec_sa_drops_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac",reason="replay"}} 3"#
        ),
        format!(
            r#"espgw_ipsec_sa_drops_total{{{l2},spi="0x2001(8193)",direction="inbound",transform="esp-aes 256 esp-sha-hmac",reason="auth"}} 2"#
        ),
        r#"espgw_dataplane_drops_total{reason="no-sa"} 11"#.to_string(),
        r#"espgw_dataplane_drops_total{reason="tx-ring-full"} 0"#.to_string(),
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
    // Drop reasons that counted nothing have no series.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("espgw_ipsec_sa_drops_total{"))
            .count(),
        2
    );
    // Nothing secret: no key bytes in any spelling.
    for k in ["a7a7a7a7", "A7A7A7A7", "5c5c5c5c", "5C5C5C5C", "167, 167"] {
        assert!(!text.contains(k), "key material {k} in the scrape");
    }
    // A deleted SA leaves the scrape.
    let gone = w
        .entries()
        .into_iter()
        .find(|e| e.record.spi == 0x1001)
        .unwrap();
    w.delete(gone.slot).unwrap();
    assert!(!r.scrape().contains("4097"));
}

/// Both routers' endpoints from the slides' configurations; `a` (R1) initiates and the
/// datagrams go back and forth until neither has anything left to send. R1's events.
fn negotiate(a: &mut Endpoint, b: &mut Endpoint) -> Vec<Event> {
    let now = Instant::now();
    assert!(a.initiate(now, "vpn", 10));
    let mut events = Vec::new();
    for _ in 0..100 {
        let mut quiet = true;
        for a_sends in [true, false] {
            let (from, to) = if a_sends {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            while let Some(t) = from.poll_transmit() {
                quiet = false;
                to.handle_datagram(now, t.remote, t.local, &t.data);
            }
        }
        while let Some(e) = a.poll_event() {
            events.push(e);
        }
        if quiet {
            return events;
        }
    }
    panic!("the negotiation never settled");
}

fn endpoint(text: &str, seed: u64) -> (Endpoint, espgw_control::config::Config) {
    let parsed = parse_config(text, &InterfaceMap::default()).unwrap();
    let ikecfg = ike::ios::ike_config(&parsed.config, false).unwrap();
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    (Endpoint::new(ikecfg, Box::new(RandRng(rng))), parsed.config)
}

/// `GET /metrics` over a plain TCP connection: (status line, content type, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// `GET /metrics` as HTTP/1.1 (as Prometheus sends it): (response head, body).
fn http11_get(addr: std::net::SocketAddr) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_string())
}

/// Every sample of a scrape as Python's `prometheus_client` parser reads it:
/// (name, labels, value).
fn python_parse(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    espgw_lab::metrics::parse(text)
        .expect("the Python parser refused the scrape")
        .into_iter()
        .map(|s| (s.name, s.labels, s.value))
        .collect()
}

/// Every metric deploy/grafana/espgw-dashboard.json queries is a family the endpoint
/// describes (`# TYPE`), so a renamed series cannot silently empty a panel.
fn dashboard_queries_served_metrics(scrape: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/espgw-dashboard.json"
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let mut queried = std::collections::BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("espgw_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                queried.insert(name);
            }
        }
    }
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            scrape.contains(&format!("# TYPE {family} ")),
            "the dashboard queries {name}, which espgw does not serve"
        );
    }
}

/// The number after `label` in a `show` screen line.
fn shown(screen: &str, label: &str) -> u64 {
    let at = screen
        .find(label)
        .unwrap_or_else(|| panic!("{label} in\n{screen}"))
        + label.len();
    screen[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn endpoint_scrape_parsed_by_prometheus_client_matches_show_crypto_ipsec_sa() {
    let d = RegionFile::new("endpoint");
    let (mut a, config) = endpoint(espgw_control::config::slides::SLIDES_R1, 1);
    let (mut b, _) = endpoint(espgw_control::config::slides::SLIDES_R2, 2);
    let events = negotiate(&mut a, &mut b);
    let w = SaDb::create(&d.0, 64).unwrap();
    let daemon = Daemon::new(a, config, SaSync::new(Some(w), 64), None);
    let mut sink = Sink(daemon.clone());
    let mut spis = None;
    for e in events {
        if let Event::IpsecSaUp { inbound, outbound } = &e {
            spis = Some((inbound.spi, outbound.spi));
        }
        sink.event(e);
    }
    let (in_spi, out_spi) = spis.expect("R1 brought IPsec SAs up");
    // The data plane's counts: 17 packets in, 23 out, 2 replays.
    let region = daemon.sa().reader().unwrap();
    let snap = region.snapshot_all().unwrap();
    assert_eq!(snap.entries.len(), 2);
    for e in &snap.entries {
        let c = region.counters(e.slot).unwrap();
        match e.record.direction {
            Direction::Inbound => {
                c.add_packets(17, 17 * 84);
                c.add_drop(DropReason::Replay, 2);
            }
            Direction::Outbound => c.add_packets(23, 23 * 84),
        }
    }

    let server = metrics::serve(
        "127.0.0.1:0".parse().unwrap(),
        &daemon,
        // No data plane runs here: the worker families are described, with no series (the
        // lab's e2e_espgw_pair checks them against a running one).
        Some(d.0.with_extension("no-dataplane.json")),
    )
    .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let (status, ctype, body) = http_get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(http_get(addr, "/").0.contains("404"));
    // To HTTP/1.1 too, the body as it is with its length (tiny_http would chunk it).
    let (head, body11) = http11_get(addr);
    assert!(
        head.contains(&format!("content-length: {}", body11.len())),
        "{head}"
    );
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(body11.ends_with("# EOF\n"));

    let samples = python_parse(&body);
    let sa = |name: &str, spi: u32| -> f64 {
        let spi = espgw_sadb::ios_spi(spi);
        let hits: Vec<_> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == name && l.get("spi") == Some(&spi) && !l.contains_key("reason")
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name} {spi}: {hits:?}");
        let l = &hits[0].1;
        assert_eq!(l["peer"], "172.16.172.20");
        assert_eq!(l["map"], "vpn");
        assert_eq!(l["seq"], "10");
        assert_eq!(l["transform"], "esp-3des esp-md5-hmac");
        hits[0].2
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let screen = show::render(&rt.block_on(daemon.handle(Request::ShowIpsecSa))).unwrap();
    assert!(screen.contains(&format!(
        "current outbound spi: {}",
        espgw_sadb::ios_spi(out_spi)
    )));
    assert!(screen.contains(&format!("spi: {}", espgw_sadb::ios_spi(in_spi))));
    assert_eq!(shown(&screen, "#pkts encaps:"), 23);
    assert_eq!(shown(&screen, "#pkts decaps:"), 17);
    assert_eq!(
        sa("espgw_ipsec_sa_packets_total", out_spi),
        shown(&screen, "#pkts encaps:") as f64
    );
    assert_eq!(
        sa("espgw_ipsec_sa_packets_total", in_spi),
        shown(&screen, "#pkts decaps:") as f64
    );
    assert_eq!(sa("espgw_ipsec_sa_bytes_total", in_spi), (17 * 84) as f64);
    let replay = samples
        .iter()
        .find(|(n, l, _)| {
            n == "espgw_ipsec_sa_drops_total"
                && l.get("reason").map(String::as_str) == Some("replay")
                && l.get("direction").map(String::as_str) == Some("inbound")
        })
        .unwrap();
    assert_eq!(replay.2, 2.0);

    // IKE: one ISAKMP SA in QM_IDLE; one negotiation of each phase, both succeeded.
    let one = |name: &str, want: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .unwrap_or_else(|| panic!("{name} {want:?}"))
            .2
    };
    assert_eq!(one("espgw_ike_sas", &[("state", "QM_IDLE")]), 1.0);
    assert_eq!(one("espgw_ike_sas", &[("state", "MM_NO_STATE")]), 0.0);
    for (phase, result, v) in [
        ("1", "started", 1.0),
        ("1", "succeeded", 1.0),
        ("1", "failed", 0.0),
        ("2", "started", 1.0),
        ("2", "succeeded", 1.0),
    ] {
        assert_eq!(
            one(
                "espgw_ike_negotiations_total",
                &[("phase", phase), ("result", result)]
            ),
            v,
            "phase {phase} {result}"
        );
    }
    assert_eq!(
        one("espgw_dataplane_drops_total", &[("reason", "no-sa")]),
        0.0
    );
    // Nothing half-open once the negotiation is done; each phase's setup in the histogram
    // (sans-IO, all at one instant: in the lowest bucket).
    assert_eq!(one("espgw_ike_half_open", &[]), 0.0);
    for phase in ["1", "2"] {
        assert_eq!(
            one("espgw_ike_setup_seconds_count", &[("phase", phase)]),
            1.0
        );
        assert_eq!(
            one(
                "espgw_ike_setup_seconds_bucket",
                &[("phase", phase), ("le", "0.002")]
            ),
            1.0
        );
        assert_eq!(
            one(
                "espgw_ike_setup_seconds_bucket",
                &[("phase", phase), ("le", "+Inf")]
            ),
            1.0
        );
    }
    dashboard_queries_served_metrics(&body);
    // HELP and TYPE for every family.
    for fam in [
        "espgw_ipsec_sa_packets",
        "espgw_ike_sas",
        "espgw_dataplane_sa_request",
    ] {
        assert!(
            body.contains(&format!("# HELP {fam} ")) && body.contains(&format!("# TYPE {fam} ")),
            "{fam}"
        );
    }
    // Dropped, the endpoint stops listening (tiny_http's accept thread closes the socket
    // a moment after).
    drop(server);
    let closed = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    });
    assert!(closed, "still listening on {addr}");
}

/// R1 and R2 of the slides, R2 with another pre-shared key, on a virtual clock until
/// neither has a timer left (R1 retransmits MM5 until it gives up).
fn negotiate_with_a_wrong_key() -> (Endpoint, Endpoint) {
    let wrong = espgw_control::config::slides::SLIDES_R2
        .replace("crypto isakmp key C!scO", "crypto isakmp key Wr0ng");
    assert_ne!(wrong, espgw_control::config::slides::SLIDES_R2);
    let (mut a, _) = endpoint(espgw_control::config::slides::SLIDES_R1, 5);
    let (mut b, _) = endpoint(&wrong, 6);
    let start = Instant::now();
    let mut now = start;
    assert!(a.initiate(now, "vpn", 10));
    for _ in 0..10_000 {
        for a_sends in [true, false] {
            let (from, to) = if a_sends {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            while let Some(t) = from.poll_transmit() {
                to.handle_datagram(now, t.remote, t.local, &t.data);
            }
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= start + Duration::from_secs(600) => {
                now = now.max(t);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            _ => return (a, b),
        }
    }
    panic!("the timers never ran out");
}

/// `espgw_ike_negotiations_total` of an endpoint's scrape as the Python parser reads
/// it: (phase, result, reason) → value.
fn negotiations(ep: Endpoint) -> std::collections::BTreeMap<(String, String, String), f64> {
    let mut m = Metrics::new(Sources {
        region: None,
        ike: Some(espgw_control::driver::Shared::new(ep)),
        dataplane_stats: None,
    });
    python_parse(&m.scrape())
        .into_iter()
        .filter(|(n, _, _)| n == "espgw_ike_negotiations_total")
        .map(|(_, l, v)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            ((get("phase"), get("result"), get("reason")), v)
        })
        .collect()
}

#[test]
fn a_wrong_pre_shared_key_is_a_failed_negotiation_labelled_auth_failed() {
    let (a, b) = negotiate_with_a_wrong_key();
    assert_eq!((a.isakmp_sa_count(), b.isakmp_sa_count()), (0, 0));
    let failed = |n: &std::collections::BTreeMap<(String, String, String), f64>| {
        n.iter()
            .filter(|((_, r, _), v)| r == "failed" && **v > 0.0)
            .map(|((p, _, reason), v)| (p.clone(), reason.clone(), *v))
            .collect::<Vec<_>>()
    };
    let key = |p: &str, r: &str, reason: &str| (p.to_string(), r.to_string(), reason.to_string());
    // R2 could not read R1's MM5 under its keys, five times: one failure, auth_failed.
    let nb = negotiations(b);
    assert_eq!(nb[&key("1", "started", "")], 1.0);
    assert_eq!(nb[&key("1", "succeeded", "")], 0.0);
    assert_eq!(failed(&nb), vec![("1".into(), "auth_failed".into(), 1.0)]);
    // R1 heard nothing it could read back and gave up after its retransmissions.
    let na = negotiations(a);
    assert_eq!(na[&key("1", "started", "")], 1.0);
    assert_eq!(
        failed(&na),
        vec![("1".into(), "retransmissions_exhausted".into(), 1.0)]
    );
    // Every reason of every phase has its series, 0 until it happens.
    for phase in ["1", "1.5", "2"] {
        for reason in [
            "no_proposal_chosen",
            "auth_failed",
            "xauth_failed",
            "pool_exhausted",
        ] {
            assert!(
                na.contains_key(&key(phase, "failed", reason)),
                "{phase} {reason}"
            );
        }
    }
}

/// One scrape of 10,000 SAs (issue 16: under 10 ms), over HTTP as a scraper sees it and
/// the encoding alone. `cargo test -p espgw-control --test metrics_scrape -- --ignored
/// --nocapture` (on a shared, loaded box, the binary under `chrt -f 10` for a core of its
/// own); the numbers go to `perf/results/metrics-scrape.txt`.
#[test]
#[ignore]
fn scrape_time_with_10000_sas() {
    const SAS: u32 = 10_000;
    let d = RegionFile::new("bench");
    let mut w = SaDb::create(&d.0, SAS).unwrap();
    for i in 0..SAS {
        let dir = if i.is_multiple_of(2) {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let peer = Ipv4Addr::from(0xC000_0200 + i / 2);
        let slot = w
            .install(&record(0x1000_0000 + i, dir, peer, "vpn", 10 + i / 2))
            .unwrap();
        let n = u64::from(i) * 1000;
        w.reader().counters(slot).unwrap().add_packets(n, n * 100);
    }
    let mut r = Metrics::new(Sources {
        region: Some(SaDb::open(&d.0).unwrap()),
        ike: None,
        dataplane_stats: None,
    });
    let runs = 15;
    let reader = SaDb::open(&d.0).unwrap();
    let mut snap: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(reader.snapshot_all().unwrap().entries.len(), SAS as usize);
            t.elapsed()
        })
        .collect();
    snap.sort();
    // As the endpoint does it: one buffer kept from scrape to scrape.
    let mut buf = String::new();
    let mut enc: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            r.scrape_into(&mut buf);
            let e = t.elapsed();
            assert!(buf.len() > 1_000_000);
            e
        })
        .collect();
    let bytes = r.scrape().len();
    let server = metrics::http::MetricsServer::start("127.0.0.1:0".parse().unwrap(), r).unwrap();
    let mut http: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let (_, _, body) = http_get(server.local_addr(), "/metrics");
            let e = t.elapsed();
            assert_eq!(body.len(), bytes);
            e
        })
        .collect();
    enc.sort();
    http.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "metrics scrape, {SAS} SAs ({} series, {bytes} bytes, no drops): encode median {:.2} ms (min {:.2}, max {:.2}); HTTP GET median {:.2} ms (min {:.2}, max {:.2}); {runs} runs each; of which reading the region (snapshot) median {:.2} ms",
        SAS as usize * 2,
        ms(enc[runs / 2]),
        ms(enc[0]),
        ms(enc[runs - 1]),
        ms(http[runs / 2]),
        ms(http[0]),
        ms(http[runs - 1]),
        ms(snap[runs / 2]),
    );
}
