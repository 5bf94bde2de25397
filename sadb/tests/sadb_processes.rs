//! The SA database between real processes: a writer process rewrites records as fast as it
//! can while this process reads them (no torn record may ever be seen), and several
//! processes with several threads each bump counters and reserve sequence numbers at once
//! (sums exact, sequence numbers unique).
//!
//! The child processes are this test binary itself, started with `ESPGW_SADB_CHILD` set so
//! that the `child_entry` test plays the child's role (it does nothing in a normal run).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use espgw_sadb::*;

mod common;
use common::TempRegion;

const CHILD_ENV: &str = "ESPGW_SADB_CHILD";
const PATH_ENV: &str = "ESPGW_SADB_PATH";

/// Slots the writer child keeps rewriting.
const SLOTS: u64 = 8;
/// In-place updates the writer child performs.
const UPDATES: u64 = 150_000;
/// Counter child: threads and iterations per thread.
const THREADS: usize = 4;
const ITERS: u64 = 20_000;
const SEQ_BATCH: u64 = 3;

/// A child process killed (by its PID, through `Child`) if the test fails first.
struct ChildGuard(Option<Child>);
impl ChildGuard {
    fn spawn(role: &str, path: &Path, extra: &[(&str, String)]) -> ChildGuard {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, role)
        .env(PATH_ENV, path)
        .stdout(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        ChildGuard(Some(cmd.spawn().unwrap()))
    }
    fn running(&mut self) -> bool {
        matches!(self.0.as_mut().unwrap().try_wait(), Ok(None))
    }
    fn wait_ok(mut self) {
        let st = self.0.take().unwrap().wait().unwrap();
        assert!(st.success(), "child failed: {st}");
    }
}
impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Value of record `i` at version `k`: upper half fixes SPI and direction per slot.
fn value(i: u64, k: u64) -> u64 {
    ((0x1000 + i) << 32) | (k << 8) | i
}

#[test]
fn child_entry() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var(PATH_ENV).unwrap());
    match role.as_str() {
        "writer" => writer_child(&path),
        "counters" => counter_child(
            &path,
            std::env::var("ESPGW_SADB_ID").unwrap().parse().unwrap(),
        ),
        other => panic!("unknown role {other}"),
    }
}

fn writer_child(path: &Path) {
    let mut w = SaDb::open_writer(path).unwrap();
    let snap = w.reader().snapshot_all().unwrap();
    let mut slots: Vec<SlotId> = snap.entries.iter().map(|e| e.slot).collect();
    slots.sort();
    assert_eq!(slots.len() as u64, SLOTS);
    // At least UPDATES updates and at least two seconds of them, so that the reader
    // overlaps the writes however fast an optimised build runs; `value` keeps k below 2^24.
    let start = Instant::now();
    let mut k = 0u64;
    while k < (1 << 23) && (k < UPDATES || start.elapsed() < Duration::from_secs(2)) {
        k += 1;
        let i = k % SLOTS;
        let v = value(i, k);
        if k.is_multiple_of(61) {
            // Delete and reinstall: the slot is zeroed, then reused (or another one).
            w.delete(slots[i as usize]).unwrap();
            slots[i as usize] = w.install(&SaRecord::derived(v)).unwrap();
        } else if k.is_multiple_of(17) {
            w.mark_dying(slots[i as usize]).unwrap();
        } else {
            w.update(slots[i as usize], &SaRecord::derived(v)).unwrap();
        }
    }
    // The reader derives the expected final state from the number of updates done.
    std::fs::write(path.with_extension("final"), k.to_string()).unwrap();
}

