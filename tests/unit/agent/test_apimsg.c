// SPDX-License-Identifier: GPL-2.0-only
/* API frames: CBOR encode/decode, the pre-scan's limits, map access, blocking I/O, JSON. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/apimsg.h"

/*
 * Under AddressSanitizer, a malloc hook records the largest single
 * allocation, to show that declared lengths are not trusted. Without it the
 * checks that need it are skipped.
 */
extern int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
						     void (*f)(const volatile void *))
	__attribute__((weak));

static volatile size_t largest_alloc;
static volatile int tracking;
static int hooks_ok;

static void on_malloc(const volatile void *p, size_t n)
{
	if (tracking && n > largest_alloc)
		largest_alloc = n;
}

static void on_free(const volatile void *p)
{
}

static void track_start(void)
{
	largest_alloc = 0;
	tracking = 1;
}

static size_t track_stop(void)
{
	tracking = 0;
	return largest_alloc;
}

static int setup_hooks(void **state)
{
	if (__sanitizer_install_malloc_and_free_hooks)
		hooks_ok = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
	if (hooks_ok) {
		/* The hook sees what this program allocates, libcbor included. */
		cbor_item_t *it;

		track_start();
		it = cbor_new_definite_array(100000);
		hooks_ok = track_stop() >= 100000 * sizeof(cbor_item_t *);
		cbor_decref(&it);
	}
	if (!hooks_ok)
		print_message("allocation-size checks skipped (not built with ASan)\n");
	return 0;
}

/* ---- helpers ---- */

static cbor_item_t *decode_ok(const uint8_t *b, size_t n)
{
	char err[256] = "";
	cbor_item_t *it = NULL;
	int r = zt_msg_decode(b, n, &it, err, sizeof(err));

	if (r != 0)
		fail_msg("decode failed (%d): %s", r, err);
	assert_non_null(it);
	return it;
}

/* Decodes frame (header included) and checks the header's length. */
static cbor_item_t *unframe(const uint8_t *f, size_t n)
{
	uint32_t len;

	assert_true(n > ZT_API_HDR_LEN);
	len = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
	assert_int_equal(len, n - ZT_API_HDR_LEN);
	return decode_ok(f + ZT_API_HDR_LEN, n - ZT_API_HDR_LEN);
}

static char *json_of(const cbor_item_t *it, bool pretty)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);

	assert_non_null(f);
	assert_int_equal(zt_cbor_to_json(it, f, pretty), 0);
	fclose(f);
	return s;
}

/* ---- round trips ---- */

static const uint64_t u64_cases[] = {
	0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295ULL, 4294967296ULL, UINT64_MAX,
};

static const int64_t i64_cases[] = {
	0, 1, -1, -24, -25, -256, -257, -65537, INT32_MIN, INT64_MAX, INT64_MIN,
};

static const char *const str_cases[] = {
	"",
	"a",
	"op",
	"198.18.0.0/24",
	"2001:db8::/32",
	"caf\xc3\xa9",
	"\xe2\x82\xac 5",
	"a string of exactly twenty-four bytes!!",
	"\xf0\x9f\x94\x92 locked",
};

static void test_roundtrip_scalars(void **state)
{
	char key[32], buf[64];
	cbor_item_t *m = zt_cbor_map(), *back;
	uint8_t *f;
	size_t n;

	assert_non_null(m);
	for (size_t i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
		snprintf(key, sizeof(key), "u%zu", i);
		assert_int_equal(zt_cbor_put_u64(m, key, u64_cases[i]), 0);
	}
	for (size_t i = 0; i < sizeof(i64_cases) / sizeof(i64_cases[0]); i++) {
		snprintf(key, sizeof(key), "i%zu", i);
		assert_int_equal(zt_cbor_put_i64(m, key, i64_cases[i]), 0);
	}
	for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
		snprintf(key, sizeof(key), "s%zu", i);
		assert_int_equal(zt_cbor_put_str(m, key, str_cases[i]), 0);
	}
	assert_int_equal(zt_cbor_put_bool(m, "t", true), 0);
	assert_int_equal(zt_cbor_put_bool(m, "f", false), 0);
	assert_int_equal(
		zt_cbor_put(m, "bytes", cbor_build_bytestring((const uint8_t *)"\0\1\2\xff", 4)),
		0);

	assert_int_equal(zt_msg_encode(m, &f, &n), 0);
	back = unframe(f, n);
	free(f);

	for (size_t i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
		uint64_t v = 1234;

		snprintf(key, sizeof(key), "u%zu", i);
		assert_int_equal(zt_cbor_get_u64(back, key, &v), 0);
		assert_true(v == u64_cases[i]);
	}
	for (size_t i = 0; i < sizeof(i64_cases) / sizeof(i64_cases[0]); i++) {
		cbor_item_t *v;
		int64_t got;

		snprintf(key, sizeof(key), "i%zu", i);
		v = zt_cbor_get(back, key);
		assert_non_null(v);
		assert_true(cbor_is_int(v));
		got = cbor_isa_uint(v) ? (int64_t)cbor_get_int(v) : -1 - (int64_t)cbor_get_int(v);
		assert_true(got == i64_cases[i]);
	}
	for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
		snprintf(key, sizeof(key), "s%zu", i);
		assert_int_equal(zt_cbor_get_str(back, key, buf, sizeof(buf)), 0);
		assert_string_equal(buf, str_cases[i]);
	}
	{
		bool b = false;
		cbor_item_t *bs = zt_cbor_get(back, "bytes");

		assert_int_equal(zt_cbor_get_bool(back, "t", &b), 0);
		assert_true(b);
		assert_int_equal(zt_cbor_get_bool(back, "f", &b), 0);
		assert_false(b);
		assert_non_null(bs);
		assert_true(cbor_isa_bytestring(bs));
		assert_int_equal(cbor_bytestring_length(bs), 4);
		assert_memory_equal(cbor_bytestring_handle(bs), "\0\1\2\xff", 4);
	}
	cbor_decref(&back);
	cbor_decref(&m);
}

