/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The facts behind `ztctl compliance report` that only the daemon has: the
 * operation "compliance.facts" (see apiops.h for the other operations).
 *
 * "compliance.facts" {} -> {"node": text, "policy_default": "deny"|"allow",
 *     "pending_posture": text, "retention_months": uint, "mtls_mode": text,
 *     "metrics_listen": text, "database": bool (database.url is set),
 *     "endpoints": [{"endpoint": "ns/name", "namespace", "ifname", "pending": bool,
 *                    "enforced": bool, "problem": text, "isolated_ingress": bool,
 *                    "isolated_egress": bool, "audit_only": bool}],
 *     "policies": [{"kind", "namespace", "name", "mode": "enforce"|"audit", "origin",
 *                   "since_unix": uint (its file's mtime; 0 not known), "endpoints": uint}],
 *     "world_ingress": [{"policy": "KIND ns/name", "rule": "spec.ingress[N]", "why",
 *                        "ports", "all_ports": bool, "audit": bool}]}
 */
#ifndef ZT_SEG_COMPLIANCE_H
#define ZT_SEG_COMPLIANCE_H

#include "agent/api.h"

#define ZT_OP_COMPLIANCE_FACTS "compliance.facts"

struct zt_seg;

int zt_seg_register_compliance_api(struct zt_seg *s, struct zt_api *api);

#endif
