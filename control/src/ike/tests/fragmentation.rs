//! IKE fragmentation between two espgw endpoints over a path that drops every datagram
//! larger than a 1500-byte MTU: 4096-bit rsa-sig chains pass only with fragmentation on,
//! in Main and Aggressive Mode; fragments out of order and duplicated still reassemble;
//! a peer without the vendor ID gets whole messages.

use super::*;
use crate::config::pki::{IsakmpIdentity, RevocationCheck};
use crate::isakmp::fragment::{FragmentRepr, PAYLOAD_FRAGMENT};
use crate::pki::store::parse_private_key;
use crate::pki::{cert::pem_blocks, Cert, Credentials, TrustAnchor};
use std::sync::Arc;
use std::time::SystemTime;

fn file(name: &str) -> String {
    let p = format!("{}/src/pki/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(p).unwrap()
}

fn der(name: &str) -> Vec<u8> {
    pem_blocks(&file(name)).unwrap().remove(0).1
}

fn lab_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

/// Router `n` (r1, r2) with its certificate of `bits` (2048: gen.sh, 4096: gen4096.sh).
fn creds(n: &str, bits: u32) -> Credentials {
    let (key, cert, ca) = match bits {
        4096 => (
            format!("{n}-4096.key"),
            format!("{n}-4096.pem"),
            "ca4096.pem",
        ),
        _ => (format!("{n}.key"), format!("{n}.pem"), "ca.pem"),
    };
    Credentials {
        key: parse_private_key(&file(&key)).unwrap(),
        cert: Some(Cert::from_der(&der(&cert)).unwrap()),
        anchors: vec![TrustAnchor {
            trustpoint: "LAB".into(),
            ca: Cert::from_der(&der(ca)).unwrap(),
            revocation: RevocationCheck::None,
            crl: None,
        }],
        identity: IsakmpIdentity::Address,
        fqdn: None,
        peer_keys: vec![],
        peer_names: vec![],
        clock: lab_clock,
    }
}

fn lab(mode: Phase1Mode, bits: u32, frag_a: Option<u16>, frag_b: Option<u16>) -> Lab {
    let o = Opts {
        mode,
        enc: EncAlg::Aes(128),
        group: DhGroup::Modp2048,
        ..Opts::default()
    };
    let mut lab = Lab::new(&o, &o);
    for (ep, n, frag) in [(&mut lab.a, "r1", frag_a), (&mut lab.b, "r2", frag_b)] {
        let mut cfg = ep.config().clone();
        cfg.keys.clear();
        for p in &mut cfg.policies {
            p.auth = AuthMethod::RsaSig;
        }
        cfg.pki = Some(Arc::new(creds(n, bits)));
        cfg.fragmentation = frag;
        ep.set_config(cfg);
    }
    lab
}

/// What crossed the path.
#[derive(Default, Debug)]
struct Path {
    delivered: usize,
    too_big: usize,
    fragments: usize,
    largest: usize,
}

/// Delivers datagrams both ways until quiet, dropping those whose IP datagram would exceed
/// `mtu` (as a path with DF set does). With `shuffle`, each burst is delivered last first
/// and every fragment twice in a row.
fn run(lab: &mut Lab, mtu: usize, shuffle: bool, path: &mut Path) {
    for _ in 0..200 {
        let mut moved = false;
        for dir in 0..2 {
            let (from, to) = if dir == 0 {
                (&mut lab.a, &mut lab.b)
            } else {
                (&mut lab.b, &mut lab.a)
            };
            let mut burst = vec![];
            while let Some(t) = from.poll_transmit() {
                burst.push(t);
            }
            moved |= !burst.is_empty();
            if shuffle {
                burst.reverse();
                burst = burst
                    .into_iter()
                    .flat_map(|t| {
                        let twice = t.data.get(16) == Some(&PAYLOAD_FRAGMENT);
                        let n = if twice { 2 } else { 1 };
                        std::iter::repeat_n(t, n)
                    })
                    .collect();
            }
            for t in burst {
                path.largest = path.largest.max(t.data.len());
                if t.data.len() + 28 > mtu {
                    path.too_big += 1;
                    continue;
                }
                if let Ok(f) = FragmentRepr::parse(&t.data) {
                    assert!(f.data.len() + 36 <= t.data.len());
                    path.fragments += 1;
                }
                path.delivered += 1;
                to.handle_datagram(lab.now, t.remote, t.local, &t.data);
            }
        }
        while let Some(e) = lab.a.poll_event() {
            lab.ev_a.push(e);
        }
        while let Some(e) = lab.b.poll_event() {
            lab.ev_b.push(e);
        }
        if !moved {
            lab.now += Duration::from_secs(1);
            lab.a.handle_timeout(lab.now);
            lab.b.handle_timeout(lab.now);
            if lab.a.poll_timeout().is_none() && lab.b.poll_timeout().is_none() {
                return;
            }
            if !pairs(&lab.ev_a).is_empty() && !pairs(&lab.ev_b).is_empty() {
                return;
            }
        }
    }
}

#[test]
fn rsa_sig_4096_passes_a_1500_byte_path_only_with_fragmentation() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        for initiator_a in [true, false] {
            let mut lab = lab(mode, 4096, Some(1280), Some(1280));
            let ep = if initiator_a { &mut lab.a } else { &mut lab.b };
            assert!(ep.initiate(lab.now, "vpn", 10));
            let mut path = Path::default();
            run(&mut lab, 1500, false, &mut path);
            assert_tunnel(&lab);
            assert_eq!(path.too_big, 0, "{mode:?}: {path:?}");
            assert!(path.largest + 28 <= 1280, "{mode:?}: {path:?}");
            let (fa, fb) = (lab.a.fragment_counters(), lab.b.fragment_counters());
            // Each side sends its certificate and signature (about 2.5 kB) in fragments.
            assert!(fa.tx_messages >= 1 && fb.tx_messages >= 1, "{fa:?} {fb:?}");
            assert_eq!(fa.rx_reassembled, fb.tx_messages, "{fa:?} {fb:?}");
            assert_eq!(fb.rx_reassembled, fa.tx_messages, "{fa:?} {fb:?}");
            assert_eq!(
                path.fragments as u64,
                fa.tx_fragments + fb.tx_fragments,
                "{path:?}"
            );
            let da = Lab::debug(&mut lab.a).join("\n");
            assert!(da.contains("vendor ID is Fragmentation"), "{da}");
            assert!(da.contains("fragments (id "), "{da}");
        }
    }
}

