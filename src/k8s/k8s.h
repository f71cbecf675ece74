/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The Kubernetes watch client: list-then-watch of Pods, Namespaces,
 * NetworkPolicies, ZeroTrustPolicies and Nodes over HTTPS (libcurl, json-c), with
 * a cache per resource on the caller's thread.
 *
 *   struct zt_k8s_settings s = { .kubeconfig = "", .node_name = "node-1" };
 *   zt_k8s_client_new(&s, &c, err, sizeof(err));     in-cluster or kubeconfig
 *   struct zt_k8s_watch_opts o = { .kind = ZT_K8S_POD, .h = &pod_handlers, .ctx = d };
 *   o.field_selector = "spec.nodeName=node-1";        only this node's pods (or NULL: all)
 *   zt_k8s_watch_start(c, &o, &w);
 *   zt_loop_add(loop, zt_k8s_watch_fd(w), EPOLLIN, on_k8s, w);
 *     on_k8s(): zt_k8s_watch_dispatch(w) -> added/updated/deleted/synced/error handlers
 *   zt_k8s_watch_stop(w); zt_k8s_client_free(c);
 *
 * Threads. Each watch has one worker thread that does the HTTP (LIST pages,
 * then a WATCH stream, again and again), decodes objects and reduces them
 * to what the agent needs; the caller's thread only dispatches. Reduced
 * objects travel through a bounded queue signalled by an eventfd; the
 * cache and every handler live on the caller's thread, so handlers need no
 * locks and never run during the worker's network waits.
 *
 * Protocol (as client-go's reflector): LIST with limit/continue, the list's
 * metadata.resourceVersion, then WATCH with watch=1, resourceVersion,
 * allowWatchBookmarks=true and timeoutSeconds. A watch that ends is resumed
 * from the last resourceVersion seen (events and bookmarks). 410 Gone (the
 * HTTP status, or an ERROR event whose Status has code 410) or an expired
 * continue token means that version is gone: the worker lists again, and
 * the caller's cache is reconciled with the new list (objects not in it are
 * deleted, changed ones updated) when it completes. Errors back off
 * exponentially (backoff_min to backoff_max) with jitter (each delay drawn
 * in [d/2, d]).
 *
 * Credentials. The bearer token file is read again before every request, so
 * a rotated service-account token (the kubelet rewrites it) is used from
 * the next request on, a 401 included. In-cluster: the server is
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the CA and
 * token are /var/run/secrets/kubernetes.io/serviceaccount/{ca.crt,token}.
 * A kubeconfig: its current-context's cluster (server,
 * certificate-authority or certificate-authority-data) and user (token,
 * tokenFile, or client-certificate(-data) + client-key(-data)); relative
 * paths are relative to the kubeconfig's directory, as kubectl reads them.
 * Plain http, insecure-skip-tls-verify, exec and auth-provider plugins are
 * refused: the agent trusts only a server it can verify.
 *
 * Overflow. The queue holds at most queue_max events. LIST items wait for
 * room (a list is finite). A WATCH event that finds the queue full is
 * dropped with the watch: the worker waits until the caller has drained
 * half the queue and lists again (counted in overflows); the relist brings
 * the cache to the current state, whatever the dropped events were.
 *
 * The process must ignore SIGPIPE (the daemon does).
 */
#ifndef ZT_K8S_H
#define ZT_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/util.h"

#define ZT_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define ZT_K8S_MAX_POD_IPS 2 /* the API allows one per family */
#define ZT_K8S_MAX_LABELS 256
#define ZT_K8S_MAX_ANNOTATIONS 16 /* ztagent.io/ ones kept of an object */
#define ZT_K8S_MAX_PORTS 1024 /* named container ports of one pod */
#define ZT_K8S_MAX_STRING 4096 /* name, namespace, uid, label key or value, ... */
#define ZT_K8S_MAX_NODE_CIDRS 2 /* spec.podCIDRs: the API allows one per family */
#define ZT_K8S_MAX_NODE_ADDRS 4 /* status.addresses of type InternalIP kept */

/* ---- connection ------------------------------------------------------- */

/* What the daemon's configuration says; every field may be NULL or "". */
struct zt_k8s_settings {
	const char *kubeconfig; /* a kubeconfig file; empty: in-cluster */
	const char *node_name; /* this node (for the caller's pod field selector) */
	/* In-cluster only, each overriding its default (tests, odd set-ups): */
	const char *server; /* "https://host:port" */
	const char *ca_file;
	const char *token_file;
};

struct zt_k8s_client;

/*
 * Reads the configuration (the kubeconfig, or the in-cluster environment
 * and files) and checks it can be used: the token file is readable, the CA
 * file exists. No network. 0 or -errno with err saying what and where.
 */
int zt_k8s_client_new(const struct zt_k8s_settings *s, struct zt_k8s_client **out, char *err,
		      size_t errlen);
