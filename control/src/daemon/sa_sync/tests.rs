//! The translation and the SA table against real regions (files in a temp dir), read back
//! through a second, independent handle as the dataplane would.

use super::*;
use crate::ike::crypto::Secret;
use espgw_sadb::{SaDb, SaEntry, SaState};
use std::path::{Path, PathBuf};

struct TempRegion(PathBuf);
impl TempRegion {
    fn new(tag: &str) -> TempRegion {
        let d = std::env::temp_dir().join(format!("espgw-sa-sync-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempRegion(d)
    }
    fn path(&self) -> PathBuf {
        self.0.join("sadb")
    }
}
impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every transform set the dataplane implements, with the code it must get.
#[rustfmt::skip]
const SUPPORTED: [(EspEnc, Option<EspAuth>, TransformId); 12] = [
    (EspEnc::Des3, Some(EspAuth::Md5), TransformId::Esp3desMd5),
    (EspEnc::Des3, Some(EspAuth::Sha1), TransformId::Esp3desSha),
    (EspEnc::Aes(128), Some(EspAuth::Md5), TransformId::EspAes128Md5),
    (EspEnc::Aes(128), Some(EspAuth::Sha1), TransformId::EspAes128Sha),
    (EspEnc::Aes(192), Some(EspAuth::Md5), TransformId::EspAes192Md5),
    (EspEnc::Aes(192), Some(EspAuth::Sha1), TransformId::EspAes192Sha),
    (EspEnc::Aes(256), Some(EspAuth::Md5), TransformId::EspAes256Md5),
    (EspEnc::Aes(256), Some(EspAuth::Sha1), TransformId::EspAes256Sha),
    (EspEnc::Null, Some(EspAuth::Md5), TransformId::EspNullMd5),
    (EspEnc::Null, Some(EspAuth::Sha1), TransformId::EspNullSha),
    (EspEnc::Gcm(128), None, TransformId::EspGcm128),
    (EspEnc::Gcm(256), None, TransformId::EspGcm256),
];

const R1: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const R2: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);

fn proxy(a: [u8; 4], len: u8, protocol: u8, port: u16) -> Proxy {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    Proxy {
        addr: Ipv4Addr::from(a),
        mask: Ipv4Addr::from(mask),
        protocol,
        port,
    }
}

fn key(len: usize, salt: u8) -> Secret {
    Secret::new(
        (0..len)
            .map(|i| salt ^ (i as u8).wrapping_mul(37))
            .collect(),
    )
}

/// The SA pair of transform number `n` between R1 (us) and R2, as Quick Mode hands it
/// over: the inbound SA's outer source is the peer, its sender's proxies the peer's.
fn pair(n: usize) -> (IpsecSa, IpsecSa) {
    let (enc, auth, _) = SUPPORTED[n];
    let transform = TransformSet {
        name: format!("ts{n}"),
        enc,
        auth,
        transport: n % 3 == 2,
    };
    let ours = proxy([10, 1, 1, 0], 24, if n % 2 == 1 { 17 } else { 0 }, 0);
    let theirs = proxy(
        [10, 1, 2, n as u8],
        32,
        ours.protocol,
        if n % 2 == 1 { 4000 + n as u16 } else { 0 },
    );
    let encap = (n % 2 == 1).then_some((4500, 4500 + n as u16));
    let sa = |direction, spi, src, dst, src_proxy, dst_proxy, salt, conn_id| IpsecSa {
        direction,
        spi,
        src,
        dst,
        src_proxy,
        dst_proxy,
        transform: transform.clone(),
        enc_key: key(enc.key_len(), salt),
        auth_key: key(auth.map_or(0, EspAuth::key_len), salt ^ 0xff),
        lifetime_secs: 3600 + n as u32,
        lifetime_kb: 4_608_000 + n as u64,
        encap: match (direction, encap) {
            // Outer UDP (source, destination) of the SA's packets.
            (Direction::Inbound, Some((us, them))) => Some((them, us)),
            (_, e) => e,
        },
        conn_id,
        map: "vpn".into(),
        seq: 10 + n as u32,
    };
    (
        sa(
            Direction::Inbound,
            0x1000 + n as u32,
            R2,
            R1,
            theirs,
            ours,
            n as u8,
            2000 + n as u32,
        ),
        sa(
            Direction::Outbound,
            0x8000_0000 + n as u32,
            R1,
            R2,
            ours,
            theirs,
            0x80 | n as u8,
            3000 + n as u32,
        ),
    )
}

fn find(entries: &[SaEntry], spi: u32, direction: SaDirection) -> &SaEntry {
    entries
        .iter()
        .find(|e| e.record.spi == spi && e.record.direction == direction)
        .unwrap_or_else(|| panic!("spi {spi:#x} {direction:?} not in the region"))
}

#[test]
fn every_transform_reaches_the_dataplane_intact() {
    let dir = TempRegion::new("all");
    let sync = SaSync::new(Some(SaDb::create(dir.path(), 64).unwrap()), 128);
    let before = unix_now();
    for n in 0..SUPPORTED.len() {
        let (i, o) = pair(n);
        sync.install(&i).unwrap();
        sync.install(&o).unwrap();
    }
    assert_eq!(sync.installed().len(), 2 * SUPPORTED.len());

    // The dataplane's view: a reader of its own on the file.
    let snap = SaDb::open(dir.path()).unwrap().snapshot_all().unwrap();
    assert_eq!(snap.entries.len(), 2 * SUPPORTED.len());
    for (n, &(enc, auth, id)) in SUPPORTED.iter().enumerate() {
        let (i, o) = pair(n);
        let natt = n % 2 == 1;
        let inb = &find(&snap.entries, i.spi, SaDirection::Inbound).record;
        let out = &find(&snap.entries, o.spi, SaDirection::Outbound).record;
        for (r, sa) in [(inb, &i), (out, &o)] {
            assert_eq!(r.transform, id, "{}", sa.transform.ios_name());
            assert_eq!(r.transform.ios_name(), sa.transform.ios_name());
            assert_eq!(r.enc_key.as_bytes(), &sa.enc_key[..]);
            assert_eq!(r.auth_key.as_bytes(), &sa.auth_key[..]);
            assert_eq!(r.enc_key.len(), enc.key_len());
            assert_eq!(r.auth_key.len(), auth.map_or(0, EspAuth::key_len));
            assert_eq!(r.mode == Mode::Transport, n % 3 == 2);
            assert_eq!(r.udp_encap, natt);
            assert!(!r.esn);
            // Seen from this gateway, whatever the direction.
            assert_eq!(*r.local.ip(), R1);
            assert_eq!(*r.peer.ip(), R2);
            let ports = if natt {
                (4500, 4500 + n as u16)
            } else {
                (500, 500)
            };
            assert_eq!((r.local.port(), r.peer.port()), ports);
            assert_eq!(
                r.proxy.local,
                Ipv4Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24)
            );
            assert_eq!(
                r.proxy.remote,
                Ipv4Prefix::host(Ipv4Addr::new(10, 1, 2, n as u8))
            );
            assert_eq!(r.proxy.protocol, if natt { 17 } else { 0 });
            assert_eq!(r.proxy.local_port, 0);
            assert_eq!(r.proxy.remote_port, if natt { 4000 + n as u16 } else { 0 });
            assert_eq!(
                (r.lifetime_secs, r.lifetime_kb),
                (3600 + n as u64, 4_608_000 + n as u64)
            );
            assert_eq!(r.replay_window, 128);
            assert_eq!(
                (r.crypto_map.as_str(), r.crypto_map_seq),
                ("vpn", 10 + n as u32)
            );
            assert_eq!(r.conn_id, sa.conn_id);
            assert!(r.created_at >= before && r.created_at <= unix_now());
        }
        // The outbound SA covers our network's traffic to theirs; the inbound one
        // describes the same traffic from our side.
        let port = natt.then_some((1234, 4000 + n as u16));
        let proto = if natt { 17 } else { 1 };
        let (a, b) = (Ipv4Addr::new(10, 1, 1, 7), Ipv4Addr::new(10, 1, 2, n as u8));
        assert!(out.proxy.covers(a, b, proto, port));
        assert_eq!(inb.proxy, out.proxy);
        assert_eq!(
            snap.find_outbound(
                a,
                b,
                proto,
                port.map_or(0, |p| p.0),
                port.map_or(0, |p| p.1)
            )
            .map(|e| e.record.spi),
            Some(o.spi)
        );
    }
}

