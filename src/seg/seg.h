/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Micro-segmentation, the daemon's side: endpoints (registered through the
 * API, attached with tc_endpoint, saved in state_dir, removed when their
 * interface goes), identities, the policy store (policy.dir, watched with
 * inotify), compiling and applying policy generations, and the verdict
 * stream (ZT_EV_POLICY events: logged, counted, kept for `ztctl flows`).
 *
 * Everything runs on the daemon's loop thread, except the event handler,
 * which runs on the ring-buffer thread and shares only what `lock` guards.
 */
#ifndef ZT_SEG_H
#define ZT_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "agent/api.h"
#include "agent/config.h"
#include "guard/datapath.h"
#include "guard/events.h"
#include "records/flowexp.h"
#include "agent/loop.h"

struct zt_seg;

struct zt_seg_stats {
	uint64_t gen; /* published policy generation */
	uint64_t policies; /* in force */
	uint64_t endpoints;
	uint64_t applies; /* generations published by this process */
	uint64_t rejects; /* policy loads refused (invalid files) */
	uint64_t verdicts[3]; /* new flows: allowed, denied, audit */
	uint64_t revoked; /* established flows stopped by a policy change */
	uint64_t last_apply_ns; /* compile + apply time of the last generation */
};

/* Policy change hook (audit trail): kind "policy.apply" | "policy.reject" | "endpoint.add" | ... */
typedef void (*zt_seg_audit_fn)(void *ctx, const char *kind, const char *subject,
				const char *detail);

/*
 * A policy violation (a denied flow, or one an audit-mode policy would
 * deny), as the verdict stream sees its first packet. Texts are valid for
 * the call only.
 */
struct zt_seg_violation {
	uint8_t verdict; /* 1 denied, 2 audit */
	uint8_t reason; /* enum zt_reason */
	uint8_t dir; /* enum zt_dir of the local endpoint */
	uint8_t proto;
	uint8_t family; /* 4 | 6 */
	uint8_t revoked;
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16];
	uint32_t src_id, dst_id;
	uint64_t ts_ns; /* the event's time (CLOCK_BOOTTIME) */
	const char *verdict_name, *reason_name, *protocol_name;
	const char *rule, *src_wl, *dst_wl, *ifname;
};

/*
 * Where violations go instead of one audit event each (e.g. an aggregator
 * per source, destination, port and rule). Runs on the ring-buffer thread.
 */
typedef void (*zt_seg_violation_fn)(void *ctx, const struct zt_seg_violation *v);

int zt_seg_init(struct zt_seg **out, const struct zt_config *cfg, struct zt_loop *loop,
		struct zt_datapath *dp, char *err, size_t errlen);
/* Registers the ZT_EV_POLICY handler (before zt_events_start). */
int zt_seg_register_events(struct zt_seg *s, struct zt_events *ev);
int zt_seg_register_api(struct zt_seg *s, struct zt_api *api);
void zt_seg_set_audit(struct zt_seg *s, zt_seg_audit_fn fn, void *ctx);
/* NULL (the default): every violation is its own "policy.violation" audit event. */
void zt_seg_set_violation_sink(struct zt_seg *s, zt_seg_violation_fn fn, void *ctx);
/* Where flow records go (the database writer); NULL: entries age out unrecorded. */
void zt_seg_set_flow_sink(struct zt_seg *s, zt_flow_sink_fn fn, void *ctx);
/* Observer of apply latencies (seconds), e.g. a metrics histogram. */
void zt_seg_set_apply_observer(struct zt_seg *s, void (*fn)(void *ctx, double seconds), void *ctx);
void zt_seg_get_stats(struct zt_seg *s, struct zt_seg_stats *out);
/* Stops watching; programs, pins and the state file stay. NULL is fine. */
void zt_seg_stop(struct zt_seg *s);

/*
 * For `ztagent --detach` (and the detach op): removes tc_endpoint from every
 * endpoint in the state file, and the state file. Works without a daemon.
 */
int zt_seg_detach_all(const struct zt_config *cfg, char *err, size_t errlen);

#endif
