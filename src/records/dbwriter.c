// SPDX-License-Identifier: GPL-2.0-only
/* The flow writer thread: queue -> batches -> binary COPY, spool when it cannot. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "records/db.h"
#include "records/dbwriter.h"
#include "agent/log.h"
#include "records/spool.h"
#include "agent/util.h"

#define MS 1000000ULL

#define ZT_DBW_MAX_LANES 8
#define KEEP_BIT (1ULL << 63)

struct zt_dbw;

/* One writer thread and its connection. Lane 0 also replays the spool and maintains partitions. */
struct lane {
	struct zt_dbw *w;
	unsigned int idx;
	pthread_t th;
	bool started;
	PGconn *conn;
	int cancel_fd; /* dup of conn's socket, for zt_db_interrupt at stop; under w->lock */
	struct zt_buf buf;
	struct zt_flow_record *batch;
	uint64_t *batch_seq; /* each record's journal segment, 0 none */
	uint64_t *release; /* settle's scratch: segments done, KEEP_BIT when kept */
	uint64_t next_connect_ns, backoff_ms;
	bool down_logged;
};

/* A journal segment (zt_dbw_submit_durable) whose records are in the queue or a batch. */
struct jseg {
	uint64_t seq;
	size_t left; /* records not settled yet */
	bool keep; /* some were not written: the segment stays, to replay */
};

struct zt_dbw {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the lanes: records, stop */
	pthread_cond_t idle; /* zt_dbw_drain: queue empty */
	pthread_cond_t gone; /* zt_dbw_stop: a lane ended */
	struct zt_flow_record *q;
	uint64_t *qseq; /* journal segment of each queued record, 0 none */
	size_t qhead, qlen;
	struct jseg *js;
	size_t n_js, cap_js;
	unsigned int exited; /* lanes that returned */
	atomic_bool abort; /* stop's deadline passed: no database work, spool the rest */
	uint64_t first_ns; /* when the oldest queued record came; 0 when empty */
	bool stop, started;
	bool down; /* a lane lost the database and none has written since: one log per outage */
	unsigned int busy; /* lanes writing a batch */
	struct zt_dbw_stats st;

	/* Set before the lanes start. */
	struct zt_dbw_opts o;
	char conninfo[ZT_DB_URL_MAX];
	unsigned int retention_months;
	struct zt_spool *spool;
	struct lane lanes[ZT_DBW_MAX_LANES];
	unsigned int n_lanes;
	uint64_t next_maintain_ns; /* lane 0's */

	/* Drop logging: at most one line a second, with the records since the last. */
	pthread_mutex_t drop_lock;
	uint64_t drop_pending, drop_logged_ns;
};

static const struct zt_dbw_opts defaults = {
	.batch_size = 5000,
	.queue_max = 20000,
	.flush_ms = 1000,
	.backoff_max_ms = 5000,
	.maintain_s = 3600,
	.migrate = 1,
	.lanes = 2,
	.stop_wait_ms = 2000,
};

static void set_error(struct zt_dbw *w, const char *msg)
{
	pthread_mutex_lock(&w->lock);
	snprintf(w->st.last_error, sizeof(w->st.last_error), "%s", msg);
	pthread_mutex_unlock(&w->lock);
}

static void count(struct zt_dbw *w, uint64_t *field, uint64_t v)
{
	pthread_mutex_lock(&w->lock);
	*field += v;
	pthread_mutex_unlock(&w->lock);
}

/* The connection's socket for zt_db_interrupt; false when the writer is being abandoned. */
static bool register_conn(struct lane *l)
{
	struct zt_dbw *w = l->w;
	bool ok;

	pthread_mutex_lock(&w->lock);
	l->cancel_fd = fcntl(PQsocket(l->conn), F_DUPFD_CLOEXEC, 0);
	ok = !atomic_load(&w->abort);
	pthread_mutex_unlock(&w->lock);
	return ok;
}

