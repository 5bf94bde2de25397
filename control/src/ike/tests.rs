//! Two espgw endpoints against each other in-process, on a virtual clock.

use super::crypto::*;
use super::*;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

struct SeqRng(rand_chacha::ChaCha8Rng);
impl Random for SeqRng {
    fn fill(&mut self, b: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut self.0, b)
    }
}
fn rng(seed: u64) -> Box<dyn Random + Send> {
    Box::new(SeqRng(
        <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed),
    ))
}

const R1: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 10);
const R2: Ipv4Addr = Ipv4Addr::new(172, 16, 172, 20);
/// Just past the first retransmission (IOS resends after 10 s).
const PAST_FIRST_RETRANSMIT: Duration = Duration::from_secs(11);

fn net(a: &str) -> Proxy {
    Proxy::subnet(a.parse().unwrap(), Ipv4Addr::new(255, 255, 255, 0))
}

#[derive(Clone)]
struct Opts {
    enc: EncAlg,
    hash: HashAlg,
    group: DhGroup,
    psk: &'static str,
    esp: (EspEnc, Option<EspAuth>),
    pfs: Option<DhGroup>,
    mode: Phase1Mode,
    lifetime: u32,
    dpd: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            enc: EncAlg::Des3,
            hash: HashAlg::Sha1,
            group: DhGroup::Modp768,
            psk: "C!scO",
            esp: (EspEnc::Des3, Some(EspAuth::Md5)),
            pfs: None,
            mode: Phase1Mode::Main,
            lifetime: 3600,
            dpd: false,
        }
    }
}

fn cfg(me: Ipv4Addr, peer: Ipv4Addr, local: &str, remote: &str, o: &Opts) -> IkeConfig {
    let mut c = IkeConfig::new(me);
    c.policies.push(IsakmpPolicy {
        priority: 1,
        enc: o.enc,
        hash: o.hash,
        group: o.group,
        lifetime: 86400,
        auth: AuthMethod::PreShared,
    });
    c.keys.push(PreSharedKey {
        addr: peer,
        mask: Ipv4Addr::new(255, 255, 255, 255),
        key: Zeroizing::new(o.psk.as_bytes().to_vec()),
    });
    c.maps.push(CryptoMapEntry {
        map: "vpn".into(),
        seq: 10,
        peer,
        transform_sets: vec![TransformSet {
            name: "myset".into(),
            enc: o.esp.0,
            auth: o.esp.1,
            transport: false,
        }],
        pfs: o.pfs,
        lifetime_secs: o.lifetime,
        lifetime_kb: 4_608_000,
        local_proxy: net(local),
        remote_proxy: net(remote),
        mode: o.mode,
        interface: "Ethernet1/0".into(),
    });
    if o.dpd {
        c.dpd = Some((Duration::from_secs(10), Duration::from_secs(2)));
    }
    c
}

struct Lab {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    ev_a: Vec<Event>,
    ev_b: Vec<Event>,
    /// Drop the next n datagrams from a to b.
    drop_a_to_b: usize,
    /// b is dead: datagrams to it vanish and it sends nothing.
    b_dead: bool,
    delivered: usize,
}

impl Lab {
    fn new(oa: &Opts, ob: &Opts) -> Lab {
        let mut a = Endpoint::new(cfg(R1, R2, "10.1.1.0", "10.1.2.0", oa), rng(1));
        let mut b = Endpoint::new(cfg(R2, R1, "10.1.2.0", "10.1.1.0", ob), rng(2));
        a.debug_isakmp = true;
        a.debug_ipsec = true;
        b.debug_isakmp = true;
        b.debug_ipsec = true;
        Lab {
            a,
            b,
            now: Instant::now(),
            ev_a: vec![],
            ev_b: vec![],
            drop_a_to_b: 0,
            b_dead: false,
            delivered: 0,
        }
    }
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                if self.drop_a_to_b > 0 {
                    self.drop_a_to_b -= 1;
                    continue;
                }
                if self.b_dead {
                    continue;
                }
                self.delivered += 1;
                self.b.handle_datagram(self.now, t.remote, t.local, &t.data);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                if self.b_dead {
                    continue;
                }
                self.delivered += 1;
                self.a.handle_datagram(self.now, t.remote, t.local, &t.data);
            }
            while let Some(e) = self.a.poll_event() {
                self.ev_a.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.ev_b.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("ping-pong never settled");
    }
    /// Advances the virtual clock to `until`, firing timers on the way.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = [
                self.a.poll_timeout(),
                if self.b_dead {
                    None
                } else {
                    self.b.poll_timeout()
                },
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    if !self.b_dead {
                        self.b.handle_timeout(self.now);
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
        self.pump();
    }
    /// Changes both routers' configuration the same way.
    fn configure_both(&mut self, f: impl Fn(&mut IkeConfig)) {
        for ep in [&mut self.a, &mut self.b] {
            let mut c = ep.config().clone();
            f(&mut c);
            ep.set_config(c);
        }
    }
    fn debug(e: &mut Endpoint) -> Vec<String> {
        let mut v = vec![];
        while let Some(l) = e.poll_debug() {
            v.push(l.text);
        }
        v
    }
}

