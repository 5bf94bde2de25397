//! The sa_request ring under multi-producer load: nothing lost below capacity, overflow
//! counted (never blocking), every event intact, deduplication across producers.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use espgw_sadb::*;

const PRODUCERS: u16 = 4;

/// Request number `n` of producer `p`: every field derived from (p, n), so a torn or mixed
/// event is detectable; the rule index makes each a distinct crypto-map entry.
fn req(p: u16, n: u32) -> SaRequest {
    SaRequest {
        crypto_map: MapName::new(&format!("MAP{p}")).unwrap(),
        crypto_map_seq: n,
        acl_rule: Some(n ^ 0x5555),
        src: Ipv4Addr::from(0x0a01_0000 | n),
        dst: Ipv4Addr::from(0x0a02_0000 | u32::from(p)),
        protocol: (n % 251) as u8,
        src_port: n as u16,
        dst_port: (n as u16) ^ p,
        worker: p,
        at_ms: 0,
    }
}

fn check(r: &SaRequest) -> (u16, u32) {
    let p = r.worker;
    let n = r.crypto_map_seq;
    assert_eq!(
        *r,
        SaRequest {
            at_ms: r.at_ms,
            ..req(p, n)
        },
        "mixed event"
    );
    (p, n)
}

fn db(ring: u32, entries: u32) -> SaDbWriter {
    let mut w = SaDb::in_memory(Geometry {
        capacity: 4,
        ring_capacity: ring,
        request_entries: entries,
    })
    .unwrap();
    w.set_request_interval_ms(60_000);
    w
}

#[test]
fn no_loss_below_capacity_then_overflow_counted() {
    let mut w = db(1024, 4096);
    let r = w.reader().clone();
    let per = 1024 / u32::from(PRODUCERS);
    std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let r = &r;
            s.spawn(move || {
                for n in 0..per {
                    assert_eq!(r.post_sa_request(&req(p, n), 1000), PostOutcome::Posted);
                }
            });
        }
    });
    assert_eq!(r.pending_sa_requests(), 1024);
    // Full: more posts overflow, immediately.
    let t = std::time::Instant::now();
    for n in 0..100 {
        assert_eq!(r.post_sa_request(&req(9, n), 1000), PostOutcome::Overflow);
    }
    assert!(t.elapsed().as_secs() < 1);
    let g = r.global();
    assert_eq!(g.get(GlobalCounter::SaRequestPosted), 1024);
    assert_eq!(g.get(GlobalCounter::SaRequestOverflow), 100);
    let mut seen = HashSet::new();
    let mut per_producer_last = vec![None::<u32>; PRODUCERS as usize];
    while let Some(e) = w.poll_sa_request(1000) {
        let (p, n) = check(&e);
        assert!(seen.insert((p, n)), "duplicate");
        // One producer's events come out in its order.
        let last = &mut per_producer_last[p as usize];
        assert!(last.is_none_or(|l| l < n));
        *last = Some(n);
    }
    assert_eq!(seen.len(), 1024);
}

#[test]
fn concurrent_producers_and_consumer_account_for_every_event() {
    let mut w = db(64, 1 << 16);
    let r = w.reader().clone();
    let per: u32 = 10_000;
    let done = AtomicBool::new(false);
    let mut outcomes = Vec::new();
    let mut seen = HashSet::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let r = &r;
                s.spawn(move || {
                    let (mut posted, mut over) = (0u64, 0u64);
                    for n in 0..per {
                        match r.post_sa_request(&req(p, n), 1000) {
                            PostOutcome::Posted => posted += 1,
                            PostOutcome::Overflow => over += 1,
                            PostOutcome::Deduplicated => panic!("distinct entries deduplicated"),
                        }
                    }
                    (posted, over)
                })
            })
            .collect();
        let consumer = s.spawn(|| loop {
            let finished = done.load(Ordering::Acquire);
            let mut got = false;
            while let Some(e) = w.poll_sa_request(1000) {
                assert!(seen.insert(check(&e)), "duplicate");
                got = true;
            }
            if finished && !got {
                break;
            }
            std::hint::spin_loop();
        });
        for h in hs {
            outcomes.push(h.join().unwrap());
        }
        done.store(true, Ordering::Release);
        consumer.join().unwrap();
    });
    let posted: u64 = outcomes.iter().map(|o| o.0).sum();
    let over: u64 = outcomes.iter().map(|o| o.1).sum();
    eprintln!("posted {posted}, overflowed {over}");
    assert_eq!(posted + over, u64::from(per) * u64::from(PRODUCERS));
    assert_eq!(
        seen.len() as u64,
        posted,
        "every posted event consumed exactly once"
    );
    let g = r.global();
    assert_eq!(g.get(GlobalCounter::SaRequestPosted), posted);
    assert_eq!(g.get(GlobalCounter::SaRequestOverflow), over);
    assert_eq!(g.get(GlobalCounter::SaRequestLost), 0);
    assert_eq!(r.pending_sa_requests(), 0);
}

#[test]
fn dedup_across_producers() {
    let mut w = db(256, 64);
    let r = w.reader().clone();
    // Every producer sees traffic for the same two entries at once, many times.
    let outcomes: Vec<(u64, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let r = &r;
                s.spawn(move || {
                    let (mut posted, mut dedup) = (0, 0);
                    for i in 0..2000u32 {
                        let mut q = req(0, i % 2);
                        q.worker = p;
                        q.src = Ipv4Addr::new(10, 1, 1, (i % 200) as u8);
                        match r.post_sa_request(&q, 5000 + u64::from(i / 1000)) {
                            PostOutcome::Posted => posted += 1,
                            PostOutcome::Deduplicated => dedup += 1,
                            PostOutcome::Overflow => panic!("overflow"),
                        }
                    }
                    (posted, dedup)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let posted: u64 = outcomes.iter().map(|o| o.0).sum();
    let dedup: u64 = outcomes.iter().map(|o| o.1).sum();
    assert_eq!(posted, 2, "one request per entry within the interval");
    assert_eq!(dedup, 2000 * u64::from(PRODUCERS) - 2);
    let mut got: Vec<u32> = std::iter::from_fn(|| w.poll_sa_request(9000))
        .map(|e| e.crypto_map_seq)
        .collect();
    got.sort();
    assert_eq!(got, vec![0, 1]);
    assert_eq!(r.global().get(GlobalCounter::SaRequestDeduplicated), dedup);

    // After the interval, the entry may ask again — once.
    let later = 5000 + 60_000;
    let n = (0..PRODUCERS)
        .filter(|_| r.post_sa_request(&req(0, 0), later) == PostOutcome::Posted)
        .count();
    assert_eq!(n, 1);
    // Control clears the limit (negotiation failed): the next packet asks at once.
    w.clear_request_rate_limit(&req(0, 0).crypto_map, 0, req(0, 0).acl_rule);
    assert_eq!(
        r.post_sa_request(&req(0, 0), later + 1),
        PostOutcome::Posted
    );
}

#[test]
fn request_table_full_still_posts() {
    let mut w = db(64, 4);
    let r = w.reader().clone();
    for n in 0..8 {
        assert_eq!(r.post_sa_request(&req(1, n), 1000), PostOutcome::Posted);
    }
    assert_eq!(r.global().get(GlobalCounter::SaRequestTableFull), 4);
    assert_eq!(std::iter::from_fn(|| w.poll_sa_request(1000)).count(), 8);
}
