// SPDX-License-Identifier: GPL-2.0-only
/* SPIFFE IDs: the rules of the SPIFFE ID specification, and the workload form we issue. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mtls/mtls.h"

static const char *const reason_names[ZT_MTLS_REASON_MAX] = {
	[ZT_MTLS_OK] = "ok",
	[ZT_MTLS_UNKNOWN_CA] = "unknown_ca",
	[ZT_MTLS_EXPIRED] = "expired",
	[ZT_MTLS_NOT_YET_VALID] = "not_yet_valid",
	[ZT_MTLS_WRONG_IDENTITY] = "wrong_identity",
	[ZT_MTLS_BAD_SAN] = "bad_san",
	[ZT_MTLS_BAD_PROFILE] = "bad_profile",
	[ZT_MTLS_TRUST_DOMAIN] = "trust_domain",
	[ZT_MTLS_NO_CERT] = "no_cert",
	[ZT_MTLS_VERSION] = "version",
	[ZT_MTLS_PLAINTEXT] = "plaintext",
	[ZT_MTLS_TAMPERED] = "tampered",
	[ZT_MTLS_PEER_REFUSED] = "peer_refused",
	[ZT_MTLS_NO_IDENTITY] = "no_identity",
	[ZT_MTLS_PROTOCOL] = "protocol",
	[ZT_MTLS_HANDSHAKE] = "handshake",
	[ZT_MTLS_TIMEOUT] = "timeout",
	[ZT_MTLS_UPSTREAM] = "upstream",
	[ZT_MTLS_CONNECT] = "connect",
};

const char *zt_mtls_reason_name(enum zt_mtls_reason r)
{
	if ((unsigned int)r >= ZT_MTLS_REASON_MAX || !reason_names[r])
		return "unknown";
	return reason_names[r];
}

static bool td_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool seg_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

bool zt_spiffe_trust_domain_valid(const char *td)
{
	size_t n = td ? strlen(td) : 0;

	if (n == 0 || n > ZT_TRUST_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!td_char(td[i]))
			return false;
	return true;
}

int zt_spiffe_id_check(const char *id)
{
	static const char scheme[] = "spiffe://";
	const char *td, *p, *slash;
	size_t n;

	if (!id)
		return -EINVAL;
	n = strlen(id);
	/* The scheme is lowercase only: the spec refuses "SPIFFE://". */
	if (n > ZT_SPIFFE_ID_MAX || strncmp(id, scheme, sizeof(scheme) - 1) != 0)
		return -EINVAL;
	td = id + sizeof(scheme) - 1;
	slash = strchr(td, '/');
	n = slash ? (size_t)(slash - td) : strlen(td);
	/* Port, userinfo, query, fragment: each brings a character td_char() refuses. */
	if (n == 0 || n > ZT_TRUST_DOMAIN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!td_char(td[i]))
			return -EINVAL;
	if (!slash)
		return 0;
	/* Path: "/seg" repeated, no empty segment, no "." or "..", no trailing slash. */
	p = slash;
	while (*p) {
		const char *s = p + 1, *e = s;

		while (*e && *e != '/') {
			if (!seg_char(*e))
				return -EINVAL;
			e++;
		}
		if (e == s || (e - s == 1 && s[0] == '.') ||
		    (e - s == 2 && s[0] == '.' && s[1] == '.'))
			return -EINVAL;
		p = e;
	}
	return 0;
}

/* A Kubernetes namespace or service account: a DNS subdomain name (lowercase, '-', '.'). */
static bool k8s_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > ZT_K8S_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && c != '-' && c != '.')
			return false;
		if (!alnum && (i == 0 || i == n - 1))
			return false;
	}
	return true;
}

static int copy_part(char *dst, size_t dst_len, const char *s, size_t n)
{
	if (!dst)
		return 0;
	if (n >= dst_len)
		return -ENOSPC;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int zt_spiffe_parse_workload(const char *id, const char *td, char *ns, size_t ns_len, char *sa,
			     size_t sa_len)
{
	const char *host, *path, *nsv, *sav, *end;
	size_t tdn;

	if (zt_spiffe_id_check(id) < 0)
		return -EINVAL;
	host = id + strlen("spiffe://");
	path = strchr(host, '/');
	if (!path || strncmp(path, "/ns/", 4) != 0)
		return -EINVAL;
	nsv = path + 4;
	end = strchr(nsv, '/');
	if (!end || strncmp(end, "/sa/", 4) != 0)
		return -EINVAL;
	sav = end + 4;
	if (strchr(sav, '/'))
		return -EINVAL;
	if (!k8s_name_valid(nsv, (size_t)(end - nsv)) || !k8s_name_valid(sav, strlen(sav)))
		return -EINVAL;
	tdn = (size_t)(path - host);
	if (td && (strlen(td) != tdn || memcmp(host, td, tdn) != 0))
		return -EXDEV;
	if (copy_part(ns, ns_len, nsv, (size_t)(end - nsv)) < 0 ||
	    copy_part(sa, sa_len, sav, strlen(sav)) < 0)
		return -ENOSPC;
	return 0;
}

int zt_spiffe_format_workload(char *out, size_t n, const char *td, const char *ns, const char *sa)
{
	int w;

	if (!zt_spiffe_trust_domain_valid(td) || !ns || !sa || !k8s_name_valid(ns, strlen(ns)) ||
	    !k8s_name_valid(sa, strlen(sa)))
		return -EINVAL;
	w = snprintf(out, n, "spiffe://%s/ns/%s/sa/%s", td, ns, sa);
	if (w < 0 || (size_t)w >= n)
		return -ENOSPC;
	return 0;
}
