//! Builds the IKE core's configuration from the parsed IOS configuration.

use super::config::*;
use super::crypto::{DhGroup, EncAlg, HashAlg};
use crate::config::model::{self as m, Config, KeyPeer};
use std::time::Duration;
use zeroize::Zeroizing;

/// Why an IOS configuration cannot drive IKE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IosConfigError {
    #[error("no interface with an ip address carries a crypto map")]
    NoLocalAddress,
    #[error("crypto map {0} {1}: {2}")]
    Entry(String, u32, String),
}

fn group(g: m::DhGroup) -> DhGroup {
    DhGroup::from_id(g.number()).expect("IOS groups are all supported")
}

/// The IKE configuration for `cfg`. This side initiates in Aggressive Mode towards a peer
/// with `crypto isakmp peer address A` / `set aggressive-mode …` (as IOS does), or towards
/// every peer when `aggressive` (the daemon's `--aggressive`).
pub fn ike_config(cfg: &Config, aggressive: bool) -> Result<IkeConfig, IosConfigError> {
    let local = cfg
        .interfaces
        .iter()
        .find(|i| i.crypto_map.is_some() && i.address.is_some())
        .and_then(|i| i.address.map(|a| a.0))
        .or_else(|| {
            // An Easy VPN client's outside interface.
            cfg.ezvpn_clients
                .values()
                .flat_map(|c| c.outside.iter())
                .find_map(|n| cfg.interface(n).and_then(|i| i.address).map(|a| a.0))
        })
        .ok_or(IosConfigError::NoLocalAddress)?;
    let mut c = IkeConfig::new(local);
    c.aggressive_mode_disabled = cfg.aggressive_mode_disabled;
    c.fragmentation = cfg
        .isakmp_fragmentation
        .map(|mtu| mtu.unwrap_or(super::endpoint::DEFAULT_FRAGMENT_MTU));
    for p in cfg.proposals() {
        let auth = match p.auth {
            m::IkeAuth::PreShare => AuthMethod::PreShared,
            m::IkeAuth::RsaSig => AuthMethod::RsaSig,
            m::IkeAuth::RsaEncr => AuthMethod::RsaEncr,
        };
        let enc = match p.encryption {
            m::IkeEncryption::TripleDes => EncAlg::Des3,
            m::IkeEncryption::Aes(k) => EncAlg::Aes(k.bits()),
            _ => continue,
        };
        let hash = match p.hash {
            m::IkeHash::Md5 => HashAlg::Md5,
            m::IkeHash::Sha => HashAlg::Sha1,
            m::IkeHash::Sha256 => HashAlg::Sha256,
        };
        c.policies.push(IsakmpPolicy {
            priority: p.priority as u32,
            enc,
            hash,
            group: group(p.group),
            lifetime: p.lifetime_secs,
            auth,
        });
    }
    for k in &cfg.isakmp_keys {
        if let KeyPeer::Address { addr, mask } = k.peer {
            c.keys.push(PreSharedKey {
                addr,
                mask,
                key: Zeroizing::new(k.key.expose_secret().to_vec()),
            });
        }
    }
    if let Some(ka) = cfg.keepalive {
        c.dpd = Some((
            Duration::from_secs(ka.interval_secs as u64),
            Duration::from_secs(ka.retry_secs as u64),
        ));
    }
    if let Some(s) = cfg.nat_keepalive_secs {
        c.nat_keepalive = Duration::from_secs(s as u64);
    }
    for e in cfg.map_entries() {
        let (name, seq) = (e.map_name().to_string(), e.seq());
        let err = |s: &str| IosConfigError::Entry(name.clone(), seq, s.to_string());
        let Some(&peer) = e.entry.peers.first() else {
            continue;
        };
        let sets: Vec<TransformSet> = cfg
            .transform_sets_for(e.entry)
            .into_iter()
            .filter_map(esp_transform_set)
            .collect();
        if sets.is_empty() {
            return Err(err("no usable transform set"));
        }
        let life = cfg.lifetime_for(e.entry);
        let interface = cfg
            .interface_for_map(&name)
            .map(|i| i.name.clone())
            .unwrap_or_default();
        for pair in cfg.proxy_pairs(e.entry) {
            let pair = pair.map_err(|x| err(&x.to_string()))?;
            c.maps.push(CryptoMapEntry {
                map: name.clone(),
                seq,
                peer,
                transform_sets: sets.clone(),
                pfs: e.entry.pfs.map(group),
                lifetime_secs: life.seconds,
                lifetime_kb: life.kilobytes,
                local_proxy: pair.local,
                remote_proxy: pair.remote,
                mode: if aggressive || cfg.initiates_aggressive(peer) {
                    Phase1Mode::Aggressive
                } else {
                    Phase1Mode::Main
                },
                interface: interface.clone(),
            });
        }
    }
    c.remote = super::remote::RemoteAccessConfig::from_model(cfg, |name| {
        cfg.transform_sets.get(name).and_then(esp_transform_set)
    })
    .map(std::sync::Arc::new);
    c.ezvpn = super::ezvpn::EzvpnClientConfig::from_model(cfg, esp_transform_set);
    Ok(c)
}

