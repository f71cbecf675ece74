/* SPDX-License-Identifier: GPL-2.0-only */
/* Helpers of the detector tests: addresses, connections, a seeded random stream. */
#ifndef ZT_DTEST_H
#define ZT_DTEST_H

#include <stdint.h>
#include <string.h>

#include "detect/detect.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

/* An IPv4 address a.b.c.d in a 16-byte buffer (rest zero). */
static inline const uint8_t *ip4(uint8_t *buf, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(buf, 0, 16);
	buf[0] = a;
	buf[1] = b;
	buf[2] = c;
	buf[3] = d;
	return buf;
}

/* 198.18.x.y from a 16-bit number. */
static inline const uint8_t *host(uint8_t *buf, uint32_t n)
{
	return ip4(buf, 198, 18 + ((n >> 16) & 1), (uint8_t)(n >> 8), (uint8_t)n);
}

/* xorshift64*: the same stream every run. */
static inline uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static inline double rnd_unit(uint64_t *s)
{
	return (double)(rnd_next(s) >> 11) / 9007199254740992.0;
}

/*
 * A TCP connection with payload per direction, as conntrack would count
 * it: IP bytes = payload + 52 bytes per packet (20 IP + 32 TCP), 8 more in
 * each SYN. The handshake is complete unless handshake is false.
 */
static inline void mk_conn(struct zt_conn *c, const uint8_t *src, const uint8_t *dst,
			   uint16_t dport, uint64_t first, uint64_t last, uint64_t req,
			   uint64_t rep, uint64_t pk_req, uint64_t pk_rep, int state, int handshake)
{
	memset(c, 0, sizeof(*c));
	c->family = 4;
	c->proto = 6;
	c->state = (uint8_t)state;
	memcpy(c->src, src, 16);
	memcpy(c->dst, dst, 16);
	c->sport = 40000;
	c->dport = dport;
	c->first_ns = first;
	c->last_ns = last;
	c->packets[0] = pk_req;
	c->packets[1] = pk_rep;
	c->bytes[0] = req + pk_req * 52 + 8;
	c->bytes[1] = rep + pk_rep * 52 + (handshake ? 8 : 0);
	c->flags[0] = ZT_DF_SYN | ZT_DF_ACK | (state == 3 ? ZT_DF_FIN : 0);
	c->flags[1] = handshake ? (ZT_DF_SYN | ZT_DF_ACK | (state == 3 ? ZT_DF_FIN : 0)) :
				  ZT_DF_RST | ZT_DF_ACK;
}

#endif
