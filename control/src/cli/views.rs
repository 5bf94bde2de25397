//! The views of the operator screens added for issue 16 (`show crypto isakmp peers`,
//! `show crypto engine connections active`, `show crypto ipsec sa detail`, `show crypto
//! session detail`, `show crypto ipsec transform-set`): what the daemon fills and
//! `cli::show` prints. Part of the control-socket contract ([`super::api`] re-exports
//! them).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::config::model::{Config, IpsecMode, ProxyId};

/// Which blocks `show crypto ipsec sa` prints, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecSaFilter {
    /// `peer A`: only the blocks whose current peer is A.
    pub peer: Option<Ipv4Addr>,
    /// `map NAME`: only the blocks of crypto map NAME.
    pub map: Option<String>,
    /// `detail`: the error counters instead of `#send errors`/`#recv errors`.
    pub detail: bool,
}

/// One row of `show crypto isakmp peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsakmpPeerView {
    pub peer: Ipv4Addr,
    pub port: u16,
    pub local: Ipv4Addr,
    /// The peer's phase-1 identity (its address, or a client's group name).
    pub phase1_id: String,
}

/// Whether an engine connection is an ISAKMP SA or an IPsec SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineConnectionKind {
    Ike,
    Ipsec,
}

impl EngineConnectionKind {
    pub fn ios_name(self) -> &'static str {
        match self {
            EngineConnectionKind::Ike => "IKE",
            EngineConnectionKind::Ipsec => "IPsec",
        }
    }
}

/// One row of `show crypto engine connections active`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConnectionView {
    /// The connection id (`conn id` of `show crypto ipsec sa`, `conn-id` of `show crypto
    /// isakmp sa`).
    pub id: u32,
    pub kind: EngineConnectionKind,
    /// `3DES+MD5` (IPsec: cipher+hash), `SHA+3DES` (IKE: hash+cipher).
    pub algorithm: String,
    /// Packets encrypted (an outbound IPsec SA), decrypted (an inbound one); 0 for IKE.
    pub encrypt: u64,
    pub decrypt: u64,
    /// The last sequence number sent (outbound) or received (inbound); 0 for IKE.
    pub last_seq: u64,
    /// The local address of the SA.
    pub ip: Ipv4Addr,
}

/// The packets `show crypto ipsec sa detail` counts by failure, for one block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecErrorCounters {
    pub no_sa_send: u64,
    pub invalid_sa_rcv: u64,
    pub encaps_failed_send: u64,
    pub decaps_failed_rcv: u64,
    pub invalid_prot_rcv: u64,
    pub verify_failed: u64,
    pub invalid_identity_rcv: u64,
    pub invalid_len_rcv: u64,
    pub replay_rollover_send: u64,
    pub replay_rollover_rcv: u64,
    pub replay_failed_rcv: u64,
    pub internal_err_send: u64,
    pub internal_err_rcv: u64,
}

/// One ISAKMP SA of a session in `show crypto session detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIkeView {
    pub local: Ipv4Addr,
    pub local_port: u16,
    pub remote: Ipv4Addr,
    pub remote_port: u16,
    /// `Active`, or `Inactive` while phase 1 runs.
    pub active: bool,
    /// Capability letters (D, N, X, C); empty prints `(none)`.
    pub capabilities: String,
    pub conn_id: u32,
    /// Seconds of lifetime left (0 before phase 1 completes).
    pub lifetime_secs: u64,
}

/// One IPsec flow of a session in `show crypto session detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFlowView {
    pub local: ProxyId,
    pub remote: ProxyId,
    pub active_sas: u32,
    /// `crypto map` or `dynamic crypto map`.
    pub origin: String,
    pub in_packets: u64,
    pub in_drops: u64,
    pub in_kb: u64,
    pub in_secs: u64,
    pub out_packets: u64,
    pub out_drops: u64,
    pub out_kb: u64,
    pub out_secs: u64,
}

/// One peer's session in `show crypto session detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetailView {
    pub interface: String,
    pub username: Option<String>,
    pub group: Option<String>,
    pub assigned: Option<Ipv4Addr>,
    pub uptime_secs: u64,
    /// `UP-ACTIVE`, `UP-IDLE`, `UP-NO-IKE`, `DOWN-NEGOTIATING`.
    pub status: String,
    pub peer: Ipv4Addr,
    pub peer_port: u16,
    pub phase1_id: String,
    pub ike: Vec<SessionIkeView>,
    pub flows: Vec<SessionFlowView>,
}

/// One transform set in `show crypto ipsec transform-set`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformSetView {
    pub name: String,
    /// `esp-3des esp-md5-hmac`.
    pub transforms: String,
    pub mode: IpsecMode,
}

impl TransformSetView {
    /// Every transform set of a configuration, by name.
    pub fn from_config(cfg: &Config) -> Vec<TransformSetView> {
        let mut v: Vec<TransformSetView> = cfg
            .transform_sets
            .values()
            .map(|t| TransformSetView {
                name: t.name.clone(),
                transforms: t.transform.clone(),
                mode: t.mode,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
