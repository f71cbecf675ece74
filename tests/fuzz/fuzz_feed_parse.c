// SPDX-License-Identifier: GPL-2.0-only
/*
 * Threat-intel feed content, as a server or a file delivers it: byte 0
 * picks the format (cidr, firehol, spamhaus-json, feodo-csv, stix2, misp),
 * the rest is the body, handed over in a buffer of exactly its length (not
 * NUL-terminated: zt_feed_parse must read len bytes and no more). Then
 * zt_feed_finish and zt_feed_subtract, the daemon's path to the kernel.
 * Properties: every entry is a valid prefix with no host bits and no
 * shorter than the minimum; references are printable ASCII within bounds;
 * after finish the entries are sorted and unique; after subtract they stay
 * so and none overlaps a special-purpose range; a refusal says why.
 */
#include <arpa/inet.h>

#include "fuzz.h"
#include "feeds/feed.h"

static const enum zt_feed_format formats[] = {
	ZT_FEED_CIDR,	   ZT_FEED_FIREHOL, ZT_FEED_SPAMHAUS_JSON,
	ZT_FEED_FEODO_CSV, ZT_FEED_STIX2,   ZT_FEED_MISP,
};

static int key_cmp(const struct zt_feed_entry *a, const struct zt_feed_entry *b)
{
	int r;

	if (a->cidr.family != b->cidr.family)
		return a->cidr.family < b->cidr.family ? -1 : 1;
	r = memcmp(a->cidr.addr, b->cidr.addr, 16);
	if (r)
		return r;
	if (a->cidr.prefixlen != b->cidr.prefixlen)
		return a->cidr.prefixlen < b->cidr.prefixlen ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

static void check_entries(const struct zt_feed_result *r, bool sorted)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct zt_feed_entry *e = &r->entries[i];
		struct zt_cidr m = e->cidr;
		size_t alen = e->cidr.family == AF_INET ? 4 : 16;
		const char *ref = zt_feed_ref(r, e);

		FUZZ_CHECK(e->cidr.family == AF_INET || e->cidr.family == AF_INET6, "family %d",
			   e->cidr.family);
		FUZZ_CHECK(e->cidr.prefixlen <= alen * 8, "prefix /%u", e->cidr.prefixlen);
		zt_cidr_mask(&m);
		FUZZ_CHECK(!memcmp(m.addr, e->cidr.addr, 16), "entry %zu keeps host bits", i);
		FUZZ_CHECK(e->dir && !(e->dir & ~ZT_FEED_BOTH), "entry %zu direction %u", i,
			   e->dir);
		FUZZ_CHECK(e->ref < (r->refs_len ? r->refs_len : 1), "ref offset %u", e->ref);
		FUZZ_CHECK(strlen(ref) < ZT_FEED_REF_MAX, "ref of %zu bytes", strlen(ref));
		for (const char *p = ref; *p; p++)
			FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "ref byte 0x%02x", (unsigned char)*p);
		if (sorted && i)
			FUZZ_CHECK(key_cmp(&r->entries[i - 1], e) < 0,
				   "entries %zu, %zu out of order", i - 1, i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_feed_result r;
	struct zt_feed_parse_opts o = { .feed = "fuzz", .part = "body", .now_unix = 1700000000 };
	enum zt_feed_format fmt;
	char *buf;
	int e;

	if (!size)
		return 0;
	fmt = formats[data[0] % (sizeof(formats) / sizeof(formats[0]))];
	/* Exactly the body's bytes in a buffer of their own: ASan sees any read past it. */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	FUZZ_CHECK(zt_feed_result_init(&r, "fuzz") == 0, "init");
	e = zt_feed_parse(fmt, buf, size - 1, &r, &o);
	if (e < 0) {
		FUZZ_CHECK(r.error[0], "refused (%d) without saying why", e);
		goto out;
	}
	check_entries(&r, false);
	FUZZ_CHECK(r.n_problems <= ZT_FEED_REPORTS_MAX, "%zu problems kept", r.n_problems);
	e = zt_feed_finish(&r, 1000000);
	FUZZ_CHECK(e == 0, "finish with every line allowed bad: %d", e);
	check_entries(&r, true);
	e = zt_feed_subtract(&r, NULL, 0);
	if (e == 0) {
		struct zt_cidr sp;

		check_entries(&r, true);
		for (size_t i = 0; i < r.n; i++)
			for (const char *const *s = zt_feed_special_ranges; *s; s++) {
				FUZZ_CHECK(zt_cidr_parse(*s, &sp, NULL) == 0, "special %s", *s);
				if (sp.family != r.entries[i].cidr.family)
					continue;
				FUZZ_CHECK(!zt_cidr_contains(&sp, r.entries[i].cidr.addr) &&
						   !zt_cidr_contains(&r.entries[i].cidr, sp.addr),
					   "entry %zu overlaps %s", i, *s);
			}
	}
out:
	zt_feed_result_free(&r);
	free(buf);
	return 0;
}
