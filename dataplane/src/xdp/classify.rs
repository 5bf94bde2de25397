//! The crypto ACL compiled for the XDP classifiers, and the Rust model of
//! their lookup (`acl_walk` in `ebpf/acl.h`; the maps are described in
//! `ebpf/espgw_maps.h`).
//!
//! IOS walks a crypto ACL line by line; with tens of thousands of crypto map
//! entries that walk is too long for every packet. [`CompiledAcl::compile`]
//! turns the rule list into a structure whose lookup costs the same at 10
//! rules and at 60,000 and decides exactly as [`first_match`] does:
//!
//! 1. **Destination node.** The distinct destination prefixes of all rules
//!    go into an LPM trie. The longest one holding a packet's destination
//!    names a node; the rules whose destination holds the packet's are
//!    exactly those whose destination prefix holds that node's prefix (the
//!    prefixes holding one address form a chain), so the node stands for
//!    the rules matching on the destination.
//! 2. **Cell.** Per node, the distinct source prefixes of its rules go into
//!    a second LPM trie keyed by (node, source). The longest one holding the
//!    packet's source names a cell: the rules matching on both addresses.
//! 3. **Walk.** The cell keeps those rules in the list's order, each with
//!    its run (the consecutive rules of one crypto map entry, which is what
//!    a `deny` skips), less the rules that can never decide there
//!    ([`prune`]); the walk over them (protocol, ports, fragments, first
//!    match per run, deny skips the run) is IOS's walk over the whole list.
//!
//! Cost per packet: two LPM lookups and a walk of at most
//! [`CLS_WALK_MAX`] candidates (usually one or two). What grows with the
//! rules is the compile time and the memory: one node per distinct
//! destination prefix, one cell per distinct source prefix of each node's
//! rules. Rules whose destination holds many other rules' destinations (a
//! wide `any`) add their source prefixes to every such node, so a list with
//! both many distinct sources under a wide destination and many distinct
//! destinations multiplies; [`CompileError`] says which limit a list
//! exceeds. Per-SA host entries (a remote-access client's `/32` as the
//! destination) are one node and one cell each.

use super::acl::{first_match, AclAction, AclError, AclRule, Prefix};
use super::maps::{
    ClsCandRaw, ClsCellRaw, ACL_MAX, ACL_PASS, ACL_STEER, CLS_CAND_MAX, CLS_DST_MAX, CLS_SRC_MAX,
    CLS_WALK_MAX,
};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// What the classifier concludes for a packet (`enum espgw_acl_verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A `permit` line decided: the packet is protected; the index of that
    /// rule in the list.
    Permit(usize),
    /// Only `deny` lines matched: not protected (`pass_acl_deny`).
    Denied,
    /// No line matched: not protected (`pass_no_match`).
    NoMatch,
}

impl Verdict {
    /// The walk over the whole list ([`first_match`]), as a verdict: the
    /// reference the compiled lookup must equal.
    pub fn of_walk(
        rules: &[AclRule],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Verdict {
        if let Some(r) = first_match(rules, src, dst, proto, ports) {
            let i = rules
                .iter()
                .position(|x| std::ptr::eq(x, r))
                .unwrap_or_default();
            return Verdict::Permit(i);
        }
        if rules.iter().any(|r| r.matches(src, dst, proto, ports)) {
            Verdict::Denied
        } else {
            Verdict::NoMatch
        }
    }
}

/// Why a rule list does not fit the classifier.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(
        "packets from {src} to {dst} can be decided by {count} distinct ACL lines (protocols and \
         ports); the classifier walks at most {max} per address pair",
        max = CLS_WALK_MAX
    )]
    CellTooLong {
        src: Prefix,
        dst: Prefix,
        count: usize,
    },
    #[error("the crypto ACL needs {need} {what}; the classifier holds {max}")]
    TooBig {
        what: &'static str,
        need: usize,
        max: usize,
    },
}

