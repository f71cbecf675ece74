// SPDX-License-Identifier: GPL-2.0-only
/* XDP drop aggregation (see dropagg.h). */
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "guard/blocklist.h"
#include "guard/datapath.h"
#include "guard/dropagg.h"
#include "agent/log.h"
#include "agent/util.h"

struct agg_key {
	uint32_t ifindex;
	uint16_t reason;
	uint16_t block_reason;
	uint8_t family;
	uint8_t proto;
	uint16_t dport;
	uint8_t saddr[16];
	uint8_t daddr[16];
};

struct agg_slot {
	struct agg_key k;
	uint64_t drops, bytes, first_ns, last_ns;
	bool used;
};

struct zt_dropagg {
	pthread_mutex_t lock;
	uint64_t interval_ns;
	size_t max_keys, n_keys, cap; /* cap: power of two, 2 * max_keys */
	struct agg_slot *slots; /* cap regular slots */
	size_t *used; /* indices in use, n_keys of them */
	struct agg_slot *fold; /* folded rows, by (ifindex, reason): small list */
	size_t n_fold, cap_fold;
	uint64_t start_ns; /* first event of the interval; 0: empty */
	char node[ZT_FR_NODE_MAX];
	struct zt_dropagg_stats st;

	/* The worker (zt_dropagg_start_worker): wmu guards what follows. */
	bool worker;
	pthread_t thr;
	pthread_mutex_t wmu;
	pthread_cond_t wcv; /* work or stop, for the worker; idle, for drain */
	struct zt_flow_record *pend; /* rows handed over, not taken yet */
	size_t n_pend, cap_pend;
	bool busy, wstop;
	zt_dropagg_prep_fn prep;
	void *prep_ctx;
	zt_flow_sink_fn wsink;
	void *wsink_ctx;
};

int zt_dropagg_new(uint64_t interval_ns, size_t max_keys, const char *node, struct zt_dropagg **out)
{
	struct zt_dropagg *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->interval_ns = interval_ns ? interval_ns : ZT_DROPAGG_INTERVAL_NS;
	a->max_keys = max_keys ? max_keys : ZT_DROPAGG_MAX_KEYS;
	a->cap = 16;
	while (a->cap < 2 * a->max_keys)
		a->cap <<= 1;
	a->slots = calloc(a->cap, sizeof(*a->slots));
	a->used = calloc(a->max_keys, sizeof(*a->used));
	if (!a->slots || !a->used) {
		zt_dropagg_free(a);
		return -ENOMEM;
	}
	snprintf(a->node, sizeof(a->node), "%s", node ? node : "");
	*out = a;
	return 0;
}

static void worker_stop(struct zt_dropagg *a);

void zt_dropagg_free(struct zt_dropagg *a)
{
	if (!a)
		return;
	worker_stop(a);
	pthread_mutex_destroy(&a->lock);
	free(a->slots);
	free(a->used);
	free(a->fold);
	free(a);
}

