//! The typed configuration: what an IOS IPsec router's running-config says, after parsing.
//!
//! Every value that IOS fills with a default when the line is absent carries that default
//! here (see `reference/ios-show-formats.md`): an `IsakmpPolicy` with only `encr 3des` and
//! `authentication pre-share` has hash SHA, group 1 and 86400 s, as the slides' debug shows.
//!
//! The helpers at the bottom answer what the IKE state machines ask of the configuration:
//! which pre-shared key belongs to a peer, which policies to propose and in what order,
//! which crypto map entry covers a peer or a pair of proxy identities, which proxy
//! identities a crypto ACL line yields, and which interface (and so local address) a crypto
//! map is applied to.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

mod remote_access;
pub use remote_access::*;
mod ezvpn;
pub use ezvpn::*;
mod logging;
pub use logging::*;

// ---------------------------------------------------------------------------------------
// ISAKMP (phase 1)
// ---------------------------------------------------------------------------------------

/// AES key sizes IOS accepts (`encr aes 256`, `esp-aes 192`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AesKeySize {
    K128,
    K192,
    K256,
}

impl AesKeySize {
    pub fn bits(self) -> u16 {
        match self {
            AesKeySize::K128 => 128,
            AesKeySize::K192 => 192,
            AesKeySize::K256 => 256,
        }
    }
    pub fn from_bits(bits: u16) -> Option<Self> {
        match bits {
            128 => Some(AesKeySize::K128),
            192 => Some(AesKeySize::K192),
            256 => Some(AesKeySize::K256),
            _ => None,
        }
    }
}

/// Phase 1 encryption (`encr` / `encryption` sub-line). IOS default: DES.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IkeEncryption {
    #[default]
    Des,
    TripleDes,
    Aes(AesKeySize),
}

impl IkeEncryption {
    /// RFC 2409 App. A encryption algorithm attribute value (1 DES, 5 3DES, 7 AES).
    pub fn attribute_value(self) -> u16 {
        match self {
            IkeEncryption::Des => 1,
            IkeEncryption::TripleDes => 5,
            IkeEncryption::Aes(_) => 7,
        }
    }
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            IkeEncryption::Des => 8,
            IkeEncryption::TripleDes => 24,
            IkeEncryption::Aes(k) => k.bits() as usize / 8,
        }
    }
    /// Cipher block size in bytes.
    pub fn block_len(self) -> usize {
        match self {
            IkeEncryption::Des | IkeEncryption::TripleDes => 8,
            IkeEncryption::Aes(_) => 16,
        }
    }
    /// The name `debug crypto isakmp` prints (`encryption 3DES-CBC`).
    pub fn debug_name(self) -> &'static str {
        match self {
            IkeEncryption::Des => "DES-CBC",
            IkeEncryption::TripleDes => "3DES-CBC",
            IkeEncryption::Aes(_) => "AES-CBC",
        }
    }
}

/// Phase 1 hash (`hash` sub-line). IOS default: SHA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IkeHash {
    Md5,
    #[default]
    Sha,
    Sha256,
}

impl IkeHash {
    /// RFC 2409 App. A hash algorithm attribute value (1 MD5, 2 SHA, 4 SHA2-256).
    pub fn attribute_value(self) -> u16 {
        match self {
            IkeHash::Md5 => 1,
            IkeHash::Sha => 2,
            IkeHash::Sha256 => 4,
        }
    }
    pub fn output_len(self) -> usize {
        match self {
            IkeHash::Md5 => 16,
            IkeHash::Sha => 20,
            IkeHash::Sha256 => 32,
        }
    }
    /// The name `debug crypto isakmp` prints (`hash SHA`).
    pub fn debug_name(self) -> &'static str {
        match self {
            IkeHash::Md5 => "MD5",
            IkeHash::Sha => "SHA",
            IkeHash::Sha256 => "SHA256",
        }
    }
}

/// Phase 1 authentication (`authentication` sub-line). IOS default: RSA signatures.
/// espgw negotiates pre-shared keys only; the others parse so that a real IOS config loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IkeAuth {
    PreShare,
    #[default]
    RsaSig,
    RsaEncr,
}

impl IkeAuth {
    /// RFC 2409 App. A authentication method attribute value.
    pub fn attribute_value(self) -> u16 {
        match self {
            IkeAuth::PreShare => 1,
            IkeAuth::RsaSig => 3,
            IkeAuth::RsaEncr => 4,
        }
    }
    pub fn debug_name(self) -> &'static str {
        match self {
            IkeAuth::PreShare => "pre-share",
            IkeAuth::RsaSig => "RSA sig",
            IkeAuth::RsaEncr => "RSA encr",
        }
    }
}

/// Diffie-Hellman (MODP) groups IOS offers: `group 1|2|5|14|15|16`, `set pfs groupN`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum DhGroup {
    #[default]
    Group1,
    Group2,
    Group5,
    Group14,
    Group15,
    Group16,
}

impl DhGroup {
    pub const ALL: [DhGroup; 6] = [
        DhGroup::Group1,
        DhGroup::Group2,
        DhGroup::Group5,
        DhGroup::Group14,
        DhGroup::Group15,
        DhGroup::Group16,
    ];
    /// The IANA group number (the ISAKMP attribute value).
    pub fn number(self) -> u16 {
        match self {
            DhGroup::Group1 => 1,
            DhGroup::Group2 => 2,
            DhGroup::Group5 => 5,
            DhGroup::Group14 => 14,
            DhGroup::Group15 => 15,
            DhGroup::Group16 => 16,
        }
    }
    pub fn from_number(n: u16) -> Option<Self> {
        DhGroup::ALL.into_iter().find(|g| g.number() == n)
    }
    /// Modulus size in bits (`Diffie-Hellman group: #1 (768 bit)`).
    pub fn modulus_bits(self) -> u16 {
        match self {
            DhGroup::Group1 => 768,
            DhGroup::Group2 => 1024,
            DhGroup::Group5 => 1536,
            DhGroup::Group14 => 2048,
            DhGroup::Group15 => 3072,
            DhGroup::Group16 => 4096,
        }
    }
    /// Modulus size in bytes (KE payloads and g^xy are padded to it).
    pub fn modulus_len(self) -> usize {
        self.modulus_bits() as usize / 8
    }
}

