/* SPDX-License-Identifier: Apache-2.0 */
/*
 * espgw XDP map layouts: the one definition of every key and value shared
 * between the XDP classifiers (ebpf/inside.c, ebpf/outside.c) and the Rust
 * dataplane (dataplane/src/xdp/maps.rs mirrors these with #[repr(C)]; a
 * test checks sizes, offsets and constants against this header through
 * a probe that build.rs compiles from ebpf/layout.c).
 *
 * Byte order: addresses and masks are in network order (as they sit in the
 * IPv4 header); ports are in host order.
 */
#ifndef ESPGW_MAPS_H
#define ESPGW_MAPS_H

#include <linux/types.h>

/* Capacity of the ACL rule array (map "espgw_acl"). */
#define ESPGW_ACL_MAX 64
/* Capacity of the XSKMAP (map "espgw_xsks"), indexed by RX queue. */
#define ESPGW_XSK_MAX 64
/* Capacity of the router's own addresses (map "espgw_local_addrs"). */
#define ESPGW_LOCAL_ADDR_MAX 256

/* espgw_acl_rule.action */
enum espgw_acl_action {
	ESPGW_ACL_END = 0,   /* end of the list: no rule after this one */
	ESPGW_ACL_STEER = 1, /* "permit" in a crypto ACL: interesting, to the worker */
	ESPGW_ACL_PASS = 2,  /* "deny" in a crypto ACL: not interesting, kernel */
};

/*
 * One crypto-ACL entry (map "espgw_acl": each classifier has its own, both
 * filled with the same rules). Rules are evaluated in index order; the
 * rules of one crypto map entry are consecutive and share `policy`. The
 * first matching STEER rule decides; a matching PASS rule ("deny") skips
 * the rest of its entry's rules (IOS: not protected by this entry, the next
 * entry decides); no STEER match: not protected. A rule with action
 * ESPGW_ACL_END ends the list. The inside steers protected packets; the
 * outside applies the rules mirrored (source and destination swapped) to
 * clear packets and drops the protected ones (ebpf/acl.h).
 * proto 0 matches any protocol. Port ranges apply to TCP and UDP only
 * (lo 0, hi 65535 for any); non-first fragments match on addresses and
 * protocol alone (they carry no ports), so interesting fragments never
 * leak to the kernel; PASS rules with ports do not match them.
 */
struct espgw_acl_rule {
	__u32 src_addr;
	__u32 src_mask;
	__u32 dst_addr;
	__u32 dst_mask;
	__u16 sport_lo;
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
	__u8 proto;
	__u8 action;
	__u16 policy; /* crypto map entry (sequence number) the rule belongs to */
};

/*
 * The router's own IPv4 addresses (map "espgw_local_addrs", outside
 * classifier only: a hash keyed by the address in network order, as in
 * the IPv4 header). Only packets addressed to one of them are IKE, NAT-T
 * keepalives or ESP for this router: the outside passes IKE and keepalives
 * to the kernel and steers ESP (raw and in UDP) to the workers only then;
 * every other packet is clear traffic (mirrored ACL check, then the
 * kernel). The dataplane fills the map from netlink (every address of the
 * namespace, the outside interface's first) and keeps it current. An empty
 * map means no exemptions at all (fail closed).
 */
struct espgw_local_addr {
	__u32 ifindex; /* the interface that holds the address (informative) */
};

/*
 * The last clear packet the outside dropped because the crypto ACL
 * protects it (ESPGW_CNT_DROP_CLEAR_PROTECTED), per CPU (map
 * "espgw_clear_sample", outside classifier only: a one-entry per-CPU
 * array, key 0). Written on every such drop; the dataplane reads it each
 * turn of its main loop for the %CRYPTO-4-RECVD_PKT_NOT_IPSEC log message
 * (rate-limited there; the totals are the counter). `drops` counts the
 * samples written on that CPU, so a change says a newer sample is there.
 */
struct espgw_clear_sample {
	__u64 drops;
	__u32 saddr; /* network order */
	__u32 daddr; /* network order */
	__u8 proto;
	__u8 pad[7];
};

/* Indices of the per-CPU counter array (map "espgw_counters"). */
enum espgw_counter_index {
	ESPGW_CNT_STEERED = 0,        /* redirected to the AF_XDP socket */
	ESPGW_CNT_PASS_NOT_IPV4 = 1,  /* ARP, IPv6, VLAN...: kernel */
	ESPGW_CNT_PASS_NO_MATCH = 2,  /* inside: no ACL rule matched: kernel */
	ESPGW_CNT_PASS_ACL_DENY = 3,  /* inside: a deny rule matched: kernel */
	ESPGW_CNT_PASS_IKE = 4,       /* outside: UDP 500, or 4500 with the non-ESP marker */
	ESPGW_CNT_PASS_NATT_KEEPALIVE = 5, /* outside: UDP 4500, one 0xff byte */
	ESPGW_CNT_PASS_OTHER = 6,     /* outside: neither ESP nor IKE: kernel */
	ESPGW_CNT_PASS_MALFORMED = 7, /* truncated headers: kernel decides */
	ESPGW_CNT_DROP_NO_XSK = 8,    /* interesting but no socket on this queue: dropped */
	ESPGW_CNT_DROP_CLEAR_PROTECTED = 9, /* outside: clear, but the mirrored ACL protects it: dropped */
	ESPGW_CNT_MAX = 10,
};

struct espgw_counter {
	__u64 packets;
	__u64 bytes;
};

#define ESPGW_NATT_PORT 4500
#define ESPGW_IKE_PORT 500

#endif /* ESPGW_MAPS_H */
