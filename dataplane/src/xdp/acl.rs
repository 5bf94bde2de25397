//! Crypto-ACL rules as the classifiers evaluate them: the inside steers the
//! traffic they protect ([`first_match`]), the outside drops clear traffic
//! whose mirror they protect ([`first_match_inbound`]); [`classify_outside`]
//! models the outside classifier's whole decision, including which packets
//! are IKE, NAT-T or ESP for the router itself.
//!
//! Control compiles each crypto map's ACL into [`AclRule`]s (first match
//! wins, `permit` = interesting = steer to the worker, `deny` = kernel) and
//! hands them to the dataplane in a policy file ([`write_policy_file`]); the
//! dataplane compiles them into the classifiers' maps ([`super::classify`]) and re-reads the file when
//! it changes. The same text form is accepted on the command line (`--acl`).
//!
//! Text form, one rule a line (`#` starts a comment):
//! `permit|deny PROTO SRC DST [sport LO-HI] [dport LO-HI] [policy N] [map NAME]`
//! where `policy` is the crypto-map entry's sequence number and `map` its
//! crypto map's name (both go into the sa_request the dataplane posts when
//! interesting traffic finds no SA).
//! where PROTO is `ip`, `icmp`, `tcp`, `udp`, `esp` or a number, and SRC/DST
//! are `any`, `host A.B.C.D` or `A.B.C.D/LEN`.

