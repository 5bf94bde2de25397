//! Data attributes (RFC 2408 §3.3): type/value (AF=1, basic) and type/length/value (AF=0,
//! variable) forms.

use super::WireError;

/// An attribute value in the form it arrived in (kept so emit reproduces the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// TV form: a 16-bit value.
    Basic(u16),
    /// TLV form: arbitrary bytes (up to 65535).
    Var(Vec<u8>),
}

/// One data attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Attribute type without the AF bit.
    pub ty: u16,
    pub value: AttrValue,
}

impl Attr {
    pub fn basic(ty: u16, v: u16) -> Attr {
        Attr {
            ty,
            value: AttrValue::Basic(v),
        }
    }
    /// An integer attribute in the shortest form: basic if it fits 16 bits, else a
    /// 4-byte variable-length value (how IOS sends 86400 s and 4608000 KB).
    pub fn number(ty: u16, v: u64) -> Attr {
        if v <= 0xffff {
            Attr::basic(ty, v as u16)
        } else if v <= 0xffff_ffff {
            Attr {
                ty,
                value: AttrValue::Var((v as u32).to_be_bytes().to_vec()),
            }
        } else {
            Attr {
                ty,
                value: AttrValue::Var(v.to_be_bytes().to_vec()),
            }
        }
    }
    /// The value as an integer (big-endian for variable length, up to 8 bytes).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            AttrValue::Basic(v) => Some(*v as u64),
            AttrValue::Var(b) if b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64))
            }
            AttrValue::Var(_) => None,
        }
    }
    pub fn wire_len(&self) -> usize {
        match &self.value {
            AttrValue::Basic(_) => 4,
            AttrValue::Var(b) => 4 + b.len(),
        }
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        match &self.value {
            AttrValue::Basic(v) => {
                out.extend_from_slice(&(0x8000 | (self.ty & 0x7fff)).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttrValue::Var(b) => {
                out.extend_from_slice(&(self.ty & 0x7fff).to_be_bytes());
                out.extend_from_slice(&(b.len() as u16).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    /// Parses a list of attributes filling `bytes` exactly.
    pub fn parse_list(mut bytes: &[u8], what: &'static str) -> Result<Vec<Attr>, WireError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if bytes.len() < 4 {
                return Err(WireError::PayloadMalformed(what));
            }
            let t = u16::from_be_bytes([bytes[0], bytes[1]]);
            let v = u16::from_be_bytes([bytes[2], bytes[3]]);
            if t & 0x8000 != 0 {
                out.push(Attr::basic(t & 0x7fff, v));
                bytes = &bytes[4..];
            } else {
                let len = v as usize;
                if bytes.len() < 4 + len {
                    return Err(WireError::PayloadMalformed(what));
                }
                out.push(Attr {
                    ty: t,
                    value: AttrValue::Var(bytes[4..4 + len].to_vec()),
                });
                bytes = &bytes[4 + len..];
            }
        }
        Ok(out)
    }
    /// IOS's rendering of a long value in debug output: "0x0 0x1 0x51 0x80".
    pub fn vpi_string(&self) -> String {
        match &self.value {
            AttrValue::Basic(v) => format!("{v}"),
            AttrValue::Var(b) => b
                .iter()
                .map(|x| format!("{x:#x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Phase 1 attribute types (RFC 2409 Appendix A).
pub mod p1 {
    pub const ENCRYPTION: u16 = 1;
    pub const HASH: u16 = 2;
    pub const AUTH: u16 = 3;
    pub const GROUP: u16 = 4;
    pub const LIFE_TYPE: u16 = 11;
    pub const LIFE_DURATION: u16 = 12;
    pub const KEY_LENGTH: u16 = 14;
}

/// Phase 2 (IPsec DOI) attribute types (RFC 2407 §4.5).
pub mod p2 {
    pub const LIFE_TYPE: u16 = 1;
    pub const LIFE_DURATION: u16 = 2;
    pub const GROUP: u16 = 3;
    pub const ENCAPSULATION: u16 = 4;
    pub const AUTH_ALG: u16 = 5;
    pub const KEY_LENGTH: u16 = 6;
}

/// Life types (both phases).
pub const LIFE_SECONDS: u16 = 1;
pub const LIFE_KILOBYTES: u16 = 2;
