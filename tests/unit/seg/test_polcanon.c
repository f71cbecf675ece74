// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the canonical form of policies (seg/polcanon.h). The same
 * policies in other files, another order, another layout (flow or block
 * YAML, keys reordered, labels, peers, ports, except lists and rules
 * listed in another order, duplicates) give the same hash; any change that
 * matters (a port, a label value, the mode, a rule's action, a policy more
 * or less) gives another; the diff names what was added, removed and
 * changed, and survives the round trip through stored (key, json) pairs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seg/polcanon.h"
#include "seg/policy.h"

/* Parses the documents of each text as one file each; the set's canonical form. */
static void canon_of(const char *const *texts, size_t n, struct zt_polcanon_set *out)
{
	struct zt_policy_set *sets[8];
	const struct zt_policy *v[64];
	size_t nv = 0;
	char err[512];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "f%zu.yaml", i);
		if (zt_policy_parse_buf(texts[i], strlen(texts[i]), name, &sets[i], err,
					sizeof(err)) < 0)
			fail_msg("parse %zu: %s", i, err);
		for (size_t j = 0; j < sets[i]->n; j++)
			v[nv++] = &sets[i]->policies[j];
	}
	assert_int_equal(zt_polcanon_build(v, nv, out), 0);
	for (size_t i = 0; i < n; i++)
		zt_policy_set_free(sets[i]);
}

static const char backend[] =
	"apiVersion: networking.k8s.io/v1\n"
	"kind: NetworkPolicy\n"
	"metadata: {name: backend, namespace: shop}\n"
	"spec:\n"
	"  podSelector: {matchLabels: {app: backend, tier: api}}\n"
	"  ingress:\n"
	"    - from: [{podSelector: {matchLabels: {app: frontend}}}]\n"
	"      ports: [{protocol: TCP, port: 8080}, {protocol: UDP, port: 53}]\n"
	"    - from: [{ipBlock: {cidr: 198.18.0.0/16, except: [198.18.5.0/24, 198.18.1.0/24]}}]\n";

/* The same policy: block style, keys, labels, ports, except list and rules reordered. */
static const char backend_reordered[] = "# a comment\n"
					"kind: NetworkPolicy\n"
					"apiVersion: networking.k8s.io/v1\n"
					"metadata:\n"
					"  namespace: shop\n"
					"  name: backend\n"
					"spec:\n"
					"  ingress:\n"
					"  - from:\n"
					"    - ipBlock:\n"
					"        except: [198.18.1.0/24, 198.18.5.0/24]\n"
					"        cidr: 198.18.0.0/16\n"
					"  - ports:\n"
					"    - {port: 53, protocol: UDP}\n"
					"    - {protocol: TCP, port: 8080}\n"
					"    - {protocol: TCP, port: 8080}\n"
					"    from:\n"
					"    - podSelector:\n"
					"        matchLabels:\n"
					"          app: frontend\n"
					"  podSelector:\n"
					"    matchLabels: {tier: api, app: backend}\n";

static const char db[] = "apiVersion: ztagent.io/v1\n"
			 "kind: ZeroTrustPolicy\n"
			 "metadata: {name: db, namespace: shop}\n"
			 "spec:\n"
			 "  podSelector: {matchLabels: {app: db}}\n"
			 "  ingress:\n"
			 "    - action: deny\n"
			 "      from: [{podSelector: {matchLabels: {app: frontend}}}]\n"
			 "    - action: allow\n"
			 "      from: [{podSelector: {matchLabels: {app: backend}}}]\n"
			 "      ports: [{protocol: TCP, port: 5432}]\n";

static const char db_rules_swapped[] =
	"apiVersion: ztagent.io/v1\n"
	"kind: ZeroTrustPolicy\n"
	"metadata: {name: db, namespace: shop}\n"
	"spec:\n"
	"  podSelector: {matchLabels: {app: db}}\n"
	"  ingress:\n"
	"    - action: allow\n"
	"      from: [{podSelector: {matchLabels: {app: backend}}}]\n"
	"      ports: [{protocol: TCP, port: 5432}]\n"
	"    - action: deny\n"
	"      from: [{podSelector: {matchLabels: {app: frontend}}}]\n";

static void test_same_policies_same_hash(void **state)
{
	struct zt_polcanon_set a, b, c;
	const char *one[] = { backend, db };
	const char *two[] = { db_rules_swapped, backend_reordered }; /* other files, other order */
	char both[4096];
	const char *three[] = { both };

	(void)state;
	snprintf(both, sizeof(both), "%s---\n%s", db, backend_reordered); /* one file */
	canon_of(one, 2, &a);
	canon_of(two, 2, &b);
	canon_of(three, 1, &c);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.sha256, b.sha256);
	assert_string_equal(a.sha256, c.sha256);
	assert_string_equal(a.v[0].key, "NetworkPolicy/shop/backend");
	assert_string_equal(a.v[1].key, "ZeroTrustPolicy/shop/db");
	assert_string_equal(a.v[0].json, b.v[0].json);
	/* The form says what matters, sorted. */
	assert_non_null(
		strstr(a.v[0].json, "\"matchLabels\":{\"app\":\"backend\",\"tier\":\"api\"}"));
	assert_non_null(strstr(a.v[0].json, "\"except\":[\"198.18.1.0/24\",\"198.18.5.0/24\"]"));
	assert_null(strstr(a.v[0].json, "f0.yaml")); /* no file names, no positions */
	zt_polcanon_free(&a);
	zt_polcanon_free(&b);
	zt_polcanon_free(&c);
}

