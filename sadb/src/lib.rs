#![deny(unsafe_code)]
//! espgw-sadb, the shared-memory SA database: the contract between espgw-control (the one
//! writer of SAs) and espgw-dataplane (many reader threads, possibly a restarted process).
//! Both daemons depend on this crate and neither on the other; it needs no BPF toolchain.
//!
//! # The region
//! One file, by default [`DEFAULT_PATH`] (`/dev/shm/espgw-sadb`), mode 0600, owned by the
//! gateway's user, mapped shared by both processes. Its header is versioned
//! ([`layout::LAYOUT_VERSION`]) and checked word by word on open; see [`layout`] for the
//! byte map. It holds:
//! - fixed 256-byte SA slots, each a [`SaRecord`] under a per-slot sequence lock: the
//!   writer makes the lock word odd, writes, makes it even; readers copy the slot out and
//!   retry when the word was odd or changed, so they never see a torn record;
//! - a global **generation** counter, bumped (by 2; odd while a change is in progress) on
//!   every install, update, delete: workers compare it with one atomic load between
//!   batches ([`SaDbReader::generation`]) and re-read the table ([`SaDbReader::snapshot_all`])
//!   when it moved;
//! - an SPI index (open addressing) for inbound lookup ([`SaDbReader::lookup_inbound`]);
//! - per-SA counters in their own cache lines, written by workers with `fetch_add`
//!   ([`SaCounters`]), including the outbound sequence-number counter, from which workers
//!   reserve a range per batch ([`SaDbReader::reserve_outbound_seq`]), so that a restarted
//!   dataplane never reuses a sequence number;
//! - dataplane-global counters ([`GlobalCounters`]): drops no SA can be blamed for, by the
//!   same [`DropReason`] as the per-SA drops, and sa_request statistics;
//! - the sa_request ring, dataplane → control, rate-limited and deduplicated per
//!   crypto-map entry ([`SaDbReader::post_sa_request`], [`SaDbWriter::poll_sa_request`]).
//!
//! # Who calls what
//! ```no_run
//! use espgw_sadb::*;
//! # fn rec() -> SaRecord { SaRecord::derived(1) }
//! // espgw-control
//! let mut w = SaDb::open_or_create(DEFAULT_PATH, Geometry::with_capacity(4096))?;
//! let slot = w.install(&rec()).unwrap();
//! if let Some(req) = w.poll_sa_request(monotonic_ms()) { /* start Main Mode */ }
//! let c = w.reader().counters(slot).unwrap().values(); // show crypto ipsec sa
//! w.delete(slot).unwrap(); // keys zeroed in the region
//!
//! // espgw-dataplane, each worker between batches
//! let r = SaDb::open(DEFAULT_PATH)?;
//! let mut seen = 0;
//! if r.generation() != seen {
//!     let snap = r.snapshot_all().unwrap();
//!     seen = snap.generation;
//!     // rebuild the worker's local SA table from snap.entries
//! }
//! let seqs = r.reserve_outbound_seq(slot, 64).unwrap(); // one fetch_add per batch
//! r.counters(slot).unwrap().add_packets(64, 64 * 1400);
//! # Ok::<(), OpenError>(())
//! ```
//! Keys held in process memory ([`SaRecord`]'s [`Key`]s) are zeroed on drop and redacted
//! in `Debug`; deleted slots are zeroed in the region.
//!
//! The writer holds an exclusive `flock` on the file, so a second control process gets
//! [`OpenError::WriterBusy`]. If a writer dies mid-update, the next one to attach
//! ([`SaDb::open_writer`]) clears the half-written slot and republishes.
//!
//! # Restarts
//! - **Dataplane restarts:** it opens the region, reads every SA back
//!   ([`SaDbReader::snapshot_all`]), continues outbound sequence numbers from the region's
//!   counter ([`SaCounters::seq_used`]; reservations never overlap because they are
//!   `fetch_add`s on that counter), and may start each inbound replay window at
//!   [`SaCounters::inbound_top`] (kept current with [`SaCounters::raise_inbound_top`]).
//! - **Control restarts:** [`SaDb::open_or_create`] attaches to the existing region and
//!   keeps its SAs, so traffic keeps flowing. Control then finds them with
//!   [`SaDbWriter::entries`] and either adopts them (deleting them when their lifetime
//!   ends, [`SaDbWriter::delete_expired`]) or purges them ([`SaDbWriter::delete_all`]);
//!   otherwise their slots leak.
//! - **Region replaced:** [`SaDb::create`] over an existing region retires it: readers see
//!   the generation move and [`SaDbReader::is_retired`]; they call
//!   [`SaDbReader::reopen`].
//!
//! # Sizes (layout version 2)
//! Header 4096 bytes; per SA a 256-byte slot (192-byte record) and a 256-byte counter
//! block; SPI index 8 bytes × next power of two ≥ 2 × capacity (≥ 16); ring cells 128
//! bytes; request-table entries 16 bytes. 4096 SAs with the default 1024-event ring and
//! 1024-entry request table: 2,314,240 bytes. [`Geometry::GATEWAY`], what espgw-control
//! creates: 65,536 SAs, 35,393,536 bytes.
//!
//! # Lookup costs
//! Inbound SPI → slot: the SPI index, open addressing at most half full (O(1)). Install:
//! a free slot found from a round-robin cursor (O(1) while the region is not nearly full),
//! index insert O(1). Workers do not look records up one by one: on every generation
//! change they copy every slot ([`SaDbReader::snapshot_all`], O(capacity)) and index the
//! live SAs themselves (dataplane `worker::sa`: by SPI, and outbound by proxy identity).

pub mod counters;
pub mod drops;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod record;
pub mod ring;
pub mod transform;

