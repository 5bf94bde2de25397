use super::layout::hdr;
use super::*;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

fn mem(cap: u32) -> SaDbWriter {
    SaDb::in_memory(Geometry::with_capacity(cap)).unwrap()
}

fn inbound(v: u64) -> SaRecord {
    SaRecord::derived_towards(v, Direction::Inbound)
}

fn outbound(v: u64) -> SaRecord {
    SaRecord::derived_towards(v, Direction::Outbound)
}

#[test]
fn install_read_lookup_delete() {
    let mut w = mem(8);
    let r = w.reader().clone();
    let g0 = r.generation();
    assert_eq!(g0 % 2, 0);
    let rec = inbound(0x1234);
    let slot = w.install(&rec).unwrap();
    let g1 = r.generation();
    assert!(g1 > g0 && g1.is_multiple_of(2));
    let e = r.read_slot(slot).unwrap().unwrap();
    assert_eq!(e.record, rec);
    assert_eq!(e.state, SaState::Active);
    assert_eq!(e.incarnation, 1);
    assert_eq!(r.lookup_inbound(rec.spi).unwrap().unwrap().slot, slot);
    assert_eq!(r.lookup_inbound(rec.spi ^ 1).unwrap(), None);
    let snap = r.snapshot_all().unwrap();
    assert_eq!(snap.generation, g1);
    assert_eq!(snap.entries.len(), 1);
    assert_eq!(snap.find_inbound(rec.spi).unwrap().slot, slot);

    w.delete(slot).unwrap();
    assert!(r.generation() > g1);
    assert_eq!(r.read_slot(slot).unwrap(), None);
    assert_eq!(r.lookup_inbound(rec.spi).unwrap(), None);
    assert_eq!(w.delete(slot), Err(WriteError::NoSuchSlot(slot.0)));
    assert_eq!(r.read_slot(SlotId(8)), Err(ReadError::NoSuchSlot(8)));
    assert!(r.snapshot_all().unwrap().entries.is_empty());
}

#[test]
fn duplicate_spi_and_full() {
    let mut w = mem(2);
    w.install(&inbound(1)).unwrap();
    assert_eq!(
        w.install(&inbound(1)),
        Err(WriteError::DuplicateInboundSpi(inbound(1).spi))
    );
    // Outbound SPIs are the peer's and are not indexed: duplicates allowed.
    w.install(&outbound(1)).unwrap();
    assert_eq!(w.install(&outbound(1)), Err(WriteError::Full));
}

#[test]
fn invalid_record_refused() {
    let mut w = mem(2);
    let mut r = inbound(5);
    r.proxy.local.mask = Ipv4Addr::new(255, 0, 255, 0);
    assert!(matches!(w.install(&r), Err(WriteError::InvalidRecord(_))));
    assert!(w.reader().snapshot_all().unwrap().entries.is_empty());
}

#[test]
fn slots_reused_round_robin_with_new_incarnation() {
    let mut w = mem(3);
    let a = w.install(&inbound(1)).unwrap();
    let b = w.install(&inbound(2)).unwrap();
    w.delete(a).unwrap();
    let c = w.install(&inbound(3)).unwrap();
    assert_ne!(c, a, "a freed slot is not reused while others are free");
    assert_ne!(c, b);
    let d = w.install(&inbound(4)).unwrap();
    assert_eq!(d, a);
    assert_eq!(w.reader().read_slot(d).unwrap().unwrap().incarnation, 2);
}

#[test]
fn index_survives_churn() {
    let mut w = mem(64);
    let r = w.reader().clone();
    let mut live: Vec<(u32, SlotId)> = Vec::new();
    let mut x: u64 = 0x9e37_79b9;
    for round in 0..5000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if live.len() < 60 && (!x.is_multiple_of(3) || live.is_empty()) {
            let mut rec = inbound(round);
            rec.spi = (x as u32) | 0x100;
            if live.iter().any(|(s, _)| *s == rec.spi) {
                continue;
            }
            let slot = w.install(&rec).unwrap();
            live.push((rec.spi, slot));
        } else {
            let (spi, slot) = live.swap_remove((x as usize / 3) % live.len());
            w.delete(slot).unwrap();
            assert_eq!(r.lookup_inbound(spi).unwrap(), None);
        }
        if round % 97 == 0 {
            for (spi, slot) in &live {
                assert_eq!(r.lookup_inbound(*spi).unwrap().unwrap().slot, *slot);
            }
        }
    }
    for (spi, slot) in &live {
        assert_eq!(r.lookup_inbound(*spi).unwrap().unwrap().slot, *slot);
    }
}

