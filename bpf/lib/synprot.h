/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SYN protection of a destination (include/ztagent.h, "Activity"): verified
 * clients pass; unknown sources get a challenge, a SYN-ACK from XDP whose
 * acknowledgement number is a keyed cookie that cannot match their SYN. A
 * real TCP answers it with an RST carrying the cookie as its sequence
 * number (RFC 793, SYN-SENT: an unacceptable ACK gets <SEQ=SEG.ACK><RST>),
 * which verifies the source; Linux then resends its SYN after a couple of
 * jiffies, and that one passes. Spoofed sources never see the challenge.
 *
 * The cookie is SipHash-2-4 (key in guard_cfg, drawn by the daemon) of the
 * 4-tuple and a 4.3 s time slot; an answer is good in its slot and the next.
 * It is 32 bits, and one wrong guess costs the attacker nothing but one
 * more RST: the rate limits are what stop a guessing flood (2^31 tries on
 * average per source).
 *
 * Why not SYN cookies that complete the connection (bpf_tcp_raw_gen_syncookie
 * with netfilter SYNPROXY, as the kernel's xdp_synproxy selftest does): the
 * endpoint behind the node never saw that SYN, so something on the node
 * has to open the connection to it and translate sequence numbers for the
 * connection's whole life. That is netfilter SYNPROXY with conntrack in the
 * forward path of every protected destination, rules the agent would own
 * in the node's tables beside kube-proxy's, conntrack kfuncs (6.0+) in XDP
 * to tell established ACKs from cookie ACKs, and every connection rewritten
 * while protection is on. The challenge needs none of that, works on any
 * kernel the guard runs on, and costs a new client one round trip plus the
 * SYN retry (a few ms on Linux) only while its destination is under flood.
 */
#ifndef ZT_BPF_SYNPROT_H
#define ZT_BPF_SYNPROT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"
#include "lib/guard.h"

/* The program's context: xdp_guard's, or tc_guard's (ZT_GUARD_TC). */
#ifndef ZT_CTX
#define ZT_CTX struct xdp_md
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct zt_addr_key);
	__type(value, struct zt_verified_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} syn_verified SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct zt_addr_key);
	__type(value, struct zt_protect_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} syn_protect SEC(".maps");

#define ZT_COOKIE_SLOT_SHIFT 32 /* 4.3 s */
/* tc_endpoint refreshes a verified client at most this often. */
#define ZT_VERIFIED_REFRESH_NS (10ULL * 1000000000ULL)

static __always_inline int zt_syn_verified(__u8 family, const __u32 *saddr,
					   const struct zt_guard_cfg *cfg, __u64 now)
{
	struct zt_addr_key k;
	struct zt_verified_val *v;

	zt_addr_key_fill(&k, family, saddr);
	v = bpf_map_lookup_elem(&syn_verified, &k);
	if (!v)
		return 0;
	/* The daemon's clock reads finer than the coarse one here: its "since" may be ahead. */
	return !cfg->verified_ttl_ns || now <= v->since_ns ||
	       now - v->since_ns < cfg->verified_ttl_ns;
}

static __always_inline void zt_syn_verified_add(__u8 family, const __u32 *saddr, __u64 now,
						__u32 how)
{
	struct zt_verified_val v = { .since_ns = now, .how = how }, *old;
	struct zt_addr_key k;

	zt_addr_key_fill(&k, family, saddr);
	old = bpf_map_lookup_elem(&syn_verified, &k);
	if (old && (now <= old->since_ns || now - old->since_ns < ZT_VERIFIED_REFRESH_NS))
		return;
	bpf_map_update_elem(&syn_verified, &k, &v, BPF_ANY);
}

static __always_inline int zt_syn_protected(__u8 family, const __u32 *daddr, __u64 now)
{
	struct zt_addr_key k;
	struct zt_protect_val *v;

	zt_addr_key_fill(&k, family, daddr);
	v = bpf_map_lookup_elem(&syn_protect, &k);
	return v && (!v->expires_ns || v->expires_ns > now);
}

