//! The router's own IPv4 addresses, as the outside classifier knows them
//! (map `espgw_local_addrs`).
//!
//! Only packets addressed to the router itself are IKE, NAT-T keepalives or
//! ESP *for this router*; the outside classifier exempts only those from the
//! crypto-ACL check (IKE and keepalives to the kernel, ESP to the workers)
//! and treats ESP, IKE and keepalives to anyone else as the clear traffic
//! they are ([`super::acl::classify_outside`]). The dataplane installs every
//! IPv4 address of its namespace (a packet to any of the router's addresses
//! is for the router), the outside interface's first, before the program is
//! attached, and re-reads them from netlink while it runs
//! ([`LocalAddrSync::sync`], every turn of the main loop), so renumbering
//! (DHCP, `ip addr add/del`) reaches the classifier within that period.
//!
//! **Fail closed.** With no address in the map (none configured, or netlink
//! never answered) nothing is exempt: IKE, keepalives and ESP are judged as
//! clear traffic, dropped where the mirrored ACL protects them and otherwise
//! handed to the kernel, which cannot do ESP; an outside interface without
//! an address cannot run IKE anyway. When a later read fails, the addresses
//! in force stay.

use super::maps::LOCAL_ADDR_MAX;
use super::Classifier;
use crate::worker::netlink::{IfAddr, Netlink};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The addresses to install, each with the interface holding it: the
/// outside interface's first, then the others, at most
/// [`LOCAL_ADDR_MAX`]; also returns how many were left out for lack of
/// room.
pub fn select(addrs: &[IfAddr], outside_ifindex: u32) -> (BTreeMap<Ipv4Addr, u32>, usize) {
    let mut out = BTreeMap::new();
    let mut left_out = 0;
    let outside_first = addrs
        .iter()
        .filter(|a| a.ifindex == outside_ifindex)
        .chain(addrs.iter().filter(|a| a.ifindex != outside_ifindex));
    for a in outside_first {
        if out.contains_key(&a.addr) {
            continue;
        }
        if out.len() < LOCAL_ADDR_MAX as usize {
            out.insert(a.addr, a.ifindex);
        } else {
            left_out += 1;
        }
    }
    (out, left_out)
}

/// What [`Classifier::set_local_addrs`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LocalAddrChange {
    pub added: Vec<Ipv4Addr>,
    pub removed: Vec<Ipv4Addr>,
    /// Addresses the map refused, with the reason (they stay unexempt, or
    /// stay in the map when the removal failed).
    pub failed: Vec<(Ipv4Addr, String)>,
}

impl LocalAddrChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

/// Keeps the outside classifier's addresses in line with the namespace's.
pub struct LocalAddrSync {
    outside_ifindex: u32,
    outside_name: String,
    /// What was last reported, so that each condition is logged once.
    read_failing: bool,
    outside_unaddressed: Option<bool>,
    left_out: usize,
    /// Addresses the map refused last time (logged again only when the
    /// set changes, though retried every turn).
    failed: Vec<Ipv4Addr>,
}

impl LocalAddrSync {
    pub fn new(outside_ifindex: u32, outside_name: &str) -> Self {
        LocalAddrSync {
            outside_ifindex,
            outside_name: outside_name.to_string(),
            read_failing: false,
            outside_unaddressed: None,
            left_out: 0,
            failed: Vec::new(),
        }
    }