fn pairs(ev: &[Event]) -> Vec<(IpsecSa, IpsecSa)> {
    ev.iter()
        .filter_map(|e| {
            if let Event::IpsecSaUp { inbound, outbound } = e {
                Some((inbound.clone(), outbound.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn assert_tunnel(lab: &Lab) -> (IpsecSa, IpsecSa) {
    let pa = pairs(&lab.ev_a);
    let pb = pairs(&lab.ev_b);
    assert_eq!(pa.len(), 1, "a: {:?}", lab.ev_a);
    assert_eq!(pb.len(), 1, "b: {:?}", lab.ev_b);
    let (ain, aout) = &pa[0];
    let (bin, bout) = &pb[0];
    assert_eq!(aout.spi, bin.spi);
    assert_eq!(bout.spi, ain.spi);
    assert_eq!(*aout.enc_key, *bin.enc_key);
    assert_eq!(*aout.auth_key, *bin.auth_key);
    assert_eq!(*bout.enc_key, *ain.enc_key);
    assert_ne!(
        *ain.enc_key, *aout.enc_key,
        "each direction has its own keys"
    );
    assert_eq!(ain.enc_key.len(), ain.transform.enc.key_len());
    assert_eq!(
        ain.auth_key.len(),
        ain.transform.auth.map_or(0, |a| a.key_len())
    );
    assert_eq!(aout.src_proxy, net("10.1.1.0"));
    assert_eq!(aout.dst_proxy, net("10.1.2.0"));
    (ain.clone(), aout.clone())
}

fn up(oa: &Opts, ob: &Opts) -> Lab {
    let mut lab = Lab::new(oa, ob);
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    lab.pump();
    lab
}

#[test]
fn main_mode_quick_mode_debug_shows_the_slides_state_sequence() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    assert_tunnel(&lab);
    let dbg = Lab::debug(&mut lab.a);
    let states: Vec<&str> = dbg
        .iter()
        .filter(|l| l.starts_with("Old State"))
        .map(|s| s.as_str())
        .collect();
    let want = [
        "Old State = IKE_READY  New State = IKE_I_MM1",
        "Old State = IKE_I_MM1  New State = IKE_I_MM2",
        "Old State = IKE_I_MM2  New State = IKE_I_MM2",
        "Old State = IKE_I_MM2  New State = IKE_I_MM3",
        "Old State = IKE_I_MM3  New State = IKE_I_MM4",
        "Old State = IKE_I_MM4  New State = IKE_I_MM4",
        "Old State = IKE_I_MM4  New State = IKE_I_MM5",
        "Old State = IKE_I_MM5  New State = IKE_I_MM6",
        "Old State = IKE_I_MM6  New State = IKE_P1_COMPLETE",
        "Old State = IKE_QM_READY  New State = IKE_QM_I_QM1",
        "Old State = IKE_QM_I_QM1  New State = IKE_QM_PHASE2_COMPLETE",
    ];
    assert_eq!(states, want, "{}", dbg.join("\n"));
    let text = dbg.join("\n");
    for needle in [
        "IPsec(sa_request): ,",
        "beginning Main Mode exchange",
        "Checking ISAKMP transform 1 against priority 1 policy",
        "ISAKMP:      encryption 3DES-CBC",
        "ISAKMP:      hash SHA",
        "ISAKMP:      default group 1",
        "ISAKMP:      auth pre-share",
        "ISAKMP:      life duration (VPI) of  0x0 0x1 0x51 0x80",
        "atts are acceptable. Next payload is 0",
        "SKEYID state generated",
        "SA has been authenticated with 172.16.172.20",
        "beginning Quick Mode exchange, M-ID of",
        "Creating IPsec SAs",
        "IPsec(initialize_sas): ,",
        "IPsec(create_sa): sa created,",
        "local_proxy= 10.1.1.0/255.255.255.0/0/0 (type=4),",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // responder side
    let rd = Lab::debug(&mut lab.b).join("\n");
    assert!(
        rd.contains("Old State = IKE_R_MM5  New State = IKE_P1_COMPLETE"),
        "{rd}"
    );
    assert!(
        rd.contains("Old State = IKE_QM_R_QM2  New State = IKE_QM_PHASE2_COMPLETE"),
        "{rd}"
    );
    assert!(
        !text.contains("C!scO") && !rd.contains("C!scO"),
        "PSK never logged"
    );
    // show views
    let s = lab.a.isakmp_sas();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].state, "QM_IDLE");
    assert_eq!((s[0].dst, s[0].src), (R2, R1));
    let ip = lab.a.ipsec_sas(lab.now);
    assert_eq!(ip.len(), 1);
    assert!(!ip[0].udp_encap);
}

#[test]
fn aes_sha_group14_main_mode() {
    let o = Opts {
        enc: EncAlg::Aes(128),
        hash: HashAlg::Sha1,
        group: DhGroup::Modp2048,
        esp: (EspEnc::Aes(128), Some(EspAuth::Sha1)),
        ..Default::default()
    };
    let lab = up(&o, &o);
    let (i, _) = assert_tunnel(&lab);
    assert_eq!(i.enc_key.len(), 16);
    assert_eq!(i.auth_key.len(), 20);
}

#[test]
fn gcm_quick_mode_keymat_carries_the_salt() {
    for bits in [128u16, 256] {
        let o = Opts {
            enc: EncAlg::Aes(128),
            hash: HashAlg::Sha1,
            group: DhGroup::Modp2048,
            esp: (EspEnc::Gcm(bits), None),
            ..Default::default()
        };
        let lab = up(&o, &o);
        let (i, _) = assert_tunnel(&lab);
        // RFC 4106 §8.1: the key and a 4-byte salt; no integrity key.
        assert_eq!(i.enc_key.len(), bits as usize / 8 + 4);
        assert!(i.auth_key.is_empty());
        assert_eq!(
            i.transform.ios_name(),
            if bits == 128 {
                "esp-gcm"
            } else {
                "esp-gcm 256"
            }
        );
    }
}

#[test]
fn aggressive_mode_both_suites() {
    for o in [
        Opts {
            mode: Phase1Mode::Aggressive,
            enc: EncAlg::Des3,
            hash: HashAlg::Md5,
            group: DhGroup::Modp1024,
            ..Default::default()
        },
        Opts {
            mode: Phase1Mode::Aggressive,
            enc: EncAlg::Aes(256),
            hash: HashAlg::Sha256,
            group: DhGroup::Modp2048,
            esp: (EspEnc::Aes(256), Some(EspAuth::Sha256)),
            ..Default::default()
        },
    ] {
        let mut lab = up(&o, &o);
        // Quick Mode waits a moment after AM3 (multi-threaded responders reorder).
        assert_eq!(lab.a.ipsec_sa_pair_count(), 0);
        lab.advance(Duration::from_secs(1));
        assert_tunnel(&lab);
        let d = Lab::debug(&mut lab.a).join("\n");
        assert!(
            d.contains("Old State = IKE_I_AM2  New State = IKE_P1_COMPLETE"),
            "{d}"
        );
    }
}

#[test]
fn pfs_group2_and_group14() {
    for g in [DhGroup::Modp1024, DhGroup::Modp2048] {
        let o = Opts {
            pfs: Some(g),
            ..Default::default()
        };
        let lab = up(&o, &o);
        assert_tunnel(&lab);
    }
    // PFS required by the responder but not offered: refused.
    let mut lab = up(
        &Opts::default(),
        &Opts {
            pfs: Some(DhGroup::Modp1024),
            ..Default::default()
        },
    );
    assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
    let d = Lab::debug(&mut lab.b).join("\n");
    assert!(d.contains("phase 2 SA policy not acceptable!"), "{d}");
}

#[test]
fn wrong_psk_fails_cleanly_on_both_sides() {
    let mut lab = up(
        &Opts::default(),
        &Opts {
            psk: "wrong",
            ..Default::default()
        },
    );
    lab.advance(Duration::from_secs(120));
    assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
    let d = Lab::debug(&mut lab.b).join("\n");
    assert!(d.contains("%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 172.16.172.10 failed its sanity check or is malformed"), "{d}");
    assert!(
        d.contains("incrementing error counter on sa, attempt 1 of 5"),
        "{d}"
    );
    assert!(lab
        .ev_a
        .iter()
        .any(|e| matches!(e, Event::NegotiationFailed { .. })));
    assert_eq!(lab.a.isakmp_sa_count(), 0);
    assert_eq!(lab.b.isakmp_sa_count(), 0);
    // One failed negotiation each, by the reason each side could know: B could not read
    // A's MM5 under its keys (the keys differ: auth_failed); A heard nothing back.
    let (fa, fb) = (lab.a.counters.p1_failed, lab.b.counters.p1_failed);
    assert_eq!((fb.total(), fb.get(FailReason::AuthFailed)), (1, 1));
    assert_eq!(
        (fa.total(), fa.get(FailReason::RetransmissionsExhausted)),
        (1, 1)
    );
}

/// The `%CRYPTO-…` messages come out of `poll_syslog` as values, with debugging off too,
/// and the debug queue stays empty.
#[test]
fn syslog_messages_are_queued_without_debug() {
    let o = Opts::default();
    let mut lab = Lab::new(
        &o,
        &Opts {
            psk: "wrong",
            ..Default::default()
        },
    );
    for ep in [&mut lab.a, &mut lab.b] {
        ep.debug_isakmp = false;
        ep.debug_ipsec = false;
    }
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    lab.pump();
    lab.advance(Duration::from_secs(120));
    assert!(Lab::debug(&mut lab.b).is_empty());
    let mut msgs = vec![];
    while let Some(m) = lab.b.poll_syslog() {
        msgs.push(m);
    }
    assert!(!msgs.is_empty());
    let m = &msgs[0];
    assert_eq!(
        (m.facility, m.severity, m.mnemonic),
        ("CRYPTO", crate::ike::syslog::WARNINGS, "IKMP_BAD_MESSAGE")
    );
    assert_eq!(
        m.text,
        "IKE message from 172.16.172.10 failed its sanity check or is malformed"
    );
    // One per refused message, as the error counter counts them.
    let errors = lab.b.counters.rx_malformed + lab.b.counters.rx_hash_failed;
    assert_eq!(msgs.len() as u64, errors);
}

#[test]
fn phase1_proposal_mismatch() {
    let mut lab = up(
        &Opts::default(),
        &Opts {
            enc: EncAlg::Aes(128),
            ..Default::default()
        },
    );
    lab.advance(Duration::from_secs(1));
    let d = Lab::debug(&mut lab.b).join("\n");
    assert!(
        d.contains("atts are not acceptable. Next payload is 0"),
        "{d}"
    );
    assert!(d.contains("phase 1 SA policy not acceptable!"), "{d}");
    assert_eq!(lab.b.isakmp_sa_count(), 0);
    let da = Lab::debug(&mut lab.a).join("\n");
    assert!(da.contains("phase 1 SA policy not acceptable!"), "{da}");
    lab.advance(Duration::from_secs(1));
    assert_eq!(lab.a.isakmp_sa_count(), 0);
}

#[test]
fn phase2_proposal_mismatch() {
    let mut lab = up(
        &Opts::default(),
        &Opts {
            esp: (EspEnc::Aes(128), Some(EspAuth::Sha1)),
            ..Default::default()
        },
    );
    assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
    let d = Lab::debug(&mut lab.b).join("\n");
    assert!(
        d.contains("phase 2 SA policy not acceptable! (local 172.16.172.20 remote 172.16.172.10)"),
        "{d}"
    );
    assert!(
        d.contains(
            "IPSEC(validate_transform_proposal): transform proposal not supported for identity:"
        ),
        "{d}"
    );
}

#[test]
fn lost_messages_are_retransmitted_without_moving_the_iv() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.a.initiate(lab.now, "vpn", 10);
    // lose MM1
    lab.drop_a_to_b = 1;
    lab.pump();
    assert!(pairs(&lab.ev_a).is_empty());
    lab.advance(PAST_FIRST_RETRANSMIT);
    // MM5 (encrypted) is the third message a sends: lose it after MM1's retransmission.
    assert!(!pairs(&lab.ev_a).is_empty());
    assert_tunnel(&lab);
    assert!(lab.a.counters.tx_retransmissions >= 1);

    // Lose the encrypted MM5 once: its retransmission must decrypt with the same IV.
    let mut lab = Lab::new(&o, &o);
    lab.a.initiate(lab.now, "vpn", 10);
    // deliver MM1, MM3 then drop MM5
    let mut sent = 0;
    while let Some(t) = lab.a.poll_transmit() {
        sent += 1;
        if sent == 3 {
            break; // MM5 lost
        }
        lab.b.handle_datagram(lab.now, t.remote, t.local, &t.data);
        while let Some(t) = lab.b.poll_transmit() {
            lab.a.handle_datagram(lab.now, t.remote, t.local, &t.data);
        }
    }
    assert_eq!(sent, 3);
    lab.advance(PAST_FIRST_RETRANSMIT);
    assert_tunnel(&lab);
}

#[test]
fn dpd_notices_a_dead_peer_and_removes_its_sas() {
    let o = Opts {
        dpd: true,
        ..Default::default()
    };
    let mut lab = up(&o, &o);
    assert_tunnel(&lab);
    // A live peer answers R-U-THERE.
    lab.advance(Duration::from_secs(25));
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert!(Lab::debug(&mut lab.b)
        .join("\n")
        .contains("DPD/R_U_THERE_ACK sent"));
    lab.b_dead = true;
    lab.advance(Duration::from_secs(40));
    assert_eq!(lab.a.ipsec_sa_pair_count(), 0);
    assert!(lab
        .ev_a
        .iter()
        .any(|e| matches!(e, Event::IpsecSaDown { .. })));
    assert_eq!(lab.a.counters.dpd_dead_peers, 1);
}

#[test]
fn ipsec_sa_rekeys_before_it_expires() {
    let o = Opts {
        lifetime: 60,
        ..Default::default()
    };
    let mut lab = up(&o, &o);
    let (old_in, _) = assert_tunnel(&lab);
    lab.advance(Duration::from_secs(55));
    let pa = pairs(&lab.ev_a);
    assert_eq!(pa.len(), 2, "a new pair before the old one expires");
    assert_ne!(pa[1].0.spi, old_in.spi);
    // the new pair was up while the old one was still installed
    let down_idx = lab.ev_a.iter().position(
        |e| matches!(e, Event::IpsecSaDown { inbound_spi, .. } if *inbound_spi == old_in.spi),
    );
    let up_idx = lab
        .ev_a
        .iter()
        .rposition(|e| matches!(e, Event::IpsecSaUp { .. }))
        .unwrap();
    if let Some(d) = down_idx {
        assert!(up_idx < d);
    }
    lab.advance(Duration::from_secs(10));
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert_eq!(lab.b.ipsec_sa_pair_count(), 1);
}

#[test]
fn delete_notify_removes_the_peer_sas() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    assert_tunnel(&lab);
    lab.a.clear_ipsec(lab.now);
    lab.pump();
    assert_eq!(lab.a.ipsec_sa_pair_count(), 0);
    assert_eq!(lab.b.ipsec_sa_pair_count(), 0);
    // Traffic again: phase 1 reused, new Quick Mode.
    assert!(lab.a.sa_request(
        lab.now,
        "10.1.1.2".parse().unwrap(),
        "10.1.2.2".parse().unwrap()
    ));
    lab.pump();
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert_eq!(lab.a.isakmp_sa_count(), 1);
    lab.a.clear_isakmp(lab.now);
    lab.advance(Duration::from_secs(1));
    assert_eq!(lab.b.isakmp_sa_count(), 0);
}

#[test]
fn main_mode_first_message_flood_is_bounded() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    lab.b.debug_isakmp = false;
    // Capture a real MM1 and replay it with many cookies and sources.
    let mut a2 = Endpoint::new(cfg(R1, R2, "10.1.1.0", "10.1.2.0", &o), rng(9));
    a2.initiate(lab.now, "vpn", 10);
    let mm1 = a2.poll_transmit().unwrap();
    for i in 0..5000u32 {
        let mut d = mm1.data.clone();
        d[..4].copy_from_slice(&i.to_be_bytes());
        let src = SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 500);
        lab.b.handle_datagram(lab.now, mm1.remote, src, &d);
    }
    assert!(lab.b.isakmp_sa_count() <= 256 + 1);
    // No key for those sources: nothing half-open at all; now with a wildcard key.
    let mut c = cfg(R2, R1, "10.1.2.0", "10.1.1.0", &o);
    c.keys[0].addr = Ipv4Addr::UNSPECIFIED;
    c.keys[0].mask = Ipv4Addr::UNSPECIFIED;
    let mut b = Endpoint::new(c, rng(3));
    for i in 0..5000u32 {
        let mut d = mm1.data.clone();
        d[..4].copy_from_slice(&i.to_be_bytes());
        let src = SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 500);
        b.handle_datagram(lab.now, mm1.remote, src, &d);
        while b.poll_transmit().is_some() {}
    }
    assert_eq!(b.isakmp_sa_count(), 256);
    assert_eq!(b.counters.half_open_dropped, 5000 - 256);
    // The table is full, yet the crypto map's own peer still gets in: the oldest spoofed
    // half-open SA makes room, and the real negotiation completes.
    let mut a = Endpoint::new(cfg(R1, R2, "10.1.1.0", "10.1.2.0", &o), rng(11));
    assert!(a.initiate(lab.now, "vpn", 10));
    let mut up = false;
    for _ in 0..20 {
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(lab.now, t.remote, t.local, &t.data);
        }
        while let Some(t) = b.poll_transmit() {
            if t.remote.ip() == std::net::IpAddr::V4(R1) {
                a.handle_datagram(lab.now, t.remote, t.local, &t.data);
            }
        }
        while let Some(e) = a.poll_event() {
            up |= matches!(e, Event::IpsecSaUp { .. });
        }
    }
    assert!(up, "the configured peer was locked out by the flood");
    assert_eq!(b.counters.half_open_evicted, 1);
    assert_eq!(b.half_open(), 255, "one spoofed half-open SA gave way");
    // Half-open state expires; the real peer's SA stays.
    b.handle_timeout(lab.now + Duration::from_secs(80));
    b.handle_timeout(lab.now + Duration::from_secs(81));
    assert_eq!((b.half_open(), b.isakmp_sa_count()), (0, 1));
}

