//! The remote-access scale point (issue 12): many Easy VPN clients against one real server.
//!
//! The load generator (`espgw-perf ezvpn-load`) runs in R2's namespace, which here is not a
//! router but the clients' side: N /32 aliases 172.17.x.y on its outside interface, one
//! client identity per alias (AM PSK with the group's ID_KEY_ID, XAUTH user loadI, Mode
//! Config, Quick Mode for its address against the split network), all from one process.
//! R1 reaches the aliases through R2 (one route).
//!
//! Against espgw (R1: espgw-control + espgw-dataplane): every client gets a distinct Mode
//! Config address, `show crypto ipsec sa` has all 2N SAs, the data plane steers all N flows,
//! and one datagram from hostA to each client address leaves on that client's SA: each
//! outbound SA's `#pkts encaps` (the data plane's per-SA counter) goes up by exactly one.
//! Reported: setup rate and espgw-control's RSS growth per client.
//!
//! `easyvpn_scale_200` runs in CI (200 clients). `easyvpn_scale_1000_vs_strongswan`
//! (ignored) is the 1,000-client form, and runs the same generator against strongSwan 5.9.8
//! as the Easy VPN server in the same run for the baseline (setup rate, charon's RSS growth
//! per client); its figures are in perf/results/ezvpn-load-2026-12-02.md.

mod common;

use espgw_lab::{
    EspgwOptions, EspgwRouter, Lab, LabOptions, LabProcess, Node, Profile, StrongSwan,
};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The clients' source addresses: 172.17.0.1 …
const FIRST: &str = "172.17.0.1";
const GROUP: &str = "loadgroup";
const KEY: &str = "loadkey";
const PASSWORD: &str = "loadpw";

/// espgw as the Easy VPN server of `n` users load1…loadN: group 2 (cheap phase 1 for a
/// setup-rate figure), a pool of 4,094 addresses, split network 10.1.1.0/24, DPD.
fn espgw_server_conf(n: usize) -> String {
    let mut s = String::from(
        "hostname R1
aaa new-model
aaa authentication login userauthen local
aaa authorization network groupauthor local
",
    );
    for i in 1..=n {
        s += &format!("username load{i} password 0 {PASSWORD}\n");
    }
    s += &format!(
        "crypto isakmp policy 10
 encr aes
 hash sha
 authentication pre-share
 group 2
crypto isakmp keepalive 10
crypto isakmp client configuration group {GROUP}
 key {KEY}
 pool loadpool
 acl 150
crypto ipsec transform-set aesset esp-aes esp-sha-hmac
crypto dynamic-map dynmap 10
 set transform-set aesset
 reverse-route
crypto map clientmap client authentication list userauthen
crypto map clientmap isakmp authorization list groupauthor
crypto map clientmap client configuration address respond
crypto map clientmap 10 ipsec-isakmp dynamic dynmap
ip local pool loadpool 10.98.0.1 10.98.15.254
access-list 150 permit ip 10.1.1.0 0.0.0.255 any
interface Ethernet0/0
 ip address 10.1.1.1 255.255.255.0
interface Ethernet1/0
 ip address 172.16.172.10 255.255.255.240
 crypto map clientmap
end
"
    );
    s
}

/// strongSwan 5.9.8 on R1 as the same server: AM PSK (keyid group), XAUTH (xauth-generic),
/// a pool, the split network from the unity plugin (the child's local_ts).
fn strongswan_server(n: usize) -> Profile {
    let mut conf = format!(
        r#"connections {{
  lab {{
    version = 1
    aggressive = yes
    proposals = aes128-sha1-modp1024
    local_addrs = 172.16.172.10
    pools = loadpool
    rekey_time = 0
    reauth_time = 0
    local {{
      auth = psk
      id = 172.16.172.10
    }}
    remote {{
      auth = psk
      id = keyid:{GROUP}
    }}
    remote-xauth {{
      auth = xauth
    }}
    children {{
      lab {{
        mode = tunnel
        esp_proposals = aes128-sha1
        local_ts = 10.1.1.0/24
        life_time = 3600s
        rekey_time = 0
        start_action = none
      }}
    }}
  }}
}}
pools {{
  loadpool {{
    addrs = 10.98.0.0/20
  }}
}}
secrets {{
  ike-group {{
    id-1 = keyid:{GROUP}
    id-2 = 172.16.172.10
    secret = "{KEY}"
  }}
"#
    );
    for i in 1..=n {
        conf += &format!("  xauth-{i} {{\n    id = load{i}\n    secret = \"{PASSWORD}\"\n  }}\n");
    }
    conf += "}\n";
    let mut p = Profile::new(Node::R1);
    p.raw_swanctl = Some(conf);
    p.extra_plugins = vec!["xauth-generic".into(), "unity".into()];
    p.extra_charon = vec!["cisco_unity = yes".into()];
    p
}

