// SPDX-License-Identifier: GPL-2.0-only
/*
 * The mTLS peers learned from the cluster's Nodes (see daemon_peers.h).
 *
 * Each node has the mapping it wants (the last Node object seen) and the
 * one applied (the last good). They differ while the wanted CIDRs overlap
 * another node's: two agents cannot both speak for one pod address, so the
 * change is refused, named in the log with the other node, and tried again
 * whenever a node goes away or changes (the other may be the one to move).
 *
 * The datapath's mtls_remote_v4/v6 (strict mode: which destinations are
 * pods of other nodes) get each other node's CIDRs when applied and keep
 * them after a change or a delete: a strict-mode flow to a CIDR no agent
 * speaks for any more is still steered and then refused (no_route), never
 * sent in clear. This node's own CIDRs are taken out of them.
 *
 * The agents meet over one address family whatever their pods speak (the
 * tunnel's frame carries the pod addresses, the tunnel listens on both):
 * IPv4 where this node has an IPv4 InternalIP (or is not known yet), IPv6
 * on an IPv6-only node. A node's agent is its first InternalIP of that
 * family, else its first of the other (which then fails to connect, a
 * refusal, rather than no route at all).
 *
 * Pods outside every node's podCIDRs (a CNI with its own IPAM pools) are
 * known by address from the pod watch, both families; their addresses of
 * other nodes go into mtls_remote_v4/v6 as /32 and /128 (strict mode
 * covers them too) while the pod watch has them, and leave when it no
 * longer does (the address may be reused by anything), also when that
 * happened while the agent was away (pods_sweep_stale).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/cbor.h"
#include "agent/daemon_int.h"
#include "agent/daemon_peers.h"
#include "agent/log.h"
#include "agent/util.h"
#include "tc_endpoint.skel.h"

struct mapping {
	struct zt_cidr cidrs[ZT_K8S_MAX_NODE_CIDRS];
	size_t n_cidrs;
	struct zt_cidr addrs[ZT_K8S_MAX_NODE_ADDRS]; /* InternalIPs */
	size_t n_addrs;
};

struct pnode {
	char name[ZT_K8S_NODE_NAME_MAX];
	bool self, applied; /* applied: have is in force */
	struct mapping want, have;
	int64_t since; /* unix seconds of the last applied change */
	char problem[512]; /* why want is not applied; "" when it is */
};

/* A pod address of another node, for pods outside every node's podCIDRs. */
struct pod_route {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	char *node;
};

struct zt_peers_pods {
	struct pod_route *v;
	size_t n, cap;
	bool nomem;
};

struct zt_peers {
	struct zt_daemon *d;
	/*
	 * Held by the loop while it changes v or pods, and by the lookups,
	 * which run on the tunnel's relay thread (steered connections). The
	 * loop's own reads need no lock: it is the only writer.
	 */
	pthread_mutex_t lock;
	struct pnode *v;
	size_t n, cap;
	uint64_t changes, overlaps;
	struct zt_peers_pods pods; /* sorted by addr */
	bool pods_seen; /* a pod list was committed since start */
};

static void pods_free(struct zt_peers_pods *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].node);
	free(b->v);
	memset(b, 0, sizeof(*b));
}

struct zt_peers_pods *zt_peers_pods_new(void)
{
	return calloc(1, sizeof(struct zt_peers_pods));
}

void zt_peers_pods_add(struct zt_peers_pods *b, const struct zt_k8s_object *o)
{
	for (size_t i = 0; b && !b->nomem && i < o->pod.n_ips; i++) {
		int fam = o->pod.ips[i].family;

		if (fam != AF_INET && fam != AF_INET6)
			continue;
		if (zt_grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v)) < 0 ||
		    !(b->v[b->n].node = strdup(o->pod.node))) {
			b->nomem = true;
			return;
		}
		b->v[b->n].family = fam;
		memset(b->v[b->n].addr, 0, sizeof(b->v[b->n].addr));
		memcpy(b->v[b->n].addr, o->pod.ips[i].addr, fam == AF_INET ? 4 : 16);
		b->n++;
	}
}

