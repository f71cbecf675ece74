// SPDX-License-Identifier: GPL-2.0-only
/*
 * STIX 2.1: a bundle (or a TAXII 2.1 envelope, or a list) of objects, of
 * which indicators with a STIX pattern over IP addresses become entries:
 *
 *   [ipv4-addr:value = '198.51.100.7']
 *   [ipv6-addr:value ISSUBSET '2001:db8::/32']
 *   [ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2'] OR [...]
 *
 * Observation expressions joined by OR, each a bracket of comparisons
 * (= or ISSUBSET) joined by OR, parentheses allowed. A pattern that ANDs,
 * uses qualifiers (WITHIN, REPEATS, START/STOP) or other object paths
 * cannot be one blocklist entry: it is ignored, and reported when it
 * mentions an IP address type. valid_until is honoured; revoked indicators
 * and pattern types other than "stix" are ignored.
 *
 * The pattern grammar is STIX's, not JSON: this small recursive-descent
 * reader covers the subset above, bounded in depth and values.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_int.h"

#define PAT_DEPTH 16
#define PAT_VALUES 256
#define PAT_VALUE_MAX 64

enum pat_result {
	PAT_OK = 0,
	PAT_NOT_IP, /* some other pattern: not for a blocklist */
	PAT_UNSUPPORTED, /* about IPs, but more than a list of addresses */
	PAT_BAD, /* not a valid pattern */
};

struct pat {
	const char *s;
	size_t n, i;
	char why[128];
	unsigned int n_values;
	struct {
		char v[PAT_VALUE_MAX];
		size_t n;
		int family;
	} values[PAT_VALUES];
};

enum tok_kind { T_END, T_PUNCT, T_STRING, T_WORD, T_OP, T_BAD };

struct tok {
	enum tok_kind kind;
	const char *p;
	size_t n;
};

static bool pat_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static bool word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == ':' || ch == '.' || ch == '*';
}

/* The token at p->i, without consuming it. */
static struct tok peek(struct pat *p)
{
	struct tok t = { T_END, NULL, 0 };
	size_t i = p->i;

	while (i < p->n && pat_ws(p->s[i]))
		i++;
	p->i = i;
	if (i >= p->n)
		return t;
	t.p = p->s + i;
	switch (p->s[i]) {
	case '[':
	case ']':
	case '(':
	case ')':
		t.kind = T_PUNCT;
		t.n = 1;
		return t;
	case '\'':
		for (size_t j = i + 1; j < p->n; j++) {
			if (p->s[j] == '\\') {
				j++;
				continue;
			}
			if (p->s[j] == '\'') {
				t.kind = T_STRING;
				t.n = j - i + 1;
				return t;
			}
		}
		t.kind = T_BAD;
		t.n = p->n - i;
		return t;
	case '=':
	case '<':
	case '>':
	case '!':
		t.kind = T_OP;
		t.n = i + 1 < p->n && p->s[i + 1] == '=' ? 2 : 1;
		return t;
	default:
		break;
	}
	if (!word_char(p->s[i])) {
		t.kind = T_BAD;
		t.n = 1;
		return t;
	}
	while (i < p->n && word_char(p->s[i]))
		i++;
	t.kind = T_WORD;
	t.n = (size_t)(i - p->i);
	return t;
}

static void take(struct pat *p, const struct tok *t)
{
	p->i = (size_t)(t->p - p->s) + t->n;
}

static bool is(const struct tok *t, const char *s)
{
	return t->n == strlen(s) && !memcmp(t->p, s, t->n);
}

static enum pat_result bad(struct pat *p, const char *what)
{
	snprintf(p->why, sizeof(p->why), "STIX pattern: %s at offset %zu", what, p->i);
	return PAT_BAD;
}

static enum pat_result unsupported(struct pat *p, const struct tok *t, const char *what)
{
	snprintf(p->why, sizeof(p->why), "STIX pattern: %s '%.*s' at offset %zu", what,
		 (int)(t->n > 40 ? 40 : t->n), t->p ? t->p : "", p->i);
	return PAT_UNSUPPORTED;
}

/* ipv4-addr:value = '...' | ipv6-addr:value ISSUBSET '...' */
static enum pat_result comparison(struct pat *p)
{
	struct tok t = peek(p), op;
	int family;
	size_t o = 0;

