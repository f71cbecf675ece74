// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <cbor.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cbor.h"
#include "seg/endpoint.h"
#include "seg/polcompile.h"
#include "seg/policy.h"
#include "agent/util.h"

#define STATE_MAX_BYTES (64u << 20)
#define STATE_VERSION 1

static void ep_view(struct zt_ep *ep)
{
	ep->ev.name = ep->name;
	ep->ev.ls.namespace = ep->ns;
	ep->ev.ls.labels.v = ep->labels;
	ep->ev.ls.labels.n = ep->n_labels;
	ep->ev.ls.ns_labels.v = ep->ns_labels;
	ep->ev.ls.ns_labels.n = ep->n_ns_labels;
	ep->ev.addrs = ep->addrs;
	ep->ev.n_addrs = ep->n_addrs;
	ep->ev.ports = ep->ports;
	ep->ev.n_ports = ep->n_ports;
}

void zt_ep_free(struct zt_ep *ep)
{
	if (!ep)
		return;
	for (size_t i = 0; i < ep->n_labels; i++) {
		free((char *)ep->labels[i].key);
		free((char *)ep->labels[i].value);
	}
	for (size_t i = 0; i < ep->n_ns_labels; i++) {
		free((char *)ep->ns_labels[i].key);
		free((char *)ep->ns_labels[i].value);
	}
	for (size_t i = 0; i < ep->n_ports; i++)
		free((char *)ep->ports[i].name);
	free(ep->labels);
	free(ep->ns_labels);
	free(ep->ports);
	free(ep->name);
	free(ep->ns);
	free(ep->qname);
	free(ep->pod_uid);
	free(ep->container_id);
	free(ep->service_account);
	free(ep);
}

const char *zt_ep_origin_name(enum zt_ep_origin o)
{
	return o == ZT_EP_ORIGIN_CNI ? "cni" : "api";
}

int zt_ep_origin_parse(const char *s, enum zt_ep_origin *out)
{
	if (!strcmp(s, "api"))
		*out = ZT_EP_ORIGIN_API;
	else if (!strcmp(s, "cni"))
		*out = ZT_EP_ORIGIN_CNI;
	else
		return -EINVAL;
	return 0;
}

/* Endpoint names: 1-253 of [A-Za-z0-9._-], starting and ending alphanumeric. */
static bool valid_name(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > ZT_EP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		bool alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && !((c == '.' || c == '_' || c == '-') && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

/* Splits s at commas into a malloc'd copy; items point into *copy. */
static int split(const char *s, char **copy, char **items, size_t max, size_t *n)
{
	char *p, *save = NULL, *tok;

	*n = 0;
	*copy = strdup(s ? s : "");
	if (!*copy)
		return -ENOMEM;
	for (p = *copy; (tok = strtok_r(p, ",", &save)); p = NULL) {
		if (*n == max)
			return -E2BIG;
		items[(*n)++] = tok;
	}
	return 0;
}

static int parse_labels(const char *field, const char *s, struct zt_label **out, size_t *n_out,
			char *err, size_t errlen)
{
	char *copy = NULL, *items[ZT_EP_MAX_LABELS + 1], q[400];
	struct zt_label *v = NULL;
	const char *why = NULL;
	size_t n = 0, bad = 0;
	int r;

	*out = NULL;
	*n_out = 0;
	r = split(s, &copy, items, ZT_EP_MAX_LABELS, &n);
	if (r == -E2BIG) {
		zt_seterr(err, errlen, "%s: more than %d labels", field, ZT_EP_MAX_LABELS);
		goto out;
	}
	if (r < 0 || n == 0)
		goto out;
	v = calloc(n, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(items[i], '=');

		if (!eq) {
			zt_seterr(err, errlen, "%s: '%s' is not KEY=VALUE", field,
				  zt_shown(items[i], 80, q, sizeof(q)));
			r = -EINVAL;
			goto fail;
		}
		*eq = '\0';
		v[i].key = strdup(items[i]);
		v[i].value = strdup(eq + 1);
		if (!v[i].key || !v[i].value) {
			r = -ENOMEM;
			goto fail;
		}
	}
	{
		struct zt_labels ls = { .v = v, .n = n };

		if (zt_labels_check(&ls, &bad, &why) < 0) {
			zt_seterr(err, errlen, "%s: label '%s': %s", field,
				  zt_shown(v[bad].key, 80, q, sizeof(q)), why);
			r = -EINVAL;
			goto fail;
		}
	}
	*out = v;
	*n_out = n;
	free(copy);
	return 0;
fail:
	for (size_t i = 0; i < n; i++) {
		free((char *)v[i].key);
		free((char *)v[i].value);
	}
	free(v);
out:
	free(copy);
	return r;
}

static int parse_addr(const char *s, struct zt_ep_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint64_t plen = 0;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (zt_parse_u64(slash + 1, &plen) < 0)
			return -EINVAL;
	}
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, a->addr) == 1) {
		a->family = AF_INET;
		if (slash && plen != 32)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, buf, a->addr) == 1) {
		a->family = AF_INET6;
		if (slash && plen != 128)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}

static bool addr_is_special(const struct zt_ep_addr *a)
{
	static const uint8_t zero[16];

	if (a->family == AF_INET)
		return !memcmp(a->addr, zero, 4) || a->addr[0] == 127 || a->addr[0] >= 224;
	return !memcmp(a->addr, zero, 16) || a->addr[0] == 0xff ||
	       (!memcmp(a->addr, zero, 15) && a->addr[15] == 1);
}

