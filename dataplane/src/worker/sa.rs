//! The workers' view of the SA database: expanded SAs built once per
//! generation of the shared-memory region and shared by every worker, so
//! that all workers on one SA use the same sequence counter and the same
//! replay window.
//!
//! Between batches a worker compares the region's generation with the one
//! its tables were built from (one atomic load); when it moved, the first
//! worker to notice rebuilds the tables from a snapshot, keeping the SAs
//! that did not change ((slot, incarnation) names one SA) and expanding
//! keys only for new ones; the others pick the new tables up.
//!
//! Sequence numbers: the region's per-SA counter is the durable authority.
//! An outbound SA starts its in-process counter just past the region's
//! counter, and every batch reserves in the region at least as many numbers
//! as it will use before encrypting, so the in-process counter never passes
//! the region's, and a restarted dataplane (which starts past the region's
//! counter again) never reuses a number.

use crate::crypto::transform::Transform;
use crate::esp::{InboundSa, Mode, NatT, OutboundSa, SaKeys, SaParams};
use crate::sadb::{Direction, ProxyIdentity, SaDbReader, SaState, SlotId};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// One outbound SA.
pub struct OutEntry {
    pub slot: SlotId,
    pub incarnation: u32,
    pub active: bool,
    pub created_at: u64,
    pub proxy: ProxyIdentity,
    pub sa: Arc<OutboundSa>,
}

impl OutEntry {
    /// Whether the SA's proxy identities cover the packet.
    pub fn covers(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> bool {
        self.proxy.covers(src, dst, proto, ports)
    }
}

/// One inbound SA.
pub struct InEntry {
    pub slot: SlotId,
    pub incarnation: u32,
    /// The record's connection id (`conn id` in `show crypto ipsec sa`).
    pub conn_id: u32,
    pub proxy: ProxyIdentity,
    pub sa: Arc<InboundSa>,
}

impl InEntry {
    /// Whether a decapsulated inner packet is one this SA may carry (from the
    /// peer's protected network to ours).
    pub fn admits(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> bool {
        let p = &self.proxy;
        p.remote.contains(src) && p.local.contains(dst) && (p.protocol == 0 || p.protocol == proto)
    }
}

/// Expanded SAs as of one generation.
#[derive(Default)]
pub struct SaTables {
    pub generation: u64,
    pub outbound: Vec<OutEntry>,
    /// Inbound SAs by SPI.
    pub inbound: HashMap<u32, InEntry>,
    /// Records that could not be turned into SAs (bad transform or key).
    pub rejected: usize,
    pub(crate) by_proxy: ProxyIndex,
}

/// The outbound SAs by their proxy identities, for the lookup of every
/// inside packet: one hash table per distinct pair of (local, remote)
/// masks, keyed by the masked addresses (tuple space search). A packet
/// costs one hash lookup per distinct mask pair (a site-to-site gateway
/// has a handful, e.g. /24↔/24; a remote-access server's per-client
/// `/32` SAs are one more), whatever the number of SAs; the SAs in a
/// bucket (the same networks: rekeys, protocol or port variants) are
/// checked in full.
#[derive(Default)]
pub(crate) struct ProxyIndex {
    groups: Vec<MaskGroup>,
}

/// (masked local address, masked remote address) → indices of the SAs.
type Buckets = HashMap<(u32, u32), Vec<usize>>;

struct MaskGroup {
    local_mask: u32,
    remote_mask: u32,
    sas: Buckets,
}

impl ProxyIndex {
    fn build(outbound: &[OutEntry]) -> ProxyIndex {
        let mut groups: HashMap<(u32, u32), Buckets> = HashMap::new();
        for (i, e) in outbound.iter().enumerate() {
            let (lm, rm) = (
                u32::from(e.proxy.local.mask),
                u32::from(e.proxy.remote.mask),
            );
            let key = (
                u32::from(e.proxy.local.addr) & lm,
                u32::from(e.proxy.remote.addr) & rm,
            );
            groups
                .entry((lm, rm))
                .or_default()
                .entry(key)
                .or_default()
                .push(i);
        }
        let mut groups: Vec<MaskGroup> = groups
            .into_iter()
            .map(|((local_mask, remote_mask), sas)| MaskGroup {
                local_mask,
                remote_mask,
                sas,
            })
            .collect();
        // Most specific first (the order does not change the answer).
        groups.sort_by_key(|g| {
            std::cmp::Reverse(g.local_mask.count_ones() + g.remote_mask.count_ones())
        });
        ProxyIndex { groups }
    }

