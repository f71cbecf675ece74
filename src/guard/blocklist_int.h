/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The blocklist's own state, shared by blocklist.c (the mirror, the kernel
 * maps, expiry) and blocklist_api.c (the API operations). Not for use
 * outside src/guard/.
 */
#ifndef ZT_BLOCKLIST_INT_H
#define ZT_BLOCKLIST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "agent/util.h"
#include "guard/blocklist.h"

#define FAM_V4 0
#define FAM_V6 1
#define MAX_PLEN 128
#define BATCH 65536

/* One mirrored blocklist key. */
struct bl_slot {
	uint8_t used;
	uint8_t fam;
	uint8_t plen;
	uint8_t in_trie;
	uint8_t source; /* enum zt_block_source: a feed removes only its own kind */
	uint8_t summed; /* its value is in bl_table.sums (hash-map entries whose value was set) */
	uint16_t reason; /* the rest of the entry as written, so drift repair puts it back whole */
	uint64_t expires_ns;
	uint8_t addr[16];
	uint64_t created_unix;
	uint32_t feed_id;
	uint32_t note_id;
};

/*
 * A slot's home is the top bits of its key's hash, so slot order follows
 * hash order whatever the capacity: a listing can page through the table
 * by hash (struct bl_pos) and stay exact across growth and deletes.
 */
struct bl_table {
	struct bl_slot *slots;
	size_t cap; /* power of two */
	unsigned int shift; /* 64 - log2(cap) */
	size_t n;
	uint64_t removals; /* deletes so far: each may move entries to earlier slots */
	/*
	 * Per family and bucket of the key hash: a count and a sum of the
	 * hash-map entries' item hashes, kept up to date as values are set and
	 * slots removed, for the drift checksums (zt_blocklist_scan_compare)
	 * without a walk of the table on the loop thread.
	 */
	uint64_t sums[2][BL_SCAN_BUCKETS];
	uint32_t counts[2][BL_SCAN_BUCKETS];
};

/* A blocklist key, copied out of the mirror (slots move on delete). */
struct bl_key {
	uint8_t fam;
	uint8_t plen;
	uint8_t in_trie;
	uint8_t _pad;
	uint8_t addr[16];
};

/* A position in listing order: (hash, family, prefix length, address). */
struct bl_pos {
	uint64_t h;
	struct bl_key k; /* in_trie is not part of the order */
};
#define BL_POS_WIRE 26 /* bytes of a cursor on the wire: be64 hash, fam, plen, addr[16] */

struct zt_blocklist {
	/*
	 * Everything below that changes, and every write to the maps, is
	 * under mu: the loop thread (API, feeds, expiry, drift) and the thread
	 * that decides a detector block both write. Recursive: an entry point
	 * may call another. set_audit and set_feed_match are for set-up only.
	 * A detector block goes first: while one waits (urgent > 0), another
	 * thread's next entry lets it in before taking mu again (the mutex
	 * alone is not fair: a loop thread calling the blocklist back to back
	 * kept a detector write waiting 0.4-0.7 s).
	 */
	pthread_mutex_t mu;
	int urgent; /* atomic: detector writes waiting for mu */
	unsigned long owner; /* atomic: pthread_self() of the holder, 0 when free */
	unsigned depth; /* under mu: the holder's nested entries */
	struct zt_datapath *dp;
	zt_bl_audit_fn audit;
	void *audit_ctx;
	zt_bl_feed_match_fn feed_match; /* block.list "feed": who owns an entry */
	void *feed_match_ctx;
	int fd_hash[2], fd_trie[2], fd_allow[2], fd_prefixes, fd_notes;
	uint32_t pub_gen; /* zt_prefix_set.gen of the last publish (never 0) */
	bool put_back; /* a drift repair wrote an entry back: publish once the pass ends */
	uint32_t max_entries[2];
	uint32_t max_notes;
	struct bl_notes *notes; /* what the agent wrote to block_notes (blocklist_notes.c) */
	struct bl_table tab;
	uint32_t count[2][MAX_PLEN + 1]; /* entries per prefix length */
	bool hashed[2][MAX_PLEN + 1]; /* where a length with entries lives */
	size_t n_fam[2];
	uint32_t n_trie[2];
	uint64_t next_expiry; /* earliest expires_ns among entries; UINT64_MAX: none */
	/* Expiry: a sweep over the table in slot order, spread over calls (see zt_blocklist_expire). */
	bool expire_more; /* the last call left work for the next */
	bool sweep_on; /* a pass is under way */
	size_t sweep_pos; /* the next slot it looks at */
	size_t sweep_cap; /* the capacity it began with: growth moves every slot */
	uint64_t sweep_removals; /* tab.removals when it began */
	uint64_t sweep_next; /* earliest expiry among the entries it kept */
	size_t expire_step; /* entries collected per call, adapted to the time budget */
	bool allow_used[2]; /* the allowlist trie has entries */
	/* Prefilter: entries per bucket, the bitmap as written, words to write. */
	int fd_filter;
	uint8_t *fcount4; /* saturating: a full counter keeps its bit set, which is safe */
	uint16_t *fcount6;
	uint32_t *fcount16;
	uint64_t *fwords;
	uint8_t *fdirty; /* per word: in fdlist */
	uint32_t *fdlist; /* words to write, each once */
	uint64_t *fvals; /* their values, for the batch update */
	size_t n_fdlist;
	size_t n_short[2]; /* entries too short for the filter: that family's filter is off */
	/* A bigger slot array made ready on a thread of its own (zt_blocklist_reserve). */
	pthread_t spare_thr;
	bool spare_running;
	atomic_bool spare_done;
	struct bl_slot *spare;
	size_t spare_cap;
};

