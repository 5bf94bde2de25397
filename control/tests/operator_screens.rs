//! The operator screens and clears of issue 16 on a real negotiated tunnel: the slides'
//! R1 and R2 endpoints negotiate in-process (R1 inside the real daemon, with a real SA
//! database region whose counters stand in for the data plane), then R1's daemon answers
//! `show crypto isakmp peers`, `show crypto engine connections active`, `show crypto ipsec
//! sa peer|map|detail` and `show crypto session detail` with what the region counted, and
//! `clear crypto sa peer`, `clear crypto sa map` and `clear crypto session remote` send
//! DELETE to R2, which drops exactly the SAs IOS would.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use espgw_control::cli::api::{ControlHandler, IpsecSaFilter, Request, Response};
use espgw_control::cli::show;
use espgw_control::config::model::InterfaceMap;
use espgw_control::config::parse_config;
use espgw_control::daemon::{Daemon, SaSync, Sink};
use espgw_control::driver::DriverSink;
use espgw_control::ike::{self, crypto::RandRng, Endpoint, Event};
use espgw_sadb::{Direction, DropReason, SaDb};

struct RegionFile(PathBuf);
impl RegionFile {
    fn new(tag: &str) -> RegionFile {
        let name = format!("espgw-operator-{tag}-{}.sadb", std::process::id());
        RegionFile(std::env::temp_dir().join(name))
    }
}
impl Drop for RegionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const R2: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

fn endpoint(text: &str, seed: u64) -> (Endpoint, espgw_control::config::Config) {
    let parsed = parse_config(text, &InterfaceMap::parse("Ethernet1/0=out0").unwrap()).unwrap();
    let ikecfg = ike::ios::ike_config(&parsed.config, false).unwrap();
    let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    (Endpoint::new(ikecfg, Box::new(RandRng(rng))), parsed.config)
}

/// The datagrams R1 (inside the daemon) has queued: (from, to, bytes).
fn r1_sends(d: &Daemon) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    d.shared().with(|ep, _| {
        let mut v = Vec::new();
        while let Some(t) = ep.poll_transmit() {
            v.push((t.local, t.remote, t.data));
        }
        v
    })
}

/// Delivers R1's datagrams to R2 and R2's answers back until both are quiet; R2's events.
fn exchange(d: &Daemon, sink: &mut Sink, r2: &mut Endpoint) -> Vec<Event> {
    let now = Instant::now();
    let mut events = Vec::new();
    for _ in 0..100 {
        let mut quiet = true;
        for (from, to, data) in r1_sends(d) {
            quiet = false;
            r2.handle_datagram(now, to, from, &data);
        }
        while let Some(t) = r2.poll_transmit() {
            quiet = false;
            d.shared()
                .with(|ep, now| ep.handle_datagram(now, t.remote, t.local, &t.data));
        }
        while let Some(e) = r2.poll_event() {
            events.push(e);
        }
        let r1_events: Vec<Event> = d.shared().with(|ep, _| {
            let mut v = Vec::new();
            while let Some(e) = ep.poll_event() {
                v.push(e);
            }
            v
        });
        for e in r1_events {
            sink.event(e);
        }
        if quiet {
            return events;
        }
    }
    panic!("the exchange never settled");
}

fn ask(d: &Daemon, r: Request) -> Response {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(d.handle(r))
}

fn screen(d: &Daemon, r: Request) -> String {
    show::render(&ask(d, r)).unwrap()
}

/// A tunnel R1–R2 with the region's counters set: 17 in (2 replays, 1 bad ICV), 23 out.
fn tunnel(tag: &str) -> (RegionFile, std::sync::Arc<Daemon>, Sink, Endpoint) {
    let f = RegionFile::new(tag);
    let (r1, config) = endpoint(espgw_control::config::slides::SLIDES_R1, 11);
    let (mut r2, _) = endpoint(espgw_control::config::slides::SLIDES_R2, 12);
    let w = SaDb::create(&f.0, 64).unwrap();
    let daemon = Daemon::new(r1, config, SaSync::new(Some(w), 64), None);
    let mut sink = Sink(daemon.clone());
    assert!(daemon.shared().with(|ep, now| ep.initiate(now, "vpn", 10)));
    exchange(&daemon, &mut sink, &mut r2);
    assert_eq!(r2.ipsec_sas(Instant::now()).len(), 1, "R2 has the SA pair");
    let region = daemon.sa().reader().unwrap();
    for e in &region.snapshot_all().unwrap().entries {
        let c = region.counters(e.slot).unwrap();
        match e.record.direction {
            Direction::Inbound => {
                c.add_packets(17, 17 * 84);
                c.add_drop(DropReason::Replay, 2);
                c.add_drop(DropReason::Auth, 1);
            }
            Direction::Outbound => c.add_packets(23, 23 * 84),
        }
    }
    (f, daemon, sink, r2)
}

