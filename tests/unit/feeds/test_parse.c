// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: every feed format from its fixture, and the hostile inputs
 * (truncated JSON, huge lines, non-UTF-8, zone ids, wide prefixes,
 * duplicates, a million lines, deep nesting).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "feedtest.h"
#include "feeds/feed_int.h"

#define NOW 1716285600ULL /* 2024-05-21T10:00:00Z, the fixtures' "today" */

/* Parses a fixture (or a buffer) and finishes it; returns the first error. */
static int parse_buf(enum zt_feed_format fmt, const char *buf, size_t len, uint32_t max_bad_ppm,
		     struct zt_feed_result *r)
{
	struct zt_feed_parse_opts o = { .feed = "t", .now_unix = NOW };
	int err;

	assert_int_equal(zt_feed_result_init(r, "t"), 0);
	err = zt_feed_parse(fmt, buf, len, r, &o);
	if (!err)
		err = zt_feed_finish(r, max_bad_ppm);
	return err;
}

static int parse_fixture(enum zt_feed_format fmt, const char *name, uint32_t max_bad_ppm,
			 struct zt_feed_result *r)
{
	size_t len;
	char *buf = fixture(name, &len);
	int err = parse_buf(fmt, buf, len, max_bad_ppm, r);

	free(buf);
	return err;
}

static void assert_ref(const struct zt_feed_result *r, const char *cidr, uint16_t port,
		       const char *ref)
{
	const struct zt_feed_entry *e = find_entry(r, cidr, port);

	if (!e)
		fail_msg("no entry %s port %u", cidr, port);
	assert_string_equal(zt_feed_ref(r, e), ref);
}

static void assert_sorted_unique(const struct zt_feed_result *r)
{
	for (size_t i = 1; i < r->n; i++) {
		const struct zt_feed_entry *a = &r->entries[i - 1], *b = &r->entries[i];
		int c = a->cidr.family - b->cidr.family;

		if (!c)
			c = memcmp(a->cidr.addr, b->cidr.addr, 16);
		if (!c)
			c = a->cidr.prefixlen - b->cidr.prefixlen;
		if (!c)
			c = a->port - b->port;
		if (c >= 0)
			fail_msg("entries %zu and %zu out of order or equal", i - 1, i);
	}
}

static void test_drop_text(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "drop.txt", 0, &r), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.stats.items, 4);
	assert_int_equal(r.stats.bad, 0);
	assert_ref(&r, "192.0.2.0/24", 0, "SBL256894");
	assert_ref(&r, "198.51.100.0/25", 0, "SBL291832");
	assert_ref(&r, "203.0.113.64/26", 0, "SBL101010");
	/* The lab's benchmarking range is not special: a feed may list it. */
	assert_ref(&r, "198.18.7.0/24", 0, "SBL424242");
	assert_int_equal(r.entries[0].dir, ZT_FEED_BOTH);
	assert_int_equal(r.entries[0].valid_until, 0);
	assert_sorted_unique(&r);
	zt_feed_result_free(&r);

	/* CRLF line ends and "addr;ref" without blanks. */
	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "edrop_crlf.txt", 0, &r), 0);
	assert_int_equal(r.n, 2);
	assert_ref(&r, "203.0.113.128/25", 0, "SBL555001");
	assert_ref(&r, "198.51.100.128/25", 0, "SBL555002");
	zt_feed_result_free(&r);
}

static void test_firehol(void **state)
{
	struct zt_feed_result r;

	/* firehol_level1 lists 224.0.0.0/3: refused as too wide, 1 line of 8. */
	assert_int_equal(parse_fixture(ZT_FEED_FIREHOL, "firehol_level1.netset", 200000, &r), 0);
	assert_int_equal(r.stats.items, 8);
	assert_int_equal(r.stats.bad, 1);
	assert_non_null(find_problem(&r, 18, "prefix /3 is shorter than /8"));
	assert_int_equal(r.n, 7);
	assert_non_null(find_entry(&r, "198.51.100.7/32", 0));
	assert_non_null(find_entry(&r, "10.0.0.0/8", 0));
	/* Special-purpose ranges go; RFC 1918 stays (it can be an IOC inside a cluster). */
	assert_int_equal(zt_feed_subtract(&r, NULL, 0), 0);
	assert_int_equal(r.n, 4);
	assert_null(find_entry(&r, "0.0.0.0/8", 0));
	assert_null(find_entry(&r, "127.0.0.0/8", 0));
	assert_null(find_entry(&r, "169.254.0.0/16", 0));
	assert_non_null(find_entry(&r, "10.0.0.0/8", 0));
	assert_int_equal(r.stats.subtracted, 3);
	assert_int_equal(r.n_subtractions, 3);
	assert_string_equal(r.subtractions[0].list, "special-purpose");
	assert_int_equal(r.subtractions[0].pieces, 0);
	zt_feed_result_free(&r);

	/* Under the default bound (1%) the same file is refused whole, saying why. */
	assert_int_equal(parse_fixture(ZT_FEED_FIREHOL, "firehol_level1.netset", 10000, &r),
			 -EBADMSG);
	assert_non_null(strstr(r.error, "1 of 8 items are bad"));
	assert_non_null(strstr(r.error, "max_bad_fraction"));
	zt_feed_result_free(&r);
}

