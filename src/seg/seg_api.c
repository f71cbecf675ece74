// SPDX-License-Identifier: GPL-2.0-only
/* The segmentation API: endpoint add/del/list, policy list/explain/reload, recent flows. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/log.h"
#include "agent/util.h"
#include "records/auditq.h"
#include "seg/polgen.h"
#include "seg/policy_eval.h"
#include "seg/seg_int.h"
#include "tc_endpoint.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int req_str(const cbor_item_t *req, const char *key, char *buf, size_t n, bool need,
		   char *err, size_t errlen)
{
	int r = zt_cbor_get_str(req, key, buf, n);

	if (r == -ENOENT && !need) {
		buf[0] = '\0';
		return 0;
	}
	if (r < 0)
		zt_seterr(err, errlen, "%s: %s", key,
			  r == -ENOENT ? "missing" :
			  r == -E2BIG  ? "too long" :
					 "expected text");
	return r;
}

static cbor_item_t *ep_to_cbor(const struct zt_ep *ep)
{
	cbor_item_t *m = zt_cbor_map(), *l;
	char addrs[ZT_EP_MAX_ADDRS * 48];

	zt_ep_addrs_format(ep, addrs, sizeof(addrs));
	if (!m || zt_cbor_put_u64(m, "id", ep->id) || zt_cbor_put_str(m, "name", ep->name) ||
	    zt_cbor_put_str(m, "namespace", ep->ns) || zt_cbor_put_str(m, "ifname", ep->ifname) ||
	    zt_cbor_put_u64(m, "ifindex", (uint64_t)ep->ifindex) ||
	    zt_cbor_put_str(m, "ip", addrs) || zt_cbor_put_u64(m, "identity", ep->identity) ||
	    zt_cbor_put_u64(m, "created_unix", ep->created_unix) ||
	    zt_cbor_put_str(m, "origin", zt_ep_origin_name(ep->origin)) ||
	    zt_cbor_put_bool(m, "pending", ep->pending) ||
	    zt_cbor_put_str(m, "pod_uid", ep->pod_uid) ||
	    zt_cbor_put_str(m, "container_id", ep->container_id) ||
	    zt_cbor_put_str(m, "cni_ifname", ep->cni_ifname) ||
	    zt_cbor_put_str(m, "service_account", ep->service_account))
		goto fail;
	l = zt_ep_labels_cbor(ep->labels, ep->n_labels);
	if (!l || zt_cbor_put(m, "labels", l))
		goto fail;
	l = zt_ep_labels_cbor(ep->ns_labels, ep->n_ns_labels);
	if (!l || zt_cbor_put(m, "namespace_labels", l))
		goto fail;
	return m;
fail:
	if (m)
		cbor_decref(&m);
	return NULL;
}

/*
 * A CNI registration of a sandbox the table knows already: the same
 * (container id, interface) on the same veth with the same addresses is a
 * repeated ADD (answered with the endpoint as it is: *same); on another
 * veth it is stale (removed). Another sandbox of the same pod (the runtime
 * replaced it; a pod has one at a time) is removed too; an operator's
 * endpoint of that name is not touched (the add then fails on the name).
 */
static void cni_replace(struct zt_seg *s, struct zt_ep *ep, struct zt_ep **same)
{
	struct zt_ep *o = zt_ep_table_by_container(&s->eps, ep->container_id, ep->cni_ifname);
	char a[ZT_EP_MAX_ADDRS * 48], b[ZT_EP_MAX_ADDRS * 48];

	*same = NULL;
	if (o) {
		zt_ep_addrs_format(o, a, sizeof(a));
		zt_ep_addrs_format(ep, b, sizeof(b));
		if (!strcmp(o->ifname, ep->ifname) && !strcmp(a, b) &&
		    !strcmp(o->qname, ep->qname) && (int)if_nametoindex(o->ifname) == o->ifindex) {
			*same = o;
			return;
		}
		seg_endpoint_remove(s, o, "cni-add-replaced");
	}
	o = zt_ep_table_by_qname(&s->eps, ep->ns, ep->name);
	if (o && o->origin == ZT_EP_ORIGIN_CNI)
		seg_endpoint_remove(s, o, "pod-sandbox-replaced");
}

