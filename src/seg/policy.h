/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy language: the in-memory model and the YAML parser.
 *
 * A policy store is a directory of YAML files, several documents per file
 * ("---"), each document one of two kinds:
 *
 * 1. networking.k8s.io/v1 NetworkPolicy, with Kubernetes' documented
 *    semantics (the model below records them after defaulting):
 *    - spec.podSelector selects pods in metadata.namespace; {} or absent
 *      selects them all. metadata.namespace defaults to "default".
 *    - policyTypes absent or []: Ingress, plus Egress when spec.egress has at
 *      least one rule. A direction in policyTypes isolates the selected pods:
 *      they accept only what some rule of some policy allows.
 *    - ingress: [] or absent (with Ingress in policyTypes): nothing allowed.
 *      A rule {} allows everything. Rules of a direction that policyTypes
 *      does not list are kept but have no effect (zt_pol_rule_effective).
 *    - from/to absent or []: every peer. ports absent or []: every port of
 *      every protocol.
 *    - a peer is {podSelector and/or namespaceSelector} or {ipBlock}:
 *      podSelector alone = those pods in the policy's namespace;
 *      namespaceSelector alone = every pod of those namespaces; both in ONE
 *      list item = those pods in those namespaces (AND); two list items = OR.
 *      ipBlock = cidr minus every except (each strictly inside cidr).
 *    - a port is {protocol: TCP|UDP|SCTP (default TCP), port: number or
 *      named port, endPort}; endPort needs a numeric port and endPort >= port;
 *      no port = every port of that protocol.
 *
 * 2. ztagent.io/v1 ZeroTrustPolicy, for what NetworkPolicy cannot say:
 *
 *    apiVersion: ztagent.io/v1
 *    kind: ZeroTrustPolicy
 *    metadata:
 *      name: protect-db              # required, DNS subdomain
 *      namespace: prod               # default "default"
 *    spec:
 *      podSelector:                  # same as NetworkPolicy ({} or absent: all pods)
 *        matchLabels: {app: db}
 *      mode: audit                   # enforce (default) | audit
 *      policyTypes: [Ingress]        # optional, see below
 *      ingress:
 *        - action: deny              # required: allow | deny
 *          from:
 *            - namespaceSelector:
 *                matchLabels: {env: sandbox}
 *            - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}
 *          ports:
 *            - {protocol: TCP, port: 5432}
 *        - action: allow
 *          from:
 *            - podSelector: {matchLabels: {app: api}}
 *          ports:
 *            - {port: 5432}
 *          requireTLS: true          # allow rules only; default false
 *          requireMutualAuth: true   # allow rules only; default false
 *      egress:
 *        - action: deny
 *          to: [{ipBlock: {cidr: 198.51.100.0/24}}]
 *
 *    Peers, ports, selectors and the empty/absent rules are NetworkPolicy's.
 *    The differences:
 *    - deny rules win over every allow of every policy, in both kinds;
 *    - deny rules never isolate a pod on their own: when policyTypes is
 *      absent or [], a direction is isolated only if it has an allow rule,
 *      so adding a deny never drops anything else. Listing a direction in
 *      policyTypes isolates it even without allow rules (policyTypes:
 *      [Ingress] and no ingress allow = deny all ingress). An allow rule in
 *      a direction that an explicit policyTypes leaves out is an error;
 *    - mode: audit policies never drop: a connection they would deny is
 *      reported as audit (would deny) and passes;
 *    - requireTLS / requireMutualAuth send the connection through the
 *      agents' TLS 1.3 tunnel (bpf/lib/mtls.h, src/agent/daemon_mtls.c); a
 *      connection allowed by several rules must meet every requirement any
 *      of them states;
 *    - a peer may be {serviceAccounts: [NAMESPACE/NAME, ...]} (allow rules
 *      only, alone in its list item): identities matched by the tunnel
 *      against the peer's SVID; it implies requireMutualAuth.
 *
 * Strictness: unknown fields, wrong types (port: "80", matchLabels values
 * that YAML reads as booleans or numbers: quote them), duplicate keys, YAML
 * anchors, aliases and tags, any other kind or apiVersion (a Deployment in
 * the same file included), two policies with the same kind, namespace and
 * name, and anything over the limits below are errors. metadata takes name,
 * namespace, labels and annotations only. spec is required (an absent spec
 * would silently isolate every pod of the namespace).
 *
 * Errors read "FILE:LINE:COLUMN: PATH: reason", e.g.
 *   policies/db.yaml:14:11: spec.ingress[0].from[1].ipBlock.except[0]:
 *     '10.1.0.0/16' is not strictly inside cidr 172.17.0.0/16; except may only cut holes in it
 * (one line). Paths quote keys that are not plain words: matchLabels["app.kubernetes.io/name"].
 *
 * ipBlock and pods: an ipBlock matches every address in cidr and in no
 * except, our endpoints' addresses included, as Kubernetes' conformance
 * suite checks (Cilium exempts pods; we do not). Only the node's own
 * addresses (the host peer, always allowed) are left out. So a rule
 * with selectors and ipBlocks allows an endpoint that either matches.
 */
