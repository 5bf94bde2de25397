//! The run's results: a table for the terminal, JSON, and the ratios the issues are
//! judged by (espgw / kernel in clear, espgw / strongSwan per transform family, N workers
//! / one worker, our generator / trafgen), always within the same run.

use super::search::{Found, Kind};
use crate::dut::DutKind;
use crate::gen::bench::Outcome;
use crate::gen::cmd::{outcome_json, TrafgenRun};
use crate::gen::probe::SizeMix;
use std::fmt::Write;

/// One frame size of one DUT.
pub struct SizeResult {
    pub size: SizeMix,
    pub found: Found,
    /// trafgen on the same DUT and size (the `wire` DUT), frames/s delivered.
    pub trafgen: Option<Result<TrafgenRun, String>>,
}

/// One DUT.
pub struct DutResult {
    pub kind: DutKind,
    pub label: String,
    pub counter: String,
    pub sizes: Vec<SizeResult>,
    /// Why it did not run (set-up failed).
    pub error: Option<String>,
    pub setup_secs: f64,
}

impl SizeResult {
    /// Zero-loss (or tolerated-loss) throughput: frames/s delivered in the best trial.
    pub fn tput_pps(&self) -> Option<f64> {
        self.found.throughput().map(Outcome::rx_pps)
    }
    pub fn tput_gbps(&self) -> Option<f64> {
        self.found.throughput().map(Outcome::rx_gbps)
    }
    /// Trials whose counters agreed, of all.
    pub fn counters_agree(&self) -> (usize, usize) {
        let n = self.found.trials.len();
        let ok = self
            .found
            .trials
            .iter()
            .filter(|(_, o)| o.counters.ok)
            .count();
        (ok, n)
    }
}

fn f(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        "-".into()
    }
}

fn lat5(o: Option<&Outcome>) -> String {
    match o {
        None => "-".into(),
        Some(o) => format!(
            "{}/{}/{}/{}/{}",
            f(o.latency_us(0.5), 0),
            f(o.latency_us(0.9), 0),
            f(o.latency_us(0.99), 0),
            f(o.latency_us(0.999), 0),
            f(o.latency_max_us(), 0)
        ),
    }
}

/// The table.
pub fn table(results: &[DutResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<22} {:>5} {:>9} {:>9} {:>8} {:>8}  {:<26} {:<26} {:>9} {:>7}",
        "DUT",
        "size",
        "max Mpps",
        "0-loss",
        "Gbit/s",
        "lossy",
        "latency µs @50% p50/90/99/99.9/max",
        "@100%",
        "b2b",
        "counters"
    );
    for d in results {
        if let Some(e) = &d.error {
            let _ = writeln!(s, "{:<22} did not run: {e}", d.label);
            continue;
        }
        for r in &d.sizes {
            let fd = &r.found;
            let (lost, sent) = fd.loss_below_half_load();
            let lossy = if fd.lossy() {
                format!("{:.3}%", lost as f64 * 100.0 / sent.max(1) as f64)
            } else {
                "no".into()
            };
            let b2b = match fd.back_to_back {
                Some((n, true)) => format!(">={n}"),
                Some((n, false)) => n.to_string(),
                None => "-".into(),
            };
            let (ok, n) = r.counters_agree();
            let tput = match (r.tput_pps(), fd.generator_bound) {
                (Some(p), true) => format!("{}*", f(p / 1e6, 3)),
                (Some(p), false) => f(p / 1e6, 3),
                (None, _) => "none".into(),
            };
            let _ = writeln!(
                s,
                "{:<22} {:>5} {:>9} {:>9} {:>8} {:>8}  {:<26} {:<26} {:>9} {:>7}",
                d.label,
                r.size.label(),
                f(fd.max_offered_pps / 1e6, 3),
                tput,
                r.tput_gbps().map_or("-".into(), |g| f(g, 3)),
                lossy,
                lat5(fd.latency(50)),
                lat5(fd.latency(100)),
                b2b,
                format!("{ok}/{n}"),
            );
        }
    }
    let _ = writeln!(
        s,
        "max Mpps: what the generator offered at full speed; 0-loss: highest rate delivered with no loss \
         (* = the DUT kept up with the generator: a floor, not the DUT's limit); lossy: loss seen at or below \
         half the rate delivered at full speed; b2b: longest full-speed burst delivered whole; counters: trials whose \
         receiver count agreed with the veth and DUT counters."
    );
    s
}

fn find(results: &[DutResult], kind: DutKind) -> Option<&DutResult> {
    results.iter().find(|d| d.kind == kind && d.error.is_none())
}

/// `(what, size, numerator pps, denominator pps)` for every ratio the run allows.
pub fn ratios(results: &[DutResult]) -> Vec<(String, String, f64, f64)> {
    let mut v = Vec::new();
    let mut pair = |name: String, a: Option<&DutResult>, b: Option<&DutResult>| {
        if let (Some(a), Some(b)) = (a, b) {
            for ra in &a.sizes {
                if let Some(rb) = b.sizes.iter().find(|r| r.size == ra.size) {
                    if let (Some(x), Some(y)) = (ra.tput_pps(), rb.tput_pps()) {
                        v.push((name.clone(), ra.size.label(), x, y));
                    }
                }
            }
        }
    };
    pair(
        "espgw-clear / kernel".into(),
        find(results, DutKind::EspgwClear),
        find(results, DutKind::Kernel),
    );
    for fam in crate::dut::Family::ALL {
        let base = find(results, DutKind::SwanSwan(fam));
        pair(
            format!("espgw-swan-{0} / swan-swan-{0}", fam.name()),
            find(results, DutKind::EspgwSwan(fam)),
            base,
        );
        pair(
            format!("espgw-espgw-{0} / swan-swan-{0}", fam.name()),
            find(results, DutKind::EspgwEspgw(fam, 1)),
            base,
        );
        for d in results {
            if let DutKind::EspgwEspgw(f2, n) = d.kind {
                if f2 == fam && n > 1 {
                    pair(
                        format!("{} / espgw-espgw-{}", d.label, fam.name()),
                        Some(d),
                        find(results, DutKind::EspgwEspgw(fam, 1)),
                    );
                }
            }
        }
    }
    v
}

