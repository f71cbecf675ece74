/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small packet builder for BPF tests: Ethernet, up to three VLAN tags,
 * IPv4 (options, fragments) or IPv6 (extension headers), then TCP, UDP,
 * ICMP or ICMPv6, described declaratively by a struct pg_spec. It records
 * where each header starts so a test can cut the packet at any header
 * boundary; after a cut the IP length fields are shrunk to what is left, so
 * the truncation shows up at the header that was cut and not earlier.
 */
#ifndef ZT_TESTS_PKTGEN_H
#define ZT_TESTS_PKTGEN_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include <linux/if_ether.h>
#include <linux/in.h>

#define PG_MAX_VLANS 3
#define PG_MAX_EXT 10
#define PG_BUF 1024

/* Headers, for pg_spec.cut_hdr and pg_pkt.off[]. 0 means none. */
enum pg_hdr {
	PG_NONE = 0,
	PG_ETH,
	PG_VLAN0,
	PG_VLAN1,
	PG_VLAN2,
	PG_IP,
	PG_IP4OPT,
	PG_EXT0,
	PG_L4 = PG_EXT0 + PG_MAX_EXT,
	PG_PAYLOAD,
	PG_NHDR,
};

struct pg_spec {
	uint16_t tpid[PG_MAX_VLANS]; /* VLAN tags, outer first; 0 ends the list */
	uint16_t vid[PG_MAX_VLANS];
	uint8_t family; /* 4, 6, or 0 for a non-IP frame of type ethertype */
	uint16_t ethertype;
	const char *src, *dst;
	uint8_t proto;
	uint8_t ip4_opt_words; /* IPv4 options, 4-byte words (NOPs) */
	uint16_t ip4_frag; /* IPv4 frag_off field, host order */
	uint8_t n_ext; /* IPv6 extension headers, in order */
	uint8_t ext[PG_MAX_EXT];
	uint16_t ip6_frag; /* fragment header's offset/flags field, host order */
	uint16_t sport, dport; /* ICMP/ICMPv6: type, code */
	uint8_t tcp_doff; /* 0: 5 */
	uint16_t payload; /* bytes after the L4 header */
	/* Malformations. */
	uint8_t ip_version; /* 0: the family's */
	uint8_t ip4_ihl; /* 0: computed */
	int16_t ip_len_adj; /* added to tot_len / payload_len */
	uint8_t cut_hdr; /* enum pg_hdr: cut the packet inside this header... */
	uint16_t cut_keep; /* ...keeping this many of its bytes */
};

struct pg_pkt {
	uint8_t buf[PG_BUF];
	size_t len;
	int off[PG_NHDR]; /* start of each header; -1 when absent */
	int hlen[PG_NHDR];
};

static inline uint16_t pg_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void pg_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline int pg_ext_len(uint8_t type)
{
	switch (type) {
	case IPPROTO_DSTOPTS:
		return 16; /* hdrlen 1: checks the 8-octet scaling */
	case IPPROTO_AH:
		return 12; /* hdrlen 1: (1 + 2) * 4 */
	default:
		return 8;
	}
}

static inline int pg_later_fragment(const struct pg_spec *s)
{
	int i;

	if (s->family == 4)
		return (s->ip4_frag & 0x1fff) != 0;
	for (i = 0; i < s->n_ext; i++)
		if (s->ext[i] == IPPROTO_FRAGMENT && (s->ip6_frag & 0xfff8))
			return 1;
	return 0;
}

static inline int pg_begin(struct pg_pkt *p, int hdr, int len)
{
	p->off[hdr] = (int)p->len;
	p->hlen[hdr] = len;
	p->len += len;
	return p->off[hdr];
}

