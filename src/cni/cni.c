// SPDX-License-Identifier: GPL-2.0-only
/* ztagent-cni's pure part (cni.h): configuration, prevResult, CNI_ARGS, errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util.h"
#include "cni/cni.h"
#include "ztagent.h"

const char *const zt_cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", NULL };

int zt_cni_fail(struct zt_cni_err *e, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	snprintf(e->details, sizeof(e->details), "%s", details ? details : "");
	return -code;
}

char *zt_cni_err_json(const char *version, const struct zt_cni_err *e)
{
	json_object *o = json_object_new_object();
	char *out = NULL;

	if (!o)
		return NULL;
	if (json_object_object_add(
		    o, "cniVersion",
		    json_object_new_string(version && *version ? version : ZT_CNI_LATEST)) ||
	    json_object_object_add(o, "code", json_object_new_int(e->code)) ||
	    json_object_object_add(o, "msg", json_object_new_string(e->msg)) ||
	    (e->details[0] &&
	     json_object_object_add(o, "details", json_object_new_string(e->details))))
		goto out;
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	return out;
}

bool zt_cni_version_ok(const char *v)
{
	for (size_t i = 0; zt_cni_versions[i]; i++)
		if (!strcmp(v, zt_cni_versions[i]))
			return true;
	return false;
}

/* Both are in zt_cni_versions: the list is in order. */
bool zt_cni_version_ge(const char *a, const char *b)
{
	int ia = -1, ib = -1;

	for (int i = 0; zt_cni_versions[i]; i++) {
		if (!strcmp(a, zt_cni_versions[i]))
			ia = i;
		if (!strcmp(b, zt_cni_versions[i]))
			ib = i;
	}
	return ia >= 0 && ib >= 0 && ia >= ib;
}

/* ---- JSON helpers ---- */

/* A string without NUL bytes, shorter than n; printable ASCII when plain. */
static int str_of(json_object *v, const char *what, char *buf, size_t n, bool plain,
		  struct zt_cni_err *e)
{
	const char *s;
	int len;

	if (!v || !json_object_is_type(v, json_type_string))
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "%s: expected a string", what);
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len < 0 || strlen(s) != (size_t)len)
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "%s: contains a NUL byte", what);
	if ((size_t)len >= n)
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "%s: longer than %zu bytes", what,
				   n - 1);
	for (int i = 0; plain && i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "%s: control or non-ASCII character at byte %d", what,
					   i);
	memcpy(buf, s, (size_t)len + 1);
	return 0;
}

static bool ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Past one JSON string starting at buf[i] == '"'; len when unterminated. */
static size_t skip_string(const char *buf, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (buf[i] == '\\')
			i++;
		else if (buf[i] == '"')
			return i + 1;
	}
	return len;
}

