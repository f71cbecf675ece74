// SPDX-License-Identifier: GPL-2.0-only
/* The detection and response engine: inputs, decisions, actions (see engine.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "agent/log.h"
#include "agent/util.h"
#include "guard/blocklist.h"
#include "records/auditq.h"
#include "respond/engine_int.h"

#define SEC 1000000000ULL
#define MS 1000000ULL
#define CT_BATCH 1024 /* a read of ~0.25 ms: see zt_yield_due */
/*
 * outcome(): an entry that is no connection attempt of its originator (TCP
 * not opened by a bare SYN, ICMP not opened by a request).
 */
#define NOT_A_PROBE 0xff

/* ---- small helpers ---- */

static int64_t boot_to_unix_us(uint64_t boot_ns)
{
	return ((int64_t)boot_ns + zt_boot_to_unix_ns()) / 1000;
}

static uint16_t block_reason(uint8_t threat)
{
	switch (threat) {
	case ZT_THREAT_SCAN:
		return ZT_BR_SCAN;
	case ZT_THREAT_FLOOD:
		return ZT_BR_FLOOD;
	default:
		/* No reason codes of their own (include/ztagent.h): the note names the threat. */
		return ZT_BR_ANOMALY;
	}
}

static const char *refusal_names[6] = { "protected", "special-purpose", "node",
					"gateway",   "allowlist",	"other" };

static void count_refusal(struct zt_engine *e, const char *why)
{
	size_t i;

	for (i = 0; i < 5; i++)
		if (!strcmp(why, refusal_names[i]))
			break;
	e->st.refused++;
	e->st.refused_by[i]++;
}

/* ---- decisions ---- */

enum { DEFER_POST = 1, DEFER_UNWATCH, DEFER_LOG };

static void defer(struct zt_engine *e, struct deferred *x);

/* Under the lock: a warning logged after it. */
static void defer_log(struct zt_engine *e, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void defer_log(struct zt_engine *e, const char *event, const char *fmt, ...)
{
	struct deferred x = { .what = DEFER_LOG };
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	snprintf(x.kind, sizeof(x.kind), "%s", event);
	x.detail = strdup(line);
	if (!x.detail) {
		log_warn(event, "%s", line);
		return;
	}
	defer(e, &x);
}

/*
 * Under the lock: the response to one decision. A block is queued and
 * written right after the lock (the clock runs from the decision); a new
 * incident's capture and its first post come after the block, so neither
 * file creation nor logging delays the map write.
 */
static void handle(struct zt_engine *e, const struct zt_decision *d, uint64_t now_boot)
{
	struct zt_resp_action a;
	struct zt_incident *i;
	int64_t now_us = boot_to_unix_us(now_boot);
	uint64_t decided = zt_now_mono_ns();
	bool opened;
	char addr[64];

	if (d->threat >= ZT_THREAT_MAX)
		return;
	zt_respond_decide(e->resp, d, now_boot, &a);
	e->st.decisions[d->threat]++;
	if (a.act == ZT_RA_NONE)
		return;
	i = zt_incidents_on_decision(e->inc, d, &a, now_boot, now_us, &opened);
	if (!i) {
		defer_log(e, "incident_refused",
			  "threat=%s why=\"too many open incidents (response keeps at most 4096)\"",
			  zt_threat_name(d->threat));
		return;
	}
	if (opened && e->n_fresh < MAX_PENDING_BLOCKS) {
		struct fresh_incident *f = &e->fresh[e->n_fresh++];

		memcpy(f->id, i->id, 16);
		f->family = d->family;
		memcpy(f->addr, d->addr, 16);
		f->block_other = a.act == ZT_RA_BLOCK && memcmp(a.addr, d->addr, 16);
		f->block_family = a.family;
		memcpy(f->block_addr, a.addr, 16);
	}
	if (a.act == ZT_RA_REFUSED) {
		count_refusal(e, a.why);
		if (opened) {
			zt_addr_str(a.family, a.addr, addr, sizeof(addr));
			defer_log(
				e, "block_refused",
				"incident=%s threat=%s addr=%s list=%s why=\"never blocked: on the "
				"%s list; the incident stays an alert\"",
				i->ids, zt_threat_name(d->threat), addr, a.why, a.why);
		}
	}
	if (a.act == ZT_RA_BLOCK) {
		struct zt_block_action *b;

		if (e->n_pending >= MAX_PENDING_BLOCKS) {
			zt_respond_undo(e->resp, &a);
			e->st.block_failures++;
			return;
		}
		b = &e->pending[e->n_pending++];
		memset(b, 0, sizeof(*b));
		b->family = a.family;
		b->threat = d->threat;
		b->reason = block_reason(d->threat);
		memcpy(b->addr, a.addr, 16);
		b->ttl_ns = a.ttl_ns;
		memcpy(b->incident_id, i->id, 16);
		b->score = d->score;
		b->offence = a.offence;
		b->decided_ns = decided;
		b->decided_boot_ns = now_boot;
		b->packet_ns = d->ts_ns;
		/* The id's last 8 digits: its random part, unique where its first are not. */
		snprintf(b->note, sizeof(b->note), "%s/%.16s score %.2f incident %s",
			 zt_threat_name(d->threat), d->subtype, (double)d->score, i->ids + 28);
	}
}

/* After the lock: write the blocks decided under it. */
static void run_pending(struct zt_engine *e, struct zt_block_action *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (e->act)
			zt_actions_block(e->act, &v[k]);
}

/* ---- work queued under the lock, done after it ---- */

static void run_deferred_one(struct zt_engine *e, struct deferred *x)
{
	if (x->what == DEFER_POST && e->h.post)
		e->h.post(e->h.ctx, x->kind, x->subject ? x->subject : "",
			  x->detail ? x->detail : "");
	else if (x->what == DEFER_UNWATCH && e->fx)
		zt_forensics_unwatch(e->fx, x->id);
	else if (x->what == DEFER_LOG)
		log_warn(x->kind, "%s", x->detail ? x->detail : "");
	free(x->subject);
	free(x->detail);
}

/* Under the lock (or with the engine to itself): queues x, else does it now. */
static void defer(struct zt_engine *e, struct deferred *x)
{
	if (e->n_defer == e->cap_defer) {
		size_t cap = e->cap_defer ? e->cap_defer * 2 : 64;
		struct deferred *v = realloc(e->defer, cap * sizeof(*v));

		if (!v) {
			run_deferred_one(e, x);
			return;
		}
		e->defer = v;
		e->cap_defer = cap;
	}
	e->defer[e->n_defer++] = *x;
}

/* Under the lock: the queued work, taken out (*n items). */
static struct deferred *take_deferred(struct zt_engine *e, size_t *n)
{
	struct deferred *v = e->defer;

	*n = e->n_defer;
	if (!*n)
		return NULL;
	e->defer = NULL;
	e->n_defer = e->cap_defer = 0;
	return v;
}

/* After the lock: in the order queued. */
static void run_deferred(struct zt_engine *e, struct deferred *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		run_deferred_one(e, &v[k]);
	free(v);
}

/* Under the lock, taken with engine_lock*(): unlocks, then does the work queued under it. */
static void engine_unlock(struct zt_engine *e)
{
	size_t n;
	struct deferred *v = take_deferred(e, &n);

	pthread_mutex_unlock(&e->lock);
	run_deferred(e, v, n);
}

/* After the blocks: captures of the new incidents, their first post, their log line. */
static void run_fresh(struct zt_engine *e, const struct fresh_incident *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		const struct fresh_incident *f = &v[k];
		char path[ZT_INCIDENT_PATH_MAX] = "", addr[64], line[1536] = "";
		struct zt_incident *i;
		int r = -ENOENT;

		if (e->fx) {
			r = zt_forensics_watch(e->fx, f->id, f->family, f->addr, path,
					       sizeof(path));
			if (r == 0 && f->block_other)
				zt_forensics_watch(e->fx, f->id, f->block_family, f->block_addr,
						   NULL, 0);
		}
		engine_lock(e);
		i = zt_incidents_get(e->inc, f->id);
		if (i) {
			if (r == 0) {
				snprintf(i->capture, sizeof(i->capture), "%s", path);
				i->capture_files = 1;
			}
			zt_incidents_publish(e->inc, i, boot_to_unix_us(zt_now_boot_ns()));
			if (e->h.incident)
				e->h.incident(e->h.ctx, i, true);
			zt_addr_str(i->family, i->addr, addr, sizeof(addr));
			/* Formatted here, logged after the lock. */
			snprintf(line, sizeof(line),
				 "incident=%s threat=%s subtype=%s %s=%s score=%.3f action=%s "
				 "reason=\"%s\" evidence=\"%s\" capture=%s",
				 i->ids, zt_threat_name(i->threat), i->subtype,
				 i->role == ZT_ROLE_SOURCE ? "src" : "victim", addr,
				 (double)i->score, zt_resp_act_name(i->act), i->action_why,
				 i->evidence, i->capture[0] ? i->capture : "-");
		}
		engine_unlock(e);
		if (line[0])
			log_warn("incident_open", "%s", line);
		if (r && r != -ENOENT && e->fx) {
			zt_addr_str(f->family, f->addr, addr, sizeof(addr));
			log_warn("capture_not_started", "addr=%s error=\"%s\"", addr, strerror(-r));
		}
	}
}

