// SPDX-License-Identifier: GPL-2.0-only
/* The compliance checks: pure functions from collected facts to pass / warn / fail. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compliance/compliance.h"
#include "agent/util.h"

const char *zt_cmp_result_name(enum zt_cmp_result r)
{
	return r == ZT_CMP_PASS ? "pass" : r == ZT_CMP_WARN ? "warn" : "fail";
}

void zt_cmp_facts_free(struct zt_cmp_facts *f)
{
	free(f->eps);
	free(f->pols);
	free(f->world);
	free(f->feeds);
	free(f->days);
	free(f->drift_kinds);
	memset(f, 0, sizeof(*f));
}

void zt_cmp_report_free(struct zt_cmp_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->checks[i].evidence);
		for (size_t k = 0; k < r->checks[i].n_items; k++)
			free(r->checks[i].items[k]);
		free(r->checks[i].items);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- building a check ---- */

struct ck {
	struct zt_cmp_check *c;
	size_t total_items; /* items offered, shown or not */
	int err;
};

static struct ck ck_new(struct zt_cmp_report *r, const char *id, const char *title, const char *req)
{
	struct zt_cmp_check *c = &r->checks[r->n++];

	c->id = id;
	c->title = title;
	c->requirement = req;
	c->result = ZT_CMP_PASS;
	return (struct ck){ .c = c };
}

static void evidence(struct ck *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void evidence(struct ck *k, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, *old = k->c->evidence;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		k->err = -ENOMEM;
		s = NULL;
	}
	va_end(ap);
	if (!s)
		return;
	if (old) {
		char *j = NULL;

		if (asprintf(&j, "%s %s", old, s) < 0) {
			k->err = -ENOMEM;
			j = NULL;
		}
		free(s);
		if (!j)
			return;
		free(old);
		s = j;
	}
	k->c->evidence = s;
}

static void item(struct ck *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void item(struct ck *k, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	k->total_items++;
	if (k->c->n_items >= ZT_CMP_ITEMS_SHOWN)
		return;
	if (!k->c->items) {
		k->c->items = calloc(ZT_CMP_ITEMS_SHOWN + 1, sizeof(char *));
		if (!k->c->items) {
			k->err = -ENOMEM;
			return;
		}
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		k->err = -ENOMEM;
		s = NULL;
	}
	va_end(ap);
	if (s)
		k->c->items[k->c->n_items++] = s;
}

/* "and N more" after the shown items. */
static void items_done(struct ck *k)
{
	char *s = NULL;

	if (k->total_items <= k->c->n_items)
		return;
	if (asprintf(&s, "... and %zu more", k->total_items - k->c->n_items) < 0) {
		k->err = -ENOMEM;
		return;
	}
	k->c->items[k->c->n_items++] = s;
}

static void worst(struct ck *k, enum zt_cmp_result r)
{
	if (r > k->c->result)
		k->c->result = r;
}

static void no_data(struct ck *k, const char *what, const char *why)
{
	worst(k, ZT_CMP_WARN);
	evidence(k, "No data: %s could not be read (%s); not assessed.", what, why);
}

static const char *day_text(int64_t t, char *buf, size_t n)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%d", &tm))
		snprintf(buf, n, "-");
	return buf;
}

static const char *dur_text(uint64_t s, char *buf, size_t n)
{
	if (s >= 86400 && s % 86400 == 0)
		snprintf(buf, n, "%" PRIu64 "d", s / 86400);
	else if (s > UINT64_MAX / 1000000000ULL ||
		 zt_duration_format(s * 1000000000ULL, buf, n) < 0)
		snprintf(buf, n, "%" PRIu64 "s", s);
	return buf;
}

/* ---- the checks ---- */

static void seg_enforced(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t bad = 0;

	if (!f->daemon.ok)
		return no_data(k, "the daemon's endpoints", f->daemon.why);
	for (size_t i = 0; i < f->n_eps; i++)
		if (!f->eps[i].enforced) {
			bad++;
			item(k, "%s: %s", f->eps[i].name,
			     f->eps[i].problem[0] ? f->eps[i].problem : "not enforced");
		}
	items_done(k);
	if (!f->n_eps) {
		worst(k, ZT_CMP_WARN);
		evidence(k,
			 "No data: no endpoints are registered on node %s, so nothing is "
			 "enforced or left out here.",
			 f->node);
		return;
	}
	if (bad)
		worst(k, ZT_CMP_FAIL);
	evidence(k,
		 "%zu of %zu endpoints have tc_endpoint attached to their interface and a current "
		 "endpoints map entry; %zu do not (checked in the kernel by the agent now).",
		 f->n_eps - bad, f->n_eps, bad);
}