static void test_feodo(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_FEODO_CSV, "feodo_ipblocklist.csv", 0, &r), 0);
	assert_int_equal(r.stats.items, 4);
	assert_int_equal(r.n, 4);
	assert_ref(&r, "192.0.2.10/32", 4643, "Dridex");
	assert_ref(&r, "198.51.100.20/32", 443, "QakBot");
	assert_ref(&r, "203.0.113.30/32", 8080, "Emotet");
	assert_ref(&r, "203.0.113.31/32", 0, "Emotet"); /* no port given */
	/* One interned copy of a repeated family. */
	assert_int_equal(find_entry(&r, "203.0.113.30/32", 8080)->ref,
			 find_entry(&r, "203.0.113.31/32", 0)->ref);
	zt_feed_result_free(&r);

	/* The plain IP list is the cidr format. */
	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "feodo_ipblocklist.txt", 0, &r), 0);
	assert_int_equal(r.n, 3);
	assert_non_null(find_entry(&r, "203.0.113.30/32", 0));
	zt_feed_result_free(&r);

	/* Columns follow the header; bad lines name their line. */
	{
		static const char csv[] = "ip_address,port,malware\n"
					  "192.0.2.1,80,A\n"
					  "192.0.2.2,0,B\n"
					  "\"192.0.2.3,81,C\n"
					  "192.0.2.4\n"
					  "\"192.0.2.5\" ,\"82\",\"D \"\"x\"\"\"\n";

		assert_int_equal(parse_buf(ZT_FEED_FEODO_CSV, csv, sizeof(csv) - 1, 1000000, &r),
				 0);
		assert_ref(&r, "192.0.2.1/32", 80, "A");
		assert_ref(&r, "192.0.2.5/32", 82, "D \"x\"");
		assert_non_null(find_problem(&r, 3, "port '0'"));
		assert_non_null(find_problem(&r, 4, "not a CSV line"));
		assert_non_null(find_problem(&r, 5, "1 fields"));
		assert_int_equal(r.stats.bad, 3);
		zt_feed_result_free(&r);
	}
}

static void test_spamhaus_json(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_SPAMHAUS_JSON, "drop_v4.json", 0, &r), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.stats.items, 3); /* the metadata line is not an item */
	assert_int_equal(r.n_problems, 0); /* and its record count matches */
	assert_ref(&r, "192.0.2.0/24", 0, "SBL256894");
	assert_ref(&r, "203.0.113.64/26", 0, "SBL101010");
	zt_feed_result_free(&r);

	assert_int_equal(parse_fixture(ZT_FEED_SPAMHAUS_JSON, "drop_v6.json", 0, &r), 0);
	assert_int_equal(r.n, 2);
	assert_ref(&r, "2001:db8:1000::/36", 0, "SBL600001");
	zt_feed_result_free(&r);

	/* A record count that does not match is reported, not refused. */
	{
		static const char j[] = "{\"cidr\":\"192.0.2.0/24\",\"sblid\":\"SBL1\"}\n"
					"{\"type\":\"metadata\",\"records\":5}\n";

		assert_int_equal(parse_buf(ZT_FEED_SPAMHAUS_JSON, j, sizeof(j) - 1, 0, &r), 0);
		assert_int_equal(r.n, 1);
		assert_non_null(find_problem(&r, 2, "metadata says 5 records"));
		assert_false(r.problems[0].bad);
		zt_feed_result_free(&r);
	}
}

static void test_spamhaus_hostile(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_SPAMHAUS_JSON, "spamhaus_hostile.json", 1000000, &r),
			 0);
	assert_int_equal(r.n, 1);
	assert_non_null(find_entry(&r, "192.0.2.0/24", 0));
	assert_int_equal(r.stats.bad, 6);
	assert_non_null(find_problem(&r, 2, "not one JSON object")); /* \xff in a string */
	assert_non_null(find_problem(&r, 3, "not one JSON object")); /* unterminated */
	assert_non_null(find_problem(&r, 4, "a JSON array, not an object"));
	assert_non_null(find_problem(&r, 5, "no \"cidr\""));
	assert_non_null(find_problem(&r, 6, "zone id"));
	assert_non_null(find_problem(&r, 7, "text after it"));
	/* Excerpts are printable: the \xff shows escaped. */
	assert_non_null(strstr(find_problem(&r, 2, "")->excerpt, "\\xff"));
	zt_feed_result_free(&r);
}

