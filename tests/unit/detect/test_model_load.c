// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the model loader against hand-built and hostile files, and
 * the evaluator's semantics on models small enough to check by hand. A
 * model for another feature schema is refused with -ESTALE and says so;
 * every malformed tree (a child pointing back, an index out of range, a
 * NaN threshold, arrays of the wrong length) is refused; every prefix and
 * thousands of mutations of a valid file load or fail cleanly.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "agent/cbor.h"
#include "detect/features.h"
#include "detect/model.h"

#define MAXN 16

struct tree_spec {
	int n;
	int32_t feature[MAXN];
	double threshold[MAXN];
	int32_t left[MAXN], right[MAXN];
	double value[MAXN * 8];
	int n_values; /* doubles in value */
	int cls; /* boosted */
	int value_bytes_delta; /* tamper: bytes added to value */
};

struct spec {
	const char *format;
	uint64_t version;
	bool bad_hash;
	int rename_feature; /* index whose name is changed, -1 none */
	int n_features; /* 0: ZT_F_COUNT */
	const char *classes[8];
	int n_classes;
	const char *kind;
	double init[8];
	struct tree_spec trees[4];
	int n_trees;
	int extra_trees; /* copies of trees[0] appended */
	double threshold, target_fpr;
	double fpr_table[8][2];
	int n_fpr;
};

/* One split on log_pkts_out at 2.5: left benign 0.9, right scan 0.8. */
static void stump(struct spec *s)
{
	memset(s, 0, sizeof(*s));
	s->format = ZT_MODEL_FORMAT;
	s->version = ZT_MODEL_VERSION;
	s->rename_feature = -1;
	s->classes[0] = "benign";
	s->classes[1] = "scan";
	s->n_classes = 2;
	s->kind = "forest";
	s->n_trees = 1;
	s->trees[0] = (struct tree_spec){
		.n = 3,
		.feature = { ZT_F_LOG_PKTS_OUT, -1, -1 },
		.threshold = { 2.5, 0, 0 },
		.left = { 1, -1, -1 },
		.right = { 2, -1, -1 },
		.value = { 0.9, 0.1, 0.2, 0.8 },
		.n_values = 4,
	};
	s->threshold = 0.5;
	s->target_fpr = 0.001;
}