/* Past one JSON value starting at buf[i] (not whitespace). */
static size_t skip_value(const char *buf, size_t len, size_t i)
{
	size_t depth = 0;

	if (i >= len)
		return len;
	if (buf[i] != '{' && buf[i] != '[' && buf[i] != '"') {
		while (i < len && !ws(buf[i]) && buf[i] != ',' && buf[i] != '}' && buf[i] != ']')
			i++;
		return i;
	}
	while (i < len) {
		char c = buf[i];

		if (c == '"') {
			i = skip_string(buf, len, i);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return len;
}

int zt_cni_member_span(const char *buf, size_t len, const char *key, size_t *off, size_t *n)
{
	size_t i = 0;
	bool found = false;

	while (i < len && ws(buf[i]))
		i++;
	if (i >= len || buf[i] != '{')
		return -EINVAL;
	i++;
	for (;;) {
		size_t ks, ke, vs, ve;
		bool match = false;

		while (i < len && (ws(buf[i]) || buf[i] == ','))
			i++;
		if (i >= len)
			return -EINVAL;
		if (buf[i] == '}')
			break;
		if (buf[i] != '"')
			return -EINVAL;
		ks = i;
		ke = skip_string(buf, len, i);
		if (ke >= len)
			return -EINVAL;
		/* Keys may be written with escapes: compare them decoded. */
		if (ke - ks - 2 == strlen(key) && !memchr(buf + ks, '\\', ke - ks)) {
			match = !memcmp(buf + ks + 1, key, ke - ks - 2);
		} else if (memchr(buf + ks, '\\', ke - ks) && ke - ks < 4096) {
			char tmp[4096];
			json_object *k;

			memcpy(tmp, buf + ks, ke - ks);
			tmp[ke - ks] = '\0';
			k = json_tokener_parse(tmp);
			match = k && json_object_is_type(k, json_type_string) &&
				!strcmp(json_object_get_string(k), key) &&
				json_object_get_string_len(k) == (int)strlen(key);
			json_object_put(k);
		}
		i = ke;
		while (i < len && ws(buf[i]))
			i++;
		if (i >= len || buf[i] != ':')
			return -EINVAL;
		i++;
		while (i < len && ws(buf[i]))
			i++;
		vs = i;
		ve = skip_value(buf, len, i);
		if (ve <= vs || ve > len)
			return -EINVAL;
		if (match) {
			*off = vs;
			*n = ve - vs;
			found = true;
		}
		i = ve;
	}
	return found ? 0 : -ENOENT;
}

/* ---- the network configuration ---- */

static int conf_timeout(json_object *v, uint64_t *out, struct zt_cni_err *e)
{
	char txt[64];
	uint64_t ns;

	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
		double s = json_object_get_double(v);

		if (!(s >= 0.1 && s <= 300))
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "timeout: expected 0.1 to 300 seconds, got %g", s);
		*out = (uint64_t)(s * 1e9);
		return 0;
	}
	if (str_of(v, "timeout", txt, sizeof(txt), true, e) < 0 ||
	    zt_duration_parse(txt, &ns) < 0 || ns < 100000000ULL || ns > 300000000000ULL)
		return zt_cni_fail(
			e, ZT_CNI_E_CONFIG, NULL,
			"timeout: expected seconds (a number) or a duration like \"5s\", 100ms to 5m");
	*out = ns;
	return 0;
}

static int conf_path(json_object *root, const char *key, char *buf, size_t n, struct zt_cni_err *e)
{
	json_object *v;

	if (!json_object_object_get_ex(root, key, &v))
		return 0;
	if (str_of(v, key, buf, n, true, e) < 0)
		return -e->code;
	if (buf[0] != '/' || buf[strlen(buf) - 1] == '/')
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
				   "%s: expected an absolute path (not ending in '/'), got '%s'",
				   key, buf);
	return 0;
}

