//! Costs of the SA database operations on the hot and refresh paths, each beside a
//! same-run baseline. Ignored by default; run with
//! `cargo test --release -p espgw-sadb --test sadb_bench -- --ignored --nocapture`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use espgw_sadb::*;

fn ns_per<F: FnMut(u64)>(iters: u64, mut f: F) -> f64 {
    // Warm up, then measure.
    for i in 0..iters / 10 {
        f(i);
    }
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn rec(v: u64, dir: Direction) -> SaRecord {
    let mut r = SaRecord::derived(v);
    r.direction = dir;
    r
}

#[test]
#[ignore]
fn sadb_costs() {
    let path = format!("/dev/shm/espgw-sadb-bench-{}", std::process::id());
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(path.clone());
    let mut w = SaDb::create(&path, 4096).unwrap();
    let r = SaDb::open(&path).unwrap();
    let n_sa = 2000u64;
    let mut spis = Vec::new();
    let mut map = HashMap::new();
    let mut out_slot = None;
    for i in 0..n_sa {
        let dir = if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let rc = rec((((i << 9) + 0x1000) << 32) | i, dir);
        let s = w.install(&rc).unwrap();
        if dir == Direction::Inbound {
            spis.push(rc.spi);
            map.insert(rc.spi, rc.clone());
        } else {
            out_slot = Some(s);
        }
    }
    let out_slot = out_slot.unwrap();
    let local = AtomicU64::new(0);

    let gen = ns_per(10_000_000, |_| {
        black_box(r.generation());
    });
    let local_load = ns_per(10_000_000, |_| {
        black_box(local.load(Ordering::Acquire));
    });
    let seq = ns_per(5_000_000, |_| {
        black_box(r.reserve_outbound_seq(out_slot, 64).ok());
    });
    let local_add = ns_per(5_000_000, |_| {
        black_box(local.fetch_add(64, Ordering::Relaxed));
    });
    let c = r.counters(out_slot).unwrap();
    let cnt = ns_per(5_000_000, |_| c.add_packets(64, 64 * 1400));
    let look = ns_per(1_000_000, |i| {
        black_box(
            r.lookup_inbound(spis[(i as usize * 7919) % spis.len()])
                .unwrap(),
        );
    });
    let hash = ns_per(1_000_000, |i| {
        black_box(map.get(&spis[(i as usize * 7919) % spis.len()]).cloned());
    });
    let t = Instant::now();
    let reps = 50;
    for _ in 0..reps {
        let s = r.snapshot_all().unwrap();
        assert_eq!(s.entries.len() as u64, n_sa);
        assert!(s.consistent);
    }
    let snap_us = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    let t = Instant::now();
    let churn = 20_000u64;
    let mut slot = w
        .install(&rec(0xf000_0000 << 32, Direction::Inbound))
        .unwrap();
    for i in 0..churn {
        w.delete(slot).unwrap();
        slot = w
            .install(&rec(
                (0xf000_0000 | ((i + 1) & 1)) << 32,
                Direction::Inbound,
            ))
            .unwrap();
    }
    let churn_us = t.elapsed().as_secs_f64() * 1e6 / churn as f64;
    let req = SaRequest::ping("VPN", 10).unwrap();
    assert_eq!(r.post_sa_request(&req, 1000), PostOutcome::Posted);
    let dedup = ns_per(2_000_000, |_| {
        black_box(r.post_sa_request(&req, 1001));
    });

    eprintln!("generation() load          {gen:7.2} ns   (baseline: local AtomicU64 load {local_load:.2} ns)");
    eprintln!(
        "reserve_outbound_seq(64)   {seq:7.2} ns   (baseline: local fetch_add {local_add:.2} ns)"
    );
    eprintln!("counters add_packets       {cnt:7.2} ns   (two fetch_adds)");
    eprintln!(
        "lookup_inbound, {n_sa} SAs  {look:7.2} ns   (baseline: HashMap get + clone {hash:.2} ns)"
    );
    eprintln!("snapshot_all, {n_sa} SAs    {snap_us:7.1} us");
    eprintln!("delete + install           {churn_us:7.2} us");
    eprintln!("post_sa_request (dedup)    {dedup:7.2} ns");
}
