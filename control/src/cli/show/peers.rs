//! `show crypto isakmp peers` and `show crypto engine connections active`.

use std::fmt::Write as _;

use super::super::views::{EngineConnectionView, IsakmpPeerView};

/// `show crypto isakmp peers`: one entry per ISAKMP peer.
pub fn isakmp_peers(peers: &[IsakmpPeerView]) -> String {
    let mut out = String::new();
    for p in peers {
        let _ = writeln!(out, "Peer: {} Port: {} Local: {}", p.peer, p.port, p.local);
        let _ = writeln!(out, " Phase1 id: {}", p.phase1_id);
    }
    out
}

/// `show crypto engine connections active` (the IOS 15 layout: ID, type, algorithm,
/// packet counts, last sequence number, local address).
pub fn engine_connections(conns: &[EngineConnectionView]) -> String {
    let mut out = String::from("Crypto Engine Connections\n\n");
    out.push_str("   ID  Type    Algorithm           Encrypt  Decrypt LastSeqN IP-Address\n");
    for c in conns {
        let _ = writeln!(
            out,
            "{:>5}  {:<7} {:<18} {:>8} {:>8} {:>8} {}",
            c.id,
            c.kind.ios_name(),
            c.algorithm,
            c.encrypt,
            c.decrypt,
            c.last_seq,
            c.ip
        );
    }
    out
}
