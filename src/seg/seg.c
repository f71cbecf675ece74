// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
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
#include "records/flowexp.h"
#include "seg/seg.h"
#include "tc_endpoint.skel.h"
#include "agent/util.h"

#define GENS_KEPT 4 /* generations whose rule tables events may still name */
#define FLOW_RING 16384 /* recent verdicts for `ztctl flows` */
#define RELOAD_DELAY_NS (5ULL * 1000000ULL) /* coalesce a burst of file events */
#define MAX_HOST_ADDRS 256
#define LOG_VERDICTS_PER_S 200

/* A policy set shared by the generations compiled from it. */
struct pset {
	struct zt_policy_set *set;
	unsigned int refs;
};

struct gen_rec {
	uint32_t gen;
	struct pset *ps;
	struct zt_compiled *c;
};

struct flow_rec {
	uint64_t seq;
	uint64_t unix_ms;
	uint8_t verdict; /* 0 allowed, 1 denied, 2 audit */
	uint8_t reason; /* enum zt_reason */
	uint8_t dir; /* enum zt_dir of the local endpoint */
	uint8_t proto;
	uint8_t family;
	uint8_t revoked;
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
	uint32_t src_id;
	uint32_t dst_id;
	char src_wl[ZT_EP_NAME_MAX + 72];
	char dst_wl[ZT_EP_NAME_MAX + 72];
	char rule[256];
	char ifname[IF_NAMESIZE];
};

struct zt_seg {
	const struct zt_config *cfg;
	struct zt_loop *loop;
	struct zt_datapath *dp;
	struct zt_identities *ids;
	struct zt_ep_table eps;
	struct zt_polapply *applier;
	struct pset *cur; /* the policy set in force (NULL: none valid yet) */
	struct zt_ep_addr host[MAX_HOST_ADDRS];
	size_t n_host;
	char state_path[4096 + 32];
	int ino_fd, ino_wd, reload_tfd, nl_fd, gc_tfd;
	char last_reject[1024];
	zt_seg_audit_fn audit;
	void *audit_ctx;
	void (*observe)(void *ctx, double s);
	void *observe_ctx;

	/* Shared with the ring-buffer thread. */
	pthread_mutex_t lock;
	struct gen_rec gens[GENS_KEPT]; /* newest first */
	struct flow_rec *ring;
	uint64_t next_seq;
	struct zt_seg_stats st;
	uint64_t log_window_ns, log_in_window, log_suppressed;
	uint64_t change_ns; /* first inotify event not yet published (0: none) */
	struct zt_flowexp *fx;
	zt_flow_sink_fn flow_sink;
	void *flow_sink_ctx;
};

static const char *const verdict_names[] = { "allowed", "denied", "audit" };

static void pset_put(struct pset *ps)
{
	if (ps && --ps->refs == 0) {
		zt_policy_set_free(ps->set);
		free(ps);
	}
}

static void audit(struct zt_seg *s, const char *kind, const char *subject, const char *detail)
{
	if (s->audit)
		s->audit(s->audit_ctx, kind, subject, detail);
}