static void unregister_conn(struct lane *l)
{
	pthread_mutex_lock(&l->w->lock);
	if (l->cancel_fd >= 0)
		close(l->cancel_fd);
	l->cancel_fd = -1;
	pthread_mutex_unlock(&l->w->lock);
}

static void disconnect(struct lane *l)
{
	struct zt_dbw *w = l->w;

	if (!l->conn)
		return;
	unregister_conn(l);
	PQfinish(l->conn);
	l->conn = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->st.connected)
		w->st.connected--;
	pthread_mutex_unlock(&w->lock);
}

static void backoff(struct lane *l)
{
	struct zt_dbw *w = l->w;

	l->next_connect_ns = zt_now_mono_ns() + l->backoff_ms * MS;
	l->backoff_ms =
		l->backoff_ms * 2 > w->o.backoff_max_ms ? w->o.backoff_max_ms : l->backoff_ms * 2;
}

static void maintain(struct lane *l)
{
	struct zt_dbw *w = l->w;
	char err[512], q[512];
	int created = 0, dropped = 0;

	if (l->idx || !w->o.maintain_s || zt_now_mono_ns() < w->next_maintain_ns)
		return;
	w->next_maintain_ns = zt_now_mono_ns() + (uint64_t)w->o.maintain_s * 1000 * MS;
	if (zt_db_maintain(l->conn, w->retention_months, 2, &created, &dropped, err, sizeof(err))) {
		log_error("dbw_maintain_failed", "error=%s", zt_log_quote(q, sizeof(q), err));
		set_error(w, err);
		return;
	}
	if (created || dropped)
		log_info("dbw_maintain", "partitions_created=%d partitions_dropped=%d dropped=%s",
			 created, dropped, zt_log_quote(q, sizeof(q), err));
}

/* 0 when connected now. */
static int ensure_conn(struct lane *l)
{
	struct zt_dbw *w = l->w;
	char err[512], q[512];
	int applied = 0;

	if (l->conn && PQstatus(l->conn) == CONNECTION_OK)
		return 0;
	if (l->conn)
		disconnect(l);
	if (zt_now_mono_ns() < l->next_connect_ns || atomic_load(&w->abort))
		return -1;
	/* Migrations run under an advisory lock: lanes connecting together apply each once. */
	if (zt_db_connect_abortable(w->conninfo, &w->abort, &l->conn, err, sizeof(err)) ||
	    !register_conn(l) ||
	    (w->o.migrate && zt_db_migrate_conn(l->conn, NULL, &applied, err, sizeof(err)))) {
		if (l->conn) {
			unregister_conn(l);
			PQfinish(l->conn);
			l->conn = NULL;
		}
		if (atomic_load(&w->abort))
			return -1;
		if (!l->down_logged && l->idx == 0)
			log_warn("dbw_db_unavailable", "retry_ms=%" PRIu64 " error=%s",
				 l->backoff_ms, zt_log_quote(q, sizeof(q), err));
		l->down_logged = true;
		set_error(w, err);
		backoff(l);
		return -1;
	}
	l->backoff_ms = 100;
	l->down_logged = false;
	pthread_mutex_lock(&w->lock);
	w->down = false;
	w->st.connected++;
	w->st.reconnects++;
	pthread_mutex_unlock(&w->lock);
	log_info("dbw_connected", "lane=%u migrations_applied=%d", l->idx, applied);
	maintain(l);
	return 0;
}

