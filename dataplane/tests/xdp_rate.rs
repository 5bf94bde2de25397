//! Forwarding rate of espgw-dataplane as a plain forwarder on R1 beside the
//! kernel's own forwarding, same topology, same generator, same run.
//! Heavy (about 20 s): `cargo test -p espgw-dataplane --release --test xdp_rate -- --ignored --nocapture`.

mod xdp_support;

use std::time::Duration;
use xdp_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_espgw-dataplane");

fn rx_packets(t: &Topology, ns: &str, dev: &str) -> u64 {
    let out = t.ip(ns, &["-s", "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

fn mac(t: &Topology, ns: &str, dev: &str) -> String {
    let out = t.ip(ns, &["-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// Sends 64-byte (or `size`-byte) UDP frames from hostA for `secs` on CPU 0;
/// returns (frames R2's out0 received, frames hostB received) per second.
fn blast(t: &Topology, size: usize, secs: u64) -> (f64, f64) {
    let da = mac(t, "r1", "in0");
    let sa = mac(t, "hA", "eth0");
    let fill = size.saturating_sub(14 + 20 + 8);
    let conf = t.dir.join(format!("udp{size}.cfg"));
    std::fs::write(
        &conf,
        format!(
            "{{ eth(da={da}, sa={sa}, type=0x0800), ipv4(saddr=10.1.1.2, daddr=10.1.2.2, ttl=64, proto=17), \
             udp(sport=40000, dport=40001), fill(0x41, {fill}) }}\n"
        ),
    )
    .unwrap();
    // Warm the next hop with one ping first.
    let _ = t.exec_output(
        "hA",
        &["ping", "-c", "2", "-i", "0.1", "-W", "1", "10.1.2.2"],
    );
    let r2_0 = rx_packets(t, "r2", "out0");
    let hb_0 = rx_packets(t, "hB", "eth0");
    let _ = t.exec_output(
        "hA",
        &[
            "timeout",
            &secs.to_string(),
            "taskset",
            "-c",
            "0",
            "trafgen",
            "--dev",
            "eth0",
            "--conf",
            conf.to_str().unwrap(),
            "-P",
            "1",
            "-q",
            "-C",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let r2 = rx_packets(t, "r2", "out0") - r2_0;
    let hb = rx_packets(t, "hB", "eth0") - hb_0;
    (r2 as f64 / secs as f64, hb as f64 / secs as f64)
}

#[test]
#[ignore]
fn xdp_forwarding_rate_vs_kernel() {
    let t = Topology::new("r", 1);
    for size in [64usize, 1400] {
        let (k_r2, k_hb) = blast(&t, size, 4);
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
        let (d_r2, d_hb) = blast(&t, size, 4);
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