static int op_endpoint_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char ifname[64], name[ZT_EP_NAME_MAX + 2], ns[80], ip[2048], labels[8192], nsl[8192],
		ports[4096], q[9000], origin[16], uid[ZT_EP_UID_MAX + 2], cid[ZT_EP_CID_MAX + 2],
		cni_ifname[64], sa[ZT_DNS_SUBDOMAIN_MAX + 2];
	enum zt_ep_origin o = ZT_EP_ORIGIN_API;
	struct zt_ep *ep, *same = NULL;
	bool has_labels;
	int r;

	if ((r = req_str(req, "ifname", ifname, sizeof(ifname), true, err, errlen)) < 0 ||
	    (r = req_str(req, "ip", ip, sizeof(ip), true, err, errlen)) < 0 ||
	    (r = req_str(req, "name", name, sizeof(name), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace", ns, sizeof(ns), false, err, errlen)) < 0 ||
	    (r = req_str(req, "labels", labels, sizeof(labels), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace_labels", nsl, sizeof(nsl), false, err, errlen)) < 0 ||
	    (r = req_str(req, "ports", ports, sizeof(ports), false, err, errlen)) < 0 ||
	    (r = req_str(req, "origin", origin, sizeof(origin), false, err, errlen)) < 0 ||
	    (r = req_str(req, "pod_uid", uid, sizeof(uid), false, err, errlen)) < 0 ||
	    (r = req_str(req, "container_id", cid, sizeof(cid), false, err, errlen)) < 0 ||
	    (r = req_str(req, "cni_ifname", cni_ifname, sizeof(cni_ifname), false, err, errlen)) <
		    0 ||
	    (r = req_str(req, "service_account", sa, sizeof(sa), false, err, errlen)) < 0)
		return r;
	if (*origin && zt_ep_origin_parse(origin, &o) < 0) {
		zt_seterr(err, errlen, "origin: expected api or cni, got '%.15s'", origin);
		return -EINVAL;
	}
	/* A CNI registration without labels waits for them: pending. */
	has_labels = zt_cbor_get(req, "labels") != NULL;
	{
		struct zt_ep_spec spec = { .ifname = ifname,
					   .name = name,
					   .ns = ns,
					   .addrs = ip,
					   .labels = labels,
					   .ns_labels = nsl,
					   .ports = ports,
					   .origin = o,
					   .pending = o == ZT_EP_ORIGIN_CNI && !has_labels,
					   .pod_uid = uid,
					   .container_id = cid,
					   .cni_ifname = cni_ifname,
					   .service_account = sa };

		r = zt_ep_from_spec(&spec, &ep, err, errlen);
	}
	if (r < 0)
		return r;
	if (o == ZT_EP_ORIGIN_CNI) {
		seg_cni_spool_apply(s);
		cni_replace(s, ep, &same);
		if (same) {
			zt_ep_free(ep);
			*data = ep_to_cbor(same);
			return *data ? 0 : -ENOMEM;
		}
		if (ep->pending && s->pod_lookup) {
			struct zt_pod_meta pm = { 0 };
			struct zt_ep_meta meta;
			char why[512];

			if (s->pod_lookup(s->pod_lookup_ctx, ep->ns, ep->name, ep->pod_uid, &pm) ==
			    0) {
				if (zt_ep_meta_from_pod(ep->ns, &pm, &meta, why, sizeof(why)) ==
				    0) {
					zt_ep_meta_swap(ep, &meta);
					zt_ep_meta_free(&meta);
					ep->pending = false;
					/* Its ztagent.io/ annotations: the add's refresh generates them. */
					pm.ns = ep->ns;
					pm.name = ep->name;
					seg_ann_from_pod(s, &pm);
				} else {
					log_warn("pod_meta_refused", "endpoint=%s error=%s",
						 ep->qname, zt_log_quote(q, sizeof(q), why));
				}
			}
		}
	}
	r = seg_endpoint_add(s, ep, err, errlen);
	if (r < 0) {
		log_warn("endpoint_refused", "ifname=%s error=%s", ifname,
			 zt_log_quote(q, sizeof(q), err));
		zt_ep_free(ep);
		return r;
	}
	zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels));
	zt_ep_addrs_format(ep, ip, sizeof(ip));
	log_info(
		"endpoint_added",
		"endpoint=%s id=%u ifname=%s ifindex=%d ip=%s identity=%u labels=%s origin=%s pending=%s pod_uid=%s container_id=%s",
		ep->qname, ep->id, ep->ifname, ep->ifindex, ip, ep->identity,
		zt_log_quote(q, sizeof(q), labels), zt_ep_origin_name(ep->origin),
		ep->pending ? "true" : "false", ep->pod_uid[0] ? ep->pod_uid : "-",
		ep->container_id[0] ? ep->container_id : "-");
	{
		char el[2100], ei[100], d[4800];

		zt_json_escape(labels, el, sizeof(el));
		zt_json_escape(ep->ifname, ei, sizeof(ei));
		snprintf(
			d, sizeof(d),
			"{\"ifname\":\"%s\",\"ip\":\"%.2000s\",\"identity\":%u,\"labels\":\"%s\",\"origin\":\"%s\",\"pending\":%s,\"pod_uid\":\"%s\",\"container_id\":\"%s\"}",
			ei, ip, ep->identity, el, zt_ep_origin_name(ep->origin),
			ep->pending ? "true" : "false", ep->pod_uid, ep->container_id);
		seg_audit(s, "endpoint.add", ep->qname, d);
	}
	*data = ep_to_cbor(ep);
	return *data ? 0 : -ENOMEM;
}

/*
 * CNI DEL: by (container id, interface); idempotent, so an unknown pair is
 * success with "removed": false.
 */
static int cni_del(struct zt_seg *s, const cbor_item_t *req, cbor_item_t **data, char *err,
		   size_t errlen)
{
	char cid[ZT_EP_CID_MAX + 2], cni_ifname[64];
	struct zt_ep *ep;
	int r;

	if ((r = req_str(req, "container_id", cid, sizeof(cid), true, err, errlen)) < 0 ||
	    (r = req_str(req, "cni_ifname", cni_ifname, sizeof(cni_ifname), true, err, errlen)) < 0)
		return r;
	seg_cni_spool_apply(s);
	ep = zt_ep_table_by_container(&s->eps, cid, cni_ifname);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_bool(*data, "removed", ep != NULL) ||
	    zt_cbor_put_str(*data, "endpoint", ep ? ep->qname : "") ||
	    zt_cbor_put_str(*data, "ifname", ep ? ep->ifname : ""))
		return -ENOMEM;
	if (ep)
		seg_endpoint_remove(s, ep, "cni-del");
	return 0;
}

