// SPDX-License-Identifier: GPL-2.0-only
/* Incidents per (address, threat type), with counts that grow (see incident.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "detect/dtable.h"
#include "records/auditq.h"
#include "records/flowrec.h"
#include "respond/incident.h"

struct ikey {
	uint8_t family, role, threat, _pad;
	uint8_t addr[16];
	uint8_t peer[16]; /* ioc: one incident per (pod, IOC); zero for the others */
};

struct ient {
	struct ikey k;
	uint32_t slot; /* index in open[] */
	uint32_t _pad;
};

struct zt_incidents {
	struct zt_incidents_cfg c;
	zt_incident_post_fn post;
	void *ctx;
	zt_incident_observe_fn observe;
	void *octx;
	struct zt_incident **open; /* max_open */
	size_t n_open;
	struct zt_dtable index;
	struct zt_incident *closed; /* ring of keep_closed */
	size_t closed_next, n_closed;
	struct zt_incidents_stats st;
	char *buf; /* JSON scratch */
	size_t buflen;
};

#define JSON_MAX 8192

void zt_incidents_cfg_defaults(struct zt_incidents_cfg *c)
{
	*c = (struct zt_incidents_cfg){
		.update_ns = 5000000000ULL,
		.idle_ns = 600000000000ULL,
		.max_open = 4096,
		.keep_closed = 1024,
	};
}

int zt_incidents_new(const struct zt_incidents_cfg *c, zt_incident_post_fn post, void *ctx,
		     struct zt_incidents **out)
{
	struct zt_incidents *t;
	int r;

	*out = NULL;
	if (!c->max_open || !c->keep_closed || !c->idle_ns)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = *c;
	t->post = post;
	t->ctx = ctx;
	t->open = calloc(c->max_open, sizeof(*t->open));
	t->closed = calloc(c->keep_closed, sizeof(*t->closed));
	t->buf = malloc(JSON_MAX);
	t->buflen = JSON_MAX;
	r = zt_dtable_init(&t->index, c->max_open, sizeof(struct ikey), sizeof(struct ient), 0x1c1);
	if (r || !t->open || !t->closed || !t->buf) {
		if (!r)
			zt_dtable_free(&t->index);
		free(t->open);
		free(t->closed);
		free(t->buf);
		free(t);
		return r ? r : -ENOMEM;
	}
	*out = t;
	return 0;
}

static const char *role_name(uint8_t role)
{
	return role == ZT_ROLE_DESTINATION ? "destination" : "source";
}

void zt_incident_subject(const struct zt_incident *i, char *buf, size_t n)
{
	char a[64];

	zt_addr_str(i->family, i->addr, a, sizeof(a));
	if (i->workload[0])
		snprintf(buf, n, "%s %s (%.200s)", zt_threat_name(i->threat), a, i->workload);
	else if (i->role == ZT_ROLE_DESTINATION)
		snprintf(buf, n, "%s to %s", zt_threat_name(i->threat), a);
	else
		snprintf(buf, n, "%s %s", zt_threat_name(i->threat), a);
}

/* Appends to buf at *o; false when it did not fit. */
static bool jappend(char *buf, size_t n, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool jappend(char *buf, size_t n, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*o >= n)
		return false;
	va_start(ap, fmt);
	w = vsnprintf(buf + *o, n - *o, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= n - *o) {
		*o = n;
		return false;
	}
	*o += (size_t)w;
	return true;
}

