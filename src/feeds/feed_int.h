/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the parsers of src/feeds/: appending entries, reporting, addresses. */
#ifndef ZT_FEEDS_FEED_INT_H
#define ZT_FEEDS_FEED_INT_H

#include <stdarg.h>

#include "feeds/feed.h"

/* One parse call: the result it appends to and the options it was given. */
struct feed_ctx {
	struct zt_feed_result *r;
	const struct zt_feed_parse_opts *o;
	const char *buf; /* the whole buffer, for line numbers of JSON items */
	size_t len;
	size_t line_off; /* incremental line counting: lines before byte line_off */
	uint32_t line_at;
	size_t search_off; /* where the next JSON item is looked for */
};

/* Makes room for one entry per line of the buffer (a line format's upper bound). */
void feed_presize(struct feed_ctx *x);

/*
 * Appends one entry; ref (len bytes, may be NULL) is cleaned and interned.
 * -E2BIG past max_entries (r->error says so), -ENOMEM.
 */
int feed_add(struct feed_ctx *x, const struct zt_cidr *c, uint16_t port, uint8_t dir,
	     uint64_t valid_until, const char *ref, size_t ref_len);

/*
 * Reports a line or item: bad counts toward the bound (and stats.bad),
 * otherwise it is a notable item ignored (stats.ignored is the caller's).
 * text/text_len: the line or value, for the excerpt. Never fails.
 */
void feed_report(struct feed_ctx *x, uint32_t line, bool bad, const char *text, size_t text_len,
		 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Sets r->error ("feed=... file=...: <message>") and returns err. */
int feed_fail(struct feed_ctx *x, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * An address or prefix token of n bytes. On failure writes why (for a
 * report) and returns -EINVAL: zone ids, non-ASCII, junk, prefixes shorter
 * than ZT_FEED_MIN_PREFIX_V4/V6 each get their own reason.
 */
int feed_addr(const char *s, size_t n, struct zt_cidr *out, bool *host_bits, char *why,
	      size_t whylen);

/* Takes an address token and appends it, or reports it as bad at line. */
int feed_take(struct feed_ctx *x, uint32_t line, const char *tok, size_t n, uint16_t port,
	      uint8_t dir, uint64_t valid_until, const char *ref, size_t ref_len, const char *text,
	      size_t text_len);

/* Sorts r's entries and merges those with the same key; returns how many were merged away. */
size_t feed_sort_unique(struct zt_feed_result *r);

/* The 1-based line of byte off (off only grows between calls on one ctx). */
uint32_t feed_line_of(struct feed_ctx *x, size_t off);
/*
 * The line where quoted string s (n bytes) next appears after the last one
 * found; 0 when it does not, and for every later call, or when reports are full.
 */
uint32_t feed_find_line(struct feed_ctx *x, const char *s, size_t n);

/* "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123Z", "...+00:00": unix seconds. */
int feed_parse_time(const char *s, size_t n, uint64_t *out);

struct json_object;
/*
 * The whole buffer as one JSON document (json-c, strict, UTF-8 checked,
 * depth-bounded). -EBADMSG with r->error naming line and column when it
 * is not one.
 */
int feed_json_doc(struct feed_ctx *x, struct json_object **out);
/* The string value of key k of object o, or NULL (n: its length). */
const char *feed_json_str(struct json_object *o, const char *k, size_t *n);

int feed_parse_text(struct feed_ctx *x, enum zt_feed_format fmt);
int feed_parse_feodo(struct feed_ctx *x);
int feed_parse_spamhaus_json(struct feed_ctx *x);
int feed_parse_stix2(struct feed_ctx *x);
int feed_parse_misp(struct feed_ctx *x);

#endif