static bool addr_eq(const struct zt_ep_addr *a, const struct zt_ep_addr *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

static int parse_addrs(const char *s, struct zt_ep *ep, char *err, size_t errlen)
{
	char *copy = NULL, *items[ZT_EP_MAX_ADDRS + 1], q[200];
	size_t n = 0;
	int r = split(s, &copy, items, ZT_EP_MAX_ADDRS, &n);

	if (r == -E2BIG)
		zt_seterr(err, errlen, "--ip: more than %d addresses", ZT_EP_MAX_ADDRS);
	if (r < 0)
		goto out;
	if (n == 0) {
		zt_seterr(err, errlen, "--ip: at least one address is needed");
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct zt_ep_addr *a = &ep->addrs[i];

		if (parse_addr(items[i], a) < 0) {
			zt_seterr(
				err, errlen,
				"--ip: '%s' is not an IPv4 or IPv6 address (a /32 or /128 at most)",
				zt_shown(items[i], 80, q, sizeof(q)));
			r = -EINVAL;
			goto out;
		}
		if (addr_is_special(a)) {
			zt_seterr(
				err, errlen,
				"--ip: '%s' is unspecified, loopback or multicast; an endpoint needs a unicast address",
				zt_shown(items[i], 80, q, sizeof(q)));
			r = -EINVAL;
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (addr_eq(a, &ep->addrs[j])) {
				zt_seterr(err, errlen, "--ip: %s is listed twice",
					  zt_shown(items[i], 80, q, sizeof(q)));
				r = -EINVAL;
				goto out;
			}
	}
	ep->n_addrs = n;
out:
	free(copy);
	return r;
}

static void ports_free(struct zt_named_port *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free((char *)v[i].name);
	free(v);
}

static int parse_ports(const char *s, struct zt_named_port **out, size_t *n_out, char *err,
		       size_t errlen)
{
	char *copy = NULL, *items[ZT_EP_MAX_PORTS + 1], q[200];
	struct zt_named_port *v = NULL;
	size_t n = 0, done = 0;
	int r = split(s, &copy, items, ZT_EP_MAX_PORTS, &n);

	*out = NULL;
	*n_out = 0;
	if (r == -E2BIG)
		zt_seterr(err, errlen, "--ports: more than %d named ports", ZT_EP_MAX_PORTS);
	if (r < 0 || n == 0)
		goto out;
	v = calloc(n, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(items[i], '=');
		uint8_t proto;
		uint16_t port;
		size_t nl = eq ? (size_t)(eq - items[i]) : 0;

		if (!eq || nl == 0 || nl > ZT_POL_PORT_NAME_MAX ||
		    zt_eval_parse_port(eq + 1, &proto, &port) < 0) {
			zt_seterr(
				err, errlen,
				"--ports: '%s' is not NAME=PORT[/PROTO] (name 1-%d characters, port 1-65535, TCP, UDP or SCTP)",
				zt_shown(items[i], 80, q, sizeof(q)), ZT_POL_PORT_NAME_MAX);
			r = -EINVAL;
			goto out;
		}
		*eq = '\0';
		for (size_t j = 0; j < i; j++)
			if (!strcmp(v[j].name, items[i]) && v[j].protocol == proto) {
				zt_seterr(err, errlen, "--ports: '%s' is listed twice",
					  zt_shown(items[i], 80, q, sizeof(q)));
				r = -EINVAL;
				goto out;
			}
		v[i].name = strdup(items[i]);
		if (!v[i].name) {
			r = -ENOMEM;
			goto out;
		}
		v[i].protocol = proto;
		v[i].port = port;
		done = i + 1;
	}
	*out = v;
	*n_out = n;
	v = NULL;
out:
	ports_free(v, done);
	free(copy);
	return r;
}

static bool empty(const char *s)
{
	return !s || !*s;
}

/* 1-max characters, each a letter, a digit or one of extra. */
static bool valid_token(const char *v, size_t max, const char *extra)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

/* CNI: alphanumeric first, then alphanumerics, '_', '.', '-'. */
static bool valid_container_id(const char *v)
{
	char c = v[0];

	return valid_token(v, ZT_EP_CID_MAX, "_.-") &&
	       ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
}

/* The fields that say where an endpoint comes from (origin, pod, container). */
static int check_origin(const struct zt_ep_spec *s, char *err, size_t errlen)
{
	const char *why = NULL;
	char q[200];

	if (!empty(s->pod_uid) && !valid_token(s->pod_uid, ZT_EP_UID_MAX, "-")) {
		zt_seterr(err, errlen,
			  "pod_uid: '%s' is not a pod UID (1-%d of A-Z a-z 0-9 -, like "
			  "3f2a7c1e-0b5d-4e8a-9c61-2d7f0e4b9a15)",
			  zt_shown(s->pod_uid, 80, q, sizeof(q)), ZT_EP_UID_MAX);
		return -EINVAL;
	}
	if (!empty(s->service_account) && zt_dns_subdomain_check(s->service_account, &why) < 0) {
		zt_seterr(err, errlen, "service_account: '%s': %s",
			  zt_shown(s->service_account, 80, q, sizeof(q)), why);
		return -EINVAL;
	}
	if (s->origin == ZT_EP_ORIGIN_CNI) {
		if (empty(s->container_id) || !valid_container_id(s->container_id)) {
			zt_seterr(
				err, errlen,
				"container_id: '%s' is not a CNI container id (1-%d of A-Z a-z 0-9 _ . -, alphanumeric first)",
				zt_shown(s->container_id ? s->container_id : "", 80, q, sizeof(q)),
				ZT_EP_CID_MAX);
			return -EINVAL;
		}
		if (empty(s->cni_ifname) || !zt_ifname_valid(s->cni_ifname)) {
			zt_seterr(err, errlen,
				  "cni_ifname: '%s' is not a valid interface name (CNI_IFNAME)",
				  zt_shown(s->cni_ifname ? s->cni_ifname : "", 80, q, sizeof(q)));
			return -EINVAL;
		}
	} else if (s->origin != ZT_EP_ORIGIN_API) {
		zt_seterr(err, errlen, "origin: expected api or cni");
		return -EINVAL;
	} else if (!empty(s->container_id) || !empty(s->cni_ifname) || s->pending) {
		zt_seterr(err, errlen,
			  "container_id, cni_ifname and pending belong to endpoints of origin cni");
		return -EINVAL;
	}
	if (s->pending && (!empty(s->labels) || !empty(s->ns_labels) || !empty(s->ports))) {
		zt_seterr(err, errlen,
			  "a pending endpoint has no labels, namespace labels or ports yet");
		return -EINVAL;
	}
	return 0;
}

int zt_ep_from_spec(const struct zt_ep_spec *s, struct zt_ep **out, char *err, size_t errlen)
{
	const char *name = s->name && *s->name ? s->name : s->ifname;
	const char *ns = s->ns && *s->ns ? s->ns : "default";
	const char *why = NULL;
	struct zt_ep *ep;
	char q[200];
	int r;

	if (!s->ifname || !zt_ifname_valid(s->ifname)) {
		zt_seterr(err, errlen, "--ifname: '%s' is not a valid interface name",
			  zt_shown(s->ifname ? s->ifname : "", 80, q, sizeof(q)));
		return -EINVAL;
	}
	if (!valid_name(name)) {
		zt_seterr(
			err, errlen,
			"--name: '%s' is not a valid endpoint name (1-%d of A-Z a-z 0-9 . _ -, alphanumeric at both ends)",
			zt_shown(name, 80, q, sizeof(q)), ZT_EP_NAME_MAX);
		return -EINVAL;
	}
	if (zt_dns_label_check(ns, &why) < 0) {
		zt_seterr(err, errlen, "--namespace: '%s': %s", zt_shown(ns, 80, q, sizeof(q)),
			  why);
		return -EINVAL;
	}
	r = check_origin(s, err, errlen);
	if (r < 0)
		return r;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	snprintf(ep->ifname, sizeof(ep->ifname), "%s", s->ifname);
	ep->origin = s->origin;
	ep->pending = s->pending;
	if (s->cni_ifname)
		snprintf(ep->cni_ifname, sizeof(ep->cni_ifname), "%s", s->cni_ifname);
	ep->name = strdup(name);
	ep->ns = strdup(ns);
	ep->pod_uid = strdup(s->pod_uid ? s->pod_uid : "");
	ep->container_id = strdup(s->container_id ? s->container_id : "");
	ep->service_account = strdup(s->service_account ? s->service_account : "");
	if (!ep->name || !ep->ns || !ep->pod_uid || !ep->container_id || !ep->service_account ||
	    asprintf(&ep->qname, "%s/%s", ns, name) < 0) {
		ep->qname = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if ((r = parse_addrs(s->addrs, ep, err, errlen)) < 0 ||
	    (r = parse_labels("--labels", s->labels, &ep->labels, &ep->n_labels, err, errlen)) <
		    0 ||
	    (r = parse_labels("--namespace-labels", s->ns_labels, &ep->ns_labels, &ep->n_ns_labels,
			      err, errlen)) < 0 ||
	    (r = parse_ports(s->ports, &ep->ports, &ep->n_ports, err, errlen)) < 0)
		goto fail;
	for (size_t i = 0; i < ep->n_ns_labels; i++)
		if (!strcmp(ep->ns_labels[i].key, ZT_NS_NAME_LABEL) &&
		    strcmp(ep->ns_labels[i].value, ns)) {
			zt_seterr(err, errlen,
				  "--namespace-labels: %s is always the namespace's name ('%s')",
				  ZT_NS_NAME_LABEL, ns);
			r = -EINVAL;
			goto fail;
		}
	ep->created_unix = zt_now_unix();
	ep_view(ep);
	*out = ep;
	return 0;
fail:
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory");
	zt_ep_free(ep);
	return r;
}

/* ---- metadata (labels, namespace labels, named ports, service account) ---- */

static void labels_free(struct zt_label *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free((char *)v[i].key);
		free((char *)v[i].value);
	}
	free(v);
}

void zt_ep_meta_free(struct zt_ep_meta *m)
{
	if (!m)
		return;
	labels_free(m->labels, m->n_labels);
	labels_free(m->ns_labels, m->n_ns_labels);
	ports_free(m->ports, m->n_ports);
	free(m->service_account);
	memset(m, 0, sizeof(*m));
}

/* The namespace-name label, when listed, must name the endpoint's namespace. */
static int check_ns_name(const char *field, const char *ns, const struct zt_label *v, size_t n,
			 char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].key, ZT_NS_NAME_LABEL) && strcmp(v[i].value, ns)) {
			zt_seterr(err, errlen, "%s: %s is always the namespace's name ('%s')",
				  field, ZT_NS_NAME_LABEL, ns);
			return -EINVAL;
		}
	return 0;
}

