// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "seg/policy_eval.h"
#include "agent/util.h"

static bool addr_eq(const struct zt_ep_addr *a, const struct zt_ep_addr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

const struct zt_eval_endpoint *zt_eval_find_addr(const struct zt_eval_endpoint *eps, size_t n,
						 const struct zt_ep_addr *a)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < eps[i].n_addrs; j++)
			if (addr_eq(&eps[i].addrs[j], a))
				return &eps[i];
	return NULL;
}

static bool policy_selects(const struct zt_policy *p, const struct zt_eval_endpoint *ep)
{
	return strcmp(p->namespace, ep->ls.namespace) == 0 &&
	       zt_selector_matches(&p->pod_selector, &ep->ls.labels);
}

/* ipBlock: the address is in cidr and in none of the holes. */
static bool ipblock_has(const struct zt_pol_peer *pe, const struct zt_ep_addr *a)
{
	if (a->family != pe->cidr.family || !zt_cidr_contains(&pe->cidr, a->addr))
		return false;
	for (size_t i = 0; i < pe->n_except; i++)
		if (zt_cidr_contains(&pe->except[i], a->addr))
			return false;
	return true;
}

static bool peer_matches(const struct zt_policy *p, const struct zt_pol_peer *pe,
			 const struct zt_eval_peer *peer, bool peer_host)
{
	/* By address, endpoint or not (Kubernetes makes no exception for pods). */
	if (pe->type == ZT_PEER_IPBLOCK)
		return !peer_host && ipblock_has(pe, &peer->addr);
	/* By proven identity, which only the tunnel knows: any address here. */
	if (pe->type == ZT_PEER_SERVICE_ACCOUNTS)
		return !peer_host;
	return peer->ep && zt_peer_selects(pe->pod_selector, pe->namespace_selector, p->namespace,
					   &peer->ep->ls);
}

static bool port_matches(const struct zt_pol_port *pp, const struct zt_eval_endpoint *dst,
			 uint8_t proto, uint16_t port)
{
	if (pp->protocol != proto)
		return false;
	if (pp->name) {
		if (!dst)
			return false; /* an outside address has no named ports */
		for (size_t i = 0; i < dst->n_ports; i++)
			if (dst->ports[i].protocol == proto && dst->ports[i].port == port &&
			    strcmp(dst->ports[i].name, pp->name) == 0)
				return true;
		return false;
	}
	if (pp->port == 0)
		return true;
	return port >= pp->port && port <= pp->end_port;
}

static bool rule_matches(const struct zt_policy *p, const struct zt_pol_rule *r,
			 const struct zt_eval_peer *peer, bool peer_host,
			 const struct zt_eval_endpoint *dst, uint8_t proto, uint16_t port)
{
	bool ok = r->n_peers == 0;

	for (size_t i = 0; !ok && i < r->n_peers; i++)
		ok = peer_matches(p, &r->peers[i], peer, peer_host);
	if (!ok)
		return false;
	if (r->n_ports == 0)
		return true;
	for (size_t i = 0; i < r->n_ports; i++)
		if (port_matches(&r->ports[i], dst, proto, port))
			return true;
	return false;
}

/*
 * One side: local endpoint `local` (NULL: outside address), direction dir,
 * the other end `peer` (peer_host: it is the node itself), and the
 * destination endpoint for named ports.
 */
static void eval_side(const struct zt_policy_set *set, enum zt_pol_default def, bool with_audit,
		      const struct zt_eval_endpoint *local, enum zt_pol_dir dir,
		      const struct zt_eval_peer *peer, bool peer_host,
		      const struct zt_eval_endpoint *dst, uint8_t proto, uint16_t port,
		      struct zt_eval_side *out)
{
	const struct zt_policy *isolating = NULL;

