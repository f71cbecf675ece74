/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Forensic captures: from the moment an address is flagged, its packets
 * (both directions, dropped ones included) go to a pcapng.gz file of its
 * incident in forensics.dir, read with tshark as they are.
 *
 *   <dir>/<incident id>-<part>.pcapng.gz
 *
 * Packets come in through zt_forensics_packet() (whole frames with their
 * verdict: the kernel's capture events) and zt_forensics_xdp_drop() (the
 * XDP guard's sampled drop events, which carry headers' fields only:
 * written as a rebuilt header with a comment saying so). Both are routed
 * by the frame's addresses to the watched addresses' captures.
 *
 * Bounds. A file is rotated (a new part) at file_bytes; all files together
 * stay within max_bytes and max_files: the oldest file is removed first
 * (an open one is closed, removed, and its capture goes on in a new part).
 * A capture keeps rate packets a second in full; beyond that one in 2,
 * then one in 4 after another rate kept, and so on (a flood of N packets
 * a second keeps about rate x log2(N / rate)); the rest are counted as
 * sampled out, so a flood fills the disk slowly. Files found in dir at start count
 * against the bounds. Files are flushed (complete gzip members) every
 * flush interval, so a file is readable while its incident goes on.
 *
 * Every file opened, closed and removed is reported through the event
 * callback (kind "forensics.capture", detail JSON with incident_id, path,
 * part, state open|closed|removed, bytes, packets, first and last packet
 * time): the index in PostgreSQL (incident_db.h) and the audit trail.
 *
 * Thread-safe (one lock): packets arrive on the ring-buffer thread.
 */
#ifndef ZT_FORENSICS_H
#define ZT_FORENSICS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztagent.h"

struct zt_forensics_cfg {
	char dir[PATH_MAX]; /* forensics.dir */
	uint64_t max_bytes; /* forensics.max_bytes, default 1 GiB */
	uint64_t file_bytes; /* forensics.file_bytes, default 64 MiB */
	uint32_t max_files; /* forensics.max_files, default 1000 */
	uint32_t snaplen; /* forensics.snaplen: bytes kept of each packet, default 256 */
	uint32_t rate; /* packets a second per capture before sampling, default 2000 */
	uint32_t max_captures; /* open at once, default 256 */
	uint64_t flush_ns; /* default 1 s */
};

typedef void (*zt_forensics_event_fn)(void *ctx, const char *kind, const char *subject,
				      const char *detail_json);
/* An interface's name for the capture (may be NULL: "if<N>"). */
typedef bool (*zt_forensics_ifname_fn)(void *ctx, uint32_t ifindex, char *buf, size_t n);

struct zt_forensics;

struct zt_forensics_stats {
	uint64_t packets, synthesized, sampled_out, unmatched, write_errors;
	uint64_t files_opened, files_removed, bytes, files, captures;
};

void zt_forensics_cfg_defaults(struct zt_forensics_cfg *c);
/* Creates dir (0700) and counts what is in it. err says what failed. */
int zt_forensics_new(const struct zt_forensics_cfg *c, zt_forensics_event_fn ev,
		     zt_forensics_ifname_fn ifname, void *ctx, struct zt_forensics **out, char *err,
		     size_t errlen);
/* Closes every file (reported) and frees. NULL is fine. */
void zt_forensics_free(struct zt_forensics *f);

/*
 * Captures the packets of addr (from or to it) for an incident (its id);
 * *path gets the file. A second address of the same incident joins its
 * capture; an address already watched for another incident moves to this
 * one. 0 or -errno (-ENOSPC: max_captures watched).
 */
int zt_forensics_watch(struct zt_forensics *f, const uint8_t incident_id[16], uint8_t family,
		       const uint8_t *addr, char *path, size_t n);
/* Stops the capture of an incident and closes its file. */
void zt_forensics_unwatch(struct zt_forensics *f, const uint8_t incident_id[16]);
/* Whether addr is watched (a cheap check before building anything). */
bool zt_forensics_watched(struct zt_forensics *f, uint8_t family, const uint8_t *addr);

/* verdict of zt_forensics_packet() */
enum zt_fx_verdict {
	ZT_FX_PASS = 0,
	ZT_FX_DROP = 1,
};

/*
 * One frame (from its Ethernet header): ts in unix ns, the interface, the
 * verdict and (may be NULL) why, e.g. "blocklist". Routed to the captures
 * of its source and destination addresses. 1 when written, 0 when no
 * capture wanted it (or sampled out), -errno on a write error.
 */
int zt_forensics_packet(struct zt_forensics *f, uint64_t ts_unix_ns, uint32_t ifindex,
			uint8_t verdict, const char *why, const uint8_t *pkt, uint32_t caplen,
			uint32_t origlen);
/* A sampled XDP drop: its header fields as a rebuilt frame, marked as such. */
int zt_forensics_xdp_drop(struct zt_forensics *f, const struct zt_ev_xdp_drop *ev,
			  uint64_t ts_unix_ns, const char *why);
/*
 * Flushes, rotates and enforces the bounds; on the loop, every second.
 * While the packets' writer holds the capture lock it returns at once
 * (its work waits for a later tick), up to 4 ticks in a row; the 5th waits.
 */
void zt_forensics_tick(struct zt_forensics *f, uint64_t now_mono_ns);
void zt_forensics_get_stats(struct zt_forensics *f, struct zt_forensics_stats *st);
/* The current file of an incident ("" when none). */
void zt_forensics_path(struct zt_forensics *f, const uint8_t incident_id[16], char *buf, size_t n);

#endif
