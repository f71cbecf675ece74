// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the CA files (ztctl ca init / issue-node), the X.509-SVID
 * profile we mint, the verifier against each X.509-SVID rule, a bundle
 * rollover (two roots side by side), and the store's renewal at half life.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mtls_fixture.h"

#define TD "cluster.local"
static const char web[] = "spiffe://" TD "/ns/prod/sa/web";

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static mode_t mode_of(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (stat(p, &st) < 0)
		return (mode_t)-1;
	return st.st_mode & 0777;
}

static void test_ca_files(void **state)
{
	struct fx f;
	struct zt_ca_result res;
	char err[512], td[300];
	X509 *root, *node;

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	assert_int_equal(mode_of(f.ca, "root.key"), 0600);
	assert_int_equal(mode_of(f.ca, "root.pem"), 0644);
	assert_int_equal(mode_of(f.ca, "bundle.pem"), 0644);
	assert_int_equal(mode_of(f.node, "node.key"), 0600);
	assert_int_equal(mode_of(f.node, "node.pem"), 0644);
	assert_int_equal(mode_of(f.node, "bundle.pem"), 0644);
	/* no temporary file left behind by the atomic writes */
	assert_int_equal(system("ls /tmp/zt-mtls-test.*/*/*.tmp.* >/dev/null 2>&1"), 512);

	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/root.pem", f.ca);
		assert_int_equal(zt_x509_load_cert(p, &root), 0);
		assert_int_equal(zt_x509_load_cert(f.node_cert, &node), 0);
	}
	/* root: CA, path length 1, may sign, confined to its trust domain */
	assert_int_equal(X509_check_ca(root), 1);
	assert_int_equal(X509_get_pathlen(root), 1);
	assert_true(X509_get_key_usage(root) & KU_KEY_CERT_SIGN);
	assert_true(zt_x509_key_is_p256(X509_get0_pubkey(root)));
	assert_int_equal(zt_ca_trust_domain_of(root, td, sizeof(td)), 0);
	assert_string_equal(td, TD);
	/* node: CA with path length 0, issued by the root */
	assert_int_equal(X509_check_ca(node), 1);
	assert_int_equal(X509_get_pathlen(node), 0);
	assert_int_equal(X509_check_issued(root, node), X509_V_OK);
	assert_true(zt_x509_key_is_p256(X509_get0_pubkey(node)));
	X509_free(root);
	X509_free(node);

	/* a root is never replaced */
	assert_int_equal(zt_ca_init(TD, f.ca, 30, &res, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "root.key"));
	/* bad input says what is wrong */
	assert_int_equal(zt_ca_init("Bad TD", f.dir, 30, &res, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "trust domain"));
	assert_int_equal(zt_ca_init(TD, f.dir, 0, &res, err, sizeof(err)), -ERANGE);
	assert_int_equal(zt_ca_issue_node(f.ca, "bad/name", f.node, 1, &res, err, sizeof(err)),
			 -EINVAL);
	/* a node certificate may not outlive the root (30 days) */
	assert_int_equal(zt_ca_issue_node(f.ca, "node-2", f.node, 31, &res, err, sizeof(err)),
			 -ERANGE);
	assert_non_null(strstr(err, "outlive"));
	/* a root key others may read is refused */
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/root.key", f.ca);
		assert_int_equal(chmod(p, 0644), 0);
		assert_int_equal(
			zt_ca_issue_node(f.ca, "node-2", f.node, 1, &res, err, sizeof(err)),
			-EPERM);
		assert_non_null(strstr(err, "chmod 600"));
		assert_int_equal(chmod(p, 0600), 0);
	}
	/* reissuing a node works and says what it made */
	assert_int_equal(zt_ca_issue_node(f.ca, "node-1", f.node, 2, &res, err, sizeof(err)), 0);
	assert_string_equal(res.trust_domain, TD);
	assert_true(res.not_after > now_s() + 86400 && res.not_after <= now_s() + 2 * 86400);
	fx_free(&f);
}

