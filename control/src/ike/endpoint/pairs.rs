//! The IPsec SA pairs Quick Mode installs: KEYMAT, their lifetimes (seconds and
//! kilobytes), make-before-break rekeying, removal.

use super::phase1::{IsakmpKeys, P1Sa};
use super::quick::{Qm, QmAgreed};
use super::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use zeroize::Zeroizing;

/// When a new pair starts its rekey (its soft lifetime in seconds): the Quick Mode
/// initiator between 80 and 85 % of the lifetime, the responder between 90 and 95 % (the
/// initiator's timer runs out first and it rekeys; the responder's is the fallback), the
/// point within the band chosen by `r` (a uniform random word). Without the jitter, pairs
/// made in the same second — every tunnel of a big crypto map after a restart — would all
/// rekey in the same second again, lifetime after lifetime; with it their rekeys spread
/// over 5 % of the lifetime (3 minutes of IOS's default hour) and drift further apart at
/// each generation. Kilobyte lifetimes need none: traffic staggers them.
pub(super) fn soft_lifetime(life: Duration, initiator: bool, r: u32) -> Duration {
    let top = if initiator { 85 } else { 95 };
    let band = life * SOFT_JITTER_PERCENT / 100;
    life * top / 100 - band.mul_f64(f64::from(r) / (f64::from(u32::MAX) + 1.0))
}

/// One SA's counters as the SA database holds them, for [`Endpoint::note_counters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaUsage {
    pub spi: u32,
    pub inbound: bool,
    pub packets: u64,
    /// Kilobytes carried.
    pub kb: u64,
}

/// Width of the soft-lifetime band, in percent of the lifetime.
const SOFT_JITTER_PERCENT: u32 = 5;

/// A pair of installed IPsec SAs.
pub(super) struct SaPair {
    pub p1_icookie: [u8; 8],
    pub map_idx: usize,
    pub peer: Ipv4Addr,
    pub peer_port: u16,
    pub inbound: u32,
    pub outbound: u32,
    pub in_conn: u32,
    pub out_conn: u32,
    pub transform: TransformSet,
    pub local_proxy: Proxy,
    pub remote_proxy: Proxy,
    pub encap: bool,
    pub lifetime_secs: u32,
    pub lifetime_kb: u64,
    pub created: Instant,
    pub soft_at: Instant,
    pub hard_at: Instant,
    pub rekeying: bool,
    pub kb_used: u64,
    pub in_packets: u64,
}

impl Endpoint {
    /// The phase 1 to tell about pair `p`: the one that made it if it lives, else the
    /// newest with the same peer address and port.
    fn live_p1_of_pair(&self, p: &SaPair) -> Option<[u8; 8]> {
        if self
            .p1
            .get(&p.p1_icookie)
            .is_some_and(|s| s.state.is_established())
        {
            return Some(p.p1_icookie);
        }
        self.p1
            .iter()
            .filter(|(_, s)| {
                v4(s.remote) == p.peer && s.remote.port() == p.peer_port && s.state.is_established()
            })
            .max_by_key(|(_, s)| s.conn_id)
            .map(|(k, _)| *k)
    }

    pub fn ipsec_sas(&self, now: Instant) -> Vec<IpsecSaInfo> {
        self.pairs
            .iter()
            .map(|p| {
                let m = &self.cfg.maps.get(p.map_idx);
                IpsecSaInfo {
                    map: m.map(|m| m.map.clone()).unwrap_or_default(),
                    seq: m.map(|m| m.seq).unwrap_or(0),
                    interface: m.map(|m| m.interface.clone()).unwrap_or_default(),
                    local: self.cfg.local_addr,
                    remote: p.peer,
                    remote_port: p.peer_port,
                    local_proxy: p.local_proxy,
                    remote_proxy: p.remote_proxy,
                    transform: p.transform.clone(),
                    inbound_spi: p.inbound,
                    outbound_spi: p.outbound,
                    inbound_conn_id: p.in_conn,
                    outbound_conn_id: p.out_conn,
                    udp_encap: p.encap,
                    lifetime_kb: p.lifetime_kb.saturating_sub(p.kb_used),
                    lifetime_secs: p.lifetime_secs,
                    remaining_secs: p.hard_at.saturating_duration_since(now).as_secs(),
                }
            })
            .collect()
    }

    /// Reports kilobytes an SA has carried (from the SA database counters); crossing the
    /// soft kilobyte lifetime starts a rekey, the hard one deletes the SA.
    pub fn note_usage(&mut self, now: Instant, spi: u32, kb: u64) {
        self.note_counters(
            now,
            &[SaUsage {
                spi,
                inbound: false,
                packets: 0,
                kb,
            }],
        );
    }

    /// Reports the inbound packet count of an SA (SA database counters): traffic from the
    /// peer proves it alive, so DPD stays quiet while packets arrive.
    pub fn note_inbound(&mut self, now: Instant, spi: u32, packets: u64) {
        self.note_counters(
            now,
            &[SaUsage {
                spi,
                inbound: true,
                packets,
                kb: 0,
            }],
        );
    }

