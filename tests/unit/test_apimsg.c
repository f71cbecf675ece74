// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: CBOR framing, decoding of hostile input, getters, JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "apimsg.h"
#include "util.h"

static cbor_item_t *sample(void)
{
	cbor_item_t *m = zt_cbor_map(), *a = zt_cbor_array();

	assert_int_equal(zt_cbor_put_str(m, "op", "block.add"), 0);
	assert_int_equal(zt_cbor_put_str(m, "cidr", "198.18.0.0/24"), 0);
	assert_int_equal(zt_cbor_put_u64(m, "ttl_s", 600), 0);
	assert_int_equal(zt_cbor_put_i64(m, "neg", -42), 0);
	assert_int_equal(zt_cbor_put_bool(m, "yes", true), 0);
	assert_int_equal(zt_cbor_push(a, cbor_build_string("x")), 0);
	assert_int_equal(zt_cbor_push(a, cbor_build_uint8(7)), 0);
	assert_int_equal(zt_cbor_put(m, "list", a), 0);
	assert_int_equal(
		zt_cbor_put(m, "bytes",
			    cbor_build_bytestring((const unsigned char *)"\x01\x02\x03\x04", 4)),
		0);
	return m;
}

static void encode(cbor_item_t *it, uint8_t **payload, size_t *len)
{
	uint8_t *f;
	size_t n;

	assert_int_equal(zt_msg_encode(it, &f, &n), 0);
	assert_true(n > ZT_API_HDR_LEN);
	assert_int_equal(((size_t)f[0] << 24 | f[1] << 16 | f[2] << 8 | f[3]), n - ZT_API_HDR_LEN);
	*payload = malloc(n - ZT_API_HDR_LEN);
	memcpy(*payload, f + ZT_API_HDR_LEN, n - ZT_API_HDR_LEN);
	*len = n - ZT_API_HDR_LEN;
	free(f);
}

static void test_round_trip_and_getters(void **state)
{
	cbor_item_t *m = sample(), *d;
	uint8_t *p;
	size_t n;
	char err[256], s[32];
	uint64_t u;
	bool b;

	encode(m, &p, &n);
	cbor_decref(&m);
	assert_int_equal(zt_msg_decode(p, n, &d, err, sizeof(err)), 0);
	free(p);
	assert_int_equal(zt_cbor_get_str(d, "cidr", s, sizeof(s)), 0);
	assert_string_equal(s, "198.18.0.0/24");
	assert_int_equal(zt_cbor_get_u64(d, "ttl_s", &u), 0);
	assert_int_equal(u, 600);
	assert_int_equal(zt_cbor_get_bool(d, "yes", &b), 0);
	assert_true(b);
	/* absent, wrong type, too long */
	assert_int_equal(zt_cbor_get_str(d, "nope", s, sizeof(s)), -ENOENT);
	assert_int_equal(zt_cbor_get_u64(d, "cidr", &u), -EINVAL);
	assert_int_equal(zt_cbor_get_u64(d, "neg", &u), -EINVAL);
	assert_int_equal(zt_cbor_get_bool(d, "ttl_s", &b), -EINVAL);
	assert_int_equal(zt_cbor_get_str(d, "ttl_s", s, sizeof(s)), -EINVAL);
	assert_int_equal(zt_cbor_get_str(d, "cidr", s, 5), -E2BIG);
	assert_null(zt_cbor_get(NULL, "x"));
	cbor_decref(&d);

	/* Embedded NUL in a text is refused by the string getter. */
	m = zt_cbor_map();
	assert_int_equal(zt_cbor_put(m, "t", cbor_build_stringn("a\0b", 3)), 0);
	assert_int_equal(zt_cbor_get_str(m, "t", s, sizeof(s)), -E2BIG);
	cbor_decref(&m);
}

