//! Payload `Repr`s (RFC 2408 §3.4–§3.16, RFC 3947 NAT-D, draft-dukes Attribute payload).

use super::attr::Attr;
use super::WireError;

/// Payload type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    Sa,
    Proposal,
    Transform,
    Ke,
    Id,
    Cert,
    CertReq,
    Hash,
    Sig,
    Nonce,
    Notify,
    Delete,
    VendorId,
    /// Attribute payload (Transaction Mode).
    Attr,
    /// NAT-D, RFC 3947 (20).
    NatD,
    /// NAT-OA, RFC 3947 (21).
    NatOa,
    /// NAT-D from draft-ietf-ipsec-nat-t-ike-02/03 (130), accepted on input.
    NatDDraft,
    /// NAT-OA draft (131).
    NatOaDraft,
    Unknown(u8),
}

impl PayloadType {
    pub fn code(self) -> u8 {
        use PayloadType::*;
        match self {
            Sa => 1,
            Proposal => 2,
            Transform => 3,
            Ke => 4,
            Id => 5,
            Cert => 6,
            CertReq => 7,
            Hash => 8,
            Sig => 9,
            Nonce => 10,
            Notify => 11,
            Delete => 12,
            VendorId => 13,
            Attr => 14,
            NatD => 20,
            NatOa => 21,
            NatDDraft => 130,
            NatOaDraft => 131,
            Unknown(n) => n,
        }
    }
    pub fn from_code(n: u8) -> Self {
        use PayloadType::*;
        match n {
            1 => Sa,
            2 => Proposal,
            3 => Transform,
            4 => Ke,
            5 => Id,
            6 => Cert,
            7 => CertReq,
            8 => Hash,
            9 => Sig,
            10 => Nonce,
            11 => Notify,
            12 => Delete,
            13 => VendorId,
            14 => Attr,
            20 => NatD,
            21 => NatOa,
            130 => NatDDraft,
            131 => NatOaDraft,
            n => Unknown(n),
        }
    }
    /// IOS's lower-case name for "processing X payload".
    pub fn ios_name(self) -> &'static str {
        use PayloadType::*;
        match self {
            Sa => "SA",
            Ke => "KE",
            Id => "ID",
            Hash => "HASH",
            Nonce => "NONCE",
            Notify => "NOTIFY",
            Delete => "DELETE",
            VendorId => "vendor id",
            NatD | NatDDraft => "NAT-D",
            Attr => "ATTR",
            _ => "unknown",
        }
    }
}

/// Transform (RFC 2408 §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub number: u8,
    pub id: u8,
    pub attrs: Vec<Attr>,
}

/// Proposal (RFC 2408 §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// Protocol ids (RFC 2407 §4.4.1).
pub mod proto {
    pub const ISAKMP: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// SA payload (RFC 2408 §3.4) with the IPsec DOI and SIT_IDENTITY_ONLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    pub doi: u32,
    pub situation: u32,
    pub proposals: Vec<Proposal>,
}

pub const DOI_IPSEC: u32 = 1;
pub const SIT_IDENTITY_ONLY: u32 = 1;

/// Identification types (RFC 2407 §4.6.2.1).
pub mod id_type {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const USER_FQDN: u8 = 3;
    pub const IPV4_ADDR_SUBNET: u8 = 4;
    pub const IPV6_ADDR: u8 = 5;
    pub const IPV4_ADDR_RANGE: u8 = 7;
    pub const DER_ASN1_DN: u8 = 9;
    pub const KEY_ID: u8 = 11;
}

/// ID payload (RFC 2407 §4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    pub id_type: u8,
    pub protocol: u8,
    pub port: u16,
    pub data: Vec<u8>,
}

/// Notification (RFC 2408 §3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    pub doi: u32,
    pub protocol: u8,
    pub notify_type: u16,
    pub spi: Vec<u8>,
    pub data: Vec<u8>,
}

/// Delete (RFC 2408 §3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    pub doi: u32,
    pub protocol: u8,
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