/// `crypto isakmp policy N` and its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpPolicy {
    /// 1..=10000; lower is preferred. The built-in default suite has 65535.
    pub priority: u16,
    pub encryption: IkeEncryption,
    pub hash: IkeHash,
    pub auth: IkeAuth,
    pub group: DhGroup,
    /// 60..=86400 seconds; IOS default 86400.
    pub lifetime_secs: u32,
}

impl IsakmpPolicy {
    /// Priority IOS gives its built-in "Default protection suite".
    pub const DEFAULT_SUITE_PRIORITY: u16 = 65535;
    pub const DEFAULT_LIFETIME_SECS: u32 = 86400;

    /// A policy with every sub-line at its IOS default (what `crypto isakmp policy N`
    /// alone creates): DES, SHA, RSA signatures, group 1, 86400 s.
    pub fn with_defaults(priority: u16) -> Self {
        IsakmpPolicy {
            priority,
            encryption: IkeEncryption::default(),
            hash: IkeHash::default(),
            auth: IkeAuth::default(),
            group: DhGroup::default(),
            lifetime_secs: Self::DEFAULT_LIFETIME_SECS,
        }
    }

    /// IOS's "Default protection suite" (priority 65535), printed last by
    /// `show crypto isakmp policy`.
    pub fn default_suite() -> Self {
        Self::with_defaults(Self::DEFAULT_SUITE_PRIORITY)
    }
}

/// A pre-shared key. Zeroed on drop; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PresharedKey(Vec<u8>);

impl PresharedKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        PresharedKey(bytes.into())
    }
    /// The secret bytes, for SKEYID = prf(PSK, Ni_b | Nr_b). Do not log them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

impl fmt::Display for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Whom a `crypto isakmp key` belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyPeer {
    /// `address A [MASK]`; no mask means 255.255.255.255.
    Address { addr: Ipv4Addr, mask: Ipv4Addr },
    /// `hostname NAME` (matched against an ID_FQDN identity).
    Hostname(String),
}

/// `crypto isakmp key K address A [MASK] | hostname H`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsakmpKey {
    pub key: PresharedKey,
    pub peer: KeyPeer,
    /// `no-xauth` given.
    pub no_xauth: bool,
    /// Line of the configuration this came from.
    pub line: usize,
}

/// DPD mode of `crypto isakmp keepalive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DpdMode {
    /// Send R-U-THERE only when there was outbound traffic but nothing came back (IOS default).
    #[default]
    OnDemand,
    /// Send R-U-THERE every `interval_secs` regardless of traffic.
    Periodic,
}

/// `crypto isakmp keepalive SECONDS [RETRY] [periodic|on-demand]` (RFC 3706 DPD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keepalive {
    /// 10..=3600.
    pub interval_secs: u32,
    /// 2..=60; IOS default 2.
    pub retry_secs: u32,
    pub mode: DpdMode,
}

impl Keepalive {
    pub const DEFAULT_RETRY_SECS: u32 = 2;
}

/// `crypto isakmp peer address A` and its sub-lines: how IOS asks for Aggressive Mode
/// towards one peer (`set aggressive-mode password K` also sets the pre-shared key for A,
/// which then appears in [`Config::isakmp_keys`] as a /32 key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpPeer {
    pub addr: Ipv4Addr,
    /// Initiate in Aggressive Mode (`set aggressive-mode password|client-endpoint`).
    pub aggressive_mode: bool,
    /// `set aggressive-mode client-endpoint …` as written (e.g. `ipv4-address 10.0.0.1`).
    pub client_endpoint: Option<String>,
    pub description: Option<String>,
    pub line: usize,
}

// ---------------------------------------------------------------------------------------
// IPsec (phase 2)
// ---------------------------------------------------------------------------------------

/// ESP encryption transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EspEncryption {
    /// `esp-des`
    Des,
    /// `esp-3des`
    TripleDes,
    /// `esp-aes [128|192|256]` (default 128)
    Aes(AesKeySize),
    /// `esp-gcm [128|256]` (combined mode; no separate authenticator)
    Gcm(AesKeySize),
    /// `esp-null`
    Null,
}

impl EspEncryption {
    /// RFC 2407 IPSEC transform ID (ESP_DES 2, ESP_3DES 3, ESP_NULL 11, ESP_AES 12,
    /// ESP_AES_GCM_16 20).
    pub fn transform_id(self) -> u8 {
        match self {
            EspEncryption::Des => 2,
            EspEncryption::TripleDes => 3,
            EspEncryption::Null => 11,
            EspEncryption::Aes(_) => 12,
            EspEncryption::Gcm(_) => 20,
        }
    }
    /// Key length attribute value, where the transform needs one.
    pub fn key_bits(self) -> Option<u16> {
        match self {
            EspEncryption::Aes(k) | EspEncryption::Gcm(k) => Some(k.bits()),
            _ => None,
        }
    }
    /// Encryption key length in bytes (GCM: without the 4-byte salt).
    pub fn key_len(self) -> usize {
        match self {
            EspEncryption::Des => 8,
            EspEncryption::TripleDes => 24,
            EspEncryption::Aes(k) | EspEncryption::Gcm(k) => k.bits() as usize / 8,
            EspEncryption::Null => 0,
        }
    }
    /// IV size `show crypto ipsec sa` prints.
    pub fn iv_len(self) -> u8 {
        match self {
            EspEncryption::Des | EspEncryption::TripleDes => 8,
            EspEncryption::Aes(_) => 16,
            EspEncryption::Gcm(_) => 8,
            EspEncryption::Null => 0,
        }
    }
    /// The name `debug crypto isakmp` prints (`transform 1, ESP_3DES`).
    pub fn debug_name(self) -> &'static str {
        match self {
            EspEncryption::Des => "ESP_DES",
            EspEncryption::TripleDes => "ESP_3DES",
            EspEncryption::Aes(_) => "ESP_AES",
            EspEncryption::Gcm(_) => "ESP_GCM",
            EspEncryption::Null => "ESP_NULL",
        }
    }
}

