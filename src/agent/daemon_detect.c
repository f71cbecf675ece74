// SPDX-License-Identifier: GPL-2.0-only
/*
 * The joining of detection: the kernel's activity, probe and capture
 * events into the engine (src/respond/engine.h), the engine's incidents
 * back into the kernel (watch map for captures, SYN protection of a
 * flooded destination), and every flow record scored before it is
 * written (features, the model when detection.model loads, the
 * incident of its source).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent/daemon_detect.h"
#include "agent/daemon_int.h"
#include "agent/log.h"
#include "agent/util.h"
#include "detect/features.h"
#include "detect/model.h"
#include "detect/probes.h"
#include "guard/activity.h"
#include "respond/incident.h"

#define SEC 1000000000ULL
/* Probes waiting for their answer (detect/probes.h); a probe unanswered this long failed. */
#define PROBE_SLOTS 4096
#define PROBE_TIMEOUT_NS (1000ULL * 1000000ULL)
/* A kernel watch entry outlives a lost close by at most this. */
#define WATCH_TTL_NS (3600ULL * SEC)
#define PROTECT_TTL_NS (600ULL * SEC)

struct daemon_detect {
	struct zt_daemon *d;
	pthread_mutex_t lock; /* the scoring state and the probes */
	struct zt_model *model; /* NULL: detectors only */
	struct zt_feat_window *win;
	uint64_t ns_per_jiffy;
	struct zt_probe_table *probes;
	struct zt_metric *m_score;
	uint64_t scored, model_alerts;
};

/* ---- scoring ---- */

static uint8_t fam_of(const struct zt_flow_record *r)
{
	return r->family == AF_INET6 ? 6 : 4;
}

void daemon_detect_score_one(struct zt_model *model, struct zt_feat_window *win,
			     struct zt_flow_record *r, enum zt_threat incident,
			     float incident_score, struct zt_model_result *res)
{
	float x[ZT_F_COUNT];
	struct zt_feat_src src;

	memset(res, 0, sizeof(*res));
	if (r->kind == ZT_FLOW_KIND_FLOW) {
		zt_feat_window_add(win, r, zt_feat_record_stats(r), &src);
		zt_features_compute(r, zt_feat_record_stats(r), &src, x);
		if (model && zt_model_score(model, x, res) < 0)
			memset(res, 0, sizeof(*res));
	} else {
		/* An aggregate of packets XDP dropped: no flow to score, but dropped. */
		r->blocked = true;
	}
	r->anomaly_score = res->score > incident_score ? res->score : incident_score;
	r->present |= ZT_FR_HAS_ANOMALY;
	if (incident != ZT_THREAT_NONE)
		zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type),
				    zt_threat_name(incident));
	else if (res->alert)
		zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type),
				    zt_threat_name(res->threat));
	else if (r->kind == ZT_FLOW_KIND_FLOW)
		r->threat_type[0] = '\0';
	/* else a drop aggregate keeps the block's reason (operator, feed, ...) */
}

static void model_decide(struct daemon_detect *dd, const struct zt_flow_record *r,
			 const struct zt_model_result *res)
{
	struct zt_decision dec;
	uint8_t fam = fam_of(r);

	zt_decision_init(&dec, ZT_THREAT_MODEL, ZT_ROLE_SOURCE, fam, r->source_ip,
			 zt_now_boot_ns());
	dec.proto = r->protocol;
	dec.dport = r->dest_port;
	dec.score = res->score;
	memcpy(dec.peer, r->dest_ip, 16);
	dec.has_peer = true;
	dec.value = res->score;
	dec.threshold = 0;
	dec.flows = 1;
	dec.packets = (uint64_t)(r->packet_count > 0 ? r->packet_count : 0);
	dec.bytes = (uint64_t)(r->bytes_sent + r->bytes_received);
	snprintf(dec.subtype, sizeof(dec.subtype), "%s", zt_threat_name(res->threat));
	snprintf(dec.evidence, sizeof(dec.evidence),
		 "model: P(not benign) %.3f at or over its threshold, likeliest class %s (%.3f)",
		 (double)res->score, zt_threat_name(res->threat), (double)res->threat_p);
	zt_engine_decide(dd->d->engine, &dec);
}

