// SPDX-License-Identifier: GPL-2.0-only
/*
 * The daemon's side of Kubernetes (kubernetes.enabled): four watches (Pods,
 * Namespaces, NetworkPolicies, ZeroTrustPolicies; Nodes too unless mtls.mode
 * is off) whose events are dispatched on the loop thread, and what they
 * change:
 *
 *   pods of this node  -> zt_seg_endpoint_set_pod_meta (labels, namespace
 *                         labels, service account, named ports), and the
 *                         CNI path's pod lookup (zt_seg_set_pod_lookup)
 *   pods of the others -> the ipcache (zt_seg_set_remote_pods)
 *   namespaces         -> the namespace labels of both, re-evaluated
 *   policy objects     -> zt_seg_set_k8s_policies, named k8s:Kind/ns/name
 *   nodes (mTLS on)    -> the mTLS peer table (daemon_peers.c), at once
 *
 * Changes are coalesced: an event marks pods or policies dirty and arms a
 * short one-shot timer; when it fires, the whole view is recomputed from
 * the caches (a no-op for what did not change), so a relist or a burst of
 * events costs one compile, and a namespace relabel reaches every pod in
 * it. Nothing is applied before the watches it depends on have synced once
 * (pods wait for namespaces, so no pod is ever seen without its namespace
 * labels); policies wait for both policy watches, so a partial list never
 * withdraws what the kernel enforces.
 *
 * Probes (the metrics listener): /healthz and /livez answer 200 while the
 * loop turns (a heartbeat timer); /readyz answers 200 once the loop turns
 * and, with kubernetes.enabled, every watch has synced and the cluster's
 * pods and policies are in the kernel.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent/daemon_int.h"
#include "agent/daemon_peers.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/util.h"
#include "k8s/k8s.h"
#include "records/db.h"
#include "seg/policy.h"
#include "seg/seg.h"

#define HEARTBEAT_NS (250ULL * 1000000ULL)
#define HEALTHY_WITHIN_NS (10ULL * 1000000000ULL) /* a loop stuck longer is not alive */
#define COALESCE_NS (2ULL * 1000000ULL)
#define NODE_MAX 256

struct daemon_k8s {
	struct zt_daemon *d;
	struct zt_k8s_client *c;
	struct zt_k8s_watch *w[ZT_K8S_KIND_MAX];
	struct zt_peers *peers; /* the Nodes' pod CIDRs and agents (mTLS); NULL: not watched */
	char node[NODE_MAX];
	int tfd; /* coalescing one-shot timer; -1 */
	bool armed, dirty_pods, dirty_pol;
	bool pods_applied, pol_applied;
	uint64_t remote_hash;
	size_t last_failed, last_skipped; /* pods left out at the last apply */
	char pol_sha[65];
	/* The pod lookup's answer (valid until the next lookup; loop thread only). */
	struct zt_label lk_labels[ZT_K8S_MAX_LABELS], lk_ns_labels[ZT_K8S_MAX_LABELS];
	struct zt_named_port lk_ports[ZT_K8S_MAX_PORTS];
	/* ztagent.io/ annotations of the pod and its namespace (pod_meta; loop thread only). */
	struct zt_label ann[ZT_K8S_MAX_LABELS], ns_ann[ZT_K8S_MAX_LABELS];
	/* Read by the probe on the metrics thread. */
	_Atomic uint64_t heartbeat_ns;
	_Atomic bool enabled, ready;
};

/* ---- pods ---- */

static const struct zt_k8s_object *ns_of(struct daemon_k8s *k, const char *ns)
{
	return zt_k8s_watch_get(k->w[ZT_K8S_NAMESPACE], "", ns);
}

/* o's metadata as the seg API takes it; strings borrowed from o and its namespace. */
static void pod_meta(struct daemon_k8s *k, const struct zt_k8s_object *o, struct zt_pod_meta *m,
		     struct zt_label *labels, struct zt_label *ns_labels,
		     struct zt_named_port *ports)
{
	const struct zt_k8s_object *ns = ns_of(k, o->namespace);
	size_t nl = o->n_labels < ZT_K8S_MAX_LABELS ? o->n_labels : ZT_K8S_MAX_LABELS;
	size_t nn = 0, np = o->pod.n_ports < ZT_K8S_MAX_PORTS ? o->pod.n_ports : ZT_K8S_MAX_PORTS;