/// ESP authentication transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EspAuth {
    /// `esp-md5-hmac` (HMAC-MD5-96)
    Md5Hmac,
    /// `esp-sha-hmac` (HMAC-SHA1-96)
    ShaHmac,
    /// `esp-sha256-hmac` (HMAC-SHA-256-128)
    Sha256Hmac,
}

impl EspAuth {
    /// RFC 2407 authentication algorithm attribute value (1 HMAC-MD5, 2 HMAC-SHA, 5 SHA2-256).
    pub fn attribute_value(self) -> u16 {
        match self {
            EspAuth::Md5Hmac => 1,
            EspAuth::ShaHmac => 2,
            EspAuth::Sha256Hmac => 5,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            EspAuth::Md5Hmac => 16,
            EspAuth::ShaHmac => 20,
            EspAuth::Sha256Hmac => 32,
        }
    }
    pub fn icv_len(self) -> usize {
        match self {
            EspAuth::Md5Hmac | EspAuth::ShaHmac => 12,
            EspAuth::Sha256Hmac => 16,
        }
    }
    /// The name `debug crypto isakmp` prints (`authenticator is HMAC-MD5`).
    pub fn debug_name(self) -> &'static str {
        match self {
            EspAuth::Md5Hmac => "HMAC-MD5",
            EspAuth::ShaHmac => "HMAC-SHA",
            EspAuth::Sha256Hmac => "HMAC-SHA256",
        }
    }
}

/// Encapsulation mode of a transform set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum IpsecMode {
    #[default]
    Tunnel,
    Transport,
}

impl IpsecMode {
    /// The word `show crypto ipsec sa` prints in `in use settings ={Tunnel, }`.
    pub fn ios_name(self) -> &'static str {
        match self {
            IpsecMode::Tunnel => "Tunnel",
            IpsecMode::Transport => "Transport",
        }
    }
}

/// `crypto ipsec transform-set NAME T1 [T2]` and its `mode` sub-line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformSet {
    pub name: String,
    /// The transforms as written, single-spaced: `esp-3des esp-md5-hmac`.
    pub transform: String,
    pub encryption: EspEncryption,
    pub auth: Option<EspAuth>,
    pub mode: IpsecMode,
    pub line: usize,
}

/// IPsec SA lifetime, in seconds and kilobytes (whichever runs out first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaLifetime {
    pub seconds: u32,
    pub kilobytes: u64,
}

impl SaLifetime {
    /// IOS defaults: 3600 s and 4608000 KB.
    pub const IOS_DEFAULT: SaLifetime = SaLifetime {
        seconds: 3600,
        kilobytes: 4_608_000,
    };
}

impl Default for SaLifetime {
    fn default() -> Self {
        SaLifetime::IOS_DEFAULT
    }
}

/// Per-entry `set security-association lifetime` overrides of the global lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SaLifetimeOverride {
    pub seconds: Option<u32>,
    pub kilobytes: Option<u64>,
}

impl SaLifetimeOverride {
    pub fn apply(&self, global: SaLifetime) -> SaLifetime {
        SaLifetime {
            seconds: self.seconds.unwrap_or(global.seconds),
            kilobytes: self.kilobytes.unwrap_or(global.kilobytes),
        }
    }
}

/// One `crypto map NAME SEQ ipsec-isakmp` entry with its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoMapEntry {
    pub seq: u32,
    /// `set peer` lines in order; the first is the one IKE tries first.
    pub peers: Vec<Ipv4Addr>,
    /// `set transform-set A B C` (names, in order of preference).
    pub transform_sets: Vec<String>,
    /// `match address ACL` (number or name).
    pub match_address: Option<String>,
    /// `set pfs [groupN]` (`set pfs` alone is group 1).
    pub pfs: Option<DhGroup>,
    pub lifetime: SaLifetimeOverride,
    /// `reverse-route`: install a route to the remote proxy (a client's address).
    pub reverse_route: bool,
    pub line: usize,
}

/// `crypto map NAME`: its entries, checked in sequence order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoMap {
    pub name: String,
    pub entries: BTreeMap<u32, CryptoMapEntry>,
    /// `crypto map NAME local-address IFACE`, if given.
    pub local_address_interface: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Access lists
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AclAction {
    Permit,
    Deny,
}

impl AclAction {
    pub fn keyword(self) -> &'static str {
        match self {
            AclAction::Permit => "permit",
            AclAction::Deny => "deny",
        }
    }
}

/// The protocol field of an extended ACL line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AclProtocol {
    Ip,
    Tcp,
    Udp,
    Icmp,
    /// A protocol given by number (0..=255), e.g. `50` for ESP.
    Number(u8),
}

impl AclProtocol {
    /// The IP protocol number a proxy identity carries (`ip` is 0: any).
    pub fn number(self) -> u8 {
        match self {
            AclProtocol::Ip => 0,
            AclProtocol::Icmp => 1,
            AclProtocol::Tcp => 6,
            AclProtocol::Udp => 17,
            AclProtocol::Number(n) => n,
        }
    }
    /// Whether a packet with IP protocol `proto` is covered.
    pub fn matches(self, proto: u8) -> bool {
        match self {
            AclProtocol::Ip => true,
            other => other.number() == proto,
        }
    }
    pub fn has_ports(self) -> bool {
        matches!(self, AclProtocol::Tcp | AclProtocol::Udp)
    }
}

impl fmt::Display for AclProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclProtocol::Ip => f.write_str("ip"),
            AclProtocol::Tcp => f.write_str("tcp"),
            AclProtocol::Udp => f.write_str("udp"),
            AclProtocol::Icmp => f.write_str("icmp"),
            AclProtocol::Number(n) => write!(f, "{n}"),
        }
    }
}

/// An address and a wildcard (inverse) mask: `10.1.1.0 0.0.0.255`, `host A`, `any`.
/// Bits set in the wildcard are "don't care".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddrMatch {
    pub addr: Ipv4Addr,
    pub wildcard: Ipv4Addr,
}

impl AddrMatch {
    pub const ANY: AddrMatch = AddrMatch {
        addr: Ipv4Addr::UNSPECIFIED,
        wildcard: Ipv4Addr::BROADCAST,
    };