static void fresh_job(void *arg, const void *data, size_t len)
{
	run_fresh(arg, data, len / sizeof(struct fresh_incident));
}

/* The new incidents' captures and posts: later when the hooks allow it. */
static void run_fresh_later(struct zt_engine *e, const struct fresh_incident *v, size_t n)
{
	if (!e->h.later) {
		run_fresh(e, v, n);
		return;
	}
	for (size_t k = 0; k < n; k++)
		e->h.later(fresh_job, e, &v[k], sizeof(v[k]));
}

/* Takes the pending blocks and new incidents out (under the lock). */
static size_t take_pending(struct zt_engine *e, struct zt_block_action *v,
			   struct fresh_incident *fv, size_t *nf)
{
	size_t n = e->n_pending;

	memcpy(v, e->pending, n * sizeof(*v));
	e->n_pending = 0;
	*nf = e->n_fresh;
	memcpy(fv, e->fresh, *nf * sizeof(*fv));
	e->n_fresh = 0;
	return n;
}

/* Runs the statements under the lock taken by lockfn, then writes the blocks they decided. */
#define WITH_PENDING_BY(lockfn, e, ...)                          \
	do {                                                     \
		struct zt_block_action _blk[MAX_PENDING_BLOCKS]; \
		struct fresh_incident _fr[MAX_PENDING_BLOCKS];   \
		struct deferred *_dv;                            \
		size_t _nblk, _nfr, _ndv;                        \
		lockfn(e);                                       \
		__VA_ARGS__;                                     \
		_nblk = take_pending(e, _blk, _fr, &_nfr);       \
		_dv = take_deferred(e, &_ndv);                   \
		pthread_mutex_unlock(&(e)->lock);                \
		run_pending(e, _blk, _nblk);                     \
		run_fresh_later(e, _fr, _nfr);                   \
		run_deferred(e, _dv, _ndv);                      \
	} while (0)

/* The loop's and the bookkeeping thread's entries. */
#define WITH_PENDING(e, ...) WITH_PENDING_BY(engine_lock, e, __VA_ARGS__)
/* The ring-buffer consumer's detector records: ahead of the loop's next slice. */
#define WITH_PENDING_URGENT(e, ...) WITH_PENDING_BY(engine_lock_urgent, e, __VA_ARGS__)

void zt_engine_decide(struct zt_engine *e, const struct zt_decision *d)
{
	WITH_PENDING(e, handle(e, d, zt_now_boot_ns()));
}

static void handle_ioc(struct zt_engine *e, const struct zt_decision *d, bool dropped,
		       uint64_t now_boot)
{
	struct zt_resp_action a = {
		.act = dropped ? ZT_RA_BLOCK : ZT_RA_ALERT,
		.mode = dropped ? ZT_RESP_BLOCK : ZT_RESP_ALERT,
		.family = d->family,
		.why = dropped ? "dropped by the feed's entry" : "the feed's action is alert",
	};
	int64_t now_us = boot_to_unix_us(now_boot);
	struct zt_incident *i;
	bool opened;

	memcpy(a.addr, d->peer, 16);
	e->st.decisions[ZT_THREAT_IOC]++;
	i = zt_incidents_on_decision(e->inc, d, &a, now_boot, now_us, &opened);
	if (!i) {
		defer_log(
			e, "incident_refused", "%s",
			"threat=ioc why=\"too many open incidents (response keeps at most 4096)\"");
		return;
	}
	if (!opened)
		i->flows++;
	if (dropped)
		i->drops++;
	/* A new one gets its forensic capture of the pod, as a detector's would. */
	if (opened && e->n_fresh < MAX_PENDING_BLOCKS) {
		struct fresh_incident *f = &e->fresh[e->n_fresh++];

		memset(f, 0, sizeof(*f));
		memcpy(f->id, i->id, 16);
		f->family = d->family;
		memcpy(f->addr, d->addr, 16);
	}
}

void zt_engine_on_ioc(struct zt_engine *e, const struct zt_decision *d, bool dropped)
{
	if (d->threat != ZT_THREAT_IOC)
		return;
	WITH_PENDING(e, handle_ioc(e, d, dropped, zt_now_boot_ns()));
}

/* ---- actions done (on the thread that wrote the block) ---- */