/* Watches keep the client alive: free it whenever; NULL is fine. */
void zt_k8s_client_free(struct zt_k8s_client *c);
const char *zt_k8s_client_server(const struct zt_k8s_client *c); /* "https://10.96.0.1:443" */
const char *zt_k8s_client_node(const struct zt_k8s_client *c); /* settings' node_name or "" */
/* "in-cluster" or "kubeconfig PATH context NAME", for logs. */
const char *zt_k8s_client_source(const struct zt_k8s_client *c);

/* ---- objects ---------------------------------------------------------- */

enum zt_k8s_kind {
	ZT_K8S_POD = 0, /* v1 pods, cluster-wide */
	ZT_K8S_NAMESPACE, /* v1 namespaces */
	ZT_K8S_NETWORK_POLICY, /* networking.k8s.io/v1 networkpolicies */
	ZT_K8S_ZT_POLICY, /* ztagent.io/v1 zerotrustpolicies (the CRD) */
	ZT_K8S_NODE, /* v1 nodes: pod CIDRs and addresses (the mTLS peers) */
	ZT_K8S_KIND_MAX,
};

enum zt_k8s_pod_phase {
	ZT_K8S_PHASE_UNKNOWN = 0, /* absent or unknown */
	ZT_K8S_PHASE_PENDING,
	ZT_K8S_PHASE_RUNNING,
	ZT_K8S_PHASE_SUCCEEDED,
	ZT_K8S_PHASE_FAILED,
};

struct zt_k8s_label {
	const char *key;
	const char *value;
};

/* A named container port (spec.containers[].ports[] with a name). */
struct zt_k8s_port {
	const char *name;
	uint16_t port;
	uint8_t protocol; /* IPPROTO_TCP (the default), IPPROTO_UDP or IPPROTO_SCTP */
};

struct zt_k8s_pod {
	const char *node; /* spec.nodeName; "" while unscheduled */
	const char *service_account; /* spec.serviceAccountName; "" if absent */
	enum zt_k8s_pod_phase phase;
	/*
	 * hostNetwork pods share the node's addresses: they are the host, not
	 * a workload with an address of its own (no endpoint, no ipcache entry).
	 */
	bool host_network;
	bool terminating; /* metadata.deletionTimestamp is set */
	/* status.podIPs (or status.podIP), host prefixes; n_ips 0 until assigned. */
	struct zt_cidr ips[ZT_K8S_MAX_POD_IPS];
	size_t n_ips;
	const struct zt_k8s_port *ports; /* in container, then port order */
	size_t n_ports;
};

struct zt_k8s_node {
	/* spec.podCIDRs (or spec.podCIDR), network prefixes, in the API's order. */
	struct zt_cidr pod_cidrs[ZT_K8S_MAX_NODE_CIDRS];
	size_t n_pod_cidrs;
	/* status.addresses of type InternalIP, host prefixes, in the API's order. */
	struct zt_cidr internal_ips[ZT_K8S_MAX_NODE_ADDRS];
	size_t n_internal_ips;
};

struct zt_k8s_object {
	enum zt_k8s_kind kind;
	const char *namespace; /* "" for a Namespace */
	const char *name;
	const char *uid;
	const char *resource_version;
	const struct zt_k8s_label *labels; /* metadata.labels, sorted by key */
	size_t n_labels;
	/* metadata.annotations with keys ztagent.io/..., sorted by key (seg/polgen.h) */
	const struct zt_k8s_label *annotations;
	size_t n_annotations;
	struct zt_k8s_pod pod; /* ZT_K8S_POD */
	struct zt_k8s_node node; /* ZT_K8S_NODE */
	/*
	 * Policies: the object as one JSON document (apiVersion, kind,
	 * metadata {name, namespace, labels}, spec), NUL-terminated, for
	 * zt_policy_parse_buf() (YAML is a superset of JSON). Server-side
	 * metadata (uid, resourceVersion, managedFields, annotations) is left
	 * out: the parser refuses fields it does not know.
	 */
	const char *policy_json;
	size_t policy_len;
};

const char *zt_k8s_kind_name(enum zt_k8s_kind k); /* "Pod", "NetworkPolicy", ... */
const char *zt_k8s_phase_name(enum zt_k8s_pod_phase p); /* "Running", ... */
const char *zt_k8s_label_get(const struct zt_k8s_object *o, const char *key); /* NULL: absent */
/* "NetworkPolicy prod/allow-web", "Namespace prod": where a file path is shown today. */
int zt_k8s_object_describe(const struct zt_k8s_object *o, char *buf, size_t n);
/* Same content (what the agent uses), the resourceVersion aside. */
bool zt_k8s_object_same(const struct zt_k8s_object *a, const struct zt_k8s_object *b);

/* ---- watches ---------------------------------------------------------- */

struct zt_k8s_watch;

enum zt_k8s_op {
	ZT_K8S_OP_LIST = 0,
	ZT_K8S_OP_WATCH,
};