static void test_stix(void **state)
{
	struct zt_feed_result r;
	const struct zt_feed_entry *e;

	if (parse_fixture(ZT_FEED_STIX2, "stix_bundle.json", 1000000, &r)) {
		dump_problems(&r);
		fail_msg("%s", r.error);
	}
	/* 9 indicators; identity and relationship are context. */
	assert_int_equal(r.stats.items, 9);
	assert_int_equal(r.n, 5);
	e = find_entry(&r, "192.0.2.44/32", 0);
	assert_non_null(e);
	assert_int_equal(e->valid_until, 4070908800ULL);
	assert_string_equal(zt_feed_ref(&r, e), "indicator--a1000000-0000-4000-8000-000000000001");
	e = find_entry(&r, "2001:db8::bad/128", 0);
	assert_non_null(e);
	assert_int_equal(e->valid_until, 0);
	/* ISSUBSET, OR of observations, OR inside a bracket, parentheses. */
	assert_non_null(find_entry(&r, "198.51.100.0/24", 0));
	assert_non_null(find_entry(&r, "203.0.113.5/32", 0));
	e = find_entry(&r, "203.0.113.6/32", 0);
	assert_non_null(e);
	assert_int_equal(e->valid_until, 1909051200ULL); /* fraction of a second dropped */
	assert_string_equal(zt_feed_ref(&r, e), "indicator--a1000000-0000-4000-8000-000000000003");
	/* Expired, revoked, other pattern types and non-IP patterns are not entries. */
	assert_null(find_entry(&r, "192.0.2.99/32", 0));
	assert_int_equal(r.stats.expired, 1);
	assert_null(find_entry(&r, "192.0.2.55/32", 0));
	assert_null(find_entry(&r, "192.0.2.77/32", 0));
	assert_int_equal(r.stats.ignored, 4); /* revoked, domain, AND, snort */
	/* The AND is about an IP: reported (not bad), at the line of its id. */
	assert_non_null(find_problem(&r, 83, "AND"));
	assert_false(find_problem(&r, 83, "AND")->bad);
	/* A bad address is bad, at the line of its id. */
	assert_int_equal(r.stats.bad, 1);
	assert_non_null(find_problem(&r, 93, "not an IPv4 or IPv6 address"));
	zt_feed_result_free(&r);
}

static void test_stix_patterns(void **state)
{
	static const struct {
		const char *pattern;
		size_t entries, bad, ignored;
	} t[] = {
		{ "[ipv4-addr:value = '192.0.2.1']", 1, 0, 0 },
		{ "  [ ipv4-addr:value='192.0.2.1' ]  ", 1, 0, 0 },
		{ "[ipv4-addr:value = '192.0.2.1'] OR [ipv6-addr:value = '2001:db8::1']", 2, 0, 0 },
		{ "(([ipv4-addr:value = '192.0.2.1']))", 1, 0, 0 },
		{ "[(ipv4-addr:value = '192.0.2.1' OR (ipv4-addr:value = '192.0.2.2'))]", 2, 0, 0 },
		{ "[ipv4-addr:value ISSUBSET '192.0.2.0/24']", 1, 0, 0 },
		/* Escapes in the quoted value are undone before the address is read. */
		{ "[ipv4-addr:value = '192.0.2.\\'1']", 0, 1, 0 },
		/* Unsupported but about IPs: ignored with a report. */
		{ "[ipv4-addr:value = '192.0.2.1'] WITHIN 300 SECONDS", 0, 0, 1 },
		{ "[ipv4-addr:value = '192.0.2.1'] FOLLOWEDBY [ipv4-addr:value = '192.0.2.2']", 0,
		  0, 1 },
		{ "[ipv4-addr:value != '192.0.2.1']", 0, 0, 1 },
		{ "[ipv4-addr:value NOT = '192.0.2.1']", 0, 0, 1 },
		{ "[ipv4-addr:value LIKE '192.0.2.%']", 0, 0, 1 },
		{ "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '192.0.2.1']",
		  0, 0, 1 },
		{ "[file:hashes.'SHA-256' = 'aa']", 0, 0, 1 },
		/* Malformed. */
		{ "[ipv4-addr:value = '192.0.2.1'", 0, 1, 0 },
		{ "[ipv4-addr:value = '192.0.2.1']]", 0, 1, 0 },
		{ "[ipv4-addr:value = 192.0.2.1]", 0, 1, 0 },
		{ "[ipv4-addr:value = '192.0.2.1", 0, 1, 0 },
		{ "[ipv4-addr:value = '2001:db8::1']", 0, 1, 0 },
		{ "[ipv6-addr:value = '192.0.2.1']", 0, 1, 0 },
		{ "[ipv4-addr:value = '192.0.2.1/4']", 0, 1, 0 },
		{ "[ipv4-addr:value = '']", 0, 1, 0 },
		{ "", 0, 1, 0 },
		{ "((((((((((((((((((((([ipv4-addr:value = '192.0.2.1'])))))))))))))))))))))", 0, 1,
		  0 },
		{ "[ipv4-addr:value = '192.0.2.1' \x01]", 0, 1, 0 },
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		struct zt_feed_result r;
		char doc[1024], esc[512];
		size_t o = 0;

		/* JSON-escape the pattern. */
		for (const char *p = t[i].pattern; *p; p++) {
			if (*p == '\\' || *p == '"')
				esc[o++] = '\\';
			if ((unsigned char)*p < 0x20) {
				o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\u%04x", *p);
				continue;
			}
			esc[o++] = *p;
		}
		esc[o] = '\0';
		snprintf(
			doc, sizeof(doc),
			"{\"type\":\"bundle\",\"objects\":[{\"type\":\"indicator\",\"id\":\"indicator--1\",\"pattern\":\"%s\"}]}",
			esc);
		assert_int_equal(parse_buf(ZT_FEED_STIX2, doc, strlen(doc), 1000000, &r), 0);
		if (r.n != t[i].entries || r.stats.bad != t[i].bad ||
		    r.stats.ignored != t[i].ignored) {
			dump_problems(&r);
			fail_msg("pattern %zu '%s': %zu entries %llu bad %llu ignored", i,
				 t[i].pattern, r.n, (unsigned long long)r.stats.bad,
				 (unsigned long long)r.stats.ignored);
		}
		zt_feed_result_free(&r);
	}
}