#define ZT_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define ZT_SIPROUND                     \
	do {                            \
		v0 += v1;               \
		v1 = ZT_ROTL64(v1, 13); \
		v1 ^= v0;               \
		v0 = ZT_ROTL64(v0, 32); \
		v2 += v3;               \
		v3 = ZT_ROTL64(v3, 16); \
		v3 ^= v2;               \
		v0 += v3;               \
		v3 = ZT_ROTL64(v3, 21); \
		v3 ^= v0;               \
		v2 += v1;               \
		v1 = ZT_ROTL64(v1, 17); \
		v1 ^= v2;               \
		v2 = ZT_ROTL64(v2, 32); \
	} while (0)

/* SipHash-2-4 of n (<= 5) 64-bit words. */
static __always_inline __u64 zt_siphash(const __u64 *m, int n, __u64 k0, __u64 k1)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	__u64 b = (__u64)(n * 8) << 56;
	int i;

#pragma unroll
	for (i = 0; i < 5; i++) {
		if (i >= n)
			break;
		v3 ^= m[i];
		ZT_SIPROUND;
		ZT_SIPROUND;
		v0 ^= m[i];
	}
	v3 ^= b;
	ZT_SIPROUND;
	ZT_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	ZT_SIPROUND;
	ZT_SIPROUND;
	ZT_SIPROUND;
	ZT_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The cookie of a client's SYN (addresses network order, ports host order) in a slot. */
static __always_inline __u64 zt_syn_cookie(const struct zt_pkt *p, const struct zt_guard_cfg *cfg,
					   __u64 slot)
{
	__u64 m[5];
	__u64 tail = (__u64)p->sport << 16 | p->dport | slot << 32;

	if (p->family == 4) {
		m[0] = (__u64)p->saddr[0] | (__u64)p->daddr[0] << 32;
		m[1] = tail;
		return zt_siphash(m, 2, cfg->cookie_key[0], cfg->cookie_key[1]);
	}
	m[0] = (__u64)p->saddr[0] | (__u64)p->saddr[1] << 32;
	m[1] = (__u64)p->saddr[2] | (__u64)p->saddr[3] << 32;
	m[2] = (__u64)p->daddr[0] | (__u64)p->daddr[1] << 32;
	m[3] = (__u64)p->daddr[2] | (__u64)p->daddr[3] << 32;
	m[4] = tail;
	return zt_siphash(m, 5, cfg->cookie_key[0], cfg->cookie_key[1]);
}

/*
 * Is v a half of the cookie of p's tuple in the current slot or the one
 * before? high: the high half (a challenge's sequence number), else the
 * low half with its last bit free (the ack a challenge carried, which
 * zt_chal_ack may have flipped; a client's RST answers with it).
 */
static __always_inline int zt_syn_cookie_recent(const struct zt_pkt *p,
						const struct zt_guard_cfg *cfg, __u64 now, __u32 v,
						int high)
{
	__u64 slot = now >> ZT_COOKIE_SLOT_SHIFT, c;
	int i;

	for (i = 0; i < 2; i++) {
		c = zt_syn_cookie(p, cfg, slot - i);
		if (high ? v == (__u32)(c >> 32) : (v | 1) == ((__u32)c | 1))
			return 1;
	}
	return 0;
}

static __always_inline __u16 zt_csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Ones' complement sum of n 16-bit words (byte order does not matter to it). */
static __always_inline __u64 zt_csum_words(const __u16 *w, int n)
{
	__u64 s = 0;
	int i;

#pragma unroll
	for (i = 0; i < 20; i++) {
		if (i >= n)
			break;
		s += w[i];
	}
	return s;
}

#define ZT_CHAL_MAX_L4_OFF 64 /* Ethernet, two VLAN tags, a 40-byte IPv6 header */

/* IPv4 without options, IPv6 without extension headers: what a challenge is built from. */
static __always_inline int zt_syn_challengeable(const struct zt_pkt *p)
{
	__u32 hl = p->family == 4 ? 20 : 40;

	return (p->flags & ZT_PKT_L4) && p->l4_off == p->l3_off + hl &&
	       p->l4_off <= ZT_CHAL_MAX_L4_OFF && p->l3_off >= ETH_HLEN;
}