#[test]
fn garbage_never_panics() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    let mut r = SeqRng(<rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7));
    let s = lab.a.isakmp_sas()[0].clone();
    for n in 0..3000usize {
        let mut d = r.bytes(n % 400);
        if d.len() >= 28 && n % 2 == 0 {
            d[..8].copy_from_slice(&s.icookie);
            d[8..16].copy_from_slice(&s.rcookie);
            d[17] = 0x10;
            let l = d.len() as u32;
            d[24..28].copy_from_slice(&l.to_be_bytes());
        }
        let local = SocketAddr::new(R2.into(), if n % 3 == 0 { 4500 } else { 500 });
        lab.b
            .handle_datagram(lab.now, local, SocketAddr::new(R1.into(), 500), &d);
    }
    lab.pump();
}

#[test]
fn several_transform_sets_responder_picks_the_one_it_has() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    let mut c = lab.a.config().clone();
    c.maps[0].transform_sets.insert(
        0,
        TransformSet {
            name: "aesset".into(),
            enc: EspEnc::Aes(256),
            auth: Some(EspAuth::Sha256),
            transport: false,
        },
    );
    lab.a.set_config(c);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    let (i, _) = assert_tunnel(&lab);
    assert_eq!(i.transform.enc, EspEnc::Des3);
    let d = Lab::debug(&mut lab.b).join("\n");
    assert!(d.contains("Checking IPsec proposal 1"), "{d}");
    assert!(d.contains("Checking IPsec proposal 2"), "{d}");
}