/* Writes recs; isolates the records the server refuses. 0 or -EIO/-EAGAIN/-ENOMEM. */
static int send_recs(struct lane *l, const struct zt_flow_record *recs, size_t n,
		     unsigned int flags)
{
	struct zt_dbw *w = l->w;
	char err[512], q[512], id[40];
	uint64_t ins = 0;
	int r;

	r = zt_db_write_flows(l->conn, recs, n, &l->buf, flags, &ins, err, sizeof(err));
	if (r == 0) {
		pthread_mutex_lock(&w->lock);
		w->st.rows_written += ins;
		w->st.rows_duplicate += n - ins;
		w->st.batches++;
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	set_error(w, err);
	if (r != -EINVAL)
		return r;
	if (n > 1) {
		r = send_recs(l, recs, n / 2, flags);
		return r ? r : send_recs(l, recs + n / 2, n - n / 2, flags);
	}
	zt_uuid_format(recs[0].id, id, sizeof(id));
	log_error("dbw_record_refused", "id=%s error=%s", id, zt_log_quote(q, sizeof(q), err));
	count(w, &w->st.rows_failed, 1);
	if (zt_spool_reject(w->spool, recs, 1, err, sizeof(err)))
		log_error("dbw_reject_spool_failed", "id=%s error=%s", id,
			  zt_log_quote(q, sizeof(q), err));
	return 0;
}

/*
 * Records were lost (spool full or unwritable): counted by the spool; logged
 * here at most once a second (force: now), with how many since the last line.
 */
static void log_drop(struct zt_dbw *w, uint64_t n, const char *err, bool force)
{
	struct zt_spool_stats ss;
	uint64_t now = zt_now_mono_ns(), k = 0;
	char q[512], last[512];

	pthread_mutex_lock(&w->drop_lock);
	w->drop_pending += n;
	if (w->drop_pending && (force || now >= w->drop_logged_ns + 1000 * MS)) {
		k = w->drop_pending;
		w->drop_pending = 0;
		w->drop_logged_ns = now;
	}
	pthread_mutex_unlock(&w->drop_lock);
	if (err)
		set_error(w, err);
	if (!k)
		return;
	zt_spool_get_stats(w->spool, &ss);
	pthread_mutex_lock(&w->lock);
	snprintf(last, sizeof(last), "%s", w->st.last_error);
	pthread_mutex_unlock(&w->lock);
	log_error("dbw_spool_drop", "records=%" PRIu64 " dropped_total=%" PRIu64 " error=%s", k,
		  ss.dropped_records, zt_log_quote(q, sizeof(q), last));
}

static void to_spool(struct zt_dbw *w, const struct zt_flow_record *recs, size_t n)
{
	char err[512];

	if (zt_spool_write(w->spool, recs, n, err, sizeof(err))) {
		log_drop(w, n, err, false);
	} else {
		log_debug("dbw_spooled", "records=%zu", n);
	}
}

static void lost_conn(struct lane *l, int r)
{
	struct zt_dbw *w = l->w;
	char q[512];
	bool first;

	pthread_mutex_lock(&w->lock);
	zt_log_quote(q, sizeof(q), w->st.last_error);
	first = !w->down;
	w->down = true;
	pthread_mutex_unlock(&w->lock);
	/* Every lane sees the same outage: the first one to see it says so. */
	zt_log(first ? ZT_LOG_WARN : ZT_LOG_DEBUG, "dbw_write_failed", "lane=%u reason=%s error=%s",
	       l->idx,
	       r == -EIO    ? "connection" :
	       r == -ENOMEM ? "memory" :
			      "server",
	       q);
	l->down_logged = true;
	disconnect(l);
	backoff(l);
}

/* true: written (or refused and kept aside); false: not written, for the spool. */
static bool write_batch(struct lane *l, const struct zt_flow_record *recs, size_t n)
{
	int r;

	if (ensure_conn(l) == 0) {
		/* Never sent before: straight into the table. */
		r = send_recs(l, recs, n, ZT_DB_FRESH);
		if (r == -EIO) {
			/*
			 * A connection that went stale while idle (the server
			 * restarted): one new connection, and the batch again by
			 * the replay path, since its COMMIT may have landed.
			 */
			disconnect(l);
			if (ensure_conn(l) == 0)
				r = send_recs(l, recs, n, 0);
		}
		if (r == 0)
			return true;
		lost_conn(l, r);
	}
	return false;
}

/*
 * After a batch: its journaled records release their segments (deleted
 * once all of a segment's records are written, kept to replay if any was
 * not); the others go to the spool when the batch was not written.
 */
static void settle(struct lane *l, size_t n, bool written)
{
	struct zt_dbw *w = l->w;
	size_t nd = 0, k = 0;
	char err[512], q[512];

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0, j = 0; i < n; i++) {
		uint64_t seq = l->batch_seq[i];

		if (!seq) {
			if (!written)
				l->batch[k++] = l->batch[i];
			continue;
		}
		if (j >= w->n_js || w->js[j].seq != seq)
			for (j = 0; j < w->n_js && w->js[j].seq != seq; j++)
				;
		if (j == w->n_js)
			continue; /* cannot happen: every journaled record has its segment */
		w->js[j].keep |= !written;
		if (--w->js[j].left == 0) {
			l->release[nd++] = seq | (w->js[j].keep ? KEEP_BIT : 0);
			w->js[j] = w->js[--w->n_js];
			j = w->n_js;
		}
	}
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < nd; i++)
		if (zt_spool_release(w->spool, l->release[i] & ~KEEP_BIT, l->release[i] & KEEP_BIT,
				     err, sizeof(err)))
			log_warn("dbw_journal_release_failed",
				 "error=%s note=\"replayed later, no "
				 "duplicate\"",
				 zt_log_quote(q, sizeof(q), err));
	if (k)
		to_spool(w, l->batch, k);
}

