/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload mTLS steering at the pod's veth (layout: include/ztagent.h,
 * "Workload mTLS steering").
 *
 * A TCP flow that must be carried by the agent's tunnel is marked NEED in
 * its conntrack entry when it starts (zt_mtls_need). Then per packet
 * (zt_mtls_apply):
 *   from the pod: the packet belongs to a socket of the agent: the agent's
 *     socket of that very connection (established lookup on the packet's
 *     tuple: the accepted pod connection, or the agent's transparent
 *     connection to a local destination pod), else, for a pod's SYN, the
 *     agent's transparent listener. It is assigned to it (bpf_sk_assign)
 *     and marked ZT_MTLS_MARK_STEER, which an ip rule routes locally, so
 *     the original destination stays in the packet and becomes the accepted
 *     socket's local address. No socket: the agent is not there; the packet
 *     drops (fail closed), never leaves in clear text.
 *   to the pod: only what the agent's sockets sent (SO_MARK agent_mark)
 *     passes; clear text that went around the tunnel drops.
 * IPv4 and IPv6 alike: the agent listens on both families (its IPv6
 * listener is IPv6-only, so each lookup finds the socket of its own family).
 */
#ifndef ZT_BPF_MTLS_H
#define ZT_BPF_MTLS_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/stats.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_mtls_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mtls_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_ip4_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mtls_remote_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_ip6_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mtls_remote_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_MTLS_DS_MAX);
	__type(key, __u32);
	__type(value, struct zt_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mtls_stats SEC(".maps");

/* The lookup tuple: off the stack, which tc_endpoint's caller nearly fills. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_sock_tuple);
} mtls_scratch SEC(".maps");

/*
 * Does the flow k (original direction, seen first going dir) need the
 * tunnel? pol_flags: the ZT_POL_F_* of the allow rules that allowed it.
 */
static __always_inline __u8 zt_mtls_need(const struct zt_ct_key *k, __u8 dir, __u8 pol_flags)
{
	struct zt_mtls_cfg *cfg;
	__u32 zero = 0;

	if (k->proto != IPPROTO_TCP)
		return 0;
	cfg = bpf_map_lookup_elem(&mtls_cfg, &zero);
	if (!cfg || cfg->mode == ZT_MTLS_DP_OFF)
		return 0;
	/* requireTLS into a local pod: its server's ServerHello is checked too (lib/tls.h). */
	if ((pol_flags & ZT_POL_F_REQUIRE_TLS) && dir == ZT_DIR_INGRESS)
		return ZT_CT_MTLS_NEED | ZT_CT_TLS_CHECK;
	if (pol_flags & (ZT_POL_F_REQUIRE_TLS | ZT_POL_F_REQUIRE_MTLS))
		return ZT_CT_MTLS_NEED;
	if (cfg->mode == ZT_MTLS_DP_STRICT && k->family == 4) {
		struct zt_ip4_key lk = { .prefixlen = 32 };

		/* A pod of another node at the other end: the flow crosses the network. */
		__builtin_memcpy(lk.addr, dir == ZT_DIR_EGRESS ? k->daddr : k->saddr, 4);
		if (bpf_map_lookup_elem(&mtls_remote_v4, &lk))
			return ZT_CT_MTLS_NEED;
	}
	if (cfg->mode == ZT_MTLS_DP_STRICT && k->family == 6) {
		struct zt_ip6_key lk = { .prefixlen = 128 };

		__builtin_memcpy(lk.addr, dir == ZT_DIR_EGRESS ? k->daddr : k->saddr, 16);
		if (bpf_map_lookup_elem(&mtls_remote_v6, &lk))
			return ZT_CT_MTLS_NEED;
	}
	return 0;
}

/*
 * A flow's first packet towards the pod sent by the agent (its mark): the
 * agent delivering a tunnelled connection. The flow then needs the agent
 * whatever this node's policy asks (zt_mtls_need may say no: policy mode
 * with no requirement here, or a source strict mode here does not know as
 * remote), or the pod's replies would be routed past the agent's socket.
 */
static __always_inline int zt_mtls_by_agent(const struct __sk_buff *skb)
{
	struct zt_mtls_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&mtls_cfg, &zero);
	return cfg && cfg->mode != ZT_MTLS_DP_OFF && cfg->agent_mark &&
	       skb->mark == cfg->agent_mark;
}