static int op_endpoint_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char which[ZT_EP_NAME_MAX + 80];
	struct zt_ep *ep;
	bool amb;
	int r;

	if (zt_cbor_get(req, "container_id"))
		return cni_del(s, req, data, err, errlen);
	if ((r = req_str(req, "endpoint", which, sizeof(which), true, err, errlen)) < 0)
		return r;
	ep = zt_ep_table_find(&s->eps, which, &amb);
	if (!ep) {
		zt_seterr(err, errlen,
			  amb ? "'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
				"no endpoint '%s' (see 'ztctl endpoint list')",
			  which);
		return amb ? -ENOTUNIQ : -ENOENT;
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "endpoint", ep->qname) ||
	    zt_cbor_put_str(*data, "ifname", ep->ifname))
		return -ENOMEM;
	seg_endpoint_remove(s, ep, "operator");
	return 0;
}

static cbor_item_t *remote_to_cbor(struct zt_seg *s)
{
	cbor_item_t *arr = zt_cbor_array();
	int r = arr ? 0 : -ENOMEM;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; r == 0 && i < s->n_remote; i++) {
		const struct seg_remote *rp = &s->remote[i];
		char ip[ZT_SEG_REMOTE_MAX_ADDRS * 48] = "";
		size_t o = 0;
		cbor_item_t *m = zt_cbor_map(), *l;

		for (size_t j = 0; j < rp->n_addrs && o < sizeof(ip); j++) {
			char a[INET6_ADDRSTRLEN];

			inet_ntop(rp->addrs[j].family, rp->addrs[j].addr, a, sizeof(a));
			o += (size_t)snprintf(ip + o, sizeof(ip) - o, "%s%s", j ? "," : "", a);
		}
		if (!m) {
			r = -ENOMEM;
			break;
		}
		l = zt_ep_labels_cbor(rp->meta.labels, rp->meta.n_labels);
		if (!l || zt_cbor_put(m, "labels", l)) {
			if (l)
				cbor_decref(&l);
			cbor_decref(&m);
			r = -ENOMEM;
			break;
		}
		if (zt_cbor_put_str(m, "namespace", rp->ns) ||
		    zt_cbor_put_str(m, "name", rp->qname + strlen(rp->ns) + 1) ||
		    zt_cbor_put_str(m, "ip", ip) || zt_cbor_push(arr, m)) {
			cbor_decref(&m);
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r && arr)
		cbor_decref(&arr);
	return r ? NULL : arr;
}

