//! The byte layout of the shared region, and the validation of its header.
//!
//! Everything in the region is a little-endian (host order, x86-64 / aarch64) 64-bit word
//! accessed atomically. Offsets below are in bytes from the start of the file.
//!
//! ```text
//! 0       header (4096 bytes)
//!           line 0-2  static geometry: magic, version, sizes, offsets, checksum (FNV-1a)
//!           256       generation | flags | request interval ms | writer pid | alloc cursor | tombstones
//!           320       sa_request ring tail   (producers: workers)
//!           384       sa_request ring head   (consumer: control)
//!           512..1024 global counters, 64 words: drops by DropReason, then GlobalCounter
//! 4096    SA slots, capacity x 256 bytes:   seqlock word, state|incarnation word, 192-byte record
//! ...     SA counters, capacity x 256 bytes: next outbound seq, packets, bytes, drops by DropReason
//! ...     SPI index, buckets x 8 bytes (open addressing, linear probing)
//! ...     sa_request ring, ring_capacity x 128 bytes (per-cell sequence + payload)
//! ...     request table, request_entries x 16 bytes (key hash, last-requested ms)
//! ```
//! Each section starts on a 64-byte boundary, so record data and counters never share a
//! cache line.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::OpenError;

/// "ESPGWSDB" read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ESPGWSDB");
/// Bumped on every incompatible change of this layout.
pub const LAYOUT_VERSION: u64 = 2;
/// Size of the header in bytes.
pub const HEADER_BYTES: usize = 4096;
/// Size of one SA slot (sequence lock, meta word, record, padding).
pub const SLOT_BYTES: usize = 256;
/// Size of the encoded SA record inside a slot.
pub const RECORD_BYTES: usize = 192;
/// Size of one SA's counter block.
pub const COUNTER_BYTES: usize = 256;
/// Size of one sa_request ring cell.
pub const RING_CELL_BYTES: usize = 128;
/// Size of one request-table entry (dedup and rate limit per crypto-map entry).
pub const REQTAB_ENTRY_BYTES: usize = 16;
/// Largest SA capacity a region may declare.
pub const MAX_CAPACITY: u64 = 1 << 20;
/// Largest ring capacity a region may declare.
pub const MAX_RING: u64 = 1 << 16;
/// Largest request table a region may declare.
pub const MAX_REQTAB: u64 = 1 << 16;

pub(crate) const SLOT_WORDS: usize = SLOT_BYTES / 8;
pub(crate) const RECORD_WORDS: usize = RECORD_BYTES / 8;
pub(crate) const COUNTER_WORDS: usize = COUNTER_BYTES / 8;
pub(crate) const RING_CELL_WORDS: usize = RING_CELL_BYTES / 8;
pub(crate) const REQTAB_ENTRY_WORDS: usize = REQTAB_ENTRY_BYTES / 8;
// A slot is the sequence word, the state|incarnation word and the record.
const _: () = assert!(2 + RECORD_WORDS <= SLOT_WORDS);

/// Word indices in the header.
pub(crate) mod hdr {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const HEADER_BYTES: usize = 2;
    pub const TOTAL_BYTES: usize = 3;
    pub const CAPACITY: usize = 4;
    pub const SLOT_BYTES: usize = 5;
    pub const RECORD_BYTES: usize = 6;
    pub const COUNTER_BYTES: usize = 7;
    pub const INDEX_BUCKETS: usize = 8;
    pub const RING_CAPACITY: usize = 9;
    pub const RING_CELL_BYTES: usize = 10;
    pub const REQTAB_ENTRIES: usize = 11;
    pub const SLOTS_OFF: usize = 12;
    pub const COUNTERS_OFF: usize = 13;
    pub const INDEX_OFF: usize = 14;
    pub const RING_OFF: usize = 15;
    pub const REQTAB_OFF: usize = 16;
    pub const CREATED_UNIX: usize = 17;
    pub const CHECKSUM: usize = 18;
    /// Number of words covered by the checksum.
    pub const STATIC_WORDS: usize = 18;

