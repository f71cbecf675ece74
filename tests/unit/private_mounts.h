/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * For tests that mount a bpffs of their own: a mount namespace for the
 * process, so the mounts (and the maps pinned under them) go when the
 * process ends, also when it crashes or is killed half-way.
 */
#ifndef ZT_TEST_PRIVATE_MOUNTS_H
#define ZT_TEST_PRIVATE_MOUNTS_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

static inline void zt_test_private_mounts(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "a mount namespace of its own: %s\n", strerror(errno));
		exit(1);
	}
}

#endif