/* An audit event whose detail is {"KEY":"TEXT"}. */
static void audit_text(struct zt_seg *s, const char *kind, const char *subject, const char *key,
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
static int publish(struct zt_seg *s, struct pset *ps, const char *why, char *err, size_t errlen)
{
	struct zt_polc_endpoint *ce;
	struct zt_compiled *c = NULL;
	uint64_t t0 = zt_now_mono_ns(), dt;
	uint32_t gen = 0;
	int r;

	ce = calloc(s->eps.n ? s->eps.n : 1, sizeof(*ce));
	if (!ce) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->eps.n; i++) {
		ce[i].ep_id = s->eps.v[i]->id;
		ce[i].identity = s->eps.v[i]->identity;
		ce[i].ev = &s->eps.v[i]->ev;
	}
	{
		struct zt_polc_input in = {
			.set = ps->set,
			.def = s->cfg->policy.default_deny ? ZT_POL_DEFAULT_DENY :
							     ZT_POL_DEFAULT_ALLOW,
			.eps = ce,
			.n_eps = s->eps.n,
			.host_addrs = s->host,
			.n_host_addrs = s->n_host,
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
	s->st.last_apply_ns = dt;
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

static struct pset *pset_new(struct zt_policy_set *set)
{
	struct pset *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->set = set;
	ps->refs = 1;
	return ps;
}

/* Reads policy.dir; on success the new set is in force. */
static int reload(struct zt_seg *s, const char *why)
{
	struct zt_policy_set *set = NULL;
	struct pset *ps;
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
		audit_text(s, "policy.reject", s->cfg->policy.dir, "error", err);
		return r;
	}
	if (s->cur && !strcmp(s->cur->set->sha256, set->sha256) && strcmp(why, "start")) {
		zt_policy_set_free(set);
		return 0; /* same bytes: nothing to do */
	}
	ps = pset_new(set);
	if (!ps) {
		zt_policy_set_free(set);
		return -ENOMEM;
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
		audit_text(s, "policy.reject", s->cfg->policy.dir, "error", err);
		pset_put(ps);
		return r;
	}
	s->last_reject[0] = '\0';
	pset_put(s->cur);
	s->cur = ps;
	{
		char d[256];

		snprintf(d, sizeof(d), "{\"sha256\":\"%s\",\"policies\":%zu,\"gen\":%llu}",
			 set->sha256, set->n, (unsigned long long)s->st.gen);
		audit(s, "policy.apply", s->cfg->policy.dir, d);
	}
	return 0;
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

/* ---- endpoints ---- */

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
static int endpoint_add(struct zt_seg *s, struct zt_ep *ep, char *err, size_t errlen)
{
	char e2[512];
	int r;

	r = zt_ep_table_check(&s->eps, ep, err, errlen);
	if (r < 0)
		return r;
	r = zt_identities_get(s->ids, &ep->ev.ls, 0, &ep->identity);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot allocate an identity: %s", strerror(-r));
		return r;
	}
	r = table_lock_add(s, ep);
	if (r < 0) {
		zt_identities_put(s->ids, ep->identity);
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
	return 0;
undo_map:
	zt_datapath_tc_detach(ep->ifindex, e2, sizeof(e2));
	ep_map_del(s, ep->ifindex);
undo_policy:
	table_lock_remove(s, ep);
	republish(s, "endpoint-add-undo", e2, sizeof(e2));
	zt_identities_put(s->ids, ep->identity);
	return r;
undo_table:
	table_lock_remove(s, ep);
	zt_identities_put(s->ids, ep->identity);
	return r;
}

static void endpoint_remove(struct zt_seg *s, struct zt_ep *ep, const char *why)
{
	char err[512], addrs[ZT_EP_MAX_ADDRS * 48];

	zt_ep_addrs_format(ep, addrs, sizeof(addrs));
	if (zt_datapath_tc_detach(ep->ifindex, err, sizeof(err)) < 0)
		log_warn("endpoint_detach_failed", "endpoint=%s error=\"%s\"", ep->qname, err);
	ep_map_del(s, ep->ifindex);
	table_lock_remove(s, ep);
	if (republish(s, "endpoint-del", err, sizeof(err)) < 0)
		log_warn("endpoint_del_policy", "endpoint=%s error=\"%s\"", ep->qname, err);
	zt_identities_put(s->ids, ep->identity);
	log_info("endpoint_removed", "endpoint=%s ifname=%s ifindex=%d ip=%s why=%s", ep->qname,
		 ep->ifname, ep->ifindex, addrs, why);
	audit_text(s, "endpoint.del", ep->qname, "why", why);
	/* The event thread may still name it from an older record: names are copied under lock. */
	zt_ep_free(ep);
	save_state(s);
}

/* ---- API ---- */

static int req_str(const cbor_item_t *req, const char *key, char *buf, size_t n, bool need,
		   char *err, size_t errlen)
{
	int r = zt_cbor_get_str(req, key, buf, n);

	if (r == -ENOENT && !need) {
		buf[0] = '\0';
		return 0;
	}
	if (r < 0)
		zt_seterr(err, errlen, "%s: %s", key,
			  r == -ENOENT ? "missing" :
			  r == -E2BIG  ? "too long" :
					 "expected text");
	return r;
}

static cbor_item_t *labels_map(const struct zt_label *v, size_t n)
{
	cbor_item_t *m = zt_cbor_map();

	for (size_t i = 0; m && i < n; i++)
		if (zt_cbor_put_str(m, v[i].key, v[i].value)) {
			cbor_decref(&m);
			return NULL;
		}
	return m;
}

static cbor_item_t *ep_to_cbor(const struct zt_ep *ep)
{
	cbor_item_t *m = zt_cbor_map(), *l;
	char addrs[ZT_EP_MAX_ADDRS * 48];

	zt_ep_addrs_format(ep, addrs, sizeof(addrs));
	if (!m || zt_cbor_put_u64(m, "id", ep->id) || zt_cbor_put_str(m, "name", ep->name) ||
	    zt_cbor_put_str(m, "namespace", ep->ns) || zt_cbor_put_str(m, "ifname", ep->ifname) ||
	    zt_cbor_put_u64(m, "ifindex", (uint64_t)ep->ifindex) ||
	    zt_cbor_put_str(m, "ip", addrs) || zt_cbor_put_u64(m, "identity", ep->identity) ||
	    zt_cbor_put_u64(m, "created_unix", ep->created_unix))
		goto fail;
	l = labels_map(ep->labels, ep->n_labels);
	if (!l || zt_cbor_put(m, "labels", l))
		goto fail;
	l = labels_map(ep->ns_labels, ep->n_ns_labels);
	if (!l || zt_cbor_put(m, "namespace_labels", l))
		goto fail;
	return m;
fail:
	if (m)
		cbor_decref(&m);
	return NULL;
}

static int op_endpoint_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char ifname[64], name[ZT_EP_NAME_MAX + 2], ns[80], ip[2048], labels[8192], nsl[8192],
		ports[4096], q[9000];
	struct zt_ep *ep;
	int r;

	if ((r = req_str(req, "ifname", ifname, sizeof(ifname), true, err, errlen)) < 0 ||
	    (r = req_str(req, "ip", ip, sizeof(ip), true, err, errlen)) < 0 ||
	    (r = req_str(req, "name", name, sizeof(name), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace", ns, sizeof(ns), false, err, errlen)) < 0 ||
	    (r = req_str(req, "labels", labels, sizeof(labels), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace_labels", nsl, sizeof(nsl), false, err, errlen)) < 0 ||
	    (r = req_str(req, "ports", ports, sizeof(ports), false, err, errlen)) < 0)
		return r;
	{
		struct zt_ep_spec spec = { .ifname = ifname,
					   .name = name,
					   .ns = ns,
					   .addrs = ip,
					   .labels = labels,
					   .ns_labels = nsl,
					   .ports = ports };

		r = zt_ep_from_spec(&spec, &ep, err, errlen);
	}
	if (r < 0)
		return r;
	r = endpoint_add(s, ep, err, errlen);
	if (r < 0) {
		log_warn("endpoint_refused", "ifname=%s error=%s", ifname,
			 zt_log_quote(q, sizeof(q), err));
		zt_ep_free(ep);
		return r;
	}
	zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels));
	zt_ep_addrs_format(ep, ip, sizeof(ip));
	log_info("endpoint_added",
		 "endpoint=%s id=%u ifname=%s ifindex=%d ip=%s identity=%u labels=%s", ep->qname,
		 ep->id, ep->ifname, ep->ifindex, ip, ep->identity,
		 zt_log_quote(q, sizeof(q), labels));
	{
		char el[2100], ei[100], d[4400];

		zt_json_escape(labels, el, sizeof(el));
		zt_json_escape(ep->ifname, ei, sizeof(ei));
		snprintf(d, sizeof(d),
			 "{\"ifname\":\"%s\",\"ip\":\"%.2000s\",\"identity\":%u,\"labels\":\"%s\"}",
			 ei, ip, ep->identity, el);
		audit(s, "endpoint.add", ep->qname, d);
	}
	*data = ep_to_cbor(ep);
	return *data ? 0 : -ENOMEM;
}

static int op_endpoint_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char which[ZT_EP_NAME_MAX + 80];
	struct zt_ep *ep;
	bool amb;
	int r;

	if ((r = req_str(req, "endpoint", which, sizeof(which), true, err, errlen)) < 0)
		return r;
	ep = zt_ep_table_find(&s->eps, which, &amb);
	if (!ep) {
		zt_seterr(err, errlen,
			  amb ? "'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
				"no endpoint '%s' (see 'ztctl endpoint list')",
			  which);
		return amb ? -ENOTUNIQ : -ENOENT;
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "endpoint", ep->qname) ||
	    zt_cbor_put_str(*data, "ifname", ep->ifname))
		return -ENOMEM;
	endpoint_remove(s, ep, "operator");
	return 0;
}

static int op_endpoint_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_seg *s = ctx;
	cbor_item_t *arr = zt_cbor_array();

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < s->eps.n; i++) {
		cbor_item_t *e = ep_to_cbor(s->eps.v[i]);

		if (!e || zt_cbor_push(arr, e)) {
			if (e)
				cbor_decref(&e);
			cbor_decref(&arr);
			return -ENOMEM;
		}
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "endpoints", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	return 0;
}

static size_t selected_count(const struct zt_seg *s, const struct zt_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < s->eps.n; i++)
		if (!strcmp(p->namespace, s->eps.v[i]->ns) &&
		    zt_selector_matches(&p->pod_selector, &s->eps.v[i]->ev.ls.labels))
			n++;
	return n;
}

