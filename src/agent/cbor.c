// SPDX-License-Identifier: GPL-2.0-only
/*
 * CBOR (RFC 8949) for everything that crosses a trust boundary: API frames, the
 * endpoint state file, spool segments.
 *
 * libcbor's cbor_load() recurses once per nesting level and allocates what
 * headers declare, so input is first walked here, iteratively, over its raw
 * bytes: nesting depth, declared lengths against the bytes that remain, the
 * number of items, UTF-8 in text strings. Only input that passes goes to
 * cbor_load(). Also: map access, builders, and JSON output.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cbor.h"
#include "agent/util.h"

#define MAX_DEPTH 32

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Offset of the first invalid byte, or n when s is valid UTF-8. */
static size_t utf8_check(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t l;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		l = utf8_seq(s + i, n - i);
		if (!l)
			return i;
		i += l;
	}
	return n;
}

/* ---- the pre-scan ---- */

enum frame_kind {
	FR_ITEMS, /* array, map (2 items per pair), tag (1 item), or the top level */
	FR_CHUNKS_BYTES, /* indefinite byte string: definite byte-string chunks */
	FR_CHUNKS_TEXT, /* indefinite text string: definite text chunks */
};

struct frame {
	uint64_t left; /* items still expected (definite length) */
	bool indef; /* ends with a break instead */
	uint64_t seen; /* items seen, for the pairing of indefinite maps */
	size_t start; /* offset of the container's header */
	uint8_t kind;
	bool map;
};

static const char *const major_name[8] = {
	"unsigned integer",
	"negative integer",
	"byte string",
	"text string",
	"array",
	"map",
	"tag",
	"simple value or float",
};

