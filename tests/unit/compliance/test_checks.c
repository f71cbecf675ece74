// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the compliance checks over plain facts (a posture that
 * passes everything, then each fault on its own and the verdict it must
 * give; missing data never passes), the ingress-from-the-world analysis on
 * parsed policies, and the report's HTML escaping and JSON with hostile
 * names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compliance/compliance.h"

#define NOW 1796000000 /* 2026-11-30 */
#define DAY 86400

static void *dup_mem(const void *p, size_t n)
{
	void *q = malloc(n);

	assert_non_null(q);
	memcpy(q, p, n);
	return q;
}

/* A node whose posture passes every check. */
static void good(struct zt_cmp_facts *f)
{
	static const struct zt_cmp_endpoint eps[] = {
		{ .name = "shop/web",
		  .ns = "shop",
		  .enforced = true,
		  .isolated_ingress = true,
		  .isolated_egress = true },
		{ .name = "shop/db",
		  .ns = "shop",
		  .enforced = true,
		  .isolated_ingress = true,
		  .isolated_egress = true },
		{ .name = "pay/ledger", .ns = "pay", .enforced = true, .isolated_ingress = true },
	};
	static const struct zt_cmp_policy pols[] = {
		{ .kind = "NetworkPolicy",
		  .ns = "shop",
		  .name = "web",
		  .origin = "policy.dir",
		  .since_unix = NOW - 100 * DAY },
		{ .kind = "ZeroTrustPolicy",
		  .ns = "pay",
		  .name = "ledger",
		  .origin = "policy.dir",
		  .audit = true,
		  .since_unix = NOW - 3 * DAY },
	};
	static const struct zt_cmp_feed feeds[] = {
		{ .name = "drop", .state = "ok", .age_s = 600 },
	};
	static const struct zt_cmp_day days[] = {
		{ .day_unix = NOW - 2 * DAY, .denials = 5 },
		{ .day_unix = NOW - DAY, .denials = 7, .incidents = 1 },
		{ .day_unix = NOW },
	};

	memset(f, 0, sizeof(*f));
	f->now_unix = NOW;
	f->since_unix = NOW - 30 * DAY;
	snprintf(f->node, sizeof(f->node), "node-1");
	f->audit_max_age_s = 14 * DAY;
	f->daemon.ok = true;
	f->policy_default_deny = true;
	snprintf(f->mtls_mode, sizeof(f->mtls_mode), "strict");
	f->retention_months = 12;
	f->eps = dup_mem(eps, sizeof(eps));
	f->n_eps = 3;
	f->pols = dup_mem(pols, sizeof(pols));
	f->n_pols = 2;
	f->feeds_src.ok = true;
	f->feeds = dup_mem(feeds, sizeof(feeds));
	f->n_feeds = 1;
	f->db_configured = true;
	f->db.ok = true;
	f->audit_state = 0;
	f->audit_rows = 1234;
	f->first_audit_unix = NOW - 400 * DAY;
	f->flows_in_period = 5000;
	f->newest_flow_unix = NOW - 60;
	/* 2025-11 .. 2027-01: 12 months back, 2 ahead. */
	f->oldest_partition = 202511;
	f->n_partitions = 15;
	f->oldest_row_unix = NOW - 390 * DAY;
	f->days = dup_mem(days, sizeof(days));
	f->n_days = 3;
	f->denials = 12;
	f->incidents = 1;
	snprintf(f->incidents_from, sizeof(f->incidents_from), "incidents table");
	f->cross_node_flows = 40;
	f->mtls_recorded = true;
	f->mtls_flows = 40;
	f->drift_metric.ok = true;
	f->drift_audit_read = true;
}

/* The good posture again, for the next case of a test. */
static void again(struct zt_cmp_facts *f)
{
	zt_cmp_facts_free(f);
	good(f);
}

static const struct zt_cmp_check *find(const struct zt_cmp_report *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->checks[i].id, id))
			return &r->checks[i];
	fail_msg("no check %s", id);
	return NULL;
}

static enum zt_cmp_result result_of(const struct zt_cmp_facts *f, const char *id)
{
	struct zt_cmp_report r;
	enum zt_cmp_result res;

	assert_int_equal(zt_cmp_assess(f, &r), 0);
	res = find(&r, id)->result;
	zt_cmp_report_free(&r);
	return res;
}