static void seg_isolated(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t open = 0, audit = 0;

	if (!f->daemon.ok)
		return no_data(k, "the daemon's endpoints and policies", f->daemon.why);
	for (size_t i = 0; i < f->n_eps; i++) {
		const struct zt_cmp_endpoint *e = &f->eps[i];

		if (e->isolated_ingress)
			continue;
		if (e->audit_only) {
			audit++;
			item(k,
			     "%s: ingress isolated only by audit-mode policies (nothing is dropped)",
			     e->name);
		} else {
			open++;
			item(k, "%s: no policy isolates its ingress%s", e->name,
			     e->pending ? " (pending, kubernetes.pending_posture: allow)" : "");
		}
	}
	items_done(k);
	if (!f->n_eps) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: no endpoints are registered on node %s.", f->node);
		return;
	}
	if (open || audit)
		worst(k, ZT_CMP_FAIL);
	evidence(k,
		 "policy.default is %s. %zu of %zu endpoints accept only what policy allows "
		 "(isolated ingress); %zu are open to every peer, %zu only watched by audit-mode "
		 "policies.",
		 f->policy_default_deny ? "deny" : "allow", f->n_eps - open - audit, f->n_eps, open,
		 audit);
}

static void seg_namespaces(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t nns = 0, bare = 0;

	if (!f->daemon.ok)
		return no_data(k, "the daemon's endpoints and policies", f->daemon.why);
	for (size_t i = 0; i < f->n_eps; i++) {
		const char *ns = f->eps[i].ns;
		bool seen = false, has = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(f->eps[j].ns, ns);
		if (seen)
			continue;
		nns++;
		for (size_t p = 0; p < f->n_pols && !has; p++)
			has = !strcmp(f->pols[p].ns, ns);
		if (!has) {
			size_t n = 0;

			for (size_t j = i; j < f->n_eps; j++)
				n += !strcmp(f->eps[j].ns, ns);
			bare++;
			item(k, "%s (%zu endpoint%s)", ns, n, n == 1 ? "" : "s");
		}
	}
	items_done(k);
	if (!nns) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: no endpoints, hence no namespaces, on node %s.", f->node);
		return;
	}
	if (bare)
		worst(k, f->policy_default_deny ? ZT_CMP_WARN : ZT_CMP_FAIL);
	evidence(k,
		 "%zu of %zu namespaces with endpoints on this node have no policy of any kind "
		 "(policies in force: %zu).",
		 bare, nns, f->n_pols);
	if (bare)
		evidence(
			k,
			f->policy_default_deny ?
				"policy.default is deny, so their pods are isolated, but by the default alone: nothing states what they need." :
				"policy.default is allow, so their pods accept every connection.");
}

static void seg_world(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t all = 0;

	if (!f->daemon.ok)
		return no_data(k, "the daemon's policies", f->daemon.why);
	for (size_t i = 0; i < f->n_world; i++) {
		const struct zt_cmp_world_rule *w = &f->world[i];

		all += w->all_ports && !w->audit;
		item(k, "%s %s: %s, %s%s", w->policy, w->rule, w->why, w->ports,
		     w->audit ? " (audit mode)" : "");
	}
	items_done(k);
	if (all)
		worst(k, ZT_CMP_FAIL);
	else if (f->n_world)
		worst(k, ZT_CMP_WARN);
	evidence(k,
		 "%zu ingress allow rules in force let any address in (an ipBlock of 0.0.0.0/0 or "
		 "::/0, or no from); %zu of them on every port in an enforcing policy. Rules "
		 "limited to ports are listed for review (a public service may need them).",
		 f->n_world, all);
}

