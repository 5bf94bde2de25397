//! Golden tests of the issue-16 screens, with the slides' tunnel's values (the golden
//! files are what IOS prints for that tunnel, laid out as in ios-show-formats.md and
//! public IOS output).

use super::super::api::*;
use super::*;
use crate::config::model::{InterfaceMap, IpsecMode, ProxyId};
use crate::config::parse_config;
use std::net::Ipv4Addr;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn subnet(a: &str) -> ProxyId {
    ProxyId::subnet(ip(a), ip("255.255.255.0"))
}

#[test]
fn isakmp_peers_golden() {
    let peers = [IsakmpPeerView {
        peer: ip("172.16.172.20"),
        port: 500,
        local: ip("172.16.172.10"),
        phase1_id: "172.16.172.20".into(),
    }];
    assert_eq!(
        isakmp_peers(&peers),
        include_str!("../golden/isakmp_peers.txt")
    );
}

fn conn(
    id: u32,
    kind: EngineConnectionKind,
    alg: &str,
    e: u64,
    d: u64,
    s: u64,
) -> EngineConnectionView {
    EngineConnectionView {
        id,
        kind,
        algorithm: alg.into(),
        encrypt: e,
        decrypt: d,
        last_seq: s,
        ip: ip("172.16.172.10"),
    }
}

#[test]
fn engine_connections_golden() {
    let c = [
        conn(1001, EngineConnectionKind::Ike, "SHA+3DES", 0, 0, 0),
        conn(2029, EngineConnectionKind::Ipsec, "3DES+MD5", 0, 4, 4),
        conn(2030, EngineConnectionKind::Ipsec, "3DES+MD5", 4, 0, 4),
    ];
    let got = engine_connections(&c);
    assert_eq!(got, include_str!("../golden/engine_connections.txt"));
    // Numbers end under the end of their headers; the address starts under its header.
    let lines: Vec<&str> = got.lines().collect();
    let head = lines[2];
    for (col, row) in [("Encrypt", 5), ("Decrypt", 4), ("LastSeqN", 4)] {
        let end = head.find(col).unwrap() + col.len();
        assert_eq!(&lines[row][end - 1..end], "4", "{col}");
    }
    let at = head.find("IP-Address").unwrap();
    assert_eq!(&lines[3][at..], "172.16.172.10");
    // Long values keep the columns apart.
    let wide = engine_connections(&[conn(
        65535,
        EngineConnectionKind::Ipsec,
        "AES256GCM",
        u32::MAX as u64,
        0,
        u32::MAX as u64,
    )]);
    assert!(
        wide.ends_with(
            "65535  IPsec   AES256GCM          4294967295        0 4294967295 172.16.172.10\n"
        ),
        "{wide}"
    );
}

#[test]
fn transform_sets_golden() {
    let cfg = parse_config(
        "crypto ipsec transform-set myset esp-3des esp-md5-hmac\n\
         crypto ipsec transform-set t2 esp-aes 256 esp-sha-hmac\n mode transport\n",
        &InterfaceMap::default(),
    )
    .unwrap()
    .config;
    let sets = TransformSetView::from_config(&cfg);
    assert_eq!(sets[1].mode, IpsecMode::Transport);
    assert_eq!(
        transform_sets(&sets),
        include_str!("../golden/transform_set.txt")
    );
}

#[test]
fn isakmp_default_policy_golden() {
    assert_eq!(
        isakmp_default_policy(&[crate::config::model::IsakmpPolicy::default_suite()]),
        include_str!("../golden/isakmp_default_policy.txt")
    );
}

fn slides_block(counters: IpsecCounters) -> IpsecSaView {
    let esp = |spi, conn_id: u32| EspSaView {
        spi,
        transform: "esp-3des esp-md5-hmac".into(),
        mode: IpsecMode::Tunnel,
        udp_encap: false,
        conn_id,
        flow_id: conn_id % 1000,
        crypto_map: "vpn".into(),
        remaining_kb: 4608000,
        remaining_secs: 3542,
        iv_size: 8,
        replay_detection: true,
        status: EspSaStatus::Active,
    };
    IpsecSaView {
        interface: "Ethernet1/0".into(),
        map_tag: "vpn".into(),
        map_seq: 10,
        local_addr: ip("172.16.172.10"),
        local_ident: subnet("10.1.1.0"),
        remote_ident: subnet("10.1.2.0"),
        current_peer: ip("172.16.172.20"),
        current_peer_port: 500,
        flags: vec!["origin_is_acl".into()],
        counters,
        path_mtu: 1500,
        ip_mtu: 1500,
        ip_mtu_idb: "Ethernet1/0".into(),
        current_outbound_spi: 0xEB84DC85,
        inbound_esp: vec![esp(0x8EAB0B22, 2029)],
        outbound_esp: vec![esp(0xEB84DC85, 2030)],
    }
}

