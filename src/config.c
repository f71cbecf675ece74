// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "util.h"
#include "ztagent.h"

#define MAX_FILE (1u << 20)

enum vtype {
	V_MAP, /* a section */
	V_NODE, /* node name */
	V_PATH, /* absolute path */
	V_SOCKPATH, /* absolute path that fits sun_path */
	V_LOGLEVEL,
	V_IFLIST,
	V_XDPMODE,
	V_MALFORMED,
	V_U32,
	V_SIZE_POW2,
	V_DURATION,
};

struct key {
	const char *path;
	enum vtype type;
	size_t off;
	uint64_t min, max;
};

#define F(field) offsetof(struct zt_config, field)
static const struct key keys[] = {
	{ "node", V_NODE, F(node), 0, 0 },
	{ "bpffs", V_PATH, F(bpffs), 0, 0 },
	{ "api_socket", V_SOCKPATH, F(api_socket), 0, 0 },
	{ "log_level", V_LOGLEVEL, F(log_level), 0, 0 },
	{ "xdp", V_MAP, 0, 0, 0 },
	{ "xdp.interfaces", V_IFLIST, 0, 0, 0 },
	{ "xdp.mode", V_XDPMODE, F(xdp.mode), 0, 0 },
	{ "xdp.malformed", V_MALFORMED, F(xdp.malformed_drop), 0, 0 },
	{ "xdp.blocklist_max", V_U32, F(xdp.blocklist_max), 1, 16777216 },
	{ "xdp.allowlist_max", V_U32, F(xdp.allowlist_max), 1, 1048576 },
	{ "xdp.event_sample", V_U32, F(xdp.event_sample), 1, 1000000 },
	{ "xdp.event_rate", V_U32, F(xdp.event_rate), 0, 10000000 },
	{ "xdp.ringbuf_bytes", V_SIZE_POW2, F(xdp.ringbuf_bytes), 4096, 1ULL << 30 },
	{ "xdp.expiry_interval", V_DURATION, F(xdp.expiry_interval_ns), 100000000ULL,
	  3600000000000ULL },
};
#undef F

struct pctx {
	yaml_parser_t parser;
	const char *name;
	struct zt_config *c;
	bool seen[ZT_ARRAY_SIZE(keys)];
	char *err;
	size_t errlen;
};

void zt_config_defaults(struct zt_config *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->node, sizeof(c->node)) < 0 || !c->node[0])
		snprintf(c->node, sizeof(c->node), "localhost");
	c->node[sizeof(c->node) - 1] = '\0';
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
	c->xdp.expiry_interval_ns = 1000000000ULL;
}

/* 'value' for messages: printable, at most 40 bytes. */
static const char *shown(const char *v, char *buf, size_t n)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)v; *p && o + 8 < n; p++) {
		if (p - (const unsigned char *)v >= 40) {
			o += (size_t)snprintf(buf + o, n - o, "...");
			break;
		}
		if (*p < 0x20 || *p >= 0x7f || *p == '\'')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	buf[o] = '\0';
	return buf;
}

static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(x->err, x->errlen, "%s:%zu:%zu: ", x->name, m->line + 1, m->column + 1);
	if (n < 0 || (size_t)n >= x->errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return r;
}

static int next(struct pctx *x, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&x->parser, ev)) {
		yaml_mark_t m = x->parser.problem_mark;

		return fail(x, &m, -EINVAL, "YAML syntax error: %s%s%s",
			    x->parser.problem ? x->parser.problem : "unknown problem",
			    x->parser.context ? " " : "",
			    x->parser.context ? x->parser.context : "");
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		int r = fail(x, &ev->start_mark, -EINVAL,
			     "aliases are not allowed in the configuration");
		yaml_event_delete(ev);
		return r;
	}
	if ((ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor) ||
	    (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor) ||
	    (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor)) {
		int r = fail(x, &ev->start_mark, -EINVAL,
			     "anchors are not allowed in the configuration");
		yaml_event_delete(ev);
		return r;
	}
	return 0;
}

static const char *type_name(yaml_event_type_t t)
{
	switch (t) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_SCALAR_EVENT:
		return "a value";
	default:
		return "something else";
	}
}

static bool valid_name(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(extra, *p)))
			return false;
	return true;
}

