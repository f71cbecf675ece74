// SPDX-License-Identifier: GPL-2.0-only
/*
 * Security identities of label sets (polcompile.h).
 *
 * A label set is canonicalised into one byte string: the namespace, the
 * pod's labels sorted by key, the namespace's labels sorted by key (the
 * implied kubernetes.io/metadata.name=<namespace> dropped), each string
 * length-prefixed so that no two sets share a form. A chained hash table
 * maps that string to its entry; an array indexed by id - ZT_ID_FIRST_LABELS
 * maps ids back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg/polcompile.h"
#include "agent/util.h"

#define ID_LIMIT ZT_ID_FIRST_CIDR /* label identities stay below the CIDR ones */

struct id_entry {
	struct id_entry *next; /* hash chain */
	uint32_t id;
	uint32_t refs;
	uint32_t hash;
	char *canon;
	size_t canon_len;
	struct zt_label_set ls; /* strings point into strs */
	struct zt_label *labels; /* labels.n + ns_labels.n */
	char *strs;
};

struct zt_identities {
	struct id_entry **buckets;
	size_t n_buckets; /* power of two */
	size_t n;
	struct id_entry **by_id; /* index id - ZT_ID_FIRST_LABELS */
	size_t by_id_cap;
	size_t free_hint; /* no free index below it */
};

int zt_identities_new(struct zt_identities **out)
{
	struct zt_identities *ids = calloc(1, sizeof(*ids));

	if (!ids)
		return -ENOMEM;
	ids->n_buckets = 64;
	ids->buckets = calloc(ids->n_buckets, sizeof(*ids->buckets));
	if (!ids->buckets) {
		free(ids);
		return -ENOMEM;
	}
	*out = ids;
	return 0;
}

static void entry_free(struct id_entry *e)
{
	if (!e)
		return;
	free(e->canon);
	free(e->labels);
	free(e->strs);
	free(e);
}

void zt_identities_free(struct zt_identities *ids)
{
	if (!ids)
		return;
	for (size_t i = 0; i < ids->n_buckets; i++) {
		struct id_entry *e = ids->buckets[i];

		while (e) {
			struct id_entry *next = e->next;

			entry_free(e);
			e = next;
		}
	}
	free(ids->buckets);
	free(ids->by_id);
	free(ids);
}

static int label_cmp(const void *a, const void *b)
{
	const struct zt_label *x = *(const struct zt_label *const *)a;
	const struct zt_label *y = *(const struct zt_label *const *)b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

struct canon {
	char *buf;
	size_t len, cap;
};

static int canon_put(struct canon *c, const char *s)
{
	size_t sl = strlen(s);
	char num[24];
	int nl = snprintf(num, sizeof(num), "%zu:", sl);

	if (c->len + (size_t)nl + sl + 1 > c->cap) {
		size_t cap = (c->cap ? c->cap * 2 : 256) + (size_t)nl + sl;
		char *nb = realloc(c->buf, cap);

		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, num, (size_t)nl);
	memcpy(c->buf + c->len + nl, s, sl);
	c->len += (size_t)nl + sl;
	c->buf[c->len] = '\0';
	return 0;
}

/* Sorted pointers to the labels worth keeping (see the file comment). */
static int sorted_labels(const struct zt_labels *l, const char *drop_ns,
			 const struct zt_label ***out, size_t *n)
{
	const struct zt_label **v = NULL;
	size_t k = 0;

	if (l->n) {
		v = malloc(l->n * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (drop_ns && strcmp(l->v[i].key, ZT_NS_NAME_LABEL) == 0 &&
		    strcmp(l->v[i].value, drop_ns) == 0)
			continue;
		v[k++] = &l->v[i];
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), label_cmp);
	*out = v;
	*n = k;
	return 0;
}

static int canonicalise(const struct zt_label_set *ls, struct canon *c,
			const struct zt_label ***lab, size_t *n_lab, const struct zt_label ***nsl,
			size_t *n_nsl)
{
	int r;

	*lab = *nsl = NULL;
	r = sorted_labels(&ls->labels, NULL, lab, n_lab);
	if (r == 0)
		r = sorted_labels(&ls->ns_labels, ls->namespace, nsl, n_nsl);
	if (r == 0)
		r = canon_put(c, ls->namespace);
	if (r == 0) {
		char cnt[24];

		snprintf(cnt, sizeof(cnt), "%zu", *n_lab);
		r = canon_put(c, cnt);
	}
	for (size_t i = 0; r == 0 && i < *n_lab; i++) {
		r = canon_put(c, (*lab)[i]->key);
		if (r == 0)
			r = canon_put(c, (*lab)[i]->value);
	}
	for (size_t i = 0; r == 0 && i < *n_nsl; i++) {
		r = canon_put(c, (*nsl)[i]->key);
		if (r == 0)
			r = canon_put(c, (*nsl)[i]->value);
	}
	return r;
}

static struct id_entry *lookup(const struct zt_identities *ids, const char *canon, size_t len,
			       uint32_t h)
{
	for (struct id_entry *e = ids->buckets[h & (ids->n_buckets - 1)]; e; e = e->next)
		if (e->hash == h && e->canon_len == len && memcmp(e->canon, canon, len) == 0)
			return e;
	return NULL;
}

static int grow_buckets(struct zt_identities *ids)
{
	size_t nb = ids->n_buckets * 2;
	struct id_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < ids->n_buckets; i++) {
		struct id_entry *e = ids->buckets[i];

		while (e) {
			struct id_entry *next = e->next;

			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = next;
		}
	}
	free(ids->buckets);
	ids->buckets = b;
	ids->n_buckets = nb;
	return 0;
}

