//! NAT traversal (RFC 3947): NAT-D payloads, the float to port 4500, the non-ESP marker.
//! The keepalives are a timer ([`Timer::Keepalive`](super::timers::Timer)).

use super::phase1::P1Sa;
use super::*;

/// What phase 1 learned about NATs between us and the peer.
#[derive(Default)]
pub(super) struct NatT {
    pub peer_rfc3947: bool,
    /// The peer is behind a NAT (its NAT-D did not match what we see).
    pub remote_behind: bool,
    /// We are behind a NAT.
    pub local_behind: bool,
    pub floated: bool,
}

fn nat_hash(hash: HashAlg, icky: &[u8; 8], rcky: &[u8; 8], addr: SocketAddr) -> Vec<u8> {
    hash.hash(&[icky, rcky, &v4(addr).octets(), &addr.port().to_be_bytes()])
}

/// The datagram for an IKE message, with the non-ESP marker when it uses port 4500.
pub(super) fn framed(local: SocketAddr, remote: SocketAddr, msg: Vec<u8>) -> Transmit {
    let data = if local.port() == NATT_PORT || remote.port() == NATT_PORT {
        let mut v = NON_ESP_MARKER.to_vec();
        v.extend_from_slice(&msg);
        v
    } else {
        msg
    };
    Transmit {
        local,
        remote,
        data,
    }
}

impl P1Sa {
    /// Our two NAT-D payloads (the peer's address first), when the peer announced RFC 3947.
    pub(super) fn nat_d_payloads(&self, h: HashAlg) -> Vec<Payload> {
        if !self.nat.peer_rfc3947 {
            return vec![];
        }
        vec![
            Payload::NatD {
                hash: nat_hash(h, &self.icookie, &self.rcookie, self.remote),
                draft: false,
            },
            Payload::NatD {
                hash: nat_hash(h, &self.icookie, &self.rcookie, self.local),
                draft: false,
            },
        ]
    }

    /// Initiator, before its first message after the NAT-D exchange (MM5, AM3): float to
    /// 4500 when a NAT was detected (RFC 3947 §4).
    pub(super) fn float_if_nat(&mut self) {
        if self.nat.local_behind || self.nat.remote_behind {
            self.local = SocketAddr::new(self.local.ip(), NATT_PORT);
            self.remote = SocketAddr::new(self.remote.ip(), NATT_PORT);
            self.nat.floated = true;
        }
    }

    /// Responder, on the initiator's authenticated message (MM5, AM3): the initiator may
    /// have floated to 4500; answer where it came from.
    pub(super) fn follow_float(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.local = local;
        self.remote = remote;
        self.nat.floated = local.port() == NATT_PORT;
    }
}

impl Endpoint {
    /// Processes received NAT-D payloads: the first describes us, the rest the peer.
    pub(super) fn process_nat_d(&mut self, sa: &mut P1Sa, h: HashAlg, ps: &[Payload]) {
        let nds: Vec<&Vec<u8>> = ps
            .iter()
            .filter_map(|p| {
                if let Payload::NatD { hash, .. } = p {
                    Some(hash)
                } else {
                    None
                }
            })
            .collect();
        if nds.is_empty() {
            return;
        }
        let me = nat_hash(h, &sa.icookie, &sa.rcookie, sa.local);
        let them = nat_hash(h, &sa.icookie, &sa.rcookie, sa.remote);
        let local_behind = *nds[0] != me;
        let remote_behind = !nds[1..].iter().any(|x| **x == them);
        sa.nat.local_behind = local_behind;
        sa.nat.remote_behind = remote_behind;
        let conn = sa.conn_id;
        self.processing(conn, 0, &["NAT-D"]);
        if local_behind || remote_behind {
            self.ik(
                conn,
                format!(
                    "NAT found, {} is behind a NAT",
                    if local_behind {
                        "this end"
                    } else {
                        "the remote peer"
                    }
                ),
            );
        } else {
            self.ik(conn, "NAT not found");
        }
    }
}
