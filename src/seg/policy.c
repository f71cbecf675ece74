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

#include "seg/policy.h"

/* ---- arena ------------------------------------------------------------ */

#define ARENA_CHUNK (64u << 10)
#define ARENA_ALIGN 16u

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct zt_pol_arena {
	struct arena_chunk *head;
};

/* Zeroed memory that lives until the arena is freed; NULL when out of memory. */
static void *arena_alloc(struct zt_pol_arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	void *p;

	if (size > SIZE_MAX / 2)
		return NULL;
	size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (!size)
		size = ARENA_ALIGN;
	if (!c || c->size - c->used < size) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;

		c = calloc(1, sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->size = cap;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += size;
	return p;
}

static void *arena_array(struct zt_pol_arena *a, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / 2 / n)
		return NULL;
	return arena_alloc(a, n * size);
}

static char *arena_strndup(struct zt_pol_arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void arena_release(struct zt_pol_arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	a->head = NULL;
}

/* ---- YAML tree -------------------------------------------------------- */

enum ytype {
	Y_SCALAR,
	Y_SEQ,
	Y_MAP,
};

/* What a plain scalar resolves to (YAML 1.1, as Kubernetes' decoder reads it). */
enum ystype {
	YS_STR,
	YS_NULL,
	YS_BOOL,
	YS_INT,
	YS_FLOAT,
};

struct ynode {
	enum ytype type;
	enum ystype stype;
	struct zt_pol_pos pos;
	const char *s; /* scalar text, NUL-terminated */
	size_t len;
	struct ynode *first, *last, *next; /* children; a map alternates key, value */
	size_t nchild;
};

struct loader {
	const char *name; /* of the file in messages */
	char *err;
	size_t errlen;
	struct zt_policy_set *set;
	size_t cap;
	EVP_MD_CTX *md;
	size_t total_bytes;
	struct zt_pol_arena tree;
	size_t nodes;
	/* Conversion state. */
	char path[1024];
	size_t plen;
	enum zt_pol_kind kind;
};

static void errf(struct loader *l, const struct zt_pol_pos *pos, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void errf(struct loader *l, const struct zt_pol_pos *pos, const char *fmt, va_list ap)
{
	size_t o = 0;
	int n;

	if (!l->err || !l->errlen)
		return;
	if (pos)
		n = snprintf(l->err, l->errlen, "%s:%u:%u: ", l->name, pos->line, pos->column);
	else
		n = snprintf(l->err, l->errlen, "%s: ", l->name);
	if (n < 0 || (size_t)n >= l->errlen)
		return;
	o = (size_t)n;
	if (pos && l->plen) {
		n = snprintf(l->err + o, l->errlen - o, "%s: ", l->path);
		if (n < 0 || (size_t)n >= l->errlen - o)
			return;
		o += (size_t)n;
	}
	vsnprintf(l->err + o, l->errlen - o, fmt, ap);
}

static int fail(struct loader *l, const struct zt_pol_pos *pos, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct loader *l, const struct zt_pol_pos *pos, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errf(l, pos, fmt, ap);
	va_end(ap);
	return rc;
}

static int nomem(struct loader *l)
{
	return fail(l, NULL, -ENOMEM, "out of memory");
}

/* A value for messages: printable ASCII, at most 60 bytes. */
static const char *shown(const char *v, size_t len, char *buf, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (i >= 60) {
			o += (size_t)snprintf(buf + o, n - o, "...");
			break;
		}
		if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

#define SHOW(s) shown((s), strlen(s), (char[200]){ 0 }, 200)

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* [-+]? then digits/underscores, or 0x.. / 0o.. / 0b.. */
static bool looks_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b') && s[2])
		return strspn(s + 2, "0123456789abcdefABCDEF_") == strlen(s + 2);
	return *s >= '0' && *s <= '9' && strspn(s, "0123456789_") == strlen(s);
}

static bool looks_float(const char *s)
{
	static const char *const special[] = {
		".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL
	};
	bool digits = false, dot = false;

	if (*s == '-' || *s == '+')
		s++;
	if (*s == '.' && str_in(s, special))
		return true;
	for (; *s && *s != 'e' && *s != 'E'; s++) {
		if (*s >= '0' && *s <= '9')
			digits = true;
		else if (*s == '.' && !dot)
			dot = true;
		else if (*s != '_')
			return false;
	}
	if (!digits)
		return false;
	if (*s) {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		return all_digits(s);
	}
	return dot;
}

static enum ystype resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = { "y",    "Y",     "yes",   "Yes",	"YES",	"n",
					     "N",    "no",    "No",    "NO",	"true", "True",
					     "TRUE", "false", "False", "FALSE", "on",	"On",
					     "ON",   "off",   "Off",   "OFF",	NULL };

	/* Most scalars are names: rule the word lists out by first letter and length. */
	if (strlen(s) <= 5 && strchr("~nNyYtTfFoO", *s)) {
		if (str_in(s, nulls))
			return YS_NULL;
		if (str_in(s, bools))
			return YS_BOOL;
	}
	if (!*s)
		return YS_NULL;
	if (!strchr("0123456789+-.", *s))
		return YS_STR;
	if (looks_int(s))
		return YS_INT;
	if (looks_float(s))
		return YS_FLOAT;
	return YS_STR;
}

static int next_event(struct loader *l, yaml_parser_t *p, yaml_event_t *ev)
{
	const char *anchor = NULL, *tag = NULL;
	struct zt_pol_pos pos;

	if (!yaml_parser_parse(p, ev)) {
		struct zt_pol_pos m = { (unsigned int)p->problem_mark.line + 1,
					(unsigned int)p->problem_mark.column + 1 };

		if (p->error == YAML_MEMORY_ERROR)
			return nomem(l);
		return fail(l, &m, -EINVAL, "YAML syntax error: %s%s%s",
			    p->problem ? p->problem : "unknown problem", p->context ? " " : "",
			    p->context ? p->context : "");
	}
	pos.line = (unsigned int)ev->start_mark.line + 1;
	pos.column = (unsigned int)ev->start_mark.column + 1;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		yaml_event_delete(ev);
		return fail(l, &pos, -EINVAL,
			    "YAML aliases (*name) are not allowed in policy files; write it out");
	case YAML_SCALAR_EVENT:
		anchor = (const char *)ev->data.scalar.anchor;
		tag = (const char *)ev->data.scalar.tag;
		/* "!!str" and the non-specific "!" only say "this is a string". */
		if (tag && (!strcmp(tag, "tag:yaml.org,2002:str") || !strcmp(tag, "!")))
			tag = NULL;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = (const char *)ev->data.sequence_start.anchor;
		tag = (const char *)ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = (const char *)ev->data.mapping_start.anchor;
		tag = (const char *)ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor) {
		yaml_event_delete(ev);
		return fail(l, &pos, -EINVAL,
			    "YAML anchors (&name) are not allowed in policy files; write it out");
	}
	if (tag) {
		int r = fail(l, &pos, -EINVAL, "YAML tags (%s) are not allowed in policy files",
			     SHOW(tag));

		yaml_event_delete(ev);
		return r;
	}
	return 0;
}

