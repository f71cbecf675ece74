/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The feature schema of the model: one float per feature, computed from a
 * flow record (records/flowrec.h), optional per-flow statistics from
 * conntrack (struct zt_feat_flowstats) and the flow's source over a short
 * window (struct zt_feat_src, kept by struct zt_feat_window).
 *
 * What a feature may be: something that describes the traffic wherever it
 * runs. What it may not be: anything that identifies the lab it was learnt
 * in: no addresses, no raw ports (a coarse service class instead), no
 * TTLs, no tool fingerprints (window sizes, option orders, payload bytes).
 *
 * The schema is the ordered table zt_feat_defs[]; its hash (SHA-256 over
 * "name:version\n" for each feature, in order, hex) is what a model file
 * must carry to be loaded (model.h). Changing what a feature means bumps
 * that feature's version; adding, removing or reordering features changes
 * the hash by itself. tools/train reads the table through `build/tools/featschema`
 * (zt_feat_schema_json), so Python and C never keep two copies.
 *
 * Absent inputs give defined values, never NaN: the flow statistics and
 * the source window each have a presence feature (has_flowstats, has_src)
 * and their features are 0 when absent.
 */
#ifndef ZT_DETECT_FEATURES_H
#define ZT_DETECT_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "records/flowrec.h"

enum zt_feat_id {
	/* the flow record: protocol, service, direction */
	ZT_F_PROTO_TCP,
	ZT_F_PROTO_UDP,
	ZT_F_PROTO_ICMP, /* ICMP or ICMPv6 */
	ZT_F_SVC_WEB, /* one-hot service class of the destination port; none: all 0 */
	ZT_F_SVC_DNS,
	ZT_F_SVC_REMOTE,
	ZT_F_SVC_DATABASE,
	ZT_F_SVC_MAIL,
	ZT_F_SVC_FILE,
	ZT_F_SVC_WELL_KNOWN,
	ZT_F_SVC_REGISTERED,
	ZT_F_SVC_EPHEMERAL,
	ZT_F_DIR_EGRESS, /* the local workload opened the flow */
	/* volumes ("out": the opener's direction, "in": the replies) */
	ZT_F_LOG_PKTS_OUT, /* ln(1 + packets) */
	ZT_F_LOG_PKTS_IN,
	ZT_F_LOG_BYTES_OUT,
	ZT_F_LOG_BYTES_IN,
	ZT_F_LOG_DURATION_MS,
	ZT_F_BYTES_OUT_RATIO, /* out / (out + in); 0 without bytes */
	ZT_F_MEAN_SIZE_OUT, /* bytes per packet; 0 without packets */
	ZT_F_MEAN_SIZE_IN,
	ZT_F_LOG_PPS, /* ln(1 + packets per second), duration at least 1 ms */
	ZT_F_LOG_BPS, /* ln(1 + bytes per second) */
	ZT_F_REPLY_SEEN,
	/* TCP flags seen, either direction */
	ZT_F_TCP_SYN,
	ZT_F_TCP_FIN,
	ZT_F_TCP_RST,
	ZT_F_TCP_PSH,
	ZT_F_TCP_ACK,
	ZT_F_TCP_URG,
	ZT_F_TCP_HANDSHAKE, /* completed (conntrack's word, else estimated) */
	/* per-flow statistics (struct zt_feat_flowstats) */
	ZT_F_HAS_FLOWSTATS,
	ZT_F_SIZE_MIN_OUT,
	ZT_F_SIZE_MEAN_OUT,
	ZT_F_SIZE_MAX_OUT,
	ZT_F_SIZE_STD_OUT,
	ZT_F_SIZE_MIN_IN,
	ZT_F_SIZE_MEAN_IN,
	ZT_F_SIZE_MAX_IN,
	ZT_F_SIZE_STD_IN,
	ZT_F_LOG_IAT_MIN_OUT, /* ln(1 + microseconds) */
	ZT_F_LOG_IAT_MEAN_OUT,
	ZT_F_LOG_IAT_MAX_OUT,
	ZT_F_LOG_IAT_STD_OUT,
	ZT_F_LOG_IAT_MIN_IN,
	ZT_F_LOG_IAT_MEAN_IN,
	ZT_F_LOG_IAT_MAX_IN,
	ZT_F_LOG_IAT_STD_IN,
	ZT_F_LOG_SYN_OUT, /* ln(1 + packets with the flag) */
	ZT_F_LOG_SYN_IN,
	ZT_F_LOG_FIN_OUT,
	ZT_F_LOG_FIN_IN,
	ZT_F_LOG_RST_OUT,
	ZT_F_LOG_RST_IN,
	ZT_F_LOG_PSH_OUT,
	ZT_F_LOG_PSH_IN,
	/* the flow's source over its window (struct zt_feat_src), this flow included */
	ZT_F_HAS_SRC,
	ZT_F_SRC_LOG_FLOWS,
	ZT_F_SRC_LOG_DST_PORTS, /* distinct destination ports, estimated */
	ZT_F_SRC_LOG_DST_HOSTS, /* distinct destination addresses, estimated */
	ZT_F_SRC_SYN_NOHS_RATIO, /* TCP flows with a SYN and no handshake / TCP flows */
	ZT_F_SRC_NOREPLY_RATIO, /* flows without a packet back / flows */
	ZT_F_SRC_LOG_SAME_SERVICE, /* flows to this flow's (address, port) */
	ZT_F_SRC_LOG_BYTES_OUT,
	ZT_F_COUNT
};

