/* SPDX-License-Identifier: Apache-2.0 */
/* Maps and helpers shared by both classifiers. */
#ifndef ESPGW_COMMON_H
#define ESPGW_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "espgw_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, ESPGW_XSK_MAX);
	__type(key, __u32);
	__type(value, __u32);
} espgw_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ESPGW_CNT_MAX);
	__type(key, __u32);
	__type(value, struct espgw_counter);
} espgw_counters SEC(".maps");

static __always_inline void count(struct xdp_md *ctx, __u32 index)
{
	struct espgw_counter *c = bpf_map_lookup_elem(&espgw_counters, &index);

	if (c) {
		c->packets += 1;
		c->bytes += ctx->data_end - ctx->data;
	}
}

static __always_inline int pass(struct xdp_md *ctx, __u32 reason)
{
	count(ctx, reason);
	return XDP_PASS;
}

/* Redirect to the AF_XDP socket of the receiving queue; without one the
 * packet is dropped (interesting traffic must not reach the kernel). */
static __always_inline int steer(struct xdp_md *ctx)
{
	__u32 queue = ctx->rx_queue_index;

	if (!bpf_map_lookup_elem(&espgw_xsks, &queue)) {
		count(ctx, ESPGW_CNT_DROP_NO_XSK);
		return XDP_DROP;
	}
	count(ctx, ESPGW_CNT_STEERED);
	return bpf_redirect_map(&espgw_xsks, queue, XDP_DROP);
}

/* The IPv4 header after an untagged Ethernet header, or NULL. */
static __always_inline struct iphdr *ipv4_header(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return NULL;
	return ip;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#endif
