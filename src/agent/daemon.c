// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/api.h"
#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "records/auditq.h"
#include "guard/blocklist.h"
#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/daemon_int.h"
#include "agent/daemon_reload.h"
#include "agent/daemon_detect.h"
#include "detect/features.h"
#include "guard/datapath.h"
#include "records/db.h"
#include "guard/dropagg.h"
#include "records/dbwriter.h"
#include "guard/events.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/metrics.h"
#include "feeds/feeds.h"
#include "seg/policy.h"
#include "seg/seg.h"
#include "seg/seg_compliance.h"
#include "agent/util.h"
#include "respond/engine.h"
#include "respond/incident_db.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"

void daemon_metrics_blocklist_update(struct zt_daemon *d);

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ztagent [--config FILE] [--check-config | --detach | --migrate-only]\n"
		"\n"
		"The ztagent node agent: loads the XDP guard on the configured uplinks,\n"
		"pins its maps, and serves the ztctl API until SIGTERM. Stopping leaves\n"
		"enforcement in place; a restart takes over the pinned maps without a gap.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check-config  validate the configuration, print the result, exit\n"
		"                      (0 valid, 2 invalid)\n"
		"      --detach        remove ztagent's XDP programs and pinned maps (asks a\n"
		"                      running daemon to do it and exit, if there is one)\n"
		"      --migrate-only  apply the database schema migrations (database.url) and\n"
		"                      create the partitions ahead, then exit (0 done, 1 failed)\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit codes: 0 ok, 1 runtime failure, 2 bad arguments or configuration.\n",
		ZT_DEFAULT_CONFIG);
}

/* ---- status ---- */

static int put_u64s(cbor_item_t *m, const char *const *keys, const uint64_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (zt_cbor_put_u64(m, keys[i], vals[i]))
			return -ENOMEM;
	return 0;
}

static cbor_item_t *status_maps(struct zt_daemon *d)
{
	/* Every map, however many the objects have (a fixed array here once hid the last ones). */
	size_t n = zt_datapath_maps(d->dp, NULL, 0);
	struct zt_dp_map *maps = calloc(n ? n : 1, sizeof(*maps));
	cbor_item_t *arr = maps ? zt_cbor_array() : NULL;
	struct zt_seg_stats ss;

	if (maps)
		n = zt_datapath_maps(d->dp, maps, n);

	zt_seg_get_stats(d->seg, &ss);
	for (size_t i = 0; arr && i < n; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		uint64_t entries = 0;
		cbor_item_t *m;

		if (bpf_obj_get_info_by_fd(maps[i].fd, &info, &len) < 0)
			continue;
		if (!strcmp(maps[i].name, ZT_PIN_BLOCK_V4))
			entries = zt_blocklist_count(d->bl, 0, false);
		else if (!strcmp(maps[i].name, ZT_PIN_BLOCK_V6))
			entries = zt_blocklist_count(d->bl, 1, false);
		else if (!strcmp(maps[i].name, ZT_PIN_BLOCK_LPM_V4))
			entries = zt_blocklist_count(d->bl, 0, true);
		else if (!strcmp(maps[i].name, ZT_PIN_BLOCK_LPM_V6))
			entries = zt_blocklist_count(d->bl, 1, true);
		else if (!strcmp(maps[i].name, ZT_PIN_CONNTRACK))
			entries = ss.conntrack_entries; /* walking 262k keys took ~1 s */
		else if (info.type == BPF_MAP_TYPE_HASH || info.type == BPF_MAP_TYPE_LRU_HASH ||
			 info.type == BPF_MAP_TYPE_LPM_TRIE)
			zt_datapath_map_count(maps[i].fd, info.key_size, &entries);
		else if (info.type != BPF_MAP_TYPE_RINGBUF)
			entries = info.max_entries;
		m = zt_cbor_map();
		if (!m || zt_cbor_put_str(m, "name", maps[i].name) ||
		    zt_cbor_put_u64(m, "id", info.id) || zt_cbor_put_u64(m, "entries", entries) ||
		    zt_cbor_put_u64(m, "max_entries", info.max_entries) || zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			cbor_decref(&arr);
			break;
		}
	}
	free(maps);
	return arr;
}

static cbor_item_t *status_counters(struct zt_daemon *d)
{
	struct zt_counter c[ZT_XDP_STATS_SLOTS];
	cbor_item_t *arr = zt_cbor_array();

	if (!arr || zt_datapath_xdp_stats(d->dp, c) < 0)
		goto fail;
	for (unsigned int i = 0; i < ZT_XDP_STATS_SLOTS; i++) {
		cbor_item_t *m;

		if (!c[i].packets)
			continue;
		m = zt_cbor_map();
		if (!m || zt_cbor_put_str(m, "action", zt_action_name(i / ZT_XR_MAX)) ||
		    zt_cbor_put_str(m, "reason", zt_xdp_reason_name(i % ZT_XR_MAX)) ||
		    zt_cbor_put_u64(m, "packets", c[i].packets) ||
		    zt_cbor_put_u64(m, "bytes", c[i].bytes) || zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			goto fail;
		}
	}
	return arr;
fail:
	if (arr)
		cbor_decref(&arr);
	return NULL;
}

