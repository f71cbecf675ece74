// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor for tools/bench_xdp_live.sh: an XDP program that passes every
 * packet, attached in the same mode as the guard, so the cost of the XDP
 * mode itself (on a veth: NAPI, no GSO from the peer) shows apart from the
 * guard's own work.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
