// SPDX-License-Identifier: GPL-2.0-only
/*
 * Generated policies in the store: the ztagent.io/ annotations of
 * namespaces and endpoints (set by `ztctl namespace annotate` / `ztctl
 * endpoint annotate`, or by the Kubernetes watch), kept in
 * state_dir/annotations, and the policies polgen.c makes of them, a part
 * of the store's union beside policy.dir and the feeds' advisories
 * (origin "generated"). Recomputed whenever an annotation or an endpoint
 * changes; identical output is a no-op.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/log.h"
#include "agent/util.h"
#include "records/auditq.h"
#include "seg/polgen.h"
#include "seg/seg_int.h"

#define ANN_FILE "annotations"
#define ANN_FILE_MAX (16u << 20)
#define ANN_MAX 65536

static void ann_free(struct seg_ann *a)
{
	free(a->ns);
	free(a->pod);
	free(a->key);
	free(a->value);
}

static struct seg_ann *ann_find(struct zt_seg *s, const char *ns, const char *pod, const char *key)
{
	for (size_t i = 0; i < s->n_ann; i++)
		if (!strcmp(s->ann[i].ns, ns) && !strcmp(s->ann[i].pod, pod) &&
		    !strcmp(s->ann[i].key, key))
			return &s->ann[i];
	return NULL;
}

static const char *ann_value(struct zt_seg *s, const char *ns, const char *pod, const char *key)
{
	const struct seg_ann *a = ann_find(s, ns, pod, key);

	return a ? a->value : NULL;
}

/* Names, key and value as an operator or the watch gives them. */
static int ann_check(const char *ns, const char *pod, const char *key, const char *value, char *err,
		     size_t errlen)
{
	const char *why;
	int r;

	if (zt_dns_label_check(ns, &why) < 0) {
		zt_seterr(err, errlen, "namespace '%.80s': %s", ns, why);
		return -EINVAL;
	}
	if (*pod && zt_dns_subdomain_check(pod, &why) < 0) {
		zt_seterr(err, errlen, "endpoint '%.80s': %s", pod, why);
		return -EINVAL;
	}
	if (!value)
		return 0;
	if (strchr(value, '\t') || strchr(value, '\n')) {
		zt_seterr(err, errlen, "%s: a value may not hold tabs or newlines", key);
		return -EINVAL;
	}
	r = zt_gen_annotation_check(key, value, !*pod, err, errlen);
	if (r == -ENOENT) {
		zt_seterr(err, errlen,
			  "'%.80s': only ztagent.io/ annotations (%s, %s) are kept by the agent",
			  key, ZT_ANN_ISOLATION, ZT_ANN_TALKS_TO);
		return -EINVAL;
	}
	return r;
}

