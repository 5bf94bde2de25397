//! IPv4 headers (RFC 791), options included.

use super::{checksum, need, WireError};
use std::net::Ipv4Addr;

pub const IPV4_MIN_HEADER_LEN: usize = 20;
pub const IPV4_MAX_HEADER_LEN: usize = 60;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const OPTIONS_START: usize = 20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;

/// IP protocol numbers we handle; the rest are `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    /// IPv4-in-IPv4 (the ESP next header in tunnel mode).
    IpIp,
    Tcp,
    Udp,
    Ipv6,
    Esp,
    Ah,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            41 => IpProtocol::Ipv6,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            n => IpProtocol::Unknown(n),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6 => 41,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Unknown(n) => n,
        }
    }
}

/// A view of an IPv4 packet. After `new_checked`: version 4, IHL ≥ 5, the header and
/// `total_len` bytes fit in the buffer (the buffer may be longer, e.g. Ethernet padding).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need(len, IPV4_MIN_HEADER_LEN)?;
        if self.version() != 4 {
            return Err(WireError::BadVersion(self.version()));
        }
        let hl = self.header_len();
        if hl < IPV4_MIN_HEADER_LEN {
            return Err(WireError::BadLength);
        }
        need(len, hl)?;
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(WireError::BadLength);
        }
        need(len, tl)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LEN.start)
    }
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT.start)
    }
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF.start) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF.start) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLG_OFF.start) & 0x1fff) << 3
    }
    /// True for any fragment (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        self.addr_at(field::SRC.start)
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.addr_at(field::DST.start)
    }
    /// The options bytes (empty when IHL = 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS_START..self.header_len()]
    }
    /// The header (with options).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.header())) == 0xffff
    }
    /// The payload, bounded by `total_len` (trailing link padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    fn addr_at(&self, at: usize) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        debug_assert!(header_len.is_multiple_of(4) && (20..=60).contains(&header_len));
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets DF/MF and the fragment offset (bytes, multiple of 8).
    pub fn set_flags_and_offset(&mut self, df: bool, mf: bool, offset: u16) {
        let mut v = (offset >> 3) & 0x1fff;
        if df {
            v |= FLAG_DF;
        }
        if mf {
            v |= FLAG_MF;
        }
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(p);
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS_START..hl]
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// The high-level form of an IPv4 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    /// Raw options, a multiple of 4 bytes, at most 40.
    pub options: Vec<u8>,
}

impl Ipv4Repr {
    /// Parses a checked packet. Rejects bad checksums and fragments (a `Repr` describes
    /// one whole datagram).
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self, WireError> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        if p.is_fragment() {
            return Err(WireError::BadField);
        }
        Ok(Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.payload().len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            options: p.options().to_vec(),
        })
    }

    pub fn header_len(&self) -> usize {
        IPV4_MIN_HEADER_LEN + self.options.len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (checksum filled) into the start of `p`'s buffer; the payload
    /// is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Ipv4Packet<T>,
    ) -> Result<(), WireError> {
        let hl = self.header_len();
        if !self.options.len().is_multiple_of(4) || hl > IPV4_MAX_HEADER_LEN {
            return Err(WireError::BadField);
        }
        let total = self.buffer_len();
        if total > usize::from(u16::MAX) {
            return Err(WireError::BadLength);
        }
        let have = p.buffer.as_ref().len();
        if have < hl {
            return Err(WireError::BufferTooSmall { need: hl, have });
        }
        p.set_version_and_header_len(hl);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(total as u16);
        p.set_ident(self.ident);
        p.set_flags_and_offset(self.dont_frag, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.buffer.as_mut()[field::OPTIONS_START..hl].copy_from_slice(&self.options);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real UDP datagram header: 10.1.1.2 -> 10.1.2.2, TTL 64, DF, id 0x1c46,
    // checksum computed by hand with the RFC 1071 sum.
    fn sample() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x1e, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 1, 1, 2,
            10, 1, 2, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x02,
        ];
        let c = checksum::checksum(&v[..20]);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v
    }

    #[test]
    fn parse_fields() {
        let buf = sample();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 30);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 1, 1, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 1, 2, 2));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 10);
        assert!(p.options().is_empty());
    }

    #[test]
    fn trailing_link_padding_is_not_payload() {
        let mut buf = sample();
        buf.extend_from_slice(&[0; 16]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 10);
    }

    #[test]
    fn check_len_errors() {
        let buf = sample();
        assert!(matches!(
            Ipv4Packet::new_checked(&buf[..19]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Ipv4Packet::new_checked(&buf[..29]),
            Err(WireError::Truncated { need: 30, have: 29 })
        ));
        let mut v6 = buf.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::BadVersion(6)
        );
        let mut ihl = buf.clone();
        ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl[..]).unwrap_err(),
            WireError::BadLength
        );
        let mut ihl_big = buf.clone();
        ihl_big[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert!(matches!(
            Ipv4Packet::new_checked(&ihl_big[..]),
            Err(WireError::Truncated { need: 60, .. })
        ));
        let mut tl = buf.clone();
        tl[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&tl[..]).unwrap_err(),
            WireError::BadLength
        );
    }

    #[test]
    fn bad_checksum_detected() {
        let mut buf = sample();
        buf[8] = 63;
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), WireError::BadChecksum);
    }

    #[test]
    fn options_and_repr_round_trip() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(172, 16, 172, 10),
            dst: Ipv4Addr::new(172, 16, 172, 20),
            protocol: IpProtocol::Esp,
            payload_len: 5,
            ttl: 255,
            dscp_ecn: 0xb8,
            ident: 7,
            dont_frag: false,
            options: vec![0x94, 0x04, 0x00, 0x00], // router alert
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn fragments_flagged() {
        let mut buf = sample();
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_flags_and_offset(false, false, 1480);
        p.fill_checksum();
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), WireError::BadField);
        p.set_flags_and_offset(false, true, 0);
        assert!(p.more_frags() && p.is_fragment());
    }

    #[test]
    fn emit_rejects_bad_options() {
        let mut repr = Ipv4Repr {
            src: Ipv4Addr::LOCALHOST,
            dst: Ipv4Addr::LOCALHOST,
            protocol: IpProtocol::Unknown(253),
            payload_len: 0,
            ttl: 1,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
            options: vec![1, 1, 1],
        };
        let mut buf = [0u8; 64];
        assert_eq!(
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])),
            Err(WireError::BadField)
        );
        repr.options = vec![];
        assert!(repr
            .emit(&mut Ipv4Packet::new_unchecked(&mut buf[..10]))
            .is_err());
    }
}