static int op_endpoint_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_seg *s = ctx;
	cbor_item_t *arr = zt_cbor_array();

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < s->eps.n; i++) {
		cbor_item_t *e = ep_to_cbor(s->eps.v[i]);

		if (!e || zt_cbor_push(arr, e)) {
			if (e)
				cbor_decref(&e);
			cbor_decref(&arr);
			return -ENOMEM;
		}
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "endpoints", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	/* Pods of other nodes (the Kubernetes watch): `policy suggest` names them by labels. */
	arr = remote_to_cbor(s);
	if (!arr || zt_cbor_put(*data, "remote", arr)) {
		if (arr)
			cbor_decref(&arr);
		return -ENOMEM;
	}
	return 0;
}

/*
 * CNI CHECK: is the sandbox's endpoint registered, on the interface it was
 * registered on, with our programs attached and its endpoints map entry?
 * -ENOENT when not registered; otherwise the answer says what is wrong.
 */
static int op_endpoint_check(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			     size_t errlen)
{
	struct zt_seg *s = ctx;
	char cid[ZT_EP_CID_MAX + 2], cni_ifname[64], name[IF_NAMESIZE] = "";
	struct zt_endpoint_info info;
	const char *problem = "";
	__u32 key;
	struct zt_ep *ep;
	int r, owned;

	if ((r = req_str(req, "container_id", cid, sizeof(cid), true, err, errlen)) < 0 ||
	    (r = req_str(req, "cni_ifname", cni_ifname, sizeof(cni_ifname), true, err, errlen)) < 0)
		return r;
	ep = zt_ep_table_by_container(&s->eps, cid, cni_ifname);
	if (!ep) {
		zt_seterr(err, errlen,
			  "no endpoint for container %.80s interface %s (was ADD run, or the "
			  "agent's state reset?)",
			  cid, cni_ifname);
		return -ENOENT;
	}
	key = (__u32)ep->ifindex;
	owned = zt_datapath_tc_owned(ep->ifindex);
	if (!if_indextoname((unsigned int)ep->ifindex, name) || strcmp(name, ep->ifname))
		problem = "its interface is gone or was renamed";
	else if (owned <= 0)
		problem = "tc_endpoint is not attached to its interface";
	else if (bpf_map_lookup_elem(bpf_map__fd(s->dp->tc->maps.endpoints), &key, &info) ||
		 info.ep_id != ep->id || info.identity != ep->identity)
		problem = "its endpoints map entry is missing or stale";
	*data = ep_to_cbor(ep);
	if (!*data || zt_cbor_put_bool(*data, "enforced", !*problem) ||
	    zt_cbor_put_str(*data, "problem", problem))
		return -ENOMEM;
	return 0;
}

/*
 * Labels for an endpoint from an operator or a test (what the Kubernetes
 * watch gives through zt_seg_endpoint_set_pod_meta): "endpoint" names it,
 * "pod_uid" (optional) must match when both sides know it.
 */
