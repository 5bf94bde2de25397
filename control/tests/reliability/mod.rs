//! Shared pieces of the reliability suite (issue 17): espgw on R1 and, on R2, a second
//! espgw or strongSwan 5.9.8 ([`Peer`]) in the slides' lab, with traffic flowing through
//! R1's data plane, the sequence-numbered UDP stream of `espgw_lab::seqflow` from hostA to
//! hostB and back (or one way), the dataplane drop counters by reason, and the one line
//! each scenario prints.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

use espgw_lab::impair::Impairment;
use espgw_lab::seqflow::{FlowReport, FlowSpec, SeqFlow};
use espgw_lab::{EspgwOptions, EspgwRouter, Lab, LabOptions, Node, Profile, StrongSwan, Wire};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The scenarios share two cores: one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub use common::bins;

/// `espgw-seqflow` (the load driver), built from espgw-lab so a stale one is never used.
pub fn seqflow_bin() -> PathBuf {
    lab_bin("espgw-seqflow")
}

/// A binary of espgw-lab (`espgw-seqflow`, `espgw-flood`), built so a stale one is never used.
pub fn lab_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "espgw-lab", "--bin", name]);
    if dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("cargo build espgw-seqflow").success(),
        "building {name} failed"
    );
    dir.join(name)
}

/// What the two routers' IOS configurations vary in.
#[derive(Clone, Debug)]
pub struct PairConf {
    /// Transform set after its name.
    pub transform: &'static str,
    /// `set security-association lifetime seconds N` on the crypto map.
    pub lifetime_secs: Option<u32>,
    /// `set security-association lifetime kilobytes N` on the crypto map.
    pub lifetime_kb: Option<u64>,
    /// `lifetime N` of the ISAKMP policy.
    pub isakmp_lifetime: Option<u32>,
    /// `crypto isakmp keepalive I R periodic` (DPD).
    pub keepalive: Option<(u32, u32)>,
    /// Lines after the peer's `crypto isakmp key` (e.g. a wildcard key).
    pub extra_keys: &'static str,
    /// More espgw-control arguments (`--metrics ADDR:PORT`).
    pub control_args: &'static [&'static str],
}

impl Default for PairConf {
    fn default() -> Self {
        PairConf {
            transform: "esp-aes esp-sha-hmac",
            lifetime_secs: None,
            lifetime_kb: None,
            isakmp_lifetime: None,
            keepalive: None,
            extra_keys: "",
            control_args: &[],
        }
    }
}

impl PairConf {
    /// One router's configuration (the slides' addresses).
    pub fn text(&self, node: Node) -> String {
        let site = node.site().expect("a router");
        let (me, peer, inside, out) = (site.name, site.peer_outside, site.inside, site.outside);
        let (local, remote) = (site.local_net, site.remote_net);
        let mut s = format!(
            "hostname {me}\n!\ncrypto isakmp policy 10\n encr aes 128\n hash sha\n authentication pre-share\n group 2\n"
        );
        if let Some(l) = self.isakmp_lifetime {
            s += &format!(" lifetime {l}\n");
        }
        s += &format!("crypto isakmp key C!scO address {peer}\n");
        s += self.extra_keys;
        if let Some((i, r)) = self.keepalive {
            s += &format!("crypto isakmp keepalive {i} {r} periodic\n");
        }
        s += &format!(
            "!\ncrypto ipsec transform-set myset {}\n mode tunnel\n!\n",
            self.transform
        );
        s += &format!(
            "crypto map vpn 10 ipsec-isakmp\n set peer {peer}\n set transform-set myset\n match address 101\n"
        );
        if let Some(l) = self.lifetime_secs {
            s += &format!(" set security-association lifetime seconds {l}\n");
        }
        if let Some(l) = self.lifetime_kb {
            s += &format!(" set security-association lifetime kilobytes {l}\n");
        }
        s += &format!(
            "!\ninterface Ethernet0/0\n ip address {inside} 255.255.255.0\n!\n\
             interface Ethernet1/0\n ip address {out} 255.255.255.240\n crypto map vpn\n!\n\
             access-list 101 permit ip {local} 0.0.0.255 {remote} 0.0.0.255\n!\nend\n"
        );
        s
    }

