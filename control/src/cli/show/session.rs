//! `show crypto session detail`: every peer's session, site-to-site and remote access,
//! with its ISAKMP SAs and IPsec flows and their packet counts.

use std::fmt::Write as _;

use super::super::views::SessionDetailView;
use super::flow_ident;

/// `hh:mm:ss`, as IOS prints uptimes and lifetimes.
pub fn hms(secs: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// `show crypto session detail`.
pub fn crypto_session_detail(sessions: &[SessionDetailView]) -> String {
    let mut s = String::from("Crypto session current status\n\n");
    s.push_str("Code: C - IKE Configuration mode, D - Dead Peer Detection\n");
    s.push_str("K - Keepalives, N - NAT-traversal, T - cTCP encapsulation\n");
    s.push_str("X - IKE Extended Authentication, F - IKE Fragmentation\n\n");
    for c in sessions {
        let _ = writeln!(s, "Interface: {}", c.interface);
        if let Some(u) = &c.username {
            let _ = writeln!(s, "Username: {u}");
        }
        if let Some(g) = &c.group {
            let _ = writeln!(s, "Group: {g}");
        }
        if let Some(a) = c.assigned {
            let _ = writeln!(s, "Assigned address: {a}");
        }
        let _ = writeln!(s, "Uptime: {}", hms(c.uptime_secs));
        let _ = writeln!(s, "Session status: {}", c.status);
        let _ = writeln!(
            s,
            "Peer: {} port {} fvrf: (none) ivrf: (none)",
            c.peer, c.peer_port
        );
        let _ = writeln!(s, "      Phase1_id: {}", c.phase1_id);
        s.push_str("      Desc: (none)\n");
        for ike in &c.ike {
            let _ = writeln!(
                s,
                "  IKEv1 SA: local {}/{} remote {}/{} {}",
                ike.local,
                ike.local_port,
                ike.remote,
                ike.remote_port,
                if ike.active { "Active" } else { "Inactive" }
            );
            let caps = if ike.capabilities.is_empty() {
                "(none)"
            } else {
                ike.capabilities.as_str()
            };
            let _ = writeln!(
                s,
                "          Capabilities:{caps} connid:{} lifetime:{}",
                ike.conn_id,
                hms(ike.lifetime_secs)
            );
        }
        for f in &c.flows {
            let _ = writeln!(
                s,
                "  IPSEC FLOW: permit ip {} {}",
                flow_ident(&f.local),
                flow_ident(&f.remote)
            );
            let _ = writeln!(
                s,
                "        Active SAs: {}, origin: {}",
                f.active_sas, f.origin
            );
            let _ = writeln!(
                s,
                "        Inbound:  #pkts dec'ed {} drop {} life (KB/Sec) {}/{}",
                f.in_packets, f.in_drops, f.in_kb, f.in_secs
            );
            let _ = writeln!(
                s,
                "        Outbound: #pkts enc'ed {} drop {} life (KB/Sec) {}/{}",
                f.out_packets, f.out_drops, f.out_kb, f.out_secs
            );
        }
        s.push('\n');
    }
    s
}
