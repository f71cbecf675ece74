// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: log levels, quoting, the line format, one write per line. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/log.h"
#include "agent/util.h"

static void test_levels(void **state)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const char *const bad[] = { "INFO",  "Info",    "",    "verbose", "info ",
					   " info", "warning", "err", "debug\n", "3" };
	enum zt_log_level l;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(zt_log_level_parse(names[i], &l), 0);
		assert_int_equal(l, i);
		assert_string_equal(zt_log_level_name(l), names[i]);
		zt_log_set_level(l);
		assert_int_equal(zt_log_get_level(), l);
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(bad); i++) {
		l = ZT_LOG_WARN;
		if (zt_log_level_parse(bad[i], &l) != -EINVAL)
			fail_msg("level '%s' accepted", bad[i]);
		assert_int_equal(l, ZT_LOG_WARN); /* untouched */
	}
	assert_int_equal(zt_log_level_parse(NULL, &l), -EINVAL);
	assert_string_equal(zt_log_level_name((enum zt_log_level)7), "unknown");
	assert_string_equal(zt_log_level_name((enum zt_log_level) - 1), "unknown");
	zt_log_set_level((enum zt_log_level)42); /* clamped, not an out-of-range level */
	assert_int_equal(zt_log_get_level(), ZT_LOG_DEBUG);
	zt_log_set_level(ZT_LOG_INFO);
}

static void test_quote(void **state)
{
	static const struct {
		const char *in, *out;
		size_t n;
	} t[] = {
		{ "plain", "plain", 64 },
		{ "198.18.0.1/32", "198.18.0.1/32", 64 },
		{ "", "\"\"", 64 },
		{ NULL, "\"\"", 64 },
		{ "a b", "\"a b\"", 64 },
		{ "k=v", "\"k=v\"", 64 },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"", 64 },
		{ "line1\nline2", "\"line1\\nline2\"", 64 },
		{ "cr\rtab\t", "\"cr\\rtab\\t\"", 64 },
		{ "bell\a", "\"bell\\x07\"", 64 },
		{ "del\x7f", "\"del\\x7f\"", 64 },
		{ "\xff\xfe", "\"\\xff\\xfe\"", 64 },
		{ "caf\xc3\xa9", "\"caf\\xc3\\xa9\"", 64 }, /* valid UTF-8 too: logs stay ASCII */
		{ "back\\slash", "\"back\\\\slash\"", 64 },
		{ "forged\nts=0 level=error", "\"forged\\nts=0 level=error\"", 64 },
		/* Truncation: "..." inside the quotes, never half an escape. */
		{ "a very long value with spaces", "\"a very...\"", 12 },
		{ "averylongplainvalue", "averylon...", 12 },
		{ "exactly11ch", "exactly11ch", 12 },
		{ "exactly12chr", "exactly1...", 12 },
		{ "a b", "\"a b\"", 6 }, /* fits exactly: no "..." */
		{ "a bcd", "\"a...\"", 7 },
		{ "a b", "\"..\"", 5 },
		{ "a b", "\"\"", 3 },
		{ "a b", "", 2 },
		{ "\n\n\n\n\n", "\"\\n\\n...\"", 10 },
		{ "\xff\xff\xff", "\"\\xff...\"", 11 },
		{ "abcdef", "...", 4 },
		{ "abcdef", ".", 2 },
		{ "abcdef", "", 1 },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		char buf[64];

		memset(buf, 'Z', sizeof(buf));
		assert_ptr_equal(zt_log_quote(buf, t[i].n, t[i].in), buf);
		if (strcmp(buf, t[i].out))
			fail_msg("case %zu: quote(n=%zu) = '%s', expected '%s'", i, t[i].n, buf,
				 t[i].out);
		assert_true(strlen(buf) < t[i].n);
		if (t[i].n < sizeof(buf))
			assert_int_equal(buf[t[i].n], 'Z'); /* nothing written past n */
	}
	/* n == 0 writes nothing. */
	{
		char one = 'Z';

		zt_log_quote(&one, 0, "x");
		assert_int_equal(one, 'Z');
	}
}

