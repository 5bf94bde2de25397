//! Creating, opening and attaching to a region: the file (mode 0600, owner, writer lock,
//! atomic replacement), its mapping and its header validation, or a copy in process memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::layout::{self, hdr, Geometry, Layout, FLAG_RETIRED};
use crate::shm::{self, FileProblem, ShmMapping};
use crate::{ring, OpenError, SaDbReader, SaDbWriter};

/// Entry points: create, open and attach to regions.
pub struct SaDb;

/// What a reader's and writer's handles share: the region's words and layout.
pub(crate) enum Backing {
    Shm(ShmMapping),
    Heap(Box<[AtomicU64]>),
}

pub(crate) struct Shared {
    pub(crate) backing: Backing,
    pub(crate) layout: Layout,
    pub(crate) path: Option<PathBuf>,
}

impl Shared {
    #[inline]
    pub(crate) fn words(&self) -> &[AtomicU64] {
        match &self.backing {
            Backing::Shm(m) => m.words(),
            Backing::Heap(h) => h,
        }
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