    /// The strongSwan profile that matches this configuration on R2: phase 1
    /// `aes128-sha1-modp1024`, the transform set's ESP proposal, the same lifetimes (IOS's
    /// defaults where unset: 86400 s, 3600 s), DPD every keepalive interval.
    pub fn swan_profile(&self) -> Profile {
        let esp = match self.transform {
            "esp-aes esp-sha-hmac" | "esp-aes 128 esp-sha-hmac" => "aes128-sha1",
            "esp-3des esp-md5-hmac" => "3des-md5",
            "esp-3des esp-sha-hmac" => "3des-sha1",
            "esp-gcm" => "aes128gcm16",
            t => panic!("no strongSwan ESP proposal for transform set {t:?}"),
        };
        let mut p = Profile::new(Node::R2)
            .proposal("aes128-sha1-modp1024")
            .esp(esp);
        p.ike_lifetime = Duration::from_secs(self.isakmp_lifetime.unwrap_or(86400).into());
        p.child_lifetime = Duration::from_secs(self.lifetime_secs.unwrap_or(3600).into());
        p.dpd_delay = self.keepalive.map(|(i, _)| Duration::from_secs(i.into()));
        p
    }
}

/// R2: a second espgw (its own data plane), or strongSwan 5.9.8 (charon, ESP in user space
/// through libipsec, always UDP-encapsulated on 4500).
#[allow(clippy::large_enum_variant)] // one per test, built once and never moved again
pub enum Peer {
    Espgw(EspgwRouter),
    StrongSwan(StrongSwan),
}

impl Peer {
    /// The espgw router, if R2 is one.
    pub fn espgw(&self) -> Option<&EspgwRouter> {
        match self {
            Peer::Espgw(r) => Some(r),
            Peer::StrongSwan(_) => None,
        }
    }

    /// strongSwan, if R2 runs it.
    pub fn swan(&self) -> Option<&StrongSwan> {
        match self {
            Peer::Espgw(_) => None,
            Peer::StrongSwan(s) => Some(s),
        }
    }

    /// What the scenario lines call it.
    pub fn name(&self) -> &'static str {
        match self {
            Peer::Espgw(_) => "espgw",
            Peer::StrongSwan(_) => "strongSwan",
        }
    }
}

/// A fresh lab with one queue per veth.
pub fn lab(tag: &str) -> Lab {
    Lab::up_with(
        &Lab::unique_prefix(tag),
        LabOptions {
            queues: Some(1),
            ..LabOptions::default()
        },
    )
    .expect("lab")
}

/// The lab's R1–R2 cable: a bridge, or the `espgw-impair` relay when `imp` is given.
pub fn wire(lab: &Lab, imp: Option<&Impairment>) -> Wire {
    match imp {
        None => Wire::insert(lab).expect("wire"),
        Some(imp) => {
            Wire::insert_impaired(lab, imp, &lab_bin("espgw-impair")).expect("impaired wire")
        }
    }
}

/// espgw on R1 and a [`Peer`] on R2 in a fresh lab (one queue per veth, R1 on core 0, an
/// espgw R2 on core 1), the R1–R2 cable through a bridge in a wire namespace (where faults
/// are injected).
pub struct Pair {
    pub r1: EspgwRouter,
    pub r2: Peer,
    pub wire: Wire,
    pub lab: Lab,
    pub seqflow: PathBuf,
}

fn espgw_options(core: usize, c: &PairConf) -> EspgwOptions {
    EspgwOptions {
        cores: vec![core],
        control_args: c.control_args.iter().map(|a| a.to_string()).collect(),
        ..EspgwOptions::default()
    }
}

impl Pair {
    pub fn up(tag: &str, conf: &PairConf) -> Pair {
        Pair::up_with(tag, conf, conf)
    }

    /// R1 with `c1`, R2 (espgw) with `c2`.
    pub fn up_with(tag: &str, c1: &PairConf, c2: &PairConf) -> Pair {
        Pair::up_peer(tag, c1, None, |lab, bins| {
            Peer::Espgw(
                EspgwRouter::start(
                    lab,
                    Node::R2,
                    &c2.text(Node::R2),
                    bins,
                    &espgw_options(1, c2),
                )
                .expect("espgw on R2"),
            )
        })
    }

    /// R1 (espgw) with `conf`, R2 strongSwan with `profile` (see [`PairConf::swan_profile`]).
    pub fn up_swan(tag: &str, conf: &PairConf, profile: Profile) -> Pair {
        Pair::up_swan_impaired(tag, conf, profile, None)
    }

