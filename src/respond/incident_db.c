// SPDX-License-Identifier: GPL-2.0-only
/* Incidents, their alerts and the forensic capture index in PostgreSQL (see incident_db.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util.h"
#include "respond/incident_db.h"

static const char incident_sql[] =
	"INSERT INTO incidents (id, node, threat_type, detector, role, subtype, state, source_ip, "
	"dest_ip, dest_port, protocol, workload, first_seen, last_seen, closed_at, close_reason, "
	"window_start, flows, packets, bytes, drops, decisions, score, action, action_reason, mode, "
	"blocked, block_ttl_s, blocked_until, capture_path, evidence, version, updated_at) "
	"SELECT DISTINCT ON (1) (d->>'incident_id')::uuid, $1, d->>'threat_type', d->>'detector', "
	"d->>'role', nullif(d->>'subtype', ''), d->>'state', (d->>'src')::inet, (d->>'dst')::inet, "
	"(d->>'dport')::integer, (d->>'protocol')::smallint, d->>'workload', "
	"to_timestamp((d->>'first_unix_us')::bigint / 1e6), "
	"to_timestamp((d->>'last_unix_us')::bigint / 1e6), "
	"to_timestamp((d->>'closed_unix_us')::bigint / 1e6), d->>'close_reason', "
	"to_timestamp((d->>'window_start_unix_us')::bigint / 1e6), (d->>'flows')::bigint, "
	"(d->>'packets')::bigint, (d->>'bytes')::bigint, (d->>'drops')::bigint, "
	"(d->>'decisions')::bigint, (d->>'score')::real, d->>'action', d->>'action_reason', "
	"d->>'mode', (d->>'blocked')::cidr, (d->>'block_ttl_s')::bigint, "
	"to_timestamp((d->>'blocked_until_unix_us')::bigint / 1e6), d->>'capture', d, "
	"(d->>'version')::bigint, now() "
	"FROM (VALUES %s) s(d) ORDER BY 1, (d->>'version')::bigint DESC "
	"ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, subtype = EXCLUDED.subtype, "
	"dest_ip = EXCLUDED.dest_ip, dest_port = EXCLUDED.dest_port, last_seen = EXCLUDED.last_seen, "
	"closed_at = EXCLUDED.closed_at, close_reason = EXCLUDED.close_reason, "
	"flows = EXCLUDED.flows, packets = EXCLUDED.packets, bytes = EXCLUDED.bytes, "
	"drops = EXCLUDED.drops, decisions = EXCLUDED.decisions, score = EXCLUDED.score, "
	"action = EXCLUDED.action, action_reason = EXCLUDED.action_reason, mode = EXCLUDED.mode, "
	"blocked = EXCLUDED.blocked, block_ttl_s = EXCLUDED.block_ttl_s, "
	"blocked_until = EXCLUDED.blocked_until, capture_path = EXCLUDED.capture_path, "
	"evidence = EXCLUDED.evidence, version = EXCLUDED.version, updated_at = now() "
	"WHERE incidents.version < EXCLUDED.version";

/* One alert per incident: its id, its threat type, a count that grows. */
static const char alert_sql[] =
	"INSERT INTO alerts (id, at, node, severity, kind, source_ip, dest_ip, dest_port, protocol, "
	"detail, count, last_at, incident_id) "
	"SELECT DISTINCT ON (1) (d->>'incident_id')::uuid, "
	"to_timestamp((d->>'first_unix_us')::bigint / 1e6), $1, "
	"CASE WHEN d->>'action' IN ('block', 'already') THEN 'critical' ELSE 'warning' END, "
	"d->>'threat_type', (d->>'src')::inet, (d->>'dst')::inet, (d->>'dport')::integer, "
	"zt_protocol_name((d->>'protocol')::smallint), d, "
	"CASE WHEN (d->>'flows')::bigint > 0 THEN (d->>'flows')::bigint "
	"ELSE greatest((d->>'packets')::bigint, 1) END, "
	"to_timestamp((d->>'last_unix_us')::bigint / 1e6), (d->>'incident_id')::uuid "
	"FROM (VALUES %s) s(d) ORDER BY 1, (d->>'version')::bigint DESC "
	"ON CONFLICT (id) DO UPDATE SET severity = EXCLUDED.severity, detail = EXCLUDED.detail, "
	"count = EXCLUDED.count, last_at = EXCLUDED.last_at "
	"WHERE (alerts.detail->>'version')::bigint < (EXCLUDED.detail->>'version')::bigint";

