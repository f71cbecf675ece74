// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: label syntax, label selectors, namespace selectors, peers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "seg/selector.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABELS(...)                                                                              \
	{                                                                                        \
		.v = (const struct zt_label[]){ __VA_ARGS__ },                                   \
		.n = sizeof((const struct zt_label[]){ __VA_ARGS__ }) / sizeof(struct zt_label), \
	}
#define VALUES(...) (const char *const[]){ __VA_ARGS__ }, N(((const char *const[]){ __VA_ARGS__ }))

static const char s63[] = "a23456789012345678901234567890123456789012345678901234567890123";
static const char s64[] = "a234567890123456789012345678901234567890123456789012345678901234";

static void test_label_keys(void **state)
{
	char long_prefix[320];
	char ok_prefix[300];
	const struct {
		const char *key;
		bool ok;
	} cases[] = {
		{ "app", true },
		{ "a", true },
		{ "9", true },
		{ "app.kubernetes.io/name", true },
		{ "kubernetes.io/metadata.name", true },
		{ "example.com/My_Key.v2", true },
		{ "a-b_c.d", true },
		{ "APP", true },
		{ s63, true },
		{ s64, false },
		{ "", false },
		{ "-app", false },
		{ "app-", false },
		{ "_app", false },
		{ "app.", false },
		{ "a b", false },
		{ "app!", false },
		{ "/app", false }, /* empty prefix */
		{ "example.com/", false }, /* empty name */
		{ "a/b/c", false }, /* two slashes */
		{ "Example.com/app", false }, /* prefix must be lowercase */
		{ "-example.com/app", false },
		{ "example..com/app", false },
		{ "exa_mple.com/app", false },
		{ "ünicode", false },
	};
	const char *why;

	for (size_t i = 0; i < N(cases); i++) {
		int r = zt_label_key_check(cases[i].key, &why);

		if ((r == 0) != cases[i].ok)
			fail_msg("key '%s': got %d, want %s", cases[i].key, r,
				 cases[i].ok ? "valid" : "invalid");
		if (r < 0)
			assert_int_equal(r, -EINVAL);
	}
	/* A prefix of 253 is fine, 254 is not (labels of 63 chars separated by dots). */
	memset(ok_prefix, 0, sizeof(ok_prefix));
	for (size_t o = 0; o < 253;) {
		size_t take = 253 - o >= 64 ? 63 : 253 - o;

		memset(ok_prefix + o, 'a', take);
		o += take;
		if (o < 253)
			ok_prefix[o++] = '.';
	}
	assert_int_equal(strlen(ok_prefix), 253);
	snprintf(long_prefix, sizeof(long_prefix), "%s/app", ok_prefix);
	assert_int_equal(zt_label_key_check(long_prefix, NULL), 0);
	snprintf(long_prefix, sizeof(long_prefix), "a%s/app", ok_prefix);
	assert_int_equal(zt_label_key_check(long_prefix, &why), -EINVAL);
	assert_non_null(strstr(why, "253"));
}

static void test_label_values(void **state)
{
	const struct {
		const char *v;
		bool ok;
	} cases[] = {
		{ "", true },	    { "web", true },   { "v1.2.3", true }, { "A_b-c.D", true },
		{ "1", true },	    { s63, true },     { s64, false },	   { "-web", false },
		{ "web-", false },  { ".web", false }, { "a/b", false },   { "a b", false },
		{ "web\n", false }, { "über", false },
	};

	for (size_t i = 0; i < N(cases); i++) {
		const char *why = NULL;
		int r = zt_label_value_check(cases[i].v, &why);

		if ((r == 0) != cases[i].ok)
			fail_msg("value '%s': got %d, want %s", cases[i].v, r,
				 cases[i].ok ? "valid" : "invalid");
		if (r < 0)
			assert_non_null(why);
	}
}