/* One spool segment back into the database. true when there may be more. */
static bool replay_one(struct lane *l)
{
	struct zt_dbw *w = l->w;
	struct zt_spool_seg seg;
	char err[512], q[512];
	int r;

	r = zt_spool_next(w->spool, &seg, err, sizeof(err));
	if (r == -ENOENT)
		return false;
	if (r) {
		log_error(r == -EBADMSG ? "dbw_spool_corrupt" : "dbw_spool_read_failed", "error=%s",
			  zt_log_quote(q, sizeof(q), err));
		set_error(w, err);
		return r == -EBADMSG;
	}
	/* Maybe written before (a COMMIT whose answer was lost): staged, ON CONFLICT. */
	r = send_recs(l, seg.recs, seg.n, 0);
	if (r) {
		zt_spool_seg_free(&seg);
		lost_conn(l, r);
		return false;
	}
	log_debug("dbw_replayed", "segment=%" PRIu64 " records=%zu", seg.seq, seg.n);
	if (zt_spool_done(w->spool, &seg, err, sizeof(err))) {
		/* Replaying it again later is harmless (ON CONFLICT DO NOTHING). */
		log_error("dbw_spool_delete_failed", "error=%s", zt_log_quote(q, sizeof(q), err));
		set_error(w, err);
		return false;
	}
	return true;
}

static void deadline(struct timespec *ts, uint64_t mono_ns)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000ULL);
	ts->tv_nsec = (long)(mono_ns % 1000000000ULL);
}