#[test]
fn ipsec_sa_detail_golden() {
    let c = IpsecCounters {
        encaps: 4,
        encrypt: 4,
        digest: 4,
        decaps: 4,
        decrypt: 4,
        verify: 4,
        send_errors: 1,
        recv_errors: 0,
    };
    let e = IpsecErrorCounters {
        no_sa_send: 1,
        replay_failed_rcv: 2,
        verify_failed: 3,
        ..Default::default()
    };
    let got = ipsec_sa_detail(&[(slides_block(c), e)]);
    assert_eq!(got, include_str!("../golden/ipsec_sa_detail.txt"));
    // The same screen as `show crypto ipsec sa` but for the error lines.
    let plain = ipsec_sa(&[slides_block(c)]);
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                !l.contains("#pkts no sa")
                    && !l.contains("failed")
                    && !l.contains("invalid")
                    && !l.contains("rollover")
                    && !l.contains("internal err")
                    && !l.contains("#send errors")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(&got), strip(&plain));
}

#[test]
fn ipsec_sa_filters_select_blocks() {
    let a = slides_block(IpsecCounters::default());
    let mut b = a.clone();
    b.map_tag = "other".into();
    b.current_peer = ip("192.0.2.9");
    let f = |peer: Option<&str>, map: Option<&str>| IpsecSaFilter {
        peer: peer.map(ip),
        map: map.map(str::to_string),
        detail: false,
    };
    let pick = |f: &IpsecSaFilter| -> Vec<String> {
        [&a, &b]
            .into_iter()
            .filter(|v| select_blocks(f, v))
            .map(|v| v.map_tag.clone())
            .collect()
    };
    assert_eq!(pick(&f(None, None)), ["vpn", "other"]);
    assert_eq!(pick(&f(Some("172.16.172.20"), None)), ["vpn"]);
    assert_eq!(pick(&f(Some("192.0.2.9"), None)), ["other"]);
    assert_eq!(pick(&f(None, Some("other"))), ["other"]);
    assert!(pick(&f(Some("172.16.172.20"), Some("other"))).is_empty());
    assert!(pick(&f(Some("10.9.9.9"), None)).is_empty());
}

#[test]
fn crypto_session_detail_golden() {
    let s = [SessionDetailView {
        interface: "Ethernet1/0".into(),
        username: None,
        group: None,
        assigned: None,
        uptime_secs: 83,
        status: "UP-ACTIVE".into(),
        peer: ip("172.16.172.20"),
        peer_port: 500,
        phase1_id: "172.16.172.20".into(),
        ike: vec![SessionIkeView {
            local: ip("172.16.172.10"),
            local_port: 500,
            remote: ip("172.16.172.20"),
            remote_port: 500,
            active: true,
            capabilities: "D".into(),
            conn_id: 1001,
            lifetime_secs: 86317,
        }],
        flows: vec![SessionFlowView {
            local: subnet("10.1.1.0"),
            remote: subnet("10.1.2.0"),
            active_sas: 2,
            origin: "crypto map".into(),
            in_packets: 4,
            in_drops: 0,
            in_kb: 4608000,
            in_secs: 3542,
            out_packets: 4,
            out_drops: 1,
            out_kb: 4608000,
            out_secs: 3542,
        }],
    }];
    assert_eq!(
        crypto_session_detail(&s),
        include_str!("../golden/crypto_session_detail.txt")
    );
    // A client: user, group and address lines; no capabilities prints (none).
    let mut c = s[0].clone();
    c.username = Some("alice".into());
    c.group = Some("vpngroup".into());
    c.assigned = Some(ip("10.99.0.10"));
    c.ike[0].capabilities.clear();
    let got = crypto_session_detail(&[c]);
    assert!(got.contains("Interface: Ethernet1/0\nUsername: alice\nGroup: vpngroup\nAssigned address: 10.99.0.10\nUptime: 00:01:23\n"), "{got}");
    assert!(got.contains("          Capabilities:(none) connid:1001 lifetime:23:58:37\n"));
}

/// `show logging` of a logger that was fed real messages: buffer, trap filter, rate limit.
#[test]
fn show_logging_golden() {
    use crate::daemon::logging::Logger;
    use crate::ike::syslog::{INFORMATIONAL, WARNINGS};
    use crate::ike::SyslogMessage;
    use std::time::{Duration, Instant, SystemTime};
    let cfg = parse_config(
        "hostname R1\nlogging buffered 8192 informational\nlogging trap warnings\n\
         logging rate-limit all 2\nno logging console\n\
         logging host 10.1.1.2 transport udp port 5514\n",
        &InterfaceMap::default(),
    )
    .unwrap()
    .config;
    let mut log = Logger::offline(&cfg.logging, cfg.hostname.as_deref());
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_680_433_123);
    let bad = SyslogMessage::crypto(
        WARNINGS,
        "IKMP_BAD_MESSAGE",
        "IKE message from 172.16.172.20 failed its sanity check or is malformed",
    );
    let mode = SyslogMessage::crypto(
        INFORMATIONAL,
        "IKMP_MODE_FAILURE",
        "Processing of Main mode failed with peer at 172.16.172.20",
    );
    // Two pass, two are rate-limited, then a new second: a notice and the message.
    log.log(&bad, t0, wall);
    log.log(&mode, t0, wall);
    log.log(&bad, t0, wall);
    log.log(&mode, t0, wall);
    log.log(
        &bad,
        t0 + Duration::from_secs(1),
        wall + Duration::from_secs(1),
    );
    assert_eq!(
        crate::cli::show::logging::show_logging(&log.view()),
        include_str!("../golden/logging.txt")
    );
}
