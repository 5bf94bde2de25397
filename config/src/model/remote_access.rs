//! Remote access (Easy VPN server, classic crypto maps): AAA method lists, local users,
//! `crypto isakmp client configuration group`s, `ip local pool`s, dynamic crypto maps and
//! what a crypto map says about its clients.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{CryptoMap, PresharedKey};

/// `aaa authentication login LIST METHOD…` / `aaa authorization network LIST METHOD…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AaaList {
    pub name: String,
    /// espgw knows one method, the local user database; it is always `local` here.
    pub methods: Vec<AaaMethod>,
    pub line: usize,
}

/// A method of an AAA method list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AaaMethod {
    /// `local`: the `username` lines.
    Local,
}

/// How a `username` line stores the password.
#[derive(Clone, PartialEq, Eq)]
pub enum UserPassword {
    /// `password [0] P` or `secret 0 P`: the password itself.
    Clear(PresharedKey),
    /// `secret 5 $1$SALT$HASH`: MD5-crypt, as IOS stores a secret.
    Md5Crypt(String),
}

impl std::fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserPassword::Clear(_) => f.write_str("Clear(<redacted>)"),
            UserPassword::Md5Crypt(_) => f.write_str("Md5Crypt(<redacted>)"),
        }
    }
}

/// `username NAME [privilege N] password|secret …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub password: UserPassword,
    pub privilege: Option<u8>,
    pub line: usize,
}

/// `crypto isakmp client configuration group NAME` and its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientGroup {
    pub name: String,
    /// `key K`: the group's pre-shared key (phase 1 with ID_KEY_ID = the group name).
    pub key: Option<PresharedKey>,
    /// `pool NAME` (an `ip local pool`).
    pub pool: Option<String>,
    /// `dns A [B]`.
    pub dns: Vec<Ipv4Addr>,
    /// `wins A [B]`.
    pub wins: Vec<Ipv4Addr>,
    /// `domain NAME`.
    pub domain: Option<String>,
    /// `acl NAME|NUMBER`: split tunnelling, each permit line's source network is sent as
    /// a split include.
    pub acl: Option<String>,
    /// `pfs`: the client must use PFS in Quick Mode.
    pub pfs: bool,
    /// `save-password`.
    pub save_password: bool,
    /// `banner c … c`.
    pub banner: Option<String>,
    /// `max-users N`.
    pub max_users: Option<u32>,
    pub line: usize,
}

impl ClientGroup {
    pub fn new(name: &str, line: usize) -> Self {
        ClientGroup {
            name: name.to_string(),
            key: None,
            pool: None,
            dns: Vec::new(),
            wins: Vec::new(),
            domain: None,
            acl: None,
            pfs: false,
            save_password: false,
            banner: None,
            max_users: None,
            line,
        }
    }
}

/// `ip local pool NAME FIRST [LAST]` (several lines with one name add ranges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPool {
    pub name: String,
    /// Inclusive ranges, in configuration order.
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub line: usize,
}

impl LocalPool {
    /// Number of addresses in the pool.
    pub fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| u64::from(u32::from(*b) - u32::from(*a)) + 1)
            .sum()
    }
}

/// `crypto map NAME client configuration address respond|initiate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeConfigAddress {
    /// The client asks (REQUEST → REPLY): vpnc, strongSwan, Cisco's clients.
    Respond,
    /// The server pushes (SET → ACK).
    Initiate,
}

/// What `crypto map NAME client …` / `crypto map NAME isakmp authorization list …` say
/// about the clients of one crypto map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapClientConfig {
    /// `client authentication list L`: XAUTH against this login list.
    pub authentication_list: Option<String>,
    /// `isakmp authorization list L`: the group's attributes come from this network list.
    pub authorization_list: Option<String>,
    /// `client configuration address respond|initiate`.
    pub address: Option<ModeConfigAddress>,
    pub line: usize,
}

/// `crypto map NAME SEQ ipsec-isakmp dynamic DYN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicMapRef {
    pub map: String,
    pub seq: u32,
    pub dynamic: String,
    pub line: usize,
}

/// Everything remote access needs from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAccess {
    /// `aaa new-model`.
    pub aaa_new_model: bool,
    /// `aaa authentication login LIST …` by name.
    pub login_lists: BTreeMap<String, AaaList>,
    /// `aaa authorization network LIST …` by name.
    pub network_lists: BTreeMap<String, AaaList>,
    /// `username` lines by name.
    pub users: BTreeMap<String, LocalUser>,
    pub groups: BTreeMap<String, ClientGroup>,
    pub pools: BTreeMap<String, LocalPool>,
    /// `crypto dynamic-map NAME SEQ` templates (entries without peers).
    pub dynamic_maps: BTreeMap<String, CryptoMap>,
    /// By crypto map name.
    pub map_clients: BTreeMap<String, MapClientConfig>,
    /// `crypto map NAME SEQ ipsec-isakmp dynamic DYN` lines, in configuration order.
    pub dynamic_refs: Vec<DynamicMapRef>,
    /// `crypto isakmp xauth timeout S` (IOS default 60 s).
    pub xauth_timeout_secs: u32,
}

impl RemoteAccess {
    pub const DEFAULT_XAUTH_TIMEOUT_SECS: u32 = 60;

    /// Whether anything remote-access is configured (a client group or a dynamic map).
    pub fn enabled(&self) -> bool {
        !self.groups.is_empty() || !self.dynamic_refs.is_empty()
    }
    /// The group a client names in its ID_KEY_ID.
    pub fn group(&self, name: &str) -> Option<&ClientGroup> {
        self.groups.get(name)
    }
    pub fn user(&self, name: &str) -> Option<&LocalUser> {
        self.users.get(name)
    }
}

impl Default for RemoteAccess {
    fn default() -> Self {
        RemoteAccess {
            aaa_new_model: false,
            login_lists: BTreeMap::new(),
            network_lists: BTreeMap::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            pools: BTreeMap::new(),
            dynamic_maps: BTreeMap::new(),
            map_clients: BTreeMap::new(),
            dynamic_refs: Vec::new(),
            xauth_timeout_secs: Self::DEFAULT_XAUTH_TIMEOUT_SECS,
        }
    }
}