/* The node's key never leaves the node: a request goes to the CA, a certificate comes back. */
static void test_node_csr(void **state)
{
	struct fx f;
	struct zt_svid_issuer *iss = NULL;
	struct zt_ca_result res;
	char req_dir[300], back[300], csr[320], cert[320], key[320], err[512];
	X509_REQ *bad;
	EVP_PKEY *k1, *k2;
	FILE *fp;

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	snprintf(req_dir, sizeof(req_dir), "%s/on-node", f.dir);
	snprintf(back, sizeof(back), "%s/back", f.dir);
	assert_int_equal(zt_ca_node_request("node-7", req_dir, err, sizeof(err)), 0);
	assert_int_equal(mode_of(req_dir, "node.key"), 0600);
	snprintf(csr, sizeof(csr), "%s/node.csr", req_dir);
	assert_int_equal(zt_ca_issue_node_csr(f.ca, "node-7", csr, back, 5, &res, err, sizeof(err)),
			 0);
	assert_int_equal(mode_of(back, "node.key"), (mode_t)-1); /* no key made at the CA */
	assert_int_equal(mode_of(back, "node.pem"), 0644);
	snprintf(cert, sizeof(cert), "%s/node.pem", back);
	snprintf(key, sizeof(key), "%s/node.key", req_dir);
	assert_int_equal(zt_svid_issuer_load(cert, key, TD, f.trust, &iss, err, sizeof(err)), 0);
	zt_svid_issuer_free(iss);
	/* a request whose signature does not match its key is refused */
	assert_int_equal(zt_x509_keygen(&k1), 0);
	assert_int_equal(zt_x509_keygen(&k2), 0);
	bad = X509_REQ_new();
	X509_REQ_set_pubkey(bad, k1);
	X509_REQ_sign(bad, k1, EVP_sha256());
	X509_REQ_set_pubkey(bad, k2);
	snprintf(csr, sizeof(csr), "%s/bad.csr", f.dir);
	fp = fopen(csr, "w");
	PEM_write_X509_REQ(fp, bad);
	fclose(fp);
	assert_int_equal(zt_ca_issue_node_csr(f.ca, "node-7", csr, back, 5, &res, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "does not verify"));
	X509_REQ_free(bad);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	fx_free(&f);
}

static void test_issuer_load(void **state)
{
	struct fx a, b;
	struct zt_svid_issuer *iss = NULL;
	char err[512];

	assert_int_equal(fx_make(&a, TD, "node-a"), 0);
	assert_int_equal(fx_make(&b, TD, "node-b"), 0);
	/* a node certificate of another root does not verify against this bundle */
	assert_int_equal(
		zt_svid_issuer_load(b.node_cert, b.node_key, TD, a.trust, &iss, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "another root"));
	/* a key of another node */
	assert_int_equal(
		zt_svid_issuer_load(a.node_cert, b.node_key, TD, NULL, &iss, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "does not belong"));
	/* a readable key */
	assert_int_equal(chmod(a.node_key, 0640), 0);
	assert_int_equal(
		zt_svid_issuer_load(a.node_cert, a.node_key, TD, NULL, &iss, err, sizeof(err)),
		-EPERM);
	assert_int_equal(chmod(a.node_key, 0600), 0);
	assert_null(iss);
	/* the bundle holds roots only */
	{
		struct zt_trust *t = NULL;

		assert_int_equal(zt_trust_load(a.node_cert, TD, &t, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "not a self-signed CA"));
		assert_int_equal(zt_trust_load("/nonexistent/bundle.pem", TD, &t, err, sizeof(err)),
				 -ENOENT);
	}
	fx_free(&a);
	fx_free(&b);
}

