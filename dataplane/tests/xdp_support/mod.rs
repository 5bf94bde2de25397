//! Test support for the XDP dataplane tests: a four-namespace topology
//! (hostA – R1 – R2 – hostB, the slides' addresses) with unique names, and
//! guards that remove namespaces and kill processes by PID, also on panic.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output whatever the status.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn")
}

/// The topology; namespaces `<prefix>-hA`, `-r1`, `-r2`, `-hB`, and with
/// [`Topology::with_wire`] a `-wire` namespace whose bridge joins R1's and R2's
/// out0: frames that AF_XDP sends or XDP redirects never reach packet
/// sockets on the routers' own interfaces, so the R1–R2 link is observed
/// on the bridge port `w1` in the middle, as a tap on a real cable would.
pub struct Topology {
    pub prefix: String,
    pub dir: PathBuf,
    wire: bool,
}

impl Topology {
    /// Builds it. `queues` RX/TX queues on the routers' veths.
    pub fn new(tag: &str, queues: u32) -> Self {
        Self::build(tag, queues, false)
    }

    /// Like [`Topology::new`], with the observable wire between R1 and R2.
    pub fn with_wire(tag: &str, queues: u32) -> Self {
        Self::build(tag, queues, true)
    }

    fn build(tag: &str, queues: u32, wire: bool) -> Self {
        let prefix = format!("xdp{}{}", tag, std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("espgw-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = Topology { prefix, dir, wire };
        let q = queues.to_string();
        let p = &t.prefix;
        for n in t.names() {
            sh(&["ip", "netns", "add", &t.ns(n)]);
            sh(&["ip", "-n", &t.ns(n), "link", "set", "lo", "up"]);
        }
        let (a, b, c, d, e, f) = (
            format!("{p}a"),
            format!("{p}b"),
            format!("{p}c"),
            format!("{p}d"),
            format!("{p}e"),
            format!("{p}f"),
        );
        let qargs = ["numtxqueues", &q, "numrxqueues", &q];
        let mut cmd = vec!["ip", "link", "add", &a];
        cmd.extend_from_slice(&qargs);
        cmd.extend_from_slice(&["type", "veth", "peer", "name", &b]);
        cmd.extend_from_slice(&qargs);
        sh(&cmd);
        let (w1, w2) = (format!("{p}w1"), format!("{p}w2"));
        if wire {
            for (r, w) in [(&c, &w1), (&d, &w2)] {
                let mut cmd = vec!["ip", "link", "add", r.as_str()];
                cmd.extend_from_slice(&qargs);
                cmd.extend_from_slice(&["type", "veth", "peer", "name", w.as_str()]);
                cmd.extend_from_slice(&qargs);
                sh(&cmd);
            }
            let wns = t.ns("wire");
            sh(&["ip", "-n", &wns, "link", "add", "br0", "type", "bridge"]);
            for (w, name) in [(&w1, "w1"), (&w2, "w2")] {
                sh(&["ip", "link", "set", w, "netns", &wns, "name", name]);
                sh(&["ip", "-n", &wns, "link", "set", name, "master", "br0"]);
                sh(&["ip", "-n", &wns, "link", "set", name, "up"]);
            }
            sh(&["ip", "-n", &wns, "link", "set", "br0", "up"]);
        } else {
            let mut cmd = vec!["ip", "link", "add", &c];
            cmd.extend_from_slice(&qargs);
            cmd.extend_from_slice(&["type", "veth", "peer", "name", &d]);
            cmd.extend_from_slice(&qargs);
            sh(&cmd);
        }
        let mut cmd = vec!["ip", "link", "add", &e];
        cmd.extend_from_slice(&qargs);
        cmd.extend_from_slice(&["type", "veth", "peer", "name", &f]);
        cmd.extend_from_slice(&qargs);
        sh(&cmd);
        for (dev, ns, name) in [
            (&a, "hA", "eth0"),
            (&b, "r1", "in0"),
            (&c, "r1", "out0"),
            (&d, "r2", "out0"),
            (&e, "r2", "in0"),
            (&f, "hB", "eth0"),
        ] {
            sh(&["ip", "link", "set", dev, "netns", &t.ns(ns), "name", name]);
        }
        t.ip("hA", &["addr", "add", "10.1.1.2/24", "dev", "eth0"]);
        t.ip("r1", &["addr", "add", "10.1.1.1/24", "dev", "in0"]);
        t.ip("r1", &["addr", "add", "172.16.172.10/28", "dev", "out0"]);
        t.ip("r2", &["addr", "add", "172.16.172.20/28", "dev", "out0"]);
        t.ip("r2", &["addr", "add", "10.1.2.1/24", "dev", "in0"]);
        t.ip("hB", &["addr", "add", "10.1.2.2/24", "dev", "eth0"]);
        for (ns, ifs) in [
            ("hA", &["eth0"][..]),
            ("r1", &["in0", "out0"]),
            ("r2", &["in0", "out0"]),
            ("hB", &["eth0"]),
        ] {
            for i in ifs {
                t.ip(ns, &["link", "set", i, "up"]);
            }
        }
        for r in ["r1", "r2"] {
            t.exec(
                r,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                ],
            );
        }
        t.ip("hA", &["route", "add", "default", "via", "10.1.1.1"]);
        t.ip("hB", &["route", "add", "default", "via", "10.1.2.1"]);
        // .10/28 and .20/28 are different subnets: on-link host routes.
        t.ip("r1", &["route", "add", "172.16.172.20/32", "dev", "out0"]);
        t.ip("r2", &["route", "add", "172.16.172.10/32", "dev", "out0"]);
        t.ip(
            "r1",
            &[
                "route",
                "add",
                "10.1.2.0/24",
                "via",
                "172.16.172.20",
                "dev",
                "out0",
                "onlink",
            ],
        );
        t.ip(
            "r2",
            &[
                "route",
                "add",
                "10.1.1.0/24",
                "via",
                "172.16.172.10",
                "dev",
                "out0",
                "onlink",
            ],
        );
        for h in ["hA", "hB"] {
            t.exec(h, &["ethtool", "-K", "eth0", "tx", "off"]);
        }
        t
    }

    fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["hA", "r1", "r2", "hB"];
        if self.wire {
            v.push("wire");
        }
        v
    }