#[test]
fn responder_lifetime_lowers_the_initiators_lifetime() {
    let mut lab = up(
        &Opts {
            lifetime: 3600,
            ..Default::default()
        },
        &Opts {
            lifetime: 1800,
            ..Default::default()
        },
    );
    let (ai, _) = assert_tunnel(&lab);
    let (bi, _) = pairs(&lab.ev_b)[0].clone();
    assert_eq!(bi.lifetime_secs, 1800);
    assert_eq!(ai.lifetime_secs, 1800, "RESPONDER-LIFETIME adopted");
    let d = Lab::debug(&mut lab.a).join("\n");
    assert!(d.contains("RESPONDER_LIFETIME"), "{d}");
}

#[test]
fn isakmp_sa_is_rekeyed_and_ipsec_sas_survive_its_expiry() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.configure_both(|c| c.policies[0].lifetime = 100);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    assert_tunnel(&lab);
    lab.advance(Duration::from_secs(95));
    assert_eq!(
        lab.a
            .isakmp_sas()
            .iter()
            .filter(|s| s.state == "QM_IDLE")
            .count(),
        2,
        "new ISAKMP SA before the old expires"
    );
    lab.advance(Duration::from_secs(10));
    assert_eq!(lab.a.isakmp_sa_count(), 1);
    assert_eq!(lab.b.isakmp_sa_count(), 1);
    assert_eq!(
        lab.a.ipsec_sa_pair_count(),
        1,
        "IPsec SAs outlive their ISAKMP SA"
    );
    // New Quick Modes run under the new ISAKMP SA.
    lab.a.clear_ipsec(lab.now);
    lab.pump();
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    lab.pump();
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert_eq!(lab.b.ipsec_sa_pair_count(), 1);
}

