//! Where the endpoint's system messages go (`logging …` in the configuration): the daemon's
//! own log (stderr, the journal under systemd; `[no] logging console`), the `logging
//! buffered` ring that `show logging` prints, and RFC 3164 syslog over UDP to each `logging
//! host` at or above the `logging trap` level, from the `logging facility` (local7 unless
//! configured, as on IOS). A
//! `logging rate-limit` caps messages a second; the next message let through after some were
//! suppressed is preceded by "N messages rate-limited".

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::api::{LogHostView, LoggingView};
use crate::config::model::{level_name, Facility, LogBuffer, Logging, RateLimitScope};
use crate::ike::syslog::INFORMATIONAL;
use crate::ike::SyslogMessage;

/// RFC 3164 PRI: facility × 8 + severity.
pub fn pri(facility: Facility, severity: u8) -> u8 {
    facility.code() * 8 + severity.min(7)
}

/// At most `per_second` messages in each one-second window; counts what it refused.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: u32,
    window_start: Option<Instant>,
    in_window: u32,
    /// Refused since the last message let through.
    pending: u64,
    /// Refused in all.
    pub total_suppressed: u64,
}

/// A rate limiter's answer for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; `suppressed` messages were refused since the previous one let through.
    Pass {
        suppressed: u64,
    },
    Suppress,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: per_second.max(1),
            window_start: None,
            in_window: 0,
            pending: 0,
            total_suppressed: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let fresh = self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if fresh {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= self.per_second {
            self.pending += 1;
            self.total_suppressed += 1;
            return Verdict::Suppress;
        }
        self.in_window += 1;
        Verdict::Pass {
            suppressed: std::mem::take(&mut self.pending),
        }
    }

    /// Messages refused in a window that is over, not yet reported (they are reported
    /// once, here or before the next message let through).
    pub fn take_overdue(&mut self, now: Instant) -> u64 {
        let over = self
            .window_start
            .is_some_and(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if over {
            std::mem::take(&mut self.pending)
        } else {
            0
        }
    }
}

/// The logging state of the daemon: configuration, destinations and counters.
pub struct Logger {
    cfg: Logging,
    hostname: String,
    socket: Option<UdpSocket>,
    hosts: Vec<(SocketAddr, LogHostView)>,
    limiter: Option<(RateLimitScope, RateLimiter)>,
    buffer: VecDeque<String>,
    buffer_bytes: usize,
    messages: u64,
    console_logged: u64,
    buffer_logged: u64,
    trap_logged: u64,
}

