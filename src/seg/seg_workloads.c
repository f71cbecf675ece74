// SPDX-License-Identifier: GPL-2.0-only
/* The local workloads' addresses and service accounts, for the mTLS tunnel's identity checks. */
#include <stdio.h>
#include <string.h>

#include "seg/seg_int.h"

size_t zt_seg_workloads(struct zt_seg *s, struct zt_seg_workload *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];

		for (size_t j = 0; j < ep->n_addrs; j++, n++) {
			struct zt_seg_workload *w;

			if (n >= max)
				continue;
			w = &out[n];
			w->family = ep->addrs[j].family;
			memcpy(w->addr, ep->addrs[j].addr, sizeof(w->addr));
			w->ep_id = ep->id;
			snprintf(w->ns, sizeof(w->ns), "%s", ep->ns);
			snprintf(w->sa, sizeof(w->sa), "%s",
				 ep->service_account && ep->service_account[0] ?
					 ep->service_account :
					 "default");
		}
	}
	return n;
}

static size_t sa_rows(const struct zt_ep *ep, const struct zt_pol_rule *r, int dir,
		      struct zt_seg_sa_rule *out, size_t n, size_t max)
{
	size_t np = r->n_ports ? r->n_ports : 1;

	for (size_t q = 0; q < r->n_peers; q++) {
		const struct zt_pol_peer *pe = &r->peers[q];

		if (pe->type != ZT_PEER_SERVICE_ACCOUNTS)
			continue;
		for (size_t k = 0; k < pe->n_service_accounts; k++)
			for (size_t j = 0; j < np; j++, n++) {
				const struct zt_pol_port *pp = r->n_ports ? &r->ports[j] : NULL;
				struct zt_seg_sa_rule *o;

				if (n >= max)
					continue;
				o = &out[n];
				o->ep_id = ep->id;
				o->dir = (uint8_t)dir;
				o->proto = pp ? pp->protocol : 0;
				/* A named port: every port of the protocol (a wider check, never narrower). */
				o->lo = pp && !pp->name && pp->port ? pp->port : 0;
				o->hi = pp && !pp->name && pp->port ? pp->end_port : 65535;
				snprintf(o->sa, sizeof(o->sa), "%s", pe->service_accounts[k]);
			}
	}
	return n;
}

size_t zt_seg_sa_rules(struct zt_seg *s, struct zt_seg_sa_rule *out, size_t max)
{
	const struct zt_policy_set *set = s->cur ? s->cur->set : NULL;
	size_t n = 0;

	for (size_t i = 0; set && i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];

		if (ep->pending)
			continue;
		for (size_t k = 0; k < set->n; k++) {
			const struct zt_policy *p = &set->policies[k];

			if (strcmp(p->namespace, ep->ev.ls.namespace) != 0 ||
			    !zt_selector_matches(&p->pod_selector, &ep->ev.ls.labels))
				continue;
			for (int d = 0; d < ZT_POL_DIR_MAX; d++)
				for (size_t j = 0; j < p->n_rules[d]; j++) {
					const struct zt_pol_rule *r = &p->rules[d][j];

					if (r->action == ZT_RULE_ALLOW &&
					    zt_pol_rule_effective(p, r))
						n = sa_rows(ep, r, d, out, n, max);
				}
		}
	}
	return n;
}
