// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_endpoint: micro-segmentation on the host side of each endpoint's veth.
 *   tc_from_pod, on the veth's TC ingress hook: what the pod sends (its
 *   egress, ZT_DIR_EGRESS; the local endpoint is the source);
 *   tc_to_pod, on the veth's TC egress hook: what is sent to the pod (its
 *   ingress, ZT_DIR_INGRESS; the local endpoint is the destination).
 *
 * Per packet: the interface must be a registered endpoint (else pass);
 * non-IP frames and IPv6 neighbour discovery / router messages (ICMPv6
 * 133-137) pass; truncated or malformed headers drop. (A packet of a flow
 * whose entry is of the current generations skips the endpoints lookup:
 * every change of a registration publishes a generation, see tc_handle.)
 * Then conntrack: a packet of a known flow (either way) takes the flow's
 * cached verdict as long as the policy generation has not changed; after a
 * change, the flow is re-evaluated in its original direction at its next
 * packet, and an allowed flow that is now denied stops there (an event
 * with revoked=1). A packet of no known flow starts one: its verdict is
 * taken from the policy, an entry is created whether it is allowed or
 * denied (later packets of a denied flow drop without another event), and
 * one event reports it. A pod's new flow (and a re-check) also asks bpf/lib/ioc.h
 * whether its destination is a threat-intel IOC: action block denies it
 * (reason ioc), and a ZT_EV_IOC record reports the match either way.
 *
 * The XDP guard's blocklist (bpf/lib/blocklist.h, its maps through their
 * pins) covers the endpoints too, where the guard cannot see: a pod that
 * attacks (its packets never cross an uplink's ingress), a peer whose
 * packets come through a tunnel or from another pod of the node. A flow
 * either of whose addresses is blocked (and not allowlisted) is denied with
 * reason blocked, whatever the policy, audit mode or an IOC said, on its
 * first packet or, for a flow already there, on its next one after the
 * blocklist changed: each entry keeps the zt_prefix_set generation it was
 * checked under (bl_gen), so a packet of a flow costs one array read and a
 * compare. A blocked flow is looked at again at each packet, and gets its
 * policy verdict back once its entry expires or goes.
 *
 * Each entry also keeps the flow's features (per-direction sizes,
 * inter-arrival times, TCP flag counts, whether the handshake completed,
 * the responses that refused a login in the clear: include/ztagent.h,
 * lib/refusal.h; an SSH server's answers by their sizes, struct
 * zt_ssh_auth), and each endpoint its activity (ep_stats). A
 * completed handshake towards an endpoint makes its client "verified" for
 * the XDP guard's SYN protection (syn_verified). Packets from or to a
 * watched address are captured with their verdict.
 *
 * Simplifications: a TCP packet that is not a SYN and matches no entry is
 * evaluated as a new flow in its own direction (mid-stream pickup, e.g.
 * after the entry expired or the agent restarted), unless it carries FIN or
 * RST: the tail of a flow already gone gets its verdict but makes no entry
 * and no event (lib/conntrack.h). A SYN in the original
 * direction of a CLOSED entry starts the flow anew (port reuse). Later IP
 * fragments carry no ports: they are a flow of their own with ports 0, and
 * the policy sees port 0. ICMP errors are flows of their own (ports 0), not
 * related to the flow they report on.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/stats.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/ioc.h"
#include "lib/blocklist.h"
#include "lib/guard.h"
#include "lib/synprot.h"
#define ZT_CAPTURE_SKB
#include "lib/capture.h"
#include "lib/mtls.h"
#include "lib/tls.h"
#include "lib/refusal.h"
#include "lib/cred.h"
#include "lib/sshauth.h"
#include "lib/sketch.h"
#include "lib/skb.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_TCS_MAX);
	__type(key, __u32);
	__type(value, struct zt_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_EP_STATS_SLOTS);
	__type(key, __u32);
	__type(value, struct zt_ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_stats SEC(".maps");

/* A new flow's entry is built here: struct zt_ct_val is too big for the stack beside the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_ct_val);
} ct_scratch SEC(".maps");

struct tc_pkt {
	struct zt_pkt p;
	__u16 echo_id; /* ICMP/ICMPv6 echo: the identifier */
	__u8 is_echo;
	__u8 _pad;
};

/* Parsed once per call site; a global function is verified on its own. */
__noinline int tc_parse(struct __sk_buff *skb, struct tc_pkt *t)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *ih;
	__u32 off;
	int r;

	if (!t)
		return ZT_XR_BAD_ETH;
	/* GSO and paged skbs: lengths are checked against the skb, reads against data_end. */
	t->p.len = skb->len;
	r = zt_parse(data, data_end, &t->p);
	if (r != ZT_XR_OK || !(t->p.flags & ZT_PKT_L4) || !zt_icmp_is_echo(t->p.proto, t->p.sport))
		return r;
	off = t->p.l4_off;
	if (off > ZT_MAX_HDR_OFF)
		return ZT_XR_BAD_L4;
	ih = data + off;
	if ((void *)(ih + 8) > data_end)
		return ZT_XR_BAD_L4;
	t->echo_id = (__u16)ih[4] << 8 | ih[5];
	t->is_echo = 1;
	return ZT_XR_OK;
}

