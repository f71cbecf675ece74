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
#include "respond/engine.h"
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

/* ---- detection and response ---- */

/* One read of the engine's counters per scrape, for every family below. */
static void m_engine_snapshot(void *ctx)
{
	struct zt_daemon *d = ctx;

	if (d->engine)
		zt_engine_get_stats(d->engine, &d->scrape_engine);
	else
		memset(&d->scrape_engine, 0, sizeof(d->scrape_engine));
}

#define D(ctx) ((struct zt_daemon *)(ctx))

static void per_threat(struct zt_metric_sink *s, const uint64_t *v, bool gauge)
{
	for (unsigned int t = ZT_THREAT_SCAN; t < ZT_THREAT_MAX; t++) {
		const char *l[] = { zt_threat_name(t) };

		if (gauge)
			zt_metric_emit(s, l, (double)v[t]);
		else
			zt_metric_emit_u64(s, l, v[t]);
	}
}

static void m_decisions(void *ctx, struct zt_metric_sink *s)
{
	per_threat(s, D(ctx)->scrape_engine.decisions, false);
}

static void m_blocks(void *ctx, struct zt_metric_sink *s)
{
	per_threat(s, D(ctx)->scrape_engine.blocks, false);
}

static void m_incidents_open(void *ctx, struct zt_metric_sink *s)
{
	per_threat(s, D(ctx)->scrape_engine.incidents_open, true);
}

static void m_incidents_total(void *ctx, struct zt_metric_sink *s)
{
	per_threat(s, D(ctx)->scrape_engine.incidents_opened, false);
}

static void m_refused(void *ctx, struct zt_metric_sink *s)
{
	static const char *const lists[6] = { "protected", "special-purpose", "node",
					      "gateway",   "allowlist",	      "other" };

	for (int i = 0; i < 6; i++) {
		const char *l[] = { lists[i] };

		zt_metric_emit_u64(s, l, D(ctx)->scrape_engine.refused_by[i]);
	}
}

static void m_block_failures(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.block_failures);
}

static void m_denial_alerts(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL,
			   D(ctx)->scrape_engine.denial_alerts +
				   D(ctx)->scrape_engine.denial_updates);
}

static void m_capture_bytes(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit(s, NULL, (double)D(ctx)->scrape_engine.capture_bytes);
}

static void m_capture_files(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit(s, NULL, (double)D(ctx)->scrape_engine.capture_files);
}

static void m_scan_sources(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit(s, NULL, (double)D(ctx)->scrape_engine.scan_sources);
}

static void m_scan_evicted(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.scan_evicted);
}

static void m_capture_packets(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.capture_packets);
}

static void m_capture_sampled(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.capture_sampled_out);
}

static void m_sessions(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.sessions);
}

static void m_sessions_repeated(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.sessions_repeated);
}

static void m_ssh_refused(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.ssh_refused);
}

static void m_clear_refused(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, NULL, D(ctx)->scrape_engine.clear_refused);
}

static void m_sweep_seconds(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit(s, NULL, D(ctx)->scrape_engine.last_sweep_ms / 1e3);
}

