// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the per-workload baseline. Benign synthetic workloads (each
 * its own volume and spread, Gaussian and heavy-tailed in log bytes, the
 * occasional new destination) alarm at close to the target rate; an
 * exfiltration-like burst and a sweep of new destinations alarm; nothing
 * alarms during warm-up; an alarm does not become the baseline.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "detect/baseline.h"

/* splitmix64: deterministic, so a failure repeats. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double uni(void)
{
	return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(uni())) * cos(2 * M_PI * uni());
}

/* Student's t with df degrees of freedom, scaled to unit variance. */
static double student(int df)
{
	double chi = 0;

	for (int i = 0; i < df; i++) {
		double g = gauss();

		chi += g * g;
	}
	return gauss() / sqrt(chi / df) * sqrt((df - 2.0) / df);
}

struct wl {
	char name[32];
	double mu, sigma; /* of ln(bytes) per window */
	uint32_t pool; /* destinations it knows */
};

static void make_wl(struct wl *w, int i)
{
	snprintf(w->name, sizeof(w->name), "ns%d/app-%d", i % 7, i);
	w->mu = 6 + 10 * uni(); /* 400 B to 9 MB a window */
	w->sigma = 0.1 + 1.4 * uni();
	w->pool = 1 + (uint32_t)(20 * uni());
}

static uint64_t wl_bytes(const struct wl *w, bool heavy)
{
	double z = heavy ? student(4) : gauss();

	return (uint64_t)exp(w->mu + w->sigma * z);
}

/* Destinations this window: mostly its pool; now and then one it never used. */
static uint64_t wl_new(struct wl *w, uint32_t *fresh)
{
	if (uni() < 0.01) {
		(*fresh)++;
		return 1;
	}
	return 0;
}

struct fpr_run {
	uint64_t warm_windows, alerts;
	uint64_t cal_windows, cal_alerts; /* after the threshold became empirical */
};

/*
 * n workloads, windows each, through zt_baseline_window; counts alarms of
 * warm windows. Benign all the way: every alarm is a false positive.
 */
static void run_benign(double fpr, int n, int windows, bool heavy, struct fpr_run *out)
{
	struct zt_baseline_cfg cfg = { .target_fpr = fpr, .warmup = 30, .max_workloads = 1024 };
	struct zt_baseline *b;
	struct wl wls[512];
	uint32_t fresh = 0;

	assert_true(n <= 512);
	memset(out, 0, sizeof(*out));
	assert_int_equal(zt_baseline_new(&cfg, &b), 0);
	for (int i = 0; i < n; i++)
		make_wl(&wls[i], i);
	for (int t = 0; t < windows; t++)
		for (int i = 0; i < n; i++) {
			struct zt_baseline_result res;

			zt_baseline_window(b, wls[i].name, wl_bytes(&wls[i], heavy),
					   wl_new(&wls[i], &fresh), &res);
			assert_string_equal(res.workload, wls[i].name);
			if (!res.warm) {
				assert_false(res.alert);
				continue;
			}
			out->warm_windows++;
			out->alerts += res.alert;
			if (res.calibrated) {
				out->cal_windows++;
				out->cal_alerts += res.alert;
			}
		}
	zt_baseline_free(b);
}

static void report(const char *what, double fpr, const struct fpr_run *r)
{
	printf("# %s: target %.4f, all warm windows %.5f (%llu/%llu), calibrated %.5f (%llu/%llu)\n",
	       what, fpr, (double)r->alerts / r->warm_windows, (unsigned long long)r->alerts,
	       (unsigned long long)r->warm_windows, (double)r->cal_alerts / r->cal_windows,
	       (unsigned long long)r->cal_alerts, (unsigned long long)r->cal_windows);
}

/* Gaussian log-volumes: the rate is near the target, before and after calibration. */
static void test_fpr_gaussian(void **state)
{
	static const double targets[] = { 0.01, 0.001 };

	for (size_t k = 0; k < 2; k++) {
		struct fpr_run r;
		double got;

		rng_state = 42 + k;
		run_benign(targets[k], 400, 600, false, &r);
		report("gaussian", targets[k], &r);
		assert_true(r.cal_windows > r.warm_windows / 2);
		got = (double)r.cal_alerts / r.cal_windows;
		assert_true(got >= targets[k] / 2 && got <= targets[k] * 2);
		got = (double)r.alerts / r.warm_windows;
		assert_true(got <= targets[k] * 3);
	}
}

/*
 * Heavy tails (t, 4 degrees of freedom): a Gaussian threshold alarms far
 * more often than asked; the empirical one brings the rate back.
 */
static void test_fpr_heavy_tails(void **state)
{
	struct fpr_run r;
	double got;

	double gauss_phase;

	rng_state = 7;
	run_benign(0.001, 400, 600, true, &r);
	report("t(4)", 0.001, &r);
	got = (double)r.cal_alerts / r.cal_windows;
	assert_true(got >= 0.0005 && got <= 0.002);
	/* Before calibration, under the Gaussian threshold: several times the target. */
	gauss_phase = (double)(r.alerts - r.cal_alerts) / (double)(r.warm_windows - r.cal_windows);
	printf("# t(4) before calibration (Gaussian threshold): %.4f\n", gauss_phase);
	assert_true(gauss_phase > 2 * got);
}

/* Warm a workload on ~100 kB windows; returns the baseline. */
static struct zt_baseline *warmed(const char *name, int windows)
{
	struct zt_baseline_cfg cfg = { .target_fpr = 0.001, .warmup = 30 };
	struct zt_baseline *b;
	struct zt_baseline_result res;

	assert_int_equal(zt_baseline_new(&cfg, &b), 0);
	for (int t = 0; t < windows; t++) {
		zt_baseline_window(b, name, (uint64_t)exp(11.5 + 0.3 * gauss()), 0, &res);
		assert_false(res.alert && t < 30);
	}
	return b;
}