static void seg_audit_age(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t n = 0, old = 0, unknown = 0;
	char d[32], a[32];

	if (!f->daemon.ok)
		return no_data(k, "the daemon's policies", f->daemon.why);
	for (size_t i = 0; i < f->n_pols; i++) {
		const struct zt_cmp_policy *p = &f->pols[i];

		if (!p->audit)
			continue;
		n++;
		if (!p->since_unix) {
			unknown++;
			item(k, "%s %s/%s (%s): age not known", p->kind, p->ns, p->name, p->origin);
		} else {
			uint64_t age = f->now_unix > p->since_unix ?
					       (uint64_t)(f->now_unix - p->since_unix) :
					       0;

			if (age > f->audit_max_age_s)
				old++;
			item(k, "%s %s/%s: in audit mode since %s (%s, %s)%s", p->kind, p->ns,
			     p->name, day_text(p->since_unix, d, sizeof(d)),
			     dur_text(age, a, sizeof(a)),
			     p->since_recorded ? "as the agent recorded it" : "the file's time",
			     age > f->audit_max_age_s ? ": too long" : "");
		}
	}
	items_done(k);
	if (old)
		worst(k, ZT_CMP_FAIL);
	else if (unknown)
		worst(k, ZT_CMP_WARN);
	evidence(k,
		 "%zu audit-mode policies in force (they report would-denies and drop nothing); "
		 "%zu older than %s, %zu of unknown age. Age is measured from when the agent first "
		 "saw the policy in audit mode (policy_audit_mode in the database: restarts and "
		 "edits that keep the mode keep it), else from the policy file's modification "
		 "time.",
		 n, old, dur_text(f->audit_max_age_s, d, sizeof(d)), unknown);
}

static void mtls_cross_node(const struct zt_cmp_facts *f, struct ck *k)
{
	if (!f->daemon.ok)
		return no_data(k, "the agent's mtls.mode", f->daemon.why);
	evidence(k, "mtls.mode is %s.", f->mtls_mode);
	if (!f->db_configured) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: no flow records (database.url is empty), so cross-node flows "
			    "cannot be counted.");
		return;
	}
	if (!f->db.ok)
		return no_data(k, "the flow records", f->db.why);
	if (f->cross_node_flows < 0) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: cross-node flows were not computed (%s).",
			 f->cross_node_why[0] ? f->cross_node_why : "unknown reason");
		return;
	}
	evidence(k,
		 "%" PRId64 " pod-to-pod flows between nodes in the period (computed from "
		 "network_flows: an egress row on one node whose addresses and ports match an "
		 "ingress row recorded by another node).",
		 f->cross_node_flows);
	if (!f->cross_node_flows) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: no cross-node flows were recorded, so coverage cannot be "
			    "shown.");
		return;
	}
	if (!strcmp(f->mtls_mode, "off")) {
		worst(k, ZT_CMP_FAIL);
		evidence(k, "With mtls.mode off none of them is authenticated or encrypted by the "
			    "agent.");
		return;
	}
	if (!f->mtls_recorded) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: flow records do not say whether a flow went through the "
			    "mTLS tunnel, so coverage is not measurable yet.");
		return;
	}
	evidence(k, "%" PRId64 " of them went through the mTLS tunnel (%.1f%%).", f->mtls_flows,
		 100.0 * (double)f->mtls_flows / (double)f->cross_node_flows);
	if (f->mtls_flows < f->cross_node_flows)
		worst(k, ZT_CMP_FAIL);
}

static void feeds_fresh(const struct zt_cmp_facts *f, struct ck *k)
{
	size_t stale = 0, failing = 0;

	if (!f->feeds_src.ok)
		return no_data(k, "the feeds' status", f->feeds_src.why);
	for (size_t i = 0; i < f->n_feeds; i++) {
		const struct zt_cmp_feed *d = &f->feeds[i];
		char a[32];

		if (!strcmp(d->state, "stale") || !strcmp(d->state, "pending")) {
			stale++;
			item(k, "%s: %s, content age %s%s%s", d->name, d->state,
			     d->age_s < 0 ? "never loaded" :
					    dur_text((uint64_t)d->age_s, a, sizeof(a)),
			     d->last_error[0] ? ", last error: " : "", d->last_error);
		} else if (!strcmp(d->state, "failing")) {
			failing++;
			item(k, "%s: failing (the last good content stays), last error: %s",
			     d->name, d->last_error[0] ? d->last_error : "-");
		}
	}
	items_done(k);
	if (!f->n_feeds) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: no threat-intelligence feeds are configured (feeds:).");
		return;
	}
	if (stale)
		worst(k, ZT_CMP_FAIL);
	else if (failing)
		worst(k, ZT_CMP_WARN);
	evidence(k,
		 "%zu feeds configured: %zu current, %zu failing, %zu stale or never loaded "
		 "(stale: not confirmed by its source for twice its refresh interval).",
		 f->n_feeds, f->n_feeds - stale - failing, failing, stale);
}

