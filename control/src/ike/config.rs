//! What the IKE core needs to know from the configuration. The daemon builds this from the
//! IOS configuration model (`crate::config`); the core stays independent of the parser.

use super::crypto::{DhGroup, EncAlg, HashAlg, Secret};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Phase-1 authentication of a policy (`authentication pre-share|rsa-sig|rsa-encr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    #[default]
    PreShared,
    /// RFC 2409 §5.1: certificates and signatures.
    RsaSig,
    /// RFC 2409 §5.2: nonces and IDs encrypted with the peers' public keys.
    RsaEncr,
}

impl AuthMethod {
    /// RFC 2409 Appendix A authentication method code.
    pub fn code(self) -> u16 {
        match self {
            AuthMethod::PreShared => 1,
            AuthMethod::RsaSig => 3,
            AuthMethod::RsaEncr => 4,
        }
    }
}

/// `crypto isakmp policy N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsakmpPolicy {
    pub priority: u32,
    pub enc: EncAlg,
    pub hash: HashAlg,
    pub group: DhGroup,
    /// Seconds (IOS default 86400).
    pub lifetime: u32,
    pub auth: AuthMethod,
}

/// `crypto isakmp key K address A [MASK]`.
#[derive(Clone)]
pub struct PreSharedKey {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub key: Secret,
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreSharedKey({}/{}, <hidden>)", self.addr, self.mask)
    }
}

/// ESP encryption of a transform set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EspEnc {
    Des3,
    /// AES-CBC with key bits.
    Aes(u16),
    /// AES-GCM with a 16-byte ICV (RFC 4106), key bits (without the salt).
    Gcm(u16),
    Null,
}

/// ESP authentication of a transform set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EspAuth {
    Md5,
    Sha1,
    Sha256,
}

impl EspEnc {
    /// ESP transform id (RFC 2407 §4.4.4).
    pub fn transform_id(self) -> u8 {
        match self {
            EspEnc::Des3 => 3,
            EspEnc::Aes(_) => 12,
            EspEnc::Gcm(_) => 20,
            EspEnc::Null => 11,
        }
    }
    /// KEYMAT bytes for the cipher: for AES-GCM the key and its 4-byte salt (RFC 4106 §8.1).
    pub fn key_len(self) -> usize {
        match self {
            EspEnc::Des3 => 24,
            EspEnc::Aes(b) => b as usize / 8,
            EspEnc::Gcm(b) => b as usize / 8 + 4,
            EspEnc::Null => 0,
        }
    }
    pub fn ios_name(self) -> String {
        match self {
            EspEnc::Des3 => "esp-3des".into(),
            EspEnc::Aes(128) => "esp-aes".into(),
            EspEnc::Aes(b) => format!("esp-aes {b}"),
            EspEnc::Gcm(128) => "esp-gcm".into(),
            EspEnc::Gcm(b) => format!("esp-gcm {b}"),
            EspEnc::Null => "esp-null".into(),
        }
    }
    /// The ISAKMP debug name ("ESP_3DES").
    pub fn isakmp_name(self) -> &'static str {
        match self {
            EspEnc::Des3 => "ESP_3DES",
            EspEnc::Aes(_) => "ESP_AES",
            EspEnc::Gcm(_) => "ESP_GCM",
            EspEnc::Null => "ESP_NULL",
        }
    }
}

impl EspAuth {
    /// Authentication algorithm attribute (RFC 2407 §4.5).
    pub fn code(self) -> u16 {
        match self {
            EspAuth::Md5 => 1,
            EspAuth::Sha1 => 2,
            EspAuth::Sha256 => 5,
        }
    }
    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            1 => Some(EspAuth::Md5),
            2 => Some(EspAuth::Sha1),
            5 => Some(EspAuth::Sha256),
            _ => None,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            EspAuth::Md5 => 16,
            EspAuth::Sha1 => 20,
            EspAuth::Sha256 => 32,
        }
    }
    pub fn ios_name(self) -> &'static str {
        match self {
            EspAuth::Md5 => "esp-md5-hmac",
            EspAuth::Sha1 => "esp-sha-hmac",
            EspAuth::Sha256 => "esp-sha256-hmac",
        }
    }
    pub fn isakmp_name(self) -> &'static str {
        match self {
            EspAuth::Md5 => "HMAC-MD5",
            EspAuth::Sha1 => "HMAC-SHA",
            EspAuth::Sha256 => "HMAC-SHA256",
        }
    }
}

/// `crypto ipsec transform-set NAME ...` (ESP, tunnel mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSet {
    pub name: String,
    pub enc: EspEnc,
    /// None for a combined-mode cipher (esp-gcm).
    pub auth: Option<EspAuth>,
    /// `mode transport` (default tunnel).
    pub transport: bool,
}