/// The compiled rules: what goes into the maps, and the model of the lookup.
#[derive(Debug, Clone, Default)]
pub struct CompiledAcl {
    /// How many rules it was compiled from.
    pub rules: usize,
    /// Distinct destination prefixes and their nodes (`espgw_cls_dst`).
    pub dst: Vec<(Prefix, u32)>,
    /// Cells: node, source prefix, where its candidates are (`espgw_cls_src`;
    /// `start` from the beginning of the bank's half of the candidates).
    pub src: Vec<(u32, Prefix, ClsCellRaw)>,
    /// The candidates of all cells (cells with the same list share it).
    pub cands: Vec<ClsCandRaw>,
    dst_index: HashMap<(u8, u32), u32>,
    dst_lens: Vec<u8>,
    src_index: HashMap<(u32, u8, u32), ClsCellRaw>,
    src_lens: Vec<u8>,
}

fn mask(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn key(p: &Prefix) -> (u8, u32) {
    (p.len, u32::from(p.addr))
}

/// Rule indices grouped by one of their prefixes, each group in list order.
type ByPrefix = HashMap<(u8, u32), Vec<u32>>;

fn group_by(rules: &[AclRule], idx: &[u32], prefix: impl Fn(&AclRule) -> Prefix) -> ByPrefix {
    let mut g = ByPrefix::new();
    for &i in idx {
        g.entry(key(&prefix(&rules[i as usize])))
            .or_default()
            .push(i);
    }
    g
}

/// The groups' keys, sorted.
fn keys_of(g: &ByPrefix) -> Vec<(u8, u32)> {
    let mut k: Vec<(u8, u32)> = g.keys().copied().collect();
    k.sort_unstable();
    k
}

/// The rules of every group whose prefix holds `p` (itself included), in
/// list order.
fn held_by(p: &Prefix, g: &ByPrefix) -> Vec<u32> {
    let a = u32::from(p.addr);
    let mut v: Vec<u32> = (0..=p.len)
        .filter_map(|l| g.get(&(l, mask(a, l))))
        .flatten()
        .copied()
        .collect();
    v.sort_unstable();
    v
}

/// One candidate while pruning: the rule's match on protocol and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Cond {
    proto: u8,
    sport: (u16, u16),
    dport: (u16, u16),
    /// Whether it matches a packet without ports (a permit always; a deny
    /// only without port restrictions).
    portless: bool,
}

impl Cond {
    fn of(r: &AclRule) -> Cond {
        Cond {
            proto: r.proto,
            sport: r.sport,
            dport: r.dport,
            portless: r.action == AclAction::Permit || !r.has_ports(),
        }
    }

    /// Every packet `other` matches, `self` matches.
    fn covers(&self, other: &Cond) -> bool {
        let within = |a: (u16, u16), b: (u16, u16)| a.0 <= b.0 && b.1 <= a.1;
        (self.proto == 0 || self.proto == other.proto)
            && within(self.sport, other.sport)
            && within(self.dport, other.dport)
            && (self.portless || !other.portless)
    }

    fn matches_everything(&self) -> bool {
        self.proto == 0
            && self.sport == (0, u16::MAX)
            && self.dport == (0, u16::MAX)
            && self.portless
    }
}

#[derive(Debug, Clone, Copy)]
struct Cand {
    cond: Cond,
    deny: bool,
    run: u32,
    rule: u32,
}

impl Cand {
    fn raw(&self) -> ClsCandRaw {
        ClsCandRaw {
            sport_lo: self.cond.sport.0,
            sport_hi: self.cond.sport.1,
            dport_lo: self.cond.dport.0,
            dport_hi: self.cond.dport.1,
            proto: self.cond.proto,
            action: if self.deny { ACL_PASS } else { ACL_STEER },
            pad: 0,
            run: self.run,
            rule: self.rule,
        }
    }
}

