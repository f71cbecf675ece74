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
 *
 * An IP packet the lists pass (allowlisted sources excepted) then goes
 * through the activity stage when guard_cfg switches it on
 * (include/ztagent.h, "Activity"): the sketches of its source and
 * destination, the token buckets (a drop with a ZT_XR_RL_* reason), SYN
 * protection (a challenge sent back with XDP_TX, or a verified client
 * passed), first-contact probe events, the scan brake (ZT_XR_SCAN_BRAKE),
 * and a TCP reset to the node itself that no socket of its owns, counted
 * as a segment of no connection (guard_rst_stray).
 * Last, a packet from or to a watched address is captured, whatever its
 * verdict.
 *
 * The same source built with ZT_GUARD_TC (bpf/tc_guard.bpf.c) is tc_guard,
 * the guard on an uplink's TC ingress hook, for devices where XDP costs the
 * traffic it passes (xdp.mode tc; auto on a veth): generic XDP copies every
 * paged skb into a buffer of its own, and a native program on a veth takes
 * GSO from its peer. It sees the skb after GRO (a batch counts as one
 * packet in the sketches and buckets; bytes stay exact), pulls headers
 * that are not in the linear part, and sends a challenge back out of the
 * device it came in on with bpf_redirect instead of XDP_TX. Both share
 * every map through their pins.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef ZT_GUARD_TC
#include <linux/pkt_cls.h>
#define ZT_CTX struct __sk_buff
#define ZT_CAPTURE_SKB
#include "lib/skb.h"
#else
#define ZT_CTX struct xdp_md
#endif

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/blocklist.h"
#include "lib/events.h"
#include "lib/stats.h"
#include "lib/guard.h"
#include "lib/sketch.h"
#include "lib/ratelimit.h"
#include "lib/synprot.h"
#include "lib/capture.h"
#include "lib/cred.h"

/* Fixed at load by the daemon (skel->rodata). */
const volatile __u32 cfg_malformed_drop = 1;
const volatile __u32 cfg_event_sample = ZT_DEFAULT_EVENT_SAMPLE;
const volatile __u32 cfg_event_rate = ZT_DEFAULT_EVENT_RATE;
/* bpf_xdp_load_bytes exists (5.18+): captures use it; else they copy byte by byte. */
const volatile __u32 cfg_xdp_load_bytes = 1;
/*
 * Loaded with BPF_F_XDP_HAS_FRAGS (5.18+, the daemon's choice): a frame
 * may go on past data_end in fragments (a jumbo frame of a multi-buffer
 * driver; generic XDP then copies a paged skb into pages instead of one
 * linear buffer). Its length is bpf_xdp_get_buff_len's; the headers stay
 * in the first buffer, which every parse bounds-checks against data_end.
 */
const volatile __u32 cfg_xdp_frags = 0;

/* The whole frame's length, fragments (or an skb's paged data) included. */
static __always_inline __u32 guard_len(ZT_CTX *ctx)
{
#ifdef ZT_GUARD_TC
	return ctx->len;
#else
	if (cfg_xdp_frags)
		return (__u32)bpf_xdp_get_buff_len(ctx);
	return (__u32)(ctx->data_end - ctx->data);
#endif
}

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

/* A packet as the first stage (parse and lists) leaves it. */
struct guard_pkt {
	struct zt_pkt p;
	__u32 action; /* enum zt_action */
	__u32 reason; /* enum zt_xdp_reason */
	__u16 block_reason; /* with ZT_XR_BLOCKLIST: the entry's */
	__u16 block_source;
	__u32 feed_id;
};

