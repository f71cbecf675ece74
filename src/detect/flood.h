/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flood detection per source and per destination: SYNs that do not
 * complete a handshake, UDP, ICMP and (off by default) all packets, counted
 * in count-min sketches (sketch.h) over fixed windows, so memory stays
 * fixed under a random-source flood. A key whose count in the current
 * window reaches rate x window decides at once (not at the window's end):
 * at 100k packets/s against 2000/s the decision comes after ~2 ms (the
 * window is 100 ms, so a key needs rate / 10 packets in it).
 *
 * Two ways in:
 *  - zt_flood_add(): packets as they are seen (sampled events with their
 *    weight, capture events); half-open SYNs are SYNs less completed
 *    handshakes (ZT_FLOOD_SYN_DONE), so a client opening many connections
 *    that all complete never counts;
 *  - zt_flood_sample(): a count the kernel already made for one key over
 *    its own window (XDP per-source sketches, token-bucket drops). It
 *    decides on the same evidence: at least rate x window, and the rate
 *    over its own span when that is longer. A burst shorter than the
 *    window (a client opening a few hundred connections at once, which
 *    an overloaded server leaves half-open) is not a flood until it
 *    reaches rate x window.
 *
 * A per-source decision names the source (blockable); a per-destination
 * decision names the victim (role destination): a random-source flood
 * cannot be stopped by source, the kernel protects the destination.
 * Bulk TCP transfers are not floods: "all packets" is off unless set.
 * A TCP flood without SYN (ACKs to no connection) is told from a client's
 * ACKs to a download by what the node answers: a reset for every segment
 * no connection owned (ZT_FLOOD_OUT_OF_STATE), none for a connection's.
 */
#ifndef ZT_FLOOD_H
#define ZT_FLOOD_H

#include "detect/detect.h"
#include "detect/sketch.h"

enum zt_flood_kind {
	ZT_FLOOD_SYN = 0, /* TCP SYN without ACK */
	ZT_FLOOD_UDP,
	ZT_FLOOD_ICMP, /* ICMP and ICMPv6 */
	ZT_FLOOD_ALL, /* every packet */
	/*
	 * TCP segments that no connection owned, counted by the resets the
	 * node sent back (an ACK, PSH/ACK or FIN/ACK flood): kernel samples
	 * only, per source.
	 */
	ZT_FLOOD_OUT_OF_STATE,
	ZT_FLOOD_KINDS,
	ZT_FLOOD_SYN_DONE = ZT_FLOOD_KINDS, /* a handshake completed: cancels one SYN */
};

struct zt_flood_params {
	uint64_t window_ns; /* default 100 ms: a 5x flood is decided within it */
	/* Per second per source; 0 = off (syn 2000, udp 20000, icmp 500, all 0, out-of-state 5000). */
	uint32_t src_rate[ZT_FLOOD_KINDS];
	uint32_t dst_rate[ZT_FLOOD_KINDS]; /* per destination; default 10 x src_rate */
	uint32_t depth, width; /* sketch shape, default 4 x 4096 */
	uint32_t max_decided; /* keys decided per window, remembered to decide once; default 4096 */
};

/* A count the kernel made for one key. */
struct zt_rate_sample {
	uint8_t family;
	uint8_t role; /* enum zt_subject_role */
	uint8_t kind; /* enum zt_flood_kind (not SYN_DONE): for SYN, half-open SYNs */
	uint8_t _pad;
	uint8_t addr[16];
	uint64_t count;
	uint64_t window_ns; /* what count is over */
	uint64_t ts_ns; /* end of that window */
};

struct zt_flood;

struct zt_flood_stats {
	uint64_t packets, windows, decisions_src, decisions_dst, undecided_full;
};

const char *zt_flood_kind_name(unsigned int k);
void zt_flood_defaults(struct zt_flood_params *p);
int zt_flood_new(const struct zt_flood_params *p, struct zt_flood **out);
void zt_flood_free(struct zt_flood *f);
/*
 * n packets of kind from src to dst (family 4|6, 16-byte addresses) at
 * ts_ns. Returns how many decisions it made (0, 1 or 2: source and/or
 * destination), written to d[0..].
 */
int zt_flood_add(struct zt_flood *f, uint8_t family, const uint8_t *src, const uint8_t *dst,
		 enum zt_flood_kind kind, uint32_t n, uint64_t ts_ns, struct zt_decision d[2]);
/* One kernel count; 1 and *d when it is a flood, else 0. */
int zt_flood_sample(struct zt_flood *f, const struct zt_rate_sample *s, struct zt_decision *d);
void zt_flood_get_stats(const struct zt_flood *f, struct zt_flood_stats *st);

#endif
