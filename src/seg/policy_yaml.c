// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy parser's first stage: YAML into a tree of nodes with positions
 * (YAML 1.1 plain-scalar resolution, as Kubernetes' decoder reads it; duplicate
 * keys, aliases and oversized documents refused), and typed accessors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg/policy_yaml.h"

/* Zeroed memory that lives until the arena is freed; NULL when out of memory. */
void *zt_pol_arena_alloc(struct zt_pol_arena *a, size_t size)
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

void *zt_pol_arena_array(struct zt_pol_arena *a, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / 2 / n)
		return NULL;
	return zt_pol_arena_alloc(a, n * size);
}

static char *arena_strndup(struct zt_pol_arena *a, const char *s, size_t n)
{
	char *p = zt_pol_arena_alloc(a, n + 1);

	if (p)
		memcpy(p, s, n);
	return p;
}

void zt_pol_arena_release(struct zt_pol_arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	a->head = NULL;
}

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

int yt_fail(struct loader *l, const struct zt_pol_pos *pos, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errf(l, pos, fmt, ap);
	va_end(ap);
	return rc;
}

int yt_nomem(struct loader *l)
{
	return yt_fail(l, NULL, -ENOMEM, "out of memory");
}

/* A value for messages: printable ASCII, at most 60 bytes. */
const char *yt_shown(const char *v, size_t len, char *buf, size_t n)
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

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

bool yt_all_digits(const char *s)
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
		return yt_all_digits(s);
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

int yt_next_event(struct loader *l, yaml_parser_t *p, yaml_event_t *ev)
{
	const char *anchor = NULL, *tag = NULL;
	struct zt_pol_pos pos;

	if (!yaml_parser_parse(p, ev)) {
		struct zt_pol_pos m = { (unsigned int)p->problem_mark.line + 1,
					(unsigned int)p->problem_mark.column + 1 };

		if (p->error == YAML_MEMORY_ERROR)
			return yt_nomem(l);
		return yt_fail(l, &m, -EINVAL, "YAML syntax error: %s%s%s",
			       p->problem ? p->problem : "unknown problem", p->context ? " " : "",
			       p->context ? p->context : "");
	}
	pos.line = (unsigned int)ev->start_mark.line + 1;
	pos.column = (unsigned int)ev->start_mark.column + 1;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		yaml_event_delete(ev);
		return yt_fail(
			l, &pos, -EINVAL,
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
		return yt_fail(
			l, &pos, -EINVAL,
			"YAML anchors (&name) are not allowed in policy files; write it out");
	}
	if (tag) {
		int r = yt_fail(l, &pos, -EINVAL, "YAML tags (%s) are not allowed in policy files",
				SHOW(tag));

		yaml_event_delete(ev);
		return r;
	}
	return 0;
}

