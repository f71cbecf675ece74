/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reference evaluator: what the policy set says about one connection.
 *
 * Written to be obviously right, not fast: `ztctl policy explain` answers
 * with it, and the kernel compiler's map entries are tested against it.
 *
 * A connection from S to D (protocol, destination port) passes when both
 *   - S's egress side allows it (S is one of our endpoints), and
 *   - D's ingress side allows it (D is one of our endpoints).
 * An address outside our endpoints has no policy of its own: that side
 * allows. The node's own addresses (zt_policy_eval_ex, zt_eval_opts) are
 * the host peer, which every side allows unless a deny rule matches
 * (zt_eval_opts says which). One side, for a local endpoint L, direction
 * dir and peer P:
 *   1. a deny rule (ZeroTrustPolicy) of a policy selecting L matches: deny;
 *   2. L is isolated in dir when some policy selecting L lists dir in its
 *      (defaulted) policyTypes, or when policy.default is deny; a side that
 *      is not isolated allows;
 *   3. an allow rule of a policy selecting L and isolating dir matches: allow;
 *   4. otherwise deny.
 * A policy selects L when it is in L's namespace and its podSelector matches
 * L's labels. A rule matches when one of its peers matches P (every peer
 * when it has none) and one of its ports matches (every port when none).
 * Selector peers match endpoints only; ipBlock peers match by address,
 * endpoint addresses included (policy.h says why), but never the host's.
 * An end given as an endpoint is taken at its address in zt_eval_peer.addr
 * (zt_eval_parse_peer: the endpoint's first address). A named port matches
 * when the destination endpoint has a container port of that name and
 * protocol at the connection's port.
 *
 * Audit: enforce-mode policies alone decide what passes. When they allow a
 * connection that would be denied with the audit-mode policies enforced as
 * well, the verdict is audit (would deny, passes).
 */
#ifndef ZT_POLICY_EVAL_H
#define ZT_POLICY_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/policy.h"
#include "seg/selector.h"

enum zt_pol_default {
	ZT_POL_DEFAULT_ALLOW = 0, /* Kubernetes: unselected endpoints accept everything */
	ZT_POL_DEFAULT_DENY, /* every endpoint is isolated in both directions */
};

struct zt_named_port {
	const char *name;
	uint8_t protocol; /* IPPROTO_* */
	uint16_t port;
};

struct zt_ep_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
};

struct zt_eval_endpoint {
	const char *name;
	struct zt_label_set ls; /* namespace, labels, namespace labels */
	const struct zt_ep_addr *addrs;
	size_t n_addrs;
	const struct zt_named_port *ports; /* container ports, for named ports */
	size_t n_ports;
};

/* One end of a connection. */
struct zt_eval_peer {
	/* NULL: an address; it becomes the endpoint that owns it, if any (as the ipcache does). */
	const struct zt_eval_endpoint *ep;
	/* Needed when ep is NULL; with ep, ipBlock peers match only this address. */
	struct zt_ep_addr addr;
};

struct zt_eval_conn {
	struct zt_eval_peer src;
	struct zt_eval_peer dst;
	uint8_t protocol; /* IPPROTO_* */
	uint16_t port; /* destination port; 0 for protocols without ports */
};

enum zt_pol_verdict {
	ZT_PV_ALLOW = 0,
	ZT_PV_DENY,
	ZT_PV_AUDIT, /* passes; an audit-mode policy would deny it */
};

enum zt_pol_reason {
	ZT_PR_EXTERNAL = 0, /* this end is not one of our endpoints: no policy of its own */
	ZT_PR_NOT_ISOLATED, /* no policy isolates it in this direction, default allow */
	ZT_PR_RULE_ALLOW, /* policy/rule allows */
	ZT_PR_RULE_DENY, /* policy/rule (a ZeroTrustPolicy deny rule) denies */
	ZT_PR_NO_RULE, /* isolated by policy (the first one) and no rule allows */
	ZT_PR_DEFAULT_DENY, /* no policy isolates it, policy.default is deny */
	ZT_PR_HOST, /* the peer is the node itself (zt_eval_opts.host_addrs): always allowed */
};

