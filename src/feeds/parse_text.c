// SPDX-License-Identifier: GPL-2.0-only
/*
 * Line formats: plain address/prefix lists (Spamhaus DROP/EDROP text,
 * abuse.ch IP lists, FireHOL .netset/.ipset) and the Feodo Tracker CSV.
 *
 * A line is at most ZT_FEED_LINE_MAX bytes; "\r\n" is a line end; a last
 * line without '\n' counts. Nothing is copied but the address token.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_int.h"

struct line {
	const char *p;
	size_t n; /* without "\r\n" */
	uint32_t no; /* 1-based */
};

/* The next line at *off; false at the end. */
static bool next_line(struct feed_ctx *x, size_t *off, struct line *l)
{
	const char *s, *nl;
	size_t rest;

	if (*off >= x->len)
		return false;
	s = x->buf + *off;
	rest = x->len - *off;
	nl = memchr(s, '\n', rest);
	l->p = s;
	l->n = nl ? (size_t)(nl - s) : rest;
	*off += l->n + (nl ? 1 : 0);
	if (l->n && s[l->n - 1] == '\r')
		l->n--;
	l->no++;
	return true;
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_comment(char ch, bool semicolon)
{
	return ch == '#' || (semicolon && ch == ';');
}

static void trim(const char **p, size_t *n)
{
	while (*n && blank(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && blank((*p)[*n - 1]))
		(*n)--;
}

static bool too_long(struct feed_ctx *x, const struct line *l)
{
	if (l->n <= ZT_FEED_LINE_MAX)
		return false;
	x->r->stats.items++;
	feed_report(x, l->no, true, l->p, l->n, "line of %zu bytes is longer than %d", l->n,
		    ZT_FEED_LINE_MAX);
	return true;
}

/*
 * ADDRESS[/LEN] [; comment | # comment]. A comment after the address is
 * the entry's reference in the cidr format ("1.10.16.0/20 ; SBL256894").
 * FireHOL lists put nothing after addresses and only '#' comments.
 */
int feed_parse_text(struct feed_ctx *x, enum zt_feed_format fmt)
{
	bool semi = fmt != ZT_FEED_FIREHOL; /* ';' starts a comment too */
	struct line l = { 0 };
	size_t off = 0;
	int err;

	feed_presize(x);
	while (next_line(x, &off, &l)) {
		const char *p = l.p, *ref = NULL;
		size_t n = l.n, tok, ref_len = 0;

		if (too_long(x, &l))
			continue;
		trim(&p, &n);
		if (!n || is_comment(p[0], semi))
			continue;
		x->r->stats.items++;
		tok = 0;
		while (tok < n && !blank(p[tok]) && !is_comment(p[tok], semi))
			tok++;
		if (tok < n) {
			const char *rest = p + tok;
			size_t rn = n - tok;

			trim(&rest, &rn);
			if (rn && !is_comment(rest[0], semi)) {
				feed_report(
					x, l.no, true, l.p, l.n,
					"text after the address; only a '%s' comment may follow",
					fmt == ZT_FEED_FIREHOL ? "#" : "#' or ';");
				continue;
			}
			if (rn && fmt == ZT_FEED_CIDR) {
				ref = rest + 1;
				ref_len = rn - 1;
			}
		}
		err = feed_take(x, l.no, p, tok, 0, ZT_FEED_BOTH, 0, ref, ref_len, l.p, l.n);
		if (err)
			return err;
	}
	return 0;
}

#define CSV_FIELDS 16
#define CSV_FIELD_MAX 256

struct csv {
	char f[CSV_FIELDS][CSV_FIELD_MAX];
	size_t len[CSV_FIELDS];
	unsigned int n;
};

/*
 * RFC 4180 fields of one line: "a","b ""c""",d. -EINVAL on an unclosed
 * quote, text after a closing quote, more than CSV_FIELDS fields or a field
 * over CSV_FIELD_MAX - 1 bytes.
 */
static int csv_split(const char *p, size_t n, struct csv *c)
{
	size_t i = 0;

	c->n = 0;
	for (;;) {
		size_t o = 0;
		char *f;

		if (c->n == CSV_FIELDS)
			return -EINVAL;
		f = c->f[c->n];
		while (i < n && blank(p[i]))
			i++;
		if (i < n && p[i] == '"') {
			for (i++;; i++) {
				if (i >= n)
					return -EINVAL;
				if (p[i] == '"') {
					if (i + 1 < n && p[i + 1] == '"') {
						i++;
					} else {
						i++;
						break;
					}
				}
				if (o + 1 >= CSV_FIELD_MAX)
					return -EINVAL;
				f[o++] = p[i];
			}
			while (i < n && blank(p[i]))
				i++;
			if (i < n && p[i] != ',')
				return -EINVAL;
		} else {
			while (i < n && p[i] != ',') {
				if (o + 1 >= CSV_FIELD_MAX)
					return -EINVAL;
				f[o++] = p[i++];
			}
			while (o && blank(f[o - 1]))
				o--;
		}
		f[o] = '\0';
		c->len[c->n++] = o;
		if (i >= n)
			return 0;
		i++; /* ',' */
	}
}

/* Column numbers the header names; the defaults are today's Feodo layout. */
struct feodo_cols {
	int ip, port, malware;
};

static bool feodo_header(const struct csv *c, struct feodo_cols *cols)
{
	struct feodo_cols h = { -1, -1, -1 };

	for (unsigned int i = 0; i < c->n; i++) {
		const char *f = c->f[i];

		if (!strcmp(f, "dst_ip") || !strcmp(f, "ip_address") || !strcmp(f, "ip"))
			h.ip = (int)i;
		else if (!strcmp(f, "dst_port") || !strcmp(f, "port"))
			h.port = (int)i;
		else if (!strcmp(f, "malware"))
			h.malware = (int)i;
	}
	if (h.ip < 0)
		return false;
	*cols = h;
	return true;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned int v = 0;

	if (n == 0) {
		*out = 0;
		return 0;
	}
	if (n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/*
 * abuse.ch Feodo Tracker CSV:
 *   # first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware
 *   "2021-01-17 07:44:46","51.178.161.32","4643","online","2024-02-19","Dridex"
 * The header (commented or not) says where the columns are; without one,
 * the layout above. The malware family is the entry's reference.
 */
int feed_parse_feodo(struct feed_ctx *x)
{
	struct feodo_cols cols = { 1, 2, 5 };
	struct line l = { 0 };
	struct csv *c;
	size_t off = 0;
	int err = 0;

	c = malloc(sizeof(*c));
	if (!c)
		return feed_fail(x, -ENOMEM, "out of memory");
	while (next_line(x, &off, &l)) {
		const char *p = l.p;
		size_t n = l.n;
		uint16_t port = 0;
		bool header;

		if (too_long(x, &l))
			continue;
		trim(&p, &n);
		if (!n)
			continue;
		header = p[0] == '#';
		if (header) {
			p++;
			n--;
			trim(&p, &n);
			if (csv_split(p, n, c) == 0 && c->n > 1)
				feodo_header(c, &cols);
			continue;
		}
		if (csv_split(p, n, c) < 0) {
			x->r->stats.items++;
			feed_report(
				x, l.no, true, l.p, l.n,
				"not a CSV line (unclosed quote, over %d fields or a field over %d bytes)",
				CSV_FIELDS, CSV_FIELD_MAX - 1);
			continue;
		}
		/* An uncommented header line. */
		if (feodo_header(c, &cols))
			continue;
		x->r->stats.items++;
		if ((int)c->n <= cols.ip || (cols.port >= 0 && (int)c->n <= cols.port)) {
			feed_report(x, l.no, true, l.p, l.n, "%u fields; the address is field %d",
				    c->n, cols.ip + 1);
			continue;
		}
		if (cols.port >= 0 && parse_port(c->f[cols.port], c->len[cols.port], &port) < 0) {
			feed_report(x, l.no, true, l.p, l.n, "port '%s' is not 1 to 65535",
				    c->f[cols.port]);
			continue;
		}
		err = feed_take(
			x, l.no, c->f[cols.ip], c->len[cols.ip], port, ZT_FEED_BOTH, 0,
			cols.malware >= 0 && (int)c->n > cols.malware ? c->f[cols.malware] : NULL,
			cols.malware >= 0 && (int)c->n > cols.malware ? c->len[cols.malware] : 0,
			l.p, l.n);
		if (err)
			break;
	}
	free(c);
	return err;
}
