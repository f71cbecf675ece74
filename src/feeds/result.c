// SPDX-License-Identifier: GPL-2.0-only
/*
 * A feed's parsed content: entries, interned references, reports, and the
 * merge of duplicates. Entries are 40 bytes; a million of them and their
 * references fit in well under 100 MiB.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "feeds/feed_int.h"

int zt_feed_result_init(struct zt_feed_result *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
	r->refs = malloc(256);
	if (!r->refs)
		return -ENOMEM;
	r->refs_cap = 256;
	r->refs[0] = '\0';
	r->refs_len = 1;
	return 0;
}

void zt_feed_result_free(struct zt_feed_result *r)
{
	if (!r)
		return;
	free(r->entries);
	free(r->refs);
	free(r->ref_index);
	free(r->problems);
	free(r->subtractions);
	memset(r, 0, sizeof(*r));
}

static uint32_t hash_str(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

static int index_grow(struct zt_feed_result *r)
{
	size_t slots = r->ref_slots ? r->ref_slots * 2 : 1024;
	uint32_t *idx = calloc(slots, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < r->ref_slots; i++) {
		uint32_t off = r->ref_index[i];
		size_t j;

		if (!off)
			continue;
		j = hash_str(r->refs + off, strlen(r->refs + off)) & (slots - 1);
		while (idx[j])
			j = (j + 1) & (slots - 1);
		idx[j] = off;
	}
	free(r->ref_index);
	r->ref_index = idx;
	r->ref_slots = slots;
	return 0;
}

/*
 * A reference goes into logs, incidents and the API: printable ASCII only
 * (anything else becomes '?'), blanks at the ends trimmed, inner runs of
 * blanks kept, at most ZT_FEED_REF_MAX - 1 bytes.
 */
static size_t clean_ref(const char *s, size_t n, char *out)
{
	size_t o = 0;

	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n && o < ZT_FEED_REF_MAX - 1; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ch == '\t' ? ' ' : '?';
	}
	out[o] = '\0';
	return o;
}

/* The offset of ref in the pool, adding it once; 0 for an empty one. */
static int intern(struct zt_feed_result *r, const char *s, size_t n, uint32_t *out)
{
	char buf[ZT_FEED_REF_MAX];
	size_t len = clean_ref(s, n, buf), j;
	uint32_t h;
	int e;

	*out = 0;
	if (!len)
		return 0;
	if ((r->ref_count + 1) * 2 > r->ref_slots) {
		e = index_grow(r);
		if (e)
			return e;
	}
	h = hash_str(buf, len);
	for (j = h & (r->ref_slots - 1); r->ref_index[j]; j = (j + 1) & (r->ref_slots - 1))
		if (!strcmp(r->refs + r->ref_index[j], buf)) {
			*out = r->ref_index[j];
			return 0;
		}
	if (r->refs_len + len + 1 > UINT32_MAX)
		return -E2BIG;
	if (r->refs_len + len + 1 > r->refs_cap) {
		size_t cap = r->refs_cap * 2;
		char *p;

		while (cap < r->refs_len + len + 1)
			cap *= 2;
		p = realloc(r->refs, cap);
		if (!p)
			return -ENOMEM;
		r->refs = p;
		r->refs_cap = cap;
	}
	memcpy(r->refs + r->refs_len, buf, len + 1);
	r->ref_index[j] = (uint32_t)r->refs_len;
	r->ref_count++;
	*out = (uint32_t)r->refs_len;
	r->refs_len += len + 1;
	return 0;
}

