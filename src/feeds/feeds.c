// SPDX-License-Identifier: GPL-2.0-only
/*
 * The feeds subsystem in the daemon (see feeds.h): the fetcher's work hook
 * (parse on its thread), completions on the loop, apply steps on a timer,
 * status, API, metrics and IOC hits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/cbor.h"
#include "agent/log.h"
#include "agent/util.h"
#include "feeds/apply.h"
#include "feeds/feeds.h"
#include "feeds/fetch.h"
#include "records/auditq.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"

#define STEP_NS_DEFAULT (30ULL * 1000000ULL)
/*
 * Between steps the loop goes back to epoll, and everything that became
 * ready during the step is served before the next one. Without a sleep:
 * the next step is an eventfd left readable (STEP_AT_ONCE), so epoll_wait
 * returns at once with it and whatever else is ready. With a 50 us timer
 * gap a 1M swap spent 0.6-0.9 s between its steps on a loaded machine
 * (0.1-0.4 s without): every sleep gave the CPU away and waited for a
 * scheduler slice to get it back.
 */
#define STEP_AT_ONCE 0ULL
#define WAIT_GAP_NS 1000000ULL /* waiting for the blocklist's room (zt_feed_apply_waiting) */
#define REPORTS_KEPT 20 /* problems and subtractions shown by feeds.show */
#define HIT_SLOTS 4096
#define HIT_FOLD_NS (60ULL * 1000000000ULL)
#define ALLOW_MAX 65536

/* What the worker made of a version. */
struct work {
	bool policy;
	struct zt_feed_result *res;
	void **sets;
	size_t n_sets, n_policies;
	char sha[65];
	uint64_t t_body; /* CLOCK_MONOTONIC: the body reached the worker */
	uint64_t parse_ns;
};

/* A feed's status, for the API (loop thread) and metrics (their thread): under lock. */
struct fstat {
	uint64_t last_attempt_unix;
	uint64_t last_success_unix; /* the source last confirmed or changed the content */
	uint64_t last_change_unix; /* a new version was applied */
	uint64_t last_good_unix; /* when the content in force was fetched */
	uint64_t fetch_errors;
	unsigned int failures;
	long http_status;
	uint64_t next_mono_ns;
	size_t bytes;
	char last_error[512];
	struct zt_feed_stats stats; /* of the version in force (or being applied) */
	size_t entries; /* entries of that version */
	size_t src, dst; /* prefixes in force per direction */
	size_t policies; /* format: policy: advisories in force */
	char sha_seen[65]; /* the last version fetched */
	char sha_in_force[65];
	uint64_t versions; /* applied by this process */
	double last_apply_s; /* content to kernel, of the last version */
	double last_parse_s;
	bool applying;
	bool have_content;
	uint64_t ioc_hits;
	char problems[REPORTS_KEPT][256];
	size_t n_problems;
	char subtractions[REPORTS_KEPT][192];
	size_t n_subtractions;
};

struct hit_slot {
	uint32_t ep_id, feed;
	struct zt_cidr c;
	uint64_t t_ns;
	uint64_t folded;
};

struct zt_feeds {
	struct zt_feeds_opts o;
	const struct zt_config *cfg;
	struct zt_feed_fetcher *fetcher;
	struct zt_feed_apply *apply;
	int step_fd; /* timer: a step after a gap */
	int kick_fd; /* eventfd: a step at once */
	bool step_armed;
	uint64_t step_ns;
	int fd_allow[2];
	int fd_ioc_stats;
	int ncpus;
	pthread_mutex_t lock;
	struct fstat st[ZT_MAX_FEEDS];
	/* ring-buffer thread only */
	struct hit_slot hits[HIT_SLOTS];
	struct zt_metric *m_entries, *m_last_success, *m_errors, *m_apply, *m_stale, *m_ioc;
};

static const char *dir_name(enum zt_feed_direction d)
{
	return d == ZT_FEED_SOURCE ? "source" : d == ZT_FEED_DESTINATION ? "destination" : "both";
}

static void audit(struct zt_feeds *f, const char *kind, const char *subject, const char *detail)
{
	if (f->o.hooks.audit)
		f->o.hooks.audit(f->o.hooks.audit_ctx, kind, subject, detail);
}