#[test]
fn reader_never_sees_a_torn_record_from_a_writer_process() {
    let t = TempRegion::new("torn");
    let mut w = SaDb::create(t.path(), 64).unwrap();
    for i in 0..SLOTS {
        w.install(&SaRecord::derived(value(i, 0))).unwrap();
    }
    drop(w); // the child becomes the writer
    let r = SaDb::open(t.path()).unwrap();
    let inbound_spis: Vec<u32> = (0..SLOTS)
        .map(|i| SaRecord::derived(value(i, 0)))
        .filter(|rec| rec.direction == Direction::Inbound)
        .map(|rec| rec.spi)
        .collect();
    assert!(!inbound_spis.is_empty());

    let mut child = ChildGuard::spawn("writer", t.path(), &[]);
    let started = Instant::now();
    let (mut reads, mut changes, mut lookups, mut snapshots, mut racy_torn) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut last = vec![0u64; 64];
    let mut distinct = HashSet::new();
    let mut g_seen = r.generation();
    let mut gen_changes = 0u64;
    let mut consistent = 0u64;
    while child.running() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "writer child too slow"
        );
        for s in 0..64u32 {
            match r.read_slot(SlotId(s)) {
                Ok(Some(e)) => {
                    let v = e
                        .record
                        .derived_value()
                        .unwrap_or_else(|| panic!("torn record in slot {s}: {:?}", e.record));
                    reads += 1;
                    if v != last[s as usize] {
                        changes += 1;
                        last[s as usize] = v;
                    }
                    distinct.insert(v);
                }
                Ok(None) => {}
                Err(ReadError::WriterStalled) => panic!("writer stalled"),
                Err(e) => panic!("read error {e}"),
            }
            // The same read without the lock shows that tearing is possible here.
            if let Ok(Some(e)) = r.read_slot_unlocked(SlotId(s)) {
                if e.record.derived_value().is_none() {
                    racy_torn += 1;
                }
            } else if let Err(ReadError::CorruptRecord { .. }) = r.read_slot_unlocked(SlotId(s)) {
                racy_torn += 1;
            }
        }
        for spi in &inbound_spis {
            if let Some(e) = r.lookup_inbound(*spi).unwrap() {
                assert_eq!(e.record.spi, *spi);
                assert!(e.record.derived_value().is_some(), "torn lookup");
                lookups += 1;
            }
        }
        let g = r.generation();
        if g != g_seen {
            gen_changes += 1;
            let snap = r.snapshot_all().unwrap();
            for e in &snap.entries {
                assert!(
                    e.record.derived_value().is_some(),
                    "torn record in snapshot"
                );
            }
            assert!(snap.corrupt.is_empty());
            if snap.consistent {
                // Between a delete and the reinstall one SA may be missing.
                let n = snap.entries.len() as u64;
                assert!(n == SLOTS || n == SLOTS - 1, "{n} entries");
                consistent += 1;
            } else {
                // The writer moved on during the scan: a reader preempted mid-scan may see
                // several generations of delete-and-reinstall side by side (each record still
                // whole, checked above), but never more records than the region has slots.
                assert!(snap.entries.len() <= 64, "{} entries", snap.entries.len());
            }
            g_seen = snap.generation;
            snapshots += 1;
        }
    }
    child.wait_ok();
    let updates: u64 = std::fs::read_to_string(t.path().with_extension("final"))
        .unwrap()
        .parse()
        .unwrap();
    eprintln!(
        "reads {reads}, value changes seen {changes}, distinct {}, lookups {lookups}, snapshots {snapshots}, \
         generation changes {gen_changes} ({consistent} consistent), torn reads without the lock {racy_torn}",
        distinct.len()
    );
    // The reads really overlapped the writes.
    assert!(changes > 200, "only {changes} changes observed");
    assert!(gen_changes > 20);
    // Final state: exactly SLOTS SAs, each the writer's last version of its record.
    let snap = r.snapshot_all().unwrap();
    assert!(snap.consistent);
    assert_eq!(snap.entries.len() as u64, SLOTS);
    let mut finals: Vec<u64> = snap
        .entries
        .iter()
        .map(|e| e.record.derived_value().unwrap())
        .collect();
    finals.sort();
    // mark_dying keeps the value; updates and reinstalls set it.
    let sets_value = |k: u64| k.is_multiple_of(61) || !k.is_multiple_of(17);
    let mut want: Vec<u64> = (0..SLOTS)
        .map(|i| {
            let k = (1..=updates)
                .rev()
                .find(|&k| k % SLOTS == i && sets_value(k))
                .unwrap();
            value(i, k)
        })
        .collect();
    want.sort();
    assert_eq!(finals, want);
}

fn counter_child(path: &Path, id: usize) {
    let r = SaDb::open(path).unwrap();
    let slot = r.snapshot_all().unwrap().entries[0].slot;
    let starts = run_counter_threads(&r, slot);
    let bytes: Vec<u8> = starts.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path.with_extension(format!("seq{id}")), bytes).unwrap();
}

/// THREADS threads, each ITERS times: one packet of 100 bytes, one replay drop, one global
/// no-SA drop, SEQ_BATCH sequence numbers. Returns the first number of every range.
fn run_counter_threads(r: &SaDbReader, slot: SlotId) -> Vec<u64> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let c = r.counters(slot).unwrap();
                    let mut starts = Vec::with_capacity(ITERS as usize);
                    for _ in 0..ITERS {
                        c.add_packets(1, 100);
                        c.add_drop(DropReason::Replay, 1);
                        r.global().add_drop(DropReason::NoSa, 1);
                        let range = r.reserve_outbound_seq(slot, SEQ_BATCH).unwrap();
                        assert_eq!(range.end - range.start, SEQ_BATCH);
                        starts.push(range.start);
                    }
                    starts
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn counters_from_many_threads_and_processes_sum_exactly() {
    let t = TempRegion::new("counters");
    let mut w = SaDb::create(t.path(), 4).unwrap();
    let mut rec = SaRecord::derived(1 << 32);
    rec.direction = Direction::Outbound;
    let slot = w.install(&rec).unwrap();
    let children: Vec<ChildGuard> = (0..2)
        .map(|id| ChildGuard::spawn("counters", t.path(), &[("ESPGW_SADB_ID", id.to_string())]))
        .collect();
    let r = SaDb::open(t.path()).unwrap();
    let mut starts = run_counter_threads(&r, slot);
    for c in children {
        c.wait_ok();
    }
    for id in 0..2 {
        let b = std::fs::read(t.path().with_extension(format!("seq{id}"))).unwrap();
        starts.extend(
            b.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
        );
    }
    let total = 3 * THREADS as u64 * ITERS;
    let v = w.reader().counters(slot).unwrap().values();
    assert_eq!(v.packets, total);
    assert_eq!(v.bytes, total * 100);
    assert_eq!(v.drop_count(DropReason::Replay), total);
    assert_eq!(v.drop_count(DropReason::Auth), 0);
    assert_eq!(w.reader().global().drops(DropReason::NoSa), total);
    assert_eq!(v.seq_used, total * SEQ_BATCH);
    // Every range distinct, together exactly 1 ..= total * SEQ_BATCH.
    starts.sort_unstable();
    assert_eq!(starts.len() as u64, total);
    for (i, s) in starts.iter().enumerate() {
        assert_eq!(*s, 1 + i as u64 * SEQ_BATCH);
    }
    drop(w);
}
