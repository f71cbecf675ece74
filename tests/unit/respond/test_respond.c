// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the response policy. TTL doubling for a source that returns
 * (up to the cap, and starting over after a long quiet), modes per
 * detector and the global cap, and the addresses never blocked: protected
 * CIDRs, special-purpose ranges, the node's own addresses and gateways,
 * the allowlist.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "respond/respond.h"

#define SEC 1000000000ULL

static uint8_t allowed[4]; /* the fake allowlist: one address */

static int fake_allowlisted(void *ctx, uint8_t family, const uint8_t *addr)
{
	(*(int *)ctx)++;
	return family == 4 && !memcmp(addr, allowed, 4);
}

static void mk(struct zt_decision *d, enum zt_threat t, const char *a)
{
	uint8_t b[16] = { 0 };

	inet_pton(AF_INET, a, b);
	zt_decision_init(d, t, ZT_ROLE_SOURCE, 4, b, 0);
	d->score = 0.99f;
}

static struct zt_respond *mk_resp(int *asked)
{
	struct zt_respond_cfg c;
	struct zt_respond *r;
	struct zt_cidr prot[2];

	zt_respond_cfg_defaults(&c);
	c.block_ttl_ns = 600 * SEC;
	zt_cidr_parse("10.96.0.0/12", &prot[0], NULL);
	zt_cidr_parse("198.18.7.0/24", &prot[1], NULL);
	c.protected_cidrs = prot;
	c.n_protected = 2;
	assert_int_equal(zt_respond_new(&c, fake_allowlisted, asked, &r), 0);
	return r;
}

