//! What the IKE core needs to serve remote-access clients (Easy VPN server), built from
//! the IOS model's `remote_access` section: the client groups with their resolved
//! attributes, the local users, the pools, and how the crypto map treats clients.

use super::config::TransformSet;
use super::crypto::{DhGroup, Secret};
use super::endpoint::attributes::SplitNet;
use crate::config::model::{self as m, Config, UserPassword};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;
use zeroize::Zeroizing;

/// `crypto isakmp client configuration group NAME`, resolved.
#[derive(Clone)]
pub struct ClientGroup {
    pub name: String,
    pub key: Secret,
    pub pool: Option<String>,
    pub dns: Vec<Ipv4Addr>,
    pub wins: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    /// From the group's `acl`: the source network of each permit line.
    pub split_include: Vec<SplitNet>,
    pub pfs: bool,
    pub save_password: bool,
    pub banner: Option<String>,
    pub max_users: Option<u32>,
}

impl fmt::Debug for ClientGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientGroup({}, key <hidden>)", self.name)
    }
}

/// A local user's password as configured.
#[derive(Clone)]
pub enum UserSecret {
    Clear(Secret),
    Md5Crypt(String),
}

impl UserSecret {
    /// Whether `given` is this user's password (MD5-crypt computed as IOS stores `secret 5`).
    pub fn verify(&self, given: &[u8]) -> bool {
        match self {
            UserSecret::Clear(p) => ct_eq(p, given),
            UserSecret::Md5Crypt(h) => {
                let Some(salt) = h.strip_prefix("$1$").and_then(|r| r.split('$').next()) else {
                    return false;
                };
                ct_eq(md5_crypt(given, salt.as_bytes()).as_bytes(), h.as_bytes())
            }
        }
    }
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserSecret(<hidden>)")
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// MD5-crypt (`$1$`), the algorithm of FreeBSD's crypt(3) that IOS uses for `secret 5`.
pub fn md5_crypt(pw: &[u8], salt: &[u8]) -> String {
    use md5::{Digest, Md5};
    let salt = &salt[..salt.len().min(8)];
    let mut alt = Md5::new();
    alt.update(pw);
    alt.update(salt);
    alt.update(pw);
    let alt = alt.finalize();
    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut n = pw.len();
    while n > 0 {
        ctx.update(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1.min(pw.len())]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for r in 0..1000 {
        let mut c = Md5::new();
        if r & 1 == 1 {
            c.update(pw);
        } else {
            c.update(fin);
        }
        if r % 3 != 0 {
            c.update(salt);
        }
        if r % 7 != 0 {
            c.update(pw);
        }
        if r & 1 == 1 {
            c.update(fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize();
    }
    const ITOA: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::from("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(ITOA[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    let f = |i: usize| fin[i] as u32;
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    put(f(11), 2);
    out
}

/// How the crypto map treats its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    /// `client configuration address respond`: the client asks.
    Respond,
    /// `client configuration address initiate`: we push (SET).
    Initiate,
}

/// The dynamic crypto map entry clients' Quick Modes are checked against.
#[derive(Debug, Clone)]
pub struct DynamicEntry {
    pub map: String,
    pub seq: u32,
    pub transform_sets: Vec<TransformSet>,
    pub pfs: Option<DhGroup>,
    pub reverse_route: bool,
    pub lifetime_secs: u32,
    pub lifetime_kb: u64,
    /// The interface the crypto map is applied to (for show).
    pub interface: String,
}

/// Everything remote access needs.
#[derive(Debug, Clone)]
pub struct RemoteAccessConfig {
    pub groups: BTreeMap<String, ClientGroup>,
    pub users: BTreeMap<String, UserSecret>,
    pub pools: BTreeMap<String, Vec<(Ipv4Addr, Ipv4Addr)>>,
    /// `client authentication list`: XAUTH is required.
    pub xauth: bool,
    pub address: AddressMode,
    pub dynamic: Vec<DynamicEntry>,
    /// `crypto isakmp xauth timeout`.
    pub xauth_timeout: Duration,
    /// Wrong passwords tolerated before the SA is deleted (IOS: 3 attempts in all).
    pub xauth_attempts: u32,
}

impl RemoteAccessConfig {
    /// From the IOS model; None if no client group or dynamic map is configured.
    /// `transform_set` resolves a transform-set name as the static maps do.
    pub fn from_model(
        cfg: &Config,
        transform_set: impl Fn(&str) -> Option<TransformSet>,
    ) -> Option<RemoteAccessConfig> {
        let ra = &cfg.remote_access;
        if !ra.enabled() {
            return None;
        }
        let groups = ra
            .groups
            .values()
            .filter_map(|g| {
                let key = g.key.as_ref()?;
                Some((
                    g.name.clone(),
                    ClientGroup {
                        name: g.name.clone(),
                        key: Zeroizing::new(key.expose_secret().to_vec()),
                        pool: g.pool.clone(),
                        dns: g.dns.clone(),
                        wins: g.wins.clone(),
                        domain: g.domain.clone(),
                        split_include: split_of(cfg, g.acl.as_deref()),
                        pfs: g.pfs,
                        save_password: g.save_password,
                        banner: g.banner.clone(),
                        max_users: g.max_users,
                    },
                ))
            })
            .collect();
        let users = ra
            .users
            .values()
            .map(|u| {
                let s = match &u.password {
                    UserPassword::Clear(p) => {
                        UserSecret::Clear(Zeroizing::new(p.expose_secret().to_vec()))
                    }
                    UserPassword::Md5Crypt(h) => UserSecret::Md5Crypt(h.clone()),
                };
                (u.name.clone(), s)
            })
            .collect();
        let pools = ra
            .pools
            .values()
            .map(|p| (p.name.clone(), p.ranges.clone()))
            .collect();
        let xauth = ra
            .map_clients
            .values()
            .any(|c| c.authentication_list.is_some());
        let address = if ra
            .map_clients
            .values()
            .any(|c| c.address == Some(m::ModeConfigAddress::Initiate))
        {
            AddressMode::Initiate
        } else {
            AddressMode::Respond
        };
        let mut dynamic = Vec::new();
        for r in &ra.dynamic_refs {
            let Some(d) = ra.dynamic_maps.get(&r.dynamic) else {
                continue;
            };
            for e in d.entries.values() {
                let life = cfg.lifetime_for(e);
                dynamic.push(DynamicEntry {
                    map: r.map.clone(),
                    seq: r.seq,
                    transform_sets: e
                        .transform_sets
                        .iter()
                        .filter_map(|n| transform_set(n))
                        .collect(),
                    pfs: e.pfs.and_then(|g| DhGroup::from_id(g.number())),
                    reverse_route: e.reverse_route,
                    lifetime_secs: life.seconds,
                    lifetime_kb: life.kilobytes,
                    interface: cfg
                        .interface_for_map(&r.map)
                        .map(|i| i.name.clone())
                        .unwrap_or_default(),
                });
            }
        }
        Some(RemoteAccessConfig {
            groups,
            users,
            pools,
            xauth,
            address,
            dynamic,
            xauth_timeout: Duration::from_secs(ra.xauth_timeout_secs as u64),
            xauth_attempts: 3,
        })
    }
}

/// The split-include networks of a group's ACL: each permit line's source.
fn split_of(cfg: &Config, acl: Option<&str>) -> Vec<SplitNet> {
    let Some(acl) = acl.and_then(|a| cfg.access_lists.get(a)) else {
        return Vec::new();
    };
    acl.entries
        .iter()
        .filter(|e| e.action == m::AclAction::Permit)
        .filter_map(|e| Some(SplitNet::network(e.src.addr, e.src.netmask()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers from `openssl passwd -1 -salt SALT PASSWORD` (an implementation we
    /// did not write).
    #[test]
    fn md5_crypt_matches_openssl() {
        assert_eq!(
            md5_crypt(b"wonderland", b"mERr"),
            "$1$mERr$LiYHHJxqSJ4tEY/Xy4UdT0"
        );
        assert_eq!(
            md5_crypt(b"password", b"saltsalt"),
            "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"
        );
        let s = UserSecret::Md5Crypt("$1$mERr$LiYHHJxqSJ4tEY/Xy4UdT0".into());
        assert!(s.verify(b"wonderland"));
        assert!(!s.verify(b"wonderlanD"));
        assert!(UserSecret::Clear(Zeroizing::new(b"x".to_vec())).verify(b"x"));
        assert!(!UserSecret::Clear(Zeroizing::new(b"x".to_vec())).verify(b"xx"));
    }
}
