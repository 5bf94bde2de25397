//! The slides' topology in four network namespaces.
//!
//! ```text
//! hostA 10.1.1.2/24 ─ in0 10.1.1.1/24 [R1] out0 172.16.172.10/28 ─ out0 172.16.172.20/28 [R2] in0 10.1.2.1/24 ─ hostB 10.1.2.2/24
//! ```
//!
//! The hosts' interface is `eth0`. Namespaces are named `<prefix>-hostA`, `<prefix>-R1`,
//! `<prefix>-R2`, `<prefix>-hostB`; every veth is created directly inside its namespaces,
//! so nothing appears in the root namespace. Routers forward (`ip_forward=1`,
//! `rp_filter=0`), reach each other with on-link /32 routes (the two /28s are different
//! subnets) and have a default route to each other; hosts route via their router's inside
//! address. IPv6 is disabled in every namespace (quiet captures). TX checksum offload is off on every veth (frames from a namespace's own stack
//! would otherwise carry partial checksums).
//!
//! A [`Lab`] tears itself down on drop: it kills every process it started (the whole
//! process group, SIGTERM then SIGKILL), then any process still inside its namespaces, then
//! deletes the namespaces. [`Lab::teardown`] does the same explicitly and is idempotent;
//! [`Lab::down`] does it by prefix for a lab whose owner is gone (the shell wrapper's
//! `down`, a Ctrl-C trap).

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The slides' addresses (DESIGN §5).
pub mod addr {
    /// hostA on its `eth0`.
    pub const HOST_A: &str = "10.1.1.2";
    /// R1's inside interface `in0` (hostA's gateway).
    pub const R1_IN: &str = "10.1.1.1";
    /// R1's outside interface `out0`.
    pub const R1_OUT: &str = "172.16.172.10";
    /// R2's outside interface `out0`.
    pub const R2_OUT: &str = "172.16.172.20";
    /// R2's inside interface `in0` (hostB's gateway).
    pub const R2_IN: &str = "10.1.2.1";
    /// hostB on its `eth0`.
    pub const HOST_B: &str = "10.1.2.2";
    /// The network behind R1.
    pub const NET_A: &str = "10.1.1.0/24";
    /// The network behind R2.
    pub const NET_B: &str = "10.1.2.0/24";
    /// Prefix length of the outside /28s.
    pub const OUT_PREFIX_LEN: u8 = 28;
}

/// One of the four machines of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// The host behind R1 (10.1.1.2).
    HostA,
    /// The first router (espgw in the slides' story).
    R1,
    /// The second router (the peer: strongSwan or a second espgw).
    R2,
    /// The host behind R2 (10.1.2.2).
    HostB,
}

impl Node {
    /// All nodes, in creation order.
    pub const ALL: [Node; 4] = [Node::HostA, Node::R1, Node::R2, Node::HostB];

    /// The node's name as used in namespace names: `hostA`, `R1`, `R2`, `hostB`.
    pub fn name(self) -> &'static str {
        match self {
            Node::HostA => "hostA",
            Node::R1 => "R1",
            Node::R2 => "R2",
            Node::HostB => "hostB",
        }
    }

    /// For a router, the other router.
    pub fn peer(self) -> Option<Node> {
        match self {
            Node::R1 => Some(Node::R2),
            Node::R2 => Some(Node::R1),
            _ => None,
        }
    }

    /// A router's outside address (`out0`); `None` for hosts.
    pub fn outside_addr(self) -> Option<&'static str> {
        match self {
            Node::R1 => Some(addr::R1_OUT),
            Node::R2 => Some(addr::R2_OUT),
            _ => None,
        }
    }

    /// A router's inside address (`in0`), or a host's address (`eth0`).
    pub fn inside_addr(self) -> &'static str {
        match self {
            Node::HostA => addr::HOST_A,
            Node::R1 => addr::R1_IN,
            Node::R2 => addr::R2_IN,
            Node::HostB => addr::HOST_B,
        }
    }

    /// The inside network a router protects (or a host sits on).
    pub fn inside_net(self) -> &'static str {
        match self {
            Node::HostA | Node::R1 => addr::NET_A,
            Node::R2 | Node::HostB => addr::NET_B,
        }
    }

    /// A router's addresses as its IOS configuration names them; `None` for hosts.
    pub fn site(self) -> Option<RouterSite> {
        let peer = self.peer()?;
        let net = |n: Node| n.inside_net().split('/').next().unwrap_or_default();
        Some(RouterSite {
            name: self.name(),
            outside: self.outside_addr()?,
            peer_outside: peer.outside_addr()?,
            inside: self.inside_addr(),
            local_net: net(self),
            remote_net: net(peer),
        })
    }

    /// The node's interfaces: `["in0", "out0"]` for routers, `["eth0"]` for hosts.
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Node::R1 | Node::R2 => &["in0", "out0"],
            Node::HostA | Node::HostB => &["eth0"],
        }
    }
}

