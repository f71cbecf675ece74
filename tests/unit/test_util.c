// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: CIDR, duration, size and number parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"

static const struct {
	const char *in;
	const char *out; /* normalized */
	bool host_bits;
} cidr_ok[] = {
	{ "198.18.0.1", "198.18.0.1/32", false },
	{ "198.18.0.0/15", "198.18.0.0/15", false },
	{ "198.18.0.7/24", "198.18.0.0/24", true },
	{ "0.0.0.0/0", "0.0.0.0/0", false },
	{ "1.2.3.4/0", "0.0.0.0/0", true },
	{ "255.255.255.255/32", "255.255.255.255/32", false },
	{ "198.19.255.255/31", "198.19.255.254/31", true },
	{ "2001:db8::1", "2001:db8::1/128", false },
	{ "2001:db8::/32", "2001:db8::/32", false },
	{ "2001:db8::1/64", "2001:db8::/64", true },
	{ "::/0", "::/0", false },
	{ "::1/128", "::1/128", false },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/65", "2001:db8:ffff:ffff:8000::/65", true },
	{ "::ffff:198.18.0.1", "::ffff:198.18.0.1/128", false },
};

static const char *const cidr_bad[] = {
	"",
	" 198.18.0.1",
	"198.18.0.1 ",
	"198.18.0.1/33",
	"198.18.0.1/",
	"198.18.0.1/-1",
	"198.18.0.1/+8",
	"198.18.0.1/08",
	"198.18.0.1/8/8",
	"198.18.0.1/24x",
	"198.18.0",
	"198.18.0.1.5",
	"256.0.0.1",
	"198.018.0.1",
	"::/129",
	"2001:db8::/64/1",
	"2001:db8:::1",
	"/24",
	"abc",
	"198.18.0.1/1000",
	"2001:db8::/0128",
	"0x7f.0.0.1",
	"198.18.0.1\n",
};

static void test_cidr_valid(void **state)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cidr_ok); i++) {
		struct zt_cidr c;
		char buf[ZT_CIDR_STRLEN];
		bool hb = !cidr_ok[i].host_bits;

		assert_int_equal(zt_cidr_parse(cidr_ok[i].in, &c, &hb), 0);
		assert_int_equal(zt_cidr_format(&c, buf, sizeof(buf)), 0);
		if (strcmp(buf, cidr_ok[i].out))
			fail_msg("%s -> %s, expected %s", cidr_ok[i].in, buf, cidr_ok[i].out);
		assert_int_equal(hb, cidr_ok[i].host_bits);
		/* Round trip: the normalized form parses to itself without host bits. */
		struct zt_cidr c2;
		assert_int_equal(zt_cidr_parse(buf, &c2, &hb), 0);
		assert_false(hb);
		assert_memory_equal(&c, &c2, sizeof(c));
	}
}

static void test_cidr_invalid(void **state)
{
	char longs[600];
	struct zt_cidr c = { .family = 99 };

	for (size_t i = 0; i < ZT_ARRAY_SIZE(cidr_bad); i++) {
		if (zt_cidr_parse(cidr_bad[i], &c, NULL) != -EINVAL)
			fail_msg("'%s' was accepted", cidr_bad[i]);
		assert_int_equal(c.family, 99); /* untouched on failure */
	}
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	assert_int_equal(zt_cidr_parse(longs, &c, NULL), -EINVAL);
	assert_int_equal(zt_cidr_parse(NULL, &c, NULL), -EINVAL);
}

static void test_cidr_contains(void **state)
{
	static const struct {
		const char *net, *addr;
		bool in;
	} t[] = {
		{ "198.18.0.0/24", "198.18.0.255", true },
		{ "198.18.0.0/24", "198.18.1.0", false },
		{ "0.0.0.0/0", "198.19.1.1", true },
		{ "198.18.0.1/32", "198.18.0.1", true },
		{ "198.18.0.1/32", "198.18.0.2", false },
		{ "2001:db8::/32", "2001:db8:1::5", true },
		{ "2001:db8::/33", "2001:db8:8000::", false },
		{ "::/0", "2001:db8::1", true },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		struct zt_cidr n, a;

		assert_int_equal(zt_cidr_parse(t[i].net, &n, NULL), 0);
		assert_int_equal(zt_cidr_parse(t[i].addr, &a, NULL), 0);
		if (zt_cidr_contains(&n, a.addr) != t[i].in)
			fail_msg("%s contains %s: expected %d", t[i].net, t[i].addr, t[i].in);
	}
}

