// SPDX-License-Identifier: GPL-2.0-only
/*
 * The parser entry point and what every format shares: addresses with a
 * reason for each way they can be wrong, timestamps, line numbers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "feeds/feed_int.h"

static bool has_byte(const char *s, size_t n, char ch)
{
	return memchr(s, ch, n) != NULL;
}

int feed_addr(const char *s, size_t n, struct zt_cidr *out, bool *host_bits, char *why,
	      size_t whylen)
{
	char tok[64];
	unsigned int min;

	if (n == 0) {
		snprintf(why, whylen, "no address");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x80) {
			snprintf(
				why, whylen,
				"non-ASCII byte 0x%02x at column %zu: not an address (is the feed UTF-16 or binary?)",
				ch, i + 1);
			return -EINVAL;
		}
		if (ch <= 0x20 || ch == 0x7f) {
			snprintf(why, whylen, "control byte 0x%02x at column %zu in the address",
				 ch, i + 1);
			return -EINVAL;
		}
	}
	if (has_byte(s, n, '%')) {
		snprintf(
			why, whylen,
			"IPv6 zone id ('%%...') means one host's link; a feed names global addresses");
		return -EINVAL;
	}
	if (n >= sizeof(tok)) {
		snprintf(why, whylen, "%zu bytes is too long for an address or prefix", n);
		return -EINVAL;
	}
	memcpy(tok, s, n);
	tok[n] = '\0';
	if (zt_cidr_parse(tok, out, host_bits) < 0) {
		if (!strncasecmp(tok, "::ffff:", 7) && strchr(tok, '.'))
			snprintf(
				why, whylen,
				"IPv4-mapped IPv6 address; the datapath sees IPv4 as IPv4: write the IPv4 address");
		else if (has_byte(s, n, '-') && !has_byte(s, n, ':'))
			snprintf(why, whylen,
				 "address ranges (A-B) are not supported; write prefixes");
		else if (has_byte(s, n, '/'))
			snprintf(why, whylen, "not an IPv4 or IPv6 prefix (ADDRESS/LENGTH)");
		else
			snprintf(why, whylen, "not an IPv4 or IPv6 address");
		return -EINVAL;
	}
	min = out->family == AF_INET ? ZT_FEED_MIN_PREFIX_V4 : ZT_FEED_MIN_PREFIX_V6;
	if (out->prefixlen < min) {
		snprintf(
			why, whylen,
			"prefix /%u is shorter than /%u: refused, a feed entry this wide is a mistake or an attack",
			out->prefixlen, min);
		return -EINVAL;
	}
	return 0;
}

int feed_take(struct feed_ctx *x, uint32_t line, const char *tok, size_t n, uint16_t port,
	      uint8_t dir, uint64_t valid_until, const char *ref, size_t ref_len, const char *text,
	      size_t text_len)
{
	struct zt_cidr c;
	bool hb = false;
	char why[128];

	if (feed_addr(tok, n, &c, &hb, why, sizeof(why)) < 0) {
		feed_report(x, line, true, text, text_len, "%s", why);
		return 0;
	}
	if (hb)
		x->r->stats.host_bits++;
	return feed_add(x, &c, port, dir, valid_until, ref, ref_len);
}

uint32_t feed_line_of(struct feed_ctx *x, size_t off)
{
	if (off > x->len)
		off = x->len;
	if (off < x->line_off) {
		x->line_off = 0;
		x->line_at = 1;
	}
	while (x->line_off < off) {
		const char *nl = memchr(x->buf + x->line_off, '\n', off - x->line_off);

		if (!nl) {
			x->line_off = off;
			break;
		}
		x->line_at++;
		x->line_off = (size_t)(nl - x->buf) + 1;
	}
	return x->line_at;
}

uint32_t feed_find_line(struct feed_ctx *x, const char *s, size_t n)
{
	char q[260];
	const char *hit;

	/* Only reports kept in detail need a line; each byte is searched once at most. */
	if (!n || n + 2 > sizeof(q) || x->search_off >= x->len ||
	    x->r->n_problems >= ZT_FEED_REPORTS_MAX)
		return 0;
	q[0] = '"';
	memcpy(q + 1, s, n);
	q[n + 1] = '"';
	hit = memmem(x->buf + x->search_off, x->len - x->search_off, q, n + 2);
	if (!hit) {
		/* Written with escapes, or out of order: no line from here on, rather than O(n^2). */
		x->search_off = x->len;
		return 0;
	}
	x->search_off = (size_t)(hit - x->buf) + n + 2;
	return feed_line_of(x, (size_t)(hit - x->buf));
}

static int digits(const char *s, size_t n, unsigned int *out)
{
	unsigned int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era;
	unsigned int yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned int)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int feed_parse_time(const char *s, size_t n, uint64_t *out)
{
	static const unsigned int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned int Y, M, D, h, m, sec, oh = 0, om = 0;
	int64_t t;
	size_t i = 19;
	int sign = 0;

	/* YYYY-MM-DDTHH:MM:SS */
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &m) || digits(s + 17, 2, &sec))
		return -EINVAL;
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 ||
	    sec > 60)
		return -EINVAL;
	if (i < n && s[i] == '.') {
		size_t f = ++i;

		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return -EINVAL;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		sign = s[i] == '+' ? 1 : -1;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		i = n;
	} else {
		return -EINVAL;
	}
	if (i != n)
		return -EINVAL;
	t = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*out = t < 0 ? 0 : (uint64_t)t;
	return 0;
}

int zt_feed_parse(enum zt_feed_format fmt, const char *buf, size_t len, struct zt_feed_result *out,
		  const struct zt_feed_parse_opts *opts)
{
	static const struct zt_feed_parse_opts none;
	struct feed_ctx x = {
		.r = out,
		.o = opts ? opts : &none,
		.buf = buf ? buf : "",
		.len = len,
		.line_at = 1,
	};

	if (!out || (!buf && len))
		return -EINVAL;
	switch (fmt) {
	case ZT_FEED_CIDR:
	case ZT_FEED_FIREHOL:
		return feed_parse_text(&x, fmt);
	case ZT_FEED_FEODO_CSV:
		return feed_parse_feodo(&x);
	case ZT_FEED_SPAMHAUS_JSON:
		return feed_parse_spamhaus_json(&x);
	case ZT_FEED_STIX2:
		return feed_parse_stix2(&x);
	case ZT_FEED_MISP:
		return feed_parse_misp(&x);
	case ZT_FEED_POLICY:
		return feed_fail(&x, -EOPNOTSUPP,
				 "format policy carries ZeroTrustPolicy documents, not addresses");
	default:
		return feed_fail(&x, -EINVAL, "unknown format %d", (int)fmt);
	}
}
