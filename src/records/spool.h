/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A bounded on-disk spool of flow records, for when the database is down
 * or the writer's queue is full.
 *
 * The directory holds segments "seg-<20-digit number>.zsp", each one batch
 * of records: a 28-byte header (magic "ZTSPOOL1", record count, sizes,
 * CRC-32 of the header and of the payload) and the zlib-compressed CBOR
 * array of records. A segment is written to ".tmp-seg-....zsp", fsynced,
 * renamed and the directory fsynced, so after a crash or SIGKILL a segment
 * is either whole or absent; leftover temp files are removed at open and
 * counted. A segment that does not check out (truncated, bad CRC, bad
 * CBOR) is renamed "bad-seg-....zsp", counted, and reported through err;
 * it is never read as valid and never silently skipped.
 *
 * Segments are read back oldest first and deleted only when the caller
 * says the records are committed (zt_spool_done). Records the database
 * refuses go to "rejected-<n>.zsp" (same format) for an operator. At open,
 * rejected files in format 1 become segments again, once: an agent older
 * than migration 003 had them refused by the new column types during a
 * rolling upgrade.
 *
 * Bound: every *.zsp file in the directory counts against max_bytes. A
 * write that would exceed it is refused and its records are counted as
 * dropped (zt_spool_write returns -ENOSPC): new records are the ones lost,
 * what is spooled already stays. Thread-safe.
 */
#ifndef ZT_SPOOL_H
#define ZT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records/flowrec.h"

struct zt_spool;

struct zt_spool_stats {
	uint64_t bytes; /* on disk, all *.zsp files */
	uint64_t segments; /* seg-*.zsp waiting for replay */
	uint64_t records_written; /* records spooled since open */
	uint64_t dropped_records; /* refused: bound reached or write error */
	uint64_t corrupt_segments; /* moved aside as bad-*.zsp since open */
	uint64_t partial_removed; /* leftover temp files removed at open */
	uint64_t rejected_records; /* written to rejected-*.zsp since open */
	uint64_t format1_retried; /* format-1 rejected-*.zsp given another try at open */
	uint64_t held_segments; /* written by zt_spool_write_held, not released yet */
	uint64_t held_bytes; /* their size, part of bytes */
};

/* One segment read back. */
struct zt_spool_seg {
	uint64_t seq;
	struct zt_flow_record *recs; /* malloc'ed */
	size_t n;
	uint64_t file_bytes;
};

/* Creates dir (mode 0700) if needed. 0 or -errno with err set. */
int zt_spool_open(const char *dir, uint64_t max_bytes, struct zt_spool **out, char *err,
		  size_t errlen);
void zt_spool_close(struct zt_spool *s);

/*
 * Writes n records as one segment. 0; -ENOSPC when over the bound and
 * -errno on an I/O error: in both cases the records are not spooled and
 * are counted in dropped_records, and err says how many and why.
 */
int zt_spool_write(struct zt_spool *s, const struct zt_flow_record *recs, size_t n, char *err,
		   size_t errlen);

/*
 * A write-ahead copy: writes n records as one segment (durable when this
 * returns 0, *seq its number) that zt_spool_next skips while it is held,
 * because the caller is writing the same records to the database itself.
 * zt_spool_release ends the hold: keep false deletes the segment (the
 * records are committed), keep true makes it an ordinary segment to
 * replay. After a crash it is an ordinary segment. Errors as
 * zt_spool_write.
 */
int zt_spool_write_held(struct zt_spool *s, const struct zt_flow_record *recs, size_t n,
			uint64_t *seq, char *err, size_t errlen);
int zt_spool_release(struct zt_spool *s, uint64_t seq, bool keep, char *err, size_t errlen);

/*
 * The oldest segment (not held). 0 and *seg filled; -ENOENT when there is none;
 * -EBADMSG when the oldest was corrupt: it was renamed bad-*.zsp, err
 * names it and says why, and the caller should log it and call again.
 */
int zt_spool_next(struct zt_spool *s, struct zt_spool_seg *seg, char *err, size_t errlen);
/* The records of seg are committed: deletes the segment and frees seg. */
int zt_spool_done(struct zt_spool *s, struct zt_spool_seg *seg, char *err, size_t errlen);
/* Frees seg, keeping the segment for a later try. */
void zt_spool_seg_free(struct zt_spool_seg *seg);

/* Keeps records the database refused in rejected-*.zsp (not replayed). */
int zt_spool_reject(struct zt_spool *s, const struct zt_flow_record *recs, size_t n, char *err,
		    size_t errlen);

void zt_spool_get_stats(struct zt_spool *s, struct zt_spool_stats *st);

/* The encoding of a segment, exposed for tests. */
int zt_spool_encode(const struct zt_flow_record *recs, size_t n, uint8_t **out, size_t *outlen);
int zt_spool_decode(const uint8_t *buf, size_t len, struct zt_flow_record **recs, size_t *n,
		    char *why, size_t whylen);

#endif