int zt_cni_conf_parse(const char *buf, size_t len, bool need_prev, struct zt_cni_conf *c,
		      struct zt_cni_err *e)
{
	enum json_tokener_error je;
	json_tokener *tok = NULL;
	json_object *v;
	size_t end = len;
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->socket, sizeof(c->socket), "%s", ZT_DEFAULT_API_SOCKET);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", ZT_CNI_DEFAULT_STATE_DIR);
	c->timeout_ns = ZT_CNI_DEFAULT_TIMEOUT_NS;
	if (len > ZT_CNI_MAX_STDIN)
		return zt_cni_fail(e, ZT_CNI_E_DECODE, NULL,
				   "the network configuration is %zu bytes, more than %u", len,
				   ZT_CNI_MAX_STDIN);
	if (memchr(buf, '\0', len))
		return zt_cni_fail(e, ZT_CNI_E_DECODE, NULL,
				   "the network configuration contains a NUL byte");
	while (end && ws(buf[end - 1]))
		end--;
	tok = json_tokener_new_ex(ZT_CNI_JSON_DEPTH);
	if (!tok)
		return zt_cni_fail(e, ZT_CNI_E_IO, NULL, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	c->root = json_tokener_parse_ex(tok, buf, (int)end);
	je = json_tokener_get_error(tok);
	if (je == json_tokener_continue) {
		c->root = json_tokener_parse_ex(tok, "", 1);
		je = json_tokener_get_error(tok);
	}
	if (je != json_tokener_success || !c->root || json_tokener_get_parse_end(tok) != end) {
		r = zt_cni_fail(e, ZT_CNI_E_DECODE, NULL,
				"the network configuration on stdin is not JSON: %s (at byte %zu)",
				je != json_tokener_success ? json_tokener_error_desc(je) :
							     "trailing data",
				json_tokener_get_parse_end(tok));
		goto fail;
	}
	if (!json_object_is_type(c->root, json_type_object)) {
		r = zt_cni_fail(e, ZT_CNI_E_DECODE, NULL,
				"the network configuration on stdin is not a JSON object");
		goto fail;
	}
	if (!json_object_object_get_ex(c->root, "cniVersion", &v)) {
		r = zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "cniVersion: missing");
		goto fail;
	}
	if ((r = str_of(v, "cniVersion", c->version, sizeof(c->version), true, e)) < 0)
		goto fail;
	if (!zt_cni_version_ok(c->version)) {
		char v2[16];

		snprintf(v2, sizeof(v2), "%s", c->version);
		c->version[0] = '\0'; /* the error goes out in a version we speak */
		r = zt_cni_fail(e, ZT_CNI_E_VERSION, "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0",
				"cniVersion %s is not supported by ztagent-cni", v2);
		goto fail;
	}
	if (json_object_object_get_ex(c->root, "name", &v) &&
	    (r = str_of(v, "name", c->name, sizeof(c->name), true, e)) < 0)
		goto fail;
	if (json_object_object_get_ex(c->root, "type", &v) &&
	    (r = str_of(v, "type", c->type, sizeof(c->type), true, e)) < 0)
		goto fail;
	if ((r = conf_path(c->root, "socket", c->socket, sizeof(c->socket), e)) < 0 ||
	    (r = conf_path(c->root, "state_dir", c->state_dir, sizeof(c->state_dir), e)) < 0)
		goto fail;
	if (json_object_object_get_ex(c->root, "timeout", &v) &&
	    (r = conf_timeout(v, &c->timeout_ns, e)) < 0)
		goto fail;
	if (json_object_object_get_ex(c->root, "prevResult", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		size_t off, n;

		if (!json_object_is_type(v, json_type_object)) {
			r = zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					"prevResult: expected an object (a CNI result)");
			goto fail;
		}
		if (zt_cni_member_span(buf, end, "prevResult", &off, &n) < 0) {
			r = zt_cni_fail(e, ZT_CNI_E_DECODE, NULL,
					"prevResult: cannot find its text in the configuration");
			goto fail;
		}
		c->prev = v;
		c->prev_text = buf + off;
		c->prev_len = n;
	}
	if (need_prev && !c->prev) {
		r = zt_cni_fail(
			e, ZT_CNI_E_CONFIG,
			"list ztagent-cni after the primary plugin in the conflist's \"plugins\"",
			"prevResult: missing; ztagent-cni is a chained plugin and needs the primary plugin's result");
		goto fail;
	}
	json_tokener_free(tok);
	return 0;
fail:
	json_tokener_free(tok);
	json_object_put(c->root);
	c->root = NULL;
	c->prev = NULL;
	return r;
}

void zt_cni_conf_free(struct zt_cni_conf *c)
{
	if (!c)
		return;
	json_object_put(c->root);
	c->root = NULL;
	c->prev = NULL;
}

/* ---- CNI_ARGS ---- */

