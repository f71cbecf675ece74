/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Micro-segmentation, the daemon's side: endpoints (registered through the
 * API, attached with tc_endpoint, saved in state_dir, removed when their
 * interface goes), identities, the policy store (policy.dir, watched with
 * inotify), compiling and applying policy generations, and the verdict
 * stream (ZT_EV_POLICY events: logged, counted, kept for `ztctl flows`).
 *
 * Everything runs on the daemon's loop thread, except the event handler,
 * which runs on the ring-buffer thread and shares only what `lock` guards.
 */
#ifndef ZT_SEG_H
#define ZT_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "agent/api.h"
#include "agent/config.h"
#include "guard/datapath.h"
#include "guard/events.h"
#include "records/flowexp.h"
#include "agent/loop.h"
#include "seg/endpoint.h"

struct zt_seg;

struct zt_seg_stats {
	uint64_t gen; /* published policy generation */
	uint64_t policies; /* in force */
	uint64_t endpoints;
	uint64_t applies; /* generations published by this process */
	uint64_t rejects; /* policy loads refused (invalid files) */
	uint64_t verdicts[3]; /* new flows: allowed, denied, audit */
	uint64_t revoked; /* established flows stopped by a policy change */
	uint64_t last_apply_ns; /* compile + apply time of the last generation */
	uint64_t conntrack_entries; /* as the sweep's last rotation counted them */
};

/* Policy change hook (audit trail): kind "policy.apply" | "policy.reject" | "endpoint.add" | ... */
typedef void (*zt_seg_audit_fn)(void *ctx, const char *kind, const char *subject,
				const char *detail);

/*
 * A policy violation (a denied flow, or one an audit-mode policy would
 * deny), as the verdict stream sees its first packet. Texts are valid for
 * the call only.
 */
struct zt_seg_violation {
	uint8_t verdict; /* 1 denied, 2 audit */
	uint8_t reason; /* enum zt_reason */
	uint8_t dir; /* enum zt_dir of the local endpoint */
	uint8_t proto;
	uint8_t family; /* 4 | 6 */
	uint8_t revoked;
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16];
	uint32_t src_id, dst_id;
	uint64_t ts_ns; /* the event's time (CLOCK_BOOTTIME) */
	const char *verdict_name, *reason_name, *protocol_name;
	const char *rule, *src_wl, *dst_wl, *ifname;
};

/*
 * Where violations go instead of one audit event each (e.g. an aggregator
 * per source, destination, port and rule). Runs on the ring-buffer thread.
 */
typedef void (*zt_seg_violation_fn)(void *ctx, const struct zt_seg_violation *v);

int zt_seg_init(struct zt_seg **out, const struct zt_config *cfg, struct zt_loop *loop,
		struct zt_datapath *dp, char *err, size_t errlen);
/* Registers the ZT_EV_POLICY handler (before zt_events_start). */
int zt_seg_register_events(struct zt_seg *s, struct zt_events *ev);
int zt_seg_register_api(struct zt_seg *s, struct zt_api *api);
void zt_seg_set_audit(struct zt_seg *s, zt_seg_audit_fn fn, void *ctx);
/* NULL (the default): every violation is its own "policy.violation" audit event. */
void zt_seg_set_violation_sink(struct zt_seg *s, zt_seg_violation_fn fn, void *ctx);
/* Where flow records go (the database writer); NULL: entries age out unrecorded. */
void zt_seg_set_flow_sink(struct zt_seg *s, zt_flow_sink_fn fn, void *ctx);
/* The sink runs on the exporter's worker, prep on the loop first (flowexp.h). 0 or -errno. */
int zt_seg_flow_worker(struct zt_seg *s, zt_flowexp_prep_fn prep, void *ctx);
/* Observer of apply latencies (seconds), e.g. a metrics histogram. */
void zt_seg_set_apply_observer(struct zt_seg *s, void (*fn)(void *ctx, double seconds), void *ctx);
void zt_seg_get_stats(struct zt_seg *s, struct zt_seg_stats *out);