static void block_done(void *ctx, const struct zt_block_action *b, int result, uint64_t lat_ns,
		       const char *err)
{
	struct zt_engine *e = ctx;
	struct zt_incident *i;
	char addr[64], cidr[80], id[40], d[1024], note[ZT_NOTE_LEN * 2], q[400];
	double ms = (double)lat_ns / 1e6;
	uint64_t since_packet = 0, to_decision = 0, to_write = 0;
	static const char *const paths[] = { "loop", "direct" };

	zt_addr_str(b->family, b->addr, addr, sizeof(addr));
	snprintf(cidr, sizeof(cidr), "%s/%u", addr, b->family == 6 ? 128 : 32);
	zt_uuid_format(b->incident_id, id, sizeof(id));
	if (b->packet_ns) {
		uint64_t now = zt_now_boot_ns();

		since_packet = now > b->packet_ns ? now - b->packet_ns : 0;
		if (b->decided_boot_ns > b->packet_ns)
			to_decision = b->decided_boot_ns - b->packet_ns;
	}
	if (b->write_ns > b->decided_ns)
		to_write = b->write_ns - b->decided_ns;
	engine_lock(e);
	i = zt_incidents_get(e->inc, b->incident_id);
	if (result == 0) {
		e->st.blocks[b->threat < ZT_THREAT_MAX ? b->threat : 0]++;
		if (i) {
			i->block_ms = ms;
			zt_incidents_touch(e->inc, i);
		}
	} else {
		struct zt_resp_action a = { .act = ZT_RA_BLOCK, .family = b->family };

		memcpy(a.addr, b->addr, 16);
		zt_respond_undo(e->resp, &a);
		e->st.block_failures++;
		if (i) {
			i->act = ZT_RA_ALERT;
			snprintf(i->action_why, sizeof(i->action_why), "block failed: %.48s",
				 err ? err : strerror(-result));
			zt_incidents_touch(e->inc, i);
		}
	}
	engine_unlock(e);
	if (result) {
		log_error("detector_block_failed", "incident=%s cidr=%s error=%s", id, cidr,
			  zt_log_quote(q, sizeof(q), err && *err ? err : strerror(-result)));
		return;
	}
	if (e->h.observe_latency)
		e->h.observe_latency(e->h.ctx, (double)lat_ns / 1e9);
	log_warn("detector_block",
		 "incident=%s cidr=%s threat=%s ttl_s=%" PRIu64 " offence=%u score=%.3f "
		 "decision_to_map_ms=%.3f packet_to_map_ms=%.3f packet_to_decision_ms=%.3f "
		 "decision_to_write_ms=%.3f path=%s note=%s",
		 id, cidr, zt_threat_name(b->threat), (uint64_t)(b->ttl_ns / SEC), b->offence,
		 (double)b->score, ms, (double)since_packet / 1e6, (double)to_decision / 1e6,
		 (double)to_write / 1e6, b->path < 2 ? paths[b->path] : "?",
		 zt_log_quote(q, sizeof(q), b->note));
	if (e->h.post) {
		zt_json_escape(b->note, note, sizeof(note));
		snprintf(d, sizeof(d),
			 "{\"ttl_s\":%" PRIu64 ",\"kind\":\"%s\",\"source\":\"detector\","
			 "\"reason\":\"%s\",\"replaced\":false,\"incident_id\":\"%s\","
			 "\"threat_type\":\"%s\",\"detector\":\"%s\",\"score\":%.4f,\"offence\":%u,"
			 "\"decision_to_map_ms\":%.3f}",
			 (uint64_t)(b->ttl_ns / SEC), zt_block_reason_name(b->reason), note, id,
			 zt_threat_name(b->threat), zt_threat_name(b->threat), (double)b->score,
			 b->offence, ms);
		e->h.post(e->h.ctx, "block.add", cidr, d);
	}
}

/* ---- audit posts: the alert stream sees them first ---- */

static void observe_incident(void *ctx, const char *kind, const struct zt_incident *i)
{
	struct zt_engine *e = ctx;
	struct alert_note a;
	const char *ev = kind + 9; /* after "incident." */

	memset(&a, 0, sizeof(a));
	a.unix_ms = (uint64_t)(i->last_us / 1000);
	snprintf(a.kind, sizeof(a.kind), "%s", zt_threat_name(i->threat));
	snprintf(a.event, sizeof(a.event), "%s", ev);
	snprintf(a.severity, sizeof(a.severity), "%s",
		 i->act == ZT_RA_BLOCK || i->act == ZT_RA_ALREADY ? "critical" : "warning");
	snprintf(a.id, sizeof(a.id), "%s", i->ids);
	zt_incident_subject(i, a.subject, sizeof(a.subject));
	a.count = i->flows ? i->flows : i->packets;
	snprintf(a.action, sizeof(a.action), "%s", zt_resp_act_name(i->act));
	a.score = i->score;
	snprintf(a.detail, sizeof(a.detail),
		 "flows %" PRIu64 ", packets %" PRIu64 ", dropped %" PRIu64 "; %.400s", i->flows,
		 i->packets, i->drops, i->evidence);
	engine_alert_push(e, &a);
	if (!strcmp(ev, "close") && e->fx) {
		/* The forensics lock (a flush holds it for ms): after the engine's. */
		struct deferred x = { .what = DEFER_UNWATCH };

		memcpy(x.id, i->id, 16);
		defer(e, &x);
	}
	if (!strcmp(ev, "close") && e->h.incident)
		e->h.incident(e->h.ctx, i, false);
}

/* Under the engine's lock: the post (a spool write) comes after it. */
static void post_incident(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct zt_engine *e = ctx;
	struct deferred x = { .what = DEFER_POST };

	if (!e->h.post)
		return;
	snprintf(x.kind, sizeof(x.kind), "%s", kind);
	x.subject = strdup(subject);
	x.detail = strdup(detail);
	if (!x.subject || !x.detail) {
		free(x.subject);
		free(x.detail);
		e->h.post(e->h.ctx, kind, subject, detail);
		return;
	}
	defer(e, &x);
}

