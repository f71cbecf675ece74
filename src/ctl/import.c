// SPDX-License-Identifier: GPL-2.0-only
/* The line reader of `ztctl block import` (see import.h). */
#include <errno.h>
#include <string.h>

#include "ctl/import.h"

void zt_import_init(struct zt_import_reader *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
}

static void show(struct zt_import_line *out, const char *s, size_t n, bool cut)
{
	size_t k = n < ZT_IMPORT_SHOWN_MAX ? n : ZT_IMPORT_SHOWN_MAX;

	for (size_t i = 0; i < k; i++) {
		unsigned char ch = (unsigned char)s[i];

		out->shown[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (k < n || cut) {
		memcpy(out->shown + k, "...", 4);
		return;
	}
	out->shown[k] = '\0';
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int zt_import_next(struct zt_import_reader *r, struct zt_import_line *out)
{
	for (;;) {
		size_t n = 0, start, end;
		bool eof = false, too_long = false;
		int ch;

		for (;;) {
			ch = getc(r->f);
			if (ch == EOF) {
				if (ferror(r->f))
					return -EIO;
				eof = true;
				break;
			}
			if (ch == '\n')
				break;
			if (n < ZT_IMPORT_LINE_MAX)
				r->buf[n++] = (char)ch;
			else
				too_long = true;
		}
		if (eof && n == 0 && !too_long)
			return 0;
		r->lineno++;
		memset(out, 0, sizeof(*out));
		out->lineno = r->lineno;
		if (too_long) {
			show(out, r->buf, n, true);
			out->why = "line too long to be a CIDR";
			return 1;
		}
		/* A comment ends the content; blanks around it go. */
		end = 0;
		while (end < n && r->buf[end] != '#')
			end++;
		start = 0;
		while (start < end && blank(r->buf[start]))
			start++;
		while (end > start && blank(r->buf[end - 1]))
			end--;
		if (start == end)
			continue;
		show(out, r->buf + start, end - start, false);
		if (memchr(r->buf + start, '\0', end - start)) {
			out->why = "a NUL byte in the line; not a CIDR";
			return 1;
		}
		r->buf[end] = '\0';
		if (zt_cidr_parse(r->buf + start, &out->cidr, NULL) < 0) {
			out->why = "not an IPv4/IPv6 address or prefix";
			return 1;
		}
		out->ok = true;
		return 1;
	}
}