/*
 * Kubernetes metadata for the endpoint of a pod, joined by namespace and
 * name, and by UID when both sides know it (a pod deleted and created again
 * under its name is another pod). The endpoint takes the labels, namespace
 * labels, named ports and service account; a pending endpoint (registered
 * by the CNI plugin before its labels were known) moves to its label
 * identity. The generation that knows the new identity is published before
 * the endpoints map gives it to the interface, and it still holds the
 * entries of the old one (ZT_ID_PENDING, or the old label identity), so no
 * packet is judged by a generation without entries for its identity. On the
 * loop thread. 0 (nothing to do counts), -ENOENT (no endpoint of that pod
 * on this node: the pod's sandbox is not set up yet, or elsewhere), -EINVAL
 * (bad metadata), or another -errno; err says why. On failure the endpoint
 * and the policy in force are as they were.
 */
int zt_seg_endpoint_set_pod_meta(struct zt_seg *s, const struct zt_pod_meta *m, char *err,
				 size_t errlen);

/*
 * Where the CNI plugin's registrations look a pod's metadata up (the
 * Kubernetes watch's cache): called on the loop thread with the pod's
 * namespace, name and UID ("" when the runtime gave none); returns 0 and
 * fills out (strings valid until the call returns) when it knows the pod,
 * -ENOENT when not. A pod the watch already knows then starts with its
 * labels, never pending. NULL: every CNI endpoint starts pending.
 */
typedef int (*zt_seg_pod_lookup_fn)(void *ctx, const char *ns, const char *name, const char *uid,
				    struct zt_pod_meta *out);
void zt_seg_set_pod_lookup(struct zt_seg *s, zt_seg_pod_lookup_fn fn, void *ctx);
/* The name ("namespace/name") of endpoint ep_id into buf, "" when unknown. Any thread. */
void zt_seg_endpoint_name(struct zt_seg *s, uint32_t ep_id, char *buf, size_t n);

struct zt_policy_set;
/*
 * The advisories of feed `feed` (format: policy), as sets parsed by
 * zt_policy_parse_buf() under names "feed:FEED/FILE": the store compiles the
 * union of policy.dir and every feed's sets. Takes the sets whatever it
 * returns. A version that does not compile with the rest, or names a
 * policy (kind, namespace, name) another source has, is refused: -EINVAL
 * with err saying why, the feed's previous advisories stay. n == 0
 * withdraws them. Each advisory applied or withdrawn is audited
 * (policy.advisory.apply / policy.advisory.withdraw, subject its name).
 * Until policy.dir has loaded once, the advisories wait (0 is returned).
 */
int zt_seg_set_feed_policies(struct zt_seg *s, const char *feed, struct zt_policy_set **sets,
			     size_t n, const char *sha256, char *err, size_t errlen);

/*
 * The Kubernetes policy objects (NetworkPolicy, ZeroTrustPolicy), as sets
 * parsed by zt_policy_parse_buf() under names "k8s:Kind/namespace/name":
 * one more source beside policy.dir and the feeds, with the same rules as
 * zt_seg_set_feed_policies (a version that does not compile with the rest
 * is refused and the previous stays; n == 0 withdraws them). Audited as
 * policy.k8s.apply / policy.k8s.withdraw.
 */
#define ZT_SEG_K8S_SOURCE "kubernetes"
int zt_seg_set_k8s_policies(struct zt_seg *s, struct zt_policy_set **sets, size_t n,
			    const char *sha256, char *err, size_t errlen);
/*
 * Keeps the objects just applied (name "k8s:Kind/ns/name", JSON text) in
 * state_dir/k8s-policies, written atomically; a restart with
 * kubernetes.enabled has them in its first generation, until the watches
 * have listed again. 0 or -errno.
 */
int zt_seg_k8s_cache_save(struct zt_seg *s, const char *const *names, const char *const *docs,
			  const size_t *lens, size_t n);

/*
 * The pods of other nodes, as the Kubernetes watch sees them: each one's
 * addresses enter the ipcache with the label identity of its namespace,
 * labels and namespace labels, so that selectors match traffic from and to
 * them (without it, their addresses are the world). Replaces the whole
 * set; a pod whose metadata does not check is left out (logged). A pod
 * sharing an address with a local endpoint is left out while it does.
 * Recompiles and publishes; on failure (-errno, err) the previous set
 * stays. On the loop thread.
 */
