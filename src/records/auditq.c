// SPDX-License-Identifier: GPL-2.0-only
/* The audit queue: a segmented journal drained into audit_log (see auditq.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "records/audit.h"
#include "records/auditq.h"
#include "records/db.h"
#include "records/flowrec.h"
#include "agent/log.h"
#include "agent/util.h"

#define REC_HDR ZT_AUDITQ_REC_HDR
#define REC_MIN ZT_AUDITQ_REC_MIN
#define REC_MAX ZT_AUDITQ_REC_MAX
#define AUDITQ_BATCH 512 /* records per transaction, at most */
#define AUDITQ_BATCH_BYTES (4u << 20)
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define SEG_MIN (4u << 10) /* segment size: max_bytes / 8 within these */
#define SEG_MAX (4u << 20)
#define ROTATE_DONE (64u << 10) /* a head all done is replaced once it holds this much */
#define SEG_FILE_MAX (1ull << 30) /* a segment file larger than this is not read, but moved aside */
#define SEG_LIST_MAX 65536u /* segments taken at open */
#define QUARANTINE_MAX_BYTES (16u << 20) /* damaged bytes kept in quarantine/ */
#define QUARANTINE_MAX_FILES 1024u
#define DEADLETTER_MAX (64u << 20)
#define CURSOR_LEN 20 /* u64 segment, u64 offset, u32 crc32 */
#define LEGACY_CURSOR_LEN 8 /* u64 offset into audit.journal */
#define RB_CAP (2u * REC_MAX)
#define LOG_RANGES 8 /* damaged ranges logged one by one per segment, then a summary */
#define PATH_LEN 4200

struct seg {
	uint64_t id;
	uint64_t size; /* bytes that count: for the head, what the posts wrote */
};

/* A read window over one file, so that decoding and resynchronising read big chunks. */
struct rbuf {
	int fd;
	uint64_t end; /* bytes of the file that count */
	uint64_t seg; /* which segment the cached bytes are from */
	uint8_t *b;
	uint64_t base;
	size_t have;
};

struct zt_auditq {
	char conninfo[4096];
	char dir[4096];
	char cursor_path[PATH_LEN];
	char deadletter_path[PATH_LEN];
	char node[256];
	uint64_t max_bytes, seg_bytes, rotate_done;
	struct seg *segs; /* oldest first; the last one is the head */
	size_t nsegs, segcap;
	int head_fd;
	bool head_broken; /* a failed write could not be cut back: start a new head */
	int rd_fd; /* an open sealed segment being read, rd_fd_id */
	uint64_t rd_fd_id;
	uint64_t rd_seg, rd_off; /* the first record not yet done */
	uint64_t disk_bytes; /* sum of segs[].size */
	uint64_t dur_seg; /* the segment audit.cursor names: those before it can go */
	bool cursor_dirty, cursor_failing, unlink_failing;
	uint64_t q_bytes, q_files; /* in quarantine/ */
	struct rbuf rb;
	pthread_t thread;
	bool started, stop;
	bool idle_wait; /* the writer waits for a record: a post wakes it */
	bool hurry; /* zt_auditq_drain: retry now, not after the backoff */
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct zt_auditq_stats st;
	uint64_t drop_log_ns, rotate_log_ns;
	struct zt_audit *audit;
	/* More side rows (incidents, the capture index): zt_auditq_open_ex. */
	struct zt_auditq_side sides[ZT_AUDITQ_MAX_SIDES];
	size_t n_sides;
	/* Set by side_rows (writer thread only): which side rows the server refused. */
	const char *side_refused;
	char side_sqlstate[6];
};

static const uint32_t field_max[4] = { ZT_AUDITQ_KIND_MAX, ZT_AUDITQ_ACTOR_MAX,
				       ZT_AUDITQ_SUBJECT_MAX, REC_MAX };

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- text ---- */

/* Length of a valid UTF-8 sequence at s (up to end), 0 if not valid. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Text for a TEXT column: invalid UTF-8 bytes become the four characters \xNN. */
static void text_clean(const char *s, char *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""),
			    *end = p + strlen((const char *)p);
	size_t o = 0;

	while (p < end) {
		size_t l = utf8_len(p, end);

		if (l == 0) {
			if (o + 5 > n)
				break;
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
			p++;
			continue;
		}
		if (o + l + 1 > n)
			break;
		memcpy(buf + o, p, l);
		o += l;
		p += l;
	}
	buf[o] = '\0';
}

void zt_json_escape(const char *s, char *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""),
			    *end = p + strlen((const char *)p);
	size_t o = 0;

	if (!n)
		return;
	while (p < end) {
		char tmp[8];
		size_t l = utf8_len(p, end), tl;

		if (l == 0) {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\\\x%02x", *p);
			l = 1;
		} else if (*p == '"' || *p == '\\') {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
		} else {
			if (o + l + 1 > n)
				break;
			memcpy(buf + o, p, l);
			o += l;
			p += l;
			continue;
		}
		if (o + tl + 1 > n)
			break;
		memcpy(buf + o, tmp, tl);
		o += tl;
		p += l;
	}
	buf[o] = '\0';
}

/* ---- the record ---- */

int zt_auditq_decode_record(const uint8_t *buf, size_t n, struct zt_auditq_record *rec)
{
	struct zt_auditq_record r;
	uint32_t len, o = REC_HDR;

	if (!buf || n < 4)
		return -ENODATA;
	len = get32(buf);
	if (len < REC_MIN || len > REC_MAX)
		return -EBADMSG;
	if (len > n)
		return -ENODATA;
	for (int i = 0; i < 4; i++) {
		uint32_t l;

		if (len - o < 4)
			return -EBADMSG;
		l = get32(buf + o);
		o += 4;
		if (l > len - o || l > field_max[i] || memchr(buf + o, 0, l))
			return -EBADMSG;
		r.field[i] = (const char *)buf + o;
		r.field_len[i] = l;
		o += l;
	}
	/* The fields fill the record exactly: what post writes, and what resync relies on. */
	if (o != len || crc32(0L, buf + 8, len - 8) != get32(buf + 4))
		return -EBADMSG;
	r.len = len;
	r.time_us = get64(buf + 8);
	*rec = r;
	return (int)len;
}

ssize_t zt_auditq_encode_record(uint64_t time_us, const char *const fields[4], uint8_t *out,
				size_t cap)
{
	size_t len = REC_HDR, fl[4], o = REC_HDR;

	for (int i = 0; i < 4; i++) {
		fl[i] = strlen(fields[i]);
		if (fl[i] > field_max[i])
			return -EINVAL;
		len += 4 + fl[i];
	}
	if (len > REC_MAX)
		return -EINVAL;
	if (!out || cap < len)
		return (ssize_t)len;
	put32(out, (uint32_t)len);
	put64(out + 8, time_us);
	for (int i = 0; i < 4; i++) {
		put32(out + o, (uint32_t)fl[i]);
		memcpy(out + o + 4, fields[i], fl[i]);
		o += 4 + fl[i];
	}
	put32(out + 4, (uint32_t)crc32(0L, out + 8, (uInt)(len - 8)));
	return (ssize_t)len;
}

/* ---- reading a segment ---- */