static int route_cmp(const void *x, const void *y)
{
	const struct pod_route *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static const char *route_str(const struct pod_route *r, char *buf, size_t n)
{
	inet_ntop(r->family, r->addr, buf, (socklen_t)n);
	return buf;
}

static void pods_datapath(struct zt_peers *p, const struct zt_peers_pods *old,
			  const struct zt_peers_pods *now);
static void pods_sweep_stale(struct zt_peers *p, const struct zt_peers_pods *now);

void zt_peers_pods_commit(struct zt_peers *p, struct zt_peers_pods *b)
{
	if (!b)
		return;
	if (!p || b->nomem) {
		if (p)
			log_error("mtls_peer_pods_failed", "error=\"out of memory\" kept=previous");
		pods_free(b);
		free(b);
		return;
	}
	qsort(b->v, b->n, sizeof(*b->v), route_cmp);
	if (!p->pods_seen) {
		pods_sweep_stale(p, b);
		p->pods_seen = true;
	}
	pods_datapath(p, &p->pods, b);
	pthread_mutex_lock(&p->lock);
	pods_free(&p->pods);
	p->pods = *b;
	pthread_mutex_unlock(&p->lock);
	free(b);
}

int zt_peers_new(struct zt_daemon *d, struct zt_peers **out)
{
	struct zt_peers *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->d = d;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void zt_peers_free(struct zt_peers *p)
{
	if (!p)
		return;
	pods_free(&p->pods);
	free(p->v);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

size_t zt_peers_count(const struct zt_peers *p)
{
	return p ? p->n : 0;
}

static bool overlaps(const struct zt_cidr *a, const struct zt_cidr *b)
{
	const struct zt_cidr *wide = a->prefixlen <= b->prefixlen ? a : b;
	const struct zt_cidr *narrow = wide == a ? b : a;

	return a->family == b->family && zt_cidr_contains(wide, narrow->addr);
}

static bool mapping_eq(const struct mapping *a, const struct mapping *b)
{
	return a->n_cidrs == b->n_cidrs && a->n_addrs == b->n_addrs &&
	       !memcmp(a->cidrs, b->cidrs, a->n_cidrs * sizeof(a->cidrs[0])) &&
	       !memcmp(a->addrs, b->addrs, a->n_addrs * sizeof(a->addrs[0]));
}

/*
 * The family the agents meet over (see the top of this file): IPv6 when
 * this node is known and has IPv6 InternalIPs and no IPv4 one.
 */
static int meet_family(const struct zt_peers *p)
{
	for (size_t i = 0; p && i < p->n; i++) {
		const struct pnode *pn = &p->v[i];
		const struct mapping *m = pn->applied ? &pn->have : &pn->want;
		bool v4 = false, v6 = false;

		if (!pn->self)
			continue;
		for (size_t j = 0; j < m->n_addrs; j++) {
			v4 |= m->addrs[j].family == AF_INET;
			v6 |= m->addrs[j].family == AF_INET6;
		}
		return v6 && !v4 ? AF_INET6 : AF_INET;
	}
	return AF_INET;
}

/* The node's agent: its first InternalIP of the meeting family, else its first. */
static const struct zt_cidr *agent_of(const struct zt_peers *p, const struct mapping *m)
{
	int fam = meet_family(p);

	for (size_t i = 0; i < m->n_addrs; i++)
		if (m->addrs[i].family == fam)
			return &m->addrs[i];
	return m->n_addrs ? &m->addrs[0] : NULL;
}

static void agent_set(struct zt_mtls_agent *out, const struct zt_cidr *ag)
{
	memset(out, 0, sizeof(*out));
	out->family = (uint8_t)ag->family;
	memcpy(out->addr, ag->addr, ag->family == AF_INET ? 4 : 16);
}

static const char *cidr_str(const struct zt_cidr *c, char *buf, size_t n)
{
	if (zt_cidr_format(c, buf, n) < 0)
		snprintf(buf, n, "?");
	return buf;
}

static const char *addr_str(const struct zt_cidr *c, char *buf, size_t n)
{
	if (!c) {
		snprintf(buf, n, "none");
		return buf;
	}
	inet_ntop(c->family, c->addr, buf, (socklen_t)n);
	return buf;
}

/* The node's CIDRs into the datapath's remote sets, or out of them for this node. */
static void datapath_mark(struct zt_peers *p, const struct pnode *pn)
{
	struct tc_endpoint *tc = p->d->dp ? p->d->dp->tc : NULL;
	uint32_t one = 1;

	if (!tc)
		return;
	for (size_t i = 0; i < pn->have.n_cidrs; i++) {
		const struct zt_cidr *cc = &pn->have.cidrs[i];
		struct zt_ip4_key k4 = { .prefixlen = cc->prefixlen };
		struct zt_ip6_key k6 = { .prefixlen = cc->prefixlen };
		bool v4 = cc->family == AF_INET;
		int fd = bpf_map__fd(v4 ? tc->maps.mtls_remote_v4 : tc->maps.mtls_remote_v6);
		const void *k = v4 ? (const void *)&k4 : (const void *)&k6;
		char c[ZT_CIDR_STRLEN];
		int r;

		if (v4)
			memcpy(k4.addr, cc->addr, 4);
		else
			memcpy(k6.addr, cc->addr, 16);
		r = pn->self ? bpf_map_delete_elem(fd, k) :
			       bpf_map_update_elem(fd, k, &one, BPF_ANY);
		if (r < 0 && !(pn->self && errno == ENOENT))
			log_warn(
				"mtls_peer_datapath_failed",
				"node=%s cidr=%s error=\"%s\" why=\"strict mode may not steer this node's pods\"",
				pn->name, cidr_str(&pn->have.cidrs[i], c, sizeof(c)),
				strerror(errno));
	}
}

/*
 * want -> have unless it overlaps another node's applied CIDRs. quiet: a
 * retry of a change already reported (not logged or counted again).
 */
static int try_apply(struct zt_peers *p, struct pnode *pn, bool quiet)
{
	char c1[ZT_CIDR_STRLEN], c2[ZT_CIDR_STRLEN], a[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < p->n; i++) {
		const struct pnode *o = &p->v[i];

		if (o == pn || !o->applied)
			continue;
		for (size_t j = 0; j < pn->want.n_cidrs; j++)
			for (size_t k = 0; k < o->have.n_cidrs; k++) {
				if (!overlaps(&pn->want.cidrs[j], &o->have.cidrs[k]))
					continue;
				snprintf(pn->problem, sizeof(pn->problem),
					 "pod CIDR %s overlaps node %s's %s",
					 cidr_str(&pn->want.cidrs[j], c1, sizeof(c1)), o->name,
					 cidr_str(&o->have.cidrs[k], c2, sizeof(c2)));
				if (quiet)
					return -EEXIST;
				p->overlaps++;
				log_error(
					"mtls_peer_overlap",
					"node=%s cidr=%s other_node=%s other_cidr=%s kept=%s action=\"fix the nodes' spec.podCIDRs: one pod address, one agent\"",
					pn->name, c1, o->name, c2,
					pn->applied ? "previous" : "none");
				return -EEXIST;
			}
	}
	pn->have = pn->want;
	pn->applied = true;
	pn->problem[0] = '\0';
	pn->since = (int64_t)zt_now_unix();
	p->changes++;
	datapath_mark(p, pn);
	for (size_t j = 0; j < pn->have.n_cidrs; j++)
		log_info("mtls_peer_set", "node=%s cidr=%s agent=%s self=%d", pn->name,
			 cidr_str(&pn->have.cidrs[j], c1, sizeof(c1)),
			 addr_str(agent_of(p, &pn->have), a, sizeof(a)), pn->self);
	if (!pn->have.n_cidrs)
		log_info("mtls_peer_set", "node=%s cidr=none self=%d", pn->name, pn->self);
	return 0;
}

/* After a node went away or moved: the refused changes may fit now. */
static void retry_pending(struct zt_peers *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].problem[0])
			try_apply(p, &p->v[i], true);
}

static struct pnode *find(struct zt_peers *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].name, name))
			return &p->v[i];
	return NULL;
}

