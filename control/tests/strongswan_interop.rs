//! espgw-control (R1) against strongSwan 5.9.8 (R2) in the slides' lab.
//!
//! For Main and Aggressive Mode × 3des-md5-modp1024 and aes128-sha1-modp2048 × espgw
//! initiating and strongSwan initiating: phase 1 and 2 complete; the SPIs of espgw's
//! `show crypto ipsec sa` equal strongSwan's `swanctl --list-sas --raw`; the ESP keys in
//! espgw's key log equal the keys strongSwan logged; tshark decrypts the whole IKE exchange
//! with espgw's key log and finds no malformed frame. Plus PFS, wrong PSK, proposal
//! mismatch, DPD, and rekey of the IPsec SAs (30 s lifetime) and of the ISAKMP SA (60 s).
//!
//! These tests need root (network namespaces); as non-root they are skipped with a note.

mod common;

use common::{Espgw, IosConf};
use espgw_control::cli::api::{Request, Response};
use espgw_lab::{judge, Capture, IkeMode, Lab, Node, Profile, StrongSwan};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Suite {
    TdesMd5Modp1024,
    Aes128Sha1Modp2048,
    /// Phase 1 as above, ESP AES-128-GCM (RFC 4106: key and salt from KEYMAT).
    Aes128GcmModp2048,
}

impl Suite {
    fn ios(self, pfs: Option<u32>, psk: &'static str) -> IosConf {
        match self {
            Suite::TdesMd5Modp1024 => IosConf {
                encr: "3des",
                hash: "md5",
                group: 2,
                transform: "esp-3des esp-md5-hmac",
                pfs,
                psk,
                lifetime_secs: None,
                keepalive: None,
                isakmp_lifetime: None,
            },
            Suite::Aes128Sha1Modp2048 | Suite::Aes128GcmModp2048 => IosConf {
                encr: "aes 128",
                hash: "sha",
                group: 14,
                transform: if self == Suite::Aes128GcmModp2048 {
                    "esp-gcm"
                } else {
                    "esp-aes 128 esp-sha-hmac"
                },
                pfs,
                psk,
                lifetime_secs: None,
                keepalive: None,
                isakmp_lifetime: None,
            },
        }
    }
    fn swan(self) -> (&'static str, &'static str) {
        match self {
            Suite::TdesMd5Modp1024 => ("3des-md5-modp1024", "3des-md5"),
            Suite::Aes128Sha1Modp2048 => ("aes128-sha1-modp2048", "aes128-sha1"),
            Suite::Aes128GcmModp2048 => ("aes128-sha1-modp2048", "aes128gcm16"),
        }
    }
}

struct Case {
    mode: IkeMode,
    suite: Suite,
    espgw_initiates: bool,
    pfs: Option<u32>,
}

fn swan_profile(c: &Case, psk: &str) -> Profile {
    let (p, e) = c.suite.swan();
    let pfs = c.pfs.map(|g| if g == 2 { "modp1024" } else { "modp2048" });
    Profile::new(Node::R2)
        .mode(c.mode)
        .proposal(p)
        .esp(e)
        .pfs(pfs)
        .psk(psk)
}

