//! Devices under test, each brought up in the slides' lab (espgw-lab's four
//! namespaces; R1 and R2 are the device) or, for `wire`, on a bare veth pair:
//!
//! | name | R1 | R2 | path |
//! |---|---|---|---|
//! | `wire` | — | — | hostA eth0 ─── eth0 hostB (the generator alone) |
//! | `kernel` | Linux forwarding | Linux forwarding | in clear: the anchor |
//! | `espgw-clear` | espgw-dataplane `--no-esp` | Linux | in clear |
//! | `swan-swan-F` | strongSwan | strongSwan | tunnel, ESP in UDP (libipsec) |
//! | `espgw-swan-F` | espgw | strongSwan | tunnel, ESP in UDP (NAT-T) |
//! | `espgw-espgw-F` | espgw | espgw | tunnel, raw ESP |
//! | `espgw-espgw-F-Nw` | espgw, N workers | espgw, N workers | N queues per veth |
//!
//! F is a transform family: `3des` (esp-3des esp-md5-hmac, IKE 3DES-MD5-group 2), `aes`
//! (esp-aes 128 esp-sha-hmac, IKE AES128-SHA1-group 14), `gcm` (esp-gcm 128, IKE as aes).
//! Each DUT names a counter of its own that the harness reads around every trial.

pub mod netns;

use crate::gen::engine::Port;
use espgw_lab::{
    addr, EspgwBins, EspgwOptions, EspgwRouter, Lab, LabOptions, Node, Profile, StrongSwan,
};
use netns::VethPair;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// A transform family (DESIGN §5: the three the lab runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Tdes,
    Aes,
    Gcm,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Tdes, Family::Aes, Family::Gcm];
    pub fn name(self) -> &'static str {
        match self {
            Family::Tdes => "3des",
            Family::Aes => "aes",
            Family::Gcm => "gcm",
        }
    }
    /// IOS transform set.
    fn ios_transform(self) -> &'static str {
        match self {
            Family::Tdes => "esp-3des esp-md5-hmac",
            Family::Aes => "esp-aes 128 esp-sha-hmac",
            Family::Gcm => "esp-gcm 128",
        }
    }
    /// IOS ISAKMP policy lines (encr, hash, group).
    fn ios_isakmp(self) -> (&'static str, &'static str, u32) {
        match self {
            Family::Tdes => ("3des", "md5", 2),
            Family::Aes | Family::Gcm => ("aes 128", "sha", 14),
        }
    }
    /// strongSwan IKE and ESP proposals.
    fn swan(self) -> (&'static str, &'static str) {
        match self {
            Family::Tdes => ("3des-md5-modp1024", "3des-md5"),
            Family::Aes => ("aes128-sha1-modp2048", "aes128-sha1"),
            Family::Gcm => ("aes128-sha1-modp2048", "aes128gcm16"),
        }
    }
}

/// What runs on R1 and R2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DutKind {
    Wire,
    Kernel,
    EspgwClear,
    SwanSwan(Family),
    EspgwSwan(Family),
    EspgwEspgw(Family, u32),
}

impl DutKind {
    pub fn name(&self) -> String {
        match *self {
            DutKind::Wire => "wire".into(),
            DutKind::Kernel => "kernel".into(),
            DutKind::EspgwClear => "espgw-clear".into(),
            DutKind::SwanSwan(f) => format!("swan-swan-{}", f.name()),
            DutKind::EspgwSwan(f) => format!("espgw-swan-{}", f.name()),
            DutKind::EspgwEspgw(f, 1) => format!("espgw-espgw-{}", f.name()),
            DutKind::EspgwEspgw(f, n) => format!("espgw-espgw-{}-{n}w", f.name()),
        }
    }

