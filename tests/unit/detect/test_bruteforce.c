// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: brute force over ended TCP sessions. Login attempts repeated
 * from one source (database, SSH-like, text protocols, logins the server
 * refused in the clear) are decided within 20 attempts; many short HTTP requests to a real service, a user who
 * mistypes a password, long keep-alives, port checks and heavy transfers
 * are not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "detect/bruteforce.h"
#include "dtest.h"

struct bf_case {
	const char *name;
	int sessions;
	uint64_t gap_ns; /* between session starts */
	uint64_t dur_ns;
	uint64_t req, rep; /* payload bytes */
	uint64_t pk_req, pk_rep;
	int handshake;
	int success_every; /* > 0: every Nth session is a real exchange (rep x 20) */
	int want_by; /* 0: never decided */
};

static const struct bf_case cases[] = {
	/* libpq startup + password + FATAL: about as much each way. */
	{ "database login attempts, 20/s", 200, 50 * MS, 8 * MS, 150, 140, 6, 5, 1, 0, 10 },
	/* key exchange dominates: ~2 KB each way, short. */
	{ "SSH-like attempts, 2/s", 100, 500 * MS, 300 * MS, 1900, 2300, 14, 12, 1, 0, 10 },
	{ "telnet-style login prompts, 5/s", 100, 200 * MS, 40 * MS, 24, 41, 6, 6, 1, 0, 10 },
	{ "attempts with one success in 10", 200, 50 * MS, 8 * MS, 150, 140, 6, 5, 1, 10, 20 },
	{ "benign: 500 short HTTP requests to a real page", 500, 10 * MS, 2 * MS, 85, 1250, 5, 4, 1,
	  0, 0 },
	{ "benign: 500 HTTP requests, small JSON replies", 500, 10 * MS, 2 * MS, 95, 260, 5, 4, 1,
	  0, 0 },
	{ "benign: a user mistypes twice, then logs in", 3, 5 * SEC, 30 * MS, 150, 140, 6, 5, 1, 3,
	  0 },
	{ "benign: port checks without data", 300, 100 * MS, 1 * MS, 0, 0, 3, 2, 1, 0, 0 },
	{ "benign: long keep-alive sessions", 50, 1 * SEC, 120 * SEC, 2000, 1500, 40, 40, 1, 0, 0 },
	{ "benign: many small downloads", 200, 100 * MS, 50 * MS, 120, 50000, 10, 40, 1, 0, 0 },
	{ "not this detector: refused connections (RST)", 300, 10 * MS, 1 * MS, 40, 0, 2, 1, 0, 0,
	  0 },
	{ "slow guessing, 1 attempt every 20 s, is not caught", 30, 20 * SEC, 100 * MS, 150, 140, 6,
	  5, 1, 0, 0 },
};

static void run_case(const struct bf_case *c)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t cli[16], srv[16];
	uint64_t t0 = 20000 * SEC;
	int decided_at = 0;

	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(cli, 203, 0, 113, 77);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 1; i <= c->sessions; i++) {
		struct zt_conn k;
		uint64_t first = t0 + (uint64_t)i * c->gap_ns;
		bool ok = c->success_every && i % c->success_every == 0;

		mk_conn(&k, cli, srv, 5432, first, first + c->dur_ns, c->req,
			ok ? c->rep * 20 : c->rep, c->pk_req, ok ? c->pk_rep * 3 : c->pk_rep, 3,
			c->handshake);
		if (zt_bf_observe(b, &k, &d) && !decided_at) {
			decided_at = i;
			assert_int_equal(d.threat, ZT_THREAT_BRUTEFORCE);
			assert_memory_equal(d.addr, cli, 4);
			assert_memory_equal(d.peer, srv, 4);
			assert_int_equal(d.dport, 5432);
			assert_true(d.score > 0.99f);
			assert_true(d.value >= d.threshold);
			assert_true(strstr(d.evidence, "without a real exchange") != NULL);
			/* The deciding session is the newest start: a return is judged by it. */
			assert_int_equal(d.latest_start_ns, first);
			assert_true(d.ts_ns >= d.latest_start_ns);
		}
	}
	if (c->want_by && (!decided_at || decided_at > c->want_by))
		fail_msg("%s: decided at session %d, want by %d", c->name, decided_at, c->want_by);
	if (!c->want_by && decided_at)
		fail_msg("%s: decided at session %d", c->name, decided_at);
	zt_bf_free(b);
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  case: %s\n", cases[i].name);
		run_case(&cases[i]);
	}
}

