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
/* tc_endpoint (micro-segmentation on the endpoints' host-side veths) */
#define ZT_PIN_ENDPOINTS "endpoints"
#define ZT_PIN_IPCACHE_V4 "ipcache_v4"
#define ZT_PIN_IPCACHE_V6 "ipcache_v6"
#define ZT_PIN_POLICY "policy"
#define ZT_PIN_POL_ISOLATION "pol_isolation"
#define ZT_PIN_POL_STATE "pol_state"
#define ZT_PIN_CONNTRACK "conntrack"
#define ZT_PIN_TC_STATS "tc_stats"
/* Threat signals and first response (see "Activity" below) */
#define ZT_PIN_GUARD_CFG "guard_cfg"
#define ZT_PIN_SRC_SKETCH "src_sketch"
#define ZT_PIN_DST_SKETCH "dst_sketch"
#define ZT_PIN_DST_LOCAL "dst_local"
#define ZT_PIN_RL_SRC "ratelimit_src"
#define ZT_PIN_SYN_VERIFIED "syn_verified"
#define ZT_PIN_SYN_PROTECT "syn_protect"
#define ZT_PIN_WATCH "watch"
#define ZT_PIN_EP_STATS "ep_stats"
#define ZT_PIN_ACT_STATS "act_stats"
#define ZT_PIN_SCAN_CELLS "scan_cells"
#define ZT_PIN_SCAN_EXEMPT "scan_exempt"

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
	/*
	 * The entry's own prefix length, as in its key. A trie lookup returns
	 * the value only, and the XDP program needs the length to look past an
	 * expired match for a shorter one. 0 for /0 and in entries written
	 * before the field existed (the daemon fills those in at start).
	 */
	__u32 prefixlen;
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
	/*
	 * Bumped by each publish, which follows every change that can block
	 * more (entries added or changed, an allowlist entry removed): a flow
	 * that tc_endpoint checked under this generation needs no new look
	 * (zt_ct_val.bl_gen).
	 */
	__u32 gen;
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
	/*
	 * In-kernel first response (see "Activity"). RL_SRC_*: the source went
	 * over its own limit of that kind (its exact bucket is empty);
	 * RL_DST_*: the destination's bucket of that kind is empty.
	 */
	ZT_XR_RL_SRC_ALL, /* per-source limit, all packets */
	ZT_XR_RL_SRC_SYN, /* per-source limit, TCP SYN */
	ZT_XR_RL_SRC_UDP, /* per-source limit, UDP */
	ZT_XR_RL_SRC_ICMP, /* per-source limit, ICMP and ICMPv6 */
	ZT_XR_RL_DST_ALL, /* per-destination limit, all packets */
	ZT_XR_RL_DST_SYN, /* per-destination SYN limit, no challenge possible */
	ZT_XR_RL_DST_UDP,
	ZT_XR_RL_DST_ICMP,
	ZT_XR_SYN_VERIFIED, /* SYN to a protected destination from a verified client: passed */
	ZT_XR_SYN_CHALLENGE, /* SYN to a protected destination from an unknown source: answered (TX) */
	ZT_XR_SYN_ANSWER, /* the client's RST answering a challenge: source verified, RST dropped */
	ZT_XR_SCAN_BRAKE, /* a first contact of a source whose contacts keep failing ("Scan brake") */
	ZT_XR_MAX,
};

enum zt_action {
	ZT_ACT_PASS = 0,
	ZT_ACT_DROP = 1,
	ZT_ACT_TX =
		2, /* answered from XDP (the SYN challenge): neither passed nor silently dropped */
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
	ZT_EV_POLICY = 2, /* struct zt_ev_policy: a policy verdict on a new flow */
	ZT_EV_FLOW_END = 3, /* struct zt_ev_flow_end: reserved for flow records */
	ZT_EV_SRC_ACTIVITY = 4, /* struct zt_ev_activity: a source crossed a signal threshold */
	ZT_EV_DST_ACTIVITY = 5, /* struct zt_ev_activity: a destination did */
	ZT_EV_PROBE = 6, /* struct zt_ev_probe: first contact of a source with (dst, port, proto) */
	ZT_EV_PROBE_RESULT = 7, /* struct zt_ev_probe_result: the answer a probe got */
	ZT_EV_IOC = 8, /* struct zt_ev_ioc: a pod's new flow to a feed-listed destination */
	ZT_EV_CAPTURE = 9, /* struct zt_ev_capture: a packet from or to a watched address */
	ZT_EV_SESSION = 10, /* struct zt_ev_session: a TCP session an endpoint's packet closed */
	ZT_EV_HOST_SESSION = 11, /* struct zt_ev_host_session: a session of the node's own closed */
	ZT_EV_REFUSED =
		12, /* struct zt_ev_refused: a server refused logins, its session still open */
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
	/*
	 * The frame's outer VLAN tag, for the rebuilt frame: the one the kernel
	 * held beside it (tc_guard: skb->vlan_tci, whole), else the first in the
	 * frame (its id; 802.1Q assumed). 0: none.
	 */
	__u16 vlan_proto; /* network order */
	__u16 vlan_tci;
};

/*
 * ---- Micro-segmentation (tc_endpoint) ----
 *
 * The TC program runs on the host side of every endpoint's veth, twice:
 *   - tc_from_pod on the veth's ingress hook: packets the pod sends (the
 *     pod's egress direction);
 *   - tc_to_pod on the veth's egress hook: packets sent to the pod (the
 *     pod's ingress direction).
 * Direction below is always the local endpoint's: ZT_DIR_INGRESS means
 * "towards the endpoint".
 *
 * Identities. A security identity is a __u32:
 *   0                       ZT_ID_ANY, only in policy keys: every peer
 *   1                       the host (the node's own addresses)
 *   2, 3                    the world (IPv4, IPv6): no other ipcache entry
 *   4                       a pending endpoint: registered by the CNI plugin,
 *                           its labels not known yet; no selector matches it
 *   256 .. 2^24-1           label sets of endpoints (namespace, labels,
 *                           namespace labels)
 *   2^24 .. 2^31-1          CIDR identities: one per prefix that some
 *                           ipBlock (cidr or except) names
 *   2^31 ..                 port classes: (endpoint identity, CIDR identity)
 *                           pairs, only for egress named ports of ipBlock
 *                           rules (see zt_ipcache_val.port_class)
 *
 * The ipcache maps an address to its identity by longest prefix: endpoint
 * addresses (/32, /128), host addresses, every ipBlock prefix, and 0/0 for
 * the world. An ipBlock {cidr C, except E...} selects the CIDR identities
 * whose prefix lies inside C and inside no E (and the world identity when C
 * is 0/0): the longest prefix holding an address is inside C exactly when
 * the address is.
 *
 * ipBlock matches endpoint addresses too (Kubernetes makes no exception for
 * pods). An endpoint address has its label identity, and its ipcache entry
 * also carries cidr_id: the CIDR identity the address would have without
 * the endpoint (the longest ipBlock prefix holding it, or the world). A new
 * flow to or from an endpoint looks the policy up under both identities;
 * deny of either wins, then allow (Kubernetes unions the allows).
 *
 * Policy generations. Everything that changes with policy (ipcache, policy,
 * isolation) has a slot (0 or 1) in its key. The daemon writes a complete
 * new generation into the slot not in use, then publishes it with a single
 * 32-bit store of pol_state.gen (slot = gen & 1). A packet reads gen once,
 * so it sees the old policy or the new one, never a mix. The slot now
 * unused is cleared only after in-flight packets are done (the next change).
 */
#define ZT_ID_ANY 0u
#define ZT_ID_HOST 1u
#define ZT_ID_WORLD_V4 2u
#define ZT_ID_WORLD_V6 3u
#define ZT_ID_PENDING 4u
#define ZT_ID_FIRST_LABELS 256u
#define ZT_ID_FIRST_CIDR (1u << 24)
#define ZT_ID_FIRST_PORT_CLASS (1u << 31)

enum zt_dir {
	ZT_DIR_INGRESS = 0, /* towards the endpoint (tc_to_pod) */
	ZT_DIR_EGRESS = 1, /* from the endpoint (tc_from_pod) */
	ZT_DIR_MAX,
};

/* ZT_PIN_ENDPOINTS: hash, key __u32 ifindex of the host-side veth. */
struct zt_endpoint_info {
	__u32 ep_id; /* the daemon's endpoint number, >= 1 */
	__u32 identity; /* label identity */
	__u32 flags; /* reserved, 0 */
	__u32 _pad;
};

/* ZT_PIN_IPCACHE_V4 / _V6: LPM tries; prefixlen = 8 (the slot) + address prefix. */
struct zt_ipcache_key4 {
	__u32 prefixlen;
	__u8 slot;
	__u8 addr[4];
	__u8 _pad[3]; /* zero; beyond any prefix */
};

struct zt_ipcache_key6 {
	__u32 prefixlen;
	__u8 slot;
	__u8 addr[16];
	__u8 _pad[3];
};

struct zt_ipcache_val {
	__u32 identity;
	__u32 ep_id; /* the endpoint owning the address; 0 when none */
	/*
	 * Endpoint addresses only: the CIDR identity (or world) the address
	 * also falls in, for ipBlock peers. 0 when no policy entry names it,
	 * so a flow pays the extra policy lookups only where they can matter.
	 */
	__u32 cidr_id;
	/*
	 * Endpoint addresses only: a third peer identity for egress rules that
	 * combine an ipBlock with a named port (the port is the destination
	 * endpoint's, the block the address's: neither identity alone says
	 * both). 0 when no such rule selects the address.
	 */
	__u32 port_class;
};

/*
 * ZT_PIN_POLICY: an LPM trie over (slot, dir, local identity, peer identity,
 * protocol, port), in that byte order, identities and port big-endian
 * (zt_pol_key_fill() is the one place that lays the key out). Full length
 * ZT_POL_PLEN_FULL; a prefix of ZT_POL_PLEN_PROTO matches every port of one
 * protocol, ZT_POL_PLEN_ANY_PROTO every protocol; port ranges become aligned
 * power-of-two blocks.
 *
 * A packet makes two lookups: with its peer identity and with ZT_ID_ANY,
 * plus one with the peer's cidr_id and one with its port_class when its
 * ipcache entry has them (an endpoint inside some ipBlock). Within one peer
 * the longest match wins, so the compiler stores in every entry the
 * combined verdict of every entry of that peer containing it (deny over
 * allow). Across the lookups deny wins, then allow (with the same verdict
 * the lowest non-zero rule id is reported); with no verdict, pol_isolation
 * says whether the endpoint is isolated in that direction (deny) or not
 * (allow).
 *
 * Each entry carries two verdicts: with enforce-mode policies only, and
 * with audit-mode policies enforced too (audit_*). The first decides; when
 * it allows and the second (completed the same way with audit_isolated)
 * denies, the flow passes as audit.
 */
#define ZT_POL_PLEN_ANY_PROTO (8 + 8 + 32 + 32)
#define ZT_POL_PLEN_PROTO (ZT_POL_PLEN_ANY_PROTO + 8)
#define ZT_POL_PLEN_FULL (ZT_POL_PLEN_PROTO + 16)

struct zt_pol_key {
	__u32 prefixlen;
	__u8 data[13]; /* slot, dir, local_id (BE), peer_id (BE), proto, port (BE) */
	__u8 _pad[3];
};

