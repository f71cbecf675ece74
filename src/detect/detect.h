/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Threat detection: what every detector decides, and the plain inputs the
 * detectors read.
 *
 * The detectors (trw.h scans, flood.h floods, slowconn.h slow-connection
 * attacks, bruteforce.h brute force, exfil.h exfiltration) are pure
 * modules: no I/O, no clock, no logging, no global state. Time is what the
 * inputs say (ts_ns, CLOCK_BOOTTIME like the kernel's events), so a test
 * replays a trace and gets the same decisions. What feeds them (conntrack
 * sweeps and flow records today, the kernel's probe, rate and feature
 * events later) only converts its records into the structs below.
 *
 * No detector looks at a port number, a TTL, an address or a tool's
 * fingerprint to decide: only at outcomes, counts, sizes, times and
 * rates. Addresses and ports are carried through as the decision's
 * subject and evidence.
 */
#ifndef ZT_DETECT_H
#define ZT_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Threat types: also the `alerts.kind` and `incidents.threat_type` values,
 * and (below ZT_THREAT_CLASSES) the embedded model's classes
 * (src/detect/model.h), 0 being "benign".
 */
enum zt_threat {
	ZT_THREAT_NONE = 0, /* "benign" */
	ZT_THREAT_SCAN, /* "scan" */
	ZT_THREAT_FLOOD, /* "flood" */
	ZT_THREAT_BRUTEFORCE, /* "bruteforce" */
	ZT_THREAT_SLOWCONN, /* "slowconn" */
	ZT_THREAT_EXFILTRATION, /* "exfiltration" */
	ZT_THREAT_MODEL, /* "model": the embedded model, when it names no class of its own */
	ZT_THREAT_IOC, /* "ioc": a pod's connection to a threat-feed-listed destination (src/feeds) */
	ZT_THREAT_MAX,
	ZT_THREAT_EXFIL = ZT_THREAT_EXFILTRATION,
	ZT_THREAT_CLASSES = ZT_THREAT_MODEL, /* what a model file may name */
};

/* "benign", "scan", "flood", ...; "unknown" past the end. */
const char *zt_threat_name(unsigned int t);
/* The reverse ("benign" included); 0 or -EINVAL. */
int zt_threat_parse(const char *s, enum zt_threat *out);

/*
 * Who a decision is about. Most threats have an offending source (the
 * address to block); a flood seen per destination (random sources) names
 * the victim instead, and exfiltration names a local workload (its
 * address is the source of the data).
 */
enum zt_subject_role {
	ZT_ROLE_SOURCE = 0,
	ZT_ROLE_DESTINATION = 1,
};

#define ZT_EVIDENCE_MAX 512
#define ZT_SUBTYPE_MAX 24
#define ZT_WORKLOAD_MAX 256

struct zt_decision {
	uint8_t threat; /* enum zt_threat */
	uint8_t role; /* enum zt_subject_role: what addr is */
	uint8_t family; /* 4 or 6 */
	uint8_t proto; /* IPPROTO_*, 0 when several */
	uint16_t dport; /* the service attacked, 0 when several or none */
	uint16_t _pad;
	float score; /* [0, 1]: how sure the detector is */
	uint8_t addr[16]; /* the subject: the source (ZT_ROLE_SOURCE) or the victim */
	uint8_t peer[16]; /* the other side when there is one (the target), else zero */
	bool has_peer;
	uint64_t ts_ns; /* time of the observation that decided (CLOCK_BOOTTIME) */
	uint64_t first_ns; /* start of what the evidence covers */
	uint64_t window_ns; /* the window the statistic is over */
	double value; /* the statistic ... */
	double threshold; /* ... and the threshold it crossed */
	uint64_t flows, packets, bytes; /* what the evidence counted (0 = unknown) */
	char subtype[ZT_SUBTYPE_MAX]; /* "horizontal", "vertical", "syn", "slow-read", ... */
	char workload[ZT_WORKLOAD_MAX]; /* exfiltration: the workload; else "" */
	char evidence[ZT_EVIDENCE_MAX]; /* for people: counts, window, threshold */
	/*
	 * The newest start of a session or connection in the evidence (0 =
	 * unknown: ts_ns stands in). A source only returns after a block with
	 * sessions it started after the block ended; a lingering connection's
	 * late FIN or retransmission is no return.
	 */
	uint64_t latest_start_ns;
};

/* Clears *d and fills the fields every decision has. */
void zt_decision_init(struct zt_decision *d, enum zt_threat t, enum zt_subject_role role,
		      uint8_t family, const uint8_t *addr, uint64_t ts_ns);

/* Address bytes of a family (4 or 16). */
static inline size_t zt_fam_len(uint8_t family)
{
	return family == 6 ? 16 : 4;
}

/* "198.18.0.1" / "2001:db8::1" from family 4|6 and 16 bytes. */
const char *zt_addr_str(uint8_t family, const uint8_t *addr, char *buf, size_t n);

/* 64-bit hash of bytes with a seed (splitmix-finalised FNV-1a): for sketches and tables. */
uint64_t zt_detect_hash(const void *p, size_t n, uint64_t seed);

/*
 * z such that P(Z > z) = p for a standard normal Z (0 < p < 1): the
 * threshold in standard deviations that a target false-positive rate p
 * gives under a Gaussian baseline. Acklam's rational approximation
 * (relative error < 1.2e-9).
 */
double zt_normal_quantile_upper(double p);

/* ---- inputs ---- */

/*
 * TCP flags per direction, as conntrack ORs them (flowrec.h's ZT_TCP_*
 * bits: FIN 1, SYN 2, RST 4, PSH 8, ACK 16).
 */
#define ZT_DF_FIN 0x01
#define ZT_DF_SYN 0x02
#define ZT_DF_RST 0x04
#define ZT_DF_ACK 0x10

/* A TCP/UDP connection as conntrack sees it now (slowconn) or when it ended (bruteforce). */
struct zt_conn {
	uint8_t family; /* 4 | 6 */
	uint8_t proto;
	uint8_t state; /* enum zt_ct_state: 0 new, 1 established, 2 closing, 3 closed */
	uint8_t flags[2]; /* TCP flags seen: [0] client -> server (original), [1] reply */
	bool has_payload; /* payload[] is exact (kernel features); else estimated from bytes */
	uint16_t sport, dport;
	uint8_t src[16], dst[16]; /* src: the side that opened it */
	uint64_t first_ns, last_ns; /* CLOCK_BOOTTIME */
	uint64_t packets[2], bytes[2]; /* IP bytes, per direction */
	uint64_t payload[2]; /* with has_payload */
	/*
	 * TCP segments with SYN per direction (zt_ct_val.syn): a SYN or SYN-ACK
	 * sent again carries its options again. 0 where unknown: one is assumed
	 * where flags[] says SYN.
	 */
	uint16_t syns[2];
	uint8_t zero_win; /* TCP: the opener's pure ACKs with a zero window (zt_ct_val.zero_win) */
	/*
	 * TCP: server responses that refused a login (zt_ct_val.refused), in
	 * a session where no response after the last one served what was
	 * asked (0 otherwise: a challenge answered, a login that got through).
	 */
	uint8_t refused;
	/* TCP: a response served what was asked (ZT_CT_RESP_SERVED: HTTP 2xx, DNS, FTP 230, +PONG). */
	bool served;
	/* TCP: the last response asked for a password, none was tried (ZT_CT_RESP_CHALLENGED). */
	bool challenged;
	/*
	 * TCP: logins an SSH server refused in a session that ended on its
	 * run of failures, read from the sizes of its answers
	 * (zt_ssh_auth_failed) and not counted as they were; 0 for anything else.
	 */
	uint8_t ssh_fails;
	/* ... and those that were (zt_ssh_auth_live, counted by zt_bf_refused) */
	uint8_t ssh_live;
	/* TCP: logins refused in the clear counted as they were (zt_bf_refused), not in refused */
	uint8_t refused_live;
	/*
	 * TCP: the server never acknowledged the opener's first payload
	 * (zt_ct_val.req_ack): the connection never reached a socket of its,
	 * an overloaded server's full accept queue. false where unknown.
	 */
	bool req_unacked;
	/* TCP: the opener's first payload was a whole HTTP GET or HEAD (ZT_CT_REQ_WHOLE). */
	bool req_whole;
	/* TCP: since when it holds the server (CLOCK_BOOTTIME, zt_ct_val.held_ms); 0 unknown */
	uint64_t held_ns;
};

/*
 * Payload bytes of one direction: exact when the kernel counted them,
 * else the IP bytes less a header per packet (IP header plus 32 bytes of
 * TCP with timestamps, 8 more for each SYN's options). An estimate within
 * about 12 bytes a packet; never below zero.
 */
uint64_t zt_conn_payload(const struct zt_conn *c, int dir);

#endif