static void test_mint_profile(void **state)
{
	struct fx f;
	struct zt_svid *s;
	char id[ZT_SPIFFE_ID_MAX + 1], uri[300];
	int64_t now = now_s(), nb, na;
	uint32_t fl;

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	assert_int_equal(zt_svid_mint(f.iss, web, now, 3600, &s), 0);
	/* exactly one URI SAN: the SPIFFE ID */
	assert_int_equal(zt_x509_uri_sans(s->cert, uri, sizeof(uri)), 1);
	assert_string_equal(uri, web);
	fl = X509_get_extension_flags(s->cert);
	/* CA:FALSE, present */
	assert_true(fl & EXFLAG_BCONS);
	assert_false(fl & EXFLAG_CA);
	/* digitalSignature, nothing that signs */
	assert_true(fl & EXFLAG_KUSAGE);
	assert_int_equal(X509_get_key_usage(s->cert), KU_DIGITAL_SIGNATURE);
	/* serverAuth and clientAuth */
	assert_int_equal(X509_get_extended_key_usage(s->cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	/* notBefore 5 minutes back, notAfter after the TTL, renewal at half life */
	assert_int_equal(zt_x509_times(s->cert, &nb, &na), 0);
	assert_int_equal(nb, now - 300);
	assert_int_equal(na, now + 3600);
	assert_int_equal(s->renew_at, now + 1800);
	assert_true(zt_x509_key_is_p256(s->key));
	assert_int_equal(X509_check_private_key(s->cert, s->key), 1);
	/* chain: the node intermediate */
	assert_int_equal(sk_X509_num(s->chain), 1);
	assert_int_equal(zt_svid_verify(f.trust, s->cert, s->chain, now, id, sizeof(id)),
			 ZT_MTLS_OK);
	assert_string_equal(id, web);
	/* the intermediate alone is not enough without the chain */
	assert_int_equal(zt_svid_verify(f.trust, s->cert, NULL, now, id, sizeof(id)),
			 ZT_MTLS_UNKNOWN_CA);
	zt_svid_put(s);
	/* not an ID of this trust domain, not a workload ID: refused before any key is made */
	assert_int_equal(zt_svid_mint(f.iss, "spiffe://other.td/ns/a/sa/b", now, 60, &s), -EINVAL);
	assert_int_equal(zt_svid_mint(f.iss, "spiffe://" TD "/web", now, 60, &s), -EINVAL);
	/* a TTL past the intermediate's end is cut to it (10 days) */
	assert_int_equal(zt_svid_mint(f.iss, web, now, 30 * 86400, &s), 0);
	assert_int_equal(s->not_after, f.iss->not_after);
	zt_svid_put(s);
	fx_free(&f);
}

/* A leaf under the node intermediate of f that breaks one rule. */
struct bad_leaf {
	const char *what;
	const char *uris[3];
	bool no_bc, is_ca;
	unsigned int ku, eku;
	int64_t nb_off, na_off;
	enum zt_mtls_reason want;
};

static X509 *build_leaf(struct fx *f, const struct bad_leaf *b, EVP_PKEY *key, int64_t now)
{
	struct zt_x509_spec s = { 0 };
	X509 *c = NULL;

	s.subject_o = "test";
	s.basic_constraints = !b->no_bc;
	s.is_ca = b->is_ca;
	s.pathlen = -1;
	s.key_usage = b->ku;
	s.ext_usage = b->eku;
	for (int i = 0; i < 3 && b->uris[i]; i++)
		s.uris[i] = b->uris[i];
	s.not_before = now + b->nb_off;
	s.not_after = now + b->na_off;
	s.key = key;
	s.issuer = f->iss->cert;
	s.issuer_key = f->iss->key;
	assert_int_equal(zt_x509_build(&s, &c), 0);
	return c;
}

static void test_verifier_rules(void **state)
{
	const unsigned int KU = ZT_KU_DIGITAL_SIGNATURE, EKU = ZT_EKU_SERVER | ZT_EKU_CLIENT;
	const struct bad_leaf cases[] = {
		{ "the good profile", { web }, false, false, KU, EKU, -300, 3600, ZT_MTLS_OK },
		{ "two URI SANs",
		  { web, "spiffe://" TD "/ns/prod/sa/admin" },
		  false,
		  false,
		  KU,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_SAN },
		{ "no URI SAN", { NULL }, false, false, KU, EKU, -300, 3600, ZT_MTLS_BAD_SAN },
		{ "a URI that is no SPIFFE ID",
		  { "https://" TD "/ns/prod/sa/web" },
		  false,
		  false,
		  KU,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_SAN },
		{ "a SPIFFE ID that is no workload",
		  { "spiffe://" TD "/web" },
		  false,
		  false,
		  KU,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_SAN },
		{ "another trust domain (the root's name constraint)",
		  { "spiffe://evil.td/ns/prod/sa/web" },
		  false,
		  false,
		  KU,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_TRUST_DOMAIN },
		{ "CA:TRUE leaf", { web }, false, true, KU, EKU, -300, 3600, ZT_MTLS_BAD_PROFILE },
		{ "no basicConstraints",
		  { web },
		  true,
		  false,
		  KU,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "no keyUsage", { web }, false, false, 0, EKU, -300, 3600, ZT_MTLS_BAD_PROFILE },
		{ "keyUsage without digitalSignature",
		  { web },
		  false,
		  false,
		  ZT_KU_KEY_ENCIPHERMENT,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "keyCertSign on a leaf",
		  { web },
		  false,
		  false,
		  KU | ZT_KU_KEY_CERT_SIGN,
		  EKU,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "no extendedKeyUsage",
		  { web },
		  false,
		  false,
		  KU,
		  0,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "serverAuth only",
		  { web },
		  false,
		  false,
		  KU,
		  ZT_EKU_SERVER,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "clientAuth only",
		  { web },
		  false,
		  false,
		  KU,
		  ZT_EKU_CLIENT,
		  -300,
		  3600,
		  ZT_MTLS_BAD_PROFILE },
		{ "expired", { web }, false, false, KU, EKU, -7200, -60, ZT_MTLS_EXPIRED },
		{ "not yet valid",
		  { web },
		  false,
		  false,
		  KU,
		  EKU,
		  600,
		  7200,
		  ZT_MTLS_NOT_YET_VALID },
	};
	struct fx f;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
	int64_t now = now_s();

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	assert_int_equal(zt_x509_keygen(&key), 0);
	chain = sk_X509_new_null();
	sk_X509_push(chain, f.iss->cert);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *leaf = build_leaf(&f, &cases[i], key, now);
		char id[ZT_SPIFFE_ID_MAX + 1] = "junk";
		enum zt_mtls_reason got = zt_svid_verify(f.trust, leaf, chain, now, id, sizeof(id));

		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].what, zt_mtls_reason_name(got),
				 zt_mtls_reason_name(cases[i].want));
		/* a refusal never hands out an identity */
		if (got != ZT_MTLS_OK)
			assert_string_equal(id, "");
		X509_free(leaf);
	}
	sk_X509_free(chain);
	EVP_PKEY_free(key);
	fx_free(&f);
}

