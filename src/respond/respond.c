// SPDX-License-Identifier: GPL-2.0-only
/* The response policy: modes, TTL escalation, addresses never blocked (see respond.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "detect/dtable.h"
#include "feeds/feed.h"
#include "respond/respond.h"

#define SEC 1000000000ULL

struct okey {
	uint8_t family, _pad[3];
	uint8_t addr[16];
};

struct offender {
	struct okey k;
	uint32_t offences;
	uint32_t _pad;
	uint64_t until_ns; /* end of the last block */
	uint64_t ttl_ns;
};

struct cidr_list {
	struct zt_cidr *v;
	size_t n;
};

struct zt_respond {
	struct zt_respond_cfg c;
	struct cidr_list protected, special, node, gw;
	zt_allowlisted_fn allowlisted;
	zt_allowlisted_fn endpoint;
	void *actx;
	struct zt_dtable off;
	struct zt_respond_stats st;
};

static const char *const mode_names[] = { "off", "alert", "block" };
static const char *const act_names[] = { "none", "alert", "block", "already", "refused" };

const char *zt_resp_mode_name(unsigned int m)
{
	return m <= ZT_RESP_BLOCK ? mode_names[m] : "?";
}

int zt_resp_mode_parse(const char *s, enum zt_resp_mode *out)
{
	for (unsigned int i = 0; i <= ZT_RESP_BLOCK; i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum zt_resp_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *zt_resp_act_name(unsigned int a)
{
	return a <= ZT_RA_REFUSED ? act_names[a] : "?";
}

void zt_respond_cfg_defaults(struct zt_respond_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = ZT_RESP_BLOCK;
	for (int t = 0; t < ZT_THREAT_MAX; t++)
		c->detector_mode[t] = ZT_RESP_BLOCK;
	c->detector_mode[ZT_THREAT_EXFIL] = ZT_RESP_ALERT;
	c->detector_mode[ZT_THREAT_MODEL] = ZT_RESP_ALERT;
	c->endpoints_mode = ZT_RESP_ALERT;
	c->block_ttl_ns = 600 * SEC;
	c->max_ttl_ns = 86400 * SEC;
	c->max_offenders = 65536;
}

static int list_set(struct cidr_list *l, const struct zt_cidr *v, size_t n)
{
	struct zt_cidr *c = NULL;

	if (n) {
		c = malloc(n * sizeof(*c));
		if (!c)
			return -ENOMEM;
		memcpy(c, v, n * sizeof(*c));
	}
	free(l->v);
	l->v = c;
	l->n = n;
	return 0;
}

static bool list_has(const struct cidr_list *l, int af, const uint8_t *addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].family == af && zt_cidr_contains(&l->v[i], addr))
			return true;
	return false;
}

int zt_respond_new(const struct zt_respond_cfg *c, zt_allowlisted_fn allowlisted, void *ctx,
		   struct zt_respond **out)
{
	struct zt_respond *r;
	struct zt_cidr sp[16];
	size_t nsp = 0;
	int err;

	*out = NULL;
	if (!c->block_ttl_ns || c->max_ttl_ns < c->block_ttl_ns || !c->max_offenders)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = *c;
	r->c.protected_cidrs = NULL;
	r->allowlisted = allowlisted;
	r->actx = ctx;
	for (size_t i = 0; zt_feed_special_ranges[i] && nsp < ZT_ARRAY_SIZE(sp); i++)
		if (zt_cidr_parse(zt_feed_special_ranges[i], &sp[nsp], NULL) == 0)
			nsp++;
	err = list_set(&r->protected, c->protected_cidrs, c->n_protected);
	if (!err)
		err = list_set(&r->special, sp, nsp);
	if (!err)
		err = zt_dtable_init(&r->off, c->max_offenders, sizeof(struct okey),
				     sizeof(struct offender), 0x0ff);
	if (err) {
		zt_respond_free(r);
		return err;
	}
	*out = r;
	return 0;
}

void zt_respond_free(struct zt_respond *r)
{
	if (!r)
		return;
	free(r->protected.v);
	free(r->special.v);
	free(r->node.v);
	free(r->gw.v);
	zt_dtable_free(&r->off);
	free(r);
}

int zt_respond_set_node(struct zt_respond *r, const struct zt_cidr *addrs, size_t n_addrs,
			const struct zt_cidr *gateways, size_t n_gw)
{
	int err = list_set(&r->node, addrs, n_addrs);

	return err ? err : list_set(&r->gw, gateways, n_gw);
}

static int hexbytes(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = (uint8_t)b;
	}
	return 0;
}