    /// What the SA database counted on many SAs at once (one sweep of the daemon): each
    /// SA's kilobytes feed its pair's kilobyte lifetimes ([`Endpoint::note_usage`]), and an
    /// inbound SA's packets mark its peer alive ([`Endpoint::note_inbound`]). One pass
    /// over the pairs and one over the phase 1 SAs, whatever the number of SAs reported.
    pub fn note_counters(&mut self, now: Instant, usage: &[SaUsage]) {
        let mut by_spi: HashMap<u32, usize> = HashMap::with_capacity(self.pairs.len() * 2);
        for (i, p) in self.pairs.iter().enumerate() {
            by_spi.entry(p.inbound).or_insert(i);
            by_spi.entry(p.outbound).or_insert(i);
        }
        let mut alive: HashSet<(Ipv4Addr, u16)> = HashSet::new();
        for u in usage {
            let Some(&i) = by_spi.get(&u.spi) else {
                continue;
            };
            let p = &mut self.pairs[i];
            p.kb_used = p.kb_used.max(u.kb);
            if p.kb_used >= p.lifetime_kb * 9 / 10 && !p.rekeying {
                p.soft_at = now;
            }
            if p.kb_used >= p.lifetime_kb {
                p.hard_at = now;
            }
            if u.inbound && p.inbound == u.spi && u.packets > p.in_packets {
                p.in_packets = u.packets;
                alive.insert((p.peer, p.peer_port));
            }
        }
        if alive.is_empty() {
            return;
        }
        for sa in self.p1.values_mut() {
            if alive.contains(&(v4(sa.remote), sa.remote.port())) && sa.state.is_established() {
                sa.last_peer_activity = now;
            }
        }
    }

    /// KEYMAT for both directions and the SA pair of Quick Mode exchange `q`, agreed as `a`.
    pub(super) fn install(&mut self, now: Instant, sa: &P1Sa, k: &IsakmpKeys, q: &Qm, a: QmAgreed) {
        let conn = sa.conn_id;
        let c = a.choice;
        let (ts, secs, kb, peer_spi) = (c.ts, c.secs, c.kb, c.peer_spi);
        // Ni_b is always the Quick Mode initiator's nonce.
        let gqm = match (&a.dh, &a.peer_ke) {
            (Some(d), Some(ke)) => d.shared(ke).ok(),
            _ => None,
        };
        let len = ts.enc.key_len() + ts.auth.map_or(0, |a| a.key_len());
        let spi_in = q.spi_in;
        let material = |spi: u32| {
            keymat(
                k.neg.hash,
                &k.d,
                gqm.as_deref().map(|v| &v[..]),
                proto::ESP,
                &spi.to_be_bytes(),
                &a.ni,
                &a.nr,
                len,
            )
        };
        let (kin, kout) = (material(spi_in), material(peer_spi));
        let (lp, rp, map_idx) = (q.local_proxy, q.remote_proxy, q.map_idx);
        let floated = sa.nat.floated;
        let peer = v4(sa.remote);
        let peer_port = sa.remote.port();
        let me = self.cfg.local_addr;
        let in_conn = self.next_sa_conn;
        let out_conn = self.next_sa_conn + 1;
        self.next_sa_conn += 2;
        let (mapname, seq) = self
            .map_entry(map_idx)
            .map(|m| (m.map.clone(), m.seq))
            .unwrap_or_default();
        let split = |k: &[u8]| {
            (
                Zeroizing::new(k[..ts.enc.key_len()].to_vec()),
                Zeroizing::new(k[ts.enc.key_len()..].to_vec()),
            )
        };
        let (ein, ain) = split(&kin);
        let (eout, aout) = split(&kout);
        let inbound = IpsecSa {
            direction: Direction::Inbound,
            spi: spi_in,
            src: peer,
            dst: me,
            src_proxy: rp,
            dst_proxy: lp,
            transform: ts.clone(),
            enc_key: ein,
            auth_key: ain,
            lifetime_secs: secs,
            lifetime_kb: kb,
            encap: floated.then_some((peer_port, NATT_PORT)),
            conn_id: in_conn,
            map: mapname.clone(),
            seq,
        };
        let outbound = IpsecSa {
            direction: Direction::Outbound,
            spi: peer_spi,
            src: me,
            dst: peer,
            src_proxy: lp,
            dst_proxy: rp,
            transform: ts.clone(),
            enc_key: eout,
            auth_key: aout,
            lifetime_secs: secs,
            lifetime_kb: kb,
            encap: floated.then_some((NATT_PORT, peer_port)),
            conn_id: out_conn,
            map: mapname,
            seq,
        };
        self.log_sas_created(conn, &inbound, &outbound);
        let life = Duration::from_secs(secs as u64);
        let soft = soft_lifetime(life, q.initiator, self.rng.u32());
        self.pairs.push(SaPair {
            p1_icookie: sa.icookie,
            map_idx,
            peer,
            peer_port,
            inbound: spi_in,
            outbound: peer_spi,
            in_conn,
            out_conn,
            transform: ts,
            local_proxy: lp,
            remote_proxy: rp,
            encap: floated,
            lifetime_secs: secs,
            lifetime_kb: kb,
            created: now,
            soft_at: now + soft,
            hard_at: now + life,
            rekeying: false,
            kb_used: 0,
            in_packets: 0,
        });
        self.counters.p2_established += 1;
        self.counters
            .p2_setup
            .record(now.saturating_duration_since(q.started));
        self.events
            .push_back(Event::IpsecSaUp { inbound, outbound });
        // Make-before-break: the old pair stays a few seconds so packets in flight land.
        if let Some(old) = a.rekey_of {
            if let Some(p) = self.pairs.iter_mut().find(|p| p.inbound == old) {
                p.hard_at = p.hard_at.min(now + Duration::from_secs(5));
                p.rekeying = true;
            }
        }
        // Also retire an older pair for the same entry that a peer-initiated rekey replaced.
        for p in self.pairs.iter_mut() {
            if p.map_idx == map_idx
                && p.inbound != spi_in
                && p.local_proxy == lp
                && p.remote_proxy == rp
                && !p.rekeying
            {
                p.rekeying = true;
                p.hard_at = p.hard_at.min(now + Duration::from_secs(30));
            }
        }
    }

