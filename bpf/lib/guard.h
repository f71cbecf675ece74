/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every program of the activity stage shares (include/ztagent.h,
 * "Activity"): the settings the daemon writes (guard_cfg), the per-CPU
 * counters (act_stats), a per-CPU rate limit for the events of the stage,
 * and the coarse clock.
 */
#ifndef ZT_BPF_GUARD_H
#define ZT_BPF_GUARD_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_guard_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_AS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} act_stats SEC(".maps");

/* Per-CPU token buckets of the stage's events, by enum zt_act_rate. */
enum zt_act_rate {
	ZT_AR_PROBE = 0, /* probe and probe-result events */
	ZT_AR_SIGNAL, /* activity events */
	ZT_AR_STRAY, /* tc_uplink's strays: a flood of them never costs a probe its answer */
	ZT_AR_SESSION, /* session ends (ZT_EV_SESSION, ZT_EV_HOST_SESSION), at probe_rate too */
	ZT_AR_MAX,
};

struct zt_act_bucket {
	__u64 tat; /* GCRA, CLOCK_MONOTONIC ns */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_AR_MAX);
	__type(key, __u32);
	__type(value, struct zt_act_bucket);
} act_rate SEC(".maps");

#define ZT_NS_PER_SEC 1000000000ULL

static __always_inline struct zt_guard_cfg *zt_guard_cfg_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&guard_cfg, &zero);
}

static __always_inline void zt_act_stat(__u32 which)
{
	zt_u64_inc(&act_stats, which);
}

/* CLOCK_MONOTONIC at jiffy resolution: no clock-source read on the packet path. */
static __always_inline __u64 zt_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/*
 * A GCRA bucket (a token bucket kept as one time): conforming when tat is
 * no further than burst ahead of now; then tat moves one interval on.
 */
static __always_inline int zt_gcra(__u64 *tat, __u64 now, __u64 interval, __u64 burst)
{
	__u64 t = *tat;

	if (t < now)
		t = now;
	if (t - now > burst)
		return 0;
	*tat = t + interval;
	return 1;
}

/* 1 when an event of this kind may go out now (at most `rate` a second on this CPU). */
static __always_inline int zt_act_rate_ok(__u32 which, __u32 rate, __u64 now)
{
	struct zt_act_bucket *b;

	if (!rate)
		goto quiet;
	b = bpf_map_lookup_elem(&act_rate, &which);
	if (b && zt_gcra(&b->tat, now, ZT_NS_PER_SEC / rate, ZT_NS_PER_SEC))
		return 1;
quiet:
	zt_act_stat(ZT_AS_SUPPRESSED);
	return 0;
}

/* The key of an address in the maps keyed by one address. */
static __always_inline void zt_addr_key_fill(struct zt_addr_key *k, __u8 family, const __u32 *a)
{
	k->family = family;
	k->_pad[0] = k->_pad[1] = k->_pad[2] = 0;
	if (family == 4) {
		__u32 w[4] = { a[0], 0, 0, 0 };

		__builtin_memcpy(k->addr, w, 16);
	} else {
		__builtin_memcpy(k->addr, a, 16);
	}
}

#endif /* ZT_BPF_GUARD_H */
