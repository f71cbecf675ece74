/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A flow record as userspace keeps it until it is in PostgreSQL
 * (network_flows, deploy/sql/001_init.sql), and the UUIDv7 ids that make
 * writing it idempotent: the id is made once, when the record is created,
 * so a replay from the spool inserts nothing twice.
 *
 * Text fields are fixed-size, NUL-terminated; "" is SQL NULL for the
 * nullable ones. zt_flowrec_set_text() truncates at a UTF-8 character
 * boundary. Bytes that are not valid UTF-8 are kept as they are in the
 * record and the spool, and written to the database as the four
 * characters \xNN (backslash, 'x', two lower-case hex digits) each: the
 * database never refuses a batch over encoding, and nothing is silently
 * replaced. (A literal "\x41" in the input is indistinguishable afterwards;
 * such text is rare and the choice is documented.)
 */
#ifndef ZT_FLOWREC_H
#define ZT_FLOWREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_FR_PROTO_MAX 16 /* spool format 1 kept the protocol as text this long */
#define ZT_FR_THREAT_MAX 64
/* network_flows.threat_type is VARCHAR(50): characters, as the database counts them. */
#define ZT_FR_THREAT_CHARS 50

/*
 * protocol of a row that sums several protocols (an XDP drop aggregate
 * folded over "other sources"): 255, which IANA reserves and no packet
 * carries.
 */
#define ZT_PROTO_ANY 255
#define ZT_FR_VERDICT_MAX 16
#define ZT_FR_REASON_MAX 64
#define ZT_FR_POLICY_MAX 256
#define ZT_FR_WORKLOAD_MAX 256
#define ZT_FR_NODE_MAX 64
#define ZT_FR_IFACE_MAX 16
#define ZT_FR_DIR_MAX 16
/* An authenticated SPIFFE ID as flow records keep it (longer ones are cut). */
#define ZT_FR_SPIFFE_MAX 256

/* TCP flags seen (flags TEXT[]: one element per bit set, in this order). */
enum {
	ZT_TCP_FIN = 1 << 0,
	ZT_TCP_SYN = 1 << 1,
	ZT_TCP_RST = 1 << 2,
	ZT_TCP_PSH = 1 << 3,
	ZT_TCP_ACK = 1 << 4,
	ZT_TCP_URG = 1 << 5,
	ZT_TCP_ECE = 1 << 6,
	ZT_TCP_CWR = 1 << 7,
	ZT_TCP_ALL = 0xff,
};

/*
 * Which optional numbers hold a value (bits of .present). The ports are
 * NOT NULL columns: a port without its bit is written as 0 (the protocol
 * has no ports, or an aggregate row has none).
 */
enum {
	ZT_FR_HAS_SPORT = 1 << 0,
	ZT_FR_HAS_DPORT = 1 << 1,
	ZT_FR_HAS_ANOMALY = 1 << 2,
	ZT_FR_HAS_SID = 1 << 3,
	ZT_FR_HAS_DID = 1 << 4,
	ZT_FR_HAS_CREATED = 1 << 5, /* else created_at is the database's now() */
	ZT_FR_HAS_ALL = 0x3f,
};

enum zt_flow_kind {
	ZT_FLOW_KIND_FLOW = 0, /* 'flow' */
	ZT_FLOW_KIND_XDP_DROP_AGG = 1, /* 'xdp_drop_aggregate' */
};

/*
 * Per-flow statistics for the flow model (detect/features.h), from
 * conntrack (guard/activity.h, zt_ct_flowstats). Index 0 is the flow's original
 * direction (the opener's), 1 the reply direction. Sizes are IP bytes,
 * inter-arrival times microseconds between packets of one direction.
 */
struct zt_feat_flowstats {
	bool handshake; /* TCP: SYN, SYN-ACK and ACK seen */
	float size_min[2], size_mean[2], size_max[2], size_std[2];
	float iat_min_us[2], iat_mean_us[2], iat_max_us[2], iat_std_us[2];
	uint32_t syn[2], fin[2], rst[2], psh[2]; /* packets with the flag */
};

