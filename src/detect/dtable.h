/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A bounded hash table of fixed-size entries for the detectors' state
 * (per source, per pair, per workload): open addressing with linear
 * probing and backward-shift deletion, so it never fills with tombstones.
 * The key is the first key_len bytes of an entry and is compared bytewise
 * (zero the padding). At most max entries: an insert beyond that fails
 * (-ENOSPC), so what an attacker can make the agent allocate is bounded.
 * Not thread-safe.
 */
#ifndef ZT_DTABLE_H
#define ZT_DTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zt_dtable {
	uint8_t *slots; /* cap entries of (1 used byte + pad to 8) + entry */
	uint8_t *used;
	size_t cap; /* power of two, > max */
	size_t n, max;
	size_t key_len, entry_len;
	uint64_t seed;
	uint64_t rng; /* zt_dtable_get_evict's sampling */
	uint64_t evicted; /* entries zt_dtable_get_evict made room by */
};

/* max entries (>= 1); entries of entry_len bytes whose first key_len bytes are the key. */
int zt_dtable_init(struct zt_dtable *t, size_t max, size_t key_len, size_t entry_len,
		   uint64_t seed);
void zt_dtable_free(struct zt_dtable *t);
/* The entry with this key, or NULL. */
void *zt_dtable_find(const struct zt_dtable *t, const void *key);
/*
 * The entry with this key; a new one (zeroed, key copied, *created true)
 * when absent. NULL when the table is full (max entries).
 */
void *zt_dtable_get(struct zt_dtable *t, const void *key, bool *created);
/*
 * An entry's worth to its table: when the table is full, the entry of
 * least worth among a few sampled ones makes room for a new one.
 */
typedef uint64_t (*zt_dtable_worth_fn)(const void *entry, void *arg);
/* Called with an entry about to be evicted (its key still in it). */
typedef void (*zt_dtable_gone_fn)(const void *entry, void *arg);

/*
 * zt_dtable_get, but a full table makes room: of ZT_DTABLE_SAMPLE entries
 * taken at pseudo-random places, the one worth least (ties: the first) is
 * passed to gone (may be NULL) and removed. For state that an attacker can
 * create at will (spoofed sources): a full table then keeps what matters
 * (what worth says), where zt_dtable_get would refuse every newcomer until
 * entries expire. Entry pointers from earlier calls are invalid afterwards.
 */
#define ZT_DTABLE_SAMPLE 8
void *zt_dtable_get_evict(struct zt_dtable *t, const void *key, bool *created,
			  zt_dtable_worth_fn worth, zt_dtable_gone_fn gone, void *arg);
/*
 * The worth of a sequential test's state: where its log-likelihood ratio
 * stands between its bounds (down: "benign so far", up: decided) first, in
 * 256 steps, so the one-try states of many sources make room before one
 * that has gone further towards a decision; then how recent it is.
 */
static inline uint64_t zt_dtable_worth_walk(double llr, double down, double up, uint64_t last_ns)
{
	double x = (llr - down) / (up - down);
	uint64_t b = x <= 0 ? 0 : x >= 1 ? 255 : (uint64_t)(x * 255);

	return b << 56 | last_ns >> 8;
}
/* Removes the entry e points to (from find/get/next); e is invalid afterwards. */
void zt_dtable_del(struct zt_dtable *t, void *e);
/*
 * Iteration: *pos starts at 0; returns the next entry or NULL at the end.
 * Deleting the returned entry during iteration is allowed when the caller
 * then continues from the same *pos - 1 (zt_dtable_del_at does that).
 */
void *zt_dtable_next(const struct zt_dtable *t, size_t *pos);
/* Deletes the entry last returned by next at *pos and rewinds *pos so nothing is skipped. */
void zt_dtable_del_at(struct zt_dtable *t, size_t *pos);
void zt_dtable_clear(struct zt_dtable *t);

#endif
