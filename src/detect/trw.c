// SPDX-License-Identifier: GPL-2.0-only
/* Threshold random walk scan detection (see trw.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/dtable.h"
#include "detect/trw.h"

/* Per source: the horizontal walk. */
struct src_key {
	uint8_t family;
	uint8_t _pad[3];
	uint8_t addr[16];
};

struct walk {
	double llr;
	uint32_t trials, failures;
	uint64_t first_ns, last_ns;
};

struct src_ent {
	struct src_key k;
	struct walk w;
	uint32_t contacts; /* remembered first contacts */
	uint32_t _pad;
	uint64_t last_ns;
};

/* Per (source, destination): the vertical walk. */
struct pair_key {
	uint8_t family;
	uint8_t _pad[3];
	uint8_t src[16], dst[16];
};

struct pair_ent {
	struct pair_key k;
	struct walk w;
};

/* A remembered first contact: a host (port 0, proto 0, kind 0) or a service (kind 1). */
struct contact_key {
	uint8_t family, kind, proto, _pad;
	uint16_t dport, _pad2;
	uint8_t src[16], dst[16];
};

struct contact_ent {
	struct contact_key k;
	uint64_t last_ns;
};

struct zt_trw {
	struct zt_trw_params p;
	double up, down, s_ok, s_fail;
	struct zt_dtable srcs, pairs, contacts;
	struct zt_trw_stats st;
};

void zt_trw_defaults(struct zt_trw_params *p)
{
	*p = (struct zt_trw_params){
		.theta0 = 0.8,
		.theta1 = 0.2,
		.alpha = 0.01,
		.beta = 0.99,
		.max_sources = 65536,
		.max_pairs = 65536,
		.max_contacts = 4096,
		.idle_ns = 600ULL * 1000000000ULL,
	};
}

int zt_trw_new(const struct zt_trw_params *p, struct zt_trw **out)
{
	struct zt_trw *t;
	size_t ncontacts;
	int r;

	*out = NULL;
	if (!(p->theta1 > 0 && p->theta1 < p->theta0 && p->theta0 < 1 && p->alpha > 0 &&
	      p->alpha < p->beta && p->beta < 1) ||
	    !p->max_sources || !p->max_pairs || !p->max_contacts)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->p = *p;
	t->up = log(p->beta / p->alpha);
	t->down = log((1 - p->beta) / (1 - p->alpha));
	t->s_ok = log(p->theta1 / p->theta0);
	t->s_fail = log((1 - p->theta1) / (1 - p->theta0));
	/* Contacts: on average 8 per source fit; a busy source may hold up to max_contacts. */
	ncontacts = (size_t)p->max_sources * 8;
	r = zt_dtable_init(&t->srcs, p->max_sources, sizeof(struct src_key), sizeof(struct src_ent),
			   0x5eed0001);
	if (!r)
		r = zt_dtable_init(&t->pairs, p->max_pairs, sizeof(struct pair_key),
				   sizeof(struct pair_ent), 0x5eed0002);
	if (!r)
		r = zt_dtable_init(&t->contacts, ncontacts, sizeof(struct contact_key),
				   sizeof(struct contact_ent), 0x5eed0003);
	if (r) {
		zt_trw_free(t);
		return r;
	}
	*out = t;
	return 0;
}

void zt_trw_free(struct zt_trw *t)
{
	if (!t)
		return;
	zt_dtable_free(&t->srcs);
	zt_dtable_free(&t->pairs);
	zt_dtable_free(&t->contacts);
	free(t);
}

void zt_trw_bounds(const struct zt_trw *t, double *upper, double *lower, double *step_success,
		   double *step_failure)
{
	*upper = t->up;
	*lower = t->down;
	*step_success = t->s_ok;
	*step_failure = t->s_fail;
}

/*
 * What an entry is worth keeping when its table is full (zt_dtable_get_evict):
 * its walk's position between "benign so far" and "scanner" first, so the
 * one-probe walks of a spoofed random-source flood make room before a
 * scanner's walk that has failed more; then how recent it is.
 */
