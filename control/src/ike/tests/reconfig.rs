//! Live reconfiguration in process: entries added and removed under running SAs, and a
//! crypto map entry removed while its Quick Mode is in flight (it used to index
//! `cfg.maps` out of range).

use super::*;

/// An entry `vpn SEQ` for `local` ↔ `remote` (/24s) with peer `peer`, 3DES-MD5.
fn entry(seq: u32, peer: Ipv4Addr, local: &str, remote: &str) -> CryptoMapEntry {
    let mut c = cfg(R1, peer, local, remote, &Opts::default());
    let mut e = c.maps.remove(0);
    e.seq = seq;
    e
}

fn is_quick_mode(t: &Transmit) -> bool {
    let d = if t.local.port() == 4500 {
        &t.data[4..]
    } else {
        &t.data[..]
    };
    d.len() > 18 && d[18] == 32
}

/// Moves datagrams both ways until one side sends a Quick Mode message, which is held
/// back and returned with whether `a` sent it.
fn until_quick_mode(lab: &mut Lab) -> (bool, Transmit) {
    for _ in 0..100 {
        if let Some(t) = lab.a.poll_transmit() {
            if is_quick_mode(&t) {
                return (true, t);
            }
            lab.b.handle_datagram(lab.now, t.remote, t.local, &t.data);
            continue;
        }
        if let Some(t) = lab.b.poll_transmit() {
            if is_quick_mode(&t) {
                return (false, t);
            }
            lab.a.handle_datagram(lab.now, t.remote, t.local, &t.data);
            continue;
        }
        panic!("no Quick Mode message");
    }
    panic!("no Quick Mode message in 100 datagrams");
}

fn deliver(to: &mut Endpoint, now: Instant, t: &Transmit) {
    to.handle_datagram(now, t.remote, t.local, &t.data);
}

fn downs(ev: &[Event]) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| match e {
            Event::IpsecSaDown { inbound_spi, .. } => Some(*inbound_spi),
            _ => None,
        })
        .collect()
}

#[test]
fn removing_the_entry_of_a_quick_mode_in_flight_abandons_it_on_both_sides() {
    let o = Opts::default();
    // The initiator loses its entry between QM1 and QM2.
    let mut lab = Lab::new(&o, &o);
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let (from_a, qm1) = until_quick_mode(&mut lab);
    assert!(from_a);
    let mut c = lab.a.config().clone();
    c.maps.clear();
    assert_eq!(lab.a.set_config(c), 1, "the exchange is abandoned");
    deliver(&mut lab.b, lab.now, &qm1);
    let (from_a, qm2) = until_quick_mode(&mut lab);
    assert!(!from_a, "b answers QM1 with QM2");
    deliver(&mut lab.a, lab.now, &qm2);
    lab.pump();
    assert_eq!(lab.a.ipsec_sa_pair_count(), 0);
    assert!(pairs(&lab.ev_a).is_empty());
    assert!(Lab::debug(&mut lab.a)
        .iter()
        .any(|l| l.contains("abandoned: its crypto map entry was removed")));

    // The responder loses its entry between QM2 and QM3.
    let mut lab = Lab::new(&o, &o);
    assert!(lab.a.initiate(lab.now, "vpn", 10));
    let (_, qm1) = until_quick_mode(&mut lab);
    deliver(&mut lab.b, lab.now, &qm1);
    let (from_a, qm2) = until_quick_mode(&mut lab);
    assert!(!from_a);
    deliver(&mut lab.a, lab.now, &qm2);
    let (from_a, qm3) = until_quick_mode(&mut lab);
    assert!(from_a, "a answers QM2 with QM3");
    // Renumbered too: another entry now sits where the removed one was.
    let mut c = lab.b.config().clone();
    c.maps = vec![entry(30, R1, "10.1.7.0", "10.1.8.0")];
    assert_eq!(lab.b.set_config(c), 1);
    deliver(&mut lab.b, lab.now, &qm3);
    lab.pump();
    assert_eq!(lab.b.ipsec_sa_pair_count(), 0);
    assert!(pairs(&lab.ev_b).is_empty());
    // Timers of both sides run on without touching the removed entry.
    lab.advance(Duration::from_secs(120));
}