impl TransformSet {
    /// "esp-3des esp-md5-hmac" as IOS prints it.
    pub fn ios_name(&self) -> String {
        match self.auth {
            Some(a) => format!("{} {}", self.enc.ios_name(), a.ios_name()),
            None => self.enc.ios_name(),
        }
    }
}

/// A proxy identity: one side of a crypto ACL line. The configuration model's type, so a
/// crypto map's identities reach the IKE core unconverted; `Proxy` is its name here.
pub use crate::config::model::ProxyId as Proxy;

/// Phase 1 exchange an initiator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase1Mode {
    Main,
    Aggressive,
}

/// `crypto map NAME SEQ ipsec-isakmp` with its ACL resolved to proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoMapEntry {
    pub map: String,
    pub seq: u32,
    pub peer: Ipv4Addr,
    pub transform_sets: Vec<TransformSet>,
    pub pfs: Option<DhGroup>,
    pub lifetime_secs: u32,
    pub lifetime_kb: u64,
    pub local_proxy: Proxy,
    pub remote_proxy: Proxy,
    pub mode: Phase1Mode,
    /// The outside interface the map is applied to (for show).
    pub interface: String,
}

/// Everything the IKE core is configured with.
#[derive(Debug, Clone)]
pub struct IkeConfig {
    pub local_addr: Ipv4Addr,
    pub policies: Vec<IsakmpPolicy>,
    pub keys: Vec<PreSharedKey>,
    pub maps: Vec<CryptoMapEntry>,
    /// `crypto isakmp keepalive SECS [RETRY]` (DPD); None: off.
    pub dpd: Option<(Duration, Duration)>,
    /// `crypto isakmp nat keepalive SECS`.
    pub nat_keepalive: Duration,
    /// Maximum half-open (not yet authenticated) responder phase-1 SAs.
    pub half_open_limit: usize,
    /// Retransmission interval (fixed, as on IOS: 10 s).
    pub retransmit_base: Duration,
    /// Retransmissions before giving up.
    pub retransmit_limit: u32,
    /// `crypto isakmp aggressive-mode disable`: refuse Aggressive Mode as responder.
    pub aggressive_mode_disabled: bool,
    /// Set the commit bit in QM1 (off by default: strongSwan does not support it).
    pub qm_commit_bit: bool,
    /// `crypto isakmp fragmentation [mtu N]`: the largest IP datagram of an IKE fragment;
    /// None: fragmentation off.
    pub fragmentation: Option<u16>,
    /// Our RSA key, certificate and trustpoints (rsa-sig, rsa-encr); None: pre-shared
    /// keys only.
    pub pki: Option<std::sync::Arc<crate::pki::Credentials>>,
    /// Easy VPN server (client groups, XAUTH, Mode Config, dynamic map); None: off. Shared:
    /// every client's Transaction Mode message reads it, and a copy per message would cost
    /// O(users) each (O(clients^2) for a thousand clients with their own users).
    pub remote: Option<std::sync::Arc<super::remote::RemoteAccessConfig>>,
    /// Easy VPN client tunnels (`crypto ipsec client ezvpn`); empty: none.
    pub ezvpn: Vec<super::ezvpn::EzvpnClientConfig>,
}

impl IkeConfig {
    pub fn new(local_addr: Ipv4Addr) -> IkeConfig {
        IkeConfig {
            local_addr,
            policies: Vec::new(),
            keys: Vec::new(),
            maps: Vec::new(),
            dpd: None,
            nat_keepalive: Duration::from_secs(20),
            half_open_limit: 256,
            retransmit_base: Duration::from_secs(10),
            retransmit_limit: 5,
            aggressive_mode_disabled: false,
            qm_commit_bit: false,
            fragmentation: None,
            pki: None,
            remote: None,
            ezvpn: Vec::new(),
        }
    }
    /// The key for a peer: longest mask wins.
    pub fn psk_for(&self, peer: Ipv4Addr) -> Option<&PreSharedKey> {
        self.keys
            .iter()
            .filter(|k| {
                u32::from(peer) & u32::from(k.mask) == u32::from(k.addr) & u32::from(k.mask)
            })
            .max_by_key(|k| u32::from(k.mask).count_ones())
    }
    /// The policies in priority order; rsa-sig and rsa-encr ones only when there are
    /// credentials for them.
    pub fn sorted_policies(&self) -> Vec<IsakmpPolicy> {
        let mut p = self.policies.clone();
        p.retain(|p| match p.auth {
            AuthMethod::PreShared => true,
            AuthMethod::RsaSig => self.pki.as_ref().is_some_and(|c| c.can_sign()),
            AuthMethod::RsaEncr => self.pki.as_ref().is_some_and(|c| c.can_encrypt()),
        });
        p.sort_by_key(|p| p.priority);
        p
    }
}
