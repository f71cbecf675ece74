// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: exfiltration against a learned per-workload baseline and to
 * destinations a workload never used. A steady heavy sender (backups,
 * bulk replication), gradual growth and noisy traffic are not decided; a
 * burst far above the workload's own baseline and a large transfer to a new
 * destination are, within the interval they happen in.
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

#include "detect/exfil.h"
#include "dtest.h"

#define MIB (1ULL << 20)
#define IV (60 * SEC)

struct ex_case {
	const char *name;
	int intervals; /* of normal traffic */
	double base_bytes; /* per interval, median */
	double noise; /* lognormal sigma */
	double growth; /* per interval factor */
	int last_kind; /* 0: nothing special; 1: volume burst; 2: new destination */
	uint64_t last_bytes;
	const char *want; /* subtype decided in the last interval, or NULL: nothing ever */
};

static const struct ex_case cases[] = {
	{ "burst 200x its baseline", 40, 1 * MIB, 0.3, 1.0, 1, 200 * MIB, "volume" },
	{ "burst to a new destination", 40, 1 * MIB, 0.3, 1.0, 2, 60 * MIB, "new-destination" },
	{ "benign: steady heavy sender (500 MiB/min +-20%)", 200, 500 * MIB, 0.2, 1.0, 0, 0, NULL },
	{ "benign: noisy sender (sigma 0.8)", 300, 20 * MIB, 0.8, 1.0, 0, 0, NULL },
	{ "benign: growth of 3% per interval", 120, 1 * MIB, 0.2, 1.03, 0, 0, NULL },
	{ "benign: small new destination (1 MiB)", 40, 1 * MIB, 0.3, 1.0, 2, 1 * MIB, NULL },
	{ "benign: below min_bytes however far above baseline", 40, 10 * 1024, 0.1, 1.0, 1, 4 * MIB,
	  NULL },
};

static double gauss(uint64_t *s)
{
	double u = rnd_unit(s), v = rnd_unit(s);

	return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void run_case(const struct ex_case *c)
{
	struct zt_exfil_params p;
	struct zt_exfil *x;
	struct zt_decision d[2];
	struct zt_egress e = { .family = 4, .workload = "shop/web" };
	uint64_t seed = 4242, t = 100000 * IV;
	double base = c->base_bytes;
	const char *got = NULL;

	zt_exfil_defaults(&p);
	assert_int_equal(zt_exfil_new(&p, &x), 0);
	ip4(e.src, 198, 18, 2, 10);
	for (int i = 0; i < c->intervals; i++, t += IV) {
		uint64_t b = (uint64_t)(base * exp(c->noise * gauss(&seed)));

		base *= c->growth;
		/* Three flow records an interval, to the workload's usual destinations. */
		for (int r = 0; r < 3; r++) {
			int nd;

			ip4(e.dst, 192, 0, 2, (uint8_t)(1 + r));
			e.bytes = b / 3;
			e.ts_ns = t + (uint64_t)(r + 1) * 15 * SEC;
			nd = zt_exfil_observe(x, &e, d);
			if (nd)
				fail_msg("%s: decided in normal interval %d: %s", c->name, i,
					 d[0].evidence);
		}
		zt_exfil_tick(x, t + IV);
	}
	if (c->last_kind) {
		int nd;

		ip4(e.dst, 192, 0, 2, c->last_kind == 2 ? 99 : 1);
		e.bytes = c->last_bytes;
		e.ts_ns = t + 30 * SEC;
		nd = zt_exfil_observe(x, &e, d);
		for (int k = 0; k < nd; k++) {
			assert_int_equal(d[k].threat, ZT_THREAT_EXFIL);
			assert_string_equal(d[k].workload, "shop/web");
			assert_memory_equal(d[k].addr, e.src, 4);
			assert_true(d[k].score >= 0.8f && d[k].score <= 1.0f);
			assert_true(d[k].value > d[k].threshold);
			if (!got || !strcmp(d[k].subtype, c->want ? c->want : ""))
				got = d[k].subtype;
		}
	}
	if (c->want && (!got || strcmp(got, c->want)))
		fail_msg("%s: decided %s, want %s", c->name, got ? got : "nothing", c->want);
	if (!c->want && got)
		fail_msg("%s: decided %s", c->name, got);
	zt_exfil_free(x);
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  case: %s\n", cases[i].name);
		run_case(&cases[i]);
	}
}

/* Learning: nothing decided in the warm-up, whatever comes; the baseline is ln bytes. */
static void test_warmup_and_baseline(void **state)
{
	struct zt_exfil_params p;
	struct zt_exfil *x;
	struct zt_decision d[2];
	struct zt_egress e = { .family = 4, .workload = "batch/job" };
	double mean, sd;
	uint32_t n;

	zt_exfil_defaults(&p);
	assert_int_equal(zt_exfil_new(&p, &x), 0);
	ip4(e.src, 198, 18, 2, 11);
	ip4(e.dst, 192, 0, 2, 1);
	for (int i = 0; i < 10; i++) {
		e.bytes = i == 0 ? 10000 * MIB : 2 * MIB;
		e.ts_ns = (5000 + (uint64_t)i) * IV + SEC;
		assert_int_equal(zt_exfil_observe(x, &e, d), 0);
		zt_exfil_tick(x, (5001 + (uint64_t)i) * IV);
	}
	assert_int_equal(zt_exfil_baseline(x, "batch/job", &mean, &sd, &n), 0);
	assert_int_equal(n, 10);
	assert_true(mean > log1p(2.0 * MIB) && mean < log1p(10000.0 * MIB));
	assert_int_equal(zt_exfil_baseline(x, "nobody", &mean, &sd, &n), -ENOENT);
	zt_exfil_free(x);
}

/* The threshold follows the target false-positive rate: a looser one decides sooner. */
static void test_target_fpr(void **state)
{
	double fprs[] = { 0.1, 0.001 };
	int decided[2] = { 0, 0 };

	for (int f = 0; f < 2; f++) {
		struct zt_exfil_params p;
		struct zt_exfil *x;
		struct zt_decision d[2];
		struct zt_egress e = { .family = 4, .workload = "a/b" };

		zt_exfil_defaults(&p);
		p.target_fpr = fprs[f];
		p.min_bytes = 1;
		assert_int_equal(zt_exfil_new(&p, &x), 0);
		ip4(e.dst, 192, 0, 2, 1);
		for (int i = 0; i < 30; i++) {
			/* Alternating 1 and 2 MiB: ln-bytes sd about 0.35, floored to 0.5. */
			e.bytes = (i % 2 ? 2 : 1) * MIB;
			e.ts_ns = (7000 + (uint64_t)i) * IV + SEC;
			zt_exfil_observe(x, &e, d);
			zt_exfil_tick(x, (7001 + (uint64_t)i) * IV);
		}
		/* ~1.41 MiB e^mean; 3.5x is +1.25 in ln: over z=1.28 x 0.5, under z=3.09 x 0.5. */
		e.bytes = (uint64_t)(3.5 * 1.41 * MIB);
		e.ts_ns = 7030 * IV + SEC;
		decided[f] = zt_exfil_observe(x, &e, d);
		zt_exfil_free(x);
	}
	assert_int_equal(decided[0], 1);
	assert_int_equal(decided[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_warmup_and_baseline),
		cmocka_unit_test(test_target_fpr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
