//! `show crypto ipsec sa peer A | map NAME | detail`: the blocks of `show crypto ipsec
//! sa` that a filter selects; `detail` prints IOS's failure counters in place of
//! `#send errors`/`#recv errors`.

use std::fmt::Write as _;

use super::super::api::IpsecSaView;
use super::super::views::{IpsecErrorCounters, IpsecSaFilter};

/// Whether `show crypto ipsec sa peer A | map NAME` prints this block.
pub fn select_blocks(filter: &IpsecSaFilter, v: &IpsecSaView) -> bool {
    filter.peer.is_none_or(|p| v.current_peer == p)
        && filter.map.as_deref().is_none_or(|m| v.map_tag == m)
}

/// `show crypto ipsec sa detail`.
pub fn ipsec_sa_detail(sas: &[(IpsecSaView, IpsecErrorCounters)]) -> String {
    super::ipsec_sa_with(sas.iter().map(|(v, e)| (v, Some(e))))
}

/// The seven lines `detail` prints after `#pkts not decompressed`.
pub(super) fn error_lines(out: &mut String, e: &IpsecErrorCounters) {
    let _ = writeln!(
        out,
        "    #pkts no sa (send) {}, #pkts invalid sa (rcv) {}",
        e.no_sa_send, e.invalid_sa_rcv
    );
    let _ = writeln!(
        out,
        "    #pkts encaps failed (send) {}, #pkts decaps failed (rcv) {}",
        e.encaps_failed_send, e.decaps_failed_rcv
    );
    let _ = writeln!(
        out,
        "    #pkts invalid prot (recv) {}, #pkts verify failed: {}",
        e.invalid_prot_rcv, e.verify_failed
    );
    let _ = writeln!(
        out,
        "    #pkts invalid identity (recv) {}, #pkts invalid len (rcv) {}",
        e.invalid_identity_rcv, e.invalid_len_rcv
    );
    let _ = writeln!(
        out,
        "    #pkts replay rollover (send): {}, #pkts replay rollover (rcv): {}",
        e.replay_rollover_send, e.replay_rollover_rcv
    );
    let _ = writeln!(
        out,
        "    ##pkts replay failed (rcv): {}",
        e.replay_failed_rcv
    );
    let _ = writeln!(
        out,
        "    #pkts internal err (send): {}, #pkts internal err (recv) {}",
        e.internal_err_send, e.internal_err_rcv
    );
}
