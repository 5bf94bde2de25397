//! The reader's (dataplane's) side of a region: generation checks, snapshots, lookups,
//! counters, sequence-number reservation and posting sa_requests.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::layout::{hdr, Layout, COUNTER_WORDS, FLAG_RETIRED, RECORD_BYTES, RECORD_WORDS};
use crate::region::Shared;
use crate::ring::{self, PostOutcome, SaRequest};
use crate::{
    index_home, meta_incarnation, meta_state, wipe_bytes, wipe_words, words_to_bytes, Direction,
    Geometry, GlobalCounters, MapName, OpenError, ProxyIdentity, ReadError, SaCounters, SaDb,
    SaEntry, SaRecord, SaState, SeqError, SlotId, Snapshot, INDEX_EMPTY, INDEX_TOMBSTONE,
    STALL_TIMEOUT,
};

/// A reader's (dataplane's) handle on a region. Cheap to clone; `Send + Sync`; all
/// methods take `&self`, so worker threads can share one or each hold a clone.
#[derive(Clone)]
pub struct SaDbReader {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SaDbReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaDbReader")
            .field("path", &self.shared.path)
            .field("capacity", &self.shared.layout.geometry.capacity)
            .finish()
    }
}

/// Waiting for a writer to finish: spins first, then yields; gives up after
/// [`STALL_TIMEOUT`]. The clock is read only once spinning did not help.
#[derive(Default)]
struct Backoff {
    attempt: u32,
    yielding_since: Option<Instant>,
}

impl Backoff {
    /// Waits a little; false once the writer has been stalled for too long.
    fn wait(&mut self) -> bool {
        self.attempt += 1;
        if self.attempt < 64 {
            std::hint::spin_loop();
            return true;
        }
        std::thread::yield_now();
        self.yielding_since
            .get_or_insert_with(Instant::now)
            .elapsed()
            < STALL_TIMEOUT
    }
}

impl SaDbReader {
    #[inline]
    pub(crate) fn words(&self) -> &[AtomicU64] {
        self.shared.words()
    }
    #[inline]
    pub(crate) fn layout(&self) -> &Layout {
        &self.shared.layout
    }

    /// The path of the region file (`None` for in-memory regions).
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// Opens the region at this reader's path again: after [`SaDbReader::is_retired`],
    /// this is the new region.
    pub fn reopen(&self) -> Result<SaDbReader, OpenError> {
        match self.path() {
            Some(p) => SaDb::open(p),
            None => Ok(self.clone()),
        }
    }

    /// The region's geometry (SA capacity, ring size, request-table size).
    pub fn geometry(&self) -> Geometry {
        self.layout().geometry
    }

    /// Number of SA slots.
    pub fn capacity(&self) -> u32 {
        self.layout().geometry.capacity
    }

    /// The generation counter: one atomic load. It changes (by 2; odd while a change is in
    /// progress) whenever an SA is installed, updated, marked dying or deleted, and when
    /// the region is retired. Workers compare it between batches with the value of their
    /// last [`Snapshot::generation`].
    #[inline]
    pub fn generation(&self) -> u64 {
        self.words()[hdr::GENERATION].load(Ordering::Acquire)
    }

    /// True once the writer replaced this region with a new file at the same path: reopen
    /// it with [`SaDb::open`].
    pub fn is_retired(&self) -> bool {
        self.words()[hdr::FLAGS].load(Ordering::Acquire) & FLAG_RETIRED != 0
    }