static void hex32(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- the worker's side ---- */

/* The allowlist as it is now (read from the kernel: any thread may). */
static size_t read_allowlist(struct zt_feeds *f, struct zt_cidr *out, size_t max)
{
	size_t n = 0;

	for (int fam = 0; fam < 2; fam++) {
		uint8_t k[sizeof(struct zt_ip6_key)], nk[sizeof(struct zt_ip6_key)];
		void *prev = NULL;

		if (f->fd_allow[fam] < 0)
			continue;
		while (n < max && bpf_map_get_next_key(f->fd_allow[fam], prev, nk) == 0) {
			uint32_t plen;

			memcpy(k, nk, sizeof(k));
			prev = k;
			memcpy(&plen, k, sizeof(plen));
			memset(&out[n], 0, sizeof(out[n]));
			out[n].family = fam ? AF_INET6 : AF_INET;
			out[n].prefixlen = (uint8_t)plen;
			memcpy(out[n].addr, k + 4, fam ? 16 : 4);
			n++;
		}
	}
	return n;
}

static void work_free(void *ctx, void *p)
{
	struct zt_feeds *f = ctx;
	struct work *w = p;

	if (!w)
		return;
	if (w->res) {
		zt_feed_result_free(w->res);
		free(w->res);
	}
	for (size_t i = 0; i < w->n_sets; i++)
		if (f->o.hooks.policy_free)
			f->o.hooks.policy_free(f->o.hooks.policy_ctx, w->sets[i]);
	free(w->sets);
	free(w);
}

static int work_policy(struct zt_feeds *f, const struct zt_feed_config *fc,
		       const struct zt_feed_body *body, struct work *w, char *msg, size_t msglen)
{
	if (!f->o.hooks.policy_parse) {
		snprintf(msg, msglen, "feed=%s: format policy needs the policy store", fc->name);
		return -EOPNOTSUPP;
	}
	w->sets = calloc(body->n_parts ? body->n_parts : 1, sizeof(*w->sets));
	if (!w->sets)
		return -ENOMEM;
	for (size_t i = 0; i < body->n_parts; i++) {
		char name[ZT_FEED_NAME_MAX + 300], err[1024];
		size_t np = 0;
		int r;

		snprintf(name, sizeof(name), "feed:%s/%s", fc->name,
			 body->parts[i].name[0] ? body->parts[i].name : "content");
		r = f->o.hooks.policy_parse(f->o.hooks.policy_ctx, name, body->parts[i].data,
					    body->parts[i].len, &w->sets[w->n_sets], &np, err,
					    sizeof(err));
		if (r < 0) {
			snprintf(
				msg, msglen,
				"feed=%s: an advisory does not validate, the version is refused and the last good stays: %s",
				fc->name, err);
			return r;
		}
		w->n_sets++;
		w->n_policies += np;
	}
	return 0;
}

static int work_ioc(struct zt_feeds *f, const struct zt_feed_config *fc,
		    const struct zt_feed_body *body, struct work *w, char *msg, size_t msglen)
{
	struct zt_cidr *node = NULL, *allow = NULL;
	size_t n_node = 0, n_allow = 0;
	struct zt_feed_guard_list lists[3];
	size_t nl = 0;
	int r;

	/* One protected list for the agent: what detectors never block, no feed blocks either. */
	if (f->cfg->detection.n_protected)
		lists[nl++] =
			(struct zt_feed_guard_list){ "protected", f->cfg->detection.protected_cidrs,
						     f->cfg->detection.n_protected };
	allow = malloc(ALLOW_MAX * sizeof(*allow));
	if (allow) {
		n_allow = read_allowlist(f, allow, ALLOW_MAX);
		lists[nl++] = (struct zt_feed_guard_list){ "allowlist", allow, n_allow };
	}
	if (zt_feed_node_addrs(&node, &n_node) == 0)
		lists[nl++] = (struct zt_feed_guard_list){ "node", node, n_node };
	w->res = calloc(1, sizeof(*w->res));
	if (!w->res) {
		r = -ENOMEM;
		goto out;
	}
	r = zt_feed_load(fc, body, zt_now_unix(), lists, nl, w->res);
	if (r < 0)
		snprintf(msg, msglen, "%s", w->res->error[0] ? w->res->error : strerror(-r));
out:
	free(node);
	free(allow);
	return r;
}

/* On the fetcher's thread: parse a new version; a refusal keeps the last good. */
static int feed_work(void *ctx, unsigned int index, const struct zt_feed_config *fc,
		     const struct zt_feed_body *body, void **out, char *msg, size_t msglen)
{
	struct zt_feeds *f = ctx;
	struct work *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->t_body = zt_now_mono_ns();
	hex32(body->digest, w->sha);
	w->policy = fc->format == ZT_FEED_POLICY;
	r = w->policy ? work_policy(f, fc, body, w, msg, msglen) :
			work_ioc(f, fc, body, w, msg, msglen);
	w->parse_ns = zt_now_mono_ns() - w->t_body;
	if (r < 0) {
		work_free(f, w);
		return r;
	}
	*out = w;
	return 0;
}

/* ---- the loop's side ---- */

static void arm_step(struct zt_feeds *f, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ULL),
						.tv_nsec = (long)(ns % 1000000000ULL) } };

	if (f->step_armed)
		return;
	if (ns == STEP_AT_ONCE ? eventfd_write(f->kick_fd, 1) == 0 :
				 timerfd_settime(f->step_fd, 0, &its, NULL) == 0)
		f->step_armed = true;
}

static void on_step(void *ctx, int fd, uint32_t events)
{
	struct zt_feeds *f = ctx;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	f->step_armed = false;
	if (zt_feed_apply_step(f->apply, f->step_ns))
		arm_step(f, zt_feed_apply_waiting(f->apply) ? WAIT_GAP_NS : STEP_AT_ONCE);
}

/* Keeps the first reports of a version for feeds.show. */
static void keep_reports(struct fstat *s, const struct zt_feed_result *r)
{
	s->n_problems = 0;
	for (size_t i = 0; i < r->n_problems && s->n_problems < REPORTS_KEPT; i++)
		zt_feed_problem_format(r, &r->problems[i], s->problems[s->n_problems++],
				       sizeof(s->problems[0]));
	s->n_subtractions = 0;
	for (size_t i = 0; i < r->n_subtractions && s->n_subtractions < REPORTS_KEPT; i++) {
		const struct zt_feed_subtraction *x = &r->subtractions[i];
		char e[ZT_CIDR_STRLEN], m[ZT_CIDR_STRLEN];

		zt_cidr_format(&x->entry, e, sizeof(e));
		zt_cidr_format(&x->met, m, sizeof(m));
		snprintf(s->subtractions[s->n_subtractions++], sizeof(s->subtractions[0]),
			 "%s meets %s (%s): %s", e, m, x->list,
			 x->refused ? "removed whole (too many pieces)" :
			 x->pieces  ? "split around it" :
				      "removed");
	}
}

