// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: threshold random walk scan detection. Scanners (horizontal,
 * vertical, with some open ports) are flagged within 10 probes; benign
 * clients (occasional failures, a service that is down, DNS, many short
 * requests to one server) never are.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "detect/dtable.h"
#include "detect/trw.h"
#include "dtest.h"

enum pattern {
	P_HSCAN, /* new host each probe, one port */
	P_VSCAN, /* one host, new port each probe */
	P_SAME, /* one host, one port, again and again */
	P_RANDHOSTS, /* new host each probe, few ports */
};

struct trw_case {
	const char *name;
	enum pattern pat;
	int probes;
	double fail_p; /* probability a probe fails (seeded) */
	int open_every; /* > 0: every Nth probe succeeds, the rest fail (overrides fail_p) */
	int want_flag_by; /* 0: must never be flagged; else flagged at or before this probe */
	const char *want_subtype;
};

static const struct trw_case cases[] = {
	{ "horizontal scan, everything closed", P_HSCAN, 200, 1.0, 0, 10, "horizontal" },
	{ "horizontal scan, one host in 5 open", P_HSCAN, 200, 0, 5, 10, "horizontal" },
	{ "horizontal scan, one host in 3 open", P_HSCAN, 200, 0, 3, 10, "horizontal" },
	{ "vertical scan of one host", P_VSCAN, 1000, 1.0, 0, 10, "vertical" },
	{ "vertical scan, one port in 4 open", P_VSCAN, 1000, 0, 4, 10, "vertical" },
	{ "benign: 2% of new hosts fail", P_RANDHOSTS, 2000, 0.02, 0, 0, NULL },
	{ "benign: 5% of new hosts fail", P_RANDHOSTS, 500, 0.05, 0, 0, NULL },
	{ "benign: one service down, retried 1000 times", P_SAME, 1000, 1.0, 0, 0, NULL },
	{ "benign: many short requests to one server", P_SAME, 5000, 0.0, 0, 0, NULL },
	{ "benign: DNS queries to one resolver, 1% lost", P_SAME, 5000, 0.01, 0, 0, NULL },
};

static void run_case(const struct trw_case *c)
{
	struct zt_trw_params p;
	struct zt_trw *t;
	struct zt_decision d;
	uint8_t src[16];
	uint64_t seed = 0x1234567 + (uint64_t)c->pat;
	int flagged_at = 0;

	zt_trw_defaults(&p);
	assert_int_equal(zt_trw_new(&p, &t), 0);
	ip4(src, 203, 0, 113, 9);
	for (int i = 1; i <= c->probes; i++) {
		struct zt_probe pr = { .family = 4, .proto = 6, .ts_ns = 1000 * SEC + i * MS };
		bool fail;

		memcpy(pr.src, src, 16);
		switch (c->pat) {
		case P_HSCAN:
			host(pr.dst, (uint32_t)i);
			pr.dport = 22;
			break;
		case P_VSCAN:
			ip4(pr.dst, 198, 18, 1, 5);
			pr.dport = (uint16_t)i;
			break;
		case P_SAME:
			ip4(pr.dst, 198, 18, 1, 5);
			pr.dport = 443;
			break;
		case P_RANDHOSTS:
			host(pr.dst, (uint32_t)i);
			pr.dport = (uint16_t)(i % 3 ? 443 : 80);
			break;
		}
		fail = c->open_every ? (i % c->open_every) != 0 : rnd_unit(&seed) < c->fail_p;
		pr.outcome = fail ? (i % 2 ? ZT_PROBE_FAIL_RST : ZT_PROBE_FAIL_TIMEOUT) :
				    ZT_PROBE_SUCCESS;
		if (zt_trw_observe(t, &pr, &d) && !flagged_at) {
			flagged_at = i;
			assert_int_equal(d.threat, ZT_THREAT_SCAN);
			assert_int_equal(d.role, ZT_ROLE_SOURCE);
			assert_memory_equal(d.addr, src, 4);
			assert_true(d.score >= 0.98f && d.score <= 1.0f);
			assert_true(d.value >= d.threshold);
			assert_true(d.flows > 0 && d.flows <= (uint64_t)i);
			assert_true(strstr(d.evidence, "first contacts") != NULL);
			if (c->want_subtype)
				assert_string_equal(d.subtype, c->want_subtype);
		}
	}
	if (c->want_flag_by) {
		if (!flagged_at || flagged_at > c->want_flag_by)
			fail_msg("%s: flagged at probe %d, want by %d", c->name, flagged_at,
				 c->want_flag_by);
	} else if (flagged_at) {
		fail_msg("%s: benign source flagged at probe %d", c->name, flagged_at);
	}
	zt_trw_free(t);
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  case: %s\n", cases[i].name);
		run_case(&cases[i]);
	}
}

