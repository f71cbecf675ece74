// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit test: a model trained IN THE TEST by tools/train/train.py (Debian's
 * python3-sklearn) on synthetic rows gives the same class probabilities
 * in the agent's runtime as in scikit-learn, within 1e-6, for a random
 * forest over all classes, gradient-boosted trees over three classes and
 * gradient-boosted trees over two (sklearn's binary special case).
 *
 * The synthetic rows hold what trips a naive runtime: thresholds that are
 * midpoints of two adjacent floats (rounding the double threshold to the
 * nearest float sends one of them the wrong way), test values exactly at
 * thresholds (half-integers between integer training values: `<=` goes
 * left), and binary features.
 *
 * Needs /usr/bin/python3 with python3-sklearn and python3-cbor2
 * (tools/deps.sh); ZT_PYTHON and ZT_TRAIN_PY override the paths.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "detect/features.h"
#include "detect/model.h"

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

static char dir[64];

static void path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

/*
 * Two adjacent floats whose midpoint's nearest float is the upper one (the
 * lower has an odd mantissa, ties go to even). Near 1000 one ulp is 6e-5,
 * above the 1e-7 below which sklearn does not split.
 */
static const float ADJ_LO = 1000.0f + 0x1p-14f, ADJ_HI = 1000.0f + 0x1p-13f;

/* One synthetic row of class c (0..nc-1) into x. test: also values at thresholds. */
static void row(int c, float *x, bool test)
{
	for (int j = 0; j < ZT_F_COUNT; j++)
		x[j] = (float)(uni() * 10.0);
	/* Class signal on a few features, with overlap so the trees have work to do. */
	x[ZT_F_LOG_PKTS_OUT] = (float)(c * 1.5 + uni() * 3.0);
	x[ZT_F_SRC_LOG_DST_PORTS] = (float)(c == 1 ? 3 + uni() * 4 : uni() * 4);
	x[ZT_F_TCP_SYN] = uni() < (c == 2 ? 0.9 : 0.3);
	x[ZT_F_SRC_LOG_SAME_SERVICE] = (float)(int)(uni() * 4 + (c == 3 ? 2 : 0)); /* integers */
	/* Adjacent floats: class 4 mostly HI, the others mostly LO. */
	x[ZT_F_MEAN_SIZE_OUT] = uni() < (c == 4 ? 0.85 : 0.15) ? ADJ_HI : ADJ_LO;
	x[ZT_F_LOG_BYTES_OUT] = (float)(c == 5 ? 8 + uni() * 5 : uni() * 10);
	if (test && uni() < 0.3)
		x[ZT_F_SRC_LOG_SAME_SERVICE] += 0.5f; /* exactly on a split */
}

/* Writes train.csv (features, label, tool, run) and test.csv (features) with nc classes. */
static void write_data(int nc, int n_train, int n_test)
{
	static const char *const names[] = { "benign",	   "scan",     "flood",
					     "bruteforce", "slowconn", "exfiltration" };
	char p[128];
	float x[ZT_F_COUNT];
	FILE *f;

	for (int pass = 0; pass < 2; pass++) {
		int n = pass ? n_test : n_train;

		path(p, sizeof(p), pass ? "test.csv" : "train.csv");
		f = fopen(p, "w");
		assert_non_null(f);
		for (int j = 0; j < ZT_F_COUNT; j++)
			fprintf(f, "%s%s", j ? "," : "", zt_feat_defs[j].name);
		fprintf(f, pass ? "\n" : ",label,tool,run\n");
		for (int i = 0; i < n; i++) {
			int c = (int)(rnd() % (uint64_t)nc);

			row(c, x, pass == 1);
			for (int j = 0; j < ZT_F_COUNT; j++)
				fprintf(f, "%s%.9g", j ? "," : "", (double)x[j]);
			if (!pass)
				fprintf(f, ",%s,synth-%d,r%d", names[c], i % 3, i % 40);
			fprintf(f, "\n");
		}
		assert_int_equal(fclose(f), 0);
	}
}

/* The CSV's next data row into x (n values); false at the end. */
static bool read_floats(FILE *f, float *x, int n, bool as_float)
{
	static char line[1 << 16];
	char *s = line, *end;

	if (!fgets(line, sizeof(line), f))
		return false;
	for (int j = 0; j < n; j++) {
		if (as_float)
			x[j] = strtof(s, &end);
		else
			((double *)x)[j] = strtod(s, &end);
		assert_true(end != s);
		s = *end == ',' ? end + 1 : end;
	}
	return true;
}

static int run_trainer(const char *algo, const char *extra)
{
	const char *py = getenv("ZT_PYTHON") ?: "/usr/bin/python3";
	const char *tr = getenv("ZT_TRAIN_PY") ?: "tools/train/train.py";
	char cmd[2048], schema[128], train[128], test[128], model[128], pred[128], log[128];
	FILE *f;

	path(schema, sizeof(schema), "schema.json");
	path(train, sizeof(train), "train.csv");
	path(test, sizeof(test), "test.csv");
	path(model, sizeof(model), "model.cbor");
	path(pred, sizeof(pred), "pred.csv");
	path(log, sizeof(log), "train.log");
	f = fopen(schema, "w");
	assert_non_null(f);
	assert_int_equal(zt_feat_schema_json(f), 0);
	assert_int_equal(fclose(f), 0);
	snprintf(
		cmd, sizeof(cmd),
		"%s %s --schema %s --data %s --out %s --algo %s %s --predict %s --predict-out %s >%s 2>&1",
		py, tr, schema, train, model, algo, extra, test, pred, log);
	return system(cmd);
}

/*
 * Loads the model, scores every test row, compares with sklearn's
 * probabilities; returns the largest difference seen.
 */
static double compare(int nc, int n_test, enum zt_model_kind kind)
{
	char p[128], hdr[4096];
	struct zt_model *m = NULL;
	struct zt_model_info info;
	float x[ZT_F_COUNT];
	double want[ZT_MODEL_MAX_CLASSES], got[ZT_MODEL_MAX_CLASSES], maxdiff = 0;
	char err[512];
	FILE *ft, *fp;
	int rows = 0;
	int seen_class[ZT_MODEL_MAX_CLASSES] = { 0 };

	path(p, sizeof(p), "model.cbor");
	assert_int_equal(zt_model_load(p, &m, err, sizeof(err)), 0);
	zt_model_get_info(m, &info);
	assert_int_equal(info.kind, kind);
	assert_int_equal(info.n_classes, nc);
	assert_int_equal(info.n_features, ZT_F_COUNT);
	assert_string_equal(info.schema_hash, zt_feat_schema_hash_hex());
	assert_true(strstr(info.trainer, "sklearn") != NULL);
	assert_true(info.threshold > 0 && info.threshold <= 1.0 + 1e-9);

	path(p, sizeof(p), "test.csv");
	ft = fopen(p, "r");
	path(p, sizeof(p), "pred.csv");
	fp = fopen(p, "r");
	assert_non_null(ft);
	assert_non_null(fp);
	assert_non_null(fgets(hdr, sizeof(hdr), ft));
	assert_non_null(fgets(hdr, sizeof(hdr), fp));
	/* sklearn's class order is the file's: p_<name> columns in the same order. */
	for (uint32_t c = 0; c < info.n_classes; c++) {
		char col[40];

		snprintf(col, sizeof(col), "p_%s", zt_threat_name(info.classes[c]));
		assert_non_null(strstr(hdr, col));
	}
	while (read_floats(ft, x, ZT_F_COUNT, true)) {
		struct zt_model_result res;
		uint32_t best = 0, benign = 0;

		assert_true(read_floats(fp, (float *)want, (int)info.n_classes, false));
		assert_int_equal(zt_model_proba(m, x, got, ZT_MODEL_MAX_CLASSES), 0);
		assert_int_equal(zt_model_score(m, x, &res), 0);
		for (uint32_t c = 0; c < info.n_classes; c++) {
			double d = fabs(got[c] - want[c]);

			if (d > maxdiff)
				maxdiff = d;
			if (want[c] > want[best])
				best = c;
			if (info.classes[c] == ZT_THREAT_NONE)
				benign = c;
		}
		assert_true(fabs(res.score - (1.0 - want[benign])) < 1e-6);
		assert_true(res.score >= 0 && res.score <= 1);
		assert_true(res.alert == (res.score >= info.threshold) ||
			    fabs(res.score - info.threshold) < 1e-6);
		assert_int_not_equal(res.threat, ZT_THREAT_NONE);
		seen_class[best]++;
		rows++;
	}
	fclose(ft);
	fclose(fp);
	assert_int_equal(rows, n_test);
	/* The model learnt something: more than one class is predicted. */
	int distinct = 0;
	for (uint32_t c = 0; c < info.n_classes; c++)
		distinct += seen_class[c] > 0;
	assert_true(distinct >= 2);
	printf("# %s, %u classes: %d rows, max |p_C - p_sklearn| = %.3g\n",
	       kind == ZT_MODEL_FOREST ? "forest" : "boosted", info.n_classes, rows, maxdiff);
	zt_model_free(m);
	return maxdiff;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-model-test.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	if (getenv("ZT_TEST_KEEP")) {
		printf("# kept %s\n", dir);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void show_log(void)
{
	char p[128], line[512];
	FILE *f;

	path(p, sizeof(p), "train.log");
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		printf("# train.py: %s", line);
	if (f)
		fclose(f);
}

static void test_forest_matches_sklearn(void **state)
{
	rng_state = 11;
	write_data(6, 3000, 1500);
	if (run_trainer("forest", "--trees 24 --max-depth 14 --min-leaf 1") != 0) {
		show_log();
		fail_msg("train.py failed");
	}
	assert_true(compare(6, 1500, ZT_MODEL_FOREST) <= 1e-6);
}

static void test_boosted_matches_sklearn(void **state)
{
	rng_state = 12;
	write_data(3, 1500, 800);
	if (run_trainer("boosted", "--trees 15 --max-depth 3") != 0) {
		show_log();
		fail_msg("train.py failed");
	}
	assert_true(compare(3, 800, ZT_MODEL_BOOSTED) <= 1e-6);
}

static void test_boosted_binary_matches_sklearn(void **state)
{
	rng_state = 13;
	write_data(2, 1200, 600);
	if (run_trainer("boosted", "--trees 20 --max-depth 4") != 0) {
		show_log();
		fail_msg("train.py failed");
	}
	assert_true(compare(2, 600, ZT_MODEL_BOOSTED) <= 1e-6);
}

/* The trainer refuses rows from another schema: a feature column is missing. */
static void test_trainer_refuses_other_schema(void **state)
{
	char p[128], cmd[256];

	rng_state = 14;
	write_data(2, 200, 10);
	path(p, sizeof(p), "train.csv");
	/* Rename the first feature's column. */
	snprintf(cmd, sizeof(cmd), "sed -i '1s/^proto_tcp,/proto_tcp_old,/' %s", p);
	assert_int_equal(system(cmd), 0);
	assert_int_not_equal(run_trainer("forest", "--trees 2"), 0);
	path(p, sizeof(p), "train.log");
	snprintf(cmd, sizeof(cmd), "grep -q 'no column for feature(s) proto_tcp' %s", p);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forest_matches_sklearn),
		cmocka_unit_test(test_boosted_matches_sklearn),
		cmocka_unit_test(test_boosted_binary_matches_sklearn),
		cmocka_unit_test(test_trainer_refuses_other_schema),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
