//! Issue #14: one SA's inbound ESP spread over two workers (`--fanout 2`) at both ends
//! of the lab tunnel (hostA → R1 → R2 → hostB, two queues and `--cores 0,1` per
//! router), with the replay window at IOS's 64 (`--min-replay-window 64`, SAs of 64):
//! trafgen blasts one flow (one SA, one RX queue at R2); R2's receiving worker must hand
//! slices to the other, the other must decrypt them, and not one packet may be dropped
//! as a replay or out of window. Prints the rates. The CI form runs until 1 M packets
//! or 30 s of traffic; the ignored form runs a `--fanout 1` baseline, then until R2
//! decapsulated 10 M packets, and prints the ratio.
//! `ESPGW_SHARED_HOST=1 cargo test -p espgw-dataplane --test xdp_fanout -- --test-threads=1`

#[path = "xdp_support/tunnel.rs"]
mod tunnel;
mod xdp_support;

use std::time::{Duration, Instant};
use tunnel::{tunnel_with, warm_up};
use xdp_support::{trafgen_blast, worker_sum, Topology};

fn per_worker(s: &serde_json::Value, name: &str) -> Vec<u64> {
    s["workers"]
        .as_array()
        .map(|ws| ws.iter().map(|w| w[name].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default()
}

/// Runs the tunnel with `--fanout N` until R2 decapsulated `min_packets` or `max_secs`
/// passed; returns hostB's mean receive rate.
fn fanout_run(tag: &str, fanout: &str, min_packets: u64, max_secs: u64) -> f64 {
    let extra = ["--fanout", fanout, "--min-replay-window", "64"];
    let (lab, mut r1, mut r2, _keys, _t) = tunnel_with(
        Topology::with_wire(tag, 2),
        "esp-aes esp-sha-hmac",
        false,
        true,
        &extra,
    );
    warm_up(&lab);
    let start = Instant::now();
    let mut sent_secs = 0;
    let mut rates = Vec::new();
    loop {
        let (at_r2, at_hb) = trafgen_blast(&lab, "r2", "out0", 128, 3);
        sent_secs += 3;
        rates.push((at_r2, at_hb));
        let s2 = r2.stats();
        if worker_sum(&s2, "esp_decap") >= min_packets
            || start.elapsed() > Duration::from_secs(max_secs)
        {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let (s1, s2) = (r1.stats(), r2.stats());
    for (i, (a, b)) in rates.iter().enumerate() {
        println!("run {i}: R2 received {a:.0} ESP pps, hostB {b:.0} pps (128 B frames)");
    }
    let decap = worker_sum(&s2, "esp_decap");
    let hb = rates.iter().map(|r| r.1).sum::<f64>() / rates.len() as f64;
    println!(
        "--fanout {fanout}: R2 other drops: esp {} tx_ring_full {} xsk_rx_dropped {}",
        xdp_support::esp_drops(&s2),
        worker_sum(&s2, "drop_tx_ring_full"),
        worker_sum(&s2, "xsk_rx_dropped"),
    );
    println!(
        "--fanout {fanout}: R2: esp_decap {decap} in {sent_secs} s of traffic; per worker: handed off {:?}, verified for the other {:?}, esp_decap {:?}, kept (peer busy) {:?}; replay {} out-of-window {} auth {}; R1 esp_encap {}",
        per_worker(&s2, "fanout_handed_off"),
        per_worker(&s2, "fanout_verified"),
        per_worker(&s2, "esp_decap"),
        per_worker(&s2, "fanout_ring_full"),
        worker_sum(&s2, "drop_replay"),
        worker_sum(&s2, "drop_out_of_window"),
        worker_sum(&s2, "drop_auth"),
        worker_sum(&s1, "esp_encap"),
    );
    for r in [&mut r1, &mut r2] {
        if let Some(dp) = r.dp.as_mut() {
            assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
        }
    }
    assert!(
        decap >= min_packets.min(1000),
        "traffic passed the tunnel: {decap}"
    );
    assert_eq!(worker_sum(&s2, "drop_replay"), 0, "false replay drops");
    assert_eq!(
        worker_sum(&s2, "drop_out_of_window"),
        0,
        "false out-of-window drops"
    );
    assert_eq!(worker_sum(&s2, "drop_auth"), 0);
    if fanout == "1" {
        return hb;
    }
    // Both workers carry the SA's inbound: one hands slices off, the other decrypts them.
    let handed = per_worker(&s2, "fanout_handed_off");
    let verified = per_worker(&s2, "fanout_verified");
    assert_eq!(handed.len(), 2, "two workers at R2");
    assert!(
        (0..2).any(|w| handed[w] > 0 && verified[1 - w] > 0),
        "one worker handed slices to the other: {handed:?} {verified:?}"
    );
    hb
}

#[test]
fn one_sa_inbound_on_two_workers_window_64() {
    fanout_run("fo", "2", 1_000_000, 30);
}

#[test]
#[ignore]
fn one_sa_inbound_on_two_workers_10m_packets() {
    // Same-run baseline: the same lab with each worker decrypting what it receives.
    let base = fanout_run("fob", "1", 2_000_000, 60);
    let spread = fanout_run("fol", "2", 10_000_000, 1800);
    println!(
        "hostB rate: --fanout 2 {spread:.0} pps, --fanout 1 {base:.0} pps: x{:.2}",
        spread / base
    );
}