static const char *ytype_name(const struct ynode *n)
{
	if (n->type == Y_MAP)
		return "a mapping";
	if (n->type == Y_SEQ)
		return "a list";
	switch (n->stype) {
	case YS_NULL:
		return "nothing (null)";
	case YS_BOOL:
		return "a boolean";
	case YS_INT:
	case YS_FLOAT:
		return "a number";
	default:
		return "a string";
	}
}

static int keycmp(const void *a, const void *b)
{
	const struct ynode *x = *(const struct ynode *const *)a;
	const struct ynode *y = *(const struct ynode *const *)b;
	int c = strcmp(x->s, y->s);

	if (c)
		return c;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	return x->pos.column < y->pos.column ? -1 : x->pos.column > y->pos.column;
}

/* At the end of a mapping: no key twice (sorted, so a big mapping stays cheap). */
static int check_dup_keys(struct loader *l, const struct ynode *m)
{
	size_t n = m->nchild / 2, i = 0;
	const struct ynode **keys;
	int r = 0;

	if (n < 2)
		return 0;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return nomem(l);
	for (const struct ynode *k = m->first; k; k = k->next->next)
		keys[i++] = k;
	qsort(keys, n, sizeof(*keys), keycmp);
	for (i = 1; i < n; i++)
		if (strcmp(keys[i - 1]->s, keys[i]->s) == 0) {
			r = fail(l, &keys[i]->pos, -EINVAL,
				 "duplicate key '%s' (first at line %u); a key may appear once",
				 SHOW(keys[i]->s), keys[i - 1]->pos.line);
			break;
		}
	free(keys);
	return r;
}

static int attach(struct loader *l, struct ynode *parent, struct ynode *n, struct ynode **root)
{
	if (!parent) {
		*root = n;
		return 0;
	}
	if (parent->type == Y_MAP && parent->nchild % 2 == 0) {
		if (n->type != Y_SCALAR)
			return fail(l, &n->pos, -EINVAL, "mapping keys must be plain words, got %s",
				    ytype_name(n));
		if (n->stype != YS_STR && n->stype != YS_INT)
			return fail(l, &n->pos, -EINVAL,
				    "key '%s' is read by YAML as %s; put it in quotes", SHOW(n->s),
				    ytype_name(n));
	}
	if (parent->last)
		parent->last->next = n;
	else
		parent->first = n;
	parent->last = n;
	parent->nchild++;
	return 0;
}

