//! `#[repr(C)]` mirrors of the map keys and values in `ebpf/espgw_maps.h`.
//!
//! The header is the definition; the tests below compare every size, offset
//! and constant here with what a probe compiled from that header prints
//! (`ebpf/layout.c`, built and run by `dataplane/build.rs`).

/// Crypto-ACL rules the classifier accepts (`ESPGW_ACL_MAX`).
pub const ACL_MAX: u32 = 65536;
/// Capacity of the XSKMAP (`ESPGW_XSK_MAX`), indexed by RX queue.
pub const XSK_MAX: u32 = 64;
/// Capacity of the router's own addresses (`ESPGW_LOCAL_ADDR_MAX`).
pub const LOCAL_ADDR_MAX: u32 = 256;
/// LPM entries of `espgw_cls_dst`, both banks (`ESPGW_CLS_DST_MAX`).
pub const CLS_DST_MAX: u32 = 1 << 17;
/// LPM entries of `espgw_cls_src`, both banks (`ESPGW_CLS_SRC_MAX`).
pub const CLS_SRC_MAX: u32 = 1 << 18;
/// Entries of `espgw_cls_cand`, both banks (`ESPGW_CLS_CAND_MAX`).
pub const CLS_CAND_MAX: u32 = 1 << 18;
/// Candidates one cell may hold (`ESPGW_CLS_WALK_MAX`).
pub const CLS_WALK_MAX: u32 = 64;

/// `enum espgw_acl_action`: interesting, redirect to the worker.
pub const ACL_STEER: u8 = 1;
/// Not interesting: to the kernel.
pub const ACL_PASS: u8 = 2;

/// The data of `struct espgw_cls_key` after `prefixlen` (aya's LPM key
/// carries the prefix length itself): `tag` is the bank (destination trie)
/// or the node (source trie) and `addr` the address, both as native `u32`s
/// read from network-order octets.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClsKeyData {
    pub tag: u32,
    pub addr: u32,
}

impl ClsKeyData {
    /// `tag` in network order, `addr` as its octets.
    pub fn new(tag: u32, addr: std::net::Ipv4Addr) -> Self {
        ClsKeyData {
            tag: u32::from_ne_bytes(tag.to_be_bytes()),
            addr: u32::from_ne_bytes(addr.octets()),
        }
    }
}

/// `struct espgw_cls_dst`: the node of a destination prefix.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClsDstRaw {
    pub node: u32,
}

/// `struct espgw_cls_cell`: where a cell's candidates lie in `espgw_cls_cand`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClsCellRaw {
    pub start: u32,
    pub count: u32,
}

/// `struct espgw_cls_cand`: one rule's protocol, ports, action, run and
/// index, ports in host order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClsCandRaw {
    pub sport_lo: u16,
    pub sport_hi: u16,
    pub dport_lo: u16,
    pub dport_hi: u16,
    pub proto: u8,
    pub action: u8,
    pub pad: u16,
    pub run: u32,
    pub rule: u32,
}

/// `struct espgw_cls_config`: the bank in force.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClsConfigRaw {
    pub bank: u32,
    pub pad: u32,
}

/// `struct espgw_local_addr`: the value of map `espgw_local_addrs`, whose
/// key is the address as a native `u32` read from its network-order octets
/// (`u32::from_ne_bytes(addr.octets())`). Only packets addressed to a key of
/// that map get the outside's IKE/NAT-T pass and ESP steer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalAddrRaw {
    /// The interface holding the address (informative; the classifier
    /// only asks whether the key is present).
    pub ifindex: u32,
}

/// `struct espgw_clear_sample`: the value of the outside's one-entry
/// per-CPU map `espgw_clear_sample`, the last clear packet that CPU dropped
/// because the crypto ACL protects it (for the
/// `%CRYPTO-4-RECVD_PKT_NOT_IPSEC` log message). Addresses as native `u32`s
/// read from their network-order octets.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClearSampleRaw {
    /// Samples written on that CPU (changes with every newer sample; 0: none).
    pub drops: u64,
    pub saddr: u32,
    pub daddr: u32,
    pub proto: u8,
    pub pad: [u8; 7],
}

impl ClearSampleRaw {
    pub fn src(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(self.saddr.to_ne_bytes())
    }

    pub fn dst(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(self.daddr.to_ne_bytes())
    }
}

/// `struct espgw_counter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterRaw {
    pub packets: u64,
    pub bytes: u64,
}

