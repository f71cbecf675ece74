// SPDX-License-Identifier: GPL-2.0-only
/* ztctl's view of the engine: incidents.list, incidents.show, alerts.recent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/util.h"
#include "respond/engine_int.h"

void engine_alert_push(struct zt_engine *e, const struct alert_note *a)
{
	struct alert_note *s;

	pthread_mutex_lock(&e->ring_lock);
	s = &e->ring[e->next_seq % ALERT_RING];
	*s = *a;
	s->seq = e->next_seq++;
	pthread_mutex_unlock(&e->ring_lock);
}

static int put_addr(cbor_item_t *m, const char *key, uint8_t family, const uint8_t *a, bool have)
{
	char s[64];

	if (!have)
		return zt_cbor_put_str(m, key, "");
	return zt_cbor_put_str(m, key, zt_addr_str(family, a, s, sizeof(s)));
}

static cbor_item_t *summary(const struct zt_incident *i)
{
	cbor_item_t *m = zt_cbor_map();
	bool src = i->role == ZT_ROLE_SOURCE;
	char blocked[80] = "";

	if (i->act == ZT_RA_BLOCK || i->act == ZT_RA_ALREADY || i->act == ZT_RA_REFUSED) {
		char a[64];

		snprintf(blocked, sizeof(blocked), "%s/%u",
			 zt_addr_str(i->blocked_family, i->blocked, a, sizeof(a)),
			 i->blocked_family == 6 ? 128 : 32);
	}
	if (!m || zt_cbor_put_str(m, "id", i->ids) ||
	    zt_cbor_put_str(m, "threat_type", zt_threat_name(i->threat)) ||
	    zt_cbor_put_str(m, "subtype", i->subtype) ||
	    zt_cbor_put_str(m, "state", i->open ? "open" : "closed") ||
	    zt_cbor_put_str(m, "role", src ? "source" : "destination") ||
	    put_addr(m, "src", i->family, i->addr, src) ||
	    put_addr(m, "dst", i->family, src ? i->peer : i->addr, !src || i->has_peer) ||
	    zt_cbor_put_u64(m, "dport", i->dport) || zt_cbor_put_str(m, "workload", i->workload) ||
	    zt_cbor_put_u64(m, "first_unix", (uint64_t)(i->first_us / 1000000)) ||
	    zt_cbor_put_u64(m, "last_unix", (uint64_t)(i->last_us / 1000000)) ||
	    zt_cbor_put_u64(m, "flows", i->flows) || zt_cbor_put_u64(m, "packets", i->packets) ||
	    zt_cbor_put_u64(m, "bytes", i->bytes) || zt_cbor_put_u64(m, "drops", i->drops) ||
	    zt_cbor_put_u64(m, "decisions", i->decisions) ||
	    zt_cbor_put_u64(m, "score", (uint64_t)(i->score * 1000 + 0.5f)) ||
	    zt_cbor_put_str(m, "action", zt_resp_act_name(i->act)) ||
	    zt_cbor_put_str(m, "blocked", blocked) ||
	    zt_cbor_put_u64(m, "blocked_until_unix",
			    i->blocked_until_us > 0 ? (uint64_t)(i->blocked_until_us / 1000000) :
						      0)) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

static const char *want_state(const cbor_item_t *req, bool *open, bool *closed, char *err,
			      size_t errlen)
{
	char s[16] = "all";
	int r = zt_cbor_get_str(req, "state", s, sizeof(s));

	if (r < 0 && r != -ENOENT)
		return "field 'state': expected open, closed or all";
	*open = !strcmp(s, "open") || !strcmp(s, "all");
	*closed = !strcmp(s, "closed") || !strcmp(s, "all");
	if (!*open && !*closed)
		return "field 'state': expected open, closed or all";
	return NULL;
}

static int op_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	struct zt_engine *e = ctx;
	const struct zt_incident **v = NULL;
	struct zt_incident *copy = NULL;
	cbor_item_t *arr = NULL;
	uint64_t limit = 100, open_n = 0;
	bool want_open, want_closed;
	const char *bad;
	size_t n, m = 0, max = 4096 + 1024;
	int r = 0;

	bad = want_state(req, &want_open, &want_closed, err, errlen);
	if (bad || zt_cbor_get_u64(req, "limit", &limit) == -EINVAL) {
		zt_seterr(err, errlen, "%s", bad ? bad : "field 'limit': expected a number");
		return -EINVAL;
	}
	v = malloc(max * sizeof(*v));
	arr = zt_cbor_array();
	if (!v || !arr) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * The engine's lock is held for a copy of what is listed only: the
	 * summaries are built after, so a long list never holds up decisions.
	 */
	engine_lock(e);
	n = zt_incidents_list(e->inc, want_open, want_closed, v, max);
	for (size_t k = 0; k < n; k++)
		open_n += v[k]->open;
	m = limit && limit < n ? (size_t)limit : n;
	copy = m ? malloc(m * sizeof(*copy)) : NULL;
	for (size_t k = 0; copy && k < m; k++)
		copy[k] = *v[k];
	pthread_mutex_unlock(&e->lock);
	if (m && !copy) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < m; k++) {
		cbor_item_t *it = summary(&copy[k]);

		if (!it || zt_cbor_push(arr, it)) {
			if (it)
				cbor_decref(&it);
			r = -ENOMEM;
			goto out;
		}
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "incidents", arr)) {
		r = -ENOMEM;
		goto out;
	}
	arr = NULL;
	if (zt_cbor_put_u64(*data, "open", open_n) || zt_cbor_put_u64(*data, "total", n))
		r = -ENOMEM;
