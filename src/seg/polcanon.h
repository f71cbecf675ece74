/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The canonical form of policies, so that nodes and directories can be
 * compared: one JSON text per policy with keys in a fixed order and every
 * list whose order carries no meaning sorted (labels, expressions and
 * their values, peers, ports, except lists, and the rules themselves: an
 * allow rule adds to the others, a deny wins wherever it stands). Positions,
 * file names, comments and formatting are not part of it, so the same
 * policies in other files, another order or another layout have the same
 * form. A set's SHA-256 is over its policies' forms sorted by
 * kind/namespace/name, each followed by a newline.
 */
#ifndef ZT_POLCANON_H
#define ZT_POLCANON_H

#include <stddef.h>

#include "seg/policy.h"

struct zt_polcanon {
	char *key; /* "Kind/namespace/name" */
	char *json; /* the canonical form */
	char sha256[65]; /* of json */
};

struct zt_polcanon_set {
	struct zt_polcanon *v; /* sorted by key */
	size_t n;
	char sha256[65];
};

/* One policy's canonical JSON (malloc'ed) or NULL without memory. */
char *zt_polcanon_policy(const struct zt_policy *p);
/* The set of n policies (pointers, any order); 0 or -ENOMEM. */
int zt_polcanon_build(const struct zt_policy *const *v, size_t n, struct zt_polcanon_set *out);
/* From (key, json) pairs as stored (node_policies): takes copies, sorts, hashes. */
int zt_polcanon_add(struct zt_polcanon_set *s, const char *key, const char *json);
void zt_polcanon_finish(struct zt_polcanon_set *s);
void zt_polcanon_free(struct zt_polcanon_set *s);

/* One difference between two sets: a policy added, removed or changed. */
enum zt_polcanon_change { ZT_PC_ADDED, ZT_PC_REMOVED, ZT_PC_CHANGED };
typedef void (*zt_polcanon_diff_fn)(void *ctx, enum zt_polcanon_change what, const char *key,
				    const char *old_json, const char *new_json);
/* Calls fn for each difference from a to b in key order; returns their count. */
size_t zt_polcanon_diff(const struct zt_polcanon_set *a, const struct zt_polcanon_set *b,
			zt_polcanon_diff_fn fn, void *ctx);

#endif