/* Reads the events of one document (after DOCUMENT-START) into a tree. */
static int build_tree(struct loader *l, yaml_parser_t *p, struct ynode **root)
{
	struct ynode *stack[ZT_POL_MAX_DEPTH];
	size_t depth = 0;
	yaml_event_t ev;
	int r;

	*root = NULL;
	l->nodes = 0;
	for (;;) {
		struct ynode *n = NULL;

		r = next_event(l, p, &ev);
		if (r < 0)
			return r;
		switch (ev.type) {
		case YAML_DOCUMENT_END_EVENT:
			yaml_event_delete(&ev);
			return 0;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth == 0) {
				r = fail(l, NULL, -EINVAL,
					 "YAML syntax error: unbalanced document");
				break;
			}
			n = stack[--depth];
			if (n->type == Y_MAP)
				r = check_dup_keys(l, n);
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++l->nodes > ZT_POL_MAX_NODES) {
				r = fail(l,
					 &(struct zt_pol_pos){ (unsigned int)ev.start_mark.line + 1,
							       (unsigned int)ev.start_mark.column +
								       1 },
					 -E2BIG,
					 "the document has more than %u YAML nodes; split it up",
					 ZT_POL_MAX_NODES);
				break;
			}
			n = arena_alloc(&l->tree, sizeof(*n));
			if (!n) {
				r = nomem(l);
				break;
			}
			n->pos.line = (unsigned int)ev.start_mark.line + 1;
			n->pos.column = (unsigned int)ev.start_mark.column + 1;
			if (ev.type == YAML_SCALAR_EVENT) {
				const char *v = (const char *)ev.data.scalar.value;
				size_t len = ev.data.scalar.length;

				n->type = Y_SCALAR;
				if (len > ZT_POL_MAX_SCALAR) {
					r = fail(l, &n->pos, -E2BIG,
						 "a value of %zu bytes; the limit is %u", len,
						 ZT_POL_MAX_SCALAR);
					break;
				}
				if (memchr(v, '\0', len)) {
					r = fail(l, &n->pos, -EINVAL,
						 "a value contains a NUL byte");
					break;
				}
				n->s = arena_strndup(&l->tree, v, len);
				if (!n->s) {
					r = nomem(l);
					break;
				}
				n->len = len;
				n->stype = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
							   !ev.data.scalar.tag ?
						   resolve_plain(n->s) :
						   YS_STR;
			} else {
				n->type = ev.type == YAML_MAPPING_START_EVENT ? Y_MAP : Y_SEQ;
				n->s = "";
			}
			r = attach(l, depth ? stack[depth - 1] : NULL, n, root);
			if (r == 0 && n->type != Y_SCALAR) {
				if (depth == ZT_POL_MAX_DEPTH) {
					r = fail(l, &n->pos, -E2BIG,
						 "nesting deeper than %d levels", ZT_POL_MAX_DEPTH);
					break;
				}
				stack[depth++] = n;
			}
			break;
		default:
			r = fail(l, NULL, -EINVAL, "YAML syntax error: unexpected event %d",
				 (int)ev.type);
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

/* ---- conversion helpers ----------------------------------------------- */

static size_t path_key(struct loader *l, const char *key)
{
	size_t old = l->plen;
	bool plain = *key != '\0';
	int n;

	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			plain = false;
	if (plain)
		n = snprintf(l->path + old, sizeof(l->path) - old, "%s%s", old ? "." : "", key);
	else
		n = snprintf(l->path + old, sizeof(l->path) - old, "[\"%s\"]", SHOW(key));
	if (n > 0)
		l->plen = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
	return old;
}

static size_t path_idx(struct loader *l, size_t i)
{
	size_t old = l->plen;
	int n = snprintf(l->path + old, sizeof(l->path) - old, "[%zu]", i);

	if (n > 0)
		l->plen = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
	return old;
}

static void path_set(struct loader *l, size_t len)
{
	l->plen = len;
	l->path[len] = '\0';
}

static const struct ynode *map_get(const struct ynode *m, const char *key)
{
	for (const struct ynode *k = m->first; k; k = k->next->next)
		if (strcmp(k->s, key) == 0)
			return k->next;
	return NULL;
}

/* The value of key unless it is absent or null. */
static const struct ynode *map_get_set(const struct ynode *m, const char *key)
{
	const struct ynode *v = map_get(m, key);

	return v && !(v->type == Y_SCALAR && v->stype == YS_NULL) ? v : NULL;
}

static int missing(struct loader *l, const struct ynode *m, const char *key, const char *hint)
{
	size_t old = path_key(l, key);
	int r = fail(l, &m->pos, -EINVAL, "is required%s%s", hint ? "; " : "", hint ? hint : "");

	path_set(l, old);
	return r;
}

static int check_fields(struct loader *l, const struct ynode *m, const char *const *allowed,
			const char *hint)
{
	for (const struct ynode *k = m->first; k; k = k->next->next) {
		char list[256] = "";
		size_t o = 0, old;
		int r;

		if (str_in(k->s, allowed))
			continue;
		for (const char *const *a = allowed; *a && o < sizeof(list); a++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
					      a == allowed ? "" : ", ", *a);
		old = path_key(l, k->s);
		r = fail(l, &k->pos, -EINVAL, "unknown field; expected %s%s%s", list,
			 hint ? ". " : "", hint ? hint : "");
		path_set(l, old);
		return r;
	}
	return 0;
}

static int expect(struct loader *l, const struct ynode *n, enum ytype t, const char *what)
{
	if (n->type == t)
		return 0;
	return fail(l, &n->pos, -EINVAL, "expected %s, got %s", what, ytype_name(n));
}

static int get_string(struct loader *l, const struct ynode *n, const char **out)
{
	if (n->type != Y_SCALAR)
		return fail(l, &n->pos, -EINVAL, "expected a string, got %s", ytype_name(n));
	if (n->stype != YS_STR)
		return fail(l, &n->pos, -EINVAL,
			    "expected a string, got %s ('%s'); put it in quotes if it is meant "
			    "as text",
			    ytype_name(n), SHOW(n->s));
	*out = n->s;
	return 0;
}

static int get_bool(struct loader *l, const struct ynode *n, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };

	if (n->type == Y_SCALAR && n->stype == YS_BOOL && str_in(n->s, yes))
		*out = true;
	else if (n->type == Y_SCALAR && n->stype == YS_BOOL && str_in(n->s, no))
		*out = false;
	else
		return fail(l, &n->pos, -EINVAL, "expected true or false, got %s%s%s%s",
			    ytype_name(n), n->type == Y_SCALAR ? " '" : "",
			    n->type == Y_SCALAR ? SHOW(n->s) : "", n->type == Y_SCALAR ? "'" : "");
	return 0;
}

/* A plain decimal number in [lo, hi]. */
static int get_uint(struct loader *l, const struct ynode *n, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	uint64_t v;

	if (n->type != Y_SCALAR || (n->stype != YS_INT && n->stype != YS_FLOAT))
		return fail(l, &n->pos, -EINVAL,
			    "expected a number from %llu to %llu, got %s%s%s%s",
			    (unsigned long long)lo, (unsigned long long)hi, ytype_name(n),
			    n->type == Y_SCALAR ? " '" : "", n->type == Y_SCALAR ? SHOW(n->s) : "",
			    n->type == Y_SCALAR ? "'" : "");
	if (!all_digits(n->s) || (n->s[0] == '0' && n->s[1]) || zt_parse_u64(n->s, &v) < 0 ||
	    v < lo || v > hi)
		return fail(l, &n->pos, -ERANGE,
			    "expected a decimal number from %llu to %llu, got '%s'",
			    (unsigned long long)lo, (unsigned long long)hi, SHOW(n->s));
	*out = v;
	return 0;
}

