//! Parser of the IOS configuration subset an IPsec router uses.
//!
//! Sub-modes work as in IOS: a line that opens a mode (`crypto isakmp policy 1`,
//! `crypto ipsec transform-set …`, `crypto map NAME SEQ …`, `ip access-list extended NAME`,
//! `interface X`) is followed by its sub-lines. An indented line belongs to the open mode;
//! an unindented line belongs to it too when it is one of that mode's commands and not a
//! global one (what a pasted, unindented configuration looks like), otherwise it closes the
//! mode. `!` (at the start of a line) is a comment, `exit` closes a mode, `end` ends the
//! configuration.
//!
//! Lines that are valid IOS but have nothing to do with IPsec (`hostname` aside, which is
//! kept) are skipped with a [`ConfigWarning`] carrying the line number. A malformed line is
//! a [`ConfigError`] with its line number and the reason; a reference that does not resolve
//! (transform set, access list, crypto map, interface) is an error naming the referencing
//! line. [`parse_config`] stops at the first error; [`check_config`] reports them all.
//!
//! Deviation from IOS, on purpose: IPsec SA lifetimes down to 30 seconds are accepted (IOS
//! wants at least 120) so that rekey can be tested in a minute.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use super::model::*;
use super::names;

mod pki;
use pki::PkiMode;

/// A parse error: the line it is on (1-based) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ConfigError {
    pub line: usize,
    pub kind: ConfigErrorKind,
}

/// Why a line was rejected. `command` names the command as the operator wrote it
/// (`encr`, `crypto isakmp key`, `access-list 101`, `set peer`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigErrorKind {
    /// A token is not what the grammar allows at that place (`got: None` = end of line).
    #[error("{command}: expected {expected}, got {}", Got(.got))]
    Syntax {
        command: String,
        expected: String,
        got: Option<String>,
    },
    /// A number outside the range IOS accepts.
    #[error("{command}: {value} is out of range {min}-{max}")]
    Range {
        command: String,
        value: u64,
        min: u64,
        max: u64,
    },
    /// Valid IOS that espgw cannot do (AH, manual keying, encrypted keys…).
    #[error("{command}: {what} is not supported")]
    Unsupported { command: String, what: String },
    /// A name that is not defined anywhere in the configuration.
    #[error("{command}: {what} {name:?} is not defined")]
    Unresolved {
        command: String,
        what: &'static str,
        name: String,
    },
    /// A line that is well-formed but contradicts itself or the configuration.
    #[error("{command}: {reason}")]
    Invalid { command: String, reason: String },
}

struct Got<'a>(&'a Option<String>);
impl fmt::Display for Got<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "{t:?}"),
            None => f.write_str("end of line"),
        }
    }
}

/// Something the parser skipped or that will not work as the operator may expect.
/// `line` 0 means the warning is about the command line (`--interface-map`), not a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// A successfully parsed configuration and the warnings met on the way.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

/// Everything `espgw check-config` reports: the configuration as far as it parsed, every
/// warning and every error (a line in error is skipped and parsing goes on).
#[derive(Clone, Debug)]
pub struct Report {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
    pub errors: Vec<ConfigError>,
}

/// Parse a configuration; the first error (by line) fails it.
pub fn parse_config(text: &str, ifmap: &InterfaceMap) -> Result<Parsed, ConfigError> {
    let report = check_config(text, ifmap);
    match report.errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(Parsed {
            config: report.config,
            warnings: report.warnings,
        }),
    }
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse { path: String, source: ConfigError },
}

/// Read and parse a configuration file (invalid UTF-8 is replaced, and then fails the line
/// it is on if it matters there).
pub fn load_config(path: &Path, ifmap: &InterfaceMap) -> Result<Parsed, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_config(&text, ifmap).map_err(|source| LoadError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// Parse everything, collecting all warnings and errors.
pub fn check_config(text: &str, ifmap: &InterfaceMap) -> Report {
    let mut p = Parser::new(ifmap);
    for (idx, raw) in text.lines().enumerate() {
        let no = idx + 1;
        if p.ended {
            if !raw.trim().is_empty() {
                p.warn(no, "ignored: configuration text after `end`");
                break;
            }
            continue;
        }
        p.line(no, raw);
    }
    p.finish()
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

type R<T> = Result<T, ConfigErrorKind>;

/// The tokens of one line and a cursor over them.
struct Toks<'a> {
    toks: Vec<&'a str>,
    pos: usize,
    command: String,
}

impl<'a> Toks<'a> {
    fn new(text: &'a str) -> Self {
        Toks {
            toks: text.split_whitespace().collect(),
            pos: 0,
            command: String::new(),
        }
    }
    fn cmd(&mut self, c: impl Into<String>) {
        self.command = c.into();
    }
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).copied()
    }
    fn peek_is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.eq_ignore_ascii_case(kw))
    }
    fn eat(&mut self, kw: &str) -> bool {
        if self.peek_is(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn syntax(&self, expected: &str) -> ConfigErrorKind {
        ConfigErrorKind::Syntax {
            command: self.command.clone(),
            expected: expected.to_string(),
            got: self.peek().map(str::to_string),
        }
    }
    fn next(&mut self, expected: &str) -> R<&'a str> {
        match self.peek() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(self.syntax(expected)),
        }
    }
    /// The rest of the line, as written (single-spaced).
    fn rest(&mut self) -> String {
        let s = self.toks[self.pos..].join(" ");
        self.pos = self.toks.len();
        s
    }
    fn end(&self) -> R<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("end of line")),
        }
    }
    fn expect(&mut self, kw: &str) -> R<()> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(self.syntax(kw))
        }
    }
    fn number(&mut self, expected: &str, min: u64, max: u64) -> R<u64> {
        let t = self.peek().ok_or_else(|| self.syntax(expected))?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.syntax(expected));
        }
        let v: u64 = t.parse().map_err(|_| ConfigErrorKind::Range {
            command: self.command.clone(),
            value: u64::MAX,
            min,
            max,
        })?;
        if v < min || v > max {
            return Err(ConfigErrorKind::Range {
                command: self.command.clone(),
                value: v,
                min,
                max,
            });
        }
        self.pos += 1;
        Ok(v)
    }
    fn ipv4(&mut self, expected: &str) -> R<Ipv4Addr> {
        let t = self.peek().ok_or_else(|| self.syntax(expected))?;
        let a = t.parse::<Ipv4Addr>().map_err(|_| self.syntax(expected))?;
        self.pos += 1;
        Ok(a)
    }
    /// One of `choices` (case-insensitive); returns its index.
    fn choice(&mut self, choices: &[&str], expected: &str) -> R<usize> {
        let t = self.peek().ok_or_else(|| self.syntax(expected))?;
        let i = choices
            .iter()
            .position(|c| c.eq_ignore_ascii_case(t))
            .ok_or_else(|| self.syntax(expected))?;
        self.pos += 1;
        Ok(i)
    }
}

fn is_kw(t: Option<&&str>, kw: &str) -> bool {
    t.is_some_and(|t| t.eq_ignore_ascii_case(kw))
}

