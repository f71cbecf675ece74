// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the policy parser (both kinds, every error path, hostile
 * input, the directory store, the content hash) and the reference
 * evaluator, driven by the examples of the Kubernetes NetworkPolicy
 * documentation with expected verdicts for concrete connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <cmocka.h>

#include "seg/policy.h"
#include "seg/policy_eval.h"
#include "seg/selector.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABELS(...)                                                                              \
	{                                                                                        \
		.v = (const struct zt_label[]){ __VA_ARGS__ },                                   \
		.n = sizeof((const struct zt_label[]){ __VA_ARGS__ }) / sizeof(struct zt_label), \
	}
#define IP4(a, b, c, d)                                   \
	{                                                 \
		.family = AF_INET, .addr = { a, b, c, d } \
	}

/* ---- the world the verdict tables run in -------------------------------- */

static const struct zt_ep_addr ip_db = IP4(198, 18, 0, 10);

static const struct zt_eval_endpoint eps[] = {
	{ .name = "db",
	  .ls = { "default", LABELS({ "role", "db" }), { 0 } },
	  .addrs = &ip_db,
	  .n_addrs = 1,
	  .ports = (const struct zt_named_port[]){ { "redis", IPPROTO_TCP, 6379 } },
	  .n_ports = 1 },
	{ .name = "frontend",
	  .ls = { "default", LABELS({ "role", "frontend" }), { 0 } },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 0, 11) },
	  .n_addrs = 1 },
	{ .name = "client",
	  .ls = { "default", LABELS({ "role", "client" }), { 0 } },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 0, 12) },
	  .n_addrs = 1 },
	{ .name = "other",
	  .ls = { "default", LABELS({ "role", "other" }), { 0 } },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 0, 13) },
	  .n_addrs = 1 },
	{ .name = "app",
	  .ls = { "myproject", LABELS({ "app", "x" }), LABELS({ "project", "myproject" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 1, 10) },
	  .n_addrs = 1 },
	{ .name = "app",
	  .ls = { "other", LABELS({ "app", "x" }), LABELS({ "project", "other" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 2, 10) },
	  .n_addrs = 1 },
	{ .name = "frontend",
	  .ls = { "other", LABELS({ "role", "frontend" }), LABELS({ "project", "other" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 2, 11) },
	  .n_addrs = 1 },
	{ .name = "client",
	  .ls = { "alice", LABELS({ "role", "client" }), LABELS({ "user", "alice" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 3, 10) },
	  .n_addrs = 1 },
	{ .name = "server",
	  .ls = { "alice", LABELS({ "role", "server" }), LABELS({ "user", "alice" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 3, 11) },
	  .n_addrs = 1 },
	{ .name = "client",
	  .ls = { "bob", LABELS({ "role", "client" }), LABELS({ "user", "bob" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 4, 10) },
	  .n_addrs = 1 },
	{ .name = "web",
	  .ls = { "prod", LABELS({ "app", "web" }, { "tier", "frontend" }),
		  LABELS({ "env", "prod" }) },
	  .addrs =
		  (const struct zt_ep_addr[]){
			  IP4(198, 18, 5, 10),
			  { .family = AF_INET6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 } } },
	  .n_addrs = 2,
	  .ports = (const struct zt_named_port[]){ { "http", IPPROTO_TCP, 8080 },
						   { "dns", IPPROTO_UDP, 53 } },
	  .n_ports = 2 },
	{ .name = "api",
	  .ls = { "prod", LABELS({ "app", "api" }, { "tier", "backend" }),
		  LABELS({ "env", "prod" }) },
	  .addrs = (const struct zt_ep_addr[]){ IP4(198, 18, 5, 11) },
	  .n_addrs = 1 },
};

/* ---- Kubernetes documentation examples ---------------------------------- */

/* "The NetworkPolicy resource": ipBlock with except, namespaceSelector, podSelector, ports. */
#define K8S_TEST_NETWORK_POLICY              \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: test-network-policy\n"      \
	"  namespace: default\n"             \
	"spec:\n"                            \
	"  podSelector:\n"                   \
	"    matchLabels:\n"                 \
	"      role: db\n"                   \
	"  policyTypes:\n"                   \
	"  - Ingress\n"                      \
	"  - Egress\n"                       \
	"  ingress:\n"                       \
	"  - from:\n"                        \
	"    - ipBlock:\n"                   \
	"        cidr: 172.17.0.0/16\n"      \
	"        except:\n"                  \
	"        - 172.17.1.0/24\n"          \
	"    - namespaceSelector:\n"         \
	"        matchLabels:\n"             \
	"          project: myproject\n"     \
	"    - podSelector:\n"               \
	"        matchLabels:\n"             \
	"          role: frontend\n"         \
	"    ports:\n"                       \
	"    - protocol: TCP\n"              \
	"      port: 6379\n"                 \
	"  egress:\n"                        \
	"  - to:\n"                          \
	"    - ipBlock:\n"                   \
	"        cidr: 10.0.0.0/24\n"        \
	"    ports:\n"                       \
	"    - protocol: TCP\n"              \
	"      port: 5978\n"

#define K8S_DEFAULT_DENY_INGRESS             \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: default-deny-ingress\n"     \
	"spec:\n"                            \
	"  podSelector: {}\n"                \
	"  policyTypes:\n"                   \
	"  - Ingress\n"

#define K8S_ALLOW_ALL_INGRESS                \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: allow-all-ingress\n"        \
	"spec:\n"                            \
	"  podSelector: {}\n"                \
	"  ingress:\n"                       \
	"  - {}\n"                           \
	"  policyTypes:\n"                   \
	"  - Ingress\n"

#define K8S_DEFAULT_DENY_EGRESS              \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: default-deny-egress\n"      \
	"spec:\n"                            \
	"  podSelector: {}\n"                \
	"  policyTypes:\n"                   \
	"  - Egress\n"

#define K8S_ALLOW_ALL_EGRESS                 \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: allow-all-egress\n"         \
	"spec:\n"                            \
	"  podSelector: {}\n"                \
	"  egress:\n"                        \
	"  - {}\n"                           \
	"  policyTypes:\n"                   \
	"  - Egress\n"

#define K8S_DEFAULT_DENY_ALL                 \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: default-deny-all\n"         \
	"spec:\n"                            \
	"  podSelector: {}\n"                \
	"  policyTypes:\n"                   \
	"  - Ingress\n"                      \
	"  - Egress\n"

/* "Targeting a range of ports". */
#define K8S_MULTI_PORT_EGRESS                \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: multi-port-egress\n"        \
	"  namespace: default\n"             \
	"spec:\n"                            \
	"  podSelector:\n"                   \
	"    matchLabels:\n"                 \
	"      role: db\n"                   \
	"  policyTypes:\n"                   \
	"    - Egress\n"                     \
	"  egress:\n"                        \
	"    - to:\n"                        \
	"        - ipBlock:\n"               \
	"            cidr: 10.0.0.0/24\n"    \
	"      ports:\n"                     \
	"        - protocol: TCP\n"          \
	"          port: 32000\n"            \
	"          endPort: 32768\n"

/* "Behavior of to and from selectors": one element (AND) ... */
#define K8S_AND                              \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: and\n"                      \
	"spec:\n"                            \
	"  podSelector:\n"                   \
	"    matchLabels:\n"                 \
	"      role: db\n"                   \
	"  ingress:\n"                       \
	"  - from:\n"                        \
	"    - namespaceSelector:\n"         \
	"        matchLabels:\n"             \
	"          user: alice\n"            \
	"      podSelector:\n"               \
	"        matchLabels:\n"             \
	"          role: client\n"

/* ... and two elements (OR). */
#define K8S_OR                               \
	"apiVersion: networking.k8s.io/v1\n" \
	"kind: NetworkPolicy\n"              \
	"metadata:\n"                        \
	"  name: or\n"                       \
	"spec:\n"                            \
	"  podSelector:\n"                   \
	"    matchLabels:\n"                 \
	"      role: db\n"                   \
	"  ingress:\n"                       \
	"  - from:\n"                        \
	"    - namespaceSelector:\n"         \
	"        matchLabels:\n"             \
	"          user: alice\n"            \
	"    - podSelector:\n"               \
	"        matchLabels:\n"             \
	"          role: client\n"

/* "Targeting a Namespace by its name". */
#define K8S_NS_BY_NAME                               \
	"apiVersion: networking.k8s.io/v1\n"         \
	"kind: NetworkPolicy\n"                      \
	"metadata:\n"                                \
	"  name: by-name\n"                          \
	"spec:\n"                                    \
	"  podSelector: {matchLabels: {role: db}}\n" \
	"  ingress:\n"                               \
	"  - from:\n"                                \
	"    - namespaceSelector:\n"                 \
	"        matchLabels:\n"                     \
	"          kubernetes.io/metadata.name: myproject\n"

#define SEP "---\n"

struct conn_case {
	const char *from, *to, *port;
	enum zt_pol_verdict want;
	const char *expl; /* substring of zt_eval_format's line, or NULL */
};

struct eval_case {
	const char *what;
	const char *yaml;
	enum zt_pol_default def;
	struct conn_case c[16]; /* up to the first with from == NULL */
};

#define ALLOW ZT_PV_ALLOW
#define DENY ZT_PV_DENY
#define AUDIT ZT_PV_AUDIT

static const struct eval_case eval_cases[] = {
	{ "k8s test-network-policy",
	  K8S_TEST_NETWORK_POLICY,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "172.17.0.5", "default/db", "6379/TCP", ALLOW,
		    "ingress of default/db: allowed by NetworkPolicy default/test-network-policy "
		    "spec.ingress[0] (t.yaml:14:5)" },
		  { "172.17.255.1", "default/db", "6379", ALLOW, NULL },
		  { "172.17.1.5", "default/db", "6379/TCP", DENY,
		    "ingress of default/db: denied: isolated by NetworkPolicy "
		    "default/test-network-policy (t.yaml:1:1) and no rule allows it" },
		  { "172.18.0.1", "default/db", "6379/TCP", DENY, NULL },
		  { "myproject/app", "default/db", "6379/TCP", ALLOW, NULL },
		  { "other/app", "default/db", "6379/TCP", DENY, NULL },
		  { "default/frontend", "default/db", "6379/TCP", ALLOW, NULL },
		  /* podSelector alone is the policy's namespace only. */
		  { "other/frontend", "default/db", "6379/TCP", DENY, NULL },
		  { "default/frontend", "default/db", "6380/TCP", DENY, NULL },
		  { "default/frontend", "default/db", "6379/UDP", DENY, NULL },
		  { "default/other", "default/db", "6379/TCP", DENY, NULL },
		  { "default/db", "10.0.0.5", "5978/TCP", ALLOW,
		    "egress of default/db: allowed by NetworkPolicy default/test-network-policy "
		    "spec.egress[0] (t.yaml:29:5)" },
		  { "default/db", "10.0.0.5", "5979/TCP", DENY, NULL },
		  { "default/db", "10.0.1.5", "5978/TCP", DENY, NULL },
		  /* frontend's address is outside 10.0.0.0/24, and db's egress is isolated. */
		  { "default/db", "default/frontend", "5978/TCP", DENY,
		    "egress of default/db: denied" },
		  { "default/frontend", "default/other", "80/TCP", ALLOW,
		    "egress of default/frontend: allowed (no policy selects it for egress); "
		    "ingress of default/other: allowed (no policy selects it for ingress)" },
	  } },
	{ "k8s default-deny-ingress",
	  K8S_DEFAULT_DENY_INGRESS,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "80/TCP", DENY,
		    "ingress of default/db: denied: isolated by NetworkPolicy "
		    "default/default-deny-ingress" },
		  { "192.0.2.1", "default/frontend", "443/TCP", DENY, NULL },
		  { "default/db", "192.0.2.1", "53/UDP", ALLOW, NULL },
		  { "default/frontend", "other/app", "80/TCP", ALLOW, NULL },
		  { "other/app", "default/db", "80/TCP", DENY, NULL },
	  } },
	{ "k8s allow-all-ingress, also on top of default-deny-ingress",
	  K8S_DEFAULT_DENY_INGRESS SEP K8S_ALLOW_ALL_INGRESS,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "80/TCP", ALLOW,
		    "allowed by NetworkPolicy default/allow-all-ingress spec.ingress[0]" },
		  { "192.0.2.1", "default/db", "1/UDP", ALLOW, NULL },
		  { "other/app", "default/db", "9000/SCTP", ALLOW, NULL },
	  } },
	{ "k8s default-deny-egress",
	  K8S_DEFAULT_DENY_EGRESS,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/db", "192.0.2.1", "53/UDP", DENY,
		    "egress of default/db: denied: isolated by NetworkPolicy "
		    "default/default-deny-egress" },
		  { "default/db", "default/frontend", "80/TCP", DENY, NULL },
		  { "192.0.2.1", "default/db", "80/TCP", ALLOW, NULL },
		  { "other/app", "default/db", "80/TCP", ALLOW, NULL },
		  { "other/app", "192.0.2.1", "80/TCP", ALLOW, NULL },
	  } },
	{ "k8s allow-all-egress",
	  K8S_DEFAULT_DENY_EGRESS SEP K8S_ALLOW_ALL_EGRESS,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/db", "192.0.2.1", "53/UDP", ALLOW,
		    "allowed by NetworkPolicy default/allow-all-egress spec.egress[0]" },
		  { "default/db", "other/app", "80/TCP", ALLOW, NULL },
	  } },
	{ "k8s default-deny-all",
	  K8S_DEFAULT_DENY_ALL,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "80/TCP", DENY,
		    "egress of default/frontend: denied" },
		  { "192.0.2.1", "default/db", "80/TCP", DENY, NULL },
		  { "default/db", "192.0.2.1", "80/TCP", DENY, NULL },
		  { "other/app", "myproject/app", "80/TCP", ALLOW, NULL },
		  { "default/db", "other/app", "80/TCP", DENY, NULL },
	  } },
	{ "k8s multi-port-egress (endPort)",
	  K8S_MULTI_PORT_EGRESS,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/db", "10.0.0.5", "32000/TCP", ALLOW, NULL },
		  { "default/db", "10.0.0.5", "32500/TCP", ALLOW, NULL },
		  { "default/db", "10.0.0.5", "32768/TCP", ALLOW, NULL },
		  { "default/db", "10.0.0.5", "32769/TCP", DENY, NULL },
		  { "default/db", "10.0.0.5", "31999/TCP", DENY, NULL },
		  { "default/db", "10.0.0.5", "32500/UDP", DENY, NULL },
		  { "default/db", "10.0.1.5", "32500/TCP", DENY, NULL },
		  /* Ingress is not isolated: policyTypes lists Egress only. */
		  { "192.0.2.1", "default/db", "22/TCP", ALLOW, NULL },
	  } },
	{ "k8s namespaceSelector and podSelector in one element (AND)",
	  K8S_AND,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "alice/client", "default/db", "5432/TCP", ALLOW, NULL },
		  { "alice/server", "default/db", "5432/TCP", DENY, NULL },
		  { "bob/client", "default/db", "5432/TCP", DENY, NULL },
		  { "default/client", "default/db", "5432/TCP", DENY, NULL },
	  } },
	{ "k8s namespaceSelector and podSelector in two elements (OR)",
	  K8S_OR,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "alice/client", "default/db", "5432/TCP", ALLOW, NULL },
		  { "alice/server", "default/db", "5432/TCP", ALLOW, NULL },
		  { "bob/client", "default/db", "5432/TCP", DENY, NULL },
		  { "default/client", "default/db", "5432/TCP", ALLOW, NULL },
		  { "default/frontend", "default/db", "5432/TCP", DENY, NULL },
	  } },
	{ "k8s namespace by its name (kubernetes.io/metadata.name is implied)",
	  K8S_NS_BY_NAME,
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "myproject/app", "default/db", "80/TCP", ALLOW, NULL },
		  { "other/app", "default/db", "80/TCP", DENY, NULL },
		  { "default/frontend", "default/db", "80/TCP", DENY, NULL },
	  } },
	{ "policies apply in their own namespace only",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: deny, namespace: prod}\nspec: {podSelector: {}}\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "80/TCP", ALLOW, NULL },
		  { "default/frontend", "prod/web", "80/TCP", DENY, NULL },
		  /* spec: {podSelector: {}} isolates ingress only. */
		  { "prod/web", "default/db", "80/TCP", ALLOW, NULL },
	  } },
	{ "from: [] and absent from both mean every source; ports: [] every port",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: a}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
	  "  ingress:\n  - from: []\n    ports: []\n" SEP
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: b}\nspec:\n  podSelector: {matchLabels: {role: frontend}}\n"
	  "  ingress:\n  - ports: [{port: 443}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "192.0.2.1", "default/db", "1/UDP", ALLOW, "default/a spec.ingress[0]" },
		  { "bob/client", "default/db", "65535/SCTP", ALLOW, NULL },
		  { "bob/client", "default/frontend", "443/TCP", ALLOW, NULL },
		  { "bob/client", "default/frontend", "443/UDP", DENY, NULL },
		  { "192.0.2.1", "default/frontend", "80/TCP", DENY, NULL },
	  } },
	{ "ingress: [] denies all ingress for selected pods",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: a}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
	  "  ingress: []\n  egress: []\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "80/TCP", DENY, NULL },
		  /* egress: [] without policyTypes: no Egress (Kubernetes' defaulting). */
		  { "default/db", "default/frontend", "80/TCP", ALLOW, NULL },
	  } },
	{ "named ports resolve on the destination pod",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: in}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
	  "  ingress:\n  - ports: [{port: redis}]\n" SEP
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: out}\nspec:\n  podSelector: {matchLabels: {role: frontend}}\n"
	  "  egress:\n  - ports: [{port: http}, {port: dns, protocol: UDP}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/client", "default/db", "6379/TCP", ALLOW, NULL },
		  { "default/client", "default/db", "6380/TCP", DENY, NULL },
		  { "default/client", "default/db", "6379/UDP", DENY, NULL },
		  { "default/frontend", "prod/web", "8080/TCP", ALLOW, NULL },
		  { "default/frontend", "prod/web", "53/UDP", ALLOW, NULL },
		  { "default/frontend", "prod/web", "53/TCP", DENY, NULL },
		  { "default/frontend", "prod/api", "8080/TCP", DENY, NULL },
		  { "default/frontend", "192.0.2.1", "8080/TCP", DENY, NULL },
	  } },
	{ "matchExpressions in podSelector and namespaceSelector",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: x, namespace: prod}\nspec:\n"
	  "  podSelector:\n    matchExpressions:\n"
	  "    - {key: tier, operator: In, values: [frontend, cache]}\n"
	  "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n"
	  "        - {key: user, operator: Exists}\n"
	  "      podSelector:\n        matchExpressions:\n"
	  "        - {key: role, operator: NotIn, values: [server]}\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "alice/client", "prod/web", "80/TCP", ALLOW, NULL },
		  { "alice/server", "prod/web", "80/TCP", DENY, NULL },
		  { "bob/client", "prod/web", "80/TCP", ALLOW, NULL },
		  { "default/client", "prod/web", "80/TCP", DENY, NULL },
		  /* api is tier=backend: not selected, not isolated. */
		  { "default/client", "prod/api", "80/TCP", ALLOW, NULL },
	  } },
	{ "IPv6 ipBlock; the endpoint's IPv6 address is the endpoint",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: v6, namespace: prod}\nspec:\n"
	  "  podSelector: {matchLabels: {app: web}}\n"
	  "  ingress:\n  - from:\n"
	  "    - ipBlock: {cidr: '2001:db8::/32', except: ['2001:db8:1::/48']}\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "2001:db8:2::1", "prod/web", "443/TCP", ALLOW, NULL },
		  { "2001:db8:1::1", "prod/web", "443/TCP", DENY, NULL },
		  { "2001:db9::1", "prod/web", "443/TCP", DENY, NULL },
		  { "198.18.9.9", "prod/web", "443/TCP", DENY, NULL },
		  /* The source is api's (IPv4) address, outside the block. */
		  { "prod/api", "2001:db8::10", "443/TCP", DENY,
		    "deny TCP prod/api -> prod/web:443: " },
		  { "prod/api", "prod/web", "443/TCP", DENY, NULL },
	  } },
	/*
	 * Kubernetes' e2e netpol "should allow egress access to server in CIDR
	 * block", "should enforce except clause while egress access to server
	 * in CIDR block", "should ensure an IP overlapping both IPBlock.CIDR and
	 * IPBlock.Except is allowed": ipBlock matches pods' addresses too.
	 */
	{ "ipBlock matches endpoints by address, with except",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: cidr, namespace: default}\nspec:\n"
	  "  podSelector: {matchLabels: {role: client}}\n"
	  "  policyTypes: [Egress, Ingress]\n"
	  "  egress:\n  - to: [{ipBlock: {cidr: 198.18.0.0/16, except: [198.18.0.13/32]}}]\n"
	  "  ingress:\n  - from: [{ipBlock: {cidr: 198.18.5.0/24}}]\n"
	  "    ports: [{port: 80}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/client", "default/db", "6379/TCP", ALLOW,
		    "egress of default/client: allowed by NetworkPolicy default/cidr "
		    "spec.egress[0]" },
		  { "default/client", "198.18.200.1", "80/TCP", ALLOW, NULL },
		  { "default/client", "myproject/app", "80/TCP", ALLOW, NULL },
		  /* The except cuts the endpoint out as it would any address. */
		  { "default/client", "default/other", "80/TCP", DENY,
		    "egress of default/client: denied: isolated by NetworkPolicy default/cidr" },
		  { "default/client", "198.19.0.1", "80/TCP", DENY, NULL },
		  /* Ingress from an endpoint inside the block, and outside it. */
		  { "prod/api", "default/client", "80/TCP", ALLOW,
		    "ingress of default/client: allowed by NetworkPolicy default/cidr "
		    "spec.ingress[0]" },
		  { "prod/api", "default/client", "81/TCP", DENY, NULL },
		  { "default/db", "default/client", "80/TCP", DENY, NULL },
	  } },
	{ "ipBlock with a named port: the destination endpoint's port, the address's block",
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: named, namespace: default}\nspec:\n"
	  "  podSelector: {matchLabels: {role: client}}\n"
	  "  policyTypes: [Egress]\n"
	  "  egress:\n  - to: [{ipBlock: {cidr: 198.18.5.0/24}}]\n"
	  "    ports: [{port: http}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/client", "prod/web", "8080/TCP", ALLOW, NULL },
		  { "default/client", "prod/web", "80/TCP", DENY, NULL },
		  /* api has no port named http; an outside address has no named ports. */
		  { "default/client", "prod/api", "8080/TCP", DENY, NULL },
		  { "default/client", "198.18.5.99", "8080/TCP", DENY, NULL },
		  /* web's IPv6 address is outside the (IPv4) block. */
		  { "default/client", "2001:db8::10", "8080/TCP", DENY, NULL },
	  } },
	{ "ZeroTrustPolicy deny on ipBlock denies endpoints in it, over selector allows",
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: no-prod, namespace: default}\nspec:\n"
	  "  podSelector: {}\n"
	  "  egress:\n  - action: deny\n    to: [{ipBlock: {cidr: 198.18.5.0/24}}]\n"
	  "---\n"
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: to-web, namespace: default}\nspec:\n"
	  "  podSelector: {}\n  policyTypes: [Egress]\n"
	  "  egress:\n  - to: [{namespaceSelector: {}}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/client", "prod/web", "80/TCP", DENY,
		    "egress of default/client: denied by ZeroTrustPolicy default/no-prod "
		    "spec.egress[0]" },
		  { "default/client", "myproject/app", "80/TCP", ALLOW, NULL },
	  } },
	{ "policy.default: deny with no policies",
	  "# nothing here\n",
	  ZT_POL_DEFAULT_DENY,
	  {
		  { "default/frontend", "default/db", "6379/TCP", DENY,
		    "egress of default/frontend: denied by default-deny" },
		  { "192.0.2.1", "default/db", "6379/TCP", DENY,
		    "ingress of default/db: denied by default-deny" },
		  { "default/db", "192.0.2.1", "53/UDP", DENY, NULL },
		  { "192.0.2.1", "192.0.2.2", "80/TCP", ALLOW, NULL },
	  } },
	{ "policy.default: deny needs both sides allowed",
	  K8S_TEST_NETWORK_POLICY SEP
	  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	  "metadata: {name: fe-out}\nspec:\n  podSelector: {matchLabels: {role: frontend}}\n"
	  "  policyTypes: [Egress]\n  egress:\n"
	  "  - to: [{podSelector: {matchLabels: {role: db}}}]\n",
	  ZT_POL_DEFAULT_DENY,
	  {
		  { "default/frontend", "default/db", "6379/TCP", ALLOW, NULL },
		  { "default/frontend", "default/db", "6380/TCP", DENY, NULL },
		  { "172.17.0.5", "default/db", "6379/TCP", ALLOW, NULL },
		  { "default/client", "default/db", "6379/TCP", DENY,
		    "egress of default/client: denied by default-deny" },
		  { "default/frontend", "default/other", "6379/TCP", DENY, NULL },
		  /* fe-out lists only Egress: frontend's ingress keeps the default. */
		  { "default/db", "default/frontend", "80/TCP", DENY, NULL },
	  } },
	{ "ZeroTrustPolicy deny wins over allow",
	  K8S_ALLOW_ALL_INGRESS SEP
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: no-frontend}\nspec:\n  podSelector: {matchLabels: {role: db}}\n"
	  "  ingress:\n  - action: deny\n"
	  "    from: [{podSelector: {matchLabels: {role: frontend}}}]\n"
	  "    ports: [{port: 6379}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "default/db", "6379/TCP", DENY,
		    "ingress of default/db: denied by ZeroTrustPolicy default/no-frontend "
		    "spec.ingress[0] (t.yaml:18:5)" },
		  { "default/frontend", "default/db", "6380/TCP", ALLOW, NULL },
		  { "default/client", "default/db", "6379/TCP", ALLOW, NULL },
	  } },
	{ "a deny-only ZeroTrustPolicy does not isolate",
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: no-other}\nspec:\n"
	  "  egress:\n  - action: deny\n"
	  "    to: [{namespaceSelector: {matchLabels: {project: other}}}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/frontend", "other/app", "80/TCP", DENY,
		    "egress of default/frontend: denied by ZeroTrustPolicy default/no-other "
		    "spec.egress[0]" },
		  { "default/frontend", "myproject/app", "80/TCP", ALLOW, NULL },
		  { "default/frontend", "192.0.2.1", "80/TCP", ALLOW, NULL },
		  { "other/app", "default/frontend", "80/TCP", ALLOW, NULL },
	  } },
	{ "ZeroTrustPolicy deny on ipBlock beats default allow and other allows",
	  K8S_ALLOW_ALL_EGRESS SEP
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: no-doc-net}\nspec:\n"
	  "  egress:\n  - action: deny\n    to: [{ipBlock: {cidr: 203.0.113.0/24}}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/db", "203.0.113.7", "443/TCP", DENY, "no-doc-net" },
		  { "default/db", "203.0.114.7", "443/TCP", ALLOW, NULL },
		  { "other/app", "203.0.113.7", "443/TCP", ALLOW, NULL },
	  } },
	{ "audit mode: would deny, passes",
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: lockdown}\nspec:\n  mode: audit\n"
	  "  podSelector: {matchLabels: {role: db}}\n"
	  "  policyTypes: [Ingress]\n  ingress:\n  - action: allow\n"
	  "    from: [{podSelector: {matchLabels: {role: frontend}}}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "default/client", "default/db", "80/TCP", AUDIT,
		    "audit (would deny, passes) TCP default/client -> default/db:80: egress of "
		    "default/client: allowed (no policy selects it for egress); ingress of "
		    "default/db: would be denied: isolated by ZeroTrustPolicy default/lockdown" },
		  { "default/frontend", "default/db", "80/TCP", ALLOW, NULL },
		  { "default/client", "default/frontend", "80/TCP", ALLOW, NULL },
	  } },
	{ "audit deny rule under an enforced allow; enforced deny beats audit",
	  K8S_ALLOW_ALL_INGRESS SEP K8S_DEFAULT_DENY_EGRESS SEP
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: try-deny}\nspec:\n  mode: audit\n"
	  "  ingress:\n  - action: deny\n    from: [{podSelector: {matchLabels: {role: client}}}]\n"
	  "  egress:\n  - action: allow\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "192.0.2.1", "default/db", "80/TCP", ALLOW, NULL },
		  { "bob/client", "default/db", "80/TCP", ALLOW, NULL },
		  { "default/client", "default/db", "80/TCP", DENY,
		    "egress of default/client: denied: isolated by NetworkPolicy "
		    "default/default-deny-egress" },
		  { "default/client", "192.0.2.1", "80/TCP", DENY, NULL },
	  } },
	{ "audit deny rule alone",
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: try-deny}\nspec:\n  mode: audit\n"
	  "  ingress:\n  - action: deny\n    from: [{ipBlock: {cidr: 192.0.2.0/24}}]\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "192.0.2.1", "default/db", "80/TCP", AUDIT,
		    "would be denied by ZeroTrustPolicy default/try-deny spec.ingress[0]" },
		  { "198.51.100.1", "default/db", "80/TCP", ALLOW, NULL },
	  } },
	{ "requireTLS and requireMutualAuth are carried to the verdict",
	  "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: tls, namespace: prod}\nspec:\n"
	  "  podSelector: {matchLabels: {app: api}}\n"
	  "  ingress:\n  - action: allow\n    from: [{podSelector: {matchLabels: {app: web}}}]\n"
	  "    requireTLS: true\n  - action: allow\n    ports: [{port: 8443}]\n"
	  "    requireMutualAuth: true\n",
	  ZT_POL_DEFAULT_ALLOW,
	  {
		  { "prod/web", "prod/api", "80/TCP", ALLOW, "; requires TLS" },
		  { "prod/web", "prod/api", "8443/TCP", ALLOW, "; requires TLS mutual-auth" },
		  { "default/db", "prod/api", "8443/TCP", ALLOW, "; requires mutual-auth" },
		  { "default/db", "prod/api", "80/TCP", DENY, NULL },
	  } },
};

