//! Metrics an NMS can scrape (`espgw-control --metrics ADDR:PORT`): the OpenMetrics text
//! of [`Metrics::scrape`], served at `/metrics` by [`http`]. Read at scrape time, nothing cached:
//!
//! - per IPsec SA, from the shared-memory SA database: `espgw_ipsec_sa_packets_total`,
//!   `espgw_ipsec_sa_bytes_total`, `espgw_ipsec_sa_drops_total{reason}`, labelled `peer`,
//!   `map`, `seq`, `spi` (as IOS prints it), `direction`, `transform` — the same counters
//!   `show crypto ipsec sa` sums into `#pkts encaps`/`#pkts decaps`. A drop reason's
//!   series appears once it has counted a packet (a zero series per reason and SA would be
//!   most of a scrape of 10,000 SAs); absent means 0. Written by hand ([`sa`]): a
//!   scrape of 10,000 SAs in a few milliseconds;
//! - per data-plane worker, with `--dataplane-stats FILE` ([`workers`]): packets, ESP
//!   packets, batches, busy seconds and AF_XDP ring drops;
//! - the data plane's global counters (`show crypto dataplane`):
//!   `espgw_dataplane_drops_total{reason}` and `espgw_dataplane_sa_request_total{event}`;
//! - from the IKE endpoint: `espgw_ike_sas{state}` (IOS state names),
//!   `espgw_ike_half_open`, `espgw_ike_negotiations_total{phase,result[,reason]}`
//!   (started/succeeded; failed by [`FailReason`]), the histogram `espgw_ike_setup_seconds{phase}` and
//!   `espgw_ike_drops_total{reason}`.
//!
//! Nothing secret is read: records are decoded for their labels only, keys never leave
//! the region.

pub mod http;
mod sa;
pub mod workers;

use std::fmt;

use espgw_sadb::{DropReason, GlobalCounter, SaDbReader};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::driver::Shared;
use crate::ike::FailReason;

/// The data plane's global counters in an SA database region (the per-SA families are
/// [`sa::SaFamilies`]'s).
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
        // Started and succeeded per phase; failed per phase and reason, every reason a
        // series (0 until it happens). Phase 1.5 is XAUTH / Mode Config after an
        // established phase 1: only its failures are counted.
        let mut neg: Vec<(Vec<(&str, &str)>, u64)> = Vec::new();
        for (phase, started, succeeded) in [
            ("1", c.p1_started, c.p1_established),
            ("2", c.p2_started, c.p2_established),
        ] {
            neg.push((vec![("phase", phase), ("result", "started")], started));
            neg.push((vec![("phase", phase), ("result", "succeeded")], succeeded));
        }
        for (phase, failed) in [
            ("1", &c.p1_failed),
            ("1.5", &c.p15_failed),
            ("2", &c.p2_failed),
        ] {
            for r in FailReason::ALL {
                neg.push((
                    vec![("phase", phase), ("result", "failed"), ("reason", r.name())],
                    failed.get(r),
                ));
            }
        }
        counter(
            &mut enc,
            "espgw_ike_negotiations",
            "IKE negotiations by phase (1: ISAKMP SA, 1.5: XAUTH/Mode Config, 2: Quick Mode) \
             and result; failures by reason.",
            neg.into_iter(),
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

/// What one scrape encodes: the per-SA families, written by hand ([`sa`]), then the
/// small fixed families through prometheus-client's registry. Owned by the endpoint's
/// thread; its buffers are kept from one scrape to the next.
pub struct Metrics {
    region: Option<SaDbReader>,
    sa: sa::SaFamilies,
    registry: Registry,
}

impl Metrics {
    pub fn new(src: Sources) -> Metrics {
        let mut registry = Registry::default();
        if let Some(reader) = &src.region {
            registry.register_collector(Box::new(RegionCollector(reader.clone())));
        }
        if let Some(shared) = src.ike {
            registry.register_collector(Box::new(IkeCollector(shared)));
        }
        if let Some(path) = src.dataplane_stats {
            registry.register_collector(Box::new(workers::WorkerCollector(path)));
        }
        Metrics {
            region: src.region,
            sa: sa::SaFamilies::default(),
            registry,
        }
    }

    /// One scrape: the OpenMetrics text of every family (ends with `# EOF`).
    pub fn scrape(&mut self) -> String {
        let mut s = String::new();
        self.scrape_into(&mut s);
        s
    }

    /// [`Metrics::scrape`] into `buf` (cleared first). A buffer kept from one scrape to
    /// the next saves growing and faulting in megabytes each time.
    pub fn scrape_into(&mut self, buf: &mut String) {
        buf.clear();
        if let Some(region) = &self.region {
            self.sa.encode(region, buf);
        }
        // Writing to a String cannot fail; a collector's error would be a bug in it.
        let _ = prometheus_client::encoding::text::encode_registry(buf, &self.registry);
        let _ = prometheus_client::encoding::text::encode_eof(buf);
    }
}

/// The endpoint for a daemon: its region, its IKE endpoint and (given its path) the data
/// plane's per-worker counters, on `addr`.
pub fn serve(
    addr: std::net::SocketAddr,
    daemon: &crate::daemon::Daemon,
    dataplane_stats: Option<std::path::PathBuf>,
) -> Result<http::MetricsServer, http::StartError> {
    let m = Metrics::new(Sources {
        region: daemon.sa().reader(),
        ike: Some(daemon.shared().clone()),
        dataplane_stats,
    });
    let server = http::MetricsServer::start(addr, m)?;
    eprintln!(
        "espgw-control: metrics on http://{}/metrics",
        server.local_addr()
    );
    Ok(server)
}