int zt_incident_json(const struct zt_incident *i, const char *node, char *buf, size_t n)
{
	char a[64], p[64], ev[ZT_EVIDENCE_MAX * 2], wl[ZT_WORKLOAD_MAX * 2],
		cap[ZT_INCIDENT_PATH_MAX * 2], why[160], nd[160];
	const char *src = NULL, *dst = NULL;
	size_t o = 0;

	zt_addr_str(i->family, i->addr, a, sizeof(a));
	if (i->has_peer)
		zt_addr_str(i->family, i->peer, p, sizeof(p));
	if (i->role == ZT_ROLE_SOURCE) {
		src = a;
		dst = i->has_peer ? p : NULL;
	} else {
		dst = a;
	}
	zt_json_escape(i->evidence, ev, sizeof(ev));
	zt_json_escape(i->workload, wl, sizeof(wl));
	zt_json_escape(i->capture, cap, sizeof(cap));
	zt_json_escape(i->action_why, why, sizeof(why));
	zt_json_escape(node ? node : "", nd, sizeof(nd));
	jappend(buf, n, &o,
		"{\"incident_id\":\"%s\",\"node\":\"%s\",\"threat_type\":\"%s\",\"detector\":\"%s\","
		"\"role\":\"%s\",\"subtype\":\"%s\",\"state\":\"%s\"",
		i->ids, nd, zt_threat_name(i->threat), zt_threat_name(i->threat),
		role_name(i->role), i->subtype, i->open ? "open" : "closed");
	if (src)
		jappend(buf, n, &o, ",\"src\":\"%s\"", src);
	else
		jappend(buf, n, &o, ",\"src\":null");
	if (dst)
		jappend(buf, n, &o, ",\"dst\":\"%s\"", dst);
	else
		jappend(buf, n, &o, ",\"dst\":null");
	if (i->dport)
		jappend(buf, n, &o, ",\"dport\":%u", i->dport);
	else
		jappend(buf, n, &o, ",\"dport\":null");
	if (i->proto)
		jappend(buf, n, &o, ",\"protocol\":%u", i->proto);
	else
		jappend(buf, n, &o, ",\"protocol\":null");
	if (i->workload[0])
		jappend(buf, n, &o, ",\"workload\":\"%s\"", wl);
	else
		jappend(buf, n, &o, ",\"workload\":null");
	jappend(buf, n, &o,
		",\"first_unix_us\":%" PRId64 ",\"last_unix_us\":%" PRId64
		",\"window_start_unix_us\":%" PRId64,
		i->first_us, i->last_us, i->window_start_us);
	if (i->open)
		jappend(buf, n, &o, ",\"closed_unix_us\":null");
	else
		jappend(buf, n, &o, ",\"closed_unix_us\":%" PRId64 ",\"close_reason\":\"%s\"",
			i->closed_us, i->close_reason);
	jappend(buf, n, &o,
		",\"flows\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"drops\":%" PRIu64 ",\"decisions\":%" PRIu64
		",\"score\":%.4f,\"value\":%.6g,\"threshold\":%.6g,\"window_ms\":%" PRIu64
		",\"evidence\":\"%s\"",
		i->flows, i->packets, i->bytes, i->drops, i->decisions, (double)i->score, i->value,
		i->threshold, i->window_ns / 1000000, ev);
	jappend(buf, n, &o, ",\"action\":\"%s\",\"mode\":\"%s\",\"action_reason\":\"%s\"",
		zt_resp_act_name(i->act), zt_resp_mode_name(i->mode), why);
	if (i->act == ZT_RA_BLOCK || i->act == ZT_RA_ALREADY || i->act == ZT_RA_REFUSED) {
		char b[64];

		zt_addr_str(i->blocked_family, i->blocked, b, sizeof(b));
		jappend(buf, n, &o, ",\"blocked\":\"%s/%u\"", b, i->blocked_family == 6 ? 128 : 32);
	} else {
		jappend(buf, n, &o, ",\"blocked\":null");
	}
	if (i->act == ZT_RA_BLOCK || i->act == ZT_RA_ALREADY)
		jappend(buf, n, &o,
			",\"block_ttl_s\":%" PRIu64 ",\"blocked_until_unix_us\":%" PRId64
			",\"offence\":%u,\"block_ms\":%.3f",
			i->ttl_s, i->blocked_until_us, i->offence, i->block_ms);
	else
		jappend(buf, n, &o, ",\"block_ttl_s\":null,\"blocked_until_unix_us\":null");
	if (i->capture[0])
		jappend(buf, n, &o, ",\"capture\":\"%s\"", cap);
	else
		jappend(buf, n, &o, ",\"capture\":null");
	jappend(buf, n, &o, ",\"capture_files\":%u,\"version\":%" PRIu64 "}", i->capture_files,
		i->version);
	return o >= n ? -ENOSPC : 0;
}

