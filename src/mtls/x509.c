// SPDX-License-Identifier: GPL-2.0-only
/* Certificates and keys with OpenSSL 3: the one builder, PEM, atomic files. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mtls/x509.h"

#define PEM_FILE_MAX (1u << 20) /* a bundle of a few roots is a few KiB */

static int add_ext(X509 *c, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!e)
		return -EINVAL;
	ok = X509_add_ext(c, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -ENOMEM;
}

static int set_name(X509_NAME *name, const char *field, const char *v)
{
	if (!v)
		return 0;
	if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)v, -1,
					-1, 0))
		return -EINVAL;
	return 0;
}

static int random_serial(X509 *c)
{
	BIGNUM *bn = BN_new();
	int r = -ENOMEM;

	/* 127 bits: positive in DER, unique without a counter to keep. */
	if (bn && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ODD) &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)))
		r = 0;
	BN_free(bn);
	return r;
}

/* "critical,digitalSignature,keyCertSign" */
static void ku_string(unsigned int ku, char *buf, size_t n)
{
	snprintf(buf, n, "critical%s%s%s%s",
		 ku & ZT_KU_DIGITAL_SIGNATURE ? ",digitalSignature" : "",
		 ku & ZT_KU_KEY_ENCIPHERMENT ? ",keyEncipherment" : "",
		 ku & ZT_KU_KEY_CERT_SIGN ? ",keyCertSign" : "",
		 ku & ZT_KU_CRL_SIGN ? ",cRLSign" : "");
}

