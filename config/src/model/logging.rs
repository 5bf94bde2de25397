//! System message logging (`logging host`, `logging trap`, `logging facility`,
//! `logging buffered`, `logging rate-limit`, `[no] logging console`), with IOS's defaults.

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

/// `logging facility NAME`: the syslog facility of the messages sent to the `logging
/// host`s (IOS default local7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    pub const LOCAL7: Facility = Facility(23);
    /// The names IOS accepts, with their RFC 3164 codes (`sys9` … `sys14` are codes 9 …
    /// 14; `cron` is the other clock daemon, 15).
    pub const NAMES: [(&'static str, u8); 24] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("sys9", 9),
        ("sys10", 10),
        ("sys11", 11),
        ("sys12", 12),
        ("sys13", 13),
        ("sys14", 14),
        ("cron", 15),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];

    /// The facility IOS calls `name` (any case).
    pub fn from_name(name: &str) -> Option<Facility> {
        Facility::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| Facility(*c))
    }
    /// The RFC 3164 code (PRI = code × 8 + severity).
    pub fn code(self) -> u8 {
        self.0
    }
    /// The IOS name.
    pub fn name(self) -> &'static str {
        Facility::NAMES
            .iter()
            .find(|(_, c)| *c == self.0)
            .map_or("local7", |(n, _)| n)
    }
}

impl Default for Facility {
    fn default() -> Self {
        Facility::LOCAL7
    }
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
    /// `logging facility NAME` (default local7).
    pub facility: Facility,
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
            facility: Facility::LOCAL7,
            buffered: None,
            console: true,
            rate_limit: None,
        }
    }
}