static inline void zt_pol_key_fill(struct zt_pol_key *k, __u32 prefixlen, __u8 slot, __u8 dir,
				   __u32 local_id, __u32 peer_id, __u8 proto, __u16 port)
{
	k->prefixlen = prefixlen;
	k->data[0] = slot;
	k->data[1] = dir;
	k->data[2] = (__u8)(local_id >> 24);
	k->data[3] = (__u8)(local_id >> 16);
	k->data[4] = (__u8)(local_id >> 8);
	k->data[5] = (__u8)local_id;
	k->data[6] = (__u8)(peer_id >> 24);
	k->data[7] = (__u8)(peer_id >> 16);
	k->data[8] = (__u8)(peer_id >> 8);
	k->data[9] = (__u8)peer_id;
	k->data[10] = proto;
	k->data[11] = (__u8)(port >> 8);
	k->data[12] = (__u8)port;
	k->_pad[0] = k->_pad[1] = k->_pad[2] = 0;
}

/* Verdicts in policy entries: none (no rule of that kind matched), allow, deny. */
enum zt_verdict {
	ZT_VERDICT_NONE = 0,
	ZT_VERDICT_ALLOW = 1,
	ZT_VERDICT_DENY = 2,
};

#define ZT_POL_F_REQUIRE_TLS 0x1
#define ZT_POL_F_REQUIRE_MTLS 0x2

struct zt_pol_val {
	__u32 rule_id; /* rule that gave .verdict (0: none) */
	__u32 audit_rule_id; /* rule that gave .audit_verdict */
	__u8 verdict; /* enum zt_verdict, enforce-mode policies */
	__u8 audit_verdict; /* enum zt_verdict, every policy */
	__u8 flags; /* ZT_POL_F_*, of the allow rules behind .verdict */
	__u8 _pad;
};

/* ZT_PIN_POL_ISOLATION: hash, key {slot, dir, identity}. Absent = not isolated, no audit. */
struct zt_iso_key {
	__u8 slot;
	__u8 dir;
	__u8 _pad[2];
	__u32 identity;
};

struct zt_iso_val {
	__u8 isolated; /* enforce: deny what no rule allows */
	__u8 audit_isolated; /* with audit-mode policies too */
	__u8 by_default; /* isolated only by policy.default: deny */
	__u8 _pad;
	__u32 rule_id; /* the (first) policy isolating it (a rule id with rule index ~0) or 0 */
	__u32 audit_rule_id;
	__u32 _pad2;
};

/* ZT_PIN_POL_STATE: array of one, mmapable; the daemon stores gen atomically. */
struct zt_pol_state {
	__u32 gen; /* policy generation; slot = gen & 1; 0 = no policy loaded yet */
	__u32 _pad;
};

/*
 * Rule ids: the daemon numbers (policy, rule) pairs per generation from 1.
 * Events carry the generation, so the daemon can name the rule even after
 * the next change. Reserved ids for what decided without a rule:
 */
#define ZT_RULE_NONE 0u /* no rule (see enum zt_reason) */

/* Why a flow got its verdict (zt_ev_policy.reason, zt_ct_val.reason). */
enum zt_reason {
	ZT_REASON_NOT_ISOLATED = 0, /* nothing isolates this side: allowed */
	ZT_REASON_RULE_ALLOW, /* a rule allowed */
	ZT_REASON_RULE_DENY, /* a deny rule denied */
	ZT_REASON_NO_RULE, /* isolated by a policy; no rule allowed */
	ZT_REASON_DEFAULT_DENY, /* isolated by policy.default: deny; no rule allowed */
	ZT_REASON_NO_ENDPOINT, /* the interface is not a registered endpoint: passed */
	ZT_REASON_NO_POLICY, /* no policy generation loaded yet (gen 0): default applies */
	ZT_REASON_IOC, /* the destination is on a threat-intel feed whose action is block */
	ZT_REASON_TLS, /* requireTLS: the server did not negotiate TLS 1.3 (bpf/lib/tls.h) */
	ZT_REASON_BLOCKED, /* an address of the flow is on the blocklist (tc_endpoint) */
	ZT_REASON_MAX,
};

/*
 * ZT_PIN_CONNTRACK: LRU hash. The key is the flow in its original direction
 * (the first packet's), seen on one endpoint interface. A reply looks up
 * the key with addresses and ports swapped.
 */
struct zt_ct_key {
	__u32 ifindex;
	__u8 family; /* 4 or 6 */
	__u8 proto;
	__u16 _pad;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes, rest zero */
	__u8 daddr[16];
	/*
	 * Host byte order. ICMP/ICMPv6 echo request and reply: both the
	 * identifier, so that the swapped key of a reply is the request's
	 * key. Other ICMP, later fragments and protocols without ports: 0.
	 */
	__u16 sport;
	__u16 dport;
};

/*
 * TCP: NEW (SYN sent) -> SYN_RECV (the SYN-ACK came back) -> ESTABLISHED
 * (the opener's ACK after the SYN-ACK: the handshake completed). NEW and
 * SYN_RECV are half-open and time out after ZT_CT_TCP_SYN_TIMEOUT_NS, so
 * a spoofed-source SYN flood, whose clients never send that ACK, cannot
 * hold entries for the established timeout. A flow picked up mid-stream
 * (its first packet was not a SYN) is established by any answer.
 */
enum zt_ct_state {
	ZT_CT_NEW = 0, /* TCP: SYN (or a mid-stream packet), no answer yet; others: one way seen */
	ZT_CT_ESTABLISHED, /* TCP: handshake completed (see above); others: a reply seen */
	ZT_CT_CLOSING, /* TCP: FIN seen */
	ZT_CT_CLOSED, /* TCP: RST, or FIN both ways */
	ZT_CT_SYN_RECV, /* TCP: SYN-ACK seen, the opener's ACK not yet (half-open) */
};

/*
 * One direction of a flow ([0] original, [1] reply): what every packet of
 * that direction writes, one cache line (64 bytes) of its own. Flow
 * features are kept online so the daemon derives min / mean / max /
 * standard deviation from one read: mean = sum / n, var = sum_sq / n -
 * mean^2 (n = packets for sizes, packets - 1 for inter-arrival times).
 */
struct zt_ct_dir {
	__u64 packets;
	__u64 bytes; /* IP bytes: IP header and payload, no link-layer header */
	__u64 last_ns; /* last packet (CLOCK_BOOTTIME); 0: none yet */
	__u64 size_sq; /* sum of squared IP sizes (sizes sum up in bytes) */
	__u64 iat_sum; /* sum of inter-arrival times, ZT_CT_IAT units */
	__u64 iat_sq; /* sum of their squares; saturates at 2^64-1 */
	__u32 iat_min; /* ZT_CT_IAT units; ZT_CT_IAT_UNSET until the direction's 2nd packet */
	__u32 iat_max; /* ZT_CT_IAT units; one gap is capped at 2^32-1 units (73 min) */
	__u16 size_min; /* IP bytes; ZT_CT_SIZE_UNSET before the direction's 1st packet */
	__u16 size_max;
	__u32 psh; /* TCP segments with PSH */
};

/*
 * SSH authentication failures, read from the sizes of the server's
 * encrypted messages (its words are hidden from the first key exchange on).
 * A server whose first payload begins "SSH-" is an SSH server; it answers
 * every USERAUTH_REQUEST that fails with a USERAUTH_FAILURE that lists the
 * same methods, so the same number of bytes each time, and a client that
 * guesses passwords on one connection (hydra, medusa, a bot) gets a run of
 * segments of one length, one per guess, until it or the server gives up
 * (MaxAuthTries, dropbear's 10). Zeek reads SSH logins by the same sizes.
 *
 * Counted: the server's payload segments after its first (segs), the
 * current run of segments of one length of at most ZT_SSH_SEG_MAX bytes
 * (run, run_len, starting at segment run_at), and the last run of at least
 * two that started within the first ZT_SSH_AUTH_BY segments (fails), with
 * the segments that came after it (after). The key exchange takes 2-4
 * segments of different lengths, then the service accept and the first
 * failure (the "none" method clients try first), so the run starts at the
 * 4th-6th: a pre-auth banner adds one. A session that ended on such a run
 * (at most ZT_SSH_AFTER_MAX segments after it: a disconnect message) never
 * got in: every segment of the run but the first (the "none" request's
 * answer) is a login refused (zt_ssh_auth_failed).
 * A session that got in goes on with messages of other lengths (the
 * success, host keys, a channel), and the echo of what a user types after
 * that starts far later than the first segments. A client that offers
 * several public keys before one is accepted gets a run too, then gets in.
 *
 * Counted as they come: a session ends long after its first guesses (10 a
 * connection with dropbear, 6 with OpenSSH), and a guesser with several
 * connections at once would make all of theirs before the first ended.
 * What the client asked is in the server's segments too: the acknowledgment
 * each carries moved by the bytes the client sent since the last (req),
 * the request the answer answers. The run's first answer answers "none"
 * (base: its request's bytes); a password differs from it by the method's
 * name and the password (9 bytes and the password's length, RFC 4252 8), a
 * public key by at least 76 (an Ed25519 key, the smallest: algorithm name
 * and key blob, RFC 4252 7), so a run's answer to a request less than
 * ZT_SSH_KEY_DELTA bytes larger than base refused a guess, at once
 * (zt_ssh_auth_seg returns 1; the caller reports it and adds it to live),
 * where a key refused before the client gets in is left to the session's
 * end, as before. Padding to the cipher's block (8 or 16 bytes) and the
 * MAC are alike in both: keys are at least 64 bytes above base on the
 * wire, passwords of up to ~40 characters under it.
 */
struct zt_ssh_auth {
	__u16 run_len; /* payload bytes of each segment of the current run */
	__u8 state; /* 0: no payload from the server yet; ZT_SSH_YES or ZT_SSH_NO */
	__u8 segs; /* the server's payload segments after its first, saturating */
	__u8 run; /* segments of the current run */
	__u8 run_at; /* segs at its first segment */
	__u8 fails; /* the last run of >= 2 that started by ZT_SSH_AUTH_BY (0: none) */
	__u8 after; /* the server's segments after that run, saturating */
	__u32 ack; /* the acknowledgment of the server's last payload segment (host order) */
	__u16 base; /* the request the current run's first answer answered, bytes (saturating) */
	__u8 live; /* of the logins fails counts, those reported as they were refused */
	/*
	 * Not the SSH server's: of the logins the entry's refused counts (in
	 * the clear, lib/refusal.h), those already reported as they were
	 * (ZT_EV_REFUSED, from the ZT_REFUSED_LIVE_FROM-th on).
	 */
	__u8 clear_live;
};

/*
 * A session's run of logins refused in the clear (no response that served
 * between them) is reported as it grows from this many on (ZT_EV_REFUSED),
 * not only when the session ends: a guesser that keeps its connection
 * (HTTP keep-alive, several PASS to one FTP server) is counted as it
 * guesses. Below it a run may be a login's own challenges (HTTP Digest:
 * one 401; NTLM: two, then the 200).
 */
#define ZT_REFUSED_LIVE_FROM 3

#define ZT_SSH_YES 1
#define ZT_SSH_NO 2
#define ZT_SSH_SEG_MAX 512
#define ZT_SSH_AUTH_BY 10
#define ZT_SSH_AFTER_MAX 2
#define ZT_SSH_KEY_DELTA 64