    /// [`Pair::up`] with the cable impaired by `espgw-impair`.
    pub fn up_impaired(tag: &str, conf: &PairConf, imp: &Impairment) -> Pair {
        Pair::up_peer(tag, conf, Some(imp), |lab, bins| {
            Peer::Espgw(
                EspgwRouter::start(
                    lab,
                    Node::R2,
                    &conf.text(Node::R2),
                    bins,
                    &espgw_options(1, conf),
                )
                .expect("espgw on R2"),
            )
        })
    }

    /// [`Pair::up_swan`], the cable impaired by `espgw-impair` when `imp` is given.
    pub fn up_swan_impaired(
        tag: &str,
        conf: &PairConf,
        profile: Profile,
        imp: Option<&Impairment>,
    ) -> Pair {
        Pair::up_peer(tag, conf, imp, |lab, _| {
            let swan = StrongSwan::start(lab, Node::R2, profile).expect("charon on R2");
            Peer::StrongSwan(swan)
        })
    }

    /// A fresh lab with the wire (impaired by `imp`), R2 started by `r2`, then R1 with `c1`.
    fn up_peer(
        tag: &str,
        c1: &PairConf,
        imp: Option<&Impairment>,
        r2: impl FnOnce(&Lab, &espgw_lab::EspgwBins) -> Peer,
    ) -> Pair {
        espgw_lab::prereq::require_root();
        let bins = bins();
        let seqflow = seqflow_bin();
        let lab = lab(tag);
        let wire = wire(&lab, imp);
        let r2 = r2(&lab, &bins);
        let r1 = EspgwRouter::start(
            &lab,
            Node::R1,
            &c1.text(Node::R1),
            &bins,
            &espgw_options(0, c1),
        )
        .expect("espgw on R1");
        Pair {
            r1,
            r2,
            wire,
            lab,
            seqflow,
        }
    }

    /// hostA pings hostB until a reply comes back (the first packet starts the
    /// negotiation); returns how long it took.
    pub fn tunnel_up(&self, limit: Duration) -> Duration {
        tunnel_up(&self.lab, limit, || self.logs())
    }

    /// Starts the stream hostA → hostB → hostA.
    pub fn flow(&self, spec: &FlowSpec) -> SeqFlow {
        self.flow_with(spec, true, espgw_lab::seqflow::IDLE_EXIT)
    }

    /// Starts the stream hostA → hostB only: hostB counts and does not answer, so the
    /// tunnel's other direction stays idle.
    pub fn flow_one_way(&self, spec: &FlowSpec) -> SeqFlow {
        self.flow_with(spec, false, espgw_lab::seqflow::IDLE_EXIT)
    }

    /// The stream from hostA, answered by hostB if `echo`; hostB's receiver ends after
    /// `idle_exit` without a datagram (longer than any outage the scenario causes).
    pub fn flow_with(&self, spec: &FlowSpec, echo: bool, idle_exit: Duration) -> SeqFlow {
        SeqFlow::start_with(
            &self.lab,
            &self.seqflow,
            Node::HostA,
            Node::HostB,
            "10.1.2.2",
            spec,
            echo,
            idle_exit,
        )
        .expect("seqflow")
    }

    /// Both routers' drop counters by reason (summed over workers); strongSwan keeps none.
    pub fn drops(&self) -> (Drops, Drops) {
        let d2 = match &self.r2 {
            Peer::Espgw(r) => Drops::of(r),
            Peer::StrongSwan(_) => Drops::not_counted(),
        };
        (Drops::of(&self.r1), d2)
    }

    /// The daemons' logs, for a failure message.
    pub fn logs(&self) -> String {
        let tail = |s: String| {
            let l: Vec<&str> = s.lines().collect();
            l[l.len().saturating_sub(60)..].join("\n")
        };
        let r1 = format!(
            "--- R1 control ---\n{}\n--- R1 dataplane ---\n{}",
            tail(self.r1.control_log()),
            tail(self.r1.dataplane_log())
        );
        match &self.r2 {
            Peer::Espgw(r2) => format!(
                "{r1}\n--- R2 control ---\n{}\n--- R2 dataplane ---\n{}",
                tail(r2.control_log()),
                tail(r2.dataplane_log())
            ),
            Peer::StrongSwan(s) => format!("{r1}\n--- R2 charon ---\n{}", tail(s.log())),
        }
    }
}

/// hostA pings hostB until a reply comes back (the first packet starts the negotiation);
/// returns how long it took, or panics with `logs()` after `limit`.
pub fn tunnel_up(lab: &Lab, limit: Duration, logs: impl Fn() -> String) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let once = ["ping", "-n", "-q", "-c", "1", "-W", "1", "10.1.2.2"];
        if lab.exec(Node::HostA, &once).expect("ping").status.success() {
            return t0.elapsed();
        }
    }
    panic!("no reply through the tunnel in {limit:?}\n{}", logs());
}