/* The paper's numbers: steps of +-ln 4, bounds +-ln 99. */
static void test_bounds(void **state)
{
	struct zt_trw_params p;
	struct zt_trw *t;
	double up, down, ok, fail;

	zt_trw_defaults(&p);
	assert_int_equal(zt_trw_new(&p, &t), 0);
	zt_trw_bounds(t, &up, &down, &ok, &fail);
	assert_true(fabs(up - log(99)) < 1e-9);
	assert_true(fabs(down + log(99)) < 1e-9);
	assert_true(fabs(ok + log(4)) < 1e-9);
	assert_true(fabs(fail - log(4)) < 1e-9);
	zt_trw_free(t);
	/* Hypotheses the wrong way round are refused. */
	p.theta1 = 0.9;
	assert_int_equal(zt_trw_new(&p, &t), -EINVAL);
	zt_trw_defaults(&p);
	p.alpha = 0.999;
	assert_int_equal(zt_trw_new(&p, &t), -EINVAL);
}

/* A scan that goes on decides again (the incident grows); quiet sources are forgotten. */
static void test_repeat_and_expire(void **state)
{
	struct zt_trw_params p;
	struct zt_trw *t;
	struct zt_decision d;
	struct zt_trw_stats st;
	int decisions = 0;

	zt_trw_defaults(&p);
	assert_int_equal(zt_trw_new(&p, &t), 0);
	for (int i = 1; i <= 40; i++) {
		struct zt_probe pr = { .family = 4,
				       .proto = 6,
				       .dport = 80,
				       .outcome = ZT_PROBE_FAIL_TIMEOUT,
				       .ts_ns = i * MS };

		ip4(pr.src, 203, 0, 113, 7);
		host(pr.dst, (uint32_t)i);
		decisions += zt_trw_observe(t, &pr, &d);
	}
	assert_int_equal(decisions, 10); /* every 4th failure */
	zt_trw_get_stats(t, &st);
	assert_int_equal(st.sources, 1);
	zt_trw_expire(t, 700 * SEC);
	zt_trw_get_stats(t, &st);
	assert_int_equal(st.sources, 0);
	assert_int_equal(st.pairs, 0);
	zt_trw_free(t);
}

/*
 * A timeout is judged seconds after the probe, so outcomes reach the walk
 * out of order: the evidence's window is the span from the earliest to the
 * latest probe, never a wrapped difference.
 */
static void test_out_of_order_window(void **state)
{
	static const int at_ms[] = { 900, 100, 700, 300, 500, 200 };
	struct zt_trw_params p;
	struct zt_trw *t;
	struct zt_decision d;
	int decided = 0;

	(void)state;
	zt_trw_defaults(&p);
	assert_int_equal(zt_trw_new(&p, &t), 0);
	for (size_t i = 0; i < sizeof(at_ms) / sizeof(at_ms[0]) && !decided; i++) {
		struct zt_probe pr = { .family = 4,
				       .proto = 6,
				       .outcome = ZT_PROBE_FAIL_TIMEOUT,
				       .ts_ns = 1000 * SEC + (uint64_t)at_ms[i] * MS };

		ip4(pr.src, 203, 0, 113, 8);
		ip4(pr.dst, 198, 18, 1, 5);
		pr.dport = (uint16_t)(1000 + i);
		decided = zt_trw_observe(t, &pr, &d);
	}
	assert_true(decided);
	assert_string_equal(d.subtype, "vertical");
	/* flagged at the 4th failure: probes at 900, 100, 700, 300 ms */
	assert_int_equal(d.first_ns, 1000 * SEC + 100 * MS);
	assert_int_equal(d.window_ns, 800 * MS);
	assert_non_null(strstr(d.evidence, "failed in 0.800s"));
	zt_trw_free(t);
}