/*
 * The challenge's headers, written over the SYN's (IPv4 without options,
 * IPv6 without extension headers): addresses and ports swapped, SYN-ACK
 * with ack = the cookie, no options, no payload. The IP helpers return the
 * pseudo-header's sum for the TCP checksum. xdp_guard rewrites the frame
 * in place; tc_guard rewrites copies and stores them (below).
 */
static __always_inline __u64 zt_chal_ip4(struct iphdr *ip)
{
	__be32 a = ip->saddr;

	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->tot_len = bpf_htons(20 + sizeof(struct tcphdr));
	ip->tos = 0;
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->check = 0;
	ip->check = zt_csum_fold(zt_csum_words((const __u16 *)ip, 10));
	return (__u64)ip->saddr + ip->daddr;
}

static __always_inline __u64 zt_chal_ip6(struct ipv6hdr *ip6)
{
	struct in6_addr a = ip6->saddr;

	ip6->saddr = ip6->daddr;
	ip6->daddr = a;
	ip6->payload_len = bpf_htons(sizeof(struct tcphdr));
	ip6->hop_limit = 64;
	return zt_csum_words((const __u16 *)&ip6->saddr, 16);
}

static __always_inline void zt_chal_tcp(struct tcphdr *th, __u64 c, __u32 ack, __u64 sum)
{
	__be16 port = th->source;

	th->source = th->dest;
	th->dest = port;
	th->seq = bpf_htonl((__u32)(c >> 32));
	th->ack_seq = bpf_htonl(ack);
	((__u8 *)th)[12] = 5 << 4;
	((__u8 *)th)[13] = 0x12; /* SYN, ACK */
	th->window = bpf_htons(1024);
	th->urg_ptr = 0;
	th->check = 0;
	sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*th));
	sum += zt_csum_words((const __u16 *)th, 10);
	th->check = zt_csum_fold(sum);
}

/* The cookie's ack: never the one value that would complete the handshake. */
static __always_inline __u32 zt_chal_ack(__u64 c, __be32 syn_seq)
{
	__u32 ack = (__u32)c;

	return ack == bpf_ntohl(syn_seq) + 1 ? ack ^ 1 : ack;
}

#ifdef ZT_GUARD_TC
/*
 * tc_guard's challenge. No direct write into the packet anywhere in the
 * program: one would make the verifier put an unclone in front of it, and
 * a TCP sender's segments arrive cloned (its retransmit queue keeps them),
 * so every packet passed would pay for a copy of its head. The headers are
 * read into copies, rewritten and stored back (bpf_skb_store_bytes makes
 * this one skb writable); BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE
 * skb->csum right for the bytes stored (the trim of a longer SYN makes such
 * an skb CHECKSUM_NONE anyway). Returns 0 when the frame is ready to go
 * back out, -1 when it cannot be challenged.
 */
