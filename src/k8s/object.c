// SPDX-License-Identifier: GPL-2.0-only
/*
 * Watch events and objects, reduced to what the agent uses. The server is
 * trusted to speak Kubernetes, not to be well-formed: every field is
 * type-checked and bounded, and an object that does not decode is refused
 * whole (the caller keeps its last good state) with a message naming the
 * field.
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/k8s_int.h"

static const struct zt_k8s_resource resources[ZT_K8S_KIND_MAX] = {
	[ZT_K8S_POD] = { "/api/v1/pods", "v1", "Pod", true },
	[ZT_K8S_NAMESPACE] = { "/api/v1/namespaces", "v1", "Namespace", false },
	[ZT_K8S_NETWORK_POLICY] = { "/apis/networking.k8s.io/v1/networkpolicies",
				    "networking.k8s.io/v1", "NetworkPolicy", true },
	[ZT_K8S_ZT_POLICY] = { "/apis/ztagent.io/v1/zerotrustpolicies", "ztagent.io/v1",
			       "ZeroTrustPolicy", true },
	[ZT_K8S_NODE] = { "/api/v1/nodes", "v1", "Node", false },
};

const struct zt_k8s_resource *zt_k8s_resource(enum zt_k8s_kind k)
{
	return (unsigned int)k < ZT_K8S_KIND_MAX ? &resources[k] : NULL;
}

const char *zt_k8s_kind_name(enum zt_k8s_kind k)
{
	return (unsigned int)k < ZT_K8S_KIND_MAX ? resources[k].kind : "unknown";
}

const char *zt_k8s_phase_name(enum zt_k8s_pod_phase p)
{
	static const char *const names[] = { "Unknown", "Pending", "Running", "Succeeded",
					     "Failed" };

	return (unsigned int)p < ZT_ARRAY_SIZE(names) ? names[p] : "Unknown";
}

/* ---- the object's allocations ------------------------------------------ */

struct obj_priv {
	struct zt_k8s_object pub; /* first: the public pointer is this one */
	void **allocs;
	size_t n_allocs, cap_allocs;
};

static void *keep(struct obj_priv *p, void *mem)
{
	if (!mem)
		return NULL;
	if (zt_grow((void **)&p->allocs, &p->cap_allocs, p->n_allocs + 1, sizeof(void *)) < 0) {
		free(mem);
		return NULL;
	}
	p->allocs[p->n_allocs++] = mem;
	return mem;
}

void zt_k8s_object_free(struct zt_k8s_object *o)
{
	struct obj_priv *p = (struct obj_priv *)o;

	if (!o)
		return;
	for (size_t i = 0; i < p->n_allocs; i++)
		free(p->allocs[i]);
	free(p->allocs);
	free(p);
}

/* ---- typed access with messages ---------------------------------------- */

struct dec {
	char *err;
	size_t errlen;
	struct obj_priv *p;
};

static int fail(struct dec *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct dec *d, const char *path, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zt_seterr(d->err, d->errlen, "%s: %s", path, msg);
	return -EINVAL;
}

static const char *type_name(json_object *v)
{
	return v ? json_type_to_name(json_object_get_type(v)) : "nothing";
}

/* A member that must be absent, null or of type t; *out NULL when absent/null. */
static int member(struct dec *d, json_object *o, const char *key, const char *path, json_type t,
		  json_object **out)
{
	json_object *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, t)) {
		return fail(d, path, "expected %s, got %s", json_type_to_name(t), type_name(v));
	}
	*out = v;
	return 0;
}

/* A string kept in the object; absent gives def (NULL def: required). */
static int string_of(struct dec *d, json_object *v, const char *path, const char *def,
		     const char **out)
{
	const char *s;
	size_t len;

	if (!v) {
		if (!def)
			return fail(d, path, "missing");
		s = def;
		len = strlen(def);
	} else {
		if (!json_object_is_type(v, json_type_string))
			return fail(d, path, "expected a string, got %s", type_name(v));
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (memchr(s, '\0', len))
			return fail(d, path, "contains a NUL byte");
		if (len > ZT_K8S_MAX_STRING)
			return fail(d, path, "longer than 4096 bytes");
	}
	*out = keep(d->p, strndup(s, len));
	if (!*out) {
		zt_seterr(d->err, d->errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int str_member(struct dec *d, json_object *o, const char *key, const char *path,
		      const char *def, const char **out)
{
	json_object *v;
	int r = member(d, o, key, path, json_type_string, &v);

	return r ? r : string_of(d, v, path, def, out);
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct zt_k8s_label *)a)->key, ((const struct zt_k8s_label *)b)->key);
}