/* Many scanners at once: memory stays within max_sources; the rest are counted as dropped. */
static void test_bounded(void **state)
{
	struct zt_trw_params p;
	struct zt_trw *t;
	struct zt_decision d;
	struct zt_trw_stats st;

	zt_trw_defaults(&p);
	p.max_sources = 100;
	p.max_pairs = 100;
	assert_int_equal(zt_trw_new(&p, &t), 0);
	for (uint32_t i = 0; i < 1000; i++) {
		struct zt_probe pr = { .family = 6,
				       .proto = 17,
				       .dport = 53,
				       .outcome = ZT_PROBE_FAIL_UNREACH,
				       .ts_ns = i };

		pr.src[0] = 0x20;
		pr.src[1] = 0x01;
		pr.src[14] = (uint8_t)(i >> 8);
		pr.src[15] = (uint8_t)i;
		pr.dst[0] = 0xfd;
		zt_trw_observe(t, &pr, &d);
	}
	zt_trw_get_stats(t, &st);
	assert_int_equal(st.sources, 100);
	assert_int_equal(st.pairs, 100);
	/* Full tables make room (see test_spoofed_flood_then_scan) instead of refusing. */
	assert_int_equal(st.dropped, 0);
	assert_true(st.evicted >= 1800);
	zt_trw_free(t);
}

/*
 * A random-source flood's spoofed sources (one failed first contact each,
 * far more than the tables hold) must not blind the walks of a scanner
 * that starts during it or after it: with tables that refused newcomers
 * once full, neither scanner below was ever flagged.
 */
static void test_spoofed_flood_then_scan(void **state)
{
	struct zt_trw_params p;
	struct zt_trw *t;
	struct zt_decision d;
	struct zt_trw_stats st;
	uint64_t ts = 1000 * SEC;
	uint32_t spoof = 0;
	int vflag = 0, hflag = 0, spoof_flags = 0;

	zt_trw_defaults(&p);
	p.max_sources = 256;
	p.max_pairs = 256;
	assert_int_equal(zt_trw_new(&p, &t), 0);
	/* flood (phase 0), then a vertical scanner amid it (1), then a horizontal one after it (2) */
	for (int phase = 0; phase < 3; phase++) {
		for (int i = 1; i <= 5000; i++) {
			struct zt_probe pr = { .family = 4, .proto = 17, .ts_ns = ts += MS };

			if (phase < 2) {
				spoof++;
				ip4(pr.src, 10, (uint8_t)(spoof >> 16), (uint8_t)(spoof >> 8),
				    (uint8_t)spoof);
				ip4(pr.dst, 198, 18, 2, 40);
				pr.dport = (uint16_t)(1 + spoof % 60000);
				pr.outcome = ZT_PROBE_FAIL_TIMEOUT;
				if (zt_trw_observe(t, &pr, &d))
					spoof_flags++;
			}
			if (phase == 1 && i % 50 == 0 && !vflag) {
				/* every 50th probe: the scanner's next port */
				ip4(pr.src, 198, 18, 0, 10);
				pr.proto = 6;
				pr.dport = (uint16_t)(i / 50);
				pr.outcome = ZT_PROBE_FAIL_RST;
				if (zt_trw_observe(t, &pr, &d)) {
					vflag = i / 50;
					assert_string_equal(d.subtype, "vertical");
				}
			}
			if (phase == 2 && i <= 100 && !hflag) {
				ip4(pr.src, 198, 18, 0, 11);
				host(pr.dst, (uint32_t)i);
				pr.proto = 6;
				pr.dport = 22;
				pr.outcome = ZT_PROBE_FAIL_TIMEOUT;
				if (zt_trw_observe(t, &pr, &d)) {
					hflag = i;
					assert_string_equal(d.subtype, "horizontal");
				}
			}
		}
	}
	zt_trw_get_stats(t, &st);
	if (!vflag || vflag > 10 || !hflag || hflag > 10)
		fail_msg("vertical scanner flagged at its probe %d, horizontal at %d (want 1..10); "
			 "sources %llu, dropped %llu, evicted %llu",
			 vflag, hflag, (unsigned long long)st.sources,
			 (unsigned long long)st.dropped, (unsigned long long)st.evicted);
	/* One failure each: no spoofed source is a scanner. */
	assert_int_equal(spoof_flags, 0);
	assert_int_equal(st.sources, 256);
	zt_trw_free(t);
}

