// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drift repair: the kernel's enforcement state against what this agent
 * wrote, every DRIFT_TICK_NS on the loop thread (where every other writer
 * of that state runs, so a check never meets a half-done change).
 *
 * Each tick is cheap: the program id on each uplink's XDP hook and each
 * endpoint's tc hooks, a stat() of each pin, the policy, ipcache and
 * endpoints maps against the appliers' records (a walk of the published
 * entries; see the README for the cost), and a bounded slice of the
 * blocklist maps and block_notes. Every DRIFT_FULL_TICKS ticks the pins
 * are also checked for being our maps (not another map pinned in their
 * place). Map writes by other processes (blocklist, block_notes, policy,
 * pol_isolation, ipcache, endpoints) do not wait for a tick: the drift
 * watch reports each key as it happens, a batch's keys too (see dw_start);
 * the ticks and the whole reads of the blocklist hash maps on a thread of
 * their own (bl_scan_main) are the safety net. While the watch runs, a
 * difference in the policy, ipcache or endpoints maps that a tick finds
 * first waits for the next tick (see tick_defers): a write can land between
 * the tick's read of the watch and its check of the map, and its repair is
 * the watch's, which names the writer. What is still there a tick later
 * came from something the watch cannot see, and is repaired then.
 *
 * A difference is repaired at once, logged, counted
 * (ztagent_drift_repairs_total{kind}) and audited (drift.repair, with what
 * differed). More than DRIFT_FLAP_MAX repairs of one object (the kind
 * and its subject: a map and key, an interface's hook, a pin path, the
 * conflist) within DRIFT_FLAP_WINDOW_NS is something fighting the agent
 * over it: an alert (drift.flapping, with an alerts row, naming the object
 * and its writer when the drift watch saw it) and a back-off (no repair of
 * that object for a while, doubling up to DRIFT_BACKOFF_MAX_NS) instead of
 * a silent loop of repairs. Objects are counted in a table of
 * DRIFT_SUBJ_SLOTS (least recently repaired evicted first), so an operator
 * fixing many different entries by hand trips nothing. Behind it, more than
 * DRIFT_KIND_FLAP_MAX repairs of one kind within the window (a runaway
 * writer changing thousands of different keys) backs the whole kind off.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent/daemon_int.h"
#include "agent/log.h"
#include "agent/util.h"
#include "guard/blocklist.h"
#include "guard/drift.h"
#include "records/auditq.h"
#include "seg/seg.h"
#include "drift_watch.skel.h"
#include "host_session.skel.h"
#include "tc_uplink.skel.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"

#define DRIFT_TICK_NS (200ULL * 1000000ULL)
#define DRIFT_FULL_TICKS 25 /* 5 s */
#define DRIFT_BL_BUDGET 16384 /* blocklist keys per map per tick */
#define DRIFT_NOTES_EVERY_TICK 4096 /* block_notes walked each tick up to this size */
#define DRIFT_BL_SCAN_TARGET_NS (800ULL * 1000000ULL) /* see bl_scan_pause */
#define DRIFT_BL_SCAN_MIN_PAUSE_NS (50ULL * 1000000ULL)
#define DRIFT_BL_SCAN_WATCHED_NS (10000ULL * 1000000ULL) /* see bl_scan_main */
#define DRIFT_BL_SCAN_LOOKUPS 8192 /* per scan on the loop thread: ~10 ms */
#define DRIFT_FLAP_MAX 5 /* repairs of one object within the window */
#define DRIFT_FLAP_WINDOW_NS (10ULL * 1000000000ULL)
#define DRIFT_KIND_FLAP_MAX 2000 /* repairs of one kind within the window */
#define DRIFT_KIND_BUCKETS 10 /* the kind's count, by second of the window */
#define DRIFT_SUBJ_SLOTS 512 /* objects counted at once (~60 KiB) */
#define DRIFT_SUBJ_PROBE 8 /* slots an object may take: its hash's and the next 7 */
#define DRIFT_BACKOFF_NS (5ULL * 1000000000ULL)
#define DRIFT_BACKOFF_MAX_NS (300ULL * 1000000000ULL)
#define DRIFT_REEVAL_MIN_NS (100ULL * 1000000ULL) /* see drift_reeval */

static const char *const kind_names[] = { "xdp",       "tc",	    "policy", "ipcache",
					  "endpoints", "blocklist", "pin",    "cni" };
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

/* Per kind: the safety net's count and back-off, and the repair errors told. */
struct drift_kind {
	uint32_t bucket_n[DRIFT_KIND_BUCKETS]; /* repairs in second bucket_s[i] */
	uint64_t bucket_s[DRIFT_KIND_BUCKETS];
	uint64_t backoff_until;
	uint64_t backoff_ns; /* the next back-off's length */
	uint64_t last_trip;
	bool told; /* the back-off's "not repaired" was logged */
	bool err_told; /* a failed repair was logged (once until one succeeds) */
	uint64_t defer_tick; /* the tick whose differences waited for the watch */
};

/* One object's recent repairs (h 0: a free slot). */
struct drift_subj {
	uint64_t h; /* of kind and subject */
	uint64_t recent[DRIFT_FLAP_MAX + 1]; /* mono ns of the latest repairs, a ring */
	uint64_t last_repair;
	uint64_t last_tick; /* the tick of the last repair counted */
	uint64_t backoff_until;
	uint64_t backoff_ns;
	uint32_t n_recent;
	uint8_t kind;
	bool told;
	char who[40]; /* the last writer the watch named, "" unknown */
};

struct zt_drift {
	struct zt_daemon *d;
	struct zt_metric *repairs;
	struct zt_metric *flapping;
	struct zt_drift_hooks hooks;
	struct zt_bl_drift_cursor blc;
	struct drift_kind k[N_KINDS];
	struct drift_subj subj[DRIFT_SUBJ_SLOTS];
	uint64_t subj_evicted;
	uint64_t ticks;
	bool in_tick; /* the tick's check of the watched segmentation maps runs */
	bool deferred; /* drift_may_obj just left a difference to the watch */
	uint64_t repairs_total; /* for the nodes table */
	uint64_t last_tick_ns; /* duration of the last tick, for the log at debug */
	/* The blocklist hash maps' reader (see bl_scan_main). */
	struct zt_bl_scan *scan[2];
	pthread_t scan_th;
	bool scan_started;
	pthread_mutex_t scan_mu;
	pthread_cond_t scan_cv;
	int scan_ready; /* 1 + the family whose read waits for the loop; 0 none */
	bool scan_stop;
	int scan_efd;
	bool scan_init; /* the mutex and condition exist */
	bool scan_kick; /* a batch write by another process: read again as soon as the CPU bound allows */
	bool watched; /* atomic: the drift watch runs (bl_scan_main's pace) */
	uint64_t scans;
	/* The drift watch (bpf/drift_watch.bpf.c): other processes' writes to the blocklist maps. */
	struct drift_watch *dw;
	struct bpf_link *dw_link[2]; /* entry, exit */
	const char *dw_way; /* "tracepoint" or "raw_tracepoint" */
	struct ring_buffer *dw_rb;
	uint64_t dw_events;
	uint64_t dw_batch_keys; /* keys of batch writes checked one by one */
	uint64_t dw_lost_seen; /* the watch's dw_lost when last looked at */
	char who[40]; /* "bpftool (pid 123)" while such a write is repaired */
	/* Repairs of segmentation's maps not yet followed by a generation (drift_reeval). */
	bool reeval;
	bool reeval_told; /* its failure was logged (once until one succeeds) */
	uint64_t reeval_ns; /* the last try, mono ns */
};