/// The lab, with `n` aliases on R2's outside interface and R1's route to them via R2.
fn lab(tag: &str, n: usize) -> Lab {
    let lab = Lab::up_with(
        &Lab::unique_prefix(tag),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let base = u32::from(FIRST.parse::<std::net::Ipv4Addr>().unwrap());
    let batch: String = (0..n as u32)
        .map(|i| {
            format!(
                "address add {}/32 dev out0\n",
                std::net::Ipv4Addr::from(base + i)
            )
        })
        .collect();
    let file = lab.dir().join("aliases.batch");
    std::fs::write(&file, batch).unwrap();
    lab.run(Node::R2, &["ip", "-batch", file.to_str().unwrap()])
        .expect("aliases");
    lab.run(
        Node::R1,
        &[
            "ip",
            "route",
            "add",
            "172.17.0.0/16",
            "via",
            "172.16.172.20",
            "dev",
            "out0",
        ],
    )
    .expect("route to the clients");
    lab
}

/// VmRSS of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The generator's report, once written.
fn wait_report(path: &Path, gen: &mut LabProcess, timeout: Duration) -> serde_json::Value {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if let Ok(s) = std::fs::read_to_string(path) {
            return serde_json::from_str(&s).expect("report JSON");
        }
        assert!(gen.is_running(), "the generator exited:\n{}", gen.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no report in {timeout:?}:\n{}", gen.log());
}

/// Starts the generator for `n` clients against R1.
fn generator(lab: &Lab, n: usize, report: &Path) -> LabProcess {
    let bin = common::workspace_bin("espgw-perf", "espgw-perf");
    let n_s = n.to_string();
    lab.spawn(
        Node::R2,
        &[
            bin.to_str().unwrap(),
            "ezvpn-load",
            "--clients",
            &n_s,
            "--first",
            FIRST,
            "--server",
            "172.16.172.10",
            "--group",
            GROUP,
            "--key",
            KEY,
            "--user",
            "load",
            "--password",
            PASSWORD,
            "--numbered-users",
            "--window",
            "64",
            "--timeout-secs",
            "240",
            "--hold-secs",
            "600",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .expect("espgw-perf ezvpn-load")
}

/// What a run measured.
#[derive(Debug)]
struct Figures {
    clients: usize,
    setup_secs: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
}

impl Figures {
    fn per_client_kib(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.clients as f64
    }
    fn from(report: &serde_json::Value, n: usize, before: u64, after: u64) -> Figures {
        let f = |k: &str| report[k].as_f64().unwrap_or(0.0);
        Figures {
            clients: n,
            setup_secs: f("setup_secs"),
            rate: f("clients_per_sec"),
            p50_ms: f("setup_ms_p50"),
            p99_ms: f("setup_ms_p99"),
            rss_before_kib: before,
            rss_after_kib: after,
        }
    }
}

/// Every identity done: (Mode Config address → the server's outbound SPI, which is the
/// client's inbound SPI).
fn assigned(report: &serde_json::Value, n: usize) -> BTreeMap<String, u32> {
    let ids = report["identities"].as_array().expect("identities");
    assert_eq!(ids.len(), n);
    let failed: Vec<_> = ids.iter().filter(|c| c.get("error").is_some()).collect();
    assert!(
        failed.is_empty(),
        "{} of {n} clients failed, e.g. {:?}",
        failed.len(),
        failed.iter().take(5).collect::<Vec<_>>()
    );
    let mut m = BTreeMap::new();
    for c in ids {
        let r = &c["result"];
        let addr = r["address"].as_str().unwrap().to_string();
        assert!(addr.starts_with("10.98."), "{c}");
        let local = r["local_proxy"].as_str().unwrap_or_default();
        assert!(
            local.starts_with(&format!("{addr}/255.255.255.255/")),
            "the client's SA is for its address: {c}"
        );
        let spi = r["inbound_spi"].as_u64().unwrap() as u32;
        assert!(m.insert(addr, spi).is_none(), "address given twice: {c}");
    }
    m
}

/// `show crypto ipsec sa`: per flow block, its current outbound SPI and `#pkts encaps`;
/// and the number of SAs (spi lines).
fn outbound_counts(show: &str) -> (BTreeMap<u32, u64>, usize) {
    let mut m = BTreeMap::new();
    let mut spis = 0;
    for block in show.split("   protected vrf:").skip(1) {
        let enc = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("#pkts encaps:"))
            .and_then(|r| r.split(',').next()?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let spi = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("current outbound spi: 0x"))
            .and_then(|r| u32::from_str_radix(r.split('(').next()?, 16).ok());
        spis += block
            .lines()
            .filter(|l| l.trim_start().starts_with("spi: 0x"))
            .count();
        if let Some(s) = spi {
            m.insert(s, enc);
        }
    }
    (m, spis)
}

/// espgw as the server: N clients, all checks, the figures.
fn against_espgw(n: usize) -> Figures {
    espgw_lab::prereq::require_root();
    let t0 = Instant::now();
    let bins = common::bins();
    let lab = lab("ezscale", n);
    let r1 = EspgwRouter::start(
        &lab,
        Node::R1,
        &espgw_server_conf(n),
        &bins,
        &EspgwOptions {
            cores: vec![0],
            ..EspgwOptions::default()
        },
    )
    .expect("R1");
    let control_pid = r1.pids()[0];
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(control_pid);
    let report_path = lab.dir().join("ezvpn-load.json");
    let mut gen = generator(&lab, n, &report_path);
    let report = wait_report(&report_path, &mut gen, Duration::from_secs(300));
    let after = rss_kib(control_pid);
    let figs = Figures::from(&report, n, before, after);
    let clients = assigned(&report, n);
    assert_eq!(clients.len(), n, "distinct Mode Config addresses");
    let leases: HashSet<&String> = clients.keys().collect();
    assert_eq!(leases.len(), n);

    // Control has all 2N SAs; the data plane steers all N client flows from them.
    let show = || {
        r1.cli(&["show", "crypto", "ipsec", "sa"])
            .unwrap_or_default()
    };
    let (counts, spis) = outbound_counts(&show());
    assert_eq!(spis, 2 * n, "SAs in show crypto ipsec sa");
    for spi in clients.values() {
        assert_eq!(
            counts.get(spi),
            Some(&0),
            "outbound SA {spi:#x} before the traffic"
        );
    }
    let rules = |log: &str| {
        log.lines()
            .filter_map(|l| l.strip_prefix("espgw-dataplane: "))
            .filter_map(|l| l.strip_suffix(" crypto ACL rule(s) from Easy VPN SAs"))
            .filter_map(|c| c.parse::<usize>().ok())
            .next_back()
            .unwrap_or(0)
    };
    assert!(
        common::wait(Duration::from_secs(20), || rules(&r1.dataplane_log()) >= n),
        "data plane rules: {}\n{}",
        rules(&r1.dataplane_log()),
        r1.dataplane_log()
    );

    // One datagram from hostA to each client address.
    let script: String = clients
        .keys()
        .map(|a| format!("echo scale >/dev/udp/{a}/47999\n"))
        .collect();
    let out = lab
        .exec_timeout(
            Node::HostA,
            &["bash", "-c", &script],
            Duration::from_secs(60),
        )
        .expect("send from hostA");
    assert!(out.status.success(), "{out:?}");
    let one_each = || {
        let (c, _) = outbound_counts(&show());
        clients.values().all(|s| c.get(s) == Some(&1))
    };
    assert!(
        common::wait(Duration::from_secs(15), one_each),
        "each outbound SA exactly +1"
    );
    let (c, _) = outbound_counts(&show());
    let wrong: Vec<_> = clients
        .iter()
        .filter(|(_, s)| c.get(s) != Some(&1))
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(r1.cli(&["show", "crypto", "session"]).is_ok());
    drop(gen);
    drop(r1);
    drop(lab);
    eprintln!(
        "easyvpn scale vs espgw: {n} clients in {:.1}s = {:.1}/s (p50 {:.0} ms, p99 {:.0} ms), espgw-control RSS {} -> {} KiB = {:.1} KiB/client; total {:.1}s",
        figs.setup_secs,
        figs.rate,
        figs.p50_ms,
        figs.p99_ms,
        figs.rss_before_kib,
        figs.rss_after_kib,
        figs.per_client_kib(),
        t0.elapsed().as_secs_f64()
    );
    figs
}

/// strongSwan as the server: the same generator; every client gets a distinct address.
fn against_strongswan(n: usize) -> Figures {
    espgw_lab::prereq::require_root();
    let lab = lab("ezscsw", n);
    let swan = StrongSwan::start(&lab, Node::R1, strongswan_server(n)).expect("charon");
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(swan.pid());
    let report_path = lab.dir().join("ezvpn-load.json");
    let mut gen = generator(&lab, n, &report_path);
    let report = wait_report(&report_path, &mut gen, Duration::from_secs(300));
    let after = rss_kib(swan.pid());
    let figs = Figures::from(&report, n, before, after);
    let clients = assigned(&report, n);
    assert_eq!(clients.len(), n);
    drop(gen);
    drop(swan);
    drop(lab);
    eprintln!(
        "easyvpn scale vs strongSwan: {n} clients in {:.1}s = {:.1}/s (p50 {:.0} ms, p99 {:.0} ms), charon RSS {} -> {} KiB = {:.1} KiB/client",
        figs.setup_secs,
        figs.rate,
        figs.p50_ms,
        figs.p99_ms,
        figs.rss_before_kib,
        figs.rss_after_kib,
        figs.per_client_kib()
    );
    figs
}

#[test]
fn easyvpn_scale_200() {
    against_espgw(200);
}

#[test]
#[ignore = "1,000 clients against espgw and strongSwan: minutes; run for perf/results"]
fn easyvpn_scale_1000_vs_strongswan() {
    let n: usize = std::env::var("EZVPN_SCALE_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let e = against_espgw(n);
    let s = against_strongswan(n);
    eprintln!(
        "same run, {n} clients: setup rate espgw {:.1}/s vs strongSwan {:.1}/s (x{:.2}); memory per client espgw-control {:.1} KiB vs charon {:.1} KiB (x{:.2})",
        e.rate,
        s.rate,
        e.rate / s.rate.max(1e-9),
        e.per_client_kib(),
        s.per_client_kib(),
        e.per_client_kib() / s.per_client_kib().max(1e-9)
    );
}