static void apply_policy(struct zt_feeds *f, unsigned int idx, struct work *w)
{
	const struct zt_feed_config *fc = &f->cfg->feeds[idx];
	struct fstat *s = &f->st[idx];
	char err[1024] = "", d[512], q[1100];
	int r;

	r = f->o.hooks.policy_apply(f->o.hooks.policy_ctx, fc->name, w->sets, w->n_sets, w->sha,
				    err, sizeof(err));
	/* The sets are the store's now, whatever it answered. */
	free(w->sets);
	w->sets = NULL;
	w->n_sets = 0;
	pthread_mutex_lock(&f->lock);
	if (r < 0) {
		snprintf(s->last_error, sizeof(s->last_error), "%s", err);
	} else {
		s->policies = w->n_policies;
		snprintf(s->sha_in_force, sizeof(s->sha_in_force), "%s", w->sha);
		s->versions++;
		s->last_change_unix = zt_now_unix();
		s->last_apply_s = (double)(zt_now_mono_ns() - w->t_body) / 1e9;
		s->have_content = true;
	}
	pthread_mutex_unlock(&f->lock);
	if (r < 0) {
		log_error("feed_refused", "feed=%s sha256=%s error=%s kept=last-good", fc->name,
			  w->sha, zt_log_quote(q, sizeof(q), err));
		snprintf(d, sizeof(d), "{\"feed\":\"%s\",\"sha256\":\"%s\",\"format\":\"policy\"}",
			 fc->name, w->sha);
		audit(f, "feed.refuse", fc->name, d);
		return;
	}
	log_info("feed_applied", "feed=%s format=policy sha256=%s advisories=%zu ms=%.1f", fc->name,
		 w->sha, w->n_policies, (double)(zt_now_mono_ns() - w->t_body) / 1e6);
	snprintf(d, sizeof(d),
		 "{\"feed\":\"%s\",\"sha256\":\"%s\",\"format\":\"policy\",\"advisories\":%zu}",
		 fc->name, w->sha, w->n_policies);
	audit(f, "feed.apply", fc->name, d);
}

/* Completed fetches, on the loop. */
static void feed_done(void *ctx, const struct zt_feed_done *dn)
{
	struct zt_feeds *f = ctx;
	const struct zt_feed_config *fc = &f->cfg->feeds[dn->index];
	struct fstat *s = &f->st[dn->index];
	struct work *w = dn->work;
	uint64_t now = zt_now_unix();
	char q[600];

	pthread_mutex_lock(&f->lock);
	s->last_attempt_unix = now;
	s->http_status = dn->http_status;
	s->next_mono_ns = dn->next_mono_ns;
	s->last_good_unix = dn->last_good_unix;
	if (dn->outcome == ZT_FEED_FAILED) {
		s->fetch_errors++;
		s->failures = dn->failures;
		snprintf(s->last_error, sizeof(s->last_error), "%s", dn->msg);
	} else {
		s->failures = 0;
		s->last_success_unix = dn->outcome == ZT_FEED_CACHED ? dn->last_good_unix : now;
	}
	if (w) {
		snprintf(s->sha_seen, sizeof(s->sha_seen), "%s", w->sha);
		s->bytes = dn->bytes;
		s->last_parse_s = (double)w->parse_ns / 1e9;
		if (w->res) {
			s->stats = w->res->stats;
			s->entries = w->res->n;
			keep_reports(s, w->res);
			s->applying = true;
		}
	}
	pthread_mutex_unlock(&f->lock);

	switch (dn->outcome) {
	case ZT_FEED_FAILED:
		log_warn("feed_fetch_failed",
			 "feed=%s failures=%u retry=%d http_status=%ld error=%s kept=last-good",
			 fc->name, dn->failures, dn->will_retry, dn->http_status,
			 zt_log_quote(q, sizeof(q), dn->msg));
		break;
	case ZT_FEED_UNCHANGED:
		log_debug("feed_unchanged", "feed=%s http_status=%ld", fc->name, dn->http_status);
		break;
	case ZT_FEED_NEW:
	case ZT_FEED_CACHED:
		if (!w)
			break;
		log_info(
			"feed_fetched",
			"feed=%s outcome=%s bytes=%zu sha256=%s entries=%zu bad=%llu subtracted=%llu parse_ms=%.1f",
			fc->name, dn->outcome == ZT_FEED_NEW ? "new" : "cached", dn->bytes, w->sha,
			w->res ? w->res->n : w->n_policies,
			w->res ? (unsigned long long)w->res->stats.bad : 0ULL,
			w->res ? (unsigned long long)(w->res->stats.subtracted +
						      w->res->stats.split) :
				 0ULL,
			(double)w->parse_ns / 1e6);
		if (w->policy) {
			if (f->o.hooks.policy_apply)
				apply_policy(f, dn->index, w);
			break;
		}
		{
			uint8_t digest[32] = { 0 };

			for (int i = 0; i < 32; i++)
				sscanf(w->sha + 2 * i, "%2hhx", &digest[i]);
			zt_feed_apply_submit(f->apply, dn->index, w->res, digest, w->t_body);
			w->res = NULL;
			/* The first step right away: a small feed is in before the next event. */
			arm_step(f, STEP_AT_ONCE);
		}
		break;
	}
	work_free(f, w);
}