static int labels_copy(const char *field, const struct zt_label *src, size_t n,
		       struct zt_label **out, size_t *n_out, char *err, size_t errlen)
{
	struct zt_labels ls = { .v = src, .n = n };
	struct zt_label *v = NULL;
	const char *why = NULL;
	size_t bad = 0;
	char q[400];

	*out = NULL;
	*n_out = 0;
	if (n > ZT_EP_MAX_LABELS) {
		zt_seterr(err, errlen, "%s: more than %d labels", field, ZT_EP_MAX_LABELS);
		return -E2BIG;
	}
	if (n && !src) {
		zt_seterr(err, errlen, "%s: missing", field);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (!src[i].key || !src[i].value) {
			zt_seterr(err, errlen, "%s: label %zu has no key or value", field, i);
			return -EINVAL;
		}
	if (zt_labels_check(&ls, &bad, &why) < 0) {
		zt_seterr(err, errlen, "%s: label '%s': %s", field,
			  zt_shown(src[bad].key, 80, q, sizeof(q)), why);
		return -EINVAL;
	}
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		v[i].key = strdup(src[i].key);
		v[i].value = strdup(src[i].value);
		if (!v[i].key || !v[i].value)
			goto nomem;
	}
	*out = v;
	*n_out = n;
	return 0;
nomem:
	labels_free(v, n);
	zt_seterr(err, errlen, "out of memory");
	return -ENOMEM;
}

