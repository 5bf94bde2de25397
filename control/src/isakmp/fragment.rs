//! IKEv1 fragmentation, the Cisco format that strongSwan also speaks (vendor ID
//! "FRAGMENTATION", payload type 132).
//!
//! A message too large for the path is emitted whole (header, payloads, encryption), then
//! cut into slices. Each slice travels in its own ISAKMP message: the same cookies, message
//! ID 0, the flags clear, the exchange type of the phase-1 mode, and one fragment payload:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |   RESERVED    |        Payload Length         |
//! +---------------+---------------+---------------+---------------+
//! |          Fragment ID          |  Fragment Nr  |     Flags     |
//! +---------------+---------------+---------------+---------------+
//! |                    slice of the whole message                 |
//! ```
//!
//! Fragment numbers start at 1; flag bit 0 ([`FLAG_LAST`]) marks the last one. The receiver
//! collects the slices of one fragment ID (see `ike::endpoint::fragments`) and handles the
//! concatenation as if it had arrived in one datagram.

use super::{ExchangeType, Header, HeaderRepr, WireError, HEADER_LEN};
use core::ops::Range;

/// Payload type of the fragment payload.
pub const PAYLOAD_FRAGMENT: u8 = 132;
/// Flag: this is the last fragment.
pub const FLAG_LAST: u8 = 0x01;
/// Generic header plus id, number and flags.
pub const FRAGMENT_HEADER_LEN: usize = 8;
/// Vendor ID "FRAGMENTATION" (MD5 of the string, then Cisco's capability word).
pub const VID_FRAGMENTATION: [u8; 20] = [
    0x40, 0x48, 0xb7, 0xd5, 0x6e, 0xbc, 0xe8, 0x85, 0x25, 0xe7, 0xde, 0x7f, 0x00, 0xd6, 0xc2, 0xd3,
    0x80, 0x00, 0x00, 0x00,
];
/// Some peers send the vendor ID with other capability bits; the first 16 bytes name it.
pub fn is_fragmentation_vid(v: &[u8]) -> bool {
    v.len() >= 16 && v[..16] == VID_FRAGMENTATION[..16]
}

mod field {
    use core::ops::Range;
    pub const NEXT: usize = 0;
    pub const LENGTH: Range<usize> = 2..4;
    pub const ID: Range<usize> = 4..6;
    pub const NUMBER: usize = 6;
    pub const FLAGS: usize = 7;
    pub const DATA: usize = 8;
}

/// Zero-copy view of one fragment payload (generic header included). After
/// [`FragmentPayload::new_checked`] no accessor panics.
#[derive(Debug, Clone)]
pub struct FragmentPayload<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentPayload<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        FragmentPayload { buffer }
    }
    /// Checks the buffer holds the fixed part and the length field's bytes, that the
    /// length covers the fixed part, that it is the only payload (next payload 0) and that
    /// its number is not 0.
    pub fn new_checked(buffer: T) -> Result<Self, FragmentError> {
        let f = FragmentPayload { buffer };
        let b = f.buffer.as_ref();
        if b.len() < FRAGMENT_HEADER_LEN {
            return Err(FragmentError::Truncated(b.len()));
        }
        let len = f.length() as usize;
        if len < FRAGMENT_HEADER_LEN || len > b.len() {
            return Err(FragmentError::BadLength {
                field: len,
                actual: b.len(),
            });
        }
        if b[field::NEXT] != 0 {
            return Err(FragmentError::NotLast(b[field::NEXT]));
        }
        if f.number() == 0 {
            return Err(FragmentError::ZeroNumber);
        }
        Ok(f)
    }
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::LENGTH.start], b[field::LENGTH.start + 1]])
    }
    pub fn id(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::ID.start], b[field::ID.start + 1]])
    }
    pub fn number(&self) -> u8 {
        self.buffer.as_ref()[field::NUMBER]
    }
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn is_last(&self) -> bool {
        self.flags() & FLAG_LAST != 0
    }
    /// The slice of the whole message this fragment carries.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.length() as usize]
    }
}

/// One received fragment message: its header and its fragment payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentRepr<'a> {
    pub header: HeaderRepr,
    pub id: u16,
    pub number: u8,
    pub last: bool,
    pub data: &'a [u8],
}

