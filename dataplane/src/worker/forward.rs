//! IPv4 forwarding of one frame in place: sanity checks, TTL, MAC rewrite.

use super::fib::NextHop;
use std::net::Ipv4Addr;

/// Why a frame was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdDrop {
    NotIpv4,
    Malformed,
    TtlExceeded,
}

const ETH_LEN: usize = 14;

/// Destination address of an Ethernet/IPv4 frame, after checking the headers
/// (version, IHL, total length within the frame, header checksum).
pub fn ipv4_destination(frame: &[u8]) -> Result<Ipv4Addr, FwdDrop> {
    if frame.len() < ETH_LEN + 20 {
        return Err(FwdDrop::Malformed);
    }
    if frame[12..14] != [0x08, 0x00] {
        return Err(FwdDrop::NotIpv4);
    }
    let ip = &frame[ETH_LEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return Err(FwdDrop::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl || total > ip.len() {
        return Err(FwdDrop::Malformed);
    }
    if checksum(&ip[..ihl]) != 0 {
        return Err(FwdDrop::Malformed);
    }
    Ok(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]))
}

/// Whether the IPv4 header's DF bit is set (frame checked by [`ipv4_destination`]).
pub fn dont_fragment(frame: &[u8]) -> bool {
    frame.get(ETH_LEN + 6).is_some_and(|b| b & 0x40 != 0)
}

/// Internet checksum (RFC 1071) of `data`: 0 when a header with its checksum
/// field filled in is intact.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Decrements the TTL with an incremental checksum update (no MAC rewrite).
pub fn decrement_ttl(frame: &mut [u8]) -> Result<(), FwdDrop> {
    if frame.len() < ETH_LEN + 20 {
        return Err(FwdDrop::Malformed);
    }
    let ttl = frame[ETH_LEN + 8];
    if ttl <= 1 {
        return Err(FwdDrop::TtlExceeded);
    }
    let old = u16::from_be_bytes([frame[ETH_LEN + 8], frame[ETH_LEN + 9]]);
    frame[ETH_LEN + 8] = ttl - 1;
    let new = u16::from_be_bytes([frame[ETH_LEN + 8], frame[ETH_LEN + 9]]);
    let hc = u16::from_be_bytes([frame[ETH_LEN + 10], frame[ETH_LEN + 11]]);
    // HC' = ~(~HC + ~m + m') (RFC 1624)
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Ok(())
}

/// Decrements the TTL (incremental checksum update, RFC 1624) and writes the
/// next hop's MAC addresses. Call after [`ipv4_destination`] accepted the frame.
pub fn forward_in_place(frame: &mut [u8], nh: &NextHop) -> Result<(), FwdDrop> {
    decrement_ttl(frame)?;
    frame[0..6].copy_from_slice(&nh.dst_mac);
    frame[6..12].copy_from_slice(&nh.src_mac);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![0u8; ETH_LEN + 28];
        f[12] = 0x08;
        let ip = &mut f[ETH_LEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[8] = ttl;
        ip[9] = 1;
        ip[12..16].copy_from_slice(&[10, 1, 1, 2]);
        ip[16..20].copy_from_slice(&[10, 1, 2, 2]);
        let c = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f
    }

    const NH: NextHop = NextHop {
        oif: 3,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        mtu: 1500,
        src_ip: None,
    };

    #[test]
    fn forwards_and_keeps_checksum_valid() {
        for ttl in [2u8, 64, 255] {
            let mut f = frame(ttl);
            assert_eq!(ipv4_destination(&f), Ok(Ipv4Addr::new(10, 1, 2, 2)));
            forward_in_place(&mut f, &NH).unwrap();
            assert_eq!(f[ETH_LEN + 8], ttl - 1);
            assert_eq!(checksum(&f[ETH_LEN..ETH_LEN + 20]), 0, "ttl {ttl}");
            assert_eq!(&f[0..6], &NH.dst_mac);
            assert_eq!(&f[6..12], &NH.src_mac);
        }
    }

    #[test]
    fn drops_by_reason() {
        assert_eq!(
            forward_in_place(&mut frame(1), &NH),
            Err(FwdDrop::TtlExceeded)
        );
        let mut f = frame(64);
        f[ETH_LEN + 10] ^= 1;
        assert_eq!(ipv4_destination(&f), Err(FwdDrop::Malformed));
        let mut f = frame(64);
        f[12] = 0x86;
        f[13] = 0xdd;
        assert_eq!(ipv4_destination(&f), Err(FwdDrop::NotIpv4));
        let f = frame(64);
        assert_eq!(ipv4_destination(&f[..30]), Err(FwdDrop::Malformed));
        let mut f = frame(64);
        f[ETH_LEN + 3] = 200; // total length beyond the frame
        assert_eq!(ipv4_destination(&f), Err(FwdDrop::Malformed));
    }
}

#[cfg(test)]
mod proptests {
    use super::super::{icmp, netlink};
    use super::*;
    use proptest::prelude::*;

    const NH: NextHop = NextHop {
        oif: 1,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        mtu: 1500,
        src_ip: None,
    };

    fn ipv4_frame() -> impl Strategy<Value = Vec<u8>> {
        // Mostly plausible IPv4 frames with random fields, plus pure noise.
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..120),
            (
                proptest::collection::vec(any::<u8>(), 20..120),
                any::<u8>(),
                any::<bool>()
            )
                .prop_map(|(mut ip, ihl, fix)| {
                    ip[0] = 0x40 | (ihl & 0x0f);
                    let len = ip.len() as u16;
                    if fix {
                        ip[2..4].copy_from_slice(&len.to_be_bytes());
                        ip[10] = 0;
                        ip[11] = 0;
                        let h = usize::from(ip[0] & 0x0f) * 4;
                        if h >= 20 && h <= ip.len() {
                            let c = checksum(&ip[..h]);
                            ip[10..12].copy_from_slice(&c.to_be_bytes());
                        }
                    }
                    let mut f = vec![0u8; 12];
                    f.extend_from_slice(&[0x08, 0x00]);
                    f.extend_from_slice(&ip);
                    f
                }),
        ]
    }

    proptest! {
        /// Untrusted frames never make the forwarding path panic, and an
        /// accepted frame keeps a valid header checksum after forwarding.
        #[test]
        fn forwarding_never_panics(mut f in ipv4_frame()) {
            if ipv4_destination(&f).is_ok() {
                let _ = dont_fragment(&f);
                if icmp::may_answer(&f) {
                    let mut out = [0u8; 128];
                    let _ = icmp::build_error(&f, icmp::IcmpError::TtlExceeded, "10.0.0.1".parse().unwrap(), &NH, &mut out);
                }
                if forward_in_place(&mut f, &NH).is_ok() {
                    let ihl = usize::from(f[14] & 0x0f) * 4;
                    prop_assert_eq!(checksum(&f[14..14 + ihl]), 0);
                }
            } else {
                let _ = icmp::may_answer(&f);
            }
        }

        /// Netlink bodies of any shape parse to typed errors, not panics.
        #[test]
        fn netlink_parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = netlink::parse_route(&b);
            let _ = netlink::parse_neighbour(&b);
            let _ = netlink::parse_link(&b);
        }

        /// Policy-file lines of any shape parse or fail with a typed error.
        #[test]
        fn acl_text_never_panics(s in "\\PC{0,60}") {
            let _ = s.parse::<crate::xdp::acl::AclRule>();
            let _ = crate::xdp::acl::parse_rules(&s);
        }
    }
}
