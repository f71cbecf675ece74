/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Workload mTLS: what the certificate, SVID and tunnel modules share.
 *
 * A workload's identity is a SPIFFE ID,
 *   spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>,
 * carried as the one URI SAN of a short-lived X.509-SVID that the node's
 * agent mints under its node intermediate. Agents carry pod TCP between
 * nodes over TLS 1.3 with both workloads' SVIDs; every refusal has one of
 * the reasons below, counted and reported by name.
 */
#ifndef ZT_MTLS_H
#define ZT_MTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_SPIFFE_ID_MAX 2048 /* the SPIFFE ID spec's limit for a URI SAN */
#define ZT_TRUST_DOMAIN_MAX 255
#define ZT_K8S_NAME_MAX 253 /* namespace and service account: DNS subdomain names */

/* Why a handshake or a tunnel was refused (or failed). Names: zt_mtls_reason_name(). */
enum zt_mtls_reason {
	ZT_MTLS_OK = 0,
	ZT_MTLS_UNKNOWN_CA, /* the chain does not end at a root of the bundle */
	ZT_MTLS_EXPIRED, /* a certificate of the chain is past notAfter */
	ZT_MTLS_NOT_YET_VALID, /* a certificate of the chain is before notBefore */
	ZT_MTLS_WRONG_IDENTITY, /* authenticated, but policy does not allow this identity here */
	ZT_MTLS_BAD_SAN, /* not exactly one URI SAN, or it is no valid workload SPIFFE ID */
	ZT_MTLS_BAD_PROFILE, /* not an X.509-SVID leaf: CA:TRUE, key usages, extended usages */
	ZT_MTLS_TRUST_DOMAIN, /* a SPIFFE ID of another trust domain */
	ZT_MTLS_NO_CERT, /* the peer presented no certificate */
	ZT_MTLS_VERSION, /* the peer speaks no TLS 1.3 (or none of our suites and groups) */
	ZT_MTLS_PLAINTEXT, /* the peer sent bytes that are not TLS */
	ZT_MTLS_TAMPERED, /* a record or the handshake transcript failed its integrity check */
	ZT_MTLS_PEER_REFUSED, /* the peer refused us (alert or refusal frame) */
	ZT_MTLS_NO_IDENTITY, /* no SVID here for that workload (not hosted, or not minted) */
	ZT_MTLS_PROTOCOL, /* a malformed or inconsistent tunnel frame */
	ZT_MTLS_HANDSHAKE, /* any other handshake failure */
	ZT_MTLS_TIMEOUT, /* the handshake or the frame exchange took too long */
	ZT_MTLS_UPSTREAM, /* the destination workload refused or could not be reached */
	ZT_MTLS_CONNECT, /* the peer agent could not be reached */
	ZT_MTLS_REASON_MAX,
};

const char *zt_mtls_reason_name(enum zt_mtls_reason r);

/*
 * The destination of a tunnelled connection (the pod's original destination),
 * with its source, as the authorization hook sees it. Addresses in network
 * byte order, IPv4 in the first 4 bytes.
 */
enum zt_mtls_role {
	ZT_MTLS_ROLE_CLIENT = 0, /* checking the server's identity for this destination */
	ZT_MTLS_ROLE_SERVER, /* checking the client's identity for access to a local destination */
};

struct zt_mtls_dest {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t role; /* enum zt_mtls_role */
	uint16_t port; /* host byte order */
	uint8_t addr[16];
	uint16_t src_port; /* the client pod's port, host byte order */
	uint8_t pad[2];
	uint8_t src_addr[16]; /* the client pod's address, same family */
};

/*
 * The authorization hook the policy side implements: true when the
 * authenticated peer_spiffe_id may take part in a connection to dst (in the
 * role dst->role says). Called on the relay thread; it must not block.
 */
typedef bool (*zt_mtls_authorize_fn)(void *ctx, const char *peer_spiffe_id,
				     const struct zt_mtls_dest *dst);

/* ---- SPIFFE IDs (spiffe.c) ---- */

/* A trust domain name: 1..255 of [a-z0-9.-_]. */
bool zt_spiffe_trust_domain_valid(const char *td);

/*
 * Checks id against the SPIFFE ID rules (scheme "spiffe", a valid trust
 * domain, no port/userinfo/query/fragment, path segments of [A-Za-z0-9.-_]
 * that are neither empty, "." nor "..", no trailing slash, at most 2048
 * bytes). 0 or -EINVAL.
 */
int zt_spiffe_id_check(const char *id);

/*
 * A workload ID of trust domain td: spiffe://td/ns/NS/sa/SA. Writes NS and
 * SA (either may be NULL). 0, -EINVAL (not a valid SPIFFE ID or not of the
 * workload form) or -EXDEV (valid, but of another trust domain).
 */
int zt_spiffe_parse_workload(const char *id, const char *td, char *ns, size_t ns_len, char *sa,
			     size_t sa_len);

/* Builds spiffe://td/ns/NS/sa/SA; -EINVAL when a part is invalid, -ENOSPC when out is short. */
int zt_spiffe_format_workload(char *out, size_t n, const char *td, const char *ns, const char *sa);

#endif
