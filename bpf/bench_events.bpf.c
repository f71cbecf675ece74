// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The producer of tools/bench/bench_events: writes XDP-drop records into a
 * ring buffer as fast as the kernel can, from a BPF_PROG_TYPE_SYSCALL
 * program run with BPF_PROG_TEST_RUN (bpf_loop, kernel 5.17+). Bench only:
 * the agent never loads it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* set by the bench before load */
} ring SEC(".maps");

struct bench_args {
	__u32 n; /* records to write */
	__u32 sources; /* distinct source addresses, a power of two */
	__u64 made;
	__u64 lost; /* reserve failed: the ring was full */
};

static long emit(__u32 i, void *ctx)
{
	struct bench_args *a = ctx;
	struct zt_ev_xdp_drop *e = bpf_ringbuf_reserve(&ring, sizeof(*e), 0);
	__u32 s = i & (a->sources - 1);

	if (!e) {
		a->lost++;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = ZT_EV_XDP_DROP;
	e->hdr.len = sizeof(*e);
	e->hdr.ts_ns = bpf_ktime_get_boot_ns();
	e->ifindex = 1;
	e->reason = ZT_XR_BLOCKLIST;
	e->family = 4;
	e->proto = 17;
	e->saddr[0] = 198;
	e->saddr[1] = 18;
	e->saddr[2] = (__u8)(s >> 8);
	e->saddr[3] = (__u8)s;
	e->daddr[0] = 198;
	e->daddr[1] = 18;
	e->daddr[3] = 2;
	e->dport = 53;
	e->pkt_len = 64;
	e->represents = 1;
	bpf_ringbuf_submit(e, 0);
	a->made++;
	return 0;
}

SEC("syscall")
int produce(struct bench_args *ctx)
{
	struct bench_args a = {};

	a.n = ctx->n;
	a.sources = ctx->sources ? ctx->sources : 1;
	bpf_loop(a.n, emit, &a, 0);
	ctx->made = a.made;
	ctx->lost = a.lost;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
