/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-source and per-destination activity in two-row array sketches
 * (layout, hashing and semantics: include/ztagent.h, "Activity"). Arrays
 * and not hash maps: the verifier turns an array lookup into an address
 * computation, so a packet pays two cache lines per side and no hashing
 * beyond the address's own mix. This header updates cells, reports
 * threshold crossings and first contacts; limits are in ratelimit.h.
 */
#ifndef ZT_BPF_SKETCH_H
#define ZT_BPF_SKETCH_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/events.h"
#include "lib/guard.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ZT_SRC_ROW);
	__type(key, __u32);
	__type(value, struct zt_src_cell);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_sketch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ZT_DST_ROW);
	__type(key, __u32);
	__type(value, struct zt_dst_cell);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dst_sketch SEC(".maps");

/* Outcomes of each source's first contacts, at its source-sketch indexes ("Scan brake"). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ZT_SRC_ROW);
	__type(key, __u32);
	__type(value, struct zt_scan_cell);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} scan_cells SEC(".maps");

/* Sources the scan brake never drops (the daemon's never-block lists). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct zt_scan_exempt_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} scan_exempt SEC(".maps");

/* Per CPU: destination counts and bucket tokens not yet in dst_sketch (include/ztagent.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_DST_ROW);
	__type(key, __u32);
	__type(value, struct zt_dst_local);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dst_local SEC(".maps");

#define ZT_TCP_F_FIN 0x01
#define ZT_TCP_F_SYN 0x02
#define ZT_TCP_F_RST 0x04
#define ZT_TCP_F_PSH 0x08
#define ZT_TCP_F_ACK 0x10

/* What the activity stage knows about one packet. */
struct zt_act {
	__u64 jiffies;
	__u64 now; /* CLOCK_MONOTONIC ns, read only when something needs it (zt_act_now) */
	__u64 hs, hd; /* sketch hashes of source and destination */
	__u32 win;
	__u32 len; /* IP bytes */
	__u16 port; /* the destination port a probe names (0 for ICMP) */
	__u8 kind; /* enum zt_rl_kind of the protocol; ZT_RL_ALL for others */
	__u8 opening; /* opens something: counts in ports, hosts and contacts */
	__u8 ack_only;
	__u8 first_contact;
	__u8 over; /* source: kinds over their limit in both cells (this window or the last) */
	__u8 proto;
	__u8 src_due; /* the source's limits and signals are to be compared (zt_act_check_due) */
	__u8 dst_due; /* ... the destination's */
	__u8 _pad[2];
	__u32 probe_bit;
};

/* CLOCK_MONOTONIC ns for the rare paths, read once per packet at most. */
static __always_inline __u64 zt_act_now(struct zt_act *a)
{
	if (!a->now)
		a->now = zt_now();
	return a->now;
}

/* Fills the per-packet facts the cells need. */
static __always_inline void zt_act_classify(struct zt_act *a, const struct zt_pkt *p)
{
	int l4 = p->flags & ZT_PKT_L4;

	a->kind = ZT_RL_ALL;
	a->proto = p->proto;
	a->opening = 0;
	a->ack_only = 0;
	a->port = 0;
	if (!l4)
		return;
	switch (p->proto) {
	case IPPROTO_TCP: {
		__u8 f = p->tcp_flags & (ZT_TCP_F_SYN | ZT_TCP_F_ACK | ZT_TCP_F_RST | ZT_TCP_F_FIN);

		if (f == ZT_TCP_F_SYN) {
			a->kind = ZT_RL_SYN;
			a->opening = 1;
			a->port = p->dport;
		} else if (!(f & (ZT_TCP_F_ACK | ZT_TCP_F_RST))) {
			/*
			 * FIN, NULL, Xmas (FIN|PSH|URG) or SYN with FIN: a stealth
			 * scan's probe. No connection sends one (RFC 9293 3.1: once
			 * a connection is established, ACK is always sent); a closed
			 * port answers it with a reset, an open one not at all.
			 */
			a->opening = 1;
			a->port = p->dport;
		} else if (f == ZT_TCP_F_ACK && zt_tcp_payload(p) == 0) {
			a->ack_only = 1;
		}
		break;
	}
	case IPPROTO_UDP:
		a->kind = ZT_RL_UDP;
		/* A server's answer (well-known source port to an ephemeral one) opens nothing. */
		a->opening = !(p->sport < 1024 && p->dport >= 1024);
		a->port = p->dport;
		break;
	case IPPROTO_ICMP:
		a->kind = ZT_RL_ICMP;
		/* Echo and timestamp requests: what a ping sweep sends (nmap -PE, -PP). */
		a->opening = p->sport == ZT_ICMP_ECHO || p->sport == ZT_ICMP_TIMESTAMP;
		break;
	case IPPROTO_ICMPV6:
		a->kind = ZT_RL_ICMP;
		a->opening = p->sport == ZT_ICMPV6_ECHO_REQUEST;
		break;
	}
}