struct zt_feat_def {
	const char *name; /* [a-z0-9_], unique */
	uint16_t version; /* bumped when the meaning changes */
	const char *doc;
};

extern const struct zt_feat_def zt_feat_defs[ZT_F_COUNT];

#define ZT_FEAT_HASH_LEN 32
#define ZT_FEAT_HASH_HEX (2 * ZT_FEAT_HASH_LEN + 1)

/* SHA-256 of the schema (see the top of this file); computed once. */
const uint8_t *zt_feat_schema_hash(void);
/* Same, as 64 lower-case hex digits and a NUL. */
const char *zt_feat_schema_hash_hex(void);
/*
 * The schema as JSON for tools/train: {"hash": HEX, "hash_input": "name:version\n"
 * ..., "features": [{"index", "name", "version", "doc"}], "classes": [...]}.
 * Returns 0 or -EIO.
 */
int zt_feat_schema_json(FILE *f);

/* Coarse service class of a destination port: what the port is for, not which it is. */
enum zt_svc_class {
	ZT_SVC_NONE = 0, /* no port (ICMP, ...) or port 0 */
	ZT_SVC_WEB,
	ZT_SVC_DNS,
	ZT_SVC_REMOTE, /* remote shells and desktops */
	ZT_SVC_DATABASE, /* databases, caches, search and key-value stores */
	ZT_SVC_MAIL,
	ZT_SVC_FILE, /* file transfer and sharing */
	ZT_SVC_WELL_KNOWN, /* another port below 1024 */
	ZT_SVC_REGISTERED, /* another port in 1024..49151 */
	ZT_SVC_EPHEMERAL, /* 49152..65535 */
	ZT_SVC_MAX
};

enum zt_svc_class zt_feat_service_class(uint8_t proto, uint16_t port, bool has_port);
const char *zt_feat_service_name(enum zt_svc_class c);

/*
 * Per-flow statistics (struct zt_feat_flowstats): in records/flowrec.h,
 * where the flow exporter puts them into each record it makes from
 * conntrack (zt_flow_record.flowstats).
 */

/*
 * Mean and standard deviation from the online sums the datapath keeps
 * (n values, their sum and sum of squares): population std, 0 for n < 2,
 * never NaN.
 */
void zt_feat_mean_std(uint64_t n, double sum, double sumsq, float *mean, float *std);

