//! The SA database as a file under /dev/shm: permissions, validation of corrupt files,
//! writer exclusion, crash repair, retirement, keys zeroed in the file, sequence numbers
//! surviving a dataplane restart.

use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use espgw_sadb::layout::{self, HEADER_BYTES, SLOT_BYTES};
use espgw_sadb::*;

mod common;
use common::TempRegion;

fn inbound(v: u64) -> SaRecord {
    SaRecord::derived_towards(v, Direction::Inbound)
}

fn outbound(v: u64) -> SaRecord {
    SaRecord::derived_towards(v, Direction::Outbound)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn created_0600_owned_by_us_and_shared_between_handles() {
    let t = TempRegion::new("mode");
    let mut w = SaDb::create(t.path(), 16).unwrap();
    let meta = std::fs::metadata(t.path()).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), unsafe_free_euid());
    assert_eq!(
        meta.len() as usize,
        Layout::new(Geometry::with_capacity(16))
            .unwrap()
            .total_bytes
    );
    // No temporary file left next to it.
    let dir: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&format!("espgw-sadb-test-{}-mode", std::process::id())))
        .collect();
    assert_eq!(dir.len(), 1, "{dir:?}");

    let r = SaDb::open(t.path()).unwrap();
    let g = r.generation();
    let rec = inbound(77);
    let slot = w.install(&rec).unwrap();
    assert!(r.generation() > g);
    assert_eq!(r.lookup_inbound(rec.spi).unwrap().unwrap().record, rec);
    r.counters(slot).unwrap().add_packets(3, 4500);
    assert_eq!(w.reader().counters(slot).unwrap().values().packets, 3);
    assert_eq!(r.writer_pid(), std::process::id());
    assert_eq!(r.capacity(), 16);
}

/// Our effective uid, from the owner of a file we just created (no unsafe in tests).
fn unsafe_free_euid() -> u32 {
    let p = std::env::temp_dir().join(format!("espgw-uid-{}", std::process::id()));
    std::fs::write(&p, b"").unwrap();
    let uid = std::fs::metadata(&p).unwrap().uid();
    std::fs::remove_file(&p).unwrap();
    uid
}

#[test]
fn loose_mode_refused() {
    let t = TempRegion::new("loose");
    drop(SaDb::create(t.path(), 4).unwrap());
    for mode in [0o644, 0o660, 0o604, 0o700 | 0o001] {
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        assert!(
            matches!(SaDb::open(t.path()), Err(OpenError::LooseMode(m)) if m == mode),
            "mode {mode:o}"
        );
        assert!(matches!(
            SaDb::open_writer(t.path()),
            Err(OpenError::LooseMode(_))
        ));
        assert!(matches!(
            SaDb::open_or_create(t.path(), Geometry::with_capacity(4)),
            Err(OpenError::LooseMode(_))
        ));
    }
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
    // Stricter than 0600 passes the mode check (then fails to open read-write unless root).
    let res = SaDb::open(t.path());
    assert!(!matches!(res, Err(OpenError::LooseMode(_))));
}

#[test]
fn wrong_owner_refused() {
    let t = TempRegion::new("owner");
    drop(SaDb::create(t.path(), 4).unwrap());
    espgw_lab::prereq::require_root(); // to chown the region to another owner
    std::os::unix::fs::chown(t.path(), Some(65534), None).unwrap();
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::WrongOwner {
            owner: 65534,
            expected: 0
        })
    ));
}

#[test]
fn symlink_and_directory_refused() {
    let t = TempRegion::new("target");
    drop(SaDb::create(t.path(), 4).unwrap());
    let link = TempRegion::new("link");
    std::os::unix::fs::symlink(t.path(), link.path()).unwrap();
    match SaDb::open(link.path()) {
        Err(OpenError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ELOOP)),
        other => panic!("symlink opened: {other:?}"),
    }
    assert!(matches!(
        SaDb::open("/dev/shm"),
        Err(OpenError::Io { .. } | OpenError::NotRegular)
    ));
}