/* The classification from conntrack's IP byte counts (payload estimated). */
static void test_classify(void **state)
{
	static const struct {
		uint64_t req, rep, pk_req, pk_rep, dur;
		int handshake;
		enum zt_bf_class want;
	} t[] = {
		{ 150, 140, 6, 5, 10 * MS, 1, ZT_BF_ATTEMPT },
		{ 85, 1250, 5, 4, 2 * MS, 1, ZT_BF_EXCHANGE }, /* content delivered */
		{ 0, 0, 3, 2, 1 * MS, 1, ZT_BF_IGNORED }, /* client said nothing */
		{ 40, 0, 2, 1, 1 * MS, 0, ZT_BF_IGNORED }, /* never accepted */
		{ 300, 200, 8, 8, 30 * SEC, 1, ZT_BF_EXCHANGE }, /* too long for an attempt */
		{ 9000, 9000, 20, 20, 1 * SEC, 1, ZT_BF_EXCHANGE }, /* too much data */
	};
	/* The same sessions, each with a response that refused a login: attempts all. */
	static const struct {
		uint64_t req, rep, pk_req, pk_rep, dur;
	} r[] = {
		{ 110, 377, 2, 2, 2 * MS }, /* HTTP 401 with its page: 3.4x the request */
		{ 300, 200, 8, 8, 30 * SEC }, /* an FTP session that lingered */
		{ 9000, 9000, 20, 20, 1 * SEC }, /* keep-alive, with data besides */
	};
	struct zt_bf_params p;
	uint8_t a[16], b[16];

	zt_bf_defaults(&p);
	ip4(a, 203, 0, 113, 1);
	ip4(b, 198, 18, 1, 1);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct zt_conn c;

		mk_conn(&c, a, b, 22, 1 * SEC, 1 * SEC + t[i].dur, t[i].req, t[i].rep, t[i].pk_req,
			t[i].pk_rep, 3, t[i].handshake);
		if (zt_bf_classify(&p, &c) != t[i].want)
			fail_msg("row %zu: class %d, want %d", i, zt_bf_classify(&p, &c),
				 t[i].want);
		/* The estimate is what the kernel's exact count would say. */
		assert_int_equal(zt_conn_payload(&c, 0), t[i].req);
		assert_int_equal(zt_conn_payload(&c, 1), t[i].rep);
	}
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct zt_conn c;

		mk_conn(&c, a, b, 80, 1 * SEC, 1 * SEC + r[i].dur, r[i].req, r[i].rep, r[i].pk_req,
			r[i].pk_rep, 3, 1);
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_EXCHANGE);
		c.refused = 1;
		if (zt_bf_classify(&p, &c) != ZT_BF_ATTEMPT)
			fail_msg("refused row %zu: class %d", i, zt_bf_classify(&p, &c));
		/* A success served earlier in it does not undo the refusal it ended on. */
		c.served = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
	}
	/*
	 * A health check of a tiny page (curl: 90 bytes asked, 117 served with
	 * HTTP 200), short like a failed login: an exchange once the server
	 * said 2xx; an attempt by its bytes alone.
	 */
	{
		struct zt_conn c;

		mk_conn(&c, a, b, 8080, 1 * SEC, 1 * SEC + 2 * MS, 90, 117, 3, 2, 3, 1);
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
		c.served = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_EXCHANGE);
	}
	/*
	 * wrk -c 400 at python3 -m http.server, its connections closed at the
	 * run's end: a GET (82 bytes) the server's full accept queue never
	 * acknowledged, or took in and never answered. Attempts by their
	 * bytes alone; nothing once the kernel said so. A refusal still counts.
	 */
	{
		struct zt_conn c;

		mk_conn(&c, a, b, 8080, 1 * SEC, 1 * SEC + 8 * SEC / 10, 82, 0, 9, 1, 3, 1);
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
		c.req_unacked = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_IGNORED);
		c.req_unacked = false;
		c.req_whole = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_IGNORED);
		/* A whole GET answered with as little is judged by its shape, as before. */
		c.bytes[1] += 40;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
		c.refused = 1;
		c.req_unacked = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
	}
	/*
	 * pg_isready (a startup packet of 52 bytes, PostgreSQL's SASL request
	 * of 24 back): an attempt by its bytes, nothing once the session ended
	 * on the server asking for a password; a refusal after it still counts.
	 */
	{
		struct zt_conn c;

		mk_conn(&c, a, b, 5432, 1 * SEC, 1 * SEC + 1 * MS, 52, 24, 3, 2, 3, 1);
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
		c.challenged = true;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_IGNORED);
		c.refused = 1;
		assert_int_equal(zt_bf_classify(&p, &c), ZT_BF_ATTEMPT);
	}
}