static void test_verifier_chains(void **state)
{
	struct fx a, other;
	struct zt_svid *s;
	EVP_PKEY *key;
	X509 *self, *sub, *leaf;
	STACK_OF(X509) * chain;
	int64_t now = now_s();
	char id[ZT_SPIFFE_ID_MAX + 1];

	assert_int_equal(fx_make(&a, TD, "node-1"), 0);
	assert_int_equal(fx_make(&other, TD, "node-x"), 0);
	/* a well-formed SVID from another CA (same trust domain name) */
	assert_int_equal(zt_svid_mint(other.iss, web, now, 3600, &s), 0);
	assert_int_equal(zt_svid_verify(a.trust, s->cert, s->chain, now, id, sizeof(id)),
			 ZT_MTLS_UNKNOWN_CA);
	zt_svid_put(s);
	/* self-signed with the right profile */
	assert_int_equal(zt_x509_keygen(&key), 0);
	{
		struct zt_x509_spec sp = { .subject_o = "mitm",
					   .basic_constraints = true,
					   .key_usage = ZT_KU_DIGITAL_SIGNATURE,
					   .ext_usage = ZT_EKU_SERVER | ZT_EKU_CLIENT,
					   .uris = { web },
					   .not_before = now - 60,
					   .not_after = now + 3600,
					   .key = key,
					   .issuer_key = key };

		assert_int_equal(zt_x509_build(&sp, &self), 0);
	}
	assert_int_equal(zt_svid_verify(a.trust, self, NULL, now, id, sizeof(id)),
			 ZT_MTLS_UNKNOWN_CA);
	X509_free(self);
	/* the node intermediate (path length 0) cannot make a CA that signs SVIDs */
	{
		struct zt_x509_spec sp = { .subject_o = "sub",
					   .subject_cn = "sub",
					   .basic_constraints = true,
					   .is_ca = true,
					   .pathlen = -1,
					   .key_usage = ZT_KU_KEY_CERT_SIGN | ZT_KU_CRL_SIGN,
					   .not_before = now - 60,
					   .not_after = now + 3600,
					   .key = key,
					   .issuer = a.iss->cert,
					   .issuer_key = a.iss->key };
		struct zt_x509_spec lp = { .subject_o = "leaf",
					   .basic_constraints = true,
					   .key_usage = ZT_KU_DIGITAL_SIGNATURE,
					   .ext_usage = ZT_EKU_SERVER | ZT_EKU_CLIENT,
					   .uris = { web },
					   .not_before = now - 60,
					   .not_after = now + 3600,
					   .key = key,
					   .issuer_key = key };

		assert_int_equal(zt_x509_build(&sp, &sub), 0);
		lp.issuer = sub;
		assert_int_equal(zt_x509_build(&lp, &leaf), 0);
	}
	chain = sk_X509_new_null();
	sk_X509_push(chain, sub);
	sk_X509_push(chain, a.iss->cert);
	assert_int_equal(zt_svid_verify(a.trust, leaf, chain, now, id, sizeof(id)),
			 ZT_MTLS_BAD_PROFILE);
	sk_X509_free(chain);
	X509_free(leaf);
	X509_free(sub);
	EVP_PKEY_free(key);
	fx_free(&a);
	fx_free(&other);
}