struct zt_flow_record *daemon_detect_score(struct zt_daemon *d, const struct zt_flow_record *recs,
					   size_t n)
{
	struct daemon_detect *dd = d->det;
	struct zt_flow_record *out;
	struct timespec t0, t1;

	if (!dd || !n || !(out = malloc(n * sizeof(*out))))
		return NULL;
	memcpy(out, recs, n * sizeof(*out));
	for (size_t k = 0; k < n; k++) {
		struct zt_flow_record *r = &out[k];
		struct zt_model_result res;
		enum zt_threat inc;
		float inc_score = 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		inc = d->engine ? zt_engine_source_threat(d->engine, fam_of(r), r->source_ip,
							  &inc_score) :
				  ZT_THREAT_NONE;
		pthread_mutex_lock(&dd->lock);
		daemon_detect_score_one(dd->model, dd->win, r, inc, inc_score, &res);
		dd->scored++;
		if (res.alert)
			dd->model_alerts++;
		pthread_mutex_unlock(&dd->lock);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (dd->m_score)
			zt_metric_observe(dd->m_score,
					  (double)(t1.tv_sec - t0.tv_sec) +
						  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		if (res.alert && d->engine && r->kind == ZT_FLOW_KIND_FLOW)
			model_decide(dd, r, &res);
	}
	return out;
}

/* ---- kernel events into the engine ---- */

static void on_activity(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_activity *ev = rec;
	struct zt_rate_sample s;
	static const struct {
		uint32_t sig;
		enum zt_flood_kind kind;
	} map[] = {
		{ ZT_SIG_HALFOPEN | ZT_SIG_SYN, ZT_FLOOD_SYN },
		{ ZT_SIG_UDP, ZT_FLOOD_UDP },
		{ ZT_SIG_ICMP, ZT_FLOOD_ICMP },
		{ ZT_SIG_PKTS, ZT_FLOOD_ALL },
		{ ZT_SIG_RESETS, ZT_FLOOD_OUT_OF_STATE },
	};

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	memset(&s, 0, sizeof(s));
	s.family = ev->family == 6 ? 6 : 4;
	s.role = ev->hdr.type == ZT_EV_SRC_ACTIVITY ? ZT_ROLE_SOURCE : ZT_ROLE_DESTINATION;
	memcpy(s.addr, ev->addr, 16);
	/* The count so far over the part of the window elapsed: a rate from the start. */
	s.window_ns = (uint64_t)(ev->elapsed ? ev->elapsed : 1) * dd->ns_per_jiffy;
	s.ts_ns = ev->hdr.ts_ns;
	for (size_t k = 0; k < ZT_ARRAY_SIZE(map); k++) {
		if (!(ev->signals & map[k].sig))
			continue;
		switch (map[k].kind) {
		case ZT_FLOOD_SYN:
			s.count = zt_halfopen(ev->syn, ev->synack, ev->ack);
			break;
		case ZT_FLOOD_UDP:
			s.count = ev->udp;
			break;
		case ZT_FLOOD_ICMP:
			s.count = ev->icmp;
			break;
		case ZT_FLOOD_OUT_OF_STATE:
			/*
			 * Most of what the source sent this window drew a reset:
			 * a client whose pooled connections a restarted server
			 * resets at once sends the rest of its traffic beside
			 * them. pkts is 0 when the guard saw none of it.
			 */
			s.count = (uint64_t)ev->resets * 2 >= ev->pkts ? ev->resets : 0;
			break;
		default:
			s.count = ev->pkts;
			break;
		}
		s.kind = (uint8_t)map[k].kind;
		if (s.count)
			zt_engine_on_rate(dd->d->engine, &s);
	}
}

static void on_probe(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_probe *ev = rec;
	struct zt_probe p, old;
	bool flush = false;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	memset(&p, 0, sizeof(p));
	p.family = ev->family == 6 ? 6 : 4;
	p.proto = ev->proto;
	p.dport = (ev->proto == 6 || ev->proto == 17) ? ev->dport : 0;
	memcpy(p.src, ev->saddr, 16);
	memcpy(p.dst, ev->daddr, 16);
	p.ts_ns = ev->hdr.ts_ns;
	if (ev->action == ZT_ACT_DROP) {
		/* Dropped by the guard: no answer will come. */
		p.outcome = ZT_PROBE_FAIL_TIMEOUT;
		zt_engine_on_probe(dd->d->engine, &p);
		return;
	}
	pthread_mutex_lock(&dd->lock);
	flush = zt_probe_table_add(dd->probes, &p, &old) > 0;
	pthread_mutex_unlock(&dd->lock);
	if (flush)
		zt_engine_on_probe(dd->d->engine, &old);
}

static void on_probe_result(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_probe_result *ev = rec;
	struct zt_probe p;
	int found;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	pthread_mutex_lock(&dd->lock);
	found = zt_probe_table_answer(dd->probes, ev, &p);
	pthread_mutex_unlock(&dd->lock);
	if (found)
		zt_engine_on_probe(dd->d->engine, &p);
}

static void on_session(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_session *ev = rec;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	zt_engine_on_session(dd->d->engine, &ev->key, &ev->val);
}

static void on_host_session(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_host_session *ev = rec;
	const struct zt_config *cfg = &dd->d->cfg;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	/*
	 * The agent's own tunnel listener: its peers' connections are short
	 * mutual-TLS sessions of about equal size each way (a certificate
	 * each), which read like failed logins, and a peer that restarts
	 * closes a pool of them at once.
	 */
	if (cfg->mtls.mode != ZT_MTLS_MODE_OFF && ev->dport == cfg->mtls.port)
		return;
	zt_engine_on_host_session(dd->d->engine, ev);
}

static void on_refused(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_refused *ev = rec;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	zt_engine_on_refused(dd->d->engine, ev);
}

static void on_capture(void *ctx, const void *rec, size_t len)
{
	struct daemon_detect *dd = ctx;
	const struct zt_ev_capture *ev = rec;
	static const char *const points[] = { "", "xdp", "uplink-out", "from-pod", "to-pod" };
	uint8_t frame[ZT_CAP_SNAPLEN + 4];
	uint32_t caplen, orig_len;

	if (len < sizeof(*ev) || !dd->d->engine)
		return;
	/* The frame as on the wire: a VLAN tag the kernel held beside it back in. */
	caplen = (uint32_t)zt_capture_frame(ev, frame, &orig_len);
	zt_engine_on_capture(dd->d->engine, ev->hdr.ts_ns, ev->ifindex, ev->action,
			     points[ev->point < ZT_ARRAY_SIZE(points) ? ev->point : 0], frame,
			     caplen, orig_len);
}

/* Every second: probes that got no answer failed. */
static void on_probe_timer(void *ctx, int fd, uint32_t events)
{
	struct daemon_detect *dd = ctx;
	struct zt_probe v[256];
	size_t n;

	(void)fd;
	(void)events;
	do {
		pthread_mutex_lock(&dd->lock);
		n = zt_probe_table_expire(dd->probes, zt_now_boot_ns(), v, ZT_ARRAY_SIZE(v));
		pthread_mutex_unlock(&dd->lock);
		for (size_t k = 0; k < n && dd->d->engine; k++)
			zt_engine_on_probe(dd->d->engine, &v[k]);
	} while (n == ZT_ARRAY_SIZE(v));
}

/* ---- the engine's incidents into the kernel ---- */

void daemon_detect_on_incident(void *ctx, const struct zt_incident *i, bool open)
{
	struct zt_daemon *d = ctx;
	struct zt_addr_key a;
	uint64_t id;
	char addr[64];
	int r;

	if (!d->dp)
		return;
	memset(&a, 0, sizeof(a));
	a.family = i->family == 6 ? 6 : 4;
	memcpy(a.addr, i->addr, a.family == 6 ? 16 : 4);
	memcpy(&id, i->id + 8, sizeof(id)); /* the random half of the UUIDv7 */
	zt_addr_str(a.family, i->addr, addr, sizeof(addr));
	if (open) {
		r = zt_guard_watch_add(d->dp, &a, WATCH_TTL_NS, id, d->cfg.forensics.rate);
		if (r < 0)
			log_warn("capture_watch_failed", "addr=%s incident=%s error=\"%s\"", addr,
				 i->ids, strerror(-r));
		if (i->threat == ZT_THREAT_FLOOD && i->role == ZT_ROLE_DESTINATION &&
		    !strcmp(i->subtype, "syn")) {
			r = zt_guard_protect_add(d->dp, &a, PROTECT_TTL_NS);
			if (r < 0)
				log_warn("syn_protect_failed", "dst=%s incident=%s error=\"%s\"",
					 addr, i->ids, strerror(-r));
			else
				log_info("syn_protect_on", "dst=%s incident=%s ttl_s=%llu", addr,
					 i->ids, (unsigned long long)(PROTECT_TTL_NS / SEC));
		}
	} else {
		r = zt_guard_watch_del(d->dp, &a);
		if (r < 0 && r != -ENOENT)
			log_warn("capture_unwatch_failed", "addr=%s incident=%s error=\"%s\"", addr,
				 i->ids, strerror(-r));
		if (i->threat == ZT_THREAT_FLOOD && i->role == ZT_ROLE_DESTINATION)
			zt_guard_protect_del(d->dp, &a);
	}
}

/* ---- metrics ---- */

static void collect_model(void *ctx, struct zt_metric_sink *s)
{
	struct daemon_detect *dd = ctx;

	zt_metric_emit(s, NULL, dd->model ? 1 : 0);
}

static void collect_scored(void *ctx, struct zt_metric_sink *s)
{
	struct daemon_detect *dd = ctx;
	uint64_t v;

	pthread_mutex_lock(&dd->lock);
	v = dd->scored;
	pthread_mutex_unlock(&dd->lock);
	zt_metric_emit_u64(s, NULL, v);
}

static void collect_probes(void *ctx, struct zt_metric_sink *s)
{
	struct daemon_detect *dd = ctx;
	struct zt_probe_table_stats st;

	pthread_mutex_lock(&dd->lock);
	zt_probe_table_get_stats(dd->probes, &st);
	pthread_mutex_unlock(&dd->lock);
	zt_metric_emit_u64(s, (const char *const[]){ "answered" }, st.answered);
	zt_metric_emit_u64(s, (const char *const[]){ "timeout" }, st.timed_out);
	zt_metric_emit_u64(s, (const char *const[]){ "stray" }, st.strays);
}

static int register_metrics(struct daemon_detect *dd)
{
	static const double b[] = { 1e-7, 2e-7, 5e-7, 1e-6, 2e-6, 5e-6, 1e-5, 1e-4, 1e-3 };
	struct zt_metrics *m = dd->d->metrics;
	int r;

	if (!m)
		return 0;
	if ((r = zt_metrics_add(
		     m, "ztagent_model_loaded",
		     "1 when detection.model is loaded and scoring, 0 when detectors only",
		     ZT_METRIC_GAUGE, NULL, collect_model, dd, NULL)) < 0 ||
	    (r = zt_metrics_add(m, "ztagent_flows_scored_total", "Flow records scored",
				ZT_METRIC_COUNTER, NULL, collect_scored, dd, NULL)) < 0 ||
	    (r = zt_metrics_add(m, "ztagent_probes_total",
				"First contacts fed to the scan detector, by outcome",
				ZT_METRIC_COUNTER, (const char *const[]){ "outcome", NULL },
				collect_probes, dd, NULL)) < 0)
		return r;
	return zt_metrics_add_histogram(m, "ztagent_flow_score_seconds",
					"Features, model and incident lookup of one flow record", b,
					ZT_ARRAY_SIZE(b), &dd->m_score);
}

/* ---- start / stop ---- */

/* The ports the node's kernel gives its clients (one range for IPv4 and IPv6). */
static void read_ephemeral(struct zt_probe_table *t)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned int lo, hi;

	if (!f)
		return; /* Linux's default stands */
	if (fscanf(f, "%u %u", &lo, &hi) == 2 && lo >= 1 && lo <= hi && hi <= 65535)
		zt_probe_table_set_ephemeral(t, (uint16_t)lo, (uint16_t)hi);
	fclose(f);
}