/* 1 when payload (len bytes, from p) begins an SSH identification string. */
static inline int zt_ssh_banner(const __u8 *p, __u32 len)
{
	return len >= 4 && p[0] == 'S' && p[1] == 'S' && p[2] == 'H' && p[3] == '-';
}

/*
 * A payload segment of len bytes from the server, acknowledging ack (host
 * order); banner: whether it began "SSH-" (read only for its first). 1 when
 * it refused a guess (above): the caller reports it, then counts it in live.
 */
static inline int zt_ssh_auth_seg(struct zt_ssh_auth *a, __u32 len, int banner, __u32 ack)
{
	__u32 req;

	if (!a->state) {
		a->state = banner ? ZT_SSH_YES : ZT_SSH_NO;
		a->ack = ack;
		return 0;
	}
	if (a->state != ZT_SSH_YES)
		return 0;
	req = ack - a->ack;
	a->ack = ack;
	if (a->segs < 255)
		a->segs++;
	if (len <= ZT_SSH_SEG_MAX && len == a->run_len && a->run) {
		if (a->run < 255)
			a->run++;
	} else {
		a->run_len = len <= ZT_SSH_SEG_MAX ? (__u16)len : 0;
		a->run = len <= ZT_SSH_SEG_MAX ? 1 : 0;
		a->run_at = a->segs;
		a->base = req < 0xffff ? (__u16)req : 0xffff;
	}
	if (a->run >= 2 && a->run_at <= ZT_SSH_AUTH_BY) {
		/* A new run is the one counted now: none of it went out yet. */
		if (a->run == 2)
			a->live = 0;
		a->fails = a->run;
		a->after = 0;
		return req && req < (__u32)a->base + ZT_SSH_KEY_DELTA;
	}
	if (a->fails && a->after < 255)
		a->after++;
	return 0;
}

/*
 * The logins an SSH session that has ended had refused: 0 unless it ended
 * on its run. The run's first segment answers the "none" request by which
 * clients learn the methods (RFC 4252 5.2), so a run of n is n - 1 logins
 * refused; a guess the server answered by closing (its last try) is not
 * counted either: never more than were tried.
 */
static inline __u8 zt_ssh_auth_failed(const struct zt_ssh_auth *a)
{
	return a->state == ZT_SSH_YES && a->fails >= 2 && a->after <= ZT_SSH_AFTER_MAX ?
		       (__u8)(a->fails - 1 > a->live ? a->fails - 1 - a->live : 0) :
		       0;
}

/*
 * Of the logins an SSH session that has ended had refused, those reported
 * as they were (ZT_EV_REFUSED), which zt_ssh_auth_failed leaves out: 0
 * unless it ended on its run.
 */
static inline __u8 zt_ssh_auth_live(const struct zt_ssh_auth *a)
{
	return a->state == ZT_SSH_YES && a->fails >= 2 && a->after <= ZT_SSH_AFTER_MAX ? a->live :
											 0;
}

/*
 * A conntrack entry, laid out by who writes it. The kernel keeps a hash
 * element as 48 bytes of its own, the key (44 bytes, taking 48) and the
 * value, in one preallocated area: with this 224-byte value an element is
 * 320 bytes, five whole cache lines. The key's second line holds the head
 * below, which packets read and rarely write (verdict, state, the flags
 * seen); each direction writes its own line (dir[]); the last line holds
 * what only some packets write. So the two CPUs that often carry the two
 * directions of one flow do not take each other's lines at every packet,
 * and a lookup does not miss on the key. The last packet of the flow is
 * the later of the directions' last_ns (zt_ct_last_ns).
 */
struct zt_ct_val {
	/* Head: with the key's last 32 bytes, one line. */
	__u32 gen; /* policy generation the verdict was taken with */
	__u32 rule_id; /* with .reason: as in struct zt_ev_policy */
	__u32 local_id;
	__u32 peer_id;
	__u32 ep_id;
	__u32 peer_ep_id;
	__u8 dir; /* enum zt_dir of the original direction */
	__u8 verdict; /* enum zt_verdict: ALLOW (incl. audit) or DENY */
	__u8 audit; /* allowed, but an audit-mode policy would deny */
	__u8 reason; /* enum zt_reason */
	__u8 state; /* enum zt_ct_state */
	__u8 mtls; /* ZT_CT_MTLS_*: the flow must go through the local agent (bpf/lib/mtls.h) */
	__u8 flags_seen[2]; /* TCP flags ORed, per direction (written when new) */
	/* Plain stores but for packets and bytes (atomic): two CPUs racing on
	 * one direction may lose a feature update, never a packet or byte. */
	struct zt_ct_dir d[2];
	/* Tail: written by some packets only. */
	__u64 first_ns; /* CLOCK_BOOTTIME */
	__u32 ack_only[2]; /* TCP segments with ACK alone (no SYN/FIN/RST/PSH) and no payload */
	__u16 syn[2]; /* TCP segments with SYN (saturating, as fin and rst) */
	__u16 fin[2];
	__u16 rst[2];
	__u8 hs_done; /* TCP: the handshake completed once (stays 1 after the close) */
	/*
	 * ICMP/ICMPv6: the type of the packet that made the entry, + 1 (0: an
	 * entry of an agent from before it was kept). An echo or timestamp
	 * request is a probe; an error (unreachable, time exceeded) or a reply
	 * answers something else, and is none.
	 */
	__u8 icmp_type1;
	/*
	 * TCP: the opener's pure ACKs that advertised a zero window
	 * (saturating): it reads nothing of what it asked for, a slow read's
	 * way of holding the server (src/detect/slowconn.c). 0 also in an
	 * entry of an agent from before it was counted (this byte was zero
	 * padding).
	 */
	__u8 zero_win;
	/*
	 * TCP: the server's responses that began with an authentication
	 * refusal since the last one that served what was asked (saturating;
	 * bpf/lib/refusal.h; see resp): HTTP 401 or 407, FTP 530,
	 * SMTP 535, POP3 -ERR, Redis -WRONGPASS, PostgreSQL's FATAL 28xxx,
	 * MySQL's ERR 1045/1698, IMAP's NO to a login. Each is a login tried and
	 * refused, however large the page that says so
	 * (src/detect/bruteforce.c). 0 also in an entry of an agent from
	 * before it was counted (zero padding).
	 */
	__u8 refused;
	/*
	 * The zt_prefix_set.gen both addresses were last checked against the
	 * blocklist with (0: an entry of an agent from before it was kept).
	 */
	__u32 bl_gen;
	/*
	 * TCP, ZT_CT_RESP_*: DUE while the opener has sent payload that the
	 * server has not answered yet (the server's next payload starts a
	 * response, whose first bytes say whether it refuses a login);
	 * REFUSED from a refusal until a response that served what was asked
	 * (below): a challenge answered (HTTP Digest, NTLM: 401, then 200)
	 * ends without it, a guess followed by any other command (a PING, a
	 * QUIT) does not. SERVED
	 * once a response was an HTTP success (2xx), a DNS answer, a login
	 * accepted (FTP 230, SMTP 235) or a +PONG before any refusal, kept for the session: the
	 * server did what was asked, so the session is an exchange however
	 * short (a health check, a tiny page), not a login that failed.
	 * CHALLENGED while the last response read asked for a password
	 * (PostgreSQL's AuthenticationRequest): if the session ends so, the
	 * client tried none (pg_isready).
	 */
	__u8 resp;
	/*
	 * 1 once tc_endpoint has sent the session's end as ZT_EV_SESSION: the
	 * daemon's conntrack sweep leaves the brute-force detector that one.
	 */
	__u8 session_sent;
	/*
	 * TCP, ZT_CT_REQ_*: whether the server acknowledged the opener's first
	 * payload segment (req_end: the sequence number after it). A request
	 * a server never acknowledged never reached a socket of its: a
	 * connection the opener thinks established that the server's full
	 * accept queue left in SYN_RECV (or a SYN cookie it could not take in),
	 * what an overloaded server's clients hold, not a slow client's
	 * (src/detect/slowconn.c). 0: unknown (a flow picked up mid-stream).
	 * With ZT_CT_REQ_WHOLE: the request was whole, and a server slow to
	 * answer it is slow, not its client.
	 */
	__u8 req_ack;
	__u8 _pad1; /* zero */
	/* TCP: SSH logins refused, read from the server's segment sizes (zt_ssh_auth) */
	struct zt_ssh_auth ssh;
	__u32 req_end; /* with req_ack (host order) */
	/*
	 * TCP: since when the connection holds the server, in ms from
	 * first_ns plus 1 (saturating): the packet that completed the
	 * handshake, then the server's acknowledgment of the opener's first
	 * payload (req_ack), which a server whose full accept queue dropped the
	 * handshake's last ACK sends only once it took the connection in. 0
	 * before the handshake, and in an entry of an agent from before it was
	 * kept (zero padding). A client whose SYNs or request such a queue
	 * dropped for seconds held nothing meanwhile (src/detect/slowconn.c).
	 */
	__u32 held_ms;
};

#define ZT_CT_REQ_SENT 0x1 /* the opener's first payload went out, not acknowledged yet */
#define ZT_CT_REQ_ACKED 0x2 /* the server acknowledged all of it */

/*
 * ... and it was a whole HTTP/1.x GET or HEAD: its method first, its
 * headers' blank line last (a slowloris never ends its headers).
 */
#define ZT_CT_REQ_WHOLE 0x4

/* zt_ct_val.held_ms for a packet at now (CLOCK_BOOTTIME) of an entry made at first. */
static inline __u32 zt_ct_held_ms(__u64 first, __u64 now)
{
	__u64 ms = now > first ? (now - first) / 1000000 + 1 : 1;

	return ms > 0xffffffffULL ? 0xffffffffu : (__u32)ms;
}

#define ZT_CT_RESP_DUE 0x1
#define ZT_CT_RESP_REFUSED 0x2
#define ZT_CT_RESP_SERVED 0x4
#define ZT_CT_RESP_CHALLENGED 0x8
/*
 * The request being answered submitted credentials other than the client's
 * last ones to the service (bpf/lib/cred.h): a 2xx or 4xx answer refuses them.
 */
#define ZT_CT_RESP_CRED 0x10
/* The request is a POST whose first segment named no password: its next one is read. */
#define ZT_CT_RESP_POST 0x20

/*
 * cred_seen (LRU hash, bpf/lib/cred.h): a client's last credentials
 * submitted in the clear to a service, by a hash of their bytes.
 */
struct zt_cred_key {
	__u8 family; /* 4 or 6 */
	__u8 _pad; /* zero */
	__u16 port; /* the service's, host byte order */
	__u8 client[16]; /* network byte order; IPv4 in the first 4 bytes, rest zero */
	__u8 server[16];
};

#define ZT_CRED_SEEN 4

/* Hashes of the client's last ZT_CRED_SEEN credentials, the latest first (0: none). */
struct zt_cred_seen {
	__u32 hash[ZT_CRED_SEEN];
};