static int prescan(const uint8_t *b, size_t len, size_t max_items, char *err, size_t errlen)
{
	struct frame st[MAX_DEPTH + 1];
	size_t pos = 0, items = 0;
	int sp = 0;

	if (len == 0) {
		zt_seterr(err, errlen, "empty message: expected one CBOR map");
		return -EPROTO;
	}
	if (b[0] >> 5 != 5) {
		zt_seterr(err, errlen, "the message is a CBOR %s, expected a map",
			  major_name[b[0] >> 5]);
		return -EPROTO;
	}
	st[0] = (struct frame){ .left = 1, .kind = FR_ITEMS };
	while (sp >= 0) {
		struct frame *top = &st[sp];
		size_t start = pos;
		uint8_t ib, major, info;
		uint64_t val = 0;
		bool indef = false;

		if (!top->indef && top->left == 0) {
			sp--;
			continue;
		}
		if (pos >= len) {
			if (sp == 0)
				zt_seterr(err, errlen, "CBOR truncated: no item at byte %zu", pos);
			else
				zt_seterr(
					err, errlen,
					"CBOR truncated at byte %zu: the %s opened at byte %zu is not complete",
					pos, top->kind == FR_ITEMS ? "container" : "string",
					top->start);
			return -EPROTO;
		}
		ib = b[pos++];
		major = ib >> 5;
		info = ib & 0x1f;
		if (ib == 0xff) {
			if (!top->indef) {
				zt_seterr(err, errlen, "CBOR: unexpected break (0xff) at byte %zu",
					  start);
				return -EPROTO;
			}
			if (top->map && top->seen % 2) {
				zt_seterr(
					err, errlen,
					"CBOR: the map opened at byte %zu ends at byte %zu after a key without a value",
					top->start, start);
				return -EPROTO;
			}
			sp--;
			continue;
		}
		if (info < 24) {
			val = info;
		} else if (info <= 27) {
			size_t n = (size_t)1 << (info - 24);

			if (len - pos < n) {
				zt_seterr(
					err, errlen,
					"CBOR truncated at byte %zu: the header at byte %zu needs %zu more bytes",
					len, start, n);
				return -EPROTO;
			}
			for (size_t i = 0; i < n; i++)
				val = val << 8 | b[pos++];
		} else if (info == 31 && major >= 2 && major <= 5) {
			indef = true;
		} else {
			zt_seterr(err, errlen, "CBOR: invalid %s header 0x%02x at byte %zu",
				  major_name[major], ib, start);
			return -EPROTO;
		}
		if (top->kind != FR_ITEMS &&
		    (major != (top->kind == FR_CHUNKS_BYTES ? 2 : 3) || indef)) {
			zt_seterr(
				err, errlen,
				"CBOR: byte %zu is inside the chunked string opened at byte %zu but is not a definite chunk of it",
				start, top->start);
			return -EPROTO;
		}
		if (++items > max_items) {
			zt_seterr(err, errlen, "CBOR: more than %zu items (at byte %zu)", max_items,
				  start);
			return -E2BIG;
		}
		if (!top->indef)
			top->left--;
		top->seen++;

		switch (major) {
		case 2:
		case 3:
			if (indef)
				break;
			if (val > len - pos) {
				zt_seterr(
					err, errlen,
					"CBOR: the %s at byte %zu declares %llu bytes, %zu remain",
					major_name[major], start, (unsigned long long)val,
					len - pos);
				return -EPROTO;
			}
			if (major == 3) {
				size_t bad = utf8_check(b + pos, val);

				if (bad != val) {
					zt_seterr(
						err, errlen,
						"CBOR: the text string at byte %zu is not valid UTF-8 (byte %zu)",
						start, pos + bad);
					return -EPROTO;
				}
			}
			pos += val;
			continue;
		case 4:
		case 5:
			if (!indef) {
				/* Every item takes at least one byte. */
				if (val > (len - pos) / (major == 5 ? 2 : 1)) {
					zt_seterr(
						err, errlen,
						"CBOR: the %s at byte %zu declares %llu %s, only %zu bytes remain",
						major_name[major], start, (unsigned long long)val,
						major == 5 ? "pairs" : "items", len - pos);
					return -EPROTO;
				}
				if (major == 5)
					val *= 2;
				if (val > max_items - items) {
					zt_seterr(
						err, errlen,
						"CBOR: the %s at byte %zu declares %llu %s, more than %zu items in all",
						major_name[major], start,
						(unsigned long long)(major == 5 ? val / 2 : val),
						major == 5 ? "pairs" : "items", max_items);
					return -E2BIG;
				}
			}
			break;
		case 6:
			val = 1; /* a tag wraps one item */
			break;
		case 7:
			/* libcbor 0.8 knows false, true, null, undefined and floats only. */
			if (info < 20 || info == 24) {
				zt_seterr(err, errlen, "CBOR: unsupported simple value at byte %zu",
					  start);
				return -EPROTO;
			}
			continue;
		default:
			continue;
		}
		/* A container or a chunked string: one level deeper. */
		if (sp + 1 > MAX_DEPTH) {
			zt_seterr(err, errlen, "CBOR: nesting deeper than %d levels at byte %zu",
				  MAX_DEPTH, start);
			return -EPROTO;
		}
		st[++sp] = (struct frame){
			.left = val,
			.indef = indef,
			.start = start,
			.kind = major == 2 ? FR_CHUNKS_BYTES :
				major == 3 ? FR_CHUNKS_TEXT :
					     FR_ITEMS,
			.map = major == 5,
		};
	}
	if (pos != len) {
		zt_seterr(err, errlen, "CBOR: %zu trailing bytes after the item, from byte %zu",
			  len - pos, pos);
		return -EPROTO;
	}
	return 0;
}

int zt_cbor_decode(const uint8_t *buf, size_t len, size_t max_items, cbor_item_t **out, char *err,
		   size_t errlen)
{
	struct cbor_load_result res;
	cbor_item_t *item;
	int r;

	r = prescan(buf, len, max_items, err, errlen);
	if (r < 0)
		return r;
	item = cbor_load(buf, len, &res);
	if (!item || res.error.code != CBOR_ERR_NONE) {
		if (item)
			cbor_decref(&item);
		if (res.error.code == CBOR_ERR_MEMERROR) {
			zt_seterr(err, errlen, "out of memory decoding a %zu-byte message", len);
			return -ENOMEM;
		}
		zt_seterr(err, errlen, "malformed CBOR at byte %zu (libcbor error %d)",
			  res.error.position, (int)res.error.code);
		return -EPROTO;
	}
	if (res.read != len) {
		cbor_decref(&item);
		zt_seterr(err, errlen, "CBOR: %zu trailing bytes after the item, from byte %zu",
			  len - res.read, res.read);
		return -EPROTO;
	}
	*out = item;
	return 0;
}

