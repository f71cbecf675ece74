/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One line per event on stderr, key=value:
 *   ts=2026-11-22T22:41:03.512Z level=info event=block_add cidr=198.18.0.1/32 ttl=600s
 * Library code never logs; the caller that handles an error logs it once.
 */
#ifndef ZT_LOG_H
#define ZT_LOG_H

#include <stddef.h>

enum zt_log_level {
	ZT_LOG_ERROR = 0,
	ZT_LOG_WARN,
	ZT_LOG_INFO,
	ZT_LOG_DEBUG,
};

void zt_log_set_level(enum zt_log_level level);
enum zt_log_level zt_log_get_level(void);
/* "error" | "warn" | "info" | "debug" -> 0, else -EINVAL. */
int zt_log_level_parse(const char *s, enum zt_log_level *out);
const char *zt_log_level_name(enum zt_log_level level);

/*
 * Writes "ts=... level=... event=EVENT " followed by the formatted rest
 * (which should itself be key=value pairs) and a newline, in one write(2)
 * so lines from several threads never interleave.
 */
void zt_log(enum zt_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Quotes a value for a key=value line when it needs it (space, '=', '"',
 * control or non-ASCII bytes): "a b" -> "\"a b\"", newline -> \n, other
 * bytes -> \xNN. Always NUL-terminates; truncates with "..." if too long.
 * Returns buf.
 */
const char *zt_log_quote(char *buf, size_t n, const char *s);

#define log_error(ev, ...) zt_log(ZT_LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...) zt_log(ZT_LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...) zt_log(ZT_LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...)                                     \
	do {                                                   \
		if (zt_log_get_level() >= ZT_LOG_DEBUG)        \
			zt_log(ZT_LOG_DEBUG, ev, __VA_ARGS__); \
	} while (0)

#endif
