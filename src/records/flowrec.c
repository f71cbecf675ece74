// SPDX-License-Identifier: GPL-2.0-only
/* Flow records and their UUIDv7 ids. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "records/flowrec.h"

static void encode_v7(uint8_t out[16], uint64_t ms, uint16_t a, uint64_t b)
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | ((a >> 8) & 0x0f));
	out[7] = (uint8_t)a;
	out[8] = (uint8_t)(0x80 | ((b >> 56) & 0x3f));
	for (int i = 1; i < 8; i++)
		out[8 + i] = (uint8_t)(b >> (56 - 8 * i));
}

static uint64_t rnd_b(const uint8_t rnd[10])
{
	uint64_t b = 0;

	for (int i = 2; i < 10; i++)
		b = b << 8 | rnd[i];
	return b & ((1ULL << 62) - 1);
}

void zt_uuidv7_from(uint8_t out[16], uint64_t unix_ms, const uint8_t rnd[10])
{
	encode_v7(out, unix_ms & ((1ULL << 48) - 1), (uint16_t)((rnd[0] << 8 | rnd[1]) & 0x0fff),
		  rnd_b(rnd));
}

static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t v7_ms;
static uint16_t v7_a; /* 12 bits */
static uint64_t v7_b; /* 62 bits */

static void fill_random(uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = getrandom(p, n, 0);

		if (r <= 0) {
			/* Only EINTR in practice; never leave the bytes unset. */
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			for (size_t i = 0; i < n; i++)
				p[i] ^= (uint8_t)(ts.tv_nsec >> (i % 4 * 8));
			if (r < 0)
				continue;
			return;
		}
		p += r;
		n -= (size_t)r;
	}
}

void zt_uuidv7(uint8_t out[16])
{
	struct timespec ts;
	uint8_t rnd[10];
	uint64_t ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) & ((1ULL << 48) - 1);
	pthread_mutex_lock(&v7_lock);
	if (ms > v7_ms) {
		fill_random(rnd, sizeof(rnd));
		v7_ms = ms;
		/* Top counter bit clear: room for 2^73 increments in this ms. */
		v7_a = (uint16_t)((rnd[0] << 8 | rnd[1]) & 0x07ff);
		v7_b = rnd_b(rnd);
	} else if (++v7_b >> 62) {
		/* Same millisecond, or the clock stepped back: count on. */
		v7_b = 0;
		if (++v7_a > 0x0fff) {
			v7_a = 0;
			v7_ms++;
		}
	}
	encode_v7(out, v7_ms, v7_a, v7_b);
	pthread_mutex_unlock(&v7_lock);
}

uint64_t zt_uuidv7_ms(const uint8_t id[16])
{
	uint64_t ms = 0;

	for (int i = 0; i < 6; i++)
		ms = ms << 8 | id[i];
	return ms;
}

void zt_uuid_format(const uint8_t id[16], char *buf, size_t n)
{
	snprintf(buf, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10],
		 id[11], id[12], id[13], id[14], id[15]);
}

void zt_flowrec_init(struct zt_flow_record *r)
{
	memset(r, 0, sizeof(*r));
	zt_uuidv7(r->id);
	r->aggregate_count = 1;
}

size_t zt_flowrec_set_text(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src), k;

	if (n == 0)
		return len;
	k = len < n - 1 ? len : n - 1;
	if (k < len && ((unsigned char)src[k] & 0xc0) == 0x80) {
		/* The cut splits a UTF-8 sequence: leave out its lead byte too. */
		for (size_t j = k; j > 0 && k - j < 4; j--) {
			unsigned char c = (unsigned char)src[j - 1];

			if ((c & 0xc0) == 0xc0) {
				k = j - 1;
				break;
			}
			if ((c & 0x80) == 0)
				break;
		}
	}
	memcpy(dst, src, k);
	dst[k] = '\0';
	return len - k;
}

const char *zt_flow_kind_name(unsigned int kind)
{
	return kind == ZT_FLOW_KIND_XDP_DROP_AGG ? "xdp_drop_aggregate" : "flow";
}

const char *zt_flowrec_proto_name(uint8_t proto, char *buf, size_t n)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_SCTP:
		return "sctp";
	case ZT_PROTO_ANY:
		return "any";
	default:
		snprintf(buf, n, "%u", proto);
		return buf;
	}
}

bool zt_proto_has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

int zt_flowrec_proto_parse(const char *name, uint8_t *proto)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} names[] = { { "tcp", IPPROTO_TCP },	{ "udp", IPPROTO_UDP },
		      { "icmp", IPPROTO_ICMP }, { "icmpv6", IPPROTO_ICMPV6 },
		      { "sctp", IPPROTO_SCTP }, { "any", ZT_PROTO_ANY } };
	unsigned int v = 0;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i].name)) {
			*proto = names[i].proto;
			return 0;
		}
	}
	/* The decimal number of any other protocol: 1 to 3 digits, at most 255. */
	for (i = 0; name[i] >= '0' && name[i] <= '9' && i < 3; i++)
		v = v * 10 + (unsigned int)(name[i] - '0');
	if (i == 0 || name[i] || v > 255)
		return -EINVAL;
	*proto = (uint8_t)v;
	return 0;
}
