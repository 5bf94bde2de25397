//! UDP headers (RFC 768).

use super::{checksum, need, WireError};
use std::net::Ipv4Addr;

pub const UDP_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram. After `new_checked` the length field is at least 8 and fits
/// in the buffer.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        need(have, UDP_HEADER_LEN)?;
        let l = usize::from(self.len());
        if l < UDP_HEADER_LEN {
            return Err(WireError::BadLength);
        }
        need(have, l)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT.start)
    }
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT.start)
    }
    /// The length field (header + payload).
    pub fn len(&self) -> u16 {
        self.u16_at(field::LENGTH.start)
    }
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= UDP_HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM.start)
    }
    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[UDP_HEADER_LEN..usize::from(self.len())]
    }

    /// Verifies the checksum against the IPv4 pseudo-header; a zero checksum (none
    /// sent, as RFC 3948 allows for ESP-in-UDP) verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let dgram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::fold(pseudo_sum(src, dst, self.len()) + checksum::sum(dgram)) == 0xffff
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    checksum::sum(&s) + checksum::sum(&d) + 17 + u32::from(len)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Computes and stores the checksum over the pseudo-header and `len()` bytes.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let dgram = &self.buffer.as_ref()[..usize::from(len)];
        let mut c = !checksum::fold(pseudo_sum(src, dst, len) + checksum::sum(dgram));
        if c == 0 {
            c = 0xffff;
        }
        self.set_checksum(c);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        &mut self.buffer.as_mut()[UDP_HEADER_LEN..l]
    }
}

/// The high-level form of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses a checked datagram, verifying a non-zero checksum against the addresses.
    pub fn parse<T: AsRef<[u8]>>(
        p: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Self, WireError> {
        p.check_len()?;
        if !p.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.payload().len(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        UDP_HEADER_LEN + self.payload_len
    }

    /// Writes the header. With `Some((src, dst))` the checksum is computed over the
    /// payload already in the buffer; with `None` it is zero (as ESP-in-UDP sends it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut UdpPacket<T>,
        addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    ) -> Result<(), WireError> {
        let total = self.buffer_len();
        if total > usize::from(u16::MAX) {
            return Err(WireError::BadLength);
        }
        let have = p.buffer.as_ref().len();
        if have < total {
            return Err(WireError::BufferTooSmall { need: total, have });
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(total as u16);
        match addrs {
            Some((s, d)) => p.fill_checksum(s, d),
            None => p.set_checksum(0),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn emit_parse_with_checksum() {
        let repr = UdpRepr {
            src_port: 4500,
            dst_port: 4500,
            payload_len: 5,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(b"hello");
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, Some((SRC, DST))).unwrap();
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(UdpRepr::parse(&p, SRC, DST).unwrap(), repr);
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.src_port(), 4500);
        assert_eq!(p.len(), 13);
    }

    #[test]
    fn zero_checksum_accepted() {
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 0,
        };
        let mut buf = [0xffu8; 8];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), None)
            .unwrap();
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0);
        assert!(p.is_empty());
        assert_eq!(UdpRepr::parse(&p, SRC, DST).unwrap(), repr);
    }

    #[test]
    fn length_errors() {
        let buf = [0u8, 1, 0, 2, 0, 7, 0, 0];
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::BadLength
        );
        let buf = [0u8, 1, 0, 2, 0, 20, 0, 0, 1, 2];
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::Truncated { need: 20, have: 10 }
        );
        assert!(UdpPacket::new_checked(&buf[..7]).is_err());
        let mut small = [0u8; 9];
        let repr = UdpRepr {
            src_port: 1,
            dst_port: 2,
            payload_len: 2,
        };
        assert!(repr
            .emit(&mut UdpPacket::new_unchecked(&mut small[..]), None)
            .is_err());
    }
}
