/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Label sets and Kubernetes label selectors.
 *
 * A workload is seen by policy as a label set: its namespace, its own labels
 * and its namespace's labels. A selector is matchLabels AND matchExpressions
 * (every term must hold); a selector with no terms ({}) matches everything.
 *
 *   In            the key is present and its value is one of values
 *   NotIn         the key is absent, or its value is none of values
 *   Exists        the key is present (any value, "" included)
 *   DoesNotExist  the key is absent
 *
 * A namespace always carries the label kubernetes.io/metadata.name=<its name>
 * (the API server sets it and nobody can change it), so namespace selectors
 * see it whether or not the caller listed it.
 *
 * Nothing here allocates: every struct points at storage its owner keeps
 * (a policy set, an endpoint table, a test's static arrays).
 */
#ifndef ZT_SELECTOR_H
#define ZT_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#define ZT_NS_NAME_LABEL "kubernetes.io/metadata.name"

#define ZT_LABEL_NAME_MAX 63 /* the name part of a key, and a value */
#define ZT_LABEL_PREFIX_MAX 253 /* the optional DNS-subdomain prefix of a key */
#define ZT_LABEL_KEY_MAX (ZT_LABEL_PREFIX_MAX + 1 + ZT_LABEL_NAME_MAX)
#define ZT_DNS_LABEL_MAX 63 /* namespace names */
#define ZT_DNS_SUBDOMAIN_MAX 253 /* object names */

struct zt_label {
	const char *key;
	const char *value; /* "" is a valid value */
};

/* Keys are unique within a set; order does not matter. */
struct zt_labels {
	const struct zt_label *v;
	size_t n;
};

enum zt_sel_op {
	ZT_SEL_IN = 0,
	ZT_SEL_NOT_IN,
	ZT_SEL_EXISTS,
	ZT_SEL_DOES_NOT_EXIST,
};

struct zt_sel_expr {
	const char *key;
	enum zt_sel_op op;
	const char *const *values; /* In/NotIn: at least one; Exists/DoesNotExist: none */
	size_t n_values;
};

struct zt_selector {
	struct zt_labels match_labels;
	const struct zt_sel_expr *exprs;
	size_t n_exprs;
};

/* What a selector can see of a workload. */
struct zt_label_set {
	const char *namespace;
	struct zt_labels labels; /* the pod's labels */
	struct zt_labels ns_labels; /* its namespace's labels (metadata.name is implied) */
};

/* The value of key, or NULL when the key is absent. */
const char *zt_labels_get(const struct zt_labels *ls, const char *key);

/*
 * Syntax checks, as the Kubernetes API server makes them. Each returns 0, or
 * -EINVAL and points *why (may be NULL) at a static sentence saying what is
 * wrong, fit to follow "label key 'x': ".
 *
 * Key: [DNS-subdomain prefix '/'] name; name 1-63 characters of
 * [A-Za-z0-9-_.], starting and ending with a letter or digit.
 * Value: empty, or 1-63 characters with the same rule as a name.
 */
int zt_label_key_check(const char *key, const char **why);
int zt_label_value_check(const char *value, const char **why);
/* RFC 1123 label (namespace names): 1-63 of [a-z0-9-], alphanumeric at both ends. */
int zt_dns_label_check(const char *s, const char **why);
/* RFC 1123 subdomain (object names): 1-253, dot-separated labels of [a-z0-9-]. */
int zt_dns_subdomain_check(const char *s, const char **why);
/*
 * A whole label set: every key and value valid, no key twice. On failure
 * *bad (may be NULL) is the index of the offending label.
 */
int zt_labels_check(const struct zt_labels *ls, size_t *bad, const char **why);

/* "In" | "NotIn" | "Exists" | "DoesNotExist" (case-sensitive) -> 0, else -EINVAL. */
int zt_sel_op_parse(const char *s, enum zt_sel_op *out);
const char *zt_sel_op_name(enum zt_sel_op op);

static inline bool zt_selector_is_empty(const struct zt_selector *s)
{
	return s->match_labels.n == 0 && s->n_exprs == 0;
}

/* Does s select a workload with these labels? */
bool zt_selector_matches(const struct zt_selector *s, const struct zt_labels *labels);
/* Does s select namespace ns with these labels (plus kubernetes.io/metadata.name=ns)? */
bool zt_ns_selector_matches(const struct zt_selector *s, const char *ns,
			    const struct zt_labels *ns_labels);

/*
 * One NetworkPolicy peer of the selector kind, seen from a policy in
 * policy_ns:
 *   pod only        pods matching pod_sel in policy_ns
 *   namespace only  every pod in namespaces matching ns_sel
 *   both            pods matching pod_sel in namespaces matching ns_sel (AND)
 * NULL means the field is absent; an empty selector is present and matches
 * all. Both NULL never matches (the parser refuses such a peer).
 */
bool zt_peer_selects(const struct zt_selector *pod_sel, const struct zt_selector *ns_sel,
		     const char *policy_ns, const struct zt_label_set *w);

#endif
