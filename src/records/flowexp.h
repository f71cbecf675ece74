/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flow exporter: turns tc_endpoint's conntrack entries into flow
 * records (flowrec.h) and ages entries out.
 *
 * The sweep runs on the daemon's loop every ZT_FLOWEXP_TICK_NS and costs it
 * a bounded slice, however large the table (the sink's disk writes and
 * the map updates after it run on a worker: zt_flowexp_start_worker): one batch read of at most
 * ZT_FLOWEXP_SLICE entries from a cursor that goes round the map, and at
 * most ZT_FLOWEXP_DUE_MAX of them acted on (read again, recorded,
 * deleted; a few syscalls each). Entries with nothing due (live flows
 * younger than the active timeout, most of a big table) cost no syscall.
 * A full rotation of a 262144-entry table takes 32 ticks (1.6 s). For each
 * entry:
 *  - a TCP flow that closed (FIN both ways, or RST) gets its final record
 *    once it has been quiet for ZT_FLOWEXP_CLOSE_GRACE_NS (the last ACK is
 *    in it); the kernel entry stays until its close timeout so that late
 *    packets do not start a new flow, and is then deleted;
 *  - a denied flow gets its record once it has been quiet for
 *    ZT_FLOWEXP_DENY_QUIET_NS (the client's retries are in it), and the
 *    entry is deleted;
 *  - a flow idle past its protocol's timeout, or whose interface is no
 *    longer an endpoint, gets its final record and is deleted;
 *  - a flow whose unrecorded packets span more than active_timeout gets an
 *    interim record (a short flow gets one record, however long it idles);
 *  - a TCP flow that never completed its handshake (NEW or SYN_RECV: a
 *    half-open connection, or a SYN flood's) is recorded when it times out
 *    or is denied, merged with the half-open flows ending in the same call
 *    that share its interface, addresses, destination port and verdict:
 *    one row with aggregate_count flows (no source port when more than
 *    one), so a spoofed-source flood is a few rows a tick.
 * Every record carries the packets and bytes since the flow's previous
 * record, so the rows of a flow add up to its totals; start_time is the
 * previous record's end (or the flow's first packet).
 *
 * What was already recorded per flow lives in a pinned LRU hash map
 * (PIN_DIR/flow_export, key struct zt_ct_key, value struct
 * zt_flow_export, as large as conntrack) made by the daemon, so that a
 * restart or a SIGKILL loses no counts. A sweep updates it (and deletes
 * ended entries) only after the sink has returned, and the daemon's sink
 * (zt_dbw_submit_durable) has the records in the spool by then. A state
 * whose first_ns differs from the entry's belongs to an earlier flow on
 * the same key and is ignored; states of entries the kernel evicted age
 * out of the LRU. Limits: a SIGKILL between the sink's fsync and the end
 * of the sweep's map updates (well under a millisecond) records those
 * deltas again once, as rows with new ids; records the spool could not
 * take (full or unwritable, logged) live only in memory until written; a
 * key the kernel reuses before a sweep loses the earlier flow's
 * unrecorded remainder; an entry the LRU evicts before it was due is not
 * recorded.
 *
 * A flow between two local endpoints has an entry on each veth. It is
 * recorded once, from the source's entry (original direction leaving the
 * source pod: dir ZT_DIR_EGRESS); when the destination's entry denied it,
 * the record takes that verdict, reason and rule. The destination's entry
 * is deleted with the source's. A destination entry whose source entry is
 * gone is recorded on its own.
 */
#ifndef ZT_FLOWEXP_H
#define ZT_FLOWEXP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records/flowrec.h"
#include "ztagent.h"

#define ZT_PIN_FLOW_EXPORT "flow_export"
#define ZT_FLOWEXP_CLOSE_GRACE_NS (200ULL * 1000000ULL)
#define ZT_FLOWEXP_DENY_QUIET_NS (5000ULL * 1000000ULL)
#define ZT_FLOWEXP_TICK_NS (50ULL * 1000000ULL) /* how often the daemon calls the sweep */
#define ZT_FLOWEXP_SLICE 8192u /* entries looked at per call (one batch read, ~2 ms) */
#define ZT_FLOWEXP_DUE_MAX 1024u /* entries acted on per call */
#define ZT_FLOWEXP_SLICE_MIN 64u
#define ZT_FLOWEXP_READ_MIN 1024u /* the smallest read of a paced rotation (read_count) */
/* The daemon's rotation pace (zt_flowexp_set_rotation_min): records of a closed flow ~0.2-0.45 s after its close. */
#define ZT_FLOWEXP_ROTATION_MIN_NS (250ULL * 1000000ULL)

/* Value of the flow_export map. */
struct zt_flow_export {
	uint64_t packets[2]; /* recorded so far */
	uint64_t bytes[2];
	uint64_t last_ns; /* CLOCK_BOOTTIME end of the last record; 0 none */
	uint64_t first_ns; /* the flow's first_ns: another value means the key was reused */
	uint32_t final; /* the final record is out */
	uint32_t _pad;
};

typedef void (*zt_flow_sink_fn)(void *ctx, const struct zt_flow_record *recs, size_t n);

/* How the exporter names things; the segmentation code provides these. */
struct zt_flowexp_names {
	void *ctx;
	/* "namespace/name", "host", "world", "cidr:..." for an identity (and endpoint id, 0 none) */
	void (*workload)(void *ctx, uint32_t identity, uint32_t ep_id, char *buf, size_t n);
	/* the rule or policy text for (gen, rule_id, reason), as alerts show it */
	void (*rule)(void *ctx, uint32_t gen, uint32_t rule_id, uint8_t reason, char *buf,
		     size_t n);
	/* the ifindex of an endpoint id, 0 when there is none */
	int (*ep_ifindex)(void *ctx, uint32_t ep_id);
	/* whether ifindex is a registered endpoint now */
	bool (*is_endpoint)(void *ctx, int ifindex);
	/* its interface name, without a syscall (NULL or false: if_indextoname) */
	bool (*ifname)(void *ctx, int ifindex, char *buf, size_t n);
};