/* The flow's source over its window; filled by zt_feat_window_add(). */
struct zt_feat_src {
	uint32_t flows;
	uint32_t tcp_flows;
	uint32_t syn_nohs; /* TCP flows with a SYN and no completed handshake */
	uint32_t noreply; /* flows with no packet back */
	uint32_t same_service; /* flows to this flow's destination address and port */
	float dst_ports; /* distinct destination ports (linear counting) */
	float dst_hosts; /* distinct destination addresses (linear counting) */
	uint64_t bytes_out;
};

/*
 * Whether a TCP flow completed its handshake: fs->handshake when there are
 * statistics, else estimated from the record (a SYN, a reply, and at least
 * two packets from the opener other than a SYN answered by RST; a
 * half-open probe, SYN / SYN-ACK / RST, is not a handshake).
 */
bool zt_feat_handshake(const struct zt_flow_record *r, const struct zt_feat_flowstats *fs);

/* A record's own statistics (zt_flow_record.flowstats), NULL when it has none. */
static inline const struct zt_feat_flowstats *zt_feat_record_stats(const struct zt_flow_record *r)
{
	return r->has_flowstats ? &r->flowstats : NULL;
}

/*
 * The features of one flow record into x[ZT_F_COUNT]. fs and src may be
 * NULL. Pure, allocation-free; every value finite.
 */
void zt_features_compute(const struct zt_flow_record *r, const struct zt_feat_flowstats *fs,
			 const struct zt_feat_src *src, float *x);

/*
 * Per-source windows: a fixed table (allocated once) of sources, each with
 * counts over the current and the previous window (so a flow sees 1 to 2
 * windows of its source's history). Time comes from the records
 * (end_time_us), which keeps it deterministic; a record older than its
 * source's window counts in the current one. When the table is full the
 * least recently seen of a few candidate slots is reused.
 */
#define ZT_FEAT_WINDOW_US (5ULL * 1000000ULL)
#define ZT_FEAT_WINDOW_SOURCES 8192

struct zt_feat_window;

/* max_sources 0: ZT_FEAT_WINDOW_SOURCES; window_us 0: ZT_FEAT_WINDOW_US. 0 or -ENOMEM. */
int zt_feat_window_new(uint32_t max_sources, uint64_t window_us, struct zt_feat_window **out);
void zt_feat_window_free(struct zt_feat_window *w);
/* Counts the flow in its source's window and fills *src (this flow included). */
void zt_feat_window_add(struct zt_feat_window *w, const struct zt_flow_record *r,
			const struct zt_feat_flowstats *fs, struct zt_feat_src *src);

/*
 * The feature log (detection.feature_log): one CSV row per exported flow
 * record, for tools/train. Columns: time_us, src, dst, proto, dport,
 * direction (what labelling needs; never features), then the features in
 * schema order. A new or empty file gets the header; an existing file must
 * have the same header (another schema's rows are never mixed in).
 */
struct zt_featlog;

int zt_featlog_open(const char *path, struct zt_featlog **out, char *err, size_t errlen);
/*
 * Rows for the flow records among recs (other kinds are skipped), their
 * windows kept by the log itself; 0 or -errno.
 */
int zt_featlog_write(struct zt_featlog *fl, const struct zt_flow_record *recs, size_t n);
/*
 * One row with features the caller computed (x[ZT_F_COUNT]): for a daemon
 * that scores flows, so the log holds exactly what the model saw. Buffered:
 * zt_featlog_flush() ends a batch. 0 or -errno.
 */
int zt_featlog_write_row(struct zt_featlog *fl, const struct zt_flow_record *r, const float *x);
int zt_featlog_flush(struct zt_featlog *fl);
void zt_featlog_close(struct zt_featlog *fl);
/* The CSV header line (no newline) into buf; returns its length or -ENOSPC. */
int zt_featlog_header(char *buf, size_t n);

#endif
