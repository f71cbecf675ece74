/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Brute force: many short sessions from one source to one service that
 * end without a real exchange (a login tried and refused, again and
 * again).
 *
 * Input: TCP sessions when they end (zt_conn with its final counters):
 * from tc_endpoint at the packet that closed one (ZT_EV_SESSION), or from
 * the conntrack sweep for those no event brought. A session is
 *  - ignored when it is not TCP, the server never accepted it (no SYN-ACK:
 *    a scan's business), the client sent nothing (a port check), or, short
 *    of a refusal read, the server never acknowledged the client's first
 *    request (zt_conn.req_unacked: its full accept queue) or never answered
 *    a whole HTTP GET or HEAD (zt_conn.req_whole): a client that gave up
 *    waiting on an overloaded server (wrk, ab), not a refused login;
 *  - a real exchange when it lasted longer than max_duration, or moved
 *    more than max_bytes of payload, or the server sent at least
 *    reply_ratio times what the client sent (it delivered content: a page,
 *    a file, a query result);
 *  - an attempt for each response that refused a login in the clear
 *    (zt_conn.refused, read by tc_endpoint: HTTP 401/407, FTP 530, SMTP
 *    535, POP3 -ERR, Redis -WRONGPASS, PostgreSQL's FATAL 28xxx, MySQL's
 *    ERR 1045/1698, IMAP's NO to a login) in a session where no response
 *    after the last refusal served what was asked, however long or large
 *    the session: the server said so, and a session of several refusals
 *    (FTP, HTTP keep-alive) counts each. A session whose refusal a
 *    success followed (a Digest or NTLM challenge answered with a 200,
 *    FTP 230, SMTP 235) is judged as any other; one whose refusal only
 *    a PING, a QUIT or another request followed is still refused;
 *  - an attempt for each login an SSH server refused in a session that
 *    ended on its run of equal-sized answers (zt_conn.ssh_fails, read by
 *    tc_endpoint and, for the node's own sshd, tc_uplink: struct
 *    zt_ssh_auth), however long the session (PAM takes 2 s a guess, and
 *    a connection of 5 or 10 guesses was an exchange by its length);
 *    a guess (an answer of the run to a request the size of a password's)
 *    counts as it is refused, while its session is still open
 *    (zt_bf_refused, from ZT_EV_REFUSED), and its session's end then
 *    adds only the rest (zt_conn.ssh_live: those already counted). So
 *    do logins refused in the clear, once a session's run of them (no
 *    response that served between) reaches ZT_REFUSED_LIVE_FROM (a
 *    guesser that keeps its connection open, ncrack's HTTP keep-alive:
 *    150 guesses in a session before it ended; zt_conn.refused_live);
 *  - a real exchange, however short, when a response was an HTTP/1.x
 *    success (zt_conn.served: 2xx, read by tc_endpoint), a DNS answer or
 *    Redis's +PONG before any refusal: a health check of a tiny page, ab
 *    without keep-alive, a redis-check;
 *  - otherwise an attempt: the client said something short, the server
 *    answered with about as little (a prompt, a refusal) and it ended.
 * Per (source, service) a sequential probability ratio test runs over
 * sessions (attempt with probability theta1 for an attacker, theta0 for a
 * benign client; a login the server refused, refused1 and refused0); a
 * real exchange pulls it back. A source is decided when
 * the test says so AND at least min_attempts attempts fell within their
 * window: a user who mistypes a password a few times is never one. An
 * attempt the server refused in so many words counts for refused_window
 * (10 min, fail2ban's findtime), one read from its shape alone for window
 * (1 min): a guesser that waits several seconds between guesses is still
 * decided on the refusals, while sessions that merely look like failed
 * logins must come at least min_attempts a minute.
 *
 * Known limits: a failed login whose refusal is neither in the clear nor
 * small (anything under TLS; at a form of the node's own services, a POST
 * whose password field is not in its first segment: bpf/lib/cred.h) reads
 * as an exchange; an SSH
 * key refused before the client gets in, or a guess whose request the
 * kernel could not size (a client that sends "none" together with the
 * request before it), counts when its connection ends, and one that
 * ended on its run only; many
 * tiny request/response sessions without keep-alive from one client (ten
 * a minute and more) of a protocol other than HTTP read as attempts.
 * Kernel payload features (exact sizes instead of estimates) narrow both.
 */
#ifndef ZT_BRUTEFORCE_H
#define ZT_BRUTEFORCE_H

#include "detect/detect.h"

#define ZT_BF_RING 64 /* min_attempts is at most this */
#define ZT_BF_OPEN 8 /* sessions still open a state names in a decision's flows */

enum zt_bf_class {
	ZT_BF_IGNORED = 0,
	ZT_BF_EXCHANGE,
	ZT_BF_ATTEMPT,
};

struct zt_bf_params {
	uint32_t min_attempts; /* default 10, at most ZT_BF_RING */
	uint64_t window_ns; /* default 60 s */
	uint64_t refused_window_ns; /* for refused logins, default 10 min; at least window */
	uint64_t max_duration_ns; /* default 10 s */
	uint32_t max_bytes; /* payload both ways, default 16 KiB */
	double reply_ratio; /* default 2.0 */
	double theta0, theta1; /* P(attempt | benign) 0.2, P(attempt | attacker) 0.9 */
	/*
	 * P(a login the server refused | benign) 0.02, P(... | attacker) 0.4:
	 * a refusal's own ratio, weightier than a session's shape. An attacker's
	 * sessions are not all guesses (hydra http-post-form fetches the form
	 * before each, a 200), so an exchange between refusals must not cancel
	 * one: a guesser with a page between its guesses is still decided at
	 * its min_attempts-th refusal, while a client whose refusals are few
	 * among what it is served is pulled back.
	 */
	double refused0, refused1;
	double alpha, beta; /* 0.001, 0.99 */
	uint32_t max_keys; /* (source, service) states, default 65536 */
	uint64_t
		idle_ns; /* a state quiet this long is forgotten, default 10 min; at least the windows */
};

struct zt_bf;

struct zt_bf_stats {
	uint64_t sessions, attempts, exchanges, ignored, decisions, dropped;
	uint64_t evicted; /* states dropped to make room in the full table */
	uint64_t live_refusals; /* logins counted as they were refused (zt_bf_refused) */
};

/*
 * Logins a server refused, reported as they were (ZT_EV_REFUSED): its
 * session still open. An SSH server's guess, or (ssh false) count logins
 * refused in the clear, of a run of them in one session.
 */
struct zt_bf_refusal {
	uint8_t family;
	bool ssh;
	uint32_t count; /* 0 reads as 1 */
	uint16_t sport, dport; /* the client's port, the server's */
	uint8_t src[16], dst[16]; /* the client, the server */
	uint64_t ts_ns; /* CLOCK_BOOTTIME */
	uint64_t first_ns; /* the session's first packet; 0 where not known */
};

void zt_bf_defaults(struct zt_bf_params *p);
int zt_bf_new(const struct zt_bf_params *p, struct zt_bf **out);
void zt_bf_free(struct zt_bf *b);
enum zt_bf_class zt_bf_classify(const struct zt_bf_params *p, const struct zt_conn *c);
/* One ended session (its end is c->last_ns). 1 and *d on a decision, else 0. */
int zt_bf_observe(struct zt_bf *b, const struct zt_conn *c, struct zt_decision *d);
/* Logins refused in a session still open: refused attempts now. 1 and *d on a decision. */
int zt_bf_refused(struct zt_bf *b, const struct zt_bf_refusal *r, struct zt_decision *d);
void zt_bf_expire(struct zt_bf *b, uint64_t now_ns);
void zt_bf_get_stats(const struct zt_bf *b, struct zt_bf_stats *st);

#endif
