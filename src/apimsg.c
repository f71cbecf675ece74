// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apimsg.h"

#define MAX_DEPTH 32
#define MAX_ITEMS (16u << 20)
#define INDEF UINT64_MAX

/* ---- a bounded walk over the encoded bytes, before libcbor (which recurses) sees them ---- */

static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static int prescan(const uint8_t *b, size_t len, char *err, size_t errlen)
{
	uint64_t need[MAX_DEPTH + 2];
	size_t pos = 0, items = 0;
	int depth = 0;

	need[0] = 1;
	while (depth >= 0) {
		uint8_t ib, major, info;
		uint64_t val = 0;
		size_t start = pos;

		if (need[depth] == 0) {
			depth--;
			continue;
		}
		if (pos >= len) {
			snprintf(err, errlen, "CBOR truncated at byte %zu", pos);
			return -EPROTO;
		}
		ib = b[pos++];
		if (ib == 0xff) {
			if (need[depth] != INDEF) {
				snprintf(err, errlen, "CBOR: unexpected break at byte %zu", start);
				return -EPROTO;
			}
			depth--;
			continue;
		}
		major = ib >> 5;
		info = ib & 0x1f;
		if (info < 24) {
			val = info;
		} else if (info <= 27) {
			size_t n = (size_t)1 << (info - 24);

			if (len - pos < n) {
				snprintf(err, errlen, "CBOR truncated at byte %zu", pos);
				return -EPROTO;
			}
			for (size_t i = 0; i < n; i++)
				val = val << 8 | b[pos++];
		} else if (info == 31 && (major == 4 || major == 5)) {
			val = INDEF;
		} else {
			snprintf(err, errlen, "CBOR: unsupported item header 0x%02x at byte %zu",
				 ib, start);
			return -EPROTO;
		}
		if (need[depth] != INDEF)
			need[depth]--;
		if (++items > MAX_ITEMS) {
			snprintf(err, errlen, "CBOR: more than %u items", MAX_ITEMS);
			return -E2BIG;
		}
		switch (major) {
		case 2:
		case 3:
			if (val > len - pos) {
				snprintf(err, errlen,
					 "CBOR: string at byte %zu declares %llu bytes, %zu remain",
					 start, (unsigned long long)val, len - pos);
				return -EPROTO;
			}
			if (major == 3 && !utf8_valid(b + pos, val)) {
				snprintf(err, errlen, "CBOR: text at byte %zu is not valid UTF-8",
					 start);
				return -EPROTO;
			}
			pos += val;
			break;
		case 4:
		case 5:
		case 6:
			if (depth + 1 > MAX_DEPTH) {
				snprintf(err, errlen, "CBOR: nesting deeper than %d at byte %zu",
					 MAX_DEPTH, start);
				return -EPROTO;
			}
			if (major == 6) {
				val = 1;
			} else if (val != INDEF) {
				/* Every item takes at least one byte. */
				if (val > (len - pos) / (major == 5 ? 2 : 1)) {
					snprintf(
						err, errlen,
						"CBOR: container at byte %zu declares %llu items, only %zu bytes remain",
						start, (unsigned long long)val, len - pos);
					return -EPROTO;
				}
				if (major == 5)
					val *= 2;
			}
			need[++depth] = val;
			break;
		default:
			break;
		}
	}
	if (pos != len) {
		snprintf(err, errlen, "CBOR: %zu trailing bytes after the item", len - pos);
		return -EPROTO;
	}
	return 0;
}

int zt_msg_decode(const uint8_t *buf, size_t len, cbor_item_t **out, char *err, size_t errlen)
{
	struct cbor_load_result res;
	cbor_item_t *item;
	int r;

	if (len == 0) {
		snprintf(err, errlen, "empty message");
		return -EPROTO;
	}
	r = prescan(buf, len, err, errlen);
	if (r < 0)
		return r;
	item = cbor_load(buf, len, &res);
	if (!item || res.error.code != CBOR_ERR_NONE) {
		if (item)
			cbor_decref(&item);
		snprintf(err, errlen, "malformed CBOR at byte %zu (error %d)", res.error.position,
			 (int)res.error.code);
		return res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EPROTO;
	}
	if (res.read != len) {
		cbor_decref(&item);
		snprintf(err, errlen, "CBOR: %zu trailing bytes after the item", len - res.read);
		return -EPROTO;
	}
	*out = item;
	return 0;
}