/* Something went wrong; the worker retries by itself. For the caller's log. */
struct zt_k8s_error {
	enum zt_k8s_kind kind;
	enum zt_k8s_op op;
	int err; /* -errno: -EACCES (401, 403), -EPROTO (bad response), -EIO (transport), ... */
	long http_status; /* 0: no response */
	const char *msg; /* what happened, where: "GET https://... : 401 Unauthorized: ..." */
	unsigned int failures; /* consecutive, this one included */
	uint64_t retry_in_ns; /* 0: at once */
	bool relist; /* the next attempt lists again (410 Gone, overflow) */
};

/* The cache equals a complete list (at the first sync: ready). */
struct zt_k8s_sync {
	enum zt_k8s_kind kind;
	const char *resource_version; /* of the list */
	size_t objects; /* in the cache */
	bool first; /* the first sync since start */
};

/*
 * Called on the caller's thread from zt_k8s_watch_dispatch(). Objects are
 * valid during the call only (copy what you keep). updated() is called only
 * when what the agent uses changed (zt_k8s_object_same), not for every
 * status change of a pod; deleted() gets the last known state. Any handler
 * may be NULL. Handlers must not call zt_k8s_watch_stop() on their watch.
 */
struct zt_k8s_handlers {
	void (*added)(void *ctx, const struct zt_k8s_object *obj);
	void (*updated)(void *ctx, const struct zt_k8s_object *old,
			const struct zt_k8s_object *obj);
	void (*deleted)(void *ctx, const struct zt_k8s_object *obj);
	void (*synced)(void *ctx, const struct zt_k8s_sync *s);
	void (*error)(void *ctx, const struct zt_k8s_error *e);
};

struct zt_k8s_watch_opts {
	enum zt_k8s_kind kind;
	const char *field_selector; /* "spec.nodeName=node-1"; NULL: none */
	const char *label_selector; /* NULL: none */
	const struct zt_k8s_handlers *h;
	void *ctx;
	/* 0 for each: the default. */
	unsigned int page_limit; /* LIST page size: 500 */
	unsigned int watch_timeout_s; /* a WATCH's timeoutSeconds: 300 to 600 at random */
	uint64_t backoff_min_ns; /* 500 ms */
	uint64_t backoff_max_ns; /* 30 s */
	size_t max_object_bytes; /* one watch event's JSON: 4 MiB */
	size_t max_page_bytes; /* one LIST page: 64 MiB (a bigger page: the limit is cut to a quarter) */
	unsigned int queue_max; /* events between the worker and the caller: 4096 */
	unsigned int dispatch_batch; /* events per zt_k8s_watch_dispatch(): 256 */
	uint64_t connect_timeout_ns; /* 10 s */
};

/* Starts the worker (it lists at once). 0 or -errno. */
int zt_k8s_watch_start(struct zt_k8s_client *c, const struct zt_k8s_watch_opts *o,
		       struct zt_k8s_watch **out);
/* Readable (EPOLLIN) when events wait for zt_k8s_watch_dispatch(). */
int zt_k8s_watch_fd(const struct zt_k8s_watch *w);
/*
 * Applies at most dispatch_batch queued events to the cache and calls the
 * handlers; when more wait, the fd stays readable so the loop comes back
 * after its other work. Returns the events handled.
 */
int zt_k8s_watch_dispatch(struct zt_k8s_watch *w);
/* Stops and joins the worker, frees the cache; no handler runs. NULL is fine. */
void zt_k8s_watch_stop(struct zt_k8s_watch *w);

/* The cache (caller's thread). */
bool zt_k8s_watch_synced(const struct zt_k8s_watch *w);
size_t zt_k8s_watch_count(const struct zt_k8s_watch *w);
/* namespace "" for Namespaces. NULL: not there. */
const struct zt_k8s_object *zt_k8s_watch_get(const struct zt_k8s_watch *w, const char *namespace,
					     const char *name);
/* Every cached object, in no particular order; fn must not change the cache. */
void zt_k8s_watch_foreach(const struct zt_k8s_watch *w,
			  void (*fn)(void *ctx, const struct zt_k8s_object *obj), void *ctx);

/* Counters since start (any thread), for metrics and status. */
struct zt_k8s_watch_stats {
	uint64_t lists; /* complete (re)lists */
	uint64_t list_pages;
	uint64_t watches; /* WATCH requests answered 200 */
	uint64_t events; /* ADDED, MODIFIED, DELETED received */
	uint64_t bookmarks;
	uint64_t relists_gone; /* relists for 410 Gone (status, ERROR event, expired continue) */
	uint64_t overflows; /* relists because the queue was full */
	uint64_t errors; /* failed requests, bad responses */
	uint64_t bad_objects; /* objects skipped: did not decode (kept at their last good state) */
	char resource_version[64]; /* the last seen */
};
void zt_k8s_watch_get_stats(struct zt_k8s_watch *w, struct zt_k8s_watch_stats *out);

#endif
