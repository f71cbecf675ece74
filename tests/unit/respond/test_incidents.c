// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: incidents and policy-denial aggregation. One incident per
 * (source, threat type) whatever the number of decisions and flows, with
 * counts that grow, posted at open, at most every update interval while
 * it changes, and at close; every post a complete JSON state with a
 * growing version. Denials: one alert per (source, destination, port,
 * rule) and window with its count, folded past max_keys.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "respond/denyagg.h"
#include "respond/incident.h"

#define SEC 1000000000ULL

struct posts {
	int n;
	char kind[256][32];
	char subject[256][128];
	char *detail[256];
};

static void collect(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct posts *p = ctx;

	if (p->n >= 256)
		return;
	snprintf(p->kind[p->n], sizeof(p->kind[0]), "%s", kind);
	snprintf(p->subject[p->n], sizeof(p->subject[0]), "%s", subject);
	p->detail[p->n] = strdup(detail);
	p->n++;
}

static void posts_free(struct posts *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->detail[i]);
	memset(p, 0, sizeof(*p));
}

static int64_t jint(const char *json, const char *key)
{
	struct json_object *o = json_tokener_parse(json), *v;
	int64_t r = -1;

	assert_non_null(o); /* every detail is valid JSON */
	if (json_object_object_get_ex(o, key, &v))
		r = json_object_get_int64(v);
	json_object_put(o);
	return r;
}