static uint64_t json_u64(const char *j, const char *key)
{
	const char *p = strstr(j, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void json_str(const char *j, const char *key, char *buf, size_t n)
{
	const char *p = strstr(j, key);
	size_t k = 0;

	buf[0] = '\0';
	if (!p)
		return;
	for (p += strlen(key); *p && *p != '"' && k + 1 < n; p++)
		buf[k++] = *p;
	buf[k] = '\0';
}

/* Aggregated denials: one alert line per window start and end. */
static void post_denial(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct zt_engine *e = ctx;
	struct alert_note a;
	char verdict[16];
	uint64_t count = json_u64(detail, "\"count\":");

	memset(&a, 0, sizeof(a));
	a.unix_ms = zt_now_unix_ns() / 1000000;
	json_str(detail, "\"verdict\":\"", verdict, sizeof(verdict));
	snprintf(a.kind, sizeof(a.kind), "%s",
		 !strcmp(verdict, "denied") ? "policy-deny" : "policy-audit");
	snprintf(a.event, sizeof(a.event), "%s", count > 1 ? "update" : "open");
	snprintf(a.severity, sizeof(a.severity), "%s",
		 !strcmp(verdict, "denied") ? "warning" : "info");
	json_str(detail, "\"alert_id\":\"", a.id, sizeof(a.id));
	snprintf(a.subject, sizeof(a.subject), "%s", subject);
	a.count = count;
	snprintf(a.action, sizeof(a.action), "%s", !strcmp(verdict, "denied") ? "denied" : "audit");
	json_str(detail, "\"rule\":\"", a.detail, sizeof(a.detail));
	engine_alert_push(e, &a);
	if (e->h.post)
		e->h.post(e->h.ctx, kind, subject, detail);
}

static void post_capture(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct zt_engine *e = ctx;

	if (e->h.post)
		e->h.post(e->h.ctx, kind, subject, detail);
}

static bool fx_ifname(void *ctx, uint32_t ifindex, char *buf, size_t n)
{
	struct zt_engine *e = ctx;

	if (e->h.ifname && e->h.ifname(e->h.ctx, ifindex, buf, n))
		return true;
	zt_ifname(ifindex, buf, n);
	return true;
}

/* ---- life ---- */

static int is_endpoint(void *ctx, uint8_t family, const uint8_t *addr)
{
	struct zt_engine *e = ctx;

	return e->h.endpoint ? e->h.endpoint(e->h.ctx, family, addr) : 0;
}

static int allowlisted(void *ctx, uint8_t family, const uint8_t *addr)
{
	struct zt_engine *e = ctx;

	return e->h.allowlisted ? e->h.allowlisted(e->h.ctx, family, addr) : 0;
}

static double ppm(uint32_t v)
{
	return (double)v / 1e6;
}

int zt_engine_new(const struct zt_config *cfg, const struct zt_engine_hooks *hooks,
		  struct zt_engine **out, char *err, size_t errlen)
{
	/* enum zt_flood_kind -> enum zt_rl_kind */
	static const int rl_kind[ZT_FLOOD_ALL + 1] = { ZT_RL_SYN, ZT_RL_UDP, ZT_RL_ICMP,
						       ZT_RL_ALL };
	struct zt_trw_params tp;
	struct zt_flood_params fp;
	struct zt_slowconn_params sp;
	struct zt_bf_params bp;
	struct zt_exfil_params xp;
	struct zt_respond_cfg rc;
	struct zt_incidents_cfg ic;
	struct zt_denyagg_cfg dc;
	struct zt_forensics_cfg fc;
	struct zt_engine *e;
	int r;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->h = *hooks;
	snprintf(e->node, sizeof(e->node), "%s", cfg->node);
	e->probe_timeout_ns = cfg->detection.scan.probe_timeout_ns;
	/* The consumer (SCHED_FIFO with detection.realtime_priority) waits on it. */
	zt_mutex_init_pi(&e->lock, false);
	pthread_mutex_init(&e->ring_lock, NULL);

	zt_trw_defaults(&tp);
	tp.theta0 = ppm(cfg->detection.scan.theta0_ppm);
	tp.theta1 = ppm(cfg->detection.scan.theta1_ppm);
	tp.alpha = ppm(cfg->detection.scan.alpha_ppm);
	tp.beta = ppm(cfg->detection.scan.beta_ppm);
	if (cfg->detection.scan.max_sources) {
		tp.max_sources = cfg->detection.scan.max_sources;
		tp.max_pairs = cfg->detection.scan.max_sources;
	}
	zt_flood_defaults(&fp);
	fp.window_ns = cfg->detection.flood.window_ns;
	for (int k = 0; k <= ZT_FLOOD_ALL; k++) {
		/* The detector follows the kernel's rate limit unless told otherwise. */
		fp.src_rate[k] = zt_config_flood_rate(cfg, rl_kind[k], NULL);
		fp.dst_rate[k] = fp.src_rate[k] * cfg->detection.flood.dst_factor;
	}
	/* Per source only: the kernel counts no resets per destination. */
	fp.src_rate[ZT_FLOOD_OUT_OF_STATE] = cfg->detection.flood.out_of_state;
	fp.dst_rate[ZT_FLOOD_OUT_OF_STATE] = 0;
	zt_slowconn_defaults(&sp);
	sp.min_conns = cfg->detection.slowconn.min_conns;
	sp.min_age_ns = cfg->detection.slowconn.min_age_ns;
	sp.max_rate = cfg->detection.slowconn.max_rate;
	zt_bf_defaults(&bp);
	bp.min_attempts = cfg->detection.bruteforce.min_attempts;
	bp.window_ns = cfg->detection.bruteforce.window_ns;
	bp.refused_window_ns = cfg->detection.bruteforce.refused_window_ns;
	bp.max_duration_ns = cfg->detection.bruteforce.max_duration_ns;
	zt_exfil_defaults(&xp);
	xp.interval_ns = cfg->detection.exfiltration.interval_ns;
	xp.target_fpr = ppm(cfg->detection.target_fpr_ppm);
	xp.min_bytes = cfg->detection.exfiltration.min_bytes;
	xp.new_dest_bytes = cfg->detection.exfiltration.new_dest_bytes;
	xp.warmup = cfg->detection.exfiltration.warmup;
	zt_respond_cfg_defaults(&rc);
	rc.mode = cfg->response.mode;
	for (int t = ZT_THREAT_SCAN; t <= ZT_THREAT_MODEL; t++)
		rc.detector_mode[t] = cfg->response.detectors[t - ZT_THREAT_SCAN];
	rc.endpoints_mode =
		cfg->response.endpoints == ZT_RESPONSE_BLOCK ? ZT_RESP_BLOCK : ZT_RESP_ALERT;
	rc.block_ttl_ns = cfg->response.block_ttl_ns;
	rc.max_ttl_ns = cfg->response.max_ttl_ns;
	rc.protected_cidrs = cfg->detection.protected_cidrs;
	rc.n_protected = cfg->detection.n_protected;
	zt_incidents_cfg_defaults(&ic);
	ic.update_ns = cfg->response.incident_update_ns;
	ic.idle_ns = cfg->response.incident_idle_ns;
	zt_denyagg_cfg_defaults(&dc);
	dc.window_ns = cfg->response.denial_window_ns;
	zt_forensics_cfg_defaults(&fc);
	snprintf(fc.dir, sizeof(fc.dir), "%s", cfg->forensics.dir);
	fc.max_bytes = cfg->forensics.max_bytes;
	fc.file_bytes = cfg->forensics.file_bytes;
	fc.max_files = cfg->forensics.max_files;
	fc.snaplen = cfg->forensics.snaplen;
	fc.rate = cfg->forensics.rate;

	r = zt_trw_new(&tp, &e->trw);
	if (!r)
		r = zt_flood_new(&fp, &e->flood);
	if (!r)
		r = zt_slowconn_new(&sp, &e->slow);
	if (!r)
		r = zt_bf_new(&bp, &e->bf);
	if (!r)
		r = zt_exfil_new(&xp, &e->exfil);
	if (!r)
		r = zt_respond_new(&rc, allowlisted, e, &e->resp);
	if (!r)
		zt_respond_set_endpoint_fn(e->resp, is_endpoint);
	if (!r)
		r = zt_incidents_new(&ic, post_incident, e, &e->inc);
	if (!r)
		r = zt_denyagg_new(&dc, post_denial, e, &e->deny);
	if (!r)
		r = zt_dtable_init(&e->seen, cfg->policy.conntrack_max, 16, 24, 0x5ee);
	if (r) {
		zt_seterr(err, errlen, "detection: cannot set up the detectors: %s", strerror(-r));
		goto fail;
	}
	zt_incidents_set_observer(e->inc, observe_incident, e);
	r = zt_forensics_new(&fc, post_capture, fx_ifname, e, &e->fx, err, errlen);
	if (r)
		goto fail;
	e->ring = calloc(ALERT_RING, sizeof(*e->ring));
	if (!e->ring) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "out of memory");
		goto fail;
	}
	e->next_seq = 1;
	*out = e;
	return 0;
fail:
	zt_engine_free(e);
	return r;
}

/* The daemon's writer with the daemon's context. */
static int write_block(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	struct zt_engine *e = ctx;

	if (!e->h.write_block) {
		zt_seterr(err, errlen, "no blocklist");
		return -ENOTSUP;
	}
	return e->h.write_block(e->h.ctx, a, err, errlen);
}

/*
 * The node's addresses and gateways, read again (DHCP, a new uplink), into
 * the never-block lists; then those lists to the never_cidrs hook.
 */
static void refresh_node(struct zt_engine *e)
{
	struct zt_cidr *a = NULL, *g = NULL, *v = NULL;
	size_t na = 0, ng = 0, nv = 0;
	int r = -1;

	if (zt_respond_read_node(&a, &na, &g, &ng) == 0)
		WITH_PENDING(e, zt_respond_set_node(e->resp, a, na, g, ng));
	free(a);
	free(g);
	if (!e->h.never_cidrs)
		return;
	engine_lock(e);
	r = zt_respond_never_cidrs(e->resp, &v, &nv);
	engine_unlock(e);
	if (r == 0)
		e->h.never_cidrs(e->h.ctx, v, nv);
	free(v);
}

