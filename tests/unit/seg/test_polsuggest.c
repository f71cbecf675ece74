// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: `ztctl policy suggest`'s algorithm (polsuggest.c). The
 * suggestion goes through the real parser and the reference evaluator:
 * every flow it was made from must be allowed, unseen ones denied (or
 * audit in --mode audit), rare ones listed and denied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seg/policy.h"
#include "seg/policy_eval.h"
#include "seg/polsuggest.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { CLIENT, WEB, DB, DNS, N_EPS };

static const struct zt_label l_client[] = { { "app", "client" } },
			     l_web[] = { { "tier", "front" }, { "app", "web" } },
			     l_db[] = { { "app", "db" } }, l_dns[] = { { "k8s-app", "kube-dns" } };

static const struct {
	const char *ns, *name, *ip;
	const struct zt_label *l;
	size_t nl;
} eps[N_EPS] = {
	[CLIENT] = { "shop", "shop/client", "198.18.1.2", l_client, 1 },
	[WEB] = { "shop", "shop/web", "198.18.1.3", l_web, 2 },
	[DB] = { "data", "data/db", "198.18.1.4", l_db, 1 },
	[DNS] = { "kube-system", "kube-system/coredns", "198.18.1.5", l_dns, 1 },
};

#define POD(i)                                                                                  \
	{                                                                                       \
		.ns = eps[i].ns, .labels = eps[i].l, .n_labels = eps[i].nl, .name = eps[i].name \
	}
#define EXT(a)                                      \
	{                                           \
		.cidr = a "/32", .name = "world " a \
	}

static const struct zt_sg_flow flows[] = {
	{ POD(CLIENT), POD(WEB), IPPROTO_TCP, 8080, 12 },
	{ POD(CLIENT), POD(WEB), IPPROTO_TCP, 8081, 3 },
	{ POD(CLIENT), POD(WEB), IPPROTO_TCP, 8082, 2 },
	{ POD(CLIENT), POD(WEB), IPPROTO_TCP, 9000, 5 },
	{ POD(CLIENT), POD(DB), IPPROTO_TCP, 5432, 4 },
	{ POD(WEB), POD(DB), IPPROTO_TCP, 5432, 4 },
	{ POD(WEB), POD(DB), IPPROTO_TCP, 5432, 3 }, /* the same flow again: 7 */
	{ POD(WEB), POD(DB), IPPROTO_TCP, 5433, 1 }, /* rare */
	{ EXT("198.51.100.7"), POD(WEB), IPPROTO_TCP, 443, 9 },
	{ POD(WEB), EXT("203.0.113.9"), IPPROTO_UDP, 123, 3 },
	{ POD(CLIENT), POD(WEB), IPPROTO_ICMP, 0, 2 },
	{ { .name = "identity:300" }, POD(WEB), IPPROTO_TCP, 8080, 5 },
};

struct world {
	struct zt_eval_endpoint ev[N_EPS];
	struct zt_ep_addr addr[N_EPS];
	struct zt_policy_set *set;
	char *yaml;
	size_t npol;
};

static void addr_of(const char *s, struct zt_ep_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, s, a->addr), 1);
}

static void world_build(struct world *w, const struct zt_sg_flow *f, size_t n,
			const struct zt_sg_opts *o)
{
	char err[1024] = "";

	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < N_EPS; i++) {
		addr_of(eps[i].ip, &w->addr[i]);
		w->ev[i] = (struct zt_eval_endpoint){
			.name = eps[i].name,
			.ls = { .namespace = eps[i].ns,
				.labels = { .v = eps[i].l, .n = eps[i].nl } },
			.addrs = &w->addr[i],
			.n_addrs = 1,
		};
	}
	assert_int_equal(zt_suggest(f, n, o, &w->yaml, &w->npol), 0);
	if (zt_policy_parse_buf(w->yaml, strlen(w->yaml), "suggested.yaml", &w->set, err,
				sizeof(err)) < 0)
		fail_msg("the suggestion does not parse: %s\n%s", err, w->yaml);
}

static void world_free(struct world *w)
{
	zt_policy_set_free(w->set);
	free(w->yaml);
}

