// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: slow-connection attacks over conntrack sweeps. Slowloris
 * (requests never finished, no reply) and slow read (replies drained a few
 * bytes at a time) are decided; idle keep-alives, connection pools, bulk
 * transfers, a handful of slow requests and half-open SYNs are not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "detect/slowconn.h"
#include "dtest.h"

#define NOW (10000 * SEC)

/* One kind of connection, n of them, from one client to one service. */
struct slow_case {
	const char *name;
	int n;
	uint64_t age_ns; /* now - first */
	uint64_t quiet_ns; /* now - last */
	uint64_t req, rep; /* payload bytes */
	uint64_t pk_req, pk_rep;
	int state; /* 0 new, 1 established */
	int handshake;
	bool want;
	const char *want_subtype;
	int zero_win; /* the client's pure ACKs with a zero window */
	bool unacked; /* the server never acknowledged the request (zt_conn.req_unacked) */
	bool whole; /* the request was a whole GET (zt_conn.req_whole) */
};

static const struct slow_case cases[] = {
	/* slowhttptest -H: a partial header, then a line every 10 s; nothing back. */
	{ "slowloris, 50 connections, 5 s old", 50, 5 * SEC, 4 * SEC, 220, 0, 4, 3, 1, 1, true,
	  "unanswered", 0, false, false },
	{ "slowloris, 16 connections, 3.5 s old", 16, 3500 * MS, 3 * SEC, 180, 0, 3, 2, 1, 1, true,
	  "unanswered", 0, false, false },
	/* slowhttptest -X: full request, reply read a few bytes every few seconds. */
	{ "slow read, 40 connections", 40, 12 * SEC, 1 * SEC, 90, 1800, 12, 30, 1, 1, true,
	  "trickle", 0, false, false },
	/*
	 * slowhttptest -X as its manual shows it (-w 10 -y 20 -n 5 -z 32): an
	 * 819-byte request, a first window of 1152 bytes back, then the window
	 * closed and probed. 3.5 s old its rate is ~560 B/s, over the trickle's
	 * bound until ~8 s; the closed window decides it now.
	 */
	{ "slow read behind a closed window, 16 connections, 3.5 s old", 16, 3500 * MS, 10 * MS,
	  819, 1152, 5, 9, 1, 1, true, "closed-window", 3, false, false },
	{ "benign: 30 downloads whose readers paused (windows closed on full buffers)", 30,
	  10 * SEC, 200 * MS, 200, 262144, 60, 190, 1, 1, false, NULL, 4, false, false },
	{ "benign: 6 connections behind a closed window (below the threshold)", 6, 6 * SEC,
	  200 * MS, 300, 900, 5, 8, 1, 1, false, NULL, 3, false, false },
	{ "benign: 20 connections whose window closed once", 20, 6 * SEC, 6 * SEC - 300 * MS, 300,
	  2000, 4, 5, 1, 1, false, NULL, 1, false, false },
	/* Long-polling, slow POST body trickled in. */
	{ "slow POST body, 30 connections", 30, 20 * SEC, 2 * SEC, 2000, 0, 60, 40, 1, 1, true,
	  "unanswered", 0, false, false },
	{ "benign: 6 browser connections waiting on a slow page", 6, 8 * SEC, 7 * SEC, 400, 0, 3, 2,
	  1, 1, false, NULL, 0, false, false },
	{ "benign: 15 slow requests (below the threshold)", 15, 10 * SEC, 1 * SEC, 300, 0, 4, 3, 1,
	  1, false, NULL, 0, false, false },
	{ "benign: 40 idle keep-alives after their exchange", 40, 300 * SEC, 290 * SEC, 400, 9000,
	  5, 8, 1, 1, false, NULL, 0, false, false },
	{ "benign: 32 pooled database connections at rest", 32, 3600 * SEC, 45 * SEC, 8000, 40000,
	  200, 200, 1, 1, false, NULL, 0, false, false },
	{ "benign: 32 pooled connections, a keep-alive query every 30 s", 32, 3600 * SEC, 20 * SEC,
	  6000, 7000, 240, 240, 1, 1, false, NULL, 0, false, false },
	{ "benign: 20 busy pooled connections", 20, 600 * SEC, 1 * SEC, 900000, 9000000, 9000,
	  12000, 1, 1, false, NULL, 0, false, false },
	{ "benign: keep-alive right after a small exchange", 30, 4 * SEC, 4 * SEC - 20 * MS, 90,
	  600, 2, 2, 1, 1, false, NULL, 0, false, false },
	{ "benign: one bulk download", 1, 30 * SEC, 0, 200, 3000000000ULL, 40000, 2000000, 1, 1,
	  false, NULL, 0, false, false },
	{ "not this detector: 500 half-open SYNs", 500, 10 * SEC, 10 * SEC, 0, 0, 1, 0, 0, 0, false,
	  NULL, 0, false, false },
	{ "benign: 50 fresh connections (under min_age)", 50, 1 * SEC, 0, 100, 0, 2, 1, 1, 1, false,
	  NULL, 0, false, false },
	/*
	 * ab -c 50 against a backlog of 5 (python3 -m http.server): the
	 * server's full accept queue left 44 of them in SYN_RECV, its SYN-ACK
	 * retransmitted, the request retransmitted 5 times and never
	 * acknowledged: unanswered and trickling by their counts alone.
	 */
	{ "benign: 44 clients of an overloaded server, requests never acknowledged", 44, 8 * SEC,
	  1 * SEC, 420, 0, 7, 4, 1, 1, false, NULL, 0, true, false },
	{ "the same, acknowledged: held by the server (slowloris's success)", 44, 8 * SEC, 1 * SEC,
	  420, 0, 7, 4, 1, 1, true, "unanswered", 0, false, false },
	/*
	 * ab -c 50 at python3 -m http.server: its requests taken in (whole
	 * GETs) and left unanswered for seconds, dozens at once, by a server
	 * too slow for them.
	 */
	{ "benign: 36 whole GETs a slow server holds unanswered", 36, 8 * SEC, 8 * SEC - 5 * MS, 82,
	  0, 2, 2, 1, 1, false, NULL, 0, false, true },
};