static int kind_index(const char *kind)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (!strcmp(kind_names[i], kind))
			return (int)i;
	return -1;
}

static uint64_t subj_hash(int kind, const char *subject)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

	for (const unsigned char *p = (const unsigned char *)subject; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h ? h : 1;
}

/*
 * The object's slot; create: take one, evicting the least recently
 * repaired of its DRIFT_SUBJ_PROBE candidates (one backing off only when
 * all are), so the table stays bounded whatever writes come.
 */
static struct drift_subj *subj_get(struct zt_drift *dr, int kind, const char *subject, bool create)
{
	uint64_t h = subj_hash(kind, subject), now = zt_now_mono_ns();
	struct drift_subj *victim = NULL;
	bool victim_busy = true;

	for (unsigned int p = 0; p < DRIFT_SUBJ_PROBE; p++) {
		struct drift_subj *s = &dr->subj[(h + p) % DRIFT_SUBJ_SLOTS];
		bool busy = now < s->backoff_until;

		if (s->h == h)
			return s;
		if (!create)
			continue;
		if (!victim || (victim_busy && !busy) ||
		    (victim_busy == busy && s->last_repair < victim->last_repair)) {
			victim = s;
			victim_busy = busy;
		}
	}
	if (!victim)
		return NULL;
	if (victim->h)
		dr->subj_evicted++;
	memset(victim, 0, sizeof(*victim));
	victim->h = h;
	victim->kind = (uint8_t)kind;
	return victim;
}

static bool drift_may(void *ctx, const char *kind)
{
	struct zt_drift *dr = ctx;
	int i = kind_index(kind);

	return i < 0 || zt_now_mono_ns() >= dr->k[i].backoff_until;
}

/*
 * A difference the tick found in a map the drift watch covers waits one
 * tick while the watch runs: the write may have landed after the tick read
 * the watch's ring, and the watch's repair names the writer. Per kind, so
 * a mass change does not churn the objects' table: the first tick that
 * finds differences of the kind leaves them all, the next repairs what is
 * left (something the watch cannot see: another BPF program, a lost event).
 */
static bool tick_defers(struct zt_drift *dr, int i)
{
	struct drift_kind *k = &dr->k[i];

	if (!dr->in_tick || !__atomic_load_n(&dr->watched, __ATOMIC_RELAXED))
		return false;
	if (strcmp(kind_names[i], "policy") && strcmp(kind_names[i], "ipcache") &&
	    strcmp(kind_names[i], "endpoints"))
		return false; /* tc filters, pins: not what the watch sees */
	if (k->defer_tick + 1 == dr->ticks)
		return false;
	k->defer_tick = dr->ticks;
	return true;
}

static bool drift_may_obj(void *ctx, const char *kind, const char *subject)
{
	struct zt_drift *dr = ctx;
	int i = kind_index(kind);
	const struct drift_subj *s;

	if (i < 0)
		return true;
	if (!drift_may(ctx, kind))
		return false;
	s = subj_get(dr, i, subject, false);
	if (s && zt_now_mono_ns() < s->backoff_until)
		return false;
	dr->deferred = tick_defers(dr, i);
	return !dr->deferred;
}

static void drift_audit(struct zt_drift *dr, const char *akind, const char *kind,
			const char *subject, const char *what, const char *extra)
{
	char esc_what[1024], esc_subj[512], detail[2048];

	if (!dr->d->auditq)
		return;
	zt_json_escape(what, esc_what, sizeof(esc_what));
	zt_json_escape(subject, esc_subj, sizeof(esc_subj));
	snprintf(detail, sizeof(detail),
		 "{\"kind\":\"%s\",\"object\":\"%s\",\"differed\":\"%s\"%s}", kind, esc_subj,
		 esc_what, extra);
	zt_auditq_post(dr->d->auditq, akind, dr->d->actor, subject, detail);
}

/* The next back-off: DRIFT_BACKOFF_NS, doubling while the fight goes on. */
static uint64_t next_backoff(uint64_t *cur, uint64_t last, uint64_t now)
{
	/* Quiet for a while: whatever fought us stopped. */
	if (last && now - last > 2 * DRIFT_FLAP_WINDOW_NS)
		*cur = 0;
	*cur = *cur ? *cur * 2 : DRIFT_BACKOFF_NS;
	if (*cur > DRIFT_BACKOFF_MAX_NS)
		*cur = DRIFT_BACKOFF_MAX_NS;
	return *cur;
}

static void flap_alert(struct zt_drift *dr, int i, const char *scope, const char *subject,
		       const char *what, unsigned int repairs, uint64_t backoff_ns, const char *who)
{
	char qs[600], qwho[96], extra[400], esc_who[96];

	zt_log_quote(qs, sizeof(qs), subject);
	zt_log_quote(qwho, sizeof(qwho), who[0] ? who : "unknown");
	log_error(
		"drift_flapping",
		"kind=%s scope=%s subject=%s writer=%s repairs=%u window_s=%llu backoff_s=%llu why=\"something keeps changing this behind the agent's back\" action=\"find what fights the agent (a script, another agent, an operator with bpftool); repairs of this %s resume after the back-off\"",
		kind_names[i], scope, qs, qwho, repairs,
		(unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL),
		(unsigned long long)(backoff_ns / 1000000000ULL),
		strcmp(scope, "kind") ? "object" : "kind");
	zt_json_escape(who, esc_who, sizeof(esc_who));
	snprintf(
		extra, sizeof(extra),
		",\"scope\":\"%s\",\"writer\":\"%s\",\"repairs\":%u,\"window_s\":%llu,\"backoff_s\":%llu,\"alert_kind\":\"drift-flapping\",\"alert_severity\":\"critical\"",
		scope, esc_who, repairs, (unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL),
		(unsigned long long)(backoff_ns / 1000000000ULL));
	drift_audit(dr, "drift.flapping", kind_names[i], subject, what, extra);
}

