// SPDX-License-Identifier: GPL-2.0-only
/*
 * compliance.facts: what `ztctl compliance report` needs from the daemon and
 * no other operation gives: each endpoint's enforcement checked in the
 * kernel and its isolation by policy, each policy's age, the ingress rules
 * that let every address in, and the configuration values the checks
 * compare against.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cbor.h"
#include "agent/util.h"
#include "compliance/compliance.h"
#include "seg/seg_compliance.h"
#include "seg/seg_int.h"
#include "tc_endpoint.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static const char *mtls_mode_name(enum zt_mtls_mode m)
{
	return m == ZT_MTLS_MODE_OFF ? "off" : m == ZT_MTLS_MODE_STRICT ? "strict" : "policy";
}

/* The same three checks as endpoint.check (the CNI plugin's CHECK). */
static const char *ep_problem(const struct zt_seg *s, const struct zt_ep *ep)
{
	struct zt_endpoint_info info;
	char name[IF_NAMESIZE] = "";
	__u32 key = (__u32)ep->ifindex;

	if (!if_indextoname((unsigned int)ep->ifindex, name) || strcmp(name, ep->ifname))
		return "its interface is gone or was renamed";
	if (zt_datapath_tc_owned(ep->ifindex) <= 0)
		return "tc_endpoint is not attached to its interface";
	if (bpf_map_lookup_elem(bpf_map__fd(s->dp->tc->maps.endpoints), &key, &info) ||
	    info.ep_id != ep->id || info.identity != ep->identity)
		return "its endpoints map entry is missing or stale";
	return "";
}

static bool selects(const struct zt_policy *p, const struct zt_ep *ep)
{
	return !ep->pending && !strcmp(p->namespace, ep->ns) &&
	       zt_selector_matches(&p->pod_selector, &ep->ev.ls.labels);
}

static cbor_item_t *endpoint_facts(const struct zt_seg *s, const struct zt_policy_set *set,
				   const struct zt_ep *ep)
{
	bool def = s->cfg->policy.default_deny;
	bool pend = ep->pending && s->cfg->kubernetes.pending_posture == ZT_PENDING_DENY;
	bool iso[ZT_POL_DIR_MAX] = { def || pend, def || pend }, audit_iso = false;
	const char *problem = ep_problem(s, ep);
	cbor_item_t *m = zt_cbor_map();

	for (size_t i = 0; set && i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		if (!selects(p, ep))
			continue;
		for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
			if (!p->isolates[d])
				continue;
			if (p->mode == ZT_POL_AUDIT)
				audit_iso |= d == ZT_POL_INGRESS;
			else
				iso[d] = true;
		}
	}
	if (!m || zt_cbor_put_str(m, "endpoint", ep->qname) ||
	    zt_cbor_put_str(m, "namespace", ep->ns) || zt_cbor_put_str(m, "ifname", ep->ifname) ||
	    zt_cbor_put_bool(m, "pending", ep->pending) ||
	    zt_cbor_put_bool(m, "enforced", !*problem) || zt_cbor_put_str(m, "problem", problem) ||
	    zt_cbor_put_bool(m, "isolated_ingress", iso[ZT_POL_INGRESS]) ||
	    zt_cbor_put_bool(m, "isolated_egress", iso[ZT_POL_EGRESS]) ||
	    zt_cbor_put_bool(m, "audit_only", !iso[ZT_POL_INGRESS] && audit_iso)) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

