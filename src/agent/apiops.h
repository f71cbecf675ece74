/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * API operations: names and the fields of their requests and replies.
 * Shared by the daemon's handlers and ztctl; see apimsg.h for framing.
 *
 * Times are unix seconds; TTLs and remaining times are seconds; a missing
 * optional field takes the default shown.
 *
 * "status"        -> {"node": text, "version": text, "pid": uint, "uptime_s": uint,
 *                     "bpffs": text,
 *                     "programs": [{"name": text, "id": uint}],
 *                     "interfaces": [{"name": text, "ifindex": uint, "mode": "native"|"generic",
 *                                     "prog_id": uint, "attached": bool}],
 *                     "maps": [{"name": text, "id": uint, "entries": uint, "max_entries": uint}],
 *                     "counters": [{"action": "pass"|"drop", "reason": text,
 *                                   "packets": uint, "bytes": uint}],   (non-zero ones only)
 *                     "events": {"emitted": uint, "lost": uint, "suppressed": uint,
 *                                "received": uint}}
 * "block.add"     {"cidr": text, "ttl_s": uint (0 = never, default 0),
 *                  "reason": text (free text, <= 63 bytes, default ""),
 *                  "kind": text (enum zt_block_reason name, default "operator")}
 *                 -> {"cidr": text (normalized), "expires_unix": uint (0 = never),
 *                     "replaced": bool}
 * "block.del"     {"cidr": text} -> {"cidr": text}; -ENOENT when absent
 * "block.list"    {"limit": uint (0 = all, default 0), "feed": text (only the entries that
 *                  feed lists inbound; a page may then hold fewer than limit)}
 *                 -> {"total": uint, "entries": [{"cidr": text, "kind": text, "source": text,
 *                     "feed_id": uint, "reason": text, "created_unix": uint,
 *                     "expires_unix": uint (0 = never), "expired": bool}]}
 * "block.import"  {"cidrs": [text, ...] (<= 1048576 per request) and/or
 *                  "packed": bytes (records of ZT_PACKED_CIDR_LEN bytes: family 4|6, prefix
 *                  length, 16 address bytes; the form ztctl sends: no per-item decoding),
 *                  "ttl_s": uint,
 *                  "reason": text, "kind": text, "source": "manual"|"feed"|"detector",
 *                  "feed_id": uint}
 *                 -> {"added": uint, "replaced": uint, "invalid": uint,
 *                     "errors": [text, ... first 10 "LINE: cidr: why" messages]}
 *                 The whole request is applied or, when the maps are full, none of it.
 * "allow.add"     {"cidr": text, "reason": text} -> {"cidr": text}
 * "allow.del"     {"cidr": text} -> {"cidr": text}
 * "allow.list"    {} -> {"entries": [{"cidr": text, "reason": text, "created_unix": uint}]}
 * "detach"        {} -> {} ; the daemon then detaches its programs, removes its pins and exits
 *
 * "endpoint.add"  {"ifname": text, "ip": text ("ADDR[,ADDR]"), "labels": text ("k=v,..."),
 *                  "namespace": text (default "default"), "name": text (default ifname),
 *                  "namespace_labels": text, "ports": text ("name=PORT/PROTO,..."),
 *                  "origin": "api"|"cni" (default "api"), "pod_uid": text,
 *                  "service_account": text,
 *                  origin cni: "container_id": text (CNI_CONTAINERID), "cni_ifname": text
 *                  (CNI_IFNAME); without "labels" the endpoint is pending (ZT_ID_PENDING)
 *                  until its pod's labels are known; the same (container_id, cni_ifname)
 *                  on the same veth again is answered with the endpoint as it is}
 *                 -> the endpoint as in endpoint.list
 * "endpoint.del"  {"endpoint": text (namespace/name, name or ifname)} -> {"endpoint", "ifname"}
 *                 or, for the CNI plugin, {"container_id": text, "cni_ifname": text}
 *                 -> {"removed": bool, "endpoint", "ifname"}: idempotent, an unknown pair
 *                 is not an error
 * "endpoint.list" {} -> {"endpoints": [{"id", "name", "namespace", "ifname", "ifindex",
 *                     "ip": text, "identity", "created_unix", "labels": {k: v},
 *                     "namespace_labels": {k: v}, "origin": "api"|"cni", "pending": bool,
 *                     "pod_uid", "container_id", "cni_ifname", "service_account"}]}
 * "endpoint.check" {"container_id": text, "cni_ifname": text}
 *                 -> the endpoint as in endpoint.list plus "enforced": bool and
 *                    "problem": text ("" when enforced); -ENOENT when not registered
 * "endpoint.meta" {"endpoint": text, "labels": text, "namespace_labels": text,
 *                  "ports": text, "service_account": text, "pod_uid": text (must match
 *                  when both know it)} -> the endpoint as in endpoint.list; what the
 *                  Kubernetes watch does for pods (a pending endpoint gets its identity)
 * "policy.list"   {} -> {"policies": [{"kind", "namespace", "name", "mode", "isolates",
 *                     "ingress_rules", "egress_rules", "endpoints", "source"}],
 *                     "dir", "default", "generation", "sha256", "rejects", "last_error"}
 * "policy.explain" {"from": text, "to": text, "port": text ("443/TCP")}
 *                 -> {"verdict": "allow"|"deny"|"audit", "explanation": text,
 *                     "require_tls": bool, "require_mutual_auth": bool, "generation": uint}
 * "annotate"      {"namespace": text, "endpoint": text ("" or absent: the namespace itself),
 *                  "key": text (ztagent.io/isolation on a namespace, ztagent.io/talks-to on an
 *                  endpoint), "value": text, "remove": bool (default false)}
 *                 -> {"namespace", "endpoint", "key", "removed", "generated_policies",
 *                     "generation", "problems"}; a bad value is refused (error names the
 *                     annotation, entry and column); policy.list adds "generated_problems"
 * "policy.reload" {} -> {"generation": uint}; an invalid store is refused (error names
 *                     file:line:column) and the policy in force stays
 * "flows.recent"  {"after": uint (seq, default 0), "verdict": "allowed"|"denied"|"audit"|"",
 *                  "limit": uint (default 1000, at most 10000)}
 *                 -> {"flows": [{"seq", "time", "time_ms", "verdict", "reason", "rule",
 *                     "direction", "protocol", "src", "sport", "dst", "dport",
 *                     "src_identity", "dst_identity", "src_workload", "dst_workload",
 *                     "interface", "revoked"}], "last": uint, "missed": uint}
 *
 * "incidents.list" {"state": "open"|"closed"|"all" (default "all"), "limit": uint (default 100)}
 *                 -> {"incidents": [incident summary, newest first], "open": uint, "total": uint}
 *                 summary: {"id", "threat_type", "subtype", "state", "role", "src", "dst",
 *                     "dport", "workload", "first_unix", "last_unix", "flows", "packets",
 *                     "bytes", "drops", "decisions", "score" (per mille, uint), "action",
 *                     "blocked", "blocked_until_unix"}
 * "incidents.show" {"id": text (the id or a unique prefix of at least 4 characters)}
 *                 -> the summary plus {"evidence", "value", "threshold", "window_ms",
 *                     "window_start_unix", "closed_unix", "close_reason", "mode",
 *                     "action_reason", "block_ttl_s", "offence", "block_us", "capture",
 *                     "capture_files", "version", "flows_query"}; -ENOENT / -EINVAL (several)
 * "alerts.recent" {"after": uint (seq, default 0), "limit": uint (default 1000, at most 4096)}
 *                 -> {"alerts": [{"seq", "time", "time_ms", "kind", "event", "severity",
 *                     "id", "subject", "count", "action", "score" (per mille), "detail"}],
 *                     "last": uint, "missed": uint}
 * "feeds.list"    {} -> {"feeds": [{"name", "url", "format", "direction", "action",
 *                     "refresh_s", "state": "ok"|"applying"|"failing"|"stale"|"pending",
 *                     "entries", "inbound", "outbound", "advisories", "subtracted", "bad",
 *                     "ignored", "expired", "duplicates", "items", "last_success_unix",
 *                     "last_attempt_unix", "last_change_unix", "content_fetched_unix",
 *                     "age_s" (int, -1 = never), "next_refresh_unix", "last_error",
 *                     "failures", "fetch_errors", "http_status", "sha256", "versions",
 *                     "apply_ms", "bytes", "ioc_hits"}]}
 * "feeds.show"    {"name": text} -> one feed as in feeds.list, plus "last_error_any",
 *                     "sha256_fetched", "parse_ms", "max_entries", "max_bytes",
 *                     "problems": [text] and "subtractions": [text] (the first 20)
 * "feeds.refresh" {"name": text ("" = every feed), "force": bool (default false:
 *                  a conditional request)} -> {"name": text}
 */