/*
 * Link-layer control that policy does not govern (as Kubernetes network
 * plugins do not): neighbour discovery (ICMPv6 133-137), and multicast
 * listener discovery (130-132, 143) sent to a multicast group.
 */
static __always_inline int tc_is_nd(const struct zt_pkt *p)
{
	__u16 t = p->sport;

	if (p->family != 6 || p->proto != IPPROTO_ICMPV6 || !(p->flags & ZT_PKT_L4))
		return 0;
	if (t >= 133 && t <= 137)
		return 1;
	return (t == 130 || t == 131 || t == 132 || t == 143) &&
	       ((const __u8 *)p->daddr)[0] == 0xff;
}

static __always_inline void tc_emit(const struct zt_ct_key *k, const struct zt_ct_val *v,
				    __u8 tcp_flags, __u8 revoked, __u32 len)
{
	struct zt_ev_policy *e;

	e = zt_event_begin(ZT_EV_POLICY, sizeof(*e));
	if (!e)
		return;
	e->ifindex = k->ifindex;
	e->gen = v->gen;
	e->rule_id = v->rule_id;
	e->local_id = v->local_id;
	e->peer_id = v->peer_id;
	e->ep_id = v->ep_id;
	e->peer_ep_id = v->peer_ep_id;
	e->dir = v->dir;
	e->verdict = v->verdict;
	e->audit = v->audit;
	e->reason = v->reason;
	e->family = k->family;
	e->proto = k->proto;
	e->tcp_flags = tcp_flags;
	e->revoked = revoked;
	__builtin_memcpy(e->saddr, k->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, k->daddr, sizeof(e->daddr));
	e->sport = k->sport;
	e->dport = k->dport;
	e->pkt_len = len;
	zt_event_end(e);
}

/* The policy question for flow k, seen first in direction dir. */
static __always_inline void tc_query_fill(struct zt_pol_query *q, const struct zt_ct_key *k,
					  __u8 dir, __u32 gen, __u32 local_id)
{
	__builtin_memcpy(q->peer, dir == ZT_DIR_EGRESS ? k->daddr : k->saddr, sizeof(q->peer));
	q->gen = gen;
	q->local_id = local_id;
	q->port = zt_proto_is_icmp(k->proto) ? 0 : k->dport;
	q->dir = dir;
	q->family = k->family;
	q->proto = k->proto;
}

static __always_inline __u32 tc_stat_of(const struct zt_ct_val *v, int new_flow)
{
	if (v->verdict != ZT_VERDICT_ALLOW)
		return v->reason == ZT_REASON_BLOCKED ? ZT_TCS_BLOCKED :
		       new_flow			      ? ZT_TCS_DENY_NEW :
							ZT_TCS_DENY_EST;
	if (v->audit)
		return ZT_TCS_AUDIT;
	return new_flow ? ZT_TCS_ALLOW_NEW : ZT_TCS_ALLOW_EST;
}

/* The interface's endpoint; NULL (counted as NO_ENDPOINT): the packet passes. */
static __always_inline struct zt_endpoint_info *tc_endpoint_of(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct zt_endpoint_info *ep = bpf_map_lookup_elem(&endpoints, &ifindex);

	if (!ep)
		zt_counter_add(&tc_stats, ZT_TCS_NO_ENDPOINT, skb->len);
	return ep;
}

/* The endpoint's activity in this CPU's copy of its slot (include/ztagent.h). */
static __always_inline void tc_ep_account(__u32 ep_id, __u8 dir, __u32 len, __u32 stat)
{
	__u32 slot = ep_id & (ZT_EP_STATS_SLOTS - 1), d = dir & 1;
	struct zt_ep_stats *s = bpf_map_lookup_elem(&ep_stats, &slot);

	if (!s)
		return;
	if (s->ep_id != ep_id) {
		__builtin_memset(s, 0, sizeof(*s));
		s->ep_id = ep_id;
	}
	s->packets[d]++;
	s->bytes[d] += len;
	if (stat == ZT_TCS_ALLOW_NEW || stat == ZT_TCS_DENY_NEW)
		s->new_flows[d]++;
	if (stat == ZT_TCS_DENY_NEW || stat == ZT_TCS_DENY_EST || stat == ZT_TCS_BLOCKED)
		s->denied[d]++;
}

/*
 * 1 when the address on side (0: source, 1: destination) of flow k is on
 * the blocklist now (and not allowlisted). Global: verified once, for both
 * sides and every call site.
 */
__noinline int tc_addr_blocked(const struct zt_ct_key *k, __u32 side)
{
	struct zt_block_entry *hit = NULL;
	const struct zt_prefix_set *ps;
	__u32 zero = 0;

	if (!k)
		return 0;
	ps = bpf_map_lookup_elem(&blocklist_prefixes, &zero);
	if (!ps)
		return 0;
	return zt_blocklist_addr(k->family, (const __u32 *)(side ? k->daddr : k->saddr), ps,
				 &hit) == ZT_XR_BLOCKLIST;
}

/*
 * The blocklist's verdict on flow k, after the policy's and the IOCs':
 * either address blocked denies it (reason blocked). bl_gen is the
 * generation read before the look, so a change made during it is looked
 * at again by the next packet.
 */