/* status.database and status.audit (with database.url) */
static int status_database(struct zt_daemon *d, cbor_item_t *m)
{
	struct zt_dbw_stats ws;
	struct zt_auditq_stats as;
	cbor_item_t *db, *au;

	if (!d->dbw)
		return 0;
	zt_dbw_get_stats(d->dbw, &ws);
	zt_auditq_get_stats(d->auditq, &as);
	db = zt_cbor_map();
	if (!db)
		return -ENOMEM;
	if (zt_cbor_put_str(db, "url", d->cfg.database.url) ||
	    zt_cbor_put_bool(db, "connected", ws.connected) ||
	    zt_cbor_put_u64(db, "rows_submitted", ws.rows_submitted) ||
	    zt_cbor_put_u64(db, "rows_written", ws.rows_written) ||
	    zt_cbor_put_u64(db, "rows_duplicate", ws.rows_duplicate) ||
	    zt_cbor_put_u64(db, "rows_failed", ws.rows_failed) ||
	    zt_cbor_put_u64(db, "batches", ws.batches) ||
	    zt_cbor_put_u64(db, "queue", ws.queue_len) ||
	    zt_cbor_put_u64(db, "spool_bytes", ws.spool_bytes) ||
	    zt_cbor_put_u64(db, "spool_segments", ws.spool_segments) ||
	    zt_cbor_put_u64(db, "spool_dropped_records", ws.spool_dropped_records) ||
	    zt_cbor_put_u64(db, "reconnects", ws.reconnects) ||
	    zt_cbor_put_str(db, "last_error", ws.last_error) || zt_cbor_put(m, "database", db)) {
		cbor_decref(&db);
		return -ENOMEM;
	}
	au = zt_cbor_map();
	if (!au)
		return -ENOMEM;
	if (zt_cbor_put_u64(au, "posted", as.posted) ||
	    zt_cbor_put_u64(au, "written", as.written) ||
	    zt_cbor_put_u64(au, "pending", as.pending) ||
	    zt_cbor_put_u64(au, "refused", as.refused) ||
	    zt_cbor_put_u64(au, "dropped", as.dropped) ||
	    zt_cbor_put_u64(au, "last_seq", as.last_seq) ||
	    zt_cbor_put_str(au, "last_error", as.last_error) || zt_cbor_put(m, "audit", au)) {
		cbor_decref(&au);
		return -ENOMEM;
	}
	return 0;
}

static int op_status(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
		     size_t errlen)
{
	static const char *const ev_keys[] = { "emitted", "lost", "suppressed", "received" };
	struct zt_daemon *d = ctx;
	struct zt_events_stats es;
	uint64_t evs[ZT_EVS_MAX + 1] = {};
	cbor_item_t *m = zt_cbor_map(), *progs = zt_cbor_array(), *ifs = zt_cbor_array();
	cbor_item_t *maps = NULL, *counters = NULL, *events = zt_cbor_map(), *p = NULL;

	if (!m || !progs || !ifs || !events)
		goto nomem;
	/* tc_guard only when an uplink uses it (it is loaded then). */
	for (int g = 0; g < (d->dp->tcg ? 2 : 1); g++) {
		p = zt_cbor_map();
		if (!p || zt_cbor_put_str(p, "name", g ? "tc_guard" : "xdp_guard") ||
		    zt_cbor_put_u64(p, "id",
				    g ? zt_datapath_tc_guard_prog_id(d->dp) :
					zt_datapath_xdp_prog_id(d->dp)) ||
		    zt_cbor_push(progs, p))
			goto nomem;
		p = NULL;
	}
	for (unsigned int i = 0; i < d->dp->n_ifaces; i++) {
		const struct zt_dp_iface *ifc = &d->dp->ifaces[i];
		uint32_t found = 0;
		bool attached = zt_datapath_guard_on(d->dp, i, &found) == 1;

		p = zt_cbor_map();
		if (!p || zt_cbor_put_str(p, "name", ifc->name) ||
		    zt_cbor_put_u64(p, "ifindex", ifc->ifindex) ||
		    zt_cbor_put_str(p, "mode", zt_xdp_mode_name(ifc->mode)) ||
		    zt_cbor_put_u64(p, "prog_id", found) ||
		    zt_cbor_put_bool(p, "attached", attached) || zt_cbor_push(ifs, p))
			goto nomem;
		p = NULL;
	}
	maps = status_maps(d);
	counters = status_counters(d);
	if (!maps || !counters)
		goto nomem;
	zt_datapath_event_stats(d->dp, evs);
	zt_events_get_stats(d->ev, &es);
	/* event_stats order: emitted, reserve failed (lost), suppressed. */
	evs[ZT_EVS_MAX] = es.received;
	if (put_u64s(events, ev_keys, evs, ZT_ARRAY_SIZE(ev_keys)) ||
	    /* Read 10 ms or more after written; handed to the bookkeeping thread. */
	    zt_cbor_put_u64(events, "read_late", es.late) ||
	    zt_cbor_put_u64(events, "deferred", es.deferred) ||
	    zt_cbor_put_u64(events, "deferred_high", es.deferred_high) ||
	    zt_cbor_put_u64(events, "deferred_full_waits", es.deferred_full_waits) ||
	    /* detection.realtime_priority: under SCHED_FIFO now; paused for a flood. */
	    zt_cbor_put_u64(events, "realtime", es.realtime) ||
	    zt_cbor_put_u64(events, "realtime_pauses", es.realtime_demotions))
		goto nomem;
	if (zt_cbor_put_str(m, "node", d->cfg.node) || zt_cbor_put_str(m, "version", ZT_VERSION) ||
	    zt_cbor_put_u64(m, "pid", getpid()) ||
	    zt_cbor_put_u64(m, "uptime_s", (zt_now_mono_ns() - d->started_mono) / 1000000000ULL) ||
	    zt_cbor_put_str(m, "bpffs", d->cfg.bpffs) || zt_cbor_put(m, "programs", progs))
		goto nomem;
	progs = NULL;
	if (zt_cbor_put(m, "interfaces", ifs))
		goto nomem;
	ifs = NULL;
	if (zt_cbor_put(m, "maps", maps))
		goto nomem;
	maps = NULL;
	if (zt_cbor_put(m, "counters", counters))
		goto nomem;
	counters = NULL;
	if (zt_cbor_put(m, "events", events))
		goto nomem;
	events = NULL;
	{
		struct zt_seg_stats ss;
		cbor_item_t *sg = zt_cbor_map();

		zt_seg_get_stats(d->seg, &ss);
		if (!sg || zt_cbor_put_u64(sg, "generation", ss.gen) ||
		    zt_cbor_put_u64(sg, "policies", ss.policies) ||
		    zt_cbor_put_u64(sg, "endpoints", ss.endpoints) ||
		    zt_cbor_put_u64(sg, "applies", ss.applies) ||
		    zt_cbor_put_u64(sg, "rejects", ss.rejects) ||
		    zt_cbor_put_u64(sg, "flows_allowed", ss.verdicts[0]) ||
		    zt_cbor_put_u64(sg, "flows_denied", ss.verdicts[1]) ||
		    zt_cbor_put_u64(sg, "flows_audit", ss.verdicts[2]) ||
		    zt_cbor_put_u64(sg, "flows_revoked", ss.revoked) ||
		    zt_cbor_put_u64(sg, "last_apply_us", ss.last_apply_ns / 1000) ||
		    zt_cbor_put(m, "segmentation", sg)) {
			if (sg)
				cbor_decref(&sg);
			goto nomem;
		}
	}
	if (status_database(d, m) < 0)
		goto nomem;
	*data = m;
	return 0;
nomem:
	for (cbor_item_t **it = (cbor_item_t *[]){ m, progs, ifs, maps, counters, events, p },
			 **end = it + 7;
	     it < end; it++)
		if (*it)
			cbor_decref(it);
	snprintf(err, errlen, "out of memory building the status");
	return -ENOMEM;
}

