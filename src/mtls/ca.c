// SPDX-License-Identifier: GPL-2.0-only
/* The trust domain's root and the node intermediates (ztctl ca init / issue-node). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "agent/util.h"
#include "mtls/ca.h"
#include "mtls/mtls.h"
#include "mtls/x509.h"

#define DAY 86400LL

static int path_in(char *buf, size_t n, const char *dir, const char *name)
{
	int w = snprintf(buf, n, "%s/%s", dir, name);

	return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

static int write_pem_files(const char *dir, const char *cert_name, X509 *cert, const char *key_name,
			   EVP_PKEY *key, char *err, size_t errlen)
{
	char path[PATH_MAX], *pem = NULL;
	size_t len = 0;
	int r;

	/* The key first: a certificate without its key is useless, the other way round harmless. */
	r = zt_x509_key_pem(key, &pem, &len);
	if (r == 0) {
		r = path_in(path, sizeof(path), dir, key_name);
		if (r == 0)
			r = zt_file_write_atomic(path, pem, len, 0600);
		OPENSSL_cleanse(pem, len);
		free(pem);
		pem = NULL;
	}
	if (r < 0) {
		zt_seterr(err, errlen, "%s/%s: cannot write the key: %s", dir, key_name,
			  strerror(-r));
		return r;
	}
	r = zt_x509_cert_pem(cert, &pem, &len);
	if (r == 0) {
		r = path_in(path, sizeof(path), dir, cert_name);
		if (r == 0)
			r = zt_file_write_atomic(path, pem, len, 0644);
	}
	free(pem);
	if (r < 0)
		zt_seterr(err, errlen, "%s/%s: cannot write the certificate: %s", dir, cert_name,
			  strerror(-r));
	return r;
}