out:
	if (arr)
		cbor_decref(&arr);
	free(copy);
	free(v);
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory listing incidents");
	return r;
}

static int op_show(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	struct zt_engine *e = ctx;
	const struct zt_incident *i;
	char id[64], q[512];
	cbor_item_t *m = NULL;
	int matches = 0, r = 0;

	if (zt_cbor_get_str(req, "id", id, sizeof(id)) < 0) {
		zt_seterr(err, errlen, "field 'id': missing or not a text");
		return -EINVAL;
	}
	engine_lock(e);
	i = zt_incidents_find(e->inc, id, &matches);
	if (!i) {
		pthread_mutex_unlock(&e->lock);
		if (strlen(id) < 4)
			zt_seterr(err, errlen, "'%s': give at least 4 characters of the id", id);
		else if (matches > 1)
			zt_seterr(err, errlen, "'%s' matches %d incidents; give more of the id", id,
				  matches);
		else
			zt_seterr(err, errlen,
				  "no incident '%s' on this node (it may be closed and gone from "
				  "memory: the incidents table keeps every one)",
				  id);
		return matches > 1 ? -EINVAL : -ENOENT;
	}
	m = summary(i);
	if (i->threat == ZT_THREAT_EXFIL && i->workload[0])
		snprintf(q, sizeof(q),
			 "SELECT * FROM zt_incident_flows('%s');  -- every flow of %.200s in the "
			 "incident's window",
			 i->ids, i->workload);
	else
		snprintf(q, sizeof(q), "SELECT * FROM zt_incident_flows('%s');", i->ids);
	if (!m || zt_cbor_put_str(m, "evidence", i->evidence) ||
	    zt_cbor_put_u64(m, "value_milli", (uint64_t)(i->value > 0 ? i->value * 1000 : 0)) ||
	    zt_cbor_put_u64(m, "threshold_milli",
			    (uint64_t)(i->threshold > 0 ? i->threshold * 1000 : 0)) ||
	    zt_cbor_put_u64(m, "window_ms", i->window_ns / 1000000) ||
	    zt_cbor_put_u64(m, "window_start_unix", (uint64_t)(i->window_start_us / 1000000)) ||
	    zt_cbor_put_u64(m, "closed_unix", (uint64_t)(i->closed_us / 1000000)) ||
	    zt_cbor_put_str(m, "close_reason", i->close_reason) ||
	    zt_cbor_put_str(m, "mode", zt_resp_mode_name(i->mode)) ||
	    zt_cbor_put_str(m, "action_reason", i->action_why) ||
	    zt_cbor_put_u64(m, "block_ttl_s", i->ttl_s) ||
	    zt_cbor_put_u64(m, "offence", i->offence) ||
	    zt_cbor_put_u64(m, "block_us", (uint64_t)(i->block_ms * 1000)) ||
	    zt_cbor_put_str(m, "capture", i->capture) ||
	    zt_cbor_put_u64(m, "capture_files", i->capture_files) ||
	    zt_cbor_put_u64(m, "version", i->version) || zt_cbor_put_str(m, "flows_query", q))
		r = -ENOMEM;
	pthread_mutex_unlock(&e->lock);
	if (r) {
		if (m)
			cbor_decref(&m);
		zt_seterr(err, errlen, "out of memory");
		return r;
	}
	*data = m;
	return 0;
}

