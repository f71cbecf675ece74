// SPDX-License-Identifier: GPL-2.0-only
/* Sketch-based flood detection per source and per destination (see flood.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/dtable.h"
#include "detect/flood.h"

/* Sketch key: family, role, kind and the address. */
struct fkey {
	uint8_t family, role, kind, _pad;
	uint8_t addr[16];
};

struct decided {
	struct fkey k;
};

struct zt_flood {
	struct zt_flood_params p;
	struct zt_sketch sk;
	struct zt_dtable decided;
	uint64_t win_start;
	struct zt_flood_stats st;
};

static const char *const kind_names[] = { "syn", "udp", "icmp", "all", "out-of-state" };

const char *zt_flood_kind_name(unsigned int k)
{
	return k < ZT_FLOOD_KINDS ? kind_names[k] : k == ZT_FLOOD_SYN_DONE ? "syn-done" : "?";
}

void zt_flood_defaults(struct zt_flood_params *p)
{
	static const uint32_t src[ZT_FLOOD_KINDS] = { 2000, 20000, 500, 0, 5000 };

	memset(p, 0, sizeof(*p));
	p->window_ns = 100000000ULL;
	for (int k = 0; k < ZT_FLOOD_KINDS; k++) {
		p->src_rate[k] = src[k];
		p->dst_rate[k] = src[k] * 10;
	}
	p->depth = 4;
	p->width = 4096;
	p->max_decided = 4096;
}

int zt_flood_new(const struct zt_flood_params *p, struct zt_flood **out)
{
	struct zt_flood *f;
	int r;

	*out = NULL;
	if (!p->window_ns || !p->max_decided)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->p = *p;
	r = zt_sketch_init(&f->sk, p->depth, p->width);
	if (!r)
		r = zt_dtable_init(&f->decided, p->max_decided, sizeof(struct fkey),
				   sizeof(struct decided), 0xf100d);
	if (r) {
		zt_flood_free(f);
		return r;
	}
	*out = f;
	return 0;
}

void zt_flood_free(struct zt_flood *f)
{
	if (!f)
		return;
	zt_sketch_free(&f->sk);
	zt_dtable_free(&f->decided);
	free(f);
}

static void roll(struct zt_flood *f, uint64_t ts)
{
	if (f->win_start && ts < f->win_start + f->p.window_ns && ts >= f->win_start)
		return;
	/* A new window (or the clock went back: start over). */
	zt_sketch_reset(&f->sk);
	zt_dtable_clear(&f->decided);
	f->win_start = ts - ts % f->p.window_ns;
	f->st.windows++;
}

static float score_of(double value, double thr)
{
	return (float)(value / (value + thr / 4));
}

static void fill(struct zt_flood *f, struct zt_decision *d, const struct fkey *k, uint64_t count,
		 double thr, uint64_t first_ns, uint64_t ts, uint64_t window_ns)
{
	char a[64];

	zt_decision_init(d, ZT_THREAT_FLOOD, (enum zt_subject_role)k->role, k->family, k->addr, ts);
	d->score = score_of((double)count, thr);
	d->first_ns = first_ns;
	d->window_ns = window_ns;
	d->value = (double)count;
	d->threshold = thr;
	d->packets = count;
	d->proto = k->kind == ZT_FLOOD_SYN || k->kind == ZT_FLOOD_OUT_OF_STATE ? 6 :
		   k->kind == ZT_FLOOD_UDP				       ? 17 :
		   k->kind == ZT_FLOOD_ICMP ? (k->family == 6 ? 58 : 1) :
					      0;
	snprintf(d->subtype, sizeof(d->subtype), "%s", kind_names[k->kind]);
	snprintf(d->evidence, sizeof(d->evidence),
		 "%s %s %s: %llu %s in %.3fs of a %.3fs window (threshold %.0f per window, %.0f/s)",
		 kind_names[k->kind], k->role == ZT_ROLE_SOURCE ? "from" : "to",
		 zt_addr_str(k->family, k->addr, a, sizeof(a)), (unsigned long long)count,
		 k->kind == ZT_FLOOD_SYN	  ? "SYNs without a completed handshake" :
		 k->kind == ZT_FLOOD_OUT_OF_STATE ? "TCP segments of no connection" :
						    "packets",
		 (double)(ts - first_ns) / 1e9, (double)window_ns / 1e9, thr,
		 thr * 1e9 / (double)window_ns);
}