static bool db_usable(const struct zt_cmp_facts *f, struct ck *k, const char *what)
{
	if (!f->db_configured) {
		worst(k, ZT_CMP_FAIL);
		evidence(k,
			 "The agent keeps no records: database.url is empty, so %s are not "
			 "kept.",
			 what);
		return false;
	}
	if (!f->db.ok) {
		no_data(k, what, f->db.why);
		return false;
	}
	return true;
}

static void audit_chain(const struct zt_cmp_facts *f, struct ck *k)
{
	if (!db_usable(f, k, "the audit trail (audit_log)"))
		return;
	if (f->audit_state < 0) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: the chain was not verified (%s).",
			 f->audit_problem[0] ? f->audit_problem : "unknown reason");
		return;
	}
	if (f->audit_state > 0) {
		worst(k, ZT_CMP_FAIL);
		evidence(k, "The SHA-256 chain of audit_log is broken: %s (%" PRIu64 " rows read).",
			 f->audit_problem, f->audit_rows);
		return;
	}
	if (!f->audit_rows) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "No data: audit_log has no rows.");
		return;
	}
	evidence(k,
		 "%" PRIu64 " audit_log rows recomputed (the same check as 'ztctl audit verify'): "
		 "the chain is intact.",
		 f->audit_rows);
}

static void records_present(const struct zt_cmp_facts *f, struct ck *k)
{
	char a[32], b[32], c[32];

	if (!db_usable(f, k, "flow records"))
		return;
	if (!f->flows_in_period) {
		worst(k, ZT_CMP_WARN);
		evidence(k,
			 "No flow records in the period (%s to %s): no traffic, or the agent "
			 "does not record it.",
			 day_text(f->since_unix, a, sizeof(a)),
			 day_text(f->now_unix, b, sizeof(b)));
		return;
	}
	evidence(k, "%" PRIu64 " network_flows rows in the period %s to %s; the newest starts %s.",
		 f->flows_in_period, day_text(f->since_unix, a, sizeof(a)),
		 day_text(f->now_unix, b, sizeof(b)), day_text(f->newest_flow_unix, c, sizeof(c)));
}

/* Months from YYYYMM a to YYYYMM b (b later: positive). */
static int months_between(int a, int b)
{
	return (b / 100 - a / 100) * 12 + (b % 100 - a % 100);
}

static int month_of(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm))
		return 0;
	return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

static void records_retained(const struct zt_cmp_facts *f, struct ck *k)
{
	int now_m, span, expected, first_m;
	char d[32];

	if (!f->daemon.ok)
		return no_data(k, "database.retention_months", f->daemon.why);
	if (!db_usable(f, k, "flow records"))
		return;
	evidence(k, "database.retention_months is %u.", f->retention_months);
	if (f->retention_months < 12) {
		worst(k, ZT_CMP_FAIL);
		evidence(k, "That is shorter than the 12 months PCI DSS 10.5.1 asks for.");
	}
	if (!f->oldest_partition) {
		worst(k, ZT_CMP_FAIL);
		evidence(k, "network_flows has no partitions: no records are kept.");
		return;
	}
	now_m = month_of(f->now_unix);
	span = months_between(f->oldest_partition, now_m);
	evidence(k, "%u monthly partitions; the oldest is %04d-%02d (%d months back)%s%s.",
		 f->n_partitions, f->oldest_partition / 100, f->oldest_partition % 100, span,
		 f->oldest_row_unix   ? ", the oldest flow row starts " :
		 f->oldest_row_why[0] ? ", the oldest flow row could not be read: " :
					", no flow rows",
		 f->oldest_row_unix ? day_text(f->oldest_row_unix, d, sizeof(d)) :
				      f->oldest_row_why);
	if (f->missing_partitions[0]) {
		worst(k, ZT_CMP_FAIL);
		evidence(k, "Months without a partition (their records are gone): %s.",
			 f->missing_partitions);
	}
	/*
	 * Records should reach back to the retention horizon, or to when this
	 * agent started keeping records (the first audit row), whichever is later.
	 */
	first_m = f->first_audit_unix ? month_of(f->first_audit_unix) : now_m;
	expected = months_between(first_m, now_m);
	if (expected > (int)f->retention_months)
		expected = (int)f->retention_months;
	if (span < expected) {
		worst(k, ZT_CMP_FAIL);
		evidence(k,
			 "Records should reach back %d months (the audit trail starts %s) but "
			 "reach back %d: partitions were dropped early.",
			 expected, day_text(f->first_audit_unix, d, sizeof(d)), span);
	} else if (span > (int)f->retention_months) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "Partitions older than the retention are still there: partition "
			    "maintenance may not run.");
	} else if ((int)f->retention_months > expected) {
		evidence(k, "The records started %s: the full retention is not reached yet.",
			 day_text(f->first_audit_unix, d, sizeof(d)));
	}
}