static ssize_t pread_full(int fd, uint8_t *b, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void rb_reset(struct rbuf *r, int fd, uint64_t seg, uint64_t end)
{
	if (r->seg != seg || r->fd != fd)
		r->have = 0;
	r->fd = fd;
	r->seg = seg;
	r->end = end;
}

/*
 * The bytes at off (up to REC_MAX of them, fewer near the end or if the
 * file is shorter than it should be): 0, or -errno when it cannot be read.
 */
static int rb_view(struct rbuf *r, uint64_t off, const uint8_t **p, size_t *n)
{
	uint64_t want = off < r->end ? r->end - off : 0;

	if (want == 0) {
		*p = r->b;
		*n = 0;
		return 0;
	}
	if (want > REC_MAX)
		want = REC_MAX;
	if (off < r->base || off + want > r->base + r->have) {
		uint64_t len = r->end - off > RB_CAP ? RB_CAP : r->end - off;
		ssize_t got = pread_full(r->fd, r->b, (size_t)len, off);

		if (got < 0) {
			r->have = 0;
			return (int)got;
		}
		r->base = off;
		r->have = (size_t)got;
	}
	*p = r->b + (off - r->base);
	*n = r->have - (size_t)(off - r->base);
	if (*n > want)
		*n = (size_t)want;
	return 0;
}

/* zt_auditq_decode_record at off: its length, -ENODATA / -EBADMSG, or -errno of the read. */
static int rb_decode(struct rbuf *r, uint64_t off, struct zt_auditq_record *rec)
{
	const uint8_t *p;
	size_t n;
	int e = rb_view(r, off, &p, &n);

	return e < 0 ? e : zt_auditq_decode_record(p, n, rec);
}

/* The first offset >= from where a whole record decodes, or end. */
static uint64_t rb_resync(struct rbuf *r, uint64_t from)
{
	struct zt_auditq_record rec;

	for (uint64_t p = from; p < r->end && r->end - p >= REC_MIN; p++) {
		const uint8_t *b = NULL;
		size_t n = 0;
		uint32_t len;

		if (rb_view(r, p, &b, &n) < 0 || n < REC_MIN)
			return r->end;
		/* Cheap test first: a length that fits, then the whole decode. */
		len = get32(b);
		if (len < REC_MIN || len > REC_MAX || len > n)
			continue;
		if (zt_auditq_decode_record(b, n, &rec) > 0)
			return p;
	}
	return r->end;
}

/* ---- files ---- */

static void seg_path(const struct zt_auditq *q, uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "%s/audit-%016" PRIx64 ".journal", q->dir, id);
}

/* "audit-" 16 lowercase hex digits ".journal", nothing else. */
static bool seg_name_parse(const char *name, uint64_t *id)
{
	uint64_t v = 0;

	if (strlen(name) != 6 + 16 + 8 || strncmp(name, "audit-", 6) ||
	    strcmp(name + 22, ".journal"))
		return false;
	for (int i = 6; i < 22; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*id = v;
	return true;
}

static struct seg *seg_find(struct zt_auditq *q, uint64_t id)
{
	for (size_t i = 0; i < q->nsegs; i++)
		if (q->segs[i].id == id)
			return &q->segs[i];
	return NULL;
}

static struct seg *head(struct zt_auditq *q)
{
	return &q->segs[q->nsegs - 1];
}

static int seg_push(struct zt_auditq *q, uint64_t id, uint64_t size)
{
	void *v = q->segs;
	int r = zt_grow(&v, &q->segcap, q->nsegs + 1, sizeof(*q->segs));

	if (r < 0)
		return r;
	q->segs = v;
	q->segs[q->nsegs++] = (struct seg){ id, size };
	return 0;
}

static int quarantine_dir(struct zt_auditq *q, char *buf, size_t n)
{
	snprintf(buf, n, "%s/quarantine", q->dir);
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Moves a state file that cannot be used aside (a rename: nothing is copied). */
static void quarantine_file(struct zt_auditq *q, const char *path, const char *name,
			    const char *why)
{
	char qd[PATH_LEN], dst[PATH_LEN + 300];
	int r = quarantine_dir(q, qd, sizeof(qd));

	snprintf(dst, sizeof(dst), "%s/%s.%" PRIu64, qd, name, zt_now_unix_ns() / 1000);
	if (r == 0 && rename(path, dst) < 0)
		r = -errno;
	if (r == 0)
		log_warn("audit_state_quarantined", "file=%s moved_to=%s why=\"%s\"", path, dst,
			 why);
	else
		log_error(
			"audit_state_quarantine_failed",
			"file=%s why=\"%s\" error=\"%s\" action=\"ignored; move or remove it by hand\"",
			path, why, strerror(-r));
}

/*
 * Copies bytes [off, off + len) of fd to quarantine/audit-SEG-OFF.TIME.damaged,
 * within QUARANTINE_MAX_*: 0 (dst names the file) or -errno (-ENOSPC: over
 * the bound), nothing kept then.
 */
static int quarantine_range(struct zt_auditq *q, int fd, uint64_t seg, uint64_t off, uint64_t len,
			    char *dst, size_t dstlen)
{
	char qd[PATH_LEN];
	uint8_t buf[65536];
	int out, r;

	if (q->q_files >= QUARANTINE_MAX_FILES || q->q_bytes + len > QUARANTINE_MAX_BYTES)
		return -ENOSPC;
	r = quarantine_dir(q, qd, sizeof(qd));
	if (r < 0)
		return r;
	snprintf(dst, dstlen, "%s/audit-%016" PRIx64 "-%016" PRIx64 ".%" PRIu64 ".damaged", qd, seg,
		 off, zt_now_unix_ns() / 1000);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return -errno;
	for (uint64_t o = 0; r == 0 && o < len;) {
		size_t n = len - o > sizeof(buf) ? sizeof(buf) : (size_t)(len - o);
		ssize_t got = pread_full(fd, buf, n, off + o);

		if (got <= 0)
			break; /* the file is shorter than it said: keep what there is */
		if (write(out, buf, (size_t)got) != got)
			r = -EIO;
		o += (uint64_t)got;
	}
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	close(out);
	if (r < 0) {
		unlink(dst);
		return r;
	}
	q->q_bytes += len;
	q->q_files++;
	return 0;
}

/* Moves a damaged range aside and says so (the first LOG_RANGES of a scan one by one). */
static void damaged_range(struct zt_auditq *q, int fd, uint64_t seg, uint64_t off, uint64_t len,
			  bool torn, unsigned int nth)
{
	char dst[PATH_LEN + 128] = "";
	int r = quarantine_range(q, fd, seg, off, len, dst, sizeof(dst));

	q->st.quarantined++;
	if (nth >= LOG_RANGES)
		return;
	if (r == 0)
		log_warn("audit_journal_damaged",
			 "segment=%016" PRIx64 " offset=%" PRIu64 " bytes=%" PRIu64
			 " what=%s action=quarantined file=%s",
			 seg, off, len,
			 torn ? "torn-tail(the agent stopped while writing it)" : "damaged-record",
			 dst);
	else
		log_error("audit_journal_damaged",
			  "segment=%016" PRIx64 " offset=%" PRIu64 " bytes=%" PRIu64
			  " what=%s action=skipped error=\"%s\" why=\"%s\"",
			  seg, off, len, torn ? "torn-tail" : "damaged-record", strerror(-r),
			  r == -ENOSPC ? "quarantine/ is full (16 MiB or 1024 files): clear it" :
					 "the bytes could not be copied to quarantine/");
}

static int cursor_write(struct zt_auditq *q, uint64_t seg, uint64_t off)
{
	char tmp[PATH_LEN + 8];
	uint8_t b[CURSOR_LEN];
	int fd, r = 0;

	put64(b, seg);
	put64(b + 8, off);
	put32(b + 16, (uint32_t)crc32(0L, b, 16));
	snprintf(tmp, sizeof(tmp), "%s.tmp", q->cursor_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		r = -EIO;
	else if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, q->cursor_path) < 0)
		r = -errno;
	return r;
}

/* 0 (*seg, *off), -ENOENT when there is none, -EBADMSG when it does not check out. */
static int cursor_read(struct zt_auditq *q, uint64_t *seg, uint64_t *off)
{
	uint8_t b[CURSOR_LEN + 1];
	struct stat sb;
	ssize_t n;
	int fd = open(q->cursor_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EBADMSG;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n == LEGACY_CURSOR_LEN) {
		/* The single-file journal's cursor: an offset into what is now segment 0. */
		*seg = 0;
		*off = get64(b);
		return 0;
	}
	if (n != CURSOR_LEN || crc32(0L, b, 16) != get32(b + 16))
		return -EBADMSG;
	*seg = get64(b);
	*off = get64(b + 8);
	return 0;
}

/*
 * A journal of the single-file format (DIR/audit.journal) becomes segment
 * 0, where its cursor (8 bytes) points. Found beside segments (an older
 * agent ran in between), it becomes the newest one instead: its records
 * are then sent after the others, never skipped as done. After list_segments.
 */
static int take_over_legacy(struct zt_auditq *q)
{
	char legacy[PATH_LEN], dst[PATH_LEN];
	struct stat sb;
	uint64_t id = q->nsegs ? head(q)->id + 1 : 0;

	snprintf(legacy, sizeof(legacy), "%s/audit.journal", q->dir);
	if (lstat(legacy, &sb) < 0)
		return 0;
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SEG_FILE_MAX || (id == 0 && q->nsegs)) {
		quarantine_file(q, legacy, "audit.journal",
				S_ISREG(sb.st_mode) ?
					"too large, or no segment number left for it" :
					"not a regular file");
		return 0;
	}
	seg_path(q, id, dst, sizeof(dst));
	if (rename(legacy, dst) < 0) {
		log_error("audit_journal_convert", "from=%s to=%s error=\"%s\"", legacy, dst,
			  strerror(errno));
		return 0;
	}
	log_info("audit_journal_converted", "from=%s to=%s bytes=%lld", legacy, dst,
		 (long long)sb.st_size);
	return seg_push(q, id, (uint64_t)sb.st_size);
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void quarantine_usage(struct zt_auditq *q)
{
	char qd[PATH_LEN], p[PATH_LEN + 300];
	struct dirent *de;
	DIR *d;

	snprintf(qd, sizeof(qd), "%s/quarantine", q->dir);
	d = opendir(qd);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", qd, de->d_name);
		if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
			q->q_bytes += (uint64_t)sb.st_size;
			q->q_files++;
		}
	}
	closedir(d);
}