/* Where jiffies fall in their window, in 1/256 of it (zt_src_cell.first). */
static __always_inline __u8 zt_win_off8(__u64 jiffies, __u32 win_shift)
{
	__u32 sh = win_shift & 31, off = (__u32)(jiffies & ((1ULL << sh) - 1));

	return (__u8)(sh > 8 ? off >> (sh - 8) : off);
}

/* zt_win_off8 back into jiffies from the window's start. */
static __always_inline __u32 zt_win_off8_jiffies(__u8 off8, __u32 win_shift)
{
	__u32 sh = win_shift & 31;

	return sh > 8 ? (__u32)off8 << (sh - 8) : off8;
}

static __always_inline void zt_src_roll(struct zt_src_cell *c, __u32 win, __u8 off8)
{
	if (c->win == (__u16)win)
		return;
	c->first = off8;
	c->prev_over = (__u16)(win - c->win) == 1 ? c->over : 0;
	c->win = (__u16)win;
	c->count[0] = 0;
	c->count[1] = 0;
	c->count[2] = 0;
	c->count[3] = 0;
	c->bytes = 0;
	c->ack = 0;
	c->synack = 0;
	c->nports = 0;
	c->nhosts = 0;
	c->over = 0;
	c->reported = 0;
	c->ports = 0;
	c->hosts = 0;
	c->contacts = 0;
}

static __always_inline void zt_src_count_one(struct zt_src_cell *c, const struct zt_act *a)
{
	c->count[ZT_RL_ALL]++;
	/* Masked, not compared: the verifier keeps the bound of a mask. */
	if (a->kind != ZT_RL_ALL)
		c->count[a->kind & (ZT_RL_KINDS - 1)]++;
	c->bytes += a->len;
	if (a->ack_only && c->ack != 0xffff)
		c->ack++;
}

/*
 * A SYN-ACK the node sends the source of cells c0, c1 (tc_uplink): one of
 * its SYNs answered this window (zt_halfopen). A cell of another window is
 * left alone: the source's next packet starts its window.
 */
static __always_inline void zt_src_answered(struct zt_src_cell *c0, struct zt_src_cell *c1,
					    __u32 win)
{
	if (c0->win == (__u16)win && c0->synack != 0xffff)
		c0->synack++;
	if (c1->win == (__u16)win && c1->synack != 0xffff)
		c1->synack++;
}

static __always_inline void zt_src_open_one(struct zt_src_cell *c, __u64 hbit, __u64 pbit,
					    __u64 cbit)
{
	if (!(c->hosts & hbit)) {
		c->hosts |= hbit;
		c->nhosts++;
	}
	if (pbit && !(c->ports & pbit)) {
		c->ports |= pbit;
		c->nports++;
	}
	/* Written only when new: a line written less moves between CPUs less. */
	if (!(c->contacts & cbit))
		c->contacts |= cbit;
}

