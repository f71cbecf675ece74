// SPDX-License-Identifier: GPL-2.0-only
/* The daemon's metrics: one snapshot of the kernel's counters per scrape, and a collector per family. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent/daemon.h"
#include "agent/daemon_int.h"
#include "feeds/feeds.h"
#include "agent/log.h"
#include "agent/util.h"
#include "guard/blocklist.h"
#include "records/auditq.h"
#include "records/dbwriter.h"
#include "seg/seg.h"

/* ---- metrics ---- */

static void m_snapshot(void *ctx)
{
	struct zt_daemon *d = ctx;

	if (zt_datapath_xdp_stats(d->dp, d->scrape_xdp) < 0)
		memset(d->scrape_xdp, 0, sizeof(d->scrape_xdp));
	if (zt_datapath_tc_stats(d->dp, d->scrape_tc) < 0)
		memset(d->scrape_tc, 0, sizeof(d->scrape_tc));
	if (zt_datapath_event_stats(d->dp, d->scrape_ev) < 0)
		memset(d->scrape_ev, 0, sizeof(d->scrape_ev));
}

static void m_xdp_packets(void *ctx, struct zt_metric_sink *s)
{
	zt_metrics_emit_xdp(s, ((struct zt_daemon *)ctx)->scrape_xdp, false);
}

static void m_xdp_bytes(void *ctx, struct zt_metric_sink *s)
{
	zt_metrics_emit_xdp(s, ((struct zt_daemon *)ctx)->scrape_xdp, true);
}

static void m_tc(struct zt_daemon *d, struct zt_metric_sink *s, bool bytes)
{
	for (unsigned int i = 0; i < ZT_TCS_MAX; i++) {
		const char *v[] = { zt_tc_stat_name(i) };

		zt_metric_emit_u64(s, v, bytes ? d->scrape_tc[i].bytes : d->scrape_tc[i].packets);
	}
}

static void m_tc_packets(void *ctx, struct zt_metric_sink *s)
{
	m_tc(ctx, s, false);
}

static void m_tc_bytes(void *ctx, struct zt_metric_sink *s)
{
	m_tc(ctx, s, true);
}

static void m_flow_verdicts(void *ctx, struct zt_metric_sink *s)
{
	static const char *const names[] = { "allowed", "denied", "audit" };
	struct zt_daemon *d = ctx;
	struct zt_seg_stats ss;

	zt_seg_get_stats(d->seg, &ss);
	for (unsigned int i = 0; i < 3; i++) {
		const char *v[] = { names[i] };

		zt_metric_emit_u64(s, v, ss.verdicts[i]);
	}
}

static void m_denials(void *ctx, struct zt_metric_sink *s)
{
	struct zt_daemon *d = ctx;
	struct zt_seg_stats ss;

	zt_seg_get_stats(d->seg, &ss);
	zt_metric_emit_u64(s, NULL, ss.verdicts[1]);
}

/* On the loop thread (the blocklist's), each expiry tick: the gauge is at most 1 s old. */
void daemon_metrics_blocklist_update(struct zt_daemon *d)
{
	const char *v4[] = { "ipv4" }, *v6[] = { "ipv6" };

	if (!d->metrics)
		return;
	zt_metric_set(
		d->ms.blocklist_entries, v4,
		(double)(zt_blocklist_count(d->bl, 0, false) + zt_blocklist_count(d->bl, 0, true)));
	zt_metric_set(
		d->ms.blocklist_entries, v6,
		(double)(zt_blocklist_count(d->bl, 1, false) + zt_blocklist_count(d->bl, 1, true)));
}

static void m_ringbuf_lost(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, ((struct zt_daemon *)ctx)->scrape_ev[ZT_EVS_RESERVE_FAILED]);
}

static void m_db(void *ctx, struct zt_metric_sink *s, int which)
{
	struct zt_daemon *d = ctx;
	struct zt_dbw_stats ws;
	uint64_t v[] = { 0, 0, 0, 0 };

	if (d->dbw) {
		zt_dbw_get_stats(d->dbw, &ws);
		v[0] = ws.rows_written;
		v[1] = ws.rows_failed;
		v[2] = ws.spool_bytes;
		v[3] = ws.spool_dropped_records;
	}
	if (which == 2)
		zt_metric_emit(s, NULL, (double)v[2]);
	else
		zt_metric_emit_u64(s, NULL, v[which]);
}

