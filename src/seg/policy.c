// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy parser. Each YAML document is first read into a small tree (so
 * fields can come in any order and every node keeps its line and column),
 * then converted into the model of policy.h, checking as Kubernetes does.
 * The tree lives in a per-document arena; the model in the set's arena.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "seg/policy_yaml.h"

/* ---- selectors -------------------------------------------------------- */

/* A label map (matchLabels, metadata.labels) or annotations (any string values). */
static int conv_label_map(struct loader *l, const struct ynode *n, struct zt_labels *out,
			  bool annotations)
{
	struct zt_label *v = NULL;
	size_t i = 0;
	int r;

	if (n->type == Y_SCALAR && n->stype == YS_NULL)
		return 0;
	r = yt_expect(l, n, Y_MAP, "a mapping of label keys to values");
	if (r < 0)
		return r;
	if (n->nchild / 2 > ZT_POL_MAX_LABELS)
		return yt_fail(l, &n->pos, -E2BIG, "more than %d entries", ZT_POL_MAX_LABELS);
	if (out && n->nchild) {
		v = zt_pol_arena_array(l->set->arena, n->nchild / 2, sizeof(*v));
		if (!v)
			return yt_nomem(l);
	}
	for (const struct ynode *k = n->first; k; k = k->next->next, i++) {
		const struct ynode *val = k->next;
		size_t old = yt_path_key(l, k->s);
		const char *why, *s = "";

		r = zt_label_key_check(k->s, &why);
		if (r < 0) {
			r = yt_fail(l, &k->pos, -EINVAL, "%s key '%s' %s",
				    annotations ? "annotation" : "label", SHOW(k->s), why);
		} else if (val->type == Y_SCALAR && val->stype == YS_NULL && !annotations) {
			r = yt_fail(l, &val->pos, -EINVAL,
				    "label value is missing; write '' for an empty value");
		} else {
			r = yt_get_string(l, val, &s);
			if (r == 0 && !annotations && zt_label_value_check(s, &why) < 0)
				r = yt_fail(l, &val->pos, -EINVAL, "label value '%s' %s", SHOW(s),
					    why);
		}
		yt_path_set(l, old);
		if (r < 0)
			return r;
		if (v) {
			v[i].key = yt_keep(l, k->s);
			v[i].value = yt_keep(l, s);
			if (!v[i].key || !v[i].value)
				return yt_nomem(l);
		}
	}
	if (out) {
		out->v = v;
		out->n = i;
	}
	return 0;
}

static int conv_expr(struct loader *l, const struct ynode *n, struct zt_sel_expr *e)
{
	static const char *const fields[] = { "key", "operator", "values", NULL };
	const struct ynode *k, *op, *vals;
	const char **values = NULL;
	const char *s = "", *why = "";
	size_t old, i = 0;
	int r;

	r = yt_expect(l, n, Y_MAP, "a mapping with key, operator and values");
	if (r == 0)
		r = yt_check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	k = yt_map_get(n, "key");
	op = yt_map_get(n, "operator");
	vals = yt_map_get_set(n, "values");
	if (!k)
		return yt_missing(l, n, "key", NULL);
	if (!op)
		return yt_missing(l, n, "operator", "one of In, NotIn, Exists, DoesNotExist");

	old = yt_path_key(l, "key");
	r = yt_get_string(l, k, &s);
	if (r == 0 && zt_label_key_check(s, &why) < 0)
		r = yt_fail(l, &k->pos, -EINVAL, "label key '%s' %s", SHOW(s), why);
	yt_path_set(l, old);
	if (r < 0)
		return r;
	e->key = yt_keep(l, s);
	if (!e->key)
		return yt_nomem(l);

	old = yt_path_key(l, "operator");
	r = yt_get_string(l, op, &s);
	if (r == 0 && zt_sel_op_parse(s, &e->op) < 0)
		r = yt_fail(l, &op->pos, -EINVAL,
			    "'%s' is not an operator; expected In, NotIn, Exists or DoesNotExist",
			    SHOW(s));
	yt_path_set(l, old);
	if (r < 0)
		return r;

	old = yt_path_key(l, "values");
	if (vals) {
		r = yt_expect(l, vals, Y_SEQ, "a list of values");
		if (r == 0 && vals->nchild > ZT_POL_MAX_VALUES)
			r = yt_fail(l, &vals->pos, -E2BIG, "more than %d values",
				    ZT_POL_MAX_VALUES);
		if (r == 0 && vals->nchild) {
			values = zt_pol_arena_array(l->set->arena, vals->nchild, sizeof(*values));
			if (!values)
				r = yt_nomem(l);
		}
		for (const struct ynode *v = r == 0 ? vals->first : NULL; v; v = v->next, i++) {
			size_t o2 = yt_path_idx(l, i);

			r = yt_get_string(l, v, &s);
			if (r == 0 && zt_label_value_check(s, &why) < 0)
				r = yt_fail(l, &v->pos, -EINVAL, "label value '%s' %s", SHOW(s),
					    why);
			if (r == 0) {
				values[i] = yt_keep(l, s);
				if (!values[i])
					r = yt_nomem(l);
			}
			yt_path_set(l, o2);
			if (r < 0)
				break;
		}
	}
	if (r == 0 && (e->op == ZT_SEL_IN || e->op == ZT_SEL_NOT_IN) && i == 0)
		r = yt_fail(l, vals ? &vals->pos : &n->pos, -EINVAL,
			    "operator %s needs at least one value", zt_sel_op_name(e->op));
	if (r == 0 && (e->op == ZT_SEL_EXISTS || e->op == ZT_SEL_DOES_NOT_EXIST) && i > 0)
		r = yt_fail(l, &vals->pos, -EINVAL, "operator %s takes no values; remove them",
			    zt_sel_op_name(e->op));
	yt_path_set(l, old);
	if (r < 0)
		return r;
	e->values = values;
	e->n_values = i;
	return 0;
}