use super::maps::{CounterIndex, ACL_MAX};
use crate::sadb::MapName;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Prefix {
    /// Every address.
    pub const ANY: Prefix = Prefix {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    /// A prefix with its host bits cleared; `len` above 32 is an error.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, AclError> {
        if len > 32 {
            return Err(AclError::BadPrefix(format!("{addr}/{len}")));
        }
        let addr = Ipv4Addr::from(u32::from(addr) & Self::mask_bits(len));
        Ok(Prefix { addr, len })
    }

    fn mask_bits(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }

    /// The netmask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_bits(self.len))
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & Self::mask_bits(self.len) == u32::from(self.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.len {
            0 => write!(f, "any"),
            32 => write!(f, "host {}", self.addr),
            n => write!(f, "{}/{}", self.addr, n),
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAction {
    /// Interesting traffic: protect it (XDP redirects it to the worker).
    Permit,
    /// Not interesting: the kernel forwards it.
    Deny,
}

/// One crypto-ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclRule {
    pub action: AclAction,
    /// IP protocol; 0 = any.
    pub proto: u8,
    pub src: Prefix,
    pub dst: Prefix,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    /// The crypto map entry (sequence number) the rule came from.
    pub policy: u16,
    /// The crypto map's name (empty when not given).
    pub crypto_map: MapName,
}

/// Errors in rule text or policy files.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    #[error("malformed ACL rule: {0}")]
    Malformed(String),
    #[error("bad prefix {0}")]
    BadPrefix(String),
    #[error("too many ACL rules: {0} (at most {max})", max = ACL_MAX)]
    TooMany(usize),
    #[error("policy file: {0}")]
    Io(String),
}

const ANY_PORT: (u16, u16) = (0, u16::MAX);

impl AclRule {
    /// `permit ip SRC DST` for the given crypto map entry.
    pub fn permit_ip(src: Prefix, dst: Prefix, policy: u16) -> Self {
        AclRule {
            action: AclAction::Permit,
            proto: 0,
            src,
            dst,
            sport: ANY_PORT,
            dport: ANY_PORT,
            policy,
            crypto_map: MapName::default(),
        }
    }

    /// `permit` rule for the traffic of an SA's proxy identities (local →
    /// remote), for control building the policy from negotiated or
    /// configured selectors.
    pub fn from_proxy(p: &crate::sadb::ProxyIdentity, policy: u16, crypto_map: MapName) -> Self {
        let port = |p: u16| if p == 0 { ANY_PORT } else { (p, p) };
        AclRule {
            action: AclAction::Permit,
            proto: p.protocol,
            src: Prefix {
                addr: p.local.addr,
                len: p.local.prefix_len(),
            },
            dst: Prefix {
                addr: p.remote.addr,
                len: p.remote.prefix_len(),
            },
            sport: port(p.local_port),
            dport: port(p.remote_port),
            policy,
            crypto_map,
        }
    }

    /// Whether a packet with these fields matches (the same test the XDP
    /// program makes; `ports` is `None` for non-first fragments and
    /// protocols without ports).
    pub fn matches(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> bool {
        if !self.src.contains(src) || !self.dst.contains(dst) {
            return false;
        }
        if self.proto != 0 && self.proto != proto {
            return false;
        }
        match ports {
            Some((sp, dp)) => {
                (self.sport.0..=self.sport.1).contains(&sp)
                    && (self.dport.0..=self.dport.1).contains(&dp)
            }
            // A non-initial fragment: a permit line with ports matches it (an
            // interesting fragment never leaks), a deny line with ports does
            // not (the IOS ACL rule).
            None => self.action == AclAction::Permit || !self.has_ports(),
        }
    }

    /// Whether the rule restricts ports.
    pub fn has_ports(&self) -> bool {
        self.sport != ANY_PORT || self.dport != ANY_PORT
    }

    /// The rule for the return direction: source and destination prefixes
    /// swapped, source and destination port ranges swapped (IOS mirrors a
    /// crypto ACL for inbound traffic).
    pub fn mirror(&self) -> AclRule {
        AclRule {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }
}

/// The rule that decides a packet, as the classifier decides: rules of one
/// crypto map entry are consecutive and share `policy`; within an entry the
/// first matching line decides; a `deny` means "not protected by this
/// entry" and the next entry decides (IOS). `Some` is always a `permit`;
/// `None`: no entry protects the packet (it goes to the kernel).
pub fn first_match(
    rules: &[AclRule],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> Option<&AclRule> {
    let mut skip: Option<u16> = None;
    for r in rules {
        if skip == Some(r.policy) {
            continue;
        }
        skip = None;
        if !r.matches(src, dst, proto, ports) {
            continue;
        }
        match r.action {
            AclAction::Permit => return Some(r),
            AclAction::Deny => skip = Some(r.policy),
        }
    }
    None
}

/// The rule that says a packet arriving *on the outside* must be protected:
/// [`first_match`] over the mirrored rules ([`AclRule::mirror`]), with the
/// same entry, deny and fragment semantics. The outside classifier drops a
/// packet that arrives in clear when this is `Some` (it asks the same walk
/// with the packet's tuple swapped, which is the same question). IKE, NAT-T
/// keepalives and ESP addressed to the router itself never get here: the
/// classifier passes or steers them first ([`classify_outside`]); addressed
/// to anyone else they are clear traffic like any other.
pub fn first_match_inbound(
    rules: &[AclRule],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> Option<&AclRule> {
    first_match(rules, dst, src, proto, ports.map(|(sp, dp)| (dp, sp)))
}

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ESP: u8 = 50;
/// IKE (`ESPGW_IKE_PORT`).
pub const IKE_PORT: u16 = 500;
/// IKE and ESP behind NAT (`ESPGW_NATT_PORT`, RFC 3948).
pub const NATT_PORT: u16 = 4500;

/// What the outside classifier (`ebpf/outside.c`) does with one Ethernet
/// frame, as the counter it bumps: [`CounterIndex::Steered`] means "to the
/// worker" (or `DropNoXsk` when the queue has no socket),
/// [`CounterIndex::DropClearProtected`] a drop, every `Pass*` the kernel.
///
/// `local` says whether an address is one of the router's own (the
/// `espgw_local_addrs` map). Only packets addressed to the router are
/// exempt from the crypto ACL: ESP and ESP in UDP/4500 are steered, IKE
/// (UDP/500, UDP/4500 behind the zero non-ESP marker) and NAT-T keepalives
/// go to the kernel. Everything else, ESP, IKE and keepalives to other
/// hosts included, arrived in clear: dropped when [`first_match_inbound`]
/// protects it, else to the kernel. With no local address known nothing is
/// exempt (fail closed). Lengths are those of the frame, as XDP sees it.
pub fn classify_outside(
    rules: &[AclRule],
    local: impl Fn(Ipv4Addr) -> bool,
    frame: &[u8],
) -> CounterIndex {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return CounterIndex::PassNotIpv4;
    }
    let ip = &frame[ETH..];
    let (version, ihl) = (ip[0] >> 4, usize::from(ip[0] & 0x0f) * 4);
    if version != 4 || ihl < 20 {
        return CounterIndex::PassMalformed;
    }
    let proto = ip[9];
    let non_first_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let port_at = |off: usize| u16::from_be_bytes([ip[off], ip[off + 1]]);
    // ebpf/outside.c clear_inbound: the mirrored ACL decides.
    let clear = |mut not_protected: CounterIndex| {
        let ports = if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !non_first_fragment {
            if ip.len() < ihl + 4 {
                // Truncated: judged without ports, like a fragment.
                not_protected = CounterIndex::PassMalformed;
                None
            } else {
                Some((port_at(ihl), port_at(ihl + 2)))
            }
        } else {
            None
        };
        match first_match_inbound(rules, src, dst, proto, ports) {
            Some(_) => CounterIndex::DropClearProtected,
            None => not_protected,
        }
    };
    if proto == IPPROTO_ESP {
        return if local(dst) {
            CounterIndex::Steered
        } else {
            clear(CounterIndex::PassOther)
        };
    }
    if proto != IPPROTO_UDP || non_first_fragment {
        return clear(CounterIndex::PassOther);
    }
    if ip.len() < ihl + 8 {
        return clear(CounterIndex::PassMalformed);
    }
    let dport = port_at(ihl + 2);
    if dport != IKE_PORT && dport != NATT_PORT {
        return clear(CounterIndex::PassOther);
    }
    if !local(dst) {
        return clear(CounterIndex::PassOther);
    }
    if dport == IKE_PORT {
        return CounterIndex::PassIke;
    }
    let payload = &ip[ihl + 8..];
    match payload {
        [0xff] | [0xff, _] | [0xff, _, _] => CounterIndex::PassNattKeepalive,
        p if p.len() < 4 => clear(CounterIndex::PassMalformed),
        [0, 0, 0, 0, ..] => CounterIndex::PassIke,
        _ => CounterIndex::Steered,
    }
}

fn parse_prefix<'a>(
    words: &mut impl Iterator<Item = &'a str>,
    line: &str,
) -> Result<Prefix, AclError> {
    let w = words
        .next()
        .ok_or_else(|| AclError::Malformed(line.to_string()))?;
    match w {
        "any" => Ok(Prefix::ANY),
        "host" => {
            let a = words
                .next()
                .ok_or_else(|| AclError::Malformed(line.to_string()))?;
            let addr = a.parse().map_err(|_| AclError::BadPrefix(a.to_string()))?;
            Prefix::new(addr, 32)
        }
        p => {
            let (a, l) = p
                .split_once('/')
                .ok_or_else(|| AclError::BadPrefix(p.to_string()))?;
            let addr = a.parse().map_err(|_| AclError::BadPrefix(p.to_string()))?;
            let len = l.parse().map_err(|_| AclError::BadPrefix(p.to_string()))?;
            Prefix::new(addr, len)
        }
    }
}

fn parse_range(w: Option<&str>, line: &str) -> Result<(u16, u16), AclError> {
    let w = w.ok_or_else(|| AclError::Malformed(line.to_string()))?;
    let bad = || AclError::Malformed(line.to_string());
    let (lo, hi) = match w.split_once('-') {
        Some((lo, hi)) => (
            lo.parse().map_err(|_| bad())?,
            hi.parse().map_err(|_| bad())?,
        ),
        None => {
            let p = w.parse().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl FromStr for AclRule {
    type Err = AclError;

    fn from_str(line: &str) -> Result<Self, AclError> {
        let bad = || AclError::Malformed(line.to_string());
        let mut words = line.split_whitespace();
        let action = match words.next() {
            Some("permit") => AclAction::Permit,
            Some("deny") => AclAction::Deny,
            _ => return Err(bad()),
        };
        let proto = match words.next().ok_or_else(bad)? {
            "ip" => 0,
            "icmp" => 1,
            "tcp" => 6,
            "udp" => 17,
            "esp" => 50,
            n => n.parse().map_err(|_| bad())?,
        };
        let src = parse_prefix(&mut words, line)?;
        let dst = parse_prefix(&mut words, line)?;
        let mut rule = AclRule {
            action,
            proto,
            src,
            dst,
            sport: ANY_PORT,
            dport: ANY_PORT,
            policy: 0,
            crypto_map: MapName::default(),
        };
        while let Some(w) = words.next() {
            match w {
                "sport" => rule.sport = parse_range(words.next(), line)?,
                "dport" => rule.dport = parse_range(words.next(), line)?,
                "policy" => {
                    rule.policy = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?
                }
                "map" => {
                    rule.crypto_map = MapName::new(words.next().ok_or_else(bad)?).ok_or_else(bad)?
                }
                _ => return Err(bad()),
            }
        }
        Ok(rule)
    }
}

impl fmt::Display for AclRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            AclAction::Permit => "permit",
            AclAction::Deny => "deny",
        };
        let proto = match self.proto {
            0 => "ip".to_string(),
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            50 => "esp".to_string(),
            n => n.to_string(),
        };
        write!(f, "{action} {proto} {} {}", self.src, self.dst)?;
        if self.sport != ANY_PORT {
            write!(f, " sport {}-{}", self.sport.0, self.sport.1)?;
        }
        if self.dport != ANY_PORT {
            write!(f, " dport {}-{}", self.dport.0, self.dport.1)?;
        }
        write!(f, " policy {}", self.policy)?;
        if !self.crypto_map.is_empty() {
            write!(f, " map {}", self.crypto_map)?;
        }
        Ok(())
    }
}

/// Parses a policy file's text: one rule a line, blank lines and `#` comments skipped.
pub fn parse_rules(text: &str) -> Result<Vec<AclRule>, AclError> {
    let rules = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<AclRule>, _>>()?;
    if rules.len() > ACL_MAX as usize {
        return Err(AclError::TooMany(rules.len()));
    }
    Ok(rules)
}

/// Writes the rules to `path` atomically (temporary file, then rename), so a
/// dataplane watching the file never reads half of it.
pub fn write_policy_file(path: &Path, rules: &[AclRule]) -> Result<(), AclError> {
    if rules.len() > ACL_MAX as usize {
        return Err(AclError::TooMany(rules.len()));
    }
    let mut text = String::from("# espgw crypto ACL: first match wins; permit = protect\n");
    for r in rules {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| AclError::Io(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| AclError::Io(format!("{}: {e}", path.display())))
}

/// Reads a policy file written by [`write_policy_file`] (or by hand).
pub fn read_policy_file(path: &Path) -> Result<Vec<AclRule>, AclError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AclError::Io(format!("{}: {e}", path.display())))?;
    parse_rules(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_display_round_trip() {
        for text in [
            "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10",
            "deny udp host 10.1.1.2 any dport 500-500 policy 10",
            "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map MYMAP",
            "permit tcp any 10.0.0.0/8 sport 1024-65535 dport 80-80 policy 20",
            "permit 47 any any policy 1",
        ] {
            let r: AclRule = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
            assert_eq!(r.to_string().parse::<AclRule>().unwrap(), r);
        }
    }

    #[test]
    fn parse_errors_are_typed() {
        assert!(matches!(
            "allow ip any any".parse::<AclRule>(),
            Err(AclError::Malformed(_))
        ));
        assert!(matches!(
            "permit ip 10.0.0.0/33 any".parse::<AclRule>(),
            Err(AclError::BadPrefix(_))
        ));
        assert!(matches!(
            "permit ip any".parse::<AclRule>(),
            Err(AclError::Malformed(_))
        ));
        assert!(matches!(
            "permit tcp any any dport 9-1".parse::<AclRule>(),
            Err(AclError::Malformed(_))
        ));
        assert!(matches!(
            "permit ip any any bogus".parse::<AclRule>(),
            Err(AclError::Malformed(_))
        ));
    }

    #[test]
    fn prefix_clears_host_bits_and_matches() {
        let p = Prefix::new(ip("10.1.1.77"), 24).unwrap();
        assert_eq!(p.addr, ip("10.1.1.0"));
        assert!(p.contains(ip("10.1.1.200")));
        assert!(!p.contains(ip("10.1.2.1")));
        assert!(Prefix::ANY.contains(ip("1.2.3.4")));
    }

    #[test]
    fn first_match_wins() {
        let rules = parse_rules(
            "deny tcp 10.1.1.0/24 10.1.2.0/24 dport 22-22 policy 10\n\
             permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 # the tunnel\n",
        )
        .unwrap();
        assert!(first_match(&rules, ip("10.1.1.2"), ip("10.1.2.2"), 6, Some((4000, 22))).is_none());
        let r = first_match(&rules, ip("10.1.1.2"), ip("10.1.2.2"), 6, Some((4000, 80))).unwrap();
        assert_eq!(r.action, AclAction::Permit);
        // A non-first fragment has no ports: the deny line with ports does not
        // match it, the permit does (it is protected, never leaked).
        let r = first_match(&rules, ip("10.1.1.2"), ip("10.1.2.2"), 6, None).unwrap();
        assert_eq!(r.action, AclAction::Permit);
        assert!(first_match(&rules, ip("10.1.3.2"), ip("10.1.2.2"), 1, None).is_none());
    }

    #[test]
    fn deny_skips_to_the_next_crypto_map_entry() {
        let rules = parse_rules(
            "deny ip host 10.1.1.9 any policy 10\n\
             permit ip 10.1.1.0/24 10.1.2.0/24 policy 10\n\
             permit ip 10.1.1.0/24 10.1.2.0/24 policy 20\n\
             deny ip 10.1.1.0/24 10.1.3.0/24 policy 30\n\
             permit ip 10.1.1.0/24 any policy 30\n",
        )
        .unwrap();
        let pick = |s: &str, d: &str| first_match(&rules, ip(s), ip(d), 1, None).map(|r| r.policy);
        // Denied by entry 10, protected by entry 20.
        assert_eq!(pick("10.1.1.9", "10.1.2.2"), Some(20));
        assert_eq!(pick("10.1.1.2", "10.1.2.2"), Some(10));
        // Denied by entry 30, the last one: in clear.
        assert_eq!(pick("10.1.1.2", "10.1.3.2"), None);
        assert_eq!(pick("10.1.1.2", "10.1.4.2"), Some(30));
        assert_eq!(pick("10.9.1.2", "10.1.4.2"), None);
    }

    #[test]
    fn mirror_swaps_prefixes_and_ports() {
        let r: AclRule =
            "permit udp 10.1.1.0/24 10.1.2.0/24 sport 7001-7001 dport 1000-2000 policy 10 map M"
                .parse()
                .unwrap();
        assert_eq!(
            r.mirror().to_string(),
            "permit udp 10.1.2.0/24 10.1.1.0/24 sport 1000-2000 dport 7001-7001 policy 10 map M"
        );
        assert_eq!(r.mirror().mirror(), r);
    }

    /// The mirror of the outbound tunnel traffic: 10.1.2.x -> 10.1.1.x
    /// arriving in clear is protected by the same entries, with the same
    /// deny-to-the-next-entry rule, and ports are swapped.
    #[test]
    fn inbound_is_the_mirror_of_outbound() {
        let rules = parse_rules(
            "deny icmp any any policy 10\n\
             permit udp 10.1.1.0/24 10.1.2.0/24 sport 7001-7001 policy 10\n\
             deny udp 10.1.1.0/24 10.1.2.0/24 dport 53-53 policy 20\n\
             permit ip 10.1.1.0/24 10.1.2.0/24 policy 20\n\
             permit icmp 10.1.1.0/24 10.1.2.0/24 policy 30\n",
        )
        .unwrap();
        let inbound = |s: &str, d: &str, proto: u8, ports: Option<(u16, u16)>| {
            first_match_inbound(&rules, ip(s), ip(d), proto, ports).map(|r| r.policy)
        };
        // ICMP: entry 10 denies it, entry 20 permits it (the next entry decides).
        assert_eq!(inbound("10.1.2.2", "10.1.1.2", 1, None), Some(20));
        // Entry 10's source port 7001 is the inbound packet's destination port.
        assert_eq!(
            inbound("10.1.2.2", "10.1.1.2", 17, Some((5000, 7001))),
            Some(10)
        );
        assert_eq!(
            inbound("10.1.2.2", "10.1.1.2", 17, Some((7001, 5000))),
            Some(20)
        );
        // Entry 20 denies UDP to 10.1.2.x port 53: inbound, *from* port 53;
        // entry 30 permits only ICMP, so it is not protected.
        assert_eq!(inbound("10.1.2.2", "10.1.1.2", 17, Some((53, 5000))), None);
        assert_eq!(
            inbound("10.1.2.2", "10.1.1.2", 17, Some((5000, 53))),
            Some(20)
        );
        // A non-initial UDP fragment: entry 10's permit with ports matches it
        // (interesting fragments are never let in), entry 20's deny with
        // ports would not.
        assert_eq!(inbound("10.1.2.2", "10.1.1.2", 17, None), Some(10));
        // The outbound direction, other prefixes: not protected inbound.
        assert_eq!(inbound("10.1.1.2", "10.1.2.2", 6, Some((5000, 80))), None);
        assert_eq!(inbound("172.16.172.20", "10.1.1.2", 1, None), None);
        assert_eq!(inbound("10.1.3.2", "10.1.1.2", 6, Some((5000, 80))), None);
        // The same answers as the outbound walk over the mirrored rules.
        let mirrored: Vec<AclRule> = rules.iter().map(AclRule::mirror).collect();
        for (s, d, proto, ports) in [
            ("10.1.2.2", "10.1.1.2", 1, None),
            ("10.1.2.2", "10.1.1.2", 17, Some((5000, 7001))),
            ("10.1.2.2", "10.1.1.2", 17, Some((53, 5000))),
            ("10.1.2.2", "10.1.1.2", 17, None),
            ("10.1.1.2", "10.1.2.2", 6, Some((5000, 80))),
        ] {
            assert_eq!(
                first_match(&mirrored, ip(s), ip(d), proto, ports).map(|r| r.policy),
                inbound(s, d, proto, ports),
                "{s} -> {d} proto {proto} {ports:?}"
            );
        }
    }

    #[test]
    fn inbound_deny_with_ports_does_not_match_fragments() {
        // Entry 10 denies outbound TCP from port 22 (inbound: to port 22) and
        // permits the rest; entry 20 permits nothing that matches.
        let rules = parse_rules(
            "deny tcp 10.1.1.0/24 10.1.2.0/24 sport 22-22 policy 10\n\
             permit tcp 10.1.1.0/24 10.1.2.0/24 policy 10\n",
        )
        .unwrap();
        let pick = |ports| first_match_inbound(&rules, ip("10.1.2.9"), ip("10.1.1.9"), 6, ports);
        assert!(pick(Some((40000, 22))).is_none());
        assert!(pick(Some((22, 40000))).is_some());
        // A non-initial fragment of the denied connection: the deny line
        // (with ports) does not match it, the permit does: dropped.
        assert!(pick(None).is_some());
    }

    #[test]
    fn rule_from_proxy_identities() {
        let p = crate::sadb::ProxyIdentity {
            local: crate::sadb::Ipv4Prefix::new(ip("10.1.1.0"), 24),
            remote: crate::sadb::Ipv4Prefix::new(ip("10.1.2.0"), 24),
            protocol: 17,
            local_port: 0,
            remote_port: 4789,
        };
        let r = AclRule::from_proxy(&p, 10, MapName::new("MYMAP").unwrap());
        assert_eq!(
            r.to_string(),
            "permit udp 10.1.1.0/24 10.1.2.0/24 dport 4789-4789 policy 10 map MYMAP"
        );
    }

    #[test]
    fn policy_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("espgw-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy");
        let rules = vec![
            AclRule::permit_ip(
                Prefix::new(ip("10.1.1.0"), 24).unwrap(),
                Prefix::new(ip("10.1.2.0"), 24).unwrap(),
                10,
            ),
            "deny icmp any any policy 10".parse().unwrap(),
        ];
        write_policy_file(&path, &rules).unwrap();
        assert_eq!(read_policy_file(&path).unwrap(), rules);
        let many = vec![rules[0]; ACL_MAX as usize + 1];
        assert_eq!(
            write_policy_file(&path, &many),
            Err(AclError::TooMany(ACL_MAX as usize + 1))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An Ethernet + IPv4 frame (IHL 5) around `l4`.
    fn frame(src: &str, dst: &str, proto: u8, frag_off: u16, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&frag_off.to_be_bytes());
        f.extend_from_slice(&[64, proto, 0, 0]);
        f.extend_from_slice(&ip(src).octets());
        f.extend_from_slice(&ip(dst).octets());
        f.extend_from_slice(l4);
        f
    }

    fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        frame(src, dst, IPPROTO_UDP, 0, &l4)
    }

    /// Only IKE, NAT-T keepalives and ESP addressed to the router are
    /// exempt; to anyone else they are clear traffic under the mirrored ACL.
    #[test]
    fn outside_exempts_only_traffic_for_the_router() {
        use CounterIndex as C;
        // Entry 10 protects the subnets, entry 20 all UDP between the outside
        // addresses (R1's /28 towards R2), so IKE to R1 would be dropped
        // without the exemption.
        let rules = parse_rules(
            "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10\n\
             permit udp 172.16.172.0/28 host 172.16.172.20 policy 20\n",
        )
        .unwrap();
        let r1 = |a: Ipv4Addr| a == ip("172.16.172.10") || a == ip("10.1.1.1");
        let out = |f: &[u8]| classify_outside(&rules, r1, f);
        let esp = [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1];
        let (r2, r1a, hb, ha, stranger) = (
            "172.16.172.20",
            "172.16.172.10",
            "10.1.2.2",
            "10.1.1.2",
            "192.0.2.7",
        );

        // To the router: the IKE/NAT-T pass and the ESP steer, although
        // entry 20 protects UDP from R2.
        assert_eq!(out(&udp(r2, r1a, 500, 500, &[0; 28])), C::PassIke);
        assert_eq!(out(&udp(r2, r1a, 4500, 4500, &[0; 32])), C::PassIke);
        assert_eq!(
            out(&udp(r2, r1a, 4500, 4500, &[0xff])),
            C::PassNattKeepalive
        );
        assert_eq!(out(&udp(r2, r1a, 4500, 4500, &esp)), C::Steered);
        assert_eq!(out(&frame(r2, r1a, IPPROTO_ESP, 0, &esp)), C::Steered);
        // Any address of the router counts, also from a protected source.
        assert_eq!(out(&udp(hb, "10.1.1.1", 500, 500, &[0; 28])), C::PassIke);
        // Other UDP to the router is still held to the ACL.
        assert_eq!(
            out(&udp(r2, r1a, 5555, 5555, &[1; 8])),
            C::DropClearProtected
        );

        // The same to a protected inside host, from the protected remote
        // subnet: clear traffic the ACL protects, dropped.
        for f in [
            udp(hb, ha, 500, 500, &[0; 28]),
            udp(hb, ha, 4500, 4500, &[0; 32]),
            udp(hb, ha, 4500, 4500, &[0xff]),
            udp(hb, ha, 4500, 4500, &esp),
            frame(hb, ha, IPPROTO_ESP, 0, &esp),
        ] {
            assert_eq!(out(&f), C::DropClearProtected, "{f:?}");
        }
        // From a source nothing protects: clear, to the kernel.
        assert_eq!(out(&udp(stranger, ha, 500, 500, &[0; 28])), C::PassOther);
        assert_eq!(out(&udp(stranger, ha, 4500, 4500, &esp)), C::PassOther);
        assert_eq!(
            out(&frame(stranger, ha, IPPROTO_ESP, 0, &esp)),
            C::PassOther
        );
        // A truncated UDP header to the inside: judged without ports.
        let mut short = udp(hb, ha, 500, 500, &[]);
        short.truncate(14 + 20 + 4);
        assert_eq!(out(&short), C::DropClearProtected);
        short = udp(stranger, ha, 500, 500, &[]);
        short.truncate(14 + 20 + 6);
        assert_eq!(out(&short), C::PassMalformed);
        // A non-first fragment to port 500's datagram carries no UDP
        // header: clear traffic even to the router.
        let frag = frame(r2, r1a, IPPROTO_UDP, 185, &[0; 40]);
        assert_eq!(out(&frag), C::DropClearProtected);
        // Not IPv4: the kernel.
        let mut arp = udp(r2, r1a, 500, 500, &[0; 28]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(out(&arp), C::PassNotIpv4);

        // No address known: nothing is exempt (fail closed); what the ACL
        // does not protect still reaches the kernel.
        let none = |f: &[u8]| classify_outside(&rules, |_| false, f);
        assert_eq!(
            none(&udp(r2, r1a, 500, 500, &[0; 28])),
            C::DropClearProtected
        );
        assert_eq!(none(&frame(r2, r1a, IPPROTO_ESP, 0, &esp)), C::PassOther);
        assert_eq!(none(&udp(stranger, r1a, 500, 500, &[0; 28])), C::PassOther);
    }
}
