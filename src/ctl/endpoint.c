// SPDX-License-Identifier: GPL-2.0-only
/* ztctl endpoint: the workloads under enforcement. */
#include "ctl/ctl.h"

static void labels_text(const cbor_item_t *m, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	if (!m || !cbor_isa_map(m))
		return;
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		struct cbor_pair p = cbor_map_handle(m)[i];
		char k[320], v[80];

		if (zt_cbor_str(p.key, k, sizeof(k)) < 0 || zt_cbor_str(p.value, v, sizeof(v)) < 0)
			continue;
		o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%s=%s", i ? "," : "", k, v);
	}
	if (o >= n && n > 4)
		memcpy(buf + n - 4, "...", 4);
}

static int run_endpoint_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char ns[256], nm[256], name[520], ip[1024], lbl[4096];
	int r;

	if (!o->ifname)
		return usage_err(o->cmd, "--ifname is required");
	if (!o->ip)
		return usage_err(o->cmd, "--ip is required");
	req = request(ZT_OP_ENDPOINT_ADD);
	put_str(req, "ifname", o->ifname);
	put_str(req, "ip", o->ip);
	if (o->labels)
		put_str(req, "labels", o->labels);
	if (o->ns)
		put_str(req, "namespace", o->ns);
	if (o->name)
		put_str(req, "name", o->name);
	if (o->ns_labels)
		put_str(req, "namespace_labels", o->ns_labels);
	if (o->ports)
		put_str(req, "ports", o->ports);
	if (o->annotation) {
		r = ctl_annotate_new_endpoint(ctl, o->cmd, o->ns, o->name ? o->name : o->ifname,
					      o->annotation, false);
		if (r) {
			cbor_decref(&req);
			return r;
		}
	}
	if (o->service_account)
		put_str(req, "service_account", o->service_account);
	r = call(ctl, req, &reply, &d);
	if (r && o->annotation)
		ctl_annotate_new_endpoint(ctl, o->cmd, o->ns, o->name ? o->name : o->ifname,
					  o->annotation, true);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		snprintf(name, sizeof(name), "%s/%s", str_of(d, "namespace", ns, sizeof(ns), "?"),
			 str_of(d, "name", nm, sizeof(nm), "?"));
		labels_text(zt_cbor_get(d, "labels"), lbl, sizeof(lbl));
		printf("endpoint %s on %s (ip %s, identity %llu, labels %s): enforced\n", name,
		       o->ifname, str_of(d, "ip", ip, sizeof(ip), "?"),
		       (unsigned long long)u64_of(d, "identity"), lbl[0] ? lbl : "none");
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_endpoint_del(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char a[300], b[64];
	const char *which = o->nargs ? o->args[0] : o->ifname;
	int r;

	if (!which)
		return usage_err(o->cmd,
				 "say which endpoint: NAMESPACE/NAME, NAME or --ifname VETH");
	if (o->nargs && o->ifname)
		return usage_err(o->cmd, "give the endpoint or --ifname, not both");
	req = request(ZT_OP_ENDPOINT_DEL);
	put_str(req, "endpoint", which);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("endpoint %s removed; %s carries no ztagent program any more\n",
		       str_of(d, "endpoint", a, sizeof(a), which),
		       str_of(d, "ifname", b, sizeof(b), "?"));
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_endpoint_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "ENDPOINT", "INTERFACE", "IP",    "IDENTITY",
					     "ORIGIN",	 "POD UID",   "LABELS" };
	static const bool right[7] = { false, false, false, true, false, false, false };
	struct table t = { .ncols = 7, .heads = heads, .right = right };
	const cbor_item_t *d, *eps;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_ENDPOINT_LIST), &reply, &d);

	if (r)
		return r;
	eps = zt_cbor_get(d, "endpoints");
	if (ctl->json) {
		print_json(d);
	} else if (!arr_len(eps)) {
		printf("no endpoints (add one with 'ztctl endpoint add')\n");
	} else {
		for (size_t i = 0; i < arr_len(eps); i++) {
			const cbor_item_t *e = arr_at(eps, i);
			char ns[80], name[260], q[340], ifn[32], ip[1024], id[24], lbl[4096],
				origin[16], uid[140];

			snprintf(q, sizeof(q), "%s/%s", str_of(e, "namespace", ns, sizeof(ns), "?"),
				 str_of(e, "name", name, sizeof(name), "?"));
			if (bool_of(e, "pending"))
				snprintf(id, sizeof(id), "pending");
			else
				snprintf(id, sizeof(id), "%llu",
					 (unsigned long long)u64_of(e, "identity"));
			labels_text(zt_cbor_get(e, "labels"), lbl, sizeof(lbl));
			str_of(e, "pod_uid", uid, sizeof(uid), "");
			table_add(&t, q, str_of(e, "ifname", ifn, sizeof(ifn), "?"),
				  str_of(e, "ip", ip, sizeof(ip), "?"), id,
				  str_of(e, "origin", origin, sizeof(origin), "api"),
				  uid[0] ? uid : "-", lbl[0] ? lbl : "-");
		}
		table_print(&t);
		table_free(&t);
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_endpoint_meta(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char ns[256], nm[256], lbl[4096];
	int r;

	if (!o->labels)
		return usage_err(o->cmd, "--labels is required (\"\" for none)");
	req = request(ZT_OP_ENDPOINT_META);
	put_str(req, "endpoint", o->args[0]);
	put_str(req, "labels", o->labels);
	if (o->ns_labels)
		put_str(req, "namespace_labels", o->ns_labels);
	if (o->ports)
		put_str(req, "ports", o->ports);
	if (o->service_account)
		put_str(req, "service_account", o->service_account);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		labels_text(zt_cbor_get(d, "labels"), lbl, sizeof(lbl));
		printf("endpoint %s/%s: identity %llu, labels %s\n",
		       str_of(d, "namespace", ns, sizeof(ns), "?"),
		       str_of(d, "name", nm, sizeof(nm), "?"),
		       (unsigned long long)u64_of(d, "identity"), lbl[0] ? lbl : "none");
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

/* ---- policy ---- */

const struct cmd ctl_endpoint_cmds[] = {
	{ "endpoint add",
	  "ztctl endpoint add --ifname VETH --ip ADDR[,ADDR] --labels k=v,... --namespace NS",
	  "Registers a workload: VETH is the host side of its veth pair. The TC program\n"
	  "is attached to it in both directions after the policy that knows the new\n"
	  "endpoint is in the kernel, so it is enforced from its first packet.\n"
	  "Endpoints survive a daemon restart; one whose interface disappears is removed.\n"
	  "\n"
	  "Options:\n"
	  "  --ifname VETH              host-side interface (required)\n"
	  "  --ip ADDR[,ADDR]           the workload's addresses, IPv4 and/or IPv6 (required)\n"
	  "  --labels k=v,...           pod labels\n"
	  "  --namespace NS             namespace (default \"default\")\n"
	  "  --name NAME                endpoint name (default: the interface name)\n"
	  "  --namespace-labels k=v,... labels of the namespace, for namespaceSelector\n"
	  "                             (kubernetes.io/metadata.name=NS is always there)\n"
	  "  --ports name=N/PROTO,...   named container ports, for policies that name ports\n"
	  "  --annotation KEY=VALUE     a ztagent.io/ annotation (ztagent.io/talks-to=...),\n"
	  "                             see 'ztctl endpoint annotate --help'\n"
	  "  --service-account SA       the pod's service account (default \"default\"): its\n"
	  "                             workload mTLS identity spiffe://TD/ns/NS/sa/SA\n"
	  "\n"
	  "Example:\n"
	  "  ztctl endpoint add --ifname veth-web --ip 198.18.1.2 --labels app=web --namespace prod\n",
	  OPT_EP, 0, 0, NULL, run_endpoint_add },
	{ "endpoint del", "ztctl endpoint del NAMESPACE/NAME | NAME | --ifname VETH",
	  "Removes an endpoint: its TC programs are detached and the policy recompiled.\n", OPT_EP,
	  0, 1, "ENDPOINT", run_endpoint_del },
	{ "endpoint list", "ztctl endpoint list [-o json]",
	  "Shows every endpoint: name, interface, addresses, security identity (\"pending\"\n"
	  "while a pod's labels are not known yet), origin (api: 'ztctl endpoint add';\n"
	  "cni: the CNI plugin ztagent-cni), pod UID, labels. -o json adds the container\n"
	  "id, the pod-side interface, the service account and the namespace labels.\n",
	  0, 0, 0, NULL, run_endpoint_list },
	{ "endpoint meta",
	  "ztctl endpoint meta ENDPOINT --labels k=v,... [--namespace-labels k=v,...] [--ports ...]",
	  "Sets an endpoint's labels (and namespace labels, named ports), as the Kubernetes\n"
	  "watch does for pods: a pending endpoint (registered by the CNI plugin before\n"
	  "its pod's labels were known) gets its label identity and leaves the pending\n"
	  "posture. The policy that knows the new identity is in the kernel before the\n"
	  "endpoint uses it. With kubernetes.enabled, the watch sets them again on the\n"
	  "pod's next change.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl endpoint meta prod/web-7d4b9 --labels app=web,tier=front\n",
	  OPT_EP, 1, 1, "ENDPOINT", run_endpoint_meta },
};
const size_t ctl_endpoint_ncmds = ZT_ARRAY_SIZE(ctl_endpoint_cmds);