/*
 * 1 when the cell's limits and signals are to be compared: on every 16th
 * packet of its row-0 cell (a threshold is noticed at most 15 packets
 * late), and when a packet opened something new (a first contact).
 */
static __always_inline int zt_act_check_due(__u32 count0, const struct zt_act *a)
{
	return a->first_contact || (count0 & (ZT_CHECK_EVERY - 1)) == 0;
}

/*
 * Counts the packet in its source's two cells; sets a->first_contact and
 * a->over. Returns 1 when limits and signals are due (zt_act_check_due).
 */
static __always_inline int zt_src_update(struct zt_src_cell *c0, struct zt_src_cell *c1,
					 struct zt_act *a, const struct zt_guard_cfg *cfg)
{
	__u32 lim;
	__u8 k = a->kind, over, off8;
	int due;

	off8 = zt_win_off8(a->jiffies, cfg->win_shift);
	zt_src_roll(c0, a->win, off8);
	zt_src_roll(c1, a->win, off8);
	zt_src_count_one(c0, a);
	zt_src_count_one(c1, a);
	if (a->opening) {
		__u64 hbit = zt_addr_bit(a->hd), pbit = a->port ? zt_port_bit(a->port) : 0, cbit;

		a->probe_bit = zt_probe_bit(a->hd, a->port, a->proto);
		cbit = 1ULL << a->probe_bit;
		/* Seen before only when set in both cells: a collision may set one. */
		a->first_contact = !(c0->contacts & c1->contacts & cbit);
		zt_src_open_one(c0, hbit, pbit, cbit);
		zt_src_open_one(c1, hbit, pbit, cbit);
	}
	due = zt_act_check_due(c0->count[ZT_RL_ALL], a);
	if (due) {
		/* Over a limit: both cells at it (row 0 first, it rules most packets out). */
		lim = cfg->src_limit[ZT_RL_ALL];
		if (lim && c0->count[ZT_RL_ALL] >= lim && c1->count[ZT_RL_ALL] >= lim &&
		    !(c0->over & c1->over & (1 << ZT_RL_ALL))) {
			c0->over |= 1 << ZT_RL_ALL;
			c1->over |= 1 << ZT_RL_ALL;
		}
		if (k != ZT_RL_ALL) {
			k &= ZT_RL_KINDS - 1;
			lim = cfg->src_limit[k];
			if (lim && c0->count[k] >= lim && c1->count[k] >= lim &&
			    !(c0->over & c1->over & (1 << k))) {
				c0->over |= 1 << k;
				c1->over |= 1 << k;
			}
		}
	}
	over = (c0->over | c0->prev_over) & (c1->over | c1->prev_over);
	a->over = over & ((1 << ZT_RL_ALL) | (1 << k));
	return due;
}

static __always_inline void zt_dst_roll(struct zt_dst_cell *c, __u32 win, __u32 now_t)
{
	__u32 age;

	if (c->win == win)
		return;
	age = win - c->win;
	c->win = win;
	c->count[0] = 0;
	c->count[1] = 0;
	c->count[2] = 0;
	c->count[3] = 0;
	c->bytes = 0;
	c->ack = 0;
	c->challenged = 0;
	c->admitted = 0;
	c->nsrcs = 0;
	c->reported = 0;
	c->exhausted = 0;
	c->chal = (c->chal & 1) << 1;
	c->srcs = 0;
	if (age > 1) {
		/* Idle for a window or more: the buckets are full (see the cell). */
		c->tat[0] = now_t;
		c->tat[1] = now_t;
		c->tat[2] = now_t;
		c->tat[3] = now_t;
	}
}

/* This CPU's count of the packet for its destination. */
static __always_inline void zt_dst_count_local(struct zt_dst_local *l, const struct zt_act *a)
{
	l->count[ZT_RL_ALL]++;
	/* Masked, not compared: the verifier keeps the bound of a mask. */
	if (a->kind != ZT_RL_ALL)
		l->count[a->kind & (ZT_RL_KINDS - 1)]++;
	l->bytes += a->len;
	if (a->ack_only)
		l->ack++;
}