/// One router's side of the slides' tunnel, in the words of its configuration: the
/// inside networks are /24s written as their network address (`10.1.1.0 0.0.0.255`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterSite {
    /// `hostname`: `R1` or `R2`.
    pub name: &'static str,
    /// Its `out0` address.
    pub outside: &'static str,
    /// The other router's `out0` address (`set peer`, `crypto isakmp key … address`).
    pub peer_outside: &'static str,
    /// Its `in0` address.
    pub inside: &'static str,
    /// The network behind it.
    pub local_net: &'static str,
    /// The network behind the other router.
    pub remote_net: &'static str,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Node {
    type Err = Error;
    fn from_str(s: &str) -> Result<Node> {
        Node::ALL
            .into_iter()
            .find(|n| n.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Invalid(format!("no lab node named {s:?}")))
    }
}

/// Knobs for [`Lab::up_with`].
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Number of TX and RX queues of every veth (`numtxqueues`/`numrxqueues`); `None`
    /// keeps the kernel default (one queue per CPU). AF_XDP tests often want `Some(1)`.
    pub queues: Option<u32>,
    /// Turn TX checksum offload off on every veth (default: true).
    pub tx_checksum_off: bool,
    /// How long a process gets between SIGTERM and SIGKILL at teardown (default 5 s;
    /// charon needs about 2 s).
    pub kill_grace: Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            queues: None,
            tx_checksum_off: true,
            kill_grace: Duration::from_secs(5),
        }
    }
}

/// Packet counts of one `ping` run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingStats {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
}

impl PingStats {
    /// Requests that got no reply.
    pub fn lost(&self) -> u32 {
        self.transmitted.saturating_sub(self.received)
    }
    /// Loss in percent (0 when nothing was sent).
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            0.0
        } else {
            100.0 * f64::from(self.lost()) / f64::from(self.transmitted)
        }
    }
}

/// Process groups started through a lab and not yet reaped.
#[derive(Debug, Default)]
struct Registry {
    groups: Mutex<BTreeSet<u32>>,
}

impl Registry {
    fn insert(&self, pgid: u32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pgid);
    }
    fn remove(&self, pgid: u32) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pgid);
    }
    fn snapshot(&self) -> Vec<u32> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// A running lab. Drop tears it down.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    opts: LabOptions,
    registry: Arc<Registry>,
    dir: Option<tempfile::TempDir>,
    created: Vec<String>,
    torn_down: bool,
    persistent: bool,
}

