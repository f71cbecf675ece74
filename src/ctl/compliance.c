// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztctl compliance report: collects the facts (the daemon's live state, the
 * records in PostgreSQL, the metrics endpoint), runs the checks of
 * compliance/ over them, and writes the report. Whatever cannot be read is
 * marked so and its check says "no data": never a pass.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>

#include "ctl/ctl.h"
#include "compliance/compliance.h"
#include "records/audit.h"
#include "records/db.h"
#include "seg/seg_compliance.h"

#define EXIT_ERROR 2 /* the report could not be made */
#define METRICS_MAX (64u << 20)

static void src_fail(struct zt_cmp_src *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void src_fail(struct zt_cmp_src *s, const char *fmt, ...)
{
	va_list ap;

	s->ok = false;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

static void text(const cbor_item_t *m, const char *key, char *buf, size_t n)
{
	str_of(m, key, buf, n, "");
}

static void *grow_array(void *v, size_t n, size_t elem)
{
	void *p = calloc(n ? n : 1, elem);

	if (!p)
		die_nomem();
	free(v);
	return p;
}

/* ---- the daemon ---- */

static int daemon_facts(struct ctl *ctl, struct zt_cmp_facts *f, char *metrics, size_t mlen,
			bool *database)
{
	const cbor_item_t *d, *a;
	cbor_item_t *reply;
	char mode[16];
	int r = call(ctl, request(ZT_OP_COMPLIANCE_FACTS), &reply, &d);

	if (r)
		return r;
	f->daemon.ok = true;
	text(d, "node", f->node, sizeof(f->node));
	text(d, "policy_default", mode, sizeof(mode));
	f->policy_default_deny = strcmp(mode, "allow") != 0;
	text(d, "pending_posture", f->pending_posture, sizeof(f->pending_posture));
	f->retention_months = (uint32_t)u64_of(d, "retention_months");
	text(d, "mtls_mode", f->mtls_mode, sizeof(f->mtls_mode));
	text(d, "metrics_listen", metrics, mlen);
	*database = bool_of(d, "database");

	a = zt_cbor_get(d, "endpoints");
	f->n_eps = arr_len(a);
	f->eps = grow_array(f->eps, f->n_eps, sizeof(*f->eps));
	for (size_t i = 0; i < f->n_eps; i++) {
		const cbor_item_t *e = arr_at(a, i);
		struct zt_cmp_endpoint *o = &f->eps[i];

		text(e, "endpoint", o->name, sizeof(o->name));
		text(e, "namespace", o->ns, sizeof(o->ns));
		text(e, "problem", o->problem, sizeof(o->problem));
		o->pending = bool_of(e, "pending");
		o->enforced = bool_of(e, "enforced");
		o->isolated_ingress = bool_of(e, "isolated_ingress");
		o->isolated_egress = bool_of(e, "isolated_egress");
		o->audit_only = bool_of(e, "audit_only");
	}
	a = zt_cbor_get(d, "policies");
	f->n_pols = arr_len(a);
	f->pols = grow_array(f->pols, f->n_pols, sizeof(*f->pols));
	for (size_t i = 0; i < f->n_pols; i++) {
		const cbor_item_t *p = arr_at(a, i);
		struct zt_cmp_policy *o = &f->pols[i];

		text(p, "kind", o->kind, sizeof(o->kind));
		text(p, "namespace", o->ns, sizeof(o->ns));
		text(p, "name", o->name, sizeof(o->name));
		text(p, "origin", o->origin, sizeof(o->origin));
		text(p, "mode", mode, sizeof(mode));
		o->audit = !strcmp(mode, "audit");
		o->since_unix = (int64_t)u64_of(p, "since_unix");
		o->endpoints = u64_of(p, "endpoints");
	}
	a = zt_cbor_get(d, "world_ingress");
	f->n_world = arr_len(a);
	f->world = grow_array(f->world, f->n_world, sizeof(*f->world));
	for (size_t i = 0; i < f->n_world; i++) {
		const cbor_item_t *w = arr_at(a, i);
		struct zt_cmp_world_rule *o = &f->world[i];

		text(w, "policy", o->policy, sizeof(o->policy));
		text(w, "rule", o->rule, sizeof(o->rule));
		text(w, "why", o->why, sizeof(o->why));
		text(w, "ports", o->ports, sizeof(o->ports));
		o->all_ports = bool_of(w, "all_ports");
		o->audit = bool_of(w, "audit");
	}
	cbor_decref(&reply);
	return 0;
}

static int feeds_facts(struct ctl *ctl, struct zt_cmp_facts *f)
{
	const cbor_item_t *d, *a;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_FEEDS_LIST), &reply, &d);

	if (r) {
		src_fail(&f->feeds_src, "feeds.list failed (see the message above)");
		return r == EXIT_UNREACHABLE ? r : 0;
	}
	f->feeds_src.ok = true;
	a = zt_cbor_get(d, "feeds");
	f->n_feeds = arr_len(a);
	f->feeds = grow_array(f->feeds, f->n_feeds, sizeof(*f->feeds));
	for (size_t i = 0; i < f->n_feeds; i++) {
		const cbor_item_t *e = arr_at(a, i);
		struct zt_cmp_feed *o = &f->feeds[i];

		text(e, "name", o->name, sizeof(o->name));
		text(e, "state", o->state, sizeof(o->state));
		text(e, "last_error", o->last_error, sizeof(o->last_error));
		o->age_s = i64_of(e, "age_s");
	}
	cbor_decref(&reply);
	return 0;
}

