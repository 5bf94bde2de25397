//! The writer's (control's) side of a region: install, update, mark dying, delete, repair
//! after a crashed writer, and consuming sa_requests.

use std::fs::File;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use crate::layout::{hdr, Layout, RECORD_BYTES, RECORD_WORDS};
use crate::region::Shared;
use crate::ring::{self, SaRequest};
use crate::{
    bytes_to_words, index_entry, index_home, make_meta, meta_incarnation, meta_state, wipe_bytes,
    wipe_words, Direction, MapName, SaDbReader, SaEntry, SaRecord, SaState, SlotId, WriteError,
    INDEX_EMPTY, INDEX_TOMBSTONE,
};

/// The writer's (control's) handle: installs, updates and deletes SAs and consumes
/// sa_request events. There is one per region (enforced with `flock` for files).
/// [`SaDbWriter::reader`] gives the read side (counters for `show`, lookups).
pub struct SaDbWriter {
    reader: SaDbReader,
    consumer: ring::Consumer,
    _lock: Option<File>,
}

impl std::fmt::Debug for SaDbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaDbWriter")
            .field("reader", &self.reader)
            .finish()
    }
}

impl SaDbWriter {
    pub(crate) fn new(shared: Shared, lock: Option<File>) -> SaDbWriter {
        SaDbWriter {
            reader: SaDbReader {
                shared: Arc::new(shared),
            },
            consumer: ring::Consumer::default(),
            _lock: lock,
        }
    }

    /// The read side of this region (lookups, counters, snapshot). Clone it to hand it out.
    pub fn reader(&self) -> &SaDbReader {
        &self.reader
    }

    #[inline]
    fn words(&self) -> &[AtomicU64] {
        self.reader.words()
    }
    #[inline]
    fn layout(&self) -> Layout {
        *self.reader.layout()
    }

    fn gen_begin(&self) {
        let g = &self.words()[hdr::GENERATION];
        let v = g.load(Ordering::Relaxed);
        g.store(v | 1, Ordering::Relaxed);
        fence(Ordering::Release);
    }

    fn gen_end(&self) {
        let g = &self.words()[hdr::GENERATION];
        let v = g.load(Ordering::Relaxed);
        g.store((v | 1).wrapping_add(1), Ordering::Release);
    }

    fn meta(&self, slot: usize) -> u64 {
        self.words()[self.layout().slot_word(slot) + 1].load(Ordering::Relaxed)
    }

    /// (spi, direction byte) of a slot's record, read directly (the writer is the only
    /// mutator).
    fn spi_dir(&self, slot: usize) -> (u32, u8) {
        let w0 = self.words()[self.layout().slot_word(slot) + 2].load(Ordering::Relaxed);
        (w0 as u32, (w0 >> 32) as u8)
    }

