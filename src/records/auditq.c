// SPDX-License-Identifier: GPL-2.0-only
/* The audit queue: a journal file drained into audit_log (see auditq.h). */
#include <errno.h>
#include <fcntl.h>
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

#define REC_HDR 16u /* length, crc, time */
#define REC_MAX (1u << 20) /* one record, all four fields */
#define TRUNCATE_AT (1u << 20) /* committed bytes before the journal is cut back */
#define AUDITQ_BATCH 512 /* records per transaction, at most */
#define AUDITQ_BATCH_BYTES (4u << 20)
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u

struct zt_auditq {
	char conninfo[4096];
	char journal[4200];
	char cursor_path[4200];
	int fd;
	uint64_t max_bytes;
	uint64_t read_off; /* first record not yet committed */
	uint64_t end_off; /* end of the journal */
	pthread_t thread;
	bool started, stop;
	bool idle_wait; /* the writer waits for a record: a post wakes it */
	bool hurry; /* zt_auditq_drain: retry now, not after the backoff */
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct zt_auditq_stats st;
	uint64_t drop_log_ns;
	struct zt_audit *audit;
	char node[256];
};

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

static int write_cursor(struct zt_auditq *q, uint64_t off)
{
	char tmp[4300];
	uint8_t b[8];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", q->cursor_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	put64(b, off);
	if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b) || fsync(fd) < 0)
		r = -EIO;
	close(fd);
	if (r == 0 && rename(tmp, q->cursor_path) < 0)
		r = -errno;
	return r;
}

/*
 * Reads the record at off into *rec (malloc'ed, REC_HDR included). Returns
 * its length, 0 at the end, -EBADMSG for a torn or damaged record.
 */
static ssize_t read_rec(int fd, uint64_t off, uint64_t end, uint8_t **rec)
{
	uint8_t hdr[REC_HDR], *b;
	uint32_t len;

	*rec = NULL;
	if (off >= end)
		return 0;
	if (end - off < REC_HDR || pread(fd, hdr, REC_HDR, (off_t)off) != REC_HDR)
		return -EBADMSG;
	len = get32(hdr);
	if (len < REC_HDR + 16 || len > REC_MAX || len > end - off)
		return -EBADMSG;
	b = malloc(len);
	if (!b)
		return -ENOMEM;
	if (pread(fd, b, len, (off_t)off) != (ssize_t)len ||
	    crc32(0L, b + 8, len - 8) != get32(b + 4)) {
		free(b);
		return -EBADMSG;
	}
	*rec = b;
	return len;
}

/* The four fields of a record (NUL-terminated copies in out[], malloc'ed). */
static int rec_fields(const uint8_t *b, uint32_t len, char *out[4])
{
	uint32_t o = REC_HDR;

	for (int i = 0; i < 4; i++) {
		uint32_t l;

		out[i] = NULL;
		if (len - o < 4)
			goto bad;
		l = get32(b + o);
		o += 4;
		if (l > len - o)
			goto bad;
		out[i] = strndup((const char *)b + o, l);
		if (!out[i])
			goto bad;
		o += l;
	}
	return 0;
bad:
	for (int i = 0; i < 4; i++)
		free(out[i]);
	return -EBADMSG;
}

static void count_pending(struct zt_auditq *q)
{
	uint64_t off = q->read_off, n = 0;

	for (;;) {
		uint8_t *b;
		ssize_t l = read_rec(q->fd, off, q->end_off, &b);

		if (l <= 0)
			break;
		free(b);
		off += (uint64_t)l;
		n++;
	}
	q->st.pending = n;
	q->st.pending_bytes = q->end_off - q->read_off;
}