static struct zt_policy_set *parse_ok(const char *yaml)
{
	struct zt_policy_set *set = NULL;
	char err[1024] = "";
	int r = zt_policy_parse_buf(yaml, strlen(yaml), "t.yaml", &set, err, sizeof(err));

	if (r != 0)
		fail_msg("parse failed (%d): %s", r, err);
	assert_non_null(set);
	return set;
}

static void run_conn(const struct zt_policy_set *set, enum zt_pol_default def, const char *what,
		     const struct conn_case *cc)
{
	struct zt_eval_conn c = { 0 };
	struct zt_eval_result res;
	char line[2048];

	if (zt_eval_parse_peer(cc->from, eps, N(eps), &c.src) < 0 ||
	    zt_eval_parse_peer(cc->to, eps, N(eps), &c.dst) < 0 ||
	    zt_eval_parse_port(cc->port, &c.protocol, &c.port) < 0)
		fail_msg("%s: bad fixture %s -> %s %s", what, cc->from, cc->to, cc->port);
	assert_int_equal(zt_policy_eval(set, def, eps, N(eps), &c, &res), 0);
	assert_int_equal(zt_eval_format(&res, &c, line, sizeof(line)), 0);
	if (res.verdict != cc->want)
		fail_msg("%s: %s -> %s %s: got %s, want %s\n  %s", what, cc->from, cc->to, cc->port,
			 zt_pol_verdict_name(res.verdict), zt_pol_verdict_name(cc->want), line);
	if (cc->expl && !strstr(line, cc->expl))
		fail_msg("%s: %s -> %s %s:\n  got:  %s\n  want: ...%s...", what, cc->from, cc->to,
			 cc->port, line, cc->expl);
}