fn run(tag: &str, c: Case) {
    espgw_lab::prereq::require_root();
    let t0 = Instant::now();
    let lab = Lab::up(&Lab::unique_prefix(tag)).expect("lab");
    let cap = Capture::start(&lab, Node::R1, "out0").expect("tcpdump");
    let swan = StrongSwan::start(&lab, Node::R2, swan_profile(&c, "C!scO")).expect("charon");
    let espgw = Espgw::start(
        &lab,
        &c.suite.ios(c.pfs, "C!scO"),
        c.mode == IkeMode::Aggressive,
    );
    let sa = common::establish(&espgw, &swan, c.espgw_initiates);
    let spis = espgw.wait_spis(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop().expect("pcap");

    // Roles as asked.
    assert_eq!(sa.initiator, !c.espgw_initiates);
    // SPIs: espgw's inbound is strongSwan's outbound and vice versa.
    let child = &sa.children[0];
    assert!(child.encap, "strongSwan 5.9.8 libipsec runs NAT-T");
    assert_eq!(
        spis,
        vec![(child.spi_out, child.spi_in)],
        "espgw show crypto ipsec sa vs swanctl --list-sas"
    );
    // show crypto ipsec sa says UDP-encapsulated and port 4500.
    if let Response::IpsecSas { sas } = espgw.request(Request::ShowIpsecSa) {
        assert_eq!(sas[0].current_peer_port, 4500);
        assert!(sas[0].inbound_esp[0].udp_encap);
    }
    // The operator CLI prints both SPIs as IOS does.
    let show = espgw.cli(&["show", "crypto", "ipsec", "sa"]);
    for spi in [child.spi_in, child.spi_out] {
        assert!(
            show.contains(&format!("spi: 0x{spi:X}({spi})")),
            "spi {spi:#x} not in:\n{show}"
        );
    }
    assert!(
        show.contains("current_peer 172.16.172.20 port 4500"),
        "{show}"
    );
    let show = espgw.cli(&["show", "crypto", "isakmp", "sa"]);
    assert!(show.contains("QM_IDLE"), "{show}");
    // show crypto isakmp sa: QM_IDLE
    if let Response::IsakmpSas { sas } = espgw.request(Request::ShowIsakmpSa) {
        assert!(
            sas.iter().any(|s| s.state.ios_name() == "QM_IDLE"),
            "{sas:?}"
        );
    }
    // Keys: espgw's key log equals what charon logged.
    let (esp, ike) = espgw.keys();
    let ck = swan.keys().expect("charon keys");
    let mut a = esp.clone();
    let mut b = ck.esp.clone();
    a.sort_by_key(|k| k.spi);
    b.sort_by_key(|k| k.spi);
    assert_eq!(a.len(), 2);
    let a_keys: Vec<_> = a
        .iter()
        .map(|k| (k.spi, k.enc_key.clone(), k.auth_key.clone()))
        .collect();
    let b_keys: Vec<_> = b
        .iter()
        .map(|k| (k.spi, k.enc_key.clone(), k.auth_key.clone()))
        .collect();
    assert_eq!(
        a_keys, b_keys,
        "ESP keys differ between espgw's key log and strongSwan's log"
    );
    assert_eq!(ike.len(), 1);
    assert_eq!(ike[0].enc_key, ck.ike[0].enc_key, "Ka differs");
    assert_eq!(judge::hex(&ike[0].icookie), sa.initiator_spi);
    // tshark decrypts the whole IKE exchange with espgw's keys, nothing malformed.
    let v = judge(&pcap, &esp, &ike).expect("tshark");
    let summary = v.summary();
    assert_eq!(v.malformed(), 0, "malformed:\n{summary}");
    let isakmp: Vec<_> = v.isakmp().collect();
    let (p1t, p1n) = if c.mode == IkeMode::Main {
        (2u8, 6usize)
    } else {
        (4u8, 3usize)
    };
    assert_eq!(
        isakmp.iter().filter(|(_, i)| i.exchange == p1t).count(),
        p1n,
        "phase 1:\n{summary}"
    );
    assert_eq!(
        isakmp.iter().filter(|(_, i)| i.exchange == 32).count(),
        3,
        "quick mode:\n{summary}"
    );
    let enc: Vec<_> = isakmp.iter().filter(|(_, i)| i.encrypted).collect();
    assert!(!enc.is_empty());
    assert!(
        enc.iter().all(|(_, i)| i.decrypted),
        "not decrypted:\n{summary}"
    );
    // The debug output shows the slides' state sequence for an espgw-initiated Main Mode.
    let log = espgw.log();
    assert!(!log.contains("C!scO"), "PSK in the log");
    if c.espgw_initiates && c.mode == IkeMode::Main {
        let states: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split_once(": Old State = ").map(|x| x.1))
            .collect();
        let want = [
            "IKE_READY  New State = IKE_I_MM1",
            "IKE_I_MM1  New State = IKE_I_MM2",
            "IKE_I_MM2  New State = IKE_I_MM2",
            "IKE_I_MM2  New State = IKE_I_MM3",
            "IKE_I_MM3  New State = IKE_I_MM4",
            "IKE_I_MM4  New State = IKE_I_MM4",
            "IKE_I_MM4  New State = IKE_I_MM5",
            "IKE_I_MM5  New State = IKE_I_MM6",
            "IKE_I_MM6  New State = IKE_P1_COMPLETE",
            "IKE_QM_READY  New State = IKE_QM_I_QM1",
            "IKE_QM_I_QM1  New State = IKE_QM_PHASE2_COMPLETE",
        ];
        assert_eq!(states, want, "{log}");
        for needle in [
            "IPsec(sa_request)",
            "Creating IPsec SAs",
            "IPsec(initialize_sas)",
            "IPsec(create_sa): sa created,",
        ] {
            assert!(log.contains(needle), "missing {needle}:\n{log}");
        }
    }
    if std::env::var("ESPGW_TEST_SHOW_LOG").is_ok() {
        eprintln!(
            "--- espgw log ---\n{log}\n--- keylog ---\n{}",
            std::fs::read_to_string(&espgw.keylog).unwrap_or_default()
        );
        eprintln!("{summary}");
    }
    eprintln!("{tag}: ok in {:?}", t0.elapsed());
}

