/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Outside classifier. Packets addressed to one of the router's own
 * addresses (map espgw_local_addrs): ESP (IP protocol 50) and ESP in UDP on
 * 4500 (first word non-zero, RFC 3948) go to the worker's AF_XDP socket;
 * IKE on 500 and on 4500 behind the zero non-ESP marker and NAT-T
 * keepalives go to the kernel. Every other IPv4 packet, including ESP, IKE
 * and keepalives addressed to anyone else, arrived in clear: if the crypto
 * ACL, applied mirrored (the inbound direction of its permit lines), says it
 * must be protected, it is dropped (IOS: traffic the policy says is
 * encrypted may not enter unencrypted); the rest goes to the kernel. ARP
 * and other non-IPv4 frames go to the kernel. The Rust model of the whole
 * decision is classify_outside in dataplane/src/xdp/acl.rs.
 */
#include "acl.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ESPGW_LOCAL_ADDR_MAX);
	__type(key, __u32);
	__type(value, struct espgw_local_addr);
} espgw_local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct espgw_clear_sample);
} espgw_clear_sample SEC(".maps");

/* Keeps the dropped packet's addresses and protocol for the log. */
static __always_inline void sample_clear_drop(struct iphdr *ip)
{
	__u32 zero = 0;
	struct espgw_clear_sample *s = bpf_map_lookup_elem(&espgw_clear_sample, &zero);

	if (s) {
		s->saddr = ip->saddr;
		s->daddr = ip->daddr;
		s->proto = ip->protocol;
		s->drops += 1;
	}
}

/* Whether the packet is addressed to the router itself. An empty map (no
 * address known) exempts nothing: fail closed. */
static __always_inline int for_us(struct iphdr *ip)
{
	__u32 daddr = ip->daddr;

	return bpf_map_lookup_elem(&espgw_local_addrs, &daddr) != NULL;
}

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
		sample_clear_drop(ip);
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
	if (ip->protocol == IPPROTO_ESP) {
		if (for_us(ip))
			return steer(ctx);
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);
	}
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)))
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);

	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_MALFORMED);
	if (udp->dest != bpf_htons(ESPGW_IKE_PORT) && udp->dest != bpf_htons(ESPGW_NATT_PORT))
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);
	/* IKE, NAT-T and ESP in UDP for someone else: clear traffic. */
	if (!for_us(ip))
		return clear_inbound(ctx, ip, data_end, ESPGW_CNT_PASS_OTHER);
	if (udp->dest == bpf_htons(ESPGW_IKE_PORT))
		return pass(ctx, ESPGW_CNT_PASS_IKE);

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
