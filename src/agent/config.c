// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration file: one YAML mapping, read with libyaml's event API.
 *
 * Every key is a row in keys[] (full dotted path, kind, setter, field,
 * limits). A new section is a K_SECTION row plus one row per key under it;
 * a new kind of value is one setter. The walk never recurses on input: it
 * only descends into sections the table names, so nesting depth is bounded
 * by the table, not by the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "agent/config.h"
#include "agent/util.h"
#include "ztagent.h"

#define MAX_FILE (1u << 20)
#define SHOW_MAX 40 /* bytes of a found value quoted in a message */
#define KEY_MAX 64 /* longer keys are unknown without looking */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct pctx;
struct key;

/*
 * Checks one scalar (or one list item) and stores it into the config. For a
 * K_LIST, x->item is the item's index and v is NULL for an empty list ([]).
 */
typedef int (*setter_fn)(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);

enum kind {
	K_SECTION, /* a mapping of further keys: "<path>.<key>" rows */
	K_SCALAR, /* one value; set() is called once */
	K_LIST, /* a sequence of scalars; set() is called per item, x->item counts */
};

struct choice {
	const char *name;
	uint64_t value;
};

struct key {
	const char *path;
	enum kind kind;
	setter_fn set;
	size_t off, size; /* the field in struct zt_config */
	uint64_t min, max;
	const struct choice *choices; /* set_choice: NULL-terminated */
};

struct pctx {
	yaml_parser_t parser;
	const char *buf;
	size_t len;
	const char *name;
	struct zt_config *c;
	yaml_mark_t seen[64]; /* where each key was first set; line 0 = not yet */
	unsigned int item; /* K_LIST: index of the item being set */
	char *err;
	size_t errlen;
};

