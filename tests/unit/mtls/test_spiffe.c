// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: SPIFFE ID rules, the workload form, the tunnel header, answer and SNI names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "mtls/frame.h"
#include "mtls/mtls.h"

static void test_id_rules(void **state)
{
	static const char *const good[] = {
		"spiffe://cluster.local",
		"spiffe://cluster.local/ns/prod/sa/web",
		"spiffe://a_b-c.d/x/Y/z.-_",
		"spiffe://example.org/a",
	};
	static const char *const bad[] = {
		"",
		"spiffe://",
		"spiffe:///ns/a",
		"SPIFFE://cluster.local/ns/a/sa/b", /* scheme is lowercase */
		"spiffe://Cluster.local/ns/a/sa/b", /* trust domain is lowercase */
		"https://cluster.local/ns/a/sa/b",
		"spiffe://cluster.local:8443/ns/a",
		"spiffe://user@cluster.local/ns/a",
		"spiffe://cluster.local/ns/a/",
		"spiffe://cluster.local//a",
		"spiffe://cluster.local/./a",
		"spiffe://cluster.local/a/..",
		"spiffe://cluster.local/a?b",
		"spiffe://cluster.local/a#b",
		"spiffe://cluster.local/a%20b",
		"spiffe://cluster.local/a b",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(zt_spiffe_id_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (zt_spiffe_id_check(bad[i]) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* 2048 bytes is the limit */
	{
		char id[2100];
		size_t n = (size_t)snprintf(id, sizeof(id), "spiffe://td/");

		memset(id + n, 'a', 2048 - n);
		id[2048] = '\0';
		assert_int_equal(zt_spiffe_id_check(id), 0);
		id[2048] = 'a';
		id[2049] = '\0';
		assert_int_equal(zt_spiffe_id_check(id), -EINVAL);
	}
	assert_true(zt_spiffe_trust_domain_valid("cluster.local"));
	assert_false(zt_spiffe_trust_domain_valid(""));
	assert_false(zt_spiffe_trust_domain_valid("Cluster.local"));
	assert_false(zt_spiffe_trust_domain_valid("a:1"));
}

static void test_workload(void **state)
{
	char ns[300], sa[300], id[600];

	assert_int_equal(zt_spiffe_parse_workload("spiffe://cluster.local/ns/prod/sa/web",
						  "cluster.local", ns, sizeof(ns), sa, sizeof(sa)),
			 0);
	assert_string_equal(ns, "prod");
	assert_string_equal(sa, "web");
	assert_int_equal(zt_spiffe_parse_workload("spiffe://other.td/ns/prod/sa/web",
						  "cluster.local", ns, sizeof(ns), sa, sizeof(sa)),
			 -EXDEV);
	/* not the workload form */
	assert_int_equal(
		zt_spiffe_parse_workload("spiffe://cluster.local/ns/prod", NULL, NULL, 0, NULL, 0),
		-EINVAL);
	assert_int_equal(zt_spiffe_parse_workload("spiffe://cluster.local/ns/prod/sa/web/x", NULL,
						  NULL, 0, NULL, 0),
			 -EINVAL);
	assert_int_equal(zt_spiffe_parse_workload("spiffe://cluster.local/ns/Prod/sa/web", NULL,
						  NULL, 0, NULL, 0),
			 -EINVAL);
	assert_int_equal(zt_spiffe_parse_workload("spiffe://cluster.local/sa/web/ns/prod", NULL,
						  NULL, 0, NULL, 0),
			 -EINVAL);
	assert_int_equal(zt_spiffe_parse_workload("spiffe://cluster.local/ns/-a/sa/web", NULL, NULL,
						  0, NULL, 0),
			 -EINVAL);
	assert_int_equal(zt_spiffe_format_workload(id, sizeof(id), "cluster.local", "prod", "web"),
			 0);
	assert_string_equal(id, "spiffe://cluster.local/ns/prod/sa/web");
	assert_int_equal(zt_spiffe_format_workload(id, sizeof(id), "cluster.local", "prod", "a/b"),
			 -EINVAL);
	assert_int_equal(zt_spiffe_format_workload(id, 10, "cluster.local", "prod", "web"),
			 -ENOSPC);
}

static void test_reason_names(void **state)
{
	assert_string_equal(zt_mtls_reason_name(ZT_MTLS_UNKNOWN_CA), "unknown_ca");
	assert_string_equal(zt_mtls_reason_name(ZT_MTLS_WRONG_IDENTITY), "wrong_identity");
	assert_string_equal(zt_mtls_reason_name(ZT_MTLS_REASON_MAX), "unknown");
	for (int r = 0; r < ZT_MTLS_REASON_MAX; r++)
		assert_string_not_equal(zt_mtls_reason_name((enum zt_mtls_reason)r), "unknown");
}

static const char src_id[] = "spiffe://cluster.local/ns/prod/sa/web";

static struct zt_mtls_dest dest4(void)
{
	struct zt_mtls_dest d = { .family = AF_INET, .port = 5432, .src_port = 40000 };

	memcpy(d.addr, (uint8_t[]){ 198, 18, 1, 5 }, 4);
	memcpy(d.src_addr, (uint8_t[]){ 198, 18, 0, 9 }, 4);
	return d;
}

static void test_header(void **state)
{
	struct zt_mtls_dest d = dest4(), got;
	uint8_t buf[ZT_FRAME_HDR_MAX];
	char id[ZT_SPIFFE_ID_MAX + 1];
	int n = zt_frame_hdr_encode(buf, sizeof(buf), &d, src_id);

	assert_int_equal(n, ZT_FRAME_HDR_FIXED + (int)strlen(src_id));
	/* every prefix is "more, please"; the whole is the header */
	for (int i = 0; i < n; i++)
		assert_int_equal(zt_frame_hdr_decode(buf, (size_t)i, &got, id, sizeof(id)),
				 -EAGAIN);
	assert_int_equal(zt_frame_hdr_decode(buf, (size_t)n, &got, id, sizeof(id)), n);
	assert_int_equal(got.family, AF_INET);
	assert_int_equal(got.port, 5432);
	assert_int_equal(got.src_port, 40000);
	assert_memory_equal(got.addr, d.addr, 16);
	assert_memory_equal(got.src_addr, d.src_addr, 16);
	assert_string_equal(id, src_id);
	/* trailing bytes (pod data) are not part of it */
	assert_int_equal(zt_frame_hdr_decode(buf, sizeof(buf), &got, id, sizeof(id)), n);

	/* each malformation is refused, early when it can be */
	{
		uint8_t b2[ZT_FRAME_HDR_MAX];

		memcpy(b2, buf, (size_t)n);
		b2[0] = 'G';
		assert_int_equal(zt_frame_hdr_decode(b2, 1, &got, id, sizeof(id)), -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[4] = 2; /* version */
		assert_int_equal(zt_frame_hdr_decode(b2, 5, &got, id, sizeof(id)), -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[5] = 5; /* family */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[6] = b2[7] = 0; /* port 0 */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[8 + 5] = 1; /* bytes past an IPv4 address */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[26] = 0x08; /* ID length 2048+ */
		b2[27] = 0x01;
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[26] = b2[27] = 0; /* ID length 0 */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[ZT_FRAME_HDR_FIXED + 3] = '\0'; /* NUL inside the ID */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		memcpy(b2, buf, (size_t)n);
		b2[ZT_FRAME_HDR_FIXED] = 'X'; /* not a SPIFFE ID */
		assert_int_equal(zt_frame_hdr_decode(b2, (size_t)n, &got, id, sizeof(id)),
				 -EBADMSG);
		/* an ID longer than the caller's buffer */
		assert_int_equal(zt_frame_hdr_decode(buf, (size_t)n, &got, id, 10), -EBADMSG);
	}
	/* encoding refuses what it cannot carry */
	d.port = 0;
	assert_int_equal(zt_frame_hdr_encode(buf, sizeof(buf), &d, src_id), -EINVAL);
	d = dest4();
	assert_int_equal(zt_frame_hdr_encode(buf, 50, &d, src_id), -EINVAL);
	d.family = 99;
	assert_int_equal(zt_frame_hdr_encode(buf, sizeof(buf), &d, src_id), -EINVAL);
}

static void test_reply(void **state)
{
	uint8_t b[ZT_FRAME_REPLY_LEN];

	zt_frame_reply_encode(b, ZT_MTLS_OK);
	assert_int_equal(zt_frame_reply_decode(b, 7), -EAGAIN);
	assert_int_equal(zt_frame_reply_decode(b, 8), ZT_MTLS_OK);
	zt_frame_reply_encode(b, ZT_MTLS_WRONG_IDENTITY);
	assert_int_equal(zt_frame_reply_decode(b, 8), ZT_MTLS_WRONG_IDENTITY);
	b[5] = ZT_MTLS_REASON_MAX;
	assert_int_equal(zt_frame_reply_decode(b, 8), -EBADMSG);
	b[0] = 'H';
	assert_int_equal(zt_frame_reply_decode(b, 1), -EBADMSG);
}

static void test_sni(void **state)
{
	uint8_t a4[4] = { 198, 18, 1, 5 }, a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, got[16];
	char sni[ZT_SNI_MAX];
	int fam;

	assert_int_equal(zt_sni_encode(sni, sizeof(sni), AF_INET, a4), 0);
	assert_string_equal(sni, "v4-c6120105.ztagent");
	assert_int_equal(zt_sni_decode(sni, &fam, got), 0);
	assert_int_equal(fam, AF_INET);
	assert_memory_equal(got, a4, 4);
	assert_int_equal(zt_sni_encode(sni, sizeof(sni), AF_INET6, a6), 0);
	assert_string_equal(sni, "v6-20010db8000000000000000000000001.ztagent");
	assert_int_equal(zt_sni_decode(sni, &fam, got), 0);
	assert_int_equal(fam, AF_INET6);
	assert_memory_equal(got, a6, 16);
	assert_int_equal(zt_sni_decode("v4-c612010.ztagent", &fam, got), -EINVAL);
	assert_int_equal(zt_sni_decode("v4-C6120105.ztagent", &fam, got), -EINVAL);
	assert_int_equal(zt_sni_decode("v4-c6120105.example", &fam, got), -EINVAL);
	assert_int_equal(zt_sni_decode("198.18.1.5", &fam, got), -EINVAL);
	assert_int_equal(zt_sni_decode("", &fam, got), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_rules),     cmocka_unit_test(test_workload),
		cmocka_unit_test(test_reason_names), cmocka_unit_test(test_header),
		cmocka_unit_test(test_reply),	     cmocka_unit_test(test_sni),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