/* Adds this CPU's counts to a cell, when they are of the cell's window. */
static __always_inline void zt_dst_add(struct zt_dst_cell *c, const struct zt_dst_local *l)
{
	if (c->win != l->win)
		return;
	c->count[0] += l->count[0];
	c->count[1] += l->count[1];
	c->count[2] += l->count[2];
	c->count[3] += l->count[3];
	c->bytes += l->bytes;
	c->ack += l->ack;
}

/* Starts this CPU's counts over in win. */
static __always_inline void zt_dst_local_zero(struct zt_dst_local *l, __u32 win)
{
	l->win = win;
	l->count[0] = 0;
	l->count[1] = 0;
	l->count[2] = 0;
	l->count[3] = 0;
	l->bytes = 0;
	l->ack = 0;
}

/* A source new to the cell this window: its bit (a write only when it was clear). */
static __always_inline int zt_dst_src(struct zt_dst_cell *c, __u64 sbit)
{
	if (c->srcs & sbit)
		return 0;
	c->srcs |= sbit;
	c->nsrcs++;
	return 1;
}

/*
 * l, this CPU's entry at the destination's row-0 cell, made the
 * destination's own (cell1: its row-1 cell). Another destination's counts
 * there go to that one's cells first; its unspent tokens are given up.
 */
static __always_inline void zt_dst_own(struct zt_dst_cell *c0, struct zt_dst_local *l, __u32 cell1,
				       __u32 win)
{
	if (l->cell1 && l->count[ZT_RL_ALL]) {
		__u32 i = l->cell1 - 1;
		struct zt_dst_cell *o1 = bpf_map_lookup_elem(&dst_sketch, &i);

		zt_dst_add(c0, l);
		if (o1)
			zt_dst_add(o1, l);
	}
	zt_dst_local_zero(l, win);
	l->cell1 = cell1 + 1;
	l->srcs = 0;
	__builtin_memset(l->credit, 0, sizeof(l->credit));
}

/*
 * Counts the packet for its destination in this CPU's entry l and adds
 * the entry to the two cells every ZT_CHECK_EVERY packets. Returns 1 when
 * the destination's signals are due: at that addition, on a first contact,
 * or for a source new to the row-0 cell.
 */
static __always_inline int zt_dst_update(struct zt_dst_cell *c0, struct zt_dst_cell *c1,
					 struct zt_dst_local *l, const struct zt_act *a)
{
	__u32 now_t = (__u32)(a->jiffies << ZT_TAT_SHIFT), cell1 = zt_dst_cell1(a->hd);
	__u64 sbit = zt_addr_bit(a->hs);
	int due;

	/*
	 * The cells are read only when this CPU's entry cannot tell: at its
	 * first packet for the destination in a window (the cells move to it,
	 * a write only at the first packet of all), and for a source it has not
	 * seen there yet.
	 */
	if (l->cell1 != cell1 + 1 || l->win != a->win) {
		zt_dst_roll(c0, a->win, now_t);
		zt_dst_roll(c1, a->win, now_t);
		if (l->cell1 != cell1 + 1) {
			zt_dst_own(c0, l, cell1, a->win);
		} else {
			zt_dst_local_zero(l, a->win); /* the cells moved on: that window is over */
			l->srcs = 0;
		}
	}
	zt_dst_count_local(l, a);
	due = a->first_contact;
	if (!(l->srcs & sbit)) {
		due |= zt_dst_src(c0, sbit);
		zt_dst_src(c1, sbit);
		l->srcs |= sbit;
	}
	if (l->count[ZT_RL_ALL] >= ZT_CHECK_EVERY) {
		zt_dst_add(c0, l);
		zt_dst_add(c1, l);
		zt_dst_local_zero(l, a->win);
		due = 1;
	}
	return due;
}