static void test_burst_flagged(void **state)
{
	struct zt_baseline_result res;
	struct zt_baseline *b;
	double before;

	rng_state = 3;
	b = warmed("shop/db-0", 100);
	zt_baseline_window(b, "shop/db-0", 100000, 0, &res);
	assert_false(res.alert); /* an ordinary window */
	before = res.expected_bytes;
	/* 50 MB in one window: ~500 times its usual. */
	zt_baseline_window(b, "shop/db-0", 50000000, 0, &res);
	printf("# burst: score %.1f threshold %.2f expected %.0f B z_bytes %.1f\n", res.score,
	       res.threshold, res.expected_bytes, res.z_bytes);
	assert_true(res.alert);
	assert_true(res.warm);
	assert_true(res.z_bytes > res.threshold);
	assert_int_equal(res.bytes_out, 50000000);
	assert_true(res.expected_bytes > 50000 && res.expected_bytes < 200000);
	/* The burst moved the mean by at most the capped amount: the next ordinary window is fine. */
	zt_baseline_window(b, "shop/db-0", 100000, 0, &res);
	assert_false(res.alert);
	assert_true(res.expected_bytes < before * 1.5);
	/* A burst that goes on alarms again (it did not become the baseline). */
	for (int i = 0; i < 5; i++) {
		zt_baseline_window(b, "shop/db-0", 50000000, 0, &res);
		assert_true(res.alert);
	}
	zt_baseline_free(b);
}

struct cap {
	struct zt_baseline_result r;
	int n;
};

static void cap_cb(void *ctx, const struct zt_baseline_result *res)
{
	struct cap *c = ctx;

	c->r = *res;
	c->n++;
}

/* Many destinations it never used, at its usual volume: the new-destination test alarms. */
static void test_new_destinations_flagged(void **state)
{
	struct zt_baseline_cfg cfg = { .target_fpr = 0.001,
				       .warmup = 30,
				       .window_ns = 1000000000ULL };
	struct zt_baseline *b;
	uint8_t dst[16] = { 198, 18, 7, 1 };
	uint64_t now = 1000000000ULL;
	struct zt_baseline_result last = { 0 };
	int alerts = 0, windows = 0;

	rng_state = 5;
	assert_int_equal(zt_baseline_new(&cfg, &b), 0);
	/* 60 windows talking to the same 3 destinations, through observe/tick. */
	for (int t = 0; t < 60; t++) {
		for (int k = 0; k < 3; k++) {
			dst[3] = (uint8_t)(1 + k);
			zt_baseline_observe(b, "web/frontend", now, 20000, AF_INET, dst);
		}
		now += 1000000000ULL;
		windows += zt_baseline_tick(b, now, NULL, NULL);
	}
	assert_int_equal(windows, 60);
	/* Then 40 fresh destinations in one window, with no more bytes than usual. */
	for (int k = 0; k < 40; k++) {
		dst[2] = 9;
		dst[3] = (uint8_t)k;
		zt_baseline_observe(b, "web/frontend", now, 1500, AF_INET, dst);
	}
	now += 1000000000ULL;
	/* A tick before the window ends scores nothing. */
	assert_int_equal(zt_baseline_tick(b, now - 1, NULL, NULL), 0);
	{
		struct cap cap = { .n = 0 };

		assert_int_equal(zt_baseline_tick(b, now, cap_cb, &cap), 1);
		assert_int_equal(cap.n, 1);
		last = cap.r;
	}
	printf("# new destinations: %llu new, z_new %.1f, threshold %.2f\n",
	       (unsigned long long)last.new_dsts, last.z_new, last.threshold);
	alerts += last.alert;
	assert_int_equal(alerts, 1);
	assert_int_equal(last.new_dsts, 40);
	assert_true(last.z_new > last.z_bytes);
	assert_string_equal(last.workload, "web/frontend");
	zt_baseline_free(b);
}

/* During warm-up even an enormous window does not alarm. */
static void test_warmup(void **state)
{
	struct zt_baseline_cfg cfg = { .target_fpr = 0.001, .warmup = 30 };
	struct zt_baseline *b;
	struct zt_baseline_result res;

	assert_int_equal(zt_baseline_new(&cfg, &b), 0);
	for (int t = 0; t < 29; t++) {
		zt_baseline_window(b, "a/b", 1000, 0, &res);
		assert_false(res.warm);
	}
	zt_baseline_window(b, "a/b", 1000000000, 1000, &res);
	assert_false(res.warm);
	assert_false(res.alert);
	assert_true(res.score > res.threshold); /* it would have, warm */
	zt_baseline_free(b);
}

/* A full table forgets the least recently seen workload, never fails. */
static void test_table_full(void **state)
{
	struct zt_baseline_cfg cfg = { .max_workloads = 16 };
	struct zt_baseline *b;
	uint8_t dst[16] = { 198, 18, 0, 1 };
	char name[32];

	assert_int_equal(zt_baseline_new(&cfg, &b), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "w/%d", i);
		zt_baseline_observe(b, name, (uint64_t)i, 10, AF_INET, dst);
	}
	assert_true(zt_baseline_tick(b, UINT64_MAX / 2, NULL, NULL) <= 16);
	zt_baseline_free(b);
	cfg.target_fpr = 0.7;
	assert_int_equal(zt_baseline_new(&cfg, &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fpr_gaussian),
		cmocka_unit_test(test_fpr_heavy_tails),
		cmocka_unit_test(test_burst_flagged),
		cmocka_unit_test(test_new_destinations_flagged),
		cmocka_unit_test(test_warmup),
		cmocka_unit_test(test_table_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