static int ports_copy(const struct zt_named_port *src, size_t n, struct zt_named_port **out,
		      size_t *n_out, char *err, size_t errlen)
{
	struct zt_named_port *v = NULL;
	size_t k = 0;
	char q[200];

	*out = NULL;
	*n_out = 0;
	if (n && !src) {
		zt_seterr(err, errlen, "ports: missing");
		return -EINVAL;
	}
	if (!n)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const struct zt_named_port *p = &src[i];
		size_t nl = p->name ? strlen(p->name) : 0;
		bool dup = false;

		if (nl == 0 || nl > ZT_POL_PORT_NAME_MAX || strpbrk(p->name, ",=") ||
		    p->port == 0 ||
		    (p->protocol != IPPROTO_TCP && p->protocol != IPPROTO_UDP &&
		     p->protocol != IPPROTO_SCTP)) {
			zt_seterr(
				err, errlen,
				"ports: item %zu ('%s'): expected a name of 1-%d characters, port 1-65535, TCP, UDP or SCTP",
				i, zt_shown(p->name ? p->name : "", 80, q, sizeof(q)),
				ZT_POL_PORT_NAME_MAX);
			goto inval;
		}
		/* The same port declared twice (two containers) is one port; a clash is not. */
		for (size_t j = 0; j < k; j++)
			if (!strcmp(v[j].name, p->name) && v[j].protocol == p->protocol) {
				if (v[j].port != p->port) {
					zt_seterr(
						err, errlen, "ports: '%s'/%s names ports %u and %u",
						zt_shown(p->name, 80, q, sizeof(q)),
						zt_pol_proto_name(p->protocol), v[j].port, p->port);
					goto inval;
				}
				dup = true;
			}
		if (dup)
			continue;
		if (k == ZT_EP_MAX_PORTS) {
			zt_seterr(err, errlen, "ports: more than %d named ports", ZT_EP_MAX_PORTS);
			ports_free(v, k);
			return -E2BIG;
		}
		v[k].name = strdup(p->name);
		if (!v[k].name)
			goto nomem;
		v[k].protocol = p->protocol;
		v[k].port = p->port;
		k++;
	}
	*out = v;
	*n_out = k;
	return 0;
inval:
	ports_free(v, k);
	return -EINVAL;
nomem:
	ports_free(v, k);
	zt_seterr(err, errlen, "out of memory");
	return -ENOMEM;
}

static int sa_copy(const char *sa, char **out, char *err, size_t errlen)
{
	const char *why = NULL;
	char q[200];

	if (!empty(sa) && zt_dns_subdomain_check(sa, &why) < 0) {
		zt_seterr(err, errlen, "service_account: '%s': %s", zt_shown(sa, 80, q, sizeof(q)),
			  why);
		return -EINVAL;
	}
	*out = strdup(sa ? sa : "");
	if (!*out) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int zt_ep_meta_from_pod(const char *ns, const struct zt_pod_meta *m, struct zt_ep_meta *out,
			char *err, size_t errlen)
{
	struct zt_ep_meta t = { 0 };
	int r;

	if ((r = labels_copy("labels", m->labels, m->n_labels, &t.labels, &t.n_labels, err,
			     errlen)) < 0 ||
	    (r = labels_copy("namespace_labels", m->ns_labels, m->n_ns_labels, &t.ns_labels,
			     &t.n_ns_labels, err, errlen)) < 0 ||
	    (r = check_ns_name("namespace_labels", ns, t.ns_labels, t.n_ns_labels, err, errlen)) <
		    0 ||
	    (r = ports_copy(m->ports, m->n_ports, &t.ports, &t.n_ports, err, errlen)) < 0 ||
	    (r = sa_copy(m->service_account, &t.service_account, err, errlen)) < 0) {
		zt_ep_meta_free(&t);
		return r;
	}
	*out = t;
	return 0;
}

int zt_ep_meta_from_text(const char *ns, const char *labels, const char *ns_labels,
			 const char *ports, const char *service_account, struct zt_ep_meta *out,
			 char *err, size_t errlen)
{
	struct zt_ep_meta t = { 0 };
	int r;

	if ((r = parse_labels("--labels", labels, &t.labels, &t.n_labels, err, errlen)) < 0 ||
	    (r = parse_labels("--namespace-labels", ns_labels, &t.ns_labels, &t.n_ns_labels, err,
			      errlen)) < 0 ||
	    (r = check_ns_name("--namespace-labels", ns, t.ns_labels, t.n_ns_labels, err, errlen)) <
		    0 ||
	    (r = parse_ports(ports, &t.ports, &t.n_ports, err, errlen)) < 0 ||
	    (r = sa_copy(service_account, &t.service_account, err, errlen)) < 0) {
		if (r == -ENOMEM)
			zt_seterr(err, errlen, "out of memory");
		zt_ep_meta_free(&t);
		return r;
	}
	*out = t;
	return 0;
}

#define SWAP(a, b)                             \
	do {                                   \
		__typeof__(a) swap_tmp_ = (a); \
		(a) = (b);                     \
		(b) = swap_tmp_;               \
	} while (0)

void zt_ep_meta_swap(struct zt_ep *ep, struct zt_ep_meta *m)
{
	SWAP(ep->labels, m->labels);
	SWAP(ep->n_labels, m->n_labels);
	SWAP(ep->ns_labels, m->ns_labels);
	SWAP(ep->n_ns_labels, m->n_ns_labels);
	SWAP(ep->ports, m->ports);
	SWAP(ep->n_ports, m->n_ports);
	SWAP(ep->service_account, m->service_account);
	ep_view(ep);
}

#undef SWAP

static bool labels_same(const struct zt_label *a, size_t na, const struct zt_label *b, size_t nb)
{
	struct zt_labels lb = { .v = b, .n = nb };

	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		const char *v = zt_labels_get(&lb, a[i].key);

		if (!v || strcmp(v, a[i].value))
			return false;
	}
	return true;
}

bool zt_ep_meta_same(const struct zt_ep *ep, const struct zt_ep_meta *m)
{
	if (!labels_same(ep->labels, ep->n_labels, m->labels, m->n_labels) ||
	    !labels_same(ep->ns_labels, ep->n_ns_labels, m->ns_labels, m->n_ns_labels) ||
	    ep->n_ports != m->n_ports ||
	    strcmp(ep->service_account ? ep->service_account : "",
		   m->service_account ? m->service_account : ""))
		return false;
	for (size_t i = 0; i < ep->n_ports; i++) {
		bool found = false;

		for (size_t j = 0; !found && j < m->n_ports; j++)
			found = !strcmp(ep->ports[i].name, m->ports[j].name) &&
				ep->ports[i].protocol == m->ports[j].protocol &&
				ep->ports[i].port == m->ports[j].port;
		if (!found)
			return false;
	}
	return true;
}