/* from/to: an endpoint index, or -1 with an address. */
static enum zt_pol_verdict verdict(struct world *w, int from, const char *from_ip, int to,
				   const char *to_ip, uint8_t proto, uint16_t port)
{
	struct zt_eval_conn c = { .protocol = proto, .port = port };
	struct zt_eval_result res;

	if (from >= 0) {
		c.src.ep = &w->ev[from];
		c.src.addr = w->addr[from];
	} else {
		addr_of(from_ip, &c.src.addr);
	}
	if (to >= 0) {
		c.dst.ep = &w->ev[to];
		c.dst.addr = w->addr[to];
	} else {
		addr_of(to_ip, &c.dst.addr);
	}
	assert_int_equal(zt_policy_eval(w->set, ZT_POL_DEFAULT_ALLOW, w->ev, N_EPS, &c, &res), 0);
	return res.verdict;
}

#define V(a, b, p, port) verdict(&w, a, NULL, b, NULL, p, port)

static void test_seen_allowed_unseen_denied(void **state)
{
	struct zt_sg_opts o = { .min_flows = 2, .header = "ztctl policy suggest --since 24h" };
	struct world w;

	world_build(&w, flows, N(flows), &o);
	assert_int_equal(w.npol, 3); /* client, web, db; kube-dns saw nothing */
	assert_int_equal(w.set->n, 3);
	/* Every flow at or above the threshold passes. */
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8080), ZT_PV_ALLOW);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8081), ZT_PV_ALLOW);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8082), ZT_PV_ALLOW);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 9000), ZT_PV_ALLOW);
	assert_int_equal(V(CLIENT, DB, IPPROTO_TCP, 5432), ZT_PV_ALLOW);
	assert_int_equal(V(WEB, DB, IPPROTO_TCP, 5432), ZT_PV_ALLOW);
	assert_int_equal(verdict(&w, -1, "198.51.100.7", WEB, NULL, IPPROTO_TCP, 443), ZT_PV_ALLOW);
	assert_int_equal(verdict(&w, WEB, NULL, -1, "203.0.113.9", IPPROTO_UDP, 123), ZT_PV_ALLOW);
	/* DNS egress is there for every workload. */
	assert_int_equal(V(CLIENT, DNS, IPPROTO_UDP, 53), ZT_PV_ALLOW);
	assert_int_equal(V(DB, DNS, IPPROTO_TCP, 53), ZT_PV_ALLOW);
	/* Unseen: other ports (ranges are exact), other peers, other directions. */
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8079), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8083), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8999), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_UDP, 8080), ZT_PV_DENY);
	assert_int_equal(V(WEB, CLIENT, IPPROTO_TCP, 8080), ZT_PV_DENY);
	assert_int_equal(V(DB, WEB, IPPROTO_TCP, 8080), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, DB, IPPROTO_TCP, 5433), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, DNS, IPPROTO_TCP, 80), ZT_PV_DENY);
	assert_int_equal(verdict(&w, -1, "198.51.100.8", WEB, NULL, IPPROTO_TCP, 443), ZT_PV_DENY);
	assert_int_equal(verdict(&w, WEB, NULL, -1, "203.0.113.10", IPPROTO_UDP, 123), ZT_PV_DENY);
	/* Rare, ICMP, unresolved: listed with counts, and denied. */
	assert_int_equal(V(WEB, DB, IPPROTO_TCP, 5433), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_ICMP, 0), ZT_PV_DENY);
	assert_non_null(strstr(
		w.yaml,
		"#   shop/web -> data/db 5433/TCP: 1 flow; seen fewer than --min-flows times\n"));
	assert_non_null(strstr(
		w.yaml,
		"#   shop/client -> shop/web ICMP: 2 flows; NetworkPolicy cannot state this protocol\n"));
	assert_non_null(strstr(
		w.yaml,
		"#   identity:300 -> shop/web 8080/TCP: 5 flows; an end is not resolved to labels"));
	/* Ports merged only where exact; comments say which flows and how often. */
	assert_non_null(strstr(w.yaml, "{protocol: TCP, port: 8080, endPort: 8082}"));
	assert_non_null(strstr(w.yaml, "{protocol: TCP, port: 9000}"));
	assert_non_null(strstr(w.yaml, "  # shop/web -> data/db 5432/TCP: 7 flows\n"));
	assert_non_null(strstr(w.yaml, "  # shop/client -> shop/web 8081/TCP: 3 flows\n"));
	assert_non_null(strstr(w.yaml, "# ztctl policy suggest --since 24h\n"));
	/* Selectors, never pod addresses. */
	assert_null(strstr(w.yaml, "198.18."));
	/* client and web reach db on the same ports: one rule, two peers. */
	{
		const struct zt_policy *db = NULL;

		for (size_t i = 0; i < w.set->n; i++)
			if (!strcmp(w.set->policies[i].namespace, "data"))
				db = &w.set->policies[i];
		assert_non_null(db);
		assert_int_equal(db->n_rules[ZT_POL_INGRESS], 1);
		assert_int_equal(db->rules[ZT_POL_INGRESS][0].n_peers, 2);
		assert_int_equal(db->n_rules[ZT_POL_EGRESS], 1); /* DNS only */
	}
	world_free(&w);
}

