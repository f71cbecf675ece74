// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy compiler (polcompile.h): policy set + endpoints -> the entries of
 * tc_endpoint's ipcache, policy and isolation maps.
 *
 * 1. Identities: endpoints grouped by identity; every prefix an ipBlock
 *    names gets a CIDR identity (in sorted order, so the same input always
 *    numbers them the same); /0 is the world's. Each endpoint address also
 *    lies in one CIDR identity (its longest ipBlock prefix, or the world);
 *    the distinct (that, endpoint identity) pairs are the port classes.
 * 2. Raw entries: every effective rule x local identity x peer identity x
 *    port block, tagged with its rule id (rule ids follow policy order,
 *    so "the first rule" is "the lowest id"), its action, mode and flags.
 * 3. Sorted by key (dir, local, peer, proto, port, prefix length), equal
 *    keys merged, then each (dir, local, peer) group is walked in that
 *    order with a stack of the blocks containing the current one: every
 *    stored entry gets the combination of itself and all its containers,
 *    which is what the kernel's longest-prefix lookup then returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg/polcompile.h"
#include "agent/util.h"

typedef unsigned __int128 u128;

/* Raw entry flags. */
#define RAW_DENY 0x1
#define RAW_AUDIT_MODE 0x2
#define RAW_TLS 0x4
#define RAW_MTLS 0x8
#define RAW_HOST 0x10

#define NO_RULE UINT32_MAX /* "none" while taking minima */

struct raw {
	u128 key; /* dir:8 | local:32 | peer:32 | proto:8 | port:16 | plen:8 */
	uint32_t rule_id;
	uint8_t what; /* RAW_* */
};

struct agg {
	u128 key;
	uint32_t enf_deny, enf_allow, all_deny, all_allow; /* lowest rule id, NO_RULE */
	uint8_t enf_flags; /* ZT_POL_F_* of the enforce allow rules */
};

struct ident {
	uint32_t id;
	const struct zt_label_set *ls; /* its first endpoint's */
	size_t ep_lo, ep_hi; /* range in the sorted endpoint index */
	uint32_t iso_rule[ZT_DIR_MAX], audit_rule[ZT_DIR_MAX]; /* NO_RULE: none */
};

/*
 * Selector results, memoised by the selector's content: policies of one
 * cluster repeat the same few selectors, and each is evaluated against the
 * identities once. Keys are length-prefixed serialisations; values are runs
 * of identity indices (into ctx.idents) in pool.
 */
struct memo_ent {
	char *key; /* NULL: free slot */
	size_t klen;
	uint32_t hash;
	size_t off, n; /* into pool */
};

struct memo {
	struct memo_ent *t;
	size_t cap, n; /* cap: power of two */
	uint32_t *pool;
	size_t pool_n, pool_cap;
	char *kbuf; /* the key being built */
	size_t klen, kcap;
};

struct ctx {
	const struct zt_polc_input *in;
	char *err;
	size_t errlen;
	size_t *ep_order; /* endpoint indices sorted by identity */
	struct ident *idents; /* sorted by id */
	size_t n_idents;
	size_t *by_ns; /* ident indices sorted by (namespace, id) */
	struct zt_cidr *prefixes; /* sorted, distinct, none of them /0 */
	size_t n_prefixes;
	/*
	 * Port classes: the distinct (CIDR identity, endpoint identity) pairs
	 * of endpoint addresses, as cidr << 32 | identity, sorted; class i is
	 * ZT_ID_FIRST_PORT_CLASS + i.
	 */
	uint64_t *pclass;
	size_t n_pclass;
	struct raw *raw;
	size_t n_raw, cap_raw;
	uint32_t *peers; /* scratch: peer identities of one rule */
	size_t n_peers, cap_peers;
	uint16_t *named; /* scratch: resolved named ports */
	size_t n_named, cap_named;
	struct memo memo;
};

static u128 mkkey(uint8_t dir, uint32_t local, uint32_t peer, uint8_t proto, uint16_t port,
		  uint8_t plen)
{
	return (u128)dir << 96 | (u128)local << 64 | (u128)peer << 32 | (u128)proto << 24 |
	       (u128)port << 8 | plen;
}

#define KEY_DIR(k) ((uint8_t)((k) >> 96))
#define KEY_LOCAL(k) ((uint32_t)((k) >> 64))
#define KEY_PEER(k) ((uint32_t)((k) >> 32))
#define KEY_PROTO(k) ((uint8_t)((k) >> 24))
#define KEY_PORT(k) ((uint16_t)((k) >> 8))
#define KEY_PLEN(k) ((uint8_t)(k))
#define KEY_GROUP(k) ((k) >> 32)

static int push_raw(struct ctx *x, u128 key, uint32_t rule_id, uint8_t what)
{
	/* Duplicates merge later; bound what a pathological set can make us hold. */
	if (x->n_raw >= 4 * (size_t)ZT_POLC_MAX_ENTRIES) {
		zt_seterr(x->err, x->errlen,
			  "policy compiles to more than %u raw entries (limit %u map entries); "
			  "simplify the selectors, peers or port ranges",
			  4 * ZT_POLC_MAX_ENTRIES, ZT_POLC_MAX_ENTRIES);
		return -E2BIG;
	}
	if (zt_grow((void **)&x->raw, &x->cap_raw, x->n_raw + 1, sizeof(*x->raw)) < 0)
		return -ENOMEM;
	x->raw[x->n_raw].key = key;
	x->raw[x->n_raw].rule_id = rule_id;
	x->raw[x->n_raw].what = what;
	x->n_raw++;
	return 0;
}

/* ---- identities of endpoints ---- */

