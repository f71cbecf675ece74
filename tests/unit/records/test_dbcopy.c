// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the PGCOPY binary encoding of a flow record, byte for byte,
 * and the embedded migrations against deploy/sql (run from the repository
 * root, as tests/run.sh does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "records/db.h"
#include "records/flowrec.h"

#define I32(v) (uint8_t)((v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)
#define I64(v) I32((uint64_t)(v) >> 32), I32((uint64_t)(v)&0xffffffffu)
#define NUL 0xff, 0xff, 0xff, 0xff

static const uint8_t expected[] = {
	/* header: signature, flags, extension length */
	'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, I32(0), I32(0),
	/* tuple: 34 fields */
	0, 34,
	/* id */
	I32(16), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	/* source_ip, dest_ip: family 2 (inet), 32 bits, not cidr, 4 bytes */
	I32(8), 2, 32, 0, 4, 198, 18, 0, 1, I32(8), 2, 32, 0, 4, 198, 18, 0, 2,
	/* source_port 40000, dest_port without a port: 0 (NOT NULL) */
	I32(4), I32(40000), I32(4), I32(0),
	/* protocol SMALLINT 6 */
	I32(2), 0, 6,
	/* bytes_sent, bytes_received BIGINT; packet_count, duration_ms INTEGER */
	I32(8), I64(1000), I32(8), I64(2000), I32(4), I32(10), I32(4), I32(1500),
	/* flags: 1 dimension, no NULLs, text (25), 2 elements from 1, "SYN", "ACK" */
	I32(34), I32(1), I32(0), I32(25), I32(2), I32(1), I32(3), 'S', 'Y', 'N', I32(3), 'A', 'C',
	'K',
	/* start_time, end_time: microseconds since 2000-01-01 */
	I32(8), I64(1000000), I32(8), I64(2500000),
	/* anomaly_score 0.5f, threat_type NULL, blocked true, created_at NULL */
	I32(4), I32(0x3f000000), NUL, I32(1), 1, NUL,
	/* packets_sent, packets_received */
	I32(8), I64(6), I32(8), I64(4),
	/* verdict, drop_reason NULL, policy */
	I32(7), 'a', 'l', 'l', 'o', 'w', 'e', 'd', NUL, I32(3), 'p', '/', 'r',
	/* source_identity 42, dest_identity NULL */
	I32(8), I64(42), NUL,
	/* source_workload "a\xffb" written as a\xffb (escaped), dest_workload NULL */
	I32(6), 'a', '\\', 'x', 'f', 'f', 'b', NUL,
	/* node, interface NULL, direction, flow_kind, aggregate_count */
	I32(2), 'n', '1', NUL, I32(7), 'i', 'n', 'g', 'r', 'e', 's', 's', I32(4), 'f', 'l', 'o',
	'w', I32(8), I64(1),
	/* source_spiffe_id, dest_spiffe_id NULL, mtls true (migration 007) */
	I32(13), 's', 'p', 'i', 'f', 'f', 'e', ':', '/', '/', 't', 'd', '/', 'x', NUL, I32(1), 1,
	/* trailer */
	0xff, 0xff
};

static void test_copy_bytes(void **state)
{
	struct zt_flow_record r;
	struct zt_buf b = { 0 };

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 16; i++)
		r.id[i] = (uint8_t)i;
	r.family = AF_INET;
	memcpy(r.source_ip, "\xc6\x12\x00\x01", 4);
	memcpy(r.dest_ip, "\xc6\x12\x00\x02", 4);
	r.present = ZT_FR_HAS_SPORT | ZT_FR_HAS_ANOMALY | ZT_FR_HAS_SID;
	r.source_port = 40000;
	r.dest_port = 99; /* not present: 0 */
	r.protocol = 6;
	r.bytes_sent = 1000;
	r.bytes_received = 2000;
	r.packet_count = 10;
	r.duration_ms = 1500;
	r.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK;
	r.start_time_us = ZT_PG_EPOCH_US + 1000000;
	r.end_time_us = ZT_PG_EPOCH_US + 2500000;
	r.anomaly_score = 0.5f;
	r.blocked = true;
	r.packets_sent = 6;
	r.packets_received = 4;
	strcpy(r.verdict, "allowed");
	strcpy(r.policy, "p/r");
	r.source_identity = 42;
	r.dest_identity = 7; /* not present: NULL */
	strcpy(r.source_workload, "a\xff"
				  "b");
	strcpy(r.node, "n1");
	strcpy(r.direction, "ingress");
	r.kind = ZT_FLOW_KIND_FLOW;
	r.aggregate_count = 1;
	strcpy(r.source_spiffe_id, "spiffe://td/x");
	r.mtls = true;

	assert_int_equal(zt_copy_begin(&b), 0);
	assert_int_equal(zt_copy_row(&b, &r), 0);
	assert_int_equal(zt_copy_end(&b), 0);
	assert_int_equal(b.len, sizeof(expected));
	assert_memory_equal(b.p, expected, sizeof(expected));
	zt_buf_free(&b);
}

