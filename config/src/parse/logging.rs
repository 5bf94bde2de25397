//! The `logging` lines: `logging host A.B.C.D [transport udp port N]` (and the old form
//! `logging A.B.C.D`), `logging trap LEVEL`, `logging facility NAME`, `logging buffered
//! [SIZE] [LEVEL]`, `[no] logging console [LEVEL]`, `logging rate-limit [console|all] N`.
//! Levels are IOS's, by name or number (emergencies 0 … debugging 7); facilities by IOS's
//! names (`local0` … `local7`, `auth`, `daemon`, …). Other `logging` lines IOS knows
//! (`logging source-interface`, …) are skipped with a warning.

use super::*;

/// A severity level by name or number (`t` at it).
fn level(t: &mut Toks<'_>) -> R<u8> {
    const EXPECTED: &str = "a level 0-7 or emergencies|alerts|critical|errors|warnings|notifications|informational|debugging";
    if t.peek()
        .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(t.number(EXPECTED, 0, 7)? as u8);
    }
    Ok(t.choice(&LEVEL_NAMES, EXPECTED)? as u8)
}

/// A facility by IOS name (`t` at it).
fn facility(t: &mut Toks<'_>) -> R<Facility> {
    const EXPECTED: &str =
        "a facility: auth|cron|daemon|kern|local0-7|lpr|mail|news|sys9-14|syslog|user|uucp";
    let names = Facility::NAMES.map(|(n, _)| n);
    let i = t.choice(&names, EXPECTED)?;
    Ok(Facility::from_name(names[i]).unwrap_or_default())
}

impl Parser<'_> {
    /// A global `logging …` line, or `no logging …` (`negate`); `t` at `logging`.
    pub(super) fn logging_line(
        &mut self,
        no: usize,
        t: &mut Toks<'_>,
        text: &str,
        negate: bool,
    ) -> R<()> {
        t.cmd("logging");
        t.expect("logging")?;
        if negate {
            if t.eat("console") {
                t.end()?;
                self.cfg.logging.console = false;
            } else if t.eat("buffered") {
                t.end()?;
                self.cfg.logging.buffered = None;
            } else if t.eat("rate-limit") {
                t.end()?;
                self.cfg.logging.rate_limit = None;
            } else if t.eat("trap") {
                t.end()?;
                self.cfg.logging.trap = Logging::DEFAULT_TRAP;
            } else if t.eat("facility") {
                // IOS takes `no logging facility [NAME]`: back to local7 either way.
                t.cmd("no logging facility");
                if t.peek().is_some() {
                    facility(t)?;
                }
                t.end()?;
                self.cfg.logging.facility = Facility::LOCAL7;
            } else if t.eat("host") {
                t.cmd("no logging host");
                let addr = t.ipv4("an IPv4 address")?;
                t.end()?;
                self.cfg.logging.hosts.retain(|h| h.addr != addr);
            } else {
                self.warn(no, format!("skipped (not used by espgw): {text}"));
            }
            return Ok(());
        }
        let host_first = t.peek().is_some_and(|x| x.parse::<Ipv4Addr>().is_ok());
        if host_first || t.eat("host") {
            t.cmd("logging host");
            let addr = t.ipv4("an IPv4 address")?;
            let mut port = Logging::DEFAULT_PORT;
            if t.eat("transport") {
                t.cmd("logging host transport");
                if t.peek_is("tcp") || t.peek_is("beep") {
                    return Err(ConfigErrorKind::Unsupported {
                        command: "logging host transport".into(),
                        what: format!("transport {}", t.peek().unwrap_or_default()),
                    });
                }
                t.expect("udp")?;
                if t.eat("port") {
                    t.cmd("logging host transport udp port");
                    port = t.number("a port 1-65535", 1, 65535)? as u16;
                }
            }
            t.end()?;
            match self.cfg.logging.hosts.iter_mut().find(|h| h.addr == addr) {
                Some(h) => h.port = port,
                None => self.cfg.logging.hosts.push(LogHost { addr, port }),
            }
        } else if t.eat("trap") {
            t.cmd("logging trap");
            let l = if t.peek().is_some() {
                level(t)?
            } else {
                Logging::DEFAULT_TRAP
            };
            t.end()?;
            self.cfg.logging.trap = l;
        } else if t.eat("facility") {
            t.cmd("logging facility");
            let f = facility(t)?;
            t.end()?;
            self.cfg.logging.facility = f;
        } else if t.eat("buffered") {
            t.cmd("logging buffered");
            let mut b = LogBuffer {
                size: LogBuffer::DEFAULT_SIZE,
                level: LogBuffer::DEFAULT_LEVEL,
            };
            // IOS: a number 0-7 is a level, a larger one the size (4096 or more).
            if let Some(n) = t.peek().and_then(|x| x.parse::<u64>().ok()) {
                if n > 7 {
                    b.size = t.number("a buffer size 4096-2147483647", 4096, 2147483647)? as u32;
                }
            }
            if t.peek().is_some() {
                b.level = level(t)?;
            }
            t.end()?;
            self.cfg.logging.buffered = Some(b);
        } else if t.eat("console") {
            t.cmd("logging console");
            if t.peek().is_some() {
                level(t)?;
            }
            t.end()?;
            self.cfg.logging.console = true;
        } else if t.eat("rate-limit") {
            t.cmd("logging rate-limit");
            let scope = if t.eat("console") {
                RateLimitScope::Console
            } else {
                t.eat("all");
                RateLimitScope::All
            };
            let per_second = t.number("messages per second 1-10000", 1, 10000)? as u32;
            if t.peek_is("except") {
                return Err(ConfigErrorKind::Unsupported {
                    command: "logging rate-limit".into(),
                    what: "except".into(),
                });
            }
            t.end()?;
            self.cfg.logging.rate_limit = Some(RateLimit { scope, per_second });
        } else {
            self.warn(no, format!("skipped (not used by espgw): {text}"));
        }
        Ok(())
    }
}
