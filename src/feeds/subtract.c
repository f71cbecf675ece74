// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a feed must never block, taken out of its entries.
 *
 * The built-in list holds ranges that are never a remote attacker's source
 * or a pod's legitimate destination on the internet, and whose blocking
 * breaks the node itself: "this network", loopback, link-local (also the
 * cloud metadata address), multicast and the reserved 240/4 with the
 * broadcast address. Private ranges (RFC 1918, 100.64/10, 198.18/15, ULA)
 * are deliberately not in it: inside a cluster they can be real
 * indicators, and the caller's protected list is where an operator says
 * which of them are the cluster's own.
 *
 * An entry inside a protected range is removed. An entry that contains one
 * is split: the protected part stays open, the rest stays blocked (a
 * provider's /16 listed by a feed does not become unblocked because one
 * partner address is in it). Splitting needs at most one prefix per bit
 * between the two lengths per protected range; past ZT_FEED_SPLIT_MAX the
 * entry is removed whole and reported so.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_int.h"

typedef unsigned __int128 u128;

const char *const zt_feed_special_ranges[] = {
	"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
	"::/128",    "::1/128",	    "fe80::/10",      "ff00::/8",    NULL,
};

#define SPECIAL_LABEL "special-purpose"

struct range {
	u128 lo, hi;
	struct zt_cidr cidr; /* the first range merged into this one, for reports */
	const char *label;
};

struct rangeset {
	struct range *v[2]; /* [0] IPv4, [1] IPv6; sorted, disjoint */
	size_t n[2], cap[2];
};

static unsigned int fam_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static u128 to_u128(const struct zt_cidr *c)
{
	unsigned int bytes = fam_bits(c->family) / 8;
	u128 v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v = (v << 8) | c->addr[i];
	return v;
}

static void from_u128(int family, u128 v, uint8_t plen, struct zt_cidr *c)
{
	unsigned int bytes = fam_bits(family) / 8;

	memset(c, 0, sizeof(*c));
	c->family = family;
	c->prefixlen = plen;
	for (unsigned int i = bytes; i-- > 0;) {
		c->addr[i] = (uint8_t)v;
		v >>= 8;
	}
}

static u128 host_mask(int family, unsigned int plen)
{
	unsigned int host = fam_bits(family) - plen;

	return host >= 128 ? ~(u128)0 : (((u128)1 << host) - 1);
}

static void bounds(const struct zt_cidr *c, u128 *lo, u128 *hi)
{
	*lo = to_u128(c);
	*hi = *lo | host_mask(c->family, c->prefixlen);
}

static int rs_add(struct rangeset *rs, const struct zt_cidr *c, const char *label)
{
	int f = c->family == AF_INET ? 0 : 1;
	struct range *r;
	int err;

	if (c->family != AF_INET && c->family != AF_INET6)
		return -EINVAL;
	err = zt_grow((void **)&rs->v[f], &rs->cap[f], rs->n[f] + 1, sizeof(*rs->v[f]));
	if (err)
		return err;
	r = &rs->v[f][rs->n[f]++];
	bounds(c, &r->lo, &r->hi);
	r->cidr = *c;
	r->label = label;
	return 0;
}

static int range_cmp(const void *pa, const void *pb)
{
	const struct range *a = pa, *b = pb;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->hi > b->hi ? -1 : a->hi < b->hi; /* wider first: it names the merge */
}

/* Sorts and merges overlapping ranges, so one binary search answers a query. */
static void rs_merge(struct rangeset *rs)
{
	for (int f = 0; f < 2; f++) {
		size_t o = 0;

		if (!rs->n[f])
			continue;
		qsort(rs->v[f], rs->n[f], sizeof(*rs->v[f]), range_cmp);
		for (size_t i = 1; i < rs->n[f]; i++) {
			struct range *k = &rs->v[f][o], *r = &rs->v[f][i];

			if (r->lo <= k->hi) {
				if (r->hi > k->hi)
					k->hi = r->hi;
			} else {
				rs->v[f][++o] = *r;
			}
		}
		rs->n[f] = o + 1;
	}
}

static void rs_free(struct rangeset *rs)
{
	free(rs->v[0]);
	free(rs->v[1]);
}

enum overlap { O_NONE, O_INSIDE, O_PARTIAL };

static enum overlap query(const struct rangeset *rs, int family, u128 lo, u128 hi,
			  const struct range **hit)
{
	int f = family == AF_INET ? 0 : 1;
	const struct range *v = rs->v[f];
	size_t a = 0, b = rs->n[f];

	/* The first range ending at or after lo. */
	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (v[m].hi < lo)
			a = m + 1;
		else
			b = m;
	}
	if (a == rs->n[f] || v[a].lo > hi)
		return O_NONE;
	*hit = &v[a];
	return v[a].lo <= lo && v[a].hi >= hi ? O_INSIDE : O_PARTIAL;
}

struct pieces {
	struct zt_feed_entry *v;
	size_t n, cap;
};