/* Every size from 1 to past the full length: NUL inside, quotes balanced, no torn escape. */
static void test_quote_every_size(void **state)
{
	static const char *const in[] = { "k=v with \"quotes\"\n\xff", "plainvalue", "\t\t\t" };

	for (size_t i = 0; i < ZT_ARRAY_SIZE(in); i++) {
		char full[128], buf[128];

		zt_log_quote(full, sizeof(full), in[i]);
		for (size_t n = 1; n <= strlen(full) + 2; n++) {
			size_t len;

			memset(buf, 'Z', sizeof(buf));
			zt_log_quote(buf, n, in[i]);
			len = strlen(buf);
			assert_true(len < n);
			assert_int_equal(buf[n], 'Z'); /* nothing past n */
			if (n > strlen(full)) {
				assert_string_equal(buf, full);
				continue;
			}
			if (full[0] == '"' && len >= 2) {
				assert_int_equal(buf[0], '"');
				assert_int_equal(buf[len - 1], '"');
				/* Before the dots: a prefix of the full form, whole escapes only. */
				char *dots = strchr(buf, '.'); /* the inputs have no dots */
				size_t body = dots ? (size_t)(dots - buf) : len - 1;
				assert_memory_equal(buf, full, body);
				assert_true(body == 1 || buf[body - 1] != '\\' ||
					    (body >= 2 && buf[body - 2] == '\\'));
			}
		}
	}
}