static void test_verdict_tables(void **state)
{
	size_t total = 0;

	for (size_t i = 0; i < N(eval_cases); i++) {
		const struct eval_case *ec = &eval_cases[i];
		struct zt_policy_set *set = parse_ok(ec->yaml);

		for (size_t j = 0; j < N(ec->c) && ec->c[j].from; j++, total++)
			run_conn(set, ec->def, ec->what, &ec->c[j]);
		zt_policy_set_free(set);
	}
	assert_true(total > 100);
}

/* The same table under policy.default: allow vs deny, side by side, for unselected pods. */
static void test_default_modes(void **state)
{
	struct zt_policy_set *set = parse_ok("");
	static const struct {
		const char *from, *to;
		enum zt_pol_verdict allow_mode, deny_mode;
	} cases[] = {
		{ "default/frontend", "default/db", ALLOW, DENY },
		{ "192.0.2.1", "default/db", ALLOW, DENY },
		{ "default/db", "192.0.2.1", ALLOW, DENY },
		{ "192.0.2.1", "192.0.2.2", ALLOW, ALLOW },
		/* An address that belongs to an endpoint is that endpoint. */
		{ "198.18.0.11", "198.18.0.10", ALLOW, DENY },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct conn_case a = { cases[i].from, cases[i].to, "80/TCP", cases[i].allow_mode,
				       NULL };
		struct conn_case d = { cases[i].from, cases[i].to, "80/TCP", cases[i].deny_mode,
				       NULL };

		run_conn(set, ZT_POL_DEFAULT_ALLOW, "default allow", &a);
		run_conn(set, ZT_POL_DEFAULT_DENY, "default deny", &d);
	}
	zt_policy_set_free(set);
}

/* The result's fields, not just the line. */
static void test_eval_result_fields(void **state)
{
	struct zt_policy_set *set = parse_ok(K8S_TEST_NETWORK_POLICY SEP
					     "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
					     "metadata: {name: z}\nspec:\n"
					     "  ingress:\n  - action: deny\n"
					     "    from: [{ipBlock: {cidr: 172.17.9.0/24}}]\n"
					     "  - action: allow\n    requireTLS: true\n");
	struct zt_eval_conn c = { 0 };
	struct zt_eval_result r;

	assert_int_equal(zt_eval_parse_peer("172.17.9.9", eps, N(eps), &c.src), 0);
	assert_null(c.src.ep);
	assert_int_equal(zt_eval_parse_peer("default/db", eps, N(eps), &c.dst), 0);
	assert_ptr_equal(c.dst.ep, &eps[0]);
	c.protocol = IPPROTO_TCP;
	c.port = 6379;
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), 0);
	assert_int_equal(r.verdict, ZT_PV_DENY);
	assert_int_equal(r.decided, ZT_POL_INGRESS);
	assert_int_equal(r.side[ZT_POL_EGRESS].reason, ZT_PR_EXTERNAL);
	assert_int_equal(r.side[ZT_POL_INGRESS].reason, ZT_PR_RULE_DENY);
	assert_ptr_equal(r.side[ZT_POL_INGRESS].policy, &set->policies[1]);
	assert_ptr_equal(r.side[ZT_POL_INGRESS].rule, &set->policies[1].rules[ZT_POL_INGRESS][0]);
	assert_false(r.require_tls);
	assert_null(r.src_ep);
	assert_ptr_equal(r.dst_ep, &eps[0]);

	/* 172.17.0.9: both the NetworkPolicy and the ZTP allow; flags are ORed. */
	assert_int_equal(zt_eval_parse_peer("172.17.0.9", eps, N(eps), &c.src), 0);
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), 0);
	assert_int_equal(r.verdict, ZT_PV_ALLOW);
	assert_int_equal(r.side[ZT_POL_INGRESS].reason, ZT_PR_RULE_ALLOW);
	assert_ptr_equal(r.side[ZT_POL_INGRESS].policy, &set->policies[0]);
	assert_true(r.side[ZT_POL_INGRESS].require_tls);
	assert_true(r.require_tls);
	assert_false(r.require_mutual_auth);

	/* Through its address, db is db: its egress is isolated. */
	c.src = c.dst;
	c.src.ep = NULL;
	c.src.addr = ip_db;
	assert_int_equal(zt_eval_parse_peer("10.0.0.1", eps, N(eps), &c.dst), 0);
	c.port = 5978;
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), 0);
	assert_int_equal(r.verdict, ZT_PV_ALLOW);
	assert_ptr_equal(r.src_ep, &eps[0]);
	assert_int_equal(r.side[ZT_POL_EGRESS].reason, ZT_PR_RULE_ALLOW);
	assert_int_equal(r.side[ZT_POL_INGRESS].reason, ZT_PR_EXTERNAL);
	c.port = 22;
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), 0);
	assert_int_equal(r.verdict, ZT_PV_DENY);
	assert_int_equal(r.decided, ZT_POL_EGRESS);
	assert_int_equal(r.side[ZT_POL_EGRESS].reason, ZT_PR_NO_RULE);
	assert_ptr_equal(r.side[ZT_POL_EGRESS].policy, &set->policies[0]);
	assert_null(r.side[ZT_POL_EGRESS].rule);

	/* A connection end with neither endpoint nor address. */
	memset(&c.src, 0, sizeof(c.src));
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), -EINVAL);
	zt_policy_set_free(set);
}

