/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The rows incidents and forensic captures add beside their audit events,
 * in the audit writer's transaction (records/auditq.h, zt_auditq_open_ex):
 *
 *   "incident.open|update|close"  -> incidents (upsert by id; a state only
 *                                    replaces a lower version) and its one
 *                                    alerts row (id = the incident's id,
 *                                    kind = the threat type, count = its
 *                                    flows, or packets for a flood)
 *   "forensics.capture"           -> forensic_captures (upsert by node and
 *                                    path; open < closed < removed)
 *
 * Replays and batches holding several states of one incident are safe:
 * rows are deduplicated in the statement and only newer states win.
 */
#ifndef ZT_INCIDENT_DB_H
#define ZT_INCIDENT_DB_H

#include <stddef.h>

#include <libpq-fe.h>

#include "records/audit.h"

/* A zt_audit_side_fn; ctx is the node name (const char *). */
int zt_incident_db_side(void *ctx, PGconn *c, const struct zt_audit_rec *rows, size_t n, char *err,
			size_t errlen);

#endif