/* The segments in DIR, oldest first, with their sizes; what cannot be one is moved aside. */
static int list_segments(struct zt_auditq *q, char *err, size_t errlen)
{
	char(*bad)[256] = NULL, p[PATH_LEN + 300];
	size_t nbad = 0, badcap = 0;
	struct dirent *de;
	DIR *d = opendir(q->dir);
	int r = 0;

	if (!d) {
		r = -errno;
		snprintf(err, errlen, "audit journal directory %s: %s", q->dir, strerror(-r));
		return r;
	}
	while (r == 0 && (de = readdir(d))) {
		uint64_t id;
		size_t l = strlen(de->d_name);

		if (seg_name_parse(de->d_name, &id)) {
			if (q->nsegs >= SEG_LIST_MAX) {
				log_error("audit_journal_segments",
					  "dir=%s limit=%u action=\"the rest is left for later\"",
					  q->dir, SEG_LIST_MAX);
				break;
			}
			r = seg_push(q, id, 0);
		} else if (l > 12 && !strcmp(de->d_name + l - 12, ".journal.tmp")) {
			/* A repair that did not finish: the segment itself is intact. */
			snprintf(p, sizeof(p), "%s/%s", q->dir, de->d_name);
			unlink(p);
		} else if (!strncmp(de->d_name, "audit-", 6) && l > 8 &&
			   !strcmp(de->d_name + l - 8, ".journal") && l < 200) {
			void *v = bad;

			r = zt_grow(&v, &badcap, nbad + 1, sizeof(*bad));
			bad = v;
			if (r == 0)
				snprintf(bad[nbad++], sizeof(*bad), "%s", de->d_name);
		}
	}
	closedir(d);
	for (size_t i = 0; i < nbad; i++) {
		snprintf(p, sizeof(p), "%s/%s", q->dir, bad[i]);
		quarantine_file(q, p, bad[i], "not a segment name (audit-<16 hex digits>.journal)");
	}
	free(bad);
	if (r < 0) {
		snprintf(err, errlen, "audit journal %s: out of memory listing segments", q->dir);
		return r;
	}
	if (q->nsegs)
		qsort(q->segs, q->nsegs, sizeof(*q->segs), cmp_seg);
	for (size_t i = 0; i < q->nsegs;) {
		struct stat sb;
		const char *why = NULL;

		seg_path(q, q->segs[i].id, p, sizeof(p));
		if (lstat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
			why = "not a regular file";
		else if ((uint64_t)sb.st_size > SEG_FILE_MAX)
			why = "larger than any segment this agent writes (1 GiB)";
		if (why) {
			quarantine_file(q, p, strrchr(p, '/') + 1, why);
			memmove(&q->segs[i], &q->segs[i + 1],
				(q->nsegs - i - 1) * sizeof(*q->segs));
			q->nsegs--;
			continue;
		}
		q->segs[i].size = (uint64_t)sb.st_size;
		i++;
	}
	return 0;
}

/*
 * Copies the intact records of segment s from start on into a new file that
 * replaces it, and its damaged ranges to quarantine/. *records gets the
 * records kept. 0 or -errno (the segment is left as it was).
 */
static int seg_rewrite(struct zt_auditq *q, struct seg *s, int fd, uint64_t start,
		       uint64_t *records)
{
	char path[PATH_LEN], tmp[PATH_LEN + 8];
	uint64_t p = 0, size = 0, n = 0;
	unsigned int ranges = 0;
	int out, r = 0;

	seg_path(q, s->id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return -errno;
	rb_reset(&q->rb, fd, s->id, s->size);
	while (r == 0 && p < s->size) {
		struct zt_auditq_record rec;
		int l = rb_decode(&q->rb, p, &rec);
		uint64_t nx;

		if (l > 0) {
			if (p >= start) {
				const uint8_t *b;
				size_t have;

				/* rb_decode just read these bytes: the view is the record. */
				rb_view(&q->rb, p, &b, &have);
				if (write(out, b, (size_t)l) != l)
					r = -EIO;
				size += (uint64_t)l;
				n++;
			}
			p += (uint64_t)l;
			continue;
		}
		if (l != -EBADMSG && l != -ENODATA) {
			r = l;
			break;
		}
		nx = rb_resync(&q->rb, p + 1);
		if (nx > start)
			damaged_range(q, fd, s->id, p, nx - p, l == -ENODATA && nx == s->size,
				      ranges++);
		p = nx;
	}
	if (ranges > LOG_RANGES)
		log_warn("audit_journal_damaged", "segment=%016" PRIx64 " ranges=%u logged=%u",
			 s->id, ranges, LOG_RANGES);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	close(out);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	q->rb.seg = UINT64_MAX; /* its bytes moved */
	s->size = size;
	*records = n;
	return 0;
}

/*
 * Checks segment s from `from` on. A cursor inside a record is moved back
 * to its start (the record is sent again rather than lost); damage at or
 * after the start is cut out (seg_rewrite), so what is read later is whole.
 * A done part larger than a segment (a single-file journal that grew) is
 * cut off the same way, so that it does not count against max_bytes.
 * *start gets where reading starts, *records how many records are from there.
 */
static int seg_check(struct zt_auditq *q, struct seg *s, uint64_t from, uint64_t *start,
		     uint64_t *records)
{
	char path[PATH_LEN];
	uint64_t p = 0, st = from, n = 0;
	bool damage = false;
	int fd, r = 0;

	*start = from;
	*records = 0;
	if (s->size == 0)
		return 0;
	seg_path(q, s->id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	rb_reset(&q->rb, fd, s->id, s->size);
	while (p < s->size) {
		struct zt_auditq_record rec;
		int l = rb_decode(&q->rb, p, &rec);

		if (l > 0) {
			if (p < from && p + (uint64_t)l > from)
				st = p;
			if (p >= st)
				n++;
			p += (uint64_t)l;
			continue;
		}
		if (l != -EBADMSG && l != -ENODATA) {
			r = l;
			goto out;
		}
		{
			uint64_t nx = rb_resync(&q->rb, p + 1);

			if (nx > st)
				damage = true;
			p = nx;
		}
	}
	if (st != from)
		log_warn(
			"audit_journal_cursor",
			"segment=%016" PRIx64 " cursor=%" PRIu64 " record_start=%" PRIu64
			" action=replay-from-record-start why=\"the cursor is not on a record boundary\"",
			s->id, from, st);
	if (damage || st > q->seg_bytes) {
		r = seg_rewrite(q, s, fd, st, &n);
		if (r < 0) {
			/* The writer skips the damage when it meets it. */
			log_error("audit_journal_repair",
				  "segment=%s error=\"%s\" action=\"skipped while reading\"", path,
				  strerror(-r));
			r = 0;
		} else {
			st = 0;
		}
	}
	*start = st;
	*records = n;
out:
	close(fd);
	q->rb.fd = -1;
	q->rb.seg = UINT64_MAX;
	return r;
}

static int open_head(struct zt_auditq *q, bool create)
{
	char path[PATH_LEN];
	int fd;

	seg_path(q, head(q)->id, path, sizeof(path));
	fd = open(path,
		  O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0),
		  0600);
	if (fd < 0)
		return -errno;
	if (q->head_fd >= 0)
		close(q->head_fd);
	q->head_fd = fd;
	q->head_broken = false;
	return 0;
}

/* A new, empty head after the current one. With q->lock held (or before the thread). */
static int rotate_head(struct zt_auditq *q)
{
	uint64_t id = head(q)->id + 1;
	int r;

	if (id == 0)
		return -EOVERFLOW;
	r = seg_push(q, id, 0);
	if (r < 0)
		return r;
	r = open_head(q, true);
	if (r < 0)
		q->nsegs--;
	return r;
}

/* Opens the journal, repairs what needs it, positions at the cursor. */
static int journal_open(struct zt_auditq *q, char *err, size_t errlen)
{
	uint64_t cs = 0, co = 0, start = 0, pending = 0;
	size_t first = 0;
	int cr, r;

	r = list_segments(q, err, errlen);
	if (r < 0)
		return r;
	r = take_over_legacy(q);
	if (r < 0) {
		snprintf(err, errlen, "audit journal %s: out of memory", q->dir);
		return r;
	}
	quarantine_usage(q);
	cr = cursor_read(q, &cs, &co);
	if (cr == -EBADMSG) {
		quarantine_file(
			q, q->cursor_path, "audit.cursor",
			"not a valid cursor (20 bytes, the last 4 their crc32): replaying from the oldest segment");
	} else if (cr == 0 && q->nsegs) {
		struct seg *s = seg_find(q, cs);

		if (s) {
			first = (size_t)(s - q->segs);
			start = co;
			if (co > s->size) {
				log_warn("audit_journal_cursor",
					 "segment=%016" PRIx64 " cursor=%" PRIu64 " size=%" PRIu64
					 " action=replay-segment",
					 cs, co, s->size);
				start = 0;
			}
		} else if (cs > head(q)->id) {
			log_warn("audit_journal_cursor",
				 "segment=%016" PRIx64
				 " action=replay-all why=\"the cursor names a "
				 "segment newer than any there is\"",
				 cs);
		}
	}
	/* Segments before the cursor's are done (a deletion that did not happen). */
	for (size_t i = 0; i < first; i++) {
		char p[PATH_LEN];

		seg_path(q, q->segs[i].id, p, sizeof(p));
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn("audit_journal_unlink", "path=%s error=\"%s\"", p,
				 strerror(errno));
	}
	if (first) {
		memmove(q->segs, q->segs + first, (q->nsegs - first) * sizeof(*q->segs));
		q->nsegs -= first;
	}
	for (size_t i = 0; i < q->nsegs;) {
		uint64_t st, n;

		r = seg_check(q, &q->segs[i], i == 0 ? start : 0, &st, &n);
		if (r < 0) {
			char p[PATH_LEN], why[128];

			/* Unreadable: moved aside, so that the rest still gets through. */
			seg_path(q, q->segs[i].id, p, sizeof(p));
			snprintf(why, sizeof(why), "cannot be read: %s", strerror(-r));
			quarantine_file(q, p, strrchr(p, '/') + 1, why);
			memmove(&q->segs[i], &q->segs[i + 1],
				(q->nsegs - i - 1) * sizeof(*q->segs));
			q->nsegs--;
			if (i == 0)
				start = 0;
			continue;
		}
		if (i == 0)
			start = st;
		pending += n;
		i++;
	}
	if (q->nsegs == 0) {
		r = seg_push(q, cr == 0 && cs < UINT64_MAX ? cs + 1 : 1, 0);
		if (r == 0)
			r = open_head(q, true);
		start = 0;
	} else {
		r = open_head(q, false);
	}
	if (r < 0) {
		snprintf(err, errlen, "audit journal in %s: cannot open its head segment: %s",
			 q->dir, strerror(-r));
		return r;
	}
	q->rd_seg = q->segs[0].id;
	q->rd_off = start;
	for (size_t i = 0; i < q->nsegs; i++)
		q->disk_bytes += q->segs[i].size;
	q->dur_seg = q->rd_seg;
	if (cr != 0 || cs != q->rd_seg || co != q->rd_off) {
		r = cursor_write(q, q->rd_seg, q->rd_off);
		if (r < 0) {
			q->cursor_dirty = q->cursor_failing = true;
			log_warn("audit_cursor_write", "path=%s error=\"%s\" action=retrying",
				 q->cursor_path, strerror(-r));
		}
	}
	q->st.pending = pending;
	q->st.pending_bytes = q->disk_bytes - q->rd_off;
	if (pending)
		log_info("audit_journal_replay", "dir=%s pending=%" PRIu64 " segments=%zu", q->dir,
			 pending, q->nsegs);
	return 0;
}

/* ---- the writer ---- */

static bool caught_up(struct zt_auditq *q)
{
	return q->rd_seg == head(q)->id && q->rd_off >= head(q)->size;
}

static uint64_t count_pending_bytes(struct zt_auditq *q)
{
	uint64_t n = 0;

	for (size_t i = 0; i < q->nsegs; i++)
		if (q->segs[i].id >= q->rd_seg)
			n += q->segs[i].size - (q->segs[i].id == q->rd_seg ? q->rd_off : 0);
	return n;
}

/* The fd to read segment id from (the head's, or one opened for it): -errno if none. */
static int read_fd(struct zt_auditq *q, uint64_t id)
{
	char p[PATH_LEN];

	if (id == head(q)->id)
		return q->head_fd;
	if (q->rd_fd >= 0 && q->rd_fd_id == id)
		return q->rd_fd;
	if (q->rd_fd >= 0)
		close(q->rd_fd);
	seg_path(q, id, p, sizeof(p));
	q->rd_fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	q->rd_fd_id = id;
	return q->rd_fd >= 0 ? q->rd_fd : -errno;
}

/* Records still to do from the read position: after a repair, by reading them. */
static void recount_pending(struct zt_auditq *q)
{
	uint64_t n = 0;

	for (size_t i = 0; i < q->nsegs; i++) {
		struct seg *s = &q->segs[i];
		uint64_t p = s->id == q->rd_seg ? q->rd_off : 0;
		int fd;

		if (s->id < q->rd_seg || (fd = read_fd(q, s->id)) < 0)
			continue;
		rb_reset(&q->rb, fd, s->id, s->size);
		while (p < s->size) {
			struct zt_auditq_record rec;
			int l = rb_decode(&q->rb, p, &rec);

			if (l > 0) {
				n++;
				p += (uint64_t)l;
			} else {
				p = l == -EBADMSG || l == -ENODATA ? rb_resync(&q->rb, p + 1) :
								     s->size;
			}
		}
	}
	q->st.pending = n;
	q->st.pending_bytes = count_pending_bytes(q);
}

/* Damage where the writer reads (the file changed under us): moved aside, reading goes on. */
static void skip_damage(struct zt_auditq *q, int fd, int why)
{
	struct seg *s = seg_find(q, q->rd_seg);
	uint64_t nx;

	rb_reset(&q->rb, fd, s->id, s->size);
	nx = rb_resync(&q->rb, q->rd_off + 1);
	damaged_range(q, fd, s->id, q->rd_off, nx - q->rd_off, why == -ENODATA && nx == s->size, 0);
	q->rd_off = nx;
	q->cursor_dirty = true;
	recount_pending(q);
}

/*
 * Writes the cursor if it moved; deletes the segments before the one it
 * names. The writer's, with q->lock held. The cursor's write and fsync run with
 * the lock released: a post (from the loop, the detection engine, the mTLS
 * relay) must not wait on the disk, which under load takes a second or
 * more to sync. Only the writer moves rd_seg/rd_off, so what it writes
 * stays the position reached; a post meanwhile only appends.
 */
static void housekeeping(struct zt_auditq *q)
{
	if (q->cursor_dirty) {
		uint64_t seg = q->rd_seg, off = q->rd_off;
		int r;

		q->cursor_dirty = false;
		pthread_mutex_unlock(&q->lock);
		r = cursor_write(q, seg, off);
		pthread_mutex_lock(&q->lock);
		if (r < 0)
			q->cursor_dirty = true;
		if (r == 0) {
			q->dur_seg = seg;
			if (q->cursor_failing)
				log_info("audit_cursor_written", "path=%s", q->cursor_path);
			q->cursor_failing = false;
		} else if (!q->cursor_failing) {
			q->cursor_failing = true;
			log_warn(
				"audit_cursor_write",
				"path=%s error=\"%s\" action=\"retrying; the segments before it are kept until it is written\"",
				q->cursor_path, strerror(-r));
		}
	}
	while (q->nsegs > 1 && q->segs[0].id < q->dur_seg) {
		char p[PATH_LEN];

		seg_path(q, q->segs[0].id, p, sizeof(p));
		if (unlink(p) < 0 && errno != ENOENT) {
			if (!q->unlink_failing)
				log_error("audit_journal_unlink", "path=%s error=\"%s\"", p,
					  strerror(errno));
			q->unlink_failing = true;
			break;
		}
		q->unlink_failing = false;
		if (q->rd_fd >= 0 && q->rd_fd_id == q->segs[0].id) {
			close(q->rd_fd);
			q->rd_fd = -1;
		}
		q->disk_bytes -= q->segs[0].size;
		memmove(q->segs, q->segs + 1, (q->nsegs - 1) * sizeof(*q->segs));
		q->nsegs--;
	}
}

static void wait_ms(struct zt_auditq *q, unsigned int ms, bool posts_wake)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	/* Posts do not cut a backoff short (no reconnect per event while the
	 * database is down); a drain or a stop does. */
	q->idle_wait = posts_wake;
	while (!q->stop && !q->hurry &&
	       pthread_cond_timedwait(&q->wake, &q->lock, &ts) != ETIMEDOUT)
		if (posts_wake)
			break;
	q->idle_wait = false;
	q->hurry = false;
}

/* An import written by an older agent lists no CIDRs: it has no blocks rows. */
static bool is_block_change(const char *kind, const char *detail)
{
	return !strcmp(kind, "block.add") || !strcmp(kind, "block.del") ||
	       !strcmp(kind, "block.expire") ||
	       (!strcmp(kind, "block.import") && strstr(detail, "\"cidrs\":["));
}

/*
 * The rows beside a batch's audit rows, in its transaction: one INSERT into
 * alerts for its policy violations and IOC hits (kind and severity from
 * the detail's alert_kind / alert_severity when given) and one into blocks for its block
 * changes. Their id is the event's, so a replay adds nothing twice. A bulk
 * event (import, expiry) lists its CIDRs in detail "cidrs": one blocks row
 * each, with a UUIDv7 of the event's time whose random bits are
 * MD5(event id, place in the list): as stable across a replay, and apart
 * from those of other events (event ids of one millisecond differ only in
 * a counter).
 */
static int side_rows(void *ctx, PGconn *c, const struct zt_audit_rec *rows, size_t n, char *err,
		     size_t errlen)
{
	/*
	 * An aggregated violation (denyagg.h) posts its alert_id more than once
	 * with a growing count: one row per alert_id keeps the highest. DISTINCT
	 * ON: one batch may hold two states of one alert, and ON CONFLICT DO
	 * UPDATE must not meet a row twice in one statement.
	 */
	static const char alert_head[] =
		"INSERT INTO alerts (id, at, node, severity, kind, source_ip, dest_ip, dest_port, protocol, detail, count, last_at) "
		"SELECT DISTINCT ON (1) coalesce((d->>'alert_id')::uuid, (d->>'event_id')::uuid), "
		"to_timestamp(coalesce((d->>'first_unix_us')::bigint, (d->>'event_unix_us')::bigint) / 1e6), $1, "
		"coalesce(d->>'alert_severity', CASE WHEN d->>'verdict' = 'denied' THEN 'warning' ELSE 'info' END), "
		"coalesce(d->>'alert_kind', CASE WHEN d->>'verdict' = 'denied' THEN 'policy-deny' ELSE 'policy-audit' END), "
		"(d->>'src')::inet, (d->>'dst')::inet, (d->>'dport')::integer, lower(d->>'protocol'), d, "
		"coalesce((d->>'count')::bigint, 1), "
		"to_timestamp(coalesce((d->>'last_unix_us')::bigint, (d->>'event_unix_us')::bigint) / 1e6) "
		"FROM (VALUES ";
	static const char alert_tail[] =
		") s(d) ORDER BY 1, coalesce((d->>'count')::bigint, 1) DESC "
		"ON CONFLICT (id) DO UPDATE SET count = GREATEST(alerts.count, EXCLUDED.count), "
		"last_at = GREATEST(alerts.last_at, EXCLUDED.last_at), "
		"detail = CASE WHEN EXCLUDED.count > alerts.count THEN EXCLUDED.detail ELSE alerts.detail END";
	static const char block_head[] =
		"INSERT INTO blocks (id, at, node, action, cidr, kind, source, reason, expires_at) "
		"SELECT CASE WHEN e.o IS NULL THEN (d->>'event_id')::uuid ELSE encode(set_byte(set_byte(b, 6, "
		"(get_byte(b, 6) & 15) | 112), 8, (get_byte(b, 8) & 63) | 128), 'hex')::uuid END, "
		"to_timestamp((d->>'event_unix_us')::bigint / 1e6), $1, action, e.c::cidr, "
		"d->>'kind', d->>'source', d->>'reason', "
		"CASE WHEN coalesce((d->>'ttl_s')::bigint, 0) > 0 THEN "
		"to_timestamp((d->>'event_unix_us')::bigint / 1e6) + make_interval(secs => (d->>'ttl_s')::bigint) END "
		"FROM (VALUES ";
	static const char block_tail[] =
		") s(d, action, subject) CROSS JOIN LATERAL ("
		"SELECT x.c, x.o, overlay(uuid_send((d->>'event_id')::uuid) placing "
		"substr(decode(md5((d->>'event_id') || '/' || x.o), 'hex'), 1, 10) from 7 for 10) "
		"FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(d->'cidrs') = 'array' "
		"THEN d->'cidrs' END) WITH ORDINALITY x(c, o) "
		"UNION ALL SELECT s.subject, NULL::bigint, NULL::bytea "
		"WHERE jsonb_typeof(d->'cidrs') IS DISTINCT FROM 'array') e(c, o, b) "
		"ON CONFLICT (id) DO NOTHING";
	struct zt_auditq *q = ctx;
	const char **params = calloc(1 + 3 * n, sizeof(*params));
	char *sql = malloc(sizeof(alert_head) + sizeof(block_head) + sizeof(block_tail) + n * 48);
	int r = 0;

	q->side_refused = NULL;
	q->side_sqlstate[0] = '\0';
	if (!params || !sql) {
		free(params);
		free(sql);
		zt_seterr(err, errlen, "audit: out of memory for %zu alert and block rows", n);
		return -ENOMEM;
	}
	for (int pass = 0; pass < 2 && r == 0; pass++) {
		int np = 1;
		size_t o = (size_t)sprintf(sql, "%s", pass ? block_head : alert_head);

		params[0] = q->node;
		for (size_t i = 0; i < n; i++) {
			const char *k = rows[i].kind;

			if (pass == 0 && (!strcmp(k, "policy.violation") || !strcmp(k, "ioc.hit") ||
					  !strcmp(k, "drift.flapping"))) {
				params[np] = rows[i].detail;
				o += (size_t)sprintf(sql + o, "%s($%d::jsonb)", np > 1 ? "," : "",
						     np + 1);
				np++;
			} else if (pass == 1 && is_block_change(k, rows[i].detail)) {
				params[np] = rows[i].detail;
				params[np + 1] = !strcmp(k, "block.del")    ? "unblock" :
						 !strcmp(k, "block.expire") ? "expire" :
									      "block";
				params[np + 2] = rows[i].subject;
				o += (size_t)sprintf(sql + o,
						     "%s($%d::jsonb, $%d::text, $%d::text)",
						     np > 1 ? "," : "", np + 1, np + 2, np + 3);
				np += 3;
			}
		}
		if (np == 1)
			continue;
		sprintf(sql + o, "%s", pass ? block_tail : alert_tail);
		{
			PGresult *res = PQexecParams(c, sql, np, NULL, params, NULL, NULL, 0);

			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				char m[400];

				snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
				m[strcspn(m, "\n")] = '\0';
				snprintf(q->side_sqlstate, sizeof(q->side_sqlstate), "%s",
					 st ? st : "");
				zt_seterr(err, errlen, "audit: %s rows: %s (SQLSTATE %s)",
					  pass ? "blocks" : "alerts", m, st ? st : "none");
				if (PQstatus(c) != CONNECTION_OK) {
					r = -EIO;
				} else if (zt_audit_classify(st) == ZT_AUDIT_ERR_CONTENT) {
					q->side_refused = pass ? "blocks" : "alerts";
					r = -EINVAL;
				} else {
					r = zt_audit_classify(st) == ZT_AUDIT_ERR_CONNECTION ?
						    -EIO :
						    -EAGAIN;
				}
			}
			PQclear(res);
		}
	}
	/* Then the registered writers (incidents, the capture index), same transaction. */
	for (size_t i = 0; i < q->n_sides && r == 0; i++) {
		r = q->sides[i].fn(q->sides[i].ctx, c, rows, n, err, errlen);
		if (r == -EINVAL) {
			q->side_refused = q->sides[i].name;
			snprintf(q->side_sqlstate, sizeof(q->side_sqlstate), "%s",
				 PQstatus(c) == CONNECTION_OK ? "22000" : "");
		}
	}
	free(params);
	free(sql);
	return r;
}

