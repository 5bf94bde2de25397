//! What the IKE fuzz targets share: a deterministic random source and one endpoint
//! configuration (3DES/MD5/group 1, PSK "k", crypto map vpn 10 with esp-3des esp-md5-hmac
//! between two /24s) that each target adjusts.

use espgw_control::ike::crypto::{DhGroup, EncAlg, HashAlg, Random};
use espgw_control::ike::*;
use std::net::Ipv4Addr;

/// A fixed-seed LCG: the same input always takes the same path.
pub struct Counter(pub u64);
impl Random for Counter {
    fn fill(&mut self, b: &mut [u8]) {
        for x in b {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *x = (self.0 >> 56) as u8;
        }
    }
}

/// The configuration of a gateway at `me` with `peer`, protecting `l`/24 -> `r`/24.
pub fn config(me: [u8; 4], peer: [u8; 4], l: [u8; 4], r: [u8; 4], mode: Phase1Mode) -> IkeConfig {
    let mut c = IkeConfig::new(Ipv4Addr::from(me));
    c.policies.push(IsakmpPolicy { priority: 1, enc: EncAlg::Des3, hash: HashAlg::Md5, group: DhGroup::Modp768, lifetime: 86400, auth: Default::default() });
    c.keys.push(PreSharedKey { addr: Ipv4Addr::from(peer), mask: Ipv4Addr::new(255, 255, 255, 255), key: zeroize::Zeroizing::new(b"k".to_vec()) });
    let p = |a: [u8; 4]| Proxy::subnet(Ipv4Addr::from(a), Ipv4Addr::new(255, 255, 255, 0));
    c.maps.push(CryptoMapEntry {
        map: "vpn".into(),
        seq: 10,
        peer: Ipv4Addr::from(peer),
        transform_sets: vec![TransformSet { name: "t".into(), enc: EspEnc::Des3, auth: Some(EspAuth::Md5), transport: false }],
        pfs: None,
        lifetime_secs: 3600,
        lifetime_kb: 4608000,
        local_proxy: p(l),
        remote_proxy: p(r),
        mode,
        interface: "e1".into(),
    });
    c
}

/// An endpoint with every debug class on (the debug paths are fuzzed too).
pub fn endpoint(c: IkeConfig, seed: u64) -> Endpoint {
    let mut e = Endpoint::new(c, Box::new(Counter(seed)));
    e.debug_isakmp = true;
    e.debug_ipsec = true;
    e
}