struct change {
	const char *from, *to;
};

/* Each of these changes one thing that matters; each must change the hash. */
static const struct change changes[] = {
	{ "port: 8080}, {protocol: UDP", "port: 8081}, {protocol: UDP" },
	{ "app: frontend}}}]\n      ports", "app: frontend2}}}]\n      ports" },
	{ "198.18.5.0/24", "198.18.6.0/24" },
	{ "198.18.0.0/16", "198.18.0.0/15" },
	{ "{protocol: UDP, port: 53}", "{protocol: TCP, port: 53}" },
	{ "tier: api", "tier: web" },
	{ "namespace: shop", "namespace: shop2" },
};

static char *replaced(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(s) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, s, (size_t)(p - s));
	strcpy(out + (p - s), to);
	strcat(out, p + strlen(from));
	return out;
}

static void test_changes_change_hash(void **state)
{
	struct zt_polcanon_set a, b;
	const char *one[] = { backend };

	(void)state;
	canon_of(one, 1, &a);
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		char *t = replaced(backend, changes[i].from, changes[i].to);
		const char *two[] = { t };

		canon_of(two, 1, &b);
		if (!strcmp(a.sha256, b.sha256))
			fail_msg("change %zu (%s -> %s) kept the hash", i, changes[i].from,
				 changes[i].to);
		zt_polcanon_free(&b);
		free(t);
	}
	/* A rule's action and the mode. */
	{
		char *t = replaced(db, "    - action: deny\n", "    - action: allow\n");

		const char *x[] = { db }, *y[] = { t };
		struct zt_polcanon_set c;

		canon_of(x, 1, &b);
		canon_of(y, 1, &c);
		assert_string_not_equal(b.sha256, c.sha256);
		zt_polcanon_free(&b);
		zt_polcanon_free(&c);
		free(t);
		t = replaced(db, "spec:\n", "spec:\n  mode: audit\n");
		y[0] = t;
		canon_of(x, 1, &b);
		canon_of(y, 1, &c);
		assert_string_not_equal(b.sha256, c.sha256);
		assert_non_null(strstr(c.v[0].json, "\"mode\":\"audit\""));
		zt_polcanon_free(&b);
		zt_polcanon_free(&c);
		free(t);
	}
	zt_polcanon_free(&a);
}

struct seen {
	char lines[8][160];
	size_t n;
};

static void record(void *ctx, enum zt_polcanon_change what, const char *key, const char *o,
		   const char *n)
{
	struct seen *s = ctx;

	assert_true(s->n < 8);
	assert_true(what == ZT_PC_ADDED ? !o && n : what == ZT_PC_REMOVED ? o && !n : o && n);
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%c %s",
		 what == ZT_PC_ADDED   ? '+' :
		 what == ZT_PC_REMOVED ? '-' :
					 '~',
		 key);
}

static void test_diff(void **state)
{
	struct zt_polcanon_set a, b, stored = { 0 };
	char *t = replaced(backend, "port: 8080}, {protocol: UDP", "port: 8443}, {protocol: UDP");
	const char *one[] = { backend, db };
	const char *two[] = { t, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
				 "metadata: {name: cache, namespace: shop}\n"
				 "spec: {podSelector: {}}\n" };
	struct seen s = { 0 };

	(void)state;
	canon_of(one, 2, &a);
	canon_of(two, 2, &b);
	assert_int_equal(zt_polcanon_diff(&a, &b, record, &s), 3);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.lines[0], "~ NetworkPolicy/shop/backend");
	assert_string_equal(s.lines[1], "+ NetworkPolicy/shop/cache");
	assert_string_equal(s.lines[2], "- ZeroTrustPolicy/shop/db");
	/* Stored pairs (a node's rows) in any order give back the same set and hash. */
	for (size_t i = a.n; i-- > 0;)
		assert_int_equal(zt_polcanon_add(&stored, a.v[i].key, a.v[i].json), 0);
	zt_polcanon_finish(&stored);
	assert_string_equal(stored.sha256, a.sha256);
	s.n = 0;
	assert_int_equal(zt_polcanon_diff(&a, &stored, record, &s), 0);
	/* An empty set has a hash too, and differs from anything. */
	{
		struct zt_polcanon_set e;

		assert_int_equal(zt_polcanon_build(NULL, 0, &e), 0);
		assert_int_equal(strlen(e.sha256), 64);
		assert_string_not_equal(e.sha256, a.sha256);
		s.n = 0;
		assert_int_equal(zt_polcanon_diff(&e, &a, record, &s), 2);
		zt_polcanon_free(&e);
	}
	zt_polcanon_free(&a);
	zt_polcanon_free(&b);
	zt_polcanon_free(&stored);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_policies_same_hash),
		cmocka_unit_test(test_changes_change_hash),
		cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