int zt_msg_encode(const cbor_item_t *item, uint8_t **frame, size_t *frame_len)
{
	unsigned char *buf = NULL, *f;
	size_t cap = 0, n;

	n = cbor_serialize_alloc(item, &buf, &cap);
	if (!n)
		return -ENOMEM;
	if (n > ZT_API_MAX_MSG) {
		free(buf);
		return -EMSGSIZE;
	}
	f = realloc(buf, n + ZT_API_HDR_LEN);
	if (!f) {
		free(buf);
		return -ENOMEM;
	}
	memmove(f + ZT_API_HDR_LEN, f, n);
	f[0] = n >> 24;
	f[1] = n >> 16;
	f[2] = n >> 8;
	f[3] = n;
	*frame = f;
	*frame_len = n + ZT_API_HDR_LEN;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes; -EPIPE on EOF at the start, -EPROTO on EOF inside. */
static int read_all(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return got ? -EPROTO : -EPIPE;
		got += (size_t)r;
	}
	return 0;
}

int zt_msg_send(int fd, const cbor_item_t *item)
{
	uint8_t *f;
	size_t n;
	int r = zt_msg_encode(item, &f, &n);

	if (r < 0)
		return r;
	r = write_all(fd, f, n);
	free(f);
	return r;
}

int zt_msg_recv(int fd, cbor_item_t **out, char *err, size_t errlen)
{
	uint8_t hdr[ZT_API_HDR_LEN], *buf;
	uint32_t len;
	int r;

	r = read_all(fd, hdr, sizeof(hdr));
	if (r < 0) {
		snprintf(err, errlen, "%s",
			 r == -EPIPE  ? "the peer closed the connection" :
			 r == -EPROTO ? "the peer closed the connection inside a frame header" :
					strerror(-r));
		return r;
	}
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > ZT_API_MAX_MSG) {
		snprintf(err, errlen, "frame of %u bytes refused (1 to %u allowed)", len,
			 ZT_API_MAX_MSG);
		return -EMSGSIZE;
	}
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	r = read_all(fd, buf, len);
	if (r < 0) {
		snprintf(err, errlen, "%s",
			 r == -EPIPE || r == -EPROTO ?
				 "the peer closed the connection inside a frame" :
				 strerror(-r));
		free(buf);
		return r == -EPIPE ? -EPROTO : r;
	}
	r = zt_msg_decode(buf, len, out, err, errlen);
	free(buf);
	return r;
}

/* ---- access ---- */

static bool key_is(const cbor_item_t *k, const char *key)
{
	size_t n = strlen(key);

	return cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == n &&
	       memcmp(cbor_string_handle(k), key, n) == 0;
}

cbor_item_t *zt_cbor_get(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *pairs;
	size_t n;

	if (!map || !cbor_isa_map(map))
		return NULL;
	pairs = cbor_map_handle(map);
	n = cbor_map_size(map);
	for (size_t i = 0; i < n; i++)
		if (pairs[i].key && pairs[i].value && key_is(pairs[i].key, key))
			return pairs[i].value;
	return NULL;
}

int zt_cbor_str(const cbor_item_t *item, char *buf, size_t n)
{
	size_t len;

	if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(item))
		return -EINVAL;
	len = cbor_string_length(item);
	if (len >= n || memchr(cbor_string_handle(item), '\0', len))
		return -E2BIG;
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
	if (!cbor_isa_uint(v))
		return -EINVAL;
	*out = cbor_get_int(v);
	return 0;
}

int zt_cbor_get_bool(const cbor_item_t *map, const char *key, bool *out)
{
	cbor_item_t *v = zt_cbor_get(map, key);

	if (!v)
		return -ENOENT;
	if (!cbor_is_bool(v))
		return -EINVAL;
	*out = cbor_get_bool(v);
	return 0;
}

/* ---- builders: on success the container owns the value; on failure the caller still does ---- */

cbor_item_t *zt_cbor_map(void)
{
	return cbor_new_indefinite_map();
}

cbor_item_t *zt_cbor_array(void)
{
	return cbor_new_indefinite_array();
}

int zt_cbor_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k;
	bool ok;

	if (!map || !value)
		return -ENOMEM;
	k = cbor_build_string(key);
	if (!k)
		return -ENOMEM;
	ok = cbor_map_add(map, (struct cbor_pair){ .key = k, .value = value });
	cbor_decref(&k);
	if (!ok)
		return -ENOMEM;
	cbor_decref(&value);
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