/* Rollover: the old and the new root trusted side by side; a leaf under either verifies. */
static void test_rollover(void **state)
{
	struct fx old, new, third;
	struct zt_svid *s_old, *s_new, *s_third;
	STACK_OF(X509) *roots = NULL, *more = NULL;
	struct zt_trust *both, *only_old;
	char p[PATH_MAX], id[ZT_SPIFFE_ID_MAX + 1];
	int64_t now = now_s();

	assert_int_equal(fx_make(&old, TD, "node-1"), 0);
	assert_int_equal(fx_make(&new, TD, "node-1"), 0);
	assert_int_equal(fx_make(&third, TD, "node-1"), 0);
	snprintf(p, sizeof(p), "%s/root.pem", old.ca);
	assert_int_equal(zt_x509_load_certs(p, &roots), 0);
	snprintf(p, sizeof(p), "%s/root.pem", new.ca);
	assert_int_equal(zt_x509_load_certs(p, &more), 0);
	sk_X509_push(roots, sk_X509_shift(more));
	sk_X509_free(more);
	assert_int_equal(zt_trust_new(TD, roots, &both), 0);
	assert_int_equal(both->n_roots, 2);
	assert_int_equal(zt_trust_new(TD, roots, &only_old), 0);
	sk_X509_pop_free(roots, X509_free);
	zt_trust_free(only_old);
	snprintf(p, sizeof(p), "%s/root.pem", old.ca);
	assert_int_equal(zt_trust_load(p, TD, &only_old, NULL, 0), 0);

	assert_int_equal(zt_svid_mint(old.iss, web, now, 3600, &s_old), 0);
	assert_int_equal(zt_svid_mint(new.iss, web, now, 3600, &s_new), 0);
	assert_int_equal(zt_svid_mint(third.iss, web, now, 3600, &s_third), 0);
	assert_int_equal(zt_svid_verify(both, s_old->cert, s_old->chain, now, id, sizeof(id)),
			 ZT_MTLS_OK);
	assert_int_equal(zt_svid_verify(both, s_new->cert, s_new->chain, now, id, sizeof(id)),
			 ZT_MTLS_OK);
	assert_int_equal(zt_svid_verify(both, s_third->cert, s_third->chain, now, id, sizeof(id)),
			 ZT_MTLS_UNKNOWN_CA);
	/* before the rollover (and after the old root is retired) one side is unknown */
	assert_int_equal(zt_svid_verify(only_old, s_old->cert, s_old->chain, now, id, sizeof(id)),
			 ZT_MTLS_OK);
	assert_int_equal(zt_svid_verify(only_old, s_new->cert, s_new->chain, now, id, sizeof(id)),
			 ZT_MTLS_UNKNOWN_CA);
	/* the same, read from one PEM bundle file of both roots */
	{
		struct zt_trust *file;
		char cmd[PATH_MAX * 3];

		snprintf(cmd, sizeof(cmd), "cat %s/root.pem %s/root.pem > %s/both.pem", old.ca,
			 new.ca, old.dir);
		assert_int_equal(system(cmd), 0);
		snprintf(p, sizeof(p), "%s/both.pem", old.dir);
		assert_int_equal(zt_trust_load(p, TD, &file, NULL, 0), 0);
		assert_int_equal(file->n_roots, 2);
		assert_int_equal(
			zt_svid_verify(file, s_new->cert, s_new->chain, now, id, sizeof(id)),
			ZT_MTLS_OK);
		zt_trust_free(file);
	}
	zt_svid_put(s_old);
	zt_svid_put(s_new);
	zt_svid_put(s_third);
	zt_trust_free(both);
	zt_trust_free(only_old);
	fx_free(&old);
	fx_free(&new);
	fx_free(&third);
}

struct issued {
	int first, renewals;
	char last_serial[80];
	struct zt_svid_store *st; /* looked at from the callback: the lock is free */
	uint64_t minted_seen;
};