#[test]
fn missing_file_is_io_not_found() {
    let t = TempRegion::new("missing");
    match SaDb::open(t.path()) {
        Err(OpenError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("{other:?}"),
    }
}

/// Writes `bytes` at `off` into the region file (the same pages the mappings see).
fn poke(path: &Path, off: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

#[test]
fn corrupt_headers_rejected_with_the_right_error() {
    let t = TempRegion::new("corrupt");
    let total = Layout::new(Geometry::with_capacity(8)).unwrap().total_bytes as u64;
    let fresh = || drop(SaDb::create(t.path(), 8).unwrap());

    fresh();
    poke(t.path(), 0, b"XXXXXXXX");
    assert!(matches!(SaDb::open(t.path()), Err(OpenError::BadMagic(_))));

    fresh();
    poke(t.path(), 0, &[0; 8]);
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::NotInitialized)
    ));

    fresh();
    poke(t.path(), 8, &9u64.to_le_bytes());
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::UnsupportedVersion {
            found: 9,
            supported: layout::LAYOUT_VERSION
        })
    ));

    fresh();
    poke(t.path(), 4 * 8, &9u64.to_le_bytes()); // capacity word
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::HeaderChecksum)
    ));

    fresh();
    std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_len(total - 4096)
        .unwrap();
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::Truncated { expected, actual }) if expected == total && actual == total - 4096
    ));

    fresh();
    std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_len(100)
        .unwrap();
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::Truncated { .. })
    ));

    fresh();
    std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::Truncated { actual: 0, .. })
    ));

    fresh();
    std::fs::OpenOptions::new()
        .write(true)
        .open(t.path())
        .unwrap()
        .set_len(total + 4096)
        .unwrap();
    assert!(matches!(
        SaDb::open(t.path()),
        Err(OpenError::LayoutMismatch("file_size"))
    ));

    // Garbage is replaced by open_or_create, a valid region is kept.
    let mut w = SaDb::open_or_create(t.path(), Geometry::with_capacity(8)).unwrap();
    let s = w.install(&inbound(5)).unwrap();
    drop(w);
    let w = SaDb::open_or_create(t.path(), Geometry::with_capacity(32)).unwrap();
    assert_eq!(w.reader().capacity(), 8, "existing region kept");
    assert_eq!(w.reader().read_slot(s).unwrap().unwrap().record, inbound(5));
}

#[test]
fn one_writer_at_a_time() {
    let t = TempRegion::new("lock");
    let w = SaDb::create(t.path(), 4).unwrap();
    assert!(matches!(
        SaDb::open_writer(t.path()),
        Err(OpenError::WriterBusy)
    ));
    assert!(matches!(
        SaDb::create(t.path(), 4),
        Err(OpenError::WriterBusy)
    ));
    assert!(matches!(
        SaDb::open_or_create(t.path(), Geometry::with_capacity(4)),
        Err(OpenError::WriterBusy)
    ));
    let _r = SaDb::open(t.path()).unwrap(); // readers are not excluded
    drop(w);
    SaDb::open_writer(t.path()).unwrap();
}

#[test]
fn keys_zeroed_in_the_file_after_delete() {
    let t = TempRegion::new("zero");
    let mut w = SaDb::create(t.path(), 8).unwrap();
    let a = inbound(0x1111_2222_3333);
    let b = outbound(0x4444_5555_6666);
    let sa = w.install(&a).unwrap();
    let sb = w.install(&b).unwrap();
    let raw = std::fs::read(t.path()).unwrap();
    for k in [
        a.enc_key.as_bytes(),
        a.auth_key.as_bytes(),
        b.enc_key.as_bytes(),
        b.auth_key.as_bytes(),
    ] {
        assert!(contains(&raw, k), "key present while installed");
    }
    w.delete(sa).unwrap();
    let raw = std::fs::read(t.path()).unwrap();
    assert!(!contains(&raw, a.enc_key.as_bytes()));
    assert!(!contains(&raw, a.auth_key.as_bytes()));
    assert!(contains(&raw, b.enc_key.as_bytes()));
    // The whole record area of the slot is zero.
    let off = HEADER_BYTES + sa.index() * SLOT_BYTES;
    assert!(raw[off + 16..off + 16 + layout::RECORD_BYTES]
        .iter()
        .all(|&x| x == 0));
    w.delete(sb).unwrap();
    let raw = std::fs::read(t.path()).unwrap();
    assert!(!contains(&raw, b.enc_key.as_bytes()));
    assert!(!contains(&raw, b.auth_key.as_bytes()));
}

