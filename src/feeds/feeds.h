/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Threat-intelligence feeds in the daemon: the fetcher's worker parses each
 * new version (zt_feed_load, or the policy parser for format: policy), the
 * loop applies it (apply.h, in bounded steps: the loop is never held for
 * more than a step), per-feed status for `ztctl feeds`, metrics, audit
 * events for every applied or refused version, and the IOC hits that
 * tc_endpoint reports, turned into incidents.
 *
 *   zt_feeds_init(&f, &opts, err, sizeof(err));
 *   zt_feeds_register_api(f, api); zt_feeds_register_events(f, ev);
 *   zt_feeds_register_metrics(f, metrics);
 *   zt_feeds_stop(f);
 */
#ifndef ZT_FEEDS_FEEDS_H
#define ZT_FEEDS_FEEDS_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/api.h"
#include "agent/config.h"
#include "agent/loop.h"
#include "agent/metrics.h"
#include "guard/blocklist.h"
#include "guard/datapath.h"
#include "guard/events.h"

struct zt_feeds;

/* A pod's connection to a feed-listed destination: what an incident needs. */
struct zt_feeds_incident {
	const char *pod; /* namespace/name of the endpoint ("endpoint:N" when unknown) */
	const char *ioc; /* the listed prefix that matched, "198.51.100.7/32" */
	const char *feed; /* its name */
	const char *reference; /* the feed's own: malware family, STIX id, MISP event, SBL id; "" */
	const char *action; /* "block" or "alert" */
	bool dropped;
	const char *protocol; /* "TCP", ... */
	const char *src, *dst; /* addresses */
	uint16_t sport, dport;
	const char *interface; /* the pod's host-side veth */
	uint64_t folded; /* earlier hits of the same pod, IOC and feed folded into this one */
	const char *detail_json; /* all of the above as one JSON object */
	/*
	 * Every hit comes here; repeat: one of the same pod, IOC and feed came
	 * less than a minute ago (it was logged then; folded counts these).
	 */
	bool repeat;
	uint8_t family; /* 4 or 6 */
	uint8_t proto_nr; /* IPPROTO_* */
	const uint8_t *src_addr, *dst_addr; /* 16 bytes each: the pod's and the destination's */
};

struct zt_feeds_hooks {
	/* Audit events: "feed.apply", "feed.refuse", "feed.policy" (detail: a JSON object). */
	void (*audit)(void *ctx, const char *kind, const char *subject, const char *detail);
	void *audit_ctx;
	/* IOC hits (on the ring-buffer thread): every one, repeat set on those of the same minute. */
	void (*incident)(void *ctx, const struct zt_feeds_incident *inc);
	void *incident_ctx;
	/* The name of the endpoint ep_id (any thread); NULL: "endpoint:N". */
	void (*name_endpoint)(void *ctx, uint32_t ep_id, char *buf, size_t n);
	void *name_ctx;
	/*
	 * format: policy. parse runs on the fetcher's thread for each file of
	 * a version (name "feed:NAME/FILE"); one refusal refuses the version.
	 * apply runs on the loop and takes the sets whatever it returns; a
	 * refusal keeps the feed's previous sets in force. n == 0 withdraws.
	 */
	int (*policy_parse)(void *ctx, const char *name, const char *buf, size_t len, void **set,
			    size_t *n_policies, char *err, size_t errlen);
	void (*policy_free)(void *ctx, void *set);
	int (*policy_apply)(void *ctx, const char *feed, void **sets, size_t n, const char *sha256,
			    char *err, size_t errlen);
	void *policy_ctx;
};

struct zt_feeds_opts {
	const struct zt_config *cfg;
	struct zt_loop *loop;
	struct zt_datapath *dp; /* IOC maps (tc_endpoint) and the allowlist; NULL: none */
	struct zt_blocklist *bl; /* inbound; NULL: none */
	struct zt_feeds_hooks hooks;
	uint64_t step_ns; /* the loop's share per apply step; 0: 30 ms */
};

/* Starts fetching cfg->feeds (none: *out stays NULL, 0). */
int zt_feeds_init(struct zt_feeds **out, const struct zt_feeds_opts *o, char *err, size_t errlen);
/* feeds.list, feeds.show, feeds.refresh; and block.list's "feed" filter. */
int zt_feeds_register_api(struct zt_feeds *f, struct zt_api *api);
/* ZT_EV_IOC records (before zt_events_start). */
int zt_feeds_register_events(struct zt_feeds *f, struct zt_events *ev);
/* ztagent_feed_* and ztagent_ioc_flows_total. */
int zt_feeds_register_metrics(struct zt_feeds *f, struct zt_metrics *m);
/* Stops the fetcher; what is in the kernel stays. NULL is fine. */
void zt_feeds_stop(struct zt_feeds *f);
/*
 * The version in force of each feed as a JSON object, {"NAME": {"sha256":
 * "...", "applied_unix": N}, ...} ("{}" without feeds), into buf. Any
 * thread. 0, or -ENOSPC when buf is too small.
 */
int zt_feeds_versions_json(struct zt_feeds *f, char *buf, size_t n);

#endif
