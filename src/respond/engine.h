/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The detection and response engine: what turns the daemon's records and
 * events into detector inputs, detector decisions into actions (blocks,
 * incidents, alerts, captures, audit events), and serves them to ztctl.
 *
 *   conntrack sweep ──► connections ─► slowconn ─┐
 *                   ├─► ended sessions ─► bruteforce ├─► decision ─► respond (mode, TTL,
 *                   └─► first contacts ─► trw (scan) │               never-block lists)
 *   flow records ─────► bytes to the world ─► exfil ┤       ├─► actions: XDP blocklist
 *   kernel events ────► probes / rates / packets ───┘       ├─► incidents ─► audit trail,
 *   (Part K: zt_engine_on_probe, _on_rate, _on_packets;     │   incidents + alerts rows
 *    _on_session: a session's end, to bruteforce at once)   │
 *   model (Part M) ───► zt_engine_decide ───────────────────┘─► forensics (pcapng.gz)
 *   XDP drop events ──► incident counts, captures
 *   policy violations ► denial aggregation ─► alerts (one per key and window)
 *
 * Threads: every entry point takes the engine's lock, so any thread may
 * call it; a block is written right after the lock, on the thread that
 * decided it (actions.h). The conntrack sweep and the tick run on the loop
 * and hold the lock in short pieces (about 0.5 ms; the map reads, the
 * sweep's own tables, audit posts and capture ends outside it); the kernel
 * signals (_on_probe, _on_rate, _on_packets, _on_session) take it ahead
 * of them.
 */
#ifndef ZT_ENGINE_H
#define ZT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/api.h"
#include "agent/config.h"
#include "agent/loop.h"
#include "detect/detect.h"
#include "detect/flood.h"
#include "detect/trw.h"
#include "records/flowrec.h"
#include "respond/actions.h"
#include "seg/seg.h"
#include "ztagent.h"

struct zt_incident;

struct zt_engine_hooks {
	void *ctx;
	/* An audit event (incidents, blocks, captures, aggregated denials). */
	void (*post)(void *ctx, const char *kind, const char *subject, const char *detail_json);
	/* Whether an address is on the XDP allowlist: 1 yes, 0 no. */
	int (*allowlisted)(void *ctx, uint8_t family, const uint8_t *addr);
	/* Optional: whether an address is one of this node's endpoints: 1 yes, 0 no. Any thread. */
	int (*endpoint)(void *ctx, uint8_t family, const uint8_t *addr);
	/* An interface's name for captures (false: unknown). */
	bool (*ifname)(void *ctx, uint32_t ifindex, char *buf, size_t n);
	/* "namespace/name" of an identity (and endpoint id), as flow records name workloads. */
	void (*workload)(void *ctx, uint32_t identity, uint32_t ep_id, char *buf, size_t n);
	/* Writes a block into the XDP maps: from any thread (the one that decided it). */
	zt_block_write_fn write_block;
	/* Decision-to-map-write latency of each block, in seconds (a histogram). */
	void (*observe_latency)(void *ctx, double seconds);
	/*
	 * An incident opened (open true, after its block) or closed: the
	 * kernel's capture (watch map) and SYN protection follow it. Under
	 * the engine's lock: no engine call from here.
	 */
	void (*incident)(void *ctx, const struct zt_incident *i, bool open);
	/*
	 * Optional: runs fn(arg, data, len) later, on another thread, or now.
	 * A new incident's capture (file I/O under the forensics lock) and
	 * first post go through it, after its block: the thread that decided
	 * (the ring-buffer consumer) goes on to the next record at once.
	 */
	void (*later)(void (*fn)(void *arg, const void *data, size_t len), void *arg,
		      const void *data, size_t len);
	/*
	 * Optional: the never-block lists that are CIDRs (zt_respond_never_cidrs),
	 * at the start and whenever the node's addresses are read again, for
	 * the kernel's scan brake. Outside the engine's lock.
	 */
	void (*never_cidrs)(void *ctx, const struct zt_cidr *v, size_t n);
};

struct zt_engine;

struct zt_engine_stats {
	uint64_t decisions[ZT_THREAT_MAX]; /* by threat type */
	uint64_t blocks[ZT_THREAT_MAX]; /* blocks written */
	uint64_t block_failures;
	uint64_t refused; /* never-block refusals, all lists */
	uint64_t refused_by[6]; /* protected, special-purpose, node, gateway, allowlist, other */
	uint64_t incidents_open[ZT_THREAT_MAX];
	uint64_t incidents_opened[ZT_THREAT_MAX];
	uint64_t sweeps, sweep_entries, probes, sessions, records;
	uint64_t sessions_repeated; /* a session's end tc_endpoint sent twice, judged once */
	uint64_t ssh_refused; /* SSH guesses refused, reported as they were (ZT_EV_REFUSED) */
	/* Logins refused in the clear, counted as a session's run of them grew (ZT_EV_REFUSED) */
	uint64_t clear_refused;
	uint64_t scan_sources, scan_evicted; /* the scan detector's walks, its tables' evictions */
	uint64_t denials, denial_alerts, denial_updates, denials_folded;
	uint64_t capture_packets, capture_sampled_out, capture_files, capture_bytes,
		capture_removed;
	double last_sweep_ms;
	/* The last sweep's lock holds: how many, the longest; the last tick's longest. */
	uint64_t last_sweep_holds;
	double last_sweep_hold_max_ms, last_tick_hold_max_ms;
};

/* The detectors, response and forensics from the configuration. err says what failed. */
int zt_engine_new(const struct zt_config *cfg, const struct zt_engine_hooks *hooks,
		  struct zt_engine **out, char *err, size_t errlen);
/* On the loop's thread: blocks are written (by any thread) from now on. */
int zt_engine_start(struct zt_engine *e, char *err, size_t errlen);
/* Closes incidents (posted) and captures; NULL is fine. */
void zt_engine_free(struct zt_engine *e);

/* ---- inputs ---- */

/* Flow records as the exporter makes them (before or after the database has them). */
void zt_engine_on_flows(struct zt_engine *e, const struct zt_flow_record *recs, size_t n);
/* One walk over tc_endpoint's conntrack map (the loop's timer, detection.sweep_interval). */
int zt_engine_ct_sweep(struct zt_engine *e, int ct_fd, uint64_t now_boot_ns);
/*
 * When the last sweep says the next could decide sooner than its interval
 * (boot clock; 0: not before the interval): young slow connections coming
 * of age (zt_slowconn_next_due). The sweep's thread only.
 */
uint64_t zt_engine_sweep_due(const struct zt_engine *e);
/* A sampled XDP drop (events.c checked its length). */
void zt_engine_on_xdp_drop(struct zt_engine *e, const struct zt_ev_xdp_drop *ev);
/* A policy violation (seg's violation sink). */
void zt_engine_on_violation(struct zt_engine *e, const struct zt_seg_violation *v);
/*
 * A pod's connection to a threat-feed-listed destination (src/feeds, any
 * thread): d is of threat ZT_THREAT_IOC, its subject the pod (source), its
 * peer the destination. One incident per (pod, IOC), its flows (and drops)
 * growing with every hit. The response policy is not asked: the feed's
 * own entry dropped the flow (action "block", what was blocked the IOC) or
 * the feed only alerts (action "alert"); the pod is never blocked for it.
 */
void zt_engine_on_ioc(struct zt_engine *e, const struct zt_decision *d, bool dropped);
/* Kernel signals (the joining step converts Part K's events into these). */
void zt_engine_on_probe(struct zt_engine *e, const struct zt_probe *p);
void zt_engine_on_rate(struct zt_engine *e, const struct zt_rate_sample *s);
/*
 * A TCP session tc_endpoint saw close (ZT_EV_SESSION): to the brute-force
 * detector now. The sweep then leaves that entry (zt_ct_val.session_sent).
 */
void zt_engine_on_session(struct zt_engine *e, const struct zt_ct_key *k,
			  const struct zt_ct_val *v);
/* A TCP session a service of the node itself accepted, closed (ZT_EV_HOST_SESSION). */
void zt_engine_on_host_session(struct zt_engine *e, const struct zt_ev_host_session *ev);
/* Logins a server refused, as they were (ZT_EV_REFUSED): to the brute-force detector now. */
void zt_engine_on_refused(struct zt_engine *e, const struct zt_ev_refused *ev);
void zt_engine_on_packets(struct zt_engine *e, uint8_t family, const uint8_t *src,
			  const uint8_t *dst, enum zt_flood_kind kind, uint32_t n, uint64_t ts_ns);
/* A captured frame (Part K's capture events): to the captures of watched addresses. */
int zt_engine_on_capture(struct zt_engine *e, uint64_t ts_boot_ns, uint32_t ifindex,
			 uint8_t verdict, const char *why, const uint8_t *pkt, uint32_t caplen,
			 uint32_t origlen);
/* A decision made elsewhere (the model, tests): the same response as the detectors'. */
void zt_engine_decide(struct zt_engine *e, const struct zt_decision *d);

/*
 * The threat of an open incident whose source addr is (scan first) and its
 * score in *score (left alone when none); ZT_THREAT_NONE when none.
 */
enum zt_threat zt_engine_source_threat(struct zt_engine *e, uint8_t family, const uint8_t *addr,
				       float *score);

/* Every second on the loop: incident updates and closes, denial windows, captures, bounds. */
void zt_engine_tick(struct zt_engine *e, uint64_t now_boot_ns);

int zt_engine_register_api(struct zt_engine *e, struct zt_api *api);
void zt_engine_get_stats(struct zt_engine *e, struct zt_engine_stats *st);

#endif
