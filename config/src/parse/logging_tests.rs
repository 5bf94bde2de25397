use super::tests::{ip, parse_ok};
use super::*;

fn cfg(text: &str) -> Logging {
    parse_ok(text).config.logging
}

fn err(text: &str) -> ConfigError {
    match parse_config(text, &InterfaceMap::default()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_are_ios_defaults() {
    let l = cfg("hostname R1\n");
    assert_eq!(l, Logging::default());
    assert_eq!(l.trap, 6);
    assert!(l.console && l.hosts.is_empty() && l.buffered.is_none() && l.rate_limit.is_none());
}

#[test]
fn hosts_in_both_forms_with_ports() {
    let l = cfg(
        "logging host 10.1.1.2\nlogging 10.1.1.3\nlogging host 10.1.1.4 transport udp port 5514\n",
    );
    assert_eq!(
        l.hosts,
        vec![
            LogHost {
                addr: ip("10.1.1.2"),
                port: 514
            },
            LogHost {
                addr: ip("10.1.1.3"),
                port: 514
            },
            LogHost {
                addr: ip("10.1.1.4"),
                port: 5514
            },
        ]
    );
    // The same host again changes its port; `no logging host` removes it.
    let l = cfg("logging host 10.1.1.2\nlogging host 10.1.1.2 transport udp port 600\nlogging host 10.1.1.9\nno logging host 10.1.1.9\n");
    assert_eq!(
        l.hosts,
        vec![LogHost {
            addr: ip("10.1.1.2"),
            port: 600
        }]
    );
}

#[test]
fn trap_levels_by_name_and_number() {
    for (i, name) in LEVEL_NAMES.iter().enumerate() {
        assert_eq!(cfg(&format!("logging trap {name}\n")).trap, i as u8);
        assert_eq!(cfg(&format!("logging trap {i}\n")).trap, i as u8);
    }
    assert_eq!(cfg("logging trap WARNINGS\n").trap, 4);
    assert_eq!(level_name(6), "informational");
}

#[test]
fn buffered_size_and_level() {
    let b = |t: &str| cfg(t).buffered.expect("buffered");
    assert_eq!(
        b("logging buffered\n"),
        LogBuffer {
            size: 4096,
            level: 7
        }
    );
    assert_eq!(
        b("logging buffered 16384\n"),
        LogBuffer {
            size: 16384,
            level: 7
        }
    );
    assert_eq!(
        b("logging buffered 3\n"),
        LogBuffer {
            size: 4096,
            level: 3
        }
    );
    assert_eq!(
        b("logging buffered 8192 warnings\n"),
        LogBuffer {
            size: 8192,
            level: 4
        }
    );
    assert!(cfg("logging buffered\nno logging buffered\n")
        .buffered
        .is_none());
}

#[test]
fn console_and_rate_limit() {
    assert!(!cfg("no logging console\n").console);
    assert!(cfg("no logging console\nlogging console informational\n").console);
    let r = |t: &str| cfg(t).rate_limit.expect("rate limit");
    assert_eq!(
        r("logging rate-limit 10\n"),
        RateLimit {
            scope: RateLimitScope::All,
            per_second: 10
        }
    );
    assert_eq!(
        r("logging rate-limit all 5\n"),
        RateLimit {
            scope: RateLimitScope::All,
            per_second: 5
        }
    );
    assert_eq!(
        r("logging rate-limit console 200\n"),
        RateLimit {
            scope: RateLimitScope::Console,
            per_second: 200
        }
    );
}

#[test]
fn facility_by_ios_name_default_local7() {
    assert_eq!(cfg("hostname R1\n").facility, Facility::LOCAL7);
    assert_eq!(Facility::LOCAL7.code(), 23);
    for (name, code) in Facility::NAMES {
        let f = cfg(&format!("logging facility {name}\n")).facility;
        assert_eq!((f.code(), f.name()), (code, name));
    }
    assert_eq!(cfg("logging facility LOCAL0\n").facility.code(), 16);
    assert_eq!(cfg("logging facility auth\n").facility.code(), 4);
    // `no logging facility [NAME]` is local7 again.
    assert_eq!(
        cfg("logging facility local3\nno logging facility local3\n").facility,
        Facility::LOCAL7
    );
    assert_eq!(
        cfg("logging facility local3\nno logging facility\n").facility,
        Facility::LOCAL7
    );
}

#[test]
fn other_logging_lines_are_skipped_with_a_warning() {
    let p = parse_ok("logging source-interface Ethernet1/0\nlogging origin-id hostname\n");
    let w: Vec<_> = p.warnings.iter().filter(|w| w.line > 0).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].line, 1);
    assert!(w[0].message.contains("logging source-interface"));
    assert_eq!(p.config.logging, Logging::default());
}

#[test]
fn errors_carry_line_and_reason() {
    let e = err("hostname R1\nlogging host 10.1.1.300\n");
    assert_eq!(e.line, 2);
    assert!(
        e.to_string()
            .contains("logging host: expected an IPv4 address"),
        "{e}"
    );

    let e = err("logging trap loud\n");
    assert_eq!(e.line, 1);
    assert!(
        e.to_string().contains("logging trap: expected a level 0-7"),
        "{e}"
    );

    let e = err("!\nlogging trap 8\n");
    assert_eq!(
        (e.line, e.to_string().contains("8 is out of range 0-7")),
        (2, true),
        "{e}"
    );

    let e = err("logging host 10.1.1.2 transport udp port 0\n");
    assert!(e.to_string().contains("out of range 1-65535"), "{e}");

    let e = err("logging host 10.1.1.2 transport tcp port 601\n");
    assert!(
        e.to_string().contains("transport tcp is not supported"),
        "{e}"
    );

    let e = err("logging buffered 100\n");
    assert!(
        e.to_string()
            .contains("100 is out of range 4096-2147483647"),
        "{e}"
    );

    let e = err("logging rate-limit 0\n");
    assert!(e.to_string().contains("out of range 1-10000"), "{e}");

    let e = err("logging rate-limit console\n");
    assert!(
        e.to_string().contains("expected messages per second"),
        "{e}"
    );

    let e = err("hostname R1\n!\nlogging facility local8\n");
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .contains("logging facility: expected a facility: auth|cron|daemon|kern|local0-7"),
        "{e}"
    );
    let e = err("logging facility\n");
    assert!(e.to_string().contains("expected a facility"), "{e}");
    let e = err("logging facility local0 local1\n");
    assert!(e.to_string().contains("expected end of line"), "{e}");

    let e = err("logging host 10.1.1.2 extra\n");
    assert!(e.to_string().contains("expected end of line"), "{e}");
}