/* Counts n for one key; 1 and *d when it crossed its threshold in this window. */
static int count(struct zt_flood *f, uint8_t family, uint8_t role, const uint8_t *addr,
		 enum zt_flood_kind kind, uint32_t n, uint64_t ts, struct zt_decision *d)
{
	struct fkey k;
	uint32_t rate, have, done = 0;
	double thr;
	bool created;

	memset(&k, 0, sizeof(k));
	k.family = family;
	k.role = role;
	k.kind = (uint8_t)kind;
	memcpy(k.addr, addr, zt_fam_len(family));
	have = zt_sketch_add(&f->sk, &k, sizeof(k), n);
	if (kind == ZT_FLOOD_SYN_DONE)
		return 0;
	rate = role == ZT_ROLE_SOURCE ? f->p.src_rate[kind] : f->p.dst_rate[kind];
	if (!rate)
		return 0;
	if (kind == ZT_FLOOD_SYN) {
		struct fkey kd = k;

		kd.kind = ZT_FLOOD_SYN_DONE;
		done = zt_sketch_estimate(&f->sk, &kd, sizeof(kd));
		have = have > done ? have - done : 0;
	}
	thr = (double)rate * (double)f->p.window_ns / 1e9;
	if ((double)have < thr || zt_dtable_find(&f->decided, &k))
		return 0;
	if (!zt_dtable_get(&f->decided, &k, &created)) {
		/* Too many floods at once to remember: decide anyway, every time. */
		f->st.undecided_full++;
	}
	fill(f, d, &k, have, thr, f->win_start, ts, f->p.window_ns);
	if (role == ZT_ROLE_SOURCE)
		f->st.decisions_src++;
	else
		f->st.decisions_dst++;
	return 1;
}

int zt_flood_add(struct zt_flood *f, uint8_t family, const uint8_t *src, const uint8_t *dst,
		 enum zt_flood_kind kind, uint32_t n, uint64_t ts_ns, struct zt_decision d[2])
{
	int nd = 0;

	if ((family != 4 && family != 6) || kind > ZT_FLOOD_SYN_DONE || !n)
		return 0;
	roll(f, ts_ns);
	f->st.packets += n;
	if (src && count(f, family, ZT_ROLE_SOURCE, src, kind, n, ts_ns, &d[nd]))
		nd++;
	if (dst && count(f, family, ZT_ROLE_DESTINATION, dst, kind, n, ts_ns, &d[nd]))
		nd++;
	return nd;
}

int zt_flood_sample(struct zt_flood *f, const struct zt_rate_sample *s, struct zt_decision *d)
{
	struct fkey k;
	uint64_t span;
	uint32_t rate;
	double thr;

	if ((s->family != 4 && s->family != 6) || s->kind >= ZT_FLOOD_KINDS || !s->window_ns ||
	    s->role > ZT_ROLE_DESTINATION)
		return 0;
	rate = s->role == ZT_ROLE_SOURCE ? f->p.src_rate[s->kind] : f->p.dst_rate[s->kind];
	if (!rate)
		return 0;
	/*
	 * At least what zt_flood_add asks of a key, rate x window, however
	 * short the span the kernel counted over: a rate from a few ms is a
	 * burst's, and a client that opens its connections at once to a server
	 * whose full accept queue drops their SYNs (ab -c 200: 120 half-open
	 * in 44 ms, 2700/s) is no flood of 2000/s.
	 */
	span = s->window_ns > f->p.window_ns ? s->window_ns : f->p.window_ns;
	thr = (double)rate * (double)span / 1e9;
	if ((double)s->count < thr)
		return 0;
	memset(&k, 0, sizeof(k));
	k.family = s->family;
	k.role = s->role;
	k.kind = s->kind;
	memcpy(k.addr, s->addr, zt_fam_len(s->family));
	fill(f, d, &k, s->count, thr, s->ts_ns > s->window_ns ? s->ts_ns - s->window_ns : 0,
	     s->ts_ns, span);
	if (s->role == ZT_ROLE_SOURCE)
		f->st.decisions_src++;
	else
		f->st.decisions_dst++;
	return 1;
}

void zt_flood_get_stats(const struct zt_flood *f, struct zt_flood_stats *st)
{
	*st = f->st;
}
