/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * PostgreSQL: schema migrations, partition maintenance, and the binary
 * COPY encoding of flow records (PGCOPY format, written by hand).
 * Library code: errors go to err, nothing is logged here.
 */
#ifndef ZT_DB_H
#define ZT_DB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "records/flowrec.h"

struct zt_db_migration {
	int version; /* 1, 2, ... from the file name 001_... */
	const char *name; /* file name without .sql: "001_init" */
	const char *sql;
};

/* The migrations built into the binary (src/dbschema.c, from deploy/sql). */
extern const struct zt_db_migration zt_db_migrations[];
extern const size_t zt_db_n_migrations;

/*
 * Applies the migrations that schema_migrations does not list yet, in
 * version order, all in one transaction under pg_advisory_xact_lock (so
 * agents starting together apply each once). dir NULL: the built-in ones;
 * else the NNN_*.sql files of dir. A migration already applied whose
 * SHA-256 differs from the one given is an error (nothing is applied).
 * *applied (may be NULL) gets how many were applied now. 0 or -errno.
 */
int zt_db_migrate(const char *conninfo, const char *dir, int *applied, char *err, size_t errlen);
int zt_db_migrate_conn(PGconn *c, const char *dir, int *applied, char *err, size_t errlen);

/*
 * Partition maintenance, to call at start and then periodically (hourly is
 * plenty): creates the partitions of the current month and the next
 * ahead_months, drops those older than retention_months.
 * *created / *dropped (may be NULL) get the counts. 0 or -errno.
 */
int zt_db_maintain(PGconn *c, unsigned int retention_months, unsigned int ahead_months,
		   int *created, int *dropped, char *err, size_t errlen);

/*
 * Connection defaults, each overridden by the same key in the user's
 * conninfo (or its environment variable: PGCONNECT_TIMEOUT, PGOPTIONS):
 * connect_timeout 10 s (for the whole attempt), TCP keepalives (idle 30 s,
 * interval 10 s, 3 probes), tcp_user_timeout 30 s, and
 * statement_timeout 60 s (added to the options unless they set one). So a
 * silent server or a network partition ends a call in bounded time
 * instead of when TCP gives up (~15 min). Keepalives and tcp_user_timeout
 * apply to TCP only; on a unix socket the stop path (zt_db_interrupt) is
 * what bounds a call.
 */
#define ZT_DB_CONNECT_TIMEOUT_S "10"
#define ZT_DB_TCP_USER_TIMEOUT_MS "30000"
#define ZT_DB_STATEMENT_TIMEOUT_MS 60000

/* Connects with the defaults above; -ECONNREFUSED with libpq's message (one line) in err. */
int zt_db_connect(const char *conninfo, PGconn **out, char *err, size_t errlen);
/*
 * The same, given up (-ECANCELED) within 100 ms of *abort becoming true;
 * -ETIMEDOUT past connect_timeout.
 */
int zt_db_connect_abortable(const char *conninfo, const atomic_bool *abort, PGconn **out, char *err,
			    size_t errlen);
/*
 * Ends the traffic of a connection from another thread: a call blocked
 * on it in libpq returns with an error at once, also when the server is
 * frozen (a cancel request would wait for that server). fd is a dup() of
 * PQsocket() owned by the caller, so a socket closed and reused meanwhile
 * is never touched.
 */
void zt_db_interrupt(int fd);

/* Lowercase hex SHA-256 of s (65 bytes with the NUL). */
void zt_sha256_hex(const void *s, size_t n, char hex[65]);

/* A growable byte buffer. */
struct zt_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

void zt_buf_free(struct zt_buf *b);
/* -ENOMEM on failure (b is unchanged). */
int zt_buf_reserve(struct zt_buf *b, size_t more);

/*
 * Binary COPY of flow records, for
 *   COPY <table> (ZT_COPY_COLUMNS) FROM STDIN (FORMAT binary)
 * begin writes the 19-byte header, row one tuple, end the trailer.
 * Text that is not valid UTF-8 is written with \xNN escapes (flowrec.h).
 * The types are migration 003's: protocol SMALLINT, the ports INTEGER NOT
 * NULL (0 without a port), packet_count and duration_ms INTEGER (saturated
 * at INT32_MAX), threat_type VARCHAR(50) (cut to 50 characters); and
 * migration 007's source_spiffe_id, dest_spiffe_id (TEXT) and mtls (BOOLEAN).
 */
#define ZT_COPY_COLUMNS_A                                                          \
	"id, source_ip, dest_ip, source_port, dest_port, protocol, bytes_sent, "   \
	"bytes_received, packet_count, duration_ms, flags, start_time, end_time, " \
	"anomaly_score, threat_type, blocked, "
#define ZT_COPY_COLUMNS_B                                                                 \
	"packets_sent, packets_received, verdict, drop_reason, policy, source_identity, " \
	"dest_identity, source_workload, dest_workload, node, interface, direction, "     \
	"flow_kind, aggregate_count, source_spiffe_id, dest_spiffe_id, mtls"
#define ZT_COPY_COLUMNS ZT_COPY_COLUMNS_A "created_at, " ZT_COPY_COLUMNS_B
#define ZT_COPY_NCOLS 34

int zt_copy_begin(struct zt_buf *b);
/* s as it is stored: invalid UTF-8 bytes as \xNN. malloc'ed, NULL without memory. */
char *zt_db_text(const char *s);
/* The same cut to maxchars characters (threat_type: ZT_FR_THREAT_CHARS). */
char *zt_db_text_chars(const char *s, size_t maxchars);
int zt_copy_row(struct zt_buf *b, const struct zt_flow_record *r);
/* The same without created_at (33 columns: ZT_COPY_COLUMNS_A ZT_COPY_COLUMNS_B). */
int zt_copy_row_nocreated(struct zt_buf *b, const struct zt_flow_record *r);
int zt_copy_end(struct zt_buf *b);

/* Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch. */
#define ZT_PG_EPOCH_US 946684800000000LL

/* Records never sent before (not from the spool): see zt_db_write_flows. */
#define ZT_DB_FRESH 1u

/*
 * Writes recs to network_flows in one transaction, so that replaying the
 * same records never inserts anything twice:
 *  - default (replays): binary COPY into a temporary staging table,
 *    partitions made for the months the rows need, then
 *    INSERT ... SELECT ... ON CONFLICT (id, start_time) DO NOTHING;
 *  - ZT_DB_FRESH (a batch that was never sent, so none of its ids can be
 *    in the table): partitions made first, then binary COPY straight into
 *    network_flows; if the server still reports a duplicate key or a
 *    missing partition, the batch is written the default way instead.
 * *inserted (may be NULL) gets the rows actually inserted. 0, -EIO (the
 * connection is bad: reconnect), -EINVAL (the server refused the data;
 * the connection is fine), -EAGAIN (another server-side error), -ENOMEM.
 */
int zt_db_write_flows(PGconn *c, const struct zt_flow_record *recs, size_t n,
		      struct zt_buf *scratch, unsigned int flags, uint64_t *inserted, char *err,
		      size_t errlen);

#endif