void zt_peers_node_set(struct zt_peers *p, const struct zt_k8s_object *o, bool self)
{
	struct pnode *pn;
	struct mapping m = { 0 };

	if (!p)
		return;
	if (strlen(o->name) >= sizeof(pn->name)) {
		log_warn("mtls_peer_skipped", "node=%.64s... why=\"name longer than a node name\"",
			 o->name);
		return;
	}
	m.n_cidrs = o->node.n_pod_cidrs;
	memcpy(m.cidrs, o->node.pod_cidrs, m.n_cidrs * sizeof(m.cidrs[0]));
	m.n_addrs = o->node.n_internal_ips;
	memcpy(m.addrs, o->node.internal_ips, m.n_addrs * sizeof(m.addrs[0]));
	pthread_mutex_lock(&p->lock);
	pn = find(p, o->name);
	if (!pn) {
		if (zt_grow((void **)&p->v, &p->cap, p->n + 1, sizeof(*p->v)) < 0) {
			pthread_mutex_unlock(&p->lock);
			log_error("mtls_peer_failed", "node=%s error=\"out of memory\"", o->name);
			return;
		}
		pn = &p->v[p->n++];
		memset(pn, 0, sizeof(*pn));
		snprintf(pn->name, sizeof(pn->name), "%s", o->name);
	} else if (pn->applied && !pn->problem[0] && pn->self == self &&
		   mapping_eq(&pn->have, &m)) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pn->self = self;
	pn->want = m;
	if (m.n_cidrs && !self && !agent_of(p, &m))
		log_warn(
			"mtls_peer_no_address",
			"node=%s why=\"no InternalIP in status.addresses: its pods are unreachable through the tunnel (refused, no_route)\"",
			o->name);
	if (try_apply(p, pn, false) == 0)
		retry_pending(p);
	pthread_mutex_unlock(&p->lock);
}