/* Converts one element of a list (conv_each) into ELEM; ARG: the caller's context. */
typedef int (*conv_elem_fn)(struct loader *l, const struct ynode *e, void *elem, const void *arg);

/*
 * The list N (absent: NULL) under KEY of the path: a sequence (WHAT says of
 * what, for the message) of at most MAX elements, each converted by FN into
 * an arena array of SIZE-byte elements. *out and *count stay NULL and 0 when
 * the list is absent or empty, and on an error.
 */
static int conv_each(struct loader *l, const struct ynode *n, const char *key, const char *what,
		     size_t max, const char *unit, size_t size, conv_elem_fn fn, const void *arg,
		     void **out, size_t *count)
{
	char *v = NULL;
	size_t old, i = 0;
	int r;

	*out = NULL;
	*count = 0;
	if (!n)
		return 0;
	old = yt_path_key(l, key);
	r = yt_expect(l, n, Y_SEQ, what);
	if (r == 0 && n->nchild > max)
		r = yt_fail(l, &n->pos, -E2BIG, "more than %zu %s", max, unit);
	if (r == 0 && n->nchild) {
		v = zt_pol_arena_array(l->set->arena, n->nchild, size);
		if (!v)
			r = yt_nomem(l);
	}
	for (const struct ynode *e = r == 0 ? n->first : NULL; e && r == 0; e = e->next, i++) {
		size_t o2 = yt_path_idx(l, i);

		r = fn(l, e, v + i * size, arg);
		yt_path_set(l, o2);
	}
	yt_path_set(l, old);
	if (r < 0)
		return r;
	*out = v;
	*count = i;
	return 0;
}

static int conv_expr_elem(struct loader *l, const struct ynode *e, void *elem, const void *arg)
{
	(void)arg;
	return conv_expr(l, e, elem);
}

static int conv_selector(struct loader *l, const struct ynode *n, struct zt_selector *out)
{
	static const char *const fields[] = { "matchLabels", "matchExpressions", NULL };
	const struct ynode *ml, *me;
	void *v;
	size_t old;
	int r;

	r = yt_expect(l, n, Y_MAP,
		      "a label selector (a mapping with matchLabels and/or "
		      "matchExpressions; {} selects all)");
	if (r == 0)
		r = yt_check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	ml = yt_map_get(n, "matchLabels");
	me = yt_map_get_set(n, "matchExpressions");
	if (ml) {
		old = yt_path_key(l, "matchLabels");
		r = conv_label_map(l, ml, &out->match_labels, false);
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}
	r = conv_each(l, me, "matchExpressions", "a list of {key, operator, values}",
		      ZT_POL_MAX_EXPRS, "expressions", sizeof(*out->exprs), conv_expr_elem, NULL,
		      &v, &out->n_exprs);
	out->exprs = v;
	return r;
}

/* A selector field that may be absent (NULL) or present ({} = all). */
static int conv_opt_selector(struct loader *l, const struct ynode *parent, const char *key,
			     const struct zt_selector **out)
{
	const struct ynode *n = yt_map_get_set(parent, key);
	struct zt_selector *s;
	size_t old;
	int r;

	*out = NULL;
	if (!n)
		return 0;
	s = zt_pol_arena_alloc(l->set->arena, sizeof(*s));
	if (!s)
		return yt_nomem(l);
	old = yt_path_key(l, key);
	r = conv_selector(l, n, s);
	yt_path_set(l, old);
	if (r == 0)
		*out = s;
	return r;
}

/* ---- peers and ports -------------------------------------------------- */

static int conv_cidr(struct loader *l, const struct ynode *n, struct zt_cidr *out)
{
	char fixed[ZT_CIDR_STRLEN];
	bool host_bits = false;
	const char *s = "";
	int r;

	r = yt_get_string(l, n, &s);
	if (r < 0)
		return r;
	if (!strchr(s, '/'))
		return yt_fail(
			l, &n->pos, -EINVAL,
			"'%s' is not a CIDR; write ADDRESS/PREFIX, e.g. 10.0.0.0/8 (or %s/%s "
			"for one address)",
			SHOW(s), SHOW(s), strchr(s, ':') ? "128" : "32");
	if (zt_cidr_parse(s, out, &host_bits) < 0)
		return yt_fail(
			l, &n->pos, -EINVAL,
			"'%s' is not a valid CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)",
			SHOW(s));
	if (host_bits) {
		if (zt_cidr_format(out, fixed, sizeof(fixed)) < 0)
			fixed[0] = '\0';
		return yt_fail(l, &n->pos, -EINVAL,
			       "'%s' has address bits set past the prefix length; did you mean %s?",
			       SHOW(s), fixed);
	}
	return 0;
}

/* One entry of ipBlock.except: a CIDR strictly inside ARG's (the peer's) cidr. */
static int conv_except_elem(struct loader *l, const struct ynode *e, void *elem, const void *arg)
{
	const struct zt_pol_peer *p = arg;
	struct zt_cidr *x = elem;
	char cidr_s[ZT_CIDR_STRLEN];
	int r = conv_cidr(l, e, x);

	if (r < 0)
		return r;
	if (zt_cidr_format(&p->cidr, cidr_s, sizeof(cidr_s)) < 0)
		cidr_s[0] = '\0';
	if (x->family != p->cidr.family)
		return yt_fail(l, &e->pos, -EINVAL, "'%s' is %s but cidr %s is %s", SHOW(e->s),
			       x->family == AF_INET ? "IPv4" : "IPv6", cidr_s,
			       p->cidr.family == AF_INET ? "IPv4" : "IPv6");
	if (x->prefixlen <= p->cidr.prefixlen || !zt_cidr_contains(&p->cidr, x->addr))
		return yt_fail(l, &e->pos, -EINVAL,
			       "'%s' is not strictly inside cidr %s; except may only cut "
			       "holes in it",
			       SHOW(e->s), cidr_s);
	return 0;
}

