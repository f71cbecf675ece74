/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's state, shared by daemon.c (start, stop, the loop's callbacks,
 * status, the database wiring) and daemon_metrics.c (the collectors behind
 * /metrics). Not for use outside src/agent/.
 */
#ifndef ZT_DAEMON_INT_H
#define ZT_DAEMON_INT_H

#include "agent/config.h"
#include "agent/metrics.h"
#include "guard/datapath.h"
#include "guard/events.h"
#include "respond/engine.h"

struct zt_daemon {
	struct zt_config cfg;
	struct zt_loop *loop;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
	struct zt_api *api;
	struct zt_events *ev;
	struct zt_seg *seg;
	struct zt_feeds *feeds; /* NULL without feeds */
	struct daemon_k8s *k8s; /* daemon_k8s.c: probes' heartbeat, the Kubernetes watches */
	struct zt_metrics *metrics;
	struct zt_metrics_std ms;
	struct zt_metrics_server *msrv;
	struct zt_dbw *dbw; /* NULL without database.url */
	struct zt_auditq *auditq; /* NULL without database.url */
	struct zt_dropagg *dropagg; /* NULL without database.url */
	struct zt_engine *engine; /* threat detection and response (src/respond/engine.h) */
	uint64_t sweep_next_ns; /* detection sweep: not before (monotonic), see on_sweep_timer */
	uint64_t sweep_regular_ns; /* ... the next of detection.sweep_interval (monotonic) */
	struct zt_metric *m_resp_latency; /* ztagent_response_latency_seconds */
	int allow_fd[2]; /* the XDP allowlists (v4, v6), for the never-block check */
	size_t scan_exempt_n; /* entries last written into scan_exempt (logged when it changes) */
	struct daemon_detect *det; /* daemon_detect.c: events in, incidents out, scoring */
	struct zt_featlog *featlog; /* NULL without detection.feature_log */
	struct zt_dmtls *mtls; /* daemon_mtls.c: workload mTLS (NULL before start) */
	bool featlog_failed; /* the last write failed (warned once) */
	char config_path[4096];
	char actor[128]; /* audit_log.actor of this agent's events */
	/* One read of the per-CPU maps per scrape (metrics thread only). */
	struct zt_counter scrape_xdp[ZT_XDP_STATS_SLOTS];
	struct zt_counter scrape_tc[ZT_TCS_MAX];
	uint64_t scrape_ev[ZT_EVS_MAX];
	struct zt_engine_stats scrape_engine;
	int sigfd;
	uint64_t started_mono;
	bool detach_requested;
	struct zt_drift *drift; /* daemon_drift.c */
	struct zt_nodes *nodes; /* daemon_nodes.c; NULL without database.url */
};

/* daemon_metrics.c */
void daemon_metrics_blocklist_update(struct zt_daemon *d);
int daemon_metrics_start(struct zt_daemon *d, char *err, size_t errlen);
/* The detection families (daemon_metrics.c), once the engine exists. */
int daemon_metrics_detection(struct zt_daemon *d);

/* daemon_k8s.c */
int daemon_k8s_start(struct zt_daemon *d, char *err, size_t errlen);
void daemon_k8s_stop(struct zt_daemon *d);
/* /healthz, /livez, /readyz (zt_metrics_probe_fn, ctx the daemon). */
unsigned int daemon_probe(void *ctx, const char *path, char *msg, size_t n);

/* daemon_drift.c: the drift checks on the loop (after metrics and seg), and their state. */
int daemon_drift_start(struct zt_daemon *d, char *err, size_t errlen);
void daemon_drift_stop(struct zt_daemon *d);
/* daemon_nodes.c: this node's row in the nodes table (heartbeat, policy hash). */
int daemon_nodes_start(struct zt_daemon *d, char *err, size_t errlen);
void daemon_nodes_stop(struct zt_daemon *d);

/* daemon_mtls.c: never fails the agent (mTLS flows then drop); stop is NULL-safe. */
int daemon_mtls_start(struct zt_daemon *d);
void daemon_mtls_stop(struct zt_daemon *d);
int daemon_mtls_register(struct zt_daemon *d);

#endif