static void m_db_written(void *ctx, struct zt_metric_sink *s)
{
	m_db(ctx, s, 0);
}

static void m_db_refused(void *ctx, struct zt_metric_sink *s)
{
	m_db(ctx, s, 1);
}

static void m_spool_bytes(void *ctx, struct zt_metric_sink *s)
{
	m_db(ctx, s, 2);
}

static void m_spool_dropped(void *ctx, struct zt_metric_sink *s)
{
	m_db(ctx, s, 3);
}

static void m_audit(void *ctx, struct zt_metric_sink *s, int which)
{
	struct zt_daemon *d = ctx;
	struct zt_auditq_stats as = { 0 };

	if (d->auditq)
		zt_auditq_get_stats(d->auditq, &as);
	if (which == 0)
		zt_metric_emit_u64(s, NULL, as.written);
	else if (which == 1)
		zt_metric_emit_u64(s, NULL, as.dropped);
	else
		zt_metric_emit(s, NULL, (double)as.pending);
}

static void m_audit_written(void *ctx, struct zt_metric_sink *s)
{
	m_audit(ctx, s, 0);
}

static void m_audit_dropped(void *ctx, struct zt_metric_sink *s)
{
	m_audit(ctx, s, 1);
}

static void m_audit_pending(void *ctx, struct zt_metric_sink *s)
{
	m_audit(ctx, s, 2);
}

static void m_apply_observed(void *ctx, double seconds)
{
	zt_metric_observe(ctx, seconds);
}

int daemon_metrics_start(struct zt_daemon *d, char *err, size_t errlen)
{
	int r;

	r = zt_metrics_new(&d->metrics);
	if (r == 0)
		r = zt_metrics_register_std(d->metrics, ZT_VERSION, &d->ms);
	if (r == 0)
		r = zt_metrics_add_snapshot(d->metrics, m_snapshot, d);
	if (r < 0) {
		snprintf(err, errlen, "cannot set up metrics: %s", strerror(-r));
		return r;
	}
	zt_metric_set_collect(d->ms.xdp_packets, m_xdp_packets, d);
	zt_metric_set_collect(d->ms.xdp_bytes, m_xdp_bytes, d);
	zt_metric_set_collect(d->ms.tc_packets, m_tc_packets, d);
	zt_metric_set_collect(d->ms.tc_bytes, m_tc_bytes, d);
	zt_metric_set_collect(d->ms.tc_flow_verdicts, m_flow_verdicts, d);
	zt_metric_set_collect(d->ms.policy_denials, m_denials, d);
	daemon_metrics_blocklist_update(d);
	zt_metric_set_collect(d->ms.ringbuf_lost, m_ringbuf_lost, d);
	zt_metric_set_collect(d->ms.db_flow_rows_written, m_db_written, d);
	zt_metric_set_collect(d->ms.db_flow_rows_refused, m_db_refused, d);
	zt_metric_set_collect(d->ms.spool_bytes, m_spool_bytes, d);
	zt_metric_set_collect(d->ms.spool_dropped, m_spool_dropped, d);
	zt_metric_set_collect(d->ms.audit_written, m_audit_written, d);
	zt_metric_set_collect(d->ms.audit_dropped, m_audit_dropped, d);
	zt_metric_set_collect(d->ms.audit_pending, m_audit_pending, d);
	zt_seg_set_apply_observer(d->seg, m_apply_observed, d->ms.policy_apply);
	r = zt_feeds_register_metrics(d->feeds, d->metrics);
	if (r < 0) {
		snprintf(err, errlen, "cannot register the feed metrics: %s", strerror(-r));
		return r;
	}
	zt_metrics_set_probe(d->metrics, daemon_probe, d);
	r = zt_metrics_server_start(d->metrics, d->cfg.metrics.listen, &d->msrv, err, errlen);
	if (r < 0)
		return r;
	if (d->msrv)
		log_info("metrics_serving", "listen=%s port=%u path=/metrics",
			 d->cfg.metrics.listen, zt_metrics_server_port(d->msrv));
	return 0;
}