/* Returns 0, or -1 when the spec cannot be built. */
static inline int pg_build(const struct pg_spec *s, struct pg_pkt *p)
{
	uint16_t final_type = s->family == 4 ? ETH_P_IP :
			      s->family == 6 ? ETH_P_IPV6 :
					       s->ethertype;
	int i, nv = 0, o, l3 = -1, l4len = 0;
	uint8_t *b = p->buf;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < PG_NHDR; i++)
		p->off[i] = -1;
	while (nv < PG_MAX_VLANS && s->tpid[nv])
		nv++;

	o = pg_begin(p, PG_ETH, ETH_HLEN);
	memcpy(b + o, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	pg_put16(b + o + 12, nv ? s->tpid[0] : final_type);
	for (i = 0; i < nv; i++) {
		o = pg_begin(p, PG_VLAN0 + i, 4);
		pg_put16(b + o, s->vid[i] & 0x0fff);
		pg_put16(b + o + 2, i + 1 < nv ? s->tpid[i + 1] : final_type);
	}

	if (s->family == 4) {
		int hl = 20 + 4 * s->ip4_opt_words;

		l3 = pg_begin(p, PG_IP, 20);
		b[l3] = (uint8_t)((s->ip_version ? s->ip_version : 4) << 4 |
				  (s->ip4_ihl ? s->ip4_ihl : hl / 4));
		pg_put16(b + l3 + 6, s->ip4_frag);
		b[l3 + 8] = 64;
		b[l3 + 9] = s->proto;
		if (inet_pton(AF_INET, s->src, b + l3 + 12) != 1 ||
		    inet_pton(AF_INET, s->dst, b + l3 + 16) != 1)
			return -1;
		if (s->ip4_opt_words) {
			o = pg_begin(p, PG_IP4OPT, hl - 20);
			memset(b + o, 1 /* NOP */, hl - 20);
		}
	} else if (s->family == 6) {
		l3 = pg_begin(p, PG_IP, 40);
		b[l3] = (uint8_t)((s->ip_version ? s->ip_version : 6) << 4);
		b[l3 + 6] = s->n_ext ? s->ext[0] : s->proto;
		b[l3 + 7] = 64;
		if (inet_pton(AF_INET6, s->src, b + l3 + 8) != 1 ||
		    inet_pton(AF_INET6, s->dst, b + l3 + 24) != 1)
			return -1;
		for (i = 0; i < s->n_ext && i < PG_MAX_EXT; i++) {
			int len = pg_ext_len(s->ext[i]);

			o = pg_begin(p, PG_EXT0 + i, len);
			b[o] = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
			if (s->ext[i] == IPPROTO_FRAGMENT)
				pg_put16(b + o + 2, s->ip6_frag);
			else if (s->ext[i] == IPPROTO_AH)
				b[o + 1] = len / 4 - 2;
			else
				b[o + 1] = len / 8 - 1;
		}
	}

	if (l3 >= 0 && !pg_later_fragment(s)) {
		switch (s->proto) {
		case IPPROTO_TCP: {
			int doff = s->tcp_doff ? s->tcp_doff : 5;

			l4len = (doff < 5 ? 5 : doff) * 4;
			o = pg_begin(p, PG_L4, l4len);
			pg_put16(b + o, s->sport);
			pg_put16(b + o + 2, s->dport);
			b[o + 12] = (uint8_t)(doff << 4);
			b[o + 13] = 0x02; /* SYN */
			pg_put16(b + o + 14, 65535);
			break;
		}
		case IPPROTO_UDP:
			l4len = 8;
			o = pg_begin(p, PG_L4, l4len);
			pg_put16(b + o, s->sport);
			pg_put16(b + o + 2, s->dport);
			pg_put16(b + o + 4, (uint16_t)(8 + s->payload));
			break;
		case IPPROTO_SCTP:
			/* The common header; chunks are the payload's business. */
			l4len = 12;
			o = pg_begin(p, PG_L4, l4len);
			pg_put16(b + o, s->sport);
			pg_put16(b + o + 2, s->dport);
			break;
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			l4len = 8;
			o = pg_begin(p, PG_L4, l4len);
			b[o] = (uint8_t)s->sport;
			b[o + 1] = (uint8_t)s->dport;
			break;
		}
	}
	o = pg_begin(p, PG_PAYLOAD, s->payload);
	for (i = 0; i < s->payload; i++)
		b[o + i] = (uint8_t)i;
	if (p->len > PG_BUF)
		return -1;

	if (s->family == 4)
		pg_put16(b + l3 + 2, (uint16_t)(p->len - l3 + s->ip_len_adj));
	else if (s->family == 6)
		pg_put16(b + l3 + 4, (uint16_t)(p->len - l3 - 40 + s->ip_len_adj));

	if (s->cut_hdr) {
		size_t cut;

		if (p->off[s->cut_hdr] < 0)
			return -1;
		cut = p->off[s->cut_hdr] + s->cut_keep;
		if (cut > p->len)
			return -1;
		p->len = cut;
		/* Keep the IP lengths honest so the cut header is the one found short. */
		if (s->family == 4 && (size_t)l3 + 4 <= cut && pg_get16(b + l3 + 2) > cut - l3)
			pg_put16(b + l3 + 2, (uint16_t)(cut - l3));
		if (s->family == 6 && (size_t)l3 + 40 <= cut &&
		    pg_get16(b + l3 + 4) > cut - l3 - 40)
			pg_put16(b + l3 + 4, (uint16_t)(cut - l3 - 40));
	}
	return 0;
}

#endif /* ZT_TESTS_PKTGEN_H */