static PREFIX_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// A prefix unique to this process and call: the sanitised `tag` (at most 16
    /// characters), the PID and a counter, e.g. `ikemm-4711-0`.
    pub fn unique_prefix(tag: &str) -> String {
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(16)
            .collect();
        let tag = if tag.is_empty() {
            "lab".to_string()
        } else {
            tag
        };
        let n = PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{tag}-{}-{n}", std::process::id())
    }

    /// Brings up the lab with default options. `prefix`: `[A-Za-z0-9_-]`, 1–40
    /// characters; see [`Lab::unique_prefix`]. Fails if a namespace of that name exists.
    pub fn up(prefix: &str) -> Result<Lab> {
        Lab::up_with(prefix, LabOptions::default())
    }

    /// Brings up the lab. On failure everything created so far is removed.
    pub fn up_with(prefix: &str, opts: LabOptions) -> Result<Lab> {
        validate_prefix(prefix)?;
        if let Some(why) = crate::prereq::root_missing() {
            return Err(Error::Invalid(why));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("espgw-lab-{prefix}-"))
            .tempdir()
            .map_err(|e| Error::io("creating the lab's temporary directory", e))?;
        let mut lab = Lab {
            prefix: prefix.to_string(),
            opts,
            registry: Arc::default(),
            dir: Some(dir),
            created: Vec::new(),
            torn_down: false,
            persistent: false,
        };
        let existing = list_netns()?;
        for node in Node::ALL {
            let ns = lab.ns(node);
            if existing.contains(&ns) {
                lab.torn_down = true; // not ours: leave it alone
                return Err(Error::Invalid(format!("namespace {ns} already exists")));
            }
        }
        lab.build()?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        write_run_marker(&self.prefix);
        for node in Node::ALL {
            let ns = self.ns(node);
            run_checked(Command::new("ip").args(["netns", "add", &ns]))?;
            self.created.push(ns);
        }
        let q = self.opts.queues.map(|q| q.to_string());
        let qargs: Vec<&str> = match &q {
            Some(q) => vec!["numtxqueues", q, "numrxqueues", q],
            None => vec![],
        };
        // (namespace, interface) pairs joined by one veth.
        let links = [
            ((Node::R1, "in0"), (Node::HostA, "eth0")),
            ((Node::R1, "out0"), (Node::R2, "out0")),
            ((Node::R2, "in0"), (Node::HostB, "eth0")),
        ];
        for ((a, ai), (b, bi)) in links {
            let (na, nb) = (self.ns(a), self.ns(b));
            let mut args = vec!["-n", &na, "link", "add", ai];
            args.extend(&qargs);
            args.extend(["type", "veth", "peer", "name", bi]);
            args.extend(&qargs);
            args.extend(["netns", &nb]);
            run_checked(Command::new("ip").args(&args))?;
        }
        let out_len = addr::OUT_PREFIX_LEN;
        let addrs: [(Node, &str, String); 6] = [
            (Node::HostA, "eth0", format!("{}/24", addr::HOST_A)),
            (Node::R1, "in0", format!("{}/24", addr::R1_IN)),
            (Node::R1, "out0", format!("{}/{out_len}", addr::R1_OUT)),
            (Node::R2, "out0", format!("{}/{out_len}", addr::R2_OUT)),
            (Node::R2, "in0", format!("{}/24", addr::R2_IN)),
            (Node::HostB, "eth0", format!("{}/24", addr::HOST_B)),
        ];
        for node in Node::ALL {
            // IPv6 off: no router solicitations or DAD in the captures.
            self.run(
                node,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }
        for node in [Node::R1, Node::R2] {
            // Before the addresses, so every interface sees these values.
            self.run(
                node,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.in0.rp_filter=0",
                    "net.ipv4.conf.out0.rp_filter=0",
                ],
            )?;
        }
        for (node, ifname, cidr) in &addrs {
            self.ip(*node, &["addr", "add", cidr, "dev", ifname])?;
        }
        for node in Node::ALL {
            self.ip(node, &["link", "set", "lo", "up"])?;
            for ifname in node.interfaces() {
                self.ip(node, &["link", "set", ifname, "up"])?;
                if self.opts.tx_checksum_off {
                    self.run(node, &["ethtool", "-K", ifname, "tx", "off"])?;
                }
            }
        }
        for (node, peer) in [(Node::R1, Node::R2), (Node::R2, Node::R1)] {
            let peer_out = peer.outside_addr().unwrap_or_default();
            self.ip(
                node,
                &[
                    "route",
                    "add",
                    &format!("{peer_out}/32"),
                    "dev",
                    "out0",
                    "scope",
                    "link",
                ],
            )?;
            self.ip(
                node,
                &[
                    "route", "add", "default", "via", peer_out, "dev", "out0", "onlink",
                ],
            )?;
        }
        self.ip(
            Node::HostA,
            &["route", "add", "default", "via", addr::R1_IN],
        )?;
        self.ip(
            Node::HostB,
            &["route", "add", "default", "via", addr::R2_IN],
        )?;
        Ok(())
    }

    fn ip(&self, node: Node, args: &[&str]) -> Result<String> {
        let ns = self.ns(node);
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        run_checked(Command::new("ip").args(&full))
    }

    /// The lab's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace name of `node`: `<prefix>-<node>`.
    pub fn ns(&self, node: Node) -> String {
        format!("{}-{}", self.prefix, node.name())
    }

    /// The lab's private scratch directory (logs, configurations, captures). Removed at
    /// teardown, except when the thread is panicking (then it is kept and printed).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or_else(|| Path::new("/tmp"))
    }

    /// The options the lab was built with.
    pub fn options(&self) -> &LabOptions {
        &self.opts
    }

    /// A `Command` that runs `program` inside `node`'s namespace (`ip netns exec`). Add
    /// arguments, environment and stdio, then run it with [`Lab::spawn_command`] (tracked)
    /// or directly (your responsibility to reap).
    pub fn command(&self, node: Node, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns").arg("exec").arg(self.ns(node)).arg(program);
        c
    }

    /// Runs `args` in `node` and returns its output whatever the exit status; errors only
    /// if it cannot run or takes longer than 60 s (then it is killed).
    pub fn exec(&self, node: Node, args: &[&str]) -> Result<Output> {
        self.exec_timeout(node, args, Duration::from_secs(60))
    }

    /// [`Lab::exec`] with a time limit.
    pub fn exec_timeout(&self, node: Node, args: &[&str], timeout: Duration) -> Result<Output> {
        let (prog, rest) = args
            .split_first()
            .ok_or_else(|| Error::Invalid("empty command".into()))?;
        let mut c = self.command(node, prog);
        c.args(rest);
        output_timeout(c, timeout)
    }

    /// Runs `args` in `node`, requires exit status 0, returns stdout.
    pub fn run(&self, node: Node, args: &[&str]) -> Result<String> {
        let out = self.exec(node, args)?;
        check_output(&format!("[{}] {}", node, args.join(" ")), out)
    }

    /// Starts `args` in `node` as a tracked background process (its own process group,
    /// stdin from /dev/null, stdout+stderr to `<lab dir>/<program>-<n>.log`).
    pub fn spawn(&self, node: Node, args: &[&str]) -> Result<LabProcess> {
        let (prog, rest) = args
            .split_first()
            .ok_or_else(|| Error::Invalid("empty command".into()))?;
        let base = Path::new(prog)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("proc")
            .to_string();
        let n = PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = self.dir().join(format!("{base}-{node}-{n}.log"));
        let f = fs::File::create(&log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let f2 = f.try_clone().map_err(|e| Error::io("dup log file", e))?;
        let mut c = self.command(node, prog);
        c.args(rest).stdin(Stdio::null()).stdout(f).stderr(f2);
        let mut p = self.spawn_command(c, &format!("{base}@{node}"))?;
        p.log = Some(log);
        Ok(p)
    }

    /// Starts a command (typically from [`Lab::command`]) in its own process group and
    /// tracks it: the returned handle kills the group on drop, and so does the lab's
    /// teardown if the handle is still alive.
    pub fn spawn_command(&self, mut cmd: Command, label: &str) -> Result<LabProcess> {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("spawning {label}"), e))?;
        let pid = child.id();
        self.registry.insert(pid);
        Ok(LabProcess {
            child: Some(child),
            pid,
            label: label.to_string(),
            registry: Arc::clone(&self.registry),
            grace: self.opts.kill_grace,
            log: None,
        })
    }

    /// Pings `to_ip` from `from` `count` times (0.2 s apart, 2 s reply wait) and counts
    /// the replies. Loss is not an error.
    pub fn ping(&self, from: Node, to_ip: &str, count: u32) -> Result<PingStats> {
        self.ping_with(from, to_ip, count, 56)
    }

    /// [`Lab::ping`] with a payload size.
    pub fn ping_with(&self, from: Node, to_ip: &str, count: u32, size: usize) -> Result<PingStats> {
        let count_s = count.to_string();
        let size_s = size.to_string();
        let args = [
            "ping", "-n", "-q", "-c", &count_s, "-i", "0.2", "-W", "2", "-s", &size_s, to_ip,
        ];
        let timeout = Duration::from_secs(15) + Duration::from_millis(250 * u64::from(count));
        let out = self.exec_timeout(from, &args, timeout)?;
        parse_ping(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
            Error::parse(
                "ping output",
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
    }

    /// Polls `cond` every 100 ms until it returns true or `timeout` passes.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl FnMut() -> bool,
    ) -> Result<()> {
        wait_until(what, timeout, cond)
    }

    /// Keeps the lab up after this value is dropped (for `deploy/lab.sh up`); remove it
    /// later with [`Lab::down`]. Processes already started stay running.
    pub fn persist(mut self) -> String {
        self.persistent = true;
        self.prefix.clone()
    }

    /// Kills every process the lab started (TERM, then KILL after the grace period), then
    /// every process left inside its namespaces, then deletes the namespaces. Safe to call
    /// twice.
    pub fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let groups = self.registry.snapshot();
        kill_groups(&groups, self.opts.kill_grace);
        let mut first_err = None;
        remove_run_marker(&self.prefix);
        for ns in self.created.drain(..).rev() {
            if let Err(e) = remove_netns(&ns, self.opts.kill_grace) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Tears down the lab named `prefix` without a `Lab` value (after `persist`, or after
    /// its owner died): kills every process in its namespaces and deletes them. Returns
    /// the namespaces it removed; removing nothing is not an error.
    pub fn down(prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let existing = list_netns()?;
        let mut removed = Vec::new();
        for node in Node::ALL.iter().rev() {
            let ns = format!("{prefix}-{}", node.name());
            if existing.contains(&ns) {
                remove_netns(&ns, Duration::from_secs(5))?;
                removed.push(ns);
            }
        }
        remove_run_marker(prefix);
        Ok(removed)
    }

    /// Removes labs left behind by test processes that died without tearing down (killed,
    /// Ctrl-C): namespaces named by [`Lab::unique_prefix`] (`TAG-PID-N-node`) whose PID no
    /// longer runs. Returns the prefixes removed. Labs with other names are not touched.
    pub fn reap_orphans() -> Result<Vec<String>> {
        let mut prefixes = BTreeSet::new();
        for ns in list_netns()? {
            let Some((prefix, node)) = ns.rsplit_once('-') else {
                continue;
            };
            if node.parse::<Node>().is_err() {
                continue;
            }
            let mut parts = prefix.rsplitn(3, '-');
            let (Some(n), Some(pid), Some(_tag)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(_), Ok(pid)) = (n.parse::<u32>(), pid.parse::<u32>()) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                prefixes.insert(prefix.to_string());
            }
        }
        let mut removed = Vec::new();
        for p in prefixes {
            if !Lab::down(&p)?.is_empty() {
                removed.push(p);
            }
        }
        Ok(removed)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.persistent {
            return; // the scratch directory goes; the namespaces stay
        }
        if let Err(e) = self.teardown() {
            eprintln!("espgw-lab: teardown of {}: {e}", self.prefix);
        }
        if thread::panicking() {
            if let Some(d) = self.dir.take() {
                let p = d.keep();
                eprintln!(
                    "espgw-lab: kept the lab directory of {} for inspection: {}",
                    self.prefix,
                    p.display()
                );
            }
        }
    }
}

/// A process started by [`Lab::spawn`] / [`Lab::spawn_command`]. Dropping it kills its
/// process group (SIGTERM, SIGKILL after the lab's grace period) and reaps it.
#[derive(Debug)]
pub struct LabProcess {
    child: Option<Child>,
    pid: u32,
    label: String,
    registry: Arc<Registry>,
    grace: Duration,
    log: Option<PathBuf>,
}

/// How many lines of a log an error about a process that died at start carries.
pub const LOG_TAIL_LINES: usize = 20;

/// The last `n` lines of the file at `path`, each indented; says so when it is empty or
/// cannot be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Err(e) => format!("    (cannot read it: {e})"),
        Ok(b) if b.is_empty() => "    (empty)".to_string(),
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..]
                .iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