static void on_issue(void *ctx, const struct zt_svid *svid, bool renewal)
{
	struct issued *i = ctx;

	if (renewal)
		i->renewals++;
	else
		i->first++;
	snprintf(i->last_serial, sizeof(i->last_serial), "%s", svid->serial);
	/* Announced once the store's lock is released: calling back does not deadlock. */
	if (i->st)
		i->minted_seen = zt_svid_store_minted(i->st);
}

static void test_store(void **state)
{
	struct fx f;
	struct issued iss = { 0 };
	struct zt_svid_store_config cfg = { .ttl_s = 60, .on_issue = on_issue, .ctx = &iss };
	struct zt_svid_store *st;
	struct zt_svid *a, *b;
	struct zt_svid_info info[4];
	int64_t now = now_s();

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	assert_int_equal(zt_svid_store_new(&cfg, f.iss, &st), 0);
	f.iss = NULL; /* the store has it */
	iss.st = st;
	assert_int_equal(zt_svid_store_add(st, "prod", "web", now), 0);
	assert_int_equal(zt_svid_store_add(st, "prod", "web", now), 0); /* a second pod */
	assert_int_equal(iss.first, 1);
	assert_int_equal(iss.minted_seen, 1);
	assert_int_equal(zt_svid_store_add(st, "prod", "Bad", now), -EINVAL);
	assert_int_equal(zt_svid_store_get(st, "spiffe://" TD "/ns/prod/sa/db", now, &a), -ENOENT);
	assert_int_equal(zt_svid_store_get(st, web, now, &a), 0);
	assert_int_equal(a->renew_at, now + 30);
	assert_string_equal(a->serial, iss.last_serial);
	/* before half life: the same SVID */
	assert_int_equal(zt_svid_store_get(st, web, now + 29, &b), 0);
	assert_ptr_equal(a, b);
	zt_svid_put(b);
	/* at half life too: renewing is the tick's, not a reader's (the tunnel's threads) */
	assert_int_equal(zt_svid_store_get(st, web, now + 30, &b), 0);
	assert_ptr_equal(a, b);
	zt_svid_put(b);
	assert_int_equal(iss.renewals, 0);
	/* tick renews what is due (a new key, a new serial) and says when the next is */
	assert_int_equal(zt_svid_store_tick(st, now + 30), now + 60);
	assert_int_equal(iss.renewals, 1);
	assert_int_equal(iss.minted_seen, 2);
	assert_int_equal(zt_svid_store_get(st, web, now + 30, &b), 0);
	assert_ptr_not_equal(a, b);
	assert_string_not_equal(a->serial, b->serial);
	assert_string_equal(b->serial, iss.last_serial);
	assert_int_equal(b->not_before, now + 30 - 300);
	/* the old stays valid for its holder */
	assert_int_equal(zt_svid_verify(f.trust, a->cert, a->chain, now + 31, NULL, 0), ZT_MTLS_OK);
	zt_svid_put(a);
	zt_svid_put(b);
	assert_int_equal(zt_svid_store_tick(st, now + 31), now + 60);
	assert_int_equal(iss.renewals, 1);
	/* A tick that fell behind (b renews at now + 60, expires at now + 90): a reader
	 * renews it itself once three quarters of its life are gone, not before. */
	assert_int_equal(zt_svid_store_get(st, web, now + 74, &a), 0);
	assert_int_equal(iss.renewals, 1);
	zt_svid_put(a);
	assert_int_equal(zt_svid_store_get(st, web, now + 75, &a), 0);
	assert_int_equal(iss.renewals, 2);
	assert_int_equal(a->renew_at, now + 75 + 30);
	zt_svid_put(a);
	assert_int_equal(zt_svid_store_tick(st, now + 105), now + 135);
	assert_int_equal(iss.renewals, 3);
	assert_int_equal(zt_svid_store_minted(st), 4);
	assert_int_equal(zt_svid_store_failures(st, NULL), 0);
	assert_int_equal(zt_svid_store_list(st, info, 4), 1);
	assert_string_equal(info[0].id, web);
	assert_int_equal(info[0].pods, 2);
	assert_int_equal(info[0].not_after, now + 165);
	/* the last pod gone: no SVID */
	assert_int_equal(zt_svid_store_del(st, "prod", "web"), 0);
	assert_int_equal(zt_svid_store_get(st, web, now, &a), 0);
	zt_svid_put(a);
	assert_int_equal(zt_svid_store_del(st, "prod", "web"), 0);
	assert_int_equal(zt_svid_store_get(st, web, now, &a), -ENOENT);
	assert_int_equal(zt_svid_store_del(st, "prod", "web"), -ENOENT);
	zt_svid_store_free(st);
	fx_free(&f);
}