	for (size_t i = 0; i < nl; i++)
		labels[i] = (struct zt_label){ o->labels[i].key, o->labels[i].value };
	for (size_t i = 0; ns && i < ns->n_labels && nn < ZT_K8S_MAX_LABELS; i++)
		ns_labels[nn++] = (struct zt_label){ ns->labels[i].key, ns->labels[i].value };
	size_t na = 0, nna = 0;

	/* The generated policies (seg/polgen.h) come from these. */
	for (size_t i = 0; i < o->n_annotations && na < ZT_K8S_MAX_LABELS; i++)
		k->ann[na++] = (struct zt_label){ o->annotations[i].key, o->annotations[i].value };
	for (size_t i = 0; ns && i < ns->n_annotations && nna < ZT_K8S_MAX_LABELS; i++)
		k->ns_ann[nna++] =
			(struct zt_label){ ns->annotations[i].key, ns->annotations[i].value };
	for (size_t i = 0; i < np; i++)
		ports[i] = (struct zt_named_port){ .name = o->pod.ports[i].name,
						   .protocol = o->pod.ports[i].protocol,
						   .port = o->pod.ports[i].port };
	*m = (struct zt_pod_meta){
		.ns = o->namespace,
		.name = o->name,
		.uid = o->uid,
		.labels = labels,
		.n_labels = nl,
		.ns_labels = ns_labels,
		.n_ns_labels = nn,
		.service_account = o->pod.service_account,
		.ports = ports,
		.n_ports = np,
		.annotations = k->ann,
		.n_annotations = na,
		.ns_annotations_known = ns != NULL,
		.ns_annotations = k->ns_ann,
		.n_ns_annotations = nna,
	};
}

/* A pod whose addresses belong to it: scheduled, not on the host's network, not finished. */
static bool pod_has_addrs(const struct zt_k8s_object *o)
{
	return !o->pod.host_network && o->pod.n_ips && o->pod.phase != ZT_K8S_PHASE_SUCCEEDED &&
	       o->pod.phase != ZT_K8S_PHASE_FAILED;
}

static int pod_lookup(void *ctx, const char *ns, const char *name, const char *uid,
		      struct zt_pod_meta *out)
{
	struct daemon_k8s *k = ctx;
	const struct zt_k8s_object *o;

	if (!zt_k8s_watch_synced(k->w[ZT_K8S_NAMESPACE]))
		return -ENOENT; /* without its namespace labels it would get a wrong identity */
	o = zt_k8s_watch_get(k->w[ZT_K8S_POD], ns, name);
	if (!o || (uid && *uid && *o->uid && strcmp(uid, o->uid)))
		return -ENOENT;
	pod_meta(k, o, out, k->lk_labels, k->lk_ns_labels, k->lk_ports);
	return 0;
}

struct remote_acc {
	struct daemon_k8s *k;
	struct zt_peers_pods *pods; /* other nodes' pod addresses, for the mTLS peers */
	struct zt_seg_remote_pod *v;
	struct zt_label *labels; /* ZT_K8S_MAX_LABELS per pod, twice (labels, ns labels) */
	struct zt_named_port *ports; /* ZT_EP_MAX_PORTS per pod */
	size_t n, cap;
	uint64_t hash;
	size_t local_set, local_failed, skipped;
	char first_failed[600], first_skipped[600]; /* for the summary line */
};

static void hash_add(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 1099511628211ULL;
	}
}