    pub fn host(addr: Ipv4Addr) -> Self {
        AddrMatch {
            addr,
            wildcard: Ipv4Addr::UNSPECIFIED,
        }
    }
    /// IOS stores the address with the don't-care bits cleared.
    pub fn new(addr: Ipv4Addr, wildcard: Ipv4Addr) -> Self {
        let a = u32::from(addr) & !u32::from(wildcard);
        AddrMatch {
            addr: Ipv4Addr::from(a),
            wildcard,
        }
    }
    pub fn matches(&self, ip: Ipv4Addr) -> bool {
        let w = u32::from(self.wildcard);
        (u32::from(ip) & !w) == (u32::from(self.addr) & !w)
    }
    pub fn is_any(&self) -> bool {
        self.wildcard == Ipv4Addr::BROADCAST
    }
    pub fn is_host(&self) -> bool {
        self.wildcard == Ipv4Addr::UNSPECIFIED
    }
    /// The netmask (`255.255.255.0`) when the wildcard is contiguous (`0.0.0.255`).
    pub fn netmask(&self) -> Option<Ipv4Addr> {
        wildcard_to_netmask(self.wildcard)
    }
    /// Prefix length when the wildcard is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        self.netmask().map(|m| u32::from(m).count_ones() as u8)
    }
}

impl fmt::Display for AddrMatch {
    /// IOS's rendering: `any`, `host 10.1.1.1` or `10.1.1.0 0.0.0.255`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            f.write_str("any")
        } else if self.is_host() {
            write!(f, "host {}", self.addr)
        } else {
            write!(f, "{} {}", self.addr, self.wildcard)
        }
    }
}

/// Netmask for a contiguous wildcard (`0.0.0.255` → `255.255.255.0`); `None` otherwise.
pub fn wildcard_to_netmask(wildcard: Ipv4Addr) -> Option<Ipv4Addr> {
    let m = !u32::from(wildcard);
    // A netmask is ones then zeros: its complement plus one is a power of two (or zero).
    let inv = !m;
    if inv & inv.wrapping_add(1) == 0 {
        Some(Ipv4Addr::from(m))
    } else {
        None
    }
}

/// Wildcard for a netmask (`255.255.255.0` → `0.0.0.255`); `None` when the mask is not
/// contiguous.
pub fn netmask_to_wildcard(mask: Ipv4Addr) -> Option<Ipv4Addr> {
    let w = Ipv4Addr::from(!u32::from(mask));
    wildcard_to_netmask(w).map(|_| w)
}

/// Whether `mask` is a contiguous netmask.
pub fn is_contiguous_netmask(mask: Ipv4Addr) -> bool {
    netmask_to_wildcard(mask).is_some()
}

/// Port match of a TCP/UDP ACL line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PortMatch {
    Eq(u16),
    Neq(u16),
    Lt(u16),
    Gt(u16),
    /// Inclusive.
    Range(u16, u16),
}

impl PortMatch {
    pub fn matches(&self, port: u16) -> bool {
        match *self {
            PortMatch::Eq(p) => port == p,
            PortMatch::Neq(p) => port != p,
            PortMatch::Lt(p) => port < p,
            PortMatch::Gt(p) => port > p,
            PortMatch::Range(a, b) => a <= port && port <= b,
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Eq(p) => write!(f, "eq {p}"),
            PortMatch::Neq(p) => write!(f, "neq {p}"),
            PortMatch::Lt(p) => write!(f, "lt {p}"),
            PortMatch::Gt(p) => write!(f, "gt {p}"),
            PortMatch::Range(a, b) => write!(f, "range {a} {b}"),
        }
    }
}

/// One line of an extended access list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub action: AclAction,
    pub protocol: AclProtocol,
    pub src: AddrMatch,
    pub src_port: Option<PortMatch>,
    pub dst: AddrMatch,
    pub dst_port: Option<PortMatch>,
    /// ICMP type (and code) for `icmp` lines: `icmp any any 8` / `echo`.
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// TCP `established`.
    pub established: bool,
    /// `log` / `log-input`.
    pub log: bool,
    pub line: usize,
}

impl AclEntry {
    /// Whether a packet (protocol, source, destination, ports) is covered by this line.
    /// Ports are ignored for protocols without ports.
    pub fn matches(&self, proto: u8, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> bool {
        self.protocol.matches(proto)
            && self.src.matches(src)
            && self.dst.matches(dst)
            && self.src_port.is_none_or(|p| p.matches(sport))
            && self.dst_port.is_none_or(|p| p.matches(dport))
    }

    /// The text after `access-list N ` as IOS prints it:
    /// `permit ip 10.1.1.0 0.0.0.255 10.1.2.0 0.0.0.255`.
    pub fn ios_text(&self) -> String {
        let port = |p: u16| match crate::names::port_name(self.protocol, p) {
            Some(n) => n.to_string(),
            None => p.to_string(),
        };
        let ports = |m: PortMatch| match m {
            PortMatch::Eq(p) => format!(" eq {}", port(p)),
            PortMatch::Neq(p) => format!(" neq {}", port(p)),
            PortMatch::Lt(p) => format!(" lt {}", port(p)),
            PortMatch::Gt(p) => format!(" gt {}", port(p)),
            PortMatch::Range(a, b) => format!(" range {} {}", port(a), port(b)),
        };
        let mut s = format!("{} {} {}", self.action.keyword(), self.protocol, self.src);
        if let Some(p) = self.src_port {
            s.push_str(&ports(p));
        }
        s.push_str(&format!(" {}", self.dst));
        if let Some(p) = self.dst_port {
            s.push_str(&ports(p));
        }
        if let Some(t) = self.icmp_type {
            match crate::names::icmp_name(t, self.icmp_code) {
                Some(n) => s.push_str(&format!(" {n}")),
                None => {
                    s.push_str(&format!(" {t}"));
                    if let Some(c) = self.icmp_code {
                        s.push_str(&format!(" {c}"));
                    }
                }
            }
        }
        if self.established {
            s.push_str(" established");
        }
        if self.log {
            s.push_str(" log");
        }
        s
    }

    /// The proxy identities (local, remote) a crypto ACL line yields for Quick Mode: the
    /// source is the local side, the destination the remote side, as IOS does. Errors when
    /// the line cannot be expressed as an IKEv1 identity (a deny line, a non-contiguous
    /// wildcard, a port match other than `eq`).
    pub fn proxy_pair(&self) -> Result<ProxyPair, ProxyError> {
        if self.action != AclAction::Permit {
            return Err(ProxyError::DenyLine { line: self.line });
        }
        let proto = self.protocol.number();
        let local = ProxyId::from_match(&self.src, proto, self.src_port, self.line)?;
        let remote = ProxyId::from_match(&self.dst, proto, self.dst_port, self.line)?;
        Ok(ProxyPair { local, remote })
    }
}

/// Whether an access list was created as `access-list N` or `ip access-list extended NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclKind {
    Numbered,
    Named,
}

