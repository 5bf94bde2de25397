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
    pub inbound: HashMap<u32, InEntry>,
    /// Records that could not be turned into SAs (bad transform or key).
    pub rejected: usize,
}

impl SaTables {
    /// The outbound SA for a packet: Active before Dying, then the newest.
    pub fn find_outbound(
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
            .max_by_key(|(_, e)| (e.active, e.created_at, e.incarnation))
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
        for e in snap.entries {
            let rec = &e.record;
            match rec.direction {
                Direction::Outbound => {
                    let reuse = old
                        .outbound
                        .iter()
                        .find(|o| o.slot == e.slot && o.incarnation == e.incarnation);
                    let sa = match reuse {
                        Some(o) => o.sa.clone(),
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
        Some(t)
    }
}