static int prepare_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int r;

	if (!dir || !*dir) {
		zt_seterr(err, errlen, "no output directory given (--out DIR)");
		return -EINVAL;
	}
	r = zt_mkdir_p(dir, 0700);
	if (r < 0) {
		zt_seterr(err, errlen, "%s: cannot create the directory: %s", dir, strerror(-r));
		return r;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		zt_seterr(err, errlen, "%s: not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

static void fill_result(struct zt_ca_result *res, X509 *c, const char *td)
{
	int64_t nb;

	if (!res)
		return;
	zt_x509_serial_hex(c, res->serial, sizeof(res->serial));
	if (zt_x509_times(c, &nb, &res->not_after) < 0)
		res->not_after = 0;
	snprintf(res->trust_domain, sizeof(res->trust_domain), "%s", td);
}

int zt_ca_init(const char *trust_domain, const char *out_dir, unsigned int days,
	       struct zt_ca_result *res, char *err, size_t errlen)
{
	struct zt_x509_spec s = { 0 };
	EVP_PKEY *key = NULL;
	X509 *root = NULL;
	char path[PATH_MAX], cn[64], *pem = NULL;
	size_t len;
	int64_t now = (int64_t)time(NULL);
	int r;

	if (!zt_spiffe_trust_domain_valid(trust_domain)) {
		zt_seterr(
			err, errlen,
			"trust domain '%s' is not valid: 1 to 255 of lowercase letters, digits, '.', '-', '_' (like cluster.local)",
			trust_domain ? trust_domain : "");
		return -EINVAL;
	}
	if (days == 0 || days > ZT_CA_DAYS_MAX) {
		zt_seterr(err, errlen, "--days %u: expected 1 to %u", days, ZT_CA_DAYS_MAX);
		return -ERANGE;
	}
	r = prepare_dir(out_dir, err, errlen);
	if (r < 0)
		return r;
	/* Never replace a root: every node's trust and every intermediate hang on it. */
	if (path_in(path, sizeof(path), out_dir, "root.key") < 0 || access(path, F_OK) == 0) {
		zt_seterr(
			err, errlen,
			"%s already exists: a root is there; choose another --out (for a rollover, make the new root elsewhere and trust both in bundle.pem)",
			path);
		return -EEXIST;
	}
	r = zt_x509_keygen(&key);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot generate a P-256 key: %s", strerror(-r));
		goto out;
	}
	/* Two roots trusted side by side need distinct subjects: a date names this one. */
	{
		struct tm tm;
		time_t t = (time_t)now;

		gmtime_r(&t, &tm);
		snprintf(cn, sizeof(cn), "ztagent root %04d%02d%02d%02d%02d%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	}
	s.subject_o = "ztagent";
	s.subject_cn = cn;
	s.basic_constraints = true;
	s.is_ca = true;
	s.pathlen = 1;
	s.key_usage = ZT_KU_KEY_CERT_SIGN | ZT_KU_CRL_SIGN;
	s.permitted_uri = trust_domain;
	s.not_before = now - 300;
	s.not_after = now + (int64_t)days * DAY;
	s.key = key;
	s.issuer_key = key;
	r = zt_x509_build(&s, &root);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot build the root certificate: %s", strerror(-r));
		goto out;
	}
	r = write_pem_files(out_dir, "root.pem", root, "root.key", key, err, errlen);
	if (r < 0)
		goto out;
	r = zt_x509_cert_pem(root, &pem, &len);
	if (r == 0)
		r = path_in(path, sizeof(path), out_dir, "bundle.pem");
	if (r == 0)
		r = zt_file_write_atomic(path, pem, len, 0644);
	if (r < 0) {
		zt_seterr(err, errlen, "%s/bundle.pem: cannot write: %s", out_dir, strerror(-r));
		goto out;
	}
	fill_result(res, root, trust_domain);
out:
	free(pem);
	X509_free(root);
	EVP_PKEY_free(key);
	return r;
}

int zt_ca_trust_domain_of(X509 *root, char *td, size_t n)
{
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(root, NID_name_constraints, NULL, NULL);
	int r = -ENOENT;

	for (int i = 0;
	     nc && nc->permittedSubtrees && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees);
	     i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		const ASN1_IA5STRING *u;

		if (st->base->type != GEN_URI)
			continue;
		u = st->base->d.uniformResourceIdentifier;
		if ((size_t)u->length >= n || memchr(u->data, '\0', (size_t)u->length)) {
			r = -EINVAL;
			break;
		}
		memcpy(td, u->data, (size_t)u->length);
		td[u->length] = '\0';
		r = zt_spiffe_trust_domain_valid(td) ? 0 : -EINVAL;
		break;
	}
	NAME_CONSTRAINTS_free(nc);
	ERR_clear_error();
	return r;
}

static bool node_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= ZT_CA_NODE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static int write_cert(const char *dir, const char *name, X509 *c, char *err, size_t errlen)
{
	char path[PATH_MAX], *pem = NULL;
	size_t len;
	int r = zt_x509_cert_pem(c, &pem, &len);

	if (r == 0)
		r = path_in(path, sizeof(path), dir, name);
	if (r == 0)
		r = zt_file_write_atomic(path, pem, len, 0644);
	free(pem);
	if (r < 0)
		zt_seterr(err, errlen, "%s/%s: cannot write: %s", dir, name, strerror(-r));
	return r;
}

/* The public key of a certificate request, after checking its self-signature. */
static int csr_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
	struct stat st;
	X509_REQ *req = NULL;
	EVP_PKEY *k = NULL;
	FILE *f = fopen(path, "re");
	int r = -EINVAL;

	if (!f) {
		r = -errno;
		zt_seterr(err, errlen, "%s: cannot open the request: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fileno(f), &st) == 0 && st.st_size <= 65536)
		req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
	fclose(f);
	if (!req) {
		zt_seterr(
			err, errlen,
			"%s: no PEM certificate request in it (make one with 'ztctl ca node-key')",
			path);
		goto out;
	}
	k = X509_REQ_get_pubkey(req);
	if (!k || X509_REQ_verify(req, k) != 1) {
		zt_seterr(err, errlen, "%s: the request's signature does not verify", path);
		goto out;
	}
	if (!zt_x509_key_is_p256(k)) {
		zt_seterr(err, errlen, "%s: the request's key is not P-256", path);
		goto out;
	}
	*out = k;
	k = NULL;
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_REQ_free(req);
	return r;
}

int zt_ca_node_request(const char *node, const char *out_dir, char *err, size_t errlen)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *key = NULL;
	char path[PATH_MAX], *pem = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int r = -ENOMEM;

	if (!req || !name)
		goto out;
	r = -EINVAL;
	if (!node_name_valid(node)) {
		zt_seterr(err, errlen,
			  "node name '%s' is not valid: 1 to %d letters, digits, '.', '-' or '_'",
			  node ? node : "", ZT_CA_NODE_NAME_MAX - 1);
		goto out;
	}
	if ((r = prepare_dir(out_dir, err, errlen)) < 0)
		goto out;
	if ((r = zt_x509_keygen(&key)) < 0) {
		zt_seterr(err, errlen, "cannot generate a P-256 key: %s", strerror(-r));
		goto out;
	}
	r = -EINVAL;
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"ztagent",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)node, -1,
					-1, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_sign(req, key, EVP_sha256()))
		goto out;
	/* The key stays here; only the request travels to the issuer. */
	r = zt_x509_key_pem(key, &pem, &len);
	if (r == 0)
		r = path_in(path, sizeof(path), out_dir, "node.key");
	if (r == 0)
		r = zt_file_write_atomic(path, pem, len, 0600);
	if (pem)
		OPENSSL_cleanse(pem, len);
	free(pem);
	if (r < 0) {
		zt_seterr(err, errlen, "%s/node.key: cannot write: %s", out_dir, strerror(-r));
		goto out;
	}
	r = -ENOMEM;
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_X509_REQ(b, req)) {
		char *data;
		long n = BIO_get_mem_data(b, &data);

		r = path_in(path, sizeof(path), out_dir, "node.csr");
		if (r == 0)
			r = zt_file_write_atomic(path, data, (size_t)n, 0644);
	}
	if (r < 0)
		zt_seterr(err, errlen, "%s/node.csr: cannot write: %s", out_dir, strerror(-r));