    pub const GENERATION: usize = 32;
    pub const FLAGS: usize = 33;
    pub const REQUEST_INTERVAL_MS: usize = 34;
    pub const WRITER_PID: usize = 35;
    pub const ALLOC_CURSOR: usize = 36;
    pub const TOMBSTONES: usize = 37;

    pub const RING_TAIL: usize = 40;
    pub const RING_HEAD: usize = 48;

    pub const GLOBAL_COUNTERS: usize = 64;
    pub const GLOBAL_COUNTER_WORDS: usize = 64;
}

/// Header flag: the region was replaced by a newer one at the same path; reopen it.
pub const FLAG_RETIRED: u64 = 1;

/// The sizes a region is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Number of SA slots (1 ..= 2^20).
    pub capacity: u32,
    /// sa_request ring capacity, a power of two (2 ..= 2^16).
    pub ring_capacity: u32,
    /// Entries in the per-crypto-map-entry request table, a power of two (2 ..= 2^16).
    pub request_entries: u32,
}

impl Geometry {
    /// The region espgw-control creates: 65,536 SA slots (32,768 tunnels
    /// of one SA each way, or any mix of site-to-site and remote-access
    /// SAs), a 4096-event sa_request ring and a 16,384-entry request table
    /// (one rate-limit entry per crypto-map entry or ACL line asking; 10,000
    /// entries asking at once fit). 35,393,536 bytes (33.8 MiB) under
    /// /dev/shm; the SPI index has 131,072 buckets (at most half full).
    /// A worker rebuilding its tables after a change reads every slot: ~16 MiB.
    pub const GATEWAY: Geometry = Geometry {
        capacity: 65_536,
        ring_capacity: 4096,
        request_entries: 16_384,
    };

    /// `capacity` SA slots, a 1024-event ring and a 1024-entry request table.
    pub fn with_capacity(capacity: u32) -> Geometry {
        Geometry {
            capacity,
            ring_capacity: 1024,
            request_entries: 1024,
        }
    }
}

/// Where everything is, derived from a [`Geometry`]; identical in every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub geometry: Geometry,
    pub index_buckets: usize,
    pub slots_off: usize,
    pub counters_off: usize,
    pub index_off: usize,
    pub ring_off: usize,
    pub reqtab_off: usize,
    pub total_bytes: usize,
}

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

impl Layout {
    /// Computes the layout for a geometry, or says which size is out of range.
    pub fn new(g: Geometry) -> Result<Layout, OpenError> {
        if g.capacity == 0 || u64::from(g.capacity) > MAX_CAPACITY {
            return Err(OpenError::BadGeometry("capacity"));
        }
        if !g.ring_capacity.is_power_of_two()
            || g.ring_capacity < 2
            || u64::from(g.ring_capacity) > MAX_RING
        {
            return Err(OpenError::BadGeometry("ring_capacity"));
        }
        if !g.request_entries.is_power_of_two()
            || g.request_entries < 2
            || u64::from(g.request_entries) > MAX_REQTAB
        {
            return Err(OpenError::BadGeometry("request_entries"));
        }
        let cap = g.capacity as usize;
        let index_buckets = (cap * 2).next_power_of_two().max(16);
        let slots_off = HEADER_BYTES;
        let counters_off = align_up(slots_off + cap * SLOT_BYTES, 64);
        let index_off = align_up(counters_off + cap * COUNTER_BYTES, 64);
        let ring_off = align_up(index_off + index_buckets * 8, 64);
        let reqtab_off = align_up(ring_off + g.ring_capacity as usize * RING_CELL_BYTES, 64);
        let end = reqtab_off + g.request_entries as usize * REQTAB_ENTRY_BYTES;
        let total_bytes = align_up(end, 4096);
        Ok(Layout {
            geometry: g,
            index_buckets,
            slots_off,
            counters_off,
            index_off,
            ring_off,
            reqtab_off,
            total_bytes,
        })
    }