    /// The default run: every DUT, the one-tunnel-many-workers point with 3DES (the
    /// transform a single core cannot carry) on as many workers as there are cores.
    pub fn default_set() -> Vec<DutKind> {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2) as u32;
        let mut v = vec![DutKind::Wire, DutKind::Kernel, DutKind::EspgwClear];
        for f in Family::ALL {
            v.push(DutKind::SwanSwan(f));
        }
        for f in Family::ALL {
            v.push(DutKind::EspgwSwan(f));
        }
        for f in Family::ALL {
            v.push(DutKind::EspgwEspgw(f, 1));
        }
        v.push(DutKind::EspgwEspgw(Family::Tdes, n));
        v
    }

    /// Whether it needs the espgw binaries.
    pub fn needs_espgw(&self) -> bool {
        matches!(
            self,
            DutKind::EspgwClear | DutKind::EspgwSwan(_) | DutKind::EspgwEspgw(..)
        )
    }
}

impl std::str::FromStr for DutKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let fam = |t: &str| {
            Family::ALL
                .into_iter()
                .find(|f| f.name() == t)
                .ok_or_else(|| format!("DUT {s:?}: transform family 3des, aes or gcm"))
        };
        let parts: Vec<&str> = s.split('-').collect();
        Ok(match parts.as_slice() {
            ["wire"] => DutKind::Wire,
            ["kernel"] => DutKind::Kernel,
            ["espgw", "clear"] => DutKind::EspgwClear,
            ["swan", "swan", f] => DutKind::SwanSwan(fam(f)?),
            ["espgw", "swan", f] => DutKind::EspgwSwan(fam(f)?),
            ["espgw", "espgw", f] => DutKind::EspgwEspgw(fam(f)?, 1),
            ["espgw", "espgw", f, w] => {
                let n = w
                    .strip_suffix('w')
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| format!("DUT {s:?}: workers as `2w`"))?;
                DutKind::EspgwEspgw(fam(f)?, n)
            }
            _ => {
                return Err(format!(
                    "unknown DUT {s:?} (wire, kernel, espgw-clear, swan-swan-F, espgw-swan-F, espgw-espgw-F[-Nw]; F = 3des|aes|gcm)"
                ))
            }
        })
    }
}

/// How DUTs are built in this run.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// espgw-control / espgw-dataplane / espgw; overridable to compare two builds.
    pub bins: Option<EspgwBins>,
    /// `tc netem loss P%` on R1's out0 (a deliberately lossy DUT).
    pub netem_loss: Option<f64>,
    /// Generator threads (TX queues on hostA).
    pub gen_threads: u32,
}

/// Where to find the espgw binaries: flags first, then `ESPGW_BIN_DIR` or the directory
/// of this program (target/debug after `cargo build`).
pub fn locate_bins(
    dataplane: Option<PathBuf>,
    control: Option<PathBuf>,
) -> Result<EspgwBins, String> {
    let dir = EspgwBins::default_dir();
    let b = EspgwBins {
        control: control.unwrap_or_else(|| dir.join("espgw-control")),
        cli: dir.join("espgw"),
        dataplane: dataplane.unwrap_or_else(|| dir.join("espgw-dataplane")),
    };
    for p in [&b.control, &b.dataplane] {
        if !p.exists() {
            return Err(format!(
                "{} not found: cargo build -p espgw-control -p espgw-dataplane, or --espgw-dataplane/--espgw-control",
                p.display()
            ));
        }
    }
    Ok(b)
}

/// A counter of the DUT's own, read around each trial.
pub enum Counter {
    None,
    /// `Ip: ForwDatagrams` of a namespace's kernel.
    Forwarded {
        ns: String,
    },
    /// Sum over workers of a counter in an espgw-dataplane `--stats` file (written every
    /// 200 ms: a read waits for a write newer than the call).
    EspgwStats {
        path: PathBuf,
        name: &'static str,
    },
}

impl Counter {
    pub fn label(&self) -> String {
        match self {
            Counter::None => "-".into(),
            Counter::Forwarded { ns } => format!(
                "{} kernel ForwDatagrams",
                ns.rsplit('-').next().unwrap_or("")
            ),
            Counter::EspgwStats { path, name } => format!(
                "{} espgw {name}",
                path.file_name()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.split('-').next())
                    .unwrap_or("")
            ),
        }
    }

    pub fn read(&self) -> Option<u64> {
        match self {
            Counter::None => None,
            Counter::Forwarded { ns } => {
                let snmp = netns::exec(Some(ns), &["cat", "/proc/net/snmp"]).ok()?;
                forw_datagrams(&snmp)
            }
            Counter::EspgwStats { path, name } => {
                let since = SystemTime::now();
                let deadline = Instant::now() + Duration::from_millis(600);
                loop {
                    let fresh = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t > since);
                    if fresh || Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let text = std::fs::read_to_string(path).ok()?;
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                Some(
                    v["workers"]
                        .as_array()?
                        .iter()
                        .map(|w| w[*name].as_u64().unwrap_or(0))
                        .sum(),
                )
            }
        }
    }
}