impl LabProcess {
    /// PID (also the process group ID).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The label given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where stdout/stderr go, for processes started with [`Lab::spawn`].
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The log's contents so far (empty if none).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The error for a process that exited while it was starting: `what` failed, with the
    /// exit status and the last [`LOG_TAIL_LINES`] lines of its own log (if it has one) and
    /// of each of `logs` — never an empty message.
    pub fn died_at_start(&mut self, what: &str, logs: &[&Path]) -> Error {
        let status = match self.try_wait() {
            Ok(Some(st)) => format!("exited with {st}"),
            Ok(None) => "still running but not ready".to_string(),
            Err(e) => format!("state unknown ({e})"),
        };
        let mut msg = format!("{what}: {} {status}", self.label);
        for p in self
            .log
            .iter()
            .map(PathBuf::as_path)
            .chain(logs.iter().copied())
        {
            msg.push_str(&format!(
                "\n  last lines of {}:\n{}",
                p.display(),
                log_tail(p, LOG_TAIL_LINES)
            ));
        }
        Error::Invalid(msg)
    }

    /// The underlying child (to take its pipes when started with [`Lab::spawn_command`]).
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// The exit status if it has exited (reaps it).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            None => Ok(None),
            Some(c) => c
                .try_wait()
                .map_err(|e| Error::io(format!("waiting for {}", self.label), e)),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None)) && self.child.is_some()
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (a name such as `TERM`, `INT`, `HUP`, `USR1`) to the process group.
    pub fn signal(&self, signal: &str) -> Result<()> {
        kill_group(self.pid, signal)
    }

    /// Stops the process group: SIGTERM, SIGKILL after the grace period; reaps the child
    /// and returns its exit status. Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let status = match child.try_wait() {
            Ok(Some(s)) => {
                // Leader gone; other members of the group may not be.
                kill_groups(&[self.pid], self.grace);
                Some(s)
            }
            _ => {
                kill_groups(&[self.pid], self.grace);
                child.wait().ok()
            }
        };
        self.registry.remove(self.pid);
        status
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// helpers

