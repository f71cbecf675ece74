// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the audit queue's journal without a database (events kept,
 * replayed after a restart, torn tail cut, bound counted) and the JSON
 * escaping of hostile text. The path into PostgreSQL is covered by
 * tests/integration/flows_db.sh.
 */
#include <errno.h>
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

#include "records/auditq.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-auditq-test.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct zt_auditq *open_q(uint64_t max)
{
	struct zt_auditq *q = NULL;
	char err[512] = "";

	/* No database: events are only journaled. */
	assert_int_equal(zt_auditq_open("", dir, "node-a", max, &q, err, sizeof(err)), 0);
	assert_non_null(q);
	return q;
}

static uint64_t pending(struct zt_auditq *q)
{
	struct zt_auditq_stats st;

	zt_auditq_get_stats(q, &st);
	return st.pending;
}

static void test_journal_survives_restart(void **state)
{
	struct zt_auditq *q = open_q(0);

	assert_int_equal(
		zt_auditq_post(q, "policy.apply", "ztagent@n", "/etc/p", "{\"sha256\":\"ab\"}"), 0);
	assert_int_equal(zt_auditq_post(q, "block.add", "ztagent@n", "198.18.0.1/32", NULL), 0);
	assert_int_equal(zt_auditq_post(q, "endpoint.del", "ztagent@n", "ns/x", "  { }"), 0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);

	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
}

static void test_detail_must_be_object(void **state)
{
	struct zt_auditq *q = open_q(0);

	assert_int_equal(zt_auditq_post(q, "x", "a", "s", "[1,2]"), -EINVAL);
	assert_int_equal(zt_auditq_post(q, "x", "a", "s", "\"text\""), -EINVAL);
	assert_int_equal(pending(q), 0);
	zt_auditq_close(q);
}

static void test_torn_tail_is_cut(void **state)
{
	struct zt_auditq *q = open_q(0);
	char path[128];
	struct stat sb;
	int fd;

	for (int i = 0; i < 4; i++)
		assert_int_equal(zt_auditq_post(q, "k", "a", "s", "{}"), 0);
	zt_auditq_close(q);
	/* The agent died inside write(): half a record at the end. */
	snprintf(path, sizeof(path), "%s/audit.journal", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 7), 0);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
	/* Garbage appended: cut too, the whole records stay. */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage-garbage-garbage", 23), 23);
	close(fd);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	assert_int_equal(zt_auditq_post(q, "k", "a", "s", "{}"), 0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
	q = open_q(0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
}

static void test_bound_counts_drops(void **state)
{
	struct zt_auditq *q = open_q(4096);
	struct zt_auditq_stats st;
	int ok = 0, full = 0;

	for (int i = 0; i < 200; i++) {
		int r = zt_auditq_post(q, "policy.violation", "a",
				       "tcp 198.18.0.1:1 -> 198.18.0.2:2",
				       "{\"verdict\":\"denied\"}");

		if (r == 0)
			ok++;
		else if (r == -ENOSPC)
			full++;
	}
	zt_auditq_get_stats(q, &st);
	assert_true(ok > 0 && full > 0);
	assert_int_equal(ok + full, 200);
	assert_int_equal(st.dropped, (uint64_t)full);
	assert_int_equal(st.pending, (uint64_t)ok);
	assert_true(st.pending_bytes <= 4096);
	zt_auditq_close(q);
}

static void test_json_escape(void **state)
{
	char b[256];

	zt_json_escape("plain", b, sizeof(b));
	assert_string_equal(b, "plain");
	zt_json_escape("a\"b\\c\nd\te", b, sizeof(b));
	assert_string_equal(b, "a\\\"b\\\\c\\u000ad\\u0009e");
	/* Not UTF-8: the byte becomes the text \xff (its backslash escaped). */
	zt_json_escape("x\xffy", b, sizeof(b));
	assert_string_equal(b, "x\\\\xffy");
	/* Overlong and surrogate encodings are not valid UTF-8 either. */
	zt_json_escape("\xc0\xaf", b, sizeof(b));
	assert_string_equal(b, "\\\\xc0\\\\xaf");
	zt_json_escape("\xed\xa0\x80", b, sizeof(b));
	assert_string_equal(b, "\\\\xed\\\\xa0\\\\x80");
	/* Valid multi-byte text stays as it is. */
	zt_json_escape("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92", b, sizeof(b));
	assert_string_equal(b, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92");
	/* Truncation never splits a character or an escape. */
	zt_json_escape("\xe6\x97\xa5\xe6\x9c\xac", b, 5);
	assert_string_equal(b, "\xe6\x97\xa5");
	zt_json_escape("ab\"", b, 4);
	assert_string_equal(b, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail_must_be_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_counts_drops, setup, teardown),
		cmocka_unit_test(test_json_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
