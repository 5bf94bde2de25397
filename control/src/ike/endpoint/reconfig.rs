//! Live reconfiguration (`espgw configure FILE`, SIGHUP): a new configuration replaces the
//! old one without touching what did not change.
//!
//! The endpoint refers to crypto map entries by their index in `cfg.maps` (the SA pairs,
//! Quick Mode exchanges, requests waiting for phase 1, the Easy VPN clients' entries). A
//! new configuration renumbers the entries, so [`Endpoint::set_config`] translates every
//! reference through one table: old index → the index of the entry with the same map name
//! and sequence number (a client's entry: where it moved to). What then has no entry:
//! - an SA pair keeps running, unmapped ([`NO_MAP`]): it is neither rekeyed nor shown
//!   under an entry, and [`Endpoint::reconfigure`] deletes it;
//! - a Quick Mode exchange in flight is abandoned (also when its entry changed: its offer
//!   numbered the old entry's transform sets), and so is a request waiting for phase 1.
//!   The traffic that asked for it asks again.
//!
//! [`Endpoint::reconfigure`] then deletes, as `clear crypto sa` would (DELETE to the peer,
//! `IpsecSaDown` for the SA database), the pairs the new configuration no longer allows: no
//! entry any more, another peer, a transform no set of the entry has, or proxies outside
//! the entry's ACL line. It deletes the ISAKMP SAs whose peer's pre-shared key was removed
//! or changed, and those whose negotiated suite no policy offers any more. Everything else
//! keeps its SPIs, sequence numbers and counters: the SA database is not touched.

use super::pairs::SaPair;
use super::*;

/// The map index of an SA pair whose crypto map entry is gone.
pub(super) const NO_MAP: usize = usize::MAX;

/// What [`Endpoint::reconfigure`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconfigReport {
    /// IPsec SA pairs that run on unchanged (their inbound SPIs).
    pub kept_pairs: Vec<u32>,
    /// IPsec SA pairs deleted (inbound SPIs), DELETE sent.
    pub deleted_pairs: Vec<u32>,
    /// ISAKMP SAs deleted (connection ids), DELETE sent.
    pub deleted_isakmp: Vec<u32>,
    /// Quick Mode exchanges and waiting requests abandoned.
    pub abandoned: usize,
}

impl Endpoint {
    /// Replaces the configuration; existing SAs stay (see the module comment for what
    /// becomes of references to entries that are gone). Returns how many Quick Mode
    /// exchanges and waiting requests were abandoned.
    pub fn set_config(&mut self, cfg: IkeConfig) -> usize {
        let old = std::mem::replace(&mut self.cfg, cfg);
        let statics = self.cfg.maps.len();
        let mut remap: Vec<Option<usize>> = (0..old.maps.len())
            .map(|i| {
                if self.ra_is_client_slot(i) || self.ez_is_slot(i) {
                    return None;
                }
                let m = &old.maps[i];
                self.cfg.maps[..statics]
                    .iter()
                    .position(|n| n.map == m.map && n.seq == m.seq)
            })
            .collect();
        self.ra_reconfigured(&old.maps, &mut remap);
        self.ez_reconfigured(&old.maps, &mut remap);
        let to = |i: usize| remap.get(i).copied().flatten();
        for p in &mut self.pairs {
            p.map_idx = to(p.map_idx).unwrap_or(NO_MAP);
        }
        let mut abandoned = Vec::new();
        let new_maps = &self.cfg.maps;
        for sa in self.p1.values_mut() {
            let before = sa.waiting.len();
            sa.waiting.retain_mut(|w| match to(w.0) {
                Some(j) => {
                    w.0 = j;
                    true
                }
                None => false,
            });
            for _ in sa.waiting.len()..before {
                abandoned.push((sa.conn_id, None));
            }
            sa.qm.retain(|mid, q| {
                let j = to(q.map_idx);
                if q.state.is_complete() {
                    q.map_idx = j.unwrap_or(NO_MAP);
                    return true;
                }
                match j {
                    Some(j) if old.maps.get(q.map_idx) == Some(&new_maps[j]) => {
                        q.map_idx = j;
                        true
                    }
                    _ => {
                        abandoned.push((sa.conn_id, Some(*mid)));
                        false
                    }
                }
            });
        }
        for (conn, mid) in &abandoned {
            match mid {
                Some(mid) => self.ik(
                    *conn,
                    format!("Quick Mode exchange M-ID {mid} abandoned: its crypto map entry was removed or changed"),
                ),
                None => self.ik(
                    *conn,
                    "request waiting for phase 1 dropped: its crypto map entry was removed",
                ),
            }
        }
        abandoned.len()
    }

