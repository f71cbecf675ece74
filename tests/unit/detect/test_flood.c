// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: sketch-based flood detection. Floods by source (SYN, UDP,
 * ICMP) and by destination (random sources) are decided within 100 ms of
 * their start; a client opening thousands of connections that complete,
 * a DNS burst and a bulk TCP transfer are not floods.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ztagent.h"
#include "detect/flood.h"
#include "detect/sketch.h"
#include "dtest.h"

enum src_mode {
	ONE_SOURCE,
	RANDOM_SOURCES,
	FEW_SOURCES, /* 50 clients */
};

struct flood_case {
	const char *name;
	enum zt_flood_kind kind;
	enum src_mode src;
	uint32_t pps;
	double seconds;
	bool handshakes; /* each SYN followed by a completed handshake */
	int want_role; /* -1: no decision at all */
	uint64_t want_within_ns;
};

static const struct flood_case cases[] = {
	{ "SYN flood, one source, 100k/s", ZT_FLOOD_SYN, ONE_SOURCE, 100000, 0.5, false,
	  ZT_ROLE_SOURCE, 100 * MS },
	{ "SYN flood, one source, 10k/s", ZT_FLOOD_SYN, ONE_SOURCE, 10000, 0.5, false,
	  ZT_ROLE_SOURCE, 250 * MS },
	{ "SYN flood, random sources, 200k/s", ZT_FLOOD_SYN, RANDOM_SOURCES, 200000, 0.5, false,
	  ZT_ROLE_DESTINATION, 100 * MS },
	{ "UDP flood, one source, 100k/s", ZT_FLOOD_UDP, ONE_SOURCE, 100000, 0.5, false,
	  ZT_ROLE_SOURCE, 100 * MS },
	{ "ICMP flood, one source, 20k/s", ZT_FLOOD_ICMP, ONE_SOURCE, 20000, 0.5, false,
	  ZT_ROLE_SOURCE, 100 * MS },
	{ "benign: 5000 connections/s that complete", ZT_FLOOD_SYN, ONE_SOURCE, 5000, 2.0, true, -1,
	  0 },
	{ "benign: DNS burst, 8000 queries in a second", ZT_FLOOD_UDP, ONE_SOURCE, 8000, 1.0, false,
	  -1, 0 },
	{ "benign: DNS from 50 clients to one resolver, 3000/s each", ZT_FLOOD_UDP, FEW_SOURCES,
	  150000, 1.0, false, -1, 0 },
	{ "benign: bulk TCP transfer, 800k packets/s", ZT_FLOOD_ALL, ONE_SOURCE, 800000, 0.5, false,
	  -1, 0 },
	{ "benign: ping at 10/s", ZT_FLOOD_ICMP, ONE_SOURCE, 10, 5.0, false, -1, 0 },
};

