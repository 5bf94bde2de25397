//! Two endpoints negotiate (Main Mode + Quick Mode) while the fuzzer corrupts, truncates,
//! drops or duplicates each datagram in flight and moves the clock: no panic, and the
//! number of ISAKMP SAs and IPsec SA pairs on each side stays bounded.
#![no_main]

use espgw_control::ike::*;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

mod common;

fn endpoint(me: [u8; 4], peer: [u8; 4], l: [u8; 4], r: [u8; 4], seed: u64, mode: Phase1Mode) -> Endpoint {
    let mut c = common::config(me, peer, l, r, mode);
    c.half_open_limit = 4;
    c.dpd = Some((Duration::from_secs(10), Duration::from_secs(2)));
    c.maps[0].lifetime_secs = 120;
    common::endpoint(c, seed)
}

fuzz_target!(|data: &[u8]| {
    let mode = if data.first().copied().unwrap_or(0) & 1 == 0 { Phase1Mode::Main } else { Phase1Mode::Aggressive };
    let mut a = endpoint([172, 16, 172, 10], [172, 16, 172, 20], [10, 1, 1, 0], [10, 1, 2, 0], 1, mode);
    let mut b = endpoint([172, 16, 172, 20], [172, 16, 172, 10], [10, 1, 2, 0], [10, 1, 1, 0], 2, mode);
    let mut now = Instant::now();
    a.initiate(now, "vpn", 10);
    let mut ops = data.get(1..).unwrap_or(&[]).chunks(3);
    for _ in 0..200 {
        let mut moved = false;
        for from_a in [true, false] {
            let mut out = Vec::new();
            let srcr = if from_a { &mut a } else { &mut b };
            while let Some(t) = srcr.poll_transmit() {
                out.push(t);
            }
            let dstr = if from_a { &mut b } else { &mut a };
            for mut t in out {
                moved = true;
                let op = ops.next().unwrap_or(&[2, 0, 0]);
                let (k, pos, val) = (op[0], *op.get(1).unwrap_or(&0) as usize, *op.get(2).unwrap_or(&0));
                match k % 5 {
                    0 if !t.data.is_empty() => {
                        let i = pos % t.data.len();
                        t.data[i] ^= val | 1;
                    }
                    1 if !t.data.is_empty() => t.data.truncate(pos % t.data.len()),
                    3 => continue,
                    4 => dstr.handle_datagram(now, t.remote, t.local, &t.data),
                    _ => {}
                }
                dstr.handle_datagram(now, t.remote, t.local, &t.data);
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        while a.poll_debug().is_some() {}
        while b.poll_debug().is_some() {}
        if !moved {
            let Some(op) = ops.next() else { break };
            now += Duration::from_secs(op[0] as u64);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        assert!(a.isakmp_sa_count() <= 6 && b.isakmp_sa_count() <= 6);
        assert!(a.ipsec_sa_pair_count() <= 4 && b.ipsec_sa_pair_count() <= 4);
    }
});
