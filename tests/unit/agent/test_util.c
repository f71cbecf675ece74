// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: CIDR, duration, size and number parsing, clocks, hashing, mkdir -p. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
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

#include "agent/util.h"

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
	{ "1.2.3.4/32", "1.2.3.4/32", false },
	{ "255.255.255.255/32", "255.255.255.255/32", false },
	{ "255.255.255.255/1", "128.0.0.0/1", true },
	{ "198.19.255.255/31", "198.19.255.254/31", true },
	{ "10.0.0.0/8", "10.0.0.0/8", false },
	{ "10.1.0.0/9", "10.0.0.0/9", true },
	{ "2001:db8::1", "2001:db8::1/128", false },
	{ "2001:db8::/32", "2001:db8::/32", false },
	{ "2001:db8::1/64", "2001:db8::/64", true },
	{ "2001:DB8::/32", "2001:db8::/32", false },
	{ "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128", false },
	{ "::/0", "::/0", false },
	{ "::", "::/128", false },
	{ "::1/128", "::1/128", false },
	{ "ffff::/0", "::/0", true },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/65", "2001:db8:ffff:ffff:8000::/65", true },
	/* Shorter than /96: not an IPv4-mapped prefix, just a wide IPv6 one. */
	{ "::ffff:0:0/95", "::fffe:0:0/95", true },
	{ "64:ff9b::198.18.0.1", "64:ff9b::c612:1/128", false },
};

static const char *const cidr_bad[] = {
	"",
	" ",
	"/",
	" 1.2.3.4",
	"1.2.3.4 ",
	"1.2.3.4\n",
	"1.2.3.4\t",
	"1.2.3.4/33",
	"1.2.3.4/",
	"1.2.3.4/-1",
	"1.2.3.4/+8",
	"1.2.3.4/ 8",
	"1.2.3.4/8 ",
	"1.2.3.4//8",
	"1.2.3.4/08", /* leading zeros in the length are refused: /08 is not /8 by accident */
	"1.2.3.4/00",
	"1.2.3.4/0x8",
	"1.2.3.4/8/8",
	"1.2.3.4/24x",
	"1.2.3.4/1000",
	"1.2.3.4/4294967304", /* 2^32 + 8: must not wrap to /8 */
	"1.2.3",
	"1.2.3.",
	"1.2.3.4.5",
	"256.0.0.1",
	"1.2.3.04",
	"198.018.0.1",
	"0x7f.0.0.1",
	"017700000001",
	"1.2.3.-4",
	"::/129",
	"::/1280",
	"2001:db8::/0128",
	"2001:db8::/64/1",
	"2001:db8:::1",
	"2001:db8::1::2",
	"2001:db8:0:0:0:0:0:0:1",
	"12345::",
	"fe80::1%eth0",
	"fe80::1%eth0/64",
	"[2001:db8::1]",
	"/24",
	"abc",
	"localhost",
	/* IPv4-mapped IPv6: the datapath sees these packets as IPv4, never as IPv6. */
	"::ffff:198.18.0.1",
	"::ffff:c612:1",
	"::ffff:198.18.0.0/120",
	"::ffff:0:0/96",
};

static void test_cidr_valid(void **state)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cidr_ok); i++) {
		struct zt_cidr c, c2;
		char buf[ZT_CIDR_STRLEN];
		bool hb = !cidr_ok[i].host_bits;

		if (zt_cidr_parse(cidr_ok[i].in, &c, &hb) != 0)
			fail_msg("'%s' refused", cidr_ok[i].in);
		assert_int_equal(zt_cidr_format(&c, buf, sizeof(buf)), 0);
		if (strcmp(buf, cidr_ok[i].out))
			fail_msg("%s -> %s, expected %s", cidr_ok[i].in, buf, cidr_ok[i].out);
		if (hb != cidr_ok[i].host_bits)
			fail_msg("%s: host bits %d, expected %d", cidr_ok[i].in, hb,
				 cidr_ok[i].host_bits);
		/* Round trip: the normalized form parses to itself without host bits. */
		assert_int_equal(zt_cidr_parse(buf, &c2, &hb), 0);
		assert_false(hb);
		assert_memory_equal(&c, &c2, sizeof(c));
		/* had_host_bits may be NULL. */
		assert_int_equal(zt_cidr_parse(cidr_ok[i].in, &c2, NULL), 0);
		assert_memory_equal(&c, &c2, sizeof(c));
	}
}

