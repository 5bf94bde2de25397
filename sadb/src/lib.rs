//! The shared-memory SA database: the contract between espgw-control (the one writer of
//! SAs) and espgw-dataplane (many reader threads, possibly a restarted process).
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
//! - dataplane-global drop counters ([`GlobalCounters`]);
//! - the sa_request ring, dataplane → control, rate-limited and deduplicated per
//!   crypto-map entry ([`SaDbReader::post_sa_request`], [`SaDbWriter::poll_sa_request`]).
//!
//! # Who calls what
//! ```no_run
//! use espgw_dataplane::sadb::*;
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
//! # Sizes (layout version 1)
//! Header 4096 bytes; per SA a 256-byte slot (192-byte record) and a 128-byte counter
//! block; SPI index 8 bytes × next power of two ≥ 2 × capacity (≥ 16); ring cells 128
//! bytes; request-table entries 16 bytes. 4096 SAs with the default 1024-event ring and
//! 1024-entry request table: 1,789,952 bytes.

pub mod counters;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod record;
pub mod ring;

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroize;

pub use self::counters::{GlobalCounter, GlobalCounters, SaCounterValues, SaCounters, SaDrop};
pub use self::error::{OpenError, ReadError, SeqError, WriteError};
pub use self::layout::{Geometry, Layout};
pub use self::record::{
    AuthKey, Direction, EncKey, Ipv4Prefix, Key, MapName, Mode, ProxyIdentity, RecordError,
    SaRecord,
};
pub use self::ring::{PostOutcome, SaRequest};
pub use crate::sys::shm::monotonic_ms;

use self::layout::{hdr, COUNTER_WORDS, FLAG_RETIRED, RECORD_BYTES, RECORD_WORDS};
use crate::sys::shm::{self, FileProblem, ShmMapping};

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
                let r = &e.record;
                let p = &r.proxy;
                r.direction == Direction::Outbound
                    && p.local.contains(src)
                    && p.remote.contains(dst)
                    && (p.protocol == 0 || p.protocol == protocol)
                    && (p.local_port == 0 || p.local_port == src_port)
                    && (p.remote_port == 0 || p.remote_port == dst_port)
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

enum Backing {
    Shm(ShmMapping),
    Heap(Box<[AtomicU64]>),
}

struct Shared {
    backing: Backing,
    layout: Layout,
    path: Option<PathBuf>,
}

impl Shared {
    #[inline]
    fn words(&self) -> &[AtomicU64] {
        match &self.backing {
            Backing::Shm(m) => m.words(),
            Backing::Heap(h) => h,
        }
    }
}

/// Entry points: create, open and attach to regions.
pub struct SaDb;

/// A reader's (dataplane's) handle on a region. Cheap to clone; `Send + Sync`; all
/// methods take `&self`, so worker threads can share one or each hold a clone.
#[derive(Clone)]
pub struct SaDbReader {
    shared: Arc<Shared>,
}

/// The writer's (control's) handle: installs, updates and deletes SAs and consumes
/// sa_request events. There is one per region (enforced with `flock` for files).
/// [`SaDbWriter::reader`] gives the read side (counters for `show`, lookups).
pub struct SaDbWriter {
    reader: SaDbReader,
    consumer: ring::Consumer,
    _lock: Option<File>,
}

impl std::fmt::Debug for SaDbReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaDbReader")
            .field("path", &self.shared.path)
            .field("capacity", &self.shared.layout.geometry.capacity)
            .finish()
    }
}

impl std::fmt::Debug for SaDbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaDbWriter")
            .field("reader", &self.reader)
            .finish()
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn check(file: &File, path: &Path) -> Result<(), OpenError> {
    match shm::check_file(file).map_err(io_err("stat", path))? {
        Ok(()) => Ok(()),
        Err(FileProblem::NotRegular) => Err(OpenError::NotRegular),
        Err(FileProblem::LooseMode(m)) => Err(OpenError::LooseMode(m)),
        Err(FileProblem::WrongOwner { owner, expected }) => {
            Err(OpenError::WrongOwner { owner, expected })
        }
    }
}

fn open_file(path: &Path) -> Result<File, OpenError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("open", path))
}

fn try_lock(file: &File, path: &Path) -> Result<(), OpenError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::WriterBusy),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("flock", path)(e)),
    }
}

