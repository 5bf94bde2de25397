//! Classifier rules that follow the SA database: the crypto map entries whose traffic
//! selectors exist only at run time.
//!
//! - An Easy VPN client (`crypto ipsec client ezvpn NAME`, network-extension mode) has no
//!   crypto ACL in its configuration: espgw-control builds its entries from Mode Config
//!   (each inside network against each split-include network the server sent, 0.0.0.0/0
//!   without one) in a map named as IOS names it, `<outside interface>-head-0`, and
//!   negotiates their SAs itself (`connect auto`).
//! - An Easy VPN server's dynamic entry (`crypto map M SEQ ipsec-isakmp dynamic D`) takes
//!   whatever the client proposes; a network-extension client protects its inside network,
//!   which is in no `ip local pool`.
//!
//! The only place the dataplane sees those selectors is the SA database: every outbound SA
//! of such an entry carries them. So the rules are the proxies of those SAs, rebuilt when
//! the database's generation moves, after the configuration's rules; traffic outside them
//! (networks the server did not split-include) stays with the kernel, as on IOS.

use crate::sadb::{Direction, MapName, SaEntry, SaState};
use crate::xdp::acl::AclRule;
use espgw_config::Config;

/// A crypto map entry whose rules come from its SAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeEntry {
    pub map: MapName,
    /// The entry's sequence number; `None`: every entry of the map (an Easy VPN client's).
    pub seq: Option<u32>,
}

impl RuntimeEntry {
    fn holds(&self, map: &MapName, seq: u32) -> bool {
        self.map == *map && self.seq.is_none_or(|s| s == seq)
    }
}

/// The crypto map espgw-control builds for one Easy VPN client (`<outside>-head-0`, the
/// client's name without an outside interface), as control names it.
pub fn client_map_name(client: &espgw_config::EzvpnClient) -> Option<MapName> {
    MapName::new(&client.map_name())
}

/// Every Easy VPN client's map, and every applied dynamic entry.
pub fn runtime_entries(cfg: &Config) -> Vec<RuntimeEntry> {
    let mut out: Vec<RuntimeEntry> = cfg
        .ezvpn_clients
        .values()
        .filter_map(client_map_name)
        .map(|map| RuntimeEntry { map, seq: None })
        .collect();
    out.extend(
        cfg.remote_access
            .dynamic_refs
            .iter()
            .filter(|r| cfg.interface_for_map(&r.map).is_some())
            .filter_map(|r| {
                Some(RuntimeEntry {
                    map: MapName::new(&r.map)?,
                    seq: Some(r.seq),
                })
            }),
    );
    out.dedup();
    out
}

