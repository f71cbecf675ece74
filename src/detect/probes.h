/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * First contacts waiting for their outcome, between the kernel's events
 * and the scan detector (trw.h). The XDP guard reports a source's first
 * opening packet to (destination, port, protocol) as a probe (ZT_EV_PROBE);
 * tc_uplink reports the answer that leaves the node (ZT_EV_PROBE_RESULT).
 * A probe waits in a slot of this table for its answer; one that gets none
 * within the timeout failed. A slot holds one probe: a new one on a taken
 * slot decides the old one now (failed, as timed out).
 *
 * Strays (enum zt_probe_result) are answers to no probe the guard
 * reported, each a failed contact by itself:
 *  - a protocol unreachable fails at once;
 *  - a reset without ACK waits in the slot for the timeout first: it also
 *    answers a segment of a connection the node forgot (a restarted
 *    service, a rebooted node), and such a client connects again, its SYN
 *    a probe that takes the slot. A reset on one of the node's ephemeral
 *    ports answers a server's late segment to a client connection of the
 *    node, not a probe: left out;
 *  - a FIN segment policy denied on its way into an endpoint (tc_endpoint)
 *    fails at once, or decides a probe of the same contact that waits
 *    (failed, as timed out); on an ephemeral port it is a server's late
 *    FIN to a client connection of the endpoint: left out.
 *
 * Not thread-safe: the caller locks.
 */
#ifndef ZT_DETECT_PROBES_H
#define ZT_DETECT_PROBES_H

#include <stddef.h>
#include <stdint.h>

#include "detect/trw.h"
#include "ztagent.h"

struct zt_probe_table;

struct zt_probe_table_stats {
	uint64_t answered; /* probes decided by their answer */
	uint64_t timed_out; /* probes that got none (or lost their slot) */
	uint64_t strays; /* strays decided as failed contacts */
	uint64_t strays_ephemeral; /* resets and denied FINs on ephemeral ports, left out */
};

/* slots >= 1; a probe (and a stray reset) waits timeout_ns. */
int zt_probe_table_new(size_t slots, uint64_t timeout_ns, struct zt_probe_table **out);
void zt_probe_table_free(struct zt_probe_table *t);

/* The node's ephemeral ports, lo..hi (by default 32768..60999, Linux's). */
void zt_probe_table_set_ephemeral(struct zt_probe_table *t, uint16_t lo, uint16_t hi);

/*
 * A probe the guard passed (one it dropped failed already: the caller
 * tells the detector). Returns 1 when it displaced another probe, which is
 * in *out with its failure.
 */
int zt_probe_table_add(struct zt_probe_table *t, const struct zt_probe *p, struct zt_probe *out);

/*
 * An answer seen leaving the node. Returns 1 with a decided first contact
 * in *out (the probe it answers with its outcome, a stray's failure, or a
 * probe a stray reset displaced), 0 when there is none yet.
 */
int zt_probe_table_answer(struct zt_probe_table *t, const struct zt_ev_probe_result *ev,
			  struct zt_probe *out);

/* The probes older than the timeout at now_ns, failed, into v (at most max). */
size_t zt_probe_table_expire(struct zt_probe_table *t, uint64_t now_ns, struct zt_probe *v,
			     size_t max);

void zt_probe_table_get_stats(const struct zt_probe_table *t, struct zt_probe_table_stats *st);

#endif /* ZT_DETECT_PROBES_H */