static void hash_str(uint64_t *h, const char *s)
{
	hash_add(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static int remote_grow(struct remote_acc *a)
{
	size_t cap = a->cap ? 2 * a->cap : 64;
	struct zt_seg_remote_pod *v = realloc(a->v, cap * sizeof(*v));
	struct zt_label *l;
	struct zt_named_port *p;

	if (!v)
		return -ENOMEM;
	a->v = v;
	/* Pods point into these arrays: they are rebased after the move. */
	l = realloc(a->labels, cap * 2 * ZT_EP_MAX_LABELS * sizeof(*l));
	if (!l)
		return -ENOMEM;
	a->labels = l;
	p = realloc(a->ports, cap * ZT_EP_MAX_PORTS * sizeof(*p));
	if (!p)
		return -ENOMEM;
	a->ports = p;
	for (size_t i = 0; i < a->n; i++) {
		a->v[i].meta.labels = a->labels + i * 2 * ZT_EP_MAX_LABELS;
		a->v[i].meta.ns_labels = a->labels + i * 2 * ZT_EP_MAX_LABELS + ZT_EP_MAX_LABELS;
		a->v[i].meta.ports = a->ports + i * ZT_EP_MAX_PORTS;
	}
	a->cap = cap;
	return 0;
}

static void local_pod(struct remote_acc *a, const struct zt_k8s_object *o)
{
	struct daemon_k8s *k = a->k;
	struct zt_pod_meta m;
	char err[512], q[600];
	int r;

	pod_meta(k, o, &m, k->lk_labels, k->lk_ns_labels, k->lk_ports);
	r = zt_seg_endpoint_set_pod_meta(k->d->seg, &m, err, sizeof(err));
	if (r == 0)
		a->local_set++;
	else if (r != -ENOENT) {
		/* -ENOENT: no sandbox here yet; the CNI ADD will look the pod up. */
		if (!a->local_failed++)
			snprintf(a->first_failed, sizeof(a->first_failed), "%s/%s: %s",
				 o->namespace, o->name, err);
		log_debug("k8s_pod_meta_failed", "pod=%s/%s error=%s kept=previous", o->namespace,
			  o->name, zt_log_quote(q, sizeof(q), err));
	}
}

static void collect_pod(void *ctx, const struct zt_k8s_object *o)
{
	struct remote_acc *a = ctx;
	struct zt_seg_remote_pod *p;
	struct zt_label *l, *nl;
	struct zt_named_port *pp;
	struct zt_pod_meta m;

	if (!o->pod.host_network && !strcmp(o->pod.node, a->k->node)) {
		local_pod(a, o);
		return;
	}
	if (!pod_has_addrs(o))
		return;
	if (o->pod.node[0])
		zt_peers_pods_add(a->pods, o);
	if (a->n == a->cap && remote_grow(a) < 0) {
		a->cap = SIZE_MAX; /* out of memory: noted, the previous set stays */
		return;
	}
	if (a->cap == SIZE_MAX)
		return;
	p = &a->v[a->n];
	l = a->labels + a->n * 2 * ZT_EP_MAX_LABELS;
	nl = l + ZT_EP_MAX_LABELS;
	pp = a->ports + a->n * ZT_EP_MAX_PORTS;
	pod_meta(a->k, o, &m, a->k->lk_labels, a->k->lk_ns_labels, a->k->lk_ports);
	if (m.n_labels > ZT_EP_MAX_LABELS || m.n_ns_labels > ZT_EP_MAX_LABELS ||
	    m.n_ports > ZT_EP_MAX_PORTS) {
		/* Cut, it would get another pod's identity: left out (its addresses stay the world). */
		if (!a->skipped++)
			snprintf(a->first_skipped, sizeof(a->first_skipped),
				 "%s/%s: more than %d labels or %d named ports", o->namespace,
				 o->name, ZT_EP_MAX_LABELS, ZT_EP_MAX_PORTS);
		log_debug(
			"k8s_remote_pod_skipped",
			"pod=%s/%s labels=%zu namespace_labels=%zu ports=%zu limit_labels=%d limit_ports=%d",
			o->namespace, o->name, m.n_labels, m.n_ns_labels, m.n_ports,
			ZT_EP_MAX_LABELS, ZT_EP_MAX_PORTS);
		return;
	}
	memcpy(l, m.labels, m.n_labels * sizeof(*l));
	memcpy(nl, m.ns_labels, m.n_ns_labels * sizeof(*nl));
	memcpy(pp, m.ports, m.n_ports * sizeof(*pp));
	m.labels = l;
	m.ns_labels = nl;
	m.ports = pp;
	m.service_account = NULL; /* not part of the identity */
	p->meta = m;
	p->n_addrs = 0;
	for (size_t i = 0; i < o->pod.n_ips && i < ZT_SEG_REMOTE_MAX_ADDRS; i++) {
		p->addrs[p->n_addrs].family = o->pod.ips[i].family;
		memcpy(p->addrs[p->n_addrs].addr, o->pod.ips[i].addr, 16);
		p->n_addrs++;
	}
	a->n++;
}

/* Order-independent content hash of the remote set: a change is what triggers a compile. */
static uint64_t remote_hash(const struct remote_acc *a)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < a->n; i++) {
		const struct zt_seg_remote_pod *p = &a->v[i];
		uint64_t h = 1469598103934665603ULL;

		hash_str(&h, p->meta.ns);
		hash_str(&h, p->meta.name);
		for (size_t j = 0; j < p->meta.n_labels; j++) {
			hash_str(&h, p->meta.labels[j].key);
			hash_str(&h, p->meta.labels[j].value);
		}
		hash_str(&h, "|");
		for (size_t j = 0; j < p->meta.n_ns_labels; j++) {
			hash_str(&h, p->meta.ns_labels[j].key);
			hash_str(&h, p->meta.ns_labels[j].value);
		}
		hash_str(&h, "|");
		for (size_t j = 0; j < p->meta.n_ports; j++) {
			hash_str(&h, p->meta.ports[j].name);
			hash_add(&h, &p->meta.ports[j].port, sizeof(p->meta.ports[j].port));
			hash_add(&h, &p->meta.ports[j].protocol, 1);
		}
		hash_add(&h, p->addrs, p->n_addrs * sizeof(p->addrs[0]));
		sum += h * 0x9e3779b97f4a7c15ULL + (h >> 29);
	}
	return sum ^ a->n;
}

