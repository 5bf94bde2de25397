//! Forwarding rate of espgw-dataplane as a plain forwarder on R1 beside the
//! kernel's own forwarding, same topology, same generator, same run.
//! Heavy (about 20 s): `cargo test -p espgw-dataplane --release --test xdp_rate -- --ignored --nocapture`.

mod xdp_support;

use std::time::Duration;
use xdp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

#[test]
#[ignore]
fn xdp_forwarding_rate_vs_kernel() {
    let t = Topology::new("r", 1);
    for size in [64usize, 1400] {
        let (k_r2, k_hb) = trafgen_blast(&t, "r2", "out0", size, 4);
        let stats_path = t.dir.join("stats.json");
        let mut dp = t.spawn(
            "r1",
            &[
                BIN,
                "--no-esp",
                "--inside",
                "in0",
                "--outside",
                "out0",
                "--cores",
                "1",
                "--acl",
                "permit ip 10.1.1.0/24 10.1.2.0/24",
                "--stats",
                stats_path.to_str().unwrap(),
            ],
            "dp.log",
        );
        wait_for("dataplane", Duration::from_secs(10), || stats(&stats_path));
        let (d_r2, d_hb) = trafgen_blast(&t, "r2", "out0", size, 4);
        assert!(dp.signal_and_wait("-TERM", Duration::from_secs(5)));
        let s = stats(&stats_path).unwrap();
        println!(
            "{size:>5} B: kernel R1: {:.0} pps at R2 ({:.0} at hostB) | espgw-dataplane R1: {:.0} pps at R2 ({:.0} at hostB); \
             steered {} tx {} ring-full drops {} xsk rx dropped {} fill-ring empty {}",
            k_r2,
            k_hb,
            d_r2,
            d_hb,
            xdp_packets(&s, "inside", "steered"),
            worker_sum(&s, "tx_outside"),
            worker_sum(&s, "drop_tx_ring_full"),
            worker_sum(&s, "xsk_rx_dropped"),
            worker_sum(&s, "xsk_fill_ring_empty"),
        );
        assert!(d_r2 > 0.0);
        let _ = std::fs::remove_file(&stats_path);
    }
}
