/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * X.509-SVIDs: minted on the node under its intermediate, kept in memory
 * (keys never touch a disk), renewed at half life; and the verifier every
 * peer's chain goes through.
 *
 * The profile we mint and the one we accept (SPIFFE X.509-SVID):
 *   exactly one URI SAN, spiffe://TD/ns/NS/sa/SA, TD our trust domain;
 *   basicConstraints critical CA:FALSE; keyUsage critical digitalSignature
 *   (never keyCertSign or cRLSign); extendedKeyUsage serverAuth and
 *   clientAuth; P-256 key; notBefore 5 minutes back for clock skew;
 *   notAfter notBefore + 5 min + TTL, never past the intermediate's.
 * A peer's chain must lead to a root of the bundle; the bundle holds
 * several roots during a rollover, and a leaf under any of them verifies.
 */
#ifndef ZT_MTLS_SVID_H
#define ZT_MTLS_SVID_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "mtls/mtls.h"

#define ZT_SVID_SKEW_S 300 /* notBefore this far back */
#define ZT_SVID_TTL_DEFAULT_S 3600

/* ---- trust: the roots of the bundle and the trust domain ---- */

struct zt_trust {
	X509_STORE *store;
	char trust_domain[ZT_TRUST_DOMAIN_MAX + 1];
	int n_roots;
};

/* From a PEM bundle (one or more roots). err says which file and what is wrong. */
int zt_trust_load(const char *bundle_path, const char *trust_domain, struct zt_trust **out,
		  char *err, size_t errlen);
/* From certificates in memory (the stack is not taken). */
int zt_trust_new(const char *trust_domain, STACK_OF(X509) * roots, struct zt_trust **out);
void zt_trust_free(struct zt_trust *t);

/* The reason an OpenSSL chain verification error (X509_V_ERR_*) stands for. */
enum zt_mtls_reason zt_mtls_reason_of_x509(int x509_err);

/*
 * The X.509-SVID leaf rules alone (no chain): ZT_MTLS_OK with the SPIFFE ID
 * in id, or BAD_SAN, TRUST_DOMAIN or BAD_PROFILE.
 */
enum zt_mtls_reason zt_svid_check_leaf(X509 *leaf, const char *trust_domain, char *id, size_t n);

/*
 * Verifies leaf (with the intermediates in untrusted, may be NULL) against
 * the bundle at time now (unix seconds), then the leaf rules. ZT_MTLS_OK
 * with the SPIFFE ID in id, or the reason of the refusal.
 */
enum zt_mtls_reason zt_svid_verify(const struct zt_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
				   int64_t now, char *id, size_t n);

/* ---- the node's issuer ---- */

struct zt_svid_issuer {
	X509 *cert; /* the node intermediate */
	EVP_PKEY *key;
	char trust_domain[ZT_TRUST_DOMAIN_MAX + 1];
	int64_t not_after;
};

/*
 * Loads node_cert and node_key (mode 0600 or stricter), checks they belong
 * together, that the certificate may sign (CA:TRUE, keyCertSign) and that
 * it chains to the bundle when trust is given.
 */
int zt_svid_issuer_load(const char *cert_path, const char *key_path, const char *trust_domain,
			const struct zt_trust *trust, struct zt_svid_issuer **out, char *err,
			size_t errlen);
void zt_svid_issuer_free(struct zt_svid_issuer *iss);

/* One minted SVID: read-only after minting, shared by reference. */
struct zt_svid {
	atomic_int refs;
	char id[ZT_SPIFFE_ID_MAX + 1];
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* the intermediate(s) sent after the leaf */
	int64_t issued_at, not_before, not_after, renew_at; /* unix seconds */
	char serial[80];
};

/* Mints an SVID for spiffe_id (a workload ID of the issuer's trust domain) at now for ttl_s. */
int zt_svid_mint(const struct zt_svid_issuer *iss, const char *spiffe_id, int64_t now,
		 uint64_t ttl_s, struct zt_svid **out);
struct zt_svid *zt_svid_get_ref(struct zt_svid *s);
void zt_svid_put(struct zt_svid *s);

/* ---- the store: the SVIDs of the service accounts this node hosts ---- */

struct zt_svid_store;

struct zt_svid_store_config {
	uint64_t ttl_s; /* mtls.svid_ttl */
	/*
	 * Called for each SVID minted, by the thread that minted it once the
	 * store's lock is released (only without memory for the list, with it
	 * held: do not call back into the store).
	 */
	void (*on_issue)(void *ctx, const struct zt_svid *svid, bool renewal);
	void *ctx;
};

/* Takes iss. Thread-safe: the relay thread reads while the control loop adds and removes. */
int zt_svid_store_new(const struct zt_svid_store_config *cfg, struct zt_svid_issuer *iss,
		      struct zt_svid_store **out);
void zt_svid_store_free(struct zt_svid_store *s);

/* Hosts ns/sa (counted: one per pod); mints its SVID at once. */
int zt_svid_store_add(struct zt_svid_store *s, const char *ns, const char *sa, int64_t now);
/* One pod fewer; the SVID is dropped with the last. -ENOENT when not hosted. */
int zt_svid_store_del(struct zt_svid_store *s, const char *ns, const char *sa);

/*
 * The current SVID of spiffe_id (a reference: zt_svid_put it). Renewing at
 * half life is zt_svid_store_tick's; this mints a new one only when the
 * tick fell behind by half the rest of the lifetime (three quarters of it
 * gone), or -EKEYEXPIRED when that fails and the SVID expired. -ENOENT
 * when this node hosts no such workload.
 */
int zt_svid_store_get(struct zt_svid_store *s, const char *spiffe_id, int64_t now,
		      struct zt_svid **out);

/* Renews every SVID past half life; returns when the next one is due (unix s, 0: none). */
int64_t zt_svid_store_tick(struct zt_svid_store *s, int64_t now);

/* Replaces the issuer (a reissued node intermediate) and renews every SVID under it. Takes iss. */
int zt_svid_store_set_issuer(struct zt_svid_store *s, struct zt_svid_issuer *iss, int64_t now);

struct zt_svid_info {
	char id[ZT_SPIFFE_ID_MAX + 1];
	char serial[80];
	int64_t not_before, not_after, renew_at;
	unsigned int pods;
};

/* Up to max entries, and how many there are. */
size_t zt_svid_store_list(struct zt_svid_store *s, struct zt_svid_info *out, size_t max);
/* SVIDs minted since start (first issues and renewals). */
uint64_t zt_svid_store_minted(struct zt_svid_store *s);
/* Mints that failed since start (each is retried at the next tick), and the last one's -errno. */
uint64_t zt_svid_store_failures(struct zt_svid_store *s, int *last_error);

#endif
