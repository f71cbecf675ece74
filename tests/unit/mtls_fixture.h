/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * For the mtls unit tests: a real trust domain made with the code that
 * `ztctl ca` runs (root, node intermediate) in a temporary directory, and
 * its bundle and issuer loaded the way the agent loads them.
 */
#ifndef ZT_TEST_MTLS_FIXTURE_H
#define ZT_TEST_MTLS_FIXTURE_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * Every directory made and not yet freed: removed at exit too, so a test
 * that fails between fx_make and fx_free (cmocka goes on with the next
 * one) leaves nothing in /tmp.
 */
#define FX_MAX_DIRS 32
static char fx_dirs[FX_MAX_DIRS][64];
static pid_t fx_pid; /* a forked child exiting leaves them to its parent */

static void fx_forget(const char *dir)
{
	for (int i = 0; i < FX_MAX_DIRS; i++)
		if (fx_dirs[i][0] && strcmp(fx_dirs[i], dir) == 0)
			fx_dirs[i][0] = '\0';
}

static void fx_at_exit(void)
{
	if (getpid() != fx_pid)
		return;
	for (int i = 0; i < FX_MAX_DIRS; i++)
		if (fx_dirs[i][0]) {
			nftw(fx_dirs[i], fx_rm, 16, FTW_DEPTH | FTW_PHYS);
			fx_dirs[i][0] = '\0';
		}
}

static void fx_remember(const char *dir)
{
	static bool registered;

	if (!registered) {
		fx_pid = getpid();
		registered = atexit(fx_at_exit) == 0;
	}
	for (int i = 0; i < FX_MAX_DIRS; i++)
		if (!fx_dirs[i][0]) {
			snprintf(fx_dirs[i], sizeof(fx_dirs[i]), "%s", dir);
			return;
		}
}

static void fx_free(struct fx *f)
{
	zt_svid_issuer_free(f->iss);
	zt_trust_free(f->trust);
	f->iss = NULL;
	f->trust = NULL;
	if (f->dir[0]) {
		nftw(f->dir, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
		fx_forget(f->dir);
	}
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
	fx_remember(f->dir);
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
