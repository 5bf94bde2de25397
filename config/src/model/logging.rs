//! System message logging (`logging host`, `logging trap`, `logging buffered`,
//! `logging rate-limit`, `[no] logging console`), with IOS's defaults.

use std::net::Ipv4Addr;

/// IOS severity levels by number, 0 (emergencies) … 7 (debugging).
pub const LEVEL_NAMES: [&str; 8] = [
    "emergencies",
    "alerts",
    "critical",
    "errors",
    "warnings",
    "notifications",
    "informational",
    "debugging",
];

/// The name IOS gives severity `level` (`informational` for 6); `level` is 0..=7.
pub fn level_name(level: u8) -> &'static str {
    LEVEL_NAMES[usize::from(level.min(7))]
}

/// `logging host A.B.C.D [transport udp port N]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHost {
    pub addr: Ipv4Addr,
    /// UDP port (514 unless given).
    pub port: u16,
}

/// `logging buffered [SIZE] [LEVEL]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBuffer {
    /// Bytes of message text the buffer keeps (IOS default 4096); the oldest go first.
    pub size: u32,
    /// Messages at this severity or more severe (lower number) are kept (default 7).
    pub level: u8,
}

impl LogBuffer {
    pub const DEFAULT_SIZE: u32 = 4096;
    pub const DEFAULT_LEVEL: u8 = 7;
}

/// What `logging rate-limit` limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitScope {
    /// `logging rate-limit N` and `logging rate-limit all N`: every destination.
    All,
    /// `logging rate-limit console N`: the console (the daemon's own log) only.
    Console,
}

/// `logging rate-limit [console|all] N`: at most N messages a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub scope: RateLimitScope,
    pub per_second: u32,
}

/// The logging configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logging {
    /// Syslog servers, in configuration order.
    pub hosts: Vec<LogHost>,
    /// `logging trap LEVEL`: messages at this severity or more severe go to the hosts
    /// (IOS default 6, informational).
    pub trap: u8,
    /// `logging buffered`: None unless configured.
    pub buffered: Option<LogBuffer>,
    /// `logging console` (on by default; `no logging console` turns it off): the daemon's
    /// own log (stderr, so the journal under systemd).
    pub console: bool,
    pub rate_limit: Option<RateLimit>,
}

impl Logging {
    pub const DEFAULT_TRAP: u8 = 6;
    pub const DEFAULT_PORT: u16 = 514;
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            hosts: Vec::new(),
            trap: Logging::DEFAULT_TRAP,
            buffered: None,
            console: true,
            rate_limit: None,
        }
    }
}
