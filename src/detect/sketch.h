/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A count-min sketch (Cormode and Muthukrishnan, 2005) with conservative
 * update: depth rows of width counters; an item's count is the smallest of
 * its depth counters, never below the truth and above it by at most
 * e/width of the total with probability 1 - e^-depth. Memory is fixed
 * (depth x width x 4 bytes) however many keys an attacker makes up.
 */
#ifndef ZT_SKETCH_H
#define ZT_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define ZT_SKETCH_MAX_DEPTH 8

struct zt_sketch {
	uint32_t depth, width; /* width: a power of two */
	uint32_t *c; /* depth * width */
	uint64_t total;
};

int zt_sketch_init(struct zt_sketch *s, uint32_t depth, uint32_t width);
void zt_sketch_free(struct zt_sketch *s);
void zt_sketch_reset(struct zt_sketch *s);
/* Adds n to key; returns the key's new estimate. */
uint32_t zt_sketch_add(struct zt_sketch *s, const void *key, size_t len, uint32_t n);
uint32_t zt_sketch_estimate(const struct zt_sketch *s, const void *key, size_t len);

#endif