/// A cell's candidates, in list order, less the rules that never decide
/// there; `None` when more than [`CLS_WALK_MAX`] remain.
///
/// Left out, each for a reason that holds for every packet of the cell:
/// - a rule whose run has an earlier kept line covering it (that line
///   decides the run first);
/// - a rule covered by an earlier kept `permit` that no `deny` of its own
///   run precedes (that permit decides the packet first), and everything
///   after such a permit that matches every packet;
/// - a `deny` with no `permit` of its run after it blocks nothing: it only
///   turns "no match" into "denied". Such denies move to the end, one of
///   each distinct match, and go altogether when an unconditional permit
///   makes "denied" impossible.
fn prune(cands: impl Iterator<Item = Cand>) -> Option<Vec<ClsCandRaw>> {
    let mut kept: Vec<Cand> = Vec::new();
    let mut by_run: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut clean: Vec<usize> = Vec::new();
    let mut dirty: HashSet<u32> = HashSet::new();
    let mut permits = 0usize;
    let mut decided = false;
    for c in cands {
        let run = by_run.entry(c.run).or_default();
        if run.iter().any(|&k| kept[k].cond.covers(&c.cond)) {
            continue;
        }
        if clean.iter().any(|&k| kept[k].cond.covers(&c.cond)) {
            continue;
        }
        run.push(kept.len());
        if c.deny {
            dirty.insert(c.run);
        } else {
            permits += 1;
            if permits > CLS_WALK_MAX as usize {
                return None;
            }
            if !dirty.contains(&c.run) {
                clean.push(kept.len());
                if c.cond.matches_everything() {
                    kept.push(c);
                    decided = true;
                    break;
                }
            }
        }
        kept.push(c);
    }
    let mut last_permit: HashMap<u32, usize> = HashMap::new();
    for (i, c) in kept.iter().enumerate() {
        if !c.deny {
            last_permit.insert(c.run, i);
        }
    }
    let mut out: Vec<ClsCandRaw> = Vec::new();
    let mut inert: Vec<Cand> = Vec::new();
    for (i, c) in kept.iter().enumerate() {
        let blocks = last_permit.get(&c.run).is_some_and(|&p| p > i);
        if !c.deny || blocks {
            out.push(c.raw());
        } else if !decided && !inert.iter().any(|q| q.cond.covers(&c.cond)) {
            inert.retain(|q| !c.cond.covers(&q.cond));
            inert.push(*c);
            if out.len() + inert.len() > CLS_WALK_MAX as usize {
                return None;
            }
        }
    }
    out.extend(inert.iter().map(Cand::raw));
    (out.len() <= CLS_WALK_MAX as usize).then_some(out)
}

/// Whether candidate `c` matches a packet with this protocol and ports
/// (the test of `acl_walk`).
fn cand_matches(c: &ClsCandRaw, proto: u8, ports: Option<(u16, u16)>) -> bool {
    if c.proto != 0 && c.proto != proto {
        return false;
    }
    match ports {
        Some((sp, dp)) => {
            (c.sport_lo..=c.sport_hi).contains(&sp) && (c.dport_lo..=c.dport_hi).contains(&dp)
        }
        None => {
            c.action == ACL_STEER
                || (c.sport_lo == 0
                    && c.sport_hi == u16::MAX
                    && c.dport_lo == 0
                    && c.dport_hi == u16::MAX)
        }
    }
}

/// `acl_walk`'s walk over one cell.
fn walk(cands: &[ClsCandRaw], proto: u8, ports: Option<(u16, u16)>) -> Verdict {
    let mut skip: Option<u32> = None;
    let mut denied = false;
    for c in cands {
        if skip == Some(c.run) {
            continue;
        }
        skip = None;
        if !cand_matches(c, proto, ports) {
            continue;
        }
        if c.action == ACL_STEER {
            return Verdict::Permit(c.rule as usize);
        }
        denied = true;
        skip = Some(c.run);
    }
    if denied {
        Verdict::Denied
    } else {
        Verdict::NoMatch
    }
}

