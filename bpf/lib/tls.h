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

/*
 * A refusal resets both ends at once (issue 14: never a half-open socket).
 * The refused segment (the server's first payload, from the pod, on the
 * veth's TC ingress) is cut to its TCP header and made into two resets:
 *   to the server pod: a copy, addresses and ports swapped, seq = the
 *     segment's ack (the server's rcv_nxt, exact, so RFC 5961 takes it at
 *     once), sent back out of the same veth with ZT_MTLS_MARK_RST, which
 *     tc_to_pod lets through on a TLS_BAD flow;
 *   to the client: the segment itself, seq = its own seq (the client's
 *     rcv_nxt: nothing came before the ServerHello), RST|ACK; the caller
 *     steers it like any packet of the flow, to the agent's socket, whose
 *     relay resets the client pod's connection (through the tunnel too).
 * TCP options and payload go; the IP header stays (its length and checksum
 * mended). The TCP checksum is written in two steps so that it is right
 * whatever the skb's ip_summed: from a pod's veth it is usually
 * CHECKSUM_PARTIAL (the field then holds the pseudo-header sum only, the
 * rest is never verified on local delivery), from elsewhere a full one:
 * bpf_l4_csum_replace applies a BPF_F_PSEUDO_HDR diff in both cases and a
 * plain one only when the checksum is not partial.
 *
 * Helpers only (no direct packet access): bpf_skb_change_tail (4.9; it
 * linearizes and drops GSO), bpf_clone_redirect, bpf_csum_diff,
 * bpf_l3/l4_csum_replace: all in kernels well before 5.15.
 * Returns 0 when both resets went out, 1 when only the client's did (the
 * copy could not be sent), -errno when the segment could not be rewritten
 * (then the caller drops it, as before).
 */
#define ZT_TLS_TCP_CSUM_OFF 16

/* TCP header of a reset: ports and numbers in network order. */
static __always_inline void zt_tls_rst_hdr(__u8 *h, const __u8 *sp, const __u8 *dp, const __u8 *seq,
					   const __u8 *ack, __u8 flags)
{
	__builtin_memset(h, 0, 20);
	__builtin_memcpy(h, sp, 2);
	__builtin_memcpy(h + 2, dp, 2);
	__builtin_memcpy(h + 4, seq, 4);
	if (ack)
		__builtin_memcpy(h + 8, ack, 4);
	h[12] = 5 << 4;
	h[13] = flags;
}

/* Writes TCP header h at l4_off with its checksum; pseudo: the pseudo-header's sum. */
static __always_inline int zt_tls_put_tcp(struct __sk_buff *skb, __u32 l4_off, __u8 *h,
					  __s64 pseudo)
{
	__s64 hs = bpf_csum_diff(0, 0, (__be32 *)h, 20, 0);

	if (hs < 0 || bpf_skb_store_bytes(skb, l4_off, h, 20, 0))
		return -1;
	if (bpf_l4_csum_replace(skb, l4_off + ZT_TLS_TCP_CSUM_OFF, 0, (__u32)pseudo,
				BPF_F_PSEUDO_HDR))
		return -1;
	return bpf_l4_csum_replace(skb, l4_off + ZT_TLS_TCP_CSUM_OFF, 0, (__u32)hs, 0) ? -1 : 0;
}

/* The refusal's working bytes: off the stack, which tc_endpoint's caller nearly fills. */
struct zt_tls_rst_buf {
	__u8 eth[12], ethx[12], tcp[20], h[20], ps[40],
		a[32]; /* 4-byte aligned, for bpf_csum_diff */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_tls_rst_buf);
} tls_rst_buf SEC(".maps");

