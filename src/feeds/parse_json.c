// SPDX-License-Identifier: GPL-2.0-only
/*
 * JSON through json-c: whole documents (STIX, MISP) and JSON lines
 * (Spamhaus DROP). The tokener is strict (RFC 8259, no comments, no single
 * quotes), validates UTF-8 and bounds nesting, so a hostile document costs
 * memory in proportion to its size and no stack.
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "feeds/feed_int.h"

#define JSON_DEPTH 64
#define JSON_CHUNK (64u << 20) /* json_tokener_parse_ex() takes an int length */

static bool json_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

const char *feed_json_str(struct json_object *o, const char *k, size_t *n)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (n)
		*n = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

/* "line L column C" of byte off, for messages. */
static void where(struct feed_ctx *x, size_t off, char *buf, size_t n)
{
	const char *start;
	uint32_t line;

	x->line_off = 0;
	x->line_at = 1;
	line = feed_line_of(x, off);
	start = off ? memrchr(x->buf, '\n', off) : NULL;
	snprintf(buf, n, "line %u column %zu", line,
		 off - (start ? (size_t)(start - x->buf) + 1 : 0) + 1);
	x->line_off = 0;
	x->line_at = 1;
}

static json_tokener *new_tokener(void)
{
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
						    JSON_TOKENER_ALLOW_TRAILING_CHARS |
						    JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

int feed_json_doc(struct feed_ctx *x, struct json_object **out)
{
	const char *nul = memchr(x->buf, '\0', x->len);
	enum json_tokener_error je = json_tokener_continue;
	struct json_object *o = NULL;
	json_tokener *tok = NULL;
	size_t off = 0;
	char at[64];
	int err = 0;

	*out = NULL;
	if (nul) {
		where(x, (size_t)(nul - x->buf), at, sizeof(at));
		return feed_fail(x, -EBADMSG, "NUL byte at %s: not JSON text", at);
	}
	tok = new_tokener();
	if (!tok)
		return feed_fail(x, -ENOMEM, "out of memory");
	while (off < x->len) {
		size_t n = x->len - off < JSON_CHUNK ? x->len - off : JSON_CHUNK;

		o = json_tokener_parse_ex(tok, x->buf + off, (int)n);
		je = json_tokener_get_error(tok);
		if (je == json_tokener_continue) {
			off += n;
			continue;
		}
		off += json_tokener_get_parse_end(tok);
		break;
	}
	if (je == json_tokener_continue) {
		/* The end of input, for json-c: a NUL. */
		o = json_tokener_parse_ex(tok, "", 1);
		je = json_tokener_get_error(tok);
		if (je != json_tokener_success) {
			where(x, x->len, at, sizeof(at));
			err = feed_fail(
				x, -EBADMSG,
				"the JSON document ends early at %s (%s): truncated download or file?",
				at, x->len ? json_tokener_error_desc(je) : "empty");
			goto out;
		}
	} else if (je != json_tokener_success) {
		where(x, off ? off - 1 : 0, at, sizeof(at));
		err = feed_fail(x, -EBADMSG, "not JSON at %s: %s", at, json_tokener_error_desc(je));
		goto out;
	}
	while (off < x->len && json_ws(x->buf[off]))
		off++;
	if (off < x->len) {
		where(x, off, at, sizeof(at));
		err = feed_fail(x, -EBADMSG, "text after the JSON document at %s", at);
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return err;
}

/*
 * Spamhaus DROP JSON lines, one object a line:
 *   {"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
 *   {"type":"metadata","timestamp":1716393616,"size":77551,"records":1339,...}
 * The SBL id is the reference. A metadata line whose record count differs
 * from the lines found is reported (not refused: the count is advisory).
 */
int feed_parse_spamhaus_json(struct feed_ctx *x)
{
	int64_t records = -1;
	uint64_t lines = 0; /* of records, in this buffer */
	uint32_t line = 0, meta_line = 0;
	json_tokener *tok;
	size_t off = 0;
	int err = 0;

	tok = new_tokener();
	if (!tok)
		return feed_fail(x, -ENOMEM, "out of memory");
	while (off < x->len) {
		const char *p = x->buf + off, *nl = memchr(p, '\n', x->len - off), *cidr, *sbl;
		size_t n = nl ? (size_t)(nl - p) : x->len - off, cn = 0, sn = 0, end;
		enum json_tokener_error je;
		struct json_object *o, *v;

		off += n + (nl ? 1 : 0);
		line++;
		while (n && json_ws(p[n - 1]))
			n--;
		while (n && json_ws(*p)) {
			p++;
			n--;
		}
		if (!n)
			continue;
		x->r->stats.items++;
		lines++;
		if (n > ZT_FEED_JSON_LINE_MAX) {
			feed_report(x, line, true, p, n, "line of %zu bytes is longer than %d", n,
				    ZT_FEED_JSON_LINE_MAX);
			continue;
		}
		if (memchr(p, '\0', n)) {
			feed_report(x, line, true, p, n, "NUL byte in the line: not JSON text");
			continue;
		}
		json_tokener_reset(tok);
		o = json_tokener_parse_ex(tok, p, (int)n);
		je = json_tokener_get_error(tok);
		if (je == json_tokener_continue) {
			o = json_tokener_parse_ex(tok, "", 1);
			je = json_tokener_get_error(tok);
			end = n;
		} else {
			end = json_tokener_get_parse_end(tok);
		}
		if (je != json_tokener_success || end < n) {
			feed_report(x, line, true, p, n, "not one JSON object: %s",
				    je != json_tokener_success ? json_tokener_error_desc(je) :
								 "text after it");
			json_object_put(o);
			continue;
		}
		if (!json_object_is_type(o, json_type_object)) {
			feed_report(x, line, true, p, n, "a JSON %s, not an object",
				    json_type_to_name(json_object_get_type(o)));
			json_object_put(o);
			continue;
		}
		cidr = feed_json_str(o, "cidr", &cn);
		if (!cidr) {
			const char *type = feed_json_str(o, "type", NULL);

			if (type && !strcmp(type, "metadata")) {
				x->r->stats.items--;
				lines--;
				if (json_object_object_get_ex(o, "records", &v) &&
				    json_object_is_type(v, json_type_int)) {
					records = json_object_get_int64(v);
					meta_line = line;
				}
			} else {
				feed_report(x, line, true, p, n, "no \"cidr\" string");
			}
			json_object_put(o);
			continue;
		}
		sbl = feed_json_str(o, "sblid", &sn);
		err = feed_take(x, line, cidr, cn, 0, ZT_FEED_BOTH, 0, sbl, sn, p, n);
		json_object_put(o);
		if (err)
			break;
	}
	json_tokener_free(tok);
	if (!err && records >= 0 && (uint64_t)records != lines)
		feed_report(x, meta_line, false, NULL, 0,
			    "metadata says %lld records, the file has %llu lines of records",
			    (long long)records, (unsigned long long)lines);
	return err;
}
