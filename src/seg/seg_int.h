/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The segmentation subsystem's own state, shared by its files: seg.c (policy
 * store, compile and apply, endpoints, watchers), seg_api.c (the API
 * operations) and seg_verdicts.c (verdict events from the ring buffer and
 * the names they carry). Not for use outside src/seg/.
 */
#ifndef ZT_SEG_INT_H
#define ZT_SEG_INT_H

#include <net/if.h>
#include <pthread.h>

#include "seg/endpoint.h"
#include "seg/polcompile.h"
#include "seg/policy.h"
#include "seg/seg.h"

#define GENS_KEPT 4 /* generations whose rule tables events may still name */
#define FLOW_RING 16384 /* recent verdicts for `ztctl flows` */
#define RELOAD_DELAY_NS (5ULL * 1000000ULL) /* coalesce a burst of file events */
#define MAX_HOST_ADDRS 256
#define LOG_VERDICTS_PER_S 200

/*
 * A policy set shared by the generations compiled from it. A union (the
 * files and the advisory feeds) borrows its policies from its parts and
 * holds a reference on each.
 */
struct pset {
	struct zt_policy_set *set;
	unsigned int refs;
	struct pset **parts; /* NULL: set owns its policies */
	size_t n_parts;
};

/* A ztagent.io/ annotation of a namespace (pod "") or an endpoint (seg_gen.c). */
struct seg_ann {
	char *ns, *pod, *key, *value;
};

/* The advisories of one feed (format: policy) in the store. */
struct feed_pol {
	char name[ZT_FEED_NAME_MAX];
	struct pset *ps;
	char sha[65];
};

/*
 * A pod of another node (the Kubernetes watch): no endpoint here, but its
 * addresses enter the ipcache with its label identity (seg_k8s.c).
 */
struct seg_remote {
	char *ns;
	char *qname; /* "namespace/name" */
	struct zt_ep_meta meta;
	struct zt_ep_addr addrs[ZT_SEG_REMOTE_MAX_ADDRS];
	size_t n_addrs;
	uint32_t identity;
	struct zt_eval_endpoint ev;
};

struct gen_rec {
	uint32_t gen;
	struct pset *ps;
	struct zt_compiled *c;
};

struct flow_rec {
	uint64_t seq;
	uint64_t unix_ms;
	uint8_t verdict; /* 0 allowed, 1 denied, 2 audit */
	uint8_t reason; /* enum zt_reason */
	uint8_t dir; /* enum zt_dir of the local endpoint */
	uint8_t proto;
	uint8_t family;
	uint8_t revoked;
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
	uint32_t src_id;
	uint32_t dst_id;
	char src_wl[ZT_EP_NAME_MAX + 72];
	char dst_wl[ZT_EP_NAME_MAX + 72];
	char rule[256];
	char ifname[IF_NAMESIZE];
};

struct zt_seg {
	const struct zt_config *cfg;
	struct zt_loop *loop;
	struct zt_datapath *dp;
	struct zt_identities *ids;
	struct zt_ep_table eps;
	struct zt_polapply *applier;
	struct pset *cur; /* the policy set in force (NULL: none valid yet): dir + advisories */
	struct pset *dir; /* the last good set of policy.dir (NULL: none valid yet) */
	struct feed_pol fpol[ZT_MAX_FEEDS + 1]; /* the feeds' advisories, and ZT_SEG_K8S_SOURCE's */
	size_t n_fpol;
	struct zt_ep_addr host[MAX_HOST_ADDRS];
	size_t n_host;
	char state_path[4096 + 32];
	int ino_fd, ino_wd, reload_tfd, nl_fd, gc_tfd;
	char last_reject[1024];
	zt_seg_audit_fn audit;
	void *audit_ctx;
	zt_seg_violation_fn violation;
	void *violation_ctx;
	void (*observe)(void *ctx, double s);
	void *observe_ctx;
	zt_seg_pod_lookup_fn pod_lookup; /* the Kubernetes watch's pod cache, or NULL */
	void *pod_lookup_ctx;
	char cni_spool_dir[4096 + 32]; /* state_dir/cni-pending */
	/* Pods of other nodes (zt_seg_set_remote_pods): changed under lock, read there by verdict naming. */
	struct seg_remote *remote;
	size_t n_remote;
	/* seg_gen.c: annotations and the policies generated from them (a part of cur). */
	struct seg_ann *ann;
	size_t n_ann;
	struct pset *gen; /* NULL: nothing generated */
	char gen_problems[2048];
	char ann_path[4096 + 32]; /* state_dir/annotations */