static void test_stix_shapes(void **state)
{
	static const struct {
		const char *doc;
		int err;
		size_t entries;
		const char *msg;
	} t[] = {
		/* A TAXII envelope, a plain list, a single indicator. */
		{ "{\"more\":false,\"objects\":[{\"type\":\"indicator\",\"id\":\"i--1\",\"pattern\":\"[ipv4-addr:value = '192.0.2.1']\"}]}",
		  0, 1, NULL },
		{ "[{\"type\":\"indicator\",\"id\":\"i--1\",\"pattern\":\"[ipv4-addr:value = '192.0.2.1']\"}]",
		  0, 1, NULL },
		{ "{\"type\":\"indicator\",\"id\":\"i--1\",\"pattern\":\"[ipv4-addr:value = '192.0.2.1']\"}",
		  0, 1, NULL },
		{ "{\"type\":\"bundle\",\"objects\":[]}", 0, 0, NULL },
		{ "{\"type\":\"bundle\"}", -EBADMSG, 0, "no \"objects\" list" },
		{ "{}", -EBADMSG, 0, "not a STIX 2.1 bundle" },
		{ "5", -EBADMSG, 0, "the document is a JSON int" },
		{ "", -EBADMSG, 0, "ends early" },
		{ "   \n ", -EBADMSG, 0, "ends early" },
		{ "{\"objects\":[]} {}", -EBADMSG, 0,
		  "text after the JSON document at line 1 column 16" },
		{ "{\"objects\":[],}", -EBADMSG, 0, "not JSON at line 1" },
		{ "{\"objects\":[]} // comment", -EBADMSG, 0, "text after" },
		{ "{\"objects\":[1, \"x\", null]}", 0, 0, NULL },
		/* valid_until that is not a timestamp is a bad item. */
		{ "{\"objects\":[{\"type\":\"indicator\",\"id\":\"i--1\",\"valid_until\":\"tomorrow\",\"pattern\":\"[ipv4-addr:value = '192.0.2.1']\"}]}",
		  0, 0, NULL },
		{ "{\"objects\":[{\"type\":\"indicator\",\"id\":\"i--1\",\"valid_until\":\"2030-01-01T00:00:00+02:00\",\"pattern\":\"[ipv4-addr:value = '192.0.2.1']\"}]}",
		  0, 1, NULL },
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		struct zt_feed_result r;
		int err = parse_buf(ZT_FEED_STIX2, t[i].doc, strlen(t[i].doc), 1000000, &r);

		if (err != t[i].err || (!err && r.n != t[i].entries) ||
		    (t[i].msg && !strstr(r.error, t[i].msg)))
			fail_msg("doc %zu: err %d entries %zu error '%s'", i, err, r.n, r.error);
		zt_feed_result_free(&r);
	}
}

static void test_misp(void **state)
{
	struct zt_feed_result r;
	const struct zt_feed_entry *e;
	const char *ref = "MISP event 1234: Dridex C2 infrastructure, May 2024";

	if (parse_fixture(ZT_FEED_MISP, "misp_event.json", 1000000, &r)) {
		dump_problems(&r);
		fail_msg("%s", r.error);
	}
	/* 9 ip attributes (the domain and the port are not): 6 taken, 2 ignored, 1 bad. */
	assert_int_equal(r.stats.items, 9);
	assert_int_equal(r.stats.good, 6);
	assert_int_equal(r.stats.ignored, 2);
	assert_int_equal(r.stats.bad, 1);
	assert_non_null(find_problem(&r, 22, "not ADDRESS|PORT"));
	/* 192.0.2.10 twice (to_ids true and "1"): merged. */
	assert_int_equal(r.stats.duplicates, 1);
	assert_int_equal(r.n, 5);
	e = find_entry(&r, "192.0.2.10/32", 0);
	assert_non_null(e);
	assert_int_equal(e->dir, ZT_FEED_DESTINATION);
	assert_string_equal(zt_feed_ref(&r, e), ref);
	e = find_entry(&r, "198.51.100.0/28", 0);
	assert_non_null(e);
	assert_int_equal(e->dir, ZT_FEED_SOURCE);
	e = find_entry(&r, "203.0.113.7/32", 8443);
	assert_non_null(e);
	assert_int_equal(e->dir, ZT_FEED_DESTINATION);
	e = find_entry(&r, "2001:db8::7/128", 4444);
	assert_non_null(e);
	assert_int_equal(e->dir, ZT_FEED_SOURCE);
	/* From the event's object. */
	assert_non_null(find_entry(&r, "203.0.113.99/32", 0));
	/* Not for IDS, deleted. */
	assert_null(find_entry(&r, "192.0.2.200/32", 0));
	assert_null(find_entry(&r, "192.0.2.201/32", 0));
	zt_feed_result_free(&r);
}

