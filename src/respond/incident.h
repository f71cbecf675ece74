/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Incidents: one per (subject address, threat type) while it is active,
 * not one per flow or per decision.
 *
 * An incident opens with the first decision about an address and a
 * threat (its counts are the decision's evidence), and grows: every later
 * decision raises decisions and the best score and replaces the evidence;
 * every flow record of the address and every XDP drop of its packets
 * raises flows, packets and bytes (zt_incidents_attribute). It closes when
 * nothing has happened for idle_ns; the next decision opens a new one.
 *
 * Each state change goes to the post callback as an audit event, so the
 * incidents table, its alerts row (one per incident, with a count) and the
 * audit trail are written together (incident_db.h): "incident.open" at
 * once, "incident.update" at most every update_ns while it changes, and
 * "incident.close". Every event carries the whole incident and a version
 * that only grows, so the database keeps the newest whatever the order or
 * a replay brings.
 *
 * Not thread-safe: the engine holds its lock around every call.
 */
#ifndef ZT_INCIDENT_H
#define ZT_INCIDENT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect/detect.h"
#include "respond/respond.h"

#define ZT_INCIDENT_PATH_MAX 512

struct zt_incident {
	uint8_t id[16]; /* UUIDv7 */
	char ids[40]; /* its text */
	uint8_t threat, role, family, proto;
	uint16_t dport;
	bool has_peer, open;
	uint8_t addr[16], peer[16];
	char subtype[ZT_SUBTYPE_MAX];
	char workload[ZT_WORKLOAD_MAX];
	uint64_t first_ns, last_ns; /* CLOCK_BOOTTIME: first and last activity */
	int64_t first_us, last_us, closed_us; /* unix microseconds */
	int64_t window_start_us; /* start of what the first decision's evidence covers */
	uint64_t flows, packets, bytes, drops, decisions;
	float score; /* the highest */
	double value, threshold;
	uint64_t window_ns;
	char evidence[ZT_EVIDENCE_MAX];
	/* The response */
	uint8_t act; /* enum zt_resp_act of the latest action that did something */
	uint8_t mode;
	char action_why[64];
	uint8_t blocked_family, blocked[16]; /* what was blocked (act block/already/refused) */
	uint64_t ttl_s;
	int64_t blocked_until_us;
	uint32_t offence;
	double block_ms; /* decision to map write of its block */
	/* Forensics */
	char capture[ZT_INCIDENT_PATH_MAX]; /* the current capture file, "" none */
	uint32_t capture_files;
	/* Bookkeeping */
	uint64_t version; /* grows with every posted state */
	bool dirty, published;
	uint64_t posted_ns;
	char close_reason[32];
};

typedef void (*zt_incident_post_fn)(void *ctx, const char *kind, const char *subject,
				    const char *detail_json);

/* Sees every state posted ("incident.open" | "incident.update" | "incident.close"). */
typedef void (*zt_incident_observe_fn)(void *ctx, const char *kind, const struct zt_incident *i);

struct zt_incidents_cfg {
	uint64_t update_ns; /* default 5 s */
	uint64_t idle_ns; /* default 10 min */
	uint32_t max_open; /* default 4096 */
	uint32_t keep_closed; /* closed incidents kept for ztctl, default 1024 */
};

struct zt_incidents;

struct zt_incidents_stats {
	uint64_t opened[ZT_THREAT_MAX];
	uint64_t open[ZT_THREAT_MAX];
	uint64_t closed, posts, refused_full;
};

void zt_incidents_cfg_defaults(struct zt_incidents_cfg *c);
int zt_incidents_new(const struct zt_incidents_cfg *c, zt_incident_post_fn post, void *ctx,
		     struct zt_incidents **out);
/* Closes what is open (reason "agent-stopped"), posting it, and frees. NULL is fine. */
void zt_incidents_free(struct zt_incidents *t, uint64_t now_ns, int64_t now_us);

/*
 * A decision and the action taken: opens the incident (*opened true) or
 * updates it. NULL when max_open incidents are open already (counted).
 * The pointer is valid until the next call that may close or open one.
 * A new incident is posted by zt_incidents_publish() (once the caller
 * has added its capture), or by the next tick.
 */
struct zt_incident *zt_incidents_on_decision(struct zt_incidents *t, const struct zt_decision *d,
					     const struct zt_resp_action *a, uint64_t now_ns,
					     int64_t now_us, bool *opened);
/* An observer of every posted state (alert streams, closing captures). */
void zt_incidents_set_observer(struct zt_incidents *t, zt_incident_observe_fn fn, void *ctx);
/* The open incident of (address, threat, role), or NULL. */
struct zt_incident *zt_incidents_lookup(struct zt_incidents *t, uint8_t family, const uint8_t *addr,
					enum zt_threat threat, enum zt_subject_role role);
/*
 * Traffic of a source address: every open incident it is the source of
 * grows. Returns how many incidents it touched (0: the fast, common case).
 */
int zt_incidents_attribute(struct zt_incidents *t, uint8_t family, const uint8_t *addr,
			   uint64_t flows, uint64_t packets, uint64_t bytes, uint64_t drops,
			   uint64_t now_ns, int64_t now_us);
/* Posts a new incident's "incident.open" now (nothing when it was posted already). */
void zt_incidents_publish(struct zt_incidents *t, struct zt_incident *i, int64_t now_us);
/* An open incident by its id, to change it (then zt_incidents_touch), or NULL. */
struct zt_incident *zt_incidents_get(struct zt_incidents *t, const uint8_t id[16]);
/* Marks an incident changed (after the caller set capture fields, block time ...). */
void zt_incidents_touch(struct zt_incidents *t, struct zt_incident *i);
/* Posts what is due and closes what has been idle for idle_ns. */
void zt_incidents_tick(struct zt_incidents *t, uint64_t now_ns, int64_t now_us);
/* Posts every pending change now (tests, shutdown, ztctl show). */
void zt_incidents_flush(struct zt_incidents *t, int64_t now_us);

/*
 * By id, or a unique part of it at its start or its end (at least 4
 * characters; the end is the random part: 8 characters of it are what
 * ztctl shows): the incident, or NULL with *matches saying whether none or
 * several matched.
 */
const struct zt_incident *zt_incidents_find(struct zt_incidents *t, const char *id, int *matches);
/* Open and recently closed incidents, newest first; returns how many (at most max). */
size_t zt_incidents_list(struct zt_incidents *t, bool want_open, bool want_closed,
			 const struct zt_incident **out, size_t max);
void zt_incidents_get_stats(const struct zt_incidents *t, struct zt_incidents_stats *st);

/* The incident as one JSON object (the audit event's detail); -ENOSPC when n is too small. */
int zt_incident_json(const struct zt_incident *i, const char *node, char *buf, size_t n);
/* The subject of its audit events: "scan 203.0.113.7" */
void zt_incident_subject(const struct zt_incident *i, char *buf, size_t n);

#endif
