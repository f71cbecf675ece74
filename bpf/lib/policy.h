/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Policy maps of tc_endpoint and the verdict of one flow under one policy
 * generation (layout and combination rules: include/ztagent.h,
 * "Micro-segmentation").
 */
#ifndef ZT_BPF_POLICY_H
#define ZT_BPF_POLICY_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"

#ifndef READ_ONCE
#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex of the host-side veth */
	__type(value, struct zt_endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 131072); /* both slots; the daemon sets the size */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_ipcache_key4);
	__type(value, struct zt_ipcache_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipcache_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 131072);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_ipcache_key6);
	__type(value, struct zt_ipcache_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipcache_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 20); /* the daemon may resize */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_pol_key);
	__type(value, struct zt_pol_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct zt_iso_key);
	__type(value, struct zt_iso_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pol_isolation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct zt_pol_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pol_state SEC(".maps");

/* One flow's question to the policy, and the answer. */
struct zt_pol_query {
	/* in */
	__u8 peer[16]; /* the peer's address (IPv4 in the first 4 bytes) */
	__u32 gen; /* 0: no policy, deny */
	__u32 local_id;
	__u16 port; /* destination port of the original direction; ICMP: 0 */
	__u8 dir; /* enum zt_dir */
	__u8 family;
	__u8 proto;
	/* out */
	__u8 verdict; /* ALLOW or DENY */
	__u8 audit;
	__u8 reason;
	__u32 rule_id;
	__u32 peer_id;
	__u32 peer_ep_id;
	__u8 flags; /* ZT_POL_F_* of the enforce allow rules that allowed (mTLS requirements) */
};

/* One verdict kind (enforce or audit) before isolation is applied. */
struct zt_pol_half {
	__u32 rule_id;
	__u8 verdict;
	__u8 reason;
};

/* Verdicts of the lookups so far, one verdict kind. */
struct zt_pol_acc {
	__u32 deny_rule, allow_rule;
	__u8 deny, allow;
};

/* The lowest non-zero rule id: "the first rule"; 0 (the host's entry) only when alone. */
static __always_inline __u32 zt_pol_pick(__u32 a, __u32 b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

static __always_inline void zt_pol_acc_add(struct zt_pol_acc *a, __u8 v, __u32 rule)
{
	if (v == ZT_VERDICT_DENY) {
		a->deny_rule = a->deny ? zt_pol_pick(a->deny_rule, rule) : rule;
		a->deny = 1;
	} else if (v == ZT_VERDICT_ALLOW) {
		a->allow_rule = a->allow ? zt_pol_pick(a->allow_rule, rule) : rule;
		a->allow = 1;
	}
}

/* Deny of any lookup wins, then allow; with neither, isolation decides. */
static __always_inline void zt_pol_combine(struct zt_pol_half *h, const struct zt_pol_acc *a,
					   __u8 isolated, __u8 by_default, __u32 iso_rule)
{
	if (a->deny) {
		h->verdict = ZT_VERDICT_DENY;
		h->reason = ZT_REASON_RULE_DENY;
		h->rule_id = a->deny_rule;
	} else if (a->allow) {
		h->verdict = ZT_VERDICT_ALLOW;
		h->reason = ZT_REASON_RULE_ALLOW;
		h->rule_id = a->allow_rule;
	} else if (isolated) {
		h->verdict = ZT_VERDICT_DENY;
		h->reason = by_default ? ZT_REASON_DEFAULT_DENY : ZT_REASON_NO_RULE;
		h->rule_id = iso_rule;
	} else {
		h->verdict = ZT_VERDICT_ALLOW;
		h->reason = ZT_REASON_NOT_ISOLATED;
		h->rule_id = ZT_RULE_NONE;
	}
}

/* The peer identities a flow is looked up under (ztagent.h, "ZT_PIN_POLICY"). */
#define ZT_POL_LOOKUPS 4

/*
 * A global function: verified once on its own, not once per path of the
 * caller (pointer arguments of global functions need 5.12+).
 */
__noinline int zt_pol_eval(struct zt_pol_query *q)
{
	struct zt_ipcache_val *ic = NULL;
	struct zt_pol_acc enf_acc = {}, aud_acc = {};
	__u32 peers[ZT_POL_LOOKUPS];
	struct zt_pol_half enf, aud;
	struct zt_iso_val *iso;
	struct zt_iso_key ik = {};
	struct zt_pol_key pk;
	__u8 slot;

	if (!q)
		return -1;
	q->audit = 0;
	q->flags = 0;
	q->peer_ep_id = 0;
	q->peer_id = q->family == 6 ? ZT_ID_WORLD_V6 : ZT_ID_WORLD_V4;
	if (!q->gen) {
		q->verdict = ZT_VERDICT_DENY;
		q->reason = ZT_REASON_NO_POLICY;
		q->rule_id = ZT_RULE_NONE;
		return 0;
	}
	slot = q->gen & 1;

	if (q->family == 4) {
		struct zt_ipcache_key4 k = {};

		k.prefixlen = 8 + 32;
		k.slot = slot;
		__builtin_memcpy(k.addr, q->peer, 4);
		ic = bpf_map_lookup_elem(&ipcache_v4, &k);
	} else {
		struct zt_ipcache_key6 k = {};

		k.prefixlen = 8 + 128;
		k.slot = slot;
		__builtin_memcpy(k.addr, q->peer, 16);
		ic = bpf_map_lookup_elem(&ipcache_v6, &k);
	}
	peers[2] = 0;
	peers[3] = 0;
	if (ic) {
		q->peer_id = ic->identity;
		q->peer_ep_id = ic->ep_id;
		/* Only endpoint addresses inside some ipBlock pay the extra lookups. */
		peers[2] = ic->cidr_id;
		peers[3] = ic->port_class;
	}
	peers[0] = q->peer_id;
	peers[1] = ZT_ID_ANY;

#pragma unroll
	for (int i = 0; i < ZT_POL_LOOKUPS; i++) {
		struct zt_pol_val *v;

		if (i >= 2 && !peers[i])
			continue;
		zt_pol_key_fill(&pk, ZT_POL_PLEN_FULL, slot, q->dir, q->local_id, peers[i],
				q->proto, q->port);
		v = bpf_map_lookup_elem(&policy, &pk);
		if (!v)
			continue;
		zt_pol_acc_add(&enf_acc, v->verdict, v->rule_id);
		/* Accumulated in q, not on this frame: the caller's stack leaves no room. */
		if (v->verdict == ZT_VERDICT_ALLOW)
			q->flags |= v->flags;
		zt_pol_acc_add(&aud_acc, v->audit_verdict, v->audit_rule_id);
	}

	ik.slot = slot;
	ik.dir = q->dir;
	ik.identity = q->local_id;
	iso = bpf_map_lookup_elem(&pol_isolation, &ik);

	zt_pol_combine(&enf, &enf_acc, iso ? iso->isolated : 0, iso ? iso->by_default : 0,
		       iso ? iso->rule_id : 0);
	zt_pol_combine(&aud, &aud_acc, iso ? iso->audit_isolated : 0, iso ? iso->by_default : 0,
		       iso ? iso->audit_rule_id : 0);

	if (enf.verdict == ZT_VERDICT_ALLOW && aud.verdict == ZT_VERDICT_DENY) {
		q->verdict = ZT_VERDICT_ALLOW;
		q->audit = 1;
		q->reason = aud.reason;
		q->rule_id = aud.rule_id;
	} else {
		q->verdict = enf.verdict;
		q->reason = enf.reason;
		q->rule_id = enf.rule_id;
	}
	if (enf.verdict != ZT_VERDICT_ALLOW || enf.reason != ZT_REASON_RULE_ALLOW)
		q->flags = 0;
	return 0;
}

#endif /* ZT_BPF_POLICY_H */