/*
 * SSH logins refused, read from the server's answers (zt_conn.ssh_fails):
 * hydra against an OpenSSH behind PAM, 2 s a guess and 5 guesses a
 * session (12 s, longer than max_duration: an exchange by its shape, so
 * such a guesser was never decided), is decided at its 2nd session, the
 * evidence saying so; dropbear's 9 a session at the 2nd too. A client that
 * got in (no run it ended on: ssh_fails 0) in long sessions is not, nor
 * a user who mistyped twice and gave up, three times in a minute.
 */
static void test_ssh_failures(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t pam[16], drop[16], in[16], user[16], srv[16];
	int pam_at = 0, drop_at = 0, in_dec = 0, user_dec = 0;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(pam, 203, 0, 113, 20);
	ip4(drop, 203, 0, 113, 21);
	ip4(in, 203, 0, 113, 22);
	ip4(user, 203, 0, 113, 23);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 1; i <= 6; i++) {
		struct zt_conn k;
		uint64_t t = 60000 * SEC + (uint64_t)i * 13 * SEC;

		mk_conn(&k, pam, srv, 22, t, t + 12 * SEC, 2300, 1900, 20, 18, 3, 1);
		assert_int_equal(zt_bf_classify(&p, &k), ZT_BF_EXCHANGE);
		k.ssh_fails = 5;
		assert_int_equal(zt_bf_classify(&p, &k), ZT_BF_ATTEMPT);
		if (zt_bf_observe(b, &k, &d) && !pam_at) {
			pam_at = i;
			assert_string_equal(d.subtype, "ssh-failures");
			/* Whole in a block's note, which keeps 16 bytes of it. */
			assert_true(strlen(d.subtype) <= 16);
			assert_true(strstr(d.evidence, "10 login attempts in 2 sessions") != NULL);
			assert_true(strstr(d.evidence, "10 refused by the SSH server") != NULL);
			assert_int_equal(d.dport, 22);
		}
		mk_conn(&k, drop, srv, 2222, t, t + 3 * SEC, 2100, 1500, 16, 14, 3, 1);
		k.ssh_fails = 9;
		if (zt_bf_observe(b, &k, &d) && !drop_at)
			drop_at = i;
		/* Got in: a long session with a shell, and a short one with a command. */
		mk_conn(&k, in, srv, 22, t, t + (i % 2 ? 40 * SEC : 2 * SEC), 3000, 5200, 40, 40, 3,
			1);
		if (zt_bf_observe(b, &k, &d))
			in_dec++;
	}
	for (int i = 1; i <= 3; i++) {
		struct zt_conn k;
		uint64_t t = 70000 * SEC + (uint64_t)i * 20 * SEC;

		mk_conn(&k, user, srv, 22, t, t + 5 * SEC, 2300, 1900, 20, 18, 3, 1);
		k.ssh_fails = 2;
		if (zt_bf_observe(b, &k, &d))
			user_dec++;
	}
	assert_int_equal(pam_at, 2);
	assert_int_equal(drop_at, 2);
	assert_int_equal(in_dec, 0);
	assert_int_equal(user_dec, 0);
	zt_bf_free(b);
}

