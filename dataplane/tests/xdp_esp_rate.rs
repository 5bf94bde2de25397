//! ESP forwarding rate through the lab: hostA → R1 (encapsulates) → R2 (decapsulates) →
//! hostB, espgw-dataplane on both routers with SAs installed straight into their SA
//! databases (no IKE), trafgen on hostA at full speed, one transform family at a time.
//! It prints what R2 received (ESP) and what hostB received (decapsulated), in packets per
//! second, per transform and frame size. A benchmark, not a pass/fail test: run it at two
//! commits on the same machine to compare builds (perf/results/inplace-esp-rate-*.txt).
//! `cargo test -p espgw-dataplane --release --test xdp_esp_rate -- --ignored --nocapture`

#[path = "xdp_support/tunnel.rs"]
mod tunnel;
mod xdp_support;

use std::time::Duration;
use tunnel::{tunnel, warm_up};
use xdp_support::{trafgen_blast, worker_sum};

#[test]
#[ignore]
fn esp_forwarding_rate() {
    let secs: u64 = std::env::var("ESPGW_RATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for transform in [
        "esp-3des esp-md5-hmac",
        "esp-aes esp-sha-hmac",
        "esp-gcm 256",
    ] {
        let (lab, mut r1, mut r2, _keys, _t) = tunnel("er", transform, false, true);
        warm_up(&lab);
        for size in [64usize, 512, 1400] {
            let (at_r2, at_hb) = trafgen_blast(&lab, "r2", "out0", size, secs);
            println!(
                "{transform:<24} {size:>5} B: R2 received {at_r2:>9.0} ESP pps, hostB {at_hb:>9.0} pps"
            );
        }
        let (s1, s2) = (r1.stats(), r2.stats());
        println!(
            "{transform:<24} R1 esp_encap {} tx_outside {} | R2 esp_decap {} replay {} auth {}",
            worker_sum(&s1, "esp_encap"),
            worker_sum(&s1, "tx_outside"),
            worker_sum(&s2, "esp_decap"),
            worker_sum(&s2, "drop_replay"),
            worker_sum(&s2, "drop_auth"),
        );
        for r in [&mut r1, &mut r2] {
            if let Some(dp) = r.dp.as_mut() {
                assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
            }
        }
        assert!(
            worker_sum(&s2, "esp_decap") > 0,
            "traffic passed the tunnel"
        );
    }
}