/* Records read from the journal for one batch: their fields in one arena. */
struct batch {
	size_t n;
	struct zt_audit_rec rows[AUDITQ_BATCH];
	uint64_t time_us[AUDITQ_BATCH];
	uint64_t end[AUDITQ_BATCH]; /* offset after record i in the read segment */
	size_t fo[AUDITQ_BATCH][4]; /* field offsets in arena */
	char *arena;
	size_t len, cap;
};

/*
 * Reads up to AUDITQ_BATCH records (AUDITQ_BATCH_BYTES) of the read
 * segment from the read position, with q->lock held. *why gets why it
 * stopped early: -EBADMSG/-ENODATA at a damaged record, another -errno
 * when the file could not be read, 0 otherwise.
 */
static size_t batch_read(struct zt_auditq *q, struct batch *b, int fd, int *why)
{
	struct seg *s = seg_find(q, q->rd_seg);
	uint64_t p = q->rd_off, bytes = 0;

	b->n = 0;
	b->len = 0;
	*why = 0;
	rb_reset(&q->rb, fd, s->id, s->size);
	while (b->n < AUDITQ_BATCH && p < s->size && bytes < AUDITQ_BATCH_BYTES) {
		struct zt_auditq_record rec;
		int l = rb_decode(&q->rb, p, &rec);
		size_t need;

		if (l < 0) {
			*why = l;
			break;
		}
		need = (size_t)rec.field_len[0] + rec.field_len[1] + rec.field_len[2] +
		       rec.field_len[3] + 4;
		if (b->len + need > b->cap) {
			size_t cap = b->cap ? b->cap : 1u << 16;
			char *a;

			while (cap < b->len + need)
				cap *= 2;
			a = realloc(b->arena, cap);
			if (!a) {
				*why = -ENOMEM;
				break;
			}
			b->arena = a;
			b->cap = cap;
		}
		for (int k = 0; k < 4; k++) {
			b->fo[b->n][k] = b->len;
			memcpy(b->arena + b->len, rec.field[k], rec.field_len[k]);
			b->len += rec.field_len[k];
			b->arena[b->len++] = '\0';
		}
		b->time_us[b->n] = rec.time_us;
		p += (uint64_t)l;
		bytes += (uint64_t)l;
		b->end[b->n++] = p;
	}
	for (size_t i = 0; i < b->n; i++)
		b->rows[i] =
			(struct zt_audit_rec){ b->arena + b->fo[i][0], b->arena + b->fo[i][1],
					       b->arena + b->fo[i][2], b->arena + b->fo[i][3] };
	return b->n;
}

