// SPDX-License-Identifier: GPL-2.0-only
/* A bounded open-addressing hash table for detector state (see dtable.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "detect/dtable.h"

int zt_dtable_init(struct zt_dtable *t, size_t max, size_t key_len, size_t entry_len, uint64_t seed)
{
	size_t cap = 16;

	memset(t, 0, sizeof(*t));
	if (!max || !key_len || key_len > entry_len)
		return -EINVAL;
	/* At most 3/4 full: probes stay short. */
	while (cap < max + max / 3 + 1)
		cap <<= 1;
	t->slots = calloc(cap, entry_len);
	t->used = calloc(cap, 1);
	if (!t->slots || !t->used) {
		free(t->slots);
		free(t->used);
		memset(t, 0, sizeof(*t));
		return -ENOMEM;
	}
	t->cap = cap;
	t->max = max;
	t->key_len = key_len;
	t->entry_len = entry_len;
	t->seed = seed;
	t->rng = seed ^ 0x9e3779b97f4a7c15ULL;
	return 0;
}

void zt_dtable_free(struct zt_dtable *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->used);
	memset(t, 0, sizeof(*t));
}

static inline uint8_t *slot(const struct zt_dtable *t, size_t i)
{
	return t->slots + i * t->entry_len;
}

static inline size_t home(const struct zt_dtable *t, const void *key)
{
	return (size_t)zt_detect_hash(key, t->key_len, t->seed) & (t->cap - 1);
}

void *zt_dtable_find(const struct zt_dtable *t, const void *key)
{
	size_t i;

	if (!t->cap)
		return NULL;
	for (i = home(t, key); t->used[i]; i = (i + 1) & (t->cap - 1))
		if (!memcmp(slot(t, i), key, t->key_len))
			return slot(t, i);
	return NULL;
}

void *zt_dtable_get(struct zt_dtable *t, const void *key, bool *created)
{
	size_t i;

	if (created)
		*created = false;
	if (!t->cap)
		return NULL;
	for (i = home(t, key); t->used[i]; i = (i + 1) & (t->cap - 1))
		if (!memcmp(slot(t, i), key, t->key_len))
			return slot(t, i);
	if (t->n >= t->max)
		return NULL;
	t->used[i] = 1;
	t->n++;
	memset(slot(t, i), 0, t->entry_len);
	memcpy(slot(t, i), key, t->key_len);
	if (created)
		*created = true;
	return slot(t, i);
}

static void del_index(struct zt_dtable *t, size_t i)
{
	size_t mask = t->cap - 1, j = i;

	/* Backward shift: move later members of the cluster into the hole when their home allows. */
	for (;;) {
		size_t h;

		j = (j + 1) & mask;
		if (!t->used[j])
			break;
		h = home(t, slot(t, j));
		/* j's home is cyclically in (i, j]: it must stay where it is. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		memcpy(slot(t, i), slot(t, j), t->entry_len);
		i = j;
	}
	t->used[i] = 0;
	t->n--;
}

/* xorshift64*: where the eviction sample starts; no quality beyond spread needed. */
static size_t next_pos(struct zt_dtable *t)
{
	uint64_t x = t->rng ? t->rng : 1;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return (size_t)((x * 0x2545f4914f6cdd1dULL) >> 32) & (t->cap - 1);
}

void *zt_dtable_get_evict(struct zt_dtable *t, const void *key, bool *created,
			  zt_dtable_worth_fn worth, zt_dtable_gone_fn gone, void *arg)
{
	size_t mask, victim = 0, i;
	uint64_t least = UINT64_MAX;
	int seen = 0;
	void *e = zt_dtable_get(t, key, created);

	/* NULL only when the key is absent and the table full (or never made). */
	if (e || !t->cap)
		return e;
	/*
	 * Two runs of ZT_DTABLE_SAMPLE / 2 used slots from two random places:
	 * neighbours in the slot array are unrelated entries (hashed), and a
	 * run reads few cache lines.
	 */
	mask = t->cap - 1;
	for (int run = 0; run < 2; run++) {
		i = next_pos(t);
		for (int k = 0; k < ZT_DTABLE_SAMPLE / 2; i = (i + 1) & mask) {
			uint64_t w;

			if (!t->used[i])
				continue;
			w = worth(slot(t, i), arg);
			if (!seen++ || w < least) {
				least = w;
				victim = i;
			}
			k++;
		}
	}
	if (gone)
		gone(slot(t, victim), arg);
	del_index(t, victim);
	t->evicted++;
	return zt_dtable_get(t, key, created);
}

void zt_dtable_del(struct zt_dtable *t, void *e)
{
	size_t i = (size_t)((uint8_t *)e - t->slots) / t->entry_len;

	if (i < t->cap && t->used[i])
		del_index(t, i);
}

void *zt_dtable_next(const struct zt_dtable *t, size_t *pos)
{
	for (; *pos < t->cap; (*pos)++)
		if (t->used[*pos])
			return slot(t, (*pos)++);
	return NULL;
}

void zt_dtable_del_at(struct zt_dtable *t, size_t *pos)
{
	if (*pos == 0 || *pos > t->cap)
		return;
	del_index(t, *pos - 1);
	/* Another entry may have moved into the hole: look at it again. */
	(*pos)--;
}

void zt_dtable_clear(struct zt_dtable *t)
{
	if (t->used)
		memset(t->used, 0, t->cap);
	t->n = 0;
}