static void denials_incidents(const struct zt_cmp_facts *f, struct ck *k)
{
	if (!db_usable(f, k, "denials and incidents"))
		return;
	evidence(k,
		 "In the period: %" PRIu64
		 " denied flows (network_flows, verdict denied, aggregates "
		 "counted by their flows), %" PRIu64 " incidents (%s), %" PRIu64 " still open, "
		 "%" PRIu64 " critical alerts. The chart shows them per day.",
		 f->denials, f->incidents, f->incidents_from, f->open_incidents,
		 f->critical_alerts);
	if (f->open_incidents || f->critical_alerts) {
		worst(k, ZT_CMP_WARN);
		evidence(k, "Open incidents and critical alerts need a person's review.");
	}
}

static void drift(const struct zt_cmp_facts *f, struct ck *k)
{
	for (size_t i = 0; i < f->n_drift_kinds; i++)
		item(k, "%s: %" PRIu64, f->drift_kinds[i].name, f->drift_kinds[i].n);
	items_done(k);
	if (!f->drift_metric.ok && !f->drift_audit_read) {
		no_data(k, "drift repair", f->drift_metric.why);
		return;
	}
	if (f->drift_metric.ok)
		evidence(k,
			 "ztagent_drift_repairs_total: %" PRIu64 " repairs since the agent "
			 "started.",
			 f->drift_repairs_metric);
	else
		evidence(k, "No data from the metric (%s).", f->drift_metric.why);
	if (f->drift_audit_read)
		evidence(k,
			 "audit_log: %" PRIu64 " drift events in the period, %" PRIu64
			 " of them flapping (something keeps changing it back).",
			 f->drift_events, f->drift_flapping);
	if (!f->drift_metric.ok)
		worst(k, ZT_CMP_WARN);
	if (f->drift_flapping)
		worst(k, ZT_CMP_FAIL);
	else if (f->drift_events || f->drift_repairs_metric)
		worst(k, ZT_CMP_WARN);
	if (f->drift_events || f->drift_repairs_metric)
		evidence(k, "Enforcement was changed behind the agent's back and put right: find "
			    "who changed it.");
}