static int op_policy_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			  size_t errlen)
{
	struct zt_seg *s = ctx;
	cbor_item_t *arr = zt_cbor_array();
	const struct zt_policy_set *set = s->cur ? s->cur->set : NULL;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; set && i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];
		cbor_item_t *m = zt_cbor_map();
		char where[4200], types[32];

		snprintf(where, sizeof(where), "%s:%u:%u", p->file, p->pos.line, p->pos.column);
		snprintf(types, sizeof(types), "%s%s%s",
			 p->isolates[ZT_POL_INGRESS] ? "Ingress" : "",
			 p->isolates[ZT_POL_INGRESS] && p->isolates[ZT_POL_EGRESS] ? "," : "",
			 p->isolates[ZT_POL_EGRESS] ? "Egress" : "");
		if (!m || zt_cbor_put_str(m, "kind", zt_pol_kind_name(p->kind)) ||
		    zt_cbor_put_str(m, "namespace", p->namespace) ||
		    zt_cbor_put_str(m, "name", p->name) ||
		    zt_cbor_put_str(m, "mode", p->mode == ZT_POL_AUDIT ? "audit" : "enforce") ||
		    zt_cbor_put_str(m, "isolates", types) ||
		    zt_cbor_put_u64(m, "ingress_rules", p->n_rules[ZT_POL_INGRESS]) ||
		    zt_cbor_put_u64(m, "egress_rules", p->n_rules[ZT_POL_EGRESS]) ||
		    zt_cbor_put_u64(m, "endpoints", selected_count(s, p)) ||
		    zt_cbor_put_str(m, "source", where) || zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			cbor_decref(&arr);
			return -ENOMEM;
		}
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "policies", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	if (zt_cbor_put_str(*data, "dir", s->cfg->policy.dir) ||
	    zt_cbor_put_str(*data, "default", s->cfg->policy.default_deny ? "deny" : "allow") ||
	    zt_cbor_put_u64(*data, "generation", s->st.gen) ||
	    zt_cbor_put_str(*data, "sha256", set ? set->sha256 : "") ||
	    zt_cbor_put_u64(*data, "rejects", s->st.rejects) ||
	    zt_cbor_put_str(*data, "last_error", s->last_reject))
		return -ENOMEM;
	return 0;
}

