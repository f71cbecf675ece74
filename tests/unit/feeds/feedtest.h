/* SPDX-License-Identifier: GPL-2.0-only */
/* Helpers for the feed tests: fixtures, entry lookups, problem lookups. */
#ifndef ZT_TEST_FEEDTEST_H
#define ZT_TEST_FEEDTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feeds/feed.h"

/* Fixtures live in the source tree; tests run from its root (tests/run.sh cds there). */
#define FIXTURES "tests/fixtures/feeds"

/* The whole fixture file, in a malloc'd buffer (not NUL-terminated for the parser). */
static inline char *fixture(const char *name, size_t *len)
{
	char path[512];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fixture %s: %s (run from the repository root)\n", path,
			strerror(errno));
		abort();
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
		abort();
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* The entry for prefix s (and port), or NULL. */
static inline const struct zt_feed_entry *find_entry(const struct zt_feed_result *r, const char *s,
						     uint16_t port)
{
	struct zt_cidr c;

	if (zt_cidr_parse(s, &c, NULL) < 0)
		abort();
	for (size_t i = 0; i < r->n; i++) {
		const struct zt_feed_entry *e = &r->entries[i];

		if (e->cidr.family == c.family && e->cidr.prefixlen == c.prefixlen &&
		    !memcmp(e->cidr.addr, c.addr, 16) && e->port == port)
			return e;
	}
	return NULL;
}

/* The problem reported at line whose reason contains what, or NULL. */
static inline const struct zt_feed_problem *find_problem(const struct zt_feed_result *r,
							 uint32_t line, const char *what)
{
	for (size_t i = 0; i < r->n_problems; i++)
		if (r->problems[i].line == line && strstr(r->problems[i].reason, what))
			return &r->problems[i];
	return NULL;
}

static inline void dump_problems(const struct zt_feed_result *r)
{
	char buf[512];

	for (size_t i = 0; i < r->n_problems; i++) {
		zt_feed_problem_format(r, &r->problems[i], buf, sizeof(buf));
		fprintf(stderr, "  %s\n", buf);
	}
}

#endif