/// Attribute payload (Transaction Mode, draft-ietf-ipsec-isakmp-mode-cfg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPayload {
    pub cfg_type: u8,
    pub identifier: u16,
    pub attrs: Vec<Attr>,
}

/// Transaction Mode message types.
pub mod cfg_type {
    pub const REQUEST: u8 = 1;
    pub const REPLY: u8 = 2;
    pub const SET: u8 = 3;
    pub const ACK: u8 = 4;
}

/// One payload body (generic header excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(SaPayload),
    Ke(Vec<u8>),
    Id(IdPayload),
    Hash(Vec<u8>),
    Nonce(Vec<u8>),
    Notify(NotifyPayload),
    Delete(DeletePayload),
    VendorId(Vec<u8>),
    /// NAT-D: `draft` remembers whether it came as type 130.
    NatD {
        hash: Vec<u8>,
        draft: bool,
    },
    Attr(AttrPayload),
    /// Any other payload (CERT, SIG, NAT-OA, unknown non-critical): kept opaque.
    Other {
        ty: u8,
        body: Vec<u8>,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::Sa,
            Payload::Ke(_) => PayloadType::Ke,
            Payload::Id(_) => PayloadType::Id,
            Payload::Hash(_) => PayloadType::Hash,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notify(_) => PayloadType::Notify,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::VendorId(_) => PayloadType::VendorId,
            Payload::NatD { draft: false, .. } => PayloadType::NatD,
            Payload::NatD { draft: true, .. } => PayloadType::NatDDraft,
            Payload::Attr(_) => PayloadType::Attr,
            Payload::Other { ty, .. } => PayloadType::from_code(*ty),
        }
    }

    /// Parses one payload body of type `ty`.
    pub fn parse(ty: PayloadType, b: &[u8]) -> Result<Payload, WireError> {
        Ok(match ty {
            PayloadType::Sa => Payload::Sa(parse_sa(b)?),
            PayloadType::Ke => Payload::Ke(b.to_vec()),
            PayloadType::Id => {
                if b.len() < 4 {
                    return Err(WireError::PayloadMalformed("ID"));
                }
                Payload::Id(IdPayload {
                    id_type: b[0],
                    protocol: b[1],
                    port: u16::from_be_bytes([b[2], b[3]]),
                    data: b[4..].to_vec(),
                })
            }
            PayloadType::Hash => Payload::Hash(b.to_vec()),
            PayloadType::Nonce => Payload::Nonce(b.to_vec()),
            PayloadType::Notify => {
                if b.len() < 8 {
                    return Err(WireError::PayloadMalformed("NOTIFY"));
                }
                let spi_size = b[5] as usize;
                if b.len() < 8 + spi_size {
                    return Err(WireError::PayloadMalformed("NOTIFY"));
                }
                Payload::Notify(NotifyPayload {
                    doi: be32(b),
                    protocol: b[4],
                    notify_type: u16::from_be_bytes([b[6], b[7]]),
                    spi: b[8..8 + spi_size].to_vec(),
                    data: b[8 + spi_size..].to_vec(),
                })
            }
            PayloadType::Delete => {
                if b.len() < 8 {
                    return Err(WireError::PayloadMalformed("DELETE"));
                }
                let spi_size = b[5];
                let n = u16::from_be_bytes([b[6], b[7]]) as usize;
                let rest = &b[8..];
                if rest.len() != n * spi_size as usize || (spi_size == 0 && n != 0) {
                    return Err(WireError::PayloadMalformed("DELETE"));
                }
                let spis = if spi_size == 0 {
                    Vec::new()
                } else {
                    rest.chunks(spi_size as usize).map(|c| c.to_vec()).collect()
                };
                Payload::Delete(DeletePayload {
                    doi: be32(b),
                    protocol: b[4],
                    spi_size,
                    spis,
                })
            }
            PayloadType::VendorId => Payload::VendorId(b.to_vec()),
            PayloadType::NatD => Payload::NatD {
                hash: b.to_vec(),
                draft: false,
            },
            PayloadType::NatDDraft => Payload::NatD {
                hash: b.to_vec(),
                draft: true,
            },
            PayloadType::Attr => {
                if b.len() < 4 {
                    return Err(WireError::PayloadMalformed("ATTR"));
                }
                Payload::Attr(AttrPayload {
                    cfg_type: b[0],
                    identifier: u16::from_be_bytes([b[2], b[3]]),
                    attrs: Attr::parse_list(&b[4..], "ATTR")?,
                })
            }
            PayloadType::Proposal | PayloadType::Transform => {
                return Err(WireError::InvalidPayloadType(ty.code()))
            }
            PayloadType::Cert
            | PayloadType::CertReq
            | PayloadType::Sig
            | PayloadType::NatOa
            | PayloadType::NatOaDraft => Payload::Other {
                ty: ty.code(),
                body: b.to_vec(),
            },
            PayloadType::Unknown(n) => {
                // RFC 2408 defines no critical bit; types in the private range (128–255)
                // are skipped, undefined low types are invalid.
                if n < 128 {
                    return Err(WireError::InvalidPayloadType(n));
                }
                Payload::Other {
                    ty: n,
                    body: b.to_vec(),
                }
            }
        })
    }

    pub fn body_len(&self) -> usize {
        match self {
            Payload::Sa(sa) => {
                8 + sa
                    .proposals
                    .iter()
                    .map(|p| {
                        8 + p.spi.len()
                            + p.transforms
                                .iter()
                                .map(|t| 8 + t.attrs.iter().map(|a| a.wire_len()).sum::<usize>())
                                .sum::<usize>()
                    })
                    .sum::<usize>()
            }
            Payload::Ke(b) | Payload::Hash(b) | Payload::Nonce(b) | Payload::VendorId(b) => b.len(),
            Payload::NatD { hash, .. } => hash.len(),
            Payload::Id(id) => 4 + id.data.len(),
            Payload::Notify(n) => 8 + n.spi.len() + n.data.len(),
            Payload::Delete(d) => 8 + d.spis.iter().map(|s| s.len()).sum::<usize>(),
            Payload::Attr(a) => 4 + a.attrs.iter().map(|a| a.wire_len()).sum::<usize>(),
            Payload::Other { body, .. } => body.len(),
        }
    }

    /// Appends the body (no generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(sa) => {
                out.extend_from_slice(&sa.doi.to_be_bytes());
                out.extend_from_slice(&sa.situation.to_be_bytes());
                for (i, p) in sa.proposals.iter().enumerate() {
                    let plen = 8
                        + p.spi.len()
                        + p.transforms
                            .iter()
                            .map(|t| 8 + t.attrs.iter().map(|a| a.wire_len()).sum::<usize>())
                            .sum::<usize>();
                    out.push(if i + 1 < sa.proposals.len() { 2 } else { 0 });
                    out.push(0);
                    out.extend_from_slice(&(plen as u16).to_be_bytes());
                    out.push(p.number);
                    out.push(p.protocol);
                    out.push(p.spi.len() as u8);
                    out.push(p.transforms.len() as u8);
                    out.extend_from_slice(&p.spi);
                    for (j, t) in p.transforms.iter().enumerate() {
                        let tlen = 8 + t.attrs.iter().map(|a| a.wire_len()).sum::<usize>();
                        out.push(if j + 1 < p.transforms.len() { 3 } else { 0 });
                        out.push(0);
                        out.extend_from_slice(&(tlen as u16).to_be_bytes());
                        out.push(t.number);
                        out.push(t.id);
                        out.extend_from_slice(&[0, 0]);
                        for a in &t.attrs {
                            a.emit(out);
                        }
                    }
                }
            }
            Payload::Ke(b) | Payload::Hash(b) | Payload::Nonce(b) | Payload::VendorId(b) => {
                out.extend_from_slice(b)
            }
            Payload::NatD { hash, .. } => out.extend_from_slice(hash),
            Payload::Id(id) => {
                out.push(id.id_type);
                out.push(id.protocol);
                out.extend_from_slice(&id.port.to_be_bytes());
                out.extend_from_slice(&id.data);
            }
            Payload::Notify(n) => {
                out.extend_from_slice(&n.doi.to_be_bytes());
                out.push(n.protocol);
                out.push(n.spi.len() as u8);
                out.extend_from_slice(&n.notify_type.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Payload::Delete(d) => {
                out.extend_from_slice(&d.doi.to_be_bytes());
                out.push(d.protocol);
                out.push(d.spi_size);
                out.extend_from_slice(&(d.spis.len() as u16).to_be_bytes());
                for s in &d.spis {
                    out.extend_from_slice(s);
                }
            }
            Payload::Attr(a) => {
                out.push(a.cfg_type);
                out.push(0);
                out.extend_from_slice(&a.identifier.to_be_bytes());
                for at in &a.attrs {
                    at.emit(out);
                }
            }
            Payload::Other { body, .. } => out.extend_from_slice(body),
        }
    }

    /// The body bytes as emitted (what "_b" means in RFC 2409: no generic header).
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.body_len());
        self.emit_body(&mut v);
        v
    }
}

