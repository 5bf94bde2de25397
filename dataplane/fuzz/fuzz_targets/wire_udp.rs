#![no_main]
//! UdpPacket and the NAT-T classifier never panic; a parsed Repr re-emits consistently.
use espgw_dataplane::wire::{classify_natt, UdpPacket, UdpRepr};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let (s, d) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    let _ = classify_natt(data);
    if let Ok(p) = UdpPacket::new_checked(data) {
        let _ = (p.src_port(), p.dst_port(), p.payload().len(), p.verify_checksum(s, d));
        let _ = classify_natt(p.payload());
        if let Ok(repr) = UdpRepr::parse(&p, s, d) {
            let mut out = vec![0u8; repr.buffer_len()];
            out[8..].copy_from_slice(p.payload());
            repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), Some((s, d))).unwrap();
            assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&out[..]).unwrap(), s, d).unwrap(), repr);
        }
    }
});
