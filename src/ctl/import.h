/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The reader of `ztctl block import` files: one CIDR per line, '#' starts a
 * comment, blank lines are skipped. Pure (no daemon, no output), so that it
 * is tested and fuzzed on its own.
 *
 * Lines are read byte by byte with their real length: a NUL byte is part of
 * its line (which is then bad), never the end of it, so no line is swallowed
 * and line numbers stay those of the file.
 */
#ifndef ZT_CTL_IMPORT_H
#define ZT_CTL_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "agent/util.h"

#define ZT_IMPORT_LINE_MAX 256 /* longer lines are not a CIDR */
#define ZT_IMPORT_SHOWN_MAX 80 /* bytes of a bad line quoted in its message */

struct zt_import_reader {
	FILE *f;
	size_t lineno;
	char buf[ZT_IMPORT_LINE_MAX + 1];
};

struct zt_import_line {
	size_t lineno; /* 1-based, of the file */
	bool ok; /* cidr is valid; else why (and shown) say what is wrong */
	struct zt_cidr cidr;
	const char *why;
	char shown[ZT_IMPORT_SHOWN_MAX + 4]; /* the line, control bytes as '?', "..." when cut */
};

void zt_import_init(struct zt_import_reader *r, FILE *f);
/*
 * The next line that is not blank or a comment: 1 and *out filled, 0 at the
 * end of the file, -errno when reading fails.
 */
int zt_import_next(struct zt_import_reader *r, struct zt_import_line *out);

#endif