static int conv_ipblock(struct loader *l, const struct ynode *n, struct zt_pol_peer *p)
{
	static const char *const fields[] = { "cidr", "except", NULL };
	const struct ynode *c, *ex;
	void *v;
	size_t old;
	int r;

	r = yt_expect(l, n, Y_MAP, "a mapping with cidr and except");
	if (r == 0)
		r = yt_check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	c = yt_map_get(n, "cidr");
	if (!c)
		return yt_missing(l, n, "cidr", "e.g. cidr: 10.0.0.0/8");
	old = yt_path_key(l, "cidr");
	r = conv_cidr(l, c, &p->cidr);
	yt_path_set(l, old);
	if (r < 0)
		return r;
	ex = yt_map_get_set(n, "except");
	r = conv_each(l, ex, "except", "a list of CIDRs", ZT_POL_MAX_EXCEPT, "entries",
		      sizeof(*p->except), conv_except_elem, p, &v, &p->n_except);
	p->except = v;
	return r;
}

/* serviceAccounts: ["NAMESPACE/NAME", ...], each part a DNS subdomain name. */
static int conv_service_accounts(struct loader *l, const struct ynode *n, struct zt_pol_peer *p)
{
	const char **v = NULL;
	size_t i = 0;
	int r;

	r = yt_expect(l, n, Y_SEQ, "a list of NAMESPACE/NAME service accounts");
	if (r == 0 && (n->nchild == 0 || n->nchild > ZT_POL_MAX_PEERS))
		r = yt_fail(l, &n->pos, -EINVAL, "expected 1 to %d service accounts",
			    ZT_POL_MAX_PEERS);
	if (r == 0) {
		v = zt_pol_arena_array(l->set->arena, n->nchild, sizeof(*v));
		if (!v)
			r = yt_nomem(l);
	}
	for (const struct ynode *e = r == 0 ? n->first : NULL; e; e = e->next, i++) {
		size_t o2 = yt_path_idx(l, i);
		const char *s = "", *slash, *why = "";
		char ns[ZT_POL_SA_PART_MAX + 1];

		r = yt_get_string(l, e, &s);
		slash = r == 0 ? strchr(s, '/') : NULL;
		if (r == 0 && (!slash || (size_t)(slash - s) > ZT_POL_SA_PART_MAX))
			r = yt_fail(l, &e->pos, -EINVAL,
				    "'%s' is not NAMESPACE/NAME (e.g. prod/web)", SHOW(s));
		if (r == 0) {
			memcpy(ns, s, (size_t)(slash - s));
			ns[slash - s] = '\0';
			if (zt_dns_subdomain_check(ns, &why) < 0 ||
			    zt_dns_subdomain_check(slash + 1, &why) < 0)
				r = yt_fail(l, &e->pos, -EINVAL, "'%s': a name %s", SHOW(s), why);
		}
		if (r == 0 && !(v[i] = yt_keep(l, s)))
			r = yt_nomem(l);
		yt_path_set(l, o2);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	p->type = ZT_PEER_SERVICE_ACCOUNTS;
	p->service_accounts = v;
	p->n_service_accounts = i;
	return 0;
}

static int conv_peer(struct loader *l, const struct ynode *n, enum zt_pol_dir dir,
		     struct zt_pol_peer *p)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	static const char *const zt_fields[] = { "podSelector", "namespaceSelector", "ipBlock",
						 "serviceAccounts", NULL };
	const struct ynode *ps, *ns, *ib, *sa;
	size_t old;
	int r;

	r = yt_expect(l, n, Y_MAP, "a peer (podSelector, namespaceSelector or ipBlock)");
	if (r == 0)
		r = yt_check_fields(l, n, l->kind == ZT_POL_ZERO_TRUST_POLICY ? zt_fields : fields,
				    NULL);
	if (r < 0)
		return r;
	p->pos = n->pos;
	ps = yt_map_get_set(n, "podSelector");
	ns = yt_map_get_set(n, "namespaceSelector");
	ib = yt_map_get_set(n, "ipBlock");
	sa = yt_map_get_set(n, "serviceAccounts");
	if (sa) {
		old = yt_path_key(l, "serviceAccounts");
		if (ps || ns || ib)
			r = yt_fail(l, &sa->pos, -EINVAL,
				    "serviceAccounts cannot share a peer with podSelector, "
				    "namespaceSelector or ipBlock; make them separate list items");
		else
			r = conv_service_accounts(l, sa, p);
		yt_path_set(l, old);
		return r;
	}
	if (!ps && !ns && !ib)
		return yt_fail(l, &n->pos, -EINVAL,
			       "a peer needs podSelector, namespaceSelector or ipBlock; to match "
			       "every %s, leave '%s' out or write %s: []",
			       dir == ZT_POL_INGRESS ? "source" : "destination",
			       dir == ZT_POL_INGRESS ? "from" : "to",
			       dir == ZT_POL_INGRESS ? "from" : "to");
	if (ib && (ps || ns)) {
		old = yt_path_key(l, "ipBlock");
		r = yt_fail(l, &ib->pos, -EINVAL,
			    "ipBlock cannot share a peer with podSelector or namespaceSelector; "
			    "make them separate list items");
		yt_path_set(l, old);
		return r;
	}
	if (ib) {
		p->type = ZT_PEER_IPBLOCK;
		old = yt_path_key(l, "ipBlock");
		r = conv_ipblock(l, ib, p);
		yt_path_set(l, old);
		return r;
	}
	p->type = ZT_PEER_SELECTOR;
	r = conv_opt_selector(l, n, "podSelector", &p->pod_selector);
	if (r == 0)
		r = conv_opt_selector(l, n, "namespaceSelector", &p->namespace_selector);
	return r;
}

/* IANA service name, as Kubernetes checks a named port. */
static const char *port_name_problem(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;

	if (n == 0)
		return "is empty";
	if (n > ZT_POL_PORT_NAME_MAX)
		return "is longer than 15 characters";
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '-'))
			return "may only hold lowercase letters, digits and '-'";
		if (c == '-' && (i == 0 || i == n - 1 || s[i + 1] == '-'))
			return "may not start or end with '-' or hold '--'";
	}
	if (!letter) {
		if (yt_all_digits(s))
			return "is quoted, so it reads as a port name; write the number without "
			       "quotes";
		return "must contain at least one letter";
	}
	return NULL;
}