static void *run(void *arg)
{
	struct lane *l = arg;
	struct zt_dbw *w = l->w;
	struct zt_spool_stats ss;
	bool more = false;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		size_t n = 0;
		bool stopping;

		for (;;) {
			uint64_t now = zt_now_mono_ns(), until;
			struct timespec ts;

			if (w->stop || w->qlen >= w->o.batch_size ||
			    (w->qlen && now >= w->first_ns + w->o.flush_ms * MS) || more)
				break;
			until = w->qlen ? w->first_ns + w->o.flush_ms * MS : now + 250 * MS;
			deadline(&ts, until);
			pthread_cond_timedwait(&w->wake, &w->lock, &ts);
			if (!w->qlen)
				break; /* housekeeping every 250 ms when idle */
		}
		while (n < w->o.batch_size && w->qlen) {
			l->batch_seq[n] = w->qseq[w->qhead];
			l->batch[n++] = w->q[w->qhead];
			w->qhead = (w->qhead + 1) % w->o.queue_max;
			w->qlen--;
		}
		if (!w->qlen)
			w->first_ns = 0;
		else
			pthread_cond_signal(&w->wake); /* more for another lane */
		stopping = w->stop;
		if (n)
			w->busy++;
		pthread_mutex_unlock(&w->lock);

		if (n)
			settle(l, n, write_batch(l, l->batch, n));
		more = false;
		if (!stopping && l->idx == 0 && ensure_conn(l) == 0) {
			zt_spool_get_stats(w->spool, &ss);
			if (ss.segments)
				more = replay_one(l);
			if (l->conn)
				maintain(l);
		}

		pthread_mutex_lock(&w->lock);
		if (n)
			w->busy--;
		if (!w->qlen && !w->busy)
			pthread_cond_broadcast(&w->idle);
		if (stopping && !w->qlen)
			break;
	}
	w->exited++;
	pthread_cond_broadcast(&w->gone);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct zt_dbw *zt_dbw_new_opts(const struct zt_config *cfg, const struct zt_dbw_opts *o, char *err,
			       size_t errlen)
{
	struct zt_dbw *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	bool ok;
	char name[16];
	int r = 0;

	if (!w) {
		zt_seterr(err, errlen, "flow writer: out of memory");
		return NULL;
	}
	w->o = o ? *o : defaults;
	if (!w->o.batch_size)
		w->o.batch_size = defaults.batch_size;
	if (w->o.queue_max < w->o.batch_size)
		w->o.queue_max = w->o.batch_size;
	if (!w->o.flush_ms)
		w->o.flush_ms = defaults.flush_ms;
	if (!w->o.backoff_max_ms)
		w->o.backoff_max_ms = defaults.backoff_max_ms;
	if (!w->o.stop_wait_ms)
		w->o.stop_wait_ms = defaults.stop_wait_ms;
	if (!cfg->database.url[0]) {
		zt_seterr(err, errlen, "flow writer: database.url is empty");
		free(w);
		return NULL;
	}
	snprintf(w->conninfo, sizeof(w->conninfo), "%s", cfg->database.url);
	w->retention_months = cfg->database.retention_months;
	w->n_lanes = w->o.lanes ? w->o.lanes : defaults.lanes;
	if (w->n_lanes > ZT_DBW_MAX_LANES)
		w->n_lanes = ZT_DBW_MAX_LANES;
	w->q = calloc(w->o.queue_max, sizeof(*w->q));
	w->qseq = calloc(w->o.queue_max, sizeof(*w->qseq));
	ok = w->q && w->qseq;
	for (unsigned int i = 0; i < w->n_lanes; i++) {
		w->lanes[i] = (struct lane){ .w = w, .idx = i, .backoff_ms = 100, .cancel_fd = -1 };
		w->lanes[i].batch = calloc(w->o.batch_size, sizeof(*w->lanes[i].batch));
		w->lanes[i].batch_seq = calloc(w->o.batch_size, sizeof(*w->lanes[i].batch_seq));
		w->lanes[i].release = calloc(w->o.batch_size, sizeof(*w->lanes[i].release));
		ok = ok && w->lanes[i].batch && w->lanes[i].batch_seq && w->lanes[i].release;
	}
	if (!ok) {
		zt_seterr(err, errlen, "flow writer: out of memory for a queue of %zu records",
			  w->o.queue_max);
		goto fail;
	}
	if (zt_spool_open(cfg->database.spool_dir, cfg->database.spool_max_bytes, &w->spool, err,
			  errlen))
		goto fail;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->drop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->gone, &ca);
	pthread_cond_init(&w->idle, NULL);
	pthread_condattr_destroy(&ca);
	{
		struct zt_spool_stats ss;

		zt_spool_get_stats(w->spool, &ss);
		if (ss.partial_removed)
			log_warn("dbw_spool_partial_removed",
				 "dir=%s files=%" PRIu64 " note=\"unfinished segment writes from "
				 "a crash; their records were still in memory then\"",
				 cfg->database.spool_dir, ss.partial_removed);
		if (ss.format1_retried)
			log_info("dbw_spool_format1_retry",
				 "dir=%s files=%" PRIu64
				 " note=\"records an older agent had refused "
				 "(rejected-*.zsp of spool format 1) are tried once more against "
				 "the current schema\"",
				 cfg->database.spool_dir, ss.format1_retried);
		if (ss.segments)
			log_info("dbw_spool_pending", "segments=%" PRIu64 " bytes=%" PRIu64,
				 ss.segments, ss.bytes);
	}
	for (unsigned int i = 0; i < w->n_lanes; i++) {
		r = pthread_create(&w->lanes[i].th, NULL, run, &w->lanes[i]);
		if (r) {
			zt_seterr(err, errlen, "flow writer: pthread_create: %s", strerror(r));
			break;
		}
		w->lanes[i].started = true;
		snprintf(name, sizeof(name), "zt-db-%u", i % 1000);
		pthread_setname_np(w->lanes[i].th, name);
	}
	w->started = true;
	if (r) {
		zt_dbw_stop(w);
		return NULL;
	}
	return w;