#[test]
fn rsa_sig_4096_without_fragmentation_does_not_pass_the_path() {
    for (fa, fb) in [(None, None), (Some(1280), None), (None, Some(1280))] {
        let mut lab = lab(Phase1Mode::Main, 4096, fa, fb);
        assert!(lab.a.initiate(lab.now, "vpn", 10));
        let mut path = Path::default();
        run(&mut lab, 1500, false, &mut path);
        assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
        assert!(path.too_big > 0, "{path:?}");
        assert_eq!(path.fragments, 0, "no fragments unless both sides do it");
    }
}

#[test]
fn fragments_out_of_order_and_twice_still_reassemble() {
    for mode in [Phase1Mode::Main, Phase1Mode::Aggressive] {
        let mut lab = lab(mode, 4096, Some(576), Some(576));
        assert!(lab.a.initiate(lab.now, "vpn", 10));
        let mut path = Path::default();
        run(&mut lab, 1500, true, &mut path);
        assert_tunnel(&lab);
        assert!(path.largest + 28 <= 576, "{path:?}");
        let (fa, fb) = (lab.a.fragment_counters(), lab.b.fragment_counters());
        assert!(
            fa.rx_duplicates > 0 && fb.rx_duplicates > 0,
            "{fa:?} {fb:?}"
        );
        assert_eq!(fa.rx_refused + fb.rx_refused, 0, "{fa:?} {fb:?}");
    }
}

#[test]
fn small_messages_and_peers_without_the_vendor_id_get_whole_messages() {
    // 2048 bits on an unlimited path: B does not announce fragmentation, so A sends its
    // 1.5 kB messages whole and the tunnel comes up.
    let mut lab = lab(Phase1Mode::Main, 2048, Some(576), None);
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let mut path = Path::default();
    run(&mut lab, 65535, false, &mut path);
    assert_tunnel(&lab);
    assert_eq!(path.fragments, 0);
    assert!(path.largest + 28 > 576, "{path:?}");
    // Both on, messages that fit go whole: Quick Mode is never cut.
    let mut lab = lab_pair_psk();
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let mut path = Path::default();
    run(&mut lab, 1500, false, &mut path);
    assert_tunnel(&lab);
    assert_eq!(path.fragments, 0, "{path:?}");
}

fn lab_pair_psk() -> Lab {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.configure_both(|c| c.fragmentation = Some(1280));
    lab
}

#[test]
fn fragments_are_dropped_when_fragmentation_is_off() {
    let mut lab = lab(Phase1Mode::Main, 4096, Some(1280), Some(1280));
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let mut path = Path::default();
    run(&mut lab, 1500, false, &mut path);
    assert_tunnel(&lab);
    // A fragment to an endpoint with fragmentation off is counted and dropped.
    let mut off = Endpoint::new(IkeConfig::new(R2), rng(9));
    let whole = vec![0u8; 3000];
    let mut m = whole.clone();
    let h = crate::isakmp::HeaderRepr {
        icookie: [3; 8],
        rcookie: [0; 8],
        next_payload: 1,
        version: crate::isakmp::VERSION_1_0,
        exchange: crate::isakmp::ExchangeType::Main,
        flags: 0,
        message_id: 0,
        length: 3000,
    };
    h.emit(&mut crate::isakmp::Header::new_unchecked(&mut m[..28]));
    let f = crate::isakmp::fragment::fragment(&m, 1, 1000, crate::isakmp::ExchangeType::Main);
    let (from, to): (SocketAddr, SocketAddr) = (
        "172.16.172.10:500".parse().unwrap(),
        "172.16.172.20:500".parse().unwrap(),
    );
    for d in &f {
        off.handle_datagram(lab.now, to, from, d);
    }
    assert_eq!(off.fragment_counters().rx_refused, 3);
    assert_eq!(off.isakmp_sa_count(), 0);
}
