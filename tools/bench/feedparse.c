// SPDX-License-Identifier: GPL-2.0-only
/*
 * feedparse: how fast each feed format parses. Generates N distinct
 * entries per format in memory, then times zt_feed_parse + zt_feed_finish
 * + zt_feed_subtract (the path from a completed download to the entries),
 * best of R runs, wall clock and CPU time (on a shared machine the CPU
 * time is the steadier figure). One line per format with entries/s.
 *
 *   build/tools/feedparse [N [R]]     (default 1000000 entries, 3 runs)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feeds/feed.h"

struct gen {
	char *buf;
	size_t len, cap;
};

static void put(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (g->cap - g->len < 512) {
		g->cap = g->cap ? g->cap * 2 : 1 << 20;
		g->buf = realloc(g->buf, g->cap);
		if (!g->buf) {
			perror("realloc");
			exit(1);
		}
	}
	va_start(ap, fmt);
	n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
	va_end(ap);
	g->len += (size_t)n;
}

/* The i-th address: distinct, spread over 11.0.0.0/8 (a public range, nothing subtracted). */
static void addr(size_t i, char *out, size_t n)
{
	snprintf(out, n, "11.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static void generate(enum zt_feed_format f, size_t n, struct gen *g)
{
	char a[32];

	switch (f) {
	case ZT_FEED_CIDR:
		put(g, "; generated DROP-like list\n");
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g, "%s/32 ; SBL%zu\n", a, 100000 + i % 5000);
		}
		break;
	case ZT_FEED_FIREHOL:
		put(g, "#\n# generated netset\n#\n");
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g, "%s\n", a);
		}
		break;
	case ZT_FEED_SPAMHAUS_JSON:
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g, "{\"cidr\":\"%s/32\",\"sblid\":\"SBL%zu\",\"rir\":\"ripencc\"}\n", a,
			    100000 + i % 5000);
		}
		put(g, "{\"type\":\"metadata\",\"records\":%zu}\n", n);
		break;
	case ZT_FEED_FEODO_CSV:
		put(g,
		    "# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n");
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g,
			    "\"2024-05-01 10:00:00\",\"%s\",\"%zu\",\"online\",\"2024-05-20\",\"%s\"\n",
			    a, 1 + i % 65535, i % 3 ? "Dridex" : "QakBot");
		}
		break;
	case ZT_FEED_STIX2:
		put(g, "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[");
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g,
			    "%s{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--00000000-0000-4000-8000-%012zx\","
			    "\"created\":\"2024-05-01T00:00:00.000Z\",\"modified\":\"2024-05-01T00:00:00.000Z\","
			    "\"pattern\":\"[ipv4-addr:value = '%s']\",\"pattern_type\":\"stix\","
			    "\"valid_from\":\"2024-05-01T00:00:00Z\",\"valid_until\":\"2099-01-01T00:00:00Z\"}",
			    i ? "," : "", i, a);
		}
		put(g, "]}\n");
		break;
	case ZT_FEED_MISP:
		put(g, "{\"Event\":{\"id\":\"1\",\"info\":\"generated\",\"Attribute\":[");
		for (size_t i = 0; i < n; i++) {
			addr(i, a, sizeof(a));
			put(g,
			    "%s{\"id\":\"%zu\",\"type\":\"ip-dst\",\"category\":\"Network activity\",\"to_ids\":true,"
			    "\"uuid\":\"5c1d2b4e-0000-4000-8000-%012zx\",\"value\":\"%s\",\"deleted\":false}",
			    i ? "," : "", i, i, a);
		}
		put(g, "]}}\n");
		break;
	default:
		break;
	}
}

static double now_s(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const enum zt_feed_format fmts[] = {
		ZT_FEED_CIDR,	   ZT_FEED_FIREHOL, ZT_FEED_SPAMHAUS_JSON,
		ZT_FEED_FEODO_CSV, ZT_FEED_STIX2,   ZT_FEED_MISP,
	};
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	int runs = argc > 2 ? atoi(argv[2]) : 3;

	if (!n || n > 16000000 || runs < 1) {
		fprintf(stderr, "usage: feedparse [ENTRIES (1..16000000) [RUNS]]\n");
		return 2;
	}
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		struct gen g = { 0 };
		double best = 1e9, best_cpu = 1e9;
		size_t got = 0;

		generate(fmts[f], n, &g);
		for (int r = 0; r < runs; r++) {
			struct zt_feed_parse_opts o = { .feed = "bench", .now_unix = 1716285600 };
			struct zt_feed_result res;
			double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID),
			       dt, dc;
			int err;

			if (zt_feed_result_init(&res, "bench"))
				return 1;
			err = zt_feed_parse(fmts[f], g.buf, g.len, &res, &o);
			if (!err)
				err = zt_feed_finish(&res, 0);
			if (!err)
				err = zt_feed_subtract(&res, NULL, 0);
			dt = now_s(CLOCK_MONOTONIC) - t0;
			dc = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
			if (err) {
				fprintf(stderr, "%s: %s\n", zt_feed_format_name(fmts[f]),
					res.error);
				return 1;
			}
			got = res.n;
			if (dt < best)
				best = dt;
			if (dc < best_cpu)
				best_cpu = dc;
			zt_feed_result_free(&res);
		}
		printf("format=%s entries=%zu bytes=%zu wall_s=%.3f cpu_s=%.3f entries_per_cpu_s=%.0f MiB_per_cpu_s=%.0f\n",
		       zt_feed_format_name(fmts[f]), got, g.len, best, best_cpu,
		       (double)got / best_cpu, (double)g.len / best_cpu / 1048576.0);
		fflush(stdout);
		free(g.buf);
	}
	return 0;
}