static int ep_cmp_ctx_id(const struct zt_polc_endpoint *eps, size_t a, size_t b)
{
	if (eps[a].identity != eps[b].identity)
		return eps[a].identity < eps[b].identity ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* qsort has no context argument; the endpoint table is passed through this. */
static __thread const struct zt_polc_endpoint *sort_eps;
static __thread const struct ident *sort_idents;

static int ep_cmp(const void *a, const void *b)
{
	return ep_cmp_ctx_id(sort_eps, *(const size_t *)a, *(const size_t *)b);
}

static int ns_cmp(const void *a, const void *b)
{
	const struct ident *x = &sort_idents[*(const size_t *)a];
	const struct ident *y = &sort_idents[*(const size_t *)b];
	int c = strcmp(x->ls->namespace, y->ls->namespace);

	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Label identities only: a pending endpoint (ZT_ID_PENDING) is in no
 * identity group, so no selector ever matches it and it selects no rule.
 */
static int build_idents(struct ctx *x)
{
	const struct zt_polc_input *in = x->in;
	size_t n = 0;

	for (size_t i = 0; i < in->n_eps; i++) {
		const struct zt_polc_endpoint *e = &in->eps[i];

		if (!e->ev || !e->ev->ls.namespace ||
		    (e->identity != ZT_ID_PENDING &&
		     (e->identity < ZT_ID_FIRST_LABELS || e->identity >= ZT_ID_FIRST_CIDR))) {
			zt_seterr(
				x->err, x->errlen, "endpoint %zu (ep_id %u): %s", i, e->ep_id,
				!e->ev || !e->ev->ls.namespace ?
					"no label set" :
					"identity outside the label range (use zt_identities_get)");
			return -EINVAL;
		}
	}
	x->ep_order = calloc(in->n_eps ? in->n_eps : 1, sizeof(*x->ep_order));
	x->idents = calloc(in->n_eps ? in->n_eps : 1, sizeof(*x->idents));
	x->by_ns = calloc(in->n_eps ? in->n_eps : 1, sizeof(*x->by_ns));
	if (!x->ep_order || !x->idents || !x->by_ns)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_eps; i++)
		if (in->eps[i].identity != ZT_ID_PENDING)
			x->ep_order[n++] = i;
	sort_eps = in->eps;
	qsort(x->ep_order, n, sizeof(*x->ep_order), ep_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct ident *id = &x->idents[x->n_idents];

		while (j < n &&
		       in->eps[x->ep_order[j]].identity == in->eps[x->ep_order[i]].identity)
			j++;
		id->id = in->eps[x->ep_order[i]].identity;
		id->ls = &in->eps[x->ep_order[i]].ev->ls;
		id->ep_lo = i;
		id->ep_hi = j;
		for (int d = 0; d < ZT_DIR_MAX; d++)
			id->iso_rule[d] = id->audit_rule[d] = NO_RULE;
		x->by_ns[x->n_idents] = x->n_idents;
		x->n_idents++;
		i = j;
	}
	sort_idents = x->idents;
	qsort(x->by_ns, x->n_idents, sizeof(*x->by_ns), ns_cmp);
	return 0;
}

/* The range of by_ns holding identities of namespace ns. */
static void ns_range(const struct ctx *x, const char *ns, size_t *lo, size_t *hi)
{
	size_t a = 0, b = x->n_idents;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (strcmp(x->idents[x->by_ns[m]].ls->namespace, ns) < 0)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	b = x->n_idents;
	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (strcmp(x->idents[x->by_ns[m]].ls->namespace, ns) <= 0)
			a = m + 1;
		else
			b = m;
	}
	*hi = a;
}

static const struct ident *find_ident(const struct ctx *x, uint32_t id)
{
	size_t a = 0, b = x->n_idents;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (x->idents[m].id < id)
			a = m + 1;
		else
			b = m;
	}
	return a < x->n_idents && x->idents[a].id == id ? &x->idents[a] : NULL;
}

/* ---- selector memo ---- */

static int key_put(struct memo *m, const void *p, size_t len)
{
	uint32_t l32 = (uint32_t)len;

	if (zt_grow((void **)&m->kbuf, &m->kcap, m->klen + len + sizeof(l32), 1) < 0)
		return -ENOMEM;
	memcpy(m->kbuf + m->klen, &l32, sizeof(l32));
	memcpy(m->kbuf + m->klen + sizeof(l32), p, len);
	m->klen += len + sizeof(l32);
	return 0;
}

static int key_str(struct memo *m, const char *s)
{
	return key_put(m, s, strlen(s));
}

/* A selector's content ("absent" differs from every present one). */
static int key_sel(struct memo *m, const struct zt_selector *sel)
{
	int r;

	if (!sel)
		return key_put(m, "\1absent", 7);
	r = key_put(m, "S", 1);
	for (size_t i = 0; r == 0 && i < sel->match_labels.n; i++) {
		r = key_str(m, sel->match_labels.v[i].key);
		if (r == 0)
			r = key_str(m, sel->match_labels.v[i].value);
	}
	for (size_t i = 0; r == 0 && i < sel->n_exprs; i++) {
		const struct zt_sel_expr *e = &sel->exprs[i];
		char op = (char)('0' + e->op);

		r = key_put(m, "E", 1);
		if (r == 0)
			r = key_str(m, e->key);
		if (r == 0)
			r = key_put(m, &op, 1);
		for (size_t j = 0; r == 0 && j < e->n_values; j++)
			r = key_str(m, e->values[j]);
	}
	return r;
}

/* The cached result for the key in m->kbuf, or NULL (then *slot is where it goes). */
static struct memo_ent *memo_find(struct memo *m, uint32_t h, size_t *slot)
{
	size_t i = h & (m->cap - 1);

	for (; m->t[i].key; i = (i + 1) & (m->cap - 1))
		if (m->t[i].hash == h && m->t[i].klen == m->klen &&
		    memcmp(m->t[i].key, m->kbuf, m->klen) == 0)
			return &m->t[i];
	*slot = i;
	return NULL;
}

static int memo_grow(struct memo *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct memo_ent *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->t[i].key)
			continue;
		for (j = m->t[i].hash & (cap - 1); t[j].key; j = (j + 1) & (cap - 1))
			;
		t[j] = m->t[i];
	}
	free(m->t);
	m->t = t;
	m->cap = cap;
	return 0;
}

static void memo_free(struct memo *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->t[i].key);
	free(m->t);
	free(m->pool);
	free(m->kbuf);
}