macro_rules! case {
    ($name:ident, $mode:ident, $suite:ident, $init:expr, $pfs:expr) => {
        #[test]
        fn $name() {
            run(
                stringify!($name),
                Case {
                    mode: IkeMode::$mode,
                    suite: Suite::$suite,
                    espgw_initiates: $init,
                    pfs: $pfs,
                },
            );
        }
    };
}

case!(
    mm_3des_md5_espgw_initiates,
    Main,
    TdesMd5Modp1024,
    true,
    None
);
case!(
    mm_3des_md5_swan_initiates,
    Main,
    TdesMd5Modp1024,
    false,
    None
);
case!(
    mm_aes_sha_espgw_initiates,
    Main,
    Aes128Sha1Modp2048,
    true,
    None
);
case!(
    mm_aes_sha_swan_initiates,
    Main,
    Aes128Sha1Modp2048,
    false,
    None
);
case!(
    am_3des_md5_espgw_initiates,
    Aggressive,
    TdesMd5Modp1024,
    true,
    None
);
case!(
    am_3des_md5_swan_initiates,
    Aggressive,
    TdesMd5Modp1024,
    false,
    None
);
case!(
    am_aes_sha_espgw_initiates,
    Aggressive,
    Aes128Sha1Modp2048,
    true,
    None
);
case!(
    am_aes_sha_swan_initiates,
    Aggressive,
    Aes128Sha1Modp2048,
    false,
    None
);
case!(mm_gcm_espgw_initiates, Main, Aes128GcmModp2048, true, None);
case!(mm_gcm_swan_initiates, Main, Aes128GcmModp2048, false, None);
case!(pfs2_espgw_initiates, Main, TdesMd5Modp1024, true, Some(2));
case!(pfs2_swan_initiates, Main, TdesMd5Modp1024, false, Some(2));
case!(
    pfs14_espgw_initiates,
    Main,
    Aes128Sha1Modp2048,
    true,
    Some(14)
);
case!(
    pfs14_swan_initiates,
    Main,
    Aes128Sha1Modp2048,
    false,
    Some(14)
);

/// A failure case: nothing must be established on either side within `wait`.
fn no_sa(
    tag: &str,
    ios: IosConf,
    prof: Profile,
    espgw_initiates: bool,
    wait: Duration,
) -> (String, String) {
    let lab = Lab::up(&Lab::unique_prefix(tag)).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, prof).expect("charon");
    let espgw = Espgw::start(&lab, &ios, false);
    if espgw_initiates {
        espgw.request(Request::Initiate {
            map: "vpn".into(),
            seq: 10,
        });
    } else {
        // Short swanctl timeout: the negotiation is meant to fail.
        let _ = swan.swanctl(&["--initiate", "--child", "lab", "--timeout", "3"]);
    }
    std::thread::sleep(wait);
    assert!(espgw.spis().is_empty(), "espgw has SAs:\n{}", espgw.log());
    let sas = swan.list_sas().unwrap_or_default();
    assert!(
        sas.iter().all(|s| s.children.is_empty()),
        "strongSwan has a CHILD_SA: {sas:?}"
    );
    (espgw.log(), swan.log())
}