espgw_sadb::named_enum! {
    /// `enum espgw_counter_index`: why the classifier did what it did. `COUNT` is
    /// `ESPGW_CNT_MAX`; the names are the statistics keys.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u32)]
    pub enum CounterIndex {
        Steered = 0 => "steered",
        PassNotIpv4 = 1 => "pass_not_ipv4",
        PassNoMatch = 2 => "pass_no_match",
        PassAclDeny = 3 => "pass_acl_deny",
        PassIke = 4 => "pass_ike",
        PassNattKeepalive = 5 => "pass_natt_keepalive",
        PassOther = 6 => "pass_other",
        PassMalformed = 7 => "pass_malformed",
        DropNoXsk = 8 => "drop_no_xsk",
        /// Outside: arrived in clear, but the crypto ACL (mirrored) says it must
        /// be protected: dropped.
        DropClearProtected = 9 => "drop_clear_protected",
    }
}

impl CounterIndex {
    #[cfg(test)]
    fn header_name(self) -> &'static str {
        match self {
            Self::Steered => "ESPGW_CNT_STEERED",
            Self::PassNotIpv4 => "ESPGW_CNT_PASS_NOT_IPV4",
            Self::PassNoMatch => "ESPGW_CNT_PASS_NO_MATCH",
            Self::PassAclDeny => "ESPGW_CNT_PASS_ACL_DENY",
            Self::PassIke => "ESPGW_CNT_PASS_IKE",
            Self::PassNattKeepalive => "ESPGW_CNT_PASS_NATT_KEEPALIVE",
            Self::PassOther => "ESPGW_CNT_PASS_OTHER",
            Self::PassMalformed => "ESPGW_CNT_PASS_MALFORMED",
            Self::DropNoXsk => "ESPGW_CNT_DROP_NO_XSK",
            Self::DropClearProtected => "ESPGW_CNT_DROP_CLEAR_PROTECTED",
        }
    }
}

/// The compiled crypto ACL's maps (see `ebpf/espgw_maps.h`).
pub const MAP_CLS_CONFIG: &str = "espgw_cls_config";
/// Destination LPM trie.
pub const MAP_CLS_DST: &str = "espgw_cls_dst";
/// Source LPM trie (cells).
pub const MAP_CLS_SRC: &str = "espgw_cls_src";
/// Candidate array.
pub const MAP_CLS_CAND: &str = "espgw_cls_cand";
/// XSKMAP name.
pub const MAP_XSKS: &str = "espgw_xsks";
/// Per-CPU counter array name.
pub const MAP_COUNTERS: &str = "espgw_counters";
/// The router's own addresses (outside classifier only).
pub const MAP_LOCAL_ADDRS: &str = "espgw_local_addrs";
/// The last clear packet dropped as protected, per CPU (outside only).
pub const MAP_CLEAR_SAMPLE: &str = "espgw_clear_sample";

#[cfg(test)]
mod tests {
    #![allow(non_upper_case_globals)]
    use super::*;
    use std::mem::{offset_of, size_of};

    mod header {
        include!(concat!(env!("OUT_DIR"), "/espgw_layout.rs"));
    }

