// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bodies, and the last good copy of each feed on disk.
 *
 * <state_dir>/feeds/<name>.cache is text metadata then the raw parts:
 *
 *   ztagent-feed-cache 1
 *   url=https://intel.example/drop.txt
 *   format=cidr
 *   etag="5f2a-61b"
 *   last_modified=Tue, 21 May 2024 10:00:00 GMT
 *   fingerprint=
 *   digest=<64 hex>
 *   saved=1716285600
 *   parts=1
 *
 *   <length> <name>\n<length bytes>\n     (one per part; name may be empty)
 *
 * It is our own file, but it is read back after crashes and by a possibly
 * newer agent: every length is checked, the digest must match, and a copy
 * that does not is ignored with a reason, never half-used.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feeds/fetch_int.h"

#define MAGIC "ztagent-feed-cache 1\n"
#define HEADER_MAX 8192

int feed_body_reserve(struct zt_feed_body *b, size_t len)
{
	size_t need = b->total + len, cap = b->store_cap ? b->store_cap : 65536;
	char *p;

	if (need < b->total)
		return -EFBIG;
	if (need <= b->store_cap)
		return 0;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->store, cap);
	if (!p)
		return -ENOMEM;
	b->store = p;
	b->store_cap = cap;
	return 0;
}

int feed_body_add(struct zt_feed_body *b, const char *name, const void *data, size_t len,
		  uint64_t max)
{
	struct zt_feed_part *parts, *p;
	int err;

	if (b->total + len > max)
		return -EFBIG;
	parts = realloc(b->parts, (b->n_parts + 1) * sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	b->parts = parts;
	err = feed_body_reserve(b, len);
	if (err)
		return err;
	p = &b->parts[b->n_parts++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	if (len)
		memcpy(b->store + b->total, data, len);
	p->len = len;
	b->total += len;
	return 0;
}

int feed_body_seal(struct zt_feed_body *b)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int dl = 0;
	size_t off = 0;
	int ok;

	if (!md)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; i < b->n_parts; i++) {
		uint64_t len = b->parts[i].len;

		b->parts[i].data = b->store ? b->store + off : "";
		off += b->parts[i].len;
		/* Name, length, bytes: a renamed or re-split file changes the digest too. */
		ok = ok && EVP_DigestUpdate(md, b->parts[i].name, strlen(b->parts[i].name) + 1);
		ok = ok && EVP_DigestUpdate(md, &len, sizeof(len));
		ok = ok && EVP_DigestUpdate(md, b->parts[i].data, b->parts[i].len);
	}
	ok = ok && EVP_DigestFinal_ex(md, b->digest, &dl);
	EVP_MD_CTX_free(md);
	return ok && dl == sizeof(b->digest) ? 0 : -EIO;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int feed_cache_save(const char *dir, const char *name, const struct feed_meta *m,
		    const struct zt_feed_body *b)
{
	char path[PATH_MAX], tmp[PATH_MAX], dig[65], *hdr = NULL;
	int fd = -1, dfd = -1, n, err = 0;

	if (snprintf(path, sizeof(path), "%s/%s.cache", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.cache.tmp", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	hdr = malloc(HEADER_MAX);
	if (!hdr)
		return -ENOMEM;
	hex(b->digest, sizeof(b->digest), dig);
	n = snprintf(hdr, HEADER_MAX,
		     MAGIC "url=%s\nformat=%s\netag=%s\nlast_modified=%s\nfingerprint=%s\n"
			   "digest=%s\nsaved=%llu\nparts=%zu\n\n",
		     m->url, m->format, m->etag, m->last_modified, m->fingerprint, dig,
		     (unsigned long long)m->saved_unix, b->n_parts);
	if (n < 0 || n >= HEADER_MAX) {
		err = -ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = write_all(fd, hdr, (size_t)n);
	for (size_t i = 0; i < b->n_parts && !err; i++) {
		n = snprintf(hdr, HEADER_MAX, "%zu %s\n", b->parts[i].len, b->parts[i].name);
		err = write_all(fd, hdr, (size_t)n);
		if (!err)
			err = write_all(fd, b->parts[i].data, b->parts[i].len);
		if (!err)
			err = write_all(fd, "\n", 1);
	}
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	fd = -1;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (!err) {
		/* The rename is durable once the directory is. */
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (err)
		unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(hdr);
	return err;
}

/* The value of "key=" in the header lines, copied into out (cap bytes). */
static int header_value(const char *hdr, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *l = hdr, *end;

	for (; *l; l = end + 1) {
		size_t n;

		end = strchr(l, '\n');
		if (!end)
			return -EBADMSG;
		if (strncmp(l, key, kl) || l[kl] != '=')
			continue;
		n = (size_t)(end - l) - kl - 1;
		if (n >= cap)
			return -EBADMSG;
		memcpy(out, l + kl + 1, n);
		out[n] = '\0';
		return 0;
	}
	return -EBADMSG;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EBADMSG;
		out[i] = (uint8_t)v;
	}
	return s[2 * n] == '\0' ? 0 : -EBADMSG;
}

static int read_file(const char *path, uint64_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		err = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int feed_cache_load(const char *dir, const char *name, uint64_t max, struct feed_meta *m,
		    struct zt_feed_body *b, char *msg, size_t msglen)
{
	char path[PATH_MAX], dig[72], num[32], *buf = NULL, *hdr_end;
	uint8_t want[32];
	uint64_t nparts;
	size_t len = 0, off;
	int err;

	memset(m, 0, sizeof(*m));
	memset(b, 0, sizeof(*b));
	if (snprintf(path, sizeof(path), "%s/%s.cache", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	/* Content, plus a header and one line per part. */
	err = read_file(path, max + HEADER_MAX + (uint64_t)FEED_DIR_FILES_MAX * 300, &buf, &len);
	if (err == -ENOENT)
		return err;
	if (err) {
		zt_seterr(msg, msglen, "%s: cannot read: %s", path, strerror(-err));
		return err;
	}
	err = -EBADMSG;
	hdr_end = memmem(buf, len < HEADER_MAX ? len : HEADER_MAX, "\n\n", 2);
	if (strncmp(buf, MAGIC, strlen(MAGIC)) || !hdr_end) {
		zt_seterr(msg, msglen, "%s: not a feed cache of this version", path);
		goto out;
	}
	hdr_end[1] = '\0';
	if (header_value(buf, "url", m->url, sizeof(m->url)) ||
	    header_value(buf, "format", m->format, sizeof(m->format)) ||
	    header_value(buf, "etag", m->etag, sizeof(m->etag)) ||
	    header_value(buf, "last_modified", m->last_modified, sizeof(m->last_modified)) ||
	    header_value(buf, "fingerprint", m->fingerprint, sizeof(m->fingerprint)) ||
	    header_value(buf, "digest", dig, sizeof(dig)) || unhex(dig, want, sizeof(want)) ||
	    header_value(buf, "saved", num, sizeof(num)) || zt_parse_u64(num, &m->saved_unix) < 0 ||
	    header_value(buf, "parts", num, sizeof(num)) || zt_parse_u64(num, &nparts) < 0 ||
	    nparts > FEED_DIR_FILES_MAX) {
		zt_seterr(msg, msglen, "%s: damaged header", path);
		goto out;
	}
	off = (size_t)(hdr_end - buf) + 2;
	for (size_t i = 0; i < nparts; i++) {
		char *nl = memchr(buf + off, '\n', len - off < 300 ? len - off : 300), *sp;
		uint64_t plen;

		if (!nl)
			goto damaged;
		*nl = '\0';
		sp = strchr(buf + off, ' ');
		if (!sp)
			goto damaged;
		*sp = '\0';
		if (zt_parse_u64(buf + off, &plen) < 0 || plen > len - ((size_t)(nl - buf) + 1) ||
		    (size_t)(nl - buf) + 1 + plen >= len ||
		    buf[(size_t)(nl - buf) + 1 + plen] != '\n')
			goto damaged;
		err = feed_body_add(b, sp + 1, nl + 1, (size_t)plen, max);
		if (err) {
			zt_seterr(msg, msglen, "%s: %s", path,
				  err == -EFBIG ? "larger than max_bytes" : strerror(-err));
			goto out;
		}
		off = (size_t)(nl - buf) + 1 + plen + 1;
	}
	err = -EBADMSG;
	if (off != len)
		goto damaged;
	if (feed_body_seal(b) < 0 || memcmp(b->digest, want, sizeof(want))) {
		zt_seterr(msg, msglen, "%s: content does not match its digest", path);
		goto out;
	}
	memcpy(m->digest, want, sizeof(want));
	err = 0;
	goto out;
damaged:
	err = -EBADMSG;
	zt_seterr(msg, msglen, "%s: damaged (truncated or edited)", path);
out:
	if (err)
		zt_feed_body_free(b);
	free(buf);
	return err;
}