static void run_case(const struct slow_case *c)
{
	struct zt_slowconn_params p;
	struct zt_slowconn *s;
	struct zt_decision d[4];
	uint8_t cli[16], srv[16], other[16];
	size_t nd;

	zt_slowconn_defaults(&p);
	assert_int_equal(zt_slowconn_new(&p, &s), 0);
	ip4(cli, 203, 0, 113, 50);
	ip4(srv, 198, 18, 1, 80);
	ip4(other, 198, 18, 2, 80);
	zt_slowconn_begin(s, NOW);
	for (int i = 0; i < c->n; i++) {
		struct zt_conn k;

		mk_conn(&k, cli, srv, 8080, NOW - c->age_ns + (uint64_t)i * MS, NOW - c->quiet_ns,
			c->req, c->rep, c->pk_req, c->pk_rep, c->state, c->handshake);
		k.sport = (uint16_t)(30000 + i);
		k.zero_win = (uint8_t)c->zero_win;
		k.req_unacked = c->unacked;
		k.req_whole = c->whole;
		zt_slowconn_add(s, &k);
	}
	/* A busy neighbour: normal connections to another service. */
	for (int i = 0; i < 200; i++) {
		struct zt_conn k;
		uint8_t h[16];

		mk_conn(&k, host(h, (uint32_t)i), other, 443, NOW - 60 * SEC, NOW - 10 * MS, 5000,
			80000, 60, 80, 1, 1);
		zt_slowconn_add(s, &k);
	}
	nd = zt_slowconn_end(s, d, 4);
	if (c->want) {
		if (nd != 1)
			fail_msg("%s: %zu decisions, want 1", c->name, nd);
		assert_int_equal(d[0].threat, ZT_THREAT_SLOWCONN);
		assert_memory_equal(d[0].addr, cli, 4);
		assert_memory_equal(d[0].peer, srv, 4);
		assert_int_equal(d[0].dport, 8080);
		assert_int_equal(d[0].flows, (uint64_t)c->n);
		assert_string_equal(d[0].subtype, c->want_subtype);
		assert_true(d[0].score >= 0.79f && d[0].score <= 1.0f);
		assert_true(strstr(d[0].evidence, "slow connections") != NULL);
	} else if (nd) {
		fail_msg("%s: decided: %s", c->name, d[0].evidence);
	}
	zt_slowconn_free(s);
}

/*
 * ab -c 100 at python3 -m http.server: 21 connections whose SYN the full
 * accept queue dropped went out again and never sent their request. Two
 * SYNs carry their options twice: 8 bytes of the estimate's that are no
 * payload (zt_conn.syns), so nothing is unanswered.
 */
/* One established connection of a client's to port 8080, under the default parameters. */
static void client_conn(struct zt_slowconn_params *p, struct zt_conn *k, uint64_t first,
			uint64_t last, uint64_t req, uint64_t pk_req, uint64_t pk_rep)
{
	uint8_t cli[16], srv[16];

	zt_slowconn_defaults(p);
	ip4(cli, 203, 0, 113, 50);
	ip4(srv, 198, 18, 1, 80);
	mk_conn(k, cli, srv, 8080, first, last, req, 0, pk_req, pk_rep, 1, 1);
}