/* Appends one JSON line to deadletter.jsonl (fsynced): 0 or -errno (-ENOSPC over the bound). */
static int deadletter_add(struct zt_auditq *q, const struct zt_audit_rec *row, uint64_t time_us,
			  const char *what, const char *sqlstate, const char *reason,
			  uint64_t audit_seq)
{
	const char *t[5] = { row->kind, row->actor, row->subject, row->detail, reason };
	char *e[5] = { NULL }, *line = NULL, at[32] = "", seqs[48] = "";
	size_t cap = 512;
	uint64_t now_us = zt_now_unix_ns() / 1000;
	struct stat sb;
	int fd = -1, r = 0, len;

	for (int i = 0; i < 5; i++) {
		size_t n = 6 * strlen(t[i]) + 1;

		e[i] = malloc(n);
		if (!e[i]) {
			r = -ENOMEM;
			goto out;
		}
		zt_json_escape(t[i], e[i], n);
		cap += strlen(e[i]);
	}
	line = malloc(cap);
	if (!line) {
		r = -ENOMEM;
		goto out;
	}
	zt_time_format(now_us / 1000000, at, sizeof(at));
	if (audit_seq)
		snprintf(seqs, sizeof(seqs), ",\"audit_seq\":%" PRIu64, audit_seq);
	len = snprintf(line, cap,
		       "{\"at\":\"%s\",\"at_unix_us\":%" PRIu64
		       ",\"what\":\"%s\",\"sqlstate\":\"%s\",\"reason\":\"%s\"%s,\"event\":{"
		       "\"time_unix_us\":%" PRIu64
		       ",\"kind\":\"%s\",\"actor\":\"%s\",\"subject\":\"%s\",\"detail\":\"%s\"}}\n",
		       at, now_us, what, sqlstate, e[4], seqs, time_us, e[0], e[1], e[2], e[3]);
	if (len < 0 || (size_t)len >= cap) {
		r = -EOVERFLOW;
		goto out;
	}
	fd = open(q->deadletter_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	if ((uint64_t)sb.st_size + (uint64_t)len > DEADLETTER_MAX) {
		r = -ENOSPC;
		goto out;
	}
	if (write(fd, line, (size_t)len) != len) {
		/* Never leave half a line: the next one would not parse. */
		if (ftruncate(fd, sb.st_size) < 0)
			log_error("audit_deadletter_truncate", "path=%s error=\"%s\"",
				  q->deadletter_path, strerror(errno));
		r = -EIO;
	} else if (fsync(fd) < 0) {
		r = -errno;
	}
out:
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 5; i++)
		free(e[i]);
	free(line);
	return r;
}

