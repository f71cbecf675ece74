/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters. A per-CPU array needs no atomics: each CPU owns its
 * slot, and the daemon sums over CPUs when it reads.
 */
#ifndef ZT_BPF_STATS_H
#define ZT_BPF_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"

/* Adds one packet of `bytes` to slot `slot` of a PERCPU_ARRAY of struct zt_counter. */
static __always_inline void zt_counter_add(void *map, __u32 slot, __u64 bytes)
{
	struct zt_counter *c = bpf_map_lookup_elem(map, &slot);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Adds one to slot `slot` of a PERCPU_ARRAY of __u64. */
static __always_inline void zt_u64_inc(void *map, __u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(map, &slot);

	if (v)
		(*v)++;
}

#endif /* ZT_BPF_STATS_H */