/* ---- table ---- */

static int ifname_index(const char *ifname, bool *loopback)
{
	struct ifreq ifr = { 0 };
	int fd, r;

	*loopback = false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK))
		*loopback = true;
	close(fd);
	return r;
}

int zt_ep_table_check(const struct zt_ep_table *t, struct zt_ep *ep, char *err, size_t errlen)
{
	char a[INET6_ADDRSTRLEN];
	bool lo;
	int idx;

	if (t->n >= ZT_EP_MAX) {
		zt_seterr(err, errlen, "the node has %d endpoints, the most ztagent takes",
			  ZT_EP_MAX);
		return -ENOSPC;
	}
	idx = ifname_index(ep->ifname, &lo);
	if (idx < 0) {
		zt_seterr(err, errlen, "--ifname: no interface '%s' on this node (%s)", ep->ifname,
			  strerror(-idx));
		return -ENODEV;
	}
	if (lo) {
		zt_seterr(err, errlen,
			  "--ifname: %s is a loopback interface, not a workload's veth",
			  ep->ifname);
		return -EINVAL;
	}
	ep->ifindex = idx;
	for (size_t i = 0; i < t->n; i++) {
		const struct zt_ep *o = t->v[i];

		if (o->ifindex == idx || !strcmp(o->ifname, ep->ifname)) {
			zt_seterr(
				err, errlen,
				"--ifname: %s is already endpoint %s (remove it first with 'ztctl endpoint del %s')",
				ep->ifname, o->qname, o->qname);
			return -EEXIST;
		}
		if (!strcmp(o->qname, ep->qname)) {
			zt_seterr(err, errlen, "--name: endpoint %s exists already (on %s)",
				  o->qname, o->ifname);
			return -EEXIST;
		}
		for (size_t j = 0; j < ep->n_addrs; j++)
			for (size_t k = 0; k < o->n_addrs; k++)
				if (addr_eq(&ep->addrs[j], &o->addrs[k])) {
					inet_ntop(ep->addrs[j].family, ep->addrs[j].addr, a,
						  sizeof(a));
					zt_seterr(err, errlen,
						  "--ip: %s belongs to endpoint %s already", a,
						  o->qname);
					return -EEXIST;
				}
	}
	return 0;
}

int zt_ep_table_add(struct zt_ep_table *t, struct zt_ep *ep)
{
	struct zt_ep **v;
	size_t i;

	v = realloc(t->v, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	if (!ep->id)
		ep->id = t->next_id ? t->next_id : 1;
	if (ep->id >= t->next_id)
		t->next_id = ep->id + 1;
	for (i = t->n; i > 0 && t->v[i - 1]->id > ep->id; i--)
		t->v[i] = t->v[i - 1];
	t->v[i] = ep;
	t->n++;
	ep_view(ep);
	return 0;
}

struct zt_ep *zt_ep_table_remove(struct zt_ep_table *t, uint32_t id)
{
	for (size_t i = 0; i < t->n; i++) {
		struct zt_ep *ep = t->v[i];

		if (ep->id != id)
			continue;
		memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
		t->n--;
		return ep;
	}
	return NULL;
}

struct zt_ep *zt_ep_table_find(const struct zt_ep_table *t, const char *s, bool *ambiguous)
{
	struct zt_ep *hit = NULL;

	*ambiguous = false;
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->qname, s))
			return t->v[i];
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->ifname, s))
			return t->v[i];
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->name, s)) {
			if (hit) {
				*ambiguous = true;
				return NULL;
			}
			hit = t->v[i];
		}
	return hit;
}

struct zt_ep *zt_ep_table_by_ifindex(const struct zt_ep_table *t, int ifindex)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i]->ifindex == ifindex)
			return t->v[i];
	return NULL;
}

struct zt_ep *zt_ep_table_by_id(const struct zt_ep_table *t, uint32_t id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i]->id == id)
			return t->v[i];
	return NULL;
}

static void ident_put(struct zt_identities *ids, uint32_t id)
{
	if (id >= ZT_ID_FIRST_LABELS)
		zt_identities_put(ids, id);
}

int zt_ep_relabel_begin(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_meta *m,
			struct zt_ep_relabel *rl, char *err, size_t errlen)
{
	uint32_t new_id = 0;
	int r;

	rl->old_id = ep->identity;
	rl->was_pending = ep->pending;
	rl->old = *m;
	memset(m, 0, sizeof(*m));
	zt_ep_meta_swap(ep, &rl->old); /* ep: the new metadata; rl->old: the old */
	ep->pending = false;
	r = zt_identities_get(ids, &ep->ev.ls, 0, &new_id);
	if (r < 0) {
		zt_ep_meta_swap(ep, &rl->old);
		ep->pending = rl->was_pending;
		*m = rl->old;
		memset(&rl->old, 0, sizeof(rl->old));
		zt_seterr(err, errlen, "cannot allocate an identity: %s", strerror(-r));
		return r;
	}
	ep->identity = new_id;
	ep->prev_identity = rl->old_id == new_id ? 0 : rl->old_id;
	ep->prev_ev = (struct zt_eval_endpoint){ 0 };
	if (ep->prev_identity >= ZT_ID_FIRST_LABELS) {
		/* The old identity's view: its label set (kept by ids while referenced), its ports. */
		const struct zt_label_set *ls = zt_identities_labels(ids, rl->old_id);

		ep->prev_ev.name = ep->name;
		ep->prev_ev.ports = rl->old.ports;
		ep->prev_ev.n_ports = rl->old.n_ports;
		if (ls)
			ep->prev_ev.ls = *ls;
		else
			ep->prev_identity = 0;
	}
	return 0;
}

void zt_ep_relabel_commit(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_relabel *rl)
{
	ep->prev_identity = 0;
	ep->prev_ev = (struct zt_eval_endpoint){ 0 };
	ident_put(ids, rl->old_id);
	zt_ep_meta_free(&rl->old);
}