/// An extended access list (numbered 100–199 / 2000–2699, or named).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessList {
    pub name: String,
    pub kind: AclKind,
    pub entries: Vec<AclEntry>,
    pub line: usize,
}

impl AccessList {
    /// First-match verdict for a packet; `None` when no line matches (implicit deny).
    pub fn evaluate(
        &self,
        proto: u8,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
    ) -> Option<&AclEntry> {
        self.entries
            .iter()
            .find(|e| e.matches(proto, src, sport, dst, dport))
    }
}

// ---------------------------------------------------------------------------------------
// Proxy identities
// ---------------------------------------------------------------------------------------

/// A Quick Mode identity: `10.1.1.0/255.255.255.0/0/0 (type=4)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProxyId {
    pub addr: Ipv4Addr,
    /// 255.255.255.255 for a host.
    pub mask: Ipv4Addr,
    /// IP protocol, 0 = any.
    pub protocol: u8,
    /// Port, 0 = any.
    pub port: u16,
}

/// ID types of RFC 2407 §4.6.2.1.
pub const ID_IPV4_ADDR: u8 = 1;
pub const ID_IPV4_ADDR_SUBNET: u8 = 4;

impl ProxyId {
    fn from_match(
        m: &AddrMatch,
        protocol: u8,
        port: Option<PortMatch>,
        line: usize,
    ) -> Result<ProxyId, ProxyError> {
        let mask = m.netmask().ok_or(ProxyError::NonContiguousWildcard {
            line,
            wildcard: m.wildcard,
        })?;
        let port = match port {
            None => 0,
            Some(PortMatch::Eq(p)) => p,
            Some(other) => return Err(ProxyError::PortMatch { line, port: other }),
        };
        Ok(ProxyId {
            addr: m.addr,
            mask,
            protocol,
            port,
        })
    }

    /// Any protocol and port on `addr`/`mask`.
    pub fn subnet(addr: Ipv4Addr, mask: Ipv4Addr) -> ProxyId {
        ProxyId {
            addr,
            mask,
            protocol: 0,
            port: 0,
        }
    }

    /// Any protocol and port on one address.
    pub fn host(addr: Ipv4Addr) -> ProxyId {
        ProxyId::subnet(addr, Ipv4Addr::BROADCAST)
    }

    /// ID_IPV4_ADDR (1) for a host, ID_IPV4_ADDR_SUBNET (4) otherwise — what IOS sends.
    pub fn id_type(&self) -> u8 {
        if self.mask == Ipv4Addr::BROADCAST {
            ID_IPV4_ADDR
        } else {
            ID_IPV4_ADDR_SUBNET
        }
    }

    /// Whether `other` (e.g. what a peer proposed) lies within this identity.
    pub fn contains(&self, other: &ProxyId) -> bool {
        let m = u32::from(self.mask);
        let om = u32::from(other.mask);
        (om & m) == m
            && (u32::from(other.addr) & m) == (u32::from(self.addr) & m)
            && (self.protocol == 0 || self.protocol == other.protocol)
            && (self.port == 0 || self.port == other.port)
    }
}

impl fmt::Display for ProxyId {
    /// The slides' rendering: `10.1.1.0/255.255.255.0/0/0 (type=4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{} (type={})",
            self.addr,
            self.mask,
            self.protocol,
            self.port,
            self.id_type()
        )
    }
}

/// Local and remote proxy identities of one crypto ACL line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProxyPair {
    pub local: ProxyId,
    pub remote: ProxyId,
}

/// Why a crypto ACL line cannot be a pair of proxy identities.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("line {line}: a deny line is not a proxy identity")]
    DenyLine { line: usize },
    #[error("line {line}: wildcard {wildcard} is not contiguous; IKEv1 cannot express it")]
    NonContiguousWildcard { line: usize, wildcard: Ipv4Addr },
    #[error("line {line}: port match `{port}` is not a single port; IKEv1 cannot express it")]
    PortMatch { line: usize, port: PortMatch },
}

// ---------------------------------------------------------------------------------------
// Interfaces
// ---------------------------------------------------------------------------------------

/// `interface X` with its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The IOS name as written (`Ethernet1/0`).
    pub name: String,
    /// The Linux interface this stands for, from `--interface-map`, or the IOS name itself
    /// when it is a valid Linux name (`interface out0`). `None`: no Linux interface known.
    pub linux_name: Option<String>,
    /// `ip address A M`.
    pub address: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `crypto map NAME`.
    pub crypto_map: Option<String>,
    pub description: Option<String>,
    pub shutdown: bool,
    pub line: usize,
}

/// The IOS-to-Linux interface name mapping given with
/// `--interface-map Ethernet0/0=in0,Ethernet1/0=out0`.
///
/// IOS names such as `Ethernet1/0` cannot be Linux interface names (no `/`, at most 15
/// bytes), so both daemons take this option. An IOS interface not in the map keeps its own
/// name as the Linux name when that is a valid Linux name, so a configuration may also say
/// `interface out0` directly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceMap {
    /// (IOS name, Linux name) in the order given.
    pub pairs: Vec<(String, String)>,
}

/// Why an `--interface-map` value was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceMapError {
    #[error("interface map entry {0:?}: expected IOS=LINUX, e.g. Ethernet1/0=out0")]
    Syntax(String),
    #[error("interface map entry {0:?}: {1:?} is not a valid Linux interface name")]
    BadLinuxName(String, String),
    #[error("interface map: {0} is mapped twice")]
    Duplicate(String),
}

