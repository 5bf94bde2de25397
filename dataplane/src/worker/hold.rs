//! Frames waiting for their next hop's MAC address (the kernel's
//! `unres_qlen` queue, per worker).
//!
//! A worker that has a frame for a destination the next-hop table does not
//! resolve yet copies the bytes here and gives the UMEM frame back at once,
//! so the rings never starve while a neighbour is being resolved. Frames are
//! kept in order per destination, at most `per_dest` of them (the oldest is
//! pushed out, as the kernel does), at most `slots` in all (then the oldest
//! frame of any destination is pushed out), and each for at most `hold_for`.
//! When the table resolves a destination, its frames are handed back in the
//! order they came, to be written into fresh TX frames.
//!
//! All memory is taken up front: one buffer of `slots` × `slot_size` bytes
//! and fixed-size index lists, so holding and releasing never allocate. The
//! list of destinations is scanned linearly; it is never longer than the
//! number of frames held.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const NONE: u16 = u16::MAX;

/// Most frames one queue can hold (indices are `u16`).
pub const MAX_SLOTS: usize = NONE as usize;

/// Why a frame is held: what to do with it once its next hop resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A received frame for plain IPv4 forwarding, untouched.
    Forward,
    /// Interesting traffic from the inside, before encapsulation (TTL not
    /// yet decremented), waiting for the SA's peer; `slot`/`incarnation`
    /// name the SA it was meant for (for its drop counter).
    Encap {
        slot: crate::sadb::SlotId,
        incarnation: u32,
    },
    /// A decapsulated inner frame (already counted on its SA), waiting for
    /// its destination on the inside.
    Decap,
}

/// What became of a frame offered to [`HoldQueue::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push<M> {
    /// Held.
    Held,
    /// Held; to make room an older frame with this tag was dropped.
    HeldDropping(M),
    /// Not held: longer than a slot.
    TooLong,
}

#[derive(Debug, Clone, Copy)]
struct Slot<M> {
    len: usize,
    deadline: Instant,
    /// Arrival order over the whole queue (to find the oldest frame).
    seq: u64,
    next: u16,
    tag: Option<M>,
}

#[derive(Debug, Clone, Copy)]
struct Dest {
    key: Ipv4Addr,
    head: u16,
    tail: u16,
    count: u16,
}

/// A bounded, preallocated queue of frames per destination.
pub struct HoldQueue<M: Copy> {
    buf: Box<[u8]>,
    slot_size: usize,
    slots: Vec<Slot<M>>,
    free: Vec<u16>,
    dests: Vec<Dest>,
    per_dest: u16,
    hold_for: Duration,
    seq: u64,
    len: usize,
    /// No frame's deadline is earlier than this (it may be earlier than the
    /// true earliest after frames leave; a scan then corrects it).
    earliest: Option<Instant>,
}

