#![allow(unsafe_code)]
//! Shared memory for the SA database: a file under /dev/shm mapped `MAP_SHARED`, seen by
//! safe code only as a slice of [`AtomicU64`] words.
//!
//! This is the only module of the crate with `unsafe` code (the crate root denies it). The contract that makes
//! it sound: every process that maps the region (espgw-control, espgw-dataplane) touches it
//! exclusively through atomic operations on naturally aligned 64-bit words, so no Rust
//! reference to plain (non-atomic) data ever points into memory another process writes.
//!
//! What this module cannot prevent: a process with the same uid truncating the file while
//! it is mapped (later accesses raise SIGBUS). The file is mode 0600 and owned by the
//! gateway's user, and [`check_file`] refuses anything else.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::AtomicU64;

use memmap2::MmapRaw;

const _: () = assert!(
    cfg!(target_has_atomic = "64"),
    "the SA database needs lock-free 64-bit atomics"
);

/// A shared, writable mapping of a whole file, viewed as 64-bit atomic words.
pub struct ShmMapping {
    map: MmapRaw,
    words: usize,
}

impl std::fmt::Debug for ShmMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmMapping")
            .field("bytes", &(self.words * 8))
            .finish()
    }
}

impl ShmMapping {
    /// Maps `len` bytes of `file` shared and read-write. `len` must be a non-zero multiple
    /// of 8 and no larger than the file (the caller checked the file size just before).
    pub fn map(file: &File, len: usize) -> io::Result<ShmMapping> {
        if len == 0 || !len.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mapping length must be a non-zero multiple of 8",
            ));
        }
        let actual = file.metadata()?.len();
        if actual < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than the mapping",
            ));
        }
        let map = memmap2::MmapOptions::new().len(len).map_raw(file)?;
        if map.len() != len
            || !(map.as_ptr() as usize).is_multiple_of(std::mem::align_of::<AtomicU64>())
        {
            return Err(io::Error::other("unexpected mapping size or alignment"));
        }
        Ok(ShmMapping {
            map,
            words: len / 8,
        })
    }

    /// The mapping as atomic words. Every access to shared memory goes through these.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `map` is a live MAP_SHARED read-write mapping of exactly `words * 8`
        // bytes (checked in `map`), page-aligned and therefore aligned for AtomicU64, and it
        // stays mapped for as long as `self` (and so the returned borrow) lives. AtomicU64
        // has the size and alignment of u64 and permits shared mutation through `&`, so
        // concurrent writes by other threads or processes through their own atomics are not
        // data races. Nobody accesses this memory non-atomically (module contract above),
        // and the file length was checked against `len` right before mapping.
        unsafe { std::slice::from_raw_parts(self.map.as_mut_ptr() as *const AtomicU64, self.words) }
    }

    /// Length of the mapping in bytes.
    #[cfg(test)]
    fn len_bytes(&self) -> usize {
        self.words * 8
    }
}

/// Why a region file is refused before it is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// Not a regular file (a directory, device, FIFO…).
    NotRegular,
    /// Group or other permission bits set: must be 0600 (or stricter).
    LooseMode(u32),
    /// Owned by another user than the one running us.
    WrongOwner { owner: u32, expected: u32 },
}

/// Checks that an opened region file is a regular file, mode 0600 (no group/other bits), and
/// owned by our effective uid.
pub fn check_file(file: &File) -> io::Result<Result<(), FileProblem>> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(Err(FileProblem::NotRegular));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Ok(Err(FileProblem::LooseMode(mode)));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Ok(Err(FileProblem::WrongOwner {
            owner: meta.uid(),
            expected: me,
        }));
    }
    Ok(Ok(()))
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Milliseconds of CLOCK_MONOTONIC: one clock for every process on the host, so that
/// timestamps written into the region by one process are comparable in another.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; CLOCK_MONOTONIC is
    // always supported on Linux, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;

    fn tmpfile(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("espgw-shm-{}-{}", name, std::process::id()))
    }

    #[test]
    fn map_and_share_words() {
        let path = tmpfile("map");
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        let a = ShmMapping::map(&f, 4096).unwrap();
        let b = ShmMapping::map(&f, 4096).unwrap();
        a.words()[3].store(0xdead_beef, Ordering::SeqCst);
        assert_eq!(b.words()[3].load(Ordering::SeqCst), 0xdead_beef);
        assert_eq!(a.len_bytes(), 4096);
        assert!(ShmMapping::map(&f, 8192).is_err());
        assert!(ShmMapping::map(&f, 7).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn mode_and_owner_checked() {
        let path = tmpfile("mode");
        let f = File::create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check_file(&f).unwrap(), Ok(()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(check_file(&f).unwrap(), Err(FileProblem::LooseMode(0o640)));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn monotonic_advances() {
        let a = monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(monotonic_ms() >= a + 4);
    }
}