static int op_endpoint_meta(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_seg *s = ctx;
	char which[ZT_EP_NAME_MAX + 80], labels[8192], nsl[8192], ports[4096],
		uid[ZT_EP_UID_MAX + 2], sa[ZT_DNS_SUBDOMAIN_MAX + 2];
	struct zt_ep_meta meta;
	struct zt_ep *ep;
	bool amb;
	int r;

	if ((r = req_str(req, "endpoint", which, sizeof(which), true, err, errlen)) < 0 ||
	    (r = req_str(req, "labels", labels, sizeof(labels), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace_labels", nsl, sizeof(nsl), false, err, errlen)) < 0 ||
	    (r = req_str(req, "ports", ports, sizeof(ports), false, err, errlen)) < 0 ||
	    (r = req_str(req, "pod_uid", uid, sizeof(uid), false, err, errlen)) < 0 ||
	    (r = req_str(req, "service_account", sa, sizeof(sa), false, err, errlen)) < 0)
		return r;
	ep = zt_ep_table_find(&s->eps, which, &amb);
	if (!ep) {
		zt_seterr(err, errlen,
			  amb ? "'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
				"no endpoint '%s' (see 'ztctl endpoint list')",
			  which);
		return amb ? -ENOTUNIQ : -ENOENT;
	}
	if (*uid && *ep->pod_uid && strcmp(uid, ep->pod_uid)) {
		zt_seterr(err, errlen, "endpoint %s belongs to pod UID %s, not %s", ep->qname,
			  ep->pod_uid, uid);
		return -ENOENT;
	}
	r = zt_ep_meta_from_text(ep->ns, labels, nsl, ports, sa, &meta, err, errlen);
	if (r < 0)
		return r;
	r = seg_endpoint_set_meta(s, ep, &meta, "operator", err, errlen);
	if (r < 0)
		return r;
	*data = ep_to_cbor(ep);
	return *data ? 0 : -ENOMEM;
}

static size_t selected_count(const struct zt_seg *s, const struct zt_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < s->eps.n; i++)
		if (!s->eps.v[i]->pending && !strcmp(p->namespace, s->eps.v[i]->ns) &&
		    zt_selector_matches(&p->pod_selector, &s->eps.v[i]->ev.ls.labels))
			n++;
	return n;
}

static int op_policy_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			  size_t errlen)
{
	struct zt_seg *s = ctx;
	cbor_item_t *arr = zt_cbor_array();
	const struct zt_policy_set *set = s->cur ? s->cur->set : NULL;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; set && i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];
		cbor_item_t *m = zt_cbor_map();
		char where[4200], types[32];

		snprintf(where, sizeof(where), "%s:%u:%u", p->file, p->pos.line, p->pos.column);
		snprintf(types, sizeof(types), "%s%s%s",
			 p->isolates[ZT_POL_INGRESS] ? "Ingress" : "",
			 p->isolates[ZT_POL_INGRESS] && p->isolates[ZT_POL_EGRESS] ? "," : "",
			 p->isolates[ZT_POL_EGRESS] ? "Egress" : "");
		if (!m || zt_cbor_put_str(m, "kind", zt_pol_kind_name(p->kind)) ||
		    zt_cbor_put_str(m, "namespace", p->namespace) ||
		    zt_cbor_put_str(m, "name", p->name) ||
		    zt_cbor_put_str(m, "mode", p->mode == ZT_POL_AUDIT ? "audit" : "enforce") ||
		    zt_cbor_put_str(m, "isolates", types) ||
		    zt_cbor_put_u64(m, "ingress_rules", p->n_rules[ZT_POL_INGRESS]) ||
		    zt_cbor_put_u64(m, "egress_rules", p->n_rules[ZT_POL_EGRESS]) ||
		    zt_cbor_put_u64(m, "endpoints", selected_count(s, p)) ||
		    zt_cbor_put_str(m, "source", where) ||
		    zt_cbor_put_str(m, "origin",
				    !strcmp(p->file, "generated") ? "generated" :
				    strncmp(p->file, "feed:", 5) && strncmp(p->file, "k8s:", 4) ?
								    "policy.dir" :
								    p->file) ||
		    zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			cbor_decref(&arr);
			return -ENOMEM;
		}
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "policies", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	if (zt_cbor_put_str(*data, "dir", s->cfg->policy.dir) ||
	    zt_cbor_put_str(*data, "default", s->cfg->policy.default_deny ? "deny" : "allow") ||
	    zt_cbor_put_u64(*data, "generation", s->st.gen) ||
	    zt_cbor_put_str(*data, "sha256", set ? set->sha256 : "") ||
	    zt_cbor_put_u64(*data, "rejects", s->st.rejects) ||
	    zt_cbor_put_str(*data, "last_error", s->last_reject) ||
	    zt_cbor_put_str(*data, "generated_problems", s->gen_problems))
		return -ENOMEM;
	return 0;
}

/*
 * A ztagent.io/ annotation of a namespace ("endpoint" absent or "") or of
 * an endpoint (named as endpoint.meta names it; or, with "namespace", an
 * endpoint name not registered yet, which it gets when it is added).
 */
