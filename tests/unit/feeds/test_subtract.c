// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: what a feed may never block. Special-purpose ranges, the
 * caller's lists, splitting around a protected range, and an exhaustive
 * check over a /16 that every address is blocked exactly when a feed entry
 * covered it and no protected range does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "feedtest.h"
#include "feeds/feed_int.h"

static struct zt_cidr C(const char *s) {
	struct zt_cidr c;

	if (zt_cidr_parse(s, &c, NULL) < 0)
		fail_msg("bad test prefix %s", s);
	return c;
}

/* A finished result holding the given prefixes. */
static void
result_of(struct zt_feed_result *r, const char *const *v, size_t n)
{
	struct zt_feed_parse_opts o = { .feed = "t" };
	struct feed_ctx x = { .r = r, .o = &o };

	assert_int_equal(zt_feed_result_init(r, "t"), 0);
	for (size_t i = 0; i < n; i++) {
		struct zt_cidr c = C(v[i]);

		assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_BOTH, 0, v[i], strlen(v[i])), 0);
	}
	assert_int_equal(zt_feed_finish(r, 0), 0);
}

/* True when some entry of r contains the address. */
static bool blocked(const struct zt_feed_result *r, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->entries[i].cidr.family == family &&
		    zt_cidr_contains(&r->entries[i].cidr, addr))
			return true;
	return false;
}

static void test_special_ranges(void **state)
{
	static const char *const gone[] = {
		"0.1.2.3",
		"127.0.0.1",
		"127.255.255.255/32",
		"169.254.169.254",
		"224.0.0.5",
		"239.1.2.0/24",
		"240.0.0.1",
		"255.255.255.255",
		"::",
		"::1",
		"fe80::1",
		"fe80::/10",
		"febf::/16",
		"ff02::1",
		"ff00::/8",
	};
	static const char *const kept[] = {
		"10.1.2.3",	   "172.16.0.0/12", "192.168.1.1", "100.64.0.1",  "198.18.0.1",
		"198.19.255.0/24", "fd00::1",	    "fc00::/7",	   "2001:db8::1", "::2",
		"223.255.255.255", "1.0.0.0/8",	    "fec0::/10",
	};
	struct zt_feed_result r;
	const char *all[ZT_ARRAY_SIZE(gone) + ZT_ARRAY_SIZE(kept)];
	size_t n = 0;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(gone); i++)
		all[n++] = gone[i];
	for (size_t i = 0; i < ZT_ARRAY_SIZE(kept); i++)
		all[n++] = kept[i];
	result_of(&r, all, n);
	assert_int_equal(zt_feed_subtract(&r, NULL, 0), 0);
	for (size_t i = 0; i < ZT_ARRAY_SIZE(gone); i++) {
		struct zt_cidr c = C(gone[i]);

		if (find_entry(&r, gone[i], 0) || blocked(&r, c.family, c.addr))
			fail_msg("%s is still blocked", gone[i]);
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(kept); i++)
		if (!find_entry(&r, kept[i], 0))
			fail_msg("%s was taken out", kept[i]);
	assert_int_equal(r.n, ZT_ARRAY_SIZE(kept));
	assert_int_equal(r.stats.subtracted, ZT_ARRAY_SIZE(gone));
	assert_int_equal(r.n_subtractions, ZT_ARRAY_SIZE(gone));
	for (size_t i = 0; i < r.n_subtractions; i++) {
		assert_string_equal(r.subtractions[i].list, "special-purpose");
		assert_int_equal(r.subtractions[i].pieces, 0);
	}
	zt_feed_result_free(&r);
}