static int by_id_reserve(struct zt_identities *ids, size_t idx)
{
	size_t cap;
	struct id_entry **v;

	if (idx < ids->by_id_cap)
		return 0;
	cap = ids->by_id_cap ? ids->by_id_cap : 64;
	while (cap <= idx)
		cap *= 2;
	v = realloc(ids->by_id, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memset(v + ids->by_id_cap, 0, (cap - ids->by_id_cap) * sizeof(*v));
	ids->by_id = v;
	ids->by_id_cap = cap;
	return 0;
}

/* Copies the canonical label set into storage the entry owns. */
static int entry_fill(struct id_entry *e, const char *ns, const struct zt_label **lab, size_t n_lab,
		      const struct zt_label **nsl, size_t n_nsl)
{
	size_t total = strlen(ns) + 1, o = 0;

	for (size_t i = 0; i < n_lab; i++)
		total += strlen(lab[i]->key) + strlen(lab[i]->value) + 2;
	for (size_t i = 0; i < n_nsl; i++)
		total += strlen(nsl[i]->key) + strlen(nsl[i]->value) + 2;
	e->strs = malloc(total);
	e->labels = calloc(n_lab + n_nsl + 1, sizeof(*e->labels));
	if (!e->strs || !e->labels)
		return -ENOMEM;
#define COPY(dst, s)                          \
	do {                                  \
		size_t l_ = strlen(s) + 1;    \
		memcpy(e->strs + o, (s), l_); \
		(dst) = e->strs + o;          \
		o += l_;                      \
	} while (0)
	COPY(e->ls.namespace, ns);
	for (size_t i = 0; i < n_lab; i++) {
		COPY(e->labels[i].key, lab[i]->key);
		COPY(e->labels[i].value, lab[i]->value);
	}
	for (size_t i = 0; i < n_nsl; i++) {
		COPY(e->labels[n_lab + i].key, nsl[i]->key);
		COPY(e->labels[n_lab + i].value, nsl[i]->value);
	}
#undef COPY
	e->ls.labels.v = e->labels;
	e->ls.labels.n = n_lab;
	e->ls.ns_labels.v = e->labels + n_lab;
	e->ls.ns_labels.n = n_nsl;
	return 0;
}

int zt_identities_get(struct zt_identities *ids, const struct zt_label_set *ls, uint32_t want,
		      uint32_t *id)
{
	const struct zt_label **lab = NULL, **nsl = NULL;
	size_t n_lab = 0, n_nsl = 0, idx;
	struct canon c = { 0 };
	struct id_entry *e;
	uint32_t h;
	int r;

	if (!ids || !ls || !ls->namespace || !id)
		return -EINVAL;
	if (want && (want < ZT_ID_FIRST_LABELS || want >= ID_LIMIT))
		return -ERANGE;
	r = canonicalise(ls, &c, &lab, &n_lab, &nsl, &n_nsl);
	if (r < 0)
		goto out;
	h = zt_fnv1a32(c.buf, c.len);
	e = lookup(ids, c.buf, c.len, h);
	if (e) {
		if (want && want != e->id) {
			r = -EEXIST; /* this label set already has another id */
			goto out;
		}
		if (e->refs == UINT32_MAX) {
			r = -EOVERFLOW;
			goto out;
		}
		e->refs++;
		*id = e->id;
		goto out;
	}
	if (want) {
		idx = want - ZT_ID_FIRST_LABELS;
		if (idx < ids->by_id_cap && ids->by_id[idx]) {
			r = -EEXIST;
			goto out;
		}
	} else {
		idx = ids->free_hint;
		while (idx < ids->by_id_cap && ids->by_id[idx])
			idx++;
		if (idx >= ID_LIMIT - ZT_ID_FIRST_LABELS) {
			r = -ENOSPC;
			goto out;
		}
	}
	r = by_id_reserve(ids, idx);
	if (r < 0)
		goto out;
	if (ids->n + 1 > ids->n_buckets) {
		r = grow_buckets(ids);
		if (r < 0)
			goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	r = entry_fill(e, ls->namespace, lab, n_lab, nsl, n_nsl);
	if (r < 0) {
		entry_free(e);
		goto out;
	}
	e->canon = c.buf;
	e->canon_len = c.len;
	c.buf = NULL;
	e->hash = h;
	e->refs = 1;
	e->id = (uint32_t)(idx + ZT_ID_FIRST_LABELS);
	e->next = ids->buckets[h & (ids->n_buckets - 1)];
	ids->buckets[h & (ids->n_buckets - 1)] = e;
	ids->by_id[idx] = e;
	ids->n++;
	if (!want)
		ids->free_hint = idx + 1;
	*id = e->id;
out:
	free(c.buf);
	free(lab);
	free(nsl);
	return r;
}

static struct id_entry *by_id(const struct zt_identities *ids, uint32_t id)
{
	size_t idx;

	if (!ids || id < ZT_ID_FIRST_LABELS || id >= ID_LIMIT)
		return NULL;
	idx = id - ZT_ID_FIRST_LABELS;
	return idx < ids->by_id_cap ? ids->by_id[idx] : NULL;
}

void zt_identities_put(struct zt_identities *ids, uint32_t id)
{
	struct id_entry *e = by_id(ids, id), **pp;

	if (!e || --e->refs > 0)
		return;
	for (pp = &ids->buckets[e->hash & (ids->n_buckets - 1)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	ids->by_id[id - ZT_ID_FIRST_LABELS] = NULL;
	if (id - ZT_ID_FIRST_LABELS < ids->free_hint)
		ids->free_hint = id - ZT_ID_FIRST_LABELS;
	ids->n--;
	entry_free(e);
}

const struct zt_label_set *zt_identities_labels(const struct zt_identities *ids, uint32_t id)
{
	const struct id_entry *e = by_id(ids, id);

	return e ? &e->ls : NULL;
}