/// `ForwDatagrams` from /proc/net/snmp text.
pub fn forw_datagrams(snmp: &str) -> Option<u64> {
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let names: Vec<&str> = ip.next()?.split_whitespace().collect();
    let vals: Vec<&str> = ip.next()?.split_whitespace().collect();
    let i = names.iter().position(|n| *n == "ForwDatagrams")?;
    vals.get(i)?.parse().ok()
}

/// A DUT that is up: where to send, where to receive, its counter. Dropping it stops
/// its processes, then removes its namespaces.
pub struct Running {
    pub label: String,
    pub tx: Port,
    pub rx: Port,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub counter: Counter,
    /// Processes (routers); dropped before the lab.
    procs: Vec<Box<dyn std::any::Any>>,
    _lab: Option<Lab>,
    _pair: Option<VethPair>,
}

fn lab_err(e: espgw_lab::Error) -> String {
    e.to_string()
}

/// R1's or R2's IOS configuration for a tunnel of family `f` to the other router.
pub fn ios_config(node: Node, f: Family) -> String {
    let peer = node.peer().unwrap_or(Node::R2);
    let (encr, hash, group) = f.ios_isakmp();
    let mask = |n: &str| {
        if n.ends_with("/24") {
            "0.0.0.255"
        } else {
            "0.0.0.0"
        }
    };
    let net = |n: &'static str| n.split('/').next().unwrap_or(n);
    format!(
        "hostname {node}\n\
         crypto isakmp policy 10\n encr {encr}\n hash {hash}\n authentication pre-share\n group {group}\n\
         crypto isakmp key C!scO address {peer_out}\n\
         crypto ipsec transform-set ts {ts}\n mode tunnel\n\
         crypto map vpn 10 ipsec-isakmp\n set peer {peer_out}\n set transform-set ts\n match address 101\n\
         interface Ethernet0/0\n ip address {in_addr} 255.255.255.0\n\
         interface Ethernet1/0\n ip address {out_addr} 255.255.255.240\n crypto map vpn\n\
         access-list 101 permit ip {src} {sm} {dst} {dm}\n\
         end\n",
        peer_out = peer.outside_addr().unwrap_or_default(),
        ts = f.ios_transform(),
        in_addr = node.inside_addr(),
        out_addr = node.outside_addr().unwrap_or_default(),
        src = net(node.inside_net()),
        sm = mask(node.inside_net()),
        dst = net(peer.inside_net()),
        dm = mask(peer.inside_net()),
    )
}

/// Pings hostB from hostA until a reply comes (the tunnel is up and every neighbour is
/// resolved), at most `limit`.
fn wait_path(lab: &Lab, limit: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let once = ["ping", "-n", "-q", "-c", "1", "-W", "1", addr::HOST_B];
        if lab
            .exec(Node::HostA, &once)
            .map_err(lab_err)?
            .status
            .success()
        {
            return Ok(());
        }
    }
    Err(format!(
        "no reply from hostB through the DUT in {} s",
        limit.as_secs()
    ))
}

/// charon on `node` with family `f`'s proposals.
fn swan(lab: &Lab, node: Node, f: Family) -> Result<StrongSwan, String> {
    let (ike, esp) = f.swan();
    StrongSwan::start(lab, node, Profile::new(node).proposal(ike).esp(esp)).map_err(lab_err)
}