/*
 * Logins refused in a session still open (ZT_EV_REFUSED): an SSH server's
 * guess at port 22 (ssh), or count refused in the clear at port 8081.
 */
static int live_at(struct zt_bf *b, const uint8_t *cli, const uint8_t *srv, bool ssh,
		   uint32_t count, uint16_t sport, uint64_t first, uint64_t t,
		   struct zt_decision *d)
{
	struct zt_bf_refusal r = { .family = 4,
				   .ssh = ssh,
				   .count = count,
				   .sport = sport,
				   .dport = ssh ? 22 : 8081,
				   .ts_ns = t,
				   .first_ns = first };

	memcpy(r.src, cli, 16);
	memcpy(r.dst, srv, 16);
	return zt_bf_refused(b, &r, d);
}

/*
 * A decision at the 10th login refused as it was, flows sessions all
 * still open, to dport; live: how the evidence says they were counted.
 */
static void decided_live(const struct zt_decision *d, const char *subtype, uint32_t flows,
			 uint16_t dport, const char *live)
{
	char want[64];

	assert_string_equal(d->subtype, subtype);
	assert_int_equal(d->flows, flows);
	assert_int_equal(d->value, 10);
	assert_int_equal(d->dport, dport);
	snprintf(want, sizeof(want), "10 login attempts in %u sessions", flows);
	assert_non_null(strstr(d->evidence, want));
	assert_non_null(strstr(d->evidence, live));
	snprintf(want, sizeof(want), "%u sessions still open", flows);
	assert_non_null(strstr(d->evidence, want));
}

/* One guess refused in the session from sport, at t (ZT_EV_REFUSED as zt_bf_refused takes it). */
static int refused_at(struct zt_bf *b, const uint8_t *cli, const uint8_t *srv, uint16_t sport,
		      uint64_t first, uint64_t t, struct zt_decision *d)
{
	return live_at(b, cli, srv, true, 1, sport, first, t, d);
}

/*
 * SSH guesses counted as each is refused (zt_bf_refused): hydra -t 4
 * against dropbear, four sessions at once and a guess in each every
 * 300 ms, is decided at the 10th refusal, while all four are still open
 * (they would end after 10 guesses each, 40 in all); the evidence names
 * them. Their ends then add nothing (zt_conn.ssh_live: counted already),
 * and no second decision comes of them. A source whose sessions each had
 * 3 guesses refused as they came and ended on them is decided at its
 * 10th refusal, not before: a session's end does not count them again.
 * A user who mistypes twice, then gets in, three times, is not decided.
 */