/// Where labs started under `ESPGW_LAB_RUN=<token>` leave a marker (file named after the
/// prefix, containing the token) while they exist, so `deploy/test.sh` can tell its own
/// leaked labs from other people's on a shared host.
pub const RUN_MARKER_DIR: &str = "/run/espgw-lab";

fn write_run_marker(prefix: &str) {
    if let Some(token) = std::env::var_os("ESPGW_LAB_RUN") {
        let _ = fs::create_dir_all(RUN_MARKER_DIR);
        let _ = fs::write(
            Path::new(RUN_MARKER_DIR).join(prefix),
            token.to_string_lossy().as_bytes(),
        );
    }
}

fn remove_run_marker(prefix: &str) {
    let _ = fs::remove_file(Path::new(RUN_MARKER_DIR).join(prefix));
}

fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 40
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "lab prefix {prefix:?}: use 1-40 characters of [A-Za-z0-9_-]"
        )))
    }
}

/// Names of the network namespaces that exist now (`ip netns list`).
pub fn list_netns() -> Result<BTreeSet<String>> {
    let out = run_checked(Command::new("ip").args(["netns", "list"]))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

fn cmd_line(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn check_output(cmd: &str, out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(Error::Command {
            cmd: cmd.to_string(),
            status: out.status.to_string(),
            stderr,
        })
    }
}

/// Runs a command (60 s limit) and requires success; returns stdout.
pub(crate) fn run_checked(c: &mut Command) -> Result<String> {
    let line = cmd_line(c);
    let mut owned = Command::new(c.get_program());
    owned.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => owned.env(k, v),
            None => owned.env_remove(k),
        };
    }
    let out = output_timeout(owned, Duration::from_secs(60))?;
    check_output(&line, out)
}