static int conv_port(struct loader *l, const struct ynode *n, struct zt_pol_port *pp)
{
	static const char *const fields[] = { "protocol", "port", "endPort", NULL };
	const struct ynode *proto, *port, *end;
	size_t old;
	uint64_t v = 0;
	int r;

	r = yt_expect(l, n, Y_MAP, "a mapping with protocol, port and endPort");
	if (r == 0)
		r = yt_check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	pp->pos = n->pos;
	pp->protocol = IPPROTO_TCP;
	proto = yt_map_get_set(n, "protocol");
	port = yt_map_get_set(n, "port");
	end = yt_map_get_set(n, "endPort");
	if (proto) {
		const char *s = "";

		old = yt_path_key(l, "protocol");
		r = yt_get_string(l, proto, &s);
		if (r == 0) {
			if (!strcmp(s, "TCP"))
				pp->protocol = IPPROTO_TCP;
			else if (!strcmp(s, "UDP"))
				pp->protocol = IPPROTO_UDP;
			else if (!strcmp(s, "SCTP"))
				pp->protocol = IPPROTO_SCTP;
			else
				r = yt_fail(l, &proto->pos, -EINVAL,
					    "'%s' is not a protocol; expected TCP, UDP or SCTP "
					    "(uppercase)",
					    SHOW(s));
		}
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}
	if (port) {
		old = yt_path_key(l, "port");
		if (port->type == Y_SCALAR && port->stype == YS_STR) {
			const char *why = port_name_problem(port->s);

			if (why)
				r = yt_fail(l, &port->pos, -EINVAL, "port name '%s' %s",
					    SHOW(port->s), why);
			else if (!(pp->name = yt_keep(l, port->s)))
				r = yt_nomem(l);
		} else {
			r = yt_get_uint(l, port, 1, 65535, &v);
			pp->port = pp->end_port = (uint16_t)v;
		}
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}
	if (end) {
		old = yt_path_key(l, "endPort");
		if (!port)
			r = yt_fail(l, &end->pos, -EINVAL,
				    "endPort needs a numeric port to start from");
		else if (pp->name)
			r = yt_fail(l, &end->pos, -EINVAL,
				    "endPort needs a numeric port, not the named port '%s'",
				    SHOW(pp->name));
		else
			r = yt_get_uint(l, end, 1, 65535, &v);
		if (r == 0 && v < pp->port)
			r = yt_fail(l, &end->pos, -EINVAL, "endPort %llu is below port %u",
				    (unsigned long long)v, pp->port);
		if (r == 0)
			pp->end_port = (uint16_t)v;
		yt_path_set(l, old);
	}
	return r;
}

/* ---- rules, spec, document -------------------------------------------- */

static int conv_peer_elem(struct loader *l, const struct ynode *e, void *elem, const void *arg)
{
	return conv_peer(l, e, *(const enum zt_pol_dir *)arg, elem);
}

static int conv_port_elem(struct loader *l, const struct ynode *e, void *elem, const void *arg)
{
	(void)arg;
	return conv_port(l, e, elem);
}

static int conv_rule(struct loader *l, const struct ynode *n, enum zt_pol_dir dir,
		     struct zt_pol_rule *rule)
{
	static const char *const np_in[] = { "from", "ports", NULL };
	static const char *const np_eg[] = { "to", "ports", NULL };
	static const char *const zt_in[] = {
		"action", "from", "ports", "requireTLS", "requireMutualAuth", NULL
	};
	static const char *const zt_eg[] = {
		"action", "to", "ports", "requireTLS", "requireMutualAuth", NULL
	};
	static const char *const flags[] = { "requireTLS", "requireMutualAuth" };
	bool ztp = l->kind == ZT_POL_ZERO_TRUST_POLICY;
	const char *peers_key = dir == ZT_POL_INGRESS ? "from" : "to";
	const struct ynode *v;
	void *vp;
	size_t old, i;
	int r;

	r = yt_expect(l, n, Y_MAP, "a rule (a mapping; {} is a rule that matches everything)");
	if (r < 0)
		return r;
	/* The likeliest slip: the other direction's word for peers. */
	for (const struct ynode *k = n->first; k; k = k->next->next) {
		if (strcmp(k->s, dir == ZT_POL_INGRESS ? "to" : "from") != 0)
			continue;
		old = yt_path_key(l, k->s);
		r = yt_fail(l, &k->pos, -EINVAL, "unknown field; %s rules name their %s in '%s'",
			    zt_pol_dir_name(dir),
			    dir == ZT_POL_INGRESS ? "sources" : "destinations", peers_key);
		yt_path_set(l, old);
		return r;
	}
	r = yt_check_fields(l, n,
			    ztp ? (dir == ZT_POL_INGRESS ? zt_in : zt_eg) :
				  (dir == ZT_POL_INGRESS ? np_in : np_eg),
			    NULL);
	if (r < 0)
		return r;
	rule->dir = dir;
	rule->pos = n->pos;
	rule->action = ZT_RULE_ALLOW;
	if (ztp) {
		const char *s = "";

		v = yt_map_get(n, "action");
		if (!v)
			return yt_missing(l, n, "action", "allow or deny");
		old = yt_path_key(l, "action");
		r = yt_get_string(l, v, &s);
		if (r == 0) {
			if (!strcmp(s, "allow"))
				rule->action = ZT_RULE_ALLOW;
			else if (!strcmp(s, "deny"))
				rule->action = ZT_RULE_DENY;
			else
				r = yt_fail(l, &v->pos, -EINVAL, "expected allow or deny, got '%s'",
					    SHOW(s));
		}
		yt_path_set(l, old);
		if (r < 0)
			return r;
		for (i = 0; i < 2; i++) {
			bool b = false;

			v = yt_map_get(n, flags[i]);
			if (!v)
				continue;
			old = yt_path_key(l, flags[i]);
			r = yt_get_bool(l, v, &b);
			if (r == 0 && b && rule->action == ZT_RULE_DENY)
				r = yt_fail(l, &v->pos, -EINVAL,
					    "applies to allow rules only; a denied connection "
					    "never gets that far");
			yt_path_set(l, old);
			if (r < 0)
				return r;
			if (i == 0)
				rule->require_tls = b;
			else
				rule->require_mutual_auth = b;
		}
	}

