//! The compiled crypto ACL in the kernel: both XDP classifiers, loaded for
//! real (the verifier accepts them), run on frames through
//! `BPF_PROG_TEST_RUN`, with random rule lists installed through
//! `Classifier::set_acl` (each list replacing the last: the bank switch
//! runs every case). What each program did, read from its counters, must be
//! what the straightforward IOS walk over the whole list says
//! (`first_match` / `first_match_inbound`), and what the Rust model of the
//! compiled structure (`CompiledAcl::lookup`) says. Then 10,000 crypto map
//! entries, one packet per entry. Needs root (BPF); no network.

use espgw_dataplane::xdp::acl::{classify_outside, first_match_inbound, parse_rules, AclRule};
use espgw_dataplane::xdp::classify::{CompiledAcl, Verdict};
use espgw_dataplane::xdp::maps::CounterIndex;
use espgw_dataplane::xdp::{Classifier, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::net::Ipv4Addr;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

fn load(side: Side) -> Classifier {
    Classifier::load(side)
        .unwrap_or_else(|e| panic!("loading the {side:?} classifier (needs root, CAP_BPF): {e}"))
}

/// A packet as the classifier sees it: Ethernet, IPv4 (IHL 5), and for
/// TCP/UDP first fragments the ports; `ports: None` on TCP/UDP makes a
/// non-first fragment.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    ports: Option<(u16, u16)>,
}

impl Pkt {
    fn frame(&self) -> Vec<u8> {
        let has_l4 = self.proto == 6 || self.proto == 17;
        let frag_off: u16 = if has_l4 && self.ports.is_none() {
            100
        } else {
            0
        };
        let mut l4 = vec![0u8; 20];
        if let Some((sp, dp)) = self.ports {
            l4[0..2].copy_from_slice(&sp.to_be_bytes());
            l4[2..4].copy_from_slice(&dp.to_be_bytes());
        }
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&frag_off.to_be_bytes());
        f.extend_from_slice(&[64, self.proto, 0, 0]);
        f.extend_from_slice(&self.src.octets());
        f.extend_from_slice(&self.dst.octets());
        f.extend_from_slice(&l4);
        f
    }
}

/// Which counter one run moved, and the action it returned.
fn run_once(c: &Classifier, frame: &[u8]) -> (CounterIndex, u32) {
    let before = c.counters().unwrap();
    let (action, _) = c.test_run(frame, 1).unwrap();
    let after = c.counters().unwrap();
    let moved: Vec<CounterIndex> = CounterIndex::ALL
        .iter()
        .copied()
        .filter(|&i| after[i as usize].packets != before[i as usize].packets)
        .collect();
    assert_eq!(moved.len(), 1, "one run, one counter: {moved:?}");
    (moved[0], action)
}

/// The inside's decision as its counter: permit is a steer, which finds no
/// socket here (`drop_no_xsk`).
fn inside_expected(v: Verdict) -> (CounterIndex, u32) {
    match v {
        Verdict::Permit(_) => (CounterIndex::DropNoXsk, XDP_DROP),
        Verdict::Denied => (CounterIndex::PassAclDeny, XDP_PASS),
        Verdict::NoMatch => (CounterIndex::PassNoMatch, XDP_PASS),
    }
}

/// Rule lines in the text form, over a small address space so that
/// prefixes nest and overlap; a few sequence numbers, so runs repeat and
/// interleave.
fn arb_line() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        2 => Just("any".to_string()),
        2 => (0u8..3, 0u8..3).prop_map(|(a, b)| format!("10.{a}.{b}.0/24")),
        1 => (0u8..3).prop_map(|a| format!("10.{a}.0.0/16")),
        1 => (0u8..3, 0u8..3, 0u8..4).prop_map(|(a, b, c)| format!("host 10.{a}.{b}.{c}")),
        1 => (0u8..3, 0u8..3, 0u8..2).prop_map(|(a, b, c)| format!("10.{a}.{b}.{}/26", c * 64)),
        1 => Just("10.0.0.0/8".to_string()),
    ];
    let ports = prop_oneof![
        4 => Just(String::new()),
        1 => (0u16..6).prop_map(|p| format!(" sport {p}")),
        1 => (0u16..6, 0u16..6).prop_map(|(a, b)| format!(" dport {}-{}", a.min(b), a.max(b))),
    ];
    (
        prop::sample::select(vec!["permit", "permit", "deny"]),
        prop::sample::select(vec!["ip", "tcp", "udp", "icmp", "ip"]),
        prefix.clone(),
        prefix,
        ports,
        1u16..5,
    )
        .prop_map(|(action, proto, src, dst, ports, seq)| {
            let ports = if proto == "icmp" {
                String::new()
            } else {
                ports
            };
            format!("{action} {proto} {src} {dst}{ports} policy {seq}")
        })
}

