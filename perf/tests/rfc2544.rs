//! `espgw-perf rfc2544` in the slides' lab: a short smoke run (one DUT, one size; the CI
//! check that the harness works) and a deliberately lossy DUT (R1 drops 0.1% of what it
//! forwards: tc netem, or nftables where the kernel lacks netem) that must be reported
//! as lossy. Structure and counter consistency are asserted; rates are never judged.

use espgw_lab::prereq::require_root;
use std::time::Instant;

mod common;
use common::{perf_json, u};

fn rfc2544(args: &[&str]) -> serde_json::Value {
    perf_json("rfc2544", args)
}

/// Every trial accounts for every frame, and its counters were checked.
fn check_trials(size: &serde_json::Value) {
    let trials = size["trials"].as_array().expect("trials");
    assert!(
        trials.len() >= 3,
        "full speed, search and bursts ran: {size}"
    );
    assert_eq!(trials[0]["kind"], "full-speed");
    for t in trials {
        assert_eq!(u(t, "received") + u(t, "lost"), u(t, "sent"), "{t}");
        assert_eq!(u(t, "duplicates"), 0, "{t}");
        let c = &t["counters"];
        assert!(
            c["dut"].as_u64().is_some(),
            "the DUT's own counter was read: {c}"
        );
        // The receiving veth saw what the receiver read, the sending veth what the
        // generator sent; the DUT forwarded no fewer than arrived and no more than sent.
        assert_eq!(c["agree"], true, "{} trial: {c}", t["kind"]);
    }
}

#[test]
fn smoke_one_dut_one_size() {
    require_root();
    let t0 = Instant::now();
    let doc = rfc2544(&[
        "--dut",
        "kernel",
        "--sizes",
        "64",
        "--trial-secs",
        "0.2",
        "--warmup-secs",
        "0.05",
        "--max-steps",
        "3",
        "--burst-steps",
        "2",
    ]);
    let took = t0.elapsed().as_secs_f64();
    let duts = doc["duts"].as_array().expect("duts");
    assert_eq!(duts.len(), 1);
    let d = &duts[0];
    assert_eq!(d["dut"], "kernel");
    assert!(d["error"].is_null(), "{}", d["error"]);
    assert_eq!(d["counter"], "R2 kernel ForwDatagrams");
    let s = &d["sizes"][0];
    assert_eq!(s["size"], "64");
    check_trials(s);
    assert!(s["max_offered_pps"].as_f64().unwrap() > 0.0);
    if let Some(t) = s["throughput"].as_object() {
        for p in ["10%", "50%", "90%", "100%"] {
            let l = &s["latency"][p];
            for k in ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"] {
                assert!(l[k].as_f64().is_some(), "latency {p} {k}: {l}");
            }
            assert!(l["p50_us"].as_f64() <= l["max_us"].as_f64(), "{l}");
        }
        println!(
            "kernel 64 B: {:.3} Mpps zero-loss in {took:.1} s",
            t["mpps"]
        );
    }
    assert!(s["back_to_back"]["frames"].as_u64().is_some(), "{s}");
    assert!(doc["meta"]["system"]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn a_lossy_dut_is_reported_as_lossy() {
    require_root();
    let doc = rfc2544(&[
        "--dut",
        "kernel",
        "--netem-loss",
        "0.1",
        "--sizes",
        "64",
        "--trial-secs",
        "0.3",
        "--warmup-secs",
        "0.05",
        "--max-steps",
        "4",
        "--burst-steps",
        "0",
    ]);
    let d = &doc["duts"][0];
    // netem where the kernel has it, else nftables' random drop (this lab's kernel).
    let label = d["dut"].as_str().unwrap();
    assert!(
        label == "kernel+netem-loss-0.1%" || label == "kernel+nft-loss-0.1%",
        "{label}: {}",
        d["error"]
    );
    let s = &d["sizes"][0];
    assert_eq!(s["lossy"], true, "{s}");
    let l = &s["loss_below_half_load"];
    assert!(u(l, "lost") > 0 && u(l, "lost") < u(l, "sent"), "{l}");
    // The drop happens in R1: R2's kernel counts what survived, and the
    // receiver's count still agrees with it and with the veths.
    let trials = s["trials"].as_array().unwrap();
    let lossy_trials = trials.iter().filter(|t| u(t, "lost") > 0).count();
    assert!(lossy_trials >= trials.len() / 2, "loss at most loads: {s}");
    for t in trials {
        assert_eq!(t["counters"]["agree"], true, "{t}");
    }
    println!(
        "netem 0.1%: lost {} of {} frames at or below half load",
        u(l, "lost"),
        u(l, "sent")
    );
}