static void test_misp_shapes(void **state)
{
#define ATTR "{\"type\":\"ip-src\",\"to_ids\":true,\"value\":\"192.0.2.1\"}"
	static const struct {
		const char *doc;
		int err;
		size_t entries;
		const char *ref;
	} t[] = {
		{ "[{\"Event\":{\"id\":7,\"info\":\"x\",\"Attribute\":[" ATTR "]}}]", 0, 1,
		  "MISP event 7: x" },
		{ "{\"response\":[{\"Event\":{\"id\":\"7\",\"Attribute\":[" ATTR "]}}]}", 0, 1,
		  "MISP event 7" },
		{ "{\"response\":{\"Attribute\":[" ATTR "]}}", 0, 1, "MISP event ?" },
		{ "{\"id\":\"7\",\"Attribute\":[" ATTR "]}", 0, 1, "MISP event 7" },
		{ "{\"Event\":{\"Attribute\":{}}}", 0, 0, NULL },
		{ "{\"nothing\":[" ATTR "]}", -EBADMSG, 0, NULL },
		{ "[1,2," ATTR "]", -EBADMSG, 0, NULL },
	};
#undef ATTR
	struct zt_feed_result r;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		int err = parse_buf(ZT_FEED_MISP, t[i].doc, strlen(t[i].doc), 0, &r);

		if (err != t[i].err || (!err && r.n != t[i].entries))
			fail_msg("doc %zu '%s': err %d entries %zu: %s", i, t[i].doc, err, r.n,
				 r.error);
		if (t[i].ref)
			assert_string_equal(zt_feed_ref(&r, &r.entries[0]), t[i].ref);
		zt_feed_result_free(&r);
	}
}

static void test_truncated_json(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_STIX2, "stix_truncated.json", 1000000, &r),
			 -EBADMSG);
	assert_non_null(strstr(r.error, "ends early"));
	assert_non_null(strstr(r.error, "line 43 column 80"));
	assert_non_null(strstr(r.error, "feed=t"));
	/* Nothing of a refused document is kept. */
	zt_feed_result_free(&r);

	assert_int_equal(parse_fixture(ZT_FEED_MISP, "misp_truncated.json", 1000000, &r), -EBADMSG);
	assert_non_null(strstr(r.error, "ends early"));
	zt_feed_result_free(&r);

	/* Non-UTF-8 in a JSON document: refused, with the place. */
	assert_int_equal(parse_fixture(ZT_FEED_STIX2, "stix_non_utf8.json", 1000000, &r), -EBADMSG);
	assert_non_null(strstr(r.error, "line 1"));
	zt_feed_result_free(&r);

	/* A NUL byte. */
	assert_int_equal(parse_buf(ZT_FEED_MISP, "{\"Event\":\0{}}", 13, 0, &r), -EBADMSG);
	assert_non_null(strstr(r.error, "NUL byte at line 1 column 10"));
	zt_feed_result_free(&r);
}

static void test_deep_nesting(void **state)
{
	size_t depth = 100000, len = depth * 2;
	char *buf = malloc(len);
	struct zt_feed_result r;

	assert_non_null(buf);
	memset(buf, '[', depth);
	memset(buf + depth, ']', depth);
	/* Bounded by the tokener's depth: an error, not a stack overflow. */
	assert_int_equal(parse_buf(ZT_FEED_STIX2, buf, len, 0, &r), -EBADMSG);
	assert_non_null(strstr(r.error, "not JSON"));
	zt_feed_result_free(&r);
	assert_int_equal(parse_buf(ZT_FEED_MISP, buf, len, 0, &r), -EBADMSG);
	zt_feed_result_free(&r);
	free(buf);
}

static void test_zone_ids(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "zone_ids.txt", 1000000, &r), 0);
	assert_int_equal(r.n, 2);
	assert_non_null(find_entry(&r, "2001:db8::2/128", 0));
	assert_non_null(find_entry(&r, "198.18.0.9/32", 0));
	assert_int_equal(r.stats.bad, 2);
	assert_non_null(find_problem(&r, 2, "zone id"));
	assert_non_null(find_problem(&r, 3, "zone id"));
	assert_string_equal(find_problem(&r, 2, "")->excerpt, "fe80::1%eth0");
	zt_feed_result_free(&r);
}

static void test_short_prefixes(void **state)
{
	struct zt_feed_result r;

	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "short_prefixes.txt", 1000000, &r), 0);
	assert_int_equal(r.stats.bad, 4);
	assert_non_null(find_problem(&r, 2, "/0 is shorter than /8"));
	assert_non_null(find_problem(&r, 3, "/7 is shorter than /8"));
	assert_non_null(find_problem(&r, 5, "/0 is shorter than /16"));
	assert_non_null(find_problem(&r, 6, "/15 is shorter than /16"));
	/* /8 and /16 are the shortest taken; host bits are cleared and counted. */
	assert_int_equal(r.n, 3);
	assert_non_null(find_entry(&r, "192.0.0.0/8", 0));
	assert_non_null(find_entry(&r, "2001::/16", 0));
	assert_non_null(find_entry(&r, "198.51.100.0/24", 0));
	assert_int_equal(r.stats.host_bits, 2);
	zt_feed_result_free(&r);
}

