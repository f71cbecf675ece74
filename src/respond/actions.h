/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Carrying out blocks: the XDP blocklist belongs to the daemon's loop
 * thread (API, expiry), so a block decided there is written at once. One
 * decided on another thread (the ring-buffer consumer, for kernel events)
 * is written at once on that thread when the loop is idle (parked in
 * epoll_wait: zt_loop_borrow), without waking the loop; when the loop is
 * busy it is queued and written by the loop right after the callback it
 * is in (zt_loop_set_between), or when an eventfd wakes it. Each block's
 * time from decision to map write is measured and handed to the done
 * callback with the result.
 *
 * The queue is bounded (1024 blocks); a block that does not fit is not
 * written, reported to done with -ENOBUFS.
 */
#ifndef ZT_ACTIONS_H
#define ZT_ACTIONS_H

#include <stdint.h>

#include "agent/loop.h"
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

/* How a block reached the map. */
enum zt_block_path {
	ZT_BP_LOOP, /* decided on the loop thread */
	ZT_BP_BORROWED, /* on the deciding thread, the loop idle */
	ZT_BP_QUEUED, /* queued for the loop thread */
};

/* Writes one block into the maps: 0 or -errno (err says why). */
typedef int (*zt_block_write_fn)(void *ctx, const struct zt_block_action *a, char *err,
				 size_t errlen);
/* After the write (or its failure): latency_ns from decided_ns to the write's end. */
typedef void (*zt_block_done_fn)(void *ctx, const struct zt_block_action *a, int result,
				 uint64_t latency_ns, const char *err);

struct zt_actions;

struct zt_actions_stats {
	uint64_t written, failed, queued, overflow;
	uint64_t borrowed; /* written on the deciding thread, the loop idle */
};

/* Call on the loop's thread: that thread writes. */
int zt_actions_new(struct zt_loop *loop, zt_block_write_fn write, zt_block_done_fn done, void *ctx,
		   struct zt_actions **out);
/* Writes what is still queued, then frees. NULL is fine. */
void zt_actions_free(struct zt_actions *a);
/* From any thread. 0: written (loop thread) or queued; -ENOBUFS: the queue is full. */
int zt_actions_block(struct zt_actions *a, const struct zt_block_action *b);
/*
 * On the loop thread, from inside a long callback (the detection sweep,
 * flow records): writes the blocks other threads queued now, instead of
 * when the loop gets back to the queue's eventfd. Elsewhere: nothing.
 */
void zt_actions_run_queued(struct zt_actions *a);
void zt_actions_get_stats(struct zt_actions *a, struct zt_actions_stats *st);

#endif
