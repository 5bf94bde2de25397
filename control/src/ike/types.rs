//! Inputs and outputs of the sans-IO core: datagrams to send, events for the driver, debug
//! lines, and the views `show` reads.

use super::config::{Proxy, TransformSet};
use super::crypto::{EncAlg, Secret};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// A datagram to send (bytes include the non-ESP marker when either port is 4500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub data: Vec<u8>,
}

/// Which debug switch a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugClass {
    Isakmp,
    Ipsec,
}

/// One line of `debug crypto isakmp|ipsec` output (without timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugLine {
    pub class: DebugClass,
    pub text: String,
}

/// Direction of an IPsec SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// One negotiated IPsec SA, ready for the SA database.
#[derive(Clone)]
pub struct IpsecSa {
    pub direction: Direction,
    pub spi: u32,
    /// Outer source and destination (tunnel endpoints).
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Traffic selectors as seen from this SA's direction's sender.
    pub src_proxy: Proxy,
    pub dst_proxy: Proxy,
    pub transform: TransformSet,
    pub enc_key: Secret,
    pub auth_key: Secret,
    pub lifetime_secs: u32,
    pub lifetime_kb: u64,
    /// UDP encapsulation (RFC 3948): (source port, destination port) of the outer UDP.
    pub encap: Option<(u16, u16)>,
    pub conn_id: u32,
    pub map: String,
    pub seq: u32,
}

impl fmt::Debug for IpsecSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpsecSa")
            .field("direction", &self.direction)
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("transform", &self.transform.ios_name())
            .field("encap", &self.encap)
            .field("conn_id", &self.conn_id)
            .finish_non_exhaustive()
    }
}

/// What the driver must act on.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // rare events; boxing buys nothing here
pub enum Event {
    /// A phase-1 SA finished: for the key log (ICOOKIE, Ka) and show.
    IsakmpSaUp {
        conn_id: u32,
        peer: SocketAddr,
        icookie: [u8; 8],
        rcookie: [u8; 8],
        enc: EncAlg,
        enc_key: Secret,
    },
    IsakmpSaDown {
        conn_id: u32,
        peer: SocketAddr,
    },
    /// A new pair of IPsec SAs: install both (inbound first).
    IpsecSaUp {
        inbound: IpsecSa,
        outbound: IpsecSa,
    },
    /// Remove these SAs (keys must be zeroed).
    IpsecSaDown {
        inbound_spi: u32,
        outbound_spi: u32,
        peer: Ipv4Addr,
    },
    /// A negotiation for a peer failed.
    NegotiationFailed {
        peer: Ipv4Addr,
        reason: String,
    },
}

/// `show crypto isakmp sa` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsakmpSaInfo {
    pub dst: Ipv4Addr,
    pub src: Ipv4Addr,
    pub state: &'static str,
    pub conn_id: u32,
    pub status: &'static str,
    pub icookie: [u8; 8],
    pub rcookie: [u8; 8],
    pub remote_port: u16,
}

/// `show crypto ipsec sa` entry (one SA pair).
#[derive(Debug, Clone)]
pub struct IpsecSaInfo {
    pub map: String,
    pub seq: u32,
    pub interface: String,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub remote_port: u16,
    pub local_proxy: Proxy,
    pub remote_proxy: Proxy,
    pub transform: TransformSet,
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub inbound_conn_id: u32,
    pub outbound_conn_id: u32,
    pub udp_encap: bool,
    pub lifetime_kb: u64,
    pub lifetime_secs: u32,
    /// Seconds left before hard expiry.
    pub remaining_secs: u64,
}

/// Drops and failures counted by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_malformed: u64,
    pub rx_unknown_cookie: u64,
    pub rx_decrypt_failed: u64,
    pub rx_hash_failed: u64,
    pub rx_retransmissions: u64,
    pub rx_unexpected: u64,
    pub half_open_dropped: u64,
    /// Half-open SAs of unnamed peers given up to admit a crypto map's peer.
    pub half_open_evicted: u64,
    pub tx_retransmissions: u64,
    /// Phase-1 SAs begun (as initiator or responder).
    pub p1_started: u64,
    /// Quick Mode exchanges begun (as initiator or responder).
    pub p2_started: u64,
    pub p1_established: u64,
    pub p2_established: u64,
    /// Phase-1 negotiations that failed before the ISAKMP SA was established, by reason.
    pub p1_failed: crate::ike::Failures,
    /// XAUTH / Mode Config (phase 1.5) that failed after phase 1, by reason.
    pub p15_failed: crate::ike::Failures,
    /// Quick Mode exchanges that failed, by reason.
    pub p2_failed: crate::ike::Failures,
    pub dpd_dead_peers: u64,
    /// Time from the first message to the ISAKMP SA's establishment.
    pub p1_setup: crate::ike::latency::SetupLatency,
    /// Time from the first Quick Mode message to the IPsec SAs' installation.
    pub p2_setup: crate::ike::latency::SetupLatency,
}