/// A transform set as the IKE core proposes it (None: a transform espgw has no ESP for).
fn esp_transform_set(ts: &m::TransformSet) -> Option<TransformSet> {
    let enc = match ts.encryption {
        m::EspEncryption::TripleDes => EspEnc::Des3,
        m::EspEncryption::Aes(k) => EspEnc::Aes(k.bits()),
        m::EspEncryption::Gcm(k) => EspEnc::Gcm(k.bits()),
        m::EspEncryption::Null => EspEnc::Null,
        _ => return None,
    };
    let auth = match ts.auth {
        Some(m::EspAuth::Md5Hmac) => Some(EspAuth::Md5),
        Some(m::EspAuth::ShaHmac) => Some(EspAuth::Sha1),
        Some(m::EspAuth::Sha256Hmac) => Some(EspAuth::Sha256),
        // Only a combined-mode cipher goes without an authenticator.
        None if matches!(enc, EspEnc::Gcm(_)) => None,
        None => return None,
    };
    Some(TransformSet {
        name: ts.name.clone(),
        enc,
        auth,
        transport: ts.mode == m::IpsecMode::Transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::InterfaceMap;
    use crate::config::parse::parse_config;
    use std::net::Ipv4Addr;

    fn ike_config_of(text: &str) -> IkeConfig {
        let parsed = parse_config(text, &InterfaceMap::default()).unwrap();
        ike_config(&parsed.config, false).unwrap()
    }

    #[test]
    fn slides_r1_config_drives_ike() {
        let c = ike_config_of(include_str!("../../../deploy/configs/r1.conf"));
        assert_eq!(c.local_addr, Ipv4Addr::new(172, 16, 172, 10));
        assert!(!c.policies.is_empty());
        assert_eq!(c.policies[0].priority, 1);
        assert_eq!(c.policies[0].hash, HashAlg::Sha1);
        assert_eq!(c.policies[0].group, DhGroup::Modp768);
        let e = &c.maps[0];
        assert_eq!((e.map.as_str(), e.seq), ("vpn", 10));
        assert_eq!(e.peer, Ipv4Addr::new(172, 16, 172, 20));
        assert_eq!(
            e.local_proxy.to_string(),
            "10.1.1.0/255.255.255.0/0/0 (type=4)"
        );
        assert_eq!(
            e.remote_proxy.to_string(),
            "10.1.2.0/255.255.255.0/0/0 (type=4)"
        );
        assert!(c.psk_for(e.peer).is_some());
    }

    #[test]
    fn crypto_isakmp_peer_aggressive_mode_selects_aggressive_mode() {
        let c = ike_config_of(include_str!("../../../deploy/configs/r1-am.conf"));
        assert_eq!(c.maps[0].mode, Phase1Mode::Aggressive);
        assert!(
            c.psk_for(Ipv4Addr::new(172, 16, 172, 20)).is_some(),
            "set aggressive-mode password gives the key"
        );
        let c = ike_config_of(include_str!("../../../deploy/configs/r1.conf"));
        assert_eq!(c.maps[0].mode, Phase1Mode::Main);
    }
}
