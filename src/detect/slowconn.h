/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Slow-connection attacks (slowloris, slow POST, slow read): one source
 * holds many connections to one service open, each moving almost no data,
 * to exhaust the server's connection slots.
 *
 * Input: every TCP connection conntrack holds, once per sweep
 * (zt_slowconn_begin, _add per connection, _end). A connection is slow
 * when it is established, at least min_age old, and either
 *  - unanswered: the client sent a (partial) request and the server has
 *    sent no payload back (slowloris, slow POST: the request never ends),
 *    or
 *  - behind a closed window: the client advertised a zero window at
 *    least twice while the server had sent at most max_reply bytes (slow
 *    read with a tiny receive buffer: the server probes the closed window
 *    and waits), or
 *  - trickling: it has been active (packets) over at least min_age and
 *    within the last idle / 3, yet its payload rate both ways is below
 *    max_rate and the server sent at most max_reply bytes (slow read: the
 *    client drains a response a few bytes at a time).
 * A connection whose first request the server never acknowledged is none
 * (zt_conn.req_unacked): it never reached a socket of the server's, whose
 * full accept queue left it in SYN_RECV; an overloaded server's clients
 * hold many such, retransmitting their requests.
 * A connection quiet for more than idle is neither: an idle keep-alive
 * after a finished exchange, or a connection pool at rest, is not an
 * attack. A source with at least min_conns slow connections to one
 * service (address, port) is decided, every sweep while it lasts.
 *
 * One benign client holds a handful of connections to a service (browsers
 * six per host); min_conns (16) sits above that.
 */
#ifndef ZT_SLOWCONN_H
#define ZT_SLOWCONN_H

#include "detect/detect.h"

struct zt_slowconn_params {
	uint32_t min_conns; /* default 16 */
	uint64_t min_age_ns; /* default 3 s */
	uint64_t idle_ns; /* a connection quiet longer is idle, not slow; default 30 s */
	uint32_t max_rate; /* payload bytes/s both ways, default 256 */
	uint32_t max_reply; /* server payload bytes of a trickling connection, default 16 KiB */
	uint32_t max_groups; /* (source, service) groups per sweep, default 65536 */
};

struct zt_slowconn;

struct zt_slowconn_stats {
	uint64_t sweeps, conns, slow, decisions, dropped_groups;
	uint64_t evicted; /* groups dropped to make room in a full sweep's table */
};

void zt_slowconn_defaults(struct zt_slowconn_params *p);
int zt_slowconn_new(const struct zt_slowconn_params *p, struct zt_slowconn **out);
void zt_slowconn_free(struct zt_slowconn *s);
/*
 * Whether one connection is slow at now_ns (and which kind: "unanswered" |
 * "closed-window" | "trickle", also the decision's subtype).
 */
bool zt_slowconn_is_slow(const struct zt_slowconn_params *p, const struct zt_conn *c,
			 uint64_t now_ns, const char **why);
void zt_slowconn_begin(struct zt_slowconn *s, uint64_t now_ns);
void zt_slowconn_add(struct zt_slowconn *s, const struct zt_conn *c);
/* Decisions of the sweep into out[0..max); returns how many (at most max). */
size_t zt_slowconn_end(struct zt_slowconn *s, struct zt_decision *out, size_t max);
/*
 * After zt_slowconn_end: when a sweep could decide next (the clock of the
 * connections' first_ns), or 0. A group short of min_conns slow
 * connections that has enough young ones (slow but for their age:
 * unanswered, or behind a closed window) is due when the first of them
 * comes of age; each sweep then says again. The caller sweeps then rather
 * than a whole interval later (a slowloris decided ~3.3 s after its start
 * instead of up to one interval after that).
 */
uint64_t zt_slowconn_next_due(const struct zt_slowconn *s);
void zt_slowconn_get_stats(const struct zt_slowconn *s, struct zt_slowconn_stats *st);

#endif