/* ---- the metrics endpoint: ztagent_drift_repairs_total ---- */

static int http_get_metrics(const char *listen, char **body, size_t *len, char *err, size_t n)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = 10 };
	char req[] = "GET /metrics HTTP/1.0\r\nHost: ztagent\r\n\r\n", *buf = NULL;
	size_t cap = 0, got = 0;
	int fd = -1, r = 0;

	if (zt_listen_parse(listen, &ss) < 0) {
		snprintf(err, n, "metrics.listen '%s' is not ADDR:PORT", listen);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&ss,
		    ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
					      sizeof(struct sockaddr_in6)) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		r = -errno;
		snprintf(err, n, "GET http://%s/metrics: %s", listen, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t k;

		if (got + 65536 + 1 > cap) {
			char *nb;

			if (cap >= METRICS_MAX) {
				r = -EFBIG;
				snprintf(err, n, "GET http://%s/metrics: over %u bytes", listen,
					 METRICS_MAX);
				goto out;
			}
			nb = realloc(buf, cap = cap ? cap * 2 : 262144);
			if (!nb)
				die_nomem();
			buf = nb;
		}
		k = read(fd, buf + got, cap - got - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			snprintf(err, n, "GET http://%s/metrics: %s", listen, strerror(errno));
			goto out;
		}
		if (!k)
			break;
		got += (size_t)k;
	}
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 200", 4)) {
		r = -EPROTO;
		snprintf(err, n, "GET http://%s/metrics: not a 200 answer", listen);
		goto out;
	}
	*body = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

static void drift_metric(const char *listen, struct zt_cmp_facts *f)
{
	static const char fam[] = "ztagent_drift_repairs_total";
	char *body = NULL, err[ZT_CMP_TEXT_MAX];
	size_t len = 0;
	bool seen = false;

	if (!listen[0]) {
		src_fail(&f->drift_metric, "metrics.listen is off");
		return;
	}
	if (http_get_metrics(listen, &body, &len, err, sizeof(err)) < 0) {
		src_fail(&f->drift_metric, "%s", err);
		return;
	}
	for (char *line = body, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "# TYPE ", 7) && !strncmp(line + 7, fam, sizeof(fam) - 1))
			seen = true;
		if (!strncmp(line, fam, sizeof(fam) - 1) &&
		    (line[sizeof(fam) - 1] == '{' || line[sizeof(fam) - 1] == ' ')) {
			char *sp = strrchr(line, ' ');

			seen = true;
			if (sp)
				f->drift_repairs_metric += (uint64_t)strtod(sp + 1, NULL);
		}
	}
	free(body);
	if (seen)
		f->drift_metric.ok = true;
	else
		src_fail(&f->drift_metric,
			 "the agent does not export %s: drift detection is not running in it", fam);
}

