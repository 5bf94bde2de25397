//! ICMP errors the dataplane originates (RFC 792 / RFC 1191): "fragmentation
//! needed" when a DF packet does not fit the tunnel, "time exceeded" when
//! the TTL runs out. Never about another ICMP error, a non-first fragment or
//! a broadcast/multicast source (RFC 1812 §4.3.2.7).

use super::fib::NextHop;
use crate::wire::checksum::checksum;
use std::net::Ipv4Addr;

const ETH_LEN: usize = 14;

/// Which error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Type 3 code 4 with the next-hop MTU.
    FragmentationNeeded { mtu: u16 },
    /// Type 11 code 0.
    TtlExceeded,
}

/// Whether `orig` (an Ethernet/IPv4 frame already checked by
/// `forward::parse_ipv4`) may be answered with an ICMP error.
pub fn may_answer(orig: &[u8]) -> bool {
    let Some(ip) = orig.get(ETH_LEN..) else {
        return false;
    };
    if ip.len() < 20 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let frag_off = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if frag_off != 0 {
        return false;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    if src.is_broadcast() || src.is_multicast() || src.is_unspecified() || src.is_loopback() {
        return false;
    }
    if ip[9] == 1 {
        // ICMP: answer only queries (echo request 8, timestamp 13...), not errors.
        let Some(&ty) = ip.get(ihl) else { return false };
        if matches!(ty, 3 | 4 | 5 | 11 | 12) {
            return false;
        }
    }
    true
}

/// Writes into `out` an Ethernet frame carrying the ICMP error about `orig`,
/// from `src_ip`, to the original source through `nh`; returns its length.
pub fn build_error(
    orig: &[u8],
    err: IcmpError,
    src_ip: Ipv4Addr,
    nh: &NextHop,
    out: &mut [u8],
) -> Option<usize> {
    let ip = orig.get(ETH_LEN..)?;
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?])).min(ip.len());
    // The original header and the first 8 bytes of its payload.
    let quote = &ip[..(ihl + 8).min(total)];
    let icmp_len = 8 + quote.len();
    let ip_len = 20 + icmp_len;
    let len = ETH_LEN + ip_len;
    let out = out.get_mut(..len)?;
    out[0..6].copy_from_slice(&nh.dst_mac);
    out[6..12].copy_from_slice(&nh.src_mac);
    out[12..14].copy_from_slice(&[0x08, 0x00]);
    let h = &mut out[ETH_LEN..];
    h[0] = 0x45;
    h[1] = 0xc0; // internetwork control
    h[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    h[4..8].copy_from_slice(&[0, 0, 0, 0]);
    h[8] = 64;
    h[9] = 1;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src_ip.octets());
    h[16..20].copy_from_slice(&ip[12..16]);
    let c = checksum(&h[..20]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut h[20..20 + icmp_len];
    let (ty, code, rest) = match err {
        IcmpError::FragmentationNeeded { mtu } => (3u8, 4u8, [0, 0, (mtu >> 8) as u8, mtu as u8]),
        IcmpError::TtlExceeded => (11, 0, [0; 4]),
    };
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..4].copy_from_slice(&[0, 0]);
    icmp[4..8].copy_from_slice(&rest);
    icmp[8..].copy_from_slice(quote);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(proto: u8, payload: &[u8], frag_off: u16) -> Vec<u8> {
        let mut f = vec![0u8; ETH_LEN + 20];
        f[12] = 0x08;
        let ip = &mut f[ETH_LEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&frag_off.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[10, 1, 1, 2]);
        ip[16..20].copy_from_slice(&[10, 1, 2, 2]);
        let c = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const NH: NextHop = NextHop {
        oif: 1,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        mtu: 1500,
        src_ip: None,
    };

    #[test]
    fn frag_needed_quotes_header_and_8_bytes() {
        let orig = frame(
            17,
            &[0x9c, 0x40, 0x9c, 0x41, 0, 20, 0, 0, 1, 2, 3, 4],
            0x4000,
        );
        assert!(may_answer(&orig));
        let mut out = [0u8; 256];
        let n = build_error(
            &orig,
            IcmpError::FragmentationNeeded { mtu: 1438 },
            Ipv4Addr::new(10, 1, 1, 1),
            &NH,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, ETH_LEN + 20 + 8 + 28);
        let ip = &out[ETH_LEN..n];
        assert_eq!(checksum(&ip[..20]), 0);
        assert_eq!(&ip[12..16], &[10, 1, 1, 1]);
        assert_eq!(&ip[16..20], &[10, 1, 1, 2]);
        let icmp = &ip[20..];
        assert_eq!((icmp[0], icmp[1]), (3, 4));
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1438);
        assert_eq!(checksum(icmp), 0);
        assert_eq!(&icmp[8..], &orig[ETH_LEN..ETH_LEN + 28]);
        assert_eq!(&out[0..6], &NH.dst_mac);
    }

    #[test]
    fn never_about_errors_or_later_fragments() {
        assert!(!may_answer(&frame(1, &[3, 4, 0, 0, 0, 0, 0, 0], 0)));
        assert!(!may_answer(&frame(1, &[11, 0, 0, 0, 0, 0, 0, 0], 0)));
        assert!(may_answer(&frame(1, &[8, 0, 0, 0, 0, 0, 0, 0], 0)));
        assert!(!may_answer(&frame(17, &[0; 8], 0x2001)));
        assert!(!may_answer(&[0u8; 10]));
    }

    #[test]
    fn short_output_buffer_is_refused() {
        let orig = frame(17, &[0; 8], 0);
        let mut out = [0u8; 40];
        assert!(build_error(
            &orig,
            IcmpError::TtlExceeded,
            Ipv4Addr::new(10, 1, 1, 1),
            &NH,
            &mut out
        )
        .is_none());
    }
}