int feed_fail(struct feed_ctx *x, int err, const char *fmt, ...)
{
	struct zt_feed_result *r = x->r;
	va_list ap;
	int n;

	n = snprintf(r->error, sizeof(r->error), "feed=%s%s%s: ", r->name,
		     x->o && x->o->part && *x->o->part ? " file=" : "",
		     x->o && x->o->part ? x->o->part : "");
	if (n < 0 || (size_t)n >= sizeof(r->error))
		return err;
	va_start(ap, fmt);
	vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

void feed_presize(struct feed_ctx *x)
{
	struct zt_feed_result *r = x->r;
	size_t lines = 1;

	for (const char *p = x->buf, *end = x->buf + x->len;
	     (p = memchr(p, '\n', (size_t)(end - p))); p++)
		lines++;
	/* Bounded: blank lines and comments count here too. */
	if (lines > (x->o->max_entries ? x->o->max_entries : 1u << 20))
		lines = x->o->max_entries ? x->o->max_entries : 1u << 20;
	/* A hint only: without the memory, entries grow one doubling at a time. */
	zt_grow((void **)&r->entries, &r->cap, r->n + lines, sizeof(*r->entries));
}

int feed_add(struct feed_ctx *x, const struct zt_cidr *c, uint16_t port, uint8_t dir,
	     uint64_t valid_until, const char *ref, size_t ref_len)
{
	struct zt_feed_result *r = x->r;
	struct zt_feed_entry *e;
	uint32_t off = 0;
	int err;

	if (x->o->max_entries && r->n >= x->o->max_entries)
		return feed_fail(
			x, -E2BIG,
			"more than max_entries (%u) entries before duplicates are merged; raise max_entries if the feed really is this large",
			x->o->max_entries);
	if (r->n == r->cap) {
		err = zt_grow((void **)&r->entries, &r->cap, r->n + 1, sizeof(*r->entries));
		if (err)
			return feed_fail(x, err, "out of memory at %zu entries", r->n);
	}
	if (ref && ref_len) {
		err = intern(r, ref, ref_len, &off);
		if (err)
			return feed_fail(x, err, "out of memory for references at %zu entries",
					 r->n);
	}
	e = &r->entries[r->n++];
	memset(e, 0, sizeof(*e));
	e->cidr = *c;
	e->port = port;
	e->dir = dir ? dir : ZT_FEED_BOTH;
	e->valid_until = valid_until;
	e->ref = off;
	r->stats.good++;
	return 0;
}

/* Printable ASCII excerpt of at most sizeof(excerpt) - 1 bytes, others as \xNN. */
static void excerpt(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			out[o++] = (char)ch;
		} else {
			if (o + 5 > cap)
				break;
			snprintf(out + o, cap - o, "\\x%02x", ch);
			o += 4;
		}
	}
	out[o] = '\0';
}

