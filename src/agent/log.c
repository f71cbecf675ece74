// SPDX-License-Identifier: GPL-2.0-only
/* key=value lines on stderr, one write(2) per line. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/log.h"

/*
 * A line never exceeds PIPE_BUF, so one write(2) to a pipe or a journal
 * stream is atomic: lines from several threads never interleave.
 */
#define LINE_MAX_BYTES 4096

static _Atomic int current_level = ZT_LOG_INFO;

static const char *const level_names[] = {
	[ZT_LOG_ERROR] = "error",
	[ZT_LOG_WARN] = "warn",
	[ZT_LOG_INFO] = "info",
	[ZT_LOG_DEBUG] = "debug",
};

void zt_log_set_level(enum zt_log_level level)
{
	if ((unsigned int)level > ZT_LOG_DEBUG)
		level = ZT_LOG_DEBUG;
	atomic_store(&current_level, (int)level);
}

enum zt_log_level zt_log_get_level(void)
{
	return (enum zt_log_level)atomic_load(&current_level);
}

int zt_log_level_parse(const char *s, enum zt_log_level *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcmp(s, level_names[i])) {
			*out = (enum zt_log_level)i;
			return 0;
		}
	return -EINVAL;
}

const char *zt_log_level_name(enum zt_log_level level)
{
	return (unsigned int)level <= ZT_LOG_DEBUG ? level_names[level] : "unknown";
}

/* Advances *off by what snprintf reported, clamped to what fits before the last byte. */
static void advance(size_t *off, int r, size_t cap)
{
	if (r <= 0)
		return;
	*off += (size_t)r;
	if (*off > cap - 1)
		*off = cap - 1;
}

void zt_log(enum zt_log_level level, const char *event, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	int saved_errno = errno; /* for %m, and so logging never clobbers errno */
	struct timespec ts;
	struct tm tm;
	size_t off, cap = sizeof(line) - 1; /* last byte kept for the newline */
	va_list ap;
	int r;

	if ((int)level > atomic_load(&current_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(line, cap, "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + off, cap - off, ".%03ldZ level=%s event=%s ", ts.tv_nsec / 1000000,
		     zt_log_level_name(level), event ? event : "unknown");
	advance(&off, r, cap);
	if (fmt) {
		va_start(ap, fmt);
		errno = saved_errno;
		r = vsnprintf(line + off, cap - off, fmt, ap);
		va_end(ap);
		if (r > 0 && (size_t)r >= cap - off && cap - off > 4)
			/* Truncated: say so rather than end a value mid-way silently. */
			memcpy(line + cap - 4, "...", 3);
		advance(&off, r, cap);
	}
	while (off > 0 && line[off - 1] == ' ')
		off--;
	line[off++] = '\n';
	while (write(STDERR_FILENO, line, off) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}

static bool needs_quotes(const unsigned char *p)
{
	if (!*p)
		return true;
	for (; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
			return true;
	return false;
}

/* The escaped form of one byte inside quotes; returns its length. */
static size_t escape(unsigned char c, char esc[5])
{
	switch (c) {
	case '"':
	case '\\':
		esc[0] = '\\';
		esc[1] = (char)c;
		return 2;
	case '\n':
		memcpy(esc, "\\n", 2);
		return 2;
	case '\r':
		memcpy(esc, "\\r", 2);
		return 2;
	case '\t':
		memcpy(esc, "\\t", 2);
		return 2;
	}
	if (c < ' ' || c >= 0x7f) {
		snprintf(esc, 5, "\\x%02x", c);
		return 4;
	}
	esc[0] = (char)c;
	return 1;
}

const char *zt_log_quote(char *buf, size_t n, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0, full = 2; /* the two quotes */
	char esc[5];

	if (!buf || n == 0)
		return buf;
	if (!needs_quotes(p)) {
		size_t len = strlen(s), dots = n - 1 < 3 ? n - 1 : 3;

		if (len < n) {
			memcpy(buf, s, len + 1);
		} else {
			memcpy(buf, s, n - 1 - dots);
			memset(buf + n - 1 - dots, '.', dots);
			buf[n - 1] = '\0';
		}
		return buf;
	}
	if (n < 3) {
		buf[0] = '\0'; /* not even "" fits */
		return buf;
	}
	for (const unsigned char *q = p; *q; q++)
		full += escape(*q, esc);
	buf[o++] = '"';
	for (; *p; p++) {
		size_t el = escape(*p, esc);

		/* Too long: keep room for `..."` and the NUL, never split an escape. */
		if (full + 1 > n && o + el + 5 > n) {
			size_t dots = n - o - 2 < 3 ? n - o - 2 : 3; /* fewer in a tiny buffer */

			memset(buf + o, '.', dots);
			o += dots;
			break;
		}
		memcpy(buf + o, esc, el);
		o += el;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