int zt_engine_start(struct zt_engine *e, char *err, size_t errlen)
{
	int r = zt_actions_new(write_block, block_done, e, &e->act);

	if (r) {
		zt_seterr(err, errlen, "detection: cannot set up the block queue: %s",
			  strerror(-r));
		return r;
	}
	/* The lists in force from the start, not from the first tick. */
	e->last_node_refresh = zt_now_mono_ns();
	refresh_node(e);
	return 0;
}

void zt_engine_free(struct zt_engine *e)
{
	if (!e)
		return;
	zt_actions_free(e->act);
	zt_denyagg_free(e->deny);
	zt_incidents_free(e->inc, zt_now_boot_ns(), zt_now_unix_ns() / 1000);
	/* The closes' posts and capture ends (the engine is ours alone now). */
	{
		size_t n;
		struct deferred *v = take_deferred(e, &n);

		run_deferred(e, v, n);
	}
	zt_forensics_free(e->fx);
	zt_trw_free(e->trw);
	zt_flood_free(e->flood);
	zt_slowconn_free(e->slow);
	zt_bf_free(e->bf);
	zt_exfil_free(e->exfil);
	zt_respond_free(e->resp);
	zt_dtable_free(&e->seen);
	free(e->ct_keys);
	free(e->ct_vals);
	free(e->jobs);
	free(e->ring);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->ring_lock);
	free(e);
}

/* ---- inputs ---- */

static bool is_world(int64_t id)
{
	return id == ZT_ID_WORLD_V4 || id == ZT_ID_WORLD_V6 ||
	       (id >= ZT_ID_FIRST_CIDR && id < (int64_t)ZT_ID_FIRST_PORT_CLASS);
}

static bool is_workload(int64_t id)
{
	return id >= ZT_ID_FIRST_LABELS && id < ZT_ID_FIRST_CIDR;
}

/* Flow records per hold of the lock, at most (each gives two decisions at most). */
#define FLOWS_SLICE 64
#define FLOWS_HOLD_NS (MS / 2)

/*
 * Under the lock: records from k on, until FLOWS_SLICE of them, about
 * FLOWS_HOLD_NS or a detector record waiting for the lock. The next index.
 */
static size_t flows_slice(struct zt_engine *e, const struct zt_flow_record *recs, size_t k,
			  size_t n, uint64_t now, int64_t off)
{
	uint64_t t0 = zt_now_mono_ns();
	size_t end = n - k > FLOWS_SLICE ? k + FLOWS_SLICE : n;

	while (k < end) {
		const struct zt_flow_record *f = &recs[k++];
		uint8_t fam = f->family == AF_INET6 ? 6 : 4;
		struct zt_decision d[2];
		int nd;

		e->st.records++;
		if (f->kind != ZT_FLOW_KIND_FLOW)
			goto next;
		zt_incidents_attribute(e->inc, fam, f->source_ip, 1, (uint64_t)f->packet_count,
				       (uint64_t)(f->bytes_sent + f->bytes_received), 0, now,
				       f->end_time_us);
		if (!(f->present & ZT_FR_HAS_SID) || !(f->present & ZT_FR_HAS_DID) ||
		    !is_workload(f->source_identity) || !is_world(f->dest_identity) ||
		    f->bytes_sent <= 0)
			goto next;
		{
			struct zt_egress eg = {
				.family = fam,
				.workload = f->source_workload,
				.bytes = (uint64_t)f->bytes_sent,
				.packets = (uint64_t)f->packets_sent,
				/* The record's end on the boot clock the detectors use. */
				.ts_ns = (uint64_t)(f->end_time_us * 1000 - off),
			};

			memcpy(eg.src, f->source_ip, 16);
			memcpy(eg.dst, f->dest_ip, 16);
			nd = zt_exfil_observe(e->exfil, &eg, d);
		}
		for (int j = 0; j < nd; j++)
			handle(e, &d[j], now);
next:
		if (engine_urgent_waiting(e) || zt_now_mono_ns() - t0 >= FLOWS_HOLD_NS)
			break;
	}
	return k;
}

/* A batch of records (thousands under a flood of flows) in short holds of the lock. */
void zt_engine_on_flows(struct zt_engine *e, const struct zt_flow_record *recs, size_t n)
{
	uint64_t now = zt_now_boot_ns();
	int64_t off = zt_boot_to_unix_ns();

	for (size_t k = 0; k < n;)
		WITH_PENDING(e, k = flows_slice(e, recs, k, n, now, off));
}

void zt_engine_on_xdp_drop(struct zt_engine *e, const struct zt_ev_xdp_drop *ev)
{
	uint32_t rep = ev->represents ? ev->represents : 1;
	uint64_t now = ev->hdr.ts_ns;
	int touched = 0;

	if (ev->family != 4 && ev->family != 6)
		return;
	engine_lock(e);
	touched =
		zt_incidents_attribute(e->inc, ev->family, ev->saddr, 0, rep,
				       (uint64_t)ev->pkt_len * rep, rep, now, boot_to_unix_us(now));
	engine_unlock(e);
	if (touched && e->fx)
		zt_forensics_xdp_drop(e->fx, ev, (uint64_t)((int64_t)now + zt_boot_to_unix_ns()),
				      zt_xdp_reason_name(ev->reason));
	/*
	 * A TCP or UDP header the IP length cuts short, naming its port: a
	 * probe no stack sends (RFC 1858's tiny first fragment, nmap -f, or a
	 * crafted segment). The guard dropped it, so nothing answers it: a
	 * failed first contact for the scan detector, like a probe the guard
	 * dropped (src/agent/daemon_detect.c).
	 */
	if (ev->reason == ZT_XR_BAD_L4 && ev->dport &&
	    (ev->proto == IPPROTO_TCP || ev->proto == IPPROTO_UDP)) {
		struct zt_probe p = { .family = ev->family,
				      .proto = ev->proto,
				      .dport = ev->dport,
				      .outcome = ZT_PROBE_FAIL_TIMEOUT,
				      .ts_ns = now };

		memcpy(p.src, ev->saddr, 16);
		memcpy(p.dst, ev->daddr, 16);
		zt_engine_on_probe(e, &p);
	}
}

void zt_engine_on_violation(struct zt_engine *e, const struct zt_seg_violation *v)
{
	zt_denyagg_add(e->deny, v, zt_now_boot_ns(), zt_now_unix_ns() / 1000);
}

void zt_engine_on_probe(struct zt_engine *e, const struct zt_probe *p)
{
	struct zt_decision d;

	WITH_PENDING_URGENT(e, {
		e->st.probes++;
		if (zt_trw_observe(e->trw, p, &d))
			handle(e, &d, zt_now_boot_ns());
	});
}

void zt_engine_on_rate(struct zt_engine *e, const struct zt_rate_sample *s)
{
	struct zt_decision d;

	WITH_PENDING_URGENT(e, {
		if (zt_flood_sample(e->flood, s, &d))
			handle(e, &d, zt_now_boot_ns());
	});
}

void zt_engine_on_packets(struct zt_engine *e, uint8_t family, const uint8_t *src,
			  const uint8_t *dst, enum zt_flood_kind kind, uint32_t n, uint64_t ts_ns)
{
	struct zt_decision d[2];

	WITH_PENDING_URGENT(e, {
		int nd = zt_flood_add(e->flood, family, src, dst, kind, n, ts_ns, d);

		for (int j = 0; j < nd; j++)
			handle(e, &d[j], zt_now_boot_ns());
	});
}

