//! Typed errors of the SA database, sorted by who is to blame: the file system / another
//! process (open), the caller (write), or a writer that stopped mid-update (read).

use std::io;
use std::path::PathBuf;

/// Why a region could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A system call on the region file failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path exists but is not a regular file.
    #[error("region is not a regular file")]
    NotRegular,
    /// The region file grants access to group or others (must be 0600).
    #[error("region file mode {0:04o} is too open (must be 0600)")]
    LooseMode(u32),
    /// The region file belongs to another user.
    #[error("region file owned by uid {owner}, expected {expected}")]
    WrongOwner { owner: u32, expected: u32 },
    /// The file is shorter than its header says (or than a header).
    #[error("region truncated: {actual} bytes, expected {expected}")]
    Truncated { expected: u64, actual: u64 },
    /// The magic word is zero: the file was created but never initialised.
    #[error("region not initialised")]
    NotInitialized,
    /// Not an espgw SA database.
    #[error("bad magic {0:#018x}")]
    BadMagic(u64),
    /// Written by an incompatible version of espgw.
    #[error("layout version {found} not supported (this build: {supported})")]
    UnsupportedVersion { found: u64, supported: u64 },
    /// The static header words do not match their checksum.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// A size or offset in the header disagrees with this build's layout.
    #[error("header field {0} does not match the layout")]
    LayoutMismatch(&'static str),
    /// A capacity is zero, too large or not a power of two.
    #[error("bad geometry: {0}")]
    BadGeometry(&'static str),
    /// Another process holds the writer lock on this region.
    #[error("another writer holds the region")]
    WriterBusy,
}

/// Why a writer operation was refused. Nothing in the region changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Every slot holds an SA.
    #[error("SA database full")]
    Full,
    /// The slot id is out of range or the slot holds no SA.
    #[error("slot {0} holds no SA")]
    NoSuchSlot(u32),
    /// An active or dying inbound SA with this SPI exists already.
    #[error("inbound SPI {0:#010x} already installed")]
    DuplicateInboundSpi(u32),
    /// The record cannot be stored (a field out of range).
    #[error("invalid SA record: {0}")]
    InvalidRecord(&'static str),
}

/// Why a read of the region failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A record or the index stayed mid-update through every retry: the writer is stalled
    /// (or died mid-write; the next writer to attach repairs it).
    #[error("writer stalled mid-update")]
    WriterStalled,
    /// The slot id is out of range.
    #[error("slot {0} out of range")]
    NoSuchSlot(u32),
    /// A consistent copy of the record does not decode.
    #[error("slot {slot}: corrupt record ({why})")]
    CorruptRecord { slot: u32, why: &'static str },
}

/// Why outbound sequence numbers could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    /// The SA's sequence space is used up: it must be replaced (RFC 4303 §3.3.3).
    #[error("sequence numbers exhausted")]
    Exhausted,
    /// The slot id is out of range.
    #[error("slot {0} out of range")]
    NoSuchSlot(u32),
}