/* ---- map access ---- */

static bool key_is(const cbor_item_t *k, const char *key, size_t n)
{
	return k && cbor_isa_string(k) && cbor_string_is_definite(k) &&
	       cbor_string_length(k) == n && memcmp(cbor_string_handle(k), key, n) == 0;
}

cbor_item_t *zt_cbor_get(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *pairs;
	size_t n, klen;

	if (!map || !key || !cbor_isa_map(map))
		return NULL;
	pairs = cbor_map_handle(map);
	n = cbor_map_size(map);
	klen = strlen(key);
	/* First match wins; a duplicate key later in the map is ignored. */
	for (size_t i = 0; i < n; i++)
		if (pairs[i].value && key_is(pairs[i].key, key, klen))
			return pairs[i].value;
	return NULL;
}

int zt_cbor_str(const cbor_item_t *item, char *buf, size_t n)
{
	size_t len;

	if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(item))
		return -EINVAL;
	len = cbor_string_length(item);
	if (n == 0 || len >= n || (len && memchr(cbor_string_handle(item), '\0', len)))
		return -E2BIG;
	if (len)
		memcpy(buf, cbor_string_handle(item), len);
	buf[len] = '\0';
	return 0;
}

int zt_cbor_get_str(const cbor_item_t *map, const char *key, char *buf, size_t n)
{
	cbor_item_t *v = zt_cbor_get(map, key);

	return v ? zt_cbor_str(v, buf, n) : -ENOENT;
}

int zt_cbor_get_u64(const cbor_item_t *map, const char *key, uint64_t *out)
{
	cbor_item_t *v = zt_cbor_get(map, key);

	if (!v)
		return -ENOENT;
	if (cbor_isa_negint(v))
		return -ERANGE;
	if (!cbor_isa_uint(v))
		return -EINVAL;
	*out = cbor_get_int(v);
	return 0;
}

/* cbor_is_bool() asserts on floats in libcbor 0.8: look at the width first. */
static bool is_ctrl(const cbor_item_t *it)
{
	return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0;
}

static bool is_bool(const cbor_item_t *it)
{
	return is_ctrl(it) && cbor_is_bool(it);
}

int zt_cbor_get_bool(const cbor_item_t *map, const char *key, bool *out)
{
	cbor_item_t *v = zt_cbor_get(map, key);

	if (!v)
		return -ENOENT;
	if (!is_bool(v))
		return -EINVAL;
	*out = cbor_get_bool(v);
	return 0;
}

/* ---- builders ---- */

cbor_item_t *zt_cbor_map(void)
{
	return cbor_new_indefinite_map();
}

cbor_item_t *zt_cbor_array(void)
{
	return cbor_new_indefinite_array();
}

/*
 * The container takes the caller's reference on success; on failure the
 * caller keeps it. A value already passed through cbor_move() (refcount 0)
 * is adopted as is.
 */
static void adopted(cbor_item_t *value)
{
	if (cbor_refcount(value) > 1)
		cbor_decref(&value);
}

int zt_cbor_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k;
	bool ok;

	if (!map || !key || !value)
		return -ENOMEM;
	k = cbor_build_string(key);
	if (!k)
		return -ENOMEM;
	ok = cbor_map_add(map, (struct cbor_pair){ .key = k, .value = value });
	cbor_decref(&k);
	if (!ok)
		return -ENOMEM;
	adopted(value);
	return 0;
}

static int put_new(cbor_item_t *map, const char *key, cbor_item_t *v)
{
	int r;

	if (!v)
		return -ENOMEM;
	r = zt_cbor_put(map, key, v);
	if (r < 0)
		cbor_decref(&v);
	return r;
}

/* Text that is not valid UTF-8 gets U+FFFD for each bad byte: our peers refuse such text. */
static cbor_item_t *build_text(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), bad = utf8_check(p, n), o = 0;
	cbor_item_t *it;
	uint8_t *fixed;

	if (bad == n)
		return cbor_build_stringn(s, n);
	fixed = malloc(n * 3 + 1);
	if (!fixed)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);

		if (l) {
			memcpy(fixed + o, p + i, l);
			o += l;
			i += l;
		} else {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	it = cbor_build_stringn((const char *)fixed, o);
	free(fixed);
	return it;
}

