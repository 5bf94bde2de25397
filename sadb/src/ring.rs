//! The sa_request event ring (workers → control) and the per-crypto-map-entry request
//! table that rate-limits and deduplicates it.
//!
//! The ring is a bounded multi-producer queue with one sequence word per cell (D. Vyukov's
//! design): a producer claims a position with a CAS on the shared tail, writes the payload
//! and publishes it with a CAS of the cell's sequence from `pos` to `pos + 1`; the single
//! consumer (control) reads the cell when its sequence is `pos + 1` and frees it by storing
//! `pos + capacity`. It never blocks: a full ring counts an overflow and drops the event.
//!
//! A producer that dies between claiming and publishing would stall the consumer forever;
//! so the consumer, after seeing the same claimed-but-unpublished cell for
//! [`STALL_SKIP_MS`], takes it back with a CAS of its own from `pos` to `pos + capacity`.
//! Exactly one of the two CASes wins; a producer that loses counts its event as lost. (A
//! producer paused for that long can still scribble on the recycled cell's payload; the
//! event read then may be garbled, which costs at worst one spurious or rejected request:
//! the events are hints and control checks them against its configuration.)

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::counters::{GlobalCounter, GlobalCounters};
use super::layout::{hdr, Layout, REQTAB_ENTRY_WORDS};
use super::record::MapName;

/// How long the consumer waits on a claimed but unpublished cell before skipping it.
pub const STALL_SKIP_MS: u64 = 1000;
/// Default minimum interval between two requests for the same crypto-map entry.
pub const DEFAULT_REQUEST_INTERVAL_MS: u64 = 1000;

/// Interesting traffic without an SA: the dataplane asks control to negotiate one
/// (IOS's `IPsec(sa_request)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaRequest {
    /// The crypto map whose entry matched (empty if the classifier knows only a rule).
    pub crypto_map: MapName,
    /// The crypto-map entry's sequence number.
    pub crypto_map_seq: u32,
    /// Index of the ACL rule (classifier map entry) that matched, if known.
    pub acl_rule: Option<u32>,
    /// The triggering packet.
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// The worker that posted it.
    pub worker: u16,
    /// CLOCK_MONOTONIC milliseconds when it was posted (set by `post`).
    pub at_ms: u64,
}

impl SaRequest {
    /// A request from a ping 10.1.1.2 → 10.1.2.2 for entry `seq` of crypto map `map`
    /// (`None` if the name is not a valid [`MapName`]): the sample tests post.
    #[doc(hidden)]
    pub fn ping(map: &str, seq: u32) -> Option<SaRequest> {
        Some(SaRequest {
            crypto_map: MapName::new(map)?,
            crypto_map_seq: seq,
            acl_rule: None,
            src: Ipv4Addr::new(10, 1, 1, 2),
            dst: Ipv4Addr::new(10, 1, 2, 2),
            protocol: 1,
            src_port: 0,
            dst_port: 0,
            worker: 0,
            at_ms: 0,
        })
    }
}

/// What became of a posted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// In the ring.
    Posted,
    /// Suppressed: the same crypto-map entry (and rule) asked less than the interval ago.
    Deduplicated,
    /// Lost: the ring was full (counted).
    Overflow,
}

// Cell words: 0 sequence, 1..5 map name (length byte + 31 bytes), 5 seq | rule << 32,
// 6 src | dst << 32, 7 protocol | sport << 8 | dport << 24 | worker << 40, 8 at_ms.
const C_SEQ: usize = 0;
const C_NAME: usize = 1;
const _: () = assert!(C_NAME + 8 <= super::layout::RING_CELL_WORDS);
const NO_RULE: u32 = u32::MAX;

fn encode(req: &SaRequest, at_ms: u64) -> [u64; 8] {
    let mut name = [0u8; 32];
    let (len, bytes) = req.crypto_map.raw();
    name[0] = len;
    name[1..].copy_from_slice(bytes);
    let mut w = [0u64; 8];
    for (i, chunk) in name.chunks_exact(8).enumerate() {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        w[i] = u64::from_le_bytes(a);
    }
    w[4] = u64::from(req.crypto_map_seq) | u64::from(req.acl_rule.unwrap_or(NO_RULE)) << 32;
    w[5] = u64::from(u32::from(req.src)) | u64::from(u32::from(req.dst)) << 32;
    w[6] = u64::from(req.protocol)
        | u64::from(req.src_port) << 8
        | u64::from(req.dst_port) << 24
        | u64::from(req.worker) << 40;
    w[7] = at_ms;
    w
}

