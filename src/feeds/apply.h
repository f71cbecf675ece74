/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Feed entries into the kernel: who owns what, and new versions applied as
 * diffs without a stall.
 *
 * Every prefix a feed lists has an owner mask per direction (bit i: feeds[i]
 * lists it; at most ZT_MAX_FEEDS = 32 feeds): inbound owners put it in the
 * XDP blocklist (source = feed, through zt_blocklist_feed_add/_del, which
 * never touch an operator's or a detector's entry for the same prefix),
 * outbound owners in tc_endpoint's destination IOC maps. An entry stays
 * while any feed lists it; its value merges its owners' (the latest
 * valid_until, block over alert, one port only when they all name it).
 *
 * A new version of a feed is a job: first every prefix of the new version
 * is made present (adds and changed values, in chunks), then the prefixes
 * only the old version listed are released (deletes, in chunks), so until
 * the job ends the union of both versions applies and never neither.
 * zt_feed_apply_step() works for a bounded time and returns, so the
 * daemon's loop serves the API, timers and signals between chunks. A
 * version the maps cannot hold is rolled back (its adds released) and the
 * previous one stays in force. Once every feed has a version in force,
 * entries no feed lists (left by an earlier run, or by a feed no longer
 * configured) are removed, once.
 *
 * Main thread only, except zt_feed_apply_reference() (any thread).
 */
#ifndef ZT_FEEDS_APPLY_H
#define ZT_FEEDS_APPLY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "feeds/feed.h"
#include "guard/blocklist.h"

struct zt_feed_apply;

struct zt_feed_apply_maps {
	struct zt_blocklist *bl; /* inbound; NULL: no inbound side */
	int ioc_host[2]; /* outbound: tc_endpoint's maps (0 = IPv4, 1 = IPv6); -1: none */
	int ioc_lpm[2];
	int ioc_state;
};

/* How a job ended. */
struct zt_feed_apply_report {
	unsigned int index;
	bool ok; /* false: refused; the previous version stays in force */
	int err;
	char msg[256];
	size_t src_entries, dst_entries; /* prefixes this feed now lists, per direction */
	struct zt_bl_feed_counts src; /* what it did to the blocklist */
	size_t dst_added, dst_updated, dst_removed; /* ... to the IOC maps */
	uint64_t apply_ns; /* from submit to the last kernel write */
	/*
	 * From submit to the end of the adds: from then on the new version is
	 * wholly in the kernel, and what is left is releasing what only the
	 * old one listed. 0 when refused.
	 */
	uint64_t in_force_ns;
	uint64_t work_ns; /* time spent in steps (the loop's share) */
	uint64_t longest_step_ns;
	/*
	 * Where the work went: adds, releases (wall, in steps), and the
	 * thread's CPU time in steps; work minus CPU is waiting (the kernel's
	 * locks, being scheduled out).
	 */
	uint64_t add_ns, del_ns, cpu_ns;
	uint64_t longest_step_cpu_ns; /* the thread's CPU in its longest step (by CPU) */
	unsigned int steps;
	size_t orphans; /* removed after the last feed's first version: an earlier run's leftovers */
	uint8_t digest[32];
};

/* Called at the end of each job, from zt_feed_apply_step(). */
typedef void (*zt_feed_applied_fn)(void *ctx, const struct zt_feed_apply_report *rep);

int zt_feed_apply_init(struct zt_feed_apply **out, const struct zt_feed_apply_maps *maps,
		       const struct zt_feed_config *feeds, unsigned int n, zt_feed_applied_fn done,
		       void *ctx);
/* Frees the state; what is in the kernel stays. NULL is fine. */
void zt_feed_apply_stop(struct zt_feed_apply *a);

/*
 * Queues version r of feed idx (a finished, subtracted result); from now on
 * r belongs to the applier whatever the return. A version still waiting for
 * its turn is dropped for it. submit_ns: when the content arrived
 * (CLOCK_MONOTONIC), for apply_ns. 0 or -EINVAL / -ENOENT (idx).
 */
int zt_feed_apply_submit(struct zt_feed_apply *a, unsigned int idx, struct zt_feed_result *r,
			 const uint8_t digest[32], uint64_t submit_ns);
/* Works for about budget_ns (at least one chunk); true while work remains. */
bool zt_feed_apply_step(struct zt_feed_apply *a, uint64_t budget_ns);
bool zt_feed_apply_busy(const struct zt_feed_apply *a);
/*
 * Whether the last step stopped early to wait for the blocklist's room
 * (memory made ready on a thread): the next step is better a little later
 * than at once, as polling only takes CPU from that thread.
 */
bool zt_feed_apply_waiting(const struct zt_feed_apply *a);

/* Owner masks of exactly c (0 when no feed lists it). */
void zt_feed_apply_owners(const struct zt_feed_apply *a, const struct zt_cidr *c, uint32_t *src,
			  uint32_t *dst);
/* Whether feed idx lists exactly c inbound: one feed's bit of *src above. */
bool zt_feed_apply_lists_src(const struct zt_feed_apply *a, unsigned int idx,
			     const struct zt_cidr *c);
/* The version in force of feed idx (NULL: none yet). */
const struct zt_feed_result *zt_feed_apply_current(const struct zt_feed_apply *a, unsigned int idx);
/* Prefixes in force per direction for feed idx. */
void zt_feed_apply_counts(const struct zt_feed_apply *a, unsigned int idx, size_t *src,
			  size_t *dst);

/*
 * What feed idx says about prefix c (the entry a kernel match names): its
 * reference into ref ("" when it gives none). Any thread. 0, or -ENOENT when
 * the feed does not list c (any more).
 */
int zt_feed_apply_reference(struct zt_feed_apply *a, unsigned int idx, const struct zt_cidr *c,
			    char *ref, size_t n);

/* CLOCK_BOOTTIME ns of a valid_until (unix s), as the kernel entries carry it; 0 stays 0. */
uint64_t zt_feed_apply_boot_ns(const struct zt_feed_apply *a, uint64_t valid_until);

#endif