static bool is_host_addr(const struct zt_seg *s, const struct zt_ep_addr *a)
{
	for (size_t i = 0; i < s->n_host; i++)
		if (s->host[i].family == a->family &&
		    !memcmp(s->host[i].addr, a->addr, a->family == AF_INET ? 4 : 16))
			return true;
	return false;
}

static int op_policy_explain(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			     size_t errlen)
{
	struct zt_seg *s = ctx;
	char from[300], to[300], port[64], line[2048];
	struct zt_eval_endpoint *evs;
	struct zt_eval_conn c = { 0 };
	struct zt_eval_result res;
	const struct zt_policy_set *set;
	struct zt_policy_set empty = { 0 };
	int r;

	if ((r = req_str(req, "from", from, sizeof(from), true, err, errlen)) < 0 ||
	    (r = req_str(req, "to", to, sizeof(to), true, err, errlen)) < 0 ||
	    (r = req_str(req, "port", port, sizeof(port), true, err, errlen)) < 0)
		return r;
	if (zt_eval_parse_port(port, &c.protocol, &c.port) < 0) {
		zt_seterr(err, errlen,
			  "--port: '%s' is not PORT/PROTO (like 443/TCP, 53/UDP; port 1-65535)",
			  port);
		return -EINVAL;
	}
	set = s->cur ? s->cur->set : &empty;
	evs = calloc(s->eps.n ? s->eps.n : 1, sizeof(*evs));
	if (!evs)
		return -ENOMEM;
	for (size_t i = 0; i < s->eps.n; i++)
		evs[i] = s->eps.v[i]->ev;
	r = zt_eval_parse_peer(from, evs, s->eps.n, &c.src);
	if (r == 0)
		r = zt_eval_parse_peer(to, evs, s->eps.n, &c.dst);
	if (r < 0) {
		const char *bad = c.src.ep || c.src.addr.family ? to : from;

		zt_seterr(
			err, errlen,
			r == -ENOTUNIQ ?
				"'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
			r == -ENOENT ?
				"'%s' is neither an address nor an endpoint (see 'ztctl endpoint list')" :
				"'%s' is not an endpoint or address",
			bad);
		free(evs);
		return r;
	}
	r = zt_policy_eval(set,
			   s->cfg->policy.default_deny ? ZT_POL_DEFAULT_DENY : ZT_POL_DEFAULT_ALLOW,
			   evs, s->eps.n, &c, &res);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot evaluate: %s", strerror(-r));
		free(evs);
		return r;
	}
	/* The host is always allowed to and from its endpoints (Kubernetes' rule). */
	if ((!res.src_ep && is_host_addr(s, &c.src.addr)) ||
	    (!res.dst_ep && is_host_addr(s, &c.dst.addr))) {
		snprintf(
			line, sizeof(line),
			"allow %s %s -> %s:%u: the node's own address is always allowed to and from its endpoints",
			zt_pol_proto_name(c.protocol), from, to, c.port);
		res.verdict = ZT_PV_ALLOW;
	} else {
		zt_eval_format(&res, &c, line, sizeof(line));
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "verdict", zt_pol_verdict_name(res.verdict)) ||
	    zt_cbor_put_str(*data, "explanation", line) ||
	    zt_cbor_put_bool(*data, "require_tls", res.require_tls) ||
	    zt_cbor_put_bool(*data, "require_mutual_auth", res.require_mutual_auth) ||
	    zt_cbor_put_u64(*data, "generation", s->st.gen)) {
		free(evs);
		return -ENOMEM;
	}
	free(evs);
	return 0;
}