static int labels_of(struct dec *d, json_object *meta, struct zt_k8s_object *o)
{
	struct zt_k8s_label *v;
	json_object *m;
	size_t i = 0, n;
	int r;

	r = member(d, meta, "labels", "metadata.labels", json_type_object, &m);
	if (r || !m)
		return r;
	n = (size_t)json_object_object_length(m);
	if (n > ZT_K8S_MAX_LABELS)
		return fail(d, "metadata.labels", "more than 256 labels");
	if (!n)
		return 0;
	v = keep(d->p, calloc(n, sizeof(*v)));
	if (!v)
		return -ENOMEM;
	json_object_object_foreach(m, k, val)
	{
		char path[64];

		snprintf(path, sizeof(path), "metadata.labels[\"%.32s\"]", k);
		if (strlen(k) > ZT_K8S_MAX_STRING)
			return fail(d, "metadata.labels", "a key longer than 4096 bytes");
		v[i].key = keep(d->p, strdup(k));
		if (!v[i].key)
			return -ENOMEM;
		if (!val)
			return fail(d, path, "expected a string, got null");
		r = string_of(d, val, path, NULL, &v[i].value);
		if (r)
			return r;
		i++;
	}
	qsort(v, n, sizeof(*v), cmp_label);
	o->labels = v;
	o->n_labels = n;
	return 0;
}

/*
 * metadata.annotations, only the ztagent.io/ ones (policies generated from
 * metadata, seg/polgen.h); the rest is not ours and is not kept.
 */
static int annotations_of(struct dec *d, json_object *meta, struct zt_k8s_object *o)
{
	struct zt_k8s_label *v;
	json_object *m;
	size_t n = 0;
	int r;

	r = member(d, meta, "annotations", "metadata.annotations", json_type_object, &m);
	if (r || !m)
		return r;
	json_object_object_foreach(m, k0, val0)
	{
		(void)val0;
		n += !strncmp(k0, "ztagent.io/", 11);
	}
	if (!n)
		return 0;
	if (n > ZT_K8S_MAX_ANNOTATIONS)
		return fail(d, "metadata.annotations", "more than %d ztagent.io/ annotations",
			    ZT_K8S_MAX_ANNOTATIONS);
	v = keep(d->p, calloc(n, sizeof(*v)));
	if (!v)
		return -ENOMEM;
	n = 0;
	json_object_object_foreach(m, k, val)
	{
		char path[80];

		if (strncmp(k, "ztagent.io/", 11))
			continue;
		snprintf(path, sizeof(path), "metadata.annotations[\"%.40s\"]", k);
		v[n].key = keep(d->p, strdup(k));
		if (!v[n].key)
			return -ENOMEM;
		if (!val)
			return fail(d, path, "expected a string, got null");
		r = string_of(d, val, path, NULL, &v[n].value);
		if (r)
			return r;
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_label);
	o->annotations = v;
	o->n_annotations = n;
	return 0;
}