    /// Removes pair `i`; with `send_delete`, tells the peer (DELETE) first.
    pub(super) fn remove_pair(&mut self, i: usize, send_delete: bool) {
        let p = self.pairs.remove(i);
        if send_delete {
            if let Some(key) = self.live_p1_of_pair(&p) {
                let pl = Payload::Delete(DeletePayload {
                    doi: DOI_IPSEC,
                    protocol: proto::ESP,
                    spi_size: 4,
                    spis: vec![p.inbound.to_be_bytes().to_vec()],
                });
                self.with_sa(key, |ep, sa| ep.send_informational(sa, pl));
            }
        }
        self.events.push_back(Event::IpsecSaDown {
            inbound_spi: p.inbound,
            outbound_spi: p.outbound,
            peer: p.peer,
        });
    }

    /// Removes every IPsec SA pair with `peer` (address and port: clients behind one NAT
    /// differ by port only), without telling it (it rebooted or died).
    pub(super) fn remove_peer_pairs(&mut self, peer: SocketAddr) {
        let (addr, port) = (v4(peer), peer.port());
        let idxs: Vec<usize> = (0..self.pairs.len())
            .filter(|&i| self.pairs[i].peer == addr && self.pairs[i].peer_port == port)
            .collect();
        for i in idxs.into_iter().rev() {
            self.remove_pair(i, false);
        }
    }

    /// `clear crypto sa`: deletes every IPsec SA (and tells the peers).
    pub fn clear_ipsec(&mut self, _now: Instant) {
        while !self.pairs.is_empty() {
            self.remove_pair(0, true);
        }
    }

    /// IPsec SA lifetimes: rekey at the soft limit, delete at the hard one.
    pub(super) fn pair_timers(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pairs.len() {
            let p = &self.pairs[i];
            if p.hard_at <= now {
                let (c, s) = (p.in_conn, p.inbound);
                self.ips(format!(
                    "IPSEC(sa_aging): lifetime expiring, (sa) sa_spi= {s:#X}({s}), sa_conn_id= {c}"
                ));
                self.remove_pair(i, true);
                continue;
            }
            if p.soft_at <= now && !p.rekeying {
                let (idx, old) = (p.map_idx, p.inbound);
                self.pairs[i].rekeying = true;
                self.ips(format!(
                    "IPSEC(sa_aging): soft lifetime reached, rekeying (sa) sa_spi= {old:#X}({old})"
                ));
                self.request(now, idx, Some(old));
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::soft_lifetime;
    use std::time::Duration;

    #[test]
    fn soft_lifetime_bands_keep_the_initiator_first() {
        let life = Duration::from_secs(3600);
        for r in [0, 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
            let i = soft_lifetime(life, true, r);
            let s = soft_lifetime(life, false, r);
            assert!(i <= life * 85 / 100 && i > life * 80 / 100, "{i:?}");
            assert!(s <= life * 95 / 100 && s > life * 90 / 100, "{s:?}");
        }
        assert_eq!(soft_lifetime(life, true, 0), Duration::from_secs(3060));
        assert_eq!(soft_lifetime(life, false, 0), Duration::from_secs(3420));
    }

    #[test]
    fn soft_lifetimes_of_pairs_made_together_spread_over_the_band() {
        // 2,000 pairs made in the same instant, random words from a simple LCG: their rekeys
        // fall in 180 one-second buckets of the 3-minute band, none holding a herd.
        let life = Duration::from_secs(3600);
        let mut x: u32 = 12345;
        let mut buckets = std::collections::BTreeMap::new();
        for _ in 0..2000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *buckets
                .entry(soft_lifetime(life, true, x).as_secs())
                .or_insert(0u32) += 1;
        }
        assert!(buckets.len() >= 170, "{} distinct seconds", buckets.len());
        let worst = buckets.values().max().copied().unwrap_or(0);
        assert!(worst <= 30, "{worst} rekeys in one second");
    }
}