/* The safety net: repairs of kind i in the last DRIFT_KIND_BUCKETS seconds, this one counted. */
static uint32_t kind_count(struct drift_kind *k, uint64_t now)
{
	uint64_t sec = now / 1000000000ULL;
	unsigned int b = (unsigned int)(sec % DRIFT_KIND_BUCKETS);
	uint32_t n = 0;

	if (k->bucket_s[b] != sec) {
		k->bucket_s[b] = sec;
		k->bucket_n[b] = 0;
	}
	k->bucket_n[b]++;
	for (unsigned int j = 0; j < DRIFT_KIND_BUCKETS; j++)
		if (sec - k->bucket_s[j] < DRIFT_KIND_BUCKETS)
			n += k->bucket_n[j];
	return n;
}

/* A repair of subject (kind i) now: is it the one too many, for the object or for the kind? */
static void note_repair(struct zt_drift *dr, int i, const char *subject, const char *what)
{
	struct drift_kind *k = &dr->k[i];
	struct drift_subj *s;
	uint64_t now = zt_now_mono_ns(), oldest;
	uint32_t n;

	n = kind_count(k, now);
	if (n > DRIFT_KIND_FLAP_MAX && now >= k->backoff_until) {
		k->backoff_until = now + next_backoff(&k->backoff_ns, k->last_trip, now);
		k->last_trip = now;
		k->told = false;
		memset(k->bucket_n, 0, sizeof(k->bucket_n));
		flap_alert(dr, i, "kind", subject, what, n, k->backoff_ns, dr->who);
	}
	s = subj_get(dr, i, subject, true);
	if (dr->who[0])
		snprintf(s->who, sizeof(s->who), "%s", dr->who);
	/* One change can need two repairs (the watch's and the tick's): one episode per tick. */
	if (s->n_recent && s->last_tick == dr->ticks)
		return;
	s->last_tick = dr->ticks;
	if (s->last_repair && now - s->last_repair > 2 * DRIFT_FLAP_WINDOW_NS)
		s->n_recent = 0;
	s->recent[s->n_recent % (DRIFT_FLAP_MAX + 1)] = now;
	s->n_recent++;
	if (s->n_recent <= DRIFT_FLAP_MAX) {
		s->last_repair = now;
		return;
	}
	oldest = s->recent[(s->n_recent - DRIFT_FLAP_MAX - 1) % (DRIFT_FLAP_MAX + 1)];
	if (now - oldest > DRIFT_FLAP_WINDOW_NS) {
		s->last_repair = now;
		return;
	}
	s->backoff_until = now + next_backoff(&s->backoff_ns, s->last_repair, now);
	s->last_repair = now;
	s->n_recent = 0;
	s->told = false;
	flap_alert(dr, i, "object", subject, what, DRIFT_FLAP_MAX + 1, s->backoff_ns, s->who);
}

/* ztagent_drift_flapping{kind}: 1 while the kind, or an object of it, backs off. */
static void flap_gauges(struct zt_drift *dr)
{
	uint64_t now = zt_now_mono_ns();
	bool on[N_KINDS] = { false };

	for (size_t i = 0; i < N_KINDS; i++)
		on[i] = now < dr->k[i].backoff_until;
	for (unsigned int j = 0; j < DRIFT_SUBJ_SLOTS; j++) {
		const struct drift_subj *s = &dr->subj[j];

		if (s->h && now < s->backoff_until && s->kind < N_KINDS)
			on[s->kind] = true;
	}
	for (size_t i = 0; i < N_KINDS; i++) {
		const char *v[] = { kind_names[i] };

		zt_metric_set(dr->flapping, v, on[i]);
	}
}

static void drift_report(void *ctx, const char *kind, const char *subject, const char *what,
			 bool repaired, int err)
{
	struct zt_drift *dr = ctx;
	int i = kind_index(kind);
	char qs[600], qw[1100], with_who[640];

	if (i < 0)
		return;
	if (dr->deferred) { /* left to the watch for a tick: nothing to say yet */
		dr->deferred = false;
		return;
	}
	if (dr->who[0]) {
		snprintf(with_who, sizeof(with_who), "%s, written by %s", what, dr->who);
		what = with_who;
	}
	zt_log_quote(qs, sizeof(qs), subject);
	zt_log_quote(qw, sizeof(qw), what);
	if (!repaired) {
		uint64_t now = zt_now_mono_ns(), until = dr->k[i].backoff_until;
		struct drift_subj *s = subj_get(dr, i, subject, false);
		bool *told = &dr->k[i].told;

		if (err && !dr->k[i].err_told)
			log_error("drift_repair_failed",
				  "kind=%s subject=%s differed=%s error=\"%s\" retry=every-tick",
				  kind, qs, qw, strerror(-err));
		if (err) {
			dr->k[i].err_told = true;
			return;
		}
		if (s && now < s->backoff_until && now >= until) {
			until = s->backoff_until;
			told = &s->told;
		}
		if (!*told)
			log_warn(
				"drift_not_repaired",
				"kind=%s subject=%s differed=%s why=\"backing off: this %s flaps\" retry_in_ms=%llu",
				kind, qs, qw, told == &dr->k[i].told ? "kind" : "object",
				(unsigned long long)(until > now ? (until - now) / 1000000ULL : 0));
		*told = true;
		return;
	}
	dr->k[i].err_told = false;
	{
		const char *v[] = { kind };

		zt_metric_add(dr->repairs, v, 1);
		__atomic_add_fetch(&dr->repairs_total, 1, __ATOMIC_RELAXED);
	}
	log_warn("drift_repaired", "kind=%s subject=%s differed=%s", kind, qs, qw);
	/* What tc_endpoint decided by while the entry was wrong: evaluated again (drift_reeval). */
	if (!strcmp(kind, "policy") || !strcmp(kind, "ipcache") || !strcmp(kind, "endpoints"))
		dr->reeval = true;
	drift_audit(dr, "drift.repair", kind, subject, what, "");
	note_repair(dr, i, subject, what);
}

/*
 * A generation after repairs of the endpoints, policy or ipcache maps
 * (zt_seg_reevaluate): tc_endpoint evaluates an established flow again only
 * when a generation moves, so a connection that a forged entry let in would
 * otherwise keep its verdict after the repair. One generation for all the
 * repairs of a tick or of a batch of the watch's reports, at most one every
 * DRIFT_REEVAL_MIN_NS: a writer that keeps changing entries costs a few
 * compiles a second, not one per write; what is owed waits for the next
 * tick. A failure is retried every tick.
 */