static __always_inline __u32 zt_min32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/* Signals whose threshold a cell's counts reach (synack: 0 for a destination's). */
static __always_inline __u32 zt_sig_check(const struct zt_sig_thr *t, const __u32 *count,
					  __u32 bytes, __u32 ack, __u32 synack, __u8 distinct,
					  __u8 distinct2)
{
	__u32 syn = count[ZT_RL_SYN], s = 0;

	if (t->pkts && count[ZT_RL_ALL] >= t->pkts)
		s |= ZT_SIG_PKTS;
	if (t->bytes && bytes >= t->bytes)
		s |= ZT_SIG_BYTES;
	if (t->syn && syn >= t->syn)
		s |= ZT_SIG_SYN;
	if (t->halfopen && zt_halfopen(syn, synack, ack) >= t->halfopen)
		s |= ZT_SIG_HALFOPEN;
	if (t->udp && count[ZT_RL_UDP] >= t->udp)
		s |= ZT_SIG_UDP;
	if (t->icmp && count[ZT_RL_ICMP] >= t->icmp)
		s |= ZT_SIG_ICMP;
	if (t->distinct && distinct >= t->distinct)
		s |= ZT_SIG_DISTINCT;
	if (t->distinct2 && distinct2 >= t->distinct2)
		s |= ZT_SIG_DISTINCT2;
	return s;
}

/* An activity record's fields both kinds fill alike (e from zt_event_begin). */
static __always_inline void zt_activity_fill(struct zt_ev_activity *e, __u32 ifindex,
					     const struct zt_act *a, const struct zt_pkt *p,
					     __u32 sig, __u32 win_shift)
{
	e->ifindex = ifindex;
	e->win = a->win;
	e->signals = sig;
	e->elapsed = (__u32)(a->jiffies & ((1ULL << (win_shift & 31)) - 1));
	e->family = p->family;
	e->proto = p->proto;
}

/*
 * The packet counts of an activity record, the smaller of two cells' (a
 * source's or a destination's: count by kind, bytes, ACKs alone).
 */
static __always_inline void zt_activity_counts(struct zt_ev_activity *e, const __u32 *n0,
					       __u32 bytes0, __u32 ack0, const __u32 *n1,
					       __u32 bytes1, __u32 ack1)
{
	e->pkts = zt_min32(n0[ZT_RL_ALL], n1[ZT_RL_ALL]);
	e->bytes = zt_min32(bytes0, bytes1);
	e->syn = zt_min32(n0[ZT_RL_SYN], n1[ZT_RL_SYN]);
	e->ack = zt_min32(ack0, ack1);
	e->udp = zt_min32(n0[ZT_RL_UDP], n1[ZT_RL_UDP]);
	e->icmp = zt_min32(n0[ZT_RL_ICMP], n1[ZT_RL_ICMP]);
}

/* A source's counts this window into its activity record: the smaller of its two cells'. */
static __always_inline void zt_src_fill_counts(struct zt_ev_activity *e,
					       const struct zt_src_cell *c0,
					       const struct zt_src_cell *c1)
{
	e->distinct = c0->nports < c1->nports ? c0->nports : c1->nports;
	e->distinct2 = c0->nhosts < c1->nhosts ? c0->nhosts : c1->nhosts;
	e->synack = zt_min32(c0->synack, c1->synack);
	zt_activity_counts(e, c0->count, c0->bytes, c0->ack, c1->count, c1->bytes, c1->ack);
}

/*
 * A source's signals: row 0 alone rules out most packets; a signal goes out
 * once per window unless both cells have reported it already.
 */
