//! Zero-copy packet views in the smoltcp style (DESIGN §3).
//!
//! Each header has a view `XxxPacket<T: AsRef<[u8]>>` (or `EthernetFrame`) built with
//! `new_checked`, after which no getter panics; setters need `T: AsMut<[u8]>`. Field
//! offsets are named ranges in a private `field` module. Headers the control plane builds
//! also have a `Repr` with symmetric `parse` / `buffer_len` / `emit`.

pub mod checksum;
pub mod esp;
pub mod ethernet;
pub mod ipv4;
pub mod udp;

pub use esp::{classify_natt, EspPacket, EspRepr, NatTPayload, ESP_HEADER_LEN, NATT_PORT};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, ETHERNET_HEADER_LEN};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr, IPV4_MIN_HEADER_LEN};
pub use udp::{UdpPacket, UdpRepr, UDP_HEADER_LEN};

/// Why a buffer is not a valid header. Malformed input is the sender's fault; none of
/// these is a local bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or than a length field inside it claims).
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// A length field is inconsistent (e.g. IHL below 5, UDP length below 8).
    #[error("bad length field")]
    BadLength,
    /// IP version other than 4.
    #[error("not IPv4 (version {0})")]
    BadVersion(u8),
    /// Header checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// A field holds a value the header forbids (e.g. SPI 1..=255 reserved).
    #[error("reserved or invalid field value")]
    BadField,
    /// The output buffer is too small for `emit`.
    #[error("buffer too small to emit: need {need}, have {have}")]
    BufferTooSmall { need: usize, have: usize },
}

pub(crate) fn need(buf_len: usize, need: usize) -> Result<(), WireError> {
    if buf_len < need {
        Err(WireError::Truncated {
            need,
            have: buf_len,
        })
    } else {
        Ok(())
    }
}
