// SPDX-License-Identifier: GPL-2.0-only
/*
 * Framing of a WATCH body: JSON objects one after the other, cut into
 * arbitrary pieces by TLS records and HTTP chunks. json-c's tokener keeps
 * the state between pieces; this file only skips the blanks between
 * objects, enforces the size bound before the bytes reach the tokener (so
 * a huge object costs at most max_bytes of parsing), and hands each
 * complete object on.
 */
#include <errno.h>
#include <string.h>

#include "k8s/k8s_int.h"

/* The tokener takes an int length. */
#define FEED_STEP (1u << 20)

int zt_k8s_stream_init(struct zt_k8s_stream *s, size_t max_bytes)
{
	memset(s, 0, sizeof(*s));
	s->tok = json_tokener_new_ex(ZT_K8S_JSON_DEPTH);
	if (!s->tok)
		return -ENOMEM;
	json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	s->max_bytes = max_bytes;
	return 0;
}

void zt_k8s_stream_reset(struct zt_k8s_stream *s)
{
	if (s->tok)
		json_tokener_reset(s->tok);
	s->cur = 0;
	s->in_obj = false;
	s->objects = 0;
}

void zt_k8s_stream_free(struct zt_k8s_stream *s)
{
	if (s->tok)
		json_tokener_free(s->tok);
	memset(s, 0, sizeof(*s));
}

static bool blank(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int zt_k8s_stream_feed(struct zt_k8s_stream *s, const char *buf, size_t len, zt_k8s_stream_fn fn,
		       void *ctx)
{
	size_t off = 0;

	while (off < len) {
		json_object *obj;
		enum json_tokener_error jerr;
		size_t n, room, used;
		int r;

		if (!s->in_obj) {
			while (off < len && blank(buf[off]))
				off++;
			if (off == len)
				break;
			if (buf[off] != '{')
				return -EPROTO;
			s->in_obj = true;
			s->cur = 0;
		}
		room = s->max_bytes - s->cur;
		if (room == 0)
			return -EFBIG;
		n = len - off;
		if (n > room)
			n = room;
		if (n > FEED_STEP)
			n = FEED_STEP;
		obj = json_tokener_parse_ex(s->tok, buf + off, (int)n);
		jerr = json_tokener_get_error(s->tok);
		if (!obj) {
			if (jerr != json_tokener_continue)
				return -EPROTO;
			s->cur += n;
			off += n;
			continue;
		}
		used = json_tokener_get_parse_end(s->tok);
		if (used > n)
			used = n;
		off += used;
		s->cur = 0;
		s->in_obj = false;
		json_tokener_reset(s->tok);
		if (!json_object_is_type(obj, json_type_object)) {
			json_object_put(obj);
			return -EPROTO;
		}
		s->objects++;
		r = fn(ctx, obj);
		json_object_put(obj);
		if (r)
			return r;
	}
	return 0;
}

int zt_k8s_stream_end(const struct zt_k8s_stream *s)
{
	return s->in_obj ? -EPROTO : 0;
}