	memset(out, 0, sizeof(*out));
	if (!local) {
		out->allowed = true;
		out->reason = ZT_PR_EXTERNAL;
		return;
	}
	/* 1. Deny rules win over everything. */
	for (size_t i = 0; i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		if ((p->mode == ZT_POL_AUDIT && !with_audit) || !policy_selects(p, local))
			continue;
		if (p->isolates[dir] && !isolating)
			isolating = p;
		for (size_t j = 0; j < p->n_rules[dir]; j++) {
			const struct zt_pol_rule *r = &p->rules[dir][j];

			if (r->action == ZT_RULE_DENY &&
			    rule_matches(p, r, peer, peer_host, dst, proto, port)) {
				out->allowed = false;
				out->reason = ZT_PR_RULE_DENY;
				out->policy = p;
				out->rule = r;
				return;
			}
		}
	}
	/* 2. Not isolated: the default decides (the host is always allowed). */
	if (!isolating && peer_host) {
		out->allowed = true;
		out->reason = ZT_PR_HOST;
		return;
	}
	if (!isolating) {
		out->allowed = def == ZT_POL_DEFAULT_ALLOW;
		out->reason = out->allowed ? ZT_PR_NOT_ISOLATED : ZT_PR_DEFAULT_DENY;
		return;
	}
	/* 3. Allow rules of the policies that isolate this direction. */
	for (size_t i = 0; i < set->n; i++) {
		const struct zt_policy *p = &set->policies[i];

		if ((p->mode == ZT_POL_AUDIT && !with_audit) || !p->isolates[dir] ||
		    !policy_selects(p, local))
			continue;
		for (size_t j = 0; j < p->n_rules[dir]; j++) {
			const struct zt_pol_rule *r = &p->rules[dir][j];

			if (r->action != ZT_RULE_ALLOW ||
			    !rule_matches(p, r, peer, peer_host, dst, proto, port))
				continue;
			if (!out->allowed) {
				out->allowed = true;
				out->reason = ZT_PR_RULE_ALLOW;
				out->policy = p;
				out->rule = r;
			}
			out->require_tls |= r->require_tls;
			out->require_mutual_auth |= r->require_mutual_auth;
		}
	}
	/* 4. Isolated and nothing allows (but the host is always allowed). */
	if (!out->allowed && peer_host) {
		out->allowed = true;
		out->reason = ZT_PR_HOST;
	} else if (!out->allowed) {
		out->reason = ZT_PR_NO_RULE;
		out->policy = isolating;
	}
}

static int resolve(const struct zt_eval_endpoint *eps, size_t n, const struct zt_eval_peer *in,
		   struct zt_eval_peer *out)
{
	*out = *in;
	if (in->ep)
		return 0;
	if (in->addr.family != AF_INET && in->addr.family != AF_INET6)
		return -EINVAL;
	out->ep = zt_eval_find_addr(eps, n, &in->addr);
	return 0;
}

static bool is_host(const struct zt_eval_opts *opts, const struct zt_eval_peer *p)
{
	if (!opts || p->ep)
		return false;
	for (size_t i = 0; i < opts->n_host_addrs; i++)
		if (addr_eq(&opts->host_addrs[i], &p->addr))
			return true;
	return false;
}

int zt_policy_eval(const struct zt_policy_set *set, enum zt_pol_default def,
		   const struct zt_eval_endpoint *eps, size_t n_eps, const struct zt_eval_conn *c,
		   struct zt_eval_result *out)
{
	return zt_policy_eval_ex(set, def, eps, n_eps, NULL, c, out);
}

int zt_policy_eval_ex(const struct zt_policy_set *set, enum zt_pol_default def,
		      const struct zt_eval_endpoint *eps, size_t n_eps,
		      const struct zt_eval_opts *opts, const struct zt_eval_conn *c,
		      struct zt_eval_result *out)
{
	struct zt_eval_peer src, dst;
	struct zt_eval_result r;
	int err;

	if (!set || !c || !out)
		return -EINVAL;
	err = resolve(eps, n_eps, &c->src, &src);
	if (err == 0)
		err = resolve(eps, n_eps, &c->dst, &dst);
	if (err < 0)
		return err;