static __always_inline void emit_drop(ZT_CTX *ctx, const struct guard_pkt *x, __u32 len)
{
	const struct zt_pkt *p = &x->p;
	struct zt_ev_xdp_drop *e;
	struct zt_sampler *s;
	__u32 zero = 0, n;

	s = bpf_map_lookup_elem(&event_sampler, &zero);
	if (!s)
		return;
	n = zt_sample(s, cfg_event_sample, cfg_event_rate);
	if (!n)
		return;
	e = zt_event_begin(ZT_EV_XDP_DROP, sizeof(*e));
	if (!e) {
		s->pending += n; /* the next event carries them */
		return;
	}
	e->ifindex = ctx->ingress_ifindex;
	e->reason = x->reason;
	e->family = p->family;
	e->proto = p->proto;
	__builtin_memcpy(e->saddr, p->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, p->daddr, sizeof(e->daddr));
	e->sport = p->sport;
	e->dport = p->dport;
	e->pkt_len = len;
	e->represents = n;
	e->block_reason = x->block_reason;
	e->block_source = x->block_source;
	e->feed_id = x->feed_id;
	/* The outer VLAN tag: its id from the frame (the parser keeps no TPID or priority) ... */
	if (p->n_vlans) {
		e->vlan_proto = bpf_htons(ETH_P_8021Q);
		e->vlan_tci = p->vlan[0];
	}
#ifdef ZT_GUARD_TC
	/* ... or the one the kernel took out of it, whole. */
	zt_skb_vlan_tag(ctx, &e->vlan_proto, &e->vlan_tci);
#endif
	zt_event_end(e);
}

/*
 * A global (non-inlined) function is verified once, on its own: the many
 * paths through the header walk then do not multiply the paths through the
 * list lookups, which keeps the verifier well inside its limits on older
 * kernels (pointer arguments to global functions need 5.12+).
 */
__noinline int guard_parse(ZT_CTX *ctx, struct zt_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 r;

	if (!p)
		return ZT_XR_BAD_ETH;
	/* p->len, the whole frame with fragments (0: data_end ends it), is the caller's. */
	r = zt_parse(data, data_end, p);
#ifdef ZT_GUARD_TC
	if (zt_skb_pull_headers(ctx, r)) {
		__u32 len = p->len;

		__builtin_memset(p, 0, sizeof(*p));
		p->len = len;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		r = zt_parse(data, data_end, p);
	}
#endif
	return r;
}

/*
 * Parse and lists: the verdict before the activity stage, in x. Global
 * too, for its own stack frame: the main program's stays small enough for
 * the activity stage's beside it.
 */
__noinline int guard_lists(ZT_CTX *ctx, struct guard_pkt *x)
{
	struct zt_block_entry *hit = NULL;
	__u32 reason, lists = ZT_XR_OK;

	if (!x)
		return 0;
	reason = guard_parse(ctx, &x->p);
	/* family is set once the source is known, also in a malformed packet. */
	if (x->p.family)
		lists = zt_blocklist_check(&x->p, &hit);
	if (lists == ZT_XR_BLOCKLIST) {
		x->reason = ZT_XR_BLOCKLIST;
		x->action = ZT_ACT_DROP;
		if (hit) {
			x->block_reason = hit->reason;
			x->block_source = hit->source;
			x->feed_id = hit->feed_id;
		}
	} else if (reason == ZT_XR_OK) {
		x->reason = lists;
		x->action = ZT_ACT_PASS;
	} else if (reason == ZT_XR_NOT_IP) {
		x->reason = reason;
		x->action = ZT_ACT_PASS;
	} else {
		x->reason = reason;
		x->action = cfg_malformed_drop ? ZT_ACT_DROP : ZT_ACT_PASS;
	}
	return 0;
}

/*
 * Copies a packet of a watched address into a capture record. Global: the
 * main program and the activity stage (which captures a SYN before turning
 * it into a challenge) share one verified copy.
 */