impl CompiledAcl {
    /// Compiles `rules` (evaluated in order, runs of one `policy` forming a
    /// crypto map entry, as [`first_match`] reads them).
    pub fn compile(rules: &[AclRule]) -> Result<CompiledAcl, CompileError> {
        if rules.len() > ACL_MAX as usize {
            return Err(AclError::TooMany(rules.len()).into());
        }
        let mut runs = Vec::with_capacity(rules.len());
        let mut run = 0u32;
        for (i, r) in rules.iter().enumerate() {
            if i > 0 && r.policy != rules[i - 1].policy {
                run += 1;
            }
            runs.push(run);
        }
        let all: Vec<u32> = (0..rules.len() as u32).collect();
        let by_dst = group_by(rules, &all, |r| r.dst);
        let dsts = keys_of(&by_dst);
        let too_big = |what, need, max: u32| CompileError::TooBig {
            what,
            need,
            max: max as usize / 2,
        };
        if dsts.len() > CLS_DST_MAX as usize / 2 {
            return Err(too_big(
                "distinct destination prefixes",
                dsts.len(),
                CLS_DST_MAX,
            ));
        }
        let mut out = CompiledAcl {
            rules: rules.len(),
            ..CompiledAcl::default()
        };
        let mut lists: HashMap<Vec<ClsCandRaw>, ClsCellRaw> = HashMap::new();
        let prefix = |(len, a): (u8, u32)| Prefix {
            addr: Ipv4Addr::from(a),
            len,
        };
        for (node, &d) in dsts.iter().enumerate() {
            let node = node as u32;
            let dp = prefix(d);
            // The rules matching on this node's destinations, in order.
            let rd = held_by(&dp, &by_dst);
            let by_src = group_by(rules, &rd, |r| r.src);
            for s in keys_of(&by_src) {
                let sp = prefix(s);
                let rc = held_by(&sp, &by_src);
                let cands = rc.iter().map(|&i| {
                    let r = &rules[i as usize];
                    Cand {
                        cond: Cond::of(r),
                        deny: r.action == AclAction::Deny,
                        run: runs[i as usize],
                        rule: i,
                    }
                });
                let list = prune(cands).ok_or(CompileError::CellTooLong {
                    src: sp,
                    dst: dp,
                    count: rc.len(),
                })?;
                let cell = match lists.get(&list) {
                    Some(c) => *c,
                    None => {
                        let c = ClsCellRaw {
                            start: out.cands.len() as u32,
                            count: list.len() as u32,
                        };
                        out.cands.extend_from_slice(&list);
                        if out.cands.len() > CLS_CAND_MAX as usize / 2 {
                            return Err(too_big(
                                "classifier candidates",
                                out.cands.len(),
                                CLS_CAND_MAX,
                            ));
                        }
                        lists.insert(list, c);
                        c
                    }
                };
                out.src.push((node, sp, cell));
                if out.src.len() > CLS_SRC_MAX as usize / 2 {
                    return Err(too_big(
                        "classifier cells (source prefixes per destination)",
                        out.src.len(),
                        CLS_SRC_MAX,
                    ));
                }
                out.src_index.insert((node, s.0, s.1), cell);
            }
            out.dst.push((dp, node));
            out.dst_index.insert(d, node);
        }
        let lens = |it: &mut dyn Iterator<Item = u8>| {
            let mut v: Vec<u8> = it.collect::<HashSet<u8>>().into_iter().collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            v
        };
        out.dst_lens = lens(&mut out.dst.iter().map(|(p, _)| p.len));
        out.src_lens = lens(&mut out.src.iter().map(|(_, p, _)| p.len));
        Ok(out)
    }

