//! Reliability scenario 4 (issue 17): while the espgw pair's tunnel carries the
//! sequence-numbered stream and rekeys by kilobytes several times, a flooder on R1's
//! outside segment (the wire namespace) sends Main Mode MM1 and Aggressive Mode AM1 from
//! spoofed addresses of 198.18.0.0/15, garbage and truncated ISAKMP to UDP 500 and 4500,
//! and garbage and truncated ESP (raw and in UDP 4500), tens of thousands a second
//! (`espgw_lab::flood`). R1 has a wildcard pre-shared key, so every spoofed first message
//! is one espgw would answer: half-open responder SAs are what the flood makes.
//!
//! Held to: the tunnel loses nothing and rekeys as in scenario 1; the half-open ISAKMP SAs
//! (`espgw_ike_sas` outside QM_IDLE, sampled every 250 ms) stay within the limit; R1's
//! espgw-control RSS grows by less than a bound; the drops are counted by reason (IKE:
//! `espgw_ike_drops_total{reason}`; data plane: `no-sa`, `truncated`).
//!
//! The short form runs in CI (≈35 s); the `#[ignore]`d long form floods for 120 s.

mod reliability;

use espgw_lab::espgw::Daemon;
use espgw_lab::flood::{self, FloodReport, FloodSpec, Flooder};
use espgw_lab::seqflow::FlowSpec;
use espgw_lab::Node;
use reliability::{lab_bin, sa_generations, scenario_line, Pair, PairConf, SERIAL};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const METRICS: &str = "127.0.0.1:9464";
/// espgw's half-open responder limit (`Config::half_open_limit`).
const HALF_OPEN_LIMIT: u64 = 256;
/// RSS growth allowed over a run (KiB).
const RSS_GROWTH_KIB: u64 = 8 * 1024;

/// One scrape of R1's metrics: `name{labels}` → value.
fn scrape(pair: &Pair) -> BTreeMap<String, f64> {
    let url = format!("http://{METRICS}/metrics");
    let out = pair
        .lab
        .exec(Node::R1, &["curl", "-s", "-m", "2", &url])
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// ISAKMP SAs not (yet) established: every state but QM_IDLE.
fn half_open(m: &BTreeMap<String, f64>) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with("espgw_ike_sas{") && !k.contains("QM_IDLE"))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn ike_drops(m: &BTreeMap<String, f64>, reason: &str) -> u64 {
    let k = format!("espgw_ike_drops_total{{reason=\"{reason}\"}}");
    m.get(&k).copied().unwrap_or(0.0) as u64
}

fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// R1's UDP receive-buffer overflows (`RcvbufErrors` of /proc/net/snmp): IKE datagrams
/// the kernel dropped because espgw-control did not read them in time.
fn udp_rcvbuf_errors(pair: &Pair) -> u64 {
    let snmp = pair
        .lab
        .run(Node::R1, &["cat", "/proc/net/snmp"])
        .expect("snmp");
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (names, values) = (udp[0].split_whitespace(), udp[1].split_whitespace());
    names
        .zip(values)
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Frames R1's data plane lost in its AF_XDP rings (`xsk_rx_dropped`, summed over workers).
fn xsk_rx_dropped(pair: &Pair) -> u64 {
    let st = pair.r1.dataplane_stats().unwrap_or_default();
    st["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["xsk_rx_dropped"].as_u64())
        .sum()
}

/// `ring_loss_allowed`: whether datagrams of the stream may be lost with the flood in R1's
/// AF_XDP receive ring when the data plane cannot keep up (counted as `xsk_rx_dropped`;
/// the long form at 40 kpps on two shared cores), never more than it counted.
fn flood_run(tag: &str, flood_pps: u64, secs: u64, min_rekeys: usize, ring_loss_allowed: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r1_conf = PairConf {
        lifetime_kb: Some(2560),
        extra_keys: "crypto isakmp key fl00d address 0.0.0.0 0.0.0.0\n",
        control_args: &["--metrics", METRICS],
        ..PairConf::default()
    };
    let r2_conf = PairConf {
        lifetime_kb: Some(2560),
        ..PairConf::default()
    };
    let pair = Pair::up_with(tag, &r1_conf, &r2_conf);
    let flood_bin = lab_bin("espgw-flood");
    pair.tunnel_up(Duration::from_secs(40));
    flood::setup(pair.wire.ns(), &pair.lab.ns(Node::R1)).expect("flooder address and route");
    let pid = pair.r1.pid_of(Daemon::Control).expect("R1 control pid");
    let gen0 = sa_generations(&pair.r1);
    let (b1, b2) = pair.drops();
    let m0 = scrape(&pair);
    let rss0 = vm_rss_kib(pid);
    let rcvbuf0 = udp_rcvbuf_errors(&pair);
    let ring0 = xsk_rx_dropped(&pair);
    let spec = FlowSpec {
        pps: 600,
        duration: Duration::from_secs(secs + 2),
        size: 1000,
        port: 47401,
    };
    let flow = pair.flow(&spec);
    std::thread::sleep(Duration::from_secs(1));
    let fspec = FloodSpec {
        target: Ipv4Addr::new(172, 16, 172, 10),
        pps: flood_pps,
        duration: Duration::from_secs(secs),
    };
    let flooder = Flooder::start(&pair.lab, pair.wire.ns(), &flood_bin, &fspec).expect("flood");
    let (mut ho_max, mut rss_max) = (0u64, rss0);
    let t0 = Instant::now();
    while t0.elapsed() < fspec.duration {
        std::thread::sleep(Duration::from_millis(250));
        ho_max = ho_max.max(half_open(&scrape(&pair)));
        rss_max = rss_max.max(vm_rss_kib(pid));
    }
    let fr: FloodReport = flooder.wait().expect("flood report");
    let r = flow.wait().expect("stream report");
    let m1 = scrape(&pair);
    let rss1 = vm_rss_kib(pid);
    let rcvbuf = udp_rcvbuf_errors(&pair) - rcvbuf0;
    let ring = xsk_rx_dropped(&pair) - ring0;
    let (a1, a2) = pair.drops();
    let (d1, d2) = (a1.since(&b1), a2.since(&b2));
    let rekeys = sa_generations(&pair.r1) - gen0;
    let ike = |reason| ike_drops(&m1, reason) - ike_drops(&m0, reason);
    let (malformed, half_open_refused) = (ike("malformed"), ike("half-open-limit"));
    let what = format!(
        "{tag}: {} flood packets at {:.0} pps ({} send errors) for {secs} s during {rekeys} \
         IPsec rekeys; half-open max {ho_max}, IKE malformed {malformed}, half-open refused \
         {half_open_refused}, UDP rcvbuf overflows {rcvbuf}, R1 XSK ring drops {ring}; R1 control RSS {rss0} -> {rss1} KiB (max {rss_max})",
        fr.sent, fr.pps, fr.errors
    );
    let bound = format!(
        "{} lost, 0 dup, 0 replay/auth drops, no no-SA drop of the stream, \
         half-open <= {HALF_OPEN_LIMIT}, \
         RSS +{RSS_GROWTH_KIB} KiB",
        if ring_loss_allowed {
            "<= XSK ring drops"
        } else {
            "0"
        }
    );
    let line = scenario_line(&what, &r, &d1, &d2, &bound);
    assert!(fr.pps >= flood_pps as f64 * 0.8, "flood rate short: {line}");
    assert!(
        rekeys >= min_rekeys,
        "{line}\nonly {rekeys} rekeys\n{}",
        pair.logs()
    );
    assert!(r.forward.sent > 0 && r.send_errors == 0, "{line}");
    let max_lost = if ring_loss_allowed { ring } else { 0 };
    assert!(
        r.lost() <= max_lost,
        "{line}\nmissing A->B: {:?}\n{}",
        r.missing_forward,
        pair.logs()
    );
    assert_eq!(r.duplicates(), 0, "{line}");
    for (who, d) in [("R1", &d1), ("R2", &d2)] {
        for reason in ["replay", "out_of_window", "auth"] {
            assert_eq!(d.get(reason), 0, "{who} dropped for {reason}: {line}");
        }
    }
    assert!(ho_max > 0, "the flood made no half-open SA: {line}");
    assert!(ho_max <= HALF_OPEN_LIMIT, "{line}");
    assert!(half_open_refused > 0, "{line}");
    assert!(rss1 <= rss0 + RSS_GROWTH_KIB, "RSS grew: {line}");
    // Drops by reason: some of every kind of garbage reached its counter (the kernel's
    // socket buffer may drop part of the IKE share before espgw-control reads it).
    let ike_garbage = FloodReport::of("ike-garbage", &fr)
        + FloodReport::of("ike-truncated", &fr)
        + FloodReport::of("natt-truncated", &fr);
    assert!(malformed >= ike_garbage / 10, "{line}");
    // espgw-control keeps up with the flood: the kernel drops few of its datagrams (a
    // real peer's Quick Mode message among them would delay a rekey past the hard
    // lifetime). One datagram per wake-up lost ~21 % of them here; batches lose < 1 %.
    let ike_sent = ike_garbage + FloodReport::of("mm1", &fr) + FloodReport::of("am1", &fr);
    assert!(rcvbuf <= ike_sent / 10, "{line}");
    let esp = FloodReport::of("esp-garbage", &fr) + FloodReport::of("esp-udp-garbage", &fr);
    assert!(d1.get("no_sa") >= esp / 2, "{line}");
    // Every rekey came in time: no datagram of the stream met a missing SA (R1's no-SA
    // drops are the flood's ESP, R2 sees none).
    assert!(d1.get("no_sa") <= esp && d2.get("no_sa") == 0, "{line}");
    assert!(
        d1.get("truncated") >= FloodReport::of("esp-truncated", &fr) / 2,
        "{line}"
    );
    // The tunnel still works after the flood.
    let p = pair.lab.ping(Node::HostA, "10.1.2.2", 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}\n{}", pair.logs());
}

/// 20 s of 20,000 packets a second during ~5 kilobyte rekeys.
#[test]
fn flood_of_first_messages_and_garbage_during_rekeys() {
    flood_run("flood", 20_000, 20, 3, false);
}

/// 120 s of 40,000 packets a second.
#[test]
#[ignore]
fn flood_of_first_messages_and_garbage_during_rekeys_long() {
    flood_run("floodlong", 40_000, 120, 20, true);
}