void zt_ep_relabel_undo(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_relabel *rl)
{
	uint32_t new_id = ep->identity;

	zt_ep_meta_swap(ep, &rl->old);
	ep->identity = rl->old_id;
	ep->pending = rl->was_pending;
	ep->prev_identity = 0;
	ep->prev_ev = (struct zt_eval_endpoint){ 0 };
	ident_put(ids, new_id);
	zt_ep_meta_free(&rl->old);
}

size_t zt_ep_table_polc(const struct zt_ep_table *t, struct zt_polc_endpoint *out, bool *pending)
{
	size_t n = 0;

	*pending = false;
	for (size_t i = 0; i < t->n; i++) {
		const struct zt_ep *ep = t->v[i];

		out[n++] = (struct zt_polc_endpoint){ .ep_id = ep->id,
						      .identity = ep->identity,
						      .ev = &ep->ev };
		if (ep->prev_identity >= ZT_ID_FIRST_LABELS)
			out[n++] = (struct zt_polc_endpoint){ .ep_id = ep->id,
							      .identity = ep->prev_identity,
							      .ev = &ep->prev_ev };
		*pending |= ep->pending || ep->prev_identity == ZT_ID_PENDING;
	}
	return n;
}

struct zt_ep *zt_ep_table_by_container(const struct zt_ep_table *t, const char *container_id,
				       const char *cni_ifname)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct zt_ep *ep = t->v[i];

		if (ep->origin == ZT_EP_ORIGIN_CNI && !strcmp(ep->container_id, container_id) &&
		    !strcmp(ep->cni_ifname, cni_ifname))
			return t->v[i];
	}
	return NULL;
}

struct zt_ep *zt_ep_table_by_qname(const struct zt_ep_table *t, const char *ns, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->ns, ns) && !strcmp(t->v[i]->name, name))
			return t->v[i];
	return NULL;
}

void zt_ep_table_clear(struct zt_ep_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		zt_ep_free(t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int zt_ep_addrs_format(const struct zt_ep *ep, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ep->n_addrs; i++) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(ep->addrs[i].family, ep->addrs[i].addr, a, sizeof(a));
		o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%s", i ? "," : "", a);
	}
	return o < n ? 0 : -ENOSPC;
}

int zt_labels_format(const struct zt_label *v, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s=%s", i ? "," : "",
				      v[i].key, v[i].value);
	return o < len ? 0 : -ENOSPC;
}

/* ---- state file ---- */

cbor_item_t *zt_ep_labels_cbor(const struct zt_label *v, size_t n)
{
	cbor_item_t *m = zt_cbor_map();

	for (size_t i = 0; m && i < n; i++)
		if (zt_cbor_put_str(m, v[i].key, v[i].value)) {
			cbor_decref(&m);
			return NULL;
		}
	return m;
}

static cbor_item_t *ep_item(const struct zt_ep *ep)
{
	cbor_item_t *m = zt_cbor_map(), *addrs = NULL, *ports = NULL, *l = NULL, *nl = NULL;
	char a[INET6_ADDRSTRLEN];

	if (!m)
		return NULL;
	if (zt_cbor_put_u64(m, "id", ep->id) || zt_cbor_put_str(m, "ifname", ep->ifname) ||
	    zt_cbor_put_u64(m, "ifindex", (uint64_t)ep->ifindex) ||
	    zt_cbor_put_str(m, "name", ep->name) || zt_cbor_put_str(m, "namespace", ep->ns) ||
	    zt_cbor_put_u64(m, "identity", ep->identity) ||
	    zt_cbor_put_u64(m, "created_unix", ep->created_unix) ||
	    zt_cbor_put_str(m, "origin", zt_ep_origin_name(ep->origin)) ||
	    zt_cbor_put_bool(m, "pending", ep->pending) ||
	    zt_cbor_put_str(m, "pod_uid", ep->pod_uid) ||
	    zt_cbor_put_str(m, "container_id", ep->container_id) ||
	    zt_cbor_put_str(m, "cni_ifname", ep->cni_ifname) ||
	    zt_cbor_put_str(m, "service_account", ep->service_account))
		goto fail;
	addrs = zt_cbor_array();
	if (!addrs)
		goto fail;
	for (size_t i = 0; i < ep->n_addrs; i++) {
		cbor_item_t *s;

		inet_ntop(ep->addrs[i].family, ep->addrs[i].addr, a, sizeof(a));
		s = cbor_build_string(a);
		if (!s || zt_cbor_push(addrs, s)) {
			if (s)
				cbor_decref(&s);
			goto fail;
		}
	}
	if (zt_cbor_put(m, "addrs", addrs)) {
		cbor_decref(&addrs);
		goto fail;
	}
	l = zt_ep_labels_cbor(ep->labels, ep->n_labels);
	if (!l || zt_cbor_put(m, "labels", l)) {
		if (l)
			cbor_decref(&l);
		goto fail;
	}
	nl = zt_ep_labels_cbor(ep->ns_labels, ep->n_ns_labels);
	if (!nl || zt_cbor_put(m, "namespace_labels", nl)) {
		if (nl)
			cbor_decref(&nl);
		goto fail;
	}
	ports = zt_cbor_array();
	if (!ports)
		goto fail;
	for (size_t i = 0; i < ep->n_ports; i++) {
		cbor_item_t *p = zt_cbor_map();

		if (!p || zt_cbor_put_str(p, "name", ep->ports[i].name) ||
		    zt_cbor_put_u64(p, "port", ep->ports[i].port) ||
		    zt_cbor_put_u64(p, "protocol", ep->ports[i].protocol) ||
		    zt_cbor_push(ports, p)) {
			if (p)
				cbor_decref(&p);
			cbor_decref(&ports);
			goto fail;
		}
	}
	if (zt_cbor_put(m, "ports", ports)) {
		cbor_decref(&ports);
		goto fail;
	}
	return m;
fail:
	cbor_decref(&m);
	return NULL;
}