#[test]
fn transforms_the_dataplane_lacks_are_refused_not_installed() {
    let dir = TempRegion::new("unsupported");
    let sync = SaSync::new(Some(SaDb::create(dir.path(), 8).unwrap()), 64);
    for (enc, auth) in [
        (EspEnc::Aes(128), Some(EspAuth::Sha256)),
        (EspEnc::Des3, None),
        (EspEnc::Gcm(192), None),
        (EspEnc::Gcm(128), Some(EspAuth::Md5)),
    ] {
        let (mut i, _) = pair(0);
        i.transform.enc = enc;
        i.transform.auth = auth;
        assert_eq!(transform_id(&i.transform), None);
        let e = sync.install(&i).unwrap_err();
        assert!(matches!(e, SyncError::UnsupportedTransform(_)), "{e}");
        assert!(e.to_string().contains(&i.transform.ios_name()), "{e}");
    }
    let (mut i, _) = pair(0);
    i.enc_key = key(37, 1);
    assert!(matches!(
        sync.install(&i),
        Err(SyncError::KeyTooLong { .. })
    ));
    assert!(sync.installed().is_empty());
    assert!(SaDb::open(dir.path())
        .unwrap()
        .snapshot_all()
        .unwrap()
        .entries
        .is_empty());
}

#[test]
fn uninstall_counters_and_duplicates() {
    let dir = TempRegion::new("uninstall");
    let sync = SaSync::new(Some(SaDb::create(dir.path(), 8).unwrap()), 64);
    let (i, o) = pair(1);
    sync.install(&i).unwrap();
    sync.install(&o).unwrap();
    let e = sync.install(&i).unwrap_err();
    assert!(
        matches!(
            e,
            SyncError::Install {
                source: WriteError::DuplicateInboundSpi(_),
                ..
            }
        ),
        "{e}"
    );

    // The dataplane counts on the inbound SA; control reads it back.
    let r = SaDb::open(dir.path()).unwrap();
    let slot = r.lookup_inbound(i.spi).unwrap().unwrap().slot;
    r.counters(slot).unwrap().add_packets(3, 3000);
    assert_eq!(sync.counters(i.spi, true), (3, 3000));
    assert_eq!(sync.counters(o.spi, false), (0, 0));
    assert_eq!(sync.counters(0xdead, true), (0, 0));
    // Its drops, by the data plane's one vocabulary, for `#recv errors`.
    r.counters(slot).unwrap().add_drop(DropReason::Replay, 2);
    r.counters(slot).unwrap().add_drop(DropReason::Auth, 1);
    let v = sync.values(i.spi, true);
    assert_eq!((v.drop_count(DropReason::Replay), v.drops_total()), (2, 3));
    assert_eq!(sync.values(o.spi, false).drops_total(), 0);

    sync.uninstall(i.spi, true);
    sync.uninstall(o.spi, false);
    assert!(sync.installed().is_empty());
    assert!(r.snapshot_all().unwrap().entries.is_empty());
    assert_eq!(r.lookup_inbound(i.spi).unwrap(), None);
}