static int apply_pods(struct daemon_k8s *k)
{
	struct remote_acc a = { .k = k };
	char err[1024], q[1100];
	uint64_t h;
	int r = 0;

	a.pods = k->peers ? zt_peers_pods_new() : NULL;
	zt_k8s_watch_foreach(k->w[ZT_K8S_POD], collect_pod, &a);
	zt_peers_pods_commit(k->peers, a.pods);
	/* One line when the count of pods left out changes, not one per pod at every event. */
	if (a.local_failed != k->last_failed || a.skipped != k->last_skipped) {
		char q1[700], q2[700];

		if (a.local_failed || a.skipped)
			log_warn(
				"k8s_pods_left_out",
				"local_failed=%zu first_failed=%s remote_skipped=%zu first_skipped=%s why=\"their metadata does not check; the previous labels (local) or the world identity (remote) stay; log_level debug names each\"",
				a.local_failed, zt_log_quote(q1, sizeof(q1), a.first_failed),
				a.skipped, zt_log_quote(q2, sizeof(q2), a.first_skipped));
		k->last_failed = a.local_failed;
		k->last_skipped = a.skipped;
	}
	if (a.cap == SIZE_MAX) {
		log_error("k8s_pods_failed", "error=\"out of memory\" kept=previous");
		r = -ENOMEM;
		goto out;
	}
	h = remote_hash(&a);
	if (k->pods_applied && h == k->remote_hash)
		goto out;
	r = zt_seg_set_remote_pods(k->d->seg, a.v, a.n, err, sizeof(err));
	if (r < 0) {
		log_error("k8s_remote_pods_failed", "pods=%zu error=%s kept=previous", a.n,
			  zt_log_quote(q, sizeof(q), err));
		goto out;
	}
	k->remote_hash = h;
	log_info("k8s_pods_applied", "node=%s remote=%zu local_updated=%zu local_failed=%zu",
		 k->node, a.n, a.local_set, a.local_failed);
out:
	free(a.v);
	free(a.labels);
	free(a.ports);
	return r;
}

/* ---- policies ---- */

struct pol_acc {
	struct zt_k8s_object const **v;
	size_t n, cap;
	bool nomem;
};

static void collect_pol(void *ctx, const struct zt_k8s_object *o)
{
	struct pol_acc *a = ctx;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 32;
		const struct zt_k8s_object **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->nomem = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = o;
}

static int obj_cmp(const void *x, const void *y)
{
	const struct zt_k8s_object *a = *(const struct zt_k8s_object *const *)x;
	const struct zt_k8s_object *b = *(const struct zt_k8s_object *const *)y;
	int c = (int)a->kind - (int)b->kind;

	if (!c)
		c = strcmp(a->namespace, b->namespace);
	return c ? c : strcmp(a->name, b->name);
}