static int op_annotate(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
		       size_t errlen)
{
	struct zt_seg *s = ctx;
	char ns[80], which[ZT_EP_NAME_MAX + 80], key[400], value[ZT_GEN_MAX_VALUE + 2];
	const char *pod = "";
	bool remove = false, amb = false;
	const cbor_item_t *rm = zt_cbor_get(req, "remove");
	int r;

	if ((r = req_str(req, "namespace", ns, sizeof(ns), false, err, errlen)) < 0 ||
	    (r = req_str(req, "endpoint", which, sizeof(which), false, err, errlen)) < 0 ||
	    (r = req_str(req, "key", key, sizeof(key), true, err, errlen)) < 0 ||
	    (r = req_str(req, "value", value, sizeof(value), false, err, errlen)) < 0)
		return r;
	if (rm) {
		if (!cbor_is_bool(rm)) {
			zt_seterr(err, errlen, "remove: expected a boolean");
			return -EINVAL;
		}
		remove = cbor_get_bool(rm);
	}
	if (*which) {
		const struct zt_ep *ep = zt_ep_table_find(&s->eps, which, &amb);

		if (ep && (!*ns || !strcmp(ns, ep->ns))) {
			snprintf(ns, sizeof(ns), "%s", ep->ns);
			pod = ep->name;
		} else if (*ns && !strchr(which, '/')) {
			pod = which;
		} else {
			zt_seterr(
				err, errlen,
				amb ? "'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
				      "no endpoint '%s' (see 'ztctl endpoint list'); give --namespace to annotate one before it is added",
				which);
			return amb ? -ENOTUNIQ : -ENOENT;
		}
	} else if (!*ns) {
		zt_seterr(err, errlen, "namespace: missing");
		return -EINVAL;
	}
	r = seg_ann_set(s, ns, pod, key, remove ? NULL : value, "operator", err, errlen);
	if (r < 0 && !err[0])
		zt_seterr(err, errlen, "%s (see 'ztctl policy list')", strerror(-r));
	if (r < 0)
		return r;
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "namespace", ns) ||
	    zt_cbor_put_str(*data, "endpoint", pod) || zt_cbor_put_str(*data, "key", key) ||
	    zt_cbor_put_bool(*data, "removed", remove) ||
	    zt_cbor_put_u64(*data, "generated_policies", s->gen ? s->gen->set->n : 0) ||
	    zt_cbor_put_u64(*data, "generation", s->st.gen) ||
	    zt_cbor_put_str(*data, "problems", s->gen_problems))
		return -ENOMEM;
	return 0;
}

/* zt_eval_parse_peer, with pending endpoints (absent from evs) named too. */
static int explain_peer(const struct zt_seg *s, const char *str, const struct zt_eval_endpoint *evs,
			size_t n_evs, struct zt_eval_peer *out, const struct zt_ep **pending)
{
	bool amb = false;
	const struct zt_ep *ep = zt_ep_table_find(&s->eps, str, &amb);
	int r;

	*pending = NULL;
	if (ep && ep->pending) {
		*pending = ep;
		*out = (struct zt_eval_peer){ .addr = ep->addrs[0] };
		return 0;
	}
	r = zt_eval_parse_peer(str, evs, n_evs, out);
	if (r < 0 || out->ep)
		return r;
	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *e = s->eps.v[i];

		for (size_t j = 0; e->pending && j < e->n_addrs; j++)
			if (e->addrs[j].family == out->addr.family &&
			    !memcmp(e->addrs[j].addr, out->addr.addr,
				    out->addr.family == AF_INET ? 4 : 16))
				*pending = e;
	}
	return 0;
}

