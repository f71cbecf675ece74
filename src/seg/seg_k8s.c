// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pods of other nodes in the ipcache. They are compiled as endpoints
 * without an ep_id: their addresses get their label identity, selectors
 * match them as peers, and the policy and isolation entries made for their
 * identity as a local one are only used when a local endpoint shares it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/util.h"
#include "seg/seg_int.h"

static void remote_free(struct zt_seg *s, struct seg_remote *r)
{
	if (r->identity >= ZT_ID_FIRST_LABELS)
		zt_identities_put(s->ids, r->identity);
	zt_ep_meta_free(&r->meta);
	free(r->ns);
	free(r->qname);
}

static void remote_free_v(struct zt_seg *s, struct seg_remote *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		remote_free(s, &v[i]);
	free(v);
}

void seg_remote_free_all(struct zt_seg *s)
{
	remote_free_v(s, s->remote, s->n_remote);
	s->remote = NULL;
	s->n_remote = 0;
}

static bool local_addr(const struct zt_seg *s, const struct zt_ep_addr *a)
{
	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];

		for (size_t j = 0; j < ep->n_addrs; j++)
			if (ep->addrs[j].family == a->family &&
			    !memcmp(ep->addrs[j].addr, a->addr, a->family == AF_INET ? 4 : 16))
				return true;
	}
	return false;
}

size_t seg_remote_polc(const struct zt_seg *s, struct zt_polc_endpoint *out)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_remote; i++) {
		const struct seg_remote *r = &s->remote[i];
		bool clash = false;

		/* A pod that moved here (or a stale address): the local endpoint is the truth. */
		for (size_t j = 0; j < r->n_addrs && !clash; j++)
			clash = local_addr(s, &r->addrs[j]);
		if (clash)
			continue;
		out[n++] = (struct zt_polc_endpoint){ .ep_id = 0,
						      .identity = r->identity,
						      .ev = &r->ev };
	}
	return n;
}

static int remote_make(struct zt_seg *s, const struct zt_seg_remote_pod *p, struct seg_remote *r,
		       char *err, size_t errlen)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!p->meta.ns || !p->meta.name || !p->n_addrs || p->n_addrs > ZT_SEG_REMOTE_MAX_ADDRS) {
		zt_seterr(err, errlen, "no namespace, name or address");
		return -EINVAL;
	}
	rc = zt_ep_meta_from_pod(p->meta.ns, &p->meta, &r->meta, err, errlen);
	if (rc < 0)
		return rc;
	r->ns = strdup(p->meta.ns);
	if (!r->ns || asprintf(&r->qname, "%s/%s", p->meta.ns, p->meta.name) < 0) {
		r->qname = NULL;
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_addrs; i++) {
		if (p->addrs[i].family != AF_INET && p->addrs[i].family != AF_INET6) {
			zt_seterr(err, errlen, "address %zu: not IPv4 or IPv6", i);
			return -EINVAL;
		}
		r->addrs[r->n_addrs++] = p->addrs[i];
	}
	r->ev = (struct zt_eval_endpoint){
		.name = r->qname + strlen(r->ns) + 1,
		.ls = { .namespace = r->ns,
			.labels = { r->meta.labels, r->meta.n_labels },
			.ns_labels = { r->meta.ns_labels, r->meta.n_ns_labels } },
		.addrs = r->addrs,
		.n_addrs = r->n_addrs,
		.ports = r->meta.ports,
		.n_ports = r->meta.n_ports,
	};
	rc = zt_identities_get(s->ids, &r->ev.ls, 0, &r->identity);
	if (rc < 0) {
		r->identity = 0;
		zt_seterr(err, errlen, "no identity: %s", strerror(-rc));
	}
	return rc;
}

int zt_seg_set_remote_pods(struct zt_seg *s, const struct zt_seg_remote_pod *v, size_t n, char *err,
			   size_t errlen)
{
	struct seg_remote *nv = calloc(n ? n : 1, sizeof(*nv)), *ov;
	size_t k = 0, skipped = 0, on;
	char e1[512], q[600];
	int r;

	if (!nv) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		r = remote_make(s, &v[i], &nv[k], e1, sizeof(e1));
		if (r == 0) {
			k++;
			continue;
		}
		remote_free(s, &nv[k]);
		if (r == -ENOMEM) {
			remote_free_v(s, nv, k);
			zt_seterr(err, errlen, "out of memory");
			return r;
		}
		skipped++;
		log_warn("k8s_remote_pod_skipped", "pod=%s/%s error=%s",
			 v[i].meta.ns ? v[i].meta.ns : "?", v[i].meta.name ? v[i].meta.name : "?",
			 zt_log_quote(q, sizeof(q), e1));
	}
	ov = s->remote;
	on = s->n_remote;
	s->remote = nv;
	s->n_remote = k;
	r = seg_republish(s, "k8s-pods", err, errlen);
	if (r < 0 && r != -EAGAIN) {
		/* The previous set stays, in the maps and here. */
		s->remote = ov;
		s->n_remote = on;
		remote_free_v(s, nv, k);
		return r;
	}
	remote_free_v(s, ov, on);
	log_debug("k8s_remote_pods", "pods=%zu skipped=%zu gen=%llu", k, skipped,
		  (unsigned long long)s->st.gen);
	return 0;
}

size_t zt_seg_remote_count(struct zt_seg *s)
{
	return s->n_remote;
}
