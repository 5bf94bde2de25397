//! Transaction Mode attributes, typed: Mode Config (draft-dukes-ike-mode-cfg), XAUTH
//! (draft-beaulieu-ike-xauth) and the Cisco Unity attributes, parsed from the Attribute
//! payload's generic [`Attr`] list and emitted back in the form each one must have.
//!
//! A REQUEST names what it wants with empty values: a zero-length TLV (or, for the
//! attributes that are TV, a TV with value 0, which some clients send). So every value is
//! an `Option`: `None` is "asked for". Replies are strict about form (vpnc rejects a whole
//! reply for one attribute in the wrong form): addresses are 4-byte TLVs, DO_PFS and
//! SAVE_PASSWD are TV, banner and default domain TLV strings, split include 14 bytes an
//! entry (address, mask, protocol, source port, destination port).

use crate::ike::crypto::Secret;
use crate::isakmp::attr::{Attr, AttrValue};
use std::net::Ipv4Addr;
use zeroize::Zeroizing;

/// Attribute types (DESIGN §6: XAUTH 16520–16527, Unity 28672–28682).
pub mod code {
    pub const INTERNAL_IP4_ADDRESS: u16 = 1;
    pub const INTERNAL_IP4_NETMASK: u16 = 2;
    pub const INTERNAL_IP4_DNS: u16 = 3;
    pub const INTERNAL_IP4_NBNS: u16 = 4;
    pub const INTERNAL_ADDRESS_EXPIRY: u16 = 5;
    pub const APPLICATION_VERSION: u16 = 7;
    pub const XAUTH_TYPE: u16 = 16520;
    pub const XAUTH_USER_NAME: u16 = 16521;
    pub const XAUTH_USER_PASSWORD: u16 = 16522;
    pub const XAUTH_PASSCODE: u16 = 16523;
    pub const XAUTH_MESSAGE: u16 = 16524;
    pub const XAUTH_CHALLENGE: u16 = 16525;
    pub const XAUTH_DOMAIN: u16 = 16526;
    pub const XAUTH_STATUS: u16 = 16527;
    pub const UNITY_BANNER: u16 = 28672;
    pub const UNITY_SAVE_PASSWD: u16 = 28673;
    pub const UNITY_DEF_DOMAIN: u16 = 28674;
    pub const UNITY_SPLIT_DNS: u16 = 28675;
    pub const UNITY_SPLIT_INCLUDE: u16 = 28676;
    pub const UNITY_NATT_PORT: u16 = 28677;
    pub const UNITY_LOCAL_LAN: u16 = 28678;
    pub const UNITY_PFS: u16 = 28679;
    pub const UNITY_FW_TYPE: u16 = 28680;
    pub const UNITY_BACKUP_SERVERS: u16 = 28681;
    pub const UNITY_DDNS_HOSTNAME: u16 = 28682;
}

/// XAUTH-STATUS values.
pub const XAUTH_STATUS_FAIL: u16 = 0;
pub const XAUTH_STATUS_OK: u16 = 1;
/// XAUTH-TYPE generic (user name and password).
pub const XAUTH_TYPE_GENERIC: u16 = 0;

/// Why an attribute list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("attribute {ty}: must be in {want} form")]
    WrongForm { ty: u16, want: &'static str },
    #[error("attribute {ty}: length {len}, want {want}")]
    BadLength {
        ty: u16,
        len: usize,
        want: &'static str,
    },
    #[error("attribute {ty}: not UTF-8 text")]
    NotText { ty: u16 },
}

fn a4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// One split-tunnel network in Cisco's 14-byte form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitNet {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub protocol: u16,
    pub sport: u16,
    pub dport: u16,
}