impl Logger {
    /// A logger for `cfg`; `hostname` goes into each syslog datagram's HOSTNAME field.
    pub fn new(cfg: &Logging, hostname: Option<&str>) -> Logger {
        let socket = if cfg.hosts.is_empty() {
            None
        } else {
            match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.set_nonblocking(true).map(|_| s)) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("espgw-control: logging host: no UDP socket: {e}");
                    None
                }
            }
        };
        Logger::build(cfg, hostname, socket)
    }

    /// A logger that sends nothing: every datagram for a host counts as dropped (tests).
    pub fn offline(cfg: &Logging, hostname: Option<&str>) -> Logger {
        Logger::build(cfg, hostname, None)
    }

    fn build(cfg: &Logging, hostname: Option<&str>, socket: Option<UdpSocket>) -> Logger {
        Logger {
            hosts: cfg
                .hosts
                .iter()
                .map(|h| {
                    let view = LogHostView {
                        addr: h.addr,
                        port: h.port,
                        lines_logged: 0,
                        lines_rate_limited: 0,
                        send_errors: 0,
                    };
                    (SocketAddr::from((h.addr, h.port)), view)
                })
                .collect(),
            limiter: cfg
                .rate_limit
                .map(|r| (r.scope, RateLimiter::new(r.per_second))),
            cfg: cfg.clone(),
            hostname: hostname.unwrap_or("espgw").to_string(),
            socket,
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            messages: 0,
            console_logged: 0,
            buffer_logged: 0,
            trap_logged: 0,
        }
    }

    /// Logs one message at `now` (`wall` for its time stamp) to every destination.
    pub fn log(&mut self, m: &SyslogMessage, now: Instant, wall: SystemTime) {
        self.messages += 1;
        let stamp = ios_stamp(wall);
        let verdict = match &mut self.limiter {
            Some((_, l)) => l.check(now),
            None => Verdict::Pass { suppressed: 0 },
        };
        let all_limited = matches!(self.limiter, Some((RateLimitScope::All, _)));
        let console_pass = !matches!(verdict, Verdict::Suppress);
        if let Verdict::Pass { suppressed } = verdict {
            if suppressed > 0 {
                self.emit_notice(suppressed, all_limited, &stamp, wall);
            }
        }
        if self.cfg.console && console_pass {
            self.console_logged += 1;
            eprintln!("espgw-control: {stamp}: {m}");
        }
        if all_limited && !console_pass {
            for (_, v) in &mut self.hosts {
                if m.severity <= self.cfg.trap {
                    v.lines_rate_limited += 1;
                }
            }
            return;
        }
        let line = format!("{stamp}: {m}");
        self.buffer_line(m.severity, &line);
        self.send_to_hosts(
            m.severity,
            &rfc3164(
                self.cfg.facility,
                m.severity,
                &self.hostname,
                wall,
                &m.to_string(),
            ),
        );
    }

    /// Reports messages held back in a window that ended with no message after it (called
    /// periodically, so the notice does not wait for the next message).
    pub fn tick(&mut self, now: Instant, wall: SystemTime) {
        let Some((scope, l)) = &mut self.limiter else {
            return;
        };
        let all = *scope == RateLimitScope::All;
        let n = l.take_overdue(now);
        if n > 0 {
            self.emit_notice(n, all, &ios_stamp(wall), wall);
        }
    }

    /// "N messages rate-limited", to the destinations the limiter covers.
    fn emit_notice(&mut self, n: u64, all: bool, stamp: &str, wall: SystemTime) {
        let text = format!("{n} messages rate-limited");
        if self.cfg.console {
            eprintln!("espgw-control: {stamp}: {text}");
        }
        if all {
            self.buffer_line(INFORMATIONAL, &format!("{stamp}: {text}"));
            self.send_to_hosts(
                INFORMATIONAL,
                &rfc3164(
                    self.cfg.facility,
                    INFORMATIONAL,
                    &self.hostname,
                    wall,
                    &text,
                ),
            );
        }
    }

    fn buffer_line(&mut self, severity: u8, line: &str) {
        let Some(LogBuffer { size, level }) = self.cfg.buffered else {
            return;
        };
        if severity > level {
            return;
        }
        self.buffer_logged += 1;
        self.buffer.push_back(line.to_string());
        self.buffer_bytes += line.len() + 1;
        while self.buffer_bytes > size as usize {
            match self.buffer.pop_front() {
                Some(old) => self.buffer_bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    fn send_to_hosts(&mut self, severity: u8, datagram: &str) {
        if severity > self.cfg.trap || self.hosts.is_empty() {
            return;
        }
        self.trap_logged += 1;
        for (to, v) in &mut self.hosts {
            let sent = match &self.socket {
                Some(s) => s.send_to(datagram.as_bytes(), *to).is_ok(),
                None => false,
            };
            if sent {
                v.lines_logged += 1;
            } else {
                v.send_errors += 1;
            }
        }
    }

    /// What `show logging` prints.
    pub fn view(&self) -> LoggingView {
        LoggingView {
            console: self.cfg.console.then_some(self.console_logged),
            buffered: self
                .cfg
                .buffered
                .map(|b| (level_name(b.level).into(), b.size)),
            buffer_logged: self.buffer_logged,
            trap_level: level_name(self.cfg.trap).into(),
            trap_logged: self.trap_logged,
            messages: self.messages,
            rate_limited: self.limiter.as_ref().map_or(0, |(_, l)| l.total_suppressed),
            rate_limit: self.cfg.rate_limit.map(|r| {
                let scope = match r.scope {
                    RateLimitScope::All => "all",
                    RateLimitScope::Console => "console",
                };
                (r.per_second, scope.into())
            }),
            dropped: self.hosts.iter().map(|(_, v)| v.send_errors).sum(),
            hosts: self.hosts.iter().map(|(_, v)| v.clone()).collect(),
            buffer: self.buffer.iter().cloned().collect(),
        }
    }
}

use crate::pki::validate::MONTHS;

/// (month 0-11, day, h, m, s, ms) in UTC.
fn civil(t: SystemTime) -> (usize, u32, u64, u64, u64, u32) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let (_, m, day) = crate::pki::validate::civil_from_days(days);
    let month = (m - 1) as usize;
    (
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis(),
    )
}

/// IOS's time stamp (`service timestamps log datetime msec`), UTC: `Dec  2 13:10:33.123`.
pub fn ios_stamp(t: SystemTime) -> String {
    let (mo, d, h, m, s, ms) = civil(t);
    format!("{} {d:>2} {h:02}:{m:02}:{s:02}.{ms:03}", MONTHS[mo])
}

/// An RFC 3164 datagram from `facility`: `<PRI>Mmm dd hh:mm:ss HOST espgw-control: MSG`.
pub fn rfc3164(
    facility: Facility,
    severity: u8,
    hostname: &str,
    t: SystemTime,
    msg: &str,
) -> String {
    let (mo, d, h, m, s, _) = civil(t);
    format!(
        "<{}>{} {d:>2} {h:02}:{m:02}:{s:02} {hostname} espgw-control: {msg}",
        pri(facility, severity),
        MONTHS[mo]
    )
}

#[cfg(test)]
#[path = "logging_tests.rs"]
mod tests;
