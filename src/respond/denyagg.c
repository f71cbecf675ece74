// SPDX-License-Identifier: GPL-2.0-only
/* Policy denials aggregated per source, destination, port and rule (see denyagg.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "detect/dtable.h"
#include "records/auditq.h"
#include "records/flowrec.h"
#include "respond/denyagg.h"

struct dkey {
	uint8_t family, verdict, proto, folded;
	uint16_t dport, _pad;
	uint8_t saddr[16], daddr[16];
	uint64_t rule_h;
};

struct dent {
	struct dkey k;
	uint8_t alert_id[16];
	uint64_t count, posted;
	uint64_t start_ns;
	int64_t first_us, last_us;
	/* What the events say about the key, from its first violation. */
	uint8_t dir, reason, revoked;
	uint16_t sport;
	uint32_t src_id, dst_id;
	char reason_name[32], proto_name[12], verdict_name[12];
	char rule[256], src_wl[160], dst_wl[160], ifname[20];
};

struct zt_denyagg {
	struct zt_denyagg_cfg c;
	zt_denyagg_post_fn post;
	void *ctx;
	pthread_mutex_t lock;
	struct zt_dtable t;
	struct zt_denyagg_stats st;
};

void zt_denyagg_cfg_defaults(struct zt_denyagg_cfg *c)
{
	c->window_ns = 10000000000ULL;
	c->max_keys = 4096;
}

int zt_denyagg_new(const struct zt_denyagg_cfg *c, zt_denyagg_post_fn post, void *ctx,
		   struct zt_denyagg **out)
{
	struct zt_denyagg *a;
	int r;