// ---------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Global,
    Policy(u16),
    TransformSet(String),
    MapEntry(String, u32),
    NamedAcl(String),
    Interface(usize),
    /// `crypto isakmp peer address A` (index into `isakmp_peers`).
    IsakmpPeer(usize),
    /// `crypto pki …` and `crypto key pubkey-chain rsa` blocks ([`pki`]).
    Pki(PkiMode),
    /// `crypto isakmp client configuration group NAME`.
    ClientGroup(String),
    /// Inside a group's `banner c … c`: every line is banner text until the delimiter.
    Banner(remote_access::BannerInProgress),
    /// `crypto dynamic-map NAME SEQ`.
    DynamicMapEntry(String, u32),
    /// `crypto ipsec client ezvpn NAME` (Easy VPN client).
    Ezvpn(String),
    /// A block espgw does not use (`line vty 0 4`): its sub-lines are skipped with a warning.
    Foreign(String),
    /// The block's head was in error: its sub-lines are skipped silently.
    Broken,
}

/// Where a reference was made, to check it once everything is read.
struct Reference {
    line: usize,
    command: &'static str,
    what: &'static str,
    name: String,
}

struct Parser<'m> {
    ifmap: &'m InterfaceMap,
    cfg: Config,
    mode: Mode,
    ended: bool,
    warnings: Vec<ConfigWarning>,
    errors: Vec<ConfigError>,
    transform_set_refs: Vec<Reference>,
    acl_refs: Vec<Reference>,
    map_refs: Vec<Reference>,
    iface_refs: Vec<Reference>,
    /// Line of each `set peer` (map, seq, peer) for the "no key" warning.
    peer_lines: Vec<(usize, Ipv4Addr)>,
    /// Line of each `crypto isakmp policy N`.
    policy_lines: BTreeMap<u16, usize>,
    /// `pool NAME` lines of client groups.
    group_refs: Vec<Reference>,
    /// AAA list references: (line, command, login list?, name).
    aaa_refs: Vec<(usize, &'static str, bool, String)>,
    /// `crypto ipsec client ezvpn NAME [inside]` under interfaces: (line, name, interface,
    /// inside?, negated?).
    ezvpn_iface_refs: Vec<(usize, String, String, bool, bool)>,
}

/// Commands of each sub-mode, recognised on unindented lines too.
fn is_submode_command(mode: &Mode, toks: &[&str]) -> bool {
    let first = toks
        .first()
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_default();
    let first = first.as_str();
    let first = if first == "no" {
        toks.get(1)
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_default()
    } else {
        first.to_string()
    };
    let first = first.as_str();
    match mode {
        Mode::Policy(_) => {
            matches!(
                first,
                "encr" | "encryption" | "hash" | "authentication" | "group" | "lifetime"
            )
        }
        Mode::TransformSet(_) => first == "mode",
        Mode::IsakmpPeer(_) => matches!(first, "set" | "description"),
        Mode::MapEntry(..) | Mode::DynamicMapEntry(..) => {
            matches!(first, "set" | "match" | "description" | "reverse-route")
        }
        Mode::ClientGroup(_) => remote_access::GROUP_COMMANDS.contains(&first),
        Mode::Ezvpn(_) => ezvpn::EZVPN_COMMANDS.contains(&first),
        Mode::Banner(_) => true,
        Mode::NamedAcl(_) => {
            matches!(first, "permit" | "deny" | "remark")
                || first.bytes().next().is_some_and(|b| b.is_ascii_digit())
        }
        Mode::Interface(_) => match first {
            "description" | "shutdown" => true,
            // `ip address` is the interface's; `ip access-list`, `ip route` are global.
            "ip" => is_kw(
                toks.iter()
                    .skip_while(|t| t.eq_ignore_ascii_case("no"))
                    .nth(1),
                "address",
            ),
            // `crypto map NAME` is the interface's; `crypto map NAME SEQ …` is global.
            // `crypto ipsec client ezvpn NAME inside` is the interface's too.
            "crypto" => {
                (toks.len() == 3 && is_kw(toks.get(1), "map"))
                    || (toks.len() == 6
                        && is_kw(toks.get(2), "client")
                        && is_kw(toks.get(5), "inside"))
            }
            _ => false,
        },
        Mode::Pki(m) => pki::is_submode_command(m, first),
        Mode::Global | Mode::Foreign(_) | Mode::Broken => false,
    }
}