#ifndef ZT_APIOPS_H
#define ZT_APIOPS_H

#define ZT_OP_STATUS "status"
#define ZT_OP_BLOCK_ADD "block.add"
#define ZT_OP_BLOCK_DEL "block.del"
#define ZT_OP_BLOCK_LIST "block.list"
#define ZT_OP_BLOCK_IMPORT "block.import"
#define ZT_OP_ALLOW_ADD "allow.add"
#define ZT_OP_ALLOW_DEL "allow.del"
#define ZT_OP_ALLOW_LIST "allow.list"
#define ZT_OP_DETACH "detach"
#define ZT_OP_ENDPOINT_ADD "endpoint.add"
#define ZT_OP_ENDPOINT_DEL "endpoint.del"
#define ZT_OP_ENDPOINT_LIST "endpoint.list"
#define ZT_OP_ENDPOINT_CHECK "endpoint.check"
#define ZT_OP_ENDPOINT_META "endpoint.meta"
#define ZT_OP_POLICY_LIST "policy.list"
#define ZT_OP_POLICY_EXPLAIN "policy.explain"
#define ZT_OP_POLICY_RELOAD "policy.reload"
#define ZT_OP_ANNOTATE "annotate"
#define ZT_OP_FLOWS_RECENT "flows.recent"
#define ZT_OP_INCIDENTS_LIST "incidents.list"
#define ZT_OP_INCIDENTS_SHOW "incidents.show"
#define ZT_OP_ALERTS_RECENT "alerts.recent"
#define ZT_OP_FEEDS_LIST "feeds.list"
#define ZT_OP_FEEDS_SHOW "feeds.show"
#define ZT_OP_FEEDS_REFRESH "feeds.refresh"
#define ZT_OP_MTLS_STATUS "mtls.status"

#define ZT_PACKED_CIDR_LEN 18

#endif