/// Maximum proposals and transforms (bounded work).
const MAX_PROPOSALS: usize = 64;

fn parse_sa(b: &[u8]) -> Result<SaPayload, WireError> {
    if b.len() < 8 {
        return Err(WireError::PayloadMalformed("SA"));
    }
    let doi = be32(b);
    let situation = be32(&b[4..]);
    let mut rest = &b[8..];
    let mut proposals = Vec::new();
    let mut next = if rest.is_empty() { 0 } else { 2 };
    while next != 0 {
        if next != 2 {
            return Err(WireError::BadProposalSyntax("proposal chain"));
        }
        if proposals.len() >= MAX_PROPOSALS {
            return Err(WireError::BadProposalSyntax("too many proposals"));
        }
        if rest.len() < 8 {
            return Err(WireError::BadProposalSyntax("short proposal"));
        }
        next = rest[0];
        let plen = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        if plen < 8 || plen > rest.len() {
            return Err(WireError::BadProposalSyntax("proposal length"));
        }
        let p = &rest[..plen];
        let spi_size = p[6] as usize;
        let ntrans = p[7] as usize;
        if 8 + spi_size > plen {
            return Err(WireError::BadProposalSyntax("SPI size"));
        }
        let spi = p[8..8 + spi_size].to_vec();
        let mut tb = &p[8 + spi_size..];
        let mut transforms = Vec::new();
        let mut tnext = if tb.is_empty() { 0 } else { 3 };
        while tnext != 0 {
            if tnext != 3 || transforms.len() >= MAX_PROPOSALS {
                return Err(WireError::BadProposalSyntax("transform chain"));
            }
            if tb.len() < 8 {
                return Err(WireError::BadProposalSyntax("short transform"));
            }
            tnext = tb[0];
            let tlen = u16::from_be_bytes([tb[2], tb[3]]) as usize;
            if tlen < 8 || tlen > tb.len() {
                return Err(WireError::BadProposalSyntax("transform length"));
            }
            transforms.push(Transform {
                number: tb[4],
                id: tb[5],
                attrs: Attr::parse_list(&tb[8..tlen], "transform attributes")?,
            });
            tb = &tb[tlen..];
        }
        if !tb.is_empty() || transforms.len() != ntrans {
            return Err(WireError::BadProposalSyntax("transform count"));
        }
        proposals.push(Proposal {
            number: p[4],
            protocol: p[5],
            spi,
            transforms,
        });
        rest = &rest[plen..];
    }
    if !rest.is_empty() {
        return Err(WireError::BadProposalSyntax("trailing bytes"));
    }
    Ok(SaPayload {
        doi,
        situation,
        proposals,
    })
}