impl<'m> Parser<'m> {
    fn new(ifmap: &'m InterfaceMap) -> Self {
        Parser {
            ifmap,
            cfg: Config::default(),
            mode: Mode::Global,
            ended: false,
            warnings: Vec::new(),
            errors: Vec::new(),
            transform_set_refs: Vec::new(),
            acl_refs: Vec::new(),
            map_refs: Vec::new(),
            iface_refs: Vec::new(),
            peer_lines: Vec::new(),
            policy_lines: BTreeMap::new(),
            group_refs: Vec::new(),
            aaa_refs: Vec::new(),
            ezvpn_iface_refs: Vec::new(),
        }
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            line,
            message: message.into(),
        });
    }

    fn error(&mut self, line: usize, kind: ConfigErrorKind) {
        self.errors.push(ConfigError { line, kind });
    }

    fn line(&mut self, no: usize, raw: &str) {
        if let Mode::Banner(b) = &self.mode {
            let b = b.clone();
            self.banner_line(b, raw);
            return;
        }
        let indented = raw.starts_with(|c: char| c.is_whitespace());
        let text = raw.trim();
        if text.is_empty() {
            return;
        }
        if text.starts_with('!') {
            if !indented {
                self.mode = Mode::Global;
            }
            return;
        }
        let mut t = Toks::new(text);
        if t.toks.len() == 1 && t.peek_is("end") {
            self.ended = true;
            return;
        }
        if t.toks.len() == 1 && t.peek_is("exit") {
            self.mode = Mode::Global;
            return;
        }
        let sub =
            self.mode != Mode::Global && (indented || is_submode_command(&self.mode, &t.toks));
        let result = if sub {
            match self.mode.clone() {
                Mode::Foreign(head) => {
                    self.warn(
                        no,
                        format!("skipped (in `{head}`, not used by espgw): {text}"),
                    );
                    Ok(())
                }
                Mode::Broken => Ok(()),
                mode => self.sub_line(no, &mode, &mut t),
            }
        } else {
            self.mode = Mode::Global;
            let r = self.global_line(no, &mut t, text);
            if r.is_err() && self.mode == Mode::Global && opens_block(&t.toks) {
                self.mode = Mode::Broken;
            }
            r
        };
        if let Err(kind) = result {
            self.error(no, kind);
        }
    }

    // -----------------------------------------------------------------------------------
    // Global lines
    // -----------------------------------------------------------------------------------

    fn global_line(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        let first = t.peek().unwrap_or("").to_ascii_lowercase();
        match first.as_str() {
            "hostname" => {
                t.cmd("hostname");
                t.pos += 1;
                let name = t.next("a host name")?;
                t.end()?;
                self.cfg.hostname = Some(name.to_string());
                Ok(())
            }
            "crypto" => self.crypto_line(no, t, text),
            "logging" => self.logging_line(no, t, text, false),
            "no" if is_kw(t.toks.get(1), "logging") => {
                t.pos = 1;
                self.logging_line(no, t, text, true)
            }
            "access-list" => self.numbered_acl_line(no, t),
            "ip" if is_kw(t.toks.get(1), "access-list") => self.ip_access_list(no, t, text),
            "interface" => self.interface_line(no, t),
            "aaa" => self.aaa_line(no, t, text),
            "username" => self.username_line(no, t),
            "ip" if is_kw(t.toks.get(1), "local") && is_kw(t.toks.get(2), "pool") => {
                self.ip_local_pool(no, t)
            }
            "version" | "service" | "boot-start-marker" | "boot-end-marker" | "building"
            | "current" => Ok(()),
            _ => {
                self.foreign(no, t, text);
                Ok(())
            }
        }
    }

    /// A line espgw does not use: warn, and treat what is indented under it as its block.
    fn foreign(&mut self, no: usize, t: &Toks<'_>, text: &str) {
        self.warn(no, format!("skipped (not used by espgw): {text}"));
        let _ = t;
        self.mode = Mode::Foreign(text.to_string());
    }

    fn crypto_line(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        t.pos = 1;
        if t.eat("isakmp") {
            if t.eat("policy") {
                t.cmd("crypto isakmp policy");
                let n = t.number("a priority 1-10000", 1, 10000)? as u16;
                t.end()?;
                self.cfg
                    .isakmp_policies
                    .entry(n)
                    .or_insert_with(|| IsakmpPolicy::with_defaults(n));
                self.policy_lines.entry(n).or_insert(no);
                self.mode = Mode::Policy(n);
                Ok(())
            } else if t.eat("key") {
                t.cmd("crypto isakmp key");
                self.isakmp_key(no, t)
            } else if t.eat("keepalive") {
                t.cmd("crypto isakmp keepalive");
                let interval_secs = t.number("keepalive seconds 10-3600", 10, 3600)? as u32;
                let mut retry_secs = Keepalive::DEFAULT_RETRY_SECS;
                if t.peek()
                    .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
                {
                    retry_secs = t.number("retry seconds 2-60", 2, 60)? as u32;
                }
                let mut mode = DpdMode::OnDemand;
                if t.peek().is_some() {
                    mode = match t.choice(&["periodic", "on-demand"], "periodic|on-demand")? {
                        0 => DpdMode::Periodic,
                        _ => DpdMode::OnDemand,
                    };
                }
                t.end()?;
                self.cfg.keepalive = Some(Keepalive {
                    interval_secs,
                    retry_secs,
                    mode,
                });
                Ok(())
            } else if t.eat("nat") {
                t.cmd("crypto isakmp nat");
                t.expect("keepalive")?;
                t.cmd("crypto isakmp nat keepalive");
                let s = t.number("seconds 5-3600", 5, 3600)? as u32;
                t.end()?;
                self.cfg.nat_keepalive_secs = Some(s);
                Ok(())
            } else if t.eat("peer") {
                t.cmd("crypto isakmp peer");
                t.expect("address")?;
                let addr = t.ipv4("an IPv4 address")?;
                t.end()?;
                let idx = match self.cfg.isakmp_peers.iter().position(|p| p.addr == addr) {
                    Some(i) => i,
                    None => {
                        self.cfg.isakmp_peers.push(IsakmpPeer {
                            addr,
                            aggressive_mode: false,
                            client_endpoint: None,
                            description: None,
                            line: no,
                        });
                        self.cfg.isakmp_peers.len() - 1
                    }
                };
                self.mode = Mode::IsakmpPeer(idx);
                Ok(())
            } else if t.eat("aggressive-mode") {
                t.cmd("crypto isakmp aggressive-mode");
                t.expect("disable")?;
                t.end()?;
                self.cfg.aggressive_mode_disabled = true;
                Ok(())
            } else if t.eat("client") {
                self.client_group_head(no, t)
            } else if t.eat("xauth") {
                self.xauth_line(no, t, text)
            } else if t.eat("fragmentation") {
                t.cmd("crypto isakmp fragmentation");
                let mut mtu = None;
                if t.eat("mtu") {
                    t.cmd("crypto isakmp fragmentation mtu");
                    mtu = Some(t.number("an IP datagram size 576-1500", 576, 1500)? as u16);
                }
                t.end()?;
                self.cfg.isakmp_fragmentation = Some(mtu);
                Ok(())
            } else if t.eat("identity") {
                t.cmd("crypto isakmp identity");
                self.isakmp_identity(t)
            } else {
                self.foreign(no, t, text);
                Ok(())
            }
        } else if t.eat("ipsec") {
            if t.eat("client") {
                self.ezvpn_head(no, t)
            } else if t.eat("transform-set") {
                t.cmd("crypto ipsec transform-set");
                self.transform_set(no, t)
            } else if t.eat("security-association") {
                t.cmd("crypto ipsec security-association");
                if t.eat("lifetime") {
                    t.cmd("crypto ipsec security-association lifetime");
                    let (secs, kb) = lifetime_value(t)?;
                    t.end()?;
                    if let Some(s) = secs {
                        self.cfg.ipsec_sa_lifetime.seconds = s;
                    }
                    if let Some(k) = kb {
                        self.cfg.ipsec_sa_lifetime.kilobytes = k;
                    }
                    Ok(())
                } else if t.eat("replay") {
                    t.cmd("crypto ipsec security-association replay");
                    match t.choice(&["window-size", "disable"], "window-size|disable")? {
                        0 => {
                            t.cmd("crypto ipsec security-association replay window-size");
                            let n = if t.peek().is_some() {
                                let n = t.number("64|128|256|512|1024", 64, 1024)? as u32;
                                if !matches!(n, 64 | 128 | 256 | 512 | 1024) {
                                    t.pos -= 1;
                                    return Err(t.syntax("64|128|256|512|1024"));
                                }
                                n
                            } else {
                                Config::DEFAULT_REPLAY_WINDOW
                            };
                            t.end()?;
                            self.cfg.replay_window = n;
                        }
                        _ => {
                            t.end()?;
                            self.cfg.replay_window = 0;
                        }
                    }
                    Ok(())
                } else {
                    self.foreign(no, t, text);
                    Ok(())
                }
            } else {
                self.foreign(no, t, text);
                Ok(())
            }
        } else if t.eat("map") {
            t.cmd("crypto map");
            self.crypto_map(no, t, text)
        } else if t.peek_is("pki") || t.peek_is("key") {
            self.pki_global(no, t, text)
        } else if t.eat("dynamic-map") {
            self.dynamic_map_head(no, t)
        } else {
            self.foreign(no, t, text);
            Ok(())
        }
    }

    fn isakmp_key(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        // `crypto isakmp key [0|6] KEY address A [MASK] [no-xauth]` / `hostname H`.
        let mut key = t.next("a key")?;
        if (key == "0" || key == "6")
            && t.peek().is_some_and(|n| {
                !n.eq_ignore_ascii_case("address") && !n.eq_ignore_ascii_case("hostname")
            })
        {
            if key == "6" {
                return Err(ConfigErrorKind::Unsupported {
                    command: t.command.clone(),
                    what: "an encrypted (type 6) key".into(),
                });
            }
            key = t.next("a key")?;
        }
        let peer = match t.choice(&["address", "hostname"], "address|hostname")? {
            0 => {
                let addr = t.ipv4("an IPv4 address")?;
                let mask = if t.peek().is_some_and(|x| x.parse::<Ipv4Addr>().is_ok()) {
                    let m = t.ipv4("a netmask")?;
                    if !is_contiguous_netmask(m) {
                        t.pos -= 1;
                        return Err(t.syntax("a contiguous netmask"));
                    }
                    m
                } else {
                    Ipv4Addr::BROADCAST
                };
                let a = Ipv4Addr::from(u32::from(addr) & u32::from(mask));
                KeyPeer::Address { addr: a, mask }
            }
            _ => KeyPeer::Hostname(t.next("a host name")?.to_string()),
        };
        let no_xauth = t.eat("no-xauth");
        t.end()?;
        // A later key for the same peer replaces the earlier one, as in IOS.
        self.cfg.isakmp_keys.retain(|k| k.peer != peer);
        self.cfg.isakmp_keys.push(IsakmpKey {
            key: PresharedKey::new(key.as_bytes()),
            peer,
            no_xauth,
            line: no,
        });
        Ok(())
    }

    fn transform_set(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        let name = t.next("a transform set name")?.to_string();
        let mut encryption: Option<EspEncryption> = None;
        let mut auth: Option<EspAuth> = None;
        let mut written: Vec<&str> = Vec::new();
        const EXPECTED: &str = "esp-des|esp-3des|esp-aes [128|192|256]|esp-gcm [128|256]|esp-null|esp-md5-hmac|esp-sha-hmac|esp-sha256-hmac";
        while let Some(tok) = t.peek() {
            let lower = tok.to_ascii_lowercase();
            let start = t.pos;
            t.pos += 1;
            let enc = match lower.as_str() {
                "esp-des" => Some(EspEncryption::Des),
                "esp-3des" => Some(EspEncryption::TripleDes),
                "esp-null" => Some(EspEncryption::Null),
                "esp-aes" | "esp-gcm" => {
                    let gcm = lower == "esp-gcm";
                    let size = if t
                        .peek()
                        .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
                    {
                        let bits = t.next("128|192|256")?;
                        let size = bits.parse().ok().and_then(AesKeySize::from_bits);
                        match size {
                            Some(AesKeySize::K192) if gcm => None,
                            s => s,
                        }
                        .ok_or_else(|| {
                            t.pos -= 1;
                            t.syntax(if gcm { "128|256" } else { "128|192|256" })
                        })?
                    } else {
                        AesKeySize::K128
                    };
                    Some(if gcm {
                        EspEncryption::Gcm(size)
                    } else {
                        EspEncryption::Aes(size)
                    })
                }
                _ => None,
            };
            if let Some(e) = enc {
                if encryption.is_some() {
                    t.pos = start;
                    return Err(ConfigErrorKind::Invalid {
                        command: t.command.clone(),
                        reason: format!("more than one encryption transform ({tok})"),
                    });
                }
                encryption = Some(e);
            } else {
                let a = match lower.as_str() {
                    "esp-md5-hmac" => EspAuth::Md5Hmac,
                    "esp-sha-hmac" => EspAuth::ShaHmac,
                    "esp-sha256-hmac" => EspAuth::Sha256Hmac,
                    l if l.starts_with("ah-") => {
                        return Err(ConfigErrorKind::Unsupported {
                            command: t.command.clone(),
                            what: format!("AH ({tok})"),
                        })
                    }
                    "comp-lzs" => {
                        return Err(ConfigErrorKind::Unsupported {
                            command: t.command.clone(),
                            what: "IP compression (comp-lzs)".into(),
                        })
                    }
                    _ => {
                        t.pos = start;
                        return Err(t.syntax(EXPECTED));
                    }
                };
                if auth.is_some() {
                    return Err(ConfigErrorKind::Invalid {
                        command: t.command.clone(),
                        reason: format!("more than one authentication transform ({tok})"),
                    });
                }
                auth = Some(a);
            }
            written.extend_from_slice(&t.toks[start..t.pos]);
        }
        let Some(encryption) = encryption else {
            return Err(if written.is_empty() {
                t.syntax(EXPECTED)
            } else {
                ConfigErrorKind::Invalid {
                    command: t.command.clone(),
                    reason:
                        "no ESP encryption transform (esp-des|esp-3des|esp-aes|esp-gcm|esp-null)"
                            .into(),
                }
            });
        };
        if matches!(encryption, EspEncryption::Gcm(_)) && auth.is_some() {
            return Err(ConfigErrorKind::Invalid {
                command: t.command.clone(),
                reason: "esp-gcm authenticates by itself; remove the hmac transform".into(),
            });
        }
        if encryption == EspEncryption::Null && auth.is_none() {
            return Err(ConfigErrorKind::Invalid {
                command: t.command.clone(),
                reason: "esp-null needs an authentication transform".into(),
            });
        }
        let transform = written.join(" ");
        let mode = self
            .cfg
            .transform_sets
            .get(&name)
            .map(|ts| ts.mode)
            .unwrap_or_default();
        self.cfg.transform_sets.insert(
            name.clone(),
            TransformSet {
                name: name.clone(),
                transform,
                encryption,
                auth,
                mode,
                line: no,
            },
        );
        self.mode = Mode::TransformSet(name);
        Ok(())
    }

    fn crypto_map(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        let name = t.next("a crypto map name")?.to_string();
        if t.eat("local-address") {
            t.cmd("crypto map local-address");
            let iface = t.rest();
            if iface.is_empty() {
                return Err(t.syntax("an interface name"));
            }
            self.iface_refs.push(Reference {
                line: no,
                command: "crypto map local-address",
                what: "interface",
                name: iface.clone(),
            });
            self.map_entry_or_new(&name).local_address_interface = Some(iface);
            return Ok(());
        }
        if t.peek()
            .is_some_and(|x| !x.bytes().all(|b| b.is_ascii_digit()))
        {
            if self.crypto_map_client(no, &name, t)? {
                return Ok(());
            }
            // `crypto map NAME isakmp-profile …`, `redundancy …`.
            self.foreign(no, t, text);
            return Ok(());
        }
        let seq = t.number("a sequence number 1-65535", 1, 65535)? as u32;
        if t.peek().is_some() {
            match t.choice(&["ipsec-isakmp", "ipsec-manual", "gdoi"], "ipsec-isakmp")? {
                0 => {
                    if t.eat("dynamic") {
                        return self.crypto_map_dynamic(no, &name, seq, t);
                    }
                }
                1 => {
                    return Err(ConfigErrorKind::Unsupported {
                        command: t.command.clone(),
                        what: "manual keying (ipsec-manual)".into(),
                    })
                }
                _ => {
                    return Err(ConfigErrorKind::Unsupported {
                        command: t.command.clone(),
                        what: "GDOI".into(),
                    })
                }
            }
        }
        t.end()?;
        self.map_entry_or_new(&name)
            .entries
            .entry(seq)
            .or_insert_with(|| remote_access::new_map_entry(seq, no));
        self.mode = Mode::MapEntry(name, seq);
        Ok(())
    }

    fn map_entry_or_new(&mut self, name: &str) -> &mut CryptoMap {
        self.cfg
            .crypto_maps
            .entry(name.to_string())
            .or_insert_with(|| CryptoMap {
                name: name.to_string(),
                entries: BTreeMap::new(),
                local_address_interface: None,
            })
    }

    fn numbered_acl_line(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.cmd("access-list");
        t.pos = 1;
        let num = t.next("an access list number")?;
        let n: u64 = if num.bytes().all(|b| b.is_ascii_digit()) && num.len() <= 5 {
            num.parse().unwrap_or(0)
        } else {
            t.pos -= 1;
            return Err(t.syntax("an access list number"));
        };
        t.cmd(format!("access-list {num}"));
        if (1..=99).contains(&n) || (1300..=1999).contains(&n) {
            return Err(ConfigErrorKind::Unsupported {
                command: t.command.clone(),
                what: "a standard access list (crypto ACLs are extended: 100-199, 2000-2699)"
                    .into(),
            });
        }
        if !((100..=199).contains(&n) || (2000..=2699).contains(&n)) {
            return Err(ConfigErrorKind::Range {
                command: t.command.clone(),
                value: n,
                min: 100,
                max: 2699,
            });
        }
        if t.peek_is("remark") {
            return Ok(());
        }
        let entry = acl_entry(t, no)?;
        let name = n.to_string();
        self.cfg
            .access_lists
            .entry(name.clone())
            .or_insert_with(|| AccessList {
                name,
                kind: AclKind::Numbered,
                entries: Vec::new(),
                line: no,
            })
            .entries
            .push(entry);
        Ok(())
    }

    fn ip_access_list(&mut self, no: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        t.pos = 2;
        t.cmd("ip access-list");
        if !t.eat("extended") {
            self.foreign(no, t, text);
            return Ok(());
        }
        t.cmd("ip access-list extended");
        let name = t.next("an access list name")?.to_string();
        t.end()?;
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = name.parse().unwrap_or(0);
            if !((100..=199).contains(&n) || (2000..=2699).contains(&n)) {
                return Err(ConfigErrorKind::Range {
                    command: t.command.clone(),
                    value: n,
                    min: 100,
                    max: 2699,
                });
            }
        }
        self.cfg
            .access_lists
            .entry(name.clone())
            .or_insert_with(|| AccessList {
                name: name.clone(),
                kind: AclKind::Named,
                entries: Vec::new(),
                line: no,
            });
        self.mode = Mode::NamedAcl(name);
        Ok(())
    }

    fn interface_line(&mut self, no: usize, t: &mut Toks<'_>) -> R<()> {
        t.cmd("interface");
        t.pos = 1;
        // `interface FastEthernet 0/0` is the same as `interface FastEthernet0/0`.
        let name = t.rest().replace(' ', "");
        if name.is_empty() {
            return Err(t.syntax("an interface name"));
        }
        let idx = match self
            .cfg
            .interfaces
            .iter()
            .position(|i| i.name.eq_ignore_ascii_case(&name))
        {
            Some(i) => i,
            None => {
                self.cfg.interfaces.push(Interface {
                    linux_name: self.ifmap.resolve(&name),
                    name,
                    address: None,
                    crypto_map: None,
                    description: None,
                    shutdown: false,
                    line: no,
                });
                self.cfg.interfaces.len() - 1
            }
        };
        self.mode = Mode::Interface(idx);
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Sub-mode lines
    // -----------------------------------------------------------------------------------

    fn sub_line(&mut self, no: usize, mode: &Mode, t: &mut Toks<'_>) -> R<()> {
        let text = t.toks.join(" ");
        match mode {
            Mode::Policy(n) => self.policy_line(*n, t),
            Mode::TransformSet(name) => {
                if t.eat("mode") {
                    t.cmd("mode");
                    let m = match t.choice(&["tunnel", "transport"], "tunnel|transport")? {
                        0 => IpsecMode::Tunnel,
                        _ => IpsecMode::Transport,
                    };
                    t.end()?;
                    if let Some(ts) = self.cfg.transform_sets.get_mut(name) {
                        ts.mode = m;
                    }
                    Ok(())
                } else {
                    self.warn(no, format!("skipped (not used by espgw): {text}"));
                    Ok(())
                }
            }
            Mode::MapEntry(map, seq) => self.map_entry_line(no, (false, map), *seq, t, &text),
            Mode::DynamicMapEntry(map, seq) => self.map_entry_line(no, (true, map), *seq, t, &text),
            Mode::ClientGroup(g) => self.client_group_line(no, g, t, &text),
            Mode::Ezvpn(name) => self.ezvpn_line(no, name, t, &text),
            Mode::NamedAcl(name) => {
                t.cmd(format!("ip access-list extended {name}"));
                if t.peek()
                    .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
                {
                    t.number("a sequence number", 1, 2_147_483_647)?;
                }
                if t.peek_is("remark") {
                    return Ok(());
                }
                let entry = acl_entry(t, no)?;
                if let Some(acl) = self.cfg.access_lists.get_mut(name) {
                    acl.entries.push(entry);
                }
                Ok(())
            }
            Mode::Interface(idx) => self.interface_sub_line(no, *idx, t, &text),
            Mode::IsakmpPeer(idx) => self.isakmp_peer_line(no, *idx, t, &text),
            Mode::Pki(m) => self.pki_sub_line(no, m, t, &text),
            Mode::Global | Mode::Foreign(_) | Mode::Broken | Mode::Banner(_) => Ok(()),
        }
    }

    fn policy_line(&mut self, n: u16, t: &mut Toks<'_>) -> R<()> {
        let negate = t.eat("no");
        let kw = t
            .next("encr|hash|authentication|group|lifetime")?
            .to_ascii_lowercase();
        let p = self
            .cfg
            .isakmp_policies
            .get_mut(&n)
            .expect("policy created with its mode");
        let dflt = IsakmpPolicy::with_defaults(n);
        match kw.as_str() {
            "encr" | "encryption" => {
                t.cmd(kw.clone());
                if negate {
                    p.encryption = dflt.encryption;
                    return Ok(());
                }
                const E: &str = "des|3des|aes [128|192|256]";
                p.encryption = match t.choice(&["des", "3des", "aes"], E)? {
                    0 => IkeEncryption::Des,
                    1 => IkeEncryption::TripleDes,
                    _ => {
                        let size = if t.peek().is_some() {
                            let bits = t.next(E)?;
                            bits.parse()
                                .ok()
                                .and_then(AesKeySize::from_bits)
                                .ok_or_else(|| {
                                    t.pos -= 1;
                                    t.syntax("128|192|256")
                                })?
                        } else {
                            AesKeySize::K128
                        };
                        IkeEncryption::Aes(size)
                    }
                };
            }
            "hash" => {
                t.cmd("hash");
                if negate {
                    p.hash = dflt.hash;
                    return Ok(());
                }
                p.hash = match t.choice(&["md5", "sha", "sha256"], "md5|sha|sha256")? {
                    0 => IkeHash::Md5,
                    1 => IkeHash::Sha,
                    _ => IkeHash::Sha256,
                };
            }
            "authentication" => {
                t.cmd("authentication");
                if negate {
                    p.auth = dflt.auth;
                    return Ok(());
                }
                p.auth = match t.choice(
                    &["pre-share", "rsa-sig", "rsa-encr"],
                    "pre-share|rsa-sig|rsa-encr",
                )? {
                    0 => IkeAuth::PreShare,
                    1 => IkeAuth::RsaSig,
                    _ => IkeAuth::RsaEncr,
                };
            }
            "group" => {
                t.cmd("group");
                if negate {
                    p.group = dflt.group;
                    return Ok(());
                }
                const G: &str = "1|2|5|14|15|16";
                let g = t.next(G)?;
                p.group = g
                    .parse()
                    .ok()
                    .and_then(DhGroup::from_number)
                    .ok_or_else(|| {
                        t.pos -= 1;
                        t.syntax(G)
                    })?;
            }
            "lifetime" => {
                t.cmd("lifetime");
                if negate {
                    p.lifetime_secs = dflt.lifetime_secs;
                    return Ok(());
                }
                p.lifetime_secs = t.number("seconds 60-86400", 60, 86400)? as u32;
            }
            _ => {
                t.pos -= 1;
                t.cmd("crypto isakmp policy");
                return Err(t.syntax("encr|hash|authentication|group|lifetime"));
            }
        }
        t.end()
    }

    /// A sub-line of a crypto map entry; `map` is (dynamic?, name).
    fn map_entry_line(
        &mut self,
        no: usize,
        map: (bool, &str),
        seq: u32,
        t: &mut Toks<'_>,
        text: &str,
    ) -> R<()> {
        let negate = t.eat("no");
        if t.eat("description") {
            return Ok(());
        }
        if t.eat("reverse-route") {
            t.cmd("reverse-route");
            t.eat("static");
            t.end()?;
            self.entry_mut(map, seq).reverse_route = !negate;
            return Ok(());
        }
        if t.eat("match") {
            t.cmd("match address");
            t.expect("address")?;
            let name = t.next("an access list number or name")?.to_string();
            t.end()?;
            self.acl_refs.push(Reference {
                line: no,
                command: "match address",
                what: "access list",
                name: name.clone(),
            });
            self.entry_mut(map, seq).match_address = (!negate).then_some(name);
            return Ok(());
        }
        if !t.eat("set") {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
            return Ok(());
        }
        if t.eat("peer") {
            t.cmd("set peer");
            let tok = t.peek();
            let peer = match t.ipv4("an IPv4 address") {
                Ok(a) => a,
                Err(e) => {
                    if tok.is_some_and(|x| x.contains(|c: char| c.is_ascii_alphabetic())) {
                        return Err(ConfigErrorKind::Unsupported {
                            command: t.command.clone(),
                            what: "a peer given by host name".into(),
                        });
                    }
                    return Err(e);
                }
            };
            t.eat("default");
            t.end()?;
            let e = self.entry_mut(map, seq);
            if negate {
                e.peers.retain(|p| *p != peer);
            } else if !e.peers.contains(&peer) {
                e.peers.push(peer);
                self.peer_lines.push((no, peer));
            }
            Ok(())
        } else if t.eat("transform-set") {
            t.cmd("set transform-set");
            let mut names = Vec::new();
            while let Some(n) = t.peek() {
                t.pos += 1;
                names.push(n.to_string());
            }
            if names.is_empty() && !negate {
                return Err(t.syntax("a transform set name"));
            }
            if names.len() > 6 {
                return Err(ConfigErrorKind::Invalid {
                    command: t.command.clone(),
                    reason: format!("at most 6 transform sets, got {}", names.len()),
                });
            }
            for n in &names {
                self.transform_set_refs.push(Reference {
                    line: no,
                    command: "set transform-set",
                    what: "transform set",
                    name: n.clone(),
                });
            }
            self.entry_mut(map, seq).transform_sets = if negate { Vec::new() } else { names };
            Ok(())
        } else if t.eat("pfs") {
            t.cmd("set pfs");
            let g = if t.peek().is_some() {
                const G: &str = "group1|group2|group5|group14|group15|group16";
                let tok = t.next(G)?;
                tok.to_ascii_lowercase()
                    .strip_prefix("group")
                    .and_then(|n| n.parse().ok())
                    .and_then(DhGroup::from_number)
                    .ok_or_else(|| {
                        t.pos -= 1;
                        t.syntax(G)
                    })?
            } else {
                DhGroup::Group1
            };
            t.end()?;
            self.entry_mut(map, seq).pfs = (!negate).then_some(g);
            Ok(())
        } else if t.eat("security-association") {
            t.cmd("set security-association");
            if !t.eat("lifetime") {
                self.warn(no, format!("skipped (not used by espgw): {text}"));
                return Ok(());
            }
            t.cmd("set security-association lifetime");
            let (secs, kb) = lifetime_value(t)?;
            t.end()?;
            let e = self.entry_mut(map, seq);
            if secs.is_some() {
                e.lifetime.seconds = if negate { None } else { secs };
            }
            if kb.is_some() {
                e.lifetime.kilobytes = if negate { None } else { kb };
            }
            Ok(())
        } else {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
            Ok(())
        }
    }

    fn isakmp_peer_line(&mut self, no: usize, idx: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        let negate = t.eat("no");
        if t.eat("description") {
            let d = t.rest();
            self.cfg.isakmp_peers[idx].description = (!negate).then_some(d);
            return Ok(());
        }
        if !(t.eat("set") && t.eat("aggressive-mode")) {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
            return Ok(());
        }
        t.cmd("set aggressive-mode");
        let addr = self.cfg.isakmp_peers[idx].addr;
        match t.choice(&["password", "client-endpoint"], "password|client-endpoint")? {
            0 => {
                t.cmd("set aggressive-mode password");
                if negate {
                    t.end()?;
                    self.cfg.isakmp_peers[idx].aggressive_mode = false;
                    return Ok(());
                }
                let key = t.next("a key")?;
                t.end()?;
                let peer = KeyPeer::Address {
                    addr,
                    mask: Ipv4Addr::BROADCAST,
                };
                self.cfg.isakmp_keys.retain(|k| k.peer != peer);
                self.cfg.isakmp_keys.push(IsakmpKey {
                    key: PresharedKey::new(key.as_bytes()),
                    peer,
                    no_xauth: false,
                    line: no,
                });
            }
            _ => {
                t.cmd("set aggressive-mode client-endpoint");
                if negate {
                    self.cfg.isakmp_peers[idx].client_endpoint = None;
                    return Ok(());
                }
                let kind = t.choice(
                    &["ipv4-address", "fqdn", "user-fqdn"],
                    "ipv4-address|fqdn|user-fqdn",
                )?;
                let value = if kind == 0 {
                    t.ipv4("an IPv4 address")?.to_string()
                } else {
                    t.next("a name")?.to_string()
                };
                t.end()?;
                let kw = ["ipv4-address", "fqdn", "user-fqdn"][kind];
                self.cfg.isakmp_peers[idx].client_endpoint = Some(format!("{kw} {value}"));
            }
        }
        self.cfg.isakmp_peers[idx].aggressive_mode = !negate;
        Ok(())
    }

    fn entry_mut(&mut self, (dynamic, map): (bool, &str), seq: u32) -> &mut CryptoMapEntry {
        let maps = if dynamic {
            &mut self.cfg.remote_access.dynamic_maps
        } else {
            &mut self.cfg.crypto_maps
        };
        maps.get_mut(map)
            .and_then(|m| m.entries.get_mut(&seq))
            .expect("entry created with its mode")
    }

    fn interface_sub_line(&mut self, no: usize, idx: usize, t: &mut Toks<'_>, text: &str) -> R<()> {
        let negate = t.eat("no");
        if t.eat("description") {
            let d = t.rest();
            self.cfg.interfaces[idx].description = (!negate).then_some(d);
            return Ok(());
        }
        if t.eat("shutdown") {
            t.cmd("shutdown");
            t.end()?;
            self.cfg.interfaces[idx].shutdown = !negate;
            return Ok(());
        }
        if t.peek_is("ip") && is_kw(t.toks.get(t.pos + 1), "address") {
            t.pos += 2;
            t.cmd("ip address");
            if negate {
                t.end()?;
                self.cfg.interfaces[idx].address = None;
                return Ok(());
            }
            if t.peek_is("dhcp") || t.peek_is("negotiated") {
                return Err(ConfigErrorKind::Unsupported {
                    command: t.command.clone(),
                    what: "a dynamic address".into(),
                });
            }
            let a = t.ipv4("an IPv4 address")?;
            let m = t.ipv4("a netmask")?;
            if !is_contiguous_netmask(m) {
                t.pos -= 1;
                return Err(t.syntax("a contiguous netmask"));
            }
            if t.eat("secondary") {
                t.end()?;
                self.warn(
                    no,
                    format!("skipped (secondary addresses are not used): {text}"),
                );
                return Ok(());
            }
            t.end()?;
            self.cfg.interfaces[idx].address = Some((a, m));
            return Ok(());
        }
        if t.peek_is("crypto")
            && is_kw(t.toks.get(t.pos + 1), "ipsec")
            && is_kw(t.toks.get(t.pos + 2), "client")
            && is_kw(t.toks.get(t.pos + 3), "ezvpn")
        {
            t.pos += 4;
            return self.interface_ezvpn(no, idx, negate, t);
        }
        if t.peek_is("crypto") && is_kw(t.toks.get(t.pos + 1), "map") {
            t.pos += 2;
            t.cmd("crypto map");
            if negate {
                self.cfg.interfaces[idx].crypto_map = None;
                return Ok(());
            }
            let name = t.next("a crypto map name")?.to_string();
            t.end()?;
            self.map_refs.push(Reference {
                line: no,
                command: "crypto map",
                what: "crypto map",
                name: name.clone(),
            });
            self.cfg.interfaces[idx].crypto_map = Some(name);
            return Ok(());
        }
        self.warn(no, format!("skipped (not used by espgw): {text}"));
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // After the last line
    // -----------------------------------------------------------------------------------

    fn finish(mut self) -> Report {
        let refs = std::mem::take(&mut self.transform_set_refs);
        for r in refs {
            if !self.cfg.transform_sets.contains_key(&r.name) {
                self.unresolved(r);
            }
        }
        let refs = std::mem::take(&mut self.acl_refs);
        for r in refs {
            if !self.cfg.access_lists.contains_key(&r.name) {
                self.unresolved(r);
            }
        }
        let refs = std::mem::take(&mut self.map_refs);
        for r in refs {
            if !self.cfg.crypto_maps.contains_key(&r.name) {
                self.unresolved(r);
            }
        }
        let refs = std::mem::take(&mut self.iface_refs);
        for r in refs {
            if self.cfg.interface(&r.name).is_none() {
                self.unresolved(r);
            }
        }
        self.pki_finish();
        self.check_remote_access();
        self.ezvpn_finish();
        self.advise();
        self.errors.sort_by_key(|e| e.line);
        self.warnings.sort_by_key(|w| w.line);
        Report {
            config: self.cfg,
            warnings: self.warnings,
            errors: self.errors,
        }
    }

    fn unresolved(&mut self, r: Reference) {
        self.error(
            r.line,
            ConfigErrorKind::Unresolved {
                command: r.command.to_string(),
                what: r.what,
                name: r.name,
            },
        );
    }

    /// Warnings about a configuration that parses but will not do what it seems to.
    fn advise(&mut self) {
        let mut w: Vec<ConfigWarning> = Vec::new();
        let cfg = &self.cfg;
        for p in cfg.isakmp_policies.values() {
            let missing = match p.auth {
                IkeAuth::RsaSig if cfg.pki.trustpoints.is_empty() => {
                    Some("rsa-sig (the IOS default) needs a crypto pki trustpoint")
                }
                IkeAuth::RsaEncr if cfg.pki.pubkeys.is_empty() => {
                    Some("rsa-encr needs the peers' keys (crypto key pubkey-chain rsa)")
                }
                _ => None,
            };
            if let Some(what) = missing {
                let line = self.policy_lines.get(&p.priority).copied().unwrap_or(0);
                w.push(ConfigWarning {
                    line,
                    message: format!(
                        "crypto isakmp policy {}: authentication {what}; without it the policy is not negotiated",
                        p.priority
                    ),
                });
            }
        }
        for r in cfg.map_entries() {
            let e = r.entry;
            let what = format!("crypto map {} {}", r.map_name(), e.seq);
            let mut missing = Vec::new();
            if e.peers.is_empty() {
                missing.push("set peer");
            }
            if e.transform_sets.is_empty() {
                missing.push("set transform-set");
            }
            if e.match_address.is_none() {
                missing.push("match address");
            }
            if !missing.is_empty() {
                w.push(ConfigWarning {
                    line: e.line,
                    message: format!("{what} stays disabled until it has {}", missing.join(", ")),
                });
            }
            if let Some(acl) = cfg.acl_for(e) {
                for l in &acl.entries {
                    if let Err(err) = l.proxy_pair() {
                        if !matches!(err, ProxyError::DenyLine { .. }) {
                            w.push(ConfigWarning {
                                line: l.line,
                                message: format!(
                                    "crypto ACL of {what}: {}",
                                    strip_line(&err.to_string())
                                ),
                            });
                        }
                    }
                }
            }
            if cfg.interface_for_map(r.map_name()).is_none() {
                w.push(ConfigWarning {
                    line: e.line,
                    message: format!(
                        "{what}: crypto map {} is not applied to any interface",
                        r.map_name()
                    ),
                });
            }
        }
        for &(line, peer) in &self.peer_lines {
            if cfg.psk_for_address(peer).is_none() {
                w.push(ConfigWarning {
                    line,
                    message: format!("no crypto isakmp key matches peer {peer}"),
                });
            }
        }
        for i in &cfg.interfaces {
            if i.crypto_map.is_some() {
                if i.linux_name.is_none() {
                    w.push(ConfigWarning {
                        line: i.line,
                        message: format!(
                            "interface {} has a crypto map but no Linux name; map it with --interface-map {}=LINUXNAME",
                            i.name, i.name
                        ),
                    });
                }
                if i.address.is_none() {
                    w.push(ConfigWarning {
                        line: i.line,
                        message: format!("interface {} has a crypto map but no ip address", i.name),
                    });
                }
            }
        }
        for (ios, linux) in &self.ifmap.pairs {
            if cfg.interface(ios).is_none() {
                w.push(ConfigWarning {
                    line: 0,
                    message: format!(
                        "--interface-map: {ios}={linux} names no interface of the configuration"
                    ),
                });
            }
        }
        self.warnings.extend(w);
    }
}

fn strip_line(s: &str) -> &str {
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => s,
    }
}