/// Opens, checks, maps and validates an existing region file.
fn map_existing(path: &Path) -> Result<(File, ShmMapping, Layout), OpenError> {
    let file = open_file(path)?;
    check(&file, path)?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let max = Layout::new(Geometry {
        capacity: layout::MAX_CAPACITY as u32,
        ring_capacity: layout::MAX_RING as u32,
        request_entries: layout::MAX_REQTAB as u32,
    })?
    .total_bytes as u64;
    if len < layout::HEADER_BYTES as u64 {
        return Err(OpenError::Truncated {
            expected: layout::HEADER_BYTES as u64,
            actual: len,
        });
    }
    if len > max || len % 8 != 0 {
        return Err(OpenError::LayoutMismatch("file_size"));
    }
    let map = ShmMapping::map(&file, len as usize).map_err(io_err("mmap", path))?;
    let layout = layout::validate(map.words(), len)?;
    if layout.total_bytes as u64 != len {
        return Err(OpenError::LayoutMismatch("file_size"));
    }
    Ok((file, map, layout))
}

impl SaDb {
    /// Opens an existing region for reading (the dataplane). Checks mode 0600 and owner,
    /// then every header field. Does not take the writer lock.
    pub fn open(path: impl AsRef<Path>) -> Result<SaDbReader, OpenError> {
        let path = path.as_ref();
        let (_file, map, layout) = map_existing(path)?;
        Ok(SaDbReader {
            shared: Arc::new(Shared {
                backing: Backing::Shm(map),
                layout,
                path: Some(path.to_path_buf()),
            }),
        })
    }

    /// Creates a fresh, empty region with `capacity` SA slots (and default ring and
    /// request-table sizes), replacing any region at `path`. See [`SaDb::create_with`].
    pub fn create(path: impl AsRef<Path>, capacity: u32) -> Result<SaDbWriter, OpenError> {
        SaDb::create_with(path, Geometry::with_capacity(capacity))
    }