static void test_eval_helpers(void **state)
{
	struct zt_eval_peer p;
	uint8_t proto = 0;
	uint16_t port = 0;
	char small[16];
	struct zt_eval_result r;
	struct zt_eval_conn c = { 0 };
	struct zt_policy_set *set = parse_ok("");

	assert_int_equal(zt_eval_parse_peer("198.18.5.10", eps, N(eps), &p), 0);
	assert_string_equal(p.ep->name, "web");
	assert_int_equal(zt_eval_parse_peer("2001:db8::10", eps, N(eps), &p), 0);
	assert_string_equal(p.ep->name, "web");
	assert_int_equal(zt_eval_parse_peer("2001:db8::11", eps, N(eps), &p), 0);
	assert_null(p.ep);
	assert_int_equal(p.addr.family, AF_INET6);
	assert_int_equal(zt_eval_parse_peer("web", eps, N(eps), &p), 0);
	assert_string_equal(p.ep->ls.namespace, "prod");
	assert_int_equal(p.addr.family, AF_INET);
	assert_int_equal(zt_eval_parse_peer("client", eps, N(eps), &p), -ENOTUNIQ);
	assert_int_equal(zt_eval_parse_peer("bob/client", eps, N(eps), &p), 0);
	assert_int_equal(zt_eval_parse_peer("carol/client", eps, N(eps), &p), -ENOENT);
	assert_int_equal(zt_eval_parse_peer("nobody", eps, N(eps), &p), -ENOENT);
	assert_int_equal(zt_eval_parse_peer("", eps, N(eps), &p), -EINVAL);
	assert_int_equal(zt_eval_parse_peer("198.18.0.0/24", eps, N(eps), &p), -ENOENT);

	assert_int_equal(zt_eval_parse_port("443/TCP", &proto, &port), 0);
	assert_int_equal(proto, IPPROTO_TCP);
	assert_int_equal(port, 443);
	assert_int_equal(zt_eval_parse_port("53/udp", &proto, &port), 0);
	assert_int_equal(proto, IPPROTO_UDP);
	assert_int_equal(zt_eval_parse_port("9000/Sctp", &proto, &port), 0);
	assert_int_equal(proto, IPPROTO_SCTP);
	assert_int_equal(zt_eval_parse_port("65535", &proto, &port), 0);
	assert_int_equal(proto, IPPROTO_TCP);
	assert_int_equal(port, 65535);
	{
		static const char *const bad[] = { "",	      "0/TCP",	      "65536", "-1",
						   "80/icmp", "80/",	      "/TCP",  "8o",
						   "80 /TCP", "123456789/TCP" };

		for (size_t i = 0; i < N(bad); i++)
			if (zt_eval_parse_port(bad[i], &proto, &port) != -EINVAL)
				fail_msg("port '%s' should be refused", bad[i]);
	}

	assert_string_equal(zt_pol_verdict_name(ZT_PV_AUDIT), "audit");
	assert_string_equal(zt_pol_reason_name(ZT_PR_DEFAULT_DENY), "default-deny");
	assert_string_equal(zt_pol_reason_name(ZT_PR_NO_RULE), "no-rule-allows");

	/* Formatting into a buffer that is too small truncates and says so. */
	assert_int_equal(zt_eval_parse_peer("default/db", eps, N(eps), &c.src), 0);
	assert_int_equal(zt_eval_parse_peer("192.0.2.1", eps, N(eps), &c.dst), 0);
	c.protocol = IPPROTO_UDP;
	c.port = 53;
	assert_int_equal(zt_policy_eval(set, ZT_POL_DEFAULT_ALLOW, eps, N(eps), &c, &r), 0);
	assert_int_equal(zt_eval_format(&r, &c, small, sizeof(small)), -ENOSPC);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	zt_policy_set_free(set);
}

/* ---- the model ---------------------------------------------------------- */