/*
 * ZT_EV_SESSION: a TCP session whose handshake completed, at the packet of
 * an endpoint's that closed it (both FINs, or a reset), with its entry as
 * it stood then (key in the entry's original direction). The brute-force
 * detector judges a session when it ends; this brings it the end at once,
 * where the conntrack sweep would find it up to detection.sweep_interval
 * later (a fast guesser makes tens of attempts a second). Written while
 * probe events are on, within probe_rate a second per CPU (a bucket of its
 * own); a session over the rate, or lost to a full ring, is left to the
 * sweep (zt_ct_val.session_sent stays 0). Between two endpoints of the
 * node, only the source's entry sends one, as the sweep reads only that.
 */
struct zt_ev_session {
	struct zt_event_hdr hdr;
	struct zt_ct_key key;
	__u32 _pad;
	struct zt_ct_val val;
};

_Static_assert(__builtin_offsetof(struct zt_ev_session, val) % 8 == 0,
	       "zt_ev_session: the entry 8-byte aligned, as in the map");

/* host_replies (LRU hash, bpf/lib/hostreply.h): a connection of a service of the node's own. */
struct zt_host_reply_key {
	__u8 family; /* 4 or 6 */
	__u8 _pad[3]; /* zero */
	__u16 node_port; /* host byte order */
	__u16 client_port;
	__u8 node[16]; /* network byte order; IPv4 in the first 4 bytes, rest zero */
	__u8 client[16];
};

struct zt_host_reply {
	__u8 served; /* a segment began with an HTTP/1.x success (2xx), a DNS answer, a +PONG */
	/*
	 * Segments that began with a refusal (lib/refusal.h) since the last
	 * that served, saturating; ssh.clear_live: those reported as they were
	 */
	__u8 refused;
	__u8 last_refused; /* the last such segment was a refusal, not a success */
	/*
	 * A segment asked for a password (ZT_REPLY_CHALLENGE), and no segment
	 * that said anything else came after it: the session ended on the
	 * question if the socket sent no data segment after it either (its
	 * tcp_sock data_segs_out still chal_segs at the close).
	 */
	__u8 challenged;
	__u32 chal_segs; /* the socket's data_segs_out with the challenge's segment */
	struct zt_ssh_auth ssh; /* an SSH server's answers by their sizes */
	/*
	 * 1 while the client's last request (the guard saw it come in at the
	 * uplink) submitted credentials in the clear whose hash is cred_hash
	 * (bpf/lib/cred.h): the service's next answer says what became of them.
	 */
	__u8 cred;
	__u8 _pad[3]; /* zero */
	__u32 cred_hash;
};

/*
 * ZT_EV_HOST_SESSION: a TCP session a service of the node itself accepted
 * (its own network namespace, not an endpoint's), when its socket closed
 * (bpf/host_session.bpf.c), with the socket's counters and what tc_uplink
 * read of its answers (bpf/lib/hostreply.h). Payload bytes are exact to
 * within one (a FIN's sequence number): received from the client, and sent
 * to it and acknowledged; 0 where no segment carried data.
 */
struct zt_ev_host_session {
	struct zt_event_hdr hdr;
	__u8 family; /* 4 or 6 */
	__u8 served; /* 1: the service answered it with an HTTP success or a DNS answer (bpf/lib/hostreply.h) */
	/*
	 * Logins it refused in the clear since its last answer that served,
	 * when its last such answer was one (else 0), less refused_live
	 */
	__u8 refused;
	/* 1: its last answer asked for a password and the client sent none (zt_host_reply) */
	__u8 challenged;
	__u16 sport; /* the client's port */
	__u16 dport; /* the service's */
	__u8 saddr[16]; /* the client */
	__u8 daddr[16]; /* the node's address it reached */
	__u64 first_ns; /* CLOCK_BOOTTIME: the handshake completed (hdr.ts_ns: the close) */
	__u64 bytes_in; /* payload from the client (tcp_sock.bytes_received) */
	__u64 bytes_out; /* payload to it, acknowledged (tcp_sock.bytes_acked) */
	__u32 segs_in; /* segments from the client, its SYN and FIN included */
	__u32 segs_out;
	/*
	 * An SSH server's: logins refused, read from its answers' sizes and
	 * not reported as they were (zt_ssh_auth_failed) ...
	 */
	__u8 ssh_fails;
	__u8 ssh_live; /* ... and those that were (zt_ssh_auth_live, ZT_EV_REFUSED) */
	/* Of its logins refused in the clear, those reported as they were (ZT_EV_REFUSED) */
	__u8 refused_live;
	__u8 _pad[5];
};

/*
 * ZT_EV_REFUSED: logins a server refused in a session still open, as the
 * answer went out, from tc_endpoint for an endpoint's server or tc_uplink
 * for the node's own, while probe events are on, within probe_rate a
 * second per CPU with the session ends (ZT_AR_SESSION):
 *  - ZT_REFUSED_SSH: a guess an SSH server refused (struct zt_ssh_auth: a
 *    run's answer to a request about the size of a password's);
 *  - ZT_REFUSED_CLEAR: refusals in the clear (lib/refusal.h) of a run of
 *    ZT_REFUSED_LIVE_FROM or more, those not reported yet (the run's
 *    first ones with the one that reached it, then one by one).
 * Those not written (over the rate, a full ring) are counted at the
 * session's end instead.
 */
struct zt_ev_refused {
	struct zt_event_hdr hdr;
	__u8 family; /* 4 or 6 */
	__u8 origin; /* ZT_REFUSED_FROM_ENDPOINT or ZT_REFUSED_FROM_NODE */
	__u8 refused; /* logins of the session reported so, these included (saturating) */
	__u8 kind; /* ZT_REFUSED_SSH or ZT_REFUSED_CLEAR */
	__u16 sport; /* the client's port (host order) */
	__u16 dport; /* the server's */
	__u8 saddr[16]; /* the client (network order; IPv4 in the first 4 bytes) */
	__u8 daddr[16]; /* the server */
	__u64 first_ns; /* CLOCK_BOOTTIME: the session's first packet; 0 where not kept (the node's) */
	__u8 count; /* the logins this record reports: 1 for an SSH guess */
	__u8 _pad[7];
};

#define ZT_REFUSED_SSH 0
#define ZT_REFUSED_CLEAR 1

#define ZT_REFUSED_FROM_ENDPOINT 1
#define ZT_REFUSED_FROM_NODE 2

_Static_assert(sizeof(struct zt_ct_key) == 44,
	       "zt_ct_key: the layout of zt_ct_val assumes 44 bytes");
_Static_assert(__builtin_offsetof(struct zt_ct_val, d) == 32 && sizeof(struct zt_ct_dir) == 64,
	       "zt_ct_val: the head and the key's tail share a line, each direction has one");
_Static_assert(sizeof(struct zt_ct_val) == 224, "zt_ct_val: 48 + 48 + 224 bytes, five lines");

/* The flow's last packet, either way (CLOCK_BOOTTIME). */
static inline __u64 zt_ct_last_ns(const struct zt_ct_val *v)
{
	return v->d[0].last_ns > v->d[1].last_ns ? v->d[0].last_ns : v->d[1].last_ns;
}

/* Inter-arrival times in zt_ct_val are ns >> ZT_CT_IAT_SHIFT: units of 1.024 us. */
#define ZT_CT_IAT_SHIFT 10
#define ZT_CT_IAT_UNSET 0xffffffffu
#define ZT_CT_SIZE_UNSET 0xffffu

/*
 * Idle timeouts (the program treats an older entry as a new flow; the daemon
 * sweeps). Half-open TCP (NEW, SYN_RECV): 10 s, shorter than Linux's 120 s
 * SYN_SENT and 60 s SYN_RECV: a client's SYN retries 1, 3, 7 and 15 s in stay
 * one flow, and at 10k spoofed SYNs a second the half-open entries stay
 * near 100k plus one sweep rotation's worth, well inside the 262144 default.
 */
#define ZT_CT_TCP_SYN_TIMEOUT_NS (10ULL * 1000000000ULL)
#define ZT_CT_TCP_EST_TIMEOUT_NS (3600ULL * 1000000000ULL)
#define ZT_CT_TCP_CLOSE_TIMEOUT_NS (10ULL * 1000000000ULL)
#define ZT_CT_UDP_TIMEOUT_NS (60ULL * 1000000000ULL)
#define ZT_CT_ICMP_TIMEOUT_NS (30ULL * 1000000000ULL)
#define ZT_CT_OTHER_TIMEOUT_NS (60ULL * 1000000000ULL)

/* The idle timeout of an entry: one table for the program and the daemon's sweep. */
static inline __u64 zt_ct_timeout(__u8 proto, __u8 state)
{
	switch (proto) {
	case 6: /* IPPROTO_TCP */
		if (state == ZT_CT_ESTABLISHED)
			return ZT_CT_TCP_EST_TIMEOUT_NS;
		if (state == ZT_CT_NEW || state == ZT_CT_SYN_RECV)
			return ZT_CT_TCP_SYN_TIMEOUT_NS;
		return ZT_CT_TCP_CLOSE_TIMEOUT_NS;
	case 17: /* IPPROTO_UDP */
		return ZT_CT_UDP_TIMEOUT_NS;
	case 1: /* IPPROTO_ICMP */
	case 58: /* IPPROTO_ICMPV6 */
		return ZT_CT_ICMP_TIMEOUT_NS;
	default:
		return ZT_CT_OTHER_TIMEOUT_NS;
	}
}

/* Every packet tc_endpoint sees is counted in ZT_PIN_TC_STATS (per-CPU array). */
enum zt_tc_stat {
	ZT_TCS_ALLOW_NEW = 0, /* first packet of a flow, allowed */
	ZT_TCS_ALLOW_EST, /* packet of an allowed flow (either way) */
	ZT_TCS_AUDIT, /* passed, audit-mode policy would deny */
	ZT_TCS_DENY_NEW, /* first packet of a flow, denied */
	ZT_TCS_DENY_EST, /* packet of a denied or revoked flow */
	ZT_TCS_NOT_IP, /* passed: ARP etc. */
	ZT_TCS_MALFORMED, /* dropped: truncated headers */
	ZT_TCS_NO_ENDPOINT, /* passed: interface not registered */
	ZT_TCS_BLOCKED, /* dropped: a flow from or to a blocklisted address (new or not) */
	ZT_TCS_MAX,
};

/*
 * A policy verdict on a flow's first packet, or on a re-check (after a
 * generation change) that changed its verdict or audit flag. Addresses,
 * ports, proto and dir are the flow's original direction (its zt_ct_key),
 * not necessarily the packet's. With audit, rule_id and reason name what
 * the audit-mode policies would have denied with (ZT_REASON_RULE_DENY,
 * _NO_RULE or _DEFAULT_DENY); otherwise what gave the verdict.
 */
struct zt_ev_policy {
	struct zt_event_hdr hdr;
	__u32 ifindex;
	__u32 gen;
	__u32 rule_id; /* decided by; ZT_RULE_NONE with reasons without a rule */
	__u32 local_id;
	__u32 peer_id;
	__u32 ep_id; /* local endpoint */
	__u32 peer_ep_id; /* 0: not a local endpoint */
	__u8 dir; /* enum zt_dir of the local endpoint */
	__u8 verdict; /* enum zt_verdict: ALLOW or DENY */
	__u8 audit; /* allowed, audit-mode policy would deny */
	__u8 reason; /* enum zt_reason */
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
	__u8 revoked; /* an established flow lost its permission */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* as in zt_ct_key */
	__u16 dport;
	__u32 pkt_len;
	__u32 _pad; /* explicit: the record is 96 bytes, zeroed before it is filled */
};

