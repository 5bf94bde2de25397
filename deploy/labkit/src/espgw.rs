//! espgw as a lab router: `espgw-control` (IOS configuration, IKEv1, key log) and
//! `espgw-dataplane` (XDP classifiers + AF_XDP workers on in0/out0) started in one router's
//! namespace, wired together the product's way: both read the same IOS configuration
//! (`--config`, `--interface-map`: the dataplane takes its interfaces and crypto ACLs from
//! it), control writes the shared-memory SA database (`--sadb`) that the dataplane reads,
//! and the dataplane posts `sa_request` events back through the same region.
//!
//! Used by the demo (`espgw-lab demo`) and by the end-to-end tests; nothing here is
//! test-only. Processes are tracked by the [`Lab`] (killed by PID on drop, also on panic).

mod faults;
pub use faults::Daemon;

use crate::judge::{parse_keylog, EspSaKeys, Ikev1Keys};
use crate::lab::{Lab, LabProcess, Node};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the three espgw programs are.
#[derive(Clone, Debug)]
pub struct EspgwBins {
    /// `espgw-control`, the IKEv1 daemon.
    pub control: PathBuf,
    /// `espgw`, the operator CLI.
    pub cli: PathBuf,
    /// `espgw-dataplane`.
    pub dataplane: PathBuf,
}

impl EspgwBins {
    /// The programs in `dir` (e.g. `target/debug`); an error names the missing one.
    pub fn in_dir(dir: &Path) -> Result<EspgwBins> {
        let b = EspgwBins {
            control: dir.join("espgw-control"),
            cli: dir.join("espgw"),
            dataplane: dir.join("espgw-dataplane"),
        };
        for p in [&b.control, &b.cli, &b.dataplane] {
            if !p.exists() {
                return Err(Error::Invalid(format!(
                    "{} not found (cargo build -p espgw-control -p espgw-dataplane)",
                    p.display()
                )));
            }
        }
        Ok(b)
    }

    /// `ESPGW_BIN_DIR` if set, else the directory of the running program.
    pub fn locate() -> Result<EspgwBins> {
        EspgwBins::in_dir(&EspgwBins::default_dir())
    }

    /// Where [`EspgwBins::locate`] looks: `ESPGW_BIN_DIR` if set, else the directory of
    /// the running program.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("ESPGW_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_default(),
        }
    }
}

/// How to start one espgw router.
#[derive(Clone, Debug)]
pub struct EspgwOptions {
    /// IOS interface names → Linux names.
    pub interface_map: String,
    /// `debug crypto isakmp` and `debug crypto ipsec` from the start.
    pub debug: bool,
    /// Cores for the dataplane's workers.
    pub cores: Vec<usize>,
    /// More espgw-control arguments (`--key-store DIR`, `--aggressive`).
    pub control_args: Vec<String>,
}

impl Default for EspgwOptions {
    fn default() -> Self {
        EspgwOptions {
            interface_map: "Ethernet0/0=in0,Ethernet1/0=out0".into(),
            debug: true,
            cores: vec![0],
            control_args: Vec::new(),
        }
    }
}

/// espgw-control + espgw-dataplane running in one router of a [`Lab`].
pub struct EspgwRouter {
    node: Node,
    cli: PathBuf,
    /// The control socket the `espgw` CLI talks to.
    pub socket: PathBuf,
    /// The key log (tshark record syntax).
    pub keylog: PathBuf,
    /// The dataplane's JSON counters (rewritten every 200 ms).
    pub stats: PathBuf,
    dataplane: Option<LabProcess>,
    control: Option<LabProcess>,
    /// The command lines the two processes were started with (for restarts).
    control_args: Vec<String>,
    dataplane_args: Vec<String>,
}