static void test_split(void **state)
{
	static const char *const v[] = { "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32" };
	struct zt_cidr prot[] = { C("198.51.100.7"), C("2001:db8::1") };
	struct zt_cidr allow[] = { C("203.0.113.0/24") };
	struct zt_feed_guard_list gl[] = {
		{ "protected", prot, 2 },
		{ "allowlist", allow, 1 },
	};
	struct zt_feed_result r;
	uint8_t a[16] = { 198, 51, 100, 0 };

	result_of(&r, v, ZT_ARRAY_SIZE(v));
	assert_int_equal(zt_feed_subtract(&r, gl, 2), 0);
	/* /24 minus one address: 8 prefixes (/25 ... /32), covering the other 255. */
	for (int i = 0; i < 256; i++) {
		a[3] = (uint8_t)i;
		if (blocked(&r, AF_INET, a) != (i != 7))
			fail_msg("198.51.100.%d: blocked %d", i, blocked(&r, AF_INET, a));
	}
	assert_non_null(find_entry(&r, "198.51.100.128/25", 0));
	assert_non_null(find_entry(&r, "198.51.100.6/32", 0));
	assert_null(find_entry(&r, "198.51.100.7/32", 0));
	/* The pieces keep the entry's reference. */
	assert_string_equal(zt_feed_ref(&r, find_entry(&r, "198.51.100.128/25", 0)),
			    "198.51.100.0/24");
	/* An entry inside a list is removed, and the report names the list. */
	assert_null(find_entry(&r, "203.0.113.0/24", 0));
	/* IPv6: /32 minus one /128 is 96 prefixes. */
	assert_int_equal(r.n, 8 + 96);
	assert_int_equal(r.stats.split, 2);
	assert_int_equal(r.stats.subtracted, 1);
	assert_int_equal(r.n_subtractions, 3);
	for (size_t i = 0; i < r.n_subtractions; i++) {
		const struct zt_feed_subtraction *s = &r.subtractions[i];
		char e[ZT_CIDR_STRLEN], m[ZT_CIDR_STRLEN];

		zt_cidr_format(&s->entry, e, sizeof(e));
		zt_cidr_format(&s->met, m, sizeof(m));
		if (!strcmp(e, "198.51.100.0/24")) {
			assert_string_equal(m, "198.51.100.7/32");
			assert_string_equal(s->list, "protected");
			assert_int_equal(s->pieces, 8);
		} else if (!strcmp(e, "203.0.113.0/24")) {
			assert_string_equal(s->list, "allowlist");
			assert_int_equal(s->pieces, 0);
		} else {
			assert_string_equal(e, "2001:db8::/32");
			assert_int_equal(s->pieces, 96);
		}
	}
	{
		uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

		v6[15] = 1;
		assert_false(blocked(&r, AF_INET6, v6));
		v6[15] = 2;
		assert_true(blocked(&r, AF_INET6, v6));
		v6[4] = 0xff;
		assert_true(blocked(&r, AF_INET6, v6));
	}
	for (size_t i = 1; i < r.n; i++)
		assert_true(memcmp(&r.entries[i - 1].cidr.addr, &r.entries[i].cidr.addr, 16) < 0 ||
			    r.entries[i - 1].cidr.family < r.entries[i].cidr.family);
	zt_feed_result_free(&r);
}

/* Too many pieces: the entry is removed whole and the report says why. */
static void test_split_bound(void **state)
{
	static const char *const v[] = { "10.0.0.0/8", "192.0.2.0/24" };
	struct zt_cidr *prot = calloc(2000, sizeof(*prot));
	struct zt_feed_guard_list gl = { "node", prot, 2000 };
	struct zt_feed_result r;

	assert_non_null(prot);
	for (int i = 0; i < 2000; i++) {
		char s[32];

		snprintf(s, sizeof(s), "10.%d.%d.1", i / 8, i % 8 * 30);
		prot[i] = C(s);
	}
	result_of(&r, v, 2);
	assert_int_equal(zt_feed_subtract(&r, &gl, 1), 0);
	assert_int_equal(r.n, 1);
	assert_non_null(find_entry(&r, "192.0.2.0/24", 0));
	assert_int_equal(r.n_subtractions, 1);
	assert_true(r.subtractions[0].refused);
	assert_string_equal(r.subtractions[0].list, "node");
	zt_feed_result_free(&r);
	free(prot);
}

