/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The XDP block and allow lists as the daemon keeps them.
 *
 * The pinned maps are the state that survives a restart; the daemon keeps
 * a mirror of the blocklist keys (rebuilt from the maps at start) so it
 * knows, without asking the kernel, which entries exist, how many of each
 * prefix length there are, where each length lives (hashed or trie) and
 * when the next entry expires. Every change keeps the datapath consistent:
 * entries are written before their prefix length is published and a
 * length is unpublished before its last entry is deleted.
 *
 * Threads: the loop thread calls most of these, the ring buffer's consumer
 * writes detector blocks (zt_blocklist_add) at the same time. Every
 * function below but the setters (set_audit, set_feed_match: before the
 * threads start) holds the blocklist's own lock for its call, so each
 * change is whole to every other thread and to the XDP program.
 */
#ifndef ZT_BLOCKLIST_H
#define ZT_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/api.h"
#include "guard/datapath.h"
#include "agent/util.h"

struct zt_blocklist;

struct zt_block_req {
	uint64_t ttl_ns; /* 0 = never expires */
	uint16_t reason; /* enum zt_block_reason */
	uint16_t source; /* enum zt_block_source */
	uint32_t feed_id;
	const char *note; /* free text, may be NULL */
};

int zt_blocklist_init(struct zt_blocklist **bl, struct zt_datapath *dp, char *err, size_t errlen);
void zt_blocklist_stop(struct zt_blocklist *bl);

/*
 * Drift (guard/drift.h): the four entry maps against the agent's mirror.
 * Walks at most budget keys of each map per call, resuming where the last
 * call stopped (cur, zeroed before the first); at the end of a pass, fewer
 * keys than mirrored means deletions, which are looked for and put back
 * with the whole value the agent wrote (kind, note, source, feed, times).
 * Entries the mirror lacks are deleted, a changed value written back. Loop
 * thread.
 */
struct zt_drift_hooks;
struct zt_bl_drift_cursor {
	uint8_t key[4][20];
	bool mid[4];
	size_t seen[4];
	uint64_t token[4]; /* hash maps: the batch lookup's cursor */
	bool no_batch; /* the kernel has no batch lookups: key by key */
	bool skip_hash; /* the hash maps are read whole elsewhere (zt_blocklist_scan_*) */
	size_t start_n[4]; /* entries the mirror had when the pass began */
	uint64_t start_removals[4];
};
void zt_blocklist_drift_check(struct zt_blocklist *bl, struct zt_bl_drift_cursor *cur,
			      size_t budget, const struct zt_drift_hooks *h);
/* One key of one map (fam, trie) that another process wrote: compared and repaired at once. */
void zt_blocklist_drift_check_key(struct zt_blocklist *bl, int fam, bool trie, const uint8_t *key,
				  const struct zt_drift_hooks *h);
/*
 * block_notes (the entries' reason texts) against what the agent wrote:
 * one id (key: its 4 bytes, from the drift watch), or the whole map.
 */
void zt_blocklist_notes_check_key(struct zt_blocklist *bl, const uint8_t *key,
				  const struct zt_drift_hooks *h);
void zt_blocklist_notes_check(struct zt_blocklist *bl, const struct zt_drift_hooks *h);
size_t zt_blocklist_notes_count(const struct zt_blocklist *bl);

/*
 * Drift in big hash maps within a second: a whole-map read off the loop
 * (zt_blocklist_scan_run, any thread: the map only, through its own fd)
 * summed per bucket of keys, then the mirror's sums and the look-ups of the
 * buckets that differ on the loop thread (zt_blocklist_scan_compare, at most
 * budget look-ups; returns the buckets that differed or the read's -errno).
 */
#define BL_SCAN_BUCKET_BITS 12
#define BL_SCAN_BUCKETS (1u << BL_SCAN_BUCKET_BITS)
struct zt_bl_scan;
int zt_blocklist_scan_new(struct zt_blocklist *bl, int fam, struct zt_bl_scan **s);
void zt_blocklist_scan_free(struct zt_bl_scan *s);
int zt_blocklist_scan_run(struct zt_bl_scan *s);
uint64_t zt_blocklist_scan_ns(const struct zt_bl_scan *s); /* the last read's wall time */
uint64_t zt_blocklist_scan_cpu_ns(const struct zt_bl_scan *s); /* and CPU time */
int zt_blocklist_scan_compare(struct zt_blocklist *bl, const struct zt_bl_scan *s, size_t budget,
			      const struct zt_drift_hooks *h);

int zt_blocklist_add(struct zt_blocklist *bl, const struct zt_cidr *c,
		     const struct zt_block_req *req, bool *replaced, char *err, size_t errlen);