/* Per-endpoint activity (ZT_PIN_EP_STATS): a per-CPU array, slot ep_id % ZT_EP_STATS_SLOTS. */
#define ZT_EP_STATS_SLOTS 4096
struct zt_ep_stats {
	/*
	 * The endpoint counted in this CPU's copy of the slot. A packet of
	 * another endpoint that maps to the same slot zeroes the copy and takes
	 * it: the daemon sums only the copies that name the endpoint it asks
	 * about. (Endpoint ids count up from 1, so two live endpoints share a
	 * slot only after 4096 registrations between them.)
	 */
	__u32 ep_id;
	__u32 _pad;
	__u64 new_flows[ZT_DIR_MAX]; /* flows started, by enum zt_dir */
	__u64 denied[ZT_DIR_MAX]; /* packets dropped by policy (new and established) */
	__u64 packets[ZT_DIR_MAX]; /* every packet of the endpoint, passed or not */
	__u64 bytes[ZT_DIR_MAX]; /* their IP bytes */
};

/*
 * ---- Activity: threat signals and first response ----
 *
 * xdp_guard (uplink ingress) keeps per-source and per-destination activity
 * in array sketches, limits sources and destinations with token buckets,
 * protects destinations from SYN floods, reports first contacts (probes)
 * and copies packets of watched addresses. tc_uplink (the uplinks' TC
 * egress) sees the node's answers and reports the probes' outcomes.
 * Everything reads its settings from ZT_PIN_GUARD_CFG, written by the
 * daemon (src/guard/datapath.c, watch.c) at any time.
 *
 * Clock. The packet path reads jiffies only (bpf_jiffies64 is one load;
 * a clock-source read costs tens of ns in a VM). A window is
 * 2^guard_cfg.win_shift jiffies, which the daemon picks for about a second
 * at the kernel's HZ (256 jiffies at HZ 250); its id is jiffies >>
 * win_shift. Destination buckets count in jiffies << 16 (32 bits). What
 * runs rarely - a source's own bucket once over a limit, the expiry of
 * watch, syn_protect and syn_verified entries, event rate limits, capture
 * sampling - is on CLOCK_MONOTONIC ns as the kernel reads it coarsely
 * (bpf_ktime_get_coarse_ns). Event headers stay on CLOCK_BOOTTIME.
 *
 * Sketches. ZT_PIN_SRC_SKETCH holds 2 rows of ZT_SRC_ROW cells, row 0
 * first; ZT_PIN_DST_SKETCH 2 rows of ZT_DST_ROW. An address has one cell in
 * each row, from one keyed hash (zt_sketch_hash with zt_guard_cfg.seed): row
 * 0 from its top bits, row 1 from the bits below those. Every IP packet that passes
 * the lists (allowlisted sources skip all of this) updates both cells of its
 * source and both of its destination; a cell whose window is not the
 * current one is zeroed first. Cells can be shared by several addresses, so
 * a count is read as the smaller of the two cells (count-min): never below
 * the address's own count, above it only when both its cells are shared.
 * Updates are plain stores (no atomics): concurrent CPUs may lose a few
 * counts, never corrupt a cell beyond one window.
 *
 * Distinct destination ports and hosts of a source and distinct sources of
 * a destination are 64-bit bitmaps (one bit per hashed value, "linear
 * counting"): with z of m = 64 bits still clear, the distinct count is
 * about m ln(m / z) (zt_lc_estimate in src/guard/datapath.h). Ports, hosts
 * and contacts count only packets that open something: a TCP SYN without
 * ACK, an ICMP or ICMPv6 echo request, and UDP unless it looks like a
 * server's answer (source port below 1024, destination port 1024 or up).
 *
 * The cheap part runs for every packet: counts in both cells of each side
 * (and the destination's buckets when limits are set). What compares
 * (source limits, signals) runs on every 16th packet of the row-0 cell, so
 * a threshold is noticed at most 15 packets late, and on first contacts.
 *
 * Several CPUs. A node's destinations are few and every receive queue
 * sends to them, so a destination cell written on every packet would move
 * its cache line between the CPUs at each one. So a packet writes its
 * destination's counts into ZT_PIN_DST_LOCAL, this CPU's own entry for the
 * destination (zt_dst_local), and a CPU adds them to the destination's two
 * cells when they reach ZT_CHECK_EVERY packets; that is also when the
 * destination's signals are compared (and on a first contact, or a source
 * new to the cell), so a threshold is noticed at most 15 packets per CPU
 * late. Readers add the CPUs' entries of the window (src/guard,
 * zt_guard_dst_activity). Counts of a window a CPU had not added when the
 * next window began are dropped with it. Buckets work the same way: a CPU
 * takes up to zt_guard_cfg.dst_lease tokens at once from a cell's bucket
 * (charging it for all of them) and spends them on its next packets
 * without touching the cell. A bucket holds what it always did; the tokens
 * CPUs took and have not spent yet, fewer than dst_lease per CPU and kind,
 * come on top. The daemon sets dst_lease to an eighth of the bucket's depth
 * shared by the possible CPUs (1 to ZT_DST_LEASE_MAX): all of them
 * together hold at most an eighth of a bucket more. The shared cells are
 * still written for the distinct sources (when a new bit is set),
 * challenges and admissions, and at a new window; a packet reads them only
 * when this CPU's entry does not already know (the window began, a source
 * new to this CPU).
 *
 * Limits (zt_guard_cfg.src_limit, .dst_limit: packets per second per kind,
 * 0 = off). Kinds: every packet (ALL) and, by protocol, TCP SYN, UDP, ICMP.
 * Per source, the sketch is the first stage: a source whose window count
 * of a kind (count-min) reaches the limit is marked over it in its cells,
 * for this window and the next. Only then is the source's own bucket, in
 * ZT_PIN_RL_SRC keyed by its exact address, consulted (created empty: the
 * window already spent its burst). So a source under its limits costs no
 * hash lookup, and a source that shares both cells with a flooding one
 * still gets its own bucket, never the flooder's. Per destination, the
 * buckets live in the destination's two cells; a packet is dropped only
 * when both are empty, so sharing one cell with a flooded destination
 * costs an innocent one nothing. Buckets are GCRA (a theoretical arrival
 * time per bucket): a packet conforms when tat <= now + burst, and then
 * tat = max(tat, now) + interval.
 *
 * SYN protection. A destination is under protection while its SYN bucket
 * is empty, or while ZT_PIN_SYN_PROTECT names it (the daemon's decision).
 * Then a SYN from a source in ZT_PIN_SYN_VERIFIED (it completed a
 * handshake with an endpoint, as tc_endpoint saw, or answered a challenge)
 * passes (ZT_XR_SYN_VERIFIED) with ZT_GCF_SYN_VERIFIED; from any other
 * source, with ZT_GCF_SYN_CHALLENGE, it is answered from XDP with a SYN-ACK
 * whose acknowledgement number is a keyed cookie that cannot be the right
 * one (ZT_XR_SYN_CHALLENGE, action TX). A real client's TCP answers a
 * SYN-ACK that acknowledges the wrong number with an RST whose sequence
 * number is that cookie (RFC 793 SYN-SENT; Linux then resends its SYN
 * within a few ms); the guard checks the cookie, adds the source to
 * syn_verified and drops the RST (ZT_XR_SYN_ANSWER). A spoofed source never
 * sees the challenge and never answers. Without either flag, the SYN is
 * dropped (ZT_XR_RL_DST_SYN). Everything below the bucket's rate still
 * reaches the endpoint, whose own SYN cookies answer it.
 *
 * Probes (ZT_GCF_PROBES). A source's first opening packet of a window
 * towards a (destination, port, protocol) - its bit in the cell's contacts
 * bitmap was clear in either row - is a probe event. It also sets a bit in
 * `pending` (not reset per window), which tc_uplink clears when the node
 * answers (SYN-ACK or UDP: open; RST: closed; ICMP unreachable) and emits
 * the outcome. The daemon pairs probes with outcomes by (prober, target,
 * port, proto) and counts a probe without one after its own timeout as a
 * failure. Both events also go through a per-CPU rate limit (probe_rate).
 * The contacts bitmap bounds a source's probe events to what 64 bits can
 * tell apart in a window: about 40 of 60 distinct contacts are reported, the
 * rest fall on bits already set. A sequential test needs the first few.
 *
 * Scan brake (ZT_GCF_SCAN_BRAKE, the daemon's while scans are answered with
 * a block). A scanner's first probes go out in a burst (nmap: about 30 in
 * under a millisecond) that is over before any decision on their outcomes
 * can reach the blocklist. So tc_uplink also counts the outcomes it
 * reports in ZT_PIN_SCAN_CELLS, at the source's two cell indexes of the
 * source sketch: failed (closed, unreachable) and open, this window. When
 * both cells count scan_brake or more failures beyond the opens, the
 * source's further first contacts of the window are dropped
 * (ZT_XR_SCAN_BRAKE; their probe events go out, as failures), unless
 * ZT_PIN_SCAN_EXEMPT holds the source (the daemon's never-block lists).
 * Nothing else of the source is touched: its connections go on, its
 * contacts it made before pass, and the next window starts it over. The
 * daemon's sequential test decides on fewer failures than the brake needs
 * (4 at its defaults), so the brake only holds a scan until its block.
 */
#define ZT_SRC_ROW_BITS 14
#define ZT_SRC_ROW (1u << ZT_SRC_ROW_BITS) /* cells per row */
#define ZT_DST_ROW_BITS 10
#define ZT_DST_ROW (1u << ZT_DST_ROW_BITS)
/* Destination bucket times are jiffies << ZT_TAT_SHIFT in 32 bits (see the cell). */
#define ZT_TAT_SHIFT 16
/* Limit and signal checks run on every 16th packet of a cell (and every opening one). */
#define ZT_CHECK_EVERY 16
/* Destination bucket tokens a CPU takes at once, at most (see "Several CPUs"). */
#define ZT_DST_LEASE_MAX 64

enum zt_rl_kind {
	ZT_RL_ALL = 0, /* every packet */
	ZT_RL_SYN, /* TCP SYN without ACK */
	ZT_RL_UDP,
	ZT_RL_ICMP, /* ICMP and ICMPv6 */
	ZT_RL_KINDS,
};

/* ZT_PIN_SRC_SKETCH value: one source cell, one cache line. */
struct zt_src_cell {
	__u16 win; /* window id of the counts below (low 16 bits) */
	__u8 nports; /* bits set in ports */
	__u8 nhosts; /* bits set in hosts */
	__u32 count[ZT_RL_KINDS]; /* packets by enum zt_rl_kind: [ZT_RL_ALL] every packet */
	__u32 bytes; /* IP bytes (wraps at 4 GiB a window) */
	/*
	 * TCP ACK alone, no payload, and SYN-ACKs the node sent the source
	 * (tc_uplink), each saturating at 0xffff a window: zt_halfopen.
	 */
	__u16 ack;
	__u16 synack;
	__u8 over; /* kinds (1 << enum zt_rl_kind) at or over the source limit this window */
	__u8 prev_over; /* ... in the window before */
	__u8 reported; /* signals (ZT_SIG_*, low 8 bits) already reported this window */
	/*
	 * When this window's first packet came, in 1/256 of a window from its
	 * start (zt_win_off8): a signal's rate is counted from there, so a
	 * flood that starts late in a window is not diluted by its quiet part.
	 */
	__u8 first;
	/*
	 * Probes waiting for their outcome (bit: zt_probe_bit), not reset per
	 * window. Two pending probes of a source on one bit get one outcome.
	 */
	__u64 pending;
	__u64 ports; /* distinct destination ports (bit: zt_port_bit) */
	__u64 hosts; /* distinct destination hosts (bit: zt_addr_bit of the destination) */
	__u64 contacts; /* (destination, port, protocol) seen this window (bit: zt_probe_bit) */
};