/*
 * Commits the batch, or when the server refuses it for its content, its
 * records one by one, setting aside in deadletter.jsonl the ones refused.
 * Returns how many records are done (committed or set aside) and in *r the
 * last result (-EIO, -EAGAIN, -ENOMEM: the rest stays queued).
 */
static size_t batch_commit(struct zt_auditq *q, struct batch *b, int *r, uint64_t *seq,
			   uint64_t *written, uint64_t *refused, char *err, size_t errlen)
{
	size_t done = 0;

	q->side_refused = NULL;
	*r = zt_audit_append_batch(q->audit, b->rows, b->n, side_rows, q, seq, NULL, err, errlen);
	if (*r == 0) {
		*written += b->n;
		return b->n;
	}
	if (*r != -EINVAL)
		return 0;
	for (; done < b->n; done++) {
		const struct zt_audit_rec *row = &b->rows[done];
		char e2[512] = "", qs[600], qd[2200], qe[600], st[6];
		const char *side;
		int dl;

		q->side_refused = NULL;
		*r = zt_audit_append_batch(q->audit, row, 1, side_rows, q, seq, NULL, err, errlen);
		if (*r == 0) {
			(*written)++;
			continue;
		}
		if (*r != -EINVAL)
			break;
		side = q->side_refused;
		if (side) {
			snprintf(st, sizeof(st), "%s", q->side_sqlstate);
			/* Its alert or block row is refused: the audit row alone? */
			*r = zt_audit_append_batch(q->audit, row, 1, NULL, NULL, seq, NULL, e2,
						   sizeof(e2));
			if (*r == 0) {
				(*written)++;
				/* The audit row is in: retrying would add it twice. The side
				 * row goes to the dead-letter file, or failing that the log. */
				dl = deadletter_add(q, row, b->time_us[done], side, st, err, *seq);
				log_error("audit_side_row_refused",
					  "kind=%s subject=%s detail=%s error=%s audit_seq=%" PRIu64
					  " deadletter=%s",
					  row->kind, zt_log_quote(qs, sizeof(qs), row->subject),
					  zt_log_quote(qd, sizeof(qd), row->detail),
					  zt_log_quote(qe, sizeof(qe), err), *seq,
					  dl == 0 ? q->deadletter_path : "(could not be written)");
				continue;
			}
			if (*r != -EINVAL) {
				snprintf(err, errlen, "%s", e2);
				break;
			}
			snprintf(err, errlen, "%s", e2);
		}
		/* The audit row itself is refused for its content. */
		dl = deadletter_add(q, row, b->time_us[done], "audit_log",
				    zt_audit_last_sqlstate(q->audit), err, 0);
		if (dl < 0) {
			char e3[600];

			/* Never discarded: it stays in the journal until it can be set aside. */
			snprintf(e3, sizeof(e3), "%s", err);
			zt_seterr(err, errlen, "cannot set a refused record aside in %s (%s): %s",
				  q->deadletter_path,
				  dl == -ENOSPC ? "the file is full, 64 MiB" : strerror(-dl), e3);
			*r = -EAGAIN;
			break;
		}
		(*refused)++;
		log_error("audit_row_refused",
			  "kind=%s subject=%s detail=%s error=%s deadletter=%s", row->kind,
			  zt_log_quote(qs, sizeof(qs), row->subject),
			  zt_log_quote(qd, sizeof(qd), row->detail),
			  zt_log_quote(qe, sizeof(qe), err), q->deadletter_path);
	}
	if (done == b->n)
		*r = 0;
	return done;
}

