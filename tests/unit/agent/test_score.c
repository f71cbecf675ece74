// SPDX-License-Identifier: GPL-2.0-only
/*
 * The scoring of flow records in the daemon (daemon_detect_score_one):
 * a real model (a one-split forest built here as CBOR and loaded by
 * zt_model_load_buf), real features and windows; what goes into
 * anomaly_score, threat_type and blocked.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "agent/cbor.h"
#include "agent/daemon_detect.h"
#include "detect/features.h"
#include "detect/model.h"

static cbor_item_t *packed(const void *v, size_t elem, int n)
{
	uint8_t b[64];

	/* little-endian host (x86-64, arm64): the file's byte order */
	memcpy(b, v, elem * (size_t)n);
	return cbor_build_bytestring(b, elem * (size_t)n);
}

/* One split on log_pkts_out at 2.5: left benign 0.9 / scan 0.1, right 0.2 / 0.8. */
static struct zt_model *stump(void)
{
	static const int32_t feature[3] = { ZT_F_LOG_PKTS_OUT, -1, -1 }, left[3] = { 1, -1, -1 },
			     right[3] = { 2, -1, -1 };
	static const double thr[3] = { 2.5, 0, 0 }, value[4] = { 0.9, 0.1, 0.2, 0.8 };
	cbor_item_t *m = zt_cbor_map(), *a, *t = zt_cbor_map();
	struct zt_model *model = NULL;
	uint8_t *buf = NULL;
	size_t len, cap = 0;
	char err[256] = "";

	assert_int_equal(zt_cbor_put_str(m, "format", ZT_MODEL_FORMAT), 0);
	assert_int_equal(zt_cbor_put_u64(m, "version", ZT_MODEL_VERSION), 0);
	assert_int_equal(
		zt_cbor_put(m, "schema_hash", cbor_build_bytestring(zt_feat_schema_hash(), 32)), 0);
	a = zt_cbor_array();
	for (int i = 0; i < ZT_F_COUNT; i++)
		assert_int_equal(zt_cbor_push(a, cbor_build_string(zt_feat_defs[i].name)), 0);
	assert_int_equal(zt_cbor_put(m, "features", a), 0);
	a = zt_cbor_array();
	assert_int_equal(zt_cbor_push(a, cbor_build_string("benign")), 0);
	assert_int_equal(zt_cbor_push(a, cbor_build_string("scan")), 0);
	assert_int_equal(zt_cbor_put(m, "classes", a), 0);
	assert_int_equal(zt_cbor_put_str(m, "kind", "forest"), 0);
	assert_int_equal(zt_cbor_put(t, "feature", packed(feature, 4, 3)), 0);
	assert_int_equal(zt_cbor_put(t, "threshold", packed(thr, 8, 3)), 0);
	assert_int_equal(zt_cbor_put(t, "left", packed(left, 4, 3)), 0);
	assert_int_equal(zt_cbor_put(t, "right", packed(right, 4, 3)), 0);
	assert_int_equal(zt_cbor_put(t, "value", packed(value, 8, 4)), 0);
	a = zt_cbor_array();
	assert_int_equal(zt_cbor_push(a, t), 0);
	assert_int_equal(zt_cbor_put(m, "trees", a), 0);
	assert_int_equal(zt_cbor_put(m, "threshold", cbor_build_float8(0.5)), 0);
	assert_int_equal(zt_cbor_put(m, "target_fpr", cbor_build_float8(0.001)), 0);
	len = cbor_serialize_alloc(m, &buf, &cap);
	cbor_decref(&m);
	assert_true(len > 0);
	if (zt_model_load_buf(buf, len, &model, err, sizeof(err)) != 0)
		fail_msg("the test model is refused: %s", err);
	free(buf);
	return model;
}

static void flow(struct zt_flow_record *r, int64_t pkts)
{
	zt_flowrec_init(r);
	r->family = AF_INET;
	r->kind = ZT_FLOW_KIND_FLOW;
	r->protocol = 6;
	r->present = ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT;
	memcpy(r->source_ip, (uint8_t[]){ 198, 18, 0, 1 }, 4);
	memcpy(r->dest_ip, (uint8_t[]){ 198, 18, 2, 40 }, 4);
	r->source_port = 40000;
	r->dest_port = 8080;
	r->packets_sent = pkts;
	r->packet_count = pkts;
	r->bytes_sent = pkts * 60;
	r->duration_ms = 10;
	r->start_time_us = 1700000000000000LL;
	r->end_time_us = r->start_time_us + 10000;
	zt_flowrec_set_text(r->direction, sizeof(r->direction), "ingress");
	/* what a stale writer might have left: scoring must overwrite it */
	zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type), "stale");
}