fn line_with<'a>(s: &'a str, needle: &str) -> &'a str {
    s.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} in\n{s}"))
}

#[test]
fn screens_show_the_negotiated_tunnel_and_its_counters() {
    let (_f, d, _sink, _r2) = tunnel("screens");
    assert_eq!(
        screen(&d, Request::ShowIsakmpPeers),
        "Peer: 172.16.172.20 Port: 500 Local: 172.16.172.10\n Phase1 id: 172.16.172.20\n"
    );

    // The connection ids of the engine screen are those of `show crypto ipsec sa`, and its
    // counts the region's.
    let ipsec = screen(&d, Request::ShowIpsecSa);
    let conn_ids: Vec<String> = ipsec
        .lines()
        .filter_map(|l| l.trim().strip_prefix("conn id: "))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(conn_ids.len(), 2);
    let eng = screen(&d, Request::ShowEngineConnections);
    assert!(eng.starts_with("Crypto Engine Connections\n\n   ID  Type    Algorithm"));
    let isakmp = screen(&d, Request::ShowIsakmpSa);
    let p1_conn = line_with(&isakmp, "QM_IDLE")
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    // The slides' policy: 3DES, SHA (the default hash), so the IKE row says SHA+3DES.
    let ike_row: Vec<&str> = line_with(&eng, " IKE ").split_whitespace().collect();
    assert_eq!(
        ike_row,
        [
            p1_conn.as_str(),
            "IKE",
            "SHA+3DES",
            "0",
            "0",
            "0",
            "172.16.172.10"
        ]
    );
    let inb: Vec<&str> = line_with(&eng, &format!("{}  IPsec", conn_ids[0]))
        .split_whitespace()
        .collect();
    assert_eq!(inb[1..6], ["IPsec", "3DES+MD5", "0", "17", "0"]);
    let outb: Vec<&str> = line_with(&eng, &format!("{}  IPsec", conn_ids[1]))
        .split_whitespace()
        .collect();
    assert_eq!(outb[1..5], ["IPsec", "3DES+MD5", "23", "0"]);

    // peer / map filters.
    let by_peer = screen(
        &d,
        Request::ShowIpsecSaFiltered {
            filter: IpsecSaFilter {
                peer: Some(R2),
                ..Default::default()
            },
        },
    );
    assert_eq!(by_peer, ipsec);
    let other = screen(
        &d,
        Request::ShowIpsecSaFiltered {
            filter: IpsecSaFilter {
                peer: Some(Ipv4Addr::new(192, 0, 2, 1)),
                ..Default::default()
            },
        },
    );
    assert_eq!(other, "");
    let by_map = screen(
        &d,
        Request::ShowIpsecSaFiltered {
            filter: IpsecSaFilter {
                map: Some("vpn".into()),
                ..Default::default()
            },
        },
    );
    assert_eq!(by_map, ipsec);

    // detail: the region's replays and ICV failures in IOS's counters.
    let detail = screen(
        &d,
        Request::ShowIpsecSaFiltered {
            filter: IpsecSaFilter {
                detail: true,
                ..Default::default()
            },
        },
    );
    assert!(
        detail.contains("    ##pkts replay failed (rcv): 2\n"),
        "{detail}"
    );
    assert!(detail.contains("    #pkts invalid prot (recv) 0, #pkts verify failed: 1\n"));
    assert!(detail.contains("    #pkts decaps: 17, #pkts decrypt: 17, #pkts verify: 17\n"));
    assert!(!detail.contains("#send errors"));

    let sess = screen(&d, Request::ShowCryptoSessionDetail);
    assert!(
        sess.contains("Interface: Ethernet1/0\nUptime: 00:00:0"),
        "{sess}"
    );
    assert!(sess.contains("Session status: UP-ACTIVE\nPeer: 172.16.172.20 port 500 fvrf: (none) ivrf: (none)\n      Phase1_id: 172.16.172.20\n"));
    assert!(sess.contains("  IKEv1 SA: local 172.16.172.10/500 remote 172.16.172.20/500 Active\n"));
    assert!(
        line_with(&sess, "Capabilities:").contains(&format!("connid:{p1_conn} lifetime:23:59:5"))
    );
    assert!(sess.contains("  IPSEC FLOW: permit ip 10.1.1.0/255.255.255.0 10.1.2.0/255.255.255.0\n        Active SAs: 2, origin: crypto map\n"));
    assert!(line_with(&sess, "Inbound:")
        .starts_with("        Inbound:  #pkts dec'ed 17 drop 3 life (KB/Sec) "));
    assert!(line_with(&sess, "Outbound:")
        .starts_with("        Outbound: #pkts enc'ed 23 drop 0 life (KB/Sec) "));

    let ts = screen(&d, Request::ShowTransformSets);
    assert_eq!(
        ts,
        "Transform set myset: { esp-3des esp-md5-hmac  }\n   will negotiate = { Tunnel,  },\n\n"
    );
    let dp = screen(&d, Request::ShowIsakmpDefaultPolicy);
    assert!(dp.starts_with("\nDefault IKE policy\nDefault Protection suite of priority 65535\n"));
}

