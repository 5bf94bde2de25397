//! ISAKMP wire parser: arbitrary bytes never panic; whatever parses re-emits to the same
//! bytes.
#![no_main]

use espgw_control::isakmp::{parse_chain, Header, HeaderRepr, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::new_checked(data) {
        let _ = HeaderRepr::parse(&h);
        let _ = h.body();
    }
    if let Ok(m) = Message::parse(data) {
        let out = m.to_bytes();
        assert_eq!(out.len(), m.buffer_len());
        let again = Message::parse(&out).expect("re-emitted message parses");
        assert_eq!(again.payloads, m.payloads);
    }
    if let Some((&first, rest)) = data.split_first() {
        let _ = parse_chain(first, rest, true);
    }
});
