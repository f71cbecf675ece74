/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Drift: the kernel's enforcement state changed behind the agent's back
 * (a program detached or replaced, a map entry added, changed or deleted, a
 * pin removed). The subsystems that own a piece of state compare it with
 * what they wrote (seg: tc filters, endpoints, policy and ipcache maps;
 * blocklist: its maps) and report each difference through these hooks; the
 * daemon (src/agent/daemon_drift.c) decides whether to repair now, logs,
 * counts and audits.
 */
#ifndef ZT_DRIFT_H
#define ZT_DRIFT_H

#include <stdbool.h>

/* May kind be repaired now (false while it flaps and backs off)? */
typedef bool (*zt_drift_may_fn)(void *ctx, const char *kind);
/*
 * One difference: kind ("tc", "policy", ...), subject (the interface, map
 * or endpoint), what differed (text for the log and the audit detail),
 * repaired (false: only detected), err (the repair's -errno, 0).
 */
typedef void (*zt_drift_report_fn)(void *ctx, const char *kind, const char *subject,
				   const char *what, bool repaired, int err);

/*
 * May this object (subject, as report names it) of kind be repaired now?
 * False while the object, or its whole kind, flaps and backs off.
 */
typedef bool (*zt_drift_may_obj_fn)(void *ctx, const char *kind, const char *subject);

struct zt_drift_hooks {
	zt_drift_may_fn may;
	zt_drift_report_fn report;
	void *ctx;
	zt_drift_may_obj_fn may_obj; /* optional: without it, may decides per kind */
};

/* The question a check asks before it repairs one object. */
static inline bool zt_drift_may(const struct zt_drift_hooks *h, const char *kind,
				const char *subject)
{
	if (h->may_obj)
		return h->may_obj(h->ctx, kind, subject);
	return !h->may || h->may(h->ctx, kind);
}

#endif
