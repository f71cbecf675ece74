// SPDX-License-Identifier: GPL-2.0-only
/* Exfiltration: per-workload byte baselines and new destinations (see exfil.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/dtable.h"
#include "detect/exfil.h"

struct wkey {
	uint64_t h; /* hash of the workload name */
};

struct wstate {
	struct wkey k;
	char name[ZT_WORKLOAD_MAX];
	uint8_t family, src[16];
	uint64_t bin_start, bin_bytes, bin_packets, bin_new_bytes, bin_first_ns;
	bool decided_volume, decided_new;
	uint32_t intervals; /* active intervals learned */
	double mean, var;
	uint32_t dests;
	uint8_t new_family, new_dst[16]; /* the first new destination of this interval */
};

struct dkey {
	uint64_t h;
	uint8_t family, _pad[7];
	uint8_t addr[16];
};

struct dent {
	struct dkey k;
};

struct zt_exfil {
	struct zt_exfil_params p;
	double z;
	struct zt_dtable w, d;
	struct zt_exfil_stats st;
};

void zt_exfil_defaults(struct zt_exfil_params *p)
{
	*p = (struct zt_exfil_params){
		.interval_ns = 60000000000ULL,
		.target_fpr = 0.001,
		.ewma_alpha = 0.05,
		.sd_floor = 0.5,
		.warmup = 10,
		.min_bytes = 8ULL << 20,
		.new_dest_bytes = 32ULL << 20,
		.max_workloads = 16384,
		.max_dests = 262144,
		.max_dests_per_workload = 4096,
	};
}

int zt_exfil_new(const struct zt_exfil_params *p, struct zt_exfil **out)
{
	struct zt_exfil *x;
	int r;

	*out = NULL;
	if (!p->interval_ns || !(p->target_fpr > 0 && p->target_fpr < 0.5) ||
	    !(p->ewma_alpha > 0 && p->ewma_alpha <= 1) || !(p->sd_floor > 0) || !p->max_workloads ||
	    !p->max_dests)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->p = *p;
	x->z = zt_normal_quantile_upper(p->target_fpr);
	r = zt_dtable_init(&x->w, p->max_workloads, sizeof(struct wkey), sizeof(struct wstate),
			   0xe8f1);
	if (!r)
		r = zt_dtable_init(&x->d, p->max_dests, sizeof(struct dkey), sizeof(struct dent),
				   0xe8f2);
	if (r) {
		zt_exfil_free(x);
		return r;
	}
	*out = x;
	return 0;
}

void zt_exfil_free(struct zt_exfil *x)
{
	if (!x)
		return;
	zt_dtable_free(&x->w);
	zt_dtable_free(&x->d);
	free(x);
}

static double sd_of(const struct zt_exfil *x, const struct wstate *w)
{
	double sd = sqrt(w->var > 0 ? w->var : 0);

	return sd > x->p.sd_floor ? sd : x->p.sd_floor;
}

/* The interval ends: an unremarkable one teaches the baseline. */
static void close_bin(struct zt_exfil *x, struct wstate *w)
{
	if (w->bin_bytes && !w->decided_volume && !w->decided_new) {
		double v = log1p((double)w->bin_bytes);

		if (!w->intervals) {
			w->mean = v;
			w->var = 0;
		} else {
			double a = x->p.ewma_alpha, dlt = v - w->mean;

			/* Until the EWMA has seen about 1/alpha intervals, a plain running mean. */
			if (w->intervals < 1.0 / a)
				a = 1.0 / (w->intervals + 1);
			w->mean += a * dlt;
			w->var = (1 - a) * (w->var + a * dlt * dlt);
		}
		w->intervals++;
		x->st.intervals++;
	}
	w->bin_bytes = w->bin_packets = w->bin_new_bytes = 0;
	w->bin_first_ns = 0;
	w->decided_volume = w->decided_new = false;
}

static void roll(struct zt_exfil *x, struct wstate *w, uint64_t ts)
{
	uint64_t start = ts - ts % x->p.interval_ns;

	if (w->bin_start == start)
		return;
	if (w->bin_start)
		close_bin(x, w);
	w->bin_start = start;
}

static const char *mib(uint64_t b, char *buf, size_t n)
{
	if (b >= (1ULL << 20))
		snprintf(buf, n, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, n, "%.1f KiB", (double)b / 1024);
	return buf;
}

static void base_decision(struct zt_exfil *x, const struct wstate *w, const struct zt_egress *e,
			  struct zt_decision *d, const char *subtype)
{
	zt_decision_init(d, ZT_THREAT_EXFIL, ZT_ROLE_SOURCE, w->family, w->src, e->ts_ns);
	d->first_ns = w->bin_first_ns ? w->bin_first_ns : e->ts_ns;
	d->window_ns = x->p.interval_ns;
	d->bytes = w->bin_bytes;
	d->packets = w->bin_packets;
	snprintf(d->workload, sizeof(d->workload), "%s", w->name);
	snprintf(d->subtype, sizeof(d->subtype), "%s", subtype);
}