static cbor_item_t *packed_i32(const int32_t *v, int n)
{
	uint8_t b[MAXN * 4];

	for (int i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			b[4 * i + k] = (uint8_t)((uint32_t)v[i] >> (8 * k));
	return cbor_build_bytestring(b, (size_t)n * 4);
}

static cbor_item_t *packed_f64(const double *v, int n, int delta)
{
	uint8_t b[MAXN * 8 * 8 + 16] = { 0 };

	for (int i = 0; i < n; i++) {
		uint64_t u;

		memcpy(&u, &v[i], 8);
		for (int k = 0; k < 8; k++)
			b[8 * i + k] = (uint8_t)(u >> (8 * k));
	}
	return cbor_build_bytestring(b, (size_t)(n * 8 + delta));
}

static cbor_item_t *tree_item(const struct spec *s, const struct tree_spec *t)
{
	cbor_item_t *m = zt_cbor_map();

	assert_int_equal(zt_cbor_put(m, "feature", packed_i32(t->feature, t->n)), 0);
	assert_int_equal(zt_cbor_put(m, "threshold", packed_f64(t->threshold, t->n, 0)), 0);
	assert_int_equal(zt_cbor_put(m, "left", packed_i32(t->left, t->n)), 0);
	assert_int_equal(zt_cbor_put(m, "right", packed_i32(t->right, t->n)), 0);
	assert_int_equal(
		zt_cbor_put(m, "value", packed_f64(t->value, t->n_values, t->value_bytes_delta)),
		0);
	if (!strcmp(s->kind, "boosted"))
		assert_int_equal(zt_cbor_put_u64(m, "class", (uint64_t)t->cls), 0);
	return m;
}

static size_t build(const struct spec *s, uint8_t **out)
{
	cbor_item_t *m = zt_cbor_map(), *a;
	uint8_t hash[32];
	size_t len, cap = 0;
	int nf = s->n_features ? s->n_features : ZT_F_COUNT;

	assert_int_equal(zt_cbor_put_str(m, "format", s->format), 0);
	assert_int_equal(zt_cbor_put_u64(m, "version", s->version), 0);
	memcpy(hash, zt_feat_schema_hash(), 32);
	if (s->bad_hash)
		hash[2] ^= 0x40;
	assert_int_equal(zt_cbor_put(m, "schema_hash", cbor_build_bytestring(hash, 32)), 0);
	a = zt_cbor_array();
	for (int i = 0; i < nf; i++) {
		const char *name = i < ZT_F_COUNT ? zt_feat_defs[i].name : "extra";

		assert_int_equal(
			zt_cbor_push(a,
				     cbor_build_string(i == s->rename_feature ? "renamed" : name)),
			0);
	}
	assert_int_equal(zt_cbor_put(m, "features", a), 0);
	a = zt_cbor_array();
	for (int i = 0; i < s->n_classes; i++)
		assert_int_equal(zt_cbor_push(a, cbor_build_string(s->classes[i])), 0);
	assert_int_equal(zt_cbor_put(m, "classes", a), 0);
	assert_int_equal(zt_cbor_put_str(m, "kind", s->kind), 0);
	if (!strcmp(s->kind, "boosted")) {
		a = zt_cbor_array();
		for (int i = 0; i < s->n_classes; i++)
			assert_int_equal(zt_cbor_push(a, cbor_build_float8(s->init[i])), 0);
		assert_int_equal(zt_cbor_put(m, "init", a), 0);
	}
	a = zt_cbor_array();
	for (int t = 0; t < s->n_trees; t++)
		assert_int_equal(zt_cbor_push(a, tree_item(s, &s->trees[t])), 0);
	for (int t = 0; t < s->extra_trees; t++)
		assert_int_equal(zt_cbor_push(a, tree_item(s, &s->trees[0])), 0);
	assert_int_equal(zt_cbor_put(m, "trees", a), 0);
	assert_int_equal(zt_cbor_put(m, "threshold", cbor_build_float8(s->threshold)), 0);
	assert_int_equal(zt_cbor_put(m, "target_fpr", cbor_build_float8(s->target_fpr)), 0);
	if (s->n_fpr) {
		a = zt_cbor_array();
		for (int i = 0; i < s->n_fpr; i++) {
			cbor_item_t *p = zt_cbor_array();

			assert_int_equal(zt_cbor_push(p, cbor_build_float8(s->fpr_table[i][0])), 0);
			assert_int_equal(zt_cbor_push(p, cbor_build_float8(s->fpr_table[i][1])), 0);
			assert_int_equal(zt_cbor_push(a, p), 0);
		}
		assert_int_equal(zt_cbor_put(m, "fpr_table", a), 0);
	}
	a = zt_cbor_map();
	assert_int_equal(zt_cbor_put_str(a, "created", "2024-01-01T00:00:00Z"), 0);
	assert_int_equal(zt_cbor_put_str(a, "trainer", "test_model_load"), 0);
	assert_int_equal(zt_cbor_put(m, "metadata", a), 0);
	len = cbor_serialize_alloc(m, out, &cap);
	assert_true(len > 0);
	cbor_decref(&m);
	return len;
}

/* Loads s; returns the result code, err in e. */
static int load_spec(const struct spec *s, struct zt_model **m, char *e, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = build(s, &buf);
	int r = zt_model_load_buf(buf, len, m, e, n);

	free(buf);
	return r;
}

static void expect_refused(const struct spec *s, int code, const char *needle)
{
	struct zt_model *m = (struct zt_model *)0x1;
	char e[512] = "";
	int r = load_spec(s, &m, e, sizeof(e));

	if (r != code || !strstr(e, needle))
		fail_msg("expected %d containing \"%s\", got %d: %s", code, needle, r, e);
	assert_ptr_equal(m, (struct zt_model *)0x1); /* untouched on failure */
}

static void x_with(float *x, float pkts)
{
	memset(x, 0, ZT_F_COUNT * sizeof(*x));
	x[ZT_F_LOG_PKTS_OUT] = pkts;
}

static void test_stump_semantics(void **state)
{
	struct spec s;
	struct zt_model *m;
	struct zt_model_result r;
	struct zt_model_info in;
	float x[ZT_F_COUNT];
	char e[256];

	stump(&s);
	assert_int_equal(load_spec(&s, &m, e, sizeof(e)), 0);
	zt_model_get_info(m, &in);
	assert_int_equal(in.n_trees, 1);
	assert_int_equal(in.n_nodes, 3);
	assert_string_equal(in.trainer, "test_model_load");
	x_with(x, 2.5f); /* exactly the threshold: left */
	assert_int_equal(zt_model_score(m, x, &r), 0);
	assert_float_equal(r.score, 0.1, 1e-7);
	assert_false(r.alert);
	assert_int_equal(r.threat, ZT_THREAT_SCAN);
	x_with(x, nextafterf(2.5f, 3)); /* just above: right */
	assert_int_equal(zt_model_score(m, x, &r), 0);
	assert_float_equal(r.score, 0.8, 1e-7);
	assert_true(r.alert);
	assert_float_equal(r.threat_p, 0.8, 1e-7);
	x_with(x, NAN); /* compares false: right */
	assert_int_equal(zt_model_score(m, x, &r), 0);
	assert_float_equal(r.score, 0.8, 1e-7);
	assert_int_equal(zt_model_score(NULL, x, &r), -EINVAL);
	assert_int_equal(zt_model_score(m, NULL, &r), -EINVAL);
	zt_model_free(m);
	zt_model_free(NULL);
}

/* Two forest trees average; a boosted pair is a softmax over init + leaves. */
static void test_forest_average_and_boosted(void **state)
{
	struct spec s;
	struct zt_model *m;
	double p[ZT_MODEL_MAX_CLASSES];
	float x[ZT_F_COUNT];
	char e[256];

	stump(&s);
	s.n_trees = 2;
	s.trees[1] = s.trees[0];
	s.trees[1].feature[0] = ZT_F_SRC_LOG_DST_PORTS;
	s.trees[1].threshold[0] = 1.0;
	assert_int_equal(load_spec(&s, &m, e, sizeof(e)), 0);
	x_with(x, 3);
	x[ZT_F_SRC_LOG_DST_PORTS] = 0.5f;
	assert_int_equal(zt_model_proba(m, x, p, ZT_MODEL_MAX_CLASSES), 0);
	assert_float_equal(p[0], (0.2 + 0.9) / 2, 1e-12);
	assert_float_equal(p[1], (0.8 + 0.1) / 2, 1e-12);
	assert_int_equal(zt_model_proba(m, x, p, 1), -EINVAL);
	zt_model_free(m);

	stump(&s);
	s.kind = "boosted";
	s.classes[2] = "flood";
	s.n_classes = 3;
	s.init[0] = 0.5;
	s.init[1] = -0.25;
	s.init[2] = 0.1;
	s.n_trees = 2;
	s.trees[0].n_values = 2;
	s.trees[0].value[0] = 1.0;
	s.trees[0].value[1] = -2.0;
	s.trees[0].cls = 1;
	s.trees[1] = s.trees[0];
	s.trees[1].cls = 2;
	s.trees[1].value[0] = 0.3;
	assert_int_equal(load_spec(&s, &m, e, sizeof(e)), 0);
	x_with(x, 1); /* left in both: class 1 += 1.0, class 2 += 0.3 */
	assert_int_equal(zt_model_proba(m, x, p, ZT_MODEL_MAX_CLASSES), 0);
	{
		double r0 = 0.5, r1 = 0.75, r2 = 0.4, z = exp(r0) + exp(r1) + exp(r2);

		assert_float_equal(p[0], exp(r0) / z, 1e-12);
		assert_float_equal(p[1], exp(r1) / z, 1e-12);
		assert_float_equal(p[2], exp(r2) / z, 1e-12);
	}
	zt_model_free(m);
}

static void test_schema_mismatch_refused(void **state)
{
	struct spec s;

	stump(&s);
	s.bad_hash = true;
	expect_refused(&s, -ESTALE, "refused");
	expect_refused(&s, -ESTALE, "feature schema");
	stump(&s);
	s.rename_feature = 5;
	expect_refused(&s, -ESTALE, "features[5]: expected \"svc_remote\"");
	stump(&s);
	s.n_features = ZT_F_COUNT + 1;
	expect_refused(&s, -ESTALE, "features:");
}

static void test_header_refused(void **state)
{
	struct spec s;

	stump(&s);
	s.version = 2;
	expect_refused(&s, -ENOTSUP, "version 2");
	stump(&s);
	s.format = "something-else";
	expect_refused(&s, -EPROTO, "format");
	stump(&s);
	s.classes[1] = "benign";
	expect_refused(&s, -EPROTO, "appears twice");
	stump(&s);
	s.classes[0] = "scan";
	s.classes[1] = "flood";
	expect_refused(&s, -EPROTO, "\"benign\" is missing");
	stump(&s);
	s.classes[1] = "ddos";
	expect_refused(&s, -EPROTO, "classes[1]");
	stump(&s);
	s.n_classes = 1;
	expect_refused(&s, -EPROTO, "classes");
	stump(&s);
	s.kind = "svm";
	expect_refused(&s, -EPROTO, "kind");
	stump(&s);
	s.threshold = 1.5;
	expect_refused(&s, -EPROTO, "threshold");
	stump(&s);
	s.n_trees = 0;
	expect_refused(&s, -EPROTO, "trees");
}

static void test_trees_refused(void **state)
{
	struct spec s;

	stump(&s);
	s.trees[0].left[0] = 0; /* a loop */
	expect_refused(&s, -EPROTO, "children 0 and 2");
	stump(&s);
	s.trees[0].right[0] = 3; /* past the end */
	expect_refused(&s, -EPROTO, "children");
	stump(&s);
	s.trees[0].feature[0] = ZT_F_COUNT;
	expect_refused(&s, -EPROTO, "feature");
	stump(&s);
	s.trees[0].threshold[0] = NAN;
	expect_refused(&s, -EPROTO, "NaN");
	stump(&s);
	s.trees[0].value_bytes_delta = 8;
	expect_refused(&s, -EPROTO, "trees[0].value");
	stump(&s);
	s.trees[0].value[3] = INFINITY;
	expect_refused(&s, -EPROTO, "non-finite");
	stump(&s);
	s.kind = "boosted";
	s.trees[0].n_values = 2;
	s.trees[0].cls = 2; /* only 2 classes */
	expect_refused(&s, -EPROTO, "class");
	stump(&s);
	s.extra_trees = ZT_MODEL_MAX_TREES;
	expect_refused(&s, -EPROTO, "trees: expected an array of 1 to");
}

/* Every prefix and many mutations of a valid file: refused or loaded, never a crash. */
static void test_hostile_bytes(void **state)
{
	struct spec s;
	struct zt_model *m;
	uint8_t *buf = NULL, *mut;
	size_t len;
	char e[256];
	float x[ZT_F_COUNT];
	uint64_t st = 99;
	int loaded = 0;

	stump(&s);
	s.n_fpr = 1;
	s.fpr_table[0][0] = 0.01;
	s.fpr_table[0][1] = 0.3;
	len = build(&s, &buf);
	for (size_t n = 0; n < len; n++) {
		m = NULL;
		assert_true(zt_model_load_buf(buf, n, &m, e, sizeof(e)) < 0);
		assert_null(m);
	}
	mut = malloc(len);
	assert_non_null(mut);
	for (int i = 0; i < 20000; i++) {
		struct zt_model_result r;

		memcpy(mut, buf, len);
		for (int k = 0; k < 1 + i % 4; k++) {
			st = st * 6364136223846793005ULL + 1442695040888963407ULL;
			mut[(st >> 33) % len] ^= (uint8_t)(1u << ((st >> 20) % 8));
		}
		m = NULL;
		if (zt_model_load_buf(mut, len, &m, e, sizeof(e)) == 0) {
			loaded++;
			x_with(x, (float)(i % 5));
			assert_int_equal(zt_model_score(m, x, &r), 0);
			assert_true(r.score >= 0 && r.score <= 1);
			zt_model_free(m);
		}
	}
	printf("# %d of 20000 mutated files still loaded (flips in values or metadata)\n", loaded);
	free(mut);
	free(buf);
}

static void test_files(void **state)
{
	char dir[] = "/tmp/zt-model-load.XXXXXX", p[128], e[512];
	struct zt_model *m = NULL;
	struct spec s;
	uint8_t *buf = NULL;
	size_t len;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/none.cbor", dir);
	assert_int_equal(zt_model_load(p, &m, e, sizeof(e)), -ENOENT);
	assert_non_null(strstr(e, p));
	assert_int_equal(zt_model_load(dir, &m, e, sizeof(e)), -EINVAL);
	snprintf(p, sizeof(p), "%s/big.cbor", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)ZT_MODEL_MAX_FILE + 1), 0);
	close(fd);
	assert_int_equal(zt_model_load(p, &m, e, sizeof(e)), -EFBIG);
	unlink(p);
	stump(&s);
	s.bad_hash = true;
	len = build(&s, &buf);
	snprintf(p, sizeof(p), "%s/old.cbor", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
	assert_int_equal(zt_model_load(p, &m, e, sizeof(e)), -ESTALE);
	printf("# %s\n", e);
	assert_non_null(strstr(e, p)); /* the path, then why */
	assert_null(m);
	unlink(p);
	rmdir(dir);
}