void zt_peers_node_del(struct zt_peers *p, const char *name)
{
	struct pnode *pn = p ? find(p, name) : NULL;

	if (!pn)
		return;
	log_info("mtls_peer_deleted", "node=%s cidrs=%zu self=%d", name, pn->have.n_cidrs,
		 pn->self);
	pthread_mutex_lock(&p->lock);
	*pn = p->v[--p->n];
	p->changes++;
	retry_pending(p);
	pthread_mutex_unlock(&p->lock);
}

/*
 * No node's podCIDR holds addr (of family): the pod at addr, if the pod
 * watch knows one on another node (CNIs whose IPAM pools are not the
 * nodes' podCIDRs), and that node's agent.
 */
static int pod_lookup(struct zt_peers *p, int family, const uint8_t *addr,
		      const struct zt_cidr **agent)
{
	struct pod_route key = { .family = family };
	const struct pod_route *r;
	const struct pnode *pn;

	memcpy(key.addr, addr, family == AF_INET ? 4 : 16);
	r = bsearch(&key, p->pods.v, p->pods.n, sizeof(key), route_cmp);
	pn = r ? find(p, r->node) : NULL;
	*agent = pn && pn->applied ? agent_of(p, &pn->have) : NULL;
	return *agent && !pn->self ? 0 : -ENOENT;
}