__noinline int guard_capture(ZT_CTX *ctx, struct zt_pkt *p, __u32 action, __u32 reason)
{
#ifdef ZT_GUARD_TC
	if (!p)
		return 0;
	zt_capture_skb(ctx, zt_guard_cfg_get(), p->family, p->saddr, p->daddr, ZT_CAP_XDP,
		       (__u8)action, (__u16)reason);
	return 0;
#else
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = guard_len(ctx), cap, i;
	struct zt_cap_hit hit = {};
	struct zt_ev_capture *e;

	if (!p || !zt_capture_want(zt_guard_cfg_get(), p->family, p->saddr, p->daddr, &hit))
		return 0;
	cap = zt_capture_len(&hit, len);
	e = zt_capture_begin(&hit, ctx->ingress_ifindex, len, ZT_CAP_XDP, (__u8)action,
			     (__u16)reason);
	if (!e)
		return 0;
	if (cfg_xdp_load_bytes) {
		if (cap >= 1) {
			cap = zt_cap_bound(cap);
			if (bpf_xdp_load_bytes(ctx, 0, e->data, cap) == 0)
				e->cap_len = (__u16)cap;
		}
	} else {
		for (i = 0; i < ZT_CAP_SNAPLEN; i++) {
			if (i >= cap || data + i + 1 > data_end)
				break;
			e->data[i] = *(__u8 *)(data + i);
		}
		e->cap_len = (__u16)i;
	}
	zt_capture_end(&hit, e);
	return 1;
#endif
}

/* The activity stage's verdict: 0 leaves the packet's as it is. */
#define ZT_ACT_VERDICT(action, reason) ((int)((action) << 16 | (reason)))

/* The cells of a packet's source and destination, from the hashes in a. */
struct guard_cells {
	struct zt_src_cell *s0, *s1;
	struct zt_dst_cell *d0, *d1;
};

static __always_inline int guard_cells(const struct zt_act *a, struct guard_cells *c)
{
	__u32 i;

	i = zt_src_cell0(a->hs);
	c->s0 = bpf_map_lookup_elem(&src_sketch, &i);
	i = zt_src_cell1(a->hs);
	c->s1 = bpf_map_lookup_elem(&src_sketch, &i);
	i = zt_dst_cell0(a->hd);
	c->d0 = bpf_map_lookup_elem(&dst_sketch, &i);
	i = zt_dst_cell1(a->hd);
	c->d1 = bpf_map_lookup_elem(&dst_sketch, &i);
	return c->s0 && c->s1 && c->d0 && c->d1;
}

/* What guard_activity asks guard_act_verdict to decide. */
#define ASK_SRC 0x1 /* the source is over a limit: its own bucket */
#define ASK_SYN 0x2 /* a SYN the destination's bucket refused */
#define ASK_ANSWER 0x4 /* a pure RST where challenges went lately */
#define ASK_PROTECT 0x8 /* a SYN, while syn_protect has entries */
#define ASK_SCAN 0x10 /* a first contact, while the scan brake is on */

/*
 * The rare decisions: a source over a limit, SYN protection, a
 * challenge's answer. Global, like guard_act_report: each is verified once on
 * its own, where inlined together their paths multiply past the verifier's
 * budget.
 */
