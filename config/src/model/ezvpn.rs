//! Easy VPN client (IOS "Easy VPN Remote"): `crypto ipsec client ezvpn NAME` blocks and the
//! interfaces that carry them (`crypto ipsec client ezvpn NAME [inside]` under `interface`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::PresharedKey;

/// `connect auto|manual`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EzvpnConnect {
    /// The tunnel comes up when the configuration is applied (IOS default).
    #[default]
    Auto,
    /// It waits for `crypto ipsec client ezvpn connect NAME`.
    Manual,
}

/// `mode client|network-extension`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EzvpnMode {
    /// The inside network reaches the server's networks unchanged.
    #[default]
    NetworkExtension,
    /// The inside network hides behind the Mode Config address (IOS's default; needs NAT,
    /// which espgw does not have: refused by the parser).
    Client,
}

/// `crypto ipsec client ezvpn NAME` and its sub-lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EzvpnClient {
    pub name: String,
    pub connect: EzvpnConnect,
    /// `group G key K`: the group name (ID_KEY_ID) and its key (the phase-1 PSK).
    pub group: Option<(String, PresharedKey)>,
    pub mode: EzvpnMode,
    /// `peer A` lines, in order (the first is tried).
    pub peers: Vec<Ipv4Addr>,
    /// `username U password P`: the saved XAUTH credentials.
    pub xauth: Option<(String, PresharedKey)>,
    /// Interfaces with `crypto ipsec client ezvpn NAME` (outside).
    pub outside: Vec<String>,
    /// Interfaces with `crypto ipsec client ezvpn NAME inside`.
    pub inside: Vec<String>,
    pub line: usize,
}

impl EzvpnClient {
    /// The crypto map IOS builds for the tunnel at run time, `<outside interface>-head-0`
    /// (the tunnel's name without an outside interface): control negotiates its entries,
    /// the data plane steers by them.
    pub fn map_name(&self) -> String {
        format!("{}-head-0", self.outside.first().unwrap_or(&self.name))
    }

    pub fn new(name: &str, line: usize) -> Self {
        EzvpnClient {
            name: name.to_string(),
            connect: EzvpnConnect::Auto,
            group: None,
            mode: EzvpnMode::NetworkExtension,
            peers: Vec::new(),
            xauth: None,
            outside: Vec::new(),
            inside: Vec::new(),
            line,
        }
    }
}

/// Every Easy VPN client, by name.
pub type EzvpnClients = BTreeMap<String, EzvpnClient>;
