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

/* Crypto-ACL rules the classifier accepts (the rule list control hands over;
 * what the maps below hold is compiled from it, dataplane/src/xdp/classify.rs). */
#define ESPGW_ACL_MAX 65536
/* Capacity of the XSKMAP (map "espgw_xsks"), indexed by RX queue. */
#define ESPGW_XSK_MAX 64
/* Capacity of the router's own addresses (map "espgw_local_addrs"). */
#define ESPGW_LOCAL_ADDR_MAX 256

/*
 * The compiled crypto ACL (ebpf/acl.h acl_walk, Rust compiler and model in
 * dataplane/src/xdp/classify.rs). Two banks, so that a new rule set goes in
 * beside the one in force and takes over with one write (espgw_cls_config):
 *
 *   1. espgw_cls_dst, an LPM trie keyed by (bank, destination): the longest
 *      destination prefix of any rule that holds the packet's destination
 *      names a node. Every rule whose destination holds the packet's is a
 *      rule whose destination prefix holds that node's, so the node stands
 *      for exactly the rules that match on the destination.
 *   2. espgw_cls_src, an LPM trie keyed by (node, source): the longest
 *      source prefix among the node's rules names a cell, the set of rules
 *      that match on both addresses.
 *   3. The cell's candidates (espgw_cls_cand[start .. start + count]), in
 *      the ACL's order with the rules that can never decide left out, are
 *      walked as IOS walks the whole list: protocol and ports; first match
 *      within a crypto map entry ("run" of consecutive rules with one
 *      sequence number); a deny line skips the rest of its run.
 *
 * Cost per packet: two LPM lookups and a walk of at most ESPGW_CLS_WALK_MAX
 * candidates, whatever the number of rules. Each bank holds half of each
 * capacity below.
 */
/* LPM entries of espgw_cls_dst (both banks): distinct destination prefixes. */
#define ESPGW_CLS_DST_MAX (1 << 17)
/* LPM entries of espgw_cls_src (both banks): cells. */
#define ESPGW_CLS_SRC_MAX (1 << 18)
/* Candidate array (both banks; bank b holds [b * MAX/2, (b + 1) * MAX/2)). */
#define ESPGW_CLS_CAND_MAX (1 << 18)
/* Candidates one cell may hold (the walk's bound). */
#define ESPGW_CLS_WALK_MAX 64

/* espgw_acl_action: a candidate's action */
enum espgw_acl_action {
	ESPGW_ACL_STEER = 1, /* "permit" in a crypto ACL: interesting, to the worker */
	ESPGW_ACL_PASS = 2,  /* "deny" in a crypto ACL: not interesting, kernel */
};

/*
 * Key of both LPM tries: prefixlen counts the bits of (tag, addr) from the
 * front, always 32 + the address prefix's length. tag is the bank (dst
 * trie) or the node (src trie), in network order; addr in network order.
 */
struct espgw_cls_key {
	__u32 prefixlen;
	__u32 tag;
	__u32 addr;
};

/* Value of espgw_cls_dst: the node (the tag of its espgw_cls_src keys). */
struct espgw_cls_dst {
	__u32 node;
};

/* Value of espgw_cls_src: where the cell's candidates are. */
struct espgw_cls_cell {
	__u32 start; /* index in espgw_cls_cand (the bank's half included) */
	__u32 count; /* 1 ..= ESPGW_CLS_WALK_MAX */
};

/*
 * One candidate (map "espgw_cls_cand"): a rule's protocol and ports (its
 * addresses matched already). proto 0 matches any protocol; port ranges
 * apply to TCP and UDP first fragments (lo 0, hi 65535 for any); a packet
 * without ports (non-first fragment, other protocols) matches a STEER
 * candidate whatever its ports, a PASS candidate only without ports.
 */
struct espgw_cls_cand {
	__u16 sport_lo;
	__u16 sport_hi;
	__u16 dport_lo;
	__u16 dport_hi;
	__u8 proto;
	__u8 action;
	__u16 pad;
	__u32 run;  /* the crypto map entry run it belongs to (unique per run) */
	__u32 rule; /* its index in the rule list (informative) */
};

/* The one entry of map "espgw_cls_config": the bank in force (0 or 1). */
struct espgw_cls_config {
	__u32 bank;
	__u32 pad;
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