#[test]
fn crashed_writer_repaired_on_attach() {
    let t = TempRegion::new("repair");
    let mut w = SaDb::create(t.path(), 4).unwrap();
    let keep = w.install(&inbound(1)).unwrap();
    let half = w.install(&inbound(2)).unwrap();
    drop(w);
    // Simulate a writer that died mid-update of `half`: odd sequence word, odd generation.
    let off = (HEADER_BYTES + half.index() * SLOT_BYTES) as u64;
    let raw = std::fs::read(t.path()).unwrap();
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&raw[off as usize..off as usize + 8]);
    poke(t.path(), off, &(u64::from_le_bytes(seq) | 1).to_le_bytes());
    let gen_off = 32 * 8;
    let mut g = [0u8; 8];
    g.copy_from_slice(&raw[gen_off..gen_off + 8]);
    poke(
        t.path(),
        gen_off as u64,
        &(u64::from_le_bytes(g) | 1).to_le_bytes(),
    );

    let r = SaDb::open(t.path()).unwrap();
    assert_eq!(r.read_slot(half), Err(ReadError::WriterStalled));
    assert!(r.generation() % 2 == 1);

    let w = SaDb::open_writer(t.path()).unwrap();
    assert!(r.generation().is_multiple_of(2));
    assert_eq!(
        r.read_slot(half).unwrap(),
        None,
        "half-written slot cleared"
    );
    assert_eq!(r.read_slot(keep).unwrap().unwrap().record, inbound(1));
    assert_eq!(r.lookup_inbound(inbound(2).spi).unwrap(), None);
    assert_eq!(
        r.lookup_inbound(inbound(1).spi).unwrap().unwrap().slot,
        keep
    );
    let raw = std::fs::read(t.path()).unwrap();
    assert!(!contains(&raw, inbound(2).enc_key.as_bytes()));
    drop(w);
}

#[test]
fn recreate_retires_the_old_region() {
    let t = TempRegion::new("retire");
    let mut w = SaDb::create(t.path(), 4).unwrap();
    w.install(&inbound(1)).unwrap();
    let r_old = SaDb::open(t.path()).unwrap();
    let g = r_old.generation();
    drop(w);
    let mut w2 = SaDb::create(t.path(), 4).unwrap();
    assert!(r_old.is_retired());
    assert_ne!(
        r_old.generation(),
        g,
        "workers notice with their generation check"
    );
    let r_new = r_old.reopen().unwrap();
    assert!(!r_new.is_retired());
    assert!(r_new.snapshot_all().unwrap().entries.is_empty());
    w2.install(&inbound(2)).unwrap();
    assert_eq!(r_new.snapshot_all().unwrap().entries.len(), 1);
}

#[test]
fn restarted_dataplane_continues_sequence_numbers() {
    let t = TempRegion::new("seq");
    let mut w = SaDb::create(t.path(), 4).unwrap();
    let s = w.install(&outbound(9)).unwrap();
    {
        let r = SaDb::open(t.path()).unwrap();
        assert_eq!(r.reserve_outbound_seq(s, 64).unwrap(), 1..65);
        assert_eq!(r.reserve_outbound_seq(s, 10).unwrap(), 65..75);
    } // dataplane exits
    let r = SaDb::open(t.path()).unwrap();
    assert_eq!(r.reserve_outbound_seq(s, 1).unwrap(), 75..76);
    // Control restarting does not reset them either.
    drop(w);
    let w = SaDb::open_writer(t.path()).unwrap();
    assert_eq!(w.reader().reserve_outbound_seq(s, 1).unwrap(), 76..77);
}
