// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "seg/endpoint.h"
#include "agent/log.h"
#include "seg/polcompile.h"
#include "seg/policy.h"
#include "seg/policy_eval.h"
#include "records/auditq.h"
#include "records/db.h"
#include "records/flowexp.h"
#include "seg/cnispool.h"
#include "seg/seg_int.h"
#include "tc_endpoint.skel.h"
#include "agent/util.h"

void pset_put(struct pset *ps)
{
	if (!ps || --ps->refs)
		return;
	if (ps->parts) {
		for (size_t i = 0; i < ps->n_parts; i++)
			pset_put(ps->parts[i]);
		free(ps->parts);
		/* Borrowed policies: only the array and the set are the union's. */
		free(ps->set->policies);
		free(ps->set);
	} else {
		zt_policy_set_free(ps->set);
	}
	free(ps);
}

void seg_audit(struct zt_seg *s, const char *kind, const char *subject, const char *detail)
{
	if (s->audit)
		s->audit(s->audit_ctx, kind, subject, detail);
}

/* An audit event whose detail is {"KEY":"TEXT"}. */
void seg_audit_text(struct zt_seg *s, const char *kind, const char *subject, const char *key,
		    const char *text)
{
	char esc[4200], d[4300];

	if (!s->audit)
		return;
	zt_json_escape(text, esc, sizeof(esc));
	snprintf(d, sizeof(d), "{\"%s\":\"%s\"}", key, esc);
	s->audit(s->audit_ctx, kind, subject, d);
}

/* ---- host addresses ---- */

static size_t read_host_addrs(struct zt_ep_addr *out, size_t max)
{
	struct ifaddrs *ifa, *i;
	size_t n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && n < max; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		if (i->ifa_addr->sa_family == AF_INET) {
			out[n].family = AF_INET;
			memcpy(out[n].addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			out[n].family = AF_INET6;
			memcpy(out[n].addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		n++;
	}
	freeifaddrs(ifa);
	return n;
}

/* ---- compile and apply ---- */

static void gens_push(struct zt_seg *s, uint32_t gen, struct pset *ps, struct zt_compiled *c)
{
	struct gen_rec old;

	pthread_mutex_lock(&s->lock);
	old = s->gens[GENS_KEPT - 1];
	memmove(&s->gens[1], &s->gens[0], (GENS_KEPT - 1) * sizeof(s->gens[0]));
	s->gens[0] = (struct gen_rec){ .gen = gen, .ps = ps, .c = c };
	ps->refs++;
	s->st.gen = gen;
	s->st.policies = ps->set->n;
	s->st.endpoints = s->eps.n;
	s->st.applies++;
	pthread_mutex_unlock(&s->lock);
	zt_compiled_free(old.c);
	pset_put(old.ps);
}

/*
 * Compiles ps with the current endpoints and host addresses and publishes
 * it. On failure nothing in the kernel changed.
 */
int publish(struct zt_seg *s, struct pset *ps, const char *why, char *err, size_t errlen)
{
	struct zt_polc_endpoint *ce;
	struct zt_compiled *c = NULL;
	uint64_t t0 = zt_now_mono_ns(), dt;
	uint32_t gen = 0;
	size_t n_ce;
	bool pending;
	int r;

	ce = calloc(2 * s->eps.n + s->n_remote + 1, sizeof(*ce));
	if (!ce) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n_ce = zt_ep_table_polc(&s->eps, ce, &pending);
	n_ce += seg_remote_polc(s, ce + n_ce);
	{
		struct zt_polc_input in = {
			.set = ps->set,
			.def = s->cfg->policy.default_deny ? ZT_POL_DEFAULT_DENY :
							     ZT_POL_DEFAULT_ALLOW,
			.eps = ce,
			.n_eps = n_ce,
			.host_addrs = s->host,
			.n_host_addrs = s->n_host,
			.pending_isolated =
				pending && s->cfg->kubernetes.pending_posture == ZT_PENDING_DENY,
		};

		r = zt_polc_compile(&in, &c, err, errlen);
	}
	free(ce);
	if (r < 0)
		return r;
	r = zt_polapply_apply(s->applier, c, &gen, err, errlen);
	if (r < 0) {
		zt_compiled_free(c);
		return r;
	}
	dt = zt_now_mono_ns() - t0;
	gens_push(s, gen, ps, c);
	/* zt_seg_get_stats reads st under the lock, from the API and metrics threads. */
	pthread_mutex_lock(&s->lock);
	s->st.last_apply_ns = dt;
	pthread_mutex_unlock(&s->lock);
	if (s->observe)
		s->observe(s->observe_ctx, (double)dt / 1e9);
	/* since_change_ms: from the first file event to the new generation in
	 * force (debounce, parse, compile and apply), what an operator waits. */
	log_info(
		"policy_applied",
		"gen=%u why=%s policies=%zu endpoints=%zu entries=%zu ipcache=%zu sha256=%s ms=%.3f since_change_ms=%.3f",
		gen, why, ps->set->n, s->eps.n, c->n_pol, c->n_ipc, ps->set->sha256,
		(double)dt / 1e6,
		s->change_ns ? (double)(zt_now_mono_ns() - s->change_ns) / 1e6 : 0.0);
	return 0;
}

struct pset *pset_new(struct zt_policy_set *set)
{
	struct pset *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->set = set;
	ps->refs = 1;
	return ps;
}

static bool same_policy(const struct zt_policy *a, const struct zt_policy *b)
{
	return a->kind == b->kind && !strcmp(a->name, b->name) &&
	       !strcmp(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "");
}

/*
 * One set of the policies of parts[0..n) (NULL entries skipped), borrowed:
 * it holds a reference on each part. A policy that an earlier part already
 * names (kind, namespace, name) refuses the union: two sources must not
 * both define it.
 */
static struct pset *pset_union(struct pset *const *parts, size_t n, char *err, size_t errlen)
{
	struct zt_policy_set *set = calloc(1, sizeof(*set));
	struct pset *ps = NULL;
	size_t total = 0, k = 0, m = 0;
	char *shas = NULL;

	for (size_t i = 0; i < n; i++)
		total += parts[i] ? parts[i]->set->n : 0;
	if (!set || !(set->policies = calloc(total ? total : 1, sizeof(*set->policies))) ||
	    !(shas = calloc(n ? n : 1, 65)))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const struct zt_policy_set *p = parts[i] ? parts[i]->set : NULL;

		if (!p)
			continue;
		for (size_t j = 0; j < p->n; j++) {
			/* Sources against each other (each part checked its own already). */
			for (size_t q = 0; i && q < k; q++)
				if (same_policy(&set->policies[q], &p->policies[j])) {
					zt_seterr(
						err, errlen,
						"%s %s/%s from %s is also defined in %s; rename one of them",
						zt_pol_kind_name(p->policies[j].kind),
						p->policies[j].namespace ?
							p->policies[j].namespace :
							"",
						p->policies[j].name, p->policies[j].file,
						set->policies[q].file);
					free(set->policies);
					free(set);
					free(shas);
					return NULL;
				}
			set->policies[k++] = p->policies[j];
		}
		set->n_files += p->n_files;
		memcpy(shas + 64 * m++, p->sha256, 64);
	}
	set->n = k;
	zt_sha256_hex(shas, 64 * m, set->sha256);
	free(shas);
	shas = NULL;
	ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->parts = calloc(n ? n : 1, sizeof(*ps->parts))))
		goto nomem;
	ps->set = set;
	ps->refs = 1;
	for (size_t i = 0; i < n; i++)
		if (parts[i]) {
			parts[i]->refs++;
			ps->parts[ps->n_parts++] = parts[i];
		}
	return ps;
