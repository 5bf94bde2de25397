//! ESP headers (RFC 4303 §2) and the ESP-in-UDP framing of RFC 3948.
//!
//! The view covers the clear part of an ESP packet: SPI, sequence number and the opaque
//! rest (IV, ciphertext, ICV). What lies inside depends on the transform, so the ESP
//! engine (`crate::esp`) splits it.

use super::{need, WireError};

pub const ESP_HEADER_LEN: usize = 8;
/// The IKE/ESP-in-UDP port (RFC 3948).
pub const NATT_PORT: u16 = 4500;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const SPI: Range<usize> = 0..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A view of an ESP packet (header and opaque payload).
#[derive(Debug, Clone)]
pub struct EspPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        EspPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        need(self.buffer.as_ref().len(), ESP_HEADER_LEN)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn spi(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SPI];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// The low 32 bits of the sequence number (the only ones on the wire).
    pub fn seq(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQ];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// IV, ciphertext and ICV.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspPacket<T> {
    pub fn set_spi(&mut self, v: u32) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_seq(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The clear ESP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspRepr {
    pub spi: u32,
    pub seq: u32,
}

impl EspRepr {
    /// Parses the header. SPIs 0..=255 are reserved (RFC 4303 §2.1) and rejected.
    pub fn parse<T: AsRef<[u8]>>(p: &EspPacket<T>) -> Result<Self, WireError> {
        p.check_len()?;
        if p.spi() < 256 {
            return Err(WireError::BadField);
        }
        Ok(EspRepr {
            spi: p.spi(),
            seq: p.seq(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        ESP_HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut EspPacket<T>,
    ) -> Result<(), WireError> {
        let have = p.buffer.as_ref().len();
        if have < ESP_HEADER_LEN {
            return Err(WireError::BufferTooSmall {
                need: ESP_HEADER_LEN,
                have,
            });
        }
        p.set_spi(self.spi);
        p.set_seq(self.seq);
        Ok(())
    }
}

/// What a UDP/4500 payload carries (RFC 3948 §2.2–2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatTPayload {
    /// An ESP packet (first word, the SPI, is non-zero).
    Esp,
    /// IKE behind the 4-byte zero non-ESP marker.
    Ike,
    /// A NAT-keepalive: the single byte 0xFF.
    Keepalive,
    /// Too short to be any of them.
    Malformed,
}

/// Classifies the payload of a UDP datagram to or from port 4500.
pub fn classify_natt(payload: &[u8]) -> NatTPayload {
    match payload {
        [0xff] => NatTPayload::Keepalive,
        [0, 0, 0, 0, ..] => NatTPayload::Ike,
        p if p.len() >= ESP_HEADER_LEN => NatTPayload::Esp,
        _ => NatTPayload::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        let buf = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 9, 0xaa, 0xbb];
        let p = EspPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.spi(), 0x1234_5678);
        assert_eq!(p.seq(), 9);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        let repr = EspRepr::parse(&p).unwrap();
        let mut out = [0u8; 10];
        repr.emit(&mut EspPacket::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(&out[..8], &buf[..8]);
    }

    #[test]
    fn short_and_reserved() {
        let buf = [0u8, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            EspPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::Truncated { need: 8, have: 7 }
        );
        let reserved = [0u8, 0, 0, 255, 0, 0, 0, 1];
        let p = EspPacket::new_checked(&reserved[..]).unwrap();
        assert_eq!(EspRepr::parse(&p).unwrap_err(), WireError::BadField);
        let mut small = [0u8; 4];
        assert!(EspRepr { spi: 300, seq: 1 }
            .emit(&mut EspPacket::new_unchecked(&mut small[..]))
            .is_err());
    }

    #[test]
    fn natt_classification() {
        assert_eq!(classify_natt(&[0xff]), NatTPayload::Keepalive);
        assert_eq!(classify_natt(&[0, 0, 0, 0, 1, 2]), NatTPayload::Ike);
        assert_eq!(classify_natt(&[0, 0, 1, 0, 0, 0, 0, 1]), NatTPayload::Esp);
        assert_eq!(classify_natt(&[0, 0, 1, 0, 0]), NatTPayload::Malformed);
        assert_eq!(classify_natt(&[]), NatTPayload::Malformed);
    }
}
