// SPDX-License-Identifier: GPL-2.0-only
/* The canonical form of policies (polcanon.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records/auditq.h" /* zt_json_escape */
#include "records/db.h" /* zt_sha256_hex */
#include "seg/polcanon.h"

/* A growing string; on allocation failure it stays failed and says so at the end. */
struct sb {
	char *s;
	size_t n, cap;
	bool failed;
};

static void sb_put(struct sb *b, const char *t, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		char *ns;

		while (nc < b->n + n + 1)
			nc *= 2;
		ns = realloc(b->s, nc);
		if (!ns) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = nc;
	}
	memcpy(b->s + b->n, t, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void sb_str(struct sb *b, const char *t)
{
	sb_put(b, t, strlen(t));
}

static void sb_fmt(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sb *b, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_put(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* A JSON string, quoted. */
static void sb_q(struct sb *b, const char *t)
{
	size_t n = strlen(t) * 6 + 8;
	char *e = malloc(n);

	if (!e) {
		b->failed = true;
		return;
	}
	zt_json_escape(t ? t : "", e, n);
	sb_str(b, "\"");
	sb_str(b, e);
	sb_str(b, "\"");
	free(e);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Joins n texts sorted, as a JSON array (the texts are JSON already); frees them. */
static void sb_sorted_array(struct sb *b, char **v, size_t n)
{
	qsort(v, n, sizeof(*v), str_cmp);
	sb_str(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			b->failed = true;
		else if (!(i && v[i - 1] && !strcmp(v[i - 1], v[i]))) {
			/* A duplicate adds nothing: listed once. */
			if (b->n && b->s[b->n - 1] != '[')
				sb_str(b, ",");
			sb_str(b, v[i]);
		}
	}
	sb_str(b, "]");
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char *sb_take(struct sb *b)
{
	if (b->failed) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

static char **vec(size_t n, struct sb *b)
{
	char **v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		b->failed = true;
	return v;
}

static char *quoted(const char *t)
{
	struct sb b = { 0 };

	sb_q(&b, t);
	return sb_take(&b);
}

static void sb_selector(struct sb *b, const struct zt_selector *s)
{
	char **v;

	sb_str(b, "{\"matchLabels\":");
	v = vec(s->match_labels.n, b);
	if (!v)
		return;
	for (size_t i = 0; i < s->match_labels.n; i++) {
		struct sb e = { 0 };

		sb_q(&e, s->match_labels.v[i].key);
		sb_str(&e, ":");
		sb_q(&e, s->match_labels.v[i].value);
		v[i] = sb_take(&e);
	}
	/* An object: the sorted pairs between braces. */
	{
		struct sb arr = { 0 };

		sb_sorted_array(&arr, v, s->match_labels.n);
		if (arr.failed || !arr.s) {
			b->failed = true;
		} else {
			arr.s[0] = '{';
			arr.s[arr.n - 1] = '}';
			sb_str(b, arr.s);
		}
		free(arr.s);
	}
	sb_str(b, ",\"matchExpressions\":");
	v = vec(s->n_exprs, b);
	if (!v)
		return;
	for (size_t i = 0; i < s->n_exprs; i++) {
		const struct zt_sel_expr *x = &s->exprs[i];
		struct sb e = { 0 };
		char **vals = vec(x->n_values, &e);

		sb_str(&e, "{\"key\":");
		sb_q(&e, x->key);
		sb_str(&e, ",\"operator\":");
		sb_q(&e, zt_sel_op_name(x->op));
		sb_str(&e, ",\"values\":");
		if (vals) {
			for (size_t j = 0; j < x->n_values; j++)
				vals[j] = quoted(x->values[j]);
			sb_sorted_array(&e, vals, x->n_values);
		}
		sb_str(&e, "}");
		v[i] = sb_take(&e);
	}
	sb_sorted_array(b, v, s->n_exprs);
	sb_str(b, "}");
}

static char *peer_json(const struct zt_pol_peer *p)
{
	struct sb b = { 0 };

	if (p->type == ZT_PEER_IPBLOCK) {
		char c[64];
		char **v = vec(p->n_except, &b);

		zt_cidr_format(&p->cidr, c, sizeof(c));
		sb_str(&b, "{\"ipBlock\":{\"cidr\":");
		sb_q(&b, c);
		sb_str(&b, ",\"except\":");
		if (v) {
			for (size_t i = 0; i < p->n_except; i++) {
				zt_cidr_format(&p->except[i], c, sizeof(c));
				v[i] = quoted(c);
			}
			sb_sorted_array(&b, v, p->n_except);
		}
		sb_str(&b, "}}");
		return sb_take(&b);
	}
	sb_str(&b, "{\"namespaceSelector\":");
	if (p->namespace_selector)
		sb_selector(&b, p->namespace_selector);
	else
		sb_str(&b, "null");
	sb_str(&b, ",\"podSelector\":");
	if (p->pod_selector)
		sb_selector(&b, p->pod_selector);
	else
		sb_str(&b, "null");
	sb_str(&b, "}");
	return sb_take(&b);
}

static char *port_json(const struct zt_pol_port *p)
{
	struct sb b = { 0 };

	sb_str(&b, "{\"protocol\":");
	sb_q(&b, zt_pol_proto_name(p->protocol));
	if (p->name) {
		sb_str(&b, ",\"name\":");
		sb_q(&b, p->name);
	} else if (p->port) {
		sb_fmt(&b, ",\"port\":%u,\"endPort\":%u", p->port, p->end_port);
	}
	sb_str(&b, "}");
	return sb_take(&b);
}

static char *rule_json(const struct zt_pol_rule *r)
{
	struct sb b = { 0 };
	char **v;

	sb_fmt(&b, "{\"action\":\"%s\",\"peers\":", r->action == ZT_RULE_DENY ? "deny" : "allow");
	v = vec(r->n_peers, &b);
	if (v) {
		for (size_t i = 0; i < r->n_peers; i++)
			v[i] = peer_json(&r->peers[i]);
		sb_sorted_array(&b, v, r->n_peers);
	}
	sb_str(&b, ",\"ports\":");
	v = vec(r->n_ports, &b);
	if (v) {
		for (size_t i = 0; i < r->n_ports; i++)
			v[i] = port_json(&r->ports[i]);
		sb_sorted_array(&b, v, r->n_ports);
	}
	sb_fmt(&b, ",\"requireMutualAuth\":%s,\"requireTLS\":%s}",
	       r->require_mutual_auth ? "true" : "false", r->require_tls ? "true" : "false");
	return sb_take(&b);
}

char *zt_polcanon_policy(const struct zt_policy *p)
{
	struct sb b = { 0 };

	sb_str(&b, "{\"kind\":");
	sb_q(&b, zt_pol_kind_name(p->kind));
	sb_str(&b, ",\"namespace\":");
	sb_q(&b, p->namespace);
	sb_str(&b, ",\"name\":");
	sb_q(&b, p->name);
	sb_fmt(&b,
	       ",\"mode\":\"%s\",\"podSelector\":", p->mode == ZT_POL_AUDIT ? "audit" : "enforce");
	sb_selector(&b, &p->pod_selector);
	sb_fmt(&b, ",\"isolates\":{\"egress\":%s,\"ingress\":%s}",
	       p->isolates[ZT_POL_EGRESS] ? "true" : "false",
	       p->isolates[ZT_POL_INGRESS] ? "true" : "false");
	for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
		char **v = vec(p->n_rules[d], &b);

		sb_fmt(&b, ",\"%s\":", zt_pol_dir_name((enum zt_pol_dir)d));
		if (!v)
			break;
		for (size_t i = 0; i < p->n_rules[d]; i++)
			v[i] = rule_json(&p->rules[d][i]);
		sb_sorted_array(&b, v, p->n_rules[d]);
	}
	sb_str(&b, "}");
	return sb_take(&b);
}

static int canon_cmp(const void *a, const void *b)
{
	return strcmp(((const struct zt_polcanon *)a)->key, ((const struct zt_polcanon *)b)->key);
}

int zt_polcanon_add(struct zt_polcanon_set *s, const char *key, const char *json)
{
	struct zt_polcanon *nv = realloc(s->v, (s->n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	s->v = nv;
	nv[s->n].key = strdup(key);
	nv[s->n].json = strdup(json);
	if (!nv[s->n].key || !nv[s->n].json) {
		free(nv[s->n].key);
		free(nv[s->n].json);
		return -ENOMEM;
	}
	zt_sha256_hex(json, strlen(json), nv[s->n].sha256);
	s->n++;
	return 0;
}

void zt_polcanon_finish(struct zt_polcanon_set *s)
{
	struct sb all = { 0 };

	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), canon_cmp);
	for (size_t i = 0; i < s->n; i++) {
		sb_str(&all, s->v[i].json);
		sb_str(&all, "\n");
	}
	zt_sha256_hex(all.s ? all.s : "", all.n, s->sha256);
	free(all.s);
}

int zt_polcanon_build(const struct zt_policy *const *v, size_t n, struct zt_polcanon_set *out)
{
	int r = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; r == 0 && i < n; i++) {
		char key[1024];
		char *json = zt_polcanon_policy(v[i]);

		if (!json) {
			r = -ENOMEM;
			break;
		}
		snprintf(key, sizeof(key), "%s/%s/%s", zt_pol_kind_name(v[i]->kind),
			 v[i]->namespace, v[i]->name);
		r = zt_polcanon_add(out, key, json);
		free(json);
	}
	if (r < 0) {
		zt_polcanon_free(out);
		return r;
	}
	zt_polcanon_finish(out);
	return 0;
}

void zt_polcanon_free(struct zt_polcanon_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].json);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

size_t zt_polcanon_diff(const struct zt_polcanon_set *a, const struct zt_polcanon_set *b,
			zt_polcanon_diff_fn fn, void *ctx)
{
	size_t i = 0, j = 0, n = 0;

	while (i < a->n || j < b->n) {
		int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->v[i].key, b->v[j].key);

		if (c < 0) {
			fn(ctx, ZT_PC_REMOVED, a->v[i].key, a->v[i].json, NULL);
			i++;
			n++;
		} else if (c > 0) {
			fn(ctx, ZT_PC_ADDED, b->v[j].key, NULL, b->v[j].json);
			j++;
			n++;
		} else {
			if (strcmp(a->v[i].sha256, b->v[j].sha256)) {
				fn(ctx, ZT_PC_CHANGED, a->v[i].key, a->v[i].json, b->v[j].json);
				n++;
			}
			i++;
			j++;
		}
	}
	return n;
}