    /// Applies a new configuration the IOS way: [`Endpoint::set_config`], then deletes the
    /// SAs the new configuration no longer allows (module comment). New entries, peers,
    /// keys, policies and transform sets take effect at once (the next negotiation uses
    /// them).
    pub fn reconfigure(&mut self, now: Instant, cfg: IkeConfig) -> ReconfigReport {
        let old_ez: Vec<String> = self.cfg.ezvpn.iter().map(|c| c.name.clone()).collect();
        // The key each ISAKMP SA's peer had (pre-shared ones; clients use group keys).
        let old_keys: Vec<([u8; 8], Option<Vec<u8>>)> = self
            .p1
            .iter()
            .filter(|(k, _)| !self.ra.sessions.contains_key(*k))
            .map(|(k, sa)| (*k, self.cfg.psk_for(v4(sa.remote)).map(|p| p.key.to_vec())))
            .collect();
        let mut report = ReconfigReport {
            abandoned: self.set_config(cfg),
            ..ReconfigReport::default()
        };
        let mut i = 0;
        while i < self.pairs.len() {
            if self.pair_allowed(&self.pairs[i]) {
                report.kept_pairs.push(self.pairs[i].inbound);
                i += 1;
                continue;
            }
            let (spi, peer) = (self.pairs[i].inbound, self.pairs[i].peer);
            self.ips(format!(
                "IPSEC(delete_sa): configuration no longer allows (sa) sa_dest= {peer}, sa_spi= {spi:#X}({spi})"
            ));
            report.deleted_pairs.push(spi);
            self.remove_pair(i, true);
        }
        let policies = self.cfg.sorted_policies();
        for (key, old_psk) in old_keys {
            let Some(sa) = self.p1.get(&key) else {
                continue;
            };
            if sa.state.is_dead() {
                continue;
            }
            let neg = sa.state.keys().map(|k| k.neg);
            let psk_auth = neg.is_none_or(|n| n.auth == AuthMethod::PreShared);
            let new_psk = self.cfg.psk_for(v4(sa.remote)).map(|p| p.key.to_vec());
            let why = if psk_auth && new_psk != old_psk {
                Some("pre-shared key removed or changed")
            } else if neg.is_some_and(|n| {
                !policies.iter().any(|p| {
                    p.enc == n.enc && p.hash == n.hash && p.group == n.group && p.auth == n.auth
                })
            }) {
                Some("no ISAKMP policy allows the SA")
            } else {
                None
            };
            if let Some(why) = why {
                report.deleted_isakmp.push(sa.conn_id);
                self.with_sa(key, |ep, sa| ep.delete_p1(sa, why, FailReason::Cleared));
            }
        }
        // Easy VPN client tunnels the new configuration adds start as at boot (`connect
        // auto` dials now, `connect manual` waits for the operator).
        let added: Vec<String> = self
            .cfg
            .ezvpn
            .iter()
            .filter(|c| !old_ez.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        for name in added {
            self.ezvpn_start_one(now, &name);
        }
        report
    }

    /// Whether the (new) configuration still allows pair `p`: its entry exists with the
    /// same peer, a transform set of the same algorithms and mode, and proxies within the
    /// entry's ACL line. A client's entry is the client's as long as its session lives.
    fn pair_allowed(&self, p: &SaPair) -> bool {
        let Some(m) = self.cfg.maps.get(p.map_idx) else {
            return false;
        };
        if self.ra_is_client_slot(p.map_idx) || self.ez_is_slot(p.map_idx) {
            return true;
        }
        m.peer == p.peer
            && m.transform_sets.iter().any(|t| {
                t.enc == p.transform.enc
                    && t.auth == p.transform.auth
                    && t.transport == p.transform.transport
            })
            && m.local_proxy.contains(&p.local_proxy)
            && m.remote_proxy.contains(&p.remote_proxy)
    }

    /// The crypto map entry `idx` refers to, if it still exists (references kept across
    /// a reconfiguration may be [`NO_MAP`]).
    pub(super) fn map_entry(&self, idx: usize) -> Option<&CryptoMapEntry> {
        self.cfg.maps.get(idx)
    }
}
