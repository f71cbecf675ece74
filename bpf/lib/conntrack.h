/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking for tc_endpoint: one LRU hash entry per flow and
 * endpoint interface, keyed by the flow's original direction (the first
 * packet seen). A packet looks up its own tuple, then the swapped one: the
 * first hit says which way it goes. An entry idle for longer than its
 * timeout counts as absent; the daemon sweeps such entries, and the LRU
 * evicts the oldest when the map is full.
 *
 * Counters are atomic adds. flags_seen, state, the last packets' times and the flow
 * features (sizes, inter-arrival times, flag counts: include/ztagent.h) are
 * plain stores: two CPUs racing on one flow may lose a transition until the
 * next packet, or one feature update, never a packet or byte count.
 *
 * A TCP packet with FIN or RST (and no SYN) that matches no entry does not
 * start a flow (zt_ct_opens): it is the tail of a flow whose entry is gone
 * (recorded and removed after its close, or expired), and recording it
 * would make a second, one-packet "flow" of it. It still gets the policy's
 * verdict.
 */
#ifndef ZT_BPF_CONNTRACK_H
#define ZT_BPF_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"

#define ZT_TCP_FIN 0x01
#define ZT_TCP_SYN 0x02
#define ZT_TCP_RST 0x04
#define ZT_TCP_PSH 0x08
#define ZT_TCP_ACK 0x10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144); /* the daemon sets the size */
	__type(key, struct zt_ct_key);
	__type(value, struct zt_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conntrack SEC(".maps");

/* ICMP/ICMPv6 echo request or reply: the identifier stands in for ports. */
static __always_inline int zt_icmp_is_echo(__u8 proto, __u16 type)
{
	if (proto == IPPROTO_ICMP)
		return type == ZT_ICMP_ECHO || type == ZT_ICMP_ECHOREPLY;
	if (proto == IPPROTO_ICMPV6)
		return type == ZT_ICMPV6_ECHO_REQUEST || type == ZT_ICMPV6_ECHO_REPLY;
	return 0;
}

static __always_inline int zt_proto_is_icmp(__u8 proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

/* The protocols whose flows are told apart by their ports. */
static __always_inline int zt_proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/*
 * The packet's own tuple. Ports: TCP/UDP/SCTP as parsed; ICMP echo: the
 * identifier both ways; later fragments, other ICMP and other protocols: 0.
 */
static __always_inline void zt_ct_key_fill(struct zt_ct_key *k, __u32 ifindex,
					   const struct zt_pkt *p, __u16 echo_id, int is_echo)
{
	k->ifindex = ifindex;
	k->family = p->family;
	k->proto = p->proto;
	__builtin_memcpy(k->saddr, p->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, p->daddr, sizeof(k->daddr));
	if (is_echo) {
		k->sport = echo_id;
		k->dport = echo_id;
	} else if ((p->flags & ZT_PKT_L4) && zt_proto_has_ports(p->proto)) {
		k->sport = p->sport;
		k->dport = p->dport;
	}
}

static __always_inline void zt_ct_key_swap(struct zt_ct_key *r, const struct zt_ct_key *k)
{
	r->ifindex = k->ifindex;
	r->family = k->family;
	r->proto = k->proto;
	r->_pad = 0;
	__builtin_memcpy(r->saddr, k->daddr, sizeof(r->saddr));
	__builtin_memcpy(r->daddr, k->saddr, sizeof(r->daddr));
	r->sport = k->dport;
	r->dport = k->sport;
}

/*
 * Whether a packet with tuple k is likelier a reply than an original: a
 * TCP, UDP or SCTP packet from the lower port to the higher (a server
 * answering a client's ephemeral port). Only the order of the two lookups
 * follows it.
 */
static __always_inline __u32 zt_ct_reply_likely(const struct zt_ct_key *k)
{
	return zt_proto_has_ports(k->proto) && k->sport < k->dport;
}

/*
 * An entry idle for longer than its timeout, found for a packet in direction
 * d: that direction's last packet is read first, and the other direction's
 * line only when it is not recent enough (the other CPU writes that line).
 */
static __always_inline int zt_ct_expired(const struct zt_ct_val *v, __u32 d, __u8 proto, __u64 now)
{
	__u64 tmo = zt_ct_timeout(proto, v->state), last = v->d[d & 1].last_ns;

	if (now <= last || now - last <= tmo)
		return 0;
	last = v->d[(d & 1) ^ 1].last_ns;
	return now > last && now - last > tmo;
}

/* State of a flow created by a packet with these TCP flags. */
static __always_inline __u8 zt_ct_initial_state(__u8 proto, __u8 flags)
{
	if (proto != IPPROTO_TCP)
		return ZT_CT_NEW;
	if (flags & ZT_TCP_RST)
		return ZT_CT_CLOSED;
	if (flags & ZT_TCP_FIN)
		return ZT_CT_CLOSING;
	return ZT_CT_NEW;
}

/*
 * The TCP state after a packet with these flags in direction d (0 the
 * opener's, 1 the reply) that is not an RST or FIN. Established means the
 * handshake completed: the SYN-ACK came back (SYN_RECV) and then the
 * opener sent an ACK without SYN. Until then the entry is half-open and
 * keeps the short timeout, so the answered SYNs of a spoofed-source flood,
 * whose clients never send that ACK, age out in seconds. A flow picked up
 * mid-stream (its opener sent no bare SYN) is established by any answer.
 */
static __always_inline __u8 zt_ct_tcp_next(__u8 state, __u32 d, __u8 flags, __u8 opener_flags)
{
	if (state == ZT_CT_NEW && d) {
		if (flags & ZT_TCP_SYN)
			return (flags & ZT_TCP_ACK) ? ZT_CT_SYN_RECV : state;
		if ((opener_flags & (ZT_TCP_SYN | ZT_TCP_ACK)) != ZT_TCP_SYN)
			return ZT_CT_ESTABLISHED;
		return state;
	}
	if (state == ZT_CT_SYN_RECV && !d && (flags & (ZT_TCP_SYN | ZT_TCP_ACK)) == ZT_TCP_ACK)
		return ZT_CT_ESTABLISHED;
	return state;
}

/* Whether a packet matching no entry starts a flow (see the top of this file). */
static __always_inline int zt_ct_opens(__u8 proto, __u8 flags)
{
	return proto != IPPROTO_TCP || (flags & ZT_TCP_SYN) || !(flags & (ZT_TCP_FIN | ZT_TCP_RST));
}

static __always_inline __u16 zt_ct_sat16(__u16 v)
{
	return v == 0xffff ? v : v + 1;
}

/* The features of one packet in direction d (sizes, gaps, flag counts). */
static __always_inline void zt_ct_features(struct zt_ct_val *v, __u32 d, __u8 proto, __u8 flags,
					   __u32 len, __u32 payload, __u64 now)
{
	struct zt_ct_dir *w = &v->d[d & 1];
	__u64 last = w->last_ns;
	__u16 sz = len > 0xffff ? 0xffff : (__u16)len;

	w->size_sq += (__u64)len * len;
	if (sz < w->size_min)
		w->size_min = sz;
	if (sz > w->size_max)
		w->size_max = sz;
	if (last) {
		__u64 gap = now > last ? (now - last) >> ZT_CT_IAT_SHIFT : 0, sq;
		__u32 g = gap > 0xffffffffULL ? 0xffffffffu : (__u32)gap;

		sq = (__u64)g * g;
		w->iat_sum += g;
		w->iat_sq = w->iat_sq + sq < sq ? ~0ULL : w->iat_sq + sq;
		if (g < w->iat_min)
			w->iat_min = g;
		if (g > w->iat_max)
			w->iat_max = g;
	}
	w->last_ns = now;
	if (proto != IPPROTO_TCP)
		return;
	/* The tail's counters: written by the packets that carry these flags only. */
	d &= 1;
	if (flags & ZT_TCP_SYN)
		v->syn[d] = zt_ct_sat16(v->syn[d]);
	if (flags & ZT_TCP_FIN)
		v->fin[d] = zt_ct_sat16(v->fin[d]);
	if (flags & ZT_TCP_RST)
		v->rst[d] = zt_ct_sat16(v->rst[d]);
	if (flags & ZT_TCP_PSH)
		w->psh++;
	if ((flags & (ZT_TCP_SYN | ZT_TCP_FIN | ZT_TCP_RST | ZT_TCP_PSH | ZT_TCP_ACK)) ==
		    ZT_TCP_ACK &&
	    !payload)
		v->ack_only[d]++;
}

/* A new entry for a flow whose first packet this is (direction 0). */
static __always_inline void zt_ct_features_init(struct zt_ct_val *v, __u8 proto, __u8 flags,
						__u32 len, __u32 payload, __u64 now)
{
	v->d[0].size_min = ZT_CT_SIZE_UNSET;
	v->d[1].size_min = ZT_CT_SIZE_UNSET;
	v->d[0].iat_min = ZT_CT_IAT_UNSET;
	v->d[1].iat_min = ZT_CT_IAT_UNSET;
	zt_ct_features(v, 0, proto, flags, len, payload, now);
}

/* What zt_ct_account says the packet did. */
#define ZT_CT_ACC_HANDSHAKE 0x1 /* completed the TCP handshake */
#define ZT_CT_ACC_CLOSED 0x2 /* closed the TCP session (both FINs, or a reset) */

/*
 * Accounts a packet of an existing flow; d: 0 original direction, 1 reply.
 * Returns ZT_CT_ACC_* of what it did, 0 when nothing of that.
 */
static __always_inline int zt_ct_account(struct zt_ct_val *v, __u32 d, __u8 proto, __u8 flags,
					 __u32 len, __u32 payload, __u64 now)
{
	__u8 state = v->state, next = state;

	d &= 1;
	__sync_fetch_and_add(&v->d[d].packets, 1);
	__sync_fetch_and_add(&v->d[d].bytes, len);
	zt_ct_features(v, d, proto, flags, len, payload, now);
	if (proto == IPPROTO_TCP) {
		if ((v->flags_seen[d] & flags) != flags)
			v->flags_seen[d] |= flags;
		if (flags & ZT_TCP_RST)
			next = ZT_CT_CLOSED;
		else if (flags & ZT_TCP_FIN)
			next = (v->flags_seen[d ^ 1] & ZT_TCP_FIN) || state == ZT_CT_CLOSED ?
				       ZT_CT_CLOSED :
				       ZT_CT_CLOSING;
		else
			next = zt_ct_tcp_next(state, d, flags, v->flags_seen[0]);
	} else if (d && state == ZT_CT_NEW) {
		next = ZT_CT_ESTABLISHED;
	}
	if (next == state)
		return 0;
	v->state = next;
	if (state == ZT_CT_SYN_RECV && next == ZT_CT_ESTABLISHED) {
		v->hs_done = 1;
		v->held_ms = zt_ct_held_ms(v->first_ns, now);
		return ZT_CT_ACC_HANDSHAKE;
	}
	return next == ZT_CT_CLOSED ? ZT_CT_ACC_CLOSED : 0;
}

#endif /* ZT_BPF_CONNTRACK_H */