fn decode(w: &[u64; 8]) -> Option<SaRequest> {
    let mut name = [0u8; 32];
    for i in 0..4 {
        name[i * 8..i * 8 + 8].copy_from_slice(&w[i].to_le_bytes());
    }
    let len = name[0] as usize;
    if len > MapName::MAX || name[1 + len..].iter().any(|&b| b != 0) {
        return None;
    }
    let crypto_map = MapName::new(std::str::from_utf8(&name[1..1 + len]).ok()?)?;
    let rule = (w[4] >> 32) as u32;
    Some(SaRequest {
        crypto_map,
        crypto_map_seq: w[4] as u32,
        acl_rule: (rule != NO_RULE).then_some(rule),
        src: Ipv4Addr::from(w[5] as u32),
        dst: Ipv4Addr::from((w[5] >> 32) as u32),
        protocol: w[6] as u8,
        src_port: (w[6] >> 8) as u16,
        dst_port: (w[6] >> 24) as u16,
        worker: (w[6] >> 40) as u16,
        at_ms: w[7],
    })
}

/// The 64-bit dedup key of a request: crypto-map name, sequence and rule. Never 0.
pub(crate) fn request_key(map: &MapName, seq: u32, rule: Option<u32>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for &b in map.as_str().as_bytes() {
        eat(b);
    }
    eat(0xff);
    for b in seq.to_le_bytes() {
        eat(b);
    }
    for b in rule.unwrap_or(NO_RULE).to_le_bytes() {
        eat(b);
    }
    if h == 0 {
        1
    } else {
        h
    }
}

/// Finds (or inserts) the request-table entry of `key`; `None` when the table is full.
fn reqtab_entry<'a>(words: &'a [AtomicU64], layout: &Layout, key: u64) -> Option<&'a [AtomicU64]> {
    let n = layout.geometry.request_entries as usize;
    let start = (key as usize) & (n - 1);
    for i in 0..n {
        let e = (start + i) & (n - 1);
        let w0 = layout.reqtab_word(e);
        let entry = &words[w0..w0 + REQTAB_ENTRY_WORDS];
        let k = entry[0].load(Ordering::Acquire);
        if k == key {
            return Some(entry);
        }
        if k == 0 {
            match entry[0].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(entry),
                Err(k) if k == key => return Some(entry),
                Err(_) => continue,
            }
        }
    }
    None
}

/// Rate-limits, deduplicates and posts a request. Producer side (workers).
pub(crate) fn post(
    words: &[AtomicU64],
    layout: &Layout,
    req: &SaRequest,
    now_ms: u64,
) -> PostOutcome {
    let g = GlobalCounters {
        w: &words[hdr::GLOBAL_COUNTERS..hdr::GLOBAL_COUNTERS + hdr::GLOBAL_COUNTER_WORDS],
    };
    let key = request_key(&req.crypto_map, req.crypto_map_seq, req.acl_rule);
    let now = now_ms.max(1);
    match reqtab_entry(words, layout, key) {
        Some(entry) => {
            let interval = words[hdr::REQUEST_INTERVAL_MS].load(Ordering::Relaxed);
            let last = entry[1].load(Ordering::Acquire);
            if last != 0 && now < last.saturating_add(interval) {
                g.add(GlobalCounter::SaRequestDeduplicated, 1);
                return PostOutcome::Deduplicated;
            }
            if entry[1]
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                // Another worker won the race for this entry and posts it.
                g.add(GlobalCounter::SaRequestDeduplicated, 1);
                return PostOutcome::Deduplicated;
            }
        }
        None => g.add(GlobalCounter::SaRequestTableFull, 1),
    }
    if push(words, layout, &encode(req, now)) {
        g.add(GlobalCounter::SaRequestPosted, 1);
        PostOutcome::Posted
    } else {
        g.add(GlobalCounter::SaRequestOverflow, 1);
        PostOutcome::Overflow
    }
}

/// Clears the rate limit of one crypto-map entry so that its next packet asks at once.
pub(crate) fn clear_rate_limit(
    words: &[AtomicU64],
    layout: &Layout,
    map: &MapName,
    seq: u32,
    rule: Option<u32>,
) {
    let key = request_key(map, seq, rule);
    let n = layout.geometry.request_entries as usize;
    let start = (key as usize) & (n - 1);
    for i in 0..n {
        let w0 = layout.reqtab_word((start + i) & (n - 1));
        let k = words[w0].load(Ordering::Acquire);
        if k == key {
            words[w0 + 1].store(0, Ordering::Release);
            return;
        }
        if k == 0 {
            return;
        }
    }
}

