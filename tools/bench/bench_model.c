// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_model: features + score per flow, as the daemon would run them off
 * the packet path: the source's window (zt_feat_window_add), the feature
 * vector (zt_features_compute) and the model (zt_model_score), over N
 * synthetic flow records from a few thousand sources. Prints ns per flow
 * for each step and for all three (target: <= 2000 ns), the per-call
 * p50/p99 of all three, and checks that the timed loop allocates nothing
 * (glibc's heap in use before and after).
 *
 *   build/tools/bench_model [MODEL [N [RUNS]]]   (default build/model.cbor, 200000, 5)
 */
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "detect/features.h"
#include "detect/model.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void make(struct zt_flow_record *r, size_t i)
{
	static const uint16_t ports[] = { 80, 443, 53, 22, 5432, 8080, 5201, 110, 3306, 60000 };
	uint32_t src = (uint32_t)(rnd() % 5000);

	memset(r, 0, sizeof(*r));
	r->kind = ZT_FLOW_KIND_FLOW;
	r->family = AF_INET;
	r->source_ip[0] = 198;
	r->source_ip[1] = 18;
	r->source_ip[2] = (uint8_t)(src >> 8);
	r->source_ip[3] = (uint8_t)src;
	r->dest_ip[0] = 198;
	r->dest_ip[1] = 19;
	r->dest_ip[3] = (uint8_t)(rnd() % 64);
	r->protocol = rnd() % 4 ? IPPROTO_TCP : IPPROTO_UDP;
	r->dest_port = rnd() % 8 ? ports[rnd() % 10] : (uint16_t)(rnd() % 65536);
	r->source_port = (uint16_t)(32768 + rnd() % 28000);
	r->present = ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT;
	r->packets_sent = (int64_t)(1 + rnd() % 200);
	r->packets_received = (int64_t)(rnd() % 200);
	r->bytes_sent = r->packets_sent * (int64_t)(40 + rnd() % 1400);
	r->bytes_received = r->packets_received * (int64_t)(40 + rnd() % 1400);
	r->duration_ms = (int64_t)(rnd() % 60000);
	r->tcp_flags = (uint8_t)(rnd() & 0x1f);
	r->start_time_us = 1700000000000000LL + (int64_t)i * 50;
	r->end_time_us = r->start_time_us + r->duration_ms * 1000;
	snprintf(r->direction, sizeof(r->direction), "%s", rnd() % 4 ? "ingress" : "egress");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "build/model.cbor";
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
	int runs = argc > 3 ? atoi(argv[3]) : 5;
	struct zt_flow_record *recs;
	struct zt_feat_window *w;
	struct zt_model *m;
	struct zt_model_info info;
	float *xs;
	uint64_t *lat;
	double best_f = 1e30, best_s = 1e30, best_all = 1e30;
	struct mallinfo2 before, after;
	char err[512];
	volatile float sink = 0;

	if (n == 0 || runs <= 0) {
		fprintf(stderr, "usage: bench_model [MODEL [N [RUNS]]]\n");
		return 2;
	}
	if (zt_model_load(path, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_model: %s (make it with `make train`)\n", err);
		return 1;
	}
	zt_model_get_info(m, &info);
	recs = calloc(n, sizeof(*recs));
	xs = calloc(n * ZT_F_COUNT, sizeof(*xs));
	lat = calloc(n, sizeof(*lat));
	if (!recs || !xs || !lat || zt_feat_window_new(0, 0, &w) < 0) {
		fprintf(stderr, "bench_model: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		make(&recs[i], i);
	printf("model %s: %u trees, %u nodes, %u classes; %zu flows from 5000 sources, best of %d\n",
	       path, info.n_trees, info.n_nodes, info.n_classes, n, runs);

	before = mallinfo2();
	for (int k = 0; k < runs; k++) {
		struct zt_feat_src src;
		struct zt_model_result res;
		uint64_t t0 = now_ns(), t1, t2, t3;

		for (size_t i = 0; i < n; i++) {
			zt_feat_window_add(w, &recs[i], NULL, &src);
			zt_features_compute(&recs[i], NULL, &src, &xs[i * ZT_F_COUNT]);
		}
		t1 = now_ns();
		for (size_t i = 0; i < n; i++) {
			zt_model_score(m, &xs[i * ZT_F_COUNT], &res);
			sink += res.score;
		}
		t2 = now_ns();
		for (size_t i = 0; i < n; i++) {
			float x[ZT_F_COUNT];

			zt_feat_window_add(w, &recs[i], NULL, &src);
			zt_features_compute(&recs[i], NULL, &src, x);
			zt_model_score(m, x, &res);
			sink += res.score;
		}
		t3 = now_ns();
		if ((double)(t1 - t0) / n < best_f)
			best_f = (double)(t1 - t0) / n;
		if ((double)(t2 - t1) / n < best_s)
			best_s = (double)(t2 - t1) / n;
		if ((double)(t3 - t2) / n < best_all)
			best_all = (double)(t3 - t2) / n;
	}
	/* Per call, clock reads included (about 20-40 ns of each figure). */
	for (size_t i = 0; i < n; i++) {
		struct zt_feat_src src;
		struct zt_model_result res;
		float x[ZT_F_COUNT];
		uint64_t t0 = now_ns();

		zt_feat_window_add(w, &recs[i], NULL, &src);
		zt_features_compute(&recs[i], NULL, &src, x);
		zt_model_score(m, x, &res);
		lat[i] = now_ns() - t0;
		sink += res.score;
	}
	after = mallinfo2();
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("window + features:    %7.1f ns/flow\n", best_f);
	printf("score:                %7.1f ns/flow\n", best_s);
	printf("features + score:     %7.1f ns/flow   (target <= 2000 ns: %s)\n", best_all,
	       best_all <= 2000 ? "met" : "NOT met");
	printf("per call, timed:      p50 %llu ns, p99 %llu ns, max %llu ns\n",
	       (unsigned long long)lat[n / 2], (unsigned long long)lat[n * 99 / 100],
	       (unsigned long long)lat[n - 1]);
	printf("heap in use before/after the timed loops: %zu / %zu bytes (%s)\n", before.uordblks,
	       after.uordblks,
	       before.uordblks == after.uordblks ? "no allocation per flow" : "ALLOCATES");
	zt_feat_window_free(w);
	zt_model_free(m);
	free(recs);
	free(xs);
	free(lat);
	return before.uordblks == after.uordblks ? 0 : 1;
}
