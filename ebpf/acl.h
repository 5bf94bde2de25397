/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compiled crypto ACL and the one lookup over it, shared by both
 * classifiers: the inside asks "does an entry protect this packet?" with the
 * packet's own tuple, the outside asks the same question of a clear packet
 * with the tuple swapped (source <-> destination, sport <-> dport), i.e. it
 * applies the ACL mirrored, as IOS does for traffic arriving on the crypto
 * map interface. Each program has its own maps; the dataplane fills both
 * with the same compiled rules (dataplane/src/xdp/mod.rs, Classifier::set_acl;
 * the structure is described in espgw_maps.h). The Rust model of this lookup
 * is CompiledAcl::lookup in dataplane/src/xdp/classify.rs, which gives the
 * answer of first_match / first_match_inbound (dataplane/src/xdp/acl.rs),
 * the IOS walk over the whole list.
 */
#ifndef ESPGW_ACL_H
#define ESPGW_ACL_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct espgw_cls_config);
} espgw_cls_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ESPGW_CLS_DST_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct espgw_cls_key);
	__type(value, struct espgw_cls_dst);
} espgw_cls_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ESPGW_CLS_SRC_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct espgw_cls_key);
	__type(value, struct espgw_cls_cell);
} espgw_cls_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ESPGW_CLS_CAND_MAX);
	__type(key, __u32);
	__type(value, struct espgw_cls_cand);
} espgw_cls_cand SEC(".maps");

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
 * its sequence number (a "run"); within an entry the first matching line
 * decides; a deny line means "not protected by this entry" and the next
 * entry decides. The two LPM lookups find the cell of rules that match on
 * both addresses; its candidates keep the list's order and runs, so walking
 * them decides as walking the whole list would. Addresses in network
 * order, ports in host order; have_ports is 0 for non-initial fragments and
 * protocols without ports.
 */
static __always_inline int acl_walk(__u32 saddr, __u32 daddr, __u8 proto, __u16 sport,
				    __u16 dport, int have_ports)
{
	struct espgw_cls_config *cfg;
	struct espgw_cls_key key;
	struct espgw_cls_dst *node;
	struct espgw_cls_cell *cell;
	int skipping = 0, denied = 0;
	__u32 skip_run = 0, start, count, zero = 0;
	__u32 i;

	cfg = bpf_map_lookup_elem(&espgw_cls_config, &zero);
	if (!cfg)
		return ESPGW_ACL_NO_MATCH;
	key.prefixlen = 64;
	key.tag = bpf_htonl(cfg->bank);
	key.addr = daddr;
	node = bpf_map_lookup_elem(&espgw_cls_dst, &key);
	if (!node)
		return ESPGW_ACL_NO_MATCH;
	key.prefixlen = 64;
	key.tag = bpf_htonl(node->node);
	key.addr = saddr;
	cell = bpf_map_lookup_elem(&espgw_cls_src, &key);
	if (!cell)
		return ESPGW_ACL_NO_MATCH;
	start = cell->start;
	count = cell->count;

	for (i = 0; i < ESPGW_CLS_WALK_MAX; i++) {
		__u32 at = start + i;
		struct espgw_cls_cand *r;

		if (i >= count)
			break;
		r = bpf_map_lookup_elem(&espgw_cls_cand, &at);
		if (!r)
			break;
		if (skipping && r->run == skip_run)
			continue;
		skipping = 0;
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
		skip_run = r->run;
	}
	return denied ? ESPGW_ACL_DENIED : ESPGW_ACL_NO_MATCH;
}

#endif