/* metadata common to every kind. */
static int meta_of(struct dec *d, enum zt_k8s_kind kind, json_object *obj, json_object **meta_out)
{
	const struct zt_k8s_resource *res = zt_k8s_resource(kind);
	struct zt_k8s_object *o = &d->p->pub;
	json_object *meta, *v;
	int r;

	r = member(d, obj, "metadata", "metadata", json_type_object, &meta);
	if (r)
		return r;
	if (!meta)
		return fail(d, "metadata", "missing");
	/* Lists leave apiVersion and kind out of their items; events carry them. */
	r = member(d, obj, "kind", "kind", json_type_string, &v);
	if (!r && v && strcmp(json_object_get_string(v), res->kind))
		r = fail(d, "kind", "expected the kind watched, got '%.64s'",
			 json_object_get_string(v));
	if (!r)
		r = member(d, obj, "apiVersion", "apiVersion", json_type_string, &v);
	if (!r && v && strcmp(json_object_get_string(v), res->api_version))
		r = fail(d, "apiVersion", "expected the group/version watched, got '%.64s'",
			 json_object_get_string(v));
	if (!r)
		r = str_member(d, meta, "name", "metadata.name", NULL, &o->name);
	if (!r && !o->name[0])
		r = fail(d, "metadata.name", "empty");
	if (!r)
		r = str_member(d, meta, "namespace", "metadata.namespace",
			       res->namespaced ? NULL : "", &o->namespace);
	if (!r && res->namespaced && !o->namespace[0])
		r = fail(d, "metadata.namespace", "empty");
	if (!r && !res->namespaced && o->namespace[0])
		r = fail(d, "metadata.namespace", "set on a cluster-scoped object");
	if (!r)
		r = str_member(d, meta, "uid", "metadata.uid", "", &o->uid);
	if (!r)
		r = str_member(d, meta, "resourceVersion", "metadata.resourceVersion", NULL,
			       &o->resource_version);
	if (!r)
		r = labels_of(d, meta, o);
	if (!r)
		r = annotations_of(d, meta, o);
	*meta_out = meta;
	return r;
}

/* ---- pods -------------------------------------------------------------- */

static int proto_of(struct dec *d, json_object *port, const char *path, uint8_t *out)
{
	const char *s;
	json_object *v;
	int r = member(d, port, "protocol", path, json_type_string, &v);

	if (r)
		return r;
	s = v ? json_object_get_string(v) : "TCP";
	if (!strcmp(s, "TCP"))
		*out = IPPROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*out = IPPROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*out = IPPROTO_SCTP;
	else
		return fail(d, path, "expected TCP, UDP or SCTP, got '%.16s'", s);
	return 0;
}

static int ports_of(struct dec *d, json_object *spec, struct zt_k8s_pod *pod)
{
	struct zt_k8s_port *v = NULL;
	json_object *ctrs;
	size_t n = 0, cap = 0;
	int r;

	r = member(d, spec, "containers", "spec.containers", json_type_array, &ctrs);
	if (r || !ctrs)
		return r;
	for (size_t c = 0; c < json_object_array_length(ctrs); c++) {
		json_object *ctr = json_object_array_get_idx(ctrs, c), *ports;
		char path[96];

		snprintf(path, sizeof(path), "spec.containers[%zu]", c);
		if (!json_object_is_type(ctr, json_type_object))
			return fail(d, path, "expected an object, got %s", type_name(ctr));
		snprintf(path, sizeof(path), "spec.containers[%zu].ports", c);
		r = member(d, ctr, "ports", path, json_type_array, &ports);
		if (r)
			return r;
		for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
			json_object *pt = json_object_array_get_idx(ports, i), *name, *num;
			struct zt_k8s_port port = { 0 };
			int64_t cp;

			snprintf(path, sizeof(path), "spec.containers[%zu].ports[%zu]", c, i);
			if (!json_object_is_type(pt, json_type_object))
				return fail(d, path, "expected an object, got %s", type_name(pt));
			r = member(d, pt, "name", path, json_type_string, &name);
			if (!r)
				r = member(d, pt, "containerPort", path, json_type_int, &num);
			if (r)
				return r;
			if (!num)
				return fail(d, path, "containerPort is missing");
			cp = json_object_get_int64(num);
			if (cp < 1 || cp > 65535)
				return fail(d, path, "containerPort out of 1-65535");
			if (!name)
				continue; /* only named ports mean anything to a policy */
			r = proto_of(d, pt, path, &port.protocol);
			if (!r)
				r = string_of(d, name, path, NULL, &port.name);
			if (r)
				return r;
			port.port = (uint16_t)cp;
			if (n == ZT_K8S_MAX_PORTS)
				return fail(d, "spec.containers", "more than 1024 named ports");
			if (zt_grow((void **)&v, &cap, n + 1, sizeof(*v)) < 0) {
				free(v);
				return -ENOMEM;
			}
			v[n++] = port;
		}
	}
	if (v && !keep(d->p, v))
		return -ENOMEM;
	pod->ports = v;
	pod->n_ports = n;
	return 0;
}