/* Stores (value) or removes (value NULL) one annotation, unchecked. */
static int ann_put(struct zt_seg *s, const char *ns, const char *pod, const char *key,
		   const char *value, bool *changed)
{
	struct seg_ann *a = ann_find(s, ns, pod, key), n = { 0 }, *v;

	if (!value) {
		if (a) {
			ann_free(a);
			*a = s->ann[--s->n_ann];
			*changed = true;
		}
		return 0;
	}
	if (a) {
		char *d;

		if (!strcmp(a->value, value))
			return 0;
		if (!(d = strdup(value)))
			return -ENOMEM;
		free(a->value);
		a->value = d;
		*changed = true;
		return 0;
	}
	if (s->n_ann >= ANN_MAX)
		return -E2BIG;
	v = realloc(s->ann, (s->n_ann + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->ann = v;
	n.ns = strdup(ns);
	n.pod = strdup(pod);
	n.key = strdup(key);
	n.value = strdup(value);
	if (!n.ns || !n.pod || !n.key || !n.value) {
		ann_free(&n);
		return -ENOMEM;
	}
	s->ann[s->n_ann++] = n;
	*changed = true;
	return 0;
}

/* One line each: NAMESPACE TAB ENDPOINT ("" for the namespace) TAB KEY TAB VALUE. */
static void ann_save(struct zt_seg *s)
{
	char tmp[sizeof(s->ann_path) + 8];
	FILE *f;
	int r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->ann_path);
	f = fopen(tmp, "we");
	if (!f) {
		log_error("annotations_save_failed", "path=%s error=\"%s\"", tmp, strerror(errno));
		return;
	}
	for (size_t i = 0; i < s->n_ann; i++)
		if (fprintf(f, "%s\t%s\t%s\t%s\n", s->ann[i].ns, s->ann[i].pod, s->ann[i].key,
			    s->ann[i].value) < 0)
			r = -EIO;
	if (fflush(f) || fsync(fileno(f)))
		r = -errno;
	if (fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp, s->ann_path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		log_error("annotations_save_failed", "path=%s error=\"%s\"", s->ann_path,
			  strerror(-r));
	}
}

/* The file is input: every line is checked as an operator's request is. */
static int ann_load(struct zt_seg *s, char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	struct stat st;
	ssize_t n;
	FILE *f;
	int r = 0;

	f = fopen(s->ann_path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ANN_FILE_MAX) {
		zt_seterr(err, errlen, "not a regular file of at most %u bytes", ANN_FILE_MAX);
		fclose(f);
		return -EBADMSG;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		char *fld[4], *p = line;
		bool changed;
		char why[512];

		lineno++;
		if (line[n - 1] != '\n') {
			zt_seterr(err, errlen, "line %zu: not terminated", lineno);
			r = -EBADMSG;
			break;
		}
		line[n - 1] = '\0';
		for (int i = 0; i < 4; i++) {
			fld[i] = p;
			if (i < 3 && p) {
				p = strchr(p, '\t');
				if (p)
					*p++ = '\0';
			}
		}
		if (!p) {
			zt_seterr(err, errlen, "line %zu: expected 4 tab-separated fields", lineno);
			r = -EBADMSG;
			break;
		}
		if (ann_check(fld[0], fld[1], fld[2], fld[3], why, sizeof(why)) < 0) {
			zt_seterr(err, errlen, "line %zu: %s", lineno, why);
			r = -EBADMSG;
			break;
		}
		r = ann_put(s, fld[0], fld[1], fld[2], fld[3], &changed);
		if (r < 0) {
			zt_seterr(err, errlen, "line %zu: %s", lineno, strerror(-r));
			break;
		}
	}
	free(line);
	fclose(f);
	return r;
}

int seg_gen_init(struct zt_seg *s, char *err, size_t errlen)
{
	char why[512] = "";
	int r;

	snprintf(s->ann_path, sizeof(s->ann_path), "%s/%s", s->cfg->state_dir, ANN_FILE);
	r = ann_load(s, why, sizeof(why));
	if (r == -EBADMSG) {
		char aside[sizeof(s->ann_path) + 16];

		snprintf(aside, sizeof(aside), "%s.damaged", s->ann_path);
		rename(s->ann_path, aside);
		log_error("annotations_unreadable", "path=%s error=\"%s\" moved_to=%s", s->ann_path,
			  why, aside);
		seg_ann_clear(s);
		return 0;
	}
	if (r < 0)
		zt_seterr(err, errlen, "%s: %s", s->ann_path, why[0] ? why : strerror(-r));
	return r;
}

void seg_ann_clear(struct zt_seg *s)
{
	for (size_t i = 0; i < s->n_ann; i++)
		ann_free(&s->ann[i]);
	free(s->ann);
	s->ann = NULL;
	s->n_ann = 0;
}

/*
 * The generated set for the annotations and endpoints as they are now;
 * NULL in *out when nothing is generated.
 */
static int gen_build(struct zt_seg *s, struct zt_policy_set **out, char *problems, size_t plen,
		     char *err, size_t errlen)
{
	struct zt_gen_ns *nss = calloc(s->n_ann + 1, sizeof(*nss));
	struct zt_gen_pod *pods = calloc(s->eps.n + 1, sizeof(*pods));
	size_t n_ns = 0, n_pods = 0;
	char *yaml = NULL;
	int r = -ENOMEM;

	*out = NULL;
	if (!nss || !pods)
		goto out;
	for (size_t i = 0; i < s->n_ann; i++) {
		enum zt_gen_iso iso;

		if (*s->ann[i].pod || strcmp(s->ann[i].key, ZT_ANN_ISOLATION) ||
		    zt_gen_iso_parse(s->ann[i].value, &iso, NULL, 0) < 0)
			continue;
		nss[n_ns++] = (struct zt_gen_ns){ .name = s->ann[i].ns, .iso = iso };
	}
	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];

		if (ep->pending)
			continue;
		pods[n_pods++] = (struct zt_gen_pod){
			.ns = ep->ns,
			.name = ep->name,
			.labels = ep->labels,
			.n_labels = ep->n_labels,
			.talks_to = ann_value(s, ep->ns, ep->name, ZT_ANN_TALKS_TO),
		};
	}
	r = zt_polgen(nss, n_ns, pods, n_pods, &yaml, problems, plen);
	if (r < 0)
		goto out;
	r = zt_policy_parse_buf(yaml, strlen(yaml), "generated", out, err, errlen);
	if (r == 0 && (*out)->n == 0) {
		zt_policy_set_free(*out);
		*out = NULL;
	}