static void test_duplicates(void **state)
{
	struct zt_feed_result r;
	const struct zt_feed_entry *e;

	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "duplicates.txt", 0, &r), 0);
	assert_int_equal(r.stats.good, 7);
	assert_int_equal(r.stats.duplicates, 4);
	assert_int_equal(r.n, 3);
	assert_sorted_unique(&r);
	/* The first reference given for an entry stays. */
	e = find_entry(&r, "192.0.2.7/32", 0);
	assert_string_equal(zt_feed_ref(&r, e), "second");
	e = find_entry(&r, "198.51.100.0/24", 0);
	assert_string_equal(zt_feed_ref(&r, e), "hostbits");
	assert_non_null(find_entry(&r, "2001:db8::1/128", 0));
	zt_feed_result_free(&r);

	/* Merging keeps the longest validity (none = forever) and ORs directions. */
	{
		struct feed_ctx x;
		struct zt_feed_parse_opts o = { .feed = "t" };
		struct zt_cidr c;

		assert_int_equal(zt_feed_result_init(&r, "t"), 0);
		memset(&x, 0, sizeof(x));
		x.r = &r;
		x.o = &o;
		zt_cidr_parse("192.0.2.1", &c, NULL);
		assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_SOURCE, 100, "b", 1), 0);
		assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_DESTINATION, 300, "a", 1), 0);
		zt_cidr_parse("192.0.2.2", &c, NULL);
		assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_SOURCE, 100, NULL, 0), 0);
		assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_SOURCE, 0, "z", 1), 0);
		assert_int_equal(zt_feed_finish(&r, 0), 0);
		assert_int_equal(r.n, 2);
		assert_int_equal(r.entries[0].valid_until, 300);
		assert_int_equal(r.entries[0].dir, ZT_FEED_BOTH);
		assert_string_equal(zt_feed_ref(&r, &r.entries[0]), "b");
		assert_int_equal(r.entries[1].valid_until, 0);
		assert_string_equal(zt_feed_ref(&r, &r.entries[1]), "z");
		zt_feed_result_free(&r);
	}
}

static void test_non_utf8(void **state)
{
	struct zt_feed_result r;
	const struct zt_feed_entry *e;

	assert_int_equal(parse_fixture(ZT_FEED_CIDR, "non_utf8.txt", 1000000, &r), 0);
	assert_int_equal(r.n, 2);
	e = find_entry(&r, "192.0.2.1/32", 0);
	assert_non_null(e);
	/* References are printable ASCII whatever the feed sends. */
	assert_string_equal(zt_feed_ref(&r, e), "r?f?rence");
	assert_non_null(find_entry(&r, "198.51.100.1/32", 0));
	assert_int_equal(r.stats.bad, 2);
	assert_non_null(find_problem(&r, 3, "non-ASCII byte 0xff"));
	assert_non_null(find_problem(&r, 4, "non-ASCII byte 0xfe"));
	assert_string_equal(find_problem(&r, 3, "")->excerpt, "192.0.2.\\xff");
	zt_feed_result_free(&r);
}

static void test_huge_lines(void **state)
{
	size_t big = 1 << 20;
	char *buf = malloc(big + 64);
	struct zt_feed_result r;
	size_t o;

	assert_non_null(buf);
	memset(buf, '1', big);
	o = big;
	o += (size_t)sprintf(buf + o, "\n192.0.2.1\n");
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, o, 1000000, &r), 0);
	assert_int_equal(r.n, 1);
	assert_non_null(find_problem(&r, 1, "line of 1048576 bytes is longer than 4096"));
	assert_int_equal(strlen(r.problems[0].excerpt), sizeof(r.problems[0].excerpt) - 1);
	zt_feed_result_free(&r);

	/* A line of exactly the bound is read; one more byte is not. */
	memset(buf, ' ', ZT_FEED_LINE_MAX);
	memcpy(buf + ZT_FEED_LINE_MAX - 9, "192.0.2.1", 9);
	buf[ZT_FEED_LINE_MAX] = '\n';
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, ZT_FEED_LINE_MAX + 1, 0, &r), 0);
	assert_int_equal(r.n, 1);
	zt_feed_result_free(&r);
	memmove(buf + 1, buf, ZT_FEED_LINE_MAX + 1);
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, ZT_FEED_LINE_MAX + 2, 1000000, &r), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.stats.bad, 1);
	zt_feed_result_free(&r);

	/* JSON lines: 64 KiB per line, and a CSV line of 1 MiB. */
	memset(buf, '{', big);
	assert_int_equal(parse_buf(ZT_FEED_SPAMHAUS_JSON, buf, big, 1000000, &r), 0);
	assert_int_equal(r.stats.bad, 1);
	assert_non_null(find_problem(&r, 1, "longer than 65536"));
	zt_feed_result_free(&r);
	memset(buf, '"', big);
	assert_int_equal(parse_buf(ZT_FEED_FEODO_CSV, buf, big, 1000000, &r), 0);
	assert_int_equal(r.stats.bad, 1);
	zt_feed_result_free(&r);
	free(buf);
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_million_lines(void **state)
{
	size_t n = 1000000, cap = n * 20, o = 0;
	char *buf = malloc(cap);
	struct zt_feed_result r;
	struct timespec t0, t1;

	assert_non_null(buf);
	/* A million distinct /32s in 10.0.0.0/8, every tenth repeated once. */
	for (size_t i = 0; i < n; i++) {
		uint32_t a = (uint32_t)(i / 10 * 10 + (i % 10 == 9 ? 0 : i % 10));

		o += (size_t)snprintf(buf + o, cap - o, "10.%u.%u.%u\n", (a >> 16) & 255,
				      (a >> 8) & 255, a & 255);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, o, 0, &r), 0);
	assert_int_equal(zt_feed_subtract(&r, NULL, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r.stats.items, n);
	assert_int_equal(r.stats.duplicates, n / 10);
	assert_int_equal(r.n, n - n / 10);
	assert_sorted_unique(&r);
	print_message("1M lines: %.3f s parse+finish+subtract (ASan build)\n", secs(&t0, &t1));
	zt_feed_result_free(&r);
	free(buf);
}

