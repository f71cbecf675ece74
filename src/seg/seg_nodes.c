// SPDX-License-Identifier: GPL-2.0-only
/* The policies in force in canonical form, for the nodes table (agent/daemon_nodes.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "seg/polcanon.h"
#include "seg/seg_int.h"

int zt_seg_policy_canon(struct zt_seg *s, struct zt_polcanon_set *out, uint64_t *gen)
{
	const struct zt_policy **v;
	size_t n;
	int r;

	if (!s->cur) {
		memset(out, 0, sizeof(*out));
		*gen = 0;
		return -ENOENT;
	}
	n = s->cur->set->n;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = &s->cur->set->policies[i];
	r = zt_polcanon_build(v, n, out);
	free(v);
	*gen = zt_polapply_gen(s->applier);
	return r;
}