#[test]
fn update_and_dying() {
    let mut w = mem(4);
    let r = w.reader().clone();
    let rec = outbound(10);
    let slot = w.install(&rec).unwrap();
    r.counters(slot).unwrap().add_packets(1, 100);
    let mut moved = rec.clone();
    moved.peer.set_port(31337);
    w.update(slot, &moved).unwrap();
    assert_eq!(r.read_slot(slot).unwrap().unwrap().record, moved);
    assert_eq!(
        r.counters(slot).unwrap().packets(),
        1,
        "update keeps counters"
    );
    let mut respi = moved.clone();
    respi.spi ^= 1;
    assert!(matches!(
        w.update(slot, &respi),
        Err(WriteError::InvalidRecord(_))
    ));

    // Rekey: new SA for the same flow, old one dying; the new one is preferred.
    let mut newer = moved.clone();
    newer.spi ^= 0xff00;
    newer.created_at += 1;
    let slot2 = w.install(&newer).unwrap();
    w.mark_dying(slot).unwrap();
    let old = r.read_slot(slot).unwrap().unwrap();
    assert_eq!(old.state, SaState::Dying);
    assert_eq!(old.record, moved);
    let p = newer.proxy;
    let of_newer = || {
        r.lookup_outbound(
            &newer.crypto_map,
            newer.crypto_map_seq,
            *newer.peer.ip(),
            &p,
        )
        .unwrap()
        .unwrap()
    };
    assert_eq!(of_newer().slot, slot2);
    let snap = r.snapshot_all().unwrap();
    let hit = snap
        .find_outbound(
            p.local.addr,
            p.remote.addr,
            p.protocol,
            p.local_port,
            p.remote_port,
        )
        .unwrap();
    assert_eq!(hit.slot, slot2);
    // Even an older but Active SA beats a newer Dying one.
    w.mark_dying(slot2).unwrap();
    w.delete(slot).unwrap();
    assert_eq!(of_newer().state, SaState::Dying);
}

#[test]
fn counters_and_seq_reset_on_install() {
    let mut w = mem(1);
    let r = w.reader().clone();
    let s = w.install(&outbound(2)).unwrap();
    assert_eq!(r.reserve_outbound_seq(s, 64), Ok(1..65));
    assert_eq!(r.reserve_outbound_seq(s, 64), Ok(65..129));
    r.counters(s).unwrap().add_drop(DropReason::Auth, 3);
    w.delete(s).unwrap();
    assert_eq!(
        r.counters(s).unwrap().drops(DropReason::Auth),
        3,
        "readable after delete"
    );
    let s2 = w.install(&outbound(3)).unwrap();
    assert_eq!(s2, s);
    assert_eq!(r.counters(s).unwrap().values(), SaCounterValues::default());
    assert_eq!(r.reserve_outbound_seq(s, 1), Ok(1..2));
    assert_eq!(
        r.reserve_outbound_seq(SlotId(1), 1),
        Err(SeqError::NoSuchSlot(1))
    );
}

#[test]
fn global_counters() {
    let w = mem(1);
    let g = w.reader().global();
    g.add_drop(DropReason::NoSa, 5);
    g.add_drop(DropReason::Malformed, 2);
    assert_eq!(g.drops(DropReason::NoSa), 5);
    assert_eq!(g.drops(DropReason::Malformed), 2);
    assert_eq!(g.drops(DropReason::TxRingFull), 0);
}

fn request(map: &str, seq: u32) -> SaRequest {
    SaRequest::ping(map, seq).unwrap()
}

#[test]
fn sa_request_dedup_interval_and_clear() {
    let mut w = SaDb::in_memory(Geometry {
        capacity: 4,
        ring_capacity: 4,
        request_entries: 16,
    })
    .unwrap();
    let r = w.reader().clone();
    assert_eq!(r.request_interval_ms(), 1000);
    let a = request("VPN", 10);
    assert_eq!(r.post_sa_request(&a, 5000), PostOutcome::Posted);
    assert_eq!(r.post_sa_request(&a, 5999), PostOutcome::Deduplicated);
    assert_eq!(
        r.post_sa_request(&request("VPN", 20), 5999),
        PostOutcome::Posted
    );
    assert_eq!(r.post_sa_request(&a, 6000), PostOutcome::Posted);
    w.clear_request_rate_limit(&a.crypto_map, 10, None);
    assert_eq!(r.post_sa_request(&a, 6001), PostOutcome::Posted);
    // Ring of 4 is now full.
    assert_eq!(
        r.post_sa_request(&request("OTHER", 1), 6001),
        PostOutcome::Overflow
    );
    assert_eq!(r.pending_sa_requests(), 4);
    let got: Vec<SaRequest> = std::iter::from_fn(|| w.poll_sa_request(7000)).collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], SaRequest { at_ms: 5000, ..a });
    assert_eq!(got[1].crypto_map_seq, 20);
    assert_eq!(got[3].at_ms, 6001);
    let g = r.global();
    assert_eq!(g.get(GlobalCounter::SaRequestPosted), 4);
    assert_eq!(g.get(GlobalCounter::SaRequestDeduplicated), 1);
    assert_eq!(g.get(GlobalCounter::SaRequestOverflow), 1);
    w.set_request_interval_ms(0);
    assert_eq!(r.post_sa_request(&a, 6001), PostOutcome::Posted);
    assert_eq!(w.poll_sa_request(7000).unwrap().at_ms, 6001);
    assert_eq!(w.poll_sa_request(7000), None);
}