static void test_model_network_policy(void **state)
{
	struct zt_policy_set *set = parse_ok(K8S_TEST_NETWORK_POLICY);
	const struct zt_policy *p;
	const struct zt_pol_rule *in, *eg;
	char buf[256];

	assert_int_equal(set->n, 1);
	assert_int_equal(set->n_files, 1);
	p = &set->policies[0];
	assert_int_equal(p->kind, ZT_POL_NETWORK_POLICY);
	assert_string_equal(p->name, "test-network-policy");
	assert_string_equal(p->namespace, "default");
	assert_string_equal(p->file, "t.yaml");
	assert_int_equal(p->doc, 0);
	assert_int_equal(p->pos.line, 1);
	assert_int_equal(p->mode, ZT_POL_ENFORCE);
	assert_true(p->policy_types_given);
	assert_true(p->isolates[ZT_POL_INGRESS]);
	assert_true(p->isolates[ZT_POL_EGRESS]);
	assert_int_equal(p->pod_selector.match_labels.n, 1);
	assert_string_equal(p->pod_selector.match_labels.v[0].key, "role");
	assert_string_equal(p->pod_selector.match_labels.v[0].value, "db");
	assert_int_equal(p->n_rules[ZT_POL_INGRESS], 1);
	assert_int_equal(p->n_rules[ZT_POL_EGRESS], 1);

	in = &p->rules[ZT_POL_INGRESS][0];
	assert_int_equal(in->dir, ZT_POL_INGRESS);
	assert_int_equal(in->action, ZT_RULE_ALLOW);
	assert_int_equal(in->index, 0);
	assert_int_equal(in->pos.line, 14);
	assert_int_equal(in->pos.column, 5);
	assert_int_equal(in->n_peers, 3);
	assert_int_equal(in->peers[0].type, ZT_PEER_IPBLOCK);
	assert_int_equal(zt_cidr_format(&in->peers[0].cidr, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "172.17.0.0/16");
	assert_int_equal(in->peers[0].n_except, 1);
	assert_int_equal(zt_cidr_format(&in->peers[0].except[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "172.17.1.0/24");
	assert_int_equal(in->peers[1].type, ZT_PEER_SELECTOR);
	assert_null(in->peers[1].pod_selector);
	assert_non_null(in->peers[1].namespace_selector);
	assert_string_equal(in->peers[1].namespace_selector->match_labels.v[0].value, "myproject");
	assert_non_null(in->peers[2].pod_selector);
	assert_null(in->peers[2].namespace_selector);
	assert_int_equal(in->n_ports, 1);
	assert_int_equal(in->ports[0].protocol, IPPROTO_TCP);
	assert_int_equal(in->ports[0].port, 6379);
	assert_int_equal(in->ports[0].end_port, 6379);
	assert_null(in->ports[0].name);
	assert_false(in->require_tls);

	eg = &p->rules[ZT_POL_EGRESS][0];
	assert_int_equal(eg->dir, ZT_POL_EGRESS);
	assert_int_equal(eg->n_peers, 1);
	assert_int_equal(eg->peers[0].n_except, 0);
	assert_int_equal(eg->ports[0].port, 5978);
	assert_true(zt_pol_rule_effective(p, eg));

	assert_int_equal(zt_policy_describe(p, in, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "NetworkPolicy default/test-network-policy spec.ingress[0] "
				 "(t.yaml:14:5)");
	assert_int_equal(zt_policy_describe(p, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "NetworkPolicy default/test-network-policy (t.yaml:1:1)");
	assert_int_equal(zt_policy_describe(p, NULL, buf, 10), -ENOSPC);
	zt_policy_set_free(set);
}

#define NP_HEAD \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n"
#define ZT_HEAD "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\nmetadata:\n  name: z\nspec:\n"

static void test_policy_types_defaulting(void **state)
{
	static const struct {
		const char *what, *yaml;
		bool in, eg, given;
	} cases[] = {
		{ "NP, nothing", NP_HEAD "  podSelector: {}\n", true, false, false },
		{ "NP, spec: {}",
		  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		  "metadata: {name: p}\nspec: {}\n",
		  true, false, false },
		{ "NP, egress rules", NP_HEAD "  egress: [{}]\n", true, true, false },
		{ "NP, egress: [] (len 0: no Egress)", NP_HEAD "  egress: []\n", true, false,
		  false },
		{ "NP, egress: null", NP_HEAD "  egress:\n", true, false, false },
		{ "NP, policyTypes: [] defaults", NP_HEAD "  policyTypes: []\n  egress: [{}]\n",
		  true, true, false },
		{ "NP, policyTypes: null defaults", NP_HEAD "  policyTypes:\n  egress: [{}]\n",
		  true, true, false },
		{ "NP, [Egress] only", NP_HEAD "  policyTypes: [Egress]\n  ingress: [{}]\n", false,
		  true, true },
		{ "NP, [Ingress, Egress]", NP_HEAD "  policyTypes: [Egress, Ingress]\n", true, true,
		  true },
		{ "ZTP, deny only",
		  ZT_HEAD "  ingress: [{action: deny}]\n  egress: [{action: deny}]\n", false, false,
		  false },
		{ "ZTP, allow ingress", ZT_HEAD "  ingress: [{action: deny}, {action: allow}]\n",
		  true, false, false },
		{ "ZTP, allow egress", ZT_HEAD "  egress: [{action: allow}]\n", false, true,
		  false },
		{ "ZTP, ingress: []", ZT_HEAD "  ingress: []\n", false, false, false },
		{ "ZTP, [Ingress] and no rules", ZT_HEAD "  policyTypes: [Ingress]\n", true, false,
		  true },
		{ "ZTP, [Egress] and ingress deny",
		  ZT_HEAD "  policyTypes: [Egress]\n"
			  "  ingress: [{action: deny}]\n",
		  false, true, true },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct zt_policy_set *set = parse_ok(cases[i].yaml);
		const struct zt_policy *p = &set->policies[0];

		if (p->isolates[ZT_POL_INGRESS] != cases[i].in ||
		    p->isolates[ZT_POL_EGRESS] != cases[i].eg ||
		    p->policy_types_given != cases[i].given)
			fail_msg("%s: isolates ingress %d egress %d given %d", cases[i].what,
				 p->isolates[ZT_POL_INGRESS], p->isolates[ZT_POL_EGRESS],
				 p->policy_types_given);
		zt_policy_set_free(set);
	}

	/* A NetworkPolicy keeps rules of an unlisted direction, without effect. */
	{
		struct zt_policy_set *set =
			parse_ok(NP_HEAD "  policyTypes: [Egress]\n  ingress: [{}]\n");
		const struct zt_policy *p = &set->policies[0];

		assert_int_equal(p->n_rules[ZT_POL_INGRESS], 1);
		assert_false(zt_pol_rule_effective(p, &p->rules[ZT_POL_INGRESS][0]));
		zt_policy_set_free(set);
	}
	/* A ZeroTrustPolicy's deny rules work without their direction listed. */
	{
		struct zt_policy_set *set = parse_ok(ZT_HEAD "  ingress: [{action: deny}]\n");
		const struct zt_policy *p = &set->policies[0];

		assert_true(zt_pol_rule_effective(p, &p->rules[ZT_POL_INGRESS][0]));
		zt_policy_set_free(set);
	}
}

static void test_model_fields(void **state)
{
	struct zt_policy_set *set =
		parse_ok(ZT_HEAD "  mode: audit\n"
				 "  podSelector:\n"
				 "    matchLabels: {app.kubernetes.io/name: web, canary: ''}\n"
				 "    matchExpressions:\n"
				 "    - {key: env, operator: NotIn, values: [dev, test]}\n"
				 "    - {key: legacy, operator: DoesNotExist}\n"
				 "  ingress:\n"
				 "  - action: allow\n"
				 "    from:\n"
				 "    - namespaceSelector: {}\n"
				 "      podSelector: null\n"
				 "    - podSelector: {}\n"
				 "    ports:\n"
				 "    - {}\n"
				 "    - protocol: UDP\n"
				 "    - {port: 53, protocol: UDP}\n"
				 "    - {port: 32000, endPort: 32768}\n"
				 "    - {port: http-alt}\n"
				 "    - {port: 9000, protocol: SCTP}\n"
				 "    - {port: 7, endPort: 7}\n"
				 "    requireTLS: true\n"
				 "    requireMutualAuth: false\n"
				 "  - action: deny\n"
				 "    from: null\n"
				 "    requireTLS: false\n");
	const struct zt_policy *p = &set->policies[0];
	const struct zt_pol_rule *r = &p->rules[ZT_POL_INGRESS][0];
	static const struct {
		uint8_t proto;
		uint16_t port, end;
		const char *name;
	} ports[] = {
		{ IPPROTO_TCP, 0, 0, NULL },	   { IPPROTO_UDP, 0, 0, NULL },
		{ IPPROTO_UDP, 53, 53, NULL },	   { IPPROTO_TCP, 32000, 32768, NULL },
		{ IPPROTO_TCP, 0, 0, "http-alt" }, { IPPROTO_SCTP, 9000, 9000, NULL },
		{ IPPROTO_TCP, 7, 7, NULL },
	};

	assert_int_equal(p->kind, ZT_POL_ZERO_TRUST_POLICY);
	assert_int_equal(p->mode, ZT_POL_AUDIT);
	assert_string_equal(p->namespace, "default");
	assert_int_equal(p->pod_selector.match_labels.n, 2);
	assert_string_equal(p->pod_selector.match_labels.v[0].key, "app.kubernetes.io/name");
	assert_string_equal(p->pod_selector.match_labels.v[1].value, "");
	assert_int_equal(p->pod_selector.n_exprs, 2);
	assert_int_equal(p->pod_selector.exprs[0].op, ZT_SEL_NOT_IN);
	assert_int_equal(p->pod_selector.exprs[0].n_values, 2);
	assert_string_equal(p->pod_selector.exprs[0].values[1], "test");
	assert_int_equal(p->pod_selector.exprs[1].op, ZT_SEL_DOES_NOT_EXIST);
	assert_int_equal(p->pod_selector.exprs[1].n_values, 0);

	assert_int_equal(r->action, ZT_RULE_ALLOW);
	assert_true(r->require_tls);
	assert_false(r->require_mutual_auth);
	assert_int_equal(r->n_peers, 2);
	assert_null(r->peers[0].pod_selector); /* null is absent */
	assert_non_null(r->peers[0].namespace_selector);
	assert_true(zt_selector_is_empty(r->peers[0].namespace_selector));
	assert_non_null(r->peers[1].pod_selector);
	assert_null(r->peers[1].namespace_selector);
	assert_int_equal(r->n_ports, N(ports));
	for (size_t i = 0; i < N(ports); i++) {
		assert_int_equal(r->ports[i].protocol, ports[i].proto);
		assert_int_equal(r->ports[i].port, ports[i].port);
		assert_int_equal(r->ports[i].end_port, ports[i].end);
		if (ports[i].name)
			assert_string_equal(r->ports[i].name, ports[i].name);
		else
			assert_null(r->ports[i].name);
	}
	r = &p->rules[ZT_POL_INGRESS][1];
	assert_int_equal(r->action, ZT_RULE_DENY);
	assert_int_equal(r->index, 1);
	assert_int_equal(r->n_peers, 0);
	assert_int_equal(r->n_ports, 0);
	zt_policy_set_free(set);
}

/* serviceAccounts peers: kept as written, and the rule requires mutual authentication. */
static void test_service_accounts(void **state)
{
	struct zt_policy_set *set =
		parse_ok(ZT_HEAD "  ingress:\n"
				 "  - action: allow\n"
				 "    from:\n"
				 "    - serviceAccounts: [prod/web, batch/report-1]\n"
				 "    - podSelector: {}\n"
				 "    ports: [{port: 8443}]\n");
	const struct zt_pol_rule *r = &set->policies[0].rules[ZT_POL_INGRESS][0];

	(void)state;
	assert_true(r->require_mutual_auth);
	assert_int_equal(r->n_peers, 2);
	assert_int_equal(r->peers[0].type, ZT_PEER_SERVICE_ACCOUNTS);
	assert_int_equal(r->peers[0].n_service_accounts, 2);
	assert_string_equal(r->peers[0].service_accounts[0], "prod/web");
	assert_string_equal(r->peers[0].service_accounts[1], "batch/report-1");
	assert_int_equal(r->peers[1].type, ZT_PEER_SELECTOR);
	zt_policy_set_free(set);
}

static void test_documents(void **state)
{
	static const char many[] =
		"# leading comment\n"
		"---\n"
		"---\n"
		"# an empty document\n"
		"---\n" NP_HEAD "  podSelector: {}\n"
		"...\n"
		"---\n"
		"apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\nmetadata: {name: p}\nspec: {}\n"
		"---\n"
		"~\n";
	struct zt_policy_set *set = parse_ok(many);

	assert_int_equal(set->n, 2);
	assert_int_equal(set->policies[0].doc, 2);
	assert_int_equal(set->policies[0].pos.line, 6);
	/* Same name, other kind: no clash. */
	assert_int_equal(set->policies[1].doc, 3);
	assert_string_equal(set->policies[1].name, "p");
	zt_policy_set_free(set);

	set = parse_ok("");
	assert_int_equal(set->n, 0);
	assert_int_equal(set->n_files, 1);
	zt_policy_set_free(set);
	set = parse_ok("# only comments\n\n   \n");
	assert_int_equal(set->n, 0);
	zt_policy_set_free(set);

	/* NULL buffer of length 0 is an empty file. */
	{
		char err[64];

		assert_int_equal(zt_policy_parse_buf(NULL, 0, "n.yaml", &set, err, sizeof(err)), 0);
		assert_int_equal(set->n, 0);
		zt_policy_set_free(set);
	}
	/* Same name in two namespaces: fine. */
	set = parse_ok(NP_HEAD "  podSelector: {}\n" SEP
			       "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			       "metadata: {name: p, namespace: prod}\nspec: {}\n");
	assert_int_equal(set->n, 2);
	zt_policy_set_free(set);
	/* metadata.labels and annotations are accepted (and checked). */
	set = parse_ok("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
		       "  name: p\n  labels: {team: a}\n"
		       "  annotations: {example.com/note: 'any text: at all, 100%'}\nspec: {}\n");
	zt_policy_set_free(set);
	zt_policy_set_free(NULL);
}

/* ---- errors ------------------------------------------------------------- */

struct err_case {
	const char *yaml;
	int rc;
	const char *where; /* "t.yaml:L:C: path: " prefix, or a substring */
	const char *why; /* substring of the reason */
};

#define LONG64 "a234567890123456789012345678901234567890123456789012345678901234"
#define ING_FROM NP_HEAD "  ingress:\n  - from:\n" /* peers start on line 8 */
#define ING_PORTS NP_HEAD "  ingress:\n  - ports:\n" /* ports start on line 8 */
#define SEL NP_HEAD "  podSelector:\n" /* selector fields start on line 7 */

static const struct err_case err_cases[] = {
	/* Documents, kinds, versions. */
	{ "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n", -EINVAL,
	  "t.yaml:2:7: kind: ", "'Deployment' is not a policy kind (document 1)" },
	{ NP_HEAD "  podSelector: {}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
	  -EINVAL, "t.yaml:9:7: kind: ", "'Service' is not a policy kind (document 2)" },
	{ "apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n",
	  -EINVAL, "t.yaml:1:13: apiVersion: ",
	  "NetworkPolicy needs apiVersion networking.k8s.io/v1, got 'extensions/v1beta1'" },
	{ "apiVersion: networking.k8s.io/v1\nkind: ZeroTrustPolicy\n"
	  "metadata: {name: p}\nspec: {}\n",
	  -EINVAL, "t.yaml:1:13: apiVersion: ", "ZeroTrustPolicy needs apiVersion ztagent.io/v1" },
	{ "apiVersion: networking.k8s.io/v1\nmetadata: {name: p}\nspec: {}\n", -EINVAL,
	  "t.yaml:1:1: kind: ", "is required" },
	{ "kind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n", -EINVAL,
	  "t.yaml:1:1: apiVersion: ", "is required; networking.k8s.io/v1" },
	{ "apiVersion: networking.k8s.io/v1\nkind: 5\n", -EINVAL,
	  "t.yaml:2:7: kind: ", "expected a string, got a number ('5')" },
	{ NP_HEAD "  podSelector: {}\nstatus: {}\n", -EINVAL,
	  "t.yaml:7:1: status: ", "unknown field; expected apiVersion, kind, metadata, spec" },
	{ "- a\n- b\n", -EINVAL, "t.yaml:1:1: ", "document 1: expected a mapping" },
	{ "hello\n", -EINVAL, "t.yaml:1:1: ", "got a string" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nspec: {}\n", -EINVAL,
	  "t.yaml:1:1: metadata: ", "is required" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n", -EINVAL,
	  "t.yaml:1:1: spec: ", "is required" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: []\n",
	  -EINVAL, "t.yaml:4:7: spec: ", "expected a mapping, got a list" },
	{ NP_HEAD "  podSelector: {}\n---\n" NP_HEAD "  ingress: []\n", -EINVAL,
	  "t.yaml:11:9: metadata.name: ",
	  "NetworkPolicy default/p is defined twice; the first is t.yaml:4:9" },
	/* metadata */
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {}\nspec: {}\n",
	  -EINVAL, "t.yaml:3:11: metadata.name: ", "is required" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: My_Policy\n"
	  "spec: {}\n",
	  -EINVAL, "t.yaml:4:9: metadata.name: ", "'My_Policy' must be lowercase letters" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
	  "  namespace: Prod\nspec: {}\n",
	  -EINVAL, "t.yaml:5:14: metadata.namespace: ", "'Prod' must be lowercase" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
	  "  namespace: a.b\nspec: {}\n",
	  -EINVAL, "t.yaml:5:14: metadata.namespace: ", "'a.b' must be lowercase letters, digits" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
	  "  uid: 1234\nspec: {}\n",
	  -EINVAL, "t.yaml:5:3: metadata.uid: ",
	  "unknown field; expected name, namespace, labels, annotations" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
	  "  labels: {team: a b c}\nspec: {}\n",
	  -EINVAL, "t.yaml:5:18: metadata.labels.team: ", "label value 'a b c' must be empty or" },
	{ "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
	  "  annotations: {note: 12}\nspec: {}\n",
	  -EINVAL, "t.yaml:5:23: metadata.annotations.note: ", "expected a string, got a number" },
	/* spec */
	{ NP_HEAD "  podselector: {}\n", -EINVAL, "t.yaml:6:3: spec.podselector: ",
	  "unknown field; expected podSelector, policyTypes, ingress, egress" },
	{ NP_HEAD "  mode: audit\n", -EINVAL, "t.yaml:6:3: spec.mode: ", "unknown field" },
	{ NP_HEAD "  podSelector: []\n", -EINVAL,
	  "t.yaml:6:16: spec.podSelector: ", "expected a label selector" },
	{ NP_HEAD "  podSelector: {}\n  podSelector: {}\n", -EINVAL,
	  "t.yaml:7:3: ", "duplicate key 'podSelector' (first at line 6)" },
	{ NP_HEAD "  ingress: {}\n", -EINVAL,
	  "t.yaml:6:12: spec.ingress: ", "expected a list, got a mapping" },
	{ NP_HEAD "  ingress:\n  - \n", -EINVAL, "t.yaml:7:4: spec.ingress[0]: ",
	  "expected a rule (a mapping; {} is a rule that matches everything), got nothing" },
	{ NP_HEAD "  ingress:\n  - action: allow\n", -EINVAL,
	  "t.yaml:7:5: spec.ingress[0].action: ", "unknown field; expected from, ports" },
	{ NP_HEAD "  ingress:\n  - requireTLS: true\n", -EINVAL,
	  "t.yaml:7:5: spec.ingress[0].requireTLS: ", "unknown field" },
	{ NP_HEAD "  egress:\n  - from: []\n", -EINVAL, "t.yaml:7:5: spec.egress[0].from: ",
	  "unknown field; egress rules name their destinations in 'to'" },
	{ NP_HEAD "  ingress:\n  - to: []\n", -EINVAL, "t.yaml:7:5: spec.ingress[0].to: ",
	  "unknown field; ingress rules name their sources in 'from'" },
	{ NP_HEAD "  ingress:\n  - from: {}\n", -EINVAL,
	  "t.yaml:7:11: spec.ingress[0].from: ", "expected a list" },
	/* policyTypes */
	{ NP_HEAD "  policyTypes: [ingress]\n", -EINVAL,
	  "t.yaml:6:17: spec.policyTypes[0]: ", "expected Ingress or Egress, got 'ingress'" },
	{ NP_HEAD "  policyTypes: [Ingress, Ingress]\n", -EINVAL,
	  "t.yaml:6:26: spec.policyTypes[1]: ", "Ingress is listed twice" },
	{ NP_HEAD "  policyTypes: Ingress\n", -EINVAL, "t.yaml:6:16: spec.policyTypes: ",
	  "expected a list: [Ingress], [Egress] or [Ingress, Egress]" },
	/* selectors */
	{ SEL "    matchLabels:\n      app: true\n", -EINVAL,
	  "t.yaml:8:12: spec.podSelector.matchLabels.app: ",
	  "expected a string, got a boolean ('true'); put it in quotes" },
	{ SEL "    matchLabels:\n      version: 1.0\n", -EINVAL,
	  "t.yaml:8:16: spec.podSelector.matchLabels.version: ", "got a number ('1.0')" },
	{ SEL "    matchLabels:\n      app:\n", -EINVAL, "spec.podSelector.matchLabels.app: ",
	  "label value is missing; write '' for an empty value" },
	{ SEL "    matchLabels:\n      -app: web\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchLabels.-app: ",
	  "label key '-app' must be letters, digits" },
	{ SEL "    matchLabels:\n      Example.com/app: web\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchLabels[\"Example.com/app\"]: ",
	  "has a prefix that is not a DNS subdomain" },
	{ SEL "    matchLabels:\n      " LONG64 ": web\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchLabels." LONG64 ": ",
	  "has a name longer than 63 characters" },
	{ SEL "    matchLabels:\n      app: " LONG64 "\n", -EINVAL,
	  "t.yaml:8:12: spec.podSelector.matchLabels.app: ", "must be at most 63 characters" },
	{ SEL "    matchLabels:\n      yes: x\n", -EINVAL,
	  "t.yaml:8:7: ", "key 'yes' is read by YAML as a boolean; put it in quotes" },
	{ SEL "    matchLabels: [app]\n", -EINVAL, "t.yaml:7:18: spec.podSelector.matchLabels: ",
	  "expected a mapping of label keys to values, got a list" },
	{ SEL "    matchExpressions:\n    - key: env\n      operator: In\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchExpressions[0].values: ",
	  "operator In needs at least one value" },
	{ SEL "    matchExpressions:\n    - key: env\n      operator: NotIn\n      values: []\n",
	  -EINVAL, "t.yaml:10:15: spec.podSelector.matchExpressions[0].values: ",
	  "operator NotIn needs at least one value" },
	{ SEL "    matchExpressions:\n    - {key: env, operator: Exists, values: [a]}\n", -EINVAL,
	  "t.yaml:8:44: spec.podSelector.matchExpressions[0].values: ",
	  "operator Exists takes no values" },
	{ SEL "    matchExpressions:\n    - {key: env, operator: DoesNotExist, values: [a]}\n",
	  -EINVAL, "spec.podSelector.matchExpressions[0].values: ",
	  "operator DoesNotExist takes no values" },
	{ SEL "    matchExpressions:\n    - {key: env, operator: in, values: [a]}\n", -EINVAL,
	  "t.yaml:8:28: spec.podSelector.matchExpressions[0].operator: ",
	  "'in' is not an operator; expected In, NotIn, Exists or DoesNotExist" },
	{ SEL "    matchExpressions:\n    - {key: env}\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchExpressions[0].operator: ", "is required" },
	{ SEL "    matchExpressions:\n    - {operator: Exists}\n", -EINVAL,
	  "t.yaml:8:7: spec.podSelector.matchExpressions[0].key: ", "is required" },
	{ SEL "    matchExpressions:\n    - {key: 'a b', operator: Exists}\n", -EINVAL,
	  "t.yaml:8:13: spec.podSelector.matchExpressions[0].key: ", "label key 'a b'" },
	{ SEL "    matchExpressions:\n    - {key: env, operator: In, values: [ok, 'not ok']}\n",
	  -EINVAL,
	  "t.yaml:8:45: spec.podSelector.matchExpressions[0].values[1]: ", "label value 'not ok'" },
	{ SEL "    matchExpressions:\n    - {key: env, operator: Exists, value: a}\n", -EINVAL,
	  "t.yaml:8:36: spec.podSelector.matchExpressions[0].value: ",
	  "unknown field; expected key, operator, values" },
	{ SEL "    matchlabels: {}\n", -EINVAL, "t.yaml:7:5: spec.podSelector.matchlabels: ",
	  "unknown field; expected matchLabels, matchExpressions" },
	/* peers and ipBlock */
	{ ING_FROM "    - {}\n", -EINVAL, "t.yaml:8:7: spec.ingress[0].from[0]: ",
	  "a peer needs podSelector, namespaceSelector or ipBlock; to match every source, "
	  "leave 'from' out or write from: []" },
	{ NP_HEAD "  egress:\n  - to:\n    - podSelector: null\n", -EINVAL,
	  "t.yaml:8:7: spec.egress[0].to[0]: ", "to match every destination, leave 'to' out" },
	{ ING_FROM "    - podSelector: {}\n      ipBlock: {cidr: 10.0.0.0/8}\n", -EINVAL,
	  "t.yaml:9:16: spec.ingress[0].from[0].ipBlock: ",
	  "ipBlock cannot share a peer with podSelector or namespaceSelector" },
	{ ING_FROM "    - serviceAccount: {}\n", -EINVAL,
	  "t.yaml:8:7: spec.ingress[0].from[0].serviceAccount: ",
	  "unknown field; expected podSelector, namespaceSelector, ipBlock" },
	{ ING_FROM "    - ipBlock:\n        cidr: 10.0.0.0/33\n", -EINVAL,
	  "t.yaml:9:15: spec.ingress[0].from[0].ipBlock.cidr: ",
	  "'10.0.0.0/33' is not a valid CIDR" },
	{ ING_FROM "    - ipBlock:\n        cidr: 10.0.0.1\n", -EINVAL,
	  "t.yaml:9:15: spec.ingress[0].from[0].ipBlock.cidr: ",
	  "'10.0.0.1' is not a CIDR; write ADDRESS/PREFIX, e.g. 10.0.0.0/8 (or 10.0.0.1/32 for one "
	  "address)" },
	{ ING_FROM "    - ipBlock:\n        cidr: 10.0.0.1/8\n", -EINVAL,
	  "t.yaml:9:15: spec.ingress[0].from[0].ipBlock.cidr: ",
	  "has address bits set past the prefix length; did you mean 10.0.0.0/8?" },
	{ ING_FROM "    - ipBlock:\n        cidr: bogus/8\n", -EINVAL,
	  "spec.ingress[0].from[0].ipBlock.cidr: ", "'bogus/8' is not a valid CIDR" },
	{ ING_FROM "    - ipBlock: {except: [10.0.0.0/8]}\n", -EINVAL,
	  "t.yaml:8:16: spec.ingress[0].from[0].ipBlock.cidr: ",
	  "is required; e.g. cidr: 10.0.0.0/8" },
	/* The example path of the issue: the second peer's first except. */
	{ ING_FROM "    - podSelector: {}\n"
		   "    - ipBlock:\n"
		   "        cidr: 172.17.0.0/16\n"
		   "        except:\n"
		   "        - 10.1.0.0/16\n",
	  -EINVAL, "t.yaml:12:11: spec.ingress[0].from[1].ipBlock.except[0]: ",
	  "'10.1.0.0/16' is not strictly inside cidr 172.17.0.0/16" },
	{ ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24, 172.17.0.0/16]}\n",
	  -EINVAL,
	  "t.yaml:8:62: spec.ingress[0].from[0].ipBlock.except[1]: ", "not strictly inside" },
	{ ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: [172.0.0.0/8]}\n", -EINVAL,
	  "spec.ingress[0].from[0].ipBlock.except[0]: ", "not strictly inside" },
	{ ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: ['2001:db8::/64']}\n", -EINVAL,
	  "spec.ingress[0].from[0].ipBlock.except[0]: ",
	  "'2001:db8::/64' is IPv6 but cidr 172.17.0.0/16 is IPv4" },
	{ ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.1/24]}\n", -EINVAL,
	  "spec.ingress[0].from[0].ipBlock.except[0]: ", "did you mean 172.17.1.0/24?" },
	{ ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: 172.17.1.0/24}\n", -EINVAL,
	  "spec.ingress[0].from[0].ipBlock.except: ", "expected a list of CIDRs" },
	/* ports */
	{ ING_PORTS "    - port: 0\n", -ERANGE, "t.yaml:8:13: spec.ingress[0].ports[0].port: ",
	  "expected a decimal number from 1 to 65535, got '0'" },
	{ ING_PORTS "    - port: 65536\n", -ERANGE,
	  "t.yaml:8:13: spec.ingress[0].ports[0].port: ", "got '65536'" },
	{ ING_PORTS "    - port: -1\n", -ERANGE, "spec.ingress[0].ports[0].port: ", "got '-1'" },
	{ ING_PORTS "    - port: 080\n", -ERANGE, "spec.ingress[0].ports[0].port: ", "got '080'" },
	{ ING_PORTS "    - port: 1.5\n", -ERANGE, "spec.ingress[0].ports[0].port: ", "got '1.5'" },
	{ ING_PORTS "    - port: \"80\"\n", -EINVAL, "t.yaml:8:13: spec.ingress[0].ports[0].port: ",
	  "port name '80' is quoted, so it reads as a port name; write the number without quotes" },
	{ ING_PORTS "    - port: HTTP\n", -EINVAL, "spec.ingress[0].ports[0].port: ",
	  "port name 'HTTP' may only hold lowercase letters, digits and '-'" },
	{ ING_PORTS "    - port: a-very-long-name-x\n", -EINVAL,
	  "spec.ingress[0].ports[0].port: ", "is longer than 15 characters" },
	{ ING_PORTS "    - port: my--port\n", -EINVAL,
	  "spec.ingress[0].ports[0].port: ", "may not start or end with '-' or hold '--'" },
	{ ING_PORTS "    - port: [80]\n", -EINVAL,
	  "spec.ingress[0].ports[0].port: ", "expected a number from 1 to 65535, got a list" },
	{ ING_PORTS "    - endPort: 90\n", -EINVAL,
	  "t.yaml:8:16: spec.ingress[0].ports[0].endPort: ",
	  "endPort needs a numeric port to start from" },
	{ ING_PORTS "    - {port: http, endPort: 90}\n", -EINVAL,
	  "t.yaml:8:29: spec.ingress[0].ports[0].endPort: ",
	  "endPort needs a numeric port, not the named port 'http'" },
	{ ING_PORTS "    - {port: 443, endPort: 80}\n", -EINVAL,
	  "t.yaml:8:28: spec.ingress[0].ports[0].endPort: ", "endPort 80 is below port 443" },
	{ ING_PORTS "    - {port: 443, endPort: 70000}\n", -ERANGE,
	  "spec.ingress[0].ports[0].endPort: ", "got '70000'" },
	{ ING_PORTS "    - {port: 443, endPort: '500'}\n", -EINVAL,
	  "spec.ingress[0].ports[0].endPort: ", "expected a number from 1 to 65535, got a string" },
	{ ING_PORTS "    - protocol: tcp\n", -EINVAL,
	  "t.yaml:8:17: spec.ingress[0].ports[0].protocol: ",
	  "'tcp' is not a protocol; expected TCP, UDP or SCTP (uppercase)" },
	{ ING_PORTS "    - protocol: ICMP\n", -EINVAL,
	  "spec.ingress[0].ports[0].protocol: ", "'ICMP' is not a protocol" },
	{ ING_PORTS "    - {port: 80, portName: x}\n", -EINVAL,
	  "spec.ingress[0].ports[0].portName: ",
	  "unknown field; expected protocol, port, endPort" },
	{ ING_PORTS "    - 80\n", -EINVAL, "t.yaml:8:7: spec.ingress[0].ports[0]: ",
	  "expected a mapping with protocol, port and endPort, got a number" },
	/* ZeroTrustPolicy */
	{ ZT_HEAD "  ingress:\n  - from: []\n", -EINVAL,
	  "t.yaml:7:5: spec.ingress[0].action: ", "is required; allow or deny" },
	{ ZT_HEAD "  ingress:\n  - action: drop\n", -EINVAL,
	  "t.yaml:7:13: spec.ingress[0].action: ", "expected allow or deny, got 'drop'" },
	{ ZT_HEAD "  ingress:\n  - action: deny\n    requireTLS: true\n", -EINVAL,
	  "t.yaml:8:17: spec.ingress[0].requireTLS: ", "applies to allow rules only" },
	{ ZT_HEAD "  egress:\n  - action: deny\n    requireMutualAuth: true\n", -EINVAL,
	  "spec.egress[0].requireMutualAuth: ", "applies to allow rules only" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    requireTLS: yes\n", -EINVAL,
	  "t.yaml:8:17: spec.ingress[0].requireTLS: ",
	  "expected true or false, got a boolean 'yes'" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    requireMutualAuth: \"true\"\n", -EINVAL,
	  "spec.ingress[0].requireMutualAuth: ", "expected true or false, got a string" },
	{ ZT_HEAD "  mode: dryrun\n", -EINVAL,
	  "t.yaml:6:9: spec.mode: ", "expected enforce or audit, got 'dryrun'" },
	{ ZT_HEAD "  policyTypes: [Egress]\n  ingress:\n  - action: deny\n  - action: allow\n",
	  -EINVAL, "t.yaml:9:5: spec.ingress[1]: ",
	  "this allow rule would have no effect: policyTypes does not list Ingress" },
	{ ZT_HEAD "  egress:\n  - action: allow\n    from: []\n", -EINVAL,
	  "t.yaml:8:5: spec.egress[0].from: ",
	  "unknown field; egress rules name their destinations in 'to'" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    cidr: 10.0.0.0/8\n", -EINVAL,
	  "spec.ingress[0].cidr: ",
	  "unknown field; expected action, from, ports, requireTLS, requireMutualAuth" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    from:\n    - serviceAccounts: [web]\n",
	  -EINVAL, "spec.ingress[0].from[0].serviceAccounts[0]: ", "'web' is not NAMESPACE/NAME" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    from:\n    - serviceAccounts: [prod/Web_1]\n",
	  -EINVAL, "spec.ingress[0].from[0].serviceAccounts[0]: ", "'prod/Web_1': a name" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    from:\n    - serviceAccounts: []\n", -EINVAL,
	  "spec.ingress[0].from[0].serviceAccounts: ", "expected 1 to 1000 service accounts" },
	{ ZT_HEAD "  ingress:\n  - action: allow\n    from:\n"
		  "    - {serviceAccounts: [prod/web], podSelector: {}}\n",
	  -EINVAL,
	  "spec.ingress[0].from[0].serviceAccounts: ", "cannot share a peer with podSelector" },
	{ ZT_HEAD "  ingress:\n  - action: deny\n    from:\n    - serviceAccounts: [prod/web]\n",
	  -EINVAL, "t.yaml:9:7: spec.ingress[0]: ", "serviceAccounts peers are for allow rules" },
	{ NP_HEAD "  ingress:\n  - from:\n    - serviceAccounts: [prod/web]\n", -EINVAL,
	  "spec.ingress[0].from[0].serviceAccounts: ", "unknown field" },
	/* YAML itself */
	{ "a: &x 1\nb: 2\n", -EINVAL, "t.yaml:1:4: ", "YAML anchors (&name) are not allowed" },
	{ NP_HEAD "  podSelector: *sel\n", -EINVAL,
	  "t.yaml:6:16: ", "YAML aliases (*name) are not allowed" },
	{ NP_HEAD "  podSelector: !!map {}\n", -EINVAL,
	  "t.yaml:6:16: ", "YAML tags (tag:yaml.org,2002:map) are not allowed" },
	{ "apiVersion: !!binary aGVsbG8=\n", -EINVAL, "t.yaml:1:13: ", "YAML tags" },
	{ NP_HEAD "  ingress: [\n", -EINVAL, "t.yaml:7:1: ", "YAML syntax error: " },
	{ "a: b: c\n", -EINVAL,
	  "t.yaml:1:5: ", "YAML syntax error: mapping values are not allowed" },
	{ "kind: \"bad\\qescape\"\n", -EINVAL, "t.yaml:1:", "YAML syntax error" },
	{ "kind: \"nul\\0byte\"\n", -EINVAL, "t.yaml:1:7: ", "a value contains a NUL byte" },
	{ "kind: \"\xff\xfe\"\n", -EINVAL, "t.yaml:1:", "YAML syntax error" },
	{ "\t- tab\n", -EINVAL, "t.yaml:1:", "YAML syntax error" },
	{ "? [complex, key]\n: v\n", -EINVAL, "t.yaml:1:3: ", "mapping keys must be plain words" },
};