static void *writer(void *arg)
{
	struct zt_auditq *q = arg;
	struct batch *b = calloc(1, sizeof(*b));
	unsigned int backoff = BACKOFF_MIN_MS;
	int down = 0; /* the error of the spell being retried, 0 when there is none */

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		char err[768] = "", q1[800];
		uint64_t seq = 0, written = 0, refused = 0;
		struct seg *s;
		size_t done;
		int r, fd, why;

		housekeeping(q);
		s = seg_find(q, q->rd_seg);
		if (!s) {
			/* Cannot happen: segments go only once the cursor is past them. */
			q->rd_seg = q->segs[0].id;
			q->rd_off = 0;
			continue;
		}
		if (q->rd_off >= s->size) {
			if (s != head(q)) {
				q->rd_seg = s[1].id;
				q->rd_off = 0;
				q->cursor_dirty = true;
				continue;
			}
			/* All done: a new head, so the old one can go once the cursor says so. */
			if (q->audit && s->size >= q->rotate_done && rotate_head(q) == 0) {
				q->rd_seg = head(q)->id;
				q->rd_off = 0;
				q->cursor_dirty = true;
				continue;
			}
			q->st.pending = 0;
			q->st.pending_bytes = 0;
			pthread_cond_broadcast(&q->idle);
			/*
			 * housekeeping() let the lock go: a stop signalled then found
			 * nobody waiting, so it is looked at here, under the lock held
			 * from this check to the wait.
			 */
			if (q->cursor_dirty) {
				wait_ms(q, 1000, true);
			} else if (!q->stop) {
				q->idle_wait = true;
				pthread_cond_wait(&q->wake, &q->lock);
				q->idle_wait = false;
			}
			continue;
		}
		if (!q->audit) {
			wait_ms(q, 1000, false);
			continue;
		}
		if (!b) {
			log_error("audit_writer_memory", "why=\"no memory for a batch\"");
			wait_ms(q, 1000, false);
			b = calloc(1, sizeof(*b));
			continue;
		}
		fd = read_fd(q, q->rd_seg);
		if (fd < 0) {
			log_error("audit_journal_read",
				  "segment=%016" PRIx64
				  " error=\"%s\" action=\"skipped: it cannot be opened\"",
				  q->rd_seg, strerror(-fd));
			q->rd_off = s->size;
			recount_pending(q);
			continue;
		}
		if (!batch_read(q, b, fd, &why)) {
			if (why == -EBADMSG || why == -ENODATA) {
				skip_damage(q, fd, why);
				continue;
			}
			log_error("audit_journal_read",
				  "segment=%016" PRIx64 " offset=%" PRIu64
				  " error=\"%s\" action=retrying",
				  q->rd_seg, q->rd_off, strerror(-why));
			wait_ms(q, 1000, false);
			continue;
		}
		pthread_mutex_unlock(&q->lock);
		done = batch_commit(q, b, &r, &seq, &written, &refused, err, sizeof(err));
		pthread_mutex_lock(&q->lock);
		q->st.written += written;
		q->st.refused += refused;
		if (written)
			q->st.last_seq = seq;
		if (done) {
			q->rd_off = b->end[done - 1];
			q->st.pending = q->st.pending > done ? q->st.pending - done : 0;
			q->st.pending_bytes = count_pending_bytes(q);
			q->cursor_dirty = true;
		}
		if (r < 0) {
			if (down != r)
				log_warn(r == -EIO ? "audit_db_unavailable" :
						     "audit_append_retrying",
					 "error=%s pending=%" PRIu64
					 " action=\"kept in the journal, retrying\"",
					 zt_log_quote(q1, sizeof(q1), err), q->st.pending);
			down = r;
			q->st.connected = r != -EIO;
			snprintf(q->st.last_error, sizeof(q->st.last_error), "%s", err);
			housekeeping(q);
			wait_ms(q, backoff, false);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		if (down)
			log_info("audit_db_available", "pending=%" PRIu64, q->st.pending);
		down = 0;
		backoff = BACKOFF_MIN_MS;
		q->st.connected = 1;
	}
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
	if (b)
		free(b->arena);
	free(b);
	return NULL;
}

/* ---- the interface ---- */

int zt_auditq_open(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		   struct zt_auditq **out, char *err, size_t errlen)
{
	return zt_auditq_open_ex(conninfo, dir, node, max_bytes, NULL, 0, out, err, errlen);
}

