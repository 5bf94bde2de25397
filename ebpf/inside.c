/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside classifier: IPv4 packets that a crypto map's ACL calls interesting
 * go to the worker's AF_XDP socket; everything else to the kernel.
 */
#include "acl.h"

SEC("xdp")
int espgw_inside(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u16 sport = 0, dport = 0;
	int have_ports;

	if (!ip)
		return pass(ctx, ESPGW_CNT_PASS_NOT_IPV4);
	if (ip->version != 4 || ip->ihl < 5)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);
	have_ports = l4_ports(ip, data_end, &sport, &dport);
	if (have_ports < 0)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);

	/* Traffic no entry permits goes to the kernel. */
	switch (acl_walk(ip->saddr, ip->daddr, ip->protocol, sport, dport, have_ports)) {
	case ESPGW_ACL_PERMIT:
		return steer(ctx);
	case ESPGW_ACL_DENIED:
		return pass(ctx, ESPGW_CNT_PASS_ACL_DENY);
	default:
		return pass(ctx, ESPGW_CNT_PASS_NO_MATCH);
	}
}