const char *yt_ytype_name(const struct ynode *n)
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
		return yt_nomem(l);
	for (const struct ynode *k = m->first; k; k = k->next->next)
		keys[i++] = k;
	qsort(keys, n, sizeof(*keys), keycmp);
	for (i = 1; i < n; i++)
		if (strcmp(keys[i - 1]->s, keys[i]->s) == 0) {
			r = yt_fail(l, &keys[i]->pos, -EINVAL,
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
			return yt_fail(l, &n->pos, -EINVAL,
				       "mapping keys must be plain words, got %s",
				       yt_ytype_name(n));
		if (n->stype != YS_STR && n->stype != YS_INT)
			return yt_fail(l, &n->pos, -EINVAL,
				       "key '%s' is read by YAML as %s; put it in quotes",
				       SHOW(n->s), yt_ytype_name(n));
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
int yt_build_tree(struct loader *l, yaml_parser_t *p, struct ynode **root)
{
	struct ynode *stack[ZT_POL_MAX_DEPTH];
	size_t depth = 0;
	yaml_event_t ev;
	int r;

	*root = NULL;
	l->nodes = 0;
	for (;;) {
		struct ynode *n = NULL;

		r = yt_next_event(l, p, &ev);
		if (r < 0)
			return r;
		switch (ev.type) {
		case YAML_DOCUMENT_END_EVENT:
			yaml_event_delete(&ev);
			return 0;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth == 0) {
				r = yt_fail(l, NULL, -EINVAL,
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
				r = yt_fail(l,
					    &(struct zt_pol_pos){
						    (unsigned int)ev.start_mark.line + 1,
						    (unsigned int)ev.start_mark.column + 1 },
					    -E2BIG,
					    "the document has more than %u YAML nodes; split it up",
					    ZT_POL_MAX_NODES);
				break;
			}
			n = zt_pol_arena_alloc(&l->tree, sizeof(*n));
			if (!n) {
				r = yt_nomem(l);
				break;
			}
			n->pos.line = (unsigned int)ev.start_mark.line + 1;
			n->pos.column = (unsigned int)ev.start_mark.column + 1;
			if (ev.type == YAML_SCALAR_EVENT) {
				const char *v = (const char *)ev.data.scalar.value;
				size_t len = ev.data.scalar.length;

				n->type = Y_SCALAR;
				if (len > ZT_POL_MAX_SCALAR) {
					r = yt_fail(l, &n->pos, -E2BIG,
						    "a value of %zu bytes; the limit is %u", len,
						    ZT_POL_MAX_SCALAR);
					break;
				}
				if (memchr(v, '\0', len)) {
					r = yt_fail(l, &n->pos, -EINVAL,
						    "a value contains a NUL byte");
					break;
				}
				n->s = arena_strndup(&l->tree, v, len);
				if (!n->s) {
					r = yt_nomem(l);
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
					r = yt_fail(l, &n->pos, -E2BIG,
						    "nesting deeper than %d levels",
						    ZT_POL_MAX_DEPTH);
					break;
				}
				stack[depth++] = n;
			}
			break;
		default:
			r = yt_fail(l, NULL, -EINVAL, "YAML syntax error: unexpected event %d",
				    (int)ev.type);
			break;
		}
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

/* ---- conversion helpers ----------------------------------------------- */

size_t yt_path_key(struct loader *l, const char *key)
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

size_t yt_path_idx(struct loader *l, size_t i)
{
	size_t old = l->plen;
	int n = snprintf(l->path + old, sizeof(l->path) - old, "[%zu]", i);

	if (n > 0)
		l->plen = old + (size_t)n < sizeof(l->path) ? old + (size_t)n : sizeof(l->path) - 1;
	return old;
}

void yt_path_set(struct loader *l, size_t len)
{
	l->plen = len;
	l->path[len] = '\0';
}

const struct ynode *yt_map_get(const struct ynode *m, const char *key)
{
	for (const struct ynode *k = m->first; k; k = k->next->next)
		if (strcmp(k->s, key) == 0)
			return k->next;
	return NULL;
}

/* The value of key unless it is absent or null. */
const struct ynode *yt_map_get_set(const struct ynode *m, const char *key)
{
	const struct ynode *v = yt_map_get(m, key);

	return v && !(v->type == Y_SCALAR && v->stype == YS_NULL) ? v : NULL;
}

int yt_missing(struct loader *l, const struct ynode *m, const char *key, const char *hint)
{
	size_t old = yt_path_key(l, key);
	int r = yt_fail(l, &m->pos, -EINVAL, "is required%s%s", hint ? "; " : "", hint ? hint : "");

	yt_path_set(l, old);
	return r;
}

int yt_check_fields(struct loader *l, const struct ynode *m, const char *const *allowed,
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
		old = yt_path_key(l, k->s);
		r = yt_fail(l, &k->pos, -EINVAL, "unknown field; expected %s%s%s", list,
			    hint ? ". " : "", hint ? hint : "");
		yt_path_set(l, old);
		return r;
	}
	return 0;
}

int yt_expect(struct loader *l, const struct ynode *n, enum ytype t, const char *what)
{
	if (n->type == t)
		return 0;
	return yt_fail(l, &n->pos, -EINVAL, "expected %s, got %s", what, yt_ytype_name(n));
}

int yt_get_string(struct loader *l, const struct ynode *n, const char **out)
{
	if (n->type != Y_SCALAR)
		return yt_fail(l, &n->pos, -EINVAL, "expected a string, got %s", yt_ytype_name(n));
	if (n->stype != YS_STR)
		return yt_fail(l, &n->pos, -EINVAL,
			       "expected a string, got %s ('%s'); put it in quotes if it is meant "
			       "as text",
			       yt_ytype_name(n), SHOW(n->s));
	*out = n->s;
	return 0;
}

int yt_get_bool(struct loader *l, const struct ynode *n, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };

	if (n->type == Y_SCALAR && n->stype == YS_BOOL && str_in(n->s, yes))
		*out = true;
	else if (n->type == Y_SCALAR && n->stype == YS_BOOL && str_in(n->s, no))
		*out = false;
	else
		return yt_fail(l, &n->pos, -EINVAL, "expected true or false, got %s%s%s%s",
			       yt_ytype_name(n), n->type == Y_SCALAR ? " '" : "",
			       n->type == Y_SCALAR ? SHOW(n->s) : "",
			       n->type == Y_SCALAR ? "'" : "");
	return 0;
}

/* A plain decimal number in [lo, hi]. */
int yt_get_uint(struct loader *l, const struct ynode *n, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v;

	if (n->type != Y_SCALAR || (n->stype != YS_INT && n->stype != YS_FLOAT))
		return yt_fail(
			l, &n->pos, -EINVAL, "expected a number from %llu to %llu, got %s%s%s%s",
			(unsigned long long)lo, (unsigned long long)hi, yt_ytype_name(n),
			n->type == Y_SCALAR ? " '" : "", n->type == Y_SCALAR ? SHOW(n->s) : "",
			n->type == Y_SCALAR ? "'" : "");
	if (!yt_all_digits(n->s) || (n->s[0] == '0' && n->s[1]) || zt_parse_u64(n->s, &v) < 0 ||
	    v < lo || v > hi)
		return yt_fail(l, &n->pos, -ERANGE,
			       "expected a decimal number from %llu to %llu, got '%s'",
			       (unsigned long long)lo, (unsigned long long)hi, SHOW(n->s));
	*out = v;
	return 0;
}

char *yt_keep(struct loader *l, const char *s)
{
	return arena_strndup(l->set->arena, s, strlen(s));
}