nomem:
	if (ps)
		free(ps);
	if (set)
		free(set->policies);
	free(set);
	free(shas);
	zt_seterr(err, errlen, "out of memory");
	return NULL;
}

/*
 * The store's union: dir and every feed's advisories, feed `over` (index,
 * or n_fpol for a new one; -1: none) taking `over_ps` instead. With no
 * advisories it is dir itself.
 */
struct pset *store_union(struct zt_seg *s, struct pset *dir, long over, struct pset *over_ps,
			 char *err, size_t errlen)
{
	struct pset *parts[ZT_ARRAY_SIZE(s->fpol) + 2];
	size_t n = 0, feeds = 0;

	parts[n++] = dir;
	for (size_t i = 0; i < s->n_fpol || (over >= 0 && i == (size_t)over); i++) {
		struct pset *p = (long)i == over ? over_ps : s->fpol[i].ps;

		parts[n++] = p;
		feeds += p != NULL;
	}
	/* The generated policies (seg_gen.c) come last: a name clash blames them. */
	parts[n++] = s->gen;
	feeds += s->gen != NULL;
	if (!feeds && dir) {
		dir->refs++;
		return dir;
	}
	return pset_union(parts, n, err, errlen);
}

/* Reads policy.dir; on success the new set is in force. */
int seg_reload(struct zt_seg *s, const char *why)
{
	struct zt_policy_set *set = NULL;
	struct pset *ps, *dir;
	char err[1024], q[1200];
	int r;

	r = zt_policy_parse_dir(s->cfg->policy.dir, &set, err, sizeof(err));
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		s->st.rejects++;
		pthread_mutex_unlock(&s->lock);
		snprintf(s->last_reject, sizeof(s->last_reject), "%s", err);
		log_error("policy_rejected", "dir=%s error=%s kept_gen=%llu", s->cfg->policy.dir,
			  zt_log_quote(q, sizeof(q), err), (unsigned long long)s->st.gen);
		seg_audit_text(s, "policy.reject", s->cfg->policy.dir, "error", err);
		return r;
	}
	if (s->dir && !strcmp(s->dir->set->sha256, set->sha256) && strcmp(why, "start")) {
		zt_policy_set_free(set);
		return 0; /* same bytes: nothing to do */
	}
	dir = pset_new(set);
	if (!dir) {
		zt_policy_set_free(set);
		return -ENOMEM;
	}
	ps = store_union(s, dir, -1, NULL, err, sizeof(err));
	if (!ps) {
		pset_put(dir);
		snprintf(s->last_reject, sizeof(s->last_reject), "%s", err);
		log_error("policy_rejected", "dir=%s error=%s kept_gen=%llu", s->cfg->policy.dir,
			  zt_log_quote(q, sizeof(q), err), (unsigned long long)s->st.gen);
		seg_audit_text(s, "policy.reject", s->cfg->policy.dir, "error", err);
		return -EINVAL;
	}
	r = publish(s, ps, why, err, sizeof(err));
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		s->st.rejects++;
		pthread_mutex_unlock(&s->lock);
		snprintf(s->last_reject, sizeof(s->last_reject), "%s", err);
		log_error("policy_apply_failed", "dir=%s error=%s kept_gen=%llu",
			  s->cfg->policy.dir, zt_log_quote(q, sizeof(q), err),
			  (unsigned long long)s->st.gen);
		seg_audit_text(s, "policy.reject", s->cfg->policy.dir, "error", err);
		pset_put(ps);
		pset_put(dir);
		return r;
	}
	s->last_reject[0] = '\0';
	pset_put(s->cur);
	s->cur = ps;
	pset_put(s->dir);
	s->dir = dir;
	{
		char d[256];

		snprintf(d, sizeof(d), "{\"sha256\":\"%s\",\"policies\":%zu,\"gen\":%llu}",
			 set->sha256, set->n, (unsigned long long)s->st.gen);
		seg_audit(s, "policy.apply", s->cfg->policy.dir, d);
	}
	return 0;
}

static bool names_policy(const struct pset *ps, const struct zt_policy *p)
{
	for (size_t i = 0; ps && i < ps->set->n; i++)
		if (same_policy(&ps->set->policies[i], p))
			return true;
	return false;
}

static void audit_advisory(struct zt_seg *s, const char *kind, const char *feed, const char *sha,
			   const struct zt_policy *p)
{
	char d[1024], f[600], n[300];

	zt_json_escape(p->file, f, sizeof(f));
	zt_json_escape(p->namespace ? p->namespace : "", n, sizeof(n));
	snprintf(
		d, sizeof(d),
		"{\"feed\":\"%s\",\"sha256\":\"%s\",\"advisory\":\"%s\",\"kind\":\"%s\",\"namespace\":\"%s\",\"source\":\"%s\",\"gen\":%llu}",
		feed, sha, p->name, zt_pol_kind_name(p->kind), n, f, (unsigned long long)s->st.gen);
	seg_audit(s, kind, p->name, d);
}