static void test_ssh_live(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t hydra[16], three[16], user[16], srv[16];
	uint64_t t0 = 80000 * SEC;
	int n = 0, at = 0, decided;
	struct zt_bf_stats st;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(hydra, 203, 0, 113, 30);
	ip4(three, 203, 0, 113, 31);
	ip4(user, 203, 0, 113, 32);
	ip4(srv, 198, 18, 1, 54);

	for (int g = 0; g < 10 && !at; g++)
		for (uint16_t c = 0; c < 4 && !at; c++) {
			n++;
			if (refused_at(b, hydra, srv, (uint16_t)(50000 + c), t0,
				       t0 + (uint64_t)g * 300 * MS + c * MS, &d))
				at = n;
		}
	assert_int_equal(at, 10);
	decided_live(&d, "ssh-failures", 4, 22, "10 of them counted as each was refused");
	/* The four sessions end after 10 guesses each: 9 counted as they came, nothing left. */
	decided = 0;
	for (uint16_t c = 0; c < 4; c++) {
		struct zt_conn k;

		mk_conn(&k, hydra, srv, 22, t0, t0 + 3 * SEC, 900, 1300, 20, 18, 3, 1);
		k.sport = (uint16_t)(50000 + c);
		k.ssh_live = 9;
		assert_int_equal(zt_bf_classify(&p, &k), ZT_BF_ATTEMPT);
		decided += zt_bf_observe(b, &k, &d);
	}
	assert_int_equal(decided, 0);

	/* Three refused as they came in each session, which ended on them. */
	n = 0;
	at = 0;
	for (int i = 0; i < 4 && !at; i++) {
		uint64_t t = t0 + (uint64_t)i * 2 * SEC;
		struct zt_conn k;

		for (int g = 0; g < 3 && !at; g++) {
			n++;
			if (refused_at(b, three, srv, (uint16_t)(51000 + i), t,
				       t + (uint64_t)(g + 1) * 300 * MS, &d))
				at = n;
		}
		if (at)
			break;
		mk_conn(&k, three, srv, 22, t, t + SEC, 900, 1300, 12, 10, 3, 1);
		k.sport = (uint16_t)(51000 + i);
		k.ssh_live = 3;
		if (zt_bf_observe(b, &k, &d))
			at = -1;
	}
	assert_int_equal(at, 10);
	assert_true(strstr(d.evidence, "10 login attempts in 4 sessions") != NULL);

	/* Twice mistyped, then in (a session with a shell): three times in a minute. */
	decided = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t t = t0 + 100 * SEC + (uint64_t)i * 20 * SEC;
		struct zt_conn k;

		decided += refused_at(b, user, srv, (uint16_t)(52000 + i), t, t + 2 * SEC, &d);
		decided += refused_at(b, user, srv, (uint16_t)(52000 + i), t, t + 4 * SEC, &d);
		mk_conn(&k, user, srv, 22, t, t + 15 * SEC, 3000, 52000, 40, 60, 3, 1);
		k.sport = (uint16_t)(52000 + i);
		decided += zt_bf_observe(b, &k, &d);
	}
	assert_int_equal(decided, 0);
	zt_bf_get_stats(b, &st);
	assert_int_equal(st.live_refusals, 10 + 10 + 6);
	zt_bf_free(b);
}

/* count logins refused in the clear, reported as a session's run grew (ZT_EV_REFUSED). */
static int clear_at(struct zt_bf *b, const uint8_t *cli, const uint8_t *srv, uint16_t sport,
		    uint32_t count, uint64_t first, uint64_t t, struct zt_decision *d)
{
	return live_at(b, cli, srv, false, count, sport, first, t, d);
}

/*
 * Refusals in the clear counted as a session's run of them grows
 * (zt_bf_refused, ssh false): ncrack against Basic authentication on one
 * keep-alive connection, a 401 for each guess, reported 3 at its third
 * and then one by one, is decided at the 10th refused login while the
 * session is open, as refused-logins with the evidence saying so. Its end
 * (refused: those not reported, refused_live: those that were) adds only
 * the rest and decides nothing again; a session that ended with 2 of its
 * refusals unreported counts those 2 and no more.
 */