static int op_policy_explain(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			     size_t errlen)
{
	struct zt_seg *s = ctx;
	char from[300], to[300], port[64], line[2048];
	struct zt_eval_endpoint *evs;
	struct zt_eval_conn c = { 0 };
	struct zt_eval_opts opts = { 0 };
	struct zt_eval_result res;
	const struct zt_policy_set *set;
	struct zt_policy_set empty = { 0 };
	const struct zt_ep *pend_src = NULL, *pend_dst = NULL;
	size_t n_evs = 0;
	int r;

	if ((r = req_str(req, "from", from, sizeof(from), true, err, errlen)) < 0 ||
	    (r = req_str(req, "to", to, sizeof(to), true, err, errlen)) < 0 ||
	    (r = req_str(req, "port", port, sizeof(port), true, err, errlen)) < 0)
		return r;
	if (zt_eval_parse_port(port, &c.protocol, &c.port) < 0) {
		zt_seterr(err, errlen,
			  "--port: '%s' is not PORT/PROTO (like 443/TCP, 53/UDP; port 1-65535)",
			  port);
		return -EINVAL;
	}
	set = s->cur ? s->cur->set : &empty;
	evs = calloc(s->eps.n ? s->eps.n : 1, sizeof(*evs));
	if (!evs)
		return -ENOMEM;
	/*
	 * Pending endpoints have no label identity: to the evaluator they are
	 * their addresses (no selector matches them, ipBlocks do), as the
	 * compiler has them; their own side is the pending posture's.
	 */
	for (size_t i = 0; i < s->eps.n; i++)
		if (!s->eps.v[i]->pending)
			evs[n_evs++] = s->eps.v[i]->ev;
	r = explain_peer(s, from, evs, n_evs, &c.src, &pend_src);
	if (r == 0)
		r = explain_peer(s, to, evs, n_evs, &c.dst, &pend_dst);
	if (r < 0) {
		const char *bad = c.src.ep || c.src.addr.family ? to : from;

		zt_seterr(
			err, errlen,
			r == -ENOTUNIQ ?
				"'%s' names endpoints in several namespaces; say NAMESPACE/NAME" :
			r == -ENOENT ?
				"'%s' is neither an address nor an endpoint (see 'ztctl endpoint list')" :
				"'%s' is not an endpoint or address",
			bad);
		free(evs);
		return r;
	}
	/*
	 * With the node's addresses, as the compiler has them: the host is
	 * allowed to and from its endpoints unless a deny rule for every peer
	 * says otherwise, and ipBlocks match every other address, endpoints'
	 * included, exactly as the datapath decides.
	 */
	opts.host_addrs = s->host;
	opts.n_host_addrs = s->n_host;
	r = zt_policy_eval_ex(
		set, s->cfg->policy.default_deny ? ZT_POL_DEFAULT_DENY : ZT_POL_DEFAULT_ALLOW, evs,
		n_evs, &opts, &c, &res);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot evaluate: %s", strerror(-r));
		free(evs);
		return r;
	}
	zt_eval_format(&res, &c, line, sizeof(line));
	if (s->cfg->kubernetes.pending_posture == ZT_PENDING_DENY &&
	    ((pend_src && !res.dst_host) || (pend_dst && !res.src_host))) {
		const struct zt_ep *p = pend_src && !res.dst_host ? pend_src : pend_dst;

		res.verdict = ZT_PV_DENY;
		res.require_tls = res.require_mutual_auth = false;
		snprintf(
			line, sizeof(line),
			"deny %s %s -> %s:%u: %s of %s: denied by kubernetes.pending_posture: deny "
			"(its labels are not known yet; only the host may reach it and it the host)",
			zt_pol_proto_name(c.protocol), from, to, c.port,
			p == pend_src ? "egress" : "ingress", p->qname);
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "verdict", zt_pol_verdict_name(res.verdict)) ||
	    zt_cbor_put_str(*data, "explanation", line) ||
	    zt_cbor_put_bool(*data, "require_tls", res.require_tls) ||
	    zt_cbor_put_bool(*data, "require_mutual_auth", res.require_mutual_auth) ||
	    zt_cbor_put_u64(*data, "generation", s->st.gen)) {
		free(evs);
		return -ENOMEM;
	}
	free(evs);
	return 0;
}

static int op_policy_reload(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			    size_t errlen)
{
	struct zt_seg *s = ctx;
	int r = seg_reload(s, "operator");

	if (r < 0) {
		zt_seterr(err, errlen, "%s (the policy in force is unchanged)", s->last_reject);
		return r;
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_u64(*data, "generation", s->st.gen))
		return -ENOMEM;
	return 0;
}

