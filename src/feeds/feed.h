/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Threat-intelligence feeds: what a feed's content turns into.
 *
 * A parser is a pure function over a buffer: no I/O, no clock (the caller
 * passes "now"), no global state, no logging. It appends entries to a
 * struct zt_feed_result and reports each line it refuses with the feed's
 * name, the file, the line number and a reason. zt_feed_finish() merges
 * duplicates and applies the bad-fraction bound; zt_feed_subtract() removes
 * what a feed must never block (built-in special-purpose ranges and the
 * caller's lists) and reports it. zt_feed_load() does all three over the
 * parts of a fetched body.
 */
#ifndef ZT_FEEDS_FEED_H
#define ZT_FEEDS_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/util.h"

#define ZT_FEED_REF_MAX 128 /* a reference's bytes, NUL included */
#define ZT_FEED_LINE_MAX 4096 /* a longer text line is refused (JSON lines: 64 KiB) */
#define ZT_FEED_JSON_LINE_MAX 65536
#define ZT_FEED_REPORTS_MAX 100 /* problems and subtractions kept in detail; all are counted */
#define ZT_FEED_SPLIT_MAX 1024 /* a prefix split around protected ranges into more is refused */
#define ZT_FEED_MIN_PREFIX_V4 8 /* shorter prefixes are refused */
#define ZT_FEED_MIN_PREFIX_V6 16

/*
 * One indicator: an address or prefix, with what the feed says about it.
 * Entries of a finished result are sorted by (family, address, prefix
 * length, port) and unique on that key, so two versions of a feed diff in
 * one merge pass.
 */
struct zt_feed_entry {
	struct zt_cidr cidr; /* host bits zero */
	uint64_t valid_until; /* unix seconds; 0 = the feed gives no end */
	uint32_t ref; /* offset of a NUL-terminated string in zt_feed_result.refs; 0 = none ("") */
	uint16_t port; /* 0 = every port; else the port the feed names (Feodo, MISP ip-dst|port) */
	uint8_t dir; /* enum zt_feed_direction bits the feed itself gives (MISP ip-src/ip-dst); BOTH when it says nothing */
	uint8_t pad;
};

/* A refused (or, with bad == false, ignored but notable) line or item. */
struct zt_feed_problem {
	char part[64]; /* file of a directory feed; "" for a single body */
	uint32_t line; /* 1-based; 0 when it concerns the whole part */
	bool bad; /* counts toward max_bad_fraction */
	char reason[128];
	char excerpt[64]; /* the start of the line, printable ASCII, others as \xNN */
};

/* An entry that met a range a feed must never block. */
struct zt_feed_subtraction {
	struct zt_cidr entry; /* as the feed gave it */
	struct zt_cidr met; /* the (first) protected range it overlaps */
	char list[24]; /* which list: "special-purpose", or the caller's label */
	uint32_t pieces; /* 0: removed whole; else replaced by this many narrower prefixes */
	uint32_t ref;
	bool refused; /* removed whole: splitting needed more than ZT_FEED_SPLIT_MAX prefixes */
};

struct zt_feed_stats {
	uint64_t items; /* data lines or JSON items looked at (not comments or blanks) */
	uint64_t good; /* entries taken, before duplicates merge */
	uint64_t bad; /* refused: reported, counted toward max_bad_fraction */
	uint64_t ignored; /* not an IP indicator (other STIX patterns, to_ids false, ...) */
	uint64_t expired; /* valid_until already past */
	uint64_t host_bits; /* prefixes given with host bits set, taken masked */
	uint64_t duplicates; /* merged into another entry */
	uint64_t subtracted; /* removed whole by zt_feed_subtract() */
	uint64_t split; /* split around a protected range */
};

struct zt_feed_result {
	char name[ZT_FEED_NAME_MAX];
	struct zt_feed_entry *entries;
	size_t n, cap;
	char *refs; /* string pool; refs[0] == '\0' */
	size_t refs_len, refs_cap;
	uint32_t *ref_index; /* open addressing over refs, for interning */
	size_t ref_slots, ref_count;
	struct zt_feed_problem *problems; /* the first ZT_FEED_REPORTS_MAX */
	size_t n_problems;
	struct zt_feed_subtraction *subtractions; /* the first ZT_FEED_REPORTS_MAX */
	size_t n_subtractions;
	struct zt_feed_stats stats;
	char error[256]; /* why the whole feed was refused, when a call returned < 0 */
};

struct zt_feed_parse_opts {
	const char *feed; /* name, for reports */
	const char *part; /* file name inside a directory feed, or NULL */
	uint64_t now_unix; /* entries valid_until <= now are dropped; 0: keep all */
	uint32_t max_entries; /* refuse the feed past this many entries; 0: no bound */
};

/* An empty result for feed name. 0 or -ENOMEM. */
int zt_feed_result_init(struct zt_feed_result *r, const char *name);
/* Frees what r holds; r is left empty (may be reused after zt_feed_result_init). */
void zt_feed_result_free(struct zt_feed_result *r);
/* The reference of e ("" when none). */
static inline const char *zt_feed_ref(const struct zt_feed_result *r, const struct zt_feed_entry *e)
{
	return r->refs ? r->refs + e->ref : "";
}

/*
 * Parses one buffer in the given format and appends its entries to out.
 * Bad lines/items are counted and reported in out and skipped. Returns 0,
 * or a negative errno with out->error saying why the whole buffer is
 * refused: -EBADMSG (not a document of this format: truncated JSON, wrong
 * top-level type, ...), -E2BIG (more than max_entries), -ENOMEM,
 * -EOPNOTSUPP (ZT_FEED_POLICY is not an IOC format), -EINVAL (bad args).
 * This is the entry point for fuzzing: it reads exactly len bytes of buf,
 * which need not be NUL-terminated.
 */
int zt_feed_parse(enum zt_feed_format fmt, const char *buf, size_t len, struct zt_feed_result *out,
		  const struct zt_feed_parse_opts *opts);

/*
 * Sorts and merges duplicates (same prefix and port: the latest
 * valid_until wins, 0 meaning none beats any, directions are OR-ed, the
 * earliest reference stays), then applies the bound: more than
 * max_bad_ppm bad items per million items looked at refuses the feed
 * (-EBADMSG, out->error says how many of how many).
 */
int zt_feed_finish(struct zt_feed_result *r, uint32_t max_bad_ppm);

/* A list of ranges a feed must never block, with a label for reports. */
struct zt_feed_guard_list {
	const char *label; /* "protected", "allowlist", "node", ... (at most 23 bytes shown) */
	const struct zt_cidr *cidrs;
	size_t n;
};

/* The built-in special-purpose ranges (see README, "Feeds"). */
extern const char *const zt_feed_special_ranges[];

/*
 * Removes from a finished result every part of an entry that overlaps the
 * built-in special-purpose ranges or one of lists[]. An entry inside a
 * protected range is removed; an entry containing one is split into the
 * narrowest set of prefixes that covers the rest (at most
 * ZT_FEED_SPLIT_MAX, else removed whole and reported so). The result stays
 * sorted and unique. 0 or -ENOMEM / -EINVAL.
 */
int zt_feed_subtract(struct zt_feed_result *r, const struct zt_feed_guard_list *lists,
		     size_t n_lists);

/* The addresses of this node's interfaces (getifaddrs) as host prefixes, in a new array. */
int zt_feed_node_addrs(struct zt_cidr **out, size_t *n);

/* One file of a body (a directory feed has one per file, sorted by name). */
struct zt_feed_part {
	char name[256]; /* file name in a directory feed, "" otherwise */
	const char *data;
	size_t len;
};

struct zt_feed_body {
	struct zt_feed_part *parts;
	size_t n_parts;
	size_t total; /* bytes over all parts */
	char *store; /* what the parts point into; owned */
	size_t store_cap;
	uint8_t digest[32]; /* SHA-256 over names and contents */
};

void zt_feed_body_free(struct zt_feed_body *b);

/*
 * Parse every part, finish, subtract: the whole path from a body to the
 * entries of one feed. A body of zero bytes is refused (-ENODATA): a server
 * answering "200, nothing" must not empty a feed. On error out->error says
 * what and where.
 */
int zt_feed_load(const struct zt_feed_config *fc, const struct zt_feed_body *body,
		 uint64_t now_unix, const struct zt_feed_guard_list *lists, size_t n_lists,
		 struct zt_feed_result *out);

/* "feed=NAME file=F line=N reason=\"...\" text=\"...\"" for a log line. */
int zt_feed_problem_format(const struct zt_feed_result *r, const struct zt_feed_problem *p,
			   char *buf, size_t n);

#endif