impl InterfaceMap {
    /// Parse `Ethernet0/0=in0,Ethernet1/0=out0` (whitespace around items is ignored; IOS
    /// names compare case-insensitively, as IOS does).
    pub fn parse(s: &str) -> Result<InterfaceMap, InterfaceMapError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (ios, linux) = item
                .split_once('=')
                .map(|(a, b)| (a.trim(), b.trim()))
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or_else(|| InterfaceMapError::Syntax(item.to_string()))?;
            if !is_valid_linux_ifname(linux) {
                return Err(InterfaceMapError::BadLinuxName(
                    item.to_string(),
                    linux.to_string(),
                ));
            }
            if pairs.iter().any(|(i, _)| i.eq_ignore_ascii_case(ios)) {
                return Err(InterfaceMapError::Duplicate(ios.to_string()));
            }
            pairs.push((ios.to_string(), linux.to_string()));
        }
        Ok(InterfaceMap { pairs })
    }

    /// The Linux name for an IOS interface name.
    pub fn linux_name(&self, ios: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(i, _)| i.eq_ignore_ascii_case(ios))
            .map(|(_, l)| l.as_str())
    }

    /// The IOS name for a Linux interface name.
    pub fn ios_name(&self, linux: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(_, l)| l == linux)
            .map(|(i, _)| i.as_str())
    }

    /// What `linux_name` an `Interface` gets: mapped, else its own name if valid on Linux.
    pub fn resolve(&self, ios: &str) -> Option<String> {
        self.linux_name(ios)
            .map(str::to_string)
            .or_else(|| is_valid_linux_ifname(ios).then(|| ios.to_string()))
    }
}

/// Linux's rule (dev_valid_name): 1..=15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
pub fn is_valid_linux_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

// ---------------------------------------------------------------------------------------
// The whole configuration
// ---------------------------------------------------------------------------------------

/// A parsed configuration. Built by [`crate::config::parse::parse_config`], which checks
/// that every reference (transform set, ACL, crypto map) resolves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `hostname` (for the prompt-like lines of show output); not otherwise used.
    pub hostname: Option<String>,
    /// By priority (lowest first: the order they are proposed and checked).
    pub isakmp_policies: BTreeMap<u16, IsakmpPolicy>,
    /// In configuration order.
    pub isakmp_keys: Vec<IsakmpKey>,
    /// `crypto isakmp peer address A` blocks, in configuration order.
    pub isakmp_peers: Vec<IsakmpPeer>,
    /// `crypto isakmp aggressive-mode disable`: refuse Aggressive Mode as responder.
    pub aggressive_mode_disabled: bool,
    pub keepalive: Option<Keepalive>,
    /// `crypto isakmp nat keepalive S` (NAT-T keepalive interval, 5..=3600 s).
    pub nat_keepalive_secs: Option<u32>,
    /// `crypto isakmp fragmentation [mtu N]`: IKE fragmentation on, fragments' IP datagrams
    /// at most N bytes (None: off; Some(None): the default size).
    pub isakmp_fragmentation: Option<Option<u16>>,
    pub transform_sets: BTreeMap<String, TransformSet>,
    /// `crypto ipsec security-association lifetime`.
    pub ipsec_sa_lifetime: SaLifetime,
    /// `crypto ipsec security-association replay window-size N` (64 by default);
    /// `replay disable` gives 0.
    pub replay_window: u32,
    pub crypto_maps: BTreeMap<String, CryptoMap>,
    /// By name (numbered lists by their number as a string).
    pub access_lists: BTreeMap<String, AccessList>,
    /// In configuration order.
    pub interfaces: Vec<Interface>,
    /// Trustpoints, certificate chains and maps, peers' public keys, the ISAKMP identity.
    pub pki: crate::pki::PkiConfig,
    /// Easy VPN server: AAA, users, client groups, pools, dynamic maps.
    pub remote_access: RemoteAccess,
    /// Easy VPN client (`crypto ipsec client ezvpn NAME`), by name.
    pub ezvpn_clients: EzvpnClients,
    /// `logging …`: where system messages go.
    pub logging: Logging,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: None,
            isakmp_policies: BTreeMap::new(),
            isakmp_keys: Vec::new(),
            isakmp_peers: Vec::new(),
            aggressive_mode_disabled: false,
            keepalive: None,
            nat_keepalive_secs: None,
            isakmp_fragmentation: None,
            transform_sets: BTreeMap::new(),
            ipsec_sa_lifetime: SaLifetime::IOS_DEFAULT,
            replay_window: Config::DEFAULT_REPLAY_WINDOW,
            crypto_maps: BTreeMap::new(),
            access_lists: BTreeMap::new(),
            interfaces: Vec::new(),
            pki: Default::default(),
            remote_access: RemoteAccess::default(),
            ezvpn_clients: EzvpnClients::new(),
            logging: Logging::default(),
        }
    }
}

/// A crypto map entry together with its map's name.
#[derive(Clone, Copy, Debug)]
pub struct MapEntryRef<'a> {
    pub map: &'a CryptoMap,
    pub entry: &'a CryptoMapEntry,
}

impl<'a> MapEntryRef<'a> {
    pub fn map_name(&self) -> &'a str {
        &self.map.name
    }
    pub fn seq(&self) -> u32 {
        self.entry.seq
    }
}

impl Config {
    pub const DEFAULT_REPLAY_WINDOW: u32 = 64;

    /// ISAKMP policies in priority order (lowest number first), as proposed by an
    /// initiator and checked by a responder. IOS also holds the "Default protection suite"
    /// ([`IsakmpPolicy::default_suite`], priority 65535); it is not part of this list.
    pub fn proposals(&self) -> impl Iterator<Item = &IsakmpPolicy> {
        self.isakmp_policies.values()
    }

    /// The pre-shared key for a peer address: among `address` keys whose address/mask
    /// covers `peer`, the one with the longest mask; on a tie, the first configured.
    pub fn psk_for_address(&self, peer: Ipv4Addr) -> Option<&IsakmpKey> {
        let mut best: Option<(&IsakmpKey, u32)> = None;
        for k in &self.isakmp_keys {
            if let KeyPeer::Address { addr, mask } = k.peer {
                let m = u32::from(mask);
                if u32::from(peer) & m == u32::from(addr) & m {
                    let len = m.count_ones();
                    if best.is_none_or(|(_, l)| len > l) {
                        best = Some((k, len));
                    }
                }
            }
        }
        best.map(|(k, _)| k)
    }