/* The table: inserts, finds, deletes with backward shift, refuses past max. */
static void test_dtable(void **state)
{
	struct zt_dtable tb;
	uint32_t key;
	bool created;
	size_t pos = 0, seen = 0;
	void *e;

	assert_int_equal(zt_dtable_init(&tb, 1000, 4, 16, 7), 0);
	for (key = 0; key < 1000; key++) {
		uint32_t *v = zt_dtable_get(&tb, &key, &created);

		assert_non_null(v);
		assert_true(created);
		v[1] = key * 3;
	}
	key = 5000;
	assert_null(zt_dtable_get(&tb, &key, &created));
	for (key = 0; key < 1000; key += 2)
		zt_dtable_del(&tb, zt_dtable_find(&tb, &key));
	for (key = 0; key < 1000; key++) {
		uint32_t *v = zt_dtable_find(&tb, &key);

		if (key % 2)
			assert_true(v && v[1] == key * 3);
		else
			assert_null(v);
	}
	while ((e = zt_dtable_next(&tb, &pos))) {
		seen++;
		if (((uint32_t *)e)[0] % 4 == 1)
			zt_dtable_del_at(&tb, &pos);
	}
	assert_true(seen >= 500);
	assert_int_equal(tb.n, 250);
	for (key = 3; key < 1000; key += 4)
		assert_non_null(zt_dtable_find(&tb, &key));
	zt_dtable_free(&tb);
}

/* The test entries' worth: their second word. */
static uint64_t worth_v1(const void *e, void *arg)
{
	(void)arg;
	return ((const uint32_t *)e)[1];
}

static void count_gone(const void *e, void *arg)
{
	uint32_t *low_gone = arg;

	*low_gone += ((const uint32_t *)e)[1] == 0;
	low_gone[1]++;
}

/* zt_dtable_get_evict: a full table makes room, mostly with the entries worth least. */
static void test_dtable_evict(void **state)
{
	struct zt_dtable tb;
	uint32_t key, kept = 0, gone[2] = { 0, 0 };
	bool created;

	assert_int_equal(zt_dtable_init(&tb, 1000, 4, 16, 9), 0);
	for (key = 0; key < 1000; key++) {
		uint32_t *v = zt_dtable_get_evict(&tb, &key, &created, worth_v1, count_gone, gone);

		assert_true(v && created);
		v[1] = key % 2 ? 1000 : 0; /* odd keys are worth keeping */
	}
	assert_int_equal(tb.evicted, 0);
	/* Present: found, not evicted for. */
	key = 7;
	assert_non_null(zt_dtable_get_evict(&tb, &key, &created, worth_v1, count_gone, gone));
	assert_false(created);
	for (key = 1000; key < 1200; key++) {
		uint32_t *v = zt_dtable_get_evict(&tb, &key, &created, worth_v1, count_gone, gone);

		assert_true(v && created);
		assert_int_equal(v[0], key);
		v[1] = 2000;
	}
	assert_int_equal(tb.n, 1000);
	assert_int_equal(tb.evicted, 200);
	assert_int_equal(gone[1], 200);
	for (key = 1; key < 1000; key += 2)
		kept += zt_dtable_find(&tb, &key) != NULL;
	for (key = 1000; key < 1200; key++)
		assert_non_null(zt_dtable_find(&tb, &key));
	/* A sample of 8 holds no entry worth 0 rarely while most are left. */
	if (kept < 490 || gone[0] < 190)
		fail_msg("%u of 500 entries worth keeping kept, %u of 200 victims worth 0", kept,
			 gone[0]);
	zt_dtable_free(&tb);
}

static void test_quantile(void **state)
{
	assert_true(fabs(zt_normal_quantile_upper(0.001) - 3.090232) < 1e-5);
	assert_true(fabs(zt_normal_quantile_upper(0.025) - 1.959964) < 1e-5);
	assert_true(fabs(zt_normal_quantile_upper(0.5)) < 1e-9);
	assert_true(fabs(zt_normal_quantile_upper(0.9) + 1.281552) < 1e-5);
	assert_true(fabs(zt_normal_quantile_upper(1e-9) - 5.997807) < 1e-4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_repeat_and_expire),
		cmocka_unit_test(test_out_of_order_window),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_dtable),
		cmocka_unit_test(test_dtable_evict),
		cmocka_unit_test(test_spoofed_flood_then_scan),
		cmocka_unit_test(test_quantile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