static void on_quit_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;

	zt_loop_quit(d->loop);
}

static int op_detach(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
		     size_t errlen)
{
	struct zt_daemon *d = ctx;
	int r;

	if (d->detach_requested)
		return 0;
	/* Quit shortly, after this reply went out. */
	r = zt_loop_add_timer(d->loop, 50 * 1000000ULL, on_quit_timer, d);
	if (r < 0) {
		snprintf(err, errlen, "cannot schedule the detach: %s", strerror(-r));
		return r;
	}
	d->detach_requested = true;
	log_info("detach_requested", "via=api");
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "bpffs", d->cfg.bpffs))
		return -ENOMEM;
	return 0;
}

/* ---- loop callbacks ---- */

static void on_signal(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal", "signo=%u action=stop enforcement=kept", si.ssi_signo);
			zt_loop_quit(d->loop);
		} else if (si.ssi_signo == SIGHUP) {
			daemon_reload(d); /* daemon_reload.c */
		}
	}
}

static void on_expiry_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;
	uint64_t ticks, t0, c0;
	size_t n;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	t0 = zt_now_mono_ns();
	c0 = zt_thread_cpu_ns();
	n = zt_blocklist_expire(d->bl, zt_now_boot_ns());
	/* ms: how long the slice held the loop; cpu_ms: what it cost, preemption apart. */
	if (n)
		log_info("blocklist_swept", "expired=%zu ms=%.1f cpu_ms=%.1f more=%d", n,
			 (double)(zt_now_mono_ns() - t0) / 1e6,
			 (double)(zt_thread_cpu_ns() - c0) / 1e6,
			 zt_blocklist_expire_pending(d->bl));
	daemon_metrics_blocklist_update(d);
	if (zt_blocklist_expire_pending(d->bl)) {
		/* More than one batch expired: the next batch in 1 ms, after what waits in the loop. */
		uint64_t iv = d->cfg.xdp.expiry_interval_ns;
		struct itimerspec its = {
			.it_interval = { .tv_sec = (time_t)(iv / 1000000000ULL),
					 .tv_nsec = (long)(iv % 1000000000ULL) },
			.it_value = { .tv_nsec = 1000000 },
		};

		timerfd_settime(fd, 0, &its, NULL);
	}
}

static int setup_signals(struct zt_daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Before any thread starts, so they all inherit the mask. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	return zt_loop_add(d->loop, d->sigfd, EPOLLIN, on_signal, d);
}

/* ---- --detach ---- */