static void test_errors(void **state)
{
	size_t bad = 0;

	for (size_t i = 0; i < N(err_cases); i++) {
		const struct err_case *ec = &err_cases[i];
		struct zt_policy_set *set = (struct zt_policy_set *)(uintptr_t)0x1;
		char err[1024] = "";
		int r = zt_policy_parse_buf(ec->yaml, strlen(ec->yaml), "t.yaml", &set, err,
					    sizeof(err));

		if (r != ec->rc || !strstr(err, ec->where) || !strstr(err, ec->why)) {
			print_error(
				"case %zu: got %d '%s'\n  want %d '%s' ... '%s'\n  input:\n%s\n", i,
				r, err, ec->rc, ec->where, ec->why, ec->yaml);
			bad++;
		}
		/* Output untouched on failure. */
		assert_ptr_equal(set, (struct zt_policy_set *)(uintptr_t)0x1);
		/* The whole message is one line. */
		assert_null(strchr(err, '\n'));
	}
	if (bad)
		fail_msg("%zu of %zu error cases failed", bad, N(err_cases));
}

/* Messages never overflow, however small the buffer. */
static void test_error_buffer_sizes(void **state)
{
	static const char y[] =
		ING_FROM "    - ipBlock: {cidr: 172.17.0.0/16, except: [10.0.0.0/8]}\n";
	char err[64];
	struct zt_policy_set *set = NULL;

	for (size_t n = 0; n <= sizeof(err); n++) {
		memset(err, 'X', sizeof(err));
		assert_int_equal(
			zt_policy_parse_buf(y, sizeof(y) - 1, "t.yaml", &set, n ? err : NULL, n),
			-EINVAL);
		if (n)
			assert_true(memchr(err, '\0', n) != NULL);
		if (n < sizeof(err))
			assert_int_equal(err[n], 'X');
	}
	assert_null(set);
}

