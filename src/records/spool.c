// SPDX-License-Identifier: GPL-2.0-only
/* Bounded on-disk spool of flow records: zlib-compressed CBOR segments. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "records/db.h"
#include "records/spool.h"
#include "agent/util.h"

/*
 * Format versions, named by the magic. 1: the protocol as text ("tcp",
 * "udp", ..., "any" or the number), written before migration 003; 2: the
 * protocol as its number; 3: and then mtls, source_spiffe_id and
 * dest_spiffe_id (migration 007). All are read; 3 is written.
 */
#define MAGIC_V1 "ZTSPOOL1"
#define MAGIC_V2 "ZTSPOOL2"
#define MAGIC "ZTSPOOL3"
#define HDR_LEN 28
#define NFIELDS 36
#define NFIELDS_V2 33
#define MAX_SEG_RECORDS 1000000u
#define MAX_REC_CBOR 4096u /* far above the largest record's encoding */
/*
 * Decoder bounds: a segment's header is input, so nothing is sized by it
 * alone. The smallest record is 59 bytes of CBOR (33 fields, empty texts);
 * deflate expands at most 1032:1 (zlib's documented maximum); and a segment
 * file is at most SEG_FILE_MAX (the writer's largest is tens of MiB).
 */
#define MIN_REC_CBOR 59u
#define ZLIB_MAX_RATIO 1032u
#define SEG_FILE_MAX (1u << 30)
#define INFLATE_STEP (1u << 20)

/* A segment written by zt_spool_write_held, not replayed until released. */
struct held {
	uint64_t seq;
	uint64_t bytes;
};

struct zt_spool {
	pthread_mutex_t lock;
	char dir[4096];
	int dirfd;
	uint64_t max_bytes;
	uint64_t next_seq;
	struct zt_spool_stats st;
	struct held *held;
	size_t n_held, cap_held;
};

/* --- CBOR, the subset used: unsigned/negative integers, byte strings, arrays --- */

static void cb_head(struct zt_buf *b, uint8_t major, uint64_t v)
{
	uint8_t *p = b->p + b->len;

	major <<= 5;
	if (v < 24) {
		*p = major | (uint8_t)v;
		b->len += 1;
	} else if (v <= 0xff) {
		p[0] = major | 24;
		p[1] = (uint8_t)v;
		b->len += 2;
	} else if (v <= 0xffff) {
		p[0] = major | 25;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)v;
		b->len += 3;
	} else if (v <= 0xffffffffu) {
		p[0] = major | 26;
		for (int i = 0; i < 4; i++)
			p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		b->len += 5;
	} else {
		p[0] = major | 27;
		for (int i = 0; i < 8; i++)
			p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		b->len += 9;
	}
}

static void cb_uint(struct zt_buf *b, uint64_t v)
{
	cb_head(b, 0, v);
}

static void cb_int(struct zt_buf *b, int64_t v)
{
	if (v >= 0)
		cb_head(b, 0, (uint64_t)v);
	else
		cb_head(b, 1, (uint64_t)(-(v + 1)));
}

