//! Metrics an NMS can scrape (`espgw-control --metrics ADDR:PORT`): the OpenMetrics text
//! of [`scrape`], served at `/metrics` by [`http`]. Read at scrape time, nothing cached:
//!
//! - per IPsec SA, from the shared-memory SA database: `espgw_ipsec_sa_packets_total`,
//!   `espgw_ipsec_sa_bytes_total`, `espgw_ipsec_sa_drops_total{reason}`, labelled `peer`,
//!   `map`, `seq`, `spi` (as IOS prints it), `direction`, `transform` — the same counters
//!   `show crypto ipsec sa` sums into `#pkts encaps`/`#pkts decaps`. A drop reason's
//!   series appears once it has counted a packet (a zero series per reason and SA would be
//!   most of a scrape of 10,000 SAs); absent means 0;
//! - per data-plane worker, with `--dataplane-stats FILE` ([`workers`]): packets, ESP
//!   packets, batches, busy seconds and AF_XDP ring drops;
//! - the data plane's global counters (`show crypto dataplane`):
//!   `espgw_dataplane_drops_total{reason}` and `espgw_dataplane_sa_request_total{event}`;
//! - from the IKE endpoint: `espgw_ike_sas{state}` (IOS state names),
//!   `espgw_ike_half_open`, `espgw_ike_negotiations_total{phase,result}`
//!   (started/succeeded/failed), the histogram `espgw_ike_setup_seconds{phase}` and
//!   `espgw_ike_drops_total{reason}`.
//!
//! Nothing secret is read: records are decoded for their labels only, keys never leave
//! the region.

pub mod http;
pub mod workers;

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use espgw_sadb::{ios_spi, Direction, DropReason, GlobalCounter, SaDbReader};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
    LabelSetEncoder, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::driver::Shared;

/// The labels of one SA's series, written straight into the scrape (no string per label).
struct SaLabels<'a> {
    peer: Ipv4Addr,
    map: &'a str,
    seq: u32,
    spi: String,
    direction: &'static str,
    transform: &'static str,
}

/// A label value as its `Display` writes it.
struct Shown<T>(T);

impl<T: fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, enc: &mut LabelValueEncoder) -> fmt::Result {
        write!(enc, "{}", self.0)
    }
}

impl EncodeLabelSet for &SaLabels<'_> {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        ("peer", Shown(self.peer)).encode(enc.encode_label())?;
        ("map", self.map).encode(enc.encode_label())?;
        ("seq", self.seq).encode(enc.encode_label())?;
        ("spi", self.spi.as_str()).encode(enc.encode_label())?;
        ("direction", self.direction).encode(enc.encode_label())?;
        ("transform", self.transform).encode(enc.encode_label())
    }
}

/// The per-SA and data-plane-global counters of an SA database region.
#[derive(Debug)]
pub struct RegionCollector(pub SaDbReader);

/// Counters of the IKE endpoint the daemon shares with its driver.
pub struct IkeCollector(pub Shared);

impl fmt::Debug for IkeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IkeCollector")
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (impl EncodeLabelSet, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for RegionCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        // A writer stalled mid-update for 200 ms: this scrape has no per-SA series (the
        // next one will); the global counters need no lock.
        let entries = self.0.snapshot_all().map(|s| s.entries).unwrap_or_default();
        let sas: Vec<(SaLabels, espgw_sadb::SaCounterValues)> = entries
            .iter()
            .filter_map(|e| {
                let v = self.0.counters(e.slot)?.values();
                let r = &e.record;
                let labels = SaLabels {
                    peer: *r.peer.ip(),
                    map: r.crypto_map.as_str(),
                    seq: r.crypto_map_seq,
                    spi: ios_spi(r.spi),
                    direction: match r.direction {
                        Direction::Inbound => "inbound",
                        Direction::Outbound => "outbound",
                    },
                    transform: r.transform.ios_name(),
                };
                Some((labels, v))
            })
            .collect();
        counter(
            &mut enc,
            "espgw_ipsec_sa_packets",
            "Packets the data plane processed on an IPsec SA (show crypto ipsec sa #pkts encaps/decaps).",
            sas.iter().map(|(l, v)| (l, v.packets)),
        )?;
        counter(
            &mut enc,
            "espgw_ipsec_sa_bytes",
            "Bytes the data plane processed on an IPsec SA (counted for the kilobyte lifetime).",
            sas.iter().map(|(l, v)| (l, v.bytes)),
        )?;
        counter(
            &mut enc,
            "espgw_ipsec_sa_drops",
            "Packets of an IPsec SA the data plane dropped, by reason.",
            sas.iter().flat_map(|(l, v)| {
                DropReason::ALL
                    .into_iter()
                    .filter(|r| v.drop_count(*r) > 0)
                    .map(move |r| ((l, [("reason", r.name())]), v.drop_count(r)))
            }),
        )?;
        let g = self.0.global();
        counter(
            &mut enc,
            "espgw_dataplane_drops",
            "Packets the data plane dropped, all of them, by reason (show crypto dataplane); \
             those of an SA are also in espgw_ipsec_sa_drops_total.",
            DropReason::ALL
                .into_iter()
                .map(|r| ([("reason", r.name())], g.drops(r))),
        )?;
        counter(
            &mut enc,
            "espgw_dataplane_sa_request",
            "sa_request events of the data plane, by what became of them (show crypto dataplane).",
            GlobalCounter::ALL.into_iter().map(|c| {
                let event = c.name().trim_start_matches("sa-request-");
                ([("event", event)], g.get(c))
            }),
        )
    }
}