static __always_inline void tc_block_judge(const struct zt_ct_key *k, struct zt_ct_val *v,
					   __u32 bl_gen)
{
	v->bl_gen = bl_gen;
	if (!tc_addr_blocked(k, 0) && !tc_addr_blocked(k, 1))
		return;
	v->verdict = ZT_VERDICT_DENY;
	v->reason = ZT_REASON_BLOCKED;
	v->audit = 0;
	v->rule_id = ZT_RULE_NONE;
}

/*
 * A segment with FIN (and neither SYN nor RST) that no connection owned,
 * denied on its way into the endpoint: a FIN, Xmas or Maimon scan's probe
 * of a port policy does not open, which nothing will answer. Reported for
 * the scan detector (ZT_PROBE_STRAY_DENIED) within the strays' rate; a
 * packet of a blocked source is not (it is blocked already).
 */
/* Whether a report of tc_endpoint's may go out now: probe events on, and bucket has a token. */
static __always_inline int tc_report_ok(__u32 bucket)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();

	return cfg && (cfg->flags & ZT_GCF_PROBES) &&
	       zt_act_rate_ok(bucket, cfg->probe_rate, zt_now());
}

static __always_inline void tc_denied_probe(const struct zt_ct_key *k, const struct zt_ct_val *v,
					    __u8 tcp_flags)
{
	struct zt_ev_probe_result *e;

	/* The packet first: most tails are no such probe, and need no map lookup. */
	if (k->proto != IPPROTO_TCP || v->verdict != ZT_VERDICT_DENY ||
	    v->reason == ZT_REASON_BLOCKED ||
	    (tcp_flags & (ZT_TCP_SYN | ZT_TCP_FIN | ZT_TCP_RST)) != ZT_TCP_FIN)
		return;
	if (!tc_report_ok(ZT_AR_STRAY))
		return;
	e = zt_event_begin(ZT_EV_PROBE_RESULT, sizeof(*e));
	if (!e)
		return;
	e->ifindex = k->ifindex;
	e->family = k->family;
	e->proto = k->proto;
	e->result = ZT_PROBE_STRAY_DENIED;
	e->port = k->dport;
	e->prober_port = k->sport;
	__builtin_memcpy(e->prober, k->saddr, sizeof(e->prober));
	__builtin_memcpy(e->target, k->daddr, sizeof(e->target));
	zt_event_end(e);
	zt_act_stat(ZT_AS_PROBE_RESULTS);
}

/* A packet of a watched address, with its verdict. Global: its own stack frame. */
__noinline int tc_capture(struct __sk_buff *skb, struct zt_pkt *p, __u32 point, __u32 action,
			  __u32 stat)
{
	if (!p)
		return 0;
	zt_capture_skb(skb, zt_guard_cfg_get(), p->family, p->saddr, p->daddr, (__u8)point,
		       (__u8)action, (__u16)stat);
	return 0;
}

/*
 * The end of a TCP session whose handshake completed, for the brute-force
 * detector at once (ZT_EV_SESSION, include/ztagent.h). Global: verified
 * once on its own, and its frame holds no more than the call's.
 */
__noinline int tc_session_end(const struct zt_ct_key *k, struct zt_ct_val *v)
{
	struct zt_ev_session *e;

	if (!k || !v || k->proto != IPPROTO_TCP ||
	    (v->flags_seen[1] & (ZT_TCP_SYN | ZT_TCP_ACK)) != (ZT_TCP_SYN | ZT_TCP_ACK) ||
	    (v->peer_ep_id && v->dir == ZT_DIR_INGRESS) || !tc_report_ok(ZT_AR_SESSION))
		return 0;
	e = zt_event_begin(ZT_EV_SESSION, sizeof(*e));
	if (!e)
		return 0;
	v->session_sent = 1;
	__builtin_memcpy(&e->key, k, sizeof(e->key));
	__builtin_memcpy(&e->val, v, sizeof(e->val));
	zt_event_end(e);
	zt_act_stat(ZT_AS_SESSIONS);
	return 1;
}

/*
 * Whether the server acknowledged the opener's first payload segment
 * (zt_ct_val.req_ack): its end is kept as it goes (d 0), and the server's
 * acknowledgments are compared with it until one covers it (d 1). Called
 * only while that is open: a flow pays two loads of its headers at most.
 * Global: its frame stays out of tc_handle's.
 */
