//! The IOS crypto log messages an operator troubleshoots a tunnel with,
//! printed by espgw-dataplane on stderr (what journald keeps) in IOS's text:
//!
//! - `%CRYPTO-4-RECVD_PKT_INV_SPI`: ESP (raw or in UDP 4500) whose SPI names
//!   no inbound SA of ours (stale peer after a rekey or `clear crypto sa`,
//!   or someone spraying ESP at us).
//! - `%CRYPTO-4-PKT_REPLAY_ERR`: a packet of a known SA failed the
//!   anti-replay check (a duplicate, or left of the window).
//! - `%CRYPTO-4-RECVD_PKT_MAC_ERR`: a packet of a known SA failed its ICV
//!   (or GCM tag): corrupted on the way, forged, or keys out of step.
//! - `%CRYPTO-4-RECVD_PKT_NOT_IPSEC`: a clear packet arrived on the outside
//!   that the crypto ACL says must come protected; the XDP classifier
//!   dropped it.
//!
//! These can come at line rate, so they are never logged per packet: each
//! message type is printed at once the first time, then at most once every
//! [`LOG_EVERY`] (10 s) from a sample, the latest event of that type; the
//! exact totals stay in the counters (per SA, per worker, per CPU).
//!
//! How samples travel: a worker keeps the last event of each type of a batch
//! in plain fields ([`LatestEvents`]) and after the batch publishes them into
//! its [`EventSlots`] (a sequence-locked pair of words per type: a few
//! atomic stores, no lock, no allocation). The main loop reads every
//! worker's slots and the outside classifier's per-CPU clear-packet sample
//! each turn (200 ms) and feeds them to [`CryptoLog`], which decides what
//! to print. Only addresses, SPIs, sequence numbers and connection ids
//! appear, as on IOS; never keys.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one line per message type this often (after the first).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// An SPI as IOS prints it (one rule for the crypto log and `show crypto ipsec sa`).
pub use crate::sadb::ios_spi;

/// The message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum EventKind {
    InvalidSpi = 0,
    Replay = 1,
    MacError = 2,
    NotIpsec = 3,
}

impl EventKind {
    pub const COUNT: usize = 4;
    pub const ALL: [EventKind; Self::COUNT] = [
        Self::InvalidSpi,
        Self::Replay,
        Self::MacError,
        Self::NotIpsec,
    ];
}

/// One logged event, with what its message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoEvent {
    /// ESP to `dst` from `src` with an SPI we have no SA for.
    InvalidSpi {
        dst: Ipv4Addr,
        src: Ipv4Addr,
        spi: u32,
    },
    /// Anti-replay failure on the inbound SA with this connection id; `seq`
    /// is the sequence number in the packet.
    Replay { conn_id: u32, seq: u32 },
    /// ICV failure on the inbound SA with this connection id.
    MacError { conn_id: u32 },
    /// A clear packet the crypto ACL protects, dropped on the outside.
    NotIpsec {
        dst: Ipv4Addr,
        src: Ipv4Addr,
        proto: u8,
    },
}

impl CryptoEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::InvalidSpi { .. } => EventKind::InvalidSpi,
            Self::Replay { .. } => EventKind::Replay,
            Self::MacError { .. } => EventKind::MacError,
            Self::NotIpsec { .. } => EventKind::NotIpsec,
        }
    }

    fn encode(&self) -> (u64, u64) {
        let pair =
            |a: Ipv4Addr, b: Ipv4Addr| (u64::from(u32::from(a)) << 32) | u64::from(u32::from(b));
        match *self {
            Self::InvalidSpi { dst, src, spi } => (pair(dst, src), u64::from(spi)),
            Self::Replay { conn_id, seq } => (u64::from(conn_id), u64::from(seq)),
            Self::MacError { conn_id } => (u64::from(conn_id), 0),
            Self::NotIpsec { dst, src, proto } => (pair(dst, src), u64::from(proto)),
        }
    }

    fn decode(kind: EventKind, a: u64, b: u64) -> Self {
        let (hi, lo) = (Ipv4Addr::from((a >> 32) as u32), Ipv4Addr::from(a as u32));
        match kind {
            EventKind::InvalidSpi => Self::InvalidSpi {
                dst: hi,
                src: lo,
                spi: b as u32,
            },
            EventKind::Replay => Self::Replay {
                conn_id: a as u32,
                seq: b as u32,
            },
            EventKind::MacError => Self::MacError { conn_id: a as u32 },
            EventKind::NotIpsec => Self::NotIpsec {
                dst: hi,
                src: lo,
                proto: b as u8,
            },
        }
    }
}