/* The radix sort against qsort, on shuffled IPv4 and IPv6 with shared bytes, ports, lengths. */
static int ref_cmp(const void *pa, const void *pb)
{
	const struct zt_feed_entry *a = pa, *b = pb;
	int c = a->cidr.family - b->cidr.family;

	if (!c)
		c = memcmp(a->cidr.addr, b->cidr.addr, 16);
	if (!c)
		c = a->cidr.prefixlen - b->cidr.prefixlen;
	if (!c)
		c = a->port - b->port;
	return c;
}

static void test_sort(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 31, 33, 1000, 200000 };
	uint64_t seed = 42;

	for (size_t s = 0; s < ZT_ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s], u;
		struct zt_feed_result r;
		struct zt_feed_entry *want;

		assert_int_equal(zt_feed_result_init(&r, "t"), 0);
		r.entries = calloc(n ? n : 1, sizeof(*r.entries));
		want = calloc(n ? n : 1, sizeof(*want));
		assert_non_null(r.entries);
		assert_non_null(want);
		r.cap = n;
		for (size_t i = 0; i < n; i++) {
			struct zt_feed_entry *e = &r.entries[i];

			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			e->cidr.family = (seed >> 60) < 4 ? AF_INET6 : AF_INET;
			/* Few distinct values per byte: long shared prefixes and duplicates. */
			for (int b = 0; b < (e->cidr.family == AF_INET ? 4 : 16); b++)
				e->cidr.addr[b] = (uint8_t)((seed >> (b % 8 * 3)) & 3);
			e->cidr.prefixlen =
				(uint8_t)(e->cidr.family == AF_INET ? 30 + (seed >> 40) % 3 :
								      126 + (seed >> 40) % 3);
			e->port = (uint16_t)((seed >> 44) % 2 + (seed >> 46) % 2 * 256);
			e->dir = ZT_FEED_BOTH;
		}
		r.n = n;
		memcpy(want, r.entries, n * sizeof(*want));
		qsort(want, n, sizeof(*want), ref_cmp);
		u = 0;
		for (size_t i = 0; i < n; i++)
			if (!u || ref_cmp(&want[u - 1], &want[i]))
				want[u++] = want[i];
		feed_sort_unique(&r);
		assert_int_equal(r.n, u);
		for (size_t i = 0; i < u; i++)
			if (ref_cmp(&r.entries[i], &want[i]))
				fail_msg("size %zu: entry %zu differs from qsort's", n, i);
		free(want);
		zt_feed_result_free(&r);
	}
}

static void test_limits(void **state)
{
	struct zt_feed_parse_opts o = { .feed = "big", .max_entries = 999 };
	char buf[16 * 1000];
	struct zt_feed_result r;
	size_t len = 0;

	for (int i = 0; i < 1000; i++)
		len += (size_t)sprintf(buf + len, "192.0.%d.%d\n", i / 256, i % 256);
	assert_int_equal(zt_feed_result_init(&r, "big"), 0);
	assert_int_equal(zt_feed_parse(ZT_FEED_CIDR, buf, len, &r, &o), -E2BIG);
	assert_non_null(strstr(r.error, "feed=big: more than max_entries (999)"));
	zt_feed_result_free(&r);
	o.max_entries = 1000;
	assert_int_equal(zt_feed_result_init(&r, "big"), 0);
	assert_int_equal(zt_feed_parse(ZT_FEED_CIDR, buf, len, &r, &o), 0);
	assert_int_equal(r.n, 1000);
	zt_feed_result_free(&r);

	/* The bad-fraction bound: 1 bad in 100 passes 1%, 2 do not. */
	len = 0;
	for (int i = 0; i < 99; i++)
		len += (size_t)sprintf(buf + len, "192.0.2.%d\n", i);
	len += (size_t)sprintf(buf + len, "bad\n");
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, len, 10000, &r), 0);
	zt_feed_result_free(&r);
	len += (size_t)sprintf(buf + len, "bad\n");
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, len, 10000, &r), -EBADMSG);
	assert_non_null(strstr(r.error, "2 of 101 items are bad"));
	zt_feed_result_free(&r);
	/* Bound 0: any bad line refuses; bound 1: nothing does. */
	assert_int_equal(parse_buf(ZT_FEED_CIDR, "bad\n", 4, 0, &r), -EBADMSG);
	zt_feed_result_free(&r);
	assert_int_equal(parse_buf(ZT_FEED_CIDR, "bad\n", 4, 1000000, &r), 0);
	zt_feed_result_free(&r);

	/* Only ZT_FEED_REPORTS_MAX are kept in detail; all are counted. */
	len = 0;
	for (int i = 0; i < 500; i++)
		len += (size_t)sprintf(buf + len, "x%d\n", i);
	assert_int_equal(parse_buf(ZT_FEED_CIDR, buf, len, 1000000, &r), 0);
	assert_int_equal(r.stats.bad, 500);
	assert_int_equal(r.n_problems, ZT_FEED_REPORTS_MAX);
	zt_feed_result_free(&r);
}

