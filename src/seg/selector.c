// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <string.h>

#include "seg/selector.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int bad(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EINVAL;
}

const char *zt_labels_get(const struct zt_labels *ls, const char *key)
{
	for (size_t i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].key, key) == 0)
			return ls->v[i].value;
	return NULL;
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? over s[0..n). */
static bool name_chars_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* One RFC 1123 label over s[0..n): [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_label_ok(const char *s, size_t n)
{
	if (n == 0 || n > ZT_DNS_LABEL_MAX || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool dns_subdomain_ok(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > ZT_DNS_SUBDOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!dns_label_ok(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

int zt_dns_label_check(const char *s, const char **why)
{
	size_t n = strlen(s);

	if (n == 0)
		return bad(why, "must not be empty");
	if (n > ZT_DNS_LABEL_MAX)
		return bad(why, "must be at most 63 characters");
	if (!dns_label_ok(s, n))
		return bad(why, "must be lowercase letters, digits and '-', starting and ending "
				"with a letter or digit");
	return 0;
}

int zt_dns_subdomain_check(const char *s, const char **why)
{
	size_t n = strlen(s);

	if (n == 0)
		return bad(why, "must not be empty");
	if (n > ZT_DNS_SUBDOMAIN_MAX)
		return bad(why, "must be at most 253 characters");
	if (!dns_subdomain_ok(s, n))
		return bad(why,
			   "must be lowercase letters, digits, '-' and '.', each dot-separated "
			   "part starting and ending with a letter or digit");
	return 0;
}

int zt_label_key_check(const char *key, const char **why)
{
	const char *slash = strchr(key, '/');
	const char *name = key;
	size_t n;

	if (!*key)
		return bad(why, "must not be empty");
	if (slash) {
		size_t plen = (size_t)(slash - key);

		if (strchr(slash + 1, '/'))
			return bad(why, "may contain at most one '/' (prefix/name)");
		if (plen == 0)
			return bad(why, "has an empty prefix before '/'");
		if (plen > ZT_LABEL_PREFIX_MAX)
			return bad(why, "has a prefix longer than 253 characters");
		if (!dns_subdomain_ok(key, plen))
			return bad(why,
				   "has a prefix that is not a DNS subdomain (lowercase letters, "
				   "digits, '-' and '.', e.g. app.example.com)");
		name = slash + 1;
	}
	n = strlen(name);
	if (n == 0)
		return bad(why, "has an empty name after '/'");
	if (n > ZT_LABEL_NAME_MAX)
		return bad(why, "has a name longer than 63 characters");
	if (!name_chars_ok(name, n))
		return bad(why, "must be letters, digits, '-', '_' and '.', starting and ending "
				"with a letter or digit (with an optional DNS prefix and '/')");
	return 0;
}

int zt_label_value_check(const char *value, const char **why)
{
	size_t n = strlen(value);

	if (n == 0)
		return 0;
	if (n > ZT_LABEL_NAME_MAX)
		return bad(why, "must be at most 63 characters");
	if (!name_chars_ok(value, n))
		return bad(why, "must be empty or letters, digits, '-', '_' and '.', starting and "
				"ending with a letter or digit");
	return 0;
}

int zt_labels_check(const struct zt_labels *ls, size_t *badi, const char **why)
{
	for (size_t i = 0; i < ls->n; i++) {
		int r = zt_label_key_check(ls->v[i].key, why);

		if (r == 0)
			r = zt_label_value_check(ls->v[i].value, why);
		for (size_t j = 0; r == 0 && j < i; j++)
			if (strcmp(ls->v[i].key, ls->v[j].key) == 0)
				r = bad(why, "is listed twice");
		if (r < 0) {
			if (badi)
				*badi = i;
			return r;
		}
	}
	return 0;
}

static const char *const op_names[] = {
	[ZT_SEL_IN] = "In",
	[ZT_SEL_NOT_IN] = "NotIn",
	[ZT_SEL_EXISTS] = "Exists",
	[ZT_SEL_DOES_NOT_EXIST] = "DoesNotExist",
};

int zt_sel_op_parse(const char *s, enum zt_sel_op *out)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(s, op_names[i]) == 0) {
			*out = (enum zt_sel_op)i;
			return 0;
		}
	return -EINVAL;
}

const char *zt_sel_op_name(enum zt_sel_op op)
{
	if ((size_t)op >= sizeof(op_names) / sizeof(op_names[0]))
		return "?";
	return op_names[op];
}

/* Where a selector looks values up: a label set, optionally with one implied label. */
struct view {
	const struct zt_labels *labels;
	const char *implied_key; /* wins over labels (NULL: none) */
	const char *implied_value;
};

static const char *view_get(const struct view *v, const char *key)
{
	if (v->implied_key && strcmp(key, v->implied_key) == 0)
		return v->implied_value;
	return zt_labels_get(v->labels, key);
}

static bool in_values(const struct zt_sel_expr *e, const char *val)
{
	for (size_t i = 0; i < e->n_values; i++)
		if (strcmp(e->values[i], val) == 0)
			return true;
	return false;
}

static bool match_view(const struct zt_selector *s, const struct view *v)
{
	for (size_t i = 0; i < s->match_labels.n; i++) {
		const char *val = view_get(v, s->match_labels.v[i].key);

		if (!val || strcmp(val, s->match_labels.v[i].value) != 0)
			return false;
	}
	for (size_t i = 0; i < s->n_exprs; i++) {
		const struct zt_sel_expr *e = &s->exprs[i];
		const char *val = view_get(v, e->key);

		switch (e->op) {
		case ZT_SEL_IN:
			if (!val || !in_values(e, val))
				return false;
			break;
		case ZT_SEL_NOT_IN:
			if (val && in_values(e, val))
				return false;
			break;
		case ZT_SEL_EXISTS:
			if (!val)
				return false;
			break;
		case ZT_SEL_DOES_NOT_EXIST:
			if (val)
				return false;
			break;
		default:
			return false; /* an operator we do not know selects nothing */
		}
	}
	return true;
}

bool zt_selector_matches(const struct zt_selector *s, const struct zt_labels *labels)
{
	struct view v = { .labels = labels };

	return match_view(s, &v);
}

bool zt_ns_selector_matches(const struct zt_selector *s, const char *ns,
			    const struct zt_labels *ns_labels)
{
	struct view v = { .labels = ns_labels,
			  .implied_key = ZT_NS_NAME_LABEL,
			  .implied_value = ns };

	return match_view(s, &v);
}

bool zt_peer_selects(const struct zt_selector *pod_sel, const struct zt_selector *ns_sel,
		     const char *policy_ns, const struct zt_label_set *w)
{
	if (!pod_sel && !ns_sel)
		return false;
	if (ns_sel) {
		if (!zt_ns_selector_matches(ns_sel, w->namespace, &w->ns_labels))
			return false;
	} else if (strcmp(w->namespace, policy_ns) != 0) {
		return false;
	}
	return !pod_sel || zt_selector_matches(pod_sel, &w->labels);
}