    pub fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let nsn = self.ns(ns);
        let mut v = vec!["ip", "-n", nsn.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    pub fn exec(&self, ns: &str, args: &[&str]) -> String {
        let nsn = self.ns(ns);
        let mut v = vec!["ip", "netns", "exec", nsn.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    pub fn exec_output(&self, ns: &str, args: &[&str]) -> Output {
        let nsn = self.ns(ns);
        let mut v = vec!["ip", "netns", "exec", nsn.as_str()];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Starts a process in a namespace; killed by PID when the guard drops.
    pub fn spawn(&self, ns: &str, args: &[&str], log: &str) -> Proc {
        let log = self.dir.join(log);
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .expect("spawn");
        Proc {
            child: Some(child),
            log,
        }
    }

    /// Whether any interface of the namespace has an XDP program attached.
    pub fn xdp_attached(&self, ns: &str) -> bool {
        let out = run(&["ip", "-n", &self.ns(ns), "-d", "link", "show"]);
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for n in self.names() {
            let _ = run(&["ip", "netns", "del", &self.ns(n)]);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A process started by a test.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `sig` and waits up to `timeout` for the exit; true if it exited.
    pub fn signal_and_wait(&mut self, sig: &str, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let _ = run(&["kill", sig, &child.id().to_string()]);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `f` returns Some, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the dataplane's stats JSON.
pub fn stats(path: &std::path::Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// XDP counter `name` of `side` ("inside"/"outside").
pub fn xdp_packets(s: &serde_json::Value, side: &str, name: &str) -> u64 {
    s[side]["xdp"][name]["packets"].as_u64().unwrap_or(0)
}

/// Worker counter `name` summed over workers.
pub fn worker_sum(s: &serde_json::Value, name: &str) -> u64 {
    s["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    w[name]
                        .as_u64()
                        .unwrap_or_else(|| panic!("no counter {name:?} in the stats: {w}"))
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The workers' drops for the reasons the ESP core gives (the ESP path's own verdicts).
pub fn esp_drops(s: &serde_json::Value) -> u64 {
    espgw_dataplane::sadb::DropReason::ESP
        .iter()
        .map(|r| worker_sum(s, &r.stats_key()))
        .sum()
}

/// What IOS would count as send errors on an outbound SA: frames that waited for the
/// next hop in vain.
pub fn send_errors(c: &espgw_dataplane::sadb::SaCounterValues) -> u64 {
    use espgw_dataplane::sadb::DropReason;
    c.drop_count(DropReason::NoNeighbour) + c.drop_count(DropReason::NeighbourQueueFull)
}

/// Echo replies counted in `ping`'s output.
pub fn received(out: &std::process::Output) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("bytes from"))
        .count()
}

/// R1's IOS configuration for the classifier tests: crypto map `vpn` on
/// Ethernet1/0 (out0) with entries 10 (`match address 110`) and 20 (`match
/// address 120`), both towards R2; Ethernet0/0 (in0) inside; `acls` are the
/// access-list lines.
pub fn r1_two_entry_config(acls: &str) -> String {
    format!(
        "hostname R1\n\
         crypto isakmp policy 10\n encr aes\n authentication pre-share\n\
         crypto isakmp key k3y address 172.16.172.20\n\
         crypto ipsec transform-set t esp-aes esp-sha-hmac\n\
         crypto map vpn 10 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set t\n match address 110\n\
         crypto map vpn 20 ipsec-isakmp\n set peer 172.16.172.20\n set transform-set t\n match address 120\n\
         interface Ethernet1/0\n ip address 172.16.172.10 255.255.255.240\n crypto map vpn\n\
         interface Ethernet0/0\n ip address 10.1.1.1 255.255.255.0\n\
         {acls}\n\
         end\n"
    )
}

/// espgw-dataplane on R1 from the IOS configuration `text` (written to
/// `r1.conf` in the lab directory; `--interface-map Ethernet0/0=in0,Ethernet1/0=out0`)
/// with `extra` flags, once its stats file exists. Returns it, the
/// configuration's path (edit it to reload) and the stats path.
pub fn dataplane_from_config(t: &Topology, text: &str, extra: &[&str]) -> (Proc, PathBuf, PathBuf) {
    let stats_path = t.dir.join("stats.json");
    let conf = t.dir.join("r1.conf");
    std::fs::write(&conf, text).unwrap();
    let (conf_s, stats_s) = (conf.to_string_lossy(), stats_path.to_string_lossy());
    let mut args = vec![env!("CARGO_BIN_EXE_espgw-dataplane")];
    args.extend_from_slice(extra);
    args.extend([
        "--config",
        &conf_s,
        "--interface-map",
        "Ethernet0/0=in0,Ethernet1/0=out0",
        "--stats",
        &stats_s,
    ]);
    let dp = t.spawn("r1", &args, "dataplane.log");
    wait_for("dataplane stats", Duration::from_secs(10), || {
        stats(&stats_path)
    });
    (dp, conf, stats_path)
}

/// Rewrites R1's configuration and waits until the dataplane has reloaded
/// it into `rules` classifier rules.
pub fn reload_config(dp: &Proc, conf: &std::path::Path, text: &str, rules: usize) {
    std::fs::write(conf, text).unwrap();
    let want = format!("crypto ACL reloaded, {rules} rule(s)");
    wait_for("crypto ACL reload", Duration::from_secs(5), || {
        dp.log_text().contains(&want).then_some(())
    });
}

/// espgw-dataplane on R1 as a clear forwarder (`--no-esp`, in0 inside, out0
/// outside) with `extra` flags (rules, cores, `--no-inbound-check`…), logging
/// to `log`; returns it once it has written a fresh stats file, and that path.
pub fn plain_dataplane(t: &Topology, extra: &[&str], log: &str) -> (Proc, PathBuf) {
    let stats_path = t.dir.join("stats.json");
    let _ = std::fs::remove_file(&stats_path);
    let stats_s = stats_path.to_string_lossy();
    let mut args = vec![
        env!("CARGO_BIN_EXE_espgw-dataplane"),
        "--no-esp",
        "--inside",
        "in0",
        "--outside",
        "out0",
    ];
    args.extend_from_slice(extra);
    args.extend(["--stats", &stats_s]);
    let dp = t.spawn("r1", &args, log);
    wait_for("dataplane stats", Duration::from_secs(10), || {
        stats(&stats_path)
    });
    (dp, stats_path)
}

/// Packets `dev` in namespace `ns` has received (its `ip -s link` counter).
pub fn rx_packets(t: &Topology, ns: &str, dev: &str) -> u64 {
    let out = t.ip(ns, &["-s", "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

/// The MAC address of `dev` in namespace `ns`.
pub fn mac(t: &Topology, ns: &str, dev: &str) -> String {
    let out = t.ip(ns, &["-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// Sends `size`-byte UDP frames 10.1.1.2 → 10.1.2.2 from hostA at full speed with
/// trafgen for `secs` on CPU 0; returns the frames per second that `dev` in namespace
/// `ns` received, and that hostB received.
pub fn trafgen_blast(t: &Topology, ns: &str, dev: &str, size: usize, secs: u64) -> (f64, f64) {
    let da = mac(t, "r1", "in0");
    let sa = mac(t, "hA", "eth0");
    let fill = size.saturating_sub(14 + 20 + 8);
    let conf = t.dir.join(format!("udp{size}.cfg"));
    std::fs::write(
        &conf,
        format!(
            "{{ eth(da={da}, sa={sa}, type=0x0800), ipv4(saddr=10.1.1.2, daddr=10.1.2.2, ttl=64, proto=17), \
             udp(sport=40000, dport=40001), fill(0x41, {fill}) }}\n"
        ),
    )
    .unwrap();
    // Warm the next hop with one ping first.
    let _ = t.exec_output(
        "hA",
        &["ping", "-c", "2", "-i", "0.1", "-W", "1", "10.1.2.2"],
    );
    let at_0 = rx_packets(t, ns, dev);
    let hb_0 = rx_packets(t, "hB", "eth0");
    let _ = t.exec_output(
        "hA",
        &[
            "timeout",
            &secs.to_string(),
            "taskset",
            "-c",
            "0",
            "trafgen",
            "--dev",
            "eth0",
            "--conf",
            conf.to_str().unwrap(),
            "-P",
            "1",
            "-q",
            "-C",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let at = rx_packets(t, ns, dev) - at_0;
    let hb = rx_packets(t, "hB", "eth0") - hb_0;
    (at as f64 / secs as f64, hb as f64 / secs as f64)
}
