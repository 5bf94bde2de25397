//! IKE fragments: arbitrary bytes as one fragment message (parse, and a view that parses
//! re-emits the same bytes), then as a run of fragments (split on 0xFE) into the
//! reassembler and into an endpoint with fragmentation on: no panic, memory within the
//! reassembler's bounds, and every reassembled message is one ISAKMP message.
#![no_main]

use espgw_control::ike::endpoint::fragments::{MAX_PENDING, MAX_REASSEMBLED};
use espgw_control::ike::endpoint::{Added, Reassembler};
use espgw_control::ike::*;
use espgw_control::isakmp::fragment::FragmentRepr;
use espgw_control::isakmp::Header;
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = FragmentRepr::parse(data) {
        let mut again = Vec::new();
        f.emit(&mut again);
        assert_eq!(again, data);
    }
    let mut r = Reassembler::default();
    let mut c = common::config([172, 16, 172, 20], [172, 16, 172, 10], [10, 1, 2, 0], [10, 1, 1, 0], Phase1Mode::Main);
    c.fragmentation = Some(576);
    let mut ep = common::endpoint(c, 1);
    let mut now = Instant::now();
    for (i, dgram) in data.split(|&b| b == 0xfe).enumerate().take(128) {
        let remote = SocketAddr::new(Ipv4Addr::new(172, 16, 172, 10 + (i % 2) as u8).into(), 500);
        let local = SocketAddr::new(Ipv4Addr::new(172, 16, 172, 20).into(), 500);
        if let Ok(f) = FragmentRepr::parse(dgram) {
            if let Ok(Added::Complete(whole)) = r.add(now, remote, &f) {
                let h = Header::new_checked(&whole[..]).expect("a whole message");
                assert_eq!(h.length() as usize, whole.len());
                assert_eq!(h.initiator_cookie(), f.header.icookie);
            }
        }
        let (n, bytes) = r.pending();
        assert!(n <= MAX_PENDING && bytes <= n * MAX_REASSEMBLED);
        ep.handle_datagram(now, local, remote, dgram);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        while ep.poll_debug().is_some() {}
        if i % 8 == 7 {
            now += Duration::from_secs(11);
            ep.handle_timeout(now);
        }
    }
});
