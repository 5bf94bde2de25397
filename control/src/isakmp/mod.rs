//! ISAKMP wire format (RFC 2408, IKEv1 use from RFC 2409, NAT-T payloads from RFC 3947).
//!
//! Two layers, smoltcp style:
//! - [`Header`] is a zero-copy view of the fixed 28-byte ISAKMP header (`new_checked`, then
//!   no accessor panics; setters on `AsMut`).
//! - [`Message`] / [`Payload`] are the `Repr`s: `parse` from bytes, `buffer_len`, `emit`.
//!   Parse and emit are symmetric: `emit(parse(b)) == b` for every well-formed `b`.
//!
//! Errors are sorted by blame ([`WireError::blame`]) and each maps to the notify type that
//! RFC 2408 §3.14.1 says to answer with ([`WireError::notify`]). Nothing here panics on
//! arbitrary input (fuzz target `isakmp_message`).

pub mod attr;
pub mod cert;
pub mod fragment;
pub mod payload;
pub mod pubkey_enc;

pub use attr::{Attr, AttrValue};
pub use payload::*;

use core::fmt;
use core::ops::Range;

/// Fixed header length.
pub const HEADER_LEN: usize = 28;
/// Generic payload header length.
pub const GENERIC_LEN: usize = 4;
/// ISAKMP version 1.0 (major 1, minor 0).
pub const VERSION_1_0: u8 = 0x10;
/// The non-ESP marker that precedes IKE on UDP 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Largest message we accept or build (bounded memory).
pub const MAX_MESSAGE_LEN: usize = 65535;

mod field {
    use core::ops::Range;
    pub const ICOOKIE: Range<usize> = 0..8;
    pub const RCOOKIE: Range<usize> = 8..16;
    pub const NEXT: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MSGID: Range<usize> = 20..24;
    pub const LENGTH: Range<usize> = 24..28;
}

/// Who is to blame for a message we cannot use (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The bytes do not form a valid message.
    Malformed,
    /// Well-formed but the peer broke the protocol (wrong hash, unexpected payload).
    PeerMisbehaved,
    /// Valid but uses something we do not implement.
    Unsupported,
    /// Valid and supported but our configuration refuses it.
    LocalPolicy,
}

/// ISAKMP notify message types (RFC 2408 §3.14.1, RFC 2409/3706/2407 status types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyType {
    InvalidPayloadType,
    DoiNotSupported,
    SituationNotSupported,
    InvalidCookie,
    InvalidMajorVersion,
    InvalidMinorVersion,
    InvalidExchangeType,
    InvalidFlags,
    InvalidMessageId,
    InvalidProtocolId,
    InvalidSpi,
    InvalidTransformId,
    AttributesNotSupported,
    NoProposalChosen,
    BadProposalSyntax,
    PayloadMalformed,
    InvalidKeyInformation,
    InvalidIdInformation,
    AuthenticationFailed,
    InvalidHashInformation,
    /// RFC 2408 §3.14.1 status: the commit-bit exchange is complete.
    Connected,
    /// RFC 2407 §4.6.3.1
    ResponderLifetime,
    /// RFC 2407 §4.6.3.3
    InitialContact,
    /// RFC 3706
    RUThere,
    /// RFC 3706
    RUThereAck,
    Unknown(u16),
}