static void test_audit_mode(void **state)
{
	struct zt_sg_opts o = { .min_flows = 2, .audit = true };
	struct world w;

	world_build(&w, flows, N(flows), &o);
	for (size_t i = 0; i < w.set->n; i++) {
		assert_int_equal(w.set->policies[i].kind, ZT_POL_ZERO_TRUST_POLICY);
		assert_int_equal(w.set->policies[i].mode, ZT_POL_AUDIT);
	}
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8080), ZT_PV_ALLOW);
	assert_int_equal(V(WEB, DB, IPPROTO_TCP, 5432), ZT_PV_ALLOW);
	/* Would deny, passes. */
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 8083), ZT_PV_AUDIT);
	assert_int_equal(V(WEB, DB, IPPROTO_TCP, 5433), ZT_PV_AUDIT);
	world_free(&w);
}

static void test_namespace_filter_and_order(void **state)
{
	struct zt_sg_opts o = { .min_flows = 2, .only_ns = "data" };
	struct zt_sg_flow rev[N(flows)];
	struct world w;
	char *first;

	world_build(&w, flows, N(flows), &o);
	assert_int_equal(w.set->n, 1);
	assert_string_equal(w.set->policies[0].name, "suggested-db");
	assert_null(strstr(w.yaml, "suggested-web"));
	assert_int_equal(V(CLIENT, DB, IPPROTO_TCP, 5432), ZT_PV_ALLOW);
	assert_int_equal(V(CLIENT, DB, IPPROTO_TCP, 5433), ZT_PV_DENY);
	assert_int_equal(V(CLIENT, WEB, IPPROTO_TCP, 1), ZT_PV_ALLOW); /* shop: not suggested */
	world_free(&w);

	o.only_ns = NULL;
	world_build(&w, flows, N(flows), &o);
	first = strdup(w.yaml);
	world_free(&w);
	for (size_t i = 0; i < N(flows); i++)
		rev[i] = flows[N(flows) - 1 - i];
	world_build(&w, rev, N(rev), &o);
	assert_string_equal(first, w.yaml);
	free(first);
	world_free(&w);
}

static void test_hostile_names_and_no_labels(void **state)
{
	static const struct zt_label quote[] = { { "app", "a\"b" } };
	const struct zt_sg_flow f[] = {
		{ { .ns = "shop", .labels = NULL, .n_labels = 0, .name = "shop/nolabels" },
		  POD(WEB),
		  IPPROTO_TCP,
		  80,
		  5 },
		{ { .ns = "shop", .labels = quote, .n_labels = 1, .name = "evil\n---\nkind: x" },
		  POD(WEB),
		  IPPROTO_TCP,
		  81,
		  5 },
	};
	struct zt_sg_opts o = { 0 };
	char *yaml = NULL, err[512];
	size_t np;
	struct zt_policy_set *set = NULL;

	assert_int_equal(zt_suggest(f, N(f), &o, &yaml, &np), 0);
	assert_non_null(strstr(
		yaml,
		"shop/nolabels -> shop/web 80/TCP: 5 flows; a pod without labels cannot be selected"));
	assert_non_null(strstr(yaml, "# evil?---?kind: x -> shop/web 81/TCP"));
	/* The quote is escaped; the parser then refuses the label value, as the API server would. */
	assert_non_null(strstr(yaml, "\"a\\\"b\""));
	assert_int_equal(zt_policy_parse_buf(yaml, strlen(yaml), "s", &set, err, sizeof(err)),
			 -EINVAL);
	free(yaml);
	/* Nothing seen: no policies, a valid (empty) document. */
	assert_int_equal(zt_suggest(NULL, 0, &o, &yaml, &np), 0);
	assert_int_equal(np, 0);
	assert_int_equal(zt_policy_parse_buf(yaml, strlen(yaml), "s", &set, err, sizeof(err)), 0);
	assert_int_equal(set->n, 0);
	zt_policy_set_free(set);
	free(yaml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seen_allowed_unseen_denied),
		cmocka_unit_test(test_audit_mode),
		cmocka_unit_test(test_namespace_filter_and_order),
		cmocka_unit_test(test_hostile_names_and_no_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