#[test]
fn inbound_esp_traffic_keeps_dpd_quiet() {
    let o = Opts {
        dpd: true,
        ..Default::default()
    };
    let mut lab = up(&o, &o);
    let (i, _) = assert_tunnel(&lab);
    Lab::debug(&mut lab.a);
    for n in 1..=5u64 {
        lab.advance(Duration::from_secs(6));
        lab.a.note_inbound(lab.now, i.spi, n * 10);
    }
    let d = Lab::debug(&mut lab.a).join("\n");
    assert!(!d.contains("DPD/R_U_THERE sent"), "{d}");
    lab.advance(Duration::from_secs(25));
    let d = Lab::debug(&mut lab.a).join("\n");
    assert!(d.contains("DPD/R_U_THERE sent"), "{d}");
}

#[test]
fn lost_qm3_is_resent_when_the_responder_retransmits_qm2() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.a.initiate(lab.now, "vpn", 10);
    // Hand-deliver until a sends QM3 (its 5th message: MM1, MM3, MM5, QM1, QM3), then lose it.
    let mut sent = 0;
    'outer: loop {
        let mut moved = false;
        while let Some(t) = lab.a.poll_transmit() {
            moved = true;
            sent += 1;
            if sent == 5 {
                break 'outer;
            }
            lab.b.handle_datagram(lab.now, t.remote, t.local, &t.data);
        }
        while let Some(t) = lab.b.poll_transmit() {
            moved = true;
            lab.a.handle_datagram(lab.now, t.remote, t.local, &t.data);
        }
        if !moved {
            break;
        }
    }
    assert_eq!(sent, 5);
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert_eq!(lab.b.ipsec_sa_pair_count(), 0);
    lab.advance(PAST_FIRST_RETRANSMIT);
    assert_eq!(
        lab.b.ipsec_sa_pair_count(),
        1,
        "QM3 resent on QM2 retransmission"
    );
}