static cbor_item_t *flow_to_cbor(const struct flow_rec *f)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], t[40];
	cbor_item_t *m = zt_cbor_map();
	int fam = f->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(fam, f->saddr, sa, sizeof(sa));
	inet_ntop(fam, f->daddr, da, sizeof(da));
	zt_time_format(f->unix_ms / 1000, t, sizeof(t));
	if (!m || zt_cbor_put_u64(m, "seq", f->seq) || zt_cbor_put_str(m, "time", t) ||
	    zt_cbor_put_u64(m, "time_ms", f->unix_ms) ||
	    zt_cbor_put_str(m, "verdict", seg_verdict_names[f->verdict]) ||
	    zt_cbor_put_str(m, "reason", zt_tc_reason_name(f->reason)) ||
	    zt_cbor_put_str(m, "rule", f->rule) ||
	    zt_cbor_put_str(m, "direction", f->dir == ZT_DIR_INGRESS ? "ingress" : "egress") ||
	    zt_cbor_put_str(m, "protocol", zt_pol_proto_name(f->proto)) ||
	    zt_cbor_put_str(m, "src", sa) || zt_cbor_put_u64(m, "sport", f->sport) ||
	    zt_cbor_put_str(m, "dst", da) || zt_cbor_put_u64(m, "dport", f->dport) ||
	    zt_cbor_put_u64(m, "src_identity", f->src_id) ||
	    zt_cbor_put_u64(m, "dst_identity", f->dst_id) ||
	    zt_cbor_put_str(m, "src_workload", f->src_wl) ||
	    zt_cbor_put_str(m, "dst_workload", f->dst_wl) ||
	    zt_cbor_put_str(m, "interface", f->ifname) ||
	    zt_cbor_put_bool(m, "revoked", f->revoked)) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

/* "flows.recent" {after: seq, verdict: "denied"|"allowed"|"audit"|"", limit} */
static int op_flows_recent(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	uint64_t after = 0, limit = 1000, first, missed = 0, next;
	char want[16];
	int vf = -1, r;
	cbor_item_t *arr;

	if (zt_cbor_get_u64(req, "after", &after) == -EINVAL ||
	    zt_cbor_get_u64(req, "limit", &limit) == -EINVAL) {
		zt_seterr(err, errlen, "after, limit: expected unsigned integers");
		return -EINVAL;
	}
	if ((r = req_str(req, "verdict", want, sizeof(want), false, err, errlen)) < 0)
		return r;
	if (*want) {
		for (int i = 0; i < 3; i++)
			if (!strcmp(want, seg_verdict_names[i]))
				vf = i;
		if (vf < 0) {
			zt_seterr(err, errlen,
				  "--verdict: expected allowed, denied or audit, got '%s'", want);
			return -EINVAL;
		}
	}
	if (!limit || limit > 10000)
		limit = 10000;
	arr = zt_cbor_array();
	if (!arr)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	next = s->next_seq; /* the next record will have this seq */
	first = next > FLOW_RING ? next - FLOW_RING : 1;
	if (after + 1 < first && after)
		missed = first - after - 1;
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t q = first; q < next && limit; q++) {
		const struct flow_rec *f = &s->ring[q % FLOW_RING];
		cbor_item_t *m;

		if (vf >= 0 && f->verdict != vf)
			continue;
		m = flow_to_cbor(f);
		if (!m || zt_cbor_push(arr, m)) {
			pthread_mutex_unlock(&s->lock);
			if (m)
				cbor_decref(&m);
			cbor_decref(&arr);
			return -ENOMEM;
		}
		limit--;
		after = q;
	}
	if (after + 1 < next && !limit)
		next = after + 1;
	pthread_mutex_unlock(&s->lock);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put(*data, "flows", arr)) {
		cbor_decref(&arr);
		return -ENOMEM;
	}
	if (zt_cbor_put_u64(*data, "last", next - 1) || zt_cbor_put_u64(*data, "missed", missed))
		return -ENOMEM;
	return 0;
}

int zt_seg_register_api(struct zt_seg *s, struct zt_api *api)
{
	static const struct {
		const char *op;
		zt_api_handler fn;
	} ops[] = {
		{ ZT_OP_ENDPOINT_ADD, op_endpoint_add },
		{ ZT_OP_ENDPOINT_DEL, op_endpoint_del },
		{ ZT_OP_ENDPOINT_LIST, op_endpoint_list },
		{ ZT_OP_ENDPOINT_CHECK, op_endpoint_check },
		{ ZT_OP_ENDPOINT_META, op_endpoint_meta },
		{ ZT_OP_POLICY_LIST, op_policy_list },
		{ ZT_OP_POLICY_EXPLAIN, op_policy_explain },
		{ ZT_OP_POLICY_RELOAD, op_policy_reload },
		{ ZT_OP_ANNOTATE, op_annotate },
		{ ZT_OP_FLOWS_RECENT, op_flows_recent },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(ops); i++) {
		int r = zt_api_register(api, ops[i].op, ops[i].fn, s);

		if (r < 0)
			return r;
	}
	return 0;
}