/*
 * The node whose applied pod CIDR of family holds addr: 0 with its CIDR
 * and agent; -ENOENT when it is this node or has no agent; 1 when no node
 * holds it. (CIDRs applied never overlap: the first is the one.)
 */
static int node_holding(const struct zt_peers *p, int family, const uint8_t *addr,
			const struct zt_cidr **cidr, const struct zt_cidr **agent)
{
	for (size_t i = 0; p && i < p->n; i++) {
		const struct pnode *pn = &p->v[i];

		if (!pn->applied)
			continue;
		for (size_t j = 0; j < pn->have.n_cidrs; j++) {
			const struct zt_cidr *c = &pn->have.cidrs[j];

			if (c->family != family || !zt_cidr_contains(c, addr))
				continue;
			*agent = agent_of(p, &pn->have);
			if (pn->self || !*agent)
				return -ENOENT;
			*cidr = c;
			return 0;
		}
	}
	return 1;
}

int daemon_peers_lookup4(struct zt_daemon *d, uint32_t addr, struct zt_mtls_peer *out)
{
	struct zt_peers *p = daemon_k8s_peers(d);
	const struct zt_cidr *c = NULL, *ag;
	int r;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	r = node_holding(p, AF_INET, (const uint8_t *)&addr, &c, &ag);
	if (r == 1)
		r = pod_lookup(p, AF_INET, (const uint8_t *)&addr, &ag);
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		if (c)
			memcpy(&out->net, c->addr, 4);
		else
			out->net = addr;
		agent_set(&out->agent, ag);
		out->plen = c ? c->prefixlen : 32;
	}
	pthread_mutex_unlock(&p->lock);
	return r < 0 ? r : 0;
}

int daemon_peers_lookup6(struct zt_daemon *d, const uint8_t *addr, struct zt_mtls_peer6 *out)
{
	struct zt_peers *p = daemon_k8s_peers(d);
	const struct zt_cidr *c = NULL, *ag;
	int r;

	if (!p)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	r = node_holding(p, AF_INET6, addr, &c, &ag);
	if (r == 1)
		r = pod_lookup(p, AF_INET6, addr, &ag);
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		memcpy(out->net, c ? c->addr : addr, 16);
		agent_set(&out->agent, ag);
		out->plen = c ? c->prefixlen : 128;
	}
	pthread_mutex_unlock(&p->lock);
	return r < 0 ? r : 0;
}

/*
 * Strict mode for pods outside every podCIDR: the other nodes' pod
 * addresses of now into the datapath's remote sets, those of old that now
 * lacks out of them (a /32 or /128 key: a node's podCIDR entry that holds
 * the address is another key and stays).
 */
static void pods_datapath(struct zt_peers *p, const struct zt_peers_pods *old,
			  const struct zt_peers_pods *now)
{
	struct tc_endpoint *tc = p->d->dp ? p->d->dp->tc : NULL;
	char a[INET6_ADDRSTRLEN];
	uint32_t one = 1;

	if (!tc)
		return;
	for (int pass = 0; pass < 2; pass++) {
		const struct zt_peers_pods *from = pass ? now : old, *other = pass ? old : now;

		for (size_t i = 0; i < from->n; i++) {
			const struct pod_route *r = &from->v[i];
			bool v4 = r->family == AF_INET;
			struct zt_ip4_key k4 = { .prefixlen = 32 };
			struct zt_ip6_key k6 = { .prefixlen = 128 };
			int fd =
				bpf_map__fd(v4 ? tc->maps.mtls_remote_v4 : tc->maps.mtls_remote_v6);
			const void *k = v4 ? (const void *)&k4 : (const void *)&k6;
			int e;

			if (bsearch(r, other->v, other->n, sizeof(*r), route_cmp))
				continue; /* in both: as it is */
			if (v4)
				memcpy(k4.addr, r->addr, 4);
			else
				memcpy(k6.addr, r->addr, 16);
			e = pass ? bpf_map_update_elem(fd, k, &one, BPF_ANY) :
				   bpf_map_delete_elem(fd, k);
			if (e < 0 && !(!pass && errno == ENOENT))
				log_warn(
					"mtls_peer_datapath_failed",
					"node=%s pod_address=%s error=\"%s\" why=\"strict mode may not steer this pod\"",
					r->node, route_str(r, a, sizeof(a)), strerror(errno));
		}
	}
}

