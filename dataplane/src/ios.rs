//! What espgw-dataplane takes from the IOS configuration that espgw-control
//! reads: which interfaces are the outside (those with `crypto map`) and the
//! inside (the other addressed interfaces), and the classifier's crypto-ACL
//! rules (each applied crypto map's entries in sequence order, each entry's
//! `match address` list line by line).
//!
//! Both daemons read the same file through the `espgw-config` crate, so the
//! dataplane steers exactly the traffic the control plane negotiates SAs for.

use crate::sadb::MapName;
use crate::xdp::acl::{AclAction, AclError, AclRule, Prefix};
use crate::xdp::maps::ACL_MAX;
use espgw_config::{AclEntry, AclProtocol, Config, Interface, PortMatch};

/// Why a configuration cannot drive the dataplane. Each names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IosError {
    #[error("line {line}: interface {ios}: no Linux interface; map it with --interface-map {ios}=LINUXNAME")]
    NoLinuxName { ios: String, line: usize },
    #[error(
        "no interface has a crypto map: the outside interface is the one with `crypto map NAME`"
    )]
    NoOutside,
    #[error("no inside interface: an interface with `ip address` and no crypto map")]
    NoInside,
    #[error("espgw-dataplane serves one {side} interface; the configuration has {}: {} (choose with --{side})", .found.len(), .found.join(", "))]
    Several {
        side: &'static str,
        found: Vec<String>,
    },
    #[error("line {line}: access-list {acl}: {reason}")]
    Acl {
        acl: String,
        line: usize,
        reason: String,
    },
    #[error("line {line}: crypto map {map}: the name is longer than {max} characters", max = MapName::MAX)]
    MapName { map: String, line: usize },
    #[error("the crypto ACLs give {0} classifier rules; at most {max} fit", max = ACL_MAX)]
    TooManyRules(usize),
}

/// The dataplane's view of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplanePolicy {
    /// Linux names of the inside interfaces (addressed, no crypto map).
    pub inside: Vec<String>,
    /// Linux names of the outside interfaces (with a crypto map).
    pub outside: Vec<String>,
    /// The classifier's rules, in evaluation order.
    pub rules: Vec<AclRule>,
    /// Entries whose rules come from the SA database at run time (Easy VPN clients' and
    /// dynamic entries, see [`crate::sa_rules`]), after `rules`.
    pub runtime: Vec<crate::sa_rules::RuntimeEntry>,
}

impl DataplanePolicy {
    /// Reads interfaces and rules from a parsed configuration.
    pub fn from_config(cfg: &Config) -> Result<DataplanePolicy, IosError> {
        let linux = |i: &Interface| {
            i.linux_name.clone().ok_or_else(|| IosError::NoLinuxName {
                ios: i.name.clone(),
                line: i.line,
            })
        };
        // `crypto ipsec client ezvpn NAME` (without `inside`) marks an outside too.
        let is_outside = |i: &Interface| {
            i.crypto_map.is_some()
                || cfg
                    .ezvpn_clients
                    .values()
                    .any(|c| c.outside.iter().any(|o| o.eq_ignore_ascii_case(&i.name)))
        };
        let up = cfg.interfaces.iter().filter(|i| !i.shutdown);
        let outside = up
            .clone()
            .filter(|i| is_outside(i))
            .map(linux)
            .collect::<Result<Vec<_>, _>>()?;
        let inside = up
            .filter(|i| !is_outside(i) && i.address.is_some())
            .map(linux)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DataplanePolicy {
            inside,
            outside,
            rules: rules_from_config(cfg)?,
            runtime: crate::sa_rules::runtime_entries(cfg),
        })
    }

    /// The one inside and one outside interface the dataplane serves: the
    /// configuration's, unless the command line names one.
    pub fn pick(
        &self,
        inside: Option<&str>,
        outside: Option<&str>,
    ) -> Result<(String, String), IosError> {
        let one = |given: Option<&str>, found: &[String], side: &'static str, none: IosError| {
            if let Some(g) = given {
                return Ok(g.to_string());
            }
            match found {
                [] => Err(none),
                [one] => Ok(one.clone()),
                _ => Err(IosError::Several {
                    side,
                    found: found.to_vec(),
                }),
            }
        };
        Ok((
            one(inside, &self.inside, "inside", IosError::NoInside)?,
            one(outside, &self.outside, "outside", IosError::NoOutside)?,
        ))
    }
}

