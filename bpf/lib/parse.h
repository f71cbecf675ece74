/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing shared by the XDP and TC programs: Ethernet with up to two
 * VLAN tags (802.1Q / 802.1ad in either position), IPv4 (options,
 * fragments), IPv6 (a bounded walk of extension headers), TCP, UDP, ICMP
 * and ICMPv6. It works on (data, data_end) only, so any program type that
 * has direct packet access can use it.
 *
 * zt_parse() returns ZT_XR_OK, ZT_XR_NOT_IP or the ZT_XR_BAD_* reason that
 * names the header found truncated or malformed. What was parsed before the
 * failure stays in struct zt_pkt (a drop event for a bad TCP header still
 * carries the addresses). The addresses (and family) are known as soon as
 * the fixed IP header is in the frame with the right version (and, for
 * IPv4, an IHL of at least 5): a wrong length field or a bad extension
 * header after that still leaves family set, so the caller can hold a
 * malformed packet's source against its lists.
 */
#ifndef ZT_BPF_PARSE_H
#define ZT_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#ifdef __bpf__
#include <bpf/bpf_helpers.h>
#elif !defined(__always_inline)
/* The userspace tests compile the parser too (it calls no helper). */
#define __always_inline inline __attribute__((always_inline))
#endif

#include "ztagent.h"

#define ZT_MAX_VLANS 2
#define ZT_MAX_IP6_EXT 8
/*
 * Headers are looked for no deeper than this into the frame. Far beyond any
 * linear XDP buffer, and it keeps the verifier's offsets under 64 KiB.
 */
#define ZT_MAX_HDR_OFF 0x3fff

/*
 * ICMP and ICMPv6 share this 8-byte layout. Defined here rather than taken
 * from <linux/icmp.h>, which includes <linux/if.h> and through it glibc's
 * <sys/socket.h>: BPF objects are built against kernel UAPI headers only.
 */
struct zt_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

#define ZT_ICMP_ECHOREPLY 0
#define ZT_ICMP_ECHO 8
#define ZT_ICMP_TIMESTAMP 13
#define ZT_ICMP_TIMESTAMPREPLY 14
#define ZT_ICMPV6_ECHO_REQUEST 128
#define ZT_ICMPV6_ECHO_REPLY 129

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_MH
#define IPPROTO_MH 135 /* IPv6 mobility header */
#endif

#define ZT_IP4_OFFSET_MASK 0x1fff
#define ZT_IP4_MF 0x2000
#define ZT_IP6_OFFSET_MASK 0xfff8
#define ZT_IP6_MF 0x0001

/* struct zt_pkt.flags */
#define ZT_PKT_FRAGMENT 0x01 /* any fragment, the first included */
#define ZT_PKT_LATER_FRAGMENT 0x02 /* fragment offset != 0: no L4 header */
#define ZT_PKT_L4 0x04 /* an L4 header was parsed (sport/dport are valid) */

struct zt_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Every IPv6 extension header starts with these two bytes. */
struct zt_ip6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct zt_ip6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

struct zt_pkt {
	__u32 saddr[4]; /* network byte order; IPv4 in saddr[0] */
	__u32 daddr[4];
	__u16 sport; /* host byte order; ICMP/ICMPv6: type */
	__u16 dport; /* host byte order; ICMP/ICMPv6: code */
	__u16 l3_off; /* from data; valid once family != 0 */
	__u16 l4_off; /* from data; valid with ZT_PKT_L4 */
	__u16 vlan[ZT_MAX_VLANS]; /* VLAN ids, outer first */
	__u8 n_vlans;
	__u8 family; /* 4 or 6 once the fixed IP header was read (see above); else 0 */
	/*
	 * IPPROTO_*. IPv6: the first header that is not an extension header;
	 * in a later fragment, the fragment header's next header; with
	 * ZT_XR_BAD_IP6_EXT, the extension header that was cut or one too many;
	 * with ZT_XR_BAD_IP4 or _IP6 and family set, the IP header's own field.
	 */
	__u8 proto;
	__u8 tcp_flags; /* TCP: byte 13 of the header (CWR..FIN) */
	__u8 flags; /* ZT_PKT_* */
	__u8 tcp_doff; /* TCP: header length in 32-bit words */
	/*
	 * Set by the caller: the whole packet's length when it can be longer
	 * than data_end - data (TC: skb->len of a GSO or paged skb); 0 when
	 * data_end ends the packet (XDP). Only length fields are checked
	 * against it; every header read stays within data_end.
	 */
	__u32 len;
	/* IP header and payload, as the IP header says (IPv6: 40 + payload length). */
	__u32 ip_len;
};

/* The kernel's address families (<sys/socket.h> is not for BPF objects). */
#define ZT_AF_INET 2
#define ZT_AF_INET6 10

/*
 * The tuple of a parsed packet as the kernel's socket lookups take it
 * (bpf_sk_lookup_tcp and kin: the packet's source is the socket's peer);
 * returns its size, 0 for a packet of no family.
 */