	r = conv_each(l, yt_map_get_set(n, peers_key), peers_key, "a list", ZT_POL_MAX_PEERS,
		      "entries", sizeof(*rule->peers), conv_peer_elem, &dir, &vp, &rule->n_peers);
	rule->peers = vp;
	for (i = 0; r == 0 && i < rule->n_peers; i++) {
		if (rule->peers[i].type != ZT_PEER_SERVICE_ACCOUNTS)
			continue;
		/* An identity is only known through mTLS. */
		if (rule->action == ZT_RULE_DENY)
			r = yt_fail(l, &rule->peers[i].pos, -EINVAL,
				    "serviceAccounts peers are for allow rules: an identity "
				    "is proven only on a connection the tunnel carries");
		rule->require_mutual_auth = true;
	}
	if (r < 0)
		return r;
	r = conv_each(l, yt_map_get_set(n, "ports"), "ports", "a list", ZT_POL_MAX_PORTS, "entries",
		      sizeof(*rule->ports), conv_port_elem, NULL, &vp, &rule->n_ports);
	rule->ports = vp;
	return r;
}

static int conv_rule_elem(struct loader *l, const struct ynode *e, void *elem, const void *arg)
{
	return conv_rule(l, e, *(const enum zt_pol_dir *)arg, elem);
}

static int conv_policy_types(struct loader *l, const struct ynode *spec, struct zt_policy *p,
			     bool listed[ZT_POL_DIR_MAX])
{
	const struct ynode *n = yt_map_get_set(spec, "policyTypes");
	size_t old, i = 0;
	int r;

	if (!n)
		return 0;
	old = yt_path_key(l, "policyTypes");
	r = yt_expect(l, n, Y_SEQ, "a list: [Ingress], [Egress] or [Ingress, Egress]");
	for (const struct ynode *t = r == 0 ? n->first : NULL; t; t = t->next, i++) {
		size_t o2 = yt_path_idx(l, i);
		enum zt_pol_dir d = ZT_POL_INGRESS;
		const char *s = "";

		r = yt_get_string(l, t, &s);
		if (r == 0) {
			if (!strcmp(s, "Ingress"))
				d = ZT_POL_INGRESS;
			else if (!strcmp(s, "Egress"))
				d = ZT_POL_EGRESS;
			else
				r = yt_fail(l, &t->pos, -EINVAL,
					    "expected Ingress or Egress, got '%s'", SHOW(s));
		}
		if (r == 0 && listed[d])
			r = yt_fail(l, &t->pos, -EINVAL, "%s is listed twice", s);
		if (r == 0)
			listed[d] = true;
		yt_path_set(l, o2);
		if (r < 0)
			break;
	}
	yt_path_set(l, old);
	/* Kubernetes defaults an empty list exactly like an absent one. */
	p->policy_types_given = r == 0 && i > 0;
	return r;
}

static int conv_spec(struct loader *l, const struct ynode *spec, struct zt_policy *p)
{
	static const char *const np_fields[] = { "podSelector", "policyTypes", "ingress", "egress",
						 NULL };
	static const char *const zt_fields[] = { "podSelector", "mode",	  "policyTypes",
						 "ingress",	"egress", NULL };
	static const char *const dir_keys[ZT_POL_DIR_MAX] = { "ingress", "egress" };
	bool ztp = l->kind == ZT_POL_ZERO_TRUST_POLICY;
	bool listed[ZT_POL_DIR_MAX] = { false, false };
	const struct ynode *n;
	size_t old, total = 0;
	int r;

	r = yt_expect(l, spec, Y_MAP, "a mapping");
	if (r == 0)
		r = yt_check_fields(l, spec, ztp ? zt_fields : np_fields, NULL);
	if (r < 0)
		return r;

	n = yt_map_get_set(spec, "podSelector");
	if (n) {
		old = yt_path_key(l, "podSelector");
		r = conv_selector(l, n, &p->pod_selector);
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}

	p->mode = ZT_POL_ENFORCE;
	n = ztp ? yt_map_get(spec, "mode") : NULL;
	if (n) {
		const char *s = "";

		old = yt_path_key(l, "mode");
		r = yt_get_string(l, n, &s);
		if (r == 0) {
			if (!strcmp(s, "enforce"))
				p->mode = ZT_POL_ENFORCE;
			else if (!strcmp(s, "audit"))
				p->mode = ZT_POL_AUDIT;
			else
				r = yt_fail(l, &n->pos, -EINVAL,
					    "expected enforce or audit, got '%s'", SHOW(s));
		}
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}

	r = conv_policy_types(l, spec, p, listed);
	if (r < 0)
		return r;

	for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
		const struct ynode *list = yt_map_get_set(spec, dir_keys[d]);
		enum zt_pol_dir dir = (enum zt_pol_dir)d;
		struct zt_pol_rule *rules;
		void *v;

		r = conv_each(l, list, dir_keys[d], "a list", ZT_POL_MAX_RULES, "entries",
			      sizeof(*rules), conv_rule_elem, &dir, &v, &p->n_rules[d]);
		if (r < 0)
			return r;
		rules = v;
		p->rules[d] = rules;
		for (size_t i = 0; i < p->n_rules[d]; i++)
			rules[i].index = (unsigned int)i;
		total += p->n_rules[d];
		if (total > ZT_POL_MAX_RULES)
			return yt_fail(l, &list->pos, -E2BIG,
				       "more than %d rules in one policy; split it up",
				       ZT_POL_MAX_RULES);
	}

	for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
		bool any_allow = false;

		for (size_t i = 0; i < p->n_rules[d]; i++)
			any_allow |= p->rules[d][i].action == ZT_RULE_ALLOW;
		if (p->policy_types_given)
			p->isolates[d] = listed[d];
		else if (!ztp)
			/* Kubernetes: Ingress always, Egress when there are egress rules. */
			p->isolates[d] = d == ZT_POL_INGRESS || p->n_rules[d] > 0;
		else
			p->isolates[d] = any_allow;
		if (ztp && p->policy_types_given && !listed[d] && any_allow) {
			for (size_t i = 0; i < p->n_rules[d]; i++) {
				const struct zt_pol_rule *rule = &p->rules[d][i];

				if (rule->action != ZT_RULE_ALLOW)
					continue;
				old = yt_path_key(l, dir_keys[d]);
				yt_path_idx(l, i);
				r = yt_fail(
					l, &rule->pos, -EINVAL,
					"this allow rule would have no effect: policyTypes does "
					"not list %s; add it there, or leave policyTypes out",
					d == ZT_POL_INGRESS ? "Ingress" : "Egress");
				yt_path_set(l, old);
				return r;
			}
		}
	}
	return 0;
}