/// The classifier rules of every crypto map applied to an interface that is
/// not shut down: its entries in sequence order (entries without `set peer`
/// or `match address` are incomplete and, as on IOS, protect nothing), each
/// entry's ACL line by line, tagged with the entry (`policy` = sequence
/// number, `crypto_map` = name) so a miss asks control for that entry.
pub fn rules_from_config(cfg: &Config) -> Result<Vec<AclRule>, IosError> {
    let mut rules = Vec::new();
    for map in cfg.applied_maps() {
        let name = map.name.as_str();
        for entry in map.entries.values() {
            if entry.peers.is_empty() {
                continue;
            }
            let Some(acl) = cfg.acl_for(entry) else {
                continue;
            };
            let crypto_map = MapName::new(name).ok_or_else(|| IosError::MapName {
                map: name.to_string(),
                line: entry.line,
            })?;
            // IOS sequence numbers are 1..=65535 (the parser checks it).
            let policy = u16::try_from(entry.seq).unwrap_or(u16::MAX);
            for line in &acl.entries {
                rules.extend(rules_for_line(line, policy, crypto_map).map_err(|reason| {
                    IosError::Acl {
                        acl: acl.name.clone(),
                        line: line.line,
                        reason,
                    }
                })?);
            }
        }
    }
    rules.extend(client_pool_rules(cfg));
    if rules.len() > ACL_MAX as usize {
        return Err(IosError::TooManyRules(rules.len()));
    }
    Ok(rules)
}

/// Remote access: traffic to the `ip local pool` addresses of the client groups is
/// interesting for the crypto map that has the dynamic entry (`crypto map M SEQ
/// ipsec-isakmp dynamic D`); each client's SA covers its own /32, found by the workers'
/// SA lookup. Each pool range becomes the fewest prefixes that cover it exactly.
fn client_pool_rules(cfg: &Config) -> Vec<AclRule> {
    let ra = &cfg.remote_access;
    let mut out = Vec::new();
    for r in &ra.dynamic_refs {
        if cfg.interface_for_map(&r.map).is_none() {
            continue;
        }
        let Some(crypto_map) = MapName::new(&r.map) else {
            continue;
        };
        let policy = u16::try_from(r.seq).unwrap_or(u16::MAX);
        for pool in ra.pools.values() {
            for &(first, last) in &pool.ranges {
                for dst in range_prefixes(u32::from(first), u32::from(last)) {
                    let mut rule = AclRule::permit_ip(Prefix::ANY, dst, policy);
                    rule.crypto_map = crypto_map;
                    out.push(rule);
                }
            }
        }
    }
    out
}

/// The prefixes that cover `first..=last` exactly.
fn range_prefixes(mut first: u32, last: u32) -> Vec<Prefix> {
    let mut out = Vec::new();
    while first <= last {
        let mut len = 32u8;
        while len > 0 {
            let size = 1u64 << (33 - len);
            let mask = (size - 1) as u32;
            if first & mask != 0 || first as u64 + size - 1 > last as u64 {
                break;
            }
            len -= 1;
        }
        if let Ok(p) = Prefix::new(first.into(), len) {
            out.push(p);
        }
        let next = first as u64 + (1u64 << (32 - len));
        if next > last as u64 {
            break;
        }
        first = next as u32;
    }
    out
}

