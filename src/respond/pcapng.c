// SPDX-License-Identifier: GPL-2.0-only
/* pcapng through gzip (see pcapng.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "respond/pcapng.h"

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_TSRESOL 9
#define EPB_FLAGS 2

struct zt_pcapng {
	gzFile gz; /* the current gzip member, on a dup of fd */
	int fd;
	bool pending; /* written since the member began */
	uint32_t snaplen;
	uint32_t ifindex[ZT_PCAPNG_MAX_IFACES];
	uint32_t n_if;
	uint64_t packets;
	uint64_t size;
	uint8_t *buf;
	size_t cap;
};

/* A block is built in w->buf, then written whole. */
struct blk {
	uint8_t *b;
	size_t n, cap;
	bool oom;
};

static void put(struct blk *k, const void *p, size_t n)
{
	if (k->oom || k->n + n > k->cap) {
		k->oom = true;
		return;
	}
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void put32(struct blk *k, uint32_t v)
{
	put(k, &v, 4); /* host order: the byte-order magic says which */
}

static void put16(struct blk *k, uint16_t v)
{
	put(k, &v, 2);
}

static void pad4(struct blk *k)
{
	static const uint8_t z[4];

	put(k, z, (4 - k->n % 4) % 4);
}

static void opt(struct blk *k, uint16_t code, const void *v, size_t n)
{
	if (n > 0xffff)
		n = 0xffff;
	put16(k, code);
	put16(k, (uint16_t)n);
	put(k, v, n);
	pad4(k);
}

/* Starts a block: type and a length filled in by end(). */
static void begin(struct blk *k, uint32_t type)
{
	k->n = 0;
	k->oom = false;
	put32(k, type);
	put32(k, 0);
}

static int end(struct zt_pcapng *w, struct blk *k)
{
	uint32_t len;

	put32(k, (uint32_t)(k->n + 4));
	if (k->oom)
		return -E2BIG;
	len = (uint32_t)k->n;
	memcpy(k->b + 4, &len, 4);
	if (gzwrite(w->gz, k->b, (unsigned int)k->n) != (int)k->n)
		return -EIO;
	w->pending = true;
	return 0;
}

static int grow(struct zt_pcapng *w, size_t need, struct blk *k)
{
	if (need > w->cap) {
		uint8_t *nb = realloc(w->buf, need);

		if (!nb)
			return -ENOMEM;
		w->buf = nb;
		w->cap = need;
	}
	k->b = w->buf;
	k->cap = w->cap;
	return 0;
}

/*
 * A new gzip member at the end of the file. Each flush ends the member
 * (its trailer written), so the file is a complete gzip stream after
 * every flush: readers take concatenated members as one stream.
 */
static int member(struct zt_pcapng *w)
{
	int fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* Level 6: a capture under a flood costs CPU; headers compress well anyway. */
	w->gz = gzdopen(fd, "wb6");
	if (!w->gz) {
		close(fd);
		return -ENOMEM;
	}
	w->pending = false;
	return 0;
}

int zt_pcapng_open(const char *path, uint32_t snaplen, const char *comment, struct zt_pcapng **out)
{
	struct zt_pcapng *w;
	struct blk k;
	uint64_t section_len = UINT64_MAX;
	int r;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->snaplen = snaplen ? snaplen : 65535;
	w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	r = member(w);
	if (r) {
		close(w->fd);
		unlink(path);
		free(w);
		return r;
	}
	r = grow(w, 1024, &k);
	if (!r) {
		begin(&k, BT_SHB);
		put32(&k, 0x1A2B3C4D);
		put16(&k, 1);
		put16(&k, 0);
		put(&k, &section_len, 8);
		opt(&k, SHB_USERAPPL, "ztagent", 7);
		if (comment && *comment)
			opt(&k, OPT_COMMENT, comment, strnlen(comment, 512));
		put32(&k, OPT_END);
		r = end(w, &k);
	}
	if (r) {
		gzclose(w->gz);
		close(w->fd);
		unlink(path);
		free(w->buf);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

/* The IDB id of an interface, writing its block the first time. */
static int iface_id(struct zt_pcapng *w, uint32_t ifindex, const char *ifname)
{
	struct blk k;
	char name[32];
	uint8_t tsresol = 9; /* 10^-9 s */
	int r;

	for (uint32_t i = 0; i < w->n_if; i++)
		if (w->ifindex[i] == ifindex)
			return (int)i;
	if (w->n_if >= ZT_PCAPNG_MAX_IFACES)
		return 0; /* past the table: charged to the first interface */
	if (ifname && *ifname)
		snprintf(name, sizeof(name), "%s", ifname);
	else
		snprintf(name, sizeof(name), "if%u", ifindex);
	r = grow(w, 256, &k);
	if (r)
		return r;
	begin(&k, BT_IDB);
	put16(&k, ZT_PCAPNG_LINKTYPE_ETHERNET);
	put16(&k, 0);
	put32(&k, w->snaplen);
	opt(&k, IF_NAME, name, strlen(name));
	opt(&k, IF_TSRESOL, &tsresol, 1);
	put32(&k, OPT_END);
	r = end(w, &k);
	if (r)
		return r;
	w->ifindex[w->n_if] = ifindex;
	return (int)w->n_if++;
}

int zt_pcapng_write(struct zt_pcapng *w, uint64_t ts, uint32_t ifindex, const char *ifname,
		    bool inbound, const char *comment, const uint8_t *pkt, uint32_t caplen,
		    uint32_t origlen)
{
	struct blk k;
	size_t clen = comment ? strnlen(comment, 1024) : 0;
	uint32_t flags = inbound ? 1 : 2; /* epb_flags direction: 01 inbound, 10 outbound */
	int id, r;

	if (!w->gz)
		return -EIO;
	if (caplen > w->snaplen)
		caplen = w->snaplen;
	if (origlen < caplen)
		origlen = caplen;
	id = iface_id(w, ifindex, ifname);
	if (id < 0)
		return id;
	r = grow(w, 64 + caplen + clen + 16, &k);
	if (r)
		return r;
	begin(&k, BT_EPB);
	put32(&k, (uint32_t)id);
	put32(&k, (uint32_t)(ts >> 32));
	put32(&k, (uint32_t)ts);
	put32(&k, caplen);
	put32(&k, origlen);
	put(&k, pkt, caplen);
	pad4(&k);
	if (clen)
		opt(&k, OPT_COMMENT, comment, clen);
	opt(&k, EPB_FLAGS, &flags, 4);
	put32(&k, OPT_END);
	r = end(w, &k);
	if (!r)
		w->packets++;
	return r;
}

int zt_pcapng_flush(struct zt_pcapng *w)
{
	struct stat st;
	int r = 0;

	if (!w->gz)
		return -EIO;
	if (w->pending) {
		if (gzclose(w->gz) != Z_OK)
			r = -EIO;
		w->gz = NULL;
		if (!r)
			r = member(w);
	}
	if (fstat(w->fd, &st) == 0)
		w->size = (uint64_t)st.st_size;
	return r;
}

uint64_t zt_pcapng_size(const struct zt_pcapng *w)
{
	return w->size;
}

uint64_t zt_pcapng_packets(const struct zt_pcapng *w)
{
	return w->packets;
}

int zt_pcapng_close(struct zt_pcapng *w)
{
	int r = 0;

	if (!w)
		return 0;
	if (w->gz && gzclose(w->gz) != Z_OK)
		r = -EIO;
	if (fsync(w->fd) < 0 && !r)
		r = -errno;
	close(w->fd);
	free(w->buf);
	free(w);
	return r;
}