out:
	free(yaml);
	free(nss);
	free(pods);
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory");
	return r;
}

int seg_gen_refresh(struct zt_seg *s, const char *why)
{
	struct zt_policy_set *set = NULL;
	struct pset *ps = NULL, *old = s->gen, *u;
	char err[1024], problems[2048], q[2400];
	int r;

	r = gen_build(s, &set, problems, sizeof(problems), err, sizeof(err));
	if (r < 0)
		goto refused;
	if (strcmp(problems, s->gen_problems)) {
		snprintf(s->gen_problems, sizeof(s->gen_problems), "%s", problems);
		if (problems[0]) {
			log_warn("generated_policy_problems", "problems=%s",
				 zt_log_quote(q, sizeof(q), problems));
			seg_audit_text(s, "policy.generated.problem", "generated", "problems",
				       problems);
		}
	}
	if ((!set && !old) || (set && old && !strcmp(set->sha256, old->set->sha256))) {
		zt_policy_set_free(set);
		return 0;
	}
	if (set && !(ps = pset_new(set))) {
		zt_policy_set_free(set);
		r = -ENOMEM;
		zt_seterr(err, sizeof(err), "out of memory");
		goto refused;
	}
	s->gen = ps;
	if (!s->dir) {
		/* policy.dir has not loaded: its first load takes the generated part along. */
		pset_put(old);
		return 0;
	}
	u = store_union(s, s->dir, -1, NULL, err, sizeof(err));
	if (!u) {
		r = -EINVAL;
		goto undo;
	}
	r = publish(s, u, why, err, sizeof(err));
	if (r < 0) {
		pset_put(u);
		goto undo;
	}
	pset_put(s->cur);
	s->cur = u;
	pset_put(old);
	{
		char d[512];

		snprintf(d, sizeof(d),
			 "{\"sha256\":\"%s\",\"policies\":%zu,\"gen\":%llu,\"why\":\"%s\"}",
			 ps ? ps->set->sha256 : "", ps ? ps->set->n : 0,
			 (unsigned long long)s->st.gen, why);
		seg_audit(s, "policy.generated.apply", "generated", d);
	}
	log_info("generated_policy_applied", "policies=%zu sha256=%s gen=%llu why=%s",
		 ps ? ps->set->n : 0, ps ? ps->set->sha256 : "-", (unsigned long long)s->st.gen,
		 why);
	return 0;
undo:
	s->gen = old;
	pset_put(ps);
refused:
	pthread_mutex_lock(&s->lock);
	s->st.rejects++;
	pthread_mutex_unlock(&s->lock);
	snprintf(s->last_reject, sizeof(s->last_reject), "generated: %.1000s", err);
	log_error("generated_policy_rejected", "error=%s why=%s kept=previous",
		  zt_log_quote(q, sizeof(q), err), why);
	seg_audit_text(s, "policy.reject", "generated", "error", err);
	return r;
}

