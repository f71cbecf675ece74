// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: policies generated from ztagent.io/ annotations (polgen.c).
 * The generated YAML goes through the real parser and the reference
 * evaluator, so what is checked is the verdicts, not the text.
 */
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

#include "seg/polgen.h"
#include "seg/policy.h"
#include "seg/policy_eval.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- talks-to syntax ---- */

static void test_talks_to_ok(void **state)
{
	struct zt_gen_target t[8];
	char err[512] = "";
	size_t n;

	assert_int_equal(zt_gen_talks_to_parse("backend:8080/TCP, ns=payments/app=ledger:5432", t,
					       N(t), &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].ns, "");
	assert_int_equal(t[0].n_sel, 1);
	assert_string_equal(t[0].keys[0], "app");
	assert_string_equal(t[0].values[0], "backend");
	assert_int_equal(t[0].proto, IPPROTO_TCP);
	assert_int_equal(t[0].port, 8080);
	assert_int_equal(t[0].end_port, 8080);
	assert_string_equal(t[1].ns, "payments");
	assert_string_equal(t[1].keys[0], "app");
	assert_string_equal(t[1].values[0], "ledger");
	assert_int_equal(t[1].port, 5432);
	assert_int_equal(t[1].proto, IPPROTO_TCP);

	assert_int_equal(zt_gen_talks_to_parse("ns=kube-system/k8s-app=kube-dns:53/udp,"
					       "tier=db&app=pg:5000-5010/SCTP,ns=ops,web:http",
					       t, N(t), &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].proto, IPPROTO_UDP);
	assert_int_equal(t[0].port, 53);
	assert_int_equal(t[1].n_sel, 2);
	assert_string_equal(t[1].keys[1], "app");
	assert_int_equal(t[1].proto, IPPROTO_SCTP);
	assert_int_equal(t[1].port, 5000);
	assert_int_equal(t[1].end_port, 5010);
	assert_true(t[2].whole_ns);
	assert_true(t[2].any_port);
	assert_string_equal(t[3].port_name, "http");
}

