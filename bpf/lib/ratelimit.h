/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Token buckets of the XDP guard, per source and per destination, by kind
 * (every packet, TCP SYN, UDP, ICMP), as GCRA (include/ztagent.h,
 * "Activity").
 *
 * Per source, exact state for the sources already over a limit: the
 * sketch says a source has sent a limit's worth in this window (in both its
 * cells), and only then is ratelimit_src, keyed by its exact address,
 * looked up. Why not buckets in the sketch cells: a flooding source would
 * empty the buckets of every innocent source that shares its cell, and with
 * one keyed hash over tens of thousands of cells an attacker with many
 * addresses shares cells with many sources. With the exact map an innocent
 * source that happens to share both cells pays one lookup and is held to
 * its own bucket, never the flooder's. The map is an LRU: a flood from
 * more over-limit sources than it holds recycles the oldest, which then
 * restart with an empty bucket.
 *
 * Per destination, buckets in the destination's two cells (destinations
 * are the node's and its endpoints' addresses: few, and a packet must not
 * pay a hash lookup for them): a packet is dropped only when the buckets
 * of both cells are empty, so a destination that shares one cell with a
 * flooded one keeps its own rate through the other. A CPU takes tokens a
 * few at a time (guard_cfg.dst_lease), so the cells' cache lines do not move
 * between CPUs at every packet.
 */
#ifndef ZT_BPF_RATELIMIT_H
#define ZT_BPF_RATELIMIT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/guard.h"
#include "lib/sketch.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct zt_addr_key);
	__type(value, struct zt_rl_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ratelimit_src SEC(".maps");

static const struct zt_rl_state zt_rl_state_zero = {};

/*
 * The source's own buckets for the kinds in a->over. Returns the kind whose
 * bucket is empty (the drop's reason follows from it), or ZT_RL_KINDS when
 * the packet conforms.
 */
static __always_inline __u32 zt_rl_src(const struct zt_pkt *p, struct zt_act *a,
				       const struct zt_guard_cfg *cfg)
{
	__u64 now = zt_act_now(a);
	struct zt_addr_key key;
	struct zt_rl_state *st;
	__u32 k;

	zt_addr_key_fill(&key, p->family, p->saddr);
	st = bpf_map_lookup_elem(&ratelimit_src, &key);
	if (!st) {
		/*
		 * Created empty for the kinds already over: their burst is spent.
		 * Written from a zero template in .rodata and then filled in
		 * place: a struct on the stack would not fit beside the rest.
		 */
		bpf_map_update_elem(&ratelimit_src, &key, &zt_rl_state_zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&ratelimit_src, &key);
		if (!st)
			return ZT_RL_KINDS;
		if (!st->first_ns) {
			st->first_ns = now;
			for (k = 0; k < ZT_RL_KINDS; k++)
				if (a->over & (1 << k))
					st->tat[k] = now + cfg->src_burst_ns;
			zt_act_stat(ZT_AS_LIMITED_SRCS);
		}
	}
	/* Every packet first, then the protocol's bucket. */
	for (k = 0; k < ZT_RL_KINDS; k++) {
		__u64 iv;

		if (!(a->over & (1 << k)))
			continue;
		iv = cfg->src_interval_ns[k];
		if (!iv)
			continue;
		if (!zt_gcra(&st->tat[k], now, iv, cfg->src_burst_ns)) {
			__sync_fetch_and_add(&st->dropped[k], 1);
			return k;
		}
	}
	return ZT_RL_KINDS;
}

/*
 * One 32-bit GCRA bucket of a destination cell (jiffies << ZT_TAT_SHIFT),
 * charged up to n tokens at once: n when they all fit within the burst,
 * else 1. Returns the tokens charged, 0 when the bucket is empty.
 */
static __always_inline __u32 zt_gcra32(__u32 *tat, __u32 now, __u32 iv, __u32 burst, __u32 n)
{
	__u32 t = *tat;

	if ((__s32)(t - now) < 0)
		t = now;
	if (t - now > burst)
		return 0;
	if (n > 1 && (__u64)(t - now) + (__u64)(n - 1) * iv <= burst) {
		*tat = t + n * iv;
		return n;
	}
	*tat = t + iv;
	return 1;
}

/*
 * One token from a destination cell's bucket (tat) through this CPU's
 * credit: a token the CPU took earlier, or up to lease at once from the
 * bucket (zt_gcra32), the rest kept as credit. 1 when the packet conforms,
 * 0 when the bucket is empty.
 */
static __always_inline int zt_dst_take(__u32 *tat, __u8 *credit, __u32 now_t, __u32 iv, __u32 burst,
				       __u32 lease)
{
	__u32 n;

	if (*credit) {
		(*credit)--;
		return 1;
	}
	n = zt_gcra32(tat, now_t, iv, burst, lease < ZT_DST_LEASE_MAX ? lease : ZT_DST_LEASE_MAX);
	if (!n)
		return 0;
	*credit = (__u8)(n - 1);
	return 1;
}

/*
 * The destination's bucket of one kind: 1 when the packet conforms in either
 * cell (each conforming cell is charged), 0 when both are empty.
 */
static __always_inline int zt_rl_dst_kind(struct zt_dst_cell *c0, struct zt_dst_cell *c1,
					  struct zt_dst_local *l, __u32 k, __u32 now_t, __u32 iv,
					  __u32 burst, __u32 lease)
{
	int ok0, ok1;

	k &= ZT_RL_KINDS - 1;
	ok0 = zt_dst_take(&c0->tat[k], &l->credit[0][k], now_t, iv, burst, lease);
	ok1 = zt_dst_take(&c1->tat[k], &l->credit[1][k], now_t, iv, burst, lease);
	if (ok0 || ok1)
		return 1;
	/* Written once a window, not at every refused packet. */
	if (!(c0->exhausted & (1 << k)))
		c0->exhausted |= 1 << k;
	if (!(c1->exhausted & (1 << k)))
		c1->exhausted |= 1 << k;
	return 0;
}

#endif /* ZT_BPF_RATELIMIT_H */
