/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Credentials submitted in the clear to an HTTP/1.x form or API: a POST
 * whose first bytes (request line, headers, body) name a password field,
 * and the server's answer to it. A login form that refuses a password
 * answers 200 with the form again and its error in the page (WordPress,
 * Django, most hand-written forms), 422 (Rails), 403 or 429; one that lets
 * the user in mostly redirects (302, 303) to the page behind it. So a
 * credential submission answered 2xx or 4xx is read as a login refused
 * (lib/refusal.h), a redirect or a 5xx as nothing; whatever the session
 * serves after it (the next page, its assets) ends the run as a success
 * does (zt_ct_val.refused). What hydra http-post-form, ncrack and Burp's
 * intruder send at a form, the status code would otherwise hide.
 *
 * A client that submits the same credentials again and again (a synthetic
 * login check every 30 s, a script that fetches a token by password each
 * run, answered 200 each time, a few such checks from one address) tries
 * no password: a submission counts only when it differs from each of the
 * client's last ZT_CRED_SEEN ones to that service (cred_seen: hashes of
 * the bytes around the field's name, the user's name and the password
 * with it in a form or a JSON body of the usual shapes).
 *
 * The field: "pass", "password", "passwd", "passphrase" or "pwd", in any
 * case (so also j_password, user_pass, userPassword, newpwd), then what
 * ends a field's name: '=' (a form, a query string), '"' or '\'' before
 * ':' (a JSON key) or before '\r' (a multipart part's name="password"),
 * ']' or "%5D" (a bracketed name, PHP's and Rails' user[password]). A
 * value "pass" in JSON ("status":"pass") is followed by ',' or '}' and is
 * no field.
 *
 * Read: the segment that starts the request when it begins "POST ", the
 * first ZT_CRED_SCAN bytes; when the field is not there, the request's
 * next segment (a client that writes the body after its headers). That is
 * tc_endpoint, for endpoints' flows. The node's own services: xdp_guard
 * reads each segment that begins "POST " (no per-connection state there:
 * the field must be in it) into the connection's host_replies entry, and
 * tc_uplink reads the answer. Under TLS nothing of this is seen.
 */
#ifndef ZT_BPF_CRED_H
#define ZT_BPF_CRED_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/refusal.h"
#include "lib/hostreply.h"

#define ZT_CRED_SCAN 1024 /* bytes of a request segment searched for a password field */
#define ZT_CRED_AROUND 32 /* bytes each side of the field's name that its hash covers */

/* Per-CPU scratch: the segment's bytes and the lookup's key, off the caller's frame. */
struct zt_cred_scratch {
	__u8 buf[ZT_CRED_SCAN + 16]; /* 16 past the scan: the name's end is read beyond */
	struct zt_cred_key key;
	struct zt_cred_seen seen;
	__u32 hash; /* never 0: 0 is an empty place of zt_cred_seen */
	/* The node's own services: the connection's host_replies entry (lib/hostreply.h). */
	struct zt_host_reply_key rkey;
	struct zt_host_reply reply;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_cred_scratch);
} cred_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct zt_cred_key);
	__type(value, struct zt_cred_seen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cred_seen SEC(".maps");

/* Whether the bytes at b, after a field's name, end it (see the top). */
static __always_inline int zt_cred_name_end(const __u8 *b)
{
	if (b[0] == '=' || b[0] == ']')
		return 1;
	if (b[0] == '"' || b[0] == '\'')
		return b[1] == ':' || b[1] == '\r' || (b[1] == ' ' && b[2] == ':');
	return b[0] == '%' && b[1] == '5' && (b[2] | 0x20) == 'd';
}

/*
 * Where in s->buf (n bytes) a password field's name starts, or -1. The
 * buffer holds ZT_CRED_SCAN + 16 bytes; those past n are zero.
 */
static __always_inline int zt_cred_find(const struct zt_cred_scratch *s, __u32 n)
{
	for (__u32 i = 0; i < ZT_CRED_SCAN; i++) {
		const __u8 *b = &s->buf[i];
		__u32 w;

		if (i + 4 > n)
			return -1;
		w = zt_lower4(b);
		if (w == ZT_W4('p', 'a', 's', 's')) {
			__u32 v = zt_lower4(b + 4);

			if (v == ZT_W4('w', 'o', 'r', 'd')	  ? zt_cred_name_end(b + 8) :
			    (v & 0xffff) == ZT_W4('w', 'd', 0, 0) ? zt_cred_name_end(b + 6) :
			    v == ZT_W4('p', 'h', 'r', 'a')	  ? (b[8] | 0x20) == 's' &&
								     (b[9] | 0x20) == 'e' &&
								     zt_cred_name_end(b + 10) :
							     zt_cred_name_end(b + 4))
				return i;
		} else if ((w & 0xffffff) == ZT_W4('p', 'w', 'd', 0) && zt_cred_name_end(b + 3)) {
			return i;
		}
	}
	return -1;
}

/* FNV-1a over s->buf[at - ZT_CRED_AROUND, at + ZT_CRED_AROUND), within its n bytes. */
static __always_inline __u32 zt_cred_hash(const struct zt_cred_scratch *s, __u32 at, __u32 n)
{
	__u32 h = 2166136261u, from = 0;

	if (at > ZT_CRED_AROUND)
		from = at - ZT_CRED_AROUND;
	for (__u32 i = 0; i < 2 * ZT_CRED_AROUND; i++) {
		__u32 j = from + i;

		if (j >= n)
			break;
		/* Masked: the verifier keeps the index within the buffer (n <= ZT_CRED_SCAN). */
		h = (h ^ s->buf[j & (ZT_CRED_SCAN - 1)]) * 16777619u;
	}
	return h | 1; /* never 0: an empty place of zt_cred_seen */
}

#define ZT_CRED_NONE 0 /* no credentials here */
#define ZT_CRED_NEW 1 /* credentials other than the client's last ones to the service */
#define ZT_CRED_SAME 2 /* among the client's last ZT_CRED_SEEN ones to the service */
#define ZT_CRED_POST 3 /* a POST whose first segment names no password (its body may follow) */

/*
 * The request segment at off (payload bytes) into s->buf; first: it starts
 * the request, and only a POST is read. ZT_CRED_POST when it is read (its
 * first bytes are in s->buf, zero past them), else ZT_CRED_NONE.
 */
static __always_inline int zt_cred_load(struct __sk_buff *skb, struct zt_cred_scratch *s, __u32 off,
					__u32 payload, int first)
{
	__u32 n;

	if (payload < 8 || off > ZT_REFUSAL_MAX_OFF)
		return ZT_CRED_NONE;
	n = payload < ZT_CRED_SCAN ? payload : ZT_CRED_SCAN;
	/* Masked, then 1 added: the verifier keeps 1..ZT_CRED_SCAN. */
	if (bpf_skb_load_bytes(skb, off, s->buf, ((n - 1) & (ZT_CRED_SCAN - 1)) + 1))
		return ZT_CRED_NONE;
	if (first && (s->buf[0] != 'P' || s->buf[1] != 'O' || s->buf[2] != 'S' ||
		      s->buf[3] != 'T' || s->buf[4] != ' '))
		return ZT_CRED_NONE;
	/* What an earlier segment left past this one's end is no part of it. */
	if (n < ZT_CRED_SCAN)
		__builtin_memset(&s->buf[n & (ZT_CRED_SCAN - 1)], 0, 16);
	else
		__builtin_memset(&s->buf[ZT_CRED_SCAN], 0, 16);
	return ZT_CRED_POST;
}

/*
 * Credentials whose hash is s->hash, from client to server:port (addresses
 * 16 bytes): ZT_CRED_SAME when they are among the client's last
 * ZT_CRED_SEEN ones to the service, else ZT_CRED_NEW (and they are the
 * latest of those now).
 */
static __always_inline int zt_cred_seen(struct zt_cred_scratch *s, __u8 family, const __u8 *client,
					const __u8 *server, __u16 port)
{
	struct zt_cred_seen *v;

	__builtin_memset(&s->key, 0, sizeof(s->key));
	s->key.family = family;
	s->key.port = port;
	__builtin_memcpy(s->key.client, client, 16);
	__builtin_memcpy(s->key.server, server, 16);
	v = bpf_map_lookup_elem(&cred_seen, &s->key);
	if (!v) {
		__builtin_memset(&s->seen, 0, sizeof(s->seen));
		s->seen.hash[0] = s->hash;
		bpf_map_update_elem(&cred_seen, &s->key, &s->seen, BPF_ANY);
		return ZT_CRED_NEW;
	}
#pragma unroll
	for (int i = 0; i < ZT_CRED_SEEN; i++)
		if (v->hash[i] == s->hash)
			return ZT_CRED_SAME;
#pragma unroll
	for (int i = ZT_CRED_SEEN - 1; i > 0; i--)
		v->hash[i] = v->hash[i - 1];
	v->hash[0] = s->hash;
	return ZT_CRED_NEW;
}

/* Whether the 12 bytes at b are an HTTP/1.x status line whose code is 2xx or 4xx: 1, else 0. */
static __always_inline int zt_cred_refusing(const __u8 *b)
{
	return b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/' &&
	       b[5] == '1' && b[6] == '.' && b[8] == ' ' && (b[9] == '2' || b[9] == '4') &&
	       b[10] >= '0' && b[10] <= '9' && b[11] >= '0' && b[11] <= '9';
}

/*
 * The response at off to a credential submission: ZT_REPLY_REFUSED when
 * it is an HTTP/1.x 2xx or 4xx (see the top), else what lib/refusal.h
 * reads of it.
 */
static __always_inline int zt_cred_reply(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	struct zt_cred_scratch *s;
	__u32 zero = 0;
	__u8 *b;

	/* The scratch, not the stack: the caller's frame has no room to spare. */
	s = bpf_map_lookup_elem(&cred_scratch, &zero);
	if (!s)
		return zt_refusal(skb, off, payload);
	b = s->buf;
	if (payload >= 12 && off <= ZT_REFUSAL_MAX_OFF && !bpf_skb_load_bytes(skb, off, b, 12) &&
	    zt_cred_refusing(b))
		return ZT_REPLY_REFUSED;
	return zt_refusal(skb, off, payload);
}

#endif /* ZT_BPF_CRED_H */