	*out = NULL;
	if (!c->window_ns || c->max_keys < 2)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->c = *c;
	a->post = post;
	a->ctx = ctx;
	/* One more than max_keys: room for the folded keys of the overflow. */
	r = zt_dtable_init(&a->t, (size_t)c->max_keys + c->max_keys / 8, sizeof(struct dkey),
			   sizeof(struct dent), 0xde9);
	if (r) {
		free(a);
		return r;
	}
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

static void emit(struct zt_denyagg *a, struct dent *e)
{
	char sa[64], da[64], subj[200], id[40], rule[600], sw[400], dw[400], ifn[64], d[2600];

	zt_uuid_format(e->alert_id, id, sizeof(id));
	zt_addr_str(e->k.family, e->k.daddr, da, sizeof(da));
	if (e->k.folded)
		snprintf(sa, sizeof(sa), "*");
	else
		zt_addr_str(e->k.family, e->k.saddr, sa, sizeof(sa));
	snprintf(subj, sizeof(subj), "%s %s:%u -> %s:%u", e->proto_name, sa, e->sport, da,
		 e->k.dport);
	zt_json_escape(e->rule, rule, sizeof(rule));
	zt_json_escape(e->src_wl, sw, sizeof(sw));
	zt_json_escape(e->dst_wl, dw, sizeof(dw));
	zt_json_escape(e->ifname, ifn, sizeof(ifn));
	/* The keys of a single violation's event, plus the aggregate's. */
	snprintf(d, sizeof(d),
		 "{\"verdict\":\"%s\",\"reason\":\"%s\",\"rule\":\"%s\",\"protocol\":\"%s\","
		 "\"src\":%s%s%s,\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"direction\":\"%s\","
		 "\"src_identity\":%u,\"dst_identity\":%u,\"src_workload\":\"%s\","
		 "\"dst_workload\":\"%s\",\"interface\":\"%s\",\"revoked\":%s,"
		 "\"alert_id\":\"%s\",\"count\":%" PRIu64 ",\"first_unix_us\":%" PRId64
		 ",\"last_unix_us\":%" PRId64 ",\"window_s\":%.3f,\"aggregated\":true}",
		 e->verdict_name, e->reason_name, rule, e->proto_name, e->k.folded ? "" : "\"",
		 e->k.folded ? "null" : sa, e->k.folded ? "" : "\"", e->sport, da, e->k.dport,
		 e->dir == 0 ? "ingress" : "egress", e->src_id, e->dst_id, sw, dw, ifn,
		 e->revoked ? "true" : "false", id, e->count, e->first_us, e->last_us,
		 (double)a->c.window_ns / 1e9);
	e->posted = e->count;
	if (a->post)
		a->post(a->ctx, "policy.violation", subj, d);
}

void zt_denyagg_add(struct zt_denyagg *a, const struct zt_seg_violation *v, uint64_t now_ns,
		    int64_t now_us)
{
	struct dkey k;
	struct dent *e;
	bool created;
	size_t alen = zt_fam_len(v->family);

	memset(&k, 0, sizeof(k));
	k.family = v->family;
	k.verdict = v->verdict;
	k.proto = v->proto;
	k.dport = v->dport;
	memcpy(k.saddr, v->saddr, alen);
	memcpy(k.daddr, v->daddr, alen);
	k.rule_h = zt_detect_hash(v->rule ? v->rule : "", v->rule ? strlen(v->rule) : 0, 0x7u);
	pthread_mutex_lock(&a->lock);
	a->st.violations++;
	e = zt_dtable_find(&a->t, &k);
	if (!e) {
		if (a->t.n >= a->c.max_keys) {
			/* Full: fold into the key without a source. */
			memset(k.saddr, 0, sizeof(k.saddr));
			k.folded = 1;
			a->st.folded++;
		}
		e = zt_dtable_get(&a->t, &k, &created);
		if (!e) {
			pthread_mutex_unlock(&a->lock);
			return; /* even the folded keys are full: counted in violations only */
		}
		if (created) {
			zt_uuidv7(e->alert_id);
			e->start_ns = now_ns;
			e->first_us = now_us;
			e->dir = v->dir;
			e->reason = v->reason;
			e->revoked = v->revoked;
			e->sport = k.folded ? 0 : v->sport;
			e->src_id = v->src_id;
			e->dst_id = v->dst_id;
			snprintf(e->reason_name, sizeof(e->reason_name), "%s",
				 v->reason_name ? v->reason_name : "");
			snprintf(e->proto_name, sizeof(e->proto_name), "%s",
				 v->protocol_name ? v->protocol_name : "");
			snprintf(e->verdict_name, sizeof(e->verdict_name), "%s",
				 v->verdict_name ? v->verdict_name : "");
			snprintf(e->rule, sizeof(e->rule), "%s", v->rule ? v->rule : "");
			snprintf(e->src_wl, sizeof(e->src_wl), "%s",
				 k.folded  ? "" :
				 v->src_wl ? v->src_wl :
					     "");
			snprintf(e->dst_wl, sizeof(e->dst_wl), "%s", v->dst_wl ? v->dst_wl : "");
			snprintf(e->ifname, sizeof(e->ifname), "%s", v->ifname ? v->ifname : "");
		}
	}
	e->count++;
	e->last_us = now_us;
	if (e->count == 1) {
		emit(a, e);
		a->st.alerts++;
	}
	pthread_mutex_unlock(&a->lock);
}

void zt_denyagg_tick(struct zt_denyagg *a, uint64_t now_ns, int64_t now_us, bool force)
{
	size_t pos = 0;
	struct dent *e;

	(void)now_us;
	pthread_mutex_lock(&a->lock);
	while ((e = zt_dtable_next(&a->t, &pos))) {
		if (!force && now_ns - e->start_ns < a->c.window_ns)
			continue;
		if (e->count > e->posted) {
			emit(a, e);
			a->st.updates++;
		}
		zt_dtable_del_at(&a->t, &pos);
	}
	pthread_mutex_unlock(&a->lock);
}

void zt_denyagg_get_stats(struct zt_denyagg *a, struct zt_denyagg_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	st->keys = a->t.n;
	pthread_mutex_unlock(&a->lock);
}

void zt_denyagg_free(struct zt_denyagg *a)
{
	if (!a)
		return;
	zt_denyagg_tick(a, 0, 0, true);
	zt_dtable_free(&a->t);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