/// Ratios and the generator-vs-trafgen line, as text.
pub fn ratio_text(results: &[DutResult]) -> String {
    let mut s = String::new();
    for (what, size, a, b) in ratios(results) {
        let _ = writeln!(
            s,
            "{what:<40} {size:>5} B: {:.3} / {:.3} Mpps = {:.2}",
            a / 1e6,
            b / 1e6,
            a / b
        );
    }
    for d in results {
        for r in &d.sizes {
            match &r.trafgen {
                Some(Ok(t)) => {
                    let ours = r.found.trials[0].1.rx_pps();
                    let _ = writeln!(
                        s,
                        "{:<40} {:>5} B: espgw-perf gen {:.3} Mpps delivered at full speed, trafgen {:.3} Mpps: {:.2}",
                        format!("generator / trafgen ({})", d.label),
                        r.size.label(),
                        ours / 1e6,
                        t.rx_pps / 1e6,
                        ours / t.rx_pps.max(1e-9)
                    );
                }
                Some(Err(e)) => {
                    let _ = writeln!(s, "trafgen on {} {} B: {e}", d.label, r.size.label());
                }
                None => {}
            }
        }
    }
    s
}

/// Loss rate vs offered load, per DUT and size.
pub fn loss_curves(results: &[DutResult]) -> String {
    let mut s = String::new();
    for d in results.iter().filter(|d| d.error.is_none()) {
        for r in &d.sizes {
            let mut pts: Vec<(f64, f64)> = r
                .found
                .trials
                .iter()
                .filter(|(k, _)| !matches!(k, Kind::Burst(_)))
                .map(|(_, o)| (o.tx_pps(), o.loss_ratio()))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line: Vec<String> = pts
                .iter()
                .map(|(p, l)| format!("{:.3}:{:.2}%", p / 1e6, l * 100.0))
                .collect();
            let _ = writeln!(
                s,
                "{:<22} {:>5} B  Mpps offered:loss  {}",
                d.label,
                r.size.label(),
                line.join("  ")
            );
        }
    }
    s
}

/// The whole run as JSON.
pub fn json(results: &[DutResult], meta: serde_json::Value) -> serde_json::Value {
    let duts: Vec<serde_json::Value> = results
        .iter()
        .map(|d| {
            let sizes: Vec<serde_json::Value> = d
                .sizes
                .iter()
                .map(|r| {
                    let fd = &r.found;
                    let (lost, sent) = fd.loss_below_half_load();
                    let lat: serde_json::Map<String, serde_json::Value> = fd
                        .trials
                        .iter()
                        .filter_map(|(k, o)| match k {
                            Kind::Latency(p) => Some((format!("{p}%"), crate::gen::cmd::latency_json(o))),
                            _ => None,
                        })
                        .collect();
                    let (ok, n) = r.counters_agree();
                    serde_json::json!({
                        "size": r.size.label(),
                        "max_offered_pps": fd.max_offered_pps,
                        "throughput": fd.throughput().map(|o| serde_json::json!({
                            "pps": o.rx_pps(), "mpps": o.rx_pps() / 1e6, "gbps": o.rx_gbps(),
                            "offered_pps": o.offered_pps.unwrap_or(o.tx_pps()), "loss_ratio": o.loss_ratio(),
                        })),
                        "generator_bound": fd.generator_bound,
                        "lossy": fd.lossy(),
                        "loss_below_half_load": { "lost": lost, "sent": sent },
                        "latency": lat,
                        "back_to_back": fd.back_to_back.map(|(n, capped)| serde_json::json!({"frames": n, "at_limit_tried": capped})),
                        "counters_agree": { "trials": n, "agree": ok },
                        "trafgen": r.trafgen.as_ref().map(|t| match t {
                            Ok(t) => serde_json::json!({"tx_pps": t.tx_pps, "rx_pps": t.rx_pps}),
                            Err(e) => serde_json::json!({"error": e}),
                        }),
                        "trials": fd.trials.iter().map(|(k, o)| {
                            let mut j = outcome_json(o);
                            j["kind"] = serde_json::json!(k.name());
                            j
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::json!({
                "dut": d.label,
                "counter": d.counter,
                "error": d.error,
                "setup_secs": d.setup_secs,
                "sizes": sizes,
            })
        })
        .collect();
    let ratios: Vec<serde_json::Value> = ratios(results)
        .into_iter()
        .map(|(w, s, a, b)| serde_json::json!({"ratio": w, "size": s, "numerator_pps": a, "denominator_pps": b, "value": a / b}))
        .collect();
    serde_json::json!({ "meta": meta, "duts": duts, "ratios": ratios })
}