static int op_policy_reload(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_seg *s = ctx;
	int r = reload(s, "operator");

	if (r < 0) {
		zt_seterr(err, errlen, "%s (the policy in force is unchanged)", s->last_reject);
		return r;
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_u64(*data, "generation", s->st.gen))
		return -ENOMEM;
	return 0;
}

static cbor_item_t *flow_to_cbor(const struct flow_rec *f)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], t[40];
	cbor_item_t *m = zt_cbor_map();
	int fam = f->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(fam, f->saddr, sa, sizeof(sa));
	inet_ntop(fam, f->daddr, da, sizeof(da));
	zt_time_format(f->unix_ms / 1000, t, sizeof(t));
	if (!m || zt_cbor_put_u64(m, "seq", f->seq) || zt_cbor_put_str(m, "time", t) ||
	    zt_cbor_put_u64(m, "time_ms", f->unix_ms) ||
	    zt_cbor_put_str(m, "verdict", verdict_names[f->verdict]) ||
	    zt_cbor_put_str(m, "reason", zt_tc_reason_name(f->reason)) ||
	    zt_cbor_put_str(m, "rule", f->rule) ||
	    zt_cbor_put_str(m, "direction", f->dir == ZT_DIR_INGRESS ? "ingress" : "egress") ||
	    zt_cbor_put_str(m, "protocol", zt_pol_proto_name(f->proto)) ||
	    zt_cbor_put_str(m, "src", sa) || zt_cbor_put_u64(m, "sport", f->sport) ||
	    zt_cbor_put_str(m, "dst", da) || zt_cbor_put_u64(m, "dport", f->dport) ||
	    zt_cbor_put_u64(m, "src_identity", f->src_id) ||
	    zt_cbor_put_u64(m, "dst_identity", f->dst_id) ||
	    zt_cbor_put_str(m, "src_workload", f->src_wl) ||
	    zt_cbor_put_str(m, "dst_workload", f->dst_wl) ||
	    zt_cbor_put_str(m, "interface", f->ifname) ||
	    zt_cbor_put_bool(m, "revoked", f->revoked)) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