static __always_inline void zt_src_signal(struct zt_src_cell *c0, struct zt_src_cell *c1,
					  struct zt_act *a, const struct zt_pkt *p,
					  const struct zt_guard_cfg *cfg, __u32 ifindex)
{
	const struct zt_sig_thr *t = &cfg->sig_src;
	struct zt_ev_activity *e;
	__u32 sig, first;

	sig = zt_sig_check(t, c0->count, c0->bytes, c0->ack, c0->synack, c0->nports, c0->nhosts);
	sig &= ~(__u32)(c0->reported & c1->reported);
	if (!sig)
		return;
	/* Count-min: the other cell must say so too. */
	sig &= zt_sig_check(t, c1->count, c1->bytes, c1->ack, c1->synack, c1->nports, c1->nhosts);
	if (!sig)
		return;
	c0->reported |= (__u8)sig;
	c1->reported |= (__u8)sig;
	if (!zt_act_rate_ok(ZT_AR_SIGNAL, cfg->signal_rate, zt_act_now(a)))
		return;
	e = zt_event_begin(ZT_EV_SRC_ACTIVITY, sizeof(*e));
	if (!e)
		return;
	zt_activity_fill(e, ifindex, a, p, sig, cfg->win_shift);
	/*
	 * From the source's first packet this window (the earlier cell's, so
	 * a collision can only lower the rate), not from the window's start.
	 */
	first = zt_win_off8_jiffies(c0->first < c1->first ? c0->first : c1->first, cfg->win_shift);
	e->elapsed = e->elapsed > first ? e->elapsed - first : 0;
	e->over = a->over | ((c0->over | c0->prev_over) & (c1->over | c1->prev_over));
	__builtin_memcpy(e->addr, p->saddr, sizeof(e->addr));
	__builtin_memcpy(e->peer, p->daddr, sizeof(e->peer));
	zt_src_fill_counts(e, c0, c1);
	zt_event_end(e);
	zt_act_stat(ZT_AS_SRC_SIGNALS);
}

static __always_inline void zt_dst_signal(struct zt_dst_cell *c0, struct zt_dst_cell *c1,
					  struct zt_act *a, const struct zt_pkt *p,
					  const struct zt_guard_cfg *cfg, __u32 ifindex)
{
	const struct zt_sig_thr *t = &cfg->sig_dst;
	struct zt_ev_activity *e;
	__u32 sig;

	sig = zt_sig_check(t, c0->count, c0->bytes, c0->ack, 0, c0->nsrcs, 0);
	sig &= ~(__u32)(c0->reported & c1->reported);
	if (!sig)
		return;
	sig &= zt_sig_check(t, c1->count, c1->bytes, c1->ack, 0, c1->nsrcs, 0);
	if (!sig)
		return;
	c0->reported |= (__u8)sig;
	c1->reported |= (__u8)sig;
	if (!zt_act_rate_ok(ZT_AR_SIGNAL, cfg->signal_rate, zt_act_now(a)))
		return;
	e = zt_event_begin(ZT_EV_DST_ACTIVITY, sizeof(*e));
	if (!e)
		return;
	zt_activity_fill(e, ifindex, a, p, sig, cfg->win_shift);
	e->over = c0->exhausted & c1->exhausted;
	e->distinct = c0->nsrcs < c1->nsrcs ? c0->nsrcs : c1->nsrcs;
	__builtin_memcpy(e->addr, p->daddr, sizeof(e->addr));
	__builtin_memcpy(e->peer, p->saddr, sizeof(e->peer));
	zt_activity_counts(e, c0->count, c0->bytes, c0->ack, c1->count, c1->bytes, c1->ack);
	e->challenged = zt_min32(c0->challenged, c1->challenged);
	e->admitted = zt_min32(c0->admitted, c1->admitted);
	zt_event_end(e);
	zt_act_stat(ZT_AS_DST_SIGNALS);
}