impl NotifyType {
    pub fn code(self) -> u16 {
        use NotifyType::*;
        match self {
            InvalidPayloadType => 1,
            DoiNotSupported => 2,
            SituationNotSupported => 3,
            InvalidCookie => 4,
            InvalidMajorVersion => 5,
            InvalidMinorVersion => 6,
            InvalidExchangeType => 7,
            InvalidFlags => 8,
            InvalidMessageId => 9,
            InvalidProtocolId => 10,
            InvalidSpi => 11,
            InvalidTransformId => 12,
            AttributesNotSupported => 13,
            NoProposalChosen => 14,
            BadProposalSyntax => 15,
            PayloadMalformed => 16,
            InvalidKeyInformation => 17,
            InvalidIdInformation => 18,
            AuthenticationFailed => 24,
            InvalidHashInformation => 23,
            Connected => 16384,
            ResponderLifetime => 24576,
            InitialContact => 24578,
            RUThere => 36136,
            RUThereAck => 36137,
            Unknown(n) => n,
        }
    }
    pub fn from_code(n: u16) -> Self {
        use NotifyType::*;
        match n {
            1 => InvalidPayloadType,
            2 => DoiNotSupported,
            3 => SituationNotSupported,
            4 => InvalidCookie,
            5 => InvalidMajorVersion,
            6 => InvalidMinorVersion,
            7 => InvalidExchangeType,
            8 => InvalidFlags,
            9 => InvalidMessageId,
            10 => InvalidProtocolId,
            11 => InvalidSpi,
            12 => InvalidTransformId,
            13 => AttributesNotSupported,
            14 => NoProposalChosen,
            15 => BadProposalSyntax,
            16 => PayloadMalformed,
            17 => InvalidKeyInformation,
            18 => InvalidIdInformation,
            23 => InvalidHashInformation,
            24 => AuthenticationFailed,
            16384 => Connected,
            24576 => ResponderLifetime,
            24578 => InitialContact,
            36136 => RUThere,
            36137 => RUThereAck,
            n => Unknown(n),
        }
    }
    /// The IOS spelling used in debug output.
    pub fn ios_name(self) -> String {
        use NotifyType::*;
        match self {
            PayloadMalformed => "PAYLOAD_MALFORMED".into(),
            NoProposalChosen => "NO_PROPOSAL_CHOSEN".into(),
            InvalidHashInformation => "INVALID_HASH_INFORMATION".into(),
            AuthenticationFailed => "AUTHENTICATION_FAILED".into(),
            InvalidPayloadType => "INVALID_PAYLOAD_TYPE".into(),
            InvalidCookie => "INVALID_COOKIE".into(),
            InvalidExchangeType => "INVALID_EXCHANGE_TYPE".into(),
            InvalidMajorVersion => "INVALID_MAJOR_VERSION".into(),
            InvalidIdInformation => "INVALID_ID_INFORMATION".into(),
            InvalidSpi => "INVALID_SPI".into(),
            ResponderLifetime => "RESPONDER_LIFETIME".into(),
            Connected => "CONNECTED".into(),
            InitialContact => "INITIAL_CONTACT".into(),
            RUThere => "R_U_THERE".into(),
            RUThereAck => "R_U_THERE_ACK".into(),
            other => format!("NOTIFY {}", other.code()),
        }
    }
}

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message shorter than its header or length field ({0} bytes)")]
    Truncated(usize),
    #[error("length field {field} does not match datagram length {actual}")]
    BadLength { field: usize, actual: usize },
    #[error("payload of type {ty} has bad length {len}")]
    BadPayloadLength { ty: u8, len: usize },
    #[error("invalid major version {0:#x}")]
    InvalidMajorVersion(u8),
    #[error("unknown critical payload type {0}")]
    InvalidPayloadType(u8),
    #[error("malformed {0} payload")]
    PayloadMalformed(&'static str),
    #[error("bad proposal syntax: {0}")]
    BadProposalSyntax(&'static str),
    #[error("encrypted body not a multiple of the block size")]
    BadCiphertext,
    #[error("too many payloads")]
    TooManyPayloads,
}

impl WireError {
    pub fn blame(&self) -> Blame {
        match self {
            WireError::InvalidMajorVersion(_) => Blame::Unsupported,
            WireError::InvalidPayloadType(_) => Blame::Unsupported,
            _ => Blame::Malformed,
        }
    }
    pub fn notify(&self) -> NotifyType {
        match self {
            WireError::InvalidMajorVersion(_) => NotifyType::InvalidMajorVersion,
            WireError::InvalidPayloadType(_) => NotifyType::InvalidPayloadType,
            WireError::BadProposalSyntax(_) => NotifyType::BadProposalSyntax,
            _ => NotifyType::PayloadMalformed,
        }
    }
}

/// Exchange types (RFC 2408 §3.1, RFC 2409 §9.2 aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeType {
    /// Identity protection = Main Mode.
    Main,
    /// Aggressive Mode.
    Aggressive,
    Informational,
    /// Transaction Mode (XAUTH / Mode Config).
    Transaction,
    QuickMode,
    NewGroup,
    Unknown(u8),
}

impl ExchangeType {
    pub fn code(self) -> u8 {
        match self {
            ExchangeType::Main => 2,
            ExchangeType::Aggressive => 4,
            ExchangeType::Informational => 5,
            ExchangeType::Transaction => 6,
            ExchangeType::QuickMode => 32,
            ExchangeType::NewGroup => 33,
            ExchangeType::Unknown(n) => n,
        }
    }
    pub fn from_code(n: u8) -> Self {
        match n {
            2 => ExchangeType::Main,
            4 => ExchangeType::Aggressive,
            5 => ExchangeType::Informational,
            6 => ExchangeType::Transaction,
            32 => ExchangeType::QuickMode,
            33 => ExchangeType::NewGroup,
            n => ExchangeType::Unknown(n),
        }
    }
}

/// Header flags.
pub mod flags {
    pub const ENCRYPTION: u8 = 0x01;
    pub const COMMIT: u8 = 0x02;
    pub const AUTH_ONLY: u8 = 0x04;
}