__noinline int tc_req_track(struct __sk_buff *skb, struct zt_ct_val *v, const struct zt_pkt *p,
			    __u32 d, __u32 payload)
{
	__u32 w;

	if (!skb || !v || !p)
		return 0;
	if (!d) {
		__u32 off = (__u32)p->l4_off + p->tcp_doff * 4;
		__u8 head[4], tail[4], whole = 0;

		if (zt_skb_tcp_word(skb, p, ZT_TCP_OFF_SEQ, &w))
			return 0;
		/* A whole GET or HEAD in the segment: its method, and its headers' end last. */
		if (payload >= 18 && off <= ZT_REFUSAL_MAX_OFF && payload <= 0xffff &&
		    !bpf_skb_load_bytes(skb, off, head, sizeof(head)) &&
		    !bpf_skb_load_bytes(skb, (off + payload - 4) & 0x1ffff, tail, sizeof(tail)))
			whole = ((head[0] == 'G' && head[1] == 'E' && head[2] == 'T' &&
				  head[3] == ' ') ||
				 (head[0] == 'H' && head[1] == 'E' && head[2] == 'A' &&
				  head[3] == 'D')) &&
				tail[0] == '\r' && tail[1] == '\n' && tail[2] == '\r' &&
				tail[3] == '\n';
		v->req_end = w + payload;
		v->req_ack = ZT_CT_REQ_SENT | (whole ? ZT_CT_REQ_WHOLE : 0);
		return 0;
	}
	if (!(p->tcp_flags & ZT_TCP_ACK) || zt_skb_tcp_word(skb, p, ZT_TCP_OFF_ACK, &w))
		return 0;
	if ((__s32)(w - v->req_end) >= 0) {
		__u32 held = zt_ct_held_ms(v->first_ns, bpf_ktime_get_boot_ns());

		v->req_ack = ZT_CT_REQ_ACKED | (v->req_ack & ZT_CT_REQ_WHOLE);
		/* The server took the connection in by now (zt_ct_val.held_ms). */
		if (held > v->held_ms)
			v->held_ms = held;
	}
	return 0;
}

/*
 * A TCP segment with FIN or RST that found no flow on its way into the
 * endpoint, of a source that is not blocked: counted for the source as
 * a segment of no connection (zt_out_of_state, lib/sketch.h). Global: its
 * frame stays out of tc_handle's.
 */
__noinline int tc_tail_in(const struct zt_ct_key *k, const struct zt_ct_val *v, __u32 ifindex)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();

	if (!k || !v || !cfg || k->proto != IPPROTO_TCP || v->reason == ZT_REASON_BLOCKED)
		return 0;
	zt_out_of_state(cfg, k->family, (const __u32 *)k->saddr, (const __u32 *)k->daddr, ifindex);
	return 0;
}

/*
 * What the first bytes of a response say (lib/refusal.h). Global: verified
 * once on its own, and its buffers stay out of tc_handle's frame, which is
 * near the 512 bytes of stack a program may have.
 */
__noinline int tc_reply_kind(struct __sk_buff *skb, __u32 off, __u32 payload, __u32 cred)
{
	if (!skb)
		return 0;
	/* The answer to credentials submitted to a form or an API (lib/cred.h). */
	if (cred)
		return zt_cred_reply(skb, off, payload);
	return zt_refusal(skb, off, payload);
}

/*
 * Where a password field's name starts in the n bytes of s->buf, or -1
 * (lib/cred.h). Global, as the two below: verified once each, a match at
 * each place of the scan does not verify the hash's loop again.
 */
__noinline int tc_cred_find(const struct zt_cred_scratch *s, __u32 n)
{
	if (!s)
		return -1;
	return zt_cred_find(s, n);
}

/*
 * The request segment at off (lib/cred.h) read into the per-CPU scratch:
 * ZT_CRED_NONE, ZT_CRED_POST (a POST, no password field seen), or
 * ZT_CRED_NEW with the hash of the field's surroundings in the scratch.
 */
__noinline int tc_cred_scan(struct __sk_buff *skb, __u32 off, __u32 payload, __u32 first)
{
	struct zt_cred_scratch *s;
	__u32 zero = 0, n;
	int at;

	s = bpf_map_lookup_elem(&cred_scratch, &zero);
	if (!skb || !s || zt_cred_load(skb, s, off, payload, first) != ZT_CRED_POST)
		return ZT_CRED_NONE;
	n = payload < ZT_CRED_SCAN ? payload : ZT_CRED_SCAN;
	at = tc_cred_find(s, n);
	if (at < 0 || at >= ZT_CRED_SCAN)
		return first ? ZT_CRED_POST : ZT_CRED_NONE;
	s->hash = zt_cred_hash(s, (__u32)at, n);
	return ZT_CRED_NEW;
}

/* The scratch's credentials of the opener of key k's: ZT_CRED_NEW or ZT_CRED_SAME (cred_seen). */
__noinline int tc_cred_seen(const struct zt_ct_key *k)
{
	struct zt_cred_scratch *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&cred_scratch, &zero);
	if (!k || !s)
		return ZT_CRED_NONE;
	return zt_cred_seen(s, k->family, k->saddr, k->daddr, k->dport);
}

/*
 * A payload segment of the opener's on the entry of key k, sent while no
 * response is due (it starts a request: ZT_CT_RESP_DUE now) or while a
 * POST's body may follow (ZT_CT_RESP_POST): credentials submitted in the
 * clear (lib/cred.h) into v->resp (ZT_CT_RESP_CRED, ZT_CT_RESP_POST).
 * Global: its loop is verified once, and its buffers are a per-CPU map's.
 */