/* ZT_PIN_DST_SKETCH value: one destination cell, one cache line. */
struct zt_dst_cell {
	__u32 win;
	__u32 count[ZT_RL_KINDS];
	__u32 bytes;
	__u32 ack;
	__u32 challenged; /* SYNs answered with a challenge this window */
	__u32 admitted; /* SYNs of verified clients passed under protection this window */
	__u8 nsrcs; /* bits set in srcs */
	__u8 reported; /* signals already reported this window */
	__u8 exhausted; /* kinds whose bucket ran empty in this cell this window */
	__u8 chal; /* bit 0: challenges sent this window; bit 1: in the window before */
	__u64 srcs; /* distinct sources (bit: zt_addr_bit of the source) */
	/*
	 * GCRA buckets by kind, in jiffies << ZT_TAT_SHIFT, 32 bits, compared
	 * to now as signed differences. A cell idle for a whole window has its
	 * buckets refilled (tat = now) at its next packet, so a difference
	 * stays within seconds and the wrap (65536 jiffies) cannot confuse it.
	 */
	__u32 tat[ZT_RL_KINDS];
};

/*
 * ZT_PIN_DST_LOCAL value, per CPU, one per row-0 destination cell (same
 * index): what this CPU counted for one destination and has not added to
 * its two cells yet, and the bucket tokens it took from them and has not
 * spent. A destination with the same row-0 cell and another row-1 cell
 * takes the entry over, adding what it held to its owner's cells first.
 */
struct zt_dst_local {
	__u32 cell1; /* the owner's row-1 cell + 1; 0: none */
	__u32 win; /* window of the counts (zt_dst_cell.win) */
	__u32 count[ZT_RL_KINDS];
	__u32 bytes;
	__u32 ack;
	__u8 credit[2][ZT_RL_KINDS]; /* tokens by row and kind, fewer than guard_cfg.dst_lease */
	__u64 srcs; /* sources this CPU found or set in both cells' srcs this window */
};

/* Signal thresholds (per window, 0 = no signal) and the bits of zt_ev_activity.signals. */
struct zt_sig_thr {
	__u32 pkts;
	__u32 bytes;
	__u32 syn;
	__u32 halfopen; /* syn - ack */
	__u32 udp;
	__u32 icmp;
	__u8 distinct; /* bits set: a source's destination ports; a destination's sources */
	__u8 distinct2; /* bits set: a source's destination hosts */
	__u8 _pad[2];
	/*
	 * Source: TCP resets the node sent back to it that answered no probe
	 * (tc_uplink), and its segments with FIN or RST that found no flow at
	 * an endpoint (tc_endpoint) (zt_scan_cell.resets): segments that no
	 * connection owned, as an ACK, FIN/ACK or RST flood's. Destination:
	 * unused.
	 */
	__u32 resets;
};

#define ZT_SIG_PKTS 0x01
#define ZT_SIG_BYTES 0x02
#define ZT_SIG_SYN 0x04
#define ZT_SIG_HALFOPEN 0x08
#define ZT_SIG_UDP 0x10
#define ZT_SIG_ICMP 0x20
#define ZT_SIG_DISTINCT 0x40 /* source: ports; destination: sources */
#define ZT_SIG_DISTINCT2 0x80 /* source: hosts */
#define ZT_SIG_RESETS 0x100 /* source: segments of no connection (zt_scan_cell.resets) */

/* zt_guard_cfg.flags */
#define ZT_GCF_ACTIVITY 0x1 /* sketches, signals and limits (off: the whole stage is skipped) */
#define ZT_GCF_PROBES 0x2 /* probe and probe-result events */
#define ZT_GCF_SYN_VERIFIED 0x4 /* under SYN protection, verified clients pass */
#define ZT_GCF_SYN_CHALLENGE 0x8 /* under SYN protection, unknown sources are challenged */
#define ZT_GCF_SCAN_BRAKE 0x10 /* first contacts of a failing source are dropped ("Scan brake") */

/*
 * ZT_PIN_GUARD_CFG: array of one. The daemon writes the whole value; a
 * packet may see a mix of the old and new fields for that one packet. seed
 * and cookie_key are drawn once, when the map is new, and kept across
 * restarts (the sketches and pending challenges stay valid).
 */
struct zt_guard_cfg {
	__u64 seed; /* sketch hash key */
	__u64 cookie_key[2]; /* SYN challenge key (SipHash-2-4) */
	__u32 flags; /* ZT_GCF_* */
	__u32 watch_count; /* entries in ZT_PIN_WATCH (0: no lookup on the packet path) */
	__u32 protect_count; /* entries in ZT_PIN_SYN_PROTECT (0: no lookup) */
	__u32 probe_rate; /* probe and probe-result events per second per CPU, at most */
	__u32 signal_rate; /* activity events per second per CPU, at most */
	__u32 hz; /* the kernel's HZ as the daemon found it (for readers; the programs use jiffies) */
	__u32 win_shift; /* a window is 2^win_shift jiffies */
	__u32 dst_burst; /* destination bucket depth, jiffies << ZT_TAT_SHIFT */
	__u64 src_burst_ns; /* source bucket depth */
	__u64 verified_ttl_ns; /* a verified client is admitted for this long; 0 = no limit */
	__u32 src_limit[ZT_RL_KINDS]; /* packets per second per source and kind; 0 = off */
	__u32 dst_limit[ZT_RL_KINDS]; /* per destination */
	__u64 src_interval_ns[ZT_RL_KINDS]; /* 1e9 / src_limit; 0 when off */
	__u32 dst_interval[ZT_RL_KINDS]; /* jiffies << ZT_TAT_SHIFT per packet, >= 1; 0 when off */
	struct zt_sig_thr sig_src;
	struct zt_sig_thr sig_dst;
	/* Destination bucket tokens a CPU takes at once, 1..ZT_DST_LEASE_MAX ("Several CPUs"). */
	__u8 dst_lease[ZT_RL_KINDS];
	/* Failed first contacts beyond the open ones, in both cells, that brake a source. */
	__u32 scan_brake;
};

/* ZT_PIN_SCAN_CELLS value (array of 2 * ZT_SRC_ROW, as the source sketch): see "Scan brake". */
struct zt_scan_cell {
	__u32 win; /* window id of the counts */
	__u16 failed; /* outcomes closed or unreachable, saturating */
	__u16 open; /* outcomes open, saturating */
	/*
	 * TCP resets the node sent to the source that answered none of its
	 * probes, this window (tc_uplink), and the source's segments with FIN
	 * or RST that found no flow at an endpoint (tc_endpoint): each says a
	 * segment of the source belonged to no connection
	 * (zt_scan_reset). ZT_SIG_RESETS goes out once a window,
	 * when both cells reach guard_cfg.sig_src.resets and not both have
	 * reported it (reported).
	 */
	__u32 resets;
	__u8 reported;
	__u8 _pad[3];
};

/*
 * ZT_PIN_SCAN_EXEMPT (LPM trie) key: prefixlen counts 32 bits of family and
 * padding, then the address's prefix. Presence exempts a source from the
 * scan brake.
 */
struct zt_scan_exempt_key {
	__u32 prefixlen;
	__u8 family; /* 4 or 6 */
	__u8 _pad[3]; /* zero */
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes */
};

/* Key of the maps keyed by one address (ratelimit_src, syn_verified, syn_protect, watch). */
struct zt_addr_key {
	__u8 family; /* 4 or 6 */
	__u8 _pad[3]; /* zero */
	__u8 addr[16]; /* network byte order; IPv4 in the first 4 bytes, rest zero */
};

/* ZT_PIN_RL_SRC (LRU hash): a source's own buckets, from its first time over a limit. */
struct zt_rl_state {
	__u64 tat[ZT_RL_KINDS]; /* CLOCK_MONOTONIC ns; 0 = full */
	__u64 dropped[ZT_RL_KINDS]; /* packets dropped by each bucket */
	__u64 first_ns; /* when it was created */
};

/* ZT_PIN_SYN_VERIFIED (LRU hash): clients admitted under SYN protection. */
enum zt_verified_how {
	ZT_VER_HANDSHAKE = 1, /* tc_endpoint saw it complete a handshake with an endpoint */
	ZT_VER_CHALLENGE = 2, /* it answered a challenge */
	ZT_VER_DAEMON = 3, /* the daemon said so */
};

struct zt_verified_val {
	__u64 since_ns; /* CLOCK_MONOTONIC; admitted until since_ns + verified_ttl_ns */
	__u32 how; /* enum zt_verified_how */
	__u32 _pad;
};

/* ZT_PIN_SYN_PROTECT (hash): destinations protected whatever their SYN bucket says. */
struct zt_protect_val {
	__u64 expires_ns; /* CLOCK_MONOTONIC; 0 = never */
	__u64 created_unix;
};

/*
 * ZT_PIN_WATCH (hash): addresses whose packets are captured, as source or
 * destination, by every program: passed, dropped (blocklist included) or
 * answered. The daemon writes the first four fields (the rest zero); the
 * programs keep the bucket and the counters.
 */
#define ZT_CAP_SNAPLEN 128
struct zt_watch_val {
	__u64 expires_ns; /* CLOCK_MONOTONIC; 0 = never */
	__u64 incident_id; /* carried by every capture */
	__u32 rate; /* captures per second at most (bucket depth: one second); 0 = all */
	__u32 snaplen; /* bytes per capture, 1 .. ZT_CAP_SNAPLEN; 0 = ZT_CAP_SNAPLEN */
	__u64 tat; /* the rate's bucket (GCRA, CLOCK_MONOTONIC ns) */
	__u64 captured; /* records written */
	__u64 sampled_out; /* packets over the rate, not captured */
	__u64 lost; /* captures lost to a full ring buffer */
	__u32 pending; /* packets since the last capture (the next one's `represents`) */
	__u32 _pad;
};

/* ZT_PIN_ACT_STATS: per-CPU array of __u64, index enum zt_act_stat. */
enum zt_act_stat {
	ZT_AS_SRC_SIGNALS = 0, /* source activity events written */
	ZT_AS_DST_SIGNALS, /* destination activity events written */
	ZT_AS_PROBES, /* probe events written */
	ZT_AS_PROBE_RESULTS, /* probe-result events written */
	ZT_AS_SUPPRESSED, /* activity / probe events over their rate, not written */
	ZT_AS_LIMITED_SRCS, /* sources given their own bucket (ratelimit_src entries made) */
	ZT_AS_VERIFIED_CHALLENGE, /* clients verified by their answer to a challenge */
	ZT_AS_VERIFIED_HANDSHAKE, /* clients verified by a handshake tc_endpoint saw */
	ZT_AS_BAD_ANSWER, /* RSTs to a challenged destination with a wrong cookie */
	ZT_AS_CAPTURES, /* capture records written */
	ZT_AS_CAPTURE_SAMPLED_OUT, /* packets of watched addresses over their rate */
	ZT_AS_CAPTURE_LOST, /* captures lost to a full ring */
	ZT_AS_SESSIONS, /* session-end events written (tc_endpoint, ZT_EV_SESSION) */
	ZT_AS_HOST_SESSIONS, /* the node's own session ends written (ZT_EV_HOST_SESSION) */
	ZT_AS_SSH_REFUSED, /* SSH guesses refused, reported as they were (ZT_EV_REFUSED) */
	ZT_AS_CLEAR_REFUSED, /* refusals in the clear reported as they were (ZT_EV_REFUSED) */
	ZT_AS_MAX,
};

