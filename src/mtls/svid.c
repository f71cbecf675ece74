// SPDX-License-Identifier: GPL-2.0-only
/* X.509-SVIDs: the verifier, the node issuer, minting, and the store that renews them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "agent/util.h"
#include "mtls/svid.h"
#include "mtls/x509.h"

/* ---- trust ---- */

int zt_trust_new(const char *trust_domain, STACK_OF(X509) * roots, struct zt_trust **out)
{
	struct zt_trust *t;

	if (!zt_spiffe_trust_domain_valid(trust_domain) || !roots || sk_X509_num(roots) == 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->store = X509_STORE_new();
	if (!t->store)
		goto nomem;
	for (int i = 0; i < sk_X509_num(roots); i++) {
		if (!X509_STORE_add_cert(t->store, sk_X509_value(roots, i)))
			goto nomem;
		t->n_roots++;
	}
	/* Strict RFC 5280 checks; a root's name constraint confines it to its trust domain. */
	X509_STORE_set_flags(t->store, X509_V_FLAG_X509_STRICT);
	snprintf(t->trust_domain, sizeof(t->trust_domain), "%s", trust_domain);
	*out = t;
	return 0;
nomem:
	ERR_clear_error();
	zt_trust_free(t);
	return -ENOMEM;
}

void zt_trust_free(struct zt_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	free(t);
}

int zt_trust_load(const char *bundle_path, const char *trust_domain, struct zt_trust **out,
		  char *err, size_t errlen)
{
	STACK_OF(X509) *roots = NULL;
	int r = zt_x509_load_certs(bundle_path, &roots);

	if (r < 0) {
		zt_seterr(err, errlen, "%s: cannot read the CA bundle: %s", bundle_path,
			  r == -EINVAL ? "no PEM certificates in it, or a broken one" :
					 strerror(-r));
		return r;
	}
	for (int i = 0; i < sk_X509_num(roots); i++) {
		X509 *c = sk_X509_value(roots, i);

		/* A leaf or an intermediate in the bundle would become a trust anchor. */
		if (!(X509_get_extension_flags(c) & EXFLAG_CA) ||
		    !(X509_get_extension_flags(c) & EXFLAG_SS)) {
			zt_seterr(
				err, errlen,
				"%s: certificate %d is not a self-signed CA; the bundle holds the trust domain's roots only",
				bundle_path, i + 1);
			r = -EINVAL;
			goto out;
		}
	}
	r = zt_trust_new(trust_domain, roots, out);
	if (r < 0)
		zt_seterr(err, errlen, "%s: %s", bundle_path,
			  r == -EINVAL ? "invalid trust domain" : strerror(-r));
out:
	sk_X509_pop_free(roots, X509_free);
	return r;
}

enum zt_mtls_reason zt_mtls_reason_of_x509(int e)
{
	switch (e) {
	case X509_V_OK:
		return ZT_MTLS_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return ZT_MTLS_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return ZT_MTLS_NOT_YET_VALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		return ZT_MTLS_UNKNOWN_CA;
	case X509_V_ERR_PERMITTED_VIOLATION:
	case X509_V_ERR_EXCLUDED_VIOLATION:
		return ZT_MTLS_TRUST_DOMAIN;
	default:
		/* invalid CA, path length, purpose, unsupported extension, strict-mode findings */
		return ZT_MTLS_BAD_PROFILE;
	}
}

enum zt_mtls_reason zt_svid_check_leaf(X509 *leaf, const char *trust_domain, char *id, size_t n)
{
	char uri[ZT_SPIFFE_ID_MAX + 1];
	uint32_t flags;
	int r;

	if (id && n)
		id[0] = '\0';
	if (zt_x509_uri_sans(leaf, uri, sizeof(uri)) != 1 || !uri[0])
		return ZT_MTLS_BAD_SAN;
	r = zt_spiffe_parse_workload(uri, trust_domain, NULL, 0, NULL, 0);
	if (r == -EXDEV)
		return ZT_MTLS_TRUST_DOMAIN;
	if (r < 0)
		return ZT_MTLS_BAD_SAN;
	flags = X509_get_extension_flags(leaf);
	if ((flags & EXFLAG_INVALID) || !(flags & EXFLAG_BCONS) || (flags & EXFLAG_CA))
		return ZT_MTLS_BAD_PROFILE;
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) ||
	    (X509_get_key_usage(leaf) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)))
		return ZT_MTLS_BAD_PROFILE;
	if (!(flags & EXFLAG_XKUSAGE) ||
	    (X509_get_extended_key_usage(leaf) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) !=
		    (XKU_SSL_SERVER | XKU_SSL_CLIENT))
		return ZT_MTLS_BAD_PROFILE;
	if (id && n)
		snprintf(id, n, "%s", uri);
	return ZT_MTLS_OK;
}