int daemon_metrics_detection(struct zt_daemon *d)
{
	static const char *const det[] = { "detector", NULL };
	static const char *const thr[] = { "threat_type", NULL };
	static const char *const lst[] = { "list", NULL };
	static const double lat[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				      0.01,   0.025,   0.05,   0.1,   0.25,   1 };
	static const struct {
		const char *name, *help;
		enum zt_metric_type type;
		const char *const *labels;
		zt_metric_collect_fn fn;
	} fams[] = {
		{ "ztagent_detector_decisions_total",
		  "Decisions of each detector (each may open or grow an incident)",
		  ZT_METRIC_COUNTER, det, m_decisions },
		{ "ztagent_detector_blocks_total",
		  "Sources blocked in the XDP blocklist by each detector", ZT_METRIC_COUNTER, det,
		  m_blocks },
		{ "ztagent_incidents_open", "Incidents open now, by threat type", ZT_METRIC_GAUGE,
		  thr, m_incidents_open },
		{ "ztagent_incidents_total", "Incidents opened, by threat type", ZT_METRIC_COUNTER,
		  thr, m_incidents_total },
		{ "ztagent_response_refused_total",
		  "Blocks refused because the address is never to be blocked, by list",
		  ZT_METRIC_COUNTER, lst, m_refused },
		{ "ztagent_response_block_failures_total",
		  "Blocks a detector decided that could not be written", ZT_METRIC_COUNTER, NULL,
		  m_block_failures },
		{ "ztagent_policy_denial_alerts_total",
		  "Alert rows written for policy denials (aggregated per source, destination, port "
		  "and rule)",
		  ZT_METRIC_COUNTER, NULL, m_denial_alerts },
		{ "ztagent_forensics_bytes", "Bytes of forensic captures on disk", ZT_METRIC_GAUGE,
		  NULL, m_capture_bytes },
		{ "ztagent_forensics_files", "Forensic capture files on disk", ZT_METRIC_GAUGE,
		  NULL, m_capture_files },
		{ "ztagent_forensics_packets_total", "Packets written to forensic captures",
		  ZT_METRIC_COUNTER, NULL, m_capture_packets },
		{ "ztagent_forensics_sampled_out_total",
		  "Packets of watched addresses not written (over forensics.rate)",
		  ZT_METRIC_COUNTER, NULL, m_capture_sampled },
		{ "ztagent_detection_sweep_seconds", "Duration of the last conntrack sweep",
		  ZT_METRIC_GAUGE, NULL, m_sweep_seconds },
		{ "ztagent_scan_sources", "Sources the scan detector is walking now",
		  ZT_METRIC_GAUGE, NULL, m_scan_sources },
		{ "ztagent_scan_evictions_total",
		  "Scan detector state (sources, pairs, contacts) evicted to make room in its full "
		  "tables: many sources at once, such as a spoofed flood",
		  ZT_METRIC_COUNTER, NULL, m_scan_evicted },
		{ "ztagent_bruteforce_sessions_total",
		  "Ended TCP sessions the brute-force detector judged (pods' and the node's own)",
		  ZT_METRIC_COUNTER, NULL, m_sessions },
		{ "ztagent_bruteforce_sessions_repeated_total",
		  "Session ends tc_endpoint sent twice (both directions closing on two CPUs at once), "
		  "judged once",
		  ZT_METRIC_COUNTER, NULL, m_sessions_repeated },
		{ "ztagent_bruteforce_ssh_refused_total",
		  "SSH guesses counted as the server refused each, before their sessions ended",
		  ZT_METRIC_COUNTER, NULL, m_ssh_refused },
		{ "ztagent_bruteforce_clear_refused_total",
		  "Logins refused in the clear counted as a session's run of them grew, before it ended",
		  ZT_METRIC_COUNTER, NULL, m_clear_refused },
	};
	int r = zt_metrics_add_snapshot(d->metrics, m_engine_snapshot, d);

	for (size_t i = 0; r == 0 && i < ZT_ARRAY_SIZE(fams); i++)
		r = zt_metrics_add(d->metrics, fams[i].name, fams[i].help, fams[i].type,
				   fams[i].labels, fams[i].fn, d, NULL);
	if (r == 0)
		r = zt_metrics_add_histogram(
			d->metrics, "ztagent_response_latency_seconds",
			"From a detector's decision to its block in the XDP map", lat,
			ZT_ARRAY_SIZE(lat), &d->m_resp_latency);
	return r;
}

/* The longest loop callback since the previous scrape: what a slow step (disk, map walk) held it. */
static void m_loop_step_max(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit(s, NULL, (double)zt_loop_take_step_max(D(ctx)->loop) / 1e9);
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
	r = daemon_metrics_detection(d);
	if (r < 0) {
		snprintf(err, errlen, "cannot set up the detection metrics: %s", strerror(-r));
		return r;
	}
	r = zt_feeds_register_metrics(d->feeds, d->metrics);
	if (r < 0) {
		snprintf(err, errlen, "cannot register the feed metrics: %s", strerror(-r));
		return r;
	}
	r = zt_metrics_add(d->metrics, "ztagent_loop_step_max_seconds",
			   "Longest single callback of the daemon's loop since the previous scrape",
			   ZT_METRIC_GAUGE, NULL, m_loop_step_max, d, NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot register the loop metric: %s", strerror(-r));
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
