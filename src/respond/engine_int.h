/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The engine's own state, shared by engine.c (inputs, decisions, actions)
 * and engine_api.c (ztctl's operations). Not for use outside src/respond/.
 */
#ifndef ZT_ENGINE_INT_H
#define ZT_ENGINE_INT_H

#include <pthread.h>

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

struct zt_engine {
	struct zt_engine_hooks h;
	char node[64];
	uint64_t probe_timeout_ns;
	pthread_mutex_t lock;
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
	/* Conntrack entries already turned into a probe or a session. */
	struct zt_dtable seen;
	uint64_t sweep_gen;
	void *ct_keys, *ct_vals;
	size_t ct_cap;
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
	struct zt_engine_stats st;
};

/* engine_api.c */
void engine_alert_push(struct zt_engine *e, const struct alert_note *a);

#endif
