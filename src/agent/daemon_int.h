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

struct zt_daemon {
	struct zt_config cfg;
	struct zt_loop *loop;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
	struct zt_api *api;
	struct zt_events *ev;
	struct zt_seg *seg;
	struct zt_feeds *feeds; /* NULL without feeds */
	struct zt_metrics *metrics;
	struct zt_metrics_std ms;
	struct zt_metrics_server *msrv;
	struct zt_dbw *dbw; /* NULL without database.url */
	struct zt_auditq *auditq; /* NULL without database.url */
	struct zt_dropagg *dropagg; /* NULL without database.url */
	struct zt_featlog *featlog; /* NULL without detection.feature_log */
	struct zt_dmtls *mtls; /* daemon_mtls.c: workload mTLS (NULL before start) */
	bool featlog_failed; /* the last write failed (warned once) */
	char config_path[4096];
	char actor[128]; /* audit_log.actor of this agent's events */
	/* One read of the per-CPU maps per scrape (metrics thread only). */
	struct zt_counter scrape_xdp[ZT_XDP_STATS_SLOTS];
	struct zt_counter scrape_tc[ZT_TCS_MAX];
	uint64_t scrape_ev[ZT_EVS_MAX];
	int sigfd;
	uint64_t started_mono;
	bool detach_requested;
};

/* daemon_metrics.c */
void daemon_metrics_blocklist_update(struct zt_daemon *d);
int daemon_metrics_start(struct zt_daemon *d, char *err, size_t errlen);

/* daemon_mtls.c: never fails the agent (mTLS flows then drop); stop is NULL-safe. */
int daemon_mtls_start(struct zt_daemon *d);
void daemon_mtls_stop(struct zt_daemon *d);
int daemon_mtls_register(struct zt_daemon *d);

#endif