/* "flows.recent" {after: seq, verdict: "denied"|"allowed"|"audit"|"", limit} */
static int op_flows_recent(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	uint64_t after = 0, limit = 1000, first, missed = 0, next;
	char want[16];
	int vf = -1, r;
	cbor_item_t *arr;

	if (zt_cbor_get_u64(req, "after", &after) == -EINVAL ||
	    zt_cbor_get_u64(req, "limit", &limit) == -EINVAL) {
		zt_seterr(err, errlen, "after, limit: expected unsigned integers");
		return -EINVAL;
	}
	if ((r = req_str(req, "verdict", want, sizeof(want), false, err, errlen)) < 0)
		return r;
	if (*want) {
		for (int i = 0; i < 3; i++)
			if (!strcmp(want, verdict_names[i]))
				vf = i;
		if (vf < 0) {
			zt_seterr(err, errlen,
				  "--verdict: expected allowed, denied or audit, got '%s'", want);
			return -EINVAL;
		}
	}
	if (!limit || limit > 10000)
		limit = 10000;
	arr = zt_cbor_array();
	if (!arr)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	next = s->next_seq; /* the next record will have this seq */
	first = next > FLOW_RING ? next - FLOW_RING : 1;
	if (after + 1 < first && after)
		missed = first - after - 1;
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t q = first; q < next && limit; q++) {
		const struct flow_rec *f = &s->ring[q % FLOW_RING];
		cbor_item_t *m;

		if (vf >= 0 && f->verdict != vf)
			continue;
		m = flow_to_cbor(f);
		if (!m || zt_cbor_push(arr, m)) {
			pthread_mutex_unlock(&s->lock);
			if (m)
				cbor_decref(&m);
			cbor_decref(&arr);
			return -ENOMEM;
		}
		limit--;
		after = q;
	}
	if (after + 1 < next && !limit)
		next = after + 1;
	pthread_mutex_unlock(&s->lock);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "flows", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	if (zt_cbor_put_u64(*data, "last", next - 1) || zt_cbor_put_u64(*data, "missed", missed))
		return -ENOMEM;
	return 0;
}

int zt_seg_register_api(struct zt_seg *s, struct zt_api *api)
{
	static const struct {
		const char *op;
		zt_api_handler fn;
	} ops[] = {
		{ ZT_OP_ENDPOINT_ADD, op_endpoint_add },
		{ ZT_OP_ENDPOINT_DEL, op_endpoint_del },
		{ ZT_OP_ENDPOINT_LIST, op_endpoint_list },
		{ ZT_OP_POLICY_LIST, op_policy_list },
		{ ZT_OP_POLICY_EXPLAIN, op_policy_explain },
		{ ZT_OP_POLICY_RELOAD, op_policy_reload },
		{ ZT_OP_FLOWS_RECENT, op_flows_recent },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(ops); i++) {
		int r = zt_api_register(api, ops[i].op, ops[i].fn, s);

		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- verdict events (ring-buffer thread) ---- */

static void name_identity(const struct zt_seg *s, const struct gen_rec *g, uint32_t id,
			  uint32_t ep_id, char *buf, size_t n)
{
	if (ep_id) {
		for (size_t i = 0; i < s->eps.n; i++)
			if (s->eps.v[i]->id == ep_id) {
				snprintf(buf, n, "%s", s->eps.v[i]->qname);
				return;
			}
		snprintf(buf, n, "endpoint:%u", ep_id);
		return;
	}
	if (id == ZT_ID_HOST) {
		snprintf(buf, n, "host");
		return;
	}
	if (id == ZT_ID_WORLD_V4 || id == ZT_ID_WORLD_V6) {
		snprintf(buf, n, "world");
		return;
	}
	if (g && g->c && id >= ZT_ID_FIRST_CIDR) {
		for (size_t i = 0; i < g->c->n_cidr_ids; i++)
			if (g->c->cidr_ids[i].identity == id) {
				char c[ZT_CIDR_STRLEN];

				zt_cidr_format(&g->c->cidr_ids[i].cidr, c, sizeof(c));
				snprintf(buf, n, "cidr:%s", c);
				return;
			}
	}
	snprintf(buf, n, "identity:%u", id);
}

static const struct gen_rec *gen_find(const struct zt_seg *s, uint32_t gen)
{
	for (size_t i = 0; i < GENS_KEPT; i++)
		if (s->gens[i].c && s->gens[i].gen == gen)
			return &s->gens[i];
	return NULL;
}

/* An endpoint's interface name from the table: if_indextoname() is a socket and an ioctl. */
static bool fx_ifname(void *ctx, int ifindex, char *buf, size_t n)
{
	const struct zt_ep *ep = zt_ep_table_by_ifindex(&((struct zt_seg *)ctx)->eps, ifindex);

	if (!ep)
		return false;
	snprintf(buf, n, "%s", ep->ifname);
	return true;
}

/* The rule text of alerts and flow records: the rule, "default-deny: ...", or the reason. */
static void describe_rule(const struct gen_rec *g, uint32_t gen, uint32_t rule_id, uint8_t reason,
			  char *buf, size_t n)
{
	if (rule_id && g && reason == ZT_REASON_NO_RULE) {
		/* The policy that isolates the endpoint; no rule of any policy allowed. */
		char pol[192];

		zt_polc_rule_describe(g->c, rule_id, pol, sizeof(pol));
		snprintf(buf, n, "default-deny: isolated by %.191s, no rule allows", pol);
	} else if (rule_id && g) {
		zt_polc_rule_describe(g->c, rule_id, buf, n);
	} else if (rule_id) {
		snprintf(buf, n, "rule %u of generation %u", rule_id, gen);
	} else if (reason == ZT_REASON_NO_RULE || reason == ZT_REASON_DEFAULT_DENY) {
		/* No rule allowed it: the zero-trust default decided ("reason" says why). */
		snprintf(buf, n, "default-deny");
	} else {
		snprintf(buf, n, "%s", zt_tc_reason_name(reason));
	}
}

/* Every denial and audit-mode would-deny goes to the audit trail. */
static void audit_violation(struct zt_seg *s, const struct flow_rec *f)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], subj[160], sw[600], dw[600], rule[600],
		d[2400], ifn[100];
	int fam = f->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(fam, f->saddr, sa, sizeof(sa));
	inet_ntop(fam, f->daddr, da, sizeof(da));
	snprintf(subj, sizeof(subj), "%s %s:%u -> %s:%u", zt_pol_proto_name(f->proto), sa, f->sport,
		 da, f->dport);
	zt_json_escape(f->src_wl, sw, sizeof(sw));
	zt_json_escape(f->dst_wl, dw, sizeof(dw));
	zt_json_escape(f->rule, rule, sizeof(rule));
	zt_json_escape(f->ifname, ifn, sizeof(ifn));
	snprintf(
		d, sizeof(d),
		"{\"verdict\":\"%s\",\"reason\":\"%s\",\"rule\":\"%s\",\"protocol\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"direction\":\"%s\",\"src_identity\":%u,\"dst_identity\":%u,\"src_workload\":\"%s\",\"dst_workload\":\"%s\",\"interface\":\"%s\",\"revoked\":%s}",
		verdict_names[f->verdict], zt_tc_reason_name(f->reason), rule,
		zt_pol_proto_name(f->proto), sa, f->sport, da, f->dport,
		f->dir == ZT_DIR_INGRESS ? "ingress" : "egress", f->src_id, f->dst_id, sw, dw, ifn,
		f->revoked ? "true" : "false");
	s->audit(s->audit_ctx, "policy.violation", subj, d);
}