/* Asks a running daemon to detach; -ECONNREFUSED/-ENOENT when none answers. */
static int detach_via_api(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	cbor_item_t *req = NULL, *rep = NULL;
	char err[256];
	bool ok = false;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	req = zt_cbor_map();
	if (!req || zt_cbor_put_str(req, "op", ZT_OP_DETACH)) {
		r = -ENOMEM;
		goto out;
	}
	r = zt_msg_send(fd, req);
	if (r == 0)
		r = zt_msg_recv(fd, &rep, err, sizeof(err));
	if (r == 0 && (zt_cbor_get_bool(rep, "ok", &ok) < 0 || !ok))
		r = -EPROTO;
	if (r == 0) {
		char buf[1];
		/* The daemon closes the socket when it has exited its loop. */
		struct timeval tv = { .tv_sec = 10 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
out:
	if (req)
		cbor_decref(&req);
	if (rep)
		cbor_decref(&rep);
	close(fd);
	return r;
}

static int do_detach(const struct zt_config *cfg)
{
	char err[512] = "";
	int r = detach_via_api(cfg->api_socket);

	if (r == 0) {
		/* The daemon detached and removed its pins on its way out. */
		for (int i = 0; i < 100 && access(cfg->bpffs, F_OK) == 0; i++)
			usleep(50000);
		printf("ztagent: the running daemon detached its programs, removed %s and exited\n",
		       cfg->bpffs);
		return 0;
	}
	r = zt_seg_detach_all(cfg, err, sizeof(err));
	if (r == 0)
		r = zt_datapath_detach(cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztagent: detach: %s\n", err);
		return 1;
	}
	printf("ztagent: detached from %u interface(s) and removed the pins under %s\n",
	       cfg->xdp.n_interfaces, cfg->bpffs);
	return 0;
}

/* ---- database: flow records and the audit trail ---- */

static void audit_post(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct zt_daemon *d = ctx;

	if (d->auditq)
		zt_auditq_post(d->auditq, kind, d->actor, subject, detail);
}

/*
 * A pod's connection to a feed-listed destination: an incident of threat
 * ioc per (pod, IOC) whose counts grow with every hit; its audit events and
 * alerts row are the incident's. Without the engine: an audit event (with
 * its alerts row, kind ioc) once a minute per pod, IOC and feed.
 */
static void feed_incident(void *ctx, const struct zt_feeds_incident *inc)
{
	struct zt_daemon *d = ctx;
	char subject[512];

	if (d->engine && inc->src_addr && inc->dst_addr) {
		struct zt_decision dc;

		zt_decision_init(&dc, ZT_THREAT_IOC, ZT_ROLE_SOURCE, inc->family, inc->src_addr,
				 zt_now_boot_ns());
		memcpy(dc.peer, inc->dst_addr, 16);
		dc.has_peer = true;
		dc.proto = inc->proto_nr;
		dc.dport = inc->dport;
		dc.score = 1.0f;
		dc.flows = 1;
		dc.latest_start_ns = dc.ts_ns;
		snprintf(dc.subtype, sizeof(dc.subtype), "%s", inc->feed);
		snprintf(dc.workload, sizeof(dc.workload), "%s", inc->pod);
		snprintf(dc.evidence, sizeof(dc.evidence),
			 "%s %s:%u -> %s:%u matched %s on feed %s (reference: %s); %s",
			 inc->protocol, inc->src, inc->sport, inc->dst, inc->dport, inc->ioc,
			 inc->feed, inc->reference[0] ? inc->reference : "none",
			 inc->dropped ? "dropped" : "allowed (the feed only alerts)");
		zt_engine_on_ioc(d->engine, &dc, inc->dropped);
		return;
	}
	if (inc->repeat)
		return;
	snprintf(subject, sizeof(subject), "%s -> %s (%s)", inc->pod, inc->ioc, inc->feed);
	audit_post(ctx, "ioc.hit", subject, inc->detail_json);
}

static void feed_name_endpoint(void *ctx, uint32_t ep_id, char *buf, size_t n)
{
	zt_seg_endpoint_name(((struct zt_daemon *)ctx)->seg, ep_id, buf, n);
}

/* Advisories (feeds of format policy) through the policy parser, validated like files. */
static int feed_policy_parse(void *ctx, const char *name, const char *buf, size_t len, void **set,
			     size_t *n_policies, char *err, size_t errlen)
{
	struct zt_policy_set *s = NULL;
	int r = zt_policy_parse_buf(buf, len, name, &s, err, errlen);

	if (r < 0)
		return r;
	*set = s;
	*n_policies = s->n;
	return 0;
}

static void feed_policy_free(void *ctx, void *set)
{
	zt_policy_set_free(set);
}

static int feed_policy_apply(void *ctx, const char *feed, void **sets, size_t n, const char *sha256,
			     char *err, size_t errlen)
{
	return zt_seg_set_feed_policies(((struct zt_daemon *)ctx)->seg, feed,
					(struct zt_policy_set **)sets, n, sha256, err, errlen);
}

static int feeds_start(struct zt_daemon *d, char *err, size_t errlen)
{
	struct zt_feeds_opts o = {
		.cfg = &d->cfg,
		.loop = d->loop,
		.dp = d->dp,
		.bl = d->bl,
		.hooks = {
			.audit = audit_post,
			.audit_ctx = d,
			.incident = feed_incident,
			.incident_ctx = d,
			.name_endpoint = feed_name_endpoint,
			.name_ctx = d,
			.policy_parse = feed_policy_parse,
			.policy_free = feed_policy_free,
			.policy_apply = feed_policy_apply,
			.policy_ctx = d,
		},
	};

	return zt_feeds_init(&d->feeds, &o, err, errlen);
}

static void flow_after(struct zt_daemon *d, const struct zt_flow_record *recs, size_t n);

/*
 * The conntrack sweep's records and the XDP drop rows, on the loop: scored
 * in place, then detection (its state is the loop's).
 */
static void flow_prep(void *ctx, struct zt_flow_record *recs, size_t n)
{
	struct zt_daemon *d = ctx;
	struct zt_flow_record *scored = daemon_detect_score(d, recs, n);

	if (scored)
		memcpy(recs, scored, n * sizeof(*recs));
	free(scored);
	flow_after(d, recs, n);
}

/*
 * ... and on the exporter's and the drop aggregator's workers: the spool's
 * fsyncs and the queue, off the loop.
 */
static void flow_durable(void *ctx, const struct zt_flow_record *recs, size_t n)
{
	struct zt_daemon *d = ctx;

	if (d->dbw && n)
		zt_dbw_submit_durable(d->dbw, recs, n);
}

static void flow_after(struct zt_daemon *d, const struct zt_flow_record *recs, size_t n)
{
	/* Then detection: exfiltration baselines and the counts of open incidents. */
	if (d->engine && n)
		zt_engine_on_flows(d->engine, recs, n);
	/* detection.feature_log: rows for tools/train. One warning per failing streak. */
	if (d->featlog && n) {
		int r = zt_featlog_write(d->featlog, recs, n);

		if (r < 0 && !d->featlog_failed)
			log_warn("feature_log_failed", "path=\"%s\" error=\"%s\"",
				 d->cfg.detection.feature_log, strerror(-r));
		d->featlog_failed = r < 0;
	}
}

/* XDP drop events (events.c checked their length): logged (rate-limited), aggregated into rows. */
static void on_xdp_drop(void *ctx, const void *rec, size_t len)
{
	struct zt_daemon *d = ctx;

	zt_events_log_xdp_drop(ctx, rec, len);
	if (d->dropagg)
		zt_dropagg_add(d->dropagg, rec);
	if (d->engine)
		zt_engine_on_xdp_drop(d->engine, rec);
}

/* ---- detection and response (src/respond/engine.h) ---- */

/* The never-block check asks the XDP allowlist itself: the map is the truth. */
static int eng_allowlisted(void *ctx, uint8_t family, const uint8_t *addr)
{
	struct zt_daemon *d = ctx;
	struct zt_ip6_key k6 = { .prefixlen = family == 6 ? 128 : 32 };
	struct zt_allow_entry v;
	int fd = d->allow_fd[family == 6];

	if (fd < 0)
		return 0;
	memcpy(k6.addr, addr, family == 6 ? 16 : 4);
	/* zt_ip4_key is zt_ip6_key's first 8 bytes: prefix length, then the address. */
	return bpf_map_lookup_elem(fd, &k6, &v) == 0;
}

/*
 * Whether an address is one of this node's endpoints: its ipcache entry in
 * the published slot names an endpoint (remote pods have ep_id 0). The
 * kernel's maps are the truth and any thread may read them.
 */
static int eng_endpoint(void *ctx, uint8_t family, const uint8_t *addr)
{
	struct zt_daemon *d = ctx;
	struct tc_endpoint *tc = d->dp->tc;
	struct zt_ipcache_val v;
	struct zt_pol_state st;
	uint32_t zero = 0;
	int r;

	if (bpf_map_lookup_elem(bpf_map__fd(tc->maps.pol_state), &zero, &st) < 0 || !st.gen)
		return 0;
	if (family == 6) {
		struct zt_ipcache_key6 k = { .prefixlen = 8 + 128, .slot = st.gen & 1 };

		memcpy(k.addr, addr, 16);
		r = bpf_map_lookup_elem(bpf_map__fd(tc->maps.ipcache_v6), &k, &v);
	} else {
		struct zt_ipcache_key4 k = { .prefixlen = 8 + 32, .slot = st.gen & 1 };

		memcpy(k.addr, addr, 4);
		r = bpf_map_lookup_elem(bpf_map__fd(tc->maps.ipcache_v4), &k, &v);
	}
	return r == 0 && v.ep_id != 0;
}

/* A detector's block, on the thread that decided it (the blocklist has a lock of its own). */
static int eng_write_block(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	struct zt_daemon *d = ctx;
	struct zt_cidr c = { .family = a->family == 6 ? AF_INET6 : AF_INET,
			     .prefixlen = a->family == 6 ? 128 : 32 };
	struct zt_block_req req = {
		.ttl_ns = a->ttl_ns,
		.reason = a->reason,
		.source = ZT_BS_DETECTOR,
		.note = a->note,
	};
	bool replaced = false;

	memcpy(c.addr, a->addr, a->family == 6 ? 16 : 4);
	return zt_blocklist_add(d->bl, &c, &req, &replaced, err, errlen);
}

static void eng_latency(void *ctx, double seconds)
{
	struct zt_daemon *d = ctx;

	if (d->m_resp_latency)
		zt_metric_observe(d->m_resp_latency, seconds);
}

static bool eng_ifname(void *ctx, uint32_t ifindex, char *buf, size_t n)
{
	zt_ifname(ifindex, buf, n);
	return true;
}

static void on_violation(void *ctx, const struct zt_seg_violation *v)
{
	struct zt_daemon *d = ctx;

	zt_engine_on_violation(d->engine, v);
}

/* The sweep timer's tick: a sweep the engine asks for comes at most this late. */
#define SWEEP_TICK_NS (100 * 1000000ULL)

static void on_sweep_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;
	uint64_t ticks, due, now_boot;
	int r;

	uint64_t t0 = zt_now_mono_ns(), dt;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	/*
	 * A walk of a large conntrack table (250k entries: ~50 MB copied) is
	 * not free: the next one waits until this one is at most 5% of the
	 * time since, so the idle daemon's cost stays bounded whatever the
	 * table holds (detections then come a few sweeps later, not never).
	 */
	if (t0 < d->sweep_next_ns)
		return;
	/*
	 * Every detection.sweep_interval, and sooner when the last sweep said
	 * when the next could decide (young slow connections coming of age:
	 * zt_engine_sweep_due).
	 */
	due = zt_engine_sweep_due(d->engine);
	now_boot = zt_now_boot_ns();
	if (t0 < d->sweep_regular_ns && !(due && now_boot >= due))
		return;
	r = zt_engine_ct_sweep(d->engine, bpf_map__fd(d->dp->tc->maps.conntrack), now_boot);
	if (r < 0)
		log_warn("detection_sweep_failed", "error=\"%s\"", strerror(-r));
	dt = zt_now_mono_ns() - t0;
	d->sweep_next_ns = t0 + 20 * dt;
	/* An early sweep leaves the interval's cadence as it was. */
	if (t0 >= d->sweep_regular_ns) {
		d->sweep_regular_ns += d->cfg.detection.sweep_interval_ns;
		if (d->sweep_regular_ns <= t0)
			d->sweep_regular_ns = t0 + d->cfg.detection.sweep_interval_ns;
	}
}

/* The never-block lists into the scan brake's exemptions (the engine's start and refreshes). */
static void eng_never_cidrs(void *ctx, const struct zt_cidr *v, size_t n)
{
	struct zt_daemon *d = ctx;
	int r = zt_datapath_set_scan_exempt(d->dp, v, n);

	if (r < 0)
		log_warn(
			"scan_exempt_failed",
			"error=\"%s\" entries=%zu effect=\"the scan brake may drop first contacts of a source on a never-block list\"",
			strerror(-r), n);
	else if (n != d->scan_exempt_n)
		log_info("scan_exempt", "entries=%zu", n);
	d->scan_exempt_n = n;
}

static void on_engine_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	zt_engine_tick(d->engine, zt_now_boot_ns());
}

