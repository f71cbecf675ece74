// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the mtls: section of the agent's configuration (defaults, the contract, refusals). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "agent/config.h"

static int load(const char *yaml, struct zt_config *c, char *err, size_t n)
{
	return zt_config_load_buf(yaml, strlen(yaml), "t.yaml", c, err, n);
}

static void test_defaults(void **state)
{
	struct zt_config c;

	zt_config_defaults(&c);
	assert_int_equal(c.mtls.mode, ZT_MTLS_MODE_POLICY);
	assert_string_equal(c.mtls.trust_domain, "cluster.local");
	assert_string_equal(c.mtls.ca_bundle, "/etc/ztagent/ca/bundle.pem");
	assert_string_equal(c.mtls.node_cert, "/etc/ztagent/ca/node.pem");
	assert_string_equal(c.mtls.node_key, "/etc/ztagent/ca/node.key");
	assert_int_equal(c.mtls.svid_ttl_ns, 3600ULL * 1000000000ULL);
	assert_int_equal(c.mtls.port, 15008);
}

static void test_contract(void **state)
{
	/* the contract, verbatim */
	static const char yaml[] = "mtls:\n"
				   "  mode: strict\n"
				   "  trust_domain: prod.example\n"
				   "  ca_bundle: /srv/ca/bundle.pem\n"
				   "  node_cert: /srv/ca/node.pem\n"
				   "  node_key: /srv/ca/node.key\n"
				   "  svid_ttl: 90s\n"
				   "  port: 15009\n";
	struct zt_config c;
	char err[512];

	assert_int_equal(load(yaml, &c, err, sizeof(err)), 0);
	assert_int_equal(c.mtls.mode, ZT_MTLS_MODE_STRICT);
	assert_string_equal(c.mtls.trust_domain, "prod.example");
	assert_string_equal(c.mtls.ca_bundle, "/srv/ca/bundle.pem");
	assert_string_equal(c.mtls.node_cert, "/srv/ca/node.pem");
	assert_string_equal(c.mtls.node_key, "/srv/ca/node.key");
	assert_int_equal(c.mtls.svid_ttl_ns, 90ULL * 1000000000ULL);
	assert_int_equal(c.mtls.port, 15009);
	assert_int_equal(load("mtls:\n  mode: off\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.mtls.mode, ZT_MTLS_MODE_OFF);
	assert_int_equal(c.mtls.port, 15008);
}

/* mtls.peers: "POD_CIDR=AGENT_ADDR[:PORT]", checked at load, read by zt_mtls_peer_parse. */
static void test_peers(void **state)
{
	static const char *const bad[] = {
		"198.18.2.0/24", /* no agent */
		"198.18.2.0=198.18.101.1", /* no prefix length */
		"198.18.2.1/24=198.18.101.1", /* host bits set */
		"198.18.2.0/33=198.18.101.1",
		"198.18.2.0/24=198.18.101.1:0",
		"198.18.2.0/24=198.18.101.1:65536",
		"198.18.2.0/24=node-b",
		"2001:db8::1/64=198.18.101.1", /* host bits set */
		"2001:db8::/129=198.18.101.1",
		"2001:db8::/64=2001:db8::1", /* an IPv6 agent goes in brackets */
		"2001:db8::/64=2001:db8::1:15008",
		"2001:db8::/64=198.18.101.1:0",
		"198.18.2.0/24=2001:db8::1",
		"198.18.2.0/24=[2001:db8::1",
		"198.18.2.0/24=[2001:db8::1]15008",
		"198.18.2.0/24=[2001:db8::1]:",
		"198.18.2.0/24=[2001:db8::1]:0",
		"198.18.2.0/24=[2001:db8::1]:65536",
		"198.18.2.0/24=[198.18.101.1]", /* brackets are for IPv6 */
		"198.18.2.0/24=[::ffff:198.18.101.1]", /* an IPv4 agent is written as such */
		"198.18.2.0/24=[fe80::1%eth0]",
		"198.18.2.0/24=[]:15008",
		"198.18.2.0/ 24=198.18.101.1", /* strtoul would skip the space */
		"198.18.2.0/+24=198.18.101.1",
		"198.18.2.0/24=198.18.101.1:+80",
		"198.18.2.0/24=198.18.101.1:",
		"2001:db8::/-0=198.18.101.1",
	};
	struct zt_config c;
	struct zt_mtls_peer p;
	struct zt_mtls_peer6 p6;
	char err[512], yaml[256];

	(void)state;
	assert_int_equal(load("mtls:\n  peers: [\"198.18.2.0/24=198.18.101.1\", "
			      "\"198.18.4.0/23=198.18.102.1:16000\"]\n",
			      &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.mtls.n_peers, 2);
	assert_int_equal(zt_mtls_peer_parse(c.mtls.peers[1], &p), 0);
	assert_int_equal(p.plen, 23);
	assert_int_equal(p.port, 16000);
	assert_int_equal(p.net, htonl(0xc6120400));
	assert_int_equal(p.agent.family, AF_INET);
	assert_memory_equal(p.agent.addr, ((const uint8_t[4]){ 198, 18, 102, 1 }), 4);
	assert_int_equal(zt_mtls_peer_parse(c.mtls.peers[0], &p), 0);
	assert_int_equal(p.port, 0); /* mtls.port */
	/* An IPv6 pod CIDR: its own reader; an IPv4 agent for it. */
	assert_int_equal(load("mtls:\n  peers: [\"2001:db8:0:2::/64=198.18.101.1:16000\"]\n", &c,
			      err, sizeof(err)),
			 0);
	assert_int_equal(c.mtls.n_peers, 1);
	assert_int_equal(zt_mtls_peer_parse(c.mtls.peers[0], &p), -EINVAL);
	assert_int_equal(zt_mtls_peer6_parse(c.mtls.peers[0], &p6), 0);
	assert_int_equal(p6.plen, 64);
	assert_int_equal(p6.port, 16000);
	assert_int_equal(p6.agent.family, AF_INET);
	assert_memory_equal(p6.agent.addr, ((const uint8_t[4]){ 198, 18, 101, 1 }), 4);
	assert_memory_equal(p6.net, ((const uint8_t[16]){ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2 }),
			    16);
	/* IPv6 agents (an IPv6-only node network), in brackets, with or without a port. */
	assert_int_equal(load("mtls:\n  peers: [\"2001:db8:0:2::/64=[2001:db8:0:101::1]:16000\", "
			      "\"198.18.2.0/24=[2001:db8:0:101::1]\"]\n",
			      &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.mtls.n_peers, 2);
	assert_int_equal(zt_mtls_peer6_parse(c.mtls.peers[0], &p6), 0);
	assert_int_equal(p6.agent.family, AF_INET6);
	assert_int_equal(p6.port, 16000);
	assert_memory_equal(p6.agent.addr,
			    ((const uint8_t[16]){ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x01, 0x01, 0, 0, 0,
						  0, 0, 0, 0, 1 }),
			    16);
	assert_int_equal(zt_mtls_peer_parse(c.mtls.peers[1], &p), 0);
	assert_int_equal(p.agent.family, AF_INET6);
	assert_int_equal(p.port, 0);
	assert_int_equal(p.plen, 24);
	assert_memory_equal(p.agent.addr, p6.agent.addr, 16);
	/* The longest entry fits the configuration's field. */
	assert_int_equal(load("mtls:\n  peers: [\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:0/112="
			      "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535\"]\n",
			      &c, err, sizeof(err)),
			 0);
	assert_int_equal(zt_mtls_peer6_parse(c.mtls.peers[0], &p6), 0);
	assert_int_equal(p6.port, 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "mtls:\n  peers: [\"%s\"]\n", bad[i]);
		err[0] = '\0';
		assert_int_equal(load(yaml, &c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "mtls.peers: expected POD_CIDR=AGENT_ADDR[:PORT]"));
	}
}

static void test_refusals(void **state)
{
	static const struct {
		const char *yaml, *msg;
	} bad[] = {
		{ "mtls:\n  mode: on\n", "t.yaml:2:9: mtls.mode: expected off, policy or strict" },
		{ "mtls:\n  trust_domain: Cluster.Local\n", "t.yaml:2:17: mtls.trust_domain:" },
		{ "mtls:\n  trust_domain: \"\"\n", "mtls.trust_domain:" },
		{ "mtls:\n  trust_domain: spiffe://cluster.local\n", "mtls.trust_domain:" },
		{ "mtls:\n  ca_bundle: bundle.pem\n",
		  "mtls.ca_bundle: expected an absolute file path" },
		{ "mtls:\n  node_key: /etc/ztagent/ca/\n",
		  "mtls.node_key: expected an absolute file" },
		{ "mtls:\n  svid_ttl: 5s\n", "mtls.svid_ttl: expected a duration from 10s to 7d" },
		{ "mtls:\n  svid_ttl: 30d\n", "mtls.svid_ttl:" },
		{ "mtls:\n  port: 0\n", "mtls.port: expected a whole number from 1 to 65535" },
		{ "mtls:\n  port: 70000\n", "mtls.port:" },
		{ "mtls:\n  ttl: 1h\n", "unknown key 'mtls.ttl'" },
		{ "mtls:\n  mode: policy\n  mode: strict\n", "mtls.mode: duplicate key" },
	};
	struct zt_config c;

	zt_config_defaults(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "";

		if (load(bad[i].yaml, &c, err, sizeof(err)) >= 0)
			fail_msg("accepted: %s", bad[i].yaml);
		if (!strstr(err, bad[i].msg))
			fail_msg("for %s: message '%s' lacks '%s'", bad[i].yaml, err, bad[i].msg);
	}
	/* the last good state stays */
	assert_int_equal(c.mtls.port, 15008);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_peers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
