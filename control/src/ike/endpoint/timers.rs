//! Timers: one table per phase-1 SA and per Quick Mode exchange, indexed by [`Timer`];
//! [`Endpoint::poll_timeout`] is the minimum over all tables, [`Endpoint::handle_timeout`]
//! fires what is due.

use super::phase1::P1Sa;
use super::*;
use std::time::Duration;

/// How long a phase 1 may take before it is given up, and how long a Quick Mode exchange
/// is kept (for retransmissions of its last message).
pub(super) const NEGOTIATION_LIMIT: Duration = Duration::from_secs(75);
/// DPD misses before a peer is declared dead.
const DPD_MAX_MISSES: u32 = 5;

/// What a timer of an SA (or of a Quick Mode exchange) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Resend the last message ([`Retx`]).
    Retransmit,
    /// Phase 1 not complete in time: give up. For a Quick Mode exchange: forget it.
    Negotiation,
    /// The SA is dead: remove it.
    Reap,
    /// The ISAKMP SA lifetime is over: delete it.
    Expire,
    /// The ISAKMP SA lifetime is nearly over: a new phase 1 (initiator).
    Rekey,
    /// Check whether the peer has been quiet for a DPD interval.
    Dpd,
    /// The outstanding R-U-THERE was not answered in time.
    DpdAck,
    /// Send a NAT-T keepalive.
    Keepalive,
    /// Aggressive Mode initiator: the Quick Modes held back after AM3 may start.
    QmHold,
}

impl Timer {
    const COUNT: usize = 9;
    fn index(self) -> usize {
        self as usize
    }
}

/// When each timer fires (None: not armed).
#[derive(Debug, Default)]
pub(super) struct TimerTable([Option<Instant>; Timer::COUNT]);

impl TimerTable {
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.0[t.index()] = Some(at);
    }
    pub fn stop(&mut self, t: Timer) {
        self.0[t.index()] = None;
    }
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t.index()]
    }
    pub fn is_armed(&self, t: Timer) -> bool {
        self.get(t).is_some()
    }
    /// Armed and due at `now`.
    pub fn is_due(&self, t: Timer, now: Instant) -> bool {
        self.get(t).is_some_and(|at| at <= now)
    }
    /// The earliest armed timer.
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

/// A message kept for retransmission: resent unchanged at a fixed interval, as IOS does
/// (every 10 s by default, five times, then "Death by retransmission P1"; strongSwan and
/// libreswan double theirs, which is how `ike-scan --showbackoff` tells them apart). When
/// it is due is the table's [`Timer::Retransmit`].
pub(super) struct Retx {
    pub tx: Transmit,
    pub count: u32,
    interval: Duration,
}

impl Retx {
    /// Keeps `tx` and arms `timers` for its first retransmission.
    pub fn arm(tx: Transmit, now: Instant, base: Duration, timers: &mut TimerTable) -> Retx {
        timers.set(Timer::Retransmit, now + base);
        Retx {
            tx,
            count: 0,
            interval: base,
        }
    }
    /// The next retransmission, due now; re-arms `timers` for the one after.
    pub fn fire(&mut self, now: Instant, timers: &mut TimerTable) -> Transmit {
        self.count += 1;
        timers.set(Timer::Retransmit, now + self.interval);
        self.tx.clone()
    }
}

