//! Reliability scenario 5 (issue 17): loss, reordering and jitter on the outside link,
//! during negotiation and rekey. This kernel has no `sch_netem`, so the R1–R2 cable is
//! `espgw-impair` (labkit): 1 % loss, 5 % of frames held back 15 ms, every frame delayed
//! by a uniform 0–10 ms (so frames overtake each other), seeded.
//!
//! espgw is R1 (initiator); the peer is a second espgw, or strongSwan 5.9.8 (ESP in UDP
//! 4500, its own replay window). With a 30 s IPsec lifetime the SAs rekey under the
//! sequence-numbered stream. What each run asserts:
//! - the first negotiation (Main Mode + Quick Mode, started by hostA's traffic) completes
//!   within IOS's retry budget: the first message and its five resends 10 s apart, 60 s;
//! - every rekey completes (the key log has the expected number of new SA pairs);
//! - the relay reordered frames (`reordered` > 0: a frame left after one that arrived
//!   later) and the stream saw datagrams out of order (seqflow's `reord` > 0);
//! - no data plane of espgw drops a packet for replay, out of window or authentication —
//!   reordered valid ESP is never taken for a replay;
//! - loss is accounted for exactly: the datagrams missing in each direction are the ESP
//!   frames the relay dropped in that direction plus the packets the receiving espgw
//!   counted as `no_sa` (at a rekey, ESP of the old SA that the jitter delayed past the
//!   DELETE removing it — measured: a few per rekey on an espgw peer; printed in the
//!   scenario line; strongSwan counts none of its own, so against it only B->A, received
//!   by espgw, is held exact, and A->B may lose more). If the relay dropped an IKE frame during the stream (a rekey message:
//!   its resend comes 10 s later, which may be after the old SA's hard lifetime, as on
//!   IOS), the stream may lose more than that; the run says so, and still holds the
//!   replay assertion. A stall of the (shared, two-core) host, seen as a gap of more than
//!   500 ms in the stream, can overflow a socket queue that no counter sees: then the
//!   unexplained loss is printed, not asserted.
//!
//! The short forms (≈45 s each) run in CI; the `#[ignore]`d full forms (≈3 min each) give
//! the issue note's figures.

mod reliability;

use espgw_lab::impair::{ImpairStats, Impairment};
use espgw_lab::seqflow::{FlowSpec, SeqFlow};
use espgw_lab::{EspgwRouter, Lab, Node, Profile, Wire};
use reliability::{sa_generations, scenario_line, tunnel_up, Drops, Pair, PairConf, SERIAL};
use std::path::Path;
use std::time::Duration;

/// IOS's budget for one exchange: the first message and five resends, 10 s apart.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// The lifetime the runs rekey with (R1, the initiator, rekeys at 85 %: 25.5 s).
const LIFETIME_SECS: u32 = 30;

/// A gap in the stream longer than this is a stall of the host, not the relay's doing.
const STALL_MS: f64 = 500.0;

/// The scenario's impairment; the seed is fixed so that a run can be repeated.
fn impairment() -> Impairment {
    Impairment::scenario5(17)
}

/// The relay's counters now (after its next report).
fn relay_now(wire: &Wire) -> ImpairStats {
    std::thread::sleep(Duration::from_millis(300));
    wire.impair_stats().expect("espgw-impair stats")
}

/// What one run has to measure with.
struct Run<'a> {
    tag: &'a str,
    peer: &'a str,
    lab: &'a Lab,
    wire: &'a Wire,
    r1: &'a EspgwRouter,
    /// The peer's espgw, when the peer is espgw.
    r2: Option<&'a EspgwRouter>,
    seqflow: &'a Path,
    logs: &'a dyn Fn() -> String,
}