enum zt_mtls_reason zt_svid_verify(const struct zt_trust *t, X509 *leaf, STACK_OF(X509) * untrusted,
				   int64_t now, char *id, size_t n)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	enum zt_mtls_reason reason = ZT_MTLS_BAD_PROFILE;

	if (id && n)
		id[0] = '\0';
	if (!ctx || !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted))
		goto out;
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
	/* leaf, node intermediate, root */
	X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), 2);
	if (X509_verify_cert(ctx) != 1) {
		reason = zt_mtls_reason_of_x509(X509_STORE_CTX_get_error(ctx));
		if (reason == ZT_MTLS_OK)
			reason = ZT_MTLS_BAD_PROFILE;
		goto out;
	}
	reason = zt_svid_check_leaf(leaf, t->trust_domain, id, n);
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return reason;
}

/* ---- issuer ---- */

void zt_svid_issuer_free(struct zt_svid_issuer *iss)
{
	if (!iss)
		return;
	X509_free(iss->cert);
	EVP_PKEY_free(iss->key);
	free(iss);
}

int zt_svid_issuer_load(const char *cert_path, const char *key_path, const char *trust_domain,
			const struct zt_trust *trust, struct zt_svid_issuer **out, char *err,
			size_t errlen)
{
	struct zt_svid_issuer *iss = calloc(1, sizeof(*iss));
	int64_t nb;
	int r;

	if (!iss)
		return -ENOMEM;
	if (!zt_spiffe_trust_domain_valid(trust_domain)) {
		zt_seterr(err, errlen, "trust domain '%s' is not valid", trust_domain);
		r = -EINVAL;
		goto fail;
	}
	snprintf(iss->trust_domain, sizeof(iss->trust_domain), "%s", trust_domain);
	r = zt_x509_load_cert(cert_path, &iss->cert);
	if (r < 0) {
		zt_seterr(err, errlen, "%s: cannot read the node certificate: %s", cert_path,
			  r == -EINVAL ? "no PEM certificate in it" : strerror(-r));
		goto fail;
	}
	r = zt_x509_load_key(key_path, &iss->key);
	if (r < 0) {
		zt_seterr(err, errlen, "%s: cannot use the node key: %s", key_path,
			  r == -EPERM  ? "group or others may read it; chmod 600 it" :
			  r == -EINVAL ? "no PEM private key in it" :
					 strerror(-r));
		goto fail;
	}
	r = -EINVAL;
	if (X509_check_private_key(iss->cert, iss->key) != 1) {
		zt_seterr(err, errlen, "%s does not belong to %s", key_path, cert_path);
		goto fail;
	}
	if (!zt_x509_key_is_p256(iss->key)) {
		zt_seterr(err, errlen, "%s: not a P-256 key", key_path);
		goto fail;
	}
	if (X509_check_ca(iss->cert) == 0 ||
	    ((X509_get_extension_flags(iss->cert) & EXFLAG_KUSAGE) &&
	     !(X509_get_key_usage(iss->cert) & KU_KEY_CERT_SIGN))) {
		zt_seterr(
			err, errlen,
			"%s: not a CA certificate that may sign; issue it with 'ztctl ca issue-node'",
			cert_path);
		goto fail;
	}
	if (zt_x509_times(iss->cert, &nb, &iss->not_after) < 0) {
		zt_seterr(err, errlen, "%s: unreadable validity", cert_path);
		goto fail;
	}
	if (trust) {
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		int ok = ctx && X509_STORE_CTX_init(ctx, trust->store, iss->cert, NULL) &&
			 X509_verify_cert(ctx) == 1;
		int e = ctx ? X509_STORE_CTX_get_error(ctx) : X509_V_ERR_OUT_OF_MEM;

		X509_STORE_CTX_free(ctx);
		if (!ok) {
			zt_seterr(
				err, errlen,
				"%s does not verify against the CA bundle (%s): was it issued by another root?",
				cert_path, X509_verify_cert_error_string(e));
			goto fail;
		}
	}
	ERR_clear_error();
	*out = iss;
	return 0;
fail:
	ERR_clear_error();
	zt_svid_issuer_free(iss);
	return r;
}

/* ---- minting ---- */