/* IPv6 addresses, empty flags (0 dimensions), negative numbers, an aggregate. */
static void test_copy_v6_empty_array(void **state)
{
	static const uint8_t inet6[] = { I32(20), 3, 128, 0, 16 };
	static const uint8_t empty_arr[] = { I32(12), I32(0), I32(0), I32(25) };
	static const uint8_t neg[] = { I32(8), I64(-5) };
	static const char agg[] = "\0\0\0\x12xdp_drop_aggregate";
	struct zt_flow_record r;
	struct zt_buf b = { 0 };

	zt_flowrec_init(&r);
	r.family = AF_INET6;
	r.source_ip[0] = 0x20;
	r.source_ip[15] = 1;
	r.protocol = 17;
	strcpy(r.node, "n");
	r.present = ZT_FR_HAS_DID;
	r.dest_identity = -5;
	r.kind = ZT_FLOW_KIND_XDP_DROP_AGG;
	assert_int_equal(zt_copy_row(&b, &r), 0);
	assert_non_null(memmem(b.p, b.len, inet6, sizeof(inet6)));
	assert_memory_equal(b.p + 2 + 20 + 8, "\x20", 1);
	assert_non_null(memmem(b.p, b.len, empty_arr, sizeof(empty_arr)));
	assert_non_null(memmem(b.p, b.len, neg, sizeof(neg)));
	assert_non_null(memmem(b.p, b.len, agg, sizeof(agg) - 1));
	zt_buf_free(&b);
}

/* INTEGER columns saturate; threat_type is cut to VARCHAR(50) between characters. */
static void test_copy_saturate_and_cut(void **state)
{
	static const uint8_t sat[] = { I32(4), I32(0x7fffffff), I32(4), I32(0x7fffffff) };
	struct zt_flow_record r;
	struct zt_buf b = { 0 };
	char want[64];
	uint8_t *p;

	zt_flowrec_init(&r);
	r.protocol = 1;
	strcpy(r.node, "n");
	r.packet_count = 3000000000LL; /* > INT32_MAX */
	r.duration_ms = 1LL << 40;
	/* 45 ASCII characters, then a non-UTF-8 byte (4 characters as \xNN): 49; then more. */
	memset(r.threat_type, 'a', 45);
	strcpy(r.threat_type + 45, "\xff"
				   "bcdefgh");
	assert_int_equal(zt_copy_row(&b, &r), 0);
	assert_non_null(memmem(b.p, b.len, sat, sizeof(sat)));
	memset(want, 'a', 45);
	strcpy(want + 45, "\\xffb");
	p = memmem(b.p, b.len, want, 50);
	assert_non_null(p);
	assert_memory_equal(p - 4, "\0\0\0\x32", 4); /* length 50 */
	zt_buf_free(&b);
	/* An escape that would pass the 50th character is left out whole. */
	zt_flowrec_init(&r);
	memset(r.threat_type, 'a', 47);
	strcpy(r.threat_type + 47, "\xff");
	{
		char *s = zt_db_text_chars(r.threat_type, ZT_FR_THREAT_CHARS);

		assert_non_null(s);
		assert_int_equal(strlen(s), 47);
		free(s);
	}
}

static void test_text_escape(void **state)
{
	/* Valid UTF-8 (2, 3, 4 bytes) passes; overlong, surrogate, truncated do not. */
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain 'q' \"d\" \\ \n\t", "plain 'q' \"d\" \\ \n\t" },
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e", "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e" },
		{ "\xc0\xaf", "\\xc0\\xaf" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "x\xe2\x82", "x\\xe2\\x82" },
		{ "\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = zt_db_text(cases[i].in);

		assert_non_null(s);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

/* The SQL built into the binary is the text of deploy/sql, file for file. */
static void test_embedded_sql_matches_files(void **state)
{
	assert_true(zt_db_n_migrations >= 2);
	for (size_t i = 0; i < zt_db_n_migrations; i++) {
		char path[256], *buf;
		FILE *f;
		long n;

		snprintf(path, sizeof(path), "deploy/sql/%s.sql", zt_db_migrations[i].name);
		f = fopen(path, "rb");
		if (!f)
			fail_msg("%s: cannot open (run from the repository root)", path);
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		buf = calloc(1, (size_t)n + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		if (strcmp(buf, zt_db_migrations[i].sql))
			fail_msg("%s differs from build/gen/dbschema.c: rebuild (make)", path);
		/* Numbered upwards, each once; a gap is a migration of another branch. */
		assert_true(zt_db_migrations[i].version >
			    (i ? zt_db_migrations[i - 1].version : 0));
		free(buf);
	}
	/* And no file in deploy/sql is missing from the binary. */
	{
		char path[64];
		FILE *f;

		snprintf(path, sizeof(path), "deploy/sql/%03zu_", zt_db_n_migrations + 1);
		f = popen("ls deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l", "r");
		assert_non_null(f);
		assert_int_equal(fscanf(f, "%63s", path), 1);
		pclose(f);
		assert_int_equal(atoi(path), (int)zt_db_n_migrations);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_bytes),
		cmocka_unit_test(test_copy_v6_empty_array),
		cmocka_unit_test(test_copy_saturate_and_cut),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_embedded_sql_matches_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