int zt_exfil_observe(struct zt_exfil *x, const struct zt_egress *e, struct zt_decision d[2])
{
	struct wkey wk = { .h = zt_detect_hash(e->workload, strlen(e->workload), 0xe8) };
	struct wstate *w;
	struct dkey dk;
	bool created, new_dest = false;
	int nd = 0;

	x->st.observations++;
	if ((e->family != 4 && e->family != 6) || !e->workload[0])
		return 0;
	w = zt_dtable_get(&x->w, &wk, &created);
	if (!w) {
		x->st.dropped++;
		return 0;
	}
	if (created) {
		snprintf(w->name, sizeof(w->name), "%s", e->workload);
		w->bin_start = e->ts_ns - e->ts_ns % x->p.interval_ns;
	}
	w->family = e->family;
	memcpy(w->src, e->src, 16);
	roll(x, w, e->ts_ns);
	if (!w->bin_first_ns)
		w->bin_first_ns = e->ts_ns;
	w->bin_bytes += e->bytes;
	w->bin_packets += e->packets;
	memset(&dk, 0, sizeof(dk));
	dk.h = wk.h;
	dk.family = e->family;
	memcpy(dk.addr, e->dst, zt_fam_len(e->family));
	if (!zt_dtable_find(&x->d, &dk)) {
		new_dest = true;
		if (w->dests < x->p.max_dests_per_workload && zt_dtable_get(&x->d, &dk, &created))
			w->dests++;
		if (!w->bin_new_bytes) {
			w->new_family = e->family;
			memcpy(w->new_dst, e->dst, 16);
		}
	}
	/*
	 * Bytes to a destination that was new in this interval count as new
	 * for the rest of it: the first packet of a transfer teaches the set.
	 */
	if (new_dest || (w->bin_new_bytes && !memcmp(w->new_dst, e->dst, 16)))
		w->bin_new_bytes += e->bytes;
	if (w->intervals < x->p.warmup)
		return 0;
	if (!w->decided_volume && w->bin_bytes >= x->p.min_bytes) {
		double v = log1p((double)w->bin_bytes), sd = sd_of(x, w);
		double thr = w->mean + x->z * sd;

		if (v > thr) {
			struct zt_decision *o = &d[nd++];
			double zs = (v - w->mean) / sd;
			char a[24], b[24], c[24];

			base_decision(x, w, e, o, "volume");
			o->score = (float)(1 - 0.5 * erfc(zs / sqrt(2)));
			o->value = v;
			o->threshold = thr;
			snprintf(
				o->evidence, sizeof(o->evidence),
				"%.128s sent %s to the world in %.0fs of a %.0fs interval; its baseline "
				"is about %s (ln bytes mean %.2f sd %.2f over %u intervals), the "
				"threshold mean + %.2f sd = %s for a false-positive rate of %g",
				w->name, mib(w->bin_bytes, a, sizeof(a)),
				(double)(e->ts_ns - o->first_ns) / 1e9,
				(double)x->p.interval_ns / 1e9,
				mib((uint64_t)expm1(w->mean), b, sizeof(b)), w->mean, sd,
				w->intervals, x->z, mib((uint64_t)expm1(thr), c, sizeof(c)),
				x->p.target_fpr);
			w->decided_volume = true;
			x->st.decisions_volume++;
		}
	}
	if (!w->decided_new && w->bin_new_bytes >= x->p.new_dest_bytes) {
		struct zt_decision *o = &d[nd++];
		char a[24], b[24], dst[64];

		base_decision(x, w, e, o, "new-destination");
		memcpy(o->peer, w->new_dst, 16);
		o->has_peer = true;
		o->score = (float)((double)w->bin_new_bytes /
				   ((double)w->bin_new_bytes + (double)x->p.new_dest_bytes / 4));
		o->value = (double)w->bin_new_bytes;
		o->threshold = (double)x->p.new_dest_bytes;
		snprintf(
			o->evidence, sizeof(o->evidence),
			"%.128s sent %s in one interval to destinations it never used before (first: "
			"%s; %u known destinations over %u intervals; threshold %s)",
			w->name, mib(w->bin_new_bytes, a, sizeof(a)),
			zt_addr_str(w->new_family, w->new_dst, dst, sizeof(dst)), w->dests,
			w->intervals, mib(x->p.new_dest_bytes, b, sizeof(b)));
		w->decided_new = true;
		x->st.decisions_new_dest++;
	}
	return nd;
}

void zt_exfil_tick(struct zt_exfil *x, uint64_t now_ns)
{
	size_t pos = 0;
	struct wstate *w;

	while ((w = zt_dtable_next(&x->w, &pos)))
		if (w->bin_start + x->p.interval_ns <= now_ns && w->bin_bytes) {
			close_bin(x, w);
			w->bin_start = now_ns - now_ns % x->p.interval_ns;
		}
}

void zt_exfil_get_stats(const struct zt_exfil *x, struct zt_exfil_stats *st)
{
	*st = x->st;
	st->workloads = x->w.n;
	st->dests = x->d.n;
}

int zt_exfil_baseline(const struct zt_exfil *x, const char *workload, double *mean, double *sd,
		      uint32_t *intervals)
{
	struct wkey wk = { .h = zt_detect_hash(workload, strlen(workload), 0xe8) };
	const struct wstate *w = zt_dtable_find(&x->w, &wk);

	if (!w)
		return -ENOENT;
	*mean = w->mean;
	*sd = sd_of(x, w);
	*intervals = w->intervals;
	return 0;
}