static __always_inline __u32 zt_sock_tuple(struct bpf_sock_tuple *t, const struct zt_pkt *p)
{
	if (p->family == 4) {
		t->ipv4.saddr = p->saddr[0];
		t->ipv4.daddr = p->daddr[0];
		t->ipv4.sport = bpf_htons(p->sport);
		t->ipv4.dport = bpf_htons(p->dport);
		return sizeof(t->ipv4);
	}
	if (p->family == 6) {
		__builtin_memcpy(t->ipv6.saddr, p->saddr, 16);
		__builtin_memcpy(t->ipv6.daddr, p->daddr, 16);
		t->ipv6.sport = bpf_htons(p->sport);
		t->ipv6.dport = bpf_htons(p->dport);
		return sizeof(t->ipv6);
	}
	return 0;
}

/* TCP payload bytes (0 for other protocols and when unknown). */
static __always_inline __u32 zt_tcp_payload(const struct zt_pkt *p)
{
	__u32 end = (__u32)p->l3_off + p->ip_len, hdr = (__u32)p->l4_off + p->tcp_doff * 4;

	if (p->proto != IPPROTO_TCP || !(p->flags & ZT_PKT_L4) || end <= hdr)
		return 0;
	return end - hdr;
}

/* SCTP's common header (RFC 9260 3.1): ports, verification tag, checksum. */
#define ZT_SCTP_HDR_LEN 12

/*
 * Whether n bytes at l4 lie inside the IP packet as its header says (the
 * caller checks them against data_end). A first fragment that cuts the L4
 * header short, RFC 1858's tiny fragment (nmap -f), is malformed also
 * where Ethernet padding follows it. An IPv6 payload length of 0 (a
 * jumbogram, or BIG TCP's GSO packets) bounds nothing.
 */
static __always_inline int zt_l4_in_ip(void *data, void *l4, const struct zt_pkt *p, __u32 n)
{
	if (p->family == 6 && p->ip_len == 40)
		return 1;
	return (__u32)(l4 - data) + n <= (__u32)p->l3_off + p->ip_len;
}

/* TCP, UDP, SCTP: the ports, first 4 bytes of each header, whenever they are there. */
static __always_inline void zt_parse_ports(void *data, void *l4, void *data_end, struct zt_pkt *p)
{
	__be16 *pp = l4;

	if ((void *)(pp + 2) > data_end || !zt_l4_in_ip(data, l4, p, 4))
		return;
	p->sport = bpf_ntohs(pp[0]);
	p->dport = bpf_ntohs(pp[1]);
}

static __always_inline int zt_parse_l4(void *data, void *l4, void *data_end, struct zt_pkt *p)
{
	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		__u32 doff;

		/* A header cut short still names its ports (in its drop event). */
		zt_parse_ports(data, l4, data_end, p);
		if ((void *)(th + 1) > data_end || !zt_l4_in_ip(data, l4, p, sizeof(*th)))
			return ZT_XR_BAD_L4;
		doff = th->doff * 4;
		if (doff < sizeof(*th) || l4 + doff > data_end || !zt_l4_in_ip(data, l4, p, doff))
			return ZT_XR_BAD_L4;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_doff = (__u8)th->doff;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;

		zt_parse_ports(data, l4, data_end, p);
		if ((void *)(uh + 1) > data_end || !zt_l4_in_ip(data, l4, p, sizeof(*uh)))
			return ZT_XR_BAD_L4;
		break;
	}
	case IPPROTO_SCTP:
		/* Kubernetes policies name SCTP ports like TCP's. */
		zt_parse_ports(data, l4, data_end, p);
		if (l4 + ZT_SCTP_HDR_LEN > data_end || !zt_l4_in_ip(data, l4, p, ZT_SCTP_HDR_LEN))
			return ZT_XR_BAD_L4;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* Both are 8 bytes: type, code, checksum, 4 bytes of rest. */
		struct zt_icmphdr *ih = l4;

		if ((void *)(ih + 1) > data_end || !zt_l4_in_ip(data, l4, p, sizeof(*ih)))
			return ZT_XR_BAD_L4;
		p->sport = ih->type;
		p->dport = ih->code;
		break;
	}
	default:
		return ZT_XR_OK;
	}
	p->l4_off = l4 - data;
	p->flags |= ZT_PKT_L4;
	return ZT_XR_OK;
}

/* Bytes from l3 to the end of the packet (see zt_pkt.len). */
static __always_inline __u32 zt_l3_avail(void *data, void *l3, void *data_end,
					 const struct zt_pkt *p)
{
	__u32 before = (__u32)(l3 - data);

	if (p->len)
		return p->len > before ? p->len - before : 0;
	return (__u32)(data_end - l3);
}