static int pool_push(struct memo *m, uint32_t v)
{
	if (zt_grow((void **)&m->pool, &m->pool_cap, m->pool_n + 1, sizeof(*m->pool)) < 0)
		return -ENOMEM;
	m->pool[m->pool_n++] = v;
	return 0;
}

/*
 * Identities (indices into ctx.idents, ascending by_ns order) that a
 * policy's podSelector (pod_sel, ns_sel NULL, local = true) or a selector
 * peer selects; *out points into the pool (valid until the next call).
 */
static int memo_select(struct ctx *x, bool local, const char *policy_ns,
		       const struct zt_selector *pod_sel, const struct zt_selector *ns_sel,
		       const uint32_t **out, size_t *n_out)
{
	struct memo *m = &x->memo;
	struct memo_ent *e;
	size_t slot = 0, lo = 0, hi = x->n_idents, off;
	uint32_t h;
	int r;

	if ((m->n + 1) * 2 > m->cap && memo_grow(m) < 0)
		return -ENOMEM;
	m->klen = 0;
	r = key_put(m, local ? "L" : "P", 1);
	if (r == 0)
		r = key_str(m, policy_ns);
	if (r == 0)
		r = key_sel(m, pod_sel);
	if (r == 0)
		r = key_sel(m, ns_sel);
	if (r < 0)
		return r;
	h = zt_fnv1a32(m->kbuf, m->klen);
	e = memo_find(m, h, &slot);
	if (!e) {
		off = m->pool_n;
		if (local || !ns_sel)
			ns_range(x, policy_ns, &lo, &hi);
		for (size_t i = lo; i < hi; i++) {
			const struct ident *it = &x->idents[x->by_ns[i]];
			bool sel = local ? zt_selector_matches(pod_sel, &it->ls->labels) :
					   zt_peer_selects(pod_sel, ns_sel, policy_ns, it->ls);

			if (sel && pool_push(m, (uint32_t)x->by_ns[i]) < 0)
				return -ENOMEM;
		}
		e = &m->t[slot];
		e->key = malloc(m->klen);
		if (!e->key)
			return -ENOMEM;
		memcpy(e->key, m->kbuf, m->klen);
		e->klen = m->klen;
		e->hash = h;
		e->off = off;
		e->n = m->pool_n - off;
		m->n++;
	}
	*out = e->n ? m->pool + e->off : NULL;
	*n_out = e->n;
	return 0;
}

/* ---- CIDR identities ---- */

static size_t alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct zt_cidr *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, alen(x->family));
	if (c)
		return c;
	return x->prefixlen < y->prefixlen ? -1 : x->prefixlen > y->prefixlen;
}

