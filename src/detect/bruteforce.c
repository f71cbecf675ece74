// SPDX-License-Identifier: GPL-2.0-only
/* Brute-force detection over ended TCP sessions (see bruteforce.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/bruteforce.h"
#include "detect/dtable.h"
#include "ztagent.h" /* ZT_REFUSED_LIVE_FROM */

struct bkey {
	uint8_t family, _pad;
	uint16_t dport;
	uint8_t src[16], dst[16];
};

struct bstate {
	struct bkey k;
	double llr;
	uint32_t sessions, attempts, exchanges; /* since the test last started */
	uint32_t refusals; /* of the attempts, logins the server refused in so many words */
	uint32_t ssh_fails; /* of the refusals, an SSH server's, read from their sizes */
	uint32_t ssh_live; /* of those, reported as each was refused (zt_bf_refused) */
	uint32_t clear_live; /* of the refusals in the clear, reported as a session's run grew */
	uint16_t
		open[ZT_BF_OPEN]; /* client ports of sessions with a guess so reported, not ended */
	uint32_t n_open;
	uint32_t ring_n, ring_head; /* times of the last attempts */
	uint64_t ring[ZT_BF_RING];
	uint64_t ring_refused; /* bit i: ring[i] was a login the server refused */
	uint64_t first_ns, last_ns, latest_start_ns;
	uint64_t packets, bytes;
};

struct zt_bf {
	struct zt_bf_params p;
	double up, down, s_att, s_ex, s_ref;
	struct zt_dtable t;
	struct zt_bf_stats st;
};

void zt_bf_defaults(struct zt_bf_params *p)
{
	*p = (struct zt_bf_params){
		.min_attempts = 10,
		.window_ns = 60000000000ULL,
		.refused_window_ns = 600000000000ULL,
		.max_duration_ns = 10000000000ULL,
		.max_bytes = 16384,
		.reply_ratio = 2.0,
		.theta0 = 0.2,
		.theta1 = 0.9,
		.refused0 = 0.02,
		.refused1 = 0.4,
		.alpha = 0.001,
		.beta = 0.99,
		.max_keys = 65536,
		.idle_ns = 600000000000ULL,
	};
}

int zt_bf_new(const struct zt_bf_params *p, struct zt_bf **out)
{
	struct zt_bf *b;
	int r;

	*out = NULL;
	if (!p->min_attempts || p->min_attempts > ZT_BF_RING || !p->max_keys ||
	    !(p->theta0 > 0 && p->theta0 < p->theta1 && p->theta1 < 1 && p->alpha > 0 &&
	      p->alpha < p->beta && p->beta < 1) ||
	    !(p->refused0 > 0 && p->refused0 < p->refused1 && p->refused1 < 1) ||
	    !(p->reply_ratio > 0))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->p = *p;
	if (b->p.refused_window_ns < b->p.window_ns)
		b->p.refused_window_ns = b->p.window_ns;
	if (b->p.idle_ns < b->p.refused_window_ns)
		b->p.idle_ns = b->p.refused_window_ns;
	b->up = log(p->beta / p->alpha);
	b->down = log((1 - p->beta) / (1 - p->alpha));
	b->s_att = log(p->theta1 / p->theta0);
	b->s_ex = log((1 - p->theta1) / (1 - p->theta0));
	b->s_ref = log(p->refused1 / p->refused0);
	r = zt_dtable_init(&b->t, p->max_keys, sizeof(struct bkey), sizeof(struct bstate), 0xb5f);
	if (r) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void zt_bf_free(struct zt_bf *b)
{
	if (!b)
		return;
	zt_dtable_free(&b->t);
	free(b);
}

enum zt_bf_class zt_bf_classify(const struct zt_bf_params *p, const struct zt_conn *c)
{
	uint64_t req, rep, dur;

	if (c->proto != 6 || !(c->flags[1] & ZT_DF_SYN) || !(c->flags[1] & ZT_DF_ACK))
		return ZT_BF_IGNORED;
	req = zt_conn_payload(c, 0);
	rep = zt_conn_payload(c, 1);
	if (req == 0)
		return ZT_BF_IGNORED;
	/*
	 * The server said so (zt_conn.refused), or an SSH server's answers did
	 * by their sizes (zt_conn.ssh_fails): however long or large, logins
	 * refused (an SSH server behind PAM takes 2 s and more for each).
	 */
	if (c->refused || c->ssh_fails || c->ssh_live || c->refused_live)
		return ZT_BF_ATTEMPT;
	/*
	 * The server never took the request in (zt_conn.req_unacked: an
	 * overloaded server's full accept queue left the connection in
	 * SYN_RECV), or never answered a whole HTTP GET or HEAD: the client
	 * gave up waiting (wrk or ab at its end or timeout). Nothing was
	 * refused, and a guesser learns nothing from either.
	 */
	if (c->req_unacked || (c->req_whole && rep == 0))
		return ZT_BF_IGNORED;
	/* It served what was asked (an HTTP 2xx): however short, no failed login. */
	if (c->served)
		return ZT_BF_EXCHANGE;
	/* It ended where the server asked for a password: none was tried (pg_isready). */
	if (c->challenged)
		return ZT_BF_IGNORED;
	dur = c->last_ns > c->first_ns ? c->last_ns - c->first_ns : 0;
	if (dur > p->max_duration_ns || req + rep > p->max_bytes ||
	    (double)rep >= p->reply_ratio * (double)req)
		return ZT_BF_EXCHANGE;
	return ZT_BF_ATTEMPT;
}

/* Attempts among the ring's that are within their window of now. */
static uint32_t recent(const struct zt_bf *b, const struct bstate *s, uint64_t now)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->ring_n; i++)
		if (s->ring[i] + ((s->ring_refused >> i) & 1 ? b->p.refused_window_ns :
							       b->p.window_ns) >=
		    now)
			n++;
	return n;
}

