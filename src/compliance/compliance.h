/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Compliance posture: checks over facts, and the report in JSON, text and
 * HTML.
 *
 * `ztctl compliance report` collects the facts (the daemon's API, the
 * records in PostgreSQL, the metrics endpoint) into struct zt_cmp_facts;
 * zt_cmp_assess() is a pure function from those facts to the checks, so
 * every verdict is unit-tested over plain structs. A fact that could not
 * be collected is marked unknown, and its check says "no data" with a
 * warn: an absent fact never passes.
 *
 * Check ids are stable (ZT-<AREA>-<NNN>); the requirement each serves is
 * named as the standard names it.
 */
#ifndef ZT_COMPLIANCE_H
#define ZT_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "seg/policy.h"

#define ZT_CMP_NAME_MAX 300
#define ZT_CMP_TEXT_MAX 600
#define ZT_CMP_ITEMS_SHOWN 50 /* names listed per check; the rest are counted */

enum zt_cmp_result {
	ZT_CMP_PASS = 0,
	ZT_CMP_WARN,
	ZT_CMP_FAIL,
};

const char *zt_cmp_result_name(enum zt_cmp_result r); /* "pass" | "warn" | "fail" */

struct zt_cmp_endpoint {
	char name[ZT_CMP_NAME_MAX]; /* namespace/name */
	char ns[ZT_CMP_NAME_MAX];
	bool pending;
	bool enforced; /* tc_endpoint attached, endpoints map entry current */
	char problem[ZT_CMP_TEXT_MAX]; /* why not enforced */
	bool isolated_ingress; /* default deny, the pending posture, or an enforce-mode policy */
	bool isolated_egress;
	bool audit_only; /* only audit-mode policies isolate it (they never drop) */
};

struct zt_cmp_policy {
	char kind[32];
	char ns[ZT_CMP_NAME_MAX];
	char name[ZT_CMP_NAME_MAX];
	char origin[ZT_CMP_NAME_MAX]; /* "policy.dir", "feed:NAME/FILE", "generated", ... */
	bool audit; /* mode: audit */
	/*
	 * Since when it is in audit mode: as the agent recorded it
	 * (policy_audit_mode, since_recorded), else its file's modification
	 * time; 0: not known.
	 */
	int64_t since_unix;
	bool since_recorded;
	uint64_t endpoints; /* how many it selects here */
};

/* An effective ingress allow rule that lets every address in (0.0.0.0/0, ::/0 or no from). */
struct zt_cmp_world_rule {
	char policy[ZT_CMP_NAME_MAX * 2]; /* "NetworkPolicy ns/name" */
	char rule[64]; /* "spec.ingress[0]" */
	char why[ZT_CMP_TEXT_MAX]; /* "ipBlock 0.0.0.0/0", "from is empty (every source)" */
	char ports[ZT_CMP_TEXT_MAX]; /* "TCP/443", "every port" */
	bool all_ports;
	bool audit; /* the policy is in audit mode */
};

struct zt_cmp_feed {
	char name[ZT_CMP_NAME_MAX];
	char state[16]; /* ok applying failing stale pending */
	char last_error[ZT_CMP_TEXT_MAX];
	int64_t age_s; /* -1: never */
};

struct zt_cmp_day {
	int64_t day_unix; /* 00:00 UTC */
	uint64_t denials;
	uint64_t incidents;
};

struct zt_cmp_count {
	char name[ZT_CMP_NAME_MAX];
	uint64_t n;
};

/* A fact's state: collected, or why not. */
struct zt_cmp_src {
	bool ok;
	char why[ZT_CMP_TEXT_MAX]; /* when !ok: what was missing or failed */
};

struct zt_cmp_facts {
	int64_t now_unix;
	int64_t since_unix; /* the period: [since, now] */
	char node[ZT_CMP_NAME_MAX];
	uint64_t audit_max_age_s; /* audit-mode policies older than this fail */

	/* From the daemon (compliance.facts, feeds.list). */
	struct zt_cmp_src daemon;
	bool policy_default_deny;
	char pending_posture[16];
	uint32_t retention_months;
	char mtls_mode[16]; /* off policy strict */
	struct zt_cmp_endpoint *eps;
	size_t n_eps;
	struct zt_cmp_policy *pols;
	size_t n_pols;
	struct zt_cmp_world_rule *world;
	size_t n_world;
	struct zt_cmp_src feeds_src;
	struct zt_cmp_feed *feeds;
	size_t n_feeds;