#[test]
fn wrong_psk_fails_cleanly_both_ways() {
    espgw_lab::prereq::require_root();
    let c = Case {
        mode: IkeMode::Main,
        suite: Suite::TdesMd5Modp1024,
        espgw_initiates: false,
        pfs: None,
    };
    // strongSwan initiates with another key: espgw (responder) cannot decrypt MM5.
    let (log, _) = no_sa(
        "wpsk1",
        Suite::TdesMd5Modp1024.ios(None, "C!scO"),
        swan_profile(&c, "wrong-key"),
        false,
        Duration::from_secs(8),
    );
    assert!(log.contains("%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 172.16.172.20 failed its sanity check or is malformed"), "{log}");
    assert!(
        log.contains("incrementing error counter on sa, attempt 1 of 5"),
        "{log}"
    );
    // espgw initiates with the wrong key: strongSwan refuses MM5; espgw gives up.
    let (log, slog) = no_sa(
        "wpsk2",
        Suite::TdesMd5Modp1024.ios(None, "C!scO"),
        swan_profile(&c, "wrong-key"),
        true,
        Duration::from_secs(8),
    );
    if std::env::var("ESPGW_TEST_SHOW_LOG").is_ok() {
        eprintln!("--- espgw ---\n{log}\n--- charon ---\n{slog}");
    }
    assert!(!log.contains("IKE_P1_COMPLETE"), "{log}");
    assert!(
        slog.contains("failed") || slog.contains("invalid") || slog.contains("malformed"),
        "{slog}"
    );
}

#[test]
fn proposal_mismatch_fails_cleanly_both_ways() {
    espgw_lab::prereq::require_root();
    // Phase 1: strongSwan offers aes/sha/modp2048, espgw has only 3des/md5/group 2.
    let c = Case {
        mode: IkeMode::Main,
        suite: Suite::Aes128Sha1Modp2048,
        espgw_initiates: false,
        pfs: None,
    };
    let (log, _) = no_sa(
        "p1mm",
        Suite::TdesMd5Modp1024.ios(None, "C!scO"),
        swan_profile(&c, "C!scO"),
        false,
        Duration::from_secs(4),
    );
    assert!(
        log.contains("atts are not acceptable. Next payload is 0"),
        "{log}"
    );
    assert!(log.contains("phase 1 SA policy not acceptable!"), "{log}");
    // espgw initiates the same mismatch: strongSwan answers NO_PROPOSAL_CHOSEN.
    let (log, _) = no_sa(
        "p1mi",
        Suite::TdesMd5Modp1024.ios(None, "C!scO"),
        swan_profile(&c, "C!scO"),
        true,
        Duration::from_secs(4),
    );
    assert!(log.contains("phase 1 SA policy not acceptable!"), "{log}");
    // Phase 2: same IKE, ESP aes vs 3des.
    let mut ios = Suite::TdesMd5Modp1024.ios(None, "C!scO");
    ios.transform = "esp-aes 128 esp-sha-hmac";
    let c2 = Case {
        mode: IkeMode::Main,
        suite: Suite::TdesMd5Modp1024,
        espgw_initiates: false,
        pfs: None,
    };
    let (log, _) = no_sa(
        "p2mm",
        ios,
        swan_profile(&c2, "C!scO"),
        false,
        Duration::from_secs(4),
    );
    assert!(
        log.contains(
            "phase 2 SA policy not acceptable! (local 172.16.172.10 remote 172.16.172.20)"
        ),
        "{log}"
    );
}

#[test]
fn dpd_notices_killed_peer_and_removes_its_sas() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("dpd")).expect("lab");
    let mut prof = Profile::new(Node::R2);
    prof.dpd_delay = Some(Duration::from_secs(5));
    let swan = StrongSwan::start(&lab, Node::R2, prof).expect("charon");
    let mut ios = Suite::TdesMd5Modp1024.ios(None, "C!scO");
    ios.keepalive = Some((10, 2));
    let espgw = Espgw::start(&lab, &ios, false);
    espgw.request(Request::Initiate {
        map: "vpn".into(),
        seq: 10,
    });
    swan.wait_established(Duration::from_secs(30)).expect("up");
    espgw.wait_spis(1, Duration::from_secs(10));
    // A live peer: after 15 s the SAs are still there (R-U-THERE answered).
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(espgw.spis().len(), 1, "{}", espgw.log());
    // Kill strongSwan hard (no delete notifications).
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &swan.pid().to_string()])
        .status();
    let t0 = Instant::now();
    while !espgw.spis().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "DPD did not remove the SAs:\n{}",
            espgw.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = espgw.log();
    assert!(log.contains("DPD: peer 172.16.172.20 is dead"), "{log}");
    drop(swan);
}

