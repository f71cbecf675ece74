// SPDX-License-Identifier: GPL-2.0-only
/* The segmentation API: endpoint add/del/list, policy list/explain/reload, recent flows. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/log.h"
#include "agent/util.h"
#include "records/auditq.h"
#include "seg/policy_eval.h"
#include "seg/seg_int.h"

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

static cbor_item_t *labels_map(const struct zt_label *v, size_t n)
{
	cbor_item_t *m = zt_cbor_map();

	for (size_t i = 0; m && i < n; i++)
		if (zt_cbor_put_str(m, v[i].key, v[i].value)) {
			cbor_decref(&m);
			return NULL;
		}
	return m;
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
	    zt_cbor_put_u64(m, "created_unix", ep->created_unix))
		goto fail;
	l = labels_map(ep->labels, ep->n_labels);
	if (!l || zt_cbor_put(m, "labels", l))
		goto fail;
	l = labels_map(ep->ns_labels, ep->n_ns_labels);
	if (!l || zt_cbor_put(m, "namespace_labels", l))
		goto fail;
	return m;
fail:
	if (m)
		cbor_decref(&m);
	return NULL;
}

static int op_endpoint_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char ifname[64], name[ZT_EP_NAME_MAX + 2], ns[80], ip[2048], labels[8192], nsl[8192],
		ports[4096], q[9000];
	struct zt_ep *ep;
	int r;

	if ((r = req_str(req, "ifname", ifname, sizeof(ifname), true, err, errlen)) < 0 ||
	    (r = req_str(req, "ip", ip, sizeof(ip), true, err, errlen)) < 0 ||
	    (r = req_str(req, "name", name, sizeof(name), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace", ns, sizeof(ns), false, err, errlen)) < 0 ||
	    (r = req_str(req, "labels", labels, sizeof(labels), false, err, errlen)) < 0 ||
	    (r = req_str(req, "namespace_labels", nsl, sizeof(nsl), false, err, errlen)) < 0 ||
	    (r = req_str(req, "ports", ports, sizeof(ports), false, err, errlen)) < 0)
		return r;
	{
		struct zt_ep_spec spec = { .ifname = ifname,
					   .name = name,
					   .ns = ns,
					   .addrs = ip,
					   .labels = labels,
					   .ns_labels = nsl,
					   .ports = ports };

		r = zt_ep_from_spec(&spec, &ep, err, errlen);
	}
	if (r < 0)
		return r;
	r = seg_endpoint_add(s, ep, err, errlen);
	if (r < 0) {
		log_warn("endpoint_refused", "ifname=%s error=%s", ifname,
			 zt_log_quote(q, sizeof(q), err));
		zt_ep_free(ep);
		return r;
	}
	zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels));
	zt_ep_addrs_format(ep, ip, sizeof(ip));
	log_info("endpoint_added",
		 "endpoint=%s id=%u ifname=%s ifindex=%d ip=%s identity=%u labels=%s", ep->qname,
		 ep->id, ep->ifname, ep->ifindex, ip, ep->identity,
		 zt_log_quote(q, sizeof(q), labels));
	{
		char el[2100], ei[100], d[4400];

		zt_json_escape(labels, el, sizeof(el));
		zt_json_escape(ep->ifname, ei, sizeof(ei));
		snprintf(d, sizeof(d),
			 "{\"ifname\":\"%s\",\"ip\":\"%.2000s\",\"identity\":%u,\"labels\":\"%s\"}",
			 ei, ip, ep->identity, el);
		seg_audit(s, "endpoint.add", ep->qname, d);
	}
	*data = ep_to_cbor(ep);
	return *data ? 0 : -ENOMEM;
}

static int op_endpoint_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_seg *s = ctx;
	char which[ZT_EP_NAME_MAX + 80];
	struct zt_ep *ep;
	bool amb;
	int r;

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
	return 0;
}

static size_t selected_count(const struct zt_seg *s, const struct zt_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < s->eps.n; i++)
		if (!strcmp(p->namespace, s->eps.v[i]->ns) &&
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
				    strncmp(p->file, "feed:", 5) ? "policy.dir" : p->file) ||
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
	    zt_cbor_put_str(*data, "last_error", s->last_reject))
		return -ENOMEM;
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
	for (size_t i = 0; i < s->eps.n; i++)
		evs[i] = s->eps.v[i]->ev;
	r = zt_eval_parse_peer(from, evs, s->eps.n, &c.src);
	if (r == 0)
		r = zt_eval_parse_peer(to, evs, s->eps.n, &c.dst);
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
		s->eps.n, &opts, &c, &res);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot evaluate: %s", strerror(-r));
		free(evs);
		return r;
	}
	zt_eval_format(&res, &c, line, sizeof(line));
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
		{ ZT_OP_POLICY_LIST, op_policy_list },
		{ ZT_OP_POLICY_EXPLAIN, op_policy_explain },
		{ ZT_OP_POLICY_RELOAD, op_policy_reload },
		{ ZT_OP_FLOWS_RECENT, op_flows_recent },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(ops); i++) {
		int r = zt_api_register(api, ops[i].op, ops[i].fn, s);

		if (r < 0)
			return r;
	}
	return 0;
}