static const char *jstr(const char *json, const char *key, char *buf, size_t n)
{
	struct json_object *o = json_tokener_parse(json), *v;

	assert_non_null(o);
	buf[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(buf, n, "%s", json_object_get_string(v));
	json_object_put(o);
	return buf;
}

static void decision(struct zt_decision *d, enum zt_threat t, const char *src, uint64_t flows)
{
	uint8_t a[16] = { 0 };

	inet_pton(AF_INET, src, a);
	zt_decision_init(d, t, ZT_ROLE_SOURCE, 4, a, 0);
	d->score = 0.9f;
	d->flows = flows;
	d->packets = flows * 6;
	d->bytes = flows * 400;
	snprintf(d->subtype, sizeof(d->subtype), "short-sessions");
	snprintf(d->evidence, sizeof(d->evidence), "evidence with a \"quote\" and a \\ slash");
}

static void test_one_incident_growing(void **state)
{
	struct zt_incidents_cfg c;
	struct zt_incidents *t;
	struct posts p = { 0 };
	struct zt_decision d;
	struct zt_resp_action a = { .act = ZT_RA_BLOCK,
				    .mode = ZT_RESP_BLOCK,
				    .family = 4,
				    .ttl_ns = 600 * SEC,
				    .until_ns = 700 * SEC,
				    .offence = 1,
				    .why = "block" };
	struct zt_incident *i, *i2;
	uint8_t src[16] = { 0 };
	bool opened;
	char buf[64];
	int64_t last_version = 0;

	zt_incidents_cfg_defaults(&c);
	c.update_ns = 5 * SEC;
	c.idle_ns = 60 * SEC;
	assert_int_equal(zt_incidents_new(&c, collect, &p, &t), 0);
	inet_pton(AF_INET, "203.0.113.5", src);
	memcpy(a.addr, src, 4);
	decision(&d, ZT_THREAT_BRUTEFORCE, "203.0.113.5", 10);
	i = zt_incidents_on_decision(t, &d, &a, 100 * SEC, 1000000, &opened);
	assert_non_null(i);
	assert_true(opened);
	assert_int_equal(p.n, 0); /* posted once the caller has added the capture */
	snprintf(i->capture, sizeof(i->capture), "/var/lib/ztagent/pcap/x-1.pcapng.gz");
	zt_incidents_publish(t, i, 1000000);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.kind[0], "incident.open");
	assert_string_equal(p.subject[0], "bruteforce 203.0.113.5");
	assert_int_equal(jint(p.detail[0], "flows"), 10);
	assert_string_equal(jstr(p.detail[0], "action", buf, sizeof(buf)), "block");
	assert_string_equal(jstr(p.detail[0], "blocked", buf, sizeof(buf)), "203.0.113.5/32");
	assert_string_equal(jstr(p.detail[0], "capture", buf, sizeof(buf)),
			    "/var/lib/ztagent/pcap/x-1.pcapng.gz");
	assert_string_equal(jstr(p.detail[0], "state", buf, sizeof(buf)), "open");
	last_version = jint(p.detail[0], "version");

	/* 500 flows and 3 more decisions: still one incident, counts grow. */
	for (int k = 0; k < 500; k++)
		assert_int_equal(
			zt_incidents_attribute(t, 4, src, 1, 6, 400, 0, 101 * SEC, 2000000), 1);
	for (int k = 0; k < 3; k++) {
		i2 = zt_incidents_on_decision(t, &d, &a, 102 * SEC, 3000000, &opened);
		assert_ptr_equal(i2, i);
		assert_false(opened);
	}
	/* Another threat of the same source is another incident; another source too. */
	decision(&d, ZT_THREAT_SCAN, "203.0.113.5", 4);
	i2 = zt_incidents_on_decision(t, &d, &a, 102 * SEC, 3000000, &opened);
	assert_true(opened && i2 != i);
	zt_incidents_publish(t, i2, 3000000);
	/* Flows of that source now count in both. */
	assert_int_equal(zt_incidents_attribute(t, 4, src, 1, 1, 1, 0, 103 * SEC, 3000000), 2);
	/* Not yet: the update interval has not passed since the open. */
	p.n = 2;
	zt_incidents_tick(t, 104 * SEC, 4000000);
	assert_int_equal(p.n, 2);
	zt_incidents_tick(t, 108 * SEC, 6000000);
	assert_int_equal(p.n, 4); /* one update each */
	for (int k = 2; k < 4; k++) {
		assert_string_equal(p.kind[k], "incident.update");
		if (strstr(p.subject[k], "bruteforce")) {
			assert_int_equal(jint(p.detail[k], "flows"), 10 + 500 + 1);
			assert_int_equal(jint(p.detail[k], "decisions"), 4);
			assert_true(jint(p.detail[k], "version") > last_version);
			last_version = jint(p.detail[k], "version");
		}
	}
	/* Nothing changed: nothing posted. */
	zt_incidents_tick(t, 120 * SEC, 20000000);
	assert_int_equal(p.n, 4);
	/* Idle for idle_ns: closed, posted, listed as closed, found by a prefix. */
	zt_incidents_tick(t, 170 * SEC, 70000000);
	assert_int_equal(p.n, 6);
	assert_string_equal(p.kind[4], "incident.close");
	assert_string_equal(jstr(p.detail[4], "state", buf, sizeof(buf)), "closed");
	assert_string_equal(jstr(p.detail[4], "close_reason", buf, sizeof(buf)), "idle");
	{
		const struct zt_incident *v[8];
		char id[40];
		int m;

		assert_int_equal(zt_incidents_list(t, true, false, v, 8), 0);
		assert_int_equal(zt_incidents_list(t, false, true, v, 8), 2);
		jstr(p.detail[0], "incident_id", id, sizeof(id));
		/* UUIDv7s made within a minute share their first 8 digits: both match. */
		id[8] = '\0';
		assert_null(zt_incidents_find(t, id, &m));
		assert_int_equal(m, 2);
		jstr(p.detail[0], "incident_id", id, sizeof(id));
		assert_non_null(zt_incidents_find(t, id + 28, &m)); /* what ztctl shows */
		assert_int_equal(m, 1);
		assert_non_null(zt_incidents_find(t, id, &m));
		assert_null(zt_incidents_find(t, "ffff", &m));
		assert_int_equal(m, 0);
	}
	/* The next decision opens a new incident. */
	decision(&d, ZT_THREAT_BRUTEFORCE, "203.0.113.5", 10);
	i = zt_incidents_on_decision(t, &d, &a, 200 * SEC, 90000000, &opened);
	assert_true(opened);
	zt_incidents_free(t, 201 * SEC, 91000000); /* closes it: open + close posted */
	assert_int_equal(p.n, 8);
	assert_string_equal(p.kind[7], "incident.close");
	posts_free(&p);
}

