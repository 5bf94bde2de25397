//! Reliability scenario 2 (issue 17): ISAKMP SA rekey, and DPD on an idle direction, while
//! the sequence-numbered stream flows hostA → hostB only (hostB counts and does not answer,
//! so R1's inbound ESP direction carries nothing).
//!
//! R1 (espgw) has `lifetime 60` in its ISAKMP policy — the shortest IOS (and espgw's
//! configuration parser) accepts — and `crypto isakmp keepalive 10 2 periodic`. As the
//! phase-1 initiator it starts a new Main Mode at 90 % of the lifetime (54 s) and deletes
//! the old ISAKMP SA when its 60 s are over. Held to, against an espgw peer and against
//! strongSwan:
//! - not one datagram lost or duplicated, no replay/auth/no-SA drop on either data plane;
//! - the IPsec SAs stay: the SPIs listed before the rekey are the SPIs listed after it, on
//!   both routers (a phase-1 rekey must not renegotiate or delete phase 2);
//! - a second phase 1 completed, and the first one ended by its lifetime;
//! - DPD ran all along: R1 sent R-U-THERE and got every R-U-THERE-ACK back, and nobody
//!   was declared dead (an espgw R2 hears R1's R-U-THEREs, so it has no quiet interval to
//!   ask about: its own counts are printed, not held to a number).
//!
//! These take ≈70 s each, not the suite's usual < 1 min: the floor is the 60 s ISAKMP
//! lifetime IOS allows at least, plus the expiry of the old SA after the rekey.

mod reliability;

use espgw_lab::seqflow::FlowSpec;
use reliability::{ipsec_spis, scenario_line, Pair, PairConf, Peer, SERIAL};
use std::collections::BTreeSet;
use std::time::Duration;

fn conf() -> PairConf {
    PairConf {
        isakmp_lifetime: Some(60),
        keepalive: Some((10, 2)),
        ..PairConf::default()
    }
}

/// Lines of `log` that contain `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// The SPIs R2 lists: espgw's `show crypto ipsec sa`, or strongSwan's installed CHILD_SAs.
fn r2_spis(pair: &Pair) -> BTreeSet<u32> {
    match &pair.r2 {
        Peer::Espgw(r) => ipsec_spis(r),
        Peer::StrongSwan(s) => s
            .list_sas()
            .expect("swanctl --list-sas")
            .iter()
            .flat_map(|i| i.children.iter())
            .filter(|c| c.state == "INSTALLED")
            .flat_map(|c| [c.spi_in, c.spi_out])
            .collect(),
    }
}

fn isakmp_rekey_run(tag: &str, pair: Pair, port: u16) {
    pair.tunnel_up(Duration::from_secs(40));
    let (spis1, spis2) = (ipsec_spis(&pair.r1), r2_spis(&pair));
    assert_eq!(spis1.len(), 2, "{spis1:?}\n{}", pair.logs());
    assert_eq!(spis1, spis2, "R1 and R2 disagree on the SPIs");
    let p1_before = count(&pair.r1.control_log(), "New State = IKE_P1_COMPLETE");
    let (b1, b2) = pair.drops();
    // Past the rekey (54 s) and the old SA's end (60 s) after phase 1 completed.
    let spec = FlowSpec {
        pps: 400,
        duration: Duration::from_secs(63),
        size: 200,
        port,
    };
    let r = pair.flow_one_way(&spec).wait().expect("stream report");
    let (a1, a2) = pair.drops();
    let (d1, d2) = (a1.since(&b1), a2.since(&b2));
    let log1 = pair.r1.control_log();
    let p1_new = count(&log1, "New State = IKE_P1_COMPLETE") - p1_before;
    // The old SA ends by whichever side's lifetime runs out first: R1's own expiry, or the
    // peer's DELETE for it (an espgw responder started its 60 s a moment earlier).
    let ended = count(&log1, "reason \"Lifetime expired\"") + count(&log1, "/ peer delete");
    let (ru1, ack1) = (
        count(&log1, "DPD/R_U_THERE sent to"),
        count(&log1, "received DPD_R_U_THERE_ACK from peer"),
    );
    let dpd2 = pair.r2.espgw().map(|r2| {
        let l = r2.control_log();
        (
            count(&l, "DPD/R_U_THERE sent to"),
            count(&l, "received DPD_R_U_THERE_ACK from peer"),
        )
    });
    let what = format!(
        "{tag}: ISAKMP rekey (lifetime 60 s, {p1_new} new phase 1, {ended} old ended) + DPD 10/2 \
         periodic (R1 {ru1} R-U-THERE/{ack1} ACK{}) with B->A idle, peer {}",
        dpd2.map_or(String::new(), |(r, a)| format!(", R2 {r}/{a}")),
        pair.r2.name()
    );
    let line = scenario_line(
        &what,
        &r,
        &d1,
        &d2,
        "0 lost, 0 dup, same SPIs, >=1 phase-1 rekey, every R-U-THERE answered, no DPD death",
    );
    assert!(r.forward.sent > 20_000, "{line}\n{}", pair.logs());
    assert_eq!(r.back.sent, 0, "the return direction must be idle: {line}");
    pair.assert_lossless(&r, &d1, &d2, &line);
    // Phase 2 untouched by the phase-1 rekey, on both sides.
    assert_eq!(ipsec_spis(&pair.r1), spis1, "{line}\n{}", pair.logs());
    assert_eq!(r2_spis(&pair), spis2, "{line}\n{}", pair.logs());
    assert!(p1_new >= 1, "no ISAKMP rekey: {line}\n{}", pair.logs());
    assert!(ended >= 1, "old ISAKMP SA never ended: {line}\n{log1}");
    let show = pair
        .r1
        .cli(&["show", "crypto", "isakmp", "sa"])
        .expect("show");
    assert!(show.contains("QM_IDLE"), "{show}");
    // DPD kept running over the idle direction and across the rekey: ≈6 rounds in 63 s.
    assert!(ru1 >= 4 && ack1 >= ru1 - 1, "{line}\n{log1}");
    // An espgw R2 sends none of its own: R1's R-U-THEREs keep its peer-activity clock
    // fresh, so its periodic check never finds R1 quiet (its counts are reported).
    for l in [
        log1,
        pair.r2.espgw().map(|r| r.control_log()).unwrap_or_default(),
    ] {
        assert!(!l.contains("is dead"), "{line}\n{l}");
    }
    if let Peer::StrongSwan(s) = &pair.r2 {
        // strongSwan answered every R-U-THERE and kept its CHILD_SA with the new IKE SA.
        let slog = s.log();
        assert!(slog.contains("N(DPD_ACK)"), "{line}\n{}", pair.logs());
        let sas = s.list_sas().expect("list-sas");
        assert!(
            sas.iter().any(|i| i.state == "ESTABLISHED"),
            "{sas:?}\n{line}"
        );
    }
}

#[test]
fn isakmp_rekey_and_dpd_idle_direction_espgw_pair() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pair = Pair::up("p1rkpair", &conf());
    isakmp_rekey_run("p1rkpair", pair, 47301);
}

#[test]
fn isakmp_rekey_and_dpd_idle_direction_strongswan() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = conf();
    let mut prof = c.swan_profile();
    // espgw (the initiator) does the rekey; strongSwan would rather reauthenticate, which
    // in IKEv1 renegotiates the CHILD_SAs too.
    prof.ike_lifetime = Duration::from_secs(86400);
    let pair = Pair::up_swan("p1rkswan", &c, prof);
    isakmp_rekey_run("p1rkswan", pair, 47302);
}