static void post(struct zt_incidents *t, struct zt_incident *i, const char *kind, int64_t now_us,
		 uint64_t now_ns)
{
	char subj[320];

	i->version++;
	i->dirty = false;
	i->posted_ns = now_ns;
	(void)now_us;
	if (t->observe)
		t->observe(t->octx, kind, i);
	if (!t->post)
		return;
	zt_incident_subject(i, subj, sizeof(subj));
	if (zt_incident_json(i, NULL, t->buf, t->buflen) == 0) {
		t->post(t->ctx, kind, subj, t->buf);
		t->st.posts++;
	}
}

void zt_incidents_set_observer(struct zt_incidents *t, zt_incident_observe_fn fn, void *ctx)
{
	t->observe = fn;
	t->octx = ctx;
}

static void mk_key(struct ikey *k, uint8_t family, const uint8_t *addr, uint8_t threat,
		   uint8_t role, const uint8_t *peer)
{
	memset(k, 0, sizeof(*k));
	k->family = family;
	k->role = role;
	k->threat = threat;
	memcpy(k->addr, addr, zt_fam_len(family));
	if (threat == ZT_THREAT_IOC && peer)
		memcpy(k->peer, peer, zt_fam_len(family));
}

struct zt_incident *zt_incidents_lookup(struct zt_incidents *t, uint8_t family, const uint8_t *addr,
					enum zt_threat threat, enum zt_subject_role role)
{
	struct ikey k;
	struct ient *e;

	mk_key(&k, family, addr, (uint8_t)threat, (uint8_t)role, NULL);
	e = zt_dtable_find(&t->index, &k);
	return e ? t->open[e->slot] : NULL;
}

static void apply_action(struct zt_incident *i, const struct zt_resp_action *a, int64_t now_us,
			 uint64_t now_ns)
{
	/* "already" keeps the block it refers to; a refusal never hides an earlier block. */
	if (a->act == ZT_RA_NONE)
		return;
	if (a->act == ZT_RA_ALERT && i->act >= ZT_RA_BLOCK)
		return;
	if (a->act == ZT_RA_REFUSED && (i->act == ZT_RA_BLOCK || i->act == ZT_RA_ALREADY))
		return;
	if (a->act == ZT_RA_ALREADY && i->act == ZT_RA_BLOCK)
		return;
	i->act = a->act;
	i->mode = a->mode;
	snprintf(i->action_why, sizeof(i->action_why), "%s", a->why ? a->why : "");
	if (a->act == ZT_RA_BLOCK || a->act == ZT_RA_ALREADY || a->act == ZT_RA_REFUSED) {
		i->blocked_family = a->family;
		memcpy(i->blocked, a->addr, 16);
	}
	if (a->act == ZT_RA_BLOCK || a->act == ZT_RA_ALREADY) {
		i->ttl_s = a->ttl_ns / 1000000000ULL;
		i->offence = a->offence;
		i->blocked_until_us =
			now_us +
			(int64_t)((a->until_ns > now_ns ? a->until_ns - now_ns : 0) / 1000);
	}
}