impl EspgwRouter {
    /// Writes `config` (IOS text) into the lab directory and starts espgw-control, waits
    /// for its socket, then espgw-dataplane (inside `in0`, outside `out0`), and waits for
    /// its first counters (classifiers attached, sockets bound).
    pub fn start(
        lab: &Lab,
        node: Node,
        config: &str,
        bins: &EspgwBins,
        opts: &EspgwOptions,
    ) -> Result<EspgwRouter> {
        let n = node.name().to_ascii_lowercase();
        let dir = lab.dir();
        let file = |what: &str| dir.join(format!("{n}-{what}"));
        let (conf, socket, keylog, sadb, stats) = (
            file("espgw.conf"),
            file("espgw.sock"),
            file("keylog.txt"),
            file("sadb"),
            file("dataplane-stats.json"),
        );
        std::fs::write(&conf, config)
            .map_err(|e| Error::io(format!("writing {}", conf.display()), e))?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let (control_s, conf_s, socket_s, keylog_s, sadb_s, stats_s) = (
            s(&bins.control),
            s(&conf),
            s(&socket),
            s(&keylog),
            s(&sadb),
            s(&stats),
        );
        let mut args = vec![
            control_s.as_str(),
            "--config",
            &conf_s,
            "--socket",
            &socket_s,
            "--keylog",
            &keylog_s,
            "--interface-map",
            &opts.interface_map,
            "--sadb",
            &sadb_s,
            // Read only by the metrics endpoint (per-worker series), when one is asked for.
            "--dataplane-stats",
            &stats_s,
        ];
        if opts.debug {
            args.extend(["--debug", "isakmp,ipsec"]);
        }
        args.extend(opts.control_args.iter().map(String::as_str));
        let mut control = lab.spawn(node, &args)?;
        let mut dead = false;
        lab.wait_for(
            &format!("espgw-control's socket on {node}"),
            Duration::from_secs(20),
            || {
                dead = !control.is_running();
                socket.exists() || dead
            },
        )?;
        if dead {
            return Err(
                control.died_at_start(&format!("espgw-control on {node} exited at start"), &[])
            );
        }
        let cores = opts
            .cores
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let dp_s = s(&bins.dataplane);
        let dp_args = [
            dp_s.as_str(),
            "--config",
            &conf_s,
            "--interface-map",
            &opts.interface_map,
            "--cores",
            &cores,
            "--sadb",
            &sadb_s,
            "--stats",
            &stats_s,
        ];
        let mut dataplane = lab.spawn(node, &dp_args)?;
        lab.wait_for(
            &format!("espgw-dataplane's counters on {node}"),
            Duration::from_secs(20),
            || {
                dead = !dataplane.is_running();
                stats.exists() || dead
            },
        )?;
        if dead {
            return Err(
                dataplane.died_at_start(&format!("espgw-dataplane on {node} exited at start"), &[])
            );
        }
        let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(EspgwRouter {
            node,
            cli: bins.cli.clone(),
            socket,
            keylog,
            stats,
            dataplane: Some(dataplane),
            control: Some(control),
            control_args: owned(&args),
            dataplane_args: owned(&dp_args),
        })
    }

    /// The router this runs on.
    pub fn node(&self) -> Node {
        self.node
    }

