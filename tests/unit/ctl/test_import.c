// SPDX-License-Identifier: GPL-2.0-only
/* The `ztctl block import` line reader: what each line of a file gives, at which line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl/import.h"

struct want {
	size_t line;
	const char *cidr; /* NULL: a bad line */
	const char *why; /* part of the reason, for a bad line */
};

static void expect(const char *data, size_t len, const struct want *w, size_t n)
{
	FILE *f = fmemopen((void *)data, len, "r");
	struct zt_import_reader rd;
	struct zt_import_line l;
	char text[ZT_CIDR_STRLEN];

	assert_non_null(f);
	zt_import_init(&rd, f);
	for (size_t i = 0; i < n; i++) {
		if (zt_import_next(&rd, &l) != 1)
			fail_msg("item %zu: no more lines, expected line %zu", i, w[i].line);
		if (l.lineno != w[i].line)
			fail_msg("item %zu: line %zu, expected line %zu", i, l.lineno, w[i].line);
		if (w[i].cidr) {
			if (!l.ok)
				fail_msg("line %zu: bad (%s), expected %s", l.lineno, l.why,
					 w[i].cidr);
			zt_cidr_format(&l.cidr, text, sizeof(text));
			assert_string_equal(text, w[i].cidr);
		} else {
			if (l.ok)
				fail_msg("line %zu: accepted, expected bad", l.lineno);
			assert_non_null(strstr(l.why, w[i].why));
		}
	}
	assert_int_equal(zt_import_next(&rd, &l), 0);
	fclose(f);
}

static void test_lines(void **state)
{
	static const char feed[] = "# feed\n"
				   "198.18.0.7\n"
				   "198.18.0.9/24   # a comment\n"
				   "\n"
				   "   \t\n"
				   "2001:db8:bad::/48\r\n"
				   "\t203.0.113.9/32\t\n"
				   "not-a-cidr\n"
				   "10.0.0.0/33\n"
				   "198.18.0.1"; /* no newline at the end */
	static const struct want w[] = {
		{ 2, "198.18.0.7/32", NULL },	  { 3, "198.18.0.0/24", NULL },
		{ 6, "2001:db8:bad::/48", NULL }, { 7, "203.0.113.9/32", NULL },
		{ 8, NULL, "not an IPv4/IPv6" },  { 9, NULL, "not an IPv4/IPv6" },
		{ 10, "198.18.0.1/32", NULL },
	};

	expect(feed, sizeof(feed) - 1, w, sizeof(w) / sizeof(w[0]));
}

/*
 * A NUL byte in a line: strlen() stopped at it, the line looked unterminated,
 * and the skip loop ate the following line (198.18.0.2 was never imported)
 * and every later line number was off by one. The NUL's line is bad; the
 * others are read, at their own numbers.
 */
static void test_nul_byte(void **state)
{
	static const char feed[] = "198.18.0.1\0junk\n198.18.0.2\n198.18.0.3\n"
				   "# a NUL in a comment\0 is still a comment\n"
				   "\0\n"
				   "198.18.0.4\n";
	static const struct want w[] = {
		{ 1, NULL, "NUL byte" }, { 2, "198.18.0.2/32", NULL }, { 3, "198.18.0.3/32", NULL },
		{ 5, NULL, "NUL byte" }, { 6, "198.18.0.4/32", NULL },
	};

	expect(feed, sizeof(feed) - 1, w, sizeof(w) / sizeof(w[0]));
}

/* A line longer than any CIDR is one bad line, shown cut; the next line is read. */
static void test_long_line(void **state)
{
	char *feed = malloc(4096);
	struct zt_import_reader rd;
	struct zt_import_line l;
	size_t n;
	FILE *f;

	n = (size_t)sprintf(feed, "198.18.0.1\n");
	memset(feed + n, '9', 3000);
	n += 3000;
	n += (size_t)sprintf(feed + n, "\n198.18.0.3\n");
	{
		static const struct want w[] = {
			{ 1, "198.18.0.1/32", NULL },
			{ 2, NULL, "too long" },
			{ 3, "198.18.0.3/32", NULL },
		};

		expect(feed, n, w, 3);
	}
	f = fmemopen(feed, n, "r");
	zt_import_init(&rd, f);
	assert_int_equal(zt_import_next(&rd, &l), 1);
	assert_int_equal(zt_import_next(&rd, &l), 1);
	assert_int_equal(strlen(l.shown), ZT_IMPORT_SHOWN_MAX + 3);
	assert_string_equal(l.shown + ZT_IMPORT_SHOWN_MAX, "...");
	fclose(f);
	free(feed);
}

/* Control bytes of a bad line never reach the terminal as they are. */
static void test_shown_text(void **state)
{
	static const char feed[] = "\x1b[31mred\x07\n";
	FILE *f = fmemopen((void *)feed, sizeof(feed) - 1, "r");
	struct zt_import_reader rd;
	struct zt_import_line l;

	zt_import_init(&rd, f);
	assert_int_equal(zt_import_next(&rd, &l), 1);
	assert_false(l.ok);
	assert_string_equal(l.shown, "?[31mred?");
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_shown_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