/* Does ps hold a part (an object, for Kubernetes) with these bytes? */
static bool has_part_sha(const struct pset *ps, const char *sha)
{
	if (!ps)
		return false;
	if (!ps->n_parts)
		return !strcmp(ps->set->sha256, sha);
	for (size_t i = 0; i < ps->n_parts; i++)
		if (!strcmp(ps->parts[i]->set->sha256, sha))
			return true;
	return false;
}

/* Kubernetes objects are audited when they are new or their content changed, not at every apply. */
static void audit_k8s_changed(struct zt_seg *s, const char *src, const char *sha256,
			      const struct pset *old, const struct pset *fps)
{
	size_t n = fps ? (fps->n_parts ? fps->n_parts : 1) : 0;

	for (size_t i = 0; i < n; i++) {
		const struct pset *p = fps->n_parts ? fps->parts[i] : fps;

		if (has_part_sha(old, p->set->sha256))
			continue;
		for (size_t k = 0; k < p->set->n; k++)
			audit_advisory(s, "policy.k8s.apply", src, sha256, &p->set->policies[k]);
	}
}

/*
 * One source of policies besides policy.dir: a feed's advisories, or the
 * Kubernetes objects (k8s: slot ZT_SEG_K8S_SOURCE, audited as
 * policy.k8s.apply / policy.k8s.withdraw).
 */
static int set_source_policies(struct zt_seg *s, const char *feed, bool k8s,
			       struct zt_policy_set **sets, size_t n, const char *sha256, char *err,
			       size_t errlen)
{
	struct pset **parts = calloc(n ? n : 1, sizeof(*parts)), *fps = NULL, *u = NULL, *old;
	size_t i, np = 0;
	char why[ZT_FEED_NAME_MAX + 8] = "", q[1200];
	int r = 0;

	for (i = 0; i < s->n_fpol && strcmp(s->fpol[i].name, feed); i++)
		;
	if (i == s->n_fpol && (s->n_fpol == ZT_ARRAY_SIZE(s->fpol) || !n)) {
		for (size_t k = 0; k < n; k++)
			zt_policy_set_free(sets[k]);
		free(parts);
		return n ? -ENOSPC : 0;
	}
	for (size_t k = 0; k < n; k++) {
		struct pset *p = parts ? pset_new(sets[k]) : NULL;

		if (!p) {
			zt_policy_set_free(sets[k]);
			r = -ENOMEM;
			continue;
		}
		parts[np++] = p;
	}
	if (r == 0 && np == 1) {
		fps = parts[0];
		parts[0]->refs++;
	} else if (r == 0 && np > 1) {
		fps = pset_union(parts, np, err, errlen);
		if (!fps)
			r = -EINVAL;
	}
	for (size_t k = 0; k < np; k++)
		pset_put(parts[k]);
	free(parts);
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory");
	if (r < 0)
		goto refused;
	if (!s->dir) {
		/* No valid policy.dir yet: publishing now would drop what the kernel enforces. */
		log_warn("advisories_waiting", "feed=%s why=\"policy.dir has not loaded yet\"",
			 feed);
		goto keep;
	}
	u = store_union(s, s->dir, (long)i, fps, err, errlen);
	if (!u) {
		r = -EINVAL;
		goto refused;
	}
	snprintf(why, sizeof(why), k8s ? "%s" : "feed:%s", feed);
	r = publish(s, u, why, err, errlen);
	if (r < 0) {
		pset_put(u);
		goto refused;
	}
	pset_put(s->cur);
	s->cur = u;
keep:
	old = i < s->n_fpol ? s->fpol[i].ps : NULL;
	if (k8s)
		audit_k8s_changed(s, feed, sha256, old, fps);
	for (size_t k = 0; !k8s && fps && k < fps->set->n; k++)
		audit_advisory(s, "policy.advisory.apply", feed, sha256, &fps->set->policies[k]);
	for (size_t k = 0; old && k < old->set->n; k++)
		if (!names_policy(fps, &old->set->policies[k]))
			audit_advisory(s, k8s ? "policy.k8s.withdraw" : "policy.advisory.withdraw",
				       feed, sha256, &old->set->policies[k]);
	if (i == s->n_fpol) {
		snprintf(s->fpol[i].name, sizeof(s->fpol[i].name), "%s", feed);
		s->n_fpol++;
	}
	pset_put(s->fpol[i].ps);
	s->fpol[i].ps = fps;
	snprintf(s->fpol[i].sha, sizeof(s->fpol[i].sha), "%s", sha256);
	log_info(k8s ? "k8s_policies_applied" : "advisories_applied",
		 k8s ? "source=%s sha256=%s policies=%zu gen=%llu" :
		       "feed=%s sha256=%s advisories=%zu gen=%llu",
		 feed, sha256, fps ? fps->set->n : 0, (unsigned long long)s->st.gen);
	return 0;
refused:
	pset_put(fps);
	pthread_mutex_lock(&s->lock);
	s->st.rejects++;
	pthread_mutex_unlock(&s->lock);
	log_error(k8s ? "k8s_policies_rejected" : "advisories_rejected",
		  k8s ? "source=%s sha256=%s error=%s kept=previous" :
			"feed=%s sha256=%s error=%s kept=previous",
		  feed, sha256, zt_log_quote(q, sizeof(q), err));
	seg_audit_text(s, "policy.reject", why[0] ? why : feed, "error", err);
	return r;
}

int zt_seg_set_feed_policies(struct zt_seg *s, const char *feed, struct zt_policy_set **sets,
			     size_t n, const char *sha256, char *err, size_t errlen)
{
	return set_source_policies(s, feed, false, sets, n, sha256, err, errlen);
}

int zt_seg_set_k8s_policies(struct zt_seg *s, struct zt_policy_set **sets, size_t n,
			    const char *sha256, char *err, size_t errlen)
{
	return set_source_policies(s, ZT_SEG_K8S_SOURCE, true, sets, n, sha256, err, errlen);
}

