//! One tunnel's inbound ESP on several workers (issue #14, `--fanout N`).
//!
//! All of one SA's ESP lands on one RX queue, so on one worker: its *owner*. With
//! fan-out the owner cuts each outside receive batch into up to N contiguous slices,
//! keeps the first and hands the others to its N-1 *peers* through lock-free
//! single-producer rings ([`super::ring`]), one pair per (owner, peer). A slice is a
//! [`Job`]: the packets (frames of the owner's UMEM, never copied), a view of that UMEM
//! and the owner's SA tables. The peer verifies and decrypts the frames in place with
//! the replay window only *checked* ([`esp_path::verify`] deferred), and returns the
//! job through the return ring. The owner delivers slices strictly in the order it
//! received them (each has a ticket): for each authenticated frame it *commits* the
//! replay window then, in arrival order, and only a committed frame is forwarded, from
//! the owner's own inside socket; every frame goes back to the socket it came from.
//!
//! So the window decisions are exactly those of one worker that checks a whole batch
//! and commits it in arrival order (the test
//! `deferred_commit_in_arrival_order_matches_one_worker`): IOS's 64 stays 64, a packet
//! is accepted once, and a slow peer delays delivery but never makes a valid packet
//! fall out of the window (nothing later is committed before it).
//!
//! A slice whose peer already has [`IN_FLIGHT`] slices is verified by the owner itself
//! (counted `fanout_ring_full`; no packet is dropped for it). At stop a worker waits
//! until its peers have returned its slices or stopped themselves, so no peer touches
//! a UMEM after its owner unmapped it.
#![allow(unsafe_code)]