__noinline int tc_req_cred(struct __sk_buff *skb, const struct zt_ct_key *k, struct zt_ct_val *v,
			   const struct zt_pkt *p, __u32 payload)
{
	__u32 first;
	int c;

	if (!skb || !k || !v || !p)
		return 0;
	first = !(v->resp & ZT_CT_RESP_DUE);
	v->resp |= ZT_CT_RESP_DUE;
	/* Between two endpoints of the node the client's entry reads it (tc_clear_refused). */
	if (v->peer_ep_id && v->dir == ZT_DIR_INGRESS)
		return 0;
	c = tc_cred_scan(skb, (__u32)p->l4_off + p->tcp_doff * 4, payload, first);
	if (c == ZT_CRED_NEW)
		c = tc_cred_seen(k);
	v->resp &= ~(ZT_CT_RESP_CRED | ZT_CT_RESP_POST);
	if (c == ZT_CRED_NEW)
		v->resp |= ZT_CT_RESP_CRED;
	else if (c == ZT_CRED_POST)
		v->resp |= ZT_CT_RESP_POST;
	return 0;
}

/*
 * A payload segment of an SSH server's, on the entry of key k (the flow's
 * original direction: the client first): its size and acknowledgment into
 * v->ssh (struct zt_ssh_auth), and a guess it refused out to the
 * brute-force detector at once (ZT_EV_REFUSED). Between two endpoints
 * of the node only the source's entry reports, as for the session's end.
 * Global: verified once, and its frame stays out of tc_handle's.
 */
__noinline int tc_ssh_seg(struct __sk_buff *skb, const struct zt_ct_key *k, struct zt_ct_val *v,
			  const struct zt_pkt *p, __u32 payload)
{
	__u32 off, ack;
	int banner = 0;

	if (!skb || !k || !v || !p)
		return 0;
	off = (__u32)p->l4_off + p->tcp_doff * 4;
	/* A bulk segment is no answer of authentication: its acknowledgment is not read. */
	if (v->ssh.state == ZT_SSH_YES && payload > ZT_SSH_SEG_MAX)
		ack = v->ssh.ack;
	else if (zt_skb_tcp_word(skb, p, ZT_TCP_OFF_ACK, &ack))
		return 0;
	if (!v->ssh.state)
		banner = zt_ssh_banner_skb(skb, off, payload);
	if (!zt_ssh_auth_seg(&v->ssh, payload, banner, ack) ||
	    (v->peer_ep_id && v->dir == ZT_DIR_INGRESS) || !tc_report_ok(ZT_AR_SESSION))
		return 0;
	return zt_ssh_refused_emit(ZT_REFUSED_FROM_ENDPOINT, k->family, k->saddr, k->daddr,
				   k->sport, k->dport, v->first_ns, &v->ssh);
}

/*
 * The run of logins refused in the clear on the entry of key k has grown
 * past ZT_REFUSED_LIVE_FROM (zt_clear_refused_due): out to the brute-force
 * detector now (ZT_EV_REFUSED), as an SSH server's guesses are. Between
 * two endpoints of the node only the source's entry reports. Global: its
 * frame stays out of tc_handle's.
 */
__noinline int tc_clear_refused(const struct zt_ct_key *k, struct zt_ct_val *v)
{
	if (!k || !v || (v->peer_ep_id && v->dir == ZT_DIR_INGRESS) || !tc_report_ok(ZT_AR_SESSION))
		return 0;
	return zt_clear_refused_emit(ZT_REFUSED_FROM_ENDPOINT, k->family, k->saddr, k->daddr,
				     k->sport, k->dport, v->first_ns, v->refused,
				     &v->ssh.clear_live);
}

/*
 * The server's first payload of a requireTLS flow into the pod (lib/tls.h):
 * the check is done once; a failure denies the flow for good (every later
 * packet), counted by cause, and reported as a revocation with reason
 * ZT_REASON_TLS. The failing segment itself becomes the resets of both
 * ends (zt_tls_refuse): 1 when it is now the client's reset, to be sent on.
 */
static __always_inline int tc_tls_check(struct __sk_buff *skb, const struct zt_pkt *p,
					const struct zt_ct_key *k, struct zt_ct_val *ct,
					__u32 payload, __u32 len)
{
	int r = zt_tls_server_hello(skb, (__u32)p->l4_off + p->tcp_doff * 4, payload);
	__u32 slot = r == ZT_TLS_13    ? ZT_MTLS_DS_TLS13 :
		     r == ZT_TLS_OLD   ? ZT_MTLS_DS_TLS_OLD :
		     r == ZT_TLS_SPLIT ? ZT_MTLS_DS_TLS_SPLIT :
					 ZT_MTLS_DS_TLS_NOT_TLS;

	zt_counter_add(&mtls_stats, slot, len);
	if (r == ZT_TLS_13) {
		ct->mtls = (ct->mtls & ~ZT_CT_TLS_CHECK) | ZT_CT_TLS_OK;
		return 0;
	}
	ct->mtls = (ct->mtls & ~ZT_CT_TLS_CHECK) | ZT_CT_TLS_BAD;
	ct->verdict = ZT_VERDICT_DENY;
	ct->reason = ZT_REASON_TLS;
	tc_emit(k, ct, p->tcp_flags, 1, len);
	r = zt_tls_refuse(skb, p->l3_off, p->l4_off, p->family);
	if (r == 0)
		zt_counter_add(&mtls_stats, ZT_MTLS_DS_TLS_RESET, len);
	return r >= 0;
}