static bool k8s_subdomain(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		bool an = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');

		if (!an && !((ch == '-' || ch == '.') && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

static bool uid_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return true;
}

int zt_cni_args_parse(const char *s, struct zt_cni_args *a, struct zt_cni_err *e)
{
	bool seen[3] = { false, false, false };
	const char *p = s;

	memset(a, 0, sizeof(*a));
	if (!s || !*s)
		return 0;
	if (strlen(s) > 65536)
		return zt_cni_fail(e, ZT_CNI_E_ENV, NULL, "CNI_ARGS: longer than 65536 bytes");
	while (*p) {
		const char *end = strchr(p, ';'), *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p), kl, vl;
		char key[64], val[256];
		int which = -1;

		if (n == 0) { /* "a=b;;c=d", a trailing ';' */
			p += end ? 1 : 0;
			continue;
		}
		eq = memchr(p, '=', n);
		if (!eq || eq == p)
			return zt_cni_fail(e, ZT_CNI_E_ENV, NULL,
					   "CNI_ARGS: '%.*s' is not KEY=VALUE",
					   (int)(n > 80 ? 80 : n), p);
		kl = (size_t)(eq - p);
		vl = n - kl - 1;
		p += n + (end ? 1 : 0);
		if (kl >= sizeof(key))
			continue; /* no key of ours is that long */
		memcpy(key, eq - kl, kl);
		key[kl] = '\0';
		if (!strcmp(key, "K8S_POD_NAMESPACE"))
			which = 0;
		else if (!strcmp(key, "K8S_POD_NAME"))
			which = 1;
		else if (!strcmp(key, "K8S_POD_UID"))
			which = 2;
		if (which < 0)
			continue; /* IgnoreUnknown, K8S_POD_INFRA_CONTAINER_ID, ... */
		if (seen[which])
			return zt_cni_fail(e, ZT_CNI_E_ENV, NULL, "CNI_ARGS: %s given twice", key);
		seen[which] = true;
		if (vl >= sizeof(val))
			return zt_cni_fail(e, ZT_CNI_E_ENV, NULL, "CNI_ARGS: %s is too long", key);
		memcpy(val, eq + 1, vl);
		val[vl] = '\0';
		if (which == 0 && !k8s_subdomain(val, 63))
			return zt_cni_fail(
				e, ZT_CNI_E_ENV, NULL,
				"CNI_ARGS: K8S_POD_NAMESPACE '%.80s' is not a namespace name", val);
		if (which == 1 && !k8s_subdomain(val, 253))
			return zt_cni_fail(e, ZT_CNI_E_ENV, NULL,
					   "CNI_ARGS: K8S_POD_NAME '%.80s' is not a pod name", val);
		if (which == 2 && !uid_ok(val))
			return zt_cni_fail(e, ZT_CNI_E_ENV, NULL,
					   "CNI_ARGS: K8S_POD_UID '%.80s' is not a pod UID", val);
		snprintf(which == 0 ? a->ns :
			 which == 1 ? a->name :
				      a->uid,
			 which == 0 ? sizeof(a->ns) :
			 which == 1 ? sizeof(a->name) :
				      sizeof(a->uid),
			 "%s", val);
	}
	if (strchr(a->ns, '.'))
		return zt_cni_fail(
			e, ZT_CNI_E_ENV, NULL,
			"CNI_ARGS: K8S_POD_NAMESPACE '%s' is not a namespace name (no '.')", a->ns);
	return 0;
}

/* ---- prevResult ---- */

static int parse_ip(json_object *o, size_t i, const struct zt_cni_prev *p, struct zt_cni_ip *ip,
		    struct zt_cni_err *e)
{
	char what[64], addr[INET6_ADDRSTRLEN + 8], *slash;
	json_object *v;

	snprintf(what, sizeof(what), "prevResult.ips[%zu]", i);
	if (!json_object_is_type(o, json_type_object))
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "%s: expected an object", what);
	snprintf(what, sizeof(what), "prevResult.ips[%zu].address", i);
	if (!json_object_object_get_ex(o, "address", &v))
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "%s: missing", what);
	if (str_of(v, what, addr, sizeof(addr), true, e) < 0)
		return -e->code;
	slash = strchr(addr, '/');
	if (slash)
		*slash = '\0';
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, addr, ip->addr) == 1)
		ip->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, ip->addr) == 1)
		ip->family = AF_INET6;
	else
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
				   "%s: '%s' is not an IPv4 or IPv6 address in CIDR form", what,
				   addr);
	ip->iface = -1;
	if (json_object_object_get_ex(o, "interface", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		int64_t k;

		snprintf(what, sizeof(what), "prevResult.ips[%zu].interface", i);
		if (!json_object_is_type(v, json_type_int))
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "%s: expected an index into interfaces", what);
		k = json_object_get_int64(v);
		if (k < 0 || (uint64_t)k >= p->n_ifs)
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "%s: %lld is not an index into interfaces (%zu entries)",
					   what, (long long)k, p->n_ifs);
		ip->iface = (int)k;
	}
	return 0;
}

int zt_cni_prev_parse(json_object *prev, const char *ifname, struct zt_cni_prev *p,
		      struct zt_cni_err *e)
{
	json_object *arr, *v;
	size_t n;