static __always_inline int zt_parse_ip4(void *data, void *l3, void *data_end, struct zt_pkt *p)
{
	struct iphdr *ip = l3;
	__u32 hl, tot;
	__u16 frag;

	if ((void *)(ip + 1) > data_end)
		return ZT_XR_BAD_IP4;
	if (ip->version != 4 || ip->ihl < 5)
		return ZT_XR_BAD_IP4;
	p->family = 4;
	p->proto = ip->protocol;
	p->saddr[0] = ip->saddr;
	p->daddr[0] = ip->daddr;
	hl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	p->ip_len = tot;
	/* Trailing bytes past tot_len (Ethernet padding) are fine. */
	if (l3 + hl > data_end || tot < hl || tot > zt_l3_avail(data, l3, data_end, p))
		return ZT_XR_BAD_IP4;
	frag = bpf_ntohs(ip->frag_off);
	if (frag & (ZT_IP4_OFFSET_MASK | ZT_IP4_MF)) {
		p->flags |= ZT_PKT_FRAGMENT;
		if (frag & ZT_IP4_OFFSET_MASK) {
			p->flags |= ZT_PKT_LATER_FRAGMENT;
			return ZT_XR_OK;
		}
	}
	return zt_parse_l4(data, l3 + hl, data_end, p);
}

static __always_inline int zt_ip6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_FRAGMENT ||
	       nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH || nh == IPPROTO_MH;
}

static __always_inline int zt_parse_ip6(void *data, __u32 l3_off, void *data_end, struct zt_pkt *p)
{
	struct ipv6hdr *ip6 = data + l3_off;
	__u32 off = l3_off + sizeof(*ip6);
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return ZT_XR_BAD_IP6;
	if (ip6->version != 6)
		return ZT_XR_BAD_IP6;
	p->family = 6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	nh = ip6->nexthdr;
	p->proto = nh;
	p->ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > zt_l3_avail(data, ip6, data_end, p))
		return ZT_XR_BAD_IP6;

		/*
	 * The walk keeps a scalar offset, bounded at every step, instead of a
	 * packet pointer: the verifier then sees the same few states whatever
	 * the mix of header lengths, instead of one per combination.
	 */
#pragma unroll
	for (i = 0; i < ZT_MAX_IP6_EXT; i++) {
		struct zt_ip6_ext_hdr *h;
		__u32 len;

		if (!zt_ip6_is_ext(nh))
			break;
		/* On failure, proto names the extension header at fault. */
		p->proto = nh;
		if (off > ZT_MAX_HDR_OFF)
			return ZT_XR_BAD_IP6_EXT;
		h = data + off;
		/* Every extension header is at least 8 bytes long. */
		if ((void *)h + 8 > data_end)
			return ZT_XR_BAD_IP6_EXT;
		if (nh == IPPROTO_FRAGMENT) {
			struct zt_ip6_frag_hdr *fh = (void *)h;

			p->flags |= ZT_PKT_FRAGMENT;
			/*
			 * What follows the fragment header of a later fragment
			 * is the middle of the payload, not a header: stop.
			 */
			if (fh->frag_off & bpf_htons(ZT_IP6_OFFSET_MASK)) {
				p->flags |= ZT_PKT_LATER_FRAGMENT;
				p->proto = fh->nexthdr;
				return ZT_XR_OK;
			}
			len = sizeof(*fh);
		} else if (nh == IPPROTO_AH) {
			len = ((__u32)h->hdrlen + 2) * 4;
		} else {
			len = ((__u32)h->hdrlen + 1) * 8;
		}
		if ((void *)h + len > data_end)
			return ZT_XR_BAD_IP6_EXT;
		nh = h->nexthdr;
		off += len;
	}
	p->proto = nh;
	if (zt_ip6_is_ext(nh))
		return ZT_XR_BAD_IP6_EXT;
	if (off > ZT_MAX_HDR_OFF)
		return ZT_XR_BAD_IP6_EXT;
	/* ESP (50) and no-next-header (59) fall through zt_parse_l4 without ports. */
	return zt_parse_l4(data, data + off, data_end, p);
}

static __always_inline int zt_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* p must be zeroed by the caller. */
static __always_inline int zt_parse(void *data, void *data_end, struct zt_pkt *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return ZT_XR_BAD_ETH;
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < ZT_MAX_VLANS; i++) {
		struct zt_vlan_hdr *vh = data + off;

		if (!zt_is_vlan(proto))
			break;
		if ((void *)(vh + 1) > data_end)
			return ZT_XR_BAD_VLAN;
		p->vlan[i] = bpf_ntohs(vh->tci) & 0x0fff;
		p->n_vlans++;
		proto = vh->proto;
		off += sizeof(*vh);
	}
	if (zt_is_vlan(proto))
		return ZT_XR_BAD_VLAN;
	p->l3_off = off;
	if (proto == bpf_htons(ETH_P_IP))
		return zt_parse_ip4(data, data + off, data_end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return zt_parse_ip6(data, off, data_end, p);
	return ZT_XR_NOT_IP;
}

#endif /* ZT_BPF_PARSE_H */
