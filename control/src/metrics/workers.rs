//! The data plane's per-worker counters, read from the counters file espgw-dataplane
//! rewrites every 200 ms (its `--stats FILE`, given to espgw-control as
//! `--dataplane-stats FILE`): packets received and sent per side, ESP packets, batches,
//! busy time (the idle share is `1 - rate(busy_seconds)`) and the AF_XDP rings' drops.
//! Drops by reason are in `espgw_dataplane_drops_total` (from the SA region) already.

use std::fmt;
use std::path::PathBuf;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// Per-worker series from the data plane's counters file.
#[derive(Debug)]
pub struct WorkerCollector(pub PathBuf);

/// One worker's counters as the file names them.
type Worker = serde_json::Map<String, serde_json::Value>;

fn read(path: &std::path::Path) -> Vec<Worker> {
    // Missing (the data plane not started yet) or half-written is an empty scrape of these
    // families; the file is replaced by rename, so a torn read is not expected.
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    let Ok(serde_json::Value::Object(mut top)) = serde_json::from_str(&text) else {
        return vec![];
    };
    match top.remove("workers") {
        Some(serde_json::Value::Array(ws)) => ws
            .into_iter()
            .filter_map(|w| match w {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

fn get(w: &Worker, key: &str) -> u64 {
    w.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// A family: name, help, the label its series differ by (beside `worker`), and each
/// series' value of that label with the file's key it reads.
struct Family {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    series: &'static [(&'static str, &'static str)],
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "espgw_dataplane_worker_packets",
        help: "Frames a data-plane worker received (rx) or sent (tx), by side.",
        label: "path",
        series: &[
            ("rx-inside", "rx_inside"),
            ("rx-outside", "rx_outside"),
            ("tx-inside", "tx_inside"),
            ("tx-outside", "tx_outside"),
        ],
    },
    Family {
        name: "espgw_dataplane_worker_esp",
        help: "Packets a data-plane worker encapsulated or decapsulated.",
        label: "op",
        series: &[("encap", "esp_encap"), ("decap", "esp_decap")],
    },
    Family {
        name: "espgw_dataplane_worker_batches",
        help: "Receive calls of a data-plane worker that returned frames (packets per batch: rx / batches).",
        label: "",
        series: &[("", "batches")],
    },
    Family {
        name: "espgw_dataplane_worker_ring_drops",
        help: "Frames the kernel dropped at a worker's AF_XDP sockets, by ring.",
        label: "ring",
        series: &[
            ("rx-dropped", "xsk_rx_dropped"),
            ("rx-ring-full", "xsk_rx_ring_full"),
            ("fill-ring-empty", "xsk_fill_ring_empty"),
            ("tx-invalid", "xsk_tx_invalid"),
        ],
    },
];

impl Collector for WorkerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let workers = read(&self.0);
        let ids: Vec<String> = (0..workers.len()).map(|i| i.to_string()).collect();
        for f in &FAMILIES {
            let series = workers.iter().zip(&ids).flat_map(|(w, id)| {
                f.series.iter().map(move |(value, key)| {
                    let mut labels = vec![("worker", id.as_str())];
                    if !f.label.is_empty() {
                        labels.push((f.label, *value));
                    }
                    (labels, get(w, key))
                })
            });
            super::counter(&mut enc, f.name, f.help, series)?;
        }
        let mut m = enc.encode_descriptor(
            "espgw_dataplane_worker_busy",
            "Time a data-plane worker spent processing frames; its idle share is 1 - rate().",
            Some(&prometheus_client::registry::Unit::Seconds),
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (w, id) in workers.iter().zip(&ids) {
            let secs = get(w, "busy_ns") as f64 / 1e9;
            prometheus_client::encoding::EncodeMetric::encode(
                &prometheus_client::metrics::counter::ConstCounter::new(secs),
                m.encode_family(&[("worker", id.as_str())])?,
            )?;
        }
        Ok(())
    }
}