static void test_clear_live(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	struct zt_bf_stats st;
	struct zt_conn k;
	uint8_t cli[16], other[16], srv[16];
	uint64_t t0 = 90000 * SEC;
	int at = 0, n;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(cli, 203, 0, 113, 40);
	ip4(other, 203, 0, 113, 41);
	ip4(srv, 198, 18, 1, 54);
	for (int g = 3; g <= 40 && !at; g++) {
		if (clear_at(b, cli, srv, 47000, g == 3 ? 3 : 1, t0, t0 + (uint64_t)g * 5 * MS, &d))
			at = g;
	}
	assert_int_equal(at, 10);
	decided_live(&d, "refused-logins", 1, 8081, "10 of them counted as they came");

	/* Its end, 10 refused and all reported: nothing more. */
	mk_conn(&k, cli, srv, 8081, t0, t0 + 60 * MS, 1200, 3800, 12, 12, 3, 1);
	k.sport = 47000;
	k.refused = 0;
	k.refused_live = 10;
	assert_int_equal(zt_bf_classify(&p, &k), ZT_BF_ATTEMPT);
	assert_int_equal(zt_bf_observe(b, &k, &d), 0);

	/* Sessions of 5 refusals, 3 reported as they came and 2 at the end: 10 after two. */
	at = 0;
	n = 0;
	for (int i = 0; i < 3 && !at; i++) {
		uint64_t t = t0 + 1000 * SEC + (uint64_t)i * SEC;

		n += 3;
		if (clear_at(b, other, srv, (uint16_t)(47100 + i), 3, t, t + 10 * MS, &d)) {
			at = n;
			break;
		}
		mk_conn(&k, other, srv, 8081, t, t + 20 * MS, 600, 1900, 7, 7, 3, 1);
		k.sport = (uint16_t)(47100 + i);
		k.refused = 2;
		k.refused_live = 3;
		n += 2;
		if (zt_bf_observe(b, &k, &d))
			at = n;
	}
	assert_int_equal(at, 10);
	zt_bf_get_stats(b, &st);
	assert_int_equal(st.live_refusals, 10 + 6);
	zt_bf_free(b);
}

/*
 * Logins the server refused in the clear (zt_conn.refused): hydra's
 * http-get against Basic authentication, one 401 page per connection and
 * 3.4 times the request, is decided at the 10th; an FTP session of 3
 * refusals counts 3, and four of them are decided; a user who mistypes
 * twice and then gets in is not. (A Digest or NTLM client, challenged with
 * a 401 on each connection and then let in, ends no session on a refusal:
 * tc_endpoint's resp, the engine passes refused 0.)
 */
static void test_refused_logins(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t cli[16], ftp[16], user[16], srv[16];
	int decided_at = 0, ftp_at = 0, user_dec = 0;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(cli, 203, 0, 113, 10);
	ip4(ftp, 203, 0, 113, 11);
	ip4(user, 203, 0, 113, 12);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 1; i <= 30; i++) {
		struct zt_conn k;
		uint64_t t = 50000 * SEC + (uint64_t)i * 30 * MS;

		mk_conn(&k, cli, srv, 80, t, t + 2 * MS, 110, 377, 2, 2, 3, 1);
		k.refused = 1;
		if (zt_bf_observe(b, &k, &d) && !decided_at) {
			decided_at = i;
			assert_string_equal(d.subtype, "refused-logins");
			assert_true(strstr(d.evidence, "10 login attempts in 10 sessions") != NULL);
			assert_true(strstr(d.evidence, "10 refused by the server") != NULL);
			assert_int_equal(d.dport, 80);
		}
		/* FTP: USER, PASS, 530, three times, then the server hangs up. */
		mk_conn(&k, ftp, srv, 21, t, t + 3 * SEC, 90, 400, 8, 8, 3, 1);
		k.refused = 3;
		if (zt_bf_observe(b, &k, &d) && !ftp_at)
			ftp_at = i;
	}
	for (int i = 0; i < 3; i++) {
		struct zt_conn k;
		uint64_t t = 60000 * SEC + (uint64_t)i * 5 * SEC;

		mk_conn(&k, user, srv, 80, t, t + 2 * MS, 110, i < 2 ? 377 : 6000, 2, i < 2 ? 2 : 6,
			3, 1);
		k.refused = i < 2;
		user_dec += zt_bf_observe(b, &k, &d);
	}
	print_message("  HTTP 401s decided at %d; FTP sessions of 3 at %d\n", decided_at, ftp_at);
	assert_int_equal(decided_at, 10);
	assert_int_equal(ftp_at, 4);
	assert_int_equal(user_dec, 0);
	zt_bf_free(b);
}