    /// The SAs whose proxy networks hold `src` and `dst`.
    fn candidates(&self, src: Ipv4Addr, dst: Ipv4Addr) -> impl Iterator<Item = usize> + '_ {
        let (s, d) = (u32::from(src), u32::from(dst));
        self.groups
            .iter()
            .filter_map(move |g| g.sas.get(&(s & g.local_mask, d & g.remote_mask)))
            .flatten()
            .copied()
    }
}

impl SaTables {
    /// The outbound SA for a packet: Active before Dying, then the newest
    /// (`created_at`, then slot incarnation, then the later slot in the
    /// region's order).
    pub fn find_outbound(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Option<usize> {
        self.by_proxy
            .candidates(src, dst)
            .filter(|&i| self.outbound[i].covers(src, dst, proto, ports))
            .max_by_key(|&i| {
                let e = &self.outbound[i];
                (e.active, e.created_at, e.incarnation, i)
            })
    }

    /// [`SaTables::find_outbound`] by walking every outbound SA (the
    /// reference for tests and benchmarks).
    pub fn find_outbound_linear(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ports: Option<(u16, u16)>,
    ) -> Option<usize> {
        self.outbound
            .iter()
            .enumerate()
            .filter(|(_, e)| e.covers(src, dst, proto, ports))
            .max_by_key(|(i, e)| (e.active, e.created_at, e.incarnation, *i))
            .map(|(i, _)| i)
    }
}

/// The tables shared by all workers of the process.
pub struct SaSource {
    pub db: SaDbReader,
    current: Mutex<Arc<SaTables>>,
    min_replay_window: u32,
}

fn params_of(rec: &crate::sadb::SaRecord, min_window: u32) -> Option<(SaParams, SaKeys)> {
    let transform = Transform::from(rec.transform);
    let mut p = SaParams::tunnel(rec.spi, transform, *rec.local.ip(), *rec.peer.ip());
    p.mode = match rec.mode {
        crate::sadb::Mode::Tunnel => Mode::Tunnel,
        crate::sadb::Mode::Transport => Mode::Transport,
    };
    if rec.udp_encap {
        p.natt = Some(NatT {
            local_port: rec.local.port(),
            remote_port: rec.peer.port(),
        });
    }
    p.esn = rec.esn;
    if rec.replay_window > 0 {
        // The receiving window is a local matter (RFC 4303 §3.4.3): widen it
        // to cover the reordering that several workers (ours and the
        // peer's) introduce on one SA. (0 in the record keeps the esp
        // module's default window: it has no "off" switch.)
        p.replay_window = rec
            .replay_window
            .max(min_window)
            .min(crate::esp::MAX_REPLAY_WINDOW);
    }
    Some((
        p,
        SaKeys::new(rec.enc_key.as_bytes(), rec.auth_key.as_bytes()),
    ))
}

impl SaSource {
    /// `min_replay_window`: inbound SAs get at least this window.
    pub fn new(db: SaDbReader, min_replay_window: u32) -> Self {
        SaSource {
            db,
            current: Mutex::new(Arc::new(SaTables {
                generation: u64::MAX,
                ..Default::default()
            })),
            min_replay_window,
        }
    }

    /// The current tables, rebuilt first if the region moved on.
    pub fn tables(&self, have: &Arc<SaTables>) -> Arc<SaTables> {
        let g = self.db.generation();
        if g == have.generation {
            return have.clone();
        }
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.generation != g {
            if let Some(t) = self.rebuild(&cur) {
                *cur = Arc::new(t);
            }
        }
        cur.clone()
    }