#[test]
fn aggressive_mode_disable_refuses_am_as_responder() {
    let o = Opts {
        mode: Phase1Mode::Aggressive,
        ..Default::default()
    };
    let mut lab = Lab::new(&o, &o);
    let mut c = lab.b.config().clone();
    c.aggressive_mode_disabled = true;
    lab.b.set_config(c);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    assert_eq!(lab.b.isakmp_sa_count(), 0);
    assert!(pairs(&lab.ev_a).is_empty());
    assert!(Lab::debug(&mut lab.b)
        .join("\n")
        .contains("Aggressive Mode from 172.16.172.10 refused"));
}

#[test]
fn commit_bit_brings_a_connected_notify() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    let mut c = lab.a.config().clone();
    c.qm_commit_bit = true;
    lab.a.set_config(c);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    assert_tunnel(&lab);
    let b = Lab::debug(&mut lab.b).join("\n");
    assert!(b.contains("commit bit set, sending CONNECTED"), "{b}");
    let a = Lab::debug(&mut lab.a).join("\n");
    assert!(a.contains("processing NOTIFY CONNECTED protocol 3"), "{a}");
}

#[test]
fn transport_mode_is_negotiated_and_must_match() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.configure_both(|c| c.maps[0].transform_sets[0].transport = true);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    let (i, _) = assert_tunnel(&lab);
    assert!(i.transform.transport);
    assert!(Lab::debug(&mut lab.b).join("\n").contains("encaps is 2"));
    // Tunnel offered, transport configured: refused.
    let mut lab = Lab::new(&o, &o);
    let mut c = lab.b.config().clone();
    c.maps[0].transform_sets[0].transport = true;
    lab.b.set_config(c);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    assert!(pairs(&lab.ev_a).is_empty() && pairs(&lab.ev_b).is_empty());
}