#ifndef ZT_POLICY_H
#define ZT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/selector.h"
#include "agent/util.h"

/* Limits on what input can make us allocate. */
#define ZT_POL_MAX_FILE_BYTES (4u << 20)
#define ZT_POL_MAX_TOTAL_BYTES (64u << 20) /* a whole directory */
#define ZT_POL_MAX_FILES 4096
#define ZT_POL_MAX_POLICIES 10000 /* in a set */
#define ZT_POL_MAX_RULES 1000 /* ingress + egress of one policy */
#define ZT_POL_MAX_PEERS 1000 /* from/to of one rule */
#define ZT_POL_MAX_PORTS 1000 /* ports of one rule */
#define ZT_POL_MAX_EXCEPT 1000 /* except of one ipBlock */
#define ZT_POL_MAX_LABELS 256 /* matchLabels, metadata.labels, annotations */
#define ZT_POL_MAX_EXPRS 256 /* matchExpressions of one selector */
#define ZT_POL_MAX_VALUES 1024 /* values of one expression */
#define ZT_POL_MAX_DEPTH 64 /* YAML nesting */
#define ZT_POL_MAX_NODES 262144 /* YAML nodes in one document */
#define ZT_POL_MAX_SCALAR (256u << 10) /* bytes of one YAML scalar (annotations) */
#define ZT_POL_PORT_NAME_MAX 15 /* IANA service name */
#define ZT_POL_SA_PART_MAX 253 /* serviceAccounts: namespace and name, DNS subdomain names */

enum zt_pol_kind {
	ZT_POL_NETWORK_POLICY = 0, /* networking.k8s.io/v1 NetworkPolicy */
	ZT_POL_ZERO_TRUST_POLICY, /* ztagent.io/v1 ZeroTrustPolicy */
};

enum zt_pol_mode {
	ZT_POL_ENFORCE = 0,
	ZT_POL_AUDIT, /* report what would be dropped, drop nothing */
};

enum zt_pol_dir {
	ZT_POL_INGRESS = 0, /* to the selected pod; peer = source */
	ZT_POL_EGRESS = 1, /* from the selected pod; peer = destination */
	ZT_POL_DIR_MAX,
};

enum zt_rule_action {
	ZT_RULE_ALLOW = 0,
	ZT_RULE_DENY, /* ZeroTrustPolicy only */
};

/* Where something came from, 1-based; for messages and explain. */
struct zt_pol_pos {
	unsigned int line;
	unsigned int column;
};

enum zt_peer_type {
	ZT_PEER_SELECTOR = 0, /* podSelector and/or namespaceSelector */
	ZT_PEER_IPBLOCK,
	/*
	 * ZeroTrustPolicy: serviceAccounts: [NAMESPACE/NAME, ...], matched by
	 * the agent against the identity the peer proved with mTLS (its
	 * X.509-SVID), never against labels or addresses. Such a rule implies
	 * requireMutualAuth; the datapath admits every address for it and the
	 * tunnel refuses identities not listed (wrong_identity).
	 */
	ZT_PEER_SERVICE_ACCOUNTS,
};

struct zt_pol_peer {
	enum zt_peer_type type;
	/* ZT_PEER_SELECTOR; NULL = absent (see zt_peer_selects). Never both NULL. */
	const struct zt_selector *pod_selector;
	const struct zt_selector *namespace_selector;
	/* ZT_PEER_IPBLOCK: cidr minus each except (same family, strictly inside). */
	struct zt_cidr cidr;
	const struct zt_cidr *except;
	size_t n_except;
	/* ZT_PEER_SERVICE_ACCOUNTS: "namespace/name" each. */
	const char *const *service_accounts;
	size_t n_service_accounts;
	struct zt_pol_pos pos;
};