out:
	ERR_clear_error();
	BIO_free(b);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return r;
}

int zt_ca_issue_node(const char *ca_dir, const char *node, const char *out_dir, unsigned int days,
		     struct zt_ca_result *res, char *err, size_t errlen)
{
	return zt_ca_issue_node_csr(ca_dir, node, NULL, out_dir, days, res, err, errlen);
}

int zt_ca_issue_node_csr(const char *ca_dir, const char *node, const char *csr_path,
			 const char *out_dir, unsigned int days, struct zt_ca_result *res,
			 char *err, size_t errlen)
{
	struct zt_x509_spec s = { 0 };
	EVP_PKEY *root_key = NULL, *key = NULL;
	X509 *root = NULL, *inter = NULL;
	STACK_OF(X509) *bundle = NULL;
	char path[PATH_MAX], td[ZT_TRUST_DOMAIN_MAX + 1], *pem = NULL;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL), rnb, rna;
	int r;

	if (!node_name_valid(node)) {
		zt_seterr(
			err, errlen,
			"node name '%s' is not valid: 1 to %d letters, digits, '.', '-' or '_' (the agent's node: key)",
			node ? node : "", ZT_CA_NODE_NAME_MAX - 1);
		return -EINVAL;
	}
	if (days == 0 || days > ZT_CA_DAYS_MAX) {
		zt_seterr(err, errlen, "--days %u: expected 1 to %u", days, ZT_CA_DAYS_MAX);
		return -ERANGE;
	}
	if (!ca_dir || !*ca_dir) {
		zt_seterr(err, errlen, "no CA directory given (--ca DIR, made by 'ztctl ca init')");
		return -EINVAL;
	}
	if ((r = path_in(path, sizeof(path), ca_dir, "root.pem")) < 0 ||
	    (r = zt_x509_load_cert(path, &root)) < 0) {
		zt_seterr(err, errlen, "%s: cannot read the root certificate: %s", path,
			  r == -EINVAL ? "no PEM certificate in it" : strerror(-r));
		goto out;
	}
	if ((r = path_in(path, sizeof(path), ca_dir, "root.key")) < 0 ||
	    (r = zt_x509_load_key(path, &root_key)) < 0) {
		zt_seterr(err, errlen, "%s: cannot use the root key: %s", path,
			  r == -EPERM ?
				  "group or others may read it (chmod 600 it, and ask who did)" :
			  r == -EINVAL ? "no PEM private key in it" :
					 strerror(-r));
		goto out;
	}
	r = -EINVAL;
	if (X509_check_private_key(root, root_key) != 1) {
		ERR_clear_error();
		zt_seterr(err, errlen, "%s/root.key does not belong to %s/root.pem", ca_dir,
			  ca_dir);
		goto out;
	}
	if (zt_ca_trust_domain_of(root, td, sizeof(td)) < 0) {
		zt_seterr(
			err, errlen,
			"%s/root.pem has no trust domain name constraint: not a root made by 'ztctl ca init'",
			ca_dir);
		goto out;
	}
	if ((r = zt_x509_times(root, &rnb, &rna)) < 0)
		goto out;
	r = -ERANGE;
	if (rna <= now) {
		zt_seterr(err, errlen, "%s/root.pem expired; make a new root and roll over to it",
			  ca_dir);
		goto out;
	}
	if (now + (int64_t)days * DAY > rna) {
		zt_seterr(
			err, errlen,
			"--days %u would outlive the root (it expires in %lld days); use --days %lld or less",
			days, (long long)((rna - now) / DAY), (long long)((rna - now) / DAY));
		goto out;
	}
	if ((r = prepare_dir(out_dir, err, errlen)) < 0)
		goto out;
	if (csr_path) {
		if ((r = csr_key(csr_path, &key, err, errlen)) < 0)
			goto out;
	} else if ((r = zt_x509_keygen(&key)) < 0) {
		zt_seterr(err, errlen, "cannot generate a P-256 key: %s", strerror(-r));
		goto out;
	}
	s.subject_o = "ztagent";
	s.subject_cn = node;
	s.basic_constraints = true;
	s.is_ca = true;
	s.pathlen = 0;
	s.key_usage = ZT_KU_KEY_CERT_SIGN | ZT_KU_CRL_SIGN;
	s.not_before = now - 300;
	s.not_after = now + (int64_t)days * DAY;
	s.key = key;
	s.issuer = root;
	s.issuer_key = root_key;
	if ((r = zt_x509_build(&s, &inter)) < 0) {
		zt_seterr(err, errlen, "cannot build the node certificate: %s", strerror(-r));
		goto out;
	}
	if (csr_path)
		r = write_cert(out_dir, "node.pem", inter, err, errlen);
	else
		r = write_pem_files(out_dir, "node.pem", inter, "node.key", key, err, errlen);
	if (r < 0)
		goto out;
	/* The CA's bundle (several roots during a rollover), else its root alone. */
	if (path_in(path, sizeof(path), ca_dir, "bundle.pem") == 0 &&
	    zt_x509_load_certs(path, &bundle) == 0) {
		BIO *b = BIO_new(BIO_s_mem());

		r = -ENOMEM;
		for (int i = 0; b && i < sk_X509_num(bundle); i++)
			if (!PEM_write_bio_X509(b, sk_X509_value(bundle, i)))
				goto bio_done;
		if (b) {
			char *data;
			long n = BIO_get_mem_data(b, &data);

			r = n > 0 && (path_in(path, sizeof(path), out_dir, "bundle.pem") == 0) ?
				    zt_file_write_atomic(path, data, (size_t)n, 0644) :
				    -ENOMEM;
		}
bio_done:
		BIO_free(b);
	} else {
		r = zt_x509_cert_pem(root, &pem, &len);
		if (r == 0)
			r = path_in(path, sizeof(path), out_dir, "bundle.pem");
		if (r == 0)
			r = zt_file_write_atomic(path, pem, len, 0644);
	}
	if (r < 0) {
		zt_seterr(err, errlen, "%s/bundle.pem: cannot write: %s", out_dir, strerror(-r));
		goto out;
	}
	fill_result(res, inter, td);
out:
	ERR_clear_error();
	free(pem);
	sk_X509_pop_free(bundle, X509_free);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(key);
	EVP_PKEY_free(root_key);
	return r;
}