static int conv_metadata(struct loader *l, const struct ynode *m, struct zt_policy *p)
{
	static const char *const fields[] = { "name", "namespace", "labels", "annotations", NULL };
	const struct ynode *n;
	const char *s = "", *why = "";
	size_t old;
	int r;

	r = yt_expect(l, m, Y_MAP, "a mapping with name and namespace");
	if (r == 0)
		r = yt_check_fields(l, m, fields,
				    "Policy files take name, namespace, labels and annotations");
	if (r < 0)
		return r;

	n = yt_map_get(m, "name");
	if (!n)
		return yt_missing(l, m, "name", NULL);
	old = yt_path_key(l, "name");
	r = yt_get_string(l, n, &s);
	if (r == 0 && zt_dns_subdomain_check(s, &why) < 0)
		r = yt_fail(l, &n->pos, -EINVAL, "'%s' %s", SHOW(s), why);
	yt_path_set(l, old);
	if (r < 0)
		return r;
	p->name = yt_keep(l, s);
	p->name_pos = n->pos;

	s = "default";
	n = yt_map_get_set(m, "namespace");
	if (n) {
		old = yt_path_key(l, "namespace");
		r = yt_get_string(l, n, &s);
		if (r == 0 && zt_dns_label_check(s, &why) < 0)
			r = yt_fail(l, &n->pos, -EINVAL, "'%s' %s", SHOW(s), why);
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}
	p->namespace = yt_keep(l, s);
	if (!p->name || !p->namespace)
		return yt_nomem(l);

	for (int i = 0; i < 2; i++) {
		const char *key = i ? "annotations" : "labels";

		n = yt_map_get(m, key);
		if (!n)
			continue;
		old = yt_path_key(l, key);
		r = conv_label_map(l, n, NULL, i == 1);
		yt_path_set(l, old);
		if (r < 0)
			return r;
	}
	return 0;
}