    /// Creates a fresh, empty region, mode 0600, and takes the writer lock. The file is
    /// built under a temporary name and renamed into place, so no reader ever maps a
    /// half-initialised region. A region already at `path` is marked retired (readers see
    /// [`SaDbReader::is_retired`] after their next generation check and reopen); if another
    /// writer holds it, this fails with [`OpenError::WriterBusy`].
    pub fn create_with(
        path: impl AsRef<Path>,
        geometry: Geometry,
    ) -> Result<SaDbWriter, OpenError> {
        let path = path.as_ref();
        let layout = Layout::new(geometry)?;
        let name = path
            .file_name()
            .ok_or(OpenError::BadGeometry("path has no file name"))?
            .to_string_lossy()
            .into_owned();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        struct RemoveOnError<'a>(&'a Path, bool);
        impl Drop for RemoveOnError<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = std::fs::remove_file(self.0);
                }
            }
        }
        let mut guard = RemoveOnError(&tmp, false);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.set_len(layout.total_bytes as u64)
            .map_err(io_err("truncate", &tmp))?;
        check(&file, &tmp)?;
        try_lock(&file, &tmp)?;
        let map = ShmMapping::map(&file, layout.total_bytes).map_err(io_err("mmap", &tmp))?;
        init_region(map.words(), &layout);

        // Retire the region we replace, unless a live writer holds it.
        let old = match map_existing(path) {
            Ok((f, m, _)) => {
                try_lock(&f, path)?;
                Some((f, m))
            }
            Err(OpenError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
            Err(OpenError::WriterBusy) => return Err(OpenError::WriterBusy),
            Err(OpenError::LooseMode(_)) | Err(OpenError::WrongOwner { .. }) => None,
            Err(_) => {
                // Not a valid region: take the lock if we can, then replace it.
                if let Ok(f) = open_file(path) {
                    try_lock(&f, path)?;
                }
                None
            }
        };
        std::fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        guard.1 = true;
        if let Some((_f, m)) = old {
            let w = m.words();
            let g = w[hdr::GENERATION].load(Ordering::Relaxed);
            w[hdr::FLAGS].fetch_or(FLAG_RETIRED, Ordering::Release);
            w[hdr::GENERATION].store((g | 1).wrapping_add(1), Ordering::Release);
        }
        Ok(SaDbWriter::new(
            Shared {
                backing: Backing::Shm(map),
                layout,
                path: Some(path.to_path_buf()),
            },
            Some(file),
        ))
    }

    /// Attaches to an existing region as its writer (control restarting): validates it,
    /// takes the writer lock, repairs anything a crashed writer left half-written (such
    /// slots are cleared, keys zeroed), rebuilds the SPI index and bumps the generation.
    /// The SAs in the region are kept.
    pub fn open_writer(path: impl AsRef<Path>) -> Result<SaDbWriter, OpenError> {
        let path = path.as_ref();
        let (file, map, layout) = map_existing(path)?;
        try_lock(&file, path)?;
        let mut w = SaDbWriter::new(
            Shared {
                backing: Backing::Shm(map),
                layout,
                path: Some(path.to_path_buf()),
            },
            Some(file),
        );
        w.repair();
        Ok(w)
    }

    /// [`SaDb::open_writer`] if a valid region is at `path` (whatever its geometry: the SAs
    /// in it are kept; check [`SaDbReader::capacity`]), else [`SaDb::create_with`]. Refuses
    /// (does not replace) a region with a loose mode or another owner, or one that another
    /// writer holds.
    pub fn open_or_create(
        path: impl AsRef<Path>,
        geometry: Geometry,
    ) -> Result<SaDbWriter, OpenError> {
        let path = path.as_ref();
        match SaDb::open_writer(path) {
            Ok(w) => Ok(w),
            Err(OpenError::Io { ref source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                SaDb::create_with(path, geometry)
            }
            Err(
                OpenError::Truncated { .. }
                | OpenError::NotInitialized
                | OpenError::BadMagic(_)
                | OpenError::UnsupportedVersion { .. }
                | OpenError::HeaderChecksum
                | OpenError::LayoutMismatch(_)
                | OpenError::BadGeometry(_),
            ) => SaDb::create_with(path, geometry),
            Err(e) => Err(e),
        }
    }

    /// A region in process memory (no file), for tests and tools; share it through
    /// [`SaDbWriter::reader`].
    pub fn in_memory(geometry: Geometry) -> Result<SaDbWriter, OpenError> {
        let layout = Layout::new(geometry)?;
        let words: Box<[AtomicU64]> = (0..layout.total_bytes / 8)
            .map(|_| AtomicU64::new(0))
            .collect();
        init_region(&words, &layout);
        Ok(SaDbWriter::new(
            Shared {
                backing: Backing::Heap(words),
                layout,
                path: None,
            },
            None,
        ))
    }

    /// Validates a copy of a region's bytes (a raw file image) and returns a reader on the
    /// copy. Never panics, whatever the bytes; used by the fuzz target and by tools that
    /// inspect a saved region.
    pub fn from_bytes(bytes: &[u8]) -> Result<SaDbReader, OpenError> {
        let words: Box<[AtomicU64]> = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                AtomicU64::new(u64::from_le_bytes(a))
            })
            .collect();
        let layout = layout::validate(&words, bytes.len() as u64)?;
        if layout.total_bytes != bytes.len() {
            return Err(OpenError::LayoutMismatch("file_size"));
        }
        Ok(SaDbReader {
            shared: Arc::new(Shared {
                backing: Backing::Heap(words),
                layout,
                path: None,
            }),
        })
    }

    /// Like [`SaDb::from_bytes`], but attaches as the writer of the copy (repairing it as
    /// [`SaDb::open_writer`] does). For the fuzz target and offline tools.
    #[doc(hidden)]
    pub fn writer_from_bytes(bytes: &[u8]) -> Result<SaDbWriter, OpenError> {
        let r = SaDb::from_bytes(bytes)?;
        let shared = Arc::try_unwrap(r.shared).map_err(|_| OpenError::WriterBusy)?;
        let mut w = SaDbWriter::new(shared, None);
        w.repair();
        Ok(w)
    }
}

fn init_region(words: &[AtomicU64], layout: &Layout) {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let h = layout.header_words(created);
    for (i, v) in h.iter().enumerate().skip(1) {
        words[i].store(*v, Ordering::Relaxed);
    }
    words[hdr::GENERATION].store(2, Ordering::Relaxed);
    words[hdr::FLAGS].store(0, Ordering::Relaxed);
    words[hdr::REQUEST_INTERVAL_MS].store(ring::DEFAULT_REQUEST_INTERVAL_MS, Ordering::Relaxed);
    words[hdr::WRITER_PID].store(u64::from(std::process::id()), Ordering::Relaxed);
    ring::init(words, layout);
    // The magic goes last: a region with a zero magic is "not initialised".
    words[hdr::MAGIC].store(h[hdr::MAGIC], Ordering::Release);
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
    fn words(&self) -> &[AtomicU64] {
        self.shared.words()
    }
    #[inline]
    fn layout(&self) -> &Layout {
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

impl SaDbWriter {
    fn new(shared: Shared, lock: Option<File>) -> SaDbWriter {
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
    fn repair(&mut self) {
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

#[cfg(test)]
mod tests;
