/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * XDP drop aggregation: the XDP guard's drop events, summed per (family,
 * source, destination, protocol, destination port, interface, reason,
 * block reason) over fixed intervals, become flow records of kind
 * ZT_FLOW_KIND_XDP_DROP_AGG, so a flood is a handful of rows.
 *
 * Each event stands for `represents` drops (the sampled one and those the
 * program did not report since the previous event on its CPU); the rows
 * count those (aggregate_count, packet_count) and their bytes (pkt_len
 * times represents). A row's start and end are its first and last drop.
 * At most max_keys distinct keys per interval; beyond them, drops are
 * folded into one row per (interface, reason) with the unspecified
 * address as source and counted in folded.
 *
 * zt_dropagg_add runs on the events thread, zt_dropagg_flush on the loop;
 * both take the lock.
 *
 * With a worker (zt_dropagg_start_worker), the rows' sink, which blocks
 * (the daemon's writes them to the spool and fsyncs it), runs on a thread
 * of the aggregator's: zt_dropagg_flush_bg gathers the rows on the
 * caller's thread, calls prep there (the daemon scores them and feeds its
 * detectors, whose state is the loop's) and hands them over. Rows handed
 * over while the worker is busy wait for it, in order; none is dropped.
 * zt_dropagg_drain waits until the worker has written all it was given,
 * and zt_dropagg_free drains before it stops the worker.
 */
#ifndef ZT_DROPAGG_H
#define ZT_DROPAGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "records/flowexp.h"
#include "ztagent.h"

#define ZT_DROPAGG_INTERVAL_NS (10ULL * 1000000000ULL)
#define ZT_DROPAGG_MAX_KEYS 65536

struct zt_dropagg;

struct zt_dropagg_stats {
	uint64_t events; /* drop events added */
	uint64_t drops; /* drops they stand for */
	uint64_t rows; /* rows emitted */
	uint64_t folded; /* events folded into an "other sources" row */
	uint64_t handed; /* rows handed to the worker */
	uint64_t written; /* ... that its sink has returned for */
	uint64_t flush_ns_max; /* longest zt_dropagg_flush_bg (what its caller spent) */
	uint64_t worker_ns_max; /* longest sink call on the worker */
};

/* interval_ns 0: ZT_DROPAGG_INTERVAL_NS; max_keys 0: ZT_DROPAGG_MAX_KEYS. */
int zt_dropagg_new(uint64_t interval_ns, size_t max_keys, const char *node,
		   struct zt_dropagg **out);
void zt_dropagg_free(struct zt_dropagg *a);
/* Adds one event (its time is the event's ts_ns); the caller checked its length. */
void zt_dropagg_add(struct zt_dropagg *a, const struct zt_ev_xdp_drop *ev);
/*
 * Emits the rows of the interval when it has ended at now_boot_ns (or
 * always with force, e.g. at shutdown) and starts a new one. Returns the
 * number of rows.
 */
size_t zt_dropagg_flush(struct zt_dropagg *a, uint64_t now_boot_ns, bool force,
			zt_flow_sink_fn sink, void *ctx);
void zt_dropagg_get_stats(struct zt_dropagg *a, struct zt_dropagg_stats *st);

/* Called with the rows of a flush on the flushing thread before they are handed over. */
typedef void (*zt_dropagg_prep_fn)(void *ctx, struct zt_flow_record *recs, size_t n);
/*
 * Starts the worker: the rows of zt_dropagg_flush_bg go to sink on it
 * (prep, may be NULL, first on the flushing thread). 0 or -errno.
 */
int zt_dropagg_start_worker(struct zt_dropagg *a, zt_dropagg_prep_fn prep, void *prep_ctx,
			    zt_flow_sink_fn sink, void *sink_ctx);
/*
 * zt_dropagg_flush, its sink on the worker: returns the rows handed over
 * without waiting for them to be written. Without a worker: -EINVAL.
 */
ssize_t zt_dropagg_flush_bg(struct zt_dropagg *a, uint64_t now_boot_ns, bool force);
/* Waits until the worker has written every row handed to it. */
void zt_dropagg_drain(struct zt_dropagg *a);

#endif