/// Brings `kind` up.
pub fn start(kind: DutKind, setup: &Setup, prefix: &str) -> Result<Running, String> {
    let threads = setup.gen_threads.max(1);
    if kind == DutKind::Wire {
        let pair = VethPair::new(prefix, threads)?;
        let (tx, rx) = pair.ports();
        return Ok(Running {
            label: kind.name(),
            src_mac: netns::mac(Some(&pair.a), "eth0")?,
            dst_mac: netns::mac(Some(&pair.b), "eth0")?,
            tx,
            rx,
            counter: Counter::None,
            procs: Vec::new(),
            _lab: None,
            _pair: Some(pair),
        });
    }
    let workers = match kind {
        DutKind::EspgwEspgw(_, n) => n,
        _ => 1,
    };
    let lab = Lab::up_with(
        prefix,
        LabOptions {
            queues: Some(threads.max(workers)),
            ..LabOptions::default()
        },
    )
    .map_err(lab_err)?;
    let bins = || {
        setup
            .bins
            .clone()
            .ok_or_else(|| "this DUT needs the espgw binaries".to_string())
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = |first: usize| -> Vec<usize> {
        (0..workers as usize).map(|i| (first + i) % ncpu).collect()
    };
    let mut procs: Vec<Box<dyn std::any::Any>> = Vec::new();
    let dir = lab.dir().to_path_buf();
    let counter;
    match kind {
        DutKind::Wire => unreachable!("handled above"),
        DutKind::Kernel => {
            counter = Counter::Forwarded {
                ns: lab.ns(Node::R2),
            };
        }
        DutKind::EspgwClear => {
            let b = bins()?;
            let stats = dir.join("r1-dataplane-stats.json");
            let (dp, st) = (
                b.dataplane.to_string_lossy().into_owned(),
                stats.to_string_lossy().into_owned(),
            );
            let core = (1 % ncpu).to_string();
            let mut p = lab
                .spawn(
                    Node::R1,
                    &[
                        &dp,
                        "--no-esp",
                        "--inside",
                        "in0",
                        "--outside",
                        "out0",
                        "--cores",
                        &core,
                        "--acl",
                        "permit ip 10.1.1.0/24 10.1.2.0/24",
                        "--no-inbound-check",
                        "--stats",
                        &st,
                    ],
                )
                .map_err(lab_err)?;
            let mut dead = false;
            lab.wait_for(
                "espgw-dataplane's counters",
                Duration::from_secs(20),
                || {
                    dead = !p.is_running();
                    stats.exists() || dead
                },
            )
            .map_err(lab_err)?;
            if dead {
                return Err(p.died_at_start("espgw-dataplane --no-esp", &[]).to_string());
            }
            procs.push(Box::new(p));
            counter = Counter::EspgwStats {
                path: stats,
                name: "tx_outside",
            };
        }
        DutKind::SwanSwan(f) => {
            let r2 = swan(&lab, Node::R2, f)?;
            let r1 = swan(&lab, Node::R1, f)?;
            r1.initiate().map_err(lab_err)?;
            r1.wait_established(Duration::from_secs(60))
                .map_err(lab_err)?;
            procs.push(Box::new(r1));
            procs.push(Box::new(r2));
            counter = Counter::Forwarded {
                ns: lab.ns(Node::R2),
            };
        }
        DutKind::EspgwSwan(f) => {
            let r2 = swan(&lab, Node::R2, f)?;
            let opts = EspgwOptions {
                debug: false,
                cores: cores(1),
                ..EspgwOptions::default()
            };
            let r1 = EspgwRouter::start(&lab, Node::R1, &ios_config(Node::R1, f), &bins()?, &opts)
                .map_err(lab_err)?;
            let stats = r1.stats.clone();
            procs.push(Box::new(r1));
            procs.push(Box::new(r2));
            counter = Counter::EspgwStats {
                path: stats,
                name: "esp_encap",
            };
        }
        DutKind::EspgwEspgw(f, _) => {
            let b = bins()?;
            let o2 = EspgwOptions {
                debug: false,
                cores: cores(0),
                ..EspgwOptions::default()
            };
            let r2 = EspgwRouter::start(&lab, Node::R2, &ios_config(Node::R2, f), &b, &o2)
                .map_err(lab_err)?;
            let o1 = EspgwOptions {
                debug: false,
                cores: cores(1),
                ..EspgwOptions::default()
            };
            let r1 = EspgwRouter::start(&lab, Node::R1, &ios_config(Node::R1, f), &b, &o1)
                .map_err(lab_err)?;
            let stats = r2.stats.clone();
            procs.push(Box::new(r1));
            procs.push(Box::new(r2));
            counter = Counter::EspgwStats {
                path: stats,
                name: "tx_inside",
            };
        }
    }
    let mut loss_how = "netem";
    if let Some(p) = setup.netem_loss {
        loss_how = add_loss(&lab, p)?;
    }
    wait_path(&lab, Duration::from_secs(45))?;
    let label = match setup.netem_loss {
        Some(p) => format!("{}+{loss_how}-loss-{p}%", kind.name()),
        None => kind.name(),
    };
    Ok(Running {
        label,
        tx: Port {
            netns: Some(lab.ns(Node::HostA)),
            ifname: "eth0".into(),
        },
        rx: Port {
            netns: Some(lab.ns(Node::HostB)),
            ifname: "eth0".into(),
        },
        src_mac: netns::mac(Some(&lab.ns(Node::HostA)), "eth0")?,
        dst_mac: netns::mac(Some(&lab.ns(Node::R1)), "in0")?,
        counter,
        procs,
        _lab: Some(lab),
        _pair: None,
    })
}

/// Makes R1 drop `pct` % of what it forwards: `tc netem loss` on out0 where the kernel
/// has netem, else (this lab's kernel has no sch_netem) an nftables rule in R1's forward
/// hook that drops one packet in 100/pct at random (`numgen random`). Returns which.
fn add_loss(lab: &Lab, pct: f64) -> Result<&'static str, String> {
    let p = format!("{pct}%");
    let netem = lab
        .exec(
            Node::R1,
            &[
                "tc", "qdisc", "add", "dev", "out0", "root", "netem", "loss", &p,
            ],
        )
        .map_err(lab_err)?;
    if netem.status.success() {
        return Ok("netem");
    }
    let why = String::from_utf8_lossy(&netem.stderr).trim().to_string();
    if !(0.0001..=50.0).contains(&pct) {
        return Err(format!("--netem-loss {pct}: between 0.0001 and 50"));
    }
    let one_in = (100.0 / pct).round() as u64;
    let script = format!(
        "table ip espgw_perf_loss {{\n chain forward_loss {{\n  type filter hook forward priority 0; policy accept;\n  numgen random mod {one_in} == 0 counter drop\n }}\n}}\n"
    );
    let path = lab.dir().join("loss.nft");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    lab.run(Node::R1, &["nft", "-f", &path.to_string_lossy()])
        .map_err(|e| {
            format!("no netem ({why}), and nft failed too (apt-get install nftables): {e}")
        })?;
    Ok("nft")
}

