/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Authentication refusals in the clear: the first bytes of a server's
 * response that say a login was tried and refused, whatever else the
 * response carries (a large error page reads like content to the byte
 * counts alone):
 *   - HTTP/1.x status 401 (Unauthorized: Basic, Digest, a token) or 407
 *     (Proxy Authentication Required): "HTTP/1.1 401 ";
 *   - FTP 530 (Not logged in: the answer to a wrong PASS), RFC 959;
 *   - SMTP 535 (authentication credentials invalid), RFC 4954;
 *   - POP3 -ERR (the answer to a wrong PASS or AUTH; RFC 1939), which is
 *     also how Redis before 6 refuses an AUTH, and Redis's -WRONGPASS; an
 *     -ERR only when its line speaks of a login (zt_refusal_err): both
 *     answer any failed command so ("-ERR unknown command", "-ERR value
 *     is not an integer"), which an application's pooled connection may
 *     get again and again;
 *   - PostgreSQL's ErrorResponse of SQLSTATE class 28 (invalid
 *     authorization: 28P01 a wrong password, 28000 a role or host that
 *     may not log in), severity FATAL: 'E', its length, then the fields
 *     'S' "FATAL", 'V' "FATAL" (9.6 and later), 'C' "28...". A server whose
 *     lc_messages translates the severity into a word of another length
 *     moves the code, and is left to the session's shape;
 *   - MySQL's and MariaDB's ERR packet for a refused login, 1045
 *     (ER_ACCESS_DENIED_ERROR) or 1698 (..._NO_PASSWORD_ERROR): a 3-byte
 *     length that fits the segment, a sequence number, 0xff, the code;
 *   - IMAP's tagged NO to a LOGIN or AUTHENTICATE (RFC 9051): a tag of
 *     at most 12 characters, " NO ", then the response code RFC 5530
 *     gives a refused login, [AUTHENTICATIONFAILED] (Dovecot, Gmail) or
 *     [AUTHORIZATIONFAILED], or the words servers without codes use,
 *     "Login failed" (Courier, Cyrus, Exchange's "LOGIN failed") or
 *     "Authentication failed". Any other NO (a mailbox that does not
 *     exist, a quota) is no login refused.
 * tc_endpoint reads them at the start of each response (zt_ct_val.refused
 * and .resp); the brute-force detector takes them from a session in which
 * no response after the last refusal served what was asked (a challenge
 * the client then answered, HTTP Digest or NTLM, ends on a 200; a guess
 * followed by some other command, a PING, a QUIT, still ends refused).
 * TLS hides them; a login form that answers 200 with its error in the
 * page says nothing here either (lib/cred.h reads the POST it answers).
 * SSH hides them too, but says them by the sizes of its answers (struct
 * zt_ssh_auth, lib/sshauth.h).
 *
 * The opposite is read too: an HTTP/1.x success (2xx) served what was
 * asked (ZT_CT_RESP_SERVED): a session with one is an exchange, however
 * few its bytes (a load balancer's health check of a tiny page, ab without
 * keep-alive), never a failed login; so is a 304 Not Modified (a poller's
 * or a cache's conditional GET, a header-only answer smaller than its
 * request: no login form answers one); and so is a login accepted, FTP 230
 * or SMTP 235 (a user who mistyped, then got in). So is a DNS answer over
 * TCP (RFC 1035 4.2.2, RFC 7766: a two-byte length, then a message; here one whose
 * length is the segment's payload, whose header says response to a
 * standard query with Z clear and holds one question): DNS has no logins,
 * and a lookup over TCP (dig +tcp, a resolver's retry after truncation,
 * glibc's use-vc) is a query of ~50 bytes answered with less than twice
 * that, the shape of a failed login by its bytes alone.
 *
 * And a third answer: PostgreSQL asking for a password (an
 * AuthenticationRequest, 'R' with a cleartext, MD5, GSS, SSPI or SASL
 * code). A session whose last response was one ended before any password
 * was tried: pg_isready, libpq's PQping, a load balancer's pgsql-check
 * (a startup packet of ~50 bytes answered with ~24), no failed login.
 *
 * And Redis's answer to a PING, "+PONG" (ZT_REPLY_PONG): a load balancer's
 * redis-check, a sentinel, a client pool's liveness probe send PING in a
 * connection of their own, 6 bytes answered with 7, every few seconds, the
 * shape of a failed login by its bytes alone. Redis answers PING so only
 * on a connection that may run commands (without a password, or after one
 * was accepted; otherwise -NOAUTH), so the session served what was asked.
 * Not after a refusal on the same connection, though: a guesser that sends
 * a PING after each refused AUTH, where the default user needs no password,
 * would make every guess a session that was served (zt_reply_served).
 *
 * Bytes are read with bpf_skb_load_bytes, which also reaches paged data.
 */
#ifndef ZT_BPF_REFUSAL_H
#define ZT_BPF_REFUSAL_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"

#define ZT_REFUSAL_MAX_OFF 1024 /* where a payload can start: headers within the skb's first KiB */

#define ZT_REPLY_REFUSED 1 /* a login refused */
#define ZT_REPLY_SERVED 2 /* served: an HTTP success, a DNS answer, a login accepted (FTP, SMTP) */
#define ZT_REPLY_CHALLENGE \
	3 /* a login asked for, none tried yet: PostgreSQL's AuthenticationRequest */
#define ZT_REPLY_PONG 4 /* Redis answered a PING: served, unless a login was refused before */

/* Whether reply r served what was asked, its server having refused `refused` logins so far. */
static __always_inline int zt_reply_served(int r, __u8 refused)
{
	return r == ZT_REPLY_SERVED || (r == ZT_REPLY_PONG && !refused);
}

/* A PostgreSQL ErrorResponse at off: ZT_REPLY_REFUSED for a FATAL of class 28, else 0. */
static __always_inline int zt_refusal_pg(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[12];

	if (payload < 22 || bpf_skb_load_bytes(skb, off, b, 12) || b[5] != 'S' || b[6] != 'F' ||
	    b[7] != 'A' || b[8] != 'T' || b[9] != 'A' || b[10] != 'L' || b[11] ||
	    bpf_skb_load_bytes(skb, off + 12, b, 10))
		return 0;
	/* Before 9.6 the code follows; since, the unlocalized severity comes first. */
	if (b[0] == 'C')
		return b[1] == '2' && b[2] == '8' ? ZT_REPLY_REFUSED : 0;
	return b[0] == 'V' && b[1] == 'F' && b[2] == 'A' && b[3] == 'T' && b[4] == 'A' &&
			       b[5] == 'L' && !b[6] && b[7] == 'C' && b[8] == '2' && b[9] == '8' ?
		       ZT_REPLY_REFUSED :
		       0;
}

/* Whether the n bytes at s, in lower case, are the text t (lower case, spaces). */
static __always_inline int zt_lower_eq(const __u8 *s, const char *t, int n)
{
	int eq = 1;

#pragma unroll
	for (int i = 0; i < n; i++)
		eq &= (s[i] | 0x20) == t[i];
	return eq;
}

/*
 * IMAP: a tagged NO that refuses a login, at off: ZT_REPLY_REFUSED, else 0.
 * The tag is the printable characters up to the first space; "NO " follows.
 */
static __always_inline int zt_refusal_imap(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[16], w[19];
	__u32 at = 0, stop = 0;

	if (payload < 16 || bpf_skb_load_bytes(skb, off, b, 16))
		return 0;
#pragma unroll
	for (int i = 0; i < 13; i++) {
		if (!stop && i && b[i] == ' ' && b[i + 1] == 'N' && b[i + 2] == 'O' &&
		    b[i + 3] == ' ')
			at = i + 4;
		stop |= b[i] < 0x21 || b[i] > 0x7e; /* a space ends the tag too */
	}
	if (!at || at + 10 > payload || bpf_skb_load_bytes(skb, off + at, w, 10))
		return 0;
	/* "[AUTHENTICATIONFAILED]" or "[AUTHORIZATIONFAILED]" (RFC 5530): no other code starts so. */
	if (w[0] == '[' && w[1] == 'A' && w[2] == 'U' && w[3] == 'T' && w[4] == 'H' &&
	    ((w[5] == 'E' && w[6] == 'N' && w[7] == 'T' && w[8] == 'I' && w[9] == 'C') ||
	     (w[5] == 'O' && w[6] == 'R' && w[7] == 'I' && w[8] == 'Z' && w[9] == 'A')))
		return ZT_REPLY_REFUSED;
	if (zt_lower_eq(w, "login fail", 10))
		return ZT_REPLY_REFUSED;
	if (at + 19 <= payload && zt_lower_eq(w, "authentica", 10) &&
	    !bpf_skb_load_bytes(skb, off + at, w, 19) && zt_lower_eq(w + 10, "tion fail", 9))
		return ZT_REPLY_REFUSED;
	return 0;
}

/* The 4 bytes at s in lower case, as one word (letters only change: | 0x20). */
static __always_inline __u32 zt_lower4(const __u8 *s)
{
	return ((__u32)(s[0] | 0x20)) | ((__u32)(s[1] | 0x20) << 8) | ((__u32)(s[2] | 0x20) << 16) |
	       ((__u32)(s[3] | 0x20) << 24);
}

#define ZT_W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)
#define ZT_ERR_SCAN 32 /* bytes of an -ERR line searched for a login's words */

/*
 * An -ERR at off (POP3, Redis before 6): ZT_REPLY_REFUSED when its first
 * ZT_ERR_SCAN bytes name a login, in any case: "auth" (Dovecot's "[AUTH]
 * Authentication failed", RFC 3206's code; Redis's "invalid password" has
 * "pass"), "pass", "logi" (Courier's "Login failed", "Bad login",
 * Exchange's "Logon failure") or "user" ("unknown user"); else 0.
 */
static __always_inline int zt_refusal_err(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[ZT_ERR_SCAN] = {};
	__u32 n = payload < ZT_ERR_SCAN ? payload : ZT_ERR_SCAN, i;

	/* "-ERR " and a word at least. Masked, then 1 added: the verifier keeps 1..32. */
	if (n < 9 || bpf_skb_load_bytes(skb, off, b, ((n - 1) & (ZT_ERR_SCAN - 1)) + 1))
		return 0;
	for (i = 5; i + 4 <= ZT_ERR_SCAN; i++) {
		__u32 w = zt_lower4(&b[i]);

		if (i + 4 > n || b[i] == '\r' || b[i] == '\n')
			return 0;
		if (w == ZT_W4('a', 'u', 't', 'h') || w == ZT_W4('p', 'a', 's', 's') ||
		    w == ZT_W4('l', 'o', 'g', 'i') || w == ZT_W4('u', 's', 'e', 'r'))
			return ZT_REPLY_REFUSED;
	}
	return 0;
}

/*
 * What the response whose first byte is at off (payload bytes long) says:
 * ZT_REPLY_REFUSED, ZT_REPLY_SERVED, ZT_REPLY_CHALLENGE, ZT_REPLY_PONG, or 0.
 */
static __always_inline int zt_refusal(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[12];

	if (payload < 4 || off > ZT_REFUSAL_MAX_OFF || bpf_skb_load_bytes(skb, off, b, 4))
		return 0;
	/* FTP 530 and SMTP 535: a reply code, then a space or (multi-line) a hyphen. */
	if (b[0] == '5' && b[1] == '3' && (b[2] == '0' || b[2] == '5') &&
	    (b[3] == ' ' || b[3] == '-'))
		return ZT_REPLY_REFUSED;
	/* Their opposites, FTP 230 (logged in) and SMTP 235 (authenticated): a login accepted. */
	if (b[0] == '2' && b[1] == '3' && (b[2] == '0' || b[2] == '5') &&
	    (b[3] == ' ' || b[3] == '-'))
		return ZT_REPLY_SERVED;
	if (b[0] == '-' && b[1] == 'W' && b[2] == 'R' && b[3] == 'O')
		return ZT_REPLY_REFUSED;
	if (b[0] == '-' && b[1] == 'E' && b[2] == 'R' && b[3] == 'R')
		return zt_refusal_err(skb, off, payload);
	/* MySQL's ERR packet: a length that fits, a sequence number, 0xff, code 1045 or 1698. */
	if (payload >= 7 && !b[2] && (b[0] | (__u32)b[1] << 8) >= 3 &&
	    (b[0] | (__u32)b[1] << 8) + 4 <= payload && !bpf_skb_load_bytes(skb, off, b, 7) &&
	    b[4] == 0xff && ((b[5] == 0x15 && b[6] == 0x04) || (b[5] == 0xa2 && b[6] == 0x06)))
		return ZT_REPLY_REFUSED;
	/* An ErrorResponse of PostgreSQL's, 'E' and a length under 64 KiB, says nothing else. */
	if (b[0] == 'E' && !b[1] && !b[2])
		return zt_refusal_pg(skb, off, payload);
	/* PostgreSQL: 'R', an int32 length (8 or more), an int32 code. */
	if (b[0] == 'R' && !b[1] && !b[2] && !b[3] && payload >= 9 &&
	    !bpf_skb_load_bytes(skb, off, b, 9) && b[4] >= 8 && !b[5] && !b[6] && !b[7] &&
	    (b[8] == 3 || b[8] == 5 || b[8] == 7 || b[8] == 9 || b[8] == 10))
		return ZT_REPLY_CHALLENGE;
	/* DNS over TCP: length, id, then QR set with opcode QUERY, Z clear; QDCOUNT 1. */
	if (payload >= 14 && (((__u32)b[0] << 8) | b[1]) + 2 == payload &&
	    !bpf_skb_load_bytes(skb, off, b, 8) && (b[4] & 0xf8) == 0x80 && !(b[5] & 0x40) &&
	    b[6] == 0 && b[7] == 1)
		return ZT_REPLY_SERVED;
	/* Redis: "+PONG\r\n", the whole answer to a PING (RESP2 and RESP3 alike). */
	if (b[0] == '+' && b[1] == 'P' && b[2] == 'O' && b[3] == 'N' && payload >= 7 &&
	    !bpf_skb_load_bytes(skb, off, b, 7) && b[4] == 'G' && b[5] == '\r' && b[6] == '\n')
		return ZT_REPLY_PONG;
	if (b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P')
		return zt_refusal_imap(skb, off, payload);
	if (payload < 12 || bpf_skb_load_bytes(skb, off, b, 12))
		return 0;
	if (b[4] != '/' || b[5] != '1' || b[6] != '.' || b[8] != ' ')
		return 0;
	/* "HTTP/1.x 401" or "HTTP/1.x 407" */
	if (b[9] == '4' && b[10] == '0' && (b[11] == '1' || b[11] == '7'))
		return ZT_REPLY_REFUSED;
	/* "HTTP/1.x 2xx", and "HTTP/1.x 304": a conditional GET's copy is still good. */
	if ((b[9] == '2' && b[10] >= '0' && b[10] <= '9' && b[11] >= '0' && b[11] <= '9') ||
	    (b[9] == '3' && b[10] == '0' && b[11] == '4'))
		return ZT_REPLY_SERVED;
	return 0;
}

#endif