/* Recompiles the set in force after an endpoint or host address change. */
static int republish(struct zt_seg *s, const char *why, char *err, size_t errlen)
{
	if (!s->cur) {
		zt_seterr(
			err, errlen,
			"no valid policy is loaded from %s yet (last error: %s); fix the files first",
			s->cfg->policy.dir, s->last_reject[0] ? s->last_reject : "none");
		return -EAGAIN;
	}
	return publish(s, s->cur, why, err, errlen);
}

int seg_republish(struct zt_seg *s, const char *why, char *err, size_t errlen)
{
	return republish(s, why, err, errlen);
}

int zt_seg_reevaluate(struct zt_seg *s, const char *why, char *err, size_t errlen)
{
	if (!s)
		return -EINVAL;
	return republish(s, why, err, errlen);
}

/* ---- endpoints ---- */

/* Only label identities are counted; ZT_ID_PENDING is nobody's to free. */
static void ident_put(struct zt_seg *s, uint32_t id)
{
	if (id >= ZT_ID_FIRST_LABELS)
		zt_identities_put(s->ids, id);
}

static int save_state(struct zt_seg *s)
{
	char err[512];
	int r = zt_ep_table_save(&s->eps, s->state_path, err, sizeof(err));

	if (r < 0)
		log_error("endpoint_state_save_failed", "error=\"%s\"", err);
	return r;
}

static int ep_map_put(struct zt_seg *s, const struct zt_ep *ep)
{
	struct zt_endpoint_info info = { .ep_id = ep->id, .identity = ep->identity };
	__u32 key = (__u32)ep->ifindex;

	return bpf_map_update_elem(bpf_map__fd(s->dp->tc->maps.endpoints), &key, &info, BPF_ANY) ?
		       -errno :
		       0;
}

/* Whether the endpoints map holds an entry for ep's interface that says something else. */
static bool ep_map_differs(struct zt_seg *s, const struct zt_ep *ep)
{
	struct zt_endpoint_info was;
	__u32 key = (__u32)ep->ifindex;

	if (bpf_map_lookup_elem(bpf_map__fd(s->dp->tc->maps.endpoints), &key, &was) < 0)
		return false;
	return was.ep_id != ep->id || was.identity != ep->identity;
}

static void ep_map_del(struct zt_seg *s, int ifindex)
{
	__u32 key = (__u32)ifindex;

	bpf_map_delete_elem(bpf_map__fd(s->dp->tc->maps.endpoints), &key);
}

static void table_lock_remove(struct zt_seg *s, struct zt_ep *ep)
{
	pthread_mutex_lock(&s->lock);
	zt_ep_table_remove(&s->eps, ep->id);
	s->st.endpoints = s->eps.n;
	pthread_mutex_unlock(&s->lock);
}

static int table_lock_add(struct zt_seg *s, struct zt_ep *ep)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = zt_ep_table_add(&s->eps, ep);
	s->st.endpoints = s->eps.n;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/*
 * Registration order keeps the endpoint enforced from its first packet: the
 * policy generation that knows it is published, then its endpoints entry,
 * then the programs.
 */
int seg_endpoint_add(struct zt_seg *s, struct zt_ep *ep, char *err, size_t errlen)
{
	char e2[512];
	int r;

	r = zt_ep_table_check(&s->eps, ep, err, errlen);
	if (r < 0)
		return r;
	if (ep->pending)
		ep->identity = ZT_ID_PENDING;
	else
		r = zt_identities_get(s->ids, &ep->ev.ls, 0, &ep->identity);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot allocate an identity: %s", strerror(-r));
		return r;
	}
	r = table_lock_add(s, ep);
	if (r < 0) {
		ident_put(s, ep->identity);
		zt_seterr(err, errlen, "out of memory");
		return r;
	}
	r = republish(s, "endpoint-add", err, errlen);
	if (r < 0)
		goto undo_table;
	r = ep_map_put(s, ep);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot write the endpoints map: %s", strerror(-r));
		goto undo_policy;
	}
	r = zt_datapath_tc_attach(s->dp, ep->ifindex, err, errlen);
	if (r < 0)
		goto undo_map;
	save_state(s);
	seg_gen_refresh(s, "endpoint-add");
	return 0;
undo_map:
	zt_datapath_tc_detach(ep->ifindex, e2, sizeof(e2));
	ep_map_del(s, ep->ifindex);
undo_policy:
	table_lock_remove(s, ep);
	republish(s, "endpoint-add-undo", e2, sizeof(e2));
	ident_put(s, ep->identity);
	return r;
undo_table:
	table_lock_remove(s, ep);
	ident_put(s, ep->identity);
	return r;
}

void seg_endpoint_remove(struct zt_seg *s, struct zt_ep *ep, const char *why)
{
	char err[512], addrs[ZT_EP_MAX_ADDRS * 48];

	zt_ep_addrs_format(ep, addrs, sizeof(addrs));
	if (zt_datapath_tc_detach(ep->ifindex, err, sizeof(err)) < 0)
		log_warn("endpoint_detach_failed", "endpoint=%s error=\"%s\"", ep->qname, err);
	ep_map_del(s, ep->ifindex);
	table_lock_remove(s, ep);
	if (republish(s, "endpoint-del", err, sizeof(err)) < 0)
		log_warn("endpoint_del_policy", "endpoint=%s error=\"%s\"", ep->qname, err);
	ident_put(s, ep->identity);
	log_info("endpoint_removed", "endpoint=%s ifname=%s ifindex=%d ip=%s why=%s", ep->qname,
		 ep->ifname, ep->ifindex, addrs, why);
	seg_audit_text(s, "endpoint.del", ep->qname, "why", why);
	seg_ann_forget_pod(s, ep->ns, ep->name);
	/* The event thread may still name it from an older record: names are copied under lock. */
	zt_ep_free(ep);
	save_state(s);
	seg_gen_refresh(s, "endpoint-del");
}