static const char capture_sql[] =
	"INSERT INTO forensic_captures (path, node, incident_id, part, state, bytes, packets, "
	"first_packet, last_packet, opened_at, closed_at, removed_at) "
	"SELECT DISTINCT ON (1) d->>'path', $1, (d->>'incident_id')::uuid, (d->>'part')::integer, "
	"d->>'state', (d->>'bytes')::bigint, (d->>'packets')::bigint, "
	"to_timestamp(nullif((d->>'first_unix_us')::bigint, 0) / 1e6), "
	"to_timestamp(nullif((d->>'last_unix_us')::bigint, 0) / 1e6), "
	"to_timestamp((d->>'event_unix_us')::bigint / 1e6), "
	"CASE WHEN d->>'state' <> 'open' THEN to_timestamp((d->>'event_unix_us')::bigint / 1e6) END, "
	"CASE WHEN d->>'state' = 'removed' THEN to_timestamp((d->>'event_unix_us')::bigint / 1e6) END "
	"FROM (VALUES %s) s(d) "
	"ORDER BY 1, array_position(ARRAY['open', 'closed', 'removed'], d->>'state') DESC "
	"ON CONFLICT (node, path) DO UPDATE SET "
	"state = CASE WHEN array_position(ARRAY['open', 'closed', 'removed'], EXCLUDED.state) > "
	"array_position(ARRAY['open', 'closed', 'removed'], forensic_captures.state) "
	"THEN EXCLUDED.state ELSE forensic_captures.state END, "
	"bytes = CASE WHEN EXCLUDED.state = 'removed' THEN forensic_captures.bytes "
	"ELSE greatest(forensic_captures.bytes, EXCLUDED.bytes) END, "
	"packets = greatest(forensic_captures.packets, EXCLUDED.packets), "
	"first_packet = coalesce(forensic_captures.first_packet, EXCLUDED.first_packet), "
	"last_packet = greatest(forensic_captures.last_packet, EXCLUDED.last_packet), "
	"closed_at = coalesce(forensic_captures.closed_at, EXCLUDED.closed_at), "
	"removed_at = coalesce(forensic_captures.removed_at, EXCLUDED.removed_at)";

/* Runs one statement over the details of the rows whose kind matches. */
static int run(PGconn *c, const char *node, const char *fmt, const struct zt_audit_rec *rows,
	       size_t n, bool (*match)(const char *kind), const char *what, char *err,
	       size_t errlen)
{
	const char **params = calloc(n + 1, sizeof(*params));
	char *values = malloc(n * 24 + 1), *sql = NULL;
	size_t o = 0;
	int np = 1, r = 0;

	if (!params || !values) {
		r = -ENOMEM;
		goto out;
	}
	params[0] = node;
	values[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!match(rows[i].kind))
			continue;
		params[np] = rows[i].detail;
		o += (size_t)sprintf(values + o, "%s($%d::jsonb)", np > 1 ? "," : "", np + 1);
		np++;
	}
	if (np == 1)
		goto out;
	sql = malloc(strlen(fmt) + o + 1);
	if (!sql) {
		r = -ENOMEM;
		goto out;
	}
	{
		/* fmt holds one "%s": the VALUES list goes there. */
		const char *at = strstr(fmt, "%s");
		size_t pre = at ? (size_t)(at - fmt) : strlen(fmt);

		memcpy(sql, fmt, pre);
		memcpy(sql + pre, values, o);
		strcpy(sql + pre + o, at ? at + 2 : "");
	}
	{
		PGresult *res = PQexecParams(c, sql, np, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			char m[400];

			snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
			m[strcspn(m, "\n")] = '\0';
			zt_seterr(err, errlen, "audit: %s rows: %s (SQLSTATE %s)", what, m,
				  st ? st : "none");
			if (PQstatus(c) != CONNECTION_OK)
				r = -EIO;
			else if (zt_audit_classify(st) == ZT_AUDIT_ERR_CONTENT)
				r = -EINVAL;
			else
				r = zt_audit_classify(st) == ZT_AUDIT_ERR_CONNECTION ? -EIO :
										       -EAGAIN;
		}
		PQclear(res);
	}
out:
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "audit: out of memory for %zu %s rows", n, what);
	free(params);
	free(values);
	free(sql);
	return r;
}

static bool is_incident(const char *kind)
{
	return !strncmp(kind, "incident.", 9);
}

static bool is_capture(const char *kind)
{
	return !strcmp(kind, "forensics.capture");
}

int zt_incident_db_side(void *ctx, PGconn *c, const struct zt_audit_rec *rows, size_t n, char *err,
			size_t errlen)
{
	const char *node = ctx ? ctx : "";
	int r;

	r = run(c, node, incident_sql, rows, n, is_incident, "incidents", err, errlen);
	if (!r)
		r = run(c, node, alert_sql, rows, n, is_incident, "incident alerts", err, errlen);
	if (!r)
		r = run(c, node, capture_sql, rows, n, is_capture, "forensic_captures", err,
			errlen);
	return r;
}