/* A version is in the kernel (or was refused): status, log, audit. */
static void feed_applied(void *ctx, const struct zt_feed_apply_report *rep)
{
	struct zt_feeds *f = ctx;
	const struct zt_feed_config *fc = &f->cfg->feeds[rep->index];
	struct fstat *s = &f->st[rep->index];
	char sha[65], d[2400], q[600], url[1100];

	hex32(rep->digest, sha);
	zt_json_escape(fc->url, url, sizeof(url));
	pthread_mutex_lock(&f->lock);
	s->applying = false;
	if (rep->ok) {
		s->src = rep->src_entries;
		s->dst = rep->dst_entries;
		s->versions++;
		s->last_change_unix = zt_now_unix();
		s->last_apply_s = (double)rep->apply_ns / 1e9;
		s->have_content = true;
		snprintf(s->sha_in_force, sizeof(s->sha_in_force), "%s", sha);
	} else {
		snprintf(s->last_error, sizeof(s->last_error),
			 "version %.12s refused while applying: %s; the previous version stays",
			 sha, rep->msg);
	}
	pthread_mutex_unlock(&f->lock);
	if (!rep->ok) {
		log_error("feed_refused", "feed=%s sha256=%s error=%s kept=last-good", fc->name,
			  sha, zt_log_quote(q, sizeof(q), rep->msg));
		snprintf(d, sizeof(d), "{\"feed\":\"%s\",\"sha256\":\"%s\",\"error\":\"%s\"}",
			 fc->name, sha, "apply refused");
		audit(f, "feed.refuse", fc->name, d);
		/* Next time download it whole again: the saved copy is not what is in force. */
		zt_feed_fetcher_refresh(f->fetcher, (int)rep->index, true);
		return;
	}
	log_info(
		"feed_applied",
		"feed=%s sha256=%s inbound=%zu outbound=%zu added=%zu updated=%zu unchanged=%zu kept_other_source=%zu removed=%zu ioc_added=%zu ioc_updated=%zu ioc_removed=%zu ms=%.1f work_ms=%.1f steps=%u longest_step_ms=%.1f orphans_removed=%zu in_force_ms=%.1f cpu_ms=%.1f longest_step_cpu_ms=%.1f",
		fc->name, sha, rep->src_entries, rep->dst_entries, rep->src.added, rep->src.updated,
		rep->src.unchanged, rep->src.kept, rep->src.removed, rep->dst_added,
		rep->dst_updated, rep->dst_removed, (double)rep->apply_ns / 1e6,
		(double)rep->work_ns / 1e6, rep->steps, (double)rep->longest_step_ns / 1e6,
		rep->orphans, (double)rep->in_force_ns / 1e6, (double)rep->cpu_ns / 1e6,
		(double)rep->longest_step_cpu_ns / 1e6);
	snprintf(
		d, sizeof(d),
		"{\"feed\":\"%s\",\"sha256\":\"%s\",\"url\":\"%s\",\"format\":\"%s\",\"inbound\":%zu,\"outbound\":%zu,\"added\":%zu,\"removed\":%zu,\"kept_other_source\":%zu,\"ioc_added\":%zu,\"ioc_removed\":%zu,\"apply_ms\":%.1f}",
		fc->name, sha, url, zt_feed_format_name(fc->format), rep->src_entries,
		rep->dst_entries, rep->src.added, rep->src.removed, rep->src.kept, rep->dst_added,
		rep->dst_removed, (double)rep->apply_ns / 1e6);
	audit(f, "feed.apply", fc->name, d);
}

static void on_fetcher(void *ctx, int fd, uint32_t events)
{
	zt_feed_fetcher_dispatch(((struct zt_feeds *)ctx)->fetcher);
}

/* ---- API ---- */

static int feed_index(const struct zt_feeds *f, const char *name)
{
	for (unsigned int i = 0; i < f->cfg->n_feeds; i++)
		if (!strcmp(f->cfg->feeds[i].name, name))
			return (int)i;
	return -ENOENT;
}

static const char *state_of(const struct zt_feed_config *fc, const struct fstat *s, uint64_t now,
			    int64_t *age)
{
	uint64_t stale_after = 2 * fc->refresh_ns / 1000000000ULL + 5;

	*age = s->last_success_unix ? (int64_t)(now - s->last_success_unix) : -1;
	if (s->applying)
		return "applying";
	if (!s->have_content)
		return s->failures || s->fetch_errors ? "failing" : "pending";
	if (*age < 0 || (uint64_t)*age > stale_after)
		return "stale";
	if (s->failures)
		return "failing";
	return "ok";
}