/* A full-length CIDR (a /32 or /128) that a node's applied podCIDRs or mtls.peers name. */
static bool full_cidr_held(const struct zt_peers *p, int family, const uint8_t *addr)
{
	unsigned int full = family == AF_INET ? 32 : 128;
	size_t alen = family == AF_INET ? 4 : 16;
	const struct zt_config *cfg = &p->d->cfg;

	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->v[i].have.n_cidrs; j++) {
			const struct zt_cidr *c = &p->v[i].have.cidrs[j];

			if (c->family == family && c->prefixlen == full &&
			    !memcmp(c->addr, addr, alen))
				return true;
		}
	for (unsigned int i = 0; i < cfg->mtls.n_peers; i++) {
		struct zt_mtls_peer m4;
		struct zt_mtls_peer6 m6;

		if (family == AF_INET && zt_mtls_peer_parse(cfg->mtls.peers[i], &m4) == 0 &&
		    m4.plen == 32 && !memcmp(&m4.net, addr, 4))
			return true;
		if (family == AF_INET6 && zt_mtls_peer6_parse(cfg->mtls.peers[i], &m6) == 0 &&
		    m6.plen == 128 && !memcmp(m6.net, addr, 16))
			return true;
	}
	return false;
}

/*
 * The first pod list since start: the strict-mode sets are pinned and
 * outlive the agent, so a pod deleted while it was away left its /32 or
 * /128 behind (an address that may now be anything's). Such an entry that
 * no pod of the list, no node's podCIDR and no mtls.peers entry holds
 * leaves; shorter entries (nodes' CIDRs, kept on purpose) are not touched.
 */
static void pods_sweep_stale(struct zt_peers *p, const struct zt_peers_pods *now)
{
	struct tc_endpoint *tc = p->d->dp ? p->d->dp->tc : NULL;
	size_t removed = 0, failed = 0;

	if (!tc)
		return;
	for (int v4 = 1; v4 >= 0; v4--) {
		int fd = bpf_map__fd(v4 ? tc->maps.mtls_remote_v4 : tc->maps.mtls_remote_v6);
		int family = v4 ? AF_INET : AF_INET6;
		unsigned int full = v4 ? 32 : 128;
		struct zt_ip6_key key, next; /* the larger key; an IPv4 one uses its start */
		struct zt_ip6_key *stale = NULL;
		size_t n = 0, cap = 0;
		void *prev = NULL;

		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			struct pod_route r = { .family = family };

			key = next;
			prev = &key;
			if (key.prefixlen != full)
				continue;
			memcpy(r.addr, key.addr, v4 ? 4 : 16);
			if (bsearch(&r, now->v, now->n, sizeof(r), route_cmp) ||
			    full_cidr_held(p, family, key.addr))
				continue;
			if (zt_grow((void **)&stale, &cap, n + 1, sizeof(*stale)) < 0) {
				failed++;
				break;
			}
			stale[n++] = key;
		}
		for (size_t i = 0; i < n; i++) {
			char a[INET6_ADDRSTRLEN];

			if (bpf_map_delete_elem(fd, &stale[i]) == 0 || errno == ENOENT) {
				removed++;
				continue;
			}
			failed++;
			log_warn(
				"mtls_peer_datapath_failed",
				"pod_address=%s error=\"%s\" why=\"a pod deleted while the agent was away stays in the strict-mode set\"",
				inet_ntop(family, stale[i].addr, a, sizeof(a)) ? a : "?",
				strerror(errno));
		}
		free(stale);
	}
	if (removed || failed)
		log_info("mtls_peer_pods_swept",
			 "removed=%zu failed=%zu why=\"pods deleted while the agent was away\"",
			 removed, failed);
}