int zt_x509_build(const struct zt_x509_spec *s, X509 **out)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	char buf[ZT_X509_MAX_URIS * 2100 + 64];
	int r = -ENOMEM;

	if (!c || !name)
		goto fail;
	r = -EINVAL;
	if (!s->key || !s->issuer_key || s->not_after <= s->not_before)
		goto fail;
	if (!X509_set_version(c, X509_VERSION_3) || random_serial(c) < 0)
		goto fail;
	if (set_name(name, "O", s->subject_o) < 0 || set_name(name, "CN", s->subject_cn) < 0 ||
	    !X509_set_subject_name(c, name))
		goto fail;
	if (!X509_set_issuer_name(c, s->issuer ? X509_get_subject_name(s->issuer) : name))
		goto fail;
	if (!ASN1_TIME_set(X509_getm_notBefore(c), (time_t)s->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(c), (time_t)s->not_after))
		goto fail;
	if (!X509_set_pubkey(c, s->key))
		goto fail;

	/* The subject key id first: a self-signed certificate's AKI refers to it. */
	X509V3_set_ctx(&ctx, s->issuer ? s->issuer : c, c, NULL, NULL, 0);
	if (s->basic_constraints) {
		if (s->is_ca && s->pathlen >= 0)
			snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", s->pathlen);
		else
			snprintf(buf, sizeof(buf), "critical,CA:%s", s->is_ca ? "TRUE" : "FALSE");
		if ((r = add_ext(c, &ctx, NID_basic_constraints, buf)) < 0)
			goto fail;
	}
	if (s->key_usage) {
		ku_string(s->key_usage, buf, sizeof(buf));
		if ((r = add_ext(c, &ctx, NID_key_usage, buf)) < 0)
			goto fail;
	}
	if (s->ext_usage) {
		snprintf(buf, sizeof(buf), "%s%s%s",
			 s->ext_usage & ZT_EKU_SERVER ? "serverAuth" : "",
			 (s->ext_usage & ZT_EKU_SERVER) && (s->ext_usage & ZT_EKU_CLIENT) ? "," :
											    "",
			 s->ext_usage & ZT_EKU_CLIENT ? "clientAuth" : "");
		if ((r = add_ext(c, &ctx, NID_ext_key_usage, buf)) < 0)
			goto fail;
	}
	if (s->uris[0]) {
		size_t o = 0;

		for (size_t i = 0; i < ZT_X509_MAX_URIS && s->uris[i]; i++) {
			/* The conf syntax splits on ',': a URI carrying one cannot be written. */
			r = -EINVAL;
			if (strchr(s->uris[i], ',') || strlen(s->uris[i]) > 2048)
				goto fail;
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%sURI:%s", i ? "," : "",
					      s->uris[i]);
		}
		if ((r = add_ext(c, &ctx, NID_subject_alt_name, buf)) < 0)
			goto fail;
	}
	if (s->permitted_uri) {
		r = -EINVAL;
		if (strchr(s->permitted_uri, ','))
			goto fail;
		snprintf(buf, sizeof(buf), "critical,permitted;URI:%s", s->permitted_uri);
		if ((r = add_ext(c, &ctx, NID_name_constraints, buf)) < 0)
			goto fail;
	}
	if ((r = add_ext(c, &ctx, NID_subject_key_identifier, "hash")) < 0)
		goto fail;
	if ((r = add_ext(c, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
		goto fail;
	r = -EINVAL;
	if (!X509_sign(c, s->issuer_key, EVP_sha256()))
		goto fail;
	X509_NAME_free(name);
	*out = c;
	return 0;
fail:
	ERR_clear_error();
	X509_NAME_free(name);
	X509_free(c);
	return r;
}

int zt_x509_keygen(EVP_PKEY **out)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k) {
		ERR_clear_error();
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

bool zt_x509_key_is_p256(EVP_PKEY *k)
{
	char group[32];

	if (!k || !EVP_PKEY_is_a(k, "EC"))
		return false;
	if (!EVP_PKEY_get_group_name(k, group, sizeof(group), NULL))
		return false;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

static int bio_take(BIO *b, char **out, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *p;

	if (n <= 0)
		return -ENOMEM;
	p = malloc((size_t)n + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, data, (size_t)n);
	p[n] = '\0';
	*out = p;
	*len = (size_t)n;
	return 0;
}

int zt_x509_cert_pem(X509 *c, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int r = -ENOMEM;

	if (b && PEM_write_bio_X509(b, c))
		r = bio_take(b, out, len);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int zt_x509_key_pem(EVP_PKEY *k, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int r = -ENOMEM;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		r = bio_take(b, out, len);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

/* The whole file, NUL-terminated, at most PEM_FILE_MAX bytes. */
static int read_small(const char *path, char **out, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char *buf = NULL;
	size_t got = 0;
	int r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		r = -errno;
		goto out;
	}
	r = -EINVAL;
	if (!S_ISREG(st->st_mode))
		goto out;
	r = -EFBIG;
	if (st->st_size > (off_t)PEM_FILE_MAX)
		goto out;
	r = -ENOMEM;
	buf = malloc(PEM_FILE_MAX + 1);
	if (!buf)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + got, PEM_FILE_MAX + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > PEM_FILE_MAX) {
			r = -EFBIG;
			goto out;
		}
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

int zt_x509_load_certs_mem(const void *buf, size_t len, STACK_OF(X509) * *out)
{
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *c;
	int r = -ENOMEM;

	if (!b || !sk || len > PEM_FILE_MAX)
		goto fail;
	while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (!sk_X509_push(sk, c)) {
			X509_free(c);
			goto fail;
		}
	}
	/* The loop ends on "no start line" at EOF; anything else is a broken block. */
	r = -EINVAL;
	if (sk_X509_num(sk) == 0 || ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
		goto fail;
	ERR_clear_error();
	BIO_free(b);
	*out = sk;
	return 0;
fail:
	ERR_clear_error();
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

int zt_x509_load_certs(const char *path, STACK_OF(X509) * *out)
{
	struct stat st;
	char *buf;
	size_t len;
	int r = read_small(path, &buf, &len, &st);

	if (r < 0)
		return r;
	r = zt_x509_load_certs_mem(buf, len, out);
	free(buf);
	return r;
}

int zt_x509_load_cert(const char *path, X509 **out)
{
	STACK_OF(X509) * sk;
	int r = zt_x509_load_certs(path, &sk);

	if (r < 0)
		return r;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

int zt_x509_load_key(const char *path, EVP_PKEY **out)
{
	struct stat st;
	EVP_PKEY *k = NULL;
	char *buf;
	size_t len;
	BIO *b;
	int r = read_small(path, &buf, &len, &st);

	if (r < 0)
		return r;
	/* A key others can read is a key that may have left: refuse it, as ssh does. */
	if (st.st_mode & 077) {
		r = -EPERM;
		goto out;
	}
	r = -ENOMEM;
	b = BIO_new_mem_buf(buf, (int)len);
	if (!b)
		goto out;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	r = k ? 0 : -EINVAL;
	if (k)
		*out = k;
out:
	ERR_clear_error();
	OPENSSL_cleanse(buf, len);
	free(buf);
	return r;
}

int zt_file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *p = buf;
	size_t off = 0;
	int fd = -1, dfd = -1, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* mkostemp makes 0600; widen only on purpose, never narrower than asked. */
	if (fchmod(fd, mode) < 0)
		goto errno_fail;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto errno_fail;
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto errno_fail;
	if (close(fd) < 0) {
		fd = -1;
		goto errno_fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto errno_fail;
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
errno_fail:
	r = -errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int zt_x509_times(const X509 *c, int64_t *not_before, int64_t *not_after)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(X509_get0_notBefore(c), &tm))
		return -EINVAL;
	*not_before = (int64_t)timegm(&tm);
	if (!ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm))
		return -EINVAL;
	*not_after = (int64_t)timegm(&tm);
	return 0;
}

void zt_x509_serial_hex(const X509 *c, char *buf, size_t n)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, n, "%s", hex ? hex : "-");
	for (char *p = buf; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	OPENSSL_free(hex);
	BN_free(bn);
}

int zt_x509_uri_sans(X509 *c, char *first, size_t n)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	int count = 0;

	if (first && n)
		first[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *u;

		if (g->type != GEN_URI)
			continue;
		u = g->d.uniformResourceIdentifier;
		if (count++ == 0 && first && n) {
			/* An embedded NUL would make the ID look shorter than it is. */
			if ((size_t)u->length >= n || memchr(u->data, '\0', (size_t)u->length))
				first[0] = '\0';
			else {
				memcpy(first, u->data, (size_t)u->length);
				first[u->length] = '\0';
			}
		}
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return count;
}