static int apply_policies(struct daemon_k8s *k)
{
	struct pol_acc a = { 0 };
	struct zt_policy_set **sets = NULL;
	char **names = NULL;
	const char **docs = NULL;
	size_t *lens = NULL;
	size_t n = 0, bad = 0, blen = 0;
	char err[1024], q[1100], sha[65], *buf = NULL;
	int r = 0;

	zt_k8s_watch_foreach(k->w[ZT_K8S_NETWORK_POLICY], collect_pol, &a);
	zt_k8s_watch_foreach(k->w[ZT_K8S_ZT_POLICY], collect_pol, &a);
	if (a.nomem)
		goto nomem;
	/* Sorted: the same objects give the same set (rule ids, hash) whatever the cache order. */
	qsort(a.v, a.n, sizeof(*a.v), obj_cmp);
	for (size_t i = 0; i < a.n; i++)
		blen += a.v[i]->policy_len + strlen(a.v[i]->namespace) + strlen(a.v[i]->name) + 64;
	buf = malloc(blen + 1);
	sets = calloc(a.n ? a.n : 1, sizeof(*sets));
	names = calloc(a.n ? a.n : 1, sizeof(*names));
	docs = calloc(a.n ? a.n : 1, sizeof(*docs));
	lens = calloc(a.n ? a.n : 1, sizeof(*lens));
	if (!buf || !sets || !names || !docs || !lens)
		goto nomem;
	blen = 0;
	for (size_t i = 0; i < a.n; i++) {
		const struct zt_k8s_object *o = a.v[i];
		char name[ZT_K8S_MAX_STRING];

		/* What policy list/explain and the audit trail show where a file path would be. */
		snprintf(name, sizeof(name), "k8s:%s/%s/%s", zt_k8s_kind_name(o->kind),
			 o->namespace, o->name);
		if (!o->policy_json) {
			bad++;
			continue;
		}
		blen += (size_t)sprintf(buf + blen, "%s\n", name);
		memcpy(buf + blen, o->policy_json, o->policy_len);
		blen += o->policy_len;
		r = zt_policy_parse_buf(o->policy_json, o->policy_len, name, &sets[n], err,
					sizeof(err));
		if (r == -ENOMEM)
			goto nomem;
		if (r < 0) {
			/* This object only: the others still apply. */
			bad++;
			log_error("k8s_policy_rejected", "object=%s error=%s", name,
				  zt_log_quote(q, sizeof(q), err));
			continue;
		}
		names[n] = strdup(name);
		docs[n] = o->policy_json;
		lens[n] = o->policy_len;
		if (!names[n]) {
			zt_policy_set_free(sets[n]);
			goto nomem;
		}
		n++;
	}
	zt_sha256_hex(buf, blen, sha);
	if (k->pol_applied && !strcmp(sha, k->pol_sha)) {
		for (size_t i = 0; i < n; i++)
			zt_policy_set_free(sets[i]);
		r = 0;
		goto out;
	}
	r = zt_seg_set_k8s_policies(k->d->seg, sets, n, sha, err, sizeof(err));
	if (r < 0)
		goto out; /* logged and audited by the seg; the previous objects stay */
	memcpy(k->pol_sha, sha, sizeof(sha));
	r = zt_seg_k8s_cache_save(k->d->seg, (const char *const *)names, docs, lens, n);
	if (r < 0)
		log_warn(
			"k8s_policy_cache_failed",
			"state_dir=%s error=\"%s\" why=\"a restart will enforce without these objects until the watches have listed\"",
			k->d->cfg.state_dir, strerror(-r));
	log_info("k8s_policies", "objects=%zu applied=%zu rejected=%zu sha256=%s", a.n, n, bad,
		 sha);
	r = 0;
	goto out;
nomem:
	for (size_t i = 0; sets && i < n; i++)
		zt_policy_set_free(sets[i]);
	log_error("k8s_policies_failed", "error=\"out of memory\" kept=previous");
	r = -ENOMEM;
out:
	for (size_t i = 0; names && i < a.n; i++)
		free(names[i]);
	free(names);
	free(docs);
	free(lens);
	free(sets);
	free(buf);
	free(a.v);
	return r;
}

/* ---- events ---- */

static void arm(struct daemon_k8s *k)
{
	struct itimerspec its = { .it_value = { .tv_nsec = (long)COALESCE_NS } };

	if (k->armed)
		return;
	if (timerfd_settime(k->tfd, 0, &its, NULL) == 0)
		k->armed = true;
}

static void mark(struct daemon_k8s *k, enum zt_k8s_kind kind)
{
	if (kind == ZT_K8S_POD || kind == ZT_K8S_NAMESPACE)
		k->dirty_pods = true;
	else
		k->dirty_pol = true;
	arm(k);
}

/* Nodes change the mTLS peer table at once: no compile, nothing to coalesce. */
static void on_added(void *ctx, const struct zt_k8s_object *o)
{
	struct daemon_k8s *k = ctx;

	if (o->kind == ZT_K8S_NODE)
		zt_peers_node_set(k->peers, o, !strcmp(o->name, k->node));
	else
		mark(k, o->kind);
}