/* A first contact: the probe event, and its bit in pending for tc_uplink's outcome. */
static __always_inline void zt_probe_emit(struct zt_src_cell *c0, struct zt_src_cell *c1,
					  struct zt_act *a, const struct zt_pkt *p,
					  const struct zt_guard_cfg *cfg, __u32 ifindex,
					  __u8 action, __u16 reason)
{
	struct zt_ev_probe *e;

	if (action == ZT_ACT_PASS) {
		__u64 pb = 1ULL << (a->probe_bit & 63);

		if (!(c0->pending & pb))
			c0->pending |= pb;
		if (!(c1->pending & pb))
			c1->pending |= pb;
	}
	if (!zt_act_rate_ok(ZT_AR_PROBE, cfg->probe_rate, zt_act_now(a)))
		return;
	e = zt_event_begin(ZT_EV_PROBE, sizeof(*e));
	if (!e)
		return;
	e->ifindex = ifindex;
	e->win = a->win;
	e->family = p->family;
	e->proto = p->proto;
	e->action = action;
	e->tcp_flags = p->tcp_flags;
	e->reason = reason;
	e->sport = p->sport;
	e->dport = p->dport;
	__builtin_memcpy(e->saddr, p->saddr, sizeof(e->saddr));
	__builtin_memcpy(e->daddr, p->daddr, sizeof(e->daddr));
	zt_event_end(e);
	zt_act_stat(ZT_AS_PROBES);
}

/* A cell's failures beyond its opens in window win (0 for a cell of another window). */
static __always_inline __u32 zt_scan_net(const struct zt_scan_cell *c, __u32 win)
{
	if (c->win != win || c->failed <= c->open)
		return 0;
	return (__u32)c->failed - c->open;
}

static __always_inline void zt_scan_roll(struct zt_scan_cell *c, __u32 win)
{
	if (c->win == win)
		return;
	c->win = win;
	c->failed = 0;
	c->open = 0;
	c->resets = 0;
	c->reported = 0;
}

/* tc_uplink: one outcome of a source's first contact (hs: its sketch hash), in its cells. */
static __always_inline void zt_scan_count(__u64 hs, __u32 win, int failed)
{
	struct zt_scan_cell *c;
	__u32 i, row;

	for (row = 0; row < 2; row++) {
		i = row ? zt_src_cell1(hs) : zt_src_cell0(hs);
		c = bpf_map_lookup_elem(&scan_cells, &i);
		if (!c)
			return;
		zt_scan_roll(c, win);
		if (failed) {
			if (c->failed < 0xffff)
				c->failed++;
		} else if (c->open < 0xffff) {
			c->open++;
		}
	}
}

/*
 * A segment that belonged to no connection, of the source's (hs: its
 * sketch hash), counted in its cells for the window: tc_uplink's TCP reset
 * that the node sent it and that answered none of its probes, or
 * tc_endpoint's segment of its with FIN or RST that found no flow on its
 * way into an endpoint (zt_out_of_state). Returns the smaller count when
 * the source's ZT_SIG_RESETS is due (both cells at thr, and not both
 * reported it this window), else 0.
 */
static __always_inline __u32 zt_scan_reset(__u64 hs, __u32 win, __u32 thr)
{
	struct zt_scan_cell *c0, *c1;
	__u32 i, n;

	i = zt_src_cell0(hs);
	c0 = bpf_map_lookup_elem(&scan_cells, &i);
	i = zt_src_cell1(hs);
	c1 = bpf_map_lookup_elem(&scan_cells, &i);
	if (!c0 || !c1)
		return 0;
	zt_scan_roll(c0, win);
	zt_scan_roll(c1, win);
	c0->resets++;
	c1->resets++;
	n = zt_min32(c0->resets, c1->resets);
	if (n < thr || (c0->reported & c1->reported))
		return 0;
	c0->reported = 1;
	c1->reported = 1;
	return n;
}

/*
 * ZT_SIG_RESETS for prober (a source n of whose segments belonged to no
 * connection this window, zt_scan_reset); target: the address the last
 * one concerned. c0 and c1 are its source cells, whose counts go with it
 * when they are of this window.
 */