struct zt_flow_record {
	uint8_t id[16]; /* UUIDv7, big-endian as RFC 9562 writes it */
	uint8_t family; /* AF_INET or AF_INET6, both addresses */
	uint8_t kind; /* enum zt_flow_kind */
	bool blocked;
	uint8_t tcp_flags; /* ZT_TCP_* */
	uint8_t protocol; /* IANA protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...) */
	bool mtls; /* carried by the agents' mTLS tunnel (network_flows.mtls, migration 007) */
	uint8_t _pad[2];
	uint32_t present; /* ZT_FR_HAS_* */
	uint8_t source_ip[16]; /* network order; IPv4 in the first 4 bytes */
	uint8_t dest_ip[16];
	uint16_t source_port;
	uint16_t dest_port;
	float anomaly_score;
	int64_t bytes_sent;
	int64_t bytes_received;
	int64_t packet_count; /* written saturated at INT32_MAX (an INTEGER column) */
	int64_t packets_sent;
	int64_t packets_received;
	int64_t duration_ms; /* written saturated at INT32_MAX (an INTEGER column) */
	int64_t start_time_us; /* unix time, microseconds */
	int64_t end_time_us;
	int64_t created_at_us; /* with ZT_FR_HAS_CREATED */
	int64_t source_identity;
	int64_t dest_identity;
	int64_t aggregate_count; /* flows or drops this row stands for, >= 1 */
	char threat_type[ZT_FR_THREAT_MAX];
	char verdict[ZT_FR_VERDICT_MAX];
	char drop_reason[ZT_FR_REASON_MAX];
	char policy[ZT_FR_POLICY_MAX];
	char source_workload[ZT_FR_WORKLOAD_MAX];
	char dest_workload[ZT_FR_WORKLOAD_MAX];
	char node[ZT_FR_NODE_MAX]; /* not NULL */
	char interface[ZT_FR_IFACE_MAX];
	char direction[ZT_FR_DIR_MAX];
	/* The SPIFFE IDs both ends proved in the tunnel's handshake ("" unknown, NULL in SQL). */
	char source_spiffe_id[ZT_FR_SPIFFE_MAX];
	char dest_spiffe_id[ZT_FR_SPIFFE_MAX];
	/*
	 * The flow's statistics from its first packet to this record's end
	 * (not this record's interval alone), when has_flowstats: for the
	 * scorer and the feature log, which see a record before the spool.
	 * In memory only: neither the spool nor the database carries them.
	 */
	bool has_flowstats;
	struct zt_feat_flowstats flowstats;
};

/*
 * Zeroes *r and gives it a fresh UUIDv7 id and aggregate_count 1. Every
 * record must be made through this (or get an id from zt_uuidv7()).
 */
void zt_flowrec_init(struct zt_flow_record *r);

/*
 * Copies src into a fixed field of size n: at most n - 1 bytes, cut back to
 * the start of a UTF-8 sequence when the cut would split one. Returns the
 * number of source bytes that did not fit (0 = stored whole).
 */
size_t zt_flowrec_set_text(char *dst, size_t n, const char *src);

/* "flow" | "xdp_drop_aggregate" */
const char *zt_flow_kind_name(unsigned int kind);

/*
 * A protocol's name for people, as network_flows.protocol_name and
 * zt_protocol_name() in SQL give it: "tcp", "udp", "icmp", "icmpv6",
 * "sctp", "any" (ZT_PROTO_ANY), else the number (in buf).
 */
const char *zt_flowrec_proto_name(uint8_t proto, char *buf, size_t n);
/* The reverse, for text written by older versions: 0 and *proto, or -EINVAL. */
int zt_flowrec_proto_parse(const char *name, uint8_t *proto);

/* Whether a protocol has ports (TCP, UDP, SCTP): source_port and dest_port mean something. */
bool zt_proto_has_ports(uint8_t proto);

/*
 * UUIDv7 (RFC 9562 section 5.7): 48-bit unix milliseconds, version 7,
 * then 12 + 62 bits that are a counter seeded at random on each new
 * millisecond (method 3 of section 6.2, "monotonic random"): ids made by
 * one process are strictly increasing, also within one millisecond and
 * when the clock steps back (the last timestamp is kept). Thread-safe.
 */
void zt_uuidv7(uint8_t out[16]);
/* Same, with the time and 10 random bytes given: for tests. */
void zt_uuidv7_from(uint8_t out[16], uint64_t unix_ms, const uint8_t rnd[10]);
/* "0191e7a4-..." 36 characters; n >= 37. */
void zt_uuid_format(const uint8_t id[16], char *buf, size_t n);
/* Unix milliseconds of a UUIDv7. */
uint64_t zt_uuidv7_ms(const uint8_t id[16]);

#endif