    /// Whether to initiate in Aggressive Mode towards `peer` (a `crypto isakmp peer address`
    /// block with `set aggressive-mode …`); Main Mode otherwise, as IOS does.
    pub fn initiates_aggressive(&self, peer: Ipv4Addr) -> bool {
        self.isakmp_peers
            .iter()
            .any(|p| p.addr == peer && p.aggressive_mode)
    }

    /// The pre-shared key configured with `hostname NAME` (case-insensitive).
    pub fn psk_for_hostname(&self, name: &str) -> Option<&IsakmpKey> {
        self.isakmp_keys.iter().find(|k| match &k.peer {
            KeyPeer::Hostname(h) => h.eq_ignore_ascii_case(name),
            _ => false,
        })
    }

    /// Every crypto map entry, map by map (name order), entry by entry (sequence order).
    pub fn map_entries(&self) -> impl Iterator<Item = MapEntryRef<'_>> {
        self.crypto_maps.values().flat_map(|map| {
            map.entries
                .values()
                .map(move |entry| MapEntryRef { map, entry })
        })
    }

    /// A crypto map entry by map name and sequence (what `espgw initiate MAP SEQ` names).
    pub fn map_entry(&self, map: &str, seq: u32) -> Option<MapEntryRef<'_>> {
        let m = self.crypto_maps.get(map)?;
        m.entries
            .get(&seq)
            .map(|entry| MapEntryRef { map: m, entry })
    }

    /// The first crypto map entry (lowest sequence) that lists `peer` in `set peer`,
    /// preferring maps applied to an interface.
    pub fn map_entry_for_peer(&self, peer: Ipv4Addr) -> Option<MapEntryRef<'_>> {
        let applied = |r: &MapEntryRef<'_>| self.interface_for_map(r.map_name()).is_some();
        let lists_peer = |r: &MapEntryRef<'_>| r.entry.peers.contains(&peer);
        self.map_entries()
            .filter(lists_peer)
            .find(applied)
            .or_else(|| self.map_entries().find(lists_peer))
    }

    /// The crypto map entry that covers a peer's Quick Mode proposal (as responder): the
    /// entry lists `peer` and one of its ACL permit lines contains the proposed identities
    /// (`proposed.local` is the peer's own side, i.e. our remote). Returns the entry and
    /// our (local, remote) proxy pair from the ACL line.
    pub fn map_entry_for_proxies(
        &self,
        peer: Ipv4Addr,
        peer_local: &ProxyId,
        peer_remote: &ProxyId,
    ) -> Option<(MapEntryRef<'_>, ProxyPair)> {
        for r in self.map_entries().filter(|r| r.entry.peers.contains(&peer)) {
            for pair in self.proxy_pairs(r.entry).into_iter().flatten() {
                if pair.remote.contains(peer_local) && pair.local.contains(peer_remote) {
                    return Some((r, pair));
                }
            }
        }
        None
    }

    /// The access list an entry's `match address` names.
    pub fn acl_for(&self, entry: &CryptoMapEntry) -> Option<&AccessList> {
        entry
            .match_address
            .as_deref()
            .and_then(|n| self.access_lists.get(n))
    }

    /// Proxy identity pairs for every permit line of the entry's crypto ACL, in ACL order
    /// (IOS builds one pair of SAs per permit line). Deny lines are skipped (they exclude
    /// traffic from encryption); a permit line IKEv1 cannot express is an `Err` item.
    pub fn proxy_pairs(&self, entry: &CryptoMapEntry) -> Vec<Result<ProxyPair, ProxyError>> {
        self.acl_for(entry)
            .map(|acl| {
                acl.entries
                    .iter()
                    .filter(|e| e.action == AclAction::Permit)
                    .map(AclEntry::proxy_pair)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The transform sets of an entry, in its order of preference.
    pub fn transform_sets_for(&self, entry: &CryptoMapEntry) -> Vec<&TransformSet> {
        entry
            .transform_sets
            .iter()
            .filter_map(|n| self.transform_sets.get(n))
            .collect()
    }

    /// The SA lifetime of an entry (its overrides over the global lifetime).
    pub fn lifetime_for(&self, entry: &CryptoMapEntry) -> SaLifetime {
        entry.lifetime.apply(self.ipsec_sa_lifetime)
    }

    /// The first interface a crypto map is applied to.
    pub fn interface_for_map(&self, map: &str) -> Option<&Interface> {
        self.interfaces
            .iter()
            .find(|i| i.crypto_map.as_deref() == Some(map))
    }

    /// The crypto maps in force: those applied to an interface that is not shut down, in
    /// interface order, each once.
    pub fn applied_maps(&self) -> Vec<&CryptoMap> {
        let mut maps: Vec<&CryptoMap> = Vec::new();
        for i in self.interfaces.iter().filter(|i| !i.shutdown) {
            let Some(m) = i
                .crypto_map
                .as_deref()
                .and_then(|n| self.crypto_maps.get(n))
            else {
                continue;
            };
            if !maps.iter().any(|x| x.name == m.name) {
                maps.push(m);
            }
        }
        maps
    }

    /// Every interface a crypto map is applied to (`Interfaces using crypto map vpn:`).
    pub fn interfaces_using_map<'a>(&'a self, map: &'a str) -> impl Iterator<Item = &'a Interface> {
        self.interfaces
            .iter()
            .filter(move |i| i.crypto_map.as_deref() == Some(map))
    }

    /// The local tunnel endpoint of a crypto map: the address of `local-address IFACE` if
    /// set, else of the first interface the map is applied to.
    pub fn local_address_for_map(&self, map: &str) -> Option<Ipv4Addr> {
        let m = self.crypto_maps.get(map)?;
        let iface = match &m.local_address_interface {
            Some(n) => self.interface(n)?,
            None => self.interface_for_map(map)?,
        };
        iface.address.map(|(a, _)| a)
    }

    /// An interface by IOS name (case-insensitive).
    pub fn interface(&self, ios_name: &str) -> Option<&Interface> {
        self.interfaces
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(ios_name))
    }

    /// An interface by Linux name.
    pub fn interface_by_linux_name(&self, linux: &str) -> Option<&Interface> {
        self.interfaces
            .iter()
            .find(|i| i.linux_name.as_deref() == Some(linux))
    }

    /// The interface whose subnet holds `addr` (e.g. to find the inside interface).
    pub fn interface_for_address(&self, addr: Ipv4Addr) -> Option<&Interface> {
        self.interfaces.iter().find(|i| match i.address {
            Some((a, m)) => u32::from(a) & u32::from(m) == u32::from(addr) & u32::from(m),
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn wildcard_netmask_conversion() {
        assert_eq!(
            wildcard_to_netmask(ip("0.0.0.255")),
            Some(ip("255.255.255.0"))
        );
        assert_eq!(
            wildcard_to_netmask(ip("0.0.0.0")),
            Some(ip("255.255.255.255"))
        );
        assert_eq!(
            wildcard_to_netmask(ip("255.255.255.255")),
            Some(ip("0.0.0.0"))
        );
        assert_eq!(
            wildcard_to_netmask(ip("0.0.0.15")),
            Some(ip("255.255.255.240"))
        );
        assert_eq!(wildcard_to_netmask(ip("0.0.255.0")), None);
        assert_eq!(wildcard_to_netmask(ip("0.0.0.254")), None);
        assert_eq!(
            netmask_to_wildcard(ip("255.255.255.240")),
            Some(ip("0.0.0.15"))
        );
        assert_eq!(netmask_to_wildcard(ip("255.0.255.0")), None);
    }

    #[test]
    fn addr_match_render_and_match() {
        let m = AddrMatch::new(ip("10.1.1.7"), ip("0.0.0.255"));
        assert_eq!(m.addr, ip("10.1.1.0"));
        assert_eq!(m.to_string(), "10.1.1.0 0.0.0.255");
        assert!(m.matches(ip("10.1.1.200")));
        assert!(!m.matches(ip("10.1.2.1")));
        assert_eq!(AddrMatch::ANY.to_string(), "any");
        assert_eq!(AddrMatch::host(ip("1.2.3.4")).to_string(), "host 1.2.3.4");
    }

    #[test]
    fn psk_lookup_prefers_longest_mask() {
        let key = |k: &str, a: &str, m: &str| IsakmpKey {
            key: PresharedKey::new(k.as_bytes()),
            peer: KeyPeer::Address {
                addr: ip(a),
                mask: ip(m),
            },
            no_xauth: false,
            line: 0,
        };
        let cfg = Config {
            isakmp_keys: vec![
                key("wide", "0.0.0.0", "0.0.0.0"),
                key("host", "172.16.172.20", "255.255.255.255"),
                key("net", "172.16.172.16", "255.255.255.240"),
            ],
            ..Config::default()
        };
        let k = |a| {
            cfg.psk_for_address(ip(a))
                .unwrap()
                .key
                .expose_secret()
                .to_vec()
        };
        assert_eq!(k("172.16.172.20"), b"host");
        assert_eq!(k("172.16.172.21"), b"net");
        assert_eq!(k("8.8.8.8"), b"wide");
    }

    #[test]
    fn psk_debug_is_redacted() {
        let k = PresharedKey::new(b"C!scO".to_vec());
        assert!(!format!("{k:?}").contains("C!scO"));
        assert!(!format!("{k}").contains("C!scO"));
    }

    #[test]
    fn proxy_id_rendering_and_containment() {
        let e = AclEntry {
            action: AclAction::Permit,
            protocol: AclProtocol::Ip,
            src: AddrMatch::new(ip("10.1.1.0"), ip("0.0.0.255")),
            src_port: None,
            dst: AddrMatch::new(ip("10.1.2.0"), ip("0.0.0.255")),
            dst_port: None,
            icmp_type: None,
            icmp_code: None,
            established: false,
            log: false,
            line: 3,
        };
        let p = e.proxy_pair().unwrap();
        assert_eq!(p.local.to_string(), "10.1.1.0/255.255.255.0/0/0 (type=4)");
        assert_eq!(p.remote.to_string(), "10.1.2.0/255.255.255.0/0/0 (type=4)");
        let host = ProxyId {
            addr: ip("10.1.2.9"),
            mask: Ipv4Addr::BROADCAST,
            protocol: 6,
            port: 80,
        };
        assert_eq!(host.id_type(), ID_IPV4_ADDR);
        assert!(p.remote.contains(&host));
        assert!(!host.contains(&p.remote));
        let bad = AclEntry {
            dst: AddrMatch::new(ip("10.0.1.0"), ip("0.255.0.255")),
            ..e.clone()
        };
        assert!(matches!(
            bad.proxy_pair(),
            Err(ProxyError::NonContiguousWildcard { line: 3, .. })
        ));
        let range = AclEntry {
            protocol: AclProtocol::Tcp,
            dst_port: Some(PortMatch::Range(1, 5)),
            ..e.clone()
        };
        assert!(matches!(
            range.proxy_pair(),
            Err(ProxyError::PortMatch { .. })
        ));
    }

    #[test]
    fn interface_map_parse() {
        let m = InterfaceMap::parse("Ethernet0/0=in0, Ethernet1/0=out0").unwrap();
        assert_eq!(m.linux_name("ethernet1/0"), Some("out0"));
        assert_eq!(m.ios_name("in0"), Some("Ethernet0/0"));
        assert_eq!(m.resolve("out1"), Some("out1".into()));
        assert_eq!(m.resolve("Serial0/0"), None);
        assert!(matches!(
            InterfaceMap::parse("Ethernet0/0"),
            Err(InterfaceMapError::Syntax(_))
        ));
        assert!(matches!(
            InterfaceMap::parse("E0=a/b"),
            Err(InterfaceMapError::BadLinuxName(..))
        ));
        assert!(matches!(
            InterfaceMap::parse("E0=a,e0=b"),
            Err(InterfaceMapError::Duplicate(_))
        ));
        assert!(matches!(
            InterfaceMap::parse("E0=abcdefghijklmnop"),
            Err(InterfaceMapError::BadLinuxName(..))
        ));
        assert_eq!(InterfaceMap::parse("").unwrap(), InterfaceMap::default());
    }
}