static uint64_t hash_key(const struct agg_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static void account(struct agg_slot *s, const struct zt_ev_xdp_drop *ev, uint64_t n)
{
	s->drops += n;
	s->bytes += (uint64_t)ev->pkt_len * n;
	if (!s->first_ns || ev->hdr.ts_ns < s->first_ns)
		s->first_ns = ev->hdr.ts_ns;
	if (ev->hdr.ts_ns > s->last_ns)
		s->last_ns = ev->hdr.ts_ns;
}

static struct agg_slot *fold_slot(struct zt_dropagg *a, const struct agg_key *k)
{
	for (size_t i = 0; i < a->n_fold; i++)
		if (a->fold[i].k.ifindex == k->ifindex && a->fold[i].k.reason == k->reason &&
		    a->fold[i].k.family == k->family)
			return &a->fold[i];
	if (zt_grow((void **)&a->fold, &a->cap_fold, a->n_fold + 1, sizeof(*a->fold)) < 0)
		return NULL;
	memset(&a->fold[a->n_fold], 0, sizeof(a->fold[0]));
	a->fold[a->n_fold].k =
		(struct agg_key){ .ifindex = k->ifindex, .reason = k->reason, .family = k->family };
	a->fold[a->n_fold].used = true;
	return &a->fold[a->n_fold++];
}

void zt_dropagg_add(struct zt_dropagg *a, const struct zt_ev_xdp_drop *ev)
{
	struct agg_key k = { .ifindex = ev->ifindex,
			     .reason = ev->reason,
			     .block_reason = ev->reason == ZT_XR_BLOCKLIST ? ev->block_reason : 0,
			     .family = ev->family,
			     .proto = ev->proto };
	uint64_t n = ev->represents ? ev->represents : 1;
	size_t i;

	if (zt_proto_has_ports(ev->proto))
		k.dport = ev->dport;
	memcpy(k.saddr, ev->saddr, 16);
	memcpy(k.daddr, ev->daddr, 16);
	pthread_mutex_lock(&a->lock);
	a->st.events++;
	a->st.drops += n;
	if (!a->start_ns)
		a->start_ns = ev->hdr.ts_ns ? ev->hdr.ts_ns : 1;
	for (i = hash_key(&k) & (a->cap - 1);; i = (i + 1) & (a->cap - 1)) {
		struct agg_slot *s = &a->slots[i];

		if (s->used && !memcmp(&s->k, &k, sizeof(k))) {
			account(s, ev, n);
			break;
		}
		if (!s->used) {
			if (a->n_keys >= a->max_keys) {
				struct agg_slot *f = fold_slot(a, &k);

				a->st.folded++;
				if (f)
					account(f, ev, n);
				break;
			}
			memset(s, 0, sizeof(*s));
			s->k = k;
			s->used = true;
			a->used[a->n_keys++] = i;
			account(s, ev, n);
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
}

static void to_record(const struct zt_dropagg *a, const struct agg_slot *s, int64_t off,
		      bool folded, struct zt_flow_record *r)
{
	char buf[96], ifname[IF_NAMESIZE + 8];

	zt_flowrec_init(r);
	r->kind = ZT_FLOW_KIND_XDP_DROP_AGG;
	r->family = s->k.family == 6 ? AF_INET6 : AF_INET;
	memcpy(r->source_ip, s->k.saddr, 16);
	memcpy(r->dest_ip, s->k.daddr, 16);
	if (!folded && zt_proto_has_ports(s->k.proto)) {
		r->dest_port = s->k.dport;
		r->present |= ZT_FR_HAS_DPORT;
	}
	/* A folded row sums every protocol of its sources. */
	r->protocol = folded ? ZT_PROTO_ANY : s->k.proto;
	r->packet_count = r->packets_sent = r->aggregate_count = (int64_t)s->drops;
	r->bytes_sent = (int64_t)s->bytes;
	r->start_time_us = ((int64_t)s->first_ns + off) / 1000;
	r->end_time_us = ((int64_t)s->last_ns + off) / 1000;
	r->duration_ms = (r->end_time_us - r->start_time_us) / 1000;
	r->blocked = true;
	zt_flowrec_set_text(r->verdict, sizeof(r->verdict), "dropped");
	if (s->k.reason == ZT_XR_BLOCKLIST) {
		snprintf(buf, sizeof(buf), "blocklist:%s", zt_block_reason_name(s->k.block_reason));
		zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type),
				    zt_block_reason_name(s->k.block_reason));
	} else {
		snprintf(buf, sizeof(buf), "%s", zt_xdp_reason_name(s->k.reason));
	}
	if (folded)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " (other sources)");
	zt_flowrec_set_text(r->drop_reason, sizeof(r->drop_reason), buf);
	zt_flowrec_set_text(r->policy, sizeof(r->policy), "xdp-guard");
	zt_flowrec_set_text(r->node, sizeof(r->node), a->node);
	zt_ifname(s->k.ifindex, ifname, sizeof(ifname));
	zt_flowrec_set_text(r->interface, sizeof(r->interface), ifname);
	zt_flowrec_set_text(r->direction, sizeof(r->direction), "ingress");
}

/* The interval's rows (or none: not over yet, empty), the aggregator reset. -ENOMEM: rows lost. */
static ssize_t gather(struct zt_dropagg *a, uint64_t now, bool force, bool want,
		      struct zt_flow_record **out)
{
	struct zt_flow_record *recs = NULL;
	size_t n = 0, total;
	int64_t off;