static void test_roundtrip_nested(void **state)
{
	cbor_item_t *m = zt_cbor_map(), *arr = zt_cbor_array(), *inner = zt_cbor_map(), *back;
	char buf[32];
	uint8_t *f;
	size_t n;

	assert_int_equal(zt_cbor_put_str(m, "op", "block.import"), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "198.18.%d.%d", i / 256, i % 256);
		assert_int_equal(zt_cbor_push(arr, cbor_build_string(buf)), 0);
	}
	assert_int_equal(zt_cbor_put(m, "cidrs", arr), 0);
	assert_int_equal(zt_cbor_put_u64(inner, "x", 7), 0);
	assert_int_equal(zt_cbor_put(m, "inner", inner), 0);
	assert_int_equal(zt_cbor_put(m, "empty", zt_cbor_array()), 0);

	assert_int_equal(zt_msg_encode(m, &f, &n), 0);
	back = unframe(f, n);
	free(f);
	assert_int_equal(zt_cbor_get_str(back, "op", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "block.import");
	{
		cbor_item_t *a = zt_cbor_get(back, "cidrs"), *it;
		uint64_t x = 0;

		assert_non_null(a);
		assert_true(cbor_isa_array(a));
		assert_int_equal(cbor_array_size(a), 1000);
		it = cbor_array_get(a, 999);
		assert_int_equal(zt_cbor_str(it, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "198.18.3.231");
		cbor_decref(&it);
		assert_int_equal(zt_cbor_get_u64(zt_cbor_get(back, "inner"), "x", &x), 0);
		assert_int_equal(x, 7);
		assert_int_equal(cbor_array_size(zt_cbor_get(back, "empty")), 0);
	}
	cbor_decref(&back);
	cbor_decref(&m);
}

static void test_builders(void **state)
{
	cbor_item_t *m = zt_cbor_map(), *arr = zt_cbor_array(), *v;
	char buf[64];

	/* A value handed over after cbor_move() (refcount 0) is adopted, not freed. */
	assert_int_equal(zt_cbor_push(arr, cbor_move(cbor_build_string("moved"))), 0);
	assert_int_equal(zt_cbor_put(m, "moved", cbor_move(cbor_build_uint8(3))), 0);
	/* A failed build is -ENOMEM, not a crash. */
	assert_int_equal(zt_cbor_push(arr, NULL), -ENOMEM);
	assert_int_equal(zt_cbor_put(m, "x", NULL), -ENOMEM);
	assert_int_equal(zt_cbor_put(NULL, "x", NULL), -ENOMEM);
	/* On success the container holds the only reference. */
	v = cbor_build_string("held");
	assert_int_equal(zt_cbor_push(arr, v), 0);
	assert_int_equal(cbor_refcount(v), 1);
	assert_int_equal(zt_cbor_put(m, "list", arr), 0);
	assert_int_equal(cbor_refcount(arr), 1);
	/* Text that is not UTF-8 is repaired, so no peer refuses the message. */
	assert_int_equal(zt_cbor_put_str(m, "latin1", "caf\xe9!"), 0);
	assert_int_equal(zt_cbor_get_str(m, "latin1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "caf\xef\xbf\xbd!");
	assert_int_equal(zt_cbor_put_str(m, "null", NULL), 0);
	assert_int_equal(zt_cbor_get_str(m, "null", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	{
		uint8_t *f;
		size_t n;
		cbor_item_t *back;

		assert_int_equal(zt_msg_encode(m, &f, &n), 0);
		back = unframe(f, n);
		free(f);
		cbor_decref(&back);
	}
	cbor_decref(&m);
}

/* ---- getters ---- */

struct get_case {
	const char *what;
	const char *key;
	char type; /* 's' str, 'u' u64, 'b' bool */
	size_t bufsize;
	int want;
	const char *want_str;
	uint64_t want_u64;
};

static const struct get_case get_cases[] = {
	{ "text", "s", 's', 64, 0, "abc", 0 },
	{ "text, exact fit", "s", 's', 4, 0, "abc", 0 },
	{ "text, one byte short", "s", 's', 3, -E2BIG, NULL, 0 },
	{ "text, no room at all", "s", 's', 0, -E2BIG, NULL, 0 },
	{ "empty text", "empty", 's', 1, 0, "", 0 },
	{ "embedded NUL", "nul", 's', 64, -E2BIG, NULL, 0 },
	{ "absent text", "nope", 's', 64, -ENOENT, NULL, 0 },
	{ "uint as text", "n", 's', 64, -EINVAL, NULL, 0 },
	{ "bytes as text", "bytes", 's', 64, -EINVAL, NULL, 0 },
	{ "key is a prefix", "ss", 's', 64, 0, "longer key", 0 },
	{ "uint", "n", 'u', 0, 0, NULL, 5 },
	{ "big uint", "big", 'u', 0, 0, NULL, UINT64_MAX },
	{ "negative as uint", "neg", 'u', 0, -ERANGE, NULL, 0 },
	{ "text as uint", "s", 'u', 0, -EINVAL, NULL, 0 },
	{ "bool as uint", "t", 'u', 0, -EINVAL, NULL, 0 },
	{ "float as uint", "fl", 'u', 0, -EINVAL, NULL, 0 },
	{ "absent uint", "nope", 'u', 0, -ENOENT, NULL, 0 },
	{ "bool", "t", 'b', 0, 0, NULL, 1 },
	{ "uint as bool", "n", 'b', 0, -EINVAL, NULL, 0 },
	{ "null as bool", "null", 'b', 0, -EINVAL, NULL, 0 },
	{ "float as bool", "fl", 'b', 0, -EINVAL, NULL, 0 },
	{ "half float as bool", "half", 'b', 0, -EINVAL, NULL, 0 },
	{ "absent bool", "nope", 'b', 0, -ENOENT, NULL, 0 },
	{ "non-text key never matches", "7", 'u', 0, -ENOENT, NULL, 0 },
};

static void test_getters(void **state)
{
	cbor_item_t *m = zt_cbor_map();

	assert_int_equal(zt_cbor_put_str(m, "s", "abc"), 0);
	assert_int_equal(zt_cbor_put_str(m, "empty", ""), 0);
	assert_int_equal(zt_cbor_put(m, "nul", cbor_build_stringn("a\0b", 3)), 0);
	assert_int_equal(zt_cbor_put(m, "bytes", cbor_build_bytestring((const uint8_t *)"ab", 2)),
			 0);
	assert_int_equal(zt_cbor_put_str(m, "ss", "longer key"), 0);
	assert_int_equal(zt_cbor_put_u64(m, "n", 5), 0);
	assert_int_equal(zt_cbor_put_u64(m, "big", UINT64_MAX), 0);
	assert_int_equal(zt_cbor_put_i64(m, "neg", -3), 0);
	assert_int_equal(zt_cbor_put_bool(m, "t", true), 0);
	assert_int_equal(zt_cbor_put(m, "fl", cbor_build_float8(2.0)), 0);
	assert_int_equal(zt_cbor_put(m, "null", cbor_new_null()), 0);
	assert_int_equal(zt_cbor_put(m, "half", cbor_build_float2(1.0f)), 0);
	{
		cbor_item_t *k = cbor_build_uint8(7), *v = cbor_build_uint8(1);

		assert_true(cbor_map_add(m, (struct cbor_pair){ .key = k, .value = v }));
		cbor_decref(&k);
		cbor_decref(&v);
	}

	for (size_t i = 0; i < sizeof(get_cases) / sizeof(get_cases[0]); i++) {
		const struct get_case *c = &get_cases[i];
		char buf[64];
		uint64_t u = 0xdead;
		bool b = false;
		int r;

		memset(buf, 'x', sizeof(buf));
		switch (c->type) {
		case 's':
			r = zt_cbor_get_str(m, c->key, buf, c->bufsize);
			break;
		case 'u':
			r = zt_cbor_get_u64(m, c->key, &u);
			break;
		default:
			r = zt_cbor_get_bool(m, c->key, &b);
			break;
		}
		if (r != c->want)
			fail_msg("%s: got %d, want %d", c->what, r, c->want);
		if (r == 0 && c->type == 's' && strcmp(buf, c->want_str) != 0)
			fail_msg("%s: got '%s', want '%s'", c->what, buf, c->want_str);
		if (r == 0 && c->type == 'u' && u != c->want_u64)
			fail_msg("%s: got %llu", c->what, (unsigned long long)u);
		if (r == 0 && c->type == 'b' && b != (bool)c->want_u64)
			fail_msg("%s: got %d", c->what, b);
		/* Output untouched on failure. */
		if (r != 0 && c->type == 'u' && u != 0xdead)
			fail_msg("%s: output written on failure", c->what);
	}
	/* Not a map, or no map at all. */
	{
		cbor_item_t *a = zt_cbor_array();
		char buf[8];

		assert_null(zt_cbor_get(a, "s"));
		assert_null(zt_cbor_get(NULL, "s"));
		assert_int_equal(zt_cbor_get_str(a, "s", buf, sizeof(buf)), -ENOENT);
		assert_int_equal(zt_cbor_str(a, buf, sizeof(buf)), -EINVAL);
		assert_int_equal(zt_cbor_str(NULL, buf, sizeof(buf)), -EINVAL);
		cbor_decref(&a);
	}
	cbor_decref(&m);
}

/* ---- malformed input ---- */

/* {"op": "status", "n": [1, {"a": h'00'}]} */
static const uint8_t valid_msg[] = {
	0xa2, 0x62, 'o', 'p',  0x66, 's',  't',	 'a', 't',  'u',
	's',  0x61, 'n', 0x82, 0x01, 0xa1, 0x61, 'a', 0x41, 0x00,
};

static void test_truncated_everywhere(void **state)
{
	cbor_item_t *it = decode_ok(valid_msg, sizeof(valid_msg));

	cbor_decref(&it);
	for (size_t k = 0; k < sizeof(valid_msg); k++) {
		char err[256] = "";
		cbor_item_t *out = NULL;
		int r = zt_msg_decode(valid_msg, k, &out, err, sizeof(err));

		if (r >= 0)
			fail_msg("truncated at %zu: accepted", k);
		assert_int_equal(r, -EPROTO);
		assert_null(out);
		assert_true(strlen(err) > 0);
	}
}

struct bad_case {
	const char *what;
	const uint8_t *bytes;
	size_t len;
	int want;
	const char *msg; /* a substring of the error */
};

#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static const struct bad_case bad_cases[] = {
	{ "trailing byte", B(0xa1, 0x61, 'a', 0x01, 0x00), -EPROTO, "1 trailing bytes" },
	{ "two items", B(0xa0, 0xa0), -EPROTO, "trailing" },
	{ "top level uint", B(0x01), -EPROTO, "expected a map" },
	{ "top level array", B(0x80), -EPROTO, "expected a map" },
	{ "top level text", B(0x61, 'a'), -EPROTO, "expected a map" },
	{ "empty", B(0x00), -EPROTO, "expected a map" },
	{ "break in a definite map", B(0xa2, 0x61, 'a', 0x01, 0xff, 0x00), -EPROTO,
	  "unexpected break (0xff) at byte 4" },
	{ "break at top level", B(0xa0, 0xff), -EPROTO, "trailing" },
	{ "indefinite map without break", B(0xbf, 0x61, 'a', 0x01), -EPROTO, "truncated" },
	{ "indefinite map, key without value", B(0xbf, 0x61, 'a', 0xff), -EPROTO,
	  "key without a value" },
	{ "indefinite array without break", B(0xa1, 0x61, 'a', 0x9f, 0x01, 0x02), -EPROTO,
	  "truncated" },
	{ "indefinite uint", B(0xa1, 0x61, 'a', 0x1f), -EPROTO, "invalid" },
	{ "indefinite tag", B(0xa1, 0x61, 'a', 0xdf, 0x01), -EPROTO, "invalid" },
	{ "reserved additional info", B(0xa1, 0x61, 'a', 0x1c), -EPROTO, "invalid" },
	{ "chunk of the wrong type", B(0xa1, 0x61, 'a', 0x7f, 0x41, 'b', 0xff), -EPROTO, "chunk" },
	{ "nested chunked string", B(0xa1, 0x61, 'a', 0x7f, 0x7f, 0xff, 0xff), -EPROTO, "chunk" },
	{ "uint header cut short", B(0xa1, 0x61, 'a', 0x1b, 0x00, 0x00), -EPROTO, "truncated" },
	{ "2^60-byte text with 3 bytes",
	  B(0xa1, 0x61, 'a', 0x7b, 0x10, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'), -EPROTO,
	  "declares 1152921504606846976 bytes, 3 remain" },
	{ "2^60-byte bytes with 3 bytes",
	  B(0xa1, 0x61, 'a', 0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'), -EPROTO, "declares" },
	{ "2^64-1 items with 2 bytes",
	  B(0xa1, 0x61, 'a', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02),
	  -EPROTO, "declares" },
	{ "2^63 pairs", B(0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02), -EPROTO, "declares" },
	{ "2^32 items with 1 byte", B(0xa1, 0x61, 'a', 0x9a, 0xff, 0xff, 0xff, 0xff, 0x00), -EPROTO,
	  "declares" },
	{ "key text cut short", B(0xa1, 0x65, 'a', 'b'), -EPROTO, "declares 5 bytes" },
	{ "invalid UTF-8 (lone continuation)", B(0xa1, 0x61, 'a', 0x62, 0x80, 'x'), -EPROTO,
	  "UTF-8" },
	{ "invalid UTF-8 (cut sequence)", B(0xa1, 0x61, 'a', 0x62, 0xc3, 0x28), -EPROTO, "UTF-8" },
	{ "invalid UTF-8 (overlong NUL)", B(0xa1, 0x61, 'a', 0x62, 0xc0, 0x80), -EPROTO, "UTF-8" },
	{ "invalid UTF-8 (surrogate)", B(0xa1, 0x61, 'a', 0x63, 0xed, 0xa0, 0x80), -EPROTO,
	  "UTF-8" },
	{ "invalid UTF-8 (above U+10FFFF)", B(0xa1, 0x61, 'a', 0x64, 0xf4, 0x90, 0x80, 0x80),
	  -EPROTO, "UTF-8" },
	{ "invalid UTF-8 in a key", B(0xa1, 0x61, 0xff, 0x01), -EPROTO, "UTF-8" },
	{ "invalid UTF-8 in a chunk", B(0xa1, 0x61, 'a', 0x7f, 0x61, 0xfe, 0xff), -EPROTO,
	  "UTF-8" },
	{ "simple value in two bytes", B(0xa1, 0x61, 'a', 0xf8, 0x20), -EPROTO,
	  "unsupported simple value" },
	{ "simple value 0", B(0xa1, 0x61, 'a', 0xe0), -EPROTO, "unsupported simple value" },
};

static void test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char err[256] = "";
		cbor_item_t *out = NULL;
		size_t big;
		int r;

		track_start();
		r = zt_msg_decode(c->bytes, c->len, &out, err, sizeof(err));
		big = track_stop();
		if (r != c->want)
			fail_msg("%s: got %d (%s), want %d", c->what, r, err, c->want);
		if (!strstr(err, c->msg))
			fail_msg("%s: error '%s' does not say '%s'", c->what, err, c->msg);
		assert_null(out);
		/* Declared sizes are never allocated. */
		if (hooks_ok && big > 4096)
			fail_msg("%s: allocated %zu bytes", c->what, big);
	}
	/* The offset of the problem is in the message. */
	{
		char err[256];
		cbor_item_t *out = NULL;

		assert_int_equal(
			zt_msg_decode(B(0xa1, 0x61, 'a', 0x62, 'o', 0xc3), &out, err, sizeof(err)),
			-EPROTO);
		assert_non_null(strstr(err, "at byte 3"));
		assert_non_null(strstr(err, "(byte 5)"));
	}
	/* A NULL or empty err buffer is fine. */
	{
		cbor_item_t *out = NULL;

		assert_int_equal(zt_msg_decode(B(0x01), &out, NULL, 0), -EPROTO);
	}
}

static void test_valid_edge_cases(void **state)
{
	const struct {
		const char *what;
		const uint8_t *bytes;
		size_t len;
	} ok[] = {
		{ "empty map", B(0xa0) },
		{ "indefinite map and array", B(0xbf, 0x61, 'a', 0x9f, 0x01, 0x02, 0xff, 0xff) },
		{ "chunked text", B(0xbf, 0x61, 'a', 0x7f, 0x61, 'b', 0x62, 'c', 'd', 0xff, 0xff) },
		{ "chunked bytes, no chunks", B(0xa1, 0x61, 'a', 0x5f, 0xff) },
		{ "tagged value", B(0xa1, 0x61, 'a', 0xc1, 0x1a, 0x65, 0x00, 0x00, 0x00) },
		{ "half, single, double floats",
		  B(0xa3, 0x61, 'h', 0xf9, 0x3c, 0x00, 0x61, 's', 0xfa, 0x3f, 0xc0, 0x00, 0x00,
		    0x61, 'd', 0xfb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18) },
		{ "null and undefined", B(0xa2, 0x61, 'n', 0xf6, 0x61, 'u', 0xf7) },
		{ "uint key", B(0xa1, 0x01, 0x02) },
		{ "4-byte UTF-8", B(0xa1, 0x61, 'a', 0x64, 0xf0, 0x9f, 0x94, 0x92) },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char err[256] = "";
		cbor_item_t *out = NULL;
		int r = zt_msg_decode(ok[i].bytes, ok[i].len, &out, err, sizeof(err));

		if (r != 0)
			fail_msg("%s: refused (%d): %s", ok[i].what, r, err);
		cbor_decref(&out);
	}
}

/* A map whose value "a" is `levels` nested arrays around a 0: depth levels + 1. */
static uint8_t *nested(int levels, size_t *len)
{
	uint8_t *b = malloc((size_t)levels + 4);
	size_t n = 0;

	b[n++] = 0xa1;
	b[n++] = 0x61;
	b[n++] = 'a';
	for (int i = 0; i < levels; i++)
		b[n++] = 0x81;
	b[n++] = 0x00;
	*len = n;
	return b;
}

static void test_depth(void **state)
{
	static const struct {
		int levels;
		int want;
	} cases[] = { { 0, 0 },	       { 30, 0 },	  { 31, 0 },
		      { 32, -EPROTO }, { 1000, -EPROTO }, { 100000, -EPROTO } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		cbor_item_t *out = NULL;
		size_t len;
		uint8_t *b = nested(cases[i].levels, &len);
		int r = zt_msg_decode(b, len, &out, err, sizeof(err));

		free(b);
		if (r != cases[i].want)
			fail_msg("%d levels (depth %d): got %d (%s)", cases[i].levels,
				 cases[i].levels + 1, r, err);
		if (r == 0)
			cbor_decref(&out);
		else
			assert_non_null(strstr(err, "nesting deeper than 32"));
	}
	/* Tags and chunked strings count as levels too. */
	{
		uint8_t b[64];
		size_t n = 0;
		char err[256];
		cbor_item_t *out = NULL;

		b[n++] = 0xa1;
		b[n++] = 0x61;
		b[n++] = 'a';
		for (int i = 0; i < 32; i++)
			b[n++] = 0xc1;
		b[n++] = 0x00;
		assert_int_equal(zt_msg_decode(b, n, &out, err, sizeof(err)), -EPROTO);
		assert_non_null(strstr(err, "nesting"));
	}
}

static void test_encode_too_big(void **state)
{
	size_t n = ZT_API_MAX_MSG;
	uint8_t *big = calloc(1, n), *f = NULL;
	cbor_item_t *m = zt_cbor_map();
	size_t flen = 0;

	assert_int_equal(zt_cbor_put(m, "b", cbor_build_bytestring(big, n)), 0);
	free(big);
	assert_int_equal(zt_msg_encode(m, &f, &flen), -EMSGSIZE);
	assert_null(f);
	cbor_decref(&m);
}

/* ---- frames over a socketpair ---- */

struct writer {
	int fd;
	const uint8_t *buf;
	size_t len;
	bool close_after;
};

static void *write_thread(void *arg)
{
	struct writer *w = arg;
	size_t off = 0;

	while (off < w->len) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (w->close_after)
		shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* {"a": [_ 0, 0, ... ]}: one byte per item. */
static uint8_t *many_items(size_t items, size_t *len)
{
	uint8_t *b = malloc(items + 5);

	assert_non_null(b);
	b[0] = 0xa1;
	b[1] = 0x61;
	b[2] = 'a';
	b[3] = 0x9f;
	memset(b + 4, 0, items);
	b[items + 4] = 0xff;
	*len = items + 5;
	return b;
}

/*
 * Requests (zt_msg_decode, the daemon's side) hold at most 2M items: the
 * biggest is a block.import of 1M cidrs. Replies (zt_msg_recv, the client's
 * side) up to 16M: a block.list reply just under 64 MiB has ~12M.
 */
static void test_item_limit(void **state)
{
	static const struct {
		const char *what;
		bool recv; /* through zt_msg_recv over a socketpair, else zt_msg_decode */
		size_t items; /* in the array; the map, its key and the array are 3 more */
		int want;
	} cases[] = {
		{ "request of 1M cidrs and a few fields", false, (1u << 20) + 16, 0 },
		{ "request at the limit", false, (2u << 20) - 3, 0 },
		{ "request one item over", false, (2u << 20) - 2, -E2BIG },
		{ "reply over the request limit", true, 3u << 20, 0 },
		{ "reply one item over", true, (16u << 20) - 2, -E2BIG },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		cbor_item_t *out = NULL;
		size_t len;
		uint8_t *b = many_items(cases[i].items, &len);
		int r;

		if (cases[i].recv) {
			uint8_t *f = malloc(len + ZT_API_HDR_LEN);
			struct writer w;
			pthread_t t;
			int sv[2];

			assert_non_null(f);
			f[0] = (uint8_t)(len >> 24);
			f[1] = (uint8_t)(len >> 16);
			f[2] = (uint8_t)(len >> 8);
			f[3] = (uint8_t)len;
			memcpy(f + ZT_API_HDR_LEN, b, len);
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			w = (struct writer){ .fd = sv[0], .buf = f, .len = len + ZT_API_HDR_LEN };
			assert_int_equal(pthread_create(&t, NULL, write_thread, &w), 0);
			r = zt_msg_recv(sv[1], &out, err, sizeof(err));
			/* The writer may still block on a refused frame: unblock it. */
			shutdown(sv[1], SHUT_RDWR);
			pthread_join(t, NULL);
			close(sv[0]);
			close(sv[1]);
			free(f);
		} else {
			r = zt_msg_decode(b, len, &out, err, sizeof(err));
		}
		free(b);
		if (r != cases[i].want)
			fail_msg("%s: got %d (%s), want %d", cases[i].what, r, err, cases[i].want);
		if (r == 0) {
			assert_int_equal(cbor_array_size(zt_cbor_get(out, "a")), cases[i].items);
			cbor_decref(&out);
		} else {
			assert_null(out);
			assert_non_null(strstr(err, "items"));
		}
	}
}

static void test_send_recv(void **state)
{
	int sv[2];
	cbor_item_t *m = zt_cbor_map(), *back = NULL;
	char err[256], buf[64];

	pair(sv);
	assert_int_equal(zt_cbor_put_str(m, "op", "status"), 0);
	assert_int_equal(zt_msg_send(sv[0], m), 0);
	assert_int_equal(zt_msg_send(sv[0], m), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(zt_msg_recv(sv[1], &back, err, sizeof(err)), 0);
		assert_int_equal(zt_cbor_get_str(back, "op", buf, sizeof(buf)), 0);
		assert_string_equal(buf, "status");
		cbor_decref(&back);
	}
	/* The peer is gone: -ECONNRESET at a frame boundary. */
	close(sv[0]);
	assert_int_equal(zt_msg_recv(sv[1], &back, err, sizeof(err)), -ECONNRESET);
	assert_non_null(strstr(err, "closed"));
	close(sv[1]);
	/* Sending to a closed peer is -EPIPE, not SIGPIPE. */
	pair(sv);
	close(sv[1]);
	assert_int_equal(zt_msg_send(sv[0], m), -EPIPE);
	close(sv[0]);
	cbor_decref(&m);
}

static void test_send_recv_large(void **state)
{
	/* 4 MiB: far more than the socket buffer, so both sides loop on short I/O. */
	size_t n = 4u << 20;
	uint8_t *blob = malloc(n), *f;
	cbor_item_t *m = zt_cbor_map(), *back = NULL;
	struct writer w;
	pthread_t t;
	size_t flen;
	char err[256];
	int sv[2];

	for (size_t i = 0; i < n; i++)
		blob[i] = (uint8_t)(i * 7);
	assert_int_equal(zt_cbor_put(m, "blob", cbor_build_bytestring(blob, n)), 0);
	assert_int_equal(zt_msg_encode(m, &f, &flen), 0);
	pair(sv);
	w = (struct writer){ .fd = sv[0], .buf = f, .len = flen };
	assert_int_equal(pthread_create(&t, NULL, write_thread, &w), 0);
	assert_int_equal(zt_msg_recv(sv[1], &back, err, sizeof(err)), 0);
	pthread_join(t, NULL);
	{
		cbor_item_t *b = zt_cbor_get(back, "blob");

		assert_non_null(b);
		assert_int_equal(cbor_bytestring_length(b), n);
		assert_memory_equal(cbor_bytestring_handle(b), blob, n);
	}
	cbor_decref(&back);
	cbor_decref(&m);
	free(f);
	free(blob);
	close(sv[0]);
	close(sv[1]);
}

struct frame_case {
	const char *what;
	const uint8_t *bytes;
	size_t len;
	int want;
	const char *msg;
	size_t max_alloc; /* largest allocation allowed while receiving */
};

static const struct frame_case frame_cases[] = {
	{ "header over the limit", B(0x04, 0x00, 0x00, 0x01, 0xa0), -EMSGSIZE, "refused", 1024 },
	{ "header at 4 GiB", B(0xff, 0xff, 0xff, 0xff), -EMSGSIZE, "refused", 1024 },
	{ "header at the limit, 3 bytes, EOF", B(0x04, 0x00, 0x00, 0x00, 0xa1, 0x61, 'a'), -EPROTO,
	  "after 3 of 67108864 frame bytes", 128u << 10 },
	{ "EOF inside the header", B(0x00, 0x00), -EPROTO, "after 2 of 4 header bytes", 1024 },
	{ "EOF inside the payload", B(0x00, 0x00, 0x00, 0x10, 0xa1, 0x61), -EPROTO,
	  "after 2 of 16 frame bytes", 128u << 10 },
	{ "empty frame", B(0x00, 0x00, 0x00, 0x00), -EPROTO, "empty frame", 1024 },
	{ "garbage payload", B(0x00, 0x00, 0x00, 0x03, 0xa1, 0xff, 0xff), -EPROTO,
	  "unexpected break", 128u << 10 },
	{ "nothing at all", B(0x00), -EPROTO, "after 1 of 4", 1024 },
};

static void test_recv_bad_frames(void **state)
{
	for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
		const struct frame_case *c = &frame_cases[i];
		cbor_item_t *out = NULL;
		char err[256] = "";
		size_t big;
		int sv[2], r;

		pair(sv);
		assert_int_equal(write(sv[0], c->bytes, c->len), (ssize_t)c->len);
		shutdown(sv[0], SHUT_WR);
		track_start();
		r = zt_msg_recv(sv[1], &out, err, sizeof(err));
		big = track_stop();
		if (r != c->want)
			fail_msg("%s: got %d (%s), want %d", c->what, r, err, c->want);
		if (!strstr(err, c->msg))
			fail_msg("%s: error '%s' does not say '%s'", c->what, err, c->msg);
		if (hooks_ok && big > c->max_alloc)
			fail_msg("%s: allocated %zu bytes", c->what, big);
		assert_null(out);
		close(sv[0]);
		close(sv[1]);
	}
}

static void test_recv_timeout(void **state)
{
	struct timeval tv = { .tv_usec = 50000 };
	cbor_item_t *out = NULL;
	char err[256];
	int sv[2];

	pair(sv);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(zt_msg_recv(sv[1], &out, err, sizeof(err)), -ETIMEDOUT);
	assert_non_null(strstr(err, "timed out"));
	close(sv[0]);
	close(sv[1]);
}

/* ---- JSON ---- */

struct json_case {
	const char *what;
	const uint8_t *cbor; /* one item, any type (loaded with cbor_load directly) */
	size_t len;
	const char *want;
};

static const struct json_case json_cases[] = {
	{ "uint", B(0x18, 0x64), "100" },
	{ "max uint", B(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  "18446744073709551615" },
	{ "-1", B(0x20), "-1" },
	{ "min negint", B(0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  "-18446744073709551616" },
	{ "INT64_MIN", B(0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  "-9223372036854775808" },
	{ "true", B(0xf5), "true" },
	{ "false", B(0xf4), "false" },
	{ "null", B(0xf6), "null" },
	{ "undefined", B(0xf7), "null" },
	{ "half 1.0", B(0xf9, 0x3c, 0x00), "1.0" },
	{ "single 1.5", B(0xfa, 0x3f, 0xc0, 0x00, 0x00), "1.5" },
	{ "double 0.1", B(0xfb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a), "0.1" },
	{ "double 1e300", B(0xfb, 0x7e, 0x37, 0xe4, 0x3c, 0x88, 0x00, 0x75, 0x9c), "1e+300" },
	{ "NaN", B(0xf9, 0x7e, 0x00), "null" },
	{ "infinity", B(0xf9, 0x7c, 0x00), "null" },
	{ "-infinity", B(0xf9, 0xfc, 0x00), "null" },
	{ "text", B(0x63, 'a', 'b', 'c'), "\"abc\"" },
	{ "quote and backslash", B(0x64, 'a', '"', '\\', 'b'), "\"a\\\"\\\\b\"" },
	{ "controls", B(0x67, '\n', '\r', '\t', '\b', '\f', 0x01, 0x1f),
	  "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"" },
	{ "DEL", B(0x61, 0x7f), "\"\\u007f\"" },
	{ "NUL", B(0x63, 'a', 0x00, 'b'), "\"a\\u0000b\"" },
	{ "slash stays", B(0x61, '/'), "\"/\"" },
	{ "UTF-8 passes", B(0x66, 'c', 'a', 'f', 0xc3, 0xa9, '!'), "\"caf\xc3\xa9!\"" },
	{ "4-byte UTF-8 passes", B(0x64, 0xf0, 0x9f, 0x94, 0x92), "\"\xf0\x9f\x94\x92\"" },
	{ "chunked text", B(0x7f, 0x61, 'a', 0x62, 'b', '"', 0xff), "\"ab\\\"\"" },
	{ "bytes, 3", B(0x43, 'f', 'o', 'o'), "\"Zm9v\"" },
	{ "bytes, 2", B(0x42, 'f', 'o'), "\"Zm8=\"" },
	{ "bytes, 1", B(0x41, 'f'), "\"Zg==\"" },
	{ "bytes, 0", B(0x40), "\"\"" },
	{ "bytes, binary", B(0x43, 0xff, 0xfe, 0x00), "\"//4A\"" },
	{ "chunked bytes", B(0x5f, 0x41, 'f', 0x42, 'o', 'o', 0x41, 'b', 0xff), "\"Zm9vYg==\"" },
	{ "tag ignored", B(0xc1, 0x1a, 0x65, 0x00, 0x00, 0x00), "1694498816" },
	{ "nested tags", B(0xd8, 0x20, 0xc0, 0x61, 'x'), "\"x\"" },
	{ "array", B(0x83, 0x01, 0x61, 'a', 0xf6), "[1,\"a\",null]" },
	{ "empty array", B(0x80), "[]" },
	{ "empty map", B(0xa0), "{}" },
	{ "map", B(0xa2, 0x61, 'a', 0x01, 0x61, 'b', 0x80), "{\"a\":1,\"b\":[]}" },
	{ "uint key", B(0xa1, 0x01, 0x02), "{\"1\":2}" },
	{ "text key with quote", B(0xa1, 0x61, '"', 0x02), "{\"\\\"\":2}" },
	{ "array key", B(0xa1, 0x82, 0x01, 0x61, 'a', 0x02), "{\"[1,\\\"a\\\"]\":2}" },
	{ "indefinite map", B(0xbf, 0x61, 'k', 0x9f, 0xf5, 0xff, 0xff), "{\"k\":[true]}" },
};

static void test_json(void **state)
{
	for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		const struct json_case *c = &json_cases[i];
		struct cbor_load_result res;
		cbor_item_t *it = cbor_load(c->cbor, c->len, &res);
		char *s;

		if (!it)
			fail_msg("%s: libcbor refused the test input", c->what);
		s = json_of(it, false);
		if (strcmp(s, c->want) != 0)
			fail_msg("%s: got %s, want %s", c->what, s, c->want);
		free(s);
		cbor_decref(&it);
	}
}

/* libcbor refuses such text on input, but an item built in memory may hold any bytes. */
static const struct {
	const char *what;
	const char *text;
	size_t len;
	const char *want;
} json_bad_text[] = {
	{ "Latin-1 byte", "caf\xe9!", 5, "\"caf\\ufffd!\"" },
	{ "cut sequence", "\xe2\x82", 2, "\"\\ufffd\\ufffd\"" },
	{ "cut sequence, then ASCII", "\xe2\x82z", 3, "\"\\ufffd\\ufffdz\"" },
	{ "overlong", "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },
	{ "surrogate", "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
	{ "0xff", "a\xff", 2, "\"a\\ufffd\"" },
};

static void test_json_bad_text(void **state)
{
	for (size_t i = 0; i < sizeof(json_bad_text) / sizeof(json_bad_text[0]); i++) {
		cbor_item_t *it = cbor_build_stringn(json_bad_text[i].text, json_bad_text[i].len);
		char *s = json_of(it, false);

		if (strcmp(s, json_bad_text[i].want) != 0)
			fail_msg("%s: got %s, want %s", json_bad_text[i].what, s,
				 json_bad_text[i].want);
		free(s);
		cbor_decref(&it);
	}
}

static void test_json_pretty(void **state)
{
	cbor_item_t *m = zt_cbor_map(), *a = zt_cbor_array();
	char *s;

	assert_int_equal(zt_cbor_put_str(m, "node", "n1"), 0);
	assert_int_equal(zt_cbor_push(a, cbor_build_uint8(1)), 0);
	assert_int_equal(zt_cbor_push(a, zt_cbor_map()), 0);
	assert_int_equal(zt_cbor_put(m, "list", a), 0);
	s = json_of(m, true);
	assert_string_equal(s, "{\n  \"node\": \"n1\",\n  \"list\": [\n    1,\n    {}\n  ]\n}");
	free(s);
	s = json_of(m, false);
	assert_string_equal(s, "{\"node\":\"n1\",\"list\":[1,{}]}");
	free(s);
	assert_int_equal(zt_cbor_to_json(NULL, stdout, false), -EINVAL);
	cbor_decref(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_scalars),
		cmocka_unit_test(test_roundtrip_nested),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_valid_edge_cases),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_item_limit),
		cmocka_unit_test(test_encode_too_big),
		cmocka_unit_test(test_send_recv),
		cmocka_unit_test(test_send_recv_large),
		cmocka_unit_test(test_recv_bad_frames),
		cmocka_unit_test(test_recv_timeout),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_bad_text),
		cmocka_unit_test(test_json_pretty),
	};

	return cmocka_run_group_tests_name("apimsg", tests, setup_hooks, NULL);
}