__noinline int guard_act_verdict(ZT_CTX *ctx, struct zt_pkt *p, struct zt_act *a, __u32 ask)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();
	struct guard_cells c;
	__u32 k;

	if (!p || !a || !cfg || !guard_cells(a, &c))
		return 0;
	if ((ask & ASK_ANSWER) && (p->flags & ZT_PKT_L4) && (cfg->flags & ZT_GCF_SYN_CHALLENGE) &&
	    zt_syn_answer(ctx, p, cfg, zt_act_now(a)))
		return ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_SYN_ANSWER);
	if (ask & ASK_SRC) {
		k = zt_rl_src(p, a, cfg);
		if (k < ZT_RL_KINDS)
			return ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_RL_SRC_ALL + k);
	}
	if ((ask & ASK_SCAN) && zt_scan_braked(p, a, cfg)) {
		/*
		 * No contact was made: the probe's retransmission (nmap resends
		 * what got no answer) is a first contact again, and braked again.
		 */
		k = a->probe_bit & 63;
		c.s0->contacts &= ~(1ULL << k);
		c.s1->contacts &= ~(1ULL << k);
		return ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_SCAN_BRAKE);
	}
	if (!(ask & ASK_SYN) &&
	    (!(ask & ASK_PROTECT) || !zt_syn_protected(p->family, p->daddr, zt_act_now(a))))
		return 0;
	/* A SYN to a destination under protection. */
	if ((cfg->flags & ZT_GCF_SYN_VERIFIED) &&
	    zt_syn_verified(p->family, p->saddr, cfg, zt_act_now(a))) {
		c.d0->admitted++;
		c.d1->admitted++;
		return ZT_ACT_VERDICT(ZT_ACT_PASS, ZT_XR_SYN_VERIFIED);
	}
	/* The caller captures the SYN, then turns it into the challenge. */
	if ((cfg->flags & ZT_GCF_SYN_CHALLENGE) && zt_syn_challengeable(p)) {
		c.d0->challenged++;
		c.d1->challenged++;
		c.d0->chal |= 1;
		c.d1->chal |= 1;
		return ZT_ACT_VERDICT(ZT_ACT_TX, ZT_XR_SYN_CHALLENGE);
	}
	return ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_RL_DST_SYN);
}

/* Signals and the probe of a packet whose checks are due (guard_activity). */
__noinline int guard_act_report(ZT_CTX *ctx, struct zt_pkt *p, struct zt_act *a, __u32 v)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();
	__u32 action = v >> 16, reason = v & 0xffff;
	struct guard_cells c;

	if (!p || !a || !cfg || !guard_cells(a, &c))
		return 0;
	if (a->src_due)
		zt_src_signal(c.s0, c.s1, a, p, cfg, ctx->ingress_ifindex);
	if (a->dst_due)
		zt_dst_signal(c.d0, c.d1, a, p, cfg, ctx->ingress_ifindex);
	/* A challenged SYN tells nothing about the prober: its source may be spoofed. */
	if (a->first_contact && (cfg->flags & ZT_GCF_PROBES) && action != ZT_ACT_TX &&
	    reason != ZT_XR_SYN_ANSWER)
		zt_probe_emit(c.s0, c.s1, a, p, cfg, ctx->ingress_ifindex, (__u8)action,
			      (__u16)reason);
	return 0;
}

/* The device a packet came in on, at either hook. */
#ifdef ZT_GUARD_TC
#define ZT_IN_IFINDEX(ctx) ((ctx)->ifindex)
#else
#define ZT_IN_IFINDEX(ctx) ((ctx)->ingress_ifindex)
#endif

/*
 * A TCP reset the guard passed to the node itself (its routes deliver it
 * locally, or the device does not forward) that no socket of the node's
 * owns: none matches its tuple, or only a listener (a reset belongs to a
 * connection or one being made, never to a listener). That is a segment of
 * no connection, counted for its source as tc_uplink counts the resets the
 * node sends for the others (zt_out_of_state): the node answers a reset
 * with nothing, so an RST flood at the node's own address shows nowhere
 * else. A reset the node forwards (to an endpoint) is tc_endpoint's, which
 * counts it where it arrives. Only resets pay the two lookups. Global: its
 * lookups are verified once, on their own.
 */
