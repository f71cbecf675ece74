// SPDX-License-Identifier: GPL-2.0-only
/*
 * API frames: a 4-byte big-endian length and one CBOR item, decoded through
 * the pre-scan of cbor.c with a bound on items per message.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/apimsg.h"
#include "agent/util.h"

/*
 * Items per message; each costs libcbor 60 to 100 bytes decoded. The daemon
 * decodes requests (zt_msg_decode): the largest is a block.import of 1048576
 * cidrs (apiops.h) and a few fields. Clients decode replies (zt_msg_recv):
 * a block.list reply just under 64 MiB holds up to ~12M items (17 per entry,
 * ~100 bytes per entry with short fields), so it must still be accepted.
 */
#define MAX_REQ_ITEMS (2u << 20)
#define MAX_REPLY_ITEMS (16u << 20)

/* Receive buffers grow with what arrives, not with what a header announces. */
#define RECV_CHUNK (64u << 10)

int zt_msg_decode(const uint8_t *buf, size_t len, cbor_item_t **out, char *err, size_t errlen)
{
	if (len > ZT_API_MAX_MSG) {
		zt_seterr(err, errlen, "message of %zu bytes, more than the %u-byte limit", len,
			  ZT_API_MAX_MSG);
		return -EMSGSIZE;
	}
	return zt_cbor_decode(buf, len, MAX_REQ_ITEMS, out, err, errlen);
}

int zt_msg_encode(const cbor_item_t *item, uint8_t **frame, size_t *frame_len)
{
	size_t cap = 4096, n;
	uint8_t *buf = NULL;

	if (!item)
		return -EINVAL;
	/* libcbor 0.8 cannot size an item up front: try, double, stop at the limit. */
	for (;;) {
		uint8_t *nb = realloc(buf, cap + ZT_API_HDR_LEN);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		n = cbor_serialize(item, buf + ZT_API_HDR_LEN, cap);
		if (n)
			break;
		if (cap >= ZT_API_MAX_MSG) {
			free(buf);
			return -EMSGSIZE;
		}
		cap = cap * 2 > ZT_API_MAX_MSG ? ZT_API_MAX_MSG : cap * 2;
	}
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	*frame = buf;
	*frame_len = n + ZT_API_HDR_LEN;
	return 0;
}

/* ---- blocking I/O ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	bool sock = true;

	while (n) {
		ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOTSOCK && sock) {
				sock = false;
				continue;
			}
			/* SO_SNDTIMEO expired. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to n bytes, stopping early only at EOF; *got says how many. */
static int read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = read(fd, p + *got, n - *got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT; /* SO_RCVTIMEO expired */
			return -errno;
		}
		if (r == 0)
			return 0;
		*got += (size_t)r;
	}
	return 0;
}

int zt_msg_send(int fd, const cbor_item_t *item)
{
	uint8_t *f;
	size_t n;
	int r = zt_msg_encode(item, &f, &n);

	if (r < 0)
		return r;
	r = write_all(fd, f, n);
	free(f);
	return r;
}

int zt_msg_recv(int fd, cbor_item_t **out, char *err, size_t errlen)
{
	uint8_t hdr[ZT_API_HDR_LEN], *buf = NULL;
	size_t got, have = 0, cap = 0;
	uint32_t len;
	int r;

	r = read_full(fd, hdr, sizeof(hdr), &got);
	if (r < 0) {
		zt_seterr(err, errlen, "reading a frame header: %s",
			  r == -ETIMEDOUT ? "timed out" : strerror(-r));
		return r;
	}
	if (got == 0) {
		zt_seterr(err, errlen, "the peer closed the connection");
		return -ECONNRESET;
	}
	if (got < sizeof(hdr)) {
		zt_seterr(err, errlen,
			  "the peer closed the connection after %zu of %d header bytes", got,
			  ZT_API_HDR_LEN);
		return -EPROTO;
	}
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0) {
		zt_seterr(err, errlen, "empty frame: expected one CBOR map");
		return -EPROTO;
	}
	if (len > ZT_API_MAX_MSG) {
		zt_seterr(err, errlen, "frame of %u bytes refused: the limit is %u", len,
			  ZT_API_MAX_MSG);
		return -EMSGSIZE;
	}
	while (have < len) {
		size_t want;

		if (have == cap) {
			size_t ncap = cap ? cap * 2 : RECV_CHUNK;
			uint8_t *nb;

			if (ncap > len)
				ncap = len;
			nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				zt_seterr(err, errlen, "out of memory receiving a %u-byte frame",
					  len);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		want = cap - have;
		r = read_full(fd, buf + have, want, &got);
		have += got;
		if (r < 0) {
			zt_seterr(err, errlen, "reading a %u-byte frame: %s", len,
				  r == -ETIMEDOUT ? "timed out" : strerror(-r));
			free(buf);
			return r;
		}
		if (got < want) {
			zt_seterr(err, errlen,
				  "the peer closed the connection after %zu of %u frame bytes",
				  have, len);
			free(buf);
			return -EPROTO;
		}
	}
	r = zt_cbor_decode(buf, len, MAX_REPLY_ITEMS, out, err, errlen);
	free(buf);
	return r;
}