    fn rebuild(&self, old: &SaTables) -> Option<SaTables> {
        let snap = self.db.snapshot_all().ok()?;
        let mut t = SaTables {
            generation: snap.generation,
            ..Default::default()
        };
        // The expanded SAs to keep, by (slot, incarnation): one lookup each.
        let old_out: HashMap<(SlotId, u32), &Arc<OutboundSa>> = old
            .outbound
            .iter()
            .map(|o| ((o.slot, o.incarnation), &o.sa))
            .collect();
        for e in snap.entries {
            let rec = &e.record;
            match rec.direction {
                Direction::Outbound => {
                    let reuse = old_out.get(&(e.slot, e.incarnation));
                    let sa = match reuse {
                        Some(o) => Arc::clone(o),
                        None => {
                            let Some((p, k)) = params_of(rec, self.min_replay_window) else {
                                t.rejected += 1;
                                continue;
                            };
                            let next = self
                                .db
                                .counters(e.slot)
                                .map(|c| c.seq_used() + 1)
                                .unwrap_or(1);
                            match OutboundSa::new(p, &k) {
                                Ok(sa) => Arc::new(sa.with_next_seq(next)),
                                Err(_) => {
                                    t.rejected += 1;
                                    continue;
                                }
                            }
                        }
                    };
                    t.outbound.push(OutEntry {
                        slot: e.slot,
                        incarnation: e.incarnation,
                        active: e.state == SaState::Active,
                        created_at: rec.created_at,
                        proxy: rec.proxy,
                        sa,
                    });
                }
                Direction::Inbound => {
                    let reuse = old
                        .inbound
                        .get(&rec.spi)
                        .filter(|o| o.slot == e.slot && o.incarnation == e.incarnation);
                    let sa = match reuse {
                        Some(o) => o.sa.clone(),
                        None => {
                            let Some((p, k)) = params_of(rec, self.min_replay_window) else {
                                t.rejected += 1;
                                continue;
                            };
                            match InboundSa::new(p, &k) {
                                Ok(sa) => Arc::new(sa),
                                Err(_) => {
                                    t.rejected += 1;
                                    continue;
                                }
                            }
                        }
                    };
                    t.inbound.insert(
                        rec.spi,
                        InEntry {
                            slot: e.slot,
                            incarnation: e.incarnation,
                            conn_id: rec.conn_id,
                            proxy: rec.proxy,
                            sa,
                        },
                    );
                }
            }
        }
        t.by_proxy = ProxyIndex::build(&t.outbound);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sadb::{Geometry, Ipv4Prefix, SaDb, SaDbWriter, SaRecord};
    use std::net::SocketAddrV4;

    fn record(spi: u32, dir: Direction, proxy: ProxyIdentity, created_at: u64) -> SaRecord {
        let ends = (
            SocketAddrV4::new(Ipv4Addr::new(172, 16, 172, 10), 500),
            SocketAddrV4::new(Ipv4Addr::from(0xc612_0000 | (spi & 0xffff)), 500),
        );
        SaRecord {
            created_at,
            ..SaRecord::null_sha(spi, dir, ends, proxy, spi, &[7; 20])
        }
    }

    fn proxy(local: (u32, u8), remote: (u32, u8), protocol: u8, remote_port: u16) -> ProxyIdentity {
        ProxyIdentity {
            local: Ipv4Prefix::new(Ipv4Addr::from(local.0), local.1),
            remote: Ipv4Prefix::new(Ipv4Addr::from(remote.0), remote.1),
            protocol,
            local_port: 0,
            remote_port,
        }
    }

    fn source(w: &SaDbWriter) -> SaSource {
        SaSource::new(w.reader().clone(), 64)
    }

    /// A small xorshift: deterministic variety without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Site-to-site /24↔/24 pairs, remote-access /32 clients against
    /// 0.0.0.0/0 and against a split network, wide /16 SAs over them,
    /// rekeys (same proxies, a newer SA, the old one dying), protocol and
    /// port variants: the index picks what the walk over every SA picks.
    #[test]
    fn outbound_lookup_by_proxy_is_the_walk_over_every_sa() {
        let mut w = SaDb::in_memory(Geometry::with_capacity(4096)).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let net = |a: u32, b: u32| 0x0a00_0000 | (a << 16) | (b << 8);
        let mut spi = 0x1000u32;
        for i in 0..1500u32 {
            let p = match rng.below(6) {
                0 | 1 => proxy(
                    (net(1, i % 4), 24),
                    (net(2 + i % 8, rng.below(8) as u32), 24),
                    0,
                    0,
                ),
                2 => proxy((0, 0), (net(50, i % 16) | (rng.below(4) as u32), 32), 0, 0),
                3 => proxy(
                    (net(1, 0), 16),
                    (net(50, i % 16) | (rng.below(4) as u32), 32),
                    0,
                    0,
                ),
                4 => proxy((net(1, 0), 16), (net(2 + i % 8, 0) & 0xffff_0000, 16), 6, 0),
                _ => proxy(
                    (net(1, i % 4), 24),
                    (net(2 + i % 8, rng.below(8) as u32), 24),
                    17,
                    53,
                ),
            };
            spi += 1;
            let slot = w
                .install(&record(spi, Direction::Outbound, p, rng.below(5)))
                .unwrap();
            if rng.below(4) == 0 {
                w.mark_dying(slot).unwrap();
            }
        }
        let src = source(&w);
        let t = src.tables(&Arc::new(SaTables::default()));
        assert_eq!(t.outbound.len(), 1500);
        let mut found = 0;
        for _ in 0..20_000 {
            let s = Ipv4Addr::from(net(1, rng.below(5) as u32) | rng.below(256) as u32);
            let d = match rng.below(3) {
                0 => Ipv4Addr::from(net(50, rng.below(17) as u32) | rng.below(5) as u32),
                _ => Ipv4Addr::from(net(2 + rng.below(9) as u32, rng.below(9) as u32) | 9),
            };
            let proto = [1u8, 6, 17][rng.below(3) as usize];
            let ports = (proto != 1).then(|| (4000, [53u16, 80][rng.below(2) as usize]));
            let got = t.find_outbound(s, d, proto, ports);
            assert_eq!(
                got,
                t.find_outbound_linear(s, d, proto, ports),
                "{s} -> {d} {proto} {ports:?}"
            );
            found += usize::from(got.is_some());
        }
        assert!(found > 5000, "{found}");
    }

    /// Tens of thousands of SAs (10,000 tunnels: two SAs each, and as many
    /// remote-access clients): every inbound SA by its SPI, every tunnel's
    /// outbound SA by its traffic; a rebuild keeps the expanded SAs.
    #[test]
    fn forty_thousand_sas_each_found() {
        let mut w = SaDb::in_memory(Geometry::with_capacity(40_960)).unwrap();
        let net = |i: u32| 0x0a64_0000 + (i << 8);
        for i in 0..10_000u32 {
            let p = proxy((0x0a01_0000, 16), (net(i), 24), 0, 0);
            w.install(&record(0x10_0000 + i, Direction::Outbound, p, 1))
                .unwrap();
            w.install(&record(0x20_0000 + i, Direction::Inbound, p, 1))
                .unwrap();
            let client = proxy((0, 0), (0xac10_0000 + i, 32), 0, 0);
            w.install(&record(0x30_0000 + i, Direction::Outbound, client, 1))
                .unwrap();
            w.install(&record(0x40_0000 + i, Direction::Inbound, client, 1))
                .unwrap();
        }
        let src = source(&w);
        let t = src.tables(&Arc::new(SaTables::default()));
        assert_eq!(
            (t.outbound.len(), t.inbound.len(), t.rejected),
            (20_000, 20_000, 0)
        );
        for i in 0..10_000u32 {
            let o = t
                .find_outbound(
                    Ipv4Addr::new(10, 1, 2, 3),
                    Ipv4Addr::from(net(i) | 7),
                    6,
                    Some((1, 2)),
                )
                .unwrap();
            assert_eq!(t.outbound[o].sa.params.spi, 0x10_0000 + i);
            let o = t
                .find_outbound(
                    Ipv4Addr::new(192, 0, 2, 1),
                    Ipv4Addr::from(0xac10_0000 + i),
                    1,
                    None,
                )
                .unwrap();
            assert_eq!(t.outbound[o].sa.params.spi, 0x30_0000 + i);
            assert_eq!(t.inbound[&(0x20_0000 + i)].conn_id, 0x20_0000 + i);
            assert_eq!(t.inbound[&(0x40_0000 + i)].conn_id, 0x40_0000 + i);
        }
        // One more SA: the others are kept, not expanded again.
        let p = proxy((0x0a01_0000, 16), (0x0b00_0000, 24), 0, 0);
        w.install(&record(0x50_0000, Direction::Outbound, p, 2))
            .unwrap();
        let t2 = src.tables(&t);
        assert_eq!(t2.outbound.len(), 20_001);
        let same = t2
            .outbound
            .iter()
            .filter(|o| {
                t.outbound
                    .iter()
                    .any(|p| p.slot == o.slot && Arc::ptr_eq(&p.sa, &o.sa))
            })
            .take(3)
            .count();
        assert_eq!(same, 3);
    }
}
