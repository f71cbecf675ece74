// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: UUIDv7 ids and the text fields of flow records. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "records/flowrec.h"

/* RFC 9562 appendix A.6: 017F22E2-79B0-7CC3-98C4-DC0C0C07398F. */
static void test_v7_vector(void **state)
{
	static const uint8_t rnd[10] = {
		0x0c, 0xc3, 0x18, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f
	};
	uint8_t id[16];
	char s[37];

	zt_uuidv7_from(id, 0x017F22E279B0ULL, rnd);
	zt_uuid_format(id, s, sizeof(s));
	assert_string_equal(s, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
	assert_int_equal(zt_uuidv7_ms(id), 0x017F22E279B0ULL);
}

static void test_v7_bits_and_time(void **state)
{
	struct timespec ts;
	uint8_t id[16];
	uint64_t now_ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < 1000; i++) {
		zt_uuidv7(id);
		assert_int_equal(id[6] >> 4, 7); /* version */
		assert_int_equal(id[8] >> 6, 2); /* variant 10 */
	}
	assert_true(zt_uuidv7_ms(id) >= now_ms && zt_uuidv7_ms(id) < now_ms + 5000);
}

/* 200000 ids in a row (many per millisecond) are strictly increasing. */
static void test_v7_monotonic(void **state)
{
	uint8_t prev[16], id[16];

	zt_uuidv7(prev);
	for (int i = 0; i < 200000; i++) {
		zt_uuidv7(id);
		assert_true(memcmp(prev, id, 16) < 0);
		memcpy(prev, id, 16);
	}
}

static void test_init(void **state)
{
	struct zt_flow_record a, b;

	zt_flowrec_init(&a);
	zt_flowrec_init(&b);
	assert_int_equal(a.aggregate_count, 1);
	assert_true(memcmp(a.id, b.id, 16) < 0);
	assert_string_equal(zt_flow_kind_name(ZT_FLOW_KIND_FLOW), "flow");
	assert_string_equal(zt_flow_kind_name(ZT_FLOW_KIND_XDP_DROP_AGG), "xdp_drop_aggregate");
}

static void test_set_text(void **state)
{
	char f[8];

	assert_int_equal(zt_flowrec_set_text(f, sizeof(f), "abc"), 0);
	assert_string_equal(f, "abc");
	assert_int_equal(zt_flowrec_set_text(f, sizeof(f), "abcdefghij"), 3);
	assert_string_equal(f, "abcdefg");
	/* "abcde" + "é" (2 bytes) = 7 bytes fits; + "€" would be cut inside. */
	assert_int_equal(zt_flowrec_set_text(f, sizeof(f), "abcde\xc3\xa9\xe2\x82\xac"), 3);
	assert_string_equal(f, "abcde\xc3\xa9");
	/* "abcdef" + "€": the cut at 7 splits "€", so it goes whole. */
	assert_int_equal(zt_flowrec_set_text(f, sizeof(f), "abcdef\xe2\x82\xac"), 3);
	assert_string_equal(f, "abcdef");
	/* Invalid bytes are kept as they are (escaped only when written). */
	assert_int_equal(zt_flowrec_set_text(f, sizeof(f), "a\xff\xfe"), 0);
	assert_string_equal(f, "a\xff\xfe");
}

/* Protocol numbers and names both ways, as spool format 1 and SQL write them. */
static void test_proto_names(void **state)
{
	static const char *const bad[] = { "", "TCP", "256", "1000", "-1", "6 ", "x6", "gre" };
	char buf[8];
	uint8_t p;

	assert_string_equal(zt_flowrec_proto_name(6, buf, sizeof(buf)), "tcp");
	assert_string_equal(zt_flowrec_proto_name(58, buf, sizeof(buf)), "icmpv6");
	assert_string_equal(zt_flowrec_proto_name(ZT_PROTO_ANY, buf, sizeof(buf)), "any");
	assert_string_equal(zt_flowrec_proto_name(47, buf, sizeof(buf)), "47");
	for (unsigned int i = 0; i < 256; i++) {
		p = 0;
		assert_int_equal(zt_flowrec_proto_parse(
					 zt_flowrec_proto_name((uint8_t)i, buf, sizeof(buf)), &p),
				 0);
		assert_int_equal(p, i);
	}
	assert_int_equal(zt_flowrec_proto_parse("0", &p), 0);
	assert_int_equal(p, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(zt_flowrec_proto_parse(bad[i], &p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v7_vector),    cmocka_unit_test(test_v7_bits_and_time),
		cmocka_unit_test(test_v7_monotonic), cmocka_unit_test(test_init),
		cmocka_unit_test(test_set_text),     cmocka_unit_test(test_proto_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