int seg_ann_set(struct zt_seg *s, const char *ns, const char *pod, const char *key,
		const char *value, const char *why, char *err, size_t errlen)
{
	bool changed = false;
	int r;

	r = ann_check(ns, pod, key, value, err, errlen);
	if (r < 0)
		return r;
	r = ann_put(s, ns, pod, key, value, &changed);
	if (r < 0) {
		zt_seterr(err, errlen, "%s", strerror(-r));
		return r;
	}
	if (!changed)
		return 0;
	ann_save(s);
	{
		char d[ZT_GEN_MAX_VALUE * 2 + 1024], v[ZT_GEN_MAX_VALUE * 2 + 8], subj[400];

		zt_json_escape(value ? value : "", v, sizeof(v));
		snprintf(
			d, sizeof(d),
			"{\"key\":\"%.300s\",\"value\":\"%.16392s\",\"removed\":%s,\"why\":\"%s\"}",
			key, v, value ? "false" : "true", why);
		snprintf(subj, sizeof(subj), "%s%s%s", ns, *pod ? "/" : "", pod);
		seg_audit(s, *pod ? "endpoint.annotate" : "namespace.annotate", subj, d);
	}
	log_info("annotation_set", "namespace=%s endpoint=%s key=%s removed=%s why=%s", ns,
		 *pod ? pod : "-", key, value ? "false" : "true", why);
	return seg_gen_refresh(s, "annotation");
}

void seg_ann_forget_pod(struct zt_seg *s, const char *ns, const char *pod)
{
	bool changed = false;

	for (size_t i = s->n_ann; i-- > 0;)
		if (!strcmp(s->ann[i].ns, ns) && !strcmp(s->ann[i].pod, pod))
			ann_put(s, ns, pod, s->ann[i].key, NULL, &changed);
	if (changed)
		ann_save(s);
}

/*
 * What the Kubernetes watch knows of a pod (and its namespace): the
 * ztagent.io/ annotations replace the stored ones; a bad one is logged and
 * left out, the rest stays.
 */
static void ann_from_meta(struct zt_seg *s, const struct zt_pod_meta *m, size_t first)
{
	static const char *const keys[] = { ZT_ANN_TALKS_TO, ZT_ANN_ISOLATION };
	bool changed = false;
	char err[512], q[600];

	for (size_t k = first; k < ZT_ARRAY_SIZE(keys); k++) {
		bool on_ns = k == 1;
		const struct zt_label *v = on_ns ? m->ns_annotations : m->annotations;

		if (on_ns && !m->ns_annotations_known)
			continue;
		size_t n = on_ns ? m->n_ns_annotations : m->n_annotations;
		const char *pod = on_ns ? "" : m->name, *value = NULL;

		for (size_t i = 0; i < n; i++)
			if (v[i].key && !strcmp(v[i].key, keys[k]))
				value = v[i].value;
		if (value && ann_check(m->ns, pod, keys[k], value, err, sizeof(err)) < 0) {
			log_warn("annotation_refused", "namespace=%s pod=%s error=%s", m->ns,
				 m->name, zt_log_quote(q, sizeof(q), err));
			value = NULL;
		}
		if (ann_put(s, m->ns, pod, keys[k], value, &changed) < 0)
			log_error("annotation_store_failed", "namespace=%s pod=%s", m->ns, m->name);
	}
	if (changed)
		ann_save(s);
}

void seg_ann_from_pod(struct zt_seg *s, const struct zt_pod_meta *m)
{
	ann_from_meta(s, m, 0);
}

void seg_ann_from_ns(struct zt_seg *s, const struct zt_pod_meta *m)
{
	ann_from_meta(s, m, 1);
}

size_t seg_ann_count(const struct zt_seg *s)
{
	return s->n_ann;
}

void zt_seg_set_namespace_annotations(struct zt_seg *s, const char *ns,
				      const struct zt_label *annotations, size_t n)
{
	struct zt_pod_meta m = { .ns = ns,
				 .name = "",
				 .ns_annotations_known = true,
				 .ns_annotations = annotations,
				 .n_ns_annotations = n };

	seg_ann_from_ns(s, &m);
	seg_gen_refresh(s, "kubernetes-namespace");
}