/*
 * The window a TCP segment advertises (unscaled), from the header the parse
 * read (tc_parse pulled it into the linear part); ~0 when out of reach.
 */
static __always_inline __u32 tc_tcp_window(struct __sk_buff *skb, const struct zt_pkt *p)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u8 *w = data + (p->l4_off & ZT_MAX_HDR_OFF) + 14;

	if ((void *)(w + 2) > end)
		return ~0u;
	return (__u32)w[0] << 8 | w[1];
}

/* Every verdict of an IP packet on a registered endpoint ends here. */
static __always_inline int tc_verdict(struct __sk_buff *skb, struct tc_pkt *t, __u32 ep_id,
				      __u8 dir, __u32 stat, __u8 verdict, __u32 len)
{
	struct zt_guard_cfg *cfg = zt_guard_cfg_get();
	int act = verdict == ZT_VERDICT_ALLOW ? TC_ACT_OK : TC_ACT_SHOT;

	zt_counter_add(&tc_stats, stat, len);
	tc_ep_account(ep_id, dir, len, stat);
	if (cfg && cfg->watch_count)
		tc_capture(skb, &t->p, dir == ZT_DIR_EGRESS ? ZT_CAP_FROM_POD : ZT_CAP_TO_POD,
			   act == TC_ACT_OK ? ZT_ACT_PASS : ZT_ACT_DROP, stat);
	return act;
}