static int set_scalar(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[200];
	void *dst = (char *)x->c + k->off;
	uint64_t u;
	int r;

	switch (k->type) {
	case V_NODE:
		if (!valid_name(v, ZT_NODE_NAME_MAX - 1, "._-"))
			return fail(
				x, m, -EINVAL,
				"%s: expected a name of 1 to %d letters, digits, '.', '_' or '-', got '%s'",
				k->path, ZT_NODE_NAME_MAX - 1, shown(v, q, sizeof(q)));
		snprintf(dst, ZT_NODE_NAME_MAX, "%s", v);
		return 0;
	case V_PATH:
	case V_SOCKPATH: {
		size_t max = k->type == V_SOCKPATH ? 107 : PATH_MAX - 1;

		if (v[0] != '/' || strlen(v) > max)
			return fail(x, m, -EINVAL,
				    "%s: expected an absolute path of at most %zu bytes, got '%s'",
				    k->path, max, shown(v, q, sizeof(q)));
		snprintf(dst, PATH_MAX, "%s", v);
		/* No trailing slash: it is joined with names. */
		for (size_t n = strlen(dst); n > 1 && ((char *)dst)[n - 1] == '/'; n--)
			((char *)dst)[n - 1] = '\0';
		return 0;
	}
	case V_LOGLEVEL:
		if (zt_log_level_parse(v, dst) < 0)
			return fail(x, m, -EINVAL,
				    "%s: expected error, warn, info or debug, got '%s'", k->path,
				    shown(v, q, sizeof(q)));
		return 0;
	case V_XDPMODE:
		if (!strcmp(v, "native"))
			*(enum zt_xdp_mode *)dst = ZT_XDP_NATIVE;
		else if (!strcmp(v, "generic"))
			*(enum zt_xdp_mode *)dst = ZT_XDP_GENERIC;
		else
			return fail(x, m, -EINVAL, "%s: expected native or generic, got '%s'",
				    k->path, shown(v, q, sizeof(q)));
		return 0;
	case V_MALFORMED:
		if (!strcmp(v, "drop"))
			*(bool *)dst = true;
		else if (!strcmp(v, "pass"))
			*(bool *)dst = false;
		else
			return fail(x, m, -EINVAL, "%s: expected drop or pass, got '%s'", k->path,
				    shown(v, q, sizeof(q)));
		return 0;
	case V_U32:
		r = zt_parse_u64(v, &u);
		if (r < 0 || u < k->min || u > k->max)
			return fail(x, m, -ERANGE,
				    "%s: expected a whole number from %llu to %llu, got '%s'",
				    k->path, (unsigned long long)k->min, (unsigned long long)k->max,
				    shown(v, q, sizeof(q)));
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case V_SIZE_POW2:
		r = zt_size_parse(v, &u);
		if (r < 0 || u < k->min || u > k->max || (u & (u - 1)))
			return fail(
				x, m, -ERANGE,
				"%s: expected a power of two from 4KiB to 1GiB (e.g. 4MiB), got '%s'",
				k->path, shown(v, q, sizeof(q)));
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case V_DURATION:
		r = zt_duration_parse(v, &u);
		if (r < 0 || u < k->min || u > k->max)
			return fail(
				x, m, -ERANGE,
				"%s: expected a duration from 100ms to 1h (e.g. 500ms, 2s), got '%s'",
				k->path, shown(v, q, sizeof(q)));
		*(uint64_t *)dst = u;
		return 0;
	default:
		return fail(x, m, -EINVAL, "%s: internal: unexpected type", k->path);
	}
}

static int parse_iflist(struct pctx *x, const struct key *k)
{
	struct zt_config *c = x->c;
	yaml_event_t ev;
	char q[200];
	int r;

	c->xdp.n_interfaces = 0;
	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = fail(x, &ev.start_mark, -EINVAL, "%s: expected interface names, got %s",
				 k->path, type_name(ev.type));
			yaml_event_delete(&ev);
			return r;
		}
		{
			const char *v = (const char *)ev.data.scalar.value;
			unsigned int i;

			if (!valid_name(v, IF_NAMESIZE - 1, "._-@:"))
				r = fail(
					x, &ev.start_mark, -EINVAL,
					"%s: expected an interface name of 1 to %d characters, got '%s'",
					k->path, IF_NAMESIZE - 1, shown(v, q, sizeof(q)));
			for (i = 0; r == 0 && i < c->xdp.n_interfaces; i++)
				if (!strcmp(c->xdp.interfaces[i], v))
					r = fail(x, &ev.start_mark, -EINVAL,
						 "%s: '%s' is listed twice", k->path, v);
			if (r == 0 && c->xdp.n_interfaces >= ZT_MAX_IFACES)
				r = fail(x, &ev.start_mark, -E2BIG, "%s: more than %d interfaces",
					 k->path, ZT_MAX_IFACES);
			if (r == 0)
				snprintf(c->xdp.interfaces[c->xdp.n_interfaces++], IF_NAMESIZE,
					 "%s", v);
		}
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