#[test]
fn sa_request_stalled_producer_skipped() {
    let mut w = SaDb::in_memory(Geometry {
        capacity: 4,
        ring_capacity: 8,
        request_entries: 16,
    })
    .unwrap();
    let r = w.reader().clone();
    // A producer that claimed position 0 and died before publishing.
    r.words()[hdr::RING_TAIL].store(1, Ordering::Relaxed);
    assert_eq!(r.post_sa_request(&request("A", 1), 10), PostOutcome::Posted);
    assert_eq!(w.poll_sa_request(100), None);
    assert_eq!(w.poll_sa_request(100 + ring::STALL_SKIP_MS - 1), None);
    let got = w.poll_sa_request(100 + ring::STALL_SKIP_MS).unwrap();
    assert_eq!(got.crypto_map.as_str(), "A");
    assert_eq!(r.global().get(GlobalCounter::SaRequestLost), 1);
    // The ring keeps working across the skipped cell and a full lap.
    for i in 0..20u32 {
        assert_eq!(r.post_sa_request(&request("B", i), 10), PostOutcome::Posted);
        assert_eq!(w.poll_sa_request(200).unwrap().crypto_map_seq, i);
    }
}

#[test]
fn image_round_trip_and_keys_zeroed() {
    let mut w = mem(4);
    let rec = inbound(0xfeed);
    let key = rec.enc_key.as_bytes().to_vec();
    let s = w.install(&rec).unwrap();
    let img = w.reader().image();
    assert!(img.windows(key.len()).any(|x| x == key.as_slice()));
    let copy = SaDb::from_bytes(&img).unwrap();
    assert_eq!(copy.read_slot(s).unwrap().unwrap().record, rec);
    w.delete(s).unwrap();
    let img = w.reader().image();
    assert!(!img.windows(key.len()).any(|x| x == key.as_slice()));
    assert!(matches!(
        SaDb::from_bytes(&img[..img.len() - 8]),
        Err(OpenError::Truncated { .. })
    ));
    let mut bad = img.clone();
    bad[0] ^= 1;
    assert!(matches!(
        SaDb::from_bytes(&bad),
        Err(OpenError::BadMagic(_))
    ));
}

#[test]
fn corrupt_slot_is_reported_not_fatal() {
    let mut w = mem(4);
    let a = w.install(&inbound(1)).unwrap();
    let b = w.install(&inbound(2)).unwrap();
    let r = w.reader().clone();
    // Direction byte of slot b's record := 9 (inside a consistent seqlock).
    let base = r.layout().slot_word(b.index());
    r.words()[base + 2].fetch_xor(0x0b << 32, Ordering::Relaxed);
    let snap = r.snapshot_all().unwrap();
    assert_eq!(snap.entries.len(), 1);
    assert_eq!(snap.entries[0].slot, a);
    assert_eq!(snap.corrupt, vec![(b, "direction")]);
}

#[test]
fn stalled_writer_reported() {
    let mut w = mem(2);
    let s = w.install(&inbound(1)).unwrap();
    let r = w.reader().clone();
    let base = r.layout().slot_word(s.index());
    r.words()[base].fetch_add(1, Ordering::Relaxed);
    assert_eq!(r.read_slot(s), Err(ReadError::WriterStalled));
    r.words()[base].fetch_add(1, Ordering::Relaxed);
    assert!(r.read_slot(s).unwrap().is_some());
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SaDbReader>();
    check::<SaDbWriter>();
    check::<Snapshot>();
}

#[test]
fn delete_expired_and_all() {
    let mut w = mem(8);
    let mut a = inbound(1);
    a.created_at = 1000;
    a.lifetime_secs = 3600;
    let mut b = outbound(2);
    b.created_at = 1000;
    b.lifetime_secs = 100;
    let mut c = outbound(3);
    c.created_at = 0;
    c.lifetime_secs = 0; // no time lifetime
    let sa = w.install(&a).unwrap();
    let sb = w.install(&b).unwrap();
    w.install(&c).unwrap();
    assert_eq!(w.entries().len(), 3);
    assert!(w.delete_expired(1099).is_empty());
    assert_eq!(
        w.delete_expired(1100),
        vec![(sb, b.spi, Direction::Outbound)]
    );
    assert_eq!(
        w.delete_expired(4600),
        vec![(sa, a.spi, Direction::Inbound)]
    );
    assert_eq!(w.reader().lookup_inbound(a.spi).unwrap(), None);
    assert_eq!(w.delete_all(), 1);
    assert!(w.entries().is_empty());
}