/*
 * Ring-buffer records of the activity stage. Like the others, zeroed
 * before they are filled, so padding goes out as zeros.
 *
 * ZT_EV_SRC_ACTIVITY / ZT_EV_DST_ACTIVITY: a source (or destination)
 * crossed one or more of its signal thresholds in this window. At most one
 * record per signal, window and cell: a signal is reported again only in a
 * later window. Counts are the count-min estimates (the smaller of the two
 * cells) when the threshold was crossed; later counts of the window are in
 * the sketch (zt_guard_src_activity / zt_guard_dst_activity read them).
 */
struct zt_ev_activity {
	struct zt_event_hdr hdr;
	__u32 ifindex;
	__u32 win; /* window id (jiffies >> guard_cfg.win_shift) */
	__u32 signals; /* ZT_SIG_* crossed by this packet */
	__u32 elapsed; /* jiffies from the start of the window to now: rate = count / elapsed */
	__u8 family;
	__u8 proto; /* of the packet that crossed */
	__u8 over; /* source: kinds over the limit (this window or the last); destination: kinds
		    * whose bucket ran empty this window */
	__u8 distinct; /* bits set: source's ports / destination's sources (of 64) */
	__u8 distinct2; /* bits set: source's hosts (of 64); destination: 0 */
	__u8 _pad[3];
	__u8 addr[16]; /* the source (SRC) or the destination (DST); IPv4 in the first 4 bytes */
	__u8 peer[16]; /* the other address of the packet that crossed */
	__u32 pkts;
	__u32 bytes;
	__u32 syn;
	__u32 ack;
	__u32 udp;
	__u32 icmp;
	__u32 challenged; /* destination: SYNs challenged this window; source: 0 */
	__u32 admitted; /* destination: verified SYNs admitted under protection; source: 0 */
	__u32 resets; /* source: resets sent back to it this window (ZT_SIG_RESETS); else 0 */
	__u32 synack; /* source: SYN-ACKs the node sent it this window (zt_halfopen); else 0 */
};

/* ZT_EV_PROBE: a source's first opening packet of the window to (daddr, dport, proto). */
struct zt_ev_probe {
	struct zt_event_hdr hdr;
	__u32 ifindex;
	__u32 win; /* window id */
	__u8 family;
	__u8 proto; /* IPPROTO_TCP (a SYN, or FIN/NULL/Xmas: zt_act_classify), IPPROTO_UDP,
		     * IPPROTO_ICMP/ICMPV6 (echo request; ICMP timestamp request) */
	__u8 action; /* enum zt_action: what the guard did with the packet */
	__u8 tcp_flags;
	__u16 reason; /* enum zt_xdp_reason of that verdict */
	__u16 _pad;
	__u16 sport; /* host byte order; ICMP: type */
	__u16 dport; /* ICMP: code (the probed "port" is 0) */
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 _pad2;
};

enum zt_probe_result {
	ZT_PROBE_OPEN = 1, /* SYN-ACK, a UDP answer, an echo reply */
	ZT_PROBE_CLOSED = 2, /* TCP RST */
	ZT_PROBE_UNREACH = 3, /* ICMP / ICMPv6 destination unreachable (icmp_type, icmp_code) */
	/*
	 * Strays: answers to no probe the guard reported, which by themselves
	 * say a contact failed (tc_uplink, at most probe_rate a second, in a
	 * bucket of their own). A TCP RST without ACK answers a segment with
	 * ACK that no connection owned (RFC 9293 3.10.7.1): an ACK, window or
	 * Maimon (FIN+ACK) scan's probe, or a segment of a connection the node
	 * no longer has (the daemon tells these apart: src/detect/probes.h).
	 * port is the node side's port.
	 */
	ZT_PROBE_STRAY_RST = 4,
	/*
	 * ICMP protocol unreachable (type 3 code 2) or ICMPv6 unrecognized
	 * next header (type 4 code 1, in the quoted IPv6 header itself): an IP
	 * protocol scan's probe of a protocol nothing serves. proto is the
	 * quoted packet's; port 0.
	 */
	ZT_PROBE_STRAY_PROTO = 5,
	/*
	 * Not an answer but its absence, reported by tc_endpoint on an
	 * endpoint's ingress (ifindex: its veth): a TCP segment with FIN and
	 * neither SYN nor RST that no connection owned, which policy denied
	 * on its way in. Nothing will answer it, neither the endpoint nor the
	 * node: a FIN, Xmas or Maimon (FIN+ACK) scan's probe of a port the
	 * policy does not open, from outside or from another pod. (A late FIN
	 * of a connection gone is the other kind: its port is the endpoint's
	 * ephemeral one, or policy allows it.) Within the strays' rate.
	 */
	ZT_PROBE_STRAY_DENIED = 6,
};

/*
 * ZT_EV_PROBE_RESULT: the node's (or an endpoint's) answer to a probe, seen
 * leaving an uplink; or, ZT_PROBE_STRAY_DENIED, a probe denied on its way
 * into an endpoint.
 */
struct zt_ev_probe_result {
	struct zt_event_hdr hdr;
	__u32 ifindex; /* the uplink (ZT_PROBE_STRAY_DENIED: the endpoint's veth) */
	__u8 family;
	__u8 proto; /* the probe's protocol */
	__u8 result; /* enum zt_probe_result */
	__u8 icmp_type; /* with ZT_PROBE_UNREACH */
	__u8 icmp_code;
	__u8 _pad[3];
	__u16 port; /* the probed port (host order); ICMP echo: 0 */
	__u16 prober_port; /* the prober's port */
	__u8 prober[16]; /* the source that probed */
	__u8 target[16]; /* the address it probed */
};

/* ZT_EV_CAPTURE: a packet from or to a watched address. */
enum zt_cap_point {
	ZT_CAP_XDP = 1, /* xdp_guard, uplink ingress: reason is an enum zt_xdp_reason */
	ZT_CAP_UPLINK_OUT = 2, /* tc_uplink, uplink egress */
	ZT_CAP_FROM_POD = 3, /* tc_endpoint, tc_from_pod: reason is an enum zt_tc_stat */
	ZT_CAP_TO_POD = 4, /* tc_endpoint, tc_to_pod */
};

#define ZT_CAP_MATCH_SRC 1
#define ZT_CAP_MATCH_DST 2

struct zt_ev_capture {
	struct zt_event_hdr hdr; /* ts_ns: CLOCK_BOOTTIME when captured */
	__u64 incident_id; /* from the watch entry */
	__u32 ifindex;
	__u32 orig_len; /* the frame's length on the wire (from the Ethernet header) */
	__u32 represents; /* packets of this watch since the previous capture, this one included */
	__u16 cap_len; /* bytes of data[] that hold the frame */
	__u16 reason; /* see enum zt_cap_point */
	__u8 action; /* enum zt_action */
	__u8 point; /* enum zt_cap_point */
	__u8 family;
	__u8 matched; /* ZT_CAP_MATCH_SRC or _DST: which address is watched */
	__u8 addr[16]; /* the watched address */
	/*
	 * A VLAN tag the kernel holds beside the frame, not in it (a TC hook's
	 * skb->vlan_tci: a NIC's or a veth's VLAN offload); the daemon puts it
	 * back after the MAC addresses. vlan_proto in network order (802.1Q
	 * 0x8100, 802.1ad 0x88a8); 0: none.
	 */
	__u16 vlan_proto;
	__u16 vlan_tci;
	__u8 data[ZT_CAP_SNAPLEN]; /* the frame from its Ethernet header */
};

/*
 * The sketch hash (the programs and the daemon compute it alike): a keyed
 * 64-bit hash of the address, whose upper bits pick the cells and whose
 * bits 26-31 pick bitmap bits.
 */
static inline __u64 zt_mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/*
 * a: the address as four 32-bit words in network order (IPv4: a[0] only).
 * IPv4 costs one multiply by an odd key (the bits used are the product's
 * upper ones); IPv6 gets two full mixes, since a /64's owner picks 64 bits
 * of its addresses and an unkeyed fold of them could be steered onto a
 * chosen victim's cells.
 */
static inline __u64 zt_sketch_hash(const __u32 *a, __u8 family, __u64 seed)
{
	if (family == 4) {
		__u64 h = ((__u64)a[0] ^ (seed >> 32)) * (seed | 1);

		/* The product's top half into its bottom half, for the bitmap bits. */
		return h ^ (h >> 32);
	}
	return zt_mix64(zt_mix64(seed ^ a[0] ^ (__u64)a[1] << 32) ^ a[2] ^ (__u64)a[3] << 32);
}

/* Unanswered SYNs each completed handshake of a source's excuses (zt_halfopen). */
#define ZT_UNANSWERED_PER_ANSWER 64

/*
 * A source's half-open handshakes in a window, for the SYN flood signal
 * (ZT_SIG_HALFOPEN) and decision. The old estimate is its SYNs less its
 * ACKs alone. Knowing the SYN-ACKs the node sent it (synack), the SYNs it
 * was answered and left open count in full, and those nobody answered less
 * ZT_UNANSWERED_PER_ANSWER for each answered one it completed: a listener
 * whose accept queue is full drops SYNs without an answer, so a client that
 * opens hundreds of connections at once to a small backlog (wrk -c 400 at
 * python3 -m http.server's 5: 401 SYNs in 50 ms, 21 answered, the 21
 * completed) is no flood, while a flooder completes nothing: its SYNs count
 * in full, answered or not. The smaller of the two estimates: synack 0 (a
 * destination's counts, where it is not known) gives the old one.
 */
static inline __u32 zt_halfopen(__u32 syn, __u32 synack, __u32 ack)
{
	__u32 answered = synack < syn ? synack : syn;
	__u32 done = ack < answered ? ack : answered;
	__u32 unanswered = syn - answered, excused = unanswered;
	__u32 base = syn > ack ? syn - ack : 0, est;

	if (done < 0xffffffffu / ZT_UNANSWERED_PER_ANSWER &&
	    excused > done * ZT_UNANSWERED_PER_ANSWER)
		excused = done * ZT_UNANSWERED_PER_ANSWER;
	est = answered - done + unanswered - excused;
	return est < base ? est : base;
}

/* Cells: row 0 from bits 50-63 of the hash, row 1 from bits 36-49 (of 14-bit rows). */
static inline __u32 zt_src_cell0(__u64 h)
{
	return (__u32)(h >> (64 - ZT_SRC_ROW_BITS));
}

static inline __u32 zt_src_cell1(__u64 h)
{
	return ZT_SRC_ROW + ((__u32)(h >> (64 - 2 * ZT_SRC_ROW_BITS)) & (ZT_SRC_ROW - 1));
}