static cbor_item_t *feed_summary(struct zt_feeds *f, unsigned int i, bool detail)
{
	const struct zt_feed_config *fc = &f->cfg->feeds[i];
	struct fstat s;
	cbor_item_t *m = zt_cbor_map(), *a;
	uint64_t now = zt_now_unix(), mono = zt_now_mono_ns(), next = 0;
	int64_t age;
	const char *state;

	pthread_mutex_lock(&f->lock);
	s = f->st[i];
	pthread_mutex_unlock(&f->lock);
	s.applying = s.applying && zt_feed_apply_busy(f->apply);
	state = state_of(fc, &s, now, &age);
	if (s.next_mono_ns > mono)
		next = now + (s.next_mono_ns - mono) / 1000000000ULL;
	if (!m || zt_cbor_put_str(m, "name", fc->name) || zt_cbor_put_str(m, "url", fc->url) ||
	    zt_cbor_put_str(m, "format", zt_feed_format_name(fc->format)) ||
	    zt_cbor_put_str(m, "direction",
			    fc->format == ZT_FEED_POLICY ? "" : dir_name(fc->direction)) ||
	    zt_cbor_put_str(m, "action",
			    fc->format == ZT_FEED_POLICY ? "" :
			    fc->action == ZT_FEED_BLOCK	 ? "block" :
							   "alert") ||
	    zt_cbor_put_u64(m, "refresh_s", fc->refresh_ns / 1000000000ULL) ||
	    zt_cbor_put_str(m, "state", state) || zt_cbor_put_u64(m, "entries", s.entries) ||
	    zt_cbor_put_u64(m, "inbound", s.src) || zt_cbor_put_u64(m, "outbound", s.dst) ||
	    zt_cbor_put_u64(m, "advisories", s.policies) ||
	    zt_cbor_put_u64(m, "subtracted", s.stats.subtracted + s.stats.split) ||
	    zt_cbor_put_u64(m, "bad", s.stats.bad) ||
	    zt_cbor_put_u64(m, "ignored", s.stats.ignored) ||
	    zt_cbor_put_u64(m, "expired", s.stats.expired) ||
	    zt_cbor_put_u64(m, "duplicates", s.stats.duplicates) ||
	    zt_cbor_put_u64(m, "items", s.stats.items) ||
	    zt_cbor_put_u64(m, "last_success_unix", s.last_success_unix) ||
	    zt_cbor_put_u64(m, "last_attempt_unix", s.last_attempt_unix) ||
	    zt_cbor_put_u64(m, "last_change_unix", s.last_change_unix) ||
	    zt_cbor_put_u64(m, "content_fetched_unix", s.last_good_unix) ||
	    zt_cbor_put_i64(m, "age_s", age) || zt_cbor_put_u64(m, "next_refresh_unix", next) ||
	    zt_cbor_put_str(m, "last_error", s.failures || !s.have_content ? s.last_error : "") ||
	    zt_cbor_put_u64(m, "failures", s.failures) ||
	    zt_cbor_put_u64(m, "fetch_errors", s.fetch_errors) ||
	    zt_cbor_put_u64(m, "http_status", (uint64_t)(s.http_status > 0 ? s.http_status : 0)) ||
	    zt_cbor_put_str(m, "sha256", s.sha_in_force) ||
	    zt_cbor_put_u64(m, "versions", s.versions) ||
	    zt_cbor_put_u64(m, "apply_ms", (uint64_t)(s.last_apply_s * 1000)) ||
	    zt_cbor_put_u64(m, "bytes", s.bytes) || zt_cbor_put_u64(m, "ioc_hits", s.ioc_hits))
		goto fail;
	if (!detail)
		return m;
	if (zt_cbor_put_str(m, "last_error_any", s.last_error) ||
	    zt_cbor_put_str(m, "sha256_fetched", s.sha_seen) ||
	    zt_cbor_put_u64(m, "parse_ms", (uint64_t)(s.last_parse_s * 1000)) ||
	    zt_cbor_put_u64(m, "max_entries", fc->max_entries) ||
	    zt_cbor_put_u64(m, "max_bytes", fc->max_bytes))
		goto fail;
	a = zt_cbor_array();
	for (size_t k = 0; a && k < s.n_problems; k++) {
		cbor_item_t *t = cbor_build_string(s.problems[k]);

		if (!t || zt_cbor_push(a, t) < 0) {
			if (t)
				cbor_decref(&t);
			break;
		}
	}
	if (!a || zt_cbor_put(m, "problems", a))
		goto fail;
	a = zt_cbor_array();
	for (size_t k = 0; a && k < s.n_subtractions; k++) {
		cbor_item_t *t = cbor_build_string(s.subtractions[k]);

		if (!t || zt_cbor_push(a, t) < 0) {
			if (t)
				cbor_decref(&t);
			break;
		}
	}
	if (!a || zt_cbor_put(m, "subtractions", a))
		goto fail;
	return m;
fail:
	if (m)
		cbor_decref(&m);
	return NULL;
}

static int op_feeds_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_feeds *f = ctx;
	cbor_item_t *arr = zt_cbor_array();

	*data = zt_cbor_map();
	if (!arr || !*data)
		goto nomem;
	for (unsigned int i = 0; f && i < f->cfg->n_feeds; i++) {
		cbor_item_t *m = feed_summary(f, i, false);

		if (!m || zt_cbor_push(arr, m) < 0) {
			if (m)
				cbor_decref(&m);
			goto nomem;
		}
	}
	if (zt_cbor_put(*data, "feeds", arr))
		goto nomem;
	return 0;
nomem:
	if (arr)
		cbor_decref(&arr);
	snprintf(err, errlen, "out of memory listing feeds");
	return -ENOMEM;
}

static int req_feed(struct zt_feeds *f, const cbor_item_t *req, bool empty_ok, char *err,
		    size_t errlen)
{
	char name[ZT_FEED_NAME_MAX] = "";
	int i;

	if (!f) {
		snprintf(err, errlen,
			 "no feeds are configured (feeds: in the agent's configuration)");
		return -ENOENT;
	}
	if (zt_cbor_get_str(req, "name", name, sizeof(name)) == -EINVAL) {
		snprintf(err, errlen, "field 'name': expected a feed name (text)");
		return -EINVAL;
	}
	if (!name[0]) {
		if (empty_ok)
			return -1;
		snprintf(err, errlen, "field 'name': which feed? (ztctl feeds list)");
		return -EINVAL;
	}
	i = feed_index(f, name);
	if (i < 0)
		snprintf(err, errlen,
			 "no feed named '%s' in the configuration (ztctl feeds list shows them)",
			 name);
	return i < 0 ? -ENOENT : i;
}

static int op_feeds_show(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_feeds *f = ctx;
	int i = req_feed(f, req, false, err, errlen);

	if (i < 0)
		return i;
	*data = feed_summary(f, (unsigned int)i, true);
	if (!*data) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int op_feeds_refresh(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_feeds *f = ctx;
	bool force = false;
	int i = req_feed(f, req, true, err, errlen), r;

	if (i < -1 || !f)
		return i < -1 ? i : -ENOENT;
	zt_cbor_get_bool(req, "force", &force);
	r = zt_feed_fetcher_refresh(f->fetcher, i, force);
	if (r < 0) {
		snprintf(err, errlen, "cannot schedule the refresh: %s", strerror(-r));
		return r;
	}
	log_info("feed_refresh_requested", "feed=%s force=%d via=api",
		 i < 0 ? "all" : f->cfg->feeds[i].name, force);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "name", i < 0 ? "" : f->cfg->feeds[i].name))
		return -ENOMEM;
	return 0;
}

/* block.list {"feed": NAME}: inbound owners. */
static int bl_feed_match(void *ctx, const char *feed, const struct zt_cidr *c)
{
	struct zt_feeds *f = ctx;
	int i = feed_index(f, feed);

	if (i < 0)
		return -ENOENT;
	/* That feed's version only: a binary search in each feed per entry was most of a listing. */
	return zt_feed_apply_lists_src(f->apply, (unsigned int)i, c);
}