    /// Reads the namespace's IPv4 addresses and installs them into `cls`
    /// (the outside classifier). Returns the lines to log: changes, and
    /// each warning when its condition starts or ends.
    pub fn sync(&mut self, nl: &mut Netlink, cls: &mut Classifier) -> Vec<String> {
        let mut log = Vec::new();
        let addrs = match nl.addresses() {
            Ok(a) => a,
            Err(e) => {
                if !self.read_failing {
                    self.read_failing = true;
                    let n = cls.local_addrs().len();
                    log.push(if n == 0 {
                        format!(
                            "cannot read the local addresses ({e}): no IKE/NAT-T/ESP exemption on the outside (fail closed)"
                        )
                    } else {
                        format!("cannot read the local addresses ({e}): keeping the {n} in force")
                    });
                }
                return log;
            }
        };
        if self.read_failing {
            self.read_failing = false;
            log.push("local addresses readable again".into());
        }
        let (wanted, left_out) = select(&addrs, self.outside_ifindex);
        if left_out != self.left_out {
            self.left_out = left_out;
            if left_out > 0 {
                log.push(format!(
                    "{left_out} local address(es) beyond the {LOCAL_ADDR_MAX} the outside classifier holds: IKE/ESP to them is treated as clear traffic"
                ));
            }
        }
        let unaddressed = !wanted.values().any(|i| *i == self.outside_ifindex);
        if self.outside_unaddressed != Some(unaddressed) {
            if unaddressed {
                log.push(format!(
                    "outside {} has no IPv4 address: IKE, NAT-T and ESP are exempt from the inbound check only when addressed to {}",
                    self.outside_name,
                    if wanted.is_empty() {
                        "the router, which has no address: none are (fail closed)".to_string()
                    } else {
                        "the router's other addresses".to_string()
                    }
                ));
            } else if self.outside_unaddressed.is_some() {
                log.push(format!(
                    "outside {} has an IPv4 address again",
                    self.outside_name
                ));
            }
            self.outside_unaddressed = Some(unaddressed);
        }
        match cls.set_local_addrs(&wanted) {
            Ok(change) => {
                let failed: Vec<Ipv4Addr> = change.failed.iter().map(|(a, _)| *a).collect();
                let repeat =
                    change.added.is_empty() && change.removed.is_empty() && failed == self.failed;
                self.failed = failed;
                if !repeat {
                    log.push(describe(&change, cls.local_addrs().len()));
                }
            }
            Err(e) => log.push(format!("local addresses not installed: {e}")),
        }
        log
    }
}

fn describe(c: &LocalAddrChange, now: usize) -> String {
    let mut s =
        format!("outside exemptions (IKE, NAT-T, ESP to the router): {now} local address(es)");
    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(" ");
    if !c.added.is_empty() {
        let _ = write!(
            s,
            "; added {}",
            list(&mut c.added.iter().map(|a| a.to_string()))
        );
    }
    if !c.removed.is_empty() {
        let _ = write!(
            s,
            "; removed {}",
            list(&mut c.removed.iter().map(|a| a.to_string()))
        );
    }
    if !c.failed.is_empty() {
        let _ = write!(
            s,
            "; failed {}",
            list(&mut c.failed.iter().map(|(a, e)| format!("{a} ({e})")))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ifindex: u32, addr: &str) -> IfAddr {
        IfAddr {
            ifindex,
            addr: addr.parse().unwrap(),
            prefix_len: 24,
        }
    }

    #[test]
    fn outside_addresses_come_first_and_duplicates_once() {
        let addrs = [
            a(1, "127.0.0.1"),
            a(2, "10.1.1.1"),
            a(3, "172.16.172.10"),
            a(3, "172.16.172.11"),
            a(2, "172.16.172.11"),
        ];
        let (got, left_out) = select(&addrs, 3);
        assert_eq!(left_out, 0);
        let want: BTreeMap<Ipv4Addr, u32> = [
            ("127.0.0.1", 1),
            ("10.1.1.1", 2),
            ("172.16.172.10", 3),
            ("172.16.172.11", 3),
        ]
        .into_iter()
        .map(|(s, i)| (s.parse().unwrap(), i))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn beyond_capacity_the_outside_wins() {
        let mut addrs: Vec<IfAddr> = (0..LOCAL_ADDR_MAX)
            .map(|i| IfAddr {
                ifindex: 2,
                addr: Ipv4Addr::from(0x0a00_0000 + i),
                prefix_len: 32,
            })
            .collect();
        addrs.push(a(3, "172.16.172.10"));
        let (got, left_out) = select(&addrs, 3);
        assert_eq!(got.len(), LOCAL_ADDR_MAX as usize);
        assert_eq!(left_out, 1);
        assert_eq!(got.get(&"172.16.172.10".parse().unwrap()), Some(&3));
    }

    #[test]
    fn no_address_selects_nothing() {
        let (got, left_out) = select(&[], 3);
        assert!(got.is_empty());
        assert_eq!(left_out, 0);
    }
}