    /// `espgw --socket S WORDS…`: stdout then stderr of the operator CLI.
    pub fn cli(&self, words: &[&str]) -> Result<String> {
        let out = Command::new(&self.cli)
            .arg("--socket")
            .arg(&self.socket)
            .args(words)
            .output()
            .map_err(|e| Error::io(format!("running {}", self.cli.display()), e))?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// espgw-control's output so far (debug lines included).
    pub fn control_log(&self) -> String {
        self.control.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// espgw-dataplane's output so far.
    pub fn dataplane_log(&self) -> String {
        self.dataplane.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// PIDs of espgw-control and espgw-dataplane (to check that nothing outlives them).
    pub fn pids(&self) -> Vec<u32> {
        [&self.control, &self.dataplane]
            .into_iter()
            .flatten()
            .map(|p| p.pid())
            .collect()
    }

    /// Both processes still running?
    pub fn is_running(&mut self) -> bool {
        let c = self.control.as_mut().is_some_and(|p| p.is_running());
        let d = self.dataplane.as_mut().is_some_and(|p| p.is_running());
        c && d
    }

    /// The keys espgw-control logged, as the tshark judge takes them.
    pub fn keys(&self) -> (Vec<EspSaKeys>, Vec<Ikev1Keys>) {
        parse_keylog(&std::fs::read_to_string(&self.keylog).unwrap_or_default())
    }

    /// The dataplane's counters (its `--stats` JSON).
    pub fn dataplane_stats(&self) -> Option<serde_json::Value> {
        let t = std::fs::read_to_string(&self.stats).ok()?;
        serde_json::from_str(&t).ok()
    }

    /// `#pkts encaps` and `#pkts decaps` summed over `show crypto ipsec sa`.
    pub fn ipsec_packet_counts(&self) -> Result<(u64, u64)> {
        Ok(packet_counts(
            &self.cli(&["show", "crypto", "ipsec", "sa"])?,
        ))
    }

    /// Stops the dataplane first (it detaches its XDP programs), then control.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.dataplane.take() {
            p.stop();
        }
        if let Some(mut p) = self.control.take() {
            p.stop();
        }
    }
}

impl Drop for EspgwRouter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sums `#pkts encaps: N` and `#pkts decaps: N` over an IOS `show crypto ipsec sa` screen.
pub fn packet_counts(show: &str) -> (u64, u64) {
    let field = |l: &str, key: &str| -> Option<u64> {
        let r = l.split(key).nth(1)?;
        r.split(|c: char| c == ',' || c.is_whitespace())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    let (mut enc, mut dec) = (0, 0);
    for l in show.lines() {
        if let Some(n) = field(l, "#pkts encaps:") {
            enc += n;
        }
        if let Some(n) = field(l, "#pkts decaps:") {
            dec += n;
        }
    }
    (enc, dec)
}

/// An observable R1–R2 cable: AF_XDP frames an espgw router sends, and the frames its XDP
/// program takes, never pass the kernel's packet taps in that router, so `tcpdump` on
/// `out0` of an espgw router sees neither direction of its ESP. `Wire::insert` replaces
/// the direct R1–R2 veth by two veths joined by a bridge in a third namespace,
/// `PREFIX-wire`, where a capture on port `w1` sees every frame, as a tap on a real cable
/// would. Addresses and routes of R1/R2 are rebuilt as the lab made them. Dropping the
/// `Wire` kills its processes and deletes the namespace (also on panic).
///
/// [`Wire::insert_impaired`] joins the two ports with the `espgw-impair` relay
/// ([`crate::impair`]: loss, reordering, delay, jitter) instead of the bridge; the capture
/// on `w1` then sees R1's frames as R1 sent them and R2's as they reach R1.
pub struct Wire {
    ns: String,
    dir: PathBuf,
    pids: Vec<u32>,
    relay: Option<std::process::Child>,
    stats: Option<PathBuf>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| Error::io("running ip", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Wire {
    /// The wire namespace's name for a lab prefix.
    pub fn ns_name(prefix: &str) -> String {
        format!("{prefix}-wire")
    }

    /// Rewires R1 `out0` — bridge — R2 `out0`. Call before any XDP program is attached.
    pub fn insert(lab: &Lab) -> Result<Wire> {
        Wire::rewire(lab, true)
    }

    /// Rewires R1 `out0` — `espgw-impair` (the program at `relay`) — R2 `out0`, and
    /// returns once the relay forwards both ways (R1 and R2 have each sent it a frame: an
    /// ARP request of a ping between them). Call before any XDP program is attached.
    pub fn insert_impaired(
        lab: &Lab,
        imp: &crate::impair::Impairment,
        relay: &Path,
    ) -> Result<Wire> {
        use crate::lab::addr;
        let mut wire = Wire::rewire(lab, false)?;
        let stats = wire.dir.join("impair-stats.json");
        let log = wire.dir.join("impair.log");
        let f = std::fs::File::create(&log).map_err(|e| Error::io("impair log", e))?;
        let f2 = f.try_clone().map_err(|e| Error::io("dup", e))?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &wire.ns])
            .arg(relay)
            .args(["--a", "w1", "--b", "w2", "--stats"])
            .arg(&stats)
            .args(imp.args())
            .stdin(std::process::Stdio::null())
            .stdout(f)
            .stderr(f2);
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        let child = c
            .spawn()
            .map_err(|e| Error::io("spawning espgw-impair", e))?;
        wire.pids.push(child.id());
        wire.relay = Some(child);
        wire.stats = Some(stats);
        let t0 = std::time::Instant::now();
        let mut turn = 0usize;
        while !wire.impair_stats().is_some_and(|s| s.ready) {
            let exited = wire
                .relay
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || t0.elapsed() > Duration::from_secs(20) {
                return Err(Error::Invalid(format!(
                    "espgw-impair did not get ready:\n{}",
                    crate::lab::log_tail(&log, crate::lab::LOG_TAIL_LINES)
                )));
            }
            // A ping makes the router send an ARP request (or the echo) out of its port.
            let (from, to) = [(Node::R1, addr::R2_OUT), (Node::R2, addr::R1_OUT)][turn % 2];
            let _ = lab.exec_timeout(
                from,
                &["ping", "-n", "-q", "-c", "1", "-W", "1", to],
                Duration::from_secs(5),
            );
            turn += 1;
        }
        Ok(wire)
    }

    /// The relay's counters now (rewritten every 100 ms); `None` without a relay or
    /// before its first report.
    pub fn impair_stats(&self) -> Option<crate::impair::ImpairStats> {
        let text = std::fs::read_to_string(self.stats.as_ref()?).ok()?;
        crate::impair::ImpairStats::parse(&text).ok()
    }

    /// Frames the kernel dropped because the relay's sockets were full (the `d` of their
    /// `ss -0 -m` socket memory), a loss the relay's own counters cannot see; `None`
    /// without a relay or if `ss` fails.
    pub fn relay_socket_drops(&self) -> Option<u64> {
        self.relay.as_ref()?;
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "ss", "-0", "-a", "-m", "-p", "-n",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| socket_drops(&String::from_utf8_lossy(&out.stdout), "\"espgw-impair\""))
    }

    fn rewire(lab: &Lab, bridge: bool) -> Result<Wire> {
        use crate::lab::addr;
        let ns = Wire::ns_name(lab.prefix());
        ip(&["netns", "add", &ns])?;
        let wire = Wire {
            ns: ns.clone(),
            dir: lab.dir().to_path_buf(),
            pids: Vec::new(),
            relay: None,
            stats: None,
        };
        if !bridge {
            // The ports carry only the relay's frames: no IPv6 chatter of their own.
            let st = Command::new("ip")
                .args(["netns", "exec", &ns, "sysctl", "-qw"])
                .args([
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ])
                .status()
                .map_err(|e| Error::io("sysctl in the wire namespace", e))?;
            if !st.success() {
                return Err(Error::Invalid(format!("sysctl in {ns}: {st}")));
            }
        }
        let q = lab.options().queues.map(|q| q.to_string());
        let mut qargs: Vec<&str> = Vec::new();
        if let Some(q) = &q {
            qargs = vec!["numtxqueues", q, "numrxqueues", q];
        }
        let (r1, r2) = (lab.ns(Node::R1), lab.ns(Node::R2));
        ip(&["-n", &r1, "link", "del", "out0"])?;
        if bridge {
            ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"])?;
        }
        for (rns, port) in [(&r1, "w1"), (&r2, "w2")] {
            let mut a = vec!["-n", rns.as_str(), "link", "add", "out0"];
            a.extend(&qargs);
            a.extend(["type", "veth", "peer", "name", port]);
            a.extend(&qargs);
            a.extend(["netns", ns.as_str()]);
            ip(&a)?;
            if bridge {
                ip(&["-n", &ns, "link", "set", port, "master", "br0"])?;
            } else {
                ip(&["-n", &ns, "link", "set", port, "promisc", "on"])?;
            }
            ip(&["-n", &ns, "link", "set", port, "up"])?;
        }
        if bridge {
            ip(&["-n", &ns, "link", "set", "br0", "up"])?;
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let plen = addr::OUT_PREFIX_LEN;
        for (node, me, peer) in [
            (Node::R1, addr::R1_OUT, addr::R2_OUT),
            (Node::R2, addr::R2_OUT, addr::R1_OUT),
        ] {
            let rns = lab.ns(node);
            lab.run(node, &["sysctl", "-qw", "net.ipv4.conf.out0.rp_filter=0"])?;
            ip(&[
                "-n",
                &rns,
                "addr",
                "add",
                &format!("{me}/{plen}"),
                "dev",
                "out0",
            ])?;
            ip(&["-n", &rns, "link", "set", "out0", "up"])?;
            if lab.options().tx_checksum_off {
                lab.run(node, &["ethtool", "-K", "out0", "tx", "off"])?;
            }
            ip(&[
                "-n",
                &rns,
                "route",
                "add",
                &format!("{peer}/32"),
                "dev",
                "out0",
                "scope",
                "link",
            ])?;
            ip(&[
                "-n", &rns, "route", "add", "default", "via", peer, "dev", "out0", "onlink",
            ])?;
        }
        Ok(wire)
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Starts `tcpdump` on the bridge port facing R1 (sees both directions); returns once
    /// it listens.
    pub fn capture(&mut self, name: &str) -> Result<WireCapture> {
        let pcap = self.dir.join(format!("{name}.pcap"));
        let log = self.dir.join(format!("{name}-tcpdump.log"));
        let f = std::fs::File::create(&log).map_err(|e| Error::io("tcpdump log", e))?;
        let f2 = f.try_clone().map_err(|e| Error::io("dup", e))?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .args(["tcpdump", "-n", "-Z", "root", "-s", "0"])
            .args(["-i", "w1", "-w"])
            .arg(&pcap)
            .stdin(std::process::Stdio::null())
            .stdout(f)
            .stderr(f2);
        use std::os::unix::process::CommandExt;
        c.process_group(0);
        let child = c.spawn().map_err(|e| Error::io("spawning tcpdump", e))?;
        self.pids.push(child.id());
        let mut cap = WireCapture {
            child: Some(child),
            pcap,
            log: log.clone(),
        };
        let t0 = std::time::Instant::now();
        loop {
            let l = std::fs::read_to_string(&log).unwrap_or_default();
            if l.contains("listening on") {
                return Ok(cap);
            }
            let exited = cap
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || t0.elapsed() > Duration::from_secs(20) {
                return Err(Error::Invalid(format!("tcpdump on the wire: {l}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for &p in &self.pids {
            // SIGKILL to the process groups we started (tcpdump), if still there.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{p}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
        if let Some(mut c) = self.relay.take() {
            let _ = c.wait();
        }
        let path = Path::new("/run/netns").join(&self.ns);
        let t0 = std::time::Instant::now();
        while path.exists() && t0.elapsed() < Duration::from_secs(5) {
            let out = Command::new("ip").args(["netns", "del", &self.ns]).output();
            if matches!(&out, Ok(o) if !o.status.success()) {
                let e = String::from_utf8_lossy(&out.as_ref().unwrap().stderr).into_owned();
                eprintln!("espgw-lab: ip netns del {}: {}", self.ns, e.trim());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A tcpdump on the wire.
pub struct WireCapture {
    child: Option<std::process::Child>,
    pcap: PathBuf,
    log: PathBuf,
}

impl WireCapture {
    /// [`WireCapture::stop`], and how many frames tcpdump saw but did not write
    /// ([`capture_losses`]), so counts can be compared with the wire.
    pub fn stop_counted(self) -> Result<(PathBuf, u64)> {
        let log = self.log.clone();
        let pcap = self.stop()?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok((pcap, capture_losses(&text)))
    }

    /// Stops tcpdump (SIGINT: it flushes) and returns the pcap's path (in the lab's
    /// directory).
    pub fn stop(mut self) -> Result<PathBuf> {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let t0 = std::time::Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(self.pcap.clone())
    }
}

/// The sum of the `d` (drops) fields of `ss -m` socket memory on the lines that name
/// `process`.
fn socket_drops(ss: &str, process: &str) -> u64 {
    ss.lines()
        .filter(|l| l.contains(process))
        .filter_map(|l| l.split("skmem:(").nth(1)?.split(')').next())
        .flat_map(|m| m.split(','))
        .filter_map(|f| f.strip_prefix('d')?.parse::<u64>().ok())
        .sum()
}

/// Frames tcpdump's socket saw that are not in its pcap, from its closing summary: those
/// the kernel dropped, and those still unread in its ring when it was stopped (a starved
/// tcpdump leaves some; they count in "received by filter" only).
fn capture_losses(summary: &str) -> u64 {
    let n = |suffix: &str| -> Option<u64> {
        summary
            .lines()
            .find_map(|l| l.strip_suffix(suffix))
            .and_then(|n| n.trim().parse().ok())
    };
    let dropped = n(" packets dropped by kernel").unwrap_or(0);
    match (n(" packets received by filter"), n(" packets captured")) {
        (Some(seen), Some(captured)) => dropped.max(seen.saturating_sub(captured)),
        _ => dropped,
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{capture_losses, packet_counts, socket_drops};

    #[test]
    fn socket_drops_sum_the_named_process() {
        let s = "Netid State Recv-Q\n\
                 p_raw UNCONN 0 0 *:* * users:((\"espgw-impair\",pid=1,fd=3)) skmem:(r0,rb8388608,t0,tb8388608,f0,w0,o216,bl0,d7)\n\
                 p_raw UNCONN 0 0 *:* * users:((\"espgw-impair\",pid=1,fd=4)) skmem:(r0,rb8388608,t0,tb8388608,f0,w0,o216,bl0,d5)\n\
                 p_raw UNCONN 0 0 *:* * users:((\"tcpdump\",pid=2,fd=3)) skmem:(r0,rb1,t0,tb1,f0,w0,o0,bl0,d100)\n";
        assert_eq!(socket_drops(s, "\"espgw-impair\""), 12);
        assert_eq!(socket_drops("", "x"), 0);
    }

    #[test]
    fn capture_losses_count_unread_frames_and_kernel_drops() {
        let s = "tcpdump: listening on br0\n2033 packets captured\n2109 packets received by filter\n0 packets dropped by kernel\n";
        assert_eq!(capture_losses(s), 76);
        let s = "10 packets captured\n12 packets received by filter\n5 packets dropped by kernel\n";
        assert_eq!(capture_losses(s), 5);
        assert_eq!(capture_losses("3 packets dropped by kernel\n"), 3);
        assert_eq!(capture_losses(""), 0);
    }

    #[test]
    fn counts_from_show_crypto_ipsec_sa() {
        let s = "   #pkts encaps: 12, #pkts encrypt: 12, #pkts digest: 12\n    \
                 #pkts decaps: 11, #pkts decrypt: 11, #pkts verify: 11\n\
                 #pkts encaps: 3, #pkts encrypt: 3\n #pkts decaps: 0, #pkts decrypt: 0\n";
        assert_eq!(packet_counts(s), (15, 11));
        assert_eq!(packet_counts("no SAs"), (0, 0));
    }
}