int zt_cmp_assess(const struct zt_cmp_facts *f, struct zt_cmp_report *r)
{
	static const struct {
		const char *id, *title, *req;
		void (*fn)(const struct zt_cmp_facts *f, struct ck *k);
	} defs[] = {
		{ "ZT-SEG-001", "Every endpoint is enforced in the kernel",
		  "NIST SP 800-207 tenet 6 (authorization dynamic and strictly enforced before access)",
		  seg_enforced },
		{ "ZT-SEG-002", "Every endpoint accepts only what policy allows",
		  "PCI DSS v4.0 1.3.1 (inbound traffic restricted to what is necessary); NIST SP 800-207 tenet 3",
		  seg_isolated },
		{ "ZT-SEG-003", "Every namespace has a policy",
		  "NIST SP 800-53 Rev. 5 AC-4 (information flow enforcement); PCI DSS v4.0 1.2.1",
		  seg_namespaces },
		{ "ZT-SEG-004", "No rule lets the whole world in",
		  "PCI DSS v4.0 1.4.2 (inbound traffic from untrusted networks restricted); NIST SP 800-207 tenet 1",
		  seg_world },
		{ "ZT-SEG-005", "Audit-mode policies do not linger",
		  "NIST SP 800-207 tenet 6 (strictly enforced); NIST SP 800-53 Rev. 5 CM-3 (change control)",
		  seg_audit_age },
		{ "ZT-MTLS-001", "Cross-node pod traffic is mutually authenticated",
		  "NIST SP 800-207 tenet 2 (all communication secured regardless of network location)",
		  mtls_cross_node },
		{ "ZT-FEED-001", "Threat-intelligence feeds are current",
		  "NIST SP 800-53 Rev. 5 SI-5 (security alerts and advisories); NIST SP 800-207 tenet 7",
		  feeds_fresh },
		{ "ZT-AUD-001", "The audit trail's hash chain is intact",
		  "PCI DSS v4.0 10.3.2 (audit logs protected from modification); NIST SP 800-53 Rev. 5 AU-9",
		  audit_chain },
		{ "ZT-REC-001", "Flow records are being kept",
		  "PCI DSS v4.0 10.2.1 (audit logs enabled and active); NIST SP 800-207 tenet 7",
		  records_present },
		{ "ZT-REC-002", "Flow records are retained for the configured months",
		  "PCI DSS v4.0 10.5.1 (audit log history retained for at least 12 months)",
		  records_retained },
		{ "ZT-MON-001", "Denials and incidents in the period",
		  "PCI DSS v4.0 10.4.1 (audit logs and security events reviewed); NIST SP 800-207 tenet 7",
		  denials_incidents },
		{ "ZT-DRIFT-001", "Enforcement drift is detected and repaired",
		  "PCI DSS v4.0 11.5.2 (change-detection mechanism); NIST SP 800-53 Rev. 5 CM-3",
		  drift },
	};
	int err = 0;

	_Static_assert(ZT_ARRAY_SIZE(defs) == ZT_CMP_NCHECKS, "ZT_CMP_NCHECKS");
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < ZT_ARRAY_SIZE(defs); i++) {
		struct ck k = ck_new(r, defs[i].id, defs[i].title, defs[i].req);

		defs[i].fn(f, &k);
		if (!k.c->evidence && !k.err)
			evidence(&k, "-");
		if (k.err)
			err = k.err;
		switch (k.c->result) {
		case ZT_CMP_PASS:
			r->passed++;
			break;
		case ZT_CMP_WARN:
			r->warned++;
			break;
		case ZT_CMP_FAIL:
			r->failed++;
			break;
		}
		if (k.c->result > r->overall)
			r->overall = k.c->result;
	}
	return err;
}

/* ---- policy analysis (the daemon's side) ---- */

bool zt_cmp_rule_world_open(const struct zt_policy *p, const struct zt_pol_rule *rule, char *why,
			    size_t whylen, char *ports, size_t portslen, bool *all_ports)
{
	char w[200] = "";

	if (rule->dir != ZT_POL_INGRESS || rule->action != ZT_RULE_ALLOW ||
	    !zt_pol_rule_effective(p, rule))
		return false;
	if (!rule->n_peers) {
		snprintf(w, sizeof(w), "from is empty (every source)");
	} else {
		for (size_t i = 0; i < rule->n_peers && !w[0]; i++) {
			const struct zt_pol_peer *pe = &rule->peers[i];
			char c[64];

			if (pe->type != ZT_PEER_IPBLOCK || pe->cidr.prefixlen != 0)
				continue;
			if (zt_cidr_format(&pe->cidr, c, sizeof(c)) < 0)
				snprintf(c, sizeof(c), "?");
			snprintf(w, sizeof(w), "ipBlock %s%s", c,
				 pe->n_except ? " (with except)" : "");
		}
		if (!w[0])
			return false;
	}
	if (why)
		snprintf(why, whylen, "%s", w);
	if (all_ports)
		*all_ports = rule->n_ports == 0;
	if (ports) {
		size_t off = 0;

		if (!rule->n_ports)
			snprintf(ports, portslen, "every port");
		else
			ports[0] = '\0';
		for (size_t i = 0; i < rule->n_ports && off + 1 < portslen; i++) {
			const struct zt_pol_port *pt = &rule->ports[i];
			int n;

			if (pt->name)
				n = snprintf(ports + off, portslen - off, "%s%s/%s", i ? ", " : "",
					     zt_pol_proto_name(pt->protocol), pt->name);
			else if (!pt->port)
				n = snprintf(ports + off, portslen - off, "%s%s/every port",
					     i ? ", " : "", zt_pol_proto_name(pt->protocol));
			else if (pt->end_port != pt->port)
				n = snprintf(ports + off, portslen - off, "%s%s/%u-%u",
					     i ? ", " : "", zt_pol_proto_name(pt->protocol),
					     pt->port, pt->end_port);
			else
				n = snprintf(ports + off, portslen - off, "%s%s/%u", i ? ", " : "",
					     zt_pol_proto_name(pt->protocol), pt->port);
			if (n < 0)
				break;
			off += (size_t)n;
		}
		if (off >= portslen && portslen)
			ports[portslen - 1] = '\0';
	}
	return true;
}
