/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outside classifier: ESP (IP protocol 50) and ESP in UDP on 4500 (first
 * word non-zero, RFC 3948) go to the worker's AF_XDP socket; IKE on 500 and
 * on 4500 behind the zero non-ESP marker, NAT-T keepalives, ARP and the rest
 * go to the kernel.
 */
#include "common.h"

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
	if (ip->protocol != IPPROTO_UDP)
		return pass(ctx, ESPGW_CNT_PASS_OTHER);
	if (ip->frag_off & bpf_htons(0x1fff))
		return pass(ctx, ESPGW_CNT_PASS_OTHER);

	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);
	if (udp->dest == bpf_htons(ESPGW_IKE_PORT))
		return pass(ctx, ESPGW_CNT_PASS_IKE);
	if (udp->dest != bpf_htons(ESPGW_NATT_PORT))
		return pass(ctx, ESPGW_CNT_PASS_OTHER);

	payload = (__u8 *)(udp + 1);
	if ((void *)(payload + 1) <= data_end && (void *)(payload + 4) > data_end &&
	    payload[0] == 0xff)
		return pass(ctx, ESPGW_CNT_PASS_NATT_KEEPALIVE);
	if ((void *)(payload + 4) > data_end)
		return pass(ctx, ESPGW_CNT_PASS_MALFORMED);
	if (payload[0] == 0 && payload[1] == 0 && payload[2] == 0 && payload[3] == 0)
		return pass(ctx, ESPGW_CNT_PASS_IKE);
	return steer(ctx);
}
