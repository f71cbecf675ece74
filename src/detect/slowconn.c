// SPDX-License-Identifier: GPL-2.0-only
/* Slow-connection attack detection over conntrack sweeps (see slowconn.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/dtable.h"
#include "detect/slowconn.h"

#define CT_ESTABLISHED 1

struct gkey {
	uint8_t family, _pad;
	uint16_t dport;
	uint8_t src[16], dst[16];
};

struct group {
	struct gkey k;
	uint32_t total, slow, unanswered, trickle, window;
	uint32_t young; /* slow but for their age (zt_slowconn_add) */
	uint64_t first_ns, last_ns, latest_start_ns;
	uint64_t young_due; /* the first of them to come of age */
	uint64_t packets, bytes;
};

struct zt_slowconn {
	struct zt_slowconn_params p;
	struct zt_dtable groups;
	uint64_t now;
	uint64_t next_due; /* zt_slowconn_next_due, from the last zt_slowconn_end */
	struct zt_slowconn_stats st;
};

void zt_slowconn_defaults(struct zt_slowconn_params *p)
{
	*p = (struct zt_slowconn_params){
		.min_conns = 16,
		.min_age_ns = 3000000000ULL,
		.idle_ns = 30000000000ULL,
		.max_rate = 256,
		.max_reply = 16384,
		.max_groups = 65536,
	};
}

