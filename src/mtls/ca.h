/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A trust domain's certificate authority, as `ztctl ca` runs it on an
 * operator's machine (the root key stays there, or in a Secret only the
 * issuer reads):
 *
 *   ca init       DIR/root.pem, DIR/root.key (0600), DIR/bundle.pem
 *   ca issue-node OUT/node.pem, OUT/node.key (0600), OUT/bundle.pem
 *
 * The root is P-256, CA:TRUE with path length 1 and a name constraint that
 * permits only URIs of its trust domain; a node intermediate is CA:TRUE
 * with path length 0, so it can sign SVIDs and nothing that signs.
 * Messages go to err (what happened, which file, what to do).
 */
#ifndef ZT_MTLS_CA_H
#define ZT_MTLS_CA_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#define ZT_CA_ROOT_DAYS 3650
#define ZT_CA_NODE_DAYS 365
#define ZT_CA_DAYS_MAX 36500
#define ZT_CA_NODE_NAME_MAX 64

struct zt_ca_result {
	char serial[80];
	int64_t not_after; /* unix seconds */
	char trust_domain[256];
};

/* Creates a root for trust_domain in out_dir (created 0700 when missing); never overwrites one. */
int zt_ca_init(const char *trust_domain, const char *out_dir, unsigned int days,
	       struct zt_ca_result *res, char *err, size_t errlen);

/* Issues node's intermediate under the root in ca_dir into out_dir (the node's files). */
int zt_ca_issue_node(const char *ca_dir, const char *node, const char *out_dir, unsigned int days,
		     struct zt_ca_result *res, char *err, size_t errlen);

/*
 * The same for a key that never leaves the node: csr_path is a request made
 * there by zt_ca_node_request(); out_dir gets node.pem and bundle.pem only.
 */
int zt_ca_issue_node_csr(const char *ca_dir, const char *node, const char *csr_path,
			 const char *out_dir, unsigned int days, struct zt_ca_result *res,
			 char *err, size_t errlen);

/* On the node: a new P-256 key (out_dir/node.key, 0600) and its request (out_dir/node.csr). */
int zt_ca_node_request(const char *node, const char *out_dir, char *err, size_t errlen);

/* The trust domain a root was made for (its permitted URI name constraint). */
int zt_ca_trust_domain_of(X509 *root, char *td, size_t n);

#endif
