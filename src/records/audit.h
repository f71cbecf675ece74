/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The audit trail: rows of audit_log, hash-chained.
 *
 *   hash(row) = SHA-256(prev_hash || be64(seq) || be64(at, unix microseconds)
 *                       || be32(len) kind || be32(len) actor
 *                       || be32(len) subject || be32(len) detail)
 *
 * prev_hash is the hash of row seq - 1 (32 zero bytes for seq 1); seq
 * starts at 1 and has no gaps. detail is JSON text, stored in a JSON (not
 * JSONB) column, so the bytes hashed are the bytes stored.
 *
 * Path: synchronous, not through the flow spool. zt_audit_append() takes
 * pg_advisory_xact_lock, reads the head, inserts, commits; on an error that
 * is not about the rows (see zt_audit_classify) it reconnects if needed and
 * retries (3 tries, 100/200 ms apart) and then returns the error to its
 * caller, which must not report success for the audited action. If a
 * COMMIT succeeds but its answer is lost, the retry appends the event a
 * second time (at-least-once, never lost).
 *
 * The chain shows changes made without recomputing it (an UPDATE, a
 * DELETE in the middle, an INSERT that does not chain). Whoever can write
 * the table and knows this format can rebuild a valid chain, and deleting
 * the newest rows leaves a valid shorter chain: the caller should log each
 * append's seq and hash (the head) somewhere else, e.g. the agent log.
 */
#ifndef ZT_AUDIT_H
#define ZT_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

struct zt_audit;

/* The database is connected on first use. NULL only without memory. */
struct zt_audit *zt_audit_new(const char *conninfo);
void zt_audit_free(struct zt_audit *a);

/*
 * on: apply the built-in schema migrations (zt_db_migrate_conn, under its
 * advisory lock) on each new connection before the first append, and again
 * after the server says a relation is missing (42P01). An agent started on
 * an empty database, or before its database is up, thus never appends to a
 * table that is not there yet. Off by default.
 */
void zt_audit_set_migrate(struct zt_audit *a, int on);

/*
 * What an error the server reported means for the rows, by SQLSTATE:
 *   ZT_AUDIT_ERR_CONTENT     22xxx data exception, 23xxx integrity
 *                            constraint, 54xxx program limit (a value too
 *                            big or too deep): the rows themselves are
 *                            refused; the same rows will be refused again.
 *   ZT_AUDIT_ERR_CONNECTION  08xxx connection exception, 57P01/57P02/57P03
 *                            the server shuts down or cannot accept yet:
 *                            reconnect and retry.
 *   ZT_AUDIT_ERR_RETRY       anything else (40001 serialization failure,
 *                            40P01 deadlock, 42P01 undefined table, an
 *                            unknown or missing SQLSTATE): retry later; never
 *                            a reason to give up on the rows.
 */
enum zt_audit_err_class {
	ZT_AUDIT_ERR_RETRY = 0,
	ZT_AUDIT_ERR_CONNECTION,
	ZT_AUDIT_ERR_CONTENT,
};
enum zt_audit_err_class zt_audit_classify(const char *sqlstate);

/* The SQLSTATE of the last error (5 characters), "" when there was none. */
const char *zt_audit_last_sqlstate(const struct zt_audit *a);

/*
 * Appends one row; actor e.g. "ztctl:uid=0", subject e.g. "block 198.18.0.1/32",
 * detail JSON text ("{}" when NULL). *seq and hash (may be NULL) get the
 * new row's seq and hash. 0; -EINVAL when the server refuses the row for
 * its content (ZT_AUDIT_ERR_CONTENT, e.g. detail is not JSON; no retry);
 * -EIO when the connection failed; -EAGAIN for another server-side error
 * (ZT_AUDIT_ERR_RETRY, also a failed migration): the row was not written
 * and may be tried again; -ENOMEM.
 */
int zt_audit_append(struct zt_audit *a, const char *kind, const char *actor, const char *subject,
		    const char *detail_json, uint64_t *seq, uint8_t hash[32], char *err,
		    size_t errlen);

/* One row of a batch; no field is NULL. */
struct zt_audit_rec {
	const char *kind, *actor, *subject, *detail;
};

#define ZT_AUDIT_BATCH_MAX 1024

/*
 * Called inside the batch's transaction, after its audit_log rows, to write
 * rows that must commit or fail with them (alerts, blocks). 0, or negative
 * with err set: the transaction is rolled back. -EINVAL means the server
 * refused those rows for their content (zt_audit_classify); any other
 * error is passed on as -EIO (connection gone) or -EAGAIN.
 */
typedef int (*zt_audit_side_fn)(void *ctx, PGconn *c, const struct zt_audit_rec *rows, size_t n,
				char *err, size_t errlen);

/*
 * Appends n rows (at most ZT_AUDIT_BATCH_MAX) in one transaction: one
 * advisory lock, one read of the head, one INSERT, side (may be NULL), one
 * COMMIT, so the chain and the rows beside it are written whole or not at
 * all. *seq and hash get the last row's. Same returns and retries as
 * zt_audit_append(); on -EINVAL nothing was written and the caller may
 * retry row by row to find the one refused.
 */
int zt_audit_append_batch(struct zt_audit *a, const struct zt_audit_rec *rows, size_t n,
			  zt_audit_side_fn side, void *ctx, uint64_t *seq, uint8_t hash[32],
			  char *err, size_t errlen);

/* The row hash as above. */
void zt_audit_hash(const uint8_t prev[32], uint64_t seq, int64_t at_us, const char *kind,
		   const char *actor, const char *subject, const char *detail, uint8_t out[32]);

enum zt_audit_problem {
	ZT_AUDIT_CHANGED, /* the row's content does not give its hash */
	ZT_AUDIT_DELETED, /* seq gap: rows missing before this one */
	ZT_AUDIT_INSERTED, /* prev_hash does not chain to the row before */
};

/* msg: "row 42 changed (hash mismatch)" etc., without the "audit: " prefix. */
typedef void (*zt_audit_report_fn)(void *ctx, enum zt_audit_problem p, uint64_t seq,
				   const char *msg);

/*
 * Recomputes the chain, calling report for each problem (the first one is
 * the first in seq order). *rows gets the rows read. 0 intact, 1 broken,
 * negative errno when it could not read the table (err says why).
 */
int zt_audit_verify(const char *conninfo, zt_audit_report_fn report, void *ctx, uint64_t *rows,
		    char *err, size_t errlen);

/*
 * For `ztctl audit verify`: prints "audit: N rows verified, chain intact",
 * or one line per problem ("audit: row 42 changed (hash mismatch)") and a
 * summary, to out; errors to errout. Returns the exit code: 0 intact,
 * 1 broken, 2 usage (no conninfo) or the database could not be read.
 */
int zt_audit_verify_cli(const char *conninfo, FILE *out, FILE *errout);

#endif