static void test_cidr_fields(void **state)
{
	struct zt_cidr c;
	static const uint8_t v4[16] = { 198, 18, 0, 0 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	assert_int_equal(zt_cidr_parse("198.18.0.9/24", &c, NULL), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefixlen, 24);
	assert_memory_equal(c.addr, v4, 16); /* the 12 unused bytes are zero too */
	assert_int_equal(zt_cidr_parse("2001:db8::5/32", &c, NULL), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefixlen, 32);
	assert_memory_equal(c.addr, v6, 16);
}

static void test_cidr_invalid(void **state)
{
	char s[600];
	struct zt_cidr c;
	bool hb = true;

	memset(&c, 0x5a, sizeof(c));
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cidr_bad); i++) {
		struct zt_cidr before = c;

		if (zt_cidr_parse(cidr_bad[i], &c, &hb) != -EINVAL)
			fail_msg("'%s' was accepted", cidr_bad[i]);
		assert_memory_equal(&c, &before, sizeof(c)); /* untouched on failure */
	}
	assert_int_equal(zt_cidr_parse(NULL, &c, NULL), -EINVAL);

	/* Long strings of several shapes. */
	memset(s, '1', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	assert_int_equal(zt_cidr_parse(s, &c, NULL), -EINVAL);
	snprintf(s, sizeof(s), "1.2.3.4/");
	memset(s + 8, '1', sizeof(s) - 9);
	assert_int_equal(zt_cidr_parse(s, &c, NULL), -EINVAL);
	snprintf(s, sizeof(s), "1.2.3.4/");
	memset(s + 8, '0', sizeof(s) - 10);
	s[sizeof(s) - 2] = '8';
	assert_int_equal(zt_cidr_parse(s, &c, NULL), -EINVAL);
	memset(s, ':', sizeof(s) - 1);
	assert_int_equal(zt_cidr_parse(s, &c, NULL), -EINVAL);
	/* Long but well-formed addresses parse; leading zeros in a dotted quad do not. */
	assert_int_equal(zt_cidr_parse("2001:0db8:0000:0000:0000:ffff:198.018.000.001", &c, NULL),
			 -EINVAL);
	assert_int_equal(zt_cidr_parse("2001:0db8:0000:0000:0000:ffff:198.18.0.1/128", &c, NULL),
			 0);
	/* More than four hex digits in a group. */
	assert_int_equal(zt_cidr_parse("2001:0db8:0000:0000:0000:0000:0000:00000001", &c, NULL),
			 -EINVAL);
}

