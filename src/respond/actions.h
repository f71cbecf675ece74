/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Carrying out blocks: each block is written into the XDP maps on the
 * thread that decided it, at once: the loop thread for the conntrack
 * sweep and flow records, the ring buffer's consumer for kernel events.
 * Nothing waits for the loop thread, whatever callback it is in (blocks
 * queued for it waited behind its callbacks: tens of ms at p99), so
 * the writer must be safe from any thread: the daemon's is the
 * blocklist's, which serializes its callers on a lock of its own
 * (guard/blocklist.h). Each block's time from decision to map write is
 * measured and handed to the done callback with the result, on the same
 * thread.
 */
#ifndef ZT_ACTIONS_H
#define ZT_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

struct zt_block_action {
	uint8_t family; /* 4 | 6 */
	uint8_t threat; /* enum zt_threat */
	uint16_t reason; /* enum zt_block_reason */
	uint8_t addr[16];
	uint64_t ttl_ns;
	uint8_t incident_id[16];
	float score;
	uint32_t offence;
	uint64_t decided_ns; /* CLOCK_MONOTONIC when the detector decided */
	uint64_t packet_ns; /* CLOCK_BOOTTIME of the deciding packet, 0 unknown */
	uint64_t decided_boot_ns; /* CLOCK_BOOTTIME when the detector decided */
	uint64_t write_ns; /* set by the actions: CLOCK_MONOTONIC when the write began */
	uint8_t path; /* set by the actions: enum zt_block_path */
	char note[ZT_NOTE_LEN]; /* the blocklist's note: detector and why, <= 63 bytes */
};

/* Which thread wrote a block. */
enum zt_block_path {
	ZT_BP_LOOP, /* decided and written on the loop thread */
	ZT_BP_DIRECT, /* decided and written on another thread (the ring buffer's consumer) */
};

/* Writes one block into the maps, from any thread: 0 or -errno (err says why). */
typedef int (*zt_block_write_fn)(void *ctx, const struct zt_block_action *a, char *err,
				 size_t errlen);
/* After the write (or its failure): latency_ns from decided_ns to the write's end. */
typedef void (*zt_block_done_fn)(void *ctx, const struct zt_block_action *a, int result,
				 uint64_t latency_ns, const char *err);

struct zt_actions;

struct zt_actions_stats {
	uint64_t written, failed;
	uint64_t direct; /* written on a thread other than the loop's */
};

/* Call on the loop's thread (its blocks are labelled ZT_BP_LOOP). */
int zt_actions_new(zt_block_write_fn write, zt_block_done_fn done, void *ctx,
		   struct zt_actions **out);
/* NULL is fine. No zt_actions_block may run any more. */
void zt_actions_free(struct zt_actions *a);
/*
 * From any thread: writes the block now, on this thread, then calls done;
 * returns the write's result (0 or -errno).
 */
int zt_actions_block(struct zt_actions *a, const struct zt_block_action *b);
void zt_actions_get_stats(struct zt_actions *a, struct zt_actions_stats *st);

#endif