/* A source that returns after its block ended gets twice the TTL, up to 24 h. */
static void test_ttl_doubling(void **state)
{
	int asked = 0;
	struct zt_respond *r = mk_resp(&asked);
	struct zt_decision d;
	struct zt_resp_action a;
	uint64_t now = 1000 * SEC, want = 600 * SEC;

	mk(&d, ZT_THREAT_BRUTEFORCE, "203.0.113.9");
	for (int k = 1; k <= 10; k++) {
		zt_respond_decide(r, &d, now, &a);
		assert_int_equal(a.act, ZT_RA_BLOCK);
		assert_int_equal(a.offence, k);
		assert_int_equal(a.ttl_ns, want);
		assert_int_equal(a.until_ns, now + want);
		/* While the block is in force: "already", nothing written again. */
		zt_respond_decide(r, &d, now + a.ttl_ns / 2, &a);
		assert_int_equal(a.act, ZT_RA_ALREADY);
		now += want + 1 * SEC; /* returns just after its block ended */
		want = want * 2 > 86400 * SEC ? 86400 * SEC : want * 2;
	}
	/* Capped at 24 h from the 9th offence on (600 s x 2^8 > 86400 s). */
	assert_int_equal(a.ttl_ns, 86400 * SEC);
	/* Quiet for more than 2 x 24 h after its last block: starts over. */
	now += 3 * 86400 * SEC;
	zt_respond_decide(r, &d, now, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	assert_int_equal(a.offence, 1);
	assert_int_equal(a.ttl_ns, 600 * SEC);
	/* Another source is its own story. */
	mk(&d, ZT_THREAT_SCAN, "203.0.113.10");
	zt_respond_decide(r, &d, now, &a);
	assert_int_equal(a.offence, 1);
	zt_respond_free(r);
}

/* Evidence from before the block ended (lingering connections) is not a return. */
static void test_stale_evidence(void **state)
{
	int asked = 0;
	struct zt_respond *r = mk_resp(&asked);
	struct zt_decision d;
	struct zt_resp_action a;

	mk(&d, ZT_THREAT_SLOWCONN, "203.0.113.12");
	d.ts_ns = 100 * SEC;
	zt_respond_decide(r, &d, 101 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	/* The block (600 s) is over; the connections seen then are still in conntrack. */
	zt_respond_decide(r, &d, 800 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALREADY);
	d.ts_ns = 650 * SEC; /* activity during the block: the server's side, not a return */
	zt_respond_decide(r, &d, 800 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALREADY);
	/* Sessions that started during the block and ended after it: the server closing them. */
	d.ts_ns = 790 * SEC;
	d.latest_start_ns = 650 * SEC;
	zt_respond_decide(r, &d, 800 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALREADY);
	d.latest_start_ns = 0; /* unknown: its time stands in */
	zt_respond_decide(r, &d, 801 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK); /* after it ended: it came back */
	assert_int_equal(a.act, ZT_RA_BLOCK);
	assert_int_equal(a.offence, 2);
	assert_int_equal(a.ttl_ns, 1200 * SEC);
	zt_respond_free(r);
}

/* A block that could not be written leaves no offence behind. */
static void test_undo(void **state)
{
	int asked = 0;
	struct zt_respond *r = mk_resp(&asked);
	struct zt_decision d;
	struct zt_resp_action a;

	mk(&d, ZT_THREAT_SCAN, "203.0.113.11");
	zt_respond_decide(r, &d, 5 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	zt_respond_undo(r, &a);
	zt_respond_decide(r, &d, 6 * SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	assert_int_equal(a.offence, 1);
	zt_respond_free(r);
}

/* Never blocked, whatever the detector: each list, named, counted. */
static void test_never_blocked(void **state)
{
	static const struct {
		const char *addr;
		const char *list; /* NULL: blocked */
	} t[] = {
		{ "10.100.3.4", "protected" },
		{ "198.18.7.200", "protected" },
		{ "127.0.0.1", "special-purpose" },
		{ "169.254.169.254", "special-purpose" },
		{ "224.0.0.251", "special-purpose" },
		{ "198.18.0.2", "node" },
		{ "198.18.0.254", "gateway" },
		{ "198.51.100.77", "allowlist" },
		{ "198.18.8.1", NULL },
		{ "10.95.255.255", NULL },
	};
	int asked = 0;
	struct zt_respond *r = mk_resp(&asked);
	struct zt_respond_stats st;
	struct zt_cidr node, gw;

	inet_pton(AF_INET, "198.51.100.77", allowed);
	zt_cidr_parse("198.18.0.2", &node, NULL);
	zt_cidr_parse("198.18.0.254", &gw, NULL);
	assert_int_equal(zt_respond_set_node(r, &node, 1, &gw, 1), 0);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct zt_decision d;
		struct zt_resp_action a;

		for (int th = ZT_THREAT_SCAN; th <= ZT_THREAT_SLOWCONN; th++) {
			mk(&d, th, t[i].addr);
			zt_respond_decide(r, &d, 10 * SEC, &a);
			if (t[i].list) {
				if (a.act != ZT_RA_REFUSED || strcmp(a.why, t[i].list))
					fail_msg("%s: act %s why %s, want refused by %s", t[i].addr,
						 zt_resp_act_name(a.act), a.why, t[i].list);
			} else if (a.act != ZT_RA_BLOCK && a.act != ZT_RA_ALREADY) {
				fail_msg("%s: act %s, want a block", t[i].addr,
					 zt_resp_act_name(a.act));
			}
		}
	}
	zt_respond_get_stats(r, &st);
	assert_int_equal(st.refused_protected, 2 * 4);
	assert_int_equal(st.refused_special, 3 * 4);
	assert_int_equal(st.refused_node, 4);
	assert_int_equal(st.refused_gateway, 4);
	assert_int_equal(st.refused_allowlist, 4);
	assert_true(asked > 0);
	zt_respond_free(r);
}

/* Modes: per detector, capped by response.mode; victims and workloads are special. */
static void test_modes(void **state)
{
	struct zt_respond_cfg c;
	struct zt_respond *r;
	struct zt_decision d;
	struct zt_resp_action a;

	zt_respond_cfg_defaults(&c);
	c.detector_mode[ZT_THREAT_SCAN] = ZT_RESP_OFF;
	assert_int_equal(zt_respond_new(&c, NULL, NULL, &r), 0);
	mk(&d, ZT_THREAT_SCAN, "203.0.113.20");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_NONE);
	mk(&d, ZT_THREAT_FLOOD, "203.0.113.20");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	/* Exfiltration and the model alert by default. */
	mk(&d, ZT_THREAT_EXFIL, "198.18.2.10");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALERT);
	mk(&d, ZT_THREAT_MODEL, "203.0.113.21");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALERT);
	/* A victim of a random-source flood is never blocked. */
	mk(&d, ZT_THREAT_FLOOD, "198.18.2.11");
	d.role = ZT_ROLE_DESTINATION;
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALERT);
	zt_respond_free(r);

	/* response.mode alert: nothing is blocked, whatever the detectors say. */
	zt_respond_cfg_defaults(&c);
	c.mode = ZT_RESP_ALERT;
	assert_int_equal(zt_respond_new(&c, NULL, NULL, &r), 0);
	mk(&d, ZT_THREAT_BRUTEFORCE, "203.0.113.22");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALERT);
	assert_int_equal(a.mode, ZT_RESP_ALERT);
	zt_respond_free(r);

	/* Exfiltration set to block: its outside destination is what gets blocked. */
	zt_respond_cfg_defaults(&c);
	c.detector_mode[ZT_THREAT_EXFIL] = ZT_RESP_BLOCK;
	assert_int_equal(zt_respond_new(&c, NULL, NULL, &r), 0);
	mk(&d, ZT_THREAT_EXFIL, "198.18.2.10");
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_ALERT); /* no single destination */
	inet_pton(AF_INET, "192.0.2.99", d.peer);
	d.has_peer = true;
	zt_respond_decide(r, &d, SEC, &a);
	assert_int_equal(a.act, ZT_RA_BLOCK);
	assert_memory_equal(a.addr, d.peer, 4);
	zt_respond_free(r);
}