/// Drop counters by reason (`drop_*` keys of the dataplane's stats, summed over workers;
/// zeros left out). strongSwan's libipsec counts no drops: its `Drops` say so
/// (`counted == false`) rather than print zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drops {
    pub by_reason: BTreeMap<String, u64>,
    pub counted: bool,
}

impl Default for Drops {
    fn default() -> Self {
        Drops {
            by_reason: BTreeMap::new(),
            counted: true,
        }
    }
}

impl Drops {
    /// A router that keeps no drop counters (strongSwan).
    pub fn not_counted() -> Drops {
        Drops {
            counted: false,
            ..Drops::default()
        }
    }

    pub fn of(r: &EspgwRouter) -> Drops {
        let mut m = BTreeMap::new();
        if let Some(st) = r.dataplane_stats() {
            for w in st["workers"].as_array().into_iter().flatten() {
                for (k, v) in w.as_object().into_iter().flatten() {
                    if let (Some(name), Some(n)) = (k.strip_prefix("drop_"), v.as_u64()) {
                        *m.entry(name.to_string()).or_insert(0) += n;
                    }
                }
            }
        }
        m.retain(|_, n| *n > 0);
        Drops {
            by_reason: m,
            counted: true,
        }
    }

    /// What `self` counted beyond `before`.
    pub fn since(&self, before: &Drops) -> Drops {
        let mut m = BTreeMap::new();
        for (k, n) in &self.by_reason {
            let d = n.saturating_sub(before.by_reason.get(k).copied().unwrap_or(0));
            if d > 0 {
                m.insert(k.clone(), d);
            }
        }
        Drops {
            by_reason: m,
            counted: self.counted,
        }
    }

    pub fn get(&self, reason: &str) -> u64 {
        self.by_reason.get(reason).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Drops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.counted {
            return write!(f, "n/a");
        }
        if self.by_reason.is_empty() {
            return write!(f, "none");
        }
        let v: Vec<String> = self
            .by_reason
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        write!(f, "{}", v.join(","))
    }
}

/// SA pairs negotiated so far: the distinct inbound SPIs in a router's key log.
pub fn sa_generations(r: &EspgwRouter) -> usize {
    let (keys, _) = r.keys();
    let mut spis: Vec<u32> = keys.iter().map(|k| k.spi).collect();
    spis.sort_unstable();
    spis.dedup();
    spis.len() / 2
}

impl Pair {
    /// Make-before-break's bound: every datagram arrived once (no send error), and neither
    /// data plane dropped a packet for replay, window, authentication or a missing SA.
    pub fn assert_lossless(&self, r: &FlowReport, d1: &Drops, d2: &Drops, line: &str) {
        assert!(r.forward.sent > 0 && r.send_errors == 0, "{line}");
        assert_eq!(
            r.lost(),
            0,
            "{line}\nmissing A->B: {:?}\n{}",
            r.missing_forward,
            self.logs()
        );
        assert_eq!(r.duplicates(), 0, "{line}");
        for (who, d) in [("R1", d1), ("R2", d2)] {
            for reason in ["replay", "out_of_window", "auth", "no_sa"] {
                assert_eq!(d.get(reason), 0, "{who} {reason}: {line}\n{}", self.logs());
            }
        }
    }
}

/// The SPIs (both directions) that `show crypto ipsec sa` lists on an espgw router.
pub fn ipsec_spis(r: &EspgwRouter) -> BTreeSet<u32> {
    let show = r.cli(&["show", "crypto", "ipsec", "sa"]).expect("show");
    show.lines()
        .filter_map(|l| l.trim_start().strip_prefix("spi: 0x"))
        .filter_map(|h| u32::from_str_radix(h.split('(').next()?, 16).ok())
        .collect()
}

/// The one line a scenario prints: what was done, the stream's counts, the drops by
/// reason on both routers, and the bound it is held to.
pub fn scenario_line(what: &str, r: &FlowReport, d1: &Drops, d2: &Drops, bound: &str) -> String {
    let line = format!(
        "RELIABILITY {what}: {} | drops R1 {d1} R2 {d2} | bound: {bound}",
        r.line()
    );
    eprintln!("{line}");
    if let Ok(p) = std::env::var("ESPGW_RELIAB_RESULTS") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    line
}