static void test_talks_to_bad(void **state)
{
	static const struct {
		const char *v, *want;
	} cases[] = {
		{ "backend:8080, ns=payments/app=ledger:99999",
		  "ztagent.io/talks-to: entry 2 (column 15) 'ns=payments/app=ledger:99999': ports are 1-65535" },
		{ "backend:8080/ICMP",
		  "entry 1 (column 1) 'backend:8080/ICMP': the protocol after '/' must be TCP, UDP or SCTP" },
		{ "a,,b", "entry 2 (column 3) '': empty entry" },
		{ "a,", "entry 2 (column 3) '': empty entry" },
		{ "", "entry 1 (column 1) '': empty entry" },
		{ "ns=Payments/app=x", "entry 1 (column 1)" },
		{ "ns=/app=x", "ns= needs a namespace name" },
		{ "ns=p/", "a selector is missing after '/'" },
		{ "payments/ledger", "a namespace is written ns=NAME/..." },
		{ "app=a&app=b", "a label key appears twice" },
		{ "app=a&tier", "a selector is K=V, several joined with '&'" },
		{ ":80", "the target is missing before ':'" },
		{ "web:", "a port is missing after ':'" },
		{ "web:9-8", "a port range must not end before it starts" },
		{ "web:0", "ports are 1-65535" },
		{ "web:-http", "a port name needs a letter, no '-' at either end and no '--'" },
		{ "nxsx:99u9be--9",
		  "entry 1 (column 1) 'nxsx:99u9be--9': a port name needs a letter" },
		{ "web:very-long-port-name", "a port name has at most 15 characters" },
		{ "web:80 x",
		  "entry 1 (column 7) 'web:80 x': no spaces or control characters inside an entry" },
		{ "bad_name-", "entry 1 (column 1) 'bad_name-'" },
	};
	struct zt_gen_target t[8];
	char err[512];
	size_t n;

	for (size_t i = 0; i < N(cases); i++) {
		err[0] = '\0';
		if (zt_gen_talks_to_parse(cases[i].v, t, N(t), &n, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", cases[i].v);
		if (!strstr(err, cases[i].want))
			fail_msg("'%s': got \"%s\", want \"%s\"", cases[i].v, err, cases[i].want);
		assert_non_null(strstr(err, "ztagent.io/talks-to: "));
	}
	/* Too many entries. */
	assert_int_equal(zt_gen_talks_to_parse("a,b,c", t, 2, &n, err, sizeof(err)), -E2BIG);
}

static void test_annotation_check(void **state)
{
	char err[512];
	enum zt_gen_iso iso;

	assert_int_equal(
		zt_gen_annotation_check("ztagent.io/isolation", "strict", true, err, sizeof(err)),
		0);
	assert_int_equal(
		zt_gen_annotation_check("ztagent.io/isolation", "total", true, err, sizeof(err)),
		-EINVAL);
	assert_non_null(
		strstr(err, "ztagent.io/isolation: 'total' is not one of none, namespace, strict"));
	assert_int_equal(
		zt_gen_annotation_check("ztagent.io/isolation", "strict", false, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(
		zt_gen_annotation_check("ztagent.io/talks-to", "web:80", true, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(
		zt_gen_annotation_check("ztagent.io/talk-to", "web:80", false, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "unknown annotation"));
	assert_int_equal(zt_gen_annotation_check("example.com/x", "y", false, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(zt_gen_iso_parse("namespace", &iso, err, sizeof(err)), 0);
	assert_int_equal(iso, ZT_GEN_ISO_NAMESPACE);
}

/* ---- generation, judged by the reference evaluator ---- */

enum { WEB, BACKEND, OTHER, LEDGER, AUDITOR, X, N_EPS };

static const struct zt_label l_web[] = { { "app", "web" } }, l_backend[] = { { "app", "backend" } },
			     l_other[] = { { "app", "other" } },
			     l_ledger[] = { { "app", "ledger" } },
			     l_auditor[] = { { "app", "auditor" } }, l_x[] = { { "app", "x" } };

struct world {
	struct zt_eval_endpoint ev[N_EPS];
	struct zt_ep_addr addr[N_EPS];
	struct zt_gen_pod pods[N_EPS];
	struct zt_gen_ns nss[3];
	struct zt_policy_set *set;
	char *yaml;
	char problems[2048];
};

static void world_init(struct world *w)
{
	static const struct {
		const char *ns, *name;
		const struct zt_label *l;
	} d[N_EPS] = {
		[WEB] = { "shop", "web", l_web },
		[BACKEND] = { "shop", "backend", l_backend },
		[OTHER] = { "shop", "other", l_other },
		[LEDGER] = { "payments", "ledger", l_ledger },
		[AUDITOR] = { "payments", "auditor", l_auditor },
		[X] = { "open", "x", l_x },
	};

	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < N_EPS; i++) {
		w->addr[i].family = AF_INET;
		w->addr[i].addr[0] = 198;
		w->addr[i].addr[1] = 18;
		w->addr[i].addr[3] = (uint8_t)(i + 2);
		w->ev[i] = (struct zt_eval_endpoint){
			.name = d[i].name,
			.ls = { .namespace = d[i].ns, .labels = { .v = d[i].l, .n = 1 } },
			.addrs = &w->addr[i],
			.n_addrs = 1,
		};
		w->pods[i] = (struct zt_gen_pod){
			.ns = d[i].ns, .name = d[i].name, .labels = d[i].l, .n_labels = 1
		};
	}
	w->nss[0] = (struct zt_gen_ns){ "shop", ZT_GEN_ISO_NAMESPACE };
	w->nss[1] = (struct zt_gen_ns){ "payments", ZT_GEN_ISO_STRICT };
	w->nss[2] = (struct zt_gen_ns){ "open", ZT_GEN_ISO_NONE };
	w->pods[WEB].talks_to = "backend:8080/TCP, ns=payments/app=ledger:5432";
	w->pods[AUDITOR].talks_to = "ledger:5432";
	w->pods[X].talks_to = "ns=shop/app=backend:8080";
}

/* Generates, prepends `explicit` (policy.dir's part), parses. */
static void world_build(struct world *w, const char *explicit)
{
	char err[1024] = "";
	char *all;
	size_t len;

	zt_policy_set_free(w->set);
	w->set = NULL;
	free(w->yaml);
	w->yaml = NULL;
	assert_int_equal(zt_polgen(w->nss, N(w->nss), w->pods, N_EPS, &w->yaml, w->problems,
				   sizeof(w->problems)),
			 0);
	len = strlen(explicit) + strlen(w->yaml) + 2;
	all = malloc(len);
	assert_non_null(all);
	snprintf(all, len, "%s\n%s", explicit, w->yaml);
	if (zt_policy_parse_buf(all, strlen(all), "generated", &w->set, err, sizeof(err)) < 0)
		fail_msg("generated policy does not parse: %s\n%s", err, all);
	free(all);
}

static void world_free(struct world *w)
{
	zt_policy_set_free(w->set);
	free(w->yaml);
}

static enum zt_pol_verdict verdict(struct world *w, int from, int to, uint8_t proto, uint16_t port)
{
	struct zt_eval_conn c = {
		.src = { .ep = &w->ev[from] },
		.dst = { .ep = &w->ev[to] },
		.protocol = proto,
		.port = port,
	};
	struct zt_eval_result res;

	c.src.addr = w->addr[from];
	c.dst.addr = w->addr[to];
	assert_int_equal(zt_policy_eval(w->set, ZT_POL_DEFAULT_ALLOW, w->ev, N_EPS, &c, &res), 0);
	return res.verdict;
}

#define ALLOW(a, b, port) assert_int_equal(verdict(&w, a, b, IPPROTO_TCP, port), ZT_PV_ALLOW)
#define DENY(a, b, port) assert_int_equal(verdict(&w, a, b, IPPROTO_TCP, port), ZT_PV_DENY)

static void test_generate_isolation_and_talks_to(void **state)
{
	struct world w;

	world_init(&w);
	world_build(&w, "");
	assert_string_equal(w.problems, "");
	/* namespace: inside the namespace everything, from outside only what is declared. */
	ALLOW(WEB, BACKEND, 8080);
	ALLOW(OTHER, BACKEND, 9999);
	ALLOW(BACKEND, WEB, 80);
	ALLOW(X, BACKEND, 8080); /* x declared it (ingress side in shop) */
	DENY(X, BACKEND, 8081);
	DENY(X, WEB, 80);
	DENY(LEDGER, WEB, 80); /* ledger's egress is strict, web's ingress namespace */
	/* strict: only what is declared, both sides. */
	ALLOW(WEB, LEDGER, 5432);
	DENY(WEB, LEDGER, 5433);
	DENY(OTHER, LEDGER, 5432); /* not declared by other */
	ALLOW(AUDITOR, LEDGER, 5432); /* egress of auditor and ingress of ledger */
	DENY(AUDITOR, LEDGER, 22);
	DENY(LEDGER, AUDITOR, 5432); /* nothing declared inside payments that way */
	DENY(AUDITOR, X, 80); /* strict egress */
	DENY(X, LEDGER, 5432);
	/* none: not isolated by us. */
	ALLOW(WEB, X, 80);
	ALLOW(BACKEND, X, 1);
	/* Generated policies carry their origin. */
	for (size_t i = 0; i < w.set->n; i++) {
		assert_string_equal(w.set->policies[i].file, "generated");
		assert_int_equal(strncmp(w.set->policies[i].name, "ztgen.", 6), 0);
	}
	world_free(&w);
}

static void test_recomputed_when_metadata_changes(void **state)
{
	struct world w;

	world_init(&w);
	world_build(&w, "");
	DENY(X, WEB, 80);
	/* shop opens up: nothing isolates it any more. */
	w.nss[0].iso = ZT_GEN_ISO_NONE;
	world_build(&w, "");
	ALLOW(X, WEB, 80);
	DENY(LEDGER, BACKEND, 80); /* payments is still strict */
	/* payments goes from strict to namespace: egress opens, ingress keeps the namespace. */
	w.nss[0].iso = ZT_GEN_ISO_NAMESPACE;
	w.nss[1].iso = ZT_GEN_ISO_NAMESPACE;
	world_build(&w, "");
	ALLOW(LEDGER, AUDITOR, 5432);
	ALLOW(AUDITOR, X, 80);
	ALLOW(WEB, LEDGER, 5432);
	DENY(OTHER, LEDGER, 5432);
	/* web stops declaring ledger. */
	w.pods[WEB].talks_to = "backend:8080/TCP";
	world_build(&w, "");
	DENY(WEB, LEDGER, 5432);
	world_free(&w);
}

static void test_explicit_deny_kept(void **state)
{
	static const char deny[] =
		"apiVersion: ztagent.io/v1\n"
		"kind: ZeroTrustPolicy\n"
		"metadata: {name: no-web-to-ledger, namespace: payments}\n"
		"spec:\n"
		"  podSelector: {matchLabels: {app: ledger}}\n"
		"  ingress:\n"
		"  - action: deny\n"
		"    from:\n"
		"    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}\n"
		"      podSelector: {matchLabels: {app: web}}\n"
		"---\n"
		"apiVersion: ztagent.io/v1\n"
		"kind: ZeroTrustPolicy\n"
		"metadata: {name: no-x, namespace: shop}\n"
		"spec:\n"
		"  podSelector: {matchLabels: {app: backend}}\n"
		"  ingress:\n"
		"  - action: deny\n"
		"    from:\n"
		"    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: open}}\n";
	struct world w;

	world_init(&w);
	world_build(&w, deny);
	DENY(WEB, LEDGER, 5432); /* declared by talks-to, denied explicitly: deny stays */
	DENY(X, BACKEND, 8080);
	ALLOW(AUDITOR, LEDGER, 5432); /* the rest of the generated policy holds */
	ALLOW(WEB, BACKEND, 8080);
	world_free(&w);
}

static void test_bad_pod_skipped_rest_generated(void **state)
{
	struct world w;
	char *first;

	world_init(&w);
	w.pods[AUDITOR].talks_to = "ledger:70000";
	w.pods[X].n_labels = 0;
	world_build(&w, "");
	assert_non_null(strstr(
		w.problems,
		"pod payments/auditor: ztagent.io/talks-to: entry 1 (column 1) 'ledger:70000': ports are 1-65535"));
	assert_non_null(
		strstr(w.problems, "pod open/x: ztagent.io/talks-to needs the pod to have labels"));
	DENY(AUDITOR, LEDGER, 5432);
	ALLOW(WEB, LEDGER, 5432);

	/* Same input in another order: the same bytes (the store's SHA-256 no-op). */
	w.pods[X].n_labels = 1;
	world_build(&w, "");
	first = strdup(w.yaml);
	{
		struct zt_gen_pod tmp = w.pods[0];
		struct zt_gen_ns tn = w.nss[0];

		w.pods[0] = w.pods[N_EPS - 1];
		w.pods[N_EPS - 1] = tmp;
		w.nss[0] = w.nss[2];
		w.nss[2] = tn;
	}
	world_build(&w, "");
	assert_string_equal(first, w.yaml);
	free(first);
	world_free(&w);
}

static void test_nothing_annotated(void **state)
{
	char *yaml = NULL;
	struct zt_policy_set *set = NULL;
	char err[256];

	assert_int_equal(zt_polgen(NULL, 0, NULL, 0, &yaml, NULL, 0), 0);
	assert_int_equal(
		zt_policy_parse_buf(yaml, strlen(yaml), "generated", &set, err, sizeof(err)), 0);
	assert_int_equal(set->n, 0);
	zt_policy_set_free(set);
	free(yaml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_talks_to_ok),
		cmocka_unit_test(test_talks_to_bad),
		cmocka_unit_test(test_annotation_check),
		cmocka_unit_test(test_generate_isolation_and_talks_to),
		cmocka_unit_test(test_recomputed_when_metadata_changes),
		cmocka_unit_test(test_explicit_deny_kept),
		cmocka_unit_test(test_bad_pod_skipped_rest_generated),
		cmocka_unit_test(test_nothing_annotated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
