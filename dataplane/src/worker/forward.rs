//! IPv4 forwarding of one frame in place: sanity checks, TTL, MAC rewrite.

use super::fib::NextHop;
use crate::wire::checksum;
use crate::wire::{
    EtherType, EthernetAddress, EthernetFrame, Ipv4Packet, ETHERNET_HEADER_LEN, IPV4_MIN_HEADER_LEN,
};
use std::net::Ipv4Addr;

/// Why a frame was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdDrop {
    NotIpv4,
    Malformed,
    TtlExceeded,
}

/// What forwarding and the ESP path need of an Ethernet/IPv4 frame, read once
/// through the `wire` views by [`parse_ipv4`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub header_len: usize,
    /// Bytes of the IPv4 packet (its total length field).
    pub total_len: usize,
    pub dont_frag: bool,
    /// TCP/UDP source and destination ports, in an unfragmented packet or a
    /// first fragment that holds them.
    pub ports: Option<(u16, u16)>,
}

/// Checks the headers of an Ethernet/IPv4 frame (version, IHL, total length
/// within the frame, header checksum) and returns what the forwarder needs.
pub fn parse_ipv4(frame: &[u8]) -> Result<Ipv4Header, FwdDrop> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| FwdDrop::Malformed)?;
    if eth.ethertype() != EtherType::Ipv4 {
        return Err(FwdDrop::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| FwdDrop::Malformed)?;
    if !ip.verify_checksum() {
        return Err(FwdDrop::Malformed);
    }
    let protocol = u8::from(ip.protocol());
    let ports = if ip.frag_offset() == 0 && matches!(protocol, 6 | 17) {
        ip.payload().get(..4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        })
    } else {
        None
    };
    Ok(Ipv4Header {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol,
        header_len: ip.header_len(),
        total_len: usize::from(ip.total_len()),
        dont_frag: ip.dont_frag(),
        ports,
    })
}

/// Decrements the TTL of a frame [`parse_ipv4`] accepted, updating the header
/// checksum incrementally (RFC 1624: HC' = ~(~HC + ~m + m')); no MAC rewrite.
pub fn decrement_ttl(frame: &mut [u8]) -> Result<(), FwdDrop> {
    let Some(ip) = frame.get_mut(ETHERNET_HEADER_LEN..) else {
        return Err(FwdDrop::Malformed);
    };
    if ip.len() < IPV4_MIN_HEADER_LEN {
        return Err(FwdDrop::Malformed);
    }
    let mut ip = Ipv4Packet::new_unchecked(ip);
    let ttl = ip.ttl();
    if ttl <= 1 {
        return Err(FwdDrop::TtlExceeded);
    }
    // The TTL is the high byte of its 16-bit word (TTL, protocol).
    let old = u16::from(ttl) << 8;
    let new = u16::from(ttl - 1) << 8;
    let sum = u32::from(!ip.checksum()) + u32::from(!old) + u32::from(new);
    ip.set_ttl(ttl - 1);
    ip.set_checksum(!checksum::fold(sum));
    Ok(())
}

/// Decrements the TTL (see [`decrement_ttl`]) and writes the next hop's MAC
/// addresses. Call after [`parse_ipv4`] accepted the frame.
pub fn forward_in_place(frame: &mut [u8], nh: &NextHop) -> Result<(), FwdDrop> {
    decrement_ttl(frame)?;
    set_macs(frame, nh);
    Ok(())
}

/// Writes the next hop's MAC addresses into an Ethernet frame.
pub fn set_macs(frame: &mut [u8], nh: &NextHop) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst_addr(EthernetAddress(nh.dst_mac));
        eth.set_src_addr(EthernetAddress(nh.src_mac));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::checksum;

    fn frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![0u8; ETHERNET_HEADER_LEN + 28];
        f[12] = 0x08;
        let ip = &mut f[ETHERNET_HEADER_LEN..];
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
            assert_eq!(
                parse_ipv4(&f).map(|h| h.dst),
                Ok(Ipv4Addr::new(10, 1, 2, 2))
            );
            forward_in_place(&mut f, &NH).unwrap();
            assert_eq!(f[ETHERNET_HEADER_LEN + 8], ttl - 1);
            assert_eq!(
                checksum(&f[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + 20]),
                0,
                "ttl {ttl}"
            );
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
        f[ETHERNET_HEADER_LEN + 10] ^= 1;
        assert_eq!(parse_ipv4(&f).map(|h| h.dst), Err(FwdDrop::Malformed));
        let mut f = frame(64);
        f[12] = 0x86;
        f[13] = 0xdd;
        assert_eq!(parse_ipv4(&f).map(|h| h.dst), Err(FwdDrop::NotIpv4));
        let f = frame(64);
        assert_eq!(parse_ipv4(&f[..30]).map(|h| h.dst), Err(FwdDrop::Malformed));
        let mut f = frame(64);
        f[ETHERNET_HEADER_LEN + 3] = 200; // total length beyond the frame
        assert_eq!(parse_ipv4(&f).map(|h| h.dst), Err(FwdDrop::Malformed));
    }
}

#[cfg(test)]
mod proptests {
    use super::super::{icmp, netlink};
    use super::*;
    use crate::wire::checksum::checksum;
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
            if let Ok(h) = parse_ipv4(&f) {
                let _ = h.dont_frag;
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
