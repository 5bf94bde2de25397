//! `#[repr(C)]` mirrors of the map keys and values in `ebpf/espgw_maps.h`.
//!
//! The header is the definition; the tests below compare every size, offset
//! and constant here with what a probe compiled from that header prints
//! (`ebpf/layout.c`, built and run by `dataplane/build.rs`).

/// Capacity of the ACL rule array (`ESPGW_ACL_MAX`).
pub const ACL_MAX: u32 = 64;
/// Capacity of the XSKMAP (`ESPGW_XSK_MAX`), indexed by RX queue.
pub const XSK_MAX: u32 = 64;
/// Capacity of the router's own addresses (`ESPGW_LOCAL_ADDR_MAX`).
pub const LOCAL_ADDR_MAX: u32 = 256;

/// `enum espgw_acl_action`.
pub const ACL_END: u8 = 0;
/// Interesting: redirect to the worker.
pub const ACL_STEER: u8 = 1;
/// Not interesting: to the kernel.
pub const ACL_PASS: u8 = 2;

/// `struct espgw_acl_rule`: addresses and masks in network byte order (the
/// octets as in the IPv4 header, read as a native `u32`), ports in host order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AclRuleRaw {
    pub src_addr: u32,
    pub src_mask: u32,
    pub dst_addr: u32,
    pub dst_mask: u32,
    pub sport_lo: u16,
    pub sport_hi: u16,
    pub dport_lo: u16,
    pub dport_hi: u16,
    pub proto: u8,
    pub action: u8,
    pub policy: u16,
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

/// Map names in the objects.
pub const MAP_ACL: &str = "espgw_acl";
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
    fn acl_rule_matches_header() {
        assert_eq!(size_of::<AclRuleRaw>(), header::espgw_acl_rule_SIZE);
        assert_eq!(
            offset_of!(AclRuleRaw, src_addr),
            header::espgw_acl_rule_src_addr
        );
        assert_eq!(
            offset_of!(AclRuleRaw, src_mask),
            header::espgw_acl_rule_src_mask
        );
        assert_eq!(
            offset_of!(AclRuleRaw, dst_addr),
            header::espgw_acl_rule_dst_addr
        );
        assert_eq!(
            offset_of!(AclRuleRaw, dst_mask),
            header::espgw_acl_rule_dst_mask
        );
        assert_eq!(
            offset_of!(AclRuleRaw, sport_lo),
            header::espgw_acl_rule_sport_lo
        );
        assert_eq!(
            offset_of!(AclRuleRaw, sport_hi),
            header::espgw_acl_rule_sport_hi
        );
        assert_eq!(
            offset_of!(AclRuleRaw, dport_lo),
            header::espgw_acl_rule_dport_lo
        );
        assert_eq!(
            offset_of!(AclRuleRaw, dport_hi),
            header::espgw_acl_rule_dport_hi
        );
        assert_eq!(offset_of!(AclRuleRaw, proto), header::espgw_acl_rule_proto);
        assert_eq!(
            offset_of!(AclRuleRaw, action),
            header::espgw_acl_rule_action
        );
        assert_eq!(
            offset_of!(AclRuleRaw, policy),
            header::espgw_acl_rule_policy
        );
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
        assert_eq!(ACL_END, header::ESPGW_ACL_END);
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