static void test_misc(void **state)
{
	struct zt_feed_result r;
	struct zt_feed_config fc;
	struct zt_feed_part part = { .name = "", .data = "", .len = 0 };
	struct zt_feed_body body = { .parts = &part, .n_parts = 1 };
	char line[512];
	uint64_t t;

	assert_int_equal(zt_feed_result_init(&r, "t"), 0);
	assert_int_equal(zt_feed_parse(ZT_FEED_POLICY, "x", 1, &r, NULL), -EOPNOTSUPP);
	assert_int_equal(zt_feed_parse(ZT_FEED_CIDR, NULL, 1, &r, NULL), -EINVAL);
	/* Empty input is no entries, not an error, for the parser... */
	assert_int_equal(zt_feed_parse(ZT_FEED_CIDR, NULL, 0, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	zt_feed_result_free(&r);
	/* ...but an empty body never empties a feed. */
	zt_feed_config_defaults(&fc);
	snprintf(fc.name, sizeof(fc.name), "empty");
	assert_int_equal(zt_feed_load(&fc, &body, NOW, NULL, 0, &r), -ENODATA);
	assert_non_null(strstr(r.error, "feed=empty: the content is empty"));
	zt_feed_result_free(&r);

	/* Problems format as one log line. */
	assert_int_equal(parse_buf(ZT_FEED_CIDR, "\n\n1.2.3\n", 8, 1000000, &r), 0);
	assert_int_equal(zt_feed_problem_format(&r, &r.problems[0], line, sizeof(line)), 0);
	assert_string_equal(
		line, "feed=t line=3 bad=1 reason=\"not an IPv4 or IPv6 address\" text=1.2.3");
	zt_feed_result_free(&r);

	/* Timestamps. */
	assert_int_equal(feed_parse_time("1970-01-01T00:00:00Z", 20, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(feed_parse_time("2024-02-29T23:59:59.999999Z", 27, &t), 0);
	assert_int_equal(t, 1709251199);
	assert_int_equal(feed_parse_time("2024-05-21T12:00:00+02:00", 25, &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(feed_parse_time("2024-02-30T00:00:00Z", 20, &t), -EINVAL);
	assert_int_equal(feed_parse_time("2024-05-21 10:00:00Z", 20, &t), -EINVAL);
	assert_int_equal(feed_parse_time("2024-05-21T10:00:00", 19, &t), -EINVAL);
	assert_int_equal(feed_parse_time("2024-05-21T10:00:00.Z", 21, &t), -EINVAL);
	assert_int_equal(feed_parse_time("2024-05-21T10:00:00Zjunk", 24, &t), -EINVAL);
}

/* Every entry of a directory body: parts parsed in order, problems name their file. */
static void test_load_parts(void **state)
{
	static const char a[] = "192.0.2.1\nbad\n", b[] = "192.0.2.1 # again\n198.51.100.1\n";
	struct zt_feed_part parts[2] = {
		{ .name = "a.txt", .data = a, .len = sizeof(a) - 1 },
		{ .name = "b.txt", .data = b, .len = sizeof(b) - 1 },
	};
	struct zt_feed_body body = { .parts = parts, .n_parts = 2, .total = 10 };
	struct zt_cidr prot;
	struct zt_feed_guard_list gl = { "protected", &prot, 1 };
	struct zt_feed_result r;
	struct zt_feed_config fc;

	zt_feed_config_defaults(&fc);
	snprintf(fc.name, sizeof(fc.name), "dir");
	fc.max_bad_ppm = 500000;
	zt_cidr_parse("198.51.100.0/24", &prot, NULL);
	assert_int_equal(zt_feed_load(&fc, &body, NOW, &gl, 1, &r), 0);
	assert_int_equal(r.n, 1);
	assert_non_null(find_entry(&r, "192.0.2.1/32", 0));
	assert_int_equal(r.stats.duplicates, 1);
	assert_int_equal(r.stats.subtracted, 1);
	assert_string_equal(r.subtractions[0].list, "protected");
	assert_string_equal(r.problems[0].part, "a.txt");
	assert_int_equal(r.problems[0].line, 2);
	zt_feed_result_free(&r);
	fc.max_bad_ppm = 0;
	assert_int_equal(zt_feed_load(&fc, &body, NOW, &gl, 1, &r), -EBADMSG);
	zt_feed_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drop_text),
		cmocka_unit_test(test_firehol),
		cmocka_unit_test(test_feodo),
		cmocka_unit_test(test_spamhaus_json),
		cmocka_unit_test(test_spamhaus_hostile),
		cmocka_unit_test(test_stix),
		cmocka_unit_test(test_stix_patterns),
		cmocka_unit_test(test_stix_shapes),
		cmocka_unit_test(test_misp),
		cmocka_unit_test(test_misp_shapes),
		cmocka_unit_test(test_truncated_json),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_zone_ids),
		cmocka_unit_test(test_short_prefixes),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_non_utf8),
		cmocka_unit_test(test_huge_lines),
		cmocka_unit_test(test_million_lines),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_load_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