	/* Shared with the ring-buffer thread. */
	pthread_mutex_t lock;
	struct gen_rec gens[GENS_KEPT]; /* newest first */
	struct flow_rec *ring;
	uint64_t next_seq;
	struct zt_seg_stats st;
	uint64_t log_window_ns, log_in_window, log_suppressed;
	uint64_t change_ns; /* first inotify event not yet published (0: none) */
	struct zt_flowexp *fx;
	zt_flow_sink_fn flow_sink;
	void *flow_sink_ctx;
};

extern const char *const seg_verdict_names[3];

/* seg.c */
void seg_audit(struct zt_seg *s, const char *kind, const char *subject, const char *detail);
void seg_audit_text(struct zt_seg *s, const char *kind, const char *subject, const char *key,
		    const char *text);
int seg_reload(struct zt_seg *s, const char *why);
/* Recompiles the set in force (-EAGAIN: no valid policy loaded yet). */
int seg_republish(struct zt_seg *s, const char *why, char *err, size_t errlen);
int seg_endpoint_add(struct zt_seg *s, struct zt_ep *ep, char *err, size_t errlen);
void seg_endpoint_remove(struct zt_seg *s, struct zt_ep *ep, const char *why);
/*
 * New labels, namespace labels, ports and service account for ep (taking
 * m's content on success; m is freed either way). A pending endpoint gets
 * its label identity. 0 (also when nothing changed), or -errno with err;
 * then ep is as it was and the policy in force unchanged.
 */
int seg_endpoint_set_meta(struct zt_seg *s, struct zt_ep *ep, struct zt_ep_meta *m, const char *why,
			  char *err, size_t errlen);
/* Applies the CNI DELs queued in cni_spool_dir while the daemon was down. */
void seg_cni_spool_apply(struct zt_seg *s);

/* seg_k8s.c */
/* Remote pods as compiler endpoints (ep_id 0) into out; those sharing an address with a local endpoint are left out. */
size_t seg_remote_polc(const struct zt_seg *s, struct zt_polc_endpoint *out);
void seg_remote_free_all(struct zt_seg *s);
/* With kubernetes.enabled, before the first generation: the objects zt_seg_k8s_cache_save kept. */
void seg_k8s_cache_load(struct zt_seg *s);
/* The store's building blocks, for seg_gen.c. */
struct pset *pset_new(struct zt_policy_set *set);
void pset_put(struct pset *ps);
struct pset *store_union(struct zt_seg *s, struct pset *dir, long over, struct pset *over_ps,
			 char *err, size_t errlen);
int publish(struct zt_seg *s, struct pset *ps, const char *why, char *err, size_t errlen);

/* seg_gen.c */
int seg_gen_init(struct zt_seg *s, char *err, size_t errlen);
/* Regenerates from the annotations and endpoints; publishes when it changed. Logs its errors. */
int seg_gen_refresh(struct zt_seg *s, const char *why);
/* Sets (value) or removes (value NULL) an annotation, checked; then refreshes. */
int seg_ann_set(struct zt_seg *s, const char *ns, const char *pod, const char *key,
		const char *value, const char *why, char *err, size_t errlen);
void seg_ann_forget_pod(struct zt_seg *s, const char *ns, const char *pod);
void seg_ann_from_pod(struct zt_seg *s, const struct zt_pod_meta *m);
/* Only m's namespace annotations (m->ns_annotations_known must be set). */
void seg_ann_from_ns(struct zt_seg *s, const struct zt_pod_meta *m);
void seg_ann_clear(struct zt_seg *s);
size_t seg_ann_count(const struct zt_seg *s);

/* seg_verdicts.c */
void seg_on_policy_event(void *ctx, const void *rec, size_t len);
bool seg_fx_ifname(void *ctx, int ifindex, char *buf, size_t n);
void seg_fx_workload(void *ctx, uint32_t identity, uint32_t ep_id, char *buf, size_t n);
void seg_fx_rule(void *ctx, uint32_t gen, uint32_t rule_id, uint8_t reason, char *buf, size_t n);

#endif