struct zt_incident *zt_incidents_on_decision(struct zt_incidents *t, const struct zt_decision *d,
					     const struct zt_resp_action *a, uint64_t now_ns,
					     int64_t now_us, bool *opened)
{
	struct ikey k;
	struct ient *e;
	struct zt_incident *i;
	bool created;

	*opened = false;
	mk_key(&k, d->family, d->addr, d->threat, d->role, d->peer);
	e = zt_dtable_find(&t->index, &k);
	if (e) {
		i = t->open[e->slot];
		i->decisions++;
		if (d->score > i->score)
			i->score = d->score;
		i->value = d->value;
		i->threshold = d->threshold;
		i->window_ns = d->window_ns;
		memcpy(i->evidence, d->evidence, sizeof(i->evidence));
		snprintf(i->subtype, sizeof(i->subtype), "%s", d->subtype);
		i->last_ns = now_ns;
		i->last_us = now_us;
		apply_action(i, a, now_us, now_ns);
		i->dirty = true;
		return i;
	}
	if (t->n_open >= t->c.max_open) {
		t->st.refused_full++;
		return NULL;
	}
	i = calloc(1, sizeof(*i));
	if (!i)
		return NULL;
	e = zt_dtable_get(&t->index, &k, &created);
	if (!e) {
		free(i);
		t->st.refused_full++;
		return NULL;
	}
	zt_uuidv7(i->id);
	zt_uuid_format(i->id, i->ids, sizeof(i->ids));
	i->threat = d->threat;
	i->role = d->role;
	i->family = d->family;
	i->proto = d->proto;
	i->dport = d->dport;
	memcpy(i->addr, d->addr, 16);
	i->has_peer = d->has_peer;
	memcpy(i->peer, d->peer, 16);
	snprintf(i->subtype, sizeof(i->subtype), "%s", d->subtype);
	snprintf(i->workload, sizeof(i->workload), "%s", d->workload);
	i->first_ns = i->last_ns = now_ns;
	i->first_us = i->last_us = now_us;
	i->window_start_us =
		now_us - (int64_t)((now_ns > d->first_ns ? now_ns - d->first_ns : 0) / 1000);
	i->flows = d->flows;
	i->packets = d->packets;
	i->bytes = d->bytes;
	i->decisions = 1;
	i->score = d->score;
	i->value = d->value;
	i->threshold = d->threshold;
	i->window_ns = d->window_ns;
	memcpy(i->evidence, d->evidence, sizeof(i->evidence));
	i->open = true;
	i->dirty = true;
	apply_action(i, a, now_us, now_ns);
	e->slot = (uint32_t)t->n_open;
	t->open[t->n_open++] = i;
	t->st.opened[i->threat < ZT_THREAT_MAX ? i->threat : 0]++;
	*opened = true;
	return i;
}

int zt_incidents_attribute(struct zt_incidents *t, uint8_t family, const uint8_t *addr,
			   uint64_t flows, uint64_t packets, uint64_t bytes, uint64_t drops,
			   uint64_t now_ns, int64_t now_us)
{
	int touched = 0;

	if (!t->n_open)
		return 0;
	for (uint8_t th = 1; th < ZT_THREAT_MAX; th++) {
		struct zt_incident *i =
			zt_incidents_lookup(t, family, addr, (enum zt_threat)th, ZT_ROLE_SOURCE);

		if (!i)
			continue;
		i->flows += flows;
		i->packets += packets;
		i->bytes += bytes;
		i->drops += drops;
		i->last_ns = now_ns;
		i->last_us = now_us;
		i->dirty = true;
		touched++;
	}
	return touched;
}

void zt_incidents_publish(struct zt_incidents *t, struct zt_incident *i, int64_t now_us)
{
	if (i->published)
		return;
	i->published = true;
	post(t, i, "incident.open", now_us, i->last_ns);
}

struct zt_incident *zt_incidents_get(struct zt_incidents *t, const uint8_t id[16])
{
	for (size_t s = 0; s < t->n_open; s++)
		if (!memcmp(t->open[s]->id, id, 16))
			return t->open[s];
	return NULL;
}

void zt_incidents_touch(struct zt_incidents *t, struct zt_incident *i)
{
	(void)t;
	i->dirty = true;
}

static void close_slot(struct zt_incidents *t, size_t slot, const char *reason, uint64_t now_ns,
		       int64_t now_us)
{
	struct zt_incident *i = t->open[slot];
	struct ikey k;
	struct ient *e;

	if (!i->published)
		zt_incidents_publish(t, i, now_us);
	i->open = false;
	i->closed_us = now_us;
	snprintf(i->close_reason, sizeof(i->close_reason), "%s", reason);
	post(t, i, "incident.close", now_us, now_ns);
	mk_key(&k, i->family, i->addr, i->threat, i->role, i->peer);
	e = zt_dtable_find(&t->index, &k);
	if (e)
		zt_dtable_del(&t->index, e);
	/* Swap-remove, and point the moved incident's index entry at its new slot. */
	t->open[slot] = t->open[--t->n_open];
	t->open[t->n_open] = NULL;
	if (slot < t->n_open) {
		struct zt_incident *m = t->open[slot];

		mk_key(&k, m->family, m->addr, m->threat, m->role, m->peer);
		e = zt_dtable_find(&t->index, &k);
		if (e)
			e->slot = (uint32_t)slot;
	}
	t->closed[t->closed_next] = *i;
	t->closed_next = (t->closed_next + 1) % t->c.keep_closed;
	if (t->n_closed < t->c.keep_closed)
		t->n_closed++;
	t->st.closed++;
	free(i);
}