impl fmt::Display for CryptoEvent {
    /// The IOS message text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidSpi { dst, src, spi } => write!(
                f,
                "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid spi for destaddr={dst}, prot=50, spi={}, srcaddr={src}",
                ios_spi(spi)
            ),
            Self::Replay { conn_id, seq } => write!(
                f,
                "%CRYPTO-4-PKT_REPLAY_ERR: decrypt: replay check failed connection id={conn_id}, sequence number={seq}"
            ),
            Self::MacError { conn_id } => write!(
                f,
                "%CRYPTO-4-RECVD_PKT_MAC_ERR: decrypt: mac verify failed for connection id={conn_id}"
            ),
            Self::NotIpsec { dst, src, proto } => write!(
                f,
                "%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an IPSEC packet. (ip) vrf/dest_addr= /{dst}, src_addr= {src}, prot= {proto}"
            ),
        }
    }
}

/// A worker's latest event of each type within the current batch (plain
/// fields: the hot path only overwrites them).
#[derive(Debug, Default, Clone)]
pub struct LatestEvents {
    latest: [Option<CryptoEvent>; EventKind::COUNT],
}

impl LatestEvents {
    pub fn record(&mut self, ev: CryptoEvent) {
        self.latest[ev.kind() as usize] = Some(ev);
    }

    pub fn is_empty(&self) -> bool {
        self.latest.iter().all(Option::is_none)
    }
}

/// One sequence-locked sample: written by one thread (its worker), read by
/// the main loop. `seq` is even when stable and counts writes twice.
#[derive(Debug, Default)]
struct Slot {
    seq: AtomicU64,
    a: AtomicU64,
    b: AtomicU64,
}

impl Slot {
    /// Only ever called by the slot's one writer.
    fn write(&self, (a, b): (u64, u64)) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.a.store(a, Ordering::Relaxed);
        self.b.store(b, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// (samples written so far, the words) if any was written and a stable
    /// read succeeded within a few tries.
    fn read(&self) -> Option<(u64, u64, u64)> {
        for _ in 0..8 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let (a, b) = (
                self.a.load(Ordering::Relaxed),
                self.b.load(Ordering::Relaxed),
            );
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some((s1 / 2, a, b));
            }
        }
        None
    }
}

/// A worker's published samples, one slot per message type.
#[derive(Debug, Default)]
pub struct EventSlots {
    slots: [Slot; EventKind::COUNT],
}

impl EventSlots {
    /// Moves the batch's latest events into the slots (by the worker that
    /// owns them, after each batch).
    pub fn publish(&self, latest: &mut LatestEvents) {
        for (slot, ev) in self.slots.iter().zip(latest.latest.iter_mut()) {
            if let Some(ev) = ev.take() {
                slot.write(ev.encode());
            }
        }
    }

    /// The latest sample of `kind` and how many samples were published so
    /// far (it changes whenever a newer sample arrives).
    pub fn read(&self, kind: EventKind) -> Option<(u64, CryptoEvent)> {
        let (n, a, b) = self.slots[kind as usize].read()?;
        Some((n, CryptoEvent::decode(kind, a, b)))
    }
}

#[derive(Debug, Default)]
struct KindState {
    /// The sample generation last seen from each source.
    seen: Vec<u64>,
    /// The newest sample not printed yet.
    pending: Option<CryptoEvent>,
    last_print: Option<Instant>,
}