    /// Writes a slot under its sequence lock; `rec = None` zeroes the record (keys too).
    fn write_slot(&self, slot: usize, meta: u64, rec: Option<&[u64; RECORD_WORDS]>) {
        let w = self.words();
        let base = self.layout().slot_word(slot);
        let s = w[base].load(Ordering::Relaxed);
        w[base].store(s | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        w[base + 1].store(meta, Ordering::Relaxed);
        for j in 0..RECORD_WORDS {
            w[base + 2 + j].store(rec.map_or(0, |r| r[j]), Ordering::Relaxed);
        }
        w[base].store((s | 1).wrapping_add(1), Ordering::Release);
    }

    fn index_find(&self, spi: u32) -> Option<(usize, usize)> {
        let l = self.layout();
        let w = self.words();
        let home = index_home(spi, l.index_buckets);
        for i in 0..l.index_buckets {
            let b = (home + i) & (l.index_buckets - 1);
            let e = w[l.index_word(b)].load(Ordering::Relaxed);
            if e == INDEX_EMPTY {
                return None;
            }
            if e != INDEX_TOMBSTONE && (e >> 32) as u32 == spi {
                return Some((b, ((e & 0xffff_ffff) as usize).wrapping_sub(1)));
            }
        }
        None
    }

    fn index_insert(&self, spi: u32, slot: usize) {
        let l = self.layout();
        let w = self.words();
        let home = index_home(spi, l.index_buckets);
        for i in 0..l.index_buckets {
            let b = l.index_word((home + i) & (l.index_buckets - 1));
            let e = w[b].load(Ordering::Relaxed);
            if e == INDEX_EMPTY || e == INDEX_TOMBSTONE {
                if e == INDEX_TOMBSTONE {
                    w[hdr::TOMBSTONES].fetch_sub(1, Ordering::Relaxed);
                }
                w[b].store(index_entry(spi, slot), Ordering::Relaxed);
                return;
            }
        }
        // Unreachable while buckets >= 2 * capacity; a rebuild restores the invariant.
        self.index_rebuild();
    }

    fn index_remove(&self, spi: u32) {
        let l = self.layout();
        if let Some((b, _)) = self.index_find(spi) {
            self.words()[l.index_word(b)].store(INDEX_TOMBSTONE, Ordering::Relaxed);
            let t = self.words()[hdr::TOMBSTONES].fetch_add(1, Ordering::Relaxed) + 1;
            if (t as usize).saturating_mul(4) > l.index_buckets {
                self.index_rebuild();
            }
        }
    }

    /// Rebuilds the SPI index from the slots. Called with the generation odd.
    fn index_rebuild(&self) {
        let l = self.layout();
        let w = self.words();
        for b in 0..l.index_buckets {
            w[l.index_word(b)].store(INDEX_EMPTY, Ordering::Relaxed);
        }
        w[hdr::TOMBSTONES].store(0, Ordering::Relaxed);
        for s in 0..l.geometry.capacity as usize {
            let st = meta_state(self.meta(s));
            if matches!(st, Some(SaState::Active | SaState::Dying)) {
                let (spi, dir) = self.spi_dir(s);
                if dir == 1 && self.index_find(spi).is_none() {
                    self.index_insert(spi, s);
                }
            }
        }
    }

    /// Clears slots a crashed writer left mid-write, rebuilds the index, republishes.
    pub(crate) fn repair(&mut self) {
        let l = self.layout();
        let w = self.words();
        self.gen_begin();
        for s in 0..l.geometry.capacity as usize {
            let base = l.slot_word(s);
            let seq = w[base].load(Ordering::Relaxed);
            let meta = w[base + 1].load(Ordering::Relaxed);
            if seq & 1 == 1 || meta_state(meta).is_none() {
                // Half-written (or garbage) slot: drop it, zero its keys.
                w[base].store(seq & !1, Ordering::Relaxed);
                self.write_slot(s, make_meta(SaState::Free, meta_incarnation(meta)), None);
            }
        }
        self.index_rebuild();
        w[hdr::WRITER_PID].store(u64::from(std::process::id()), Ordering::Relaxed);
        self.gen_end();
    }

    fn alloc(&self) -> Result<usize, WriteError> {
        let cap = self.layout().geometry.capacity as usize;
        let cursor = self.words()[hdr::ALLOC_CURSOR].load(Ordering::Relaxed) as usize % cap;
        (0..cap)
            .map(|i| (cursor + i) % cap)
            .find(|&s| meta_state(self.meta(s)) == Some(SaState::Free))
            .ok_or(WriteError::Full)
    }

    fn encode(rec: &SaRecord) -> Result<[u64; RECORD_WORDS], WriteError> {
        let mut bytes = [0u8; RECORD_BYTES];
        let r = rec.encode(&mut bytes);
        let mut words = [0u64; RECORD_WORDS];
        bytes_to_words(&bytes, &mut words);
        wipe_bytes(&mut bytes);
        match r {
            Ok(()) => Ok(words),
            Err(e) => {
                wipe_words(&mut words);
                Err(WriteError::InvalidRecord(e.0))
            }
        }
    }

    fn live_slot(&self, slot: SlotId) -> Result<u64, WriteError> {
        if slot.0 >= self.layout().geometry.capacity {
            return Err(WriteError::NoSuchSlot(slot.0));
        }
        let meta = self.meta(slot.index());
        match meta_state(meta) {
            Some(SaState::Active | SaState::Dying) => Ok(meta),
            _ => Err(WriteError::NoSuchSlot(slot.0)),
        }
    }

    /// Installs an SA in a free slot (the least recently freed one, round robin), resets
    /// its counters and outbound sequence counter, indexes inbound SPIs, and bumps the
    /// generation. Inbound SPIs must be unique.
    pub fn install(&mut self, rec: &SaRecord) -> Result<SlotId, WriteError> {
        let mut words = Self::encode(rec)?;
        if rec.direction == Direction::Inbound && self.index_find(rec.spi).is_some() {
            wipe_words(&mut words);
            return Err(WriteError::DuplicateInboundSpi(rec.spi));
        }
        let slot = match self.alloc() {
            Ok(s) => s,
            Err(e) => {
                wipe_words(&mut words);
                return Err(e);
            }
        };
        let inc = meta_incarnation(self.meta(slot)).wrapping_add(1);
        let limit = if rec.esn {
            u64::MAX - 1
        } else {
            u64::from(u32::MAX)
        };
        self.gen_begin();
        if let Some(c) = self.reader.counters(SlotId(slot as u32)) {
            c.reset(limit);
        }
        self.write_slot(slot, make_meta(SaState::Active, inc), Some(&words));
        wipe_words(&mut words);
        if rec.direction == Direction::Inbound {
            self.index_insert(rec.spi, slot);
        }
        self.words()[hdr::ALLOC_CURSOR].store(slot as u64 + 1, Ordering::Relaxed);
        self.gen_end();
        Ok(SlotId(slot as u32))
    }

    /// Rewrites the SA in `slot` in place (for example a new peer port after a NAT
    /// mapping change). SPI and direction must stay the same; counters and the sequence
    /// counter are kept.
    pub fn update(&mut self, slot: SlotId, rec: &SaRecord) -> Result<(), WriteError> {
        let meta = self.live_slot(slot)?;
        let (spi, dir) = self.spi_dir(slot.index());
        let want_dir = if rec.direction == Direction::Inbound {
            1
        } else {
            2
        };
        if spi != rec.spi || dir != want_dir {
            return Err(WriteError::InvalidRecord(
                "update may not change SPI or direction",
            ));
        }
        let mut words = Self::encode(rec)?;
        self.gen_begin();
        self.write_slot(slot.index(), meta, Some(&words));
        wipe_words(&mut words);
        self.gen_end();
        Ok(())
    }

    /// Marks an SA as being replaced (rekeyed): inbound traffic still uses it, outbound
    /// prefers the newer Active SA.
    pub fn mark_dying(&mut self, slot: SlotId) -> Result<(), WriteError> {
        let meta = self.live_slot(slot)?;
        let mut words = [0u64; RECORD_WORDS];
        let base = self.layout().slot_word(slot.index());
        for (j, v) in words.iter_mut().enumerate() {
            *v = self.words()[base + 2 + j].load(Ordering::Relaxed);
        }
        self.gen_begin();
        self.write_slot(
            slot.index(),
            make_meta(SaState::Dying, meta_incarnation(meta)),
            Some(&words),
        );
        wipe_words(&mut words);
        self.gen_end();
        Ok(())
    }

    /// Deletes an SA: the slot is zeroed (keys included) under its sequence lock, the SPI
    /// leaves the index, the generation moves. Its counters stay readable until the slot
    /// is reused.
    pub fn delete(&mut self, slot: SlotId) -> Result<(), WriteError> {
        let meta = self.live_slot(slot)?;
        let (spi, dir) = self.spi_dir(slot.index());
        self.gen_begin();
        self.write_slot(
            slot.index(),
            make_meta(SaState::Free, meta_incarnation(meta)),
            None,
        );
        if dir == 1 {
            self.index_remove(spi);
        }
        self.gen_end();
        Ok(())
    }

    /// Every SA in the region (the writer's view; same as the reader's snapshot). A
    /// restarted control process uses it to adopt or purge the SAs it finds.
    pub fn entries(&self) -> Vec<SaEntry> {
        self.reader
            .snapshot_all()
            .map(|s| s.entries)
            .unwrap_or_default()
    }

    /// Deletes every SA (keys zeroed). Returns how many there were.
    pub fn delete_all(&mut self) -> usize {
        let cap = self.layout().geometry.capacity;
        (0..cap).filter(|&s| self.delete(SlotId(s)).is_ok()).count()
    }

    /// Deletes the SAs whose time lifetime has run out at `now_unix` (seconds since the
    /// epoch): `created_at + lifetime_secs <= now_unix`, lifetime 0 meaning none. A
    /// restarted control process that adopts the SAs it finds calls this periodically.
    /// Returns the deleted SAs' (slot, SPI, direction).
    pub fn delete_expired(&mut self, now_unix: u64) -> Vec<(SlotId, u32, Direction)> {
        let expired: Vec<(SlotId, u32, Direction)> = self
            .entries()
            .into_iter()
            .filter(|e| {
                let r = &e.record;
                r.lifetime_secs != 0 && r.created_at.saturating_add(r.lifetime_secs) <= now_unix
            })
            .map(|e| (e.slot, e.record.spi, e.record.direction))
            .collect();
        expired
            .into_iter()
            .filter(|(slot, _, _)| self.delete(*slot).is_ok())
            .collect()
    }

    /// Takes the next sa_request event, if any (control side). `now_ms` is
    /// [`monotonic_ms`]; it decides when a cell claimed by a dead producer is skipped.
    pub fn poll_sa_request(&mut self, now_ms: u64) -> Option<SaRequest> {
        let l = self.layout();
        self.consumer.poll(self.reader.words(), &l, now_ms)
    }

    /// Sets the minimum interval between two requests of one crypto-map entry.
    pub fn set_request_interval_ms(&mut self, ms: u64) {
        self.words()[hdr::REQUEST_INTERVAL_MS].store(ms, Ordering::Relaxed);
    }

    /// Lets the next packet of this crypto-map entry (and rule) request at once, for
    /// example after a negotiation failed or the SA was deleted.
    pub fn clear_request_rate_limit(
        &mut self,
        crypto_map: &MapName,
        crypto_map_seq: u32,
        acl_rule: Option<u32>,
    ) {
        let l = self.layout();
        ring::clear_rate_limit(
            self.reader.words(),
            &l,
            crypto_map,
            crypto_map_seq,
            acl_rule,
        );
    }
}
