// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pods of other nodes in the ipcache. They are compiled as endpoints
 * without an ep_id: their addresses get their label identity, selectors
 * match them as peers, and the policy and isolation entries made for their
 * identity as a local one are only used when a local endpoint shares it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "agent/log.h"
#include "agent/util.h"
#include "records/db.h"
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
	struct seg_remote *v;
	size_t n;

	pthread_mutex_lock(&s->lock);
	v = s->remote;
	n = s->n_remote;
	s->remote = NULL;
	s->n_remote = 0;
	pthread_mutex_unlock(&s->lock);
	remote_free_v(s, v, n);
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
	/* Under the lock: the ring-buffer thread names verdicts' peers from it. */
	pthread_mutex_lock(&s->lock);
	ov = s->remote;
	on = s->n_remote;
	s->remote = nv;
	s->n_remote = k;
	pthread_mutex_unlock(&s->lock);
	r = seg_republish(s, "k8s-pods", err, errlen);
	if (r < 0 && r != -EAGAIN) {
		/* The previous set stays, in the maps and here. */
		pthread_mutex_lock(&s->lock);
		s->remote = ov;
		s->n_remote = on;
		pthread_mutex_unlock(&s->lock);
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

/*
 * The Kubernetes policy objects last applied, kept in state_dir so that a
 * restarted agent has them in its very first generation: without them the
 * pods they isolate would be open (or the ones they allow cut) until the
 * watches have listed again.
 *
 *   ztagent-k8s-policies 1\n
 *   NAME LEN\n  LEN bytes of the object's JSON  \n     (per object)
 */
#define K8S_CACHE_MAGIC "ztagent-k8s-policies 1\n"
#define K8S_CACHE_MAX (64u << 20)

static void k8s_cache_path(const struct zt_seg *s, char *buf, size_t n)
{
	snprintf(buf, n, "%s/k8s-policies", s->cfg->state_dir);
}

int zt_seg_k8s_cache_save(struct zt_seg *s, const char *const *names, const char *const *docs,
			  const size_t *lens, size_t n)
{
	char path[4200], tmp[4300];
	FILE *f;
	int r = 0;

	k8s_cache_path(s, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fputs(K8S_CACHE_MAGIC, f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s %zu\n", names[i], lens[i]);
		fwrite(docs[i], 1, lens[i], f);
		fputc('\n', f);
	}
	if (fflush(f) || fsync(fileno(f)))
		r = -errno;
	if (fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

void seg_k8s_cache_load(struct zt_seg *s)
{
	struct zt_policy_set **sets = NULL;
	char path[4200], err[1024], q[1100], sha[65], *buf = NULL, *p, *end;
	size_t len = 0, n = 0, cap = 0;
	FILE *f;
	int r = 0;

	k8s_cache_path(s, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return; /* none yet */
	buf = malloc(K8S_CACHE_MAX + 1);
	if (buf)
		len = fread(buf, 1, K8S_CACHE_MAX + 1, f);
	fclose(f);
	if (!buf || len > K8S_CACHE_MAX || len < strlen(K8S_CACHE_MAGIC) ||
	    memcmp(buf, K8S_CACHE_MAGIC, strlen(K8S_CACHE_MAGIC))) {
		log_warn("k8s_policy_cache_ignored", "path=%s why=\"%s\"", path,
			 !buf ? "out of memory" : "not a cache this version wrote, or too big");
		goto out;
	}
	buf[len] = '\0';
	p = buf + strlen(K8S_CACHE_MAGIC);
	end = buf + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *sp, *lend;
		unsigned long long dl;

		if (!nl)
			goto bad;
		*nl = '\0';
		sp = strrchr(p, ' ');
		if (!sp || strncmp(p, "k8s:", 4))
			goto bad;
		*sp = '\0';
		errno = 0;
		dl = strtoull(sp + 1, &lend, 10);
		if (errno || *lend || dl > (unsigned long long)(end - nl - 1) || nl[1 + dl] != '\n')
			goto bad;
		nl[1 + dl] = '\0';
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			struct zt_policy_set **v = realloc(sets, nc * sizeof(*v));

			if (!v)
				goto bad;
			sets = v;
			cap = nc;
		}
		r = zt_policy_parse_buf(nl + 1, dl, p, &sets[n], err, sizeof(err));
		if (r < 0)
			log_warn("k8s_policy_cache_skipped", "object=%s error=%s", p,
				 zt_log_quote(q, sizeof(q), err));
		else
			n++;
		p = nl + 2 + dl;
	}
	zt_sha256_hex(buf, len, sha);
	/* Before policy.dir has loaded: they wait there and enter the first generation. */
	r = zt_seg_set_k8s_policies(s, sets, n, sha, err, sizeof(err));
	n = 0;
	if (r == 0)
		log_info("k8s_policy_cache_loaded",
			 "path=%s why=\"in force until the watches have listed again\"", path);
	goto out;
bad:
	log_warn("k8s_policy_cache_ignored", "path=%s why=\"malformed at byte %td\"", path,
		 p - buf);
out:
	for (size_t i = 0; i < n; i++)
		zt_policy_set_free(sets[i]);
	free(sets);
	free(buf);
}