static void test_dns_names(void **state)
{
	const struct {
		const char *s;
		bool label_ok, subdomain_ok;
	} cases[] = {
		{ "default", true, true },
		{ "kube-system", true, true },
		{ "a", true, true },
		{ "0abc", true, true },
		{ "my.policy", false, true },
		{ "Prod", false, false },
		{ "prod_1", false, false },
		{ "-prod", false, false },
		{ "prod-", false, false },
		{ "a..b", false, false },
		{ ".a", false, false },
		{ "", false, false },
		{ s63, true, true },
		{ s64, false, false }, /* each dot-separated part is at most 63 too */
	};

	for (size_t i = 0; i < N(cases); i++) {
		bool l = zt_dns_label_check(cases[i].s, NULL) == 0;
		bool sd = zt_dns_subdomain_check(cases[i].s, NULL) == 0;

		if (l != cases[i].label_ok || sd != cases[i].subdomain_ok)
			fail_msg("'%s': label %d subdomain %d", cases[i].s, l, sd);
	}
}

static void test_labels_check(void **state)
{
	const struct zt_labels ok = LABELS({ "app", "web" }, { "tier", "" });
	const struct zt_labels dup = LABELS({ "app", "web" }, { "tier", "" }, { "app", "db" });
	const struct zt_labels badv = LABELS({ "app", "web" }, { "tier", "front end" });
	const char *why = NULL;
	size_t bad = 99;

	assert_int_equal(zt_labels_check(&ok, &bad, &why), 0);
	assert_int_equal(zt_labels_check(&dup, &bad, &why), -EINVAL);
	assert_int_equal(bad, 2);
	assert_non_null(strstr(why, "twice"));
	assert_int_equal(zt_labels_check(&badv, &bad, &why), -EINVAL);
	assert_int_equal(bad, 1);
	assert_string_equal(zt_labels_get(&ok, "tier"), "");
	assert_null(zt_labels_get(&ok, "nope"));
}