/* The node's addresses and gateways as this namespace has them. */
static uint8_t pod[4]; /* the fake node's one endpoint */

static int fake_endpoint(void *ctx, uint8_t family, const uint8_t *addr)
{
	(void)ctx;
	return family == 4 && !memcmp(addr, pod, 4);
}

/* A pod of this node: an alert by default, a block with response.endpoints: block. */
static void test_endpoints(void **state)
{
	struct zt_respond_cfg c;
	struct zt_respond *r;
	struct zt_decision d;
	struct zt_resp_action a;
	int asked = 0;

	inet_pton(AF_INET, "198.18.2.50", pod);
	for (int block = 0; block < 2; block++) {
		zt_respond_cfg_defaults(&c);
		if (block)
			c.endpoints_mode = ZT_RESP_BLOCK;
		assert_int_equal(zt_respond_new(&c, fake_allowlisted, &asked, &r), 0);
		zt_respond_set_endpoint_fn(r, fake_endpoint);
		mk(&d, ZT_THREAT_SCAN, "198.18.2.50");
		zt_respond_decide(r, &d, 10 * SEC, &a);
		if (block) {
			assert_int_equal(a.act, ZT_RA_BLOCK);
		} else {
			assert_int_equal(a.act, ZT_RA_ALERT);
			assert_non_null(strstr(a.why, "response.endpoints"));
		}
		/* Anything else as before. */
		mk(&d, ZT_THREAT_SCAN, "198.18.9.9");
		zt_respond_decide(r, &d, 10 * SEC, &a);
		assert_int_equal(a.act, ZT_RA_BLOCK);
		zt_respond_free(r);
	}
}

static void test_read_node(void **state)
{
	struct zt_cidr *a = NULL, *g = NULL;
	size_t na = 0, ng = 0;
	bool lo = false;

	assert_int_equal(zt_respond_read_node(&a, &na, &g, &ng), 0);
	for (size_t i = 0; i < na; i++)
		if (a[i].family == AF_INET && a[i].addr[0] == 127)
			lo = true;
	assert_true(lo);
	free(a);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_doubling), cmocka_unit_test(test_stale_evidence),
		cmocka_unit_test(test_undo),	     cmocka_unit_test(test_never_blocked),
		cmocka_unit_test(test_modes),	     cmocka_unit_test(test_read_node),
		cmocka_unit_test(test_endpoints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
