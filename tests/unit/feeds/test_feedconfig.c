// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the feeds: list of the configuration file, valid and hostile. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/config.h"
#include "agent/util.h"

static int load_str(const char *y, struct zt_config *c, char *err, size_t errlen)
{
	return zt_config_load_buf(y, strlen(y), "t.yaml", c, err, errlen);
}

/* The contract of the issue, verbatim. */
static void test_contract(void **state)
{
	static const char y[] =
		"feeds:\n"
		"  - name: spamhaus-drop\n"
		"    url: file:///etc/ztagent/feeds/drop_v4.json\n"
		"    format: spamhaus-json        # cidr | firehol | spamhaus-json | feodo-csv | stix2 | misp | policy\n"
		"    refresh: 1h\n"
		"    direction: both              # source | destination | both\n"
		"    action: block                # block | alert\n"
		"    max_entries: 2000000\n"
		"  - name: advisories\n"
		"    url: https://intel.example/advisories/\n"
		"    format: policy\n"
		"    refresh: 5m\n";
	struct zt_config *c = malloc(sizeof(*c));
	char err[512] = "";

	assert_non_null(c);
	if (load_str(y, c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c->n_feeds, 2);
	assert_string_equal(c->feeds[0].name, "spamhaus-drop");
	assert_string_equal(c->feeds[0].url, "file:///etc/ztagent/feeds/drop_v4.json");
	assert_int_equal(c->feeds[0].format, ZT_FEED_SPAMHAUS_JSON);
	assert_int_equal(c->feeds[0].refresh_ns, 3600000000000ULL);
	assert_int_equal(c->feeds[0].direction, ZT_FEED_BOTH);
	assert_int_equal(c->feeds[0].action, ZT_FEED_BLOCK);
	assert_int_equal(c->feeds[0].max_entries, 2000000);
	/* Defaults of what it does not say. */
	assert_int_equal(c->feeds[0].timeout_ns, 30000000000ULL);
	assert_int_equal(c->feeds[0].max_bytes, 256ULL << 20);
	assert_int_equal(c->feeds[0].max_bad_ppm, 10000);
	assert_int_equal(c->feeds[0].retries, 3);
	assert_string_equal(c->feeds[0].ca_bundle, "");
	assert_string_equal(c->feeds[1].name, "advisories");
	assert_int_equal(c->feeds[1].format, ZT_FEED_POLICY);
	assert_int_equal(c->feeds[1].refresh_ns, 300000000000ULL);
	assert_int_equal(c->feeds[1].direction, ZT_FEED_SOURCE);
	assert_int_equal(c->feeds[1].max_entries, 1000000);
	assert_string_equal(zt_feed_format_name(c->feeds[1].format), "policy");
	assert_string_equal(zt_feed_format_name(ZT_FEED_FORMAT_COUNT), "?");
	free(c);
}

static void test_extras(void **state)
{
	static const char y[] =
		"state_dir: /var/lib/zt\n"
		"feeds:\n"
		"- {name: feodo, url: 'https://feodotracker.abuse.ch/downloads/ipblocklist.csv', format: feodo-csv,\n"
		"   direction: destination, action: alert, ca_bundle: /etc/ssl/abuse.pem,\n"
		"   timeout: 10s, max_bytes: 16MiB, max_bad_fraction: 0.05, retries: 0}\n"
		"- name: dir_feed.v2\n"
		"  url: /etc/ztagent/feeds/stix/\n"
		"  format: stix2\n"
		"  max_bad_fraction: 0.5%\n"
		"- name: plain\n"
		"  url: http://intel.example:8080/list.txt?key=v#frag\n"
		"  format: cidr\n"
		"  max_bad_fraction: 1\n"
		"- name: zero\n"
		"  url: file:///x\n"
		"  format: firehol\n"
		"  max_bad_fraction: 0\n"
		"node: n1\n";
	struct zt_config *c = malloc(sizeof(*c));
	char err[512] = "";

	assert_non_null(c);
	if (load_str(y, c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c->node, "n1"); /* keys after the list still parse */
	assert_int_equal(c->n_feeds, 4);
	assert_int_equal(c->feeds[0].format, ZT_FEED_FEODO_CSV);
	assert_int_equal(c->feeds[0].direction, ZT_FEED_DESTINATION);
	assert_int_equal(c->feeds[0].action, ZT_FEED_ALERT);
	assert_string_equal(c->feeds[0].ca_bundle, "/etc/ssl/abuse.pem");
	assert_int_equal(c->feeds[0].timeout_ns, 10000000000ULL);
	assert_int_equal(c->feeds[0].max_bytes, 16u << 20);
	assert_int_equal(c->feeds[0].max_bad_ppm, 50000);
	assert_int_equal(c->feeds[0].retries, 0);
	assert_int_equal(c->feeds[1].max_bad_ppm, 5000);
	assert_int_equal(c->feeds[1].format, ZT_FEED_STIX2);
	assert_int_equal(c->feeds[2].max_bad_ppm, 1000000);
	assert_int_equal(c->feeds[3].max_bad_ppm, 0);
	/* Each item starts from the defaults, not from the previous item. */
	assert_int_equal(c->feeds[1].retries, 3);
	assert_int_equal(c->feeds[1].action, ZT_FEED_BLOCK);

	/* An empty list, and no list. */
	assert_int_equal(load_str("feeds: []\n", c, err, sizeof(err)), 0);
	assert_int_equal(c->n_feeds, 0);
	assert_int_equal(load_str("feeds:\n", c, err, sizeof(err)), 0);
	assert_int_equal(c->n_feeds, 0);
	free(c);
}

static const struct {
	const char *yaml;
	int r;
	const char *want1, *want2;
} bad[] = {
	{ "feeds:\n  - url: /x\n    format: cidr\n", -EINVAL,
	  "t.yaml:2:5: feeds: this feed has no name", "required" },
	{ "feeds:\n  - name: a\n    format: cidr\n", -EINVAL,
	  "t.yaml:2:5: feeds: this feed has no url", "" },
	{ "feeds:\n  - name: a\n    url: /x\n", -EINVAL,
	  "t.yaml:2:5: feeds: this feed has no format", "cidr, firehol" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr}\n  - {name: a, url: /y, format: cidr}\n",
	  -EINVAL, "t.yaml:3:6: feeds.name: 'a' names two feeds", "" },
	{ "feeds:\n  - name: a\n    name: b\n", -EINVAL, "t.yaml:3:5: feeds.name: duplicate key",
	  "line 2 column 5" },
	{ "feeds:\n  - name: a\n    fromat: cidr\n", -EINVAL,
	  "t.yaml:3:5: unknown key 'feeds.fromat'", "did you mean 'feeds.format'?" },
	{ "feeds:\n  - name: a\n    url: /x\n    format: csv\n", -EINVAL,
	  "t.yaml:4:13: feeds.format: expected cidr, firehol, spamhaus-json, feodo-csv, stix2, misp or policy, got 'csv'",
	  "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, direction: in}\n", -EINVAL,
	  "feeds.direction: expected source, destination or both, got 'in'", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, action: drop}\n", -EINVAL,
	  "feeds.action: expected block or alert, got 'drop'", "" },
	{ "feeds:\n  - {name: a, url: 'http://h/x', format: cidr, ca_bundle: /ca.pem}\n", -EINVAL,
	  "t.yaml:2:48: feeds.ca_bundle: only an https:// feed verifies a certificate", "" },
	{ "feeds:\n  - {name: a, url: 'https://h/x', format: cidr, ca_bundle: ca.pem}\n", -EINVAL,
	  "feeds.ca_bundle: expected an absolute file path", "" },
	{ "feeds:\n  - {name: a, url: 'https://u:p@h/x', format: cidr}\n", -EINVAL,
	  "feeds.url: credentials", "" },
	{ "feeds:\n  - {name: a, url: 'ftp://h/x', format: cidr}\n", -EINVAL,
	  "t.yaml:2:20: feeds.url: expected an https://, http:// or file:/// URL",
	  "got 'ftp://h/x'" },
	{ "feeds:\n  - {name: a, url: 'file://relative', format: cidr}\n", -EINVAL,
	  "feeds.url: expected", "" },
	{ "feeds:\n  - {name: a, url: 'https:///x', format: cidr}\n", -EINVAL,
	  "feeds.url: no host name", "" },
	{ "feeds:\n  - {name: a, url: 'https://h/a b', format: cidr}\n", -EINVAL,
	  "feeds.url: byte 0x20 at offset 11", "percent-encode" },
	{ "feeds:\n  - {name: a, url: 'relative/x', format: cidr}\n", -EINVAL,
	  "feeds.url: expected", "" },
	{ "feeds:\n  - {name: ../a, url: /x, format: cidr}\n", -EINVAL,
	  "feeds.name: expected a name", "got '../a'" },
	{ "feeds:\n  - {name: .a, url: /x, format: cidr}\n", -EINVAL, "feeds.name: expected a name",
	  "" },
	{ "feeds:\n  - {name: '', url: /x, format: cidr}\n", -EINVAL, "feeds.name: expected a name",
	  "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, refresh: 500ms}\n", -ERANGE,
	  "feeds.refresh: expected a duration from 1s to 7d", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, timeout: 0}\n", -ERANGE,
	  "feeds.timeout:", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_entries: 0}\n", -ERANGE,
	  "feeds.max_entries: expected a whole number from 1 to 16777216", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bytes: 1}\n", -ERANGE,
	  "feeds.max_bytes: expected a size from 1KiB to 4GiB", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bad_fraction: 1.5}\n", -EINVAL,
	  "feeds.max_bad_fraction: expected a fraction from 0 to 1", "got '1.5'" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bad_fraction: 101%}\n", -EINVAL,
	  "feeds.max_bad_fraction:", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bad_fraction: 0.0000001}\n", -EINVAL,
	  "at most millionths", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bad_fraction: -0.1}\n", -EINVAL,
	  "feeds.max_bad_fraction:", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, max_bad_fraction: .5}\n", -EINVAL,
	  "feeds.max_bad_fraction:", "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr, retries: 11}\n", -ERANGE,
	  "feeds.retries: expected a whole number from 0 to 10", "" },
	{ "feeds:\n  - {name: a, url: /x, format: policy, direction: both}\n", -EINVAL,
	  "feeds.direction: feed 'a' has format policy", "" },
	{ "feeds:\n  - {name: a, url: /x, format: policy, action: alert}\n", -EINVAL,
	  "feeds.action: feed 'a' has format policy", "" },
	{ "feeds: /x\n", -EINVAL, "t.yaml:1:8: feeds: expected a list of mappings", "got '/x'" },
	{ "feeds: {name: a}\n", -EINVAL, "feeds: expected a list of mappings", "got a mapping" },
	{ "feeds:\n  - a\n", -EINVAL, "t.yaml:2:5: feeds: expected a list of mappings", "got 'a'" },
	{ "feeds:\n  - [a]\n", -EINVAL, "feeds: expected a list of mappings", "got a list" },
	{ "feeds:\n  - {name: [a]}\n", -EINVAL, "feeds.name: expected a single value, got a list",
	  "" },
	{ "feeds:\n  - {name: a, url: /x, format: cidr}\nfeeds: []\n", -EINVAL,
	  "t.yaml:3:1: feeds: duplicate key", "" },
	{ "feeds.name: a\n", -EINVAL, "unknown key 'feeds.name'", "" },
};