	memset(&r, 0, sizeof(r));
	r.src_ep = src.ep;
	r.dst_ep = dst.ep;
	r.src_host = is_host(opts, &src);
	r.dst_host = is_host(opts, &dst);
	for (int audit = 0; audit < 2; audit++) {
		struct zt_eval_side *s = audit ? r.audit : r.side;

		eval_side(set, def, audit, src.ep, ZT_POL_EGRESS, &dst, r.dst_host, dst.ep,
			  c->protocol, c->port, &s[ZT_POL_EGRESS]);
		eval_side(set, def, audit, dst.ep, ZT_POL_INGRESS, &src, r.src_host, dst.ep,
			  c->protocol, c->port, &s[ZT_POL_INGRESS]);
	}
	if (!r.side[ZT_POL_EGRESS].allowed || !r.side[ZT_POL_INGRESS].allowed) {
		r.verdict = ZT_PV_DENY;
		r.decided = r.side[ZT_POL_EGRESS].allowed ? ZT_POL_INGRESS : ZT_POL_EGRESS;
	} else if (!r.audit[ZT_POL_EGRESS].allowed || !r.audit[ZT_POL_INGRESS].allowed) {
		r.verdict = ZT_PV_AUDIT;
		r.decided = r.audit[ZT_POL_EGRESS].allowed ? ZT_POL_INGRESS : ZT_POL_EGRESS;
	} else {
		r.verdict = ZT_PV_ALLOW;
		r.decided = ZT_POL_INGRESS;
	}
	if (r.verdict != ZT_PV_DENY) {
		for (int d = 0; d < ZT_POL_DIR_MAX; d++) {
			r.require_tls |= r.side[d].require_tls;
			r.require_mutual_auth |= r.side[d].require_mutual_auth;
		}
	}
	*out = r;
	return 0;
}

static int parse_addr(const char *s, struct zt_ep_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->addr) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

int zt_eval_parse_peer(const char *s, const struct zt_eval_endpoint *eps, size_t n,
		       struct zt_eval_peer *out)
{
	const struct zt_eval_endpoint *found = NULL;
	struct zt_eval_peer p = { 0 };
	const char *slash;

	if (!s || !*s)
		return -EINVAL;
	if (parse_addr(s, &p.addr) == 0) {
		p.ep = zt_eval_find_addr(eps, n, &p.addr);
		*out = p;
		return 0;
	}
	slash = strchr(s, '/');
	for (size_t i = 0; i < n; i++) {
		const struct zt_eval_endpoint *e = &eps[i];

		if (slash) {
			size_t nl = (size_t)(slash - s);

			if (strlen(e->ls.namespace) != nl || strncmp(e->ls.namespace, s, nl) ||
			    strcmp(e->name, slash + 1))
				continue;
		} else if (strcmp(e->name, s)) {
			continue;
		}
		if (found)
			return -ENOTUNIQ;
		found = &eps[i];
	}
	if (!found)
		return -ENOENT;
	p.ep = found;
	if (found->n_addrs)
		p.addr = found->addrs[0];
	*out = p;
	return 0;
}

int zt_eval_parse_port(const char *s, uint8_t *protocol, uint16_t *port)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} protos[] = { { "tcp", IPPROTO_TCP }, { "udp", IPPROTO_UDP }, { "sctp", IPPROTO_SCTP } };
	char num[8];
	const char *slash;
	uint8_t proto = IPPROTO_TCP;
	uint64_t v;
	size_t len;

	if (!s || !*s)
		return -EINVAL;
	slash = strchr(s, '/');
	len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len);
	num[len] = '\0';
	if (zt_parse_u64(num, &v) < 0 || v < 1 || v > 65535)
		return -EINVAL;
	if (slash) {
		size_t i;

		for (i = 0; i < ZT_ARRAY_SIZE(protos); i++)
			if (!strcasecmp(slash + 1, protos[i].name))
				break;
		if (i == ZT_ARRAY_SIZE(protos))
			return -EINVAL;
		proto = protos[i].proto;
	}
	*protocol = proto;
	*port = (uint16_t)v;
	return 0;
}

const char *zt_pol_verdict_name(enum zt_pol_verdict v)
{
	switch (v) {
	case ZT_PV_ALLOW:
		return "allow";
	case ZT_PV_DENY:
		return "deny";
	case ZT_PV_AUDIT:
		return "audit";
	}
	return "?";
}

const char *zt_pol_reason_name(enum zt_pol_reason r)
{
	switch (r) {
	case ZT_PR_EXTERNAL:
		return "external";
	case ZT_PR_NOT_ISOLATED:
		return "not-isolated";
	case ZT_PR_RULE_ALLOW:
		return "rule-allow";
	case ZT_PR_RULE_DENY:
		return "rule-deny";
	case ZT_PR_NO_RULE:
		return "no-rule-allows";
	case ZT_PR_DEFAULT_DENY:
		return "default-deny";
	case ZT_PR_HOST:
		return "host";
	}
	return "?";
}