static uint64_t src_worth(const void *e, void *arg)
{
	const struct src_ent *s = e;
	const struct zt_trw *t = arg;

	return zt_dtable_worth_walk(s->w.llr, t->down, t->up, s->last_ns);
}

static uint64_t pair_worth(const void *e, void *arg)
{
	const struct pair_ent *p = e;
	const struct zt_trw *t = arg;

	return zt_dtable_worth_walk(p->w.llr, t->down, t->up, p->w.last_ns);
}

/* Contacts: the least recently seen first. */
static uint64_t contact_worth(const void *e, void *arg)
{
	(void)arg;
	return ((const struct contact_ent *)e)->last_ns;
}

/* A contact leaves the table: its source remembers one fewer. */
static void contact_gone(const void *e, void *arg)
{
	const struct contact_ent *c = e;
	struct zt_trw *t = arg;
	struct src_key sk;
	struct src_ent *s;

	memset(&sk, 0, sizeof(sk));
	sk.family = c->k.family;
	memcpy(sk.addr, c->k.src, 16);
	s = zt_dtable_find(&t->srcs, &sk);
	if (s && s->contacts)
		s->contacts--;
}

/* True when this contact is new for the source (and remembers it when there is room). */
static bool first_contact(struct zt_trw *t, struct src_ent *s, const struct zt_probe *p,
			  uint8_t kind)
{
	struct contact_key k;
	struct contact_ent *c;
	size_t alen = zt_fam_len(p->family);
	bool created;

	memset(&k, 0, sizeof(k));
	k.family = p->family;
	k.kind = kind;
	memcpy(k.src, p->src, alen);
	memcpy(k.dst, p->dst, alen);
	if (kind) {
		k.proto = p->proto;
		k.dport = p->dport;
	}
	c = zt_dtable_find(&t->contacts, &k);
	if (c) {
		c->last_ns = p->ts_ns;
		return false;
	}
	/* Not remembered (per-source budget full): still a trial, counted again later. */
	if (s->contacts >= t->p.max_contacts)
		return true;
	c = zt_dtable_get_evict(&t->contacts, &k, &created, contact_worth, contact_gone, t);
	if (c) {
		c->last_ns = p->ts_ns;
		s->contacts++;
	}
	return true;
}

/* One trial; true when the walk reached "scanner" (and started over). */
static bool step(struct zt_trw *t, struct walk *w, bool ok, uint64_t ts, struct walk *done)
{
	/* Outcomes arrive out of order (a timeout is judged long after a later
	 * probe's answer): the walk's window spans the earliest to the latest. */
	if (!w->trials || ts < w->first_ns)
		w->first_ns = ts;
	if (!w->trials || ts > w->last_ns)
		w->last_ns = ts;
	w->trials++;
	if (!ok)
		w->failures++;
	w->llr += ok ? t->s_ok : t->s_fail;
	if (w->llr >= t->up) {
		*done = *w;
		memset(w, 0, sizeof(*w));
		return true;
	}
	if (w->llr <= t->down)
		memset(w, 0, sizeof(*w)); /* benign so far: start over */
	return false;
}

static void fill(struct zt_trw *t, const struct zt_probe *p, const struct walk *w, bool vertical,
		 struct zt_decision *d)
{
	double lam = exp(w->llr);
	char dst[64];