int zt_engine_on_capture(struct zt_engine *e, uint64_t ts_boot_ns, uint32_t ifindex,
			 uint8_t verdict, const char *why, const uint8_t *pkt, uint32_t caplen,
			 uint32_t origlen)
{
	if (!e->fx)
		return 0;
	return zt_forensics_packet(e->fx, (uint64_t)((int64_t)ts_boot_ns + zt_boot_to_unix_ns()),
				   ifindex, verdict, why, pkt, caplen, origlen);
}

enum zt_threat zt_engine_source_threat(struct zt_engine *e, uint8_t family, const uint8_t *addr,
				       float *score)
{
	enum zt_threat t = ZT_THREAT_NONE;
	struct zt_incident *i;

	engine_lock(e);
	for (unsigned int k = ZT_THREAT_SCAN; k < ZT_THREAT_MAX && !t; k++)
		if ((i = zt_incidents_lookup(e->inc, family, addr, (enum zt_threat)k,
					     ZT_ROLE_SOURCE))) {
			t = (enum zt_threat)k;
			if (score)
				*score = i->score;
		}
	engine_unlock(e);
	return t;
}

/* ---- the conntrack sweep ---- */

/* Remembered per conntrack entry (by its key's hash and first packet): what it gave. */
struct seen_key {
	uint64_t h, first_ns;
};

struct seen_ent {
	struct seen_key k;
	uint32_t gen;
	uint8_t probed, ended;
	uint8_t _pad[2];
};

static void to_conn(const struct zt_ct_key *k, const struct zt_ct_val *v, struct zt_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->family = k->family == 6 ? 6 : 4;
	c->proto = k->proto;
	c->state = v->state;
	c->flags[0] = v->flags_seen[0];
	c->flags[1] = v->flags_seen[1];
	c->sport = k->sport;
	c->dport = k->dport;
	memcpy(c->src, k->saddr, 16);
	memcpy(c->dst, k->daddr, 16);
	c->first_ns = v->first_ns;
	c->last_ns = zt_ct_last_ns(v);
	if (v->held_ms)
		c->held_ns = v->first_ns + (uint64_t)(v->held_ms - 1) * 1000000ULL;
	c->packets[0] = v->d[0].packets;
	c->packets[1] = v->d[1].packets;
	c->bytes[0] = v->d[0].bytes;
	c->bytes[1] = v->d[1].bytes;
	c->syns[0] = v->syn[0];
	c->syns[1] = v->syn[1];
	c->zero_win = v->zero_win;
	/*
	 * Refused with nothing served since: its logins failed (a challenge
	 * answered did not); those counted as they were (ZT_EV_REFUSED) apart.
	 */
	if (v->resp & ZT_CT_RESP_REFUSED) {
		c->refused_live = v->ssh.clear_live <= v->refused ? v->ssh.clear_live : v->refused;
		c->refused = v->refused - c->refused_live;
	}
	c->served = (v->resp & ZT_CT_RESP_SERVED) != 0;
	c->challenged = (v->resp & ZT_CT_RESP_CHALLENGED) != 0;
	c->ssh_fails = zt_ssh_auth_failed(&v->ssh);
	c->ssh_live = zt_ssh_auth_live(&v->ssh);
	c->req_unacked = (v->req_ack & ZT_CT_REQ_SENT) != 0;
	c->req_whole = (v->req_ack & ZT_CT_REQ_WHOLE) != 0;
}

/*
 * The receiving endpoint's entry of a flow between two endpoints of this
 * node: the source's entry speaks for the flow (the sweep, session ends).
 */
static bool receiver_entry(const struct zt_ct_val *v)
{
	return v->peer_ep_id && v->dir == ZT_DIR_INGRESS;
}

/*
 * Whether the end of the session of entry k, first seen at first_ns, came
 * already. tc_endpoint sends it from the packet that moved the entry to
 * CLOSED, and the two directions' last packets on two CPUs at once can
 * both do that (the state is a plain store): one session, two ends, and
 * the brute-force detector would count its attempts twice. A later
 * session on the same tuple has another first packet. Under the lock.
 */
static bool session_repeated(struct zt_engine *e, const struct zt_ct_key *k, uint64_t first_ns)
{
	uint64_t h = zt_detect_hash(k, sizeof(*k), first_ns) | 1, *slot;

	slot = &e->sessions_seen[h & (ZT_SESSIONS_SEEN - 1)];
	if (*slot == h)
		return true;
	*slot = h;
	return false;
}

void zt_engine_on_session(struct zt_engine *e, const struct zt_ct_key *k, const struct zt_ct_val *v)
{
	struct zt_decision d;
	struct zt_conn c;

	if (k->proto != 6 || v->state != ZT_CT_CLOSED || receiver_entry(v))
		return;
	to_conn(k, v, &c);
	WITH_PENDING_URGENT(e, {
		if (session_repeated(e, k, v->first_ns)) {
			e->st.sessions_repeated++;
		} else {
			e->st.sessions++;
			if (zt_bf_observe(e->bf, &c, &d))
				handle(e, &d, zt_now_boot_ns());
		}
	});
}

/*
 * A session of the node's own, in the shape to_conn() gives the conntrack's:
 * its socket was accepted, so a handshake both ways; its payload counted
 * by the kernel (has_payload), headers estimated on top.
 */
static void host_to_conn(const struct zt_ev_host_session *ev, struct zt_conn *c)
{
	unsigned int hdr = ev->family == 6 ? 60 : 40; /* IP and TCP headers, about */

	memset(c, 0, sizeof(*c));
	c->family = ev->family;
	c->proto = 6;
	c->state = ZT_CT_CLOSED;
	c->flags[0] = ZT_DF_SYN | ZT_DF_ACK;
	c->flags[1] = ZT_DF_SYN | ZT_DF_ACK;
	c->sport = ev->sport;
	c->dport = ev->dport;
	memcpy(c->src, ev->saddr, 16);
	memcpy(c->dst, ev->daddr, 16);
	c->first_ns = ev->first_ns;
	c->last_ns = ev->hdr.ts_ns;
	c->packets[0] = ev->segs_in;
	c->packets[1] = ev->segs_out;
	c->has_payload = true;
	c->payload[0] = ev->bytes_in;
	c->payload[1] = ev->bytes_out;
	c->bytes[0] = ev->bytes_in + (uint64_t)ev->segs_in * hdr;
	c->bytes[1] = ev->bytes_out + (uint64_t)ev->segs_out * hdr;
	c->refused = ev->refused;
	c->served = ev->served != 0;
	c->challenged = ev->challenged != 0;
	c->ssh_fails = ev->ssh_fails;
	c->ssh_live = ev->ssh_live;
	c->refused_live = ev->refused_live;
}

void zt_engine_on_host_session(struct zt_engine *e, const struct zt_ev_host_session *ev)
{
	struct zt_decision d;
	struct zt_conn c;

	host_to_conn(ev, &c);
	WITH_PENDING_URGENT(e, {
		e->st.sessions++;
		if (zt_bf_observe(e->bf, &c, &d))
			handle(e, &d, zt_now_boot_ns());
	});
}

void zt_engine_on_refused(struct zt_engine *e, const struct zt_ev_refused *ev)
{
	struct zt_bf_refusal r = {
		.family = ev->family,
		.ssh = ev->kind == ZT_REFUSED_SSH,
		.count = ev->count,
		.sport = ev->sport,
		.dport = ev->dport,
		.ts_ns = ev->hdr.ts_ns,
		.first_ns = ev->first_ns,
	};
	struct zt_decision d;

	memcpy(r.src, ev->saddr, 16);
	memcpy(r.dst, ev->daddr, 16);
	WITH_PENDING_URGENT(e, {
		if (r.ssh)
			e->st.ssh_refused++;
		else
			e->st.clear_refused += r.count;
		if (zt_bf_refused(e->bf, &r, &d))
			handle(e, &d, zt_now_boot_ns());
	});
}