/* Traffic of addresses without incidents costs a lookup and nothing else. */
/* ioc: one incident per (pod, IOC), not per pod; a repeat grows it; a detector's stays apart. */
static void test_ioc_per_pod_and_ioc(void **state)
{
	struct zt_incidents_cfg c;
	struct zt_incidents *t;
	struct posts p = { 0 };
	struct zt_decision d;
	struct zt_resp_action a = { .act = ZT_RA_BLOCK, .mode = ZT_RESP_BLOCK, .family = 4 };
	struct zt_incident *i1, *i2, *i3, *i4;
	bool opened;
	char buf[64];

	(void)state;
	zt_incidents_cfg_defaults(&c);
	assert_int_equal(zt_incidents_new(&c, collect, &p, &t), 0);
	decision(&d, ZT_THREAT_IOC, "198.18.0.10", 1);
	d.has_peer = true;
	inet_pton(AF_INET, "198.51.100.7", d.peer);
	snprintf(d.workload, sizeof(d.workload), "lab/client");
	i1 = zt_incidents_on_decision(t, &d, &a, 100 * SEC, 1000000, &opened);
	assert_non_null(i1);
	assert_true(opened);
	/* The same pod and IOC: the same incident, one more decision. */
	i2 = zt_incidents_on_decision(t, &d, &a, 101 * SEC, 2000000, &opened);
	assert_ptr_equal(i1, i2);
	assert_false(opened);
	assert_int_equal(i2->decisions, 2);
	/* The same pod, another IOC: an incident of its own. */
	inet_pton(AF_INET, "198.51.100.8", d.peer);
	i3 = zt_incidents_on_decision(t, &d, &a, 102 * SEC, 3000000, &opened);
	assert_true(opened);
	assert_ptr_not_equal(i3, i1);
	/* A detector's incident about the same address is apart from both. */
	decision(&d, ZT_THREAT_SCAN, "198.18.0.10", 1);
	i4 = zt_incidents_on_decision(t, &d, &a, 103 * SEC, 4000000, &opened);
	assert_true(opened);
	assert_ptr_not_equal(i4, i1);
	assert_ptr_not_equal(i4, i3);
	zt_incidents_flush(t, 5000000);
	assert_true(p.n >= 3);
	for (int k = 0; k < p.n; k++)
		if (!strcmp(jstr(p.detail[k], "threat_type", buf, sizeof(buf)), "ioc"))
			assert_string_equal(jstr(p.detail[k], "workload", buf, sizeof(buf)),
					    "lab/client");
	zt_incidents_free(t, 200 * SEC, 9000000);
	posts_free(&p);
}

static void test_attribute_nothing(void **state)
{
	struct zt_incidents_cfg c;
	struct zt_incidents *t;
	uint8_t a[16] = { 198, 18, 0, 3 };

	zt_incidents_cfg_defaults(&c);
	assert_int_equal(zt_incidents_new(&c, NULL, NULL, &t), 0);
	assert_int_equal(zt_incidents_attribute(t, 4, a, 1, 1, 1, 0, SEC, 1), 0);
	zt_incidents_free(t, SEC, 1);
}

static struct zt_seg_violation viol(const char *src, const char *dst, uint16_t sport,
				    uint16_t dport, const char *rule)
{
	struct zt_seg_violation v = {
		.verdict = 1,
		.proto = 17,
		.family = 4,
		.sport = sport,
		.dport = dport,
		.verdict_name = "denied",
		.reason_name = "no-rule",
		.protocol_name = "UDP",
		.rule = rule,
		.src_wl = "world",
		.dst_wl = "shop/web",
		.ifname = "v-web",
	};

	inet_pton(AF_INET, src, v.saddr);
	inet_pton(AF_INET, dst, v.daddr);
	return v;
}