/// Whether `data` is an ISAKMP Informational (exchange type 5) message.
fn informational(data: &[u8]) -> bool {
    let d = if data.starts_with(&[0, 0, 0, 0]) {
        &data[4..]
    } else {
        data
    };
    d.len() >= 28 && d[18] == 5
}

#[test]
fn clear_crypto_sa_peer_sends_delete_and_the_peer_drops_the_pair() {
    let (_f, d, mut sink, mut r2) = tunnel("clear-peer");
    // Another peer: nothing to clear, nothing sent.
    let r = ask(
        &d,
        Request::ClearCryptoSaPeer {
            peer: Ipv4Addr::new(192, 0, 2, 1),
        },
    );
    assert_eq!(r, Response::done(""));
    assert!(r1_sends(&d).is_empty());

    ask(&d, Request::ClearCryptoSaPeer { peer: R2 });
    let sent = r1_sends(&d);
    assert_eq!(sent.len(), 1, "one DELETE (for the pair's inbound SPI)");
    assert!(informational(&sent[0].2));
    let now = Instant::now();
    for (from, to, data) in sent {
        r2.handle_datagram(now, to, from, &data);
    }
    let mut r2_events = Vec::new();
    while let Some(e) = r2.poll_event() {
        r2_events.push(e);
    }
    assert!(r2_events.iter().any(|e| matches!(e, Event::IpsecSaDown { peer, .. } if *peer == Ipv4Addr::new(172, 16, 172, 10))), "R2 dropped the pair");
    assert!(r2.ipsec_sas(now).is_empty());
    // The ISAKMP SA stays on both sides (clear crypto sa is phase 2 only).
    assert!(r2.isakmp_sas().iter().any(|s| s.state == "QM_IDLE"));
    assert!(screen(&d, Request::ShowIsakmpSa).contains("QM_IDLE"));
    // And R1's region no longer holds the SAs.
    let _ = exchange(&d, &mut sink, &mut r2);
    assert!(d
        .sa()
        .reader()
        .unwrap()
        .snapshot_all()
        .unwrap()
        .entries
        .is_empty());
    assert!(!screen(&d, Request::ShowIpsecSa).contains("inbound esp sas:\n      spi"));
}

#[test]
fn clear_crypto_sa_map_and_session_remote() {
    let (_f, d, mut sink, mut r2) = tunnel("clear-map");
    let r = ask(
        &d,
        Request::ClearCryptoSaMap {
            map: "nosuch".into(),
        },
    );
    assert_eq!(r, Response::error("% Crypto map nosuch not found"));
    assert!(r1_sends(&d).is_empty());
    ask(&d, Request::ClearCryptoSaMap { map: "vpn".into() });
    let now = Instant::now();
    let sent = r1_sends(&d);
    assert_eq!(sent.len(), 1);
    for (from, to, data) in sent {
        r2.handle_datagram(now, to, from, &data);
    }
    assert!(r2.ipsec_sas(now).is_empty());

    // Bring the pair back, then clear the whole session: R2 loses the IPsec and the
    // ISAKMP SA.
    assert!(d.shared().with(|ep, now| ep.initiate(now, "vpn", 10)));
    exchange(&d, &mut sink, &mut r2);
    assert_eq!(r2.ipsec_sas(Instant::now()).len(), 1);
    ask(&d, Request::ClearCryptoSessionRemote { peer: R2 });
    let sent = r1_sends(&d);
    assert_eq!(
        sent.len(),
        2,
        "a DELETE for the pair, one for the ISAKMP SA"
    );
    assert!(sent.iter().all(|(_, _, m)| informational(m)));
    let now = Instant::now();
    for (from, to, data) in sent {
        r2.handle_datagram(now, to, from, &data);
    }
    assert!(r2.ipsec_sas(now).is_empty());
    assert!(
        !r2.isakmp_sas()
            .iter()
            .any(|s| s.state == "QM_IDLE" && s.status == "ACTIVE"),
        "{:?}",
        r2.isakmp_sas()
    );
    let sess = screen(&d, Request::ShowCryptoSessionDetail);
    assert!(!sess.contains("UP-ACTIVE"), "{sess}");
}