static bool cidr_eq(const struct zt_cidr *a, const struct zt_cidr *b)
{
	return a->family == b->family && a->prefixlen == b->prefixlen &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int ip_of(struct dec *d, json_object *v, const char *path, struct zt_k8s_pod *pod)
{
	const char *s;
	struct zt_cidr c;
	int r;

	memset(&c, 0, sizeof(c));
	r = string_of(d, v, path, NULL, &s);
	if (r)
		return r;
	if (strchr(s, '/') || zt_cidr_parse(s, &c, NULL) < 0)
		return fail(d, path, "'%.64s' is not an IP address", s);
	for (size_t i = 0; i < pod->n_ips; i++)
		if (cidr_eq(&pod->ips[i], &c))
			return 0;
	if (pod->n_ips == ZT_K8S_MAX_POD_IPS)
		return fail(d, path, "more than 2 pod IPs");
	pod->ips[pod->n_ips++] = c;
	return 0;
}

static int pod_of(struct dec *d, json_object *obj, json_object *meta)
{
	static const char *const phases[] = { "", "Pending", "Running", "Succeeded", "Failed" };
	struct zt_k8s_pod *pod = &d->p->pub.pod;
	json_object *spec, *status, *v, *ips;
	int r;

	r = member(d, meta, "deletionTimestamp", "metadata.deletionTimestamp", json_type_string,
		   &v);
	if (r)
		return r;
	pod->terminating = v != NULL;
	r = member(d, obj, "spec", "spec", json_type_object, &spec);
	if (!r)
		r = member(d, obj, "status", "status", json_type_object, &status);
	if (r)
		return r;
	if (spec) {
		const char *sa = "";

		r = str_member(d, spec, "nodeName", "spec.nodeName", "", &pod->node);
		if (!r)
			r = str_member(d, spec, "serviceAccount", "spec.serviceAccount", "", &sa);
		/* serviceAccount is the deprecated alias of serviceAccountName. */
		if (!r)
			r = str_member(d, spec, "serviceAccountName", "spec.serviceAccountName", sa,
				       &pod->service_account);
		if (!r)
			r = member(d, spec, "hostNetwork", "spec.hostNetwork", json_type_boolean,
				   &v);
		if (r)
			return r;
		pod->host_network = v && json_object_get_boolean(v);
		r = ports_of(d, spec, pod);
		if (r)
			return r;
	} else {
		pod->node = "";
		pod->service_account = "";
	}
	if (!status)
		return 0;
	r = member(d, status, "phase", "status.phase", json_type_string, &v);
	if (r)
		return r;
	for (size_t i = 1; v && i < ZT_ARRAY_SIZE(phases); i++)
		if (!strcmp(json_object_get_string(v), phases[i]))
			pod->phase = (enum zt_k8s_pod_phase)i;
	r = member(d, status, "podIPs", "status.podIPs", json_type_array, &ips);
	if (r)
		return r;
	for (size_t i = 0; ips && i < json_object_array_length(ips); i++) {
		json_object *e = json_object_array_get_idx(ips, i), *ip;
		char path[48];

		snprintf(path, sizeof(path), "status.podIPs[%zu].ip", i);
		if (!json_object_is_type(e, json_type_object))
			return fail(d, path, "expected an object, got %s", type_name(e));
		r = member(d, e, "ip", path, json_type_string, &ip);
		if (!r && !ip)
			r = fail(d, path, "missing");
		if (!r)
			r = ip_of(d, ip, path, pod);
		if (r)
			return r;
	}
	/* Servers before dual stack only fill podIP; when both are there they agree. */
	r = member(d, status, "podIP", "status.podIP", json_type_string, &v);
	if (!r && v && json_object_get_string_len(v) && pod->n_ips == 0)
		r = ip_of(d, v, "status.podIP", pod);
	return r;
}

/* ---- nodes ------------------------------------------------------------- */

static int node_cidr_of(struct dec *d, json_object *v, const char *path, struct zt_k8s_node *n)
{
	struct zt_cidr c;
	bool host_bits = false;
	const char *s;
	int r;

	memset(&c, 0, sizeof(c));
	r = string_of(d, v, path, NULL, &s);
	if (r)
		return r;
	if (!strchr(s, '/') || zt_cidr_parse(s, &c, &host_bits) < 0 || host_bits)
		return fail(d, path, "'%.64s' is not a network prefix (ADDR/LEN)", s);
	for (size_t i = 0; i < n->n_pod_cidrs; i++)
		if (cidr_eq(&n->pod_cidrs[i], &c))
			return 0;
	if (n->n_pod_cidrs == ZT_K8S_MAX_NODE_CIDRS)
		return fail(d, path, "more than %d pod CIDRs", ZT_K8S_MAX_NODE_CIDRS);
	n->pod_cidrs[n->n_pod_cidrs++] = c;
	return 0;
}

/*
 * spec.podCIDRs (or the older spec.podCIDR) and the InternalIP addresses:
 * which pods a node hosts and where its agent listens. Other address types
 * (Hostname, ExternalIP, ...) are not the cluster network.
 */
static int node_of(struct dec *d, json_object *obj)
{
	struct zt_k8s_node *n = &d->p->pub.node;
	json_object *spec, *status, *v, *addrs;
	int r;

	r = member(d, obj, "spec", "spec", json_type_object, &spec);
	if (!r)
		r = member(d, obj, "status", "status", json_type_object, &status);
	if (r)
		return r;
	if (spec) {
		r = member(d, spec, "podCIDRs", "spec.podCIDRs", json_type_array, &v);
		for (size_t i = 0; !r && v && i < json_object_array_length(v); i++) {
			char path[48];

			snprintf(path, sizeof(path), "spec.podCIDRs[%zu]", i);
			r = node_cidr_of(d, json_object_array_get_idx(v, i), path, n);
		}
		if (r)
			return r;
		/* Servers before dual stack only fill podCIDR; when both are there they agree. */
		r = member(d, spec, "podCIDR", "spec.podCIDR", json_type_string, &v);
		if (!r && v && json_object_get_string_len(v) && n->n_pod_cidrs == 0)
			r = node_cidr_of(d, v, "spec.podCIDR", n);
		if (r)
			return r;
	}
	if (!status)
		return 0;
	r = member(d, status, "addresses", "status.addresses", json_type_array, &addrs);
	for (size_t i = 0; !r && addrs && i < json_object_array_length(addrs); i++) {
		json_object *e = json_object_array_get_idx(addrs, i), *t, *a;
		struct zt_cidr c;
		const char *s;
		char path[48];
		bool dup = false;

		snprintf(path, sizeof(path), "status.addresses[%zu]", i);
		if (!json_object_is_type(e, json_type_object))
			return fail(d, path, "expected an object, got %s", type_name(e));
		r = member(d, e, "type", path, json_type_string, &t);
		if (!r)
			r = member(d, e, "address", path, json_type_string, &a);
		if (r)
			return r;
		if (!t || !a || strcmp(json_object_get_string(t), "InternalIP"))
			continue;
		snprintf(path, sizeof(path), "status.addresses[%zu].address", i);
		r = string_of(d, a, path, NULL, &s);
		if (r)
			return r;
		memset(&c, 0, sizeof(c));
		if (strchr(s, '/') || zt_cidr_parse(s, &c, NULL) < 0)
			return fail(d, path, "'%.64s' is not an IP address", s);
		for (size_t j = 0; j < n->n_internal_ips; j++)
			dup = dup || cidr_eq(&n->internal_ips[j], &c);
		if (!dup && n->n_internal_ips < ZT_K8S_MAX_NODE_ADDRS)
			n->internal_ips[n->n_internal_ips++] = c;
	}
	return r;
}

/* ---- policies ---------------------------------------------------------- */

static int policy_of(struct dec *d, enum zt_k8s_kind kind, json_object *obj, json_object *meta)
{
	const struct zt_k8s_resource *res = zt_k8s_resource(kind);
	struct zt_k8s_object *o = &d->p->pub;
	json_object *spec, *labels, *doc = NULL, *md = NULL;
	const char *s;
	int r;

	r = member(d, obj, "spec", "spec", json_type_object, &spec);
	if (r)
		return r;
	if (!spec)
		return fail(d, "spec", "missing");
	r = member(d, meta, "labels", "metadata.labels", json_type_object, &labels);
	if (r)
		return r;
	doc = json_object_new_object();
	md = json_object_new_object();
	if (!doc || !md)
		goto nomem;
	/* Order as a person writes it, so messages' line:column read naturally. */
	if (json_object_object_add(doc, "apiVersion", json_object_new_string(res->api_version)) ||
	    json_object_object_add(doc, "kind", json_object_new_string(res->kind)) ||
	    json_object_object_add(md, "name", json_object_new_string(o->name)) ||
	    json_object_object_add(md, "namespace", json_object_new_string(o->namespace)))
		goto nomem;
	if (labels && json_object_object_add(md, "labels", json_object_get(labels)))
		goto nomem;
	if (json_object_object_add(doc, "metadata", md))
		goto nomem;
	md = NULL;
	if (json_object_object_add(doc, "spec", json_object_get(spec)))
		goto nomem;
	s = json_object_to_json_string_length(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &o->policy_len);
	o->policy_json = s ? keep(d->p, strndup(s, o->policy_len)) : NULL;
	if (!o->policy_json)
		goto nomem;
	json_object_put(doc);
	return 0;
nomem:
	json_object_put(md);
	json_object_put(doc);
	zt_seterr(d->err, d->errlen, "out of memory");
	return -ENOMEM;
}

/* ---- entry points ------------------------------------------------------ */

int zt_k8s_object_decode(enum zt_k8s_kind kind, json_object *obj, struct zt_k8s_object **out,
			 char *err, size_t errlen)
{
	struct dec d = { err, errlen, NULL };
	json_object *meta = NULL;
	int r;

	if (!zt_k8s_resource(kind))
		return -EINVAL;
	if (!json_object_is_type(obj, json_type_object)) {
		zt_seterr(err, errlen, "object: expected an object, got %s", type_name(obj));
		return -EINVAL;
	}
	d.p = calloc(1, sizeof(*d.p));
	if (!d.p)
		return -ENOMEM;
	d.p->pub.kind = kind;
	r = meta_of(&d, kind, obj, &meta);
	if (!r && kind == ZT_K8S_POD)
		r = pod_of(&d, obj, meta);
	else if (!r && (kind == ZT_K8S_NETWORK_POLICY || kind == ZT_K8S_ZT_POLICY))
		r = policy_of(&d, kind, obj, meta);
	else if (!r && kind == ZT_K8S_NODE)
		r = node_of(&d, obj);
	if (r) {
		zt_k8s_object_free(&d.p->pub);
		if (r == -ENOMEM)
			zt_seterr(err, errlen, "out of memory");
		return r;
	}
	*out = &d.p->pub;
	return 0;
}

int zt_k8s_meta_rv(json_object *o, char *rv, size_t n)
{
	json_object *meta, *v;
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "metadata", &meta) ||
	    !json_object_is_type(meta, json_type_object) ||
	    !json_object_object_get_ex(meta, "resourceVersion", &v) ||
	    !json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len >= n)
		return -EINVAL;
	/* Opaque, but it goes into a URL: printable ASCII without blanks only. */
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return -EINVAL;
	memcpy(rv, s, len + 1);
	return 0;
}