	if (t.kind != T_WORD)
		return bad(p, "expected an object path");
	if (is(&t, "ipv4-addr:value"))
		family = AF_INET;
	else if (is(&t, "ipv6-addr:value"))
		family = AF_INET6;
	else
		return unsupported(p, &t, "object path other than ipv4-addr:value/ipv6-addr:value");
	take(p, &t);
	op = peek(p);
	if (op.kind == T_WORD && is(&op, "NOT"))
		return unsupported(p, &op, "negation");
	if (!(op.kind == T_OP && is(&op, "=")) && !(op.kind == T_WORD && is(&op, "ISSUBSET"))) {
		if (op.kind == T_OP || op.kind == T_WORD)
			return unsupported(p, &op, "comparison other than = and ISSUBSET");
		return bad(p, "expected a comparison operator");
	}
	take(p, &op);
	t = peek(p);
	if (t.kind != T_STRING)
		return bad(p, "expected a quoted value");
	take(p, &t);
	if (p->n_values == PAT_VALUES)
		return unsupported(p, &t, "more than 256 values in one pattern");
	for (size_t i = 1; i + 1 < t.n; i++) {
		char ch = t.p[i];

		if (ch == '\\') {
			ch = t.p[++i];
			if (ch != '\\' && ch != '\'')
				return bad(p, "unknown escape in a string");
		}
		if (o + 1 >= PAT_VALUE_MAX)
			return bad(p, "value too long for an address");
		p->values[p->n_values].v[o++] = ch;
	}
	p->values[p->n_values].v[o] = '\0';
	p->values[p->n_values].n = o;
	p->values[p->n_values].family = family;
	p->n_values++;
	return PAT_OK;
}

/* comparison (OR comparison)*, with parentheses; inside one bracket. */
static enum pat_result comparisons(struct pat *p, unsigned int depth)
{
	enum pat_result r;
	struct tok t;

	for (;;) {
		t = peek(p);
		if (t.kind == T_PUNCT && t.p[0] == '(') {
			if (depth >= PAT_DEPTH)
				return bad(p, "nested too deep");
			take(p, &t);
			r = comparisons(p, depth + 1);
			if (r != PAT_OK)
				return r;
			t = peek(p);
			if (!(t.kind == T_PUNCT && t.p[0] == ')'))
				return bad(p, "expected ')'");
			take(p, &t);
		} else {
			r = comparison(p);
			if (r != PAT_OK)
				return r;
		}
		t = peek(p);
		if (t.kind == T_WORD && is(&t, "OR")) {
			take(p, &t);
			continue;
		}
		if (t.kind == T_WORD && is(&t, "AND"))
			return unsupported(p, &t, "AND of comparisons");
		return PAT_OK;
	}
}

/* observation (OR observation)*, with parentheses. */
static enum pat_result observations(struct pat *p, unsigned int depth)
{
	enum pat_result r;
	struct tok t;

	for (;;) {
		t = peek(p);
		if (t.kind == T_PUNCT && (t.p[0] == '(' || t.p[0] == '[')) {
			char close = t.p[0] == '(' ? ')' : ']';

			if (depth >= PAT_DEPTH)
				return bad(p, "nested too deep");
			take(p, &t);
			r = close == ')' ? observations(p, depth + 1) : comparisons(p, depth + 1);
			if (r != PAT_OK)
				return r;
			t = peek(p);
			if (!(t.kind == T_PUNCT && t.p[0] == close))
				return bad(p, close == ')' ? "expected ')'" : "expected ']'");
			take(p, &t);
		} else {
			return bad(p, "expected '[' or '('");
		}
		t = peek(p);
		if (t.kind == T_WORD && is(&t, "OR")) {
			take(p, &t);
			continue;
		}
		if (t.kind == T_END || (t.kind == T_PUNCT && t.p[0] == ')'))
			return PAT_OK;
		if (t.kind == T_WORD)
			return unsupported(p, &t, "operator or qualifier");
		return bad(p, "unexpected text");
	}
}

static bool mentions_ip(const char *s, size_t n)
{
	return memmem(s, n, "ipv4-addr", 9) || memmem(s, n, "ipv6-addr", 9);
}

static enum pat_result pattern(struct pat *p)
{
	enum pat_result r = observations(p, 0);

	if (r == PAT_OK && peek(p).kind != T_END)
		r = bad(p, "unbalanced ')'");
	/* Only a pattern that is about IPs deserves a report. */
	if (r == PAT_UNSUPPORTED && !mentions_ip(p->s, p->n))
		r = PAT_NOT_IP;
	return r;
}

