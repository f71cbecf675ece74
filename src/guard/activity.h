/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's side of the activity stage (include/ztagent.h, "Activity"):
 * the settings in guard_cfg (limits, signal thresholds, SYN protection),
 * the maps the response side writes (watch, syn_protect, syn_verified),
 * and readers of the sketches for the detectors.
 *
 * Settings take effect at the next packet: no program is reloaded. Every
 * setter reads guard_cfg, changes its own fields and writes it back, so a
 * setter never undoes another's fields; they are meant to be called from
 * one thread (the daemon's loop).
 */
#ifndef ZT_GUARD_ACTIVITY_H
#define ZT_GUARD_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

struct zt_datapath;

/*
 * Rate limits in packets per second, by enum zt_rl_kind (ZT_RL_ALL, _SYN,
 * _UDP, _ICMP); 0 = off. The config's ratelimit.syn|udp|icmp are src[].
 * Bucket depth: burst_ms of the rate (0 = 1000 ms).
 */
struct zt_ratelimit_cfg {
	uint32_t src[ZT_RL_KINDS];
	uint32_t dst[ZT_RL_KINDS];
	uint32_t src_burst_ms;
	uint32_t dst_burst_ms;
};

/* Signal thresholds per window (0 = none) and the event rates (per second per CPU). */
struct zt_signal_cfg {
	struct zt_sig_thr src;
	struct zt_sig_thr dst;
	bool probes; /* probe and probe-result events */
	uint32_t probe_rate;
	uint32_t signal_rate;
};

struct zt_synprot_cfg {
	bool verified; /* under protection, clients that completed a handshake pass */
	bool challenge; /* under protection, unknown sources get the SYN-ACK challenge */
	uint64_t verified_ttl_ns; /* 0 = for as long as the LRU keeps them */
};

/*
 * The defaults below, as a whole guard_cfg for a kernel running at hz
 * (seed and cookie key zero): activity on, probes on, no limits, SYN
 * protection by verified clients and challenges, the signal thresholds of
 * zt_signal_cfg_defaults.
 */
#define ZT_ACT_DEFAULT_PROBE_RATE 5000
#define ZT_ACT_DEFAULT_SIGNAL_RATE 2000
#define ZT_ACT_DEFAULT_VERIFIED_TTL_NS (3600ULL * 1000000000ULL)
void zt_guard_cfg_defaults(struct zt_guard_cfg *c, uint32_t hz);
/* The window: 2^win_shift jiffies, the power of two nearest to one second. */
uint32_t zt_guard_win_shift(uint32_t hz);
/*
 * The kernel's HZ from its config (/proc/config.gz, /boot/config-RELEASE);
 * -ENOENT when neither says. zt_datapath_kernel_hz measures it when they
 * do not (two runs of a program 100 ms apart).
 */
int zt_kernel_hz_config(uint32_t *hz);
int zt_datapath_kernel_hz(const struct zt_datapath *dp, uint32_t *hz);
/* The kernel's jiffies and CLOCK_MONOTONIC ns, read together by the XDP object. */
int zt_datapath_clock(const struct zt_datapath *dp, uint64_t *jiffies, uint64_t *mono_ns);
void zt_signal_cfg_defaults(struct zt_signal_cfg *s);
/*
 * Lowers s's packet signals (per source, and per destination at dst_factor
 * times) to what a source at rate[k] packets a second (enum zt_rl_kind;
 * 0: leave that kind alone) sends in window_ns, the flood detector's
 * window: a configured rate below the built-in signal levels would
 * otherwise never be reported (one above them: zt_signal_cfg_cover_rates).
 */
void zt_signal_cfg_follow_rates(struct zt_signal_cfg *s, const uint32_t rate[ZT_RL_KINDS],
				uint32_t dst_factor, uint64_t window_ns);
/*
 * Raises s's flood signals (half-open SYNs, UDP, ICMP, all packets; per
 * source, and per destination at dst_factor times) to at least what a
 * source at rate[k] (0: leave alone) sends in window_ns. The flood
 * detector decides a kernel count on rate x window at least
 * (zt_flood_sample) and a signal goes out once a window: one below that
 * would come too early to decide and never again in its window (a
 * detection.flood.syn of 5000, or a window of 200 ms, against the
 * built-in 200 half-open).
 */
void zt_signal_cfg_cover_rates(struct zt_signal_cfg *s, const uint32_t rate[ZT_RL_KINDS],
			       uint32_t dst_factor, uint64_t window_ns);
/*
 * Fills c's limit fields from rl (intervals computed at c->hz, which must
 * be set); -EINVAL for a rate over 1e9/s or no hz.
 */
int zt_guard_cfg_set_ratelimits(struct zt_guard_cfg *c, const struct zt_ratelimit_cfg *rl);
void zt_guard_cfg_set_signals(struct zt_guard_cfg *c, const struct zt_signal_cfg *s);
void zt_guard_cfg_set_synprot(struct zt_guard_cfg *c, const struct zt_synprot_cfg *s);

/* Reads and writes guard_cfg through dp (the pinned map). */
int zt_datapath_guard_cfg(const struct zt_datapath *dp, struct zt_guard_cfg *out);
int zt_datapath_set_ratelimits(struct zt_datapath *dp, const struct zt_ratelimit_cfg *rl);
int zt_datapath_set_signals(struct zt_datapath *dp, const struct zt_signal_cfg *s);
int zt_datapath_set_synprot(struct zt_datapath *dp, const struct zt_synprot_cfg *s);
/* The whole stage on or off (off: the XDP pass path skips it entirely). */
int zt_datapath_set_activity(struct zt_datapath *dp, bool on);
/* The scan brake (include/ztagent.h, "Scan brake"): its threshold; 0 turns it off. */
int zt_datapath_set_scan_brake(struct zt_datapath *dp, uint32_t brake);
/*
 * The sources the scan brake never drops become exactly v (the daemon's
 * never-block lists); entries not in v are removed. -errno of the first
 * failure (the rest is still tried).
 */
struct zt_cidr;
int zt_datapath_set_scan_exempt(struct zt_datapath *dp, const struct zt_cidr *v, size_t n);

/*
 * An address for the functions below: family 4 or 6, addr in network byte
 * order (IPv4 in the first 4 bytes). zt_addr_parse fills one from text.
 */
int zt_addr_parse(const char *text, struct zt_addr_key *out);
const char *zt_addr_fmt(const struct zt_addr_key *a, char *buf, size_t n);

/*
 * Capture of a watched address (the response side, from the moment a
 * source is flagged): every program copies its packets, passed or dropped,
 * at most rate a second (0: all). ttl_ns 0 = until deleted. Adding an
 * address again replaces its entry (and restarts its counters).
 */
int zt_guard_watch_add(struct zt_datapath *dp, const struct zt_addr_key *a, uint64_t ttl_ns,
		       uint64_t incident_id, uint32_t rate);
int zt_guard_watch_del(struct zt_datapath *dp, const struct zt_addr_key *a);
/* The entry with the kernel's counters (captured, sampled_out, lost); -ENOENT when absent. */
int zt_guard_watch_get(const struct zt_datapath *dp, const struct zt_addr_key *a,
		       struct zt_watch_val *out);
/* Removes expired entries; returns how many, or -errno. */
int zt_guard_watch_expire(struct zt_datapath *dp);

/* SYN protection of a destination whatever its SYN bucket says; ttl_ns 0 = until deleted. */
int zt_guard_protect_add(struct zt_datapath *dp, const struct zt_addr_key *dst, uint64_t ttl_ns);
int zt_guard_protect_del(struct zt_datapath *dp, const struct zt_addr_key *dst);
/* A client admitted under SYN protection (or no longer). */
int zt_guard_verified_add(struct zt_datapath *dp, const struct zt_addr_key *src);
int zt_guard_verified_del(struct zt_datapath *dp, const struct zt_addr_key *src);
/* 1 when src is verified now, 0 when not, -errno on error. */
int zt_guard_verified_check(const struct zt_datapath *dp, const struct zt_addr_key *src);

/*
 * The latest window's activity of an address, read as the sketch's
 * count-min (field by field, the smaller of the two cells; bitmaps ANDed,
 * their counts recomputed). Cells of different windows: the older counts
 * as zero. out->win says which window.
 */
int zt_guard_src_activity(const struct zt_datapath *dp, const struct zt_addr_key *a,
			  struct zt_src_cell *out);
int zt_guard_dst_activity(const struct zt_datapath *dp, const struct zt_addr_key *a,
			  struct zt_dst_cell *out);
/* A source's own bucket state when it has gone over a limit; -ENOENT otherwise. */
int zt_guard_rl_src(const struct zt_datapath *dp, const struct zt_addr_key *a,
		    struct zt_rl_state *out);
/* Sums act_stats into out[ZT_AS_MAX]. */
int zt_datapath_act_stats(const struct zt_datapath *dp, uint64_t *out);
const char *zt_act_stat_name(unsigned int i);

/* CLOCK_MONOTONIC ns, the clock of the entries' expiry times. */
uint64_t zt_guard_now_ns(void);

/*
 * Linear counting: the distinct values behind `bits` set bits of an m-bit
 * bitmap (m = 64 here): m ln(m / (m - bits)); all bits set gives the
 * saturation estimate for m - 0.5 set bits.
 */
double zt_lc_estimate(unsigned int bits, unsigned int m);

/*
 * A conntrack entry's features as the flow model takes them (struct
 * zt_feat_flowstats, src/detect/features.h): means and standard deviations
 * from the online sums, gaps in microseconds, flag counts per direction.
 */
struct zt_feat_flowstats;
void zt_ct_flowstats(const struct zt_ct_val *v, struct zt_feat_flowstats *out);

#endif