    /// Copies slot `slot` out under its sequence lock: (meta word, record words).
    fn read_raw(&self, slot: usize) -> Result<(u64, [u64; RECORD_WORDS]), ReadError> {
        let w = self.words();
        let base = self.layout().slot_word(slot);
        let mut backoff = Backoff::default();
        loop {
            let s1 = w[base].load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let meta = w[base + 1].load(Ordering::Relaxed);
                let mut rec = [0u64; RECORD_WORDS];
                if meta & 0xff != 0 {
                    for (j, v) in rec.iter_mut().enumerate() {
                        *v = w[base + 2 + j].load(Ordering::Relaxed);
                    }
                }
                fence(Ordering::Acquire);
                let s2 = w[base].load(Ordering::Relaxed);
                if s1 == s2 {
                    return Ok((meta, rec));
                }
                wipe_words(&mut rec);
            }
            if !backoff.wait() {
                return Err(ReadError::WriterStalled);
            }
        }
    }

    fn decode_slot(
        &self,
        slot: usize,
        meta: u64,
        mut words: [u64; RECORD_WORDS],
    ) -> Result<Option<SaEntry>, ReadError> {
        let slot_id = SlotId(slot as u32);
        let state = meta_state(meta).ok_or(ReadError::CorruptRecord {
            slot: slot as u32,
            why: "state",
        })?;
        if state == SaState::Free {
            return Ok(None);
        }
        let mut bytes = [0u8; RECORD_BYTES];
        words_to_bytes(&words, &mut bytes);
        wipe_words(&mut words);
        let rec = SaRecord::decode(&bytes);
        wipe_bytes(&mut bytes);
        let record = rec.map_err(|e| ReadError::CorruptRecord {
            slot: slot as u32,
            why: e.0,
        })?;
        Ok(Some(SaEntry {
            slot: slot_id,
            incarnation: meta_incarnation(meta),
            state,
            record,
        }))
    }

    /// Reads one slot: `None` if it is free. Never returns a torn record.
    pub fn read_slot(&self, slot: SlotId) -> Result<Option<SaEntry>, ReadError> {
        if slot.0 >= self.capacity() {
            return Err(ReadError::NoSuchSlot(slot.0));
        }
        let (meta, words) = self.read_raw(slot.index())?;
        self.decode_slot(slot.index(), meta, words)
    }

    /// Reads a slot *without* its sequence lock. Only for tests that show that the
    /// lock-free path would tear; never use it.
    #[doc(hidden)]
    pub fn read_slot_unlocked(&self, slot: SlotId) -> Result<Option<SaEntry>, ReadError> {
        if slot.0 >= self.capacity() {
            return Err(ReadError::NoSuchSlot(slot.0));
        }
        let w = self.words();
        let base = self.layout().slot_word(slot.index());
        let meta = w[base + 1].load(Ordering::Relaxed);
        let mut rec = [0u64; RECORD_WORDS];
        for (j, v) in rec.iter_mut().enumerate() {
            *v = w[base + 2 + j].load(Ordering::Relaxed);
        }
        self.decode_slot(slot.index(), meta, rec)
    }

    /// Every active and dying SA. Each record is read under its sequence lock; the whole
    /// set is consistent with `Snapshot::generation` unless the writer kept changing the
    /// region (see [`Snapshot::generation`]). Fails only if a slot stays mid-write for
    /// [`STALL_TIMEOUT`].
    pub fn snapshot_all(&self) -> Result<Snapshot, ReadError> {
        let mut first_gen = None;
        let mut backoff = Backoff::default();
        loop {
            let g1 = self.generation();
            if g1 & 1 == 1 && backoff.wait() {
                continue;
            }
            let first = *first_gen.get_or_insert(g1);
            let mut snap = Snapshot {
                generation: first,
                ..Snapshot::default()
            };
            for i in 0..self.capacity() as usize {
                let (meta, words) = self.read_raw(i)?;
                match self.decode_slot(i, meta, words) {
                    Ok(Some(e)) => snap.entries.push(e),
                    Ok(None) => {}
                    Err(ReadError::CorruptRecord { slot, why }) => {
                        snap.corrupt.push((SlotId(slot), why))
                    }
                    Err(e) => return Err(e),
                }
            }
            fence(Ordering::Acquire);
            let g2 = self.words()[hdr::GENERATION].load(Ordering::Relaxed);
            if g1 == g2 && g1 & 1 == 0 {
                snap.generation = g1;
                snap.consistent = true;
                return Ok(snap);
            }
            if backoff.attempt > 8 || !backoff.wait() {
                // Consistent per record; tagged with the first generation seen so the
                // caller's next generation check triggers another read.
                return Ok(snap);
            }
        }
    }

    /// The inbound SA with this SPI, through the SPI index.
    pub fn lookup_inbound(&self, spi: u32) -> Result<Option<SaEntry>, ReadError> {
        let w = self.words();
        let l = *self.layout();
        let mut backoff = Backoff::default();
        loop {
            let g1 = w[hdr::GENERATION].load(Ordering::Acquire);
            if g1 & 1 == 0 {
                let mut cand = None;
                let home = index_home(spi, l.index_buckets);
                for i in 0..l.index_buckets {
                    let e =
                        w[l.index_word((home + i) & (l.index_buckets - 1))].load(Ordering::Relaxed);
                    if e == INDEX_EMPTY {
                        break;
                    }
                    if e != INDEX_TOMBSTONE && (e >> 32) as u32 == spi {
                        cand = Some(((e & 0xffff_ffff) as usize).wrapping_sub(1));
                        break;
                    }
                }
                fence(Ordering::Acquire);
                let g2 = w[hdr::GENERATION].load(Ordering::Relaxed);
                if g1 == g2 {
                    match cand {
                        None => return Ok(None),
                        Some(slot) if slot < l.geometry.capacity as usize => {
                            let (meta, words) = self.read_raw(slot)?;
                            if let Some(e) = self.decode_slot(slot, meta, words)? {
                                if e.record.direction == Direction::Inbound && e.record.spi == spi {
                                    return Ok(Some(e));
                                }
                            }
                            // Changed after we read the index: look again.
                        }
                        Some(_) => {
                            return Err(ReadError::CorruptRecord {
                                slot: u32::MAX,
                                why: "SPI index entry out of range",
                            })
                        }
                    }
                }
            }
            if !backoff.wait() {
                return Err(ReadError::WriterStalled);
            }
        }
    }

    /// The outbound SA of a crypto-map entry, peer and proxy identities: Active before
    /// Dying, then the newest. A scan of all slots (control and refresh paths, not per
    /// packet).
    pub fn lookup_outbound(
        &self,
        crypto_map: &MapName,
        crypto_map_seq: u32,
        peer: std::net::Ipv4Addr,
        proxy: &ProxyIdentity,
    ) -> Result<Option<SaEntry>, ReadError> {
        let snap = self.snapshot_all()?;
        Ok(snap
            .entries
            .into_iter()
            .filter(|e| {
                let r = &e.record;
                r.direction == Direction::Outbound
                    && r.crypto_map == *crypto_map
                    && r.crypto_map_seq == crypto_map_seq
                    && *r.peer.ip() == peer
                    && r.proxy == *proxy
            })
            .max_by_key(|e| {
                (
                    e.state == SaState::Active,
                    e.record.created_at,
                    e.incarnation,
                )
            }))
    }

    /// The counters of one slot (`None` if out of range). Counters belong to the slot's
    /// current SA: they are reset when an SA is installed there.
    #[inline]
    pub fn counters(&self, slot: SlotId) -> Option<SaCounters<'_>> {
        if slot.0 >= self.capacity() {
            return None;
        }
        let base = self.layout().counter_word(slot.index());
        Some(SaCounters {
            w: &self.words()[base..base + COUNTER_WORDS],
        })
    }

    /// Reserves `n` outbound sequence numbers of the SA in `slot` with one `fetch_add`
    /// (a batch's worth). Unique across workers and dataplane restarts; never wraps.
    #[inline]
    pub fn reserve_outbound_seq(&self, slot: SlotId, n: u64) -> Result<Range<u64>, SeqError> {
        self.counters(slot)
            .ok_or(SeqError::NoSuchSlot(slot.0))?
            .reserve_seq(n)
    }

    /// The dataplane-global counters.
    #[inline]
    pub fn global(&self) -> GlobalCounters<'_> {
        GlobalCounters {
            w: &self.words()
                [hdr::GLOBAL_COUNTERS..hdr::GLOBAL_COUNTERS + hdr::GLOBAL_COUNTER_WORDS],
        }
    }

    /// Posts an sa_request (worker side): at most one per crypto-map entry (name, seq,
    /// rule) per request interval across all workers; never blocks; a full ring counts
    /// [`GlobalCounter::SaRequestOverflow`]. `now_ms` is [`monotonic_ms`] (any clock shared
    /// by all processes; tests pass their own).
    pub fn post_sa_request(&self, req: &SaRequest, now_ms: u64) -> PostOutcome {
        ring::post(self.words(), self.layout(), req, now_ms)
    }

    /// sa_request events waiting for control.
    pub fn pending_sa_requests(&self) -> u64 {
        ring::pending(self.words())
    }

    /// The minimum interval between two requests of one crypto-map entry.
    pub fn request_interval_ms(&self) -> u64 {
        self.words()[hdr::REQUEST_INTERVAL_MS].load(Ordering::Relaxed)
    }

    /// A copy of the whole region's bytes (each word read atomically; not a consistent
    /// snapshot while others write). For tools and tests; contains live keys: zeroize it.
    pub fn image(&self) -> Vec<u8> {
        self.words()
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    /// PID of the process that created or last attached as writer.
    pub fn writer_pid(&self) -> u32 {
        self.words()[hdr::WRITER_PID].load(Ordering::Relaxed) as u32
    }
}