/// One rule per distinct outbound SA proxy of the `entries` (active or being rekeyed: the
/// flow is the same), in sequence order. The entry's sequence number is the rule's policy
/// (a client's entries are numbered from 65536, past the classifier's 16 bits: kept
/// distinct modulo 65536, which is all the rule needs).
pub fn rules_from_sas(entries: &[RuntimeEntry], sas: &[SaEntry]) -> Vec<AclRule> {
    let mut picked: Vec<(u32, AclRule)> = sas
        .iter()
        .filter(|e| matches!(e.state, SaState::Active | SaState::Dying))
        .map(|e| &e.record)
        .filter(|r| r.direction == Direction::Outbound)
        .filter(|r| {
            entries
                .iter()
                .any(|e| e.holds(&r.crypto_map, r.crypto_map_seq))
        })
        .map(|r| {
            let policy = (r.crypto_map_seq & 0xffff) as u16;
            (
                r.crypto_map_seq,
                AclRule::from_proxy(&r.proxy, policy, r.crypto_map),
            )
        })
        .collect();
    picked.sort_by_key(|(seq, r)| (*seq, r.to_string()));
    picked.dedup_by(|a, b| a.1 == b.1);
    picked.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sadb::{Ipv4Prefix, SaRecord, SlotId};
    use crate::xdp::acl::first_match;
    use espgw_config::{parse_config, InterfaceMap};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn sa(slot: u32, dir: Direction, map: &str, seq: u32, local: &str, remote: &str) -> SaEntry {
        let mut record = SaRecord::derived(u64::from(slot) + 1);
        record.direction = dir;
        record.crypto_map = MapName::new(map).unwrap();
        record.crypto_map_seq = seq;
        let prefix = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Ipv4Prefix::new(ip(a), l.parse().unwrap())
        };
        record.proxy.local = prefix(local);
        record.proxy.remote = prefix(remote);
        record.proxy.protocol = 0;
        record.proxy.local_port = 0;
        record.proxy.remote_port = 0;
        SaEntry {
            slot: SlotId(slot),
            incarnation: 1,
            state: SaState::Active,
            record,
        }
    }

    #[test]
    fn the_lab_client_names_the_map_control_builds() {
        let cfg = parse_config(
            include_str!("../../deploy/configs/r2-ezvpn-client.conf"),
            &InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0").unwrap(),
        )
        .unwrap()
        .config;
        let e = runtime_entries(&cfg);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].map.as_str(), e[0].seq), ("Ethernet1/0-head-0", None));
        // The lab server: its one applied dynamic entry.
        let cfg = parse_config(
            include_str!("../../deploy/configs/r1-easyvpn.conf"),
            &InterfaceMap::parse("Ethernet0/0=in0,Ethernet1/0=out0").unwrap(),
        )
        .unwrap()
        .config;
        let e = runtime_entries(&cfg);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].map.as_str(), e[0].seq), ("clientmap", Some(10)));
    }

    #[test]
    fn outbound_sas_of_client_maps_become_rules() {
        let ez = RuntimeEntry {
            map: MapName::new("Ethernet1/0-head-0").unwrap(),
            seq: None,
        };
        let out = Direction::Outbound;
        let mut rekeyed = sa(
            3,
            out,
            "Ethernet1/0-head-0",
            65536,
            "10.1.2.0/24",
            "10.1.1.0/24",
        );
        rekeyed.state = SaState::Dying;
        let mut freed = sa(
            6,
            out,
            "Ethernet1/0-head-0",
            65536,
            "10.1.2.0/24",
            "10.7.0.0/16",
        );
        freed.state = SaState::Free;
        let entries = [
            sa(
                1,
                Direction::Inbound,
                "Ethernet1/0-head-0",
                65536,
                "10.1.2.0/24",
                "10.9.0.0/16",
            ),
            sa(
                2,
                out,
                "Ethernet1/0-head-0",
                65792,
                "10.1.2.0/24",
                "192.168.50.0/23",
            ),
            sa(
                4,
                out,
                "Ethernet1/0-head-0",
                65536,
                "10.1.2.0/24",
                "10.1.1.0/24",
            ),
            rekeyed,
            sa(5, out, "vpn", 10, "10.1.2.0/24", "10.8.0.0/16"),
            freed,
        ];
        let rules = rules_from_sas(&[ez], &entries);
        let text: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            [
                "permit ip 10.1.2.0/24 10.1.1.0/24 policy 0 map Ethernet1/0-head-0",
                "permit ip 10.1.2.0/24 192.168.50.0/23 policy 256 map Ethernet1/0-head-0",
            ]
        );
        let hit = |s: &str, d: &str| first_match(&rules, ip(s), ip(d), 17, Some((5000, 40000)));
        assert!(hit("10.1.2.2", "10.1.1.2").is_some());
        assert!(hit("10.1.2.2", "192.168.51.9").is_some());
        // Not split-included (or not the client's map): the kernel's, in clear.
        assert!(hit("10.1.2.2", "10.8.1.1").is_none());
        assert!(hit("10.1.2.2", "10.9.1.1").is_none());
        assert!(hit("10.1.2.2", "10.7.1.1").is_none());
        assert!(hit("10.1.3.2", "10.1.1.2").is_none());
        assert!(rules_from_sas(&[], &entries).is_empty());
    }

    #[test]
    fn a_servers_dynamic_entry_takes_only_its_own_sas() {
        let dynamic = RuntimeEntry {
            map: MapName::new("clientmap").unwrap(),
            seq: Some(10),
        };
        let out = Direction::Outbound;
        let entries = [
            sa(1, out, "clientmap", 10, "10.1.1.0/24", "10.1.2.0/24"),
            sa(2, out, "clientmap", 10, "10.1.1.0/24", "10.99.0.10/32"),
            // A static entry of the same map has its ACL in the configuration.
            sa(3, out, "clientmap", 5, "10.1.1.0/24", "10.5.0.0/16"),
        ];
        let text: Vec<String> = rules_from_sas(&[dynamic], &entries)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "permit ip 10.1.1.0/24 10.1.2.0/24 policy 10 map clientmap",
                "permit ip 10.1.1.0/24 host 10.99.0.10 policy 10 map clientmap",
            ]
        );
    }
}
