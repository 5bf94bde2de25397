/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outside classifier: ESP (IP protocol 50) and ESP in UDP on 4500 (first
 * word non-zero, RFC 3948) go to the worker's AF_XDP socket; IKE on 500 and
 * on 4500 behind the zero non-ESP marker, NAT-T keepalives and ARP go to the
 * kernel. Any other IPv4 packet arrived in clear: if the crypto ACL, applied
 * mirrored (the inbound direction of its permit lines), says it must be
 * protected, it is dropped (IOS: traffic the policy says is encrypted may
 * not enter unencrypted); the rest goes to the kernel.
 */
#include "acl.h"

/* A clear packet: dropped if some crypto map entry protects its mirror. */
static __always_inline int clear_inbound(struct xdp_md *ctx, struct iphdr *ip, void *data_end,
					 __u32 not_protected)
{
	__u16 sport = 0, dport = 0;
	int have_ports = l4_ports(ip, data_end, &sport, &dport);

	/* A truncated transport header is judged like a fragment: without
	 * ports, so a permit line with ports still covers it. */
	if (have_ports < 0) {
		have_ports = 0;
		not_protected = ESPGW_CNT_PASS_MALFORMED;
	}
	if (acl_walk(ip->daddr, ip->saddr, ip->protocol, dport, sport, have_ports) ==
	    ESPGW_ACL_PERMIT) {
		count(ctx, ESPGW_CNT_DROP_CLEAR_PROTECTED);
		return XDP_DROP;
	}
	return pass(ctx, not_protected);
}

SEC("xdp")
int espgw_outside(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	struct udphdr *udp;
	__u8 *payload;

	if (!ip)
		return pass(ctx, ESPGW_CNT_PASS_NOT_IPV4);
	if (ip->version != 4 || ip->ihl < 5)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);
	if (ip->protocol == IPPROTO_ESP)
		return steer(ctx);
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)))
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);

	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_MALFORMED);
	if (udp->dest == bpf_htons(ESPGW_IKE_PORT))
		return pass(ctx, ESPGW_CNT_PASS_IKE);
	if (udp->dest != bpf_htons(ESPGW_NATT_PORT))
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);

	payload = (__u8 *)(udp + 1);
	if ((void *)(payload + 1) <= data_end && (void *)(payload + 4) > data_end &&
	    payload[0] == 0xff)
		return pass(ctx, ESPGW_CNT_PASS_NATT_KEEPALIVE);
	if ((void *)(payload + 4) > data_end)
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_MALFORMED);
	if (payload[0] == 0 && payload[1] == 0 && payload[2] == 0 && payload[3] == 0)
		return pass(ctx, ESPGW_CNT_PASS_IKE);
	return steer(ctx);
}