fn install_raw(path: &Path, sas: &[(&IpsecSa, u64)]) {
    let mut w = SaDb::open_or_create(path, espgw_sadb::Geometry::with_capacity(16)).unwrap();
    for (sa, created_at) in sas {
        w.install(&sa_record(sa, 64, *created_at).unwrap()).unwrap();
    }
}

#[test]
fn a_previous_runs_sas_are_adopted_then_retired() {
    let dir = TempRegion::new("adopt");
    // A previous espgw-control: one pair with R2 created long ago (lifetime 3600 s), one
    // pair with another peer, still valid.
    let (i, o) = pair(0);
    let (mut i2, mut o2) = pair(3);
    let other = Ipv4Addr::new(172, 16, 172, 30);
    i2.src = other;
    o2.dst = other;
    let now = unix_now();
    install_raw(
        dir.path().as_path(),
        &[(&i, now - 4000), (&o, now - 4000), (&i2, now), (&o2, now)],
    );

    let sync = SaSync::new(
        Some(SaDb::open_or_create(dir.path(), espgw_sadb::Geometry::with_capacity(16)).unwrap()),
        64,
    );
    assert_eq!(sync.adopted(), 4);
    let r = SaDb::open(dir.path()).unwrap();
    let live = || {
        let mut v: Vec<u32> = r
            .snapshot_all()
            .unwrap()
            .entries
            .iter()
            .map(|e| e.record.spi)
            .collect();
        v.sort();
        v
    };
    assert_eq!(live().len(), 4, "adopted SAs keep forwarding");

    sync.retire_expired(now);
    assert_eq!(sync.adopted(), 2);
    let mut want = vec![i2.spi, o2.spi];
    want.sort();
    assert_eq!(live(), want, "the expired pair is gone, the other kept");

    // New SAs with the other peer replace what the previous run left for it.
    let (mut n_in, mut n_out) = pair(5);
    n_in.src = other;
    n_out.dst = other;
    sync.install(&n_in).unwrap();
    sync.install(&n_out).unwrap();
    sync.retire_adopted(other);
    assert_eq!(sync.adopted(), 0);
    let mut want = vec![n_in.spi, n_out.spi];
    want.sort();
    assert_eq!(live(), want);
    assert!(r
        .snapshot_all()
        .unwrap()
        .entries
        .iter()
        .all(|e| e.state == SaState::Active));
}

#[test]
fn sa_requests_are_polled_in_bounded_batches() {
    let dir = TempRegion::new("requests");
    let sync = SaSync::new(Some(SaDb::create(dir.path(), 8).unwrap()), 64);
    let r = SaDb::open(dir.path()).unwrap();
    for seq in 0..5u32 {
        r.post_sa_request(&SaRequest::ping("vpn", seq).unwrap(), 1000);
    }
    let first = sync.poll_sa_requests(1000, 3).unwrap();
    assert_eq!(
        first.iter().map(|q| q.crypto_map_seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let rest = sync.poll_sa_requests(1000, 3).unwrap();
    assert_eq!(
        rest.iter().map(|q| q.crypto_map_seq).collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(sync.poll_sa_requests(1000, 3).unwrap().is_empty());
    let g = sync.global_counters().unwrap();
    assert!(g.contains(&("sa-request-posted", 5)), "{g:?}");
}

#[test]
fn without_a_database_everything_is_a_no_op() {
    let sync = SaSync::new(None, 64);
    let (i, _) = pair(0);
    assert!(!sync.has_db());
    sync.install(&i).unwrap();
    assert!(sync.installed().is_empty());
    assert_eq!(sync.counters(i.spi, true), (0, 0));
    assert!(sync.poll_sa_requests(0, 8).is_none());
    assert!(sync.global_counters().is_none());
    sync.retire_expired(u64::MAX);
    assert_eq!(sync.adopted(), 0);
}
