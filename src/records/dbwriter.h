/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flow writer: threads ("lanes", 2 by default, each with its own
 * connection, so that two server backends insert side by side) that take
 * flow records from a bounded in-memory queue and write them to PostgreSQL
 * in batches by binary COPY (zt_db_write_flows), with the disk spool
 * (spool.h) for what cannot be written now. Lane 0 also replays the spool
 * and maintains partitions.
 *
 *  - zt_dbw_submit() copies records into the queue under a mutex and
 *    returns; when the queue is full the overflow is written to the spool
 *    by the caller (one segment: a write and an fsync, no network).
 *  - A batch is sent when batch_size records are queued or flush_ms after
 *    the first of them was queued, whichever comes first, in one
 *    transaction: a fresh batch by binary COPY straight into network_flows,
 *    a spooled one through a staging table and ON CONFLICT DO NOTHING
 *    (zt_db_write_flows, ZT_DB_FRESH).
 *  - A batch whose connection fails is sent once more on a new connection
 *    (a connection left stale by a server restart), by the replay path
 *    since its COMMIT may have landed. If that fails too, the database is
 *    unreachable: the batch goes to the spool, one dbw_write_failed is
 *    logged per outage (not per lane); the thread reconnects with exponential backoff (100 ms .. 5 s)
 *    and, once connected, replays the spool oldest segment first, deleting
 *    a segment only after its COMMIT. Ids are made at record creation, and
 *    the insert is ON CONFLICT DO NOTHING, so a replay never duplicates.
 *  - A batch the server refuses as data (SQLSTATE 22xxx/23xxx) is split in
 *    halves until the refused records are found; those go to the spool's
 *    rejected-*.zsp and count in rows_failed, the rest is written.
 *  - zt_dbw_submit_durable() writes the records to the spool first, as a
 *    held segment (one write and fsync), then queues them; the segment is
 *    deleted once all its records are committed (kept for replay if not).
 *    Records the caller marks as recorded after this returns survive a
 *    SIGKILL: the segment is replayed at the next start, and a record that
 *    was committed as well is not inserted twice (ON CONFLICT DO NOTHING).
 *  - Connections have timeouts by default (db.h: connect, keepalives,
 *    tcp_user_timeout, statement_timeout; the URL's own settings win).
 *  - zt_dbw_stop() lets the lanes write what is queued for stop_wait_ms;
 *    if the database has not answered by then, it cuts their connections
 *    (zt_db_interrupt: a frozen server is not waited for), and the
 *    in-flight batches and the rest of the queue go to the spool.
 * What is lost on SIGKILL: records given to zt_dbw_submit() (not
 * _durable) still in the queue or in a batch being written (at most
 * flush_ms worth, at most queue_max), and those of _durable when the spool
 * could not take them (full or unwritable: logged dbw_journal_failed);
 * the spool is crash-safe.
 * The thread logs each problem once when it happens (dbw_* events).
 */
#ifndef ZT_DBWRITER_H
#define ZT_DBWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "records/flowrec.h"

struct zt_dbw;

struct zt_dbw_opts {
	size_t batch_size; /* default 5000 */
	size_t queue_max; /* default 20000 records in memory */
	unsigned int flush_ms; /* default 1000 */
	unsigned int backoff_max_ms; /* default 5000 */
	unsigned int maintain_s; /* partition maintenance period, default 3600; 0 = off */
	int migrate; /* apply the built-in migrations on each connect (default 1) */
	unsigned int lanes; /* threads, each with its own connection, writing batches (default 2) */
	unsigned int stop_wait_ms; /* zt_dbw_stop waits this long for the database (default 2000) */
};

struct zt_dbw_stats {
	uint64_t rows_submitted; /* accepted by zt_dbw_submit (queued or spooled) */
	uint64_t rows_written; /* inserted (a replayed duplicate is not counted) */
	uint64_t rows_duplicate; /* sent again and already there */
	uint64_t rows_failed; /* refused by the server, kept in rejected-*.zsp */
	uint64_t batches; /* committed COPY transactions */
	uint64_t queue_len;
	uint64_t
		spool_bytes; /* segments to replay, rejected and bad ones (not write-ahead copies) */
	uint64_t spool_segments; /* to replay */
	uint64_t spool_records_written;
	uint64_t spool_dropped_records; /* lost: spool full or unwritable */
	uint64_t spool_corrupt_segments;
	uint64_t reconnects;
	int connected; /* lanes connected now */
	char last_error[512];
};

/*
 * Opens the spool (cfg->database.spool_dir, spool_max_bytes) and starts the
 * thread; the database is connected from the thread, so a database that is
 * down at start is not an error. NULL with err set on failure.
 */
struct zt_dbw *zt_dbw_new(const struct zt_config *cfg, char *err, size_t errlen);
/* Same with explicit options (NULL = defaults). */
struct zt_dbw *zt_dbw_new_opts(const struct zt_config *cfg, const struct zt_dbw_opts *o, char *err,
			       size_t errlen);

/*
 * Queues n records (copied). Returns 0 when all are queued or spooled;
 * -ENOSPC when some were dropped because the spool is full (counted in
 * spool_dropped_records, logged at most once a second with the count);
 * -EPIPE while zt_dbw_stop runs. Not after zt_dbw_stop has returned (w is
 * freed): stop the producers first.
 */
int zt_dbw_submit(struct zt_dbw *w, const struct zt_flow_record *recs, size_t n);

/*
 * The same, with the records on disk (spool) before it returns, unless the
 * spool refuses them (then as zt_dbw_submit). 0, -ENOSPC, -EPIPE as above.
 */
int zt_dbw_submit_durable(struct zt_dbw *w, const struct zt_flow_record *recs, size_t n);

/* A consistent copy of the counters; callable from any thread. */
void zt_dbw_get_stats(struct zt_dbw *w, struct zt_dbw_stats *st);

/* Blocks until the queue is empty (written or spooled) or timeout_ms passes: 0 or -ETIMEDOUT. */
int zt_dbw_drain(struct zt_dbw *w, unsigned int timeout_ms);

/*
 * Flushes (database, or the spool after stop_wait_ms without an answer),
 * stops the threads, frees. w may be NULL. Returns within about
 * stop_wait_ms plus the spool writes.
 */
void zt_dbw_stop(struct zt_dbw *w);

#endif