int seg_endpoint_set_meta(struct zt_seg *s, struct zt_ep *ep, struct zt_ep_meta *m, const char *why,
			  char *err, size_t errlen)
{
	struct zt_ep_relabel rl;
	char labels[8192], q[8400], e2[512];
	int r;

	if (!ep->pending && zt_ep_meta_same(ep, m)) {
		zt_ep_meta_free(m);
		return 0;
	}
	r = zt_ep_relabel_begin(ep, s->ids, m, &rl, err, errlen);
	if (r < 0) {
		zt_ep_meta_free(m);
		return r;
	}
	/* The generation that knows the new identity, still holding the old one's entries. */
	r = republish(s, why, err, errlen);
	if (r < 0) {
		zt_ep_relabel_undo(ep, s->ids, &rl);
		return r;
	}
	if (ep->identity != rl.old_id) {
		r = ep_map_put(s, ep);
		if (r < 0) {
			zt_seterr(err, errlen, "cannot write the endpoints map: %s", strerror(-r));
			zt_ep_relabel_undo(ep, s->ids, &rl);
			if (republish(s, "endpoint-meta-undo", e2, sizeof(e2)) < 0)
				log_warn("endpoint_meta_undo", "endpoint=%s error=\"%s\"",
					 ep->qname, e2);
			return r;
		}
	}
	zt_ep_relabel_commit(ep, s->ids, &rl);
	/*
	 * Once more, now that the endpoints map hands the interface its new
	 * identity: a flow is evaluated again only when a generation moves, and
	 * a packet that met the first one before the map write took the old
	 * identity (a busy flow nearly always has one there). This generation
	 * also drops the old identity's entries.
	 */
	if (ep->identity != rl.old_id && republish(s, why, e2, sizeof(e2)) < 0)
		log_warn(
			"endpoint_meta_republish",
			"endpoint=%s error=\"%s\" consequence=\"flows evaluated meanwhile keep the old identity's verdict until the next generation\"",
			ep->qname, e2);
	save_state(s);
	zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels));
	log_info("endpoint_labels",
		 "endpoint=%s identity=%u prev_identity=%u was_pending=%s labels=%s why=%s",
		 ep->qname, ep->identity, rl.old_id, rl.was_pending ? "true" : "false",
		 zt_log_quote(q, sizeof(q), labels), why);
	{
		char el[2100], d[2400];

		zt_json_escape(labels, el, sizeof(el));
		snprintf(
			d, sizeof(d),
			"{\"identity\":%u,\"prev_identity\":%u,\"was_pending\":%s,\"labels\":\"%s\",\"why\":\"%s\"}",
			ep->identity, rl.old_id, rl.was_pending ? "true" : "false", el, why);
		seg_audit(s, "endpoint.labels", ep->qname, d);
	}
	seg_gen_refresh(s, why);
	return 0;
}

int zt_seg_endpoint_set_pod_meta(struct zt_seg *s, const struct zt_pod_meta *m, char *err,
				 size_t errlen)
{
	struct zt_ep_meta meta;
	struct zt_ep *ep;
	int r;

	if (!m || !m->ns || !m->name) {
		zt_seterr(err, errlen, "pod metadata without namespace or name");
		return -EINVAL;
	}
	ep = zt_ep_table_by_qname(&s->eps, m->ns, m->name);
	if (!ep) {
		zt_seterr(err, errlen, "no endpoint %s/%s on this node", m->ns, m->name);
		return -ENOENT;
	}
	if (m->uid && *m->uid && *ep->pod_uid && strcmp(m->uid, ep->pod_uid)) {
		zt_seterr(err, errlen, "endpoint %s belongs to pod UID %s, not %s", ep->qname,
			  ep->pod_uid, m->uid);
		return -ENOENT;
	}
	r = zt_ep_meta_from_pod(ep->ns, m, &meta, err, errlen);
	if (r < 0)
		return r;
	seg_ann_from_pod(s, m);
	r = seg_endpoint_set_meta(s, ep, &meta, "kubernetes", err, errlen);
	if (r == 0)
		seg_gen_refresh(s, "kubernetes");
	return r;
}

void zt_seg_set_pod_lookup(struct zt_seg *s, zt_seg_pod_lookup_fn fn, void *ctx)
{
	s->pod_lookup = fn;
	s->pod_lookup_ctx = ctx;
}

/* ---- CNI DELs queued while the daemon was down ---- */

#define SPOOL_TMP_MAX_AGE_S 600 /* a plugin writing a record takes milliseconds */

static bool has_suffix(const char *name, const char *suf)
{
	size_t n = strlen(name), k = strlen(suf);

	return n > k && !strcmp(name + n - k, suf);
}

void seg_cni_spool_apply(struct zt_seg *s)
{
	DIR *d = opendir(s->cni_spool_dir);
	struct dirent *de;

	if (!d) {
		if (errno != ENOENT)
			log_warn("cni_spool_unreadable", "dir=%s error=\"%s\"", s->cni_spool_dir,
				 strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		char path[sizeof(s->cni_spool_dir) + 300], err[4400], q[4600];
		struct zt_cni_del del;
		struct zt_ep *ep;
		struct stat st;

		if (de->d_name[0] == '.' ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", s->cni_spool_dir, de->d_name) >=
			    sizeof(path))
			continue;
		if (!has_suffix(de->d_name, ZT_CNI_SPOOL_SUFFIX)) {
			/* A plugin's temporary file, left by a crash mid-write. */
			if (strstr(de->d_name, ZT_CNI_SPOOL_SUFFIX ".tmp.") &&
			    lstat(path, &st) == 0 &&
			    (uint64_t)st.st_mtime + SPOOL_TMP_MAX_AGE_S < zt_now_unix())
				unlink(path);
			continue;
		}
		if (zt_cni_spool_read(path, &del, err, sizeof(err)) < 0) {
			log_error("cni_del_unreadable", "file=%s error=%s action=removed", path,
				  zt_log_quote(q, sizeof(q), err));
			unlink(path);
			continue;
		}
		ep = zt_ep_table_by_container(&s->eps, del.container_id, del.ifname);
		log_info(
			"cni_del_applied",
			"container_id=%s ifname=%s pod=%s/%s pod_uid=%s queued_unix=%llu endpoint=%s",
			del.container_id, del.ifname, del.pod_ns[0] ? del.pod_ns : "-",
			del.pod_name[0] ? del.pod_name : "-", del.pod_uid[0] ? del.pod_uid : "-",
			(unsigned long long)del.queued_unix, ep ? ep->qname : "none");
		if (ep)
			seg_endpoint_remove(s, ep, "cni-del-queued");
		unlink(path);
	}
	closedir(d);
}

/* ---- API ---- */

/* ---- verdict events (ring-buffer thread) ---- */

/* ---- watchers ---- */

static int arm_oneshot(int tfd, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ULL),
						.tv_nsec = (long)(ns % 1000000000ULL) } };

	return timerfd_settime(tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void on_inotify(void *ctx, int fd, uint32_t events)
{
	struct zt_seg *s = ctx;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ie = (struct inotify_event *)p;

			if (ie->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
				log_warn(
					"policy_dir_gone",
					"dir=%s why=\"the watched directory went away; the policy in force stays until it is back and the agent restarts\"",
					s->cfg->policy.dir);
			any = true;
			p += sizeof(*ie) + ie->len;
		}
	}
	if (any) {
		if (!s->change_ns)
			s->change_ns = zt_now_mono_ns();
		arm_oneshot(s->reload_tfd, RELOAD_DELAY_NS);
	}
}