	/* From PostgreSQL. */
	bool db_configured;
	struct zt_cmp_src db; /* connected and read */
	int audit_state; /* 0 intact, 1 broken, -1 not verified */
	uint64_t audit_rows;
	char audit_problem[ZT_CMP_TEXT_MAX]; /* the first problem when broken */
	int64_t first_audit_unix; /* the oldest audit_log row; 0: none */
	uint64_t flows_in_period; /* network_flows rows, aggregates counted once */
	int64_t newest_flow_unix; /* 0: none */
	int oldest_partition; /* YYYYMM; 0: none */
	int64_t oldest_row_unix; /* in the oldest partition that has rows; 0: none */
	char oldest_row_why[ZT_CMP_TEXT_MAX]; /* when it could not be read */
	unsigned int n_partitions;
	char missing_partitions
		[ZT_CMP_TEXT_MAX]; /* months between the oldest and now without one */
	struct zt_cmp_day *days; /* one per day of the period, oldest first */
	size_t n_days;
	uint64_t denials, incidents, open_incidents, critical_alerts;
	char incidents_from[64]; /* "incidents table" | "alerts rows (kind not policy-*)" */
	int64_t cross_node_flows; /* -1: not computed */
	char cross_node_why[ZT_CMP_TEXT_MAX]; /* why not */
	bool mtls_recorded; /* do flow records say whether a flow was tunnelled? */
	int64_t mtls_flows; /* of cross_node_flows, those through the tunnel (when recorded) */

	/* Drift repair: the metric and the audit trail. */
	struct zt_cmp_src drift_metric; /* ok: the agent exports ztagent_drift_repairs_total */
	uint64_t drift_repairs_metric; /* since the agent started */
	bool drift_audit_read;
	uint64_t drift_events; /* audit_log drift.* rows in the period */
	uint64_t drift_flapping; /* of them, a repair that keeps coming back */
	struct zt_cmp_count *drift_kinds; /* per kind, from the audit trail */
	size_t n_drift_kinds;
};

void zt_cmp_facts_free(struct zt_cmp_facts *f);

struct zt_cmp_check {
	const char *id; /* "ZT-SEG-001" */
	const char *title;
	const char *requirement;
	enum zt_cmp_result result;
	char *evidence; /* one paragraph: numbers and what was measured (malloc'd) */
	char **items; /* names behind the numbers: at most ZT_CMP_ITEMS_SHOWN + 1 (malloc'd) */
	size_t n_items;
};

#define ZT_CMP_NCHECKS 12

struct zt_cmp_report {
	struct zt_cmp_check checks[ZT_CMP_NCHECKS];
	size_t n;
	unsigned int passed, warned, failed;
	enum zt_cmp_result overall;
};

/* Every check over f; 0 or -ENOMEM (then r holds what was made; free it). */
int zt_cmp_assess(const struct zt_cmp_facts *f, struct zt_cmp_report *r);
void zt_cmp_report_free(struct zt_cmp_report *r);

/* The report: JSON (one document), text (for a terminal) or one self-contained HTML page. */
int zt_cmp_write_json(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out);
int zt_cmp_write_text(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out);
int zt_cmp_write_html(const struct zt_cmp_facts *f, const struct zt_cmp_report *r, FILE *out);

/* s as HTML text or attribute value: & < > " ' escaped, control characters as U+FFFD. */
void zt_cmp_html_escape(const char *s, FILE *out);

/*
 * Does rule (of p) let every address in? An effective ingress allow rule
 * whose from is empty (every source) or names an ipBlock of prefix length
 * 0 (0.0.0.0/0, ::/0; excepts or not). why and ports (either may be NULL)
 * get what makes it so and the ports it opens; *all_ports whether it opens
 * every port of every protocol.
 */
bool zt_cmp_rule_world_open(const struct zt_policy *p, const struct zt_pol_rule *rule, char *why,
			    size_t whylen, char *ports, size_t portslen, bool *all_ports);

#endif