/* Opens the journal, drops a torn tail, positions at the cursor. */
static int journal_open(struct zt_auditq *q, char *err, size_t errlen)
{
	uint64_t off = 0;
	struct stat sb;
	uint8_t b8[8];
	int cfd;

	q->fd = open(q->journal, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (q->fd < 0) {
		snprintf(err, errlen, "audit journal %s: %s", q->journal, strerror(errno));
		return -errno;
	}
	if (fstat(q->fd, &sb) < 0) {
		snprintf(err, errlen, "audit journal %s: %s", q->journal, strerror(errno));
		return -errno;
	}
	q->end_off = (uint64_t)sb.st_size;
	cfd = open(q->cursor_path, O_RDONLY | O_CLOEXEC);
	if (cfd >= 0) {
		if (read(cfd, b8, sizeof(b8)) == (ssize_t)sizeof(b8))
			off = get64(b8);
		close(cfd);
	}
	if (off > q->end_off) {
		log_warn("audit_journal_cursor",
			 "journal=%s cursor=%llu size=%llu action=replay-all", q->journal,
			 (unsigned long long)off, (unsigned long long)q->end_off);
		off = 0;
	}
	/* Walk to the end: whatever does not check out from there on is a torn tail. */
	for (uint64_t p = off;;) {
		uint8_t *b;
		ssize_t l = read_rec(q->fd, p, q->end_off, &b);

		if (l == 0)
			break;
		if (l < 0) {
			log_warn(
				"audit_journal_torn",
				"journal=%s offset=%llu cut_bytes=%llu why=\"an incomplete or damaged record at the tail (the agent stopped while writing it)\"",
				q->journal, (unsigned long long)p,
				(unsigned long long)(q->end_off - p));
			if (ftruncate(q->fd, (off_t)p) < 0) {
				snprintf(err, errlen,
					 "audit journal %s: cannot cut a torn tail: %s", q->journal,
					 strerror(errno));
				return -errno;
			}
			q->end_off = p;
			break;
		}
		free(b);
		p += (uint64_t)l;
	}
	q->read_off = off;
	count_pending(q);
	if (q->st.pending)
		log_info("audit_journal_replay", "journal=%s pending=%llu", q->journal,
			 (unsigned long long)q->st.pending);
	return 0;
}

static void wait_ms(struct zt_auditq *q, unsigned int ms)
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
	while (!q->stop && !q->hurry &&
	       pthread_cond_timedwait(&q->wake, &q->lock, &ts) != ETIMEDOUT)
		;
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
 * alerts for its policy violations and one into blocks for its block
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
	static const char alert_head[] =
		"INSERT INTO alerts (id, at, node, severity, kind, source_ip, dest_ip, dest_port, protocol, detail) "
		"SELECT (d->>'event_id')::uuid, to_timestamp((d->>'event_unix_us')::bigint / 1e6), $1, "
		"CASE WHEN d->>'verdict' = 'denied' THEN 'warning' ELSE 'info' END, "
		"CASE WHEN d->>'verdict' = 'denied' THEN 'policy-deny' ELSE 'policy-audit' END, "
		"(d->>'src')::inet, (d->>'dst')::inet, (d->>'dport')::integer, lower(d->>'protocol'), d "
		"FROM (VALUES ";
	static const char alert_tail[] = ") s(d) ON CONFLICT (id) DO NOTHING";
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

			if (pass == 0 && !strcmp(k, "policy.violation")) {
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
				char m[400];

				snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
				m[strcspn(m, "\n")] = '\0';
				zt_seterr(err, errlen, "audit: %s rows: %s",
					  pass ? "blocks" : "alerts", m);
				r = -EINVAL;
			}
			PQclear(res);
		}
	}
	free(params);
	free(sql);
	return r;
}

/* Records read from the journal for one batch. */
struct batch {
	size_t n;
	struct zt_audit_rec rows[AUDITQ_BATCH];
	char *f[AUDITQ_BATCH][4];
	uint64_t end[AUDITQ_BATCH]; /* journal offset after record i */
};

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		for (int k = 0; k < 4; k++)
			free(b->f[i][k]);
	b->n = 0;
}

/*
 * Reads up to AUDITQ_BATCH records (AUDITQ_BATCH_BYTES) from read_off,
 * with q->lock held. Returns false when the first record is damaged.
 */
static bool batch_read(struct zt_auditq *q, struct batch *b)
{
	uint64_t off = q->read_off, bytes = 0;

	b->n = 0;
	while (b->n < AUDITQ_BATCH && off < q->end_off && bytes < AUDITQ_BATCH_BYTES) {
		uint8_t *rec = NULL;
		ssize_t l = read_rec(q->fd, off, q->end_off, &rec);
		char **f = b->f[b->n];

		if (l <= 0 || rec_fields(rec, (uint32_t)l, f) < 0) {
			free(rec);
			break;
		}
		free(rec);
		b->rows[b->n] = (struct zt_audit_rec){ f[0], f[1], f[2], f[3] };
		off += (uint64_t)l;
		bytes += (uint64_t)l;
		b->end[b->n++] = off;
	}
	return b->n > 0;
}

/*
 * Commits the batch, or when the server refuses it, its records one by one
 * so that only the refused one is left out (logged with its content).
 * Returns how many records are done (committed or refused) and in *r the
 * last result (-EIO: the database went away; the rest stays queued).
 */