int zt_slowconn_new(const struct zt_slowconn_params *p, struct zt_slowconn **out)
{
	struct zt_slowconn *s;
	int r;

	*out = NULL;
	if (!p->min_conns || !p->max_groups)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	r = zt_dtable_init(&s->groups, p->max_groups, sizeof(struct gkey), sizeof(struct group),
			   0x510c0);
	if (r) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void zt_slowconn_free(struct zt_slowconn *s)
{
	if (!s)
		return;
	zt_dtable_free(&s->groups);
	free(s);
}

/*
 * Since when the connection holds the server, where known (zt_conn.held_ns:
 * the handshake's completion, or the server's acknowledgment of the first
 * request when later). A client whose SYNs or request a full accept queue
 * dropped for seconds (sent again at 1, 3, 7 s...) held nothing meanwhile:
 * timed from its first SYN, its few bytes then read as a trickle (ab -c 500
 * at python3 -m http.server: requests sent again for 12 s, 20 decided
 * slowconn/trickle once in 5 runs).
 */
static uint64_t held_from(const struct zt_conn *c)
{
	return c->held_ns > c->first_ns ? c->held_ns : c->first_ns;
}

bool zt_slowconn_is_slow(const struct zt_slowconn_params *p, const struct zt_conn *c, uint64_t now,
			 const char **why)
{
	uint64_t age, quiet, span, req, rep, start = held_from(c);

	if (c->proto != 6 || c->state != CT_ESTABLISHED || now < start)
		return false;
	/* Both sides talked TCP: the server accepted (a SYN flood is not this). */
	if (!(c->flags[1] & ZT_DF_SYN) || !(c->flags[1] & ZT_DF_ACK))
		return false;
	age = now - start;
	quiet = now > c->last_ns ? now - c->last_ns : 0;
	span = c->last_ns > start ? c->last_ns - start : 0;
	if (age < p->min_age_ns || quiet > p->idle_ns)
		return false;
	/*
	 * A request the server never acknowledged never reached a socket of
	 * its: the client of an overloaded server whose full accept queue left
	 * the connection in SYN_RECV (ab -c 50 against a backlog of 5 leaves
	 * dozens so), whose retransmissions trickle, not one that keeps the
	 * server busy. Every slow kind has the server take the request in.
	 */
	if (c->req_unacked)
		return false;
	req = zt_conn_payload(c, 0);
	rep = zt_conn_payload(c, 1);
	/*
	 * Unanswered, with a request that is not whole: a server slow to
	 * answer a whole GET (ab -c 50 at python3 -m http.server: seconds,
	 * dozens at once) is slow itself; a slowloris never ends its headers.
	 */
	if (req > 0 && rep == 0 && !c->req_whole) {
		*why = "unanswered";
		return true;
	}
	/*
	 * A slow read that closed its window on a reply that has hardly begun
	 * (slowhttptest -X: a receive buffer of a few dozen bytes). The server
	 * probes the closed window at growing intervals, so the trickle's
	 * rate below, which counts the request and the first window's worth,
	 * takes many seconds to come down. A client that merely reads slowly
	 * closes its window only once its receive buffer (64 KiB and more) is
	 * full: far beyond max_reply.
	 */
	if (c->zero_win >= 2 && rep <= p->max_reply) {
		*why = "closed-window";
		return true;
	}
	/* A trickle never pauses long: a pool's periodic keep-alive query does. */
	if (span >= p->min_age_ns && quiet <= p->idle_ns / 3 && rep <= p->max_reply &&
	    (double)(req + rep) * 1e9 / (double)age <= (double)p->max_rate) {
		*why = "trickle";
		return true;
	}
	return false;
}

/*
 * A full table makes room (zt_dtable_get_evict): the group with the fewest
 * slow connections goes first (then the least recent), so many sources
 * holding one slow connection each cannot keep out the group of one that
 * holds many.
 */
static uint64_t group_worth(const void *e, void *arg)
{
	const struct group *g = e;
	uint64_t n = g->slow < 0xffff ? g->slow : 0xffff;

	(void)arg;
	return n << 48 | g->last_ns >> 16;
}

void zt_slowconn_begin(struct zt_slowconn *s, uint64_t now_ns)
{
	zt_dtable_clear(&s->groups);
	s->now = now_ns;
	s->st.sweeps++;
}

void zt_slowconn_add(struct zt_slowconn *s, const struct zt_conn *c)
{
	struct gkey k;
	struct group *g;
	const char *why = NULL;
	bool slow, young, created;
	uint64_t start = held_from(c);

	if (c->proto != 6 || (c->family != 4 && c->family != 6))
		return;
	s->st.conns++;
	slow = zt_slowconn_is_slow(&s->p, c, s->now, &why);
	/*
	 * Young: younger than min_age, and slow if it stays as it is until then
	 * (unanswered, or behind a closed window; a trickle's rate needs the
	 * age). Counted so that the sweep can come back when enough are of
	 * age (zt_slowconn_next_due), not a whole sweep interval later.
	 */
	young = !slow && start + s->p.min_age_ns > s->now &&
		zt_slowconn_is_slow(&s->p, c, start + s->p.min_age_ns, &why);
	memset(&k, 0, sizeof(k));
	k.family = c->family;
	k.dport = c->dport;
	memcpy(k.src, c->src, zt_fam_len(c->family));
	memcpy(k.dst, c->dst, zt_fam_len(c->family));
	/* Groups only where a slow or young one is: a sweep of a busy node stays cheap. */
	g = slow || young ? zt_dtable_get_evict(&s->groups, &k, &created, group_worth, NULL, NULL) :
			    zt_dtable_find(&s->groups, &k);
	if (!g) {
		if (slow)
			s->st.dropped_groups++;
		return;
	}
	g->total++;
	if (young) {
		g->young++;
		if (!g->young_due || start + s->p.min_age_ns < g->young_due)
			g->young_due = start + s->p.min_age_ns;
	}
	if (!slow)
		return;
	s->st.slow++;
	g->slow++;
	if (why[0] == 'u')
		g->unanswered++;
	else if (why[0] == 'c')
		g->window++;
	else
		g->trickle++;
	if (!g->first_ns || start < g->first_ns)
		g->first_ns = start;
	if (c->last_ns > g->last_ns)
		g->last_ns = c->last_ns;
	if (start > g->latest_start_ns)
		g->latest_start_ns = start;
	g->packets += c->packets[0] + c->packets[1];
	g->bytes += c->bytes[0] + c->bytes[1];
}

/* What most of a group's slow connections are (zt_slowconn_is_slow's why). */
static const char *group_kind(const struct group *g)
{
	if (g->window > g->unanswered && g->window > g->trickle)
		return "closed-window";
	return g->unanswered >= g->trickle ? "unanswered" : "trickle";
}

size_t zt_slowconn_end(struct zt_slowconn *s, struct zt_decision *out, size_t max)
{
	size_t pos = 0, n = 0;
	struct group *g;

	s->next_due = 0;
	while (n < max && (g = zt_dtable_next(&s->groups, &pos))) {
		struct zt_decision *d = &out[n];
		char dst[64];

		if (g->slow < s->p.min_conns) {
			/* Enough coming of age: the next sweep is due when the first does. */
			if (g->young && g->slow + g->young >= s->p.min_conns &&
			    (!s->next_due || g->young_due < s->next_due))
				s->next_due = g->young_due;
			continue;
		}
		/* Its time is the latest activity it saw: lingering connections are old news. */
		zt_decision_init(d, ZT_THREAT_SLOWCONN, ZT_ROLE_SOURCE, g->k.family, g->k.src,
				 g->last_ns);
		memcpy(d->peer, g->k.dst, 16);
		d->has_peer = true;
		d->proto = 6;
		d->dport = g->k.dport;
		d->score = (float)((double)g->slow / ((double)g->slow + s->p.min_conns / 4.0));
		d->first_ns = g->first_ns;
		d->latest_start_ns = g->latest_start_ns;
		d->window_ns = s->now > g->first_ns ? s->now - g->first_ns : 0;
		d->value = g->slow;
		d->threshold = s->p.min_conns;
		d->flows = g->slow;
		d->packets = g->packets;
		d->bytes = g->bytes;
		snprintf(d->subtype, sizeof(d->subtype), "%s", group_kind(g));
		snprintf(d->evidence, sizeof(d->evidence),
			 "%u slow connections open to %s:%u (%u unanswered, %u trickling "
			 "under %u B/s, %u behind a closed window), the oldest for %.1fs "
			 "(threshold %u connections older than %.1fs)",
			 g->slow, zt_addr_str(g->k.family, g->k.dst, dst, sizeof(dst)), g->k.dport,
			 g->unanswered, g->trickle, s->p.max_rate, g->window,
			 (double)d->window_ns / 1e9, s->p.min_conns, (double)s->p.min_age_ns / 1e9);
		s->st.decisions++;
		n++;
	}
	return n;
}

uint64_t zt_slowconn_next_due(const struct zt_slowconn *s)
{
	return s->next_due;
}

void zt_slowconn_get_stats(const struct zt_slowconn *s, struct zt_slowconn_stats *st)
{
	*st = s->st;
	st->evicted = s->groups.evicted;
}