/*
 * A full table makes room (zt_dtable_get_evict): the sessions of many
 * sources that tried once each (a botnet spreading its guesses, the
 * Internet's background of single probes) go before a source whose test
 * has gone further, so they cannot blind the detector for its idle time.
 */
static uint64_t bstate_worth(const void *e, void *arg)
{
	const struct bstate *s = e;
	const struct zt_bf *b = arg;

	return zt_dtable_worth_walk(s->llr, b->down, b->up, s->last_ns);
}

static void restart(struct bstate *s)
{
	struct bkey k = s->k;

	memset(s, 0, sizeof(*s));
	s->k = k;
}

/* w attempts at ts into s's test; refused: logins the server refused (they count longer). */
static void add_attempts(const struct zt_bf *b, struct bstate *s, uint32_t w, bool refused,
			 uint64_t ts)
{
	for (uint32_t i = 0; i < w; i++) {
		s->llr += refused ? b->s_ref : b->s_att;
		s->ring[s->ring_head] = ts;
		if (refused)
			s->ring_refused |= 1ULL << s->ring_head;
		else
			s->ring_refused &= ~(1ULL << s->ring_head);
		s->ring_head = (s->ring_head + 1) % ZT_BF_RING;
		if (s->ring_n < ZT_BF_RING)
			s->ring_n++;
	}
}

/* Whether s's session from client port sport has a guess reported as it was refused. */
static int open_find(const struct bstate *s, uint16_t sport)
{
	for (uint32_t i = 0; i < s->n_open; i++)
		if (s->open[i] == sport)
			return (int)i;
	return -1;
}

/* The session from sport has ended: it is among s->sessions now. */
static void open_del(struct bstate *s, uint16_t sport)
{
	int i = open_find(s, sport);

	if (i >= 0)
		s->open[i] = s->open[--s->n_open];
}

/*
 * A decision on s when its test says so and enough attempts fall within
 * their windows at ts: 1 and *d, else 0. The state starts over then.
 */
