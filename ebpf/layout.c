/* SPDX-License-Identifier: Apache-2.0 */
/* Host-side probe run by dataplane/build.rs: prints the layouts of
 * espgw_maps.h as Rust constants so a test can check the #[repr(C)] mirrors. */
#include <stddef.h>
#include <stdio.h>
#include "espgw_maps.h"

#define OFF(t, f) printf("pub const %s_%s: usize = %zu;\n", #t, #f, offsetof(struct t, f))

int main(void)
{
	printf("pub const espgw_cls_key_SIZE: usize = %zu;\n", sizeof(struct espgw_cls_key));
	OFF(espgw_cls_key, prefixlen);
	OFF(espgw_cls_key, tag);
	OFF(espgw_cls_key, addr);
	printf("pub const espgw_cls_dst_SIZE: usize = %zu;\n", sizeof(struct espgw_cls_dst));
	OFF(espgw_cls_dst, node);
	printf("pub const espgw_cls_cell_SIZE: usize = %zu;\n", sizeof(struct espgw_cls_cell));
	OFF(espgw_cls_cell, start);
	OFF(espgw_cls_cell, count);
	printf("pub const espgw_cls_cand_SIZE: usize = %zu;\n", sizeof(struct espgw_cls_cand));
	OFF(espgw_cls_cand, sport_lo);
	OFF(espgw_cls_cand, sport_hi);
	OFF(espgw_cls_cand, dport_lo);
	OFF(espgw_cls_cand, dport_hi);
	OFF(espgw_cls_cand, proto);
	OFF(espgw_cls_cand, action);
	OFF(espgw_cls_cand, pad);
	OFF(espgw_cls_cand, run);
	OFF(espgw_cls_cand, rule);
	printf("pub const espgw_cls_config_SIZE: usize = %zu;\n", sizeof(struct espgw_cls_config));
	OFF(espgw_cls_config, bank);
	OFF(espgw_cls_config, pad);
	printf("pub const ESPGW_CLS_DST_MAX: u32 = %d;\n", ESPGW_CLS_DST_MAX);
	printf("pub const ESPGW_CLS_SRC_MAX: u32 = %d;\n", ESPGW_CLS_SRC_MAX);
	printf("pub const ESPGW_CLS_CAND_MAX: u32 = %d;\n", ESPGW_CLS_CAND_MAX);
	printf("pub const ESPGW_CLS_WALK_MAX: u32 = %d;\n", ESPGW_CLS_WALK_MAX);
	printf("pub const espgw_counter_SIZE: usize = %zu;\n", sizeof(struct espgw_counter));
	OFF(espgw_counter, packets);
	OFF(espgw_counter, bytes);
	printf("pub const espgw_local_addr_SIZE: usize = %zu;\n", sizeof(struct espgw_local_addr));
	OFF(espgw_local_addr, ifindex);
	printf("pub const espgw_clear_sample_SIZE: usize = %zu;\n", sizeof(struct espgw_clear_sample));
	OFF(espgw_clear_sample, drops);
	OFF(espgw_clear_sample, saddr);
	OFF(espgw_clear_sample, daddr);
	OFF(espgw_clear_sample, proto);
	OFF(espgw_clear_sample, pad);
	printf("pub const ESPGW_LOCAL_ADDR_MAX: u32 = %d;\n", ESPGW_LOCAL_ADDR_MAX);
	printf("pub const ESPGW_ACL_MAX: u32 = %d;\n", ESPGW_ACL_MAX);
	printf("pub const ESPGW_XSK_MAX: u32 = %d;\n", ESPGW_XSK_MAX);
	printf("pub const ESPGW_ACL_STEER: u8 = %d;\n", ESPGW_ACL_STEER);
	printf("pub const ESPGW_ACL_PASS: u8 = %d;\n", ESPGW_ACL_PASS);
	printf("pub const ESPGW_CNT: [(&str, u32); %d] = [\n", ESPGW_CNT_MAX + 1);
#define C(n) printf("    (\"%s\", %d),\n", #n, n)
	C(ESPGW_CNT_STEERED);
	C(ESPGW_CNT_PASS_NOT_IPV4);
	C(ESPGW_CNT_PASS_NO_MATCH);
	C(ESPGW_CNT_PASS_ACL_DENY);
	C(ESPGW_CNT_PASS_IKE);
	C(ESPGW_CNT_PASS_NATT_KEEPALIVE);
	C(ESPGW_CNT_PASS_OTHER);
	C(ESPGW_CNT_PASS_MALFORMED);
	C(ESPGW_CNT_DROP_NO_XSK);
	C(ESPGW_CNT_DROP_CLEAR_PROTECTED);
	C(ESPGW_CNT_MAX);
	printf("];\n");
	return 0;
}