/// 30-second lifetime (the shortest IOS takes): a new SA pair is in place before the old one
/// expires, and the tunnel never has a moment without SAs. ≈45 s.
#[test]
fn rekey_30s_lifetime_make_before_break() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("rekey")).expect("lab");
    let mut prof = Profile::new(Node::R2);
    prof.child_lifetime = Duration::from_secs(30);
    prof.child_rekey = Some(Duration::from_secs(27));
    let swan = StrongSwan::start(&lab, Node::R2, prof).expect("charon");
    let mut ios = Suite::TdesMd5Modp1024.ios(None, "C!scO");
    ios.lifetime_secs = Some(30);
    let espgw = Espgw::start(&lab, &ios, false);
    espgw.request(Request::Initiate {
        map: "vpn".into(),
        seq: 10,
    });
    swan.wait_established(Duration::from_secs(30)).expect("up");
    let first = espgw.wait_spis(1, Duration::from_secs(10))[0];
    let t0 = Instant::now();
    let mut seen: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut overlap = false;
    while t0.elapsed() < Duration::from_secs(40) {
        let s = espgw.spis();
        if s.len() >= 2 && s.contains(&first) {
            overlap = true;
        }
        assert!(
            !s.is_empty(),
            "a moment without SAs at {:?}:\n{}",
            t0.elapsed(),
            espgw.log()
        );
        seen.extend(s);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        overlap,
        "no make-before-break overlap: {seen:?}\n{}",
        espgw.log()
    );
    assert!(
        !espgw.spis().contains(&first),
        "old pair still there after 40 s"
    );
    let sas = swan.list_sas().expect("list");
    let installed: Vec<_> = sas
        .iter()
        .flat_map(|s| s.children.iter())
        .filter(|c| c.state == "INSTALLED")
        .collect();
    assert!(!installed.is_empty());
    let now = espgw.spis();
    assert!(
        installed
            .iter()
            .any(|c| now.contains(&(c.spi_out, c.spi_in))),
        "{now:?} vs {installed:?}"
    );
}