static int put_peer(cbor_item_t *a, const char *source, const char *node, const char *cidr,
		    const char *agent, unsigned int port, bool self, const char *problem)
{
	cbor_item_t *x = zt_cbor_map();

	if (!x)
		return -ENOMEM;
	if (zt_cbor_put_str(x, "source", source) || zt_cbor_put_str(x, "node", node) ||
	    zt_cbor_put_str(x, "cidr", cidr) || zt_cbor_put_str(x, "agent", agent) ||
	    zt_cbor_put_u64(x, "port", port) || zt_cbor_put_bool(x, "self", self) ||
	    zt_cbor_put_str(x, "problem", problem)) {
		cbor_decref(&x);
		return -ENOMEM;
	}
	return zt_cbor_push(a, x);
}

int daemon_peers_status(struct zt_daemon *d, cbor_item_t *top)
{
	struct zt_peers *p = daemon_k8s_peers(d);
	cbor_item_t *a = zt_cbor_array();
	char c[ZT_CIDR_STRLEN], ag[INET6_ADDRSTRLEN];
	int r;

	if (!a || zt_cbor_put(top, "peers", a))
		return -ENOMEM;
	/* mtls.peers first: they win over the nodes' for the addresses they cover. */
	for (unsigned int i = 0; i < d->cfg.mtls.n_peers; i++) {
		struct zt_mtls_peer mp;
		struct zt_mtls_peer6 mp6;
		struct zt_cidr cc = { 0 };
		uint16_t port;

		if (zt_mtls_peer_parse(d->cfg.mtls.peers[i], &mp) == 0) {
			cc.family = AF_INET;
			cc.prefixlen = mp.plen;
			memcpy(cc.addr, &mp.net, 4);
			inet_ntop(mp.agent.family, mp.agent.addr, ag, sizeof(ag));
			port = mp.port;
		} else if (zt_mtls_peer6_parse(d->cfg.mtls.peers[i], &mp6) == 0) {
			cc.family = AF_INET6;
			cc.prefixlen = mp6.plen;
			memcpy(cc.addr, mp6.net, 16);
			inet_ntop(mp6.agent.family, mp6.agent.addr, ag, sizeof(ag));
			port = mp6.port;
		} else {
			continue;
		}
		r = put_peer(a, "config", "", cidr_str(&cc, c, sizeof(c)), ag,
			     port ? port : d->cfg.mtls.port, false, "");
		if (r < 0)
			return r;
	}
	for (size_t i = 0; p && i < p->n; i++) {
		const struct pnode *pn = &p->v[i];
		const struct mapping *m = pn->applied ? &pn->have : &pn->want;

		for (size_t j = 0; j < m->n_cidrs; j++) {
			r = put_peer(a, "k8s", pn->name, cidr_str(&m->cidrs[j], c, sizeof(c)),
				     addr_str(agent_of(p, m), ag, sizeof(ag)), d->cfg.mtls.port,
				     pn->self, pn->problem);
			if (r < 0)
				return r;
		}
		if (!m->n_cidrs) {
			r = put_peer(a, "k8s", pn->name, "",
				     addr_str(agent_of(p, m), ag, sizeof(ag)), d->cfg.mtls.port,
				     pn->self, pn->problem[0] ? pn->problem : "no podCIDR");
			if (r < 0)
				return r;
		}
	}
	return zt_cbor_put_u64(top, "peer_pod_addresses", p ? p->pods.n : 0) ||
			       zt_cbor_put_u64(top, "peer_overlaps", p ? p->overlaps : 0) ||
			       zt_cbor_put_u64(top, "peer_changes", p ? p->changes : 0) ?
		       -ENOMEM :
		       0;
}