    /// The classifier's verdict on a packet (the inside's question), as the
    /// BPF lookup reaches it: longest destination prefix, longest source
    /// prefix of that node, walk of the cell.
    pub fn lookup(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Verdict {
        let (s, d) = (u32::from(src), u32::from(dst));
        let Some(node) = self
            .dst_lens
            .iter()
            .find_map(|&l| self.dst_index.get(&(l, mask(d, l))))
        else {
            return Verdict::NoMatch;
        };
        let Some(cell) = self
            .src_lens
            .iter()
            .find_map(|&l| self.src_index.get(&(*node, l, mask(s, l))))
        else {
            return Verdict::NoMatch;
        };
        let at = cell.start as usize;
        walk(&self.cands[at..at + cell.count as usize], proto, ports)
    }

    /// The outside's question: is a packet arriving in clear one whose
    /// mirror the rules protect (the tuple swapped, as
    /// [`first_match_inbound`](super::acl::first_match_inbound) asks)?
    pub fn lookup_inbound(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Verdict {
        self.lookup(dst, src, proto, ports.map(|(sp, dp)| (dp, sp)))
    }
}

/// The size of a compiled rule list (what the maps hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AclShape {
    pub rules: usize,
    /// Distinct destination prefixes (nodes).
    pub nodes: usize,
    /// (node, source prefix) cells.
    pub cells: usize,
    /// Candidates stored (cells with the same list share theirs).
    pub candidates: usize,
}

impl std::fmt::Display for AclShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rule(s): {} destination prefix(es), {} cell(s), {} candidate(s)",
            self.rules, self.nodes, self.cells, self.candidates
        )
    }
}

impl CompiledAcl {
    pub fn shape(&self) -> AclShape {
        AclShape {
            rules: self.rules,
            nodes: self.dst.len(),
            cells: self.src.len(),
            candidates: self.cands.len(),
        }
    }
}

/// A rule list with its compiled form: what the workers consult to name
/// the crypto map entry of interesting traffic that has no SA (the same
/// lookup the inside classifier made to steer it).
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    pub rules: Vec<AclRule>,
    pub compiled: CompiledAcl,
}

impl AclSet {
    pub fn new(rules: Vec<AclRule>) -> Result<AclSet, CompileError> {
        let compiled = CompiledAcl::compile(&rules)?;
        Ok(AclSet { rules, compiled })
    }