fn impaired_run(run: &Run, spec: &FlowSpec, min_rekeys: usize) {
    let drops = || (Drops::of(run.r1), run.r2.map(Drops::of).unwrap_or_default());
    let neg = tunnel_up(run.lab, RETRY_BUDGET, run.logs);
    let gen0 = sa_generations(run.r1);
    let (b1, b2) = drops();
    let w0 = relay_now(run.wire);
    let sd0 = run.wire.relay_socket_drops().expect("ss on the wire");
    let flow = SeqFlow::start(
        run.lab,
        run.seqflow,
        Node::HostA,
        Node::HostB,
        "10.1.2.2",
        spec,
    )
    .expect("seqflow");
    let r = flow.wait().expect("stream report");
    let w = relay_now(run.wire).since(&w0);
    // Frames the relay never read: its socket queue was full (a stall of the host).
    let sock_drops = run.wire.relay_socket_drops().expect("ss on the wire") - sd0;
    let (a1, a2) = drops();
    let (d1, d2) = (a1.since(&b1), a2.since(&b2));
    let rekeys = sa_generations(run.r1) - gen0;
    let ike_lost = w.total("dropped_ike");
    let what = format!(
        "{}: {} peer, {} (seed {}), first negotiation {:.1} s, {rekeys} rekeys in {:.0} s, \
         relay {}",
        run.tag,
        run.peer,
        "1% loss 5% reorder 10ms jitter",
        impairment().seed,
        neg.as_secs_f64(),
        spec.duration.as_secs_f64(),
        w.line()
    );
    let bound = if ike_lost == 0 {
        "lost = relay ESP drops + receiver's no-sa drops, 0 replay/window/auth drops"
    } else {
        "relay dropped IKE during the stream: lost >= relay ESP drops, 0 replay/window/auth drops"
    };
    let line = scenario_line(&what, &r, &d1, &d2, bound);
    assert!(neg <= RETRY_BUDGET, "{line}\nnegotiation took {neg:?}");
    assert!(
        rekeys >= min_rekeys,
        "{line}\nonly {rekeys} rekeys\n{}",
        (run.logs)()
    );
    assert!(r.forward.sent > 0 && r.send_errors == 0, "{line}");
    assert!(w.total("reordered") > 0, "relay reordered nothing: {line}");
    assert!(
        r.forward.reordered + r.back.reordered > 0,
        "the stream saw no reordering: {line}"
    );
    assert_eq!(w.total("unseeded") + w.total("send_errors"), 0, "{line}");
    for (who, d) in [("R1", &d1), ("R2", &d2)] {
        for reason in ["replay", "out_of_window", "auth"] {
            assert_eq!(
                d.get(reason),
                0,
                "{who} dropped for {reason}: {line}\n{}",
                (run.logs)()
            );
        }
    }
    // What explains a lost datagram: the relay dropped its ESP frame, or an espgw counted
    // it as no-SA (inbound at the receiver; strongSwan reports none of its own). Summed
    // over both directions: a no-SA drop is counted by a router, not by direction.
    let explained = w.total("dropped_esp") + d1.get("no_sa") + d2.get("no_sa") + sock_drops;
    // A stall of this shared host (the stream's longest gap far beyond the 25 ms the relay
    // can delay a frame) can overflow a socket queue, which no counter here sees.
    let stalled = r.forward.longest_gap_ms.max(r.back.longest_gap_ms) > STALL_MS;
    eprintln!(
        "RELIABILITY {}: lost {} = relay ESP drops {} + no-SA {} + relay socket full {} + \
         unexplained {}{}",
        run.tag,
        r.lost(),
        w.total("dropped_esp"),
        d1.get("no_sa") + d2.get("no_sa"),
        sock_drops,
        r.lost() as i64 - explained as i64,
        if stalled {
            " (host stalled: not asserted)"
        } else {
            ""
        }
    );
    if ike_lost == 0 && !stalled && run.r2.is_some() {
        assert_eq!(
            r.lost(),
            explained,
            "datagrams lost vs ESP the relay dropped + no-SA drops: {line}\n{}",
            (run.logs)()
        );
    } else if ike_lost == 0 && !stalled && sock_drops == 0 {
        // strongSwan counts none of its own drops: what it receives (A->B) may lose more
        // than the relay dropped (printed); what espgw receives (B->A) is exact.
        assert_eq!(
            r.back.lost(),
            w.r2_to_r1.get("dropped_esp") + d1.get("no_sa"),
            "B->A lost vs ESP the relay dropped + R1's no-SA drops: {line}\n{}",
            (run.logs)()
        );
        assert!(r.forward.lost() >= w.r1_to_r2.get("dropped_esp"), "{line}");
    } else {
        assert!(r.lost() >= w.total("dropped_esp"), "{line}");
    }
    assert_eq!(r.duplicates(), 0, "{line}");
}

fn espgw_peer(tag: &str, spec: FlowSpec, min_rekeys: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let conf = PairConf {
        lifetime_secs: Some(LIFETIME_SECS),
        ..PairConf::default()
    };
    let pair = Pair::up_impaired(tag, &conf, &impairment());
    let logs = || pair.logs();
    let run = Run {
        tag,
        peer: "espgw",
        lab: &pair.lab,
        wire: &pair.wire,
        r1: &pair.r1,
        r2: pair.r2.espgw(),
        seqflow: &pair.seqflow,
        logs: &logs,
    };
    impaired_run(&run, &spec, min_rekeys);
}

fn strongswan_peer(tag: &str, spec: FlowSpec, min_rekeys: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let conf = PairConf {
        lifetime_secs: Some(LIFETIME_SECS),
        ..PairConf::default()
    };
    // The same policy as the espgw pair's: AES-128/SHA/group 2, esp-aes esp-sha-hmac; the
    // IPsec lifetime is espgw's (strongSwan keeps its default and answers R1's rekeys).
    let profile = Profile::new(Node::R2)
        .proposal("aes128-sha1-modp1024")
        .esp("aes128-sha1");
    let pair = Pair::up_swan_impaired(tag, &conf, profile, Some(&impairment()));
    let logs = || pair.logs();
    let run = Run {
        tag,
        peer: "strongSwan",
        lab: &pair.lab,
        wire: &pair.wire,
        r1: &pair.r1,
        r2: None,
        seqflow: &pair.seqflow,
        logs: &logs,
    };
    impaired_run(&run, &spec, min_rekeys);
}

/// The short form's stream: one rekey (R1 soft at 25.5 s) inside 34 s of 400 pps.
fn short_spec(port: u16) -> FlowSpec {
    FlowSpec {
        pps: 400,
        duration: Duration::from_secs(34),
        size: 200,
        port,
    }
}

/// The full form's stream: 1000 pps for 150 s, five rekeys or more.
fn full_spec(port: u16) -> FlowSpec {
    FlowSpec {
        pps: 1000,
        duration: Duration::from_secs(150),
        size: 400,
        port,
    }
}

#[test]
fn impaired_link_espgw_peer_no_false_replay_drop() {
    espgw_peer("impesp", short_spec(47151), 1);
}

#[test]
fn impaired_link_strongswan_peer_no_false_replay_drop() {
    strongswan_peer("impswan", short_spec(47152), 1);
}

#[test]
#[ignore]
fn impaired_link_espgw_peer_full() {
    espgw_peer("impespfull", full_spec(47153), 5);
}

#[test]
#[ignore]
fn impaired_link_strongswan_peer_full() {
    strongswan_peer("impswanfull", full_spec(47154), 5);
}