	memset(p, 0, sizeof(*p));
	p->container = -1;
	if (!prev || !json_object_is_type(prev, json_type_object))
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "prevResult: expected an object");
	if (json_object_object_get_ex(prev, "ip4", &v) ||
	    json_object_object_get_ex(prev, "ip6", &v))
		return zt_cni_fail(e, ZT_CNI_E_VERSION, NULL,
				   "prevResult: a CNI 0.1/0.2 result (ip4/ip6); ztagent-cni reads "
				   "results of 0.3.0 and later");
	if (json_object_object_get_ex(prev, "interfaces", &arr) &&
	    !json_object_is_type(arr, json_type_null)) {
		if (!json_object_is_type(arr, json_type_array))
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "prevResult.interfaces: expected an array");
		n = json_object_array_length(arr);
		if (n > ZT_CNI_MAX_IFACES)
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "prevResult.interfaces: %zu entries, at most %d", n,
					   ZT_CNI_MAX_IFACES);
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_array_get_idx(arr, i), *sb;
			struct zt_cni_iface *f = &p->ifs[i];
			char what[64], sbox[4096];

			snprintf(what, sizeof(what), "prevResult.interfaces[%zu].name", i);
			if (!json_object_is_type(o, json_type_object) ||
			    !json_object_object_get_ex(o, "name", &v))
				return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
						   "%s: missing (each interface needs a name)",
						   what);
			if (str_of(v, what, f->name, sizeof(f->name), true, e) < 0)
				return -e->code;
			if (!zt_ifname_valid(f->name))
				return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
						   "%s: '%s' is not an interface name", what,
						   f->name);
			if (json_object_object_get_ex(o, "sandbox", &sb) &&
			    !json_object_is_type(sb, json_type_null)) {
				snprintf(what, sizeof(what), "prevResult.interfaces[%zu].sandbox",
					 i);
				if (str_of(sb, what, sbox, sizeof(sbox), false, e) < 0)
					return -e->code;
				f->in_sandbox = sbox[0] != '\0';
			}
			if (f->in_sandbox && !strcmp(f->name, ifname) && p->container < 0)
				p->container = (int)i;
		}
		p->n_ifs = n;
	}
	if (json_object_object_get_ex(prev, "ips", &arr) &&
	    !json_object_is_type(arr, json_type_null)) {
		if (!json_object_is_type(arr, json_type_array))
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "prevResult.ips: expected an array");
		n = json_object_array_length(arr);
		if (n > ZT_CNI_MAX_IPS)
			return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL,
					   "prevResult.ips: %zu entries, at most %d", n,
					   ZT_CNI_MAX_IPS);
		for (size_t i = 0; i < n; i++)
			if (parse_ip(json_object_array_get_idx(arr, i), i, p, &p->ips[i], e) < 0)
				return -e->code;
		p->n_ips = n;
	}
	return 0;
}

int zt_cni_prev_addrs(const struct zt_cni_prev *p, char *buf, size_t n, size_t *count,
		      struct zt_cni_err *e)
{
	const struct zt_cni_ip *taken[16];
	size_t o = 0, k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n_ips; i++) {
		const struct zt_cni_ip *ip = &p->ips[i];
		char a[INET6_ADDRSTRLEN];
		bool dup = false;

		/* An address of another interface: a host side's (ptp's gateway), not the pod's. */
		if (ip->iface >= 0 && ip->iface != p->container &&
		    (p->container >= 0 || !p->ifs[ip->iface].in_sandbox))
			continue;
		for (size_t j = 0; j < k; j++)
			dup |= taken[j]->family == ip->family &&
			       !memcmp(taken[j]->addr, ip->addr, 16);
		if (dup)
			continue;
		if (k == 16)
			return zt_cni_fail(
				e, ZT_CNI_E_CONFIG, NULL,
				"prevResult.ips: more than 16 addresses for the container");
		inet_ntop(ip->family, ip->addr, a, sizeof(a));
		o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%s", k ? "," : "", a);
		taken[k++] = ip;
	}
	if (o >= n)
		return zt_cni_fail(e, ZT_CNI_E_CONFIG, NULL, "prevResult.ips: too long");
	if (!k)
		return zt_cni_fail(
			e, ZT_CNI_E_CONFIG,
			"the primary plugin must assign addresses (an \"ipam\" section, e.g. host-local)",
			"prevResult.ips: no address for the container's interface; ztagent-cni enforces policy by address");
	*count = k;
	return 0;
}