__noinline int zt_tls_refuse(struct __sk_buff *skb, __u32 l3_off, __u32 l4_off, __u32 family)
{
	struct zt_tls_rst_buf *w;
	__u8 *eth, *ethx, *tcp, *h, *ps, *a;
	__u32 aoff, new_len, mark, zero = 0;
	__s64 pseudo;
	int sent;

	if (!skb || (family != 4 && family != 6))
		return -22;
	w = bpf_map_lookup_elem(&tls_rst_buf, &zero);
	if (!w)
		return -12;
	__builtin_memset(w, 0, sizeof(*w));
	eth = w->eth;
	ethx = w->ethx;
	tcp = w->tcp;
	h = w->h;
	ps = w->ps;
	a = w->a;
	mark = skb->mark;
	/* Plain bounds for the verifier: headers sit well inside the first KiB. */
	if (l3_off < 12 || l3_off > 64 || l4_off > 1024 || l4_off < l3_off + 20)
		return -22;
	aoff = l3_off + (family == 4 ? 12 : 8);
	if (bpf_skb_load_bytes(skb, 0, eth, 12) || bpf_skb_load_bytes(skb, l4_off, tcp, 20))
		return -14;
	if (family == 4) {
		if (bpf_skb_load_bytes(skb, aoff, a, 8))
			return -14;
	} else if (bpf_skb_load_bytes(skb, aoff, a, 32)) {
		return -14;
	}
	new_len = l4_off + 20;
	if (bpf_skb_change_tail(skb, new_len, 0))
		return -12;
	if (family == 4) {
		__u16 old_tot, tot = bpf_htons((__u16)(new_len - l3_off));

		if (bpf_skb_load_bytes(skb, l3_off + 2, &old_tot, 2) ||
		    bpf_l3_csum_replace(skb, l3_off + 10, old_tot, tot, 2) ||
		    bpf_skb_store_bytes(skb, l3_off + 2, &tot, 2, 0))
			return -14;
		/* Pseudo header: saddr, daddr, 0, proto, TCP length (the order of the addresses does not change the sum). */
		__builtin_memcpy(ps, a, 8);
		ps[9] = 6;
		ps[11] = 20;
		pseudo = bpf_csum_diff(0, 0, (__be32 *)ps, 12, 0);
	} else {
		/* IPv6 payload length: extension headers (l4_off - l3_off - 40) and TCP. */
		__u16 pl = bpf_htons((__u16)(new_len - l3_off - 40));

		if (bpf_skb_store_bytes(skb, l3_off + 4, &pl, 2, 0))
			return -14;
		__builtin_memcpy(ps, a, 32);
		ps[35] = 20;
		ps[39] = 6;
		pseudo = bpf_csum_diff(0, 0, (__be32 *)ps, 40, 0);
	}
	if (pseudo < 0)
		return -14;

	/* The server's reset: back out of the veth it came from. */
	__builtin_memcpy(ethx, eth + 6, 6);
	__builtin_memcpy(ethx + 6, eth, 6);
	zt_tls_rst_hdr(h, tcp + 2, tcp, tcp + 8, 0, 0x04);
	sent = bpf_skb_store_bytes(skb, 0, ethx, 12, 0) == 0;
	if (sent && family == 4)
		sent = bpf_skb_store_bytes(skb, aoff, a + 4, 4, 0) == 0 &&
		       bpf_skb_store_bytes(skb, aoff + 4, a, 4, 0) == 0;
	else if (sent)
		sent = bpf_skb_store_bytes(skb, aoff, a + 16, 16, 0) == 0 &&
		       bpf_skb_store_bytes(skb, aoff + 16, a, 16, 0) == 0;
	sent = sent && zt_tls_put_tcp(skb, l4_off, h, pseudo) == 0;
	if (sent) {
		skb->mark = ZT_MTLS_MARK_RST;
		sent = bpf_clone_redirect(skb, skb->ifindex, 0) == 0;
		skb->mark = mark;
	}

	/* The client's reset: the segment itself, on its way. */
	zt_tls_rst_hdr(h, tcp, tcp + 2, tcp + 4, tcp + 8, 0x14);
	if (bpf_skb_store_bytes(skb, 0, eth, 12, 0) ||
	    bpf_skb_store_bytes(skb, aoff, a, family == 4 ? 8 : 32, 0) ||
	    zt_tls_put_tcp(skb, l4_off, h, pseudo))
		return -14;
	return sent ? 0 : 1;
}

#endif /* ZT_BPF_TLS_H */