static int detection_start(struct zt_daemon *d, char *err, size_t errlen)
{
	struct zt_engine_hooks h = {
		.ctx = d,
		.post = audit_post,
		.allowlisted = eng_allowlisted,
		.endpoint = eng_endpoint,
		.ifname = eng_ifname,
		.write_block = eng_write_block,
		.observe_latency = eng_latency,
		.incident = daemon_detect_on_incident,
		/* On the events' consumer: its bookkeeping thread; elsewhere now. */
		.later = zt_events_later,
		.never_cidrs = eng_never_cidrs,
	};
	uint32_t brake = 0;
	int r;

	d->allow_fd[0] = bpf_map__fd(d->dp->xdp->maps.allowlist_v4);
	d->allow_fd[1] = bpf_map__fd(d->dp->xdp->maps.allowlist_v6);
	r = zt_engine_new(&d->cfg, &h, &d->engine, err, errlen);
	if (r == 0)
		r = zt_engine_start(d->engine, err, errlen);
	if (r < 0)
		return r;
	/* The scan brake holds a scan until its block: only while scans are blocked. */
	if (d->cfg.response.mode == ZT_RESPONSE_BLOCK &&
	    d->cfg.response.detectors[ZT_DET_SCAN] == ZT_RESPONSE_BLOCK)
		brake = d->cfg.detection.scan.brake;
	r = zt_datapath_set_scan_brake(d->dp, brake);
	if (r < 0) {
		snprintf(err, errlen, "cannot write the scan brake into the guard_cfg map: %s",
			 strerror(-r));
		return r;
	}
	zt_seg_set_violation_sink(d->seg, on_violation, d);
	d->sweep_regular_ns = zt_now_mono_ns() + d->cfg.detection.sweep_interval_ns;
	if ((r = zt_loop_add_timer(d->loop,
				   d->cfg.detection.sweep_interval_ns < SWEEP_TICK_NS ?
					   d->cfg.detection.sweep_interval_ns :
					   SWEEP_TICK_NS,
				   on_sweep_timer, d)) < 0 ||
	    (r = zt_loop_add_timer(d->loop, 1000000000ULL, on_engine_timer, d)) < 0) {
		snprintf(err, errlen, "cannot create the detection timers: %s", strerror(-r));
		return r;
	}
	log_info("detection_on",
		 "mode=%s scan=%s flood=%s bruteforce=%s slowconn=%s exfiltration=%s model=%s "
		 "block_ttl_s=%llu protected=%u scan_brake=%u forensics=%s",
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.mode],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[0]],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[1]],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[2]],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[3]],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[4]],
		 (const char *[]){ "off", "alert", "block" }[d->cfg.response.detectors[5]],
		 (unsigned long long)(d->cfg.response.block_ttl_ns / 1000000000ULL),
		 d->cfg.detection.n_protected, brake, d->cfg.forensics.dir);
	return 0;
}