static __always_inline void zt_reset_signal(const __u32 *prober, const __u32 *target, __u8 family,
					    const struct zt_src_cell *c0,
					    const struct zt_src_cell *c1,
					    const struct zt_guard_cfg *cfg, __u32 ifindex,
					    __u64 jiffies, __u32 win, __u32 n)
{
	struct zt_ev_activity *e;
	__u32 first;

	if (!zt_act_rate_ok(ZT_AR_SIGNAL, cfg->signal_rate, zt_now()))
		return;
	e = zt_event_begin(ZT_EV_SRC_ACTIVITY, sizeof(*e));
	if (!e)
		return;
	e->ifindex = ifindex;
	e->win = win;
	e->signals = ZT_SIG_RESETS;
	e->elapsed = (__u32)(jiffies & ((1ULL << (cfg->win_shift & 31)) - 1));
	e->family = family;
	e->proto = IPPROTO_TCP;
	__builtin_memcpy(e->addr, prober, sizeof(e->addr));
	__builtin_memcpy(e->peer, target, sizeof(e->peer));
	e->resets = n;
	if (c0->win == (__u16)win && c1->win == (__u16)win) {
		/* The rate from the source's first packet this window, as zt_src_signal's. */
		first = zt_win_off8_jiffies(c0->first < c1->first ? c0->first : c1->first,
					    cfg->win_shift);
		e->elapsed = e->elapsed > first ? e->elapsed - first : 0;
		zt_src_fill_counts(e, c0, c1);
	}
	zt_event_end(e);
	zt_act_stat(ZT_AS_SRC_SIGNALS);
}

/*
 * A TCP segment from src to dst that belonged to no connection, seen
 * where it arrived (tc_endpoint: FIN or RST, no flow, into an endpoint),
 * counted with the resets the node sends (zt_scan_reset), and signalled
 * when due: an RST flood, or a FIN/ACK flood whose endpoint's resets the
 * policy keeps in (neither ever reaches tc_uplink as a reset). While the
 * stage and detection.flood.out_of_state are on.
 */
static __always_inline void zt_out_of_state(const struct zt_guard_cfg *cfg, __u8 family,
					    const __u32 *src, const __u32 *dst, __u32 ifindex)
{
	struct zt_src_cell *c0, *c1;
	__u64 hs, jiffies;
	__u32 i, win, n;

	if (!(cfg->flags & ZT_GCF_ACTIVITY) || !cfg->sig_src.resets)
		return;
	hs = zt_sketch_hash(src, family, cfg->seed);
	jiffies = bpf_jiffies64();
	win = (__u32)(jiffies >> (cfg->win_shift & 31));
	n = zt_scan_reset(hs, win, cfg->sig_src.resets);
	if (!n)
		return;
	i = zt_src_cell0(hs);
	c0 = bpf_map_lookup_elem(&src_sketch, &i);
	i = zt_src_cell1(hs);
	c1 = bpf_map_lookup_elem(&src_sketch, &i);
	if (c0 && c1)
		zt_reset_signal(src, dst, family, c0, c1, cfg, ifindex, jiffies, win, n);
}

/*
 * 1 when a first contact of this source is to be dropped by the scan
 * brake: both its cells count cfg->scan_brake failures beyond the opens
 * this window (count-min: a source that shares one cell with a scanner is
 * not braked), and it is not exempt.
 */
static __always_inline int zt_scan_braked(const struct zt_pkt *p, const struct zt_act *a,
					  const struct zt_guard_cfg *cfg)
{
	struct zt_scan_exempt_key k = {};
	struct zt_scan_cell *c0, *c1;
	__u32 i;

	i = zt_src_cell0(a->hs);
	c0 = bpf_map_lookup_elem(&scan_cells, &i);
	i = zt_src_cell1(a->hs);
	c1 = bpf_map_lookup_elem(&scan_cells, &i);
	if (!c0 || !c1 || !cfg->scan_brake || zt_scan_net(c0, a->win) < cfg->scan_brake ||
	    zt_scan_net(c1, a->win) < cfg->scan_brake)
		return 0;
	k.prefixlen = p->family == 4 ? 64 : 160;
	k.family = p->family;
	__builtin_memcpy(k.addr, p->saddr, sizeof(k.addr));
	return !bpf_map_lookup_elem(&scan_exempt, &k);
}

#endif /* ZT_BPF_SKETCH_H */