int zt_cbor_put_str(cbor_item_t *map, const char *key, const char *value)
{
	return put_new(map, key, build_text(value ? value : ""));
}

int zt_cbor_put_u64(cbor_item_t *map, const char *key, uint64_t value)
{
	return put_new(map, key, cbor_build_uint64(value));
}

int zt_cbor_put_i64(cbor_item_t *map, const char *key, int64_t value)
{
	if (value >= 0)
		return put_new(map, key, cbor_build_uint64((uint64_t)value));
	/* CBOR stores -1 - n. */
	return put_new(map, key, cbor_build_negint64((uint64_t)(-(value + 1))));
}

int zt_cbor_put_bool(cbor_item_t *map, const char *key, bool value)
{
	return put_new(map, key, cbor_build_bool(value));
}

int zt_cbor_push(cbor_item_t *array, cbor_item_t *value)
{
	if (!array || !value)
		return -ENOMEM;
	if (!cbor_array_push(array, value))
		return -ENOMEM;
	adopted(value);
	return 0;
}

/* ---- JSON ---- */

/* Printable ASCII other than '"' and '\\': copied as it is. */
static bool json_plain(uint8_t c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static void json_text(FILE *f, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t l;

		if (json_plain(c)) {
			/* A run at once: a listing of millions of entries is mostly such runs. */
			for (l = 1; i + l < n && json_plain(s[i + l]); l++)
				;
			fwrite(s + i, 1, l, f);
			i += l;
			continue;
		}
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(f, "\\u%04x", c);
			} else if ((l = utf8_seq(s + i, n - i))) {
				fwrite(s + i, 1, l, f);
				i += l;
				continue;
			} else {
				fputs("\\ufffd", f); /* not UTF-8: one replacement per bad byte */
			}
		}
		i++;
	}
}

struct b64 {
	uint8_t carry[2];
	int n;
};

static void b64_quad(FILE *f, const uint8_t *in, int n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v =
		(uint32_t)in[0] << 16 | (n > 1 ? (uint32_t)in[1] << 8 : 0) | (n > 2 ? in[2] : 0);

	fputc(t[v >> 18 & 63], f);
	fputc(t[v >> 12 & 63], f);
	fputc(n > 1 ? t[v >> 6 & 63] : '=', f);
	fputc(n > 2 ? t[v & 63] : '=', f);
}

/* Base64 over possibly chunked input, three bytes at a time. */
static void b64_write(FILE *f, struct b64 *st, const uint8_t *s, size_t n)
{
	size_t i = 0;

	if (st->n) {
		uint8_t q[3];
		int k = 0;

		for (; k < st->n; k++)
			q[k] = st->carry[k];
		while (k < 3 && i < n)
			q[k++] = s[i++];
		if (k < 3) {
			memcpy(st->carry, q, (size_t)k);
			st->n = k;
			return;
		}
		b64_quad(f, q, 3);
		st->n = 0;
	}
	for (; i + 3 <= n; i += 3)
		b64_quad(f, s + i, 3);
	st->n = (int)(n - i);
	memcpy(st->carry, s + i, (size_t)st->n);
}

static void b64_end(FILE *f, struct b64 *st)
{
	if (st->n)
		b64_quad(f, st->carry, st->n);
	st->n = 0;
}

static void json_string_item(FILE *f, const cbor_item_t *it)
{
	bool bytes = cbor_isa_bytestring(it);
	struct b64 st = { .n = 0 };
	cbor_item_t **chunks;
	size_t nchunks;

	fputc('"', f);
	if (bytes ? cbor_bytestring_is_definite(it) : cbor_string_is_definite(it)) {
		if (bytes)
			b64_write(f, &st, cbor_bytestring_handle(it), cbor_bytestring_length(it));
		else
			json_text(f, cbor_string_handle(it), cbor_string_length(it));
	} else {
		chunks = bytes ? cbor_bytestring_chunks_handle(it) : cbor_string_chunks_handle(it);
		nchunks = bytes ? cbor_bytestring_chunk_count(it) : cbor_string_chunk_count(it);
		for (size_t i = 0; i < nchunks; i++) {
			if (bytes)
				b64_write(f, &st, cbor_bytestring_handle(chunks[i]),
					  cbor_bytestring_length(chunks[i]));
			else
				json_text(f, cbor_string_handle(chunks[i]),
					  cbor_string_length(chunks[i]));
		}
	}
	if (bytes)
		b64_end(f, &st);
	fputc('"', f);
}