static int add_prefix(struct zt_cidr **v, size_t *n, size_t *cap, const struct zt_cidr *c)
{
	struct zt_cidr m = { 0 };

	if (c->prefixlen == 0)
		return 0; /* /0 is the world */
	if (zt_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	m.family = c->family;
	m.prefixlen = c->prefixlen;
	memcpy(m.addr, c->addr, alen(c->family));
	zt_cidr_mask(&m);
	(*v)[(*n)++] = m;
	return 0;
}

static int build_prefixes(struct ctx *x)
{
	const struct zt_policy_set *set = x->in->set;
	size_t n = 0, cap = 0, k = 0;
	struct zt_cidr *v = NULL;

	for (size_t i = 0; i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		for (int d = 0; d < ZT_POL_DIR_MAX; d++)
			for (size_t j = 0; j < p->n_rules[d]; j++) {
				const struct zt_pol_rule *r = &p->rules[d][j];

				if (!zt_pol_rule_effective(p, r))
					continue;
				for (size_t q = 0; q < r->n_peers; q++) {
					const struct zt_pol_peer *pe = &r->peers[q];

					if (pe->type != ZT_PEER_IPBLOCK)
						continue;
					if (add_prefix(&v, &n, &cap, &pe->cidr) < 0)
						goto nomem;
					for (size_t e = 0; e < pe->n_except; e++)
						if (add_prefix(&v, &n, &cap, &pe->except[e]) < 0)
							goto nomem;
				}
			}
	}
	if (n)
		qsort(v, n, sizeof(*v), cidr_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || cidr_cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	if (k > ZT_POLC_MAX_ENTRIES) {
		free(v);
		zt_seterr(x->err, x->errlen, "ipBlocks name %zu distinct prefixes (limit %u)", k,
			  ZT_POLC_MAX_ENTRIES);
		return -E2BIG;
	}
	x->prefixes = v;
	x->n_prefixes = k;
	return 0;
nomem:
	free(v);
	return -ENOMEM;
}

/* Is prefix a inside prefix b (same family, a no shorter)? */
static bool cidr_inside(const struct zt_cidr *a, const struct zt_cidr *b)
{
	return a->family == b->family && a->prefixlen >= b->prefixlen &&
	       zt_cidr_contains(b, a->addr);
}

static int push_peer(struct ctx *x, uint32_t id)
{
	if (zt_grow((void **)&x->peers, &x->cap_peers, x->n_peers + 1, sizeof(*x->peers)) < 0)
		return -ENOMEM;
	x->peers[x->n_peers++] = id;
	return 0;
}

/* CIDR identities (and the world) an ipBlock selects. */
static int ipblock_peers(struct ctx *x, const struct zt_pol_peer *pe)
{
	const struct zt_cidr *c = &pe->cidr;
	size_t a = 0, b = x->n_prefixes;
	struct zt_cidr lo = *c;

	if (c->prefixlen == 0 &&
	    push_peer(x, c->family == AF_INET ? ZT_ID_WORLD_V4 : ZT_ID_WORLD_V6) < 0)
		return -ENOMEM;
	lo.prefixlen = 0;
	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (cidr_cmp(&x->prefixes[m], &lo) < 0)
			a = m + 1;
		else
			b = m;
	}
	for (; a < x->n_prefixes; a++) {
		const struct zt_cidr *p = &x->prefixes[a];
		bool out = false;

		if (p->family != c->family || !zt_cidr_contains(c, p->addr))
			break;
		if (p->prefixlen < c->prefixlen)
			continue;
		for (size_t e = 0; !out && e < pe->n_except; e++)
			out = cidr_inside(p, &pe->except[e]);
		if (!out && push_peer(x, ZT_ID_FIRST_CIDR + (uint32_t)a) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The CIDR identity of an address as the ipcache would give it were no
 * endpoint or host there: its longest ipBlock prefix, else the world.
 */
static uint32_t addr_cidr_id(const struct ctx *x, int family, const uint8_t *addr)
{
	unsigned int max = family == AF_INET ? 32 : 128;

	for (unsigned int plen = max; plen > 0; plen--) {
		struct zt_cidr k = { .family = family, .prefixlen = (uint8_t)plen };
		size_t a = 0, b = x->n_prefixes;

		memcpy(k.addr, addr, alen(family));
		zt_cidr_mask(&k);
		while (a < b) {
			size_t m = a + (b - a) / 2;
			int c = cidr_cmp(&x->prefixes[m], &k);

			if (c == 0)
				return ZT_ID_FIRST_CIDR + (uint32_t)m;
			if (c < 0)
				a = m + 1;
			else
				b = m;
		}
	}
	return family == AF_INET ? ZT_ID_WORLD_V4 : ZT_ID_WORLD_V6;
}

static bool is_cidr_peer(uint32_t id)
{
	return id == ZT_ID_WORLD_V4 || id == ZT_ID_WORLD_V6 ||
	       (id >= ZT_ID_FIRST_CIDR && id < ZT_ID_FIRST_PORT_CLASS);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every (CIDR identity, endpoint identity) pair of an endpoint address. */
static int build_port_classes(struct ctx *x)
{
	const struct zt_polc_input *in = x->in;
	size_t n = 0, cap = 0, k = 0;
	uint64_t *v = NULL;

	for (size_t i = 0; i < in->n_eps; i++)
		for (size_t j = 0;
		     in->eps[i].identity != ZT_ID_PENDING && j < in->eps[i].ev->n_addrs; j++) {
			const struct zt_ep_addr *a = &in->eps[i].ev->addrs[j];

			if (a->family != AF_INET && a->family != AF_INET6)
				continue; /* build_ipcache reports it */
			if (zt_grow((void **)&v, &cap, n + 1, sizeof(*v)) < 0) {
				free(v);
				return -ENOMEM;
			}
			v[n++] = (uint64_t)addr_cidr_id(x, a->family, a->addr) << 32 |
				 in->eps[i].identity;
		}
	if (n > 1)
		qsort(v, n, sizeof(*v), u64_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	x->pclass = v;
	x->n_pclass = k;
	return 0;
}

/* Index of the first port class of CIDR identity cidr (or n_pclass). */
static size_t pclass_first(const struct ctx *x, uint32_t cidr)
{
	size_t a = 0, b = x->n_pclass;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if ((uint32_t)(x->pclass[m] >> 32) < cidr)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static uint32_t pclass_id(const struct ctx *x, uint32_t cidr, uint32_t identity)
{
	uint64_t want = (uint64_t)cidr << 32 | identity;

	for (size_t i = pclass_first(x, cidr); i < x->n_pclass && x->pclass[i] <= want; i++)
		if (x->pclass[i] == want)
			return ZT_ID_FIRST_PORT_CLASS + (uint32_t)i;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void sort_unique_u32(uint32_t *v, size_t *n)
{
	size_t k = 0;

	if (*n > 1)
		qsort(v, *n, sizeof(*v), u32_cmp);
	for (size_t i = 0; i < *n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*n = k;
}

/* Peer identities of a rule into x->peers; ZT_ID_ANY alone when it has no peers. */
static int rule_peers(struct ctx *x, const struct zt_policy *p, const struct zt_pol_rule *r)
{
	x->n_peers = 0;
	if (r->n_peers == 0)
		return push_peer(x, ZT_ID_ANY);
	for (size_t q = 0; q < r->n_peers; q++) {
		const struct zt_pol_peer *pe = &r->peers[q];
		const uint32_t *sel;
		size_t n_sel;

		if (pe->type == ZT_PEER_IPBLOCK) {
			if (ipblock_peers(x, pe) < 0)
				return -ENOMEM;
			continue;
		}
		if (pe->type == ZT_PEER_SERVICE_ACCOUNTS) {
			/* Any address: the tunnel checks the proven identity (seg_workloads.c). */
			if (push_peer(x, ZT_ID_ANY) < 0)
				return -ENOMEM;
			continue;
		}
		if (memo_select(x, false, p->namespace, pe->pod_selector, pe->namespace_selector,
				&sel, &n_sel) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < n_sel; i++)
			if (push_peer(x, x->idents[sel[i]].id) < 0)
				return -ENOMEM;
	}
	sort_unique_u32(x->peers, &x->n_peers);
	return 0;
}

/* ---- ports ---- */

static int u16_cmp(const void *a, const void *b)
{
	uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

	return x < y ? -1 : x > y;
}

/* The ports named pp->name (protocol pp->protocol) on the endpoints of identity id. */
static int resolve_named(struct ctx *x, const struct zt_pol_port *pp, uint32_t id)
{
	const struct ident *it = find_ident(x, id);
	size_t k = 0;

	x->n_named = 0;
	if (!it)
		return 0;
	for (size_t i = it->ep_lo; i < it->ep_hi; i++) {
		const struct zt_eval_endpoint *ev = x->in->eps[x->ep_order[i]].ev;

		for (size_t j = 0; j < ev->n_ports; j++) {
			const struct zt_named_port *np = &ev->ports[j];

			if (np->protocol != pp->protocol || !np->name || strcmp(np->name, pp->name))
				continue;
			if (zt_grow((void **)&x->named, &x->cap_named, x->n_named + 1,
				    sizeof(*x->named)) < 0)
				return -ENOMEM;
			x->named[x->n_named++] = np->port;
		}
	}
	if (x->n_named > 1)
		qsort(x->named, x->n_named, sizeof(*x->named), u16_cmp);
	for (size_t i = 0; i < x->n_named; i++)
		if (k == 0 || x->named[k - 1] != x->named[i])
			x->named[k++] = x->named[i];
	x->n_named = k;
	return 0;
}

/* [lo, hi] as aligned power-of-two blocks. */
static int push_range(struct ctx *x, uint8_t dir, uint32_t local, uint32_t peer, uint8_t proto,
		      uint32_t lo, uint32_t hi, uint32_t rule_id, uint8_t what)
{
	while (lo <= hi) {
		unsigned int bits = 0;
		int r;

		while (bits < 16 && (lo & ((2u << bits) - 1)) == 0 && lo + (2u << bits) - 1 <= hi)
			bits++;
		r = push_raw(x,
			     mkkey(dir, local, peer, proto, (uint16_t)lo, ZT_POL_PLEN_FULL - bits),
			     rule_id, what);
		if (r < 0)
			return r;
		lo += 1u << bits;
	}
	return 0;
}

/*
 * Entries of one rule for (local, peer). Named ports resolve against the
 * destination: the local identity for ingress, the peer for egress. An
 * egress rule without peers (peer ANY) gets its named ports as entries
 * per endpoint identity that has them, since the ANY lookup cannot see the
 * destination.
 */
static int rule_entries(struct ctx *x, const struct zt_pol_rule *r, uint8_t dir, uint32_t local,
			uint32_t peer, uint32_t rule_id, uint8_t what)
{
	int rc;

	if (r->n_ports == 0)
		return push_raw(x, mkkey(dir, local, peer, 0, 0, ZT_POL_PLEN_ANY_PROTO), rule_id,
				what);
	for (size_t i = 0; i < r->n_ports; i++) {
		const struct zt_pol_port *pp = &r->ports[i];

		if (!pp->name) {
			uint32_t lo = pp->port, hi = pp->port ? pp->end_port : 65535;

			if (lo == 0 && hi == 65535)
				rc = push_raw(
					x,
					mkkey(dir, local, peer, pp->protocol, 0, ZT_POL_PLEN_PROTO),
					rule_id, what);
			else
				rc = push_range(x, dir, local, peer, pp->protocol, lo,
						hi < lo ? lo : hi, rule_id, what);
			if (rc < 0)
				return rc;
			continue;
		}
		if (dir == ZT_DIR_EGRESS && is_cidr_peer(peer)) {
			/*
			 * An ipBlock with a named port: only endpoints have
			 * named ports, and the block is the address's; so the
			 * entries go to the port classes (this CIDR identity,
			 * endpoint identity) that endpoint addresses have.
			 */
			for (size_t q = pclass_first(x, peer);
			     q < x->n_pclass && (uint32_t)(x->pclass[q] >> 32) == peer; q++) {
				uint32_t qid = (uint32_t)x->pclass[q];

				rc = resolve_named(x, pp, qid);
				for (size_t k = 0; rc == 0 && k < x->n_named; k++)
					rc = push_raw(x,
						      mkkey(dir, local,
							    ZT_ID_FIRST_PORT_CLASS + (uint32_t)q,
							    pp->protocol, x->named[k],
							    ZT_POL_PLEN_FULL),
						      rule_id, what);
				if (rc < 0)
					return rc;
			}
			continue;
		}
		if (dir == ZT_DIR_EGRESS && peer == ZT_ID_ANY) {
			for (size_t q = 0; q < x->n_idents; q++) {
				uint32_t qid = x->idents[q].id;

				rc = resolve_named(x, pp, qid);
				for (size_t k = 0; rc == 0 && k < x->n_named; k++)
					rc = push_raw(x,
						      mkkey(dir, local, qid, pp->protocol,
							    x->named[k], ZT_POL_PLEN_FULL),
						      rule_id, what);
				if (rc < 0)
					return rc;
			}
			continue;
		}
		rc = resolve_named(x, pp, dir == ZT_DIR_INGRESS ? local : peer);
		for (size_t k = 0; rc == 0 && k < x->n_named; k++)
			rc = push_raw(x,
				      mkkey(dir, local, peer, pp->protocol, x->named[k],
					    ZT_POL_PLEN_FULL),
				      rule_id, what);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- rule ids ---- */

static int build_rules(const struct zt_policy_set *set, struct zt_polc_rule **out, size_t *n_out,
		       uint32_t **base_out)
{
	size_t n = 1;
	struct zt_polc_rule *v;
	uint32_t *base;

	for (size_t i = 0; i < set->n; i++)
		n += 1 + set->policies[i].n_rules[0] + set->policies[i].n_rules[1];
	if (n >= NO_RULE)
		return -E2BIG;
	v = calloc(n, sizeof(*v));
	base = calloc(set->n ? set->n : 1, sizeof(*base));
	if (!v || !base) {
		free(v);
		free(base);
		return -ENOMEM;
	}
	n = 1;
	for (size_t i = 0; i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		base[i] = (uint32_t)n;
		v[n++].policy = p;
		for (int d = 0; d < ZT_POL_DIR_MAX; d++)
			for (size_t j = 0; j < p->n_rules[d]; j++) {
				v[n].policy = p;
				v[n++].rule = &p->rules[d][j];
			}
	}
	*out = v;
	*n_out = n;
	*base_out = base;
	return 0;
}

/* ---- baking ---- */

static int raw_cmp(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->rule_id != y->rule_id)
		return x->rule_id < y->rule_id ? -1 : 1;
	return x->what < y->what ? -1 : x->what > y->what;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static void agg_add_raw(struct agg *g, const struct raw *r)
{
	uint8_t fl = (r->what & RAW_TLS ? ZT_POL_F_REQUIRE_TLS : 0) |
		     (r->what & RAW_MTLS ? ZT_POL_F_REQUIRE_MTLS : 0);

	if (r->what & RAW_HOST) {
		g->enf_allow = g->all_allow = 0; /* id 0 sorts before every rule */
		return;
	}
	if (r->what & RAW_DENY) {
		g->all_deny = min_u32(g->all_deny, r->rule_id);
		if (!(r->what & RAW_AUDIT_MODE))
			g->enf_deny = min_u32(g->enf_deny, r->rule_id);
	} else {
		g->all_allow = min_u32(g->all_allow, r->rule_id);
		if (!(r->what & RAW_AUDIT_MODE)) {
			g->enf_allow = min_u32(g->enf_allow, r->rule_id);
			g->enf_flags |= fl;
		}
	}
}

static void agg_merge(struct agg *g, const struct agg *parent)
{
	g->enf_deny = min_u32(g->enf_deny, parent->enf_deny);
	g->enf_allow = min_u32(g->enf_allow, parent->enf_allow);
	g->all_deny = min_u32(g->all_deny, parent->all_deny);
	g->all_allow = min_u32(g->all_allow, parent->all_allow);
	g->enf_flags |= parent->enf_flags;
}

/* Does block key a (same group and protocol) contain block key b? */
static bool block_contains(u128 a, u128 b)
{
	unsigned int la = KEY_PLEN(a), size_bits = ZT_POL_PLEN_FULL - la;
	uint32_t mask = ~((1u << size_bits) - 1) & 0xffff;

	return la <= KEY_PLEN(b) && (KEY_PORT(b) & mask) == KEY_PORT(a);
}

static void verdict_of(uint32_t deny, uint32_t allow, uint8_t *verdict, uint32_t *rule)
{
	if (deny != NO_RULE) {
		*verdict = ZT_VERDICT_DENY;
		*rule = deny;
	} else if (allow != NO_RULE) {
		*verdict = ZT_VERDICT_ALLOW;
		*rule = allow;
	} else {
		*verdict = ZT_VERDICT_NONE;
		*rule = 0;
	}
}

static int bake(struct ctx *x, struct zt_compiled *c)
{
	struct agg *ag = NULL;
	size_t n = 0, *stack = NULL;

	if (x->n_raw)
		qsort(x->raw, x->n_raw, sizeof(*x->raw), raw_cmp);
	ag = calloc(x->n_raw ? x->n_raw : 1, sizeof(*ag));
	stack = calloc(ZT_POL_PLEN_FULL + 2, sizeof(*stack));
	if (!ag || !stack)
		goto nomem;
	for (size_t i = 0; i < x->n_raw; i++) {
		if (n == 0 || ag[n - 1].key != x->raw[i].key) {
			ag[n].key = x->raw[i].key;
			ag[n].enf_deny = ag[n].enf_allow = NO_RULE;
			ag[n].all_deny = ag[n].all_allow = NO_RULE;
			ag[n].enf_flags = 0;
			n++;
		}
		agg_add_raw(&ag[n - 1], &x->raw[i]);
	}
	if (n > ZT_POLC_MAX_ENTRIES) {
		zt_seterr(x->err, x->errlen,
			  "policy compiles to %zu policy map entries (limit %u); simplify the "
			  "selectors, peers or port ranges",
			  n, ZT_POLC_MAX_ENTRIES);
		free(ag);
		free(stack);
		return -E2BIG;
	}
	/*
	 * Walk each group in key order: the ANY_PROTO entry (protocol 0) first,
	 * then per protocol the blocks by (first port, prefix length), so every
	 * container comes before what it contains. ag[] is updated in place:
	 * once merged with its parent an entry holds its baked combination.
	 */
	for (size_t i = 0; i < n;) {
		size_t j = i, any = SIZE_MAX, depth = 0;
		uint8_t proto = 0;

		while (j < n && KEY_GROUP(ag[j].key) == KEY_GROUP(ag[i].key))
			j++;
		for (size_t k = i; k < j; k++) {
			u128 key = ag[k].key;

			if (KEY_PLEN(key) == ZT_POL_PLEN_ANY_PROTO) {
				any = k;
				continue;
			}
			if (KEY_PROTO(key) != proto) {
				proto = KEY_PROTO(key);
				depth = 0;
			}
			while (depth && !block_contains(ag[stack[depth - 1]].key, key))
				depth--;
			if (depth)
				agg_merge(&ag[k], &ag[stack[depth - 1]]);
			else if (any != SIZE_MAX)
				agg_merge(&ag[k], &ag[any]);
			stack[depth++] = k;
		}
		i = j;
	}
	c->pol = calloc(n ? n : 1, sizeof(*c->pol));
	if (!c->pol)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct zt_polc_pol_entry *e = &c->pol[i];
		u128 key = ag[i].key;

		e->prefixlen = KEY_PLEN(key);
		e->dir = KEY_DIR(key);
		e->local_id = KEY_LOCAL(key);
		e->peer_id = KEY_PEER(key);
		e->proto = KEY_PROTO(key);
		e->port = KEY_PORT(key);
		verdict_of(ag[i].enf_deny, ag[i].enf_allow, &e->val.verdict, &e->val.rule_id);
		verdict_of(ag[i].all_deny, ag[i].all_allow, &e->val.audit_verdict,
			   &e->val.audit_rule_id);
		e->val.flags = e->val.verdict == ZT_VERDICT_ALLOW ? ag[i].enf_flags : 0;
	}
	c->n_pol = n;
	free(ag);
	free(stack);
	return 0;
nomem:
	free(ag);
	free(stack);
	return -ENOMEM;
}

/* ---- ipcache ---- */

struct ipc_tmp {
	struct zt_polc_ipc_entry e;
	int prio; /* same prefix: endpoint 3 > host 2 > CIDR 1 */
	size_t order;
};

static int ipc_tmp_cmp(const void *a, const void *b)
{
	const struct ipc_tmp *x = a, *y = b;
	int c;

	if (x->e.family != y->e.family)
		return x->e.family < y->e.family ? -1 : 1;
	if (x->e.plen != y->e.plen)
		return x->e.plen < y->e.plen ? -1 : 1;
	c = memcmp(x->e.addr, y->e.addr, 16);
	if (c)
		return c;
	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int push_ipc(struct ipc_tmp **v, size_t *n, size_t *cap, int family, uint8_t plen,
		    const uint8_t *addr, uint32_t identity, uint32_t ep_id, int prio)
{
	struct ipc_tmp *t;

	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	if (zt_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	t = &(*v)[*n];
	memset(t, 0, sizeof(*t));
	t->e.family = family;
	t->e.plen = plen;
	if (addr)
		memcpy(t->e.addr, addr, alen(family));
	t->e.val.identity = identity;
	t->e.val.ep_id = ep_id;
	t->prio = prio;
	t->order = *n;
	(*n)++;
	return 0;
}

/* Peer identities that only endpoint addresses' extra fields can reach, sorted. */
static int used_extra_peers(const struct zt_compiled *c, uint32_t **out, size_t *n_out)
{
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < c->n_pol; i++) {
		uint32_t p = c->pol[i].peer_id;

		if (!is_cidr_peer(p) && p < ZT_ID_FIRST_PORT_CLASS)
			continue;
		if (n && v[n - 1] == p)
			continue; /* entries come grouped by peer within a local */
		if (zt_grow((void **)&v, &cap, n + 1, sizeof(*v)) < 0) {
			free(v);
			return -ENOMEM;
		}
		v[n++] = p;
	}
	sort_unique_u32(v, &n);
	*out = v;
	*n_out = n;
	return 0;
}

static bool u32_in(const uint32_t *v, size_t n, uint32_t id)
{
	return n && bsearch(&id, v, n, sizeof(*v), u32_cmp) != NULL;
}

static int build_ipcache(struct ctx *x, struct zt_compiled *c)
{
	const struct zt_polc_input *in = x->in;
	struct ipc_tmp *v = NULL;
	size_t n = 0, cap = 0, k = 0, n_used = 0;
	uint32_t *used = NULL;
	int r = 0;

	r = used_extra_peers(c, &used, &n_used);
	if (r < 0)
		return r;

	r = push_ipc(&v, &n, &cap, AF_INET, 0, NULL, ZT_ID_WORLD_V4, 0, 0);
	if (r == 0)
		r = push_ipc(&v, &n, &cap, AF_INET6, 0, NULL, ZT_ID_WORLD_V6, 0, 0);
	for (size_t i = 0; r == 0 && i < x->n_prefixes; i++)
		r = push_ipc(&v, &n, &cap, x->prefixes[i].family, x->prefixes[i].prefixlen,
			     x->prefixes[i].addr, ZT_ID_FIRST_CIDR + (uint32_t)i, 0, 1);
	for (size_t i = 0; r == 0 && i < in->n_host_addrs; i++) {
		const struct zt_ep_addr *a = &in->host_addrs[i];

		r = push_ipc(&v, &n, &cap, a->family, a->family == AF_INET ? 32 : 128, a->addr,
			     ZT_ID_HOST, 0, 2);
		if (r == -EINVAL)
			zt_seterr(x->err, x->errlen, "host address %zu: family %d is not IPv4/IPv6",
				  i, a->family);
	}
	for (size_t i = 0; r == 0 && i < in->n_eps; i++) {
		const struct zt_polc_endpoint *e = &in->eps[i];

		for (size_t j = 0; r == 0 && j < e->ev->n_addrs; j++) {
			const struct zt_ep_addr *a = &e->ev->addrs[j];

			uint32_t cid, pc;

			r = push_ipc(&v, &n, &cap, a->family, a->family == AF_INET ? 32 : 128,
				     a->addr, e->identity, e->ep_id, 3);
			if (r == -EINVAL)
				zt_seterr(x->err, x->errlen,
					  "endpoint %s/%s address %zu: family %d is not IPv4/IPv6",
					  e->ev->ls.namespace, e->ev->name ? e->ev->name : "?", j,
					  a->family);
			if (r < 0)
				break;
			/* ipBlock peers match endpoints too: the CIDR identity it also has. */
			cid = addr_cidr_id(x, a->family, a->addr);
			pc = pclass_id(x, cid, e->identity);
			v[n - 1].e.val.cidr_id = u32_in(used, n_used, cid) ? cid : 0;
			v[n - 1].e.val.port_class = pc && u32_in(used, n_used, pc) ? pc : 0;
		}
	}
	free(used);
	if (r < 0) {
		free(v);
		return r;
	}
	qsort(v, n, sizeof(*v), ipc_tmp_cmp);
	c->ipc = calloc(n, sizeof(*c->ipc));
	if (!c->ipc) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (k && c->ipc[k - 1].family == v[i].e.family &&
		    c->ipc[k - 1].plen == v[i].e.plen &&
		    memcmp(c->ipc[k - 1].addr, v[i].e.addr, 16) == 0)
			continue; /* the first (highest priority) wins */
		c->ipc[k++] = v[i].e;
	}
	c->n_ipc = k;
	free(v);
	if (k > ZT_POLC_MAX_ENTRIES) {
		zt_seterr(x->err, x->errlen, "%zu ipcache entries (limit %u)", k,
			  ZT_POLC_MAX_ENTRIES);
		return -E2BIG;
	}
	c->cidr_ids = calloc(x->n_prefixes ? x->n_prefixes : 1, sizeof(*c->cidr_ids));
	if (!c->cidr_ids)
		return -ENOMEM;
	for (size_t i = 0; i < x->n_prefixes; i++) {
		c->cidr_ids[i].cidr = x->prefixes[i];
		c->cidr_ids[i].identity = ZT_ID_FIRST_CIDR + (uint32_t)i;
	}
	c->n_cidr_ids = x->n_prefixes;
	return 0;
}

/* ---- compile ---- */

static int compile_rules(struct ctx *x, const uint32_t *base)
{
	const struct zt_policy_set *set = x->in->set;
	uint32_t *locals = NULL;
	int r = 0;

	locals = calloc(x->n_idents ? x->n_idents : 1, sizeof(*locals));
	if (!locals)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];
		bool audit = p->mode == ZT_POL_AUDIT;
		size_t n_loc = 0;
		uint32_t id = base[i] + 1;
		const uint32_t *sel;

		r = memo_select(x, true, p->namespace, &p->pod_selector, NULL, &sel, &n_loc);
		if (r < 0)
			break;
		if (n_loc)
			memcpy(locals, sel, n_loc * sizeof(*locals)); /* the pool may move */
		for (size_t k = 0; k < n_loc; k++) {
			struct ident *it = &x->idents[locals[k]];

			/* Isolation: the first policy (in order) that isolates it. */
			for (int d = 0; d < ZT_DIR_MAX; d++) {
				if (!p->isolates[d])
					continue;
				if (!audit && it->iso_rule[d] == NO_RULE)
					it->iso_rule[d] = base[i];
				if (it->audit_rule[d] == NO_RULE)
					it->audit_rule[d] = base[i];
			}
		}
		for (int d = 0; r == 0 && d < ZT_POL_DIR_MAX; d++)
			for (size_t j = 0; r == 0 && j < p->n_rules[d]; j++, id++) {
				const struct zt_pol_rule *ru = &p->rules[d][j];
				uint8_t what = 0;

				if (!n_loc || !zt_pol_rule_effective(p, ru))
					continue;
				if (ru->action == ZT_RULE_DENY)
					what |= RAW_DENY;
				else
					what |= (ru->require_tls ? RAW_TLS : 0) |
						(ru->require_mutual_auth ? RAW_MTLS : 0);
				if (audit)
					what |= RAW_AUDIT_MODE;
				r = rule_peers(x, p, ru);
				for (size_t l = 0; r == 0 && l < n_loc; l++)
					for (size_t q = 0; r == 0 && q < x->n_peers; q++)
						r = rule_entries(x, ru, (uint8_t)d,
								 x->idents[locals[l]].id,
								 x->peers[q], id, what);
			}
	}
	free(locals);
	return r;
}

static int build_iso(struct ctx *x, struct zt_compiled *c)
{
	bool dflt = x->in->def == ZT_POL_DEFAULT_DENY;

	c->iso = calloc(2 * x->n_idents + 3, sizeof(*c->iso));
	if (!c->iso)
		return -ENOMEM;
	for (int d = 0; d < ZT_DIR_MAX; d++) {
		/* Pending (4) sorts before every label identity (>= 256). */
		if (x->in->pending_isolated) {
			struct zt_polc_iso_entry *e = &c->iso[c->n_iso++];

			e->dir = (uint8_t)d;
			e->identity = ZT_ID_PENDING;
			e->val.isolated = e->val.audit_isolated = e->val.by_default = 1;
		}
		for (size_t i = 0; i < x->n_idents; i++) {
			const struct ident *it = &x->idents[i];
			struct zt_polc_iso_entry *e = &c->iso[c->n_iso];
			bool pol = it->iso_rule[d] != NO_RULE, apol = it->audit_rule[d] != NO_RULE;

			if (!pol && !apol && !dflt)
				continue;
			e->dir = (uint8_t)d;
			e->identity = it->id;
			e->val.isolated = pol || dflt;
			e->val.audit_isolated = apol || dflt;
			e->val.by_default = !pol && dflt;
			e->val.rule_id = pol ? it->iso_rule[d] : 0;
			e->val.audit_rule_id = apol ? it->audit_rule[d] : 0;
			c->n_iso++;
		}
	}
	return 0;
}

void zt_compiled_free(struct zt_compiled *c)
{
	if (!c)
		return;
	free(c->pol);
	free(c->iso);
	free(c->ipc);
	free(c->cidr_ids);
	free(c->rules);
	free(c);
}

int zt_polc_compile(const struct zt_polc_input *in, struct zt_compiled **out, char *err,
		    size_t errlen)
{
	struct ctx x = { .in = in, .err = err, .errlen = errlen };
	struct zt_compiled *c = NULL;
	uint32_t *base = NULL;
	int r;

	zt_seterr(err, errlen, "%s", "");
	if (!in || !in->set || !out || (in->n_eps && !in->eps) ||
	    (in->n_host_addrs && !in->host_addrs)) {
		zt_seterr(err, errlen, "policy compiler: missing input");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		goto fail;
	}
	c->set = in->set;
	r = build_rules(in->set, &c->rules, &c->n_rules, &base);
	if (r == -E2BIG)
		zt_seterr(err, errlen, "too many rules to number");
	if (r == 0)
		r = build_idents(&x);
	if (r == 0)
		r = build_prefixes(&x);
	if (r == 0)
		r = build_port_classes(&x);
	if (r == 0)
		r = compile_rules(&x, base);
	/* The host: always allowed, both ways, for every local identity (pending too). */
	for (size_t i = 0; r == 0 && i < x.n_idents; i++)
		for (uint8_t d = 0; r == 0 && d < ZT_DIR_MAX; d++)
			r = push_raw(
				&x,
				mkkey(d, x.idents[i].id, ZT_ID_HOST, 0, 0, ZT_POL_PLEN_ANY_PROTO),
				0, RAW_HOST);
	for (uint8_t d = 0; r == 0 && in->pending_isolated && d < ZT_DIR_MAX; d++)
		r = push_raw(&x, mkkey(d, ZT_ID_PENDING, ZT_ID_HOST, 0, 0, ZT_POL_PLEN_ANY_PROTO),
			     0, RAW_HOST);
	if (r == 0)
		r = bake(&x, c);
	if (r == 0)
		r = build_iso(&x, c);
	if (r == 0)
		r = build_ipcache(&x, c);
fail:
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "policy compiler: out of memory");
	free(x.ep_order);
	free(x.idents);
	free(x.by_ns);
	free(x.prefixes);
	free(x.pclass);
	free(x.raw);
	free(x.peers);
	free(x.named);
	memo_free(&x.memo);
	free(base);
	if (r < 0) {
		zt_compiled_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int zt_polc_rule_describe(const struct zt_compiled *c, uint32_t rule_id, char *buf, size_t n)
{
	int r;

	if (!n)
		return -ENOSPC;
	if (!c || rule_id >= c->n_rules) {
		r = snprintf(buf, n, "unknown rule %u", rule_id);
		return r < 0 || (size_t)r >= n ? -ENOSPC : -ENOENT;
	}
	if (!c->rules[rule_id].policy) {
		r = snprintf(buf, n, "none");
		return r < 0 || (size_t)r >= n ? -ENOSPC : 0;
	}
	return zt_policy_describe(c->rules[rule_id].policy, c->rules[rule_id].rule, buf, n);
}
