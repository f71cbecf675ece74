/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The engine's own state, shared by engine.c (inputs, decisions, actions)
 * and engine_api.c (ztctl's operations). Not for use outside src/respond/.
 */
#ifndef ZT_ENGINE_INT_H
#define ZT_ENGINE_INT_H

#include <pthread.h>

#include "agent/util.h"
#include "detect/bruteforce.h"
#include "detect/dtable.h"
#include "detect/exfil.h"
#include "detect/slowconn.h"
#include "respond/denyagg.h"
#include "respond/engine.h"
#include "respond/forensics.h"
#include "respond/incident.h"
#include "respond/respond.h"

#define ALERT_RING 4096
#define MAX_PENDING_BLOCKS 256

/* One line of `ztctl alerts`: an incident's state or a window of policy denials. */
struct alert_note {
	uint64_t seq;
	uint64_t unix_ms;
	char kind[24]; /* threat type, "policy-deny", "policy-audit" */
	char event[8]; /* "open", "update", "close", "deny" */
	char severity[12];
	char id[40]; /* incident or alert id */
	char subject[240];
	uint64_t count;
	char action[12];
	float score;
	char detail[ZT_EVIDENCE_MAX]; /* evidence, or the rule */
};

/*
 * Work done after the engine's lock, in the order it was queued under it:
 * an audit post (incidents: a JSON line to the spool) or the end of a
 * closed incident's capture (the forensics lock, which a capture flush
 * holds for tens of ms).
 */
struct deferred {
	uint8_t what; /* DEFER_POST, DEFER_UNWATCH */
	uint8_t id[16];
	char kind[32];
	char *subject, *detail;
};

/* A conntrack entry's input to a detector the lock guards (trw, bruteforce). */
struct sweep_job {
	uint8_t kind; /* SJ_PROBE, SJ_SESSION */
	union {
		struct zt_probe p;
		struct zt_conn c;
	} u;
};

/* Fingerprints of the sessions' ends tc_endpoint sent lately: a power of two. */
#define ZT_SESSIONS_SEEN 1024

struct zt_engine {
	struct zt_engine_hooks h;
	char node[64];
	uint64_t probe_timeout_ns;
	/*
	 * The detectors, response, incidents and the pending lists below.
	 * Taken with engine_lock() by the loop and bookkeeping threads, with
	 * engine_lock_urgent() by the ring-buffer consumer's detector records:
	 * while one of those waits (urgent > 0), the others' next engine_lock()
	 * lets it in first and the sweep ends its slice (the mutex alone is not
	 * fair: the loop re-took it between slices ahead of a waiting record).
	 */
	pthread_mutex_t lock;
	int urgent; /* atomic: detector records waiting for lock */
	struct zt_trw *trw;
	struct zt_flood *flood;
	struct zt_slowconn *slow;
	struct zt_bf *bf;
	struct zt_exfil *exfil;
	struct zt_respond *resp;
	struct zt_incidents *inc;
	struct zt_denyagg *deny;
	struct zt_forensics *fx;
	struct zt_actions *act;
	/*
	 * The sweep's own (loop thread only, no lock): conntrack entries
	 * already turned into a probe or a session, the batch read from the
	 * map, the slow-connection detector's per-sweep tally, and the jobs
	 * the batch gives the detectors under the lock.
	 */
	struct zt_dtable seen;
	uint64_t sweep_gen;
	uint64_t sweep_due; /* zt_engine_sweep_due */
	void *ct_keys, *ct_vals;
	size_t ct_cap;
	struct sweep_job *jobs;
	uint64_t sweep_entries; /* of the sweep under way */
	/* Audit posts and capture ends queued under the lock (struct deferred). */
	struct deferred *defer;
	size_t n_defer, cap_defer;
	/* Blocks decided under the lock, written after it. */
	struct zt_block_action pending[MAX_PENDING_BLOCKS];
	size_t n_pending;
	/* Incidents opened under the lock: captured and posted after the blocks are written. */
	struct fresh_incident {
		uint8_t id[16];
		uint8_t family, block_family;
		bool block_other; /* the block is of another address (exfiltration's peer) */
		uint8_t addr[16], block_addr[16];
	} fresh[MAX_PENDING_BLOCKS];
	size_t n_fresh;
	/* ztctl alerts: pushed with or without the engine's lock held, so a lock of its own. */
	pthread_mutex_t ring_lock;
	struct alert_note *ring;
	uint64_t next_seq;
	uint64_t last_node_refresh;
	uint64_t last_expire;
	/* The ends tc_endpoint sent lately, by fingerprint (zt_engine_on_session; under lock). */
	uint64_t sessions_seen[ZT_SESSIONS_SEEN];
	struct zt_engine_stats st;
};

static inline void engine_lock(struct zt_engine *e)
{
	zt_let_urgent_first(&e->urgent);
	pthread_mutex_lock(&e->lock);
}

/* For a detector record on the ring-buffer consumer: ahead of the others' next entries. */
static inline void engine_lock_urgent(struct zt_engine *e)
{
	__atomic_add_fetch(&e->urgent, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&e->lock);
	__atomic_sub_fetch(&e->urgent, 1, __ATOMIC_ACQ_REL);
}

static inline bool engine_urgent_waiting(struct zt_engine *e)
{
	return __atomic_load_n(&e->urgent, __ATOMIC_ACQUIRE) > 0;
}

/* engine_api.c */
void engine_alert_push(struct zt_engine *e, const struct alert_note *a);

#endif