/* The lock of a blocklist, also from a const pointer (the mirror is read under it). */
static inline void bl_take(struct zt_blocklist *b)
{
	pthread_mutex_lock(&b->mu);
	if (b->depth++ == 0)
		__atomic_store_n(&b->owner, (unsigned long)pthread_self(), __ATOMIC_RELAXED);
}

static inline void bl_lock(const struct zt_blocklist *bl)
{
	struct zt_blocklist *b = (struct zt_blocklist *)bl;

	/* Not when this thread holds it already: the waiter waits for us. */
	if (__atomic_load_n(&b->owner, __ATOMIC_RELAXED) != (unsigned long)pthread_self())
		zt_let_urgent_first(&b->urgent);
	bl_take(b);
}

/* For a detector block: ahead of the other threads' next entries. */
static inline void bl_lock_urgent(struct zt_blocklist *bl)
{
	__atomic_add_fetch(&bl->urgent, 1, __ATOMIC_ACQ_REL);
	bl_take(bl);
	__atomic_sub_fetch(&bl->urgent, 1, __ATOMIC_ACQ_REL);
}

static inline void bl_unlock(const struct zt_blocklist *bl)
{
	struct zt_blocklist *b = (struct zt_blocklist *)bl;

	if (--b->depth == 0)
		__atomic_store_n(&b->owner, 0UL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->mu);
}

static inline int fam_of(const struct zt_cidr *c)
{
	return c->family == AF_INET ? FAM_V4 : FAM_V6;
}

static inline size_t addr_len(int fam)
{
	return fam == FAM_V4 ? 4 : 16;
}

void bl_audit(struct zt_blocklist *bl, const char *kind, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/*
 * Audit events for a bulk change: one per BL_AUDIT_CIDRS keys, each with the
 * fields in head (JSON members without braces, may be "") and "cidrs", the
 * list of the CIDRs it changed, from which the blocks rows are written.
 * Returns the number of events posted.
 */
#define BL_AUDIT_CIDRS 8192
size_t bl_audit_cidrs(struct zt_blocklist *bl, const char *kind, const char *subject,
		      const char *head, const struct zt_cidr *cs, size_t n);
/*
 * Up to limit entries after *after (NULL: from the start) in listing order
 * into out; *more when entries may follow the last one. -ENOMEM.
 */
ssize_t bl_list_page(const struct zt_blocklist *bl, const struct bl_pos *after, struct bl_pos *out,
		     size_t limit, bool *more);
/* Entries in the mirror, all families and maps. */
size_t bl_total(const struct zt_blocklist *bl);
void bl_pos_encode(const struct bl_pos *p, uint8_t out[BL_POS_WIRE]);
int bl_pos_decode(const uint8_t *in, size_t len, struct bl_pos *p);
void bl_key_cidr(const struct bl_key *k, struct zt_cidr *c);
size_t bl_make_key(int fam, uint8_t plen, const uint8_t *addr, void *key);
void bl_note_text(struct zt_blocklist *bl, uint32_t id, char *buf, size_t n);
int bl_entry_fd(const struct zt_blocklist *bl, int fam, bool in_trie);

/* blocklist_notes.c: the notes the agent wrote, for drift. */
struct bl_notes;
void bl_notes_remember(struct zt_blocklist *bl, uint32_t id, const char *text);
int bl_notes_load(struct zt_blocklist *bl);
void bl_notes_free(struct zt_blocklist *bl);

#endif
