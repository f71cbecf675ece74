/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The audit queue: audit events (policy applied or refused, endpoints,
 * blocks and unblocks, the configuration in force, every policy violation)
 * on their way into the hash-chained audit_log table (audit.h).
 *
 * The queue is a journal, so that an event is never lost because the
 * database is down or the agent is killed. In DIR:
 *
 *   audit-<16 hex digits>.journal   segments, oldest first; records are
 *                     appended to the newest (the head) by zt_auditq_post(),
 *                     each  u32 length | u32 crc32 | u64 unix µs |
 *                     4 x (u32 length, bytes): kind, actor, subject, detail
 *                     (little endian; crc32 over everything after itself)
 *   audit.cursor      u64 segment | u64 offset | u32 crc32 of the 16 bytes:
 *                     the first record not yet done (written tmp + rename)
 *   deadletter.jsonl  records the server refused for their content, one
 *                     JSON object a line (see below)
 *   quarantine/       damaged journal bytes and bad state files, moved aside
 *
 * zt_auditq_post() appends one record with a single write() (O_APPEND)
 * and wakes the writer thread if it is idle; it never waits for the
 * network, and never cuts the writer's backoff short. A new head segment
 * is started when the head reaches max_bytes / 8 (64 KiB .. 4 MiB).
 *
 * The thread appends records in order, up to 512 per transaction with
 * zt_audit_append_batch() (their alerts and blocks rows in the same
 * transaction), and moves the cursor after each COMMIT. On each new
 * connection it applies the schema migrations first (zt_audit_set_migrate),
 * so an agent started on an empty database, or before its database is up,
 * appends nothing to a table that is not there yet. What the server says
 * is sorted by SQLSTATE (zt_audit_classify):
 *  - not about the rows (connection lost, shutdown, serialization failure,
 *    deadlock, missing relation, anything unknown): the records stay in
 *    the journal and are retried with backoff (100 ms .. 5 s);
 *  - about the rows' content (22xxx, 23xxx, 54xxx): a refused batch is
 *    retried record by record; a record refused on its own (or whose
 *    alerts/blocks row is refused while its audit row is written) goes to
 *    deadletter.jsonl with the reason, then the queue moves on. Nothing is
 *    discarded: if the dead-letter file cannot be written the queue waits.
 * A head whose records are all done is replaced by a new, empty one once
 * it holds 64 KiB; segments before the one the cursor file names are
 * deleted, so a failed cursor write only delays the deletion (retried
 * until it succeeds) and never misplaces a record.
 *
 * max_bytes bounds the journal's files on disk (done or not): beyond it
 * new events are refused, counted in dropped and logged (at most once a
 * second) — never silently.
 *
 * Everything read back from DIR is checked: a record that does not decode
 * (zt_auditq_decode_record) is moved to quarantine/ and reading goes on at
 * the next record that does (resynchronisation), at open and while
 * running; a torn tail (the agent died inside write()) is treated the same
 * way. A cursor that is not on a record boundary is moved back to the
 * start of its record (replayed); a cursor file that does not check out is
 * moved aside and the journal is replayed from its oldest segment. Every
 * such repair is logged. Delivery is at least once: a crash between a
 * COMMIT and the cursor update appends that event again on replay.
 *
 * The event time stored in audit_log.at is when the row is appended; the
 * time the event happened is kept in the detail JSON as "event_unix_us",
 * with "event_id", a UUIDv7 made at post.
 *
 * Beside its audit row, a policy violation adds a row to alerts (kind
 * policy-deny or policy-audit), an IOC hit (ioc.hit) one of kind ioc, and
 * a block change one to blocks (block,
 * unblock, expire); their id is the event_id, so a replay adds nothing twice.
 * A violation that stands for several (detail "alert_id" and "count",
 * src/respond/denyagg.h) updates its alerts row instead: one row per
 * alert_id with the highest count and the latest time.
 *
 * deadletter.jsonl, one line per record set aside:
 *   {"at":"2026-11-22T22:41:03Z","at_unix_us":N,"what":"audit_log"|"alerts"|
 *    "blocks","sqlstate":"22P02","reason":"...","audit_seq":N (when the
 *    audit row itself was written),"event":{"time_unix_us":N,"kind":"...",
 *    "actor":"...","subject":"...","detail":"<the detail text, as a JSON
 *    string>"}}
 * A bulk block change (block.import, block.expire with a "cidrs" array in
 * detail) adds one blocks row per CIDR.
 */
#ifndef ZT_AUDITQ_H
#define ZT_AUDITQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "records/audit.h"

struct zt_auditq;

struct zt_auditq_stats {
	uint64_t posted; /* accepted by zt_auditq_post */
	uint64_t written; /* committed to audit_log */
	uint64_t refused; /* refused by the server for their content: in deadletter.jsonl */
	uint64_t dropped; /* refused by the bound, or the journal could not be written */
	uint64_t quarantined; /* damaged journal ranges moved to quarantine/ */
	uint64_t pending; /* in the journal, not yet committed */
	uint64_t pending_bytes;
	uint64_t journal_bytes; /* the journal's segments on disk (bounded by max_bytes) */
	uint64_t segments;
	uint64_t last_seq; /* audit_log.seq of the last row written */
	int connected;
	char last_error[256];
};

/*
 * Opens (creating, mode 0700) dir and its journal, replays what an earlier
 * run left (a journal of the single-file format, DIR/audit.journal, is
 * taken over as segment 0, or as the newest segment when there are
 * segments already) and starts the writer thread.
 * conninfo "" = no database: events are only journaled (bounded) until an
 * agent with a database runs. max_bytes 0 = 64 MiB.
 */
int zt_auditq_open(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		   struct zt_auditq **out, char *err, size_t errlen);

/*
 * More rows written beside a batch's audit rows, in its transaction,
 * after the alerts and blocks rows: fn gets every row of the batch and
 * writes what concerns it (e.g. incidents, the forensic capture index:
 * src/respond/incident_db.h). It returns 0, or -EINVAL when the server
 * refused its rows for their content (the record goes to the dead-letter
 * file, "what" = name), -EIO or -EAGAIN (retried). Its rows must be
 * idempotent: a replay after a lost COMMIT answer writes them again.
 */
#define ZT_AUDITQ_MAX_SIDES 4
struct zt_auditq_side {
	const char *name; /* "incidents" */
	zt_audit_side_fn fn;
	void *ctx;
};

/* zt_auditq_open with side writers, registered before the writer thread starts. */
int zt_auditq_open_ex(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		      const struct zt_auditq_side *sides, size_t n_sides, struct zt_auditq **out,
		      char *err, size_t errlen);
/*
 * Queues one event. detail_json must be a JSON object ("{...}"); NULL is
 * "{}". Thread-safe. 0; -ENOSPC over the bound; -EIO when the journal
 * cannot be written; -EINVAL for a detail that is not an object.
 */
int zt_auditq_post(struct zt_auditq *q, const char *kind, const char *actor, const char *subject,
		   const char *detail_json);
void zt_auditq_get_stats(struct zt_auditq *q, struct zt_auditq_stats *st);
/* Waits until nothing is pending or timeout_ms passes: 0 or -ETIMEDOUT. */
int zt_auditq_drain(struct zt_auditq *q, unsigned int timeout_ms);
/* Writes what it can within a moment, stops the thread; the rest stays journaled. NULL is fine. */
void zt_auditq_close(struct zt_auditq *q);

/* ---- the journal record, as pure functions (no I/O, no allocation) ---- */

#define ZT_AUDITQ_REC_HDR 16u /* length, crc32, time */
#define ZT_AUDITQ_REC_MIN (ZT_AUDITQ_REC_HDR + 16u) /* four empty fields */
#define ZT_AUDITQ_REC_MAX (1u << 20) /* one record, all four fields */
/* Longest kind, actor and subject zt_auditq_post() writes (bytes, after cleaning). */
#define ZT_AUDITQ_KIND_MAX 127u
#define ZT_AUDITQ_ACTOR_MAX 255u
#define ZT_AUDITQ_SUBJECT_MAX 1023u

struct zt_auditq_record {
	uint32_t len; /* bytes the record takes in the journal */
	uint64_t time_us; /* unix µs when it was posted */
	const char
		*field[4]; /* kind, actor, subject, detail: into the buffer, NOT NUL-terminated */
	uint32_t field_len[4];
};

/*
 * Decodes the record at the start of buf[0..n). A record is accepted only
 * if its length is within [REC_MIN, REC_MAX], its four fields fill it
 * exactly, kind/actor/subject are within their maximum lengths, no field
 * holds a NUL byte, and the crc32 matches. Returns the record's length
 * (> 0, *rec filled, pointing into buf), -ENODATA when buf ends inside
 * what may be a record (a torn tail if buf is the rest of the file), or
 * -EBADMSG when the bytes are not a record. *rec is untouched on error.
 * Reads only buf[0..n), whatever the bytes; safe for any input (fuzzing).
 */
int zt_auditq_decode_record(const uint8_t *buf, size_t n, struct zt_auditq_record *rec);

/*
 * Encodes one record (fields NUL-terminated, none NULL) into out when cap
 * is large enough; returns its length either way (like snprintf), or
 * -EINVAL when a field is over its maximum or the record over REC_MAX.
 * zt_auditq_decode_record() of the output gives the fields back.
 */
ssize_t zt_auditq_encode_record(uint64_t time_us, const char *const fields[4], uint8_t *out,
				size_t cap);

/*
 * JSON string body of s (no quotes) into buf: ", \ and control characters
 * escaped; bytes that are not valid UTF-8 are written as the text \xNN
 * (backslash escaped, so the JSON stays valid). Truncates at a character.
 */
void zt_json_escape(const char *s, char *buf, size_t n);

#endif