static void test_target_fpr(void **state)
{
	struct spec s;
	struct zt_model *m;
	struct zt_model_info in;
	char e[256];

	stump(&s);
	s.n_fpr = 3;
	s.fpr_table[0][0] = 0.001;
	s.fpr_table[0][1] = 0.7;
	s.fpr_table[1][0] = 0.01;
	s.fpr_table[1][1] = 0.4;
	s.fpr_table[2][0] = 0.1;
	s.fpr_table[2][1] = 0.2;
	assert_int_equal(load_spec(&s, &m, e, sizeof(e)), 0);
	assert_int_equal(zt_model_set_target_fpr(m, 0.01), 0);
	zt_model_get_info(m, &in);
	assert_float_equal(in.threshold, 0.4, 1e-12);
	assert_int_equal(zt_model_set_target_fpr(m, 0.005), 0);
	zt_model_get_info(m, &in);
	assert_float_equal(in.threshold, 0.7, 1e-12);
	assert_int_equal(zt_model_set_target_fpr(m, 0.0001), -ERANGE);
	zt_model_get_info(m, &in);
	assert_float_equal(in.threshold, 0.7, 1e-12);
	assert_int_equal(zt_model_set_target_fpr(m, 0), 0);
	zt_model_get_info(m, &in);
	assert_float_equal(in.threshold, 0.5, 1e-12); /* the file's own */
	zt_model_free(m);
}

static void test_threat_names(void **state)
{
	enum zt_threat t;

	for (int i = 0; i < ZT_THREAT_MAX; i++) {
		assert_int_equal(zt_threat_parse(zt_threat_name((enum zt_threat)i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_string_equal(zt_threat_name(ZT_THREAT_EXFILTRATION), "exfiltration");
	assert_string_equal(zt_threat_name(ZT_THREAT_NONE), "benign");
	assert_int_equal(zt_threat_parse("Scan", &t), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stump_semantics),
		cmocka_unit_test(test_forest_average_and_boosted),
		cmocka_unit_test(test_schema_mismatch_refused),
		cmocka_unit_test(test_header_refused),
		cmocka_unit_test(test_trees_refused),
		cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_target_fpr),
		cmocka_unit_test(test_threat_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