/// IOS names of the phase-1 states `show crypto isakmp sa` prints, so every state has a
/// series (0 when no SA is in it).
const IKE_STATES: [&str; 7] = [
    "MM_NO_STATE",
    "MM_SA_SETUP",
    "MM_KEY_EXCH",
    "QM_IDLE",
    "AG_NO_STATE",
    "AG_INIT_EXCH",
    "AG_AUTH",
];

impl Collector for IkeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let (states, half_open, c) = {
            let ep = self.0.endpoint.lock().unwrap_or_else(|e| e.into_inner());
            let states: Vec<&'static str> = ep.isakmp_sas().iter().map(|s| s.state).collect();
            (states, ep.half_open(), ep.counters.clone())
        };
        let mut known: Vec<(&str, u64)> = IKE_STATES.iter().map(|s| (*s, 0)).collect();
        for s in states {
            match known.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => known.push((s, 1)),
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "espgw_ike_sas",
                "ISAKMP SAs by IOS state (show crypto isakmp sa).",
                None,
                MetricType::Gauge,
            )?;
            for (state, n) in known {
                ConstGauge::new(n as i64).encode(m.encode_family(&[("state", state)])?)?;
            }
        }
        {
            let m = enc.encode_descriptor(
                "espgw_ike_half_open",
                "Phase-1 SAs peers began that are not yet established (bounded by the half-open limit).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(half_open as i64).encode(m)?;
        }
        {
            let mut m = enc.encode_descriptor(
                "espgw_ike_setup_seconds",
                "Time to set up a negotiation that succeeded, by phase (1: ISAKMP SA from its \
                 first message, 2: IPsec SAs from the first Quick Mode message).",
                None,
                MetricType::Histogram,
            )?;
            for (phase, h) in [("1", &c.p1_setup), ("2", &c.p2_setup)] {
                m.encode_family(&[("phase", phase)])?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        h.sum_secs(),
                        h.count(),
                        &h.buckets(),
                        None,
                    )?;
            }
        }
        let neg = [
            ("1", "started", c.p1_started),
            ("1", "succeeded", c.p1_established),
            ("1", "failed", c.p1_failed),
            ("2", "started", c.p2_started),
            ("2", "succeeded", c.p2_established),
            ("2", "failed", c.p2_failed),
        ];
        counter(
            &mut enc,
            "espgw_ike_negotiations",
            "IKE negotiations by phase (1: ISAKMP SA, 2: Quick Mode) and result.",
            neg.into_iter()
                .map(|(p, r, v)| ([("phase", p), ("result", r)], v)),
        )?;
        let drops = [
            ("malformed", c.rx_malformed),
            ("unknown-cookie", c.rx_unknown_cookie),
            ("decrypt-failed", c.rx_decrypt_failed),
            ("hash-failed", c.rx_hash_failed),
            ("unexpected", c.rx_unexpected),
            ("half-open-limit", c.half_open_dropped),
            ("half-open-evicted", c.half_open_evicted),
        ];
        counter(
            &mut enc,
            "espgw_ike_drops",
            "IKE messages dropped, by reason.",
            drops.into_iter().map(|(r, v)| ([("reason", r)], v)),
        )?;
        counter(
            &mut enc,
            "espgw_ike_retransmissions",
            "IKE messages retransmitted (direction tx) or received again (rx).",
            [("tx", c.tx_retransmissions), ("rx", c.rx_retransmissions)]
                .into_iter()
                .map(|(d, v)| ([("direction", d)], v)),
        )?;
        let m = enc.encode_descriptor(
            "espgw_ike_dpd_dead_peers",
            "Peers dead peer detection declared dead.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(c.dpd_dead_peers).encode(m)
    }
}

/// What a scrape reads: the region (none with `--no-sadb`) and the endpoint (none for an
/// exporter that reads a region only).
pub struct Sources {
    pub region: Option<SaDbReader>,
    pub ike: Option<Shared>,
    /// The data plane's counters file (`espgw-dataplane --stats`), for per-worker series.
    pub dataplane_stats: Option<std::path::PathBuf>,
}

/// The registry one scrape encodes.
pub fn registry(src: Sources) -> Registry {
    let mut r = Registry::default();
    if let Some(reader) = src.region {
        r.register_collector(Box::new(RegionCollector(reader)));
    }
    if let Some(shared) = src.ike {
        r.register_collector(Box::new(IkeCollector(shared)));
    }
    if let Some(path) = src.dataplane_stats {
        r.register_collector(Box::new(workers::WorkerCollector(path)));
    }
    r
}

/// The endpoint for a daemon: its region, its IKE endpoint and (given its path) the data
/// plane's per-worker counters, on `addr`.
pub fn serve(
    addr: std::net::SocketAddr,
    daemon: &crate::daemon::Daemon,
    dataplane_stats: Option<std::path::PathBuf>,
) -> Result<http::MetricsServer, http::StartError> {
    let r = registry(Sources {
        region: daemon.sa().reader(),
        ike: Some(daemon.shared().clone()),
        dataplane_stats,
    });
    let server = http::MetricsServer::start(addr, r)?;
    eprintln!(
        "espgw-control: metrics on http://{}/metrics",
        server.local_addr()
    );
    Ok(server)
}

/// One scrape: the OpenMetrics text of every collector in `r` (ends with `# EOF`).
pub fn scrape(r: &Registry) -> String {
    let mut s = String::new();
    scrape_into(r, &mut s);
    s
}

/// [`scrape`] into `buf` (cleared first). A buffer kept from one scrape to the next saves
/// growing and faulting in megabytes each time (a third of a 10,000-SA scrape's time).
pub fn scrape_into(r: &Registry, buf: &mut String) {
    buf.clear();
    // Writing to a String cannot fail; a collector's error would be a bug in it.
    let _ = prometheus_client::encoding::text::encode(buf, r);
}