/* Appends the parts of [base/plen] outside rs; -E2BIG past budget pieces. */
static int split(const struct rangeset *rs, const struct zt_feed_entry *e, u128 base,
		 unsigned int plen, struct pieces *out, size_t *budget)
{
	const struct range *hit;
	u128 hi = base | host_mask(e->cidr.family, plen);
	struct zt_feed_entry *p;
	int err;

	switch (query(rs, e->cidr.family, base, hi, &hit)) {
	case O_INSIDE:
		return 0;
	case O_PARTIAL:
		/* A partial overlap always leaves room for a longer prefix. */
		err = split(rs, e, base, plen + 1, out, budget);
		if (!err)
			err = split(rs, e,
				    base | ((u128)1 << (fam_bits(e->cidr.family) - plen - 1)),
				    plen + 1, out, budget);
		return err;
	case O_NONE:
		break;
	}
	if (!*budget)
		return -E2BIG;
	(*budget)--;
	err = zt_grow((void **)&out->v, &out->cap, out->n + 1, sizeof(*out->v));
	if (err)
		return err;
	p = &out->v[out->n++];
	*p = *e;
	from_u128(e->cidr.family, base, (uint8_t)plen, &p->cidr);
	return 0;
}

static void note(struct zt_feed_result *r, const struct zt_feed_entry *e, const struct range *hit,
		 uint32_t pieces, bool refused)
{
	struct zt_feed_subtraction *s;

	if (r->n_subtractions >= ZT_FEED_REPORTS_MAX)
		return;
	if (!r->subtractions) {
		r->subtractions = calloc(ZT_FEED_REPORTS_MAX, sizeof(*r->subtractions));
		if (!r->subtractions)
			return;
	}
	s = &r->subtractions[r->n_subtractions++];
	memset(s, 0, sizeof(*s));
	s->entry = e->cidr;
	s->met = hit->cidr;
	snprintf(s->list, sizeof(s->list), "%s", hit->label);
	s->pieces = pieces;
	s->refused = refused;
	s->ref = e->ref;
}

int zt_feed_subtract(struct zt_feed_result *r, const struct zt_feed_guard_list *lists,
		     size_t n_lists)
{
	struct rangeset rs = { 0 };
	struct pieces pcs = { 0 };
	size_t o = 0;
	int err = 0;

	for (const char *const *s = zt_feed_special_ranges; *s && !err; s++) {
		struct zt_cidr c;

		err = zt_cidr_parse(*s, &c, NULL);
		if (!err)
			err = rs_add(&rs, &c, SPECIAL_LABEL);
	}
	for (size_t l = 0; l < n_lists && !err; l++)
		for (size_t i = 0; i < lists[l].n && !err; i++) {
			struct zt_cidr c = lists[l].cidrs[i];

			zt_cidr_mask(&c);
			err = rs_add(&rs, &c, lists[l].label ? lists[l].label : "protected");
		}
	if (err)
		goto out;
	rs_merge(&rs);

	for (size_t i = 0; i < r->n; i++) {
		const struct zt_feed_entry *e = &r->entries[i];
		const struct range *hit = NULL;
		size_t before, budget = ZT_FEED_SPLIT_MAX;
		u128 lo, hi;

		bounds(&e->cidr, &lo, &hi);
		switch (query(&rs, e->cidr.family, lo, hi, &hit)) {
		case O_NONE:
			r->entries[o++] = *e;
			continue;
		case O_INSIDE:
			r->stats.subtracted++;
			note(r, e, hit, 0, false);
			continue;
		case O_PARTIAL:
			break;
		}
		before = pcs.n;
		err = split(&rs, e, lo, e->cidr.prefixlen, &pcs, &budget);
		if (err == -E2BIG) {
			pcs.n = before;
			r->stats.subtracted++;
			note(r, e, hit, 0, true);
			err = 0;
			continue;
		}
		if (err)
			goto out;
		r->stats.split++;
		note(r, e, hit, (uint32_t)(pcs.n - before), false);
	}
	r->n = o;
	if (pcs.n) {
		err = zt_grow((void **)&r->entries, &r->cap, r->n + pcs.n, sizeof(*r->entries));
		if (err)
			goto out;
		memcpy(r->entries + r->n, pcs.v, pcs.n * sizeof(*pcs.v));
		r->n += pcs.n;
		r->stats.duplicates += feed_sort_unique(r);
	}
out:
	free(pcs.v);
	rs_free(&rs);
	return err;
}

int zt_feed_node_addrs(struct zt_cidr **out, size_t *n)
{
	struct ifaddrs *ifa = NULL;
	struct zt_cidr *v = NULL;
	size_t cap = 0;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (struct ifaddrs *i = ifa; i && !err; i = i->ifa_next) {
		struct zt_cidr c = { 0 };

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			c.family = AF_INET;
			c.prefixlen = 32;
			memcpy(c.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			c.family = AF_INET6;
			c.prefixlen = 128;
			memcpy(c.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		err = zt_grow((void **)&v, &cap, *n + 1, sizeof(*v));
		if (!err)
			v[(*n)++] = c;
	}
	freeifaddrs(ifa);
	if (err) {
		free(v);
		*n = 0;
		return err;
	}
	*out = v;
	return 0;
}
