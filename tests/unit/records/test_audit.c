// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the audit chain's row hash (known answers from Python
 * hashlib) and the sorting of server errors into "retry" and "the row is
 * refused" by SQLSTATE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "records/audit.h"

static void hex(const uint8_t *h, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_known_answers(void **state)
{
	uint8_t zero[32] = { 0 }, h1[32], h2[32];
	char s[65];

	zt_audit_hash(zero, 1, 1790000000123456LL, "block_add", "ztctl:uid=0",
		      "block 198.18.0.1/32", "{\"ttl\": 600}", h1);
	hex(h1, s);
	assert_string_equal(s, "e11635d2ca192cd8d7ca68629fbd31e923f0b8b7d9ff8c938edb312518709048");
	zt_audit_hash(h1, 2, 1790000000123457LL, "unblock", "api", "", "{}", h2);
	hex(h2, s);
	assert_string_equal(s, "a8c9bf0eed073629982936057a2cbc08d4fb4a20aa55450b5fafb87e22eff0f9");
}

/* Every field is in the hash, and field boundaries matter ("ab","c" != "a","bc"). */
static void test_every_field_counts(void **state)
{
	uint8_t zero[32] = { 0 }, one[32] = { 1 }, base[32], h[32];

	zt_audit_hash(zero, 1, 5, "k", "a", "s", "{}", base);
	zt_audit_hash(one, 1, 5, "k", "a", "s", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 2, 5, "k", "a", "s", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 6, "k", "a", "s", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 5, "K", "a", "s", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 5, "k", "A", "s", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 5, "k", "a", "S", "{}", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 5, "k", "a", "s", "{ }", h);
	assert_memory_not_equal(base, h, 32);
	zt_audit_hash(zero, 1, 5, "ka", "", "s", "{}", h);
	zt_audit_hash(zero, 1, 5, "k", "a", "s", "{}", base);
	assert_memory_not_equal(base, h, 32);
}

/* Only an error about the row's content may set a row aside; everything else is retried. */
static void test_classify(void **state)
{
	static const struct {
		const char *sqlstate;
		enum zt_audit_err_class want;
	} cases[] = {
		{ "22P02", ZT_AUDIT_ERR_CONTENT }, /* invalid_text_representation (bad JSON) */
		{ "22021", ZT_AUDIT_ERR_CONTENT }, /* character_not_in_repertoire */
		{ "22003", ZT_AUDIT_ERR_CONTENT }, /* numeric_value_out_of_range */
		{ "23505", ZT_AUDIT_ERR_CONTENT }, /* unique_violation */
		{ "23502", ZT_AUDIT_ERR_CONTENT }, /* not_null_violation */
		{ "54000", ZT_AUDIT_ERR_CONTENT }, /* program_limit_exceeded */
		{ "08006", ZT_AUDIT_ERR_CONNECTION }, /* connection_failure */
		{ "08000", ZT_AUDIT_ERR_CONNECTION },
		{ "57P01", ZT_AUDIT_ERR_CONNECTION }, /* admin_shutdown */
		{ "57P02", ZT_AUDIT_ERR_CONNECTION }, /* crash_shutdown */
		{ "57P03", ZT_AUDIT_ERR_CONNECTION }, /* cannot_connect_now */
		{ "40001", ZT_AUDIT_ERR_RETRY }, /* serialization_failure */
		{ "40P01", ZT_AUDIT_ERR_RETRY }, /* deadlock_detected */
		{ "42P01", ZT_AUDIT_ERR_RETRY }, /* undefined_table: migrate, retry */
		{ "42501", ZT_AUDIT_ERR_RETRY }, /* insufficient_privilege */
		{ "53100", ZT_AUDIT_ERR_RETRY }, /* disk_full */
		{ "57014", ZT_AUDIT_ERR_RETRY }, /* query_canceled */
		{ "XX000", ZT_AUDIT_ERR_RETRY }, /* internal_error */
		{ "", ZT_AUDIT_ERR_RETRY }, /* no SQLSTATE at all */
		{ "22", ZT_AUDIT_ERR_RETRY }, /* not a SQLSTATE */
		{ "22P02x", ZT_AUDIT_ERR_RETRY },
		{ NULL, ZT_AUDIT_ERR_RETRY },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (zt_audit_classify(cases[i].sqlstate) != cases[i].want)
			fail_msg("SQLSTATE %s: class %d, want %d",
				 cases[i].sqlstate ? cases[i].sqlstate : "(null)",
				 zt_audit_classify(cases[i].sqlstate), cases[i].want);
	}
}

static void test_cli_usage(void **state)
{
	FILE *devnull = fopen("/dev/null", "w");

	assert_non_null(devnull);
	assert_int_equal(zt_audit_verify_cli(NULL, devnull, devnull), 2);
	assert_int_equal(zt_audit_verify_cli("", devnull, devnull), 2);
	fclose(devnull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_every_field_counts),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_cli_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