fail:
	free(w->q);
	free(w->qseq);
	for (unsigned int i = 0; i < w->n_lanes; i++) {
		free(w->lanes[i].batch);
		free(w->lanes[i].batch_seq);
		free(w->lanes[i].release);
	}
	free(w);
	return NULL;
}

struct zt_dbw *zt_dbw_new(const struct zt_config *cfg, char *err, size_t errlen)
{
	return zt_dbw_new_opts(cfg, NULL, err, errlen);
}

int zt_dbw_submit(struct zt_dbw *w, const struct zt_flow_record *recs, size_t n)
{
	size_t k = 0;
	char err[512];
	bool was_empty;

	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		return -EPIPE;
	}
	was_empty = !w->qlen;
	if (was_empty && n)
		w->first_ns = zt_now_mono_ns();
	while (k < n && w->qlen < w->o.queue_max) {
		w->qseq[(w->qhead + w->qlen) % w->o.queue_max] = 0;
		w->q[(w->qhead + w->qlen) % w->o.queue_max] = recs[k++];
		w->qlen++;
	}
	w->st.rows_submitted += n;
	/* A lane waits for a full batch or for flush_ms after the first record:
	 * wake one when either changes, not on every submit. */
	if (w->qlen >= w->o.batch_size || (was_empty && n))
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (k == n)
		return 0;
	/* Queue full: the rest goes to disk now, in the caller's thread. */
	if (zt_spool_write(w->spool, recs + k, n - k, err, sizeof(err))) {
		log_drop(w, n - k, err, false);
		return -ENOSPC;
	}
	return 0;
}

int zt_dbw_submit_durable(struct zt_dbw *w, const struct zt_flow_record *recs, size_t n)
{
	char err[512], q[512];
	uint64_t seq = 0;
	bool queued = false;

	if (!n)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		return -EPIPE;
	}
	pthread_mutex_unlock(&w->lock);
	/* On disk first, so that what the caller marks as recorded survives a SIGKILL. */
	if (zt_spool_write_held(w->spool, recs, n, &seq, err, sizeof(err))) {
		log_warn("dbw_journal_failed",
			 "records=%zu error=%s note=\"kept in memory only "
			 "until written\"",
			 n, zt_log_quote(q, sizeof(q), err));
		set_error(w, err);
		return zt_dbw_submit(w, recs, n);
	}
	pthread_mutex_lock(&w->lock);
	w->st.rows_submitted += n;
	if (!w->stop && w->qlen + n <= w->o.queue_max &&
	    zt_grow((void **)&w->js, &w->cap_js, w->n_js + 1, sizeof(*w->js)) == 0) {
		bool was_empty = !w->qlen;

		w->js[w->n_js++] = (struct jseg){ .seq = seq, .left = n };
		if (was_empty)
			w->first_ns = zt_now_mono_ns();
		for (size_t k = 0; k < n; k++) {
			size_t at = (w->qhead + w->qlen) % w->o.queue_max;

			w->q[at] = recs[k];
			w->qseq[at] = seq;
			w->qlen++;
		}
		if (w->qlen >= w->o.batch_size || was_empty)
			pthread_cond_signal(&w->wake);
		queued = true;
	}
	pthread_mutex_unlock(&w->lock);
	/* No room (or stopping): the segment is replayed like one spooled by an outage. */
	if (!queued && zt_spool_release(w->spool, seq, true, err, sizeof(err)))
		log_warn("dbw_journal_release_failed", "error=%s", zt_log_quote(q, sizeof(q), err));
	return 0;
}