static void test_duration(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t ns;
		const char *fmt;
	} t[] = {
		{ "0", 0, 0, "0s" },
		{ "10", 0, 10000000000ULL, "10s" },
		{ "500ms", 0, 500000000ULL, "500ms" },
		{ "45s", 0, 45000000000ULL, "45s" },
		{ "10m", 0, 600000000000ULL, "10m" },
		{ "1h30m", 0, 5400000000000ULL, "1h30m" },
		{ "2d", 0, 172800000000000ULL, "2d" },
		{ "1m30s", 0, 90000000000ULL, "1m30s" },
		{ "1s500ms", 0, 1500000000ULL, "1500ms" },
		{ "", -EINVAL, 0, NULL },
		{ "ms", -EINVAL, 0, NULL },
		{ "10x", -EINVAL, 0, NULL },
		{ "1h-5m", -EINVAL, 0, NULL },
		{ "-5s", -EINVAL, 0, NULL },
		{ "5 s", -EINVAL, 0, NULL },
		{ "1.5s", -EINVAL, 0, NULL },
		{ "99999999999999999999", -ERANGE, 0, NULL },
		{ "18446744073709551615d", -ERANGE, 0, NULL },
		{ "300000d", -ERANGE, 0, NULL },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		uint64_t ns = 12345;
		char buf[64];
		int r = zt_duration_parse(t[i].in, &ns);

		if (r != t[i].r)
			fail_msg("'%s': got %d, expected %d", t[i].in, r, t[i].r);
		if (r)
			continue;
		assert_int_equal(ns, t[i].ns);
		assert_int_equal(zt_duration_format(ns, buf, sizeof(buf)), 0);
		assert_string_equal(buf, t[i].fmt);
	}
}

static void test_size_and_u64(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t v;
	} sz[] = {
		{ "4096", 0, 4096 },
		{ "64KiB", 0, 65536 },
		{ "4MiB", 0, 4u << 20 },
		{ "1GiB", 0, 1u << 30 },
		{ "2M", 0, 2u << 20 },
		{ "", -EINVAL, 0 },
		{ "4 MiB", -EINVAL, 0 },
		{ "4mb", -EINVAL, 0 },
		{ "MiB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "99999999999TiB", -ERANGE, 0 },
	};
	static const struct {
		const char *in;
		int r;
		uint64_t v;
	} u[] = {
		{ "0", 0, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(sz); i++) {
		uint64_t v = 0;

		if (zt_size_parse(sz[i].in, &v) != sz[i].r)
			fail_msg("size '%s'", sz[i].in);
		if (!sz[i].r)
			assert_int_equal(v, sz[i].v);
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(u); i++) {
		uint64_t v = 0;

		if (zt_parse_u64(u[i].in, &v) != u[i].r)
			fail_msg("u64 '%s'", u[i].in);
		if (!u[i].r)
			assert_int_equal(v, u[i].v);
	}
}

static void test_time_and_hash(void **state)
{
	char buf[32];

	assert_int_equal(zt_time_format(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(zt_time_format(1795390483, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-22T23:34:43Z");
	assert_int_equal(zt_time_format(0, buf, 5), -ENOSPC);
	/* FNV-1a reference values. */
	assert_int_equal(zt_fnv1a32("", 0), 0x811c9dc5u);
	assert_int_equal(zt_fnv1a32("a", 1), 0xe40c292cu);
	/* CLOCK_BOOTTIME also counts suspend: never behind CLOCK_MONOTONIC. */
	uint64_t mono = zt_now_mono_ns();
	assert_true(zt_now_boot_ns() >= mono);
}

static void test_mkdir_p(void **state)
{
	char base[] = "/tmp/zt-unit-XXXXXX", path[256];
	struct stat st;

	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(zt_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(zt_mkdir_p(path, 0700), 0); /* again: fine */
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a/b", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a", base);
	rmdir(path);
	rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_valid),    cmocka_unit_test(test_cidr_invalid),
		cmocka_unit_test(test_cidr_contains), cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size_and_u64),  cmocka_unit_test(test_time_and_hash),
		cmocka_unit_test(test_mkdir_p),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