/*
 * The SPIFFE IDs proven by the two ends of a tunnelled flow (k in its
 * original direction): true with src and dst filled when the source knows
 * the connection. The mTLS subsystem is the one source in the process; it
 * sets it when its tunnel starts and clears it (NULL) before it stops.
 */
typedef bool (*zt_flowexp_ids_fn)(void *ctx, const struct zt_ct_key *k, char *src, char *dst,
				  size_t n);
void zt_flowexp_set_identity_source(zt_flowexp_ids_fn fn, void *ctx);

struct zt_flowexp_stats {
	uint64_t sweeps; /* calls */
	uint64_t rotations; /* complete passes over the table */
	uint64_t entries; /* conntrack entries the last complete rotation saw */
	uint64_t slice_max; /* most entries looked at in one call */
	uint64_t rechecked; /* entries read again to decide on them (may_be_due said maybe) */
	uint64_t records_final; /* rows, half-open aggregates included */
	uint64_t records_interim;
	uint64_t halfopen_flows; /* half-open TCP flows recorded ... */
	uint64_t halfopen_rows; /* ... in this many rows */
	uint64_t entries_deleted;
	uint64_t deduplicated; /* destination-side entries recorded with their source's */
	uint64_t deferred; /* calls that waited: the worker was still on the previous sweep */
	uint64_t loop_ns_max; /* longest call (what the caller's thread spent in it) */
	uint64_t loop_cpu_ns_max; /* ... in CPU time (without the time it was preempted) */
	uint64_t prep_ns_max; /* longest prep (scoring, detection) within a call */
	uint64_t worker_ns_max; /* longest sink + flow_export update on the worker */
};

struct zt_flowexp;

/*
 * Opens (or creates and pins) PIN_DIR/flow_export with max_entries (the
 * conntrack size). A pinned map of another shape is replaced. node is the
 * records' node; active_timeout_ns 0 means 60 s.
 */
int zt_flowexp_open(const char *pin_dir, uint32_t max_entries, uint64_t active_timeout_ns,
		    const char *node, const struct zt_flowexp_names *names, struct zt_flowexp **out,
		    char *err, size_t errlen);
void zt_flowexp_close(struct zt_flowexp *x);

/*
 * One slice of the sweep over the conntrack map ct_fd at now_boot_ns
 * (CLOCK_BOOTTIME), going on where the previous call stopped (a table that
 * fits in one slice is swept whole by every call): records go to sink
 * (NULL: entries are aged out, nothing is recorded). Returns the number
 * of records emitted, or -errno. On the loop thread only.
 */
int zt_flowexp_sweep(struct zt_flowexp *x, int ct_fd, uint64_t now_boot_ns, zt_flow_sink_fn sink,
		     void *sink_ctx);

/*
 * Called on the loop thread with a sweep's records before they go to the
 * sink, which may change them (the daemon scores them here and feeds its
 * detectors, whose state is the loop's).
 */
typedef void (*zt_flowexp_prep_fn)(void *ctx, struct zt_flow_record *recs, size_t n);

/*
 * From now on the sink of each sweep, and the flow_export updates and
 * deletes that follow it, run on a thread of the exporter's: a sink that
 * blocks (the daemon's writes the records to the spool and fsyncs it,
 * twice per call) no longer stalls the loop. zt_flowexp_sweep gathers the
 * records on the loop (names, verdicts: the loop's state), calls prep
 * (NULL: none) and hands them over; while the worker is on them, later
 * calls return 0 without looking at the table (counted in deferred), so
 * no entry is recorded twice. The durability order is the same: an entry
 * is marked recorded or deleted only after the sink has returned.
 * zt_flowexp_close finishes what was handed over before it returns (the
 * sink must still work then: close before stopping the writer).
 * 0 or -errno.
 */
int zt_flowexp_start_worker(struct zt_flowexp *x, zt_flowexp_prep_fn prep, void *prep_ctx);
/* Waits until the worker has finished the sweep handed to it, if any. */
void zt_flowexp_flush(struct zt_flowexp *x);
void zt_flowexp_get_stats(const struct zt_flowexp *x, struct zt_flowexp_stats *st);
/*
 * Conntrack entries counted by the last complete rotation (at most a few
 * seconds old), without reading the map. Any thread; NULL gives 0.
 */
uint64_t zt_flowexp_entries(const struct zt_flowexp *x);
/* The flow_export map's fd (pinned as ZT_PIN_FLOW_EXPORT), -1 for NULL; for drift repair. */
int zt_flowexp_fd(const struct zt_flowexp *x);
/* Slice and due bounds other than the defaults (tests); slice >= ZT_FLOWEXP_SLICE_MIN. */
int zt_flowexp_set_slice(struct zt_flowexp *x, uint32_t slice, uint32_t due_max);
/*
 * A rotation starts at most every min_ns (of the sweeps' now), 0 (the
 * default): every call may start one. One batch read walks every bucket of
 * the hash map up to its slice of entries, so in a table of few entries
 * each call is a whole rotation: a read of all of conntrack's buckets every
 * tick (262144 by default, 20 a second: most of the idle daemon's CPU). The
 * daemon sets ZT_FLOWEXP_ROTATION_MIN_NS; a table big enough to need more
 * than one slice a rotation is not slowed (its rotations take longer).
 */
void zt_flowexp_set_rotation_min(struct zt_flowexp *x, uint64_t min_ns);

#endif
