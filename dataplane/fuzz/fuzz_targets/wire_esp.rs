#![no_main]
//! EspPacket never panics after new_checked; Repr round-trips.
use espgw_dataplane::wire::{EspPacket, EspRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = EspPacket::new_checked(data) {
        let _ = (p.spi(), p.seq(), p.payload().len());
        if let Ok(r) = EspRepr::parse(&p) {
            let mut out = [0u8; 8];
            r.emit(&mut EspPacket::new_unchecked(&mut out[..])).unwrap();
            assert_eq!(&out[..], &data[..8]);
        }
    }
});