int zt_blocklist_del(struct zt_blocklist *bl, const struct zt_cidr *c);
/* All or nothing: -ENOSPC (nothing changed) when the maps cannot hold them. */
int zt_blocklist_import(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
			const struct zt_block_req *req, size_t *added, size_t *replaced, char *err,
			size_t errlen);
/*
 * Removes entries whose expiry has passed, in a slice of about 30 ms at
 * most per call, and audits them (block.expire, one event per 8192 with
 * their CIDRs); returns how many. zt_blocklist_expire_pending() is true when
 * the call left work for the next one: call again soon, after the loop has
 * served what waits.
 */
size_t zt_blocklist_expire(struct zt_blocklist *bl, uint64_t now_boot_ns);
bool zt_blocklist_expire_pending(const struct zt_blocklist *bl);
/* Entries per family (0 = IPv4, 1 = IPv6), in the hash map or in the trie. */
size_t zt_blocklist_count(const struct zt_blocklist *bl, int fam, bool trie);

int zt_allowlist_add(struct zt_blocklist *bl, const struct zt_cidr *c, const char *note);
int zt_allowlist_del(struct zt_blocklist *bl, const struct zt_cidr *c);

/* Audit events of block and allow changes: kind "block.add" etc., detail a JSON object. */
typedef void (*zt_bl_audit_fn)(void *ctx, const char *kind, const char *subject,
			       const char *detail_json);
void zt_blocklist_set_audit(struct zt_blocklist *bl, zt_bl_audit_fn fn, void *ctx);

/*
 * Threat-intel feeds (src/feeds/apply.c keeps which feeds list what; these
 * only touch entries whose source is ZT_BS_FEED, so an operator's or a
 * detector's entry for the same prefix is never replaced or removed).
 */
struct zt_bl_feed_item {
	struct zt_cidr cidr;
	uint64_t expires_ns; /* CLOCK_BOOTTIME; 0 = never */
	uint32_t feed_id;
};

struct zt_bl_feed_counts {
	size_t added; /* new entries */
	size_t updated; /* feed entries rewritten (another expiry) */
	size_t unchanged; /* feed entries already as asked */
	size_t kept; /* entries of another source, left as they are */
	size_t removed; /* zt_blocklist_feed_del: feed entries deleted */
};

/*
 * Makes each item a feed entry unless the prefix holds an entry of another
 * source: absent ones are added, feed entries with another expiry are
 * rewritten. New entries are written before their lengths are published;
 * all or nothing (-ENOSPC with err saying so when the maps cannot hold
 * them). Counts are added to *c.
 */
int zt_blocklist_feed_add(struct zt_blocklist *bl, const struct zt_bl_feed_item *items, size_t n,
			  struct zt_bl_feed_counts *c, char *err, size_t errlen);
/* Deletes the feed entries among cs (others stay, counted as kept); counts into *c. */
int zt_blocklist_feed_del(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
			  struct zt_bl_feed_counts *c);
/*
 * Room for more entries without a long stall of the caller: when the
 * mirror would have to grow, its new memory is made ready on a thread (1:
 * call again), then moved into on the next call that finds it ready (1, a
 * rehash of tens of ms for 1M entries); 0 once there is room. -ENOMEM.
 * Adds that outrun it grow the mirror at once, as before.
 */
int zt_blocklist_reserve(struct zt_blocklist *bl, size_t more);
/* Every feed entry (source ZT_BS_FEED) into a new array *out of *n. 0 or -ENOMEM. */
int zt_blocklist_feed_entries(const struct zt_blocklist *bl, struct zt_cidr **out, size_t *n);
/* The source (enum zt_block_source) of the entry for exactly c, or -ENOENT. */
int zt_blocklist_source(const struct zt_blocklist *bl, const struct zt_cidr *c);

/*
 * block.list {"feed": NAME} lists only the entries this says NAME owns:
 * 1 owned, 0 not, -ENOENT when there is no feed of that name.
 */
typedef int (*zt_bl_feed_match_fn)(void *ctx, const char *feed, const struct zt_cidr *c);
void zt_blocklist_set_feed_match(struct zt_blocklist *bl, zt_bl_feed_match_fn fn, void *ctx);

/* Registers block.* and allow.* operations. */
int zt_blocklist_register_api(struct zt_blocklist *bl, struct zt_api *api);

const char *zt_block_reason_name(unsigned int reason);
int zt_block_reason_parse(const char *s, uint16_t *out);
const char *zt_block_source_name(unsigned int source);
int zt_block_source_parse(const char *s, uint16_t *out);

#endif
