/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The unsupervised per-workload baseline: what each workload usually sends
 * out per window, learnt as it runs, and an alarm when a window is far
 * above it (exfiltration's "far more than its own learned baseline, or to
 * destinations it never used").
 *
 * Per workload and window (default 60 s) two numbers are observed: x_b =
 * ln(1 + bytes sent) and x_n = ln(1 + destinations the workload never
 * used before, per a 4096-bit Bloom filter of the ones it did). Each has
 * an exponentially weighted mean and variance (weight alpha per window;
 * a plain mean while fewer than 1/alpha windows are in). A window's score
 * is max(z_b, z_n), z = (x - mean) / sqrt(var + floor^2): one-sided,
 * since sending less is never exfiltration. A workload alarms only after
 * its warm-up (default 30 windows with traffic); windows without traffic
 * are not scored (an idle workload's baseline is its active windows).
 *
 * The threshold is set for the target false-positive rate: scores of all
 * warm windows of all workloads go into one histogram, and once it holds
 * 10/target_fpr scores the threshold is its (1 - target_fpr) quantile, so
 * that the rate holds whatever the shape of the traffic; before that it is
 * the Gaussian quantile for two one-sided tests, Phi^-1(1 - fpr/2). An
 * alarming window moves the baseline only up to the threshold, so an
 * ongoing exfiltration does not teach itself in.
 *
 * Memory is fixed at creation (about 700 bytes per workload); when the
 * table is full the workload seen least recently among a few candidates
 * is forgotten. Not thread-safe: one owner calls it.
 */
#ifndef ZT_DETECT_BASELINE_H
#define ZT_DETECT_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_BL_NAME_MAX 128

struct zt_baseline_cfg {
	double target_fpr; /* detection.target_fpr; default 0.001 */
	uint64_t window_ns; /* default 60 s */
	uint32_t warmup; /* windows with traffic before alarms; default 30 */
	double alpha; /* EWMA weight of a new window; default 0.05 */
	uint32_t max_workloads; /* default 4096 */
};

struct zt_baseline_result {
	char workload[ZT_BL_NAME_MAX];
	bool warm; /* past its warm-up: alert means something */
	bool alert; /* warm and score >= threshold */
	bool calibrated; /* the threshold is the empirical quantile */
	uint32_t windows; /* scored windows of this workload, this one included */
	double score, threshold; /* max(z_bytes, z_new) */
	double z_bytes, z_new;
	uint64_t bytes_out, new_dsts;
	double expected_bytes; /* exp(mean of ln(1 + bytes)) - 1 before this window */
	double expected_new;
};

typedef void (*zt_baseline_cb)(void *ctx, const struct zt_baseline_result *res);

struct zt_baseline;

/* cfg NULL or zero fields: the defaults. 0, -EINVAL (fpr not in (0, 0.5)) or -ENOMEM. */
int zt_baseline_new(const struct zt_baseline_cfg *cfg, struct zt_baseline **out);
void zt_baseline_free(struct zt_baseline *b);

/*
 * Counts bytes a workload sent to dst (family AF_INET/AF_INET6, address in
 * network order, IPv4 in the first 4 bytes) at now_ns (any monotonic
 * clock, the same for every call). The window starts at the workload's
 * first flow after the previous one closed.
 */
void zt_baseline_observe(struct zt_baseline *b, const char *workload, uint64_t now_ns,
			 uint64_t bytes_out, uint8_t family, const uint8_t dst[16]);
/* Closes every window that ended by now_ns, scores it and calls cb. Returns windows scored. */
int zt_baseline_tick(struct zt_baseline *b, uint64_t now_ns, zt_baseline_cb cb, void *ctx);

/* Scores one finished window given its totals and learns from it (what tick does per window). */
void zt_baseline_window(struct zt_baseline *b, const char *workload, uint64_t bytes_out,
			uint64_t new_dsts, struct zt_baseline_result *res);

/* The threshold in force, and whether it is the empirical one. */
double zt_baseline_threshold(const struct zt_baseline *b, bool *calibrated);

#endif
