/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy denials aggregated per (source, destination, port, protocol,
 * rule, verdict) over a short window, instead of one alerts row and one
 * audit row per denied flow (an 8-second UDP flood used to write 65k of
 * each). network_flows still keeps every flow.
 *
 * The first violation of a key posts a "policy.violation" audit event at
 * once (count 1: an operator sees the first denial without delay) with a
 * fresh alert_id; the key then counts for window_ns; when the window ends
 * with more than was posted, one more event posts the same alert_id with
 * the final count, first and last time. The alerts row is one per
 * alert_id and keeps the highest count (records/auditq.c). The next
 * violation of the key after its window opens a new alert.
 *
 * At most max_keys keys per moment: beyond that, violations fold into one
 * key per (destination, port, protocol, rule, verdict) without a source
 * ("src": null), counted in folded.
 *
 * Thread-safe: add runs on the ring-buffer thread, tick on the loop.
 */
#ifndef ZT_DENYAGG_H
#define ZT_DENYAGG_H

#include <stdbool.h>
#include <stdint.h>

#include "seg/seg.h"

typedef void (*zt_denyagg_post_fn)(void *ctx, const char *kind, const char *subject,
				   const char *detail_json);

struct zt_denyagg_cfg {
	uint64_t window_ns; /* default 10 s */
	uint32_t max_keys; /* default 4096 */
};

struct zt_denyagg;

struct zt_denyagg_stats {
	uint64_t violations, alerts, updates, folded, keys;
};

void zt_denyagg_cfg_defaults(struct zt_denyagg_cfg *c);
int zt_denyagg_new(const struct zt_denyagg_cfg *c, zt_denyagg_post_fn post, void *ctx,
		   struct zt_denyagg **out);
/* Posts what is pending and frees. NULL is fine. */
void zt_denyagg_free(struct zt_denyagg *a);
void zt_denyagg_add(struct zt_denyagg *a, const struct zt_seg_violation *v, uint64_t now_ns,
		    int64_t now_us);
/* Ends the windows that are over at now_ns (all with force). */
void zt_denyagg_tick(struct zt_denyagg *a, uint64_t now_ns, int64_t now_us, bool force);
void zt_denyagg_get_stats(struct zt_denyagg *a, struct zt_denyagg_stats *st);

#endif