static inline __u32 zt_dst_cell0(__u64 h)
{
	return (__u32)(h >> (64 - ZT_DST_ROW_BITS));
}

static inline __u32 zt_dst_cell1(__u64 h)
{
	return ZT_DST_ROW + ((__u32)(h >> (64 - 2 * ZT_DST_ROW_BITS)) & (ZT_DST_ROW - 1));
}

/* The bitmap bit of an address hash (hosts of a source, sources of a destination). */
static inline __u64 zt_addr_bit(__u64 h)
{
	return 1ULL << ((h >> 26) & 63);
}

/*
 * A port's bit. Mixed fully (murmur3's finaliser), not just multiplied: a
 * multiplicative hash spreads consecutive ports evenly over the bits, and
 * linear counting, which assumes random bits, would then overcount the
 * very sequential scans it is meant to measure.
 */
static inline __u64 zt_port_bit(__u16 port)
{
	__u32 x = port * 0x9E3779B1u;

	x ^= x >> 16;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	x ^= x >> 16;
	return 1ULL << (x >> 26);
}

/* The contacts and pending bit (0..63) of (destination hash, port, protocol). */
static inline __u32 zt_probe_bit(__u64 dst_hash, __u16 port, __u8 proto)
{
	return (__u32)(zt_mix64(dst_hash ^ ((__u64)port << 8 | proto)) >> 58);
}

/* Knobs the XDP guard reads; fixed at load (const volatile rodata). */
#define ZT_DEFAULT_EVENT_SAMPLE 1 /* 1 = every drop is a candidate */
#define ZT_DEFAULT_EVENT_RATE 1000 /* events per second per CPU, at most */

/*
 * ---- Threat-intelligence destinations (tc_endpoint, bpf/lib/ioc.h) ----
 *
 * Addresses and prefixes listed by feeds with direction destination or
 * both: a pod's new flow (its egress, tc_from_pod) to one of them is
 * dropped (action block, reason ZT_REASON_IOC) or only reported (action
 * alert), and a ZT_EV_IOC record names the feed. Established flows and
 * every other packet never look.
 *
 * A flat layout, as for the blocklist: almost every destination IOC is a
 * host (C2 servers, STIX/MISP indicators), so hosts live in a hash map per
 * family keyed by the exact address (prefixlen 32 or 128): one hashed
 * lookup however many there are. The few shorter prefixes (network lists
 * such as Spamhaus DROP used as destinations, ~1-2k) live in a small LPM
 * trie, consulted only while ioc_state says it has entries. The maps are
 * changed entry by entry in chunks (add before delete), never swapped or
 * freed, so no lookup ever waits on a large trie being torn down.
 */
#define ZT_PIN_IOC_HOST_V4 "ioc_host_v4"
#define ZT_PIN_IOC_HOST_V6 "ioc_host_v6"
#define ZT_PIN_IOC_LPM_V4 "ioc_lpm_v4"
#define ZT_PIN_IOC_LPM_V6 "ioc_lpm_v6"
#define ZT_PIN_IOC_STATE "ioc_state"
#define ZT_PIN_IOC_STATS "ioc_stats"

enum zt_ioc_action {
	ZT_IOC_BLOCK = 0,
	ZT_IOC_ALERT = 1,
};

/* Keys: struct zt_ip4_key / zt_ip6_key (prefixlen 32 / 128 in the host maps). */
struct zt_ioc_val {
	__u32 feed_id; /* the feed that decides: its index in the configuration's feeds + 1 */
	__u32 prefixlen; /* the entry's own length (a trie lookup returns the value only) */
	__u16 port; /* 0: every destination port; else flows to this port only */
	__u8 action; /* enum zt_ioc_action: block when any destination feed listing it blocks */
	__u8 _pad;
	__u32 _pad2;
};

/* ZT_PIN_IOC_STATE: array of one; which maps have entries (the daemon writes it). */
struct zt_ioc_state {
	__u32 host_v4_used;
	__u32 host_v6_used;
	__u32 lpm_v4_used;
	__u32 lpm_v6_used;
};

/* ZT_PIN_IOC_STATS: per-CPU array of struct zt_counter, new flows that met an IOC. */
enum zt_ioc_stat {
	ZT_IOCS_BLOCKED = 0, /* dropped (action block) */
	ZT_IOCS_ALERTED, /* passed on, reported (action alert) */
	ZT_IOCS_MAX,
};

/* A pod's new flow to an IOC (its original direction, as in zt_ct_key). */
struct zt_ev_ioc {
	struct zt_event_hdr hdr;
	__u32 ifindex;
	__u32 ep_id; /* the pod's endpoint */
	__u32 local_id; /* its identity */
	__u32 feed_id; /* as in zt_ioc_val */
	__u32 prefixlen; /* of the entry that matched */
	__u16 ioc_port; /* the entry's port (0: every port) */
	__u8 action; /* enum zt_ioc_action */
	__u8 dropped; /* 1: the flow was dropped */
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
	__u8 _pad;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
}; /* 80 bytes, zeroed before it is filled */

/*
 * ---- Workload mTLS steering (tc_endpoint, bpf/lib/mtls.h) ----
 *
 * A pod's TCP flow that must travel through the agent's tunnel (an allow
 * rule with requireMutualAuth/requireTLS, or mtls.mode strict and a peer in
 * ZT_PIN_MTLS_REMOTE_V4/_V6; IPv4 and IPv6 alike) is marked in its conntrack entry (zt_ct_val.mtls).
 * From the pod: its packets are assigned (bpf_sk_assign) to the agent's
 * transparent listener, or to the agent's socket of that connection, and
 * marked ZT_MTLS_MARK_STEER so the node routes them locally; no socket (the
 * agent is down): dropped. To the pod: only packets the agent sent (its
 * sockets carry SO_MARK ZT_MTLS_MARK_AGENT) pass; clear text that went
 * around the tunnel is dropped. Counted in ZT_PIN_MTLS_STATS.
 */
#define ZT_PIN_MTLS_CFG "mtls_cfg"
#define ZT_PIN_MTLS_REMOTE_V4 "mtls_remote_v4"
#define ZT_PIN_MTLS_REMOTE_V6 "mtls_remote_v6"
#define ZT_PIN_MTLS_STATS "mtls_stats"

#define ZT_MTLS_MARK_STEER 0x5a7b0000u /* skb->mark of steered packets (ip rule: local) */
#define ZT_MTLS_MARK_AGENT 0x5a7c0000u /* SO_MARK of the agent's own sockets */
/* skb->mark of the reset tc_endpoint sends a server refused by requireTLS (bpf/lib/tls.h) */
#define ZT_MTLS_MARK_RST 0x5a7d0000u
#define ZT_MTLS_RT_TABLE 15008 /* the routing table the steer mark looks up */

#define ZT_CT_MTLS_NEED 0x1 /* the flow must go through the agent */
/*
 * requireTLS at the destination (bpf/lib/tls.h): the server's first payload
 * is still to be checked (CHECK), or it was: a TLS 1.3 ServerHello (TLS_OK),
 * anything else (TLS_BAD: the flow is denied with ZT_REASON_TLS, for good).
 */
#define ZT_CT_TLS_CHECK 0x2
#define ZT_CT_TLS_OK 0x4
#define ZT_CT_TLS_BAD 0x8
/* A packet of the NEED flow passed through the agent (steered to it, or sent by it): tunnelled. */
#define ZT_CT_MTLS_VIA 0x10

enum zt_mtls_dp_mode {
	ZT_MTLS_DP_OFF = 0,
	ZT_MTLS_DP_POLICY = 1,
	ZT_MTLS_DP_STRICT = 2,
};

/* ZT_PIN_MTLS_CFG: array of one; the daemon writes it. All zero: mTLS off. */
struct zt_mtls_cfg {
	__u8 mode; /* enum zt_mtls_dp_mode */
	__u8 _pad;
	__u16 steer_port; /* host order: the agent's transparent listener (0.0.0.0 or 127.0.0.1) */
	__u32 agent_mark; /* the agent's SO_MARK (ZT_MTLS_MARK_AGENT) */
};

/* ZT_PIN_MTLS_REMOTE_V4: LPM trie, key struct zt_ip4_key: pod CIDRs of other nodes; value __u32. */
/* ZT_PIN_MTLS_REMOTE_V6: the same for IPv6 pod CIDRs, key struct zt_ip6_key. */

/* ZT_PIN_MTLS_STATS: per-CPU array of struct zt_counter. */
enum zt_mtls_dp_stat {
	ZT_MTLS_DS_STEERED = 0, /* pod packets handed to the agent */
	ZT_MTLS_DS_FROM_AGENT, /* packets to a pod from the agent (allowed) */
	ZT_MTLS_DS_NO_AGENT, /* dropped: no agent socket (agent down) */
	ZT_MTLS_DS_BYPASS, /* dropped: clear text to a pod that went around the tunnel */
	ZT_MTLS_DS_UNSUPPORTED, /* dropped: a flow of neither IPv4 nor IPv6 (not expected) */
	/* requireTLS, the server's first payload at the destination (bpf/lib/tls.h): */
	ZT_MTLS_DS_TLS13, /* a TLS 1.3 ServerHello (or HelloRetryRequest): passed */
	ZT_MTLS_DS_TLS_OLD, /* dropped: a ServerHello of TLS 1.2 or older */
	ZT_MTLS_DS_TLS_NOT_TLS, /* dropped: not a TLS handshake record with a ServerHello */
	ZT_MTLS_DS_TLS_SPLIT, /* dropped: the ServerHello went on past the segment */
	ZT_MTLS_DS_TLS_RESET, /* a requireTLS refusal reset both ends (counted once per flow) */
	ZT_MTLS_DS_MAX,
};

/*
 * Drift watch (bpf/drift_watch.bpf.c): a write by another process to one of
 * the maps the daemon watches, from its bpf() syscall's exit. Ring buffer
 * records, written only when the syscall touched a watched map.
 */
/*
 * Watched maps, by slot: 0-3 blocklist_v4, blocklist_v6, blocklist_lpm_v4,
 * blocklist_lpm_v6; then endpoints, policy, pol_isolation, ipcache_v4,
 * ipcache_v6, block_notes.
 */
#define ZT_DW_MAPS 10
#define ZT_DW_SLOT_ENDPOINTS 4
#define ZT_DW_SLOT_NOTES 9
#define ZT_DW_KEY_LEN 24 /* struct zt_ipcache_key6, the longest watched key */
#define ZT_DW_BATCH_KEYS 256 /* keys a batch write reports; more: n_keys 0 */
struct zt_dw_event {
	__u32 cmd; /* BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_BATCH, ... */
	__u32 slot; /* which watched map: an index into the watch list */
	__u32 pid; /* the writer's process id */
	__u32 key_len; /* bytes of each key */
	__s64 ret; /* the syscall's return */
	__u32 n_keys; /* keys reported: 1 in key (a single write), n in a zt_dw_batch; 0 unknown */
	__u32 _pad;
	__u8 key[ZT_DW_KEY_LEN];
	char comm[16];
};
/* A batch write's record: the keys it processed, each at ZT_DW_KEY_LEN bytes. */
struct zt_dw_batch {
	struct zt_dw_event e;
	__u8 keys[ZT_DW_BATCH_KEYS][ZT_DW_KEY_LEN];
};

#endif /* ZTAGENT_H */