static bool evidence_has(const struct zt_cmp_facts *f, const char *id, const char *needle)
{
	struct zt_cmp_report r;
	const struct zt_cmp_check *c;
	bool yes;

	assert_int_equal(zt_cmp_assess(f, &r), 0);
	c = find(&r, id);
	yes = c->evidence && strstr(c->evidence, needle);
	for (size_t i = 0; !yes && i < c->n_items; i++)
		yes = strstr(c->items[i], needle) != NULL;
	if (!yes)
		print_message("%s evidence: %s\n", id, c->evidence);
	zt_cmp_report_free(&r);
	return yes;
}

static void test_all_pass(void **state)
{
	struct zt_cmp_facts f;
	struct zt_cmp_report r;

	good(&f);
	assert_int_equal(zt_cmp_assess(&f, &r), 0);
	assert_int_equal(r.n, ZT_CMP_NCHECKS);
	for (size_t i = 0; i < r.n; i++) {
		if (r.checks[i].result != ZT_CMP_PASS)
			fail_msg("%s is %s: %s", r.checks[i].id,
				 zt_cmp_result_name(r.checks[i].result), r.checks[i].evidence);
		/* Every check says what it measured and what it serves. */
		assert_non_null(r.checks[i].evidence);
		assert_true(strlen(r.checks[i].evidence) > 10);
		assert_true(strlen(r.checks[i].requirement) > 5);
		assert_non_null(strstr(r.checks[i].id, "ZT-"));
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(r.checks[i].id, r.checks[k].id);
	}
	assert_int_equal(r.passed, ZT_CMP_NCHECKS);
	assert_int_equal(r.overall, ZT_CMP_PASS);
	zt_cmp_report_free(&r);
	zt_cmp_facts_free(&f);
}

