// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: first contacts waiting for their outcome (detect/probes.h).
 * Probes get their answer's outcome or fail at the timeout; strays fail by
 * themselves (a protocol unreachable and a FIN policy denied at once, a
 * reset after the timeout, unless the client connects again in that time);
 * a reset or a denied FIN on an ephemeral port is left out; a slot taken
 * by another contact decides that one.
 * The last test runs the decided contacts through the scan detector.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detect/probes.h"
#include "detect/trw.h"
#include "dtest.h"

#define TIMEOUT (1 * SEC)

static struct zt_probe probe(uint8_t proto, uint32_t src, uint32_t dst, uint16_t port, uint64_t ts)
{
	struct zt_probe p;

	memset(&p, 0, sizeof(p));
	p.family = 4;
	p.proto = proto;
	p.dport = port;
	host(p.src, src);
	host(p.dst, dst);
	p.ts_ns = ts;
	return p;
}

/* What tc_uplink reports: prober src, target dst, the target's port. */
static struct zt_ev_probe_result answer(uint8_t result, uint8_t proto, uint32_t src, uint32_t dst,
					uint16_t port, uint64_t ts)
{
	struct zt_ev_probe_result e;

	memset(&e, 0, sizeof(e));
	e.hdr.type = ZT_EV_PROBE_RESULT;
	e.hdr.len = sizeof(e);
	e.hdr.ts_ns = ts;
	e.family = 4;
	e.proto = proto;
	e.result = result;
	e.port = port;
	e.prober_port = 50000;
	host(e.prober, src);
	host(e.target, dst);
	return e;
}

static struct zt_probe_table *table(size_t slots)
{
	struct zt_probe_table *t = NULL;

	assert_int_equal(zt_probe_table_new(slots, TIMEOUT, &t), 0);
	return t;
}

static void test_new_args(void **state)
{
	struct zt_probe_table *t = NULL;

	(void)state;
	assert_int_equal(zt_probe_table_new(0, TIMEOUT, &t), -EINVAL);
	assert_int_equal(zt_probe_table_new(SIZE_MAX, TIMEOUT, &t), -EINVAL);
	assert_null(t);
}

/* A probe's answer decides it; one without an answer fails at the timeout, not before. */
static void test_answers_and_timeouts(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe p, out, v[8];
	struct zt_ev_probe_result e;
	struct zt_probe_table_stats st;

	(void)state;
	p = probe(6, 1, 2, 80, 100 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	p = probe(6, 1, 2, 81, 100 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	p = probe(17, 1, 2, 53, 100 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	e = answer(ZT_PROBE_OPEN, 6, 1, 2, 80, 110 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_SUCCESS);
	assert_int_equal(out.dport, 80);
	assert_int_equal(out.ts_ns, 100 * MS); /* when the probe was sent */
	/* A retransmitted answer: the probe has its outcome already. */
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	e = answer(ZT_PROBE_CLOSED, 6, 1, 2, 81, 120 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_RST);
	/* An answer to nothing waiting: nothing. */
	e = answer(ZT_PROBE_CLOSED, 6, 1, 3, 81, 120 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	assert_int_equal(zt_probe_table_expire(t, 100 * MS + TIMEOUT, v, 8), 0);
	assert_int_equal(zt_probe_table_expire(t, 101 * MS + TIMEOUT, v, 8), 1);
	assert_int_equal(v[0].outcome, ZT_PROBE_FAIL_TIMEOUT);
	assert_int_equal(v[0].proto, 17);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 8), 0);
	zt_probe_table_get_stats(t, &st);
	assert_int_equal(st.answered, 2);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.strays, 0);
	zt_probe_table_free(t);
}

/* One slot: a probe of another contact decides the one waiting; the same contact again keeps it. */
static void test_slot_taken(void **state)
{
	struct zt_probe_table *t = table(1);
	struct zt_probe p, out, v[4];

	(void)state;
	p = probe(6, 1, 2, 80, 1 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	p = probe(6, 1, 2, 80, 2 * MS); /* the same contact */
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	p = probe(6, 1, 2, 443, 3 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 1);
	assert_int_equal(out.dport, 80);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_TIMEOUT);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 1);
	assert_int_equal(v[0].dport, 443);
	zt_probe_table_free(t);
}