use super::esp_path::{self, Decapped, EspState, Io};
use super::ring::{channel, Consumer, Producer};
use super::sa::SaTables;
use super::stats::{Counter, Tally};
use crate::sys::xsk::{Packet, UmemView, XskSet};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Slices one owner may have at one peer at once (the rings' size).
pub const IN_FLIGHT: usize = 8;

/// One slice of an owner's outside batch.
pub struct Job {
    ticket: u64,
    umem: UmemView,
    tables: Arc<SaTables>,
    pkts: Vec<Packet>,
    results: Vec<Decapped>,
}

/// The owner's end of its hand-off to one peer.
struct Link {
    to: Producer<Job>,
    back: Consumer<Job>,
    in_flight: usize,
    peer_gone: Arc<AtomicBool>,
}

/// The peer's end of one owner's hand-off.
struct Serve {
    from: Consumer<Job>,
    back: Producer<Job>,
}

/// A worker's hand-offs: to its peers (as owner) and from the owners it serves.
pub struct Fanout {
    links: Vec<Link>,
    serves: Vec<Serve>,
    /// Set when this worker has stopped touching other workers' frames.
    gone: Arc<AtomicBool>,
    next_ticket: u64,
    /// Ticket of `waiting[0]`.
    deliver_next: u64,
    /// Slices not delivered yet, by ticket; `None` while a peer has it.
    waiting: VecDeque<Option<Job>>,
    /// Emptied jobs, for their allocations.
    spare: Vec<Job>,
}

/// The hand-offs of `workers` workers, each spreading over itself and the next
/// `fanout - 1` (wrapping around); `fanout` is clamped to 1..=workers.
pub fn mesh(workers: usize, fanout: usize) -> Vec<Fanout> {
    let fanout = fanout.clamp(1, workers.max(1));
    let gone: Vec<Arc<AtomicBool>> = (0..workers).map(|_| Arc::default()).collect();
    let mut all: Vec<Fanout> = gone
        .iter()
        .map(|g| Fanout {
            links: Vec::new(),
            serves: Vec::new(),
            gone: g.clone(),
            next_ticket: 0,
            deliver_next: 0,
            waiting: VecDeque::new(),
            spare: Vec::new(),
        })
        .collect();
    for owner in 0..workers {
        for d in 1..fanout {
            let peer = (owner + d) % workers;
            let (to, from) = channel(IN_FLIGHT);
            let (back, back_rx) = channel(IN_FLIGHT);
            all[owner].links.push(Link {
                to,
                back: back_rx,
                in_flight: 0,
                peer_gone: gone[peer].clone(),
            });
            all[peer].serves.push(Serve { from, back });
        }
    }
    all
}

impl Fanout {
    /// Whether this worker serves other workers' slices (so must not sleep long).
    pub fn serves(&self) -> bool {
        !self.serves.is_empty()
    }

    /// Whether slices of this worker are still waiting to be delivered.
    pub fn busy(&self) -> bool {
        !self.waiting.is_empty()
    }

    fn job(&mut self, xsk: &XskSet, tables: &Arc<SaTables>) -> Job {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiting.push_back(None);
        match self.spare.pop() {
            Some(mut j) => {
                j.ticket = ticket;
                j.umem = xsk.view();
                j.tables = tables.clone();
                j
            }
            None => Job {
                ticket,
                umem: xsk.view(),
                tables: tables.clone(),
                pkts: Vec::new(),
                results: Vec::new(),
            },
        }
    }

    fn done(&mut self, job: Job) {
        let i = (job.ticket - self.deliver_next) as usize;
        self.waiting[i] = Some(job);
    }

    /// Owner: spreads an outside batch over this worker and its peers, then delivers
    /// whatever is complete, in order.
    pub fn spread(
        &mut self,
        st: &mut EspState,
        io: &mut Io<'_>,
        pkts: &mut Vec<Packet>,
        out: &mut [Vec<Packet>; 2],
    ) {
        let tables = st.tables.clone();
        let parts = 1 + self.links.len();
        let len = pkts.len().div_ceil(parts).max(1);
        let mut mine = self.job(io.xsk, &tables);
        let rest = pkts.split_off(len.min(pkts.len()));
        mine.pkts.append(pkts);
        let mut rest = rest.into_iter();
        let mut local: Vec<Job> = vec![mine];
        for l in 0..self.links.len() {
            let mut job = self.job(io.xsk, &tables);
            job.pkts.extend(rest.by_ref().take(len));
            if job.pkts.is_empty() {
                // Fewer packets than parts: an empty slice is complete at once.
                local.push(job);
                continue;
            }
            let n = job.pkts.len() as u64;
            let link = &mut self.links[l];
            if link.in_flight < IN_FLIGHT {
                match link.to.push(job) {
                    Ok(()) => {
                        link.in_flight += 1;
                        io.tally.add(Counter::FanoutHandedOff, n);
                        continue;
                    }
                    Err(j) => job = j,
                }
            }
            io.tally.add(Counter::FanoutRingFull, n);
            local.push(job);
        }
        for mut job in local {
            let xsk: &XskSet = io.xsk;
            esp_path::verify(
                &job.tables,
                &mut job.pkts,
                |p| xsk.frame_mut(p),
                true,
                &mut io.tally.drops,
                &mut job.results,
            );
            self.done(job);
        }
        self.deliver(st, io, out);
    }

    /// Owner: takes back the slices peers finished and delivers the complete ones in
    /// ticket order.
    pub fn deliver(&mut self, st: &mut EspState, io: &mut Io<'_>, out: &mut [Vec<Packet>; 2]) {
        for l in 0..self.links.len() {
            while let Some(job) = self.links[l].back.pop() {
                self.links[l].in_flight -= 1;
                self.done(job);
            }
        }
        while let Some(Some(_)) = self.waiting.front() {
            let Some(Some(mut job)) = self.waiting.pop_front() else {
                break;
            };
            self.deliver_next += 1;
            esp_path::deliver(st, io, &job.tables, &job.results, &mut job.pkts, out);
            self.spare.push(job);
        }
    }

    /// Peer: verifies the slices owners handed over and hands them back.
    pub fn serve(&mut self, tally: &mut Tally) -> usize {
        let mut n = 0;
        for s in &mut self.serves {
            while let Some(mut job) = s.from.pop() {
                let view = job.umem;
                esp_path::verify(
                    &job.tables,
                    &mut job.pkts,
                    // SAFETY: the job was moved here through the ring, so these
                    // packets are held by this thread alone, and their owner keeps its
                    // UMEM mapped until the job is back or this worker is gone (stop).
                    |p| unsafe { view.frame_mut(p) },
                    true,
                    &mut tally.drops,
                    &mut job.results,
                );
                n += job.pkts.len();
                tally.add(Counter::FanoutVerified, job.pkts.len() as u64);
                // Never full: the owner keeps at most IN_FLIGHT jobs out per pair of
                // rings, and the return ring has that many slots.
                let _ = s.back.push(job);
            }
        }
        n
    }

    /// At stop: no more serving; waits until every slice handed to a peer came back or
    /// the peer stopped too (then it no longer touches this worker's frames).
    pub fn stop(&mut self) {
        self.gone.store(true, Ordering::Release);
        for l in &mut self.links {
            while l.in_flight > 0 && !l.peer_gone.load(Ordering::Acquire) {
                while l.back.pop().is_some() {
                    l.in_flight -= 1;
                }
                std::thread::yield_now();
            }
        }
    }
}