static int parse_mapping(struct pctx *x, const char *prefix)
{
	yaml_event_t ev, val;
	char path[128], q[200];
	int r;

	for (;;) {
		const struct key *k = NULL;
		size_t i;

		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = fail(x, &ev.start_mark, -EINVAL, "%s%sexpected a key, got %s",
				 prefix ? prefix : "", prefix ? ": " : "", type_name(ev.type));
			yaml_event_delete(&ev);
			return r;
		}
		snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
			 (const char *)ev.data.scalar.value);
		for (i = 0; i < ZT_ARRAY_SIZE(keys); i++)
			if (!strcmp(keys[i].path, path)) {
				k = &keys[i];
				break;
			}
		if (!k) {
			r = fail(x, &ev.start_mark, -EINVAL, "unknown key '%s'",
				 shown(path, q, sizeof(q)));
			yaml_event_delete(&ev);
			return r;
		}
		if (x->seen[i]) {
			r = fail(x, &ev.start_mark, -EINVAL, "%s: duplicate key", k->path);
			yaml_event_delete(&ev);
			return r;
		}
		x->seen[i] = true;
		yaml_event_delete(&ev);

		r = next(x, &val);
		if (r < 0)
			return r;
		if (k->type == V_MAP) {
			if (val.type == YAML_SCALAR_EVENT && !val.data.scalar.value[0]) {
				yaml_event_delete(&val); /* "xdp:" with nothing: defaults */
				continue;
			}
			if (val.type != YAML_MAPPING_START_EVENT) {
				r = fail(x, &val.start_mark, -EINVAL,
					 "%s: expected a mapping, got %s", k->path,
					 type_name(val.type));
				yaml_event_delete(&val);
				return r;
			}
			yaml_event_delete(&val);
			r = parse_mapping(x, k->path);
		} else if (k->type == V_IFLIST) {
			if (val.type != YAML_SEQUENCE_START_EVENT) {
				r = fail(
					x, &val.start_mark, -EINVAL,
					"%s: expected a list of interface names like [eth0], got %s",
					k->path, type_name(val.type));
				yaml_event_delete(&val);
				return r;
			}
			yaml_event_delete(&val);
			r = parse_iflist(x, k);
		} else {
			if (val.type != YAML_SCALAR_EVENT) {
				r = fail(x, &val.start_mark, -EINVAL,
					 "%s: expected a value, got %s", k->path,
					 type_name(val.type));
				yaml_event_delete(&val);
				return r;
			}
			r = set_scalar(x, k, (const char *)val.data.scalar.value, &val.start_mark);
			yaml_event_delete(&val);
		}
		if (r < 0)
			return r;
	}
}

static int parse_doc(struct pctx *x)
{
	yaml_event_t ev;
	bool have_doc = false;
	int r;

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
			if (have_doc) {
				r = fail(
					x, &ev.start_mark, -EINVAL,
					"more than one YAML document; the configuration is one mapping");
				yaml_event_delete(&ev);
				return r;
			}
			have_doc = true;
			break;
		case YAML_MAPPING_START_EVENT:
			yaml_event_delete(&ev);
			r = parse_mapping(x, NULL);
			if (r < 0)
				return r;
			continue;
		case YAML_SCALAR_EVENT:
			if (!ev.data.scalar.value[0] && ev.data.scalar.plain_implicit)
				break; /* an empty document: all defaults */
			/* fall through */
		default:
			r = fail(x, &ev.start_mark, -EINVAL,
				 "expected a mapping of keys (like 'xdp:'), got %s",
				 type_name(ev.type));
			yaml_event_delete(&ev);
			return r;
		}
		yaml_event_delete(&ev);
	}
}

int zt_config_load_buf(const char *buf, size_t len, const char *name, struct zt_config *out,
		       char *err, size_t errlen)
{
	struct zt_config *c;
	struct pctx *x;
	int r;

	if (len > MAX_FILE) {
		snprintf(err, errlen, "%s: %zu bytes; a configuration file is at most %u bytes",
			 name, len, MAX_FILE);
		return -EFBIG;
	}
	if (memchr(buf, '\0', len)) {
		size_t off = (size_t)((const char *)memchr(buf, '\0', len) - buf);

		snprintf(err, errlen, "%s: NUL byte at offset %zu; not a text file", name, off);
		return -EINVAL;
	}
	c = malloc(sizeof(*c));
	x = calloc(1, sizeof(*x));
	if (!c || !x) {
		free(c);
		free(x);
		return -ENOMEM;
	}
	zt_config_defaults(c);
	if (!yaml_parser_initialize(&x->parser)) {
		free(c);
		free(x);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&x->parser, (const unsigned char *)buf, len);
	x->name = name;
	x->c = c;
	x->err = err;
	x->errlen = errlen;
	r = parse_doc(x);
	yaml_parser_delete(&x->parser);
	if (r == 0) {
		*out = *c;
		if (name[0] == '/')
			snprintf(out->path, sizeof(out->path), "%s", name);
	}
	free(c);
	free(x);
	return r;
}

int zt_config_load(const char *path, struct zt_config *c, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size > MAX_FILE) {
		close(fd);
		snprintf(err, errlen, "%s: %lld bytes; a configuration file is at most %u bytes",
			 path, (long long)st.st_size, MAX_FILE);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	r = zt_config_load_buf(buf, got, path, c, err, errlen);
	free(buf);
	return r;
}