static void on_reload_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_seg *s = ctx;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;
	seg_reload(s, "files-changed");
	s->change_ns = 0;
}

static void refresh_host(struct zt_seg *s)
{
	struct zt_ep_addr a[MAX_HOST_ADDRS];
	size_t n = read_host_addrs(a, MAX_HOST_ADDRS);
	char err[512];

	if (n == s->n_host && !memcmp(a, s->host, n * sizeof(a[0])))
		return;
	memcpy(s->host, a, n * sizeof(a[0]));
	s->n_host = n;
	if (s->cur && republish(s, "host-addresses", err, sizeof(err)) < 0)
		log_warn("host_addresses_not_applied", "error=\"%s\"", err);
}

static void on_netlink(void *ctx, int fd, uint32_t events)
{
	struct zt_seg *s = ctx;
	char buf[32768] __attribute__((aligned(4)));
	bool addrs = false;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		struct nlmsghdr *h;

		if (n <= 0)
			break;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == RTM_DELLINK) {
				struct ifinfomsg *ifi = NLMSG_DATA(h);
				struct zt_ep *ep = zt_ep_table_by_ifindex(&s->eps, ifi->ifi_index);

				if (ep)
					seg_endpoint_remove(s, ep, "interface-gone");
			} else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
				addrs = true;
			}
		}
	}
	if (addrs)
		refresh_host(s);
}

/* ---- flow records: the conntrack sweep (flowexp.c) with seg's names ---- */

static int fx_ep_ifindex(void *ctx, uint32_t ep_id)
{
	struct zt_seg *s = ctx;

	for (size_t i = 0; i < s->eps.n; i++)
		if (s->eps.v[i]->id == ep_id)
			return s->eps.v[i]->ifindex;
	return 0;
}

static bool fx_is_endpoint(void *ctx, int ifindex)
{
	return zt_ep_table_by_ifindex(&((struct zt_seg *)ctx)->eps, ifindex) != NULL;
}

void zt_seg_set_flow_sink(struct zt_seg *s, zt_flow_sink_fn fn, void *ctx)
{
	s->flow_sink = fn;
	s->flow_sink_ctx = ctx;
}

int zt_seg_flow_worker(struct zt_seg *s, zt_flowexp_prep_fn prep, void *ctx)
{
	if (!s->fx)
		return 0;
	return zt_flowexp_start_worker(s->fx, prep, ctx);
}

/* Each ZT_FLOWEXP_TICK_NS: one bounded slice of the conntrack sweep (records, deletes). */
static void on_gc_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_seg *s = ctx;
	uint64_t n;
	int r;

	if (read(fd, &n, sizeof(n)) < 0 || !s->fx)
		return;
	r = zt_flowexp_sweep(s->fx, bpf_map__fd(s->dp->tc->maps.conntrack), zt_now_boot_ns(),
			     s->flow_sink, s->flow_sink_ctx);
	if (r < 0)
		log_warn("conntrack_sweep_failed", "error=\"%s\"", strerror(-r));
}

static int add_timer(struct zt_seg *s, int *tfd, zt_loop_fn fn)
{
	*tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (*tfd < 0)
		return -errno;
	return zt_loop_add(s->loop, *tfd, EPOLLIN, fn, s);
}

static int watch_dir(struct zt_seg *s, char *err, size_t errlen)
{
	int r;

	r = zt_mkdir_p(s->cfg->policy.dir, 0755);
	if (r < 0) {
		zt_seterr(err, errlen, "policy.dir %s: cannot create it: %s", s->cfg->policy.dir,
			  strerror(-r));
		return r;
	}
	s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino_fd < 0) {
		zt_seterr(err, errlen, "inotify: %s", strerror(errno));
		return -errno;
	}
	s->ino_wd = inotify_add_watch(s->ino_fd, s->cfg->policy.dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
					      IN_DELETE | IN_ATTRIB | IN_DELETE_SELF |
					      IN_MOVE_SELF | IN_ONLYDIR);
	if (s->ino_wd < 0) {
		zt_seterr(err, errlen, "policy.dir %s: cannot watch it: %s", s->cfg->policy.dir,
			  strerror(errno));
		return -errno;
	}
	return zt_loop_add(s->loop, s->ino_fd, EPOLLIN, on_inotify, s);
}

static int open_netlink(struct zt_seg *s, char *err, size_t errlen)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups =
					  RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
	int bufsz = 1 << 20;

	s->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s->nl_fd < 0 || bind(s->nl_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		zt_seterr(err, errlen, "netlink: %s", strerror(errno));
		return -errno;
	}
	setsockopt(s->nl_fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	return zt_loop_add(s->loop, s->nl_fd, EPOLLIN, on_netlink, s);
}

/*
 * Endpoints saved by an earlier run: those whose own interface is still there
 * come back (same ifindex and name, and still carrying our filter); the rest
 * are dropped from the state and logged.
 */