static void test_syn_again(void **state)
{
	struct zt_slowconn_params p;
	struct zt_conn k;
	const char *why = NULL;

	/* SYN, SYN again, ACK (172 bytes); the SYN-ACK back (60). */
	client_conn(&p, &k, NOW - 5 * SEC, NOW - 4 * SEC, 0, 3, 1);
	k.bytes[0] += 8;
	assert_int_equal(k.bytes[0], 172);
	k.syns[0] = 2;
	k.syns[1] = 1;
	assert_int_equal(zt_conn_payload(&k, 0), 0);
	assert_false(zt_slowconn_is_slow(&p, &k, NOW, &why));
	/* Unknown SYN counts: one assumed, the second SYN's options read as a request. */
	k.syns[0] = 0;
	assert_int_equal(zt_conn_payload(&k, 0), 8);
	assert_true(zt_slowconn_is_slow(&p, &k, NOW, &why));
	assert_string_equal(why, "unanswered");
	/* A request after them is counted whole. */
	k.syns[0] = 2;
	k.packets[0]++;
	k.bytes[0] += 52 + 120;
	assert_int_equal(zt_conn_payload(&k, 0), 120);
	assert_true(zt_slowconn_is_slow(&p, &k, NOW, &why));
}

/*
 * ab -c 500 at python3 -m http.server (once in 5 runs): 20 connections
 * whose SYNs or request the full accept queue dropped for 7 s, a whole GET
 * taken in then and not answered yet. From the first SYN, 82 bytes in 9 s
 * span 7.5 s: a trickle. From when the server took them in
 * (zt_conn.held_ns) they are 2 s old and quiet; a slowloris that waited
 * as long is decided from there all the same.
 */
static void test_held_from_handshake(void **state)
{
	struct zt_slowconn_params p;
	struct zt_conn k;
	const char *why = NULL;

	client_conn(&p, &k, NOW - 9 * SEC, NOW - 1500 * MS, 82, 5, 3);
	k.syns[0] = 3;
	k.req_whole = true;
	assert_true(zt_slowconn_is_slow(&p, &k, NOW, &why));
	assert_string_equal(why, "trickle");
	k.held_ns = NOW - 2 * SEC;
	assert_false(zt_slowconn_is_slow(&p, &k, NOW, &why));
	/* Still quiet 5 s after it: a slow server's, not trickling (span 0.5 s). */
	assert_false(zt_slowconn_is_slow(&p, &k, NOW + 3 * SEC, &why));
	/* A partial request held as long from its handshake: slowloris. */
	k.req_whole = false;
	assert_false(zt_slowconn_is_slow(&p, &k, NOW, &why));
	assert_true(zt_slowconn_is_slow(&p, &k, NOW + 1 * SEC, &why));
	assert_string_equal(why, "unanswered");
	/* A held_ns before the first packet (unknown, or a clock gone back): from the first. */
	k.held_ns = NOW - 10 * SEC;
	assert_true(zt_slowconn_is_slow(&p, &k, NOW, &why));
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  case: %s\n", cases[i].name);
		run_case(&cases[i]);
	}
}

/* Every sweep starts over: an attack that stops is not decided again. */
static void test_sweeps(void **state)
{
	struct zt_slowconn_params p;
	struct zt_slowconn *s;
	struct zt_decision d[2];
	uint8_t cli[16], srv[16];

	zt_slowconn_defaults(&p);
	assert_int_equal(zt_slowconn_new(&p, &s), 0);
	ip4(cli, 203, 0, 113, 51);
	ip4(srv, 198, 18, 1, 81);
	for (int sweep = 0; sweep < 3; sweep++) {
		zt_slowconn_begin(s, NOW + (uint64_t)sweep * SEC);
		for (int i = 0; sweep < 2 && i < 20; i++) {
			struct zt_conn k;

			mk_conn(&k, cli, srv, 80, NOW - 10 * SEC, NOW - 2 * SEC, 100, 0, 3, 2, 1,
				1);
			zt_slowconn_add(s, &k);
		}
		assert_int_equal(zt_slowconn_end(s, d, 2), sweep < 2 ? 1 : 0);
	}
	zt_slowconn_free(s);
}

/*
 * A slowloris younger than min_age: no decision yet, but the sweep says
 * when the next one could decide (the first of its connections to come of
 * age), and says it again until enough have: the daemon sweeps then, not a
 * whole interval later. Too few of them, answered connections, or none at
 * all: nothing is due.
 */