static void test_errors(void **state)
{
	struct zt_config *c = malloc(sizeof(*c)), *before = malloc(sizeof(*before));
	char err[512];

	assert_non_null(c);
	assert_non_null(before);
	for (size_t i = 0; i < ZT_ARRAY_SIZE(bad); i++) {
		int r;

		memset(c, 0xa5, sizeof(*c));
		memcpy(before, c, sizeof(*c));
		err[0] = '\0';
		r = load_str(bad[i].yaml, c, err, sizeof(err));
		if (r != bad[i].r || !strstr(err, bad[i].want1) || !strstr(err, bad[i].want2))
			fail_msg("case %zu:\n%s\ngave %d '%s'\nwant %d '%s' ... '%s'", i,
				 bad[i].yaml, r, err, bad[i].r, bad[i].want1, bad[i].want2);
		/* Nothing of a refused file is taken. */
		assert_memory_equal(c, before, sizeof(*c));
	}
	free(c);
	free(before);
}

static void test_feed_count(void **state)
{
	size_t cap = 64 * (ZT_MAX_FEEDS + 1) + 16, o;
	char *y = malloc(cap), err[512];
	struct zt_config *c = malloc(sizeof(*c));

	assert_non_null(y);
	assert_non_null(c);
	o = (size_t)snprintf(y, cap, "feeds:\n");
	for (int i = 0; i < ZT_MAX_FEEDS; i++)
		o += (size_t)snprintf(y + o, cap - o, "- {name: f%d, url: /f%d, format: cidr}\n", i,
				      i);
	assert_int_equal(load_str(y, c, err, sizeof(err)), 0);
	assert_int_equal(c->n_feeds, ZT_MAX_FEEDS);
	assert_string_equal(c->feeds[ZT_MAX_FEEDS - 1].name, "f31");
	snprintf(y + o, cap - o, "- {name: one-more, url: /x, format: cidr}\n");
	assert_int_equal(load_str(y, c, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "feeds: more than 32 items"));
	assert_non_null(strstr(err, ":34:"));
	free(c);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_extras),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_feed_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