    /// The `permit` rule that protects a packet and its index in the list
    /// ([`first_match`]'s answer, at the compiled lookup's cost).
    pub fn protecting(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Option<(usize, &AclRule)> {
        match self.compiled.lookup(src, dst, proto, ports) {
            Verdict::Permit(i) => self.rules.get(i).map(|r| (i, r)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp::acl::parse_rules;
    use proptest::prelude::*;

    /// A deny sends the packet on to the next entry; an entry whose
    /// deny matches last leaves it "denied", one nothing matches "no match".
    #[test]
    fn deny_skips_to_the_next_entry_as_the_walk_does() {
        let rules = parse_rules(
            "deny udp any 10.7.0.0/16 dport 53 policy 5\n\
             permit ip 10.6.0.0/16 10.7.0.0/16 policy 5\n\
             deny ip host 10.6.0.9 10.7.1.0/24 policy 15\n\
             permit udp 10.6.0.0/24 10.7.1.0/24 policy 15\n\
             permit udp any 10.7.1.0/24 dport 53 policy 25\n",
        )
        .unwrap();
        let c = CompiledAcl::compile(&rules).unwrap();
        let dns = Some((4000, 53));
        let pick = |s: &str, d: &str, ports| c.lookup(ip(s), ip(d), 17, ports);
        assert_eq!(
            pick("10.6.0.2", "10.7.1.2", Some((4000, 80))),
            Verdict::Permit(1)
        );
        assert_eq!(pick("10.6.0.2", "10.7.1.2", dns), Verdict::Permit(3));
        assert_eq!(pick("10.6.0.9", "10.7.1.2", dns), Verdict::Permit(4));
        assert_eq!(pick("10.6.0.9", "10.7.2.2", dns), Verdict::Denied);
        assert_eq!(pick("10.5.0.9", "10.7.2.2", Some((1, 2))), Verdict::NoMatch);
        for (s, d, ports) in [
            ("10.6.0.2", "10.7.1.2", dns),
            ("10.6.0.9", "10.7.1.2", dns),
            ("10.6.0.9", "10.7.2.2", dns),
            ("10.6.0.9", "10.7.2.2", None),
        ] {
            assert_eq!(
                pick(s, d, ports),
                Verdict::of_walk(&rules, ip(s), ip(d), 17, ports)
            );
        }
    }

    /// Two runs with the same sequence number apart in the list are two
    /// entries; a cell that holds only those two must keep them apart.
    #[test]
    fn runs_stay_apart_when_the_rules_between_them_are_elsewhere() {
        let rules = parse_rules(
            "deny ip any host 10.1.2.2 policy 10\n\
             permit ip any 10.9.0.0/16 policy 20\n\
             permit ip any 10.1.2.0/24 policy 10\n",
        )
        .unwrap();
        let c = CompiledAcl::compile(&rules).unwrap();
        assert_eq!(
            c.lookup(ip("10.1.1.2"), ip("10.1.2.2"), 6, Some((1, 2))),
            Verdict::Permit(2)
        );
        assert_eq!(
            c.lookup(ip("10.1.1.2"), ip("10.1.2.2"), 6, Some((1, 2))),
            Verdict::of_walk(&rules, ip("10.1.1.2"), ip("10.1.2.2"), 6, Some((1, 2)))
        );
    }

    /// Ten thousand site-to-site entries: one node and one cell each, one
    /// candidate per cell.
    #[test]
    fn ten_thousand_entries_are_one_cell_each() {
        let text: String = (0..10_000u32)
            .map(|i| {
                format!(
                    "permit ip 10.1.0.0/16 10.{}.{}.0/24 policy {} map VPN\n",
                    100 + i / 256,
                    i % 256,
                    i + 1
                )
            })
            .collect();
        let rules = parse_rules(&text).unwrap();
        let c = CompiledAcl::compile(&rules).unwrap();
        assert_eq!(
            (c.dst.len(), c.src.len(), c.cands.len()),
            (10_000, 10_000, 10_000)
        );
        for i in (0..10_000u32).step_by(97) {
            let dst = Ipv4Addr::new(10, (100 + i / 256) as u8, (i % 256) as u8, 7);
            assert_eq!(
                c.lookup(ip("10.1.4.4"), dst, 17, Some((4000, 5000))),
                Verdict::Permit(i as usize)
            );
            assert_eq!(
                c.lookup_inbound(dst, ip("10.1.4.4"), 17, Some((5000, 4000))),
                Verdict::Permit(i as usize)
            );
        }
        assert_eq!(
            c.lookup(ip("10.2.4.4"), ip("10.100.0.1"), 1, None),
            Verdict::NoMatch
        );
    }

    /// The same deny at the head of every entry collapses to one candidate
    /// per cell where no permit of its entry follows.
    #[test]
    fn shared_denies_do_not_pile_up() {
        let mut text = String::new();
        for i in 0..2000u32 {
            let seq = i + 1;
            text.push_str(&format!("deny tcp any any dport 22 policy {seq}\n"));
            text.push_str(&format!(
                "permit ip 10.1.0.0/16 10.{}.{}.0/24 policy {seq}\n",
                100 + i / 256,
                i % 256
            ));
        }
        let rules = parse_rules(&text).unwrap();
        let c = CompiledAcl::compile(&rules).unwrap();
        assert!(c.cands.len() <= 3 * c.src.len(), "{}", c.cands.len());
        let dst = ip("10.101.3.9");
        for (proto, ports) in [
            (6, Some((1000, 22))),
            (6, Some((1000, 80))),
            (6, None),
            (1, None),
        ] {
            assert_eq!(
                c.lookup(ip("10.1.2.3"), dst, proto, ports),
                Verdict::of_walk(&rules, ip("10.1.2.3"), dst, proto, ports)
            );
        }
    }

    #[test]
    fn limits_are_errors() {
        let mut text = String::new();
        for p in 0..(CLS_WALK_MAX + 1) {
            text.push_str(&format!(
                "permit tcp 10.1.1.0/24 10.1.2.0/24 dport {p} policy 10\n"
            ));
        }
        let rules = parse_rules(&text).unwrap();
        assert!(matches!(
            CompiledAcl::compile(&rules),
            Err(CompileError::CellTooLong { .. })
        ));
        let many = vec![rules[0]; ACL_MAX as usize + 1];
        assert!(matches!(
            CompiledAcl::compile(&many),
            Err(CompileError::Acl(AclError::TooMany(_)))
        ));
    }

    /// Random rule lists over a small address space (so prefixes nest and
    /// overlap), with repeated sequence numbers, denies, protocols, port
    /// ranges; random packets, with and without ports.
    fn arb_prefix() -> impl Strategy<Value = Prefix> {
        (
            0u8..4,
            0u8..4,
            prop::sample::select(vec![0u8, 8, 16, 23, 24, 25, 30, 32]),
        )
            .prop_map(|(a, b, len)| {
                Prefix::new(Ipv4Addr::new(10, a, b, (a ^ b) * 37), len).unwrap()
            })
    }

    fn arb_range() -> impl Strategy<Value = (u16, u16)> {
        prop_oneof![
            3 => Just((0, u16::MAX)),
            1 => (0u16..8).prop_map(|p| (p, p)),
            1 => (0u16..8, 0u16..8).prop_map(|(a, b)| (a.min(b), a.max(b))),
        ]
    }

    pub(crate) fn arb_rules(max: usize) -> impl Strategy<Value = Vec<AclRule>> {
        prop::collection::vec(
            (
                prop::bool::weighted(0.6),
                prop::sample::select(vec![0u8, 0, 1, 6, 17]),
                arb_prefix(),
                arb_prefix(),
                arb_range(),
                arb_range(),
                1u16..6,
            )
                .prop_map(|(permit, proto, src, dst, sport, dport, policy)| {
                    let ports = proto == 6 || proto == 17 || proto == 0;
                    AclRule {
                        action: if permit {
                            AclAction::Permit
                        } else {
                            AclAction::Deny
                        },
                        proto,
                        src,
                        dst,
                        sport: if ports { sport } else { (0, u16::MAX) },
                        dport: if ports { dport } else { (0, u16::MAX) },
                        policy,
                        crypto_map: Default::default(),
                    }
                }),
            0..max,
        )
    }

    pub(crate) fn arb_packet() -> impl Strategy<Value = (Ipv4Addr, Ipv4Addr, u8, Option<(u16, u16)>)>
    {
        let addr = (0u8..4, 0u8..4, any::<u8>()).prop_map(|(a, b, c)| Ipv4Addr::new(10, a, b, c));
        (
            addr.clone(),
            addr,
            prop::sample::select(vec![1u8, 6, 17, 47]),
            prop::option::weighted(0.8, (0u16..9, 0u16..9)),
        )
            .prop_map(|(s, d, proto, ports)| {
                let ports = if proto == 6 || proto == 17 {
                    ports
                } else {
                    None
                };
                (s, d, proto, ports)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn compiled_lookup_is_the_walk(
            rules in arb_rules(40),
            pkts in prop::collection::vec(arb_packet(), 64),
        ) {
            let c = CompiledAcl::compile(&rules).unwrap();
            for (s, d, proto, ports) in pkts {
                prop_assert_eq!(
                    c.lookup(s, d, proto, ports),
                    Verdict::of_walk(&rules, s, d, proto, ports),
                    "{} -> {} proto {} {:?}", s, d, proto, ports
                );
                let inbound = super::super::acl::first_match_inbound(&rules, s, d, proto, ports)
                    .is_some();
                prop_assert_eq!(
                    matches!(c.lookup_inbound(s, d, proto, ports), Verdict::Permit(_)),
                    inbound
                );
            }
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
}