static void run_case(const struct flood_case *c)
{
	struct zt_flood_params p;
	struct zt_flood *f;
	struct zt_decision d[2];
	uint8_t src[16], dst[16];
	uint64_t seed = 99, start = 5000 * SEC + 123 * MS, step = SEC / c->pps;
	uint64_t n = (uint64_t)(c->pps * c->seconds);
	bool decided = false;
	int src_decisions = 0, dst_decisions = 0;

	zt_flood_defaults(&p);
	assert_int_equal(zt_flood_new(&p, &f), 0);
	ip4(dst, 198, 18, 1, 80);
	ip4(src, 203, 0, 113, 66);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t ts = start + i * step;
		int nd;

		if (c->src == RANDOM_SOURCES) {
			uint64_t r = rnd_next(&seed);

			ip4(src, (uint8_t)(1 + r % 200), (uint8_t)(r >> 8), (uint8_t)(r >> 16),
			    (uint8_t)(r >> 24));
		} else if (c->src == FEW_SOURCES) {
			host(src, (uint32_t)(i % 50));
		}
		nd = zt_flood_add(f, 4, src, dst, c->kind, 1, ts, d);
		if (c->handshakes) {
			struct zt_decision d2[2];

			nd += zt_flood_add(f, 4, src, dst, ZT_FLOOD_SYN_DONE, 1, ts + 200000, d2);
		}
		for (int k = 0; k < nd; k++) {
			if (c->want_role < 0)
				fail_msg("%s: decided %s at packet %llu: %s", c->name,
					 d[k].role ? "destination" : "source",
					 (unsigned long long)i, d[k].evidence);
			assert_int_equal(d[k].threat, ZT_THREAT_FLOOD);
			if (d[k].role == ZT_ROLE_SOURCE)
				src_decisions++;
			else
				dst_decisions++;
			if (d[k].role == c->want_role && !decided) {
				decided = true;
				if (ts - start > c->want_within_ns)
					fail_msg("%s: decided after %.1f ms, want within %.1f ms",
						 c->name, (double)(ts - start) / 1e6,
						 (double)c->want_within_ns / 1e6);
				assert_true(d[k].score >= 0.79f);
				assert_string_equal(d[k].subtype, zt_flood_kind_name(c->kind));
				if (d[k].role == ZT_ROLE_DESTINATION)
					assert_memory_equal(d[k].addr, dst, 4);
				else
					assert_memory_equal(d[k].addr, src, 4);
			}
		}
	}
	if (c->want_role >= 0 && !decided)
		fail_msg("%s: no decision", c->name);
	/* Random sources never make a source decision: each sends a handful. */
	if (c->src == RANDOM_SOURCES)
		assert_int_equal(src_decisions, 0);
	/* Once per key per window (and the window is short enough for 100 ms). */
	assert_true(p.window_ns <= 100 * MS);
	if (c->want_role == ZT_ROLE_SOURCE)
		assert_true(src_decisions <= (int)(c->seconds * 1e9 / (double)p.window_ns + 2));
	(void)dst_decisions;
	zt_flood_free(f);
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  case: %s\n", cases[i].name);
		run_case(&cases[i]);
	}
}

/* Counts the kernel made: over the threshold for their window, or not. */
static void test_samples(void **state)
{
	struct zt_flood_params p;
	struct zt_flood *f;
	struct zt_decision d;
	struct zt_rate_sample s = { .family = 4,
				    .role = ZT_ROLE_SOURCE,
				    .kind = ZT_FLOOD_SYN,
				    .window_ns = 100 * MS,
				    .ts_ns = 77 * SEC };

	zt_flood_defaults(&p);
	assert_int_equal(zt_flood_new(&p, &f), 0);
	ip4(s.addr, 203, 0, 113, 1);
	s.count = 150; /* 1500/s < 2000/s */
	assert_int_equal(zt_flood_sample(f, &s, &d), 0);
	s.count = 250; /* 2500/s */
	assert_int_equal(zt_flood_sample(f, &s, &d), 1);
	assert_int_equal(d.threat, ZT_THREAT_FLOOD);
	assert_true(d.value == 250 && d.threshold == 200);
	assert_int_equal(d.window_ns, 100 * MS);
	/*
	 * A count over a shorter span needs rate x window all the same: wrk
	 * -c 400 opening its connections at once, 199 left half-open by a full
	 * accept queue in 16 ms, is a burst; 200 is a flood's evidence.
	 */
	s.window_ns = 16 * MS;
	s.count = 199;
	assert_int_equal(zt_flood_sample(f, &s, &d), 0);
	s.count = 200;
	assert_int_equal(zt_flood_sample(f, &s, &d), 1);
	assert_true(d.value == 200 && d.threshold == 200);
	assert_int_equal(d.window_ns, 100 * MS);
	assert_non_null(strstr(d.evidence, "in 0.016s of a 0.100s window"));
	/* Over a longer span, its rate: 450 in 200 ms is over 2000/s, 350 is not. */
	s.window_ns = 200 * MS;
	s.count = 350;
	assert_int_equal(zt_flood_sample(f, &s, &d), 0);
	s.count = 450;
	assert_int_equal(zt_flood_sample(f, &s, &d), 1);
	assert_true(d.threshold == 400);
	s.window_ns = 100 * MS;
	s.kind = ZT_FLOOD_ALL; /* off by default */
	s.count = 1000000;
	assert_int_equal(zt_flood_sample(f, &s, &d), 0);
	/* Segments of no connection, counted by the resets the node sent: 5000/s by default. */
	s.kind = ZT_FLOOD_OUT_OF_STATE;
	s.count = 450;
	assert_int_equal(zt_flood_sample(f, &s, &d), 0);
	s.count = 520;
	assert_int_equal(zt_flood_sample(f, &s, &d), 1);
	assert_int_equal(d.threat, ZT_THREAT_FLOOD);
	assert_int_equal(d.role, ZT_ROLE_SOURCE);
	assert_string_equal(d.subtype, "out-of-state");
	assert_int_equal(d.proto, 6);
	assert_true(d.value == 520 && d.threshold == 500);
	assert_non_null(strstr(d.evidence, "no connection"));
	assert_string_equal(zt_flood_kind_name(ZT_FLOOD_OUT_OF_STATE), "out-of-state");
	zt_flood_free(f);
}