static void test_model_scores(void **state)
{
	struct zt_model *m = stump();
	struct zt_feat_window *w;
	struct zt_flow_record r;
	struct zt_model_result res;

	(void)state;
	assert_int_equal(zt_feat_window_new(64, 0, &w), 0);
	/* 2 packets: ln 3 < 2.5, benign leaf: score 0.1, under the threshold, no type */
	flow(&r, 2);
	daemon_detect_score_one(m, w, &r, ZT_THREAT_NONE, 0, &res);
	assert_float_equal(r.anomaly_score, 0.1, 1e-6);
	assert_true(r.present & ZT_FR_HAS_ANOMALY);
	assert_string_equal(r.threat_type, "");
	assert_false(res.alert);
	assert_false(r.blocked);
	/* 100 packets: the scan leaf, over the threshold: the model's class */
	flow(&r, 100);
	daemon_detect_score_one(m, w, &r, ZT_THREAT_NONE, 0, &res);
	assert_float_equal(r.anomaly_score, 0.8, 1e-6);
	assert_string_equal(r.threat_type, "scan");
	assert_true(res.alert);
	/* Under an incident: the incident's type wins, and its score when higher */
	flow(&r, 100);
	daemon_detect_score_one(m, w, &r, ZT_THREAT_FLOOD, 0.93f, &res);
	assert_float_equal(r.anomaly_score, 0.93, 1e-6);
	assert_string_equal(r.threat_type, "flood");
	flow(&r, 2);
	daemon_detect_score_one(m, w, &r, ZT_THREAT_BRUTEFORCE, 0.05f, &res);
	assert_float_equal(r.anomaly_score, 0.1, 1e-6);
	assert_string_equal(r.threat_type, "bruteforce");
	zt_feat_window_free(w);
	zt_model_free(m);
}

static void test_without_model(void **state)
{
	struct zt_feat_window *w;
	struct zt_flow_record r;
	struct zt_model_result res;

	(void)state;
	assert_int_equal(zt_feat_window_new(64, 0, &w), 0);
	/* Nothing knows anything: 0, present (not NULL), no type */
	flow(&r, 100);
	daemon_detect_score_one(NULL, w, &r, ZT_THREAT_NONE, 0, &res);
	assert_float_equal(r.anomaly_score, 0, 0);
	assert_true(r.present & ZT_FR_HAS_ANOMALY);
	assert_string_equal(r.threat_type, "");
	assert_false(res.alert);
	/* The detectors' incident alone */
	flow(&r, 1);
	daemon_detect_score_one(NULL, w, &r, ZT_THREAT_SCAN, 0.7f, &res);
	assert_float_equal(r.anomaly_score, 0.7, 1e-6);
	assert_string_equal(r.threat_type, "scan");
	/* A row of packets XDP dropped: blocked, scored by its incident, never by the model */
	flow(&r, 5000);
	r.kind = ZT_FLOW_KIND_XDP_DROP_AGG;
	daemon_detect_score_one(NULL, w, &r, ZT_THREAT_FLOOD, 0.9f, &res);
	assert_true(r.blocked);
	assert_float_equal(r.anomaly_score, 0.9, 1e-6);
	assert_string_equal(r.threat_type, "flood");
	/* ... and without an incident keeps the block's own reason, scored 0 */
	flow(&r, 50);
	r.kind = ZT_FLOW_KIND_XDP_DROP_AGG;
	zt_flowrec_set_text(r.threat_type, sizeof(r.threat_type), "operator");
	daemon_detect_score_one(NULL, w, &r, ZT_THREAT_NONE, 0, &res);
	assert_true(r.blocked);
	assert_true(r.present & ZT_FR_HAS_ANOMALY);
	assert_float_equal(r.anomaly_score, 0, 0);
	assert_string_equal(r.threat_type, "operator");
	zt_feat_window_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_scores),
		cmocka_unit_test(test_without_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