/// Zero-copy view of the fixed ISAKMP header.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }
    /// Checks the buffer holds the header and the whole message its length field claims.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let h = Header { buffer };
        h.check_len()?;
        Ok(h)
    }
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated(b.len()));
        }
        let len = self.length() as usize;
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::BadLength {
                field: len,
                actual: b.len(),
            });
        }
        Ok(())
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn get<const N: usize>(&self, r: Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[r]);
        out
    }
    pub fn initiator_cookie(&self) -> [u8; 8] {
        self.get(field::ICOOKIE)
    }
    pub fn responder_cookie(&self) -> [u8; 8] {
        self.get(field::RCOOKIE)
    }
    pub fn next_payload(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT]
    }
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from_code(self.buffer.as_ref()[field::EXCHANGE])
    }
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(self.get(field::MSGID))
    }
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.get(field::LENGTH))
    }
    /// The bytes after the header, up to the length field.
    pub fn body(&self) -> &[u8] {
        let len = (self.length() as usize).min(self.buffer.as_ref().len());
        &self.buffer.as_ref()[HEADER_LEN.min(len)..len]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    pub fn set_initiator_cookie(&mut self, c: [u8; 8]) {
        self.buffer.as_mut()[field::ICOOKIE].copy_from_slice(&c)
    }
    pub fn set_responder_cookie(&mut self, c: [u8; 8]) {
        self.buffer.as_mut()[field::RCOOKIE].copy_from_slice(&c)
    }
    pub fn set_next_payload(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT] = v
    }
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[field::VERSION] = v
    }
    pub fn set_exchange_type(&mut self, v: ExchangeType) {
        self.buffer.as_mut()[field::EXCHANGE] = v.code()
    }
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v
    }
    pub fn set_message_id(&mut self, v: u32) {
        self.buffer.as_mut()[field::MSGID].copy_from_slice(&v.to_be_bytes())
    }
    pub fn set_length(&mut self, v: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes())
    }
}

/// High-level header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub icookie: [u8; 8],
    pub rcookie: [u8; 8],
    pub next_payload: u8,
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self, WireError> {
        h.check_len()?;
        if h.version() >> 4 != 1 {
            return Err(WireError::InvalidMajorVersion(h.version()));
        }
        Ok(HeaderRepr {
            icookie: h.initiator_cookie(),
            rcookie: h.responder_cookie(),
            next_payload: h.next_payload(),
            version: h.version(),
            exchange: h.exchange_type(),
            flags: h.flags(),
            message_id: h.message_id(),
            length: h.length(),
        })
    }
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_initiator_cookie(self.icookie);
        h.set_responder_cookie(self.rcookie);
        h.set_next_payload(self.next_payload);
        h.set_version(self.version);
        h.set_exchange_type(self.exchange);
        h.set_flags(self.flags);
        h.set_message_id(self.message_id);
        h.set_length(self.length);
    }
    pub fn encrypted(&self) -> bool {
        self.flags & flags::ENCRYPTION != 0
    }
}

/// A whole cleartext message: header plus its payload chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: HeaderRepr,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a cleartext message (the E flag must be clear; for encrypted messages parse
    /// the header with [`HeaderRepr::parse`], decrypt the body, then [`parse_chain`]).
    pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
        let h = Header::new_checked(bytes)?;
        let header = HeaderRepr::parse(&h)?;
        if header.length as usize != bytes.len() {
            return Err(WireError::BadLength {
                field: header.length as usize,
                actual: bytes.len(),
            });
        }
        let payloads = parse_chain(header.next_payload, h.body(), false)?;
        Ok(Message { header, payloads })
    }
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + chain_len(&self.payloads)
    }
    /// Emits into a fresh buffer; the header's `next_payload` and `length` are set from the
    /// payloads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        let mut h = self.header;
        h.next_payload = self
            .payloads
            .first()
            .map(|p| p.payload_type().code())
            .unwrap_or(0);
        emit_chain(&self.payloads, &mut out);
        h.length = out.len() as u32;
        h.emit(&mut Header::new_unchecked(&mut out[..HEADER_LEN]));
        out
    }
}

/// Maximum payloads in one message (bounded work per datagram).
pub const MAX_PAYLOADS: usize = 64;

/// Parses a generic payload chain that starts with payload type `first`.
///
/// `padded`: the chain came out of decryption, so bytes after the last payload (padding)
/// are allowed.
pub fn parse_chain(first: u8, mut body: &[u8], padded: bool) -> Result<Vec<Payload>, WireError> {
    let mut out = Vec::new();
    let mut next = first;
    while next != 0 {
        if out.len() >= MAX_PAYLOADS {
            return Err(WireError::TooManyPayloads);
        }
        if body.len() < GENERIC_LEN {
            return Err(WireError::Truncated(body.len()));
        }
        let this = next;
        next = body[0];
        let len = u16::from_be_bytes([body[2], body[3]]) as usize;
        if len < GENERIC_LEN || len > body.len() {
            return Err(WireError::BadPayloadLength { ty: this, len });
        }
        let pbody = &body[GENERIC_LEN..len];
        out.push(Payload::parse(PayloadType::from_code(this), pbody)?);
        body = &body[len..];
    }
    if !body.is_empty() && !padded {
        return Err(WireError::BadLength {
            field: 0,
            actual: body.len(),
        });
    }
    Ok(out)
}

/// Length of an emitted chain.
pub fn chain_len(payloads: &[Payload]) -> usize {
    payloads.iter().map(|p| GENERIC_LEN + p.body_len()).sum()
}

/// Emits a payload chain (generic headers included) at the end of `out`.
pub fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) {
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map(|n| n.payload_type().code())
            .unwrap_or(0);
        let len = GENERIC_LEN + p.body_len();
        out.push(next);
        out.push(0);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        p.emit_body(out);
    }
}

impl fmt::Display for ExchangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self)
    }
}

#[cfg(test)]
mod tests;