static int set_node(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_dir(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_sock(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_choice(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_uint(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_size_pow2(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_duration(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int add_iface(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_size(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_text(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_listen(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);

static const struct choice log_levels[] = {
	{ "error", ZT_LOG_ERROR },
	{ "warn", ZT_LOG_WARN },
	{ "info", ZT_LOG_INFO },
	{ "debug", ZT_LOG_DEBUG },
	{ NULL, 0 },
};
static const struct choice xdp_modes[] = {
	{ "native", ZT_XDP_NATIVE },
	{ "generic", ZT_XDP_GENERIC },
	{ NULL, 0 },
};
static const struct choice policy_defaults[] = {
	{ "deny", true },
	{ "allow", false },
	{ NULL, 0 },
};
static const struct choice malformed_actions[] = {
	{ "drop", true },
	{ "pass", false },
	{ NULL, 0 },
};

#define FIELD(f) .off = offsetof(struct zt_config, f), .size = sizeof(((struct zt_config *)0)->f)
#define SECTION(p)                           \
	{                                    \
		.path = p, .kind = K_SECTION \
	}
#define SCALAR(p, fn, f, ...)                                                 \
	{                                                                     \
		.path = p, .kind = K_SCALAR, .set = fn, FIELD(f), __VA_ARGS__ \
	}
#define LIST(p, fn, f, ...)                                                 \
	{                                                                   \
		.path = p, .kind = K_LIST, .set = fn, FIELD(f), __VA_ARGS__ \
	}
#define MS 1000000ULL
#define SEC 1000000000ULL

/* Path, setter, field, limits. Later sections (policy, database, ...) add rows here. */
static const struct key keys[] = {
	SCALAR("node", set_node, node),
	SCALAR("bpffs", set_dir, bpffs),
	SCALAR("api_socket", set_sock, api_socket),
	SCALAR("log_level", set_choice, log_level, .choices = log_levels),

	SECTION("xdp"),
	LIST("xdp.interfaces", add_iface, xdp.interfaces, .max = ZT_MAX_IFACES),
	SCALAR("xdp.mode", set_choice, xdp.mode, .choices = xdp_modes),
	SCALAR("xdp.malformed", set_choice, xdp.malformed_drop, .choices = malformed_actions),
	SCALAR("xdp.blocklist_max", set_uint, xdp.blocklist_max, .min = 1, .max = 16777216),
	SCALAR("xdp.allowlist_max", set_uint, xdp.allowlist_max, .min = 1, .max = 1048576),
	SCALAR("xdp.event_sample", set_uint, xdp.event_sample, .min = 1, .max = 1000000),
	SCALAR("xdp.event_rate", set_uint, xdp.event_rate, .min = 0, .max = 10000000),
	SCALAR("xdp.ringbuf_bytes", set_size_pow2, xdp.ringbuf_bytes, .min = 4096,
	       .max = 1ULL << 30),
	SCALAR("xdp.expiry_interval", set_duration, xdp.expiry_interval_ns, .min = 100 * MS,
	       .max = 3600 * SEC),

	SCALAR("state_dir", set_dir, state_dir),

	SECTION("policy"),
	SCALAR("policy.dir", set_dir, policy.dir),
	SCALAR("policy.default", set_choice, policy.default_deny, .choices = policy_defaults),
	SCALAR("policy.conntrack_max", set_uint, policy.conntrack_max, .min = 1024,
	       .max = 16777216),

	SECTION("database"),
	SCALAR("database.url", set_text, database.url),
	SCALAR("database.spool_dir", set_dir, database.spool_dir),
	SCALAR("database.spool_max_bytes", set_size, database.spool_max_bytes, .min = 1u << 20,
	       .max = 1ULL << 50),
	SCALAR("database.retention_months", set_uint, database.retention_months, .min = 1,
	       .max = 1200),

	SECTION("flows"),
	SCALAR("flows.active_timeout", set_duration, flows.active_timeout_ns, .min = 1 * SEC,
	       .max = 86400 * SEC),

	SECTION("metrics"),
	SCALAR("metrics.listen", set_listen, metrics.listen),
};
#undef FIELD
#undef SECTION
#undef SCALAR
#undef LIST

_Static_assert(ZT_ARRAY_SIZE(keys) <= ZT_ARRAY_SIZE(((struct pctx *)0)->seen),
	       "pctx.seen is too small for keys[]");

void zt_config_defaults(struct zt_config *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->node, sizeof(c->node)) < 0)
		c->node[0] = '\0';
	c->node[sizeof(c->node) - 1] = '\0';
	/* The hostname becomes the node name: keep it within what a file may say. */
	for (char *p = c->node; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			*p = '-';
	if (!c->node[0])
		snprintf(c->node, sizeof(c->node), "localhost");
	snprintf(c->bpffs, sizeof(c->bpffs), "%s", ZT_DEFAULT_BPFFS);
	snprintf(c->api_socket, sizeof(c->api_socket), "%s", ZT_DEFAULT_API_SOCKET);
	c->log_level = ZT_LOG_INFO;
	c->xdp.mode = ZT_XDP_NATIVE;
	c->xdp.malformed_drop = true;
	c->xdp.blocklist_max = 2097152;
	c->xdp.allowlist_max = 65536;
	c->xdp.event_sample = ZT_DEFAULT_EVENT_SAMPLE;
	c->xdp.event_rate = ZT_DEFAULT_EVENT_RATE;
	c->xdp.ringbuf_bytes = 4u << 20;
	c->xdp.expiry_interval_ns = 1 * SEC;
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", ZT_DEFAULT_STATE_DIR);
	snprintf(c->policy.dir, sizeof(c->policy.dir), "%s", ZT_DEFAULT_POLICY_DIR);
	c->policy.default_deny = true;
	c->policy.conntrack_max = 262144;
	snprintf(c->database.spool_dir, sizeof(c->database.spool_dir), "%s", ZT_DEFAULT_SPOOL_DIR);
	c->database.spool_max_bytes = 1ULL << 30;
	c->database.retention_months = 12;
	c->flows.active_timeout_ns = 60 * SEC;
	snprintf(c->metrics.listen, sizeof(c->metrics.listen), "%s", ZT_DEFAULT_METRICS_LISTEN);
}

/* A found value for a message: printable ASCII, quotes escaped, at most SHOW_MAX bytes. */
static const char *shown(const char *v, char *buf, size_t n)
{
	size_t o = 0, i;

	for (i = 0; v[i] && i < SHOW_MAX && o + 5 < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (v[i] && o + 4 <= n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static void vreport(struct pctx *x, size_t line, size_t col, const char *fmt, va_list ap)
{
	int n;

	n = snprintf(x->err, x->errlen, "%s:%zu:%zu: ", x->name, line, col);
	if (n < 0 || (size_t)n >= x->errlen)
		return;
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
}

/* Writes "name:line:col: <message>" (libyaml marks are 0-based) and returns r. */
static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(x, m->line + 1, m->column + 1, fmt, ap);
	va_end(ap);
	return r;
}

/* Same, at a byte offset into the input (reader errors carry no mark). */
static int fail_at(struct pctx *x, size_t off, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_at(struct pctx *x, size_t off, int r, const char *fmt, ...)
{
	size_t line = 1, col = 1;
	va_list ap;

	for (size_t i = 0; i < off && i < x->len; i++) {
		if (x->buf[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	va_start(ap, fmt);
	vreport(x, line, col, fmt, ap);
	va_end(ap);
	return r;
}

/* What a node is, for "expected X, got Y". */
static const char *describe(const yaml_event_t *ev, char *buf, size_t n)
{
	char q[SHOW_MAX * 4 + 8];

	switch (ev->type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_SCALAR_EVENT:
		if (!ev->data.scalar.length && ev->data.scalar.plain_implicit)
			return "nothing";
		snprintf(buf, n, "'%s'", shown((const char *)ev->data.scalar.value, q, sizeof(q)));
		return buf;
	default:
		return "something else";
	}
}

static int syntax_error(struct pctx *x)
{
	yaml_parser_t *p = &x->parser;
	const char *problem = p->problem ? p->problem : "unknown problem";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		snprintf(x->err, x->errlen, "%s: out of memory while parsing", x->name);
		return -ENOMEM;
	case YAML_READER_ERROR:
		if (p->problem_value >= 0)
			return fail_at(x, p->problem_offset, -EINVAL,
				       "YAML syntax error: %s (0x%x); the file must be UTF-8 text",
				       problem, (unsigned int)p->problem_value);
		return fail_at(x, p->problem_offset, -EINVAL,
			       "YAML syntax error: %s; the file must be UTF-8 text", problem);
	default:
		if (p->context)
			return fail(x, &p->problem_mark, -EINVAL,
				    "YAML syntax error: %s (%s at line %zu column %zu)", problem,
				    p->context, p->context_mark.line + 1,
				    p->context_mark.column + 1);
		return fail(x, &p->problem_mark, -EINVAL, "YAML syntax error: %s", problem);
	}
}

/* The next event, refusing what the configuration never needs: aliases, anchors, tags. */
static int next(struct pctx *x, yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL, *tag = NULL, *nul;
	int r;

	if (!yaml_parser_parse(&x->parser, ev))
		return syntax_error(x);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		r = fail(
			x, &ev->start_mark, -EINVAL,
			"aliases (*name) are not allowed in the configuration; write the value out");
		yaml_event_delete(ev);
		return r;
	case YAML_SCALAR_EVENT:
		/*
		 * A "\0" escape in a quoted scalar is a NUL inside the value: every
		 * setter reads a C string and would keep what comes before it
		 * ("web\0-evil" would be "web"). Refused, as the policy parser does.
		 */
		nul = ev->data.scalar.length ?
			      memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) :
			      NULL;
		if (nul) {
			r = fail(
				x, &ev->start_mark, -EINVAL,
				"a NUL byte (\\0) at byte %zu of a value; values are text without NUL",
				(size_t)(nul - ev->data.scalar.value));
			yaml_event_delete(ev);
			return r;
		}
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor) {
		r = fail(x, &ev->start_mark, -EINVAL,
			 "anchors (&name) are not allowed in the configuration");
		yaml_event_delete(ev);
		return r;
	}
	if (tag) {
		char q[SHOW_MAX * 4 + 8];

		r = fail(x, &ev->start_mark, -EINVAL,
			 "tags ('%s') are not allowed in the configuration; write the plain value",
			 shown((const char *)tag, q, sizeof(q)));
		yaml_event_delete(ev);
		return r;
	}
	return 0;
}

static void *field(struct pctx *x, const struct key *k)
{
	return (char *)x->c + k->off;
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*(uint8_t *)dst = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)dst = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)dst = (uint32_t)v;
		break;
	default:
		*(uint64_t *)dst = v;
		break;
	}
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-';
}

static int set_node(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);
	bool ok = n > 0 && n < k->size;

	for (const char *p = v; ok && *p; p++)
		ok = is_name_char(*p);
	if (!ok)
		return fail(
			x, m, -EINVAL,
			"%s: expected a name of 1 to %zu letters, digits, '.', '_' or '-', got '%s'",
			k->path, k->size - 1, shown(v, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* An absolute path without control bytes, shorter than max. */
static bool valid_path(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (v[0] != '/' || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int set_dir(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], *dst = field(x, k);
	size_t n;

	if (!valid_path(v, k->size - 1))
		return fail(
			x, m, -EINVAL,
			"%s: expected an absolute directory path of at most %zu bytes, got '%s'",
			k->path, k->size - 1, shown(v, q, sizeof(q)));
	/* No trailing slash: names are joined to it. */
	n = strlen(v);
	while (n > 1 && v[n - 1] == '/')
		n--;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int set_sock(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);

	if (!valid_path(v, SUN_PATH_MAX) || v[n - 1] == '/')
		return fail(
			x, m, -EINVAL,
			"%s: expected an absolute socket path of at most %zu bytes (not ending in '/'), got '%s'",
			k->path, SUN_PATH_MAX, shown(v, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

static int set_choice(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char want[128] = "", q[SHOW_MAX * 4 + 8];
	size_t n = 0, o = 0;

	for (const struct choice *ch = k->choices; ch->name; ch++, n++)
		if (!strcmp(v, ch->name)) {
			store_uint(field(x, k), k->size, ch->value);
			return 0;
		}
	/* "a, b or c" */
	for (size_t i = 0; i < n && o < sizeof(want); i++) {
		const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
		int r = snprintf(want + o, sizeof(want) - o, "%s%s", sep, k->choices[i].name);

		if (r < 0)
			break;
		o += (size_t)r;
	}
	return fail(x, m, -EINVAL, "%s: expected %s, got '%s'", k->path, want,
		    shown(v, q, sizeof(q)));
}

static int set_uint(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	uint64_t u;
	int r = zt_parse_u64(v, &u);

	if (r < 0 || u < k->min || u > k->max)
		return fail(x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			    "%s: expected a whole number from %llu to %llu, got '%s'", k->path,
			    (unsigned long long)k->min, (unsigned long long)k->max,
			    shown(v, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

/* 4096 -> "4KiB": the exact binary unit, for messages. */
static const char *size_str(uint64_t v, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t i = 0;

	while (i + 1 < ZT_ARRAY_SIZE(units) && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, "%llu%s", (unsigned long long)v, units[i]);
	return buf;
}

static int set_size_pow2(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t u;
	int r = zt_size_parse(v, &u);

	if (r < 0 || u < k->min || u > k->max || (u & (u - 1)))
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a power of two from %s to %s (like 4MiB or 1048576), got '%s'",
			k->path, size_str(k->min, lo, sizeof(lo)), size_str(k->max, hi, sizeof(hi)),
			shown(v, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

static int set_duration(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t ns;
	int r = zt_duration_parse(v, &ns);

	if (r < 0 || ns < k->min || ns > k->max) {
		zt_duration_format(k->min, lo, sizeof(lo));
		zt_duration_format(k->max, hi, sizeof(hi));
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a duration from %s to %s (like 500ms, 2s or 1m30s), got '%s'",
			k->path, lo, hi, shown(v, q, sizeof(q)));
	}
	store_uint(field(x, k), k->size, ns);
	return 0;
}

static int set_size(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t u;
	int r = zt_size_parse(v, &u);

	if (r < 0 || u < k->min || u > k->max)
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a size from %s to %s (like 512MiB, 1GiB or 1073741824), got '%s'",
			k->path, size_str(k->min, lo, sizeof(lo)), size_str(k->max, hi, sizeof(hi)),
			shown(v, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

/* Free text (a connection string): printable ASCII, no newlines, fits the field. */
static int set_text(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return fail(x, m, -EINVAL, "%s: control character at byte %zu in '%s'",
				    k->path, (size_t)(p - (const unsigned char *)v),
				    shown(v, q, sizeof(q)));
	if (n >= k->size)
		return fail(x, m, -ERANGE, "%s: longer than %zu bytes", k->path, k->size - 1);
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* "ADDR:PORT" with a numeric IPv4 address, "[V6]:PORT", or "" (off). */
static int set_listen(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	struct sockaddr_storage ss;

	if (*v && zt_listen_parse(v, &ss) < 0)
		return fail(
			x, m, -EINVAL,
			"%s: expected ADDRESS:PORT (like 127.0.0.1:9470 or [::1]:9470, port 1-65535) or \"\" to turn it off, got '%s'",
			k->path, shown(v, q, sizeof(q)));
	if (strlen(v) >= k->size)
		return fail(x, m, -ERANGE, "%s: longer than %zu bytes", k->path, k->size - 1);
	memcpy(field(x, k), v, strlen(v) + 1);
	return 0;
}

/* Linux's dev_valid_name(), plus printable ASCII only. */
static bool valid_ifname(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= IF_NAMESIZE || !strcmp(v, ".") || !strcmp(v, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '/' || *p == ':')
			return false;
	return true;
}

static int add_iface(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	struct zt_config *c = x->c;
	char q[SHOW_MAX * 4 + 8];

	if (x->item == 0)
		c->xdp.n_interfaces = 0; /* the file's list replaces the default */
	if (!v)
		return 0;
	if (!valid_ifname(v))
		return fail(
			x, m, -EINVAL,
			"%s: expected an interface name of 1 to %d printable characters without '/', ':' or spaces, got '%s'",
			k->path, IF_NAMESIZE - 1, shown(v, q, sizeof(q)));
	for (unsigned int i = 0; i < c->xdp.n_interfaces; i++)
		if (!strcmp(c->xdp.interfaces[i], v))
			return fail(x, m, -EINVAL, "%s: '%s' is listed twice", k->path,
				    shown(v, q, sizeof(q)));
	if (c->xdp.n_interfaces >= k->max)
		return fail(x, m, -E2BIG, "%s: more than %llu interfaces", k->path,
			    (unsigned long long)k->max);
	memcpy(c->xdp.interfaces[c->xdp.n_interfaces++], v, strlen(v) + 1);
	return 0;
}

static const char *leaf(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

/* Optimal string alignment distance (edits + transpositions), capped at 3. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[KEY_MAX + 1][KEY_MAX + 1];

	if (la > KEY_MAX || lb > KEY_MAX)
		return 3;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb] < 3 ? d[la][lb] : 3;
}

/* The row an operator probably meant: a near miss in this section, or the same name in another. */
static const struct key *suggest(const char *prefix, const char *name)
{
	size_t plen = prefix ? strlen(prefix) : 0, best = 3;
	const struct key *hit = NULL;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++) {
		const char *l = leaf(keys[i].path);
		bool same_section = (size_t)(l - keys[i].path) == (plen ? plen + 1 : 0) &&
				    (!plen || !strncmp(keys[i].path, prefix, plen));
		size_t dist;

		if (!same_section) {
			if (!strcmp(l, name))
				return &keys[i];
			continue;
		}
		dist = edit_distance(name, l);
		if (dist < best && dist < strlen(name)) {
			best = dist;
			hit = &keys[i];
		}
	}
	return hit;
}

static const struct key *find_key(const char *prefix, const char *name)
{
	size_t plen = prefix ? strlen(prefix) : 0;

	if (strchr(name, '.') || strlen(name) > KEY_MAX)
		return NULL;
	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++) {
		const char *p = keys[i].path;

		if (plen && (strncmp(p, prefix, plen) || p[plen] != '.'))
			continue;
		if (!strcmp(p + (plen ? plen + 1 : 0), name))
			return &keys[i];
	}
	return NULL;
}

static int unknown_key(struct pctx *x, const char *prefix, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.scalar.value;
	const struct key *s = suggest(prefix, name);
	char q[SHOW_MAX * 4 + 8], full[KEY_MAX * 2 + 2];

	snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
	for (size_t i = 0; strchr(name, '.') && i < ZT_ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].path, full))
			return fail(
				x, &ev->start_mark, -EINVAL,
				"unknown key '%s' (dotted keys are not expanded: write '%s:' under '%.*s:')",
				shown(full, q, sizeof(q)), leaf(keys[i].path),
				(int)(leaf(keys[i].path) - keys[i].path - 1), keys[i].path);
	if (s)
		return fail(x, &ev->start_mark, -EINVAL, "unknown key '%s' (did you mean '%s'?)",
			    shown(full, q, sizeof(q)), s->path);
	return fail(x, &ev->start_mark, -EINVAL, "unknown key '%s'", shown(full, q, sizeof(q)));
}

static int parse_list(struct pctx *x, const struct key *k)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int r;

	for (x->item = 0;; x->item++) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			if (x->item == 0)
				r = k->set(x, k, NULL, &ev.start_mark);
			yaml_event_delete(&ev);
			return r;
		}
		if (ev.type != YAML_SCALAR_EVENT)
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: expected a list of values, got %s", k->path,
				 describe(&ev, d, sizeof(d)));
		else
			r = k->set(x, k, (const char *)ev.data.scalar.value, &ev.start_mark);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

static int parse_mapping(struct pctx *x, const char *prefix);

/* The value of key k, whose name event has been consumed. */
static int parse_value(struct pctx *x, const struct key *k)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int r;

	r = next(x, &ev);
	if (r < 0)
		return r;
	switch (k->kind) {
	case K_SECTION:
		if (ev.type == YAML_SCALAR_EVENT && !ev.data.scalar.length &&
		    ev.data.scalar.plain_implicit) {
			r = 0; /* "xdp:" with nothing under it: all defaults */
		} else if (ev.type == YAML_MAPPING_START_EVENT) {
			yaml_event_delete(&ev);
			return parse_mapping(x, k->path);
		} else {
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: expected a mapping of keys (a section), got %s", k->path,
				 describe(&ev, d, sizeof(d)));
		}
		break;
	case K_LIST:
		if (ev.type == YAML_SEQUENCE_START_EVENT) {
			yaml_event_delete(&ev);
			return parse_list(x, k);
		}
		r = fail(x, &ev.start_mark, -EINVAL,
			 "%s: expected a list like [eth0, eth1] (or [] for none), got %s", k->path,
			 describe(&ev, d, sizeof(d)));
		break;
	case K_SCALAR:
		if (ev.type == YAML_SCALAR_EVENT)
			r = k->set(x, k, (const char *)ev.data.scalar.value, &ev.start_mark);
		else
			r = fail(x, &ev.start_mark, -EINVAL, "%s: expected a single value, got %s",
				 k->path, describe(&ev, d, sizeof(d)));
		break;
	}
	yaml_event_delete(&ev);
	return r;
}

/* The keys of one mapping (its start event consumed) up to its end. */
static int parse_mapping(struct pctx *x, const char *prefix)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	const struct key *k;
	yaml_mark_t *seen;
	int r;

	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = fail(x, &ev.start_mark, -EINVAL, "%s%sexpected a key name, got %s",
				 prefix ? prefix : "", prefix ? ": " : "",
				 describe(&ev, d, sizeof(d)));
			yaml_event_delete(&ev);
			return r;
		}
		k = find_key(prefix, (const char *)ev.data.scalar.value);
		if (!k) {
			r = unknown_key(x, prefix, &ev);
			yaml_event_delete(&ev);
			return r;
		}
		seen = &x->seen[k - keys];
		if (seen->line) {
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: duplicate key (first set at line %zu column %zu)", k->path,
				 seen->line, seen->column);
			yaml_event_delete(&ev);
			return r;
		}
		seen->line = ev.start_mark.line + 1;
		seen->column = ev.start_mark.column + 1;
		yaml_event_delete(&ev);
		r = parse_value(x, k);
		if (r < 0)
			return r;
	}
}

/* stream-start, at most one document holding a mapping (or nothing), stream-end. */
static int parse_stream(struct pctx *x)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int docs = 0, r;

	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			return 0;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				r = fail(
					x, &ev.start_mark, -EINVAL,
					"a second YAML document ('---'); the configuration is one mapping in one document");
				yaml_event_delete(&ev);
				return r;
			}
			break;
		case YAML_MAPPING_START_EVENT:
			yaml_event_delete(&ev);
			r = parse_mapping(x, NULL);
			if (r < 0)
				return r;
			continue;
		case YAML_SCALAR_EVENT:
			if (!ev.data.scalar.length && ev.data.scalar.plain_implicit)
				break; /* an empty document: all defaults */
			/* fall through */
		default:
			r = fail(
				x, &ev.start_mark, -EINVAL,
				"expected a mapping of keys at the top (like 'node: node-1'), got %s",
				describe(&ev, d, sizeof(d)));
			yaml_event_delete(&ev);
			return r;
		}
		yaml_event_delete(&ev);
	}
}

/* Parses into *out (defaults first); *out is scratch whatever happens. */
static int parse(const char *buf, size_t len, const char *name, struct zt_config *out, char *err,
		 size_t errlen)
{
	const char *nul = len ? memchr(buf, '\0', len) : NULL;
	struct pctx *x;
	int r;

	if (len > MAX_FILE) {
		snprintf(err, errlen,
			 "%s: the file is %zu bytes; a configuration file is at most %u bytes",
			 name, len, MAX_FILE);
		return -EFBIG;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	x->buf = buf;
	x->len = len;
	x->name = name;
	x->c = out;
	x->err = err;
	x->errlen = errlen;
	if (nul) {
		r = fail_at(x, (size_t)(nul - buf), -EINVAL,
			    "NUL byte at offset %zu; the configuration must be UTF-8 text",
			    (size_t)(nul - buf));
		free(x);
		return r;
	}
	if (!yaml_parser_initialize(&x->parser)) {
		free(x);
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&x->parser, (const unsigned char *)buf, len);
	/* Never guess UTF-16 from a byte order mark. */
	yaml_parser_set_encoding(&x->parser, YAML_UTF8_ENCODING);
	zt_config_defaults(out);
	r = parse_stream(x);
	yaml_parser_delete(&x->parser);
	free(x);
	return r;
}

/* Validates into a scratch copy, so that *c changes only on success. */
static int load(const char *buf, size_t len, const char *name, const char *path,
		struct zt_config *c, char *err, size_t errlen)
{
	struct zt_config *tmp;
	int r;

	tmp = malloc(sizeof(*tmp));
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	r = parse(buf, len, name, tmp, err, errlen);
	if (r == 0) {
		snprintf(tmp->path, sizeof(tmp->path), "%s", path);
		*c = *tmp;
		if (errlen)
			err[0] = '\0';
	}
	free(tmp);
	return r;
}

int zt_config_load_buf(const char *buf, size_t len, const char *name, struct zt_config *c,
		       char *err, size_t errlen)
{
	if (!err)
		errlen = 0;
	if (!name)
		name = "<config>";
	if (!buf && len) {
		snprintf(err, errlen, "%s: no buffer", name);
		return -EINVAL;
	}
	return load(buf ? buf : "", len, name, "", c, err, errlen);
}

int zt_config_load(const char *path, struct zt_config *c, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, cap;
	ssize_t n;
	int fd, r;

	if (!err)
		errlen = 0;
	if (!path || !*path) {
		snprintf(err, errlen, "no configuration file given");
		return -EINVAL;
	}
	if (strlen(path) >= PATH_MAX) {
		snprintf(err, errlen, "configuration path is longer than %d bytes", PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	/* O_NONBLOCK: a FIFO put in its place must not hang the start. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (st.st_size > (off_t)MAX_FILE) {
		snprintf(err, errlen,
			 "%s: the file is %lld bytes; a configuration file is at most %u bytes",
			 path, (long long)st.st_size, MAX_FILE);
		r = -EFBIG;
		goto out;
	}
	/* Read to EOF, not to st_size: the size may be 0 (procfs) or change under us. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		if (got == cap) {
			char *nb;

			if (cap > MAX_FILE) {
				snprintf(
					err, errlen,
					"%s: the file is over %u bytes; a configuration file is at most %u bytes",
					path, MAX_FILE, MAX_FILE);
				r = -EFBIG;
				goto out;
			}
			cap = cap * 2 > MAX_FILE + 1 ? MAX_FILE + 1 : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = load(buf, got, path, path, c, err, errlen);
out:
	free(buf);
	close(fd);
	return r;
}