/* The probe outcome of an entry, 0 while it is still pending. */
static uint8_t outcome(const struct zt_engine *e, const struct zt_ct_key *k,
		       const struct zt_ct_val *v, uint64_t now)
{
	bool old = now > v->first_ns && now - v->first_ns >= e->probe_timeout_ns;

	if (k->proto == 6) {
		if ((v->flags_seen[1] & (ZT_DF_SYN | ZT_DF_ACK)) == (ZT_DF_SYN | ZT_DF_ACK))
			return ZT_PROBE_SUCCESS;
		/*
		 * Only what opened with a bare SYN is a connection attempt that
		 * can fail. An entry opened by a SYN-ACK is the answer to a
		 * handshake the agent did not see (it started after the SYN):
		 * a server answering a SYN flood's spoofed sources, whose resets
		 * come back from ports it never chose. Nor is a mid-flow pickup.
		 */
		if ((v->flags_seen[0] & (ZT_DF_SYN | ZT_DF_ACK)) != ZT_DF_SYN) {
			/*
			 * But a segment without SYN that no connection owned and
			 * that policy denied on its way to an endpoint is an ACK,
			 * window or NULL scan's probe (nmap -sA, -sW, -sN) of a
			 * port the policy does not open: nothing will answer it,
			 * neither the endpoint nor the node. (Where policy lets it
			 * in, the endpoint's reset answers it: a stray of
			 * tc_uplink's, probes.c. One with FIN opens no entry:
			 * tc_endpoint reports it, ZT_PROBE_STRAY_DENIED.) A
			 * connection that policy allowed never takes this path:
			 * its entry opened with its SYN, or allows.
			 */
			if (v->dir == ZT_DIR_INGRESS && v->verdict == ZT_VERDICT_DENY &&
			    !(v->flags_seen[0] & ZT_DF_SYN))
				return ZT_PROBE_FAIL_TIMEOUT;
			return NOT_A_PROBE;
		}
		if (v->flags_seen[1] & ZT_DF_RST)
			return ZT_PROBE_FAIL_RST;
		return old ? ZT_PROBE_FAIL_TIMEOUT : 0;
	}
	/*
	 * ICMP: only a request is an attempt. A pod's port-unreachable answers
	 * to a spoofed UDP flood (an entry each, to a new random host, never
	 * answered) are not its scan of those hosts; nor is an echo reply or
	 * an error of an entry the agent picked up.
	 */
	if ((k->proto == 1 && v->icmp_type1 != ICMP_ECHO + 1 &&
	     v->icmp_type1 != ICMP_TIMESTAMP + 1) ||
	    (k->proto == 58 && v->icmp_type1 != ICMP6_ECHO_REQUEST + 1))
		return NOT_A_PROBE;
	if (v->d[1].packets)
		return ZT_PROBE_SUCCESS;
	return old ? ZT_PROBE_FAIL_TIMEOUT : 0;
}

enum { SJ_PROBE = 1, SJ_SESSION };

/*
 * Without the lock (seen and slowconn are the sweep's own, on the loop
 * thread only): what one entry gives the detectors the lock guards, as
 * jobs in out[] (at most two). Returns how many.
 */
static size_t sweep_entry(struct zt_engine *e, const struct zt_ct_key *k, const struct zt_ct_val *v,
			  uint64_t now, struct sweep_job *out)
{
	struct seen_key sk;
	struct seen_ent *s;
	struct zt_conn c;
	bool created;
	size_t n = 0;
	uint8_t oc;

	if (k->proto != 6 && k->proto != 17 && k->proto != 1 && k->proto != 58)
		return 0;
	if (receiver_entry(v))
		return 0;
	e->sweep_entries++;
	to_conn(k, v, &c);
	if (k->proto == 6)
		zt_slowconn_add(e->slow, &c);
	sk.h = zt_detect_hash(k, sizeof(*k), 0xc7);
	sk.first_ns = v->first_ns;
	s = zt_dtable_get(&e->seen, &sk, &created);
	if (!s)
		return 0;
	s->gen = (uint32_t)e->sweep_gen;
	if (!s->probed && (oc = outcome(e, k, v, now))) {
		s->probed = 1;
		if (oc <= ZT_PROBE_FAIL_TIMEOUT) {
			struct zt_probe *p = &out[n].u.p;

			out[n++].kind = SJ_PROBE;
			memset(p, 0, sizeof(*p));
			p->family = c.family;
			p->proto = k->proto;
			p->dport = (k->proto == 6 || k->proto == 17) ? k->dport : 0;
			p->outcome = oc;
			p->ts_ns = v->first_ns;
			memcpy(p->src, k->saddr, 16);
			memcpy(p->dst, k->daddr, 16);
		}
	}
	/* An end tc_endpoint sent (zt_engine_on_session) was judged then. */
	if (!s->ended && k->proto == 6 && v->state == ZT_CT_CLOSED) {
		s->ended = 1;
		if (!v->session_sent) {
			out[n].kind = SJ_SESSION;
			out[n++].u.c = c;
		}
	}
	return n;
}

/*
 * One hold of the lock by the sweep: at most SWEEP_SLICE jobs and about
 * SWEEP_HOLD_NS, shorter when a detector record waits for the lock (it
 * goes first: the events thread's decisions wait for one job, not for a
 * slice; a slice of 512 entries held it 52 ms on a loaded node).
 */
#define SWEEP_SLICE 64
#define SWEEP_HOLD_NS (MS / 2)

static void note_hold(double *max_ms, uint64_t t0)
{
	double ms = (double)(zt_now_mono_ns() - t0) / 1e6;

	if (ms > *max_ms)
		*max_ms = ms;
}

static size_t sweep_slice(struct zt_engine *e, const struct sweep_job *j, size_t i, size_t n,
			  uint64_t now, double *hold_max)
{
	uint64_t t0 = zt_now_mono_ns();
	size_t end = n - i > SWEEP_SLICE ? i + SWEEP_SLICE : n;
	struct zt_decision d;

	while (i < end) {
		const struct sweep_job *x = &j[i++];

		if (x->kind == SJ_PROBE) {
			e->st.probes++;
			if (zt_trw_observe(e->trw, &x->u.p, &d))
				handle(e, &d, now);
		} else {
			e->st.sessions++;
			if (zt_bf_observe(e->bf, &x->u.c, &d))
				handle(e, &d, now);
		}
		if (engine_urgent_waiting(e) || zt_now_mono_ns() - t0 >= SWEEP_HOLD_NS)
			break;
	}
	e->st.last_sweep_holds++;
	note_hold(hold_max, t0);
	return i;
}

/*
 * A batch's entries: the sweep's own tables without the lock, then the
 * detectors the lock guards in short holds (sweep_slice).
 */
static void sweep_batch(struct zt_engine *e, const struct zt_ct_key *keys,
			const struct zt_ct_val *vals, size_t n, uint64_t now, double *hold_max,
			uint64_t *yielded)
{
	size_t nj = 0;

	for (size_t i = 0; i < n; i++) {
		nj += sweep_entry(e, &keys[i], &vals[i], now, &e->jobs[nj]);
		if (i % 64 == 63)
			zt_yield_due(yielded);
	}
	for (size_t i = 0; i < nj;) {
		WITH_PENDING(e, i = sweep_slice(e, e->jobs, i, nj, now, hold_max));
		zt_yield_due(yielded);
	}
}