int zt_ep_table_save(const struct zt_ep_table *t, const char *path, char *err, size_t errlen)
{
	cbor_item_t *root = zt_cbor_map(), *arr = zt_cbor_array();
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	char tmp[4096 + 8];
	int fd = -1, r = -ENOMEM;

	if (!root || !arr || zt_cbor_put_u64(root, "version", STATE_VERSION))
		goto out;
	for (size_t i = 0; i < t->n; i++) {
		cbor_item_t *e = ep_item(t->v[i]);

		if (!e || zt_cbor_push(arr, e)) {
			if (e)
				cbor_decref(&e);
			goto out;
		}
	}
	if (zt_cbor_put(root, "endpoints", arr))
		goto out;
	arr = NULL;
	len = cbor_serialize_alloc(root, &buf, &cap);
	if (!len)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			zt_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			goto out_unlink;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		r = -errno;
		zt_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	r = 0;
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory saving %s", path);
	if (fd >= 0)
		close(fd);
	free(buf);
	if (arr)
		cbor_decref(&arr);
	if (root)
		cbor_decref(&root);
	return r;
}

/* Appends to buf[0..cap) at *o; -E2BIG instead of a cut or an overrun. */
static int append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= cap)
		return -E2BIG;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, cap - *o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *o)
		return -E2BIG;
	*o += (size_t)n;
	return 0;
}

static int join_labels(const cbor_item_t *m, const char *key, char *buf, size_t n)
{
	cbor_item_t *l = zt_cbor_get(m, key);
	struct cbor_pair *p;
	size_t o = 0;

	buf[0] = '\0';
	if (!l || !cbor_isa_map(l) || cbor_map_size(l) > ZT_EP_MAX_LABELS)
		return -EINVAL;
	p = cbor_map_handle(l);
	for (size_t i = 0; i < cbor_map_size(l); i++) {
		char k[ZT_LABEL_KEY_MAX + 1], v[ZT_LABEL_NAME_MAX + 1];

		if (zt_cbor_str(p[i].key, k, sizeof(k)) < 0 ||
		    zt_cbor_str(p[i].value, v, sizeof(v)) < 0 ||
		    append(buf, n, &o, "%s%s=%s", i ? "," : "", k, v) < 0)
			return -EINVAL;
	}
	return 0;
}

/* An optional text field of a state record: absent is "", anything but text is damage. */
static int opt_str(const cbor_item_t *m, const char *key, char *buf, size_t n)
{
	int r = zt_cbor_get_str(m, key, buf, n);

	if (r == -ENOENT) {
		buf[0] = '\0';
		return 0;
	}
	return r;
}

/*
 * A saved endpoint goes back through zt_ep_from_spec, so it passes the checks
 * an operator's does. Files written before endpoints had an origin have no
 * origin, pending, pod or container fields: those are api endpoints. The text it is rebuilt into is bounded here, and every
 * number is range-checked before it is formatted: the state file is input.
 */
static int ep_from_item(const cbor_item_t *m, struct zt_ep **out, char *err, size_t errlen)
{
	size_t big = ZT_EP_MAX_LABELS * (ZT_LABEL_KEY_MAX + ZT_LABEL_NAME_MAX + 3);
	size_t addrs_cap = ZT_EP_MAX_ADDRS * (INET6_ADDRSTRLEN + 1),
	       ports_cap = ZT_EP_MAX_PORTS * (ZT_POL_PORT_NAME_MAX + sizeof("=65535/SCTP,"));
	char ifname[IF_NAMESIZE], name[ZT_EP_NAME_MAX + 1], ns[ZT_DNS_LABEL_MAX + 1];
	char origin[8], uid[ZT_EP_UID_MAX + 1], cid[ZT_EP_CID_MAX + 1], cni_ifname[IF_NAMESIZE],
		sa[ZT_DNS_SUBDOMAIN_MAX + 1];
	enum zt_ep_origin origin_v = ZT_EP_ORIGIN_API;
	bool pending = false;
	char *labels = malloc(big), *nslabels = malloc(big), *addrs = malloc(addrs_cap),
	     *ports = malloc(ports_cap);
	uint64_t id, ifindex, identity, created;
	cbor_item_t *a, *p;
	size_t o;
	int r = -EINVAL;

	if (!labels || !nslabels || !addrs || !ports) {
		r = -ENOMEM;
		goto out;
	}
	if (!cbor_isa_map(m) || zt_cbor_get_u64(m, "id", &id) < 0 || !id || id > UINT32_MAX ||
	    zt_cbor_get_str(m, "ifname", ifname, sizeof(ifname)) < 0 ||
	    zt_cbor_get_u64(m, "ifindex", &ifindex) < 0 || ifindex > INT32_MAX ||
	    zt_cbor_get_str(m, "name", name, sizeof(name)) < 0 ||
	    zt_cbor_get_str(m, "namespace", ns, sizeof(ns)) < 0 ||
	    zt_cbor_get_u64(m, "identity", &identity) < 0 || identity > UINT32_MAX ||
	    zt_cbor_get_u64(m, "created_unix", &created) < 0 ||
	    join_labels(m, "labels", labels, big) < 0 ||
	    join_labels(m, "namespace_labels", nslabels, big) < 0 ||
	    opt_str(m, "origin", origin, sizeof(origin)) < 0 ||
	    (origin[0] && zt_ep_origin_parse(origin, &origin_v) < 0) ||
	    (zt_cbor_get_bool(m, "pending", &pending) < 0 && zt_cbor_get(m, "pending")) ||
	    opt_str(m, "pod_uid", uid, sizeof(uid)) < 0 ||
	    opt_str(m, "container_id", cid, sizeof(cid)) < 0 ||
	    opt_str(m, "cni_ifname", cni_ifname, sizeof(cni_ifname)) < 0 ||
	    opt_str(m, "service_account", sa, sizeof(sa)) < 0) {
		zt_seterr(err, errlen, "an endpoint record is incomplete or has wrong types");
		goto out;
	}
	a = zt_cbor_get(m, "addrs");
	p = zt_cbor_get(m, "ports");
	if (!a || !cbor_isa_array(a) || cbor_array_size(a) > ZT_EP_MAX_ADDRS || !p ||
	    !cbor_isa_array(p) || cbor_array_size(p) > ZT_EP_MAX_PORTS) {
		zt_seterr(err, errlen, "endpoint %s: bad addrs or ports", name);
		goto out;
	}
	o = 0;
	addrs[0] = '\0';
	for (size_t i = 0; i < cbor_array_size(a); i++) {
		char s[INET6_ADDRSTRLEN + 1];

		/* One address per item: a comma would smuggle in more. */
		if (zt_cbor_str(cbor_array_handle(a)[i], s, sizeof(s)) < 0 || strchr(s, ',') ||
		    append(addrs, addrs_cap, &o, "%s%s", i ? "," : "", s) < 0) {
			zt_seterr(err, errlen, "endpoint %s: bad address (item %zu)", name, i);
			goto out;
		}
	}
	o = 0;
	ports[0] = '\0';
	for (size_t i = 0; i < cbor_array_size(p); i++) {
		const cbor_item_t *pi = cbor_array_handle(p)[i];
		char pn[ZT_POL_PORT_NAME_MAX + 1];
		uint64_t port, proto;

		if (zt_cbor_get_str(pi, "name", pn, sizeof(pn)) < 0 || strpbrk(pn, ",=") ||
		    zt_cbor_get_u64(pi, "port", &port) < 0 || port < 1 || port > 65535 ||
		    zt_cbor_get_u64(pi, "protocol", &proto) < 0 ||
		    (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP) ||
		    append(ports, ports_cap, &o, "%s%s=%u/%s", i ? "," : "", pn, (unsigned int)port,
			   zt_pol_proto_name((uint8_t)proto)) < 0) {
			zt_seterr(
				err, errlen,
				"endpoint %s: bad named port (item %zu): name of 1-%d characters, "
				"port 1-65535, protocol TCP, UDP or SCTP",
				name, i, ZT_POL_PORT_NAME_MAX);
			goto out;
		}
	}
	{
		struct zt_ep_spec s = { .ifname = ifname,
					.name = name,
					.ns = ns,
					.addrs = addrs,
					.labels = labels,
					.ns_labels = nslabels,
					.ports = ports,
					.origin = origin_v,
					.pending = pending,
					.pod_uid = uid,
					.container_id = cid,
					.cni_ifname = cni_ifname,
					.service_account = sa };
		char why[512];

		r = zt_ep_from_spec(&s, out, why, sizeof(why));
		if (r < 0) {
			zt_seterr(err, errlen, "endpoint %s/%s: %s", ns, name, why);
			goto out;
		}
	}
	(*out)->id = (uint32_t)id;
	(*out)->ifindex = (int)ifindex;
	(*out)->identity = (uint32_t)identity;
	(*out)->created_unix = created;
	r = 0;
out:
	free(labels);
	free(nslabels);
	free(addrs);
	free(ports);
	return r;
}

