//! What the IKE core needs to run as an Easy VPN client (IOS "Easy VPN Remote",
//! `crypto ipsec client ezvpn NAME`), built from the IOS model's `ezvpn_clients`.

use super::config::{Proxy, TransformSet};
use super::crypto::Secret;
use crate::config::model::{self as m, Config};
use std::fmt;
use std::net::Ipv4Addr;
use zeroize::Zeroizing;

/// One `crypto ipsec client ezvpn NAME`, resolved.
#[derive(Clone)]
pub struct EzvpnClientConfig {
    pub name: String,
    /// `connect manual`: waits for `crypto ipsec client ezvpn connect NAME`.
    pub manual: bool,
    /// `group G key K`: ID_KEY_ID and phase-1 pre-shared key.
    pub group: String,
    pub key: Secret,
    /// The first `peer`.
    pub peer: Ipv4Addr,
    /// `username U password P` (saved XAUTH credentials).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Inside interfaces (IOS name) and their networks (network-extension mode protects them).
    pub inside: Vec<(String, Proxy)>,
    /// The outside interface (IOS name).
    pub outside: String,
    /// The crypto map of the tunnel's entries (`EzvpnClient::map_name`).
    pub map: String,
    /// What Quick Mode proposes: every usable transform set of the configuration.
    pub transform_sets: Vec<TransformSet>,
    pub lifetime_secs: u32,
    pub lifetime_kb: u64,
}

impl fmt::Debug for EzvpnClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EzvpnClientConfig({}, group {}, peer {}, key <hidden>)",
            self.name, self.group, self.peer
        )
    }
}

impl EzvpnClientConfig {
    /// Every complete client of `cfg`; `ts` converts a transform set (None: unusable).
    pub fn from_model(
        cfg: &Config,
        ts: impl Fn(&m::TransformSet) -> Option<TransformSet>,
    ) -> Vec<EzvpnClientConfig> {
        let sets: Vec<TransformSet> = cfg.transform_sets.values().filter_map(&ts).collect();
        let life = cfg.ipsec_sa_lifetime;
        cfg.ezvpn_clients
            .values()
            .filter_map(|c| {
                let (group, key) = c.group.as_ref()?;
                let peer = *c.peers.first()?;
                let inside = c
                    .inside
                    .iter()
                    .filter_map(|n| {
                        let (a, mask) = cfg.interface(n)?.address?;
                        let net = Ipv4Addr::from(u32::from(a) & u32::from(mask));
                        Some((n.clone(), Proxy::subnet(net, mask)))
                    })
                    .collect();
                Some(EzvpnClientConfig {
                    name: c.name.clone(),
                    manual: c.connect == m::EzvpnConnect::Manual,
                    group: group.clone(),
                    key: Zeroizing::new(key.expose_secret().to_vec()),
                    peer,
                    user: c.xauth.as_ref().map(|x| x.0.clone()),
                    password: c
                        .xauth
                        .as_ref()
                        .map(|x| Zeroizing::new(x.1.expose_secret().to_vec())),
                    inside,
                    outside: c.outside.first().cloned().unwrap_or_default(),
                    map: c.map_name(),
                    transform_sets: sets.clone(),
                    lifetime_secs: life.seconds,
                    lifetime_kb: life.kilobytes,
                })
            })
            .collect()
    }
}
