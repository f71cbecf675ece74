// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_guard runs on the node's uplinks. It drops packets whose source is on
 * the blocklist and not on the allowlist, malformed packets (or passes
 * them, per cfg_malformed_drop), and passes everything else. Whenever the
 * source address was read, malformed or not, the lists decide first: a
 * malformed packet from a blocked source is a blocklist drop, never a
 * malformed pass; the malformed verdict applies to the rest. Every packet
 * is counted once under an (action, reason) pair; drops are sampled to the
 * ring buffer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/blocklist.h"
#include "lib/events.h"
#include "lib/stats.h"

/* Fixed at load by the daemon (skel->rodata). */
const volatile __u32 cfg_malformed_drop = 1;
const volatile __u32 cfg_event_sample = ZT_DEFAULT_EVENT_SAMPLE;
const volatile __u32 cfg_event_rate = ZT_DEFAULT_EVENT_RATE;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_XDP_STATS_SLOTS);
	__type(key, __u32);
	__type(value, struct zt_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_sampler);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_sampler SEC(".maps");

static __always_inline void emit_drop(struct xdp_md *ctx, const struct zt_pkt *p, __u32 reason,
				      const struct zt_block_entry *hit, __u32 len)
{
	struct zt_ev_xdp_drop *e;
	struct zt_sampler *s;
	__u32 zero = 0, n;

	s = bpf_map_lookup_elem(&event_sampler, &zero);
	if (!s)
		return;
	n = zt_sample(s, cfg_event_sample, cfg_event_rate);
	if (!n)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		zt_sample_lost(s, n);
		return;
	}
	/* Ring memory is reused: zero it so no stale bytes (tail padding) go out. */
	__builtin_memset(e, 0, sizeof(*e));
	zt_event_hdr_fill(&e->hdr, ZT_EV_XDP_DROP, sizeof(*e));
	e->ifindex = ctx->ingress_ifindex;
	e->reason = reason;
	e->family = p->family;
	e->proto = p->proto;
	__builtin_memcpy(e->saddr, p->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, p->daddr, sizeof(e->daddr));
	e->sport = p->sport;
	e->dport = p->dport;
	e->pkt_len = len;
	e->represents = n;
	if (hit) {
		e->block_reason = hit->reason;
		e->block_source = hit->source;
		e->feed_id = hit->feed_id;
	}
	bpf_ringbuf_submit(e, 0);
	zt_evstat(ZT_EVS_EMITTED);
}

/*
 * A global (non-inlined) function is verified once, on its own: the many
 * paths through the header walk then do not multiply the paths through the
 * list lookups, which keeps the verifier well inside its limits on older
 * kernels (pointer arguments to global functions need 5.12+).
 */
__noinline int xdp_guard_parse(struct xdp_md *ctx, struct zt_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (!p)
		return ZT_XR_BAD_ETH;
	return zt_parse(data, data_end, p);
}

SEC("xdp")
int xdp_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct zt_block_entry *hit = NULL;
	__u32 len = data_end - data;
	struct zt_pkt p = {};
	__u32 action, reason, lists = ZT_XR_OK;

	reason = xdp_guard_parse(ctx, &p);
	/* family is set once the source is known, also in a malformed packet. */
	if (p.family)
		lists = zt_blocklist_check(&p, &hit);
	if (lists == ZT_XR_BLOCKLIST) {
		reason = ZT_XR_BLOCKLIST;
		action = ZT_ACT_DROP;
	} else if (reason == ZT_XR_OK) {
		reason = lists;
		action = ZT_ACT_PASS;
	} else if (reason == ZT_XR_NOT_IP) {
		action = ZT_ACT_PASS;
	} else {
		action = cfg_malformed_drop ? ZT_ACT_DROP : ZT_ACT_PASS;
	}
	zt_counter_add(&xdp_stats, action * ZT_XR_MAX + reason, len);
	if (action == ZT_ACT_PASS)
		return XDP_PASS;
	emit_drop(ctx, &p, reason, hit, len);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