int zt_feeds_register_api(struct zt_feeds *f, struct zt_api *api)
{
	int r;

	/* Without feeds the operations answer so (an empty list), not "unknown operation". */
	if ((r = zt_api_register(api, ZT_OP_FEEDS_LIST, op_feeds_list, f)) < 0 ||
	    (r = zt_api_register(api, ZT_OP_FEEDS_SHOW, op_feeds_show, f)) < 0 ||
	    (r = zt_api_register(api, ZT_OP_FEEDS_REFRESH, op_feeds_refresh, f)) < 0)
		return r;
	if (f && f->o.bl)
		zt_blocklist_set_feed_match(f->o.bl, bl_feed_match, f);
	return 0;
}

/* ---- IOC hits (ring-buffer thread) ---- */

static uint32_t hit_slot(uint32_t ep_id, uint32_t feed, const struct zt_cidr *c)
{
	uint32_t h = zt_fnv1a32(c->addr, 16) ^ (ep_id * 0x9E3779B1u) ^ (feed << 24) ^ c->prefixlen;

	return h % HIT_SLOTS;
}

static void on_ioc(void *ctx, const void *rec, size_t len)
{
	struct zt_feeds *f = ctx;
	const struct zt_ev_ioc *e = rec;
	unsigned int idx = e->feed_id ? e->feed_id - 1 : ZT_MAX_FEEDS;
	const char *feed = idx < f->cfg->n_feeds ? f->cfg->feeds[idx].name : "unknown";
	struct zt_cidr c = { .family = e->family == 6 ? AF_INET6 : AF_INET };
	char ioc[ZT_CIDR_STRLEN], ref[ZT_FEED_REF_MAX] = "", pod[160] = "", sa[INET6_ADDRSTRLEN],
				  da[INET6_ADDRSTRLEN], ifn[IF_NAMESIZE], rj[300], pj[340], d[1400],
				  subj[300];
	const char *proto = e->proto == 6   ? "TCP" :
			    e->proto == 17  ? "UDP" :
			    e->proto == 132 ? "SCTP" :
			    e->proto == 1   ? "ICMP" :
			    e->proto == 58  ? "ICMPv6" :
					      "other";
	struct hit_slot *h;
	uint64_t now = zt_now_mono_ns(), folded = 0;
	uint8_t plen = (uint8_t)e->prefixlen;
	bool repeat = false;

	/* The matched prefix: the address masked to the entry's length. */
	c.prefixlen = plen > (c.family == AF_INET ? 32 : 128) ? 0 : plen;
	memcpy(c.addr, e->daddr, c.family == AF_INET ? 4 : 16);
	for (unsigned int b = c.prefixlen; b < 128; b++)
		c.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
	if (idx < f->cfg->n_feeds) {
		pthread_mutex_lock(&f->lock);
		f->st[idx].ioc_hits++;
		pthread_mutex_unlock(&f->lock);
	}
	h = &f->hits[hit_slot(e->ep_id, idx, &c)];
	/* The log line and audit event once a minute per pod, IOC and feed; the incident every time. */
	if (h->t_ns && now - h->t_ns < HIT_FOLD_NS && h->ep_id == e->ep_id && h->feed == idx &&
	    !memcmp(&h->c, &c, sizeof(c))) {
		h->folded++;
		repeat = true;
	} else {
		folded = h->t_ns && h->ep_id == e->ep_id && h->feed == idx &&
					 !memcmp(&h->c, &c, sizeof(c)) ?
				 h->folded :
				 0;
		h->ep_id = e->ep_id;
		h->feed = idx;
		h->c = c;
		h->t_ns = now;
		h->folded = 0;
	}

	zt_cidr_format(&c, ioc, sizeof(ioc));
	if (idx < f->cfg->n_feeds)
		zt_feed_apply_reference(f->apply, idx, &c, ref, sizeof(ref));
	if (f->o.hooks.name_endpoint)
		f->o.hooks.name_endpoint(f->o.hooks.name_ctx, e->ep_id, pod, sizeof(pod));
	if (!pod[0])
		snprintf(pod, sizeof(pod), "endpoint:%u", e->ep_id);
	inet_ntop(c.family, e->saddr, sa, sizeof(sa));
	inet_ntop(c.family, e->daddr, da, sizeof(da));
	zt_ifname(e->ifindex, ifn, sizeof(ifn));
	zt_json_escape(ref, rj, sizeof(rj));
	zt_json_escape(pod, pj, sizeof(pj));
	if (!repeat)
		log_warn(
			"ioc_hit",
			"pod=%s ioc=%s feed=%s reference=\"%s\" action=%s dropped=%u proto=%s src=%s sport=%u dst=%s dport=%u iface=%s folded=%llu",
			pod, ioc, feed, rj, e->action == ZT_IOC_BLOCK ? "block" : "alert",
			e->dropped, proto, sa, e->sport, da, e->dport, ifn,
			(unsigned long long)folded);
	snprintf(
		d, sizeof(d),
		"{\"alert_kind\":\"ioc\",\"alert_severity\":\"%s\",\"pod\":\"%s\",\"ioc\":\"%s\",\"feed\":\"%s\",\"reference\":\"%s\",\"action\":\"%s\",\"dropped\":%s,\"protocol\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"interface\":\"%s\",\"folded\":%llu,\"verdict\":\"%s\"}",
		e->dropped ? "critical" : "warning", pj, ioc, feed, rj,
		e->action == ZT_IOC_BLOCK ? "block" : "alert", e->dropped ? "true" : "false", proto,
		sa, e->sport, da, e->dport, ifn, (unsigned long long)folded,
		e->dropped ? "denied" : "allowed");
	snprintf(subj, sizeof(subj), "%s -> %s (%s)", pod, ioc, feed);
	if (f->o.hooks.incident) {
		struct zt_feeds_incident inc = {
			.pod = pod,
			.ioc = ioc,
			.feed = feed,
			.reference = ref,
			.action = e->action == ZT_IOC_BLOCK ? "block" : "alert",
			.dropped = e->dropped,
			.protocol = proto,
			.src = sa,
			.dst = da,
			.sport = e->sport,
			.dport = e->dport,
			.interface = ifn,
			.folded = folded,
			.detail_json = d,
			.repeat = repeat,
			.family = e->family == 6 ? 6 : 4,
			.proto_nr = e->proto,
			.src_addr = e->saddr,
			.dst_addr = e->daddr,
		};

		(void)subj;
		f->o.hooks.incident(f->o.hooks.incident_ctx, &inc);
	}
}

