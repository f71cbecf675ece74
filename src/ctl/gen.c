// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztctl: policies without hands. `namespace annotate` and `endpoint
 * annotate` set the ztagent.io/ annotations the agent generates policies
 * from (seg/polgen.h); `policy suggest` writes the policies the recorded
 * flows call for (seg/polsuggest.h).
 */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <time.h>

#include "ctl/ctl.h"
#include "seg/policy_eval.h"
#include "seg/polgen.h"
#include "seg/polsuggest.h"

/* "KEY=VALUE" sets, "KEY-" removes. */
static int annotate(struct ctl *ctl, const struct cmd *c, const char *ns, const char *endpoint,
		    const char *kv, bool quiet)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	const char *eq = strchr(kv, '=');
	char key[400], problems[2100], ep[300];
	size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
	bool remove = !eq && kl && kv[kl - 1] == '-';
	int r;

	if (remove)
		kl--;
	if ((!eq && !remove) || !kl || kl >= sizeof(key))
		return usage_err(c, "'%s': expected KEY=VALUE to set or KEY- to remove", kv);
	memcpy(key, kv, kl);
	key[kl] = '\0';
	req = request(ZT_OP_ANNOTATE);
	if (ns)
		put_str(req, "namespace", ns);
	if (endpoint)
		put_str(req, "endpoint", endpoint);
	put_str(req, "key", key);
	if (eq)
		put_str(req, "value", eq + 1);
	if (remove && zt_cbor_put_bool(req, "remove", true))
		die_nomem();
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (quiet) {
		/* part of another command's output */
	} else if (ctl->json) {
		print_json(d);
	} else {
		str_of(d, "endpoint", ep, sizeof(ep), "");
		printf("%s %s%s%s: %s %s; %llu generated %s in force (generation %llu)\n",
		       ep[0] ? "endpoint" : "namespace",
		       str_of(d, "namespace", key, sizeof(key), "?"), ep[0] ? "/" : "", ep,
		       remove ? "removed" : "set", kv,
		       (unsigned long long)u64_of(d, "generated_policies"),
		       u64_of(d, "generated_policies") == 1 ? "policy" : "policies",
		       (unsigned long long)u64_of(d, "generation"));
	}
	str_of(d, "problems", problems, sizeof(problems), "");
	if (problems[0] && !ctl->json)
		fprintf(stderr, "ztctl: generated policies left out (fix the annotations):\n%s\n",
			problems);
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_namespace_annotate(struct ctl *ctl, struct opts *o)
{
	for (int i = 1; i < o->nargs; i++) {
		int r = annotate(ctl, o->cmd, o->args[0], NULL, o->args[i], false);

		if (r)
			return r;
	}
	return EXIT_OK;
}

static int run_endpoint_annotate(struct ctl *ctl, struct opts *o)
{
	for (int i = 1; i < o->nargs; i++) {
		int r = annotate(ctl, o->cmd, o->ns, o->args[0], o->args[i], false);

		if (r)
			return r;
	}
	return EXIT_OK;
}

/* For `endpoint add --annotation`: set before the endpoint exists, so its first policy has it. */
int ctl_annotate_new_endpoint(struct ctl *ctl, const struct cmd *c, const char *ns,
			      const char *name, const char *kv, bool undo)
{
	char rm[420];

	if (undo) {
		const char *eq = strchr(kv, '=');

		snprintf(rm, sizeof(rm), "%.*s-", eq ? (int)(eq - kv) : 0, kv);
		return annotate(ctl, c, ns ? ns : "default", name, rm, true);
	}
	return annotate(ctl, c, ns ? ns : "default", name, kv, true);
}

/* ---- policy suggest ---- */

struct known_ep {
	char *ns, *qname;
	struct zt_label *labels;
	size_t n_labels;
	struct zt_ep_addr addrs[16];
	size_t n_addrs;
};

struct known {
	struct known_ep *v;
	size_t n;
};

static void known_free(struct known *k)
{
	for (size_t i = 0; i < k->n; i++) {
		for (size_t j = 0; j < k->v[i].n_labels; j++) {
			free((char *)k->v[i].labels[j].key);
			free((char *)k->v[i].labels[j].value);
		}
		free(k->v[i].labels);
		free(k->v[i].ns);
		free(k->v[i].qname);
	}
	free(k->v);
}

/* The endpoints the agent knows, with their labels: how flow rows get their selectors. */
static int known_load(struct ctl *ctl, struct known *k)
{
	const cbor_item_t *d, *arr, *rem;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_ENDPOINT_LIST), &reply, &d);

	if (r)
		return r;
	/*
	 * This node's endpoints, then the pods of other nodes the agent knows
	 * from the Kubernetes watch (the ipcache's): a flow to a pod elsewhere
	 * gets a label selector too.
	 */
	arr = zt_cbor_get(d, "endpoints");
	rem = zt_cbor_get(d, "remote");
	k->v = calloc(arr_len(arr) + arr_len(rem) + 1, sizeof(*k->v));
	if (!k->v)
		die_nomem();
	for (size_t i = 0; i < arr_len(arr) + arr_len(rem); i++) {
		const cbor_item_t *e = i < arr_len(arr) ? arr_at(arr, i) :
							  arr_at(rem, i - arr_len(arr)),
				  *l = zt_cbor_get(e, "labels");
		struct known_ep *x = &k->v[k->n];
		char ns[80], name[300], q[400], ip[2048], *save = NULL, *tok;

		if (bool_of(e, "pending"))
			continue;
		str_of(e, "namespace", ns, sizeof(ns), "");
		str_of(e, "name", name, sizeof(name), "");
		snprintf(q, sizeof(q), "%s/%s", ns, name);
		x->ns = strdup(ns);
		x->qname = strdup(q);
		if (!x->ns || !x->qname)
			die_nomem();
		if (l && cbor_isa_map(l)) {
			x->labels = calloc(cbor_map_size(l) + 1, sizeof(*x->labels));
			if (!x->labels)
				die_nomem();
			for (size_t j = 0; j < cbor_map_size(l); j++) {
				struct cbor_pair p = cbor_map_handle(l)[j];
				char kk[320], vv[80];

				if (zt_cbor_str(p.key, kk, sizeof(kk)) < 0 ||
				    zt_cbor_str(p.value, vv, sizeof(vv)) < 0)
					continue;
				x->labels[x->n_labels].key = strdup(kk);
				x->labels[x->n_labels].value = strdup(vv);
				if (!x->labels[x->n_labels].key || !x->labels[x->n_labels].value)
					die_nomem();
				x->n_labels++;
			}
		}
		str_of(e, "ip", ip, sizeof(ip), "");
		for (tok = strtok_r(ip, ",", &save); tok && x->n_addrs < 16;
		     tok = strtok_r(NULL, ",", &save)) {
			struct zt_ep_addr *a = &x->addrs[x->n_addrs];

			if (inet_pton(AF_INET, tok, a->addr) == 1)
				a->family = AF_INET;
			else if (inet_pton(AF_INET6, tok, a->addr) == 1)
				a->family = AF_INET6;
			else
				continue;
			x->n_addrs++;
		}
		k->n++;
	}
	cbor_decref(&reply);
	return 0;
}

static const struct known_ep *known_find(const struct known *k, const char *wl, const char *ip)
{
	struct zt_ep_addr a = { 0 };

	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->v[i].qname, wl))
			return &k->v[i];
	if (inet_pton(AF_INET, ip, a.addr) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a.addr) == 1)
		a.family = AF_INET6;
	else
		return NULL;
	for (size_t i = 0; i < k->n; i++)
		for (size_t j = 0; j < k->v[i].n_addrs; j++)
			if (k->v[i].addrs[j].family == a.family &&
			    !memcmp(k->v[i].addrs[j].addr, a.addr, a.family == AF_INET ? 4 : 16))
				return &k->v[i];
	return NULL;
}

/*
 * One end of a flow row: an endpoint we know (labels), an outside address
 * (world or an ipBlock's CIDR identity: an ipBlock of that address), or
 * something we cannot name with labels (another node's pod: identity:N).
 */
static void resolve(const struct known *k, const char *wl, const char *ip, bool v6,
		    struct zt_sg_end *e, char *cidr, size_t ncidr, char *name, size_t nname)
{
	const struct known_ep *x = known_find(k, wl, ip);

	memset(e, 0, sizeof(*e));
	if (x) {
		e->ns = x->ns;
		e->labels = x->labels;
		e->n_labels = x->n_labels;
		e->name = x->qname;
		return;
	}
	if (!*wl || !strcmp(wl, "world") || !strncmp(wl, "cidr:", 5)) {
		snprintf(cidr, ncidr, "%s/%d", ip, v6 ? 128 : 32);
		snprintf(name, nname, "world %s", ip);
		e->cidr = cidr;
		e->name = name;
		return;
	}
	snprintf(name, nname, "%s (%s)", wl, ip);
	e->name = name;
}

static const char *conninfo_of(struct ctl *ctl, struct opts *o, char *url, size_t n, int *rc)
{
	const char *ci = o->db;

	*rc = 0;
	if (!ci)
		ci = getenv("ZTAGENT_DB");
	if (ci && *ci)
		return ci;
	{
		const cbor_item_t *d;
		cbor_item_t *reply;

		*rc = call(ctl, request(ZT_OP_STATUS), &reply, &d);
		if (*rc)
			return NULL;
		str_of(zt_cbor_get(d, "database"), "url", url, n, "");
		cbor_decref(&reply);
	}
	if (!url[0]) {
		fprintf(stderr,
			"ztctl: the agent has no database (database.url is empty); give --db CONNINFO\n");
		*rc = EXIT_USAGE;
		return NULL;
	}
	return url;
}

static int run_policy_suggest(struct ctl *ctl, struct opts *o)
{
	static const char sql[] =
		"SELECT coalesce(source_workload, ''), coalesce(dest_workload, ''), "
		"host(source_ip), host(dest_ip), family(source_ip), protocol::int, dest_port, "
		"coalesce(verdict, ''), sum(aggregate_count)::bigint "
		"FROM network_flows WHERE flow_kind = 'flow' "
		"AND start_time >= now() - make_interval(secs => $1::double precision) "
		"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8";
	struct known k = { 0 };
	struct zt_sg_flow *flows = NULL;
	struct zt_sg_opts so = { 0 };
	char url[4096] = "", secs[32], header[512], since[32], (*bufs)[4][300] = NULL;
	const char *ci, *params[1];
	uint64_t denied = 0, host = 0;
	size_t nf = 0, npol = 0;
	PGconn *c = NULL;
	PGresult *res = NULL;
	char *yaml = NULL;
	int rc, rows;

	if (o->mode && strcmp(o->mode, "audit") && strcmp(o->mode, "enforce"))
		return usage_err(o->cmd, "--mode: '%s' is not enforce or audit", o->mode);
	ci = conninfo_of(ctl, o, url, sizeof(url), &rc);
	if (!ci)
		return rc;
	rc = known_load(ctl, &k);
	if (rc) {
		fprintf(stderr,
			"ztctl: policy suggest needs the agent for the endpoints' labels\n");
		return rc;
	}
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "ztctl: database: %s", PQerrorMessage(c));
		rc = EXIT_FAIL;
		goto out;
	}
	snprintf(secs, sizeof(secs), "%llu",
		 (unsigned long long)(o->has_since ? o->since_s : 24 * 3600));
	params[0] = secs;
	res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "ztctl: database: reading network_flows: %s",
			PQresultErrorMessage(res));
		rc = EXIT_FAIL;
		goto out;
	}
	rows = PQntuples(res);
	flows = calloc((size_t)rows + 1, sizeof(*flows));
	bufs = calloc((size_t)rows + 1, sizeof(*bufs));
	if (!flows || !bufs)
		die_nomem();
	for (int i = 0; i < rows; i++) {
		const char *sw = PQgetvalue(res, i, 0), *dw = PQgetvalue(res, i, 1);
		bool v6 = atoi(PQgetvalue(res, i, 4)) == 6;
		struct zt_sg_flow *f = &flows[nf];
		long long cnt = atoll(PQgetvalue(res, i, 8));
		int proto = atoi(PQgetvalue(res, i, 5)), port = atoi(PQgetvalue(res, i, 6));

		if (!strcmp(PQgetvalue(res, i, 7), "denied")) {
			denied += (uint64_t)(cnt > 0 ? cnt : 0);
			continue;
		}
		if (!strcmp(sw, "host") || !strcmp(dw, "host")) {
			host += (uint64_t)(cnt > 0 ? cnt : 0);
			continue;
		}
		resolve(&k, sw, PQgetvalue(res, i, 2), v6, &f->src, bufs[nf][0],
			sizeof(bufs[nf][0]), bufs[nf][1], sizeof(bufs[nf][1]));
		resolve(&k, dw, PQgetvalue(res, i, 3), v6, &f->dst, bufs[nf][2],
			sizeof(bufs[nf][2]), bufs[nf][3], sizeof(bufs[nf][3]));
		f->proto = (uint8_t)(proto >= 0 && proto <= 255 ? proto : 255);
		f->port = (uint16_t)(port >= 0 && port <= 65535 ? port : 0);
		f->count = (uint64_t)(cnt > 0 ? cnt : 0);
		nf++;
	}
	duration_s(o->has_since ? o->since_s : 24 * 3600, since, sizeof(since));
	snprintf(
		header, sizeof(header),
		"ztctl policy suggest --since %s%s%s --mode %s --min-flows %llu; "
		"left out: %llu denied flow records (policy said no), %llu with the node itself (always allowed)",
		since, o->ns ? " --namespace " : "", o->ns ? o->ns : "",
		o->mode ? o->mode : "enforce",
		(unsigned long long)(o->min_flows ? o->min_flows : 1), (unsigned long long)denied,
		(unsigned long long)host);
	so.only_ns = o->ns;
	so.audit = o->mode && !strcmp(o->mode, "audit");
	so.min_flows = o->min_flows;
	so.header = header;
	if (zt_suggest(flows, nf, &so, &yaml, &npol) < 0)
		die_nomem();
	fputs(yaml, stdout);
	fprintf(stderr, "ztctl: %zu %s suggested from %zu distinct flows in the database\n", npol,
		npol == 1 ? "policy" : "policies", nf);
	rc = EXIT_OK;
out:
	free(yaml);
	free(flows);
	free(bufs);
	PQclear(res);
	PQfinish(c);
	known_free(&k);
	return rc;
}

const struct cmd ctl_gen_cmds[] = {
	{ "namespace annotate", "ztctl namespace annotate NAMESPACE KEY=VALUE|KEY- ...",
	  "Sets (KEY=VALUE) or removes (KEY-) an annotation of a namespace, as Kubernetes\n"
	  "metadata would carry it, for the agent's generated policies. The agent keeps\n"
	  "only ztagent.io/ annotations (in state_dir/annotations; a restart keeps them):\n"
	  "\n"
	  "  ztagent.io/isolation: none | namespace | strict\n"
	  "    namespace  pods accept traffic from their own namespace and from callers\n"
	  "               that declare them in ztagent.io/talks-to; nothing else comes in\n"
	  "    strict     ingress and egress: only what talks-to declares (DNS too)\n"
	  "\n"
	  "The generated policies (origin generated in 'ztctl policy list') are in force\n"
	  "when the command returns. They never weaken a ZeroTrustPolicy deny.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl namespace annotate payments ztagent.io/isolation=strict\n",
	  0, 2, 64, "NAMESPACE and KEY=VALUE", run_namespace_annotate },
	{ "endpoint annotate",
	  "ztctl endpoint annotate ENDPOINT KEY=VALUE|KEY- ... [--namespace NS]",
	  "Sets (KEY=VALUE) or removes (KEY-) an annotation of an endpoint (a pod), for\n"
	  "the agent's generated policies:\n"
	  "\n"
	  "  ztagent.io/talks-to: TARGET[:PORT], ...\n"
	  "    TARGET  NAME (pods labelled app=NAME in the pod's namespace), K=V[&K=V]\n"
	  "            (a selector there), ns=NS[/NAME|/K=V[&K=V]] (in namespace NS)\n"
	  "    PORT    N, N-M or a port name, then /TCP (default), /UDP or /SCTP\n"
	  "\n"
	  "Each entry allows the call on the targets' side (ingress, when their namespace\n"
	  "is isolated by ztagent.io/isolation) and on the caller's (egress, when its\n"
	  "namespace is strict). A bad value is refused with the entry and column at\n"
	  "fault. With --namespace, ENDPOINT may be a name not added yet.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl endpoint annotate shop/web 'ztagent.io/talks-to=backend:8080/TCP, ns=payments/app=ledger:5432'\n",
	  OPT_EP, 2, 64, "ENDPOINT and KEY=VALUE", run_endpoint_annotate },
	{ "policy suggest",
	  "ztctl policy suggest [--since 24h] [--namespace NS] [--mode enforce|audit] [--min-flows N] [--db CONNINFO]",
	  "Writes (to stdout) the smallest set of policies that allows the flows recorded\n"
	  "in PostgreSQL (network_flows) over the period: one NetworkPolicy per workload,\n"
	  "selecting it and its peers by labels (never by pod address; outside addresses\n"
	  "become ipBlocks), both directions isolated, DNS egress to kube-dns included,\n"
	  "consecutive ports merged into a range only when every port was seen. Comments\n"
	  "say which flows each rule covers and how often. Flows seen fewer than\n"
	  "--min-flows times (default 1), flows with a pod the agent cannot name by\n"
	  "labels (another node's), ICMP and the like are listed at the top, not allowed.\n"
	  "Denied flows are left out. --mode audit writes ZeroTrustPolicy in mode audit:\n"
	  "load it, watch the would-deny alerts ('ztctl flows --verdict audit'), then\n"
	  "enforce. Labels come from the running agent's endpoints; the database is\n"
	  "--db, else $ZTAGENT_DB, else the agent's database.url.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl policy suggest --since 24h --namespace shop --min-flows 3 > shop.yaml\n"
	  "  ztctl policy validate shop.yaml && cp shop.yaml /etc/ztagent/policies/\n",
	  OPT_SUGGEST | OPT_SINCE | OPT_DB | OPT_EP, 0, 0, NULL, run_policy_suggest },
};
const size_t ctl_gen_ncmds = ZT_ARRAY_SIZE(ctl_gen_cmds);
