//! `show logging`, in IOS's layout: the syslog summary line, console and buffer logging,
//! rate limiting, trap logging with each host's counters, then the buffered log.

use std::fmt::Write as _;

use crate::cli::api::LoggingView;

pub fn show_logging(v: &LoggingView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Syslog logging: enabled ({} messages dropped, {} messages rate-limited, 0 flushes, 0 overruns, xml disabled, filtering disabled)\n",
        v.dropped, v.rate_limited
    );
    match v.console {
        Some(n) => {
            let _ = writeln!(
                s,
                "    Console logging: level debugging, {n} messages logged, xml disabled,\n                     filtering disabled"
            );
        }
        None => s.push_str("    Console logging: disabled\n"),
    }
    match &v.buffered {
        Some((level, _)) => {
            let _ = writeln!(
                s,
                "    Buffer logging:  level {level}, {} messages logged, xml disabled,\n                     filtering disabled",
                v.buffer_logged
            );
        }
        None => s.push_str("    Buffer logging:  disabled\n"),
    }
    match &v.rate_limit {
        Some((n, scope)) => {
            let _ = writeln!(s, "    Rate-limiting:   {n} messages per second ({scope})");
        }
        None => s.push_str("    Rate-limiting:   disabled\n"),
    }
    let _ = writeln!(
        s,
        "    System messages: {} produced, {} rate-limited\n",
        v.messages, v.rate_limited
    );
    let _ = writeln!(
        s,
        "    Trap logging: level {}, {} message lines logged",
        v.trap_level, v.trap_logged
    );
    for h in &v.hosts {
        let _ = writeln!(
            s,
            "        Logging to {}  (udp port {}, audit disabled,\n              link up),\n              {} message lines logged,\n              {} message lines rate-limited,\n              {} message lines dropped,\n              xml disabled, sequence number disabled\n              filtering disabled",
            h.addr, h.port, h.lines_logged, h.lines_rate_limited, h.send_errors
        );
    }
    if let Some((_, size)) = &v.buffered {
        let _ = writeln!(s, "\nLog Buffer ({size} bytes):\n");
        for l in &v.buffer {
            let _ = writeln!(s, "{l}");
        }
    }
    s
}