#[test]
fn adding_and_removing_an_entry_leaves_the_running_tunnel_alone() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    let (ain, aout) = assert_tunnel(&lab);
    // A second entry, put first so that every index moves.
    let add = |ep: &mut Endpoint, e: CryptoMapEntry, now: Instant| {
        let mut c = ep.config().clone();
        c.maps.insert(0, e);
        ep.reconfigure(now, c)
    };
    let ra = add(&mut lab.a, entry(20, R2, "10.1.1.0", "10.1.3.0"), lab.now);
    assert_eq!(ra.kept_pairs, vec![ain.spi]);
    assert!(ra.deleted_pairs.is_empty() && ra.deleted_isakmp.is_empty());
    let mut b_entry = entry(20, R1, "10.1.3.0", "10.1.1.0");
    b_entry.peer = R1;
    let rb = add(&mut lab.b, b_entry, lab.now);
    assert_eq!(rb.kept_pairs, vec![aout.spi]);
    lab.pump();
    assert!(downs(&lab.ev_a).is_empty() && downs(&lab.ev_b).is_empty());
    // The running pair is still shown under its entry.
    let shown = lab.a.ipsec_sas(lab.now);
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].map.as_str(), shown[0].seq), ("vpn", 10));
    assert_eq!(shown[0].inbound_spi, ain.spi);

    // The new entry negotiates at once, under the same phase 1.
    assert!(lab.a.initiate(lab.now, "vpn", 20));
    lab.pump();
    let up_a = pairs(&lab.ev_a);
    assert_eq!(up_a.len(), 2, "{:?}", lab.ev_a);
    let (in2, out2) = up_a[1].clone();
    assert_eq!(in2.seq, 20);
    assert_eq!(out2.dst_proxy, net("10.1.3.0"));
    assert_eq!(lab.a.isakmp_sa_count(), 1);

    // Removing it deletes its pair on both sides (DELETE), and nothing else.
    let mut c = lab.a.config().clone();
    c.maps.retain(|m| m.seq != 20);
    let r = lab.a.reconfigure(lab.now, c);
    assert_eq!(r.deleted_pairs, vec![in2.spi]);
    assert_eq!(r.kept_pairs, vec![ain.spi]);
    lab.pump();
    assert_eq!(downs(&lab.ev_a), vec![in2.spi]);
    assert_eq!(downs(&lab.ev_b), vec![out2.spi], "b deleted on our DELETE");
    assert_eq!(lab.a.ipsec_sa_pair_count(), 1);
    assert_eq!(lab.b.ipsec_sa_pair_count(), 2 - 1);
    let shown = lab.a.ipsec_sas(lab.now);
    assert_eq!(shown[0].inbound_spi, ain.spi);
    assert_eq!((shown[0].map.as_str(), shown[0].seq), ("vpn", 10));
    // The kept pair still rekeys on its own entry.
    lab.advance(Duration::from_secs(3400));
    assert!(pairs(&lab.ev_a).len() >= 3, "rekey of vpn 10");
}

#[test]
fn a_changed_transform_set_or_acl_deletes_the_pairs_it_no_longer_allows() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    let (ain, _) = assert_tunnel(&lab);
    // Another name, the same algorithms: kept.
    let mut c = lab.a.config().clone();
    c.maps[0].transform_sets[0].name = "renamed".into();
    assert_eq!(lab.a.reconfigure(lab.now, c).kept_pairs, vec![ain.spi]);
    // A narrower ACL line: the /24 pair is outside it.
    let mut c = lab.a.config().clone();
    c.maps[0].remote_proxy = Proxy::host("10.1.2.2".parse().unwrap());
    let r = lab.a.reconfigure(lab.now, c);
    assert_eq!(r.deleted_pairs, vec![ain.spi]);
    lab.pump();
    assert_eq!(lab.b.ipsec_sa_pair_count(), 0, "DELETE reached b");

    let mut lab = up(&o, &o);
    let (ain, _) = assert_tunnel(&lab);
    let mut c = lab.a.config().clone();
    c.maps[0].transform_sets[0].enc = EspEnc::Aes(128);
    c.maps[0].transform_sets[0].auth = Some(EspAuth::Sha1);
    let r = lab.a.reconfigure(lab.now, c);
    assert_eq!(r.deleted_pairs, vec![ain.spi]);
}

#[test]
fn a_removed_key_deletes_the_isakmp_sa_and_a_new_policy_does_not() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    let (ain, _) = assert_tunnel(&lab);
    // A new policy and a key for another peer: nothing is deleted.
    let mut c = lab.a.config().clone();
    let mut p = c.policies[0].clone();
    p.priority = 5;
    p.enc = EncAlg::Aes(128);
    c.policies.push(p);
    c.keys.push(PreSharedKey {
        addr: "192.0.2.1".parse().unwrap(),
        mask: Ipv4Addr::new(255, 255, 255, 255),
        key: Zeroizing::new(b"other".to_vec()),
    });
    let r = lab.a.reconfigure(lab.now, c);
    assert!(r.deleted_isakmp.is_empty() && r.deleted_pairs.is_empty());
    // The peer's key changed: its ISAKMP SA goes (DELETE), its IPsec SAs stay.
    let mut c = lab.a.config().clone();
    c.keys.retain(|k| k.addr == R2);
    c.keys[0].key = Zeroizing::new(b"n3wkey".to_vec());
    let r = lab.a.reconfigure(lab.now, c);
    assert_eq!(r.deleted_isakmp.len(), 1);
    assert_eq!(r.kept_pairs, vec![ain.spi]);
    lab.advance(Duration::from_secs(1));
    assert_eq!(lab.a.isakmp_sa_count(), 0);
    assert_eq!(lab.b.isakmp_sa_count(), 0, "b deleted on our DELETE");
    assert_eq!(lab.b.ipsec_sa_pair_count(), 1);
}