/*
 * The packet p (of a NEED flow first seen going flow_dir) at the hook
 * going hook_dir: TC_ACT_OK (assigned to the agent, or from it) or
 * TC_ACT_SHOT (counted).
 */
__noinline int zt_mtls_apply(struct __sk_buff *skb, const struct zt_pkt *p, __u8 flow_dir,
			     __u8 hook_dir)
{
	struct bpf_sock_tuple *tup;
	struct zt_mtls_cfg *cfg;
	struct bpf_sock *sk;
	__u32 zero = 0, len = skb->len, tlen;
	long r;

	if (!skb || !p)
		return TC_ACT_SHOT;
	cfg = bpf_map_lookup_elem(&mtls_cfg, &zero);
	if (!cfg)
		goto no_agent;
	if (hook_dir == ZT_DIR_INGRESS) {
		if (cfg->agent_mark && skb->mark == cfg->agent_mark) {
			zt_counter_add(&mtls_stats, ZT_MTLS_DS_FROM_AGENT, len);
			return TC_ACT_OK;
		}
		zt_counter_add(&mtls_stats, ZT_MTLS_DS_BYPASS, len);
		return TC_ACT_SHOT;
	}
	tup = bpf_map_lookup_elem(&mtls_scratch, &zero);
	if (!tup)
		goto no_agent;
	tlen = zt_sock_tuple(tup, p);
	if (!tlen) {
		zt_counter_add(&mtls_stats, ZT_MTLS_DS_UNSUPPORTED, len);
		return TC_ACT_SHOT;
	}
	sk = bpf_skc_lookup_tcp(skb, tup, tlen, BPF_F_CURRENT_NETNS, 0);
	if (sk && sk->state == BPF_TCP_LISTEN) {
		/* A listener of the node on that port: not the agent's socket for this flow. */
		bpf_sk_release(sk);
		sk = NULL;
	}
	if (!sk && flow_dir == ZT_DIR_EGRESS &&
	    (p->tcp_flags & (ZT_TCP_SYN | ZT_TCP_ACK)) == ZT_TCP_SYN && cfg->steer_port) {
		if (tlen == sizeof(tup->ipv4))
			tup->ipv4.dport = bpf_htons(cfg->steer_port);
		else
			tup->ipv6.dport = bpf_htons(cfg->steer_port);
		sk = bpf_skc_lookup_tcp(skb, tup, tlen, BPF_F_CURRENT_NETNS, 0);
		if (sk && sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			sk = NULL;
		}
	}
	if (!sk)
		goto no_agent;
	r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (r)
		goto no_agent;
	skb->mark = ZT_MTLS_MARK_STEER;
	zt_counter_add(&mtls_stats, ZT_MTLS_DS_STEERED, len);
	return TC_ACT_OK;
no_agent:
	zt_counter_add(&mtls_stats, ZT_MTLS_DS_NO_AGENT, len);
	return TC_ACT_SHOT;
}

/*
 * After a policy change: the tunnel requirement as the policy says now (need,
 * from zt_mtls_need), what the ServerHello check found as it was. A check
 * still pending is dropped when the rule no longer asks for it, and never
 * starts on a flow already running. A flow that went through the agent
 * stays with it: its TCP connection ends at the agent's socket.
 */
static __always_inline __u8 zt_mtls_recheck(__u8 old, __u8 need)
{
	if (old & ZT_CT_MTLS_VIA)
		need |= ZT_CT_MTLS_NEED;
	return (need & ZT_CT_MTLS_NEED) | (old & (ZT_CT_TLS_OK | ZT_CT_TLS_BAD | ZT_CT_MTLS_VIA)) |
	       (old & need & ZT_CT_TLS_CHECK);
}

/* The program's verdict act for a packet of a flow with zt_ct_val.mtls m, gated by the above. */
static __always_inline int zt_mtls_gate(struct __sk_buff *skb, const struct zt_pkt *p, __u8 m,
					__u8 flow_dir, __u8 hook_dir, int act)
{
	if (act != TC_ACT_OK || !(m & ZT_CT_MTLS_NEED))
		return act;
	return zt_mtls_apply(skb, p, flow_dir, hook_dir);
}

#endif /* ZT_BPF_MTLS_H */
