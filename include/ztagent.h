/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the eBPF programs (bpf/), the daemon (src/) and ztctl.
 *
 * Every struct here is a map key, a map value or a ring-buffer record. They
 * use fixed-width types and explicit padding so that the kernel, the daemon
 * and bpftool (through BTF) agree on one layout. Never copy one of these
 * definitions elsewhere: include this header.
 */
#ifndef ZTAGENT_H
#define ZTAGENT_H

#include <linux/types.h>

#define ZT_NAME "ztagent"

/* Default locations (overridable in the configuration). */
#define ZT_DEFAULT_BPFFS "/sys/fs/bpf/ztagent"
#define ZT_DEFAULT_API_SOCKET "/run/ztagent/api.sock"

/* Pinned map names (files under the bpffs directory). */
#define ZT_PIN_BLOCK_V4 "blocklist_v4"
#define ZT_PIN_BLOCK_V6 "blocklist_v6"
#define ZT_PIN_BLOCK_LPM_V4 "blocklist_lpm_v4"
#define ZT_PIN_BLOCK_LPM_V6 "blocklist_lpm_v6"
#define ZT_PIN_BLOCK_PREFIXES "blocklist_prefixes"
#define ZT_PIN_BLOCK_FILTER "blocklist_filter"
#define ZT_PIN_ALLOW_V4 "allowlist_v4"
#define ZT_PIN_ALLOW_V6 "allowlist_v6"
#define ZT_PIN_REASON_TEXT "block_notes"
#define ZT_PIN_XDP_STATS "xdp_stats"
#define ZT_PIN_EVENTS "events"
#define ZT_PIN_EVENT_STATS "event_stats"

/*
 * Blocklist layout.
 *
 * A kernel LPM trie slows down as it grows (hundreds of ns per lookup at 1M
 * entries) and freeing a big one stalls a CPU. So the blocklist is flat: one
 * hash map per family keyed by (prefix length, masked address), and the XDP
 * program does one hashed lookup per prefix length in use, longest first.
 * The set of lengths in use is published in ZT_PIN_BLOCK_PREFIXES. Only
 * when more than ZT_MAX_HASHED_LENS distinct lengths are in use do the
 * extra lengths go to an LPM trie (one more lookup, only when non-empty).
 *
 * The key layout (prefixlen first) is also a valid LPM trie key, so the same
 * struct serves the hash maps, the tries and the allowlist tries.
 */
#define ZT_MAX_HASHED_LENS 16

struct zt_ip4_key {
	__u32 prefixlen;
	__u8 addr[4]; /* network byte order, host bits zero */
};

struct zt_ip6_key {
	__u32 prefixlen;
	__u8 addr[16]; /* network byte order, host bits zero */
};

/* Why an address is blocked (zt_block_entry.reason). */
enum zt_block_reason {
	ZT_BR_UNSPEC = 0,
	ZT_BR_OPERATOR = 1, /* an operator's decision */
	ZT_BR_THREAT_INTEL = 2, /* listed by a threat-intel feed */
	ZT_BR_SCAN = 3, /* detector: port or host scan */
	ZT_BR_FLOOD = 4, /* detector: flood */
	ZT_BR_ANOMALY = 5, /* detector: anomaly model */
	ZT_BR_POLICY = 6, /* repeated policy violations */
	ZT_BR_MAX,
};

/* Who put it there (zt_block_entry.source). */
enum zt_block_source {
	ZT_BS_MANUAL = 0, /* ztctl / API */
	ZT_BS_FEED = 1, /* threat-intel feed; feed_id says which */
	ZT_BS_DETECTOR = 2, /* the agent's own detection */
	ZT_BS_MAX,
};

struct zt_block_entry {
	__u64 expires_ns; /* CLOCK_BOOTTIME ns (bpf_ktime_get_boot_ns); 0 = never */
	__u64 created_unix; /* wall-clock seconds when added, for operators */
	__u16 reason; /* enum zt_block_reason */
	__u16 source; /* enum zt_block_source */
	__u32 feed_id; /* with ZT_BS_FEED: the feed's id; else 0 */
	__u32 note_id; /* key in ZT_PIN_REASON_TEXT (free text); 0 = none */
	__u32 _pad;
};