static void on_dropagg_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_daemon *d = ctx;

	/* The rows are scored here; their spool write and fsync are on the aggregator's worker. */
	zt_dropagg_flush_bg(d->dropagg, zt_now_boot_ns(), false);
}

/* The configuration in force, by its content hash: one audit row per start. */
static void audit_config(struct zt_daemon *d)
{
	char hex[65] = "", detail[512], esc[4200];
	size_t len = 0;
	char *text = NULL;
	FILE *f = fopen(d->config_path, "re");

	if (f) {
		text = malloc(1 << 20);
		if (text)
			len = fread(text, 1, 1 << 20, f);
		fclose(f);
	}
	if (text)
		zt_sha256_hex(text, len, hex);
	free(text);
	zt_json_escape(d->config_path, esc, sizeof(esc));
	snprintf(detail, sizeof(detail),
		 "{\"sha256\":\"%s\",\"node\":\"%s\",\"version\":\"%s\",\"policy_default\":\"%s\"}",
		 hex, d->cfg.node, ZT_VERSION, d->cfg.policy.default_deny ? "deny" : "allow");
	audit_post(d, "config.load", esc, detail);
}

static int database_start(struct zt_daemon *d, char *err, size_t errlen)
{
	char dir[4200];
	int r;

	if (!d->cfg.database.url[0]) {
		log_info("database_off",
			 "why=\"database.url is empty\" flows=not-recorded audit=log-only");
		return 0;
	}
	d->dbw = zt_dbw_new(&d->cfg, err, errlen);
	if (!d->dbw)
		return -EINVAL;
	r = zt_dropagg_new(0, 0, d->cfg.node, &d->dropagg);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	r = zt_dropagg_start_worker(d->dropagg, flow_prep, d, flow_durable, d);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the drop aggregation thread: %s", strerror(-r));
		return r;
	}
	snprintf(dir, sizeof(dir), "%s/audit", d->cfg.state_dir);
	{
		/* Incidents and the capture index are written with their audit events. */
		const struct zt_auditq_side side = { "incidents", zt_incident_db_side,
						     d->cfg.node };

		r = zt_auditq_open_ex(d->cfg.database.url, dir, d->cfg.node, 64u << 20, &side, 1,
				      &d->auditq, err, errlen);
	}
	if (r < 0)
		return r;
	log_info("database_on", "spool_dir=%s spool_max_bytes=%llu audit_journal=%s",
		 d->cfg.database.spool_dir, (unsigned long long)d->cfg.database.spool_max_bytes,
		 dir);
	return 0;
}