static int indicator(struct feed_ctx *x, struct json_object *o, size_t idx, struct pat *p)
{
	const char *id, *pat, *ptype, *vu;
	size_t id_n = 0, pat_n = 0, vu_n = 0;
	struct json_object *v;
	uint64_t until = 0;
	enum pat_result pr;
	char item[96];
	int err;

	x->r->stats.items++;
	id = feed_json_str(o, "id", &id_n);
	snprintf(item, sizeof(item), "objects[%zu] %.*s", idx, (int)(id_n > 60 ? 60 : id_n),
		 id ? id : "(no id)");
	if (json_object_object_get_ex(o, "revoked", &v) && json_object_get_boolean(v)) {
		x->r->stats.ignored++;
		return 0;
	}
	ptype = feed_json_str(o, "pattern_type", NULL);
	if (ptype && strcmp(ptype, "stix")) {
		x->r->stats.ignored++;
		return 0;
	}
	pat = feed_json_str(o, "pattern", &pat_n);
	if (!pat) {
		feed_report(x, feed_find_line(x, id, id_n), true, item, strlen(item),
			    "indicator without a \"pattern\" string");
		return 0;
	}
	vu = feed_json_str(o, "valid_until", &vu_n);
	if (json_object_object_get_ex(o, "valid_until", &v) &&
	    (!vu || feed_parse_time(vu, vu_n, &until) < 0)) {
		feed_report(x, feed_find_line(x, id, id_n), true, item, strlen(item),
			    "valid_until is not a timestamp like 2026-01-31T00:00:00Z");
		return 0;
	}
	if (until && x->o->now_unix && until <= x->o->now_unix) {
		x->r->stats.expired++;
		return 0;
	}
	p->s = pat;
	p->n = pat_n;
	p->i = 0;
	p->n_values = 0;
	p->why[0] = '\0';
	pr = pattern(p);
	switch (pr) {
	case PAT_NOT_IP:
		x->r->stats.ignored++;
		return 0;
	case PAT_UNSUPPORTED:
		x->r->stats.ignored++;
		feed_report(x, feed_find_line(x, id, id_n), false, pat, pat_n, "%s: %s", item,
			    p->why);
		return 0;
	case PAT_BAD:
		feed_report(x, feed_find_line(x, id, id_n), true, pat, pat_n, "%s: %s", item,
			    p->why);
		return 0;
	case PAT_OK:
		break;
	}
	for (unsigned int i = 0; i < p->n_values; i++) {
		struct zt_cidr c;
		bool hb = false;
		char why[128];

		if (feed_addr(p->values[i].v, p->values[i].n, &c, &hb, why, sizeof(why)) < 0) {
			feed_report(x, feed_find_line(x, id, id_n), true, pat, pat_n, "%s: %s",
				    item, why);
			continue;
		}
		if (c.family != p->values[i].family) {
			feed_report(x, feed_find_line(x, id, id_n), true, pat, pat_n,
				    "%s: an IPv%c address under %s", item,
				    c.family == AF_INET ? '4' : '6',
				    p->values[i].family == AF_INET ? "ipv4-addr" : "ipv6-addr");
			continue;
		}
		if (hb)
			x->r->stats.host_bits++;
		err = feed_add(x, &c, 0, ZT_FEED_BOTH, until, id, id_n);
		if (err)
			return err;
	}
	return 0;
}

int feed_parse_stix2(struct feed_ctx *x)
{
	struct json_object *doc = NULL, *objs = NULL;
	struct pat *p = NULL;
	size_t n;
	int err;

	err = feed_json_doc(x, &doc);
	if (err)
		return err;
	if (json_object_is_type(doc, json_type_array)) {
		objs = doc;
	} else if (json_object_is_type(doc, json_type_object)) {
		const char *type = feed_json_str(doc, "type", NULL);

		if (!json_object_object_get_ex(doc, "objects", &objs) ||
		    !json_object_is_type(objs, json_type_array)) {
			objs = NULL;
			if (!type || strcmp(type, "indicator")) {
				err = feed_fail(
					x, -EBADMSG,
					"not a STIX 2.1 bundle: no \"objects\" list (type %s)",
					type ? "is not bundle" : "missing");
				goto out;
			}
		}
	} else {
		err = feed_fail(x, -EBADMSG, "not a STIX 2.1 bundle: the document is a JSON %s",
				json_type_to_name(json_object_get_type(doc)));
		goto out;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		err = feed_fail(x, -ENOMEM, "out of memory");
		goto out;
	}
	if (!objs) {
		err = indicator(x, doc, 0, p);
		goto out;
	}
	n = json_object_array_length(objs);
	for (size_t i = 0; i < n && !err; i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);
		const char *type;
		char item[48];

		if (!json_object_is_type(o, json_type_object)) {
			x->r->stats.items++;
			snprintf(item, sizeof(item), "objects[%zu]", i);
			feed_report(x, 0, true, item, strlen(item), "a JSON %s, not an object",
				    json_type_to_name(json_object_get_type(o)));
			continue;
		}
		type = feed_json_str(o, "type", NULL);
		/* Identities, malware, relationships, markings: context, not entries. */
		if (!type || strcmp(type, "indicator"))
			continue;
		err = indicator(x, o, i, p);
	}
out:
	free(p);
	json_object_put(doc);
	return err;
}