static void sweep_young(struct zt_slowconn *s, uint64_t now, const uint8_t *cli, const uint8_t *few,
			const uint8_t *srv)
{
	zt_slowconn_begin(s, now);
	for (int i = 0; i < 20; i++) {
		struct zt_conn k;

		/* Opened 50 ms apart from NOW - 2 s, a partial request each, no reply. */
		mk_conn(&k, cli, srv, 80, NOW - 2 * SEC + (uint64_t)i * 50 * MS,
			NOW - 2 * SEC + (uint64_t)i * 50 * MS + MS, 200, 0, 2, 1, 1, 1);
		k.sport = (uint16_t)(30000 + i);
		zt_slowconn_add(s, &k);
		/* A client whose requests are answered. */
		mk_conn(&k, few, srv, 443, NOW - SEC, NOW - SEC + 5 * MS, 200, 900, 2, 2, 1, 1);
		k.sport = (uint16_t)(31000 + i);
		zt_slowconn_add(s, &k);
	}
	for (int i = 0; i < 10; i++) {
		struct zt_conn k;

		/* Ten unanswered of another client: below min_conns however old. */
		mk_conn(&k, few, srv, 80, NOW - SEC, NOW - SEC + MS, 200, 0, 2, 1, 1, 1);
		k.sport = (uint16_t)(32000 + i);
		zt_slowconn_add(s, &k);
	}
}

static void test_young_due(void **state)
{
	struct zt_slowconn_params p;
	struct zt_slowconn *s;
	struct zt_decision d[2];
	uint8_t cli[16], few[16], srv[16];

	zt_slowconn_defaults(&p);
	assert_int_equal(zt_slowconn_new(&p, &s), 0);
	ip4(cli, 203, 0, 113, 52);
	ip4(few, 203, 0, 113, 53);
	ip4(srv, 198, 18, 1, 82);
	zt_slowconn_begin(s, NOW);
	assert_int_equal(zt_slowconn_end(s, d, 2), 0);
	assert_int_equal(zt_slowconn_next_due(s), 0);
	/* None of age: due when the first is (opened at NOW - 2 s, min_age 3 s). */
	sweep_young(s, NOW, cli, few, srv);
	assert_int_equal(zt_slowconn_end(s, d, 2), 0);
	assert_int_equal(zt_slowconn_next_due(s), NOW + SEC);
	/* One of age, 19 coming: due at the second. */
	sweep_young(s, NOW + SEC, cli, few, srv);
	assert_int_equal(zt_slowconn_end(s, d, 2), 0);
	assert_int_equal(zt_slowconn_next_due(s), NOW + SEC + 50 * MS);
	/* 15 of age: not yet; the 16th comes of age at NOW + 1.75 s. */
	sweep_young(s, NOW + 1750 * MS - 1, cli, few, srv);
	assert_int_equal(zt_slowconn_end(s, d, 2), 0);
	assert_int_equal(zt_slowconn_next_due(s), NOW + 1750 * MS);
	sweep_young(s, NOW + 1750 * MS, cli, few, srv);
	assert_int_equal(zt_slowconn_end(s, d, 2), 1);
	assert_memory_equal(d[0].addr, cli, 4);
	assert_int_equal(d[0].value, 16);
	assert_string_equal(d[0].subtype, "unanswered");
	zt_slowconn_free(s);
}

/*
 * A sweep whose table fills with sources holding one slow connection each
 * still decides the source that holds many, whose connections come after.
 */
static void test_full_table(void **state)
{
	struct zt_slowconn_params p;
	struct zt_slowconn_stats st;
	struct zt_slowconn *s;
	struct zt_decision d[4];
	uint8_t bad[16], one[16], srv[16];
	size_t n;

	zt_slowconn_defaults(&p);
	p.max_groups = 64;
	assert_int_equal(zt_slowconn_new(&p, &s), 0);
	ip4(bad, 203, 0, 113, 66);
	ip4(srv, 198, 18, 1, 81);
	zt_slowconn_begin(s, NOW);
	for (int i = 0; i < 1000; i++) {
		struct zt_conn k;

		ip4(one, 100, 64, (uint8_t)(i / 256), (uint8_t)i);
		mk_conn(&k, one, srv, 80, NOW - 10 * SEC, NOW - 2 * SEC - (uint64_t)i * MS, 100, 0,
			3, 2, 1, 1);
		zt_slowconn_add(s, &k);
		if (i >= 500 && i % 10 == 0) {
			mk_conn(&k, bad, srv, 80, NOW - 10 * SEC, NOW - 2 * SEC, 100, 0, 3, 2, 1,
				1);
			zt_slowconn_add(s, &k);
		}
	}
	n = zt_slowconn_end(s, d, 4);
	zt_slowconn_get_stats(s, &st);
	print_message("  %zu decision(s); %llu groups evicted\n", n,
		      (unsigned long long)st.evicted);
	assert_int_equal(n, 1);
	assert_memory_equal(d[0].addr, bad, 4);
	assert_int_equal(d[0].value, 50);
	assert_true(st.evicted >= 900);
	assert_int_equal(st.dropped_groups, 0);
	zt_slowconn_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),	   cmocka_unit_test(test_syn_again),
		cmocka_unit_test(test_sweeps),	   cmocka_unit_test(test_young_due),
		cmocka_unit_test(test_full_table), cmocka_unit_test(test_held_from_handshake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