static int add_gw(struct zt_cidr **v, size_t *n, size_t *cap, int af, const uint8_t *a)
{
	struct zt_cidr c = { .family = af, .prefixlen = af == AF_INET ? 32 : 128 };

	memcpy(c.addr, a, af == AF_INET ? 4 : 16);
	for (size_t i = 0; i < *n; i++)
		if (!memcmp(&(*v)[i], &c, sizeof(c)))
			return 0;
	if (zt_grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = c;
	return 0;
}

int zt_respond_read_node(struct zt_cidr **addrs, size_t *n_addrs, struct zt_cidr **gw, size_t *n_gw)
{
	char line[512];
	size_t cap = 0;
	FILE *f;
	int err;

	*gw = NULL;
	*n_gw = 0;
	err = zt_feed_node_addrs(addrs, n_addrs);
	if (err)
		return err;
	/* Iface Destination Gateway Flags ...: the gateway as the kernel's u32, in hex. */
	f = fopen("/proc/net/route", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char ifn[64];
		unsigned int dst, gwv, flags;

		if (sscanf(line, "%63s %x %x %x", ifn, &dst, &gwv, &flags) == 4 && gwv &&
		    add_gw(gw, n_gw, &cap, AF_INET, (const uint8_t *)&gwv) < 0) {
			err = -ENOMEM;
			break;
		}
	}
	if (f)
		fclose(f);
	/* dest plen src plen next-hop ...: 32 hex digits each, network order. */
	f = err ? NULL : fopen("/proc/net/ipv6_route", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char d[33], s[33], nh[33];
		unsigned int dl, sl;
		uint8_t a[16];
		static const uint8_t zero[16];

		if (sscanf(line, "%32s %x %32s %x %32s", d, &dl, s, &sl, nh) == 5 &&
		    hexbytes(nh, a, 16) == 0 && memcmp(a, zero, 16) &&
		    add_gw(gw, n_gw, &cap, AF_INET6, a) < 0) {
			err = -ENOMEM;
			break;
		}
	}
	if (f)
		fclose(f);
	if (err) {
		free(*addrs);
		free(*gw);
		*addrs = *gw = NULL;
		*n_addrs = *n_gw = 0;
	}
	return err;
}

int zt_respond_never_cidrs(const struct zt_respond *r, struct zt_cidr **out, size_t *n)
{
	const struct cidr_list *l[] = { &r->protected, &r->special, &r->node, &r->gw };
	size_t total = 0, k = 0;
	struct zt_cidr *v;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(l); i++)
		total += l[i]->n;
	v = malloc((total ? total : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < ZT_ARRAY_SIZE(l); i++) {
		memcpy(v + k, l[i]->v, l[i]->n * sizeof(*v));
		k += l[i]->n;
	}
	*out = v;
	*n = total;
	return 0;
}

void zt_respond_set_endpoint_fn(struct zt_respond *r, zt_allowlisted_fn endpoint)
{
	r->endpoint = endpoint;
}

const char *zt_respond_never(struct zt_respond *r, uint8_t family, const uint8_t *addr)
{
	int af = family == 6 ? AF_INET6 : AF_INET;

	if (list_has(&r->protected, af, addr))
		return "protected";
	if (list_has(&r->special, af, addr))
		return "special-purpose";
	if (list_has(&r->node, af, addr))
		return "node";
	if (list_has(&r->gw, af, addr))
		return "gateway";
	if (r->allowlisted && r->allowlisted(r->actx, family, addr) > 0)
		return "allowlist";
	return NULL;
}

enum zt_resp_mode zt_respond_mode(const struct zt_respond *r, enum zt_threat t)
{
	uint8_t m = t < ZT_THREAT_MAX ? r->c.detector_mode[t] : ZT_RESP_ALERT;

	return (enum zt_resp_mode)(m < r->c.mode ? m : r->c.mode);
}

static void count_refusal(struct zt_respond *r, const char *why)
{
	if (!strcmp(why, "protected"))
		r->st.refused_protected++;
	else if (!strcmp(why, "special-purpose"))
		r->st.refused_special++;
	else if (!strcmp(why, "node"))
		r->st.refused_node++;
	else if (!strcmp(why, "gateway"))
		r->st.refused_gateway++;
	else if (!strcmp(why, "allowlist"))
		r->st.refused_allowlist++;
	else
		r->st.refused_other++;
}

void zt_respond_decide(struct zt_respond *r, const struct zt_decision *d, uint64_t now,
		       struct zt_resp_action *a)
{
	enum zt_threat t = d->threat < ZT_THREAT_MAX ? (enum zt_threat)d->threat : ZT_THREAT_NONE;
	const uint8_t *target = d->addr;
	struct okey k;
	struct offender *o;
	const char *never;
	bool created;
	uint64_t fresh;

	memset(a, 0, sizeof(*a));
	a->family = d->family;
	a->mode = (uint8_t)zt_respond_mode(r, t);
	r->st.decisions[t]++;
	if (a->mode == ZT_RESP_OFF) {
		a->act = ZT_RA_NONE;
		a->why = "mode off";
		return;
	}
	a->act = ZT_RA_ALERT;
	if (a->mode == ZT_RESP_ALERT) {
		a->why = "mode alert";
		r->st.alerts[t]++;
		return;
	}
	if (d->role == ZT_ROLE_DESTINATION) {
		a->why = "a victim is never blocked: the kernel protects the destination";
		r->st.alerts[t]++;
		return;
	}
	if (t == ZT_THREAT_EXFIL) {
		if (!d->has_peer) {
			a->why = "no single destination to block";
			r->st.alerts[t]++;
			return;
		}
		target = d->peer;
	}
	memcpy(a->addr, target, zt_fam_len(d->family));
	never = zt_respond_never(r, d->family, target);
	if (never) {
		a->act = ZT_RA_REFUSED;
		a->why = never;
		count_refusal(r, never);
		return;
	}
	/*
	 * A pod of this node: a block is a quarantine (tc_endpoint applies the
	 * blocklist to its every flow), so it is the operator's choice
	 * (response.endpoints: block); by default an alert. A pod's traffic is
	 * already held to its policies, and probes its policies deny (a
	 * misconfigured client, a conformance suite) read like a scan.
	 */
	if (r->c.endpoints_mode != ZT_RESP_BLOCK && r->endpoint &&
	    r->endpoint(r->actx, d->family, target) > 0) {
		a->why = "a pod of this node (response.endpoints: alert)";
		r->st.alerts[t]++;
		return;
	}
	memset(&k, 0, sizeof(k));
	k.family = d->family;
	memcpy(k.addr, target, zt_fam_len(d->family));
	o = zt_dtable_get(&r->off, &k, &created);
	/*
	 * Evidence from before the last block ended (connections that linger
	 * in conntrack, sessions swept late, a server closing a session the
	 * attacker left hanging) is not a return: no new block, no
	 * escalation. A return needs sessions started after the block ended.
	 */
	fresh = d->latest_start_ns ? d->latest_start_ns : d->ts_ns;
	if (o && !created && (o->until_ns > now || (fresh && fresh <= o->until_ns))) {
		a->act = ZT_RA_ALREADY;
		a->until_ns = o->until_ns;
		a->ttl_ns = o->ttl_ns;
		a->offence = o->offences;
		a->why = "blocked already";
		r->st.already[t]++;
		return;
	}
	a->act = ZT_RA_BLOCK;
	a->why = "block";
	if (!o) {
		/* No room to remember: block at the base TTL, no escalation. */
		a->ttl_ns = r->c.block_ttl_ns;
		a->offence = 1;
		a->until_ns = now + a->ttl_ns;
		r->st.blocks[t]++;
		return;
	}
	if (!created && o->until_ns + 2 * r->c.max_ttl_ns < now)
		o->offences = 0; /* long ago: starts over */
	o->offences++;
	a->ttl_ns = r->c.block_ttl_ns;
	for (uint32_t i = 1; i < o->offences && a->ttl_ns < r->c.max_ttl_ns; i++)
		a->ttl_ns *= 2;
	if (a->ttl_ns > r->c.max_ttl_ns)
		a->ttl_ns = r->c.max_ttl_ns;
	o->ttl_ns = a->ttl_ns;
	o->until_ns = now + a->ttl_ns;
	a->until_ns = o->until_ns;
	a->offence = o->offences;
	r->st.blocks[t]++;
}

void zt_respond_undo(struct zt_respond *r, const struct zt_resp_action *a)
{
	struct okey k;
	struct offender *o;

	if (a->act != ZT_RA_BLOCK)
		return;
	memset(&k, 0, sizeof(k));
	k.family = a->family;
	memcpy(k.addr, a->addr, zt_fam_len(a->family));
	o = zt_dtable_find(&r->off, &k);
	if (!o)
		return;
	if (o->offences > 1) {
		o->offences--;
		o->until_ns = 0;
	} else {
		zt_dtable_del(&r->off, o);
	}
}

void zt_respond_expire(struct zt_respond *r, uint64_t now)
{
	size_t pos = 0;
	struct offender *o;

	while ((o = zt_dtable_next(&r->off, &pos)))
		if (o->until_ns + 2 * r->c.max_ttl_ns < now)
			zt_dtable_del_at(&r->off, &pos);
}

void zt_respond_get_stats(const struct zt_respond *r, struct zt_respond_stats *st)
{
	*st = r->st;
	st->offenders = r->off.n;
}