/* Appends to buf at *o; remembers truncation in *trunc. */
static void put(char *buf, size_t n, size_t *o, bool *trunc, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void put(char *buf, size_t n, size_t *o, bool *trunc, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*o >= n) {
		*trunc = true;
		return;
	}
	va_start(ap, fmt);
	r = vsnprintf(buf + *o, n - *o, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n - *o) {
		*trunc = true;
		*o = n;
		return;
	}
	*o += (size_t)r;
}

static void end_name(const struct zt_eval_endpoint *ep, bool host, const struct zt_eval_peer *p,
		     char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (ep)
		snprintf(buf, n, "%s/%s", ep->ls.namespace, ep->name);
	else if (inet_ntop(p->addr.family, p->addr.addr, a, sizeof(a)))
		snprintf(buf, n, "%s%s", a, host ? " (host)" : "");
	else
		snprintf(buf, n, "?");
}

static void put_side(char *buf, size_t n, size_t *o, bool *trunc, const struct zt_eval_side *s,
		     enum zt_pol_dir dir, const char *who, bool would)
{
	char d[512];

	put(buf, n, o, trunc, "%s of %s: ", zt_pol_dir_name(dir), who);
	switch (s->reason) {
	case ZT_PR_EXTERNAL:
		put(buf, n, o, trunc, "allowed (not our endpoint, no policy of its own)");
		break;
	case ZT_PR_NOT_ISOLATED:
		put(buf, n, o, trunc, "allowed (no policy selects it for %s)",
		    zt_pol_dir_name(dir));
		break;
	case ZT_PR_RULE_ALLOW:
		zt_policy_describe(s->policy, s->rule, d, sizeof(d));
		put(buf, n, o, trunc, "allowed by %s", d);
		break;
	case ZT_PR_RULE_DENY:
		zt_policy_describe(s->policy, s->rule, d, sizeof(d));
		put(buf, n, o, trunc, "%s by %s", would ? "would be denied" : "denied", d);
		break;
	case ZT_PR_NO_RULE:
		zt_policy_describe(s->policy, NULL, d, sizeof(d));
		put(buf, n, o, trunc, "%s: isolated by %s and no rule allows it",
		    would ? "would be denied" : "denied", d);
		break;
	case ZT_PR_DEFAULT_DENY:
		put(buf, n, o, trunc,
		    "denied by default-deny (no policy selects it for %s; policy.default is deny)",
		    zt_pol_dir_name(dir));
		break;
	case ZT_PR_HOST:
		put(buf, n, o, trunc,
		    "allowed (the peer is this node; the host is always allowed)");
		break;
	}
}

int zt_eval_format(const struct zt_eval_result *r, const struct zt_eval_conn *c, char *buf,
		   size_t n)
{
	const struct zt_eval_side *sides = r->verdict == ZT_PV_AUDIT ? r->audit : r->side;
	char src[300], dst[300];
	bool trunc = false;
	size_t o = 0;

	if (!n)
		return -ENOSPC;
	buf[0] = '\0';
	end_name(r->src_ep, r->src_host, &c->src, src, sizeof(src));
	end_name(r->dst_ep, r->dst_host, &c->dst, dst, sizeof(dst));
	put(buf, n, &o, &trunc, "%s%s %s %s -> %s", zt_pol_verdict_name(r->verdict),
	    r->verdict == ZT_PV_AUDIT ? " (would deny, passes)" : "",
	    zt_pol_proto_name(c->protocol), src, dst);
	if (c->port)
		put(buf, n, &o, &trunc, ":%u", c->port);
	put(buf, n, &o, &trunc, ": ");
	put_side(buf, n, &o, &trunc, &sides[ZT_POL_EGRESS], ZT_POL_EGRESS, src,
		 r->verdict == ZT_PV_AUDIT);
	put(buf, n, &o, &trunc, "; ");
	put_side(buf, n, &o, &trunc, &sides[ZT_POL_INGRESS], ZT_POL_INGRESS, dst,
		 r->verdict == ZT_PV_AUDIT);
	if (r->require_tls || r->require_mutual_auth)
		put(buf, n, &o, &trunc, "; requires%s%s", r->require_tls ? " TLS" : "",
		    r->require_mutual_auth ? " mutual-auth" : "");
	return trunc ? -ENOSPC : 0;
}