/// Runs `cmd` in its own process group with captured stdout/stderr; kills the group if
/// it runs longer than `timeout`.
pub(crate) fn output_timeout(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let line = cmd_line(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("running `{line}`"), e))?;
    let so = child.stdout.take();
    let se = child.stderr.take();
    // Pipes are drained on threads that report through a channel, so a grandchild that
    // keeps a pipe open (a daemon the command left behind) cannot hang us.
    let (tx, rx) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
    for (is_out, pipe) in [
        (true, so.map(|p| Box::new(p) as Box<dyn Read + Send>)),
        (false, se.map(|p| Box::new(p) as Box<dyn Read + Send>)),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut b);
            }
            let _ = tx.send((is_out, b));
        });
    }
    drop(tx);
    let start = Instant::now();
    let pid = child.id();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(Error::io(format!("waiting for `{line}`"), e)),
        }
        if start.elapsed() >= timeout {
            kill_groups(&[pid], Duration::from_secs(2));
            let _ = child.wait();
            return Err(Error::Timeout {
                what: format!("`{line}`"),
                secs: timeout.as_secs_f64(),
            });
        }
        thread::sleep(
            Duration::from_millis(10)
                .max(start.elapsed() / 20)
                .min(Duration::from_millis(100)),
        );
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut pending = 2;
    let mut deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = false;
    while pending > 0 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, b)) => (stdout, pending) = (b, pending - 1),
            Ok((false, b)) => (stderr, pending) = (b, pending - 1),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !killed => {
                // Something the command started still holds its output: stop it.
                kill_groups(&[pid], Duration::from_secs(2));
                killed = true;
                deadline = Instant::now() + Duration::from_secs(5);
            }
            Err(_) => break,
        }
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