/// One ACL line as classifier rules (two for `neq`, whose ports are not one
/// range).
fn rules_for_line(e: &AclEntry, policy: u16, crypto_map: MapName) -> Result<Vec<AclRule>, String> {
    if e.icmp_type.is_some() {
        return Err("ICMP types cannot be matched by the classifier in a crypto ACL; use `icmp` without a type".into());
    }
    if e.established {
        return Err("`established` has no meaning in a crypto ACL".into());
    }
    let prefix = |m: &espgw_config::AddrMatch| {
        let len = m
            .prefix_len()
            .ok_or_else(|| format!("wildcard {} is not contiguous", m.wildcard))?;
        Prefix::new(m.addr, len).map_err(|e: AclError| e.to_string())
    };
    let ranges = |p: Option<PortMatch>| -> Vec<(u16, u16)> {
        match p {
            None => vec![(0, u16::MAX)],
            Some(PortMatch::Eq(p)) => vec![(p, p)],
            Some(PortMatch::Range(a, b)) => vec![(a.min(b), a.max(b))],
            Some(PortMatch::Lt(0)) => vec![],
            Some(PortMatch::Lt(p)) => vec![(0, p - 1)],
            Some(PortMatch::Gt(u16::MAX)) => vec![],
            Some(PortMatch::Gt(p)) => vec![(p + 1, u16::MAX)],
            Some(PortMatch::Neq(p)) => [
                (p > 0).then(|| (0, p - 1)),
                (p < u16::MAX).then(|| (p + 1, u16::MAX)),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    };
    let (src, dst) = (prefix(&e.src)?, prefix(&e.dst)?);
    let proto = match e.protocol {
        AclProtocol::Ip => 0,
        p => p.number(),
    };
    let action = match e.action {
        espgw_config::AclAction::Permit => AclAction::Permit,
        espgw_config::AclAction::Deny => AclAction::Deny,
    };
    let mut out = Vec::new();
    for sport in ranges(e.src_port) {
        for dport in ranges(e.dst_port) {
            out.push(AclRule {
                action,
                proto,
                src,
                dst,
                sport,
                dport,
                policy,
                crypto_map,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp::acl::first_match;
    use espgw_config::{parse_config, InterfaceMap};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn policy(text: &str, map: &str) -> Result<DataplanePolicy, IosError> {
        let cfg = parse_config(text, &InterfaceMap::parse(map).unwrap())
            .unwrap()
            .config;
        DataplanePolicy::from_config(&cfg)
    }

    #[test]
    fn the_slides_r1_configuration() {
        let p = policy(
            include_str!("../../deploy/configs/r1.conf"),
            "Ethernet0/0=in0,Ethernet1/0=out0",
        )
        .unwrap();
        assert_eq!(p.inside, ["in0"]);
        assert_eq!(p.outside, ["out0"]);
        assert_eq!(p.pick(None, None).unwrap(), ("in0".into(), "out0".into()));
        let text: Vec<String> = p.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            ["permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map vpn"]
        );
    }

    #[test]
    fn interfaces_need_linux_names() {
        let e = policy(include_str!("../../deploy/configs/r1.conf"), "").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "line {}: interface Ethernet1/0: no Linux interface; map it with --interface-map Ethernet1/0=LINUXNAME",
                include_str!("../../deploy/configs/r1.conf")
                    .lines()
                    .position(|l| l == "interface Ethernet1/0")
                    .unwrap()
                    + 1
            )
        );
    }

    const TWO_ENTRIES: &str = "\
crypto ipsec transform-set t esp-aes esp-sha-hmac
crypto map m 10 ipsec-isakmp
 set peer 192.0.2.2
 set transform-set t
 match address 110
crypto map m 20 ipsec-isakmp
 set peer 192.0.2.3
 set transform-set t
 match address web
crypto map m 30 ipsec-isakmp
 set transform-set t
 match address 110
crypto map other 10 ipsec-isakmp
 set peer 192.0.2.4
 set transform-set t
 match address 110
interface in0
 ip address 10.1.1.1 255.255.255.0
interface in1
 shutdown
 ip address 10.1.9.1 255.255.255.0
interface out0
 ip address 192.0.2.1 255.255.255.0
 crypto map m
interface lab0
access-list 110 deny ip host 10.1.1.9 any
access-list 110 permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255
ip access-list extended web
 permit tcp 10.1.1.0 0.0.0.255 any neq 80
 deny udp any any gt 1023
 permit udp 10.1.1.0 0.0.0.255 host 10.9.9.9 lt 1024
";

    #[test]
    fn entries_in_sequence_order_with_ios_deny_semantics() {
        let p = policy(TWO_ENTRIES, "").unwrap();
        // in1 is shut down, lab0 has no address; "other" is applied nowhere;
        // entry 30 has no peer.
        assert_eq!(
            (p.inside.clone(), p.outside.clone()),
            (vec!["in0".to_string()], vec!["out0".to_string()])
        );
        let text: Vec<String> = p.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            [
                "deny ip host 10.1.1.9 any policy 10 map m",
                "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map m",
                "permit tcp 10.1.1.0/24 any dport 0-79 policy 20 map m",
                "permit tcp 10.1.1.0/24 any dport 81-65535 policy 20 map m",
                "deny udp any any dport 1024-65535 policy 20 map m",
                "permit udp 10.1.1.0/24 host 10.9.9.9 dport 0-1023 policy 20 map m",
            ]
        );
        let entry = |s: &str, d: &str, proto: u8, ports: Option<(u16, u16)>| {
            first_match(&p.rules, ip(s), ip(d), proto, ports).map(|r| r.policy)
        };
        assert_eq!(entry("10.1.1.2", "10.1.2.2", 1, None), Some(10));
        // Denied by entry 10, then entry 20's lines decide.
        assert_eq!(entry("10.1.1.9", "10.1.2.2", 6, Some((999, 22))), Some(20));
        assert_eq!(entry("10.1.1.9", "10.1.2.2", 6, Some((999, 80))), None);
        assert_eq!(entry("10.1.1.9", "10.1.2.2", 1, None), None);
        assert_eq!(
            entry("10.1.1.5", "10.9.9.9", 17, Some((5000, 53))),
            Some(20)
        );
        assert_eq!(entry("10.1.1.5", "10.9.9.9", 17, Some((5000, 2000))), None);
    }

    #[test]
    fn several_interfaces_need_a_choice() {
        let text = TWO_ENTRIES.replace("interface in1\n shutdown\n", "interface in1\n");
        let p = policy(&text, "").unwrap();
        assert_eq!(
            p.pick(None, None).unwrap_err().to_string(),
            "espgw-dataplane serves one inside interface; the configuration has 2: in0, in1 (choose with --inside)"
        );
        assert_eq!(
            p.pick(Some("in1"), None).unwrap(),
            ("in1".into(), "out0".into())
        );
        let none = policy("interface in0\n ip address 10.1.1.1 255.255.255.0\n", "").unwrap();
        assert_eq!(none.pick(None, None), Err(IosError::NoOutside));
    }

    #[test]
    fn an_easy_vpn_client_has_its_outside_and_no_static_rules() {
        let p = policy(
            include_str!("../../deploy/configs/r2-ezvpn-client.conf"),
            "Ethernet0/0=in0,Ethernet1/0=out0",
        )
        .unwrap();
        assert_eq!(p.pick(None, None).unwrap(), ("in0".into(), "out0".into()));
        assert!(p.rules.is_empty(), "{:?}", p.rules);
        assert_eq!(p.runtime.len(), 1);
        assert_eq!(
            p.runtime[0].map,
            MapName::new("Ethernet1/0-head-0").unwrap()
        );
        let site = policy(
            include_str!("../../deploy/configs/r1.conf"),
            "Ethernet0/0=in0,Ethernet1/0=out0",
        )
        .unwrap();
        assert!(site.runtime.is_empty());
    }

    #[test]
    fn lines_the_classifier_cannot_express_name_their_line() {
        let text = TWO_ENTRIES.replace(
            "access-list 110 deny ip host 10.1.1.9 any",
            "access-list 110 deny ip 10.1.0.1 0.0.255.0 any",
        );
        let e = policy(&text, "").unwrap_err();
        let line = text.lines().position(|l| l.contains("0.0.255.0")).unwrap() + 1;
        assert_eq!(
            e.to_string(),
            format!("line {line}: access-list 110: wildcard 0.0.255.0 is not contiguous")
        );
        let text = TWO_ENTRIES.replace(
            "access-list 110 deny ip host 10.1.1.9 any",
            "access-list 110 permit icmp any any echo",
        );
        assert!(matches!(policy(&text, ""), Err(IosError::Acl { .. })));
    }

    #[test]
    fn client_pools_become_rules_of_the_dynamic_entry() {
        let text = "\
crypto isakmp client configuration group g
 key k
 pool ez
crypto ipsec transform-set t esp-aes esp-sha-hmac
crypto dynamic-map dyn 10
 set transform-set t
crypto map cm 20 ipsec-isakmp dynamic dyn
ip local pool ez 10.99.0.10 10.99.0.20
interface Ethernet0/0
 ip address 10.1.1.1 255.255.255.0
interface Ethernet1/0
 ip address 172.16.172.10 255.255.255.240
 crypto map cm
";
        let cfg = parse_config(
            text,
            &InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0").unwrap(),
        )
        .unwrap()
        .config;
        let rules = rules_from_config(&cfg).unwrap();
        let dsts: Vec<String> = rules
            .iter()
            .map(|r| format!("{}/{}", r.dst.addr, r.dst.len))
            .collect();
        assert_eq!(
            dsts,
            [
                "10.99.0.10/31",
                "10.99.0.12/30",
                "10.99.0.16/30",
                "10.99.0.20/32"
            ]
        );
        assert!(rules.iter().all(|r| r.policy == 20 && r.src.len == 0));
        for a in 10..=20u8 {
            assert!(
                first_match(&rules, ip("10.1.1.2"), Ipv4Addr::new(10, 99, 0, a), 1, None).is_some()
            );
        }
        assert!(first_match(&rules, ip("10.1.1.2"), ip("10.99.0.21"), 1, None).is_none());
        assert!(first_match(&rules, ip("10.1.1.2"), ip("10.99.0.9"), 1, None).is_none());
        assert_eq!(range_prefixes(0, u32::MAX).len(), 1);
    }
}