impl<'a> FragmentRepr<'a> {
    /// Parses a whole ISAKMP message whose first payload is a fragment payload.
    pub fn parse(msg: &'a [u8]) -> Result<FragmentRepr<'a>, FragmentError> {
        let h = Header::new_checked(msg).map_err(FragmentError::Wire)?;
        let header = HeaderRepr::parse(&h).map_err(FragmentError::Wire)?;
        if header.next_payload != PAYLOAD_FRAGMENT {
            return Err(FragmentError::NotAFragment(header.next_payload));
        }
        if header.length as usize != msg.len() {
            return Err(FragmentError::Wire(WireError::BadLength {
                field: header.length as usize,
                actual: msg.len(),
            }));
        }
        let body = &msg[HEADER_LEN..];
        let f = FragmentPayload::new_checked(body)?;
        if f.length() as usize != body.len() {
            return Err(FragmentError::BadLength {
                field: f.length() as usize,
                actual: body.len(),
            });
        }
        let data = &body[field::DATA..f.length() as usize];
        Ok(FragmentRepr {
            header,
            id: f.id(),
            number: f.number(),
            last: f.is_last(),
            data,
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + FRAGMENT_HEADER_LEN + self.data.len()
    }

    /// Emits the whole fragment message (header length and next payload set here).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let mut h = self.header;
        h.next_payload = PAYLOAD_FRAGMENT;
        h.length = self.buffer_len() as u32;
        h.emit(&mut Header::new_unchecked(
            &mut out[start..start + HEADER_LEN],
        ));
        out.push(0);
        out.push(0);
        out.extend_from_slice(&((FRAGMENT_HEADER_LEN + self.data.len()) as u16).to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(self.number);
        out.push(if self.last { FLAG_LAST } else { 0 });
        out.extend_from_slice(self.data);
    }
}

/// Why a fragment cannot be used (all blame the peer's bytes: counted and dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error(transparent)]
    Wire(WireError),
    #[error("first payload {0} is not a fragment")]
    NotAFragment(u8),
    #[error("fragment payload truncated ({0} bytes)")]
    Truncated(usize),
    #[error("fragment payload length {field} does not fit {actual} bytes")]
    BadLength { field: usize, actual: usize },
    #[error("fragment payload followed by payload type {0}")]
    NotLast(u8),
    #[error("fragment number 0")]
    ZeroNumber,
    #[error("fragment number {0} beyond the limit")]
    TooManyFragments(u8),
    #[error("fragment number {number} after the last one ({last})")]
    BeyondLast { number: u8, last: u8 },
    #[error("two last fragments ({0} and {1})")]
    TwoLast(u8, u8),
    #[error("same fragment number {0} with different data")]
    Conflict(u8),
    #[error("reassembled message would exceed {0} bytes")]
    TooLarge(usize),
    #[error("reassembled message is not one ISAKMP message of these cookies")]
    BadReassembly,
}

/// Largest data slice per fragment when each datagram may be `max_datagram` bytes of IP
/// (IPv4 header 20, UDP 8, the non-ESP marker 4 on port 4500, ISAKMP header, fragment
/// payload header).
pub fn slice_len(max_datagram: usize, natt: bool) -> usize {
    let overhead = 20 + 8 + if natt { 4 } else { 0 } + HEADER_LEN + FRAGMENT_HEADER_LEN;
    max_datagram.saturating_sub(overhead).max(1)
}

/// Cuts the whole message `msg` into fragment messages of fragment ID `id`, each at most
/// `slice` data bytes. `exchange` is the phase-1 mode's exchange type. At most 255
/// fragments (the number is one byte): the slices grow if the message needs more.
pub fn fragment(msg: &[u8], id: u16, slice: usize, exchange: ExchangeType) -> Vec<Vec<u8>> {
    let mut hdr = match Header::new_checked(msg).map(|h| HeaderRepr::parse(&h)) {
        Ok(Ok(h)) => h,
        _ => return vec![msg.to_vec()],
    };
    hdr.exchange = exchange;
    hdr.flags = 0;
    hdr.message_id = 0;
    let slice = slice.max(msg.len().div_ceil(255)).max(1);
    let count = msg.len().div_ceil(slice);
    msg.chunks(slice)
        .enumerate()
        .map(|(i, data)| {
            let f = FragmentRepr {
                header: hdr,
                id,
                number: (i + 1) as u8,
                last: i + 1 == count,
                data,
            };
            let mut out = Vec::with_capacity(f.buffer_len());
            f.emit(&mut out);
            out
        })
        .collect()
}

/// The byte range of the data in a fragment message (tests, capture checks).
pub fn data_range(len: usize) -> Range<usize> {
    HEADER_LEN + FRAGMENT_HEADER_LEN..len
}

/// A Main Mode message of `len` bytes with patterned contents (tests of fragmenting and
/// reassembling).
#[cfg(test)]
pub(crate) fn test_message(len: usize, icookie: [u8; 8]) -> Vec<u8> {
    let mut m = vec![0u8; len];
    let h = HeaderRepr {
        icookie,
        rcookie: [2; 8],
        next_payload: 5,
        version: crate::isakmp::VERSION_1_0,
        exchange: ExchangeType::Main,
        flags: 1,
        message_id: 0,
        length: len as u32,
    };
    h.emit(&mut Header::new_unchecked(&mut m[..HEADER_LEN]));
    for (i, b) in m[HEADER_LEN..].iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(len: usize) -> Vec<u8> {
        test_message(len, [1; 8])
    }


    #[test]
    fn vendor_id_is_md5_of_fragmentation_then_capability_word() {
        use md5::Digest;
        let d = md5::Md5::digest(b"FRAGMENTATION");
        assert_eq!(&VID_FRAGMENTATION[..16], &d[..]);
        assert_eq!(&VID_FRAGMENTATION[16..], &[0x80, 0, 0, 0]);
        assert!(is_fragmentation_vid(&d));
        assert!(!is_fragmentation_vid(&d[..15]));
    }

    #[test]
    fn fragments_parse_back_to_their_slices_in_order() {
        let m = whole(3000);
        let frags = fragment(&m, 7, slice_len(1280, false), ExchangeType::Aggressive);
        assert_eq!(frags.len(), 3);
        let mut joined = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 1280 - 28, "{}", f.len());
            let r = FragmentRepr::parse(f).unwrap();
            assert_eq!(r.id, 7);
            assert_eq!(r.number as usize, i + 1);
            assert_eq!(r.last, i == 2);
            assert_eq!(r.header.icookie, [1; 8]);
            assert_eq!(r.header.rcookie, [2; 8]);
            assert_eq!(r.header.message_id, 0);
            assert_eq!(r.header.flags, 0, "fragments travel with the flags clear");
            assert_eq!(r.header.exchange, ExchangeType::Aggressive);
            assert_eq!(&f[data_range(f.len())], r.data);
            let mut again = Vec::new();
            r.emit(&mut again);
            assert_eq!(&again, f, "parse and emit are symmetric");
            joined.extend_from_slice(r.data);
        }
        assert_eq!(joined, m);
    }