/*
 * A guesser that waits between guesses (hydra -c 15: one every 15 s): the
 * logins the server refused count for refused_window (10 min), so the 10th
 * is decided; the same pace of sessions that only look like failed logins
 * (never more than 4 a minute) is not, nor a refused login an hour.
 */
static void test_slow_guesses(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t refused[16], shaped[16], hourly[16], srv[16];
	int refused_at = 0, shaped_at = 0, hourly_at = 0;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(refused, 203, 0, 113, 20);
	ip4(shaped, 203, 0, 113, 21);
	ip4(hourly, 203, 0, 113, 22);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 1; i <= 40; i++) {
		struct zt_conn k;
		uint64_t t = 70000 * SEC + (uint64_t)i * 15 * SEC;

		mk_conn(&k, refused, srv, 5432, t, t + 3 * MS, 150, 130, 4, 4, 3, 1);
		k.refused = 1;
		if (zt_bf_observe(b, &k, &d) && !refused_at) {
			refused_at = i;
			assert_string_equal(d.subtype, "refused-logins");
			assert_true(strstr(d.evidence,
					   "10 within 600s of a refusal, 60s of the rest") != NULL);
		}
		mk_conn(&k, shaped, srv, 5432, t, t + 3 * MS, 150, 130, 4, 4, 3, 1);
		if (zt_bf_observe(b, &k, &d) && !shaped_at)
			shaped_at = i;
	}
	for (int i = 1; i <= 40; i++) {
		struct zt_conn k;
		uint64_t t = 80000 * SEC + (uint64_t)i * 3600 * SEC;

		mk_conn(&k, hourly, srv, 5432, t, t + 3 * MS, 150, 130, 4, 4, 3, 1);
		k.refused = 1;
		if (zt_bf_observe(b, &k, &d) && !hourly_at)
			hourly_at = i;
		zt_bf_expire(b, t);
	}
	print_message("  refused every 15 s decided at %d\n", refused_at);
	assert_int_equal(refused_at, 10);
	assert_int_equal(shaped_at, 0);
	assert_int_equal(hourly_at, 0);
	zt_bf_free(b);
}

/*
 * A guesser that fetches a page before each guess (hydra http-post-form:
 * a GET of the form, a 200, then the POST the server refuses): each
 * exchange pulls the test back by less than a refusal pushes it
 * (refused0, refused1), so it is decided at its 10th refusal. Clients
 * whose refusals are one in five of their sessions (users behind one
 * address, some of whom mistype) are not, however long they go on.
 */
static void test_refused_between_pages(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t form[16], nat[16], srv[16];
	int form_at = 0, nat_dec = 0, refusals = 0;

	(void)state;
	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(form, 203, 0, 113, 30);
	ip4(nat, 203, 0, 113, 31);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 1; i <= 40; i++) {
		struct zt_conn k;
		uint64_t t = 90000 * SEC + (uint64_t)i * 60 * MS;

		/* The form: a 200 of 1.2 KB, served. */
		mk_conn(&k, form, srv, 8080, t, t + 2 * MS, 80, 1200, 2, 2, 3, 1);
		k.served = 1;
		assert_int_equal(zt_bf_observe(b, &k, &d), 0);
		/* The guess, refused (lib/cred.h: the form again, with its error). */
		mk_conn(&k, form, srv, 8080, t + 20 * MS, t + 25 * MS, 180, 1300, 2, 2, 3, 1);
		k.refused = 1;
		if (zt_bf_observe(b, &k, &d) && !form_at) {
			form_at = i;
			assert_string_equal(d.subtype, "refused-logins");
			print_message("  %s\n", d.evidence);
			assert_true(strstr(d.evidence, "10 login attempts in 19 sessions") != NULL);
		}
	}
	for (int i = 1; i <= 500; i++) {
		struct zt_conn k;
		uint64_t t = 95000 * SEC + (uint64_t)i * 100 * MS;

		mk_conn(&k, nat, srv, 8080, t, t + 5 * MS, 180, 1300, 2, 2, 3, 1);
		k.served = i % 5 != 0;
		k.refused = i % 5 == 0;
		refusals += k.refused;
		nat_dec += zt_bf_observe(b, &k, &d);
	}
	print_message("  a guess after each page decided at %d\n", form_at);
	assert_int_equal(form_at, 10);
	assert_int_equal(refusals, 100);
	assert_int_equal(nat_dec, 0);
	zt_bf_free(b);
}

