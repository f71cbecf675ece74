/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Forensic capture: packets from or to an address in the watch map go to
 * the ring buffer (struct zt_ev_capture: the verdict and the frame's first
 * bytes), at most `rate` a second per watch entry (a GCRA bucket one second
 * deep), the packets in between counted in the next record's `represents`.
 * The map is looked up only while guard_cfg.watch_count says it has
 * entries, so the pass path pays one load for it otherwise. The copy of the
 * frame is the caller's (XDP and TC read packets differently).
 */
#ifndef ZT_BPF_CAPTURE_H
#define ZT_BPF_CAPTURE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/events.h"
#include "lib/guard.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct zt_addr_key);
	__type(value, struct zt_watch_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} watch SEC(".maps");

struct zt_cap_hit {
	struct zt_watch_val *w;
	struct zt_addr_key key; /* the watched address */
	__u32 represents;
	__u8 matched; /* ZT_CAP_MATCH_* */
};

static __always_inline struct zt_watch_val *zt_watch_live(struct zt_addr_key *k, __u64 now)
{
	struct zt_watch_val *w = bpf_map_lookup_elem(&watch, k);

	if (w && w->expires_ns && w->expires_ns <= now)
		return NULL;
	return w;
}

/*
 * Whether this packet (addresses in network order, IPv4 in word 0) is to be
 * captured now. Returns 1 with *hit filled; 0 when no live watch matches or
 * its rate says not this one (counted).
 */
static __always_inline int zt_capture_want(const struct zt_guard_cfg *cfg, __u8 family,
					   const __u32 *saddr, const __u32 *daddr,
					   struct zt_cap_hit *hit)
{
	struct zt_watch_val *w;
	__u64 now;
	__u32 n;

	if (!cfg || !cfg->watch_count || (family != 4 && family != 6))
		return 0;
	now = zt_now();
	zt_addr_key_fill(&hit->key, family, saddr);
	hit->matched = ZT_CAP_MATCH_SRC;
	w = zt_watch_live(&hit->key, now);
	if (!w) {
		zt_addr_key_fill(&hit->key, family, daddr);
		hit->matched = ZT_CAP_MATCH_DST;
		w = zt_watch_live(&hit->key, now);
		if (!w)
			return 0;
	}
	n = w->pending + 1;
	if (w->rate && !zt_gcra(&w->tat, now, ZT_NS_PER_SEC / w->rate, ZT_NS_PER_SEC)) {
		w->pending = n;
		__sync_fetch_and_add(&w->sampled_out, 1);
		zt_act_stat(ZT_AS_CAPTURE_SAMPLED_OUT);
		return 0;
	}
	w->pending = 0;
	hit->w = w;
	hit->represents = n;
	return 1;
}

/* Bytes to copy: the watch's snap length, no more than the frame. */
static __always_inline __u32 zt_capture_len(const struct zt_cap_hit *hit, __u32 frame_len)
{
	__u32 snap = hit->w->snaplen;

	if (!snap || snap > ZT_CAP_SNAPLEN)
		snap = ZT_CAP_SNAPLEN;
	return frame_len < snap ? frame_len : snap;
}

/*
 * n (1 .. ZT_CAP_SNAPLEN) in a form the verifier can bound for a helper's
 * size argument: left to itself the compiler folds the two comparisons into
 * one unsigned one that loses the lower bound.
 */
static __always_inline __u32 zt_cap_bound(__u32 n)
{
	__u64 m = n - 1;

	asm volatile("%[m] &= 0x7f" : [m] "+r"(m));
	return (__u32)m + 1;
}

/* A reserved capture record with everything but the frame filled in; NULL when the ring is full. */
static __always_inline struct zt_ev_capture *zt_capture_begin(struct zt_cap_hit *hit, __u32 ifindex,
							      __u32 frame_len, __u8 point,
							      __u8 action, __u16 reason)
{
	struct zt_ev_capture *e = zt_event_begin(ZT_EV_CAPTURE, sizeof(*e));

	if (!e) {
		__sync_fetch_and_add(&hit->w->lost, 1);
		hit->w->pending += hit->represents;
		zt_act_stat(ZT_AS_CAPTURE_LOST);
		return NULL;
	}
	e->incident_id = hit->w->incident_id;
	e->ifindex = ifindex;
	e->orig_len = frame_len;
	e->represents = hit->represents;
	e->reason = reason;
	e->action = action;
	e->point = point;
	e->family = hit->key.family;
	e->matched = hit->matched;
	__builtin_memcpy(e->addr, hit->key.addr, sizeof(e->addr));
	return e;
}

static __always_inline void zt_capture_end(struct zt_cap_hit *hit, struct zt_ev_capture *e)
{
	zt_event_end(e);
	__sync_fetch_and_add(&hit->w->captured, 1);
	zt_act_stat(ZT_AS_CAPTURES);
}

#ifdef ZT_CAPTURE_SKB
#include "lib/skb.h"

/* A TC program's capture: the frame through bpf_skb_load_bytes. */
static __always_inline void zt_capture_skb(struct __sk_buff *skb, const struct zt_guard_cfg *cfg,
					   __u8 family, const __u32 *saddr, const __u32 *daddr,
					   __u8 point, __u8 action, __u16 reason)
{
	struct zt_cap_hit hit = {};
	struct zt_ev_capture *e;
	__u32 cap;

	if (!zt_capture_want(cfg, family, saddr, daddr, &hit))
		return;
	cap = zt_capture_len(&hit, skb->len);
	e = zt_capture_begin(&hit, skb->ifindex, skb->len, point, action, reason);
	if (!e)
		return;
	zt_skb_vlan_tag(skb, &e->vlan_proto, &e->vlan_tci);
	if (cap >= 1) {
		cap = zt_cap_bound(cap);
		if (bpf_skb_load_bytes(skb, 0, e->data, cap) == 0)
			e->cap_len = (__u16)cap;
	}
	zt_capture_end(&hit, e);
}
#endif

#endif /* ZT_BPF_CAPTURE_H */