    #[test]
    fn a_message_needing_more_than_255_fragments_gets_larger_slices() {
        let m = whole(60_000);
        let frags = fragment(&m, 1, 100, ExchangeType::Main);
        assert_eq!(frags.len(), 255);
        assert!(FragmentRepr::parse(frags.last().unwrap()).unwrap().last);
    }

    #[test]
    fn malformed_fragments_are_typed_errors() {
        let m = whole(600);
        let f = fragment(&m, 1, 200, ExchangeType::Main).remove(0);
        assert!(matches!(
            FragmentRepr::parse(&f[..30]),
            Err(FragmentError::Wire(_))
        ));
        let mut next = f.clone();
        next[HEADER_LEN] = 5;
        assert_eq!(FragmentRepr::parse(&next), Err(FragmentError::NotLast(5)));
        let mut zero = f.clone();
        zero[HEADER_LEN + 6] = 0;
        assert_eq!(FragmentRepr::parse(&zero), Err(FragmentError::ZeroNumber));
        let mut short = f.clone();
        short[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&7u16.to_be_bytes());
        assert!(matches!(
            FragmentRepr::parse(&short),
            Err(FragmentError::BadLength { field: 7, .. })
        ));
        let mut long = f.clone();
        long[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&9999u16.to_be_bytes());
        assert!(matches!(
            FragmentRepr::parse(&long),
            Err(FragmentError::BadLength { field: 9999, .. })
        ));
        assert_eq!(FragmentRepr::parse(&m), Err(FragmentError::NotAFragment(5)));
    }
}