/// Decides which messages to print: the first of each type at once, then
/// at most one per type every [`LOG_EVERY`], the latest sample.
#[derive(Debug, Default)]
pub struct CryptoLog {
    kinds: [KindState; EventKind::COUNT],
}

impl CryptoLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sample read from `source` (a worker, or a CPU for the classifier's
    /// samples); `generation` changes whenever that source has a newer one
    /// (0: none yet). Samples seen before are ignored.
    pub fn observe(&mut self, source: usize, generation: u64, ev: CryptoEvent) {
        let st = &mut self.kinds[ev.kind() as usize];
        if st.seen.len() <= source {
            st.seen.resize(source + 1, 0);
        }
        if generation != 0 && st.seen[source] != generation {
            st.seen[source] = generation;
            st.pending = Some(ev);
        }
    }

    /// The messages to print now.
    pub fn due(&mut self, now: Instant) -> Vec<CryptoEvent> {
        let mut out = Vec::new();
        for st in &mut self.kinds {
            let Some(ev) = st.pending else { continue };
            let allowed = match st.last_print {
                None => true,
                Some(t) => now.saturating_duration_since(t) >= LOG_EVERY,
            };
            if allowed {
                out.push(ev);
                st.pending = None;
                st.last_print = Some(now);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn spi_as_ios_prints_it() {
        assert_eq!(ios_spi(0x3F9A1A49), "0x3F9A1A49(1067063881)");
        assert_eq!(ios_spi(0xFFFF_FFFF), "0xFFFFFFFF(4294967295)");
        assert_eq!(ios_spi(0x100), "0x100(256)");
    }

    #[test]
    fn messages_in_ios_text() {
        let inv = CryptoEvent::InvalidSpi {
            dst: a("172.16.172.10"),
            src: a("172.16.172.20"),
            spi: 0x3F9A1A49,
        };
        assert_eq!(
            inv.to_string(),
            "%CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd IPSEC packet has invalid spi for destaddr=172.16.172.10, prot=50, spi=0x3F9A1A49(1067063881), srcaddr=172.16.172.20"
        );
        let rep = CryptoEvent::Replay {
            conn_id: 2001,
            seq: 1234,
        };
        assert_eq!(
            rep.to_string(),
            "%CRYPTO-4-PKT_REPLAY_ERR: decrypt: replay check failed connection id=2001, sequence number=1234"
        );
        let mac = CryptoEvent::MacError { conn_id: 2001 };
        assert_eq!(
            mac.to_string(),
            "%CRYPTO-4-RECVD_PKT_MAC_ERR: decrypt: mac verify failed for connection id=2001"
        );
        let clear = CryptoEvent::NotIpsec {
            dst: a("10.1.1.2"),
            src: a("10.1.2.2"),
            proto: 1,
        };
        assert_eq!(
            clear.to_string(),
            "%CRYPTO-4-RECVD_PKT_NOT_IPSEC: Rec'd packet not an IPSEC packet. (ip) vrf/dest_addr= /10.1.1.2, src_addr= 10.1.2.2, prot= 1"
        );
    }

    #[test]
    fn slots_carry_every_event_type() {
        let evs = [
            CryptoEvent::InvalidSpi {
                dst: a("255.1.2.3"),
                src: a("4.5.6.255"),
                spi: 0xFFFF_FFFF,
            },
            CryptoEvent::Replay {
                conn_id: u32::MAX,
                seq: u32::MAX,
            },
            CryptoEvent::MacError { conn_id: 7 },
            CryptoEvent::NotIpsec {
                dst: a("10.1.1.2"),
                src: a("10.1.2.2"),
                proto: 255,
            },
        ];
        let slots = EventSlots::default();
        for k in EventKind::ALL {
            assert_eq!(slots.read(k), None);
        }
        let mut l = LatestEvents::default();
        for e in evs {
            l.record(e);
        }
        slots.publish(&mut l);
        assert!(l.is_empty(), "publishing empties the batch's events");
        for e in evs {
            assert_eq!(slots.read(e.kind()), Some((1, e)));
        }
        // The latest of a batch wins; the generation moves.
        l.record(CryptoEvent::MacError { conn_id: 8 });
        l.record(CryptoEvent::MacError { conn_id: 9 });
        slots.publish(&mut l);
        assert_eq!(
            slots.read(EventKind::MacError),
            Some((2, CryptoEvent::MacError { conn_id: 9 }))
        );
        assert_eq!(slots.read(EventKind::Replay).unwrap().0, 1);
    }

    #[test]
    fn slot_reads_are_never_torn() {
        let slots = std::sync::Arc::new(EventSlots::default());
        let w = slots.clone();
        let writer = std::thread::spawn(move || {
            for i in 1..=200_000u32 {
                let mut l = LatestEvents::default();
                l.record(CryptoEvent::Replay { conn_id: i, seq: i });
                w.publish(&mut l);
            }
        });
        while !writer.is_finished() {
            if let Some((_, CryptoEvent::Replay { conn_id, seq })) = slots.read(EventKind::Replay) {
                assert_eq!(conn_id, seq, "a read mixed two samples");
            }
        }
        writer.join().unwrap();
        assert_eq!(
            slots.read(EventKind::Replay),
            Some((
                200_000,
                CryptoEvent::Replay {
                    conn_id: 200_000,
                    seq: 200_000
                }
            ))
        );
    }

    #[test]
    fn first_at_once_then_one_per_ten_seconds_per_type() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let mac = |c| CryptoEvent::MacError { conn_id: c };
        let rep = |q| CryptoEvent::Replay { conn_id: 1, seq: q };
        let mut log = CryptoLog::new();
        assert!(log.due(t0).is_empty(), "nothing happened yet");

        // First occurrence: printed in the same turn.
        log.observe(0, 1, mac(1));
        assert_eq!(log.due(t0), vec![mac(1)]);
        // The same sample again is not news.
        log.observe(0, 1, mac(1));
        assert!(log.due(t0 + ms(200)).is_empty());

        // Many more within 10 s: nothing until 10 s after the last line,
        // then one line, the latest sample (from any worker).
        log.observe(0, 2, mac(2));
        log.observe(1, 1, mac(3));
        assert!(log.due(t0 + s(1)).is_empty());
        log.observe(0, 3, mac(4));
        assert!(log.due(t0 + ms(9_999)).is_empty());
        // Another type is not held back by this one.
        log.observe(0, 1, rep(77));
        assert_eq!(log.due(t0 + ms(9_999)), vec![rep(77)]);
        assert_eq!(log.due(t0 + s(10)), vec![mac(4)]);
        assert!(log.due(t0 + s(11)).is_empty(), "nothing new");

        // Still coming: one every 10 s.
        log.observe(1, 2, mac(5));
        assert!(log.due(t0 + s(15)).is_empty());
        log.observe(1, 3, mac(6));
        assert_eq!(log.due(t0 + s(20)), vec![mac(6)]);

        // Quiet for long: the next one is printed at once.
        log.observe(0, 4, mac(7));
        assert_eq!(log.due(t0 + s(95)), vec![mac(7)]);

        // A source with no sample yet (generation 0) is not an event.
        log.observe(5, 0, mac(8));
        assert!(log.due(t0 + s(200)).is_empty());
    }

    #[test]
    fn a_line_rate_burst_is_a_handful_of_lines() {
        // 100 events a tick (200 ms) for a minute from two workers: the
        // first line at once, then one every 10 s.
        let t0 = Instant::now();
        let mut log = CryptoLog::new();
        let mut lines = 0;
        let mut gen = 0;
        for tick in 0..300u64 {
            for _ in 0..100 {
                gen += 1;
                log.observe(
                    (gen % 2) as usize,
                    gen,
                    CryptoEvent::InvalidSpi {
                        dst: a("172.16.172.10"),
                        src: a("172.16.172.20"),
                        spi: gen as u32,
                    },
                );
            }
            lines += log.due(t0 + Duration::from_millis(200 * tick)).len();
        }
        assert_eq!(lines, 6, "at 0, 10, 20, 30, 40 and 50 s");
    }
}