static void json_float(FILE *f, double d)
{
	char buf[40];

	if (isnan(d) || isinf(d)) {
		fputs("null", f); /* JSON has no NaN or infinity */
		return;
	}
	/* The shortest form that reads back as the same double. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	fputs(buf, f);
	/* "1" is a valid JSON number, but keep it visibly a float. */
	if (!strpbrk(buf, ".eEn"))
		fputs(".0", f);
}

static void newline(FILE *f, bool pretty, int depth)
{
	if (!pretty)
		return;
	fputc('\n', f);
	for (int i = 0; i < depth; i++)
		fputs("  ", f);
}

static void to_json(const cbor_item_t *it, FILE *f, bool pretty, int depth);

/* JSON object keys are strings: a key of another type is written as its JSON, quoted. */
static void json_key(FILE *f, const cbor_item_t *k)
{
	char *s = NULL;
	size_t n = 0;
	FILE *m;

	if (cbor_isa_string(k)) {
		json_string_item(f, k);
		return;
	}
	m = open_memstream(&s, &n);
	if (!m) {
		fputs("\"\"", f);
		return;
	}
	to_json(k, m, false, MAX_DEPTH * 2);
	fclose(m);
	fputc('"', f);
	json_text(f, (const uint8_t *)s, n);
	fputc('"', f);
	free(s);
}

static void to_json(const cbor_item_t *it, FILE *f, bool pretty, int depth)
{
	if (!it || depth > MAX_DEPTH * 4) {
		fputs("null", f);
		return;
	}
	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
		fprintf(f, "%llu", (unsigned long long)cbor_get_int(it));
		break;
	case CBOR_TYPE_NEGINT: {
		uint64_t v = cbor_get_int(it); /* the value is -1 - v */

		if (v == UINT64_MAX)
			fputs("-18446744073709551616", f);
		else
			fprintf(f, "-%llu", (unsigned long long)v + 1);
		break;
	}
	case CBOR_TYPE_BYTESTRING:
	case CBOR_TYPE_STRING:
		json_string_item(f, it);
		break;
	case CBOR_TYPE_ARRAY: {
		size_t n = cbor_array_size(it);
		cbor_item_t **h = cbor_array_handle(it);

		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			newline(f, pretty, depth + 1);
			to_json(h[i], f, pretty, depth + 1);
		}
		if (n)
			newline(f, pretty, depth);
		fputc(']', f);
		break;
	}
	case CBOR_TYPE_MAP: {
		size_t n = cbor_map_size(it);
		struct cbor_pair *h = cbor_map_handle(it);

		fputc('{', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			newline(f, pretty, depth + 1);
			json_key(f, h[i].key);
			fputs(pretty ? ": " : ":", f);
			to_json(h[i].value, f, pretty, depth + 1);
		}
		if (n)
			newline(f, pretty, depth);
		fputc('}', f);
		break;
	}
	case CBOR_TYPE_TAG: {
		/* Tags carry no meaning in our messages: the tagged item stands for itself. */
		cbor_item_t *inner = cbor_tag_item(it);

		to_json(inner, f, pretty, depth + 1);
		if (inner)
			cbor_decref(&inner);
		break;
	}
	case CBOR_TYPE_FLOAT_CTRL:
		if (is_bool(it))
			fputs(cbor_get_bool(it) ? "true" : "false", f);
		else if (is_ctrl(it))
			fputs("null", f); /* null, undefined, other simple values */
		else
			json_float(f, cbor_float_get_float(it));
		break;
	}
}

int zt_cbor_to_json(const cbor_item_t *item, FILE *f, bool pretty)
{
	if (!item || !f)
		return -EINVAL;
	to_json(item, f, pretty, 0);
	return ferror(f) ? -EIO : 0;
}