struct zt_eval_side {
	bool allowed;
	enum zt_pol_reason reason;
	const struct zt_policy *policy; /* RULE_ALLOW, RULE_DENY, NO_RULE */
	const struct zt_pol_rule *rule; /* RULE_ALLOW (the first that matched), RULE_DENY */
	/* RULE_ALLOW: OR over every allow rule that matched. */
	bool require_tls;
	bool require_mutual_auth;
};

struct zt_eval_result {
	enum zt_pol_verdict verdict;
	/* DENY, AUDIT: the side that denied (egress first); ALLOW: ZT_POL_INGRESS. */
	enum zt_pol_dir decided;
	/* [ZT_POL_EGRESS]: the source's egress; [ZT_POL_INGRESS]: the destination's ingress. */
	struct zt_eval_side side[ZT_POL_DIR_MAX]; /* enforce-mode policies */
	struct zt_eval_side audit[ZT_POL_DIR_MAX]; /* audit-mode policies enforced too */
	/* What the enforcing allow rules ask of this connection (both sides). */
	bool require_tls;
	bool require_mutual_auth;
	/* The endpoints the ends resolved to (NULL: an outside address). */
	const struct zt_eval_endpoint *src_ep;
	const struct zt_eval_endpoint *dst_ep;
	/* The end is one of the node's own addresses (zt_eval_opts.host_addrs). */
	bool src_host;
	bool dst_host;
};

/*
 * Optional knowledge for zt_policy_eval_ex.
 *
 * host_addrs: the node's own addresses. An address that no endpoint owns
 * but the host does is the host peer: ipBlock peers never match it (like
 * endpoints, it has an identity of its own), and a side whose peer is the
 * host allows (reason ZT_PR_HOST), as Kubernetes says the node may always
 * reach its pods and they it. Deny rules still apply first, so only a
 * ZeroTrustPolicy deny rule without from/to (every peer) can deny the host;
 * an allow rule that matches (one without from/to) is reported as such.
 */
struct zt_eval_opts {
	const struct zt_ep_addr *host_addrs;
	size_t n_host_addrs;
};

/*
 * set may hold no policies but must not be NULL. Returns 0, or -EINVAL for
 * a connection end with neither an endpoint nor an AF_INET/AF_INET6 address.
 */
int zt_policy_eval(const struct zt_policy_set *set, enum zt_pol_default def,
		   const struct zt_eval_endpoint *eps, size_t n_eps, const struct zt_eval_conn *c,
		   struct zt_eval_result *out);
/* zt_policy_eval with options; opts may be NULL (= zt_policy_eval). */
int zt_policy_eval_ex(const struct zt_policy_set *set, enum zt_pol_default def,
		      const struct zt_eval_endpoint *eps, size_t n_eps,
		      const struct zt_eval_opts *opts, const struct zt_eval_conn *c,
		      struct zt_eval_result *out);

/* The endpoint that owns an address, or NULL. */
const struct zt_eval_endpoint *zt_eval_find_addr(const struct zt_eval_endpoint *eps, size_t n,
						 const struct zt_ep_addr *a);

/*
 * For `explain --from/--to`: an IPv4 or IPv6 address (resolved to its
 * endpoint when one owns it), "namespace/name", or a bare name that is
 * unique across namespaces. -ENOENT: no such endpoint; -ENOTUNIQ: the bare
 * name exists in several namespaces; -EINVAL: empty.
 */
int zt_eval_parse_peer(const char *s, const struct zt_eval_endpoint *eps, size_t n,
		       struct zt_eval_peer *out);
/* For `--port`: "443/TCP", "53/udp", "9000/sctp", or "443" (TCP); port 1-65535. */
int zt_eval_parse_port(const char *s, uint8_t *protocol, uint16_t *port);

const char *zt_pol_verdict_name(enum zt_pol_verdict v); /* "allow" | "deny" | "audit" */
/* "rule-allow", "default-deny", "host", ... */
const char *zt_pol_reason_name(enum zt_pol_reason r);

/*
 * One line for operators, e.g.
 *   deny TCP prod/web -> prod/db:5432: egress of prod/web: allowed (not isolated);
 *   ingress of prod/db: denied by ZeroTrustPolicy prod/protect-db spec.ingress[0] (z.yaml:9:7)
 * Returns 0 or -ENOSPC (truncated).
 */
int zt_eval_format(const struct zt_eval_result *r, const struct zt_eval_conn *c, char *buf,
		   size_t n);

#endif