impl<M: Copy> HoldQueue<M> {
    /// A queue of `slots` frames of up to `slot_size` bytes, at most
    /// `per_dest` per destination, each held at most `hold_for`.
    pub fn new(slots: usize, per_dest: usize, slot_size: usize, hold_for: Duration) -> Self {
        let slots = slots.clamp(1, MAX_SLOTS);
        let now = Instant::now();
        HoldQueue {
            buf: vec![0u8; slots * slot_size].into_boxed_slice(),
            slot_size,
            slots: vec![
                Slot {
                    len: 0,
                    deadline: now,
                    seq: 0,
                    next: NONE,
                    tag: None,
                };
                slots
            ],
            free: (0..slots as u16).rev().collect(),
            dests: Vec::with_capacity(slots),
            per_dest: per_dest.clamp(1, slots) as u16,
            hold_for,
            seq: 0,
            len: 0,
            earliest: None,
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Destinations with frames held.
    pub fn destinations(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.dests.iter().map(|d| d.key)
    }

    /// Frames held for `key`.
    pub fn count(&self, key: Ipv4Addr) -> usize {
        self.dests
            .iter()
            .find(|d| d.key == key)
            .map_or(0, |d| usize::from(d.count))
    }

    /// Copies `frame` in, behind the frames already held for `key`. Drops
    /// the oldest frame of `key` when it has `per_dest` already, or the
    /// oldest frame of all when every slot is taken.
    pub fn push(&mut self, key: Ipv4Addr, tag: M, frame: &[u8], now: Instant) -> Push<M> {
        if frame.len() > self.slot_size {
            return Push::TooLong;
        }
        let mut dropped = None;
        if let Some(d) = self.dests.iter().position(|d| d.key == key) {
            if self.dests[d].count >= self.per_dest {
                dropped = self.pop_front(d);
            }
        }
        if self.free.is_empty() {
            let oldest = self
                .dests
                .iter()
                .enumerate()
                .min_by_key(|(_, d)| self.slots[usize::from(d.head)].seq)
                .map(|(i, _)| i);
            if let Some(d) = oldest {
                dropped = self.pop_front(d);
            }
        }
        let Some(s) = self.free.pop() else {
            // Unreachable: a slot was just freed.
            return Push::TooLong;
        };
        let deadline = now + self.hold_for;
        let at = usize::from(s) * self.slot_size;
        self.buf[at..at + frame.len()].copy_from_slice(frame);
        self.slots[usize::from(s)] = Slot {
            len: frame.len(),
            deadline,
            seq: self.seq,
            next: NONE,
            tag: Some(tag),
        };
        self.seq += 1;
        self.len += 1;
        self.earliest = Some(self.earliest.map_or(deadline, |e| e.min(deadline)));
        match self.dests.iter().position(|d| d.key == key) {
            Some(d) => {
                let dest = &mut self.dests[d];
                self.slots[usize::from(dest.tail)].next = s;
                dest.tail = s;
                dest.count += 1;
            }
            None => self.dests.push(Dest {
                key,
                head: s,
                tail: s,
                count: 1,
            }),
        }
        match dropped {
            Some(t) => Push::HeldDropping(t),
            None => Push::Held,
        }
    }

    /// Removes the first frame of destination `d` (removing the destination
    /// when it empties; indices of others may change).
    fn pop_front(&mut self, d: usize) -> Option<M> {
        let dest = &mut self.dests[d];
        let s = dest.head;
        let slot = &mut self.slots[usize::from(s)];
        let tag = slot.tag.take()?;
        dest.head = slot.next;
        dest.count -= 1;
        slot.next = NONE;
        if dest.count == 0 {
            self.dests.swap_remove(d);
        }
        self.free.push(s);
        self.len -= 1;
        Some(tag)
    }

    /// Hands the frames of every destination `ready` accepts to `sink`, in
    /// the order they were held, removing each that `sink` takes. `sink`
    /// returns false when it cannot take the frame (no TX frame free); the
    /// frame then stays first in line and the pass stops. Returns whether
    /// the pass went through every destination.
    pub fn release(
        &mut self,
        mut ready: impl FnMut(Ipv4Addr) -> bool,
        mut sink: impl FnMut(Ipv4Addr, M, &[u8]) -> bool,
    ) -> bool {
        let mut d = 0;
        while d < self.dests.len() {
            let key = self.dests[d].key;
            if !ready(key) {
                d += 1;
                continue;
            }
            loop {
                let s = usize::from(self.dests[d].head);
                let slot = &self.slots[s];
                let Some(tag) = slot.tag else {
                    return false; // corrupt list: cannot happen
                };
                let at = s * self.slot_size;
                if !sink(key, tag, &self.buf[at..at + slot.len]) {
                    return false;
                }
                let last = self.dests[d].count == 1;
                self.pop_front(d);
                if last {
                    // swap_remove moved another destination into `d`.
                    break;
                }
            }
        }
        true
    }

    /// Drops every frame whose deadline has passed, telling `dropped` each
    /// one's tag; returns how many. Cheap when nothing is due.
    pub fn expire(&mut self, now: Instant, mut dropped: impl FnMut(M)) -> usize {
        match self.earliest {
            Some(e) if e <= now => {}
            _ => return 0,
        }
        let mut n = 0;
        let mut d = 0;
        let mut earliest: Option<Instant> = None;
        while d < self.dests.len() {
            let head = usize::from(self.dests[d].head);
            let deadline = self.slots[head].deadline;
            if deadline <= now {
                // Then look at `d` again: the destination's next frame, or
                // another destination moved into its place.
                match self.pop_front(d) {
                    Some(tag) => {
                        dropped(tag);
                        n += 1;
                    }
                    None => d += 1, // corrupt list: cannot happen
                }
                continue;
            }
            earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            d += 1;
        }
        self.earliest = earliest;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 3);
    const C: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 4);

    fn drain(q: &mut HoldQueue<u32>, key: Ipv4Addr) -> Vec<(u32, Vec<u8>)> {
        let mut got = Vec::new();
        assert!(q.release(
            |k| k == key,
            |_, t, b| {
                got.push((t, b.to_vec()));
                true
            }
        ));
        got
    }

    #[test]
    fn releases_in_order_per_destination() {
        let now = Instant::now();
        let mut q = HoldQueue::new(16, 3, 64, Duration::from_secs(3));
        assert_eq!(q.push(A, 1, &[1, 1], now), Push::Held);
        assert_eq!(q.push(B, 2, &[2], now), Push::Held);
        assert_eq!(q.push(A, 3, &[3, 3, 3], now), Push::Held);
        assert_eq!((q.len(), q.count(A), q.count(B)), (3, 2, 1));
        assert_eq!(drain(&mut q, A), vec![(1, vec![1, 1]), (3, vec![3, 3, 3])]);
        assert_eq!((q.len(), q.count(A), q.count(B)), (1, 0, 1));
        assert_eq!(q.destinations().collect::<Vec<_>>(), vec![B]);
        assert_eq!(drain(&mut q, A), vec![]);
        assert_eq!(drain(&mut q, B), vec![(2, vec![2])]);
        assert!(q.is_empty());
        // Slots are reused: fill (three frames for each of five
        // destinations) and empty several times.
        for round in 0..5u32 {
            for i in 0..15u32 {
                let k = Ipv4Addr::from(0x0a00_0000 + i % 5);
                assert_eq!(q.push(k, round * 100 + i, &[i as u8], now), Push::Held);
            }
            let mut got = Vec::new();
            assert!(q.release(
                |_| true,
                |k, t, b| {
                    got.push((k, t, b[0]));
                    true
                }
            ));
            assert_eq!(got.len(), 15);
            for i in 0..5u32 {
                let per: Vec<u32> = got
                    .iter()
                    .filter(|(k, _, _)| u32::from(*k) == 0x0a00_0000 + i)
                    .map(|(_, t, _)| *t)
                    .collect();
                let mut sorted = per.clone();
                sorted.sort();
                assert_eq!(per, sorted, "order kept for destination {i}");
            }
            assert!(q.is_empty());
        }
    }

    #[test]
    fn bounded_per_destination_dropping_the_oldest() {
        let now = Instant::now();
        let mut q = HoldQueue::new(16, 3, 8, Duration::from_secs(3));
        for t in 0..3 {
            assert_eq!(q.push(A, t, &[t as u8], now), Push::Held);
        }
        assert_eq!(q.push(A, 3, &[3], now), Push::HeldDropping(0));
        assert_eq!(q.push(A, 4, &[4], now), Push::HeldDropping(1));
        assert_eq!(q.count(A), 3);
        assert_eq!(
            drain(&mut q, A)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(q.push(A, 9, &[0; 9], now), Push::TooLong);
        assert!(q.is_empty());
    }

    #[test]
    fn bounded_in_total_dropping_the_oldest_of_all() {
        let now = Instant::now();
        let mut q = HoldQueue::new(4, 3, 8, Duration::from_secs(3));
        assert_eq!(q.push(A, 0, &[0], now), Push::Held);
        assert_eq!(q.push(B, 1, &[1], now), Push::Held);
        assert_eq!(q.push(B, 2, &[2], now), Push::Held);
        assert_eq!(q.push(C, 3, &[3], now), Push::Held);
        // Full: A's only frame is the oldest and goes (A disappears).
        assert_eq!(q.push(C, 4, &[4], now), Push::HeldDropping(0));
        assert_eq!((q.len(), q.count(A), q.count(B), q.count(C)), (4, 0, 2, 2));
        // Then B's first.
        assert_eq!(q.push(A, 5, &[5], now), Push::HeldDropping(1));
        assert_eq!((q.count(A), q.count(B), q.count(C)), (1, 1, 2));
        let mut got = Vec::new();
        assert!(q.release(
            |_| true,
            |_, t, _| {
                got.push(t);
                true
            }
        ));
        got.sort();
        assert_eq!(got, vec![2, 3, 4, 5]);
    }

    #[test]
    fn frames_expire_at_their_deadline() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(3);
        let mut q = HoldQueue::new(16, 3, 8, hold);
        q.push(A, 0, &[0], t0);
        q.push(B, 1, &[1], t0);
        q.push(A, 2, &[2], t0 + Duration::from_secs(1));
        q.push(C, 3, &[3], t0 + Duration::from_secs(2));
        let mut gone = Vec::new();
        assert_eq!(
            q.expire(t0 + Duration::from_millis(2999), |t| gone.push(t)),
            0
        );
        assert_eq!(q.expire(t0 + hold, |t| gone.push(t)), 2);
        gone.sort();
        assert_eq!(gone, vec![0, 1]);
        assert_eq!((q.count(A), q.count(B), q.count(C)), (1, 0, 1));
        assert_eq!(
            q.expire(t0 + Duration::from_millis(3500), |t| gone.push(t)),
            0
        );
        assert_eq!(q.expire(t0 + Duration::from_secs(10), |t| gone.push(t)), 2);
        assert_eq!(gone, vec![0, 1, 2, 3]);
        assert!(q.is_empty());
        assert_eq!(q.expire(t0 + Duration::from_secs(20), |_| panic!()), 0);
    }

    #[test]
    fn a_refused_frame_stays_first_in_line() {
        let now = Instant::now();
        let mut q = HoldQueue::new(8, 3, 8, Duration::from_secs(3));
        for t in 0..3 {
            q.push(A, t, &[t as u8], now);
        }
        let mut taken = 0;
        assert!(!q.release(
            |_| true,
            |_, _, _| {
                taken += 1;
                taken <= 1
            }
        ));
        assert_eq!(q.count(A), 2);
        assert_eq!(
            drain(&mut q, A)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