	*out = NULL;
	pthread_mutex_lock(&a->lock);
	if (!a->start_ns || (!force && now - a->start_ns < a->interval_ns)) {
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	off = zt_boot_to_unix_ns();
	total = a->n_keys + a->n_fold;
	if (want && total) {
		recs = malloc(total * sizeof(*recs));
		if (!recs)
			log_error("dropagg_rows_lost", "rows=%zu why=\"out of memory\"", total);
	}
	for (size_t i = 0; i < a->n_keys; i++) {
		struct agg_slot *s = &a->slots[a->used[i]];

		if (recs)
			to_record(a, s, off, false, &recs[n++]);
		s->used = false;
	}
	for (size_t i = 0; i < a->n_fold; i++)
		if (recs)
			to_record(a, &a->fold[i], off, true, &recs[n++]);
	a->n_keys = 0;
	a->n_fold = 0;
	a->start_ns = 0;
	a->st.rows += n;
	pthread_mutex_unlock(&a->lock);
	*out = recs;
	return (ssize_t)n;
}

size_t zt_dropagg_flush(struct zt_dropagg *a, uint64_t now, bool force, zt_flow_sink_fn sink,
			void *ctx)
{
	struct zt_flow_record *recs;
	ssize_t n = gather(a, now, force, sink != NULL, &recs);

	if (recs && n > 0)
		sink(ctx, recs, (size_t)n);
	free(recs);
	return n > 0 ? (size_t)n : 0;
}

static void *worker_main(void *arg)
{
	struct zt_dropagg *a = arg;

	pthread_mutex_lock(&a->wmu);
	for (;;) {
		struct zt_flow_record *recs;
		size_t n;
		uint64_t t0, dt;

		while (!a->n_pend && !a->wstop)
			pthread_cond_wait(&a->wcv, &a->wmu);
		if (!a->n_pend)
			break; /* stop, nothing handed over */
		recs = a->pend;
		n = a->n_pend;
		a->pend = NULL;
		a->n_pend = a->cap_pend = 0;
		a->busy = true;
		pthread_mutex_unlock(&a->wmu);
		t0 = zt_now_mono_ns();
		a->wsink(a->wsink_ctx, recs, n);
		dt = zt_now_mono_ns() - t0;
		free(recs);
		pthread_mutex_lock(&a->lock);
		a->st.written += n;
		if (dt > a->st.worker_ns_max)
			a->st.worker_ns_max = dt;
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_lock(&a->wmu);
		a->busy = false;
		pthread_cond_broadcast(&a->wcv);
	}
	pthread_mutex_unlock(&a->wmu);
	return NULL;
}

int zt_dropagg_start_worker(struct zt_dropagg *a, zt_dropagg_prep_fn prep, void *prep_ctx,
			    zt_flow_sink_fn sink, void *sink_ctx)
{
	int r;

	if (!a || !sink)
		return -EINVAL;
	if (a->worker)
		return -EALREADY;
	pthread_mutex_init(&a->wmu, NULL);
	pthread_cond_init(&a->wcv, NULL);
	a->prep = prep;
	a->prep_ctx = prep_ctx;
	a->wsink = sink;
	a->wsink_ctx = sink_ctx;
	r = pthread_create(&a->thr, NULL, worker_main, a);
	if (r) {
		pthread_mutex_destroy(&a->wmu);
		pthread_cond_destroy(&a->wcv);
		return -r;
	}
	a->worker = true;
	pthread_setname_np(a->thr, "zt-dropagg");
	return 0;
}

ssize_t zt_dropagg_flush_bg(struct zt_dropagg *a, uint64_t now, bool force)
{
	struct zt_flow_record *recs;
	uint64_t t0 = zt_now_mono_ns(), dt;
	ssize_t n;
	bool lost = false;

	if (!a || !a->worker)
		return -EINVAL;
	n = gather(a, now, force, true, &recs);
	if (n <= 0 || !recs)
		return n;
	if (a->prep)
		a->prep(a->prep_ctx, recs, (size_t)n);
	pthread_mutex_lock(&a->wmu);
	if (!a->n_pend) {
		/* The common case: the worker is idle or busy with the previous rows. */
		a->pend = recs;
		a->n_pend = a->cap_pend = (size_t)n;
		recs = NULL;
	} else if (zt_grow((void **)&a->pend, &a->cap_pend, a->n_pend + (size_t)n,
			   sizeof(*a->pend)) == 0) {
		memcpy(a->pend + a->n_pend, recs, (size_t)n * sizeof(*recs));
		a->n_pend += (size_t)n;
	} else {
		lost = true;
	}
	pthread_cond_broadcast(&a->wcv);
	pthread_mutex_unlock(&a->wmu);
	free(recs);
	if (lost) {
		log_error("dropagg_rows_lost", "rows=%zd why=\"out of memory\"", n);
		return -ENOMEM;
	}
	dt = zt_now_mono_ns() - t0;
	pthread_mutex_lock(&a->lock);
	a->st.handed += (uint64_t)n;
	if (dt > a->st.flush_ns_max)
		a->st.flush_ns_max = dt;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void zt_dropagg_drain(struct zt_dropagg *a)
{
	if (!a || !a->worker)
		return;
	pthread_mutex_lock(&a->wmu);
	while (a->n_pend || a->busy)
		pthread_cond_wait(&a->wcv, &a->wmu);
	pthread_mutex_unlock(&a->wmu);
}

static void worker_stop(struct zt_dropagg *a)
{
	if (!a->worker)
		return;
	/* What was handed over is written first: the worker stops only when idle. */
	zt_dropagg_drain(a);
	pthread_mutex_lock(&a->wmu);
	a->wstop = true;
	pthread_cond_broadcast(&a->wcv);
	pthread_mutex_unlock(&a->wmu);
	pthread_join(a->thr, NULL);
	free(a->pend);
	pthread_mutex_destroy(&a->wmu);
	pthread_cond_destroy(&a->wcv);
	a->worker = false;
}

void zt_dropagg_get_stats(struct zt_dropagg *a, struct zt_dropagg_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	pthread_mutex_unlock(&a->lock);
}
