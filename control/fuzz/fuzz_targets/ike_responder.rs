//! The IKE responder fed arbitrary datagrams (split on 0xFE 0xFE), on ports 500 and 4500,
//! from a handful of sources, with timers firing in between: no panic, bounded state.
#![no_main]

use espgw_control::ike::*;
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

mod common;

/// The responder R2: keys for any source (the datagrams come from several).
fn endpoint() -> Endpoint {
    let mut c = common::config([172, 16, 172, 20], [172, 16, 172, 10], [10, 1, 2, 0], [10, 1, 1, 0], Phase1Mode::Main);
    c.half_open_limit = 8;
    c.keys[0].addr = Ipv4Addr::UNSPECIFIED;
    c.keys[0].mask = Ipv4Addr::UNSPECIFIED;
    common::endpoint(c, 1)
}

fuzz_target!(|data: &[u8]| {
    let mut ep = endpoint();
    let mut now = Instant::now();
    for (i, dgram) in data.split(|&b| b == 0xfe).enumerate().take(64) {
        let port = if i % 2 == 0 { 500 } else { 4500 };
        let local = SocketAddr::new(Ipv4Addr::new(172, 16, 172, 20).into(), port);
        let remote = SocketAddr::new(Ipv4Addr::new(172, 16, 172, 10 + (i % 3) as u8).into(), port);
        ep.handle_datagram(now, local, remote, dgram);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        while ep.poll_debug().is_some() {}
        now += Duration::from_secs(3);
        ep.handle_timeout(now);
        assert!(ep.isakmp_sa_count() <= 8 + 1);
    }
});