static int restore(struct zt_seg *s)
{
	struct zt_ep_table saved = { 0 };
	char err[1024], q[1100], aside[4096 + 64];
	int r;

	r = zt_ep_table_load(&saved, s->state_path, err, sizeof(err));
	if (r < 0) {
		snprintf(aside, sizeof(aside), "%s.damaged", s->state_path);
		if (rename(s->state_path, aside) == 0)
			log_error("endpoint_state_unreadable", "error=%s moved_to=%s",
				  zt_log_quote(q, sizeof(q), err), aside);
		else
			log_error(
				"endpoint_state_unreadable",
				"error=%s move_to=%s move_error=\"%s\" action=\"remove it by hand\"",
				zt_log_quote(q, sizeof(q), err), aside, strerror(errno));
		return 0;
	}
	while (saved.n) {
		struct zt_ep *ep = zt_ep_table_remove(&saved, saved.v[0]->id);
		char name[IF_NAMESIZE] = "";
		uint32_t id;

		if (!if_indextoname((unsigned int)ep->ifindex, name) || strcmp(name, ep->ifname)) {
			log_info(
				"endpoint_removed",
				"endpoint=%s ifname=%s ifindex=%d why=interface-gone-while-stopped",
				ep->qname, ep->ifname, ep->ifindex);
			zt_datapath_tc_detach(ep->ifindex, err, sizeof(err));
			ep_map_del(s, ep->ifindex);
			zt_ep_free(ep);
			continue;
		}
		/*
		 * Name and ifindex can both be taken again by a new link (another
		 * pod's veth, `ip link add ... index N`); the filter we attached
		 * cannot: it went with the old link. Without it this is not the
		 * interface the endpoint was registered on.
		 */
		r = zt_datapath_tc_owned(ep->ifindex);
		if (r <= 0) {
			log_warn(
				"endpoint_removed",
				"endpoint=%s ifname=%s ifindex=%d why=%s action=\"register it again if it is still wanted\"",
				ep->qname, ep->ifname, ep->ifindex,
				r == 0 ? "interface-recreated-while-stopped" :
					 "interface-identity-unknown");
			zt_datapath_tc_detach(ep->ifindex, err, sizeof(err));
			ep_map_del(s, ep->ifindex);
			zt_ep_free(ep);
			continue;
		}
		if (ep->pending) {
			id = ZT_ID_PENDING;
			r = 0;
		} else {
			r = zt_identities_get(s->ids, &ep->ev.ls, ep->identity, &id);
			if (r == -EEXIST)
				r = zt_identities_get(s->ids, &ep->ev.ls, 0, &id);
		}
		if (r < 0 || zt_ep_table_add(&s->eps, ep) < 0) {
			log_error("endpoint_restore_failed", "endpoint=%s", ep->qname);
			zt_ep_free(ep);
			continue;
		}
		ep->identity = id;
	}
	zt_ep_table_clear(&saved);
	return 0;
}

int zt_seg_init(struct zt_seg **out, const struct zt_config *cfg, struct zt_loop *loop,
		struct zt_datapath *dp, char *err, size_t errlen)
{
	struct zt_polmaps maps;
	struct zt_seg *s;
	bool moved = false;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = cfg;
	s->loop = loop;
	s->dp = dp;
	s->ino_fd = s->reload_tfd = s->nl_fd = s->gc_tfd = -1;
	s->next_seq = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->ring = calloc(FLOW_RING, sizeof(*s->ring));
	if (!s->ring) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(s->state_path, sizeof(s->state_path), "%s/endpoints.cbor", cfg->state_dir);
	snprintf(s->cni_spool_dir, sizeof(s->cni_spool_dir), "%s/%s", cfg->state_dir,
		 ZT_CNI_SPOOL_SUBDIR);
	r = zt_mkdir_p(cfg->state_dir, 0700);
	if (r < 0) {
		zt_seterr(err, errlen, "state_dir %s: %s", cfg->state_dir, strerror(-r));
		goto fail;
	}
	r = zt_identities_new(&s->ids);
	if (r < 0)
		goto fail;
	maps = (struct zt_polmaps){
		.policy_fd = bpf_map__fd(dp->tc->maps.policy),
		.iso_fd = bpf_map__fd(dp->tc->maps.pol_isolation),
		.ipc4_fd = bpf_map__fd(dp->tc->maps.ipcache_v4),
		.ipc6_fd = bpf_map__fd(dp->tc->maps.ipcache_v6),
		.state_fd = bpf_map__fd(dp->tc->maps.pol_state),
	};
	r = zt_polapply_new(&s->applier, &maps, err, errlen);
	if (r < 0)
		goto fail;
	s->st.gen = zt_polapply_gen(s->applier);
	s->n_host = read_host_addrs(s->host, MAX_HOST_ADDRS);
	{
		struct zt_flowexp_names names = {
			.ctx = s,
			.workload = seg_fx_workload,
			.rule = seg_fx_rule,
			.ep_ifindex = fx_ep_ifindex,
			.is_endpoint = fx_is_endpoint,
			.ifname = seg_fx_ifname,
		};

		r = zt_flowexp_open(cfg->bpffs, bpf_map__max_entries(dp->tc->maps.conntrack),
				    cfg->flows.active_timeout_ns, cfg->node, &names, &s->fx, err,
				    errlen);
		if (r < 0)
			goto fail;
		zt_flowexp_set_rotation_min(s->fx, ZT_FLOWEXP_ROTATION_MIN_NS);
	}
	restore(s);
	if ((r = seg_gen_init(s, err, errlen)) < 0)
		goto fail;
	/* Before the first load, so that it takes the generated part along. */
	seg_gen_refresh(s, "start");
	if ((r = watch_dir(s, err, errlen)) < 0 || (r = open_netlink(s, err, errlen)) < 0)
		goto fail;
	if ((r = add_timer(s, &s->reload_tfd, on_reload_timer)) < 0 ||
	    (r = add_timer(s, &s->gc_tfd, on_gc_timer)) < 0) {
		zt_seterr(err, errlen, "timer: %s", strerror(-r));
		goto fail;
	}
	{
		struct itimerspec its = { .it_interval = { .tv_nsec = ZT_FLOWEXP_TICK_NS },
					  .it_value = { .tv_nsec = ZT_FLOWEXP_TICK_NS } };

		timerfd_settime(s->gc_tfd, 0, &its, NULL);
	}
	/*
	 * The policy in force: the files as they are now. When they are invalid
	 * and the kernel enforces an earlier generation, that one stays; with
	 * nothing enforced yet, the default applies (an empty policy set).
	 */
	if (cfg->kubernetes.enabled)
		seg_k8s_cache_load(s);
	r = seg_reload(s, "start");
	if (r < 0 && s->st.gen == 0) {
		struct zt_policy_set *empty = NULL;
		struct pset *ps;

		r = zt_policy_parse_buf("", 0, "(none)", &empty, err, errlen);
		if (r < 0 || !(ps = pset_new(empty))) {
			zt_policy_set_free(empty);
			r = r < 0 ? r : -ENOMEM;
			goto fail;
		}
		r = publish(s, ps, "start-default", err, errlen);
		if (r < 0) {
			pset_put(ps);
			goto fail;
		}
		log_warn("policy_default_only", "dir=%s default=%s", cfg->policy.dir,
			 cfg->policy.default_deny ? "deny" : "allow");
		/* Not s->cur: endpoint changes wait for valid files. */
		pset_put(ps);
	} else if (r < 0 && s->eps.n) {
		log_warn(
			"policy_kept",
			"gen=%llu why=\"files invalid at start; the kernel keeps the last good policy\"",
			(unsigned long long)s->st.gen);
	}
	/* Endpoints come back: entries, programs (replacing the earlier run's). */
	for (size_t i = 0; i < s->eps.n; i++) {
		struct zt_ep *ep = s->eps.v[i];
		int w;

		moved |= ep_map_differs(s, ep);
		w = ep_map_put(s, ep);
		if (w < 0)
			zt_seterr(err, errlen, "cannot write the endpoints map: %s", strerror(-w));
		if (w < 0 || zt_datapath_tc_attach(dp, ep->ifindex, err, errlen) < 0) {
			log_error("endpoint_reattach_failed", "endpoint=%s error=\"%s\"", ep->qname,
				  err);
			continue;
		}
		log_info("endpoint_restored", "endpoint=%s ifname=%s identity=%u", ep->qname,
			 ep->ifname, ep->identity);
	}
	/*
	 * An entry that said something else (an identity numbered anew at
	 * start, a write while the agent was down) changed after the start's
	 * generation, and a flow evaluated in between took it: tc_endpoint
	 * evaluates an established flow again only when a generation moves.
	 */
	if (moved) {
		char e2[512];

		if (republish(s, "endpoint-restore", e2, sizeof(e2)) < 0)
			log_warn(
				"endpoint_restore_republish",
				"error=\"%s\" consequence=\"flows evaluated before the endpoints map was restored keep their verdicts until the next generation\"",
				e2);
	}
	s->st.endpoints = s->eps.n;
	save_state(s);
	/* DELs the CNI plugin queued while we were down: their endpoints go now. */
	seg_cni_spool_apply(s);
	*out = s;
	return 0;
fail:
	zt_seg_stop(s);
	return r;
}