/*
 * A source's half-open count (include/ztagent.h, zt_halfopen, which the
 * guard's signal and the daemon's SYN sample both use): the SYNs answered
 * and not completed count, those nobody answered less
 * ZT_UNANSWERED_PER_ANSWER for each completed one; never more than the
 * old estimate (SYNs less ACKs alone).
 */
static void test_halfopen(void **state)
{
	(void)state;
	/* wrk -t2 -c400 at python3 -m http.server (backlog 5), at 25 and 50 ms. */
	assert_int_equal(zt_halfopen(239, 14, 15), 0);
	assert_int_equal(zt_halfopen(401, 21, 22), 0);
	/* A flooder: every SYN answered, nothing completed; or nothing answered. */
	assert_int_equal(zt_halfopen(5000, 5000, 0), 5000);
	assert_int_equal(zt_halfopen(5000, 0, 0), 5000);
	/* Nothing known of answers: SYNs less ACKs alone, as before. */
	assert_int_equal(zt_halfopen(500, 0, 120), 380);
	assert_int_equal(zt_halfopen(100, 0, 300), 0);
	/* One completed handshake excuses 64 unanswered SYNs, no more. */
	assert_int_equal(zt_halfopen(200, 1, 1), 200 - 1 - ZT_UNANSWERED_PER_ANSWER);
	/*
	 * Answered and not completed (yet: the client's ACKs can lag its
	 * SYN-ACKs by ms) count in full; the unanswered, 64 per completed.
	 */
	assert_int_equal(zt_halfopen(227, 67, 6), 61);
	assert_int_equal(zt_halfopen(200, 40, 2), 38 + 160 - 128);
	/* ACKs beyond the answered (a download's) still lower the old estimate. */
	assert_int_equal(zt_halfopen(300, 0, 250), 50);
	assert_int_equal(zt_halfopen(300, 2, 250), 50);
	/* Retransmitted SYN-ACKs never make more answered than SYNs. */
	assert_int_equal(zt_halfopen(10, 30, 10), 0);
	assert_int_equal(zt_halfopen(10, 30, 0), 10);
	/* No overflow at the extremes. */
	assert_int_equal(zt_halfopen(0xffffffffu, 0xffffffffu / 8, 0xffffffffu / 8), 0);
	assert_int_equal(zt_halfopen(0xffffffffu, 0x3ffffffu, 0x3ffffffu), 0);
	assert_int_equal(zt_halfopen(0xffffffffu, 256, 256), 0xffffffffu - 256 - 256 * 64);
	assert_int_equal(zt_halfopen(0xffffffffu, 0xffffffffu, 0), 0xffffffffu);
	assert_int_equal(zt_halfopen(0, 0, 0), 0);
}

/* A count-min sketch never underestimates, and stays close under many keys. */
static void test_sketch(void **state)
{
	struct zt_sketch s;
	uint32_t truth[2000] = { 0 };
	uint64_t seed = 7, over = 0;

	assert_int_equal(zt_sketch_init(&s, 4, 4096), 0);
	for (int i = 0; i < 200000; i++) {
		uint32_t k = (uint32_t)(rnd_next(&seed) % 2000);

		if (k < 10)
			k = 0; /* one heavy key */
		truth[k]++;
		zt_sketch_add(&s, &k, sizeof(k), 1);
	}
	for (uint32_t k = 0; k < 2000; k++) {
		uint32_t e = zt_sketch_estimate(&s, &k, sizeof(k));

		assert_true(e >= truth[k]);
		over += e - truth[k];
	}
	/* e/width of the total per key at most, on average far less. */
	assert_true(over / 2000 < 200000 * 3 / 4096);
	zt_sketch_free(&s);
	assert_int_equal(zt_sketch_init(&s, 4, 1000), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_sketch),
		cmocka_unit_test(test_halfopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