impl SplitNet {
    pub const LEN: usize = 14;
    pub fn network(addr: Ipv4Addr, mask: Ipv4Addr) -> SplitNet {
        SplitNet {
            addr,
            mask,
            protocol: 0,
            sport: 0,
            dport: 0,
        }
    }
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.addr.octets());
        out.extend_from_slice(&self.mask.octets());
        out.extend_from_slice(&self.protocol.to_be_bytes());
        out.extend_from_slice(&self.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
    }
    /// strongSwan's short form (a swanctl pool's `split_include`): address and mask only.
    pub const SHORT_LEN: usize = 8;

    /// A list in Cisco's 14-byte form or strongSwan's 8-byte form. A length both divide
    /// (56, 112 …) is read as Cisco's unless only the short reading gives real networks
    /// (contiguous masks, no host bits). None: neither form.
    fn parse_list(b: &[u8]) -> Option<Vec<SplitNet>> {
        let cisco = b
            .len()
            .is_multiple_of(Self::LEN)
            .then(|| b.chunks(Self::LEN).map(SplitNet::parse).collect::<Vec<_>>());
        let short = b.len().is_multiple_of(Self::SHORT_LEN).then(|| {
            b.chunks(Self::SHORT_LEN)
                .map(|c| SplitNet::network(a4(&c[0..4]), a4(&c[4..8])))
                .collect::<Vec<_>>()
        });
        let real = |v: &Vec<SplitNet>| v.iter().all(SplitNet::is_network);
        match (cisco, short) {
            (Some(c), Some(s)) if !real(&c) && real(&s) => Some(s),
            (Some(c), _) => Some(c),
            (None, s) => s,
        }
    }

    /// A contiguous mask and no host bits in the address.
    fn is_network(&self) -> bool {
        let (a, m) = (u32::from(self.addr), u32::from(self.mask));
        m.leading_ones() + m.trailing_zeros() == 32 && a & !m == 0
    }

    fn parse(b: &[u8]) -> SplitNet {
        let a = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        let u = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        SplitNet {
            addr: a(0),
            mask: a(4),
            protocol: u(8),
            sport: u(10),
            dport: u(12),
        }
    }
}

/// A Transaction Mode attribute, typed. `None`: the attribute asked for (REQUEST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfgAttr {
    Ip4Address(Option<Ipv4Addr>),
    Ip4Netmask(Option<Ipv4Addr>),
    Ip4Dns(Option<Ipv4Addr>),
    Ip4Nbns(Option<Ipv4Addr>),
    AddressExpiry(Option<u32>),
    ApplicationVersion(Option<String>),
    XauthType(Option<u16>),
    XauthUserName(Option<String>),
    /// Zeroized on drop; `Debug` shows its length only.
    XauthPassword(Option<Password>),
    XauthPasscode(Option<Password>),
    XauthMessage(Option<String>),
    XauthDomain(Option<String>),
    XauthStatus(Option<u16>),
    Banner(Option<String>),
    SavePassword(Option<u16>),
    DefaultDomain(Option<String>),
    SplitDns(Option<String>),
    /// Empty: asked for.
    SplitInclude(Vec<SplitNet>),
    NattPort(Option<u16>),
    LocalLan(Vec<SplitNet>),
    Pfs(Option<u16>),
    FirewallType(Vec<u8>),
    BackupServers(Option<String>),
    DdnsHostname(Option<String>),
    /// Any other type, kept as it came.
    Unknown(Attr),
}

/// A password from an XAUTH REPLY. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub Secret);

impl Password {
    pub fn new(b: &[u8]) -> Password {
        Password(Zeroizing::new(b.to_vec()))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(<{} bytes>)", self.0.len())
    }
}

#[derive(Clone, Copy)]
enum Form {
    /// 4-byte IPv4 address (TLV).
    Addr,
    /// 32-bit number (TLV, 4 bytes).
    U32,
    /// 16-bit number (TV).
    Tv,
    /// Text (TLV).
    Text,
    /// Secret bytes (TLV).
    Secret,
    /// 14-byte entries (TLV).
    Nets,
    /// Opaque bytes (TLV).
    Bytes,
}