static int op_alerts(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
		     size_t errlen)
{
	struct zt_engine *e = ctx;
	uint64_t after = 0, limit = 1000, first, next, missed = 0;
	cbor_item_t *arr;

	if (zt_cbor_get_u64(req, "after", &after) == -EINVAL ||
	    zt_cbor_get_u64(req, "limit", &limit) == -EINVAL) {
		zt_seterr(err, errlen, "after, limit: expected unsigned integers");
		return -EINVAL;
	}
	if (!limit || limit > ALERT_RING)
		limit = ALERT_RING;
	arr = zt_cbor_array();
	if (!arr)
		return -ENOMEM;
	pthread_mutex_lock(&e->ring_lock);
	next = e->next_seq;
	first = next > ALERT_RING ? next - ALERT_RING : 1;
	if (after && after + 1 < first)
		missed = first - after - 1;
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t s = first; s < next && limit; s++, limit--) {
		const struct alert_note *a = &e->ring[s % ALERT_RING];
		cbor_item_t *m = zt_cbor_map();
		char t[40];

		zt_time_format(a->unix_ms / 1000, t, sizeof(t));
		if (!m || zt_cbor_put_u64(m, "seq", a->seq) || zt_cbor_put_str(m, "time", t) ||
		    zt_cbor_put_u64(m, "time_ms", a->unix_ms) ||
		    zt_cbor_put_str(m, "kind", a->kind) || zt_cbor_put_str(m, "event", a->event) ||
		    zt_cbor_put_str(m, "severity", a->severity) ||
		    zt_cbor_put_str(m, "id", a->id) || zt_cbor_put_str(m, "subject", a->subject) ||
		    zt_cbor_put_u64(m, "count", a->count) ||
		    zt_cbor_put_str(m, "action", a->action) ||
		    zt_cbor_put_u64(m, "score", (uint64_t)(a->score * 1000 + 0.5f)) ||
		    zt_cbor_put_str(m, "detail", a->detail) || zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			pthread_mutex_unlock(&e->ring_lock);
			cbor_decref(&arr);
			return -ENOMEM;
		}
		after = s;
	}
	if (after + 1 < next && !limit)
		next = after + 1;
	pthread_mutex_unlock(&e->ring_lock);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "alerts", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	if (zt_cbor_put_u64(*data, "last", next - 1) || zt_cbor_put_u64(*data, "missed", missed))
		return -ENOMEM;
	return 0;
}

int zt_engine_register_api(struct zt_engine *e, struct zt_api *api)
{
	static const struct {
		const char *op;
		zt_api_handler fn;
	} ops[] = {
		{ ZT_OP_INCIDENTS_LIST, op_list },
		{ ZT_OP_INCIDENTS_SHOW, op_show },
		{ ZT_OP_ALERTS_RECENT, op_alerts },
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(ops); i++) {
		int r = zt_api_register(api, ops[i].op, ops[i].fn, e);

		if (r < 0)
			return r;
	}
	return 0;
}