#[test]
fn kilobyte_lifetime_rekeys_then_expires() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.configure_both(|c| c.maps[0].lifetime_kb = 1000);
    lab.a.initiate(lab.now, "vpn", 10);
    lab.pump();
    let (old_in, old_out) = assert_tunnel(&lab);
    assert_eq!(old_in.lifetime_kb, 1000);
    // 95 % of the volume used: a new pair is negotiated, the old one still works.
    lab.a.note_usage(lab.now, old_out.spi, 950);
    lab.advance(Duration::from_millis(10));
    assert_eq!(pairs(&lab.ev_a).len(), 2);
    assert_eq!(lab.a.ipsec_sa_pair_count(), 2);
    // The whole volume: the old pair goes (with a DELETE to the peer).
    lab.a.note_usage(lab.now, old_out.spi, 1000);
    lab.advance(Duration::from_millis(10));
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert!(lab.ev_a.iter().any(
        |e| matches!(e, Event::IpsecSaDown { inbound_spi, .. } if *inbound_spi == old_in.spi)
    ));
    assert_eq!(lab.b.ipsec_sa_pair_count(), 1);
}

#[test]
fn crossed_aggressive_mode_retransmissions_settle() {
    let o = Opts {
        mode: Phase1Mode::Aggressive,
        ..Default::default()
    };
    let mut lab = Lab::new(&o, &o);
    lab.a.initiate(lab.now, "vpn", 10);
    // AM1 reaches b; b's AM2 is lost.
    let am1 = lab.a.poll_transmit().unwrap();
    lab.b
        .handle_datagram(lab.now, am1.remote, am1.local, &am1.data);
    assert!(lab.b.poll_transmit().is_some());
    // Both retransmit at once: AM1 and AM2 cross, each side sees the other's message twice.
    // A duplicate of the message that completed phase 1 must not be answered, or the two
    // ends resend AM2/AM3 to each other for ever (pump panics).
    lab.advance(PAST_FIRST_RETRANSMIT);
    assert_tunnel(&lab);
}