/* 65k denials of one flood: one alert (two events), not 65k. */
static void test_denials_aggregated(void **state)
{
	struct zt_denyagg_cfg c;
	struct zt_denyagg *a;
	struct zt_denyagg_stats st;
	struct posts p = { 0 };
	char id0[40], id1[40], buf[64];

	zt_denyagg_cfg_defaults(&c);
	c.window_ns = 10 * SEC;
	assert_int_equal(zt_denyagg_new(&c, collect, &p, &a), 0);
	for (int k = 0; k < 65000; k++) {
		struct zt_seg_violation v =
			viol("198.18.0.3", "198.18.2.40", (uint16_t)(1024 + k % 60000), 7777,
			     "default-deny");

		zt_denyagg_add(a, &v, 1000 * SEC + (uint64_t)k * 100000, 1000000 + k);
	}
	/* The first at once, with count 1 and the event keys the alerts row needs. */
	assert_int_equal(p.n, 1);
	assert_string_equal(p.kind[0], "policy.violation");
	assert_int_equal(jint(p.detail[0], "count"), 1);
	assert_string_equal(jstr(p.detail[0], "src", buf, sizeof(buf)), "198.18.0.3");
	assert_string_equal(jstr(p.detail[0], "dst", buf, sizeof(buf)), "198.18.2.40");
	assert_int_equal(jint(p.detail[0], "dport"), 7777);
	assert_string_equal(jstr(p.detail[0], "verdict", buf, sizeof(buf)), "denied");
	jstr(p.detail[0], "alert_id", id0, sizeof(id0));
	assert_int_equal(strlen(id0), 36);
	/* Not over yet (6.5 s of a 10 s window). */
	zt_denyagg_tick(a, 1008 * SEC, 0, false);
	assert_int_equal(p.n, 1);
	zt_denyagg_tick(a, 1011 * SEC, 0, false);
	assert_int_equal(p.n, 2);
	assert_int_equal(jint(p.detail[1], "count"), 65000);
	assert_string_equal(jstr(p.detail[1], "alert_id", id1, sizeof(id1)), id0);
	assert_true(jint(p.detail[1], "last_unix_us") > jint(p.detail[1], "first_unix_us"));
	/* Another window: another alert. */
	{
		struct zt_seg_violation v =
			viol("198.18.0.3", "198.18.2.40", 5555, 7777, "default-deny");

		zt_denyagg_add(a, &v, 1020 * SEC, 20000000);
	}
	assert_int_equal(p.n, 3);
	assert_string_not_equal(jstr(p.detail[2], "alert_id", id1, sizeof(id1)), id0);
	/* A single violation in its window posts once only. */
	zt_denyagg_tick(a, 1040 * SEC, 0, false);
	assert_int_equal(p.n, 3);
	zt_denyagg_get_stats(a, &st);
	assert_int_equal(st.violations, 65001);
	assert_int_equal(st.alerts, 2);
	assert_int_equal(st.updates, 1);
	zt_denyagg_free(a);
	posts_free(&p);
}

/* Distinct keys are distinct alerts; past max_keys they fold per destination. */
static void test_denials_keys_and_fold(void **state)
{
	struct zt_denyagg_cfg c;
	struct zt_denyagg *a;
	struct zt_denyagg_stats st;
	struct posts p = { 0 };
	char buf[64];

	zt_denyagg_cfg_defaults(&c);
	c.max_keys = 100;
	assert_int_equal(zt_denyagg_new(&c, collect, &p, &a), 0);
	/* Same source and destination, two rules and two ports: four alerts. */
	for (int k = 0; k < 40; k++) {
		struct zt_seg_violation v =
			viol("198.18.0.3", "198.18.2.40", 4000, (uint16_t)(k % 2 ? 81 : 82),
			     k % 4 < 2 ? "ns/a rule 1" : "ns/b rule 2");

		zt_denyagg_add(a, &v, SEC, 1);
	}
	assert_int_equal(p.n, 4);
	posts_free(&p);
	zt_denyagg_tick(a, 100 * SEC, 0, true);
	assert_int_equal(p.n, 4); /* each count 10: an update each */
	posts_free(&p);
	/* 300 sources: 100 keys, the rest folded into one without a source. */
	for (int k = 0; k < 300; k++) {
		char s[32];
		struct zt_seg_violation v;

		snprintf(s, sizeof(s), "203.0.%d.%d", k / 250, k % 250 + 1);
		v = viol(s, "198.18.2.40", 4000, 7777, "default-deny");
		zt_denyagg_add(a, &v, 200 * SEC, 2);
	}
	assert_int_equal(p.n, 101);
	assert_string_equal(jstr(p.detail[100], "src", buf, sizeof(buf)), "");
	assert_non_null(strstr(p.detail[100], "\"src\":null"));
	zt_denyagg_tick(a, 300 * SEC, 0, true);
	assert_int_equal(jint(p.detail[p.n - 1], "count"), 200);
	zt_denyagg_get_stats(a, &st);
	assert_int_equal(st.folded, 200);
	zt_denyagg_free(a);
	posts_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_incident_growing),
		cmocka_unit_test(test_ioc_per_pod_and_ioc),
		cmocka_unit_test(test_attribute_nothing),
		cmocka_unit_test(test_denials_aggregated),
		cmocka_unit_test(test_denials_keys_and_fold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