impl Endpoint {
    /// The earliest time `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sas = self.p1.values().flat_map(|sa| {
            std::iter::once(sa.timers.next()).chain(sa.qm.values().map(|q| q.timers.next()))
        });
        let pairs = self.pairs.iter().map(|p| {
            Some(if p.rekeying {
                p.hard_at
            } else {
                p.soft_at.min(p.hard_at)
            })
        });
        sas.chain(pairs)
            .chain(std::iter::once(self.ra_next_timeout()))
            .chain(std::iter::once(self.frags.next_timeout()))
            .chain(std::iter::once(self.ez_next_timeout()))
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let keys: Vec<[u8; 8]> = self.p1.keys().copied().collect();
        for key in keys {
            let Some(sa) = self.p1.get(&key) else {
                continue;
            };
            let conn = sa.conn_id;
            if sa.timers.is_due(Timer::Reap, now) {
                self.p1.remove(&key);
                self.ra_gone(key);
                continue;
            }
            let rekey = self.with_sa(key, |ep, sa| ep.p1_timers(now, sa)).flatten();
            // A phase-1 rekey starts a new SA: done with this one back in the table.
            if let Some(idx) = rekey {
                self.ik(conn, "ISAKMP SA lifetime nearly over: rekeying phase 1");
                self.start_p1_only(now, idx);
            }
            self.with_sa(key, |ep, sa| ep.p1_liveness_timers(now, sa));
        }
        self.ra_timers(now);
        self.ez_timers(now);
        self.pair_timers(now);
        self.frags.expire(now);
    }

    /// Retransmission, negotiation limit, Quick Mode exchanges, the held Quick Modes, the
    /// SA lifetime. Returns the map entry to rekey phase 1 for.
    fn p1_timers(&mut self, now: Instant, sa: &mut P1Sa) -> Option<usize> {
        let limit = self.cfg.retransmit_limit;
        let conn = sa.conn_id;
        // Phase-1 retransmission (same bytes: the IV does not move).
        if sa.timers.is_due(Timer::Retransmit, now) {
            if let Some(r) = &mut sa.retx {
                if r.count >= limit {
                    let st = sa.state.show();
                    self.ik(conn, format!("retransmission limit reached in {st}"));
                    self.fail_p1(
                        sa,
                        "Death by retransmission P1",
                        FailReason::RetransmissionsExhausted,
                    );
                    return None;
                }
                let t = r.fire(now, &mut sa.timers);
                let (st, n) = (sa.state.show(), r.count);
                self.counters.tx_retransmissions += 1;
                self.ik(
                    conn,
                    format!("retransmitting phase 1 {st}... (attempt {n} of {limit})"),
                );
                self.transmits.push_back(t);
            }
        }
        if sa.timers.is_due(Timer::Negotiation, now) {
            self.fail_p1(sa, "phase 1 timed out", FailReason::Timeout);
            return None;
        }
        self.qm_timers(now, sa);
        if !sa.state.is_established() {
            return None;
        }
        if sa.timers.is_due(Timer::QmHold, now) {
            sa.timers.stop(Timer::QmHold);
            self.start_waiting(now, sa);
        }
        if sa.timers.is_due(Timer::Expire, now) {
            self.delete_p1(sa, "Lifetime expired", FailReason::Timeout);
            return None;
        }
        if sa.timers.is_due(Timer::Rekey, now) {
            sa.timers.stop(Timer::Rekey);
            let peer = v4(sa.remote);
            if self.pairs.iter().any(|p| p.peer == peer) {
                return self.cfg.maps.iter().position(|m| m.peer == peer);
            }
        }
        None
    }

    /// Quick Mode retransmissions and the forgetting of finished exchanges.
    fn qm_timers(&mut self, now: Instant, sa: &mut P1Sa) {
        let limit = self.cfg.retransmit_limit;
        let conn = sa.conn_id;
        let mut mids: Vec<u32> = sa.qm.keys().copied().collect();
        mids.sort_unstable();
        for mid in mids {
            let Some(q) = sa.qm.get_mut(&mid) else {
                continue;
            };
            if q.state.is_complete() {
                if q.timers.is_due(Timer::Negotiation, now) {
                    sa.qm.remove(&mid);
                }
                continue;
            }
            if !q.timers.is_due(Timer::Retransmit, now) {
                continue;
            }
            let Some(r) = &mut q.retx else {
                continue;
            };
            if r.count >= limit {
                sa.qm.remove(&mid);
                self.counters
                    .p2_failed
                    .add(FailReason::RetransmissionsExhausted);
                self.ik(
                    conn,
                    format!("Node {mid}: retransmission limit reached, deleting node"),
                );
                self.events.push_back(Event::NegotiationFailed {
                    peer: v4(sa.remote),
                    reason: "Quick Mode retransmission limit".into(),
                });
                continue;
            }
            let t = r.fire(now, &mut q.timers);
            self.counters.tx_retransmissions += 1;
            self.ik(conn, format!("retransmitting phase 2 QM_IDLE {mid} ..."));
            self.transmits.push_back(t);
        }
    }

    /// NAT-T keepalive and DPD (RFC 3706) of an established SA.
    fn p1_liveness_timers(&mut self, now: Instant, sa: &mut P1Sa) {
        if !sa.state.is_established() {
            return;
        }
        if sa.timers.is_due(Timer::Keepalive, now) {
            sa.timers
                .set(Timer::Keepalive, now + self.cfg.nat_keepalive);
            self.transmits.push_back(Transmit {
                local: sa.local,
                remote: sa.remote,
                data: vec![0xff],
            });
        }
        let Some((interval, retry)) = self.cfg.dpd else {
            return;
        };
        if sa.timers.is_armed(Timer::DpdAck) {
            if !sa.timers.is_due(Timer::DpdAck, now) {
                return;
            }
            sa.dpd.misses += 1;
            if sa.dpd.misses >= DPD_MAX_MISSES {
                let peer = v4(sa.remote);
                self.counters.dpd_dead_peers += 1;
                self.ik_raw(format!(
                    "ISAKMP: DPD: peer {peer} is dead, deleting its SAs"
                ));
                self.fail_p1(
                    sa,
                    "peer is dead (DPD)",
                    FailReason::RetransmissionsExhausted,
                );
                self.remove_peer_pairs(sa.remote);
                return;
            }
            self.send_r_u_there(now, sa, retry, true);
        } else if sa.timers.is_due(Timer::Dpd, now) {
            sa.timers.set(Timer::Dpd, now + interval);
            if now.saturating_duration_since(sa.last_peer_activity) >= interval {
                if sa.dpd.seq == 0 {
                    sa.dpd.seq = self.rng.u32() & 0x7fff_ffff;
                }
                self.send_r_u_there(now, sa, retry, false);
            }
        }
    }

    /// Starts a new phase 1 to the peer of map entry `idx` without Quick Mode (ISAKMP rekey).
    fn start_p1_only(&mut self, now: Instant, idx: usize) {
        self.start_p1(now, idx, None);
        // start_p1 queued the entry's Quick Mode; a phase-1-only rekey does not want it.
        let Some(peer) = self.map_entry(idx).map(|m| m.peer) else {
            return;
        };
        if let Some(sa) = self
            .p1
            .values_mut()
            .filter(|s| s.initiator && v4(s.remote) == peer)
            .max_by_key(|s| s.conn_id)
        {
            sa.waiting.clear();
        }
    }
}