/* A protocol unreachable: a failed contact with that protocol at once, port 0. */
static void test_stray_protocol(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe out, v[4];
	struct zt_ev_probe_result e = answer(ZT_PROBE_STRAY_PROTO, 47, 1, 2, 0, 5 * MS);
	struct zt_probe_table_stats st;

	(void)state;
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_UNREACH);
	assert_int_equal(out.proto, 47);
	assert_int_equal(out.dport, 0);
	assert_int_equal(out.ts_ns, 5 * MS);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 0);
	zt_probe_table_get_stats(t, &st);
	assert_int_equal(st.strays, 1);
	zt_probe_table_free(t);
}

/*
 * A reset without ACK (an ACK scan's answer) fails after the timeout; the
 * same again meanwhile keeps its first time. A client that connects again
 * (its SYN a probe of the same contact) in that time takes its place: the
 * node had forgotten its connection, it scanned nothing.
 */
static void test_stray_reset(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe p, out, v[4];
	struct zt_ev_probe_result e;
	struct zt_probe_table_stats st;

	(void)state;
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 22, 10 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	e.hdr.ts_ns = 500 * MS;
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	assert_int_equal(zt_probe_table_expire(t, 10 * MS + TIMEOUT, v, 4), 0);
	assert_int_equal(zt_probe_table_expire(t, 11 * MS + TIMEOUT, v, 4), 1);
	assert_int_equal(v[0].outcome, ZT_PROBE_FAIL_RST);
	assert_int_equal(v[0].proto, 6);
	assert_int_equal(v[0].dport, 22);
	assert_memory_equal(v[0].src, e.prober, 16);
	assert_memory_equal(v[0].dst, e.target, 16);
	assert_int_equal(v[0].ts_ns, 10 * MS);
	/* Forgotten connection: the reset, then the client's SYN and its SYN-ACK. */
	e = answer(ZT_PROBE_STRAY_RST, 6, 7, 2, 9100, 2 * SEC);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	p = probe(6, 7, 2, 9100, 2 * SEC + 3 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	e = answer(ZT_PROBE_OPEN, 6, 7, 2, 9100, 2 * SEC + 4 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_SUCCESS);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 0);
	zt_probe_table_get_stats(t, &st);
	assert_int_equal(st.strays, 1);
	assert_int_equal(st.answered, 1);
	zt_probe_table_free(t);
}

/* Resets on the node's ephemeral ports answer late segments to its own clients: left out. */
static void test_stray_ephemeral(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe out, v[4];
	struct zt_ev_probe_result e;
	struct zt_probe_table_stats st;

	(void)state;
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 32768, 1 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 60999, 1 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 61000, 1 * MS); /* above the default range */
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 1);
	assert_int_equal(v[0].dport, 61000);
	/* A node with a range of its own. */
	zt_probe_table_set_ephemeral(t, 1024, 65535);
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 8080, 1 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 80, 1 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 1);
	assert_int_equal(v[0].dport, 80);
	zt_probe_table_get_stats(t, &st);
	assert_int_equal(st.strays_ephemeral, 3);
	assert_int_equal(st.strays, 2);
	zt_probe_table_free(t);
}

/* A stray reset for a contact whose probe waits is that probe's outcome. */
static void test_stray_answers_probe(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe p = probe(6, 1, 2, 80, 1 * MS), out, v[4];
	struct zt_ev_probe_result e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 80, 2 * MS);

	(void)state;
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_RST);
	assert_int_equal(out.ts_ns, 1 * MS);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 0);
	zt_probe_table_free(t);
}

/* A stray reset on a slot another probe holds decides that probe (timed out). */
static void test_stray_takes_slot(void **state)
{
	struct zt_probe_table *t = table(1);
	struct zt_probe p = probe(17, 1, 3, 53, 1 * MS), out, v[4];
	struct zt_ev_probe_result e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, 80, 2 * MS);

	(void)state;
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.proto, 17);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_TIMEOUT);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 1);
	assert_int_equal(v[0].proto, 6);
	assert_int_equal(v[0].outcome, ZT_PROBE_FAIL_RST);
	zt_probe_table_free(t);
}

/*
 * A FIN segment policy denied on its way into an endpoint (tc_endpoint: a
 * FIN, Xmas or Maimon scan's probe): a failed contact at once, nothing to
 * wait for; the probe of the same contact the guard reported (a FIN scan
 * from outside), failed by it; on an ephemeral port (a server's late FIN
 * to the endpoint's own client) left out.
 */
