/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside classifier: IPv4 packets that a crypto map's ACL calls interesting
 * go to the worker's AF_XDP socket; everything else to the kernel.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ESPGW_ACL_MAX);
	__type(key, __u32);
	__type(value, struct espgw_acl_rule);
} espgw_acl SEC(".maps");

SEC("xdp")
int espgw_inside(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u16 sport = 0, dport = 0;
	int have_ports = 0, skipping = 0, denied = 0;
	__u16 skip_policy = 0;
	__u32 i;

	if (!ip)
		return pass(ctx, ESPGW_CNT_PASS_NOT_IPV4);
	if (ip->version != 4 || ip->ihl < 5)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);

	/* Ports of the first fragment (or unfragmented packet). */
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    (ip->frag_off & bpf_htons(0x1fff)) == 0) {
		__u16 *l4 = (void *)ip + ip->ihl * 4;

		if ((void *)(l4 + 2) > data_end)
			return pass(ctx, ESPGW_CNT_PASS_MALFORMED);
		sport = bpf_ntohs(l4[0]);
		dport = bpf_ntohs(l4[1]);
		have_ports = 1;
	}

	/*
	 * IOS semantics: a crypto map entry's ACL is first-match; a deny line
	 * means "not protected by this entry" and the next entry (the next run
	 * of rules with another policy number) decides. Traffic no entry
	 * permits goes to the kernel.
	 */
	for (i = 0; i < ESPGW_ACL_MAX; i++) {
		__u32 key = i;
		struct espgw_acl_rule *r = bpf_map_lookup_elem(&espgw_acl, &key);

		if (!r || r->action == ESPGW_ACL_END)
			break;
		if (skipping && r->policy == skip_policy)
			continue;
		skipping = 0;
		if ((ip->saddr & r->src_mask) != r->src_addr)
			continue;
		if ((ip->daddr & r->dst_mask) != r->dst_addr)
			continue;
		if (r->proto && r->proto != ip->protocol)
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
			return steer(ctx);
		denied = 1;
		skipping = 1;
		skip_policy = r->policy;
	}
	return pass(ctx, denied ? ESPGW_CNT_PASS_ACL_DENY : ESPGW_CNT_PASS_NO_MATCH);
}
