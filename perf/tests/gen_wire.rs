//! `espgw-perf gen` on its own veth wire (hostA eth0 ─── eth0 hostB, real AF_XDP sockets
//! on both ends), beside trafgen in the same run. Asserts that the accounting is exact and
//! agrees with the interfaces' counters, and that pacing never exceeds the asked rate;
//! the rates themselves are printed (ratio to trafgen), never judged.

use espgw_lab::prereq::{require_root, require_tool};
use std::process::Command;

mod common;
use common::{perf_json, u, BIN};

fn gen(args: &[&str]) -> serde_json::Value {
    perf_json("gen", args)
}

fn check_accounting(g: &serde_json::Value) {
    let sent = u(g, "sent");
    assert!(sent > 0, "{g}");
    // Every frame sent is either received once or lost: nothing invented, nothing twice.
    assert_eq!(u(g, "received") + u(g, "lost"), sent, "{g}");
    assert_eq!(u(g, "duplicates"), 0, "a veth does not duplicate: {g}");
    let c = &g["counters"];
    assert_eq!(c["agree"], true, "receiver vs veth counters: {c}");
    assert_eq!(u(c, "veth_tx"), u(c, "sent_with_warmup"), "{c}");
    assert_eq!(
        u(c, "veth_rx"),
        u(c, "receiver") + u(c, "receiver_dropped"),
        "every frame the receiving veth counted reached the receiver's sockets: {c}"
    );
}

#[test]
fn generator_on_a_veth_wire_beside_trafgen() {
    require_root();
    require_tool("trafgen", "netsniff-ng");
    let full = gen(&["--secs", "2", "--trafgen"]);
    let g = &full["generator"];
    check_accounting(g);
    assert!(g["latency"]["p50_us"].as_f64().unwrap() > 0.0, "{g}");
    let t = &full["trafgen"];
    assert!(t["rx_pps"].as_f64().is_some(), "trafgen ran: {t}");
    println!(
        "64 B full speed: espgw-perf gen {:.0} pps received, trafgen {:.0} pps: ratio {:.2}",
        g["rx_pps"].as_f64().unwrap(),
        t["rx_pps"].as_f64().unwrap(),
        t["ratio_generator_to_trafgen"].as_f64().unwrap()
    );

    // Paced, IMIX, 2 threads: never more than asked (the bucket's depth is the slack).
    let paced = gen(&[
        "--secs",
        "1",
        "--rate",
        "20000",
        "--size",
        "imix",
        "--threads",
        "2",
    ]);
    let g = &paced["generator"];
    check_accounting(g);
    let secs = g["tx_secs"].as_f64().unwrap();
    let sent = u(g, "sent") as f64;
    assert!(
        sent <= 20000.0 * secs + 2.0 * 200.0,
        "paced at 20 kpps sent {sent} in {secs} s"
    );
    println!("IMIX paced at 20 kpps: {:.0} pps sent", sent / secs);
}

#[test]
fn pktgen_absence_is_detected() {
    let have = std::path::Path::new("/proc/net/pktgen/pgctrl").exists();
    let out = Command::new(BIN)
        .args(["pktgen", "--dev", "lo", "--secs", "0.1"])
        .output()
        .expect("run espgw-perf");
    let err = String::from_utf8_lossy(&out.stderr);
    if have {
        // A kernel with pktgen: the command must at least get past detection.
        assert!(!err.contains("not available"), "{err}");
        espgw_lab::prereq::skip(
            "pktgen_absence_is_detected",
            "this kernel has pktgen; the absence path was not exercised",
        );
    } else {
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains("/proc/net/pktgen"),
            "names what is missing: {err}"
        );
    }
}