void zt_dbw_get_stats(struct zt_dbw *w, struct zt_dbw_stats *st)
{
	struct zt_spool_stats ss;

	zt_spool_get_stats(w->spool, &ss);
	pthread_mutex_lock(&w->lock);
	*st = w->st;
	st->queue_len = w->qlen;
	pthread_mutex_unlock(&w->lock);
	/* Write-ahead copies of records being written are not a backlog: left out. */
	st->spool_bytes = ss.bytes - ss.held_bytes;
	st->spool_segments = ss.segments;
	st->spool_records_written = ss.records_written;
	st->spool_dropped_records = ss.dropped_records;
	st->spool_corrupt_segments = ss.corrupt_segments;
}

int zt_dbw_drain(struct zt_dbw *w, unsigned int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	/* Make the thread flush now rather than at the end of flush_ms. */
	if (w->qlen)
		w->first_ns = 1;
	pthread_cond_broadcast(&w->wake);
	while ((w->qlen || w->busy) && r == 0)
		r = pthread_cond_timedwait(&w->idle, &w->lock, &ts);
	pthread_mutex_unlock(&w->lock);
	return r ? -ETIMEDOUT : 0;
}

void zt_dbw_stop(struct zt_dbw *w)
{
	unsigned int started = 0;
	struct timespec ts;
	int r = 0;

	if (!w)
		return;
	for (unsigned int i = 0; i < w->n_lanes; i++)
		started += w->lanes[i].started;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->wake);
	/* What is queued goes to the database while it answers, for stop_wait_ms at most. */
	deadline(&ts, zt_now_mono_ns() + (uint64_t)w->o.stop_wait_ms * MS);
	while (w->exited < started && r == 0)
		r = pthread_cond_timedwait(&w->gone, &w->lock, &ts);
	if (w->exited < started) {
		size_t queued = w->qlen;
		unsigned int busy = w->busy;

		/*
		 * The database does not answer (frozen, partitioned, or slow):
		 * cut the lanes' connections so their calls return, and spool
		 * the rest instead of waiting for TCP or a kill.
		 */
		atomic_store(&w->abort, true);
		for (unsigned int i = 0; i < w->n_lanes; i++)
			zt_db_interrupt(w->lanes[i].cancel_fd);
		pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->lock);
		log_warn("dbw_stop_abandoned",
			 "waited_ms=%u queued=%zu lanes_busy=%u note=\"the database did not "
			 "answer: in-flight batches and the queue go to the spool, replayed at "
			 "the next start\"",
			 w->o.stop_wait_ms, queued, busy);
	} else {
		pthread_mutex_unlock(&w->lock);
	}
	for (unsigned int i = 0; i < w->n_lanes; i++)
		if (w->lanes[i].started)
			pthread_join(w->lanes[i].th, NULL);
	log_drop(w, 0, NULL, true); /* drops not yet logged */
	for (unsigned int i = 0; i < w->n_lanes; i++) {
		if (w->lanes[i].cancel_fd >= 0)
			close(w->lanes[i].cancel_fd);
		if (w->lanes[i].conn)
			PQfinish(w->lanes[i].conn);
		zt_buf_free(&w->lanes[i].buf);
		free(w->lanes[i].batch);
		free(w->lanes[i].batch_seq);
		free(w->lanes[i].release);
	}
	/* Journal segments not settled (a lane that never started): replay them later. */
	for (size_t i = 0; i < w->n_js; i++)
		zt_spool_release(w->spool, w->js[i].seq, true, NULL, 0);
	free(w->js);
	zt_spool_close(w->spool);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->drop_lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->gone);
	free(w->q);
	free(w->qseq);
	free(w);
}
