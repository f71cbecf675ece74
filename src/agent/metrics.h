/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Metrics: a small registry of metric families and their Prometheus text
 * exposition (format 0.0.4), served over HTTP by libmicrohttpd.
 *
 * A family has a name, help, type and label names. Its samples come from
 * values stored in the registry (zt_metric_set/zt_metric_add, any thread),
 * from a collect callback run on every scrape (zt_metric_set_collect), or
 * both; histograms have fixed buckets and are fed by zt_metric_observe().
 * Snapshot callbacks (zt_metrics_add_snapshot) run once at the start of each
 * scrape, before any collect callback, so one read of a BPF map can feed
 * several families.
 *
 * Scrapes are serialized by a registry mutex: snapshot and collect callbacks
 * run one scrape at a time, on the HTTP server's thread. They may call
 * zt_metric_set/add/observe, but must not register families or callbacks.
 *
 * Output is stable: families sorted by name, samples of a family sorted
 * bytewise by their label set; a label set emitted twice in one scrape is
 * kept once (the first). Library code never logs.
 */
#ifndef ZT_METRICS_H
#define ZT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

enum zt_metric_type {
	ZT_METRIC_COUNTER = 0,
	ZT_METRIC_GAUGE,
	ZT_METRIC_HISTOGRAM,
};

#define ZT_METRIC_MAX_LABELS 8
#define ZT_METRIC_MAX_BUCKETS 32

struct zt_metrics; /* the registry */
struct zt_metric; /* one family, owned by the registry */
struct zt_metric_sink; /* where a collect callback puts samples */
struct zt_metrics_server; /* the HTTP server */

/* Emits the family's current samples with zt_metric_emit*(sink, ...). */
typedef void (*zt_metric_collect_fn)(void *ctx, struct zt_metric_sink *sink);
/* Runs once per scrape, before every collect callback. */
typedef void (*zt_metrics_snapshot_fn)(void *ctx);

int zt_metrics_new(struct zt_metrics **out);
/* Stop the server first. NULL is fine. */
void zt_metrics_free(struct zt_metrics *m);

/*
 * Registers a counter or gauge family. labels is a NULL-terminated list of
 * label names (NULL for none, at most ZT_METRIC_MAX_LABELS). fn (may be
 * NULL) is called on every scrape with ctx. Returns 0 and *out (out may be
 * NULL), or -EINVAL (bad metric or label name, a counter not ending in
 * _total, a histogram type), -EEXIST (name taken), -ENOMEM.
 */
int zt_metrics_add(struct zt_metrics *m, const char *name, const char *help,
		   enum zt_metric_type type, const char *const *labels, zt_metric_collect_fn fn,
		   void *ctx, struct zt_metric **out);

/*
 * Registers a histogram without labels; bounds are the upper bounds of its
 * buckets, finite and strictly increasing (at most ZT_METRIC_MAX_BUCKETS;
 * the +Inf bucket is implicit).
 */
int zt_metrics_add_histogram(struct zt_metrics *m, const char *name, const char *help,
			     const double *bounds, size_t n_bounds, struct zt_metric **out);

/* Adds a per-scrape snapshot callback; they run in the order added. */
int zt_metrics_add_snapshot(struct zt_metrics *m, zt_metrics_snapshot_fn fn, void *ctx);

/* Sets (or replaces, or with fn NULL removes) a family's collect callback. */
int zt_metric_set_collect(struct zt_metric *f, zt_metric_collect_fn fn, void *ctx);

/*
 * Stored values, one per label-value tuple (values: one string per label
 * name, NULL for a family without labels). Thread-safe.
 * set: counters and gauges (for a counter, mirror of a monotonic count).
 * add: delta >= 0 for counters (-EINVAL otherwise), any for gauges.
 * -EINVAL for a histogram or a NULL label value, -ENOMEM.
 */
int zt_metric_set(struct zt_metric *f, const char *const *values, double v);
int zt_metric_add(struct zt_metric *f, const char *const *values, double delta);

/* Counts v in a histogram; thread-safe. NaN is ignored. */
void zt_metric_observe(struct zt_metric *h, double v);

/*
 * From a collect callback: one sample of the family being collected.
 * _u64 prints the exact integer (use it for BPF counters).
 * -EINVAL for a NULL label value, -ENOMEM.
 */