/* The walk itself (map reads) holds no lock: only the sweep uses ct_keys, seen and slowconn. */
static int walk(struct zt_engine *e, int fd, uint64_t now, double *hold_max)
{
	uint8_t in[sizeof(struct zt_ct_key)], outb[sizeof(struct zt_ct_key)];
	struct zt_ct_key *keys;
	struct zt_ct_val *vals;
	void *inp = NULL;
	uint64_t yielded = 0;
	int r = 0;

	if (!e->ct_keys) {
		e->ct_keys = calloc(CT_BATCH, sizeof(struct zt_ct_key));
		e->ct_vals = calloc(CT_BATCH, sizeof(struct zt_ct_val));
		/* At most two jobs an entry (a probe, an ended session). */
		e->jobs = calloc(2 * CT_BATCH, sizeof(*e->jobs));
		if (!e->ct_keys || !e->ct_vals || !e->jobs) {
			free(e->ct_keys);
			free(e->ct_vals);
			free(e->jobs);
			e->ct_keys = e->ct_vals = NULL;
			e->jobs = NULL;
			return -ENOMEM;
		}
	}
	keys = e->ct_keys;
	vals = e->ct_vals;
	for (;;) {
		__u32 count = CT_BATCH;
		int rr = bpf_map_lookup_batch(fd, inp, outb, keys, vals, &count, NULL);
		int er = rr < 0 ? errno : 0;

		if (rr == 0 || er == ENOENT)
			sweep_batch(e, keys, vals, count, now, hold_max, &yielded);
		if (rr < 0) {
			if (er != ENOENT)
				r = -er;
			break;
		}
		memcpy(in, outb, sizeof(in));
		inp = in;
	}
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -524 /* ENOTSUPP */) {
		/* No batch operations: one key at a time, in batches all the same. */
		struct zt_ct_key next, *prev = NULL;
		size_t n = 0;

		r = 0;
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			keys[n] = next;
			prev = &keys[n];
			if (bpf_map_lookup_elem(fd, &keys[n], &vals[n]) == 0 && ++n == CT_BATCH) {
				/* The next key is found from the last one, which the batch keeps. */
				next = keys[n - 1];
				sweep_batch(e, keys, vals, n, now, hold_max, &yielded);
				keys[0] = next;
				prev = &keys[0];
				n = 0;
			}
		}
		sweep_batch(e, keys, vals, n, now, hold_max, &yielded);
	}
	return r;
}

int zt_engine_ct_sweep(struct zt_engine *e, int ct_fd, uint64_t now)
{
	struct zt_decision d[64];
	uint64_t t0 = zt_now_mono_ns(), t1;
	size_t nd, pos = 0;
	struct seen_ent *s;
	double hold_max = 0;
	int r;

	/* seen, slowconn and sweep_entries are the sweep's own: no lock for them. */
	e->sweep_gen++;
	e->sweep_entries = 0;
	zt_slowconn_begin(e->slow, now);
	WITH_PENDING(e, {
		e->st.sweeps++;
		e->st.last_sweep_holds = 0;
	});
	r = walk(e, ct_fd, now, &hold_max);
	nd = zt_slowconn_end(e->slow, d, ZT_ARRAY_SIZE(d));
	e->sweep_due = zt_slowconn_next_due(e->slow);
	WITH_PENDING(e, {
		t1 = zt_now_mono_ns();
		for (size_t j = 0; j < nd; j++)
			handle(e, &d[j], now);
		e->st.sweep_entries += e->sweep_entries;
		e->st.last_sweep_holds++;
		note_hold(&hold_max, t1);
	});
	/* Entries that are gone from conntrack are forgotten (only the sweep uses seen). */
	while ((s = zt_dtable_next(&e->seen, &pos)))
		if (s->gen != (uint32_t)e->sweep_gen)
			zt_dtable_del_at(&e->seen, &pos);
	engine_lock(e);
	e->st.last_sweep_ms = (double)(zt_now_mono_ns() - t0) / 1e6;
	e->st.last_sweep_hold_max_ms = hold_max;
	engine_unlock(e);
	return r;
}

uint64_t zt_engine_sweep_due(const struct zt_engine *e)
{
	return e->sweep_due;
}

/* ---- every second ---- */

/*
 * Each piece in a hold of its own (the events thread's records get in
 * between: the whole tick held the lock 17 ms on a loaded node); the
 * node's addresses are read without it, the posts made after it.
 */
void zt_engine_tick(struct zt_engine *e, uint64_t now_boot)
{
	int64_t now_us = boot_to_unix_us(now_boot);
	uint64_t mono = zt_now_mono_ns(), t;
	double hold_max = 0;

	zt_denyagg_tick(e->deny, now_boot, now_us, false);
	WITH_PENDING(e, {
		t = zt_now_mono_ns();
		zt_incidents_tick(e->inc, now_boot, now_us);
		note_hold(&hold_max, t);
	});
	WITH_PENDING(e, {
		t = zt_now_mono_ns();
		zt_exfil_tick(e->exfil, now_boot);
		note_hold(&hold_max, t);
	});
	/* last_expire and last_node_refresh: the loop's own. */
	if (mono - e->last_expire >= 10 * SEC) {
		e->last_expire = mono;
		WITH_PENDING(e, {
			t = zt_now_mono_ns();
			zt_trw_expire(e->trw, now_boot);
			note_hold(&hold_max, t);
		});
		WITH_PENDING(e, {
			t = zt_now_mono_ns();
			zt_bf_expire(e->bf, now_boot);
			note_hold(&hold_max, t);
		});
		WITH_PENDING(e, {
			t = zt_now_mono_ns();
			zt_respond_expire(e->resp, now_boot);
			note_hold(&hold_max, t);
		});
	}
	if (!e->last_node_refresh || mono - e->last_node_refresh >= 10 * SEC) {
		e->last_node_refresh = mono;
		refresh_node(e);
	}
	engine_lock(e);
	e->st.last_tick_hold_max_ms = hold_max;
	engine_unlock(e);
	if (e->fx)
		zt_forensics_tick(e->fx, mono);
}

void zt_engine_get_stats(struct zt_engine *e, struct zt_engine_stats *st)
{
	struct zt_incidents_stats is;
	struct zt_respond_stats rs;
	struct zt_denyagg_stats ds;
	struct zt_forensics_stats fs;
	struct zt_trw_stats ts;

	engine_lock(e);
	*st = e->st;
	zt_trw_get_stats(e->trw, &ts);
	st->scan_sources = ts.sources;
	st->scan_evicted = ts.evicted;
	zt_incidents_get_stats(e->inc, &is);
	zt_respond_get_stats(e->resp, &rs);
	engine_unlock(e);
	memcpy(st->incidents_open, is.open, sizeof(st->incidents_open));
	memcpy(st->incidents_opened, is.opened, sizeof(st->incidents_opened));
	zt_denyagg_get_stats(e->deny, &ds);
	st->denials = ds.violations;
	st->denial_alerts = ds.alerts;
	st->denial_updates = ds.updates;
	st->denials_folded = ds.folded;
	if (e->fx) {
		zt_forensics_get_stats(e->fx, &fs);
		st->capture_packets = fs.packets;
		st->capture_sampled_out = fs.sampled_out;
		st->capture_files = fs.files;
		st->capture_bytes = fs.bytes;
		st->capture_removed = fs.files_removed;
	}
}