__noinline int guard_rst_stray(ZT_CTX *ctx, struct zt_pkt *p)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();
	struct bpf_fib_lookup f = {};
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 ifindex, tlen;
	int r;

	if (!p || !cfg || !(p->flags & ZT_PKT_L4) || p->proto != IPPROTO_TCP)
		return 0;
	tlen = zt_sock_tuple(&t, p);
	if (!tlen)
		return 0;
	ifindex = ZT_IN_IFINDEX(ctx);
	f.ifindex = ifindex;
	f.l4_protocol = IPPROTO_TCP;
	f.sport = bpf_htons(p->sport);
	f.dport = bpf_htons(p->dport);
	if (p->family == 4) {
		f.family = ZT_AF_INET;
		f.ipv4_src = p->saddr[0];
		f.ipv4_dst = p->daddr[0];
	} else {
		f.family = ZT_AF_INET6;
		__builtin_memcpy(f.ipv6_src, p->saddr, 16);
		__builtin_memcpy(f.ipv6_dst, p->daddr, 16);
	}
	r = (int)bpf_fib_lookup(ctx, &f, sizeof(f), 0);
	if (r != BPF_FIB_LKUP_RET_NOT_FWDED && r != BPF_FIB_LKUP_RET_FWD_DISABLED)
		return 0;
	sk = (struct bpf_sock *)bpf_skc_lookup_tcp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		__u32 state = sk->state;

		bpf_sk_release(sk);
		if (state != BPF_TCP_LISTEN)
			return 0;
	}
	zt_out_of_state(cfg, p->family, p->saddr, p->daddr, ifindex);
	return 1;
}

/*
 * The activity stage for one IP packet the lists passed (include/ztagent.h,
 * "Activity"): the counts in both sketches and the destination's buckets,
 * every packet; the rest only when something calls for it. Inlined into
 * the main program, with the guard_cfg it already looked up: as a global
 * function of its own it cost ~2 ns more a packet (a call, a frame, a
 * second lookup; bench_xdp warm pass path, 2.43-2.50x today's guard
 * inlined against 2.54-2.61x called, three runs side by side). What it
 * calls rarely (guard_act_verdict, guard_act_report) stays global.
 */
static __always_inline int guard_activity(ZT_CTX *ctx, struct zt_pkt *p, __u32 len,
					  struct zt_guard_cfg *cfg)
{
	struct zt_dst_local *l;
	struct guard_cells c;
	struct zt_act a = {};
	__u32 ask = 0, k, now_t;
	int v = 0;

	a.jiffies = bpf_jiffies64();
	a.win = (__u32)(a.jiffies >> (cfg->win_shift & 31));
	a.len = len > p->l3_off ? len - p->l3_off : 0;
	zt_act_classify(&a, p);
	a.hs = zt_sketch_hash(p->saddr, p->family, cfg->seed);
	a.hd = zt_sketch_hash(p->daddr, p->family, cfg->seed);
	if (!guard_cells(&a, &c))
		return 0;
	/* This CPU's entry for the destination: at its row-0 cell's index. */
	k = zt_dst_cell0(a.hd);
	l = bpf_map_lookup_elem(&dst_local, &k);
	if (!l)
		return 0;
	a.src_due = (__u8)zt_src_update(c.s0, c.s1, &a, cfg);
	a.dst_due = (__u8)zt_dst_update(c.d0, c.d1, l, &a);
	if (a.over)
		ask |= ASK_SRC;
	if (a.first_contact && (cfg->flags & ZT_GCF_SCAN_BRAKE))
		ask |= ASK_SCAN;
	/* The flags first: the cells' chal is read for a lone RST only. */
	if (a.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (ZT_TCP_F_SYN | ZT_TCP_F_ACK | ZT_TCP_F_RST | ZT_TCP_F_FIN)) ==
		    ZT_TCP_F_RST &&
	    ((c.d0->chal | c.d1->chal) & 3))
		ask |= ASK_ANSWER;
	/* Destination buckets: every packet every kind with a limit set. */
	now_t = (__u32)(a.jiffies << ZT_TAT_SHIFT);
	if (cfg->dst_interval[ZT_RL_ALL] &&
	    !zt_rl_dst_kind(c.d0, c.d1, l, ZT_RL_ALL, now_t, cfg->dst_interval[ZT_RL_ALL],
			    cfg->dst_burst, cfg->dst_lease[ZT_RL_ALL])) {
		v = ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_RL_DST_ALL);
		ask &= ~ASK_SRC; /* dropped anyway: the source's bucket need not pay */
	} else {
		k = a.kind & (ZT_RL_KINDS - 1);
		if (k != ZT_RL_ALL && cfg->dst_interval[k] &&
		    !zt_rl_dst_kind(c.d0, c.d1, l, k, now_t, cfg->dst_interval[k], cfg->dst_burst,
				    cfg->dst_lease[k])) {
			if (k == ZT_RL_SYN) {
				ask |= ASK_SYN;
			} else {
				v = ZT_ACT_VERDICT(ZT_ACT_DROP, ZT_XR_RL_DST_ALL + k);
				ask &= ~ASK_SRC;
			}
		}
		if (k == ZT_RL_SYN && cfg->protect_count)
			ask |= ASK_PROTECT;
	}
	if (ask) {
		int w = guard_act_verdict(ctx, p, &a, ask);

		if (w)
			v = w;
	}
	if (a.src_due || a.dst_due || a.first_contact)
		guard_act_report(ctx, p, &a, (__u32)v);
	/* A reset that passes: is it one of the node's own connections? */
	if (a.proto == IPPROTO_TCP && (p->tcp_flags & ZT_TCP_F_RST) && cfg->sig_src.resets &&
	    (!v || (__u32)v >> 16 == ZT_ACT_PASS))
		guard_rst_stray(ctx, p);
	return v;
}