static void test_ops(void **state)
{
	const char *const names[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	enum zt_sel_op op;

	for (size_t i = 0; i < N(names); i++) {
		assert_int_equal(zt_sel_op_parse(names[i], &op), 0);
		assert_int_equal(op, (enum zt_sel_op)i);
		assert_string_equal(zt_sel_op_name(op), names[i]);
	}
	assert_int_equal(zt_sel_op_parse("in", &op), -EINVAL);
	assert_int_equal(zt_sel_op_parse("Gt", &op), -EINVAL);
	assert_int_equal(zt_sel_op_parse("", &op), -EINVAL);
}

/* Selectors used by the tables below. */
static const struct zt_selector sel_all = { 0 };
static const struct zt_selector sel_app_web = { .match_labels = LABELS({ "app", "web" }) };
static const struct zt_selector sel_app_web_tier_fe = {
	.match_labels = LABELS({ "app", "web" }, { "tier", "frontend" }),
};
static const struct zt_selector sel_empty_value = { .match_labels = LABELS({ "canary", "" }) };
static const struct zt_selector sel_in = {
	.exprs = (const struct zt_sel_expr[]){ { "env", ZT_SEL_IN, VALUES("prod", "staging") } },
	.n_exprs = 1,
};
static const struct zt_selector sel_notin = {
	.exprs = (const struct zt_sel_expr[]){ { "env", ZT_SEL_NOT_IN, VALUES("dev") } },
	.n_exprs = 1,
};
static const struct zt_selector sel_exists = {
	.exprs = (const struct zt_sel_expr[]){ { "env", ZT_SEL_EXISTS, NULL, 0 } },
	.n_exprs = 1,
};
static const struct zt_selector sel_dne = {
	.exprs = (const struct zt_sel_expr[]){ { "env", ZT_SEL_DOES_NOT_EXIST, NULL, 0 } },
	.n_exprs = 1,
};
/* The Kubernetes documentation's example: matchLabels AND two expressions. */
static const struct zt_selector sel_mixed = {
	.match_labels = LABELS({ "app", "web" }),
	.exprs =
		(const struct zt_sel_expr[]){
			{ "tier", ZT_SEL_IN, VALUES("frontend", "cache") },
			{ "environment", ZT_SEL_NOT_IN, VALUES("dev") },
		},
	.n_exprs = 2,
};

static void test_selector_table(void **state)
{
	const struct zt_labels none = { 0 };
	const struct zt_labels web = LABELS({ "app", "web" });
	const struct zt_labels web_fe = LABELS({ "app", "web" }, { "tier", "frontend" });
	const struct zt_labels web_cache_dev =
		LABELS({ "app", "web" }, { "tier", "cache" }, { "environment", "dev" });
	const struct zt_labels web_cache_prod =
		LABELS({ "app", "web" }, { "tier", "cache" }, { "environment", "prod" });
	const struct zt_labels db = LABELS({ "app", "db" });
	const struct zt_labels prod = LABELS({ "env", "prod" });
	const struct zt_labels dev = LABELS({ "env", "dev" });
	const struct zt_labels env_empty = LABELS({ "env", "" });
	const struct zt_labels canary = LABELS({ "canary", "" });
	const struct zt_labels canary_yes = LABELS({ "canary", "yes" });
	const struct zt_labels upper = LABELS({ "App", "web" });
	const struct zt_labels webcase = LABELS({ "app", "Web" });
	const struct {
		const char *what;
		const struct zt_selector *s;
		const struct zt_labels *l;
		bool want;
	} cases[] = {
		{ "{} matches no labels", &sel_all, &none, true },
		{ "{} matches anything", &sel_all, &web_cache_dev, true },
		{ "matchLabels exact", &sel_app_web, &web, true },
		{ "matchLabels superset", &sel_app_web, &web_fe, true },
		{ "matchLabels other value", &sel_app_web, &db, false },
		{ "matchLabels absent key", &sel_app_web, &none, false },
		{ "matchLabels keys are case-sensitive", &sel_app_web, &upper, false },
		{ "matchLabels values are case-sensitive", &sel_app_web, &webcase, false },
		{ "matchLabels all must hold", &sel_app_web_tier_fe, &web, false },
		{ "matchLabels all hold", &sel_app_web_tier_fe, &web_fe, true },
		{ "matchLabels empty value", &sel_empty_value, &canary, true },
		{ "matchLabels empty value vs set", &sel_empty_value, &canary_yes, false },
		{ "In hit", &sel_in, &prod, true },
		{ "In miss", &sel_in, &dev, false },
		{ "In absent", &sel_in, &none, false },
		{ "In empty value", &sel_in, &env_empty, false },
		{ "NotIn listed", &sel_notin, &dev, false },
		{ "NotIn other", &sel_notin, &prod, true },
		{ "NotIn absent key matches", &sel_notin, &none, true },
		{ "Exists present", &sel_exists, &prod, true },
		{ "Exists empty value", &sel_exists, &env_empty, true },
		{ "Exists absent", &sel_exists, &web, false },
		{ "DoesNotExist absent", &sel_dne, &web, true },
		{ "DoesNotExist present", &sel_dne, &prod, false },
		{ "DoesNotExist empty value", &sel_dne, &env_empty, false },
		{ "mixed: frontend", &sel_mixed, &web_fe, true },
		{ "mixed: cache in dev", &sel_mixed, &web_cache_dev, false },
		{ "mixed: cache in prod", &sel_mixed, &web_cache_prod, true },
		{ "mixed: wrong app", &sel_mixed, &db, false },
	};

	for (size_t i = 0; i < N(cases); i++)
		if (zt_selector_matches(cases[i].s, cases[i].l) != cases[i].want)
			fail_msg("%s: want %s", cases[i].what,
				 cases[i].want ? "match" : "no match");
	assert_true(zt_selector_is_empty(&sel_all));
	assert_false(zt_selector_is_empty(&sel_in));
	assert_false(zt_selector_is_empty(&sel_app_web));
}

static void test_ns_selector(void **state)
{
	const struct zt_selector by_name = {
		.match_labels = LABELS({ ZT_NS_NAME_LABEL, "prod" }),
	};
	const struct zt_selector by_name_in = {
		.exprs = (const struct zt_sel_expr[]){ { ZT_NS_NAME_LABEL, ZT_SEL_IN,
							 VALUES("prod", "staging") } },
		.n_exprs = 1,
	};
	const struct zt_selector team = { .match_labels = LABELS({ "team", "a" }) };
	const struct zt_labels none = { 0 };
	const struct zt_labels team_a = LABELS({ "team", "a" });
	/* A namespace cannot pretend to be another through its labels. */
	const struct zt_labels liar = LABELS({ ZT_NS_NAME_LABEL, "prod" });
	const struct {
		const struct zt_selector *s;
		const char *ns;
		const struct zt_labels *l;
		bool want;
	} cases[] = {
		{ &by_name, "prod", &none, true },    { &by_name, "dev", &none, false },
		{ &by_name, "dev", &liar, false },    { &by_name_in, "staging", &none, true },
		{ &by_name_in, "dev", &none, false }, { &team, "dev", &team_a, true },
		{ &team, "prod", &none, false },      { &sel_all, "anything", &none, true },
		{ &sel_dne, "prod", &none, true },
	};

	for (size_t i = 0; i < N(cases); i++)
		if (zt_ns_selector_matches(cases[i].s, cases[i].ns, cases[i].l) != cases[i].want)
			fail_msg("case %zu (ns %s): want %d", i, cases[i].ns, cases[i].want);
	/* Pod selectors see no implied label. */
	assert_false(zt_selector_matches(&by_name, &none));
}

static void test_peer_selects(void **state)
{
	const struct zt_selector role_client = {
		.match_labels = LABELS({ "role", "client" }),
	};
	const struct zt_selector user_alice = {
		.match_labels = LABELS({ "user", "alice" }),
	};
	const struct zt_label_set alice_client = {
		.namespace = "alice",
		.labels = LABELS({ "role", "client" }),
		.ns_labels = LABELS({ "user", "alice" }),
	};
	const struct zt_label_set alice_server = {
		.namespace = "alice",
		.labels = LABELS({ "role", "server" }),
		.ns_labels = LABELS({ "user", "alice" }),
	};
	const struct zt_label_set bob_client = {
		.namespace = "bob",
		.labels = LABELS({ "role", "client" }),
		.ns_labels = LABELS({ "user", "bob" }),
	};
	const struct zt_label_set default_client = {
		.namespace = "default",
		.labels = LABELS({ "role", "client" }),
	};
	const struct {
		const char *what;
		const struct zt_selector *pod, *ns;
		const struct zt_label_set *w;
		bool want;
	} cases[] = {
		/* podSelector alone: the policy's own namespace only. */
		{ "pod only, same ns", &role_client, NULL, &default_client, true },
		{ "pod only, other ns", &role_client, NULL, &alice_client, false },
		{ "pod {} only: every pod of own ns", &sel_all, NULL, &default_client, true },
		{ "pod {} only: not other ns", &sel_all, NULL, &bob_client, false },
		/* namespaceSelector alone: every pod of matching namespaces. */
		{ "ns only, match", NULL, &user_alice, &alice_server, true },
		{ "ns only, no match", NULL, &user_alice, &bob_client, false },
		{ "ns only, own ns not implied", NULL, &user_alice, &default_client, false },
		{ "ns {}: every namespace", NULL, &sel_all, &bob_client, true },
		/* Both in one peer: AND. */
		{ "AND: both hold", &role_client, &user_alice, &alice_client, true },
		{ "AND: pod fails", &role_client, &user_alice, &alice_server, false },
		{ "AND: ns fails", &role_client, &user_alice, &bob_client, false },
		{ "AND: pod {} in alice", &sel_all, &user_alice, &alice_server, true },
		{ "neither: never", NULL, NULL, &default_client, false },
	};

	for (size_t i = 0; i < N(cases); i++)
		if (zt_peer_selects(cases[i].pod, cases[i].ns, "default", cases[i].w) !=
		    cases[i].want)
			fail_msg("%s: want %d", cases[i].what, cases[i].want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_keys),  cmocka_unit_test(test_label_values),
		cmocka_unit_test(test_dns_names),   cmocka_unit_test(test_labels_check),
		cmocka_unit_test(test_ops),	    cmocka_unit_test(test_selector_table),
		cmocka_unit_test(test_ns_selector), cmocka_unit_test(test_peer_selects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
