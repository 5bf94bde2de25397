#![no_main]
//! Ipv4Packet: no accessor panics after new_checked; a parsed Repr emits the same header.
use espgw_dataplane::wire::{Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (p.src_addr(), p.dst_addr(), p.protocol(), p.ttl(), p.ident(), p.dscp_ecn());
        let _ = (p.options().len(), p.payload().len(), p.is_fragment(), p.frag_offset());
        if let Ok(repr) = Ipv4Repr::parse(&p) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])).unwrap();
            let q = Ipv4Packet::new_checked(&out[..]).unwrap();
            assert_eq!(Ipv4Repr::parse(&q).unwrap(), repr);
        }
    }
});