#define ZT_SEG_REMOTE_MAX_ADDRS 2
struct zt_seg_remote_pod {
	struct zt_pod_meta meta; /* ns, name, labels, namespace labels, ports */
	struct zt_ep_addr addrs[ZT_SEG_REMOTE_MAX_ADDRS];
	size_t n_addrs;
};
int zt_seg_set_remote_pods(struct zt_seg *s, const struct zt_seg_remote_pod *v, size_t n, char *err,
			   size_t errlen);
size_t zt_seg_remote_count(struct zt_seg *s);

/*
 * Drift (guard/drift.h): every endpoint's tc filters, the endpoints map and
 * the policy and ipcache maps against what this agent wrote, each
 * difference reported and (when h->may allows) repaired. Loop thread.
 */
struct zt_drift_hooks;
void zt_seg_drift_check(struct zt_seg *s, const struct zt_drift_hooks *h);
/*
 * One key of map (a pin name: endpoints, policy, pol_isolation,
 * ipcache_v4/v6) that another process just wrote (the drift watch), made
 * what segmentation wrote. -ENOENT: not one of these maps. Loop thread.
 */
int zt_seg_drift_check_key(struct zt_seg *s, const char *map, const uint8_t *key, size_t ksz,
			   const struct zt_drift_hooks *h);
/*
 * After repairs of the endpoints, policy or ipcache maps: the policy in
 * force published again, so that tc_endpoint evaluates every established
 * flow once more. A flow evaluated while an entry was wrong keeps that
 * verdict otherwise (it is evaluated again only when a generation moves),
 * like a connection a forged allow entry let in. -EAGAIN: no valid policy
 * is loaded (err says why). Loop thread.
 */
int zt_seg_reevaluate(struct zt_seg *s, const char *why, char *err, size_t errlen);

/*
 * The policies in force in canonical form (seg/polcanon.h) and the
 * generation they were published in. Loop thread. -ENOENT: no valid policy
 * yet (out is empty), -ENOMEM.
 */
struct zt_polcanon_set;
int zt_seg_policy_canon(struct zt_seg *s, struct zt_polcanon_set *out, uint64_t *gen);

/*
 * A namespace's metadata.annotations as the Kubernetes watch knows them
 * (only ztagent.io/isolation is used; see seg/polgen.h): replaces what was
 * stored for the namespace and recomputes the generated policies. A bad
 * value is logged and treated as absent. On the loop thread.
 */
void zt_seg_set_namespace_annotations(struct zt_seg *s, const char *ns,
				      const struct zt_label *annotations, size_t n);

/* Stops watching; programs, pins and the state file stay. NULL is fine. */
/* One address of a local workload and the service account the cluster gives it (mTLS). */
struct zt_seg_workload {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint32_t ep_id;
	char ns[ZT_EP_NAME_MAX + 1];
	char sa[ZT_EP_NAME_MAX + 1]; /* "default" when the endpoint has none */
};

/* Up to max rows into out (loop thread); returns how many there are. */
size_t zt_seg_workloads(struct zt_seg *s, struct zt_seg_workload *out, size_t max);

/*
 * A serviceAccounts peer of an allow rule in force that applies to a local
 * endpoint: the identities its mTLS peer may prove for those ports.
 */
struct zt_seg_sa_rule {
	uint32_t ep_id;
	uint8_t dir; /* enum zt_pol_dir: ingress (peer = client) or egress (peer = server) */
	uint8_t proto; /* 0: every protocol */
	uint16_t lo, hi; /* port range */
	char sa[2 * ZT_EP_NAME_MAX + 2]; /* "namespace/name" */
};

/* Up to max rows into out (loop thread); returns how many there are. */
size_t zt_seg_sa_rules(struct zt_seg *s, struct zt_seg_sa_rule *out, size_t max);

void zt_seg_stop(struct zt_seg *s);

/*
 * For `ztagent --detach` (and the detach op): removes tc_endpoint from every
 * endpoint in the state file, and the state file. Works without a daemon.
 */
int zt_seg_detach_all(const struct zt_config *cfg, char *err, size_t errlen);

#endif