/* A split piece that another entry already lists: merged, still sorted. */
static void test_split_merge(void **state)
{
	static const char *const v[] = { "198.51.100.0/24", "198.51.100.128/25", "198.51.100.9" };
	struct zt_cidr prot = C("198.51.100.0/28");
	struct zt_feed_guard_list gl = { "protected", &prot, 1 };
	struct zt_feed_result r;

	result_of(&r, v, 3);
	assert_int_equal(zt_feed_subtract(&r, &gl, 1), 0);
	/* /24 minus /28: /28 /27 /26 /25 = 4 pieces; /25 duplicates; .9 is inside. */
	assert_int_equal(r.n, 4);
	assert_non_null(find_entry(&r, "198.51.100.16/28", 0));
	assert_non_null(find_entry(&r, "198.51.100.128/25", 0));
	assert_int_equal(r.stats.duplicates, 1);
	assert_int_equal(r.stats.subtracted, 1);
	/* The merged entry keeps the reference seen first. */
	assert_string_equal(zt_feed_ref(&r, find_entry(&r, "198.51.100.128/25", 0)),
			    "198.51.100.0/24");
	zt_feed_result_free(&r);
}

/*
 * Random entries and random protected ranges inside 198.18.0.0/16: after
 * subtraction, every one of the 65536 addresses is blocked exactly when it
 * was before and is not protected.
 */
static void test_exhaustive(void **state)
{
	uint64_t seed = 7;

	for (int round = 0; round < 20; round++) {
		struct zt_feed_result r;
		struct zt_cidr prot[8];
		struct zt_feed_guard_list gl[2] = { { "a", prot, 4 }, { "b", prot + 4, 4 } };
		uint8_t *before = calloc(65536, 1);
		char s[40];

		assert_non_null(before);
		assert_int_equal(zt_feed_result_init(&r, "t"), 0);
		{
			struct zt_feed_parse_opts o = { .feed = "t" };
			struct feed_ctx x = { .r = &r, .o = &o };

			for (int i = 0; i < 30; i++) {
				struct zt_cidr c;

				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				snprintf(s, sizeof(s), "198.18.%u.%u/%u",
					 (unsigned)(seed >> 33) & 255, (unsigned)(seed >> 41) & 255,
					 16 + (unsigned)((seed >> 50) % 17));
				zt_cidr_parse(s, &c, NULL);
				assert_int_equal(feed_add(&x, &c, 0, ZT_FEED_BOTH, 0, NULL, 0), 0);
			}
		}
		assert_int_equal(zt_feed_finish(&r, 0), 0);
		for (int i = 0; i < 8; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			snprintf(s, sizeof(s), "198.18.%u.%u/%u", (unsigned)(seed >> 33) & 255,
				 (unsigned)(seed >> 41) & 255, 18 + (unsigned)((seed >> 50) % 15));
			zt_cidr_parse(s, &prot[i], NULL);
		}
		for (int a = 0; a < 65536; a++) {
			uint8_t ad[4] = { 198, 18, (uint8_t)(a >> 8), (uint8_t)a };

			before[a] = blocked(&r, AF_INET, ad);
		}
		assert_int_equal(zt_feed_subtract(&r, gl, 2), 0);
		for (int a = 0; a < 65536; a++) {
			uint8_t ad[4] = { 198, 18, (uint8_t)(a >> 8), (uint8_t)a };
			bool prot_hit = false;

			for (int i = 0; i < 8; i++)
				prot_hit |= zt_cidr_contains(&prot[i], ad);
			if (blocked(&r, AF_INET, ad) != (before[a] && !prot_hit))
				fail_msg(
					"round %d: 198.18.%d.%d blocked %d, before %d, protected %d",
					round, a >> 8, a & 255, blocked(&r, AF_INET, ad), before[a],
					prot_hit);
		}
		free(before);
		zt_feed_result_free(&r);
	}
}

static void test_node_addrs(void **state)
{
	struct zt_cidr *v = NULL;
	size_t n = 0;
	bool lo = false;

	assert_int_equal(zt_feed_node_addrs(&v, &n), 0);
	for (size_t i = 0; i < n; i++) {
		char s[ZT_CIDR_STRLEN];

		zt_cidr_format(&v[i], s, sizeof(s));
		lo |= !strcmp(s, "127.0.0.1/32");
		assert_int_equal(v[i].prefixlen, v[i].family == AF_INET ? 32 : 128);
	}
	/* Every network namespace has lo; it is up in the ones the tests run in. */
	if (n)
		assert_true(lo);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_special_ranges), cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_bound),    cmocka_unit_test(test_split_merge),
		cmocka_unit_test(test_exhaustive),     cmocka_unit_test(test_node_addrs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