static int new_policy(struct loader *l, const struct zt_pol_pos *pos, struct zt_policy **out)
{
	struct zt_policy_set *set = l->set;

	if (set->n >= ZT_POL_MAX_POLICIES)
		return yt_fail(l, pos, -E2BIG, "more than %d policies in the store",
			       ZT_POL_MAX_POLICIES);
	if (set->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct zt_policy *v;

		if (cap > ZT_POL_MAX_POLICIES)
			cap = ZT_POL_MAX_POLICIES;
		v = realloc(set->policies, cap * sizeof(*v));
		if (!v)
			return yt_nomem(l);
		set->policies = v;
		l->cap = cap;
	}
	*out = &set->policies[set->n];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int conv_doc(struct loader *l, const struct ynode *root, unsigned int doc, const char *file)
{
	static const char *const fields[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	const struct ynode *kind_n, *api_n, *meta, *spec;
	const char *kind = "", *api = "", *want;
	struct zt_policy *p = NULL;
	size_t old;
	int r;

	yt_path_set(l, 0);
	if (root->type != Y_MAP)
		return yt_fail(
			l, &root->pos, -EINVAL,
			"document %u: expected a mapping with apiVersion, kind, metadata and "
			"spec, got %s",
			doc + 1, yt_ytype_name(root));
	kind_n = yt_map_get(root, "kind");
	if (!kind_n)
		return yt_missing(l, root, "kind", "NetworkPolicy or ZeroTrustPolicy");
	old = yt_path_key(l, "kind");
	r = yt_get_string(l, kind_n, &kind);
	if (r == 0) {
		if (!strcmp(kind, "NetworkPolicy"))
			l->kind = ZT_POL_NETWORK_POLICY;
		else if (!strcmp(kind, "ZeroTrustPolicy"))
			l->kind = ZT_POL_ZERO_TRUST_POLICY;
		else
			r = yt_fail(l, &kind_n->pos, -EINVAL,
				    "'%s' is not a policy kind (document %u); policy files hold "
				    "only NetworkPolicy (networking.k8s.io/v1) and ZeroTrustPolicy "
				    "(ztagent.io/v1) documents",
				    SHOW(kind), doc + 1);
	}
	yt_path_set(l, old);
	if (r < 0)
		return r;

	want = l->kind == ZT_POL_NETWORK_POLICY ? "networking.k8s.io/v1" : "ztagent.io/v1";
	api_n = yt_map_get(root, "apiVersion");
	if (!api_n)
		return yt_missing(l, root, "apiVersion", want);
	old = yt_path_key(l, "apiVersion");
	r = yt_get_string(l, api_n, &api);
	if (r == 0 && strcmp(api, want) != 0)
		r = yt_fail(l, &api_n->pos, -EINVAL, "%s needs apiVersion %s, got '%s'", kind, want,
			    SHOW(api));
	yt_path_set(l, old);
	if (r == 0)
		r = yt_check_fields(l, root, fields, NULL);
	if (r < 0)
		return r;

	meta = yt_map_get(root, "metadata");
	if (!meta)
		return yt_missing(l, root, "metadata", "with at least a name");
	spec = yt_map_get(root, "spec");
	if (!spec)
		return yt_missing(l, root, "spec",
				  "write spec: {podSelector: {}} and the rules you mean; an absent "
				  "spec would isolate every pod of the namespace");

	r = new_policy(l, &root->pos, &p);
	if (r < 0)
		return r;
	p->kind = l->kind;
	p->file = file;
	p->doc = doc;
	p->pos = root->pos;

	old = yt_path_key(l, "metadata");
	r = conv_metadata(l, meta, p);
	yt_path_set(l, old);
	if (r < 0)
		return r;
	old = yt_path_key(l, "spec");
	r = conv_spec(l, spec, p);
	yt_path_set(l, old);
	if (r < 0)
		return r;
	l->set->n++;
	return 0;
}

/* ---- loading ---------------------------------------------------------- */

static int hash_file(struct loader *l, const char *name, const char *buf, size_t len)
{
	const char *base = strrchr(name, '/');
	char sz[32];
	int n;

	base = base ? base + 1 : name;
	n = snprintf(sz, sizeof(sz), "%zu", len);
	if (!EVP_DigestUpdate(l->md, base, strlen(base) + 1) ||
	    !EVP_DigestUpdate(l->md, sz, (size_t)n + 1) || !EVP_DigestUpdate(l->md, buf, len))
		return yt_fail(l, NULL, -EIO, "SHA-256 failed");
	return 0;
}

static int load_buf(struct loader *l, const char *buf, size_t len, const char *name)
{
	yaml_parser_t parser;
	const char *file;
	unsigned int doc = 0;
	int r;

	l->name = name;
	yt_path_set(l, 0);
	if (len > ZT_POL_MAX_FILE_BYTES)
		return yt_fail(l, NULL, -EFBIG, "%zu bytes; a policy file may hold at most 4 MiB",
			       len);
	if (l->total_bytes + len > ZT_POL_MAX_TOTAL_BYTES)
		return yt_fail(
			l, NULL, -EFBIG,
			"the policy store holds more than 64 MiB of YAML; split it or trim it");
	l->total_bytes += len;
	r = hash_file(l, name, buf, len);
	if (r < 0)
		return r;
	file = yt_keep(l, name);
	if (!file)
		return yt_nomem(l);
	l->set->n_files++;

	if (!yaml_parser_initialize(&parser))
		return yt_nomem(l);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_event_t ev;
		struct ynode *root = NULL;
		yaml_event_type_t t;

		r = yt_next_event(l, &parser, &ev);
		if (r < 0)
			break;
		t = ev.type;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t != YAML_DOCUMENT_START_EVENT)
			continue;
		r = yt_build_tree(l, &parser, &root);
		if (r == 0 && root && !(root->type == Y_SCALAR && root->stype == YS_NULL))
			r = conv_doc(l, root, doc, file);
		zt_pol_arena_release(&l->tree);
		doc++;
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	return r;
}

static int loader_init(struct loader *l, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->err = err;
	l->errlen = errlen;
	l->name = "";
	if (err && errlen)
		err[0] = '\0';
	l->set = calloc(1, sizeof(*l->set));
	if (l->set)
		l->set->arena = calloc(1, sizeof(*l->set->arena));
	l->md = EVP_MD_CTX_new();
	if (!l->set || !l->set->arena || !l->md)
		return yt_nomem(l);
	if (!EVP_DigestInit_ex(l->md, EVP_sha256(), NULL))
		return yt_fail(l, NULL, -EIO, "SHA-256 is not available");
	return 0;
}

static int polcmp(const void *a, const void *b)
{
	const struct zt_policy *x = *(const struct zt_policy *const *)a;
	const struct zt_policy *y = *(const struct zt_policy *const *)b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = strcmp(x->namespace, y->namespace);
	if (!c)
		c = strcmp(x->name, y->name);
	if (!c)
		c = x < y ? -1 : x > y;
	return c;
}

static int loader_finish(struct loader *l, struct zt_policy_set **out)
{
	struct zt_policy_set *set = l->set;
	const struct zt_policy **v;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = 0;

	if (set->n > 1) {
		v = malloc(set->n * sizeof(*v));
		if (!v)
			return yt_nomem(l);
		for (size_t i = 0; i < set->n; i++)
			v[i] = &set->policies[i];
		qsort(v, set->n, sizeof(*v), polcmp);
		for (size_t i = 1; i < set->n; i++) {
			const struct zt_policy *a = v[i - 1], *b = v[i];

			if (a->kind != b->kind || strcmp(a->namespace, b->namespace) ||
			    strcmp(a->name, b->name))
				continue;
			l->name = b->file;
			yt_path_set(l, 0);
			yt_path_key(l, "metadata");
			yt_path_key(l, "name");
			r = yt_fail(l, &b->name_pos, -EINVAL,
				    "%s %s/%s is defined twice; the first is %s:%u:%u",
				    zt_pol_kind_name(b->kind), b->namespace, b->name, a->file,
				    a->name_pos.line, a->name_pos.column);
			break;
		}
		free(v);
		if (r < 0)
			return r;
	}
	if (!EVP_DigestFinal_ex(l->md, md, &mdlen) || mdlen != 32)
		return yt_fail(l, NULL, -EIO, "SHA-256 failed");
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(set->sha256 + 2 * i, 3, "%02x", md[i]);
	*out = set;
	l->set = NULL;
	return 0;
}

static void loader_cleanup(struct loader *l)
{
	zt_policy_set_free(l->set);
	l->set = NULL;
	zt_pol_arena_release(&l->tree);
	EVP_MD_CTX_free(l->md);
	l->md = NULL;
}

void zt_policy_set_free(struct zt_policy_set *set)
{
	if (!set)
		return;
	if (set->arena) {
		zt_pol_arena_release(set->arena);
		free(set->arena);
	}
	free(set->policies);
	free(set);
}

int zt_policy_parse_buf(const char *buf, size_t len, const char *name, struct zt_policy_set **out,
			char *err, size_t errlen)
{
	struct loader l;
	int r;

	r = loader_init(&l, err, errlen);
	if (r == 0)
		r = load_buf(&l, buf ? buf : "", buf ? len : 0, name ? name : "<input>");
	if (r == 0)
		r = loader_finish(&l, out);
	loader_cleanup(&l);
	return r;
}

/* Reads a whole regular file of at most the per-file limit. */
static int read_file(struct loader *l, int dirfd, const char *path, const char *name, char **buf,
		     size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	char *p = NULL;
	int fd, r = 0;

	l->name = name;
	yt_path_set(l, 0);
	/* O_NONBLOCK: a FIFO named like a policy file must not hang the load. */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return yt_fail(l, NULL, r, "cannot open: %s", strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		r = yt_fail(l, NULL, r, "cannot stat: %s", strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = yt_fail(l, NULL, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "not a regular file");
		goto out;
	}
	if (st.st_size > (off_t)ZT_POL_MAX_FILE_BYTES) {
		r = yt_fail(l, NULL, -EFBIG, "%lld bytes; a policy file may hold at most 4 MiB",
			    (long long)st.st_size);
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	p = malloc(cap);
	if (!p) {
		r = yt_nomem(l);
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			/* The file grew while we read it: take up to the limit, then refuse. */
			char *q;

			if (cap > ZT_POL_MAX_FILE_BYTES) {
				r = yt_fail(
					l, NULL, -EFBIG,
					"more than 4 MiB; a policy file may hold at most 4 MiB");
				goto out;
			}
			cap = cap * 2 > ZT_POL_MAX_FILE_BYTES + 1 ? ZT_POL_MAX_FILE_BYTES + 1 :
								    cap * 2;
			q = realloc(p, cap);
			if (!q) {
				r = yt_nomem(l);
				goto out;
			}
			p = q;
		}
		got = read(fd, p + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			r = yt_fail(l, NULL, r, "cannot read: %s", strerror(-r));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*buf = p;
	*len = n;
	p = NULL;
out:
	free(p);
	close(fd);
	return r;
}

int zt_policy_parse_file(const char *path, struct zt_policy_set **out, char *err, size_t errlen)
{
	struct loader l;
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = loader_init(&l, err, errlen);
	if (r == 0)
		r = read_file(&l, AT_FDCWD, path, path, &buf, &len);
	if (r == 0)
		r = load_buf(&l, buf, len, path);
	if (r == 0)
		r = loader_finish(&l, out);
	free(buf);
	loader_cleanup(&l);
	return r;
}

static bool is_policy_name(const char *n)
{
	size_t len = strlen(n);

	if (n[0] == '.')
		return false;
	return (len > 5 && !strcmp(n + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static int namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int zt_policy_parse_dir(const char *dir, struct zt_policy_set **out, char *err, size_t errlen)
{
	struct loader l;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int r;

	r = loader_init(&l, err, errlen);
	if (r < 0)
		goto out;
	l.name = dir;
	d = opendir(dir);
	if (!d) {
		r = -errno;
		r = yt_fail(&l, NULL, r, "cannot open the policy directory: %s", strerror(-r));
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				r = -errno;
				r = yt_fail(&l, NULL, r, "cannot list the policy directory: %s",
					    strerror(-r));
			}
			break;
		}
		if (!is_policy_name(de->d_name))
			continue;
		if (n == ZT_POL_MAX_FILES) {
			r = yt_fail(&l, NULL, -E2BIG, "more than %d policy files in the directory",
				    ZT_POL_MAX_FILES);
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **v = realloc(names, nc * sizeof(*v));

			if (!v) {
				r = yt_nomem(&l);
				break;
			}
			names = v;
			cap = nc;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = yt_nomem(&l);
			break;
		}
		n++;
	}
	if (r < 0)
		goto out;
	if (n)
		qsort(names, n, sizeof(*names), namecmp);
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t dl = strlen(dir);
		char *shown_name = NULL, *buf = NULL;
		size_t len = 0;

		if (asprintf(&shown_name, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
			     names[i]) < 0) {
			r = yt_nomem(&l);
			break;
		}
		r = read_file(&l, dirfd(d), names[i], shown_name, &buf, &len);
		if (r == 0)
			r = load_buf(&l, buf, len, shown_name);
		free(buf);
		free(shown_name);
	}
	if (r == 0)
		r = loader_finish(&l, out);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	loader_cleanup(&l);
	return r;
}

int zt_policy_load(const char *path, struct zt_policy_set **out, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode))
		return zt_policy_parse_dir(path, out, err, errlen);
	return zt_policy_parse_file(path, out, err, errlen);
}

/* ---- names ------------------------------------------------------------ */

const char *zt_pol_kind_name(enum zt_pol_kind k)
{
	return k == ZT_POL_ZERO_TRUST_POLICY ? "ZeroTrustPolicy" : "NetworkPolicy";
}

const char *zt_pol_dir_name(enum zt_pol_dir d)
{
	return d == ZT_POL_EGRESS ? "egress" : "ingress";
}

const char *zt_pol_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "ICMPv6";
	default:
		return "other";
	}
}

int zt_policy_describe(const struct zt_policy *p, const struct zt_pol_rule *rule, char *buf,
		       size_t n)
{
	int r;

	if (rule)
		r = snprintf(buf, n, "%s %s/%s spec.%s[%u] (%s:%u:%u)", zt_pol_kind_name(p->kind),
			     p->namespace, p->name, zt_pol_dir_name(rule->dir), rule->index,
			     p->file, rule->pos.line, rule->pos.column);
	else
		r = snprintf(buf, n, "%s %s/%s (%s:%u:%u)", zt_pol_kind_name(p->kind), p->namespace,
			     p->name, p->file, p->pos.line, p->pos.column);
	return r < 0 || (size_t)r >= n ? -ENOSPC : 0;
}