/* `ztagent --migrate-only`: the schema migrations and partitions, then exit. */
static int do_migrate(const struct zt_config *cfg)
{
	char err[1024];
	int applied = 0, created = 0, dropped = 0;
	PGconn *c = NULL;

	if (!cfg->database.url[0]) {
		fprintf(stderr,
			"ztagent: --migrate-only needs database.url in the configuration\n");
		return 2;
	}
	if (zt_db_connect(cfg->database.url, &c, err, sizeof(err))) {
		fprintf(stderr, "ztagent: database.url: cannot connect: %s\n", err);
		return 1;
	}
	if (zt_db_migrate_conn(c, NULL, &applied, err, sizeof(err))) {
		fprintf(stderr, "ztagent: migration failed, nothing applied: %s\n", err);
		PQfinish(c);
		return 1;
	}
	if (zt_db_maintain(c, cfg->database.retention_months, 2, &created, &dropped, err,
			   sizeof(err))) {
		fprintf(stderr, "ztagent: partition maintenance failed: %s\n", err);
		PQfinish(c);
		return 1;
	}
	PQfinish(c);
	printf("database: %d migration(s) applied now, schema at version %d; partitions: %d created, %d dropped (retention %u months)\n",
	       applied, zt_db_migrations[zt_db_n_migrations - 1].version, created, dropped,
	       cfg->database.retention_months);
	return 0;
}

/* ---- start / stop ---- */

static void daemon_stop(struct zt_daemon *d)
{
	char err[512] = "";

	zt_api_stop(d->api);
	daemon_drift_stop(d);
	daemon_nodes_stop(d);
	zt_metrics_server_stop(d->msrv);
	/* mTLS first: its relay thread reads the peers the Node watch learned. */
	daemon_mtls_stop(d);
	daemon_k8s_stop(d);
	zt_events_stop(d->ev);
	zt_feeds_stop(d->feeds);
	zt_seg_stop(d->seg);
	/* Open incidents close ("agent-stopped") into the journal before it closes. */
	zt_engine_free(d->engine);
	d->engine = NULL;
	/* The last interval's drop rows, and every row handed over before, are in the writer. */
	if (d->dropagg && d->dbw) {
		zt_dropagg_flush_bg(d->dropagg, zt_now_boot_ns(), true);
		zt_dropagg_drain(d->dropagg);
	}
	daemon_detect_stop(d);
	/* Producers are stopped: what is queued goes to the database or the spool. */
	zt_dbw_stop(d->dbw);
	zt_featlog_close(d->featlog);
	zt_auditq_close(d->auditq);
	zt_dropagg_free(d->dropagg);
	zt_metrics_free(d->metrics);
	zt_blocklist_stop(d->bl);
	zt_datapath_stop(d->dp);
	if (d->sigfd >= 0)
		close(d->sigfd);
	zt_loop_stop(d->loop);
	if (d->detach_requested) {
		if (zt_seg_detach_all(&d->cfg, err, sizeof(err)) < 0 ||
		    zt_datapath_detach(&d->cfg, err, sizeof(err)) < 0)
			log_error("detach_failed", "error=\"%s\"", err);
	}
}

