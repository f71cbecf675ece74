// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_uplink runs on the TC egress hook of every XDP uplink and sees what
 * the node (its own services and the endpoints behind it) sends back out.
 * It never changes a verdict (always TC_ACT_OK); it reports:
 *   - the outcome of a probe xdp_guard reported: a SYN-ACK (open), an RST
 *     (closed), an ICMP or ICMPv6 destination unreachable that quotes the
 *     probe, a UDP answer, an echo or timestamp reply (open). Only answers
 *     whose probe bit is set in both sketch cells of the prober are
 *     reported, and the bit is cleared, so a probe gets one outcome at most;
 *     the outcome is also counted for the scan brake (scan_cells, whatever
 *     the event's rate limit said);
 *   - strays, answers to no probe it knows of that tell a contact failed
 *     by themselves (enum zt_probe_result): an RST without ACK (the answer
 *     to an ACK, window or Maimon scan's probe, which opens nothing and is
 *     no first contact for the guard) and an ICMP protocol unreachable or
 *     ICMPv6 unrecognized next header (an IP protocol scan's), within a
 *     rate of their own (probe_rate), so a flood of them never costs a
 *     probe its answer;
 *   - every SYN-ACK, counted for the address it goes to (the source
 *     sketch's synack): a SYN of that source's was answered, which tells a
 *     client whose SYNs a full accept queue drops from a flooder
 *     (zt_halfopen);
 *   - every other TCP reset, counted for the address it goes to (scan_cells'
 *     resets, with ZT_GCF_ACTIVITY and sig_src.resets set): a segment of
 *     that source's belonged to no connection, as each of an ACK flood's
 *     does; at sig_src.resets in a window, one ZT_SIG_RESETS activity event;
 *   - a capture of each packet to or from a watched address (the other
 *     half of a conversation xdp_guard captures on the way in);
 *   - what the node's own TCP services answer (lib/hostreply.h): an HTTP
 *     success or a refused login at the start of a segment they send, and
 *     the sizes of an SSH server's answers (struct zt_ssh_auth).
 * With the guard on TC ingress (tc_guard), its SYN challenges leave through
 * this hook too: a SYN-ACK whose sequence number is the challenge cookie
 * of its tuple answers no probe, and is not reported.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/guard.h"
#include "lib/sketch.h"
#define ZT_CAPTURE_SKB
#include "lib/capture.h"
#include "lib/synprot.h" /* the cookie */
#include "lib/refusal.h"
#include "lib/hostreply.h"
#include "lib/cred.h"
#include "lib/sshauth.h"
#include "lib/skb.h"

#define ZT_ICMP_DEST_UNREACH 3
#define ZT_ICMP_PROT_UNREACH 2 /* its code */
#define ZT_ICMPV6_DEST_UNREACH 1
#define ZT_ICMPV6_PARAMPROB 4
#define ZT_ICMPV6_UNK_NEXTHDR 1 /* its code */
#define ZT_IPV6_NEXTHDR_OFF 6 /* the pointer of an unrecognized next header in the fixed header */

/* An answer: who probed what, and what came back. */
struct zt_answer {
	__u32 prober[4];
	__u32 target[4];
	__u16 port; /* the probed port */
	__u16 prober_port;
	__u8 proto; /* the probe's */
	__u8 result; /* enum zt_probe_result */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 stray; /* ZT_PROBE_STRAY_*: what it says when it answers no pending probe; 0 */
};

/*
 * The probe quoted by an ICMP error: its IP header (the prober's packet, as
 * the node got it) and the first 8 bytes of its L4 header (the ports).
 */
static __always_inline int zt_quoted(void *data, void *data_end, const struct zt_pkt *p,
				     struct zt_answer *an)
{
	__u32 off = p->l4_off + 8;
	__u8 *q;

	if (off > ZT_MAX_HDR_OFF)
		return 0;
	q = data + off;
	if (p->family == 4) {
		__u32 hl;

		if ((void *)(q + 20) > data_end)
			return 0;
		hl = (q[0] & 0xf) * 4;
		if (hl < 20 || hl > 60)
			return 0;
		an->proto = q[9];
		__builtin_memcpy(an->prober, q + 12, 4);
		__builtin_memcpy(an->target, q + 16, 4);
		off += hl;
	} else {
		if ((void *)(q + 40) > data_end)
			return 0;
		an->proto = q[6]; /* extension headers in the quote: not a probe we track */
		__builtin_memcpy(an->prober, q + 8, 16);
		__builtin_memcpy(an->target, q + 24, 16);
		off += 40;
	}
	/* A protocol nothing serves: no ports to read, whatever it is. */
	if (an->stray == ZT_PROBE_STRAY_PROTO)
		return 1;
	if (an->proto == IPPROTO_TCP || an->proto == IPPROTO_UDP) {
		if (off > ZT_MAX_HDR_OFF)
			return 0;
		q = data + off;
		if ((void *)(q + 4) > data_end)
			return 0;
		an->prober_port = (__u16)q[0] << 8 | q[1];
		an->port = (__u16)q[2] << 8 | q[3];
	} else if (an->proto != IPPROTO_ICMP && an->proto != IPPROTO_ICMPV6) {
		return 0;
	}
	return 1;
}

/*
 * An ICMP protocol unreachable, or an ICMPv6 parameter problem that points
 * at the next header field of the quoted IPv6 header (RFC 4443 3.4): the
 * answer to an IP protocol scan's probe.
 */
static __always_inline int zt_proto_unreach(void *data, void *data_end, const struct zt_pkt *p)
{
	__u32 off = p->l4_off + 4;
	__u8 *ptr;

	if (p->proto == IPPROTO_ICMP)
		return p->sport == ZT_ICMP_DEST_UNREACH && p->dport == ZT_ICMP_PROT_UNREACH;
	if (p->sport != ZT_ICMPV6_PARAMPROB || p->dport != ZT_ICMPV6_UNK_NEXTHDR ||
	    off > ZT_MAX_HDR_OFF)
		return 0;
	ptr = data + off;
	if ((void *)(ptr + 4) > data_end)
		return 0;
	return ptr[0] == 0 && ptr[1] == 0 && ptr[2] == 0 && ptr[3] == ZT_IPV6_NEXTHDR_OFF;
}

/* What this packet answers, if it answers a probe at all. */
static __always_inline int zt_answer_of(void *data, void *data_end, const struct zt_pkt *p,
					struct zt_answer *an)
{
	if (!(p->flags & ZT_PKT_L4))
		return 0;
	switch (p->proto) {
	case IPPROTO_TCP:
		if ((p->tcp_flags & (ZT_TCP_F_SYN | ZT_TCP_F_ACK)) ==
		    (ZT_TCP_F_SYN | ZT_TCP_F_ACK)) {
			an->result = ZT_PROBE_OPEN;
		} else if (p->tcp_flags & ZT_TCP_F_RST) {
			an->result = ZT_PROBE_CLOSED;
			/* A reset for a segment with ACK that no connection owned (RFC 9293 3.10.7.1). */
			if (!(p->tcp_flags & ZT_TCP_F_ACK))
				an->stray = ZT_PROBE_STRAY_RST;
		} else {
			return 0;
		}
		break;
	case IPPROTO_UDP:
		an->result = ZT_PROBE_OPEN;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 echo_reply =
			p->proto == IPPROTO_ICMP ? ZT_ICMP_ECHOREPLY : ZT_ICMPV6_ECHO_REPLY;
		__u8 unreach =
			p->proto == IPPROTO_ICMP ? ZT_ICMP_DEST_UNREACH : ZT_ICMPV6_DEST_UNREACH;

		if (p->sport == echo_reply ||
		    (p->proto == IPPROTO_ICMP && p->sport == ZT_ICMP_TIMESTAMPREPLY)) {
			an->result = ZT_PROBE_OPEN;
			an->proto = p->proto;
			__builtin_memcpy(an->prober, p->daddr, 16);
			__builtin_memcpy(an->target, p->saddr, 16);
			return 1;
		}
		if (zt_proto_unreach(data, data_end, p))
			an->stray = ZT_PROBE_STRAY_PROTO;
		else if (p->sport != unreach)
			return 0;
		an->result = ZT_PROBE_UNREACH;
		an->icmp_type = (__u8)p->sport;
		an->icmp_code = (__u8)p->dport;
		return zt_quoted(data, data_end, p, an);
	}
	default:
		return 0;
	}
	an->proto = p->proto;
	an->port = p->sport;
	an->prober_port = p->dport;
	__builtin_memcpy(an->prober, p->daddr, 16);
	__builtin_memcpy(an->target, p->saddr, 16);
	return 1;
}

static __always_inline void zt_emit_result(const struct zt_answer *an, __u8 family, __u32 ifindex)
{
	struct zt_ev_probe_result *e;

	e = zt_event_begin(ZT_EV_PROBE_RESULT, sizeof(*e));
	if (!e)
		return;
	e->ifindex = ifindex;
	e->family = family;
	e->proto = an->proto;
	e->result = an->result;
	e->icmp_type = an->icmp_type;
	e->icmp_code = an->icmp_code;
	e->port = an->port;
	e->prober_port = an->prober_port;
	__builtin_memcpy(e->prober, an->prober, 16);
	__builtin_memcpy(e->target, an->target, 16);
	zt_event_end(e);
	zt_act_stat(ZT_AS_PROBE_RESULTS);
}

/* The answer's event, within its bucket's rate (strays have their own). */
static __always_inline int zt_report(const struct zt_answer *an, __u8 family, __u32 ifindex,
				     __u32 bucket, __u32 rate)
{
	if (!zt_act_rate_ok(bucket, rate, zt_now()))
		return 0;
	zt_emit_result(an, family, ifindex);
	return 1;
}

/*
 * Is this SYN-ACK tc_guard's challenge to the SYN it answers? Its sequence
 * number is the high half of that SYN's cookie (lib/synprot.h), in the
 * current slot or the one before.
 */
static __always_inline int zt_own_challenge(void *data, void *data_end, const struct zt_pkt *p,
					    const struct zt_guard_cfg *cfg)
{
	struct zt_pkt syn = {};
	struct tcphdr *th;

	if (p->proto != IPPROTO_TCP || !(cfg->flags & ZT_GCF_SYN_CHALLENGE) ||
	    (p->tcp_flags & (ZT_TCP_F_SYN | ZT_TCP_F_ACK)) != (ZT_TCP_F_SYN | ZT_TCP_F_ACK) ||
	    p->l4_off > ZT_CHAL_MAX_L4_OFF)
		return 0;
	th = data + p->l4_off;
	if ((void *)(th + 1) > data_end)
		return 0;
	syn.family = p->family;
	__builtin_memcpy(syn.saddr, p->daddr, sizeof(syn.saddr));
	__builtin_memcpy(syn.daddr, p->saddr, sizeof(syn.daddr));
	syn.sport = p->dport;
	syn.dport = p->sport;
	return zt_syn_cookie_recent(&syn, cfg, zt_now(), bpf_ntohl(th->seq), 1);
}

/* Parsed once; a global function is verified on its own. */
__noinline int uplink_parse(struct __sk_buff *skb, struct zt_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (!p)
		return ZT_XR_BAD_ETH;
	p->len = skb->len;
	return zt_parse(data, data_end, p);
}

__noinline int uplink_outcome(struct __sk_buff *skb, struct zt_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();
	struct zt_src_cell *c0, *c1;
	struct zt_answer an = {};
	__u64 hs, hd, pb, jiffies;
	__u32 i, port, win, n;
	int probes, resets, synack;

	if (!p || !cfg || !zt_answer_of(data, data_end, p, &an))
		return 0;
	probes = !!(cfg->flags & ZT_GCF_PROBES);
	resets = (cfg->flags & ZT_GCF_ACTIVITY) && cfg->sig_src.resets;
	synack = an.proto == IPPROTO_TCP && an.result == ZT_PROBE_OPEN;
	if (!(probes || resets || synack))
		return 0;
	hs = zt_sketch_hash(an.prober, p->family, cfg->seed);
	i = zt_src_cell0(hs);
	c0 = bpf_map_lookup_elem(&src_sketch, &i);
	i = zt_src_cell1(hs);
	c1 = bpf_map_lookup_elem(&src_sketch, &i);
	if (!c0 || !c1)
		return 0;
	/* One of the prober's SYNs answered, a challenge's too (zt_halfopen). */
	if (synack)
		zt_src_answered(c0, c1, (__u32)(bpf_jiffies64() >> (cfg->win_shift & 31)));
	/* Most packets leaving are no answer to a pending probe: one load says so. */
	if (probes && c0->pending) {
		hd = zt_sketch_hash(an.target, p->family, cfg->seed);
		port = an.proto == IPPROTO_ICMP || an.proto == IPPROTO_ICMPV6 ? 0 : an.port;
		pb = 1ULL << (zt_probe_bit(hd, (__u16)port, an.proto) & 63);
		if (c0->pending & c1->pending & pb) {
			if (zt_own_challenge(data, data_end, p, cfg))
				return 0;
			c0->pending &= ~pb;
			c1->pending &= ~pb;
			zt_scan_count(hs, (__u32)(bpf_jiffies64() >> (cfg->win_shift & 31)),
				      an.result != ZT_PROBE_OPEN);
			return zt_report(&an, p->family, skb->ifindex, ZT_AR_PROBE,
					 cfg->probe_rate);
		}
	}
	/*
	 * Any other reset says that a segment of the prober's belonged to no
	 * connection here (RFC 9293 3.10.7.1): one per packet of an ACK flood.
	 */
	if (resets && an.proto == IPPROTO_TCP && an.result == ZT_PROBE_CLOSED) {
		jiffies = bpf_jiffies64();
		win = (__u32)(jiffies >> (cfg->win_shift & 31));
		n = zt_scan_reset(hs, win, cfg->sig_src.resets);
		if (n)
			zt_reset_signal(an.prober, an.target, p->family, c0, c1, cfg, skb->ifindex,
					jiffies, win, n);
	}
	if (!probes || !an.stray)
		return 0;
	an.result = an.stray;
	return zt_report(&an, p->family, skb->ifindex, ZT_AR_STRAY, cfg->probe_rate);
}

/*
 * ... but an SSH server's (struct zt_ssh_auth): its first data segment
 * when it begins "SSH-" makes the connection's entry, and a later segment
 * small enough to be an answer of its authentication adds its size and
 * acknowledgment to the entry there is, and a guess it refused goes out to
 * the brute-force detector at once (ZT_EV_REFUSED, within probe_rate
 * with the session ends). A bulk segment is neither (one compare); a small
 * one of another service costs a lookup that finds nothing.
 */
static __always_inline int uplink_ssh(struct __sk_buff *skb, struct zt_pkt *p, struct bpf_sock *sk,
				      __u32 payload)
{
	struct zt_host_reply_key k = {};
	struct zt_host_reply *v, nv = {};
	struct zt_guard_cfg *cfg;
	struct bpf_tcp_sock *tp;
	__u32 ack;

	tp = bpf_tcp_sock(sk);
	if (!tp)
		return 0;
	if (tp->data_segs_out <= 1) {
		/* The connection's first data segment: the server's identification? */
		if (!zt_ssh_banner_skb(skb, (__u32)p->l4_off + p->tcp_doff * 4, payload) ||
		    zt_skb_tcp_word(skb, p, ZT_TCP_OFF_ACK, &ack))
			return 0;
		zt_host_reply_key(&k, p->family, p->sport, p->dport, p->saddr, p->daddr);
		zt_ssh_auth_seg(&nv.ssh, payload, 1, ack);
		bpf_map_update_elem(&host_replies, &k, &nv, BPF_ANY);
		return 0;
	}
	if (payload > ZT_SSH_SEG_MAX)
		return 0;
	zt_host_reply_key(&k, p->family, p->sport, p->dport, p->saddr, p->daddr);
	v = bpf_map_lookup_elem(&host_replies, &k);
	if (!v || v->ssh.state != ZT_SSH_YES || zt_skb_tcp_word(skb, p, ZT_TCP_OFF_ACK, &ack) ||
	    !zt_ssh_auth_seg(&v->ssh, payload, 0, ack))
		return 0;
	cfg = zt_guard_cfg_get();
	if (cfg && (cfg->flags & ZT_GCF_PROBES) &&
	    zt_act_rate_ok(ZT_AR_SESSION, cfg->probe_rate, zt_now()))
		zt_ssh_refused_emit(ZT_REFUSED_FROM_NODE, p->family, k.client, k.node, p->dport,
				    p->sport, 0, &v->ssh);
	return 0;
}

/*
 * A segment of a node's service that begins an HTTP/1.x response, on a
 * connection whose last request submitted credentials (zt_host_reply.cred,
 * set by the guard at the uplink): 1 when it refuses them (lib/cred.h: a
 * 2xx or 4xx to credentials other than the client's last ones), else 0.
 * Any response ends the question. Global: its frame stays out of the
 * caller's, its buffers a per-CPU map's.
 */
__noinline int uplink_cred(struct __sk_buff *skb, const struct zt_pkt *p, __u32 payload)
{
	struct zt_cred_scratch *s;
	struct zt_host_reply *v;
	__u32 zero = 0, off;

	if (!skb || !p || payload < 12)
		return 0;
	off = (__u32)p->l4_off + p->tcp_doff * 4;
	s = bpf_map_lookup_elem(&cred_scratch, &zero);
	if (!s || off > ZT_REFUSAL_MAX_OFF || bpf_skb_load_bytes(skb, off, s->buf, 12) ||
	    s->buf[0] != 'H' || s->buf[1] != 'T' || s->buf[2] != 'T' || s->buf[3] != 'P')
		return 0;
	__builtin_memset(&s->rkey, 0, sizeof(s->rkey));
	zt_host_reply_key(&s->rkey, p->family, p->sport, p->dport, p->saddr, p->daddr);
	v = bpf_map_lookup_elem(&host_replies, &s->rkey);
	if (!v || !v->cred)
		return 0;
	v->cred = 0;
	if (!zt_cred_refusing(s->buf))
		return 0;
	s->hash = v->cred_hash;
	return zt_cred_seen(s, p->family, (const __u8 *)p->daddr, (const __u8 *)p->saddr,
			    p->sport) == ZT_CRED_NEW;
}

/*
 * A segment a socket of the node's own sends (skb->sk: none for what the
 * node forwards): when its first bytes say a login was refused or a
 * request served, on its connection's host_replies entry.
 */
__noinline int uplink_reply(struct __sk_buff *skb, struct zt_pkt *p)
{
	struct zt_host_reply_key k = {};
	struct zt_host_reply *v, nv = {};
	struct zt_guard_cfg *cfg;
	struct bpf_tcp_sock *tp;
	struct bpf_sock *sk;
	__u32 payload, segs = 0;
	int r;

	if (!p || p->proto != IPPROTO_TCP || !(p->flags & ZT_PKT_L4))
		return 0;
	sk = skb->sk;
	if (!sk)
		return 0;
	payload = zt_tcp_payload(p);
	if (!payload)
		return 0;
	r = zt_refusal(skb, (__u32)p->l4_off + p->tcp_doff * 4, payload);
	/* An answer to credentials the guard saw come in (lib/cred.h)? */
	if (uplink_cred(skb, p, payload))
		r = ZT_REPLY_REFUSED;
	/* A segment that says nothing (a bulk transfer's) looks nothing up (lib/hostreply.h) ... */
	if (!r)
		return uplink_ssh(skb, p, sk, payload);
	if (r == ZT_REPLY_CHALLENGE) {
		tp = bpf_tcp_sock(sk);
		if (tp)
			segs = tp->data_segs_out;
	}
	zt_host_reply_key(&k, p->family, p->sport, p->dport, p->saddr, p->daddr);
	v = bpf_map_lookup_elem(&host_replies, &k);
	if (v) {
		zt_host_reply_apply(v, r, segs);
		/* A run of refusals reported as it grows, as tc_endpoint's (ZT_EV_REFUSED). */
		if (r == ZT_REPLY_REFUSED && zt_clear_refused_due(v->refused, v->ssh.clear_live) &&
		    (cfg = zt_guard_cfg_get()) && (cfg->flags & ZT_GCF_PROBES) &&
		    zt_act_rate_ok(ZT_AR_SESSION, cfg->probe_rate, zt_now()))
			zt_clear_refused_emit(ZT_REFUSED_FROM_NODE, p->family, k.client, k.node,
					      p->dport, p->sport, 0, v->refused,
					      &v->ssh.clear_live);
		return 0;
	}
	zt_host_reply_apply(&nv, r, segs);
	bpf_map_update_elem(&host_replies, &k, &nv, BPF_ANY);
	return 0;
}

SEC("tc")
int tc_uplink(struct __sk_buff *skb)
{
	struct zt_pkt p = {};
	struct zt_guard_cfg *cfg;
	int r;

	r = uplink_parse(skb, &p);
	if (r != ZT_XR_OK || !p.family)
		return TC_ACT_OK;
	cfg = zt_guard_cfg_get();
	if (!cfg || !(cfg->flags & ZT_GCF_ACTIVITY))
		return TC_ACT_OK;
	uplink_outcome(skb, &p);
	if ((cfg->flags & ZT_GCF_PROBES) && p.proto == IPPROTO_TCP)
		uplink_reply(skb, &p);
	if (cfg->watch_count)
		zt_capture_skb(skb, cfg, p.family, p.saddr, p.daddr, ZT_CAP_UPLINK_OUT, ZT_ACT_PASS,
			       0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