int zt_metric_emit(struct zt_metric_sink *s, const char *const *values, double v);
int zt_metric_emit_u64(struct zt_metric_sink *s, const char *const *values, uint64_t v);

/*
 * Renders the exposition text (runs the snapshot and collect callbacks).
 * *text is NUL-terminated and the caller frees it. 0 or -ENOMEM.
 */
int zt_metrics_render(struct zt_metrics *m, char **text, size_t *len);

/*
 * Serves GET/HEAD /metrics on addr ("ADDR:PORT", "[ADDR6]:PORT"; port 0
 * picks a free port, see zt_metrics_server_port) from a libmicrohttpd
 * thread. Other paths: 404; other methods on /metrics: 405.
 * An empty addr means off: returns 0 with *out NULL.
 * On failure returns -errno and writes a message naming the address to err,
 * e.g. "metrics.listen 127.0.0.1:9470: cannot bind: Address already in use".
 */
int zt_metrics_server_start(struct zt_metrics *m, const char *addr, struct zt_metrics_server **out,
			    char *err, size_t errlen);
/*
 * Health probes on the same listener: GET /healthz, /livez and /readyz
 * answer fn's HTTP status with the text it wrote to msg (NUL-terminated).
 * fn runs on the server's thread. Set it before the server starts; without
 * one these paths are 404 like any other.
 */
typedef unsigned int (*zt_metrics_probe_fn)(void *ctx, const char *path, char *msg, size_t n);
void zt_metrics_set_probe(struct zt_metrics *m, zt_metrics_probe_fn fn, void *ctx);
/* The bound port (host order). */
uint16_t zt_metrics_server_port(const struct zt_metrics_server *s);
/* Stops the thread, closes the socket, frees. NULL is fine. */
void zt_metrics_server_stop(struct zt_metrics_server *s);

/* ---- ztagent's own families ---- */

/* Upper bounds for ztagent_policy_apply_seconds. */
#define ZT_METRICS_APPLY_BUCKETS                                                               \
	{                                                                                      \
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 \
	}

struct zt_metrics_std {
	struct zt_metric *xdp_packets; /* ztagent_xdp_packets_total{action,reason} */
	struct zt_metric *xdp_bytes; /* ztagent_xdp_bytes_total{action,reason} */
	struct zt_metric *tc_packets; /* ztagent_tc_packets_total{verdict} */
	struct zt_metric *tc_bytes; /* ztagent_tc_bytes_total{verdict} */
	struct zt_metric *tc_flow_verdicts; /* ztagent_tc_flow_verdicts_total{verdict} */
	struct zt_metric *policy_denials; /* ztagent_policy_denials_total */
	struct zt_metric *blocklist_entries; /* ztagent_blocklist_entries{family} gauge */
	struct zt_metric *ringbuf_lost; /* ztagent_ringbuf_lost_events_total */
	struct zt_metric *db_flow_rows_written; /* ztagent_db_flow_rows_written_total */
	struct zt_metric *db_flow_rows_refused; /* ztagent_db_flow_rows_refused_total */
	struct zt_metric *spool_bytes; /* ztagent_spool_bytes gauge */
	struct zt_metric *spool_dropped; /* ztagent_spool_dropped_records_total */
	struct zt_metric *audit_written; /* ztagent_audit_events_written_total */
	struct zt_metric *audit_dropped; /* ztagent_audit_events_dropped_total */
	struct zt_metric *audit_pending; /* ztagent_audit_events_pending gauge */
	struct zt_metric *policy_apply; /* ztagent_policy_apply_seconds histogram */
	struct zt_metric *build_info; /* ztagent_build_info{version} = 1 */
};

/*
 * Registers every family above, without collect callbacks, and sets
 * ztagent_build_info{version=version} 1. The daemon then attaches collect
 * callbacks (zt_metric_set_collect) to the families it reads at scrape time
 * and feeds the others with zt_metric_add/set/observe.
 */
int zt_metrics_register_std(struct zt_metrics *m, const char *version, struct zt_metrics_std *out);

/*
 * Emits the ZT_XDP_STATS_SLOTS (action, reason) pairs of c (as summed by
 * zt_datapath_xdp_stats) into an xdp_packets (bytes false) or xdp_bytes
 * (bytes true) collect callback; every pair, zeros included.
 */
int zt_metrics_emit_xdp(struct zt_metric_sink *s, const struct zt_counter *c, bool bytes);

#endif
