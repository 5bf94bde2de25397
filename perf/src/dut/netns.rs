//! Small `ip`-command helpers for the benchmark topologies: interface counters and MAC
//! addresses read inside a namespace, and a two-namespace veth pair (the plain wire).

use std::process::Command;

/// Runs `ip -n NS ARGS…` (or plain `ip` without a namespace); stdout, or the error text.
pub fn ip(ns: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    let out = c.args(args).output().map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}{}: {}",
            ns.map(|n| format!("-n {n} ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside a namespace (`ip netns exec`), requiring success.
pub fn exec(ns: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(args);
            c
        }
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let out = c.output().map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An interface's packet counters (`ip -s -j link`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

impl LinkCounters {
    pub fn read(ns: Option<&str>, dev: &str) -> Result<LinkCounters, String> {
        let out = ip(ns, &["-s", "-j", "link", "show", "dev", dev])?;
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("ip -j link: {e}"))?;
        let s = &v[0]["stats64"];
        let g = |a: &str, b: &str| s[a][b].as_u64().unwrap_or(0);
        Ok(LinkCounters {
            rx_packets: g("rx", "packets"),
            rx_dropped: g("rx", "dropped"),
            tx_packets: g("tx", "packets"),
            tx_dropped: g("tx", "dropped"),
        })
    }

    /// Counts since `before`.
    pub fn since(&self, before: &LinkCounters) -> LinkCounters {
        LinkCounters {
            rx_packets: self.rx_packets.wrapping_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.wrapping_sub(before.rx_dropped),
            tx_packets: self.tx_packets.wrapping_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.wrapping_sub(before.tx_dropped),
        }
    }
}

/// An interface's MAC address.
pub fn mac(ns: Option<&str>, dev: &str) -> Result<[u8; 6], String> {
    let out = ip(ns, &["-j", "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| format!("ip -j: {e}"))?;
    let s = v[0]["address"].as_str().ok_or("no MAC address")?;
    parse_mac(s)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("MAC address {s:?}"));
    }
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| format!("MAC address {s:?}"))?;
    }
    Ok(m)
}

/// `hostA eth0 ─── eth0 hostB`: two namespaces and one veth, nothing in between. Removed
/// on drop (the namespaces, and with them every process left inside).
pub struct VethPair {
    pub a: String,
    pub b: String,
}

impl VethPair {
    /// `queues` TX/RX queues on both ends.
    pub fn new(prefix: &str, queues: u32) -> Result<VethPair, String> {
        let p = VethPair {
            a: format!("{prefix}-hostA"),
            b: format!("{prefix}-hostB"),
        };
        for ns in [&p.a, &p.b] {
            ip(None, &["netns", "add", ns])?;
            ip(Some(ns), &["link", "set", "lo", "up"])?;
        }
        let q = queues.to_string();
        ip(
            Some(&p.a),
            &[
                "link",
                "add",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                &p.b,
            ],
        )?;
        for (ns, addr) in [(&p.a, "10.1.1.2/16"), (&p.b, "10.1.2.2/16")] {
            exec(
                Some(ns),
                &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            )?;
            ip(Some(ns), &["addr", "add", addr, "dev", "eth0"])?;
            ip(Some(ns), &["link", "set", "eth0", "up"])?;
            exec(Some(ns), &["ethtool", "-K", "eth0", "tx", "off"])?;
        }
        Ok(p)
    }
}

impl VethPair {
    /// The two ends as (sending, receiving) ports: hostA's and hostB's `eth0`.
    pub fn ports(&self) -> (crate::gen::engine::Port, crate::gen::engine::Port) {
        let port = |ns: &String| crate::gen::engine::Port {
            netns: Some(ns.clone()),
            ifname: "eth0".into(),
        };
        (port(&self.a), port(&self.b))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = ip(None, &["netns", "del", ns]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:0a:ff:00:10:9b"),
            Ok([2, 0x0a, 0xff, 0, 0x10, 0x9b])
        );
        assert!(parse_mac("02:0a:ff:00:10").is_err());
        assert!(parse_mac("02:0a:ff:00:10:zz").is_err());
    }
}