static __always_inline int tc_handle(struct __sk_buff *skb, __u8 dir)
{
	struct zt_ct_key key = {}, rkey;
	struct zt_endpoint_info *ep = NULL;
	struct zt_prefix_set *ps;
	struct zt_pol_state *st;
	struct tc_pkt t = {};
	struct zt_ct_val *ct;
	__u32 ifindex = skb->ifindex, len = skb->len, zero = 0, gen, bl_gen, d = 0, payload;
	__u64 now;
	int r;

	r = tc_parse(skb, &t);
	if (zt_skb_pull_headers(skb, (__u32)r)) {
		__builtin_memset(&t, 0, sizeof(t));
		r = tc_parse(skb, &t);
	}
	if (r != ZT_XR_OK || tc_is_nd(&t.p)) {
		/* No flow's packet: whether the interface is an endpoint decides first. */
		if (!tc_endpoint_of(skb))
			return TC_ACT_OK;
		if (r == ZT_XR_OK || r == ZT_XR_NOT_IP) {
			zt_counter_add(&tc_stats, ZT_TCS_NOT_IP, len);
			return TC_ACT_OK;
		}
		zt_counter_add(&tc_stats, ZT_TCS_MALFORMED, len);
		return TC_ACT_SHOT;
	}
	/* From here on bytes are IP bytes (header and payload, no link header),
	 * what the endpoints' own IP counters and IPFIX octet counts say. */
	len -= t.p.l3_off < len ? t.p.l3_off : len;
	payload = zt_tcp_payload(&t.p);

	st = bpf_map_lookup_elem(&pol_state, &zero);
	gen = st ? READ_ONCE(st->gen) : 0;
	ps = bpf_map_lookup_elem(&blocklist_prefixes, &zero);
	bl_gen = ps ? READ_ONCE(ps->gen) : 0;
	now = bpf_ktime_get_boot_ns();

	zt_ct_key_fill(&key, ifindex, &t.p, t.echo_id, t.is_echo);
	zt_ct_key_swap(&rkey, &key);
	/*
	 * The likelier direction first (zt_ct_reply_likely): a reply finds its
	 * entry in one lookup, not after a miss. Either way both are tried, and
	 * a live entry exists for one of the two tuples only (a packet matching
	 * neither makes one in its own direction), so the order changes no result.
	 */
	d = zt_ct_reply_likely(&key);
	ct = bpf_map_lookup_elem(&conntrack, d ? &rkey : &key);
	if (ct && zt_ct_expired(ct, d, key.proto, now))
		ct = NULL;
	if (!ct) {
		d ^= 1;
		ct = bpf_map_lookup_elem(&conntrack, d ? &rkey : &key);
		if (ct && zt_ct_expired(ct, d, key.proto, now))
			ct = NULL;
	}
	if (ct && !d && ct->state == ZT_CT_CLOSED &&
	    (t.p.tcp_flags & (ZT_TCP_SYN | ZT_TCP_ACK)) == ZT_TCP_SYN) {
		/* A new connection on the tuple of a closed one. */
		ct = NULL;
	}
	/*
	 * The endpoint's entry (its identity, its number) is read when the
	 * packet is evaluated: a new flow, or a flow whose generations moved.
	 * Every removal and relabelling of an endpoint publishes a policy
	 * generation after the endpoints map changed (src/seg/seg.c; a new
	 * registration has no flows before its programs are attached), so an
	 * entry of the current generations was evaluated for the endpoint that
	 * is registered now, and its ep_id is that endpoint's: a packet of an
	 * established flow does not pay the hash lookup.
	 */
	if (!ct || ct->gen != gen || ct->bl_gen != bl_gen || ct->reason == ZT_REASON_BLOCKED) {
		ep = tc_endpoint_of(skb);
		if (!ep)
			return TC_ACT_OK;
	}

	if (ct) {
		__u8 was = ct->verdict, was_audit = ct->audit;
		int refused = 0, acc;

		if (d)
			__builtin_memcpy(&key, &rkey, sizeof(key));
		if (ct->mtls & ZT_CT_TLS_BAD) {
			/* A server that failed requireTLS stays denied, whatever the policy says now. */
			if (ct->gen != gen)
				ct->gen = gen;
		} else if (ep) {
			/* Its generations moved (or it is blocked): ep was read for this above. */
			struct zt_pol_query q = {};

			/* Re-evaluated in the flow's original direction: the entry's key. */
			tc_query_fill(&q, &key, ct->dir, gen, ep->identity);
			zt_pol_eval(&q);
			ct->verdict = q.verdict;
			ct->audit = q.audit;
			ct->reason = q.reason;
			ct->rule_id = q.rule_id;
			ct->local_id = q.local_id;
			ct->peer_id = q.peer_id;
			ct->peer_ep_id = q.peer_ep_id;
			ct->ep_id = ep->ep_id;
			ct->gen = gen;
			/* A policy change never lets a flow to a blocked IOC through ... */
			zt_ioc_judge(&key, ct, ct->dir, 0, 0);
			/* ... or from or to a blocked address. */
			tc_block_judge(&key, ct, bl_gen);
			ct->mtls = zt_mtls_recheck(ct->mtls, zt_mtls_need(&key, ct->dir, q.flags));
			if (ct->verdict != was || ct->audit != was_audit)
				tc_emit(&key, ct, t.p.tcp_flags,
					was == ZT_VERDICT_ALLOW && ct->verdict != ZT_VERDICT_ALLOW,
					len);
		}
		acc = zt_ct_account(ct, d, key.proto, t.p.tcp_flags, len, payload, now);
		/* A client that completed a handshake with an endpoint: admitted under SYN protection. */
		if ((acc & ZT_CT_ACC_HANDSHAKE) && ct->dir == ZT_DIR_INGRESS &&
		    ct->verdict == ZT_VERDICT_ALLOW) {
			zt_syn_verified_add(key.family, (const __u32 *)key.saddr, zt_now(),
					    ZT_VER_HANDSHAKE);
			zt_act_stat(ZT_AS_VERIFIED_HANDSHAKE);
		}
		/* Did the server take the opener's first payload in? (zt_ct_val.req_ack) */
		if (key.proto == IPPROTO_TCP &&
		    (d ? (ct->req_ack & ZT_CT_REQ_SENT) : payload && !ct->req_ack))
			tc_req_track(skb, ct, &t.p, d, payload);
		/* The opener's closed windows: what a slow read looks like (zt_ct_val.zero_win). */
		if (!d && key.proto == IPPROTO_TCP && !payload &&
		    (t.p.tcp_flags & (ZT_TCP_SYN | ZT_TCP_FIN | ZT_TCP_RST | ZT_TCP_ACK)) ==
			    ZT_TCP_ACK &&
		    ct->zero_win < 255 && tc_tcp_window(skb, &t.p) == 0)
			ct->zero_win++;
		/*
		 * Logins refused in the clear (lib/refusal.h): the first bytes of
		 * each response, the server's first payload after the opener's.
		 */
		if (key.proto == IPPROTO_TCP && payload) {
			if (!d) {
				/* A request starts, or a POST's body may follow (lib/cred.h). */
				if ((ct->resp & (ZT_CT_RESP_DUE | ZT_CT_RESP_POST)) !=
				    ZT_CT_RESP_DUE)
					tc_req_cred(skb, &key, ct, &t.p, payload);
			} else if (ct->resp & ZT_CT_RESP_DUE) {
				int r = tc_reply_kind(skb, (__u32)t.p.l4_off + t.p.tcp_doff * 4,
						      payload, ct->resp & ZT_CT_RESP_CRED);
				__u8 served = ct->resp & ZT_CT_RESP_SERVED;

				if (r == ZT_REPLY_REFUSED) {
					ct->resp = ZT_CT_RESP_REFUSED | served;
					if (ct->refused < 255)
						ct->refused++;
					if (zt_clear_refused_due(ct->refused, ct->ssh.clear_live))
						tc_clear_refused(&key, ct);
				} else if (r == ZT_REPLY_CHALLENGE) {
					ct->resp = ZT_CT_RESP_CHALLENGED | served;
				} else if (zt_reply_served(r, ct->refused)) {
					/* A run of refusals ends: a login's challenges, or one got in. */
					ct->resp = ZT_CT_RESP_SERVED;
					ct->refused = 0;
					ct->ssh.clear_live = 0;
				} else {
					/*
					 * Nothing else undoes a refusal: a guesser that
					 * sends a PING or any command after each guess
					 * is still refused. A challenge ends here.
					 */
					ct->resp &= ZT_CT_RESP_REFUSED | ZT_CT_RESP_SERVED;
				}
			}
			/* An SSH server's answers, by their sizes (zt_ssh_auth). */
			if (d && ct->ssh.state != ZT_SSH_NO)
				tc_ssh_seg(skb, &key, ct, &t.p, payload);
		}
		/* The session's end, once its last response was read (key: the entry's). */
		if (acc & ZT_CT_ACC_CLOSED)
			tc_session_end(&key, ct);
		/* The reset a requireTLS refusal sent the server pod (below, from its own veth). */
		if ((ct->mtls & ZT_CT_TLS_BAD) && dir == ZT_DIR_INGRESS &&
		    skb->mark == ZT_MTLS_MARK_RST && (t.p.tcp_flags & ZT_TCP_RST))
			return TC_ACT_OK;
		/* requireTLS: the local server's first payload must be a TLS 1.3 ServerHello. */
		if ((ct->mtls & ZT_CT_TLS_CHECK) && d && dir == ZT_DIR_EGRESS && payload &&
		    ct->verdict == ZT_VERDICT_ALLOW)
			refused = tc_tls_check(skb, &t.p, &key, ct, payload, len);
		r = zt_mtls_gate(
			skb, &t.p, ct->mtls, ct->dir, dir,
			tc_verdict(skb, &t, ct->ep_id, dir, tc_stat_of(ct, 0), ct->verdict, len));
		/* Refused: the segment is the client's reset now, carried where the flow goes. */
		if (refused)
			return (ct->mtls & ZT_CT_MTLS_NEED) ?
				       zt_mtls_apply(skb, &t.p, ct->dir, dir) :
				       TC_ACT_OK;
		/* Flow records say whether the flow really went through the agent. */
		if (r == TC_ACT_OK &&
		    (ct->mtls & (ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA)) == ZT_CT_MTLS_NEED)
			ct->mtls |= ZT_CT_MTLS_VIA;
		return r;
	}

	/* A new flow: this packet's direction is the original one. */
	{
		struct zt_pol_query q = {};
		struct zt_ct_val *v;
		__u32 stat;
		__u8 verdict;

		tc_query_fill(&q, &key, dir, gen, ep->identity);
		zt_pol_eval(&q);
		v = bpf_map_lookup_elem(&ct_scratch, &zero);
		if (!v)
			return TC_ACT_SHOT;
		__builtin_memset(v, 0, sizeof(*v));
		if (!zt_ct_opens(key.proto, t.p.tcp_flags)) {
			/* The tail of a flow that is gone: its verdict (IOC, blocklist), no flow. */
			v->verdict = q.verdict;
			v->audit = q.audit;
			zt_ioc_judge(&key, v, dir, 0, 0);
			tc_block_judge(&key, v, bl_gen);
			if (dir == ZT_DIR_INGRESS) {
				tc_denied_probe(&key, v, t.p.tcp_flags);
				tc_tail_in(&key, v, skb->ifindex);
			}
			stat = tc_stat_of(v, 0);
			return tc_verdict(skb, &t, ep->ep_id, dir, stat, v->verdict, len);
		}
		v->first_ns = now;
		v->d[0].packets = 1;
		v->d[0].bytes = len;
		v->gen = gen;
		v->rule_id = q.rule_id;
		v->local_id = q.local_id;
		v->peer_id = q.peer_id;
		v->ep_id = ep->ep_id;
		v->peer_ep_id = q.peer_ep_id;
		v->dir = dir;
		v->verdict = q.verdict;
		v->audit = q.audit;
		v->reason = q.reason;
		v->state = zt_ct_initial_state(key.proto, t.p.tcp_flags);
		if (key.proto == IPPROTO_TCP)
			v->flags_seen[0] = t.p.tcp_flags;
		else if (key.proto == IPPROTO_ICMP || key.proto == IPPROTO_ICMPV6)
			v->icmp_type1 = (__u8)(t.p.sport + 1);
		zt_ioc_judge(&key, v, dir | ZT_IOC_EMIT, t.p.tcp_flags, len);
		tc_block_judge(&key, v, bl_gen);
		v->mtls = zt_mtls_need(&key, dir, q.flags);
		if (dir == ZT_DIR_INGRESS && !v->mtls && zt_mtls_by_agent(skb))
			v->mtls = ZT_CT_MTLS_NEED; /* a tunnelled connection the agent delivers */
		zt_ct_features_init(v, key.proto, t.p.tcp_flags, len, payload, now);
		stat = tc_stat_of(v, 1);
		verdict = v->verdict;
		/* The gate first: the entry records whether this first packet went through the agent. */
		r = zt_mtls_gate(skb, &t.p, v->mtls, dir, dir,
				 tc_verdict(skb, &t, ep->ep_id, dir, stat, verdict, len));
		if (r == TC_ACT_OK && (v->mtls & ZT_CT_MTLS_NEED))
			v->mtls |= ZT_CT_MTLS_VIA;
		bpf_map_update_elem(&conntrack, &key, v, BPF_ANY);
		tc_emit(&key, v, t.p.tcp_flags, 0, len);
		return r;
	}
}

SEC("tc")
int tc_from_pod(struct __sk_buff *skb)
{
	return tc_handle(skb, ZT_DIR_EGRESS);
}

SEC("tc")
int tc_to_pod(struct __sk_buff *skb)
{
	return tc_handle(skb, ZT_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