fn form_of(ty: u16) -> Option<Form> {
    use code::*;
    Some(match ty {
        INTERNAL_IP4_ADDRESS | INTERNAL_IP4_NETMASK | INTERNAL_IP4_DNS | INTERNAL_IP4_NBNS => {
            Form::Addr
        }
        INTERNAL_ADDRESS_EXPIRY => Form::U32,
        XAUTH_TYPE | XAUTH_STATUS | UNITY_SAVE_PASSWD | UNITY_NATT_PORT | UNITY_PFS => Form::Tv,
        APPLICATION_VERSION | XAUTH_USER_NAME | XAUTH_MESSAGE | XAUTH_DOMAIN | UNITY_BANNER
        | UNITY_DEF_DOMAIN | UNITY_SPLIT_DNS | UNITY_BACKUP_SERVERS | UNITY_DDNS_HOSTNAME => {
            Form::Text
        }
        XAUTH_USER_PASSWORD | XAUTH_PASSCODE => Form::Secret,
        UNITY_SPLIT_INCLUDE | UNITY_LOCAL_LAN => Form::Nets,
        UNITY_FW_TYPE => Form::Bytes,
        _ => return None,
    })
}

/// A value after its form was checked.
enum Val {
    Asked,
    Addr(Ipv4Addr),
    Num(u32),
    Text(String),
    Secret(Password),
    Nets(Vec<SplitNet>),
    Bytes(Vec<u8>),
}