/* Allowlist entries: presence is what counts; the value says who added it. */
struct zt_allow_entry {
	__u64 created_unix;
	__u32 note_id;
	__u32 _pad;
};

#define ZT_NOTE_LEN 64
struct zt_note {
	char text[ZT_NOTE_LEN]; /* NUL-terminated */
};

/*
 * Prefix lengths in use in the hashed blocklists, longest first. Written by
 * the daemon only after the entries exist (add before publish) and before
 * the last entry of a length goes (unpublish before delete).
 */
struct zt_prefix_set {
	__u32 v4_count; /* <= ZT_MAX_HASHED_LENS */
	__u32 v6_count; /* <= ZT_MAX_HASHED_LENS */
	__u8 v4_lens[ZT_MAX_HASHED_LENS];
	__u8 v6_lens[ZT_MAX_HASHED_LENS];
	__u32 v4_lpm_used; /* non-zero: blocklist_lpm_v4 has entries */
	__u32 v6_lpm_used;
	__u32 allow_v4_used; /* non-zero: allowlist_v4 has entries (else skip the lookup) */
	__u32 allow_v6_used;
	__u32 filter_v4_on; /* non-zero: consult blocklist_filter for IPv4 sources */
	__u32 filter_v6_on; /* ... for IPv6 sources */
};

/*
 * Prefilter (ZT_PIN_BLOCK_FILTER, an array of __u64 words) in three parts:
 * one bit per hash bucket of an IPv4 /24 (entries /17 and longer, which set
 * the /24s they cover), one bit per hash bucket of an IPv6 /32 (entries /32
 * and longer), and one exact bit per IPv4 /16 (entries from /8 to /16,
 * which set the /16s they cover). Each part rules out only its own lengths.
 * A bit is set while some blocklist entry could match an address there.
 * Most sources fall on clear bits and skip every blocklist lookup, so the
 * pass path stays near two array reads however long the list grows. The
 * daemon sets a bit before the entries that need it are written and clears
 * it after the last one is gone. Entries shorter than /8 (IPv4) or /32
 * (IPv6) would cover too much: while one exists, that family's filter is off.
 */
#define ZT_FILTER_V4_BITS 24
#define ZT_FILTER_V6_BITS 23
#define ZT_FILTER_V4_WORDS (1u << (ZT_FILTER_V4_BITS - 6))
#define ZT_FILTER_V6_WORDS (1u << (ZT_FILTER_V6_BITS - 6))
#define ZT_FILTER_V16_WORDS 1024u /* 65536 bits: one per IPv4 /16 */
#define ZT_FILTER_V6_BASE ZT_FILTER_V4_WORDS /* first word of each part */
#define ZT_FILTER_V16_BASE (ZT_FILTER_V4_WORDS + ZT_FILTER_V6_WORDS)
#define ZT_FILTER_WORDS (ZT_FILTER_V16_BASE + ZT_FILTER_V16_WORDS)
#define ZT_FILTER_V4_MIN_PLEN 8
#define ZT_FILTER_V4_SPLIT 17 /* IPv4 lengths from here on live in the /24 part */
#define ZT_FILTER_V6_MIN_PLEN 32

/* The /16 of an IPv4 address: its first two bytes. */
static inline __u32 zt_filter_v16_bucket(const __u8 *addr)
{
	return (__u32)addr[0] << 8 | addr[1];
}

/* Bucket of an IPv4 /24 given as its first three bytes packed a<<16 | b<<8 | c. */
static inline __u32 zt_filter_v4_hash(__u32 net24)
{
	return (net24 * 0x9E3779B1u) >> (32 - ZT_FILTER_V4_BITS);
}

/* Bucket of an IPv4 address: its /24, hashed. */
static inline __u32 zt_filter_v4_bucket(const __u8 *addr)
{
	return zt_filter_v4_hash((__u32)addr[0] << 16 | (__u32)addr[1] << 8 | addr[2]);
}

