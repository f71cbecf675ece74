/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The ring-buffer consumer: one thread that drains the "events" ring buffer
 * and hands each record to the handlers registered for its type. Records
 * come from the kernel, a trust boundary of sorts: each is checked against
 * its type (zt_events_check) before a handler sees it, and a record that
 * fails is counted as malformed and dropped.
 *
 * Record types (include/ztagent.h, enum zt_event_type):
 *   ZT_EV_XDP_DROP       struct zt_ev_xdp_drop      sampled XDP drops
 *   ZT_EV_POLICY         struct zt_ev_policy        policy verdicts of new flows
 *   ZT_EV_SRC_ACTIVITY   struct zt_ev_activity      a source crossed signal thresholds
 *   ZT_EV_DST_ACTIVITY   struct zt_ev_activity      a destination did
 *   ZT_EV_PROBE          struct zt_ev_probe         first contact of a source
 *   ZT_EV_PROBE_RESULT   struct zt_ev_probe_result  the answer a probe got
 *   ZT_EV_CAPTURE        struct zt_ev_capture       a packet of a watched address
 *   ZT_EV_SESSION        struct zt_ev_session       a TCP session an endpoint's packet closed
 *   ZT_EV_HOST_SESSION   struct zt_ev_host_session  a TCP session of the node's own closed
 *   ZT_EV_REFUSED        struct zt_ev_refused       logins refused in a session still open
 */
#ifndef ZT_EVENTS_H
#define ZT_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

struct zt_events;

/* Called on the consumer thread; must not block. rec is valid for the call only. */
typedef void (*zt_event_fn)(void *ctx, const void *rec, size_t len);

/* Handlers per record type, at most. */
#define ZT_EVENTS_MAX_HANDLERS 4

struct zt_events_stats {
	uint64_t received; /* records read */
	uint64_t malformed; /* too short, unknown type, or a field out of range */
	uint64_t by_type[ZT_EV_MAX]; /* well-formed records read, by type */
	uint64_t late; /* read 10 ms or more after the kernel wrote them (logged: events_late) */
	uint64_t deferred; /* records handed to the bookkeeping thread */
	uint64_t deferred_high; /* the most waiting at once (of 16384) */
	uint64_t deferred_full_waits, deferred_full_wait_ns; /* the consumer waited: all taken */
	uint64_t realtime; /* the consumer runs under SCHED_FIFO now (zt_events_set_realtime) */
	uint64_t realtime_demotions; /* left it for a while: busy over half its time */
};

/* ringbuf_fd: the pinned ring buffer. Does not start the thread. */
int zt_events_init(struct zt_events **ev, int ringbuf_fd);
/*
 * Registers a handler for a record type (before start). Several handlers of
 * one type are called in the order they were registered. -EINVAL for an
 * unknown type or after start, -ENOSPC beyond ZT_EVENTS_MAX_HANDLERS.
 */
int zt_events_on(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx);
/*
 * The same, run on the bookkeeping thread instead: for handlers that take
 * locks other threads hold for long (the forensic captures' flushes, the
 * engine's conntrack sweep) or do I/O. The consumer copies the record to a
 * queue (16384 records) and goes on, so a detector's record behind it is
 * not held up; the bookkeeping thread runs the deferred handlers in the
 * order the records were read. Nothing is dropped: with the queue full the
 * consumer waits (counted). Inline handlers of a type run before its
 * deferred ones are queued.
 */
int zt_events_on_deferred(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx);
/*
 * Starts the consumer thread at nice ZT_EVENTS_NICE: it carries the
 * kernel's flood signals to the detectors, whose block must not wait for
 * the scheduler behind the flood's own load (on a loaded 2-core node the
 * packet-to-decision time was p50 30-36 ms at nice 0, 2.7-2.8 ms at -10).
 * Its CPU is bounded by the kernel's event rates. Without the privilege
 * (CAP_SYS_NICE) it runs at the process's nice, logged once.
 */
#define ZT_EVENTS_NICE (-10)
/*
 * Optional, before start: the consumer thread (it only) under SCHED_FIFO
 * at prio (1-99; 0, the default: nice ZT_EVENTS_NICE only), so it does not
 * wait behind other threads for a CPU when a record arrives. Not
 * permitted (no CAP_SYS_NICE, no RT budget in the cgroup): logged, nice.
 * It mostly sleeps; should a flood keep it busy more than half of
 * ZT_EVENTS_RT_WINDOW, it goes back to nice for ZT_EVENTS_RT_REST (logged,
 * counted), so a flood of records cannot starve the node's other threads
 * (the kernel's RT throttling bounds it too, at 95% of a CPU).
 */
#define ZT_EVENTS_RT_WINDOW (100 * 1000000ULL)
#define ZT_EVENTS_RT_REST (1000 * 1000000ULL)
void zt_events_set_realtime(struct zt_events *ev, int prio);
int zt_events_start(struct zt_events *ev);
void zt_events_get_stats(const struct zt_events *ev, struct zt_events_stats *out);
/* Stops the thread (drains what is there first); frees; NULL is fine. */
void zt_events_stop(struct zt_events *ev);

/*
 * Work a handler's call leaves for later: called on a consumer thread whose
 * events have a bookkeeping thread, fn(ctx, data, len) runs there, after
 * the deferred records read before it (data copied, at most 256 bytes);
 * called anywhere else, it runs here and now.
 */
void zt_events_later(zt_event_fn fn, void *ctx, const void *data, size_t len);

/*
 * What the consumer does with one well-formed record: runs its inline
 * handlers and queues it for the deferred ones (run here when the
 * bookkeeping thread is not running). Exposed for tests.
 */
void zt_events_dispatch(struct zt_events *ev, const void *rec, size_t len);

/*
 * The type of a well-formed record (its header and its type's own checks:
 * length, families, enumerations, capture length), or -EINVAL. The
 * consumer applies it to every record; exposed for tests and tools.
 */
int zt_events_check(const void *rec, size_t len);
/*
 * A capture record's frame as it was on the wire, into out (at least
 * ZT_CAP_SNAPLEN + 4 bytes): its data, with the VLAN tag the kernel held
 * beside it (vlan_proto 802.1Q or 802.1ad) back after the MAC addresses.
 * Returns the bytes written; *orig_len the frame's length on the wire.
 */
size_t zt_capture_frame(const struct zt_ev_capture *ev, uint8_t *out, uint32_t *orig_len);

/* The default handler for XDP drop records: logs at most 20 lines a second. */
void zt_events_log_xdp_drop(void *ctx, const void *rec, size_t len);

#endif
