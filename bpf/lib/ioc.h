/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Threat-intelligence destinations on a pod's new flows (see
 * include/ztagent.h, "Threat-intelligence destinations"): the host map of
 * the destination's family (one hashed lookup), then the prefix trie only
 * while it has entries. Called where tc_endpoint decides a new flow (and
 * re-decides one after a policy change), only for the pod's egress: the
 * rest of the packet path never looks.
 */
#ifndef ZT_BPF_IOC_H
#define ZT_BPF_IOC_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/events.h"
#include "lib/stats.h"

/* Sizes are placeholders: the daemon sets them before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip4_key);
	__type(value, struct zt_ioc_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_host_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip6_key);
	__type(value, struct zt_ioc_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_host_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip4_key);
	__type(value, struct zt_ioc_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_lpm_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip6_key);
	__type(value, struct zt_ioc_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_lpm_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_ioc_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_IOCS_MAX);
	__type(key, __u32);
	__type(value, struct zt_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ioc_stats SEC(".maps");

/* The IOC entry holding daddr (family 4 or 6), or NULL. */
static __always_inline const struct zt_ioc_val *zt_ioc_lookup(__u8 family, const __u8 *daddr)
{
	const struct zt_ioc_state *st;
	const struct zt_ioc_val *v = NULL;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&ioc_state, &zero);
	if (!st)
		return NULL;
	if (family == 4) {
		struct zt_ip4_key k = { .prefixlen = 32 };

		if (!st->host_v4_used && !st->lpm_v4_used)
			return NULL;
		__builtin_memcpy(k.addr, daddr, 4);
		if (st->host_v4_used)
			v = bpf_map_lookup_elem(&ioc_host_v4, &k);
		if (!v && st->lpm_v4_used)
			v = bpf_map_lookup_elem(&ioc_lpm_v4, &k);
		return v;
	}
	{
		struct zt_ip6_key k = { .prefixlen = 128 };

		if (!st->host_v6_used && !st->lpm_v6_used)
			return NULL;
		__builtin_memcpy(k.addr, daddr, 16);
		if (st->host_v6_used)
			v = bpf_map_lookup_elem(&ioc_host_v6, &k);
		if (!v && st->lpm_v6_used)
			v = bpf_map_lookup_elem(&ioc_lpm_v6, &k);
		return v;
	}
}

/* Counts a new flow that met an IOC and reports it (a failed reserve is counted, never waits). */
static __always_inline void zt_ioc_emit(const struct zt_ct_key *k, const struct zt_ct_val *v,
					const struct zt_ioc_val *iv, __u8 tcp_flags, __u32 len)
{
	struct zt_ev_ioc *e;
	__u8 blocked = iv->action == ZT_IOC_BLOCK;

	zt_counter_add(&ioc_stats, blocked ? ZT_IOCS_BLOCKED : ZT_IOCS_ALERTED, len);
	e = zt_event_begin(ZT_EV_IOC, sizeof(*e));
	if (!e)
		return;
	e->ifindex = k->ifindex;
	e->ep_id = v->ep_id;
	e->local_id = v->local_id;
	e->feed_id = iv->feed_id;
	e->prefixlen = iv->prefixlen;
	e->ioc_port = iv->port;
	e->action = iv->action;
	e->dropped = blocked;
	e->family = k->family;
	e->proto = k->proto;
	e->tcp_flags = tcp_flags;
	e->sport = k->sport;
	e->dport = k->dport;
	__builtin_memcpy(e->saddr, k->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, k->daddr, sizeof(e->daddr));
	zt_event_end(e);
}

#define ZT_IOC_EMIT 0x100 /* zt_ioc_judge flags: report a match (a new flow) */

/*
 * The IOC verdict on flow k (its original direction), whose policy verdict
 * is in v: only a pod's egress (flags & 0xff == ZT_DIR_EGRESS) is looked at.
 * An entry with a port matches flows to that port only (so never a flow
 * without ports). Action block denies the flow whatever the policy said,
 * audit mode included. With ZT_IOC_EMIT a match is counted and reported.
 * Returns 1 on a match. A function of its own (verified once, with its own
 * stack frame), so the caller's frame does not grow by its keys.
 */
__noinline int zt_ioc_judge(const struct zt_ct_key *k, struct zt_ct_val *v, __u32 flags,
			    __u32 tcp_flags, __u32 len)
{
	const struct zt_ioc_val *iv;

	if (!k || !v || (flags & 0xff) != ZT_DIR_EGRESS)
		return 0;
	iv = zt_ioc_lookup(k->family, k->daddr);
	if (!iv)
		return 0;
	if (iv->port && (zt_proto_is_icmp(k->proto) || iv->port != k->dport))
		return 0;
	if (iv->action == ZT_IOC_BLOCK) {
		v->verdict = ZT_VERDICT_DENY;
		v->reason = ZT_REASON_IOC;
		v->audit = 0;
		v->rule_id = ZT_RULE_NONE;
	}
	if (flags & ZT_IOC_EMIT)
		zt_ioc_emit(k, v, iv, (__u8)tcp_flags, len);
	return 1;
}

#endif /* ZT_BPF_IOC_H */