/* Items in the largest state file ZT_EP_MAX endpoints can make, with room to spare. */
#define STATE_MAX_ITEMS \
	((size_t)ZT_EP_MAX * (64 + ZT_EP_MAX_ADDRS + 4 * ZT_EP_MAX_LABELS + 8 * ZT_EP_MAX_PORTS))

int zt_ep_table_decode(struct zt_ep_table *t, const uint8_t *buf, size_t len, const char *name,
		       char *err, size_t errlen)
{
	cbor_item_t *root = NULL, *arr;
	uint64_t version;
	char why[600];
	size_t n;
	int r;

	/* The pre-scan refuses what headers declare beyond the bytes there are. */
	r = zt_cbor_decode(buf, len, STATE_MAX_ITEMS, &root, why, sizeof(why));
	if (r < 0) {
		zt_seterr(err, errlen, "%s: not a ztagent endpoint state file (%s)", name, why);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	r = -EBADMSG;
	if (zt_cbor_get_u64(root, "version", &version) < 0 || version != STATE_VERSION) {
		zt_seterr(err, errlen, "%s: unknown state version", name);
		goto out;
	}
	arr = zt_cbor_get(root, "endpoints");
	if (!arr || !cbor_isa_array(arr) || cbor_array_size(arr) > ZT_EP_MAX) {
		zt_seterr(err, errlen, "%s: no endpoint list of at most %d endpoints", name,
			  ZT_EP_MAX);
		goto out;
	}
	n = cbor_array_size(arr);
	for (size_t i = 0; i < n; i++) {
		struct zt_ep *ep;

		r = ep_from_item(cbor_array_handle(arr)[i], &ep, why, sizeof(why));
		if (r == 0 &&
		    (zt_ep_table_by_id(t, ep->id) || zt_ep_table_by_ifindex(t, ep->ifindex))) {
			zt_seterr(why, sizeof(why),
				  "endpoint %s: id %u or ifindex %d is taken twice", ep->qname,
				  ep->id, ep->ifindex);
			zt_ep_free(ep);
			r = -EINVAL;
		}
		if (r < 0) {
			zt_seterr(err, errlen, "%s: record %zu: %s", name, i, why);
			r = r == -ENOMEM ? r : -EBADMSG;
			zt_ep_table_clear(t);
			goto out;
		}
		r = zt_ep_table_add(t, ep);
		if (r < 0) {
			zt_ep_free(ep);
			zt_ep_table_clear(t);
			goto out;
		}
	}
	r = 0;
out:
	cbor_decref(&root);
	return r;
}

int zt_ep_table_load(struct zt_ep_table *t, const char *path, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	struct stat st;
	ssize_t got;
	int fd, r = -EBADMSG;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		zt_seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_MAX_BYTES) {
		zt_seterr(err, errlen, "%s: not a regular file of at most %u bytes", path,
			  STATE_MAX_BYTES);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	got = read(fd, buf, (size_t)st.st_size);
	if (got != st.st_size) {
		zt_seterr(err, errlen, "%s: short read", path);
		r = -EIO;
		goto out;
	}
	r = zt_ep_table_decode(t, buf, (size_t)got, path, err, errlen);
out:
	free(buf);
	close(fd);
	return r;
}