static cbor_item_t *policy_facts(const struct zt_seg *s, const struct zt_policy *p)
{
	cbor_item_t *m = zt_cbor_map();
	struct stat st;
	uint64_t since = 0, n = 0;
	/* policy.dir's files have absolute paths; feeds' advisories ("feed:NAME/FILE") and other origins do not. */
	bool dir = p->file[0] == '/';

	if (dir && stat(p->file, &st) == 0)
		since = (uint64_t)st.st_mtime;
	for (size_t i = 0; i < s->eps.n; i++)
		n += selects(p, s->eps.v[i]);
	if (!m || zt_cbor_put_str(m, "kind", zt_pol_kind_name(p->kind)) ||
	    zt_cbor_put_str(m, "namespace", p->namespace) || zt_cbor_put_str(m, "name", p->name) ||
	    zt_cbor_put_str(m, "mode", p->mode == ZT_POL_AUDIT ? "audit" : "enforce") ||
	    zt_cbor_put_str(m, "origin", dir ? "policy.dir" : p->file) ||
	    zt_cbor_put_u64(m, "since_unix", since) || zt_cbor_put_u64(m, "endpoints", n)) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

static int world_facts(const struct zt_policy *p, cbor_item_t *arr)
{
	for (size_t i = 0; i < p->n_rules[ZT_POL_INGRESS]; i++) {
		const struct zt_pol_rule *rule = &p->rules[ZT_POL_INGRESS][i];
		char why[ZT_CMP_TEXT_MAX], ports[ZT_CMP_TEXT_MAX], pol[700], rn[64];
		bool all = false;
		cbor_item_t *m;

		if (!zt_cmp_rule_world_open(p, rule, why, sizeof(why), ports, sizeof(ports), &all))
			continue;
		snprintf(pol, sizeof(pol), "%s %s/%s", zt_pol_kind_name(p->kind), p->namespace,
			 p->name);
		snprintf(rn, sizeof(rn), "spec.ingress[%u]", rule->index);
		m = zt_cbor_map();
		if (!m || zt_cbor_put_str(m, "policy", pol) || zt_cbor_put_str(m, "rule", rn) ||
		    zt_cbor_put_str(m, "why", why) || zt_cbor_put_str(m, "ports", ports) ||
		    zt_cbor_put_bool(m, "all_ports", all) ||
		    zt_cbor_put_bool(m, "audit", p->mode == ZT_POL_AUDIT) || zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			return -ENOMEM;
		}
	}
	return 0;
}

static int op_compliance_facts(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			       size_t errlen)
{
	struct zt_seg *s = ctx;
	const struct zt_config *cfg = s->cfg;
	const struct zt_policy_set *set = s->cur ? s->cur->set : NULL;
	cbor_item_t *m = zt_cbor_map(), *eps = zt_cbor_array(), *pols = zt_cbor_array(),
		    *world = zt_cbor_array();
	int r = -ENOMEM;

	if (!m || !eps || !pols || !world)
		goto out;
	for (size_t i = 0; i < s->eps.n; i++) {
		cbor_item_t *e = endpoint_facts(s, set, s->eps.v[i]);

		if (!e || zt_cbor_push(eps, e)) {
			if (e)
				cbor_decref(&e);
			goto out;
		}
	}
	for (size_t i = 0; set && i < set->n; i++) {
		cbor_item_t *p = policy_facts(s, &set->policies[i]);

		if (!p || zt_cbor_push(pols, p)) {
			if (p)
				cbor_decref(&p);
			goto out;
		}
		if (world_facts(&set->policies[i], world) < 0)
			goto out;
	}
	if (zt_cbor_put_str(m, "node", cfg->node) ||
	    zt_cbor_put_str(m, "policy_default", cfg->policy.default_deny ? "deny" : "allow") ||
	    zt_cbor_put_str(m, "pending_posture",
			    zt_pending_posture_name(cfg->kubernetes.pending_posture)) ||
	    zt_cbor_put_u64(m, "retention_months", cfg->database.retention_months) ||
	    zt_cbor_put_str(m, "mtls_mode", mtls_mode_name(cfg->mtls.mode)) ||
	    zt_cbor_put_str(m, "metrics_listen", cfg->metrics.listen) ||
	    zt_cbor_put_bool(m, "database", cfg->database.url[0] != '\0'))
		goto out;
	if ((r = zt_cbor_put(m, "endpoints", eps)) < 0)
		goto out;
	eps = NULL;
	if ((r = zt_cbor_put(m, "policies", pols)) < 0)
		goto out;
	pols = NULL;
	if ((r = zt_cbor_put(m, "world_ingress", world)) < 0)
		goto out;
	world = NULL;
out:
	for (cbor_item_t **it = (cbor_item_t *[]){ eps, pols, world }, **end = it + 3; it < end;
	     it++)
		if (*it)
			cbor_decref(it);
	if (r < 0) {
		if (m)
			cbor_decref(&m);
		zt_seterr(err, errlen, "out of memory building the compliance facts");
		return r;
	}
	*data = m;
	return 0;
}

int zt_seg_register_compliance_api(struct zt_seg *s, struct zt_api *api)
{
	return zt_api_register(api, ZT_OP_COMPLIANCE_FACTS, op_compliance_facts, s);
}