static int decide(struct zt_bf *b, struct bstate *s, uint64_t ts, struct zt_decision *d)
{
	const struct bkey *k = &s->k;
	char dst[64], live[160] = "";
	uint32_t n, flows = s->sessions + s->n_open;
	double lam;

	if (s->llr < b->up)
		return 0;
	n = recent(b, s, ts);
	if (n < b->p.min_attempts)
		return 0;
	lam = exp(s->llr > 50 ? 50 : s->llr);
	zt_decision_init(d, ZT_THREAT_BRUTEFORCE, ZT_ROLE_SOURCE, k->family, k->src, ts);
	memcpy(d->peer, k->dst, 16);
	d->has_peer = true;
	d->proto = 6;
	d->dport = k->dport;
	d->score = (float)(lam / (1 + lam));
	d->first_ns = s->first_ns;
	d->latest_start_ns = s->latest_start_ns;
	d->window_ns = ts > s->first_ns ? ts - s->first_ns : 0;
	d->value = n;
	d->threshold = b->p.min_attempts;
	d->flows = flows;
	d->packets = s->packets;
	d->bytes = s->bytes;
	zt_addr_str(k->family, k->dst, dst, sizeof(dst));
	if (s->ssh_fails) {
		/* An SSH server's answers decided, by their sizes. */
		if (s->ssh_live)
			snprintf(live, sizeof(live),
				 ", %u of them counted as each was refused (an answer of the run "
				 "to a request the size of a password's; %u sessions still open)",
				 s->ssh_live, s->n_open);
		snprintf(d->subtype, sizeof(d->subtype), "ssh-failures");
		snprintf(d->evidence, sizeof(d->evidence),
			 "%u login attempts in %u sessions to %s:%u, %u refused by the "
			 "SSH server (runs of equal-sized answers to their authentication "
			 "requests%s)%s, the rest ended without a real exchange (%u within "
			 "%.0fs of a refusal, %.0fs of the rest, threshold %u; SPRT ln L "
			 "%.2f >= %.2f)",
			 s->attempts, flows, dst, k->dport, s->ssh_fails, live,
			 s->refusals > s->ssh_fails ? " or in the clear" : "", n,
			 (double)b->p.refused_window_ns / 1e9, (double)b->p.window_ns / 1e9,
			 b->p.min_attempts, s->llr, b->up);
	} else if (s->refusals) {
		/* The server's own words decided. */
		if (s->clear_live)
			snprintf(live, sizeof(live),
				 "; %u of them counted as they came, runs of %u or more in one "
				 "session, %u sessions still open",
				 s->clear_live, ZT_REFUSED_LIVE_FROM, s->n_open);
		snprintf(d->subtype, sizeof(d->subtype), "refused-logins");
		snprintf(d->evidence, sizeof(d->evidence),
			 "%u login attempts in %u sessions to %s:%u, %u refused by the "
			 "server (HTTP 401/407 or a form's 2xx/4xx to a password, FTP 530, "
			 "SMTP 535, -ERR, -WRONGPASS, "
			 "PostgreSQL 28xxx, MySQL 1045/1698, IMAP NO%s), "
			 "the rest ended without a real exchange (%u within %.0fs of a "
			 "refusal, %.0fs of the rest, threshold %u; SPRT ln L %.2f >= %.2f)",
			 s->attempts, flows, dst, k->dport, s->refusals, live, n,
			 (double)b->p.refused_window_ns / 1e9, (double)b->p.window_ns / 1e9,
			 b->p.min_attempts, s->llr, b->up);
	} else {
		snprintf(d->subtype, sizeof(d->subtype), "short-sessions");
		snprintf(d->evidence, sizeof(d->evidence),
			 "%u of %u sessions to %s:%u ended without a real exchange (%u "
			 "within %.0fs, threshold %u; SPRT ln L %.2f >= %.2f; reply < "
			 "%.1fx request, < %us, < %u B)",
			 s->attempts, flows, dst, k->dport, n, (double)b->p.window_ns / 1e9,
			 b->p.min_attempts, s->llr, b->up, b->p.reply_ratio,
			 (unsigned int)(b->p.max_duration_ns / 1000000000ULL), b->p.max_bytes);
	}
	b->st.decisions++;
	/* Another decision needs another full test: the incident counts grow meanwhile. */
	restart(s);
	return 1;
}

static void key_fill(struct bkey *k, uint8_t family, const uint8_t *src, const uint8_t *dst,
		     uint16_t dport)
{
	memset(k, 0, sizeof(*k));
	k->family = family;
	k->dport = dport;
	memcpy(k->src, src, zt_fam_len(family));
	memcpy(k->dst, dst, zt_fam_len(family));
}

