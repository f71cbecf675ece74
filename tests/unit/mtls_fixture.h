/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * For the mtls unit tests: a real trust domain made with the code that
 * `ztctl ca` runs (root, node intermediate) in a temporary directory, and
 * its bundle and issuer loaded the way the agent loads them.
 */
#ifndef ZT_TEST_MTLS_FIXTURE_H
#define ZT_TEST_MTLS_FIXTURE_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mtls/ca.h"
#include "mtls/svid.h"
#include "mtls/x509.h"

struct fx {
	char dir[64], ca[128], node[128];
	char bundle[PATH_MAX], node_cert[PATH_MAX], node_key[PATH_MAX];
	struct zt_trust *trust;
	struct zt_svid_issuer *iss;
};

static int fx_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void fx_free(struct fx *f)
{
	zt_svid_issuer_free(f->iss);
	zt_trust_free(f->trust);
	f->iss = NULL;
	f->trust = NULL;
	if (f->dir[0])
		nftw(f->dir, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
	f->dir[0] = '\0';
}

/* 0, or the failing step's error printed to stderr. */
static int fx_make(struct fx *f, const char *td, const char *node)
{
	char err[512];
	int r;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/zt-mtls-test.XXXXXX");
	if (!mkdtemp(f->dir))
		return -errno;
	snprintf(f->ca, sizeof(f->ca), "%s/ca", f->dir);
	snprintf(f->node, sizeof(f->node), "%s/node", f->dir);
	snprintf(f->bundle, sizeof(f->bundle), "%s/bundle.pem", f->node);
	snprintf(f->node_cert, sizeof(f->node_cert), "%s/node.pem", f->node);
	snprintf(f->node_key, sizeof(f->node_key), "%s/node.key", f->node);
	r = zt_ca_init(td, f->ca, 30, NULL, err, sizeof(err));
	if (r == 0)
		r = zt_ca_issue_node(f->ca, node, f->node, 10, NULL, err, sizeof(err));
	if (r == 0)
		r = zt_trust_load(f->bundle, td, &f->trust, err, sizeof(err));
	if (r == 0)
		r = zt_svid_issuer_load(f->node_cert, f->node_key, td, f->trust, &f->iss, err,
					sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fixture: %s\n", err);
		fx_free(f);
	}
	return r;
}

#endif