static void drift_reeval(struct zt_drift *dr)
{
	uint64_t now = zt_now_mono_ns();
	char err[256], qe[300];
	int r;

	if (!dr->reeval || (dr->reeval_ns && now - dr->reeval_ns < DRIFT_REEVAL_MIN_NS))
		return;
	dr->reeval_ns = now;
	r = zt_seg_reevaluate(dr->d->seg, "drift-repair", err, sizeof(err));
	if (r == 0 || r == -EAGAIN) {
		/* -EAGAIN: no valid policy loaded; the one that loads is a generation. */
		dr->reeval = false;
		if (r == 0) {
			dr->reeval_told = false;
			return;
		}
	}
	if (!dr->reeval_told)
		log_warn(
			"drift_reevaluate_failed",
			"error=%s consequence=\"flows evaluated while the repaired entries were wrong keep their verdicts until the next generation\" retry=%s",
			zt_log_quote(qe, sizeof(qe), err), dr->reeval ? "every-tick" : "none");
	dr->reeval_told = true;
}

/* tc_uplink on an uplink's TC egress (a clsact deleted takes it too). */
static void check_uplink_egress(struct zt_drift *dr, unsigned int i)
{
	struct zt_datapath *dp = dr->d->dp;
	char what[160], err[256] = "";
	uint32_t found = 0;
	int r;

	if (zt_datapath_uplink_egress_on(dp, i, &found) != 0)
		return;
	snprintf(what, sizeof(what), "TC egress program %u at ztagent's handle, expected tc_uplink",
		 found);
	if (!drift_may_obj(dr, "tc", dp->ifaces[i].name)) {
		drift_report(dr, "tc", dp->ifaces[i].name, what, false, 0);
		return;
	}
	r = zt_datapath_uplink_egress_repair(dp, i, err, sizeof(err));
	drift_report(dr, "tc", dp->ifaces[i].name, what, r == 0, r < 0 ? r : 0);
}

static void check_xdp(struct zt_drift *dr)
{
	struct zt_datapath *dp = dr->d->dp;

	for (unsigned int i = 0; i < dp->n_ifaces; i++) {
		char what[160], err[256] = "";
		uint32_t found = 0;
		int r;

		check_uplink_egress(dr, i);
		if (zt_datapath_guard_on(dp, i, &found) != 0)
			continue;
		if (dp->ifaces[i].mode == ZT_XDP_TC)
			snprintf(what, sizeof(what),
				 "TC ingress program %u at ztagent's handle, expected tc_guard %u",
				 found, zt_datapath_tc_guard_prog_id(dp));
		else
			snprintf(what, sizeof(what),
				 "XDP program %u on the hook, expected xdp_guard %u", found,
				 zt_datapath_xdp_prog_id(dp));
		if (!drift_may_obj(dr, "xdp", dp->ifaces[i].name)) {
			drift_report(dr, "xdp", dp->ifaces[i].name, what, false, 0);
			continue;
		}
		r = zt_datapath_xdp_repair(dp, i, &found, err, sizeof(err));
		drift_report(dr, "xdp", dp->ifaces[i].name, what, r > 0, r < 0 ? r : 0);
	}
}

/* Is path a pin of the map behind fd? 1 yes, 0 missing, -1 another object. */
static int pin_state(const char *path, int fd, bool full)
{
	struct bpf_map_info a = {}, b = {};
	__u32 la = sizeof(a), lb = sizeof(b);
	struct stat st;
	int pfd, r;

	if (stat(path, &st) < 0)
		return 0;
	if (!full)
		return 1;
	pfd = bpf_obj_get(path);
	if (pfd < 0)
		return -1;
	r = bpf_obj_get_info_by_fd(pfd, &a, &la) == 0 && bpf_obj_get_info_by_fd(fd, &b, &lb) == 0 &&
	    a.id == b.id;
	close(pfd);
	return r ? 1 : -1;
}

static void check_pins_obj(struct zt_drift *dr, struct bpf_object *obj, bool full)
{
	struct bpf_map *map;

	bpf_object__for_each_map (map, obj) {
		const char *path = bpf_map__pin_path(map);
		char what[96];
		int st, r = 0;

		if (!path || bpf_map__is_internal(map))
			continue;
		st = pin_state(path, bpf_map__fd(map), full);
		if (st == 1)
			continue;
		snprintf(what, sizeof(what),
			 st == 0 ? "pin removed" : "another object pinned in its place");
		if (!drift_may_obj(dr, "pin", path)) {
			drift_report(dr, "pin", path, what, false, 0);
			continue;
		}
		if (st < 0 && unlink(path) < 0)
			r = -errno;
		if (r == 0 && bpf_obj_pin(bpf_map__fd(map), path) < 0) {
			r = -errno;
			if (r == -ENOENT) {
				/* The whole directory went: make it again (it is on the bpffs). */
				char dir[PATH_MAX];
				char *slash;

				snprintf(dir, sizeof(dir), "%s", path);
				slash = strrchr(dir, '/');
				if (slash) {
					*slash = '\0';
					zt_mkdir_p(dir, 0700);
				}
				r = bpf_obj_pin(bpf_map__fd(map), path) < 0 ? -errno : 0;
			}
		}
		drift_report(dr, "pin", path, what, r == 0, r);
	}
}

void daemon_drift_cni_check(struct zt_daemon *d, const struct zt_drift_hooks *h, bool full);

/*
 * The pause between whole reads of the blocklist hash maps. A change right
 * after its entry was read is seen by the next read, which ends up to a
 * pause and two reads later: the pause keeps that under
 * DRIFT_BL_SCAN_TARGET_NS while the reads are short (a million entries:
 * ~200 ms of CPU each here), and is never shorter than what keeps the
 * reader within drift.blocklist_cpu of one CPU (default 0.1: a million
 * entries are then read every ~2.5 s; a slow or busy machine gets a slower
 * repair, not a busier CPU).
 *
 * The shortest pause that keeps the reads within the CPU share: cpu / (cpu + pause) <= share.
 */
static uint64_t bl_scan_cap(uint64_t cpu, uint32_t share_ppm)
{
	uint64_t cap = share_ppm ? cpu * (1000000ULL - share_ppm) / share_ppm : cpu;

	return cap < DRIFT_BL_SCAN_MIN_PAUSE_NS ? DRIFT_BL_SCAN_MIN_PAUSE_NS : cap;
}

static uint64_t bl_scan_pause(uint64_t busy, uint64_t cpu, uint32_t share_ppm)
{
	uint64_t p = 2 * busy < DRIFT_BL_SCAN_TARGET_NS ? DRIFT_BL_SCAN_TARGET_NS - 2 * busy : 0;
	uint64_t cap = bl_scan_cap(cpu, share_ppm);

	return p < cap ? cap : p;
}

static struct timespec ts_after(uint64_t now, uint64_t ns)
{
	uint64_t t = now + ns;

	return (struct timespec){ .tv_sec = (time_t)(t / 1000000000ULL),
				  .tv_nsec = (long)(t % 1000000000ULL) };
}

