use super::*;
use crate::config::model::{LogHost, RateLimit};
use crate::ike::syslog::{ERRORS, NOTIFICATIONS, WARNINGS};

fn msg(severity: u8) -> SyslogMessage {
    SyslogMessage::crypto(
        severity,
        "IKMP_BAD_MESSAGE",
        "IKE message from 192.0.2.1 failed",
    )
}

#[test]
fn rate_limiter_passes_n_a_second_and_counts_the_rest() {
    let t0 = Instant::now();
    let mut r = RateLimiter::new(3);
    let at = |ms| t0 + Duration::from_millis(ms);
    let v: Vec<_> = [0, 10, 20, 30, 40, 999]
        .iter()
        .map(|&ms| r.check(at(ms)))
        .collect();
    assert_eq!(
        v,
        [
            Verdict::Pass { suppressed: 0 },
            Verdict::Pass { suppressed: 0 },
            Verdict::Pass { suppressed: 0 },
            Verdict::Suppress,
            Verdict::Suppress,
            Verdict::Suppress,
        ]
    );
    // A new window: the first message through reports the three refused.
    assert_eq!(r.check(at(1000)), Verdict::Pass { suppressed: 3 });
    assert_eq!(r.check(at(1001)), Verdict::Pass { suppressed: 0 });
    assert_eq!(r.total_suppressed, 3);
    // Long quiet: the window restarts at the next message.
    assert_eq!(r.check(at(60_000)), Verdict::Pass { suppressed: 0 });
}

#[test]
fn pri_is_the_facility_times_eight_plus_the_tag_severity() {
    assert_eq!(pri(Facility::LOCAL7, WARNINGS), 188);
    assert_eq!(pri(Facility::LOCAL7, INFORMATIONAL), 190);
    let local0 = Facility::from_name("local0").unwrap();
    assert_eq!(pri(local0, WARNINGS), 132);
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_680_433);
    let m = msg(WARNINGS);
    assert_eq!(
        rfc3164(Facility::LOCAL7, m.severity, "R1", t, &m.to_string()),
        "<188>Dec  2 13:00:33 R1 espgw-control: %CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 192.0.2.1 failed"
    );
    assert_eq!(
        ios_stamp(t + Duration::from_millis(7)),
        "Dec  2 13:00:33.007"
    );
    // 29 Feb of a leap year, and the first of January.
    let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(ios_stamp(leap), "Feb 29 00:00:00.000");
    assert_eq!(ios_stamp(SystemTime::UNIX_EPOCH), "Jan  1 00:00:00.000");
}

fn logging(trap: u8, buffered: Option<LogBuffer>, rate: Option<RateLimit>) -> Logging {
    Logging {
        hosts: vec![LogHost {
            addr: "192.0.2.9".parse().unwrap(),
            port: 514,
        }],
        trap,
        facility: Facility::LOCAL7,
        buffered,
        console: false,
        rate_limit: rate,
    }
}

#[test]
fn trap_and_buffer_levels_filter_by_severity() {
    let buf = LogBuffer {
        size: 4096,
        level: NOTIFICATIONS,
    };
    let mut l = Logger::offline(&logging(WARNINGS, Some(buf), None), None);
    let (t, w) = (Instant::now(), SystemTime::now());
    for s in [ERRORS, WARNINGS, NOTIFICATIONS, INFORMATIONAL] {
        l.log(&msg(s), t, w);
    }
    let v = l.view();
    assert_eq!(v.messages, 4);
    // Hosts: 3 and 4; the offline logger could send neither.
    assert_eq!(v.trap_logged, 2);
    assert_eq!((v.hosts[0].lines_logged, v.hosts[0].send_errors), (0, 2));
    // Buffer: 3, 4 and 5.
    assert_eq!(v.buffer_logged, 3);
    let tags: Vec<_> = v
        .buffer
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "%CRYPTO-3-IKMP_BAD_MESSAGE",
            "%CRYPTO-4-IKMP_BAD_MESSAGE",
            "%CRYPTO-5-IKMP_BAD_MESSAGE"
        ]
    );
}

#[test]
fn the_buffer_keeps_the_newest_within_its_size() {
    let buf = LogBuffer {
        size: 4096,
        level: 7,
    };
    let mut l = Logger::offline(&logging(WARNINGS, Some(buf), None), None);
    let (t, w) = (Instant::now(), SystemTime::now());
    let line_len = format!("{}: {}", ios_stamp(w), msg(ERRORS)).len() + 1;
    for _ in 0..200 {
        l.log(&msg(ERRORS), t, w);
    }
    let v = l.view();
    assert_eq!(v.buffer_logged, 200);
    assert_eq!(v.buffer.len(), 4096 / line_len);
}

#[test]
fn rate_limit_all_holds_back_every_destination_and_says_so_after() {
    let buf = LogBuffer {
        size: 4096,
        level: 7,
    };
    let rate = RateLimit {
        scope: RateLimitScope::All,
        per_second: 2,
    };
    let mut l = Logger::offline(&logging(7, Some(buf), Some(rate)), None);
    let (t, w) = (Instant::now(), SystemTime::now());
    for _ in 0..5 {
        l.log(&msg(ERRORS), t, w);
    }
    l.log(&msg(ERRORS), t + Duration::from_secs(1), w);
    let v = l.view();
    assert_eq!((v.messages, v.rate_limited), (6, 3));
    assert_eq!(v.hosts[0].lines_rate_limited, 3);
    let texts: Vec<_> = v
        .buffer
        .iter()
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    let m = msg(ERRORS).to_string();
    assert_eq!(texts, [m.as_str(), &m, "3 messages rate-limited", &m]);
    // The notice went to the host too (offline: as a dropped datagram).
    assert_eq!(v.hosts[0].send_errors, 4);
}

#[test]
fn rate_limit_console_spares_the_other_destinations() {
    let buf = LogBuffer {
        size: 4096,
        level: 7,
    };
    let rate = RateLimit {
        scope: RateLimitScope::Console,
        per_second: 1,
    };
    let mut l = Logger::offline(&logging(7, Some(buf), Some(rate)), None);
    let (t, w) = (Instant::now(), SystemTime::now());
    for _ in 0..4 {
        l.log(&msg(ERRORS), t, w);
    }
    let v = l.view();
    assert_eq!(v.rate_limited, 3);
    assert_eq!(v.buffer.len(), 4);
    assert_eq!(v.hosts[0].lines_rate_limited, 0);
}

#[test]
fn a_quiet_second_after_suppression_reports_on_the_tick() {
    let buf = LogBuffer {
        size: 4096,
        level: 7,
    };
    let rate = RateLimit {
        scope: RateLimitScope::All,
        per_second: 1,
    };
    let mut l = Logger::offline(&logging(7, Some(buf), Some(rate)), None);
    let (t, w) = (Instant::now(), SystemTime::now());
    for _ in 0..3 {
        l.log(&msg(ERRORS), t, w);
    }
    l.tick(t + Duration::from_millis(500), w);
    assert_eq!(l.view().buffer.len(), 1, "the window is not over yet");
    l.tick(t + Duration::from_secs(1), w);
    l.tick(t + Duration::from_secs(2), w);
    let v = l.view();
    let last: Vec<_> = v
        .buffer
        .iter()
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    assert_eq!(last[1..], ["2 messages rate-limited"]);
    // The next message through does not report them again.
    l.log(&msg(ERRORS), t + Duration::from_secs(3), w);
    assert_eq!(l.view().buffer.len(), 3);
}