struct zt_svid *zt_svid_get_ref(struct zt_svid *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void zt_svid_put(struct zt_svid *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	sk_X509_pop_free(s->chain, X509_free);
	free(s);
}

int zt_svid_mint(const struct zt_svid_issuer *iss, const char *spiffe_id, int64_t now,
		 uint64_t ttl_s, struct zt_svid **out)
{
	struct zt_x509_spec spec = { 0 };
	struct zt_svid *s;
	int r;

	if (zt_spiffe_parse_workload(spiffe_id, iss->trust_domain, NULL, 0, NULL, 0) < 0 ||
	    ttl_s == 0 || ttl_s > 366 * 86400ULL)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	atomic_init(&s->refs, 1);
	snprintf(s->id, sizeof(s->id), "%s", spiffe_id);
	s->issued_at = now;
	s->not_before = now - ZT_SVID_SKEW_S;
	s->not_after = now + (int64_t)ttl_s;
	/* A leaf outliving its issuer would fail verification at that moment anyway. */
	if (s->not_after > iss->not_after)
		s->not_after = iss->not_after;
	r = -EKEYEXPIRED;
	if (s->not_after <= now)
		goto fail;
	s->renew_at = now + (s->not_after - now) / 2;
	r = zt_x509_keygen(&s->key);
	if (r < 0)
		goto fail;
	spec.subject_o = "ztagent";
	spec.basic_constraints = true;
	spec.is_ca = false;
	spec.key_usage = ZT_KU_DIGITAL_SIGNATURE;
	spec.ext_usage = ZT_EKU_SERVER | ZT_EKU_CLIENT;
	spec.uris[0] = spiffe_id;
	spec.not_before = s->not_before;
	spec.not_after = s->not_after;
	spec.key = s->key;
	spec.issuer = iss->cert;
	spec.issuer_key = iss->key;
	r = zt_x509_build(&spec, &s->cert);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	s->chain = sk_X509_new_null();
	if (!s->chain || !X509_up_ref(iss->cert))
		goto fail;
	if (!sk_X509_push(s->chain, iss->cert)) {
		X509_free(iss->cert);
		goto fail;
	}
	zt_x509_serial_hex(s->cert, s->serial, sizeof(s->serial));
	*out = s;
	return 0;
fail:
	ERR_clear_error();
	zt_svid_put(s);
	return r;
}

/* ---- the store ---- */

struct entry {
	char id[ZT_SPIFFE_ID_MAX + 1];
	unsigned int pods;
	struct zt_svid *svid;
};

struct zt_svid_store {
	pthread_mutex_t lock;
	struct zt_svid_store_config cfg;
	struct zt_svid_issuer *iss;
	struct entry *e;
	size_t n, cap;
	uint64_t minted, failures;
	int last_error; /* of the last mint that failed, -errno */
};

/* SVIDs minted under the lock, announced (cfg.on_issue) once it is released. */
struct minted {
	struct zt_svid *v; /* a reference */
	bool renewal;
};

struct announce {
	struct minted *e;
	size_t n, cap;
};

int zt_svid_store_new(const struct zt_svid_store_config *cfg, struct zt_svid_issuer *iss,
		      struct zt_svid_store **out)
{
	struct zt_svid_store *s;

	if (!iss || !cfg || cfg->ttl_s == 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->cfg = *cfg;
	s->iss = iss;
	*out = s;
	return 0;
}

void zt_svid_store_free(struct zt_svid_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		zt_svid_put(s->e[i].svid);
	free(s->e);
	zt_svid_issuer_free(s->iss);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static struct entry *find(struct zt_svid_store *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->e[i].id, id) == 0)
			return &s->e[i];
	return NULL;
}

/*
 * Lock held. The fresh SVID goes into a for cfg.on_issue after the lock:
 * an announcement writes the audit journal, which must never hold up a
 * thread that waits on this lock (only without memory for the list is it
 * announced here).
 */
static int renew(struct zt_svid_store *s, struct entry *e, int64_t now, struct announce *a)
{
	struct zt_svid *fresh;
	bool renewal = e->svid != NULL;
	int r = zt_svid_mint(s->iss, e->id, now, s->cfg.ttl_s, &fresh);

	if (r < 0) {
		s->failures++;
		s->last_error = r;
		return r;
	}
	zt_svid_put(e->svid);
	e->svid = fresh;
	s->minted++;
	if (zt_grow((void **)&a->e, &a->cap, a->n + 1, sizeof(*a->e)) == 0) {
		a->e[a->n].v = zt_svid_get_ref(fresh);
		a->e[a->n++].renewal = renewal;
	} else if (s->cfg.on_issue) {
		s->cfg.on_issue(s->cfg.ctx, fresh, renewal);
	}
	return 0;
}

/* Lock released: the announcements, then the references go. */
static void announce(struct zt_svid_store *s, struct announce *a)
{
	for (size_t i = 0; i < a->n; i++) {
		if (s->cfg.on_issue)
			s->cfg.on_issue(s->cfg.ctx, a->e[i].v, a->e[i].renewal);
		zt_svid_put(a->e[i].v);
	}
	free(a->e);
	memset(a, 0, sizeof(*a));
}

int zt_svid_store_add(struct zt_svid_store *s, const char *ns, const char *sa, int64_t now)
{
	char id[ZT_SPIFFE_ID_MAX + 1];
	struct announce a = { .n = 0 };
	struct entry *e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = zt_spiffe_format_workload(id, sizeof(id), s->iss->trust_domain, ns, sa);
	if (r < 0)
		goto out;
	e = find(s, id);
	if (e) {
		e->pods++;
		goto out;
	}
	r = zt_grow((void **)&s->e, &s->cap, s->n + 1, sizeof(*s->e));
	if (r < 0)
		goto out;
	e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->pods = 1;
	r = renew(s, e, now, &a);
	if (r == 0)
		s->n++;
out:
	pthread_mutex_unlock(&s->lock);
	announce(s, &a);
	return r;
}

int zt_svid_store_del(struct zt_svid_store *s, const char *ns, const char *sa)
{
	char id[ZT_SPIFFE_ID_MAX + 1];
	struct entry *e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = zt_spiffe_format_workload(id, sizeof(id), s->iss->trust_domain, ns, sa);
	if (r < 0)
		goto out;
	e = find(s, id);
	r = -ENOENT;
	if (!e)
		goto out;
	r = 0;
	if (--e->pods)
		goto out;
	zt_svid_put(e->svid);
	*e = s->e[--s->n];
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Past half life by half the rest: the tick (the daemon's loop, every second) did not renew it. */
static bool overdue(const struct zt_svid *v, int64_t now)
{
	return now >= v->renew_at + (v->not_after - v->renew_at) / 2;
}

int zt_svid_store_get(struct zt_svid_store *s, const char *spiffe_id, int64_t now,
		      struct zt_svid **out)
{
	struct announce a = { .n = 0 };
	struct entry *e;
	int r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	e = find(s, spiffe_id);
	if (!e)
		goto out;
	/*
	 * Renewal is the tick's; a caller (the tunnel's relay and handshake
	 * threads) mints here only when the tick fell behind. A failed
	 * renewal keeps the current SVID while it is still valid.
	 */
	if (overdue(e->svid, now) && renew(s, e, now, &a) < 0 && now >= e->svid->not_after) {
		r = -EKEYEXPIRED;
		goto out;
	}
	*out = zt_svid_get_ref(e->svid);
	r = 0;
out:
	pthread_mutex_unlock(&s->lock);
	announce(s, &a);
	return r;
}

int64_t zt_svid_store_tick(struct zt_svid_store *s, int64_t now)
{
	struct announce a = { .n = 0 };
	int64_t next = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->e[i];

		if (now >= e->svid->renew_at)
			renew(s, e, now, &a);
		if (!next || e->svid->renew_at < next)
			next = e->svid->renew_at;
	}
	pthread_mutex_unlock(&s->lock);
	announce(s, &a);
	return next;
}

int zt_svid_store_set_issuer(struct zt_svid_store *s, struct zt_svid_issuer *iss, int64_t now)
{
	struct announce a = { .n = 0 };
	int r = 0;

	if (!iss)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	zt_svid_issuer_free(s->iss);
	s->iss = iss;
	for (size_t i = 0; i < s->n; i++) {
		int e = renew(s, &s->e[i], now, &a);

		if (e < 0 && !r)
			r = e;
	}
	pthread_mutex_unlock(&s->lock);
	announce(s, &a);
	return r;
}

size_t zt_svid_store_list(struct zt_svid_store *s, struct zt_svid_info *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct zt_svid *v = s->e[i].svid;

		snprintf(out[i].id, sizeof(out[i].id), "%s", v->id);
		snprintf(out[i].serial, sizeof(out[i].serial), "%s", v->serial);
		out[i].not_before = v->not_before;
		out[i].not_after = v->not_after;
		out[i].renew_at = v->renew_at;
		out[i].pods = s->e[i].pods;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t zt_svid_store_minted(struct zt_svid_store *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->minted;
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t zt_svid_store_failures(struct zt_svid_store *s, int *last_error)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->failures;
	if (last_error)
		*last_error = s->last_error;
	pthread_mutex_unlock(&s->lock);
	return n;
}
