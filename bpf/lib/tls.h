/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * requireTLS at the destination: the server must negotiate TLS 1.3.
 *
 * A flow that an allow rule with requireTLS admitted into a local pod is
 * marked ZT_CT_TLS_CHECK in its conntrack entry (bpf/lib/mtls.h). The first
 * TCP segment with payload that the pod (the server) sends back is read
 * here. It must start with a TLS handshake record (content type 22, legacy
 * version 3.x) holding a ServerHello (handshake type 2) whose extensions
 * include supported_versions (0x002b) selecting 0x0304. A HelloRetryRequest
 * has the same handshake type and must carry supported_versions = 0x0304
 * too (RFC 8446 4.1.4), and the client refuses a later ServerHello of
 * another version, so it passes like a ServerHello.
 *
 * Fail closed: anything else drops the flow for good: a ServerHello without
 * supported_versions (TLS 1.2 or older) or with another version, a first
 * payload that is not such a record (clear text, an alert, another
 * handshake message), and a ServerHello whose extensions go on past the end
 * of this segment before supported_versions shows up. Servers send the
 * ServerHello (at most a few hundred bytes, about 1.2 kB with a
 * post-quantum key share) in one write at the start of a fresh connection,
 * so it fits the first segment on any MSS the pods use; reassembling it
 * across segments is not attempted. At most ZT_TLS_MAX_EXT extensions are
 * walked (a ServerHello has 2-3 in TLS 1.3, rarely more than 10 in 1.2).
 *
 * Bytes are read with bpf_skb_load_bytes, which also reaches paged data
 * (GSO segments from the pod); offsets are bounded explicitly so the
 * verifier sees every read's limits.
 */
#ifndef ZT_BPF_TLS_H
#define ZT_BPF_TLS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"

#define ZT_TLS_MAX_EXT 24
#define ZT_TLS_CT_HANDSHAKE 22
#define ZT_TLS_HS_SERVER_HELLO 2
#define ZT_TLS_EXT_SUPPORTED_VERSIONS 0x002b
#define ZT_TLS_VERSION_13 0x0304
/* Record header (5) + handshake header (4) + legacy_version (2) + random (32) + session_id length (1). */
#define ZT_TLS_SH_FIXED 44

enum zt_tls_result {
	ZT_TLS_13 = 0, /* TLS 1.3 negotiated */
	ZT_TLS_OLD, /* a ServerHello of another version */
	ZT_TLS_NOT_TLS, /* not a handshake record holding a ServerHello */
	ZT_TLS_SPLIT, /* the ServerHello goes on past this segment */
};

/*
 * The server's first payload: off bytes into the skb (the TCP payload's
 * start), len bytes of it in this segment. Returns enum zt_tls_result.
 */
__noinline int zt_tls_server_hello(struct __sk_buff *skb, __u32 off, __u32 len)
{
	__u8 h[ZT_TLS_SH_FIXED], b[5];
	__u32 rec_len, hs_len, end, pos, ext_end;
	int i;

	if (!skb)
		return ZT_TLS_NOT_TLS;
	/* Offsets stay far below 64 KiB past the headers: plain bounds for the verifier. */
	if (off > 0xffff || len > 0xffff)
		return ZT_TLS_SPLIT;
	if (len < 5) {
		/* Not even a record header: the record starts like one, or it is clear text. */
		if (len == 0 || bpf_skb_load_bytes(skb, off, b, 1) || b[0] != ZT_TLS_CT_HANDSHAKE)
			return ZT_TLS_NOT_TLS;
		return ZT_TLS_SPLIT;
	}
	if (bpf_skb_load_bytes(skb, off, h, 5))
		return ZT_TLS_NOT_TLS;
	if (h[0] != ZT_TLS_CT_HANDSHAKE || h[1] != 3)
		return ZT_TLS_NOT_TLS;
	rec_len = (__u32)h[3] << 8 | h[4];
	if (rec_len < 4)
		return ZT_TLS_NOT_TLS;
	if (len < ZT_TLS_SH_FIXED) {
		/* The handshake type can be read: an early answer for what is not a ServerHello. */
		if (len >= 6 && !bpf_skb_load_bytes(skb, off + 5, b, 1) &&
		    b[0] != ZT_TLS_HS_SERVER_HELLO)
			return ZT_TLS_NOT_TLS;
		return ZT_TLS_SPLIT;
	}
	if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
		return ZT_TLS_NOT_TLS;
	if (h[5] != ZT_TLS_HS_SERVER_HELLO)
		return ZT_TLS_NOT_TLS;
	hs_len = (__u32)h[6] << 16 | (__u32)h[7] << 8 | h[8];
	/* A ServerHello is never coalesced with a fragment of itself: its body fits its record. */
	if (hs_len + 4 > rec_len || h[43] > 32)
		return ZT_TLS_NOT_TLS;
	/* Everything below is read within the ServerHello and within this segment. */
	end = 9 + hs_len;
	pos = ZT_TLS_SH_FIXED + h[43];
	/* cipher_suite (2), legacy_compression_method (1), extensions length (2) */
	if (pos + 5 > end)
		return ZT_TLS_OLD; /* no extensions at all: TLS 1.2 or older */
	if (pos + 5 > len)
		return ZT_TLS_SPLIT;
	if (bpf_skb_load_bytes(skb, off + pos, b, 5))
		return ZT_TLS_NOT_TLS;
	ext_end = pos + 5 + ((__u32)b[3] << 8 | b[4]);
	if (ext_end > end)
		return ZT_TLS_NOT_TLS;
	pos += 5;
	for (i = 0; i < ZT_TLS_MAX_EXT; i++) {
		__u32 type, elen;

		if (pos + 4 > ext_end)
			return ZT_TLS_OLD; /* every extension walked: no supported_versions */
		if (pos + 4 > len)
			return ZT_TLS_SPLIT;
		if (pos > 0xffff || bpf_skb_load_bytes(skb, off + pos, b, 4))
			return ZT_TLS_NOT_TLS;
		type = (__u32)b[0] << 8 | b[1];
		elen = (__u32)b[2] << 8 | b[3];
		pos += 4;
		if (pos + elen > ext_end)
			return ZT_TLS_NOT_TLS;
		if (type == ZT_TLS_EXT_SUPPORTED_VERSIONS) {
			/* In a ServerHello it is the one selected version, two bytes. */
			if (elen != 2)
				return ZT_TLS_NOT_TLS;
			if (pos + 2 > len)
				return ZT_TLS_SPLIT;
			if (bpf_skb_load_bytes(skb, off + pos, b, 2))
				return ZT_TLS_NOT_TLS;
			return ((__u32)b[0] << 8 | b[1]) == ZT_TLS_VERSION_13 ? ZT_TLS_13 :
										ZT_TLS_OLD;
		}
		pos += elen;
	}
	/* More extensions than any ServerHello has: not judged, not passed. */
	return ZT_TLS_NOT_TLS;
}

#endif /* ZT_BPF_TLS_H */
