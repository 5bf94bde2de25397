//! The states each endpoint passed through (its state trace) against the IOS state names
//! its `debug crypto isakmp` output printed: they agree line by line, for Main Mode,
//! Aggressive Mode and Quick Mode, on both sides.

use super::*;
use crate::ike::endpoint::IosState;

/// One `Old State = X  New State = Y` line, with the SA (conn id) and the Quick Mode
/// exchange (node) the `Input = …` line before it names.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    conn: u32,
    node: Option<u32>,
    from: String,
    to: String,
}

fn printed(lines: &[String]) -> Vec<Printed> {
    let mut out = vec![];
    for w in lines.windows(2) {
        let Some(states) = w[1].strip_prefix("Old State = ") else {
            continue;
        };
        let (from, to) = states
            .split_once("  New State = ")
            .expect("transition line");
        let input = w[0]
            .strip_prefix("ISAKMP (0:")
            .expect("an Input line first");
        let (conn, rest) = input.split_once("): ").expect("conn id");
        let node = rest
            .strip_prefix("Node ")
            .map(|r| r.split_once(',').expect("node id").0.parse().expect("node"));
        assert!(rest.contains("Input = "), "{}", w[0]);
        out.push(Printed {
            conn: conn.parse().expect("conn"),
            node,
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    out
}

/// Checks one endpoint; returns the states its SAs and exchanges rested in, in order,
/// phase 1 and Quick Mode apart.
fn agree(ep: &mut Endpoint) -> (Vec<&'static str>, Vec<&'static str>) {
    let lines = Lab::debug(ep);
    let trace = ep.state_trace().to_vec();
    let from_trace: Vec<Printed> = trace
        .iter()
        .map(|e| Printed {
            conn: e.conn,
            node: e.node,
            from: e.from.ios_name().to_string(),
            to: e.to.ios_name().to_string(),
        })
        .collect();
    assert_eq!(printed(&lines), from_trace, "{}", lines.join("\n"));
    // Each SA and each exchange starts ready, and every line starts where the last ended.
    let mut at: Vec<((u32, Option<u32>), IosState)> = vec![];
    for e in &trace {
        let ready = if e.node.is_some() {
            IosState::QmReady
        } else {
            IosState::Ready
        };
        let key = (e.conn, e.node);
        let last = at
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map_or(ready, |x| x.1);
        assert_eq!(e.from, last, "{e:?}");
        at.push((key, e.to));
    }
    let rested = |qm: bool| {
        trace
            .iter()
            .filter(|e| e.stored && e.node.is_some() == qm)
            .map(|e| e.to.ios_name())
            .collect::<Vec<_>>()
    };
    (rested(false), rested(true))
}

#[test]
fn main_mode_and_quick_mode_states_match_the_debug_output() {
    let o = Opts::default();
    let mut lab = up(&o, &o);
    assert_tunnel(&lab);
    let (p1, qm) = agree(&mut lab.a);
    assert_eq!(
        p1,
        ["IKE_I_MM1", "IKE_I_MM3", "IKE_I_MM5", "IKE_P1_COMPLETE"]
    );
    assert_eq!(qm, ["IKE_QM_I_QM1", "IKE_QM_PHASE2_COMPLETE"]);
    let (p1, qm) = agree(&mut lab.b);
    assert_eq!(p1, ["IKE_R_MM2", "IKE_R_MM4", "IKE_P1_COMPLETE"]);
    assert_eq!(qm, ["IKE_QM_R_QM2", "IKE_QM_PHASE2_COMPLETE"]);
}

#[test]
fn aggressive_mode_and_quick_mode_states_match_the_debug_output() {
    let o = Opts {
        mode: Phase1Mode::Aggressive,
        group: DhGroup::Modp1024,
        pfs: Some(DhGroup::Modp1024),
        ..Default::default()
    };
    let mut lab = up(&o, &o);
    lab.advance(Duration::from_secs(1));
    assert_tunnel(&lab);
    let (p1, qm) = agree(&mut lab.a);
    assert_eq!(p1, ["IKE_I_AM1", "IKE_P1_COMPLETE"]);
    assert_eq!(qm, ["IKE_QM_I_QM1", "IKE_QM_PHASE2_COMPLETE"]);
    let (p1, qm) = agree(&mut lab.b);
    assert_eq!(p1, ["IKE_R_AM2", "IKE_P1_COMPLETE"]);
    assert_eq!(qm, ["IKE_QM_R_QM2", "IKE_QM_PHASE2_COMPLETE"]);
}

#[test]
fn rekeyed_quick_modes_keep_the_states_and_the_debug_output_in_step() {
    // A second Quick Mode under the same phase 1 (the IPsec SA's soft lifetime).
    let o = Opts {
        lifetime: 120,
        ..Default::default()
    };
    let mut lab = up(&o, &o);
    lab.advance(Duration::from_secs(110));
    assert_eq!(pairs(&lab.ev_a).len(), 2, "{:?}", lab.ev_a);
    let (_, qm) = agree(&mut lab.a);
    assert_eq!(
        qm,
        [
            "IKE_QM_I_QM1",
            "IKE_QM_PHASE2_COMPLETE",
            "IKE_QM_I_QM1",
            "IKE_QM_PHASE2_COMPLETE"
        ]
    );
    agree(&mut lab.b);
}