/* Bucket of an IPv6 address: a multiplicative hash of its first 32 bits. */
static inline __u32 zt_filter_v6_bucket(const __u8 *addr)
{
	__u32 w = (__u32)addr[0] << 24 | (__u32)addr[1] << 16 | (__u32)addr[2] << 8 | addr[3];

	return (w * 0x9E3779B1u) >> (32 - ZT_FILTER_V6_BITS);
}

/*
 * Verdict reasons. Every packet the XDP guard sees is counted under exactly
 * one (action, reason) pair in ZT_PIN_XDP_STATS, index
 * action * ZT_XR_MAX + reason.
 */
enum zt_xdp_reason {
	ZT_XR_OK = 0, /* nothing matched: passed */
	ZT_XR_NOT_IP, /* neither IPv4 nor IPv6 (ARP, LLDP, ...): passed */
	ZT_XR_ALLOWLIST, /* source on the allowlist */
	ZT_XR_BLOCKLIST, /* source on the blocklist */
	ZT_XR_BLOCK_EXPIRED, /* matched an expired block: passed */
	ZT_XR_BAD_ETH, /* truncated Ethernet header */
	ZT_XR_BAD_VLAN, /* truncated VLAN tag or more than two tags */
	ZT_XR_BAD_IP4, /* truncated IPv4 header, bad IHL/version/total length */
	ZT_XR_BAD_IP6, /* truncated IPv6 header or bad version */
	ZT_XR_BAD_IP6_EXT, /* truncated or too many IPv6 extension headers */
	ZT_XR_BAD_L4, /* truncated TCP/UDP/ICMP header (first fragment only) */
	ZT_XR_MAX,
};

enum zt_action {
	ZT_ACT_PASS = 0,
	ZT_ACT_DROP = 1,
	ZT_ACT_MAX,
};

#define ZT_XDP_STATS_SLOTS (ZT_ACT_MAX * ZT_XR_MAX)

struct zt_counter {
	__u64 packets;
	__u64 bytes;
};

/* Ring-buffer accounting, per CPU (ZT_PIN_EVENT_STATS, index enum zt_evstat). */
enum zt_evstat {
	ZT_EVS_EMITTED = 0, /* records written */
	ZT_EVS_RESERVE_FAILED, /* ring full: record lost (counted, never blocks) */
	ZT_EVS_SUPPRESSED, /* not emitted because of sampling or the rate limit */
	ZT_EVS_MAX,
};

/* Ring-buffer record types. */
enum zt_event_type {
	ZT_EV_XDP_DROP = 1,
	ZT_EV_MAX,
};

struct zt_event_hdr {
	__u16 type; /* enum zt_event_type */
	__u16 len; /* whole record, header included */
	__u32 cpu;
	__u64 ts_ns; /* CLOCK_BOOTTIME */
};

/* A sampled drop in the XDP guard. */
struct zt_ev_xdp_drop {
	struct zt_event_hdr hdr;
	__u32 ifindex;
	__u16 reason; /* enum zt_xdp_reason */
	__u8 family; /* 4 or 6; 0 when no IP header was parsed */
	__u8 proto; /* IPPROTO_* */
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport; /* host byte order; ICMP: type */
	__u16 dport; /* host byte order; ICMP: code */
	__u32 pkt_len;
	__u32 represents; /* drops since the previous sampled event on this CPU */
	__u16 block_reason; /* enum zt_block_reason, with ZT_XR_BLOCKLIST */
	__u16 block_source; /* enum zt_block_source */
	__u32 feed_id;
	__u32 _pad; /* explicit: the record is 80 bytes, zeroed before it is filled */
};

/* Knobs the XDP guard reads; fixed at load (const volatile rodata). */
#define ZT_DEFAULT_EVENT_SAMPLE 1 /* 1 = every drop is a candidate */
#define ZT_DEFAULT_EVENT_RATE 1000 /* events per second per CPU, at most */

#endif /* ZTAGENT_H */