static void test_stray_denied(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_probe p = probe(6, 1, 2, 80, 1 * MS), out, v[4];
	struct zt_ev_probe_result e;
	struct zt_probe_table_stats st;

	(void)state;
	e = answer(ZT_PROBE_STRAY_DENIED, 6, 1, 2, 22, 5 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_TIMEOUT);
	assert_int_equal(out.proto, 6);
	assert_int_equal(out.dport, 22);
	assert_memory_equal(out.src, e.prober, 16);
	assert_memory_equal(out.dst, e.target, 16);
	assert_int_equal(out.ts_ns, 5 * MS);
	assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
	e = answer(ZT_PROBE_STRAY_DENIED, 6, 1, 2, 80, 2 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
	assert_int_equal(out.outcome, ZT_PROBE_FAIL_TIMEOUT);
	assert_int_equal(out.dport, 80);
	assert_int_equal(out.ts_ns, 1 * MS);
	e = answer(ZT_PROBE_STRAY_DENIED, 6, 1, 2, 41000, 3 * MS);
	assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
	assert_int_equal(zt_probe_table_expire(t, 10 * SEC, v, 4), 0);
	zt_probe_table_get_stats(t, &st);
	assert_int_equal(st.strays, 1);
	assert_int_equal(st.answered, 1);
	assert_int_equal(st.strays_ephemeral, 1);
	zt_probe_table_free(t);
}

/*
 * Through the scan detector: an ACK scan of 300 ports (every answer a
 * reset) is flagged by its 4th first contact; a client whose 5 keep-alive
 * connections to services of a rebooted node draw resets and which then
 * connects again to each is not.
 */
static void test_through_trw(void **state)
{
	struct zt_probe_table *t = table(4096);
	struct zt_trw_params tp;
	struct zt_trw *w = NULL;
	struct zt_decision d;
	struct zt_probe out, v[512];
	struct zt_ev_probe_result e;
	int flagged_at = 0, client_flagged = 0;
	size_t n;

	(void)state;
	zt_trw_defaults(&tp);
	assert_int_equal(zt_trw_new(&tp, &w), 0);
	/* Decided in turn: at the timeout, or earlier when another took the slot. */
	n = 0;
	for (int i = 0; i < 300; i++) {
		e = answer(ZT_PROBE_STRAY_RST, 6, 1, 2, (uint16_t)(1 + i), (uint64_t)i * 10 * MS);
		if (zt_probe_table_answer(t, &e, &out))
			v[n++] = out;
	}
	n += zt_probe_table_expire(t, 10 * SEC, v + n, 512 - n);
	assert_int_equal(n, 300);
	for (size_t k = 0; k < n && !flagged_at; k++)
		if (zt_trw_observe(w, &v[k], &d))
			flagged_at = (int)k + 1;
	assert_true(flagged_at > 0 && flagged_at <= 4);
	for (int i = 0; i < 5; i++) {
		static const uint16_t ports[] = { 9100, 10250, 10249, 10256, 8080 };
		struct zt_probe p = probe(6, 9, 2, ports[i], 20 * SEC + (uint64_t)i * MS);

		e = answer(ZT_PROBE_STRAY_RST, 6, 9, 2, ports[i], 20 * SEC + (uint64_t)i * MS);
		assert_int_equal(zt_probe_table_answer(t, &e, &out), 0);
		/* It connects again 30 ms later. */
		p.ts_ns += 30 * MS;
		assert_int_equal(zt_probe_table_add(t, &p, &out), 0);
		e = answer(ZT_PROBE_OPEN, 6, 9, 2, ports[i], p.ts_ns + 1 * MS);
		assert_int_equal(zt_probe_table_answer(t, &e, &out), 1);
		client_flagged |= zt_trw_observe(w, &out, &d);
	}
	n = zt_probe_table_expire(t, 40 * SEC, v, 512);
	assert_int_equal(n, 0);
	assert_false(client_flagged);
	zt_trw_free(w);
	zt_probe_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_args),
		cmocka_unit_test(test_answers_and_timeouts),
		cmocka_unit_test(test_slot_taken),
		cmocka_unit_test(test_stray_protocol),
		cmocka_unit_test(test_stray_reset),
		cmocka_unit_test(test_stray_ephemeral),
		cmocka_unit_test(test_stray_answers_probe),
		cmocka_unit_test(test_stray_takes_slot),
		cmocka_unit_test(test_stray_denied),
		cmocka_unit_test(test_through_trw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