/*
 * The reader thread: whole maps, handed to the loop one at a time. A read
 * walks every bucket of the map (2M by default, whatever it holds) in one
 * bpf() call, 2-5 ms of a CPU the kernel does not give up meanwhile: tasks
 * woken on that CPU wait for it. While the drift watch runs, it reports
 * every write by another process's bpf() call (and a write it could not
 * report starts a read at once: dw_check_lost), so the reads are only the
 * net for another BPF program's writes, and come every
 * DRIFT_BL_SCAN_WATCHED_NS; without the watch, at the pace above.
 */
static void *bl_scan_main(void *arg)
{
	struct zt_drift *dr = arg;
	bool stop = false;

	while (!stop) {
		uint64_t busy = 0, one = 1, cpu0 = zt_thread_cpu_ns(), now, cpu, pause;
		struct timespec until, until_kick;

		for (int f = 0; f < 2 && !stop; f++) {
			zt_blocklist_scan_run(dr->scan[f]);
			busy += zt_blocklist_scan_ns(dr->scan[f]);
			pthread_mutex_lock(&dr->scan_mu);
			dr->scan_ready = f + 1;
			pthread_mutex_unlock(&dr->scan_mu);
			if (write(dr->scan_efd, &one, sizeof(one)) < 0)
				break;
			pthread_mutex_lock(&dr->scan_mu);
			while (dr->scan_ready && !dr->scan_stop)
				pthread_cond_wait(&dr->scan_cv, &dr->scan_mu);
			stop = dr->scan_stop;
			pthread_mutex_unlock(&dr->scan_mu);
		}
		now = zt_now_mono_ns();
		cpu = zt_thread_cpu_ns() - cpu0;
		pause = bl_scan_pause(busy, cpu, dr->d->cfg.drift.blocklist_cpu_ppm);
		if (__atomic_load_n(&dr->watched, __ATOMIC_RELAXED) &&
		    pause < DRIFT_BL_SCAN_WATCHED_NS)
			pause = DRIFT_BL_SCAN_WATCHED_NS;
		until = ts_after(now, pause);
		/* A kick (a batch write seen by the watch) waits for the CPU bound only. */
		until_kick = ts_after(now, bl_scan_cap(cpu, dr->d->cfg.drift.blocklist_cpu_ppm));
		pthread_mutex_lock(&dr->scan_mu);
		while (!dr->scan_stop &&
		       pthread_cond_timedwait(&dr->scan_cv, &dr->scan_mu,
					      dr->scan_kick ? &until_kick : &until) != ETIMEDOUT)
			;
		dr->scan_kick = false;
		stop = dr->scan_stop;
		pthread_mutex_unlock(&dr->scan_mu);
	}
	return NULL;
}

/* A whole read of one map is in: compare it on the loop thread, then let the reader go on. */
static void on_bl_scan(void *ctx, int fd, uint32_t events)
{
	struct zt_drift *dr = ctx;
	uint64_t n, t0 = zt_now_mono_ns(), c0 = zt_thread_cpu_ns(), dt, dc;
	int f, r;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&dr->scan_mu);
	f = dr->scan_ready - 1;
	pthread_mutex_unlock(&dr->scan_mu);
	if (f < 0)
		return;
	r = zt_blocklist_scan_compare(dr->d->bl, dr->scan[f], DRIFT_BL_SCAN_LOOKUPS, &dr->hooks);
	dt = zt_now_mono_ns() - t0;
	dc = zt_thread_cpu_ns() - c0;
	/* The walk covers the hash maps again while their reads fail. */
	dr->blc.skip_hash = r >= 0;
	if (r < 0)
		log_warn("drift_bl_scan_failed", "family=%s error=\"%s\" fallback=slow-walk",
			 f ? "ipv6" : "ipv4", strerror(-r));
	else if (r > 0 || dr->scans % 100 == 0)
		log_info(
			"drift_bl_scan",
			"family=%s buckets_differed=%d read_ms=%llu read_cpu_ms=%llu loop_ms=%llu loop_cpu_ms=%llu",
			f ? "ipv6" : "ipv4", r,
			(unsigned long long)(zt_blocklist_scan_ns(dr->scan[f]) / 1000000ULL),
			(unsigned long long)(zt_blocklist_scan_cpu_ns(dr->scan[f]) / 1000000ULL),
			(unsigned long long)(dt / 1000000ULL),
			(unsigned long long)(dc / 1000000ULL));
	dr->scans++;
	pthread_mutex_lock(&dr->scan_mu);
	dr->scan_ready = 0;
	pthread_cond_signal(&dr->scan_cv);
	pthread_mutex_unlock(&dr->scan_mu);
}

