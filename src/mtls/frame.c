// SPDX-License-Identifier: GPL-2.0-only
/* The tunnel's frames and SNI names: length-checked both ways, nothing trusted unread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mtls/frame.h"

static const uint8_t magic[4] = { 'Z', 'T', 'M', '1' };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : -1;
}

int zt_frame_hdr_encode(uint8_t *buf, size_t n, const struct zt_mtls_dest *d, const char *id)
{
	size_t l = id ? strlen(id) : 0;
	int al = addr_len(d->family);

	if (al < 0 || l == 0 || l > ZT_SPIFFE_ID_MAX || n < ZT_FRAME_HDR_FIXED + l || !d->port)
		return -EINVAL;
	memset(buf, 0, ZT_FRAME_HDR_FIXED);
	memcpy(buf, magic, 4);
	buf[4] = ZT_FRAME_VERSION;
	buf[5] = d->family == AF_INET ? 4 : 6;
	put16(buf + 6, d->port);
	memcpy(buf + 8, d->addr, (size_t)al);
	put16(buf + 24, d->src_port);
	put16(buf + 26, (uint16_t)l);
	memcpy(buf + 28, d->src_addr, (size_t)al);
	memcpy(buf + ZT_FRAME_HDR_FIXED, id, l);
	return (int)(ZT_FRAME_HDR_FIXED + l);
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int zt_frame_hdr_decode(const uint8_t *buf, size_t len, struct zt_mtls_dest *d, char *id,
			size_t idn)
{
	size_t l;
	int al;

	/* Check what has arrived as it arrives: a wrong magic fails before 44 bytes do. */
	if (memcmp(buf, magic, len < 4 ? len : 4) != 0)
		return -EBADMSG;
	if (len > 4 && buf[4] != ZT_FRAME_VERSION)
		return -EBADMSG;
	if (len > 5 && buf[5] != 4 && buf[5] != 6)
		return -EBADMSG;
	if (len < ZT_FRAME_HDR_FIXED)
		return -EAGAIN;
	l = get16(buf + 26);
	if (l == 0 || l > ZT_SPIFFE_ID_MAX || l >= idn)
		return -EBADMSG;
	al = buf[5] == 4 ? 4 : 16;
	if (!zero(buf + 8 + al, 16 - (size_t)al) || !zero(buf + 28 + al, 16 - (size_t)al) ||
	    get16(buf + 6) == 0)
		return -EBADMSG;
	if (len < ZT_FRAME_HDR_FIXED + l)
		return -EAGAIN;
	if (memchr(buf + ZT_FRAME_HDR_FIXED, '\0', l))
		return -EBADMSG;
	memcpy(id, buf + ZT_FRAME_HDR_FIXED, l);
	id[l] = '\0';
	if (zt_spiffe_id_check(id) < 0)
		return -EBADMSG;
	memset(d, 0, sizeof(*d));
	d->family = buf[5] == 4 ? AF_INET : AF_INET6;
	d->port = get16(buf + 6);
	memcpy(d->addr, buf + 8, 16);
	d->src_port = get16(buf + 24);
	memcpy(d->src_addr, buf + 28, 16);
	return (int)(ZT_FRAME_HDR_FIXED + l);
}

void zt_frame_reply_encode(uint8_t buf[ZT_FRAME_REPLY_LEN], enum zt_mtls_reason status)
{
	memcpy(buf, magic, 4);
	buf[4] = ZT_FRAME_VERSION;
	buf[5] = (uint8_t)status;
	buf[6] = buf[7] = 0;
}

int zt_frame_reply_decode(const uint8_t *buf, size_t len)
{
	if (memcmp(buf, magic, len < 4 ? len : 4) != 0 || (len > 4 && buf[4] != ZT_FRAME_VERSION))
		return -EBADMSG;
	if (len < ZT_FRAME_REPLY_LEN)
		return -EAGAIN;
	if (buf[5] >= ZT_MTLS_REASON_MAX || buf[6] || buf[7])
		return -EBADMSG;
	return buf[5];
}

int zt_sni_encode(char *out, size_t n, int family, const uint8_t *addr)
{
	int al = addr_len(family), o;

	if (al < 0 || n < ZT_SNI_MAX)
		return -EINVAL;
	o = snprintf(out, n, "v%d-", family == AF_INET ? 4 : 6);
	for (int i = 0; i < al; i++)
		o += snprintf(out + o, n - (size_t)o, "%02x", addr[i]);
	snprintf(out + o, n - (size_t)o, ".ztagent");
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int zt_sni_decode(const char *sni, int *family, uint8_t addr[16])
{
	size_t n = sni ? strlen(sni) : 0;
	int al;

	if (n < 3 || sni[0] != 'v' || sni[2] != '-')
		return -EINVAL;
	if (sni[1] == '4')
		*family = AF_INET;
	else if (sni[1] == '6')
		*family = AF_INET6;
	else
		return -EINVAL;
	al = addr_len(*family);
	if (n != 3 + (size_t)al * 2 + strlen(".ztagent") || strcmp(sni + 3 + al * 2, ".ztagent"))
		return -EINVAL;
	memset(addr, 0, 16);
	for (int i = 0; i < al; i++) {
		int h = hexval(sni[3 + 2 * i]), l = hexval(sni[4 + 2 * i]);

		if (h < 0 || l < 0)
			return -EINVAL;
		addr[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}
