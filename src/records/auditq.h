/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The audit queue: audit events (policy applied or refused, endpoints,
 * blocks and unblocks, the configuration in force, every policy violation)
 * on their way into the hash-chained audit_log table (audit.h).
 *
 * The queue is a journal file, so that an event is never lost because the
 * database is down or the agent is killed:
 *
 *   DIR/audit.journal   records appended by zt_auditq_post(), each
 *                       u32 length | u32 crc32 | u64 unix µs |
 *                       4 x (u32 length, bytes): kind, actor, subject, detail
 *   DIR/audit.cursor    u64: journal offset of the first record not yet
 *                       committed to the database (written tmp + rename)
 *
 * zt_auditq_post() appends one record with a single write() (O_APPEND)
 * and wakes the writer thread if it is idle; it never waits for the
 * network, and never cuts the writer's backoff short. The thread
 * appends records in order, up to 512 per transaction with
 * zt_audit_append_batch() (their alerts and blocks rows in the same
 * transaction), moves the cursor after each COMMIT, and truncates the
 * journal when everything in it is committed. A batch the server refuses
 * is retried record by record, so only the refused record is left out. While the database is unreachable it retries with backoff
 * (100 ms .. 5 s) and the journal grows, up to max_bytes of uncommitted
 * records; beyond that new events are refused, counted in dropped and
 * logged (at most once a second) — never silently.
 *
 * At open, a journal left by an earlier run is replayed from the cursor. A
 * torn record at the tail (the agent died inside write()) is cut off and
 * reported through the log. Delivery is at least once: a crash between a
 * COMMIT and the cursor update appends that event again on replay.
 *
 * The event time stored in audit_log.at is when the row is appended; the
 * time the event happened is kept in the detail JSON as "event_unix_us",
 * with "event_id", a UUIDv7 made at post.
 *
 * Beside its audit row, a policy violation adds a row to alerts (kind
 * policy-deny or policy-audit) and a block change one to blocks (block,
 * unblock, expire); their id is the event_id, so a replay adds nothing twice.
 * A bulk block change (block.import, block.expire with a "cidrs" array in
 * detail) adds one blocks row per CIDR.
 */
#ifndef ZT_AUDITQ_H
#define ZT_AUDITQ_H

#include <stdint.h>

struct zt_auditq;

struct zt_auditq_stats {
	uint64_t posted; /* accepted by zt_auditq_post */
	uint64_t written; /* committed to audit_log */
	uint64_t refused; /* rows the server refused (logged with their content) */
	uint64_t dropped; /* refused by the bound, or the journal could not be written */
	uint64_t pending; /* in the journal, not yet committed */
	uint64_t pending_bytes;
	uint64_t last_seq; /* audit_log.seq of the last row written */
	int connected;
	char last_error[256];
};

/*
 * Opens (creating, mode 0700) dir and its journal, replays what an earlier
 * run left and starts the writer thread. conninfo "" = no database: events
 * are only journaled (bounded) until an agent with a database runs.
 */
int zt_auditq_open(const char *conninfo, const char *dir, const char *node, uint64_t max_bytes,
		   struct zt_auditq **out, char *err, size_t errlen);
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

/*
 * JSON string body of s (no quotes) into buf: ", \ and control characters
 * escaped; bytes that are not valid UTF-8 are written as the text \xNN
 * (backslash escaped, so the JSON stays valid). Truncates at a character.
 */
void zt_json_escape(const char *s, char *buf, size_t n);

#endif
