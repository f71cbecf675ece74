/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Exfiltration: a workload sending to the world far more than it usually
 * does, or sending a lot to a destination it never used.
 *
 * Input: a workload's bytes to the world (destinations outside the
 * cluster: not an endpoint, not a node), one observation per flow record
 * or per conntrack delta. Per workload, bytes are summed in intervals; the
 * baseline is an exponentially weighted mean and variance of ln(1 + bytes)
 * over its active intervals (heavy-tailed byte counts are near-Gaussian
 * in log space). An interval is anomalous when
 *   ln(1 + bytes) > mean + z sd   and   bytes >= min_bytes,
 * with z the upper quantile of the target false-positive rate
 * (detection.target_fpr: 0.001 gives z = 3.09) and sd at least sd_floor,
 * so a workload that always sends exactly the same still has some room.
 * Independently, bytes to destinations the workload never sent to before
 * (exact addresses, remembered per workload) reaching new_dest_bytes in
 * one interval is anomalous. Nothing is decided during the first warmup
 * active intervals (learning); an anomalous interval does not teach the
 * baseline. Decisions come as soon as an interval crosses, not at its end.
 * Quiet intervals are not counted: a batch job that runs once a day is
 * compared with its own earlier runs.
 */
#ifndef ZT_EXFIL_H
#define ZT_EXFIL_H

#include "detect/detect.h"

struct zt_exfil_params {
	uint64_t interval_ns; /* default 60 s */
	double target_fpr; /* default 0.001 */
	double ewma_alpha; /* weight of a new interval, default 0.05 */
	double sd_floor; /* in ln-bytes, default 0.5 */
	uint32_t warmup; /* active intervals before any decision, default 10 */
	uint64_t min_bytes; /* default 8 MiB */
	uint64_t new_dest_bytes; /* default 32 MiB */
	uint32_t max_workloads; /* default 16384 */
	uint32_t max_dests; /* destinations remembered over all workloads, default 262144 */
	uint32_t max_dests_per_workload; /* default 4096 */
};

struct zt_egress {
	uint8_t family;
	uint8_t src[16], dst[16];
	const char *workload; /* "namespace/name" */
	uint64_t bytes, packets;
	uint64_t ts_ns; /* when the bytes were sent (end of the record) */
};

struct zt_exfil;

struct zt_exfil_stats {
	uint64_t observations, intervals, decisions_volume, decisions_new_dest;
	uint64_t workloads, dests, dropped;
};

void zt_exfil_defaults(struct zt_exfil_params *p);
int zt_exfil_new(const struct zt_exfil_params *p, struct zt_exfil **out);
void zt_exfil_free(struct zt_exfil *x);
/* One observation. Returns the decisions it made (0..2) in d[]. */
int zt_exfil_observe(struct zt_exfil *x, const struct zt_egress *e, struct zt_decision d[2]);
/* Closes intervals that ended before now_ns (their bytes teach the baseline). */
void zt_exfil_tick(struct zt_exfil *x, uint64_t now_ns);
void zt_exfil_get_stats(const struct zt_exfil *x, struct zt_exfil_stats *st);
/* The baseline of a workload (for tests and `incidents show`): 0, or -ENOENT. */
int zt_exfil_baseline(const struct zt_exfil *x, const char *workload, double *mean, double *sd,
		      uint32_t *intervals);

#endif