static void on_policy_event(void *ctx, const void *rec, size_t len)
{
	struct zt_seg *s = ctx;
	const struct zt_ev_policy *e = rec;
	const struct gen_rec *g = NULL;
	struct flow_rec *f;
	char local[sizeof(f->src_wl)], peer[sizeof(f->src_wl)];
	uint64_t now = zt_now_mono_ns();
	bool log_it;

	/* events.c passes only records of at least sizeof(*e). */
	pthread_mutex_lock(&s->lock);
	g = gen_find(s, e->gen);
	f = &s->ring[s->next_seq % FLOW_RING];
	memset(f, 0, sizeof(*f));
	f->seq = s->next_seq++;
	f->unix_ms = (uint64_t)zt_now_unix() * 1000; /* refined below */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		f->unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	f->verdict = e->verdict == ZT_VERDICT_DENY ? 1 : e->audit ? 2 : 0;
	f->reason = e->reason;
	f->dir = e->dir;
	f->proto = e->proto;
	f->family = e->family;
	f->revoked = e->revoked;
	memcpy(f->saddr, e->saddr, 16);
	memcpy(f->daddr, e->daddr, 16);
	f->sport = e->sport;
	f->dport = e->dport;
	name_identity(s, g, e->local_id, e->ep_id, local, sizeof(local));
	name_identity(s, g, e->peer_id, e->peer_ep_id, peer, sizeof(peer));
	if (e->dir == ZT_DIR_INGRESS) {
		f->src_id = e->peer_id;
		f->dst_id = e->local_id;
		snprintf(f->src_wl, sizeof(f->src_wl), "%s", peer);
		snprintf(f->dst_wl, sizeof(f->dst_wl), "%s", local);
	} else {
		f->src_id = e->local_id;
		f->dst_id = e->peer_id;
		snprintf(f->src_wl, sizeof(f->src_wl), "%s", local);
		snprintf(f->dst_wl, sizeof(f->dst_wl), "%s", peer);
	}
	describe_rule(g, e->gen, e->rule_id, e->reason, f->rule, sizeof(f->rule));
	if (!fx_ifname(s, (int)e->ifindex, f->ifname, sizeof(f->ifname)))
		zt_ifname(e->ifindex, f->ifname, sizeof(f->ifname));
	s->st.verdicts[f->verdict]++;
	if (e->revoked)
		s->st.revoked++;
	/* Denials and audits are logged at once, up to LOG_VERDICTS_PER_S a second. */
	log_it = f->verdict != 0;
	if (log_it) {
		if (now - s->log_window_ns >= 1000000000ULL) {
			if (s->log_suppressed)
				log_warn("flow_verdicts_suppressed", "count=%llu per_s=%d",
					 (unsigned long long)s->log_suppressed, LOG_VERDICTS_PER_S);
			s->log_window_ns = now;
			s->log_in_window = 0;
			s->log_suppressed = 0;
		}
		if (s->log_in_window++ >= LOG_VERDICTS_PER_S) {
			s->log_suppressed++;
			log_it = false;
		}
	}
	if (log_it) {
		char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], q[600];
		int fam = f->family == 6 ? AF_INET6 : AF_INET;

		inet_ntop(fam, f->saddr, sa, sizeof(sa));
		inet_ntop(fam, f->daddr, da, sizeof(da));
		log_warn(
			f->verdict == 1 ? "flow_denied" : "flow_audit",
			"proto=%s src=%s sport=%u dst=%s dport=%u src_workload=%s dst_workload=%s src_identity=%u dst_identity=%u direction=%s iface=%s revoked=%u reason=%s rule=%s",
			zt_pol_proto_name(f->proto), sa, f->sport, da, f->dport, f->src_wl,
			f->dst_wl, f->src_id, f->dst_id,
			f->dir == ZT_DIR_INGRESS ? "ingress" : "egress", f->ifname, f->revoked,
			zt_tc_reason_name(f->reason), zt_log_quote(q, sizeof(q), f->rule));
	}
	if (f->verdict != 0 && s->audit) {
		struct flow_rec v = *f;

		pthread_mutex_unlock(&s->lock);
		audit_violation(s, &v);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

int zt_seg_register_events(struct zt_seg *s, struct zt_events *ev)
{
	return zt_events_on(ev, ZT_EV_POLICY, on_policy_event, s);
}

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
	reload(s, "files-changed");
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
					endpoint_remove(s, ep, "interface-gone");
			} else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
				addrs = true;
			}
		}
	}
	if (addrs)
		refresh_host(s);
}