/* ---- hostile input ------------------------------------------------------ */

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *b = malloc(hl + ul * times + tl + 1);
	char *p = b;

	assert_non_null(b);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < times; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return b;
}

static void expect_fail(const char *buf, size_t len, int rc, const char *why)
{
	struct zt_policy_set *set = NULL;
	char err[512] = "";
	int r = zt_policy_parse_buf(buf, len, "h.yaml", &set, err, sizeof(err));

	if (r != rc || !strstr(err, why))
		fail_msg("got %d '%s', want %d '...%s...'", r, err, rc, why);
	assert_null(set);
}

static void test_limits(void **state)
{
	char *b;

	/* Over 4 MiB: refused before parsing. */
	b = repeat("", "#234567890123456789012345678901\n", (4u << 20) / 32 + 1, "");
	expect_fail(b, strlen(b), -EFBIG,
		    "h.yaml: 4194336 bytes; a policy file may hold at most 4 MiB");
	free(b);

	/* Deep nesting. */
	b = repeat("a: ", "[", 100000, "");
	expect_fail(b, strlen(b), -E2BIG, "nesting deeper than 64 levels");
	free(b);
	b = repeat("a:\n", " - ", 200, "x\n");
	expect_fail(b, strlen(b), -E2BIG, "nesting deeper than 64 levels");
	free(b);

	/* Too many nodes in one document. */
	b = repeat("a: [", "1,", 300000, "1]\n");
	expect_fail(b, strlen(b), -E2BIG, "the document has more than 262144 YAML nodes");
	free(b);

	/* Too many rules, peers, ports, excepts, labels, expressions, values. */
	b = repeat(NP_HEAD "  ingress:\n", "  - {}\n", 1001, "");
	expect_fail(b, strlen(b), -E2BIG, "h.yaml:7:3: spec.ingress: more than 1000 entries");
	free(b);
	b = repeat(NP_HEAD "  ingress:\n", "  - {}\n", 600, "  egress:\n");
	{
		char *c = repeat(b, "  - {}\n", 401, "");

		expect_fail(c, strlen(c), -E2BIG, "more than 1000 rules in one policy");
		free(c);
	}
	free(b);
	b = repeat(ING_FROM, "    - podSelector: {}\n", 1001, "");
	expect_fail(b, strlen(b), -E2BIG, "spec.ingress[0].from: more than 1000 entries");
	free(b);
	b = repeat(ING_PORTS, "    - port: 1\n", 1001, "");
	expect_fail(b, strlen(b), -E2BIG, "spec.ingress[0].ports: more than 1000 entries");
	free(b);
	b = repeat(ING_FROM "    - ipBlock:\n        cidr: 10.0.0.0/8\n        except:\n",
		   "        - 10.0.0.0/24\n", 1001, "");
	expect_fail(b, strlen(b), -E2BIG, "ipBlock.except: more than 1000 entries");
	free(b);
	{
		char *lines = malloc(300 * 16);
		size_t o = 0;

		assert_non_null(lines);
		for (int i = 0; i < 257; i++)
			o += (size_t)sprintf(lines + o, "      k%d: v\n", i);
		b = repeat(SEL "    matchLabels:\n", "", 0, lines);
		expect_fail(b, strlen(b), -E2BIG,
			    "spec.podSelector.matchLabels: more than 256 entries");
		free(b);
		free(lines);
	}
	b = repeat(SEL "    matchExpressions:\n", "    - {key: a, operator: Exists}\n", 257, "");
	expect_fail(b, strlen(b), -E2BIG, "matchExpressions: more than 256 expressions");
	free(b);
	b = repeat(SEL "    matchExpressions:\n    - key: a\n      operator: In\n      values:\n",
		   "      - v\n", 1025, "");
	expect_fail(b, strlen(b), -E2BIG, "values: more than 1024 values");
	free(b);

	/* A scalar over 256 KiB (an annotation, say). */
	b = repeat("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
		   "  annotations:\n    note: ",
		   "x", (256u << 10) + 1, "\nspec: {}\n");
	expect_fail(b, strlen(b), -E2BIG,
		    "h.yaml:6:11: a value of 262145 bytes; the limit is 262144");
	free(b);
}