static void copy_str(json_object *o, const char *key, char *buf, size_t n)
{
	json_object *v;

	buf[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(buf, n, "%s", json_object_get_string(v));
}

int zt_k8s_event_decode(enum zt_k8s_kind kind, json_object *ev, struct zt_k8s_event *out, char *err,
			size_t errlen)
{
	static const char *const types[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
	json_object *t, *obj, *v;
	const char *ts;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!json_object_object_get_ex(ev, "type", &t) ||
	    !json_object_is_type(t, json_type_string)) {
		zt_seterr(err, errlen, "event: no type");
		return -EPROTO;
	}
	ts = json_object_get_string(t);
	for (i = 0; i < ZT_ARRAY_SIZE(types); i++)
		if (!strcmp(ts, types[i]))
			break;
	if (i == ZT_ARRAY_SIZE(types)) {
		zt_seterr(err, errlen, "event: unknown type '%.32s'", ts);
		return -EPROTO;
	}
	out->type = (enum zt_k8s_ev_type)i;
	if (!json_object_object_get_ex(ev, "object", &obj) ||
	    !json_object_is_type(obj, json_type_object)) {
		zt_seterr(err, errlen, "event %s: no object", ts);
		return -EPROTO;
	}
	if (out->type == ZT_K8S_EV_ERROR) {
		/* A metav1.Status. */
		if (json_object_object_get_ex(obj, "code", &v) &&
		    json_object_is_type(v, json_type_int))
			out->code = (long)json_object_get_int64(v);
		copy_str(obj, "reason", out->reason, sizeof(out->reason));
		copy_str(obj, "message", out->message, sizeof(out->message));
		return 0;
	}
	if (zt_k8s_meta_rv(obj, out->rv, sizeof(out->rv)) < 0) {
		zt_seterr(err, errlen, "event %s: no usable metadata.resourceVersion", ts);
		return -EPROTO;
	}
	if (out->type == ZT_K8S_EV_BOOKMARK)
		return 0;
	return zt_k8s_object_decode(kind, obj, &out->obj, err, errlen);
}

/* ---- comparisons and names --------------------------------------------- */

const char *zt_k8s_label_get(const struct zt_k8s_object *o, const char *key)
{
	for (size_t i = 0; i < o->n_labels; i++)
		if (!strcmp(o->labels[i].key, key))
			return o->labels[i].value;
	return NULL;
}

int zt_k8s_object_describe(const struct zt_k8s_object *o, char *buf, size_t n)
{
	int w;

	if (o->namespace && o->namespace[0])
		w = snprintf(buf, n, "%s %s/%s", zt_k8s_kind_name(o->kind), o->namespace, o->name);
	else
		w = snprintf(buf, n, "%s %s", zt_k8s_kind_name(o->kind), o->name);
	return w < 0 || (size_t)w >= n ? -ENOSPC : 0;
}

static bool str_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

bool zt_k8s_object_same(const struct zt_k8s_object *a, const struct zt_k8s_object *b)
{
	const struct zt_k8s_pod *pa = &a->pod, *pb = &b->pod;

	if (a->kind != b->kind || !str_eq(a->namespace, b->namespace) ||
	    !str_eq(a->name, b->name) || !str_eq(a->uid, b->uid) || a->n_labels != b->n_labels)
		return false;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) ||
		    strcmp(a->labels[i].value, b->labels[i].value))
			return false;
	if (a->n_annotations != b->n_annotations)
		return false;
	for (size_t i = 0; i < a->n_annotations; i++)
		if (strcmp(a->annotations[i].key, b->annotations[i].key) ||
		    strcmp(a->annotations[i].value, b->annotations[i].value))
			return false;
	if (a->policy_len != b->policy_len ||
	    (a->policy_len && memcmp(a->policy_json, b->policy_json, a->policy_len)))
		return false;
	if (a->kind == ZT_K8S_NODE) {
		const struct zt_k8s_node *na = &a->node, *nb = &b->node;

		if (na->n_pod_cidrs != nb->n_pod_cidrs || na->n_internal_ips != nb->n_internal_ips)
			return false;
		for (size_t i = 0; i < na->n_pod_cidrs; i++)
			if (!cidr_eq(&na->pod_cidrs[i], &nb->pod_cidrs[i]))
				return false;
		for (size_t i = 0; i < na->n_internal_ips; i++)
			if (!cidr_eq(&na->internal_ips[i], &nb->internal_ips[i]))
				return false;
		return true;
	}
	if (a->kind != ZT_K8S_POD)
		return true;
	if (!str_eq(pa->node, pb->node) || !str_eq(pa->service_account, pb->service_account) ||
	    pa->phase != pb->phase || pa->host_network != pb->host_network ||
	    pa->terminating != pb->terminating || pa->n_ips != pb->n_ips ||
	    pa->n_ports != pb->n_ports)
		return false;
	for (size_t i = 0; i < pa->n_ips; i++)
		if (!cidr_eq(&pa->ips[i], &pb->ips[i]))
			return false;
	for (size_t i = 0; i < pa->n_ports; i++)
		if (strcmp(pa->ports[i].name, pb->ports[i].name) ||
		    pa->ports[i].port != pb->ports[i].port ||
		    pa->ports[i].protocol != pb->ports[i].protocol)
			return false;
	return true;
}