/* ---- flow records: the conntrack sweep (flowexp.c) with seg's names ---- */

static void fx_workload(void *ctx, uint32_t identity, uint32_t ep_id, char *buf, size_t n)
{
	struct zt_seg *s = ctx;

	name_identity(s, s->gens[0].c ? &s->gens[0] : NULL, identity, ep_id, buf, n);
}

static void fx_rule(void *ctx, uint32_t gen, uint32_t rule_id, uint8_t reason, char *buf, size_t n)
{
	struct zt_seg *s = ctx;

	describe_rule(gen_find(s, gen), gen, rule_id, reason, buf, n);
}

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

/* Endpoints saved by an earlier run: those whose interface is still there come back. */
static int restore(struct zt_seg *s)
{
	struct zt_ep_table saved = { 0 };
	char err[1024], q[1100], aside[4096 + 64];
	int r;

	r = zt_ep_table_load(&saved, s->state_path, err, sizeof(err));
	if (r < 0) {
		snprintf(aside, sizeof(aside), "%s.damaged", s->state_path);
		rename(s->state_path, aside);
		log_error("endpoint_state_unreadable", "error=%s moved_to=%s",
			  zt_log_quote(q, sizeof(q), err), aside);
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
		r = zt_identities_get(s->ids, &ep->ev.ls, ep->identity, &id);
		if (r == -EEXIST)
			r = zt_identities_get(s->ids, &ep->ev.ls, 0, &id);
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
			.workload = fx_workload,
			.rule = fx_rule,
			.ep_ifindex = fx_ep_ifindex,
			.is_endpoint = fx_is_endpoint,
			.ifname = fx_ifname,
		};

		r = zt_flowexp_open(cfg->bpffs, bpf_map__max_entries(dp->tc->maps.conntrack),
				    cfg->flows.active_timeout_ns, cfg->node, &names, &s->fx, err,
				    errlen);
		if (r < 0)
			goto fail;
	}
	restore(s);
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
	r = reload(s, "start");
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

		if (ep_map_put(s, ep) < 0 ||
		    zt_datapath_tc_attach(dp, ep->ifindex, err, errlen) < 0) {
			log_error("endpoint_reattach_failed", "endpoint=%s error=\"%s\"", ep->qname,
				  err);
			continue;
		}
		log_info("endpoint_restored", "endpoint=%s ifname=%s identity=%u", ep->qname,
			 ep->ifname, ep->identity);
	}
	s->st.endpoints = s->eps.n;
	save_state(s);
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