/* Rewrites the SYN in ctx into its challenge (lib/synprot.h); 0 when ready to send. */
__noinline int guard_challenge(ZT_CTX *ctx, struct zt_pkt *p)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();

	if (!p || !cfg)
		return -1;
	return zt_syn_challenge(ctx, p, cfg, zt_now());
}

/* Where a password field's name starts in s->buf's n bytes, or -1 (lib/cred.h). Global: verified once. */
__noinline int guard_cred_find(const struct zt_cred_scratch *s, __u32 n)
{
	if (!s)
		return -1;
	return zt_cred_find(s, n);
}

/*
 * A TCP segment that passed, into the node or through it: when its payload
 * begins a POST that submits credentials in the clear (lib/cred.h), their
 * hash goes onto the connection's host_replies entry, and tc_uplink reads
 * the node's service's answer to them (lib/hostreply.h). Pods' own flows
 * are tc_endpoint's; their entries here are never read, and the LRU map
 * lets them go. Only a POST whose field is in its first segment is seen.
 * Global: verified once, its buffers a per-CPU map's.
 */
__noinline int guard_cred(ZT_CTX *ctx, struct zt_pkt *p)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct zt_cred_scratch *s;
	struct zt_host_reply *v;
	__u32 zero = 0, off, hl, n, i;
	__u8 *c;
	int at;

	if (!p || p->proto != IPPROTO_TCP || !(p->flags & ZT_PKT_L4) || p->l4_off < p->l3_off)
		return 0;
	off = (__u32)p->l4_off + p->tcp_doff * 4;
	hl = off - p->l3_off;
	if (off > ZT_REFUSAL_MAX_OFF || p->ip_len < hl + 8)
		return 0;
	c = data + off;
	if ((void *)(c + 5) > end || c[0] != 'P' || c[1] != 'O' || c[2] != 'S' || c[3] != 'T' ||
	    c[4] != ' ')
		return 0;
	s = bpf_map_lookup_elem(&cred_scratch, &zero);
	if (!s)
		return 0;
	n = p->ip_len - hl;
	for (i = 0; i < ZT_CRED_SCAN; i++) {
		c = data + off + i;
		if (i >= n || (void *)(c + 1) > end)
			break;
		s->buf[i] = *c;
	}
	n = i;
	if (n < ZT_CRED_SCAN)
		__builtin_memset(&s->buf[n & (ZT_CRED_SCAN - 1)], 0, 16);
	else
		__builtin_memset(&s->buf[ZT_CRED_SCAN], 0, 16);
	at = guard_cred_find(s, n);
	if (at < 0 || at >= ZT_CRED_SCAN)
		return 0;
	__builtin_memset(&s->rkey, 0, sizeof(s->rkey));
	zt_host_reply_key(&s->rkey, p->family, p->dport, p->sport, p->daddr, p->saddr);
	v = bpf_map_lookup_elem(&host_replies, &s->rkey);
	if (v) {
		v->cred_hash = zt_cred_hash(s, (__u32)at, n);
		v->cred = 1;
		return 0;
	}
	__builtin_memset(&s->reply, 0, sizeof(s->reply));
	s->reply.cred_hash = zt_cred_hash(s, (__u32)at, n);
	s->reply.cred = 1;
	bpf_map_update_elem(&host_replies, &s->rkey, &s->reply, BPF_ANY);
	return 0;
}

