// SPDX-License-Identifier: GPL-2.0-only
/* Count-min sketch with conservative update (see sketch.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detect.h"
#include "detect/sketch.h"

int zt_sketch_init(struct zt_sketch *s, uint32_t depth, uint32_t width)
{
	memset(s, 0, sizeof(*s));
	if (!depth || depth > ZT_SKETCH_MAX_DEPTH || width < 16 || (width & (width - 1)))
		return -EINVAL;
	s->c = calloc((size_t)depth * width, sizeof(*s->c));
	if (!s->c)
		return -ENOMEM;
	s->depth = depth;
	s->width = width;
	return 0;
}

void zt_sketch_free(struct zt_sketch *s)
{
	free(s->c);
	memset(s, 0, sizeof(*s));
}

void zt_sketch_reset(struct zt_sketch *s)
{
	memset(s->c, 0, (size_t)s->depth * s->width * sizeof(*s->c));
	s->total = 0;
}

/* Row i's column: two halves of one 64-bit hash combined (Kirsch-Mitzenmacher). */
static void columns(const struct zt_sketch *s, const void *key, size_t len, uint32_t *col)
{
	uint64_t h = zt_detect_hash(key, len, 0x5ce7c4);
	uint32_t a = (uint32_t)h, b = (uint32_t)(h >> 32) | 1;

	for (uint32_t i = 0; i < s->depth; i++)
		col[i] = (a + i * b) & (s->width - 1);
}

uint32_t zt_sketch_estimate(const struct zt_sketch *s, const void *key, size_t len)
{
	uint32_t col[ZT_SKETCH_MAX_DEPTH], m = UINT32_MAX;

	columns(s, key, len, col);
	for (uint32_t i = 0; i < s->depth; i++) {
		uint32_t v = s->c[(size_t)i * s->width + col[i]];

		if (v < m)
			m = v;
	}
	return m;
}

uint32_t zt_sketch_add(struct zt_sketch *s, const void *key, size_t len, uint32_t n)
{
	uint32_t col[ZT_SKETCH_MAX_DEPTH], m = UINT32_MAX, want;

	columns(s, key, len, col);
	for (uint32_t i = 0; i < s->depth; i++) {
		uint32_t v = s->c[(size_t)i * s->width + col[i]];

		if (v < m)
			m = v;
	}
	want = m > UINT32_MAX - n ? UINT32_MAX : m + n;
	/* Conservative update: raise only the counters below the new estimate. */
	for (uint32_t i = 0; i < s->depth; i++) {
		uint32_t *v = &s->c[(size_t)i * s->width + col[i]];

		if (*v < want)
			*v = want;
	}
	s->total += n;
	return want;
}
