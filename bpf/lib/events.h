/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ring buffer every program writes its events to, its per-CPU
 * accounting, and a sampler that keeps a flood from filling it: 1 in
 * `sample` drops is a candidate, and a per-CPU token bucket lets at most
 * `rate` candidates per second through. The drops an event stands for are
 * carried in its `represents`, so sums stay exact. A failed reserve is
 * counted and never blocks.
 */
#ifndef ZT_BPF_EVENTS_H
#define ZT_BPF_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/stats.h"

#define ZT_NS_PER_S 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* the daemon sets the size */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_EVS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_stats SEC(".maps");

/* Per-CPU sampler state (a value of a one-entry PERCPU_ARRAY). */
struct zt_sampler {
	__u64 last_ns; /* last refill */
	__u64 tokens; /* in 1e-9 events: an event costs ZT_NS_PER_S */
	__u32 since_candidate; /* drops since the last 1-in-N candidate */
	__u32 pending; /* drops since the last event: the next one's `represents` */
};

static __always_inline void zt_evstat(__u32 which)
{
	zt_u64_inc(&event_stats, which);
}

/*
 * Called once per drop. Returns how many drops the event to emit now stands
 * for, or 0 when this drop is not to be reported (counted as suppressed).
 */
static __always_inline __u32 zt_sample(struct zt_sampler *s, __u32 sample, __u32 rate)
{
	__u64 now, elapsed, cap;
	__u32 n;

	s->pending++;
	if (!rate)
		goto quiet;
	if (sample > 1) {
		if (++s->since_candidate < sample)
			goto quiet;
		s->since_candidate = 0;
	}
	now = bpf_ktime_get_boot_ns();
	elapsed = now - s->last_ns;
	/* A full bucket is one second's worth; more elapsed time adds nothing. */
	if (elapsed > ZT_NS_PER_S)
		elapsed = ZT_NS_PER_S;
	s->last_ns = now;
	cap = (__u64)rate * ZT_NS_PER_S;
	s->tokens += elapsed * rate;
	if (s->tokens > cap)
		s->tokens = cap;
	if (s->tokens < ZT_NS_PER_S)
		goto quiet;
	s->tokens -= ZT_NS_PER_S;
	n = s->pending;
	s->pending = 0;
	return n;
quiet:
	zt_evstat(ZT_EVS_SUPPRESSED);
	return 0;
}

/*
 * A record of size bytes (a struct that starts with its zt_event_hdr)
 * reserved in the ring, zeroed and its header filled in: the caller fills
 * the rest and hands it to zt_event_end. NULL, counted, when the ring is
 * full; nothing waits. Ring memory is reused: the zeroing keeps stale
 * bytes (tail padding too) from going out. size is a constant at every
 * caller, as the verifier wants it for the reserve.
 */
static __always_inline void *zt_event_begin(__u16 type, __u32 size)
{
	struct zt_event_hdr *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		zt_evstat(ZT_EVS_RESERVE_FAILED);
		return NULL;
	}
	__builtin_memset(h, 0, size);
	h->type = type;
	h->len = (__u16)size;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = bpf_ktime_get_boot_ns();
	return h;
}

/* Sends a record zt_event_begin gave. */
static __always_inline void zt_event_end(void *e)
{
	bpf_ringbuf_submit(e, 0);
	zt_evstat(ZT_EVS_EMITTED);
}

#endif /* ZT_BPF_EVENTS_H */