/// The negotiated SAs land in the shared-memory SA database (both directions, keys, NAT-T
/// ports, proxies), and leave it (keys zeroed) on `clear crypto sa`.
#[test]
fn sas_are_installed_in_the_sa_database() {
    espgw_lab::prereq::require_root();
    use espgw_sadb::{Direction, SaDb};
    let lab = Lab::up(&Lab::unique_prefix("sadb")).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2)).expect("charon");
    let db = lab.dir().join("sadb");
    // A previous espgw-control left an SA with this peer behind (crash): it is adopted,
    // then replaced when the new SAs come up.
    let stale_spi = {
        let mut w = SaDb::create(&db, 64).expect("create sadb");
        let mut rec = espgw_sadb::SaRecord::derived(7);
        rec.peer = "172.16.172.20:4500".parse().unwrap();
        rec.direction = Direction::Inbound;
        w.install(&rec).expect("install stale SA");
        rec.spi
    };
    let espgw = Espgw::start_with(
        &lab,
        &Suite::TdesMd5Modp1024.ios(None, "C!scO"),
        false,
        Some(&db),
    );
    espgw.request(Request::Initiate {
        map: "vpn".into(),
        seq: 10,
    });
    swan.wait_established(Duration::from_secs(30)).expect("up");
    let (spi_in, spi_out) = espgw.wait_spis(1, Duration::from_secs(10))[0];
    let (keys, _) = espgw.keys();
    let r = SaDb::open(&db).expect("open sadb");
    let snap = r.snapshot_all().expect("snapshot");
    assert!(espgw.log().contains("adopting 1 SAs"), "{}", espgw.log());
    assert!(
        snap.find_inbound(stale_spi).is_none(),
        "stale SA not replaced"
    );
    let inb = snap
        .find_inbound(spi_in)
        .expect("inbound SA in the database");
    assert_eq!(inb.record.direction, Direction::Inbound);
    assert!(inb.record.udp_encap);
    assert_eq!(inb.record.local.port(), 4500);
    assert_eq!(inb.record.peer.port(), 4500);
    assert_eq!(inb.record.peer.ip().to_string(), "172.16.172.20");
    assert_eq!(inb.record.proxy.local.addr.to_string(), "10.1.1.0");
    assert_eq!(inb.record.proxy.remote.addr.to_string(), "10.1.2.0");
    let k = keys.iter().find(|k| k.spi == spi_in).unwrap();
    assert_eq!(inb.record.enc_key.as_bytes(), &k.enc_key[..]);
    assert_eq!(inb.record.auth_key.as_bytes(), &k.auth_key[..]);
    let out = snap
        .entries
        .iter()
        .find(|e| e.record.direction == Direction::Outbound && e.record.spi == spi_out)
        .expect("outbound SA");
    assert_eq!(out.record.crypto_map.as_str(), "vpn");
    assert_eq!(out.record.crypto_map_seq, 10);
    assert_eq!(out.record.lifetime_secs, 3600);
    // The other operator commands, through the CLI.
    let m = espgw.cli(&["show", "crypto", "map"]);
    assert!(m.contains("Crypto Map \"vpn\" 10 ipsec-isakmp"), "{m}");
    assert!(m.contains("Current peer: 172.16.172.20"), "{m}");
    assert!(espgw
        .cli(&["undebug", "all"])
        .contains("All possible debugging has been turned off"));
    assert!(espgw
        .cli(&["debug", "crypto", "isakmp"])
        .contains("Crypto ISAKMP debugging is on"));
    espgw.cli(&["clear", "crypto", "sa"]);
    let t0 = Instant::now();
    loop {
        let snap = r.snapshot_all().expect("snapshot");
        if snap.entries.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "SAs not removed: {:?}",
            snap.entries.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // strongSwan got the delete notification too.
    let t0 = Instant::now();
    while swan
        .list_sas()
        .unwrap_or_default()
        .iter()
        .any(|s| !s.children.is_empty())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "strongSwan kept its CHILD_SA after our DELETE"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// strongSwan deletes its IKE and CHILD SAs: espgw removes the matching SAs on the
/// DELETE notifications.
#[test]
fn peer_delete_removes_espgw_sas() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("pdel")).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2)).expect("charon");
    let espgw = Espgw::start(&lab, &Suite::TdesMd5Modp1024.ios(None, "C!scO"), false);
    espgw.cli(&["initiate", "vpn", "10"]);
    swan.wait_established(Duration::from_secs(30)).expect("up");
    espgw.wait_spis(1, Duration::from_secs(10));
    swan.terminate_ike().expect("swanctl --terminate");
    let t0 = Instant::now();
    while !espgw.spis().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "SAs kept after the peer's DELETE:\n{}",
            espgw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = espgw.log();
    assert!(log.contains("processing DELETE payload"), "{log}");
    assert!(
        log.contains("IPsec SAs with 172.16.172.20 deleted"),
        "{log}"
    );
}

/// ISAKMP SA lifetime 60 s (the shortest IOS takes): espgw starts a new ISAKMP SA before the
/// old one ends and deletes the old one; the IPsec SAs survive on both sides. ≈80 s.
#[test]
fn isakmp_rekey_keeps_the_ipsec_sas_on_both_sides() {
    espgw_lab::prereq::require_root();
    let lab = Lab::up(&Lab::unique_prefix("p1rekey")).expect("lab");
    let swan = StrongSwan::start(&lab, Node::R2, Profile::new(Node::R2)).expect("charon");
    let mut ios = Suite::TdesMd5Modp1024.ios(None, "C!scO");
    ios.isakmp_lifetime = Some(60);
    let espgw = Espgw::start(&lab, &ios, false);
    espgw.cli(&["initiate", "vpn", "10"]);
    swan.wait_established(Duration::from_secs(30)).expect("up");
    let first = espgw.wait_spis(1, Duration::from_secs(10))[0];
    std::thread::sleep(Duration::from_secs(75));
    let now = espgw.spis();
    assert!(
        now.contains(&first),
        "IPsec SAs gone on espgw: {now:?}\n{}",
        espgw.log()
    );
    let sas = swan.list_sas().expect("list");
    let children: Vec<_> = sas
        .iter()
        .flat_map(|s| s.children.iter())
        .filter(|c| c.state == "INSTALLED")
        .collect();
    assert!(
        children.iter().any(|c| (c.spi_out, c.spi_in) == first),
        "strongSwan lost the CHILD_SA with the old ISAKMP SA: {sas:?}\n{}",
        espgw.log()
    );
    let show = espgw.cli(&["show", "crypto", "isakmp", "sa"]);
    assert!(show.contains("QM_IDLE"), "{show}");
}