struct zt_pol_port {
	uint8_t protocol; /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	/*
	 * One of: every port (port == 0, no name); a numeric range
	 * [port, end_port] (end_port == port without endPort); a named port
	 * (name != NULL, port == end_port == 0), resolved against the
	 * destination pod's container ports of this protocol.
	 */
	uint16_t port;
	uint16_t end_port;
	const char *name;
	struct zt_pol_pos pos;
};

struct zt_pol_rule {
	enum zt_pol_dir dir;
	enum zt_rule_action action;
	unsigned int index; /* position in spec.ingress or spec.egress */
	const struct zt_pol_peer *peers; /* n_peers == 0: every peer */
	size_t n_peers;
	const struct zt_pol_port *ports; /* n_ports == 0: every port, every protocol */
	size_t n_ports;
	bool require_tls;
	bool require_mutual_auth;
	struct zt_pol_pos pos;
};

struct zt_policy {
	enum zt_pol_kind kind;
	const char *name;
	const char *namespace;
	enum zt_pol_mode mode; /* always ZT_POL_ENFORCE for NetworkPolicy */
	const char *file; /* name the file was loaded under */
	unsigned int doc; /* 0-based document index in the file */
	struct zt_pol_pos pos; /* of the document */
	struct zt_pol_pos name_pos; /* of metadata.name */
	struct zt_selector pod_selector; /* in namespace; empty = every pod */
	/* After defaulting: does this policy isolate its pods in that direction? */
	bool isolates[ZT_POL_DIR_MAX];
	bool policy_types_given; /* false: isolates[] came from the defaulting rules */
	const struct zt_pol_rule *rules[ZT_POL_DIR_MAX];
	size_t n_rules[ZT_POL_DIR_MAX];
};

struct zt_pol_arena;

struct zt_policy_set {
	struct zt_policy *policies; /* in load order: files by name, then document order */
	size_t n;
	size_t n_files;
	/*
	 * SHA-256 (hex) over every file in load order of: base name, '\0',
	 * size in decimal, '\0', content. Same bytes under the same names give
	 * the same hash wherever the directory sits.
	 */
	char sha256[65];
	struct zt_pol_arena *arena; /* owns every string and array above */
};

/*
 * Does a rule take part in decisions? Deny rules always; allow rules only
 * when their policy isolates that direction (NetworkPolicy ignores the
 * rules of a direction its policyTypes leaves out).
 */
static inline bool zt_pol_rule_effective(const struct zt_policy *p, const struct zt_pol_rule *r)
{
	return r->action == ZT_RULE_DENY || p->isolates[r->dir];
}

/*
 * Parsers. On success *out is a new set (free with zt_policy_set_free); on
 * failure *out is untouched, the return is negative errno (-EINVAL bad
 * content, -EFBIG a file over its limit, -E2BIG too many of something,
 * -ENOMEM, or the errno of a failed read), and err holds one line:
 * "FILE:LINE:COLUMN: PATH: reason" for content, "FILE: reason" otherwise.
 * name is used for FILE in messages and for the hash.
 */
int zt_policy_parse_buf(const char *buf, size_t len, const char *name, struct zt_policy_set **out,
			char *err, size_t errlen);
int zt_policy_parse_file(const char *path, struct zt_policy_set **out, char *err, size_t errlen);
/*
 * Every *.yaml and *.yml regular file of dir (symlinks followed, names
 * starting with '.' skipped, as in a mounted ConfigMap), in strcmp order of
 * name. One bad file fails the whole load, so the caller keeps its last
 * good set.
 */
int zt_policy_parse_dir(const char *dir, struct zt_policy_set **out, char *err, size_t errlen);
/* A directory or a single file, by what path is. */
int zt_policy_load(const char *path, struct zt_policy_set **out, char *err, size_t errlen);
void zt_policy_set_free(struct zt_policy_set *set);

const char *zt_pol_kind_name(enum zt_pol_kind k); /* "NetworkPolicy" ... */
const char *zt_pol_dir_name(enum zt_pol_dir d); /* "ingress" | "egress" */
const char *zt_pol_proto_name(uint8_t proto); /* "TCP" | "UDP" | "SCTP" | "ICMP" | ... | "other" */

/*
 * "NetworkPolicy prod/allow-web spec.ingress[0] (web.yaml:12:5)"; rule may be
 * NULL for the policy alone. Returns 0 or -ENOSPC (truncated).
 */
int zt_policy_describe(const struct zt_policy *p, const struct zt_pol_rule *rule, char *buf,
		       size_t n);

#endif