static void test_endpoint_not_enforced(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.eps[1].enforced = false;
	snprintf(f.eps[1].problem, sizeof(f.eps[1].problem),
		 "tc_endpoint is not attached to its interface");
	assert_int_equal(result_of(&f, "ZT-SEG-001"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-SEG-001", "shop/db: tc_endpoint is not attached"));
	assert_true(evidence_has(&f, "ZT-SEG-001", "2 of 3 endpoints"));
	/* No endpoints at all: nothing to show, not a pass. */
	f.n_eps = 0;
	assert_int_equal(result_of(&f, "ZT-SEG-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-SEG-001", "No data"));
	zt_cmp_facts_free(&f);
}

static void test_endpoint_open(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.policy_default_deny = false;
	f.eps[0].isolated_ingress = false;
	assert_int_equal(result_of(&f, "ZT-SEG-002"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-SEG-002", "shop/web: no policy isolates its ingress"));
	f.eps[0].audit_only = true;
	assert_int_equal(result_of(&f, "ZT-SEG-002"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-SEG-002", "only by audit-mode policies"));
	zt_cmp_facts_free(&f);
}

static void test_namespace_without_policy(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	snprintf(f.eps[2].ns, sizeof(f.eps[2].ns), "lonely");
	/* Default deny keeps its pods isolated: a warning, not a pass. */
	assert_int_equal(result_of(&f, "ZT-SEG-003"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-SEG-003", "lonely (1 endpoint)"));
	assert_true(evidence_has(&f, "ZT-SEG-003", "1 of 2 namespaces"));
	f.policy_default_deny = false;
	assert_int_equal(result_of(&f, "ZT-SEG-003"), ZT_CMP_FAIL);
	zt_cmp_facts_free(&f);
}

static void test_world_rules(void **state)
{
	struct zt_cmp_facts f;
	struct zt_cmp_world_rule w = { .policy = "NetworkPolicy shop/web",
				       .rule = "spec.ingress[0]",
				       .why = "ipBlock 0.0.0.0/0",
				       .ports = "TCP/443" };

	good(&f);
	f.world = dup_mem(&w, sizeof(w));
	f.n_world = 1;
	/* Limited to a port: listed for review. */
	assert_int_equal(result_of(&f, "ZT-SEG-004"), ZT_CMP_WARN);
	assert_true(
		evidence_has(&f, "ZT-SEG-004",
			     "NetworkPolicy shop/web spec.ingress[0]: ipBlock 0.0.0.0/0, TCP/443"));
	f.world[0].all_ports = true;
	snprintf(f.world[0].ports, sizeof(f.world[0].ports), "every port");
	assert_int_equal(result_of(&f, "ZT-SEG-004"), ZT_CMP_FAIL);
	/* Every port, but the policy only audits: nothing is let in by it alone. */
	f.world[0].audit = true;
	assert_int_equal(result_of(&f, "ZT-SEG-004"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_audit_age(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	assert_true(evidence_has(&f, "ZT-SEG-005", "pay/ledger: in audit mode since"));
	f.pols[1].since_unix = NOW - 15 * DAY;
	assert_int_equal(result_of(&f, "ZT-SEG-005"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-SEG-005", "(15d, the file's time): too long"));
	f.pols[1].since_recorded = true;
	assert_true(evidence_has(&f, "ZT-SEG-005", "(15d, as the agent recorded it): too long"));
	f.audit_max_age_s = 30 * DAY;
	assert_int_equal(result_of(&f, "ZT-SEG-005"), ZT_CMP_PASS);
	f.pols[1].since_unix = 0;
	assert_int_equal(result_of(&f, "ZT-SEG-005"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-SEG-005", "age not known"));
	zt_cmp_facts_free(&f);
}

static void test_mtls(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.mtls_flows = 39;
	assert_int_equal(result_of(&f, "ZT-MTLS-001"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-MTLS-001", "39 of them"));
	/* What the records say today: nothing about the tunnel. */
	f.mtls_recorded = false;
	assert_int_equal(result_of(&f, "ZT-MTLS-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-MTLS-001", "No data"));
	snprintf(f.mtls_mode, sizeof(f.mtls_mode), "off");
	assert_int_equal(result_of(&f, "ZT-MTLS-001"), ZT_CMP_FAIL);
	f.cross_node_flows = 0;
	assert_int_equal(result_of(&f, "ZT-MTLS-001"), ZT_CMP_WARN);
	f.cross_node_flows = -1;
	assert_int_equal(result_of(&f, "ZT-MTLS-001"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_feeds(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	snprintf(f.feeds[0].state, sizeof(f.feeds[0].state), "failing");
	snprintf(f.feeds[0].last_error, sizeof(f.feeds[0].last_error), "HTTP 503");
	assert_int_equal(result_of(&f, "ZT-FEED-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-FEED-001", "drop: failing"));
	snprintf(f.feeds[0].state, sizeof(f.feeds[0].state), "stale");
	f.feeds[0].age_s = 3 * DAY;
	assert_int_equal(result_of(&f, "ZT-FEED-001"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-FEED-001", "drop: stale, content age 3d"));
	f.n_feeds = 0;
	assert_int_equal(result_of(&f, "ZT-FEED-001"), ZT_CMP_WARN);
	f.feeds_src.ok = false;
	assert_int_equal(result_of(&f, "ZT-FEED-001"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_audit_chain(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.audit_state = 1;
	snprintf(f.audit_problem, sizeof(f.audit_problem), "row 42 changed (hash mismatch)");
	assert_int_equal(result_of(&f, "ZT-AUD-001"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-AUD-001", "row 42 changed"));
	f.audit_state = 0;
	f.audit_rows = 0;
	assert_int_equal(result_of(&f, "ZT-AUD-001"), ZT_CMP_WARN);
	f.audit_state = -1;
	assert_int_equal(result_of(&f, "ZT-AUD-001"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_records_missing(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	/* No database at all: no records kept is a failure, not a lack of data. */
	f.db_configured = false;
	f.db.ok = false;
	assert_int_equal(result_of(&f, "ZT-REC-001"), ZT_CMP_FAIL);
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_FAIL);
	assert_int_equal(result_of(&f, "ZT-AUD-001"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-REC-001", "database.url is empty"));
	/* A database that cannot be read: no data, a warning. */
	f.db_configured = true;
	snprintf(f.db.why, sizeof(f.db.why), "connection refused");
	assert_int_equal(result_of(&f, "ZT-REC-001"), ZT_CMP_WARN);
	assert_int_equal(result_of(&f, "ZT-MON-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-REC-001", "No data"));
	assert_true(evidence_has(&f, "ZT-REC-001", "connection refused"));
	f.db.ok = true;
	f.flows_in_period = 0;
	assert_int_equal(result_of(&f, "ZT-REC-001"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_retention(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.retention_months = 6;
	f.oldest_partition = 202605;
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-REC-002", "12 months PCI DSS 10.5.1"));
	/* 12 months configured, the agent recording for 400 days, but only 3 months kept. */
	again(&f);
	f.oldest_partition = 202609;
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_FAIL);
	assert_true(evidence_has(&f, "ZT-REC-002", "dropped early"));
	/* A young installation: records reach back to its start, not 12 months yet. */
	f.first_audit_unix = NOW - 70 * DAY;
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_PASS);
	assert_true(evidence_has(&f, "ZT-REC-002", "not reached yet"));
	/* A month in between is gone. */
	snprintf(f.missing_partitions, sizeof(f.missing_partitions), "2026-10");
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_FAIL);
	f.missing_partitions[0] = '\0';
	/* Older than the retention still there: maintenance is not running. */
	again(&f);
	f.oldest_partition = 202501;
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_WARN);
	f.oldest_partition = 0;
	assert_int_equal(result_of(&f, "ZT-REC-002"), ZT_CMP_FAIL);
	zt_cmp_facts_free(&f);
}

static void test_records_dates(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	f.newest_flow_unix = NOW - 5 * DAY;
	assert_true(evidence_has(&f, "ZT-REC-001",
				 "period 2026-10-31 to 2026-11-30; the newest starts 2026-11-25"));
	zt_cmp_facts_free(&f);
}

static void test_monitoring(void **state)
{
	struct zt_cmp_facts f;

	good(&f);
	assert_true(evidence_has(&f, "ZT-MON-001", "12 denied flows"));
	f.open_incidents = 2;
	assert_int_equal(result_of(&f, "ZT-MON-001"), ZT_CMP_WARN);
	f.open_incidents = 0;
	f.critical_alerts = 1;
	assert_int_equal(result_of(&f, "ZT-MON-001"), ZT_CMP_WARN);
	zt_cmp_facts_free(&f);
}

static void test_drift(void **state)
{
	struct zt_cmp_facts f;
	struct zt_cmp_count kinds[] = { { "drift.repair", 3 }, { "drift.flapping", 1 } };

	good(&f);
	/* The metric absent: drift repair is not running, so it cannot pass. */
	f.drift_metric.ok = false;
	snprintf(f.drift_metric.why, sizeof(f.drift_metric.why),
		 "the agent does not export ztagent_drift_repairs_total");
	assert_int_equal(result_of(&f, "ZT-DRIFT-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-DRIFT-001", "does not export"));
	f.drift_audit_read = false;
	assert_int_equal(result_of(&f, "ZT-DRIFT-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-DRIFT-001", "No data"));
	again(&f);
	f.drift_repairs_metric = 3;
	f.drift_events = 3;
	f.drift_kinds = dup_mem(kinds, sizeof(kinds[0]));
	f.n_drift_kinds = 1;
	assert_int_equal(result_of(&f, "ZT-DRIFT-001"), ZT_CMP_WARN);
	assert_true(evidence_has(&f, "ZT-DRIFT-001", "drift.repair: 3"));
	free(f.drift_kinds);
	f.drift_kinds = dup_mem(kinds, sizeof(kinds));
	f.n_drift_kinds = 2;
	f.drift_flapping = 1;
	assert_int_equal(result_of(&f, "ZT-DRIFT-001"), ZT_CMP_FAIL);
	zt_cmp_facts_free(&f);
}

static void test_daemon_missing(void **state)
{
	struct zt_cmp_facts f;
	static const char *const ids[] = { "ZT-SEG-001", "ZT-SEG-002", "ZT-SEG-003",
					   "ZT-SEG-004", "ZT-SEG-005", "ZT-MTLS-001" };

	good(&f);
	f.daemon.ok = false;
	snprintf(f.daemon.why, sizeof(f.daemon.why), "connection refused");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(result_of(&f, ids[i]), ZT_CMP_WARN);
		assert_true(evidence_has(&f, ids[i], "No data"));
	}
	zt_cmp_facts_free(&f);
}

static void test_items_bounded(void **state)
{
	struct zt_cmp_facts f;
	struct zt_cmp_report r;
	const struct zt_cmp_check *c;

	good(&f);
	free(f.eps);
	f.n_eps = 200;
	f.eps = calloc(f.n_eps, sizeof(*f.eps));
	assert_non_null(f.eps);
	for (size_t i = 0; i < f.n_eps; i++) {
		snprintf(f.eps[i].name, sizeof(f.eps[i].name), "shop/p%zu", i);
		snprintf(f.eps[i].ns, sizeof(f.eps[i].ns), "shop");
	}
	assert_int_equal(zt_cmp_assess(&f, &r), 0);
	c = find(&r, "ZT-SEG-001");
	assert_int_equal(c->result, ZT_CMP_FAIL);
	assert_int_equal(c->n_items, ZT_CMP_ITEMS_SHOWN + 1);
	assert_string_equal(c->items[ZT_CMP_ITEMS_SHOWN], "... and 150 more");
	assert_non_null(strstr(c->evidence, "0 of 200 endpoints"));
	zt_cmp_report_free(&r);
	zt_cmp_facts_free(&f);
}

/* ---- the world-open analysis on parsed policies ---- */

static size_t world_rules(const char *yaml, char *why, size_t wn, char *ports, size_t pn, bool *all)
{
	struct zt_policy_set *set = NULL;
	char err[512] = "";
	size_t n = 0;

	if (zt_policy_parse_buf(yaml, strlen(yaml), "t.yaml", &set, err, sizeof(err)) < 0)
		fail_msg("parse: %s", err);
	for (size_t i = 0; i < set->n; i++)
		for (int d = 0; d < ZT_POL_DIR_MAX; d++)
			for (size_t k = 0; k < set->policies[i].n_rules[d]; k++)
				n += zt_cmp_rule_world_open(&set->policies[i],
							    &set->policies[i].rules[d][k], why, wn,
							    ports, pn, all);
	zt_policy_set_free(set);
	return n;
}

static void test_world_open(void **state)
{
	char why[200], ports[200];
	bool all = false;

	assert_int_equal(
		world_rules(
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: a, namespace: shop}\n"
			"spec:\n  podSelector: {}\n  ingress:\n"
			"    - from: [{ipBlock: {cidr: 0.0.0.0/0}}]\n"
			"      ports: [{port: 443}, {protocol: UDP, port: 5000, endPort: 5010}]\n",
			why, sizeof(why), ports, sizeof(ports), &all),
		1);
	assert_string_equal(why, "ipBlock 0.0.0.0/0");
	assert_string_equal(ports, "TCP/443, UDP/5000-5010");
	assert_false(all);
	assert_int_equal(
		world_rules("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			    "metadata: {name: a}\n"
			    "spec:\n  podSelector: {}\n  ingress:\n"
			    "    - from: [{ipBlock: {cidr: '::/0', except: ['2001:db8::/32']}}]\n",
			    why, sizeof(why), ports, sizeof(ports), &all),
		1);
	assert_string_equal(why, "ipBlock ::/0 (with except)");
	assert_string_equal(ports, "every port");
	assert_true(all);
	/* A rule {} lets everyone in. */
	assert_int_equal(world_rules("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
				     "metadata: {name: a}\n"
				     "spec:\n  podSelector: {}\n  ingress:\n    - {}\n",
				     why, sizeof(why), ports, sizeof(ports), &all),
			 1);
	assert_string_equal(why, "from is empty (every source)");
	/* Not the world: a private range, pods, egress, deny rules, ignored directions. */
	assert_int_equal(
		world_rules(
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: a}\n"
			"spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress:\n"
			"    - from: [{ipBlock: {cidr: 10.0.0.0/8}}, {podSelector: {}}]\n"
			"  egress:\n    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n"
			"---\n"
			"apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
			"metadata: {name: b}\n"
			"spec:\n  podSelector: {}\n  ingress:\n"
			"    - action: deny\n      from: [{ipBlock: {cidr: 0.0.0.0/0}}]\n"
			"---\n"
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: c}\n"
			"spec:\n  podSelector: {}\n  policyTypes: [Egress]\n  ingress:\n    - {}\n",
			why, sizeof(why), ports, sizeof(ports), &all),
		0);
}

/* ---- the report ---- */

static char *render(int (*fn)(const struct zt_cmp_facts *, const struct zt_cmp_report *, FILE *),
		    const struct zt_cmp_facts *f, const struct zt_cmp_report *r)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	assert_non_null(m);
	assert_int_equal(fn(f, r, m), 0);
	assert_int_equal(fclose(m), 0);
	return buf;
}

static void test_html_escape(void **state)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	assert_non_null(m);
	zt_cmp_html_escape("<script>alert(1)</script> a&b \"q\" 'x' \x01\x7f", m);
	assert_int_equal(fclose(m), 0);
	assert_string_equal(buf, "&lt;script&gt;alert(1)&lt;/script&gt; a&amp;b &quot;q&quot; "
				 "&#39;x&#39; &#xFFFD;&#xFFFD;");
	free(buf);
}

static void test_hostile_names(void **state)
{
	static const char evil[] = "<script>alert(1)</script>";
	struct zt_cmp_facts f;
	struct zt_cmp_report r;
	struct zt_cmp_world_rule w = { .why = "ipBlock 0.0.0.0/0",
				       .ports = "every port",
				       .rule = "spec.ingress[0]",
				       .all_ports = true };
	char *html, *json, *txt;

	good(&f);
	snprintf(f.node, sizeof(f.node), "%s", evil);
	snprintf(f.eps[0].name, sizeof(f.eps[0].name), "shop/%s", evil);
	f.eps[0].enforced = false;
	snprintf(w.policy, sizeof(w.policy), "NetworkPolicy shop/\"><img src=x onerror=alert(2)>");
	f.world = dup_mem(&w, sizeof(w));
	f.n_world = 1;
	snprintf(f.pols[1].name, sizeof(f.pols[1].name), "%s\n\x1b[31mred", evil);
	assert_int_equal(zt_cmp_assess(&f, &r), 0);

	html = render(zt_cmp_write_html, &f, &r);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "\x1b"));
	assert_non_null(strstr(html, "shop/&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(html, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
	/* Every check is on the page, by id, with its result. */
	for (size_t i = 0; i < r.n; i++) {
		char id[64];

		snprintf(id, sizeof(id), "<tr id=\"%s\" class=\"check\" data-result=\"%s\">",
			 r.checks[i].id, zt_cmp_result_name(r.checks[i].result));
		assert_non_null(strstr(html, id));
	}
	assert_non_null(strstr(html, "<svg id=\"chart\""));
	/* Self-contained: nothing is fetched. */
	assert_null(strstr(html, " src=\""));
	assert_null(strstr(html, " href=\""));
	assert_null(strstr(html, "<link"));
	assert_null(strstr(html, "url("));

	json = render(zt_cmp_write_json, &f, &r);
	assert_null(strstr(json, "\x1b"));
	assert_non_null(strstr(json, "\"overall\": \"fail\""));
	assert_non_null(strstr(json, "\"id\": \"ZT-DRIFT-001\""));

	txt = render(zt_cmp_write_text, &f, &r);
	assert_null(strstr(txt, "\x1b"));
	assert_non_null(strstr(txt, "fail  ZT-SEG-001"));
	free(html);
	free(json);
	free(txt);
	zt_cmp_report_free(&r);
	zt_cmp_facts_free(&f);
}

static void test_chart(void **state)
{
	struct zt_cmp_facts f;
	struct zt_cmp_report r;
	char *html;

	good(&f);
	assert_int_equal(zt_cmp_assess(&f, &r), 0);
	html = render(zt_cmp_write_html, &f, &r);
	/* One bar per day and series, the largest (7 denials) full height. */
	assert_non_null(strstr(html, "7 denied flows</title>"));
	assert_non_null(strstr(html, "1 incidents</title>"));
	assert_non_null(strstr(html, "height=\"180.0\""));
	free(html);
	f.n_days = 0;
	html = render(zt_cmp_write_html, &f, &r);
	assert_non_null(strstr(html, "no data: the records could not be read"));
	free(html);
	zt_cmp_report_free(&r);
	zt_cmp_facts_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_pass),
		cmocka_unit_test(test_endpoint_not_enforced),
		cmocka_unit_test(test_endpoint_open),
		cmocka_unit_test(test_namespace_without_policy),
		cmocka_unit_test(test_world_rules),
		cmocka_unit_test(test_audit_age),
		cmocka_unit_test(test_mtls),
		cmocka_unit_test(test_feeds),
		cmocka_unit_test(test_audit_chain),
		cmocka_unit_test(test_records_missing),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_records_dates),
		cmocka_unit_test(test_monitoring),
		cmocka_unit_test(test_drift),
		cmocka_unit_test(test_daemon_missing),
		cmocka_unit_test(test_items_bounded),
		cmocka_unit_test(test_world_open),
		cmocka_unit_test(test_html_escape),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_chart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
