/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ring-buffer consumer: one thread that drains the "events" ring buffer
 * and hands each record to the handler registered for its type. Records
 * are length-checked against their type before a handler sees them.
 */
#ifndef ZT_EVENTS_H
#define ZT_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

struct zt_events;

/* Called on the consumer thread; must not block. */
typedef void (*zt_event_fn)(void *ctx, const void *rec, size_t len);

struct zt_events_stats {
	uint64_t received; /* records read */
	uint64_t malformed; /* too short or unknown type */
};

/* ringbuf_fd: the pinned ring buffer. Does not start the thread. */
int zt_events_init(struct zt_events **ev, int ringbuf_fd);
/* Registers a handler for a record type (before start). */
int zt_events_on(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx);
int zt_events_start(struct zt_events *ev);
void zt_events_get_stats(const struct zt_events *ev, struct zt_events_stats *out);
/* Stops the thread (drains what is there first); frees; NULL is fine. */
void zt_events_stop(struct zt_events *ev);

/* The default handler for XDP drop records: logs at most 20 lines a second. */
void zt_events_log_xdp_drop(void *ctx, const void *rec, size_t len);

#endif