static void on_updated(void *ctx, const struct zt_k8s_object *old, const struct zt_k8s_object *o)
{
	on_added(ctx, o);
}

static void on_deleted(void *ctx, const struct zt_k8s_object *o)
{
	struct daemon_k8s *k = ctx;

	if (o->kind == ZT_K8S_NODE)
		zt_peers_node_del(k->peers, o->name);
	else
		mark(k, o->kind);
}

static void on_synced(void *ctx, const struct zt_k8s_sync *s)
{
	struct daemon_k8s *k = ctx;

	if (s->first)
		log_info("k8s_synced", "kind=%s objects=%zu resource_version=%s",
			 zt_k8s_kind_name(s->kind), s->objects, s->resource_version);
	if (s->kind != ZT_K8S_NODE)
		mark(k, s->kind);
}

static void on_error(void *ctx, const struct zt_k8s_error *e)
{
	char q[1200];

	/* The first failure of a streak, then every tenth: the worker retries by itself. */
	if (e->failures == 1 || e->failures % 10 == 0)
		log_warn(
			"k8s_watch_error",
			"kind=%s op=%s http_status=%ld failures=%u retry_in_ms=%llu relist=%d error=%s",
			zt_k8s_kind_name(e->kind), e->op == ZT_K8S_OP_LIST ? "list" : "watch",
			e->http_status, e->failures, (unsigned long long)(e->retry_in_ns / 1000000),
			e->relist, zt_log_quote(q, sizeof(q), e->msg ? e->msg : ""));
}

static const struct zt_k8s_handlers handlers = {
	.added = on_added,
	.updated = on_updated,
	.deleted = on_deleted,
	.synced = on_synced,
	.error = on_error,
};

static void on_watch_fd(void *ctx, int fd, uint32_t events)
{
	zt_k8s_watch_dispatch(ctx);
}

static bool synced(struct daemon_k8s *k, enum zt_k8s_kind a, enum zt_k8s_kind b)
{
	return zt_k8s_watch_synced(k->w[a]) && zt_k8s_watch_synced(k->w[b]);
}

static void on_coalesced(void *ctx, int fd, uint32_t events)
{
	struct daemon_k8s *k = ctx;
	uint64_t ticks;
	bool was_ready = atomic_load(&k->ready);

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	k->armed = false;
	if (k->dirty_pods && synced(k, ZT_K8S_POD, ZT_K8S_NAMESPACE)) {
		k->dirty_pods = false;
		if (apply_pods(k) == 0)
			k->pods_applied = true;
	}
	if (k->dirty_pol && synced(k, ZT_K8S_NETWORK_POLICY, ZT_K8S_ZT_POLICY)) {
		k->dirty_pol = false;
		if (apply_policies(k) == 0)
			k->pol_applied = true;
	}
	if (!was_ready && k->pods_applied && k->pol_applied) {
		atomic_store(&k->ready, true);
		log_info("k8s_ready",
			 "node=%s pods=%zu namespaces=%zu policies=%zu remote_pods=%zu", k->node,
			 zt_k8s_watch_count(k->w[ZT_K8S_POD]),
			 zt_k8s_watch_count(k->w[ZT_K8S_NAMESPACE]),
			 zt_k8s_watch_count(k->w[ZT_K8S_NETWORK_POLICY]) +
				 zt_k8s_watch_count(k->w[ZT_K8S_ZT_POLICY]),
			 zt_seg_remote_count(k->d->seg));
	}
}

static void on_heartbeat_timer(void *ctx, int fd, uint32_t events)
{
	struct daemon_k8s *k = ctx;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	atomic_store(&k->heartbeat_ns, zt_now_mono_ns());
}

/* ---- probes (metrics thread) ---- */

unsigned int daemon_probe(void *ctx, const char *path, char *msg, size_t n)
{
	struct zt_daemon *d = ctx;
	struct daemon_k8s *k = d->k8s;
	uint64_t hb = k ? atomic_load(&k->heartbeat_ns) : 0, now = zt_now_mono_ns();

	if (!hb || now - hb > HEALTHY_WITHIN_NS) {
		snprintf(msg, n, "%s\n",
			 hb ? "the agent's loop has not turned for 10 s" : "the agent is starting");
		return 503;
	}
	if (strcmp(path, "/readyz")) {
		snprintf(msg, n, "ok\n");
		return 200;
	}
	if (atomic_load(&k->enabled) && !atomic_load(&k->ready)) {
		snprintf(
			msg, n,
			"not ready: the Kubernetes watches have not all synced, or the cluster's pods and policies are not in the kernel yet\n");
		return 503;
	}
	snprintf(msg, n, "ready\n");
	return 200;
}