    /// The static header words of this layout (checksum last).
    pub(crate) fn header_words(&self, created_unix: u64) -> [u64; hdr::STATIC_WORDS + 1] {
        let mut w = [0u64; hdr::STATIC_WORDS + 1];
        w[hdr::MAGIC] = MAGIC;
        w[hdr::VERSION] = LAYOUT_VERSION;
        w[hdr::HEADER_BYTES] = HEADER_BYTES as u64;
        w[hdr::TOTAL_BYTES] = self.total_bytes as u64;
        w[hdr::CAPACITY] = u64::from(self.geometry.capacity);
        w[hdr::SLOT_BYTES] = SLOT_BYTES as u64;
        w[hdr::RECORD_BYTES] = RECORD_BYTES as u64;
        w[hdr::COUNTER_BYTES] = COUNTER_BYTES as u64;
        w[hdr::INDEX_BUCKETS] = self.index_buckets as u64;
        w[hdr::RING_CAPACITY] = u64::from(self.geometry.ring_capacity);
        w[hdr::RING_CELL_BYTES] = RING_CELL_BYTES as u64;
        w[hdr::REQTAB_ENTRIES] = u64::from(self.geometry.request_entries);
        w[hdr::SLOTS_OFF] = self.slots_off as u64;
        w[hdr::COUNTERS_OFF] = self.counters_off as u64;
        w[hdr::INDEX_OFF] = self.index_off as u64;
        w[hdr::RING_OFF] = self.ring_off as u64;
        w[hdr::REQTAB_OFF] = self.reqtab_off as u64;
        w[hdr::CREATED_UNIX] = created_unix;
        w[hdr::CHECKSUM] = checksum(&w[..hdr::STATIC_WORDS]);
        w
    }

    /// Word index of slot `i`'s first word.
    #[inline]
    pub(crate) fn slot_word(&self, i: usize) -> usize {
        (self.slots_off + i * SLOT_BYTES) / 8
    }
    #[inline]
    pub(crate) fn counter_word(&self, i: usize) -> usize {
        (self.counters_off + i * COUNTER_BYTES) / 8
    }
    #[inline]
    pub(crate) fn index_word(&self, bucket: usize) -> usize {
        self.index_off / 8 + bucket
    }
    #[inline]
    pub(crate) fn ring_cell_word(&self, i: usize) -> usize {
        (self.ring_off + i * RING_CELL_BYTES) / 8
    }
    #[inline]
    pub(crate) fn reqtab_word(&self, i: usize) -> usize {
        (self.reqtab_off + i * REQTAB_ENTRY_BYTES) / 8
    }
}