int zt_bf_observe(struct zt_bf *b, const struct zt_conn *c, struct zt_decision *d)
{
	enum zt_bf_class cls = zt_bf_classify(&b->p, c);
	struct bkey k;
	struct bstate *s;
	uint64_t ts = c->last_ns;
	uint32_t w, refused = (uint32_t)c->refused + c->ssh_fails;
	uint32_t live = (uint32_t)c->ssh_live + c->refused_live;
	bool created;

	b->st.sessions++;
	if (cls == ZT_BF_IGNORED || (c->family != 4 && c->family != 6)) {
		b->st.ignored++;
		return 0;
	}
	key_fill(&k, c->family, c->src, c->dst, c->dport);
	s = cls == ZT_BF_ATTEMPT ? zt_dtable_get_evict(&b->t, &k, &created, bstate_worth, NULL, b) :
				   zt_dtable_find(&b->t, &k);
	if (cls == ZT_BF_EXCHANGE)
		b->st.exchanges++;
	else
		b->st.attempts++;
	if (!s) {
		/* An exchange with no test running is the normal case: nothing to keep. */
		if (cls == ZT_BF_ATTEMPT)
			b->st.dropped++;
		return 0;
	}
	if (!s->first_ns || (c->first_ns && c->first_ns < s->first_ns))
		s->first_ns = c->first_ns;
	s->sessions++;
	open_del(s, c->sport);
	s->last_ns = ts;
	s->packets += c->packets[0] + c->packets[1];
	s->bytes += c->bytes[0] + c->bytes[1];
	if (cls == ZT_BF_EXCHANGE) {
		s->exchanges++;
		s->llr += b->s_ex;
		if (s->llr <= b->down)
			zt_dtable_del(&b->t, s); /* a client that gets through: forget it */
		return 0;
	}
	/*
	 * A session whose server refused several logins (FTP, keep-alive HTTP,
	 * SSH) is that many; a session whose refusals all came as they were
	 * (zt_bf_refused) has none left to add.
	 */
	w = refused > 1 ? refused : (refused || !live) ? 1 : 0;
	s->attempts += w;
	s->refusals += refused;
	s->ssh_fails += c->ssh_fails;
	if (c->first_ns > s->latest_start_ns)
		s->latest_start_ns = c->first_ns;
	add_attempts(b, s, w, refused != 0, ts);
	return w ? decide(b, s, ts, d) : 0;
}

int zt_bf_refused(struct zt_bf *b, const struct zt_bf_refusal *r, struct zt_decision *d)
{
	uint64_t first = r->first_ns ? r->first_ns : r->ts_ns;
	uint32_t n = r->count ? r->count : 1;
	struct bkey k;
	struct bstate *s;
	bool created;

	if (r->family != 4 && r->family != 6)
		return 0;
	b->st.live_refusals += n;
	key_fill(&k, r->family, r->src, r->dst, r->dport);
	s = zt_dtable_get_evict(&b->t, &k, &created, bstate_worth, NULL, b);
	if (!s) {
		b->st.dropped++;
		return 0;
	}
	if (!s->first_ns || first < s->first_ns)
		s->first_ns = first;
	if (first > s->latest_start_ns)
		s->latest_start_ns = first;
	if (open_find(s, r->sport) < 0) {
		if (s->n_open == ZT_BF_OPEN)
			s->open[0] = s->open[--s->n_open];
		s->open[s->n_open++] = r->sport;
	}
	s->last_ns = r->ts_ns;
	s->attempts += n;
	s->refusals += n;
	if (r->ssh) {
		s->ssh_fails += n;
		s->ssh_live += n;
	} else {
		s->clear_live += n;
	}
	add_attempts(b, s, n, true, r->ts_ns);
	return decide(b, s, r->ts_ns, d);
}

void zt_bf_expire(struct zt_bf *b, uint64_t now_ns)
{
	uint64_t cut = now_ns > b->p.idle_ns ? now_ns - b->p.idle_ns : 0;
	size_t pos = 0;
	struct bstate *s;

	while ((s = zt_dtable_next(&b->t, &pos)))
		if (s->last_ns < cut)
			zt_dtable_del_at(&b->t, &pos);
}

void zt_bf_get_stats(const struct zt_bf *b, struct zt_bf_stats *st)
{
	*st = b->st;
	st->evicted = b->t.evicted;
}