static __always_inline int zt_syn_challenge(struct __sk_buff *ctx, const struct zt_pkt *p,
					    const struct zt_guard_cfg *cfg, __u64 now)
{
	__u32 l3 = p->l3_off, l4 = p->l4_off;
	__u64 c = zt_syn_cookie(p, cfg, now >> ZT_COOKIE_SLOT_SHIFT), sum;
	__u8 mac[2 * ETH_ALEN], t[ETH_ALEN];
	struct tcphdr th;

	if (!zt_syn_challengeable(p) || bpf_skb_load_bytes(ctx, l4, &th, sizeof(th)))
		return -1;
	if (ctx->len > l4 + sizeof(th) && bpf_skb_change_tail(ctx, l4 + sizeof(th), 0))
		return -1;
	if (bpf_skb_load_bytes(ctx, 0, mac, sizeof(mac)))
		return -1;
	__builtin_memcpy(t, mac, ETH_ALEN);
	__builtin_memcpy(mac, mac + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(mac + ETH_ALEN, t, ETH_ALEN);
	if (bpf_skb_store_bytes(ctx, 0, mac, sizeof(mac), 0))
		return -1;
	if (p->family == 4) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(ctx, l3, &ip, sizeof(ip)))
			return -1;
		sum = zt_chal_ip4(&ip);
		if (bpf_skb_store_bytes(ctx, l3, &ip, sizeof(ip), BPF_F_RECOMPUTE_CSUM))
			return -1;
	} else {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(ctx, l3, &ip6, sizeof(ip6)))
			return -1;
		sum = zt_chal_ip6(&ip6);
		if (bpf_skb_store_bytes(ctx, l3, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM))
			return -1;
	}
	zt_chal_tcp(&th, c, zt_chal_ack(c, th.seq), sum);
	return bpf_skb_store_bytes(ctx, l4, &th, sizeof(th), BPF_F_RECOMPUTE_CSUM) ? -1 : 0;
}
#else
/*
 * Turns the SYN in ctx into its challenge, in place (VLAN tags kept).
 * Returns 0 when the frame is ready for XDP_TX, -1 when it cannot be
 * challenged (IPv4 options, IPv6 extension headers): the caller drops it
 * instead.
 */
static __always_inline int zt_syn_challenge(struct xdp_md *ctx, const struct zt_pkt *p,
					    const struct zt_guard_cfg *cfg, __u64 now)
{
	__u32 l3 = p->l3_off, l4 = p->l4_off, ack, cur;
	__u64 c = zt_syn_cookie(p, cfg, now >> ZT_COOKIE_SLOT_SHIFT), sum;
	void *data, *data_end;
	__u8 mac[ETH_ALEN];
	struct tcphdr *th;

	if (!zt_syn_challengeable(p))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	th = data + l4;
	if ((void *)(th + 1) > data_end)
		return -1;
	ack = zt_chal_ack(c, th->seq);
	/* The whole frame (fragments too when the parse was told their length). */
	cur = p->len ? p->len : (__u32)(data_end - data);
	if (cur > l4 + sizeof(*th)) {
		if (bpf_xdp_adjust_tail(ctx, (int)(l4 + sizeof(*th)) - (int)cur))
			return -1;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
	}
	if (l4 > ZT_CHAL_MAX_L4_OFF || data + l4 + sizeof(*th) > data_end)
		return -1;
	{
		struct ethhdr *eth = data;

		if ((void *)(eth + 1) > data_end)
			return -1;

		__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	}
	th = data + l4;
	/* Bounded again here: the verifier does not carry l4 == l3 + hl across the spill. */
	if (l3 > ZT_CHAL_MAX_L4_OFF - 20)
		return -1;
	if (p->family == 4) {
		struct iphdr *ip = data + l3;

		if ((void *)(ip + 1) > data_end)
			return -1;
		sum = zt_chal_ip4(ip);
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		sum = zt_chal_ip6(ip6);
	}
	zt_chal_tcp(th, c, ack, sum);
	return 0;
}
#endif

/*
 * A pure RST towards a destination that was sent challenges lately: 1 when
 * its sequence number is the cookie of this tuple in the current or the
 * previous slot (the source is then verified), 0 otherwise.
 */
static __always_inline int zt_syn_answer(ZT_CTX *ctx, const struct zt_pkt *p,
					 const struct zt_guard_cfg *cfg, __u64 now)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4 = p->l4_off, seq;
	struct tcphdr *th;

	if (l4 > ZT_CHAL_MAX_L4_OFF)
		return 0;
	th = data + l4;
	if ((void *)(th + 1) > data_end)
		return 0;
	seq = bpf_ntohl(th->seq);
	if (!zt_syn_cookie_recent(p, cfg, now, seq, 0)) {
		zt_act_stat(ZT_AS_BAD_ANSWER);
		return 0;
	}
	zt_syn_verified_add(p->family, p->saddr, now, ZT_VER_CHALLENGE);
	zt_act_stat(ZT_AS_VERIFIED_CHALLENGE);
	return 1;
}

#endif /* ZT_BPF_SYNPROT_H */