int zt_cbor_put_str(cbor_item_t *map, const char *key, const char *value)
{
	return put_new(map, key, cbor_build_string(value ? value : ""));
}

int zt_cbor_put_u64(cbor_item_t *map, const char *key, uint64_t value)
{
	return put_new(map, key, cbor_build_uint64(value));
}

int zt_cbor_put_i64(cbor_item_t *map, const char *key, int64_t value)
{
	if (value >= 0)
		return zt_cbor_put_u64(map, key, (uint64_t)value);
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
	cbor_decref(&value);
	return 0;
}

/* ---- JSON ---- */

static void json_str(FILE *f, const uint8_t *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else if (c >= 0x80) {
			/* Copy a valid UTF-8 sequence; replace anything else with U+FFFD. */
			size_t len = (c & 0xe0) == 0xc0 ? 2 :
				     (c & 0xf0) == 0xe0 ? 3 :
				     (c & 0xf8) == 0xf0 ? 4 :
							  0;

			if (len && i + len <= n && utf8_valid(s + i, len)) {
				fwrite(s + i, 1, len, f);
				i += len - 1;
			} else {
				fputs("\\ufffd", f);
			}
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

static void json_b64(FILE *f, const uint8_t *s, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	fputc('"', f);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);

		fputc(t[v >> 18 & 63], f);
		fputc(t[v >> 12 & 63], f);
		fputc(i + 1 < n ? t[v >> 6 & 63] : '=', f);
		fputc(i + 2 < n ? t[v & 63] : '=', f);
	}
	fputc('"', f);
}

static void indent(FILE *f, bool pretty, int depth)
{
	if (!pretty)
		return;
	fputc('\n', f);
	for (int i = 0; i < depth; i++)
		fputs("  ", f);
}

static void string_item(FILE *f, const cbor_item_t *it, bool bytes)
{
	if (bytes ? cbor_bytestring_is_definite(it) : cbor_string_is_definite(it)) {
		if (bytes)
			json_b64(f, cbor_bytestring_handle(it), cbor_bytestring_length(it));
		else
			json_str(f, cbor_string_handle(it), cbor_string_length(it));
		return;
	}
	fputs("\"\"", f); /* chunked strings never come from our own peers */
}

static int to_json(const cbor_item_t *it, FILE *f, bool pretty, int depth)
{
	if (depth > MAX_DEPTH + 2)
		return -ELOOP;
	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
		fprintf(f, "%llu", (unsigned long long)cbor_get_int(it));
		break;
	case CBOR_TYPE_NEGINT: {
		uint64_t v = cbor_get_int(it);

		if (v < (uint64_t)INT64_MAX)
			fprintf(f, "%lld", -1 - (long long)v);
		else
			fprintf(f, "-%llu", (unsigned long long)v + 1);
		break;
	}
	case CBOR_TYPE_BYTESTRING:
		string_item(f, it, true);
		break;
	case CBOR_TYPE_STRING:
		string_item(f, it, false);
		break;
	case CBOR_TYPE_ARRAY: {
		size_t n = cbor_array_size(it);
		cbor_item_t **h = cbor_array_handle(it);

		fputc('[', f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			indent(f, pretty, depth + 1);
			to_json(h[i], f, pretty, depth + 1);
		}
		if (n)
			indent(f, pretty, depth);
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
			indent(f, pretty, depth + 1);
			if (cbor_isa_string(h[i].key))
				string_item(f, h[i].key, false);
			else
				fputs("\"?\"", f);
			fputs(pretty ? ": " : ":", f);
			to_json(h[i].value, f, pretty, depth + 1);
		}
		if (n)
			indent(f, pretty, depth);
		fputc('}', f);
		break;
	}
	case CBOR_TYPE_TAG:
		fputs("null", f); /* tags never come from our own peers */
		break;
	case CBOR_TYPE_FLOAT_CTRL:
		if (cbor_is_bool(it))
			fputs(cbor_get_bool(it) ? "true" : "false", f);
		else if (cbor_float_ctrl_is_ctrl(it))
			fputs("null", f);
		else
			fprintf(f, "%.17g", cbor_float_get_float(it));
		break;
	}
	return 0;
}

int zt_cbor_to_json(const cbor_item_t *item, FILE *f, bool pretty)
{
	int r = to_json(item, f, pretty, 0);

	fputc('\n', f);
	return r;
}
