/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policies from traffic: `ztctl policy suggest`'s algorithm, a pure
 * function from observed flows (ends already resolved to namespaces and
 * labels) to the smallest NetworkPolicy set that allows them.
 *
 * - One policy per workload (namespace + label set) that some kept flow
 *   starts or ends at, selecting it by its labels (never by address) and
 *   isolating both directions; external peers become ipBlock /32 (/128).
 * - In each direction, the peers of the workload with the same ports share
 *   one rule; ports per protocol, consecutive ones merged into a range
 *   (port..endPort) only where every port of the range was seen.
 * - Every egress side also allows DNS (UDP and TCP 53) to kube-dns
 *   (kube-system, k8s-app=kube-dns).
 * - Each rule carries comments: which flows it covers and how often.
 * - Flows seen fewer than min_flows times, flows whose end could not be
 *   resolved to labels, pods without labels and protocols NetworkPolicy
 *   cannot state (ICMP) are not allowed: they are listed in a comment at
 *   the top, never silently dropped.
 * - audit: ZeroTrustPolicy (ztagent.io/v1) in mode audit with allow rules,
 *   so a team can watch the would-deny alerts before enforcing.
 */
#ifndef ZT_POLSUGGEST_H
#define ZT_POLSUGGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/selector.h"

struct zt_sg_end {
	/* A pod: its namespace and labels. NULL ns: not a pod (see cidr). */
	const char *ns;
	const struct zt_label *labels;
	size_t n_labels;
	/* Not a pod: the address as a prefix ("198.51.100.7/32") for an
	 * ipBlock; NULL: a pod whose labels are not known (unresolved). */
	const char *cidr;
	const char *name; /* for comments: "ns/name", "world 198.51.100.7", "identity:300" */
};

struct zt_sg_flow {
	struct zt_sg_end src, dst;
	uint8_t proto; /* IPPROTO_* */
	uint16_t port; /* destination port; 0 for protocols without */
	uint64_t count; /* flow records */
};

struct zt_sg_opts {
	const char *only_ns; /* NULL: every namespace */
	bool audit; /* ZeroTrustPolicy, mode audit */
	uint64_t min_flows; /* flows seen fewer times are listed, not allowed (0 = 1) */
	const char *header; /* a comment line for the top (the command that made it), or NULL */
};

/*
 * The YAML (malloc'ed, NUL-terminated) into *yaml; *n_policies how many
 * documents. 0 or -ENOMEM. The output is the same for the same flows in
 * any order.
 */
int zt_suggest(const struct zt_sg_flow *flows, size_t n, const struct zt_sg_opts *o, char **yaml,
	       size_t *n_policies);

#endif