static int bl_scan_start(struct zt_drift *dr)
{
	int r = 0;

	pthread_condattr_t ca;

	pthread_mutex_init(&dr->scan_mu, NULL);
	/* The reader's pause is a CLOCK_MONOTONIC deadline (the default clock would make it 1970). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dr->scan_cv, &ca);
	pthread_condattr_destroy(&ca);
	dr->scan_init = true;
	dr->scan_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dr->scan_efd < 0)
		return -errno;
	for (int f = 0; f < 2 && r == 0; f++)
		r = zt_blocklist_scan_new(dr->d->bl, f, &dr->scan[f]);
	if (r == 0)
		r = zt_loop_add(dr->d->loop, dr->scan_efd, EPOLLIN, on_bl_scan, dr);
	if (r == 0) {
		r = -pthread_create(&dr->scan_th, NULL, bl_scan_main, dr);
		if (r < 0)
			zt_loop_del(dr->d->loop, dr->scan_efd);
		else
			pthread_setname_np(dr->scan_th, "zt-bl-scan");
	}
	dr->scan_started = r == 0;
	return r;
}

static void bl_scan_stop(struct zt_drift *dr)
{
	if (!dr->scan_init)
		return;
	dr->scan_init = false;
	if (dr->scan_started) {
		pthread_mutex_lock(&dr->scan_mu);
		dr->scan_stop = true;
		pthread_cond_broadcast(&dr->scan_cv);
		pthread_mutex_unlock(&dr->scan_mu);
		pthread_join(dr->scan_th, NULL);
		zt_loop_del(dr->d->loop, dr->scan_efd);
	}
	dr->scan_started = false;
	for (int f = 0; f < 2; f++) {
		zt_blocklist_scan_free(dr->scan[f]);
		dr->scan[f] = NULL;
	}
	if (dr->scan_efd >= 0)
		close(dr->scan_efd);
	dr->scan_efd = -1;
	pthread_cond_destroy(&dr->scan_cv);
	pthread_mutex_destroy(&dr->scan_mu);
}

/*
 * ---- the drift watch: other processes' writes, as they happen ----
 *
 * bpf/drift_watch.bpf.c reports each write to a watched map (blocklist,
 * block_notes, endpoints, policy, pol_isolation, ipcache) by a process
 * other than the agent once its bpf() call is done: each key it wrote is
 * compared and repaired at once, whatever the map's size; a batch write
 * reports the keys it processed, up to ZT_DW_BATCH_KEYS. A bigger batch
 * (keys not reported) makes the reader read a blocklist hash map again as
 * soon as its CPU bound allows, starts a trie's walk over, and checks the
 * other maps whole at once. The ticks, the whole reads and the walk stay
 * as the safety net for what the watch cannot see (another BPF program's
 * writes, events lost when the ring is full, the watch off).
 */
static const char *const dw_map_names[ZT_DW_MAPS] = {
	ZT_PIN_BLOCK_V4,   ZT_PIN_BLOCK_V6, ZT_PIN_BLOCK_LPM_V4,  ZT_PIN_BLOCK_LPM_V6,
	ZT_PIN_ENDPOINTS,  ZT_PIN_POLICY,   ZT_PIN_POL_ISOLATION, ZT_PIN_IPCACHE_V4,
	ZT_PIN_IPCACHE_V6, "block_notes",
};

/* One key a watched write touched. */
static void dw_check_key(struct zt_drift *dr, uint32_t slot, const uint8_t *key, uint32_t klen)
{
	struct zt_daemon *d = dr->d;

	if (slot < ZT_DW_SLOT_ENDPOINTS) {
		int fam = slot & 1;

		if (klen == (fam ? sizeof(struct zt_ip6_key) : sizeof(struct zt_ip4_key)))
			zt_blocklist_drift_check_key(d->bl, fam, slot >= 2, key, &dr->hooks);
	} else if (slot == ZT_DW_SLOT_NOTES) {
		if (klen == sizeof(uint32_t))
			zt_blocklist_notes_check_key(d->bl, key, &dr->hooks);
	} else {
		zt_seg_drift_check_key(d->seg, dw_map_names[slot], key, klen, &dr->hooks);
	}
}

/* A write whose keys are not known: the map checked whole, now or by the reader. */
static void dw_check_all(struct zt_drift *dr, uint32_t slot)
{
	if (slot >= 2 && slot < ZT_DW_SLOT_ENDPOINTS) {
		dr->blc.mid[slot] = false;
	} else if (slot < 2) {
		if (dr->scan_started) {
			pthread_mutex_lock(&dr->scan_mu);
			dr->scan_kick = true;
			pthread_cond_signal(&dr->scan_cv);
			pthread_mutex_unlock(&dr->scan_mu);
		}
	} else if (slot == ZT_DW_SLOT_NOTES) {
		zt_blocklist_notes_check(dr->d->bl, &dr->hooks);
	} else {
		zt_seg_drift_check(dr->d->seg, &dr->hooks);
	}
}

static int on_dw_event(void *ctx, void *data, size_t size)
{
	struct zt_drift *dr = ctx;
	const struct zt_dw_event *e = data;
	const struct zt_dw_batch *b = data;
	char comm[sizeof(e->comm) + 1];

	if (size < sizeof(*e) || e->slot >= ZT_DW_MAPS)
		return 0;
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = '\0';
	dr->dw_events++;
	snprintf(dr->who, sizeof(dr->who), "%s (pid %u)", comm, e->pid);
	if (size >= sizeof(*b) && e->n_keys && e->n_keys <= ZT_DW_BATCH_KEYS) {
		for (uint32_t i = 0; i < e->n_keys; i++)
			dw_check_key(dr, e->slot, b->keys[i], e->key_len);
		dr->dw_batch_keys += e->n_keys;
	} else if (size < sizeof(*b) && e->n_keys == 1) {
		dw_check_key(dr, e->slot, e->key, e->key_len);
	} else {
		dw_check_all(dr, e->slot);
	}
	log_debug("drift_watch_write", "map=%s cmd=%u keys=%u pid=%u comm=\"%s\" ret=%lld",
		  dw_map_names[e->slot], e->cmd, e->n_keys, e->pid, comm, (long long)e->ret);
	dr->who[0] = '\0';
	return 0;
}

/* Writes the watch saw but could not report (its ring was full): every watched map checked whole. */
static void dw_check_lost(struct zt_drift *dr)
{
	uint64_t lost = __atomic_load_n(&dr->dw->bss->dw_lost, __ATOMIC_RELAXED);

	if (lost == dr->dw_lost_seen)
		return;
	log_warn("drift_watch_lost", "writes=%llu effect=\"the watched maps are checked whole\"",
		 (unsigned long long)(lost - dr->dw_lost_seen));
	dr->dw_lost_seen = lost;
	dw_check_all(dr, 0); /* the blocklist hash maps: a read now */
	dw_check_all(dr, 2);
	dw_check_all(dr, 3);
	dw_check_all(dr, ZT_DW_SLOT_NOTES);
	dw_check_all(dr, ZT_DW_SLOT_ENDPOINTS); /* the segmentation maps */
}

/* Everything the watch has reported so far. */
static void dw_consume(struct zt_drift *dr)
{
	int r = ring_buffer__consume(dr->dw_rb);

	if (r < 0)
		log_warn("drift_watch_read_failed", "error=\"%s\"", strerror(-r));
}

static void on_dw_ready(void *ctx, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	dw_consume(ctx);
	drift_reeval(ctx);
}

/* The ids of syscalls/sys_{enter,exit}_bpf under a tracefs root. */
static int dw_tp_ids_in(const char *root, long ids[2])
{
	static const char *const names[2] = { "sys_enter_bpf", "sys_exit_bpf" };

	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX];
		FILE *f;
		int n;

		snprintf(path, sizeof(path), "%s/events/syscalls/%s/id", root, names[i]);
		f = fopen(path, "re");
		if (!f)
			return -errno;
		n = fscanf(f, "%ld", &ids[i]);
		fclose(f);
		if (n != 1)
			return -EINVAL;
	}
	return 0;
}

/*
 * The tracepoints' ids, from tracefs. Where /sys has none (a private /sys
 * under 'ip netns exec', a container), tracefs is mounted for a moment on
 * a directory of our own, in our own mount namespace's view, and unmounted.
 */