fn arb_pkt() -> impl Strategy<Value = Pkt> {
    let addr = (
        0u8..3,
        0u8..3,
        prop::sample::select(vec![0u8, 1, 2, 3, 70, 130, 200]),
    )
        .prop_map(|(a, b, c)| Ipv4Addr::new(10, a, b, c));
    (
        addr.clone(),
        addr,
        prop::sample::select(vec![1u8, 6, 17, 47]),
        prop::option::weighted(0.8, (0u16..7, 0u16..7)),
    )
        .prop_map(|(src, dst, proto, ports)| Pkt {
            src,
            dst,
            proto,
            ports: if proto == 6 || proto == 17 {
                ports
            } else {
                None
            },
        })
}

#[test]
fn both_classifiers_decide_as_the_ios_walk_on_random_rule_lists() {
    let inside = RefCell::new(load(Side::Inside));
    let outside = RefCell::new(load(Side::Outside));
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(arb_line(), 0..48),
        prop::collection::vec(arb_pkt(), 40),
    );
    runner
        .run(&strategy, |(lines, pkts)| {
            let rules: Vec<AclRule> = parse_rules(&lines.join("\n")).unwrap();
            let model = CompiledAcl::compile(&rules).unwrap();
            inside.borrow_mut().set_acl(&rules).unwrap();
            outside.borrow_mut().set_acl(&rules).unwrap();
            for p in &pkts {
                let frame = p.frame();
                let walk = Verdict::of_walk(&rules, p.src, p.dst, p.proto, p.ports);
                prop_assert_eq!(model.lookup(p.src, p.dst, p.proto, p.ports), walk);
                let got = run_once(&inside.borrow(), &frame);
                prop_assert_eq!(
                    got,
                    inside_expected(walk),
                    "inside {:?}\n{}",
                    p,
                    lines.join("\n")
                );
                // The outside with no local address: every packet is clear
                // traffic under the mirrored ACL.
                let want = classify_outside(&rules, |_| false, &frame);
                let protected =
                    first_match_inbound(&rules, p.src, p.dst, p.proto, p.ports).is_some();
                prop_assert_eq!(want == CounterIndex::DropClearProtected, protected);
                let got = run_once(&outside.borrow(), &frame);
                prop_assert_eq!(got.0, want, "outside {:?}\n{}", p, lines.join("\n"));
                prop_assert_eq!(got.1, if protected { XDP_DROP } else { XDP_PASS });
            }
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
}

/// 10,000 site-to-site entries (each its own remote /24, a shared local
/// /16, a deny line first as many configurations have): one packet per
/// entry, in both directions; traffic of no entry, and denied traffic,
/// passes.
#[test]
fn ten_thousand_crypto_map_entries_classify_one_packet_each() {
    let mut text = String::new();
    for i in 0..10_000u32 {
        let seq = i + 1;
        let remote = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
        text.push_str(&format!(
            "deny tcp 10.1.0.0/16 {remote} dport 23 policy {seq} map VPN\n"
        ));
        text.push_str(&format!(
            "permit ip 10.1.0.0/16 {remote} policy {seq} map VPN\n"
        ));
    }
    let rules = parse_rules(&text).unwrap();
    let mut inside = load(Side::Inside);
    let mut outside = load(Side::Outside);
    let shape = inside.set_acl(&rules).unwrap();
    outside.set_acl(&rules).unwrap();
    assert_eq!(
        (shape.rules, shape.nodes, shape.cells),
        (20_000, 10_000, 10_000)
    );
    for i in 0..10_000u32 {
        let remote_host = Ipv4Addr::new(10, (100 + i / 256) as u8, (i % 256) as u8, 9);
        let local = Ipv4Addr::new(10, 1, (i % 200) as u8, 7);
        let udp = |src, dst, ports| Pkt {
            src,
            dst,
            proto: 17,
            ports: Some(ports),
        };
        // Outbound steered; its reply arriving in clear dropped.
        let out = udp(local, remote_host, (40000, 7000));
        let back = udp(remote_host, local, (7000, 40000));
        for (cls, p, want) in [
            (&inside, out, CounterIndex::DropNoXsk),
            (&outside, back, CounterIndex::DropClearProtected),
        ] {
            assert_eq!(run_once(cls, &p.frame()), (want, XDP_DROP), "{p:?}");
        }
        if i % 1000 == 0 {
            let telnet = Pkt {
                ports: Some((40000, 23)),
                proto: 6,
                ..out
            };
            assert_eq!(
                run_once(&inside, &telnet.frame()),
                (CounterIndex::PassAclDeny, XDP_PASS)
            );
            let stranger = Pkt {
                src: Ipv4Addr::new(10, 2, 0, 1),
                ..out
            };
            assert_eq!(
                run_once(&inside, &stranger.frame()),
                (CounterIndex::PassNoMatch, XDP_PASS)
            );
        }
    }
}
