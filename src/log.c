// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int current_level = ZT_LOG_INFO;

static const char *const level_names[] = {
	[ZT_LOG_ERROR] = "error",
	[ZT_LOG_WARN] = "warn",
	[ZT_LOG_INFO] = "info",
	[ZT_LOG_DEBUG] = "debug",
};

void zt_log_set_level(enum zt_log_level level)
{
	atomic_store(&current_level, (int)level);
}

enum zt_log_level zt_log_get_level(void)
{
	return (enum zt_log_level)atomic_load(&current_level);
}

int zt_log_level_parse(const char *s, enum zt_log_level *out)
{
	for (int i = ZT_LOG_ERROR; i <= ZT_LOG_DEBUG; i++)
		if (s && strcmp(s, level_names[i]) == 0) {
			*out = (enum zt_log_level)i;
			return 0;
		}
	return -EINVAL;
}

const char *zt_log_level_name(enum zt_log_level level)
{
	return level <= ZT_LOG_DEBUG ? level_names[level] : "unknown";
}

void zt_log(enum zt_log_level level, const char *event, const char *fmt, ...)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t off;
	va_list ap;
	int r;

	if ((int)level > atomic_load(&current_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + off, sizeof(line) - off, ".%03ldZ level=%s event=%s ",
		     ts.tv_nsec / 1000000, zt_log_level_name(level), event);
	if (r > 0)
		off += (size_t)r < sizeof(line) - off ? (size_t)r : sizeof(line) - off - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	if (r > 0)
		off += (size_t)r < sizeof(line) - off ? (size_t)r : sizeof(line) - off - 1;
	while (off > 0 && line[off - 1] == ' ')
		off--;
	if (off >= sizeof(line) - 1)
		off = sizeof(line) - 2;
	line[off++] = '\n';
	/* One write per line: lines from several threads never interleave. */
	while (write(STDERR_FILENO, line, off) < 0 && errno == EINTR)
		;
}

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
			return true;
	return false;
}

const char *zt_log_quote(char *buf, size_t n, const char *s)
{
	size_t o = 0;

	if (n == 0)
		return buf;
	if (!s)
		s = "";
	if (!needs_quotes(s)) {
		snprintf(buf, n, "%s", s);
		if (strlen(s) >= n && n > 4)
			memcpy(buf + n - 4, "...", 4);
		return buf;
	}
	if (n < 3) {
		buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[5];
		size_t el;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			el = 2;
		} else if (*p == '\n') {
			memcpy(esc, "\\n", 2);
			el = 2;
		} else if (*p == '\t') {
			memcpy(esc, "\\t", 2);
			el = 2;
		} else if (*p < ' ' || *p >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
			el = 4;
		} else {
			esc[0] = (char)*p;
			el = 1;
		}
		/* Keep room for "...\"" and the NUL. */
		if (o + el + 5 > n) {
			if (o + 5 <= n) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(buf + o, esc, el);
		o += el;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
