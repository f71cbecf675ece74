/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Certificates: one builder for every profile we issue (root, node
 * intermediate, X.509-SVID), P-256 keys, PEM in and out, and files written
 * atomically. Library code: returns 0 or -errno, never logs.
 */
#ifndef ZT_MTLS_X509_H
#define ZT_MTLS_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* keyUsage bits (0: no extension) */
enum {
	ZT_KU_DIGITAL_SIGNATURE = 1 << 0,
	ZT_KU_KEY_CERT_SIGN = 1 << 1,
	ZT_KU_CRL_SIGN = 1 << 2,
	ZT_KU_KEY_ENCIPHERMENT = 1 << 3,
};
/* extendedKeyUsage bits (0: no extension) */
enum {
	ZT_EKU_SERVER = 1 << 0,
	ZT_EKU_CLIENT = 1 << 1,
};

#define ZT_X509_MAX_URIS 4

struct zt_x509_spec {
	const char *subject_o, *subject_cn; /* either may be NULL */
	bool basic_constraints; /* false: no basicConstraints extension at all */
	bool is_ca;
	int pathlen; /* CA only; < 0: no limit */
	unsigned int key_usage; /* ZT_KU_*, critical */
	unsigned int ext_usage; /* ZT_EKU_* */
	const char *uris[ZT_X509_MAX_URIS]; /* URI SANs, NULL-terminated when shorter */
	const char *permitted_uri; /* nameConstraints: permitted URI host (critical); NULL: none */
	int64_t not_before, not_after; /* unix seconds */
	EVP_PKEY *key; /* the subject's key (its public half is certified) */
	X509 *issuer; /* NULL: self-signed with issuer_key == key */
	EVP_PKEY *issuer_key;
};

/* Builds and signs (ECDSA with SHA-256) a certificate with a random 127-bit serial. */
int zt_x509_build(const struct zt_x509_spec *s, X509 **out);

/* A new P-256 key. */
int zt_x509_keygen(EVP_PKEY **out);
/* True for an EC key on P-256. */
bool zt_x509_key_is_p256(EVP_PKEY *k);

/* PEM into a malloc'd buffer (*out, *len); key as unencrypted PKCS#8. */
int zt_x509_cert_pem(X509 *c, char **out, size_t *len);
int zt_x509_key_pem(EVP_PKEY *k, char **out, size_t *len);

/* Every certificate of a PEM file (at least one), or -ENOENT/-EINVAL/-ENOMEM. */
int zt_x509_load_certs(const char *path, STACK_OF(X509) * *out);
int zt_x509_load_certs_mem(const void *buf, size_t len, STACK_OF(X509) * *out);
/* The first certificate of a PEM file. */
int zt_x509_load_cert(const char *path, X509 **out);
/* A private key from a PEM file; -EPERM when group or others may read the file. */
int zt_x509_load_key(const char *path, EVP_PKEY **out);

/*
 * Writes path atomically: a temporary file in the same directory (created
 * with mode, fsynced), renamed into place, the directory fsynced. A reader
 * sees the old file or the new one, never part of one.
 */
int zt_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* notBefore / notAfter as unix seconds. */
int zt_x509_times(const X509 *c, int64_t *not_before, int64_t *not_after);
/* The serial as lowercase hex ("-" when unreadable). */
void zt_x509_serial_hex(const X509 *c, char *buf, size_t n);
/* The URI SANs of c: how many there are; the first is copied into first (may be NULL). */
int zt_x509_uri_sans(X509 *c, char *first, size_t n);

#endif