	zt_decision_init(d, ZT_THREAT_SCAN, ZT_ROLE_SOURCE, p->family, p->src, p->ts_ns);
	d->score = (float)(lam / (1 + lam));
	d->first_ns = w->first_ns;
	d->window_ns = w->last_ns - w->first_ns;
	d->value = w->llr;
	d->threshold = t->up;
	d->flows = w->trials;
	d->proto = p->proto;
	if (vertical) {
		memcpy(d->peer, p->dst, zt_fam_len(p->family));
		d->has_peer = true;
	} else {
		d->dport = p->dport;
	}
	snprintf(d->subtype, sizeof(d->subtype), "%s", vertical ? "vertical" : "horizontal");
	snprintf(d->evidence, sizeof(d->evidence),
		 "%s: %u of %u first contacts with new %s failed in %.3fs%s%s (TRW ln L %.2f >= "
		 "%.2f; theta0 %.2f theta1 %.2f alpha %.3g beta %.3g)",
		 d->subtype, w->failures, w->trials, vertical ? "ports" : "hosts",
		 (double)d->window_ns / 1e9, vertical ? " on " : "",
		 vertical ? zt_addr_str(p->family, p->dst, dst, sizeof(dst)) : "", w->llr, t->up,
		 t->p.theta0, t->p.theta1, t->p.alpha, t->p.beta);
}

int zt_trw_observe(struct zt_trw *t, const struct zt_probe *p, struct zt_decision *d)
{
	struct src_key sk;
	struct src_ent *s;
	struct walk done;
	bool ok = p->outcome == ZT_PROBE_SUCCESS, created;
	size_t alen = zt_fam_len(p->family);
	int decided = 0;

	t->st.probes++;
	if (p->family != 4 && p->family != 6)
		return 0;
	memset(&sk, 0, sizeof(sk));
	sk.family = p->family;
	memcpy(sk.addr, p->src, alen);
	s = zt_dtable_get_evict(&t->srcs, &sk, &created, src_worth, NULL, t);
	if (!s) {
		t->st.dropped++;
		return 0;
	}
	s->last_ns = p->ts_ns;
	if (first_contact(t, s, p, 0)) {
		t->st.trials_h++;
		if (step(t, &s->w, ok, p->ts_ns, &done)) {
			fill(t, p, &done, false, d);
			t->st.decisions_h++;
			decided = 1;
		}
	}
	if (first_contact(t, s, p, 1)) {
		struct pair_key pk;
		struct pair_ent *pe;

		memset(&pk, 0, sizeof(pk));
		pk.family = p->family;
		memcpy(pk.src, p->src, alen);
		memcpy(pk.dst, p->dst, alen);
		pe = zt_dtable_get_evict(&t->pairs, &pk, &created, pair_worth, NULL, t);
		if (!pe) {
			t->st.dropped++;
		} else {
			t->st.trials_v++;
			/* One decision per probe: horizontal wins, the vertical walk still steps. */
			if (step(t, &pe->w, ok, p->ts_ns, &done) && !decided) {
				fill(t, p, &done, true, d);
				t->st.decisions_v++;
				decided = 1;
			}
		}
	}
	return decided;
}

void zt_trw_expire(struct zt_trw *t, uint64_t now_ns)
{
	uint64_t cut = now_ns > t->p.idle_ns ? now_ns - t->p.idle_ns : 0;
	size_t pos = 0;
	void *e;

	while ((e = zt_dtable_next(&t->srcs, &pos)))
		if (((struct src_ent *)e)->last_ns < cut)
			zt_dtable_del_at(&t->srcs, &pos);
	pos = 0;
	while ((e = zt_dtable_next(&t->pairs, &pos)))
		if (((struct pair_ent *)e)->w.last_ns < cut)
			zt_dtable_del_at(&t->pairs, &pos);
	pos = 0;
	while ((e = zt_dtable_next(&t->contacts, &pos))) {
		struct contact_ent *c = e;

		if (c->last_ns < cut) {
			contact_gone(c, t);
			zt_dtable_del_at(&t->contacts, &pos);
		}
	}
}

void zt_trw_get_stats(const struct zt_trw *t, struct zt_trw_stats *st)
{
	*st = t->st;
	st->sources = t->srcs.n;
	st->pairs = t->pairs.n;
	st->evicted = t->srcs.evicted + t->pairs.evicted + t->contacts.evicted;
}