static void test_many_policies(void **state)
{
	size_t cap = 10001 * 120, o = 0;
	char *b = malloc(cap);
	struct zt_policy_set *set = NULL;
	char err[256];

	assert_non_null(b);
	for (int i = 0; i < 10000; i++)
		o += (size_t)snprintf(b + o, cap - o,
				      "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
				      "metadata: {name: p%d}\nspec: {}\n",
				      i);
	assert_int_equal(zt_policy_parse_buf(b, o, "m.yaml", &set, err, sizeof(err)), 0);
	assert_int_equal(set->n, 10000);
	assert_string_equal(set->policies[9999].name, "p9999");
	assert_int_equal(set->policies[9999].doc, 9999);
	zt_policy_set_free(set);
	set = NULL;
	o += (size_t)snprintf(b + o, cap - o,
			      "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			      "metadata: {name: p10000}\nspec: {}\n");
	assert_int_equal(zt_policy_parse_buf(b, o, "m.yaml", &set, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "more than 10000 policies"));
	assert_null(set);
	free(b);
}

static void test_hostile(void **state)
{
	/* Billion laughs: refused at the first anchor, nothing expanded. */
	static const char lol[] =
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
	/* Merge keys bring in nothing: '<<' is an unknown field and aliases are refused. */
	static const char merge[] = NP_HEAD "  <<: {podSelector: {}}\n";
	static const char nul_mid[] = "kind: Network\0Policy\n";
	uint32_t seed = 12345;
	char *junk;

	expect_fail(lol, sizeof(lol) - 1, -EINVAL, "h.yaml:1:4: YAML anchors");
	expect_fail(merge, sizeof(merge) - 1, -EINVAL, "h.yaml:6:3: spec[\"<<\"]: unknown field");
	expect_fail(nul_mid, sizeof(nul_mid) - 1, -EINVAL, "YAML syntax error");

	/* Random bytes, and random bytes after a valid prefix: an error, never a crash. */
	junk = malloc(8192);
	assert_non_null(junk);
	for (int round = 0; round < 64; round++) {
		struct zt_policy_set *set = NULL;
		char err[512] = "";
		size_t len = 1 + (size_t)(round * 127) % 8191;
		size_t pre = 0;
		int r;

		if (round % 2) {
			pre = strlen(NP_HEAD);
			memcpy(junk, NP_HEAD, pre);
		}
		for (size_t i = pre; i < len + pre && i < 8192; i++) {
			seed = seed * 1103515245u + 12345u;
			junk[i] = (char)(seed >> 16);
		}
		if (len + pre > 8192)
			len = 8192 - pre;
		r = zt_policy_parse_buf(junk, len + pre, "junk.yaml", &set, err, sizeof(err));
		if (r == 0) {
			zt_policy_set_free(set); /* astronomically unlikely, but not a bug */
			continue;
		}
		assert_true(r < 0);
		assert_null(set);
		assert_true(strncmp(err, "junk.yaml", 9) == 0);
	}
	/* Printable junk: structure without sense. */
	for (int round = 0; round < 64; round++) {
		static const char alphabet[] = "ab:- []{},'\"\n#&*!|>?%@`\\0123456789kind";
		struct zt_policy_set *set = NULL;
		char err[512] = "";
		size_t len = 16 + (size_t)round * 61;

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			junk[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		if (zt_policy_parse_buf(junk, len, "junk.yaml", &set, err, sizeof(err)) == 0)
			zt_policy_set_free(set);
		else
			assert_non_null(strstr(err, "junk.yaml"));
	}
	free(junk);
}

/* ---- files, directories, the hash --------------------------------------- */

static void sha256_hex(const void *const *parts, const size_t *lens, size_t n, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl = 0;

	assert_non_null(md);
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(EVP_DigestUpdate(md, parts[i], lens[i]), 1);
	assert_int_equal(EVP_DigestFinal_ex(md, d, &dl), 1);
	EVP_MD_CTX_free(md);
	for (unsigned int i = 0; i < dl; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_hash(void **state)
{
	static const char y[] = NP_HEAD "  podSelector: {}\n";
	struct zt_policy_set *a = NULL, *b = NULL;
	char err[256], want[65], size[16];
	const void *parts[] = { "t.yaml", size, y };
	size_t lens[] = { 7, 0, sizeof(y) - 1 };

	/* name, NUL, size in decimal, NUL, bytes */
	snprintf(size, sizeof(size), "%zu", sizeof(y) - 1);
	lens[1] = strlen(size) + 1;
	a = parse_ok(y);
	sha256_hex(parts, lens, 3, want);
	assert_string_equal(a->sha256, want);
	/* Only the base name counts. */
	assert_int_equal(
		zt_policy_parse_buf(y, sizeof(y) - 1, "/etc/zt/t.yaml", &b, err, sizeof(err)), 0);
	assert_string_equal(a->sha256, b->sha256);
	zt_policy_set_free(b);
	/* Another name, another hash; one more byte, another hash. */
	assert_int_equal(zt_policy_parse_buf(y, sizeof(y) - 1, "u.yaml", &b, err, sizeof(err)), 0);
	assert_string_not_equal(a->sha256, b->sha256);
	zt_policy_set_free(b);
	assert_int_equal(zt_policy_parse_buf(NP_HEAD "  podSelector: {} \n", sizeof(y), "t.yaml",
					     &b, err, sizeof(err)),
			 0);
	assert_string_not_equal(a->sha256, b->sha256);
	zt_policy_set_free(b);
	zt_policy_set_free(a);
}

struct tmpdir {
	char path[64];
};

static void write_file(const char *dir, const char *name, const char *content)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
	assert_int_equal(fclose(f), 0);
}

static int tmpdir_setup(void **state)
{
	struct tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "/tmp/zt-policy-test-XXXXXX");
	if (!mkdtemp(t->path)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *t = *state;
	char cmd[128];

	/* Only the directory this test made. */
	if (strncmp(t->path, "/tmp/zt-policy-test-", 20) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", t->path);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", t->path);
	}
	free(t);
	return 0;
}

#define FILE_A NP_HEAD "  podSelector: {}\n"
#define FILE_B "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\nmetadata: {name: z}\nspec: {}\n"

static void test_dir(void **state)
{
	struct tmpdir *t = *state;
	struct zt_policy_set *set = NULL, *old;
	char err[512], p[256], want[65], sa[16], sb[16];
	int r;

	write_file(t->path, "b.yml", FILE_B);
	write_file(t->path, "a.yaml", FILE_A);
	write_file(t->path, ".hidden.yaml", "this: [is not valid\n");
	write_file(t->path, "notes.txt", "this: [is not valid\n");
	write_file(t->path, "a.yaml.bak", "this: [is not valid\n");
	snprintf(p, sizeof(p), "%s/..data", t->path);
	assert_int_equal(mkdir(p, 0755), 0);

	r = zt_policy_parse_dir(t->path, &set, err, sizeof(err));
	if (r)
		fail_msg("%s", err);
	assert_int_equal(set->n, 2);
	assert_int_equal(set->n_files, 2);
	/* Files in name order: a.yaml before b.yml. */
	assert_string_equal(set->policies[0].name, "p");
	assert_string_equal(set->policies[1].name, "z");
	snprintf(p, sizeof(p), "%s/a.yaml", t->path);
	assert_string_equal(set->policies[0].file, p);
	snprintf(sa, sizeof(sa), "%zu", strlen(FILE_A));
	snprintf(sb, sizeof(sb), "%zu", strlen(FILE_B));
	{
		const void *parts[] = { "a.yaml", sa, FILE_A, "b.yml", sb, FILE_B };
		const size_t lens[] = { 7, strlen(sa) + 1, strlen(FILE_A),
					6, strlen(sb) + 1, strlen(FILE_B) };

		sha256_hex(parts, lens, 6, want);
	}
	assert_string_equal(set->sha256, want);

	/* zt_policy_load on the directory and on one file; trailing slash too. */
	old = set;
	snprintf(p, sizeof(p), "%s/", t->path);
	assert_int_equal(zt_policy_load(p, &set, err, sizeof(err)), 0);
	assert_string_equal(set->sha256, old->sha256);
	zt_policy_set_free(set);
	snprintf(p, sizeof(p), "%s/b.yml", t->path);
	assert_int_equal(zt_policy_load(p, &set, err, sizeof(err)), 0);
	assert_int_equal(set->n, 1);
	assert_string_equal(set->policies[0].file, p);
	zt_policy_set_free(set);

	/* A symlink is followed. */
	snprintf(p, sizeof(p), "%s/c.yaml", t->path);
	assert_int_equal(symlink("b.yml", p), 0);
	assert_int_equal(zt_policy_parse_dir(t->path, &set, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "c.yaml:3:18: metadata.name: ZeroTrustPolicy default/z is "
				    "defined twice; the first is"));
	assert_non_null(strstr(err, "b.yml:3:18"));
	assert_int_equal(unlink(p), 0);

	/* One bad file fails the load; the caller's set is untouched. */
	set = old;
	write_file(t->path, "m.yaml", NP_HEAD "  ingress:\n  - ports: [{port: 0}]\n");
	assert_int_equal(zt_policy_parse_dir(t->path, &set, err, sizeof(err)), -ERANGE);
	assert_ptr_equal(set, old);
	snprintf(p, sizeof(p), "%s/m.yaml:7:20: spec.ingress[0].ports[0].port: ", t->path);
	if (!strstr(err, p))
		fail_msg("got '%s', want '%s'", err, p);
	snprintf(p, sizeof(p), "%s/m.yaml", t->path);
	assert_int_equal(unlink(p), 0);

	/* A directory named like a policy file. */
	snprintf(p, sizeof(p), "%s/d.yaml", t->path);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(zt_policy_parse_dir(t->path, &set, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "d.yaml: not a regular file"));
	assert_int_equal(rmdir(p), 0);

	/* A FIFO must not hang the load. */
	snprintf(p, sizeof(p), "%s/f.yaml", t->path);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(zt_policy_parse_dir(t->path, &set, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "f.yaml: not a regular file"));
	assert_int_equal(unlink(p), 0);

	/* A file over 4 MiB on disk (sparse). */
	snprintf(p, sizeof(p), "%s/g.yaml", t->path);
	{
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (4 << 20) + 1), 0);
		close(fd);
	}
	assert_int_equal(zt_policy_parse_dir(t->path, &set, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "g.yaml: 4194305 bytes; a policy file may hold at most 4 MiB"));
	assert_int_equal(zt_policy_parse_file(p, &set, err, sizeof(err)), -EFBIG);
	assert_int_equal(unlink(p), 0);

	/* Unreadable or missing paths. */
	snprintf(p, sizeof(p), "%s/nope", t->path);
	assert_int_equal(zt_policy_parse_dir(p, &set, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nope: cannot open the policy directory: "));
	assert_int_equal(zt_policy_parse_file(p, &set, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nope: cannot open: "));
	assert_int_equal(zt_policy_load(p, &set, err, sizeof(err)), -ENOENT);
	assert_ptr_equal(set, old);

	/* An empty directory is an empty set. */
	snprintf(p, sizeof(p), "%s/..data", t->path);
	assert_int_equal(zt_policy_parse_dir(p, &set, err, sizeof(err)), 0);
	assert_int_equal(set->n, 0);
	assert_int_equal(set->n_files, 0);
	assert_string_equal(set->sha256,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	zt_policy_set_free(set);
	zt_policy_set_free(old);
}

static void test_names(void **state)
{
	assert_string_equal(zt_pol_kind_name(ZT_POL_NETWORK_POLICY), "NetworkPolicy");
	assert_string_equal(zt_pol_kind_name(ZT_POL_ZERO_TRUST_POLICY), "ZeroTrustPolicy");
	assert_string_equal(zt_pol_dir_name(ZT_POL_INGRESS), "ingress");
	assert_string_equal(zt_pol_dir_name(ZT_POL_EGRESS), "egress");
	assert_string_equal(zt_pol_proto_name(IPPROTO_TCP), "TCP");
	assert_string_equal(zt_pol_proto_name(IPPROTO_UDP), "UDP");
	assert_string_equal(zt_pol_proto_name(IPPROTO_SCTP), "SCTP");
	assert_string_equal(zt_pol_proto_name(250), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_tables),
		cmocka_unit_test(test_default_modes),
		cmocka_unit_test(test_eval_result_fields),
		cmocka_unit_test(test_eval_helpers),
		cmocka_unit_test(test_model_network_policy),
		cmocka_unit_test(test_policy_types_defaulting),
		cmocka_unit_test(test_model_fields),
		cmocka_unit_test(test_documents),
		cmocka_unit_test(test_service_accounts),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_buffer_sizes),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_many_policies),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_hash),
		cmocka_unit_test_setup_teardown(test_dir, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