/* Two sources against one service: each its own test; the attacker only is decided. */
static void test_two_sources(void **state)
{
	struct zt_bf_params p;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t bad[16], good[16], srv[16];
	int bad_dec = 0, good_dec = 0;

	zt_bf_defaults(&p);
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(bad, 203, 0, 113, 5);
	ip4(good, 203, 0, 113, 6);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 0; i < 100; i++) {
		struct zt_conn k;
		uint64_t t = 30000 * SEC + (uint64_t)i * 100 * MS;

		mk_conn(&k, bad, srv, 2323, t, t + 20 * MS, 30, 45, 6, 6, 3, 1);
		bad_dec += zt_bf_observe(b, &k, &d);
		mk_conn(&k, good, srv, 2323, t, t + 20 * MS, 30, 4500, 6, 8, 3, 1);
		good_dec += zt_bf_observe(b, &k, &d);
	}
	assert_int_equal(good_dec, 0);
	assert_int_equal(bad_dec, 10); /* every 10 attempts: the incident grows */
	zt_bf_free(b);
}

/*
 * A table full of sources that tried once each (a botnet spreading its
 * guesses, scanners knocking once) still takes the source that keeps
 * trying: the one-try states make room for it, not the other way round.
 */
static void test_full_table(void **state)
{
	struct zt_bf_params p;
	struct zt_bf_stats st;
	struct zt_bf *b;
	struct zt_decision d;
	uint8_t bad[16], one[16], srv[16];
	int decided_at = 0;

	zt_bf_defaults(&p);
	p.max_keys = 64;
	assert_int_equal(zt_bf_new(&p, &b), 0);
	ip4(bad, 203, 0, 113, 9);
	ip4(srv, 198, 18, 1, 54);
	for (int i = 0; i < 2000; i++) {
		struct zt_conn k;
		uint64_t t = 40000 * SEC + (uint64_t)i * 10 * MS;

		/* A new source every session, from 100.64.0.0/10 ... */
		ip4(one, 100, (uint8_t)(64 + i / 65536), (uint8_t)(i / 256), (uint8_t)i);
		mk_conn(&k, one, srv, 22, t, t + 300 * MS, 1900, 2300, 14, 12, 3, 1);
		assert_int_equal(zt_bf_observe(b, &k, &d), 0);
		/* ... and, once the table is full, the attacker every 20th. */
		if (i >= 200 && i % 20 == 0) {
			mk_conn(&k, bad, srv, 22, t, t + 300 * MS, 1900, 2300, 14, 12, 3, 1);
			if (zt_bf_observe(b, &k, &d) && !decided_at)
				decided_at = (i - 200) / 20 + 1;
		}
	}
	zt_bf_get_stats(b, &st);
	print_message("  decided at attempt %d; %llu states evicted\n", decided_at,
		      (unsigned long long)st.evicted);
	assert_true(decided_at >= 1 && decided_at <= 20);
	assert_true(st.evicted >= 1800);
	assert_int_equal(st.dropped, 0);
	zt_bf_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),	     cmocka_unit_test(test_classify),
		cmocka_unit_test(test_two_sources),  cmocka_unit_test(test_refused_logins),
		cmocka_unit_test(test_clear_live),   cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_slow_guesses), cmocka_unit_test(test_refused_between_pages),
		cmocka_unit_test(test_ssh_failures), cmocka_unit_test(test_ssh_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
