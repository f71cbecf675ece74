// SPDX-License-Identifier: GPL-2.0-only
/* First contacts waiting for their outcome (see probes.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "detect/probes.h"

#define EPHEMERAL_LO 32768
#define EPHEMERAL_HI 60999

struct slot {
	uint64_t ts_ns; /* 0: free */
	struct zt_probe p; /* outcome 0 while it waits */
	bool stray; /* a stray reset: fails unless a probe of the same contact takes its place */
};

struct zt_probe_table {
	size_t n;
	uint64_t timeout_ns;
	uint16_t eph_lo, eph_hi;
	struct zt_probe_table_stats st;
	struct slot s[];
};

int zt_probe_table_new(size_t slots, uint64_t timeout_ns, struct zt_probe_table **out)
{
	struct zt_probe_table *t;

	if (!slots || slots > (SIZE_MAX - sizeof(*t)) / sizeof(struct slot))
		return -EINVAL;
	t = calloc(1, sizeof(*t) + slots * sizeof(struct slot));
	if (!t)
		return -ENOMEM;
	t->n = slots;
	t->timeout_ns = timeout_ns;
	t->eph_lo = EPHEMERAL_LO;
	t->eph_hi = EPHEMERAL_HI;
	*out = t;
	return 0;
}

void zt_probe_table_free(struct zt_probe_table *t)
{
	free(t);
}

void zt_probe_table_set_ephemeral(struct zt_probe_table *t, uint16_t lo, uint16_t hi)
{
	t->eph_lo = lo;
	t->eph_hi = hi;
}

/* The slot of a contact: (proto, source, destination, port). */
static struct slot *slot_of(struct zt_probe_table *t, const struct zt_probe *p)
{
	uint8_t k[36];

	memcpy(k, p->src, 16);
	memcpy(k + 16, p->dst, 16);
	k[32] = p->proto;
	k[33] = (uint8_t)(p->dport >> 8);
	k[34] = (uint8_t)p->dport;
	k[35] = 0;
	return &t->s[zt_detect_hash(k, sizeof(k), 0x7a74) % t->n];
}

static bool same_contact(const struct zt_probe *a, const struct zt_probe *b)
{
	return a->family == b->family && a->proto == b->proto && a->dport == b->dport &&
	       !memcmp(a->src, b->src, 16) && !memcmp(a->dst, b->dst, 16);
}

/* A taken slot's contact, failed: it got no answer in time (or lost the slot). */
static struct zt_probe failed(struct zt_probe_table *t, const struct slot *s)
{
	struct zt_probe p = s->p;

	if (s->stray) {
		p.outcome = ZT_PROBE_FAIL_RST;
		t->st.strays++;
	} else {
		p.outcome = ZT_PROBE_FAIL_TIMEOUT;
		t->st.timed_out++;
	}
	return p;
}

static void take(struct slot *s, const struct zt_probe *p, bool stray)
{
	s->p = *p;
	s->p.outcome = 0;
	s->ts_ns = p->ts_ns ? p->ts_ns : 1;
	s->stray = stray;
}

int zt_probe_table_add(struct zt_probe_table *t, const struct zt_probe *p, struct zt_probe *out)
{
	struct slot *s = slot_of(t, p);
	int r = 0;

	/* Another contact's: decided now. A stray reset of the same contact gives way. */
	if (s->ts_ns && !same_contact(&s->p, p)) {
		*out = failed(t, s);
		r = 1;
	}
	take(s, p, false);
	return r;
}

static uint8_t outcome_of(uint8_t result)
{
	switch (result) {
	case ZT_PROBE_OPEN:
		return ZT_PROBE_SUCCESS;
	case ZT_PROBE_CLOSED:
	case ZT_PROBE_STRAY_RST:
		return ZT_PROBE_FAIL_RST;
	case ZT_PROBE_STRAY_DENIED:
		return ZT_PROBE_FAIL_TIMEOUT; /* dropped by policy: no answer will come */
	default:
		return ZT_PROBE_FAIL_UNREACH;
	}
}

int zt_probe_table_answer(struct zt_probe_table *t, const struct zt_ev_probe_result *ev,
			  struct zt_probe *out)
{
	bool stray = ev->result == ZT_PROBE_STRAY_RST || ev->result == ZT_PROBE_STRAY_PROTO ||
		     ev->result == ZT_PROBE_STRAY_DENIED;
	uint16_t port = (ev->proto == 6 || ev->proto == 17) ? ev->port : 0;
	struct zt_probe p;
	struct slot *s;
	int r = 0;

	memset(&p, 0, sizeof(p));
	p.family = ev->family == 6 ? 6 : 4;
	p.proto = ev->proto;
	p.dport = port;
	memcpy(p.src, ev->prober, 16);
	memcpy(p.dst, ev->target, 16);
	p.ts_ns = ev->hdr.ts_ns;
	s = slot_of(t, &p);
	if (s->ts_ns && same_contact(&s->p, &p)) {
		/* A stray reset again for a contact already waiting: the first one's time stands. */
		if (s->stray)
			return 0;
		*out = s->p;
		out->outcome = outcome_of(ev->result);
		s->ts_ns = 0;
		t->st.answered++;
		return 1;
	}
	if (!stray)
		return 0; /* a probe already decided (timed out, or displaced) */
	/* A protocol unreachable names no port (0). */
	if (port && port >= t->eph_lo && port <= t->eph_hi) {
		t->st.strays_ephemeral++;
		return 0;
	}
	/* A protocol nothing serves, a FIN policy denied (a connection too): nothing to wait for. */
	if (ev->result != ZT_PROBE_STRAY_RST) {
		*out = p;
		out->outcome = outcome_of(ev->result);
		t->st.strays++;
		return 1;
	}
	if (s->ts_ns) {
		*out = failed(t, s);
		r = 1;
	}
	take(s, &p, true);
	return r;
}

size_t zt_probe_table_expire(struct zt_probe_table *t, uint64_t now_ns, struct zt_probe *v,
			     size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < t->n && n < max; k++) {
		struct slot *s = &t->s[k];

		if (s->ts_ns && now_ns > s->ts_ns + t->timeout_ns) {
			v[n++] = failed(t, s);
			s->ts_ns = 0;
		}
	}
	return n;
}

void zt_probe_table_get_stats(const struct zt_probe_table *t, struct zt_probe_table_stats *st)
{
	*st = t->st;
}
