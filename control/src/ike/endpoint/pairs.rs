//! The IPsec SA pairs Quick Mode installs: KEYMAT, their lifetimes (seconds and
//! kilobytes), make-before-break rekeying, removal.

use super::phase1::{IsakmpKeys, P1Sa};
use super::quick::{Qm, QmAgreed};
use super::*;
use std::time::Duration;
use zeroize::Zeroizing;

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
        for p in &mut self.pairs {
            if p.inbound == spi || p.outbound == spi {
                p.kb_used = p.kb_used.max(kb);
                if p.kb_used >= p.lifetime_kb * 9 / 10 && !p.rekeying {
                    p.soft_at = now;
                }
                if p.kb_used >= p.lifetime_kb {
                    p.hard_at = now;
                }
            }
        }
    }

    /// Reports the inbound packet count of an SA (SA database counters): traffic from the
    /// peer proves it alive, so DPD stays quiet while packets arrive.
    pub fn note_inbound(&mut self, now: Instant, spi: u32, packets: u64) {
        let mut peer = None;
        for p in &mut self.pairs {
            if p.inbound == spi && packets > p.in_packets {
                p.in_packets = packets;
                peer = Some((p.peer, p.peer_port));
            }
        }
        if let Some((peer, port)) = peer {
            for sa in self.p1.values_mut() {
                if v4(sa.remote) == peer && sa.remote.port() == port && sa.state.is_established() {
                    sa.last_peer_activity = now;
                }
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
        let soft = if q.initiator {
            life * 85 / 100
        } else {
            life * 95 / 100
        };
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