pub(crate) fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: timeout.as_secs_f64(),
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a signal to a process group with kill(1) (this crate has no unsafe code).
fn kill_group(pgid: u32, signal: &str) -> Result<()> {
    if pgid <= 1 {
        return Err(Error::Invalid(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    let st = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::io("running kill", e))?;
    let _ = st; // a group that is already gone is fine
    Ok(())
}

fn kill_pid(pid: u32, signal: &str) {
    if pid > 1 {
        let _ = Command::new("kill")
            .args(["-s", signal, "--", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Live (non-zombie) members of process group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let _ppid = f.next();
        let pgrp = f.next().and_then(|s| s.parse::<u32>().ok());
        if pgrp == Some(pgid) && state != "Z" && state != "X" {
            v.push(pid);
        }
    }
    v
}

fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
    }
}

/// TERM every group, wait up to `grace` for all members to exit, KILL what remains.
fn kill_groups(groups: &[u32], grace: Duration) {
    if groups.is_empty() {
        return;
    }
    for &g in groups {
        let _ = kill_group(g, "TERM");
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if groups.iter().all(|&g| group_members(g).is_empty()) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    for &g in groups {
        let _ = kill_group(g, "KILL");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && groups.iter().any(|&g| !group_members(g).is_empty()) {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Kills whatever still runs inside namespace `ns` (all of it ours: the namespace is),
/// then deletes the namespace.
fn remove_netns(ns: &str, grace: Duration) -> Result<()> {
    let pids = |ns: &str| -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", ns])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let left: Vec<u32> = pids(ns).into_iter().filter(|&p| pid_alive(p)).collect();
    if !left.is_empty() {
        for &p in &left {
            kill_pid(p, "TERM");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && left.iter().any(|&p| pid_alive(p)) {
            thread::sleep(Duration::from_millis(50));
        }
        for &p in &left {
            if pid_alive(p) {
                kill_pid(p, "KILL");
            }
        }
    }
    if list_netns()?.contains(ns) {
        run_checked(Command::new("ip").args(["netns", "del", ns]))?;
    }
    Ok(())
}

fn parse_ping(out: &str) -> Option<PingStats> {
    // "5 packets transmitted, 5 received, 0% packet loss, time 804ms"
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut parts = line.split(',');
    let tx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let rx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    Some(PingStats {
        transmitted: tx,
        received: rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary_parses() {
        let s = "PING 10.1.2.2 (10.1.2.2) 56(84) bytes of data.\n\n--- 10.1.2.2 ping statistics ---\n5 packets transmitted, 3 received, 40% packet loss, time 804ms\n";
        assert_eq!(
            parse_ping(s),
            Some(PingStats {
                transmitted: 5,
                received: 3
            })
        );
        let s = "4 packets transmitted, 0 received, +4 errors, 100% packet loss, time 3000ms";
        assert_eq!(
            parse_ping(s),
            Some(PingStats {
                transmitted: 4,
                received: 0
            })
        );
        assert_eq!(parse_ping("garbage"), None);
    }

    #[test]
    fn router_sites_mirror_each_other() {
        let r1 = Node::R1.site().unwrap();
        let r2 = Node::R2.site().unwrap();
        assert_eq!(
            (r1.name, r1.outside, r1.inside),
            ("R1", addr::R1_OUT, addr::R1_IN)
        );
        assert_eq!((r1.local_net, r1.remote_net), ("10.1.1.0", "10.1.2.0"));
        assert_eq!((r2.peer_outside, r2.local_net), (r1.outside, r1.remote_net));
        assert_eq!(r1.peer_outside, r2.outside);
        assert!(Node::HostA.site().is_none());
    }

    #[test]
    fn prefixes_are_unique_and_valid() {
        let a = Lab::unique_prefix("my test::name");
        let b = Lab::unique_prefix("my test::name");
        assert_ne!(a, b);
        assert!(validate_prefix(&a).is_ok(), "{a}");
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("a/b").is_err());
    }

    #[test]
    fn node_names_round_trip() {
        for n in Node::ALL {
            assert_eq!(n.name().parse::<Node>().unwrap(), n);
        }
        assert!("R3".parse::<Node>().is_err());
    }
}