static void test_cidr_format(void **state)
{
	struct zt_cidr c;
	char buf[ZT_CIDR_STRLEN];
	const char *worst = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128";

	assert_int_equal(zt_cidr_parse(worst, &c, NULL), 0);
	assert_int_equal(zt_cidr_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, worst);
	assert_int_equal(zt_cidr_format(&c, buf, strlen(worst)), -ENOSPC);
	assert_int_equal(zt_cidr_format(&c, buf, strlen(worst) + 1), 0);
	c.family = 99;
	assert_int_equal(zt_cidr_format(&c, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(zt_cidr_parse("1.2.3.4", &c, NULL), 0);
	c.prefixlen = 33;
	assert_int_equal(zt_cidr_format(&c, buf, sizeof(buf)), -EINVAL);
}

/* zt_cidr_format gives c as inet_ntop and "/len" would. */
static void check_as_ntop(const struct zt_cidr *c)
{
	char a[INET6_ADDRSTRLEN], want[ZT_CIDR_STRLEN + 8], got[ZT_CIDR_STRLEN];

	assert_non_null(inet_ntop(c->family, c->addr, a, sizeof(a)));
	snprintf(want, sizeof(want), "%s/%u", a, c->prefixlen);
	assert_int_equal(zt_cidr_format(c, got, sizeof(got)), 0);
	if (strcmp(got, want))
		fail_msg("formatted '%s', inet_ntop gives '%s'", got, want);
}

/*
 * zt_cidr_format writes what inet_ntop writes: every pattern of zero and
 * non-zero groups (where "::" goes, ties to the first run), groups of 1-4
 * hex digits, the embedded IPv4 forms (::a.b.c.d, ::ffff:a.b.c.d and
 * their near misses), every prefix length and IPv4 from 0.0.0.0 up.
 */
static void test_cidr_format_as_ntop(void **state)
{
	static const unsigned int vals[] = { 0x1, 0xf, 0x10, 0xff, 0x100, 0xfff, 0x1000, 0xffff };
	unsigned int seed = 1;
	struct zt_cidr c;

	for (unsigned int mask = 0; mask < 256; mask++)
		for (unsigned int r = 0; r < 24; r++) {
			memset(&c, 0, sizeof(c));
			c.family = AF_INET6;
			c.prefixlen = (uint8_t)((mask * 24 + r) % 129);
			for (int i = 0; i < 8; i++) {
				unsigned int w;

				if (!(mask & (1u << i)))
					continue;
				seed = seed * 1103515245u + 12345u;
				w = r < 8 ? vals[(r + (unsigned int)i) % 8] :
					    (seed >> 8 & 0xffff) | 1;
				c.addr[2 * i] = (uint8_t)(w >> 8);
				c.addr[2 * i + 1] = (uint8_t)w;
			}
			check_as_ntop(&c);
			/* The same with group 5 all ones: the IPv4-mapped form and its misses. */
			c.addr[10] = c.addr[11] = 0xff;
			check_as_ntop(&c);
		}
	for (unsigned int i = 0; i < 4096; i++) {
		uint32_t a = i < 2048 ? i * 2097169u : (seed = seed * 1103515245u + 12345u);

		memset(&c, 0, sizeof(c));
		c.family = AF_INET;
		c.prefixlen = (uint8_t)(i % 33);
		c.addr[0] = (uint8_t)(a >> 24);
		c.addr[1] = (uint8_t)(a >> 16);
		c.addr[2] = (uint8_t)(a >> 8);
		c.addr[3] = (uint8_t)a;
		check_as_ntop(&c);
	}
	memset(c.addr, 0, sizeof(c.addr));
	check_as_ntop(&c);
	memset(c.addr, 0xff, 4);
	check_as_ntop(&c);
}

static void test_cidr_mask(void **state)
{
	static const struct {
		int family;
		uint8_t plen;
		uint8_t in[16], out[16];
	} t[] = {
		{ AF_INET, 0, { 255, 255, 255, 255 }, { 0 } },
		{ AF_INET, 1, { 255, 255, 255, 255 }, { 128 } },
		{ AF_INET, 12, { 255, 255, 255, 255 }, { 255, 240 } },
		{ AF_INET, 32, { 1, 2, 3, 4, 9, 9 }, { 1, 2, 3, 4 } }, /* bytes past 4 cleared */
		{ AF_INET6,
		  127,
		  { 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
		    255 },
		  { 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
		    254 } },
		{ AF_INET6, 9, { 0xff, 0xff, 0xff }, { 0xff, 0x80 } },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		struct zt_cidr c = { .family = t[i].family, .prefixlen = t[i].plen };

		memcpy(c.addr, t[i].in, 16);
		zt_cidr_mask(&c);
		if (memcmp(c.addr, t[i].out, 16))
			fail_msg("mask case %zu", i);
	}
}

static void test_cidr_contains(void **state)
{
	static const struct {
		const char *net, *addr;
		bool in;
	} t[] = {
		{ "198.18.0.0/24", "198.18.0.0", true },
		{ "198.18.0.0/24", "198.18.0.255", true },
		{ "198.18.0.0/24", "198.18.1.0", false },
		{ "198.18.0.0/24", "198.17.255.255", false },
		{ "0.0.0.0/0", "198.19.1.1", true },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "198.18.0.1/32", "198.18.0.1", true },
		{ "198.18.0.1/32", "198.18.0.2", false },
		{ "128.0.0.0/1", "127.255.255.255", false },
		{ "2001:db8::/32", "2001:db8:1::5", true },
		{ "2001:db8::/33", "2001:db8:8000::", false },
		{ "2001:db8::/33", "2001:db8:7fff::", true },
		{ "::/0", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::", false },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		struct zt_cidr n, a;

		assert_int_equal(zt_cidr_parse(t[i].net, &n, NULL), 0);
		assert_int_equal(zt_cidr_parse(t[i].addr, &a, NULL), 0);
		if (zt_cidr_contains(&n, a.addr) != t[i].in)
			fail_msg("%s contains %s: expected %d", t[i].net, t[i].addr, t[i].in);
	}
	{
		struct zt_cidr bad = { .family = 0 };
		uint8_t any[16] = { 0 };

		assert_false(zt_cidr_contains(&bad, any));
	}
}

static void test_duration(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t ns;
		const char *fmt; /* zt_duration_format of the result */
	} t[] = {
		{ "0", 0, 0, "0s" },
		{ "10", 0, 10000000000ULL, "10s" },
		{ "0ms", 0, 0, "0s" },
		{ "1ms", 0, 1000000ULL, "1ms" },
		{ "500ms", 0, 500000000ULL, "500ms" },
		{ "1000ms", 0, 1000000000ULL, "1s" },
		{ "45s", 0, 45000000000ULL, "45s" },
		{ "90s", 0, 90000000000ULL, "1m30s" },
		{ "10m", 0, 600000000000ULL, "10m" },
		{ "1h30m", 0, 5400000000000ULL, "1h30m" },
		{ "2d", 0, 172800000000000ULL, "2d" },
		{ "1m30s", 0, 90000000000ULL, "1m30s" },
		{ "1s500ms", 0, 1500000000ULL, "1500ms" },
		{ "1d1h1m1s", 0, 90061000000000ULL, "1d1h1m1s" },
		{ "1s1s", 0, 2000000000ULL, "2s" },
		{ "007s", 0, 7000000000ULL, "7s" },
		{ "18446744073709ms", 0, 18446744073709000000ULL, "18446744073709ms" },
		{ "", -EINVAL, 0, NULL },
		{ "ms", -EINVAL, 0, NULL },
		{ "s", -EINVAL, 0, NULL },
		{ "10x", -EINVAL, 0, NULL },
		{ "10sx", -EINVAL, 0, NULL },
		{ "10S", -EINVAL, 0, NULL },
		{ "10H", -EINVAL, 0, NULL },
		{ "10ns", -EINVAL, 0, NULL },
		{ "10us", -EINVAL, 0, NULL },
		{ "10mss", -EINVAL, 0, NULL },
		{ "1h-5m", -EINVAL, 0, NULL },
		{ "-5s", -EINVAL, 0, NULL },
		{ "+5s", -EINVAL, 0, NULL },
		{ "5 s", -EINVAL, 0, NULL },
		{ " 5s", -EINVAL, 0, NULL },
		{ "5s ", -EINVAL, 0, NULL },
		{ "1.5s", -EINVAL, 0, NULL },
		{ "1h5", -EINVAL, 0, NULL }, /* a bare number only as the whole string */
		{ "0x10s", -EINVAL, 0, NULL },
		{ "99999999999999999999", -ERANGE, 0, NULL },
		{ "18446744073709551615", -ERANGE, 0, NULL },
		{ "18446744073709551615d", -ERANGE, 0, NULL },
		{ "18446744073710ms", -ERANGE, 0, NULL },
		{ "300000d", -ERANGE, 0, NULL },
		{ "213503d1d", -ERANGE, 0, NULL }, /* each part fits, the sum does not */
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		uint64_t ns = 12345, back;
		char buf[64];
		int r = zt_duration_parse(t[i].in, &ns);

		if (r != t[i].r)
			fail_msg("'%s': got %d, expected %d", t[i].in, r, t[i].r);
		if (r) {
			assert_int_equal(ns, 12345); /* untouched */
			continue;
		}
		if (ns != t[i].ns)
			fail_msg("'%s' = %llu ns", t[i].in, (unsigned long long)ns);
		assert_int_equal(zt_duration_format(ns, buf, sizeof(buf)), 0);
		if (strcmp(buf, t[i].fmt))
			fail_msg("format(%s) = '%s', expected '%s'", t[i].in, buf, t[i].fmt);
		/* What we print, we read back. */
		assert_int_equal(zt_duration_parse(buf, &back), 0);
		assert_int_equal(back, ns);
	}
	assert_int_equal(zt_duration_parse(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_duration_format(void **state)
{
	char buf[64];

	assert_int_equal(zt_duration_format(1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1ns"); /* not parseable, but exact: for display only */
	assert_int_equal(zt_duration_format(1500001, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1500001ns");
	assert_int_equal(zt_duration_format(3600000000000ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1h");
	assert_int_equal(zt_duration_format(86401000000000ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1d1s");
	assert_int_equal(zt_duration_format(UINT64_MAX, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "18446744073709551615ns");
	/* Too small a buffer: -ENOSPC, never an overflow. */
	assert_int_equal(zt_duration_format(0, buf, 2), -ENOSPC);
	assert_int_equal(zt_duration_format(0, buf, 3), 0);
	assert_int_equal(zt_duration_format(90000000000ULL, buf, 5), -ENOSPC);
	assert_int_equal(zt_duration_format(90000000000ULL, buf, 6), 0);
	assert_string_equal(buf, "1m30s");
	assert_int_equal(zt_duration_format(1500000000ULL, buf, 6), -ENOSPC);
	assert_int_equal(zt_duration_format(1, buf, 0), -ENOSPC);
}

static void test_size(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t v;
	} t[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "1B", 0, 1 },
		{ "64KiB", 0, 65536 },
		{ "64K", 0, 65536 },
		{ "4MiB", 0, 4u << 20 },
		{ "2M", 0, 2u << 20 },
		{ "1GiB", 0, 1u << 30 },
		{ "3G", 0, 3ULL << 30 },
		{ "1TiB", 0, 1ULL << 40 },
		{ "16777215TiB", 0, 16777215ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "", -EINVAL, 0 },
		{ "B", -EINVAL, 0 },
		{ "MiB", -EINVAL, 0 },
		{ "4 MiB", -EINVAL, 0 },
		{ " 4MiB", -EINVAL, 0 },
		{ "4MiB ", -EINVAL, 0 },
		{ "4mb", -EINVAL, 0 },
		{ "4MB", -EINVAL, 0 },
		{ "4mib", -EINVAL, 0 },
		{ "4KiBB", -EINVAL, 0 },
		{ "1.5MiB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "0x1000", -EINVAL, 0 },
		{ "1PiB", -EINVAL, 0 },
		{ "16777216TiB", -ERANGE, 0 },
		{ "99999999999TiB", -ERANGE, 0 },
		{ "18446744073709551616", -ERANGE, 0 },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		uint64_t v = 777;
		int r = zt_size_parse(t[i].in, &v);

		if (r != t[i].r)
			fail_msg("size '%s': got %d, expected %d", t[i].in, r, t[i].r);
		assert_int_equal(v, r ? 777 : t[i].v);
	}
	assert_int_equal(zt_size_parse(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_u64(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint64_t v;
	} t[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "00", 0, 0 },
		{ "007", 0, 7 },
		{ "4294967296", 0, 4294967296ULL },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "018446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "18446744073709551620", -ERANGE, 0 },
		{ "99999999999999999999999999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "-0", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1\n", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1e3", -EINVAL, 0 },
		{ "1_000", -EINVAL, 0 },
		{ "1.0", -EINVAL, 0 },
		{ "99999999999999999999999x", -EINVAL, 0 }, /* junk wins over overflow */
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		uint64_t v = 777;
		int r = zt_parse_u64(t[i].in, &v);

		if (r != t[i].r)
			fail_msg("u64 '%s': got %d, expected %d", t[i].in, r, t[i].r);
		assert_int_equal(v, r ? 777 : t[i].v);
	}
	assert_int_equal(zt_parse_u64(NULL, &(uint64_t){ 0 }), -EINVAL);
}

static void test_time_and_hash(void **state)
{
	char buf[32];
	uint64_t mono, boot;

	assert_int_equal(zt_time_format(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(zt_time_format(1795390483, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-22T23:34:43Z");
	assert_int_equal(zt_time_format(951782400, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2000-02-29T00:00:00Z");
	assert_int_equal(zt_time_format(0, buf, 5), -ENOSPC);
	assert_int_equal(zt_time_format(0, buf, 20), -ENOSPC); /* no room for the NUL */
	assert_int_equal(zt_time_format(0, buf, 21), 0);
	assert_int_equal(zt_time_format(UINT64_MAX, buf, sizeof(buf)), -EINVAL);
	/* FNV-1a reference values. */
	assert_int_equal(zt_fnv1a32("", 0), 0x811c9dc5u);
	assert_int_equal(zt_fnv1a32("a", 1), 0xe40c292cu);
	assert_int_equal(zt_fnv1a32("foobar", 6), 0xbf9cf968u);
	/* CLOCK_BOOTTIME also counts suspend: never behind CLOCK_MONOTONIC. */
	mono = zt_now_mono_ns();
	boot = zt_now_boot_ns();
	assert_true(boot >= mono);
	assert_true(zt_now_mono_ns() >= mono);
	assert_true(zt_now_unix() > 1577836800); /* after 2020 */
}

static void test_mkdir_p(void **state)
{
	char base[] = "/tmp/zt-unit-XXXXXX", path[512], big[5000];
	struct stat st;
	int fd;

	umask(022);
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(zt_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/a", base);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700); /* parents get the mode too */
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(zt_mkdir_p(path, 0700), 0); /* again: fine */
	snprintf(path, sizeof(path), "%s//a//b/c/d/", base); /* doubled and trailing slashes */
	assert_int_equal(zt_mkdir_p(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b/c/d", base);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);

	/* A regular file in the way: as the last component or in the middle. */
	snprintf(path, sizeof(path), "%s/file", base);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(zt_mkdir_p(path, 0700), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/sub", base);
	assert_int_equal(zt_mkdir_p(path, 0700), -ENOTDIR);

	assert_int_equal(zt_mkdir_p("", 0700), -EINVAL);
	assert_int_equal(zt_mkdir_p(NULL, 0700), -EINVAL);
	assert_int_equal(zt_mkdir_p("/", 0700), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(zt_mkdir_p(big, 0700), -ENAMETOOLONG);

	snprintf(path, sizeof(path), "%s/file", base);
	unlink(path);
	static const char *const dirs[] = { "a/b/c/d", "a/b/c", "a/b", "a" };
	for (size_t i = 0; i < ZT_ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, dirs[i]);
		assert_int_equal(rmdir(path), 0);
	}
	assert_int_equal(rmdir(base), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_valid),
		cmocka_unit_test(test_cidr_fields),
		cmocka_unit_test(test_cidr_invalid),
		cmocka_unit_test(test_cidr_format),
		cmocka_unit_test(test_cidr_format_as_ntop),
		cmocka_unit_test(test_cidr_mask),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_time_and_hash),
		cmocka_unit_test(test_mkdir_p),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
