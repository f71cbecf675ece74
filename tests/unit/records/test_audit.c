// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the audit chain's row hash (known answers from Python hashlib). */
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
		cmocka_unit_test(test_cli_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