int daemon_detect_start(struct zt_daemon *d, char *err, size_t errlen)
{
	struct daemon_detect *dd = calloc(1, sizeof(*dd));
	struct zt_guard_cfg gc;
	char merr[512] = "";
	int r;

	if (!dd) {
		snprintf(err, errlen, "out of memory for detection");
		return -ENOMEM;
	}
	dd->d = d;
	pthread_mutex_init(&dd->lock, NULL);
	r = zt_feat_window_new(0, 0, &dd->win);
	if (r < 0) {
		snprintf(err, errlen, "cannot allocate the feature windows: %s", strerror(-r));
		goto fail;
	}
	r = zt_probe_table_new(PROBE_SLOTS, PROBE_TIMEOUT_NS, &dd->probes);
	if (r < 0) {
		snprintf(err, errlen, "cannot allocate the probe table: %s", strerror(-r));
		goto fail;
	}
	read_ephemeral(dd->probes);
	dd->ns_per_jiffy = SEC / 250;
	if (d->dp && zt_datapath_guard_cfg(d->dp, &gc) == 0 && gc.hz)
		dd->ns_per_jiffy = SEC / gc.hz;
	if (d->cfg.detection.model[0]) {
		r = zt_model_load(d->cfg.detection.model, &dd->model, merr, sizeof(merr));
		if (r < 0) {
			/* Refused: the detectors alone, said loudly, the agent keeps running. */
			log_error("model_refused",
				  "path=\"%s\" error=\"%s\" running=detectors-only",
				  d->cfg.detection.model, merr);
			dd->model = NULL;
		} else {
			struct zt_model_info mi;

			if (d->cfg.detection.target_fpr_ppm)
				zt_model_set_target_fpr(dd->model,
							d->cfg.detection.target_fpr_ppm / 1e6);
			zt_model_get_info(dd->model, &mi);
			log_info("model_loaded",
				 "path=\"%s\" trees=%u classes=%u threshold=%.4f target_fpr=%g",
				 d->cfg.detection.model, mi.n_trees, mi.n_classes, mi.threshold,
				 mi.target_fpr);
		}
	}
	if ((r = register_metrics(dd)) < 0) {
		snprintf(err, errlen, "cannot register the scoring metrics: %s", strerror(-r));
		goto fail;
	}
	if (d->ev && ((r = zt_events_on(d->ev, ZT_EV_SRC_ACTIVITY, on_activity, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_DST_ACTIVITY, on_activity, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_PROBE, on_probe, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_PROBE_RESULT, on_probe_result, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_SESSION, on_session, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_HOST_SESSION, on_host_session, dd)) < 0 ||
		      (r = zt_events_on(d->ev, ZT_EV_REFUSED, on_refused, dd)) < 0 ||
		      (r = zt_events_on_deferred(d->ev, ZT_EV_CAPTURE, on_capture, dd)) < 0)) {
		snprintf(err, errlen, "cannot subscribe to the activity events: %s", strerror(-r));
		goto fail;
	}
	if (d->loop && (r = zt_loop_add_timer(d->loop, SEC, on_probe_timer, dd)) < 0) {
		snprintf(err, errlen, "cannot create the probe timer: %s", strerror(-r));
		goto fail;
	}
	d->det = dd;
	return 0;
fail:
	zt_model_free(dd->model);
	zt_feat_window_free(dd->win);
	zt_probe_table_free(dd->probes);
	pthread_mutex_destroy(&dd->lock);
	free(dd);
	return r;
}

void daemon_detect_stop(struct zt_daemon *d)
{
	struct daemon_detect *dd = d->det;

	if (!dd)
		return;
	d->det = NULL;
	zt_model_free(dd->model);
	zt_feat_window_free(dd->win);
	zt_probe_table_free(dd->probes);
	pthread_mutex_destroy(&dd->lock);
	free(dd);
}