/* ---- start / stop ---- */

struct zt_peers *daemon_k8s_peers(struct zt_daemon *d)
{
	return d->k8s ? d->k8s->peers : NULL;
}

int daemon_k8s_start(struct zt_daemon *d, char *err, size_t errlen)
{
	struct daemon_k8s *k = calloc(1, sizeof(*k));
	struct zt_k8s_settings st = { .kubeconfig = d->cfg.kubernetes.kubeconfig };
	int r;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	k->d = d;
	k->tfd = -1;
	d->k8s = k;
	r = zt_loop_add_timer(d->loop, HEARTBEAT_NS, on_heartbeat_timer, k);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the heartbeat timer: %s", strerror(-r));
		return r;
	}
	if (!d->cfg.kubernetes.enabled)
		return 0;
	atomic_store(&k->enabled, true);
	r = zt_config_k8s_node(&d->cfg, k->node, sizeof(k->node));
	if (r < 0) {
		snprintf(
			err, errlen,
			"kubernetes: no node name (kubernetes.node_name, $NODE_NAME, the host name): %s",
			strerror(-r));
		return r;
	}
	st.node_name = k->node;
	r = zt_k8s_client_new(&st, &k->c, err, errlen);
	if (r < 0)
		return r;
	k->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (k->tfd < 0) {
		r = -errno;
		snprintf(err, errlen, "kubernetes: cannot create a timer: %s", strerror(-r));
		return r;
	}
	r = zt_loop_add(d->loop, k->tfd, EPOLLIN, on_coalesced, k);
	if (r < 0) {
		snprintf(err, errlen, "kubernetes: cannot watch the timer: %s", strerror(-r));
		return r;
	}
	for (int i = 0; i < ZT_K8S_KIND_MAX; i++) {
		/* Pods: every node's, for the ipcache; this node's become endpoints. */
		struct zt_k8s_watch_opts o = { .kind = (enum zt_k8s_kind)i,
					       .h = &handlers,
					       .ctx = k };

		/* Nodes: where the other nodes' agents are, for the mTLS tunnel only. */
		if (i == ZT_K8S_NODE) {
			if (d->cfg.mtls.mode == ZT_MTLS_MODE_OFF)
				continue;
			r = zt_peers_new(d, &k->peers);
			if (r < 0) {
				snprintf(err, errlen, "kubernetes: %s", strerror(-r));
				return r;
			}
		}
		r = zt_k8s_watch_start(k->c, &o, &k->w[i]);
		if (r == 0)
			r = zt_loop_add(d->loop, zt_k8s_watch_fd(k->w[i]), EPOLLIN, on_watch_fd,
					k->w[i]);
		if (r < 0) {
			snprintf(err, errlen, "kubernetes: cannot start the %s watch: %s",
				 zt_k8s_kind_name((enum zt_k8s_kind)i), strerror(-r));
			return r;
		}
	}
	zt_seg_set_pod_lookup(d->seg, pod_lookup, k);
	log_info("k8s_watching", "server=%s source=\"%s\" node=%s pending_posture=%s",
		 zt_k8s_client_server(k->c), zt_k8s_client_source(k->c), k->node,
		 zt_pending_posture_name(d->cfg.kubernetes.pending_posture));
	return 0;
}

void daemon_k8s_stop(struct zt_daemon *d)
{
	struct daemon_k8s *k = d->k8s;

	if (!k)
		return;
	if (d->seg)
		zt_seg_set_pod_lookup(d->seg, NULL, NULL);
	for (int i = 0; i < ZT_K8S_KIND_MAX; i++) {
		if (k->w[i])
			zt_loop_del(d->loop, zt_k8s_watch_fd(k->w[i]));
		zt_k8s_watch_stop(k->w[i]);
	}
	zt_k8s_client_free(k->c);
	zt_peers_free(k->peers);
	if (k->tfd >= 0) {
		zt_loop_del(d->loop, k->tfd);
		close(k->tfd);
	}
	/* The metrics server is stopped first (daemon_stop): no probe reads k now. */
	d->k8s = NULL;
	free(k);
}
