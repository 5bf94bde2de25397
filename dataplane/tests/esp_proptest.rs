//! Property tests: encap → decap round trips for random transforms, modes, sizes and
//! sequence numbers (ESN included); Repr emit → parse round trips for every header; views
//! never panic on arbitrary bytes.

use espgw_dataplane::crypto::transform::Transform;
use espgw_dataplane::esp::{
    decapsulate_batch, encapsulate_batch, DropCounters, EspContext, Frame, InboundSa, Mode, NatT,
    OutboundSa, SaKeys, SaParams,
};
use espgw_dataplane::wire::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn inner_frame(payload: &[u8], proto: u8, df: bool) -> Vec<u8> {
    let repr = Ipv4Repr {
        src: Ipv4Addr::new(10, 1, 1, 2),
        dst: Ipv4Addr::new(10, 1, 2, 2),
        protocol: IpProtocol::from(proto),
        payload_len: payload.len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: df,
        options: vec![],
    };
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
    f.resize(14 + repr.buffer_len(), 0);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    f[34..].copy_from_slice(payload);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encap_decap_round_trip(
        t_idx in 0usize..12,
        transport in any::<bool>(),
        natt in any::<bool>(),
        esn in any::<bool>(),
        start in 1u64..(1u64 << 40),
        payloads in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..1600), any::<bool>()), 1..12),
        keyseed in any::<u8>(),
    ) {
        let t = Transform::all()[t_idx];
        let start = if esn { start } else { start % (u64::from(u32::MAX) - 20) + 1 };
        let enc: Vec<u8> = (0..t.enc_key_len()).map(|i| keyseed.wrapping_add(i as u8 * 3 + 1)).collect();
        let auth: Vec<u8> = (0..t.auth_key_len()).map(|i| keyseed ^ i as u8).collect();
        let keys = SaKeys::new(&enc, &auth);
        let (l, r) = if transport {
            (Ipv4Addr::new(10, 1, 1, 2), Ipv4Addr::new(10, 1, 2, 2))
        } else {
            (Ipv4Addr::new(172, 16, 172, 10), Ipv4Addr::new(172, 16, 172, 20))
        };
        let mut p = SaParams::tunnel(0xabcd_0001, t, l, r);
        p.mode = if transport { Mode::Transport } else { Mode::Tunnel };
        p.natt = natt.then(NatT::default);
        p.esn = esn;
        p.replay_window = 1024;
        let out = OutboundSa::new(p, &keys).unwrap().with_next_seq(start);
        let mut pin = p;
        pin.local = r;
        pin.remote = l;
        let inb = InboundSa::new(pin, &keys).unwrap();
        if start > 1 {
            // The receiver has seen the packets before `start` (needed to infer ESN bits).
            inb.replay.commit(start - 1).unwrap();
        }
        let originals: Vec<Vec<u8>> = payloads.iter().map(|(pl, df)| inner_frame(pl, 253, *df)).collect();
        let mut frames: Vec<Frame<Vec<u8>>> = originals.iter().map(|o| Frame::with_room(o)).collect();
        let mut dc = DropCounters::default();
        let n = encapsulate_batch(&mut frames, |_| Some(&out), &mut EspContext::new(), &mut dc);
        prop_assert_eq!(n, frames.len());
        for (i, f) in frames.iter().enumerate() {
            let eth = EthernetFrame::new_checked(f.data()).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            prop_assert!(ip.verify_checksum());
            let esp_off = ip.header_len() + if natt { 8 } else { 0 };
            let esp = EspPacket::new_checked(&ip.payload()[esp_off - ip.header_len()..]).unwrap();
            prop_assert_eq!(u64::from(esp.seq()), (start + i as u64) & 0xffff_ffff);
        }
        let n = decapsulate_batch(&mut frames, |spi| (spi == 0xabcd_0001).then_some(&inb), &mut dc);
        prop_assert_eq!(n, frames.len(), "{:?}", dc);
        for (f, o) in frames.iter().zip(&originals) {
            prop_assert_eq!(f.data(), &o[..]);
        }
        prop_assert_eq!(inb.replay.top(), start + originals.len() as u64 - 1);
        // Every frame again: all replays now.
        let mut again: Vec<Frame<Vec<u8>>> = originals.iter().map(|o| Frame::with_room(o)).collect();
        let out2 = OutboundSa::new(p, &keys).unwrap().with_next_seq(start);
        encapsulate_batch(&mut again, |_| Some(&out2), &mut EspContext::new(), &mut dc);
        prop_assert_eq!(decapsulate_batch(&mut again, |_| Some(&inb), &mut dc), 0);
    }

    #[test]
    fn ipv4_repr_round_trip(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(),
        payload_len in 0usize..1500, ttl in any::<u8>(), tos in any::<u8>(), ident in any::<u16>(),
        df in any::<bool>(), words in prop::collection::vec(any::<[u8; 4]>(), 0..10),
    ) {
        let repr = Ipv4Repr {
            src: Ipv4Addr::from(src), dst: Ipv4Addr::from(dst), protocol: IpProtocol::from(proto),
            payload_len, ttl, dscp_ecn: tos, ident, dont_frag: df, options: words.concat(),
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
        prop_assert_eq!(u8::from(IpProtocol::from(proto)), proto);
    }

    #[test]
    fn udp_esp_ethernet_repr_round_trip(
        sp in any::<u16>(), dp in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..600),
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), spi in 256u32.., seq in any::<u32>(),
        mac1 in any::<[u8; 6]>(), mac2 in any::<[u8; 6]>(), et in any::<u16>(),
    ) {
        let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let u = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() };
        let mut buf = vec![0u8; u.buffer_len()];
        buf[8..].copy_from_slice(&payload);
        u.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), Some((s, d))).unwrap();
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&p, s, d).unwrap(), u);
        prop_assert_eq!(p.payload(), &payload[..]);

        let e = EspRepr { spi, seq };
        let mut b = [0u8; 8];
        e.emit(&mut EspPacket::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(EspRepr::parse(&EspPacket::new_checked(&b[..]).unwrap()).unwrap(), e);

        let r = EthernetRepr { src: EthernetAddress(mac1), dst: EthernetAddress(mac2), ethertype: EtherType::from(et) };
        let mut b = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&b[..]).unwrap()).unwrap(), r);
        prop_assert_eq!(u16::from(EtherType::from(et)), et);
    }

    #[test]
    fn views_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(e) = EthernetFrame::new_checked(&bytes[..]) {
            let _ = (e.src_addr(), e.dst_addr(), e.ethertype(), e.payload().len());
        }
        if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = (p.src_addr(), p.dst_addr(), p.protocol(), p.options().len(), p.payload().len(), p.verify_checksum(), p.frag_offset());
            let _ = Ipv4Repr::parse(&p);
        }
        if let Ok(u) = UdpPacket::new_checked(&bytes[..]) {
            let _ = (u.payload().len(), u.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
            let _ = classify_natt(u.payload());
        }
        if let Ok(e) = EspPacket::new_checked(&bytes[..]) {
            let _ = (e.spi(), e.seq(), e.payload().len(), EspRepr::parse(&e));
        }
    }
}