/// FNV-1a over the little-endian bytes of the words.
pub(crate) fn checksum(words: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Validates the header of a region of `len_bytes` bytes given as atomic words and returns
/// its layout. Never panics, whatever the words hold.
pub fn validate(words: &[AtomicU64], len_bytes: u64) -> Result<Layout, OpenError> {
    if len_bytes < HEADER_BYTES as u64 || words.len() < HEADER_BYTES / 8 {
        return Err(OpenError::Truncated {
            expected: HEADER_BYTES as u64,
            actual: len_bytes,
        });
    }
    let mut w = [0u64; hdr::STATIC_WORDS + 1];
    for (i, v) in w.iter_mut().enumerate() {
        *v = words[i].load(Ordering::Acquire);
    }
    if w[hdr::MAGIC] == 0 {
        return Err(OpenError::NotInitialized);
    }
    if w[hdr::MAGIC] != MAGIC {
        return Err(OpenError::BadMagic(w[hdr::MAGIC]));
    }
    if w[hdr::VERSION] != LAYOUT_VERSION {
        return Err(OpenError::UnsupportedVersion {
            found: w[hdr::VERSION],
            supported: LAYOUT_VERSION,
        });
    }
    let sum = checksum(&w[..hdr::STATIC_WORDS]);
    if w[hdr::CHECKSUM] != sum {
        return Err(OpenError::HeaderChecksum);
    }
    let fixed = [
        (hdr::HEADER_BYTES, HEADER_BYTES, "header_bytes"),
        (hdr::SLOT_BYTES, SLOT_BYTES, "slot_bytes"),
        (hdr::RECORD_BYTES, RECORD_BYTES, "record_bytes"),
        (hdr::COUNTER_BYTES, COUNTER_BYTES, "counter_bytes"),
        (hdr::RING_CELL_BYTES, RING_CELL_BYTES, "ring_cell_bytes"),
    ];
    for (idx, want, name) in fixed {
        if w[idx] != want as u64 {
            return Err(OpenError::LayoutMismatch(name));
        }
    }
    let narrow =
        |v: u64, name: &'static str| u32::try_from(v).map_err(|_| OpenError::BadGeometry(name));
    let g = Geometry {
        capacity: narrow(w[hdr::CAPACITY], "capacity")?,
        ring_capacity: narrow(w[hdr::RING_CAPACITY], "ring_capacity")?,
        request_entries: narrow(w[hdr::REQTAB_ENTRIES], "request_entries")?,
    };
    let layout = Layout::new(g)?;
    let derived = [
        (hdr::TOTAL_BYTES, layout.total_bytes, "total_bytes"),
        (hdr::INDEX_BUCKETS, layout.index_buckets, "index_buckets"),
        (hdr::SLOTS_OFF, layout.slots_off, "slots_offset"),
        (hdr::COUNTERS_OFF, layout.counters_off, "counters_offset"),
        (hdr::INDEX_OFF, layout.index_off, "index_offset"),
        (hdr::RING_OFF, layout.ring_off, "ring_offset"),
        (hdr::REQTAB_OFF, layout.reqtab_off, "request_table_offset"),
    ];
    for (idx, want, name) in derived {
        if w[idx] != want as u64 {
            return Err(OpenError::LayoutMismatch(name));
        }
    }
    if len_bytes < layout.total_bytes as u64 || (words.len() as u64) * 8 < layout.total_bytes as u64
    {
        return Err(OpenError::Truncated {
            expected: layout.total_bytes as u64,
            actual: len_bytes,
        });
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(layout: &Layout) -> Vec<AtomicU64> {
        let words: Vec<AtomicU64> = (0..layout.total_bytes / 8)
            .map(|_| AtomicU64::new(0))
            .collect();
        for (i, v) in layout.header_words(1234).iter().enumerate() {
            words[i].store(*v, Ordering::Relaxed);
        }
        words
    }

    #[test]
    fn sections_do_not_overlap_and_are_line_aligned() {
        for cap in [1u32, 7, 64, 1000, 4096] {
            let l = Layout::new(Geometry::with_capacity(cap)).unwrap();
            let cap = cap as usize;
            assert_eq!(l.slots_off, HEADER_BYTES);
            assert!(l.slots_off + cap * SLOT_BYTES <= l.counters_off);
            assert!(l.counters_off + cap * COUNTER_BYTES <= l.index_off);
            assert!(l.index_off + l.index_buckets * 8 <= l.ring_off);
            assert!(l.ring_off + 1024 * RING_CELL_BYTES <= l.reqtab_off);
            assert!(l.reqtab_off + 1024 * REQTAB_ENTRY_BYTES <= l.total_bytes);
            for off in [l.counters_off, l.index_off, l.ring_off, l.reqtab_off] {
                assert_eq!(off % 64, 0);
            }
            assert!(l.index_buckets >= 2 * cap && l.index_buckets.is_power_of_two());
            assert_eq!(l.total_bytes % 4096, 0);
        }
    }

    /// Pins layout version 2 (version 1 had 128-byte counter blocks with eight drop
    /// reasons of their own): if this fails, the layout changed and LAYOUT_VERSION must be
    /// bumped (and this test updated).
    #[test]
    fn layout_version_2_is_pinned() {
        assert_eq!(LAYOUT_VERSION, 2);
        let l = Layout::new(Geometry::with_capacity(4096)).unwrap();
        assert_eq!(
            (
                l.slots_off,
                l.counters_off,
                l.index_off,
                l.ring_off,
                l.reqtab_off,
                l.total_bytes
            ),
            (4096, 1_052_672, 2_101_248, 2_166_784, 2_297_856, 2_314_240)
        );
        assert_eq!(l.index_buckets, 8192);
        assert_eq!(hdr::GENERATION * 8, 256);
        assert_eq!(hdr::RING_TAIL * 8, 320);
        assert_eq!(hdr::RING_HEAD * 8, 384);
        assert_eq!(hdr::GLOBAL_COUNTERS * 8, 512);
    }

    #[test]
    fn the_gateway_geometry_is_as_documented() {
        let l = Layout::new(Geometry::GATEWAY).unwrap();
        assert_eq!((l.total_bytes, l.index_buckets), (35_393_536, 131_072));
    }

    #[test]
    fn header_round_trip() {
        let l = Layout::new(Geometry::with_capacity(100)).unwrap();
        let r = region(&l);
        assert_eq!(validate(&r, l.total_bytes as u64).unwrap(), l);
    }

    #[test]
    fn header_errors() {
        let l = Layout::new(Geometry::with_capacity(100)).unwrap();
        let len = l.total_bytes as u64;

        let r = region(&l);
        assert!(matches!(
            validate(&r[..10], 80),
            Err(OpenError::Truncated { .. })
        ));
        assert!(matches!(
            validate(&r, len - 4096),
            Err(OpenError::Truncated { .. })
        ));

        let r = region(&l);
        r[hdr::MAGIC].store(0, Ordering::Relaxed);
        assert!(matches!(validate(&r, len), Err(OpenError::NotInitialized)));
        r[hdr::MAGIC].store(42, Ordering::Relaxed);
        assert!(matches!(validate(&r, len), Err(OpenError::BadMagic(42))));

        let r = region(&l);
        r[hdr::VERSION].store(LAYOUT_VERSION + 1, Ordering::Relaxed);
        assert!(matches!(
            validate(&r, len),
            Err(OpenError::UnsupportedVersion {
                found: 3,
                supported: 2
            })
        ));

        let r = region(&l);
        r[hdr::CAPACITY].store(101, Ordering::Relaxed);
        assert!(matches!(validate(&r, len), Err(OpenError::HeaderChecksum)));

        // A consistent checksum over inconsistent sizes is still refused.
        let r = region(&l);
        r[hdr::RING_OFF].fetch_add(64, Ordering::Relaxed);
        let mut w = [0u64; hdr::STATIC_WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            *v = r[i].load(Ordering::Relaxed);
        }
        r[hdr::CHECKSUM].store(checksum(&w), Ordering::Relaxed);
        assert!(matches!(
            validate(&r, len),
            Err(OpenError::LayoutMismatch("ring_offset"))
        ));

        let r = region(&l);
        r[hdr::SLOT_BYTES].store(128, Ordering::Relaxed);
        let mut w = [0u64; hdr::STATIC_WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            *v = r[i].load(Ordering::Relaxed);
        }
        r[hdr::CHECKSUM].store(checksum(&w), Ordering::Relaxed);
        assert!(matches!(
            validate(&r, len),
            Err(OpenError::LayoutMismatch("slot_bytes"))
        ));
    }

    #[test]
    fn geometry_limits() {
        assert!(Layout::new(Geometry::with_capacity(0)).is_err());
        assert!(Layout::new(Geometry::with_capacity((MAX_CAPACITY + 1) as u32)).is_err());
        let mut g = Geometry::with_capacity(4);
        g.ring_capacity = 1000;
        assert!(matches!(
            Layout::new(g),
            Err(OpenError::BadGeometry("ring_capacity"))
        ));
    }
}