/* Runs fn with stderr sent to a pipe; returns what was written. */
static void capture(void (*fn)(void), char *out, size_t n)
{
	int p[2], saved;
	size_t got = 0;
	ssize_t r;

	assert_int_equal(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	dup2(p[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	while (got < n - 1 && (r = read(p[0], out + got, n - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(p[0]);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void emit_info(void)
{
	zt_log_set_level(ZT_LOG_INFO);
	log_info("block_add", "cidr=%s ttl_s=%d", "198.18.0.1/32", 600);
	log_debug("hidden", "x=1");
	zt_log(ZT_LOG_DEBUG, "hidden_too", "x=1");
}

static void test_format(void **state)
{
	char out[1024], rest[512];
	int y, mo, d, h, mi, s, ms, consumed = 0;
	time_t now = time(NULL);
	struct tm tm, got = {};

	capture(emit_info, out, sizeof(out));
	assert_int_equal(count_lines(out), 1);
	assert_int_equal(sscanf(out, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n%511[^\n]", &y, &mo, &d, &h,
				&mi, &s, &ms, &consumed, rest),
			 8);
	assert_string_equal(rest, "level=info event=block_add cidr=198.18.0.1/32 ttl_s=600");
	assert_string_equal(out + consumed + strlen(rest), "\n");
	/* Exactly "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " (zero padded), in UTC, now. */
	assert_int_equal(consumed, (int)strlen("ts=2026-11-22T22:41:03.512Z "));
	assert_true(ms >= 0 && ms <= 999);
	gmtime_r(&now, &tm);
	got.tm_year = y - 1900;
	got.tm_mon = mo - 1;
	got.tm_mday = d;
	got.tm_hour = h;
	got.tm_min = mi;
	got.tm_sec = s;
	assert_true(labs((long)(timegm(&got) - now)) <= 5);
	assert_null(strstr(out, "hidden"));
}

static void emit_levels(void)
{
	zt_log_set_level(ZT_LOG_ERROR);
	log_warn("w", "x=1");
	log_info("i", "x=1");
	log_error("e", "x=2");
	zt_log_set_level(ZT_LOG_WARN);
	log_warn("w2", "x=3");
	log_info("i2", "x=3");
	zt_log_set_level(ZT_LOG_DEBUG);
	log_debug("d", "x=4");
	zt_log_set_level(ZT_LOG_INFO);
}

static void test_level_filter(void **state)
{
	char out[2048];

	capture(emit_levels, out, sizeof(out));
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, " level=error event=e x=2\n"));
	assert_non_null(strstr(out, " level=warn event=w2 x=3\n"));
	assert_non_null(strstr(out, " level=debug event=d x=4\n"));
	assert_null(strstr(out, "event=w "));
	assert_null(strstr(out, "event=i"));
}

static int errno_after;

static void emit_edge_cases(void)
{
	zt_log_set_level(ZT_LOG_INFO);
	zt_log(ZT_LOG_INFO, "bare", "%s", ""); /* no trailing blank */
	zt_log(ZT_LOG_INFO, "trail", "x=1   ");
	errno = ENOENT;
	zt_log(ZT_LOG_WARN, "open_failed", "error=\"%m\"");
	errno_after = errno;
}

static void test_edge_cases(void **state)
{
	char out[2048];

	capture(emit_edge_cases, out, sizeof(out));
	assert_int_equal(count_lines(out), 3);
	assert_non_null(strstr(out, " level=info event=bare\n"));
	assert_non_null(strstr(out, " level=info event=trail x=1\n"));
	assert_non_null(
		strstr(out, " level=warn event=open_failed error=\"No such file or directory\"\n"));
	assert_int_equal(errno_after, ENOENT); /* logging does not clobber errno */

	/* Not even when the write fails (stderr closed: EBADF). */
	{
		int saved = dup(STDERR_FILENO);

		close(STDERR_FILENO);
		errno = ENOENT;
		log_error("lost", "x=1");
		errno_after = errno;
		dup2(saved, STDERR_FILENO);
		close(saved);
		assert_int_equal(errno_after, ENOENT);
	}
}

static void emit_long(void)
{
	static char big[10000];

	memset(big, 'v', sizeof(big) - 1);
	log_info("long", "k=%s", big);
	log_info("after", "k=1");
}

static void test_long_line(void **state)
{
	static char out[16384];
	char *nl;

	capture(emit_long, out, sizeof(out));
	assert_int_equal(count_lines(out), 2);
	nl = strchr(out, '\n');
	/* Cut at one write's worth, marked, newline kept: the next line starts clean. */
	assert_true(nl - out + 1 <= 4096);
	assert_true(nl - out + 1 >= 4000);
	assert_memory_equal(nl - 3, "...", 3);
	assert_memory_equal(nl + 1, "ts=", 3);
	assert_non_null(strstr(nl + 1, " event=after k=1\n"));
}

#define THREADS 8
#define LINES 300

static void *log_thread(void *arg)
{
	long id = (long)arg;
	char payload[301];

	/* Lines of different lengths, each carrying its thread id throughout. */
	for (int i = 0; i < LINES; i++) {
		size_t len = (size_t)(50 + (i * 37 + id * 11) % 250);

		memset(payload, (char)('a' + id), len);
		payload[len] = '\0';
		log_info("t", "id=%ld i=%d p=%s end=%ld", id, i, payload, id);
	}
	return NULL;
}

/* Many threads at once: every line arrives whole (one write(2) per line). */
static void test_threads(void **state)
{
	char path[] = "/tmp/zt-log-XXXXXX";
	pthread_t th[THREADS];
	int fd = mkstemp(path), saved, seen[THREADS] = { 0 };
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	zt_log_set_level(ZT_LOG_INFO);
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	f = fdopen(fd, "r");
	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		long id, end;
		int i, off = 0;
		char *p;

		if (sscanf(line, "ts=%*s level=info event=t id=%ld i=%d p=%n", &id, &i, &off) !=
			    2 ||
		    !off || id < 0 || id >= THREADS)
			fail_msg("torn line: %s", line);
		p = line + off;
		while (*p == 'a' + id)
			p++;
		if (sscanf(p, " end=%ld\n", &end) != 1 || end != id || line[n - 1] != '\n')
			fail_msg("torn line: %s", line);
		assert_int_equal(i, seen[id]); /* in order per thread */
		seen[id]++;
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(seen[i], LINES);
	free(line);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),		 cmocka_unit_test(test_quote),
		cmocka_unit_test(test_quote_every_size), cmocka_unit_test(test_format),
		cmocka_unit_test(test_level_filter),	 cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_long_line),	 cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