void feed_report(struct feed_ctx *x, uint32_t line, bool bad, const char *text, size_t text_len,
		 const char *fmt, ...)
{
	struct zt_feed_result *r = x->r;
	struct zt_feed_problem *p;
	va_list ap;

	if (bad)
		r->stats.bad++;
	if (r->n_problems >= ZT_FEED_REPORTS_MAX)
		return;
	if (!r->problems) {
		r->problems = calloc(ZT_FEED_REPORTS_MAX, sizeof(*r->problems));
		if (!r->problems)
			return;
	}
	p = &r->problems[r->n_problems++];
	memset(p, 0, sizeof(*p));
	if (x->o->part)
		excerpt(x->o->part, strlen(x->o->part), p->part, sizeof(p->part));
	p->line = line;
	p->bad = bad;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	/* A reason may quote the feed: keep it printable. */
	for (char *c = p->reason; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	if (text)
		excerpt(text, text_len, p->excerpt, sizeof(p->excerpt));
}

int zt_feed_problem_format(const struct zt_feed_result *r, const struct zt_feed_problem *p,
			   char *buf, size_t n)
{
	char part[sizeof(p->part) * 2], reason[sizeof(p->reason) * 2], text[sizeof(p->excerpt) * 2];
	int w = snprintf(buf, n, "feed=%s%s%s line=%u %s reason=%s text=%s", r->name,
			 p->part[0] ? " file=" : "",
			 p->part[0] ? zt_log_quote(part, sizeof(part), p->part) : "", p->line,
			 p->bad ? "bad=1" : "ignored=1",
			 zt_log_quote(reason, sizeof(reason), p->reason),
			 zt_log_quote(text, sizeof(text), p->excerpt));

	return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/*
 * Sort order and identity of entries: family, address, prefix length, port.
 * Bytes past an IPv4 address are zero (zt_cidr_mask), so both halves
 * compare for either family without a call to memcmp.
 */
static int entry_cmp(const void *pa, const void *pb)
{
	const struct zt_feed_entry *a = pa, *b = pb;
	uint64_t x, y;

	if (a->cidr.family != b->cidr.family)
		return a->cidr.family < b->cidr.family ? -1 : 1;
	x = be64(a->cidr.addr);
	y = be64(b->cidr.addr);
	if (x == y) {
		x = be64(a->cidr.addr + 8);
		y = be64(b->cidr.addr + 8);
	}
	if (x != y)
		return x < y ? -1 : 1;
	if (a->cidr.prefixlen != b->cidr.prefixlen)
		return a->cidr.prefixlen < b->cidr.prefixlen ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return 0;
}

/* Lists are often published sorted: then the sort is one pass. */
static bool is_sorted(const struct zt_feed_entry *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (entry_cmp(&v[i - 1], &v[i]) > 0)
			return false;
	return true;
}

/* Byte b of an entry's sort key: the address, the prefix length, the port (big-endian). */
static unsigned int key_byte(const struct zt_feed_entry *e, unsigned int b, unsigned int alen)
{
	if (b < alen)
		return e->cidr.addr[b];
	if (b == alen)
		return e->cidr.prefixlen;
	return b == alen + 1 ? (unsigned int)e->port >> 8 : e->port & 255u;
}

static void insertion_sort(struct zt_feed_entry *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct zt_feed_entry e = v[i];
		size_t j = i;

		for (; j > 0 && entry_cmp(&v[j - 1], &e) > 0; j--)
			v[j] = v[j - 1];
		v[j] = e;
	}
}

/*
 * Most-significant-byte radix sort of entries of one family, from key
 * byte b on. Each level moves entries sequentially into 256 buckets, and
 * buckets soon fit in the cache; a million shuffled entries sort in a few
 * tens of milliseconds where qsort's indirect merge sort takes 0.4 s.
 */
static void msd_sort(struct zt_feed_entry *v, struct zt_feed_entry *tmp, size_t n, unsigned int b,
		     unsigned int alen)
{
	size_t cnt[256], pos[256], o = 0;

	while (n > 32 && b < alen + 3) {
		unsigned int first = key_byte(&v[0], b, alen);
		size_t i;

		memset(cnt, 0, sizeof(cnt));
		for (i = 0; i < n; i++)
			cnt[key_byte(&v[i], b, alen)]++;
		if (cnt[first] == n) {
			b++; /* every entry has this byte: nothing moves */
			continue;
		}
		for (i = 0, o = 0; i < 256; i++) {
			pos[i] = o;
			o += cnt[i];
		}
		for (i = 0; i < n; i++)
			tmp[pos[key_byte(&v[i], b, alen)]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
		for (i = 0, o = 0; i < 256; o += cnt[i], i++)
			if (cnt[i] > 1)
				msd_sort(v + o, tmp, cnt[i], b + 1, alen);
		return;
	}
	insertion_sort(v, n);
}

/* IPv4 first (AF_INET < AF_INET6), each family in entry_cmp order. */
static void sort_entries(struct zt_feed_entry *v, size_t n)
{
	struct zt_feed_entry *tmp;
	size_t n4 = 0, n6 = 0;

	if (is_sorted(v, n))
		return;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp) {
		qsort(v, n, sizeof(*v), entry_cmp);
		return;
	}
	for (size_t i = 0; i < n; i++)
		n4 += v[i].cidr.family == AF_INET;
	if (n4 != n && n4 != 0) {
		for (size_t i = 0, j = 0; i < n; i++)
			tmp[v[i].cidr.family == AF_INET ? j++ : n4 + n6++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
	msd_sort(v, tmp, n4, 0, 4);
	msd_sort(v + n4, tmp, n - n4, 0, 16);
	free(tmp);
}

size_t feed_sort_unique(struct zt_feed_result *r)
{
	size_t o = 0, merged;

	if (r->n < 2)
		return 0;
	sort_entries(r->entries, r->n);
	for (size_t i = 1; i < r->n; i++) {
		struct zt_feed_entry *keep = &r->entries[o], *e = &r->entries[i];

		if (entry_cmp(keep, e)) {
			r->entries[++o] = *e;
			continue;
		}
		if (!keep->valid_until || !e->valid_until)
			keep->valid_until = 0;
		else if (e->valid_until > keep->valid_until)
			keep->valid_until = e->valid_until;
		keep->dir |= e->dir;
		/* Interned in input order: the smaller offset was seen first. */
		if (e->ref && (!keep->ref || e->ref < keep->ref))
			keep->ref = e->ref;
	}
	o++;
	merged = r->n - o;
	r->n = o;
	return merged;
}

int zt_feed_finish(struct zt_feed_result *r, uint32_t max_bad_ppm)
{
	uint64_t seen = r->stats.good + r->stats.bad;

	/* 128-bit-free: both sides stay under 2^64 for any count below 2^44. */
	if (r->stats.bad && r->stats.bad * 1000000ULL > (uint64_t)max_bad_ppm * seen) {
		snprintf(
			r->error, sizeof(r->error),
			"feed=%s: %llu of %llu items are bad (%.2f%%), over max_bad_fraction %.4g%%; the feed is refused and its last good content stays",
			r->name, (unsigned long long)r->stats.bad, (unsigned long long)seen,
			100.0 * (double)r->stats.bad / (double)seen, (double)max_bad_ppm / 1e4);
		return -EBADMSG;
	}
	r->stats.duplicates += feed_sort_unique(r);
	return 0;
}
