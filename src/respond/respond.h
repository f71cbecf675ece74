/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What a detector's decision turns into: the response policy.
 *
 * Modes. response.mode caps everything (off: nothing is done; alert: no
 * block is ever written; block: each detector's own mode applies) and
 * response.detectors sets each detector's mode: block | alert | off.
 *
 * Blocks. The address blocked is the decision's source. A decision about
 * a victim (a flood seen per destination) is never a block: the kernel's
 * per-destination protection is what helps there. Exfiltration is about a
 * local workload: its block, when configured, is the outside destination
 * it sends to (dropping that peer's packets at the uplink stalls the
 * transfer), and only when the decision names one.
 *
 * TTL. The first block of an address lasts response.block_ttl; each time
 * the address is decided again after its block ended ("returns"), the TTL
 * doubles, up to response.max_ttl (24 h). An offence is remembered for
 * 2 x max_ttl after the last block ended; after that the address starts
 * over at block_ttl. While a block is in force a new decision is
 * "already": nothing is written again; so is a decision whose evidence
 * (its ts_ns: the latest activity it saw) is from before the last block
 * ended, e.g. connections that linger in conntrack after the attacker
 * left. Only activity after the block counts as a return.
 *
 * Never blocked. Addresses in detection.protected, the built-in
 * special-purpose ranges (loopback, link-local, multicast, ...), the
 * node's own addresses, its gateways, and the XDP allowlist (asked through
 * a callback, the map being the truth) are refused: the decision is
 * logged, counted and kept as an alert (action "refused", with the list
 * that matched). A pod of this node (asked through another callback) is
 * blocked only with response.endpoints: block; by default its decision is
 * an alert: the block would quarantine it (tc_endpoint applies the
 * blocklist to its every flow).
 *
 * Pure policy: no maps are written here (actions.h does that) and the
 * time is the caller's.
 */
#ifndef ZT_RESPOND_H
#define ZT_RESPOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util.h"
#include "detect/detect.h"

enum zt_resp_mode {
	ZT_RESP_OFF = 0,
	ZT_RESP_ALERT = 1,
	ZT_RESP_BLOCK = 2,
};

const char *zt_resp_mode_name(unsigned int m);
int zt_resp_mode_parse(const char *s, enum zt_resp_mode *out);

enum zt_resp_act {
	ZT_RA_NONE = 0, /* mode off: nothing, not even an alert */
	ZT_RA_ALERT, /* an alert (incident) only */
	ZT_RA_BLOCK, /* block addr for ttl_ns */
	ZT_RA_ALREADY, /* blocked by an earlier decision, still in force */
	ZT_RA_REFUSED, /* would block, but the address is never to be blocked */
};

const char *zt_resp_act_name(unsigned int a);

struct zt_resp_action {
	uint8_t act; /* enum zt_resp_act */
	uint8_t mode; /* the effective mode */
	uint8_t family;
	uint8_t addr[16]; /* what is (or would have been) blocked */
	uint64_t ttl_ns; /* ZT_RA_BLOCK */
	uint64_t until_ns; /* ZT_RA_BLOCK, ZT_RA_ALREADY: end of the block (decision's clock) */
	uint32_t offence; /* 1 for the first block of this address, 2 for the next, ... */
	const char *why; /* ZT_RA_REFUSED: the list that matched; else a short reason */
};

/* Whether an address is on the XDP allowlist (1), not (0); the caller's map lookup. */
typedef int (*zt_allowlisted_fn)(void *ctx, uint8_t family, const uint8_t *addr);

struct zt_respond_cfg {
	uint8_t mode; /* response.mode */
	uint8_t detector_mode[ZT_THREAT_MAX]; /* response.detectors.* */
	uint8_t endpoints_mode; /* response.endpoints: ZT_RESP_ALERT or ZT_RESP_BLOCK */
	uint64_t block_ttl_ns; /* default 10 min */
	uint64_t max_ttl_ns; /* default 24 h */
	const struct zt_cidr *protected_cidrs; /* detection.protected (copied) */
	size_t n_protected;
	uint32_t max_offenders; /* addresses remembered, default 65536 */
};

struct zt_respond;

struct zt_respond_stats {
	uint64_t decisions[ZT_THREAT_MAX];
	uint64_t blocks[ZT_THREAT_MAX];
	uint64_t alerts[ZT_THREAT_MAX];
	uint64_t already[ZT_THREAT_MAX];
	uint64_t refused_protected, refused_special, refused_node, refused_gateway,
		refused_allowlist, refused_other;
	uint64_t offenders;
};

void zt_respond_cfg_defaults(struct zt_respond_cfg *c);
int zt_respond_new(const struct zt_respond_cfg *c, zt_allowlisted_fn allowlisted, void *ctx,
		   struct zt_respond **out);
/*
 * Optional, with the same ctx as allowlisted: whether an address is one of
 * this node's endpoints (a pod here): 1 yes, 0 no. From any thread.
 */
void zt_respond_set_endpoint_fn(struct zt_respond *r, zt_allowlisted_fn endpoint);
void zt_respond_free(struct zt_respond *r);

/*
 * The node's own addresses and its gateways (refreshed by the caller,
 * e.g. from zt_respond_read_node() every few seconds). Copied.
 */
int zt_respond_set_node(struct zt_respond *r, const struct zt_cidr *addrs, size_t n_addrs,
			const struct zt_cidr *gateways, size_t n_gw);
/* Reads this namespace's addresses (getifaddrs) and gateways (/proc/net/route, ipv6_route). */
int zt_respond_read_node(struct zt_cidr **addrs, size_t *n_addrs, struct zt_cidr **gw,
			 size_t *n_gw);

/*
 * The never-block lists that are CIDRs (protected, special-purpose, the
 * node's addresses and gateways; the allowlist and endpoints are asked
 * apart) in one array, *out (free it); -ENOMEM.
 */
int zt_respond_never_cidrs(const struct zt_respond *r, struct zt_cidr **out, size_t *n);

/* Whether addr must never be blocked: NULL, or the name of the list it is on. */
const char *zt_respond_never(struct zt_respond *r, uint8_t family, const uint8_t *addr);

/* The action for a decision at now_ns (CLOCK_BOOTTIME); records a block it decides. */
void zt_respond_decide(struct zt_respond *r, const struct zt_decision *d, uint64_t now_ns,
		       struct zt_resp_action *a);
/* The block the caller could not write did not happen: forget it (no escalation from it). */
void zt_respond_undo(struct zt_respond *r, const struct zt_resp_action *a);
/* Forgets offences that ended long ago. */
void zt_respond_expire(struct zt_respond *r, uint64_t now_ns);
void zt_respond_get_stats(const struct zt_respond *r, struct zt_respond_stats *st);
enum zt_resp_mode zt_respond_mode(const struct zt_respond *r, enum zt_threat t);

#endif
