#![no_main]
//! EthernetFrame: no accessor panics after new_checked; Repr round-trips.
use espgw_dataplane::wire::{EthernetFrame, EthernetRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (f.src_addr(), f.dst_addr(), f.payload().len());
        let repr = EthernetRepr::parse(&f).expect("checked frame parses");
        let mut out = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(&out[..], &data[..14]);
    }
});
