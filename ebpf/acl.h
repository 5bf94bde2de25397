/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The crypto-ACL rules and the one walk over them, shared by both
 * classifiers: the inside asks "does an entry protect this packet?" with the
 * packet's own tuple, the outside asks the same question of a clear packet
 * with the tuple swapped (source <-> destination, sport <-> dport), i.e. it
 * applies the ACL mirrored, as IOS does for traffic arriving on the crypto
 * map interface. Each program has its own espgw_acl map; the dataplane fills
 * both with the same rules (dataplane/src/xdp/mod.rs, Classifier::set_acl).
 * The Rust model of this walk is first_match / first_match_inbound in
 * dataplane/src/xdp/acl.rs.
 */
#ifndef ESPGW_ACL_H
#define ESPGW_ACL_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ESPGW_ACL_MAX);
	__type(key, __u32);
	__type(value, struct espgw_acl_rule);
} espgw_acl SEC(".maps");

/* What the walk concluded. */
enum espgw_acl_verdict {
	ESPGW_ACL_NO_MATCH = 0, /* no rule matched: not protected */
	ESPGW_ACL_PERMIT = 1,   /* an entry's permit line matched: protected */
	ESPGW_ACL_DENIED = 2,   /* only deny lines matched: not protected */
};

/*
 * The ports of a TCP or UDP first fragment (or unfragmented packet), in
 * host order. Returns 1 with ports, 0 without (other protocols, non-initial
 * fragments), -1 if the transport header is truncated.
 */
static __always_inline int l4_ports(struct iphdr *ip, void *data_end, __u16 *sport,
				    __u16 *dport)
{
	__u16 *l4;

	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	l4 = (void *)ip + ip->ihl * 4;
	if ((void *)(l4 + 2) > data_end)
		return -1;
	*sport = bpf_ntohs(l4[0]);
	*dport = bpf_ntohs(l4[1]);
	return 1;
}

/*
 * IOS semantics: rules of one crypto map entry are consecutive and share
 * `policy`; within an entry the first matching line decides; a deny line
 * means "not protected by this entry" and the next entry (the next run of
 * rules with another policy number) decides. Addresses in network order,
 * ports in host order; have_ports is 0 for non-initial fragments and
 * protocols without ports.
 */
static __always_inline int acl_walk(__u32 saddr, __u32 daddr, __u8 proto, __u16 sport,
				    __u16 dport, int have_ports)
{
	int skipping = 0, denied = 0;
	__u16 skip_policy = 0;
	__u32 i;

	for (i = 0; i < ESPGW_ACL_MAX; i++) {
		__u32 key = i;
		struct espgw_acl_rule *r = bpf_map_lookup_elem(&espgw_acl, &key);

		if (!r || r->action == ESPGW_ACL_END)
			break;
		if (skipping && r->policy == skip_policy)
			continue;
		skipping = 0;
		if ((saddr & r->src_mask) != r->src_addr)
			continue;
		if ((daddr & r->dst_mask) != r->dst_addr)
			continue;
		if (r->proto && r->proto != proto)
			continue;
		if (have_ports &&
		    (sport < r->sport_lo || sport > r->sport_hi ||
		     dport < r->dport_lo || dport > r->dport_hi))
			continue;
		/*
		 * A non-initial fragment carries no ports: a permit line with
		 * ports still matches it (interesting fragments never leak), a
		 * deny line with ports does not (IOS ACL rule).
		 */
		if (!have_ports && r->action == ESPGW_ACL_PASS &&
		    (r->sport_lo != 0 || r->sport_hi != 0xffff ||
		     r->dport_lo != 0 || r->dport_hi != 0xffff))
			continue;
		if (r->action == ESPGW_ACL_STEER)
			return ESPGW_ACL_PERMIT;
		denied = 1;
		skipping = 1;
		skip_policy = r->policy;
	}
	return denied ? ESPGW_ACL_DENIED : ESPGW_ACL_NO_MATCH;
}

#endif