static void test_truncated_everywhere(void **state)
{
	cbor_item_t *m = sample(), *d;
	uint8_t *p;
	size_t n;
	char err[256];

	encode(m, &p, &n);
	cbor_decref(&m);
	for (size_t cut = 0; cut < n; cut++) {
		d = NULL;
		if (zt_msg_decode(p, cut, &d, err, sizeof(err)) == 0)
			fail_msg("a message cut at byte %zu of %zu decoded", cut, n);
		assert_null(d);
		assert_true(err[0] != '\0');
	}
	free(p);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *name;
		const uint8_t *b;
		size_t n;
		const char *want;
	} t[] = {
		{ "trailing", (const uint8_t *)"\xa0\x00", 2, "trailing" },
		{ "huge string",
		  (const uint8_t *)"\x7b\x10\x00\x00\x00\x00\x00\x00\x00"
				   "abc",
		  12, "declares" },
		{ "huge array", (const uint8_t *)"\x9b\x10\x00\x00\x00\x00\x00\x00\x00\x01", 10,
		  "declares" },
		{ "huge map", (const uint8_t *)"\xba\xff\xff\xff\xff\x01", 6, "declares" },
		{ "bad utf8", (const uint8_t *)"\xa1\x62op\x62\xc3\x28", 7, "UTF-8" },
		{ "overlong utf8", (const uint8_t *)"\x62\xc0\xaf", 3, "UTF-8" },
		{ "lone break", (const uint8_t *)"\xff", 1, "break" },
		{ "reserved info", (const uint8_t *)"\x1c", 1, "unsupported" },
		{ "indefinite text", (const uint8_t *)"\x7f\x61\x61\xff", 4, "unsupported" },
		{ "empty", (const uint8_t *)"", 0, "empty" },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		cbor_item_t *d = NULL;
		char err[256] = "";

		if (zt_msg_decode(t[i].b, t[i].n, &d, err, sizeof(err)) == 0)
			fail_msg("%s decoded", t[i].name);
		if (!strstr(err, t[i].want))
			fail_msg("%s: '%s' lacks '%s'", t[i].name, err, t[i].want);
	}
}

static void test_depth(void **state)
{
	uint8_t b[64];
	cbor_item_t *d;
	char err[256];

	/* 32 nested arrays around an int: fine; 33: refused. */
	memset(b, 0x81, 32);
	b[32] = 0x01;
	assert_int_equal(zt_msg_decode(b, 33, &d, err, sizeof(err)), 0);
	cbor_decref(&d);
	memset(b, 0x81, 33);
	b[33] = 0x01;
	assert_int_equal(zt_msg_decode(b, 34, &d, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "nesting deeper than 32"));
	/* Indefinite containers count too. */
	memset(b, 0x9f, 33);
	assert_int_equal(zt_msg_decode(b, 33, &d, err, sizeof(err)), -EPROTO);
	/* An indefinite map properly closed decodes. */
	assert_int_equal(
		zt_msg_decode((const uint8_t *)"\xbf\x61\x61\x01\xff", 5, &d, err, sizeof(err)), 0);
	cbor_decref(&d);
}

static void test_frames(void **state)
{
	int sv[2];
	cbor_item_t *m = sample(), *d = NULL;
	char err[256];
	uint8_t hdr[4] = { 0x10, 0, 0, 0 }; /* 256 MiB announced */

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(zt_msg_send(sv[0], m), 0);
	assert_int_equal(zt_msg_recv(sv[1], &d, err, sizeof(err)), 0);
	assert_non_null(zt_cbor_get(d, "list"));
	cbor_decref(&d);
	cbor_decref(&m);

	/* Over the limit: refused from the header, nothing allocated. */
	assert_int_equal(write(sv[0], hdr, 4), 4);
	assert_int_equal(zt_msg_recv(sv[1], &d, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "refused"));

	/* EOF inside a frame. */
	hdr[0] = 0;
	hdr[3] = 10;
	assert_int_equal(write(sv[0], hdr, 4), 4);
	assert_int_equal(write(sv[0], "\xa1\x61", 2), 2);
	close(sv[0]);
	assert_int_equal(zt_msg_recv(sv[1], &d, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "inside a frame"));
	close(sv[1]);

	/* EOF before any byte. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(zt_msg_recv(sv[1], &d, err, sizeof(err)), -EPIPE);
	close(sv[1]);
}

static void json_of(cbor_item_t *it, char *out, size_t n)
{
	FILE *f = fmemopen(out, n, "w");

	assert_non_null(f);
	zt_cbor_to_json(it, f, false);
	fclose(f);
}

static void test_json(void **state)
{
	char out[512];
	cbor_item_t *m = zt_cbor_map();

	assert_int_equal(zt_cbor_put_str(m, "q", "a\"b\\c\n\x01"), 0);
	assert_int_equal(zt_cbor_put(m, "bad", cbor_build_stringn("x\xff", 2)), 0);
	assert_int_equal(zt_cbor_put(m, "utf8", cbor_build_string("caf\xc3\xa9")), 0);
	assert_int_equal(zt_cbor_put_i64(m, "n", -5), 0);
	assert_int_equal(
		zt_cbor_put(m, "b", cbor_build_bytestring((const unsigned char *)"hi!", 3)), 0);
	assert_int_equal(zt_cbor_put_bool(m, "t", false), 0);
	assert_int_equal(zt_cbor_put(m, "z", cbor_new_null()), 0);
	json_of(m, out, sizeof(out));
	assert_string_equal(
		out,
		"{\"q\":\"a\\\"b\\\\c\\n\\u0001\",\"bad\":\"x\\ufffd\",\"utf8\":\"caf\xc3\xa9\","
		"\"n\":-5,\"b\":\"aGkh\",\"t\":false,\"z\":null}\n");
	cbor_decref(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_getters),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