/*
 * A mint that fails (here the node intermediate has expired) keeps the
 * current SVID while it is valid, is counted with its error, announces
 * nothing, and is retried at the next tick; once the SVID expired too, a
 * reader gets -EKEYEXPIRED.
 */
static void test_store_mint_failure(void **state)
{
	struct fx f;
	struct issued iss = { 0 };
	struct zt_svid_store_config cfg = { .ttl_s = 3600, .on_issue = on_issue, .ctx = &iss };
	struct zt_svid_store *st;
	struct zt_svid *a, *b;
	int64_t now = now_s(), end;
	int err = 0;

	assert_int_equal(fx_make(&f, TD, "node-1"), 0);
	end = f.iss->not_after;
	assert_true(end > now + 7200);
	assert_int_equal(zt_svid_store_new(&cfg, f.iss, &st), 0);
	f.iss = NULL;
	/* minted 2 h before the intermediate ends: the SVID ends with it at the latest */
	assert_int_equal(zt_svid_store_add(st, "prod", "web", end - 7200), 0);
	assert_int_equal(zt_svid_store_get(st, web, end - 7200, &a), 0);
	assert_int_equal(a->not_after, end - 3600);
	/* due at end - 5400, minted again then; due at end - 2700 with the intermediate
	 * still valid: the new SVID is cut to it */
	zt_svid_store_tick(st, end - 5400);
	zt_svid_store_tick(st, end - 2700);
	assert_int_equal(iss.renewals, 2);
	assert_int_equal(zt_svid_store_get(st, web, end - 2700, &b), 0);
	assert_int_equal(b->not_after, end);
	zt_svid_put(b);
	/* past the intermediate: every mint fails, counted, and nothing is announced */
	zt_svid_store_tick(st, end);
	zt_svid_store_tick(st, end + 1);
	assert_int_equal(zt_svid_store_failures(st, &err), 2);
	assert_int_equal(err, -EKEYEXPIRED);
	assert_int_equal(iss.renewals, 2);
	assert_int_equal(zt_svid_store_get(st, web, end, &b), -EKEYEXPIRED);
	assert_int_equal(zt_svid_store_failures(st, NULL), 3);
	zt_svid_put(a);
	zt_svid_store_free(st);
	fx_free(&f);
}

/* A reissued node intermediate (e.g. under a new root): every SVID is minted again under it. */
static void test_store_new_issuer(void **state)
{
	struct fx a, b;
	struct zt_svid_store_config cfg = { .ttl_s = 3600 };
	struct zt_svid_store *st;
	struct zt_svid *s;
	int64_t now = now_s();

	assert_int_equal(fx_make(&a, TD, "node-1"), 0);
	assert_int_equal(fx_make(&b, TD, "node-1"), 0);
	assert_int_equal(zt_svid_store_new(&cfg, a.iss, &st), 0);
	a.iss = NULL;
	assert_int_equal(zt_svid_store_add(st, "prod", "web", now), 0);
	assert_int_equal(zt_svid_store_set_issuer(st, b.iss, now), 0);
	b.iss = NULL;
	assert_int_equal(zt_svid_store_get(st, web, now, &s), 0);
	assert_int_equal(zt_svid_verify(b.trust, s->cert, s->chain, now, NULL, 0), ZT_MTLS_OK);
	assert_int_equal(zt_svid_verify(a.trust, s->cert, s->chain, now, NULL, 0),
			 ZT_MTLS_UNKNOWN_CA);
	zt_svid_put(s);
	zt_svid_store_free(st);
	fx_free(&a);
	fx_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_files),	 cmocka_unit_test(test_node_csr),
		cmocka_unit_test(test_issuer_load),	 cmocka_unit_test(test_mint_profile),
		cmocka_unit_test(test_verifier_rules),	 cmocka_unit_test(test_verifier_chains),
		cmocka_unit_test(test_rollover),	 cmocka_unit_test(test_store),
		cmocka_unit_test(test_store_new_issuer), cmocka_unit_test(test_store_mint_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