static char *keep(struct loader *l, const char *s)
{
	return arena_strndup(l->set->arena, s, strlen(s));
}

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
	r = expect(l, n, Y_MAP, "a mapping of label keys to values");
	if (r < 0)
		return r;
	if (n->nchild / 2 > ZT_POL_MAX_LABELS)
		return fail(l, &n->pos, -E2BIG, "more than %d entries", ZT_POL_MAX_LABELS);
	if (out && n->nchild) {
		v = arena_array(l->set->arena, n->nchild / 2, sizeof(*v));
		if (!v)
			return nomem(l);
	}
	for (const struct ynode *k = n->first; k; k = k->next->next, i++) {
		const struct ynode *val = k->next;
		size_t old = path_key(l, k->s);
		const char *why, *s = "";

		r = zt_label_key_check(k->s, &why);
		if (r < 0) {
			r = fail(l, &k->pos, -EINVAL, "%s key '%s' %s",
				 annotations ? "annotation" : "label", SHOW(k->s), why);
		} else if (val->type == Y_SCALAR && val->stype == YS_NULL && !annotations) {
			r = fail(l, &val->pos, -EINVAL,
				 "label value is missing; write '' for an empty value");
		} else {
			r = get_string(l, val, &s);
			if (r == 0 && !annotations && zt_label_value_check(s, &why) < 0)
				r = fail(l, &val->pos, -EINVAL, "label value '%s' %s", SHOW(s),
					 why);
		}
		path_set(l, old);
		if (r < 0)
			return r;
		if (v) {
			v[i].key = keep(l, k->s);
			v[i].value = keep(l, s);
			if (!v[i].key || !v[i].value)
				return nomem(l);
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

	r = expect(l, n, Y_MAP, "a mapping with key, operator and values");
	if (r == 0)
		r = check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	k = map_get(n, "key");
	op = map_get(n, "operator");
	vals = map_get_set(n, "values");
	if (!k)
		return missing(l, n, "key", NULL);
	if (!op)
		return missing(l, n, "operator", "one of In, NotIn, Exists, DoesNotExist");

	old = path_key(l, "key");
	r = get_string(l, k, &s);
	if (r == 0 && zt_label_key_check(s, &why) < 0)
		r = fail(l, &k->pos, -EINVAL, "label key '%s' %s", SHOW(s), why);
	path_set(l, old);
	if (r < 0)
		return r;
	e->key = keep(l, s);
	if (!e->key)
		return nomem(l);

	old = path_key(l, "operator");
	r = get_string(l, op, &s);
	if (r == 0 && zt_sel_op_parse(s, &e->op) < 0)
		r = fail(l, &op->pos, -EINVAL,
			 "'%s' is not an operator; expected In, NotIn, Exists or DoesNotExist",
			 SHOW(s));
	path_set(l, old);
	if (r < 0)
		return r;

	old = path_key(l, "values");
	if (vals) {
		r = expect(l, vals, Y_SEQ, "a list of values");
		if (r == 0 && vals->nchild > ZT_POL_MAX_VALUES)
			r = fail(l, &vals->pos, -E2BIG, "more than %d values", ZT_POL_MAX_VALUES);
		if (r == 0 && vals->nchild) {
			values = arena_array(l->set->arena, vals->nchild, sizeof(*values));
			if (!values)
				r = nomem(l);
		}
		for (const struct ynode *v = r == 0 ? vals->first : NULL; v; v = v->next, i++) {
			size_t o2 = path_idx(l, i);

			r = get_string(l, v, &s);
			if (r == 0 && zt_label_value_check(s, &why) < 0)
				r = fail(l, &v->pos, -EINVAL, "label value '%s' %s", SHOW(s), why);
			if (r == 0) {
				values[i] = keep(l, s);
				if (!values[i])
					r = nomem(l);
			}
			path_set(l, o2);
			if (r < 0)
				break;
		}
	}
	if (r == 0 && (e->op == ZT_SEL_IN || e->op == ZT_SEL_NOT_IN) && i == 0)
		r = fail(l, vals ? &vals->pos : &n->pos, -EINVAL,
			 "operator %s needs at least one value", zt_sel_op_name(e->op));
	if (r == 0 && (e->op == ZT_SEL_EXISTS || e->op == ZT_SEL_DOES_NOT_EXIST) && i > 0)
		r = fail(l, &vals->pos, -EINVAL, "operator %s takes no values; remove them",
			 zt_sel_op_name(e->op));
	path_set(l, old);
	if (r < 0)
		return r;
	e->values = values;
	e->n_values = i;
	return 0;
}

static int conv_selector(struct loader *l, const struct ynode *n, struct zt_selector *out)
{
	static const char *const fields[] = { "matchLabels", "matchExpressions", NULL };
	const struct ynode *ml, *me;
	struct zt_sel_expr *exprs = NULL;
	size_t old, i = 0;
	int r;

	r = expect(l, n, Y_MAP,
		   "a label selector (a mapping with matchLabels and/or "
		   "matchExpressions; {} selects all)");
	if (r == 0)
		r = check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	ml = map_get(n, "matchLabels");
	me = map_get_set(n, "matchExpressions");
	if (ml) {
		old = path_key(l, "matchLabels");
		r = conv_label_map(l, ml, &out->match_labels, false);
		path_set(l, old);
		if (r < 0)
			return r;
	}
	if (!me)
		return 0;
	old = path_key(l, "matchExpressions");
	r = expect(l, me, Y_SEQ, "a list of {key, operator, values}");
	if (r == 0 && me->nchild > ZT_POL_MAX_EXPRS)
		r = fail(l, &me->pos, -E2BIG, "more than %d expressions", ZT_POL_MAX_EXPRS);
	if (r == 0 && me->nchild) {
		exprs = arena_array(l->set->arena, me->nchild, sizeof(*exprs));
		if (!exprs)
			r = nomem(l);
	}
	for (const struct ynode *e = r == 0 ? me->first : NULL; e; e = e->next, i++) {
		size_t o2 = path_idx(l, i);

		r = conv_expr(l, e, &exprs[i]);
		path_set(l, o2);
		if (r < 0)
			break;
	}
	path_set(l, old);
	if (r < 0)
		return r;
	out->exprs = exprs;
	out->n_exprs = i;
	return 0;
}

/* A selector field that may be absent (NULL) or present ({} = all). */
static int conv_opt_selector(struct loader *l, const struct ynode *parent, const char *key,
			     const struct zt_selector **out)
{
	const struct ynode *n = map_get_set(parent, key);
	struct zt_selector *s;
	size_t old;
	int r;

	*out = NULL;
	if (!n)
		return 0;
	s = arena_alloc(l->set->arena, sizeof(*s));
	if (!s)
		return nomem(l);
	old = path_key(l, key);
	r = conv_selector(l, n, s);
	path_set(l, old);
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

	r = get_string(l, n, &s);
	if (r < 0)
		return r;
	if (!strchr(s, '/'))
		return fail(l, &n->pos, -EINVAL,
			    "'%s' is not a CIDR; write ADDRESS/PREFIX, e.g. 10.0.0.0/8 (or %s/%s "
			    "for one address)",
			    SHOW(s), SHOW(s), strchr(s, ':') ? "128" : "32");
	if (zt_cidr_parse(s, out, &host_bits) < 0)
		return fail(l, &n->pos, -EINVAL,
			    "'%s' is not a valid CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)",
			    SHOW(s));
	if (host_bits) {
		if (zt_cidr_format(out, fixed, sizeof(fixed)) < 0)
			fixed[0] = '\0';
		return fail(l, &n->pos, -EINVAL,
			    "'%s' has address bits set past the prefix length; did you mean %s?",
			    SHOW(s), fixed);
	}
	return 0;
}

static int conv_ipblock(struct loader *l, const struct ynode *n, struct zt_pol_peer *p)
{
	static const char *const fields[] = { "cidr", "except", NULL };
	const struct ynode *c, *ex;
	struct zt_cidr *except = NULL;
	char cidr_s[ZT_CIDR_STRLEN];
	size_t old, i = 0;
	int r;

	r = expect(l, n, Y_MAP, "a mapping with cidr and except");
	if (r == 0)
		r = check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	c = map_get(n, "cidr");
	if (!c)
		return missing(l, n, "cidr", "e.g. cidr: 10.0.0.0/8");
	old = path_key(l, "cidr");
	r = conv_cidr(l, c, &p->cidr);
	path_set(l, old);
	if (r < 0)
		return r;
	if (zt_cidr_format(&p->cidr, cidr_s, sizeof(cidr_s)) < 0)
		cidr_s[0] = '\0';
	ex = map_get_set(n, "except");
	if (!ex)
		return 0;
	old = path_key(l, "except");
	r = expect(l, ex, Y_SEQ, "a list of CIDRs");
	if (r == 0 && ex->nchild > ZT_POL_MAX_EXCEPT)
		r = fail(l, &ex->pos, -E2BIG, "more than %d entries", ZT_POL_MAX_EXCEPT);
	if (r == 0 && ex->nchild) {
		except = arena_array(l->set->arena, ex->nchild, sizeof(*except));
		if (!except)
			r = nomem(l);
	}
	for (const struct ynode *e = r == 0 ? ex->first : NULL; e; e = e->next, i++) {
		size_t o2 = path_idx(l, i);

		r = conv_cidr(l, e, &except[i]);
		if (r == 0 && except[i].family != p->cidr.family)
			r = fail(l, &e->pos, -EINVAL, "'%s' is %s but cidr %s is %s", SHOW(e->s),
				 except[i].family == AF_INET ? "IPv4" : "IPv6", cidr_s,
				 p->cidr.family == AF_INET ? "IPv4" : "IPv6");
		else if (r == 0 && (except[i].prefixlen <= p->cidr.prefixlen ||
				    !zt_cidr_contains(&p->cidr, except[i].addr)))
			r = fail(l, &e->pos, -EINVAL,
				 "'%s' is not strictly inside cidr %s; except may only cut "
				 "holes in it",
				 SHOW(e->s), cidr_s);
		path_set(l, o2);
		if (r < 0)
			break;
	}
	path_set(l, old);
	if (r < 0)
		return r;
	p->except = except;
	p->n_except = i;
	return 0;
}

static int conv_peer(struct loader *l, const struct ynode *n, enum zt_pol_dir dir,
		     struct zt_pol_peer *p)
{
	static const char *const fields[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	const struct ynode *ps, *ns, *ib;
	size_t old;
	int r;

	r = expect(l, n, Y_MAP, "a peer (podSelector, namespaceSelector or ipBlock)");
	if (r == 0)
		r = check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	p->pos = n->pos;
	ps = map_get_set(n, "podSelector");
	ns = map_get_set(n, "namespaceSelector");
	ib = map_get_set(n, "ipBlock");
	if (!ps && !ns && !ib)
		return fail(l, &n->pos, -EINVAL,
			    "a peer needs podSelector, namespaceSelector or ipBlock; to match "
			    "every %s, leave '%s' out or write %s: []",
			    dir == ZT_POL_INGRESS ? "source" : "destination",
			    dir == ZT_POL_INGRESS ? "from" : "to",
			    dir == ZT_POL_INGRESS ? "from" : "to");
	if (ib && (ps || ns)) {
		old = path_key(l, "ipBlock");
		r = fail(l, &ib->pos, -EINVAL,
			 "ipBlock cannot share a peer with podSelector or namespaceSelector; "
			 "make them separate list items");
		path_set(l, old);
		return r;
	}
	if (ib) {
		p->type = ZT_PEER_IPBLOCK;
		old = path_key(l, "ipBlock");
		r = conv_ipblock(l, ib, p);
		path_set(l, old);
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
		if (all_digits(s))
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

	r = expect(l, n, Y_MAP, "a mapping with protocol, port and endPort");
	if (r == 0)
		r = check_fields(l, n, fields, NULL);
	if (r < 0)
		return r;
	pp->pos = n->pos;
	pp->protocol = IPPROTO_TCP;
	proto = map_get_set(n, "protocol");
	port = map_get_set(n, "port");
	end = map_get_set(n, "endPort");
	if (proto) {
		const char *s = "";

		old = path_key(l, "protocol");
		r = get_string(l, proto, &s);
		if (r == 0) {
			if (!strcmp(s, "TCP"))
				pp->protocol = IPPROTO_TCP;
			else if (!strcmp(s, "UDP"))
				pp->protocol = IPPROTO_UDP;
			else if (!strcmp(s, "SCTP"))
				pp->protocol = IPPROTO_SCTP;
			else
				r = fail(l, &proto->pos, -EINVAL,
					 "'%s' is not a protocol; expected TCP, UDP or SCTP "
					 "(uppercase)",
					 SHOW(s));
		}
		path_set(l, old);
		if (r < 0)
			return r;
	}
	if (port) {
		old = path_key(l, "port");
		if (port->type == Y_SCALAR && port->stype == YS_STR) {
			const char *why = port_name_problem(port->s);

			if (why)
				r = fail(l, &port->pos, -EINVAL, "port name '%s' %s", SHOW(port->s),
					 why);
			else if (!(pp->name = keep(l, port->s)))
				r = nomem(l);
		} else {
			r = get_uint(l, port, 1, 65535, &v);
			pp->port = pp->end_port = (uint16_t)v;
		}
		path_set(l, old);
		if (r < 0)
			return r;
	}
	if (end) {
		old = path_key(l, "endPort");
		if (!port)
			r = fail(l, &end->pos, -EINVAL,
				 "endPort needs a numeric port to start from");
		else if (pp->name)
			r = fail(l, &end->pos, -EINVAL,
				 "endPort needs a numeric port, not the named port '%s'",
				 SHOW(pp->name));
		else
			r = get_uint(l, end, 1, 65535, &v);
		if (r == 0 && v < pp->port)
			r = fail(l, &end->pos, -EINVAL, "endPort %llu is below port %u",
				 (unsigned long long)v, pp->port);
		if (r == 0)
			pp->end_port = (uint16_t)v;
		path_set(l, old);
	}
	return r;
}

/* ---- rules, spec, document -------------------------------------------- */

static int conv_list(struct loader *l, const struct ynode *parent, const char *key, size_t max,
		     const struct ynode **out)
{
	const struct ynode *n = map_get_set(parent, key);
	size_t old;
	int r = 0;

	*out = NULL;
	if (!n)
		return 0;
	old = path_key(l, key);
	r = expect(l, n, Y_SEQ, "a list");
	if (r == 0 && n->nchild > max)
		r = fail(l, &n->pos, -E2BIG, "more than %zu entries", max);
	path_set(l, old);
	if (r == 0 && n->nchild)
		*out = n;
	return r;
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
	const struct ynode *peers, *ports, *v;
	struct zt_pol_peer *pv = NULL;
	struct zt_pol_port *ptv = NULL;
	size_t old, i;
	int r;

	r = expect(l, n, Y_MAP, "a rule (a mapping; {} is a rule that matches everything)");
	if (r < 0)
		return r;
	/* The likeliest slip: the other direction's word for peers. */
	for (const struct ynode *k = n->first; k; k = k->next->next) {
		if (strcmp(k->s, dir == ZT_POL_INGRESS ? "to" : "from") != 0)
			continue;
		old = path_key(l, k->s);
		r = fail(l, &k->pos, -EINVAL, "unknown field; %s rules name their %s in '%s'",
			 zt_pol_dir_name(dir), dir == ZT_POL_INGRESS ? "sources" : "destinations",
			 peers_key);
		path_set(l, old);
		return r;
	}
	r = check_fields(l, n,
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

		v = map_get(n, "action");
		if (!v)
			return missing(l, n, "action", "allow or deny");
		old = path_key(l, "action");
		r = get_string(l, v, &s);
		if (r == 0) {
			if (!strcmp(s, "allow"))
				rule->action = ZT_RULE_ALLOW;
			else if (!strcmp(s, "deny"))
				rule->action = ZT_RULE_DENY;
			else
				r = fail(l, &v->pos, -EINVAL, "expected allow or deny, got '%s'",
					 SHOW(s));
		}
		path_set(l, old);
		if (r < 0)
			return r;
		for (i = 0; i < 2; i++) {
			bool b = false;

			v = map_get(n, flags[i]);
			if (!v)
				continue;
			old = path_key(l, flags[i]);
			r = get_bool(l, v, &b);
			if (r == 0 && b && rule->action == ZT_RULE_DENY)
				r = fail(l, &v->pos, -EINVAL,
					 "applies to allow rules only; a denied connection "
					 "never gets that far");
			path_set(l, old);
			if (r < 0)
				return r;
			if (i == 0)
				rule->require_tls = b;
			else
				rule->require_mutual_auth = b;
		}
	}

	r = conv_list(l, n, peers_key, ZT_POL_MAX_PEERS, &peers);
	if (r == 0 && peers) {
		pv = arena_array(l->set->arena, peers->nchild, sizeof(*pv));
		if (!pv)
			return nomem(l);
		old = path_key(l, peers_key);
		i = 0;
		for (const struct ynode *p = peers->first; p; p = p->next, i++) {
			size_t o2 = path_idx(l, i);

			r = conv_peer(l, p, dir, &pv[i]);
			path_set(l, o2);
			if (r < 0)
				break;
		}
		path_set(l, old);
		rule->peers = pv;
		rule->n_peers = peers->nchild;
	}
	if (r < 0)
		return r;

	r = conv_list(l, n, "ports", ZT_POL_MAX_PORTS, &ports);
	if (r == 0 && ports) {
		ptv = arena_array(l->set->arena, ports->nchild, sizeof(*ptv));
		if (!ptv)
			return nomem(l);
		old = path_key(l, "ports");
		i = 0;
		for (const struct ynode *p = ports->first; p; p = p->next, i++) {
			size_t o2 = path_idx(l, i);

			r = conv_port(l, p, &ptv[i]);
			path_set(l, o2);
			if (r < 0)
				break;
		}
		path_set(l, old);
		rule->ports = ptv;
		rule->n_ports = ports->nchild;
	}
	return r;
}

static int conv_policy_types(struct loader *l, const struct ynode *spec, struct zt_policy *p,
			     bool listed[ZT_POL_DIR_MAX])
{
	const struct ynode *n = map_get_set(spec, "policyTypes");
	size_t old, i = 0;
	int r;

	if (!n)
		return 0;
	old = path_key(l, "policyTypes");
	r = expect(l, n, Y_SEQ, "a list: [Ingress], [Egress] or [Ingress, Egress]");
	for (const struct ynode *t = r == 0 ? n->first : NULL; t; t = t->next, i++) {
		size_t o2 = path_idx(l, i);
		enum zt_pol_dir d = ZT_POL_INGRESS;
		const char *s = "";

		r = get_string(l, t, &s);
		if (r == 0) {
			if (!strcmp(s, "Ingress"))
				d = ZT_POL_INGRESS;
			else if (!strcmp(s, "Egress"))
				d = ZT_POL_EGRESS;
			else
				r = fail(l, &t->pos, -EINVAL,
					 "expected Ingress or Egress, got '%s'", SHOW(s));
		}
		if (r == 0 && listed[d])
			r = fail(l, &t->pos, -EINVAL, "%s is listed twice", s);
		if (r == 0)
			listed[d] = true;
		path_set(l, o2);
		if (r < 0)
			break;
	}
	path_set(l, old);
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

	r = expect(l, spec, Y_MAP, "a mapping");
	if (r == 0)
		r = check_fields(l, spec, ztp ? zt_fields : np_fields, NULL);
	if (r < 0)
		return r;

	n = map_get_set(spec, "podSelector");
	if (n) {
		old = path_key(l, "podSelector");
		r = conv_selector(l, n, &p->pod_selector);
		path_set(l, old);
		if (r < 0)
			return r;
	}

	p->mode = ZT_POL_ENFORCE;
	n = ztp ? map_get(spec, "mode") : NULL;
	if (n) {
		const char *s = "";

		old = path_key(l, "mode");
		r = get_string(l, n, &s);
		if (r == 0) {
			if (!strcmp(s, "enforce"))
				p->mode = ZT_POL_ENFORCE;
			else if (!strcmp(s, "audit"))
				p->mode = ZT_POL_AUDIT;
			else
				r = fail(l, &n->pos, -EINVAL, "expected enforce or audit, got '%s'",
					 SHOW(s));
		}
		path_set(l, old);
		if (r < 0)
			return r;
	}

	r = conv_policy_types(l, spec, p, listed);
	if (r < 0)
		return r;

	for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
		const struct ynode *list;
		struct zt_pol_rule *rules;
		size_t i = 0;

		r = conv_list(l, spec, dir_keys[d], ZT_POL_MAX_RULES, &list);
		if (r < 0)
			return r;
		if (!list)
			continue;
		total += list->nchild;
		if (total > ZT_POL_MAX_RULES)
			return fail(l, &list->pos, -E2BIG,
				    "more than %d rules in one policy; split it up",
				    ZT_POL_MAX_RULES);
		rules = arena_array(l->set->arena, list->nchild, sizeof(*rules));
		if (!rules)
			return nomem(l);
		old = path_key(l, dir_keys[d]);
		for (const struct ynode *rn = list->first; rn; rn = rn->next, i++) {
			size_t o2 = path_idx(l, i);

			rules[i].index = (unsigned int)i;
			r = conv_rule(l, rn, (enum zt_pol_dir)d, &rules[i]);
			path_set(l, o2);
			if (r < 0)
				break;
		}
		path_set(l, old);
		if (r < 0)
			return r;
		p->rules[d] = rules;
		p->n_rules[d] = list->nchild;
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
				old = path_key(l, dir_keys[d]);
				path_idx(l, i);
				r = fail(l, &rule->pos, -EINVAL,
					 "this allow rule would have no effect: policyTypes does "
					 "not list %s; add it there, or leave policyTypes out",
					 d == ZT_POL_INGRESS ? "Ingress" : "Egress");
				path_set(l, old);
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

	r = expect(l, m, Y_MAP, "a mapping with name and namespace");
	if (r == 0)
		r = check_fields(l, m, fields,
				 "Policy files take name, namespace, labels and annotations");
	if (r < 0)
		return r;

	n = map_get(m, "name");
	if (!n)
		return missing(l, m, "name", NULL);
	old = path_key(l, "name");
	r = get_string(l, n, &s);
	if (r == 0 && zt_dns_subdomain_check(s, &why) < 0)
		r = fail(l, &n->pos, -EINVAL, "'%s' %s", SHOW(s), why);
	path_set(l, old);
	if (r < 0)
		return r;
	p->name = keep(l, s);
	p->name_pos = n->pos;

	s = "default";
	n = map_get_set(m, "namespace");
	if (n) {
		old = path_key(l, "namespace");
		r = get_string(l, n, &s);
		if (r == 0 && zt_dns_label_check(s, &why) < 0)
			r = fail(l, &n->pos, -EINVAL, "'%s' %s", SHOW(s), why);
		path_set(l, old);
		if (r < 0)
			return r;
	}
	p->namespace = keep(l, s);
	if (!p->name || !p->namespace)
		return nomem(l);

	for (int i = 0; i < 2; i++) {
		const char *key = i ? "annotations" : "labels";

		n = map_get(m, key);
		if (!n)
			continue;
		old = path_key(l, key);
		r = conv_label_map(l, n, NULL, i == 1);
		path_set(l, old);
		if (r < 0)
			return r;
	}
	return 0;
}

static int new_policy(struct loader *l, const struct zt_pol_pos *pos, struct zt_policy **out)
{
	struct zt_policy_set *set = l->set;

	if (set->n >= ZT_POL_MAX_POLICIES)
		return fail(l, pos, -E2BIG, "more than %d policies in the store",
			    ZT_POL_MAX_POLICIES);
	if (set->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct zt_policy *v;

		if (cap > ZT_POL_MAX_POLICIES)
			cap = ZT_POL_MAX_POLICIES;
		v = realloc(set->policies, cap * sizeof(*v));
		if (!v)
			return nomem(l);
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

	path_set(l, 0);
	if (root->type != Y_MAP)
		return fail(l, &root->pos, -EINVAL,
			    "document %u: expected a mapping with apiVersion, kind, metadata and "
			    "spec, got %s",
			    doc + 1, ytype_name(root));
	kind_n = map_get(root, "kind");
	if (!kind_n)
		return missing(l, root, "kind", "NetworkPolicy or ZeroTrustPolicy");
	old = path_key(l, "kind");
	r = get_string(l, kind_n, &kind);
	if (r == 0) {
		if (!strcmp(kind, "NetworkPolicy"))
			l->kind = ZT_POL_NETWORK_POLICY;
		else if (!strcmp(kind, "ZeroTrustPolicy"))
			l->kind = ZT_POL_ZERO_TRUST_POLICY;
		else
			r = fail(l, &kind_n->pos, -EINVAL,
				 "'%s' is not a policy kind (document %u); policy files hold "
				 "only NetworkPolicy (networking.k8s.io/v1) and ZeroTrustPolicy "
				 "(ztagent.io/v1) documents",
				 SHOW(kind), doc + 1);
	}
	path_set(l, old);
	if (r < 0)
		return r;

	want = l->kind == ZT_POL_NETWORK_POLICY ? "networking.k8s.io/v1" : "ztagent.io/v1";
	api_n = map_get(root, "apiVersion");
	if (!api_n)
		return missing(l, root, "apiVersion", want);
	old = path_key(l, "apiVersion");
	r = get_string(l, api_n, &api);
	if (r == 0 && strcmp(api, want) != 0)
		r = fail(l, &api_n->pos, -EINVAL, "%s needs apiVersion %s, got '%s'", kind, want,
			 SHOW(api));
	path_set(l, old);
	if (r == 0)
		r = check_fields(l, root, fields, NULL);
	if (r < 0)
		return r;

	meta = map_get(root, "metadata");
	if (!meta)
		return missing(l, root, "metadata", "with at least a name");
	spec = map_get(root, "spec");
	if (!spec)
		return missing(l, root, "spec",
			       "write spec: {podSelector: {}} and the rules you mean; an absent "
			       "spec would isolate every pod of the namespace");

	r = new_policy(l, &root->pos, &p);
	if (r < 0)
		return r;
	p->kind = l->kind;
	p->file = file;
	p->doc = doc;
	p->pos = root->pos;

	old = path_key(l, "metadata");
	r = conv_metadata(l, meta, p);
	path_set(l, old);
	if (r < 0)
		return r;
	old = path_key(l, "spec");
	r = conv_spec(l, spec, p);
	path_set(l, old);
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
		return fail(l, NULL, -EIO, "SHA-256 failed");
	return 0;
}

static int load_buf(struct loader *l, const char *buf, size_t len, const char *name)
{
	yaml_parser_t parser;
	const char *file;
	unsigned int doc = 0;
	int r;

	l->name = name;
	path_set(l, 0);
	if (len > ZT_POL_MAX_FILE_BYTES)
		return fail(l, NULL, -EFBIG, "%zu bytes; a policy file may hold at most 4 MiB",
			    len);
	if (l->total_bytes + len > ZT_POL_MAX_TOTAL_BYTES)
		return fail(l, NULL, -EFBIG,
			    "the policy store holds more than 64 MiB of YAML; split it or trim it");
	l->total_bytes += len;
	r = hash_file(l, name, buf, len);
	if (r < 0)
		return r;
	file = keep(l, name);
	if (!file)
		return nomem(l);
	l->set->n_files++;

	if (!yaml_parser_initialize(&parser))
		return nomem(l);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_event_t ev;
		struct ynode *root = NULL;
		yaml_event_type_t t;

		r = next_event(l, &parser, &ev);
		if (r < 0)
			break;
		t = ev.type;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t != YAML_DOCUMENT_START_EVENT)
			continue;
		r = build_tree(l, &parser, &root);
		if (r == 0 && root && !(root->type == Y_SCALAR && root->stype == YS_NULL))
			r = conv_doc(l, root, doc, file);
		arena_release(&l->tree);
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
		return nomem(l);
	if (!EVP_DigestInit_ex(l->md, EVP_sha256(), NULL))
		return fail(l, NULL, -EIO, "SHA-256 is not available");
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
			return nomem(l);
		for (size_t i = 0; i < set->n; i++)
			v[i] = &set->policies[i];
		qsort(v, set->n, sizeof(*v), polcmp);
		for (size_t i = 1; i < set->n; i++) {
			const struct zt_policy *a = v[i - 1], *b = v[i];

			if (a->kind != b->kind || strcmp(a->namespace, b->namespace) ||
			    strcmp(a->name, b->name))
				continue;
			l->name = b->file;
			path_set(l, 0);
			path_key(l, "metadata");
			path_key(l, "name");
			r = fail(l, &b->name_pos, -EINVAL,
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
		return fail(l, NULL, -EIO, "SHA-256 failed");
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
	arena_release(&l->tree);
	EVP_MD_CTX_free(l->md);
	l->md = NULL;
}

void zt_policy_set_free(struct zt_policy_set *set)
{
	if (!set)
		return;
	if (set->arena) {
		arena_release(set->arena);
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
	path_set(l, 0);
	/* O_NONBLOCK: a FIFO named like a policy file must not hang the load. */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		return fail(l, NULL, r, "cannot open: %s", strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		r = fail(l, NULL, r, "cannot stat: %s", strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fail(l, NULL, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "not a regular file");
		goto out;
	}
	if (st.st_size > (off_t)ZT_POL_MAX_FILE_BYTES) {
		r = fail(l, NULL, -EFBIG, "%lld bytes; a policy file may hold at most 4 MiB",
			 (long long)st.st_size);
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	p = malloc(cap);
	if (!p) {
		r = nomem(l);
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			/* The file grew while we read it: take up to the limit, then refuse. */
			char *q;

			if (cap > ZT_POL_MAX_FILE_BYTES) {
				r = fail(l, NULL, -EFBIG,
					 "more than 4 MiB; a policy file may hold at most 4 MiB");
				goto out;
			}
			cap = cap * 2 > ZT_POL_MAX_FILE_BYTES + 1 ? ZT_POL_MAX_FILE_BYTES + 1 :
								    cap * 2;
			q = realloc(p, cap);
			if (!q) {
				r = nomem(l);
				goto out;
			}
			p = q;
		}
		got = read(fd, p + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			r = fail(l, NULL, r, "cannot read: %s", strerror(-r));
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
		r = fail(&l, NULL, r, "cannot open the policy directory: %s", strerror(-r));
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				r = -errno;
				r = fail(&l, NULL, r, "cannot list the policy directory: %s",
					 strerror(-r));
			}
			break;
		}
		if (!is_policy_name(de->d_name))
			continue;
		if (n == ZT_POL_MAX_FILES) {
			r = fail(&l, NULL, -E2BIG, "more than %d policy files in the directory",
				 ZT_POL_MAX_FILES);
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **v = realloc(names, nc * sizeof(*v));

			if (!v) {
				r = nomem(&l);
				break;
			}
			names = v;
			cap = nc;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = nomem(&l);
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
			r = nomem(&l);
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
