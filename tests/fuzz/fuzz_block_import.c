// SPDX-License-Identifier: GPL-2.0-only
/*
 * `ztctl block import` files (threat feeds, operators' lists): the line
 * reader zt_import_next. Checked against a plain reference reading of the
 * same bytes: every line that holds a CIDR is reported at its own line
 * number, every other non-blank line is reported bad, and nothing is
 * swallowed.
 */
#include "fuzz.h"
#include "ctl/import.h"

/* The reference: what line i (1-based) of the input must give. */
enum want { WANT_SKIP, WANT_CIDR, WANT_BAD };

static enum want reference(const uint8_t *l, size_t n, struct zt_cidr *c)
{
	char buf[ZT_IMPORT_LINE_MAX + 1];
	size_t s = 0, e = 0;

	if (n > ZT_IMPORT_LINE_MAX)
		return WANT_BAD;
	while (e < n && l[e] != '#')
		e++;
	while (s < e && (l[s] == ' ' || l[s] == '\t' || l[s] == '\r'))
		s++;
	while (e > s && (l[e - 1] == ' ' || l[e - 1] == '\t' || l[e - 1] == '\r'))
		e--;
	if (s == e)
		return WANT_SKIP;
	if (memchr(l + s, '\0', e - s))
		return WANT_BAD;
	memcpy(buf, l + s, e - s);
	buf[e - s] = '\0';
	return zt_cidr_parse(buf, c, NULL) == 0 ? WANT_CIDR : WANT_BAD;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_import_reader rd;
	struct zt_import_line got;
	size_t pos = 0, lineno = 0;
	FILE *f;
	int r;

	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	zt_import_init(&rd, f);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
		struct zt_cidr c;
		enum want w = reference(data + pos, n, &c);

		lineno++;
		pos += n + (nl ? 1 : 0);
		if (w == WANT_SKIP)
			continue;
		r = zt_import_next(&rd, &got);
		FUZZ_CHECK(r == 1, "line %zu was not reported (%d)", lineno, r);
		FUZZ_CHECK(got.lineno == lineno, "line %zu reported as line %zu", lineno,
			   got.lineno);
		FUZZ_CHECK(got.ok == (w == WANT_CIDR), "line %zu: ok=%d, the reference says %d",
			   lineno, got.ok, w == WANT_CIDR);
		if (w == WANT_CIDR)
			FUZZ_CHECK(got.cidr.family == c.family &&
					   got.cidr.prefixlen == c.prefixlen &&
					   !memcmp(got.cidr.addr, c.addr, 16),
				   "line %zu: another CIDR", lineno);
		else
			FUZZ_CHECK(got.why && strnlen(got.shown, sizeof(got.shown)) <
						      sizeof(got.shown),
				   "line %zu: bad without a reason", lineno);
	}
	FUZZ_CHECK(zt_import_next(&rd, &got) == 0, "a line after the last one (%zu)", lineno);
	fclose(f);
	return 0;
}