static int dw_tp_ids(struct zt_drift *dr, long ids[2])
{
	char dir[PATH_MAX];
	int r;

	if (dw_tp_ids_in("/sys/kernel/tracing", ids) == 0 ||
	    dw_tp_ids_in("/sys/kernel/debug/tracing", ids) == 0)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/.tracefs.XXXXXX", dr->d->cfg.state_dir) >=
	    (int)sizeof(dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(dir))
		return -errno;
	r = mount("tracefs", dir, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? -errno :
											   0;
	if (r == 0) {
		r = dw_tp_ids_in(dir, ids);
		umount2(dir, MNT_DETACH);
	}
	rmdir(dir);
	return r;
}

static int dw_attach_tp(struct bpf_program *prog, long id, struct bpf_link **out)
{
	struct perf_event_attr a = { .type = PERF_TYPE_TRACEPOINT,
				     .size = sizeof(a),
				     .config = (__u64)id,
				     .sample_period = 1,
				     .wakeup_events = 1 };
	/* Any CPU: a tracepoint runs its programs wherever it fires. */
	int pfd = (int)syscall(__NR_perf_event_open, &a, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);

	if (pfd < 0)
		return -errno;
	*out = bpf_program__attach_perf_event(prog, pfd);
	if (!*out) {
		int r = errno ? -errno : -EINVAL;

		close(pfd);
		return r;
	}
	return 0;
}

static int dw_start(struct zt_drift *dr)
{
	struct xdp_guard *x = dr->d->dp->xdp;
	struct tc_endpoint *t = dr->d->dp->tc;
	struct bpf_map *maps[ZT_DW_MAPS] = { x->maps.blocklist_v4,     x->maps.blocklist_v6,
					     x->maps.blocklist_lpm_v4, x->maps.blocklist_lpm_v6,
					     t->maps.endpoints,	       t->maps.policy,
					     t->maps.pol_isolation,    t->maps.ipcache_v4,
					     t->maps.ipcache_v6,       x->maps.block_notes };
	struct drift_watch *w = drift_watch__open();
	bool tp;
	long ids[2];
	int r = 0;

	if (!w)
		return errno ? -errno : -ENOMEM;
	dr->dw = w;
	/*
	 * The bpf() tracepoints run for bpf() calls only; the raw ones, for
	 * every syscall on the node (~0.25 us each on the 2-core VM): only
	 * without tracefs.
	 */
	tp = dw_tp_ids(dr, ids) == 0;
	bpf_program__set_autoload(w->progs.dw_tp_enter, tp);
	bpf_program__set_autoload(w->progs.dw_tp_exit, tp);
	bpf_program__set_autoload(w->progs.dw_raw_enter, !tp);
	bpf_program__set_autoload(w->progs.dw_raw_exit, !tp);
	dr->dw_way = tp ? "tracepoint" : "raw_tracepoint";
	w->rodata->agent_tgid = (uint32_t)getpid();
	for (int i = 0; i < ZT_DW_MAPS && r == 0; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_map__fd(maps[i]), &info, &len) < 0)
			r = -errno;
		w->rodata->watch_ids[i] = info.id;
	}
	if (r == 0)
		r = drift_watch__load(w);
	/* The exit first: an entry recorded with no exit to send it would wait in dw_pending. */
	if (r == 0 && tp)
		r = dw_attach_tp(w->progs.dw_tp_exit, ids[1], &dr->dw_link[1]);
	if (r == 0 && tp)
		r = dw_attach_tp(w->progs.dw_tp_enter, ids[0], &dr->dw_link[0]);
	if (r == 0 && !tp) {
		dr->dw_link[1] = bpf_program__attach(w->progs.dw_raw_exit);
		dr->dw_link[0] = dr->dw_link[1] ? bpf_program__attach(w->progs.dw_raw_enter) : NULL;
		if (!dr->dw_link[0])
			r = errno ? -errno : -EINVAL;
	}
	if (r == 0) {
		dr->dw_rb = ring_buffer__new(bpf_map__fd(w->maps.dw_events), on_dw_event, dr, NULL);
		if (!dr->dw_rb)
			r = errno ? -errno : -ENOMEM;
	}
	if (r == 0)
		r = zt_loop_add(dr->d->loop, ring_buffer__epoll_fd(dr->dw_rb), EPOLLIN, on_dw_ready,
				dr);
	return r;
}

static void dw_stop(struct zt_drift *dr)
{
	__atomic_store_n(&dr->watched, false, __ATOMIC_RELAXED);
	if (dr->dw_rb) {
		zt_loop_del(dr->d->loop, ring_buffer__epoll_fd(dr->dw_rb));
		ring_buffer__free(dr->dw_rb);
	}
	dr->dw_rb = NULL;
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(dr->dw_link[i]);
		dr->dw_link[i] = NULL;
	}
	drift_watch__destroy(dr->dw);
	dr->dw = NULL;
}

static void on_drift_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_drift *dr = ctx;
	struct zt_daemon *d = dr->d;
	uint64_t ticks, t0 = zt_now_mono_ns();
	bool full;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	full = dr->ticks++ % DRIFT_FULL_TICKS == 0;
	/* The watch's events also each tick: a wakeup missed costs one tick, not a whole read. */
	if (dr->dw_rb) {
		dw_consume(dr);
		dw_check_lost(dr);
	}
	check_xdp(dr);
	check_pins_obj(dr, d->dp->xdp->obj, full);
	check_pins_obj(dr, d->dp->tc->obj, full);
	/* Their own pinned maps too (host_replies); the shared ones are back already. */
	if (d->dp->up)
		check_pins_obj(dr, d->dp->up->obj, full);
	if (d->dp->hs)
		check_pins_obj(dr, d->dp->hs->obj, full);
	dr->in_tick = true;
	zt_seg_drift_check(d->seg, &dr->hooks);
	dr->in_tick = false;
	dr->deferred = false;
	zt_blocklist_drift_check(d->bl, &dr->blc, DRIFT_BL_BUDGET, &dr->hooks);
	/* The notes' walk: two syscalls a note, so a big map waits for the full ticks. */
	if (full || zt_blocklist_notes_count(d->bl) <= DRIFT_NOTES_EVERY_TICK)
		zt_blocklist_notes_check(d->bl, &dr->hooks);
	daemon_drift_cni_check(d, &dr->hooks, full);
	drift_reeval(dr);
	flap_gauges(dr);
	dr->last_tick_ns = zt_now_mono_ns() - t0;
	if (full)
		log_debug("drift_tick", "us=%llu", (unsigned long long)(dr->last_tick_ns / 1000));
}