static size_t batch_commit(struct zt_auditq *q, struct batch *b, int *r, uint64_t *seq,
			   uint64_t *written, uint64_t *refused, char *err, size_t errlen)
{
	size_t done = 0;

	*r = zt_audit_append_batch(q->audit, b->rows, b->n, side_rows, q, seq, NULL, err, errlen);
	if (*r == 0) {
		*written += b->n;
		return b->n;
	}
	if (*r != -EINVAL)
		return 0;
	for (; done < b->n; done++) {
		const struct zt_audit_rec *row = &b->rows[done];
		char e2[512] = "", qs[600], qd[2200], qe[600];

		*r = zt_audit_append_batch(q->audit, row, 1, side_rows, q, seq, NULL, err, errlen);
		if (*r == 0) {
			(*written)++;
			continue;
		}
		if (*r != -EINVAL)
			break;
		/* Refused: the audit row alone, without its alert or block row? */
		*r = zt_audit_append_batch(q->audit, row, 1, NULL, NULL, seq, NULL, e2, sizeof(e2));
		if (*r == 0) {
			(*written)++;
			log_error("audit_side_row_refused", "kind=%s subject=%s detail=%s error=%s",
				  row->kind, zt_log_quote(qs, sizeof(qs), row->subject),
				  zt_log_quote(qd, sizeof(qd), row->detail),
				  zt_log_quote(qe, sizeof(qe), err));
		} else if (*r == -EINVAL) {
			(*refused)++;
			log_error("audit_row_refused", "kind=%s subject=%s detail=%s error=%s",
				  row->kind, zt_log_quote(qs, sizeof(qs), row->subject),
				  zt_log_quote(qd, sizeof(qd), row->detail),
				  zt_log_quote(qe, sizeof(qe), e2));
		} else {
			snprintf(err, errlen, "%s", e2);
			break;
		}
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
	bool was_down = false;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		char err[512] = "", q1[600];
		uint64_t seq = 0, written = 0, refused = 0;
		size_t done;
		int r;

		if (q->read_off >= q->end_off) {
			if (q->read_off >= TRUNCATE_AT && ftruncate(q->fd, 0) == 0 &&
			    write_cursor(q, 0) == 0)
				q->read_off = q->end_off = 0;
			q->st.pending = 0;
			q->st.pending_bytes = 0;
			pthread_cond_broadcast(&q->idle);
			q->idle_wait = true;
			pthread_cond_wait(&q->wake, &q->lock);
			q->idle_wait = false;
			continue;
		}
		if (!q->conninfo[0]) {
			wait_ms(q, 1000);
			continue;
		}
		if (!b) {
			log_error("audit_writer_memory", "why=\"no memory for a batch\"");
			wait_ms(q, 1000);
			b = calloc(1, sizeof(*b));
			continue;
		}
		if (!batch_read(q, b)) {
			/* Cannot happen after journal_open's walk unless the file was changed under us. */
			log_error("audit_journal_damaged",
				  "journal=%s offset=%llu action=skip-to-end", q->journal,
				  (unsigned long long)q->read_off);
			q->st.refused += q->st.pending;
			q->read_off = q->end_off;
			write_cursor(q, q->read_off);
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
			q->read_off = b->end[done - 1];
			q->st.pending = q->st.pending > done ? q->st.pending - done : 0;
			q->st.pending_bytes = q->end_off - q->read_off;
			if (write_cursor(q, q->read_off) < 0)
				log_warn("audit_cursor_write",
					 "path=%s why=\"a restart may append events again\"",
					 q->cursor_path);
		}
		batch_free(b);
		if (r == -EIO || r == -ENOMEM) {
			if (!was_down)
				log_warn(
					"audit_db_unavailable",
					"error=%s pending=%llu action=\"kept in the journal, retrying\"",
					zt_log_quote(q1, sizeof(q1), err),
					(unsigned long long)q->st.pending);
			was_down = true;
			q->st.connected = 0;
			snprintf(q->st.last_error, sizeof(q->st.last_error), "%s", err);
			wait_ms(q, backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		if (was_down)
			log_info("audit_db_available", "pending=%llu",
				 (unsigned long long)q->st.pending);
		was_down = false;
		backoff = BACKOFF_MIN_MS;
		q->st.connected = 1;
	}
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
	free(b);
	return NULL;
}

int zt_auditq_open(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		   struct zt_auditq **out, char *err, size_t errlen)
{
	struct zt_auditq *q;
	pthread_condattr_t ca;
	int r;

	*out = NULL;
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
	snprintf(q->journal, sizeof(q->journal), "%s/audit.journal", dir);
	snprintf(q->cursor_path, sizeof(q->cursor_path), "%s/audit.cursor", dir);
	q->max_bytes = max_bytes ? max_bytes : 64u << 20;
	snprintf(q->node, sizeof(q->node), "%s", node ? node : "");
	q->fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake, &ca);
	pthread_cond_init(&q->idle, &ca);
	pthread_condattr_destroy(&ca);
	r = journal_open(q, err, errlen);
	if (r == 0 && q->conninfo[0]) {
		q->audit = zt_audit_new(q->conninfo);
		if (!q->audit)
			r = -ENOMEM;
	}
	if (r == 0) {
		r = -pthread_create(&q->thread, NULL, writer, q);
		if (r == 0)
			q->started = true;
		else
			snprintf(err, errlen, "cannot start the audit writer: %s", strerror(-r));
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
	char k[128], a[256], s[1024], *d = NULL;
	const char *dj = detail_json && *detail_json ? detail_json : "{}";
	const char *fields[4] = { k, a, s, NULL };
	size_t len = REC_HDR, dl;
	uint8_t *b;
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
		size_t head = close ? (size_t)(close - dj) : dl;
		bool empty = true;

		for (size_t i = 1; i < head; i++)
			if (dj[i] != ' ' && dj[i] != '\n' && dj[i] != '\t')
				empty = false;
		uint8_t id[16];
		char ids[40];

		zt_uuidv7(id);
		zt_uuid_format(id, ids, sizeof(ids));
		snprintf(d, dl + 112, "%.*s%s\"event_id\":\"%s\",\"event_unix_us\":%lld}",
			 (int)head, dj, empty ? "" : ",", ids,
			 (long long)(zt_now_unix_ns() / 1000));
	}
	fields[3] = d;
	for (int i = 0; i < 4; i++)
		len += 4 + strlen(fields[i]);
	if (len > REC_MAX) {
		free(d);
		return -EINVAL;
	}
	b = malloc(len);
	if (!b) {
		free(d);
		return -ENOMEM;
	}
	{
		size_t o = REC_HDR;

		put32(b, (uint32_t)len);
		put64(b + 8, zt_now_unix_ns() / 1000);
		for (int i = 0; i < 4; i++) {
			uint32_t fl = (uint32_t)strlen(fields[i]);

			put32(b + o, fl);
			memcpy(b + o + 4, fields[i], fl);
			o += 4 + fl;
		}
		put32(b + 4, (uint32_t)crc32(0L, b + 8, (uInt)(len - 8)));
	}
	free(d);
	pthread_mutex_lock(&q->lock);
	if (q->end_off - q->read_off + len > q->max_bytes) {
		r = -ENOSPC;
	} else {
		ssize_t w = write(q->fd, b, len);

		if (w == (ssize_t)len) {
			q->end_off += len;
			q->st.posted++;
			q->st.pending++;
			q->st.pending_bytes = q->end_off - q->read_off;
			/* One wake-up per idle spell, not one per event. */
			if (q->idle_wait)
				pthread_cond_signal(&q->wake);
		} else {
			/* A short write leaves a torn record: cut it so the journal stays whole. */
			if (w > 0 && ftruncate(q->fd, (off_t)q->end_off) < 0)
				log_error("audit_journal_truncate", "journal=%s error=\"%s\"",
					  q->journal, strerror(errno));
			r = -EIO;
		}
	}
	if (r < 0) {
		uint64_t now = zt_now_mono_ns();
		char qs[1100];

		q->st.dropped++;
		if (now - q->drop_log_ns >= 1000000000ULL) {
			q->drop_log_ns = now;
			log_error(
				"audit_event_dropped",
				"kind=%s subject=%s why=\"%s\" dropped_total=%llu pending_bytes=%llu max_bytes=%llu",
				k, zt_log_quote(qs, sizeof(qs), s),
				r == -ENOSPC ? "the audit journal is full (database unreachable?)" :
					       "the audit journal cannot be written",
				(unsigned long long)q->st.dropped,
				(unsigned long long)q->st.pending_bytes,
				(unsigned long long)q->max_bytes);
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
	pthread_mutex_unlock(&q->lock);
}

int zt_auditq_drain(struct zt_auditq *q, unsigned int timeout_ms)
{
	uint64_t deadline = zt_now_mono_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int r = 0;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (q->read_off < q->end_off && q->conninfo[0]) {
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
	if (q->read_off < q->end_off && !q->conninfo[0])
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
		if (q->st.pending)
			log_info("audit_journal_kept", "journal=%s pending=%llu", q->journal,
				 (unsigned long long)q->st.pending);
	}
	zt_audit_free(q->audit);
	if (q->fd >= 0)
		close(q->fd);
	pthread_cond_destroy(&q->wake);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