    #[test]
    fn classifier_maps_match_header() {
        // The LPM key: aya puts the u32 prefix length in front of the data.
        assert_eq!(header::espgw_cls_key_prefixlen, 0);
        assert_eq!(4 + size_of::<ClsKeyData>(), header::espgw_cls_key_SIZE);
        assert_eq!(4 + offset_of!(ClsKeyData, tag), header::espgw_cls_key_tag);
        assert_eq!(4 + offset_of!(ClsKeyData, addr), header::espgw_cls_key_addr);
        assert_eq!(size_of::<ClsDstRaw>(), header::espgw_cls_dst_SIZE);
        assert_eq!(offset_of!(ClsDstRaw, node), header::espgw_cls_dst_node);
        assert_eq!(size_of::<ClsCellRaw>(), header::espgw_cls_cell_SIZE);
        assert_eq!(offset_of!(ClsCellRaw, start), header::espgw_cls_cell_start);
        assert_eq!(offset_of!(ClsCellRaw, count), header::espgw_cls_cell_count);
        assert_eq!(size_of::<ClsCandRaw>(), header::espgw_cls_cand_SIZE);
        for (ours, theirs) in [
            (
                offset_of!(ClsCandRaw, sport_lo),
                header::espgw_cls_cand_sport_lo,
            ),
            (
                offset_of!(ClsCandRaw, sport_hi),
                header::espgw_cls_cand_sport_hi,
            ),
            (
                offset_of!(ClsCandRaw, dport_lo),
                header::espgw_cls_cand_dport_lo,
            ),
            (
                offset_of!(ClsCandRaw, dport_hi),
                header::espgw_cls_cand_dport_hi,
            ),
            (offset_of!(ClsCandRaw, proto), header::espgw_cls_cand_proto),
            (
                offset_of!(ClsCandRaw, action),
                header::espgw_cls_cand_action,
            ),
            (offset_of!(ClsCandRaw, pad), header::espgw_cls_cand_pad),
            (offset_of!(ClsCandRaw, run), header::espgw_cls_cand_run),
            (offset_of!(ClsCandRaw, rule), header::espgw_cls_cand_rule),
        ] {
            assert_eq!(ours, theirs);
        }
        assert_eq!(size_of::<ClsConfigRaw>(), header::espgw_cls_config_SIZE);
        assert_eq!(
            offset_of!(ClsConfigRaw, bank),
            header::espgw_cls_config_bank
        );
        assert_eq!(offset_of!(ClsConfigRaw, pad), header::espgw_cls_config_pad);
        assert_eq!(CLS_DST_MAX, header::ESPGW_CLS_DST_MAX);
        assert_eq!(CLS_SRC_MAX, header::ESPGW_CLS_SRC_MAX);
        assert_eq!(CLS_CAND_MAX, header::ESPGW_CLS_CAND_MAX);
        assert_eq!(CLS_WALK_MAX, header::ESPGW_CLS_WALK_MAX);
        // Tags go in network order, addresses as their octets.
        let k = ClsKeyData::new(0x8000_0001, std::net::Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(k.tag.to_ne_bytes(), [0x80, 0, 0, 1]);
        assert_eq!(k.addr.to_ne_bytes(), [10, 1, 2, 0]);
    }

    #[test]
    fn counter_matches_header() {
        assert_eq!(size_of::<CounterRaw>(), header::espgw_counter_SIZE);
        assert_eq!(
            offset_of!(CounterRaw, packets),
            header::espgw_counter_packets
        );
        assert_eq!(offset_of!(CounterRaw, bytes), header::espgw_counter_bytes);
    }

    #[test]
    fn local_addr_matches_header() {
        assert_eq!(size_of::<LocalAddrRaw>(), header::espgw_local_addr_SIZE);
        assert_eq!(
            offset_of!(LocalAddrRaw, ifindex),
            header::espgw_local_addr_ifindex
        );
        assert_eq!(LOCAL_ADDR_MAX, header::ESPGW_LOCAL_ADDR_MAX);
    }

    #[test]
    fn clear_sample_matches_header() {
        assert_eq!(size_of::<ClearSampleRaw>(), header::espgw_clear_sample_SIZE);
        assert_eq!(
            offset_of!(ClearSampleRaw, drops),
            header::espgw_clear_sample_drops
        );
        assert_eq!(
            offset_of!(ClearSampleRaw, saddr),
            header::espgw_clear_sample_saddr
        );
        assert_eq!(
            offset_of!(ClearSampleRaw, daddr),
            header::espgw_clear_sample_daddr
        );
        assert_eq!(
            offset_of!(ClearSampleRaw, proto),
            header::espgw_clear_sample_proto
        );
        assert_eq!(
            offset_of!(ClearSampleRaw, pad),
            header::espgw_clear_sample_pad
        );
        // The addresses are the IPv4 header's octets.
        let s = ClearSampleRaw {
            saddr: u32::from_ne_bytes([10, 1, 2, 2]),
            daddr: u32::from_ne_bytes([10, 1, 1, 2]),
            ..Default::default()
        };
        assert_eq!(s.src(), std::net::Ipv4Addr::new(10, 1, 2, 2));
        assert_eq!(s.dst(), std::net::Ipv4Addr::new(10, 1, 1, 2));
    }

    #[test]
    fn constants_match_header() {
        assert_eq!(ACL_MAX, header::ESPGW_ACL_MAX);
        assert_eq!(XSK_MAX, header::ESPGW_XSK_MAX);
        assert_eq!(ACL_STEER, header::ESPGW_ACL_STEER);
        assert_eq!(ACL_PASS, header::ESPGW_ACL_PASS);
        let (max_name, max) = header::ESPGW_CNT[CounterIndex::COUNT];
        assert_eq!(max_name, "ESPGW_CNT_MAX");
        assert_eq!(max as usize, CounterIndex::COUNT);
        for (i, c) in CounterIndex::ALL.iter().enumerate() {
            assert_eq!(header::ESPGW_CNT[i], (c.header_name(), *c as u32));
        }
    }
}