void zt_seg_set_audit(struct zt_seg *s, zt_seg_audit_fn fn, void *ctx)
{
	s->audit = fn;
	s->audit_ctx = ctx;
}

void zt_seg_set_apply_observer(struct zt_seg *s, void (*fn)(void *ctx, double seconds), void *ctx)
{
	s->observe = fn;
	s->observe_ctx = ctx;
}

void zt_seg_get_stats(struct zt_seg *s, struct zt_seg_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
	out->conntrack_entries = zt_flowexp_entries(s->fx);
}

void zt_seg_stop(struct zt_seg *s)
{
	if (!s)
		return;
	if (s->ino_fd >= 0) {
		zt_loop_del(s->loop, s->ino_fd);
		close(s->ino_fd);
	}
	if (s->nl_fd >= 0) {
		zt_loop_del(s->loop, s->nl_fd);
		close(s->nl_fd);
	}
	if (s->reload_tfd >= 0) {
		zt_loop_del(s->loop, s->reload_tfd);
		close(s->reload_tfd);
	}
	if (s->gc_tfd >= 0) {
		zt_loop_del(s->loop, s->gc_tfd);
		close(s->gc_tfd);
	}
	for (size_t i = 0; i < GENS_KEPT; i++) {
		zt_compiled_free(s->gens[i].c);
		pset_put(s->gens[i].ps);
	}
	pset_put(s->cur);
	pset_put(s->dir);
	for (size_t i = 0; i < s->n_fpol; i++)
		pset_put(s->fpol[i].ps);
	seg_remote_free_all(s);
	pset_put(s->gen);
	seg_ann_clear(s);
	zt_flowexp_close(s->fx);
	zt_polapply_free(s->applier);
	zt_ep_table_clear(&s->eps);
	zt_identities_free(s->ids);
	free(s->ring);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int zt_seg_detach_all(const struct zt_config *cfg, char *err, size_t errlen)
{
	struct zt_ep_table t = { 0 };
	char path[4096 + 32], e[512];
	int r;

	snprintf(path, sizeof(path), "%s/endpoints.cbor", cfg->state_dir);
	r = zt_ep_table_load(&t, path, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t.n; i++) {
		char name[IF_NAMESIZE] = "";

		/* Only the interface we attached to (a recreated name is someone else's). */
		if (!if_indextoname((unsigned int)t.v[i]->ifindex, name) ||
		    strcmp(name, t.v[i]->ifname))
			continue;
		if (zt_datapath_tc_detach(t.v[i]->ifindex, e, sizeof(e)) < 0)
			log_warn("tc_detach_failed", "endpoint=%s error=\"%s\"", t.v[i]->qname, e);
		else
			log_info("tc_detached", "endpoint=%s ifname=%s", t.v[i]->qname,
				 t.v[i]->ifname);
	}
	zt_ep_table_clear(&t);
	if (unlink(path) < 0 && errno != ENOENT) {
		zt_seterr(err, errlen, "cannot remove %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}