#[test]
fn a_duplicate_of_the_last_main_mode_message_is_not_answered() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    lab.a.initiate(lab.now, "vpn", 10);
    let mut mm6 = None;
    for _ in 0..3 {
        let t = lab.a.poll_transmit().unwrap();
        lab.b.handle_datagram(lab.now, t.remote, t.local, &t.data);
        let r = lab.b.poll_transmit().unwrap();
        lab.a.handle_datagram(lab.now, r.remote, r.local, &r.data);
        mm6 = Some(r);
    }
    lab.pump();
    assert_tunnel(&lab);
    // MM6 again (delayed copy): the initiator must not resend MM5.
    let mm6 = mm6.unwrap();
    lab.a
        .handle_datagram(lab.now, mm6.remote, mm6.local, &mm6.data);
    assert!(lab.a.poll_transmit().is_none());
    assert_eq!(lab.a.counters.rx_retransmissions, 1);
}

/// IOS's retransmission timing, which `ike-scan --showbackoff` fingerprints: the unanswered
/// MM1 goes out again every 10 s, five times, then the SA dies ("Death by retransmission
/// P1") with nothing left behind.
#[test]
fn phase1_retransmits_every_ten_seconds_five_times_as_ios_does() {
    let o = Opts::default();
    let mut lab = Lab::new(&o, &o);
    let t0 = lab.now;
    lab.a.initiate(t0, "vpn", 10);
    let first = lab.a.poll_transmit().expect("MM1");
    let mut sent_at = vec![];
    let mut died_at = None;
    let mut log = vec![];
    while let Some(now) = lab.a.poll_timeout() {
        if now > t0 + Duration::from_secs(120) {
            break;
        }
        lab.a.handle_timeout(now);
        while let Some(t) = lab.a.poll_transmit() {
            assert_eq!(t.data, first.data, "resent unchanged");
            sent_at.push(now.duration_since(t0).as_secs());
        }
        let d = Lab::debug(&mut lab.a);
        if d.iter().any(|l| l.contains("Death by retransmission P1")) {
            died_at = Some(now.duration_since(t0).as_secs());
            log.extend(d);
            break;
        }
        log.extend(d);
    }
    assert_eq!(sent_at, vec![10, 20, 30, 40, 50], "{log:#?}");
    assert_eq!(died_at, Some(60), "{log:#?}");
    // The dead SA is reaped on the next turn, and nothing is sent again.
    let at = lab.a.poll_timeout().expect("the reap");
    lab.a.handle_timeout(at);
    assert!(lab.a.poll_transmit().is_none());
    assert_eq!(lab.a.isakmp_sa_count(), 0);
}

#[cfg(test)]
mod ezvpn;
mod state_trace;

mod pubkey;

mod fragmentation;
mod initial_contact_nat;
mod pubkey_encr;
mod reconfig;
