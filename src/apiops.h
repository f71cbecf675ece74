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
 * "block.list"    {"limit": uint (0 = all, default 0)}
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

#define ZT_PACKED_CIDR_LEN 18

#endif
