/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Detection joined to the daemon (daemon_detect.c): kernel activity, probe
 * and capture events into the engine, incidents back into the kernel's
 * watch and SYN-protection maps, every flow record scored.
 */
#ifndef ZT_DAEMON_DETECT_H
#define ZT_DAEMON_DETECT_H

#include <stdbool.h>
#include <stddef.h>

#include "detect/detect.h"
#include "detect/features.h"
#include "detect/model.h"
#include "records/flowrec.h"

struct zt_daemon;
struct zt_incident;

/* After the engine and the metrics, before zt_events_start. err says what failed. */
int daemon_detect_start(struct zt_daemon *d, char *err, size_t errlen);
void daemon_detect_stop(struct zt_daemon *d);
/*
 * A scored copy of recs (malloc'd; the caller frees it), or NULL when
 * scoring is off or out of memory (recs then go out unscored).
 */
struct zt_flow_record *daemon_detect_score(struct zt_daemon *d, const struct zt_flow_record *recs,
					   size_t n);
/* The engine's incident hook (ctx: the daemon). */
void daemon_detect_on_incident(void *ctx, const struct zt_incident *i, bool open);
/*
 * One record scored in place (pure but for win): features with the
 * source's window, the model's result in *res (zero without a model),
 * anomaly_score the larger of the model's and the incident's score,
 * threat_type the incident's, else the model's class over its threshold,
 * else empty; drop aggregates are blocked and not fed to the model.
 */
void daemon_detect_score_one(struct zt_model *model, struct zt_feat_window *win,
			     struct zt_flow_record *r, enum zt_threat incident,
			     float incident_score, struct zt_model_result *res);

#endif
