//! The IKE responder fed arbitrary datagrams (split on 0xFE 0xFE), on ports 500 and 4500,
//! from a handful of sources, with timers firing in between: no panic, bounded state.
#![no_main]

use espgw_control::ike::crypto::{DhGroup, EncAlg, HashAlg, Random};
use espgw_control::ike::*;
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

struct Counter(u64);
impl Random for Counter {
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *x = (self.0 >> 56) as u8;
        }
    }
}

fn endpoint() -> Endpoint {
    let me = Ipv4Addr::new(172, 16, 172, 20);
    let mut c = IkeConfig::new(me);
    c.half_open_limit = 8;
    c.policies.push(IsakmpPolicy { priority: 1, enc: EncAlg::Des3, hash: HashAlg::Md5, group: DhGroup::Modp768, lifetime: 86400 });
    c.keys.push(PreSharedKey { addr: Ipv4Addr::UNSPECIFIED, mask: Ipv4Addr::UNSPECIFIED, key: zeroize::Zeroizing::new(b"k".to_vec()) });
    let p = |a: [u8; 4]| Proxy::subnet(Ipv4Addr::from(a), Ipv4Addr::new(255, 255, 255, 0));
    c.maps.push(CryptoMapEntry {
        map: "vpn".into(),
        seq: 10,
        peer: Ipv4Addr::new(172, 16, 172, 10),
        transform_sets: vec![TransformSet { name: "t".into(), enc: EspEnc::Des3, auth: Some(EspAuth::Md5), transport: false}],
        pfs: None,
        lifetime_secs: 3600,
        lifetime_kb: 4608000,
        local_proxy: p([10, 1, 2, 0]),
        remote_proxy: p([10, 1, 1, 0]),
        mode: Phase1Mode::Main,
        interface: "e1".into(),
    });
    let mut e = Endpoint::new(c, Box::new(Counter(1)));
    e.debug_isakmp = true;
    e.debug_ipsec = true;
    e
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