fn push(words: &[AtomicU64], layout: &Layout, payload: &[u64; 8]) -> bool {
    let cap = layout.geometry.ring_capacity as u64;
    let tail = &words[hdr::RING_TAIL];
    let mut pos = tail.load(Ordering::Relaxed);
    let cell = loop {
        let c = layout.ring_cell_word((pos & (cap - 1)) as usize);
        let seq = words[c + C_SEQ].load(Ordering::Acquire);
        let dif = seq.wrapping_sub(pos) as i64;
        if dif == 0 {
            match tail.compare_exchange_weak(
                pos,
                pos.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break c,
                Err(p) => pos = p,
            }
        } else if dif < 0 {
            return false;
        } else {
            // Another producer claimed `pos`, so the tail has moved on. If it has not, the
            // cell's sequence is ahead of the tail: a corrupt ring. Drop the event rather
            // than spin forever.
            let t = tail.load(Ordering::Relaxed);
            if t == pos {
                return false;
            }
            pos = t;
        }
    };
    for (i, v) in payload.iter().enumerate() {
        words[cell + C_NAME + i].store(*v, Ordering::Relaxed);
    }
    if words[cell + C_SEQ]
        .compare_exchange(
            pos,
            pos.wrapping_add(1),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_err()
    {
        // The consumer gave up on us (we were stalled for STALL_SKIP_MS): event lost.
        GlobalCounters {
            w: &words[hdr::GLOBAL_COUNTERS..hdr::GLOBAL_COUNTERS + hdr::GLOBAL_COUNTER_WORDS],
        }
        .add(GlobalCounter::SaRequestLost, 1);
        return true;
    }
    true
}

/// Consumer state kept by the (single) writer process between polls.
#[derive(Debug, Default)]
pub(crate) struct Consumer {
    stalled: Option<(u64, u64)>,
}

impl Consumer {
    /// Takes the next request, skipping cells whose content does not decode. Consumer side.
    pub(crate) fn poll(
        &mut self,
        words: &[AtomicU64],
        layout: &Layout,
        now_ms: u64,
    ) -> Option<SaRequest> {
        let cap = layout.geometry.ring_capacity as u64;
        let head = &words[hdr::RING_HEAD];
        loop {
            let pos = head.load(Ordering::Relaxed);
            let c = layout.ring_cell_word((pos & (cap - 1)) as usize);
            let seq = words[c + C_SEQ].load(Ordering::Acquire);
            if seq == pos.wrapping_add(1) {
                let mut w = [0u64; 8];
                for (i, v) in w.iter_mut().enumerate() {
                    *v = words[c + C_NAME + i].load(Ordering::Relaxed);
                }
                words[c + C_SEQ].store(pos.wrapping_add(cap), Ordering::Release);
                head.store(pos.wrapping_add(1), Ordering::Release);
                self.stalled = None;
                match decode(&w) {
                    Some(r) => return Some(r),
                    None => continue,
                }
            }
            let tail = words[hdr::RING_TAIL].load(Ordering::Acquire);
            if seq == pos && tail != pos {
                // Claimed by a producer, not yet published.
                match self.stalled {
                    Some((p, since)) if p == pos => {
                        if now_ms.saturating_sub(since) >= STALL_SKIP_MS
                            && words[c + C_SEQ]
                                .compare_exchange(
                                    pos,
                                    pos.wrapping_add(cap),
                                    Ordering::AcqRel,
                                    Ordering::Acquire,
                                )
                                .is_ok()
                        {
                            head.store(pos.wrapping_add(1), Ordering::Release);
                            GlobalCounters {
                                w: &words[hdr::GLOBAL_COUNTERS
                                    ..hdr::GLOBAL_COUNTERS + hdr::GLOBAL_COUNTER_WORDS],
                            }
                            .add(GlobalCounter::SaRequestLost, 1);
                            self.stalled = None;
                            continue;
                        }
                    }
                    _ => self.stalled = Some((pos, now_ms)),
                }
            }
            return None;
        }
    }
}

/// Writer only: initialise the cell sequence words of a fresh ring.
pub(crate) fn init(words: &[AtomicU64], layout: &Layout) {
    for i in 0..layout.geometry.ring_capacity as usize {
        words[layout.ring_cell_word(i) + C_SEQ].store(i as u64, Ordering::Relaxed);
    }
    words[hdr::RING_HEAD].store(0, Ordering::Relaxed);
    words[hdr::RING_TAIL].store(0, Ordering::Relaxed);
}

/// Events waiting in the ring (approximate while producers run).
pub(crate) fn pending(words: &[AtomicU64]) -> u64 {
    let tail = words[hdr::RING_TAIL].load(Ordering::Acquire);
    let head = words[hdr::RING_HEAD].load(Ordering::Acquire);
    tail.wrapping_sub(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let r = SaRequest {
            crypto_map: MapName::new("VPN").unwrap(),
            crypto_map_seq: 10,
            acl_rule: Some(3),
            src: Ipv4Addr::new(10, 1, 1, 2),
            dst: Ipv4Addr::new(10, 1, 2, 2),
            protocol: 1,
            src_port: 0,
            dst_port: 65535,
            worker: 7,
            at_ms: 123,
        };
        assert_eq!(decode(&encode(&r, 123)), Some(r));
        let r2 = SaRequest {
            acl_rule: None,
            crypto_map: MapName::new("").unwrap(),
            ..r
        };
        assert_eq!(decode(&encode(&r2, 123)), Some(r2));
        let mut bad = encode(&r, 1);
        bad[0] |= 0xff;
        assert_eq!(decode(&bad), None);
    }

    #[test]
    fn keys_differ_and_are_nonzero() {
        let m = MapName::new("VPN").unwrap();
        let a = request_key(&m, 10, None);
        assert_ne!(a, 0);
        assert_ne!(a, request_key(&m, 20, None));
        assert_ne!(a, request_key(&m, 10, Some(0)));
        assert_ne!(a, request_key(&MapName::new("VPN2").unwrap(), 10, None));
    }
}