int zt_auditq_open_ex(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		      const struct zt_auditq_side *sides, size_t n_sides, struct zt_auditq **out,
		      char *err, size_t errlen)
{
	struct zt_auditq *q;
	pthread_condattr_t ca;
	int r;

	*out = NULL;
	if (n_sides > ZT_AUDITQ_MAX_SIDES) {
		snprintf(err, errlen, "at most %d side writers", ZT_AUDITQ_MAX_SIDES);
		return -EINVAL;
	}
	r = zt_mkdir_p(dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "audit journal directory %s: %s", dir, strerror(-r));
		return r;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(q->conninfo, sizeof(q->conninfo), "%s", conninfo ? conninfo : "");
	snprintf(q->dir, sizeof(q->dir), "%s", dir);
	snprintf(q->cursor_path, sizeof(q->cursor_path), "%s/audit.cursor", dir);
	snprintf(q->deadletter_path, sizeof(q->deadletter_path), "%s/deadletter.jsonl", dir);
	q->max_bytes = max_bytes ? max_bytes : 64u << 20;
	q->seg_bytes = q->max_bytes / 8;
	if (q->seg_bytes < SEG_MIN)
		q->seg_bytes = SEG_MIN;
	if (q->seg_bytes > SEG_MAX)
		q->seg_bytes = SEG_MAX;
	q->rotate_done = q->seg_bytes / 2 < ROTATE_DONE ? q->seg_bytes / 2 : ROTATE_DONE;
	snprintf(q->node, sizeof(q->node), "%s", node ? node : "");
	/* Before the writer starts: a replayed journal gets its side rows too. */
	for (size_t i = 0; i < n_sides; i++)
		q->sides[i] = sides[i];
	q->n_sides = n_sides;
	q->head_fd = q->rd_fd = -1;
	q->rb.fd = -1;
	q->rb.seg = UINT64_MAX;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake, &ca);
	pthread_cond_init(&q->idle, &ca);
	pthread_condattr_destroy(&ca);
	q->rb.b = malloc(RB_CAP);
	if (!q->rb.b) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
	if (r == 0)
		r = journal_open(q, err, errlen);
	if (r == 0 && q->conninfo[0]) {
		q->audit = zt_audit_new(q->conninfo);
		if (!q->audit)
			r = -ENOMEM;
		else
			zt_audit_set_migrate(q->audit, 1);
	}
	if (r == 0) {
		r = -pthread_create(&q->thread, NULL, writer, q);
		if (r == 0) {
			q->started = true;
			pthread_setname_np(q->thread, "zt-audit");
		} else {
			snprintf(err, errlen, "cannot start the audit writer: %s", strerror(-r));
		}
	}
	if (r < 0) {
		zt_auditq_close(q);
		return r;
	}
	*out = q;
	return 0;
}

int zt_auditq_post(struct zt_auditq *q, const char *kind, const char *actor, const char *subject,
		   const char *detail_json)
{
	char k[ZT_AUDITQ_KIND_MAX + 1], a[ZT_AUDITQ_ACTOR_MAX + 1], s[ZT_AUDITQ_SUBJECT_MAX + 1];
	char *d = NULL;
	const char *dj = detail_json && *detail_json ? detail_json : "{}";
	const char *fields[4] = { k, a, s, NULL };
	uint64_t now_us = zt_now_unix_ns() / 1000;
	ssize_t len;
	size_t dl;
	uint8_t *b = NULL;
	int r = 0;

	if (!q)
		return 0;
	while (*dj == ' ')
		dj++;
	if (*dj != '{')
		return -EINVAL;
	text_clean(kind, k, sizeof(k));
	text_clean(actor, a, sizeof(a));
	text_clean(subject, s, sizeof(s));
	dl = strlen(dj);
	/* Room for ,"event_id":"UUID","event_unix_us":N before the closing brace. */
	d = malloc(dl + 112);
	if (!d)
		return -ENOMEM;
	{
		const char *close = strrchr(dj, '}');
		size_t hd = close ? (size_t)(close - dj) : dl;
		bool empty = true;
		uint8_t id[16];
		char ids[40];

		for (size_t i = 1; i < hd; i++)
			if (dj[i] != ' ' && dj[i] != '\n' && dj[i] != '\t')
				empty = false;
		zt_uuidv7(id);
		zt_uuid_format(id, ids, sizeof(ids));
		snprintf(d, dl + 112, "%.*s%s\"event_id\":\"%s\",\"event_unix_us\":%lld}", (int)hd,
			 dj, empty ? "" : ",", ids, (long long)now_us);
	}
	fields[3] = d;
	len = zt_auditq_encode_record(now_us, fields, NULL, 0);
	if (len > 0)
		b = malloc((size_t)len);
	if (len < 0 || !b) {
		free(d);
		return len < 0 ? -EINVAL : -ENOMEM;
	}
	zt_auditq_encode_record(now_us, fields, b, (size_t)len);
	free(d);
	pthread_mutex_lock(&q->lock);
	if (q->disk_bytes + (uint64_t)len > q->max_bytes) {
		r = -ENOSPC;
	} else if (q->head_broken || head(q)->size >= q->seg_bytes) {
		int rr = rotate_head(q);

		if (rr < 0) {
			uint64_t now = zt_now_mono_ns();

			if (now - q->rotate_log_ns >= 1000000000ULL) {
				q->rotate_log_ns = now;
				log_error("audit_journal_rotate", "dir=%s error=\"%s\" action=%s",
					  q->dir, strerror(-rr),
					  q->head_broken ? "refused" : "appended-to-current");
			}
			if (q->head_broken)
				r = -EIO;
		}
	}
	if (r == 0) {
		ssize_t w = write(q->head_fd, b, (size_t)len);
		struct seg *h = head(q);

		if (w == len) {
			h->size += (uint64_t)len;
			q->disk_bytes += (uint64_t)len;
			q->st.posted++;
			q->st.pending++;
			q->st.pending_bytes += (uint64_t)len;
			/* One wake-up per idle spell, not one per event. */
			if (q->idle_wait)
				pthread_cond_signal(&q->wake);
		} else {
			/* A short write leaves a torn record: cut it so the journal stays
			 * whole, or write the next ones to a new head. */
			if (w > 0 && ftruncate(q->head_fd, (off_t)h->size) < 0) {
				q->head_broken = true;
				log_error("audit_journal_truncate",
					  "dir=%s error=\"%s\" action=\"a new segment is started\"",
					  q->dir, strerror(errno));
			}
			r = -EIO;
		}
	}
	if (r < 0) {
		uint64_t now = zt_now_mono_ns();
		char qs[1100];

		q->st.dropped++;
		if (now - q->drop_log_ns >= 1000000000ULL) {
			q->drop_log_ns = now;
			log_error("audit_event_dropped",
				  "kind=%s subject=%s why=\"%s\" dropped_total=%" PRIu64
				  " journal_bytes=%" PRIu64 " pending_bytes=%" PRIu64
				  " max_bytes=%" PRIu64,
				  k, zt_log_quote(qs, sizeof(qs), s),
				  r == -ENOSPC ?
					  "the audit journal is full (database unreachable?)" :
					  "the audit journal cannot be written",
				  q->st.dropped, q->disk_bytes, q->st.pending_bytes, q->max_bytes);
		}
	}
	pthread_mutex_unlock(&q->lock);
	free(b);
	return r;
}

void zt_auditq_get_stats(struct zt_auditq *q, struct zt_auditq_stats *st)
{
	if (!q) {
		memset(st, 0, sizeof(*st));
		return;
	}
	pthread_mutex_lock(&q->lock);
	*st = q->st;
	st->journal_bytes = q->disk_bytes;
	st->segments = q->nsegs;
	pthread_mutex_unlock(&q->lock);
}

int zt_auditq_drain(struct zt_auditq *q, unsigned int timeout_ms)
{
	uint64_t deadline = zt_now_mono_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int r = 0;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (!caught_up(q) && q->audit) {
		uint64_t now = zt_now_mono_ns();

		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		q->hurry = true;
		pthread_cond_signal(&q->wake);
		{
			struct timespec ts;
			uint64_t left = deadline - now < 50000000ULL ? deadline - now : 50000000ULL;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += (long)left;
			while (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&q->idle, &q->lock, &ts);
		}
	}
	if (!caught_up(q) && !q->audit)
		r = -ETIMEDOUT;
	pthread_mutex_unlock(&q->lock);
	return r;
}

void zt_auditq_close(struct zt_auditq *q)
{
	if (!q)
		return;
	if (q->started) {
		zt_auditq_drain(q, 2000);
		pthread_mutex_lock(&q->lock);
		q->stop = true;
		pthread_cond_broadcast(&q->wake);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->thread, NULL);
		/* The position reached, if the writer could not write it yet. */
		if (q->cursor_dirty && cursor_write(q, q->rd_seg, q->rd_off) < 0)
			log_warn("audit_cursor_write",
				 "path=%s why=\"a restart may append events again\"",
				 q->cursor_path);
		if (q->st.pending)
			log_info("audit_journal_kept", "dir=%s pending=%" PRIu64, q->dir,
				 q->st.pending);
	}
	zt_audit_free(q->audit);
	if (q->head_fd >= 0)
		close(q->head_fd);
	if (q->rd_fd >= 0)
		close(q->rd_fd);
	free(q->rb.b);
	free(q->segs);
	pthread_cond_destroy(&q->wake);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
