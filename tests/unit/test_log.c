// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: log levels, quoting, the line format. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "util.h"

static void test_levels(void **state)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	enum zt_log_level l;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(zt_log_level_parse(names[i], &l), 0);
		assert_int_equal(l, i);
		assert_string_equal(zt_log_level_name(l), names[i]);
	}
	assert_int_equal(zt_log_level_parse("INFO", &l), -EINVAL);
	assert_int_equal(zt_log_level_parse("", &l), -EINVAL);
	assert_int_equal(zt_log_level_parse("verbose", &l), -EINVAL);
}

static void test_quote(void **state)
{
	static const struct {
		const char *in, *out;
		size_t n;
	} t[] = {
		{ "plain", "plain", 64 },
		{ "", "\"\"", 64 },
		{ "a b", "\"a b\"", 64 },
		{ "k=v", "\"k=v\"", 64 },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"", 64 },
		{ "line1\nline2", "\"line1\\nline2\"", 64 },
		{ "\xff\xfe", "\"\\xff\\xfe\"", 64 },
		{ "back\\slash", "\"back\\\\slash\"", 64 },
		{ "a very long value with spaces", "\"a very...\"", 12 },
		{ "averylongplainvalue", "averylon...", 12 },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		char buf[64];

		zt_log_quote(buf, t[i].n, t[i].in);
		if (strcmp(buf, t[i].out))
			fail_msg("quote('%s', %zu) = '%s', expected '%s'", t[i].in, t[i].n, buf,
				 t[i].out);
		assert_true(strlen(buf) < t[i].n);
	}
}

/* Runs fn with stderr captured; returns what was written. */
static void capture(void (*fn)(void), char *out, size_t n)
{
	int p[2], saved;
	ssize_t r;

	assert_int_equal(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	r = read(p[0], out, n - 1);
	out[r > 0 ? r : 0] = '\0';
	close(p[0]);
}

static void emit_info(void)
{
	zt_log_set_level(ZT_LOG_INFO);
	log_info("block_add", "cidr=%s ttl_s=%d", "198.18.0.1/32", 600);
	log_debug("hidden", "x=1");
}

static void emit_error_only(void)
{
	zt_log_set_level(ZT_LOG_ERROR);
	log_warn("w", "x=1");
	log_error("e", "x=2");
	zt_log_set_level(ZT_LOG_INFO);
}

static void test_format(void **state)
{
	char out[1024];
	int y, mo, d, h, mi, s, ms;
	char rest[512];

	capture(emit_info, out, sizeof(out));
	assert_int_equal(sscanf(out, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %511[^\n]", &y, &mo, &d, &h,
				&mi, &s, &ms, rest),
			 8);
	assert_string_equal(rest, "level=info event=block_add cidr=198.18.0.1/32 ttl_s=600");
	assert_null(strstr(out, "hidden"));
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_null(strchr(out, '\n') + 1 == out + strlen(out) ? NULL : "two lines");

	capture(emit_error_only, out, sizeof(out));
	assert_null(strstr(out, "level=warn"));
	assert_non_null(strstr(out, "level=error event=e x=2\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