mod named_enum;
mod reader;
mod region;
mod shm;
mod writer;

use std::time::Duration;

use zeroize::Zeroize;

pub use self::counters::{GlobalCounter, GlobalCounters, SaCounterValues, SaCounters};
pub use self::drops::{DropCounters, DropReason};
pub use self::error::{OpenError, ReadError, SeqError, WriteError};
pub use self::layout::{Geometry, Layout};
pub use self::reader::SaDbReader;
pub use self::record::{
    ios_spi, AuthKey, Direction, EncKey, Ipv4Prefix, Key, MapName, Mode, ProxyIdentity,
    RecordError, SaRecord,
};
pub use self::region::SaDb;
pub use self::ring::{PostOutcome, SaRequest};
pub use self::shm::monotonic_ms;
pub use self::transform::TransformId;
pub use self::writer::SaDbWriter;

use self::layout::{RECORD_BYTES, RECORD_WORDS};

/// Where control and dataplane meet unless configured otherwise.
pub const DEFAULT_PATH: &str = "/dev/shm/espgw-sadb";

/// How long a reader waits for a slot or the index to leave "being written" before it
/// reports [`ReadError::WriterStalled`].
pub const STALL_TIMEOUT: Duration = Duration::from_millis(200);

/// Index of an SA slot in the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(pub u32);

impl SlotId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// State of an SA slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaState {
    /// Empty (never used or deleted; keys zeroed).
    Free,
    /// In use.
    Active,
    /// Being replaced (rekeyed): still valid for inbound packets; outbound prefers an
    /// `Active` SA of the same flow.
    Dying,
}

impl SaState {
    fn code(self) -> u64 {
        match self {
            SaState::Free => 0,
            SaState::Active => 1,
            SaState::Dying => 2,
        }
    }
    fn from_code(c: u64) -> Option<SaState> {
        match c {
            0 => Some(SaState::Free),
            1 => Some(SaState::Active),
            2 => Some(SaState::Dying),
            _ => None,
        }
    }
}

/// One SA read back from the region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaEntry {
    pub slot: SlotId,
    /// Bumped each time the slot gets a new SA; (slot, incarnation) names one SA.
    pub incarnation: u32,
    pub state: SaState,
    pub record: SaRecord,
}

/// Every SA of the region, as of `generation`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The generation this snapshot is consistent with. If the writer kept changing the
    /// region during the read, each record is still consistent on its own and this is the
    /// generation seen first, so the next [`SaDbReader::generation`] check differs and the
    /// caller reads again.
    pub generation: u64,
    /// True when no change happened while the snapshot was read (the usual case). When
    /// false (the writer kept writing through every retry), each entry is still an untorn
    /// record, but the set mixes states from before and after some changes (a just-deleted
    /// SA may still be listed next to its replacement) — no worse than a table one batch
    /// old; `generation` makes the next check read again.
    pub consistent: bool,
    /// Active and dying SAs, by slot.
    pub entries: Vec<SaEntry>,
    /// Slots whose consistent content did not decode (skipped).
    pub corrupt: Vec<(SlotId, &'static str)>,
}

impl Snapshot {
    /// The inbound SA with this SPI.
    pub fn find_inbound(&self, spi: u32) -> Option<&SaEntry> {
        self.entries
            .iter()
            .find(|e| e.record.direction == Direction::Inbound && e.record.spi == spi)
    }

    /// The outbound SA whose proxy identities cover a packet: Active before Dying, then the
    /// newest (`created_at`, then slot incarnation).
    pub fn find_outbound(
        &self,
        src: std::net::Ipv4Addr,
        dst: std::net::Ipv4Addr,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Option<&SaEntry> {
        self.entries
            .iter()
            .filter(|e| {
                e.record.direction == Direction::Outbound
                    && e.record
                        .proxy
                        .covers(src, dst, protocol, Some((src_port, dst_port)))
            })
            .max_by_key(|e| {
                (
                    e.state == SaState::Active,
                    e.record.created_at,
                    e.incarnation,
                )
            })
    }
}

const INDEX_EMPTY: u64 = 0;
const INDEX_TOMBSTONE: u64 = u64::MAX;

fn index_entry(spi: u32, slot: usize) -> u64 {
    (u64::from(spi) << 32) | (slot as u64 + 1)
}

fn index_home(spi: u32, buckets: usize) -> usize {
    let bits = buckets.trailing_zeros();
    (u64::from(spi).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

fn meta_state(meta: u64) -> Option<SaState> {
    SaState::from_code(meta & 0xff)
}

fn meta_incarnation(meta: u64) -> u32 {
    (meta >> 32) as u32
}

fn make_meta(state: SaState, incarnation: u32) -> u64 {
    state.code() | (u64::from(incarnation) << 32)
}

fn words_to_bytes(w: &[u64; RECORD_WORDS], out: &mut [u8; RECORD_BYTES]) {
    for (i, v) in w.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
}

fn bytes_to_words(b: &[u8; RECORD_BYTES], out: &mut [u64; RECORD_WORDS]) {
    for (i, v) in out.iter_mut().enumerate() {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *v = u64::from_le_bytes(a);
    }
}

/// Zeroes the key material in a transient copy of a record's words (volatile writes).
fn wipe_words(w: &mut [u64; RECORD_WORDS]) {
    let secret = record::SECRET_BYTES.start / 8..record::SECRET_BYTES.end.div_ceil(8);
    w[secret].zeroize();
}

/// Zeroes the key material in a transient copy of a record's bytes (volatile writes).
fn wipe_bytes(b: &mut [u8; RECORD_BYTES]) {
    b[record::SECRET_BYTES].zeroize();
}

#[cfg(test)]
mod tests;