fn check(a: &Attr, form: Form) -> Result<Val, AttrError> {
    let ty = a.ty;
    let bytes = match (&a.value, form) {
        (AttrValue::Basic(v), Form::Tv) => return Ok(Val::Num(*v as u32)),
        (AttrValue::Basic(_), _) => return Err(AttrError::WrongForm { ty, want: "TLV" }),
        (AttrValue::Var(b), _) if b.is_empty() => return Ok(Val::Asked),
        (AttrValue::Var(b), _) => b,
    };
    let bad = |want| AttrError::BadLength {
        ty,
        len: bytes.len(),
        want,
    };
    Ok(match form {
        Form::Addr => {
            if bytes.len() != 4 {
                return Err(bad("4"));
            }
            Val::Addr(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        }
        Form::U32 => {
            if bytes.len() != 4 {
                return Err(bad("4"));
            }
            Val::Num(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        // A TV attribute sent as a TLV with a value is accepted up to 2 bytes.
        Form::Tv => match bytes.len() {
            1 => Val::Num(bytes[0] as u32),
            2 => Val::Num(u16::from_be_bytes([bytes[0], bytes[1]]) as u32),
            _ => return Err(AttrError::WrongForm { ty, want: "TV" }),
        },
        Form::Text => {
            // Some clients end strings with a NUL.
            let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            let t = &bytes[..end];
            // Only NULs: no text, which is how an empty value is asked for (found by the
            // fuzz target: "\0" must not type differently from its own emission).
            if t.is_empty() {
                return Ok(Val::Asked);
            }
            Val::Text(
                std::str::from_utf8(t)
                    .map_err(|_| AttrError::NotText { ty })?
                    .to_string(),
            )
        }
        Form::Secret => Val::Secret(Password::new(bytes)),
        Form::Nets => {
            Val::Nets(SplitNet::parse_list(bytes).ok_or_else(|| bad("a multiple of 14 or 8"))?)
        }
        Form::Bytes => Val::Bytes(bytes.to_vec()),
    })
}

impl CfgAttr {
    /// Types one attribute; an attribute of a known type in the wrong form is an error.
    pub fn parse(a: &Attr) -> Result<CfgAttr, AttrError> {
        use code::*;
        let Some(form) = form_of(a.ty) else {
            return Ok(CfgAttr::Unknown(a.clone()));
        };
        let v = check(a, form)?;
        let addr = |v: Val| match v {
            Val::Addr(x) => Some(x),
            _ => None,
        };
        let num = |v: &Val| match v {
            Val::Num(x) => Some(*x),
            _ => None,
        };
        let tv = |v: &Val| num(v).map(|x| x as u16);
        let text = |v: Val| match v {
            Val::Text(x) => Some(x),
            _ => None,
        };
        let secret = |v: Val| match v {
            Val::Secret(x) => Some(x),
            _ => None,
        };
        let nets = |v: Val| match v {
            Val::Nets(x) => x,
            _ => Vec::new(),
        };
        Ok(match a.ty {
            INTERNAL_IP4_ADDRESS => CfgAttr::Ip4Address(addr(v)),
            INTERNAL_IP4_NETMASK => CfgAttr::Ip4Netmask(addr(v)),
            INTERNAL_IP4_DNS => CfgAttr::Ip4Dns(addr(v)),
            INTERNAL_IP4_NBNS => CfgAttr::Ip4Nbns(addr(v)),
            INTERNAL_ADDRESS_EXPIRY => CfgAttr::AddressExpiry(num(&v)),
            APPLICATION_VERSION => CfgAttr::ApplicationVersion(text(v)),
            XAUTH_TYPE => CfgAttr::XauthType(tv(&v)),
            XAUTH_USER_NAME => CfgAttr::XauthUserName(text(v)),
            XAUTH_USER_PASSWORD => CfgAttr::XauthPassword(secret(v)),
            XAUTH_PASSCODE => CfgAttr::XauthPasscode(secret(v)),
            XAUTH_MESSAGE => CfgAttr::XauthMessage(text(v)),
            XAUTH_DOMAIN => CfgAttr::XauthDomain(text(v)),
            XAUTH_STATUS => CfgAttr::XauthStatus(tv(&v)),
            UNITY_BANNER => CfgAttr::Banner(text(v)),
            UNITY_SAVE_PASSWD => CfgAttr::SavePassword(tv(&v)),
            UNITY_DEF_DOMAIN => CfgAttr::DefaultDomain(text(v)),
            UNITY_SPLIT_DNS => CfgAttr::SplitDns(text(v)),
            UNITY_SPLIT_INCLUDE => CfgAttr::SplitInclude(nets(v)),
            UNITY_NATT_PORT => CfgAttr::NattPort(tv(&v)),
            UNITY_LOCAL_LAN => CfgAttr::LocalLan(nets(v)),
            UNITY_PFS => CfgAttr::Pfs(tv(&v)),
            UNITY_FW_TYPE => CfgAttr::FirewallType(match v {
                Val::Bytes(b) => b,
                _ => Vec::new(),
            }),
            UNITY_BACKUP_SERVERS => CfgAttr::BackupServers(text(v)),
            UNITY_DDNS_HOSTNAME => CfgAttr::DdnsHostname(text(v)),
            _ => CfgAttr::Unknown(a.clone()),
        })
    }

    /// Types a whole list (the first bad attribute fails it).
    pub fn parse_list(attrs: &[Attr]) -> Result<Vec<CfgAttr>, AttrError> {
        attrs.iter().map(CfgAttr::parse).collect()
    }

    /// The attribute type.
    pub fn code(&self) -> u16 {
        use code::*;
        match self {
            CfgAttr::Ip4Address(_) => INTERNAL_IP4_ADDRESS,
            CfgAttr::Ip4Netmask(_) => INTERNAL_IP4_NETMASK,
            CfgAttr::Ip4Dns(_) => INTERNAL_IP4_DNS,
            CfgAttr::Ip4Nbns(_) => INTERNAL_IP4_NBNS,
            CfgAttr::AddressExpiry(_) => INTERNAL_ADDRESS_EXPIRY,
            CfgAttr::ApplicationVersion(_) => APPLICATION_VERSION,
            CfgAttr::XauthType(_) => XAUTH_TYPE,
            CfgAttr::XauthUserName(_) => XAUTH_USER_NAME,
            CfgAttr::XauthPassword(_) => XAUTH_USER_PASSWORD,
            CfgAttr::XauthPasscode(_) => XAUTH_PASSCODE,
            CfgAttr::XauthMessage(_) => XAUTH_MESSAGE,
            CfgAttr::XauthDomain(_) => XAUTH_DOMAIN,
            CfgAttr::XauthStatus(_) => XAUTH_STATUS,
            CfgAttr::Banner(_) => UNITY_BANNER,
            CfgAttr::SavePassword(_) => UNITY_SAVE_PASSWD,
            CfgAttr::DefaultDomain(_) => UNITY_DEF_DOMAIN,
            CfgAttr::SplitDns(_) => UNITY_SPLIT_DNS,
            CfgAttr::SplitInclude(_) => UNITY_SPLIT_INCLUDE,
            CfgAttr::NattPort(_) => UNITY_NATT_PORT,
            CfgAttr::LocalLan(_) => UNITY_LOCAL_LAN,
            CfgAttr::Pfs(_) => UNITY_PFS,
            CfgAttr::FirewallType(_) => UNITY_FW_TYPE,
            CfgAttr::BackupServers(_) => UNITY_BACKUP_SERVERS,
            CfgAttr::DdnsHostname(_) => UNITY_DDNS_HOSTNAME,
            CfgAttr::Unknown(a) => a.ty,
        }
    }

    /// The wire attribute: TV where the type is TV, TLV otherwise; an asked-for attribute
    /// is an empty TLV.
    pub fn to_attr(&self) -> Attr {
        let ty = self.code();
        let var = |b: Vec<u8>| Attr {
            ty,
            value: AttrValue::Var(b),
        };
        let text = |t: &Option<String>| var(t.as_deref().unwrap_or("").as_bytes().to_vec());
        let addr = |a: &Option<Ipv4Addr>| var(a.map(|a| a.octets().to_vec()).unwrap_or_default());
        let secret =
            |p: &Option<Password>| var(p.as_ref().map(|p| p.expose().to_vec()).unwrap_or_default());
        let nets = |n: &[SplitNet]| {
            let mut b = Vec::with_capacity(n.len() * SplitNet::LEN);
            n.iter().for_each(|x| x.emit(&mut b));
            var(b)
        };
        match self {
            CfgAttr::Ip4Address(a)
            | CfgAttr::Ip4Netmask(a)
            | CfgAttr::Ip4Dns(a)
            | CfgAttr::Ip4Nbns(a) => addr(a),
            CfgAttr::AddressExpiry(n) => {
                var(n.map(|n| n.to_be_bytes().to_vec()).unwrap_or_default())
            }
            CfgAttr::XauthType(v)
            | CfgAttr::XauthStatus(v)
            | CfgAttr::SavePassword(v)
            | CfgAttr::NattPort(v)
            | CfgAttr::Pfs(v) => match v {
                Some(v) => Attr::basic(ty, *v),
                // Asked for: an empty TLV, as vpnc asks (a TV 0 would read as a value).
                None => var(Vec::new()),
            },
            CfgAttr::ApplicationVersion(t)
            | CfgAttr::XauthUserName(t)
            | CfgAttr::XauthMessage(t)
            | CfgAttr::XauthDomain(t)
            | CfgAttr::Banner(t)
            | CfgAttr::DefaultDomain(t)
            | CfgAttr::SplitDns(t)
            | CfgAttr::BackupServers(t)
            | CfgAttr::DdnsHostname(t) => text(t),
            CfgAttr::XauthPassword(p) | CfgAttr::XauthPasscode(p) => secret(p),
            CfgAttr::SplitInclude(n) | CfgAttr::LocalLan(n) => nets(n),
            CfgAttr::FirewallType(b) => var(b.clone()),
            CfgAttr::Unknown(a) => a.clone(),
        }
    }

    /// The attribute in its asked-for form (TV 0 or an empty TLV), as an ACK lists it.
    pub fn empty(&self) -> Attr {
        let a = self.to_attr();
        match a.value {
            AttrValue::Basic(_) => Attr::basic(a.ty, 0),
            AttrValue::Var(_) => Attr {
                ty: a.ty,
                value: AttrValue::Var(Vec::new()),
            },
        }
    }

    /// The attribute's name as IOS debug prints it (`ISAKMP: Config payload REQUEST`…).
    pub fn debug_name(&self) -> String {
        use code::*;
        match self.code() {
            INTERNAL_IP4_ADDRESS => "IP4_ADDRESS".into(),
            INTERNAL_IP4_NETMASK => "IP4_NETMASK".into(),
            INTERNAL_IP4_DNS => "IP4_DNS".into(),
            INTERNAL_IP4_NBNS => "IP4_NBNS".into(),
            INTERNAL_ADDRESS_EXPIRY => "ADDRESS_EXPIRY".into(),
            APPLICATION_VERSION => "APPLICATION_VERSION".into(),
            XAUTH_TYPE => "XAUTH_TYPE_V2".into(),
            XAUTH_USER_NAME => "XAUTH_USER_NAME_V2".into(),
            XAUTH_USER_PASSWORD => "XAUTH_USER_PASSWORD_V2".into(),
            XAUTH_PASSCODE => "XAUTH_PASSCODE_V2".into(),
            XAUTH_MESSAGE => "XAUTH_MESSAGE_V2".into(),
            XAUTH_DOMAIN => "XAUTH_DOMAIN_V2".into(),
            XAUTH_STATUS => "XAUTH_STATUS_V2".into(),
            UNITY_BANNER => "MODECFG_BANNER".into(),
            UNITY_SAVE_PASSWD => "MODECFG_SAVEPWD".into(),
            UNITY_DEF_DOMAIN => "DEFAULT_DOMAIN".into(),
            UNITY_SPLIT_DNS => "SPLIT_DNS".into(),
            UNITY_SPLIT_INCLUDE => "SPLIT_INCLUDE".into(),
            UNITY_NATT_PORT => "NATT_PORT".into(),
            UNITY_LOCAL_LAN => "LOCAL_LAN".into(),
            UNITY_PFS => "PFS".into(),
            UNITY_FW_TYPE => "FW_RECORD".into(),
            UNITY_BACKUP_SERVERS => "BACKUP_SERVER".into(),
            UNITY_DDNS_HOSTNAME => "DDNS_HOSTNAME".into(),
            n => format!("unknown attribute {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(ty: u16, b: &[u8]) -> Attr {
        Attr {
            ty,
            value: AttrValue::Var(b.to_vec()),
        }
    }

    #[test]
    fn request_form_is_asked_for() {
        let req = [
            tlv(code::INTERNAL_IP4_ADDRESS, &[]),
            tlv(code::UNITY_SPLIT_INCLUDE, &[]),
            Attr::basic(code::UNITY_PFS, 0),
            tlv(code::UNITY_SAVE_PASSWD, &[]),
            tlv(code::UNITY_BANNER, &[]),
        ];
        let v = CfgAttr::parse_list(&req).unwrap();
        assert_eq!(
            v,
            vec![
                CfgAttr::Ip4Address(None),
                CfgAttr::SplitInclude(vec![]),
                CfgAttr::Pfs(Some(0)),
                CfgAttr::SavePassword(None),
                CfgAttr::Banner(None),
            ]
        );
    }

    #[test]
    fn reply_forms_are_exact() {
        let net = SplitNet::network(Ipv4Addr::new(10, 1, 1, 0), Ipv4Addr::new(255, 255, 255, 0));
        let reply = [
            CfgAttr::Ip4Address(Some(Ipv4Addr::new(10, 99, 0, 10))),
            CfgAttr::Pfs(Some(1)),
            CfgAttr::Banner(Some("hi".into())),
            CfgAttr::SplitInclude(vec![net, net]),
        ];
        let wire: Vec<Attr> = reply.iter().map(CfgAttr::to_attr).collect();
        let mut bytes = Vec::new();
        for a in &wire {
            a.emit(&mut bytes);
        }
        assert_eq!(&bytes[..8], &[0x00, 0x01, 0x00, 0x04, 10, 99, 0, 10]);
        // DO_PFS is TV: AF bit set, value 1.
        assert_eq!(&bytes[8..12], &[0xf0, 0x07, 0x00, 0x01]);
        assert_eq!(&bytes[12..18], &[0x70, 0x00, 0x00, 0x02, b'h', b'i']);
        // Split include: 2 × 14 bytes.
        assert_eq!(&bytes[18..22], &[0x70, 0x04, 0x00, 28]);
        assert_eq!(
            &bytes[22..36],
            &[10, 1, 1, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0]
        );
        let back = Attr::parse_list(&bytes, "ATTR").unwrap();
        assert_eq!(CfgAttr::parse_list(&back).unwrap(), reply.to_vec());
    }

    #[test]
    fn wrong_forms_are_typed_errors() {
        assert_eq!(
            CfgAttr::parse(&tlv(code::INTERNAL_IP4_ADDRESS, &[1, 2, 3])),
            Err(AttrError::BadLength {
                ty: 1,
                len: 3,
                want: "4"
            })
        );
        assert_eq!(
            CfgAttr::parse(&Attr::basic(code::INTERNAL_IP4_DNS, 5)),
            Err(AttrError::WrongForm { ty: 3, want: "TLV" })
        );
        assert_eq!(
            CfgAttr::parse(&tlv(code::UNITY_SPLIT_INCLUDE, &[0; 10])),
            Err(AttrError::BadLength {
                ty: 28676,
                len: 10,
                want: "a multiple of 14 or 8"
            })
        );
        assert_eq!(
            CfgAttr::parse(&tlv(code::XAUTH_USER_NAME, &[0xff, 0xfe])),
            Err(AttrError::NotText { ty: 16521 })
        );
        assert_eq!(
            CfgAttr::parse(&tlv(code::XAUTH_STATUS, &[0, 0, 1])),
            Err(AttrError::WrongForm {
                ty: 16527,
                want: "TV"
            })
        );
    }

    #[test]
    fn split_include_in_strongswans_short_form() {
        let net = |a: [u8; 4], m: [u8; 4]| SplitNet::network(a.into(), m.into());
        // A swanctl pool's `split_include = 10.1.2.0/24, 10.1.3.0/24`: address | mask.
        let short = [10, 1, 2, 0, 255, 255, 255, 0, 10, 1, 3, 0, 255, 255, 255, 0];
        assert_eq!(
            CfgAttr::parse(&tlv(code::UNITY_SPLIT_INCLUDE, &short)),
            Ok(CfgAttr::SplitInclude(vec![
                net([10, 1, 2, 0], [255, 255, 255, 0]),
                net([10, 1, 3, 0], [255, 255, 255, 0]),
            ]))
        );
        // 56 bytes: seven short entries or four Cisco ones; the reading that gives real
        // networks wins, Cisco's when both do.
        let seven: Vec<u8> = (1..=7u8)
            .flat_map(|i| [10, i, 0, 0, 255, 255, 0, 0])
            .collect();
        match CfgAttr::parse(&tlv(code::UNITY_SPLIT_INCLUDE, &seven)) {
            Ok(CfgAttr::SplitInclude(v)) => {
                assert_eq!(v.len(), 7);
                assert_eq!(v[6], net([10, 7, 0, 0], [255, 255, 0, 0]));
            }
            other => panic!("{other:?}"),
        }
        let mut four = Vec::new();
        for i in 1..=4u8 {
            net([10, i, 0, 0], [255, 255, 0, 0]).emit(&mut four);
        }
        match CfgAttr::parse(&tlv(code::UNITY_SPLIT_INCLUDE, &four)) {
            Ok(CfgAttr::SplitInclude(v)) => {
                assert_eq!(v.len(), 4);
                assert_eq!(v[3], net([10, 4, 0, 0], [255, 255, 0, 0]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passwords_do_not_show_in_debug() {
        let a = CfgAttr::parse(&tlv(code::XAUTH_USER_PASSWORD, b"hunter2")).unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
        match a {
            CfgAttr::XauthPassword(Some(p)) => assert_eq!(p.expose(), b"hunter2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_of_only_nuls_is_asked_for() {
        let a = CfgAttr::parse(&tlv(code::UNITY_BANNER, &[0, 0])).unwrap();
        assert_eq!(a, CfgAttr::Banner(None));
        assert_eq!(CfgAttr::parse(&a.to_attr()).unwrap(), a);
        let b = CfgAttr::parse(&tlv(code::UNITY_DEF_DOMAIN, b"x.example\0")).unwrap();
        assert_eq!(b, CfgAttr::DefaultDomain(Some("x.example".into())));
    }

    #[test]
    fn unknown_types_round_trip_unchanged() {
        let a = tlv(20000, &[1, 2, 3]);
        let c = CfgAttr::parse(&a).unwrap();
        assert_eq!(c, CfgAttr::Unknown(a.clone()));
        assert_eq!(c.to_attr(), a);
    }
}
