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