int zt_feeds_register_events(struct zt_feeds *f, struct zt_events *ev)
{
	if (!f || !f->o.dp)
		return 0;
	return zt_events_on(ev, ZT_EV_IOC, on_ioc, f);
}

/* ---- metrics (their thread) ---- */

static void m_entries(void *ctx, struct zt_metric_sink *sk)
{
	struct zt_feeds *f = ctx;

	pthread_mutex_lock(&f->lock);
	for (unsigned int i = 0; i < f->cfg->n_feeds; i++) {
		const char *v1[] = { f->cfg->feeds[i].name, "inbound", NULL };
		const char *v2[] = { f->cfg->feeds[i].name, "outbound", NULL };
		const char *v3[] = { f->cfg->feeds[i].name, "advisories", NULL };

		if (f->cfg->feeds[i].format == ZT_FEED_POLICY) {
			zt_metric_emit_u64(sk, v3, f->st[i].policies);
			continue;
		}
		zt_metric_emit_u64(sk, v1, f->st[i].src);
		zt_metric_emit_u64(sk, v2, f->st[i].dst);
	}
	pthread_mutex_unlock(&f->lock);
}

static void m_per_feed(struct zt_feeds *f, struct zt_metric_sink *sk, int which)
{
	uint64_t now = zt_now_unix();

	pthread_mutex_lock(&f->lock);
	for (unsigned int i = 0; i < f->cfg->n_feeds; i++) {
		const char *v[] = { f->cfg->feeds[i].name, NULL };
		const struct fstat *s = &f->st[i];
		int64_t age;

		switch (which) {
		case 0:
			zt_metric_emit_u64(sk, v, s->last_success_unix);
			break;
		case 1:
			zt_metric_emit_u64(sk, v, s->fetch_errors);
			break;
		case 2:
			zt_metric_emit(sk, v, s->last_apply_s);
			break;
		default:
			zt_metric_emit_u64(
				sk, v,
				!strcmp(state_of(&f->cfg->feeds[i], s, now, &age), "stale") ? 1 :
											      0);
		}
	}
	pthread_mutex_unlock(&f->lock);
}

static void m_last_success(void *ctx, struct zt_metric_sink *sk)
{
	m_per_feed(ctx, sk, 0);
}

static void m_errors(void *ctx, struct zt_metric_sink *sk)
{
	m_per_feed(ctx, sk, 1);
}

static void m_apply(void *ctx, struct zt_metric_sink *sk)
{
	m_per_feed(ctx, sk, 2);
}

static void m_stale(void *ctx, struct zt_metric_sink *sk)
{
	m_per_feed(ctx, sk, 3);
}

static void m_ioc(void *ctx, struct zt_metric_sink *sk)
{
	struct zt_feeds *f = ctx;
	static const char *const names[ZT_IOCS_MAX] = { "block", "alert" };
	struct zt_counter *v;

	if (f->fd_ioc_stats < 0)
		return;
	v = calloc((size_t)f->ncpus, sizeof(*v));
	if (!v)
		return;
	for (uint32_t k = 0; k < ZT_IOCS_MAX; k++) {
		const char *lv[] = { names[k], NULL };
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(f->fd_ioc_stats, &k, v) == 0)
			for (int c = 0; c < f->ncpus; c++)
				sum += v[c].packets;
		zt_metric_emit_u64(sk, lv, sum);
	}
	free(v);
}

int zt_feeds_register_metrics(struct zt_feeds *f, struct zt_metrics *m)
{
	static const char *const l_feed[] = { "feed", NULL };
	static const char *const l_feed_dir[] = { "feed", "direction", NULL };
	static const char *const l_action[] = { "action", NULL };
	int r;

	if (!f)
		return 0;
	if ((r = zt_metrics_add(
		     m, "ztagent_feed_entries",
		     "Prefixes each threat-intel feed has in force, by direction (inbound: the XDP blocklist; outbound: pods' destinations), or advisories in force for format policy",
		     ZT_METRIC_GAUGE, l_feed_dir, m_entries, f, &f->m_entries)) < 0 ||
	    (r = zt_metrics_add(
		     m, "ztagent_feed_last_success_timestamp_seconds",
		     "Unix time the feed's source last delivered or confirmed its content (0: never)",
		     ZT_METRIC_GAUGE, l_feed, m_last_success, f, &f->m_last_success)) < 0 ||
	    (r = zt_metrics_add(
		     m, "ztagent_feed_fetch_errors_total",
		     "Failed fetches of the feed (transfer, HTTP status, TLS, size, or content refused by its parser)",
		     ZT_METRIC_COUNTER, l_feed, m_errors, f, &f->m_errors)) < 0 ||
	    (r = zt_metrics_add(
		     m, "ztagent_feed_apply_seconds",
		     "Seconds from the last new version's content (download done or file read) to its last kernel write",
		     ZT_METRIC_GAUGE, l_feed, m_apply, f, &f->m_apply)) < 0 ||
	    (r = zt_metrics_add(
		     m, "ztagent_feed_stale",
		     "1 when the feed's content was not confirmed by its source for more than twice its refresh interval (plus a minute), or it never had any",
		     ZT_METRIC_GAUGE, l_feed, m_stale, f, &f->m_stale)) < 0 ||
	    (r = zt_metrics_add(
		     m, "ztagent_ioc_flows_total",
		     "Pods' new flows whose destination a threat-intel feed lists, by the feed's action (block: dropped)",
		     ZT_METRIC_COUNTER, l_action, m_ioc, f, &f->m_ioc)) < 0)
		return r;
	return 0;
}