/* ---- PostgreSQL ---- */

struct q {
	PGconn *c;
	char since[32];
	char err[ZT_CMP_TEXT_MAX];
	bool failed;
};

/* One query with the period's start as $1 (when it uses it); NULL on failure (q->err says why). */
static PGresult *query(struct q *q, const char *sql)
{
	const char *params[1] = { q->since };
	PGresult *r;

	if (q->failed)
		return NULL;
	r = PQexecParams(q->c, sql, strstr(sql, "$1") ? 1 : 0, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		char *nl;

		snprintf(q->err, sizeof(q->err), "%s", PQresultErrorMessage(r));
		nl = strchr(q->err, '\n');
		if (nl)
			*nl = '\0';
		q->failed = true;
		PQclear(r);
		return NULL;
	}
	return r;
}

/*
 * A query whose failure (a scan cut by statement_timeout on a huge table)
 * costs only its own fact: why gets the reason, the other facts stay.
 */
static PGresult *query_soft(struct q *q, const char *sql, char *why, size_t n)
{
	PGresult *r;

	if (q->failed)
		return NULL;
	r = query(q, sql);
	if (!r) {
		snprintf(why, n, "%s", q->err);
		q->failed = false;
		q->err[0] = '\0';
	}
	return r;
}

static int64_t val_i64(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void audit_report(void *ctx, enum zt_audit_problem p, uint64_t seq, const char *msg)
{
	struct zt_cmp_facts *f = ctx;

	if (!f->audit_problem[0])
		snprintf(f->audit_problem, sizeof(f->audit_problem), "%s", msg);
}

static void audit_facts(const char *conninfo, struct zt_cmp_facts *f)
{
	char err[512];
	int r = zt_audit_verify(conninfo, audit_report, f, &f->audit_rows, err, sizeof(err));

	if (r < 0) {
		f->audit_state = -1;
		snprintf(f->audit_problem, sizeof(f->audit_problem), "%s", err);
	} else {
		f->audit_state = r;
	}
}

static int month_after(int m)
{
	return m % 100 == 12 ? (m / 100 + 1) * 100 + 1 : m + 1;
}

static void partition_facts(struct q *q, struct zt_cmp_facts *f)
{
	PGresult *r = query(q, "SELECT substr(c.relname, 16)::int FROM pg_inherits i "
			       "JOIN pg_class c ON c.oid = i.inhrelid "
			       "WHERE i.inhparent = 'network_flows'::regclass "
			       "AND c.relname ~ '^network_flows_p[0-9]{6}$' ORDER BY 1");
	struct tm tm;
	time_t now = (time_t)f->now_unix;
	int cur, n, expect;
	size_t off = 0;

	if (!r)
		return;
	n = PQntuples(r);
	f->n_partitions = (unsigned int)n;
	gmtime_r(&now, &tm);
	cur = (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
	if (n) {
		f->oldest_partition = (int)val_i64(r, 0, 0);
		/* Every month from the oldest to this one has its partition. */
		expect = f->oldest_partition;
		for (int i = 0; i < n && expect <= cur; i++) {
			int have = (int)val_i64(r, i, 0);

			while (expect < have && expect <= cur &&
			       off + 16 < sizeof(f->missing_partitions)) {
				off += (size_t)snprintf(f->missing_partitions + off,
							sizeof(f->missing_partitions) - off,
							"%s%04d-%02d", off ? ", " : "",
							expect / 100, expect % 100);
				expect = month_after(expect);
			}
			if (have == expect)
				expect = month_after(expect);
		}
		while (expect <= cur && off + 16 < sizeof(f->missing_partitions)) {
			off += (size_t)snprintf(f->missing_partitions + off,
						sizeof(f->missing_partitions) - off, "%s%04d-%02d",
						off ? ", " : "", expect / 100, expect % 100);
			expect = month_after(expect);
		}
	}
	/* The oldest row: in the oldest partition that has any (a scan of that month only). */
	for (int i = 0; i < n && !f->oldest_row_unix; i++) {
		char sql[200];
		PGresult *m;

		snprintf(
			sql, sizeof(sql),
			"SELECT floor(extract(epoch FROM min(start_time)))::bigint FROM network_flows_p%06d",
			(int)val_i64(r, i, 0));
		m = query_soft(q, sql, f->oldest_row_why, sizeof(f->oldest_row_why));
		if (!m)
			break;
		f->oldest_row_unix = val_i64(m, 0, 0);
		PQclear(m);
	}
	PQclear(r);
}

static void series_facts(struct q *q, struct zt_cmp_facts *f)
{
	/* Incidents: the incidents table when the schema has it, else alerts that are not policy verdicts. */
	PGresult *r = query(q, "SELECT to_regclass('incidents') IS NOT NULL");
	bool have_incidents = r && !strcmp(PQgetvalue(r, 0, 0), "t");
	const char *inc_day, *inc_open;
	char sql[2048];

	PQclear(r);
	if (!r)
		return;
	if (have_incidents) {
		snprintf(f->incidents_from, sizeof(f->incidents_from), "incidents table");
		inc_day =
			"SELECT date_trunc('day', first_seen AT TIME ZONE 'UTC') AS d, count(*) AS n "
			"FROM incidents WHERE first_seen >= to_timestamp($1::double precision) GROUP BY 1";
		inc_open = "SELECT count(*) FROM incidents WHERE state = 'open'";
	} else {
		snprintf(f->incidents_from, sizeof(f->incidents_from),
			 "alerts rows whose kind is not policy-*");
		inc_day = "SELECT date_trunc('day', at AT TIME ZONE 'UTC') AS d, count(*) AS n "
			  "FROM alerts WHERE at >= to_timestamp($1::double precision) "
			  "AND kind NOT LIKE 'policy-%' GROUP BY 1";
		inc_open = "SELECT 0";
	}
	snprintf(
		sql, sizeof(sql),
		"SELECT extract(epoch FROM g.d)::bigint, coalesce(den.n, 0), coalesce(inc.n, 0) "
		"FROM generate_series(date_trunc('day', to_timestamp($1::double precision) AT TIME ZONE 'UTC'), "
		"date_trunc('day', now() AT TIME ZONE 'UTC'), interval '1 day') AS g(d) "
		"LEFT JOIN (SELECT date_trunc('day', start_time AT TIME ZONE 'UTC') AS d, "
		"sum(aggregate_count) AS n FROM network_flows WHERE verdict = 'denied' "
		"AND start_time >= to_timestamp($1::double precision) GROUP BY 1) den ON den.d = g.d "
		"LEFT JOIN (%s) inc ON inc.d = g.d ORDER BY 1",
		inc_day);
	r = query(q, sql);
	if (!r)
		return;
	f->n_days = (size_t)PQntuples(r);
	f->days = grow_array(f->days, f->n_days, sizeof(*f->days));
	for (size_t i = 0; i < f->n_days; i++) {
		f->days[i].day_unix = val_i64(r, (int)i, 0);
		f->days[i].denials = (uint64_t)val_i64(r, (int)i, 1);
		f->days[i].incidents = (uint64_t)val_i64(r, (int)i, 2);
		f->denials += f->days[i].denials;
		f->incidents += f->days[i].incidents;
	}
	PQclear(r);
	r = query(q, inc_open);
	if (r)
		f->open_incidents = (uint64_t)val_i64(r, 0, 0);
	PQclear(r);
	r = query(q, "SELECT count(*) FROM alerts WHERE severity = 'critical' "
		     "AND at >= to_timestamp($1::double precision)");
	if (r)
		f->critical_alerts = (uint64_t)val_i64(r, 0, 0);
	PQclear(r);
}

/*
 * Audit-mode age as the agent saw it (migration 008). A database without
 * the table (older schema) leaves the files' times: ZT-SEG-005 says which.
 */
static void audit_mode_facts(PGconn *c, struct zt_cmp_facts *f)
{
	const char *p[1] = { f->node };
	PGresult *r = PQexecParams(c,
				   "SELECT policy_key, floor(extract(epoch FROM since))::bigint "
				   "FROM policy_audit_mode WHERE node = $1",
				   1, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		for (int row = 0; row < PQntuples(r); row++) {
			const char *key = PQgetvalue(r, row, 0);

			for (size_t i = 0; i < f->n_pols; i++) {
				struct zt_cmp_policy *pol = &f->pols[i];
				char k[sizeof(pol->kind) + 2 * ZT_CMP_NAME_MAX + 4];

				snprintf(k, sizeof(k), "%s/%s/%s", pol->kind, pol->ns, pol->name);
				if (pol->audit && !strcmp(k, key)) {
					pol->since_unix = val_i64(r, row, 1);
					pol->since_recorded = true;
				}
			}
		}
	}
	PQclear(r);
}
/* Cross-node pod flows: an egress row of one node matched by another node's ingress row. */
#define CROSS_NODE_JOIN                                                    \
	"FROM network_flows e JOIN network_flows i "                       \
	"ON i.source_ip = e.source_ip AND i.dest_ip = e.dest_ip "          \
	"AND i.source_port = e.source_port AND i.dest_port = e.dest_port " \
	"AND i.protocol = e.protocol AND i.node <> e.node "                \
	"WHERE e.direction = 'egress' AND i.direction = 'ingress' "        \
	"AND e.flow_kind = 'flow' AND i.flow_kind = 'flow' "               \
	"AND e.start_time >= to_timestamp($1::double precision) "          \
	"AND i.start_time >= to_timestamp($1::double precision)"

static void db_facts(const char *conninfo, struct zt_cmp_facts *f)
{
	struct q q = { 0 };
	PGresult *r;
	char err[512];

	snprintf(q.since, sizeof(q.since), "%lld", (long long)f->since_unix);
	if (zt_db_connect(conninfo, &q.c, err, sizeof(err)) < 0) {
		src_fail(&f->db, "%s", err);
		f->audit_state = -1;
		f->cross_node_flows = -1;
		return;
	}
	audit_facts(conninfo, f);
	audit_mode_facts(q.c, f);
	r = query(
		&q,
		"SELECT floor(extract(epoch FROM at))::bigint FROM audit_log ORDER BY seq LIMIT 1");
	if (r && PQntuples(r))
		f->first_audit_unix = val_i64(r, 0, 0);
	PQclear(r);
	r = query(&q, "SELECT count(*), floor(extract(epoch FROM max(start_time)))::bigint "
		      "FROM network_flows WHERE start_time >= to_timestamp($1::double precision)");
	if (r) {
		f->flows_in_period = (uint64_t)val_i64(r, 0, 0);
		f->newest_flow_unix = val_i64(r, 0, 1);
	}
	PQclear(r);
	partition_facts(&q, f);
	series_facts(&q, f);
	/*
	 * Cross-node pod flows: each agent records a flow of its own pods, so a
	 * flow between pods on two nodes is an egress row on one and an ingress
	 * row on the other, with the same addresses, ports and protocol. With
	 * migration 007 each row also says whether the flow was tunnelled
	 * (mtls): either node's word is enough, as only the side whose policy
	 * asked for the tunnel may know it.
	 */
	r = query(&q,
		  "SELECT count(*) FROM information_schema.columns WHERE table_name = "
		  "'network_flows' AND column_name = 'mtls' AND table_schema = current_schema()");
	f->mtls_recorded = r && val_i64(r, 0, 0) > 0;
	PQclear(r);
	r = query_soft(
		&q,
		f->mtls_recorded ?
			"SELECT count(*), count(*) FILTER (WHERE e.mtls OR i.mtls) " CROSS_NODE_JOIN :
			"SELECT count(*) " CROSS_NODE_JOIN,
		f->cross_node_why, sizeof(f->cross_node_why));
	f->cross_node_flows = r ? val_i64(r, 0, 0) : -1;
	if (r && f->mtls_recorded)
		f->mtls_flows = val_i64(r, 0, 1);
	PQclear(r);
	r = query(&q, "SELECT kind, count(*) FROM audit_log WHERE kind LIKE 'drift%' "
		      "AND at >= to_timestamp($1::double precision) GROUP BY kind ORDER BY kind");
	if (r) {
		f->drift_audit_read = true;
		f->n_drift_kinds = (size_t)PQntuples(r);
		f->drift_kinds =
			grow_array(f->drift_kinds, f->n_drift_kinds, sizeof(*f->drift_kinds));
		for (size_t i = 0; i < f->n_drift_kinds; i++) {
			struct zt_cmp_count *k = &f->drift_kinds[i];

			snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(r, (int)i, 0));
			k->n = (uint64_t)val_i64(r, (int)i, 1);
			f->drift_events += k->n;
			if (strstr(k->name, "flap"))
				f->drift_flapping += k->n;
		}
	}
	PQclear(r);
	if (q.failed)
		src_fail(&f->db, "%s", q.err);
	else
		f->db.ok = true;
	PQfinish(q.c);
}

/* ---- the command ---- */

static int run_compliance_report(struct ctl *ctl, struct opts *o)
{
	struct zt_cmp_facts f = { .audit_state = -1, .cross_node_flows = -1 };
	struct zt_cmp_report rep = { 0 };
	const char *fmt = o->format ? o->format : ctl->json ? "json" : "text";
	char metrics[128] = "", url[4096] = "", tmp[4200] = "";
	const char *conninfo = o->db;
	bool database = false;
	FILE *out = stdout;
	int r, ret = EXIT_ERROR;

	f.now_unix = (int64_t)zt_now_unix();
	f.since_unix = f.now_unix - (int64_t)(o->has_since ? o->since_s : 30 * 86400);
	f.audit_max_age_s = o->has_audit_age ? o->audit_age_s : 14 * 86400;
	r = daemon_facts(ctl, &f, metrics, sizeof(metrics), &database);
	if (r)
		goto out; /* the live state is the report's core: no report without it */
	r = feeds_facts(ctl, &f);
	if (r)
		goto out;
	drift_metric(metrics, &f);
	if (!conninfo)
		conninfo = getenv("ZTAGENT_DB");
	if ((!conninfo || !*conninfo) && database) {
		const cbor_item_t *d;
		cbor_item_t *reply;

		r = call(ctl, request(ZT_OP_STATUS), &reply, &d);
		if (r)
			goto out;
		str_of(zt_cbor_get(d, "database"), "url", url, sizeof(url), "");
		cbor_decref(&reply);
		conninfo = url;
	}
	f.db_configured = database || (conninfo && *conninfo);
	if (conninfo && *conninfo)
		db_facts(conninfo, &f);
	else if (f.db_configured)
		src_fail(&f.db, "no connection string: give --db CONNINFO");
	else
		src_fail(&f.db, "database.url is empty");

	r = zt_cmp_assess(&f, &rep);
	if (r < 0)
		die_nomem();
	if (o->outfile) {
		/* Written beside the target and renamed: a reader never sees half a report. */
		snprintf(tmp, sizeof(tmp), "%s.tmp.%d", o->outfile, (int)getpid());
		out = fopen(tmp, "we");
		if (!out) {
			fprintf(stderr, "ztctl: cannot write %s: %s\n", tmp, strerror(errno));
			goto out;
		}
	}
	if (!strcmp(fmt, "json"))
		r = zt_cmp_write_json(&f, &rep, out);
	else if (!strcmp(fmt, "html"))
		r = zt_cmp_write_html(&f, &rep, out);
	else
		r = zt_cmp_write_text(&f, &rep, out);
	if (o->outfile) {
		if (fflush(out) || fsync(fileno(out)))
			r = -errno;
		if (fclose(out) && !r)
			r = -errno;
		if (!r && rename(tmp, o->outfile) < 0)
			r = -errno;
		if (r) {
			fprintf(stderr, "ztctl: cannot write %s: %s\n", o->outfile, strerror(-r));
			unlink(tmp);
			goto out;
		}
		fprintf(stderr,
			"ztctl: compliance report (%s) written to %s: %s, %u pass, %u warn, %u fail\n",
			fmt, o->outfile, zt_cmp_result_name(rep.overall), rep.passed, rep.warned,
			rep.failed);
	} else if (r) {
		fprintf(stderr, "ztctl: writing the report: %s\n", strerror(-r));
		goto out;
	}
	ret = rep.failed ? EXIT_FAIL : EXIT_OK;
out:
	zt_cmp_report_free(&rep);
	zt_cmp_facts_free(&f);
	return ret;
}

const struct cmd ctl_compliance_cmds[] = {
	{ "compliance report",
	  "ztctl compliance report [--format text|json|html] [--since 30d] [--audit-age 14d] [--db CONNINFO] [-o FILE]",
	  "Assesses this node's security posture from the agent's live state and its\n"
	  "records, and writes one report: each check with an id (ZT-SEG-001 ...), a\n"
	  "result (pass, warn, fail), the evidence (numbers and names) and the\n"
	  "requirement it serves (PCI DSS v4.0, NIST SP 800-207 / 800-53).\n"
	  "\n"
	  "Checks: endpoints enforced in the kernel; endpoints isolated by policy;\n"
	  "namespaces without any policy; ingress rules open to the world (0.0.0.0/0,\n"
	  "::/0, no from); audit-mode policies older than --audit-age; mTLS of\n"
	  "cross-node flows; stale or failing feeds; the audit trail's hash chain; flow\n"
	  "records kept in the period and retained for database.retention_months;\n"
	  "denials and incidents per day; drift repairs.\n"
	  "\n"
	  "What cannot be read (no database, no metrics) is a warn with \"No data\",\n"
	  "never a pass. The HTML page is self-contained (inline CSS and SVG, no\n"
	  "script) with a chart of denied flows and incidents per day.\n"
	  "\n"
	  "The database is --db, else $ZTAGENT_DB, else the agent's database.url.\n"
	  "\n"
	  "Options:\n"
	  "  --format F      text (default), json (also with the global -o json) or html\n"
	  "  --since D       the period: the last D (default 30d)\n"
	  "  --audit-age D   audit-mode policies older than D fail (default 14d)\n"
	  "  -o FILE         write the report to FILE (atomically) instead of stdout\n"
	  "\n"
	  "Exit codes: 0 every check passed or warned, 1 a check failed, 2 the report\n"
	  "could not be made (the daemon unreachable, a bad option, FILE not writable).\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl compliance report\n"
	  "  ztctl compliance report --format html --since 90d -o posture.html\n"
	  "  ztctl compliance report --format json | jq '.checks[] | select(.result == \"fail\")'\n",
	  OPT_DB | OPT_COMPLIANCE | OPT_SINCE, 0, 0, NULL, run_compliance_report },
};
const size_t ctl_compliance_ncmds = ZT_ARRAY_SIZE(ctl_compliance_cmds);