impl Drop for Running {
    fn drop(&mut self) {
        // Routers first (espgw detaches its XDP programs, charon exits), then the lab.
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dut_names_round_trip() {
        for k in DutKind::default_set() {
            assert_eq!(k.name().parse::<DutKind>(), Ok(k));
        }
        assert_eq!(
            "espgw-espgw-gcm-4w".parse(),
            Ok(DutKind::EspgwEspgw(Family::Gcm, 4))
        );
        assert!("espgw-espgw-des".parse::<DutKind>().is_err());
        assert!("bridge".parse::<DutKind>().is_err());
    }

    #[test]
    fn forw_datagrams_parses_proc_net_snmp() {
        let t = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams\nIp: 1 64 300 0 0 123\nIcmp: InMsgs\nIcmp: 0\n";
        assert_eq!(forw_datagrams(t), Some(123));
        assert_eq!(forw_datagrams("Icmp: x\n"), None);
    }

    #[test]
    fn configs_mirror_each_other() {
        let r1 = ios_config(Node::R1, Family::Gcm);
        assert!(r1.contains("set peer 172.16.172.20"), "{r1}");
        assert!(
            r1.contains("access-list 101 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255"),
            "{r1}"
        );
        assert!(r1.contains("transform-set ts esp-gcm 128"), "{r1}");
        let r2 = ios_config(Node::R2, Family::Tdes);
        assert!(
            r2.contains("ip address 172.16.172.20 255.255.255.240"),
            "{r2}"
        );
        assert!(r2.contains(" encr 3des\n hash md5"), "{r2}");
    }
}
