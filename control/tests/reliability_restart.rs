//! Reliability scenario 3 (issue 17): `kill -9` and restart of espgw's daemons on R1 while
//! the sequence-numbered stream flows hostA → hostB → hostA through both data planes.
//!
//! - espgw-control dies: the data plane keeps forwarding on the SAs in the shared-memory
//!   database, so not one datagram may be lost; the restarted control adopts the SAs and
//!   the tunnel keeps working.
//! - espgw-dataplane dies: what is lost is bounded by the time it is down (restart time ×
//!   rate, plus a margin for the frames in its rings); the restarted data plane reads every
//!   SA back from the region and must continue the outbound sequence numbers (the peer's
//!   replay window would drop a reused one) and keep the inbound replay state.

mod reliability;

use espgw_lab::espgw::Daemon;
use espgw_lab::seqflow::FlowSpec;
use reliability::{scenario_line, Pair, PairConf, SERIAL};
use std::time::{Duration, Instant};

/// Kills `which` on R1 `kill_at` into a stream of `secs`, restarts it `down` later.
/// Returns (report, drops R1, drops R2, measured outage of the daemon).
fn kill_run(
    tag: &str,
    which: Daemon,
    secs: u64,
    kill_at: Duration,
    down: Duration,
) -> (
    Pair,
    espgw_lab::seqflow::FlowReport,
    reliability::Drops,
    reliability::Drops,
    Duration,
) {
    let mut pair = Pair::up(tag, &PairConf::default());
    pair.tunnel_up(Duration::from_secs(40));
    let (b1, b2) = pair.drops();
    let spec = FlowSpec {
        pps: 500,
        duration: Duration::from_secs(secs),
        size: 200,
        port: 47201,
    };
    let flow = pair.flow(&spec);
    std::thread::sleep(kill_at);
    let t_kill = Instant::now();
    pair.r1.kill9(which).expect("kill -9");
    std::thread::sleep(down);
    let ready = pair.r1.restart(&pair.lab, which).expect("restart");
    let outage = t_kill.elapsed();
    eprintln!(
        "{which:?} killed, restarted after {:.2} s (ready in {:.2} s)",
        outage.as_secs_f64(),
        ready.as_secs_f64()
    );
    let r = flow.wait().expect("stream report");
    let (a1, a2) = pair.drops();
    // A restarted dataplane starts its counters from zero.
    let d1 = if which == Daemon::Dataplane {
        a1
    } else {
        a1.since(&b1)
    };
    let d2 = a2.since(&b2);
    (pair, r, d1, d2, outage)
}

#[test]
fn control_sigkill_under_load_loses_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (pair, r, d1, d2, outage) = kill_run(
        "rstctl",
        Daemon::Control,
        12,
        Duration::from_secs(3),
        Duration::from_secs(2),
    );
    let what = format!(
        "espgw-control kill -9 + restart on R1 under load (down {:.1} s)",
        outage.as_secs_f64()
    );
    let line = scenario_line(&what, &r, &d1, &d2, "0 lost, 0 dup");
    assert!(r.forward.sent > 3000, "{line}");
    assert_eq!(
        r.lost(),
        0,
        "{line}\nmissing A->B {:?}\n{}",
        r.missing_forward,
        pair.logs()
    );
    assert_eq!(r.duplicates(), 0, "{line}");
    // The restarted control took the SAs over and still answers for them.
    let log = pair.r1.control_log();
    assert!(log.contains("adopting"), "{log}");
    let p = pair
        .lab
        .ping(espgw_lab::Node::HostA, "10.1.2.2", 3)
        .unwrap();
    assert_eq!(
        p.received,
        3,
        "tunnel after the restart: {p:?}\n{}",
        pair.logs()
    );
}

#[test]
fn dataplane_sigkill_loss_bounded_by_restart_and_no_sequence_reuse() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (pair, r, d1, d2, outage) = kill_run(
        "rstdp",
        Daemon::Dataplane,
        14,
        Duration::from_secs(3),
        Duration::from_millis(500),
    );
    // 500 pps each way while it was down, plus 100 ms of frames in flight and in rings.
    let bound = ((outage.as_secs_f64() + 0.1) * 500.0 * 2.0) as u64;
    let what = format!(
        "espgw-dataplane kill -9 + restart on R1 under load (down {:.2} s)",
        outage.as_secs_f64()
    );
    let line = scenario_line(
        &what,
        &r,
        &d1,
        &d2,
        &format!("lost <= {bound} (outage x rate), 0 replay drops on R2 and R1"),
    );
    assert!(r.forward.sent > 3000, "{line}");
    assert!(r.lost() <= bound, "{line}\n{}", pair.logs());
    assert_eq!(r.duplicates(), 0, "{line}");
    // Sequence numbers continue: R2 would count a reused one as a replay; the inbound
    // replay window came back from the region, so R1 accepts R2's stream where it was.
    for (who, d) in [("R1", &d1), ("R2", &d2)] {
        for reason in ["replay", "out_of_window", "auth"] {
            assert_eq!(d.get(reason), 0, "{who} {reason}: {line}\n{}", pair.logs());
        }
    }
    // Traffic flows again after the restart: the last second of the stream arrived.
    assert!(
        r.forward.longest_gap_ms < (outage.as_secs_f64() + 1.0) * 1e3,
        "{line}"
    );
    let p = pair
        .lab
        .ping(espgw_lab::Node::HostA, "10.1.2.2", 3)
        .unwrap();
    assert_eq!(p.received, 3, "{p:?}\n{}", pair.logs());
}