#ifdef ZT_GUARD_TC
SEC("tc")
int tc_guard(struct __sk_buff *ctx)
#else
SEC("xdp")
int xdp_guard(struct xdp_md *ctx)
#endif
{
	__u32 len = guard_len(ctx);
	struct zt_guard_cfg *cfg;
	struct guard_pkt x = {};

	/* Length fields are checked against the whole frame (zt_pkt.len). */
#ifdef ZT_GUARD_TC
	x.p.len = len;
#else
	if (cfg_xdp_frags)
		x.p.len = len;
#endif
	guard_lists(ctx, &x);
	cfg = zt_guard_cfg_get();
	if (cfg && (cfg->flags & ZT_GCF_ACTIVITY) && x.action == ZT_ACT_PASS &&
	    (x.reason == ZT_XR_OK || x.reason == ZT_XR_BLOCK_EXPIRED)) {
		int v = guard_activity(ctx, &x.p, len, cfg);

		if (v) {
			x.action = (__u32)v >> 16;
			x.reason = (__u32)v & 0xffff;
		}
	}
	/* Credentials submitted to a service of the node's (lib/cred.h). */
	if (cfg && (cfg->flags & ZT_GCF_PROBES) && x.action == ZT_ACT_PASS &&
	    x.p.proto == IPPROTO_TCP)
		guard_cred(ctx, &x.p);
	/* A challenged SYN is captured as it came, before it is rewritten. */
	if (cfg && cfg->watch_count && x.p.family)
		guard_capture(ctx, &x.p, x.action, x.reason);
	if (x.action == ZT_ACT_TX && guard_challenge(ctx, &x.p) < 0) {
		x.action = ZT_ACT_DROP;
		x.reason = ZT_XR_RL_DST_SYN;
	}
	zt_counter_add(&xdp_stats, x.action * ZT_XR_MAX + x.reason, len);
#ifdef ZT_GUARD_TC
	if (x.action == ZT_ACT_PASS)
		return TC_ACT_OK;
	/* Back out of the device it came in on, as XDP_TX does. */
	if (x.action == ZT_ACT_TX)
		return (int)bpf_redirect(ctx->ifindex, 0);
	emit_drop(ctx, &x, len);
	return TC_ACT_SHOT;
#else
	if (x.action == ZT_ACT_PASS)
		return XDP_PASS;
	if (x.action == ZT_ACT_TX)
		return XDP_TX;
	emit_drop(ctx, &x, len);
	return XDP_DROP;
#endif
}

#ifndef ZT_GUARD_TC
/*
 * The kernel's clocks side by side, for the daemon (src/guard/activity.c),
 * run through BPF_PROG_TEST_RUN: jiffies give the sketch's current window,
 * and two runs apart tell HZ where no kernel config file does. A syscall
 * program (5.14+): a test run of an XDP one would wait for RCU.
 */
__u64 zt_clock_jiffies;
__u64 zt_clock_ns;

SEC("syscall")
int zt_clock(void *ctx)
{
	zt_clock_jiffies = bpf_jiffies64();
	zt_clock_ns = bpf_ktime_get_ns();
	return 0;
}
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
