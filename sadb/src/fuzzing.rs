//! The body of the `sadb_region` fuzz target, here so that a unit test runs it on random
//! inputs in every `cargo test` (no fuzzer needed) and the target stays three lines.
//!
//! Everything in a region may be garbage after a crash or a stray write from another
//! process: header validation, record decoding, the SPI index, the counters, the ring and
//! the request table must then give typed errors or skip, never panic or hang.

use std::net::Ipv4Addr;

use super::layout::{hdr, RECORD_BYTES};
use super::*;

/// Byte offset from which [`exercise`] overlays its input on a valid region: everything
/// after the checksummed static header (generation, ring head/tail, counters, slots, index,
/// ring cells, request table).
const OVERLAY_FROM: usize = hdr::GENERATION * 8;

/// Feeds `data` to every parser of the region.
pub fn exercise(data: &[u8]) {
    // 1. The input as a whole region image: header validation.
    if let Ok(r) = SaDb::from_bytes(data) {
        let _ = r.snapshot_all();
    }

    // 2. The input as one record.
    if data.len() >= RECORD_BYTES {
        let mut b = [0u8; RECORD_BYTES];
        b.copy_from_slice(&data[..RECORD_BYTES]);
        if let Ok(rec) = SaRecord::decode(&b) {
            let mut again = [0u8; RECORD_BYTES];
            rec.encode(&mut again).expect("a decoded record encodes");
            assert_eq!(again, b, "decode/encode round trip");
        }
    }

    // 3. The input overlaid on the body of a valid small region, then used by both sides.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let geometry = Geometry {
        capacity: u32::from(first % 8) + 1,
        ring_capacity: 4,
        request_entries: 4,
    };
    let Ok(fresh) = SaDb::in_memory(geometry) else {
        return;
    };
    let mut image = fresh.reader().image();
    let n = rest.len().min(image.len() - OVERLAY_FROM);
    image[OVERLAY_FROM..OVERLAY_FROM + n].copy_from_slice(&rest[..n]);
    let Ok(mut w) = SaDb::writer_from_bytes(&image) else {
        return;
    };
    let r = w.reader().clone();
    let snap = match r.snapshot_all() {
        Ok(s) => s,
        Err(_) => return,
    };
    for e in &snap.entries {
        if e.record.direction == Direction::Inbound {
            let _ = r.lookup_inbound(e.record.spi);
        }
        let c = r.counters(e.slot).expect("slot in range");
        c.add_packets(1, 1500);
        c.add_drop(DropReason::Replay, 1);
        let _ = c.values();
        let _ = r.reserve_outbound_seq(e.slot, 64);
    }
    for chunk in rest.chunks_exact(4).take(8) {
        let spi = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let _ = r.lookup_inbound(spi);
        let _ = r.read_slot(SlotId(spi % (geometry.capacity + 1)));
    }
    for i in 0..(geometry.ring_capacity as u64 * 3) {
        let _ = w.poll_sa_request(i * ring::STALL_SKIP_MS);
    }
    let req = SaRequest {
        crypto_map: MapName::new("FUZZ").expect("valid name"),
        crypto_map_seq: u32::from(first),
        acl_rule: None,
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
        protocol: 6,
        src_port: 1,
        dst_port: 2,
        worker: 0,
        at_ms: 0,
    };
    for t in 0..6 {
        let _ = r.post_sa_request(&req, t * 10_000);
        let _ = w.poll_sa_request(t * 10_000);
    }
    if let Some(e) = snap.entries.first() {
        let _ = w.mark_dying(e.slot);
        let _ = w.delete(e.slot);
    }
    let rec = SaRecord::derived(u64::from(first) << 32);
    if let Ok(slot) = w.install(&rec) {
        assert_eq!(
            r.read_slot(slot).ok().flatten().map(|e| e.record),
            Some(rec),
            "a freshly installed record reads back"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5ad6);
        let size = SaDb::in_memory(Geometry {
            capacity: 8,
            ring_capacity: 4,
            request_entries: 4,
        })
        .unwrap()
        .reader()
        .image()
        .len();
        for i in 0..300 {
            let len = rng.random_range(0..size);
            let mut data = vec![0u8; len];
            // Mostly sparse garbage (realistic: a few bad words), sometimes dense.
            if i % 3 == 0 {
                rng.fill(&mut data[..]);
            } else {
                for _ in 0..rng.random_range(0..64) {
                    if len > 0 {
                        let at = rng.random_range(0..len);
                        data[at] = rng.random();
                    }
                }
            }
            exercise(&data);
        }
        // Found by the fuzzer: a generation word of all ones overflowed on repair.
        exercise(&[
            0xcb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        // Every word of the dynamic header and body set to all ones.
        exercise(&vec![0xff; size]);
        // And a valid image of a populated region.
        let mut w = SaDb::in_memory(Geometry::with_capacity(4)).unwrap();
        w.install(&SaRecord::derived(3 << 32)).unwrap();
        exercise(&w.reader().image());
    }
}