/// Whether a global line opens a block (so an error in it should silence its sub-lines).
fn opens_block(toks: &[&str]) -> bool {
    let l: Vec<String> = toks
        .iter()
        .take(3)
        .map(|t| t.to_ascii_lowercase())
        .collect();
    let l: Vec<&str> = l.iter().map(String::as_str).collect();
    matches!(
        l.as_slice(),
        ["crypto", "isakmp", "policy", ..]
            | ["crypto", "isakmp", "peer", ..]
            | ["crypto", "ipsec", "transform-set", ..]
            | ["crypto", "ipsec", "client", ..]
            | ["crypto", "map", ..]
            | ["crypto", "dynamic-map", ..]
            | ["crypto", "isakmp", "client", ..]
            | ["ip", "access-list", ..]
            | ["interface", ..]
    ) || pki::opens_block(&l)
}

/// `seconds N` or `kilobytes N` (IOS: one per line).
fn lifetime_value(t: &mut Toks<'_>) -> R<(Option<u32>, Option<u64>)> {
    match t.choice(&["seconds", "kilobytes"], "seconds|kilobytes")? {
        0 => Ok((Some(t.number("seconds 30-86400", 30, 86400)? as u32), None)),
        _ => Ok((
            None,
            Some(t.number("kilobytes 2560-4294967295", 2560, 4_294_967_295)?),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Access list lines
// ---------------------------------------------------------------------------------------

fn port(t: &mut Toks<'_>, protocol: AclProtocol) -> R<u16> {
    let tok = t.peek().ok_or_else(|| t.syntax("a port number or name"))?;
    if tok.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(t.number("a port 0-65535", 0, 65535)? as u16);
    }
    let p = names::port_number(protocol, tok).ok_or_else(|| t.syntax("a port number or name"))?;
    t.pos += 1;
    Ok(p)
}

fn port_match(t: &mut Toks<'_>, protocol: AclProtocol) -> R<Option<PortMatch>> {
    if !protocol.has_ports() {
        return Ok(None);
    }
    let op = match t.peek().map(str::to_ascii_lowercase).as_deref() {
        Some("eq") => 0,
        Some("neq") => 1,
        Some("lt") => 2,
        Some("gt") => 3,
        Some("range") => 4,
        _ => return Ok(None),
    };
    t.pos += 1;
    let a = port(t, protocol)?;
    Ok(Some(match op {
        0 => PortMatch::Eq(a),
        1 => PortMatch::Neq(a),
        2 => PortMatch::Lt(a),
        3 => PortMatch::Gt(a),
        _ => {
            let b = port(t, protocol)?;
            if b < a {
                return Err(ConfigErrorKind::Invalid {
                    command: t.command.clone(),
                    reason: format!("range {a} {b}: the first port must not exceed the second"),
                });
            }
            PortMatch::Range(a, b)
        }
    }))
}

fn addr_match(t: &mut Toks<'_>) -> R<AddrMatch> {
    const E: &str = "any|host A|A WILDCARD";
    if t.eat("any") {
        return Ok(AddrMatch::ANY);
    }
    if t.eat("host") {
        return Ok(AddrMatch::host(t.ipv4("an IPv4 address")?));
    }
    let tok = t.peek();
    if tok.is_none_or(|x| x.parse::<Ipv4Addr>().is_err()) {
        return Err(t.syntax(E));
    }
    let a = t.ipv4(E)?;
    let w = t.ipv4("a wildcard mask")?;
    Ok(AddrMatch::new(a, w))
}

/// `permit|deny PROTO SRC [PORTS] DST [PORTS] [icmp-type [code]] [established] [log]`.
fn acl_entry(t: &mut Toks<'_>, line: usize) -> R<AclEntry> {
    let action = match t.choice(&["permit", "deny"], "permit|deny|remark")? {
        0 => AclAction::Permit,
        _ => AclAction::Deny,
    };
    const P: &str = "ip|tcp|udp|icmp|a protocol number 0-255";
    let ptok = t.peek().ok_or_else(|| t.syntax(P))?;
    let protocol = match ptok.to_ascii_lowercase().as_str() {
        "ip" => AclProtocol::Ip,
        "tcp" => AclProtocol::Tcp,
        "udp" => AclProtocol::Udp,
        "icmp" => AclProtocol::Icmp,
        s if s.bytes().all(|b| b.is_ascii_digit()) => {
            let n = t.number(P, 0, 255)? as u8;
            t.pos -= 1;
            match n {
                0 => AclProtocol::Ip,
                1 => AclProtocol::Icmp,
                6 => AclProtocol::Tcp,
                17 => AclProtocol::Udp,
                n => AclProtocol::Number(n),
            }
        }
        s => match names::protocol_number(s) {
            Some(n) => AclProtocol::Number(n),
            None => return Err(t.syntax(P)),
        },
    };
    t.pos += 1;
    let src = addr_match(t)?;
    let src_port = port_match(t, protocol)?;
    let dst = addr_match(t)?;
    let dst_port = port_match(t, protocol)?;
    let mut entry = AclEntry {
        action,
        protocol,
        src,
        src_port,
        dst,
        dst_port,
        icmp_type: None,
        icmp_code: None,
        established: false,
        log: false,
        line,
    };
    if protocol == AclProtocol::Icmp {
        if let Some(tok) = t.peek() {
            if tok.bytes().all(|b| b.is_ascii_digit()) {
                entry.icmp_type = Some(t.number("an ICMP type 0-255", 0, 255)? as u8);
                if t.peek()
                    .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
                {
                    entry.icmp_code = Some(t.number("an ICMP code 0-255", 0, 255)? as u8);
                }
            } else if let Some((ty, code)) = names::icmp_number(tok) {
                t.pos += 1;
                entry.icmp_type = Some(ty);
                entry.icmp_code = code;
            }
        }
    }
    if protocol == AclProtocol::Tcp && t.eat("established") {
        entry.established = true;
    }
    if t.eat("log") || t.eat("log-input") {
        entry.log = true;
    }
    if t.peek().is_some() {
        return Err(t.syntax(match protocol {
            AclProtocol::Tcp => "eq|neq|lt|gt|range|established|log|end of line",
            AclProtocol::Udp => "eq|neq|lt|gt|range|log|end of line",
            AclProtocol::Icmp => "an ICMP type|log|end of line",
            _ => "log|end of line",
        }));
    }
    Ok(entry)
}

#[cfg(test)]
pub(crate) mod tests;

mod remote_access;
#[cfg(test)]
mod remote_access_tests;

mod ezvpn;
#[cfg(test)]
mod ezvpn_tests;

mod logging;
#[cfg(test)]
mod logging_tests;