static void cb_bytes(struct zt_buf *b, const void *p, size_t n)
{
	cb_head(b, 2, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* A fixed text field; one that lacks its NUL (a producer bug) is cut, not overrun. */
#define cb_text(b, field) cb_bytes(b, field, strnlen(field, sizeof(field) - 1))

static int encode_rec(struct zt_buf *b, const struct zt_flow_record *r)
{
	uint32_t f;
	size_t alen = r->family == AF_INET6 ? 16 : 4;

	if (zt_buf_reserve(b, MAX_REC_CBOR))
		return -ENOMEM;
	memcpy(&f, &r->anomaly_score, 4);
	cb_head(b, 4, NFIELDS);
	cb_bytes(b, r->id, 16);
	/* Normalised as the COPY encoder reads them, so every record decodes. */
	cb_uint(b, r->family == AF_INET6 ? AF_INET6 : AF_INET);
	cb_uint(b, r->kind == ZT_FLOW_KIND_XDP_DROP_AGG ? 1 : 0);
	cb_uint(b, r->blocked ? 1 : 0);
	cb_uint(b, r->tcp_flags);
	cb_uint(b, r->present & ZT_FR_HAS_ALL);
	cb_bytes(b, r->source_ip, alen);
	cb_bytes(b, r->dest_ip, alen);
	cb_uint(b, r->source_port);
	cb_uint(b, r->dest_port);
	cb_uint(b, f);
	cb_int(b, r->bytes_sent);
	cb_int(b, r->bytes_received);
	cb_int(b, r->packet_count);
	cb_int(b, r->packets_sent);
	cb_int(b, r->packets_received);
	cb_int(b, r->duration_ms);
	cb_int(b, r->start_time_us);
	cb_int(b, r->end_time_us);
	cb_int(b, r->created_at_us);
	cb_int(b, r->source_identity);
	cb_int(b, r->dest_identity);
	cb_int(b, r->aggregate_count);
	cb_uint(b, r->protocol);
	cb_text(b, r->threat_type);
	cb_text(b, r->verdict);
	cb_text(b, r->drop_reason);
	cb_text(b, r->policy);
	cb_text(b, r->source_workload);
	cb_text(b, r->dest_workload);
	cb_text(b, r->node);
	cb_text(b, r->interface);
	cb_text(b, r->direction);
	cb_uint(b, r->mtls ? 1 : 0);
	cb_text(b, r->source_spiffe_id);
	cb_text(b, r->dest_spiffe_id);
	return 0;
}

struct cb_rd {
	const uint8_t *p;
	size_t n, at;
	const char *why;
};

static int rd_head(struct cb_rd *r, uint8_t *major, uint64_t *v)
{
	uint8_t ib, ai;
	size_t extra;

	if (r->at >= r->n) {
		r->why = "CBOR ends early";
		return -1;
	}
	ib = r->p[r->at++];
	*major = ib >> 5;
	ai = ib & 31;
	if (ai < 24) {
		*v = ai;
		return 0;
	}
	if (ai > 27) {
		r->why = "CBOR: indefinite or reserved length";
		return -1;
	}
	extra = (size_t)1 << (ai - 24);
	if (r->n - r->at < extra) {
		r->why = "CBOR ends early";
		return -1;
	}
	*v = 0;
	for (size_t i = 0; i < extra; i++)
		*v = *v << 8 | r->p[r->at++];
	return 0;
}

static int rd_uint(struct cb_rd *r, uint64_t max, uint64_t *v)
{
	uint8_t m;

	if (rd_head(r, &m, v))
		return -1;
	if (m != 0 || *v > max) {
		r->why = "CBOR: expected an unsigned integer in range";
		return -1;
	}
	return 0;
}

static int rd_int(struct cb_rd *r, int64_t *out)
{
	uint8_t m;
	uint64_t v;

	if (rd_head(r, &m, &v))
		return -1;
	if ((m != 0 && m != 1) || v > INT64_MAX) {
		r->why = "CBOR: expected an integer in range";
		return -1;
	}
	*out = m == 0 ? (int64_t)v : -(int64_t)v - 1;
	return 0;
}

static int rd_bytes(struct cb_rd *r, const uint8_t **p, uint64_t *len)
{
	uint8_t m;

	if (rd_head(r, &m, len))
		return -1;
	if (m != 2 || *len > r->n - r->at) {
		r->why = "CBOR: expected a byte string";
		return -1;
	}
	*p = r->p + r->at;
	r->at += *len;
	return 0;
}

/* A text field: shorter than the field, no NUL inside. */
static int rd_text(struct cb_rd *r, char *dst, size_t size)
{
	const uint8_t *p;
	uint64_t len;

	if (rd_bytes(r, &p, &len))
		return -1;
	if (len >= size || memchr(p, 0, len)) {
		r->why = "CBOR: text field too long or with a NUL byte";
		return -1;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* The protocol: text in format 1, a number in format 2. */
static int rd_protocol(struct cb_rd *r, int version, uint8_t *proto)
{
	char name[ZT_FR_PROTO_MAX];
	uint64_t v;

	if (version >= 2) {
		if (rd_uint(r, 255, &v))
			return -1;
		*proto = (uint8_t)v;
		return 0;
	}
	if (rd_text(r, name, sizeof(name)))
		return -1;
	if (zt_flowrec_proto_parse(name, proto)) {
		r->why = "CBOR: protocol text is neither a protocol name nor a number 0-255";
		return -1;
	}
	return 0;
}

static int decode_rec(struct cb_rd *r, struct zt_flow_record *x, int version)
{
	uint8_t m;
	uint64_t v, len;
	const uint8_t *p;
	int64_t *ints[12] = { &x->bytes_sent,	   &x->bytes_received,	 &x->packet_count,
			      &x->packets_sent,	   &x->packets_received, &x->duration_ms,
			      &x->start_time_us,   &x->end_time_us,	 &x->created_at_us,
			      &x->source_identity, &x->dest_identity,	 &x->aggregate_count };
	uint32_t f;

	memset(x, 0, sizeof(*x));
	if (rd_head(r, &m, &v))
		return -1;
	if (m != 4 || v != (version >= 3 ? NFIELDS : NFIELDS_V2)) {
		r->why = version >= 3 ? "CBOR: a record is not an array of 36 fields" :
					"CBOR: a record is not an array of 33 fields";
		return -1;
	}
	if (rd_bytes(r, &p, &len))
		return -1;
	if (len != 16) {
		r->why = "CBOR: id is not 16 bytes";
		return -1;
	}
	memcpy(x->id, p, 16);
	if (rd_uint(r, 255, &v))
		return -1;
	if (v != AF_INET && v != AF_INET6) {
		r->why = "CBOR: address family neither AF_INET nor AF_INET6";
		return -1;
	}
	x->family = (uint8_t)v;
	if (rd_uint(r, 1, &v))
		return -1;
	x->kind = (uint8_t)v;
	if (rd_uint(r, 1, &v))
		return -1;
	x->blocked = v;
	if (rd_uint(r, 255, &v))
		return -1;
	x->tcp_flags = (uint8_t)v;
	if (rd_uint(r, ZT_FR_HAS_ALL, &v))
		return -1;
	x->present = (uint32_t)v;
	for (int i = 0; i < 2; i++) {
		if (rd_bytes(r, &p, &len))
			return -1;
		if (len != (x->family == AF_INET6 ? 16u : 4u)) {
			r->why = "CBOR: address length does not match the family";
			return -1;
		}
		memcpy(i ? x->dest_ip : x->source_ip, p, len);
	}
	if (rd_uint(r, 65535, &v))
		return -1;
	x->source_port = (uint16_t)v;
	if (rd_uint(r, 65535, &v))
		return -1;
	x->dest_port = (uint16_t)v;
	if (rd_uint(r, UINT32_MAX, &v))
		return -1;
	f = (uint32_t)v;
	memcpy(&x->anomaly_score, &f, 4);
	for (int i = 0; i < 12; i++)
		if (rd_int(r, ints[i]))
			return -1;
	if (rd_protocol(r, version, &x->protocol) ||
	    rd_text(r, x->threat_type, sizeof(x->threat_type)) ||
	    rd_text(r, x->verdict, sizeof(x->verdict)) ||
	    rd_text(r, x->drop_reason, sizeof(x->drop_reason)) ||
	    rd_text(r, x->policy, sizeof(x->policy)) ||
	    rd_text(r, x->source_workload, sizeof(x->source_workload)) ||
	    rd_text(r, x->dest_workload, sizeof(x->dest_workload)) ||
	    rd_text(r, x->node, sizeof(x->node)) ||
	    rd_text(r, x->interface, sizeof(x->interface)) ||
	    rd_text(r, x->direction, sizeof(x->direction)))
		return -1;
	if (version < 3)
		return 0;
	if (rd_uint(r, 1, &v) || rd_text(r, x->source_spiffe_id, sizeof(x->source_spiffe_id)) ||
	    rd_text(r, x->dest_spiffe_id, sizeof(x->dest_spiffe_id)))
		return -1;
	x->mtls = v != 0;
	return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int zt_spool_encode(const struct zt_flow_record *recs, size_t n, uint8_t **out, size_t *outlen)
{
	struct zt_buf b = { 0 };
	uLongf clen;
	uint8_t *seg;

	if (n == 0 || n > MAX_SEG_RECORDS)
		return -EINVAL;
	if (zt_buf_reserve(&b, 16))
		return -ENOMEM;
	cb_head(&b, 4, n);
	for (size_t i = 0; i < n; i++) {
		if (encode_rec(&b, &recs[i])) {
			zt_buf_free(&b);
			return -ENOMEM;
		}
	}
	clen = compressBound(b.len);
	seg = malloc(HDR_LEN + clen);
	if (!seg) {
		zt_buf_free(&b);
		return -ENOMEM;
	}
	if (compress2(seg + HDR_LEN, &clen, b.p, b.len, Z_BEST_SPEED) != Z_OK) {
		free(seg);
		zt_buf_free(&b);
		return -ENOMEM;
	}
	memcpy(seg, MAGIC, 8);
	be32(seg + 8, (uint32_t)n);
	be32(seg + 12, (uint32_t)b.len);
	be32(seg + 16, (uint32_t)clen);
	be32(seg + 20, (uint32_t)crc32(0, seg + HDR_LEN, (uInt)clen));
	be32(seg + 24, (uint32_t)crc32(0, seg, 24));
	zt_buf_free(&b);
	*out = seg;
	*outlen = HDR_LEN + clen;
	return 0;
}

/*
 * Inflates src into a new buffer of exactly want bytes. The buffer grows with
 * what actually comes out (at most twice that, plus INFLATE_STEP): a header
 * that claims gigabytes costs nothing unless the data delivers them.
 * 0; -EBADMSG (corrupt, longer or shorter than want); -ENOMEM.
 */
static int inflate_all(const uint8_t *src, uint32_t srclen, uint32_t want, uint8_t **out)
{
	z_stream zs = { 0 };
	uint8_t *b = NULL, *nb, extra;
	size_t cap = 0;
	int r = -EBADMSG, zr;

	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)src;
	zs.avail_in = srclen;
	for (;;) {
		if (zs.total_out == cap && cap < want) {
			size_t ncap = cap + (want - cap < INFLATE_STEP ? want - cap : INFLATE_STEP);

			if (ncap < want && ncap < 2 * cap)
				ncap = 2 * cap < want ? 2 * cap : want;
			nb = realloc(b, ncap ? ncap : 1);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			b = nb;
			cap = ncap;
		}
		if (zs.total_out < cap) {
			zs.next_out = b + zs.total_out;
			zs.avail_out = (uInt)(cap - zs.total_out);
		} else {
			/* Full: one more byte tells "ends here" from "too long". */
			zs.next_out = &extra;
			zs.avail_out = 1;
		}
		zr = inflate(&zs, Z_NO_FLUSH);
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK || zs.total_out > want)
			goto out;
		if (zs.avail_out && !zs.avail_in)
			goto out; /* truncated: wants input that is not there */
	}
	if (zs.total_out != want || zs.avail_in)
		goto out;
	*out = b;
	b = NULL;
	r = 0;
out:
	inflateEnd(&zs);
	free(b);
	return r;
}

int zt_spool_decode(const uint8_t *buf, size_t len, struct zt_flow_record **recs, size_t *n,
		    char *why, size_t whylen)
{
	uint32_t cnt, ulen, clen;
	uint8_t *raw = NULL, m;
	uint64_t v;
	struct zt_flow_record *out;
	struct cb_rd rd;
	int version, r;

	if (len < HDR_LEN) {
		zt_seterr(why, whylen, "truncated: %zu bytes, shorter than the header", len);
		return -EBADMSG;
	}
	if (!memcmp(buf, MAGIC, 8)) {
		version = 3;
	} else if (!memcmp(buf, MAGIC_V2, 8)) {
		version = 2;
	} else if (!memcmp(buf, MAGIC_V1, 8)) {
		version = 1;
	} else {
		zt_seterr(why, whylen, "not a spool segment (bad magic)");
		return -EBADMSG;
	}
	if (rd32(buf + 24) != (uint32_t)crc32(0, buf, 24)) {
		zt_seterr(why, whylen, "header CRC mismatch");
		return -EBADMSG;
	}
	cnt = rd32(buf + 8);
	ulen = rd32(buf + 12);
	clen = rd32(buf + 16);
	if (len != HDR_LEN + (size_t)clen) {
		zt_seterr(why, whylen, "truncated or padded: %zu bytes, header says %zu", len,
			  HDR_LEN + (size_t)clen);
		return -EBADMSG;
	}
	if (rd32(buf + 20) != (uint32_t)crc32(0, buf + HDR_LEN, clen)) {
		zt_seterr(why, whylen, "payload CRC mismatch");
		return -EBADMSG;
	}
	if (cnt == 0 || cnt > MAX_SEG_RECORDS || ulen > (uint64_t)cnt * MAX_REC_CBOR + 16 ||
	    ulen < (uint64_t)cnt * MIN_REC_CBOR + 1 ||
	    ulen > (uint64_t)clen * ZLIB_MAX_RATIO + 64) {
		zt_seterr(why, whylen,
			  "implausible header: %u records, %u bytes inflated from %u compressed",
			  cnt, ulen, clen);
		return -EBADMSG;
	}
	r = inflate_all(buf + HDR_LEN, clen, ulen, &raw);
	if (r == -ENOMEM) {
		zt_seterr(why, whylen, "out of memory inflating %u bytes", ulen);
		return r;
	}
	if (r < 0) {
		zt_seterr(why, whylen, "zlib: payload does not inflate to %u bytes", ulen);
		return -EBADMSG;
	}
	out = calloc(cnt, sizeof(*out));
	if (!out) {
		free(raw);
		zt_seterr(why, whylen, "out of memory for %u records", cnt);
		return -ENOMEM;
	}
	rd = (struct cb_rd){ .p = raw, .n = ulen };
	if (rd_head(&rd, &m, &v) || m != 4 || v != cnt)
		rd.why = rd.why ? rd.why : "CBOR: not an array of the header's record count";
	else
		for (uint32_t i = 0; i < cnt && !rd.why; i++)
			if (decode_rec(&rd, &out[i], version) && !rd.why)
				rd.why = "CBOR: bad record";
	if (!rd.why && rd.at != rd.n)
		rd.why = "CBOR: bytes after the last record";
	free(raw);
	if (rd.why) {
		zt_seterr(why, whylen, "%s", rd.why);
		free(out);
		return -EBADMSG;
	}
	*recs = out;
	*n = cnt;
	return 0;
}

/* --- files --- */

static bool parse_seq(const char *name, const char *prefix, uint64_t *seq)
{
	size_t pl = strlen(prefix), n = strlen(name);
	char digits[32];

	if (n != pl + 20 + 4 || strncmp(name, prefix, pl) || strcmp(name + n - 4, ".zsp"))
		return false;
	memcpy(digits, name + pl, 20);
	digits[20] = '\0';
	return zt_parse_u64(digits, seq) == 0;
}

static bool is_zsp(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && !strcmp(name + n - 4, ".zsp") && name[0] != '.';
}

/* Whether a file is a format-1 segment (written before schema migration 003). */
static bool is_format1(int dirfd, const char *name)
{
	char magic[8];
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	bool yes;

	if (fd < 0)
		return false;
	yes = read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	      !memcmp(magic, MAGIC_V1, sizeof(magic));
	close(fd);
	return yes;
}

static void retry_add(uint64_t **v, size_t *n, uint64_t seq)
{
	uint64_t *p = realloc(*v, (*n + 1) * sizeof(**v));

	/* Without memory the file stays rejected: an operator can still rename it. */
	if (p) {
		p[(*n)++] = seq;
		*v = p;
	}
}

/*
 * Records an older agent refused into rejected-*.zsp in format 1 may have
 * been refused only because migration 003 had changed the column types
 * under it (a rolling upgrade: another node's agent migrated first). They
 * get one more try as ordinary segments; what the server refuses again is
 * rejected anew, in format 2, and stays.
 */
static void retry_format1(struct zt_spool *s, const uint64_t *seqs, size_t n)
{
	char from[64], to[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(from, sizeof(from), "rejected-%020" PRIu64 ".zsp", seqs[i]);
		snprintf(to, sizeof(to), "seg-%020" PRIu64 ".zsp", seqs[i]);
		if (renameat(s->dirfd, from, s->dirfd, to) == 0) {
			s->st.segments++;
			s->st.format1_retried++;
		}
	}
	if (n)
		fsync(s->dirfd);
}

int zt_spool_open(const char *dir, uint64_t max_bytes, struct zt_spool **out, char *err,
		  size_t errlen)
{
	struct zt_spool *s;
	DIR *d;
	struct dirent *e;
	uint64_t *retry = NULL;
	size_t n_retry = 0;
	int r;

	r = zt_mkdir_p(dir, 0700);
	if (r < 0) {
		zt_seterr(err, errlen, "spool %s: mkdir: %s", dir, strerror(-r));
		return r;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		zt_seterr(err, errlen, "spool %s: out of memory", dir);
		return -ENOMEM;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->max_bytes = max_bytes;
	s->next_seq = 1;
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = s->dirfd >= 0 ? fdopendir(dup(s->dirfd)) : NULL;
	if (!d) {
		r = -errno;
		zt_seterr(err, errlen, "spool %s: open: %s", dir, strerror(errno));
		if (s->dirfd >= 0)
			close(s->dirfd);
		free(s);
		return r;
	}
	while ((e = readdir(d))) {
		struct stat st;
		uint64_t seq;

		if (!strncmp(e->d_name, ".tmp-", 5)) {
			/* A segment whose write did not finish: never valid. */
			if (unlinkat(s->dirfd, e->d_name, 0) == 0)
				s->st.partial_removed++;
			continue;
		}
		if (!is_zsp(e->d_name) || fstatat(s->dirfd, e->d_name, &st, 0) < 0)
			continue;
		s->st.bytes += (uint64_t)st.st_size;
		if (parse_seq(e->d_name, "seg-", &seq) || parse_seq(e->d_name, "bad-seg-", &seq) ||
		    parse_seq(e->d_name, "rejected-", &seq)) {
			if (seq >= s->next_seq)
				s->next_seq = seq + 1;
			if (!strncmp(e->d_name, "seg-", 4))
				s->st.segments++;
			else if (!strncmp(e->d_name, "rejected-", 9) &&
				 is_format1(s->dirfd, e->d_name))
				retry_add(&retry, &n_retry, seq);
		}
	}
	closedir(d);
	retry_format1(s, retry, n_retry);
	free(retry);
	if (s->st.partial_removed)
		fsync(s->dirfd);
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void zt_spool_close(struct zt_spool *s)
{
	if (!s)
		return;
	close(s->dirfd);
	pthread_mutex_destroy(&s->lock);
	free(s->held);
	free(s);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Writes a finished file as prefix<seq>.zsp: temp, fsync, rename, fsync dir. Locked. */
static int put_file(struct zt_spool *s, const char *prefix, const uint8_t *data, size_t len,
		    uint64_t *seqp, char *err, size_t errlen)
{
	char tmp[96], name[64];
	uint64_t seq = s->next_seq++;

	*seqp = seq;
	int fd, r;

	snprintf(name, sizeof(name), "%s%020" PRIu64 ".zsp", prefix, seq);
	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "spool %s/%s: create: %s", s->dir, tmp, strerror(-r));
		return r;
	}
	r = write_all(fd, data, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && renameat(s->dirfd, tmp, s->dirfd, name) < 0)
		r = -errno;
	if (!r && fsync(s->dirfd) < 0)
		r = -errno;
	if (r) {
		zt_seterr(err, errlen, "spool %s/%s: write: %s", s->dir, name, strerror(-r));
		unlinkat(s->dirfd, tmp, 0);
		return r;
	}
	s->st.bytes += len;
	return 0;
}

static int spool_put(struct zt_spool *s, const char *prefix, const struct zt_flow_record *recs,
		     size_t n, uint64_t *held_seq, char *err, size_t errlen)
{
	uint8_t *seg = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int r;

	if (n == 0)
		return held_seq ? -EINVAL : 0;
	r = zt_spool_encode(recs, n, &seg, &len);
	pthread_mutex_lock(&s->lock);
	if (!r && held_seq &&
	    zt_grow((void **)&s->held, &s->cap_held, s->n_held + 1, sizeof(*s->held)) < 0)
		r = -ENOMEM;
	if (r) {
		zt_seterr(err, errlen, "spool %s: encoding %zu records: %s; records dropped",
			  s->dir, n, strerror(-r));
	} else if (s->st.bytes + len > s->max_bytes) {
		r = -ENOSPC;
		zt_seterr(err, errlen,
			  "spool %s: full (%" PRIu64 " of %" PRIu64 " bytes, segment of %zu more): "
			  "%zu new records dropped",
			  s->dir, s->st.bytes, s->max_bytes, len, n);
	} else {
		r = put_file(s, prefix, seg, len, &seq, err, errlen);
	}
	if (r) {
		/* A held write that fails is the caller's to keep elsewhere: not dropped yet. */
		if (!held_seq)
			s->st.dropped_records += n;
	} else if (held_seq) {
		s->held[s->n_held++] = (struct held){ .seq = seq, .bytes = len };
		s->st.held_segments++;
		s->st.held_bytes += len;
		*held_seq = seq;
	} else if (prefix[0] == 's') {
		s->st.segments++, s->st.records_written += n;
	} else {
		s->st.rejected_records += n;
	}
	pthread_mutex_unlock(&s->lock);
	free(seg);
	return r;
}

int zt_spool_write(struct zt_spool *s, const struct zt_flow_record *recs, size_t n, char *err,
		   size_t errlen)
{
	return spool_put(s, "seg-", recs, n, NULL, err, errlen);
}

int zt_spool_reject(struct zt_spool *s, const struct zt_flow_record *recs, size_t n, char *err,
		    size_t errlen)
{
	return spool_put(s, "rejected-", recs, n, NULL, err, errlen);
}

int zt_spool_write_held(struct zt_spool *s, const struct zt_flow_record *recs, size_t n,
			uint64_t *seq, char *err, size_t errlen)
{
	int r = spool_put(s, "seg-", recs, n, seq, err, errlen);

	if (r == -EINVAL)
		zt_seterr(err, errlen, "spool %s: a held segment needs records", s->dir);
	return r;
}

int zt_spool_release(struct zt_spool *s, uint64_t seq, bool keep, char *err, size_t errlen)
{
	char name[64];
	size_t i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->n_held && s->held[i].seq != seq; i++)
		;
	if (i == s->n_held) {
		zt_seterr(err, errlen, "spool %s: segment %" PRIu64 " is not held", s->dir, seq);
		r = -ENOENT;
		goto out;
	}
	s->st.held_segments--;
	s->st.held_bytes -= s->held[i].bytes;
	if (keep) {
		/* The journal becomes an ordinary segment, replayed like any other. */
		s->st.segments++;
	} else {
		snprintf(name, sizeof(name), "seg-%020" PRIu64 ".zsp", seq);
		if (unlinkat(s->dirfd, name, 0) < 0) {
			r = -errno;
			/* Still on disk: replayed later, harmlessly (ON CONFLICT DO NOTHING). */
			s->st.segments++;
			zt_seterr(err, errlen, "spool %s/%s: delete: %s", s->dir, name,
				  strerror(-r));
		} else {
			s->st.bytes -=
				s->held[i].bytes < s->st.bytes ? s->held[i].bytes : s->st.bytes;
		}
	}
	s->held[i] = s->held[--s->n_held];
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

static bool is_held(const struct zt_spool *s, uint64_t seq)
{
	for (size_t i = 0; i < s->n_held; i++)
		if (s->held[i].seq == seq)
			return true;
	return false;
}

static int oldest(struct zt_spool *s, char *name, size_t n, uint64_t *seq)
{
	DIR *d = fdopendir(dup(s->dirfd));
	struct dirent *e;
	uint64_t best = UINT64_MAX, v;

	if (!d)
		return -errno;
	rewinddir(d);
	while ((e = readdir(d)))
		if (parse_seq(e->d_name, "seg-", &v) && v < best && !is_held(s, v))
			best = v;
	closedir(d);
	if (best == UINT64_MAX)
		return -ENOENT;
	snprintf(name, n, "seg-%020" PRIu64 ".zsp", best);
	*seq = best;
	return 0;
}

int zt_spool_next(struct zt_spool *s, struct zt_spool_seg *seg, char *err, size_t errlen)
{
	char name[64], why[256], bad[80];
	uint8_t *buf = NULL;
	struct stat st;
	int fd, r;
	size_t got = 0;

	memset(seg, 0, sizeof(*seg));
	pthread_mutex_lock(&s->lock);
	r = oldest(s, name, sizeof(name), &seg->seq);
	if (r) {
		if (r != -ENOENT)
			zt_seterr(err, errlen, "spool %s: list: %s", s->dir, strerror(-r));
		goto out;
	}
	fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "spool %s/%s: open: %s", s->dir, name, strerror(-r));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	if (st.st_size > SEG_FILE_MAX) {
		close(fd);
		snprintf(why, sizeof(why), "%lld bytes, more than a segment ever has (%u)",
			 (long long)st.st_size, SEG_FILE_MAX);
		r = -EBADMSG;
		goto bad;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		r = buf ? -EIO : -ENOMEM;
		zt_seterr(err, errlen, "spool %s/%s: read: %s", s->dir, name, strerror(-r));
		goto out;
	}
	seg->file_bytes = (uint64_t)st.st_size;
	r = zt_spool_decode(buf, got, &seg->recs, &seg->n, why, sizeof(why));
bad:
	if (r == -EBADMSG) {
		snprintf(bad, sizeof(bad), "bad-%s", name);
		if (renameat(s->dirfd, name, s->dirfd, bad) < 0) {
			zt_seterr(err, errlen,
				  "spool %s/%s: corrupt segment (%s); moving it aside failed: %s",
				  s->dir, name, why, strerror(errno));
			r = -EIO;
			goto out;
		}
		fsync(s->dirfd);
		s->st.corrupt_segments++;
		s->st.segments--;
		zt_seterr(err, errlen, "spool %s/%s: corrupt segment (%s), moved aside as %s",
			  s->dir, name, why, bad);
	} else if (r) {
		zt_seterr(err, errlen, "spool %s/%s: %s", s->dir, name, why);
	}
out:
	pthread_mutex_unlock(&s->lock);
	free(buf);
	return r;
}

void zt_spool_seg_free(struct zt_spool_seg *seg)
{
	free(seg->recs);
	seg->recs = NULL;
	seg->n = 0;
}

int zt_spool_done(struct zt_spool *s, struct zt_spool_seg *seg, char *err, size_t errlen)
{
	char name[64];
	int r = 0;

	snprintf(name, sizeof(name), "seg-%020" PRIu64 ".zsp", seg->seq);
	pthread_mutex_lock(&s->lock);
	if (unlinkat(s->dirfd, name, 0) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "spool %s/%s: delete: %s", s->dir, name, strerror(-r));
	} else {
		fsync(s->dirfd);
		s->st.bytes -= seg->file_bytes < s->st.bytes ? seg->file_bytes : s->st.bytes;
		s->st.segments--;
	}
	pthread_mutex_unlock(&s->lock);
	zt_spool_seg_free(seg);
	return r;
}

void zt_spool_get_stats(struct zt_spool *s, struct zt_spool_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	pthread_mutex_unlock(&s->lock);
}