void zt_incidents_tick(struct zt_incidents *t, uint64_t now_ns, int64_t now_us)
{
	for (size_t s = 0; s < t->n_open;) {
		struct zt_incident *i = t->open[s];

		if (now_ns > i->last_ns && now_ns - i->last_ns >= t->c.idle_ns) {
			close_slot(t, s, "idle", now_ns, now_us);
			continue; /* another incident moved into slot s */
		}
		if (!i->published)
			zt_incidents_publish(t, i, now_us);
		else if (i->dirty && now_ns - i->posted_ns >= t->c.update_ns)
			post(t, i, "incident.update", now_us, now_ns);
		s++;
	}
}

void zt_incidents_flush(struct zt_incidents *t, int64_t now_us)
{
	for (size_t s = 0; s < t->n_open; s++) {
		if (!t->open[s]->published)
			zt_incidents_publish(t, t->open[s], now_us);
		else if (t->open[s]->dirty)
			post(t, t->open[s], "incident.update", now_us, t->open[s]->posted_ns);
	}
}

void zt_incidents_free(struct zt_incidents *t, uint64_t now_ns, int64_t now_us)
{
	if (!t)
		return;
	while (t->n_open)
		close_slot(t, t->n_open - 1, "agent-stopped", now_ns, now_us);
	zt_dtable_free(&t->index);
	free(t->open);
	free(t->closed);
	free(t->buf);
	free(t);
}

/* The id's start (its time) or its end (its random part, what ztctl shows). */
static bool id_match(const struct zt_incident *i, const char *id, size_t n)
{
	size_t l = strlen(i->ids);

	return !strncasecmp(i->ids, id, n) || (n <= l && !strcasecmp(i->ids + l - n, id));
}

const struct zt_incident *zt_incidents_find(struct zt_incidents *t, const char *id, int *matches)
{
	const struct zt_incident *hit = NULL;
	size_t n = strlen(id);

	*matches = 0;
	if (n < 4)
		return NULL;
	for (size_t s = 0; s < t->n_open; s++)
		if (id_match(t->open[s], id, n)) {
			hit = t->open[s];
			(*matches)++;
		}
	for (size_t c = 0; c < t->n_closed; c++)
		if (id_match(&t->closed[c], id, n)) {
			hit = &t->closed[c];
			(*matches)++;
		}
	return *matches == 1 ? hit : NULL;
}

static int newest_first(const void *a, const void *b)
{
	const struct zt_incident *x = *(const struct zt_incident *const *)a;
	const struct zt_incident *y = *(const struct zt_incident *const *)b;

	return memcmp(y->id, x->id, 16); /* UUIDv7: time-ordered */
}

size_t zt_incidents_list(struct zt_incidents *t, bool want_open, bool want_closed,
			 const struct zt_incident **out, size_t max)
{
	size_t n = 0;

	for (size_t s = 0; want_open && s < t->n_open && n < max; s++)
		out[n++] = t->open[s];
	for (size_t c = 0; want_closed && c < t->n_closed && n < max; c++)
		out[n++] = &t->closed[c];
	qsort(out, n, sizeof(*out), newest_first);
	return n;
}

void zt_incidents_get_stats(const struct zt_incidents *t, struct zt_incidents_stats *st)
{
	*st = t->st;
	memset(st->open, 0, sizeof(st->open));
	for (size_t s = 0; s < t->n_open; s++)
		if (t->open[s]->threat < ZT_THREAT_MAX)
			st->open[t->open[s]->threat]++;
}
