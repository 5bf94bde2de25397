//! Several workers on one SA at once: outbound sequence numbers stay unique and gap-free
//! across threads (one atomic add per batch); inbound, every packet is delivered exactly
//! once however the copies race through the workers' batches.

mod esp_common;

use esp_common::*;
use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, DropReason, EspContext, Frame, InboundSa,
    OutboundSa, SaKeys, SaParams,
};
use std::collections::HashSet;
use std::sync::Arc;

const THREADS: usize = 4;
const PER_THREAD: usize = 600;
const BATCH: usize = 32;

fn sas(t: Transform) -> (OutboundSa, InboundSa) {
    let (enc, auth) = keys_for(t, 77);
    let keys = SaKeys::new(&enc, &auth);
    let out = OutboundSa::new(SaParams::tunnel(0xc0c0_0001, t, LOCAL, REMOTE), &keys).unwrap();
    let mut p = SaParams::tunnel(0xc0c0_0001, t, REMOTE, LOCAL);
    p.replay_window = 4096;
    (out, InboundSa::new(p, &keys).unwrap())
}

#[test]
fn workers_share_one_sa_in_both_directions() {
    for name in ["esp-3des esp-md5-hmac", "esp-gcm"] {
        let t = Transform::parse(name).unwrap();
        let (out, inb) = sas(t);
        let (out, inb) = (Arc::new(out), Arc::new(inb));
        // Outbound: each worker encapsulates its own packets through the shared SA.
        let handles: Vec<_> = (0..THREADS)
            .map(|w| {
                let out = out.clone();
                std::thread::spawn(move || {
                    let mut ctx = EspContext::new();
                    let mut dc = DropCounters::default();
                    let mut done = Vec::new();
                    for chunk in (0..PER_THREAD).collect::<Vec<_>>().chunks(BATCH) {
                        let mut fs: Vec<Frame<Vec<u8>>> = chunk
                            .iter()
                            .map(|&i| Frame::with_room(&inner_frame(20 + i % 50, w as u8)))
                            .collect();
                        let n = encapsulate_batch(&mut fs, |_| Some(&*out), &mut ctx, &mut dc);
                        assert_eq!(n, fs.len());
                        done.extend(fs.into_iter().map(|f| f.data().to_vec()));
                    }
                    done
                })
            })
            .collect();
        let esp: Vec<Vec<u8>> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let total = THREADS * PER_THREAD;
        let seqs: HashSet<u32> = esp
            .iter()
            .map(|f| u32::from_be_bytes(f[38..42].try_into().unwrap()))
            .collect();
        assert_eq!(seqs.len(), total, "{name}: sequence numbers unique");
        assert_eq!(
            (1..=total as u32).collect::<HashSet<_>>(),
            seqs,
            "{name}: no gaps"
        );
        assert_eq!(out.seq.peek(), total as u64 + 1);

        // Inbound: every worker sees every packet (a duplicate of each per worker), in its
        // own batch boundaries and rotated order.
        let esp = Arc::new(esp);
        let handles: Vec<_> = (0..THREADS)
            .map(|w| {
                let (inb, esp) = (inb.clone(), esp.clone());
                std::thread::spawn(move || {
                    let mut dc = DropCounters::default();
                    let mut delivered = Vec::new();
                    let mut order: Vec<usize> = (0..esp.len()).collect();
                    order.rotate_left(w * 7);
                    for chunk in order.chunks(BATCH - w) {
                        let mut fs: Vec<Frame<Vec<u8>>> =
                            chunk.iter().map(|&i| Frame::with_room(&esp[i])).collect();
                        let idx: Vec<usize> = chunk.to_vec();
                        let n = decapsulate_batch(&mut fs, |_| Some(&*inb), &mut dc);
                        for f in &fs[..n] {
                            delivered.push(idx[f.batch_index()]);
                        }
                    }
                    (delivered, dc)
                })
            })
            .collect();
        let mut seen = vec![0u32; total];
        let mut drops = DropCounters::default();
        for h in handles {
            let (d, dc) = h.join().unwrap();
            for i in d {
                seen[i] += 1;
            }
            drops.merge(&dc);
        }
        assert!(
            seen.iter().all(|&c| c == 1),
            "{name}: every packet exactly once"
        );
        // The window (4096) spans every packet, so all other copies are replays.
        assert_eq!(
            drops.get(DropReason::Replay),
            ((THREADS - 1) * total) as u64,
            "{name}: {drops:?}"
        );
        assert_eq!(drops.total(), drops.get(DropReason::Replay));
        assert_eq!(
            inb.counters
                .packets
                .load(std::sync::atomic::Ordering::Relaxed),
            total as u64
        );
    }
}