int daemon_drift_start(struct zt_daemon *d, char *err, size_t errlen)
{
	static const char *const labels[] = { "kind", NULL };
	struct zt_drift *dr = calloc(1, sizeof(*dr));
	int r;

	if (!dr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dr->d = d;
	dr->scan_efd = -1;
	dr->hooks = (struct zt_drift_hooks){
		.may = drift_may, .report = drift_report, .ctx = dr, .may_obj = drift_may_obj
	};
	r = zt_metrics_add(d->metrics, "ztagent_drift_repairs_total",
			   "Differences between the kernel and the agent's desired state, repaired",
			   ZT_METRIC_COUNTER, labels, NULL, NULL, &dr->repairs);
	if (r == 0)
		r = zt_metrics_add(
			d->metrics, "ztagent_drift_flapping",
			"1 while repairs of this kind, or of one object of it, back off because something keeps undoing them",
			ZT_METRIC_GAUGE, labels, NULL, NULL, &dr->flapping);
	for (size_t i = 0; r == 0 && i < N_KINDS; i++) {
		const char *v[] = { kind_names[i] };

		r = zt_metric_add(dr->repairs, v, 0);
		if (r == 0)
			r = zt_metric_set(dr->flapping, v, 0);
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot register the drift metrics: %s", strerror(-r));
		free(dr);
		return r;
	}
	r = zt_loop_add_timer(d->loop, DRIFT_TICK_NS, on_drift_timer, dr);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the drift timer: %s", strerror(-r));
		free(dr);
		return r;
	}
	r = d->cfg.drift.blocklist_cpu_ppm ? bl_scan_start(dr) : -ECANCELED;
	if (r == -ECANCELED) {
		log_info("drift_bl_scan_off", "why=\"drift.blocklist_cpu is 0\" effect=\"blocklist "
					      "drift found by the slow walk only\"");
	} else if (r < 0) {
		/* The slow walk alone still finds everything, later. */
		log_warn("drift_bl_scan_off",
			 "error=\"%s\" effect=\"blocklist drift found by the slow walk only\"",
			 strerror(-r));
		bl_scan_stop(dr);
	}
	r = dw_start(dr);
	if (r < 0) {
		log_warn(
			"drift_watch_off",
			"error=\"%s\" effect=\"writes by other processes are found by the 200 ms checks and the blocklist's whole-map reads only (slower in big maps)\"",
			strerror(-r));
		dw_stop(dr);
	} else {
		log_info("drift_watch_on", "maps=%d way=%s", ZT_DW_MAPS, dr->dw_way);
		__atomic_store_n(&dr->watched, true, __ATOMIC_RELAXED);
	}
	d->drift = dr;
	log_info(
		"drift_on",
		"tick_ms=%llu full_every_s=%llu flap_max_per_object=%d flap_max_per_kind=%d flap_window_s=%llu objects_tracked=%d",
		(unsigned long long)(DRIFT_TICK_NS / 1000000ULL),
		(unsigned long long)(DRIFT_TICK_NS * DRIFT_FULL_TICKS / 1000000000ULL),
		DRIFT_FLAP_MAX, DRIFT_KIND_FLAP_MAX,
		(unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL), DRIFT_SUBJ_SLOTS);
	return 0;
}

uint64_t daemon_drift_repairs(struct zt_daemon *d)
{
	return d->drift ? __atomic_load_n(&d->drift->repairs_total, __ATOMIC_RELAXED) : 0;
}

void daemon_drift_stop(struct zt_daemon *d)
{
	/* The timer belongs to the loop, which is stopped after this. */
	if (d->drift) {
		dw_stop(d->drift);
		bl_scan_stop(d->drift);
	}
	free(d->drift);
	d->drift = NULL;
}

/* ---- the CNI conflist (drift.cni_conflist) ---- */

static bool lists_plugin(json_object *root)
{
	json_object *plugins, *t;

	if (!json_object_object_get_ex(root, "plugins", &plugins) ||
	    !json_object_is_type(plugins, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(plugins); i++) {
		json_object *p = json_object_array_get_idx(plugins, i);

		if (json_object_object_get_ex(p, "type", &t) &&
		    json_object_is_type(t, json_type_string) &&
		    !strcmp(json_object_get_string(t), "ztagent-cni"))
			return true;
	}
	return false;
}

/* Writes text to path through a temporary file and a rename: the runtime never reads half. */
static int write_atomic(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 16];
	size_t n = strlen(text);
	FILE *f;
	int r = 0;

	snprintf(tmp, sizeof(tmp), "%s.ztagent", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fwrite(text, 1, n, f) != n || fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -EIO;
	if (fclose(f) != 0 && !r)
		r = -EIO;
	if (!r && chmod(tmp, mode) < 0)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

struct cni_watch {
	char *good; /* the last text that listed the plugin */
	struct stat st; /* of the file as last checked */
	bool checked;
};

static struct cni_watch cni_w; /* the loop thread's only */

void daemon_drift_cni_check(struct zt_daemon *d, const struct zt_drift_hooks *h, bool full)
{
	const char *path = d->cfg.drift.cni_conflist;
	char *text = NULL, what[128] = "";
	json_object *root = NULL, *plugins = NULL;
	struct stat st;
	mode_t mode = 0644;
	int r = 0;

	if (!path[0])
		return;
	if (stat(path, &st) == 0) {
		if (!full && cni_w.checked && st.st_ino == cni_w.st.st_ino &&
		    st.st_size == cni_w.st.st_size &&
		    st.st_mtim.tv_sec == cni_w.st.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == cni_w.st.st_mtim.tv_nsec)
			return;
		mode = st.st_mode & 07777;
		root = json_object_from_file(path);
		if (root && lists_plugin(root)) {
			free(cni_w.good);
			cni_w.good = strdup(json_object_to_json_string_ext(
				root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
			cni_w.st = st;
			cni_w.checked = true;
			goto out;
		}
		snprintf(what, sizeof(what),
			 root ? "ztagent-cni missing from the plugins list" :
				"conflist is not valid JSON");
	} else if (cni_w.good) {
		snprintf(what, sizeof(what), "conflist removed");
	} else {
		goto out; /* never seen: the installer has not written it yet */
	}
	if (!cni_w.good && !root)
		goto out; /* nothing good to go back to */
	if (zt_drift_may(h, "cni", path)) {
		if (root && json_object_object_get_ex(root, "plugins", &plugins) &&
		    json_object_is_type(plugins, json_type_array)) {
			/* Keep the operator's other changes: add our entry back at the end. */
			json_object *e = json_object_new_object();

			json_object_object_add(e, "type", json_object_new_string("ztagent-cni"));
			json_object_object_add(e, "socket",
					       json_object_new_string(d->cfg.api_socket));
			json_object_object_add(e, "state_dir",
					       json_object_new_string(d->cfg.state_dir));
			json_object_array_add(plugins, e);
			text = strdup(json_object_to_json_string_ext(
				root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		} else if (cni_w.good) {
			text = strdup(cni_w.good);
		}
		r = text ? write_atomic(path, text, mode) : -EINVAL;
		if (r == 0 && stat(path, &cni_w.st) == 0) {
			free(cni_w.good);
			cni_w.good = text;
			text = NULL;
			cni_w.checked = true;
		}
		h->report(h->ctx, "cni", path, what, r == 0, r);
	} else {
		h->report(h->ctx, "cni", path, what, false, 0);
	}
out:
	free(text);
	if (root)
		json_object_put(root);
}
