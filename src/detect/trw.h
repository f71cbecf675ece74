/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Scan detection by threshold random walk (TRW; Jung, Paxson, Berger,
 * Balakrishnan, "Fast Portscan Detection Using Sequential Hypothesis
 * Testing", IEEE S&P 2004).
 *
 * Each first contact of a source is a Bernoulli trial: it succeeds (the
 * peer answered: handshake, reply) or fails (reset, ICMP unreachable, no
 * answer). A benign source succeeds with probability theta0, a scanner
 * with theta1 < theta0. The walk adds ln(theta1/theta0) per success and
 * ln((1-theta1)/(1-theta0)) per failure; it decides "scanner" at
 * ln(beta/alpha) (beta: detection probability, alpha: false-positive
 * probability) and "benign so far" at ln((1-beta)/(1-alpha)), where it
 * starts over. With the paper's theta0 0.8, theta1 0.2, alpha 0.01,
 * beta 0.99 a source whose first contacts all fail is flagged at the 4th;
 * each success cancels a failure.
 *
 * Two walks:
 *  - horizontal: per source, over first contacts with hosts it has not
 *    contacted before (many hosts, one port);
 *  - vertical: per (source, destination), over first contacts with
 *    (port, protocol) pairs of that destination (many ports, one host).
 * Repeated connections to what a source already contacted are not trials,
 * so a client hammering one service never walks. After a decision the
 * walk starts over: a scan that goes on decides again (the incident grows).
 *
 * Outcomes come from the caller (conntrack sweeps today, the kernel's
 * probe/outcome events later); a probe that got no answer must be
 * reported as ZT_PROBE_FAIL_TIMEOUT by the caller after its timeout.
 */
#ifndef ZT_TRW_H
#define ZT_TRW_H

#include "detect/detect.h"

enum zt_probe_outcome {
	ZT_PROBE_SUCCESS = 1, /* handshake completed, or a reply */
	ZT_PROBE_FAIL_RST, /* TCP reset without a handshake */
	ZT_PROBE_FAIL_UNREACH, /* ICMP destination unreachable */
	ZT_PROBE_FAIL_TIMEOUT, /* no answer within the caller's timeout (also: dropped by policy) */
};

/* One first contact and its outcome. */
struct zt_probe {
	uint8_t family; /* 4 | 6 */
	uint8_t proto;
	uint16_t dport; /* TCP/UDP port, 0 otherwise */
	uint8_t outcome; /* enum zt_probe_outcome */
	uint8_t _pad[3];
	uint8_t src[16], dst[16];
	uint64_t ts_ns; /* when the probe was sent (CLOCK_BOOTTIME) */
};

struct zt_trw_params {
	double theta0; /* P(success | benign), default 0.8 */
	double theta1; /* P(success | scanner), default 0.2 */
	double alpha; /* false-positive probability, default 0.01 */
	double beta; /* detection probability, default 0.99 */
	uint32_t max_sources; /* default 65536 */
	uint32_t max_pairs; /* (source, destination) walks, default 65536 */
	uint32_t max_contacts; /* first contacts remembered per source, default 4096 */
	uint64_t idle_ns; /* a source quiet this long is forgotten, default 10 min */
};

struct zt_trw;

struct zt_trw_stats {
	uint64_t probes, trials_h, trials_v, decisions_h, decisions_v;
	uint64_t sources, pairs, dropped; /* dropped: no room for a new source or pair */
	uint64_t evicted; /* sources, pairs and contacts that made room in a full table */
};

/* Fills the defaults above. */
void zt_trw_defaults(struct zt_trw_params *p);
/* -EINVAL unless 0 < theta1 < theta0 < 1 and 0 < alpha < beta < 1. */
int zt_trw_new(const struct zt_trw_params *p, struct zt_trw **out);
void zt_trw_free(struct zt_trw *t);
/*
 * One probe. Returns 1 and fills *d when it completes a walk to "scanner"
 * (d->subtype "horizontal" or "vertical"), else 0.
 */
int zt_trw_observe(struct zt_trw *t, const struct zt_probe *p, struct zt_decision *d);
/* Forgets sources and pairs quiet since before now - idle_ns. */
void zt_trw_expire(struct zt_trw *t, uint64_t now_ns);
void zt_trw_get_stats(const struct zt_trw *t, struct zt_trw_stats *st);
/* The walk thresholds (ln eta1, ln eta0) and steps, for evidence and tests. */
void zt_trw_bounds(const struct zt_trw *t, double *upper, double *lower, double *step_success,
		   double *step_failure);

#endif
