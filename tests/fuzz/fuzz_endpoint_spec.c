// SPDX-License-Identifier: GPL-2.0-only
/*
 * What `ztctl endpoint add` (and the CNI hook) send through the API:
 * zt_ep_from_spec over the fields ifname, name, namespace, addresses, labels,
 * namespace labels and ports (one per input line). An accepted endpoint,
 * formatted back as the state file and the API do, is accepted again as the
 * same endpoint.
 */
#include "fuzz.h"
#include "seg/endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), *f[7] = { NULL }, *p = s, err[512];
	char addrs[2048], labels[8192], nsl[8192], ports[4096];
	struct zt_ep *ep, *again;
	struct zt_ep_spec spec, spec2;

	for (int i = 0; i < 7 && p; i++) {
		char *nl = strchr(p, '\n');

		f[i] = p;
		if (nl)
			*nl = '\0';
		p = nl ? nl + 1 : NULL;
	}
	spec = (struct zt_ep_spec){ .ifname = f[0],
				    .name = f[1],
				    .ns = f[2],
				    .addrs = f[3],
				    .labels = f[4],
				    .ns_labels = f[5],
				    .ports = f[6] };
	if (zt_ep_from_spec(&spec, &ep, err, sizeof(err)) < 0) {
		FUZZ_CHECK(err[0], "refused without a message");
		free(s);
		return 0;
	}
	FUZZ_CHECK(ep->n_addrs >= 1 && ep->n_addrs <= ZT_EP_MAX_ADDRS, "%zu addresses",
		   ep->n_addrs);
	FUZZ_CHECK(ep->n_ports <= ZT_EP_MAX_PORTS && ep->n_labels <= ZT_EP_MAX_LABELS,
		   "too many ports or labels");
	FUZZ_CHECK(zt_ep_addrs_format(ep, addrs, sizeof(addrs)) == 0, "addresses do not fit");
	FUZZ_CHECK(zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels)) == 0,
		   "labels do not fit");
	FUZZ_CHECK(zt_labels_format(ep->ns_labels, ep->n_ns_labels, nsl, sizeof(nsl)) == 0,
		   "namespace labels do not fit");
	{
		size_t o = 0;

		ports[0] = '\0';
		for (size_t i = 0; i < ep->n_ports; i++)
			o += (size_t)snprintf(ports + o, sizeof(ports) - o, "%s%s=%u/%s",
					      i ? "," : "", ep->ports[i].name, ep->ports[i].port,
					      ep->ports[i].protocol == 6  ? "TCP" :
					      ep->ports[i].protocol == 17 ? "UDP" :
									    "SCTP");
	}
	spec2 = (struct zt_ep_spec){ .ifname = ep->ifname,
				     .name = ep->name,
				     .ns = ep->ns,
				     .addrs = addrs,
				     .labels = labels,
				     .ns_labels = nsl,
				     .ports = ports };
	FUZZ_CHECK(zt_ep_from_spec(&spec2, &again, err, sizeof(err)) == 0,
		   "%s does not read back: %s", ep->qname, err);
	FUZZ_CHECK(!strcmp(again->qname, ep->qname) && again->n_addrs == ep->n_addrs &&
			   again->n_labels == ep->n_labels && again->n_ports == ep->n_ports,
		   "%s reads back as another endpoint", ep->qname);
	zt_ep_free(again);
	zt_ep_free(ep);
	free(s);
	return 0;
}
