/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policies generated from metadata: a pure function from namespaces and
 * pods (their labels and ztagent.io/ annotations) to policy YAML, which the
 * store parses like any file (under the name "generated") and compiles
 * with policy.dir and the feeds' advisories.
 *
 * Namespace annotation ztagent.io/isolation:
 *   none (or absent)  nothing is generated for the namespace
 *   namespace         its pods accept traffic from pods of the namespace,
 *                     and from callers that declare them in talks-to;
 *                     nothing else comes in (egress is not isolated)
 *   strict            ingress and egress isolated: only what talks-to
 *                     declares (DNS too: declare it)
 *
 * Pod annotation ztagent.io/talks-to: entries separated by ',':
 *   TARGET[:PORT]   TARGET is NAME (pods labelled app=NAME in the pod's own
 *                   namespace), K=V[&K=V...] (a label selector there), or
 *                   ns=NS[/NAME | /K=V[&K=V...]] (in namespace NS; ns=NS
 *                   alone: every pod of NS). PORT is N, N-M, or a named
 *                   port, optionally /TCP, /UDP or /SCTP (default TCP);
 *                   absent: every port.
 *   e.g. "backend:8080/TCP, ns=payments/app=ledger:5432"
 * Both sides' rules follow from each entry: an ingress rule on the targets
 * when their namespace is isolated (namespace or strict), an egress rule on
 * the caller when its namespace is strict. Where nothing is isolated by
 * isolation, nothing is generated, so a generated policy never isolates a
 * pod the operator left open; and since deny rules (ZeroTrustPolicy) win
 * over every allow, generated allows never weaken an explicit deny.
 */
#ifndef ZT_POLGEN_H
#define ZT_POLGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/selector.h"

#define ZT_ANN_ISOLATION "ztagent.io/isolation"
#define ZT_ANN_TALKS_TO "ztagent.io/talks-to"
#define ZT_GEN_MAX_TARGETS 64 /* entries of one talks-to */
#define ZT_GEN_MAX_SEL 16 /* labels of one target selector */
#define ZT_GEN_MAX_VALUE 8192 /* bytes of one annotation value */

enum zt_gen_iso {
	ZT_GEN_ISO_NONE = 0,
	ZT_GEN_ISO_NAMESPACE,
	ZT_GEN_ISO_STRICT,
};

struct zt_gen_target {
	char ns[ZT_DNS_LABEL_MAX + 1]; /* "": the caller's namespace */
	bool whole_ns; /* ns=NS alone: every pod of NS */
	char keys[ZT_GEN_MAX_SEL][ZT_LABEL_KEY_MAX + 1];
	char values[ZT_GEN_MAX_SEL][ZT_LABEL_NAME_MAX + 1];
	size_t n_sel;
	uint8_t proto; /* IPPROTO_TCP, _UDP, _SCTP; 0 with any_port */
	bool any_port;
	uint16_t port, end_port; /* numeric; end_port == port for one port */
	char port_name[16]; /* named port; "" when numeric */
};

/* "none" | "namespace" | "strict" -> 0; else -EINVAL with err naming the annotation. */
int zt_gen_iso_parse(const char *v, enum zt_gen_iso *out, char *err, size_t errlen);
const char *zt_gen_iso_name(enum zt_gen_iso iso);

/*
 * Parses a talks-to value. 0 and out[0..*n) filled; or -EINVAL with err
 * "ztagent.io/talks-to: entry N (column C) 'TEXT': why" (N and C 1-based),
 * -E2BIG over ZT_GEN_MAX_TARGETS entries or ZT_GEN_MAX_VALUE bytes.
 */
int zt_gen_talks_to_parse(const char *v, struct zt_gen_target *out, size_t max, size_t *n,
			  char *err, size_t errlen);

/*
 * Checks an annotation as an operator or the Kubernetes watch sets it:
 * a known ztagent.io/ key with a valid value (0), another ztagent.io/ key
 * (-EINVAL: only isolation and talks-to exist), or any other key (-ENOENT:
 * not ours; the caller ignores it).
 */
int zt_gen_annotation_check(const char *key, const char *value, bool on_namespace, char *err,
			    size_t errlen);

struct zt_gen_ns {
	const char *name;
	enum zt_gen_iso iso;
};

struct zt_gen_pod {
	const char *ns;
	const char *name;
	const struct zt_label *labels;
	size_t n_labels;
	const char *talks_to; /* NULL or "": none */
};

/*
 * The policy YAML (malloc'ed, NUL-terminated; "" when nothing is generated)
 * for these namespaces and pods; namespaces not listed are isolation none.
 * Output is the same for the same input in any order. A pod whose talks-to
 * does not parse, or that has no labels (a selector could not name it), is
 * skipped: each such problem is one line in problems (may be NULL), and the
 * rest is generated. 0 or -ENOMEM.
 */
int zt_polgen(const struct zt_gen_ns *nss, size_t n_ns, const struct zt_gen_pod *pods,
	      size_t n_pods, char **yaml, char *problems, size_t plen);

#endif