/* ---- start / stop ---- */

int zt_feeds_init(struct zt_feeds **out, const struct zt_feeds_opts *o, char *err, size_t errlen)
{
	const struct zt_config *cfg = o->cfg;
	struct zt_feed_apply_maps maps = {
		.bl = o->bl,
		.ioc_host = { -1, -1 },
		.ioc_lpm = { -1, -1 },
		.ioc_state = -1,
	};
	struct zt_feed_fetcher_opts fo = { 0 };
	struct zt_feeds *f;
	int r;

	*out = NULL;
	if (!cfg->n_feeds)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = *o;
	f->cfg = cfg;
	f->step_fd = -1;
	f->kick_fd = -1;
	f->step_ns = o->step_ns ? o->step_ns : STEP_NS_DEFAULT;
	f->fd_allow[0] = f->fd_allow[1] = f->fd_ioc_stats = -1;
	f->ncpus = libbpf_num_possible_cpus();
	if (f->ncpus < 1)
		f->ncpus = 1;
	pthread_mutex_init(&f->lock, NULL);
	if (o->dp && o->dp->tc) {
		maps.ioc_host[0] = bpf_map__fd(o->dp->tc->maps.ioc_host_v4);
		maps.ioc_host[1] = bpf_map__fd(o->dp->tc->maps.ioc_host_v6);
		maps.ioc_lpm[0] = bpf_map__fd(o->dp->tc->maps.ioc_lpm_v4);
		maps.ioc_lpm[1] = bpf_map__fd(o->dp->tc->maps.ioc_lpm_v6);
		maps.ioc_state = bpf_map__fd(o->dp->tc->maps.ioc_state);
		f->fd_ioc_stats = bpf_map__fd(o->dp->tc->maps.ioc_stats);
	}
	if (o->dp && o->dp->xdp) {
		f->fd_allow[0] = bpf_map__fd(o->dp->xdp->maps.allowlist_v4);
		f->fd_allow[1] = bpf_map__fd(o->dp->xdp->maps.allowlist_v6);
	}
	r = zt_feed_apply_init(&f->apply, &maps, cfg->feeds, cfg->n_feeds, feed_applied, f);
	if (r < 0) {
		snprintf(err, errlen, "feeds: cannot set up the applier: %s", strerror(-r));
		goto fail;
	}
	f->step_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (f->step_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "feeds: cannot create a timer: %s", strerror(-r));
		goto fail;
	}
	r = zt_loop_add(o->loop, f->step_fd, EPOLLIN, on_step, f);
	if (r < 0) {
		snprintf(err, errlen, "feeds: cannot watch the timer: %s", strerror(-r));
		goto fail;
	}
	f->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->kick_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "feeds: cannot create an eventfd: %s", strerror(-r));
		goto fail;
	}
	r = zt_loop_add(o->loop, f->kick_fd, EPOLLIN, on_step, f);
	if (r < 0) {
		snprintf(err, errlen, "feeds: cannot watch the eventfd: %s", strerror(-r));
		goto fail;
	}
	fo.feeds = cfg->feeds;
	fo.n_feeds = cfg->n_feeds;
	fo.state_dir = cfg->state_dir;
	fo.work = feed_work;
	fo.work_ctx = f;
	fo.work_free = work_free;
	fo.done = feed_done;
	fo.done_ctx = f;
	r = zt_feed_fetcher_init(&f->fetcher, &fo, err, errlen);
	if (r < 0)
		goto fail;
	r = zt_loop_add(o->loop, zt_feed_fetcher_fd(f->fetcher), EPOLLIN, on_fetcher, f);
	if (r < 0) {
		snprintf(err, errlen, "feeds: cannot watch the fetcher: %s", strerror(-r));
		goto fail;
	}
	log_info("feeds_started", "feeds=%u state_dir=%s/feeds", cfg->n_feeds, cfg->state_dir);
	*out = f;
	return 0;
fail:
	zt_feeds_stop(f);
	return r;
}

void zt_feeds_stop(struct zt_feeds *f)
{
	if (!f)
		return;
	if (f->fetcher) {
		zt_loop_del(f->o.loop, zt_feed_fetcher_fd(f->fetcher));
		zt_feed_fetcher_stop(f->fetcher);
	}
	if (f->step_fd >= 0) {
		zt_loop_del(f->o.loop, f->step_fd);
		close(f->step_fd);
	}
	if (f->kick_fd >= 0) {
		zt_loop_del(f->o.loop, f->kick_fd);
		close(f->kick_fd);
	}
	zt_feed_apply_stop(f->apply);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int zt_feeds_versions_json(struct zt_feeds *f, char *buf, size_t n)
{
	size_t o = 0;
	int w;

	w = snprintf(buf, n, "{");
	o = (size_t)w;
	for (unsigned int i = 0; f && i < f->cfg->n_feeds && o < n; i++) {
		char name[2 * ZT_FEED_NAME_MAX + 8];

		zt_json_escape(f->cfg->feeds[i].name, name, sizeof(name));
		pthread_mutex_lock(&f->lock);
		w = snprintf(buf + o, n - o, "%s\"%s\":{\"sha256\":\"%s\",\"applied_unix\":%llu}",
			     i ? "," : "", name, f->st[i].sha_in_force,
			     (unsigned long long)f->st[i].last_change_unix);
		pthread_mutex_unlock(&f->lock);
		o += (size_t)w;
	}
	if (o + 2 > n)
		return -ENOSPC;
	buf[o++] = '}';
	buf[o] = '\0';
	return 0;
}