static int daemon_start(struct zt_daemon *d)
{
	char err[1024] = "", q[1100];
	int r;

	d->started_mono = zt_now_mono_ns();
	r = zt_loop_init(&d->loop);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot create the event loop: %s", strerror(-r));
		goto fail;
	}
	r = setup_signals(d);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot set up signal handling: %s", strerror(-r));
		goto fail;
	}
	r = zt_datapath_init(&d->dp, &d->cfg, err, sizeof(err));
	if (r < 0)
		goto fail;
	r = zt_blocklist_init(&d->bl, d->dp, err, sizeof(err));
	if (r < 0)
		goto fail;
	r = database_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	zt_blocklist_set_audit(d->bl, audit_post, d);
	r = zt_events_init(&d->ev, bpf_map__fd(d->dp->xdp->maps.events));
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot open the events ring buffer: %s", strerror(-r));
		goto fail;
	}
	/* Its handlers take the forensics and engine locks: off the detectors' thread. */
	r = zt_events_on_deferred(d->ev, ZT_EV_XDP_DROP, on_xdp_drop, d);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot register the XDP drop handler: %s",
			 strerror(-r));
		goto fail;
	}
	r = zt_seg_init(&d->seg, &d->cfg, d->loop, d->dp, err, sizeof(err));
	if (r < 0)
		goto fail;
	zt_seg_register_events(d->seg, d->ev);
	zt_seg_set_audit(d->seg, audit_post, d);
	if (d->cfg.detection.feature_log[0]) {
		r = zt_featlog_open(d->cfg.detection.feature_log, &d->featlog, err, sizeof(err));
		if (r < 0)
			goto fail;
	}
	/* Always a sink: detection reads the records even without a database. */
	zt_seg_set_flow_sink(d->seg, flow_durable, d);
	r = zt_seg_flow_worker(d->seg, flow_prep, d);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot start the flow export thread: %s", strerror(-r));
		goto fail;
	}
	r = detection_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	r = feeds_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	zt_feeds_register_events(d->feeds, d->ev);
	r = daemon_k8s_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	r = daemon_metrics_start(d, err, sizeof(err));
	if (r == 0)
		r = daemon_detect_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	zt_events_set_realtime(d->ev, (int)d->cfg.detection.realtime_priority);
	r = zt_events_start(d->ev);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot start the event consumer: %s", strerror(-r));
		goto fail;
	}
	r = zt_api_init(&d->api, d->loop, d->cfg.api_socket, err, sizeof(err));
	if (r < 0)
		goto fail;
	if ((r = zt_api_register(d->api, ZT_OP_STATUS, op_status, d)) < 0 ||
	    (r = zt_api_register(d->api, ZT_OP_DETACH, op_detach, d)) < 0 ||
	    (r = zt_blocklist_register_api(d->bl, d->api)) < 0 ||
	    (r = zt_seg_register_api(d->seg, d->api)) < 0 ||
	    (r = zt_engine_register_api(d->engine, d->api)) < 0 ||
	    (r = zt_seg_register_compliance_api(d->seg, d->api)) < 0 ||
	    (r = zt_feeds_register_api(d->feeds, d->api)) < 0) {
		snprintf(err, sizeof(err), "cannot register API operations: %s", strerror(-r));
		goto fail;
	}
	if ((r = daemon_mtls_start(d)) < 0 || (r = daemon_mtls_register(d)) < 0)
		goto fail;
	r = zt_loop_add_timer(d->loop, d->cfg.xdp.expiry_interval_ns, on_expiry_timer, d);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot create the expiry timer: %s", strerror(-r));
		goto fail;
	}
	if (d->dropagg) {
		r = zt_loop_add_timer(d->loop, 1000000000ULL, on_dropagg_timer, d);
		if (r < 0) {
			snprintf(err, sizeof(err), "cannot create the drop aggregation timer: %s",
				 strerror(-r));
			goto fail;
		}
	}
	r = daemon_drift_start(d, err, sizeof(err));
	if (r == 0)
		r = daemon_nodes_start(d, err, sizeof(err));
	if (r < 0)
		goto fail;
	audit_config(d);
	/* Entries that expired while no agent ran go now. */
	zt_blocklist_expire(d->bl, zt_now_boot_ns());
	log_info("started",
		 "node=%s version=%s pid=%d interfaces=%u blocked_v4=%zu blocked_v6=%zu api=%s",
		 d->cfg.node, ZT_VERSION, getpid(), d->dp->n_ifaces,
		 zt_blocklist_count(d->bl, 0, false) + zt_blocklist_count(d->bl, 0, true),
		 zt_blocklist_count(d->bl, 1, false) + zt_blocklist_count(d->bl, 1, true),
		 d->cfg.api_socket);
	return 0;
fail:
	log_error("start_failed", "error=%s", zt_log_quote(q, sizeof(q), err));
	return r < 0 ? r : -EINVAL;
}

int zt_daemon_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "detach", no_argument, NULL, 'd' },
		{ "migrate-only", no_argument, NULL, 'm' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct zt_daemon *d;
	const char *config = ZT_DEFAULT_CONFIG;
	bool check = false, detach = false, migrate = false;
	char err[1024];
	int c, r;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'd':
			detach = true;
			break;
		case 'm':
			migrate = true;
			break;
		case 'V':
			printf("ztagent %s\n", ZT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ztagent: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check + detach + migrate > 1) {
		fprintf(stderr,
			"ztagent: --check-config, --detach and --migrate-only exclude each other\n");
		return 2;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->sigfd = -1;
	d->allow_fd[0] = d->allow_fd[1] = -1;
	r = zt_config_load(config, &d->cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztagent: invalid configuration: %s\n", err);
		free(d);
		return 2;
	}
	if (check) {
		printf("%s: configuration is valid\n", config);
		free(d);
		return 0;
	}
	zt_log_set_level(d->cfg.log_level);
	snprintf(d->config_path, sizeof(d->config_path), "%s", config);
	snprintf(d->actor, sizeof(d->actor), "ztagent@%s", d->cfg.node);
	if (migrate) {
		r = do_migrate(&d->cfg);
		free(d);
		return r;
	}
	if (detach) {
		r = do_detach(&d->cfg);
		free(d);
		return r;
	}
	r = daemon_start(d);
	if (r == 0) {
		r = zt_loop_run(d->loop);
		if (r < 0)
			log_error("loop_failed", "error=\"%s\"", strerror(-r));
	}
	daemon_stop(d);
	log_info("stopped", "detached=%d enforcement=%s", d->detach_requested,
		 d->detach_requested ? "removed" : "kept");
	free(d);
	return r < 0 ? 1 : 0;
}
