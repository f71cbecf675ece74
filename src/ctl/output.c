// SPDX-License-Identifier: GPL-2.0-only
/* ztctl output: tables, times, JSON, and text from the daemon made safe for a terminal. */
#include "ctl/ctl.h"

void die_nomem(void)
{
	fprintf(stderr, "ztctl: out of memory\n");
	exit(EXIT_FAIL);
}

/* Text from the daemon, safe for a terminal: control characters become '?'. */
void clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		/* C1 controls, U+0080..U+009F, are 0xc2 0x80..0x9f in UTF-8. */
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?';
	}
}

/* Display width, close enough: code points. */
size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

uint64_t u64_of(const cbor_item_t *m, const char *key)
{
	uint64_t v = 0;

	zt_cbor_get_u64(m, key, &v);
	return v;
}

/* A signed field (ages, -1 for "never"): negative CBOR integers included. */
int64_t i64_of(const cbor_item_t *m, const char *key)
{
	cbor_item_t *v = zt_cbor_get(m, key);

	if (v && cbor_isa_negint(v))
		return -1 - (int64_t)cbor_get_int(v);
	return (int64_t)u64_of(m, key);
}

bool bool_of(const cbor_item_t *m, const char *key)
{
	bool v = false;

	zt_cbor_get_bool(m, key, &v);
	return v;
}

/* A text field, cleaned for the terminal; dflt when absent or not text. */
const char *str_of(const cbor_item_t *m, const char *key, char *buf, size_t n, const char *dflt)
{
	if (zt_cbor_get_str(m, key, buf, n) < 0)
		snprintf(buf, n, "%s", dflt);
	clean(buf);
	return buf;
}

size_t arr_len(const cbor_item_t *a)
{
	return a && cbor_isa_array(a) ? cbor_array_size(a) : 0;
}

const cbor_item_t *arr_at(const cbor_item_t *a, size_t i)
{
	return cbor_array_handle(a)[i];
}

const char *iso_time(uint64_t unix_s, char *buf, size_t n)
{
	if (!unix_s || zt_time_format(unix_s, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

const char *duration_s(uint64_t s, char *buf, size_t n)
{
	if (s > UINT64_MAX / 1000000000ULL || zt_duration_format(s * 1000000000ULL, buf, n) < 0)
		snprintf(buf, n, "%llus", (unsigned long long)s);
	return buf;
}

/* "never", "expired", or "in 9m58s (2026-11-22T23:10:00Z)". */
const char *expiry(uint64_t expires_unix, bool expired, char *buf, size_t n)
{
	uint64_t now = zt_now_unix();
	char d[32], t[32];

	if (!expires_unix)
		snprintf(buf, n, "never");
	else if (expired || expires_unix <= now)
		snprintf(buf, n, "expired");
	else
		snprintf(buf, n, "in %s (%s)", duration_s(expires_unix - now, d, sizeof(d)),
			 iso_time(expires_unix, t, sizeof(t)));
	return buf;
}

void print_json(const cbor_item_t *data)
{
	if (data)
		zt_cbor_to_json(data, stdout, true);
	else
		fputs("{}", stdout);
	fputc('\n', stdout);
}

/* item as indented JSON, as a member of a document at depth (2 spaces each). */
void print_json_at(const cbor_item_t *item, int depth)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	if (!m)
		die_nomem();
	zt_cbor_to_json(item, m, true);
	if (fclose(m) != 0)
		die_nomem();
	/* JSON text has no raw newline inside a string: each one starts a line. */
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(buf + i, '\n', n - i);
		size_t l = nl ? (size_t)(nl - (buf + i)) + 1 : n - i;

		fwrite(buf + i, 1, l, stdout);
		if (nl)
			printf("%*s", depth * 2, "");
		i += l;
	}
	free(buf);
}

void table_add(struct table *t, ...)
{
	va_list ap;

	if (t->rows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(*nc));

		if (!nc)
			die_nomem();
		t->cells = nc;
		t->cap = ncap;
	}
	va_start(ap, t);
	for (int c = 0; c < t->ncols; c++) {
		char *s = strdup(va_arg(ap, const char *));

		if (!s)
			die_nomem();
		clean(s);
		t->cells[t->rows * (size_t)t->ncols + (size_t)c] = s;
	}
	va_end(ap);
	t->rows++;
}

/*
 * Prints the rows added so far and forgets them, for a listing that comes in
 * pages: w (t->ncols widths, zero at first) only grows, so columns stay
 * aligned unless a later page has a wider cell; the head goes out once.
 */
void table_print_page(struct table *t, size_t *w, bool *headed)
{
	for (int c = 0; c < t->ncols; c++) {
		if (width(t->heads[c]) > w[c])
			w[c] = width(t->heads[c]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t cw = width(t->cells[r * (size_t)t->ncols + (size_t)c]);

			if (cw > w[c])
				w[c] = cw;
		}
	}
	for (size_t r = *headed ? 1 : 0; r <= t->rows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s =
				r ? t->cells[(r - 1) * (size_t)t->ncols + (size_t)c] : t->heads[c];
			size_t pad = w[c] > width(s) ? w[c] - width(s) : 0;
			bool last = c == t->ncols - 1;

			if (t->right[c])
				printf("%*s%s", (int)pad, "", s);
			else
				printf("%s%*s", s, last ? 0 : (int)pad, "");
			fputs(last ? "\n" : "  ", stdout);
		}
	}
	*headed = true;
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	t->rows = 0;
}

void table_print(struct table *t)
{
	size_t w[16] = { 0 };
	bool headed = false;

	table_print_page(t, w, &headed);
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}
